//! Adam, AdamW and AMSGrad, as `torch.optim.Adam` and `torch.optim.AdamW`.
//!
//! With gradient `g`, parameter `p`, step count `t` (from 1, per parameter), learning rate `lr`,
//! betas `b1`, `b2`, epsilon `eps` and weight decay `wd`, one step is
//!
//! ```text
//! g = g + wd * p                  Adam:  L2 decay, added to the gradient
//! p = p * (1 - lr * wd)           AdamW: decoupled decay, applied to the parameter first
//! m = m + (1 - b1) * (g - m)      (torch's lerp: the same as b1 * m + (1 - b1) * g)
//! v = b2 * v + (1 - b2) * g * g
//! v_max = max(v_max, v)           (AMSGrad only; v_max then replaces v below)
//! denom = sqrt(v) / sqrt(1 - b2^t) + eps
//! p = p - (lr / (1 - b1^t)) * m / denom
//! ```
//!
//! in this order of operations, which is PyTorch's: the bias corrections are folded into the
//! step size and the denominator rather than applied to `m` and `v`. The state is exported as
//! `adam.exp_avg.<slot>` (`m`), `adam.exp_avg_sq.<slot>` (`v`), `adam.max_exp_avg_sq.<slot>`
//! (AMSGrad) and `adam.step.<slot>`, with `adamw` in place of `adam` for AdamW. Like PyTorch, each
//! parameter counts its own steps, so a slot that missed a gradient keeps its bias correction.

use super::state::SlotStates;
use super::{check_arg, check_grads, check_non_negative, check_unit_interval, Optimizer};
use crate::error::Result;
use crate::tensor::elementwise;
use crate::Tensor;
use rayon::prelude::*;

/// Adam's hyperparameters, with PyTorch's defaults; [`AdamBuilder::build`] checks them.
#[derive(Clone, Debug, PartialEq)]
pub struct AdamBuilder {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    decoupled_weight_decay: bool,
    amsgrad: bool,
}

impl AdamBuilder {
    /// Decay rates of the first and second moment estimates (default `(0.9, 0.999)`).
    pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
        self.beta1 = beta1;
        self.beta2 = beta2;
        self
    }

    /// Added to the denominator for stability (default 1e-8).
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Weight decay: an L2 term in the gradient for Adam (default 0), a decay of the parameter
    /// for AdamW (default 1e-2).
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Decoupled (AdamW) weight decay, PyTorch's `decoupled_weight_decay`.
    pub fn decoupled_weight_decay(mut self, decoupled: bool) -> Self {
        self.decoupled_weight_decay = decoupled;
        self
    }

    /// AMSGrad: normalise by the largest second moment seen so far (default off).
    pub fn amsgrad(mut self, amsgrad: bool) -> Self {
        self.amsgrad = amsgrad;
        self
    }

    /// The optimiser, or `Error::InvalidArgument` for a negative lr or weight decay, betas
    /// outside [0, 1), or eps <= 0 (PyTorch accepts eps = 0, which turns a zero gradient into
    /// NaN).
    pub fn build(self) -> Result<Adam> {
        let name = if self.decoupled_weight_decay {
            "adamw"
        } else {
            "adam"
        };
        check_non_negative(name, "lr", self.lr)?;
        check_non_negative(name, "weight_decay", self.weight_decay)?;
        check_unit_interval(name, "beta1", self.beta1)?;
        check_unit_interval(name, "beta2", self.beta2)?;
        // With eps = 0, a zero gradient would divide 0 by 0 on the first step.
        check_arg(name, "eps", self.eps, self.eps > 0.0, "a finite value > 0")?;
        let mut fields = vec!["exp_avg", "exp_avg_sq"];
        if self.amsgrad {
            fields.push("max_exp_avg_sq");
        }
        Ok(Adam {
            name,
            states: SlotStates::new(name, fields, true),
            hyper: self,
        })
    }
}

/// `torch.optim.Adam` and `torch.optim.AdamW`: see the [module docs](self) for the update rule.
///
/// ```
/// use convgrad::optim::{Adam, Optimizer};
/// use convgrad::Tensor;
/// let mut adamw = Adam::adamw_builder(1e-3).betas(0.9, 0.95).build()?;
/// assert_eq!(adamw.name(), "adamw");
/// let mut params = vec![Tensor::ones(&[2])];
/// adamw.step(&mut params, &[Some(Tensor::from_vec(vec![0.5, -2.0], &[2])?)])?;
/// // The first Adam step moves each weight by about lr against its gradient's sign, after the
/// // decoupled decay 1 - lr * wd.
/// let decayed = 1.0 - 1e-3 * 1e-2;
/// assert!((params[0].data()[0] - (decayed - 1e-3)).abs() < 1e-6);
/// assert!((params[0].data()[1] - (decayed + 1e-3)).abs() < 1e-6);
/// assert!(Adam::builder(1e-3).betas(0.9, 1.0).build().is_err());
/// # Ok::<(), convgrad::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Adam {
    name: &'static str,
    hyper: AdamBuilder,
    states: SlotStates,
}

impl Adam {
    /// Adam with PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, no weight decay (PyTorch's
    /// default lr is 1e-3).
    pub fn new(lr: f64) -> Result<Adam> {
        Adam::builder(lr).build()
    }

    /// Adam's hyperparameters to set before [`AdamBuilder::build`].
    pub fn builder(lr: f64) -> AdamBuilder {
        AdamBuilder {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled_weight_decay: false,
            amsgrad: false,
        }
    }

    /// AdamW with PyTorch's defaults: as Adam, with decoupled weight decay 1e-2.
    pub fn adamw(lr: f64) -> Result<Adam> {
        Adam::adamw_builder(lr).build()
    }

    /// AdamW's hyperparameters to set before [`AdamBuilder::build`].
    pub fn adamw_builder(lr: f64) -> AdamBuilder {
        Adam::builder(lr)
            .weight_decay(1e-2)
            .decoupled_weight_decay(true)
    }
}

impl Optimizer for Adam {
    fn name(&self) -> &'static str {
        self.name
    }

    fn step(&mut self, params: &mut [Tensor], grads: &[Option<Tensor>]) -> Result<()> {
        check_grads(self.name, params, grads)?;
        self.states.check_fits(params, grads)?;
        let h = &self.hyper;
        // Scalars are Python floats in PyTorch: computed in f64, rounded when they meet a tensor.
        let lerp_weight = (1.0 - h.beta1) as f32;
        let beta2 = h.beta2 as f32;
        let sq_weight = (1.0 - h.beta2) as f32;
        let eps = h.eps as f32;
        let coupled_decay =
            (!h.decoupled_weight_decay && h.weight_decay != 0.0).then_some(h.weight_decay as f32);
        let decoupled_factor = (h.decoupled_weight_decay && h.weight_decay != 0.0)
            .then_some((1.0 - h.lr * h.weight_decay) as f32);
        for (slot, (param, grad)) in params.iter_mut().zip(grads).enumerate() {
            let Some(grad) = grad else { continue };
            let state = self.states.get_or_zeros(slot, param.shape());
            state.step += 1;
            let t = state.step as f64;
            let bias_correction1 = 1.0 - h.beta1.powf(t);
            // `bias_correction2 ** 0.5` in PyTorch: Python's pow, not sqrt.
            let bias_correction2_sqrt = (1.0 - h.beta2.powf(t)).powf(0.5) as f32;
            let neg_step_size = (-(h.lr / bias_correction1)) as f32;
            let [exp_avg, exp_avg_sq, rest @ ..] = state.buffers.as_mut_slice() else {
                unreachable!("Adam's state has at least two fields")
            };
            let (m, v) = (exp_avg.data_mut(), exp_avg_sq.data_mut());
            let v_max = rest.first_mut().map(|t| t.data_mut());
            let update = |p: &mut [f32], g: &[f32], moments: Moments| {
                let Moments { m, v, mut v_max } = moments;
                for (i, (p, &g)) in p.iter_mut().zip(g).enumerate() {
                    let mut g = g;
                    if let Some(factor) = decoupled_factor {
                        *p *= factor;
                    }
                    if let Some(wd) = coupled_decay {
                        g = wd.mul_add(*p, g);
                    }
                    m[i] = lerp(m[i], g, lerp_weight);
                    v[i] = (sq_weight * g).mul_add(g, v[i] * beta2);
                    let second_moment = match v_max.as_deref_mut() {
                        Some(v_max) => {
                            v_max[i] = nan_max(v_max[i], v[i]);
                            v_max[i]
                        }
                        None => v[i],
                    };
                    let denom = second_moment.sqrt() / bias_correction2_sqrt + eps;
                    *p += neg_step_size * m[i] / denom;
                }
            };
            let (p, g) = (param.data_mut(), grad.data());
            // Large parameters are updated in chunks on rayon's threads, each element by the
            // same operations as on one thread.
            let Some(chunk) = elementwise::parallel_chunk(p.len()) else {
                update(p, g, Moments { m, v, v_max });
                continue;
            };
            let chunks = p
                .par_chunks_mut(chunk)
                .zip(g.par_chunks(chunk))
                .zip(m.par_chunks_mut(chunk))
                .zip(v.par_chunks_mut(chunk));
            match v_max {
                Some(v_max) => {
                    chunks
                        .zip(v_max.par_chunks_mut(chunk))
                        .for_each(|((((p, g), m), v), v_max)| {
                            let v_max = Some(v_max);
                            update(p, g, Moments { m, v, v_max });
                        })
                }
                None => chunks.for_each(|(((p, g), m), v)| {
                    update(p, g, Moments { m, v, v_max: None });
                }),
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

/// `torch.lerp(start, end, weight)` with PyTorch's two formulas, chosen by the weight's size.
pub(crate) fn lerp(start: f32, end: f32, weight: f32) -> f32 {
    if weight.abs() < 0.5 {
        weight.mul_add(end - start, start)
    } else {
        (weight - 1.0).mul_add(end - start, end)
    }
}

/// One parameter's (or one chunk's) moment estimates: `m`, `v` and, for AMSGrad, `v_max`.
struct Moments<'a> {
    m: &'a mut [f32],
    v: &'a mut [f32],
    v_max: Option<&'a mut [f32]>,
}

/// `torch.maximum`: NaN if either operand is NaN (`f32::max` would drop it).
fn nan_max(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else {
        a.max(b)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{
        assert_chunked_update_is_exact, assert_matches_torch, assert_resumes_exactly,
    };
    use super::*;
    use crate::Error;

    // Expected values: python3 scripts/torch_optim.py (torch 2.15, CPU).
    // Each constant holds the final parameters (slots 0 and 1) after 5 steps of
    // PyTorch's optimiser, configured as its comment says.

    /// Adam({'lr': 0.1})
    #[rustfmt::skip]
    const ADAM: [&[f64]; 2] = [
        &[
            -9.0524971e-01, 2.0310295e-01, -1.1943553e-01, 1.0021693e+00, 2.0929018e-01,
            -3.9897075e-01,
        ],
        &[
            8.0216914e-01, 9.2901699e-03, -5.9897077e-01, 4.8589441e-01,
        ],
    ];

    /// Adam({'lr': 0.05, 'betas': (0.8, 0.99), 'eps': 1e-06, 'weight_decay': 0.1})
    #[rustfmt::skip]
    const ADAM_WD: [&[f64]; 2] = [
        &[
            -9.4387847e-01, 3.0485886e-01, -2.7341124e-01, 9.7752500e-01, 2.0556664e-01,
            -5.0114137e-01,
        ],
        &[
            7.8182608e-01, 9.0086581e-03, -6.9739962e-01, 5.4234546e-01,
        ],
    ];

    /// AdamW({'lr': 0.1, 'weight_decay': 0.1})
    #[rustfmt::skip]
    const ADAMW: [&[f64]; 2] = [
        &[
            -8.6148423e-01, 1.9034845e-01, -1.0827575e-01, 9.5172727e-01, 2.0150664e-01,
            -3.7630272e-01,
        ],
        &[
            7.6152915e-01, 1.1308623e-02, -5.6650078e-01, 4.6245065e-01,
        ],
    ];

    /// Adam({'lr': 0.1, 'amsgrad': True})
    #[rustfmt::skip]
    const AMSGRAD: [&[f64]; 2] = [
        &[
            -9.0528321e-01, 2.0310295e-01, -1.1947158e-01, 1.0021693e+00, 2.0927289e-01,
            -3.9897075e-01,
        ],
        &[
            8.0216914e-01, 9.2728697e-03, -5.9897077e-01, 4.8588058e-01,
        ],
    ];

    #[test]
    fn adam_matches_pytorch() {
        assert_matches_torch(&mut Adam::new(0.1).unwrap(), ADAM, 1e-6);
    }

    #[test]
    fn adam_with_weight_decay_matches_pytorch() {
        let mut adam = Adam::builder(0.05)
            .betas(0.8, 0.99)
            .eps(1e-6)
            .weight_decay(0.1)
            .build()
            .unwrap();
        assert_matches_torch(&mut adam, ADAM_WD, 1e-6);
    }

    #[test]
    fn adamw_matches_pytorch() {
        let mut adamw = Adam::adamw_builder(0.1).weight_decay(0.1).build().unwrap();
        assert_matches_torch(&mut adamw, ADAMW, 1e-6);
    }

    #[test]
    #[should_panic(expected = "PyTorch")]
    fn the_comparison_tells_adam_from_adamw() {
        // Negative control: L2 decay in the gradient is not AdamW's decoupled decay.
        let mut adam = Adam::builder(0.1).weight_decay(0.1).build().unwrap();
        assert_matches_torch(&mut adam, ADAMW, 1e-6);
    }

    #[test]
    fn amsgrad_matches_pytorch() {
        let mut amsgrad = Adam::builder(0.1).amsgrad(true).build().unwrap();
        assert_matches_torch(&mut amsgrad, AMSGRAD, 1e-6);
    }

    #[test]
    fn large_parameters_update_in_chunks_exactly() {
        assert_chunked_update_is_exact(|| Box::new(Adam::new(0.1).unwrap()));
        assert_chunked_update_is_exact(|| {
            Box::new(
                Adam::builder(0.1)
                    .amsgrad(true)
                    .weight_decay(0.01)
                    .build()
                    .unwrap(),
            )
        });
        assert_chunked_update_is_exact(|| Box::new(Adam::adamw(0.1).unwrap()));
    }

    #[test]
    fn resumes_bit_for_bit() {
        assert_resumes_exactly(|| Box::new(Adam::builder(0.1).amsgrad(true).build().unwrap()));
        assert_resumes_exactly(|| Box::new(Adam::adamw(0.1).unwrap()));
    }

    #[test]
    fn invalid_hyperparameters_are_named() {
        let err = Adam::builder(1e-3).betas(0.9, 1.0).build().unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }));
        assert_eq!(
            err.to_string(),
            "adam: beta2 = 1 is invalid: expected a value in [0, 1)"
        );
        let err = Adam::adamw_builder(-1.0).build().unwrap_err();
        assert_eq!(
            err.to_string(),
            "adamw: lr = -1 is invalid: expected a finite value >= 0"
        );
        assert!(Adam::builder(1e-3).betas(-0.1, 0.9).build().is_err());
        assert!(Adam::builder(1e-3).eps(0.0).build().is_err());
        assert!(Adam::builder(1e-3).weight_decay(-1e-4).build().is_err());
    }

    #[test]
    fn adam_state_does_not_load_into_adamw() {
        let mut adam = Adam::new(0.1).unwrap();
        let mut params = vec![Tensor::ones(&[2])];
        adam.step(&mut params, &[Some(Tensor::ones(&[2]))]).unwrap();
        let mut adamw = Adam::adamw(0.1).unwrap();
        let err = adamw.load_state(&adam.state()).unwrap_err().to_string();
        assert!(err.starts_with("adamw: load_state: 3 problem(s):\n  adam.exp_avg.0: unexpected"));
        let mut amsgrad = Adam::builder(0.1).amsgrad(true).build().unwrap();
        let err = amsgrad.load_state(&adam.state()).unwrap_err().to_string();
        assert!(
            err.ends_with("slot 0: missing adam.max_exp_avg_sq.0"),
            "{err}"
        );
    }

    #[test]
    fn lerp_uses_pytorchs_formula_for_each_weight() {
        assert_eq!(lerp(1.0, 3.0, 0.25), 1.5);
        assert_eq!(lerp(1.0, 3.0, 0.75), 2.5);
        assert!(nan_max(f32::NAN, 1.0).is_nan() && nan_max(1.0, f32::NAN).is_nan());
    }
}
