//! Shape ops: reshape, flatten, and concatenation along an axis (Inception's branches and
//! DenseNet's growing feature maps are concatenated along channels, axis 1).

use super::reduce::split_at_axis;
use super::{Tape, Var};
use crate::error::{fmt_shape, Error, Result};
use crate::tensor::elementwise;
use crate::Tensor;

/// `[N, d1, d2, ...]` viewed as `[N, d1 * d2 * ...]`, the step between convolutional features and
/// a classifier.
pub fn flatten(x: &Tensor) -> Result<Tensor> {
    match x.shape() {
        [] => Err(Error::shape(
            "flatten",
            "a scalar has no batch dimension to keep".to_string(),
        )),
        [n, rest @ ..] => x.reshape(&[*n, rest.iter().product()]),
    }
}

/// Joins tensors along `axis`; all other dimensions must agree.
pub fn concat(tensors: &[&Tensor], axis: usize) -> Result<Tensor> {
    let first = tensors
        .first()
        .ok_or_else(|| Error::invalid("concat", "needs at least one tensor"))?;
    let (outer, _, inner) = split_at_axis("concat", first.shape(), axis)?;
    let mut out_shape = first.shape().to_vec();
    out_shape[axis] = 0;
    for t in tensors {
        let compatible = t.rank() == first.rank()
            && t.shape()
                .iter()
                .zip(first.shape())
                .enumerate()
                .all(|(d, (a, b))| d == axis || a == b);
        if !compatible {
            let shapes: Vec<String> = tensors.iter().map(|t| fmt_shape(t.shape())).collect();
            return Err(Error::shape(
                "concat",
                format!(
                    "{} cannot be joined along axis {axis}: the other dimensions differ",
                    shapes.join(", ")
                ),
            ));
        }
        out_shape[axis] += t.shape()[axis];
    }
    let out_axis = out_shape[axis];
    let mut out = vec![0.0; outer * out_axis * inner];
    // Row `o` of the output (one image, for axis 1) is the tensors' rows `o`, one after another.
    elementwise::for_each_row(&mut out, out_axis * inner, |o, row| {
        let mut offset = 0;
        for t in tensors {
            let block = t.shape()[axis] * inner;
            row[offset..offset + block].copy_from_slice(&t.data()[o * block..][..block]);
            offset += block;
        }
    });
    Ok(Tensor::from_parts(out, &out_shape))
}

impl Tape {
    /// The same values with another shape of the same element count.
    pub fn reshape(&mut self, x: Var, shape: &[usize]) -> Result<Var> {
        let y = self.value(x)?.reshape(shape)?;
        let in_shape = self.shape(x)?.to_vec();
        Ok(self.record("reshape", &[x], y, move |g, sink| {
            sink.accumulate(0, g.reshape(&in_shape).expect("same element count"));
        }))
    }

    /// `[N, ...]` to `[N, rest]`.
    pub fn flatten(&mut self, x: Var) -> Result<Var> {
        let y = flatten(self.value(x)?)?;
        let in_shape = self.shape(x)?.to_vec();
        Ok(self.record("flatten", &[x], y, move |g, sink| {
            sink.accumulate(0, g.reshape(&in_shape).expect("same element count"));
        }))
    }

    /// Joins variables along `axis` (channels: axis 1 of NCHW).
    pub fn concat(&mut self, xs: &[Var], axis: usize) -> Result<Var> {
        let values = xs
            .iter()
            .map(|&x| self.value(x))
            .collect::<Result<Vec<_>>>()?;
        let y = concat(&values, axis)?;
        let shapes: Vec<Vec<usize>> = values.iter().map(|v| v.shape().to_vec()).collect();
        Ok(self.record("concat", xs, y, move |g, sink| {
            let out_shape = g.shape();
            let (outer, out_axis, inner) =
                split_at_axis("concat", out_shape, axis).expect("checked by forward");
            let mut offset = 0;
            for (k, shape) in shapes.iter().enumerate() {
                let block = shape[axis] * inner;
                if sink.wants(k) {
                    let mut part = vec![0.0; outer * block];
                    elementwise::for_each_row(&mut part, block, |o, row| {
                        row.copy_from_slice(&g.data()[o * out_axis * inner + offset..][..block]);
                    });
                    sink.accumulate(k, Tensor::from_parts(part, shape));
                }
                offset += block;
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::gradcheck::{check_gradients, strategies::tensor_in};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn concat_joins_channels() {
        let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 1, 2]).unwrap();
        let b =
            Tensor::from_vec(vec![5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0], &[2, 2, 2]).unwrap();
        let c = concat(&[&a, &b], 1).unwrap();
        assert_eq!(c.shape(), &[2, 3, 2]);
        assert_eq!(
            c.data(),
            &[1.0, 2.0, 5.0, 6.0, 7.0, 8.0, 3.0, 4.0, 9.0, 10.0, 11.0, 12.0]
        );
        let err = concat(&[&a, &Tensor::zeros(&[3, 1, 2])], 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "concat: [2, 1, 2], [3, 1, 2] cannot be joined along axis 1: the other dimensions differ"
        );
    }

    #[test]
    fn flatten_keeps_the_batch() {
        let x = Tensor::zeros(&[4, 16, 5, 5]);
        assert_eq!(flatten(&x).unwrap().shape(), &[4, 400]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn concat_gradients(
            a in tensor_in(vec![2, 1, 2, 3], -2.0, 2.0),
            b in tensor_in(vec![2, 3, 2, 3], -2.0, 2.0),
            axis_is_last: bool,
        ) {
            if axis_is_last {
                let c = Tensor::zeros(&[2, 1, 2, 1]).map(|_| 0.5);
                let r = check_gradients(&[a, c], |tape, v| tape.concat(&[v[0], v[1], v[0]], 3));
                prop_assert!(r.is_ok(), "{}", r.unwrap_err());
            } else {
                let r = check_gradients(&[a, b], |tape, v| tape.concat(&[v[0], v[1], v[0]], 1));
                prop_assert!(r.is_ok(), "{}", r.unwrap_err());
            }
        }

        #[test]
        fn reshape_and_flatten_gradients(x in tensor_in(vec![2, 3, 2], -2.0, 2.0)) {
            let r = check_gradients(std::slice::from_ref(&x), |tape, v| {
                let y = tape.reshape(v[0], &[3, 4])?;
                let w = tape.mul(y, y)?;
                tape.flatten(w)
            });
            prop_assert!(r.is_ok(), "{}", r.unwrap_err());
        }
    }
}
