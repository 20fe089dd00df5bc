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

mod transform;

#[cfg(test)]
mod tests;

use crate::conv::padded::SplitInput;
use crate::conv::tasks::block_ranges;
use crate::conv::tile::{as_arrays, pixel_tile, Taps, LANES};
use crate::{Conv2dGeometry, ConvKind};
use rayon::prelude::*;
use transform::Run;
use wide::f32x8;

/// Positions of a transformed tile (4 x 4).
const POSITIONS: usize = 16;
/// Output channels per register tile.
const BLOCK: usize = 6;
/// Vectors of tiles per register tile.
const U: usize = 2;
/// Tiles per register tile.
const TILE: usize = U * LANES;
/// Values of `V` per group of tiles, at most: 128 KiB, a quarter of L2.
const GROUP_VALUES: usize = 32 * 1024;
/// Tiles per group, at most.
const MAX_GROUP: usize = 64;
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

/// Panics unless [`applies`] holds, whatever the channel counts.
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

/// `output = conv(input, U) + bias` for a 3 x 3, stride-1 geometry `g` whose transformed
/// kernels are `weights`.
fn run(
    g: &Conv2dGeometry,
    input: &[f32],
    weights: &Weights,
    bias: Option<&[f32]>,
    output: &mut [f32],
) {
    let (out_height, out_width) = (g.out_height(), g.out_width());
    let out_plane = out_height * out_width;
    if output.is_empty() {
        return;
    }
    if input.is_empty() {
        // No input channels: every output is its bias.
        for (index, plane) in output.chunks_exact_mut(out_plane).enumerate() {
            plane.fill(bias.map_or(0.0, |b| b[index % g.out_channels]));
        }
        return;
    }
    // A run's last vector reads up to 8 values past its row; a tile in the last row of an odd
    // output reads one padded row past its plane.
    let phase = (g.in_width + 2 * g.padding.1).div_ceil(2);
    let slack = 2 * phase + 2 * LANES;
    let grid = Grid::new(out_height, out_width);
    let depth = g.in_channels;
    let group = (GROUP_VALUES / (POSITIONS * depth) / TILE * TILE).clamp(TILE, MAX_GROUP);
    let offsets: Vec<u32> = (0..depth)
        .map(|c| u32::try_from(c * (group + LANES)).expect("group exceeds u32"))
        .collect();
    let job = Job {
        g,
        input,
        slack,
        weights,
        bias,
        grid,
        depth,
        group,
        taps: Taps::new(&offsets),
        out_plane,
    };

    // Tasks: (range of images, range of channel blocks), each writing its own slice. Small
    // batches split the channels, so both cores are busy; small images are taken several at a
    // time, so a group of tiles spans images and each block of packed weights serves more tiles.
    let blocks = g.out_channels.div_ceil(BLOCK);
    let ranges = block_ranges(g.batch, blocks);
    let tiles_per_image = grid.tiles_per_image();
    let images_per_task = if ranges.len() > 1 {
        1
    } else {
        let wanted = MAX_GROUP.div_ceil(tiles_per_image);
        wanted
            .min(g.batch / (4 * rayon::current_num_threads()))
            .max(1)
    };
    let mut tasks = Vec::new();
    let mut rest = output;
    for first_image in (0..g.batch).step_by(images_per_task) {
        let images = first_image..(first_image + images_per_task).min(g.batch);
        for range in &ranges {
            let first = range.start * BLOCK;
            let channels = (range.end * BLOCK).min(g.out_channels) - first;
            let (piece, tail) = rest.split_at_mut(images.len() * channels * out_plane);
            tasks.push((images.clone(), first..first + channels, piece));
            rest = tail;
        }
    }
    tasks
        .into_par_iter()
        .for_each(|(images, channels, out)| job.task(images, channels, out));
}

/// The tiles of one image: `rows x columns` tiles of 2 x 2 outputs (the last row or column of
/// tiles is half outside an odd output).
#[derive(Clone, Copy)]
struct Grid {
    rows: usize,
    columns: usize,
    out_height: usize,
    out_width: usize,
}

impl Grid {
    fn new(out_height: usize, out_width: usize) -> Self {
        Grid {
            rows: out_height.div_ceil(2),
            columns: out_width.div_ceil(2),
            out_height,
            out_width,
        }
    }

    fn tiles_per_image(&self) -> usize {
        self.rows * self.columns
    }

    /// Tiles `start..start + count`, counted row by row over the images from `first_image` on,
    /// cut into runs along tile rows: each run with its first slot (`0` for tile `start`) and
    /// its image's place after `first_image`.
    fn runs(
        self,
        first_image: usize,
        start: usize,
        count: usize,
    ) -> impl Iterator<Item = (usize, usize, Run)> {
        let per_image = self.tiles_per_image();
        let mut tile = start;
        std::iter::from_fn(move || {
            (tile < start + count).then(|| {
                let (image, local) = (tile / per_image, tile % per_image);
                let column = local % self.columns;
                let run = Run {
                    image: first_image + image,
                    row: local / self.columns,
                    column,
                    count: (self.columns - column).min(start + count - tile),
                };
                let slot = tile - start;
                tile += run.count;
                (slot, image, run)
            })
        })
    }
}

/// What every task shares.
struct Job<'a> {
    g: &'a Conv2dGeometry,
    input: &'a [f32],
    /// Zeros after a task's split input (see [`run`]).
    slack: usize,
    weights: &'a Weights,
    bias: Option<&'a [f32]>,
    grid: Grid,
    depth: usize,
    /// Tiles per group, a multiple of [`TILE`]; `V` has `group + LANES` slots per channel.
    group: usize,
    /// `c * (group + LANES)` for every input channel `c`.
    taps: Taps<'a>,
    out_plane: usize,
}

/// Where one tile's 2 x 2 outputs go in a task's slice: the offset of the top-left one in its
/// first channel's plane, and whether the right column and the bottom row are inside the output.
#[derive(Clone, Copy)]
struct Slot {
    offset: usize,
    right: bool,
    below: bool,
}

impl Job<'_> {
    /// Output channels `channels` of `images`; `out` is their slice of the output.
    fn task(
        &self,
        images: std::ops::Range<usize>,
        channels: std::ops::Range<usize>,
        out: &mut [f32],
    ) {
        // The task's own images, padded and split: built here, they are still in L2 when the
        // transforms read them (split for the whole batch up front, they came back from memory).
        let image_len = self.g.in_channels * self.g.in_height * self.g.in_width;
        let task_input = &self.input[images.start * image_len..images.end * image_len];
        let task_geometry = Conv2dGeometry {
            batch: images.len(),
            ..*self.g
        };
        let split = SplitInput::new(&task_geometry, task_input, 2, self.slack);
        let total = images.len() * self.grid.tiles_per_image();
        let image_values = channels.len() * self.out_plane;
        let stride = self.group + LANES;
        let mut v = vec![0.0; POSITIONS * self.depth * stride];
        let mut m = vec![[[f32x8::ZERO; U]; BLOCK]; POSITIONS * self.group / TILE];
        let mut slots = Vec::with_capacity(self.group);
        for start in (0..total).step_by(self.group) {
            let count = self.group.min(total - start);
            slots.clear();
            for (slot, image, run) in self.grid.runs(0, start, count) {
                transform::input(&split, self.depth, run, &mut v, (slot, stride));
                for column in run.column..run.column + run.count {
                    let (y, x) = (2 * run.row, 2 * column);
                    slots.push(Slot {
                        offset: image * image_values + y * self.grid.out_width + x,
                        right: x + 1 < self.grid.out_width,
                        below: y + 1 < self.grid.out_height,
                    });
                }
            }
            for first in channels.clone().step_by(BLOCK) {
                let len = BLOCK.min(channels.end - first);
                let out = &mut out[(first - channels.start) * self.out_plane..];
                let block = Block {
                    first,
                    v: &v,
                    slots: &slots,
                };
                match len {
                    1 => self.block::<1>(block, &mut m, out),
                    2 => self.block::<2>(block, &mut m, out),
                    3 => self.block::<3>(block, &mut m, out),
                    4 => self.block::<4>(block, &mut m, out),
                    5 => self.block::<5>(block, &mut m, out),
                    _ => self.block::<6>(block, &mut m, out),
                }
            }
        }
    }

    /// One block of `C` output channels over a group of tiles: the 16 products for every 16
    /// tiles, then the output transform and the stores. `out` starts at the block's first
    /// channel's plane of the task's first image.
    fn block<const C: usize>(
        &self,
        Block { first, v, slots }: Block<'_>,
        m: &mut [[[f32x8; U]; BLOCK]],
        out: &mut [f32],
    ) {
        let count = slots.len();
        let sets = count.div_ceil(TILE);
        let stride = self.group + LANES;
        for xi in 0..POSITIONS {
            let weights = as_arrays::<C, f32>(self.weights.block(xi, first, C));
            let source = &v[xi * self.depth * stride..][..self.depth * stride];
            for set in 0..sets {
                let acc = pixel_tile::<C, U>(source, set * TILE, self.taps, weights);
                m[set * POSITIONS + xi][..C].copy_from_slice(&acc);
            }
        }
        let (width, plane) = (self.grid.out_width, self.out_plane);
        for set in 0..sets {
            let products = &m[set * POSITIONS..][..POSITIONS];
            for channel in 0..C {
                let bias = f32x8::splat(self.bias.map_or(0.0, |b| b[first + channel]));
                let out = &mut out[channel * plane..];
                for u in 0..U {
                    let mut tiles = [f32x8::ZERO; POSITIONS];
                    for (tile, product) in tiles.iter_mut().zip(products) {
                        *tile = product[channel][u];
                    }
                    let [y00, y01, y10, y11] =
                        transform::output(tiles).map(|y| (y + bias).to_array());
                    let base = set * TILE + u * LANES;
                    for (lane, slot) in slots.iter().skip(base).take(LANES).enumerate() {
                        let at = slot.offset;
                        out[at] = y00[lane];
                        if slot.right {
                            out[at + 1] = y01[lane];
                        }
                        if slot.below {
                            out[at + width] = y10[lane];
                            if slot.right {
                                out[at + width + 1] = y11[lane];
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A block's share of a group: its first output channel, the group's `V` and where its tiles go.
struct Block<'a> {
    first: usize,
    v: &'a [f32],
    slots: &'a [Slot],
}
