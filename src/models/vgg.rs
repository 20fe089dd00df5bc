//! VGG (Simonyan and Zisserman, 2014): depth from nothing but stacks of 3 x 3 convolutions.
//!
//! What was new: one small filter everywhere. Two stacked 3 x 3 convolutions see what one 5 x 5
//! sees, with 2 x 9 = 18 weights per input/output channel pair instead of 25; three see what one
//! 7 x 7 sees, with 27 instead of 49, and with a ReLU between each pair, so the stack is both
//! cheaper and more non-linear than the large filter it replaces. The network is then five
//! stages of such stacks, each closed by a 2 x 2 max pool that halves the map while the channels
//! double (64 to 512), and three fully connected layers. Configurations A, B, D and E of the paper
//! have 11, 13, 16 and 19 weight layers; the `_bn` variants (not in the paper) add a batch norm
//! after every convolution.
//!
//! As in torchvision, an adaptive average pool to 7 x 7 sits before the classifier, so any input
//! of at least 32 x 32 works (five halvings take 32 to 1; the adaptive pool upsamples that to
//! 7 x 7). The classifier holds 123,642,856 of the parameters at 1000 classes.
//!
//! | stage | output (224 x 224 input) | A: vgg11 | B: vgg13 | D: vgg16 | E: vgg19 |
//! |---|---|---|---|---|---|
//! | 1 | 64 x 224 x 224 | conv3-64 | conv3-64 x 2 | conv3-64 x 2 | conv3-64 x 2 |
//! | | 64 x 112 x 112 | max pool 2 | max pool 2 | max pool 2 | max pool 2 |
//! | 2 | 128 x 112 x 112 | conv3-128 | conv3-128 x 2 | conv3-128 x 2 | conv3-128 x 2 |
//! | | 128 x 56 x 56 | max pool 2 | max pool 2 | max pool 2 | max pool 2 |
//! | 3 | 256 x 56 x 56 | conv3-256 x 2 | conv3-256 x 2 | conv3-256 x 3 | conv3-256 x 4 |
//! | | 256 x 28 x 28 | max pool 2 | max pool 2 | max pool 2 | max pool 2 |
//! | 4 | 512 x 28 x 28 | conv3-512 x 2 | conv3-512 x 2 | conv3-512 x 3 | conv3-512 x 4 |
//! | | 512 x 14 x 14 | max pool 2 | max pool 2 | max pool 2 | max pool 2 |
//! | 5 | 512 x 14 x 14 | conv3-512 x 2 | conv3-512 x 2 | conv3-512 x 3 | conv3-512 x 4 |
//! | | 512 x 7 x 7 | max pool 2 | max pool 2 | max pool 2 | max pool 2 |
//! | avgpool | 512 x 7 x 7 | adaptive, to 7 x 7 | | | |
//! | classifier | 4096, 4096, 1000 | fc, ReLU, dropout 0.5, fc, ReLU, dropout 0.5, fc | | | |
//! | parameters | | 132,863,336 | 133,047,848 | 138,357,544 | 143,667,240 |
//! | with batch norm | | 132,868,840 | 133,053,736 | 138,365,992 | 143,678,248 |
//!
//! `conv3-64` is a 3 x 3 convolution to 64 channels with padding 1 (the map keeps its size),
//! followed by a ReLU (and a batch norm before it in the `_bn` variants).
//!
//! Parameter names follow torchvision's `nn.Sequential` indices: in vgg11 `features.0` is the
//! first convolution, `features.1` its ReLU, `features.2` the first pool; in vgg11_bn
//! `features.1` is the batch norm and the ReLU moves to `features.2`.

use super::ModelConfig;
use crate::autograd::Pool2dOptions;
use crate::error::Result;
use crate::graph::{Graph, GraphBuilder};
use crate::nn::Conv2d;

/// Output channels of the five stages.
const STAGE_CHANNELS: [usize; 5] = [64, 128, 256, 512, 512];

/// 3 x 3 convolutions per stage in the paper's configurations.
const CONFIG_A: [usize; 5] = [1, 1, 2, 2, 2];
const CONFIG_B: [usize; 5] = [2, 2, 2, 2, 2];
const CONFIG_D: [usize; 5] = [2, 2, 3, 3, 3];
const CONFIG_E: [usize; 5] = [2, 2, 4, 4, 4];

/// VGG-11 (configuration A): 8 convolutions and 3 fully connected layers.
pub fn vgg11(config: &ModelConfig, input: [usize; 3]) -> Result<Graph> {
    vgg("vgg11", CONFIG_A, false, config, input)
}

/// VGG-13 (configuration B): 10 convolutions and 3 fully connected layers.
pub fn vgg13(config: &ModelConfig, input: [usize; 3]) -> Result<Graph> {
    vgg("vgg13", CONFIG_B, false, config, input)
}

/// VGG-16 (configuration D): 13 convolutions and 3 fully connected layers.
pub fn vgg16(config: &ModelConfig, input: [usize; 3]) -> Result<Graph> {
    vgg("vgg16", CONFIG_D, false, config, input)
}

/// VGG-19 (configuration E): 16 convolutions and 3 fully connected layers.
pub fn vgg19(config: &ModelConfig, input: [usize; 3]) -> Result<Graph> {
    vgg("vgg19", CONFIG_E, false, config, input)
}

/// VGG-11 with a batch norm after every convolution.
pub fn vgg11_bn(config: &ModelConfig, input: [usize; 3]) -> Result<Graph> {
    vgg("vgg11_bn", CONFIG_A, true, config, input)
}

/// VGG-13 with a batch norm after every convolution.
pub fn vgg13_bn(config: &ModelConfig, input: [usize; 3]) -> Result<Graph> {
    vgg("vgg13_bn", CONFIG_B, true, config, input)
}

/// VGG-16 with a batch norm after every convolution.
pub fn vgg16_bn(config: &ModelConfig, input: [usize; 3]) -> Result<Graph> {
    vgg("vgg16_bn", CONFIG_D, true, config, input)
}

/// VGG-19 with a batch norm after every convolution.
pub fn vgg19_bn(config: &ModelConfig, input: [usize; 3]) -> Result<Graph> {
    vgg("vgg19_bn", CONFIG_E, true, config, input)
}

/// The five stages of `convs_per_stage` 3 x 3 convolutions, each closed by a 2 x 2 max pool,
/// then the classifier. Nodes are numbered as torchvision's `features` and `classifier`
/// `nn.Sequential`s number their modules.
fn vgg(
    name: &str,
    convs_per_stage: [usize; 5],
    batch_norm: bool,
    config: &ModelConfig,
    input: [usize; 3],
) -> Result<Graph> {
    let (mut b, mut x) = GraphBuilder::new(name, &input);
    let mut index = 0;
    let mut next = || {
        index += 1;
        format!("features.{}", index - 1)
    };
    for (convs, out_channels) in convs_per_stage.into_iter().zip(STAGE_CHANNELS) {
        for _ in 0..convs {
            x = b.conv(next(), x, Conv2d::new(0, out_channels, 3).padding(1))?;
            if batch_norm {
                x = b.batch_norm(next(), x)?;
            }
            x = b.relu(next(), x)?;
        }
        x = b.max_pool(next(), x, Pool2dOptions::new(2))?;
    }

    let x = b.adaptive_avg_pool("avgpool", x, (7, 7))?;
    let x = b.flatten("flatten", x)?;

    let x = b.linear("classifier.0", x, 4096)?;
    let x = b.relu("classifier.1", x)?;
    let x = b.dropout("classifier.2", x, 0.5)?;
    let x = b.linear("classifier.3", x, 4096)?;
    let x = b.relu("classifier.4", x)?;
    let x = b.dropout("classifier.5", x, 0.5)?;
    let x = b.linear("classifier.6", x, config.num_classes)?;
    b.build(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::ParamStore;
    use crate::nn::Mode;
    use crate::{Rng, Tape, Tensor};

    #[test]
    fn the_smallest_input_is_32() {
        let config = ModelConfig::new(10);
        for build in [vgg11, vgg19_bn] {
            assert!(build(&config, [3, 32, 32]).is_ok());
            assert!(build(&config, [3, 31, 31]).is_err());
        }
    }

    #[test]
    fn vgg11_runs_on_a_tape_at_the_smallest_input() {
        let graph = vgg11(&ModelConfig::new(10), [1, 32, 32]).unwrap();
        let mut rng = Rng::seed(0);
        let store = ParamStore::init(&graph, &mut rng);
        let x = Tensor::randn(&[2, 1, 32, 32], &mut rng);
        let logits = graph.forward(&store, &x).unwrap();
        assert_eq!(logits.shape(), &[2, 10]);

        let mut tape = Tape::new();
        let input = tape.input(x);
        let out = graph
            .forward_tape(&mut tape, &store, input, Mode::Eval, &mut rng, false)
            .unwrap();
        let diff = tape.value(out.output).unwrap().max_abs_diff(&logits);
        assert!(diff.unwrap() <= 1e-5, "{diff:?}");
        let loss = tape.cross_entropy(out.output, &[3, 9]).unwrap();
        let grads = tape.backward(loss).unwrap();
        let first_conv = graph
            .param_specs()
            .iter()
            .position(|p| p.name == "features.0.weight");
        let g = grads.get(out.params[first_conv.unwrap()]).unwrap();
        assert!(g.data().iter().any(|&v| v != 0.0));
    }
}
