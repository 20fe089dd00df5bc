//! Per-epoch metrics and `metrics.csv`.

use std::fmt::Write as _;
use std::path::Path;

use crate::error::{Error, Result};

/// What one epoch measured. Accuracies are fractions in `[0, 1]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochMetrics {
    /// 1 for the first epoch.
    pub epoch: usize,
    pub train_loss: f64,
    pub train_acc: f64,
    pub test_loss: f64,
    pub test_acc: f64,
    /// Wall-clock seconds of the epoch (training and evaluation).
    pub seconds: f64,
    /// Learning rate used during the epoch.
    pub lr: f64,
    /// Training throughput.
    pub images_per_second: f64,
}

pub(crate) const HEADER: &str =
    "epoch,train_loss,train_acc,test_loss,test_acc,seconds,lr,images_per_second";

/// `metrics.csv`: a header line, then one row per epoch.
pub fn to_csv(rows: &[EpochMetrics]) -> String {
    let mut out = String::from(HEADER);
    out.push('\n');
    for m in rows {
        let _ = writeln!(
            out,
            // Losses, accuracies and the learning rate in the shortest form that reads back to
            // the same f64, so a resumed run's history equals the uninterrupted one's.
            "{},{},{},{},{},{:.3},{},{:.1}",
            m.epoch,
            m.train_loss,
            m.train_acc,
            m.test_loss,
            m.test_acc,
            m.seconds,
            m.lr,
            m.images_per_second
        );
    }
    out
}

/// Parses what [`to_csv`] wrote (for `--resume`).
pub fn from_csv(path: &Path, text: &str) -> Result<Vec<EpochMetrics>> {
    let bad = |line: usize, message: String| Error::Format {
        path: path.to_path_buf(),
        message: format!("line {line}: {message}"),
    };
    let mut lines = text.lines();
    match lines.next() {
        Some(HEADER) => {}
        other => {
            return Err(bad(
                1,
                format!("expected the header '{HEADER}', found {other:?}"),
            ))
        }
    }
    lines
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let fields: Vec<&str> = line.split(',').collect();
            if fields.len() != 8 {
                return Err(bad(
                    i + 2,
                    format!("expected 8 fields, found {}", fields.len()),
                ));
            }
            let number = |k: usize| {
                fields[k]
                    .parse::<f64>()
                    .map_err(|_| bad(i + 2, format!("'{}' is not a number", fields[k])))
            };
            Ok(EpochMetrics {
                epoch: fields[0]
                    .parse()
                    .map_err(|_| bad(i + 2, format!("'{}' is not an epoch", fields[0])))?,
                train_loss: number(1)?,
                train_acc: number(2)?,
                test_loss: number(3)?,
                test_acc: number(4)?,
                seconds: number(5)?,
                lr: number(6)?,
                images_per_second: number(7)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_round_trips() {
        let rows = vec![EpochMetrics {
            epoch: 1,
            train_loss: 0.5,
            train_acc: 0.8,
            test_loss: 0.45,
            test_acc: 0.84,
            seconds: 9.5,
            lr: 0.001,
            images_per_second: 6000.0,
        }];
        let text = to_csv(&rows);
        assert!(text.starts_with("epoch,train_loss,train_acc,test_loss,test_acc,seconds"));
        assert_eq!(from_csv(Path::new("m.csv"), &text).unwrap(), rows);
        let err = from_csv(Path::new("m.csv"), "epoch,x\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("m.csv: line 1: expected the header"),
            "{err}"
        );
    }
}
