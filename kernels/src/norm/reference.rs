//! Scalar reference normalisation, written to be read next to the formulas in [`crate::norm`].
//!
//! Batch statistics and gradient sums are accumulated in `f64` with two passes (mean first,
//! then squared deviations), so these are the numerically careful versions the fast kernels are
//! measured against. The functions assume their operands were checked (see [`crate::norm`]).

use super::{BatchNormGeometry, BatchNormGrads, BatchStats, LrnGeometry, RunningStats};

/// Index of element `i` of plane `(n, c)`.
fn at(g: &BatchNormGeometry, n: usize, c: usize, i: usize) -> usize {
    (n * g.shape.channels + c) * g.shape.plane_len() + i
}

/// Every index of channel `c`, image by image.
fn channel_indices(g: &BatchNormGeometry, c: usize) -> impl Iterator<Item = usize> + '_ {
    (0..g.shape.batch).flat_map(move |n| (0..g.shape.plane_len()).map(move |i| at(g, n, c, i)))
}

/// Batch mean and biased variance of channel `c`, in `f64`, two passes.
fn channel_mean_var(g: &BatchNormGeometry, input: &[f32], c: usize) -> (f64, f64) {
    let count = g.values_per_channel() as f64;
    let mean = channel_indices(g, c)
        .map(|i| f64::from(input[i]))
        .sum::<f64>()
        / count;
    let var = channel_indices(g, c)
        .map(|i| (f64::from(input[i]) - mean).powi(2))
        .sum::<f64>()
        / count;
    (mean, var)
}

pub fn batch_norm_forward_train(
    g: &BatchNormGeometry,
    input: &[f32],
    gamma: Option<&[f32]>,
    beta: Option<&[f32]>,
    mut running: Option<RunningStats<'_>>,
    output: &mut [f32],
) -> BatchStats {
    let channels = g.shape.channels;
    let mut saved = BatchStats {
        mean: vec![0.0; channels],
        inv_std: vec![0.0; channels],
    };
    let count = g.values_per_channel() as f64;
    for c in 0..channels {
        let (mean, var) = channel_mean_var(g, input, c);
        let inv_std = 1.0 / (var + f64::from(g.eps)).sqrt();
        let weight = gamma.map_or(1.0, |w| f64::from(w[c]));
        let bias = beta.map_or(0.0, |b| f64::from(b[c]));
        for i in channel_indices(g, c) {
            output[i] = ((f64::from(input[i]) - mean) * inv_std * weight + bias) as f32;
        }
        saved.mean[c] = mean as f32;
        saved.inv_std[c] = inv_std as f32;
        if let Some(running) = running.as_mut() {
            let momentum = f64::from(g.momentum);
            let unbiased_var = var * count / (count - 1.0);
            let blend = |old: f32, new: f64| (1.0 - momentum) * f64::from(old) + momentum * new;
            running.mean[c] = blend(running.mean[c], mean) as f32;
            running.var[c] = blend(running.var[c], unbiased_var) as f32;
        }
    }
    saved
}

pub fn batch_norm_forward_eval(
    g: &BatchNormGeometry,
    input: &[f32],
    gamma: Option<&[f32]>,
    beta: Option<&[f32]>,
    running_mean: &[f32],
    running_var: &[f32],
    output: &mut [f32],
) {
    for c in 0..g.shape.channels {
        let inv_std = 1.0 / (f64::from(running_var[c]) + f64::from(g.eps)).sqrt();
        let weight = gamma.map_or(1.0, |w| f64::from(w[c]));
        let bias = beta.map_or(0.0, |b| f64::from(b[c]));
        for i in channel_indices(g, c) {
            let centred = f64::from(input[i]) - f64::from(running_mean[c]);
            output[i] = (centred * inv_std * weight + bias) as f32;
        }
    }
}

/// Shared by both backward passes: `grad_beta = sum(dy)`, `grad_gamma = sum(dy * x_hat)` with
/// `x_hat = (x - mean) * inv_std`, and `grad_input` from `input_gradient(dy, x_hat, sums)`.
fn batch_norm_backward(
    g: &BatchNormGeometry,
    input: &[f32],
    grad_output: &[f32],
    stats: &BatchStats,
    grads: BatchNormGrads<'_>,
    input_gradient: impl Fn(usize, f64, f64, f64, f64) -> f64,
) {
    for c in 0..g.shape.channels {
        let (mean, inv_std) = (f64::from(stats.mean[c]), f64::from(stats.inv_std[c]));
        let x_hat = |i: usize| (f64::from(input[i]) - mean) * inv_std;
        let sum_dy: f64 = channel_indices(g, c)
            .map(|i| f64::from(grad_output[i]))
            .sum();
        let sum_dy_x_hat: f64 = channel_indices(g, c)
            .map(|i| f64::from(grad_output[i]) * x_hat(i))
            .sum();
        for i in channel_indices(g, c) {
            let dy = f64::from(grad_output[i]);
            grads.input[i] = input_gradient(c, dy, x_hat(i), sum_dy, sum_dy_x_hat) as f32;
        }
        grads.beta[c] = sum_dy as f32;
        grads.gamma[c] = sum_dy_x_hat as f32;
    }
}

pub fn batch_norm_backward_train(
    g: &BatchNormGeometry,
    input: &[f32],
    grad_output: &[f32],
    gamma: Option<&[f32]>,
    saved: &BatchStats,
    grads: BatchNormGrads<'_>,
) {
    let count = g.values_per_channel() as f64;
    let input_gradient = |c: usize, dy: f64, x_hat: f64, sum_dy: f64, sum_dy_x_hat: f64| {
        let weight = gamma.map_or(1.0, |w| f64::from(w[c]));
        weight * f64::from(saved.inv_std[c]) * (dy - sum_dy / count - x_hat * sum_dy_x_hat / count)
    };
    batch_norm_backward(g, input, grad_output, saved, grads, input_gradient);
}

pub fn batch_norm_backward_eval(
    g: &BatchNormGeometry,
    input: &[f32],
    grad_output: &[f32],
    gamma: Option<&[f32]>,
    running_mean: &[f32],
    running_var: &[f32],
    grads: BatchNormGrads<'_>,
) {
    let frozen = BatchStats {
        mean: running_mean.to_vec(),
        inv_std: running_var
            .iter()
            .map(|&v| (1.0 / (f64::from(v) + f64::from(g.eps)).sqrt()) as f32)
            .collect(),
    };
    let input_gradient = |c: usize, dy: f64, _: f64, _: f64, _: f64| {
        dy * gamma.map_or(1.0, |w| f64::from(w[c])) * f64::from(frozen.inv_std[c])
    };
    batch_norm_backward(g, input, grad_output, &frozen, grads, input_gradient);
}

/// `k + alpha / size * (sum of squares over the window of channel c)` at pixel `i` of image `n`.
fn lrn_denominator_base(g: &LrnGeometry, input: &[f32], n: usize, c: usize, i: usize) -> f64 {
    let plane = g.shape.plane_len();
    let (first, end) = g.window(c);
    let sum_of_squares: f64 = (first..end)
        .map(|cw| f64::from(input[(n * g.shape.channels + cw) * plane + i]).powi(2))
        .sum();
    f64::from(g.k) + f64::from(g.alpha) * (sum_of_squares / g.size as f64)
}

pub fn lrn_forward(g: &LrnGeometry, input: &[f32], output: &mut [f32]) {
    let plane = g.shape.plane_len();
    for n in 0..g.shape.batch {
        for c in 0..g.shape.channels {
            for i in 0..plane {
                let at = (n * g.shape.channels + c) * plane + i;
                let base = lrn_denominator_base(g, input, n, c, i);
                output[at] = (f64::from(input[at]) / base.powf(f64::from(g.beta))) as f32;
            }
        }
    }
}

pub fn lrn_backward(g: &LrnGeometry, input: &[f32], grad_output: &[f32], grad_input: &mut [f32]) {
    let plane = g.shape.plane_len();
    let beta = f64::from(g.beta);
    let cross_scale = 2.0 * f64::from(g.alpha) * beta / g.size as f64;
    for n in 0..g.shape.batch {
        for j in 0..g.shape.channels {
            for i in 0..plane {
                let at = |c: usize| (n * g.shape.channels + c) * plane + i;
                let base_j = lrn_denominator_base(g, input, n, j, i);
                let direct = f64::from(grad_output[at(j)]) * base_j.powf(-beta);
                let (first, end) = g.windows_containing(j);
                let through_neighbours: f64 = (first..end)
                    .map(|c| {
                        let base_c = lrn_denominator_base(g, input, n, c, i);
                        f64::from(grad_output[at(c)])
                            * f64::from(input[at(c)])
                            * base_c.powf(-beta - 1.0)
                    })
                    .sum();
                grad_input[at(j)] =
                    (direct - cross_scale * f64::from(input[at(j)]) * through_neighbours) as f32;
            }
        }
    }
}
