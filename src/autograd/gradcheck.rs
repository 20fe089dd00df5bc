//! Gradient checking: the analytic gradient of every op against central finite differences.
//!
//! [`check_gradients`] builds `y = f(inputs)` on a tape, takes a fixed, non-uniform upstream
//! gradient `u` (so that every output element is weighted differently, unlike `sum()`), and
//! compares the tape's gradient of `L = sum(u * y)` with `(L(x + h) - L(x - h)) / 2h` for every
//! element of every input. Losses are accumulated in f64; the forward pass itself is f32, so
//! the step and tolerance are chosen for f32 rounding: an element passes when
//! `|analytic - numeric| <= tolerance * max(1, |analytic|, |numeric|)`.
//!
//! Inputs must be kept away from kinks (relu at 0, ties in a max) by more than the step: there
//! the finite difference straddles two branches and measures neither.

use std::fmt;

use super::{Tape, Var};
use crate::error::Result;
use crate::{Rng, Tensor};

/// Settings of a gradient check.
#[derive(Clone, Copy, Debug)]
pub struct GradCheck {
    /// Finite-difference step `h`.
    pub step: f32,
    /// Relative tolerance (absolute below magnitude 1).
    pub tolerance: f64,
    /// Seed of the upstream gradient.
    pub seed: u64,
}

impl Default for GradCheck {
    fn default() -> Self {
        GradCheck {
            step: 5e-3,
            tolerance: 1e-2,
            seed: 0x5EED,
        }
    }
}

/// The first element whose analytic gradient disagrees with the numeric one, or an op error.
#[derive(Clone, Debug)]
pub struct GradCheckError {
    pub message: String,
}

impl fmt::Display for GradCheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for GradCheckError {}

/// [`GradCheck::run`] with the default settings.
///
/// ```
/// use convgrad::autograd::gradcheck::check_gradients;
/// use convgrad::Tensor;
/// let x = Tensor::from_vec(vec![0.3, -1.2, 2.0], &[3])?;
/// check_gradients(&[x], |tape, v| tape.tanh(v[0])).expect("tanh's backward is right");
/// # Ok::<(), convgrad::Error>(())
/// ```
pub fn check_gradients(
    inputs: &[Tensor],
    f: impl Fn(&mut Tape, &[Var]) -> Result<Var>,
) -> Result<(), GradCheckError> {
    GradCheck::default().run(inputs, f)
}

impl GradCheck {
    /// Checks the gradient of `f` with respect to every element of every input.
    pub fn run(
        &self,
        inputs: &[Tensor],
        f: impl Fn(&mut Tape, &[Var]) -> Result<Var>,
    ) -> Result<(), GradCheckError> {
        let fail = |message: String| Err(GradCheckError { message });
        // Analytic gradients.
        let mut tape = Tape::new();
        let vars: Vec<Var> = inputs.iter().map(|t| tape.param(t.clone())).collect();
        let output = match f(&mut tape, &vars) {
            Ok(output) => output,
            Err(e) => return fail(format!("forward failed: {e}")),
        };
        let out_shape = tape.shape(output).expect("output is on the tape").to_vec();
        let mut rng = Rng::seed(self.seed);
        let mut upstream = Tensor::uniform(&out_shape, 0.2, 1.2, &mut rng);
        for u in upstream.data_mut() {
            if rng.next_f32() < 0.5 {
                *u = -*u;
            }
        }
        let grads = match tape.backward_with(output, upstream.clone()) {
            Ok(grads) => grads,
            Err(e) => return fail(format!("backward failed: {e}")),
        };

        // Numeric gradients, one element at a time, on tapes that record nothing.
        let weighted_loss = |inputs: &[Tensor]| -> Result<f64> {
            let mut tape = Tape::new();
            let vars: Vec<Var> = inputs.iter().map(|t| tape.input(t.clone())).collect();
            let y = f(&mut tape, &vars)?;
            let y = tape.value(y)?;
            Ok(y.data()
                .iter()
                .zip(upstream.data())
                .map(|(&y, &u)| y as f64 * u as f64)
                .sum())
        };
        let mut probe = inputs.to_vec();
        for (which, input) in inputs.iter().enumerate() {
            let analytic = grads
                .get(vars[which])
                .cloned()
                .unwrap_or_else(|| Tensor::zeros(input.shape()));
            if analytic.shape() != input.shape() {
                return fail(format!(
                    "input {which}: gradient shape {:?} differs from input shape {:?}",
                    analytic.shape(),
                    input.shape()
                ));
            }
            for index in 0..input.numel() {
                let original = input.data()[index];
                let x_plus = original + self.step;
                let x_minus = original - self.step;
                probe[which].data_mut()[index] = x_plus;
                let plus = weighted_loss(&probe);
                probe[which].data_mut()[index] = x_minus;
                let minus = weighted_loss(&probe);
                probe[which].data_mut()[index] = original;
                let (plus, minus) = match (plus, minus) {
                    (Ok(p), Ok(m)) => (p, m),
                    (Err(e), _) | (_, Err(e)) => return fail(format!("forward failed: {e}")),
                };
                // The step actually taken, after f32 rounding of x +- h.
                let numeric = (plus - minus) / (x_plus as f64 - x_minus as f64);
                let a = analytic.data()[index] as f64;
                let scale = 1f64.max(a.abs()).max(numeric.abs());
                let close = (a - numeric).abs() <= self.tolerance * scale;
                if !close {
                    return fail(format!(
                        "input {which} {:?}, element {index} (value {original}): analytic \
                         gradient {a:.6} but finite differences give {numeric:.6}",
                        input.shape()
                    ));
                }
            }
        }
        Ok(())
    }
}

/// proptest strategies for gradient checks.
#[cfg(test)]
pub(crate) mod strategies {
    use crate::Tensor;
    use proptest::prelude::*;

    /// A tensor of `shape` with values uniform in `[low, high)`.
    pub fn tensor_in(shape: Vec<usize>, low: f32, high: f32) -> impl Strategy<Value = Tensor> {
        let n: usize = shape.iter().product();
        proptest::collection::vec(low..high, n)
            .prop_map(move |data| Tensor::from_vec(data, &shape).expect("length matches"))
    }

    /// `t` with every value within `margin` of a kink moved to `kink +- margin`.
    pub fn away_from(t: &Tensor, kinks: &[f32], margin: f32) -> Tensor {
        t.map(|mut x| {
            for &k in kinks {
                if (x - k).abs() < margin {
                    x = if x >= k { k + margin } else { k - margin };
                }
            }
            x
        })
    }
}

#[cfg(test)]
mod tests {
    use super::strategies::tensor_in;
    use super::*;
    use proptest::prelude::*;

    /// `y = x^2` with a deliberately wrong backward (`3x` instead of `2x`).
    fn wrong_square(tape: &mut Tape, x: Var) -> Result<Var> {
        let x_value = tape.value(x)?.clone();
        let y = x_value.map(|v| v * v);
        tape.custom_op("wrong_square", &[x], y, move |g, sink| {
            let dx = crate::functional::mul(g, &x_value.map(|v| 3.0 * v)).unwrap();
            sink.accumulate(0, dx);
        })
    }

    /// `y = x * w` whose backward forgets the gradient of the broadcast `w` is summed.
    fn forgets_broadcast(tape: &mut Tape, x: Var, w: Var) -> Result<Var> {
        let (xv, wv) = (tape.value(x)?.clone(), tape.value(w)?.clone());
        let y = crate::functional::mul(&xv, &wv)?;
        tape.custom_op("forgets_broadcast", &[x, w], y, move |g, sink| {
            sink.accumulate(0, crate::functional::mul(g, &wv).unwrap());
            // Wrong: takes only the first row instead of summing over rows.
            let first_row = g.data()[..wv.numel()]
                .iter()
                .zip(xv.data())
                .map(|(g, x)| g * x)
                .collect();
            sink.accumulate(1, Tensor::from_vec(first_row, wv.shape()).unwrap());
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]

        /// The negative control: the harness must catch a wrong backward every time.
        #[test]
        fn harness_catches_a_wrong_backward(x in tensor_in(vec![2, 3], 0.5, 2.0)) {
            let result = check_gradients(&[x], |tape, v| wrong_square(tape, v[0]));
            prop_assert!(result.is_err());
        }

        #[test]
        fn harness_catches_a_missing_broadcast_sum(
            x in tensor_in(vec![3, 4], 0.5, 2.0),
            w in tensor_in(vec![4], 0.5, 2.0),
        ) {
            let result = check_gradients(&[x.clone(), w.clone()], |tape, v| forgets_broadcast(tape, v[0], v[1]));
            prop_assert!(result.is_err());
            // The right rule passes on the same inputs.
            prop_assert!(check_gradients(&[x, w], |tape, v| tape.mul(v[0], v[1])).is_ok());
        }
    }

    #[test]
    fn failure_message_says_where() {
        let x = Tensor::from_vec(vec![1.0, 2.0], &[2]).unwrap();
        let err = check_gradients(&[x], |tape, v| wrong_square(tape, v[0])).unwrap_err();
        assert!(
            err.message
                .starts_with("input 0 [2], element 0 (value 1): analytic gradient"),
            "{err}"
        );
    }
}
