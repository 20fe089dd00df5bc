//! Training: metrics, curves and checkpoints (the loop itself lives in `trainer`).

mod checkpoint;
mod curves;
mod metrics;

pub use checkpoint::{load_checkpoint, save_checkpoint, Checkpoint};
pub use curves::curves_svg;
pub use metrics::{from_csv, to_csv, EpochMetrics};
