//! Forward for groups of few input channels (an RGB stem): vectors of 8 consecutive output
//! pixels, one broadcast weight per output channel.
//!
//! ResNet's stem convolves 3 channels with 7 x 7 kernels: 147 taps per output pixel. The
//! channel-vectorised [`super::forward`] handles those 147 taps per tile of 6 pixels and then
//! stores 6 x 16 results one float at a time, transposing them to `[channel][pixel]`; for so few
//! taps the stores are a sixth of the work. Here a tile is `C` output channels times `U` vectors
//! of pixels along an output row, so its results are already rows of the output.
//!
//! Along a row, consecutive output pixels read input columns `stride_w` apart. So the padded
//! input is first split by column phase: each padded row is rewritten as its `stride_w` phases
//! (columns `r, r + stride_w, r + 2 stride_w, ...` for each `r`) one after the other. Tap
//! `(channel, ky, kx)` then reads, for output pixels `ox..ox + 8`, the 8 consecutive values at
//! index `ox + kx * dilation_w / stride_w` of phase `kx * dilation_w % stride_w`. With stride 1
//! there is one phase and the split input is the padded input.

use super::{block_ranges, split_by_image_and_blocks, ChannelBlock, Taps, LANES};
use crate::conv::padded::SplitInput;
use crate::conv::tile::{as_arrays, pixel_tile, store_pixel_tile, PAIRED};
use crate::Conv2dGeometry;
use rayon::prelude::*;

/// Groups with at most this many input channels take this path.
const FEW_CHANNELS: usize = 4;
/// Output channels per tile: with 2 vectors of pixels, 12 accumulators; with AVX-512, 8
/// channels of 4 vectors (2 paired registers), 16 accumulators.
const BLOCK_CHANNELS: usize = if PAIRED { 8 } else { 6 };
/// The widest tile reads (`8 * U` pixels with `U <= 8`): zeros after the split input so that a
/// row's last tile may read past its end.
const SLACK: usize = 8 * LANES;

/// Output rows narrower than this stay with the channel-vectorised forward: a tile's last vector
/// would be mostly empty (ResNet's stem on 28 x 28 images, 14 pixels wide, was 10% slower here).
const MIN_WIDTH: usize = 2 * LANES;

/// Whether [`forward`] serves `g`: few input channels per group, and rows of at least
/// [`MIN_WIDTH`] output pixels.
pub(super) fn applies(g: &Conv2dGeometry) -> bool {
    g.in_channels_per_group() <= FEW_CHANNELS && g.out_width() >= MIN_WIDTH
}

/// `output = conv(input, weight) + bias` for geometries where [`applies`] holds.
pub(super) fn forward(
    g: &Conv2dGeometry,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
) {
    debug_assert!(applies(g));
    let split = SplitInput::new(g, input, g.stride.1, SLACK);
    let in_per_group = g.in_channels_per_group();
    let taps_per_group = in_per_group * g.kernel_height * g.kernel_width;
    let taps_by_group: Vec<Vec<u32>> = (0..g.groups)
        .map(|group| tap_offsets(&split, g, group * in_per_group..(group + 1) * in_per_group))
        .collect();

    let per_group = g.out_channels_per_group();
    let blocks: Vec<ChannelBlock> = (0..g.groups)
        .flat_map(|group| {
            (0..per_group)
                .step_by(BLOCK_CHANNELS)
                .map(move |local| ChannelBlock {
                    group,
                    start: group * per_group + local,
                    len: BLOCK_CHANNELS.min(per_group - local),
                })
        })
        .collect();
    // Each block's weights as `[tap][channel]`, `len` channels per tap.
    let packed: Vec<Vec<f32>> = blocks
        .iter()
        .map(|block| {
            let rows = &weight[block.start * taps_per_group..][..block.len * taps_per_group];
            (0..taps_per_group)
                .flat_map(|tap| (0..block.len).map(move |c| rows[c * taps_per_group + tap]))
                .collect()
        })
        .collect();

    let (out_height, out_width) = (g.out_height(), g.out_width());
    let out_plane = out_height * out_width;
    let ranges = block_ranges(g.batch, blocks.len());
    let pieces = split_by_image_and_blocks(output, g.batch, &blocks, &ranges, out_plane);
    pieces.into_par_iter().for_each(|(image, range, out)| {
        let source = &split.planes[image * split.image..(image + 1) * split.image + SLACK];
        let first_channel = blocks[range.start].start;
        // Row by row, so the input rows under one output row stay in L1 while every block of
        // the task passes over them.
        for oy in 0..out_height {
            for (block, weights) in blocks[range.clone()].iter().zip(&packed[range.clone()]) {
                let job = RowJob {
                    source,
                    start: oy * g.stride.0 * split.row,
                    taps: Taps::new(&taps_by_group[block.group]),
                    bias: bias.map(|b| &b[block.start..block.start + block.len]),
                    out_width,
                    out_plane,
                };
                let out = &mut out[(block.start - first_channel) * out_plane + oy * out_width..];
                match block.len {
                    1 => job.run::<1, 8>(as_arrays(weights), out),
                    2 => job.run::<2, 6>(as_arrays(weights), out),
                    3 => job.run::<3, 4>(as_arrays(weights), out),
                    4 => job.run::<4, 3>(as_arrays(weights), out),
                    5 => job.run::<5, 2>(as_arrays(weights), out),
                    6 if PAIRED => job.run::<6, 4>(as_arrays(weights), out),
                    6 => job.run::<6, 2>(as_arrays(weights), out),
                    7 => job.run::<7, 4>(as_arrays(weights), out),
                    _ => job.run::<8, 4>(as_arrays(weights), out),
                }
            }
        }
    });
}

/// Offsets of the taps `(channel, ky, kx)` of `channels`, in weight order, from the window
/// start of an output pixel (`oy * stride_h` rows down, `ox` along the phases).
fn tap_offsets(
    split: &SplitInput,
    g: &Conv2dGeometry,
    channels: std::ops::Range<usize>,
) -> Vec<u32> {
    let mut offsets = Vec::new();
    for channel in channels {
        for ky in 0..g.kernel_height {
            let row = (channel * split.height + ky * g.dilation.0) * split.row;
            for kx in 0..g.kernel_width {
                let column = kx * g.dilation.1;
                let phase = column % g.stride.1;
                let offset = row + phase * split.phase + column / g.stride.1;
                offsets.push(u32::try_from(offset).expect("padded image exceeds u32"));
            }
        }
    }
    offsets
}

/// One output row of one block of channels.
struct RowJob<'a> {
    source: &'a [f32],
    /// Where the row's windows start in `source`.
    start: usize,
    taps: Taps<'a>,
    bias: Option<&'a [f32]>,
    out_width: usize,
    out_plane: usize,
}

impl RowJob<'_> {
    /// Stores the row into `out`, which starts at the block's first channel's row and runs on
    /// (the block's other channels are `out_plane` further each).
    fn run<const C: usize, const U: usize>(&self, weights: &[[f32; C]], out: &mut [f32]) {
        for first in (0..self.out_width).step_by(U * LANES) {
            let acc = pixel_tile::<C, U>(self.source, self.start + first, self.taps, weights);
            let count = (U * LANES).min(self.out_width - first);
            store_pixel_tile(&acc, self.bias, &mut out[first..], self.out_plane, count);
        }
    }
}
