//! Pooling layers: max, average, adaptive average and global average.

use super::{feature_map, single, Layer, TapeContext};
use crate::autograd::Pool2dOptions;
use crate::functional::{adaptive_avg_pool2d, avg_pool2d, global_avg_pool2d, max_pool2d};
use crate::{Tape, Tensor, Var};
use convgrad_kernels::pool_out_size;

fn describe(o: &Pool2dOptions) -> String {
    let mut s = format!("{}x{} s{}", o.kernel.0, o.kernel.1, o.stride.0);
    if o.padding != (0, 0) {
        s += &format!(" p{}", o.padding.0);
    }
    if o.ceil_mode {
        s += " ceil";
    }
    s
}

fn pooled_shape(inputs: &[&[usize]], o: &Pool2dOptions) -> Result<Vec<usize>, String> {
    let (c, h, w) = feature_map(single(inputs)?)?;
    if 2 * o.padding.0 > o.kernel.0 || 2 * o.padding.1 > o.kernel.1 {
        return Err(format!(
            "padding {:?} must be at most half the window {:?}",
            o.padding, o.kernel
        ));
    }
    let oh = pool_out_size(
        h,
        o.kernel.0,
        o.stride.0,
        o.padding.0,
        o.dilation.0,
        o.ceil_mode,
    );
    let ow = pool_out_size(
        w,
        o.kernel.1,
        o.stride.1,
        o.padding.1,
        o.dilation.1,
        o.ceil_mode,
    );
    match (oh, ow) {
        (Some(oh), Some(ow)) if oh > 0 && ow > 0 => Ok(vec![c, oh, ow]),
        _ => Err(format!(
            "the {}x{} window does not fit the {h}x{w} input",
            o.kernel.0, o.kernel.1
        )),
    }
}

/// Max pooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool2d(pub Pool2dOptions);

impl Layer for MaxPool2d {
    fn kind(&self) -> &'static str {
        "MaxPool2d"
    }
    fn describe(&self) -> String {
        describe(&self.0)
    }
    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        pooled_shape(inputs, &self.0)
    }
    fn forward(&self, inputs: &[&Tensor], _: &[&Tensor]) -> crate::Result<Tensor> {
        max_pool2d(inputs[0], self.0)
    }
    fn forward_tape(
        &self,
        tape: &mut Tape,
        inputs: &[Var],
        _: &[Var],
        _: &mut TapeContext<'_>,
    ) -> crate::Result<Var> {
        tape.max_pool2d(inputs[0], self.0)
    }
}

/// Average pooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPool2d(pub Pool2dOptions);

impl Layer for AvgPool2d {
    fn kind(&self) -> &'static str {
        "AvgPool2d"
    }
    fn describe(&self) -> String {
        describe(&self.0)
            + if self.0.count_include_pad || self.0.padding == (0, 0) {
                ""
            } else {
                " excl. pad"
            }
    }
    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        pooled_shape(inputs, &self.0)
    }
    fn forward(&self, inputs: &[&Tensor], _: &[&Tensor]) -> crate::Result<Tensor> {
        avg_pool2d(inputs[0], self.0)
    }
    fn forward_tape(
        &self,
        tape: &mut Tape,
        inputs: &[Var],
        _: &[Var],
        _: &mut TapeContext<'_>,
    ) -> crate::Result<Var> {
        tape.avg_pool2d(inputs[0], self.0)
    }
}

/// Average pooling to a fixed output size, whatever the input size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdaptiveAvgPool2d(pub (usize, usize));

impl Layer for AdaptiveAvgPool2d {
    fn kind(&self) -> &'static str {
        "AdaptiveAvgPool2d"
    }
    fn describe(&self) -> String {
        format!("to {}x{}", self.0 .0, self.0 .1)
    }
    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        let (c, _, _) = feature_map(single(inputs)?)?;
        Ok(vec![c, self.0 .0, self.0 .1])
    }
    fn forward(&self, inputs: &[&Tensor], _: &[&Tensor]) -> crate::Result<Tensor> {
        adaptive_avg_pool2d(inputs[0], self.0)
    }
    fn forward_tape(
        &self,
        tape: &mut Tape,
        inputs: &[Var],
        _: &[Var],
        _: &mut TapeContext<'_>,
    ) -> crate::Result<Var> {
        tape.adaptive_avg_pool2d(inputs[0], self.0)
    }
}

/// The mean of each channel: `[C, H, W]` to `[C]` (Network in Network's replacement for a
/// flattening classifier).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GlobalAvgPool2d;

impl Layer for GlobalAvgPool2d {
    fn kind(&self) -> &'static str {
        "GlobalAvgPool2d"
    }
    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        let (c, _, _) = feature_map(single(inputs)?)?;
        Ok(vec![c])
    }
    fn forward(&self, inputs: &[&Tensor], _: &[&Tensor]) -> crate::Result<Tensor> {
        global_avg_pool2d(inputs[0])
    }
    fn forward_tape(
        &self,
        tape: &mut Tape,
        inputs: &[Var],
        _: &[Var],
        _: &mut TapeContext<'_>,
    ) -> crate::Result<Var> {
        tape.global_avg_pool2d(inputs[0])
    }
}
