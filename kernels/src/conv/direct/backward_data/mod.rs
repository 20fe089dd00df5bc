//! Backward-data: the input gradient as a phase-split stride-1 convolution of the padded output
//! gradient with the transposed weights.
//!
//! | file | what |
//! |---|---|
//! | `phases.rs` | the stride phases of the input gradient: which taps reach each, their offsets in the padded output gradient, and the transposed weights packed per channel block |
//! | `scatter.rs` | the channel-vectorised job: tiles of pixels times vectors of input channels, stored through the phase's index table |
//! | `pixel.rs` | the pixel-vectorised job for groups of at most [`FEW_CHANNELS`] input channels (a stem's RGB; up to 8 with AVX-512) |

mod phases;
mod pixel;
mod scatter;

use super::{
    block_ranges, channel_blocks, dispatch_tile, split_by_image_and_blocks, PaddedImages,
    PaddedPlanes, Taps, LANES,
};
use crate::conv::tile::as_arrays;
use crate::Conv2dGeometry;
use phases::{axis_phases, phase_padding, PackedWeights, PaddedLayout, Phase};
use pixel::PixelJob;
use rayon::prelude::*;
use scatter::ScatterJob;

/// Groups with at most this many input channels (a stem's RGB) vectorise over pixels instead of
/// channels, which would leave most of each vector empty. With AVX-512 the pixel tiles hold 16
/// pixels per register and take groups of up to 8 channels: LeNet-5's second layer (6 input
/// channels) ran its backward-data in 0.40 ms instead of 0.59 to 0.66.
const FEW_CHANNELS: usize = if crate::conv::tile::PAIRED { 8 } else { 4 };
/// Zeros after the padded gradient, so the pixel kernel's last vectors stay inside it.
const SLACK: usize = 8 * LANES;

/// `grad_input = d(loss)/d(input)`: for every stride phase, a stride-1 convolution of the padded
/// output gradient with the transposed weights of the taps that reach that phase.
pub fn backward_data(
    g: &Conv2dGeometry,
    grad_output: &[f32],
    weight: &[f32],
    grad_input: &mut [f32],
) {
    debug_assert!(g.validate().is_ok());
    debug_assert_eq!(grad_output.len(), g.output_len());
    debug_assert_eq!(weight.len(), g.weight_len());
    debug_assert_eq!(grad_input.len(), g.input_len());
    if grad_output.is_empty() || grad_input.is_empty() {
        grad_input.fill(0.0);
        return;
    }
    let (out_height, out_width) = (g.out_height(), g.out_width());
    let rows = axis_phases(
        g.in_height,
        out_height,
        g.kernel_height,
        g.stride.0,
        g.padding.0,
        g.dilation.0,
    );
    let cols = axis_phases(
        g.in_width,
        out_width,
        g.kernel_width,
        g.stride.1,
        g.padding.1,
        g.dilation.1,
    );
    let (top, bottom) = phase_padding(&rows, out_height);
    let (left, right) = phase_padding(&cols, out_width);
    let padded_height = top + out_height + bottom;
    let padded_width = left + out_width + right;
    let padded_image = g.out_channels * padded_height * padded_width;
    let blocks = channel_blocks(g.groups, g.in_channels_per_group());
    let ranges = block_ranges(g.batch, blocks.len());
    let images = PaddedImages::new(
        grad_output,
        g.out_channels * out_height * out_width,
        ranges.len() == 1,
        (padded_image, SLACK),
        |images| {
            let padding = (top, bottom, left, right);
            PaddedPlanes::new(images, (out_height, out_width), padding, SLACK)
        },
    );

    let layout = PaddedLayout {
        top,
        left,
        height: padded_height,
        width: padded_width,
    };
    let mut phases = Vec::new();
    let mut some_pixels_untouched = false;
    for (ry, row_phase) in rows.iter().enumerate() {
        for (rx, col_phase) in cols.iter().enumerate() {
            if row_phase.taps.is_empty() || col_phase.taps.is_empty() {
                some_pixels_untouched = true;
            } else {
                let axes = [(ry, row_phase), (rx, col_phase)];
                phases.push(Phase::new(g, axes, &layout, &blocks, weight));
            }
        }
    }

    let in_plane = g.in_height * g.in_width;
    let pieces = split_by_image_and_blocks(grad_input, g.batch, &blocks, &ranges, in_plane);
    pieces.into_par_iter().for_each(|(image, range, out)| {
        if some_pixels_untouched {
            out.fill(0.0);
        }
        let source = &images.image(image)[..];
        let first_channel = blocks[range.start].start;
        for phase in &phases {
            for b in range.clone() {
                let block = &blocks[b];
                let taps = Taps::new(&phase.taps_by_group[block.group]);
                let block_out =
                    &mut out[(block.start - first_channel) * in_plane..][..block.len * in_plane];
                match &phase.weights_by_block[b] {
                    PackedWeights::Vectors(weights) => {
                        let job = ScatterJob {
                            source,
                            bases: &phase.bases,
                            stores: &phase.stores,
                            taps,
                            row_taps: &phase.row_taps,
                            taps_per_row_tap: phase.taps_per_row_tap,
                            cols: phase.size.1,
                            plane: in_plane,
                        };
                        dispatch_tile!(block.vectors(), job.run(weights, block_out))
                    }
                    PackedWeights::Scalars(weights) => {
                        let job = PixelJob {
                            source,
                            taps,
                            phase,
                            padded_width,
                            stride: g.stride,
                            in_width: g.in_width,
                            plane: in_plane,
                        };
                        match block.len {
                            1 => job.run::<1, 8>(as_arrays(weights), block_out),
                            2 => job.run::<2, 6>(as_arrays(weights), block_out),
                            3 => job.run::<3, 4>(as_arrays(weights), block_out),
                            4 => job.run::<4, 3>(as_arrays(weights), block_out),
                            5 => job.run::<5, 2>(as_arrays(weights), block_out),
                            6 => job.run::<6, 2>(as_arrays(weights), block_out),
                            7 => job.run::<7, 2>(as_arrays(weights), block_out),
                            _ => job.run::<8, 2>(as_arrays(weights), block_out),
                        }
                    }
                }
            }
        }
    });
}
