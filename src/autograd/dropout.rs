//! Dropout (Srivastava et al. 2014; used by AlexNet's classifier): during training each element
//! is zeroed with probability `p` and the survivors are scaled by `1 / (1 - p)`, so the expected
//! value is unchanged and evaluation needs no rescaling. The mask comes from an explicit [`Rng`],
//! so a seeded run is reproducible.

use super::{Tape, Var};
use crate::error::{Error, Result};
use crate::{Rng, Tensor};

fn check_probability(p: f32) -> Result<()> {
    if (0.0..1.0).contains(&p) {
        Ok(())
    } else {
        Err(Error::invalid(
            "dropout",
            format!("drop probability must be in [0, 1), got {p}"),
        ))
    }
}

/// The scaled keep-mask: `0` for dropped elements, `1 / (1 - p)` for kept ones.
fn mask(shape: &[usize], p: f32, rng: &mut Rng) -> Tensor {
    let scale = 1.0 / (1.0 - p);
    let numel = crate::numel(shape);
    let data = (0..numel)
        .map(|_| if rng.next_f32() < p { 0.0 } else { scale })
        .collect();
    Tensor::from_parts(data, shape)
}

/// Dropout with drop probability `p`; the identity when `training` is false.
pub fn dropout(x: &Tensor, p: f32, training: bool, rng: &mut Rng) -> Result<Tensor> {
    check_probability(p)?;
    if !training || p == 0.0 {
        return Ok(x.clone());
    }
    let m = mask(x.shape(), p, rng);
    super::arith::mul(x, &m)
}

impl Tape {
    /// Training-mode dropout with drop probability `p` (for evaluation, leave the op out).
    pub fn dropout(&mut self, x: Var, p: f32, rng: &mut Rng) -> Result<Var> {
        check_probability(p)?;
        let x_value = self.get(x)?;
        let m = mask(x_value.shape(), p, rng);
        let y = super::arith::mul(&x_value, &m)?;
        Ok(self.record("dropout", &[x], y, move |g, sink| {
            sink.accumulate(0, super::arith::mul(g, &m).expect("same shape"));
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::gradcheck::{check_gradients, strategies::tensor_in};
    use super::*;
    use proptest::prelude::{prop_assert, proptest, ProptestConfig};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn dropout_gradients(x in tensor_in(vec![4, 6], -2.0, 2.0), seed: u64, p in 0.0f32..0.9) {
            // The same seed inside `f` gives every evaluation the same mask.
            let r = check_gradients(&[x], |tape, v| tape.dropout(v[0], p, &mut Rng::seed(seed)));
            prop_assert!(r.is_ok(), "{}", r.unwrap_err());
        }
    }

    #[test]
    fn drops_about_p_and_keeps_the_mean() {
        let x = Tensor::ones(&[100_000]);
        let y = dropout(&x, 0.3, true, &mut Rng::seed(1)).unwrap();
        let dropped = y.data().iter().filter(|&&v| v == 0.0).count() as f32 / 100_000.0;
        assert!((dropped - 0.3).abs() < 0.01, "{dropped}");
        let mean = y.data().iter().sum::<f32>() / 100_000.0;
        assert!((mean - 1.0).abs() < 0.02, "{mean}");
        let eval = dropout(&x, 0.3, false, &mut Rng::seed(1)).unwrap();
        assert_eq!(eval, x);
        assert_eq!(
            dropout(&x, 1.0, true, &mut Rng::seed(1))
                .unwrap_err()
                .to_string(),
            "dropout: drop probability must be in [0, 1), got 1"
        );
    }
}
