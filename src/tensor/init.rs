//! Random tensors and the standard weight initialisers, all driven by an explicit [`Rng`].
//!
//! Fan-in and fan-out follow PyTorch's `_calculate_fan_in_and_fan_out`: for a weight of shape
//! `[out, in, k...]`, `fan_in = in * prod(k)` and `fan_out = out * prod(k)`.

use super::{numel, Tensor};
use crate::error::{fmt_shape, Error, Result};
use crate::Rng;

fn fans(op: &str, shape: &[usize]) -> Result<(f32, f32)> {
    if shape.len() < 2 {
        return Err(Error::shape(
            op,
            format!(
                "fan-in and fan-out need a weight of at least 2 dimensions, got {}",
                fmt_shape(shape)
            ),
        ));
    }
    let receptive: usize = shape[2..].iter().product();
    Ok(((shape[1] * receptive) as f32, (shape[0] * receptive) as f32))
}

impl Tensor {
    /// Independent standard normal values.
    pub fn randn(shape: &[usize], rng: &mut Rng) -> Tensor {
        Tensor::from_parts((0..numel(shape)).map(|_| rng.normal()).collect(), shape)
    }

    /// Independent values uniform in `[low, high)`.
    pub fn uniform(shape: &[usize], low: f32, high: f32, rng: &mut Rng) -> Tensor {
        Tensor::from_parts(
            (0..numel(shape)).map(|_| rng.uniform(low, high)).collect(),
            shape,
        )
    }

    /// He et al. (2015) for ReLU networks: normal with std `sqrt(2 / fan_in)`
    /// (PyTorch's `kaiming_normal_(mode='fan_in', nonlinearity='relu')`).
    pub fn kaiming_normal(shape: &[usize], rng: &mut Rng) -> Result<Tensor> {
        let (fan_in, _) = fans("kaiming_normal", shape)?;
        let std = (2.0 / fan_in).sqrt();
        Ok(Tensor::randn(shape, rng).map(|x| x * std))
    }

    /// He et al. (2015), uniform: bound `sqrt(6 / fan_in)` (same variance as [`Tensor::kaiming_normal`]).
    pub fn kaiming_uniform(shape: &[usize], rng: &mut Rng) -> Result<Tensor> {
        let (fan_in, _) = fans("kaiming_uniform", shape)?;
        let bound = (6.0 / fan_in).sqrt();
        Ok(Tensor::uniform(shape, -bound, bound, rng))
    }

    /// Glorot and Bengio (2010): uniform with bound `sqrt(6 / (fan_in + fan_out))`.
    pub fn xavier_uniform(shape: &[usize], rng: &mut Rng) -> Result<Tensor> {
        let (fan_in, fan_out) = fans("xavier_uniform", shape)?;
        let bound = (6.0 / (fan_in + fan_out)).sqrt();
        Ok(Tensor::uniform(shape, -bound, bound, rng))
    }

    /// Glorot and Bengio (2010): normal with std `sqrt(2 / (fan_in + fan_out))`.
    pub fn xavier_normal(shape: &[usize], rng: &mut Rng) -> Result<Tensor> {
        let (fan_in, fan_out) = fans("xavier_normal", shape)?;
        let std = (2.0 / (fan_in + fan_out)).sqrt();
        Ok(Tensor::randn(shape, rng).map(|x| x * std))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn std_of(t: &Tensor) -> f32 {
        let n = t.numel() as f64;
        let mean = t.data().iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = t
            .data()
            .iter()
            .map(|&x| (x as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        var.sqrt() as f32
    }

    #[test]
    fn initialisers_have_the_documented_spread() {
        let mut rng = Rng::seed(42);
        let shape = [64, 32, 3, 3]; // fan_in 288, fan_out 576
        let he = Tensor::kaiming_normal(&shape, &mut rng).unwrap();
        assert!((std_of(&he) - (2.0f32 / 288.0).sqrt()).abs() < 0.003);
        let he_u = Tensor::kaiming_uniform(&shape, &mut rng).unwrap();
        assert!((std_of(&he_u) - (2.0f32 / 288.0).sqrt()).abs() < 0.003);
        let bound = (6.0f32 / 288.0).sqrt();
        assert!(he_u.data().iter().all(|x| x.abs() <= bound));
        let gl = Tensor::xavier_normal(&shape, &mut rng).unwrap();
        assert!((std_of(&gl) - (2.0f32 / 864.0).sqrt()).abs() < 0.003);
        let gl_u = Tensor::xavier_uniform(&shape, &mut rng).unwrap();
        assert!(gl_u
            .data()
            .iter()
            .all(|x| x.abs() <= (6.0f32 / 864.0).sqrt()));
    }

    #[test]
    fn initialisation_is_reproducible_and_needs_two_dims() {
        let a = Tensor::randn(&[10], &mut Rng::seed(5));
        let b = Tensor::randn(&[10], &mut Rng::seed(5));
        assert_eq!(a, b);
        let err = Tensor::kaiming_normal(&[10], &mut Rng::seed(5)).unwrap_err();
        assert!(err.to_string().starts_with("kaiming_normal: "), "{err}");
    }
}
