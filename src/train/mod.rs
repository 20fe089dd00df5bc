//! Training: the run's description (`config`, `dataset`), the loop (`trainer`), metrics,
//! curves and checkpoints.

mod bench;
mod checkpoint;
mod config;
mod curves;
mod dataset;
mod metrics;
mod nonfinite;
mod step;
mod trainer;

pub use bench::{
    bench, peak_resident_bytes, reset_peak_resident, BenchConfig, BenchPhase, BenchReport,
};
pub use checkpoint::{load_checkpoint, save_checkpoint, Checkpoint};
pub use config::{OptimizerKind, TrainConfig};
pub use curves::curves_svg;
pub use dataset::DatasetKind;
pub use metrics::{from_csv, to_csv, EpochMetrics};
pub use nonfinite::{locate_non_finite, NonFiniteValue, Stage};
pub use step::{aux_weight, train_step, StepOutcome};
pub use trainer::{
    correct_predictions, evaluate, model_for, train, Observer, Quiet, StepProgress, TrainReport,
};
