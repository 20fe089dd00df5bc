//! Winograd's minimal filtering F(2 x 2, 3 x 3) (Lavin and Gray, "Fast Algorithms for
//! Convolutional Neural Networks", 2016) for 3 x 3 convolutions at unit stride: the forward pass,
//! and backward-data, which is a convolution of the same kind.
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
//! reference. (Larger tiles, F(4 x 4, 3 x 3), save 4 times but multiply by constants up to 8 in
//! their transforms and do lose precision.)
//!
//! # Backward-data
//! The input gradient of a 3 x 3, stride-1 convolution with padding `p` is a 3 x 3, stride-1
//! convolution of the output gradient, padded by `2 - p`, with each kernel turned by 180 degrees
//! and the channel axes swapped. So [`backward_data`] transforms the weight that way and runs the
//! same code. Backward-weight stays with the direct kernel.
//!
//! # Loops
//! * The weights are transformed once per call and packed by blocks of 6 output channels, as
//!   `[block][ξ][in channel][6]`.
//! * The input is zero-padded and each row split into even and odd columns (`SplitInput`): tile
//!   `(r, c)` reads even and odd values `c` and `c + 1` of four rows, so 8 tiles along a row are
//!   transformed with vectors of consecutive values. Each task splits its own images, which are
//!   then still in L2 for the transforms.
//! * A task is a range of images and a range of channel blocks. Its tiles are taken in groups;
//!   for each group, `V` is written for every input channel (`[ξ][in channel][tile]`, sized to
//!   stay in L2), then for each block of 6 output channels and each `ξ`, the register tile of
//!   `conv/tile.rs` (`pixel_tile`: 6 channels x 16 tiles, 12 accumulators) sums over the input
//!   channels; the 16 products of a block go through the output transform, the bias is added,
//!   and each tile's 2 x 2 outputs are stored.
//!
//! Preconditions for every public function: the geometry is valid, [`applies`] holds and every
//! slice has the length the geometry implies (the dispatcher in `conv/mod.rs` checks all three).

mod tiles;
mod transform;

#[cfg(test)]
mod tests;

use crate::{Conv2dGeometry, ConvKind};
use rayon::prelude::*;
use tiles::run;

/// Positions of a transformed tile (4 x 4).
const POSITIONS: usize = 16;
/// Output channels per register tile.
const BLOCK: usize = 6;
/// Fewest input and output channels served here. With fewer, the sums over input channels are
/// short next to the transforms.
const MIN_CHANNELS: usize = 16;

/// Whether the dispatcher sends `g`'s forward and backward-data here: a 3 x 3 kernel at unit
/// stride and dilation, one group, at least 16 channels each way, padding of at most 2
/// (backward-data pads by `2 - p`), and an output large enough for the direct kernel (smaller
/// ones are im2col's). Two more conditions, from measurements against the direct kernel on 2
/// cores:
///
/// * at least 2 images per thread. With fewer, tasks split the output channels, each task
///   transforms its image's whole input again, and a single image of 64 channels at 56 x 56 took
///   2.2 to 2.6 ms against the direct kernel's 1.4 to 1.5 (batch 4: 4.2 to 4.5 ms against 5.5
///   to 6.7);
/// * at least one tile (2 x 2 outputs) of the batch per 1024 kernels (`C_in x C_out`): the
///   transformed weights, 16 values per kernel, stream from memory once per group of tiles, and
///   512 -> 512 channels on 16 images of 4 x 4 (64 tiles) took 15 to 21 ms against 13 to 17.
pub fn applies(g: &Conv2dGeometry) -> bool {
    let tiles = g.batch * g.out_height().div_ceil(2) * g.out_width().div_ceil(2);
    g.kind() == ConvKind::Direct
        && (g.kernel_height, g.kernel_width) == (3, 3)
        && g.stride == (1, 1)
        && g.dilation == (1, 1)
        && g.groups == 1
        && g.in_channels >= MIN_CHANNELS
        && g.out_channels >= MIN_CHANNELS
        && g.padding.0 <= 2
        && g.padding.1 <= 2
        && g.batch >= 2 * rayon::current_num_threads()
        && tiles * 1024 >= g.in_channels * g.out_channels
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
    // Row `k` of the product is output channel `k`, summed over input channels `c`.
    let c = g.in_channels;
    let weights = Weights::new(g.out_channels, c, |k, ci| kernel(weight, k * c + ci, false));
    run(g, input, &weights, bias, output);
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
    let transposed = Conv2dGeometry::new(
        g.batch,
        g.out_channels,
        g.in_channels,
        (g.out_height(), g.out_width()),
        (3, 3),
    )
    .with_padding((2 - g.padding.0, 2 - g.padding.1));
    debug_assert_eq!(transposed.output_len(), g.input_len());
    // Row `c` of the product is input channel `c`, summed over output channels `k`.
    let c = g.in_channels;
    let weights = Weights::new(c, g.out_channels, |ci, k| kernel(weight, k * c + ci, true));
    run(&transposed, grad_output, &weights, None, grad_input);
}

/// Panics unless the kernel, stride, dilation, groups and padding are ones these passes compute
/// (the channel counts, batch and tiles that [`applies`] also weighs are not checked).
fn check(g: &Conv2dGeometry) {
    let shape = (
        g.kernel_height,
        g.kernel_width,
        g.stride,
        g.dilation,
        g.groups,
    );
    assert!(
        shape == (3, 3, (1, 1), (1, 1), 1) && g.padding.0 <= 2 && g.padding.1 <= 2,
        "winograd: needs a 3 x 3 kernel, unit stride and dilation, one group and padding <= 2: {g:?}"
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

/// The transformed kernels `U[ξ][row][depth]`, packed by blocks of [`BLOCK`] rows as
/// `[block][ξ][depth][rows of the block]`.
struct Weights {
    packed: Vec<f32>,
    rows: usize,
    depth: usize,
}

impl Weights {
    /// `kernel(row, d)` is the 3 x 3 kernel from input `d` to output `row`.
    fn new(rows: usize, depth: usize, kernel: impl Fn(usize, usize) -> [f32; 9] + Sync) -> Self {
        let mut packed = vec![0.0; POSITIONS * rows * depth];
        packed
            .par_chunks_mut(POSITIONS * BLOCK * depth.max(1))
            .enumerate()
            .for_each(|(block, chunk)| {
                let first = block * BLOCK;
                let len = BLOCK.min(rows - first);
                for row in first..first + len {
                    for d in 0..depth {
                        let u = transform::kernel(&kernel(row, d));
                        for (xi, value) in u.into_iter().enumerate() {
                            chunk[(xi * depth + d) * len + row - first] = value;
                        }
                    }
                }
            });
        Weights {
            packed,
            rows,
            depth,
        }
    }

    /// `U[ξ]` for the block of `len` rows from `first`, as `[depth][len]`.
    fn block(&self, xi: usize, first: usize, len: usize) -> &[f32] {
        debug_assert!(first % BLOCK == 0 && len == BLOCK.min(self.rows - first));
        &self.packed[(first * POSITIONS + xi * len) * self.depth..][..len * self.depth]
    }
}
