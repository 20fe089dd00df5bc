//! DenseNet (Huang, Liu, van der Maaten and Weinberger, 2016; CVPR 2017): every layer sees every
//! earlier feature map of its block.
//!
//! What was new: inside a dense block, layer `l` receives the concatenation of all the maps
//! before it, `x_l = H_l([x_0, x_1, ..., x_{l-1}])`, so an L-layer block has L(L+1)/2
//! connections instead of L. Where ResNet *adds* a shortcut to a layer's output, DenseNet
//! *concatenates*: features are kept and reused rather than relearned, gradients reach early
//! layers directly, and each layer can be narrow. It adds only `k` new maps, the *growth rate*
//! (32 here, 48 for DenseNet-161), to the block's running "collective knowledge".
//!
//! This is DenseNet-BC, as in torchvision: each layer is a bottleneck (B), BN-ReLU-conv 1x1 to
//! `4k` maps, then BN-ReLU-conv 3x3 to `k`; and the transitions between blocks compress (C) by
//! `theta = 0.5`, a 1x1 conv halving the channels before a 2x2 average pool. With so much reuse
//! the models are small for their accuracy: at 1000 classes DenseNet-121 has 7,978,856
//! parameters, DenseNet-169 14,149,480, DenseNet-201 20,013,928 and DenseNet-161 28,681,000
//! (ResNet-50 has 25.6M).
//!
//! The paper's Table 1, with the channels after each stage of DenseNet-121:
//!
//! | stage | output (224 input) | DenseNet-121 | -169 | -201 | -161 (k = 48) | channels (121) |
//! |---|---|---|---|---|---|---|
//! | convolution | 112 x 112 | 7x7 conv, stride 2 | | | 96 maps | 64 |
//! | pooling | 56 x 56 | 3x3 max pool, stride 2 | | | | 64 |
//! | dense block 1 | 56 x 56 | [1x1 conv, 3x3 conv] x 6 | x 6 | x 6 | x 6 | 256 |
//! | transition 1 | 28 x 28 | 1x1 conv, 2x2 avg pool, stride 2 | | | | 128 |
//! | dense block 2 | 28 x 28 | [1x1 conv, 3x3 conv] x 12 | x 12 | x 12 | x 12 | 512 |
//! | transition 2 | 14 x 14 | 1x1 conv, 2x2 avg pool, stride 2 | | | | 256 |
//! | dense block 3 | 14 x 14 | [1x1 conv, 3x3 conv] x 24 | x 32 | x 48 | x 36 | 1024 |
//! | transition 3 | 7 x 7 | 1x1 conv, 2x2 avg pool, stride 2 | | | | 512 |
//! | dense block 4 | 7 x 7 | [1x1 conv, 3x3 conv] x 16 | x 32 | x 32 | x 24 | 1024 |
//! | classification | 1 x 1 | BN, ReLU, global avg pool, fc | | | | classes |
//!
//! The smallest input is 29 x 29: the stem's stride-2 conv (7x7, pad 3) and max pool (3x3,
//! pad 1) must leave 8 x 8 for the three 2x2 pools of the transitions (8 -> 4 -> 2 -> 1).

use super::ModelConfig;
use crate::autograd::Pool2dOptions;
use crate::error::Result;
use crate::graph::{Graph, GraphBuilder, NodeId};
use crate::nn::Conv2d;

/// The bottleneck 1x1 conv of a dense layer widens to this many times the growth rate
/// (torchvision's `bn_size`).
const BOTTLENECK_FACTOR: usize = 4;

/// DenseNet-121: growth rate 32, blocks of 6, 12, 24 and 16 layers.
pub fn densenet121(config: &ModelConfig, input: [usize; 3]) -> Result<Graph> {
    densenet("densenet121", 32, 64, [6, 12, 24, 16], config, input)
}

/// DenseNet-161: growth rate 48 and a 96-map stem, blocks of 6, 12, 36 and 24 layers.
pub fn densenet161(config: &ModelConfig, input: [usize; 3]) -> Result<Graph> {
    densenet("densenet161", 48, 96, [6, 12, 36, 24], config, input)
}

/// DenseNet-169: growth rate 32, blocks of 6, 12, 32 and 32 layers.
pub fn densenet169(config: &ModelConfig, input: [usize; 3]) -> Result<Graph> {
    densenet("densenet169", 32, 64, [6, 12, 32, 32], config, input)
}

/// DenseNet-201: growth rate 32, blocks of 6, 12, 48 and 32 layers.
pub fn densenet201(config: &ModelConfig, input: [usize; 3]) -> Result<Graph> {
    densenet("densenet201", 32, 64, [6, 12, 48, 32], config, input)
}

/// Stem, four dense blocks with transitions between them, and the classifier.
pub(super) fn densenet(
    name: &str,
    growth_rate: usize,
    stem_channels: usize,
    block_layers: [usize; 4],
    config: &ModelConfig,
    input: [usize; 3],
) -> Result<Graph> {
    let (mut b, x) = GraphBuilder::new(name, &input);
    let stem = Conv2d::new(0, stem_channels, 7).stride(2).padding(3);
    let x = b.conv("features.conv0", x, stem.bias(false))?;
    let x = b.batch_norm("features.norm0", x)?;
    let x = b.relu("features.relu0", x)?;
    let pool = Pool2dOptions::new(3).stride(2).padding(1);
    let mut x = b.max_pool("features.pool0", x, pool)?;

    for (i, &layers) in block_layers.iter().enumerate() {
        let block = format!("features.denseblock{}", i + 1);
        x = dense_block(&mut b, &block, x, layers, growth_rate)?;
        if i + 1 < block_layers.len() {
            x = transition(&mut b, &format!("features.transition{}", i + 1), x)?;
        }
    }

    // The last block ends without a transition, so one more BN-ReLU before pooling.
    let x = b.batch_norm("features.norm5", x)?;
    let x = b.relu("relu", x)?;
    let x = b.global_avg_pool("avgpool", x)?;
    let x = b.linear("classifier", x, config.num_classes)?;
    b.build(x)
}

/// `layers` dense layers; each sees the block's input and every new map before it, and the
/// block returns all of them concatenated (`in + layers * growth_rate` channels).
fn dense_block(
    b: &mut GraphBuilder,
    name: &str,
    x: NodeId,
    layers: usize,
    growth_rate: usize,
) -> Result<NodeId> {
    let mut features = vec![x];
    for i in 1..=layers {
        let layer = format!("{name}.denselayer{i}");
        let new_maps = dense_layer(b, &layer, &features, growth_rate)?;
        features.push(new_maps);
    }
    b.concat(format!("{name}.cat"), &features)
}

/// The bottleneck layer `H_l`: concatenate its inputs, BN-ReLU-conv 1x1 to `4k` maps, then
/// BN-ReLU-conv 3x3 to `k` new maps.
fn dense_layer(
    b: &mut GraphBuilder,
    name: &str,
    inputs: &[NodeId],
    growth_rate: usize,
) -> Result<NodeId> {
    let x = match inputs {
        [single] => *single,
        _ => b.concat(format!("{name}.cat"), inputs)?,
    };
    let x = b.batch_norm(format!("{name}.norm1"), x)?;
    let x = b.relu(format!("{name}.relu1"), x)?;
    let bottleneck = Conv2d::new(0, BOTTLENECK_FACTOR * growth_rate, 1).bias(false);
    let x = b.conv(format!("{name}.conv1"), x, bottleneck)?;
    let x = b.batch_norm(format!("{name}.norm2"), x)?;
    let x = b.relu(format!("{name}.relu2"), x)?;
    let conv = Conv2d::new(0, growth_rate, 3).padding(1).bias(false);
    b.conv(format!("{name}.conv2"), x, conv)
}

/// Between blocks: BN-ReLU, a 1x1 conv compressing the channels by half, and a 2x2 average
/// pool halving the resolution.
fn transition(b: &mut GraphBuilder, name: &str, x: NodeId) -> Result<NodeId> {
    let compressed = b.channels(x) / 2;
    let x = b.batch_norm(format!("{name}.norm"), x)?;
    let x = b.relu(format!("{name}.relu"), x)?;
    let x = b.conv(
        format!("{name}.conv"),
        x,
        Conv2d::new(0, compressed, 1).bias(false),
    )?;
    b.avg_pool(format!("{name}.pool"), x, Pool2dOptions::new(2))
}

#[cfg(test)]
mod tests {
    use crate::graph::ParamStore;
    use crate::models::{self, ModelConfig};
    use crate::nn::Mode;
    use crate::{Rng, Tape, Tensor};

    /// Runs a model of the zoo on a tape and without one, at a small input and batch 2.
    fn forward_both_ways(name: &str, size: usize) {
        let config = ModelConfig::new(5).input([3, size, size]);
        let graph = models::build_with(name, &config).unwrap();
        let mut rng = Rng::seed(7);
        let store = ParamStore::init(&graph, &mut rng);
        let x = Tensor::randn(&[2, 3, size, size], &mut rng);
        let logits = graph.forward(&store, &x).unwrap();
        assert_eq!(logits.shape(), &[2, 5], "{name}");

        let mut tape = Tape::new();
        let input = tape.input(x);
        let out = graph
            .forward_tape(&mut tape, &store, input, Mode::Eval, &mut rng, false)
            .unwrap();
        let on_tape = tape.value(out.output).unwrap();
        assert_eq!(on_tape.shape(), &[2, 5], "{name}");
        for (a, b) in on_tape.data().iter().zip(logits.data()) {
            assert!(
                a.is_finite() && (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                "{name}"
            );
        }
    }

    #[test]
    fn densenet121_and_mobilenet_v2_run_end_to_end() {
        forward_both_ways("densenet121", 29);
        forward_both_ways("mobilenet_v2", 32);
    }

    #[test]
    fn the_smallest_input_is_the_real_limit() {
        for name in ["densenet121", "densenet161"] {
            let info = models::info(name).unwrap();
            let build = |size| (info.builder)(&ModelConfig::new(10), [3, size, size]);
            assert!(build(info.min_size).is_ok(), "{name}");
            assert!(build(info.min_size - 1).is_err(), "{name}");
        }
    }
}
