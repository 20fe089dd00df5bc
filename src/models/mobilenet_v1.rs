//! MobileNet (Howard, Zhu, Chen, Kalenichenko, Wang, Weyand, Andreetto and Adam, 2017): a
//! whole network of depthwise-separable convolutions, sized for phones.
//!
//! What was new: factorising every convolution but the first into a *depthwise* 3x3 conv (one
//! filter per input channel) and a *pointwise* 1x1 conv (mixing channels), each followed by BN
//! and a ReLU. For a `D_K x D_K` kernel, `M` input and `N` output channels on a `D_F x D_F`
//! map, a standard conv costs `D_K^2 M N D_F^2` multiply-adds and the separable pair
//! `D_K^2 M D_F^2 + M N D_F^2`, a ratio of `1/N + 1/D_K^2` (Howard et al., section 3.1): eight
//! to nine times less work with 3x3 kernels, for about 1% of ImageNet accuracy. Nearly all the
//! remaining work is in the 1x1 convs, which are plain matrix products. Two global
//! hyper-parameters then trade accuracy for cost: a *width multiplier* `alpha` thinning every
//! layer (cost and parameters fall by about `alpha^2`) and a *resolution multiplier*. This is
//! MobileNet 1.0-224: 569M multiply-adds, and 4,231,976 parameters at 1000 classes.
//!
//! Parameter names and the details are timm's `mobilenetv1_100`: the activations are ReLU6 (as
//! in TensorFlow's reference implementation, with which timm's weights were trained; the paper
//! says ReLU), and the classifier is global average pooling and one fully connected layer, with
//! no dropout. The paper's Table 1, one row per stage of timm's `blocks`:
//!
//! | stage | layers | output (224 input) |
//! |---|---|---|
//! | conv_stem | 3x3 conv, stride 2, BN-ReLU6 | 32 x 112 x 112 |
//! | blocks.0 | [dw 3x3, pw 1x1] to 64 | 64 x 112 x 112 |
//! | blocks.1 | [dw 3x3 s2, pw 1x1] to 128, [dw 3x3, pw 1x1] to 128 | 128 x 56 x 56 |
//! | blocks.2 | [dw 3x3 s2, pw 1x1] to 256, [dw 3x3, pw 1x1] to 256 | 256 x 28 x 28 |
//! | blocks.3 | [dw 3x3 s2, pw 1x1] to 512, 5 x [dw 3x3, pw 1x1] to 512 | 512 x 14 x 14 |
//! | blocks.4 | [dw 3x3 s2, pw 1x1] to 1024, [dw 3x3, pw 1x1] to 1024 | 1024 x 7 x 7 |
//! | head | global average pool, fully connected | classes |
//!
//! (The paper's table prints the last depthwise conv with stride 2; it is stride 1 there and
//! in every implementation, the map staying at 7 x 7.)
//!
//! The smallest input is 1 x 1: every conv is padded to keep a 1 x 1 map at 1 x 1, strides
//! included (the stride-2 3x3 convs have padding 1).

use super::ModelConfig;
use crate::error::Result;
use crate::graph::{Graph, GraphBuilder, NodeId};
use crate::nn::Conv2d;

/// `(out_channels, blocks, stride of the first block)` per stage, as timm's `dsa_r<n>_s<s>_c<c>`.
const STAGES: [(usize, usize, usize); 5] = [
    (64, 1, 1),
    (128, 2, 2),
    (256, 2, 2),
    (512, 6, 2),
    (1024, 2, 2),
];

/// MobileNet 1.0-224 with timm's `mobilenetv1_100` names (any input of at least 1 x 1 works).
pub fn mobilenet_v1(config: &ModelConfig, input: [usize; 3]) -> Result<Graph> {
    let (mut b, x) = GraphBuilder::new("mobilenet_v1", &input);
    let stem = Conv2d::new(0, 32, 3).stride(2).padding(1).bias(false);
    let x = b.conv("conv_stem", x, stem)?;
    let x = b.batch_norm("bn1", x)?;
    let mut x = b.relu6("bn1.act", x)?;
    for (stage, &(out_channels, blocks, stride)) in STAGES.iter().enumerate() {
        for i in 0..blocks {
            let stride = if i == 0 { stride } else { 1 };
            let name = format!("blocks.{stage}.{i}");
            x = depthwise_separable(&mut b, &name, x, out_channels, stride)?;
        }
    }
    let x = b.global_avg_pool("global_pool", x)?;
    let x = b.linear("classifier", x, config.num_classes)?;
    b.build(x)
}

/// A 3x3 depthwise conv (with the block's stride) then a 1x1 pointwise conv to `out_channels`,
/// each followed by BN and ReLU6 (timm's `BatchNormAct2d`, so the activations are
/// `<name>.bn1.act` and `<name>.bn2.act`). No residual connection.
fn depthwise_separable(
    b: &mut GraphBuilder,
    name: &str,
    x: NodeId,
    out_channels: usize,
    stride: usize,
) -> Result<NodeId> {
    let channels = b.channels(x);
    let depthwise = Conv2d::depthwise(channels, 3).stride(stride).padding(1);
    let x = b.conv(format!("{name}.conv_dw"), x, depthwise.bias(false))?;
    let x = b.batch_norm(format!("{name}.bn1"), x)?;
    let x = b.relu6(format!("{name}.bn1.act"), x)?;
    let pointwise = Conv2d::pointwise(channels, out_channels).bias(false);
    let x = b.conv(format!("{name}.conv_pw"), x, pointwise)?;
    let x = b.batch_norm(format!("{name}.bn2"), x)?;
    b.relu6(format!("{name}.bn2.act"), x)
}

#[cfg(test)]
mod tests {
    use crate::models::{self, ModelConfig};

    #[test]
    fn the_smallest_input_is_the_real_limit_and_the_cost_is_the_papers() {
        let info = models::info("mobilenet_v1").unwrap();
        let build = |size| (info.builder)(&ModelConfig::new(1000), [3, size, size]);
        assert!(build(info.min_size).is_ok());
        assert!(build(info.min_size - 1).is_err());
        // Howard et al., Table 1: 569M multiply-adds (568.7M counted exactly, fc included).
        assert_eq!(build(224).unwrap().multiply_adds(), 568_740_352);
    }
}
