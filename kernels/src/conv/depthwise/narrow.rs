//! Depthwise forward and backward-data on planes exactly one vector wide: 3 x 3 kernels at
//! stride 1 with padding 1 on maps 8 pixels wide (the 8 x 8 maps of MobileNet and Xception on
//! small images). Backward-data, with one output channel per input channel, is the same filter
//! with the kernel turned by 180 degrees; backward-weight walks the same window.
//!
//! There a plane is 8 output vectors and 72 multiply-adds, and the general kernel's scratch
//! plane, tap tables and blocks of vectors cost several times the arithmetic. Here each input
//! row is loaded once as three vectors: itself, and itself shifted one column right and one
//! left, read one value before and one after it with the lane that falls outside the row set
//! to zero (a bitwise mask, so whatever the neighbouring row holds never reaches the sum). Tap
//! `(ky, kx)` of output row `o` is then shift `kx` of input row `o + ky - 1`: 9 FMAs per output
//! row, on values already in registers.

use super::{planes_per_task, LANES};
use crate::Conv2dGeometry;
use rayon::prelude::*;
use wide::f32x8;

/// Whether `g`'s forward is served here: a 3 x 3 kernel at unit stride and dilation with
/// padding 1, on input rows of exactly 8 values (so output rows are too).
pub(super) fn applies(g: &Conv2dGeometry) -> bool {
    g.in_width == LANES
        && (g.kernel_height, g.kernel_width) == (3, 3)
        && g.stride == (1, 1)
        && g.padding == (1, 1)
        && g.dilation == (1, 1)
}

/// `output[n, co] = bias[co] + depthwise correlation of input[n, co / multiplier] with weight[co]`
/// for geometries where [`applies`] holds.
pub(super) fn forward(
    g: &Conv2dGeometry,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
) {
    run(g, input, weight, bias, false, output);
}

/// `grad_input = d(loss)/d(input)` where [`applies`] holds and every input channel has one output
/// channel: at stride 1 with padding 1, the input gradient is the same filter turned by 180
/// degrees, run over the output gradient.
pub(super) fn backward_data(
    g: &Conv2dGeometry,
    grad_output: &[f32],
    weight: &[f32],
    grad_input: &mut [f32],
) {
    debug_assert_eq!(g.out_channels, g.in_channels);
    run(g, grad_output, weight, None, true, grad_input);
}

/// Filters every plane of `source` into `output`, with each kernel turned by 180 degrees when
/// `turn` (then `multiplier` must be 1).
fn run(
    g: &Conv2dGeometry,
    source: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    turn: bool,
    output: &mut [f32],
) {
    debug_assert!(applies(g));
    let multiplier = g.out_channels / g.in_channels;
    let plane = g.in_height * LANES;
    let out_group = multiplier * plane;
    let planes = g.batch * g.in_channels;
    if planes == 0 || plane == 0 {
        return;
    }
    let chunk = planes_per_task(planes);
    output
        .par_chunks_mut(chunk * out_group)
        .enumerate()
        .for_each(|(task, out_chunk)| {
            let first_plane = task * chunk;
            // A counter, not `%` per plane (see `forward.rs`).
            let mut in_channel = first_plane % g.in_channels;
            for (local, out_planes) in out_chunk.chunks_exact_mut(out_group).enumerate() {
                let start = (first_plane + local) * plane;
                for (m, out) in out_planes.chunks_exact_mut(plane).enumerate() {
                    let co = in_channel * multiplier + m;
                    let mut taps: [f32; 9] = weight[co * 9..][..9].try_into().unwrap();
                    if turn {
                        taps.reverse();
                    }
                    let bias = bias.map_or(0.0, |b| b[co]);
                    filter_plane(source, start, &taps, bias, out);
                }
                in_channel += 1;
                if in_channel == g.in_channels {
                    in_channel = 0;
                }
            }
        });
}

/// One output plane (`out`, rows of 8) from the input plane at `input[start..]` of as many
/// rows. A window of three input rows slides down the plane; each output row sums them as
/// three independent chains of 3 FMAs, so consecutive rows overlap in the pipeline.
#[inline(always)]
fn filter_plane(input: &[f32], start: usize, taps: &[f32; 9], bias: f32, out: &mut [f32]) {
    let height = out.len() / LANES;
    let w: [f32x8; 9] = std::array::from_fn(|t| f32x8::splat(taps[t]));
    let bias = f32x8::splat(bias);
    let row = |r: usize| plane_row(input, start, height, r);
    let mut above = [f32x8::ZERO; 3];
    let mut middle = row(0);
    for (oy, out) in out.chunks_exact_mut(LANES).enumerate() {
        let below = row(oy + 1);
        let top = above[0].mul_add(w[0], above[1].mul_add(w[1], above[2] * w[2]));
        let centre =
            middle[0].mul_add(w[3], middle[1].mul_add(w[4], middle[2].mul_add(w[5], bias)));
        let bottom = below[0].mul_add(w[6], below[1].mul_add(w[7], below[2] * w[8]));
        let out: &mut [f32; LANES] = out.try_into().unwrap();
        *out = (top + centre + bottom).to_array();
        above = middle;
        middle = below;
    }
}

/// Adds the weight gradient of one plane to `acc` (one vector per tap, summed across lanes by
/// the caller): `acc[3 ky + kx] += dy[oy] * (shift kx of input row oy + ky - 1)` over the rows
/// `dy` (of 8) of one output-gradient plane and the input plane at `input[start..]`, with the
/// same sliding window as the forward pass.
#[inline(always)]
pub(super) fn accumulate_weight(input: &[f32], start: usize, dy: &[f32], acc: &mut [f32x8]) {
    let acc: &mut [f32x8; 9] = acc.try_into().unwrap();
    let height = dy.len() / LANES;
    let row = |r: usize| plane_row(input, start, height, r);
    let mut sums = *acc;
    let mut above = [f32x8::ZERO; 3];
    let mut middle = row(0);
    for (oy, d) in dy.chunks_exact(LANES).enumerate() {
        let below = row(oy + 1);
        let d = f32x8::from(<[f32; LANES]>::try_from(d).unwrap());
        for (ky, rows) in [above, middle, below].into_iter().enumerate() {
            for (kx, x) in rows.into_iter().enumerate() {
                sums[3 * ky + kx] = d.mul_add(x, sums[3 * ky + kx]);
            }
        }
        above = middle;
        middle = below;
    }
    *acc = sums;
}

/// Row `r` of the plane of `height` rows at `input[start..]` as its three shifts
/// ([`shifted`]), or zeros below the plane (the padding under its last row).
#[inline(always)]
fn plane_row(input: &[f32], start: usize, height: usize, r: usize) -> [f32x8; 3] {
    if r < height {
        shifted(input, start + r * LANES)
    } else {
        [f32x8::ZERO; 3]
    }
}

/// Lanes 1 to 7 kept, lane 0 cleared; and lanes 0 to 6 kept, lane 7 cleared.
const KEEP: f32 = f32::from_bits(u32::MAX);
const NOT_FIRST: [f32; LANES] = [0.0, KEEP, KEEP, KEEP, KEEP, KEEP, KEEP, KEEP];
const NOT_LAST: [f32; LANES] = [KEEP, KEEP, KEEP, KEEP, KEEP, KEEP, KEEP, 0.0];

/// The row of 8 at `input[at..]` as `[left, row, right]`: lane `x` of `left` is column `x - 1`
/// and of `right` column `x + 1`, zero where that is outside the row.
#[inline(always)]
fn shifted(input: &[f32], at: usize) -> [f32x8; 3] {
    let load = |at: usize| f32x8::from(<[f32; LANES]>::try_from(&input[at..at + LANES]).unwrap());
    let row = load(at);
    let values = row.to_array();
    // The first row of the input has nothing before it, and the last nothing after it.
    let left = match at.checked_sub(1) {
        Some(before) => load(before) & f32x8::from(NOT_FIRST),
        None => f32x8::from(std::array::from_fn(|x| {
            if x == 0 {
                0.0
            } else {
                values[x - 1]
            }
        })),
    };
    let right = if at + LANES < input.len() {
        load(at + 1) & f32x8::from(NOT_LAST)
    } else {
        f32x8::from(std::array::from_fn(|x| {
            values.get(x + 1).copied().unwrap_or(0.0)
        }))
    };
    [left, row, right]
}
