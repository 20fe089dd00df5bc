//! Depthwise backward-data: the transposed convolution, computed as a gather so each element of
//! `grad_input` is produced once, in registers, and written once.
//!
//! Along each axis, input position `i` (padded `p = i + pad`) splits into a phase `p % stride`
//! and a quotient `q = p / stride`; tap `k` reaches it iff `(k * dilation) % stride` is that
//! phase, from output position `q - (k * dilation) / stride`. So within one (row phase,
//! column phase) pair the taps are fixed backward offsets, and 8 consecutive `q` along a row
//! are one contiguous load per tap from a zero-padded copy of the output-gradient planes.
//! Vectors of a phase pair are processed 8 at a time (across rows, so small planes fill a
//! block too); with stride 1 there is one phase pair and the results are stored contiguously,
//! otherwise they are stored contiguously per phase in a staging plane and interleaved back
//! into column order once per plane.

use super::{channels, copy_rows, load_at, narrow, planes_per_task, store, stride_two, LANES};
use crate::Conv2dGeometry;
use rayon::prelude::*;
use wide::f32x8;

/// Zero-padded copies of the `multiplier` output-gradient planes of one input channel. Plane
/// `m` starts at `m * plane_len`; `grad_output[m, oy, ox]` is at
/// `(top + oy) * row_len + left + ox`, and reads outside the plane see zeros.
#[derive(Clone, Copy)]
struct PaddedGrad {
    out_width: usize,
    top: usize,
    left: usize,
    row_len: usize,
    plane_len: usize,
}

impl PaddedGrad {
    fn for_geometry(g: &Conv2dGeometry) -> Self {
        let top = (g.kernel_height - 1) * g.dilation.0 / g.stride.0;
        let left = (g.kernel_width - 1) * g.dilation.1 / g.stride.1;
        // The largest quotient along each axis (plus a whole vector of columns for the last,
        // partial block of a row).
        let last_row = (g.padding.0 + g.in_height - 1) / g.stride.0;
        let last_column = (g.padding.1 + g.in_width - 1) / g.stride.1 + LANES;
        let row_len = left + g.out_width().max(last_column + 1);
        let rows = top + g.out_height().max(last_row + 1);
        PaddedGrad {
            out_width: g.out_width(),
            top,
            left,
            row_len,
            plane_len: rows * row_len,
        }
    }

    /// Copies the planes in; the zero margins of `scratch` (allocated zeroed) are never written.
    fn fill(&self, planes: &[f32], scratch: &mut [f32], out_plane: usize) {
        let out_height = out_plane / self.out_width;
        for m in 0..planes.len() / out_plane {
            let dst = &mut scratch[m * self.plane_len + self.top * self.row_len + self.left..];
            let src = &planes[m * out_plane..][..out_plane];
            copy_rows(
                src,
                self.out_width,
                dst,
                self.row_len,
                out_height,
                self.out_width,
            );
        }
    }
}

/// The input positions of one (row phase, column phase) pair, as vectors, and the taps that
/// reach them.
struct Phase {
    /// `(tap index ky * kernel_width + kx, reach - backward offset in the padded gradient
    /// plane)`: the index of the tap's value from a base `reach` values before a vector's start.
    taps: Vec<(usize, usize)>,
    /// The largest backward offset of the taps.
    reach: usize,
    vectors: Vec<InputVector>,
}

/// Up to 8 input positions `q..q+8` of one row of one phase: where `q` sits in the padded
/// gradient plane, where the first lane goes in the input plane, and how many lanes are real.
#[derive(Clone, Copy)]
struct InputVector {
    grad: usize,
    input: usize,
    count: usize,
}

/// Length of one column phase of one row in the staging buffer used when `stride_w > 1`.
fn stage_phase_len(g: &Conv2dGeometry) -> usize {
    g.in_width.div_ceil(g.stride.1)
}

fn phases(g: &Conv2dGeometry, layout: &PaddedGrad) -> Vec<Phase> {
    let (stride_h, stride_w) = g.stride;
    let (pad_h, pad_w) = g.padding;
    let mut phases = Vec::with_capacity(stride_h * stride_w);
    for row_phase in 0..stride_h {
        for column_phase in 0..stride_w {
            let mut taps = Vec::new();
            for ky in 0..g.kernel_height {
                for kx in 0..g.kernel_width {
                    let (dy, dx) = (ky * g.dilation.0, kx * g.dilation.1);
                    if dy % stride_h == row_phase && dx % stride_w == column_phase {
                        let back = dy / stride_h * layout.row_len + dx / stride_w;
                        taps.push((ky * g.kernel_width + kx, back));
                    }
                }
            }
            // Columns of this phase inside the input: quotients first_q..end_q.
            let first_q = pad_w.saturating_sub(column_phase).div_ceil(stride_w);
            let end_q = (pad_w + g.in_width)
                .saturating_sub(column_phase)
                .div_ceil(stride_w);
            let mut vectors = Vec::new();
            for iy in 0..g.in_height {
                let padded_row = iy + pad_h;
                if padded_row % stride_h != row_phase {
                    continue;
                }
                let grad_row = (layout.top + padded_row / stride_h) * layout.row_len + layout.left;
                for q in (first_q..end_q).step_by(LANES) {
                    // Stride 1: straight into the input gradient. Otherwise into the staging
                    // row, phase by phase (see `interleave`).
                    let input = if stride_w == 1 {
                        iy * g.in_width + q - pad_w
                    } else {
                        let phase_len = stage_phase_len(g);
                        (iy * stride_w + column_phase) * phase_len + q - first_q
                    };
                    vectors.push(InputVector {
                        grad: grad_row + q,
                        input,
                        count: (end_q - q).min(LANES),
                    });
                }
            }
            // Every window must lie inside the padded plane: from `grad - back` for the
            // largest `back` to `grad + LANES` with no back step. The gather relies on it.
            let reach = taps.iter().map(|&(_, back)| back).max().unwrap_or(0);
            for vector in &vectors {
                assert!(reach <= vector.grad && vector.grad + LANES <= layout.plane_len);
            }
            let taps = taps
                .into_iter()
                .map(|(tap, back)| (tap, reach - back))
                .collect();
            phases.push(Phase {
                taps,
                reach,
                vectors,
            });
        }
    }
    phases
}

/// `grad_input[n, ci] = sum over m of the transposed depthwise conv of grad_output[n, ci*M + m]`.
pub fn backward_data(
    g: &Conv2dGeometry,
    grad_output: &[f32],
    weight: &[f32],
    grad_input: &mut [f32],
) {
    if channels::applies(g) {
        return channels::backward_data(g, grad_output, weight, grad_input);
    }
    if narrow::applies(g) && g.out_channels == g.in_channels {
        return narrow::backward_data(g, grad_output, weight, grad_input);
    }
    if stride_two::applies(g) {
        return stride_two::backward_data(g, grad_output, weight, grad_input);
    }
    let in_plane = g.in_height * g.in_width;
    if in_plane == 0 {
        return;
    }
    let multiplier = g.out_channels / g.in_channels;
    let out_plane = g.out_height() * g.out_width();
    let taps = g.kernel_height * g.kernel_width;
    let layout = PaddedGrad::for_geometry(g);
    let phases = phases(g, &layout);
    let column_stride = g.stride.1;
    let stage_len = if column_stride == 1 {
        0
    } else {
        g.in_height * column_stride * stage_phase_len(g)
    };
    let planes = g.batch * g.in_channels;
    let chunk = planes_per_task(planes);
    grad_input
        .par_chunks_mut(chunk * in_plane)
        .enumerate()
        .for_each(|(task, gi_chunk)| {
            let mut scratch = vec![0.0f32; multiplier * layout.plane_len];
            let mut stage = vec![0.0f32; stage_len];
            let first_plane = task * chunk;
            let mut in_channel = first_plane % g.in_channels;
            for local in 0..gi_chunk.len() / in_plane {
                let plane = first_plane + local;
                let gi_plane = &mut gi_chunk[local * in_plane..][..in_plane];
                let dy = &grad_output[plane * multiplier * out_plane..][..multiplier * out_plane];
                layout.fill(dy, &mut scratch, out_plane);
                let gather = Gather {
                    scratch: &scratch,
                    filters: &weight[in_channel * multiplier * taps..][..multiplier * taps],
                    taps,
                    multiplier,
                    plane_len: layout.plane_len,
                };
                let target = if column_stride == 1 {
                    &mut *gi_plane
                } else {
                    &mut stage[..]
                };
                for phase in &phases {
                    let mut blocks = phase.vectors.chunks_exact(8);
                    for block in &mut blocks {
                        // SAFETY: `phases` checked every window of `phase` against the padded plane.
                        unsafe { gather.apply::<8>(phase, block, target) };
                    }
                    let mut rest = blocks.remainder().chunks_exact(4);
                    for block in &mut rest {
                        // SAFETY: `phases` checked every window of `phase` against the padded plane.
                        unsafe { gather.apply::<4>(phase, block, target) };
                    }
                    for block in rest.remainder().chunks_exact(1) {
                        // SAFETY: `phases` checked every window of `phase` against the padded plane.
                        unsafe { gather.apply::<1>(phase, block, target) };
                    }
                }
                if column_stride > 1 {
                    interleave(g, &stage, gi_plane);
                }
                in_channel += 1;
                if in_channel == g.in_channels {
                    in_channel = 0;
                }
            }
        });
}

/// Everything the gather of one input-gradient plane reads.
struct Gather<'a> {
    scratch: &'a [f32],
    /// The `multiplier` filters of this input channel, one after another.
    filters: &'a [f32],
    taps: usize,
    multiplier: usize,
    plane_len: usize,
}

impl Gather<'_> {
    /// Computes and stores `BLOCK` input-gradient vectors (`block.len() == BLOCK`).
    ///
    /// # Safety
    /// `phase` was built by [`phases`] for this layout (its windows are inside each plane).
    #[inline(always)]
    unsafe fn apply<const BLOCK: usize>(
        &self,
        phase: &Phase,
        block: &[InputVector],
        target: &mut [f32],
    ) {
        // One base pointer per vector, `reach` values before its start, and the tap's
        // `reach - back` as the index: plain `base + index * 4` loads.
        let bases: [*const f32; BLOCK] = std::array::from_fn(|v| {
            self.scratch
                .as_ptr()
                .wrapping_add(block[v].grad - phase.reach)
        });
        let mut acc = [f32x8::ZERO; BLOCK];
        for m in 0..self.multiplier {
            let filter = &self.filters[m * self.taps..][..self.taps];
            let plane = m * self.plane_len;
            for &(tap, index) in &phase.taps {
                let w = f32x8::splat(filter[tap]);
                for (acc, &base) in acc.iter_mut().zip(&bases) {
                    // SAFETY: `reach - back + grad - reach = grad - back`, inside plane `m` of
                    // `scratch` as `phases` checked.
                    let dy = unsafe { load_at(base, plane + index) };
                    *acc = dy.mul_add(w, *acc);
                }
            }
        }
        for (acc, vector) in acc.into_iter().zip(block) {
            store(acc, target, vector.input, vector.count);
        }
    }
}

/// Writes the staged rows (`stride_w` column phases each) back in column order. Input column
/// `stride * i + t` of a row is element `i` of phase `(pad + t) % stride` (the phases start at
/// their first column inside the input, which makes the index the same `i` for every `t`).
fn interleave(g: &Conv2dGeometry, stage: &[f32], grad_input: &mut [f32]) {
    let (stride, pad) = (g.stride.1, g.padding.1);
    let phase_len = stage_phase_len(g);
    for (row, staged) in grad_input
        .chunks_exact_mut(g.in_width)
        .zip(stage.chunks_exact(stride * phase_len))
    {
        if stride == 2 {
            let first = &staged[(pad % 2) * phase_len..][..phase_len];
            let second = &staged[((pad + 1) % 2) * phase_len..][..phase_len];
            // Indexed over pre-cut slices so the loop compiles to vector shuffles.
            let pairs = g.in_width / 2;
            let (row_pairs, a, b) = (&mut row[..2 * pairs], &first[..pairs], &second[..pairs]);
            for i in 0..pairs {
                row_pairs[2 * i] = a[i];
                row_pairs[2 * i + 1] = b[i];
            }
            if g.in_width % 2 == 1 {
                row[g.in_width - 1] = first[pairs];
            }
        } else {
            for (ix, value) in row.iter_mut().enumerate() {
                let phase = (pad + ix % stride) % stride;
                *value = staged[phase * phase_len + ix / stride];
            }
        }
    }
}
