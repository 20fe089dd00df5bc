//! AlexNet (Krizhevsky, Sutskever and Hinton, 2012): the network that won ImageNet by a wide
//! margin and started the deep learning era in vision.
//!
//! What was new: depth and width at ImageNet scale, made trainable by four things. ReLU units
//! instead of tanh, which train several times faster because they do not saturate; dropout in
//! the two large fully connected layers, against overfitting 60M parameters; two GPUs, each
//! holding half of the feature maps; and heavy data augmentation. The paper also used local
//! response normalisation after the first two convolutions and overlapping (3 x 3, stride 2)
//! max pooling. 61,100,840 parameters at 1000 classes, 96% of them in the classifier.
//!
//! This is torchvision's version, from Krizhevsky's "one weird trick" paper (2014): one tower
//! instead of two, 64 / 192 / 384 / 256 / 256 filters instead of 96 / 256 / 384 / 384 / 256, and
//! **no LRN**. An adaptive average pool to 6 x 6 before the classifier lets any input of at
//! least 63 x 63 through (at 63 the last max pool sees exactly one 3 x 3 window; smaller
//! maps are upsampled by the adaptive pool).
//!
//! | layer | output (224 x 224 input) | parameters |
//! |---|---|---|
//! | features.0 conv 11x11, 64, stride 4, pad 2 | 64 x 55 x 55 | 23,296 |
//! | features.2 max pool 3, stride 2 | 64 x 27 x 27 | |
//! | features.3 conv 5x5, 192, pad 2 | 192 x 27 x 27 | 307,392 |
//! | features.5 max pool 3, stride 2 | 192 x 13 x 13 | |
//! | features.6 conv 3x3, 384, pad 1 | 384 x 13 x 13 | 663,936 |
//! | features.8 conv 3x3, 256, pad 1 | 256 x 13 x 13 | 884,992 |
//! | features.10 conv 3x3, 256, pad 1 | 256 x 13 x 13 | 590,080 |
//! | features.12 max pool 3, stride 2 | 256 x 6 x 6 | |
//! | avgpool adaptive, to 6 x 6 | 256 x 6 x 6 | |
//! | classifier.1 fc (after dropout 0.5) | 4096 | 37,752,832 |
//! | classifier.4 fc (after dropout 0.5) | 4096 | 16,781,312 |
//! | classifier.6 fc | 1000 | 4,097,000 |
//!
//! Every convolution and the first two fully connected layers are followed by a ReLU.

use super::ModelConfig;
use crate::autograd::Pool2dOptions;
use crate::error::Result;
use crate::graph::{Graph, GraphBuilder};
use crate::nn::Conv2d;

/// AlexNet as torchvision builds it (no LRN), for any input of at least 63 x 63 and any
/// number of channels.
pub fn alexnet(config: &ModelConfig, input: [usize; 3]) -> Result<Graph> {
    let (mut b, x) = GraphBuilder::new("alexnet", &input);
    // Overlapping pooling: 3 x 3 windows, stride 2.
    let pool = Pool2dOptions::new(3).stride(2);

    let x = b.conv("features.0", x, Conv2d::new(0, 64, 11).stride(4).padding(2))?;
    let x = b.relu("features.1", x)?;
    let x = b.max_pool("features.2", x, pool)?;
    let x = b.conv("features.3", x, Conv2d::new(0, 192, 5).padding(2))?;
    let x = b.relu("features.4", x)?;
    let x = b.max_pool("features.5", x, pool)?;
    let x = b.conv("features.6", x, Conv2d::new(0, 384, 3).padding(1))?;
    let x = b.relu("features.7", x)?;
    let x = b.conv("features.8", x, Conv2d::new(0, 256, 3).padding(1))?;
    let x = b.relu("features.9", x)?;
    let x = b.conv("features.10", x, Conv2d::new(0, 256, 3).padding(1))?;
    let x = b.relu("features.11", x)?;
    let x = b.max_pool("features.12", x, pool)?;

    let x = b.adaptive_avg_pool("avgpool", x, (6, 6))?;
    let x = b.flatten("flatten", x)?;

    let x = b.dropout("classifier.0", x, 0.5)?;
    let x = b.linear("classifier.1", x, 4096)?;
    let x = b.relu("classifier.2", x)?;
    let x = b.dropout("classifier.3", x, 0.5)?;
    let x = b.linear("classifier.4", x, 4096)?;
    let x = b.relu("classifier.5", x)?;
    let x = b.linear("classifier.6", x, config.num_classes)?;
    b.build(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_input_is_63() {
        let config = ModelConfig::new(10);
        assert!(alexnet(&config, [3, 63, 63]).is_ok());
        let err = alexnet(&config, [3, 62, 62]).unwrap_err().to_string();
        assert!(err.contains("features.12"), "{err}");
    }
}
