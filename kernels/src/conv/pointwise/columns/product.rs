//! Pointwise forward and backward-data on small images: one product over every column of the
//! batch (see `columns/mod.rs`).

use super::{chunk_lanes, column_offsets, pixel_positions, runs, BLOCK, CHUNK_BYTES, P, V};
use crate::conv::pointwise::Dims;
use crate::conv::recycled::Recycled;
use crate::conv::tile::{as_arrays, lane_bases, panel_tile, tile, Taps, LANES};
use crate::lanes::{load, prefetch, store};
use crate::Conv2dGeometry;
use rayon::prelude::*;
use wide::f32x8;

/// Columns a task should hold at least where the batch allows: each of the task's blocks
/// reuses the chunk of the matrix in cache (256 columns: 16 blocks, 256 KiB packed).
const TASK_COLUMNS: usize = 256;
/// Bytes of output a task should not exceed, so that its output stays in L2 (512 KiB here) from
/// one chunk of the sum to the next, beside the packed blocks and a chunk of the matrix.
const TASK_OUTPUT_BYTES: usize = 192 << 10;
/// Fewest columns (pixels of the batch) for which the matrix is packed (see
/// `Product::pack_panels`): each packed value then serves at least this many columns. At 32
/// columns (1 x 1 images) packing a 1024 x 1024 weight doubled the time of the pass.
const PACK_COLUMNS: usize = 1024;
/// Channels summed per pass over a task's columns (see `Product::run`).
const DEPTH_CHUNK: usize = 256;

/// The batch split into ranges of whole images, one per task: a multiple of the thread count,
/// sizes within one of each other, each range with at least `TASK_COLUMNS` columns where the
/// batch allows but no more images than keep the task's output (`rows` channels of `pixels`
/// each) within `TASK_OUTPUT_BYTES`.
fn task_ranges(batch: usize, pixels: usize, rows: usize) -> Vec<std::ops::Range<usize>> {
    let threads = rayon::current_num_threads();
    let fitting = (TASK_OUTPUT_BYTES / (4 * rows * pixels).max(1)).max(1);
    let rounds = (batch * pixels / (threads * TASK_COLUMNS))
        .max(batch.div_ceil(threads * fitting))
        .max(1);
    let tasks = (threads * rounds).min(batch);
    (0..tasks)
        .map(|i| i * batch / tasks..(i + 1) * batch / tasks)
        .collect()
}

/// `out = W x in + bias` over every image at once.
pub(in crate::conv::pointwise) fn forward(
    g: &Conv2dGeometry,
    d: &Dims,
    (input, weight, bias): (&[f32], &[f32], Option<&[f32]>),
    output: &mut [f32],
) {
    let product = Product {
        matrix: weight,
        rows: d.out_channels,
        depth: d.in_channels,
        row_step: d.in_channels,
        depth_step: 1,
        source: input,
        source_image: d.in_channels * d.in_pixels,
        source_plane: d.in_pixels,
        source_positions: &pixel_positions(g, true),
        out_plane: d.pixels,
        out_positions: &pixel_positions(g, false),
        bias,
    };
    product.run(g.batch, output);
}

/// `grad_in = W^T x grad_out`, zeros at the input pixels a strided kernel skips.
pub(in crate::conv::pointwise) fn backward_data(
    g: &Conv2dGeometry,
    d: &Dims,
    (grad_output, weight): (&[f32], &[f32]),
    grad_input: &mut [f32],
) {
    let product = Product {
        // `W^T`, read down the columns of `W`.
        matrix: weight,
        rows: d.in_channels,
        depth: d.out_channels,
        row_step: 1,
        depth_step: d.in_channels,
        source: grad_output,
        source_image: d.out_channels * d.pixels,
        source_plane: d.pixels,
        source_positions: &pixel_positions(g, false),
        out_plane: d.in_pixels,
        out_positions: &pixel_positions(g, true),
        bias: None,
    };
    if d.strided {
        grad_input.fill(0.0);
    }
    product.run(g.batch, grad_input);
}

/// Where a tile finds the rows of the matrix.
enum MatrixRows {
    /// Panels of `P` rows (see `Product::pack_panels`).
    Packed(Recycled),
    /// The matrix itself: where each row's channel 0 is, and where channel `k` of a row is
    /// relative to it.
    InPlace {
        starts: Vec<usize>,
        offsets: Vec<u32>,
    },
}

impl MatrixRows {
    fn new(product: &Product, columns: usize) -> Self {
        if columns >= PACK_COLUMNS {
            return MatrixRows::Packed(product.pack_panels());
        }
        MatrixRows::InPlace {
            starts: (0..product.rows)
                .map(|row| row * product.row_step)
                .collect(),
            offsets: (0..product.depth)
                .map(|k| u32::try_from(k * product.depth_step).expect("weight exceeds u32 offsets"))
                .collect(),
        }
    }

    /// Rows `first_row..first_row + P` (`first_row` a multiple of `P`) times the packed `block`,
    /// over `channels` of the sum. `taps` is built on [`MatrixRows::offsets`].
    fn tile(
        &self,
        product: &Product,
        first_row: usize,
        taps: Taps<'_>,
        channels: std::ops::Range<usize>,
        block: &[[f32x8; V]],
    ) -> [[f32x8; V]; P] {
        match self {
            MatrixRows::Packed(panels) => {
                debug_assert_eq!(first_row % P, 0);
                let start = first_row * product.depth + channels.start * P;
                let panel = &panels[start..start + channels.len() * P];
                panel_tile::<V, P>(as_arrays(panel), block)
            }
            MatrixRows::InPlace { starts, .. } => {
                let lanes = lane_bases::<P>(starts, first_row);
                tile::<V, P>(product.matrix, &lanes, taps.slice(channels), block)
            }
        }
    }

    /// The offsets of channels within a row read in place (none for panels).
    fn offsets(&self) -> &[u32] {
        match self {
            MatrixRows::Packed(_) => &[],
            MatrixRows::InPlace { offsets, .. } => offsets,
        }
    }

    /// Rows per chunk: a chunk stays in cache while each block passes over it. Read in place
    /// down the columns of `W` (backward-data), a tile's rows share one line per channel
    /// summed, so two tiles' rows keep `depth` lines in L1.
    fn per_chunk(&self, product: &Product, depth: usize) -> usize {
        match self {
            MatrixRows::InPlace { .. } if product.depth_step != 1 => 2 * P,
            _ => chunk_lanes(depth, CHUNK_BYTES),
        }
    }
}

/// `out[n][row][pixel] = sum over k of matrix[row][k] * source[n][k][pixel] (+ bias[row])`
/// for every image `n` and output pixel, with pixels placed by the position tables.
struct Product<'a> {
    /// `[rows, depth]`, element `(row, k)` at `row * row_step + k * depth_step`: the weight
    /// (forward) or its transpose (backward-data).
    matrix: &'a [f32],
    rows: usize,
    depth: usize,
    row_step: usize,
    depth_step: usize,
    /// The tensor whose `depth` channels are summed.
    source: &'a [f32],
    /// Values per image, and per channel, of `source`.
    source_image: usize,
    source_plane: usize,
    /// Where each column's pixel sits in a source channel.
    source_positions: &'a [usize],
    /// Values per channel of one output image (its `rows` channels make an image).
    out_plane: usize,
    /// Where each column's pixel goes in an output channel.
    out_positions: &'a [usize],
    bias: Option<&'a [f32]>,
}

impl Product<'_> {
    /// Splits the output into ranges of whole images, one rayon task each.
    fn run(&self, batch: usize, output: &mut [f32]) {
        if output.is_empty() {
            return;
        }
        if self.depth == 0 {
            // Nothing to sum: each output is its bias (zero without one).
            for (channel, plane) in output.chunks_exact_mut(self.out_plane).enumerate() {
                plane.fill(self.bias.map_or(0.0, |b| b[channel % self.rows]));
            }
            return;
        }
        let out_image = self.rows * self.out_plane;
        let pixels = self.source_positions.len();
        let ranges = task_ranges(batch, pixels, self.rows);
        let rows = MatrixRows::new(self, batch * pixels);
        let taps = Taps::new(rows.offsets());
        // Each task writes its own images.
        let mut tasks = Vec::with_capacity(ranges.len());
        let mut rest = output;
        for range in ranges {
            let (out, tail) = rest.split_at_mut(range.len() * out_image);
            tasks.push((range.start, out));
            rest = tail;
        }
        tasks.into_par_iter().for_each(|(first, out)| {
            let count = out.len() / out_image;
            let sources = column_offsets(
                self.source_positions,
                first..first + count,
                self.source_image,
            );
            let targets = column_offsets(self.out_positions, 0..count, out_image);
            let source_runs: Vec<_> = sources.chunks(BLOCK).map(runs).collect();
            let target_runs: Vec<_> = targets.chunks(BLOCK).map(runs).collect();
            // The sum runs `DEPTH_CHUNK` channels at a time, so that a packed block (16 KiB,
            // 32 with AVX-512) and the tile's rows of the matrix stay in L1; later chunks add
            // to the output.
            let mut packed = vec![[f32x8::ZERO; V]; source_runs.len() * DEPTH_CHUNK];
            for depth_start in (0..self.depth).step_by(DEPTH_CHUNK) {
                let depth = (self.depth - depth_start).min(DEPTH_CHUNK);
                let channels = depth_start..depth_start + depth;
                let blocks = packed.chunks_exact_mut(DEPTH_CHUNK).zip(&source_runs);
                for (block, source_runs) in blocks {
                    self.pack(source_runs, depth_start, &mut block[..depth]);
                }
                // A chunk of rows stays in cache while each block passes over it.
                let rows_per_chunk = rows.per_chunk(self, depth);
                for chunk in (0..self.rows).step_by(rows_per_chunk) {
                    let chunk_end = self.rows.min(chunk + rows_per_chunk);
                    let blocks = packed.chunks_exact(DEPTH_CHUNK).zip(&target_runs);
                    for (block, target_runs) in blocks {
                        for first_row in (chunk..chunk_end).step_by(P) {
                            self.prefetch_rows(first_row, target_runs, out);
                            let acc =
                                rows.tile(self, first_row, taps, channels.clone(), &block[..depth]);
                            let first_sum = depth_start == 0;
                            self.store(first_row, &acc, target_runs, first_sum, out);
                        }
                    }
                }
            }
        });
    }

    /// The matrix packed by panels of `P` rows, `[panel][k][P]`, so that a tile reads one
    /// contiguous run of it (rows past the last one repeat it). Read in place, a tile would
    /// follow `P` rows of `W` (forward) or share lines down its columns (backward-data); packed,
    /// backward-data at 728 channels ran 1.2 times as fast.
    fn pack_panels(&self) -> Recycled {
        let panel_len = P * self.depth;
        // Every value is written below; a recycled buffer spares the page faults of a fresh
        // one on every call (2.1 MB at 728 x 728 channels: 1% to 2% of a forward pass on one
        // thread, within the noise on two).
        let mut panels = Recycled::take(self.rows.div_ceil(P) * panel_len);
        // Where the last channel of a row is, relative to its first.
        let span = (self.depth - 1) * self.depth_step + 1;
        panels
            .par_chunks_mut(panel_len)
            .enumerate()
            .for_each(|(panel, out)| {
                let first = panel * P;
                if self.row_step == 1 && first + P <= self.rows {
                    // Rows that are consecutive columns of `W` (backward-data): `P` adjacent
                    // values per channel.
                    for (k, values) in out.chunks_exact_mut(P).enumerate() {
                        values.copy_from_slice(&self.matrix[k * self.depth_step + first..][..P]);
                    }
                    return;
                }
                for p in 0..P {
                    let row = (first + p).min(self.rows - 1);
                    let source = &self.matrix[row * self.row_step..][..span];
                    let slots = out[p..].iter_mut().step_by(P);
                    for (slot, &value) in slots.zip(source.iter().step_by(self.depth_step)) {
                        *slot = value;
                    }
                }
            });
        panels
    }

    /// Asks for the lines the tile's rows will be written to, while the tile is computed. A
    /// task's output stays in L2 between chunks of the sum (`TASK_OUTPUT_BYTES`) but not from
    /// one row of tiles to the next, and a miss at the store stalls the next tile. Blocks that
    /// gather many short runs (images of a pixel or two) would need a prefetch per run; they
    /// are left to the hardware.
    fn prefetch_rows(&self, first_row: usize, target_runs: &[(usize, usize, usize)], out: &[f32]) {
        if target_runs.len() > 2 {
            return;
        }
        for row in first_row..self.rows.min(first_row + P) {
            let channel = &out[row * self.out_plane..];
            for &(_, offset, len) in target_runs {
                prefetch(&channel[offset]);
                prefetch(&channel[offset + len - 1]);
            }
        }
    }

    /// Copies the block's columns of source channels `first_channel..` into `packed`, zeros
    /// past the block's columns.
    fn pack(
        &self,
        source_runs: &[(usize, usize, usize)],
        first_channel: usize,
        packed: &mut [[f32x8; V]],
    ) {
        let channels = (first_channel..).zip(packed.iter_mut());
        if let [(0, offset, BLOCK)] = source_runs {
            // Sixteen consecutive pixels (images of 16 pixels or more): two vector loads.
            for (k, vectors) in channels {
                let values = &self.source[k * self.source_plane + offset..][..BLOCK];
                *vectors = vectors_of(values);
            }
            return;
        }
        for (k, vectors) in channels {
            let channel = &self.source[k * self.source_plane..];
            let mut values = [0.0f32; BLOCK];
            for &(j, offset, len) in source_runs {
                values[j..j + len].copy_from_slice(&channel[offset..offset + len]);
            }
            *vectors = vectors_of(&values);
        }
    }

    /// Writes the tile's rows `first_row..` for the block's columns: with the bias for the
    /// first chunk of the sum, added to what is there for the others.
    fn store(
        &self,
        first_row: usize,
        acc: &[[f32x8; V]; P],
        target_runs: &[(usize, usize, usize)],
        first_sum: bool,
        out: &mut [f32],
    ) {
        for (p, vectors) in acc.iter().enumerate().take(self.rows - first_row) {
            let row = first_row + p;
            let bias = match self.bias {
                Some(bias) if first_sum => f32x8::splat(bias[row]),
                _ => f32x8::ZERO,
            };
            if let [(0, offset, BLOCK)] = target_runs {
                // Sixteen consecutive pixels: two vector stores (or loads, adds and stores).
                let slots = &mut out[row * self.out_plane + offset..][..BLOCK];
                for (slots, &vector) in slots.chunks_exact_mut(LANES).zip(vectors) {
                    let sum = if first_sum {
                        vector + bias
                    } else {
                        vector + load(slots)
                    };
                    store(sum, slots);
                }
                continue;
            }
            let mut values = [0.0f32; BLOCK];
            for (chunk, vector) in values.chunks_exact_mut(LANES).zip(vectors) {
                chunk.copy_from_slice(&(*vector + bias).to_array());
            }
            let channel = &mut out[row * self.out_plane..];
            for &(j, offset, len) in target_runs {
                let (slots, values) = (&mut channel[offset..offset + len], &values[j..j + len]);
                if first_sum {
                    slots.copy_from_slice(values);
                } else {
                    for (slot, value) in slots.iter_mut().zip(values) {
                        *slot += value;
                    }
                }
            }
        }
    }
}

/// The first 16 of `values` as the tile's vectors.
fn vectors_of(values: &[f32]) -> [f32x8; V] {
    std::array::from_fn(|v| load(&values[v * LANES..]))
}
