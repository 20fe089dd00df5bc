//! Running a graph: inference on plain tensors, or a forward pass recorded on a tape.

use super::{Graph, NodeId};
use crate::autograd::Clamp;
use crate::error::{fmt_shape, Error, Result};
use crate::graph::ParamStore;
use crate::nn::{Fusion, Mode, ParamKind, TapeContext};
use crate::parallel::on_worker;
use crate::{Rng, Tape, Tensor, Var};

/// What [`Graph::forward_tape`] returns.
#[derive(Debug)]
pub struct TapeOutput {
    /// The graph's output (logits, for a classifier).
    pub output: Var,
    /// Auxiliary outputs, in the order of [`Graph::aux_outputs`].
    pub aux: Vec<Var>,
    /// One variable per entry of [`Graph::param_specs`]; gradients of trainable ones are what an
    /// optimiser needs.
    pub params: Vec<Var>,
    /// New buffer values (running statistics) by position in `param_specs`, to write back into
    /// the store after the step.
    pub buffer_updates: Vec<(usize, Tensor)>,
    /// The output variable of every node, by node index (for inspecting activations). After
    /// [`Graph::forward_tape_fused`], a fused BatchNorm shares its activation's variable.
    pub nodes: Vec<Var>,
}

impl Graph {
    pub(super) fn check_input(&self, shape: &[usize]) -> Result<()> {
        if shape.len() != self.input_shape().len() + 1 || shape[1..] != *self.input_shape() {
            return Err(Error::Graph {
                node: "input".into(),
                message: format!(
                    "{} expects input [N, {}], got {}",
                    self.name,
                    self.input_shape()
                        .iter()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    fmt_shape(shape)
                ),
            });
        }
        if shape[0] == 0 {
            return Err(Error::Graph {
                node: "input".into(),
                message: format!(
                    "{} got an empty batch {}: there is nothing to compute",
                    self.name,
                    fmt_shape(shape)
                ),
            });
        }
        Ok(())
    }

    /// Checks, before anything runs, that `store` holds this graph's tensors by name and shape.
    pub(super) fn check_store(&self, store: &ParamStore) -> Result<()> {
        let specs = self.param_specs();
        let mut problems: Vec<String> = specs
            .iter()
            .zip(store.iter())
            .filter(|(p, (name, t))| p.name != *name || p.spec.shape != t.shape())
            .map(|(p, (name, t))| {
                if p.name == name {
                    format!(
                        "{name}: expected {}, found {}",
                        fmt_shape(&p.spec.shape),
                        fmt_shape(t.shape())
                    )
                } else {
                    format!(
                        "expected {} {}, found {name} {}",
                        p.name,
                        fmt_shape(&p.spec.shape),
                        fmt_shape(t.shape())
                    )
                }
            })
            .collect();
        if store.len() != specs.len() {
            problems.push(format!(
                "{} tensors in the store, {} in the graph",
                store.len(),
                specs.len()
            ));
        }
        if problems.is_empty() {
            return Ok(());
        }
        let count = problems.len();
        problems.truncate(5);
        Err(Error::Graph {
            node: self.name.clone(),
            message: format!(
                "the parameter store was not made for this graph ({count} problem(s)): {}{}",
                problems.join("; "),
                if count > 5 { "; ..." } else { "" }
            ),
        })
    }

    /// Which nodes the main output depends on (auxiliary heads are not among them).
    pub(super) fn needed_for_output(&self) -> Vec<bool> {
        let mut needed = vec![false; self.nodes.len()];
        needed[self.output.0] = true;
        for i in (0..self.nodes.len()).rev() {
            if needed[i] {
                for input in &self.nodes[i].inputs {
                    needed[input.0] = true;
                }
            }
        }
        needed
    }

    /// For each node, the index of the last needed node that reads it (to free values early).
    fn last_uses(&self, needed: &[bool]) -> Vec<usize> {
        let mut last = vec![0; self.nodes.len()];
        for (i, node) in self.nodes.iter().enumerate() {
            if needed[i] {
                for input in &node.inputs {
                    last[input.0] = i;
                }
            }
        }
        last[self.output.0] = usize::MAX;
        last
    }

    /// Inference in evaluation mode: `[N, ...input]` in, `[N, ...output]` out. Nothing is
    /// recorded, and each intermediate value is dropped as soon as no later node needs it.
    pub fn forward(&self, store: &ParamStore, input: &Tensor) -> Result<Tensor> {
        on_worker(|| self.forward_on_worker(store, input))
    }

    fn forward_on_worker(&self, store: &ParamStore, input: &Tensor) -> Result<Tensor> {
        self.check_input(input.shape())?;
        self.check_store(store)?;
        let needed = self.needed_for_output();
        let last_use = self.last_uses(&needed);
        let mut values: Vec<Option<Tensor>> = vec![None; self.nodes.len()];
        values[0] = Some(input.clone());
        for (i, node) in self.nodes.iter().enumerate().skip(1) {
            if !needed[i] {
                continue;
            }
            let layer = node.layer.as_ref().expect("only the input has no layer");
            let inputs: Vec<&Tensor> = node
                .inputs
                .iter()
                .map(|id| values[id.0].as_ref().expect("inputs come first"))
                .collect();
            let params: Vec<&Tensor> = node.params.iter().map(|&p| &store.tensors()[p]).collect();
            let y = layer.forward(&inputs, &params).map_err(|e| Error::Graph {
                node: node.name.clone(),
                message: e.to_string(),
            })?;
            values[i] = Some(y);
            for id in &node.inputs {
                if last_use[id.0] == i {
                    values[id.0] = None;
                }
            }
        }
        Ok(values[self.output.0]
            .take()
            .expect("the output was computed"))
    }

    /// Records a forward pass on `tape`. In [`Mode::Train`], BatchNorm uses batch statistics
    /// (their running averages come back in `buffer_updates`) and dropout is applied with masks
    /// from `rng` when `dropout` is true. Every node is recorded as its own op, so
    /// [`TapeOutput::nodes`] holds each node's own value.
    pub fn forward_tape(
        &self,
        tape: &mut Tape,
        store: &ParamStore,
        input: Var,
        mode: Mode,
        rng: &mut Rng,
        dropout: bool,
    ) -> Result<TapeOutput> {
        let fusions = vec![None; self.nodes.len()];
        self.record(tape, store, input, (mode, rng, dropout), &fusions)
    }

    /// [`Graph::forward_tape`] as training runs it: in [`Mode::Train`], each BatchNorm whose only
    /// reader is a ReLU or ReLU6 is recorded with it as one op ([`Tape::batch_norm_clamped`]).
    /// Values and gradients are the same bit for bit; the step keeps one tensor fewer per pair
    /// and makes two fewer passes over it. In [`TapeOutput::nodes`] the BatchNorm then shares
    /// the activation's variable: use [`Graph::forward_tape`] to inspect every node's own value.
    pub fn forward_tape_fused(
        &self,
        tape: &mut Tape,
        store: &ParamStore,
        input: Var,
        mode: Mode,
        rng: &mut Rng,
        dropout: bool,
    ) -> Result<TapeOutput> {
        let fusions = if mode == Mode::Train {
            self.clamp_fusions()
        } else {
            vec![None; self.nodes.len()]
        };
        self.record(tape, store, input, (mode, rng, dropout), &fusions)
    }

    /// For each node, what training may fuse: a BatchNorm read only by a ReLU or ReLU6 (and not
    /// an output itself) takes that clamp, and the activation reads the BatchNorm's result.
    pub(super) fn clamp_fusions(&self) -> Vec<Option<Fused>> {
        let mut readers: Vec<Vec<usize>> = vec![Vec::new(); self.nodes.len()];
        for (i, node) in self.nodes.iter().enumerate() {
            for input in &node.inputs {
                readers[input.0].push(i);
            }
        }
        let mut fusions = vec![None; self.nodes.len()];
        for (i, node) in self.nodes.iter().enumerate() {
            let is_batch_norm = matches!(
                node.layer.as_ref().map(|l| l.fusion()),
                Some(Fusion::BatchNorm(_))
            );
            let &[reader] = readers[i].as_slice() else {
                continue;
            };
            let clamp = match self.nodes[reader].layer.as_ref().map(|l| l.fusion()) {
                Some(Fusion::Clamp(clamp)) => clamp,
                _ => continue,
            };
            if is_batch_norm && !self.is_output(NodeId(i)) {
                fusions[i] = Some(Fused::BatchNormWith(clamp));
                fusions[reader] = Some(Fused::IntoInput);
            }
        }
        fusions
    }

    fn record(
        &self,
        tape: &mut Tape,
        store: &ParamStore,
        input: Var,
        (mode, rng, dropout): (Mode, &mut Rng, bool),
        fusions: &[Option<Fused>],
    ) -> Result<TapeOutput> {
        on_worker(|| self.record_on_worker(tape, store, input, (mode, rng, dropout), fusions))
    }

    fn record_on_worker(
        &self,
        tape: &mut Tape,
        store: &ParamStore,
        input: Var,
        (mode, rng, dropout): (Mode, &mut Rng, bool),
        fusions: &[Option<Fused>],
    ) -> Result<TapeOutput> {
        self.check_input(tape.shape(input)?)?;
        self.check_store(store)?;
        let params: Vec<Var> = store
            .tensors()
            .iter()
            .zip(store.kinds())
            .map(|(t, kind)| match kind {
                ParamKind::Trainable => tape.param(t.clone()),
                ParamKind::Buffer => tape.input(t.clone()),
            })
            .collect();
        let mut outputs: Vec<Var> = Vec::with_capacity(self.nodes.len());
        outputs.push(input);
        let mut buffer_updates = Vec::new();
        for (i, node) in self.nodes.iter().enumerate().skip(1) {
            let layer = node.layer.as_ref().expect("only the input has no layer");
            let inputs: Vec<Var> = node.inputs.iter().map(|id| outputs[id.0]).collect();
            if fusions[i] == Some(Fused::IntoInput) {
                outputs.push(inputs[0]);
                continue;
            }
            let node_params: Vec<Var> = node.params.iter().map(|&p| params[p]).collect();
            let mut ctx = TapeContext {
                mode,
                rng: &mut *rng,
                buffer_updates: Vec::new(),
                dropout,
            };
            let y = match (fusions[i], layer.fusion()) {
                (Some(Fused::BatchNormWith(clamp)), Fusion::BatchNorm(bn)) => {
                    bn.forward_tape_clamped(tape, &inputs, &node_params, &mut ctx, clamp)
                }
                _ => layer.forward_tape(tape, &inputs, &node_params, &mut ctx),
            }
            .map_err(|e| Error::Graph {
                node: node.name.clone(),
                message: e.to_string(),
            })?;
            buffer_updates.extend(
                ctx.buffer_updates
                    .into_iter()
                    .map(|(local, t)| (node.params[local], t)),
            );
            outputs.push(y);
        }
        Ok(TapeOutput {
            output: outputs[self.output.0],
            aux: self.aux_outputs.iter().map(|id| outputs[id.0]).collect(),
            params,
            buffer_updates,
            nodes: outputs,
        })
    }
}

/// A node's part in a training-time fusion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fused {
    /// A BatchNorm that applies the clamp of its only reader.
    BatchNormWith(Clamp),
    /// That reader, whose value is its input's.
    IntoInput,
}
