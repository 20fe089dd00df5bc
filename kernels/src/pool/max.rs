//! Fast max pooling: rayon over `(batch x channel)` planes, `f32x8` over eight neighbouring
//! outputs of a row.
//!
//! Each thread copies its plane into a [`PaddedLayout`] buffer whose padding holds `-inf`, so
//! every tap of every window is one unaligned eight-float load with no border test. The eight
//! lanes keep a running maximum and the plane index it came from (as an `f32`, exact for
//! planes of up to 2^22 elements; larger planes take the reference's per-window loop). The
//! update is the reference's (`value > best || value.is_nan()`), taken in the same row-major tap
//! order, so the results are identical to [`super::reference::max_pool2d_forward`], ties and NaN
//! included. Padding `-inf` never wins a strict comparison; the index a lane starts from is the
//! window's first real element, which is what an all `-inf` window reports, as in PyTorch. Rows
//! of taps that lie wholly in the padding are skipped.
//!
//! Backward is a scatter-add through the saved argmax, one plane per task.

use rayon::prelude::*;
use wide::f32x8;

use super::padded::PaddedLayout;
use super::reference::{max_window, tap_input_index};
use super::EMPTY_WINDOW;
use crate::lanes::{load, planes_per_task, store_partial, LANES};
use crate::shuffle::split_pairs;
use crate::Pool2dGeometry;

/// Planes up to this many elements track the argmax as an `f32` plane index, which is exact
/// (every index, including the negative ones of padding taps, is an integer below 2^24).
const LARGEST_F32_INDEXED_PLANE: usize = 1 << 22;

/// Everything about the windows that is the same for every plane.
struct MaxPlan {
    layout: PaddedLayout,
    /// `[first, end)` of the kernel rows that fall on real input rows, per output row.
    real_kernel_rows: Vec<(usize, usize)>,
    /// Input column of the first real tap of each output column's window (as `f32`, the lane
    /// type of the tracked indices), padded with zeros to whole vectors.
    first_real_column: Vec<f32>,
    /// Whether output column `ox`'s window touches any real input column.
    column_has_input: Vec<bool>,
    /// Buffer offset of tap `kx` from the start of a padded row (see [`PaddedLayout::tap_offset`]).
    tap_buffer_offset: Vec<usize>,
    /// Per tap `kx`, the input column offsets of the eight lanes from lane 0's window start:
    /// `lane * stride_x + kx * dilation_x`.
    tap_lane_columns: Vec<f32x8>,
}

impl MaxPlan {
    fn new(g: &Pool2dGeometry) -> Self {
        let (out_h, out_w) = (g.out_height(), g.out_width());
        let (kernel_h, kernel_w) = g.kernel;
        let real_taps = |out: usize, kernel: usize, axis: usize| {
            let (stride, padding, dilation, size) = if axis == 0 {
                (g.stride.0, g.padding.0, g.dilation.0, g.in_height)
            } else {
                (g.stride.1, g.padding.1, g.dilation.1, g.in_width)
            };
            let real = |k: usize| tap_input_index(out, k, stride, padding, dilation, size);
            let first = (0..kernel).find(|&k| real(k).is_some()).unwrap_or(kernel);
            let end = (first..kernel)
                .find(|&k| real(k).is_none())
                .unwrap_or(kernel);
            (first, end, real(first).unwrap_or(0))
        };
        let real_kernel_rows = (0..out_h)
            .map(|oy| {
                let (first, end, _) = real_taps(oy, kernel_h, 0);
                (first, end)
            })
            .collect();
        let columns: Vec<(usize, usize, usize)> =
            (0..out_w).map(|ox| real_taps(ox, kernel_w, 1)).collect();
        let mut first_real_column: Vec<f32> = columns
            .iter()
            .map(|&(_, _, column)| column as f32)
            .collect();
        first_real_column.resize(out_w.div_ceil(LANES) * LANES, 0.0);
        let layout = PaddedLayout::new(g);
        let lane_columns = f32x8::new(std::array::from_fn(|lane| (lane * g.stride.1) as f32));
        MaxPlan {
            layout,
            real_kernel_rows,
            first_real_column,
            column_has_input: columns.iter().map(|&(first, end, _)| first < end).collect(),
            tap_buffer_offset: (0..kernel_w).map(|kx| layout.tap_offset(kx)).collect(),
            tap_lane_columns: (0..kernel_w)
                .map(|kx| lane_columns + f32x8::splat((kx * g.dilation.1) as f32))
                .collect(),
        }
    }
}

pub(crate) fn forward(g: &Pool2dGeometry, input: &[f32], output: &mut [f32], argmax: &mut [u32]) {
    let in_plane = g.in_height * g.in_width;
    let out_plane = g.out_height() * g.out_width();
    let planes = input
        .par_chunks(in_plane)
        .zip(output.par_chunks_mut(out_plane))
        .zip(argmax.par_chunks_mut(out_plane))
        .with_min_len(planes_per_task(in_plane));
    if in_plane > LARGEST_F32_INDEXED_PLANE {
        // Huge planes: one window at a time, as the reference does.
        return planes.for_each(|((input_plane, output_plane), argmax_plane)| {
            let out_w = g.out_width();
            for (out, (value, index)) in output_plane.iter_mut().zip(argmax_plane).enumerate() {
                (*value, *index) = max_window(g, input_plane, out / out_w, out % out_w);
            }
        });
    }
    if is_plain_2x2(g) {
        return planes.for_each(|((input_plane, output_plane), argmax_plane)| {
            max_plane_2x2(g, input_plane, output_plane, argmax_plane);
        });
    }
    let plan = MaxPlan::new(g);
    planes.for_each_init(
        || vec![f32::NEG_INFINITY; plan.layout.len()],
        |buffer, ((input_plane, output_plane), argmax_plane)| {
            plan.layout.scatter_plane(input_plane, buffer);
            max_plane(g, &plan, buffer, output_plane, argmax_plane);
        },
    );
}

/// 2 x 2 windows with stride 2, no padding, no dilation, every window inside the plane: the
/// pooling of LeNet-5 and VGG.
fn is_plain_2x2(g: &Pool2dGeometry) -> bool {
    g.kernel == (2, 2)
        && g.stride == (2, 2)
        && g.padding == (0, 0)
        && g.dilation == (1, 1)
        && 2 * g.out_height() <= g.in_height
        && 2 * g.out_width() <= g.in_width
}

/// [`is_plain_2x2`] windows, eight at a time, read straight from the plane's two rows: there is
/// no padding, so no padded copy. Sixteen columns of each row split into the eight windows' left
/// and right columns, and the reference's rule runs over the four taps in its order (top left,
/// top right, bottom left, bottom right). Lanes past the row's last window compute something
/// and are not stored; where sixteen columns would run past the plane, the missing ones read as
/// zero.
fn max_plane_2x2(g: &Pool2dGeometry, input: &[f32], output: &mut [f32], argmax: &mut [u32]) {
    let (in_w, out_w) = (g.in_width, g.out_width());
    let lane_columns = f32x8::new(std::array::from_fn(|lane| (2 * lane) as f32));
    let (right, below) = (f32x8::splat(1.0), f32x8::splat(in_w as f32));
    for (oy, (output_row, argmax_row)) in output
        .chunks_exact_mut(out_w)
        .zip(argmax.chunks_exact_mut(out_w))
        .enumerate()
    {
        for ox0 in (0..out_w).step_by(LANES) {
            let at = 2 * (oy * in_w + ox0);
            let (top_left, top_right) = split_pairs(&sixteen_from(input, at));
            let (bottom_left, bottom_right) = split_pairs(&sixteen_from(input, at + in_w));
            let first = f32x8::splat(at as f32) + lane_columns;
            let mut best = f32x8::new(top_left);
            let mut best_index = first;
            for (value, index) in [
                (top_right, first + right),
                (bottom_left, first + below),
                (bottom_right, first + below + right),
            ] {
                let value = f32x8::new(value);
                let take = value.simd_gt(best) | value.is_nan();
                best = take.select(value, best);
                best_index = take.select(index, best_index);
            }
            store_partial(best, &mut output_row[ox0..]);
            let indices = best_index.round_int().to_array();
            for (slot, &index) in argmax_row[ox0..].iter_mut().zip(&indices) {
                *slot = index as u32;
            }
        }
    }
}

/// `plane[at..at + 16]`, with zeros for the part past the end of `plane`.
#[inline(always)]
fn sixteen_from(plane: &[f32], at: usize) -> [f32; 2 * LANES] {
    match plane.get(at..at + 2 * LANES) {
        Some(values) => values.try_into().expect("sixteen values"),
        None => {
            let mut values = [0.0; 2 * LANES];
            let rest = &plane[at..];
            values[..rest.len()].copy_from_slice(rest);
            values
        }
    }
}

fn max_plane(
    g: &Pool2dGeometry,
    plan: &MaxPlan,
    padded: &[f32],
    output: &mut [f32],
    argmax: &mut [u32],
) {
    let out_w = g.out_width();
    for (oy, (output_row, argmax_row)) in output
        .chunks_exact_mut(out_w)
        .zip(argmax.chunks_exact_mut(out_w))
        .enumerate()
    {
        let (first_row, end_row) = plan.real_kernel_rows[oy];
        if first_row == end_row {
            output_row.fill(f32::NEG_INFINITY);
            argmax_row.fill(EMPTY_WINDOW);
            continue;
        }
        // Input row of kernel row ky (real for ky in first_row..end_row).
        let input_row = |ky: usize| oy * g.stride.0 + ky * g.dilation.0 - g.padding.0;
        for ox0 in (0..out_w).step_by(LANES) {
            // Plane index of lane 0's window start, kernel column 0 (may lie in the padding).
            let window_column = (ox0 * g.stride.1) as f32 - g.padding.1 as f32;
            let mut best = f32x8::splat(f32::NEG_INFINITY);
            let mut best_index = f32x8::splat((input_row(first_row) * g.in_width) as f32)
                + load(&plan.first_real_column[ox0..]);
            for ky in first_row..end_row {
                let padded_row = oy * g.stride.0 + ky * g.dilation.0;
                let row = &padded[plan.layout.row_start(padded_row) + ox0..];
                let row_index = f32x8::splat((input_row(ky) * g.in_width) as f32 + window_column);
                for (&offset, &lane_columns) in
                    plan.tap_buffer_offset.iter().zip(&plan.tap_lane_columns)
                {
                    let value = load(&row[offset..]);
                    let take = value.simd_gt(best) | value.is_nan();
                    best = take.select(value, best);
                    best_index = take.select(row_index + lane_columns, best_index);
                }
            }
            store_partial(best, &mut output_row[ox0..]);
            let indices = best_index.round_int().to_array();
            let lanes = LANES.min(out_w - ox0);
            for (lane, &index) in indices[..lanes].iter().enumerate() {
                argmax_row[ox0 + lane] = if plan.column_has_input[ox0 + lane] {
                    index as u32
                } else {
                    EMPTY_WINDOW
                };
            }
        }
    }
}

pub(crate) fn backward(
    g: &Pool2dGeometry,
    grad_output: &[f32],
    argmax: &[u32],
    grad_input: &mut [f32],
) {
    let in_plane = g.in_height * g.in_width;
    let out_plane = g.out_height() * g.out_width();
    grad_input
        .par_chunks_mut(in_plane)
        .zip(grad_output.par_chunks(out_plane))
        .zip(argmax.par_chunks(out_plane))
        .with_min_len(planes_per_task(in_plane))
        .for_each(|((grad_input_plane, grad_output_plane), argmax_plane)| {
            grad_input_plane.fill(0.0);
            for (&grad, &index) in grad_output_plane.iter().zip(argmax_plane) {
                if index != EMPTY_WINDOW {
                    grad_input_plane[index as usize] += grad;
                }
            }
        });
}
