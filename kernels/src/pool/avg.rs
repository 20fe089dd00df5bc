//! Fast average pooling: rayon over `(batch x channel)` planes, `f32x8` over eight neighbouring
//! outputs of a row.
//!
//! As for max pooling, each thread copies its plane into a [`PaddedLayout`] buffer, here with
//! zeros in the padding, so a window sum is `kernel_h x kernel_w` eight-float loads and adds with
//! no border test (taps in the padding add zero; rows of taps wholly in the padding are skipped).
//! The divisor is separable, `divisor_y[oy] * divisor_x[ox]` (see
//! [`super::reference::avg_window`]); both factors are small integers, so their product is exact
//! and the quotient equals the reference's. An empty window's factor is stored as 1 (its sum is
//! 0, and PyTorch outputs 0).
//!
//! Backward turns the scatter around within each row: each output gradient over its divisor is
//! written to a row of "shares"; every padded position then gathers the shares of the outputs
//! whose windows cover it along the row (a few shifted eight-float loads per phase), and adds
//! the total to each covered row of a zeroed padded buffer, whose real positions are finally
//! copied to `grad_input`. Adding each tap's run directly would make every load overlap the
//! previous store by seven lanes, which stalls store-to-load forwarding.

use rayon::prelude::*;
use wide::f32x8;

use super::padded::PaddedLayout;
use super::reference::{avg_window, tap_input_index};
use crate::lanes::{load, load_partial, planes_per_task, store, store_partial, LANES};
use crate::Pool2dGeometry;

/// Everything about the windows that is the same for every plane.
struct AvgPlan {
    layout: PaddedLayout,
    /// `[first, end)` of the kernel rows that fall on real input rows, per output row.
    real_kernel_rows: Vec<(usize, usize)>,
    divisor_y: Vec<f32>,
    /// Per output column, padded with ones to whole vectors.
    divisor_x: Vec<f32>,
    tap_buffer_offset: Vec<usize>,
}

impl AvgPlan {
    fn new(g: &Pool2dGeometry, count_include_pad: bool) -> Self {
        let (out_h, out_w) = (g.out_height(), g.out_width());
        let factor = |out: usize, axis: usize| {
            let (kernel, stride, padding, size) = if axis == 0 {
                (g.kernel.0, g.stride.0, g.padding.0, g.in_height)
            } else {
                (g.kernel.1, g.stride.1, g.padding.1, g.in_width)
            };
            let (start, end, divisor) =
                avg_window(out, kernel, stride, padding, size, count_include_pad);
            if start == end {
                1.0
            } else {
                divisor as f32
            }
        };
        let real_kernel_rows = (0..out_h)
            .map(|oy| {
                let real = |ky: usize| {
                    tap_input_index(oy, ky, g.stride.0, g.padding.0, 1, g.in_height).is_some()
                };
                let first = (0..g.kernel.0).find(|&ky| real(ky)).unwrap_or(g.kernel.0);
                let end = (first..g.kernel.0)
                    .find(|&ky| !real(ky))
                    .unwrap_or(g.kernel.0);
                (first, end)
            })
            .collect();
        let mut divisor_x: Vec<f32> = (0..out_w).map(|ox| factor(ox, 1)).collect();
        divisor_x.resize(out_w.div_ceil(LANES) * LANES, 1.0);
        let layout = PaddedLayout::new(g);
        AvgPlan {
            layout,
            real_kernel_rows,
            divisor_y: (0..out_h).map(|oy| factor(oy, 0)).collect(),
            divisor_x,
            tap_buffer_offset: (0..g.kernel.1).map(|kx| layout.tap_offset(kx)).collect(),
        }
    }

    /// Buffer offset of the first tap row `ky` for output row `oy`, output column 0.
    fn row_start(&self, g: &Pool2dGeometry, oy: usize, ky: usize) -> usize {
        self.layout.row_start(oy * g.stride.0 + ky)
    }
}

pub(crate) fn forward(
    g: &Pool2dGeometry,
    count_include_pad: bool,
    input: &[f32],
    output: &mut [f32],
) {
    let plan = AvgPlan::new(g, count_include_pad);
    let in_plane = g.in_height * g.in_width;
    let out_w = g.out_width();
    input
        .par_chunks(in_plane)
        .zip(output.par_chunks_mut(g.out_height() * out_w))
        .with_min_len(planes_per_task(in_plane))
        .for_each_init(
            || vec![0.0; plan.layout.len()],
            |padded, (input_plane, output_plane)| {
                plan.layout.scatter_plane(input_plane, padded);
                for (oy, output_row) in output_plane.chunks_exact_mut(out_w).enumerate() {
                    let (first_row, end_row) = plan.real_kernel_rows[oy];
                    let divisor_y = f32x8::splat(plan.divisor_y[oy]);
                    for ox0 in (0..out_w).step_by(LANES) {
                        let mut sum = f32x8::ZERO;
                        for ky in first_row..end_row {
                            let row = &padded[plan.row_start(g, oy, ky) + ox0..];
                            for &offset in &plan.tap_buffer_offset {
                                sum += load(&row[offset..]);
                            }
                        }
                        let mean = sum / (divisor_y * load(&plan.divisor_x[ox0..]));
                        store_partial(mean, &mut output_row[ox0..]);
                    }
                }
            },
        );
}

pub(crate) fn backward(
    g: &Pool2dGeometry,
    count_include_pad: bool,
    grad_output: &[f32],
    grad_input: &mut [f32],
) {
    let plan = AvgPlan::new(g, count_include_pad);
    let in_plane = g.in_height * g.in_width;
    let out_w = g.out_width();
    let phases = g.stride.1;
    // Tap kx of output ox lands on position ox + kx / phases of phase kx % phases.
    let shifts_by_phase: Vec<Vec<usize>> = (0..phases)
        .map(|phase| {
            let taps = (0..g.kernel.1).filter(|kx| kx % phases == phase);
            taps.map(|kx| kx / phases).collect()
        })
        .collect();
    let farthest_shift = (g.kernel.1 - 1) / phases;
    let gathered_len = (out_w + farthest_shift).div_ceil(LANES) * LANES;
    let phase_len = plan.layout.phase_len();
    grad_input
        .par_chunks_mut(in_plane)
        .zip(grad_output.par_chunks(g.out_height() * out_w))
        .with_min_len(planes_per_task(in_plane))
        .for_each_init(
            || {
                let padded = vec![0.0; plan.layout.len()];
                // shares[farthest_shift + ox] = output ox's gradient over its divisor; zeros
                // on both sides stand for outputs that do not exist.
                let shares = vec![0.0; farthest_shift + gathered_len];
                (padded, shares)
            },
            |(padded, shares), (grad_input_plane, grad_output_plane)| {
                padded.fill(0.0);
                for (oy, grad_row) in grad_output_plane.chunks_exact(out_w).enumerate() {
                    let (first_row, end_row) = plan.real_kernel_rows[oy];
                    let divisor_y = f32x8::splat(plan.divisor_y[oy]);
                    for ox0 in (0..out_w).step_by(LANES) {
                        // Lanes past the row's end load zero and store zero.
                        let share = load_partial(&grad_row[ox0..])
                            / (divisor_y * load(&plan.divisor_x[ox0..]));
                        store(share, &mut shares[farthest_shift + ox0..]);
                    }
                    // Gather, per padded position, the shares of the outputs whose windows
                    // cover it in this row, then add that to every covered row. Every store
                    // is to a whole aligned run that later loads read back whole, so no load
                    // waits on a partly overlapping store.
                    for (phase, shifts) in shifts_by_phase.iter().enumerate() {
                        for j0 in (0..gathered_len).step_by(LANES) {
                            let mut gathered = f32x8::ZERO;
                            for &shift in shifts {
                                gathered += load(&shares[farthest_shift + j0 - shift..]);
                            }
                            for ky in first_row..end_row {
                                let start = plan.row_start(g, oy, ky) + phase * phase_len + j0;
                                let run = &mut padded[start..];
                                store(load(run) + gathered, run);
                            }
                        }
                    }
                }
                plan.layout.gather_plane(padded, grad_input_plane);
            },
        );
}
