//! NumPy/PyTorch broadcasting: shapes are aligned on the right, and a dimension of 1 (or a
//! missing leading one) stretches to match. A `[C, 1, 1]` bias broadcasts over `[N, C, H, W]`,
//! an `[F]` bias over `[N, F]`, and a scalar over anything.
//!
//! The backward side lives here too: [`sum_to_shape`] folds a gradient computed at the
//! broadcast shape back to an input's shape. The tape's `GradSink` calls it, so no op has to.

use crate::error::{fmt_shape, Error, Result};
use crate::tensor::{elementwise, numel};
use crate::Tensor;

/// The shape two operands broadcast to, or an error naming the op and both shapes.
pub(crate) fn broadcast_shapes(op: &str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let rank = a.len().max(b.len());
    let dim = |shape: &[usize], i: usize| {
        let offset = rank - shape.len();
        if i < offset {
            1
        } else {
            shape[i - offset]
        }
    };
    (0..rank)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y => Ok(x),
            (1, y) => Ok(y),
            (x, 1) => Ok(x),
            (x, y) => Err(Error::shape(
                op,
                format!(
                    "{} and {} do not broadcast: dimension {i} is {x} against {y}",
                    fmt_shape(a),
                    fmt_shape(b)
                ),
            )),
        })
        .collect()
}

/// Element strides of `shape` as seen from `out_shape`: 0 along broadcast dimensions.
fn strides_within(shape: &[usize], out_shape: &[usize]) -> Vec<usize> {
    let offset = out_shape.len() - shape.len();
    let mut strides = vec![0; out_shape.len()];
    let mut stride = 1;
    for i in (0..shape.len()).rev() {
        if shape[i] != 1 {
            strides[offset + i] = stride;
        }
        stride *= shape[i];
    }
    strides
}

/// Calls `f(out, a, b)` with the flat offsets of every output element and of the elements of
/// `a` and `b` it reads, in row-major order of the output. The last axis is the inner loop.
fn walk(
    out_shape: &[usize],
    a_strides: &[usize],
    b_strides: &[usize],
    mut f: impl FnMut(usize, usize, usize),
) {
    let total = numel(out_shape);
    if total == 0 {
        return;
    }
    let Some((&inner, outer_dims)) = out_shape.split_last() else {
        f(0, 0, 0); // a scalar
        return;
    };
    let rank = out_shape.len();
    let (a_inner, b_inner) = (a_strides[rank - 1], b_strides[rank - 1]);
    let mut counter = vec![0usize; outer_dims.len()];
    let (mut a_base, mut b_base) = (0usize, 0usize);
    let mut out = 0;
    while out < total {
        for j in 0..inner {
            f(out + j, a_base + j * a_inner, b_base + j * b_inner);
        }
        out += inner;
        // Advance the odometer over the outer dimensions.
        for d in (0..outer_dims.len()).rev() {
            counter[d] += 1;
            a_base += a_strides[d];
            b_base += b_strides[d];
            if counter[d] < outer_dims[d] {
                break;
            }
            a_base -= a_strides[d] * outer_dims[d];
            b_base -= b_strides[d] * outer_dims[d];
            counter[d] = 0;
        }
    }
}

/// `f` applied elementwise to `a` and `b` broadcast together.
pub(crate) fn zip_broadcast(
    op: &str,
    a: &Tensor,
    b: &Tensor,
    f: impl Fn(f32, f32) -> f32 + Sync,
) -> Result<Tensor> {
    if a.shape() == b.shape() {
        let data = elementwise::zip_map(a.data(), b.data(), f);
        return Ok(Tensor::from_parts(data, a.shape()));
    }
    let out_shape = broadcast_shapes(op, a.shape(), b.shape())?;
    let (a_data, b_data) = (a.data(), b.data());
    if b.numel() == 1 && out_shape == a.shape() {
        let y = b_data[0];
        let data = elementwise::map(a_data, |x| f(x, y));
        return Ok(Tensor::from_parts(data, &out_shape));
    }
    let mut data = vec![0.0; numel(&out_shape)];
    let a_strides = strides_within(a.shape(), &out_shape);
    let b_strides = strides_within(b.shape(), &out_shape);
    walk(&out_shape, &a_strides, &b_strides, |o, i, j| {
        data[o] = f(a_data[i], b_data[j]);
    });
    Ok(Tensor::from_parts(data, &out_shape))
}

/// Sums `grad` over the dimensions along which `shape` was broadcast, giving a tensor of
/// `shape`. `shape` must broadcast to `grad`'s shape (the tape guarantees it).
pub(crate) fn sum_to_shape(grad: &Tensor, shape: &[usize]) -> Tensor {
    let out_shape = grad.shape();
    debug_assert!(broadcast_shapes("sum_to_shape", shape, out_shape).is_ok_and(|s| s == out_shape));
    let mut sums = vec![0.0f32; numel(shape)];
    let target_strides = strides_within(shape, out_shape);
    let unit: Vec<usize> = strides_within(out_shape, out_shape);
    let g = grad.data();
    walk(out_shape, &unit, &target_strides, |_, i, t| sums[t] += g[i]);
    Tensor::from_parts(sums, shape)
}

/// `t` stretched to `shape` (a copy), the inverse view of [`sum_to_shape`].
pub(crate) fn broadcast_to(t: &Tensor, shape: &[usize]) -> Tensor {
    let strides = strides_within(t.shape(), shape);
    let mut data = vec![0.0; numel(shape)];
    let src = t.data();
    walk(shape, &strides, &strides, |o, i, _| data[o] = src[i]);
    Tensor::from_parts(data, shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(data: &[f32], shape: &[usize]) -> Tensor {
        Tensor::from_vec(data.to_vec(), shape).unwrap()
    }

    #[test]
    fn shapes_broadcast_like_numpy() {
        let s = |a: &[usize], b: &[usize]| broadcast_shapes("add", a, b);
        assert_eq!(s(&[2, 3, 4, 5], &[3, 1, 1]).unwrap(), vec![2, 3, 4, 5]);
        assert_eq!(s(&[8, 10], &[10]).unwrap(), vec![8, 10]);
        assert_eq!(s(&[8, 10], &[]).unwrap(), vec![8, 10]);
        assert_eq!(s(&[4, 1], &[1, 5]).unwrap(), vec![4, 5]);
        let err = s(&[2, 3, 4, 5], &[3]).unwrap_err().to_string();
        assert_eq!(
            err,
            "add: [2, 3, 4, 5] and [3] do not broadcast: dimension 3 is 5 against 3"
        );
    }

    #[test]
    fn channel_bias_is_added_per_channel() {
        let x = Tensor::zeros(&[2, 3, 2, 2]);
        let bias = t(&[1.0, 2.0, 3.0], &[3, 1, 1]);
        let y = zip_broadcast("add", &x, &bias, |a, b| a + b).unwrap();
        assert_eq!(&y.data()[..8], &[1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0]);
        assert_eq!(&y.data()[12..16], &[1.0; 4]);
        let back = sum_to_shape(&y, &[3, 1, 1]);
        assert_eq!(back.data(), &[8.0, 16.0, 24.0]);
    }

    #[test]
    fn outer_product_by_broadcasting_and_back() {
        let col = t(&[1.0, 2.0], &[2, 1]);
        let row = t(&[10.0, 20.0, 30.0], &[3]);
        let p = zip_broadcast("mul", &col, &row, |a, b| a * b).unwrap();
        assert_eq!(p.data(), &[10.0, 20.0, 30.0, 20.0, 40.0, 60.0]);
        assert_eq!(sum_to_shape(&p, &[3]).data(), &[30.0, 60.0, 90.0]);
        assert_eq!(sum_to_shape(&p, &[2, 1]).data(), &[60.0, 120.0]);
        assert_eq!(sum_to_shape(&p, &[]).data(), &[180.0]);
        assert_eq!(
            broadcast_to(&row, &[2, 3]).data(),
            &[10.0, 20.0, 30.0, 10.0, 20.0, 30.0]
        );
    }
}
