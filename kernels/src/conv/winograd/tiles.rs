//! The tiles' loops: a convolution's output cut into tasks, each task's tiles into groups, and
//! each group through the input transform, the 16 products and the output transform (see the
//! module docs of `winograd` for the layout and the order).

use super::transform::{self, Run};
use super::{Weights, BLOCK, POSITIONS};
use crate::conv::fill_with_bias;
use crate::conv::padded::SplitInput;
use crate::conv::tasks::block_ranges;
use crate::conv::tile::{as_arrays, pixel_tile, Taps, LANES};
use crate::Conv2dGeometry;
use rayon::prelude::*;
use wide::f32x8;

/// Vectors of tiles per register tile.
const U: usize = 2;
/// Tiles per register tile.
const TILE: usize = U * LANES;
/// Values of `V` per group of tiles, at most: 128 KiB, a quarter of L2.
const GROUP_VALUES: usize = 32 * 1024;
/// Tiles per group, at most.
const MAX_GROUP: usize = 64;

/// `output = conv(input, U) + bias` for a 3 x 3, stride-1 geometry `g` whose transformed
/// kernels are `weights`.
pub(super) fn run(
    g: &Conv2dGeometry,
    input: &[f32],
    weights: &Weights,
    bias: Option<&[f32]>,
    output: &mut [f32],
) {
    if input.is_empty() || output.is_empty() {
        return fill_with_bias(g, bias, output);
    }
    // A run's last vector reads up to 8 values past its row; a tile in the last row of an odd
    // output reads one padded row past its plane.
    let phase = (g.in_width + 2 * g.padding.1).div_ceil(2);
    let slack = 2 * phase + 2 * LANES;
    let grid = Grid::new(g.out_height(), g.out_width());
    let out_plane = grid.plane();
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
        group,
        taps: Taps::new(&offsets),
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
    /// `c * (group + LANES)` for every input channel `c`.
    taps: Taps<'a>,
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
        let image_values = channels.len() * self.grid.plane();
        let stride = self.group + LANES;
        let mut v = vec![0.0; POSITIONS * self.g.in_channels * stride];
        let mut m = vec![[[f32x8::ZERO; U]; BLOCK]; POSITIONS * self.group / TILE];
        let mut slots = Vec::with_capacity(self.group);
        for start in (0..total).step_by(self.group) {
            let count = self.group.min(total - start);
            slots.clear();
            for (slot, run) in self.grid.runs(start, count) {
                transform::input(&split, self.g.in_channels, run, &mut v, (slot, stride));
                for column in run.column..run.column + run.count {
                    let (y, x) = (2 * run.row, 2 * column);
                    slots.push(Slot {
                        offset: run.image * image_values + y * self.grid.out_width + x,
                        right: x + 1 < self.grid.out_width,
                        below: y + 1 < self.grid.out_height,
                    });
                }
            }
            for first in channels.clone().step_by(BLOCK) {
                let len = BLOCK.min(channels.end - first);
                let out = &mut out[(first - channels.start) * self.grid.plane()..];
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
        // One position's `V`: every input channel's slots.
        let position = self.g.in_channels * (self.group + LANES);
        for xi in 0..POSITIONS {
            let weights = as_arrays::<C, f32>(self.weights.block(xi, first, C));
            let source = &v[xi * position..][..position];
            for set in 0..sets {
                let acc = pixel_tile::<C, U>(source, set * TILE, self.taps, weights);
                m[set * POSITIONS + xi][..C].copy_from_slice(&acc);
            }
        }
        let (width, plane) = (self.grid.out_width, self.grid.plane());
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
