//! RMSprop, with momentum and the centered variant, as `torch.optim.RMSprop`.
//!
//! With gradient `g`, parameter `p`, learning rate `lr`, smoothing constant `alpha`, epsilon
//! `eps`, weight decay `wd` and momentum `mu`, one step is
//!
//! ```text
//! g = g + wd * p                          (if wd != 0: L2 decay, added to the gradient)
//! s = alpha * s + (1 - alpha) * g * g     (running mean of squared gradients)
//! a = a + (1 - alpha) * (g - a)           (centered only: running mean of gradients)
//! avg = sqrt(s - a * a) + eps             (centered: an estimate of the variance)
//! avg = sqrt(s) + eps                     (otherwise)
//! b = mu * b + g / avg,  p = p - lr * b   (if mu > 0)
//! p = p - lr * g / avg                    (otherwise)
//! ```
//!
//! Note that `eps` is added *outside* the square root, as PyTorch does (TensorFlow adds it
//! inside). The state is exported as `rmsprop.square_avg.<slot>` (`s`),
//! `rmsprop.momentum.<slot>` (`b`), `rmsprop.grad_avg.<slot>` (`a`) and `rmsprop.step.<slot>`
//! (kept, as PyTorch keeps it, though the rule does not use it).

use super::adam::lerp;
use super::state::SlotStates;
use super::{check_grads, check_non_negative, check_unit_interval, Optimizer};
use crate::error::Result;
use crate::Tensor;

const NAME: &str = "rmsprop";

/// RMSprop's hyperparameters, with PyTorch's defaults; [`RmsPropBuilder::build`] checks them.
#[derive(Clone, Debug, PartialEq)]
pub struct RmsPropBuilder {
    lr: f64,
    alpha: f64,
    eps: f64,
    weight_decay: f64,
    momentum: f64,
    centered: bool,
}

impl RmsPropBuilder {
    /// Smoothing constant of the running averages (default 0.99).
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }

    /// Added to the denominator for stability (default 1e-8).
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// L2 penalty, added to the gradient as `wd * p` (default 0).
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Momentum factor (default 0).
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Normalise by an estimate of the gradient's variance rather than its second moment
    /// (default off).
    pub fn centered(mut self, centered: bool) -> Self {
        self.centered = centered;
        self
    }

    /// The optimiser, or `Error::InvalidArgument` for a negative lr, eps, momentum or weight
    /// decay, or alpha outside [0, 1).
    pub fn build(self) -> Result<RmsProp> {
        check_non_negative(NAME, "lr", self.lr)?;
        check_non_negative(NAME, "eps", self.eps)?;
        check_non_negative(NAME, "weight_decay", self.weight_decay)?;
        check_non_negative(NAME, "momentum", self.momentum)?;
        check_unit_interval(NAME, "alpha", self.alpha)?;
        let mut fields = vec!["square_avg"];
        if self.momentum > 0.0 {
            fields.push("momentum");
        }
        if self.centered {
            fields.push("grad_avg");
        }
        Ok(RmsProp {
            states: SlotStates::new(NAME, fields, true),
            hyper: self,
        })
    }
}

/// `torch.optim.RMSprop`: see the [module docs](self) for the update rule.
///
/// ```
/// use convgrad::optim::{Optimizer, RmsProp};
/// use convgrad::Tensor;
/// let mut rmsprop = RmsProp::builder(0.01).centered(true).momentum(0.9).build()?;
/// let mut params = vec![Tensor::zeros(&[4])];
/// for _ in 0..3 {
///     rmsprop.step(&mut params, &[Some(Tensor::full(&[4], 1.0))])?;
/// }
/// assert!(params[0].data().iter().all(|&w| w < 0.0));
/// assert_eq!(rmsprop.state().len(), 4); // square_avg, momentum, grad_avg, step
/// # Ok::<(), convgrad::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct RmsProp {
    hyper: RmsPropBuilder,
    states: SlotStates,
}

impl RmsProp {
    /// RMSprop with PyTorch's defaults: alpha 0.99, eps 1e-8, no weight decay, no momentum, not
    /// centered (PyTorch's default lr is 1e-2).
    pub fn new(lr: f64) -> Result<RmsProp> {
        RmsProp::builder(lr).build()
    }

    /// Hyperparameters to set before [`RmsPropBuilder::build`].
    pub fn builder(lr: f64) -> RmsPropBuilder {
        RmsPropBuilder {
            lr,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
        }
    }
}

impl Optimizer for RmsProp {
    fn name(&self) -> &'static str {
        NAME
    }

    fn step(&mut self, params: &mut [Tensor], grads: &[Option<Tensor>]) -> Result<()> {
        check_grads(NAME, params, grads)?;
        self.states.check_fits(params, grads)?;
        let h = &self.hyper;
        // Scalars are Python floats in PyTorch: computed in f64, rounded when they meet a tensor.
        let alpha = h.alpha as f32;
        let avg_weight = (1.0 - h.alpha) as f32;
        let eps = h.eps as f32;
        let weight_decay = h.weight_decay as f32;
        let momentum = h.momentum as f32;
        let neg_lr = (-h.lr) as f32;
        for (slot, (param, grad)) in params.iter_mut().zip(grads).enumerate() {
            let Some(grad) = grad else { continue };
            let state = self.states.get_or_zeros(slot, param.shape());
            state.step += 1;
            let mut buffers = state.buffers.iter_mut().map(Tensor::data_mut);
            let square_avg = buffers.next().expect("square_avg");
            let mut momentum_buffer = (h.momentum > 0.0).then(|| buffers.next().expect("momentum"));
            let mut grad_avg = h.centered.then(|| buffers.next().expect("grad_avg"));
            for (i, (p, &g)) in param.data_mut().iter_mut().zip(grad.data()).enumerate() {
                let mut g = g;
                if weight_decay != 0.0 {
                    g = weight_decay.mul_add(*p, g);
                }
                let s = &mut square_avg[i];
                *s = (avg_weight * g).mul_add(g, *s * alpha);
                let avg = match grad_avg.as_deref_mut() {
                    Some(grad_avg) => {
                        grad_avg[i] = lerp(grad_avg[i], g, avg_weight);
                        (-grad_avg[i]).mul_add(grad_avg[i], *s).sqrt() + eps
                    }
                    None => s.sqrt() + eps,
                };
                match momentum_buffer.as_deref_mut() {
                    Some(b) => {
                        b[i] = b[i] * momentum + g / avg;
                        *p = neg_lr.mul_add(b[i], *p);
                    }
                    None => *p += neg_lr * g / avg,
                }
            }
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
    use super::super::test_util::{assert_matches_torch, assert_resumes_exactly};
    use super::*;
    use crate::Error;

    // Expected values: python3 scripts/torch_optim.py (torch 2.15, CPU).
    // Each constant holds the final parameters (slots 0 and 1) after 5 steps of
    // PyTorch's optimiser, configured as its comment says.

    /// RMSprop({'lr': 0.01})
    #[rustfmt::skip]
    const RMSPROP: [&[f64]; 2] = [
        &[
            -1.0048690e+00, 2.8861746e-01, -3.6028266e-01, 1.0129706e+00, 1.8561181e-01,
            -5.3401691e-01,
        ],
        &[
            8.1297064e-01, -1.4388178e-02, -7.3401690e-01, 5.2383327e-01,
        ],
    ];

    /// RMSprop({'lr': 0.01, 'alpha': 0.9, 'eps': 1e-06, 'weight_decay': 0.05, 'momentum': 0.5, 'centered': True})
    #[rustfmt::skip]
    const RMSPROP_CENTERED: [&[f64]; 2] = [
        &[
            -9.9415845e-01, 3.2139686e-01, -3.4762326e-01, 9.9237776e-01, 1.9495153e-01,
            -5.5890208e-01,
        ],
        &[
            7.9340422e-01, -4.0911920e-03, -7.5747317e-01, 5.3752798e-01,
        ],
    ];

    #[test]
    fn rmsprop_matches_pytorch() {
        assert_matches_torch(&mut RmsProp::new(0.01).unwrap(), RMSPROP, 1e-6);
    }

    #[test]
    fn centered_rmsprop_with_momentum_and_weight_decay_matches_pytorch() {
        let mut rmsprop = RmsProp::builder(0.01)
            .alpha(0.9)
            .eps(1e-6)
            .weight_decay(0.05)
            .momentum(0.5)
            .centered(true)
            .build()
            .unwrap();
        assert_matches_torch(&mut rmsprop, RMSPROP_CENTERED, 1e-6);
    }

    #[test]
    fn resumes_bit_for_bit() {
        assert_resumes_exactly(|| {
            Box::new(
                RmsProp::builder(0.01)
                    .momentum(0.5)
                    .centered(true)
                    .weight_decay(0.05)
                    .build()
                    .unwrap(),
            )
        });
    }

    #[test]
    fn invalid_hyperparameters_are_named() {
        let err = RmsProp::builder(0.01).alpha(1.5).build().unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }));
        assert_eq!(
            err.to_string(),
            "rmsprop: alpha = 1.5 is invalid: expected a value in [0, 1)"
        );
        assert!(RmsProp::new(-0.01).is_err());
        assert!(RmsProp::builder(0.01).momentum(-0.9).build().is_err());
        assert!(RmsProp::builder(0.01).eps(f64::INFINITY).build().is_err());
    }
}
