//! Parameter-free layers: ReLU, ReLU6, Flatten, Dropout, and the two joins, Add (residual
//! connections) and Concat (Inception branches, DenseNet features).

use super::{single, Fusion, Layer, Mode, TapeContext};
use crate::autograd::Clamp;
use crate::error::fmt_shape;
use crate::functional::{add, concat, flatten, relu, relu6};
use crate::{Tape, Tensor, Var};

macro_rules! pointwise_layer {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $f:ident, $clamp:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name;

        impl Layer for $name {
            fn kind(&self) -> &'static str {
                $kind
            }
            fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
                Ok(single(inputs)?.to_vec())
            }
            fn fusion(&self) -> Fusion<'_> {
                Fusion::Clamp($clamp)
            }
            fn forward(&self, inputs: &[&Tensor], _: &[&Tensor]) -> crate::Result<Tensor> {
                Ok($f(inputs[0]))
            }
            fn forward_tape(
                &self,
                tape: &mut Tape,
                inputs: &[Var],
                _: &[Var],
                _: &mut TapeContext<'_>,
            ) -> crate::Result<Var> {
                tape.$f(inputs[0])
            }
        }
    };
}

pointwise_layer!(
    /// `max(x, 0)`.
    ReLU, "ReLU", relu, Clamp::Relu
);
pointwise_layer!(
    /// `min(max(x, 0), 6)` (MobileNet).
    ReLU6, "ReLU6", relu6, Clamp::Relu6
);

/// `[C, H, W]` to `[C * H * W]` per sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flatten;

impl Layer for Flatten {
    fn kind(&self) -> &'static str {
        "Flatten"
    }
    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        Ok(vec![single(inputs)?.iter().product()])
    }
    fn forward(&self, inputs: &[&Tensor], _: &[&Tensor]) -> crate::Result<Tensor> {
        flatten(inputs[0])
    }
    fn forward_tape(
        &self,
        tape: &mut Tape,
        inputs: &[Var],
        _: &[Var],
        _: &mut TapeContext<'_>,
    ) -> crate::Result<Var> {
        tape.flatten(inputs[0])
    }
}

/// Dropout with drop probability `p` in training; the identity in evaluation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dropout {
    pub p: f32,
}

impl Layer for Dropout {
    fn kind(&self) -> &'static str {
        "Dropout"
    }
    fn describe(&self) -> String {
        format!("p={}", self.p)
    }
    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        if !(0.0..1.0).contains(&self.p) {
            return Err(format!(
                "drop probability must be in [0, 1), got {}",
                self.p
            ));
        }
        Ok(single(inputs)?.to_vec())
    }
    fn forward(&self, inputs: &[&Tensor], _: &[&Tensor]) -> crate::Result<Tensor> {
        Ok(inputs[0].clone())
    }
    fn forward_tape(
        &self,
        tape: &mut Tape,
        inputs: &[Var],
        _: &[Var],
        ctx: &mut TapeContext<'_>,
    ) -> crate::Result<Var> {
        if ctx.mode == Mode::Train && ctx.dropout && self.p > 0.0 {
            tape.dropout(inputs[0], self.p, ctx.rng)
        } else {
            Ok(inputs[0])
        }
    }
}

/// Elementwise sum of inputs of one shape: the residual connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Add;

impl Layer for Add {
    fn kind(&self) -> &'static str {
        "Add"
    }
    fn fusion(&self) -> Fusion<'_> {
        Fusion::Sum
    }
    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        let first = inputs.first().ok_or("takes at least one input")?;
        if let Some(other) = inputs.iter().find(|s| *s != first) {
            return Err(format!(
                "adds inputs of one shape, got {} and {}",
                fmt_shape(first),
                fmt_shape(other)
            ));
        }
        Ok(first.to_vec())
    }
    fn forward(&self, inputs: &[&Tensor], _: &[&Tensor]) -> crate::Result<Tensor> {
        let mut sum = inputs[0].clone();
        for x in &inputs[1..] {
            sum = add(&sum, x)?;
        }
        Ok(sum)
    }
    fn forward_tape(
        &self,
        tape: &mut Tape,
        inputs: &[Var],
        _: &[Var],
        _: &mut TapeContext<'_>,
    ) -> crate::Result<Var> {
        let mut sum = inputs[0];
        for &x in &inputs[1..] {
            sum = tape.add(sum, x)?;
        }
        Ok(sum)
    }
}

/// Concatenation along channels (per-sample axis 0, batch axis 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Concat;

impl Layer for Concat {
    fn kind(&self) -> &'static str {
        "Concat"
    }
    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        let first = inputs.first().ok_or("takes at least one input")?;
        let mut out = first.to_vec();
        out[0] = 0;
        for s in inputs {
            if s.len() != first.len() || s[1..] != first[1..] {
                let all: Vec<String> = inputs.iter().map(|s| fmt_shape(s)).collect();
                return Err(format!(
                    "joins feature maps of one size along channels, got {}",
                    all.join(", ")
                ));
            }
            out[0] += s[0];
        }
        Ok(out)
    }
    fn forward(&self, inputs: &[&Tensor], _: &[&Tensor]) -> crate::Result<Tensor> {
        concat(inputs, 1)
    }
    fn forward_tape(
        &self,
        tape: &mut Tape,
        inputs: &[Var],
        _: &[Var],
        _: &mut TapeContext<'_>,
    ) -> crate::Result<Var> {
        tape.concat(inputs, 1)
    }
}
