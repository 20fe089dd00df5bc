//! Convolution: a scalar reference, three fast kernel families, and the dispatcher that picks one.
//!
//! | family | geometry | how |
//! |---|---|---|
//! | [`pointwise`] | 1 x 1, one group, no padding | a GEMM on the NCHW tensor as it is |
//! | [`depthwise`] | one group per input channel | vectorised along the contiguous width |
//! | [`im2col`] | one group, output maps under 16 pixels | the batch folded into one GEMM |
//! | [`winograd`] | 3 x 3, stride 1 or 2, one group, 16+ channels (forward, backward-data) | F(2 x 2, 3 x 3): 16 products per 2 x 2 outputs instead of 36, F(4 x 4, 3 x 3) on maps of 14 or more: 36 per 4 x 4 instead of 144; at stride 2, 25 |
//! | [`direct`] | anything else | register-blocked SIMD direct convolution |
//!
//! The public functions here check the geometry and the slice lengths, then dispatch. All of
//! them overwrite their outputs.

pub mod depthwise;
pub mod direct;
mod gemm;
pub mod im2col;
mod padded;
pub mod pointwise;
mod recycled;
pub mod reference;
mod tasks;
#[cfg(test)]
mod test_support;
mod tile;
pub mod winograd;

use crate::error::check_len;
use crate::lanes::sum;
use crate::{Conv2dGeometry, ConvKind, KernelError};
use rayon::prelude::*;

fn check_operands(
    g: &Conv2dGeometry,
    input: (&str, usize),
    weight: (&str, usize),
    output: (&str, usize),
) -> Result<(), KernelError> {
    g.validate()?;
    check_len(input.0, input.1, g.input_len())?;
    check_len(weight.0, weight.1, g.weight_len())?;
    check_len(output.0, output.1, g.output_len())
}

/// `output = conv(input, weight) + bias`, with the kernel chosen from the geometry.
pub fn conv2d_forward(
    g: &Conv2dGeometry,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
) -> Result<(), KernelError> {
    check_operands(
        g,
        ("input", input.len()),
        ("weight", weight.len()),
        ("output", output.len()),
    )?;
    if let Some(bias) = bias {
        check_len("bias", bias.len(), g.out_channels)?;
    }
    match g.kind() {
        ConvKind::Pointwise => pointwise::forward(g, input, weight, bias, output),
        ConvKind::Depthwise => depthwise::forward(g, input, weight, bias, output),
        ConvKind::Im2col => im2col::forward(g, input, weight, bias, output),
        ConvKind::Direct if winograd::applies(g) => {
            winograd::forward(g, input, weight, bias, output)
        }
        ConvKind::Direct => direct::forward(g, input, weight, bias, output),
    }
    Ok(())
}

/// `grad_input = d(loss)/d(input)` given `grad_output = d(loss)/d(output)`.
pub fn conv2d_backward_data(
    g: &Conv2dGeometry,
    grad_output: &[f32],
    weight: &[f32],
    grad_input: &mut [f32],
) -> Result<(), KernelError> {
    check_operands(
        g,
        ("grad_input", grad_input.len()),
        ("weight", weight.len()),
        ("grad_output", grad_output.len()),
    )?;
    match g.kind() {
        ConvKind::Pointwise => pointwise::backward_data(g, grad_output, weight, grad_input),
        ConvKind::Depthwise => depthwise::backward_data(g, grad_output, weight, grad_input),
        ConvKind::Im2col => im2col::backward_data(g, grad_output, weight, grad_input),
        ConvKind::Direct if winograd::applies(g) => {
            winograd::backward_data(g, grad_output, weight, grad_input)
        }
        ConvKind::Direct => direct::backward_data(g, grad_output, weight, grad_input),
    }
    Ok(())
}

/// `grad_weight = d(loss)/d(weight)` and, when asked, `grad_bias = d(loss)/d(bias)`.
pub fn conv2d_backward_weight(
    g: &Conv2dGeometry,
    input: &[f32],
    grad_output: &[f32],
    grad_weight: &mut [f32],
    grad_bias: Option<&mut [f32]>,
) -> Result<(), KernelError> {
    check_operands(
        g,
        ("input", input.len()),
        ("grad_weight", grad_weight.len()),
        ("grad_output", grad_output.len()),
    )?;
    if let Some(grad_bias) = grad_bias.as_deref() {
        check_len("grad_bias", grad_bias.len(), g.out_channels)?;
    }
    match g.kind() {
        ConvKind::Pointwise => {
            pointwise::backward_weight(g, input, grad_output, grad_weight, grad_bias)
        }
        ConvKind::Depthwise => {
            depthwise::backward_weight(g, input, grad_output, grad_weight, grad_bias)
        }
        ConvKind::Im2col => im2col::backward_weight(g, input, grad_output, grad_weight, grad_bias),
        ConvKind::Direct => direct::backward_weight(g, input, grad_output, grad_weight, grad_bias),
    }
    Ok(())
}

/// Fills `output` (laid out `[batch][out_channels][plane]`) with each channel's bias, or zeros:
/// a forward pass with nothing to sum (no input channels, or an input of zero rows that padding
/// made room for).
pub(crate) fn fill_with_bias(g: &Conv2dGeometry, bias: Option<&[f32]>, output: &mut [f32]) {
    let plane = g.out_height() * g.out_width();
    for (index, plane) in output.chunks_exact_mut(plane.max(1)).enumerate() {
        plane.fill(bias.map_or(0.0, |b| b[index % g.out_channels]));
    }
}

/// `grad_bias[c]` = the sum of channel `c` of `grad_output` (`[batch][channels][plane]`) over
/// images and pixels: each plane summed eight lanes at a time, the planes added in `f64`, in
/// parallel over channels. A plain running sum of LeNet-5's 784-pixel planes was one long
/// dependency chain, about 4% of a training step.
pub(crate) fn bias_gradient(grad_output: &[f32], plane: usize, grad_bias: &mut [f32]) {
    let channels = grad_bias.len();
    if plane == 0 || channels == 0 {
        grad_bias.fill(0.0);
        return;
    }
    let images = grad_output.len() / (channels * plane);
    grad_bias
        .par_iter_mut()
        .enumerate()
        .for_each(|(channel, gb)| {
            let total: f64 = (0..images)
                .map(|image| sum(&grad_output[(image * channels + channel) * plane..][..plane]))
                .sum();
            *gb = total as f32;
        });
}
