//! Reductions: sum and mean over everything or along one axis.
//!
//! Backward spreads the gradient back over the reduced elements (divided by the count for a
//! mean). An axis reduction views the tensor as `[outer, axis, inner]`.

use super::broadcast::broadcast_to;
use super::{Tape, Var};
use crate::error::{fmt_shape, Error, Result};
use crate::Tensor;

/// Sum of all elements, as a scalar (shape `[]`). Accumulated in f64.
pub fn sum(x: &Tensor) -> Tensor {
    Tensor::scalar(x.data().iter().map(|&v| v as f64).sum::<f64>() as f32)
}

/// Mean of all elements, as a scalar. The mean of an empty tensor is NaN, as in PyTorch.
pub fn mean(x: &Tensor) -> Tensor {
    let total: f64 = x.data().iter().map(|&v| v as f64).sum();
    Tensor::scalar((total / x.numel() as f64) as f32)
}

/// `(outer, axis length, inner)` of a reduction along `axis`.
pub(crate) fn split_at_axis(
    op: &str,
    shape: &[usize],
    axis: usize,
) -> Result<(usize, usize, usize)> {
    if axis >= shape.len() {
        return Err(Error::invalid(
            op,
            format!("axis {axis} is out of range for {}", fmt_shape(shape)),
        ));
    }
    Ok((
        shape[..axis].iter().product(),
        shape[axis],
        shape[axis + 1..].iter().product(),
    ))
}

fn reduced_shape(shape: &[usize], axis: usize, keepdim: bool) -> Vec<usize> {
    let mut out = shape.to_vec();
    if keepdim {
        out[axis] = 1;
    } else {
        out.remove(axis);
    }
    out
}

/// Sum along `axis`; `keepdim` keeps it as a dimension of length 1.
pub fn sum_axis(x: &Tensor, axis: usize, keepdim: bool) -> Result<Tensor> {
    let (outer, len, inner) = split_at_axis("sum_axis", x.shape(), axis)?;
    let mut out = vec![0.0f32; outer * inner];
    let data = x.data();
    for o in 0..outer {
        let dst = &mut out[o * inner..(o + 1) * inner];
        for a in 0..len {
            let src = &data[(o * len + a) * inner..(o * len + a + 1) * inner];
            for (d, s) in dst.iter_mut().zip(src) {
                *d += s;
            }
        }
    }
    Ok(Tensor::from_parts(
        out,
        &reduced_shape(x.shape(), axis, keepdim),
    ))
}

/// Mean along `axis`; `keepdim` keeps it as a dimension of length 1.
pub fn mean_axis(x: &Tensor, axis: usize, keepdim: bool) -> Result<Tensor> {
    let len = *x.shape().get(axis).unwrap_or(&1) as f32;
    Ok(sum_axis(x, axis, keepdim)
        .map_err(|e| rename(e, "mean_axis"))?
        .map(|v| v / len))
}

fn rename(e: Error, op: &str) -> Error {
    match e {
        Error::InvalidArgument { message, .. } => Error::invalid(op, message),
        other => other,
    }
}

impl Tape {
    /// Sum of all elements, as a scalar.
    pub fn sum(&mut self, x: Var) -> Result<Var> {
        let y = sum(self.value(x)?);
        let shape = self.shape(x)?.to_vec();
        Ok(self.record("sum", &[x], y, move |g, sink| {
            sink.accumulate(0, Tensor::full(&shape, g.data()[0]));
        }))
    }

    /// Mean of all elements, as a scalar.
    pub fn mean(&mut self, x: Var) -> Result<Var> {
        let y = mean(self.value(x)?);
        let shape = self.shape(x)?.to_vec();
        Ok(self.record("mean", &[x], y, move |g, sink| {
            let n = shape.iter().product::<usize>() as f32;
            sink.accumulate(0, Tensor::full(&shape, g.data()[0] / n));
        }))
    }

    /// Sum along `axis`.
    pub fn sum_axis(&mut self, x: Var, axis: usize, keepdim: bool) -> Result<Var> {
        let y = sum_axis(self.value(x)?, axis, keepdim)?;
        self.record_axis_reduction("sum_axis", x, axis, y, 1.0)
    }

    /// Mean along `axis`.
    pub fn mean_axis(&mut self, x: Var, axis: usize, keepdim: bool) -> Result<Var> {
        let y = mean_axis(self.value(x)?, axis, keepdim)?;
        let len = self.shape(x)?[axis] as f32;
        self.record_axis_reduction("mean_axis", x, axis, y, 1.0 / len)
    }

    fn record_axis_reduction(
        &mut self,
        op: &'static str,
        x: Var,
        axis: usize,
        y: Tensor,
        factor: f32,
    ) -> Result<Var> {
        let shape = self.shape(x)?.to_vec();
        Ok(self.record(op, &[x], y, move |g, sink| {
            let kept = g
                .reshape(&reduced_shape(&shape, axis, true))
                .expect("same element count");
            let spread = broadcast_to(&kept, &shape);
            sink.accumulate(
                0,
                if factor == 1.0 {
                    spread
                } else {
                    spread.map(|v| v * factor)
                },
            );
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::gradcheck::{check_gradients, strategies::tensor_in};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn axis_sums_and_means() {
        let x = Tensor::from_vec((1..=6).map(|v| v as f32).collect(), &[2, 3]).unwrap();
        assert_eq!(sum_axis(&x, 0, false).unwrap().data(), &[5.0, 7.0, 9.0]);
        assert_eq!(sum_axis(&x, 1, true).unwrap().shape(), &[2, 1]);
        assert_eq!(mean_axis(&x, 1, false).unwrap().data(), &[2.0, 5.0]);
        assert_eq!(sum(&x).item().unwrap(), 21.0);
        assert_eq!(mean(&x).item().unwrap(), 3.5);
        assert_eq!(
            mean_axis(&x, 2, false).unwrap_err().to_string(),
            "mean_axis: axis 2 is out of range for [2, 3]"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn reduction_gradients(x in tensor_in(vec![2, 3, 4], -2.0, 2.0), axis in 0usize..3, keepdim: bool) {
            let r = check_gradients(std::slice::from_ref(&x), |tape, v| tape.sum_axis(v[0], axis, keepdim));
            prop_assert!(r.is_ok(), "sum_axis: {}", r.unwrap_err());
            let r = check_gradients(std::slice::from_ref(&x), |tape, v| tape.mean_axis(v[0], axis, keepdim));
            prop_assert!(r.is_ok(), "mean_axis: {}", r.unwrap_err());
            let r = check_gradients(std::slice::from_ref(&x), |tape, v| tape.sum(v[0]));
            prop_assert!(r.is_ok(), "sum: {}", r.unwrap_err());
            let r = check_gradients(&[x], |tape, v| tape.mean(v[0]));
            prop_assert!(r.is_ok(), "mean: {}", r.unwrap_err());
        }
    }
}
