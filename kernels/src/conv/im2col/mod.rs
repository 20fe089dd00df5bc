//! im2col: convolutions whose output maps are too small for the direct kernel's pixel tiles.
//!
//! Deep in a network fed small images the maps shrink to 4 x 4, 2 x 2, even 1 x 1 (ResNet-18's
//! last stage on a 32 x 32 input). The direct kernel tiles six output pixels of one image at a
//! time, so a 1 x 1 map fills one lane in six, and eight of a 3 x 3 kernel's nine taps read the
//! zero padding. Here the batch is folded into the matrix instead:
//!
//! * the taps `(ky, kx)` that touch the image for at least one output pixel are found first (on a
//!   1 x 1 map with padding 1, only the centre): the others multiply zeros and are dropped;
//! * `columns[(in_channel, tap)][(image, pixel)]` gathers the input under each kept tap, for a
//!   chunk of images at a time (a few MB);
//! * forward is one GEMM, `out = W x columns`, scattered back to NCHW with the bias;
//! * backward-data is `d columns = W^T x d out`, added back under the taps ("col2im");
//! * backward-weight is `dW = d out x columns^T`, summed over the chunks.
//!
//! The GEMMs run on matrixmultiply's threads, the gathers and scatters on rayon's. One group only
//! (the dispatcher sends grouped and depthwise geometries elsewhere).
//!
//! Preconditions for every public function: the geometry is valid, has one group, and every
//! slice has the length the geometry implies (the dispatcher in `conv/mod.rs` checks them).

#[cfg(test)]
mod tests;

use super::bias_gradient;
use super::gemm::{gemm, Matrix};
use crate::Conv2dGeometry;
use rayon::prelude::*;

/// Floats the column matrix of one chunk of images may hold (8 MB).
const COLUMN_BUDGET: usize = 1 << 21;

/// How a geometry is lowered to matrices: the kept taps and the chunking of the batch.
struct Lowering {
    /// The kept taps `(ky, kx)`, in weight order.
    taps: Vec<(usize, usize)>,
    /// True when every tap is kept, so the weight tensor is the weight matrix as it is.
    all_taps: bool,
    /// Rows of the column matrix: `in_channels * taps.len()`.
    rows: usize,
    /// Output pixels per image.
    plane: usize,
    /// Images per chunk.
    chunk: usize,
}

/// The kernel offsets along one axis that read inside the image for some output position.
fn kept_offsets(
    size: usize,
    out_size: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
) -> Vec<usize> {
    (0..kernel)
        .filter(|&k| {
            (0..out_size).any(|o| {
                let at = o * stride + k * dilation;
                at >= padding && at - padding < size
            })
        })
        .collect()
}

impl Lowering {
    fn new(g: &Conv2dGeometry) -> Self {
        debug_assert_eq!(g.groups, 1);
        let rows_kept = kept_offsets(
            g.in_height,
            g.out_height(),
            g.kernel_height,
            g.stride.0,
            g.padding.0,
            g.dilation.0,
        );
        let cols_kept = kept_offsets(
            g.in_width,
            g.out_width(),
            g.kernel_width,
            g.stride.1,
            g.padding.1,
            g.dilation.1,
        );
        let taps: Vec<(usize, usize)> = rows_kept
            .iter()
            .flat_map(|&ky| cols_kept.iter().map(move |&kx| (ky, kx)))
            .collect();
        let all_taps = taps.len() == g.kernel_height * g.kernel_width;
        let rows = g.in_channels * taps.len();
        let plane = g.out_height() * g.out_width();
        let chunk = (COLUMN_BUDGET / (rows * plane).max(1)).clamp(1, g.batch.max(1));
        Lowering {
            taps,
            all_taps,
            rows,
            plane,
            chunk,
        }
    }

    /// The input position under tap `(ky, kx)` for output pixel `(oy, ox)`, if inside the image.
    #[inline]
    fn source(
        g: &Conv2dGeometry,
        (ky, kx): (usize, usize),
        (oy, ox): (usize, usize),
    ) -> Option<(usize, usize)> {
        let y = (oy * g.stride.0 + ky * g.dilation.0).checked_sub(g.padding.0)?;
        let x = (ox * g.stride.1 + kx * g.dilation.1).checked_sub(g.padding.1)?;
        (y < g.in_height && x < g.in_width).then_some((y, x))
    }

    /// Fills `columns` (`rows x images * plane`) from images `first..first + images` of `input`.
    fn gather(
        &self,
        g: &Conv2dGeometry,
        input: &[f32],
        first: usize,
        images: usize,
        columns: &mut [f32],
    ) {
        let in_plane = g.in_height * g.in_width;
        let out_width = g.out_width();
        let width = images * self.plane;
        columns[..self.rows * width]
            .par_chunks_mut(width)
            .enumerate()
            .for_each(|(row, out)| {
                let (channel, tap) = (row / self.taps.len(), self.taps[row % self.taps.len()]);
                for (image, out) in out.chunks_exact_mut(self.plane).enumerate() {
                    let plane = &input[((first + image) * g.in_channels + channel) * in_plane..]
                        [..in_plane];
                    for (pixel, value) in out.iter_mut().enumerate() {
                        let at = Self::source(g, tap, (pixel / out_width, pixel % out_width));
                        *value = at.map_or(0.0, |(y, x)| plane[y * g.in_width + x]);
                    }
                }
            });
    }

    /// Adds `columns` (`rows x images * plane`) back into images `first..` of `grad_input`
    /// under their taps; `grad_input` holds exactly those images.
    fn scatter_add(
        &self,
        g: &Conv2dGeometry,
        columns: &[f32],
        images: usize,
        grad_input: &mut [f32],
    ) {
        let in_plane = g.in_height * g.in_width;
        let out_width = g.out_width();
        let width = images * self.plane;
        grad_input
            .par_chunks_mut(g.in_channels * in_plane)
            .enumerate()
            .for_each(|(image, grad_image)| {
                for (channel, grad_plane) in grad_image.chunks_exact_mut(in_plane).enumerate() {
                    for (t, &tap) in self.taps.iter().enumerate() {
                        let row = &columns[(channel * self.taps.len() + t) * width..][..width];
                        let row = &row[image * self.plane..][..self.plane];
                        for (pixel, &value) in row.iter().enumerate() {
                            let at = (pixel / out_width, pixel % out_width);
                            if let Some((y, x)) = Self::source(g, tap, at) {
                                grad_plane[y * g.in_width + x] += value;
                            }
                        }
                    }
                }
            });
    }

    /// The weight matrix `[out_channels, rows]` over the kept taps: the weight tensor itself when
    /// every tap is kept, a strided view of it for a single tap, or a gathered copy in `scratch`.
    fn weights<'a>(
        &self,
        g: &Conv2dGeometry,
        weight: &'a [f32],
        scratch: &'a mut Vec<f32>,
    ) -> Matrix<'a> {
        let kernel = g.kernel_height * g.kernel_width;
        if self.all_taps {
            return Matrix::row_major(weight, g.out_channels, self.rows);
        }
        if let [(ky, kx)] = self.taps[..] {
            let offset = ky * g.kernel_width + kx;
            return Matrix::strided(
                &weight[offset..],
                (g.out_channels, g.in_channels),
                (g.in_channels * kernel, kernel),
            );
        }
        scratch.clear();
        for filter in weight.chunks_exact(g.in_channels * kernel) {
            for channel in filter.chunks_exact(kernel) {
                scratch.extend(
                    self.taps
                        .iter()
                        .map(|&(ky, kx)| channel[ky * g.kernel_width + kx]),
                );
            }
        }
        Matrix::row_major(scratch, g.out_channels, self.rows)
    }
}

/// `[out_channels][images * plane]` from NCHW images `first..first + images` of `grad_output`.
fn channels_by_pixels(
    grad_output: &[f32],
    out_channels: usize,
    plane: usize,
    first: usize,
    images: usize,
    into: &mut Vec<f32>,
) {
    into.resize(out_channels * images * plane, 0.0);
    into.par_chunks_mut(images * plane)
        .enumerate()
        .for_each(|(channel, row)| {
            for (image, out) in row.chunks_exact_mut(plane).enumerate() {
                let at = ((first + image) * out_channels + channel) * plane;
                out.copy_from_slice(&grad_output[at..at + plane]);
            }
        });
}

/// `output = conv(input, weight) + bias`.
pub fn forward(
    g: &Conv2dGeometry,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
) {
    if output.is_empty() {
        return;
    }
    let lowering = Lowering::new(g);
    let plane = lowering.plane;
    let mut scratch = Vec::new();
    let weights = lowering.weights(g, weight, &mut scratch);
    let mut columns = vec![0.0; lowering.rows * lowering.chunk * plane];
    let mut product = vec![0.0; g.out_channels * lowering.chunk * plane];
    for first in (0..g.batch).step_by(lowering.chunk) {
        let images = lowering.chunk.min(g.batch - first);
        let width = images * plane;
        lowering.gather(g, input, first, images, &mut columns);
        let columns = Matrix::row_major(&columns, lowering.rows, width);
        gemm(weights, columns, 0.0, &mut product);
        let out = &mut output[first * g.out_channels * plane..][..images * g.out_channels * plane];
        out.par_chunks_mut(g.out_channels * plane)
            .enumerate()
            .for_each(|(image, out)| {
                for (channel, out) in out.chunks_exact_mut(plane).enumerate() {
                    let bias = bias.map_or(0.0, |b| b[channel]);
                    let row = &product[channel * width + image * plane..][..plane];
                    for (o, &p) in out.iter_mut().zip(row) {
                        *o = p + bias;
                    }
                }
            });
    }
}

/// `grad_input = d(loss)/d(input)`.
pub fn backward_data(
    g: &Conv2dGeometry,
    grad_output: &[f32],
    weight: &[f32],
    grad_input: &mut [f32],
) {
    grad_input.fill(0.0);
    let lowering = Lowering::new(g);
    let plane = lowering.plane;
    if lowering.rows == 0 || g.out_channels == 0 {
        return;
    }
    let mut scratch = Vec::new();
    let weights = lowering.weights(g, weight, &mut scratch).transposed();
    let mut gathered = Vec::new();
    let mut columns = vec![0.0; lowering.rows * lowering.chunk * plane];
    let in_image = g.in_channels * g.in_height * g.in_width;
    for first in (0..g.batch).step_by(lowering.chunk) {
        let images = lowering.chunk.min(g.batch - first);
        let width = images * plane;
        channels_by_pixels(
            grad_output,
            g.out_channels,
            plane,
            first,
            images,
            &mut gathered,
        );
        let grad = Matrix::row_major(&gathered, g.out_channels, width);
        gemm(weights, grad, 0.0, &mut columns);
        let grad_input = &mut grad_input[first * in_image..(first + images) * in_image];
        lowering.scatter_add(g, &columns, images, grad_input);
    }
}

/// `grad_weight = d(loss)/d(weight)` and, when asked, `grad_bias = d(loss)/d(bias)`.
pub fn backward_weight(
    g: &Conv2dGeometry,
    input: &[f32],
    grad_output: &[f32],
    grad_weight: &mut [f32],
    grad_bias: Option<&mut [f32]>,
) {
    let lowering = Lowering::new(g);
    let plane = lowering.plane;
    if let Some(grad_bias) = grad_bias {
        bias_gradient(grad_output, g.out_height() * g.out_width(), grad_bias);
    }
    let mut kept = if lowering.all_taps {
        if g.batch == 0 {
            grad_weight.fill(0.0);
        }
        Vec::new()
    } else {
        grad_weight.fill(0.0);
        vec![0.0; g.out_channels * lowering.rows]
    };
    let mut gathered = Vec::new();
    let mut columns = vec![0.0; lowering.rows * lowering.chunk * plane];
    for (chunk_index, first) in (0..g.batch).step_by(lowering.chunk).enumerate() {
        let images = lowering.chunk.min(g.batch - first);
        let width = images * plane;
        lowering.gather(g, input, first, images, &mut columns);
        channels_by_pixels(
            grad_output,
            g.out_channels,
            plane,
            first,
            images,
            &mut gathered,
        );
        let grad = Matrix::row_major(&gathered, g.out_channels, width);
        let columns_t = Matrix::row_major(&columns, lowering.rows, width).transposed();
        let beta = if chunk_index == 0 { 0.0 } else { 1.0 };
        let target = if lowering.all_taps {
            &mut *grad_weight
        } else {
            &mut kept[..]
        };
        gemm(grad, columns_t, beta, target);
    }
    if !lowering.all_taps && lowering.rows > 0 {
        let kernel = g.kernel_height * g.kernel_width;
        for (filter, kept) in grad_weight
            .chunks_exact_mut(g.in_channels * kernel)
            .zip(kept.chunks_exact(lowering.rows))
        {
            for (channel, kept) in filter
                .chunks_exact_mut(kernel)
                .zip(kept.chunks_exact(lowering.taps.len()))
            {
                for (&(ky, kx), &value) in lowering.taps.iter().zip(kept) {
                    channel[ky * g.kernel_width + kx] = value;
                }
            }
        }
    }
}
