//! Batch normalisation (Ioffe and Szegedy 2015) as a function and as tape ops.

use convgrad_kernels::norm::{
    self as kernels, BatchNormGeometry, BatchNormGrads, Clamp, RunningStats,
};

use super::channels_shape;
use crate::autograd::{GradSink, Tape, Var};
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
}

/// Sends batch norm's gradients to x and, when present, weight and bias (inputs in that order).
fn send_grads(
    sink: &mut GradSink<'_>,
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
