//! Pointwise passes on small images, and backward-weight on every image size: the whole batch's
//! pixels are the columns of one product, computed with the direct kernel's register tile
//! (`conv::tile`) on the NCHW tensors.
//!
//! With few pixels per image (1 x 1 at the end of MobileNet v2 at 32 x 32, 2 x 2 in Xception's
//! middle flow) a GEMM per image is thin, and one GEMM per group of images needs the images
//! copied into a `[C, images * pixels]` matrix and the result copied back. Here a column is any
//! pixel of any image, found through a table of offsets:
//!
//! | pass | tile lanes (6; 8 with AVX-512) | 16 vector lanes (32 with AVX-512) | summed over | packed |
//! |---|---|---|---|---|
//! | forward | output channels, rows of `W` | columns | input channels | 16 columns of the input |
//! | backward-data | input channels, columns of `W` | columns | output channels | 16 columns of `grad_output` |
//! | backward-weight | channels of one operand | 16 channels of the other | columns | the other, `[column][16]` |
//!
//! Forward and backward-data split the batch into ranges of whole images, so each task writes
//! its own slice of the output; a task packs its columns 16 at a time (a run of consecutive
//! pixels is one copy) and sums 256 channels at a time, so that a packed block and the tile's
//! weights stay in L1, while a chunk of the weight stays in L2 for all the task's blocks. The
//! weight is read where it is, unless the batch has enough columns to repay packing it by
//! panels of a tile's rows, one contiguous run per tile. A task holds no more images than keep its
//! output in L2 from one chunk of the sum to the next, and asks for each tile's output lines
//! before computing it. Backward-weight packs whichever operand makes less work, splits over
//! ranges of the other's channels and sums every column in registers; over many columns (large
//! images, or many small ones), each task instead takes a range of the columns, 256 at a time,
//! and the tasks' sums are added at the end.
//!
//! On 2 cores at batch 32 this is 1.3 to 2 times as fast as the grouped GEMMs it replaced on the
//! late layers of MobileNet v2 (BENCHMARKS.md).
//!
//! `product.rs` holds forward and backward-data, `weight.rs` backward-weight; this file the
//! tile's shape and the tables of columns both use.

mod product;
mod weight;

pub(super) use product::{backward_data, forward};
pub(super) use weight::backward_weight;

use crate::conv::tile::{LANES, PAIRED};
use crate::Conv2dGeometry;

/// Vectors of 8 per tile: 16 columns (or channels) in the vector lanes, 12 accumulators. With
/// AVX-512 the micro-kernel joins them in pairs (`conv/tile.rs`), so 32 columns take 2
/// registers per lane.
const V: usize = if PAIRED { 4 } else { 2 };
/// Tile lanes: rows of the matrix (or channels of the lane operand). AVX-512's 32 registers
/// hold 8 lanes of 2 registers, 16 accumulators: about 10% faster than 6 lanes on every column
/// product measured, where 12 lanes (24 accumulators) was 10% to 60% slower.
const P: usize = if PAIRED { 8 } else { 6 };
/// Columns in one packed block.
const BLOCK: usize = V * LANES;
/// Bytes of the matrix a forward or backward-data task keeps in L2 while every block of its
/// columns passes over it.
const CHUNK_BYTES: usize = 64 << 10;

/// Where each output pixel of an image reads (`is_input`) or writes its value, relative to
/// its image's channel 0: strided positions in the input plane, consecutive ones in the output.
fn pixel_positions(g: &Conv2dGeometry, is_input: bool) -> Vec<usize> {
    let (out_height, out_width) = (g.out_height(), g.out_width());
    let (stride_h, stride_w) = if is_input { g.stride } else { (1, 1) };
    let width = if is_input { g.in_width } else { out_width };
    (0..out_height)
        .flat_map(|oy| (0..out_width).map(move |ox| oy * stride_h * width + ox * stride_w))
        .collect()
}

/// Offsets of the columns of `images` in an NCHW tensor whose images hold `image_len`
/// values, image-major then pixel-major, relative to the first image of the range.
fn column_offsets(
    positions: &[usize],
    images: std::ops::Range<usize>,
    image_len: usize,
) -> Vec<usize> {
    images
        .flat_map(|n| positions.iter().map(move |&p| n * image_len + p))
        .collect()
}

/// Runs of consecutive offsets in `offsets`: `(index, offset, len)`, in order.
fn runs(offsets: &[usize]) -> Vec<(usize, usize, usize)> {
    let mut runs: Vec<(usize, usize, usize)> = Vec::with_capacity(offsets.len());
    for (j, &offset) in offsets.iter().enumerate() {
        match runs.last_mut() {
            Some((_, start, len)) if *start + *len == offset => *len += 1,
            _ => runs.push((j, offset, 1)),
        }
    }
    runs
}

/// Lanes (rows, or lane channels) per chunk: as many tiles as keep `bytes` of a `depth`-long
/// operand.
fn chunk_lanes(depth: usize, bytes: usize) -> usize {
    let lanes = bytes / (4 * depth.max(1));
    (lanes / P).max(1) * P
}
