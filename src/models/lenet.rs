//! LeNet-5 (LeCun, Bottou, Bengio and Haffner, 1998): the network that read the cheques.
//!
//! What was new: learned convolutional filters with shared weights, alternating with
//! subsampling, instead of hand-made features; the whole pipeline trained end to end by
//! backpropagation. Two 5 x 5 convolutions (6 and 16 maps), then three fully connected layers
//! (120, 84, 10): 61,706 parameters.
//!
//! The original took 32 x 32 images and used scaled tanh units with average-pooling
//! "subsampling"; as is usual today (and as PyTorch's tutorial does) this version uses ReLU and
//! max pooling, and pads 28 x 28 inputs by 2 so the first convolution sees a 32 x 32 field.
//!
//! | layer | output (28 x 28 input) | parameters |
//! |---|---|---|
//! | conv1 5x5, 6, pad 2 | 6 x 28 x 28 | 156 |
//! | max pool 2 | 6 x 14 x 14 | |
//! | conv2 5x5, 16 | 16 x 10 x 10 | 2,416 |
//! | max pool 2 | 16 x 5 x 5 | |
//! | fc1 | 120 | 48,120 |
//! | fc2 | 84 | 10,164 |
//! | fc3 | 10 | 850 |

use super::ModelConfig;
use crate::autograd::Pool2dOptions;
use crate::error::Result;
use crate::graph::{Graph, GraphBuilder};
use crate::nn::Conv2d;

/// LeNet-5. A 28 x 28 input is padded by 2 (the classic 32 x 32 field); a 32 x 32 input is not.
pub fn lenet5(config: &ModelConfig, input: [usize; 3]) -> Result<Graph> {
    let (mut b, x) = GraphBuilder::new("lenet5", &input);
    let padding = if input[1] >= 32 { 0 } else { 2 };
    let x = b.conv("conv1", x, Conv2d::new(0, 6, 5).padding(padding))?;
    let x = b.relu("relu1", x)?;
    let x = b.max_pool("pool1", x, Pool2dOptions::new(2))?;
    let x = b.conv("conv2", x, Conv2d::new(0, 16, 5))?;
    let x = b.relu("relu2", x)?;
    let x = b.max_pool("pool2", x, Pool2dOptions::new(2))?;
    let x = b.flatten("flatten", x)?;
    let x = b.linear("fc1", x, 120)?;
    let x = b.relu("relu3", x)?;
    let x = b.linear("fc2", x, 84)?;
    let x = b.relu("relu4", x)?;
    let x = b.linear("fc3", x, config.num_classes)?;
    b.build(x)
}
