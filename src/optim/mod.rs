//! Optimisers with PyTorch's semantics, and learning-rate schedules.
//!
//! An [`Optimizer`] updates a list of parameter tensors in place from their gradients, matched by
//! index ("slot"): the slots are a [`ParamStore`]'s tensors in graph order, and
//! [`trainable_grads`] turns one backward pass into the gradient list, with `None` for buffers
//! (BatchNorm's running statistics) and for parameters no gradient reached. A `None` slot is
//! skipped entirely, as PyTorch skips a parameter whose `.grad` is `None`: its state is neither
//! created nor advanced.
//!
//! The update rules are `torch.optim`'s, written out with their formulas in each file:
//! [`Sgd`] (momentum, dampening, Nesterov, L2 weight decay), [`Adam`] (and AdamW, AMSGrad) and
//! [`RmsProp`] (momentum, centered). Each one reproduces the *floating-point operations* of
//! PyTorch's single-tensor implementation, the default on CPU:
//!
//! - tensors are `f32`, while scalar coefficients (`lr`, `1 - beta1`, bias corrections, ...) are
//!   computed in `f64`, as Python floats are, and rounded to `f32` only when they meet a tensor;
//!   that is why hyperparameters and the learning rate are `f64` here;
//! - where PyTorch's CPU kernels compute `a + s * b` (`add` with `alpha`, `addcmul`, `lerp`) they
//!   compile to a fused multiply-add, so the rules here use [`f32::mul_add`] at those places and
//!   plain arithmetic elsewhere (`addcdiv` divides, then adds).
//!
//! The unit tests compare 5 steps of every configuration with PyTorch's output
//! (`scripts/torch_optim.py`): SGD and RMSprop agree bit for bit, Adam to 2 ulps, because
//! PyTorch's CPU `sqrt` of a tensor is not correctly rounded (it is one ulp off on some inputs)
//! while Rust's is.
//!
//! State (momentum buffers, moment estimates, step counts) is created lazily, per slot, with the
//! parameter's shape. [`Optimizer::state`] exports it as named tensors for a checkpoint
//! (`adam.exp_avg.3`, `adam.step.3`, ...) and [`Optimizer::load_state`] validates and restores it,
//! so a resumed run continues bit for bit. Hyperparameters are not part of the state: they come
//! from the constructor, and the learning rate from a pure [`Schedule`].
//!
//! ```
//! use convgrad::optim::{Optimizer, Schedule, Sgd};
//! use convgrad::Tensor;
//! // Minimise (w - 3)^2 with SGD and Nesterov momentum, decaying the lr by 10x at step 50.
//! let schedule = Schedule::parse("step:50:0.1", 0.1, 100)?;
//! let mut sgd = Sgd::builder(schedule.lr_at(0)).momentum(0.9).nesterov(true).build()?;
//! let mut params = vec![Tensor::scalar(0.0)];
//! for step in 0..100 {
//!     sgd.set_lr(schedule.lr_at(step));
//!     let grad = params[0].map(|w| 2.0 * (w - 3.0));
//!     sgd.step(&mut params, &[Some(grad)])?;
//! }
//! assert!((params[0].item()? - 3.0).abs() < 1e-4);
//! # Ok::<(), convgrad::Error>(())
//! ```
//!
//! [`ParamStore`]: crate::graph::ParamStore

pub mod adam;
pub mod rmsprop;
pub mod schedule;
pub mod sgd;
mod state;
#[cfg(test)]
mod test_util;

pub use adam::{Adam, AdamBuilder};
pub use rmsprop::{RmsProp, RmsPropBuilder};
pub use schedule::{Schedule, ScheduleKind};
pub use sgd::{Sgd, SgdBuilder};

use crate::error::{fmt_shape, Error, Result};
use crate::nn::ParamKind;
use crate::{Gradients, Tensor, Var};

/// Updates parameters in place from their gradients, slot by slot.
///
/// ```
/// use convgrad::optim::{Adam, Optimizer};
/// use convgrad::Tensor;
/// let mut adam = Adam::new(0.01)?;
/// let mut params = vec![Tensor::ones(&[2, 2]), Tensor::zeros(&[3])];
/// // Slot 1 is a buffer (or got no gradient): skipped, and no state is made for it.
/// adam.step(&mut params, &[Some(Tensor::full(&[2, 2], 0.5)), None])?;
/// assert!(params[0].data().iter().all(|&w| (w - 0.99).abs() < 1e-6));
/// let names: Vec<String> = adam.state().into_iter().map(|(name, _)| name).collect();
/// assert_eq!(names, ["adam.exp_avg.0", "adam.exp_avg_sq.0", "adam.step.0"]);
/// # Ok::<(), convgrad::Error>(())
/// ```
pub trait Optimizer {
    /// The optimiser's name as errors and state names spell it: `sgd`, `adam`, `adamw`, `rmsprop`.
    fn name(&self) -> &'static str;

    /// One update. `grads[i]` is the gradient of `params[i]`; a `None` slot is skipped. Errors if
    /// the lists differ in length, a gradient's shape differs from its parameter's, or loaded
    /// state does not fit its parameter; the parameters are then left unchanged.
    fn step(&mut self, params: &mut [Tensor], grads: &[Option<Tensor>]) -> Result<()>;

    /// The learning rate the next [`Optimizer::step`] uses.
    fn lr(&self) -> f64;

    /// Sets the learning rate (a schedule's value for this epoch or step).
    fn set_lr(&mut self, lr: f64);

    /// The optimiser's state as named tensors, sorted by slot, for a checkpoint. Step counts are
    /// one-element tensors (exact up to 2^24 steps, like PyTorch's `float32` step).
    fn state(&self) -> Vec<(String, Tensor)>;

    /// Replaces the state with one exported by [`Optimizer::state`] of an optimiser with the same
    /// configuration. Every unknown, missing or inconsistent entry is listed in one error, and
    /// on error the current state is kept.
    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()>;
}

/// The gradient list for [`Optimizer::step`] from one backward pass: for each slot of a
/// [`ParamStore`](crate::graph::ParamStore) (`kinds`, and the tape variables `params` of
/// [`TapeOutput::params`](crate::graph::TapeOutput)), the gradient taken out of `grads` (no copy),
/// or `None` for a buffer or a parameter no gradient reached.
pub fn trainable_grads(
    kinds: &[ParamKind],
    params: &[Var],
    grads: &mut Gradients,
) -> Result<Vec<Option<Tensor>>> {
    if kinds.len() != params.len() {
        return Err(Error::invalid(
            "trainable_grads",
            format!(
                "{} parameter kinds for {} tape variables",
                kinds.len(),
                params.len()
            ),
        ));
    }
    Ok(kinds
        .iter()
        .zip(params)
        .map(|(kind, &var)| match kind {
            ParamKind::Trainable => grads.take(var),
            ParamKind::Buffer => None,
        })
        .collect())
}

/// Checks that `grads` pairs with `params` and that every gradient has its parameter's shape.
fn check_grads(optimizer: &str, params: &[Tensor], grads: &[Option<Tensor>]) -> Result<()> {
    if params.len() != grads.len() {
        return Err(Error::invalid(
            optimizer,
            format!("{} parameters but {} gradients", params.len(), grads.len()),
        ));
    }
    for (slot, (param, grad)) in params.iter().zip(grads).enumerate() {
        if let Some(grad) = grad {
            if grad.shape() != param.shape() {
                return Err(Error::shape(
                    optimizer,
                    format!(
                        "slot {slot}: gradient {} does not match parameter {}",
                        fmt_shape(grad.shape()),
                        fmt_shape(param.shape())
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Checks a hyperparameter, naming the optimiser and the bound it breaks.
fn check_arg(optimizer: &str, name: &str, value: f64, ok: bool, expected: &str) -> Result<()> {
    if ok && value.is_finite() {
        Ok(())
    } else {
        Err(Error::invalid(
            optimizer,
            format!("{name} = {value} is invalid: expected {expected}"),
        ))
    }
}

/// `value >= 0`, finite.
fn check_non_negative(optimizer: &str, name: &str, value: f64) -> Result<()> {
    check_arg(optimizer, name, value, value >= 0.0, "a finite value >= 0")
}

/// `0 <= value < 1`, as PyTorch requires of betas, and of momentum-like averaging factors.
fn check_unit_interval(optimizer: &str, name: &str, value: f64) -> Result<()> {
    check_arg(
        optimizer,
        name,
        value,
        (0.0..1.0).contains(&value),
        "a value in [0, 1)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tape;

    #[test]
    fn trainable_grads_skips_buffers_and_missing_gradients() {
        let mut tape = Tape::new();
        let w = tape.param(Tensor::ones(&[2]));
        let unused = tape.param(Tensor::ones(&[2]));
        let running_mean = tape.input(Tensor::zeros(&[2]));
        let x = tape.input(Tensor::from_vec(vec![2.0, 3.0], &[2]).unwrap());
        let y = tape.mul(w, x).unwrap();
        let y = tape.add(y, running_mean).unwrap();
        let loss = tape.sum(y).unwrap();
        let mut grads = tape.backward(loss).unwrap();
        let kinds = [
            ParamKind::Trainable,
            ParamKind::Trainable,
            ParamKind::Buffer,
        ];
        let out = trainable_grads(&kinds, &[w, unused, running_mean], &mut grads).unwrap();
        assert_eq!(out[0].as_ref().unwrap().data(), &[2.0, 3.0]);
        assert!(out[1].is_none() && out[2].is_none());
        let err = trainable_grads(&kinds, &[w], &mut grads).unwrap_err();
        assert_eq!(
            err.to_string(),
            "trainable_grads: 3 parameter kinds for 1 tape variables"
        );
    }

    #[test]
    fn mismatched_gradients_are_errors_naming_slot_and_shapes() {
        let mut params = vec![Tensor::zeros(&[2, 3]), Tensor::zeros(&[4])];
        let mut sgd = Sgd::new(0.1).unwrap();
        let err = sgd
            .step(&mut params, &[None, Some(Tensor::zeros(&[2, 2]))])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "sgd: slot 1: gradient [2, 2] does not match parameter [4]"
        );
        let err = sgd.step(&mut params, &[None]).unwrap_err();
        assert_eq!(err.to_string(), "sgd: 2 parameters but 1 gradients");
        assert!(matches!(err, Error::InvalidArgument { .. }));
    }
}
