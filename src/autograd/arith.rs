//! Elementwise arithmetic with broadcasting: add, sub, mul, div, neg, scale.
//!
//! Backward rules send gradients at the output's shape; the tape folds them back to broadcast
//! inputs' shapes (see `broadcast.rs`).

use super::broadcast::zip_broadcast;
use super::{Tape, Var};
use crate::error::Result;
use crate::Tensor;

/// Elementwise `a + b`, broadcasting.
pub fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    zip_broadcast("add", a, b, |x, y| x + y)
}

/// Elementwise `a - b`, broadcasting.
pub fn sub(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    zip_broadcast("sub", a, b, |x, y| x - y)
}

/// Elementwise `a * b`, broadcasting.
pub fn mul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    zip_broadcast("mul", a, b, |x, y| x * y)
}

/// Elementwise `a / b`, broadcasting. Division by zero gives infinities or NaN, as in IEEE 754.
pub fn div(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    zip_broadcast("div", a, b, |x, y| x / y)
}

/// Broadcasts again inside a backward rule, where the forward pass already checked the shapes.
fn zip(a: &Tensor, b: &Tensor, f: impl Fn(f32, f32) -> f32 + Sync) -> Tensor {
    zip_broadcast("backward", a, b, f).expect("shapes were checked by the forward pass")
}

impl Tape {
    /// `a + b`, broadcasting (a `[C, 1, 1]` bias over `[N, C, H, W]`, `[F]` over `[N, F]`, a scalar).
    pub fn add(&mut self, a: Var, b: Var) -> Result<Var> {
        let y = add(self.value(a)?, self.value(b)?)?;
        Ok(self.record("add", &[a, b], y, |g, sink| {
            sink.accumulate(0, g.clone());
            sink.accumulate(1, g.clone());
        }))
    }

    /// `a - b`, broadcasting.
    pub fn sub(&mut self, a: Var, b: Var) -> Result<Var> {
        let y = sub(self.value(a)?, self.value(b)?)?;
        Ok(self.record("sub", &[a, b], y, |g, sink| {
            sink.accumulate(0, g.clone());
            if sink.wants(1) {
                sink.accumulate(1, g.map(|x| -x));
            }
        }))
    }

    /// `a * b`, broadcasting.
    pub fn mul(&mut self, a: Var, b: Var) -> Result<Var> {
        let (a_value, b_value) = (self.get(a)?, self.get(b)?);
        let y = mul(&a_value, &b_value)?;
        Ok(self.record("mul", &[a, b], y, move |g, sink| {
            if sink.wants(0) {
                sink.accumulate(0, zip(g, &b_value, |g, b| g * b));
            }
            if sink.wants(1) {
                sink.accumulate(1, zip(g, &a_value, |g, a| g * a));
            }
        }))
    }

    /// `a / b`, broadcasting.
    pub fn div(&mut self, a: Var, b: Var) -> Result<Var> {
        let (a_value, b_value) = (self.get(a)?, self.get(b)?);
        let y = div(&a_value, &b_value)?;
        let quotient = y.clone();
        Ok(self.record("div", &[a, b], y, move |g, sink| {
            if sink.wants(0) {
                sink.accumulate(0, zip(g, &b_value, |g, b| g / b));
            }
            if sink.wants(1) {
                // d(a/b)/db = -(a/b)/b
                let g_over_b = zip(g, &b_value, |g, b| g / b);
                sink.accumulate(1, zip(&g_over_b, &quotient, |gb, q| -gb * q));
            }
        }))
    }

    /// `-x`.
    pub fn neg(&mut self, x: Var) -> Result<Var> {
        self.scale(x, -1.0)
    }

    /// `factor * x` for a constant factor.
    pub fn scale(&mut self, x: Var, factor: f32) -> Result<Var> {
        let y = self.value(x)?.map(|v| v * factor);
        Ok(self.record("scale", &[x], y, move |g, sink| {
            sink.accumulate(0, g.map(|v| v * factor));
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::gradcheck::{check_gradients, strategies::tensor_in};
    use super::*;
    use proptest::prelude::*;

    fn config() -> ProptestConfig {
        ProptestConfig::with_cases(64)
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn add_sub_mul_gradients_with_channel_broadcast(
            x in tensor_in(vec![2, 3, 2, 2], -2.0, 2.0),
            bias in tensor_in(vec![3, 1, 1], -2.0, 2.0),
        ) {
            for op in ["add", "sub", "mul"] {
                let r = check_gradients(&[x.clone(), bias.clone()], |tape, v| match op {
                    "add" => tape.add(v[0], v[1]),
                    "sub" => tape.sub(v[0], v[1]),
                    _ => tape.mul(v[0], v[1]),
                });
                prop_assert!(r.is_ok(), "{op}: {}", r.unwrap_err());
            }
        }

        #[test]
        fn row_bias_and_scalar_broadcast_gradients(
            x in tensor_in(vec![4, 5], -2.0, 2.0),
            bias in tensor_in(vec![5], -2.0, 2.0),
            s in tensor_in(vec![], 0.5, 2.0),
        ) {
            let r = check_gradients(&[x.clone(), bias, s.clone()], |tape, v| {
                let y = tape.add(v[0], v[1])?;
                tape.mul(y, v[2])
            });
            prop_assert!(r.is_ok(), "{}", r.unwrap_err());
            let r = check_gradients(&[x, s], |tape, v| {
                let y = tape.neg(v[0])?;
                let y = tape.scale(y, 0.7)?;
                tape.sub(v[1], y)
            });
            prop_assert!(r.is_ok(), "{}", r.unwrap_err());
        }

        #[test]
        fn div_gradients(
            a in tensor_in(vec![3, 4], -2.0, 2.0),
            b in tensor_in(vec![4], 0.5, 2.0),
        ) {
            let r = check_gradients(&[a.clone(), b.clone()], |tape, v| tape.div(v[0], v[1]));
            prop_assert!(r.is_ok(), "{}", r.unwrap_err());
            let r = check_gradients(&[b, a], |tape, v| tape.div(v[1], v[0]));
            prop_assert!(r.is_ok(), "{}", r.unwrap_err());
        }
    }

    #[test]
    fn shape_mistakes_are_errors_naming_the_op() {
        let mut tape = Tape::new();
        let x = tape.input(Tensor::zeros(&[2, 3, 4, 5]));
        let b = tape.input(Tensor::zeros(&[3]));
        let err = tape.add(x, b).unwrap_err().to_string();
        assert!(
            err.starts_with("add: [2, 3, 4, 5] and [3] do not broadcast"),
            "{err}"
        );
        let err = tape.mul(x, b).unwrap_err().to_string();
        assert!(err.starts_with("mul: "), "{err}");
    }
}
