//! The tiles' loops: a convolution's output cut into tasks, each task's tiles into groups, and
//! each group through the input transform, the products and the output transform (see the
//! module docs of `winograd` for the layout and the order).

use super::schemes::{Scheme, MAX_OUTPUT};
use super::transform::{self, Run, MAX_POSITIONS};
use super::{Weights, BLOCK};
use crate::cache::l2_bytes;
use crate::conv::fill_with_bias;
use crate::conv::padded::SplitInput;
use crate::conv::tasks::block_ranges;
use crate::conv::tile::{as_arrays, strided_tile, LANES, PAIRED};
use crate::Conv2dGeometry;
use rayon::prelude::*;
use wide::f32x8;

/// Vectors of 8 tiles per register tile; with AVX-512 the micro-kernel joins them in pairs
/// (`conv/tile.rs`), so 4 of them keep as many accumulators as 2 do with AVX2.
const U: usize = if PAIRED { 4 } else { 2 };
/// Tiles per register tile.
const TILE: usize = U * LANES;
/// Values of `V` per group of tiles, at most: a quarter of L2 (128 KiB where L2 is 512 KiB, as
/// on the AMD host this was tuned on). On a 2 MiB L2, the groups of 64 tiles this allows at 32 x 32
/// (against 32 in 128 KiB) made the forward pass and backward-data at 64 channels 5% to 9% faster.
fn group_values() -> usize {
    l2_bytes() / 4 / 4
}
/// Tiles per group, at most.
const MAX_GROUP: usize = 64;

/// `output = conv(input, U) + bias` by scheme `S`, where `weights` holds the kernels transformed
/// by `S`. `g` describes the input (its batch, channels, size and padding) and the output's
/// channels; the output is `out_height x out_width` per plane.
pub(super) fn run<S: Scheme>(
    g: &Conv2dGeometry,
    (out_height, out_width): (usize, usize),
    input: &[f32],
    weights: &Weights,
    bias: Option<&[f32]>,
    output: &mut [f32],
) {
    if input.is_empty() || output.is_empty() {
        return fill_with_bias(g, bias, output);
    }
    // A run's last vector reads up to 8 values past its row, and the last row of tiles may
    // read up to `S::SHIFT + S::INPUT` padded rows past its plane (into the next plane, or these
    // zeros). What it reads there reaches only outputs past the edge, which are not stored.
    let split_row = S::STEP * (g.in_width + 2 * g.padding.1).div_ceil(S::STEP);
    let slack = (S::SHIFT + S::INPUT + 1) * split_row + 2 * LANES;
    let grid = Grid::new::<S>(out_height, out_width);
    let out_plane = grid.plane();
    let depth = g.in_channels;
    let group = (group_values() / (S::POSITIONS * depth) / TILE * TILE).clamp(TILE, MAX_GROUP);
    let job = Job {
        g,
        input,
        slack,
        weights,
        bias,
        grid,
        group,
    };

    // Tasks: (range of images, range of channel blocks), each writing its own slice. Small
    // batches split the channels, so both cores are busy; small images are taken several at a
    // time, so a group of tiles spans images and each block of packed weights serves more tiles.
    let block = weights.block;
    let blocks = g.out_channels.div_ceil(block);
    let ranges = block_ranges(g.batch, blocks);
    let images_per_task = images_per_task(g.batch, grid.tiles_per_image());
    let mut tasks = Vec::new();
    let mut rest = output;
    for first_image in (0..g.batch).step_by(images_per_task) {
        let images = first_image..(first_image + images_per_task).min(g.batch);
        for range in &ranges {
            let first = range.start * block;
            let channels = (range.end * block).min(g.out_channels) - first;
            let (piece, tail) = rest.split_at_mut(images.len() * channels * out_plane);
            tasks.push((images.clone(), first..first + channels, piece));
            rest = tail;
        }
    }
    // The buffers of `V` and the products are reused from one task to the next: zeroed for
    // every task (of one image at 32 x 32), they took a tenth of the pass.
    tasks
        .into_par_iter()
        .for_each_init(Buffers::default, |buffers, (images, channels, out)| {
            job.task::<S>(buffers, images, channels, out)
        });
}

/// A task's working memory: `V` for a group of tiles, and the products of one block.
#[derive(Default)]
struct Buffers {
    v: Vec<f32>,
    m: Vec<[[f32x8; U]; BLOCK]>,
}

/// Images per task for a batch of `batch` images of `tiles_per_image` tiles: enough for a full
/// group where the batch leaves 4 tasks per thread, else one. (Batches small enough for tasks
/// to split the channels, under 4 images per thread, take one.)
fn images_per_task(batch: usize, tiles_per_image: usize) -> usize {
    MAX_GROUP
        .div_ceil(tiles_per_image)
        .min(batch / (4 * rayon::current_num_threads()))
        .max(1)
}

/// Tiles per task of a pass of scheme `S` over `batch` images with `height x width` outputs.
pub(super) fn tiles_per_task<S: Scheme>(batch: usize, (height, width): (usize, usize)) -> usize {
    let tiles = Grid::new::<S>(height, width).tiles_per_image();
    tiles * images_per_task(batch, tiles)
}

/// The tiles of one image: `rows x columns` tiles of `side x side` outputs (the last row or
/// column of tiles may be partly outside the output).
#[derive(Clone, Copy)]
struct Grid {
    rows: usize,
    columns: usize,
    side: usize,
    out_height: usize,
    out_width: usize,
}

impl Grid {
    fn new<S: Scheme>(out_height: usize, out_width: usize) -> Self {
        Grid {
            rows: out_height.div_ceil(S::OUTPUT),
            columns: out_width.div_ceil(S::OUTPUT),
            side: S::OUTPUT,
            out_height,
            out_width,
        }
    }

    /// Output values per plane.
    fn plane(&self) -> usize {
        self.out_height * self.out_width
    }

    fn tiles_per_image(&self) -> usize {
        self.rows * self.columns
    }

    /// Tiles `start..start + count`, counted row by row over a task's images, cut into runs
    /// along tile rows: each run with its first slot (`0` for tile `start`).
    fn runs(self, start: usize, count: usize) -> impl Iterator<Item = (usize, Run)> {
        let per_image = self.tiles_per_image();
        let mut tile = start;
        std::iter::from_fn(move || {
            (tile < start + count).then(|| {
                let (image, local) = (tile / per_image, tile % per_image);
                let column = local % self.columns;
                let run = Run {
                    image,
                    row: local / self.columns,
                    column,
                    count: (self.columns - column).min(start + count - tile),
                };
                let slot = tile - start;
                tile += run.count;
                (slot, run)
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
    /// Tiles per group, a multiple of [`TILE`]; `V` has `group + LANES` slots per channel.
    group: usize,
}

/// Where one tile's outputs go in a task's slice: the offset of the top-left one in its first
/// channel's plane, and how many of its rows and columns are inside the output.
#[derive(Clone, Copy)]
struct Slot {
    offset: usize,
    rows: usize,
    columns: usize,
}

impl Job<'_> {
    /// Output channels `channels` of `images`; `out` is their slice of the output.
    fn task<S: Scheme>(
        &self,
        buffers: &mut Buffers,
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
        let split = SplitInput::new(&task_geometry, task_input, S::STEP, self.slack);
        let total = images.len() * self.grid.tiles_per_image();
        let image_values = channels.len() * self.grid.plane();
        let stride = self.group + LANES;
        // Every slot a product reads is written first for the group at hand (slots past the
        // group's tiles hold stale values, whose outputs are not stored).
        let v_len = S::POSITIONS * self.g.in_channels * stride;
        buffers.v.resize(v_len, 0.0);
        buffers
            .m
            .resize(S::POSITIONS * self.group / TILE, [[f32x8::ZERO; U]; BLOCK]);
        let (v, m) = (&mut buffers.v[..v_len], &mut buffers.m[..]);
        let mut slots = Vec::with_capacity(self.group);
        for start in (0..total).step_by(self.group) {
            let count = self.group.min(total - start);
            slots.clear();
            // Rows of 1, 2 or 4 tiles fill a vector's lanes from several rows (see
            // `transform::short_rows`); other runs are transformed one at a time. `batch` holds
            // such rows from slot `batch_slot` on.
            let short = matches!(self.grid.columns, 1 | 2 | 4);
            let (mut batch, mut batch_slot) = (Vec::with_capacity(LANES), 0);
            let channels_in = self.g.in_channels;
            let flush = |batch: &mut Vec<Run>, slot: usize, v: &mut [f32]| {
                let (split, at) = (&split, (slot, stride));
                match (batch.is_empty(), self.grid.columns) {
                    (true, _) => {}
                    (_, 1) => transform::short_rows::<S, 1>(split, channels_in, batch, v, at),
                    (_, 2) => transform::short_rows::<S, 2>(split, channels_in, batch, v, at),
                    _ => transform::short_rows::<S, 4>(split, channels_in, batch, v, at),
                }
                batch.clear();
            };
            for (slot, run) in self.grid.runs(start, count) {
                if short && run.count == self.grid.columns {
                    if batch.is_empty() {
                        batch_slot = slot;
                    }
                    batch.push(run);
                    if batch.len() * run.count == LANES {
                        flush(&mut batch, batch_slot, v);
                    }
                } else {
                    flush(&mut batch, batch_slot, v);
                    transform::input::<S>(&split, channels_in, run, v, (slot, stride));
                }
                let side = self.grid.side;
                for column in run.column..run.column + run.count {
                    let (y, x) = (side * run.row, side * column);
                    slots.push(Slot {
                        offset: run.image * image_values + y * self.grid.out_width + x,
                        rows: side.min(self.grid.out_height - y),
                        columns: side.min(self.grid.out_width - x),
                    });
                }
            }
            flush(&mut batch, batch_slot, v);
            let block = self.weights.block;
            for first in channels.clone().step_by(block) {
                let len = block.min(channels.end - first);
                let out = &mut out[(first - channels.start) * self.grid.plane()..];
                let block = Block {
                    first,
                    v,
                    slots: &slots,
                };
                match len {
                    1 => self.block::<S, 1>(block, m, out),
                    2 => self.block::<S, 2>(block, m, out),
                    3 => self.block::<S, 3>(block, m, out),
                    4 => self.block::<S, 4>(block, m, out),
                    5 => self.block::<S, 5>(block, m, out),
                    6 => self.block::<S, 6>(block, m, out),
                    7 => self.block::<S, 7>(block, m, out),
                    _ => self.block::<S, 8>(block, m, out),
                }
            }
        }
    }

    /// One block of `C` output channels over a group of tiles: the products for every 16 tiles,
    /// then the output transform and the stores. `out` starts at the block's first channel's
    /// plane of the task's first image.
    fn block<S: Scheme, const C: usize>(
        &self,
        Block { first, v, slots }: Block<'_>,
        m: &mut [[[f32x8; U]; BLOCK]],
        out: &mut [f32],
    ) {
        let count = slots.len();
        let sets = count.div_ceil(TILE);
        // One position's `V`: every input channel's slots.
        let position = self.g.in_channels * (self.group + LANES);
        let positions = S::POSITIONS;
        for xi in 0..positions {
            let weights = as_arrays::<C, f32>(self.weights.block(xi, first, C));
            let source = &v[xi * position..][..position];
            for set in 0..sets {
                let stride = self.group + LANES;
                let acc = strided_tile::<U, C>(weights, source, set * TILE, stride);
                m[set * positions + xi][..C].copy_from_slice(&acc);
            }
        }
        let (width, plane) = (self.grid.out_width, self.grid.plane());
        for set in 0..sets {
            let products = &m[set * positions..][..positions];
            // The tiles of each vector, and whether they are 8 whole tiles.
            let lanes: [&[Slot]; U] = std::array::from_fn(|u| {
                let base = (set * TILE + u * LANES).min(count);
                &slots[base..count.min(base + LANES)]
            });
            let whole = lanes.map(whole::<S>);
            for channel in 0..C {
                let bias = f32x8::splat(self.bias.map_or(0.0, |b| b[first + channel]));
                let out = &mut out[channel * plane..];
                for u in 0..U {
                    let mut tiles = [f32x8::ZERO; MAX_POSITIONS];
                    for (tile, product) in tiles.iter_mut().zip(products) {
                        *tile = product[channel][u];
                    }
                    let y = transform::output::<S>(&tiles).map(|y| y + bias);
                    if whole[u] {
                        interleave::<S>(&y, lanes[u], width, out);
                    } else {
                        store::<S>(&y, lanes[u], width, out);
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

/// Whether `slots` are 8 whole tiles, which most are: their outputs are then stored by
/// [`interleave`].
fn whole<S: Scheme>(slots: &[Slot]) -> bool {
    slots.len() == LANES
        && slots
            .iter()
            .all(|slot| slot.rows == S::OUTPUT && slot.columns == S::OUTPUT)
}

/// Stores the outputs of up to 8 tiles one value at a time, `values[OUTPUT i + j]` holding
/// output `(i, j)` of the tile in `slots[lane]` in that lane (only the rows and columns of each
/// tile that are inside the output).
#[inline(always)]
fn store<S: Scheme>(
    values: &[f32x8; MAX_OUTPUT * MAX_OUTPUT],
    slots: &[Slot],
    width: usize,
    out: &mut [f32],
) {
    let values = values.map(|vector| vector.to_array());
    for (lane, slot) in slots.iter().enumerate() {
        for i in 0..slot.rows {
            let row = &mut out[slot.offset + i * width..][..slot.columns];
            for (j, value) in row.iter_mut().enumerate() {
                *value = values[S::OUTPUT * i + j][lane];
            }
        }
    }
}

/// Writes 8 whole tiles, `values[OUTPUT i + j]` holding output `(i, j)` of the tile in
/// `slots[lane]` in that lane. One 8 x 8 transpose takes the `OUTPUT` vectors of `8 / OUTPUT`
/// rows and gives, in vector `lane`, that tile's values of those rows one after the other, which
/// are stored as runs of `OUTPUT`. (Written through an array on the stack, the interleaved rows
/// of tiles side by side were read back with wider loads than the stores that wrote them: a
/// stalled store-to-load forward, a tenth of the pass.)
#[inline(always)]
fn interleave<S: Scheme>(
    values: &[f32x8; MAX_OUTPUT * MAX_OUTPUT],
    slots: &[Slot],
    width: usize,
    out: &mut [f32],
) {
    debug_assert_eq!(slots.len(), LANES);
    let rows_per_transpose = LANES / S::OUTPUT;
    for first in (0..S::OUTPUT).step_by(rows_per_transpose) {
        let rows = rows_per_transpose.min(S::OUTPUT - first);
        let columns = f32x8::transpose(std::array::from_fn(|k| {
            let (i, j) = (first + k / S::OUTPUT, k % S::OUTPUT);
            if k / S::OUTPUT < rows {
                values[S::OUTPUT * i + j]
            } else {
                f32x8::ZERO
            }
        }));
        for (column, slot) in columns.iter().zip(slots) {
            let column = column.as_array();
            for r in 0..rows {
                let start = slot.offset + (first + r) * width;
                out[start..start + S::OUTPUT]
                    .copy_from_slice(&column[S::OUTPUT * r..S::OUTPUT * (r + 1)]);
            }
        }
    }
}
