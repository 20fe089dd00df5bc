//! Backward-data: the input gradient as a phase-split stride-1 convolution of the padded output
//! gradient with the transposed weights.

use super::{
    as_arrays, block_ranges, channel_blocks, dispatch_tile, lane_bases, pixel_tile,
    split_by_image_and_blocks, tile, ChannelBlock, PaddedPlanes, Taps, LANES,
};
use crate::Conv2dGeometry;
use rayon::prelude::*;
use wide::f32x8;

/// One stride phase along one axis: the input positions `r, r + stride, ...` and the kernel taps
/// that reach them. Input position `r + stride * j` receives tap `k` from output position
/// `j + shift`, where `shift = (r + padding - k * dilation) / stride` (an exact division).
struct AxisPhase {
    /// Input positions in the phase.
    count: usize,
    /// `(kernel index, shift)` of every tap that reaches some output position.
    taps: Vec<(usize, isize)>,
}

fn axis_phases(
    in_size: usize,
    out_size: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
) -> Vec<AxisPhase> {
    (0..stride.min(in_size))
        .map(|r| {
            let count = (in_size - r).div_ceil(stride);
            let taps = (0..kernel)
                .filter_map(|k| {
                    let reach = (r + padding) as isize - (k * dilation) as isize;
                    let stride = stride as isize;
                    if reach.rem_euclid(stride) != 0 {
                        return None;
                    }
                    let shift = reach.div_euclid(stride);
                    // Skip taps that only ever read padding.
                    let hits = shift + count as isize > 0 && shift < out_size as isize;
                    hits.then_some((k, shift))
                })
                .collect();
            AxisPhase { count, taps }
        })
        .collect()
}

/// Zeros needed before and after an axis of the output gradient so every shifted read is inside.
fn phase_padding(phases: &[AxisPhase], out_size: usize) -> (usize, usize) {
    let mut before = 0isize;
    let mut after = 0isize;
    for phase in phases {
        for &(_, shift) in &phase.taps {
            before = before.max(-shift);
            after = after.max(shift + phase.count as isize - out_size as isize);
        }
    }
    (before as usize, after as usize)
}

/// One 2-D phase of the input gradient, ready to run for any image and in-channel block.
struct Phase {
    /// Offsets of the taps `(out_channel in group, ky, kx)` in a padded output-gradient image,
    /// one table per group.
    taps_by_group: Vec<Vec<u32>>,
    /// Per in-channel block: the transposed, flipped weights, `[tap][channels]`.
    weights_by_block: Vec<PackedWeights>,
    /// First input row and column of the phase, and its rows and columns.
    origin: (usize, usize),
    size: (usize, usize),
    /// Kernel rows and columns that reach the phase.
    kernel_taps: (usize, usize),
    /// Where each input pixel of the phase reads in the padded output gradient (tap 0 offset).
    bases: Vec<usize>,
    /// Where each input pixel of the phase lives in an input plane.
    stores: Vec<usize>,
}

/// Where the output gradient sits in its padded copy, and the copy's plane size.
struct PaddedLayout {
    top: usize,
    left: usize,
    height: usize,
    width: usize,
}

impl Phase {
    /// The phase of input rows `ry + stride_h * j` and columns `rx + stride_w * j`:
    /// its tap offsets, packed weights and pixel tables.
    fn new(
        g: &Conv2dGeometry,
        [(ry, row_phase), (rx, col_phase)]: [(usize, &AxisPhase); 2],
        layout: &PaddedLayout,
        blocks: &[ChannelBlock],
        weight: &[f32],
    ) -> Self {
        let in_per_group = g.in_channels_per_group();
        let out_per_group = g.out_channels_per_group();
        let kernel_area = g.kernel_height * g.kernel_width;
        let few_channels = in_per_group <= FEW_CHANNELS;
        let taps_by_group = (0..g.groups)
            .map(|group| {
                let mut offsets = Vec::new();
                for out_local in 0..out_per_group {
                    let plane = group * out_per_group + out_local;
                    for &(_, shift_y) in &row_phase.taps {
                        for &(_, shift_x) in &col_phase.taps {
                            let y = (layout.top as isize + shift_y) as usize;
                            let x = (layout.left as isize + shift_x) as usize;
                            let offset = (plane * layout.height + y) * layout.width + x;
                            offsets.push(u32::try_from(offset).expect("gradient exceeds u32"));
                        }
                    }
                }
                offsets
            })
            .collect();
        let weights_by_block = blocks
            .iter()
            .map(|block| {
                let in_first = block.start - block.group * in_per_group;
                let lanes = if few_channels {
                    block.len
                } else {
                    block.vectors() * LANES
                };
                let mut values = Vec::new();
                for out_local in 0..out_per_group {
                    let out_channel = block.group * out_per_group + out_local;
                    for &(ky, _) in &row_phase.taps {
                        for &(kx, _) in &col_phase.taps {
                            let tap = ky * g.kernel_width + kx;
                            values.extend((0..lanes).map(|channel| {
                                if channel >= block.len {
                                    return 0.0;
                                }
                                let in_local = in_first + channel;
                                weight[(out_channel * in_per_group + in_local) * kernel_area + tap]
                            }));
                        }
                    }
                }
                if few_channels {
                    PackedWeights::Scalars(values)
                } else {
                    let vectors = as_arrays::<LANES, f32>(&values);
                    PackedWeights::Vectors(vectors.iter().map(|&v| f32x8::from(v)).collect())
                }
            })
            .collect();
        let mut bases = Vec::with_capacity(row_phase.count * col_phase.count);
        let mut stores = Vec::with_capacity(row_phase.count * col_phase.count);
        for jy in 0..row_phase.count {
            for jx in 0..col_phase.count {
                bases.push(jy * layout.width + jx);
                stores.push((ry + g.stride.0 * jy) * g.in_width + rx + g.stride.1 * jx);
            }
        }
        Phase {
            taps_by_group,
            weights_by_block,
            origin: (ry, rx),
            size: (row_phase.count, col_phase.count),
            kernel_taps: (row_phase.taps.len(), col_phase.taps.len()),
            bases,
            stores,
        }
    }
}

/// A block's weights: 8-channel vectors for the channel-vectorised kernel, or plain scalars for
/// the pixel-vectorised one (groups of at most [`FEW_CHANNELS`] input channels).
enum PackedWeights {
    Vectors(Vec<f32x8>),
    Scalars(Vec<f32>),
}

/// Groups with at most this many input channels (a stem's RGB) vectorise over pixels instead of
/// channels, which would leave most of each vector empty.
const FEW_CHANNELS: usize = 4;
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
    let padded = PaddedPlanes::new(
        grad_output,
        (out_height, out_width),
        (top, bottom, left, right),
        SLACK,
    );

    let layout = PaddedLayout {
        top,
        left,
        height: padded_height,
        width: padded_width,
    };
    let blocks = channel_blocks(g.groups, g.in_channels_per_group());
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
    let ranges = block_ranges(g.batch, blocks.len());
    let pieces = split_by_image_and_blocks(grad_input, g.batch, &blocks, &ranges, in_plane);
    pieces.into_par_iter().for_each(|(image, range, out)| {
        if some_pixels_untouched {
            out.fill(0.0);
        }
        let source = &padded[image * padded_image..(image + 1) * padded_image + SLACK];
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
                            _ => job.run::<4, 3>(as_arrays(weights), block_out),
                        }
                    }
                }
            }
        }
    });
}

/// One channel block over all pixels of one phase, storing through an index table.
struct ScatterJob<'a> {
    source: &'a [f32],
    bases: &'a [usize],
    stores: &'a [usize],
    taps: Taps<'a>,
    plane: usize,
}

impl ScatterJob<'_> {
    fn run<const V: usize, const P: usize>(&self, weights: &[[f32x8; V]], out: &mut [f32]) {
        let channels = out.len() / self.plane;
        for first in (0..self.bases.len()).step_by(P) {
            let lanes = lane_bases::<P>(self.bases, first);
            let acc = tile::<V, P>(self.source, &lanes, self.taps, weights);
            let acc = acc.map(|row| row.map(|vector| vector.to_array()));
            let stores = &self.stores[first..self.bases.len().min(first + P)];
            for channel in 0..channels {
                let (v, lane) = (channel / LANES, channel % LANES);
                let plane = &mut out[channel * self.plane..][..self.plane];
                for (p, &at) in stores.iter().enumerate() {
                    plane[at] = acc[p][v][lane];
                }
            }
        }
    }
}

/// One group of few input channels over one phase: rows of the phase in runs of `8 * U` pixels.
struct PixelJob<'a> {
    source: &'a [f32],
    taps: Taps<'a>,
    phase: &'a Phase,
    padded_width: usize,
    stride: (usize, usize),
    in_width: usize,
    plane: usize,
}

impl PixelJob<'_> {
    /// Runs over the output-gradient channels in chunks whose rows fit in L1 (about 16 KiB
    /// each), so consecutive rows of the phase reuse what the previous row loaded; the first
    /// chunk stores and the others add.
    fn run<const C: usize, const U: usize>(&self, weights: &[[f32; C]], out: &mut [f32]) {
        let (ry, rx) = self.phase.origin;
        let (rows, cols) = self.phase.size;
        let (kernel_rows, kernel_cols) = self.phase.kernel_taps;
        let row_bytes = kernel_rows * self.padded_width * std::mem::size_of::<f32>();
        let channels_per_chunk = (L1_CHUNK_BYTES / row_bytes).max(1);
        let chunk_taps = channels_per_chunk * kernel_rows * kernel_cols;
        for chunk_start in (0..self.taps.len()).step_by(chunk_taps) {
            let chunk = chunk_start..self.taps.len().min(chunk_start + chunk_taps);
            let taps = self.taps.slice(chunk.clone());
            let weights = &weights[chunk];
            let first_chunk = chunk_start == 0;
            for jy in 0..rows {
                let out_row = (ry + self.stride.0 * jy) * self.in_width + rx;
                for first in (0..cols).step_by(U * LANES) {
                    let start = jy * self.padded_width + first;
                    let acc = pixel_tile::<C, U>(self.source, start, taps, weights);
                    let count = (U * LANES).min(cols - first);
                    for (c, vectors) in acc.iter().enumerate() {
                        let values = vectors.map(|vector| vector.to_array());
                        let plane = &mut out[c * self.plane..][..self.plane];
                        for i in 0..count {
                            let at = out_row + self.stride.1 * (first + i);
                            let value = values[i / LANES][i % LANES];
                            if first_chunk {
                                plane[at] = value;
                            } else {
                                plane[at] += value;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Bytes of output-gradient rows one chunk of [`PixelJob`] reads per row of its phase.
const L1_CHUNK_BYTES: usize = 16 * 1024;
