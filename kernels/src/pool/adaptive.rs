//! Adaptive and global average pooling.
//!
//! Adaptive pooling picks its windows from the output size (PyTorch's rule, see
//! [`super::reference::adaptive_window`]). Three paths, fastest first:
//! - output `1 x 1` is global average pooling: one `f32x8` sum per plane;
//! - an input that the output divides evenly has equal, disjoint windows, which is ordinary
//!   average pooling with `kernel = stride = input / output` (AlexNet's 6 x 6 and VGG's 7 x 7
//!   heads), served by the fast average-pooling kernel;
//! - anything else runs the reference's per-plane loop, one plane per rayon task.

use rayon::prelude::*;

use super::reference::{adaptive_avg_plane, adaptive_avg_plane_backward};
use super::{avg, NchwShape};
use crate::lanes::{planes_per_task, sum};
use crate::{KernelError, Pool2dGeometry};

/// Geometry of adaptive average pooling from `in_height x in_width` to `out_height x out_width`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AdaptivePool2dGeometry {
    pub batch: usize,
    pub channels: usize,
    pub in_height: usize,
    pub in_width: usize,
    pub out_height: usize,
    pub out_width: usize,
}

impl AdaptivePool2dGeometry {
    pub fn new(
        batch: usize,
        channels: usize,
        (in_height, in_width): (usize, usize),
        (out_height, out_width): (usize, usize),
    ) -> Self {
        AdaptivePool2dGeometry {
            batch,
            channels,
            in_height,
            in_width,
            out_height,
            out_width,
        }
    }

    pub fn input_len(&self) -> usize {
        self.batch * self.channels * self.in_height * self.in_width
    }
    pub fn output_len(&self) -> usize {
        self.batch * self.channels * self.out_height * self.out_width
    }

    /// Every extent must be at least 1 (the output may be larger than the input, as in PyTorch).
    pub fn validate(&self) -> Result<(), KernelError> {
        if self.in_height == 0 || self.in_width == 0 || self.out_height == 0 || self.out_width == 0
        {
            return Err(KernelError::new(format!(
                "{self:?}: input and output must be at least 1 x 1"
            )));
        }
        Ok(())
    }

    /// The ordinary pooling geometry this one equals when the output divides the input evenly.
    fn as_uniform_pooling(&self) -> Option<Pool2dGeometry> {
        let divides = self.in_height % self.out_height == 0 && self.in_width % self.out_width == 0;
        divides.then(|| {
            let kernel = (
                self.in_height / self.out_height,
                self.in_width / self.out_width,
            );
            Pool2dGeometry::new(
                self.batch,
                self.channels,
                (self.in_height, self.in_width),
                kernel,
            )
        })
    }

    fn input_shape(&self) -> NchwShape {
        NchwShape::new(self.batch, self.channels, (self.in_height, self.in_width))
    }
}

pub(crate) fn adaptive_forward(g: &AdaptivePool2dGeometry, input: &[f32], output: &mut [f32]) {
    if (g.out_height, g.out_width) == (1, 1) {
        return global_forward(&g.input_shape(), input, output);
    }
    if let Some(uniform) = g.as_uniform_pooling() {
        return avg::forward(&uniform, true, input, output);
    }
    let in_plane = g.in_height * g.in_width;
    input
        .par_chunks(in_plane)
        .zip(output.par_chunks_mut(g.out_height * g.out_width))
        .with_min_len(planes_per_task(in_plane))
        .for_each(|(input_plane, output_plane)| adaptive_avg_plane(g, input_plane, output_plane));
}

pub(crate) fn adaptive_backward(
    g: &AdaptivePool2dGeometry,
    grad_output: &[f32],
    grad_input: &mut [f32],
) {
    if (g.out_height, g.out_width) == (1, 1) {
        return global_backward(&g.input_shape(), grad_output, grad_input);
    }
    if let Some(uniform) = g.as_uniform_pooling() {
        return avg::backward(&uniform, true, grad_output, grad_input);
    }
    let in_plane = g.in_height * g.in_width;
    grad_input
        .par_chunks_mut(in_plane)
        .zip(grad_output.par_chunks(g.out_height * g.out_width))
        .with_min_len(planes_per_task(in_plane))
        .for_each(|(grad_input_plane, grad_output_plane)| {
            grad_input_plane.fill(0.0);
            adaptive_avg_plane_backward(g, grad_output_plane, grad_input_plane);
        });
}

pub(crate) fn global_forward(shape: &NchwShape, input: &[f32], output: &mut [f32]) {
    let plane_len = shape.plane_len();
    output
        .par_iter_mut()
        .zip(input.par_chunks(plane_len))
        .with_min_len(planes_per_task(plane_len))
        .for_each(|(mean, plane)| *mean = (sum(plane) / plane_len as f64) as f32);
}

pub(crate) fn global_backward(shape: &NchwShape, grad_output: &[f32], grad_input: &mut [f32]) {
    let plane_len = shape.plane_len();
    grad_input
        .par_chunks_mut(plane_len)
        .zip(grad_output.par_iter())
        .with_min_len(planes_per_task(plane_len))
        .for_each(|(plane, &grad)| plane.fill(grad / plane_len as f32));
}
