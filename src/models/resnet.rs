//! ResNet (He, Zhang, Ren and Sun, 2015, "Deep Residual Learning for Image Recognition"):
//! the network that made depth cheap.
//!
//! What was new: plain networks got *worse* past twenty-odd layers, on the training set too,
//! so the problem was optimisation rather than overfitting. ResNet lets each block learn a
//! residual `F(x)` and outputs `relu(F(x) + x)`: the identity shortcut costs no parameters, a
//! block that has nothing to add can learn `F = 0`, and the gradient reaches early layers
//! through the sum untouched. With batch normalisation after every convolution (no dropout),
//! that trained nets of 152 layers, won ILSVRC 2015 at 3.57% top-5 error, and made the
//! residual connection part of nearly every later architecture.
//!
//! Two blocks. The *basic block* (ResNet-18/34) is two 3 x 3 convolutions. The *bottleneck*
//! (ResNet-50/101/152) is 1 x 1 down to `width`, 3 x 3 at `width`, 1 x 1 up to `4 * width`:
//! at 256 channels in and out it costs about the same as a basic block at 64 while the network
//! gets three times deeper. Where a block changes the shape (the first block of each stage), the
//! shortcut is a 1 x 1 convolution with the block's stride plus batch norm (torchvision's
//! `downsample`, the paper's option B).
//!
//! As torchvision, this is "ResNet v1.5": a downsampling bottleneck strides in its 3 x 3
//! convolution, not in its first 1 x 1 as in the paper (which skipped three quarters of the
//! pixels before looking at them). The basic block strides in its first 3 x 3 either way.
//!
//! The stages as in the paper's Table 1; output sizes for a 224 x 224 input; parameters at 1000
//! classes (torchvision counts, batch-norm running statistics not included).
//!
//! | stage (torchvision) | output | 18 | 34 | 50 | 101 | 152 |
//! |---|---|---|---|---|---|---|
//! | conv1, bn1 | 64 x 112 x 112 | 7x7, 64, stride 2 | | | | |
//! | maxpool | 64 x 56 x 56 | 3x3 max, stride 2 | | | | |
//! | layer1 | 56 x 56 | [3x3, 64; 3x3, 64] x 2 | x 3 | [1x1, 64; 3x3, 64; 1x1, 256] x 3 | x 3 | x 3 |
//! | layer2 | 28 x 28 | [3x3, 128; 3x3, 128] x 2 | x 4 | [1x1, 128; 3x3, 128; 1x1, 512] x 4 | x 4 | x 8 |
//! | layer3 | 14 x 14 | [3x3, 256; 3x3, 256] x 2 | x 6 | [1x1, 256; 3x3, 256; 1x1, 1024] x 6 | x 23 | x 36 |
//! | layer4 | 7 x 7 | [3x3, 512; 3x3, 512] x 2 | x 3 | [1x1, 512; 3x3, 512; 1x1, 2048] x 3 | x 3 | x 3 |
//! | avgpool, fc | 1000 | global average pool, fc 512 (basic) or 2048 (bottleneck) to 1000 | | | | |
//! | parameters | | 11,689,512 | 21,797,672 | 25,557,032 | 44,549,160 | 60,192,808 |
//!
//! Smallest input: every stride-2 layer (the 7 x 7 padded by 3, the 3 x 3 max pool and 3 x 3
//! convolutions padded by 1, the unpadded 1 x 1 shortcut) maps `h` to `ceil(h / 2)`, so the two
//! sides of each sum always agree and a 1 x 1 input stays 1 x 1 all the way down: any input of at
//! least 1 x 1 is accepted, as torchvision documents. At 32 x 32 or less, layer4 sees one pixel.

use super::ModelConfig;
use crate::autograd::Pool2dOptions;
use crate::error::Result;
use crate::graph::{Graph, GraphBuilder, NodeId};
use crate::nn::Conv2d;

/// The residual block a ResNet is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Block {
    /// Two 3 x 3 convolutions; output channels = `width`.
    Basic,
    /// 1 x 1, 3 x 3, 1 x 1; output channels = 4 x `width`.
    Bottleneck,
}

impl Block {
    /// Output channels over `width` (torchvision's `expansion`).
    fn expansion(self) -> usize {
        match self {
            Block::Basic => 1,
            Block::Bottleneck => 4,
        }
    }
}

/// ResNet-18: basic blocks, `[2, 2, 2, 2]` per stage.
pub fn resnet18(config: &ModelConfig, input: [usize; 3]) -> Result<Graph> {
    resnet("resnet18", Block::Basic, [2, 2, 2, 2], config, input)
}

/// ResNet-34: basic blocks, `[3, 4, 6, 3]` per stage.
pub fn resnet34(config: &ModelConfig, input: [usize; 3]) -> Result<Graph> {
    resnet("resnet34", Block::Basic, [3, 4, 6, 3], config, input)
}

/// ResNet-50: bottleneck blocks, `[3, 4, 6, 3]` per stage.
pub fn resnet50(config: &ModelConfig, input: [usize; 3]) -> Result<Graph> {
    resnet("resnet50", Block::Bottleneck, [3, 4, 6, 3], config, input)
}

/// ResNet-101: bottleneck blocks, `[3, 4, 23, 3]` per stage.
pub fn resnet101(config: &ModelConfig, input: [usize; 3]) -> Result<Graph> {
    resnet("resnet101", Block::Bottleneck, [3, 4, 23, 3], config, input)
}

/// ResNet-152: bottleneck blocks, `[3, 8, 36, 3]` per stage.
pub fn resnet152(config: &ModelConfig, input: [usize; 3]) -> Result<Graph> {
    resnet("resnet152", Block::Bottleneck, [3, 8, 36, 3], config, input)
}

/// The stem, four stages of `blocks_per_stage` residual blocks at widths 64, 128, 256, 512
/// (the last three halving the resolution), global average pooling and the classifier.
fn resnet(
    name: &str,
    block: Block,
    blocks_per_stage: [usize; 4],
    config: &ModelConfig,
    input: [usize; 3],
) -> Result<Graph> {
    let (mut b, x) = GraphBuilder::new(name, &input);
    let x = b.conv("conv1", x, conv(64, 7).stride(2).padding(3))?;
    let x = b.batch_norm("bn1", x)?;
    let x = b.relu("relu", x)?;
    let mut x = b.max_pool("maxpool", x, Pool2dOptions::new(3).stride(2).padding(1))?;
    let widths = [64, 128, 256, 512];
    for (stage, (&blocks, width)) in blocks_per_stage.iter().zip(widths).enumerate() {
        let stride = if stage == 0 { 1 } else { 2 };
        let layer = format!("layer{}", stage + 1);
        x = make_layer(&mut b, &layer, x, block, width, blocks, stride)?;
    }
    let x = b.adaptive_avg_pool("avgpool", x, (1, 1))?;
    let x = b.flatten("flatten", x)?;
    let x = b.linear("fc", x, config.num_classes)?;
    b.build(x)
}

/// One stage (`layer1` .. `layer4`): `blocks` blocks named `<layer>.0`, `<layer>.1`, ...; the
/// first one strides and widens, the others keep the shape.
fn make_layer(
    b: &mut GraphBuilder,
    layer: &str,
    mut x: NodeId,
    block: Block,
    width: usize,
    blocks: usize,
    stride: usize,
) -> Result<NodeId> {
    for index in 0..blocks {
        let name = format!("{layer}.{index}");
        let stride = if index == 0 { stride } else { 1 };
        x = match block {
            Block::Basic => basic_block(b, &name, x, width, stride)?,
            Block::Bottleneck => bottleneck(b, &name, x, width, stride)?,
        };
    }
    Ok(x)
}

/// `relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`, both convolutions 3 x 3 at `width`.
fn basic_block(
    b: &mut GraphBuilder,
    name: &str,
    x: NodeId,
    width: usize,
    stride: usize,
) -> Result<NodeId> {
    let out = b.conv(format!("{name}.conv1"), x, conv3x3(width, stride))?;
    let out = b.batch_norm(format!("{name}.bn1"), out)?;
    let out = b.relu(format!("{name}.relu1"), out)?;
    let out = b.conv(format!("{name}.conv2"), out, conv3x3(width, 1))?;
    let out = b.batch_norm(format!("{name}.bn2"), out)?;
    residual(b, name, x, out, stride)
}

/// 1 x 1 to `width`, 3 x 3 at `width` (carrying the stride: v1.5), 1 x 1 to `4 * width`, then
/// the shortcut sum.
fn bottleneck(
    b: &mut GraphBuilder,
    name: &str,
    x: NodeId,
    width: usize,
    stride: usize,
) -> Result<NodeId> {
    let out_channels = width * Block::Bottleneck.expansion();
    let out = b.conv(format!("{name}.conv1"), x, conv(width, 1))?;
    let out = b.batch_norm(format!("{name}.bn1"), out)?;
    let out = b.relu(format!("{name}.relu1"), out)?;
    let out = b.conv(format!("{name}.conv2"), out, conv3x3(width, stride))?;
    let out = b.batch_norm(format!("{name}.bn2"), out)?;
    let out = b.relu(format!("{name}.relu2"), out)?;
    let out = b.conv(format!("{name}.conv3"), out, conv(out_channels, 1))?;
    let out = b.batch_norm(format!("{name}.bn3"), out)?;
    residual(b, name, x, out, stride)
}

/// `relu(out + shortcut(x))`. The shortcut is `x` itself when the block keeps the shape, else
/// `downsample`: a 1 x 1 convolution with the block's stride and a batch norm.
fn residual(
    b: &mut GraphBuilder,
    name: &str,
    x: NodeId,
    out: NodeId,
    stride: usize,
) -> Result<NodeId> {
    let out_channels = b.channels(out);
    let shortcut = if stride == 1 && b.channels(x) == out_channels {
        x
    } else {
        let conv1x1 = conv(out_channels, 1).stride(stride);
        let s = b.conv(format!("{name}.downsample.0"), x, conv1x1)?;
        b.batch_norm(format!("{name}.downsample.1"), s)?
    };
    let sum = b.add(format!("{name}.add"), &[out, shortcut])?;
    b.relu(format!("{name}.relu"), sum)
}

/// A `kernel_size` x `kernel_size` convolution to `out_channels` without bias (batch norm
/// follows every convolution); `in_channels` come from the builder.
fn conv(out_channels: usize, kernel_size: usize) -> Conv2d {
    Conv2d::new(0, out_channels, kernel_size).bias(false)
}

/// A 3 x 3 convolution padded by 1: stride 1 keeps the size, stride 2 halves it (rounding up).
fn conv3x3(out_channels: usize, stride: usize) -> Conv2d {
    conv(out_channels, 3).stride(stride).padding(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::ParamStore;
    use crate::nn::Mode;
    use crate::{Rng, Tape, Tensor};

    #[test]
    fn resnet18_runs_forward_and_backward_on_a_tape_at_its_smallest_input() {
        let config = ModelConfig::new(5).input([3, 1, 1]);
        let graph = resnet18(&config, [3, 1, 1]).unwrap();
        let mut rng = Rng::seed(0);
        let store = ParamStore::init(&graph, &mut rng);
        let x = Tensor::randn(&[2, 3, 1, 1], &mut rng);
        let mut tape = Tape::new();
        let input = tape.input(x);
        let out = graph
            .forward_tape(&mut tape, &store, input, Mode::Train, &mut rng, true)
            .unwrap();
        assert_eq!(tape.value(out.output).unwrap().shape(), &[2, 5]);
        let loss = tape.cross_entropy(out.output, &[0, 4]).unwrap();
        let grads = tape.backward(loss).unwrap();
        let stem = graph
            .param_specs()
            .iter()
            .position(|p| p.name == "conv1.weight");
        let stem_grad = grads.get(out.params[stem.unwrap()]).unwrap();
        assert!(stem_grad.data().iter().any(|&g| g != 0.0));
    }

    #[test]
    fn shortcuts_are_identities_except_where_the_shape_changes() {
        let config = ModelConfig::new(1000);
        let graph = resnet50(&config, [3, 224, 224]).unwrap();
        let downsamples: Vec<&str> = graph
            .nodes()
            .iter()
            .map(|n| n.name.as_str())
            .filter(|n| n.ends_with(".downsample.0"))
            .collect();
        assert_eq!(
            downsamples,
            [
                "layer1.0.downsample.0",
                "layer2.0.downsample.0",
                "layer3.0.downsample.0",
                "layer4.0.downsample.0"
            ]
        );
        assert_eq!(graph.node("layer4.2.relu").unwrap().shape, [2048, 7, 7]);
        let resnet18 = resnet18(&config, [3, 224, 224]).unwrap();
        assert!(resnet18.node("layer1.0.downsample.0").is_none());
    }
}
