//! # convgrad-kernels
//!
//! The compute core of convgrad: convolution, pooling and normalisation kernels over raw `f32`
//! slices. This crate knows nothing of tensors or autograd. Every kernel takes slices plus a small
//! `Copy` geometry struct ([`Conv2dGeometry`], [`Pool2dGeometry`]), and every fast kernel has a
//! plain scalar reference beside it that serves as its test oracle.
//!
//! Layout: NCHW, row-major, contiguous. Convolution weights are
//! `[out_channels, in_channels / groups, kernel_height, kernel_width]`, as in PyTorch.

// Every `unsafe` block says why it is sound, in a `// SAFETY:` comment that clippy checks.
#![deny(clippy::undocumented_unsafe_blocks)]

mod cache;
pub mod conv;
mod error;
pub mod geometry;
mod lanes;
pub mod norm;
pub mod pool;
mod shuffle;
pub mod simd;
#[cfg(test)]
mod test_support;

pub use conv::{conv2d_backward_data, conv2d_backward_weight, conv2d_forward};
pub use error::KernelError;
pub use geometry::{conv_out_size, pool_out_size, Conv2dGeometry, ConvKind, Pool2dGeometry};
