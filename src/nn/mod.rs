//! Layers: the pieces a [`Graph`](crate::graph::Graph) is built from.
//!
//! A layer knows its hyperparameters, the parameters it needs (as [`ParamSpec`]s named the way
//! PyTorch names them: `weight`, `bias`, `running_mean`, ...), how its output shape follows from
//! its inputs' shapes, how many multiply-adds it costs, and how to run forward either on plain
//! tensors (inference) or on a [`Tape`] (training). Layers hold no tensors themselves: the graph's
//! [`ParamStore`](crate::graph::ParamStore) does, so one architecture can be counted and drawn
//! without allocating its weights.
//!
//! Shapes here are per sample, without the batch dimension: `[C, H, W]` for feature maps and
//! `[F]` for feature vectors.

mod activation;
mod conv;
mod linear;
mod norm;
mod pool;
mod separable;

pub use activation::{Add, Concat, Dropout, Flatten, ReLU, ReLU6};
pub use conv::Conv2d;
pub use linear::Linear;
pub use norm::{BatchNorm2d, LocalResponseNorm};
pub use pool::{AdaptiveAvgPool2d, AvgPool2d, GlobalAvgPool2d, MaxPool2d};
pub use separable::SeparableConv2d;

use std::fmt::Debug;

use crate::autograd::Clamp;
use crate::{Rng, Tape, Tensor, Var};

/// How a parameter is initialised before training.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    Zeros,
    Ones,
    /// Normal with mean 0 and this standard deviation.
    Normal(f32),
    /// Uniform in `[-bound, bound]`.
    Uniform(f32),
}

impl Init {
    /// A tensor of `shape` drawn from this distribution.
    pub fn tensor(self, shape: &[usize], rng: &mut Rng) -> Tensor {
        match self {
            Init::Zeros => Tensor::zeros(shape),
            Init::Ones => Tensor::ones(shape),
            Init::Normal(std) => Tensor::randn(shape, rng).map(|x| x * std),
            Init::Uniform(bound) => Tensor::uniform(shape, -bound, bound, rng),
        }
    }
}

/// Whether a tensor is trained by gradient descent or is state the layer keeps (running stats).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// Trained; counted in the parameter total.
    Trainable,
    /// Kept but not trained (BatchNorm's running mean and variance); saved in checkpoints.
    Buffer,
}

/// A tensor a layer needs: its local name (as PyTorch's `state_dict` spells it), shape and init.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSpec {
    pub name: &'static str,
    pub shape: Vec<usize>,
    pub init: Init,
    pub kind: ParamKind,
}

impl ParamSpec {
    pub fn trainable(name: &'static str, shape: Vec<usize>, init: Init) -> Self {
        ParamSpec {
            name,
            shape,
            init,
            kind: ParamKind::Trainable,
        }
    }

    pub fn buffer(name: &'static str, shape: Vec<usize>, init: Init) -> Self {
        ParamSpec {
            name,
            shape,
            init,
            kind: ParamKind::Buffer,
        }
    }
}

/// Training or evaluation: BatchNorm uses batch or running statistics, dropout is on or off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Train,
    Eval,
}

/// What a layer's forward pass on a tape may need beyond its inputs and parameters.
pub struct TapeContext<'a> {
    pub mode: Mode,
    /// Source of dropout masks.
    pub rng: &'a mut Rng,
    /// New values for this layer's buffers (by position in its `params()`), applied after the
    /// forward pass: BatchNorm's running statistics.
    pub buffer_updates: Vec<(usize, Tensor)>,
    /// Whether dropout is applied in training mode (off for deterministic gradient comparisons).
    pub dropout: bool,
}

/// A layer of a graph. Implement it to add a layer of your own.
pub trait Layer: Debug + Send + Sync {
    /// The layer's type, as a summary prints it (`"Conv2d"`).
    fn kind(&self) -> &'static str;

    /// A short description of the hyperparameters (`"3x3 s2 p1, 64 -> 128"`), for summaries and DOT.
    fn describe(&self) -> String {
        String::new()
    }

    /// The output shape for these input shapes (per sample), or what is wrong with them.
    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String>;

    /// The tensors this layer needs, in the order `forward` receives them.
    fn params(&self) -> Vec<ParamSpec> {
        Vec::new()
    }

    /// Multiply-adds of one forward pass for one sample (0 for layers that do no products).
    fn multiply_adds(&self, _inputs: &[&[usize]], _output: &[usize]) -> u64 {
        0
    }

    /// What an inference plan may fuse or run in place for this layer
    /// (see [`Graph::inference`](crate::graph::Graph::inference)). Layers of your own can leave
    /// the default: they always run through [`Layer::forward`].
    fn fusion(&self) -> Fusion<'_> {
        Fusion::None
    }

    /// Forward on plain tensors (batch included), for inference in evaluation mode.
    fn forward(&self, inputs: &[&Tensor], params: &[&Tensor]) -> crate::Result<Tensor>;

    /// Forward on a tape.
    fn forward_tape(
        &self,
        tape: &mut Tape,
        inputs: &[Var],
        params: &[Var],
        ctx: &mut TapeContext<'_>,
    ) -> crate::Result<Var>;
}

/// What [`Layer::fusion`] tells an inference plan about a layer.
#[derive(Clone, Copy, Debug)]
pub enum Fusion<'a> {
    /// Nothing: run the layer's own `forward`.
    None,
    /// A convolution, which can take in the BatchNorm that follows it.
    Conv2d(&'a Conv2d),
    /// A depthwise-separable convolution, whose pointwise half can take in the BatchNorm that
    /// follows.
    Separable(&'a SeparableConv2d),
    /// A BatchNorm, which can be folded into the convolution before it.
    BatchNorm(&'a BatchNorm2d),
    /// An elementwise map that may overwrite its input when nothing else reads it.
    Map(fn(f32) -> f32),
    /// A ReLU or ReLU6: a map as above at inference, and in training one that can run inside
    /// the passes of the BatchNorm before it
    /// (see [`Graph::forward_tape_fused`](crate::graph::Graph::forward_tape_fused)).
    Clamp(Clamp),
    /// A sum of same-shaped inputs that may accumulate into the first.
    Sum,
}

/// Checks the number of inputs and returns the single one.
pub(crate) fn single<'a>(inputs: &[&'a [usize]]) -> Result<&'a [usize], String> {
    match inputs {
        [one] => Ok(one),
        _ => Err(format!("takes one input, got {}", inputs.len())),
    }
}

/// Checks a per-sample input is a `[C, H, W]` feature map.
pub(crate) fn feature_map(shape: &[usize]) -> Result<(usize, usize, usize), String> {
    match *shape {
        [c, h, w] => Ok((c, h, w)),
        _ => Err(format!(
            "expects a [C, H, W] feature map, got {}",
            crate::error::fmt_shape(shape)
        )),
    }
}
