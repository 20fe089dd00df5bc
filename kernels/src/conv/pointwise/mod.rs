//! Pointwise (1 x 1) convolution: a GEMM on the NCHW tensor as it is.
//!
//! With a 1 x 1 kernel, one group and no padding, image `n` is a `[C_in, H*W]` matrix and
//! `out[n] = W[C_out, C_in] x in[n][C_in, H*W]`, with no im2col:
//!
//! | pass | per image |
//! |---|---|
//! | forward | `Y = W X` (plus the bias) |
//! | backward-data | `dX = W^T dY` |
//! | backward-weight | `dW += dY X^T`, summed over the batch; `db = row sums of dY` |
//!
//! Images with fewer than 256 output pixels would make thin GEMMs that pack the whole weight
//! for a few columns each; their forward and backward-data are served by `columns`, which
//! treats every pixel of the batch as one column of a single product computed with the direct
//! kernel's register tile. Larger images at unit stride run forward and backward-data through
//! `rows`: tiles of 6 rows of the weight (or of its transpose) times 16 consecutive pixels
//! (8 x 32 with AVX-512), with the weight packed once per call instead of once per image, 1.1 to
//! 2 times as fast as the per-image GEMMs on 2 cores. Backward-weight always goes to `columns`,
//! whose sum over every pixel of the batch, 256 pixels at a time, was 1.7 to 4 times as fast
//! as a GEMM per image (BENCHMARKS.md, eleventh pass). What is left to `matrixmultiply::sgemm`
//! (its row and column strides make the transposes free): forward and backward-data of strided
//! 1 x 1 layers on large images.
//!
//! A stride above 1 picks every `stride`-th pixel: the forward pass first gathers the input into
//! a contiguous `[C_in, H_out*W_out]` scratch matrix, and backward-data computes into such a
//! matrix and scatters it back, zeros elsewhere.
//!
//! Threading: see `Threading`. Images are independent GEMMs: small ones are spread over rayon
//! threads, large ones run one after another on `matrixmultiply`'s own threads, never both.
//! Preconditions for every function: the geometry is valid and every slice has the length the
//! geometry implies (the dispatcher in `conv/mod.rs` checks both).

mod columns;
mod rows;
#[cfg(test)]
mod tests;

use crate::conv::bias_gradient;
use crate::conv::gemm::{gemm, Matrix};
use crate::Conv2dGeometry;
use rayon::prelude::*;

/// Sizes of the per-image matrices.
#[derive(Clone, Copy, Debug)]
struct Dims {
    in_channels: usize,
    out_channels: usize,
    /// Input pixels per image (`H * W`).
    in_pixels: usize,
    /// Output pixels per image (`H_out * W_out`), the GEMM's `n`.
    pixels: usize,
    strided: bool,
}

/// Fewest output pixels per image worth a GEMM of their own; smaller images go to `columns`.
const MIN_GEMM_PIXELS: usize = 256;

impl Dims {
    /// Whether the images are too small for a GEMM each (see [`MIN_GEMM_PIXELS`]).
    fn small_images(&self) -> bool {
        self.pixels < MIN_GEMM_PIXELS
    }

    fn new(g: &Conv2dGeometry) -> Self {
        Dims {
            in_channels: g.in_channels,
            out_channels: g.out_channels,
            in_pixels: g.in_height * g.in_width,
            pixels: g.out_height() * g.out_width(),
            strided: g.stride != (1, 1),
        }
    }
}

/// `out[n] = W x in[n] + bias`.
pub fn forward(
    g: &Conv2dGeometry,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
) {
    let d = Dims::new(g);
    if d.small_images() {
        return columns::forward(g, &d, (input, weight, bias), output);
    }
    if rows::applies(g) {
        return rows::forward(&d, input, weight, bias, output);
    }
    let w = Matrix::row_major(weight, d.out_channels, d.in_channels);
    let per_image = |n: usize, out: &mut [f32], scratch: &mut Vec<f32>| {
        let image = &input[n * d.in_channels * d.in_pixels..][..d.in_channels * d.in_pixels];
        let x = if d.strided {
            gather_strided(g, image, scratch);
            &scratch[..]
        } else {
            image
        };
        let beta = match bias {
            Some(bias) => {
                for (row, &b) in out.chunks_exact_mut(d.pixels).zip(bias) {
                    row.fill(b);
                }
                1.0
            }
            None => 0.0,
        };
        gemm(w, Matrix::row_major(x, d.in_channels, d.pixels), beta, out);
    };
    let threading = Threading::for_gemm(g.batch, (d.out_channels, d.in_channels, d.pixels));
    for_each_image(threading, output, d.out_channels * d.pixels, per_image);
}

/// `grad_in[n] = W^T x grad_out[n]`, scattered back to the strided pixels when `stride > 1`.
pub fn backward_data(
    g: &Conv2dGeometry,
    grad_output: &[f32],
    weight: &[f32],
    grad_input: &mut [f32],
) {
    let d = Dims::new(g);
    if d.small_images() {
        return columns::backward_data(g, &d, (grad_output, weight), grad_input);
    }
    if rows::applies(g) {
        return rows::backward_data(&d, grad_output, weight, grad_input);
    }
    let w_t = Matrix::row_major(weight, d.out_channels, d.in_channels).transposed();
    let per_image = |n: usize, grad_in: &mut [f32], scratch: &mut Vec<f32>| {
        let dy = &grad_output[n * d.out_channels * d.pixels..][..d.out_channels * d.pixels];
        let dy = Matrix::row_major(dy, d.out_channels, d.pixels);
        if d.strided {
            scratch.resize(d.in_channels * d.pixels, 0.0);
            gemm(w_t, dy, 0.0, scratch);
            scatter_strided(g, scratch, grad_in);
        } else {
            gemm(w_t, dy, 0.0, grad_in);
        }
    };
    let threading = Threading::for_gemm(g.batch, (d.in_channels, d.out_channels, d.pixels));
    for_each_image(
        threading,
        grad_input,
        d.in_channels * d.in_pixels,
        per_image,
    );
}

/// `grad_weight = sum over n of grad_out[n] x in[n]^T`, `grad_bias` the per-channel sums.
pub fn backward_weight(
    g: &Conv2dGeometry,
    input: &[f32],
    grad_output: &[f32],
    grad_weight: &mut [f32],
    grad_bias: Option<&mut [f32]>,
) {
    let d = Dims::new(g);
    if let Some(grad_bias) = grad_bias {
        bias_gradient(grad_output, d.pixels, grad_bias);
    }
    if grad_weight.is_empty() {
        // No input or output channels: nothing to sum (and no chunks to split the sum into).
        return;
    }
    columns::backward_weight(g, &d, (input, grad_output), grad_weight);
}

/// How the work of one pass is spread over the cores.
///
/// `matrixmultiply` (with its "threading" feature) threads a GEMM itself, through its own pool,
/// once `m*k + k*n >= 2 * 16384`; calling it from several rayon threads then puts both pools on
/// the same two cores. So each pass picks one level: images on rayon threads when the per-image
/// GEMM is too small for `matrixmultiply` to thread (it then runs single-threaded inside), and
/// one image after another with `matrixmultiply`'s threads otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Threading {
    /// Images spread over rayon threads, each GEMM single-threaded inside.
    Batch,
    /// One image after another, each GEMM using matrixmultiply's threads.
    Gemm,
}

impl Threading {
    /// The threading for a pass whose per-image GEMM is `[m, k] x [k, n]`.
    fn for_gemm(batch: usize, (m, k, n): (usize, usize, usize)) -> Self {
        /// `matrixmultiply`'s threshold: below two of these, it uses one thread.
        const MATRIXMULTIPLY_WORK_PER_THREAD: usize = 1 << 14;
        let threads = rayon::current_num_threads();
        let gemm_is_threaded = m * k + k * n >= 2 * MATRIXMULTIPLY_WORK_PER_THREAD;
        if threads > 1 && batch > 1 && !gemm_is_threaded {
            Threading::Batch
        } else {
            Threading::Gemm
        }
    }
}

/// Runs `per_image(n, output_image, scratch)` for every image, threaded as [`Threading`] says.
fn for_each_image<F>(threading: Threading, output: &mut [f32], image_len: usize, per_image: F)
where
    F: Fn(usize, &mut [f32], &mut Vec<f32>) + Sync,
{
    match threading {
        Threading::Batch => output
            .par_chunks_mut(image_len)
            .enumerate()
            .for_each_init(Vec::new, |scratch, (n, out)| per_image(n, out, scratch)),
        Threading::Gemm => {
            let mut scratch = Vec::new();
            for (n, out) in output.chunks_exact_mut(image_len).enumerate() {
                per_image(n, out, &mut scratch);
            }
        }
    }
}

/// Copies the pixels a strided 1 x 1 kernel reads, `[C_in, H_out * W_out]`, into `scratch`.
fn gather_strided(g: &Conv2dGeometry, image: &[f32], scratch: &mut Vec<f32>) {
    let (out_height, out_width) = (g.out_height(), g.out_width());
    let (stride_h, stride_w) = g.stride;
    scratch.clear();
    for plane in image.chunks_exact(g.in_height * g.in_width) {
        for oy in 0..out_height {
            let row = &plane[oy * stride_h * g.in_width..][..g.in_width];
            scratch.extend(row.iter().step_by(stride_w).take(out_width));
        }
    }
}

/// The inverse of [`gather_strided`]: writes `[C_in, H_out * W_out]` back to the strided pixels
/// of `image` and zeros everywhere else.
fn scatter_strided(g: &Conv2dGeometry, gathered: &[f32], image: &mut [f32]) {
    let (out_height, out_width) = (g.out_height(), g.out_width());
    let (stride_h, stride_w) = g.stride;
    image.fill(0.0);
    let planes = image.chunks_exact_mut(g.in_height * g.in_width);
    for (plane, values) in planes.zip(gathered.chunks_exact(out_height * out_width)) {
        for (oy, values) in values.chunks_exact(out_width).enumerate() {
            let row = &mut plane[oy * stride_h * g.in_width..][..g.in_width];
            for (dst, &v) in row.iter_mut().step_by(stride_w).zip(values) {
                *dst = v;
            }
        }
    }
}
