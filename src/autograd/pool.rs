//! Pooling as tape ops: max (with `ceil_mode`, padding and dilation; the gradient goes to the
//! first maximum of each window, as in PyTorch), average (with or without `count_include_pad`),
//! adaptive average (AlexNet's and VGG's heads) and global average (`[N, C, H, W]` to `[N, C]`).

use convgrad_kernels::pool::{self as kernels, AdaptivePool2dGeometry, NchwShape};
use convgrad_kernels::Pool2dGeometry;

use super::{Tape, Var};
use crate::error::{fmt_shape, Error, Result};
use crate::Tensor;

/// Window, stride, padding, dilation and rounding of a pooling op; pairs are `(height, width)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pool2dOptions {
    pub kernel: (usize, usize),
    pub stride: (usize, usize),
    pub padding: (usize, usize),
    /// Max pooling only.
    pub dilation: (usize, usize),
    /// Round the output size up (a last, partial window), as PyTorch's `ceil_mode`.
    pub ceil_mode: bool,
    /// Average pooling only: divide by the whole window, padding included (PyTorch's default),
    /// rather than by the real elements it covers.
    pub count_include_pad: bool,
}

impl Pool2dOptions {
    /// A `kernel x kernel` window with stride equal to the kernel, as PyTorch's default.
    pub fn new(kernel: usize) -> Self {
        Pool2dOptions {
            kernel: (kernel, kernel),
            stride: (kernel, kernel),
            padding: (0, 0),
            dilation: (1, 1),
            ceil_mode: false,
            count_include_pad: true,
        }
    }
    pub fn stride(mut self, stride: usize) -> Self {
        self.stride = (stride, stride);
        self
    }
    pub fn padding(mut self, padding: usize) -> Self {
        self.padding = (padding, padding);
        self
    }
    pub fn ceil_mode(mut self, ceil_mode: bool) -> Self {
        self.ceil_mode = ceil_mode;
        self
    }
    pub fn count_include_pad(mut self, count_include_pad: bool) -> Self {
        self.count_include_pad = count_include_pad;
        self
    }
}

pub(crate) fn nchw(op: &str, shape: &[usize]) -> Result<NchwShape> {
    match *shape {
        [n, c, h, w] => Ok(NchwShape::new(n, c, (h, w))),
        _ => Err(Error::shape(
            op,
            format!("expects an [N, C, H, W] input, got {}", fmt_shape(shape)),
        )),
    }
}

fn pool_geometry(op: &str, shape: &[usize], o: &Pool2dOptions) -> Result<Pool2dGeometry> {
    let s = nchw(op, shape)?;
    let g = Pool2dGeometry {
        batch: s.batch,
        channels: s.channels,
        in_height: s.height,
        in_width: s.width,
        kernel: o.kernel,
        stride: o.stride,
        padding: o.padding,
        dilation: o.dilation,
        ceil_mode: o.ceil_mode,
    };
    g.validate().map_err(|_| {
        Error::shape(
            op,
            format!(
                "input {}: window {:?} stride {:?} padding {:?} dilation {:?} does not fit (the \
                 window must fit the padded input, stride and dilation be at least 1, and padding \
                 be at most half the window)",
                fmt_shape(shape),
                o.kernel,
                o.stride,
                o.padding,
                o.dilation
            ),
        )
    })?;
    Ok(g)
}

fn pooled_shape(g: &Pool2dGeometry) -> [usize; 4] {
    [g.batch, g.channels, g.out_height(), g.out_width()]
}

fn kernel_error(op: &str) -> impl Fn(convgrad_kernels::KernelError) -> Error + '_ {
    move |e| Error::shape(op, e.to_string())
}

fn max_pool_with_argmax(
    x: &Tensor,
    o: &Pool2dOptions,
) -> Result<(Tensor, Vec<u32>, Pool2dGeometry)> {
    let g = pool_geometry("max_pool2d", x.shape(), o)?;
    let mut out = vec![0.0; g.output_len()];
    let mut argmax = vec![0u32; g.output_len()];
    kernels::max_pool2d_forward(&g, x.data(), &mut out, &mut argmax)
        .map_err(kernel_error("max_pool2d"))?;
    Ok((Tensor::from_parts(out, &pooled_shape(&g)), argmax, g))
}

/// Max pooling over `[N, C, H, W]`; padding counts as minus infinity.
pub fn max_pool2d(x: &Tensor, options: Pool2dOptions) -> Result<Tensor> {
    Ok(max_pool_with_argmax(x, &options)?.0)
}

/// Average pooling over `[N, C, H, W]` (no dilation, as in PyTorch).
pub fn avg_pool2d(x: &Tensor, options: Pool2dOptions) -> Result<Tensor> {
    let g = pool_geometry("avg_pool2d", x.shape(), &options)?;
    let mut out = vec![0.0; g.output_len()];
    kernels::avg_pool2d_forward(&g, options.count_include_pad, x.data(), &mut out)
        .map_err(kernel_error("avg_pool2d"))?;
    Ok(Tensor::from_parts(out, &pooled_shape(&g)))
}

fn adaptive_geometry(x: &[usize], output_size: (usize, usize)) -> Result<AdaptivePool2dGeometry> {
    let s = nchw("adaptive_avg_pool2d", x)?;
    if output_size.0 == 0 || output_size.1 == 0 || s.height == 0 || s.width == 0 {
        return Err(Error::shape(
            "adaptive_avg_pool2d",
            format!("input {} cannot be pooled to {output_size:?}", fmt_shape(x)),
        ));
    }
    Ok(AdaptivePool2dGeometry::new(
        s.batch,
        s.channels,
        (s.height, s.width),
        output_size,
    ))
}

/// Average pooling to a fixed `(height, width)` whatever the input size (PyTorch's rule for the
/// windows: `[floor(i * n / out), ceil((i + 1) * n / out))`).
pub fn adaptive_avg_pool2d(x: &Tensor, output_size: (usize, usize)) -> Result<Tensor> {
    let g = adaptive_geometry(x.shape(), output_size)?;
    let mut out = vec![0.0; g.output_len()];
    kernels::adaptive_avg_pool2d_forward(&g, x.data(), &mut out)
        .map_err(kernel_error("adaptive_avg_pool2d"))?;
    Ok(Tensor::from_parts(
        out,
        &[g.batch, g.channels, output_size.0, output_size.1],
    ))
}

/// The mean of each channel: `[N, C, H, W]` to `[N, C]`.
pub fn global_avg_pool2d(x: &Tensor) -> Result<Tensor> {
    let s = nchw("global_avg_pool2d", x.shape())?;
    let mut out = vec![0.0; s.batch * s.channels];
    kernels::global_avg_pool2d_forward(&s, x.data(), &mut out)
        .map_err(kernel_error("global_avg_pool2d"))?;
    Ok(Tensor::from_parts(out, &[s.batch, s.channels]))
}

impl Tape {
    /// Max pooling; backward routes each output gradient to its window's first maximum.
    pub fn max_pool2d(&mut self, x: Var, options: Pool2dOptions) -> Result<Var> {
        let (y, argmax, g) = max_pool_with_argmax(self.value(x)?, &options)?;
        let in_shape = self.shape(x)?.to_vec();
        Ok(self.record("max_pool2d", &[x], y, move |grad, sink| {
            let mut dx = vec![0.0; g.input_len()];
            kernels::max_pool2d_backward(&g, grad.data(), &argmax, &mut dx)
                .expect("checked by forward");
            sink.accumulate(0, Tensor::from_parts(dx, &in_shape));
        }))
    }

    /// Average pooling.
    pub fn avg_pool2d(&mut self, x: Var, options: Pool2dOptions) -> Result<Var> {
        let y = avg_pool2d(self.value(x)?, options)?;
        let in_shape = self.shape(x)?.to_vec();
        let g = pool_geometry("avg_pool2d", &in_shape, &options)?;
        Ok(self.record("avg_pool2d", &[x], y, move |grad, sink| {
            let mut dx = vec![0.0; g.input_len()];
            kernels::avg_pool2d_backward(&g, options.count_include_pad, grad.data(), &mut dx)
                .expect("checked by forward");
            sink.accumulate(0, Tensor::from_parts(dx, &in_shape));
        }))
    }

    /// Adaptive average pooling to `output_size`.
    pub fn adaptive_avg_pool2d(&mut self, x: Var, output_size: (usize, usize)) -> Result<Var> {
        let y = adaptive_avg_pool2d(self.value(x)?, output_size)?;
        let in_shape = self.shape(x)?.to_vec();
        let g = adaptive_geometry(&in_shape, output_size)?;
        Ok(
            self.record("adaptive_avg_pool2d", &[x], y, move |grad, sink| {
                let mut dx = vec![0.0; g.input_len()];
                kernels::adaptive_avg_pool2d_backward(&g, grad.data(), &mut dx)
                    .expect("checked by forward");
                sink.accumulate(0, Tensor::from_parts(dx, &in_shape));
            }),
        )
    }

    /// Global average pooling, `[N, C, H, W]` to `[N, C]`.
    pub fn global_avg_pool2d(&mut self, x: Var) -> Result<Var> {
        let y = global_avg_pool2d(self.value(x)?)?;
        let in_shape = self.shape(x)?.to_vec();
        let s = nchw("global_avg_pool2d", &in_shape)?;
        Ok(
            self.record("global_avg_pool2d", &[x], y, move |grad, sink| {
                let mut dx = vec![0.0; s.len()];
                kernels::global_avg_pool2d_backward(&s, grad.data(), &mut dx)
                    .expect("checked by forward");
                sink.accumulate(0, Tensor::from_parts(dx, &in_shape));
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::gradcheck::check_gradients;
    use super::*;
    use crate::Rng;
    use proptest::prelude::*;

    /// Distinct values spaced well beyond the finite-difference step, so no window has a tie.
    fn distinct(shape: &[usize], seed: u64) -> Tensor {
        let n: usize = shape.iter().product();
        let mut values: Vec<f32> = (0..n).map(|i| i as f32 * 0.05 - n as f32 * 0.025).collect();
        Rng::seed(seed).shuffle(&mut values);
        Tensor::from_vec(values, shape).unwrap()
    }

    fn options() -> impl Strategy<Value = Pool2dOptions> {
        (
            (1usize..4, 1usize..4),
            (1usize..4, 1usize..4),
            any::<bool>(),
            any::<bool>(),
            0usize..2,
        )
            .prop_map(|(kernel, stride, ceil_mode, count_include_pad, pad)| {
                Pool2dOptions {
                    kernel,
                    stride,
                    padding: ((pad).min(kernel.0 / 2), (pad).min(kernel.1 / 2)),
                    dilation: (1, 1),
                    ceil_mode,
                    count_include_pad,
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn pooling_gradients(o in options(), h in 3usize..7, w in 3usize..7, seed: u64, dilated: bool) {
            let x = distinct(&[2, 2, h, w], seed);
            let r = check_gradients(std::slice::from_ref(&x), |tape, v| tape.avg_pool2d(v[0], o));
            prop_assert!(r.is_ok(), "avg {o:?}: {}", r.unwrap_err());
            let o = if dilated { Pool2dOptions { dilation: (2, 1), ..o } } else { o };
            if max_pool2d(&x, o).is_ok() {
                let r = check_gradients(std::slice::from_ref(&x), |tape, v| tape.max_pool2d(v[0], o));
                prop_assert!(r.is_ok(), "max {o:?}: {}", r.unwrap_err());
            }
        }

        #[test]
        fn adaptive_and_global_gradients(h in 1usize..8, w in 1usize..8, oh in 1usize..5, ow in 1usize..5, seed: u64) {
            let x = distinct(&[2, 3, h, w], seed);
            let r = check_gradients(std::slice::from_ref(&x), |tape, v| tape.adaptive_avg_pool2d(v[0], (oh, ow)));
            prop_assert!(r.is_ok(), "adaptive: {}", r.unwrap_err());
            let r = check_gradients(&[x], |tape, v| tape.global_avg_pool2d(v[0]));
            prop_assert!(r.is_ok(), "global: {}", r.unwrap_err());
        }
    }

    #[test]
    fn max_pool_ties_route_to_the_first_maximum() {
        let x = Tensor::from_vec(vec![1.0, 3.0, 3.0, 2.0], &[1, 1, 2, 2]).unwrap();
        let mut tape = Tape::new();
        let xv = tape.param(x);
        let y = tape.max_pool2d(xv, Pool2dOptions::new(2)).unwrap();
        let loss = tape.sum(y).unwrap();
        let grads = tape.backward(loss).unwrap();
        assert_eq!(grads.get(xv).unwrap().data(), &[0.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn errors_name_the_op_and_shapes() {
        let x = Tensor::zeros(&[1, 3, 2, 2]);
        let err = max_pool2d(&x, Pool2dOptions::new(3))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("max_pool2d: input [1, 3, 2, 2]: window (3, 3)"),
            "{err}"
        );
        let err = global_avg_pool2d(&Tensor::zeros(&[3, 2]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "global_avg_pool2d: expects an [N, C, H, W] input, got [3, 2]"
        );
    }

    /// `python3 scripts/torch_expected.py pool`
    #[test]
    fn matches_pytorch() {
        let x = Tensor::from_vec(
            (0..2 * 3 * 7 * 6)
                .map(|i| ((i * 7 % 19) as f32 - 9.0) / 4.0)
                .collect(),
            &[2, 3, 7, 6],
        )
        .unwrap();
        let cases: [(&str, Pool2dOptions); 3] = [
            (
                "max k3 s2 ceil",
                Pool2dOptions::new(3).stride(2).ceil_mode(true),
            ),
            (
                "avg k3 s2 p1 exclude pad, ceil",
                Pool2dOptions::new(3)
                    .stride(2)
                    .padding(1)
                    .ceil_mode(true)
                    .count_include_pad(false),
            ),
            (
                "avg k2 s1 p1 include pad",
                Pool2dOptions::new(2).stride(1).padding(1),
            ),
        ];
        let mut sums = Vec::new();
        for (name, o) in cases {
            let y = if name.starts_with("max") {
                max_pool2d(&x, o)
            } else {
                avg_pool2d(&x, o)
            }
            .unwrap();
            sums.push((
                name,
                y.shape().to_vec(),
                y.data().iter().map(|&v| v as f64).sum::<f64>(),
                y.data().iter().map(|&v| (v as f64).powi(2)).sum::<f64>(),
            ));
        }
        let adaptive = adaptive_avg_pool2d(&x, (3, 4)).unwrap();
        sums.push((
            "adaptive 3x4",
            adaptive.shape().to_vec(),
            adaptive.data().iter().map(|&v| v as f64).sum(),
            adaptive.data().iter().map(|&v| (v as f64).powi(2)).sum(),
        ));
        for ((name, shape, sum, sum_sq), (e_shape, e_sum, e_sq)) in
            sums.into_iter().zip(PYTORCH_POOL)
        {
            assert_eq!(shape, e_shape, "{name}");
            assert!(
                (sum - e_sum).abs() < 1e-4 * e_sum.abs().max(1.0),
                "{name}: sum {sum} vs {e_sum}"
            );
            assert!(
                (sum_sq - e_sq).abs() < 1e-4 * e_sq.abs().max(1.0),
                "{name}: sum of squares {sum_sq} vs {e_sq}"
            );
        }
    }

    /// Output shape, sum and sum of squares per case, from PyTorch 2.15.
    const PYTORCH_POOL: [([usize; 4], f64, f64); 4] = [
        ([2, 3, 3, 3], 1.085000000e+02, 2.210000000e+02),
        ([2, 3, 4, 4], -9.305555839e-01, 1.918634268e+01),
        ([2, 3, 8, 7], -3.250000000e+00, 6.675781250e+01),
        ([2, 3, 3, 4], 5.416666754e-01, 7.956597066e+00),
    ];
}
