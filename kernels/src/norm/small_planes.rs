//! Batch normalisation on planes of fewer than [`MAX_PLANE`] values (the 1 x 1 and 2 x 2 maps at
//! the end of a network, and `BatchNorm1d` on `[N, C]` data).
//!
//! Plane by plane, as `batch.rs` works, such data is all overhead: a 1 x 1 plane is one value,
//! and a layer of 960 channels at batch 32 is 30 720 rayon items and vector set-ups of one value
//! each (25 ns per value backward, against 0.4 ns on 8 x 8 planes). Here each image's `C * P`
//! values are one contiguous row, and every pass runs along that row with a coefficient per
//! position (its channel's, repeated over the channel's `P` pixels):
//! - sums over the batch are kept per position in `f64`, rayon splitting the row, and folded
//!   into channels at the end;
//! - the per-element maps run row by row, `f32x8` along it, rayon over images.
//!
//! The arithmetic per element is `batch.rs`'s (deviations and products in `f32`, sums in `f64`),
//! so results agree with it to rounding, and the clamped passes still equal the plain ones
//! followed by the clamp bit for bit.

use rayon::prelude::*;
use wide::f32x8;

use super::{BatchNormGeometry, Clamp};
use crate::lanes::{load, store, LANES};

/// Largest plane (in values) served here: below one vector of pixels per plane.
pub(super) const MAX_PLANE: usize = LANES - 1;

/// Fewest row positions per rayon task of a reduction.
const MIN_POSITIONS_PER_TASK: usize = 256;

/// Whether `g`'s planes are small enough for this module.
pub(super) fn applies(g: &BatchNormGeometry) -> bool {
    g.shape.plane_len() <= MAX_PLANE
}

/// `(C * P, P)`: the length of an image's row and of a plane.
fn row_and_plane(g: &BatchNormGeometry) -> (usize, usize) {
    let plane = g.shape.plane_len();
    (g.shape.channels * plane, plane)
}

/// `sums[j] = sum over images n of term(row n)[j]`, in `f64`, rayon over ranges of `j`.
fn batch_sums(
    g: &BatchNormGeometry,
    term: impl Fn(usize, std::ops::Range<usize>, &mut [f64]) + Sync,
) -> Vec<f64> {
    let (row, _) = row_and_plane(g);
    let mut sums = vec![0.0f64; row];
    let per_task = row
        .div_ceil(2 * rayon::current_num_threads())
        .max(MIN_POSITIONS_PER_TASK);
    sums.par_chunks_mut(per_task)
        .enumerate()
        .for_each(|(task, sums)| {
            let start = task * per_task;
            for n in 0..g.shape.batch {
                term(n, start..start + sums.len(), sums);
            }
        });
    sums
}

/// Adds the `P` positions of each channel: per-position sums to per-channel ones.
fn fold_channels(sums: &[f64], plane: usize) -> Vec<f64> {
    sums.chunks_exact(plane)
        .map(|pixels| pixels.iter().sum())
        .collect()
}

/// Each channel's value repeated over its `P` positions.
fn per_position(values: impl Iterator<Item = f32>, plane: usize) -> Vec<f32> {
    values
        .flat_map(|value| std::iter::repeat_n(value, plane))
        .collect()
}

/// Per channel, the mean and the biased variance about it (as `batch::forward_train`).
pub(super) fn mean_and_var(g: &BatchNormGeometry, input: &[f32]) -> Vec<(f64, f64)> {
    let (row, plane) = row_and_plane(g);
    let count = g.values_per_channel() as f64;
    let sums = batch_sums(g, |n, range, sums| {
        let values = &input[n * row..][range];
        for (sum, &x) in sums.iter_mut().zip(values) {
            *sum += f64::from(x);
        }
    });
    let means: Vec<f64> = fold_channels(&sums, plane)
        .into_iter()
        .map(|sum| sum / count)
        .collect();
    // Deviations from the `f32` mean; the square of its rounding error is removed below.
    let centres = per_position(means.iter().map(|&mean| mean as f32), plane);
    let squares = batch_sums(g, |n, range, sums| {
        let values = &input[n * row..][range.clone()];
        for ((sum, &x), &centre) in sums.iter_mut().zip(values).zip(&centres[range]) {
            let deviation = x - centre;
            *sum += f64::from(deviation * deviation);
        }
    });
    fold_channels(&squares, plane)
        .into_iter()
        .zip(means)
        .map(|(squares, mean)| {
            let rounding = mean - f64::from(mean as f32);
            (mean, (squares / count - rounding * rounding).max(0.0))
        })
        .collect()
}

/// `output = clamp(((input - high) - low) * scale + shift)`, with per-channel `high + low`
/// (the centre), `scale` and `shift`.
pub(super) fn normalise(
    g: &BatchNormGeometry,
    input: &[f32],
    output: &mut [f32],
    (high, low): (&[f32], &[f32]),
    (scale, shift): (&[f32], &[f32]),
    clamp: Option<Clamp>,
) {
    let (row, plane) = row_and_plane(g);
    if row == 0 {
        return;
    }
    let [high, low, scale, shift] =
        [high, low, scale, shift].map(|values| per_position(values.iter().copied(), plane));
    let coefficients = Coefficients {
        high: &high,
        low: &low,
        scale: &scale,
        shift: &shift,
    };
    match clamp {
        None => coefficients.apply(row, input, output, |v| v, |v| v),
        Some(c) => coefficients.apply(row, input, output, |v| c.apply_lanes(v), |v| c.apply(v)),
    }
}

/// The affine map of [`normalise`], one coefficient per row position.
struct Coefficients<'a> {
    high: &'a [f32],
    low: &'a [f32],
    scale: &'a [f32],
    shift: &'a [f32],
}

impl Coefficients<'_> {
    /// Maps every row of `input` into `output`, the clamp given as its vector and scalar forms.
    #[inline(always)]
    fn apply(
        &self,
        row: usize,
        input: &[f32],
        output: &mut [f32],
        clamp_lanes: impl Fn(f32x8) -> f32x8 + Sync,
        clamp: impl Fn(f32) -> f32 + Sync,
    ) {
        let Coefficients {
            high,
            low,
            scale,
            shift,
        } = *self;
        output
            .par_chunks_mut(row)
            .zip(input.par_chunks(row))
            .for_each(|(output, input)| {
                let mut at = 0;
                while at + LANES <= row {
                    let centred = (load(&input[at..]) - load(&high[at..])) - load(&low[at..]);
                    let y = centred.mul_add(load(&scale[at..]), load(&shift[at..]));
                    store(clamp_lanes(y), &mut output[at..]);
                    at += LANES;
                }
                for j in at..row {
                    let centred = (input[j] - high[j]) - low[j];
                    output[j] = clamp(centred.mul_add(scale[j], shift[j]));
                }
            });
    }
}

/// Per channel, `(sum(dy), sum(dy * (x - mean)))` with `dy = grad * clamp'(output)` when a
/// clamp is given, which is then also written into `masked` (as `batch::masked_gradient_sums`).
pub(super) fn gradient_sums(
    g: &BatchNormGeometry,
    input: &[f32],
    grad: &[f32],
    mask: Option<(Clamp, &[f32], &mut [f32])>,
    mean: &[f32],
) -> Vec<(f64, f64)> {
    let (row, plane) = row_and_plane(g);
    let dy: &[f32] = match mask {
        Some((clamp, output, masked)) => {
            masked
                .par_chunks_mut(row.max(1))
                .zip(grad.par_chunks(row.max(1)))
                .zip(output.par_chunks(row.max(1)))
                .for_each(|((masked, grad), output)| {
                    for ((m, &dy), &y) in masked.iter_mut().zip(grad).zip(output) {
                        *m = dy * clamp.derivative_at_output(y);
                    }
                });
            &*masked
        }
        None => grad,
    };
    let sum_dy = batch_sums(g, |n, range, sums| {
        for (sum, &dy) in sums.iter_mut().zip(&dy[n * row..][range]) {
            *sum += f64::from(dy);
        }
    });
    let means = per_position(mean.iter().copied(), plane);
    let sum_dy_centred = batch_sums(g, |n, range, sums| {
        let grads = &dy[n * row..][range.clone()];
        let values = &input[n * row..][range.clone()];
        for (((sum, &dy), &x), &mean) in sums.iter_mut().zip(grads).zip(values).zip(&means[range]) {
            *sum += f64::from(dy * (x - mean));
        }
    });
    fold_channels(&sum_dy, plane)
        .into_iter()
        .zip(fold_channels(&sum_dy_centred, plane))
        .collect()
}

/// `grad_input = dy * a + (x - mean) * b + d` with per-channel `(a, b, d)`; `dy` is read from
/// `grad`, or from `grad_input` itself (overwritten in place) when `grad` is `None`.
pub(super) fn input_gradient(
    g: &BatchNormGeometry,
    grad_input: &mut [f32],
    grad: Option<&[f32]>,
    input: &[f32],
    mean: &[f32],
    coefficients: &[(f32, f32, f32)],
) {
    let (row, plane) = row_and_plane(g);
    if row == 0 {
        return;
    }
    let means = per_position(mean.iter().copied(), plane);
    let a = per_position(coefficients.iter().map(|c| c.0), plane);
    let b = per_position(coefficients.iter().map(|c| c.1), plane);
    let d = per_position(coefficients.iter().map(|c| c.2), plane);
    grad_input
        .par_chunks_mut(row)
        .zip(input.par_chunks(row))
        .enumerate()
        .for_each(|(n, (grad_input, input))| {
            let grad = grad.map(|grad| &grad[n * row..][..row]);
            let mut at = 0;
            while at + LANES <= row {
                let dy: f32x8 = load(grad.map_or(&grad_input[at..], |grad| &grad[at..]));
                let centred = load(&input[at..]) - load(&means[at..]);
                let value = dy.mul_add(
                    load(&a[at..]),
                    centred.mul_add(load(&b[at..]), load(&d[at..])),
                );
                store(value, &mut grad_input[at..]);
                at += LANES;
            }
            for j in at..row {
                let dy = grad.map_or(grad_input[j], |grad| grad[j]);
                grad_input[j] = dy.mul_add(a[j], (input[j] - means[j]).mul_add(b[j], d[j]));
            }
        });
}
