//! 2-D convolution as a tape op, through the kernels of `convgrad-kernels`.
//!
//! Shapes as PyTorch: input `[N, C_in, H, W]`, weight `[C_out, C_in / groups, kH, kW]`, optional
//! bias `[C_out]`. The kernel crate's dispatcher picks the pointwise (1 x 1 GEMM), depthwise or
//! direct kernel from the geometry; backward calls the same family's backward-data and
//! backward-weight kernels, and skips whichever gradient no input needs (the image fed to the
//! first layer needs none).

use convgrad_kernels::{self as kernels, Conv2dGeometry};

use super::{Tape, Var};
use crate::error::{fmt_shape, Error, Result};
use crate::tensor::shelf;
use crate::Tensor;

/// Stride, padding, dilation and groups of a convolution, as `torch.nn.functional.conv2d` takes
/// them. Pairs are `(height, width)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dOptions {
    pub stride: (usize, usize),
    pub padding: (usize, usize),
    pub dilation: (usize, usize),
    pub groups: usize,
}

impl Default for Conv2dOptions {
    /// Stride 1, no padding, dilation 1, one group.
    fn default() -> Self {
        Conv2dOptions {
            stride: (1, 1),
            padding: (0, 0),
            dilation: (1, 1),
            groups: 1,
        }
    }
}

/// Checks the operands of a convolution and returns its geometry.
pub(crate) fn conv_geometry(
    op: &str,
    input: &[usize],
    weight: &[usize],
    bias: Option<&[usize]>,
    options: Conv2dOptions,
) -> Result<Conv2dGeometry> {
    let describe = || {
        format!(
            "input {}, weight {}{}",
            fmt_shape(input),
            fmt_shape(weight),
            bias.map_or(String::new(), |b| format!(", bias {}", fmt_shape(b)))
        )
    };
    let (&[n, c_in, h, w], &[c_out, c_in_per_group, kh, kw]) = (input, weight) else {
        return Err(Error::shape(
            op,
            format!(
                "{}: input must be [N, C, H, W] and weight [C_out, C_in / groups, kH, kW]",
                describe()
            ),
        ));
    };
    let groups = options.groups;
    if groups == 0 || c_in % groups != 0 || c_out % groups != 0 {
        return Err(Error::shape(
            op,
            format!(
                "{}: {c_in} input and {c_out} output channels must both be divisible by groups {groups}",
                describe()
            ),
        ));
    }
    if c_in_per_group * groups != c_in {
        return Err(Error::shape(
            op,
            format!(
                "{}: the weight expects {c_in_per_group} input channels per group ({groups} groups), \
                 the input has {c_in} channels",
                describe()
            ),
        ));
    }
    if let Some(b) = bias {
        if b != [c_out] {
            return Err(Error::shape(
                op,
                format!("{}: bias must be [{c_out}]", describe()),
            ));
        }
    }
    let geometry = Conv2dGeometry {
        batch: n,
        in_channels: c_in,
        out_channels: c_out,
        in_height: h,
        in_width: w,
        kernel_height: kh,
        kernel_width: kw,
        stride: options.stride,
        padding: options.padding,
        dilation: options.dilation,
        groups,
    };
    if let Err(e) = geometry.validate() {
        let (ph, pw) = (h + 2 * options.padding.0, w + 2 * options.padding.1);
        let reason = if options.stride.0 == 0 || options.stride.1 == 0 {
            "stride must be at least 1".to_string()
        } else if options.dilation.0 == 0 || options.dilation.1 == 0 || kh == 0 || kw == 0 {
            "kernel and dilation must be at least 1".to_string()
        } else {
            let (eh, ew) = (
                options.dilation.0 * (kh - 1) + 1,
                options.dilation.1 * (kw - 1) + 1,
            );
            if eh > ph || ew > pw {
                format!("kernel {kh}x{kw} (spanning {eh}x{ew}) is larger than the padded input {ph}x{pw}")
            } else {
                e.to_string()
            }
        };
        return Err(Error::shape(op, format!("{}: {reason}", describe())));
    }
    Ok(geometry)
}

fn out_shape(g: &Conv2dGeometry) -> [usize; 4] {
    [g.batch, g.out_channels, g.out_height(), g.out_width()]
}

/// 2-D convolution (cross-correlation, as in every deep-learning framework).
///
/// ```
/// use convgrad::functional::{conv2d, Conv2dOptions};
/// use convgrad::Tensor;
/// let image = Tensor::ones(&[1, 1, 4, 4]);
/// let box_filter = Tensor::ones(&[1, 1, 3, 3]);
/// let options = Conv2dOptions { padding: (1, 1), ..Default::default() };
/// let y = conv2d(&image, &box_filter, None, options)?;
/// assert_eq!(y.shape(), &[1, 1, 4, 4]);
/// assert_eq!(&y.data()[..4], &[4.0, 6.0, 6.0, 4.0]); // corners see 4 pixels, edges 6
/// # Ok::<(), convgrad::Error>(())
/// ```
pub fn conv2d(
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    options: Conv2dOptions,
) -> Result<Tensor> {
    let g = conv_geometry(
        "conv2d",
        input.shape(),
        weight.shape(),
        bias.map(|b| b.shape()),
        options,
    )?;
    // The kernel writes every output element, so a recycled buffer needs no zeroing.
    let mut out = shelf::take(g.output_len());
    kernels::conv2d_forward(
        &g,
        input.data(),
        weight.data(),
        bias.map(|b| b.data()),
        &mut out,
    )
    .map_err(|e| Error::shape("conv2d", e.to_string()))?;
    Ok(Tensor::from_shelf(out, &out_shape(&g)))
}

/// Checks that `grad_output` has the shape [`conv2d`] gives for geometry `g`.
fn check_grad_output(op: &str, g: &Conv2dGeometry, grad_output: &Tensor) -> Result<()> {
    let expected = out_shape(g);
    if grad_output.shape() == expected {
        Ok(())
    } else {
        Err(Error::shape(
            op,
            format!(
                "grad_output is {}, but the convolution's output is {}",
                fmt_shape(grad_output.shape()),
                fmt_shape(&expected)
            ),
        ))
    }
}

/// The gradient of [`conv2d`] with respect to its input, given the input's shape, the weight
/// and the gradient of the output (what `torch.nn.grad.conv2d_input` computes).
///
/// ```
/// use convgrad::functional::{conv2d_input_grad, Conv2dOptions};
/// use convgrad::Tensor;
/// let weight = Tensor::ones(&[1, 1, 3, 3]);
/// let grad_output = Tensor::ones(&[1, 1, 2, 2]);
/// let dx = conv2d_input_grad(&[1, 1, 4, 4], &weight, &grad_output, Conv2dOptions::default())?;
/// // The middle pixels are under all four windows, the corners under one.
/// assert_eq!(&dx.data()[..6], &[1.0, 2.0, 2.0, 1.0, 2.0, 4.0]);
/// # Ok::<(), convgrad::Error>(())
/// ```
pub fn conv2d_input_grad(
    input_shape: &[usize],
    weight: &Tensor,
    grad_output: &Tensor,
    options: Conv2dOptions,
) -> Result<Tensor> {
    const OP: &str = "conv2d_input_grad";
    let g = conv_geometry(OP, input_shape, weight.shape(), None, options)?;
    check_grad_output(OP, &g, grad_output)?;
    // The kernel writes every element, so a recycled buffer needs no zeroing.
    let mut dx = shelf::take(g.input_len());
    kernels::conv2d_backward_data(&g, grad_output.data(), weight.data(), &mut dx)
        .map_err(|e| Error::shape(OP, e.to_string()))?;
    Ok(Tensor::from_shelf(dx, input_shape))
}

/// The gradient of [`conv2d`] with respect to its weight, given the input, the weight's shape
/// and the gradient of the output (what `torch.nn.grad.conv2d_weight` computes). The bias
/// gradient, if wanted, is `grad_output` summed over every axis but the channels.
///
/// ```
/// use convgrad::functional::{conv2d_weight_grad, Conv2dOptions};
/// use convgrad::Tensor;
/// let input = Tensor::ones(&[1, 1, 4, 4]);
/// let grad_output = Tensor::ones(&[1, 1, 2, 2]);
/// let dw = conv2d_weight_grad(&input, &[1, 1, 3, 3], &grad_output, Conv2dOptions::default())?;
/// assert_eq!(dw.data(), &[4.0; 9]); // each tap saw four ones
/// # Ok::<(), convgrad::Error>(())
/// ```
pub fn conv2d_weight_grad(
    input: &Tensor,
    weight_shape: &[usize],
    grad_output: &Tensor,
    options: Conv2dOptions,
) -> Result<Tensor> {
    const OP: &str = "conv2d_weight_grad";
    let g = conv_geometry(OP, input.shape(), weight_shape, None, options)?;
    check_grad_output(OP, &g, grad_output)?;
    // The kernel writes every element, so a recycled buffer needs no zeroing.
    let mut dw = shelf::take(g.weight_len());
    kernels::conv2d_backward_weight(&g, input.data(), grad_output.data(), &mut dw, None)
        .map_err(|e| Error::shape(OP, e.to_string()))?;
    Ok(Tensor::from_shelf(dw, weight_shape))
}

impl Tape {
    /// 2-D convolution of `input` `[N, C_in, H, W]` with `weight` `[C_out, C_in / groups, kH, kW]`
    /// and an optional `bias` `[C_out]`.
    pub fn conv2d(
        &mut self,
        input: Var,
        weight: Var,
        bias: Option<Var>,
        options: Conv2dOptions,
    ) -> Result<Var> {
        let (x, w) = (self.get(input)?, self.get(weight)?);
        let b = bias.map(|b| self.get(b)).transpose()?;
        let y = conv2d(&x, &w, b.as_ref(), options)?;
        let g = conv_geometry("conv2d", x.shape(), w.shape(), None, options)?;
        let inputs: Vec<Var> = [input, weight].into_iter().chain(bias).collect();
        let has_bias = bias.is_some();
        Ok(self.record("conv2d", &inputs, y, move |grad, sink| {
            let dy = grad.data();
            if sink.wants(0) {
                let dx = conv2d_input_grad(x.shape(), &w, grad, options)
                    .expect("geometry checked by forward");
                sink.accumulate(0, dx);
            }
            let wants_bias = has_bias && sink.wants(2);
            if sink.wants(1) || wants_bias {
                let mut dw = vec![0.0; g.weight_len()];
                let mut db = vec![0.0; if wants_bias { g.out_channels } else { 0 }];
                kernels::conv2d_backward_weight(
                    &g,
                    x.data(),
                    dy,
                    &mut dw,
                    wants_bias.then_some(db.as_mut_slice()),
                )
                .expect("geometry checked by forward");
                sink.accumulate(1, Tensor::from_parts(dw, w.shape()));
                if wants_bias {
                    sink.accumulate(2, Tensor::from_parts(db, &[g.out_channels]));
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::gradcheck::check_gradients;
    use super::*;
    use crate::Rng;
    use proptest::prelude::*;

    /// A random valid geometry: groups in {1, 2, C}, asymmetric kernels, stride, padding, dilation.
    fn geometries() -> impl Strategy<Value = (Vec<usize>, Vec<usize>, Conv2dOptions)> {
        (
            1usize..3,                                   // batch
            1usize..4,                                   // channels per group in
            1usize..3,                                   // channels per group out
            prop_oneof![Just(0usize), Just(1), Just(2)], // 0: one group, 1: two groups, 2: depthwise
            (1usize..4, 1usize..4),                      // kernel
            (1usize..3, 1usize..3),                      // stride
            (0usize..3, 0usize..3),                      // padding
            (1usize..3, 1usize..3),                      // dilation
            (1usize..6, 1usize..6),                      // extra input size
        )
            .prop_map(|(n, cig, cog, grouping, k, s, p, d, extra)| {
                let (groups, cin, cout) = match grouping {
                    0 => (1, cig, cog),
                    1 => (2, 2 * cig, 2 * cog),
                    _ => (cig + 1, cig + 1, (cig + 1) * cog),
                };
                let per_group_in = cin / groups;
                // Make the input at least as large as the dilated kernel.
                let h = (d.0 * (k.0 - 1) + 1).saturating_sub(2 * p.0).max(1) + extra.0 - 1;
                let w = (d.1 * (k.1 - 1) + 1).saturating_sub(2 * p.1).max(1) + extra.1 - 1;
                let options = Conv2dOptions {
                    stride: s,
                    padding: p,
                    dilation: d,
                    groups,
                };
                (
                    vec![n, cin, h, w],
                    vec![cout, per_group_in, k.0, k.1],
                    options,
                )
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn conv2d_gradients((input, weight, options) in geometries(), seed: u64, with_bias: bool) {
            let mut rng = Rng::seed(seed);
            let x = Tensor::uniform(&input, -1.0, 1.0, &mut rng);
            let w = Tensor::uniform(&weight, -1.0, 1.0, &mut rng);
            let b = Tensor::uniform(&[weight[0]], -1.0, 1.0, &mut rng);
            let r = if with_bias {
                check_gradients(&[x, w, b], |tape, v| tape.conv2d(v[0], v[1], Some(v[2]), options))
            } else {
                check_gradients(&[x, w], |tape, v| tape.conv2d(v[0], v[1], None, options))
            };
            prop_assert!(r.is_ok(), "{input:?} {weight:?} {options:?}: {}", r.unwrap_err());
        }

        /// The public gradient functions against the kernel crate's scalar reference.
        #[test]
        fn gradient_functions_match_the_reference((input, weight, options) in geometries(), seed: u64) {
            let mut rng = Rng::seed(seed);
            let x = Tensor::uniform(&input, -1.0, 1.0, &mut rng);
            let w = Tensor::uniform(&weight, -1.0, 1.0, &mut rng);
            let g = conv_geometry("test", &input, &weight, None, options).unwrap();
            let dy = Tensor::uniform(&out_shape(&g), -1.0, 1.0, &mut rng);
            let mut dx = vec![0.0; g.input_len()];
            kernels::conv::reference::conv2d_backward_data(&g, dy.data(), w.data(), &mut dx);
            let mut dw = vec![0.0; g.weight_len()];
            kernels::conv::reference::conv2d_backward_weight(&g, x.data(), dy.data(), &mut dw, None);
            let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(a, b)| (a - b).abs() <= 1e-4 * (1.0 + b.abs()));
            let ours = conv2d_input_grad(&input, &w, &dy, options).unwrap();
            prop_assert_eq!(ours.shape(), input.as_slice());
            prop_assert!(close(ours.data(), &dx));
            let ours = conv2d_weight_grad(&x, &weight, &dy, options).unwrap();
            prop_assert_eq!(ours.shape(), weight.as_slice());
            prop_assert!(close(ours.data(), &dw));
        }
    }

    /// Layers the dispatcher sends to the Winograd kernels (3 x 3, 16 channels, two images per
    /// thread; stride 1, and stride 2 with padding 1 and 0, which AVX-512 builds send to the
    /// direct kernel instead): their gradients by finite differences, and the gradient functions
    /// against the scalar reference. Odd outputs leave the last tiles partly outside.
    #[test]
    fn winograd_layers_have_the_right_gradients() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let layers = [
            ([4, 16, 9, 9], 1, 1),
            ([4, 16, 9, 7], 2, 1),
            ([4, 16, 11, 10], 2, 0),
        ];
        pool.install(|| {
            for (input, stride, pad) in layers {
                let weight = [16, 16, 3, 3];
                let options = Conv2dOptions {
                    stride: (stride, stride),
                    padding: (pad, pad),
                    ..Default::default()
                };
                let g = conv_geometry("test", &input, &weight, None, options).unwrap();
                let avx512 = cfg!(target_feature = "avx512f");
                assert_eq!(
                    kernels::conv::winograd::applies(&g),
                    stride == 1 || !avx512,
                    "{g:?}"
                );
                let mut rng = Rng::seed(7);
                let x = Tensor::uniform(&input, -1.0, 1.0, &mut rng);
                let w = Tensor::uniform(&weight, -1.0, 1.0, &mut rng);
                let b = Tensor::uniform(&[16], -1.0, 1.0, &mut rng);
                let r = check_gradients(&[x.clone(), w.clone(), b], |tape, v| {
                    tape.conv2d(v[0], v[1], Some(v[2]), options)
                });
                assert!(r.is_ok(), "{g:?}: {}", r.unwrap_err());

                let dy = Tensor::uniform(&out_shape(&g), -1.0, 1.0, &mut rng);
                let mut dx = vec![0.0; g.input_len()];
                kernels::conv::reference::conv2d_backward_data(&g, dy.data(), w.data(), &mut dx);
                let ours = conv2d_input_grad(&input, &w, &dy, options).unwrap();
                for (a, b) in ours.data().iter().zip(&dx) {
                    assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "{g:?}: {a} vs {b}");
                }
            }
        });
    }

    #[test]
    fn gradient_functions_check_grad_output() {
        let (x, w) = (Tensor::zeros(&[1, 3, 8, 8]), Tensor::zeros(&[6, 3, 3, 3]));
        let dy = Tensor::zeros(&[1, 6, 8, 8]);
        let plain = Conv2dOptions::default();
        assert_eq!(
            conv2d_input_grad(x.shape(), &w, &dy, plain).unwrap_err().to_string(),
            "conv2d_input_grad: grad_output is [1, 6, 8, 8], but the convolution's output is [1, 6, 6, 6]"
        );
        assert_eq!(
            conv2d_weight_grad(&x, &[6, 3, 3, 3], &dy, plain).unwrap_err().to_string(),
            "conv2d_weight_grad: grad_output is [1, 6, 8, 8], but the convolution's output is [1, 6, 6, 6]"
        );
        assert!(conv2d_weight_grad(&x, &[6, 2, 3, 3], &dy, plain)
            .unwrap_err()
            .to_string()
            .starts_with("conv2d_weight_grad: input [1, 3, 8, 8], weight [6, 2, 3, 3]"));
    }

    #[test]
    fn impossible_geometries_are_named_errors() {
        let err = |x: &[usize], w: &[usize], b: Option<&[usize]>, o: Conv2dOptions| {
            conv2d(
                &Tensor::zeros(x),
                &Tensor::zeros(w),
                b.map(Tensor::zeros).as_ref(),
                o,
            )
            .unwrap_err()
            .to_string()
        };
        let plain = Conv2dOptions::default();
        assert_eq!(
            err(&[1, 3, 2, 2], &[6, 3, 5, 5], None, plain),
            "conv2d: input [1, 3, 2, 2], weight [6, 3, 5, 5]: kernel 5x5 (spanning 5x5) is larger than the padded input 2x2"
        );
        assert_eq!(
            err(&[1, 3, 8, 8], &[6, 1, 3, 3], None, plain),
            "conv2d: input [1, 3, 8, 8], weight [6, 1, 3, 3]: the weight expects 1 input channels per group (1 groups), the input has 3 channels"
        );
        let grouped = Conv2dOptions { groups: 2, ..plain };
        assert_eq!(
            err(&[1, 3, 8, 8], &[6, 1, 3, 3], None, grouped),
            "conv2d: input [1, 3, 8, 8], weight [6, 1, 3, 3]: 3 input and 6 output channels must both be divisible by groups 2"
        );
        assert_eq!(
            err(&[1, 3, 8, 8], &[6, 3, 3, 3], Some(&[3]), plain),
            "conv2d: input [1, 3, 8, 8], weight [6, 3, 3, 3], bias [3]: bias must be [6]"
        );
        assert!(err(&[3, 8, 8], &[6, 3, 3, 3], None, plain).contains("must be [N, C, H, W]"));
        let no_stride = Conv2dOptions {
            stride: (0, 1),
            ..plain
        };
        assert!(err(&[1, 3, 8, 8], &[6, 3, 3, 3], None, no_stride)
            .ends_with("stride must be at least 1"));
    }

    /// Expected values from PyTorch 2.15 (`scripts/torch_expected.py conv` prints them).
    #[test]
    fn matches_pytorch_on_a_strided_padded_grouped_case() {
        let x = Tensor::from_vec(
            (0..2 * 4 * 5 * 5)
                .map(|i| ((i * 7 % 11) as f32 - 5.0) / 5.0)
                .collect(),
            &[2, 4, 5, 5],
        )
        .unwrap();
        let w = Tensor::from_vec(
            (0..6 * 2 * 3 * 2)
                .map(|i| ((i * 5 % 13) as f32 - 6.0) / 6.0)
                .collect(),
            &[6, 2, 3, 2],
        )
        .unwrap();
        let b = Tensor::from_vec(vec![0.1, -0.2, 0.3, -0.4, 0.5, -0.6], &[6]).unwrap();
        let options = Conv2dOptions {
            stride: (2, 1),
            padding: (1, 2),
            dilation: (1, 2),
            groups: 2,
        };
        let mut tape = Tape::new();
        let (xv, wv, bv) = (tape.param(x), tape.param(w), tape.param(b));
        let y = tape.conv2d(xv, wv, Some(bv), options).unwrap();
        let y_value = tape.value(y).unwrap().clone();
        assert_eq!(y_value.shape(), &[2, 6, 3, 7]);
        let upstream = Tensor::from_vec(
            (0..y_value.numel())
                .map(|i| ((i * 3 % 7) as f32 - 3.0) / 3.0)
                .collect(),
            y_value.shape(),
        )
        .unwrap();
        let grads = tape.backward_with(y, upstream).unwrap();
        let sum = |t: &Tensor| t.data().iter().map(|&v| v as f64).sum::<f64>();
        let sum_sq = |t: &Tensor| t.data().iter().map(|&v| (v as f64).powi(2)).sum::<f64>();
        let expected = PYTORCH_CONV_EXPECTED;
        let got = [
            sum(&y_value),
            sum_sq(&y_value),
            sum(grads.get(xv).unwrap()),
            sum_sq(grads.get(xv).unwrap()),
            sum(grads.get(wv).unwrap()),
            sum_sq(grads.get(wv).unwrap()),
            sum(grads.get(bv).unwrap()),
            y_value.data()[0] as f64,
            y_value.data()[100] as f64,
        ];
        for (i, (g, e)) in got.iter().zip(expected).enumerate() {
            assert!(
                (g - e).abs() <= 1e-4 * e.abs().max(1.0),
                "statistic {i}: {g} vs PyTorch {e}"
            );
        }
    }

    /// `python3 scripts/torch_expected.py conv`: sums and sums of squares of y, dx, dw, the sum of
    /// db, and two elements of y.
    const PYTORCH_CONV_EXPECTED: [f64; 9] = [
        -3.193333464e+01,
        4.461600214e+02,
        -1.000000030e+00,
        1.078456749e+02,
        -4.400000632e+00,
        1.341333436e+02,
        0.0,
        5.666666627e-01,
        1.200000048e+00,
    ];
}
