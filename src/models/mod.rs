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

mod lenet;

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
