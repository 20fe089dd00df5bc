//! Probabilities and losses: softmax, log-softmax, cross-entropy from logits, mean squared error.
//!
//! All softmax-family functions subtract the maximum along the axis first, so large logits do
//! not overflow. Cross-entropy is computed from log-softmax (never `log(softmax)`), and its
//! backward is the familiar `(softmax - one_hot) / N`.

use super::reduce::split_at_axis;
use super::{Tape, Var};
use crate::error::{fmt_shape, Error, Result};
use crate::Tensor;

/// Applies `f(lanes, out)` to every lane along `axis`: `lanes[i]` is input `i`'s lane, gathered
/// into a contiguous buffer, and `out` is scattered back into the result (shaped as input 0).
/// All inputs must have the same shape.
fn map_lanes<const N: usize>(
    op: &str,
    inputs: [&Tensor; N],
    axis: usize,
    f: impl Fn([&[f32]; N], &mut [f32]),
) -> Result<Tensor> {
    let shape = inputs[0].shape();
    let (outer, len, inner) = split_at_axis(op, shape, axis)?;
    let mut out = vec![0.0; inputs[0].numel()];
    let mut lanes = [(); N].map(|_| vec![0.0; len]);
    let mut lane_out = vec![0.0; len];
    for o in 0..outer {
        for i in 0..inner {
            let base = o * len * inner + i;
            for (lane, input) in lanes.iter_mut().zip(&inputs) {
                for (k, v) in lane.iter_mut().enumerate() {
                    *v = input.data()[base + k * inner];
                }
            }
            f(lanes.each_ref().map(|l| l.as_slice()), &mut lane_out);
            for (k, &v) in lane_out.iter().enumerate() {
                out[base + k * inner] = v;
            }
        }
    }
    Ok(Tensor::from_parts(out, shape))
}

fn log_softmax_row(row: &[f32], out: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let log_sum: f32 = row.iter().map(|&v| (v - max).exp()).sum::<f32>().ln() + max;
    for (o, &v) in out.iter_mut().zip(row) {
        *o = v - log_sum;
    }
}

fn softmax_row(row: &[f32], out: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut total = 0.0;
    for (o, &v) in out.iter_mut().zip(row) {
        *o = (v - max).exp();
        total += *o;
    }
    for o in out.iter_mut() {
        *o /= total;
    }
}

/// `exp(x) / sum(exp(x))` along `axis`.
pub fn softmax(x: &Tensor, axis: usize) -> Result<Tensor> {
    map_lanes("softmax", [x], axis, |[row], out| softmax_row(row, out))
}

/// `x - log(sum(exp(x)))` along `axis`.
pub fn log_softmax(x: &Tensor, axis: usize) -> Result<Tensor> {
    map_lanes("log_softmax", [x], axis, |[row], out| {
        log_softmax_row(row, out)
    })
}

fn check_targets(logits: &[usize], targets: &[usize]) -> Result<(usize, usize)> {
    let &[batch, classes] = logits else {
        return Err(Error::shape(
            "cross_entropy",
            format!("logits must be [batch, classes], got {}", fmt_shape(logits)),
        ));
    };
    if targets.len() != batch {
        return Err(Error::shape(
            "cross_entropy",
            format!(
                "logits {} have {batch} rows but there are {} targets",
                fmt_shape(logits),
                targets.len()
            ),
        ));
    }
    if let Some((i, &t)) = targets.iter().enumerate().find(|(_, &t)| t >= classes) {
        return Err(Error::invalid(
            "cross_entropy",
            format!(
                "target {i} is class {t}, but the logits {} have {classes} classes",
                fmt_shape(logits)
            ),
        ));
    }
    Ok((batch, classes))
}

/// Mean over the batch of `-log_softmax(logits)[target]`, for logits `[N, C]` and class indices.
pub fn cross_entropy(logits: &Tensor, targets: &[usize]) -> Result<Tensor> {
    let (batch, classes) = check_targets(logits.shape(), targets)?;
    let mut log_probs = vec![0.0; classes];
    let mut total = 0.0f64;
    for (row, &target) in logits.data().chunks_exact(classes).zip(targets) {
        log_softmax_row(row, &mut log_probs);
        total -= log_probs[target] as f64;
    }
    Ok(Tensor::scalar((total / batch as f64) as f32))
}

/// Mean of `(prediction - target)^2`; the shapes must be equal.
pub fn mse_loss(prediction: &Tensor, target: &Tensor) -> Result<Tensor> {
    if prediction.shape() != target.shape() {
        return Err(Error::shape(
            "mse_loss",
            format!(
                "prediction {} and target {} must have the same shape",
                fmt_shape(prediction.shape()),
                fmt_shape(target.shape())
            ),
        ));
    }
    let total: f64 = prediction
        .data()
        .iter()
        .zip(target.data())
        .map(|(&p, &t)| ((p - t) as f64).powi(2))
        .sum();
    Ok(Tensor::scalar((total / prediction.numel() as f64) as f32))
}

impl Tape {
    /// Softmax along `axis`.
    pub fn softmax(&mut self, x: Var, axis: usize) -> Result<Var> {
        let y = softmax(self.value(x)?, axis)?;
        let probs = y.clone();
        Ok(self.record("softmax", &[x], y, move |g, sink| {
            // dx = y * (g - sum(g * y))
            let dx = map_lanes("softmax", [g, &probs], axis, |[g, y], out| {
                let dot: f32 = g.iter().zip(y).map(|(g, y)| g * y).sum();
                for ((o, &g), &y) in out.iter_mut().zip(g).zip(y) {
                    *o = y * (g - dot);
                }
            })
            .expect("checked by forward");
            sink.accumulate(0, dx);
        }))
    }

    /// Log-softmax along `axis`.
    pub fn log_softmax(&mut self, x: Var, axis: usize) -> Result<Var> {
        let y = log_softmax(self.value(x)?, axis)?;
        let log_probs = y.clone();
        Ok(self.record("log_softmax", &[x], y, move |g, sink| {
            // dx = g - softmax * sum(g)
            let dx = map_lanes("log_softmax", [g, &log_probs], axis, |[g, lp], out| {
                let total: f32 = g.iter().sum();
                for ((o, &g), &lp) in out.iter_mut().zip(g).zip(lp) {
                    *o = g - lp.exp() * total;
                }
            })
            .expect("checked by forward");
            sink.accumulate(0, dx);
        }))
    }

    /// Cross-entropy of logits `[N, C]` against class indices, averaged over the batch.
    pub fn cross_entropy(&mut self, logits: Var, targets: &[usize]) -> Result<Var> {
        let logits_value = self.get(logits)?;
        let y = cross_entropy(&logits_value, targets)?;
        let targets = targets.to_vec();
        Ok(self.record("cross_entropy", &[logits], y, move |g, sink| {
            let classes = logits_value.shape()[1];
            let scale = g.data()[0] / targets.len() as f32;
            let mut dx = vec![0.0; logits_value.numel()];
            for ((row, out), &target) in logits_value
                .data()
                .chunks_exact(classes)
                .zip(dx.chunks_exact_mut(classes))
                .zip(&targets)
            {
                softmax_row(row, out);
                out[target] -= 1.0;
                out.iter_mut().for_each(|v| *v *= scale);
            }
            sink.accumulate(0, Tensor::from_parts(dx, logits_value.shape()));
        }))
    }

    /// Mean squared error between two variables of the same shape.
    pub fn mse_loss(&mut self, prediction: Var, target: Var) -> Result<Var> {
        let (p, t) = (self.get(prediction)?, self.get(target)?);
        let y = mse_loss(&p, &t)?;
        Ok(
            self.record("mse_loss", &[prediction, target], y, move |g, sink| {
                let scale = 2.0 * g.data()[0] / p.numel() as f32;
                let diff: Vec<f32> = p
                    .data()
                    .iter()
                    .zip(t.data())
                    .map(|(p, t)| (p - t) * scale)
                    .collect();
                let diff = Tensor::from_parts(diff, p.shape());
                if sink.wants(1) {
                    sink.accumulate(1, diff.map(|v| -v));
                }
                sink.accumulate(0, diff);
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::gradcheck::{check_gradients, strategies::tensor_in};
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn softmax_family_gradients(x in tensor_in(vec![2, 4, 3], -3.0, 3.0), axis in 0usize..3) {
            let r = check_gradients(std::slice::from_ref(&x), |tape, v| tape.softmax(v[0], axis));
            prop_assert!(r.is_ok(), "softmax: {}", r.unwrap_err());
            let r = check_gradients(&[x], |tape, v| tape.log_softmax(v[0], axis));
            prop_assert!(r.is_ok(), "log_softmax: {}", r.unwrap_err());
        }

        #[test]
        fn cross_entropy_gradients(
            x in tensor_in(vec![5, 4], -3.0, 3.0),
            targets in proptest::collection::vec(0usize..4, 5),
        ) {
            let r = check_gradients(&[x], |tape, v| tape.cross_entropy(v[0], &targets));
            prop_assert!(r.is_ok(), "{}", r.unwrap_err());
        }

        #[test]
        fn mse_gradients(p in tensor_in(vec![3, 4], -2.0, 2.0), t in tensor_in(vec![3, 4], -2.0, 2.0)) {
            let r = check_gradients(&[p, t], |tape, v| tape.mse_loss(v[0], v[1]));
            prop_assert!(r.is_ok(), "{}", r.unwrap_err());
        }
    }

    #[test]
    fn huge_logits_stay_finite() {
        let x = Tensor::from_vec(vec![1000.0, 0.0, -1000.0, 1000.0], &[2, 2]).unwrap();
        // Row 0 misses by 1000, row 1 by 2000.
        let loss = cross_entropy(&x, &[1, 0]).unwrap().item().unwrap();
        assert!((loss - 1500.0).abs() < 1e-3, "{loss}");
        assert!(softmax(&x, 1).unwrap().all_finite());
    }

    #[test]
    fn target_errors_name_the_problem() {
        let x = Tensor::zeros(&[2, 3]);
        assert_eq!(
            cross_entropy(&x, &[0, 3]).unwrap_err().to_string(),
            "cross_entropy: target 1 is class 3, but the logits [2, 3] have 3 classes"
        );
        assert_eq!(
            cross_entropy(&x, &[0]).unwrap_err().to_string(),
            "cross_entropy: logits [2, 3] have 2 rows but there are 1 targets"
        );
        assert!(mse_loss(&x, &Tensor::zeros(&[3, 2])).is_err());
    }

    /// Expected values from PyTorch 2.15:
    /// ```python
    /// import torch, torch.nn.functional as F
    /// x = torch.tensor([[1.0, 2.0, 0.5], [-1.0, 0.0, 3.0]], requires_grad=True)
    /// loss = F.cross_entropy(x, torch.tensor([1, 0])); loss.backward()
    /// print(loss.item(), x.grad.tolist())
    /// ```
    #[test]
    fn cross_entropy_matches_pytorch() {
        let x = Tensor::from_vec(vec![1.0, 2.0, 0.5, -1.0, 0.0, 3.0], &[2, 3]).unwrap();
        let mut tape = Tape::new();
        let xv = tape.param(x);
        let loss = tape.cross_entropy(xv, &[1, 0]).unwrap();
        let value = tape.value(loss).unwrap().item().unwrap();
        let grads = tape.backward(loss).unwrap();
        assert!((value - 2.2651265).abs() < 1e-6, "{value}");
        let expected = [
            0.1156119, -0.1857342, 0.0701222, -0.4914261, 0.0233063, 0.4681198,
        ];
        for (g, e) in grads.get(xv).unwrap().data().iter().zip(expected) {
            assert!((g - e).abs() < 1e-6, "{g} vs {e}");
        }
    }
}
