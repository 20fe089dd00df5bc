//! The stride phases of the input gradient and what each needs to run.

use super::FEW_CHANNELS;
use crate::conv::tile::{as_arrays, ChannelBlock, LANES};
use crate::Conv2dGeometry;
use wide::f32x8;

/// One stride phase along one axis: the input positions `r, r + stride, ...` and the kernel taps
/// that reach them. Input position `r + stride * j` receives tap `k` from output position
/// `j + shift`, where `shift = (r + padding - k * dilation) / stride` (an exact division).
pub(super) struct AxisPhase {
    /// Input positions in the phase.
    pub(super) count: usize,
    /// `(kernel index, shift)` of every tap that reaches some output position.
    pub(super) taps: Vec<(usize, isize)>,
}

pub(super) fn axis_phases(
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
pub(super) fn phase_padding(phases: &[AxisPhase], out_size: usize) -> (usize, usize) {
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
pub(super) struct Phase {
    /// Offsets of the taps in a padded output-gradient image, one table per group. The
    /// pixel-vectorised job takes them in the order `(out_channel in group, ky, kx)`; the
    /// channel-vectorised one in the order `(ky, out_channel in group, kx)`, so that the taps of
    /// a run of kernel rows are one contiguous slice (see `row_taps`).
    pub(super) taps_by_group: Vec<Vec<u32>>,
    /// Per row of the phase, the kernel rows (indices into the phase's row taps, `[first, end)`)
    /// that read real output-gradient rows; the others read only the zero padding. Where the
    /// maps are small beside the kernel this is much of the work: LeNet-5's 5 x 5 kernel over a
    /// 10 x 10 gradient reads padding in 2 of every 7 row taps.
    pub(super) row_taps: Vec<(usize, usize)>,
    /// Taps per kernel row of the phase, in the channel-vectorised order.
    pub(super) taps_per_row_tap: usize,
    /// Per in-channel block: the transposed, flipped weights, `[tap][channels]`.
    pub(super) weights_by_block: Vec<PackedWeights>,
    /// First input row and column of the phase, and its rows and columns.
    pub(super) origin: (usize, usize),
    pub(super) size: (usize, usize),
    /// Kernel rows and columns that reach the phase.
    pub(super) kernel_taps: (usize, usize),
    /// Where each input pixel of the phase reads in the padded output gradient (tap 0 offset).
    pub(super) bases: Vec<usize>,
    /// Where each input pixel of the phase lives in an input plane.
    pub(super) stores: Vec<usize>,
}

/// Where the output gradient sits in its padded copy, and the copy's plane size.
pub(super) struct PaddedLayout {
    pub(super) top: usize,
    pub(super) left: usize,
    pub(super) height: usize,
    pub(super) width: usize,
}

impl Phase {
    /// The phase of input rows `ry + stride_h * j` and columns `rx + stride_w * j`:
    /// its tap offsets, packed weights and pixel tables.
    pub(super) fn new(
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
        // The taps in the order their job wants: `(out_local, row tap, col tap)` for the
        // pixel-vectorised job, `(row tap, out_local, col tap)` for the channel-vectorised one.
        let tap_order: Vec<(usize, usize)> = if few_channels {
            (0..out_per_group)
                .flat_map(|out_local| (0..row_phase.taps.len()).map(move |r| (out_local, r)))
                .collect()
        } else {
            (0..row_phase.taps.len())
                .flat_map(|r| (0..out_per_group).map(move |out_local| (out_local, r)))
                .collect()
        };
        let taps_by_group = (0..g.groups)
            .map(|group| {
                let mut offsets = Vec::new();
                for &(out_local, r) in &tap_order {
                    let plane = group * out_per_group + out_local;
                    let shift_y = row_phase.taps[r].1;
                    for &(_, shift_x) in &col_phase.taps {
                        let y = (layout.top as isize + shift_y) as usize;
                        let x = (layout.left as isize + shift_x) as usize;
                        let offset = (plane * layout.height + y) * layout.width + x;
                        offsets.push(u32::try_from(offset).expect("gradient exceeds u32"));
                    }
                }
                offsets
            })
            .collect();
        let out_height = g.out_height() as isize;
        let row_taps = (0..row_phase.count)
            .map(|jy| {
                let real =
                    |&(_, shift): &(usize, isize)| (0..out_height).contains(&(shift + jy as isize));
                let taps = &row_phase.taps;
                match (taps.iter().position(real), taps.iter().rposition(real)) {
                    (Some(first), Some(last)) => (first, last + 1),
                    _ => (0, 0),
                }
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
                for &(out_local, r) in &tap_order {
                    let out_channel = block.group * out_per_group + out_local;
                    let ky = row_phase.taps[r].0;
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
            row_taps,
            taps_per_row_tap: out_per_group * col_phase.taps.len(),
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
pub(super) enum PackedWeights {
    Vectors(Vec<f32x8>),
    Scalars(Vec<f32>),
}
