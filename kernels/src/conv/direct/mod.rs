//! The direct convolution: a register-blocked SIMD kernel for every geometry that is neither
//! pointwise nor depthwise (any groups, asymmetric kernels, stride, padding, dilation).
//!
//! # One micro-kernel for all three passes
//!
//! Every pass is written as the same small outer-product loop, `tile` (in `conv/tile.rs`, which
//! the pointwise kernel shares): `P` lanes (pixels, or kernel taps) each read one `f32` at
//! `source[lane_base[p] + offset[t]]`, broadcast it, and multiply-add it into `V` vectors of 8
//! channels packed at `weights[t]`, for `t` over a table of offsets. The `P x V` accumulators stay in registers: 6 x 2 = 12 for a 16-channel block with
//! AVX2's 16 registers, 6 x 4 = 24 for a 32-channel block when AVX-512VL gives 256-bit code 32
//! registers. Each offset costs `V` vector loads and `P` broadcasts for `P * V` FMAs.
//!
//! * **forward** ([`forward`]): lanes are 6 consecutive output pixels, flattened over rows (so a
//!   narrow image wastes little in the tail); offsets run over `(in_channel, ky, kx)` in a
//!   zero-padded copy of the image; weights are packed once per call as
//!   `[block][tap][32 output channels]`. Bias is added as results are stored. Groups of at most
//!   4 input channels with rows of at least 16 output pixels (RGB stems, LeNet-5's first layer)
//!   use `forward_pixels` instead: 8 consecutive output pixels per vector, the input's columns
//!   split by stride phase so those pixels read consecutive values.
//! * **backward-data** ([`backward_data`]) is a convolution of the zero-padded output gradient
//!   with the transposed, flipped weights. Stride is handled by splitting the input into
//!   `stride_h x stride_w` phases (`iy mod stride_h`, `ix mod stride_w`): within a phase only some
//!   taps contribute and the gather is a stride-1 convolution, so every input-gradient element is
//!   written exactly once and no zeros are inserted. Groups of at most 4 input channels (an RGB
//!   stem) would leave vectors mostly empty, so they use `pixel_tile` (also in `conv/tile.rs`)
//!   instead: 8 consecutive pixels per vector, one broadcast weight per channel.
//! * **backward-weight** ([`backward_weight`]): lanes are 6 kernel taps, offsets run over the
//!   output pixels, and the "weights" are the output gradient transposed to
//!   `[image][pixel][32 output channels]`. Work is split over (channel block, tap range) and each
//!   task sums over the whole batch, so no partial gradients need reducing. Groups of at most 4
//!   input channels at column stride 1 (the first layer of LeNet-5 or VGG: 25 or 27 taps) use
//!   `weight_pixels` instead: 8 consecutive output pixels per vector, summed in the vectors,
//!   reduced once per task; twice as fast on those layers.
//!
//! Padding is materialised in a padded copy of the input or output gradient, so the inner loop
//! has no border tests; the copy is small next to the arithmetic, and its buffer is reused by the
//! next call on the same thread (`PaddedPlanes`).
//!
//! # Threads
//! rayon, over (image, channel-block range) for forward and backward-data (whole images when the
//! batch is large, channel blocks as well when it is small, so batch 1 keeps both cores busy),
//! and over (channel block, tap range) for backward-weight.
//!
//! Preconditions for every public function: the geometry is valid and every slice has the length
//! the geometry implies (the dispatcher in `conv/mod.rs` checks both).

mod backward_data;
mod backward_weight;
mod forward;
mod forward_pixels;
#[cfg(test)]
mod tests;
mod weight_pixels;

pub use backward_data::backward_data;
pub use backward_weight::backward_weight;
pub use forward::forward;

// The register tiles and channel blocks, shared with the pointwise kernel; the passes below
// import them from here.
use crate::conv::tile::{
    channel_blocks, dispatch_tile, lane_bases, pack_block_weights, pixel_tile, tile, tile_lanes,
    ChannelBlock, Taps, LANES,
};
use crate::Conv2dGeometry;
use rayon::prelude::*;

/// The input with every plane's padding (`g.padding` on each side) written out and `slack`
/// zeros after the last plane: what forward and backward-weight read their windows from.
struct PaddedInput {
    planes: PaddedPlanes,
    /// Padded plane height and width.
    height: usize,
    width: usize,
    /// Values per padded image (all its channels).
    image: usize,
}

impl PaddedInput {
    fn new(g: &Conv2dGeometry, input: &[f32], slack: usize) -> Self {
        let (pad_h, pad_w) = g.padding;
        let (height, width) = (g.in_height + 2 * pad_h, g.in_width + 2 * pad_w);
        let planes = PaddedPlanes::new(
            input,
            (g.in_height, g.in_width),
            (pad_h, pad_h, pad_w, pad_w),
            slack,
        );
        PaddedInput {
            planes,
            height,
            width,
            image: g.in_channels * height * width,
        }
    }
}

/// A zero-padded copy of a stack of planes, in a buffer that is reused by the next call on the
/// same thread (see [`PaddedPlanes::new`]).
struct PaddedPlanes {
    data: Vec<f32>,
}

thread_local! {
    /// The buffer of the last [`PaddedPlanes`] dropped on this thread. A large fresh buffer costs
    /// a page fault per 4 KiB the first time it is written, every call (DESIGN.md, "A trap").
    static SPARE_BUFFER: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

impl PaddedPlanes {
    /// Copies planes of `height x width` into planes with `(top, bottom, left, right)` rows and
    /// columns of zeros around them, followed by `slack` zeros so vector reads may run a little
    /// past the last plane. Every element is written, so a reused buffer needs no clearing.
    fn new(
        source: &[f32],
        (height, width): (usize, usize),
        (top, bottom, left, right): (usize, usize, usize, usize),
        slack: usize,
    ) -> Self {
        let padded_width = left + width + right;
        let padded_plane = (top + height + bottom) * padded_width;
        let planes = source.len() / (height * width);
        Self::build(planes * padded_plane + slack, |data| {
            let (data, slack) = data.split_at_mut(planes * padded_plane);
            slack.fill(0.0);
            data.par_chunks_mut(padded_plane)
                .zip(source.par_chunks(height * width))
                .for_each(|(dst, src)| {
                    let (head, rest) = dst.split_at_mut(top * padded_width + left);
                    head.fill(0.0);
                    let rows = src.chunks_exact(width).zip(rest.chunks_mut(padded_width));
                    for (row, dst_row) in rows {
                        let (interior, border) = dst_row.split_at_mut(width.min(dst_row.len()));
                        interior.copy_from_slice(row);
                        border.fill(0.0);
                    }
                    let tail = (top + height) * padded_width;
                    dst[tail..].fill(0.0);
                });
        })
    }

    /// A buffer of `len` values, taken from this thread's spare when there is one and handed to
    /// `fill`, which must write every value (a reused buffer holds the last call's data).
    fn build(len: usize, fill: impl FnOnce(&mut [f32])) -> Self {
        // Taking the buffer out (rather than borrowing it) keeps a nested call on this thread,
        // such as a rayon task stolen while waiting, correct: it finds no spare and allocates.
        let mut data = SPARE_BUFFER.with(|spare| spare.take());
        data.resize(len, 0.0);
        fill(&mut data);
        PaddedPlanes { data }
    }
}

impl std::ops::Deref for PaddedPlanes {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.data
    }
}

impl Drop for PaddedPlanes {
    fn drop(&mut self) {
        let data = std::mem::take(&mut self.data);
        SPARE_BUFFER.with(|spare| {
            let previous = spare.take();
            // Keep the larger of the two buffers.
            spare.set(if previous.capacity() > data.capacity() {
                previous
            } else {
                data
            });
        });
    }
}

/// Splits `data` (laid out `[batch][channels][plane]`) into one mutable piece per
/// (image, range of channel blocks), in order. `ranges` are ranges of block indices covering all
/// blocks; each piece is returned with its image and block range.
fn split_by_image_and_blocks<'a>(
    data: &'a mut [f32],
    batch: usize,
    blocks: &[ChannelBlock],
    ranges: &[std::ops::Range<usize>],
    plane: usize,
) -> Vec<(usize, std::ops::Range<usize>, &'a mut [f32])> {
    let mut pieces = Vec::with_capacity(batch * ranges.len());
    let mut rest = data;
    for image in 0..batch {
        for range in ranges {
            let channels: usize = blocks[range.clone()].iter().map(|b| b.len).sum();
            let (piece, tail) = rest.split_at_mut(channels * plane);
            pieces.push((image, range.clone(), piece));
            rest = tail;
        }
    }
    pieces
}

/// Ranges of block indices such that `batch * ranges` gives both cores several tasks.
fn block_ranges(batch: usize, block_count: usize) -> Vec<std::ops::Range<usize>> {
    let wanted_tasks = 4 * rayon::current_num_threads();
    let pieces = wanted_tasks.div_ceil(batch).clamp(1, block_count.max(1));
    (0..pieces)
        .map(|i| (i * block_count / pieces)..((i + 1) * block_count / pieces))
        .filter(|r| !r.is_empty())
        .collect()
}
