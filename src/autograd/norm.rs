//! Normalisation as tape ops: batch normalisation (Ioffe and Szegedy 2015) and local response
//! normalisation (Krizhevsky et al. 2012).
//!
//! BatchNorm in training normalises with the batch's mean and biased variance and returns the
//! updated running statistics (`running = (1 - momentum) * running + momentum * batch`, with the
//! unbiased variance, as PyTorch); in evaluation it uses the running statistics, so the op is an
//! affine map per channel.

pub use convgrad_kernels::norm::Clamp;
use convgrad_kernels::norm::{
    self as kernels, BatchNormGeometry, BatchNormGrads, LrnGeometry, RunningStats,
};
use convgrad_kernels::pool::NchwShape;

use super::{Tape, Var};
use crate::error::{fmt_shape, Error, Result};
use crate::Tensor;

/// `eps` and `momentum` of a batch normalisation, PyTorch's meaning and defaults
/// (`1e-5`, `0.1`; GoogLeNet and Inception-v3 use `eps = 1e-3`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormOptions {
    pub eps: f32,
    pub momentum: f32,
}

impl Default for BatchNormOptions {
    fn default() -> Self {
        BatchNormOptions {
            eps: 1e-5,
            momentum: 0.1,
        }
    }
}

/// Size, `alpha`, `beta` and `k` of a local response normalisation across channels:
/// `b_c = a_c / (k + alpha / size * sum of a^2 over the size channels around c)^beta`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LrnOptions {
    pub size: usize,
    pub alpha: f32,
    pub beta: f32,
    pub k: f32,
}

impl LrnOptions {
    /// PyTorch's defaults for a window of `size` channels: alpha `1e-4`, beta `0.75`, k `1`.
    pub fn new(size: usize) -> Self {
        LrnOptions {
            size,
            alpha: 1e-4,
            beta: 0.75,
            k: 1.0,
        }
    }
}

/// `[N, C, H, W]`, or `[N, C]` seen as `[N, C, 1, 1]`.
fn channels_shape(op: &str, shape: &[usize]) -> Result<NchwShape> {
    match *shape {
        [n, c, h, w] => Ok(NchwShape::new(n, c, (h, w))),
        [n, c] => Ok(NchwShape::new(n, c, (1, 1))),
        _ => Err(Error::shape(
            op,
            format!("expects [N, C, H, W] or [N, C], got {}", fmt_shape(shape)),
        )),
    }
}

fn bn_geometry(
    x: &[usize],
    per_channel: &[(&str, Option<&Tensor>)],
    training: bool,
    options: BatchNormOptions,
) -> Result<BatchNormGeometry> {
    let shape = channels_shape("batch_norm", x)?;
    for (name, t) in per_channel {
        if let Some(t) = t {
            if t.shape() != [shape.channels] {
                return Err(Error::shape(
                    "batch_norm",
                    format!(
                        "input {}: {name} must be [{}], got {}",
                        fmt_shape(x),
                        shape.channels,
                        fmt_shape(t.shape())
                    ),
                ));
            }
        }
    }
    if training && shape.batch * shape.height * shape.width < 2 {
        return Err(Error::shape(
            "batch_norm",
            format!(
                "input {}: training needs more than one value per channel to estimate a variance",
                fmt_shape(x)
            ),
        ));
    }
    Ok(BatchNormGeometry {
        eps: options.eps,
        momentum: options.momentum,
        ..BatchNormGeometry::new(shape)
    })
}

fn kernel_error(e: convgrad_kernels::KernelError) -> Error {
    Error::shape("batch_norm", e.to_string())
}

/// A batch normalisation's input, weight and bias values, and its geometry.
type BnOperands = (Tensor, Option<Tensor>, Option<Tensor>, BatchNormGeometry);

/// Running statistics after one training batch.
pub type RunningUpdate = Option<(Tensor, Tensor)>;

/// Batch normalisation, as `torch.nn.functional.batch_norm`. In training, `running` (mean,
/// variance) is updated in place when given; in evaluation it is required.
pub fn batch_norm(
    x: &Tensor,
    running: Option<(&mut Tensor, &mut Tensor)>,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    training: bool,
    options: BatchNormOptions,
) -> Result<Tensor> {
    let (mean, var) = match running {
        Some((m, v)) => (Some(m), Some(v)),
        None => (None, None),
    };
    let g = bn_geometry(
        x.shape(),
        &[
            ("weight", weight),
            ("bias", bias),
            ("running_mean", mean.as_deref()),
            ("running_var", var.as_deref()),
        ],
        training,
        options,
    )?;
    let mut out = vec![0.0; x.numel()];
    if training {
        let running = match (mean, var) {
            (Some(m), Some(v)) => Some(RunningStats {
                mean: m.data_mut(),
                var: v.data_mut(),
            }),
            _ => None,
        };
        kernels::batch_norm_forward_train(
            &g,
            x.data(),
            weight.map(Tensor::data),
            bias.map(Tensor::data),
            running,
            &mut out,
        )
        .map_err(kernel_error)?;
    } else {
        let (Some(m), Some(v)) = (mean, var) else {
            return Err(Error::invalid(
                "batch_norm",
                "evaluation mode needs the running mean and variance",
            ));
        };
        kernels::batch_norm_forward_eval(
            &g,
            x.data(),
            weight.map(Tensor::data),
            bias.map(Tensor::data),
            m.data(),
            v.data(),
            &mut out,
        )
        .map_err(kernel_error)?;
    }
    Ok(Tensor::from_parts(out, x.shape()))
}

/// Local response normalisation across channels, as `torch.nn.functional.local_response_norm`.
pub fn local_response_norm(x: &Tensor, options: LrnOptions) -> Result<Tensor> {
    let g = lrn_geometry(x.shape(), options)?;
    let mut out = vec![0.0; x.numel()];
    kernels::lrn_forward(&g, x.data(), &mut out)
        .map_err(|e| Error::shape("local_response_norm", e.to_string()))?;
    Ok(Tensor::from_parts(out, x.shape()))
}

fn lrn_geometry(shape: &[usize], o: LrnOptions) -> Result<LrnGeometry> {
    let s = channels_shape("local_response_norm", shape)?;
    if o.size == 0 {
        return Err(Error::invalid(
            "local_response_norm",
            "the window must hold at least one channel",
        ));
    }
    Ok(LrnGeometry {
        alpha: o.alpha,
        beta: o.beta,
        k: o.k,
        ..LrnGeometry::new(s, o.size)
    })
}

impl Tape {
    /// Batch normalisation of `x` with optional affine `weight` and `bias` (`[C]`).
    ///
    /// In training (`training = true`) the batch's statistics are used and, when `running`
    /// (mean, variance) is given, their updated values are returned. In evaluation `running` is
    /// required and used as is.
    pub fn batch_norm(
        &mut self,
        x: Var,
        weight: Option<Var>,
        bias: Option<Var>,
        running: Option<(&Tensor, &Tensor)>,
        training: bool,
        options: BatchNormOptions,
    ) -> Result<(Var, RunningUpdate)> {
        if training {
            return self.batch_norm_train(x, weight, bias, running, options, None);
        }
        let (x_value, w, b, g) = self.bn_operands(x, weight, bias, running, false, options)?;
        let Some((mean, var)) = running else {
            return Err(Error::invalid(
                "batch_norm",
                "evaluation mode needs the running mean and variance",
            ));
        };
        let (mean, var) = (mean.clone(), var.clone());
        let mut out = vec![0.0; x_value.numel()];
        kernels::batch_norm_forward_eval(
            &g,
            x_value.data(),
            w.as_ref().map(Tensor::data),
            b.as_ref().map(Tensor::data),
            mean.data(),
            var.data(),
            &mut out,
        )
        .map_err(kernel_error)?;
        let shape = x_value.shape().to_vec();
        let y = Tensor::from_parts(out, &shape);
        let inputs: Vec<Var> = [Some(x), weight, bias].into_iter().flatten().collect();
        let (has_weight, has_bias) = (weight.is_some(), bias.is_some());
        let out_var = self.record("batch_norm", &inputs, y, move |grad, sink| {
            let c = g.shape.channels;
            let (mut dx, mut dw, mut db) = (vec![0.0; g.shape.len()], vec![0.0; c], vec![0.0; c]);
            kernels::batch_norm_backward_eval(
                &g,
                x_value.data(),
                grad.data(),
                w.as_ref().map(Tensor::data),
                mean.data(),
                var.data(),
                BatchNormGrads {
                    input: &mut dx,
                    gamma: &mut dw,
                    beta: &mut db,
                },
            )
            .expect("checked by forward");
            send_grads(sink, &shape, dx, dw, db, has_weight, has_bias);
        });
        Ok((out_var, None))
    }

    /// Training-mode batch normalisation followed by a ReLU or ReLU6, recorded as one op:
    /// `clamp(batch_norm(x))`. Its values and gradients equal those of
    /// [`Tape::batch_norm`] then [`Tape::relu`] or [`Tape::relu6`] bit for bit; it saves one
    /// tensor of the size of `x` and two passes over it (forward and backward).
    pub fn batch_norm_clamped(
        &mut self,
        x: Var,
        weight: Option<Var>,
        bias: Option<Var>,
        running: Option<(&Tensor, &Tensor)>,
        options: BatchNormOptions,
        clamp: Clamp,
    ) -> Result<(Var, RunningUpdate)> {
        self.batch_norm_train(x, weight, bias, running, options, Some(clamp))
    }

    /// The values of a batch normalisation's operands and its checked geometry.
    fn bn_operands(
        &self,
        x: Var,
        weight: Option<Var>,
        bias: Option<Var>,
        running: Option<(&Tensor, &Tensor)>,
        training: bool,
        options: BatchNormOptions,
    ) -> Result<BnOperands> {
        let x_value = self.get(x)?;
        let w = weight.map(|v| self.get(v)).transpose()?;
        let b = bias.map(|v| self.get(v)).transpose()?;
        let g = bn_geometry(
            x_value.shape(),
            &[
                ("weight", w.as_ref()),
                ("bias", b.as_ref()),
                ("running_mean", running.map(|r| r.0)),
                ("running_var", running.map(|r| r.1)),
            ],
            training,
            options,
        )?;
        Ok((x_value, w, b, g))
    }

    fn batch_norm_train(
        &mut self,
        x: Var,
        weight: Option<Var>,
        bias: Option<Var>,
        running: Option<(&Tensor, &Tensor)>,
        options: BatchNormOptions,
        clamp: Option<Clamp>,
    ) -> Result<(Var, RunningUpdate)> {
        let (x_value, w, b, g) = self.bn_operands(x, weight, bias, running, true, options)?;
        let mut out = vec![0.0; x_value.numel()];
        let mut updated = running.map(|(m, v)| (m.clone(), v.clone()));
        let running_stats = updated.as_mut().map(|(m, v)| RunningStats {
            mean: m.data_mut(),
            var: v.data_mut(),
        });
        let (gamma, beta) = (w.as_ref().map(Tensor::data), b.as_ref().map(Tensor::data));
        let stats = match clamp {
            None => kernels::batch_norm_forward_train(
                &g,
                x_value.data(),
                gamma,
                beta,
                running_stats,
                &mut out,
            ),
            Some(clamp) => kernels::batch_norm_forward_train_clamped(
                &g,
                clamp,
                x_value.data(),
                gamma,
                beta,
                running_stats,
                &mut out,
            ),
        }
        .map_err(kernel_error)?;
        let shape = x_value.shape().to_vec();
        let y = Tensor::from_parts(out, &shape);
        // The clamped backward reads its mask from the output.
        let y_value = clamp.map(|clamp| (clamp, y.clone()));
        let inputs: Vec<Var> = [Some(x), weight, bias].into_iter().flatten().collect();
        let (has_weight, has_bias) = (weight.is_some(), bias.is_some());
        let op = match clamp {
            None => "batch_norm",
            Some(Clamp::Relu) => "batch_norm_relu",
            Some(Clamp::Relu6) => "batch_norm_relu6",
        };
        let var = self.record(op, &inputs, y, move |grad, sink| {
            let c = g.shape.channels;
            let (mut dx, mut dw, mut db) = (vec![0.0; g.shape.len()], vec![0.0; c], vec![0.0; c]);
            let grads = BatchNormGrads {
                input: &mut dx,
                gamma: &mut dw,
                beta: &mut db,
            };
            let gamma = w.as_ref().map(Tensor::data);
            match &y_value {
                None => kernels::batch_norm_backward_train(
                    &g,
                    x_value.data(),
                    grad.data(),
                    gamma,
                    &stats,
                    grads,
                ),
                Some((clamp, y)) => kernels::batch_norm_backward_train_clamped(
                    &g,
                    *clamp,
                    x_value.data(),
                    y.data(),
                    grad.data(),
                    gamma,
                    &stats,
                    grads,
                ),
            }
            .expect("checked by forward");
            send_grads(sink, &shape, dx, dw, db, has_weight, has_bias);
        });
        Ok((var, updated))
    }

    /// Local response normalisation across channels.
    pub fn local_response_norm(&mut self, x: Var, options: LrnOptions) -> Result<Var> {
        let x_value = self.get(x)?;
        let y = local_response_norm(&x_value, options)?;
        let g = lrn_geometry(x_value.shape(), options)?;
        Ok(
            self.record("local_response_norm", &[x], y, move |grad, sink| {
                let mut dx = vec![0.0; x_value.numel()];
                kernels::lrn_backward(&g, x_value.data(), grad.data(), &mut dx)
                    .expect("checked by forward");
                sink.accumulate(0, Tensor::from_parts(dx, x_value.shape()));
            }),
        )
    }
}

/// Sends batch norm's gradients to x and, when present, weight and bias (inputs in that order).
fn send_grads(
    sink: &mut super::GradSink<'_>,
    shape: &[usize],
    dx: Vec<f32>,
    dw: Vec<f32>,
    db: Vec<f32>,
    has_weight: bool,
    has_bias: bool,
) {
    let c = dw.len();
    sink.accumulate(0, Tensor::from_parts(dx, shape));
    let mut next = 1;
    if has_weight {
        sink.accumulate(next, Tensor::from_parts(dw, &[c]));
        next += 1;
    }
    if has_bias {
        sink.accumulate(next, Tensor::from_parts(db, &[c]));
    }
}

#[cfg(test)]
mod tests {
    use super::super::gradcheck::check_gradients;
    use super::*;
    use crate::Rng;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn batch_norm_gradients(n in 2usize..4, c in 1usize..4, hw in 1usize..4, seed: u64, training: bool, affine: bool, flat: bool) {
            let mut rng = Rng::seed(seed);
            let shape = if flat { vec![n, c] } else { vec![n, c, hw, hw + 1] };
            // Values at least 0.1 apart: with two values per channel the normalised output is
            // close to a step function of their difference, and a near-tie puts the finite
            // difference on its steep part.
            let count: usize = shape.iter().product();
            let mut values: Vec<f32> = (0..count).map(|i| i as f32 * 0.1 - count as f32 * 0.05).collect();
            rng.shuffle(&mut values);
            let x = Tensor::from_vec(values, &shape).unwrap();
            let w = Tensor::uniform(&[c], 0.5, 1.5, &mut rng);
            let b = Tensor::uniform(&[c], -0.5, 0.5, &mut rng);
            let mean = Tensor::uniform(&[c], -0.5, 0.5, &mut rng);
            let var = Tensor::uniform(&[c], 0.5, 1.5, &mut rng);
            let options = BatchNormOptions::default();
            let running = Some((&mean, &var));
            let r = if affine {
                check_gradients(&[x, w, b], |tape, v| {
                    Ok(tape.batch_norm(v[0], Some(v[1]), Some(v[2]), running, training, options)?.0)
                })
            } else {
                check_gradients(&[x], |tape, v| {
                    Ok(tape.batch_norm(v[0], None, None, running, training, options)?.0)
                })
            };
            prop_assert!(r.is_ok(), "{shape:?} training {training} affine {affine}: {}", r.unwrap_err());
        }

        #[test]
        fn lrn_gradients(c in 1usize..7, size in 1usize..6, seed: u64) {
            let x = Tensor::uniform(&[2, c, 2, 3], -2.0, 2.0, &mut Rng::seed(seed));
            // A large alpha makes the normalisation matter at this scale.
            let options = LrnOptions { size, alpha: 0.5, beta: 0.75, k: 2.0 };
            let r = check_gradients(&[x], |tape, v| tape.local_response_norm(v[0], options));
            prop_assert!(r.is_ok(), "{}", r.unwrap_err());
        }
    }

    #[test]
    fn training_needs_a_variance_and_eval_needs_running_stats() {
        let x = Tensor::zeros(&[1, 3]);
        let err = batch_norm(&x, None, None, None, true, BatchNormOptions::default()).unwrap_err();
        assert!(
            err.to_string().contains("more than one value per channel"),
            "{err}"
        );
        let err = batch_norm(
            &Tensor::zeros(&[2, 3]),
            None,
            None,
            None,
            false,
            BatchNormOptions::default(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "batch_norm: evaluation mode needs the running mean and variance"
        );
        let err = batch_norm(
            &Tensor::zeros(&[2, 3]),
            None,
            Some(&Tensor::ones(&[4])),
            None,
            true,
            BatchNormOptions::default(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "batch_norm: input [2, 3]: weight must be [3], got [4]"
        );
    }

    /// `python3 scripts/torch_expected.py norm`
    #[test]
    fn matches_pytorch() {
        let x = Tensor::from_vec(
            (0..3 * 4 * 3 * 2)
                .map(|i| ((i * 7 % 23) as f32 - 11.0) / 5.0)
                .collect(),
            &[3, 4, 3, 2],
        )
        .unwrap();
        let w = Tensor::from_vec(vec![0.5, 1.0, 1.5, 2.0], &[4]).unwrap();
        let b = Tensor::from_vec(vec![0.1, 0.2, -0.3, 0.0], &[4]).unwrap();
        let mut mean = Tensor::from_vec(vec![0.1, -0.1, 0.2, 0.0], &[4]).unwrap();
        let mut var = Tensor::from_vec(vec![1.0, 2.0, 0.5, 1.5], &[4]).unwrap();
        let options = BatchNormOptions {
            eps: 1e-3,
            momentum: 0.1,
        };
        let y = batch_norm(
            &x,
            Some((&mut mean, &mut var)),
            Some(&w),
            Some(&b),
            true,
            options,
        )
        .unwrap();
        let upstream = Tensor::from_vec(
            (0..y.numel())
                .map(|i| ((i * 5 % 7) as f32 - 3.0) / 3.0)
                .collect(),
            y.shape(),
        )
        .unwrap();
        let mut tape = Tape::new();
        let (xv, wv, bv) = (
            tape.param(x.clone()),
            tape.param(w.clone()),
            tape.param(b.clone()),
        );
        let (m0, v0) = (
            Tensor::from_vec(vec![0.1, -0.1, 0.2, 0.0], &[4]).unwrap(),
            Tensor::from_vec(vec![1.0, 2.0, 0.5, 1.5], &[4]).unwrap(),
        );
        let (yv, _) = tape
            .batch_norm(xv, Some(wv), Some(bv), Some((&m0, &v0)), true, options)
            .unwrap();
        let grads = tape.backward_with(yv, upstream).unwrap();
        let lrn = local_response_norm(
            &x,
            LrnOptions {
                size: 3,
                alpha: 0.3,
                beta: 0.75,
                k: 2.0,
            },
        )
        .unwrap();
        let stats = |t: &Tensor| {
            (
                t.data().iter().map(|&v| v as f64).sum::<f64>(),
                t.data().iter().map(|&v| (v as f64).powi(2)).sum::<f64>(),
            )
        };
        let got = [
            stats(&y).0,
            stats(&y).1,
            stats(grads.get(xv).unwrap()).1,
            stats(grads.get(wv).unwrap()).0,
            stats(grads.get(bv).unwrap()).0,
            stats(&mean).0,
            stats(&var).0,
            stats(&lrn).0,
            stats(&lrn).1,
        ];
        for (i, (g, e)) in got.iter().zip(PYTORCH_NORM).enumerate() {
            assert!(
                (g - e).abs() <= 1e-4 * e.abs().max(1.0),
                "statistic {i}: {g} vs PyTorch {e}"
            );
        }
    }

    /// Sums (and sums of squares) of y, dx, dw, db, the updated running mean and variance, and
    /// the LRN output, from PyTorch 2.15.
    const PYTORCH_NORM: [f64; 9] = [
        1.564621925e-07,
        1.374379870e+02,
        3.573520166e+01,
        1.316243671e+00,
        -3.333334029e-01,
        1.666666567e-01,
        5.209463894e+00,
        -1.194499210e+00,
        2.984949743e+01,
    ];
}
