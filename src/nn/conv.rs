//! Conv2d: standard, grouped, depthwise (groups = channels) and pointwise (1 x 1) convolution.

use super::{feature_map, single, Fusion, Init, Layer, ParamSpec, TapeContext};
use crate::autograd::Conv2dOptions;
use crate::functional::conv2d;
use crate::{Tape, Tensor, Var};
use convgrad_kernels::conv_out_size;

/// A 2-D convolution layer with weight `[out, in / groups, kH, kW]` and an optional bias.
///
/// The weight starts as He et al.'s normal with fan-out (as torchvision initialises its CNNs);
/// the bias starts at zero.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv2d {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel_size: (usize, usize),
    pub options: Conv2dOptions,
    pub bias: bool,
}

impl Conv2d {
    /// A square `kernel_size` convolution with stride 1, no padding, one group, and a bias.
    pub fn new(in_channels: usize, out_channels: usize, kernel_size: usize) -> Self {
        Conv2d {
            in_channels,
            out_channels,
            kernel_size: (kernel_size, kernel_size),
            options: Conv2dOptions::default(),
            bias: true,
        }
    }

    /// A depthwise convolution: one `kernel_size` filter per channel (`groups = channels`).
    pub fn depthwise(channels: usize, kernel_size: usize) -> Self {
        Conv2d::new(channels, channels, kernel_size).groups(channels)
    }

    /// A pointwise (1 x 1) convolution, mixing channels at each pixel.
    pub fn pointwise(in_channels: usize, out_channels: usize) -> Self {
        Conv2d::new(in_channels, out_channels, 1)
    }

    /// A kernel of `(height, width)`, such as Inception-v3's `(1, 7)`.
    pub fn kernel(mut self, kernel_size: (usize, usize)) -> Self {
        self.kernel_size = kernel_size;
        self
    }
    pub fn stride(mut self, stride: usize) -> Self {
        self.options.stride = (stride, stride);
        self
    }
    pub fn padding(mut self, padding: usize) -> Self {
        self.options.padding = (padding, padding);
        self
    }
    /// Padding per axis `(height, width)`.
    pub fn padding2(mut self, padding: (usize, usize)) -> Self {
        self.options.padding = padding;
        self
    }
    pub fn dilation(mut self, dilation: usize) -> Self {
        self.options.dilation = (dilation, dilation);
        self
    }
    pub fn groups(mut self, groups: usize) -> Self {
        self.options.groups = groups;
        self
    }
    pub fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }
}

impl Layer for Conv2d {
    fn kind(&self) -> &'static str {
        if self.options.groups > 1 && self.options.groups == self.in_channels {
            "DepthwiseConv2d"
        } else {
            "Conv2d"
        }
    }

    fn describe(&self) -> String {
        let (kh, kw) = self.kernel_size;
        let o = &self.options;
        let mut s = format!("{kh}x{kw}");
        if o.stride != (1, 1) {
            s += &if o.stride.0 == o.stride.1 {
                format!(" s{}", o.stride.0)
            } else {
                format!(" s{}x{}", o.stride.0, o.stride.1)
            };
        }
        if o.padding != (0, 0) {
            s += &if o.padding.0 == o.padding.1 {
                format!(" p{}", o.padding.0)
            } else {
                format!(" p{}x{}", o.padding.0, o.padding.1)
            };
        }
        if o.dilation != (1, 1) {
            s += &format!(" d{}", o.dilation.0);
        }
        if o.groups > 1 {
            s += &format!(" g{}", o.groups);
        }
        s + &format!(", {} -> {}", self.in_channels, self.out_channels)
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        let (c, h, w) = feature_map(single(inputs)?)?;
        if c != self.in_channels {
            return Err(format!(
                "expects {} input channels, got {c}",
                self.in_channels
            ));
        }
        let o = &self.options;
        if o.groups == 0 || c % o.groups != 0 || self.out_channels % o.groups != 0 {
            return Err(format!(
                "{c} input and {} output channels must be divisible by groups {}",
                self.out_channels, o.groups
            ));
        }
        let (kh, kw) = self.kernel_size;
        let oh = conv_out_size(h, kh, o.stride.0, o.padding.0, o.dilation.0);
        let ow = conv_out_size(w, kw, o.stride.1, o.padding.1, o.dilation.1);
        match (oh, ow) {
            (Some(oh), Some(ow)) => Ok(vec![self.out_channels, oh, ow]),
            _ => Err(format!(
                "the {kh}x{kw} kernel does not fit the {h}x{w} input with padding {:?}",
                o.padding
            )),
        }
    }

    fn params(&self) -> Vec<ParamSpec> {
        let (kh, kw) = self.kernel_size;
        let fan_out = (self.out_channels / self.options.groups.max(1)) * kh * kw;
        let std = (2.0 / fan_out as f32).sqrt();
        let mut specs = vec![ParamSpec::trainable(
            "weight",
            vec![
                self.out_channels,
                self.in_channels / self.options.groups.max(1),
                kh,
                kw,
            ],
            Init::Normal(std),
        )];
        if self.bias {
            specs.push(ParamSpec::trainable(
                "bias",
                vec![self.out_channels],
                Init::Zeros,
            ));
        }
        specs
    }

    fn multiply_adds(&self, _inputs: &[&[usize]], output: &[usize]) -> u64 {
        let (kh, kw) = self.kernel_size;
        let per_output = (self.in_channels / self.options.groups.max(1)) * kh * kw;
        output.iter().product::<usize>() as u64 * per_output as u64
    }

    fn fusion(&self) -> Fusion<'_> {
        Fusion::Conv2d(self)
    }

    fn forward(&self, inputs: &[&Tensor], params: &[&Tensor]) -> crate::Result<Tensor> {
        conv2d(inputs[0], params[0], params.get(1).copied(), self.options)
    }

    fn forward_tape(
        &self,
        tape: &mut Tape,
        inputs: &[Var],
        params: &[Var],
        _ctx: &mut TapeContext<'_>,
    ) -> crate::Result<Var> {
        tape.conv2d(inputs[0], params[0], params.get(1).copied(), self.options)
    }
}
