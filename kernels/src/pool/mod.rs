//! Pooling: max, average, adaptive average and global average, forward and backward.
//!
//! Semantics are PyTorch's (`MaxPool2d`, `AvgPool2d`, `AdaptiveAvgPool2d`), including
//! `ceil_mode` (see [`crate::pool_out_size`]), padding, dilation (max pooling only) and
//! `count_include_pad`. Tensors are NCHW and contiguous; every function here checks the geometry
//! and the slice lengths, then runs the fast kernel, and overwrites its outputs.
//!
//! | module | what |
//! |---|---|
//! | [`reference`](mod@reference) | scalar loops, one output at a time: the definitions and the test oracle |
//! | `max`, `avg` | rayon over planes, `f32x8` over eight outputs of a row, on a padded, stride-phase-split copy of each plane (`padded`) |
//! | `adaptive` | adaptive pooling (dispatching to the global or the uniform-window path when it can) and global pooling |
//!
//! Max pooling saves, per output, the flat index (`y * in_width + x`) within its input plane of
//! the element that won the window, as a `u32`; ties go to the first maximum in row-major scan
//! order and a NaN in the window wins (the index of the last NaN), as in PyTorch's CPU kernel.

mod adaptive;
mod avg;
mod max;
mod padded;
pub mod reference;
#[cfg(test)]
mod tests;

pub use adaptive::AdaptivePool2dGeometry;

use crate::error::check_len;
use crate::{KernelError, Pool2dGeometry};

/// The argmax of a window that covers no input element (only dilation can make one: for example
/// kernel 2, dilation 2, padding 1 on a width-1 input). Its output is `-inf` and backward sends
/// it nothing.
pub const EMPTY_WINDOW: u32 = u32::MAX;

/// Shape of a contiguous NCHW tensor, for the operations that treat each `height x width` plane
/// as a whole (global pooling, normalisation). `[N, C]` data is `height = width = 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NchwShape {
    pub batch: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl NchwShape {
    pub fn new(batch: usize, channels: usize, (height, width): (usize, usize)) -> Self {
        NchwShape {
            batch,
            channels,
            height,
            width,
        }
    }

    /// Elements of the whole tensor.
    pub fn len(&self) -> usize {
        self.batch * self.channels * self.plane_len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Elements of one `height x width` plane.
    pub fn plane_len(&self) -> usize {
        self.height * self.width
    }
}

fn check_pool_operands(
    g: &Pool2dGeometry,
    input: (&str, usize),
    output: (&str, usize),
) -> Result<(), KernelError> {
    g.validate()?;
    if g.in_height == 0 || g.in_width == 0 {
        return Err(KernelError::new(format!(
            "{g:?}: the input must be at least 1 x 1"
        )));
    }
    let with_geometry = |e: KernelError| KernelError::new(format!("{g:?}: {}", e.message()));
    check_len(input.0, input.1, g.input_len()).map_err(with_geometry)?;
    check_len(output.0, output.1, g.output_len()).map_err(with_geometry)
}

fn check_max_pool(
    g: &Pool2dGeometry,
    input: (&str, usize),
    output: (&str, usize),
    argmax_len: usize,
) -> Result<(), KernelError> {
    check_pool_operands(g, input, output)?;
    if g.in_height * g.in_width >= EMPTY_WINDOW as usize {
        return Err(KernelError::new(format!(
            "{g:?}: a plane of {} elements cannot be indexed by a u32 argmax",
            g.in_height * g.in_width
        )));
    }
    check_len("argmax", argmax_len, g.output_len())
        .map_err(|e| KernelError::new(format!("{g:?}: {}", e.message())))
}

fn check_avg_pool(
    g: &Pool2dGeometry,
    input: (&str, usize),
    output: (&str, usize),
) -> Result<(), KernelError> {
    check_pool_operands(g, input, output)?;
    if g.dilation != (1, 1) {
        return Err(KernelError::new(format!(
            "{g:?}: average pooling has no dilation (PyTorch's AvgPool2d), got {:?}",
            g.dilation
        )));
    }
    Ok(())
}

/// Max pooling: `output` gets each window's maximum and `argmax` the flat index of the winner
/// within its input plane (or [`EMPTY_WINDOW`]).
///
/// ```
/// use convgrad_kernels::{pool::max_pool2d_forward, Pool2dGeometry};
/// // One 2 x 3 plane, 2 x 2 windows with stride 1: two windows, ties go to the first maximum.
/// let g = Pool2dGeometry {
///     stride: (1, 1),
///     ..Pool2dGeometry::new(1, 1, (2, 3), (2, 2))
/// };
/// let input = [1.0, 5.0, 2.0,
///              5.0, 0.0, 7.0];
/// let (mut output, mut argmax) = ([0.0; 2], [0u32; 2]);
/// max_pool2d_forward(&g, &input, &mut output, &mut argmax).unwrap();
/// assert_eq!(output, [5.0, 7.0]);
/// assert_eq!(argmax, [1, 5]);
/// ```
pub fn max_pool2d_forward(
    g: &Pool2dGeometry,
    input: &[f32],
    output: &mut [f32],
    argmax: &mut [u32],
) -> Result<(), KernelError> {
    check_max_pool(
        g,
        ("input", input.len()),
        ("output", output.len()),
        argmax.len(),
    )?;
    max::forward(g, input, output, argmax);
    Ok(())
}

/// Gradient of max pooling: `grad_input` is zero except where a window's maximum was, which
/// receives the sum of the output gradients of the windows it won.
pub fn max_pool2d_backward(
    g: &Pool2dGeometry,
    grad_output: &[f32],
    argmax: &[u32],
    grad_input: &mut [f32],
) -> Result<(), KernelError> {
    check_max_pool(
        g,
        ("grad_input", grad_input.len()),
        ("grad_output", grad_output.len()),
        argmax.len(),
    )?;
    let in_plane = (g.in_height * g.in_width) as u32;
    if let Some(bad) = argmax
        .iter()
        .find(|&&index| index >= in_plane && index != EMPTY_WINDOW)
    {
        return Err(KernelError::new(format!(
            "{g:?}: argmax holds {bad}, outside a plane of {in_plane} elements"
        )));
    }
    max::backward(g, grad_output, argmax, grad_input);
    Ok(())
}

/// Average pooling. With `count_include_pad` each window's sum is divided by the window's size
/// clipped to the padded input; without, by its number of real input elements.
///
/// ```
/// use convgrad_kernels::{pool::avg_pool2d_forward, Pool2dGeometry};
/// // 3 x 3 windows, stride 1, padding 1 on a 2 x 2 plane: every window sees all four values.
/// let g = Pool2dGeometry {
///     stride: (1, 1),
///     padding: (1, 1),
///     ..Pool2dGeometry::new(1, 1, (2, 2), (3, 3))
/// };
/// let input = [1.0, 2.0, 3.0, 6.0];
/// let mut output = [0.0; 4];
/// avg_pool2d_forward(&g, false, &input, &mut output).unwrap();
/// assert_eq!(output, [3.0; 4]); // 12 / 4 real elements
/// avg_pool2d_forward(&g, true, &input, &mut output).unwrap();
/// assert_eq!(output, [12.0 / 9.0; 4]); // 12 / 9 window positions
/// ```
pub fn avg_pool2d_forward(
    g: &Pool2dGeometry,
    count_include_pad: bool,
    input: &[f32],
    output: &mut [f32],
) -> Result<(), KernelError> {
    check_avg_pool(g, ("input", input.len()), ("output", output.len()))?;
    avg::forward(g, count_include_pad, input, output);
    Ok(())
}

/// Gradient of average pooling: each output gradient, divided by its window's divisor, is added
/// to every real element of the window.
pub fn avg_pool2d_backward(
    g: &Pool2dGeometry,
    count_include_pad: bool,
    grad_output: &[f32],
    grad_input: &mut [f32],
) -> Result<(), KernelError> {
    check_avg_pool(
        g,
        ("grad_input", grad_input.len()),
        ("grad_output", grad_output.len()),
    )?;
    avg::backward(g, count_include_pad, grad_output, grad_input);
    Ok(())
}

fn check_adaptive(
    g: &AdaptivePool2dGeometry,
    input: (&str, usize),
    output: (&str, usize),
) -> Result<(), KernelError> {
    g.validate()?;
    let with_geometry = |e: KernelError| KernelError::new(format!("{g:?}: {}", e.message()));
    check_len(input.0, input.1, g.input_len()).map_err(with_geometry)?;
    check_len(output.0, output.1, g.output_len()).map_err(with_geometry)
}

/// Adaptive average pooling to `out_height x out_width`: output `i` along an axis of size `n`
/// averages `[floor(i * n / out), ceil((i + 1) * n / out))`.
pub fn adaptive_avg_pool2d_forward(
    g: &AdaptivePool2dGeometry,
    input: &[f32],
    output: &mut [f32],
) -> Result<(), KernelError> {
    check_adaptive(g, ("input", input.len()), ("output", output.len()))?;
    adaptive::adaptive_forward(g, input, output);
    Ok(())
}

/// Gradient of adaptive average pooling.
pub fn adaptive_avg_pool2d_backward(
    g: &AdaptivePool2dGeometry,
    grad_output: &[f32],
    grad_input: &mut [f32],
) -> Result<(), KernelError> {
    check_adaptive(
        g,
        ("grad_input", grad_input.len()),
        ("grad_output", grad_output.len()),
    )?;
    adaptive::adaptive_backward(g, grad_output, grad_input);
    Ok(())
}

fn check_global(
    shape: &NchwShape,
    input: (&str, usize),
    output: (&str, usize),
) -> Result<(), KernelError> {
    if shape.plane_len() == 0 {
        return Err(KernelError::new(format!(
            "{shape:?}: cannot average an empty plane"
        )));
    }
    let with_shape = |e: KernelError| KernelError::new(format!("{shape:?}: {}", e.message()));
    check_len(input.0, input.1, shape.len()).map_err(with_shape)?;
    check_len(output.0, output.1, shape.batch * shape.channels).map_err(with_shape)
}

/// Global average pooling: `output[n, c]` (an `[N, C]` slice) is the mean of plane `(n, c)`.
pub fn global_avg_pool2d_forward(
    shape: &NchwShape,
    input: &[f32],
    output: &mut [f32],
) -> Result<(), KernelError> {
    check_global(shape, ("input", input.len()), ("output", output.len()))?;
    adaptive::global_forward(shape, input, output);
    Ok(())
}

/// Gradient of global average pooling: `grad_output[n, c] / (height * width)` everywhere in
/// plane `(n, c)`.
pub fn global_avg_pool2d_backward(
    shape: &NchwShape,
    grad_output: &[f32],
    grad_input: &mut [f32],
) -> Result<(), KernelError> {
    check_global(
        shape,
        ("grad_input", grad_input.len()),
        ("grad_output", grad_output.len()),
    )?;
    adaptive::global_backward(shape, grad_output, grad_input);
    Ok(())
}
