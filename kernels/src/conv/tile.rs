//! The register tiles shared by the direct and pointwise kernels. `tile`: `P` lanes (pixels,
//! taps or channels) times `V` vectors of 8 channels, summed over a table of offsets;
//! `panel_tile`: the same product with the lanes' values packed side by side, and
//! `strided_tile` with the vectors read in place a fixed stride apart;
//! `pixel_tile`: 8 consecutive pixels per vector, for passes with very few channels.
//!
//! In builds with AVX-512 each micro-kernel joins its 8-lane vectors in pairs and works on
//! 16-lane `f32x16` registers, one instruction where AVX2 needs two (`PAIRED`); its callers
//! then ask for twice the vectors per tile, and most for 8 rows instead of 6, so a tile holds
//! 16 accumulators, and receive the sums as 8-lane vectors as before. On the Intel host of
//! BENCHMARKS.md's tenth pass this made the pointwise forward at 728 channels 1.5 times as
//! fast.
//!
//! A pass picks what the lanes, the offsets and the packed vectors stand for; see
//! `conv/direct/mod.rs` for the direct convolution's three passes and `conv/pointwise/columns/`
//! for the pointwise ones.

use wide::{f32x16, f32x8};

/// Channels in one SIMD vector.
pub(crate) const LANES: usize = 8;
/// Vectors of 8 channels per register block. With AVX-512 there are 32 registers: the 4 vectors
/// are 2 paired registers per lane, and 8 lanes of them make 16 accumulators (see
/// [`tile_lanes`]); with AVX2 alone there are 16 registers, room for 2 x 6.
const MAX_VECTORS: usize = if cfg!(target_feature = "avx512vl") {
    4
} else {
    2
};

/// Whether the micro-kernels join pairs of 8-lane vectors into one 16-lane vector: in builds
/// with AVX-512, where one instruction then does the work of two. Tiles with an odd number of
/// vectors keep the 8-lane loops.
pub(crate) const PAIRED: bool = cfg!(target_feature = "avx512f");

/// The vectors of `vectors` joined in pairs: entry `h < V / 2` holds vectors `2h` and `2h + 1`,
/// the rest are zero (and unused). `V` must be even.
#[inline(always)]
fn paired<const V: usize>(vectors: &[f32x8; V]) -> [f32x16; V] {
    std::array::from_fn(|h| {
        if h < V / 2 {
            // SAFETY: `f32x8` is 8 `f32`s with no padding, so vectors `2h` and `2h + 1` (both
            // inside the array, as `2h + 1 < V`) are 16 consecutive `f32`s; `read_unaligned`
            // needs no alignment.
            f32x16::new(unsafe {
                vectors
                    .as_ptr()
                    .add(2 * h)
                    .cast::<[f32; 16]>()
                    .read_unaligned()
            })
        } else {
            f32x16::ZERO
        }
    })
}

/// The 16 values at `at` as one vector.
///
/// # Safety
/// `at` and the 15 values after it are in one live allocation.
#[inline(always)]
unsafe fn load16(at: *const f32) -> f32x16 {
    // SAFETY: guaranteed by the caller; `read_unaligned` needs no alignment.
    f32x16::new(unsafe { at.cast::<[f32; 16]>().read_unaligned() })
}

/// The paired accumulators of a tile back as 8-lane vectors: entry `h < V / 2` of each row
/// holds vectors `2h` and `2h + 1`.
#[inline(always)]
fn unpair<const V: usize, const P: usize>(acc: [[f32x16; V]; P]) -> [[f32x8; V]; P] {
    acc.map(|row| {
        std::array::from_fn(|v| {
            let lanes = row[v / 2].as_array();
            let half: [f32; LANES] = lanes[v % 2 * LANES..][..LANES].try_into().unwrap();
            f32x8::new(half)
        })
    })
}

/// Lanes (pixels or taps) per tile for a block of `vectors` vectors: as many as keep the
/// accumulators, the weights and one broadcast within the register file. One vector would fit
/// 8 lanes, but each lane also holds a base address in a general register, and with 8 of them
/// the compiler spilled: 6 lanes made LeNet-5's second convolution's backward-data (6 input
/// channels) about 15% faster and its training step 6 to 9%. With AVX-512, 4 vectors are 2
/// paired registers, and 8 lanes (16 accumulators) made direct backward-weight 1.1x to 1.2x
/// faster than 6; 2 vectors are one paired register, so 6 lanes left 6 accumulators, too few
/// for the FMA latency, and 8 made LeNet-5's second convolution's forward (16 output
/// channels) 1.2x faster.
pub(crate) fn tile_lanes(vectors: usize) -> usize {
    match vectors {
        2 | 4 if PAIRED => 8,
        3 => 8,
        _ => 6,
    }
}

/// Calls `job.method::<V, P>(weights as [[f32x8; V]], args...)` with the tile shape of a block
/// of `vectors` vectors (see [`tile_lanes`]).
macro_rules! dispatch_tile {
    ($vectors:expr, $job:ident . $method:ident ($weights:expr $(, $arg:expr)*)) => {{
        use $crate::conv::tile::as_arrays;
        match $vectors {
            1 => $job.$method::<1, 6>(as_arrays(&$weights) $(, $arg)*),
            2 if $crate::conv::tile::PAIRED => $job.$method::<2, 8>(as_arrays(&$weights) $(, $arg)*),
            2 => $job.$method::<2, 6>(as_arrays(&$weights) $(, $arg)*),
            3 => $job.$method::<3, 8>(as_arrays(&$weights) $(, $arg)*),
            _ if $crate::conv::tile::PAIRED => $job.$method::<4, 8>(as_arrays(&$weights) $(, $arg)*),
            _ => $job.$method::<4, 6>(as_arrays(&$weights) $(, $arg)*),
        }
    }};
}
pub(crate) use dispatch_tile;

/// Views a slice as arrays of `N` (what `<[T]>::as_chunks` does, which is newer than our MSRV).
/// Panics unless the length is a multiple of `N`.
pub(crate) fn as_arrays<const N: usize, T>(slice: &[T]) -> &[[T; N]] {
    assert!(N > 0 && slice.len() % N == 0);
    // SAFETY: `[T; N]` has the size and alignment of `N` consecutive `T`s with no padding, the
    // slice holds exactly `len / N` such runs, and the result borrows `slice` for its lifetime.
    unsafe { std::slice::from_raw_parts(slice.as_ptr().cast::<[T; N]>(), slice.len() / N) }
}

/// A run of at most `8 * MAX_VECTORS` channels inside one group, served by one register block.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChannelBlock {
    pub(crate) group: usize,
    /// First channel (global index).
    pub(crate) start: usize,
    /// Channels in the block, `1..=8 * MAX_VECTORS`.
    pub(crate) len: usize,
}

impl ChannelBlock {
    /// Vectors of 8 channels that hold the block.
    pub(crate) fn vectors(&self) -> usize {
        self.len.div_ceil(LANES)
    }
}

/// Splits each group's `per_group` channels into blocks of `8 * MAX_VECTORS` (the last one may
/// be narrower).
pub(crate) fn channel_blocks(groups: usize, per_group: usize) -> Vec<ChannelBlock> {
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
/// it); the fields are private to this module.
#[derive(Clone, Copy)]
pub(crate) struct Taps<'a> {
    offsets: &'a [u32],
    /// At least every entry of `offsets`.
    bound: usize,
}

impl<'a> Taps<'a> {
    pub(crate) fn new(offsets: &'a [u32]) -> Self {
        let bound = offsets.iter().copied().max().unwrap_or(0) as usize;
        Taps { offsets, bound }
    }

    /// A sub-range; the bound of the whole table still bounds it.
    pub(crate) fn slice(self, range: std::ops::Range<usize>) -> Self {
        Taps {
            offsets: &self.offsets[range],
            bound: self.bound,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.offsets.len()
    }
}

/// The micro-kernel: `acc[p][v] = sum over t of source[lanes[p] + taps[t]] * weights[t][v]`.
///
/// `weights` holds `V` vectors per tap. Panics if an access would fall outside `source`.
#[inline(always)]
pub(crate) fn tile<const V: usize, const P: usize>(
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
    if PAIRED && V % 2 == 0 {
        // Only the first `V / 2` entries of each row are used.
        let mut acc = [[f32x16::ZERO; V]; P];
        for (&offset, w) in taps.offsets.iter().zip(weights) {
            let w: [f32x16; V] = paired(w);
            for p in 0..P {
                // SAFETY: as in the 8-lane loop below: `lanes[p] + offset` is at most
                // `last_lane + taps.bound`, asserted above to be inside `source`.
                let x = f32x16::splat(unsafe { *starts[p].add(offset as usize) });
                for h in 0..V / 2 {
                    acc[p][h] = x.mul_add(w[h], acc[p][h]);
                }
            }
        }
        return unpair(acc);
    }
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

/// The micro-kernel on a packed panel: `acc[p][v] = sum over k of panel[k][p] * weights[k][v]`.
/// [`tile`] with the lanes' values next to each other, so no table of offsets is read.
/// Panics unless `panel` and `weights` have the same length.
#[inline(always)]
pub(crate) fn panel_tile<const V: usize, const P: usize>(
    panel: &[[f32; P]],
    weights: &[[f32x8; V]],
) -> [[f32x8; V]; P] {
    assert_eq!(panel.len(), weights.len());
    if PAIRED && V % 2 == 0 {
        // Only the first `V / 2` entries of each row are used.
        let mut acc = [[f32x16::ZERO; V]; P];
        for (a, w) in panel.iter().zip(weights) {
            let w: [f32x16; V] = paired(w);
            for p in 0..P {
                let x = f32x16::splat(a[p]);
                for h in 0..V / 2 {
                    acc[p][h] = x.mul_add(w[h], acc[p][h]);
                }
            }
        }
        return unpair(acc);
    }
    let mut acc = [[f32x8::ZERO; V]; P];
    for (a, w) in panel.iter().zip(weights) {
        for p in 0..P {
            let x = f32x8::splat(a[p]);
            for v in 0..V {
                acc[p][v] = x.mul_add(w[v], acc[p][v]);
            }
        }
    }
    acc
}

/// [`panel_tile`] with the `U` vectors of each `k` read in place, `stride` values apart:
/// `acc[c][u] = sum over k of panel[k][c] * source[start + k * stride + 8u + (0..8)]`.
/// Panics if a read would fall outside `source`.
#[inline(always)]
pub(crate) fn strided_tile<const U: usize, const C: usize>(
    panel: &[[f32; C]],
    source: &[f32],
    start: usize,
    stride: usize,
) -> [[f32x8; U]; C] {
    let mut acc = [[f32x8::ZERO; U]; C];
    let Some(last) = panel.len().checked_sub(1) else {
        return acc;
    };
    let end = last
        .checked_mul(stride)
        .and_then(|at| at.checked_add(start))
        .and_then(|at| at.checked_add(U * LANES));
    assert!(end.is_some_and(|end| end <= source.len()));
    let first = source.as_ptr().wrapping_add(start);
    if PAIRED && U % 2 == 0 {
        // Only the first `U / 2` entries of each row are used.
        let mut acc = [[f32x16::ZERO; U]; C];
        for (k, a) in panel.iter().enumerate() {
            let at = first.wrapping_add(k * stride);
            let x: [f32x16; U] = std::array::from_fn(|h| {
                if h < U / 2 {
                    // SAFETY: the read covers `start + k * stride + 16h .. + 16` with
                    // `16h + 16 <= 8U`, which the assertion above keeps inside `source`.
                    unsafe { load16(at.add(2 * h * LANES)) }
                } else {
                    f32x16::ZERO
                }
            });
            for c in 0..C {
                let weight = f32x16::splat(a[c]);
                for h in 0..U / 2 {
                    acc[c][h] = x[h].mul_add(weight, acc[c][h]);
                }
            }
        }
        return unpair(acc);
    }
    for (k, a) in panel.iter().enumerate() {
        let at = first.wrapping_add(k * stride);
        let x: [f32x8; U] = std::array::from_fn(|u| {
            // SAFETY: with `k <= last` and `u < U` the read covers `start + k * stride + 8u ..
            // + 8`, which ends at most at `start + last * stride + 8U`, asserted to be within
            // `source`.
            f32x8::from(unsafe { at.add(u * LANES).cast::<[f32; LANES]>().read_unaligned() })
        });
        for c in 0..C {
            let weight = f32x8::splat(a[c]);
            for u in 0..U {
                acc[c][u] = x[u].mul_add(weight, acc[c][u]);
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
pub(crate) fn pixel_tile<const C: usize, const U: usize>(
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
    if PAIRED && U % 2 == 0 {
        // Only the first `U / 2` entries of each row are used.
        let mut acc = [[f32x16::ZERO; U]; C];
        for (&offset, w) in taps.offsets.iter().zip(weights) {
            let at = first.wrapping_add(offset as usize);
            // Called with `h < U / 2` only.
            let load = |h: usize| {
                debug_assert!(2 * h < U);
                // SAFETY: the read covers `start + offset + 16h .. + 16` with `16h + 16 <= 8U`,
                // which the assertion above keeps inside `source`.
                unsafe { load16(at.add(2 * h * LANES)) }
            };
            let weights: [f32x16; C] = std::array::from_fn(|c| f32x16::splat(w[c]));
            for h in 0..U / 2 {
                let x = load(h);
                for c in 0..C {
                    acc[c][h] = x.mul_add(weights[c], acc[c][h]);
                }
            }
        }
        return unpair(acc);
    }
    for (&offset, w) in taps.offsets.iter().zip(weights) {
        let at = first.wrapping_add(offset as usize);
        // Called with `u < U` only.
        let load = |u: usize| {
            debug_assert!(u < U);
            // SAFETY: the read covers `start + offset + 8u .. + 8` with `u < U`, and `offset <=
            // taps.bound` (the invariant of `Taps`), so it ends at most at `start + taps.bound +
            // 8 * U`, which was asserted to be within `source`.
            f32x8::from(unsafe { at.add(u * LANES).cast::<[f32; LANES]>().read_unaligned() })
        };
        // The shorter side is held in registers and the longer one streamed through a single
        // register, so `C * U` accumulators plus `min(C, U) + 1` fit AVX2's 16 registers (the
        // other way round spilled: 3 x 4 in a stem's backward-data, 6 x 2 in its forward).
        if C <= U {
            let weights: [f32x8; C] = std::array::from_fn(|c| f32x8::splat(w[c]));
            for u in 0..U {
                let x = load(u);
                for c in 0..C {
                    acc[c][u] = x.mul_add(weights[c], acc[c][u]);
                }
            }
        } else {
            let x: [f32x8; U] = std::array::from_fn(load);
            for c in 0..C {
                let weight = f32x8::splat(w[c]);
                for u in 0..U {
                    acc[c][u] = x[u].mul_add(weight, acc[c][u]);
                }
            }
        }
    }
    acc
}

/// Writes a [`pixel_tile`]'s sums, plus `bias[c]` when there is a bias, to the first `count`
/// pixels of its `C` rows: row `c` starts at `c * row_stride` in `out`. (Inlined: called as a
/// function it cost a tenth of a pointwise forward.)
#[inline(always)]
pub(crate) fn store_pixel_tile<const C: usize, const U: usize>(
    acc: &[[f32x8; U]; C],
    bias: Option<&[f32]>,
    out: &mut [f32],
    row_stride: usize,
    count: usize,
) {
    for (c, vectors) in acc.iter().enumerate() {
        let bias = f32x8::splat(bias.map_or(0.0, |b| b[c]));
        let row = &mut out[c * row_stride..][..count];
        for (dst, &vector) in row.chunks_mut(LANES).zip(vectors) {
            let values = (vector + bias).to_array();
            match <&mut [f32; LANES]>::try_from(&mut *dst) {
                Ok(whole) => *whole = values,
                // The row's last, partial vector. (`copy_from_slice` for every vector was a
                // `memcpy` call each time: a tenth of a stem's forward.)
                Err(_) => {
                    for (d, v) in dst.iter_mut().zip(values) {
                        *d = v;
                    }
                }
            }
        }
    }
}

/// Lane bases for a tile starting at `first` in `bases`; lanes past the end repeat the last
/// valid one (their results are computed but never stored).
#[inline]
pub(crate) fn lane_bases<const P: usize>(bases: &[usize], first: usize) -> [usize; P] {
    let last = bases.len() - 1;
    std::array::from_fn(|p| bases[(first + p).min(last)])
}

/// Packs one block's weights as `[tap][vectors * 8 channels]`, zero past the block's channels.
pub(crate) fn pack_block_weights(
    weight: &[f32],
    block: &ChannelBlock,
    taps_per_group: usize,
) -> Vec<f32x8> {
    let vectors = block.vectors();
    let mut packed = vec![f32x8::ZERO; taps_per_group * vectors];
    // Row by row: each channel's taps are read in order and written every `vectors` vectors.
    for c in 0..block.len {
        let row = &weight[(block.start + c) * taps_per_group..][..taps_per_group];
        let slots = packed[c / LANES..].iter_mut().step_by(vectors);
        for (slot, &value) in slots.zip(row) {
            slot.as_mut_array()[c % LANES] = value;
        }
    }
    packed
}
