//! The tape: a Wengert list of values, each with the rule that sends its gradient to its inputs.
//!
//! Every op appends one node. A node's inputs always sit earlier in the list, so the list is
//! already in topological order: [`Tape::backward`] walks it once from the end, with no sort
//! and no recursion (ResNet-152 and DenseNet-201 are hundreds of nodes deep). Backward rules
//! only *add* into their inputs' gradients, so a value used twice receives the sum.
//!
//! Backward consumes the tape. As the walk passes a node, the node's saved tensors and its
//! value are dropped, so activation memory falls as backward proceeds.

use std::sync::atomic::{AtomicU64, Ordering};

use super::broadcast::sum_to_shape;
use crate::error::{fmt_shape, Error, Result};
use crate::parallel::on_worker;
use crate::tensor::elementwise;
use crate::Tensor;

/// A handle to a value recorded on a [`Tape`]. Cheap to copy; only valid on its own tape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Var {
    tape: u64,
    index: usize,
}

impl Var {
    /// Position of this value on its tape (0 for the first value recorded).
    pub fn index(self) -> usize {
        self.index
    }
}

/// The rule that turns a node's output gradient into gradients for its inputs.
pub type BackwardFn = Box<dyn FnOnce(&Tensor, &mut GradSink<'_>) + Send>;

struct Node {
    value: Option<Tensor>,
    inputs: Vec<usize>,
    backward: Option<BackwardFn>,
    requires_grad: bool,
    retain_grad: bool,
    op: &'static str,
}

/// A reverse-mode autodiff tape.
///
/// ```
/// use convgrad::{Tape, Tensor};
/// let mut tape = Tape::new();
/// let x = tape.param(Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3])?);
/// let y = tape.mul(x, x)?; // y = x^2
/// let loss = tape.sum(y)?;
/// let grads = tape.backward(loss)?;
/// assert_eq!(grads.get(x).unwrap().data(), &[2.0, 4.0, 6.0]); // dy/dx = 2x
/// # Ok::<(), convgrad::Error>(())
/// ```
pub struct Tape {
    id: u64,
    nodes: Vec<Node>,
}

static NEXT_TAPE_ID: AtomicU64 = AtomicU64::new(1);

impl Default for Tape {
    fn default() -> Self {
        Tape::new()
    }
}

impl Tape {
    pub fn new() -> Tape {
        Tape {
            id: NEXT_TAPE_ID.fetch_add(1, Ordering::Relaxed),
            nodes: Vec::new(),
        }
    }

    /// Number of values recorded.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Records a leaf value. Gradients are computed for leaves with `requires_grad`.
    pub fn leaf(&mut self, value: Tensor, requires_grad: bool) -> Var {
        self.push(Node {
            value: Some(value),
            inputs: Vec::new(),
            backward: None,
            requires_grad,
            retain_grad: requires_grad,
            op: "leaf",
        })
    }

    /// A trainable leaf: its gradient is returned by [`Tape::backward`].
    pub fn param(&mut self, value: Tensor) -> Var {
        self.leaf(value, true)
    }

    /// A constant leaf (data, targets): no gradient flows into it.
    pub fn input(&mut self, value: Tensor) -> Var {
        self.leaf(value, false)
    }

    /// The value of a recorded variable.
    pub fn value(&self, var: Var) -> Result<&Tensor> {
        self.check(var)?;
        self.nodes[var.index]
            .value
            .as_ref()
            .ok_or_else(|| Error::tape(format!("value {} was already freed", var.index)))
    }

    /// A cheap (shared-buffer) copy of a variable's value, for an op to compute with and save.
    pub(crate) fn get(&self, var: Var) -> Result<Tensor> {
        self.value(var).cloned()
    }

    /// The shape of a recorded variable.
    pub fn shape(&self, var: Var) -> Result<&[usize]> {
        Ok(self.value(var)?.shape())
    }

    /// Whether gradients flow to this variable (it is a parameter or depends on one).
    pub fn requires_grad(&self, var: Var) -> Result<bool> {
        self.check(var)?;
        Ok(self.nodes[var.index].requires_grad)
    }

    /// The name of the op that produced this variable (`"leaf"` for leaves).
    pub fn op_name(&self, var: Var) -> Result<&'static str> {
        self.check(var)?;
        Ok(self.nodes[var.index].op)
    }

    /// Also return this intermediate value's gradient from [`Tape::backward`]
    /// (to look at how gradients flow through a deep network, for instance).
    pub fn retain_grad(&mut self, var: Var) -> Result<()> {
        self.check(var)?;
        self.nodes[var.index].retain_grad = true;
        Ok(())
    }

    /// Checks that `var` belongs to this tape.
    pub fn check(&self, var: Var) -> Result<()> {
        if var.tape != self.id || var.index >= self.nodes.len() {
            return Err(Error::tape(format!(
                "variable {} belongs to another tape",
                var.index
            )));
        }
        Ok(())
    }

    fn push(&mut self, node: Node) -> Var {
        self.nodes.push(node);
        Var {
            tape: self.id,
            index: self.nodes.len() - 1,
        }
    }

    /// Records the result of an op.
    ///
    /// `backward` receives the gradient of the result and sends gradients to `inputs` through
    /// the [`GradSink`], by their position in `inputs`. It is stored only when some input
    /// requires a gradient; otherwise nothing but the value is recorded. This is how every op
    /// in convgrad is built, and how a user adds an op of their own:
    ///
    /// ```
    /// use convgrad::{Tape, Tensor};
    /// let mut tape = Tape::new();
    /// let x = tape.param(Tensor::from_vec(vec![3.0], &[1])?);
    /// let x_value = tape.value(x)?.clone();
    /// let cube = x_value.map(|v| v * v * v);
    /// let y = tape.custom_op("cube", &[x], cube, move |grad, sink| {
    ///     let dx = grad.data()[0] * 3.0 * x_value.data()[0].powi(2);
    ///     sink.accumulate(0, Tensor::from_vec(vec![dx], &[1]).unwrap());
    /// })?;
    /// let grads = tape.backward(y)?;
    /// assert_eq!(grads.get(x).unwrap().data(), &[27.0]);
    /// # Ok::<(), convgrad::Error>(())
    /// ```
    pub fn custom_op(
        &mut self,
        op: &'static str,
        inputs: &[Var],
        value: Tensor,
        backward: impl FnOnce(&Tensor, &mut GradSink<'_>) + Send + 'static,
    ) -> Result<Var> {
        for &input in inputs {
            self.check(input)?;
        }
        Ok(self.record(op, inputs, value, backward))
    }

    /// [`Tape::custom_op`] for ops of this crate, whose inputs are already checked.
    pub(crate) fn record(
        &mut self,
        op: &'static str,
        inputs: &[Var],
        value: Tensor,
        backward: impl FnOnce(&Tensor, &mut GradSink<'_>) + Send + 'static,
    ) -> Var {
        let requires_grad = inputs.iter().any(|v| self.nodes[v.index].requires_grad);
        self.push(Node {
            value: Some(value),
            inputs: inputs.iter().map(|v| v.index).collect(),
            backward: requires_grad.then(|| Box::new(backward) as BackwardFn),
            requires_grad,
            retain_grad: false,
            op,
        })
    }

    /// Gradients of the scalar `loss` with respect to every parameter (and retained value).
    pub fn backward(self, loss: Var) -> Result<Gradients> {
        self.check(loss)?;
        let shape = self.shape(loss)?.to_vec();
        if shape.iter().product::<usize>() != 1 {
            return Err(Error::tape(format!(
                "backward starts from a one-element loss, this one is {} (use backward_with \
                 to give the output's gradient)",
                fmt_shape(&shape)
            )));
        }
        self.backward_with(loss, Tensor::ones(&shape))
    }

    /// Backward from any output, given the gradient of some scalar with respect to it.
    pub fn backward_with(self, output: Var, output_grad: Tensor) -> Result<Gradients> {
        on_worker(move || self.backward_on_worker(output, output_grad))
    }

    fn backward_on_worker(mut self, output: Var, output_grad: Tensor) -> Result<Gradients> {
        let out_shape = self.shape(output)?;
        if out_shape != output_grad.shape() {
            return Err(Error::shape(
                "backward",
                format!(
                    "output is {} but its gradient is {}",
                    fmt_shape(out_shape),
                    fmt_shape(output_grad.shape())
                ),
            ));
        }
        let mut grads: Vec<Option<Tensor>> = vec![None; output.index + 1];
        grads[output.index] = Some(output_grad);
        // Nodes after `output` cannot contribute to it.
        self.nodes.truncate(output.index + 1);
        for index in (0..=output.index).rev() {
            let node = &mut self.nodes[index];
            let value = node.value.take();
            let Some(grad) = grads[index].take() else {
                continue;
            };
            if let Some(backward) = node.backward.take() {
                let mut sink = GradSink {
                    nodes: &self.nodes,
                    inputs: &self.nodes[index].inputs,
                    grads: &mut grads,
                };
                backward(&grad, &mut sink);
            }
            // Only inputs (earlier nodes) receive gradients from here on, so this slot is final.
            let node = &self.nodes[index];
            if node.retain_grad && node.requires_grad {
                grads[index] = Some(grad);
            }
            drop(value);
        }
        Ok(Gradients {
            tape: self.id,
            grads,
        })
    }
}

/// Where a backward rule sends its gradients.
pub struct GradSink<'a> {
    nodes: &'a [Node],
    inputs: &'a [usize],
    grads: &'a mut [Option<Tensor>],
}

impl GradSink<'_> {
    /// Whether input `k` (by position in the op's inputs) needs a gradient at all.
    pub fn wants(&self, k: usize) -> bool {
        self.nodes[self.inputs[k]].requires_grad
    }

    /// Adds `grad` into input `k`'s gradient.
    ///
    /// A gradient of a broadcast input arrives at the output's shape and is summed back to the
    /// input's shape here, the one place where broadcasting is undone.
    pub fn accumulate(&mut self, k: usize, grad: Tensor) {
        let index = self.inputs[k];
        let node = &self.nodes[index];
        if !node.requires_grad {
            return;
        }
        let shape = node
            .value
            .as_ref()
            .expect("an input's value lives until its own backward")
            .shape();
        let grad = if grad.shape() == shape {
            grad
        } else {
            sum_to_shape(&grad, shape)
        };
        match &mut self.grads[index] {
            Some(existing) => elementwise::update(existing.data_mut(), grad.data(), |e, g| *e += g),
            slot @ None => *slot = Some(grad),
        }
    }
}

/// The gradients computed by [`Tape::backward`], looked up by variable.
#[derive(Debug)]
pub struct Gradients {
    tape: u64,
    /// Indexed by the variable's position on the tape.
    grads: Vec<Option<Tensor>>,
}

impl Gradients {
    /// The gradient of a parameter (or retained value); `None` if no gradient reached it.
    pub fn get(&self, var: Var) -> Option<&Tensor> {
        if var.tape != self.tape {
            return None;
        }
        self.grads.get(var.index)?.as_ref()
    }

    /// Removes and returns a gradient (to hand it to an optimiser without copying).
    pub fn take(&mut self, var: Var) -> Option<Tensor> {
        if var.tape != self.tape {
            return None;
        }
        self.grads.get_mut(var.index)?.take()
    }

    /// Number of gradients held.
    pub fn len(&self) -> usize {
        self.grads.iter().flatten().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_used_twice_gets_the_sum_of_its_gradients() {
        let mut tape = Tape::new();
        let x = tape.param(Tensor::from_vec(vec![2.0, -1.0], &[2]).unwrap());
        let a = tape.mul(x, x).unwrap(); // x^2
        let b = tape.add(a, x).unwrap(); // x^2 + x
        let loss = tape.sum(b).unwrap();
        let grads = tape.backward(loss).unwrap();
        assert_eq!(grads.get(x).unwrap().data(), &[5.0, -1.0]); // 2x + 1
    }

    #[test]
    fn inputs_record_no_backward_and_get_no_gradient() {
        let mut tape = Tape::new();
        let x = tape.input(Tensor::ones(&[3]));
        let w = tape.param(Tensor::full(&[3], 2.0));
        let y = tape.mul(x, x).unwrap();
        assert!(!tape.requires_grad(y).unwrap());
        assert!(tape.nodes[y.index].backward.is_none());
        let z = tape.mul(y, w).unwrap();
        let loss = tape.sum(z).unwrap();
        let grads = tape.backward(loss).unwrap();
        assert!(grads.get(x).is_none());
        assert_eq!(grads.get(w).unwrap().data(), &[1.0, 1.0, 1.0]);
        assert_eq!(grads.len(), 1);
    }

    #[test]
    fn a_very_deep_chain_needs_no_recursion() {
        let mut tape = Tape::new();
        let x = tape.param(Tensor::scalar(1.0));
        let mut y = x;
        for _ in 0..100_000 {
            y = tape.mul(y, x).unwrap(); // y = x^(n+1)
        }
        let grads = tape.backward(y).unwrap();
        assert_eq!(grads.get(x).unwrap().item().unwrap(), 100_001.0);
    }

    #[test]
    fn misuse_is_reported() {
        let mut one = Tape::new();
        let mut two = Tape::new();
        let a = one.param(Tensor::ones(&[2]));
        let b = two.param(Tensor::ones(&[2]));
        let err = one.add(a, b).unwrap_err().to_string();
        assert_eq!(err, "tape: variable 0 belongs to another tape");
        let err = one.backward(a).unwrap_err().to_string();
        assert!(err.contains("one-element loss, this one is [2]"), "{err}");
    }

    #[test]
    fn retained_intermediate_gradients_are_returned() {
        let mut tape = Tape::new();
        let x = tape.param(Tensor::full(&[2], 3.0));
        let h = tape.mul(x, x).unwrap();
        tape.retain_grad(h).unwrap();
        let loss = tape.sum(h).unwrap();
        let grads = tape.backward(loss).unwrap();
        assert_eq!(grads.get(h).unwrap().data(), &[1.0, 1.0]);
        assert_eq!(grads.get(x).unwrap().data(), &[6.0, 6.0]);
    }
}
