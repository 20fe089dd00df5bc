//! Linear (fully connected): `y = x W^T + b`, with PyTorch's `[out, in]` weight layout.

use super::{single, Init, Layer, ParamSpec, TapeContext};
use crate::error::fmt_shape;
use crate::functional::linear;
use crate::{Tape, Tensor, Var};

/// A fully connected layer, `[N, in] -> [N, out]`.
///
/// Weight and bias start uniform in `±1/sqrt(in)`, PyTorch's default.
#[derive(Clone, Debug, PartialEq)]
pub struct Linear {
    pub in_features: usize,
    pub out_features: usize,
    pub bias: bool,
}

impl Linear {
    pub fn new(in_features: usize, out_features: usize) -> Self {
        Linear {
            in_features,
            out_features,
            bias: true,
        }
    }
}

impl Layer for Linear {
    fn kind(&self) -> &'static str {
        "Linear"
    }

    fn describe(&self) -> String {
        format!("{} -> {}", self.in_features, self.out_features)
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        match single(inputs)? {
            [f] if *f == self.in_features => Ok(vec![self.out_features]),
            shape => Err(format!(
                "expects [{}] features per sample, got {} (flatten or pool first?)",
                self.in_features,
                fmt_shape(shape)
            )),
        }
    }

    fn params(&self) -> Vec<ParamSpec> {
        let bound = 1.0 / (self.in_features as f32).sqrt();
        let mut specs = vec![ParamSpec::trainable(
            "weight",
            vec![self.out_features, self.in_features],
            Init::Uniform(bound),
        )];
        if self.bias {
            specs.push(ParamSpec::trainable(
                "bias",
                vec![self.out_features],
                Init::Uniform(bound),
            ));
        }
        specs
    }

    fn multiply_adds(&self, _inputs: &[&[usize]], _output: &[usize]) -> u64 {
        (self.in_features * self.out_features) as u64
    }

    fn forward(&self, inputs: &[&Tensor], params: &[&Tensor]) -> crate::Result<Tensor> {
        linear(inputs[0], params[0], params.get(1).copied())
    }

    fn forward_tape(
        &self,
        tape: &mut Tape,
        inputs: &[Var],
        params: &[Var],
        _ctx: &mut TapeContext<'_>,
    ) -> crate::Result<Var> {
        tape.linear(inputs[0], params[0], params.get(1).copied())
    }
}
