//! Training: the loop (`trainer`), metrics, curves and checkpoints.

pub mod atomic;
mod checkpoint;
mod curves;
mod metrics;
mod nonfinite;
mod trainer;

pub use checkpoint::{load_checkpoint, save_checkpoint, Checkpoint};
pub use curves::curves_svg;
pub use metrics::{from_csv, to_csv, EpochMetrics};
pub use nonfinite::{locate_non_finite, NonFiniteValue, Stage};
pub use trainer::{
    correct_predictions, evaluate, model_for, train, DatasetKind, Observer, OptimizerKind, Quiet,
    StepProgress, TrainConfig, TrainReport,
};
