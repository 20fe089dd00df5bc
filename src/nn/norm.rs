//! Normalisation layers: BatchNorm2d and LocalResponseNorm.

use super::{single, Fusion, Init, Layer, Mode, ParamSpec, TapeContext};
use crate::autograd::{BatchNormOptions, Clamp, LrnOptions};
use crate::error::fmt_shape;
use crate::functional::{batch_norm, local_response_norm};
use crate::{Tape, Tensor, Var};

/// Batch normalisation over the channels of `[C, H, W]` (or the features of `[F]`), with a
/// learned scale (`weight`) and shift (`bias`) and running statistics kept as buffers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNorm2d {
    pub channels: usize,
    pub options: BatchNormOptions,
}

impl BatchNorm2d {
    /// PyTorch's defaults: `eps = 1e-5`, `momentum = 0.1`.
    pub fn new(channels: usize) -> Self {
        BatchNorm2d {
            channels,
            options: BatchNormOptions::default(),
        }
    }

    pub fn eps(mut self, eps: f32) -> Self {
        self.options.eps = eps;
        self
    }
}

impl Layer for BatchNorm2d {
    fn kind(&self) -> &'static str {
        "BatchNorm2d"
    }
    fn describe(&self) -> String {
        if self.options.eps == 1e-5 {
            String::new()
        } else {
            format!("eps={}", self.options.eps)
        }
    }
    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        let shape = single(inputs)?;
        if shape.first() != Some(&self.channels) {
            return Err(format!(
                "expects {} channels, got {}",
                self.channels,
                fmt_shape(shape)
            ));
        }
        Ok(shape.to_vec())
    }
    fn params(&self) -> Vec<ParamSpec> {
        let c = vec![self.channels];
        vec![
            ParamSpec::trainable("weight", c.clone(), Init::Ones),
            ParamSpec::trainable("bias", c.clone(), Init::Zeros),
            ParamSpec::buffer("running_mean", c.clone(), Init::Zeros),
            ParamSpec::buffer("running_var", c, Init::Ones),
        ]
    }
    fn fusion(&self) -> Fusion<'_> {
        Fusion::BatchNorm(self)
    }
    fn forward(&self, inputs: &[&Tensor], params: &[&Tensor]) -> crate::Result<Tensor> {
        let (mut mean, mut var) = (params[2].clone(), params[3].clone());
        batch_norm(
            inputs[0],
            Some((&mut mean, &mut var)),
            Some(params[0]),
            Some(params[1]),
            false,
            self.options,
        )
    }
    fn forward_tape(
        &self,
        tape: &mut Tape,
        inputs: &[Var],
        params: &[Var],
        ctx: &mut TapeContext<'_>,
    ) -> crate::Result<Var> {
        self.record(tape, inputs, params, ctx, None)
    }
}

impl BatchNorm2d {
    /// This BatchNorm followed by `clamp`: in training one op ([`Tape::batch_norm_clamped`]),
    /// in evaluation the two ops.
    pub(crate) fn forward_tape_clamped(
        &self,
        tape: &mut Tape,
        inputs: &[Var],
        params: &[Var],
        ctx: &mut TapeContext<'_>,
        clamp: Clamp,
    ) -> crate::Result<Var> {
        self.record(tape, inputs, params, ctx, Some(clamp))
    }

    fn record(
        &self,
        tape: &mut Tape,
        inputs: &[Var],
        params: &[Var],
        ctx: &mut TapeContext<'_>,
        clamp: Option<Clamp>,
    ) -> crate::Result<Var> {
        let mean = tape.value(params[2])?.clone();
        let var = tape.value(params[3])?.clone();
        let running = Some((&mean, &var));
        let (x, weight, bias) = (inputs[0], Some(params[0]), Some(params[1]));
        let training = ctx.mode == Mode::Train;
        let (y, updated) = match clamp {
            Some(clamp) if training => {
                tape.batch_norm_clamped(x, weight, bias, running, self.options, clamp)?
            }
            _ => tape.batch_norm(x, weight, bias, running, training, self.options)?,
        };
        if let Some((mean, var)) = updated {
            ctx.buffer_updates.push((2, mean));
            ctx.buffer_updates.push((3, var));
        }
        match clamp {
            Some(_) if training => Ok(y),
            Some(Clamp::Relu) => tape.relu(y),
            Some(Clamp::Relu6) => tape.relu6(y),
            None => Ok(y),
        }
    }
}

/// Local response normalisation across channels (AlexNet, GoogLeNet's stem in the paper).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LocalResponseNorm(pub LrnOptions);

impl Layer for LocalResponseNorm {
    fn kind(&self) -> &'static str {
        "LocalResponseNorm"
    }
    fn describe(&self) -> String {
        let o = &self.0;
        format!(
            "size={} alpha={} beta={} k={}",
            o.size, o.alpha, o.beta, o.k
        )
    }
    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        Ok(single(inputs)?.to_vec())
    }
    fn forward(&self, inputs: &[&Tensor], _: &[&Tensor]) -> crate::Result<Tensor> {
        local_response_norm(inputs[0], self.0)
    }
    fn forward_tape(
        &self,
        tape: &mut Tape,
        inputs: &[Var],
        _: &[Var],
        _: &mut TapeContext<'_>,
    ) -> crate::Result<Var> {
        tape.local_response_norm(inputs[0], self.0)
    }
}
