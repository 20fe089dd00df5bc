//! # convgrad
//!
//! The classic convolutional networks (LeNet-5 to MobileNet) on a from-scratch reverse-mode
//! autograd engine, with SIMD convolution kernels written for the CPU.
//!
//! - [`Tensor`]: owned, contiguous `f32` data with a shape; seeded initialisers through [`Rng`].
//! - [`Tape`] and [`Var`]: the reverse-mode engine; every op returns a [`Result`] whose
//!   [`Error`] names the op and the shapes involved.
//! - [`functional`]: the same ops on plain tensors, without a tape, for inference.
//! - [`autograd::gradcheck`]: the finite-difference harness every backward is checked with.
//! - [`models`]: the zoo, LeNet-5 to MobileNet v2, each a function that builds a [`graph::Graph`].
//!
//! **The guide**, `docs/guide/README.md` in the repository, tells the history of these networks
//! chapter by chapter (hand-made features, LeNet-5, AlexNet, VGG, GoogLeNet, Inception-v3,
//! ResNet, Xception, DenseNet, MobileNet), each with its block drawn from the zoo's own graph and
//! its parameters, multiply-adds and measured Fashion-MNIST accuracy generated from the code;
//! then a chapter on the tape, included here as [`guide::autograd`] so its examples run as
//! doctests, and one on the kernels.
//!
//! ```
//! use convgrad::{Rng, Tape, Tensor};
//! // One step of logistic regression on a tape.
//! let mut rng = Rng::seed(0);
//! let mut tape = Tape::new();
//! let x = tape.input(Tensor::randn(&[8, 4], &mut rng));
//! let w = tape.param(Tensor::xavier_uniform(&[4, 3], &mut rng)?);
//! let b = tape.param(Tensor::zeros(&[3]));
//! let logits = tape.matmul(x, w)?;
//! let logits = tape.add(logits, b)?;
//! let loss = tape.cross_entropy(logits, &[0, 1, 2, 0, 1, 2, 0, 1])?;
//! let grads = tape.backward(loss)?;
//! assert_eq!(grads.get(w).unwrap().shape(), &[4, 3]);
//! # Ok::<(), convgrad::Error>(())
//! ```

// Every `unsafe` block says why it is sound, in a `// SAFETY:` comment that clippy checks.
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod autograd;
pub mod data;
mod error;
pub mod functional;
pub mod graph;
pub mod guide;
pub mod io;
pub mod models;
pub mod nn;
pub mod optim;
mod parallel;
mod rng;
mod tensor;
pub mod train;

pub use autograd::{Gradients, Tape, Var};
pub use error::{Error, Result};
pub use rng::Rng;
pub use tensor::{numel, Tensor};
