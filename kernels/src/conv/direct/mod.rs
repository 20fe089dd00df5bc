//! The direct convolution: a register-blocked SIMD kernel for every geometry that is neither
//! pointwise nor depthwise (any groups, asymmetric kernels, stride, padding, dilation).
//!
//! # One micro-kernel for all three passes
//!
//! Every pass is written as the same small outer-product loop, `tile`: `P` lanes (pixels, or
//! kernel taps) each read one `f32` at `source[lane_base[p] + offset[t]]`, broadcast it, and
//! multiply-add it into `V` vectors of 8 channels packed at `weights[t]`, for `t` over a table of
//! offsets. The `P x V` accumulators stay in registers: 6 x 2 = 12 for a 16-channel block with
//! AVX2's 16 registers, 6 x 4 = 24 for a 32-channel block when AVX-512VL gives 256-bit code 32
//! registers. Each offset costs `V` vector loads and `P` broadcasts for `P * V` FMAs.
//!
//! * **forward** ([`forward`]): lanes are 6 consecutive output pixels, flattened over rows (so a
//!   narrow image wastes little in the tail); offsets run over `(in_channel, ky, kx)` in a
//!   zero-padded copy of the image; weights are packed once per call as
//!   `[block][tap][32 output channels]`. Bias is added as results are stored.
//! * **backward-data** ([`backward_data`]) is a convolution of the zero-padded output gradient
//!   with the transposed, flipped weights. Stride is handled by splitting the input into
//!   `stride_h x stride_w` phases (`iy mod stride_h`, `ix mod stride_w`): within a phase only some
//!   taps contribute and the gather is a stride-1 convolution, so every input-gradient element is
//!   written exactly once and no zeros are inserted. Groups of at most 4 input channels (an RGB
//!   stem) would leave vectors mostly empty, so they use `pixel_tile` instead: 8 consecutive
//!   pixels per vector, one broadcast weight per channel.
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
#[cfg(test)]
mod tests;
mod weight_pixels;

pub use backward_data::backward_data;
pub use backward_weight::backward_weight;
pub use forward::forward;

use crate::Conv2dGeometry;
use rayon::prelude::*;
use wide::f32x8;

/// Channels in one SIMD vector.
const LANES: usize = 8;
/// Vectors of 8 channels per register block. With AVX-512VL the 256-bit instructions can use 32
/// registers, room for 4 x 6 = 24 accumulators; with AVX2 alone there are 16, room for 2 x 6.
const MAX_VECTORS: usize = if cfg!(target_feature = "avx512vl") {
    4
} else {
    2
};

/// Lanes (pixels or taps) per tile for a block of `vectors` vectors: as many as keep the
/// accumulators, the weights and one broadcast within the register file. One vector would fit
/// 8 lanes, but each lane also holds a base address in a general register, and with 8 of them
/// the compiler spilled: 6 lanes made LeNet-5's second convolution's backward-data (6 input
/// channels) about 15% faster and its training step 6 to 9%.
fn tile_lanes(vectors: usize) -> usize {
    match vectors {
        3 => 8,
        _ => 6,
    }
}

/// Calls `job.method::<V, P>(weights as [[f32x8; V]], args...)` with the tile shape of a block
/// of `vectors` vectors (see [`tile_lanes`]).
macro_rules! dispatch_tile {
    ($vectors:expr, $job:ident . $method:ident ($weights:expr $(, $arg:expr)*)) => {{
        use $crate::conv::direct::as_arrays;
        match $vectors {
            1 => $job.$method::<1, 6>(as_arrays(&$weights) $(, $arg)*),
            2 => $job.$method::<2, 6>(as_arrays(&$weights) $(, $arg)*),
            3 => $job.$method::<3, 8>(as_arrays(&$weights) $(, $arg)*),
            _ => $job.$method::<4, 6>(as_arrays(&$weights) $(, $arg)*),
        }
    }};
}
use dispatch_tile;

/// Views a slice as arrays of `N` (what `<[T]>::as_chunks` does, which is newer than our MSRV).
/// Panics unless the length is a multiple of `N`.
fn as_arrays<const N: usize, T>(slice: &[T]) -> &[[T; N]] {
    assert!(N > 0 && slice.len() % N == 0);
    // SAFETY: `[T; N]` has the size and alignment of `N` consecutive `T`s with no padding, the
    // slice holds exactly `len / N` such runs, and the result borrows `slice` for its lifetime.
    unsafe { std::slice::from_raw_parts(slice.as_ptr().cast::<[T; N]>(), slice.len() / N) }
}

/// A run of at most `8 * MAX_VECTORS` channels inside one group, served by one register block.
#[derive(Clone, Copy, Debug)]
struct ChannelBlock {
    group: usize,
    /// First channel (global index).
    start: usize,
    /// Channels in the block, `1..=8 * MAX_VECTORS`.
    len: usize,
}

impl ChannelBlock {
    /// Vectors of 8 channels that hold the block.
    fn vectors(&self) -> usize {
        self.len.div_ceil(LANES)
    }
}

/// Splits each group's `per_group` channels into blocks of `8 * MAX_VECTORS` (the last one may
/// be narrower).
fn channel_blocks(groups: usize, per_group: usize) -> Vec<ChannelBlock> {
    let mut blocks = Vec::new();
    for group in 0..groups {
        let mut local = 0;
        while local < per_group {
            let len = (per_group - local).min(MAX_VECTORS * LANES);
            blocks.push(ChannelBlock {
                group,
                start: group * per_group + local,
                len,
            });
            local += len;
        }
    }
    blocks
}

/// A table of offsets into a source slice, with the largest entry remembered so that [`tile`]
/// can check every access with one comparison per lane. The `unsafe` reads rely on `bound`, so
/// build a `Taps` only through [`Taps::new`] (which computes it) and [`Taps::slice`] (which keeps
/// it); the fields are private to this module and its children.
#[derive(Clone, Copy)]
struct Taps<'a> {
    offsets: &'a [u32],
    /// At least every entry of `offsets`.
    bound: usize,
}

impl<'a> Taps<'a> {
    fn new(offsets: &'a [u32]) -> Self {
        let bound = offsets.iter().copied().max().unwrap_or(0) as usize;
        Taps { offsets, bound }
    }

    /// A sub-range; the bound of the whole table still bounds it.
    fn slice(self, range: std::ops::Range<usize>) -> Self {
        Taps {
            offsets: &self.offsets[range],
            bound: self.bound,
        }
    }

    fn len(&self) -> usize {
        self.offsets.len()
    }
}

/// The micro-kernel: `acc[p][v] = sum over t of source[lanes[p] + taps[t]] * weights[t][v]`.
///
/// `weights` holds `V` vectors per tap. Panics if an access would fall outside `source`.
#[inline(always)]
fn tile<const V: usize, const P: usize>(
    source: &[f32],
    lanes: &[usize; P],
    taps: Taps<'_>,
    weights: &[[f32x8; V]],
) -> [[f32x8; V]; P] {
    let mut acc = [[f32x8::ZERO; V]; P];
    if taps.len() == 0 {
        return acc;
    }
    assert_eq!(weights.len(), taps.len());
    let last_lane = lanes.iter().copied().max().unwrap_or(0);
    assert!(last_lane
        .checked_add(taps.bound)
        .is_some_and(|end| end < source.len()));
    // One pointer per lane, so each broadcast is a single addressed load.
    let starts: [*const f32; P] = lanes.map(|lane| source.as_ptr().wrapping_add(lane));
    for (&offset, w) in taps.offsets.iter().zip(weights) {
        let offset = offset as usize;
        for p in 0..P {
            // SAFETY: `starts[p]` is `source` advanced by `lanes[p] <= last_lane`, and
            // `offset <= taps.bound` (the invariant of `Taps`); `last_lane + taps.bound <
            // source.len()` was asserted above, so the read is inside `source`.
            let x = f32x8::splat(unsafe { *starts[p].add(offset) });
            for v in 0..V {
                acc[p][v] = x.mul_add(w[v], acc[p][v]);
            }
        }
    }
    acc
}

/// The pixel-vectorised micro-kernel, for passes with very few channels (backward-data of a
/// 3-channel stem): `acc[c][u]` holds 8 consecutive pixels,
/// `acc[c][u][i] = sum over t of source[start + 8u + i + taps[t]] * weights[t][c]`.
///
/// Panics if a read would fall outside `source`.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // indices read best in a register tile
fn pixel_tile<const C: usize, const U: usize>(
    source: &[f32],
    start: usize,
    taps: Taps<'_>,
    weights: &[[f32; C]],
) -> [[f32x8; U]; C] {
    let mut acc = [[f32x8::ZERO; U]; C];
    if taps.len() == 0 {
        return acc;
    }
    assert_eq!(weights.len(), taps.len());
    let end = start
        .checked_add(taps.bound)
        .and_then(|at| at.checked_add(U * LANES));
    assert!(end.is_some_and(|end| end <= source.len()));
    let first = source.as_ptr().wrapping_add(start);
    for (&offset, w) in taps.offsets.iter().zip(weights) {
        let at = first.wrapping_add(offset as usize);
        let weights: [f32x8; C] = std::array::from_fn(|c| f32x8::splat(w[c]));
        for u in 0..U {
            // SAFETY: the read covers `start + offset + 8u .. + 8`, and `offset <= taps.bound`
            // (the invariant of `Taps`), so it ends at most at `start + taps.bound + 8 * U`,
            // which was asserted to be within `source`.
            let x =
                f32x8::from(unsafe { at.add(u * LANES).cast::<[f32; LANES]>().read_unaligned() });
            for c in 0..C {
                acc[c][u] = x.mul_add(weights[c], acc[c][u]);
            }
        }
    }
    acc
}

/// Lane bases for a tile starting at `first` in `bases`; lanes past the end repeat the last
/// valid one (their results are computed but never stored).
#[inline]
fn lane_bases<const P: usize>(bases: &[usize], first: usize) -> [usize; P] {
    let last = bases.len() - 1;
    std::array::from_fn(|p| bases[(first + p).min(last)])
}

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
        let len = planes * padded_plane + slack;
        // Taking the buffer out (rather than borrowing it) keeps a nested call on this thread,
        // such as a rayon task stolen while waiting, correct: it finds no spare and allocates.
        let mut data = SPARE_BUFFER.with(|spare| spare.take());
        data.resize(len, 0.0);
        data[..planes * padded_plane]
            .par_chunks_mut(padded_plane)
            .zip(source.par_chunks(height * width))
            .for_each(|(dst, src)| {
                let (head, rest) = dst.split_at_mut(top * padded_width + left);
                head.fill(0.0);
                for (row, dst_row) in src.chunks_exact(width).zip(rest.chunks_mut(padded_width)) {
                    let (interior, border) = dst_row.split_at_mut(width.min(dst_row.len()));
                    interior.copy_from_slice(row);
                    border.fill(0.0);
                }
                let tail = (top + height) * padded_width;
                dst[tail..].fill(0.0);
            });
        data[planes * padded_plane..].fill(0.0);
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
