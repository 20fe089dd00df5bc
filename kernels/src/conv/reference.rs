//! The scalar reference convolution: six nested loops, written to be read.
//!
//! This is the definition every fast kernel is tested against, and the version to read first.
//! It handles every geometry (groups, asymmetric kernels, stride, padding, dilation). All three
//! functions overwrite their outputs.

use crate::Conv2dGeometry;

/// Index of the input pixel under kernel tap `k` for output position `o` along one axis,
/// or `None` when the tap falls in the zero padding.
#[inline]
pub(crate) fn input_index(
    o: usize,
    k: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
    size: usize,
) -> Option<usize> {
    let i = (o * stride + k * dilation).checked_sub(padding)?;
    (i < size).then_some(i)
}

/// `output[n, co, oy, ox] = bias[co] + sum over (ci in co's group, ky, kx) of
/// input[n, ci, oy*sy + ky*dy - py, ox*sx + kx*dx - px] * weight[co, ci - group start, ky, kx]`.
pub fn conv2d_forward(
    g: &Conv2dGeometry,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
) {
    let (oh, ow) = (g.out_height(), g.out_width());
    let (cin_g, cout_g) = (g.in_channels_per_group(), g.out_channels_per_group());
    let (kh, kw) = (g.kernel_height, g.kernel_width);
    for n in 0..g.batch {
        for co in 0..g.out_channels {
            let group = co / cout_g;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = bias.map_or(0.0, |b| b[co]);
                    for cig in 0..cin_g {
                        let ci = group * cin_g + cig;
                        for ky in 0..kh {
                            let Some(iy) = input_index(
                                oy,
                                ky,
                                g.stride.0,
                                g.padding.0,
                                g.dilation.0,
                                g.in_height,
                            ) else {
                                continue;
                            };
                            for kx in 0..kw {
                                let Some(ix) = input_index(
                                    ox,
                                    kx,
                                    g.stride.1,
                                    g.padding.1,
                                    g.dilation.1,
                                    g.in_width,
                                ) else {
                                    continue;
                                };
                                let x = input[((n * g.in_channels + ci) * g.in_height + iy)
                                    * g.in_width
                                    + ix];
                                let w = weight[((co * cin_g + cig) * kh + ky) * kw + kx];
                                acc += x * w;
                            }
                        }
                    }
                    output[((n * g.out_channels + co) * oh + oy) * ow + ox] = acc;
                }
            }
        }
    }
}

/// Gradient with respect to the input: every output gradient is scattered back through the
/// same taps that produced it.
pub fn conv2d_backward_data(
    g: &Conv2dGeometry,
    grad_output: &[f32],
    weight: &[f32],
    grad_input: &mut [f32],
) {
    grad_input.fill(0.0);
    let (oh, ow) = (g.out_height(), g.out_width());
    let (cin_g, cout_g) = (g.in_channels_per_group(), g.out_channels_per_group());
    let (kh, kw) = (g.kernel_height, g.kernel_width);
    for n in 0..g.batch {
        for co in 0..g.out_channels {
            let group = co / cout_g;
            for oy in 0..oh {
                for ox in 0..ow {
                    let dy = grad_output[((n * g.out_channels + co) * oh + oy) * ow + ox];
                    for cig in 0..cin_g {
                        let ci = group * cin_g + cig;
                        for ky in 0..kh {
                            let Some(iy) = input_index(
                                oy,
                                ky,
                                g.stride.0,
                                g.padding.0,
                                g.dilation.0,
                                g.in_height,
                            ) else {
                                continue;
                            };
                            for kx in 0..kw {
                                let Some(ix) = input_index(
                                    ox,
                                    kx,
                                    g.stride.1,
                                    g.padding.1,
                                    g.dilation.1,
                                    g.in_width,
                                ) else {
                                    continue;
                                };
                                let w = weight[((co * cin_g + cig) * kh + ky) * kw + kx];
                                grad_input[((n * g.in_channels + ci) * g.in_height + iy)
                                    * g.in_width
                                    + ix] += dy * w;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Gradient with respect to the weight (and the bias, the sum of the output gradient per channel).
pub fn conv2d_backward_weight(
    g: &Conv2dGeometry,
    input: &[f32],
    grad_output: &[f32],
    grad_weight: &mut [f32],
    grad_bias: Option<&mut [f32]>,
) {
    grad_weight.fill(0.0);
    let (oh, ow) = (g.out_height(), g.out_width());
    let (cin_g, cout_g) = (g.in_channels_per_group(), g.out_channels_per_group());
    let (kh, kw) = (g.kernel_height, g.kernel_width);
    for n in 0..g.batch {
        for co in 0..g.out_channels {
            let group = co / cout_g;
            for oy in 0..oh {
                for ox in 0..ow {
                    let dy = grad_output[((n * g.out_channels + co) * oh + oy) * ow + ox];
                    for cig in 0..cin_g {
                        let ci = group * cin_g + cig;
                        for ky in 0..kh {
                            let Some(iy) = input_index(
                                oy,
                                ky,
                                g.stride.0,
                                g.padding.0,
                                g.dilation.0,
                                g.in_height,
                            ) else {
                                continue;
                            };
                            for kx in 0..kw {
                                let Some(ix) = input_index(
                                    ox,
                                    kx,
                                    g.stride.1,
                                    g.padding.1,
                                    g.dilation.1,
                                    g.in_width,
                                ) else {
                                    continue;
                                };
                                let x = input[((n * g.in_channels + ci) * g.in_height + iy)
                                    * g.in_width
                                    + ix];
                                grad_weight[((co * cin_g + cig) * kh + ky) * kw + kx] += dy * x;
                            }
                        }
                    }
                }
            }
        }
    }
    if let Some(grad_bias) = grad_bias {
        let plane = oh * ow;
        grad_bias.fill(0.0);
        for n in 0..g.batch {
            for (co, gb) in grad_bias.iter_mut().enumerate() {
                let start = (n * g.out_channels + co) * plane;
                *gb += grad_output[start..start + plane].iter().sum::<f32>();
            }
        }
    }
}
