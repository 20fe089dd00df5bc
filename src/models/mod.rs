//! The zoo: every classic architecture as a plain function that builds a [`Graph`], one file
//! per family, each opening with what was new in it.
//!
//! Parameter names and shapes are torchvision's (timm's `legacy_xception` and
//! `mobilenetv1_100` for Xception and MobileNet v1), so their checkpoints load as they are.
//!
//! ```
//! let resnet = convgrad::models::build("resnet18", 1000)?;
//! assert_eq!(resnet.parameter_count(), 11_689_512);
//! # Ok::<(), convgrad::Error>(())
//! ```

mod alexnet;
mod densenet;
mod googlenet;
mod inception_v3;
mod lenet;
mod mobilenet_v1;
mod mobilenet_v2;
mod resnet;
mod vgg;
pub mod weights;
mod xception;

use crate::error::{Error, Result};
use crate::graph::Graph;

/// What to build: the class count, the input `[C, H, W]`, and optional parts.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    pub num_classes: usize,
    /// Per-sample input `[C, H, W]`; `None` for the model's standard input.
    pub input: Option<[usize; 3]>,
    /// Build the auxiliary classifiers of GoogLeNet and Inception-v3.
    pub aux_logits: bool,
}

impl ModelConfig {
    pub fn new(num_classes: usize) -> Self {
        ModelConfig {
            num_classes,
            input: None,
            aux_logits: false,
        }
    }

    /// A non-standard input, such as `[1, 28, 28]` for Fashion-MNIST or `[3, 32, 32]` for CIFAR-10.
    pub fn input(mut self, input: [usize; 3]) -> Self {
        self.input = Some(input);
        self
    }

    pub fn aux_logits(mut self, aux_logits: bool) -> Self {
        self.aux_logits = aux_logits;
        self
    }
}

/// A model of the zoo: its name, history and builder.
#[derive(Clone, Copy, Debug)]
pub struct ModelInfo {
    /// The name `build` and the CLI take (`"resnet50"`).
    pub name: &'static str,
    pub family: &'static str,
    pub year: u16,
    /// Who introduced it, and where.
    pub paper: &'static str,
    /// The input it was designed for, `[C, H, W]`.
    pub standard_input: [usize; 3],
    /// The smallest height and width it accepts.
    pub min_size: usize,
    builder: fn(&ModelConfig, [usize; 3]) -> Result<Graph>,
}

impl ModelInfo {
    /// Builds this model.
    pub fn build(&self, config: &ModelConfig) -> Result<Graph> {
        let input = config.input.unwrap_or(self.standard_input);
        if config.num_classes == 0 {
            return Err(Error::invalid(self.name, "num_classes must be at least 1"));
        }
        if input[1] < self.min_size || input[2] < self.min_size {
            return Err(Error::Graph {
                node: "input".into(),
                message: format!(
                    "{} needs an input of at least {}x{}, got {}x{}",
                    self.name, self.min_size, self.min_size, input[1], input[2]
                ),
            });
        }
        (self.builder)(config, input)
    }
}

macro_rules! zoo {
    ($( $name:literal, $family:literal, $year:literal, $paper:literal, $input:expr, $min:literal, $builder:path; )*) => {
        /// Every model of the zoo, oldest first.
        pub const MODELS: &[ModelInfo] = &[
            $( ModelInfo {
                name: $name,
                family: $family,
                year: $year,
                paper: $paper,
                standard_input: $input,
                min_size: $min,
                builder: $builder,
            }, )*
        ];
    };
}

zoo! {
    "lenet5", "LeNet", 1998, "LeCun et al., Gradient-based learning applied to document recognition", [1, 28, 28], 28, lenet::lenet5;
    "alexnet", "AlexNet", 2012, "Krizhevsky, Sutskever and Hinton, ImageNet Classification with Deep Convolutional Neural Networks", [3, 224, 224], 63, alexnet::alexnet;
    "vgg11", "VGG", 2014, "Simonyan and Zisserman, Very Deep Convolutional Networks for Large-Scale Image Recognition", [3, 224, 224], 32, vgg::vgg11;
    "vgg13", "VGG", 2014, "Simonyan and Zisserman, Very Deep Convolutional Networks for Large-Scale Image Recognition", [3, 224, 224], 32, vgg::vgg13;
    "vgg16", "VGG", 2014, "Simonyan and Zisserman, Very Deep Convolutional Networks for Large-Scale Image Recognition", [3, 224, 224], 32, vgg::vgg16;
    "vgg19", "VGG", 2014, "Simonyan and Zisserman, Very Deep Convolutional Networks for Large-Scale Image Recognition", [3, 224, 224], 32, vgg::vgg19;
    "vgg11_bn", "VGG", 2014, "Simonyan and Zisserman, Very Deep Convolutional Networks for Large-Scale Image Recognition", [3, 224, 224], 32, vgg::vgg11_bn;
    "vgg13_bn", "VGG", 2014, "Simonyan and Zisserman, Very Deep Convolutional Networks for Large-Scale Image Recognition", [3, 224, 224], 32, vgg::vgg13_bn;
    "vgg16_bn", "VGG", 2014, "Simonyan and Zisserman, Very Deep Convolutional Networks for Large-Scale Image Recognition", [3, 224, 224], 32, vgg::vgg16_bn;
    "vgg19_bn", "VGG", 2014, "Simonyan and Zisserman, Very Deep Convolutional Networks for Large-Scale Image Recognition", [3, 224, 224], 32, vgg::vgg19_bn;
    "googlenet", "GoogLeNet", 2014, "Szegedy et al., Going Deeper with Convolutions", [3, 224, 224], 15, googlenet::googlenet;
    "inception_v3", "Inception", 2015, "Szegedy et al., Rethinking the Inception Architecture for Computer Vision", [3, 299, 299], 75, inception_v3::inception_v3;
    "resnet18", "ResNet", 2015, "He et al., Deep Residual Learning for Image Recognition", [3, 224, 224], 1, resnet::resnet18;
    "resnet34", "ResNet", 2015, "He et al., Deep Residual Learning for Image Recognition", [3, 224, 224], 1, resnet::resnet34;
    "resnet50", "ResNet", 2015, "He et al., Deep Residual Learning for Image Recognition", [3, 224, 224], 1, resnet::resnet50;
    "resnet101", "ResNet", 2015, "He et al., Deep Residual Learning for Image Recognition", [3, 224, 224], 1, resnet::resnet101;
    "resnet152", "ResNet", 2015, "He et al., Deep Residual Learning for Image Recognition", [3, 224, 224], 1, resnet::resnet152;
    "densenet121", "DenseNet", 2016, "Huang et al., Densely Connected Convolutional Networks (CVPR 2017)", [3, 224, 224], 29, densenet::densenet121;
    "densenet161", "DenseNet", 2016, "Huang et al., Densely Connected Convolutional Networks (CVPR 2017)", [3, 224, 224], 29, densenet::densenet161;
    "densenet169", "DenseNet", 2016, "Huang et al., Densely Connected Convolutional Networks (CVPR 2017)", [3, 224, 224], 29, densenet::densenet169;
    "densenet201", "DenseNet", 2016, "Huang et al., Densely Connected Convolutional Networks (CVPR 2017)", [3, 224, 224], 29, densenet::densenet201;
    "xception", "Xception", 2016, "Chollet, Xception: Deep Learning with Depthwise Separable Convolutions (CVPR 2017)", [3, 299, 299], 7, xception::xception;
    "mobilenet_v1", "MobileNet", 2017, "Howard et al., MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications", [3, 224, 224], 1, mobilenet_v1::mobilenet_v1;
    "mobilenet_v2", "MobileNet", 2018, "Sandler et al., MobileNetV2: Inverted Residuals and Linear Bottlenecks (CVPR 2018)", [3, 224, 224], 1, mobilenet_v2::mobilenet_v2;
}

/// The model of this name.
pub fn info(name: &str) -> Result<&'static ModelInfo> {
    MODELS.iter().find(|m| m.name == name).ok_or_else(|| {
        let names: Vec<&str> = MODELS.iter().map(|m| m.name).collect();
        Error::invalid(
            "models",
            format!("no model named '{name}'; the zoo has {}", names.join(", ")),
        )
    })
}

/// Builds a model of the zoo for its standard input and `num_classes` classes.
pub fn build(name: &str, num_classes: usize) -> Result<Graph> {
    info(name)?.build(&ModelConfig::new(num_classes))
}

/// Builds a model of the zoo with a full configuration.
pub fn build_with(name: &str, config: &ModelConfig) -> Result<Graph> {
    info(name)?.build(config)
}

fn standard_input(name: &str, config: &ModelConfig) -> Result<[usize; 3]> {
    let info = info(name)?;
    let input = config.input.unwrap_or(info.standard_input);
    if input[1] < info.min_size || input[2] < info.min_size || config.num_classes == 0 {
        // The registry's checks say what is wrong.
        info.build(config)?;
    }
    Ok(input)
}

/// A DenseNet of any size, as torchvision's `DenseNet(growth_rate, block_config,
/// num_init_features)` builds it (`densenet121` is `densenet(32, [6, 12, 24, 16], 64, ..)`).
pub fn densenet(
    growth_rate: usize,
    block_config: [usize; 4],
    num_init_features: usize,
    config: &ModelConfig,
) -> Result<Graph> {
    let input = standard_input("densenet121", config)?;
    densenet::densenet(
        "densenet",
        growth_rate,
        num_init_features,
        block_config,
        config,
        input,
    )
}

/// MobileNetV2 with torchvision's `width_mult` (`mobilenet_v2(width_mult=0.5)`).
pub fn mobilenet_v2_width(width_mult: f64, config: &ModelConfig) -> Result<Graph> {
    if !(width_mult > 0.0 && width_mult.is_finite()) {
        return Err(Error::invalid(
            "mobilenet_v2",
            format!("width_mult must be a positive number, got {width_mult}"),
        ));
    }
    let input = standard_input("mobilenet_v2", config)?;
    mobilenet_v2::mobilenet_v2_width(width_mult, config, input)
}
