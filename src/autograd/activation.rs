//! Pointwise nonlinearities: relu, relu6, sigmoid, tanh, exp, log.
//!
//! Each backward multiplies the upstream gradient by the derivative, written in terms of the
//! input `x` or the output `y`, whichever is cheaper. Subgradient convention (as PyTorch):
//! `relu'(0) = 0`, and relu6's derivative is 0 at both 0 and 6.

use super::{Clamp, Tape, Var};
use crate::error::Result;
use crate::tensor::elementwise;
use crate::Tensor;

/// `max(x, 0)`.
pub fn relu(x: &Tensor) -> Tensor {
    x.map(|v| Clamp::Relu.apply(v))
}

/// `min(max(x, 0), 6)`, MobileNet's bounded ReLU.
pub fn relu6(x: &Tensor) -> Tensor {
    x.map(|v| Clamp::Relu6.apply(v))
}

/// `1 / (1 + e^-x)`, computed without overflow for large `|x|`.
pub fn sigmoid(x: &Tensor) -> Tensor {
    x.map(|v| {
        if v >= 0.0 {
            1.0 / (1.0 + (-v).exp())
        } else {
            let e = v.exp();
            e / (1.0 + e)
        }
    })
}

pub fn tanh(x: &Tensor) -> Tensor {
    x.map(f32::tanh)
}

pub fn exp(x: &Tensor) -> Tensor {
    x.map(f32::exp)
}

/// Natural logarithm; non-positive inputs give NaN or `-inf`, as in PyTorch.
pub fn log(x: &Tensor) -> Tensor {
    x.map(f32::ln)
}

impl Tape {
    /// Records `y = forward(x)` whose backward is `dx = dy * derivative(x, y)`.
    fn pointwise(
        &mut self,
        op: &'static str,
        x: Var,
        forward: fn(&Tensor) -> Tensor,
        derivative: fn(f32, f32) -> f32,
    ) -> Result<Var> {
        let x_value = self.get(x)?;
        let y = forward(&x_value);
        let y_value = y.clone();
        Ok(self.record(op, &[x], y, move |g, sink| {
            let dx = elementwise::zip3_map(g.data(), x_value.data(), y_value.data(), |g, x, y| {
                g * derivative(x, y)
            });
            sink.accumulate(0, Tensor::from_parts(dx, x_value.shape()));
        }))
    }

    /// Records `y = clamp(x)`, whose backward reads only `y`: its derivative, 1 strictly inside
    /// the clamp's interval and 0 elsewhere, is the same read from `y` as from `x` (see
    /// [`Clamp`]). So `x` is not kept alive for the backward pass, and the backward pass reads
    /// two tensors instead of three.
    fn clamp(&mut self, op: &'static str, x: Var, clamp: Clamp) -> Result<Var> {
        let x_value = self.get(x)?;
        let y = match clamp {
            Clamp::Relu => relu(&x_value),
            Clamp::Relu6 => relu6(&x_value),
        };
        let y_value = y.clone();
        Ok(self.record(op, &[x], y, move |g, sink| {
            let (g, y) = (g.data(), y_value.data());
            // One loop per clamp, so each compiles without a branch on `clamp` inside.
            let dx = match clamp {
                Clamp::Relu => {
                    elementwise::zip_map(g, y, |g, y| g * Clamp::Relu.derivative_at_output(y))
                }
                Clamp::Relu6 => {
                    elementwise::zip_map(g, y, |g, y| g * Clamp::Relu6.derivative_at_output(y))
                }
            };
            sink.accumulate(0, Tensor::from_parts(dx, y_value.shape()));
        }))
    }

    /// `max(x, 0)`; `relu'(0) = 0`.
    pub fn relu(&mut self, x: Var) -> Result<Var> {
        self.clamp("relu", x, Clamp::Relu)
    }

    /// `min(max(x, 0), 6)`; the derivative is 0 at both 0 and 6.
    pub fn relu6(&mut self, x: Var) -> Result<Var> {
        self.clamp("relu6", x, Clamp::Relu6)
    }

    pub fn sigmoid(&mut self, x: Var) -> Result<Var> {
        self.pointwise("sigmoid", x, sigmoid, |_, y| y * (1.0 - y))
    }

    pub fn tanh(&mut self, x: Var) -> Result<Var> {
        self.pointwise("tanh", x, tanh, |_, y| 1.0 - y * y)
    }

    pub fn exp(&mut self, x: Var) -> Result<Var> {
        self.pointwise("exp", x, exp, |_, y| y)
    }

    pub fn log(&mut self, x: Var) -> Result<Var> {
        self.pointwise("log", x, log, |x, _| 1.0 / x)
    }
}

#[cfg(test)]
mod tests {
    use super::super::gradcheck::{
        check_gradients,
        strategies::{away_from, tensor_in},
    };
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn relu_gradients(x in tensor_in(vec![2, 3, 2, 2], -2.0, 2.0)) {
            let x = away_from(&x, &[0.0], 0.02);
            let r = check_gradients(&[x], |tape, v| tape.relu(v[0]));
            prop_assert!(r.is_ok(), "{}", r.unwrap_err());
        }

        #[test]
        fn relu6_gradients(x in tensor_in(vec![3, 5], -2.0, 8.0)) {
            let x = away_from(&x, &[0.0, 6.0], 0.02);
            let r = check_gradients(&[x], |tape, v| tape.relu6(v[0]));
            prop_assert!(r.is_ok(), "{}", r.unwrap_err());
        }

        #[test]
        fn smooth_activation_gradients(x in tensor_in(vec![2, 7], -3.0, 3.0)) {
            for op in ["sigmoid", "tanh", "exp"] {
                let r = check_gradients(std::slice::from_ref(&x), |tape, v| match op {
                    "sigmoid" => tape.sigmoid(v[0]),
                    "tanh" => tape.tanh(v[0]),
                    _ => tape.exp(v[0]),
                });
                prop_assert!(r.is_ok(), "{op}: {}", r.unwrap_err());
            }
        }

        #[test]
        fn log_gradients(x in tensor_in(vec![9], 0.2, 5.0)) {
            let r = check_gradients(&[x], |tape, v| tape.log(v[0]));
            prop_assert!(r.is_ok(), "{}", r.unwrap_err());
        }
    }

    #[test]
    fn subgradients_at_kinks_are_zero() {
        let mut tape = Tape::new();
        let x = tape.param(Tensor::from_vec(vec![0.0, 6.0, -1.0, 3.0], &[4]).unwrap());
        let a = tape.relu(x).unwrap();
        let b = tape.relu6(x).unwrap();
        let s = tape.add(a, b).unwrap();
        let loss = tape.sum(s).unwrap();
        let grads = tape.backward(loss).unwrap();
        // relu'(0) = 0, relu6'(0) = relu6'(6) = 0.
        assert_eq!(grads.get(x).unwrap().data(), &[0.0, 1.0, 0.0, 2.0]);
    }

    #[test]
    fn sigmoid_saturates_without_nan() {
        let x = Tensor::from_vec(vec![-100.0, 0.0, 100.0], &[3]).unwrap();
        let y = sigmoid(&x);
        assert!(y.data()[0] >= 0.0 && y.data()[0] < 1e-40, "{y}");
        assert_eq!(&y.data()[1..], &[0.5, 1.0]);
    }

    /// Expected values from PyTorch 2.15 (printed with 8 decimals):
    /// ```python
    /// import torch
    /// x = torch.tensor([-1.5, -0.25, 0.5, 2.0], requires_grad=True)
    /// u = torch.tensor([0.3, -1.2, 0.7, 1.1])
    /// for f in (torch.sigmoid, torch.tanh, torch.exp):
    ///     y = f(x); (g,) = torch.autograd.grad((y * u).sum(), x)
    ///     print(y.tolist(), g.tolist())
    /// ```
    #[test]
    #[allow(clippy::excessive_precision)] // the values as PyTorch printed them
    fn matches_pytorch_values() {
        let x = Tensor::from_vec(vec![-1.5, -0.25, 0.5, 2.0], &[4]).unwrap();
        let u = Tensor::from_vec(vec![0.3, -1.2, 0.7, 1.1], &[4]).unwrap();
        let expected: [(&str, [f32; 4], [f32; 4]); 3] = [
            (
                "sigmoid",
                [0.18242553, 0.43782350, 0.62245935, 0.88079703],
                [0.04474394, -0.29536089, 0.16450259, 0.11549299],
            ),
            (
                "tanh",
                [-0.90514827, -0.24491866, 0.46211717, 0.96402758],
                [0.05421199, -1.12801790, 0.55051339, 0.07771590],
            ),
            (
                "exp",
                [0.22313017, 0.77880079, 1.64872122, 7.38905621],
                [0.06693906, -0.93456095, 1.15410483, 8.12796211],
            ),
        ];
        for (op, y_expected, g_expected) in expected {
            let mut tape = Tape::new();
            let xv = tape.param(x.clone());
            let y = match op {
                "sigmoid" => tape.sigmoid(xv),
                "tanh" => tape.tanh(xv),
                _ => tape.exp(xv),
            }
            .unwrap();
            let y_value = tape.value(y).unwrap().clone();
            let grads = tape.backward_with(y, u.clone()).unwrap();
            for i in 0..4 {
                let (y, g) = (y_value.data()[i], grads.get(xv).unwrap().data()[i]);
                assert!(
                    (y - y_expected[i]).abs() <= 1e-6 * y.abs().max(1.0),
                    "{op} y[{i}]: {y}"
                );
                assert!(
                    (g - g_expected[i]).abs() <= 1e-6 * g.abs().max(1.0),
                    "{op} grad[{i}]: {g}"
                );
            }
        }
    }
}
