//! Winograd's minimal filtering for 3 x 3 convolutions: F(2 x 2, 3 x 3) and F(4 x 4, 3 x 3) at
//! unit stride (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2016), and
//! the same idea at stride 2; the forward pass and backward-data.
//!
//! # What is new: fewer multiplications
//! A direct 3 x 3 convolution spends 9 multiply-adds per output pixel, input channel and output
//! channel: 36 for a 2 x 2 block of outputs. The block's four windows together cover a 4 x 4
//! patch `d` of the input, and Winograd's algorithm gets the block from 16 products:
//!
//! ```text
//! Y = A^T [ (G g G^T) ⊙ (B^T d B) ] A        (⊙: elementwise)
//!
//!       | 1  0 -1  0 |        | 1    0    0   |
//! B^T = | 0  1  1  0 |    G = | 1/2  1/2  1/2 |    A^T = | 1  1  1  0 |
//!       | 0 -1  1  0 |        | 1/2 -1/2  1/2 |          | 0  1 -1 -1 |
//!       | 0  1  0 -1 |        | 0    0    1   |
//! ```
//!
//! `U = G g G^T` (the kernel's transform) and `V = B^T d B` (the patch's) are 4 x 4. Summed over
//! input channels, the elementwise products become 16 matrix products, one per position `ξ` of
//! the 4 x 4 transform: `M[ξ] = U[ξ] V[ξ]`, with `U[ξ]` an `[out channel][in channel]` matrix
//! and `V[ξ]` an `[in channel][tile]` one. That is 16 multiply-adds per 2 x 2 outputs instead of
//! 36, 2.25 times fewer; the transforms of `d` and `M` are additions only.
//!
//! Nor does it cost accuracy here. Against an `f64` sum on random data in `[-1, 1)` (batch 4,
//! 64 to 512 channels), the largest error relative to the largest output was 3.5e-7 to 8.7e-7
//! for these passes and 0.8e-6 to 2.3e-6 for the direct kernel, which sums `9 C` products in one
//! chain where this sums `C` per position. The tests hold both to the same `1e-4` of the scalar
//! reference.
//!
//! # Larger tiles: F(4 x 4, 3 x 3)
//! A 4 x 4 block of outputs reads a 6 x 6 patch, and the same construction on 6 points gives it
//! from 36 products where the direct kernel spends 144: 4 times fewer, against 2.25 for
//! F(2 x 2, 3 x 3) (`schemes.rs` has its matrices). Its transforms multiply by constants up to
//! 8 and 1/24, and that costs precision. Against an `f64` sum on random data in `[-1, 1)`
//! (batch 4, padding 1; BENCHMARKS.md, twelfth pass) the largest error
//! relative to the largest output was 5.7e-6 to 1.3e-5 forward and 6.6e-6 to 1.2e-5
//! backward-data, at 64 to 256 channels: 10 to 20 times F(2 x 2, 3 x 3)'s, 3 to 6 times the
//! direct kernel's, and 8 times inside the tests' `1e-4` of the scalar reference. The passes
//! take these tiles where they are faster (measured at `four`: maps of 14 outputs a side or
//! more, up to 256 x 256 channels, enough tiles per task), and there they save 1.1x to 1.3x of
//! the time (1.2x to 1.4x in AVX2 builds).
//!
//! # Backward-data
//! The input gradient of a 3 x 3, stride-1 convolution with padding `p` is a 3 x 3, stride-1
//! convolution of the output gradient, padded by `2 - p`, with each kernel turned by 180 degrees
//! and the channel axes swapped. So [`backward_data`] transforms the weight that way and runs the
//! same code. Backward-weight stays with the direct kernel.
//!
//! # Stride 2
//! At stride 2 a 2 x 2 block of outputs reads a 5 x 5 patch. Along each axis, the patch's even
//! values meet taps 0 and 2 of the kernel as a stride-1 convolution with a 2-tap kernel, which
//! F(2, 2) computes in 3 products instead of 4, and its odd values meet tap 1 alone: 5 products
//! for 2 outputs instead of 6. In two dimensions that is 25 products per 2 x 2 block instead of
//! 36, 1.44 times fewer, with transforms that are additions only (`schemes.rs` has the
//! one-dimensional matrices). Backward-data splits the same way: the input gradient's even
//! positions are a stride-1 convolution of the output gradient with the 2-tap kernel `(w2, w0)`,
//! its odd positions one with `w1`, so 3 values of the output gradient give 4 positions from 5
//! products, and a 4 x 4 block of the input gradient costs 25 instead of 36. Which parity comes
//! first depends on the padding, so padding 0 and padding 1 each have a scheme. Against an `f64`
//! sum (batch 4, 64 to 512 channels, padding 0 and 1) the largest error relative to the largest
//! value was 2.9e-7 to 1.2e-6 forward and 5.1e-7 to 1.6e-6 backward, against the direct kernel's
//! 0.9e-6 to 2.5e-6 and 5.3e-7 to 1.9e-6.
//!
//! # Loops
//! The loops are written once for every scheme (`tiles.rs`, `transform.rs`); a scheme fixes the
//! tile's input size and step, the positions `ξ` and the outputs per tile.
//! * The weights are transformed once per call and packed by blocks of 6 output channels, as
//!   `[block][ξ][in channel][6]`.
//! * The input is zero-padded and each row split into as many column phases as the tiles' step
//!   (`SplitInput`; 2 for F(2 x 2, 3 x 3), 4 for F(4 x 4, 3 x 3) and at stride 2): with
//!   F(2 x 2, 3 x 3) tile `(r, c)` reads even and odd values `c` and `c + 1` of four rows, so 8
//!   tiles along a row are transformed with vectors of consecutive values. Where a row has only
//!   2 or 4 tiles, a vector takes them from 4 or 2 rows. Each task splits its own images, which
//!   are then still in L2 for the transforms.
//! * A task is a range of images and a range of channel blocks. Its tiles are taken in groups;
//!   for each group, `V` is written for every input channel (`[ξ][in channel][tile]`, sized to
//!   stay in L2), then for each block of 6 output channels and each `ξ`, the register tile of
//!   `conv/tile.rs` (`strided_tile`: 6 channels x 16 tiles, 12 accumulators) sums over the input
//!   channels; the products of a block go through the output transform, the bias is added, and
//!   the tiles' outputs are stored (8 whole tiles at a time through one transpose in
//!   registers).
//!
//! Preconditions for every public function: the geometry is valid, [`applies`] holds and every
//! slice has the length the geometry implies (the dispatcher in `conv/mod.rs` checks all three).

mod schemes;
mod tiles;
mod transform;

#[cfg(test)]
mod tests;

use crate::conv::recycled::Recycled;
use crate::{Conv2dGeometry, ConvKind};
use rayon::prelude::*;
use schemes::{Scheme, StrideTwo, StrideTwoBackEven, StrideTwoBackOdd, UnitStride, UnitStrideFour};
use tiles::run;

/// Output channels per register tile, at most: 6 times 2 vectors of tiles, or with AVX-512 8
/// times 2 paired registers (16 accumulators). See [`block_rows`].
const BLOCK: usize = if crate::conv::tile::PAIRED { 8 } else { 6 };

/// Output channels per register tile for outputs of `height x width`: [`BLOCK`], but 6 on maps
/// of 64 pixels or fewer. With AVX-512, 8 channels were 1.1x to 1.25x faster than 6 at 32 x 32
/// and 16 x 16 and at stride 2, and slower on 8 x 8 maps: with 6 there, 256 channels went from
/// 8.2 to 7.4 ms and 128 from 2.4 to 2.3 (64 channels, 0.75 -> 0.80 ms, lost a little).
fn block_rows((height, width): (usize, usize)) -> usize {
    if height * width <= 64 {
        BLOCK.min(6)
    } else {
        BLOCK
    }
}
/// Fewest input and output channels served here. With fewer, the sums over input channels are
/// short next to the transforms.
const MIN_CHANNELS: usize = 16;

/// Whether the dispatcher sends `g`'s forward and backward-data here: a 3 x 3 kernel at unit
/// dilation, one group, at least 16 channels each way, unit stride with padding of at most 2
/// (backward-data pads by `2 - p`) or stride 2 with padding 0 or 1 on both axes, and an output
/// large enough for the direct kernel (smaller ones are im2col's). Two more conditions, from
/// measurements against the direct kernel at unit stride on 2 cores:
///
/// * at least 2 images per thread. With fewer, tasks split the output channels, each task
///   transforms its image's whole input again, and a single image of 64 channels at 56 x 56 took
///   2.2 to 2.6 ms against the direct kernel's 1.4 to 1.5 (batch 4: 4.2 to 4.5 ms against 5.5
///   to 6.7);
/// * at least one tile (2 x 2 outputs) of the batch per 1024 kernels (`C_in x C_out`): the
///   transformed weights, 16 values per kernel, stream from memory once per group of tiles, and
///   512 -> 512 channels on 16 images of 4 x 4 (64 tiles) took 15 to 21 ms against 13 to 17.
///
/// In builds with AVX-512 the direct kernel's tiles hold 16 lanes per register while these
/// transforms use 8, and some layers the measurements above gave to Winograd's algorithm are
/// the direct kernel's there: stride 2, and maps of 64 outputs or fewer with at most 128 x 128
/// channels (the measurements are at `direct_is_faster`).
pub fn applies(g: &Conv2dGeometry) -> bool {
    let tiles = g.batch * g.out_height().div_ceil(2) * g.out_width().div_ceil(2);
    g.kind() == ConvKind::Direct
        && computes(g)
        && g.in_channels >= MIN_CHANNELS
        && g.out_channels >= MIN_CHANNELS
        && g.batch >= 2 * rayon::current_num_threads()
        && tiles * 1024 >= g.in_channels * g.out_channels
        && !direct_is_faster(g)
}

/// Layers the direct kernel computes faster in AVX-512 builds (measured at batch 32 on 2 cores,
/// BENCHMARKS.md, eleventh pass):
///
/// * stride 2: 64 -> 128 channels on 8 x 8 took 1.31 ms forward and 1.55 backward-data here
///   against 0.68 and 0.61 direct, 256 -> 512 on 8 x 8 13.8 and 18.2 against 8.7 and 9.2, and
///   64 -> 128 on 32 x 32 (the benchmark's layer) 5.2 and 6.0 against 5.0 and 5.7;
/// * maps of 64 outputs or fewer with at most 128 x 128 channels (ResNet-18's middle stages on
///   32 x 32 inputs): 128 channels on 4 x 4 took 1.24 ms forward against 0.95, 64 on 8 x 8 0.88
///   against 0.71. With 256 channels on 8 x 8 Winograd's algorithm is still 1.4 times as fast.
fn direct_is_faster(g: &Conv2dGeometry) -> bool {
    let small = g.out_height() * g.out_width() <= 64 && g.in_channels * g.out_channels <= 128 * 128;
    crate::conv::tile::PAIRED && (g.stride == (2, 2) || small)
}

/// Whether these passes can compute `g` at all: a 3 x 3 kernel at unit dilation with one group,
/// and either unit stride with padding of at most 2, or stride 2 with padding 0 or 1 (the same
/// on both axes, which picks the backward-data scheme).
fn computes(g: &Conv2dGeometry) -> bool {
    let shape = (g.kernel_height, g.kernel_width, g.dilation, g.groups);
    let (stride, padding) = (g.stride, g.padding);
    shape == (3, 3, (1, 1), 1)
        && match stride {
            (1, 1) => padding.0 <= 2 && padding.1 <= 2,
            (2, 2) => padding == (0, 0) || padding == (1, 1),
            _ => false,
        }
}

/// Whether a unit-stride pass of `g`'s batch from `depth` channels to `rows`, with `height x
/// width` outputs, takes F(4 x 4, 3 x 3) rather than F(2 x 2, 3 x 3). Measured on 2 cores
/// (BENCHMARKS.md, twelfth pass), forward and backward-data, it was faster:
///
/// * from 14 outputs a side: 1.1x to 1.3x at batch 32 for 64 channels on 32 x 32 and 56 x 56,
///   128 on 16 x 16 and 28 x 28, 256 on 14 x 14; on 8 x 8 (4 tiles per image) it was 1.6 times
///   slower, a group's few tiles streaming the larger transformed weights (36 values per
///   kernel, not 16) once per group;
/// * up to 256 x 256 channels: at 512 on 16 x 16 the two were level;
/// * with at least 32 tiles (one register tile's worth) per task: 128 channels on 16 x 16 at
///   batch 8, one image of 16 tiles per task, took 2.4 to 3.2 ms against 2.0, where batch 16
///   (two images per task) took 2.7 to 2.9 against 3.4 to 3.6.
fn four(g: &Conv2dGeometry, out: (usize, usize), (depth, rows): (usize, usize)) -> bool {
    out.0.min(out.1) >= 14
        && depth * rows <= 256 * 256
        && tiles::tiles_per_task::<UnitStrideFour>(g.batch, out) >= 32
}

/// `output = conv(input, weight) + bias`.
pub fn forward(
    g: &Conv2dGeometry,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
) {
    check(g);
    let out = (g.out_height(), g.out_width());
    if g.stride == (1, 1) && four(g, out, (g.in_channels, g.out_channels)) {
        run::<UnitStrideFour>(
            g,
            out,
            input,
            &forward_weights::<UnitStrideFour>(g, weight),
            bias,
            output,
        )
    } else if g.stride == (1, 1) {
        run::<UnitStride>(
            g,
            out,
            input,
            &forward_weights::<UnitStride>(g, weight),
            bias,
            output,
        )
    } else {
        run::<StrideTwo>(
            g,
            out,
            input,
            &forward_weights::<StrideTwo>(g, weight),
            bias,
            output,
        )
    }
}

/// The weights of a forward pass: row `k` of the product is output channel `k`, summed over
/// input channels.
fn forward_weights<S: Scheme>(g: &Conv2dGeometry, weight: &[f32]) -> Weights {
    let c = g.in_channels;
    let block = block_rows((g.out_height(), g.out_width()));
    Weights::new::<S>((g.out_channels, block), c, |k, ci| {
        kernel(weight, k * c + ci, false)
    })
}

/// `grad_input = d(loss)/d(input)`: the forward of the transposed convolution (see the module
/// docs).
pub fn backward_data(
    g: &Conv2dGeometry,
    grad_output: &[f32],
    weight: &[f32],
    grad_input: &mut [f32],
) {
    check(g);
    // The output gradient is the input, with the channel axes swapped.
    let source = Conv2dGeometry::new(
        g.batch,
        g.out_channels,
        g.in_channels,
        (g.out_height(), g.out_width()),
        (3, 3),
    );
    let out = (g.in_height, g.in_width);
    let dx = grad_input;
    match (g.stride, g.padding) {
        ((1, 1), (p, q)) if four(g, out, (g.out_channels, g.in_channels)) => {
            let source = source.with_padding((2 - p, 2 - q));
            let w = backward_weights::<UnitStrideFour>(g, weight, true);
            run::<UnitStrideFour>(&source, out, grad_output, &w, None, dx)
        }
        ((1, 1), (p, q)) => {
            let source = source.with_padding((2 - p, 2 - q));
            debug_assert_eq!(source.output_len(), g.input_len());
            let w = backward_weights::<UnitStride>(g, weight, true);
            run::<UnitStride>(&source, out, grad_output, &w, None, dx)
        }
        (_, (0, 0)) => {
            let w = backward_weights::<StrideTwoBackEven>(g, weight, false);
            run::<StrideTwoBackEven>(&source.with_padding((1, 1)), out, grad_output, &w, None, dx)
        }
        _ => {
            let w = backward_weights::<StrideTwoBackOdd>(g, weight, false);
            run::<StrideTwoBackOdd>(&source.with_padding((1, 1)), out, grad_output, &w, None, dx)
        }
    }
}

/// The weights of a backward-data pass: row `c` of the product is input channel `c`, summed over
/// output channels. At unit stride each kernel is turned by 180 degrees (`turn`); the stride-2
/// schemes take them as they are.
fn backward_weights<S: Scheme>(g: &Conv2dGeometry, weight: &[f32], turn: bool) -> Weights {
    let c = g.in_channels;
    let block = block_rows((g.in_height, g.in_width));
    Weights::new::<S>((c, block), g.out_channels, |ci, k| {
        kernel(weight, k * c + ci, turn)
    })
}

/// Panics unless the kernel, stride, dilation, groups and padding are ones these passes compute
/// (the channel counts, batch and tiles that [`applies`] also weighs are not checked).
fn check(g: &Conv2dGeometry) {
    assert!(
        computes(g),
        "winograd: needs a 3 x 3 kernel, unit dilation, one group, and unit stride with padding \
         <= 2 or stride 2 with padding 0 or 1: {g:?}"
    );
}

/// The 3 x 3 kernel at `index` (`out * in_channels + in`) of a weight, turned by 180 degrees when
/// `turn`.
fn kernel(weight: &[f32], index: usize, turn: bool) -> [f32; 9] {
    let mut values: [f32; 9] = weight[index * 9..][..9].try_into().unwrap();
    if turn {
        values.reverse();
    }
    values
}

/// The transformed kernels `U[ξ][row][depth]`, packed by blocks of `block` rows as
/// `[block][ξ][depth][rows of the block]`.
struct Weights {
    packed: Recycled,
    rows: usize,
    /// Rows per block, at most [`BLOCK`].
    block: usize,
    depth: usize,
    /// Positions `ξ` of the scheme's transformed tile.
    positions: usize,
}

impl Weights {
    /// Transforms by scheme `S`; `kernel(row, d)` is the 3 x 3 kernel from input `d` to output
    /// `row`, and the rows are packed by blocks of `block`.
    fn new<S: Scheme>(
        (rows, block): (usize, usize),
        depth: usize,
        kernel: impl Fn(usize, usize) -> [f32; 9] + Sync,
    ) -> Self {
        let positions = S::POSITIONS;
        // Every value is written below.
        let mut packed = Recycled::take(positions * rows * depth);
        packed
            .par_chunks_mut(positions * block * depth.max(1))
            .enumerate()
            .for_each(|(index, chunk)| {
                let first = index * block;
                let len = block.min(rows - first);
                // Depth outer, so that each position's writes run on consecutively.
                for d in 0..depth {
                    for row in first..first + len {
                        let u = transform::kernel::<S>(&kernel(row, d));
                        for (xi, &value) in u[..positions].iter().enumerate() {
                            chunk[(xi * depth + d) * len + row - first] = value;
                        }
                    }
                }
            });
        debug_assert!((1..=BLOCK).contains(&block));
        Weights {
            packed,
            rows,
            block,
            depth,
            positions,
        }
    }

    /// `U[ξ]` for the block of `len` rows from `first`, as `[depth][len]`.
    fn block(&self, xi: usize, first: usize, len: usize) -> &[f32] {
        debug_assert!(first % self.block == 0 && len == self.block.min(self.rows - first));
        &self.packed[(first * self.positions + xi * len) * self.depth..][..len * self.depth]
    }
}
