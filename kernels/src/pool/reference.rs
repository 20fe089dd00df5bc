//! Scalar reference pooling: one output at a time, every window walked in row-major order.
//!
//! These functions are the definitions the fast kernels are tested against, written to be read
//! next to PyTorch's documentation. They assume the caller (the checked functions in
//! [`crate::pool`]) has validated the geometry and the slice lengths, and they overwrite their
//! outputs.

use super::{AdaptivePool2dGeometry, NchwShape, EMPTY_WINDOW};
use crate::Pool2dGeometry;

/// Input index under window tap `tap` of output position `out` along one axis, or `None` when
/// the tap falls in the padding (PyTorch's `out * stride - padding + tap * dilation`).
#[inline]
pub(crate) fn tap_input_index(
    out: usize,
    tap: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
    size: usize,
) -> Option<usize> {
    let index = (out * stride + tap * dilation).checked_sub(padding)?;
    (index < size).then_some(index)
}

/// Maximum of one window and the flat plane index where it was found.
///
/// PyTorch's rule: the first real element seeds the maximum, and a later element replaces it when
/// it is strictly greater (so ties keep the first, in row-major scan order) or when it is NaN (so
/// a NaN propagates, and the index is that of the last NaN). A window that covers no real element
/// (only possible with dilation) gives `-inf` and [`EMPTY_WINDOW`].
pub(crate) fn max_window(
    g: &Pool2dGeometry,
    plane: &[f32],
    out_y: usize,
    out_x: usize,
) -> (f32, u32) {
    let mut best = f32::NEG_INFINITY;
    let mut best_index = None;
    for ky in 0..g.kernel.0 {
        let Some(iy) = tap_input_index(
            out_y,
            ky,
            g.stride.0,
            g.padding.0,
            g.dilation.0,
            g.in_height,
        ) else {
            continue;
        };
        for kx in 0..g.kernel.1 {
            let Some(ix) =
                tap_input_index(out_x, kx, g.stride.1, g.padding.1, g.dilation.1, g.in_width)
            else {
                continue;
            };
            let index = iy * g.in_width + ix;
            let value = plane[index];
            if best_index.is_none() || value > best || value.is_nan() {
                best = value;
                best_index = Some(index);
            }
        }
    }
    (best, best_index.map_or(EMPTY_WINDOW, |i| i as u32))
}

/// `output[n, c, oy, ox] = max over the window`, and `argmax` its flat index in the input plane.
pub fn max_pool2d_forward(
    g: &Pool2dGeometry,
    input: &[f32],
    output: &mut [f32],
    argmax: &mut [u32],
) {
    let (out_h, out_w) = (g.out_height(), g.out_width());
    let in_plane = g.in_height * g.in_width;
    for plane in 0..g.batch * g.channels {
        let input_plane = &input[plane * in_plane..][..in_plane];
        for oy in 0..out_h {
            for ox in 0..out_w {
                let (value, index) = max_window(g, input_plane, oy, ox);
                let out = (plane * out_h + oy) * out_w + ox;
                output[out] = value;
                argmax[out] = index;
            }
        }
    }
}

/// Each output gradient goes to the input element that won its window (added, since windows
/// overlap). Outputs of empty windows send nothing.
pub fn max_pool2d_backward(
    g: &Pool2dGeometry,
    grad_output: &[f32],
    argmax: &[u32],
    grad_input: &mut [f32],
) {
    grad_input.fill(0.0);
    let out_plane = g.out_height() * g.out_width();
    let in_plane = g.in_height * g.in_width;
    for plane in 0..g.batch * g.channels {
        for out in plane * out_plane..(plane + 1) * out_plane {
            if argmax[out] != EMPTY_WINDOW {
                grad_input[plane * in_plane + argmax[out] as usize] += grad_output[out];
            }
        }
    }
}

/// The window of output `out` along one axis for average pooling: the real input range
/// `[start, end)` and the divisor's factor along this axis.
///
/// PyTorch's rule: the window `[out * stride - padding, + kernel)` is first clipped to the
/// padded input (`end <= size + padding`, which only matters in `ceil_mode`); that length is the
/// divisor with `count_include_pad`. The window is then clipped to the real input, and that
/// length is the divisor without it.
pub(crate) fn avg_window(
    out: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    size: usize,
    count_include_pad: bool,
) -> (usize, usize, usize) {
    let padded_start = out * stride; // in padded coordinates: input index + padding
    let padded_end = (padded_start + kernel).min(size + 2 * padding);
    let with_padding = padded_end - padded_start;
    let start = padded_start.saturating_sub(padding).min(size);
    let end = padded_end.saturating_sub(padding).min(size);
    let divisor = if count_include_pad {
        with_padding
    } else {
        end.saturating_sub(start)
    };
    (start, end.max(start), divisor)
}

/// `output[n, c, oy, ox] = sum of the window / divisor` (see `avg_window`); a window with
/// no real element gives 0. Dilation must be 1 (PyTorch's `AvgPool2d` has none).
pub fn avg_pool2d_forward(
    g: &Pool2dGeometry,
    count_include_pad: bool,
    input: &[f32],
    output: &mut [f32],
) {
    let (out_h, out_w) = (g.out_height(), g.out_width());
    let in_plane = g.in_height * g.in_width;
    for plane in 0..g.batch * g.channels {
        let input_plane = &input[plane * in_plane..][..in_plane];
        for oy in 0..out_h {
            let (y0, y1, divisor_y) = avg_window(
                oy,
                g.kernel.0,
                g.stride.0,
                g.padding.0,
                g.in_height,
                count_include_pad,
            );
            for ox in 0..out_w {
                let (x0, x1, divisor_x) = avg_window(
                    ox,
                    g.kernel.1,
                    g.stride.1,
                    g.padding.1,
                    g.in_width,
                    count_include_pad,
                );
                let mut sum = 0.0f32;
                for iy in y0..y1 {
                    for ix in x0..x1 {
                        sum += input_plane[iy * g.in_width + ix];
                    }
                }
                let empty = y0 == y1 || x0 == x1;
                output[(plane * out_h + oy) * out_w + ox] = if empty {
                    0.0
                } else {
                    sum / (divisor_y * divisor_x) as f32
                };
            }
        }
    }
}

/// Each output gradient, divided by its window's divisor, is added to every real element of
/// the window.
pub fn avg_pool2d_backward(
    g: &Pool2dGeometry,
    count_include_pad: bool,
    grad_output: &[f32],
    grad_input: &mut [f32],
) {
    grad_input.fill(0.0);
    let (out_h, out_w) = (g.out_height(), g.out_width());
    let in_plane = g.in_height * g.in_width;
    for plane in 0..g.batch * g.channels {
        let grad_plane = &mut grad_input[plane * in_plane..][..in_plane];
        for oy in 0..out_h {
            let (y0, y1, divisor_y) = avg_window(
                oy,
                g.kernel.0,
                g.stride.0,
                g.padding.0,
                g.in_height,
                count_include_pad,
            );
            for ox in 0..out_w {
                let (x0, x1, divisor_x) = avg_window(
                    ox,
                    g.kernel.1,
                    g.stride.1,
                    g.padding.1,
                    g.in_width,
                    count_include_pad,
                );
                if y0 == y1 || x0 == x1 {
                    continue;
                }
                let share =
                    grad_output[(plane * out_h + oy) * out_w + ox] / (divisor_y * divisor_x) as f32;
                for iy in y0..y1 {
                    for ix in x0..x1 {
                        grad_plane[iy * g.in_width + ix] += share;
                    }
                }
            }
        }
    }
}

/// PyTorch's adaptive window along one axis: `[floor(out * size / out_size),
/// ceil((out + 1) * size / out_size))`. Windows cover the input and may overlap by one.
pub(crate) fn adaptive_window(out: usize, out_size: usize, size: usize) -> (usize, usize) {
    let start = out * size / out_size;
    let end = ((out + 1) * size).div_ceil(out_size);
    (start, end)
}

/// Average pooling of one plane to the geometry's output size.
pub(crate) fn adaptive_avg_plane(g: &AdaptivePool2dGeometry, input: &[f32], output: &mut [f32]) {
    for oy in 0..g.out_height {
        let (y0, y1) = adaptive_window(oy, g.out_height, g.in_height);
        for ox in 0..g.out_width {
            let (x0, x1) = adaptive_window(ox, g.out_width, g.in_width);
            let mut sum = 0.0f32;
            for iy in y0..y1 {
                for ix in x0..x1 {
                    sum += input[iy * g.in_width + ix];
                }
            }
            output[oy * g.out_width + ox] = sum / ((y1 - y0) * (x1 - x0)) as f32;
        }
    }
}

/// Gradient of [`adaptive_avg_plane`] for one plane (added into `grad_input`).
pub(crate) fn adaptive_avg_plane_backward(
    g: &AdaptivePool2dGeometry,
    grad_output: &[f32],
    grad_input: &mut [f32],
) {
    for oy in 0..g.out_height {
        let (y0, y1) = adaptive_window(oy, g.out_height, g.in_height);
        for ox in 0..g.out_width {
            let (x0, x1) = adaptive_window(ox, g.out_width, g.in_width);
            let share = grad_output[oy * g.out_width + ox] / ((y1 - y0) * (x1 - x0)) as f32;
            for iy in y0..y1 {
                for ix in x0..x1 {
                    grad_input[iy * g.in_width + ix] += share;
                }
            }
        }
    }
}

/// `output[n, c, oy, ox] = mean of the adaptive window`.
pub fn adaptive_avg_pool2d_forward(g: &AdaptivePool2dGeometry, input: &[f32], output: &mut [f32]) {
    let (in_plane, out_plane) = (g.in_height * g.in_width, g.out_height * g.out_width);
    for plane in 0..g.batch * g.channels {
        adaptive_avg_plane(
            g,
            &input[plane * in_plane..][..in_plane],
            &mut output[plane * out_plane..][..out_plane],
        );
    }
}

/// Each output gradient, divided by its window's size, is added to every element of the window.
pub fn adaptive_avg_pool2d_backward(
    g: &AdaptivePool2dGeometry,
    grad_output: &[f32],
    grad_input: &mut [f32],
) {
    grad_input.fill(0.0);
    let (in_plane, out_plane) = (g.in_height * g.in_width, g.out_height * g.out_width);
    for plane in 0..g.batch * g.channels {
        adaptive_avg_plane_backward(
            g,
            &grad_output[plane * out_plane..][..out_plane],
            &mut grad_input[plane * in_plane..][..in_plane],
        );
    }
}

/// `output[n, c] = mean of input[n, c, :, :]`, accumulated in `f64`.
pub fn global_avg_pool2d_forward(shape: &NchwShape, input: &[f32], output: &mut [f32]) {
    let plane_len = shape.plane_len();
    for (plane, out) in output.iter_mut().enumerate() {
        let values = &input[plane * plane_len..][..plane_len];
        let sum: f64 = values.iter().map(|&x| f64::from(x)).sum();
        *out = (sum / plane_len as f64) as f32;
    }
}

/// `grad_input[n, c, y, x] = grad_output[n, c] / (height * width)`.
pub fn global_avg_pool2d_backward(shape: &NchwShape, grad_output: &[f32], grad_input: &mut [f32]) {
    let plane_len = shape.plane_len();
    for (plane, &grad) in grad_output.iter().enumerate() {
        grad_input[plane * plane_len..][..plane_len].fill(grad / plane_len as f32);
    }
}
