//! Per-slot optimiser state: made lazily with the parameter's shape, exported and imported as
//! named tensors (`<optimizer>.<field>.<slot>`, and `<optimizer>.step.<slot>` for step counts).
//!
//! Slots live in a map, not a vector, so that loading a checkpoint never allocates according to
//! a slot number read from a file, and so that slots without gradients cost nothing.

use std::collections::BTreeMap;

use crate::error::{fmt_shape, Error, Result};
use crate::Tensor;

/// The state of one parameter: its step count and one tensor per field of the layout.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SlotState {
    pub step: u64,
    pub buffers: Vec<Tensor>,
}

/// The state of every slot that has received a gradient, for a fixed layout of fields.
#[derive(Clone, Debug)]
pub(crate) struct SlotStates {
    optimizer: &'static str,
    fields: Vec<&'static str>,
    counts_steps: bool,
    slots: BTreeMap<usize, SlotState>,
}

impl SlotStates {
    /// Empty state for an optimiser whose slots hold `fields` (and a step count if
    /// `counts_steps`).
    pub fn new(optimizer: &'static str, fields: Vec<&'static str>, counts_steps: bool) -> Self {
        SlotStates {
            optimizer,
            fields,
            counts_steps,
            slots: BTreeMap::new(),
        }
    }

    /// Checks, before anything is updated, that the state of every slot about to be stepped has
    /// its parameter's shape, and that no state belongs to a slot beyond the parameter list (a
    /// checkpoint of another model).
    pub fn check_fits(&self, params: &[Tensor], grads: &[Option<Tensor>]) -> Result<()> {
        if let Some((&slot, _)) = self.slots.range(params.len()..).next() {
            return Err(Error::invalid(
                self.optimizer,
                format!(
                    "state for slot {slot}, but only {} parameters",
                    params.len()
                ),
            ));
        }
        for (slot, state) in &self.slots {
            let param = &params[*slot];
            let state_shape = state.buffers.first().map(Tensor::shape);
            if grads[*slot].is_some() && state_shape.is_some_and(|s| s != param.shape()) {
                return Err(Error::shape(
                    self.optimizer,
                    format!(
                        "slot {slot}: state {} does not match parameter {}",
                        fmt_shape(state_shape.unwrap_or_default()),
                        fmt_shape(param.shape())
                    ),
                ));
            }
        }
        Ok(())
    }

    pub fn get_mut(&mut self, slot: usize) -> Option<&mut SlotState> {
        self.slots.get_mut(&slot)
    }

    /// Starts a slot's state from given buffers (SGD's momentum starts from the first gradient).
    pub fn insert(&mut self, slot: usize, buffers: Vec<Tensor>) -> &mut SlotState {
        debug_assert_eq!(buffers.len(), self.fields.len());
        self.slots.insert(slot, SlotState { step: 0, buffers });
        self.slots.get_mut(&slot).expect("just inserted")
    }

    /// A slot's state, made of zeros with the parameter's shape on its first step.
    pub fn get_or_zeros(&mut self, slot: usize, shape: &[usize]) -> &mut SlotState {
        let fields = self.fields.len();
        self.slots.entry(slot).or_insert_with(|| SlotState {
            step: 0,
            buffers: vec![Tensor::zeros(shape); fields],
        })
    }

    /// Named tensors by slot, fields in layout order, then the step count.
    pub fn export(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (slot, state) in &self.slots {
            for (field, buffer) in self.fields.iter().zip(&state.buffers) {
                out.push((format!("{}.{field}.{slot}", self.optimizer), buffer.clone()));
            }
            if self.counts_steps {
                out.push((
                    format!("{}.step.{slot}", self.optimizer),
                    Tensor::full(&[1], state.step as f32),
                ));
            }
        }
        out
    }

    /// Replaces the state with exported entries, or lists every problem and keeps the old state.
    pub fn import(&mut self, entries: &[(String, Tensor)]) -> Result<()> {
        let mut problems = Vec::new();
        // Per slot: one optional tensor per field, and the step.
        let mut found: BTreeMap<usize, (Vec<Option<Tensor>>, Option<u64>)> = BTreeMap::new();
        for (name, tensor) in entries {
            let Some((field, slot)) = self.parse_name(name) else {
                problems.push(format!("{name}: {}", self.expected_names()));
                continue;
            };
            let entry = found
                .entry(slot)
                .or_insert_with(|| (vec![None; self.fields.len()], None));
            let duplicate = match field {
                None => {
                    let step = step_count(tensor);
                    if step.is_none() {
                        problems.push(format!(
                            "{name}: a step count is one non-negative integer, found {tensor}"
                        ));
                    }
                    entry.1.replace(step.unwrap_or(0)).is_some()
                }
                Some(k) => entry.0[k].replace(tensor.clone()).is_some(),
            };
            if duplicate {
                problems.push(format!("{name}: given twice"));
            }
        }
        let mut slots = BTreeMap::new();
        for (slot, (buffers, step)) in found {
            let missing: Vec<String> = (self.fields.iter().zip(&buffers))
                .filter(|(_, b)| b.is_none())
                .map(|(field, _)| format!("{}.{field}.{slot}", self.optimizer))
                .chain(
                    (self.counts_steps && step.is_none())
                        .then(|| format!("{}.step.{slot}", self.optimizer)),
                )
                .collect();
            if !missing.is_empty() {
                problems.push(format!("slot {slot}: missing {}", missing.join(", ")));
                continue;
            }
            let buffers: Vec<Tensor> = buffers.into_iter().flatten().collect();
            if buffers.iter().any(|b| b.shape() != buffers[0].shape()) {
                let shapes: Vec<String> = buffers.iter().map(|b| fmt_shape(b.shape())).collect();
                problems.push(format!(
                    "slot {slot}: fields {} have different shapes {}",
                    self.fields.join(", "),
                    shapes.join(", ")
                ));
                continue;
            }
            let step = step.unwrap_or(0);
            slots.insert(slot, SlotState { step, buffers });
        }
        if !problems.is_empty() {
            return Err(Error::invalid(
                format!("{}: load_state", self.optimizer),
                format!(
                    "{} problem(s):\n  {}",
                    problems.len(),
                    problems.join("\n  ")
                ),
            ));
        }
        self.slots = slots;
        Ok(())
    }

    /// `(Some(field index) or None for the step, slot)` of a name this layout exports.
    fn parse_name(&self, name: &str) -> Option<(Option<usize>, usize)> {
        let rest = name.strip_prefix(self.optimizer)?.strip_prefix('.')?;
        let (field, slot) = rest.rsplit_once('.')?;
        if slot.is_empty() || !slot.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let slot = slot.parse().ok()?;
        if self.counts_steps && field == "step" {
            return Some((None, slot));
        }
        let index = self.fields.iter().position(|f| *f == field)?;
        Some((Some(index), slot))
    }

    fn expected_names(&self) -> String {
        let mut names: Vec<String> = self
            .fields
            .iter()
            .map(|f| format!("{}.{f}.<slot>", self.optimizer))
            .collect();
        if self.counts_steps {
            names.push(format!("{}.step.<slot>", self.optimizer));
        }
        if names.is_empty() {
            format!("unexpected: {} keeps no state", self.optimizer)
        } else {
            format!("unexpected name, expected one of {}", names.join(", "))
        }
    }
}

/// The integer in a one-element tensor, if it is one.
fn step_count(tensor: &Tensor) -> Option<u64> {
    let value = tensor.item().ok()?;
    let exact = value >= 0.0 && value.fract() == 0.0 && value <= (1u64 << 24) as f32;
    exact.then_some(value as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states() -> SlotStates {
        let mut states = SlotStates::new("adam", vec!["exp_avg", "exp_avg_sq"], true);
        states.get_or_zeros(2, &[2]).step = 3;
        states.get_or_zeros(0, &[1, 3]).buffers[1] = Tensor::full(&[1, 3], 0.5);
        states
    }

    #[test]
    fn export_names_slots_in_order_and_import_restores_them() {
        let states = states();
        let exported = states.export();
        let names: Vec<&str> = exported.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "adam.exp_avg.0",
                "adam.exp_avg_sq.0",
                "adam.step.0",
                "adam.exp_avg.2",
                "adam.exp_avg_sq.2",
                "adam.step.2"
            ]
        );
        let mut fresh = SlotStates::new("adam", vec!["exp_avg", "exp_avg_sq"], true);
        fresh.import(&exported).unwrap();
        assert_eq!(fresh.slots, states.slots);
    }

    #[test]
    fn import_lists_every_problem_and_keeps_the_old_state() {
        let mut states = states();
        let before = states.slots.clone();
        let bad = vec![
            ("adam.exp_avg.0".to_string(), Tensor::zeros(&[2])),
            ("adam.exp_avg_sq.0".to_string(), Tensor::zeros(&[3])),
            ("adam.step.0".to_string(), Tensor::full(&[1], 1.5)),
            ("adam.exp_avg.1".to_string(), Tensor::zeros(&[2])),
            ("adam.exp_avg.1".to_string(), Tensor::zeros(&[2])),
            ("sgd.momentum.4".to_string(), Tensor::zeros(&[2])),
            ("adam.exp_avg.x".to_string(), Tensor::zeros(&[2])),
        ];
        let err = states.import(&bad).unwrap_err().to_string();
        assert_eq!(
            err,
            "adam: load_state: 6 problem(s):\n  \
             adam.step.0: a step count is one non-negative integer, found Tensor[1] [1.5000]\n  \
             adam.exp_avg.1: given twice\n  \
             sgd.momentum.4: unexpected name, expected one of adam.exp_avg.<slot>, \
             adam.exp_avg_sq.<slot>, adam.step.<slot>\n  \
             adam.exp_avg.x: unexpected name, expected one of adam.exp_avg.<slot>, \
             adam.exp_avg_sq.<slot>, adam.step.<slot>\n  \
             slot 0: fields exp_avg, exp_avg_sq have different shapes [2], [3]\n  \
             slot 1: missing adam.exp_avg_sq.1, adam.step.1"
        );
        assert_eq!(states.slots, before);
    }

    #[test]
    fn state_that_does_not_fit_the_parameters_is_an_error() {
        let states = states();
        let grads = vec![Some(Tensor::zeros(&[3])), None, None];
        let params = vec![
            Tensor::zeros(&[3]),
            Tensor::zeros(&[5]),
            Tensor::zeros(&[2]),
        ];
        let err = states.check_fits(&params, &grads).unwrap_err();
        assert_eq!(
            err.to_string(),
            "adam: slot 0: state [1, 3] does not match parameter [3]"
        );
        let err = states.check_fits(&params[..2], &grads[..2]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "adam: state for slot 2, but only 2 parameters"
        );
    }
}
