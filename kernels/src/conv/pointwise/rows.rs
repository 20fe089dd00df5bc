//! Pointwise forward and backward-data on large images at unit stride: 8 consecutive pixels
//! per vector, one broadcast weight per output row, the weight packed once per call.
//!
//! Both passes are `out[n][m][p] = sum over k of A[m][k] * src[n][k][p]`, with `A = W` summed
//! over input channels (forward) or `A = W^T` summed over output channels (backward-data).
//! Each image's `src` rows are contiguous runs of its pixels, so a tile of `C` rows of `A` times
//! `U` vectors of pixels (`conv::tile::panel_tile`) reads 8 consecutive pixels per load and
//! broadcasts one weight per row; its results are already runs of the output rows, stored as
//! vectors. A GEMM per image (`matrixmultiply`) packs both operands every time; here `A` is
//! packed once per call, as `[block of C rows][k][C]`, and each tile of `src` is copied once,
//! as `[k][U vectors]`.
//!
//! Work is split over (image, range of row blocks), so each task writes its own slice. Within a
//! task, one tile of pixels passes over every row block: its `k x 8U` source values stay in L1
//! while the blocks' packed weights stream from L2.

use super::Dims;
use crate::conv::tile::{as_arrays, panel_tile, store_pixel_tile, LANES, PAIRED};
use crate::lanes::load;
use crate::Conv2dGeometry;
use rayon::prelude::*;
use wide::f32x8;

/// Rows of `A` per tile: with 2 vectors of pixels, 12 accumulators. With AVX-512, 8 rows of 2
/// paired registers, 16 accumulators, 5% to 8% faster than 6 rows.
const BLOCK_ROWS: usize = if PAIRED { 8 } else { 6 };
/// Vectors of 8 pixels per tile; with AVX-512 the micro-kernel joins them in pairs
/// (`conv/tile.rs`), so 4 of them take 2 registers per row.
const U: usize = if PAIRED { 4 } else { 2 };
/// Pixels per tile.
const TILE: usize = U * LANES;

/// `output[n] = W input[n] + bias`.
pub(super) fn forward(
    d: &Dims,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
) {
    // Row `m` of `A` is output channel `m`: `A[m][k] = W[m][k]`.
    let a = |m: usize, k: usize| weight[m * d.in_channels + k];
    let product = Product::new(d.out_channels, d.in_channels, d.pixels, &a);
    product.run(input, bias, output);
}

/// `grad_input[n] = W^T grad_output[n]`.
pub(super) fn backward_data(d: &Dims, grad_output: &[f32], weight: &[f32], grad_input: &mut [f32]) {
    // Row `m` of `A` is input channel `m`: `A[m][k] = W[k][m]`.
    let a = |m: usize, k: usize| weight[k * d.in_channels + m];
    let product = Product::new(d.in_channels, d.out_channels, d.pixels, &a);
    product.run(grad_output, None, grad_input);
}

/// Whether these passes serve `g` (unit stride; the caller has already sent small images to
/// `columns`).
pub(super) fn applies(g: &Conv2dGeometry) -> bool {
    g.stride == (1, 1)
}

/// What a tile works on: the packed pixels `[k][U vectors]`, the block's bias, the output from
/// the block's first row at the tile's pixels, and how many of the pixels are in the image.
type TileJob<'a> = (&'a [[f32x8; U]], Option<&'a [f32]>, &'a mut [f32], usize);

/// `A` (`rows x depth`), packed by blocks of rows, and the sizes of the product.
struct Product {
    /// Per block: `(first row, rows, [k][rows] weights)`.
    blocks: Vec<(usize, usize, Vec<f32>)>,
    rows: usize,
    depth: usize,
    pixels: usize,
}

impl Product {
    fn new(rows: usize, depth: usize, pixels: usize, a: &dyn Fn(usize, usize) -> f32) -> Self {
        let blocks = (0..rows)
            .step_by(BLOCK_ROWS)
            .map(|first| {
                let len = BLOCK_ROWS.min(rows - first);
                let packed = (0..depth)
                    .flat_map(|k| (first..first + len).map(move |m| a(m, k)))
                    .collect();
                (first, len, packed)
            })
            .collect();
        Product {
            blocks,
            rows,
            depth,
            pixels,
        }
    }

    /// `out[n] = A source[n] (+ bias per row)` for every image.
    fn run(&self, source: &[f32], bias: Option<&[f32]>, out: &mut [f32]) {
        let (src_image, out_image) = (self.depth * self.pixels, self.rows * self.pixels);
        let batch = out.len() / out_image.max(1);
        if batch == 0 || out_image == 0 {
            return;
        }
        // Ranges of blocks per image, so that small batches still give each thread several tasks.
        let pieces = (4 * rayon::current_num_threads())
            .div_ceil(batch)
            .clamp(1, self.blocks.len());
        let ranges: Vec<std::ops::Range<usize>> = (0..pieces)
            .map(|i| i * self.blocks.len() / pieces..(i + 1) * self.blocks.len() / pieces)
            .filter(|r| !r.is_empty())
            .collect();
        let mut tasks = Vec::with_capacity(batch * ranges.len());
        let mut rest = out;
        for image in 0..batch {
            for range in &ranges {
                let rows: usize = self.blocks[range.clone()].iter().map(|b| b.1).sum();
                let (piece, tail) = rest.split_at_mut(rows * self.pixels);
                tasks.push((image, range.clone(), piece));
                rest = tail;
            }
        }
        tasks.into_par_iter().for_each(|(image, range, out)| {
            let source = &source[image * src_image..(image + 1) * src_image];
            self.run_task(source, &self.blocks[range], bias, out);
        });
    }

    /// One image, some blocks of rows: `out` holds those rows.
    ///
    /// Each tile of pixels is first copied out of the image's rows into `[k][TILE]`. Read in
    /// place, the rows are `pixels` apart, and at 256 pixels (1 KiB) the tile's 128 or more
    /// lines fall in a quarter of L1's sets and evict each other between row blocks.
    fn run_task(
        &self,
        source: &[f32],
        blocks: &[(usize, usize, Vec<f32>)],
        bias: Option<&[f32]>,
        out: &mut [f32],
    ) {
        let first_row = blocks[0].0;
        let mut packed_source = vec![[f32x8::ZERO; U]; self.depth];
        for start in (0..self.pixels).step_by(TILE) {
            let count = TILE.min(self.pixels - start);
            let rows = source.chunks_exact(self.pixels);
            for (dst, row) in packed_source.iter_mut().zip(rows) {
                let values = &row[start..start + count];
                if count == TILE {
                    // Two vector moves, not a `memcpy` call per row.
                    *dst = std::array::from_fn(|u| load(&values[u * LANES..]));
                } else {
                    // Lanes past the image are summed but never stored; zeros keep them finite
                    // whatever the buffer held.
                    let lanes = dst.iter_mut().flat_map(|vector| vector.as_mut_array());
                    for (lane, value) in lanes.zip(values.iter().chain(std::iter::repeat(&0.0))) {
                        *lane = *value;
                    }
                }
            }
            for (first, len, packed) in blocks {
                let out = &mut out[(first - first_row) * self.pixels + start..];
                let block = (*first, *len, packed.as_slice());
                self.tile(&packed_source, block, bias, out, count);
            }
        }
    }

    /// One block of rows over the `count <= TILE` pixels packed in `source`; `out` starts at the
    /// block's first row at those pixels (the next rows are `pixels` further).
    fn tile(
        &self,
        source: &[[f32x8; U]],
        (first, len, packed): (usize, usize, &[f32]),
        bias: Option<&[f32]>,
        out: &mut [f32],
        count: usize,
    ) {
        let bias = bias.map(|b| &b[first..first + len]);
        let job = (source, bias, out, count);
        match len {
            1 => self.block::<1>(as_arrays(packed), job),
            2 => self.block::<2>(as_arrays(packed), job),
            3 => self.block::<3>(as_arrays(packed), job),
            4 => self.block::<4>(as_arrays(packed), job),
            5 => self.block::<5>(as_arrays(packed), job),
            6 => self.block::<6>(as_arrays(packed), job),
            7 => self.block::<7>(as_arrays(packed), job),
            _ => self.block::<8>(as_arrays(packed), job),
        }
    }

    /// [`Product::tile`] for a block of `C` rows.
    fn block<const C: usize>(&self, weights: &[[f32; C]], (source, bias, out, count): TileJob<'_>) {
        let acc = panel_tile::<U, C>(weights, source);
        store_pixel_tile(&acc, bias, out, self.pixels, count);
    }
}
