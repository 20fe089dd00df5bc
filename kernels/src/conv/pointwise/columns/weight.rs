//! Pointwise backward-weight: sums over every column (pixel) of the batch (see
//! `columns/mod.rs`).

use super::{chunk_lanes, column_offsets, pixel_positions, BLOCK, P, V};
use crate::cache::l2_bytes;
use crate::conv::pointwise::Dims;
use crate::conv::tile::{lane_bases, tile, Taps, LANES};
use crate::lanes::{load, load_transposed, store};
use crate::Conv2dGeometry;
use rayon::prelude::*;
use wide::f32x8;

/// Channels `first..first + 16` of `operand` as `[column][16]`, zeros past its channels.
///
/// Where 8 columns are 8 consecutive pixels of one image, 8 channels of them are 8 vector loads
/// and a transpose in registers. Gathered one value at a time into an array and then loaded as
/// vectors, each column stalled on the loads that followed its 16 scalar stores (a failed
/// store-to-load forward): 18% of backward-weight at 728 channels went there.
fn pack_channels(operand: &Operand, first: usize) -> Vec<[f32x8; V]> {
    let mut out = vec![[f32x8::ZERO; V]; operand.columns.len()];
    pack_columns(operand, first, &operand.columns, &mut out);
    out
}

/// [`pack_channels`] for the columns at `columns` only, into `out` (one entry per column).
fn pack_columns(operand: &Operand, first: usize, columns: &[usize], out: &mut [[f32x8; V]]) {
    let channels = (operand.channels - first).min(BLOCK);
    for (v, start) in (first..first + channels).step_by(LANES).enumerate() {
        let count = (first + channels - start).min(LANES);
        let planes = &operand.data[start * operand.plane..];
        let mut c = 0;
        while c < columns.len() {
            let column = columns[c];
            // Columns only increase, so 8 of them spanning 7 positions are consecutive.
            let run = c + LANES <= columns.len() && columns[c + LANES - 1] == column + LANES - 1;
            if run && count == LANES {
                let vectors = load_transposed(planes, column, operand.plane);
                for (slot, vector) in out[c..c + LANES].iter_mut().zip(vectors) {
                    slot[v] = vector;
                }
                c += LANES;
            } else {
                let lanes = out[c][v].as_mut_array();
                for (j, lane) in lanes[..count].iter_mut().enumerate() {
                    *lane = planes[j * operand.plane + column];
                }
                c += 1;
            }
        }
    }
}

/// Columns summed per pass of [`chunked_sums`]: a packed block of them (32 KiB with AVX-512)
/// stays in L1 while every lane tile passes over it.
const COLUMN_CHUNK: usize = 256;

/// One operand of backward-weight: an NCHW tensor as `[channels, columns]`.
struct Operand<'a> {
    data: &'a [f32],
    channels: usize,
    /// Values per channel of an image.
    plane: usize,
    /// Offset of every column (image, pixel) in channel 0.
    columns: Vec<usize>,
}

impl<'a> Operand<'a> {
    /// `batch` images of `channels` planes of `plane` values, the columns at `positions` in
    /// each plane.
    fn new(
        data: &'a [f32],
        batch: usize,
        channels: usize,
        plane: usize,
        positions: &[usize],
    ) -> Self {
        Operand {
            data,
            channels,
            plane,
            columns: column_offsets(positions, 0..batch, channels * plane),
        }
    }

    /// The columns' offsets, for a [`Taps`] table over them.
    fn column_offsets(&self) -> Vec<u32> {
        let offset = |&at: &usize| u32::try_from(at).expect("tensor exceeds u32 offsets");
        self.columns.iter().map(offset).collect()
    }

    /// Where each channel's plane of the first image starts.
    fn channel_starts(&self) -> Vec<usize> {
        (0..self.channels).map(|c| c * self.plane).collect()
    }
}

/// Overwrites `grad_weight` with `sum over columns of grad_out x in^T`.
pub(in crate::conv::pointwise) fn backward_weight(
    g: &Conv2dGeometry,
    d: &Dims,
    (input, grad_output): (&[f32], &[f32]),
    grad_weight: &mut [f32],
) {
    let (input_positions, output_positions) = (pixel_positions(g, true), pixel_positions(g, false));
    let x = Operand::new(input, g.batch, d.in_channels, d.in_pixels, &input_positions);
    let dy = Operand::new(
        grad_output,
        g.batch,
        d.out_channels,
        d.pixels,
        &output_positions,
    );
    // Packing the input's columns gives `grad_weight` row by row; packing the output gradient's
    // gives its transpose, which costs a pass over `grad_weight` but may pack far less.
    let columns = x.columns.len();
    let pack_input = columns * d.in_channels <= columns * d.out_channels + grad_weight.len();
    if pack_input {
        column_sums(&dy, &x, grad_weight);
    } else {
        let mut sums = vec![0.0f32; grad_weight.len()];
        column_sums(&x, &dy, &mut sums);
        for (ci, row) in sums.chunks_exact(d.out_channels).enumerate() {
            for (co, &value) in row.iter().enumerate() {
                grad_weight[co * d.in_channels + ci] = value;
            }
        }
    }
}

/// Writes `sums[c][k]`, `[lanes.channels, packed.channels]`, the sum over all columns of
/// `lanes[c][column] * packed[k][column]`.
fn column_sums(lanes: &Operand, packed: &Operand, sums: &mut [f32]) {
    if sums.is_empty() {
        return;
    }
    if lanes.columns.len() >= 4 * COLUMN_CHUNK {
        return chunked_sums(lanes, packed, sums);
    }
    let blocks = packed.channels.div_ceil(BLOCK);
    // Each block of 16 packed channels as `[column][16]`.
    let packed_blocks: Vec<Vec<[f32x8; V]>> = (0..blocks)
        .into_par_iter()
        .map(|block| pack_channels(packed, block * BLOCK))
        .collect();
    let offsets = lanes.column_offsets();
    let taps = Taps::new(&offsets);
    let channel_starts = lanes.channel_starts();

    // Tasks: ranges of lane channels, each writing its rows of `sums`. Within a task, the lane
    // channels stay in L2 while every packed block passes over them, so a task holds as many
    // as fill half of it: each packed block then comes from L3 once per task. (A fixed 64 KiB,
    // 6 lanes at 2048 columns, read the packed blocks from L3 once per tile: backward-weight
    // at 728 channels on 8 x 8 took 1.5 times as long as with 1 MiB on a 2 MiB L2.)
    let threads = rayon::current_num_threads();
    let per_task = lanes
        .channels
        .div_ceil(2 * threads)
        .clamp(1, chunk_lanes(taps.len(), l2_bytes() / 2));
    sums.par_chunks_mut(per_task * packed.channels)
        .enumerate()
        .for_each(|(task, rows)| {
            let first_channel = task * per_task;
            let starts = &channel_starts[first_channel..][..rows.len() / packed.channels];
            for (block, vectors) in packed_blocks.iter().enumerate() {
                let first = block * BLOCK;
                let channels = (packed.channels - first).min(BLOCK);
                for first_lane in (0..starts.len()).step_by(P) {
                    let bases = lane_bases::<P>(starts, first_lane);
                    let acc = tile::<V, P>(lanes.data, &bases, taps, vectors);
                    let lane_rows =
                        rows[first_lane * packed.channels..].chunks_mut(packed.channels);
                    for (row, acc) in lane_rows.zip(&acc) {
                        let mut values = [0.0f32; BLOCK];
                        for (chunk, vector) in values.chunks_exact_mut(LANES).zip(acc) {
                            chunk.copy_from_slice(vector.as_array());
                        }
                        row[first..][..channels].copy_from_slice(&values[..channels]);
                    }
                }
            }
        });
}

/// [`column_sums`] over many columns (at least 4 chunks): the columns are split into up to one
/// range per core (each of at least 2 chunks), and each range's sums go to its own copy of
/// `sums`, added at the end; where there are more cores than ranges, each range is split
/// further over its lane channels. A task sums its columns [`COLUMN_CHUNK`] at a time: for each
/// chunk it packs every block of the packed operand's channels (the chunk of both operands then
/// sits in L2), and each lane tile sums the chunk with a packed block in L1 and adds the result
/// to the task's sums. Summed over all the columns at once, a tile streamed a whole packed
/// block from L3: 1 MiB per 32 channels at 16 x 16 and batch 32.
fn chunked_sums(lanes: &Operand, packed: &Operand, sums: &mut [f32]) {
    let threads = rayon::current_num_threads();
    let columns = lanes.columns.len();
    let chunks = columns.div_ceil(COLUMN_CHUNK);
    let parts = threads.min(chunks / 2).max(1);
    let lane_tasks = threads.div_ceil(parts);
    let per_task = lanes.channels.div_ceil(lane_tasks).next_multiple_of(P);
    let offsets = lanes.column_offsets();
    let taps = Taps::new(&offsets);
    let channel_starts = lanes.channel_starts();
    // Adds the sums of chunks `chunks` for lane channels `first_lane..` to `rows`.
    let accumulate = |chunks: std::ops::Range<usize>, first_lane: usize, rows: &mut [f32]| {
        let starts = &channel_starts[first_lane..][..rows.len() / packed.channels];
        let blocks = packed.channels.div_ceil(BLOCK);
        let mut buffer = vec![[f32x8::ZERO; V]; blocks * COLUMN_CHUNK];
        for chunk in chunks {
            let range = chunk * COLUMN_CHUNK..columns.min((chunk + 1) * COLUMN_CHUNK);
            let len = range.len();
            let taps = taps.slice(range.clone());
            for (block, packed_block) in buffer.chunks_exact_mut(COLUMN_CHUNK).enumerate() {
                let packed_block = &mut packed_block[..len];
                pack_columns(
                    packed,
                    block * BLOCK,
                    &packed.columns[range.clone()],
                    packed_block,
                );
            }
            for (block, vectors) in buffer.chunks_exact(COLUMN_CHUNK).enumerate() {
                let first = block * BLOCK;
                let channels = (packed.channels - first).min(BLOCK);
                for first_lane in (0..starts.len()).step_by(P) {
                    let bases = lane_bases::<P>(starts, first_lane);
                    let acc = tile::<V, P>(lanes.data, &bases, taps, &vectors[..len]);
                    let lane_rows =
                        rows[first_lane * packed.channels..].chunks_mut(packed.channels);
                    for (row, acc) in lane_rows.zip(&acc) {
                        add_to(&mut row[first..][..channels], acc);
                    }
                }
            }
        }
    };
    // Part `part`'s sums, into `out` (zeroed first).
    let part_sums = |part: usize, out: &mut [f32]| {
        out.fill(0.0);
        let chunks = part * chunks / parts..(part + 1) * chunks / parts;
        out.par_chunks_mut(per_task * packed.channels)
            .enumerate()
            .for_each(|(task, rows)| accumulate(chunks.clone(), task * per_task, rows));
    };
    let len = sums.len();
    let mut partials = vec![0.0f32; (parts - 1) * len];
    rayon::join(
        || part_sums(0, sums),
        || {
            partials
                .par_chunks_mut(len)
                .enumerate()
                .for_each(|(part, out)| part_sums(part + 1, out))
        },
    );
    for partial in partials.chunks_exact(len) {
        for (sum, p) in sums.iter_mut().zip(partial) {
            *sum += p;
        }
    }
}

/// `row += acc`, over the first `row.len()` (at most [`BLOCK`]) lanes of `acc`.
#[inline(always)]
fn add_to(row: &mut [f32], acc: &[f32x8; V]) {
    if row.len() == BLOCK {
        for (sums, &vector) in row.chunks_exact_mut(LANES).zip(acc) {
            store(load(sums) + vector, sums);
        }
    } else {
        let values = acc.iter().flat_map(|vector| vector.as_array());
        for (sum, value) in row.iter_mut().zip(values) {
            *sum += value;
        }
    }
}
