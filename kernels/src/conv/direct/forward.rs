//! Forward pass: output pixels as lanes, `(in_channel, ky, kx)` taps over a zero-padded image.

use super::{
    block_ranges, channel_blocks, dispatch_tile, forward_pixels, lane_bases, pack_block_weights,
    split_by_image_and_blocks, tile, PaddedImages, PaddedPlanes, Taps, LANES,
};
use crate::conv::fill_with_bias;
use crate::lanes::store;
use crate::Conv2dGeometry;
use rayon::prelude::*;
use wide::f32x8;

/// Output pixels handled together across all channel blocks of a task, so the input they read
/// stays in L1 while each block's weights stream past it. A multiple of both tile widths.
const PIXEL_CHUNK: usize = 48;

/// `output = conv(input, weight) + bias` for any direct geometry (see the module docs).
pub fn forward(
    g: &Conv2dGeometry,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
) {
    debug_assert!(g.validate().is_ok());
    debug_assert_eq!(input.len(), g.input_len());
    debug_assert_eq!(weight.len(), g.weight_len());
    debug_assert_eq!(output.len(), g.output_len());
    let (out_height, out_width) = (g.out_height(), g.out_width());
    let out_plane = out_height * out_width;
    if input.is_empty() || output.is_empty() {
        return fill_with_bias(g, bias, output);
    }
    if forward_pixels::applies(g) {
        return forward_pixels::forward(g, input, weight, bias, output);
    }
    let blocks = channel_blocks(g.groups, g.out_channels_per_group());
    let ranges = block_ranges(g.batch, blocks.len());
    let (pad_h, pad_w) = g.padding;
    let (padded_height, padded_width) = (g.in_height + 2 * pad_h, g.in_width + 2 * pad_w);
    let padded_image = g.in_channels * padded_height * padded_width;
    let images = PaddedImages::new(
        input,
        g.in_channels * g.in_height * g.in_width,
        ranges.len() == 1,
        (padded_image, 0),
        |images| {
            let padding = (pad_h, pad_h, pad_w, pad_w);
            PaddedPlanes::new(images, (g.in_height, g.in_width), padding, 0)
        },
    );

    let in_per_group = g.in_channels_per_group();
    let taps_per_group = in_per_group * g.kernel_height * g.kernel_width;
    let tap_offsets = input_tap_offsets(g, padded_height, padded_width);
    let pixel_bases = window_bases(g, padded_width);

    let packed: Vec<Vec<f32x8>> = blocks
        .iter()
        .map(|block| pack_block_weights(weight, block, taps_per_group))
        .collect();

    let taps_by_group: Vec<Taps> = tap_offsets
        .chunks_exact(taps_per_group)
        .map(Taps::new)
        .collect();

    let pieces = split_by_image_and_blocks(output, g.batch, &blocks, &ranges, out_plane);
    pieces.into_par_iter().for_each(|(image, range, out)| {
        let source = &images.image(image)[..];
        let first_channel = blocks[range.start].start;
        for chunk_start in (0..out_plane).step_by(PIXEL_CHUNK) {
            let chunk_end = out_plane.min(chunk_start + PIXEL_CHUNK);
            let pixels = &pixel_bases[..chunk_end];
            for (block, weights) in blocks[range.clone()].iter().zip(&packed[range.clone()]) {
                let taps = taps_by_group[block.group];
                let block_bias = bias.map(|b| &b[block.start..block.start + block.len]);
                let block_out =
                    &mut out[(block.start - first_channel) * out_plane..][..block.len * out_plane];
                let job = BlockJob {
                    source,
                    pixels,
                    first_pixel: chunk_start,
                    taps,
                    bias: block_bias,
                    out_plane,
                };
                dispatch_tile!(block.vectors(), job.run(weights, block_out))
            }
        }
    });
}

/// Offsets of every tap `(in_channel, ky, kx)` inside one padded image, in weight order (so
/// group `gr`'s taps are the `gr`-th run of `in_channels / groups * kernel_height * kernel_width`).
pub(super) fn input_tap_offsets(
    g: &Conv2dGeometry,
    padded_height: usize,
    padded_width: usize,
) -> Vec<u32> {
    let mut offsets = Vec::with_capacity(g.in_channels * g.kernel_height * g.kernel_width);
    for channel in 0..g.in_channels {
        for ky in 0..g.kernel_height {
            for kx in 0..g.kernel_width {
                let row = channel * padded_height + ky * g.dilation.0;
                let offset = row * padded_width + kx * g.dilation.1;
                offsets.push(u32::try_from(offset).expect("padded image exceeds u32"));
            }
        }
    }
    offsets
}

/// Where each output pixel's window starts in the padded image, row-major over output pixels.
pub(super) fn window_bases(g: &Conv2dGeometry, padded_width: usize) -> Vec<usize> {
    let out_width = g.out_width();
    (0..g.out_height())
        .flat_map(|oy| {
            (0..out_width).map(move |ox| oy * g.stride.0 * padded_width + ox * g.stride.1)
        })
        .collect()
}

/// One channel block over the pixels `first_pixel..pixels.len()` of one image.
struct BlockJob<'a> {
    source: &'a [f32],
    pixels: &'a [usize],
    first_pixel: usize,
    taps: Taps<'a>,
    bias: Option<&'a [f32]>,
    out_plane: usize,
}

impl BlockJob<'_> {
    /// Computes and stores the block; `out` holds the block's channels, `[channel][out_plane]`.
    #[allow(clippy::needless_range_loop)] // indices read best in a register tile
    fn run<const V: usize, const P: usize>(&self, weights: &[[f32x8; V]], out: &mut [f32]) {
        let channels = out.len() / self.out_plane;
        for first in (self.first_pixel..self.pixels.len()).step_by(P) {
            let lanes = lane_bases::<P>(self.pixels, first);
            let acc = tile::<V, P>(self.source, &lanes, self.taps, weights);
            let count = P.min(self.pixels.len() - first);
            if P == LANES && count == LANES {
                // 8 pixels by 8 channels per vector of the tile, turned round in registers so
                // that each channel's 8 pixels are one store (stored one float at a time, they
                // were a twentieth of the pass at stride 2).
                for v in 0..V.min(channels.div_ceil(LANES)) {
                    let pixels = f32x8::transpose(std::array::from_fn(|p| acc[p.min(P - 1)][v]));
                    for (lane, values) in pixels.into_iter().enumerate() {
                        let channel = v * LANES + lane;
                        if channel < channels {
                            let bias = f32x8::splat(self.bias.map_or(0.0, |b| b[channel]));
                            let at = channel * self.out_plane + first;
                            store(values + bias, &mut out[at..at + LANES]);
                        }
                    }
                }
                continue;
            }
            let acc = acc.map(|row| row.map(|vector| vector.to_array()));
            for channel in 0..channels {
                let bias = self.bias.map_or(0.0, |b| b[channel]);
                let (v, lane) = (channel / LANES, channel % LANES);
                let row = &mut out[channel * self.out_plane + first..][..count];
                for (p, value) in row.iter_mut().enumerate() {
                    *value = acc[p][v][lane] + bias;
                }
            }
        }
    }
}
