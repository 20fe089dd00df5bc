//! SeparableConv2d: a depthwise convolution (one `k x k` filter per channel) followed by a
//! pointwise 1 x 1 convolution that mixes channels, as one layer (Keras' `SeparableConv2D`,
//! timm's `SeparableConv2d` with its `conv1` and `pointwise` children).
//!
//! It costs `k^2 * C_in + C_in * C_out` weights and multiply-adds per pixel against
//! `k^2 * C_in * C_out` for a standard convolution: a ratio of `1/C_out + 1/k^2`.

use super::{feature_map, single, Conv2d, Fusion, Layer, ParamSpec, TapeContext};
use crate::autograd::Conv2dOptions;
use crate::functional::conv2d;
use crate::{Tape, Tensor, Var};

/// Depthwise `kernel_size` convolution (stride, padding, dilation apply here), then pointwise.
/// Parameters: `conv1.weight` `[C_in, 1, k, k]` and `pointwise.weight` `[C_out, C_in, 1, 1]`
/// (plus `conv1.bias` and `pointwise.bias` when `bias` is set).
#[derive(Clone, Debug, PartialEq)]
pub struct SeparableConv2d {
    pub depthwise: Conv2d,
    pub pointwise: Conv2d,
}

impl SeparableConv2d {
    /// Without biases (a batch norm usually follows).
    pub fn new(in_channels: usize, out_channels: usize, kernel_size: usize) -> Self {
        SeparableConv2d {
            depthwise: Conv2d::depthwise(in_channels, kernel_size).bias(false),
            pointwise: Conv2d::pointwise(in_channels, out_channels).bias(false),
        }
    }
    pub fn stride(mut self, stride: usize) -> Self {
        self.depthwise = self.depthwise.stride(stride);
        self
    }
    pub fn padding(mut self, padding: usize) -> Self {
        self.depthwise = self.depthwise.padding(padding);
        self
    }
    pub fn dilation(mut self, dilation: usize) -> Self {
        self.depthwise = self.depthwise.dilation(dilation);
        self
    }
    pub fn bias(mut self, bias: bool) -> Self {
        self.depthwise = self.depthwise.bias(bias);
        self.pointwise = self.pointwise.bias(bias);
        self
    }
    /// The same layer over `in_channels` input channels.
    pub(crate) fn with_in_channels(mut self, in_channels: usize) -> Self {
        let depthwise_options = Conv2dOptions {
            groups: in_channels,
            ..self.depthwise.options
        };
        self.depthwise = Conv2d {
            in_channels,
            out_channels: in_channels,
            options: depthwise_options,
            ..self.depthwise
        };
        self.pointwise.in_channels = in_channels;
        self
    }
    pub(crate) fn has_bias(&self) -> bool {
        self.depthwise.bias
    }
}

impl Layer for SeparableConv2d {
    fn kind(&self) -> &'static str {
        "SeparableConv2d"
    }
    fn describe(&self) -> String {
        let d = self.depthwise.describe();
        let groups = format!(" g{}", self.depthwise.in_channels);
        let geometry = d.split(',').next().unwrap_or_default().replace(&groups, "");
        format!(
            "{geometry}, {} -> {}",
            self.depthwise.in_channels, self.pointwise.out_channels
        )
    }
    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        feature_map(single(inputs)?)?;
        let mid = self.depthwise.output_shape(inputs)?;
        self.pointwise.output_shape(&[&mid])
    }
    fn params(&self) -> Vec<ParamSpec> {
        let rename = |spec: ParamSpec, depthwise: bool| {
            let name = match (depthwise, spec.name) {
                (true, "weight") => "conv1.weight",
                (true, _) => "conv1.bias",
                (false, "weight") => "pointwise.weight",
                (false, _) => "pointwise.bias",
            };
            ParamSpec { name, ..spec }
        };
        let mut specs: Vec<ParamSpec> = self
            .depthwise
            .params()
            .into_iter()
            .map(|s| rename(s, true))
            .collect();
        specs.extend(
            self.pointwise
                .params()
                .into_iter()
                .map(|s| rename(s, false)),
        );
        // Weights first, then biases, in the order `forward` receives them.
        specs.sort_by_key(|s| s.name.ends_with("bias"));
        specs
    }
    fn multiply_adds(&self, inputs: &[&[usize]], output: &[usize]) -> u64 {
        let mid = self.depthwise.output_shape(inputs).unwrap_or_default();
        self.depthwise.multiply_adds(inputs, &mid) + self.pointwise.multiply_adds(&[&mid], output)
    }
    fn fusion(&self) -> Fusion<'_> {
        Fusion::Separable(self)
    }
    fn forward(&self, inputs: &[&Tensor], params: &[&Tensor]) -> crate::Result<Tensor> {
        let (dw_bias, pw_bias) = if self.has_bias() {
            (Some(params[2]), Some(params[3]))
        } else {
            (None, None)
        };
        let mid = conv2d(inputs[0], params[0], dw_bias, self.depthwise.options)?;
        conv2d(&mid, params[1], pw_bias, self.pointwise.options)
    }
    fn forward_tape(
        &self,
        tape: &mut Tape,
        inputs: &[Var],
        params: &[Var],
        _ctx: &mut TapeContext<'_>,
    ) -> crate::Result<Var> {
        let (dw_bias, pw_bias) = if self.has_bias() {
            (Some(params[2]), Some(params[3]))
        } else {
            (None, None)
        };
        let mid = tape.conv2d(inputs[0], params[0], dw_bias, self.depthwise.options)?;
        tape.conv2d(mid, params[1], pw_bias, self.pointwise.options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autograd::gradcheck::check_gradients;
    use crate::Rng;

    #[test]
    fn is_a_depthwise_then_a_pointwise_convolution() {
        let layer = SeparableConv2d::new(0, 5, 3)
            .padding(1)
            .stride(2)
            .with_in_channels(3);
        let specs = layer.params();
        let names: Vec<&str> = specs.iter().map(|s| s.name).collect();
        assert_eq!(names, ["conv1.weight", "pointwise.weight"]);
        assert_eq!(specs[0].shape, [3, 1, 3, 3]);
        assert_eq!(specs[1].shape, [5, 3, 1, 1]);
        assert_eq!(layer.output_shape(&[&[3, 7, 7]]).unwrap(), [5, 4, 4]);
        // 27 + 15 multiply-adds per output pixel, against 135 for a standard 3x3.
        assert_eq!(
            layer.multiply_adds(&[&[3, 7, 7]], &[5, 4, 4]),
            (27 + 15) * 16
        );

        let mut rng = Rng::seed(3);
        let x = Tensor::randn(&[2, 3, 7, 7], &mut rng);
        let dw = Tensor::randn(&[3, 1, 3, 3], &mut rng);
        let pw = Tensor::randn(&[5, 3, 1, 1], &mut rng);
        let y = layer.forward(&[&x], &[&dw, &pw]).unwrap();
        let mid = conv2d(&x, &dw, None, layer.depthwise.options).unwrap();
        let expected = conv2d(&mid, &pw, None, Conv2dOptions::default()).unwrap();
        assert_eq!(y, expected);
        let r = check_gradients(&[x, dw, pw], |tape, v| {
            let mut ctx = TapeContext {
                mode: super::super::Mode::Train,
                rng: &mut Rng::seed(0),
                buffer_updates: Vec::new(),
                dropout: false,
            };
            layer.forward_tape(tape, &[v[0]], &[v[1], v[2]], &mut ctx)
        });
        assert!(r.is_ok(), "{}", r.unwrap_err());
    }
}
