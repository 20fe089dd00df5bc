//! Pointwise passes on groups of small images: one GEMM per group instead of one per image.
//!
//! With few pixels per image (8 x 8 = 64 in Xception's middle flow) a per-image GEMM is thin,
//! and `matrixmultiply` packs the whole weight matrix again for every call (2 MiB at 728 x 728
//! channels, against 64 columns of work) while backward-weight reads and writes the whole
//! `grad_weight` once per image. So images are taken `images` at a time and copied into
//! `[C, images * H_out*W_out]` matrices (which also gathers strided pixels): the weight is packed
//! once per group, `grad_weight` is accumulated once per group, and the copies cost one pass over
//! the activations.

use super::Dims;
use crate::conv::gemm::{gemm, Matrix};
use crate::Conv2dGeometry;

/// Fewest GEMM columns (pixels) worth one packing of the weight matrix.
const MIN_COLUMNS: usize = 256;

/// Images per GEMM: 1 when each image already has `MIN_COLUMNS` pixels.
pub(super) fn images_per_gemm(g: &Conv2dGeometry) -> usize {
    let pixels = g.out_height() * g.out_width();
    if pixels >= MIN_COLUMNS {
        1
    } else {
        MIN_COLUMNS.div_ceil(pixels).min(g.batch)
    }
}

/// Where a group's pixels sit in an NCHW tensor with `channels` channels.
#[derive(Clone, Copy)]
struct Images {
    channels: usize,
    first: usize,
    count: usize,
    /// Whether the tensor has the input's (possibly strided) extent, or the output's.
    is_input: bool,
}

/// Copies the group's pixels of `tensor` into `buf` as `[channels, count * pixels]`.
fn gather(g: &Conv2dGeometry, d: &Dims, images: Images, tensor: &[f32], buf: &mut Vec<f32>) {
    let plane = if images.is_input {
        d.in_pixels
    } else {
        d.pixels
    };
    buf.clear();
    for c in 0..images.channels {
        for n in images.first..images.first + images.count {
            let src = &tensor[(n * images.channels + c) * plane..][..plane];
            if images.is_input && d.strided {
                for oy in 0..g.out_height() {
                    let row = &src[oy * g.stride.0 * g.in_width..][..g.in_width];
                    buf.extend(row.iter().step_by(g.stride.1).take(g.out_width()));
                }
            } else {
                buf.extend_from_slice(src);
            }
        }
    }
}

/// The inverse of [`gather`]: writes `[channels, count * pixels]` back into the group's images,
/// with zeros at the input pixels a strided kernel skips.
fn scatter(g: &Conv2dGeometry, d: &Dims, images: Images, buf: &[f32], tensor: &mut [f32]) {
    let plane = if images.is_input {
        d.in_pixels
    } else {
        d.pixels
    };
    let rows = buf.chunks_exact(d.pixels);
    for (i, values) in rows.enumerate() {
        let (c, n) = (i / images.count, images.first + i % images.count);
        let dst = &mut tensor[(n * images.channels + c) * plane..][..plane];
        if images.is_input && d.strided {
            dst.fill(0.0);
            for (oy, values) in values.chunks_exact(g.out_width()).enumerate() {
                let row = &mut dst[oy * g.stride.0 * g.in_width..][..g.in_width];
                for (x, &v) in row.iter_mut().step_by(g.stride.1).zip(values) {
                    *x = v;
                }
            }
        } else {
            dst.copy_from_slice(values);
        }
    }
}

/// The group ranges `(first, count)` of the batch.
fn groups(batch: usize, images: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..batch)
        .step_by(images)
        .map(move |first| (first, images.min(batch - first)))
}

pub(super) fn forward(
    g: &Conv2dGeometry,
    d: &Dims,
    images: usize,
    (input, weight, bias): (&[f32], &[f32], Option<&[f32]>),
    output: &mut [f32],
) {
    let w = Matrix::row_major(weight, d.out_channels, d.in_channels);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for (first, count) in groups(g.batch, images) {
        let columns = count * d.pixels;
        let group_in = Images {
            channels: d.in_channels,
            first,
            count,
            is_input: true,
        };
        gather(g, d, group_in, input, &mut x);
        y.resize(d.out_channels * columns, 0.0);
        let beta = match bias {
            Some(bias) => {
                for (row, &b) in y.chunks_exact_mut(columns).zip(bias) {
                    row.fill(b);
                }
                1.0
            }
            None => 0.0,
        };
        gemm(
            w,
            Matrix::row_major(&x, d.in_channels, columns),
            beta,
            &mut y,
        );
        let group_out = Images {
            channels: d.out_channels,
            is_input: false,
            ..group_in
        };
        scatter(g, d, group_out, &y, output);
    }
}

pub(super) fn backward_data(
    g: &Conv2dGeometry,
    d: &Dims,
    images: usize,
    (grad_output, weight): (&[f32], &[f32]),
    grad_input: &mut [f32],
) {
    let w_t = Matrix::row_major(weight, d.out_channels, d.in_channels).transposed();
    let (mut dy, mut dx) = (Vec::new(), Vec::new());
    for (first, count) in groups(g.batch, images) {
        let columns = count * d.pixels;
        let group_out = Images {
            channels: d.out_channels,
            first,
            count,
            is_input: false,
        };
        gather(g, d, group_out, grad_output, &mut dy);
        dx.resize(d.in_channels * columns, 0.0);
        gemm(
            w_t,
            Matrix::row_major(&dy, d.out_channels, columns),
            0.0,
            &mut dx,
        );
        let group_in = Images {
            channels: d.in_channels,
            is_input: true,
            ..group_out
        };
        scatter(g, d, group_in, &dx, grad_input);
    }
}

/// Overwrites `grad_weight` with `sum over groups of dY_group x X_group^T`.
pub(super) fn backward_weight(
    g: &Conv2dGeometry,
    d: &Dims,
    images: usize,
    (input, grad_output): (&[f32], &[f32]),
    grad_weight: &mut [f32],
) {
    let (mut x, mut dy) = (Vec::new(), Vec::new());
    for (i, (first, count)) in groups(g.batch, images).enumerate() {
        let columns = count * d.pixels;
        let group_in = Images {
            channels: d.in_channels,
            first,
            count,
            is_input: true,
        };
        gather(g, d, group_in, input, &mut x);
        let group_out = Images {
            channels: d.out_channels,
            is_input: false,
            ..group_in
        };
        gather(g, d, group_out, grad_output, &mut dy);
        let x_t = Matrix::row_major(&x, d.in_channels, columns).transposed();
        let beta = if i == 0 { 0.0 } else { 1.0 };
        let dy = Matrix::row_major(&dy, d.out_channels, columns);
        gemm(dy, x_t, beta, grad_weight);
    }
}
