//! MobileNetV2 (Sandler, Howard, Zhu, Zhmoginov and Chen, 2018; CVPR 2018): inverted residuals
//! and linear bottlenecks.
//!
//! What was new: the residual block turned inside out. A ResNet bottleneck is wide-narrow-wide
//! with the shortcut between the wide ends; MobileNetV2's *inverted residual* is
//! narrow-wide-narrow: a 1x1 conv expands the thin input `t = 6` times, a 3x3 depthwise conv
//! filters the wide tensor cheaply, and a 1x1 conv projects it back down, with the shortcut
//! between the thin ends (when the stride is 1 and the channels agree), so the tensors that
//! cross blocks stay small. The projection is a *linear bottleneck*: no activation after it,
//! because a ReLU on a low-dimensional tensor destroys information the thin channels cannot
//! spare, while inside the wide expansion it does little harm. The other activations are ReLU6,
//! `min(max(x, 0), 6)`, robust in low-precision arithmetic. At 224 x 224 it needs 300M
//! multiply-adds (MobileNet v1: 569M) for better accuracy, with 3,504,872 parameters at 1000
//! classes.
//!
//! Names are torchvision's (`features.<i>.conv.<j>`). The paper's Table 2: each row is `n`
//! blocks of expansion `t` and `c` output channels, the first with stride `s`.
//!
//! | input | operator | t | c | n | s |
//! |---|---|---|---|---|---|
//! | 224 x 224 x 3 | conv2d 3x3 | - | 32 | 1 | 2 |
//! | 112 x 112 x 32 | bottleneck | 1 | 16 | 1 | 1 |
//! | 112 x 112 x 16 | bottleneck | 6 | 24 | 2 | 2 |
//! | 56 x 56 x 24 | bottleneck | 6 | 32 | 3 | 2 |
//! | 28 x 28 x 32 | bottleneck | 6 | 64 | 4 | 2 |
//! | 14 x 14 x 64 | bottleneck | 6 | 96 | 3 | 1 |
//! | 14 x 14 x 96 | bottleneck | 6 | 160 | 3 | 2 |
//! | 7 x 7 x 160 | bottleneck | 6 | 320 | 1 | 1 |
//! | 7 x 7 x 320 | conv2d 1x1 | - | 1280 | 1 | 1 |
//! | 7 x 7 x 1280 | global avg pool | - | - | 1 | - |
//! | 1280 | dropout 0.2, fully connected | - | classes | 1 | - |
//!
//! The smallest input is 1 x 1: every 3x3 conv has padding 1, so a 1 x 1 map stays 1 x 1
//! through the strides.

use super::ModelConfig;
use crate::error::Result;
use crate::graph::{Graph, GraphBuilder, NodeId};
use crate::nn::Conv2d;

/// The paper's Table 2: `(t, c, n, s)` = (expansion, output channels, blocks, first stride).
const BOTTLENECKS: [(usize, usize, usize, usize); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];

/// MobileNetV2 (width 1.0) with torchvision's names (any input of at least 1 x 1 works).
pub fn mobilenet_v2(config: &ModelConfig, input: [usize; 3]) -> Result<Graph> {
    mobilenet_v2_width(1.0, config, input)
}

/// torchvision's `_make_divisible(v, 8)`: the nearest multiple of 8, at least 8, and never more
/// than 10% below `v`.
fn make_divisible(v: f64) -> usize {
    let rounded = (((v + 4.0) as usize) / 8 * 8).max(8);
    if (rounded as f64) < 0.9 * v {
        rounded + 8
    } else {
        rounded
    }
}

/// MobileNetV2 with torchvision's `width_mult`: every layer's channels scaled and rounded to a
/// multiple of 8, the last 1x1 convolution never narrower than 1280.
pub fn mobilenet_v2_width(
    width_mult: f64,
    config: &ModelConfig,
    input: [usize; 3],
) -> Result<Graph> {
    let (mut b, x) = GraphBuilder::new("mobilenet_v2", &input);
    let stem = Conv2d::new(0, make_divisible(32.0 * width_mult), 3)
        .stride(2)
        .padding(1);
    let mut x = conv_bn_relu6(&mut b, "features.0", x, stem)?;
    let mut index = 1;
    for (expansion, out_channels, blocks, stride) in BOTTLENECKS {
        for i in 0..blocks {
            let stride = if i == 0 { stride } else { 1 };
            let name = format!("features.{index}");
            let out_channels = make_divisible(out_channels as f64 * width_mult);
            x = inverted_residual(&mut b, &name, x, out_channels, stride, expansion)?;
            index += 1;
        }
    }
    let last = Conv2d::pointwise(0, make_divisible(1280.0 * width_mult.max(1.0)));
    let x = conv_bn_relu6(&mut b, &format!("features.{index}"), x, last)?;
    let x = b.global_avg_pool("avgpool", x)?;
    let x = b.dropout("classifier.0", x, 0.2)?;
    let x = b.linear("classifier.1", x, config.num_classes)?;
    b.build(x)
}

/// torchvision's `Conv2dNormActivation`: `<name>.0` the conv (without bias), `<name>.1` BN,
/// `<name>.2` ReLU6.
fn conv_bn_relu6(b: &mut GraphBuilder, name: &str, x: NodeId, conv: Conv2d) -> Result<NodeId> {
    let x = b.conv(format!("{name}.0"), x, conv.bias(false))?;
    let x = b.batch_norm(format!("{name}.1"), x)?;
    b.relu6(format!("{name}.2"), x)
}

/// Expand with a 1x1 conv (left out when `expansion` is 1), filter with a 3x3 depthwise conv
/// of the block's stride, project linearly with a 1x1 conv and BN; add the input back when the
/// stride is 1 and the channels agree.
fn inverted_residual(
    b: &mut GraphBuilder,
    name: &str,
    x: NodeId,
    out_channels: usize,
    stride: usize,
    expansion: usize,
) -> Result<NodeId> {
    let in_channels = b.channels(x);
    let hidden = in_channels * expansion;
    let mut y = x;
    let mut position = 0;
    if expansion != 1 {
        let expand = Conv2d::pointwise(in_channels, hidden);
        y = conv_bn_relu6(b, &format!("{name}.conv.0"), y, expand)?;
        position = 1;
    }
    let depthwise = Conv2d::depthwise(hidden, 3).stride(stride).padding(1);
    y = conv_bn_relu6(b, &format!("{name}.conv.{position}"), y, depthwise)?;
    // The linear bottleneck: BN, and no activation.
    let project = Conv2d::pointwise(hidden, out_channels).bias(false);
    y = b.conv(format!("{name}.conv.{}", position + 1), y, project)?;
    y = b.batch_norm(format!("{name}.conv.{}", position + 2), y)?;
    if stride == 1 && in_channels == out_channels {
        y = b.add(format!("{name}.add"), &[x, y])?;
    }
    Ok(y)
}

#[cfg(test)]
mod tests {
    use crate::models::{self, ModelConfig};

    #[test]
    fn the_smallest_input_is_the_real_limit_and_the_cost_is_the_papers() {
        let info = models::info("mobilenet_v2").unwrap();
        let build = |size| (info.builder)(&ModelConfig::new(1000), [3, size, size]);
        assert!(build(info.min_size).is_ok());
        assert!(build(info.min_size - 1).is_err());
        // Sandler et al., Table 4: 300M multiply-adds (300.8M counted exactly, fc included).
        assert_eq!(build(224).unwrap().multiply_adds(), 300_774_272);
    }
}
