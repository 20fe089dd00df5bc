//! Backward-weight for groups of few input channels at unit column stride: output pixels as
//! lanes, summed in the vectors and reduced once at the end.
//!
//! LeNet-5's first layer has one input channel, so a group has 25 taps. The tap-vectorised
//! [`super::backward_weight`] then fills its last tile of 8 taps with one, and spends as much on
//! transposing the output gradient to `[pixel][channel]` as on the arithmetic. Here eight
//! consecutive output pixels of a row share a vector instead: for each tap, the input under
//! those pixels (eight consecutive columns of the padded input when the column stride is 1)
//! times the output gradient of each channel, accumulated over the rows and images of a task.

use super::forward::input_tap_offsets;
use super::{PaddedInput, LANES};
use crate::Conv2dGeometry;
use rayon::prelude::*;
use wide::f32x8;

/// Groups with at most this many input channels take this path (at column stride 1).
const FEW_CHANNELS: usize = 4;
/// Output channels summed together, so each input vector serves several of them.
const MAX_BLOCK_CHANNELS: usize = 6;
/// Zeros after the padded input: a row's last vector reads up to 7 values past its last pixel.
const SLACK: usize = LANES;

/// Whether [`backward_weight`] serves `g`.
pub(super) fn applies(g: &Conv2dGeometry) -> bool {
    g.stride.1 == 1 && g.in_channels_per_group() <= FEW_CHANNELS
}

/// `grad_weight = d(loss)/d(weight)` for geometries where [`applies`] holds (the bias
/// gradient is the caller's).
pub(super) fn backward_weight(
    g: &Conv2dGeometry,
    input: &[f32],
    grad_output: &[f32],
    grad_weight: &mut [f32],
) {
    debug_assert!(applies(g));
    let (out_height, out_width) = (g.out_height(), g.out_width());
    let out_plane = out_height * out_width;
    let padded = PaddedInput::new(g, input, SLACK);
    let taps_per_group = g.in_channels_per_group() * g.kernel_height * g.kernel_width;
    let tap_offsets = input_tap_offsets(g, padded.height, padded.width);

    // (first output channel, channels) of each block, within a group; then the tasks: every
    // block over a range of images, about four tasks per thread.
    let per_group = g.out_channels_per_group();
    let blocks: Vec<(usize, usize)> = (0..g.groups)
        .flat_map(|group| {
            (0..per_group)
                .step_by(MAX_BLOCK_CHANNELS)
                .map(move |local| {
                    (
                        group * per_group + local,
                        MAX_BLOCK_CHANNELS.min(per_group - local),
                    )
                })
        })
        .collect();
    let image_pieces = (4 * rayon::current_num_threads())
        .div_ceil(blocks.len())
        .clamp(1, g.batch.max(1));
    let tasks: Vec<((usize, usize), std::ops::Range<usize>)> = blocks
        .iter()
        .flat_map(|&block| {
            (0..image_pieces).map(move |i| {
                (
                    block,
                    i * g.batch / image_pieces..(i + 1) * g.batch / image_pieces,
                )
            })
        })
        .filter(|(_, images)| !images.is_empty())
        .collect();

    let partials: Vec<Vec<f32>> = tasks
        .par_iter()
        .map(|&((first_channel, channels), ref images)| {
            let group = first_channel / per_group;
            let job = SumJob {
                taps: &tap_offsets[group * taps_per_group..][..taps_per_group],
                row_step: g.stride.0 * padded.width,
                out_width,
                out_plane,
            };
            let mut sums = vec![f32x8::ZERO; channels * taps_per_group];
            for image in images.clone() {
                let source =
                    &padded.planes[image * padded.image..(image + 1) * padded.image + SLACK];
                let grad = &grad_output[(image * g.out_channels + first_channel) * out_plane..];
                match channels {
                    1 => job.run::<1, 12>(source, grad, &mut sums),
                    2 => job.run::<2, 6>(source, grad, &mut sums),
                    3 => job.run::<3, 4>(source, grad, &mut sums),
                    4 => job.run::<4, 3>(source, grad, &mut sums),
                    5 => job.run::<5, 2>(source, grad, &mut sums),
                    _ => job.run::<6, 2>(source, grad, &mut sums),
                }
            }
            sums.iter().map(|v| v.reduce_add()).collect()
        })
        .collect();

    grad_weight.fill(0.0);
    for (&((first_channel, channels), _), sums) in tasks.iter().zip(partials) {
        let block = &mut grad_weight[first_channel * taps_per_group..][..channels * taps_per_group];
        for (gw, s) in block.iter_mut().zip(sums) {
            *gw += s;
        }
    }
}

/// What every image of a task shares.
struct SumJob<'a> {
    /// The group's tap offsets in a padded image.
    taps: &'a [u32],
    /// Padded-input elements between the windows of consecutive output rows.
    row_step: usize,
    out_width: usize,
    out_plane: usize,
}

impl SumJob<'_> {
    /// Adds one image's products into `sums`, `[channel][tap]`: `C` channels times `T` taps in
    /// registers, row by row in vectors of 8 pixels. `grad` starts at the block's first channel
    /// of the image and may run on past its last one (to the end of the output gradient).
    fn run<const C: usize, const T: usize>(
        &self,
        source: &[f32],
        grad: &[f32],
        sums: &mut [f32x8],
    ) {
        let taps = self.taps.len();
        let last_tap = self.taps.iter().copied().max().unwrap_or(0) as usize;
        let (out_width, out_plane) = (self.out_width, self.out_plane);
        let out_height = out_plane / out_width;
        let whole = out_width / LANES * LANES;
        let tail = out_width - whole;
        // Reads of the input start at `oy * row_step + ox0 + offset <= (out_height - 1) *
        // row_step + out_width - 1 + last_tap` and are 8 long; reads of the gradient start at
        // `c * out_plane + oy * out_width + ox0` and are 8 long when `ox0 + 8 <= out_width`.
        assert!(
            (out_height - 1) * self.row_step + out_width - 1 + last_tap + LANES <= source.len()
        );
        assert!(C * out_plane <= grad.len());
        let keep_tail = f32x8::from(std::array::from_fn::<f32, LANES, _>(|lane| {
            f32::from_bits(if lane < tail { u32::MAX } else { 0 })
        }));
        let (src, dy_at) = (source.as_ptr(), grad.as_ptr());
        // These two read eight values without a bounds check; the loops below call them only
        // with the positions the asserts above cover.
        let load_src = |at: usize| {
            debug_assert!(at + LANES <= source.len());
            // SAFETY: `source[at..at + 8]`, inside `source` by the first assert.
            unsafe { f32x8::from(src.add(at).cast::<[f32; LANES]>().read_unaligned()) }
        };
        let load_dy = |at: usize| {
            debug_assert!(at + LANES <= grad.len());
            // SAFETY: `grad[at..at + 8]` with `ox0 + 8 <= out_width`, inside `grad` by the
            // second assert (or checked by `get` for the tail).
            unsafe { f32x8::from(dy_at.add(at).cast::<[f32; LANES]>().read_unaligned()) }
        };
        for first_tap in (0..taps).step_by(T) {
            let tile_taps = T.min(taps - first_tap);
            let offsets: [usize; T] =
                std::array::from_fn(|t| self.taps[first_tap + t.min(tile_taps - 1)] as usize);
            let mut acc = [[f32x8::ZERO; T]; C];
            let inputs = |base: usize| -> [f32x8; T] {
                std::array::from_fn(|t| load_src(base + offsets[t]))
            };
            for oy in 0..out_height {
                let (row_grad, row_source) = (oy * out_width, oy * self.row_step);
                for ox0 in (0..whole).step_by(LANES) {
                    let x = inputs(row_source + ox0);
                    accumulate(&mut acc, x, |c| load_dy(c * out_plane + row_grad + ox0));
                }
                if tail > 0 {
                    let x = inputs(row_source + whole);
                    accumulate(&mut acc, x, |c| {
                        let at = c * out_plane + row_grad + whole;
                        match grad.get(at..at + LANES) {
                            // The lanes past the row belong to the next row (or channel).
                            Some(_) => load_dy(at) & keep_tail,
                            None => f32x8::from(std::array::from_fn::<f32, LANES, _>(|lane| {
                                if lane < tail {
                                    grad[at + lane]
                                } else {
                                    0.0
                                }
                            })),
                        }
                    });
                }
            }
            for (c, row) in acc.iter().enumerate() {
                for (t, &vector) in row.iter().take(tile_taps).enumerate() {
                    sums[c * taps + first_tap + t] += vector;
                }
            }
        }
    }
}

/// `acc[c][t] += dy(c) * x[t]`: the `T` inputs are loaded, then one gradient vector at a time,
/// so `C * T` accumulators, `T` inputs and one gradient fit AVX2's 16 registers.
#[inline(always)]
fn accumulate<const C: usize, const T: usize>(
    acc: &mut [[f32x8; T]; C],
    x: [f32x8; T],
    dy: impl Fn(usize) -> f32x8,
) {
    for (c, acc) in acc.iter_mut().enumerate() {
        let dy = dy(c);
        for (acc, &x) in acc.iter_mut().zip(&x) {
            *acc = dy.mul_add(x, *acc);
        }
    }
}
