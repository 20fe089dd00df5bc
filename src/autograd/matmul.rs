//! 2-D matrix product through `matrixmultiply`'s sgemm.
//!
//! Backward: for `C = A B`, `dA = dC B^T` and `dB = A^T dC`. sgemm takes row and column strides,
//! so the transposes cost nothing.

use super::{Tape, Var};
use crate::error::{fmt_shape, Error, Result};
use crate::Tensor;

/// A row-major `rows x cols` matrix, possibly read transposed.
#[derive(Clone, Copy)]
pub(crate) struct MatRef<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub transposed: bool,
}

impl MatRef<'_> {
    /// Shape as the product sees it.
    fn dims(&self) -> (usize, usize) {
        if self.transposed {
            (self.cols, self.rows)
        } else {
            (self.rows, self.cols)
        }
    }

    /// (row stride, column stride) as the product sees it.
    fn strides(&self) -> (isize, isize) {
        if self.transposed {
            (1, self.cols as isize)
        } else {
            (self.cols as isize, 1)
        }
    }
}

/// `c = a b + beta c` where `c` is row-major `m x n`.
pub(crate) fn gemm(a: MatRef<'_>, b: MatRef<'_>, beta: f32, c: &mut [f32]) {
    let (m, k) = a.dims();
    let (k2, n) = b.dims();
    assert_eq!(k, k2, "gemm inner dimensions");
    assert_eq!(a.data.len(), a.rows * a.cols, "gemm: a's length");
    assert_eq!(b.data.len(), b.rows * b.cols, "gemm: b's length");
    assert_eq!(c.len(), m * n, "gemm: c's length");
    if m == 0 || n == 0 {
        return;
    }
    let (rsa, csa) = a.strides();
    let (rsb, csb) = b.strides();
    // SAFETY: the asserts above ensure that a is m x k, b is k x n and c is m x n with the given
    // strides, so every index sgemm forms is inside its slice; c is borrowed mutably and so
    // does not alias a or b.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.data.as_ptr(),
            rsa,
            csa,
            b.data.as_ptr(),
            rsb,
            csb,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

fn as_matrix(t: &Tensor) -> MatRef<'_> {
    MatRef {
        data: t.data(),
        rows: t.shape()[0],
        cols: t.shape()[1],
        transposed: false,
    }
}

/// The matrix product of `[m, k]` and `[k, n]`.
pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if a.rank() != 2 || b.rank() != 2 {
        return Err(Error::shape(
            "matmul",
            format!(
                "{} x {}: both operands must be 2-D matrices",
                fmt_shape(a.shape()),
                fmt_shape(b.shape())
            ),
        ));
    }
    let (lhs, rhs) = (as_matrix(a), as_matrix(b));
    if lhs.cols != rhs.rows {
        return Err(Error::shape(
            "matmul",
            format!(
                "{} x {}: inner dimensions {} and {} differ",
                fmt_shape(a.shape()),
                fmt_shape(b.shape()),
                lhs.cols,
                rhs.rows
            ),
        ));
    }
    let mut out = vec![0.0; lhs.rows * rhs.cols];
    gemm(lhs, rhs, 0.0, &mut out);
    Ok(Tensor::from_parts(out, &[lhs.rows, rhs.cols]))
}

/// A fully connected layer: `x W^T + b` for `x` `[N, in]`, `weight` `[out, in]` (PyTorch's
/// layout) and an optional `bias` `[out]`.
pub fn linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let (n, out) = linear_shapes(x, weight, bias)?;
    let mut y = vec![0.0; n * out];
    if let Some(b) = bias {
        for row in y.chunks_exact_mut(out) {
            row.copy_from_slice(b.data());
        }
    }
    let w_t = MatRef {
        data: weight.data(),
        rows: out,
        cols: x.shape()[1],
        transposed: true,
    };
    let beta = if bias.is_some() { 1.0 } else { 0.0 };
    gemm(as_matrix(x), w_t, beta, &mut y);
    Ok(Tensor::from_parts(y, &[n, out]))
}

fn linear_shapes(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<(usize, usize)> {
    let ok = match (x.shape(), weight.shape()) {
        (&[_, inner], &[out, w_inner]) => {
            inner == w_inner && bias.is_none_or(|b| b.shape() == [out])
        }
        _ => false,
    };
    if !ok {
        return Err(Error::shape(
            "linear",
            format!(
                "input {}, weight {}{}: expected input [N, in], weight [out, in], bias [out]",
                fmt_shape(x.shape()),
                fmt_shape(weight.shape()),
                bias.map_or(String::new(), |b| format!(
                    ", bias {}",
                    fmt_shape(b.shape())
                ))
            ),
        ));
    }
    Ok((x.shape()[0], weight.shape()[0]))
}

impl Tape {
    /// A fully connected layer, `x W^T + b`, with `weight` `[out, in]` as PyTorch stores it.
    pub fn linear(&mut self, x: Var, weight: Var, bias: Option<Var>) -> Result<Var> {
        let (x_value, w_value) = (self.get(x)?, self.get(weight)?);
        let b_value = bias.map(|b| self.get(b)).transpose()?;
        let y = linear(&x_value, &w_value, b_value.as_ref())?;
        let inputs: Vec<Var> = [x, weight].into_iter().chain(bias).collect();
        let has_bias = bias.is_some();
        Ok(self.record("linear", &inputs, y, move |g, sink| {
            let (n, inner, out) = (x_value.shape()[0], x_value.shape()[1], w_value.shape()[0]);
            let g_mat = as_matrix(g);
            if sink.wants(0) {
                // dx = g W
                let mut dx = vec![0.0; n * inner];
                gemm(g_mat, as_matrix(&w_value), 0.0, &mut dx);
                sink.accumulate(0, Tensor::from_parts(dx, &[n, inner]));
            }
            if sink.wants(1) {
                // dW = g^T x
                let mut dw = vec![0.0; out * inner];
                let g_t = MatRef {
                    transposed: true,
                    ..g_mat
                };
                gemm(g_t, as_matrix(&x_value), 0.0, &mut dw);
                sink.accumulate(1, Tensor::from_parts(dw, &[out, inner]));
            }
            if has_bias && sink.wants(2) {
                // The sink sums the [N, out] gradient down to the bias's [out].
                sink.accumulate(2, g.clone());
            }
        }))
    }

    /// Matrix product of `[m, k]` and `[k, n]`.
    pub fn matmul(&mut self, a: Var, b: Var) -> Result<Var> {
        let (a_value, b_value) = (self.get(a)?, self.get(b)?);
        let y = matmul(&a_value, &b_value)?;
        Ok(self.record("matmul", &[a, b], y, move |g, sink| {
            let (m, k, n) = (a_value.shape()[0], a_value.shape()[1], b_value.shape()[1]);
            let g = MatRef {
                data: g.data(),
                rows: m,
                cols: n,
                transposed: false,
            };
            if sink.wants(0) {
                let mut da = vec![0.0; m * k];
                let b_t = MatRef {
                    data: b_value.data(),
                    rows: k,
                    cols: n,
                    transposed: true,
                };
                gemm(g, b_t, 0.0, &mut da);
                sink.accumulate(0, Tensor::from_parts(da, &[m, k]));
            }
            if sink.wants(1) {
                let mut db = vec![0.0; k * n];
                let a_t = MatRef {
                    data: a_value.data(),
                    rows: m,
                    cols: k,
                    transposed: true,
                };
                gemm(a_t, g, 0.0, &mut db);
                sink.accumulate(1, Tensor::from_parts(db, &[k, n]));
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
    fn small_product_is_exact() {
        let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
        let b = Tensor::from_vec(vec![7.0, 8.0, 9.0, 10.0, 11.0, 12.0], &[3, 2]).unwrap();
        assert_eq!(matmul(&a, &b).unwrap().data(), &[58.0, 64.0, 139.0, 154.0]);
    }

    #[test]
    fn linear_is_x_times_w_transposed_plus_b() {
        let x = Tensor::from_vec(vec![1.0, 2.0], &[1, 2]).unwrap();
        let w = Tensor::from_vec(vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0], &[3, 2]).unwrap();
        let b = Tensor::from_vec(vec![0.5, 0.5, 0.5], &[3]).unwrap();
        assert_eq!(linear(&x, &w, Some(&b)).unwrap().data(), &[1.5, 2.5, 3.5]);
        assert_eq!(
            linear(&x, &Tensor::zeros(&[3, 4]), None).unwrap_err().to_string(),
            "linear: input [1, 2], weight [3, 4]: expected input [N, in], weight [out, in], bias [out]"
        );
    }

    #[test]
    fn shape_errors_name_both_operands() {
        let a = Tensor::zeros(&[32, 400]);
        let b = Tensor::zeros(&[120, 84]);
        assert_eq!(
            matmul(&a, &b).unwrap_err().to_string(),
            "matmul: [32, 400] x [120, 84]: inner dimensions 400 and 120 differ"
        );
        let v = Tensor::zeros(&[400]);
        assert_eq!(
            matmul(&a, &v).unwrap_err().to_string(),
            "matmul: [32, 400] x [400]: both operands must be 2-D matrices"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn matmul_gradients(
            (m, k, n) in (1usize..5, 1usize..6, 1usize..5),
            seed in any::<u64>(),
        ) {
            let mut rng = crate::Rng::seed(seed);
            let a = Tensor::uniform(&[m, k], -2.0, 2.0, &mut rng);
            let b = Tensor::uniform(&[k, n], -2.0, 2.0, &mut rng);
            let r = check_gradients(&[a, b], |tape, v| tape.matmul(v[0], v[1]));
            prop_assert!(r.is_ok(), "{}", r.unwrap_err());
        }

        #[test]
        fn linear_gradients(
            x in tensor_in(vec![3, 4], -2.0, 2.0),
            w in tensor_in(vec![2, 4], -1.0, 1.0),
            b in tensor_in(vec![2], -1.0, 1.0),
        ) {
            let r = check_gradients(&[x.clone(), w.clone(), b], |tape, v| tape.linear(v[0], v[1], Some(v[2])));
            prop_assert!(r.is_ok(), "{}", r.unwrap_err());
            let r = check_gradients(&[x, w], |tape, v| tape.linear(v[0], v[1], None));
            prop_assert!(r.is_ok(), "{}", r.unwrap_err());
        }

        #[test]
        fn matmul_with_bias_like_a_linear_layer(
            x in tensor_in(vec![3, 4], -2.0, 2.0),
            w in tensor_in(vec![4, 2], -1.0, 1.0),
            b in tensor_in(vec![2], -1.0, 1.0),
        ) {
            let r = check_gradients(&[x, w, b], |tape, v| {
                let y = tape.matmul(v[0], v[1])?;
                tape.add(y, v[2])
            });
            prop_assert!(r.is_ok(), "{}", r.unwrap_err());
        }
    }
}
