//! Fast batch normalisation.
//!
//! Every pass is one of two shapes:
//! - a reduction per channel (rayon over channels): each channel's `N` planes are summed with
//!   `f32x8` accumulators, plane by plane, and the plane sums are added in `f64`. Statistics take
//!   two such passes, the mean and then the squared deviations from it, as the reference does;
//!   the backward pass takes one, `sum(dy)` and `sum(dy * (x - mean))` together.
//! - an elementwise affine map per plane (rayon over planes, `f32x8`), whose per-channel
//!   coefficients come from those sums: forward `(x - mean) * scale + shift`, backward
//!   `dy * a + (x - mean) * b + d`.
//!
//! Centring on the mean before scaling keeps inputs with a large common offset accurate.
//!
//! In training, the ReLU or ReLU6 after a BatchNorm can run inside these passes ([`Clamp`]):
//! forward clamps in the affine map; backward masks `dy` plane by plane into the input gradient's
//! buffer, sums each masked plane while it is in cache, then finishes the affine map in place.

use rayon::prelude::*;
use wide::f32x8;

use super::small_planes;
use super::{BatchNormGeometry, BatchNormGrads, BatchStats, Clamp, RunningStats};
use crate::lanes::{load, planes_per_task, store, sum, LANES};

/// The `N` planes of channel `c`.
fn channel_planes<'a>(
    g: &BatchNormGeometry,
    data: &'a [f32],
    c: usize,
) -> impl Iterator<Item = &'a [f32]> {
    let (channels, plane) = (g.shape.channels, g.shape.plane_len());
    (0..g.shape.batch).map(move |n| &data[(n * channels + c) * plane..][..plane])
}

/// How many channels one rayon task should reduce.
fn channels_per_task(g: &BatchNormGeometry) -> usize {
    (16 * 1024 / g.values_per_channel().max(1)).max(1)
}

/// `sum((x - centre)^2)` over one plane.
fn sum_squared_deviations(values: &[f32], centre: f32) -> f64 {
    let centre_lanes = f32x8::splat(centre);
    let mut accumulators = [f32x8::ZERO; 2];
    let mut pairs = values.chunks_exact(2 * LANES);
    for pair in &mut pairs {
        for (half, acc) in accumulators.iter_mut().enumerate() {
            let deviation = load(&pair[half * LANES..]) - centre_lanes;
            *acc = deviation.mul_add(deviation, *acc);
        }
    }
    let vector_part = (accumulators[0] + accumulators[1]).reduce_add();
    let tail: f32 = pairs
        .remainder()
        .iter()
        .map(|&x| (x - centre) * (x - centre))
        .sum();
    f64::from(vector_part) + f64::from(tail)
}

/// `sum(dy * (x - centre))` over one plane.
fn sum_centred_products(grad: &[f32], values: &[f32], centre: f32) -> f64 {
    let centre_lanes = f32x8::splat(centre);
    let mut acc = f32x8::ZERO;
    let mut grad_blocks = grad.chunks_exact(LANES);
    let mut value_blocks = values.chunks_exact(LANES);
    for (dy, x) in (&mut grad_blocks).zip(&mut value_blocks) {
        acc = load(dy).mul_add(load(x) - centre_lanes, acc);
    }
    let tail: f32 = (grad_blocks.remainder().iter())
        .zip(value_blocks.remainder())
        .map(|(&dy, &x)| dy * (x - centre))
        .sum();
    f64::from(acc.reduce_add()) + f64::from(tail)
}

/// A centre given as `high + low`, two `f32`s, so that an `f64` mean can be subtracted from
/// `f32` data without rounding it first: `(x - high) - low`. For data with a large common offset
/// and a small spread, `1 / std` would otherwise magnify the mean's rounding error.
#[derive(Clone, Copy)]
struct Centre {
    high: f32,
    low: f32,
}

impl Centre {
    fn new(value: f64) -> Self {
        let high = value as f32;
        Centre {
            high,
            low: (value - f64::from(high)) as f32,
        }
    }
}

/// `output = clamp((input - centre) * scale + shift)` over one plane.
fn affine_plane(
    input: &[f32],
    output: &mut [f32],
    centre: Centre,
    scale: f32,
    shift: f32,
    clamp: Option<Clamp>,
) {
    match clamp {
        None => affine_plane_with(input, output, centre, scale, shift, |v| v, |v| v),
        Some(c) => affine_plane_with(
            input,
            output,
            centre,
            scale,
            shift,
            |v| c.apply_lanes(v),
            |v| c.apply(v),
        ),
    }
}

/// The loop of [`affine_plane`], with the clamp given as its vector and scalar forms. Whole
/// vectors first, then the tail one value at a time with the same operations (planes of 1, 4 or
/// 49 values are common at the end of a network, where copying partial vectors would cost more
/// than the arithmetic).
#[inline(always)]
fn affine_plane_with(
    input: &[f32],
    output: &mut [f32],
    centre: Centre,
    scale: f32,
    shift: f32,
    clamp_lanes: impl Fn(f32x8) -> f32x8,
    clamp: impl Fn(f32) -> f32,
) {
    let (high, low) = (f32x8::splat(centre.high), f32x8::splat(centre.low));
    let (scale_lanes, shift_lanes) = (f32x8::splat(scale), f32x8::splat(shift));
    let mut inputs = input.chunks_exact(LANES);
    let mut outputs = output.chunks_exact_mut(LANES);
    for (x, y) in (&mut inputs).zip(&mut outputs) {
        let centred = (load(x) - high) - low;
        store(clamp_lanes(centred.mul_add(scale_lanes, shift_lanes)), y);
    }
    for (&x, y) in inputs.remainder().iter().zip(outputs.into_remainder()) {
        let centred = (x - centre.high) - centre.low;
        *y = clamp(centred.mul_add(scale, shift));
    }
}

/// Per channel, the mean and the biased variance about it: two passes over the channel's planes.
fn mean_and_var(g: &BatchNormGeometry, input: &[f32]) -> Vec<(f64, f64)> {
    let count = g.values_per_channel() as f64;
    (0..g.shape.channels)
        .into_par_iter()
        .with_min_len(channels_per_task(g))
        .map(|c| {
            let mean = channel_planes(g, input, c).map(sum).sum::<f64>() / count;
            // Deviations are taken from the f32 mean; removing the square of its rounding
            // error gives the variance about the exact mean.
            let centre = mean as f32;
            let squares: f64 = channel_planes(g, input, c)
                .map(|plane| sum_squared_deviations(plane, centre))
                .sum();
            let var = (squares / count - (mean - f64::from(centre)).powi(2)).max(0.0);
            (mean, var)
        })
        .collect()
}

pub(super) fn forward_train(
    g: &BatchNormGeometry,
    input: &[f32],
    gamma: Option<&[f32]>,
    beta: Option<&[f32]>,
    running: Option<RunningStats<'_>>,
    clamp: Option<Clamp>,
    output: &mut [f32],
) -> BatchStats {
    let count = g.values_per_channel() as f64;
    let mean_and_var = if small_planes::applies(g) {
        small_planes::mean_and_var(g, input)
    } else {
        mean_and_var(g, input)
    };

    let inv_std: Vec<f64> = mean_and_var
        .iter()
        .map(|&(_, var)| 1.0 / (var + f64::from(g.eps)).sqrt())
        .collect();
    let saved = BatchStats {
        mean: mean_and_var.iter().map(|&(mean, _)| mean as f32).collect(),
        inv_std: inv_std.iter().map(|&s| s as f32).collect(),
    };
    if let Some(running) = running {
        let momentum = f64::from(g.momentum);
        let blend =
            |old: f32, new: f64| ((1.0 - momentum) * f64::from(old) + momentum * new) as f32;
        for (c, &(mean, var)) in mean_and_var.iter().enumerate() {
            running.mean[c] = blend(running.mean[c], mean);
            running.var[c] = blend(running.var[c], var * count / (count - 1.0));
        }
    }
    let scale: Vec<f32> = (0..g.shape.channels)
        .map(|c| (inv_std[c] * gamma.map_or(1.0, |w| f64::from(w[c]))) as f32)
        .collect();
    let centres: Vec<Centre> = mean_and_var
        .iter()
        .map(|&(mean, _)| Centre::new(mean))
        .collect();
    normalise(g, input, output, &centres, &scale, beta, clamp);
    saved
}

/// `output = clamp((input - centre[c]) * scale[c] + beta[c])`, plane by plane.
fn normalise(
    g: &BatchNormGeometry,
    input: &[f32],
    output: &mut [f32],
    centre: &[Centre],
    scale: &[f32],
    beta: Option<&[f32]>,
    clamp: Option<Clamp>,
) {
    let (channels, plane) = (g.shape.channels, g.shape.plane_len());
    if small_planes::applies(g) {
        let high: Vec<f32> = centre.iter().map(|c| c.high).collect();
        let low: Vec<f32> = centre.iter().map(|c| c.low).collect();
        let shift = beta.map_or_else(|| vec![0.0; channels], <[f32]>::to_vec);
        let (centre, coefficients) = ((&high[..], &low[..]), (scale, &shift[..]));
        return small_planes::normalise(g, input, output, centre, coefficients, clamp);
    }
    output
        .par_chunks_mut(plane)
        .zip(input.par_chunks(plane))
        .enumerate()
        .with_min_len(planes_per_task(plane))
        .for_each(|(index, (output_plane, input_plane))| {
            let c = index % channels;
            let shift = beta.map_or(0.0, |b| b[c]);
            affine_plane(input_plane, output_plane, centre[c], scale[c], shift, clamp);
        });
}

/// The running statistics in the form backward uses: the mean and `1 / sqrt(var + eps)`.
pub(super) fn frozen_stats(
    g: &BatchNormGeometry,
    running_mean: &[f32],
    running_var: &[f32],
) -> BatchStats {
    BatchStats {
        mean: running_mean.to_vec(),
        inv_std: running_var
            .iter()
            .map(|&var| (1.0 / (f64::from(var) + f64::from(g.eps)).sqrt()) as f32)
            .collect(),
    }
}

pub(super) fn forward_eval(
    g: &BatchNormGeometry,
    input: &[f32],
    gamma: Option<&[f32]>,
    beta: Option<&[f32]>,
    running_mean: &[f32],
    running_var: &[f32],
    output: &mut [f32],
) {
    let frozen = frozen_stats(g, running_mean, running_var);
    let scale: Vec<f32> = (0..g.shape.channels)
        .map(|c| frozen.inv_std[c] * gamma.map_or(1.0, |w| w[c]))
        .collect();
    let centres: Vec<Centre> = (frozen.mean.iter())
        .map(|&mean| Centre::new(f64::from(mean)))
        .collect();
    normalise(g, input, output, &centres, &scale, beta, None);
}

/// Per channel, `(sum(dy), sum(dy * (x - mean)))`.
fn gradient_sums(
    g: &BatchNormGeometry,
    input: &[f32],
    grad_output: &[f32],
    stats: &BatchStats,
) -> Vec<(f64, f64)> {
    (0..g.shape.channels)
        .into_par_iter()
        .with_min_len(channels_per_task(g))
        .map(|c| {
            channel_planes(g, grad_output, c)
                .zip(channel_planes(g, input, c))
                .map(|(dy, x)| (sum(dy), sum_centred_products(dy, x, stats.mean[c])))
                .fold((0.0, 0.0), |(a, b), (da, db)| (a + da, b + db))
        })
        .collect()
}

/// Writes `dy * clamp'(y)` into `masked`, plane by plane, and returns per channel the sums
/// [`gradient_sums`] would return for that masked gradient, added in the same order. Each plane is
/// summed right after it is written, while it is still in cache.
fn masked_gradient_sums(
    g: &BatchNormGeometry,
    input: &[f32],
    grad_output: &[f32],
    (clamp, output): (Clamp, &[f32]),
    stats: &BatchStats,
    masked: &mut [f32],
) -> Vec<(f64, f64)> {
    let (channels, plane) = (g.shape.channels, g.shape.plane_len());
    let per_plane: Vec<(f64, f64)> = masked
        .par_chunks_mut(plane)
        .zip(grad_output.par_chunks(plane))
        .zip(output.par_chunks(plane))
        .zip(input.par_chunks(plane))
        .enumerate()
        .with_min_len(planes_per_task(plane))
        .map(|(index, (((masked_plane, dy), y), x))| {
            mask_plane(clamp, dy, y, masked_plane);
            let mean = stats.mean[index % channels];
            (
                sum(masked_plane),
                sum_centred_products(masked_plane, x, mean),
            )
        })
        .collect();
    (0..channels)
        .map(|c| {
            (0..g.shape.batch)
                .map(|n| per_plane[n * channels + c])
                .fold((0.0, 0.0), |(a, b), (da, db)| (a + da, b + db))
        })
        .collect()
}

/// `masked = dy * clamp'(y)` over one plane.
fn mask_plane(clamp: Clamp, grad: &[f32], output: &[f32], masked: &mut [f32]) {
    let mut grads = grad.chunks_exact(LANES);
    let mut outputs = output.chunks_exact(LANES);
    let mut targets = masked.chunks_exact_mut(LANES);
    for ((dy, y), m) in (&mut grads).zip(&mut outputs).zip(&mut targets) {
        store(load(dy) * clamp.derivative_lanes(load(y)), m);
    }
    let tails = (grads.remainder().iter()).zip(outputs.remainder());
    for ((&dy, &y), m) in tails.zip(targets.into_remainder()) {
        *m = dy * clamp.derivative_at_output(y);
    }
}

/// Per channel, the `(a, b, d)` of `grad_input = dy * a + (x - mean) * b + d`.
type Coefficients = (f32, f32, f32);

/// `grad_input = dy * a + (x - mean) * b + d` over one plane; `dy` is read from `grad`, or from
/// `grad_input` itself (overwritten in place) when `grad` is `None`.
fn input_gradient_plane(
    grad_input: &mut [f32],
    grad: Option<&[f32]>,
    input: &[f32],
    mean: f32,
    (a, b, d): Coefficients,
) {
    let (a_lanes, b_lanes, d_lanes) = (f32x8::splat(a), f32x8::splat(b), f32x8::splat(d));
    let mean_lanes = f32x8::splat(mean);
    let mut inputs = input.chunks_exact(LANES);
    let mut targets = grad_input.chunks_exact_mut(LANES);
    for (i, (x, gi)) in (&mut inputs).zip(&mut targets).enumerate() {
        let dy = load(grad.map_or(&*gi, |grad| &grad[i * LANES..]));
        let centred = load(x) - mean_lanes;
        store(dy.mul_add(a_lanes, centred.mul_add(b_lanes, d_lanes)), gi);
    }
    let done = input.len() - inputs.remainder().len();
    for (i, (&x, gi)) in (inputs.remainder().iter())
        .zip(targets.into_remainder())
        .enumerate()
    {
        let dy = grad.map_or(*gi, |grad| grad[done + i]);
        *gi = dy.mul_add(a, (x - mean).mul_add(b, d));
    }
}

/// Fills `grads` from the per-channel sums, with `grad_input = dy * a + (x - mean) * b + d`
/// and `(a, b, d)` given per channel by `coefficients(c, sum_dy, sum_dy_centred)`. With a
/// clamp, `dy` is first multiplied by the clamp's derivative at the saved `output`.
fn backward_with(
    g: &BatchNormGeometry,
    input: &[f32],
    grad_output: &[f32],
    clamp: Option<(Clamp, &[f32])>,
    stats: &BatchStats,
    grads: BatchNormGrads<'_>,
    coefficients: impl Fn(usize, f64, f64) -> Coefficients,
) {
    let small = small_planes::applies(g);
    let sums = match clamp {
        _ if small => {
            let mask = clamp.map(|(clamp, output)| (clamp, output, &mut *grads.input));
            small_planes::gradient_sums(g, input, grad_output, mask, &stats.mean)
        }
        None => gradient_sums(g, input, grad_output, stats),
        Some(clamp) => masked_gradient_sums(g, input, grad_output, clamp, stats, grads.input),
    };
    let mut per_channel = Vec::with_capacity(g.shape.channels);
    for (c, &(sum_dy, sum_dy_centred)) in sums.iter().enumerate() {
        grads.beta[c] = sum_dy as f32;
        grads.gamma[c] = (sum_dy_centred * f64::from(stats.inv_std[c])) as f32;
        per_channel.push(coefficients(c, sum_dy, sum_dy_centred));
    }
    // With a clamp, the masked gradient already sits in `grads.input`.
    let unmasked = clamp.is_none().then_some(grad_output);
    if small {
        let mean = &stats.mean;
        small_planes::input_gradient(g, grads.input, unmasked, input, mean, &per_channel);
        return;
    }
    let (channels, plane) = (g.shape.channels, g.shape.plane_len());
    grads
        .input
        .par_chunks_mut(plane)
        .zip(input.par_chunks(plane))
        .enumerate()
        .with_min_len(planes_per_task(plane))
        .for_each(|(index, (grad_input_plane, input_plane))| {
            let c = index % channels;
            let grad_plane = unmasked.map(|grad| &grad[index * plane..][..plane]);
            input_gradient_plane(
                grad_input_plane,
                grad_plane,
                input_plane,
                stats.mean[c],
                per_channel[c],
            );
        });
}

pub(super) fn backward_train(
    g: &BatchNormGeometry,
    input: &[f32],
    grad_output: &[f32],
    gamma: Option<&[f32]>,
    saved: &BatchStats,
    clamp: Option<(Clamp, &[f32])>,
    grads: BatchNormGrads<'_>,
) {
    let count = g.values_per_channel() as f64;
    // grad_input = k * (dy - sum_dy / n - (x - mean) * inv_std^2 * sum_dy_centred / n),
    // with k = gamma * inv_std.
    let coefficients = |c: usize, sum_dy: f64, sum_dy_centred: f64| {
        let inv_std = f64::from(saved.inv_std[c]);
        let k = gamma.map_or(1.0, |w| f64::from(w[c])) * inv_std;
        let projection = sum_dy_centred * inv_std * inv_std / count;
        (
            k as f32,
            (-k * projection) as f32,
            (-k * sum_dy / count) as f32,
        )
    };
    backward_with(g, input, grad_output, clamp, saved, grads, coefficients);
}

pub(super) fn backward_eval(
    g: &BatchNormGeometry,
    input: &[f32],
    grad_output: &[f32],
    gamma: Option<&[f32]>,
    frozen: &BatchStats,
    grads: BatchNormGrads<'_>,
) {
    let coefficients = |c: usize, _: f64, _: f64| {
        let k = gamma.map_or(1.0, |w| w[c]) * frozen.inv_std[c];
        (k, 0.0, 0.0)
    };
    backward_with(g, input, grad_output, None, frozen, grads, coefficients);
}
