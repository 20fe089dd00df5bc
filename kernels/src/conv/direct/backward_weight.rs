//! Backward-weight: kernel taps as lanes, output pixels as the summed axis, and the output
//! gradient, transposed to `[image][pixel][block channels]`, in the part of the weights.

use super::forward::{input_tap_offsets, window_bases};
use super::{
    channel_blocks, lane_bases, tile, tile_lanes, weight_pixels, ChannelBlock, PaddedInput, Taps,
    LANES,
};
use crate::conv::bias_gradient;
use crate::lanes::load_transposed;
use crate::Conv2dGeometry;
use rayon::prelude::*;
use wide::f32x8;

/// Output pixels summed per step of backward-weight; their transposed gradient (32 KiB for a
/// 32-channel block) stays in L1 while every tap tile of a task passes over it. 512 pixels
/// (64 KiB, from L2) took 1.1 times as long at 64 channels on 32 x 32 with AVX-512, and 128
/// was slower again.
const PIXEL_CHUNK: usize = 256;

/// `grad_weight = d(loss)/d(weight)` and `grad_bias = d(loss)/d(bias)`. Kernel taps are the
/// lanes, output pixels the summed axis, and the output gradient, transposed to
/// `[pixel][block channels]` a chunk at a time, plays the part of the weights.
pub fn backward_weight(
    g: &Conv2dGeometry,
    input: &[f32],
    grad_output: &[f32],
    grad_weight: &mut [f32],
    grad_bias: Option<&mut [f32]>,
) {
    debug_assert!(g.validate().is_ok());
    debug_assert_eq!(input.len(), g.input_len());
    debug_assert_eq!(grad_output.len(), g.output_len());
    debug_assert_eq!(grad_weight.len(), g.weight_len());
    let out_plane = g.out_height() * g.out_width();
    if let Some(grad_bias) = grad_bias {
        bias_gradient(grad_output, out_plane, grad_bias);
    }
    if input.is_empty() || grad_output.is_empty() {
        grad_weight.fill(0.0);
        return;
    }
    if weight_pixels::applies(g) {
        return weight_pixels::backward_weight(g, input, grad_output, grad_weight);
    }

    let padded = PaddedInput::new(g, input, 0);
    let taps_per_group = g.in_channels_per_group() * g.kernel_height * g.kernel_width;
    let tap_bases: Vec<usize> = input_tap_offsets(g, padded.height, padded.width)
        .into_iter()
        .map(|offset| offset as usize)
        .collect();
    let pixel_offsets: Vec<u32> = window_bases(g, padded.width)
        .into_iter()
        .map(|base| u32::try_from(base).expect("padded image exceeds u32"))
        .collect();
    let pixel_taps = Taps::new(&pixel_offsets);

    let blocks = channel_blocks(g.groups, g.out_channels_per_group());
    let tasks = plan_tasks(&blocks, g.batch, taps_per_group);
    let results: Vec<Vec<f32x8>> = tasks
        .par_iter()
        .map(|task| {
            let block = &blocks[task.block];
            let job = GradJob {
                padded: &padded.planes,
                padded_image: padded.image,
                tap_bases: &tap_bases[block.group * taps_per_group..][..task.taps.end],
                pixel_taps,
                grad_output,
                out_channels: g.out_channels,
                out_plane,
                block,
                task,
            };
            // The same tile shapes as `dispatch_tile!`.
            match block.vectors() {
                1 => job.run::<1, 8>(),
                2 if crate::conv::tile::PAIRED => job.run::<2, 8>(),
                2 => job.run::<2, 6>(),
                3 => job.run::<3, 8>(),
                _ if crate::conv::tile::PAIRED => job.run::<4, 8>(),
                _ => job.run::<4, 6>(),
            }
        })
        .collect();

    grad_weight.fill(0.0);
    for (task, sums) in tasks.iter().zip(results) {
        let block = &blocks[task.block];
        let vectors = block.vectors();
        for (tap, tap_sums) in task.taps.clone().zip(sums.chunks_exact(vectors)) {
            for channel in 0..block.len {
                let value = tap_sums[channel / LANES].to_array()[channel % LANES];
                grad_weight[(block.start + channel) * taps_per_group + tap] += value;
            }
        }
    }
}

/// One task of backward-weight: a channel block, a range of its taps, a range of images.
struct GradTask {
    block: usize,
    taps: std::ops::Range<usize>,
    images: std::ops::Range<usize>,
}

/// Splits the work into about four tasks per thread: over images first (each task then sums
/// its own images and the partial sums are added once at the end), over tap ranges as well
/// when the batch is too small for that (batch 1).
fn plan_tasks(blocks: &[ChannelBlock], batch: usize, taps_per_group: usize) -> Vec<GradTask> {
    let wanted = 4 * rayon::current_num_threads();
    let image_pieces = wanted.div_ceil(blocks.len()).clamp(1, batch);
    let mut tasks = Vec::new();
    for (b, block) in blocks.iter().enumerate() {
        let tile_width = tile_lanes(block.vectors());
        let tiles = taps_per_group.div_ceil(tile_width);
        let tap_pieces = wanted.div_ceil(blocks.len() * image_pieces).clamp(1, tiles);
        for t in 0..tap_pieces {
            let (first, last) = (t * tiles / tap_pieces, (t + 1) * tiles / tap_pieces);
            if first == last {
                continue;
            }
            let taps = first * tile_width..(last * tile_width).min(taps_per_group);
            for i in 0..image_pieces {
                let images = i * batch / image_pieces..(i + 1) * batch / image_pieces;
                if !images.is_empty() {
                    tasks.push(GradTask {
                        block: b,
                        taps: taps.clone(),
                        images,
                    });
                }
            }
        }
    }
    tasks
}

/// One task of backward-weight, with everything it reads.
struct GradJob<'a> {
    padded: &'a [f32],
    padded_image: usize,
    /// Tap offsets of the block's group, up to the end of the task's range.
    tap_bases: &'a [usize],
    pixel_taps: Taps<'a>,
    grad_output: &'a [f32],
    out_channels: usize,
    out_plane: usize,
    block: &'a ChannelBlock,
    task: &'a GradTask,
}

impl GradJob<'_> {
    /// Returns the sums as `[tap in range][V vectors]`. The output gradient of each chunk of
    /// [`PIXEL_CHUNK`] pixels is first transposed to `[pixel][V vectors]`, zero past the block's
    /// channels, then every tap tile of the task passes over it.
    fn run<const V: usize, const P: usize>(&self) -> Vec<f32x8> {
        let taps = self.task.taps.clone();
        let mut sums = vec![f32x8::ZERO; taps.len() * V];
        // Up to 32 KiB: on the heap rather than a worker thread's stack.
        #[allow(clippy::useless_vec)]
        let mut chunk_grad = vec![[f32x8::ZERO; V]; PIXEL_CHUNK];
        for image in self.task.images.clone() {
            let source = &self.padded[image * self.padded_image..][..self.padded_image];
            for chunk_start in (0..self.out_plane).step_by(PIXEL_CHUNK) {
                let chunk = chunk_start..self.out_plane.min(chunk_start + PIXEL_CHUNK);
                self.transpose_chunk(image, chunk.clone(), &mut chunk_grad[..chunk.len()]);
                let pixels = self.pixel_taps.slice(chunk.clone());
                let chunk_grad = &chunk_grad[..chunk.len()];
                for first in taps.clone().step_by(P) {
                    let lane_starts = lane_bases::<P>(self.tap_bases, first);
                    let acc = tile::<V, P>(source, &lane_starts, pixels, chunk_grad);
                    let count = P.min(taps.end - first);
                    let at = (first - taps.start) * V;
                    for (p, tap_sums) in sums[at..at + count * V].chunks_exact_mut(V).enumerate() {
                        for v in 0..V {
                            tap_sums[v] += acc[p][v];
                        }
                    }
                }
            }
        }
        sums
    }

    /// Writes the output gradient of `image` at the pixels `chunk` as `[pixel][V vectors]`
    /// into `out`, channel `c` of the block in lane `c % 8` of vector `c / 8`, zero past the
    /// block's channels.
    ///
    /// Eight channels of eight pixels are eight vector loads and a transpose in registers.
    /// Written one value at a time, the loop compiled to AVX-512 scatters, a tenth of the pass
    /// at 64 channels on 32 x 32.
    fn transpose_chunk<const V: usize>(
        &self,
        image: usize,
        chunk: std::ops::Range<usize>,
        out: &mut [[f32x8; V]],
    ) {
        let first_plane = (image * self.out_channels + self.block.start) * self.out_plane;
        let planes = &self.grad_output[first_plane..];
        for v in 0..V {
            let channels = v * LANES..self.block.len.min((v + 1) * LANES);
            let row = |c: usize| &planes[c * self.out_plane + chunk.start..][..chunk.len()];
            let mut pixel = 0;
            if channels.len() == LANES {
                while pixel + LANES <= chunk.len() {
                    let at = channels.start * self.out_plane + chunk.start + pixel;
                    let vectors = load_transposed(planes, at, self.out_plane);
                    for (slot, vector) in out[pixel..].iter_mut().zip(vectors) {
                        slot[v] = vector;
                    }
                    pixel += LANES;
                }
            }
            for (p, slot) in out.iter_mut().enumerate().skip(pixel) {
                let mut lanes = [0.0f32; LANES];
                for (lane, c) in lanes.iter_mut().zip(channels.clone()) {
                    *lane = row(c)[p];
                }
                slot[v] = f32x8::from(lanes);
            }
        }
    }
}
