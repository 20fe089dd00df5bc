//! Convolution: a scalar reference, and the fast kernels the dispatcher chooses between.

pub mod reference;
