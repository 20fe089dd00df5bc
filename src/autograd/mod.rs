//! Reverse-mode automatic differentiation on a tape.
//!
//! - [`Tape`] records values and the backward rule of each op; [`Var`] is a handle to one.
//! - Each op family sits in its own file with its forward, its backward and its tests:
//!   `arith` (add, sub, mul, div with broadcasting), `matmul`, `activation`, `reduce`,
//!   `shape` (reshape, flatten, concat), `loss` (softmax, log-softmax, cross-entropy, MSE),
//!   `conv` (2-D convolution through the kernel crate), `dropout`, `pool` (max, average,
//!   adaptive and global average pooling), `norm` (batch and local response normalisation).
//! - [`gradcheck`] compares every backward with finite differences.
//!
//! The same forward computations are available without a tape in [`crate::functional`].

mod activation;
mod arith;
mod broadcast;
mod conv;
mod dropout;
pub mod gradcheck;
mod loss;
mod matmul;
mod norm;
mod pool;
mod reduce;
mod shape;
mod tape;

pub use conv::Conv2dOptions;
pub use norm::{BatchNormOptions, Clamp, LrnOptions};
pub use pool::Pool2dOptions;
pub use tape::{BackwardFn, GradSink, Gradients, Tape, Var};

/// Forward functions on plain tensors, re-exported by [`crate::functional`].
pub(crate) mod forward {
    pub use super::activation::{exp, log, relu, relu6, sigmoid, tanh};
    pub use super::arith::{add, div, mul, sub};
    pub use super::conv::{conv2d, conv2d_input_grad, conv2d_weight_grad, Conv2dOptions};
    pub use super::dropout::dropout;
    pub use super::loss::{cross_entropy, log_softmax, mse_loss, softmax};
    pub use super::matmul::{linear, matmul};
    pub use super::norm::{batch_norm, local_response_norm, BatchNormOptions, LrnOptions};
    pub use super::pool::{
        adaptive_avg_pool2d, avg_pool2d, global_avg_pool2d, max_pool2d, Pool2dOptions,
    };
    pub use super::reduce::{mean, mean_axis, sum, sum_axis};
    pub use super::shape::{concat, flatten};
}
