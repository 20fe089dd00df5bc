//! Finding where a NaN or an infinity first appeared in a training step.
//!
//! Checking every activation of every step would cost a pass over all of them; the trainer
//! instead checks only the loss, the gradients and the parameters it already holds, and when
//! one is not finite it replays the step (same batch, same dropout masks) with a check after
//! every node: parameters first, then activations in graph order, then the loss, then gradients
//! in the order backward computes them (from the output towards the input). The first
//! non-finite value found is the one reported.

use std::fmt;
use std::path::Path;

use crate::error::{fmt_shape, Error, Result};
use crate::graph::{Graph, ParamStore, TapeOutput};
use crate::nn::Mode;
use crate::{Rng, Tape, Tensor, Var};

/// Which kind of value was not finite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// A parameter or buffer before the step.
    Parameter,
    /// The output of a graph node in the forward pass.
    Activation,
    /// The loss, from finite logits.
    Loss,
    /// The gradient of a graph node's output in the backward pass.
    Gradient,
    /// The gradient of a parameter, whose node's output gradient was finite.
    ParameterGradient,
    /// A parameter after the optimiser's update, with finite gradients.
    Update,
}

/// Where a non-finite value first appeared.
#[derive(Clone, Debug, PartialEq)]
pub struct NonFiniteValue {
    pub stage: Stage,
    /// The graph node (`conv2`), or the parameter (`conv2.weight`) for the parameter stages.
    pub name: String,
    /// The node's layer type (`Conv2d`), or `"parameter"`.
    pub kind: &'static str,
    pub shape: Vec<usize>,
    /// How many of its values are NaN or infinite.
    pub count: usize,
    /// Whether a NaN is among them (else they are all infinities).
    pub nan: bool,
}

impl fmt::Display for NonFiniteValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.stage == Stage::Loss {
            return write!(f, "the loss itself, from finite logits");
        }
        let what = match self.stage {
            Stage::Parameter => "parameter",
            Stage::Activation => "output of node",
            Stage::Loss => "loss",
            Stage::Gradient => "gradient of the output of node",
            Stage::ParameterGradient => "gradient of parameter",
            Stage::Update => "parameter after the optimiser step:",
        };
        let total: usize = self.shape.iter().product();
        write!(
            f,
            "{what} '{}' ({}, {}): {} of {total} values {}",
            self.name,
            self.kind,
            fmt_shape(&self.shape),
            self.count,
            if self.nan {
                "NaN or infinite"
            } else {
                "infinite"
            }
        )
    }
}

/// The number of non-finite values, and whether one is a NaN.
pub(crate) fn non_finite(t: &Tensor) -> (usize, bool) {
    t.data().iter().fold((0, false), |(count, nan), v| {
        if v.is_finite() {
            (count, nan)
        } else {
            (count + 1, nan || v.is_nan())
        }
    })
}

fn report(stage: Stage, name: &str, kind: &'static str, t: &Tensor) -> Option<NonFiniteValue> {
    let (count, nan) = non_finite(t);
    (count > 0).then(|| NonFiniteValue {
        stage,
        name: name.to_string(),
        kind,
        shape: t.shape().to_vec(),
        count,
        nan,
    })
}

/// One training step's forward pass and loss (the main output's cross-entropy plus
/// `aux_weight` times each auxiliary head's), recorded on a new tape. `fused` records it with
/// [`Graph::forward_tape_fused`], as training does; without it every node keeps its own value.
pub(crate) fn forward_loss(
    graph: &Graph,
    store: &ParamStore,
    images: Tensor,
    labels: &[usize],
    rng: &mut Rng,
    aux_weight: f32,
    fused: bool,
) -> Result<(Tape, TapeOutput, Var)> {
    let mut tape = Tape::new();
    let input = tape.input(images);
    let out = if fused {
        graph.forward_tape_fused(&mut tape, store, input, Mode::Train, rng, true)?
    } else {
        graph.forward_tape(&mut tape, store, input, Mode::Train, rng, true)?
    };
    let mut loss = tape.cross_entropy(out.output, labels)?;
    for &aux_logits in &out.aux {
        let aux_loss = tape.cross_entropy(aux_logits, labels)?;
        let weighted = tape.scale(aux_loss, aux_weight)?;
        loss = tape.add(loss, weighted)?;
    }
    Ok((tape, out, loss))
}

/// Replays a training step node by node and returns the first non-finite value, or `None` if
/// the replay finds none. `rng` must be the dropout generator as it was before the step.
pub fn locate_non_finite(
    graph: &Graph,
    store: &ParamStore,
    images: &Tensor,
    labels: &[usize],
    mut rng: Rng,
    aux_weight: f32,
) -> Result<Option<NonFiniteValue>> {
    for (name, t) in store.iter() {
        if let Some(found) = report(Stage::Parameter, name, "parameter", t) {
            return Ok(Some(found));
        }
    }
    let (mut tape, out, loss) = forward_loss(
        graph,
        store,
        images.clone(),
        labels,
        &mut rng,
        aux_weight,
        false,
    )?;
    let nodes = graph.nodes();
    for (node, &var) in nodes.iter().zip(&out.nodes) {
        if let Some(found) = report(Stage::Activation, &node.name, node.kind(), tape.value(var)?) {
            return Ok(Some(found));
        }
    }
    if let Some(found) = report(Stage::Loss, "loss", "cross-entropy", tape.value(loss)?) {
        return Ok(Some(found));
    }
    for &var in &out.nodes[1..] {
        tape.retain_grad(var)?;
    }
    let grads = tape.backward(loss)?;
    for (node, &var) in nodes.iter().zip(&out.nodes).rev() {
        if let Some(grad) = grads.get(var) {
            if let Some(found) = report(Stage::Gradient, &node.name, node.kind(), grad) {
                return Ok(Some(found));
            }
        }
    }
    for ((name, _), &var) in store.iter().zip(&out.params) {
        if let Some(grad) = grads.get(var) {
            if let Some(found) = report(Stage::ParameterGradient, name, "parameter", grad) {
                return Ok(Some(found));
            }
        }
    }
    Ok(None)
}

/// The first parameter of `store` that is not finite (after an optimiser step).
pub(crate) fn first_non_finite_parameter(store: &ParamStore) -> Option<NonFiniteValue> {
    store
        .iter()
        .find_map(|(name, t)| report(Stage::Update, name, "parameter", t))
}

/// What [`non_finite_error`] reports.
pub(crate) struct NonFiniteStop<'a> {
    pub(crate) what: String,
    pub(crate) epoch: usize,
    pub(crate) step: usize,
    pub(crate) batch: usize,
    pub(crate) batches: usize,
    pub(crate) found: Option<NonFiniteValue>,
    pub(crate) checkpoint: &'a Path,
}

/// The error that stops training at the first NaN or infinity: what became non-finite, when,
/// where it first appeared, and which checkpoint is left.
pub(crate) fn non_finite_error(stop: NonFiniteStop<'_>) -> Error {
    let NonFiniteStop {
        what,
        epoch,
        step,
        batch,
        batches,
        found,
        checkpoint,
    } = stop;
    let (node, first) = match &found {
        Some(found) => (
            found.name.clone(),
            format!("the first non-finite value is the {found}"),
        ),
        None => (
            "unknown".to_string(),
            "replaying the step node by node found no non-finite value".to_string(),
        ),
    };
    let kept = if checkpoint.exists() {
        format!("the last good checkpoint is kept: {}", checkpoint.display())
    } else {
        "no checkpoint was written yet".to_string()
    };
    Error::NonFinite {
        step,
        node,
        message: format!(
            "{what} at epoch {epoch}, step {step} (batch {batch} of {batches}); {first}. \
             Training stopped; {kept}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models;

    fn setup() -> (Graph, ParamStore, Tensor, Vec<usize>) {
        let graph =
            models::build_with("lenet5", &models::ModelConfig::new(10).input([1, 28, 28])).unwrap();
        let store = ParamStore::init(&graph, &mut Rng::seed(3));
        let images = Tensor::from_vec(
            (0..4 * 784).map(|i| (i % 13) as f32 / 13.0).collect(),
            &[4, 1, 28, 28],
        )
        .unwrap();
        (graph, store, images, vec![0, 1, 2, 3])
    }

    fn poison(store: &mut ParamStore, name: &str, at: usize, value: f32) {
        let i = store.names().iter().position(|n| n == name).unwrap();
        let mut data = store.tensors()[i].data().to_vec();
        data[at] = value;
        let shape = store.tensors()[i].shape().to_vec();
        store.tensors_mut()[i] = Tensor::from_vec(data, &shape).unwrap();
    }

    #[test]
    fn a_finite_step_reports_nothing() {
        let (graph, store, images, labels) = setup();
        let found = locate_non_finite(&graph, &store, &images, &labels, Rng::seed(1), 0.3);
        assert_eq!(found.unwrap(), None);
    }

    #[test]
    fn a_non_finite_parameter_is_named() {
        let (graph, mut store, images, labels) = setup();
        poison(&mut store, "fc2.bias", 5, f32::NAN);
        let found = locate_non_finite(&graph, &store, &images, &labels, Rng::seed(1), 0.3)
            .unwrap()
            .unwrap();
        assert_eq!(
            (found.stage, found.name.as_str()),
            (Stage::Parameter, "fc2.bias")
        );
        assert!(found.nan && found.count == 1, "{found}");
    }

    #[test]
    fn the_first_non_finite_activation_is_named() {
        let (graph, store, mut images, labels) = setup();
        // An infinite pixel: the input itself is the first node with a non-finite value.
        let mut data = images.data().to_vec();
        data[784 + 300] = f32::INFINITY;
        images = Tensor::from_vec(data, &[4, 1, 28, 28]).unwrap();
        let found = locate_non_finite(&graph, &store, &images, &labels, Rng::seed(1), 0.3)
            .unwrap()
            .unwrap();
        assert_eq!(
            (found.stage, found.name.as_str()),
            (Stage::Activation, "input")
        );
        assert_eq!(found.shape, [4, 1, 28, 28]);
        let text = found.to_string();
        assert!(
            text.contains(
                "output of node 'input' (Input, [4, 1, 28, 28]): 1 of 3136 values infinite"
            ),
            "{text}"
        );
    }

    #[test]
    fn activations_that_overflow_are_found_at_their_node() {
        let (graph, mut store, images, labels) = setup();
        // A huge weight in fc1: its output overflows to infinity; conv1 and conv2 stay finite.
        for at in 0..400 {
            poison(&mut store, "fc1.weight", at, 3e38);
        }
        let found = locate_non_finite(&graph, &store, &images, &labels, Rng::seed(1), 0.3)
            .unwrap()
            .unwrap();
        assert_eq!(found.stage, Stage::Activation, "{found}");
        assert_eq!(found.name, "fc1", "{found}");
        assert_eq!(found.kind, "Linear");
    }
}
