//! Xception (Chollet, 2016; CVPR 2017): "extreme Inception", built from depthwise-separable
//! convolutions with residual connections around them.
//!
//! What was new: an Inception module maps cross-channel correlations (1x1 convs) and spatial
//! correlations (3x3 convs in a few towers) partly apart. Xception takes the hypothesis to its
//! extreme, that the two can be mapped *entirely* apart, which is an Inception module with one
//! tower per channel: a depthwise-separable convolution, a 3x3 depthwise conv on each channel
//! alone followed by a 1x1 pointwise conv mixing channels (with no non-linearity in between,
//! which the paper found better). The network is a linear stack of 36 such convolution layers
//! in 14 modules, all but the first and last wrapped in residual connections (a 1x1 stride-2
//! conv with BN on the shortcut where the shape changes). With about as many parameters as
//! Inception-v3 it did slightly better on ImageNet and much better on JFT, so the gain comes
//! from using them better, not from more of them: 22,855,952 parameters at 1000 classes.
//!
//! Three flows, as in the paper's Figure 5 (and timm's `legacy_xception`, whose names these
//! are). "sep" is a separable conv 3x3 with padding 1; the ReLUs come *before* the separable
//! convs inside a block, so a block's output (a sum) is not rectified until the next block.
//!
//! | flow | module | layers | output (299 input) |
//! |---|---|---|---|
//! | entry | conv1, conv2 | 3x3 conv s2, 32; 3x3 conv, 64; each BN-ReLU | 64 x 147 x 147 |
//! | entry | block1 | sep 128, ReLU, sep 128, max pool 3 s2; skip 1x1 s2 | 128 x 74 x 74 |
//! | entry | block2 | [ReLU, sep 256] x 2, max pool 3 s2; skip 1x1 s2 | 256 x 37 x 37 |
//! | entry | block3 | [ReLU, sep 728] x 2, max pool 3 s2; skip 1x1 s2 | 728 x 19 x 19 |
//! | middle | block4 - block11 | [ReLU, sep 728] x 3; identity skip | 728 x 19 x 19 |
//! | exit | block12 | ReLU, sep 728, ReLU, sep 1024, max pool 3 s2; skip 1x1 s2 | 1024 x 10 x 10 |
//! | exit | conv3, conv4 | sep 1536, BN-ReLU; sep 2048, BN-ReLU | 2048 x 10 x 10 |
//! | head | global_pool, fc | global average pool, fully connected | classes |
//!
//! The smallest input is 7 x 7: the two unpadded 3x3 convs of the stem (the first with stride
//! 2) must leave at least 1 x 1; every later layer is padded so that any size >= 1 survives.

use super::ModelConfig;
use crate::autograd::Pool2dOptions;
use crate::error::Result;
use crate::graph::{Graph, GraphBuilder, NodeId};
use crate::nn::{Conv2d, SeparableConv2d};

/// Middle-flow modules, each three separable convs wide at 728 channels.
const MIDDLE_FLOW_BLOCKS: usize = 8;

/// Xception at 299 x 299 (any input of at least 7 x 7 works).
pub fn xception(config: &ModelConfig, input: [usize; 3]) -> Result<Graph> {
    let (mut b, x) = GraphBuilder::new("xception", &input);

    // Entry flow: a plain conv stem, then three downsampling modules.
    let x = b.conv("conv1", x, Conv2d::new(0, 32, 3).stride(2).bias(false))?;
    let x = b.batch_norm("bn1", x)?;
    let x = b.relu("act1", x)?;
    let x = b.conv("conv2", x, Conv2d::new(0, 64, 3).bias(false))?;
    let x = b.batch_norm("bn2", x)?;
    let x = b.relu("act2", x)?;
    // block1 follows act2, so it does not start with a ReLU of its own.
    let x = xception_block(
        &mut b,
        "block1",
        x,
        Block::new(128, 2, 2).without_first_relu(),
    )?;
    let x = xception_block(&mut b, "block2", x, Block::new(256, 2, 2))?;
    let mut x = xception_block(&mut b, "block3", x, Block::new(728, 2, 2))?;

    // Middle flow: eight identical residual modules.
    for i in 4..4 + MIDDLE_FLOW_BLOCKS {
        x = xception_block(&mut b, &format!("block{i}"), x, Block::new(728, 3, 1))?;
    }

    // Exit flow: widen only in the block's last conv, then two separable convs with BN-ReLU.
    let x = xception_block(&mut b, "block12", x, Block::new(1024, 2, 2).grow_last())?;
    let x = separable_conv(&mut b, "conv3", x, 1536)?;
    let x = b.batch_norm("bn3", x)?;
    let x = b.relu("act3", x)?;
    let x = separable_conv(&mut b, "conv4", x, 2048)?;
    let x = b.batch_norm("bn4", x)?;
    let x = b.relu("act4", x)?;
    let x = b.global_avg_pool("global_pool", x)?;
    let x = b.linear("fc", x, config.num_classes)?;
    b.build(x)
}

/// A [`SeparableConv2d`]: 3x3 depthwise (`<name>.conv1`, padding 1) then 1x1 pointwise
/// (`<name>.pointwise`) to `out_channels`; no bias, no non-linearity in between.
fn separable_conv(
    b: &mut GraphBuilder,
    name: &str,
    x: NodeId,
    out_channels: usize,
) -> Result<NodeId> {
    b.separable_conv(name, x, SeparableConv2d::new(0, out_channels, 3).padding(1))
}

/// One module of timm's legacy `Block`, as its constructor takes it.
#[derive(Clone, Copy, Debug)]
struct Block {
    out_channels: usize,
    /// Separable convs in the module.
    reps: usize,
    /// 2 for the downsampling modules of the entry and exit flows.
    stride: usize,
    /// False only for block1, which directly follows the stem's ReLU.
    start_with_relu: bool,
    /// Widen to `out_channels` in the first conv (true) or the last (block12).
    grow_first: bool,
}

impl Block {
    /// `reps` separable convs to `out_channels`, the module downsampling by `stride`.
    fn new(out_channels: usize, reps: usize, stride: usize) -> Self {
        Block {
            out_channels,
            reps,
            stride,
            start_with_relu: true,
            grow_first: true,
        }
    }
    fn without_first_relu(self) -> Self {
        Block {
            start_with_relu: false,
            ..self
        }
    }
    fn grow_last(self) -> Self {
        Block {
            grow_first: false,
            ..self
        }
    }
}

/// `reps` times [ReLU, separable conv, BN] in `<name>.rep.<i>` (the first ReLU left out
/// unless `start_with_relu`), a 3x3 max pool if it downsamples, plus a shortcut: identity, or a
/// 1x1 conv of the block's stride and BN (`<name>.skip`, `<name>.skipbn`) where the shape
/// changes.
fn xception_block(b: &mut GraphBuilder, name: &str, x: NodeId, block: Block) -> Result<NodeId> {
    let Block {
        out_channels,
        reps,
        stride,
        start_with_relu,
        grow_first,
    } = block;
    let in_channels = b.channels(x);
    // Positions in timm's `rep` Sequential, which the parameter names carry.
    let mut position = 0;
    let mut rep = || {
        position += 1;
        format!("{name}.rep.{}", position - 1)
    };
    let mut y = x;
    for i in 0..reps {
        let width = if grow_first || i + 1 == reps {
            out_channels
        } else {
            in_channels
        };
        if i > 0 || start_with_relu {
            y = b.relu(rep(), y)?;
        }
        y = separable_conv(b, &rep(), y, width)?;
        y = b.batch_norm(rep(), y)?;
    }
    if stride != 1 {
        y = b.max_pool(rep(), y, Pool2dOptions::new(3).stride(stride).padding(1))?;
    }
    let shortcut = if stride != 1 || in_channels != out_channels {
        let skip = Conv2d::pointwise(in_channels, out_channels).stride(stride);
        let skip = b.conv(format!("{name}.skip"), x, skip.bias(false))?;
        b.batch_norm(format!("{name}.skipbn"), skip)?
    } else {
        x
    };
    b.add(format!("{name}.add"), &[y, shortcut])
}

#[cfg(test)]
mod tests {
    use crate::models::{self, ModelConfig};

    #[test]
    fn the_smallest_input_is_the_real_limit() {
        let info = models::info("xception").unwrap();
        let build = |size| (info.builder)(&ModelConfig::new(10), [3, size, size]);
        assert!(build(info.min_size).is_ok());
        assert!(build(info.min_size - 1).is_err());
        let graph = build(299).unwrap();
        assert_eq!(graph.node("block12.add").unwrap().shape, [1024, 10, 10]);
    }
}
