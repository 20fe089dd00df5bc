//! Normalisation: batch normalisation (training and evaluation) and local response
//! normalisation across channels, forward and backward.
//!
//! Semantics are PyTorch's `BatchNorm2d` (also `BatchNorm1d` on `[N, C]` data, given as
//! `height = width = 1`) and `LocalResponseNorm`. Tensors are NCHW and contiguous; every
//! function here checks its shapes and slice lengths, runs the fast kernel, and overwrites its
//! outputs.
//!
//! | module | what |
//! |---|---|
//! | [`reference`](mod@reference) | scalar loops in `f64`: the definitions and the test oracle |
//! | `batch` | statistics per channel (rayon over channels, `f32x8` sums reduced in `f64`, two passes), then the per-element work per plane (rayon over planes, `f32x8`) |
//! | `small_planes` | the same passes for planes under 8 values (1 x 1, 2 x 2, `BatchNorm1d`): along each image's row of `C * P` values, with per-position sums in `f64` |
//! | [`Clamp`] | the ReLU or ReLU6 after a BatchNorm, run inside its passes (`*_clamped`) |
//! | `lrn` | rayon over images, `f32x8` over eight pixels, all channels of those pixels at once |

mod batch;
mod clamp;
#[cfg(test)]
mod clamped_tests;
mod lrn;
pub mod reference;
mod small_planes;
#[cfg(test)]
mod tests;

pub use clamp::Clamp;

use crate::error::check_len;
use crate::pool::NchwShape;
use crate::KernelError;

/// Shape and hyper-parameters of batch normalisation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormGeometry {
    pub shape: NchwShape,
    /// Added to the variance before the square root (PyTorch's default `1e-5`; GoogLeNet and
    /// Inception-v3 use `1e-3`).
    pub eps: f32,
    /// Weight of the batch statistics in the running ones:
    /// `running = (1 - momentum) * running + momentum * batch` (PyTorch's default `0.1`).
    pub momentum: f32,
}

impl BatchNormGeometry {
    /// PyTorch's defaults: `eps = 1e-5`, `momentum = 0.1`.
    pub fn new(shape: NchwShape) -> Self {
        BatchNormGeometry {
            shape,
            eps: 1e-5,
            momentum: 0.1,
        }
    }

    /// Values per channel: `batch * height * width`.
    pub fn values_per_channel(&self) -> usize {
        self.shape.batch * self.shape.plane_len()
    }
}

/// What training-mode batch normalisation saves for its backward: per channel, the batch mean
/// and `1 / sqrt(biased variance + eps)`.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchStats {
    pub mean: Vec<f32>,
    pub inv_std: Vec<f32>,
}

/// Running statistics updated in place by a training forward pass. The variance folded in is
/// the unbiased one, `biased * n / (n - 1)` with `n` values per channel, as in PyTorch.
#[derive(Debug)]
pub struct RunningStats<'a> {
    pub mean: &'a mut [f32],
    pub var: &'a mut [f32],
}

/// Where a batch normalisation backward writes: `d loss / d input` (NCHW) and, per channel,
/// `d loss / d gamma` and `d loss / d beta` (computed whether or not the layer is affine).
#[derive(Debug)]
pub struct BatchNormGrads<'a> {
    pub input: &'a mut [f32],
    pub gamma: &'a mut [f32],
    pub beta: &'a mut [f32],
}

fn with_context(context: &impl std::fmt::Debug) -> impl Fn(KernelError) -> KernelError + '_ {
    move |e| KernelError::new(format!("{context:?}: {}", e.message()))
}

fn check_channel_params(
    g: &BatchNormGeometry,
    params: &[(&str, Option<usize>)],
) -> Result<(), KernelError> {
    for &(name, len) in params {
        if let Some(len) = len {
            check_len(name, len, g.shape.channels).map_err(with_context(g))?;
        }
    }
    Ok(())
}

fn check_batch_norm(
    g: &BatchNormGeometry,
    tensors: &[(&str, usize)],
    training: bool,
) -> Result<(), KernelError> {
    let needed = if training { 2 } else { 1 };
    if g.values_per_channel() < needed {
        return Err(KernelError::new(format!(
            "{g:?}: batch normalisation needs at least {needed} value(s) per channel{}, got {}",
            if training { " when training" } else { "" },
            g.values_per_channel()
        )));
    }
    for &(name, len) in tensors {
        check_len(name, len, g.shape.len()).map_err(with_context(g))?;
    }
    Ok(())
}

/// Training-mode batch normalisation: normalises each channel with its batch mean and biased
/// variance, `output = (input - mean) / sqrt(var + eps) * gamma + beta` (`gamma` defaults to 1
/// and `beta` to 0), updates `running` when given, and returns the statistics backward needs.
pub fn batch_norm_forward_train(
    g: &BatchNormGeometry,
    input: &[f32],
    gamma: Option<&[f32]>,
    beta: Option<&[f32]>,
    running: Option<RunningStats<'_>>,
    output: &mut [f32],
) -> Result<BatchStats, KernelError> {
    forward_train(g, input, gamma, beta, running, None, output)
}

/// [`batch_norm_forward_train`] followed by `clamp` in the same pass:
/// `output = clamp(batch_norm(input))`, equal bit for bit to the two run one after the other.
pub fn batch_norm_forward_train_clamped(
    g: &BatchNormGeometry,
    clamp: Clamp,
    input: &[f32],
    gamma: Option<&[f32]>,
    beta: Option<&[f32]>,
    running: Option<RunningStats<'_>>,
    output: &mut [f32],
) -> Result<BatchStats, KernelError> {
    forward_train(g, input, gamma, beta, running, Some(clamp), output)
}

fn forward_train(
    g: &BatchNormGeometry,
    input: &[f32],
    gamma: Option<&[f32]>,
    beta: Option<&[f32]>,
    running: Option<RunningStats<'_>>,
    clamp: Option<Clamp>,
    output: &mut [f32],
) -> Result<BatchStats, KernelError> {
    check_batch_norm(g, &[("input", input.len()), ("output", output.len())], true)?;
    check_channel_params(
        g,
        &[
            ("gamma", gamma.map(<[f32]>::len)),
            ("beta", beta.map(<[f32]>::len)),
            ("running mean", running.as_ref().map(|r| r.mean.len())),
            ("running var", running.as_ref().map(|r| r.var.len())),
        ],
    )?;
    Ok(batch::forward_train(
        g, input, gamma, beta, running, clamp, output,
    ))
}

/// Evaluation-mode batch normalisation with the running statistics:
/// `output = (input - running_mean) / sqrt(running_var + eps) * gamma + beta`.
pub fn batch_norm_forward_eval(
    g: &BatchNormGeometry,
    input: &[f32],
    gamma: Option<&[f32]>,
    beta: Option<&[f32]>,
    running_mean: &[f32],
    running_var: &[f32],
    output: &mut [f32],
) -> Result<(), KernelError> {
    check_batch_norm(
        g,
        &[("input", input.len()), ("output", output.len())],
        false,
    )?;
    check_channel_params(
        g,
        &[
            ("gamma", gamma.map(<[f32]>::len)),
            ("beta", beta.map(<[f32]>::len)),
            ("running mean", Some(running_mean.len())),
            ("running var", Some(running_var.len())),
        ],
    )?;
    batch::forward_eval(g, input, gamma, beta, running_mean, running_var, output);
    Ok(())
}

/// Backward of [`batch_norm_forward_train`], with `n` values per channel and
/// `x_hat = (input - mean) * inv_std`:
/// `grad_beta = sum(dy)`, `grad_gamma = sum(dy * x_hat)`, and
/// `grad_input = gamma * inv_std * (dy - grad_beta / n - x_hat * grad_gamma / n)`.
pub fn batch_norm_backward_train(
    g: &BatchNormGeometry,
    input: &[f32],
    grad_output: &[f32],
    gamma: Option<&[f32]>,
    saved: &BatchStats,
    grads: BatchNormGrads<'_>,
) -> Result<(), KernelError> {
    backward_train(g, input, grad_output, None, gamma, saved, grads)
}

/// Backward of [`batch_norm_forward_train_clamped`], given its `output`: the backward above
/// applied to `dy * clamp'(output)`, equal bit for bit to the clamp's backward followed by
/// [`batch_norm_backward_train`]. The masked gradient is built in `grads.input` and summed plane
/// by plane while in cache, so the fused pair reads and writes two fewer tensors than the two ops.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward_train_clamped(
    g: &BatchNormGeometry,
    clamp: Clamp,
    input: &[f32],
    output: &[f32],
    grad_output: &[f32],
    gamma: Option<&[f32]>,
    saved: &BatchStats,
    grads: BatchNormGrads<'_>,
) -> Result<(), KernelError> {
    check_len("output", output.len(), g.shape.len()).map_err(with_context(g))?;
    backward_train(
        g,
        input,
        grad_output,
        Some((clamp, output)),
        gamma,
        saved,
        grads,
    )
}

fn backward_train(
    g: &BatchNormGeometry,
    input: &[f32],
    grad_output: &[f32],
    clamp: Option<(Clamp, &[f32])>,
    gamma: Option<&[f32]>,
    saved: &BatchStats,
    grads: BatchNormGrads<'_>,
) -> Result<(), KernelError> {
    check_batch_norm(
        g,
        &[
            ("input", input.len()),
            ("grad_output", grad_output.len()),
            ("grad_input", grads.input.len()),
        ],
        true,
    )?;
    check_channel_params(
        g,
        &[
            ("gamma", gamma.map(<[f32]>::len)),
            ("saved mean", Some(saved.mean.len())),
            ("saved inv_std", Some(saved.inv_std.len())),
            ("grad_gamma", Some(grads.gamma.len())),
            ("grad_beta", Some(grads.beta.len())),
        ],
    )?;
    batch::backward_train(g, input, grad_output, gamma, saved, clamp, grads);
    Ok(())
}

/// Backward of [`batch_norm_forward_eval`]: the running statistics are constants, so the layer
/// is a per-channel affine map. `grad_input = dy * gamma / sqrt(running_var + eps)`,
/// `grad_gamma = sum(dy * x_hat)` with `x_hat` from the running statistics, `grad_beta = sum(dy)`.
pub fn batch_norm_backward_eval(
    g: &BatchNormGeometry,
    input: &[f32],
    grad_output: &[f32],
    gamma: Option<&[f32]>,
    running_mean: &[f32],
    running_var: &[f32],
    grads: BatchNormGrads<'_>,
) -> Result<(), KernelError> {
    check_batch_norm(
        g,
        &[
            ("input", input.len()),
            ("grad_output", grad_output.len()),
            ("grad_input", grads.input.len()),
        ],
        false,
    )?;
    check_channel_params(
        g,
        &[
            ("gamma", gamma.map(<[f32]>::len)),
            ("running mean", Some(running_mean.len())),
            ("running var", Some(running_var.len())),
            ("grad_gamma", Some(grads.gamma.len())),
            ("grad_beta", Some(grads.beta.len())),
        ],
    )?;
    let frozen = batch::frozen_stats(g, running_mean, running_var);
    batch::backward_eval(g, input, grad_output, gamma, &frozen, grads);
    Ok(())
}

/// Shape and hyper-parameters of local response normalisation across channels
/// (PyTorch's `LocalResponseNorm(size, alpha, beta, k)`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LrnGeometry {
    pub shape: NchwShape,
    /// Channels in the window: `size / 2` before the channel and `(size - 1) / 2` after it.
    pub size: usize,
    pub alpha: f32,
    pub beta: f32,
    pub k: f32,
}

impl LrnGeometry {
    /// PyTorch's defaults: `alpha = 1e-4`, `beta = 0.75`, `k = 1`. (AlexNet used `size = 5,
    /// alpha = 1e-4, beta = 0.75, k = 2`.)
    pub fn new(shape: NchwShape, size: usize) -> Self {
        LrnGeometry {
            shape,
            size,
            alpha: 1e-4,
            beta: 0.75,
            k: 1.0,
        }
    }

    /// The channels `[first, end)` in the window of channel `channel`.
    pub fn window(&self, channel: usize) -> (usize, usize) {
        let first = channel.saturating_sub(self.size / 2);
        let end = (channel + (self.size - 1) / 2 + 1).min(self.shape.channels);
        (first, end)
    }

    /// The channels `[first, end)` whose windows contain channel `channel` (the window
    /// mirrored), which is where the backward pass gathers from.
    pub fn windows_containing(&self, channel: usize) -> (usize, usize) {
        let first = channel.saturating_sub((self.size - 1) / 2);
        let end = (channel + self.size / 2 + 1).min(self.shape.channels);
        (first, end)
    }
}

fn check_lrn(g: &LrnGeometry, tensors: &[(&str, usize)]) -> Result<(), KernelError> {
    if g.size == 0 {
        return Err(KernelError::new(format!(
            "{g:?}: the window must hold at least one channel"
        )));
    }
    for &(name, len) in tensors {
        check_len(name, len, g.shape.len()).map_err(with_context(g))?;
    }
    Ok(())
}

/// Local response normalisation:
/// `output[c] = input[c] / (k + alpha / size * sum over the window of input[c']^2) ^ beta`,
/// the window being `size` channels around `c`, zero beyond the first and last channel.
///
/// ```
/// use convgrad_kernels::norm::{lrn_forward, LrnGeometry};
/// use convgrad_kernels::pool::NchwShape;
/// // Two channels of one pixel, size 2: channel 0's window is {0} (one zero-padded channel
/// // before it), channel 1's is {0, 1}.
/// let g = LrnGeometry { alpha: 2.0, beta: 1.0, k: 1.0, ..LrnGeometry::new(NchwShape::new(1, 2, (1, 1)), 2) };
/// let mut output = [0.0f32; 2];
/// lrn_forward(&g, &[1.0, 2.0], &mut output).unwrap();
/// // 1 / (1 + 2 / 2 * 1^2) and 2 / (1 + 2 / 2 * (1^2 + 2^2)).
/// assert!((output[0] - 0.5).abs() < 1e-6 && (output[1] - 1.0 / 3.0).abs() < 1e-6);
/// ```
pub fn lrn_forward(g: &LrnGeometry, input: &[f32], output: &mut [f32]) -> Result<(), KernelError> {
    check_lrn(g, &[("input", input.len()), ("output", output.len())])?;
    lrn::forward(g, input, output);
    Ok(())
}

/// Backward of [`lrn_forward`], with `s[c] = k + alpha / size * sum over the window of c`:
/// `grad_input[j] = dy[j] * s[j]^-beta - 2 * alpha * beta / size * input[j] *
/// sum over the windows containing j of dy[c] * input[c] * s[c]^(-beta - 1)`.
pub fn lrn_backward(
    g: &LrnGeometry,
    input: &[f32],
    grad_output: &[f32],
    grad_input: &mut [f32],
) -> Result<(), KernelError> {
    check_lrn(
        g,
        &[
            ("input", input.len()),
            ("grad_output", grad_output.len()),
            ("grad_input", grad_input.len()),
        ],
    )?;
    lrn::backward(g, input, grad_output, grad_input);
    Ok(())
}
