//! Stochastic gradient descent with momentum, dampening, Nesterov and L2 weight decay, as
//! `torch.optim.SGD`.
//!
//! With gradient `g`, parameter `p`, learning rate `lr`, momentum `mu`, dampening `tau` and weight
//! decay `wd`, one step is
//!
//! ```text
//! g = g + wd * p                       (if wd != 0: L2 decay, added to the gradient)
//! b = g                                (first step: no dampening, as PyTorch)
//! b = mu * b + (1 - tau) * g           (later steps)
//! g = g + mu * b   if Nesterov,  else  g = b        (if mu != 0)
//! p = p - lr * g
//! ```
//!
//! The only state is the momentum buffer `b`, exported as `sgd.momentum.<slot>`; without
//! momentum SGD keeps no state at all.

use super::state::SlotStates;
use super::{check_grads, check_non_negative, Optimizer};
use crate::error::{Error, Result};
use crate::tensor::elementwise;
use crate::Tensor;

const NAME: &str = "sgd";

/// SGD's hyperparameters, with PyTorch's defaults; [`SgdBuilder::build`] checks them.
#[derive(Clone, Debug, PartialEq)]
pub struct SgdBuilder {
    lr: f64,
    momentum: f64,
    dampening: f64,
    nesterov: bool,
    weight_decay: f64,
}

impl SgdBuilder {
    /// Momentum factor `mu` (default 0: plain SGD).
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Dampening `tau` of the gradient in the momentum buffer (default 0).
    pub fn dampening(mut self, dampening: f64) -> Self {
        self.dampening = dampening;
        self
    }

    /// Nesterov momentum (default off); needs momentum > 0 and no dampening.
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }

    /// L2 penalty `wd`, added to the gradient as `wd * p` (default 0).
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// The optimiser, or `Error::InvalidArgument` for a negative lr, momentum or weight decay,
    /// or Nesterov without momentum or with dampening (PyTorch's checks).
    pub fn build(self) -> Result<Sgd> {
        check_non_negative(NAME, "lr", self.lr)?;
        check_non_negative(NAME, "momentum", self.momentum)?;
        check_non_negative(NAME, "weight_decay", self.weight_decay)?;
        if !self.dampening.is_finite() {
            return Err(Error::invalid(
                NAME,
                format!("dampening = {} is not finite", self.dampening),
            ));
        }
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(Error::invalid(
                NAME,
                format!(
                    "Nesterov momentum needs momentum > 0 and dampening = 0, got momentum = {} \
                     and dampening = {}",
                    self.momentum, self.dampening
                ),
            ));
        }
        let fields = if self.momentum != 0.0 {
            vec!["momentum"]
        } else {
            vec![]
        };
        Ok(Sgd {
            states: SlotStates::new(NAME, fields, false),
            hyper: self,
        })
    }
}

/// `torch.optim.SGD`: see the [module docs](self) for the update rule.
///
/// ```
/// use convgrad::optim::{Optimizer, Sgd};
/// use convgrad::Tensor;
/// let mut sgd = Sgd::builder(0.1).momentum(0.9).weight_decay(5e-4).build()?;
/// let mut params = vec![Tensor::ones(&[3])];
/// sgd.step(&mut params, &[Some(Tensor::full(&[3], 2.0))])?;
/// // p - lr * (g + wd * p) = 1 - 0.1 * 2.0005
/// assert!((params[0].data()[0] - 0.79995).abs() < 1e-6);
/// assert!(Sgd::new(-0.1).is_err());
/// # Ok::<(), convgrad::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Sgd {
    hyper: SgdBuilder,
    states: SlotStates,
}

impl Sgd {
    /// Plain SGD with PyTorch's defaults (no momentum, no weight decay); PyTorch's default lr is
    /// 1e-3.
    pub fn new(lr: f64) -> Result<Sgd> {
        Sgd::builder(lr).build()
    }

    /// Hyperparameters to set before [`SgdBuilder::build`].
    pub fn builder(lr: f64) -> SgdBuilder {
        SgdBuilder {
            lr,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        }
    }
}

impl Optimizer for Sgd {
    fn name(&self) -> &'static str {
        NAME
    }

    fn step(&mut self, params: &mut [Tensor], grads: &[Option<Tensor>]) -> Result<()> {
        check_grads(NAME, params, grads)?;
        self.states.check_fits(params, grads)?;
        let h = &self.hyper;
        // Scalars are Python floats in PyTorch: computed in f64, rounded when they meet a tensor.
        let weight_decay = h.weight_decay as f32;
        let momentum = h.momentum as f32;
        let grad_scale = (1.0 - h.dampening) as f32;
        let neg_lr = (-h.lr) as f32;
        for (slot, (param, grad)) in params.iter_mut().zip(grads).enumerate() {
            let Some(grad) = grad else { continue };
            let p = param.data_mut();
            let g = grad.data();
            // Weight decay folded into the gradient, as PyTorch does before the momentum.
            let decayed = |g: f32, p: f32| {
                if weight_decay != 0.0 {
                    weight_decay.mul_add(p, g)
                } else {
                    g
                }
            };
            if h.momentum == 0.0 {
                elementwise::update(p, g, |p, g| *p = neg_lr.mul_add(decayed(g, *p), *p));
                continue;
            }
            // The buffer starts as the first (decayed) gradient, without dampening; after
            // that `b = momentum * b + (1 - dampening) * g`. One pass updates both the
            // buffer and the parameter.
            let fresh = self.states.get_mut(slot).is_none();
            if fresh {
                self.states.insert(
                    slot,
                    vec![Tensor::from_parts(vec![0.0; g.len()], grad.shape())],
                );
            }
            let state = self.states.get_mut(slot).expect("made above");
            let buffer = state.buffers[0].data_mut();
            let nesterov = h.nesterov;
            elementwise::update2(p, buffer, g, |p, b, g| {
                let g = decayed(g, *p);
                *b = if fresh {
                    g
                } else {
                    grad_scale.mul_add(g, *b * momentum)
                };
                let step = if nesterov {
                    momentum.mul_add(*b, g)
                } else {
                    *b
                };
                *p = neg_lr.mul_add(step, *p);
            });
        }
        Ok(())
    }

    fn lr(&self) -> f64 {
        self.hyper.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.hyper.lr = lr;
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        self.states.export()
    }

    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        self.states.import(state)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{
        assert_chunked_update_is_exact, assert_matches_torch, assert_resumes_exactly,
    };
    use super::*;

    // Expected values: python3 scripts/torch_optim.py (torch 2.15, CPU).
    // Each constant holds the final parameters (slots 0 and 1) after 5 steps of
    // PyTorch's optimiser, configured as its comment says.

    /// SGD({'lr': 0.1})
    #[rustfmt::skip]
    const SGD_PLAIN: [&[f64]; 2] = [
        &[
            -1.0500000e+00, 3.7500000e-01, -4.0000001e-01, 1.0250000e+00, 2.4999999e-01,
            -5.2499998e-01,
        ],
        &[
            8.2499999e-01, 4.9999997e-02, -7.2500002e-01, 7.0000005e-01,
        ],
    ];

    /// SGD({'lr': 0.1, 'momentum': 0.9, 'nesterov': True, 'weight_decay': 0.01})
    #[rustfmt::skip]
    const SGD_NESTEROV_WD: [&[f64]; 2] = [
        &[
            -1.1074903e+00, 1.6779056e-01, 1.2204918e-01, 9.0049982e-01, 4.5736164e-01,
            -2.9516271e-01,
        ],
        &[
            7.0385200e-01, 2.6071385e-01, -4.9181050e-01, 7.8347039e-01,
        ],
    ];

    /// SGD({'lr': 0.05, 'momentum': 0.8, 'dampening': 0.3})
    #[rustfmt::skip]
    const SGD_DAMPENING: [&[f64]; 2] = [
        &[
            -9.9748999e-01, 3.1630999e-01, -1.7014000e-01, 9.7985995e-01, 2.2470000e-01,
            -4.8379004e-01,
        ],
        &[
            7.7985996e-01, 2.4699997e-02, -6.8379003e-01, 6.3001001e-01,
        ],
    ];

    #[test]
    fn plain_sgd_matches_pytorch() {
        let mut sgd = Sgd::new(0.1).unwrap();
        assert_matches_torch(&mut sgd, SGD_PLAIN, 1e-6);
        assert!(sgd.state().is_empty(), "plain SGD keeps no state");
    }

    #[test]
    fn large_parameters_update_in_chunks_exactly() {
        assert_chunked_update_is_exact(|| Box::new(Sgd::new(0.1).unwrap()));
        assert_chunked_update_is_exact(|| {
            let sgd = Sgd::builder(0.1)
                .momentum(0.9)
                .dampening(0.1)
                .weight_decay(0.01);
            Box::new(sgd.build().unwrap())
        });
        assert_chunked_update_is_exact(|| {
            let sgd = Sgd::builder(0.1).momentum(0.9).nesterov(true);
            Box::new(sgd.build().unwrap())
        });
    }

    #[test]
    fn nesterov_with_weight_decay_matches_pytorch() {
        let mut sgd = Sgd::builder(0.1)
            .momentum(0.9)
            .nesterov(true)
            .weight_decay(0.01)
            .build()
            .unwrap();
        assert_matches_torch(&mut sgd, SGD_NESTEROV_WD, 1e-6);
    }

    #[test]
    fn momentum_with_dampening_matches_pytorch() {
        let mut sgd = Sgd::builder(0.05)
            .momentum(0.8)
            .dampening(0.3)
            .build()
            .unwrap();
        assert_matches_torch(&mut sgd, SGD_DAMPENING, 1e-6);
    }

    #[test]
    #[should_panic(expected = "PyTorch")]
    fn the_comparison_catches_a_missing_nesterov_term() {
        // Negative control: the same run without Nesterov must not pass for the Nesterov values.
        let mut sgd = Sgd::builder(0.1)
            .momentum(0.9)
            .weight_decay(0.01)
            .build()
            .unwrap();
        assert_matches_torch(&mut sgd, SGD_NESTEROV_WD, 1e-6);
    }

    #[test]
    fn resumes_bit_for_bit() {
        assert_resumes_exactly(|| {
            Box::new(
                Sgd::builder(0.1)
                    .momentum(0.9)
                    .nesterov(true)
                    .weight_decay(0.01)
                    .build()
                    .unwrap(),
            )
        });
    }

    #[test]
    fn invalid_hyperparameters_are_named() {
        let err = Sgd::new(-0.1).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }));
        assert_eq!(
            err.to_string(),
            "sgd: lr = -0.1 is invalid: expected a finite value >= 0"
        );
        assert!(Sgd::builder(0.1).momentum(-0.5).build().is_err());
        assert!(Sgd::builder(0.1).weight_decay(f64::NAN).build().is_err());
        let err = Sgd::builder(0.1).nesterov(true).build().unwrap_err();
        assert_eq!(
            err.to_string(),
            "sgd: Nesterov momentum needs momentum > 0 and dampening = 0, got momentum = 0 and \
             dampening = 0"
        );
        assert!(Sgd::builder(0.1)
            .momentum(0.9)
            .dampening(0.1)
            .nesterov(true)
            .build()
            .is_err());
    }

    #[test]
    fn plain_sgd_rejects_momentum_state() {
        let mut sgd = Sgd::new(0.1).unwrap();
        let state = vec![("sgd.momentum.0".to_string(), Tensor::zeros(&[2]))];
        let err = sgd.load_state(&state).unwrap_err();
        assert_eq!(
            err.to_string(),
            "sgd: load_state: 1 problem(s):\n  sgd.momentum.0: unexpected: sgd keeps no state"
        );
    }
}
