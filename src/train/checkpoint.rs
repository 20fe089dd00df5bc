//! `checkpoint.safetensors`: the model's parameters and buffers under their torchvision names,
//! the optimiser's state under `optimizer.`, and the run's facts (model, epoch, configuration)
//! as safetensors metadata. Written atomically (see [`crate::io::atomic`]), so an
//! interrupted run always leaves the previous complete checkpoint.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::graph::{Graph, ParamStore};

use super::{from_csv, EpochMetrics};
use crate::io::atomic::write_atomic;
use crate::io::{read_safetensors, safetensors_bytes};
use crate::Tensor;

const OPTIMIZER_PREFIX: &str = "optimizer.";
const FORMAT_KEY: &str = "convgrad.format";
const FORMAT: &str = "convgrad-checkpoint-1";
/// The metrics of every epoch so far, as `metrics.csv` holds them: the checkpoint is the one
/// file whose rename commits an epoch, so the history it carries is always the right one.
pub(crate) const METRICS_KEY: &str = "convgrad.metrics";

/// A checkpoint as read back from disk.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// Model parameters and buffers by torchvision name.
    pub params: Vec<(String, Tensor)>,
    /// Optimiser state by the optimiser's own names (without the `optimizer.` prefix).
    pub optimizer: Vec<(String, Tensor)>,
    /// String facts: `convgrad.model`, `convgrad.epoch`, and whatever the trainer stored.
    pub metadata: HashMap<String, String>,
}

impl Checkpoint {
    /// The number of epochs completed when this checkpoint was written.
    pub fn epoch(&self, path: &Path) -> Result<usize> {
        self.metadata
            .get("convgrad.epoch")
            .and_then(|e| e.parse().ok())
            .ok_or_else(|| Error::Format {
                path: path.to_path_buf(),
                message: "the checkpoint does not say which epoch it was written after".into(),
            })
    }

    /// The per-epoch metrics up to this checkpoint, when it carries them (checkpoints written by
    /// [`train`](super::train) do).
    pub fn history(&self, path: &Path) -> Result<Option<Vec<EpochMetrics>>> {
        self.metadata
            .get(METRICS_KEY)
            .map(|csv| from_csv(path, csv))
            .transpose()
    }

    /// A parameter store for `graph` from this checkpoint, checked name by name and shape by shape.
    pub fn store_for(&self, graph: &Graph) -> Result<ParamStore> {
        ParamStore::from_named(graph, self.params.iter().cloned())
    }
}

/// Writes a checkpoint atomically (see [`write_atomic`](crate::io::atomic::write_atomic)): a run
/// killed while writing leaves the previous checkpoint whole.
pub fn save_checkpoint(
    path: &Path,
    store: &ParamStore,
    optimizer: &[(String, Tensor)],
    metadata: &HashMap<String, String>,
) -> Result<()> {
    let mut named: Vec<(String, &Tensor)> = store
        .iter()
        .map(|(name, t)| (name.to_string(), t))
        .collect();
    named.extend(
        optimizer
            .iter()
            .map(|(name, t)| (format!("{OPTIMIZER_PREFIX}{name}"), t)),
    );
    let mut metadata = metadata.clone();
    metadata.insert(FORMAT_KEY.into(), FORMAT.into());
    let bytes = safetensors_bytes(path, &named, &metadata)?;
    write_atomic(path, &bytes)
}

/// Reads and validates a checkpoint written by [`save_checkpoint`].
pub fn load_checkpoint(path: &Path) -> Result<Checkpoint> {
    let file = read_safetensors(path)?;
    if file.metadata.get(FORMAT_KEY).map(String::as_str) != Some(FORMAT) {
        return Err(Error::Format {
            path: path.to_path_buf(),
            message: format!(
                "not a convgrad checkpoint (its metadata has no '{FORMAT_KEY}: {FORMAT}'); \
                 to load plain weights use --weights"
            ),
        });
    }
    let (optimizer, params): (Vec<_>, Vec<_>) = file
        .tensors
        .into_iter()
        .partition(|(name, _)| name.starts_with(OPTIMIZER_PREFIX));
    Ok(Checkpoint {
        params,
        optimizer: optimizer
            .into_iter()
            .map(|(name, t)| (name[OPTIMIZER_PREFIX.len()..].to_string(), t))
            .collect(),
        metadata: file.metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{models, Rng};

    #[test]
    fn round_trip_restores_parameters_optimizer_state_and_epoch() {
        let dir = std::env::temp_dir().join(format!("convgrad-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("checkpoint.safetensors");
        let graph = models::build("lenet5", 10).unwrap();
        let store = ParamStore::init(&graph, &mut Rng::seed(4));
        let optimizer = vec![("adam.step".to_string(), Tensor::scalar(7.0))];
        let meta = HashMap::from([("convgrad.epoch".to_string(), "2".to_string())]);
        save_checkpoint(&path, &store, &optimizer, &meta).unwrap();
        let back = load_checkpoint(&path).unwrap();
        assert_eq!(back.epoch(&path).unwrap(), 2);
        assert_eq!(back.optimizer, optimizer);
        let restored = back.store_for(&graph).unwrap();
        assert_eq!(restored.tensors(), store.tensors());
        // A file that is not a checkpoint is refused with a reason.
        crate::io::write_safetensors(
            &path,
            &[("x".into(), &Tensor::zeros(&[1]))],
            &HashMap::new(),
        )
        .unwrap();
        let err = load_checkpoint(&path).unwrap_err().to_string();
        assert!(err.contains("not a convgrad checkpoint"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
