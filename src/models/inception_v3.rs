//! Inception-v3 (Szegedy, Vanhoucke, Ioffe, Shlens and Wojna, 2015, "Rethinking the Inception
//! Architecture for Computer Vision"): GoogLeNet's modules, made cheaper by factorising
//! convolutions.
//!
//! What was new:
//! - **Factorised convolutions.** A 5 x 5 becomes two stacked 3 x 3 (same receptive field, 18
//!   weights per channel pair instead of 25), and on the 17 x 17 grid an n x n becomes a 1 x n
//!   then an n x 1 (for 7 x 7: 14 weights instead of 49), with a ReLU between the halves.
//! - **Grid-size reduction with parallel stride-2 branches** (Mixed_6a, Mixed_7a): a strided
//!   convolution branch and a strided max pool side by side, concatenated, so the grid halves
//!   while the channels grow, neither pooling first (a representational bottleneck) nor
//!   convolving at full size first (expensive).
//! - **Wider, not deeper, on the coarsest grid** (Mixed_7b/7c): 3 x 3 split into a 1 x 3 and a
//!   3 x 1 side by side.
//! - **Label smoothing** as a regulariser of the loss (a training recipe, not part of the graph).
//! - **Batch norm in the auxiliary classifier** (and after every convolution), which the paper
//!   found makes the auxiliary head act as a regulariser.
//!
//! 23,834,568 parameters at 1000 classes, 27,161,264 with the auxiliary head (torchvision's
//! counts; batch-norm running statistics not included).
//!
//! The stages as torchvision builds them (the paper's Table 1, with its stem as in the released
//! TensorFlow model: a 1 x 1 to 80 and a 3 x 3 to 192 instead of three 3 x 3); output sizes for
//! the standard 299 x 299 input and for the smallest accepted, 75 x 75.
//!
//! | stage (torchvision) | layer | output at 299 | at 75 | parameters |
//! |---|---|---|---|---|
//! | Conv2d_1a_3x3 | conv 3x3 / 2 | 32 x 149 x 149 | 37 x 37 | 928 |
//! | Conv2d_2a_3x3 | conv 3x3 | 32 x 147 x 147 | 35 x 35 | 9,280 |
//! | Conv2d_2b_3x3 | conv 3x3, pad 1 | 64 x 147 x 147 | 35 x 35 | 18,560 |
//! | maxpool1 | max pool 3x3 / 2 | 64 x 73 x 73 | 17 x 17 | |
//! | Conv2d_3b_1x1 | conv 1x1 | 80 x 73 x 73 | 17 x 17 | 5,280 |
//! | Conv2d_4a_3x3 | conv 3x3 | 192 x 71 x 71 | 15 x 15 | 138,624 |
//! | maxpool2 | max pool 3x3 / 2 | 192 x 35 x 35 | 7 x 7 | |
//! | Mixed_5b, 5c, 5d | 3 x InceptionA (figure 5), pool features 32, 64, 64 | 288 x 35 x 35 | 7 x 7 | 255,904 + 277,472 + 285,152 |
//! | Mixed_6a | InceptionB, grid reduction | 768 x 17 x 17 | 3 x 3 | 1,153,280 |
//! | Mixed_6b .. 6e | 4 x InceptionC (figure 6), 7x7 channels 128, 160, 160, 192 | 768 x 17 x 17 | 3 x 3 | 1,297,408 + 2 x 1,691,008 + 2,141,952 |
//! | AuxLogits (optional) | avg pool 5x5 / 3, conv 1x1 128, conv 5x5 768, avg pool, fc | 1000 | (needs 299) | 3,326,696 |
//! | Mixed_7a | InceptionD, grid reduction | 1280 x 8 x 8 | 1 x 1 | 1,698,304 |
//! | Mixed_7b, 7c | 2 x InceptionE (figure 7) | 2048 x 8 x 8 | 1 x 1 | 5,044,608 + 6,076,800 |
//! | avgpool, dropout, fc | global average pool, dropout 0.5, linear | 1000 | 1000 | 2,049,000 |
//!
//! Minimum input: an unpadded 3 x 3 takes `h` to `h - 2`, a stride-2 one (or a 3x3/2 max pool)
//! to `(h - 3) / 2 + 1` (rounded down). Working back from Mixed_7a, whose stride-2 3 x 3
//! convolutions need at least 3 x 3: Mixed_6a's input must be 7, so Conv2d_4a's 17, maxpool1's
//! 35, Conv2d_2a's 37 and the input 75 (74 leaves Mixed_7a a 2 x 2, and the build fails there).
//! The auxiliary head needs more: its 5x5/3 average pool and then 5 x 5 convolution need Mixed_6e
//! at 17 x 17, and the same chain gives 35, 71, 73, 147, 149 and an input of 299: the standard
//! size is exactly the smallest. So the registry's minimum is 75, and asking for the auxiliary
//! head on anything smaller is refused, saying why (torchvision runs the head only in training
//! mode, and fails there on the same inputs).
//!
//! Unlike torchvision's pretrained constructor this graph has no `transform_input` step (which
//! re-normalises ImageNet-normalised inputs to the [-1, 1] range of Google's weights): inputs
//! are expected already normalised as the weights require.

mod blocks;

use self::blocks::{
    basic_conv, inception_a, inception_b, inception_c, inception_d, inception_e, square,
};
use super::ModelConfig;
use crate::autograd::Pool2dOptions;
use crate::error::{Error, Result};
use crate::graph::{Graph, GraphBuilder, NodeId};

/// The smallest height and width when the auxiliary classifier is built (see the module docs).
pub const AUX_MIN_SIZE: usize = 299;

/// Inception-v3, with the auxiliary classifier after Mixed_6e when `config.aux_logits` (as
/// torchvision's `aux_logits=True`; it is an extra output of the graph, used only in training).
pub fn inception_v3(config: &ModelConfig, input: [usize; 3]) -> Result<Graph> {
    if config.aux_logits && (input[1] < AUX_MIN_SIZE || input[2] < AUX_MIN_SIZE) {
        return Err(Error::Graph {
            node: "input".into(),
            message: format!(
                "inception_v3 with aux_logits needs an input of at least \
                 {AUX_MIN_SIZE}x{AUX_MIN_SIZE} (the auxiliary head's 5x5 conv after its 5x5/3 \
                 average pool needs Mixed_6e at 17x17), got {}x{}",
                input[1], input[2]
            ),
        });
    }
    let (mut b, x) = GraphBuilder::new("inception_v3", &input);
    let x = stem(&mut b, x)?;

    // 35 x 35
    let x = inception_a(&mut b, "Mixed_5b", x, 32)?;
    let x = inception_a(&mut b, "Mixed_5c", x, 64)?;
    let x = inception_a(&mut b, "Mixed_5d", x, 64)?;
    // 17 x 17
    let x = inception_b(&mut b, "Mixed_6a", x)?;
    let x = inception_c(&mut b, "Mixed_6b", x, 128)?;
    let x = inception_c(&mut b, "Mixed_6c", x, 160)?;
    let x = inception_c(&mut b, "Mixed_6d", x, 160)?;
    let x = inception_c(&mut b, "Mixed_6e", x, 192)?;
    let aux = if config.aux_logits {
        Some(aux_logits(&mut b, x, config.num_classes)?)
    } else {
        None
    };
    // 8 x 8
    let x = inception_d(&mut b, "Mixed_7a", x)?;
    let x = inception_e(&mut b, "Mixed_7b", x)?;
    let x = inception_e(&mut b, "Mixed_7c", x)?;

    let x = b.adaptive_avg_pool("avgpool", x, (1, 1))?;
    let x = b.dropout("dropout", x, 0.5)?;
    let x = b.flatten("flatten", x)?;
    let x = b.linear("fc", x, config.num_classes)?;
    match aux {
        Some(aux) => b.build_with_aux(x, &[aux]),
        None => b.build(x),
    }
}

/// Five convolutions and two max pools: 299 x 299 x 3 to 35 x 35 x 192.
fn stem(b: &mut GraphBuilder, x: NodeId) -> Result<NodeId> {
    let x = basic_conv(b, "Conv2d_1a_3x3", x, square(32, 3).stride(2))?;
    let x = basic_conv(b, "Conv2d_2a_3x3", x, square(32, 3))?;
    let x = basic_conv(b, "Conv2d_2b_3x3", x, square(64, 3).padding(1))?;
    let x = b.max_pool("maxpool1", x, Pool2dOptions::new(3).stride(2))?;
    let x = basic_conv(b, "Conv2d_3b_1x1", x, square(80, 1))?;
    let x = basic_conv(b, "Conv2d_4a_3x3", x, square(192, 3))?;
    b.max_pool("maxpool2", x, Pool2dOptions::new(3).stride(2))
}

/// torchvision's `InceptionAux` on the 17 x 17 x 768 output of Mixed_6e: 5x5/3 average pool
/// (to 5 x 5), 1 x 1 to 128, 5 x 5 to 768 (to 1 x 1), average pool, fc to the classes.
fn aux_logits(b: &mut GraphBuilder, x: NodeId, num_classes: usize) -> Result<NodeId> {
    let x = b.avg_pool("AuxLogits.pool", x, Pool2dOptions::new(5).stride(3))?;
    let x = basic_conv(b, "AuxLogits.conv0", x, square(128, 1))?;
    let x = basic_conv(b, "AuxLogits.conv1", x, square(768, 5))?;
    let x = b.adaptive_avg_pool("AuxLogits.avgpool", x, (1, 1))?;
    let x = b.flatten("AuxLogits.flatten", x)?;
    b.linear("AuxLogits.fc", x, num_classes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::ParamStore;
    use crate::nn::Mode;
    use crate::{Rng, Tape, Tensor};

    #[test]
    fn inception_v3_runs_on_a_tape_at_its_smallest_input() {
        let config = ModelConfig::new(4);
        let graph = inception_v3(&config, [3, 75, 75]).unwrap();
        assert_eq!(graph.node("Mixed_7c.concat").unwrap().shape, [2048, 1, 1]);
        let mut rng = Rng::seed(0);
        let store = ParamStore::init(&graph, &mut rng);
        let x = Tensor::randn(&[2, 3, 75, 75], &mut rng);
        let mut tape = Tape::new();
        let input = tape.input(x.clone());
        let out = graph
            .forward_tape(&mut tape, &store, input, Mode::Eval, &mut rng, false)
            .unwrap();
        let logits = tape.value(out.output).unwrap();
        assert_eq!(logits.shape(), &[2, 4]);
        assert!(logits.data().iter().all(|v| v.is_finite()));
        assert_eq!(logits, &graph.forward(&store, &x).unwrap());
    }

    #[test]
    fn the_auxiliary_head_needs_299_and_says_so() {
        let config = ModelConfig::new(10).aux_logits(true);
        let graph = inception_v3(&config, [3, 299, 299]).unwrap();
        assert_eq!(graph.aux_outputs().len(), 1);
        assert_eq!(
            graph.node("AuxLogits.conv1.relu").unwrap().shape,
            [768, 1, 1]
        );
        let err = inception_v3(&config, [3, 298, 299])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("aux_logits") && err.contains("298x299"),
            "{err}"
        );
    }

    #[test]
    fn one_pixel_below_75_is_too_small_for_mixed_7a() {
        let err = inception_v3(&ModelConfig::new(10), [3, 74, 74]).unwrap_err();
        assert!(err.to_string().contains("Mixed_7a"), "{err}");
    }
}
