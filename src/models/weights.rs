//! Weights files: a torchvision (or timm) `state_dict()` saved as safetensors, loaded into a
//! zoo model and saved back under the same names.
//!
//! ```no_run
//! use convgrad::models::weights::{load_model, save_weights, Weights};
//! // Exported with `python scripts/export_weights.py resnet18 --pretrained resnet18.safetensors`.
//! let weights = Weights::read("resnet18.safetensors")?;
//! let model = load_model("resnet18", &weights, None)?; // 1000 classes, found in the file
//! assert_eq!(model.graph.output_shape(), &[1000]);
//! save_weights("copy.safetensors", &model.store)?; // loads in PyTorch with load_state_dict
//! # Ok::<(), convgrad::Error>(())
//! ```
//!
//! Loading is strict, as `load_state_dict(strict=True)`: every missing, unexpected or wrongly
//! shaped tensor is listed in one error, and when the file's names are exactly those of another
//! zoo model the error says which. BatchNorm's `num_batches_tracked` counters, which torchvision
//! keeps in its state dicts but nothing here uses, are accepted and dropped. F16, BF16 and F64
//! files are converted to f32 on reading (see [`crate::io::read_safetensors`]).
//!
//! A file also says how to build the model: the class count is the first dimension of the
//! classifier's weight, the input channels the second dimension of the first convolution's, and
//! auxiliary classifier tensors (GoogLeNet's `aux1.*`, Inception-v3's `AuxLogits.*`) mean the
//! model was built with `aux_logits=True`.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use super::{info, ModelConfig, MODELS};
use crate::error::{fmt_shape, Error, Result};
use crate::graph::{Graph, ParamStore};
use crate::io::{read_safetensors, write_safetensors};
use crate::Tensor;

/// The tensors of a weights file (without `num_batches_tracked`), and where they came from.
#[derive(Clone, Debug)]
pub struct Weights {
    path: PathBuf,
    tensors: Vec<(String, Tensor)>,
    metadata: HashMap<String, String>,
}

/// A zoo model built to fit a weights file, with the weights loaded.
#[derive(Debug)]
pub struct LoadedModel {
    pub graph: Graph,
    pub store: ParamStore,
    pub config: ModelConfig,
    /// Names of auxiliary-classifier tensors that were in the file but left out, because the
    /// input asked for is too small for the auxiliary head (Inception-v3's needs 299 x 299).
    /// They play no part in evaluation, nor in a loss on the main output.
    pub skipped_aux: Vec<String>,
}

fn is_counter(name: &str) -> bool {
    name.ends_with("num_batches_tracked")
}

impl Weights {
    /// Reads a safetensors weights file.
    pub fn read(path: impl AsRef<Path>) -> Result<Weights> {
        let path = path.as_ref();
        let file = read_safetensors(path)?;
        Ok(Weights::from_named(path, file.tensors, file.metadata))
    }

    /// Weights from tensors already in memory; `source` names them in errors.
    pub fn from_named(
        source: impl AsRef<Path>,
        tensors: Vec<(String, Tensor)>,
        metadata: HashMap<String, String>,
    ) -> Weights {
        Weights {
            path: source.as_ref().to_path_buf(),
            tensors: tensors
                .into_iter()
                .filter(|(name, _)| !is_counter(name))
                .collect(),
            metadata,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The tensors, in file order.
    pub fn tensors(&self) -> &[(String, Tensor)] {
        &self.tensors
    }

    /// The file's string metadata.
    pub fn metadata(&self) -> &HashMap<String, String> {
        &self.metadata
    }

    /// The tensor of this name.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    fn names(&self) -> BTreeSet<&str> {
        self.tensors.iter().map(|(n, _)| n.as_str()).collect()
    }

    fn error(&self, message: String) -> Error {
        Error::Format {
            path: self.path.clone(),
            message,
        }
    }

    /// How to build `model` so that these weights fit it: class count, input channels (at the
    /// model's standard height and width) and auxiliary heads, read from the tensors' shapes.
    pub fn config_for(&self, model: &str) -> Result<ModelConfig> {
        let info = info(model)?;
        let reference = info.build(&ModelConfig::new(1000))?;
        let classifier = classifier_weight(&reference)?;
        let first_conv = reference
            .param_specs()
            .iter()
            .find(|p| p.spec.shape.len() == 4)
            .map(|p| p.name.clone());
        let describe = |name: &str, what: &str| -> Result<&Tensor> {
            self.get(name).ok_or_else(|| {
                self.error(format!(
                    "no tensor '{name}' ({what} of {model}); {}",
                    self.looks_like(model)
                ))
            })
        };
        let classes = describe(&classifier, "the classifier weight")?;
        if classes.rank() != 2 || classes.shape()[0] == 0 {
            return Err(self.error(format!(
                "'{classifier}' should be a [classes, features] matrix, found {}",
                fmt_shape(classes.shape())
            )));
        }
        let mut config = ModelConfig::new(classes.shape()[0]);
        if let Some(first_conv) = first_conv {
            let conv = describe(&first_conv, "the first convolution's weight")?;
            if conv.rank() != 4 || conv.shape()[1] == 0 {
                return Err(self.error(format!(
                    "'{first_conv}' should be a [out, in, kh, kw] convolution weight, found {}",
                    fmt_shape(conv.shape())
                )));
            }
            let [_, height, width] = info.standard_input;
            config = config.input([conv.shape()[1], height, width]);
        }
        let names = self.names();
        if aux_names(model)?.iter().any(|n| names.contains(n.as_str())) {
            config = config.aux_logits(true);
        }
        Ok(config)
    }

    /// A store for `graph`, strictly: every missing, unexpected or wrongly shaped tensor is
    /// listed in one error (and the error names the zoo model these weights seem to be for).
    pub fn store_for(&self, graph: &Graph) -> Result<ParamStore> {
        ParamStore::from_named(graph, self.tensors.iter().cloned()).map_err(|e| {
            let hint = self.looks_like(graph.name());
            self.error(format!("{e}\n{hint}"))
        })
    }

    /// Which zoo model has exactly these names, for error messages.
    fn looks_like(&self, asked: &str) -> String {
        let names = self.names();
        for model in MODELS {
            for aux in [false, true] {
                let Ok(graph) = model.build(&ModelConfig::new(1000).aux_logits(aux)) else {
                    continue;
                };
                let theirs: BTreeSet<&str> = graph
                    .param_specs()
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect();
                if theirs == names {
                    return if model.name == asked {
                        format!("the names are those of {asked}; the shapes differ")
                    } else {
                        format!(
                            "these look like weights for {}{} (found {} tensors), not {asked}",
                            model.name,
                            if aux { " with auxiliary heads" } else { "" },
                            names.len()
                        )
                    };
                }
            }
        }
        let sample: Vec<&str> = names.iter().take(3).copied().collect();
        format!(
            "the file's {} tensors match no zoo model (first names: {})",
            names.len(),
            sample.join(", ")
        )
    }
}

/// The name of the weight of the layer that produces the logits.
fn classifier_weight(graph: &Graph) -> Result<String> {
    let output = graph.nodes().iter().rev().find(|n| {
        n.params
            .iter()
            .any(|&i| graph.param_specs()[i].spec.shape.len() == 2)
    });
    output
        .and_then(|node| {
            node.params
                .iter()
                .map(|&i| &graph.param_specs()[i])
                .find(|p| p.spec.shape.len() == 2)
        })
        .map(|p| p.name.clone())
        .ok_or_else(|| Error::invalid(graph.name(), "the model has no linear classifier"))
}

/// Names that only the auxiliary classifiers have (empty for models without them).
fn aux_names(model: &str) -> Result<Vec<String>> {
    let info = info(model)?;
    let Ok(with_aux) = info.build(&ModelConfig::new(1000).aux_logits(true)) else {
        return Ok(Vec::new());
    };
    let plain = info.build(&ModelConfig::new(1000))?;
    let plain: BTreeSet<&str> = plain
        .param_specs()
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    Ok(with_aux
        .param_specs()
        .iter()
        .filter(|p| !plain.contains(p.name.as_str()))
        .map(|p| p.name.clone())
        .collect())
}

/// Builds `model` to fit `weights` (class count, channels and auxiliary heads from the file;
/// `input` `[C, H, W]` when given, else the model's standard size) and loads them, strictly.
///
/// When the file has auxiliary heads that cannot be built at this input size, the model is
/// built without them and their tensors are listed in [`LoadedModel::skipped_aux`].
pub fn load_model(
    model: &str,
    weights: &Weights,
    input: Option<[usize; 3]>,
) -> Result<LoadedModel> {
    let mut config = weights.config_for(model)?;
    if input.is_some() {
        config.input = input;
    }
    let built = info(model)?.build(&config);
    let (graph, config, skipped_aux) = match built {
        Ok(graph) => (graph, config, Vec::new()),
        Err(e) if config.aux_logits => {
            let plain = config.clone().aux_logits(false);
            let graph = info(model)?.build(&plain).map_err(|_| e)?;
            let aux = aux_names(model)?;
            (graph, plain, aux)
        }
        Err(e) => return Err(e),
    };
    let kept: Vec<(String, Tensor)> = weights
        .tensors
        .iter()
        .filter(|(n, _)| !skipped_aux.contains(n))
        .cloned()
        .collect();
    let filtered = Weights {
        path: weights.path.clone(),
        tensors: kept,
        metadata: HashMap::new(),
    };
    let store = filtered.store_for(&graph)?;
    Ok(LoadedModel {
        graph,
        store,
        config,
        skipped_aux,
    })
}

/// Reads a weights file into a store for `graph`, strictly.
pub fn load_weights(graph: &Graph, path: impl AsRef<Path>) -> Result<ParamStore> {
    Weights::read(path)?.store_for(graph)
}

/// Saves a model's parameters and buffers to safetensors under their torchvision names (F32),
/// atomically. PyTorch loads the file with
/// `model.load_state_dict(safetensors.torch.load_file(path))`; the missing
/// `num_batches_tracked` counters are filled in by PyTorch's BatchNorm.
pub fn save_weights(path: impl AsRef<Path>, store: &ParamStore) -> Result<()> {
    let named: Vec<(String, &Tensor)> = store.iter().map(|(n, t)| (n.to_string(), t)).collect();
    write_safetensors(path, &named, &HashMap::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rng;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("convgrad-weights-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn round_trip_infers_the_configuration_and_ignores_counters() {
        let dir = temp_dir("round");
        let config = ModelConfig::new(7).input([1, 32, 32]);
        let graph = info("lenet5").unwrap().build(&config).unwrap();
        let store = ParamStore::init(&graph, &mut Rng::seed(1));
        let path = dir.join("lenet.safetensors");
        save_weights(&path, &store).unwrap();

        let mut weights = Weights::read(&path).unwrap();
        weights
            .tensors
            .push(("bn.num_batches_tracked".into(), Tensor::scalar(3.0)));
        let weights = Weights::from_named(&path, weights.tensors, HashMap::new());
        assert_eq!(
            weights.config_for("lenet5").unwrap(),
            ModelConfig::new(7).input([1, 28, 28])
        );
        let loaded = load_model("lenet5", &weights, Some([1, 32, 32])).unwrap();
        assert_eq!(loaded.store.tensors(), store.tensors());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn weights_of_another_model_are_named_in_the_error() {
        let graph = info("mobilenet_v2")
            .unwrap()
            .build(&ModelConfig::new(1000))
            .unwrap();
        let store = ParamStore::init(&graph, &mut Rng::seed(2));
        let named: Vec<(String, Tensor)> = store
            .iter()
            .map(|(n, t)| (n.to_string(), t.clone()))
            .collect();
        let weights = Weights::from_named("mnv2.safetensors", named, HashMap::new());
        let resnet = info("resnet18")
            .unwrap()
            .build(&ModelConfig::new(1000))
            .unwrap();
        let err = weights.store_for(&resnet).unwrap_err().to_string();
        assert!(
            err.contains("conv1.weight: missing (expected [64, 3, 7, 7])"),
            "{err}"
        );
        assert!(err.contains("364 problem(s)"), "{err}"); // 102 missing, 262 unexpected
        assert!(
            err.contains(
                "these look like weights for mobilenet_v2 (found 262 tensors), not resnet18"
            ),
            "{err}"
        );
        let err = weights.config_for("resnet18").unwrap_err().to_string();
        assert!(
            err.contains("no tensor 'fc.weight' (the classifier weight of resnet18)"),
            "{err}"
        );
    }

    #[test]
    fn auxiliary_heads_are_detected_and_skipped_when_the_input_is_too_small() {
        let config = ModelConfig::new(5).aux_logits(true);
        let graph = info("inception_v3").unwrap().build(&config).unwrap();
        let store = ParamStore::init(&graph, &mut Rng::seed(3));
        let named = store
            .iter()
            .map(|(n, t)| (n.to_string(), t.clone()))
            .collect();
        let weights = Weights::from_named("inc.safetensors", named, HashMap::new());
        assert_eq!(
            weights.config_for("inception_v3").unwrap(),
            ModelConfig::new(5).input([3, 299, 299]).aux_logits(true)
        );
        let loaded = load_model("inception_v3", &weights, Some([3, 96, 96])).unwrap();
        assert!(!loaded.config.aux_logits);
        assert!(loaded
            .skipped_aux
            .iter()
            .any(|n| n.starts_with("AuxLogits.")));
        assert!(loaded.graph.aux_outputs().is_empty());
    }
}
