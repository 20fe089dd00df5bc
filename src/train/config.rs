//! Everything a training run is determined by, and the optimiser it asks for.

use std::collections::HashMap;
use std::path::PathBuf;

use super::DatasetKind;
use crate::data::Augment;
use crate::error::Result;
use crate::optim::{Adam, Optimizer, RmsProp, Sgd};

/// The optimiser and its hyperparameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimizerKind {
    Sgd,
    Adam,
    AdamW,
    RmsProp,
}

impl OptimizerKind {
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam => "adam",
            OptimizerKind::AdamW => "adamw",
            OptimizerKind::RmsProp => "rmsprop",
        }
    }
}

/// Everything a training run is determined by.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    pub model: String,
    pub dataset: DatasetKind,
    pub data_dir: Option<PathBuf>,
    pub epochs: usize,
    pub batch_size: usize,
    pub optimizer: OptimizerKind,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    /// A schedule string, see [`Schedule::parse`](crate::optim::Schedule::parse).
    pub schedule: String,
    pub seed: u64,
    pub out_dir: PathBuf,
    /// Continue from `out_dir/checkpoint.safetensors`, or start from epoch 1 when there is none
    /// yet (a run killed before its first checkpoint).
    pub resume: bool,
    /// Stop after this many batches per epoch (for quick runs and tests); `None` for all.
    pub max_batches: Option<usize>,
    /// Random crop padding and flips; `None` for the dataset's usual recipe (CIFAR-10's pad 4
    /// and flip, nothing for the others).
    pub augment: Option<Augment>,
    /// Resize every image to `size x size` before training (for models that need larger
    /// inputs than the dataset's); `None` keeps the dataset's size.
    pub resize: Option<usize>,
}

impl TrainConfig {
    /// The defaults of `convgrad train MODEL`: Fashion-MNIST, 3 epochs, batch 64, Adam at 3e-3
    /// with a cosine decay over the epochs (LeNet-5 reaches about 89.5% in 3 epochs with them).
    pub fn new(model: impl Into<String>) -> Self {
        TrainConfig {
            model: model.into(),
            dataset: DatasetKind::FashionMnist,
            data_dir: None,
            epochs: 3,
            batch_size: 64,
            optimizer: OptimizerKind::Adam,
            lr: 3e-3,
            momentum: 0.9,
            weight_decay: 0.0,
            schedule: "cosine".into(),
            seed: 0,
            out_dir: PathBuf::from("runs/latest"),
            resume: false,
            max_batches: None,
            augment: None,
            resize: None,
        }
    }

    /// The facts stored with a checkpoint; a resumed run must agree with them.
    pub(super) fn fingerprint(&self) -> HashMap<String, String> {
        HashMap::from([
            ("convgrad.model".into(), self.model.clone()),
            ("convgrad.dataset".into(), self.dataset.name().into()),
            ("convgrad.batch_size".into(), self.batch_size.to_string()),
            ("convgrad.optimizer".into(), self.optimizer.name().into()),
            ("convgrad.lr".into(), self.lr.to_string()),
            ("convgrad.momentum".into(), self.momentum.to_string()),
            (
                "convgrad.weight_decay".into(),
                self.weight_decay.to_string(),
            ),
            ("convgrad.schedule".into(), self.schedule.clone()),
            ("convgrad.seed".into(), self.seed.to_string()),
            ("convgrad.augment".into(), self.augment().describe()),
            (
                "convgrad.resize".into(),
                self.resize.map_or("none".into(), |s| s.to_string()),
            ),
        ])
    }

    /// The augmentation this run uses.
    pub fn augment(&self) -> Augment {
        self.augment.unwrap_or_else(|| self.dataset.augment())
    }

    pub(super) fn make_optimizer(&self) -> Result<Box<dyn Optimizer>> {
        Ok(match self.optimizer {
            OptimizerKind::Sgd => Box::new(
                Sgd::builder(self.lr)
                    .momentum(self.momentum)
                    .weight_decay(self.weight_decay)
                    .build()?,
            ),
            OptimizerKind::Adam => Box::new(
                Adam::builder(self.lr)
                    .weight_decay(self.weight_decay)
                    .build()?,
            ),
            OptimizerKind::AdamW => Box::new(
                Adam::adamw_builder(self.lr)
                    .weight_decay(self.weight_decay)
                    .build()?,
            ),
            OptimizerKind::RmsProp => Box::new(
                RmsProp::builder(self.lr)
                    .momentum(self.momentum)
                    .weight_decay(self.weight_decay)
                    .build()?,
            ),
        })
    }
}
