//! PLACEHOLDER: the pointwise kernel family. Until the fast kernel lands, it runs the scalar reference.
//! Preconditions for every function: the geometry is valid and every slice has the length the
//! geometry implies (the dispatcher in `conv/mod.rs` checks both).

use super::reference;
use crate::Conv2dGeometry;

pub fn forward(
    g: &Conv2dGeometry,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
) {
    reference::conv2d_forward(g, input, weight, bias, output)
}

pub fn backward_data(
    g: &Conv2dGeometry,
    grad_output: &[f32],
    weight: &[f32],
    grad_input: &mut [f32],
) {
    reference::conv2d_backward_data(g, grad_output, weight, grad_input)
}

pub fn backward_weight(
    g: &Conv2dGeometry,
    input: &[f32],
    grad_output: &[f32],
    grad_weight: &mut [f32],
    grad_bias: Option<&mut [f32]>,
) {
    reference::conv2d_backward_weight(g, input, grad_output, grad_weight, grad_bias)
}
