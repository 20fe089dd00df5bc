//! The padded, phased plane of the module docs: how one input plane is laid out in scratch,
//! the output vectors read from it, and the copies that fill it (row copies with one bounds
//! check per plane, and AVX2 shuffles for stride 2).

use super::LANES;
use crate::shuffle::split_pairs_raw;
use crate::Conv2dGeometry;

/// Layout of one input plane copied into scratch with zero padding on all four sides and its
/// columns split into `stride_w` phases (see the module docs). Padded row `py` starts at
/// `py * row_len`; phase `p` of that row at `py * row_len + p * phase_len`. Exactly the rows
/// and columns some output reads are kept, rounded up to whole vectors of output columns.
#[derive(Clone, Copy, Debug)]
pub(super) struct PaddedPlane {
    in_height: usize,
    in_width: usize,
    pad_top: usize,
    pad_left: usize,
    stride: usize,
    /// Padded rows kept: up to the last row the last output row reads.
    rows: usize,
    phase_len: usize,
    row_len: usize,
}

/// One vector of 8 consecutive output columns: where its window starts in the padded plane
/// (for tap 0), where it goes in the output plane, and how many of its lanes are real.
#[derive(Clone, Copy, Debug)]
pub(super) struct OutputVector {
    pub(super) input: usize,
    pub(super) output: usize,
    pub(super) count: usize,
}

impl PaddedPlane {
    pub(super) fn for_geometry(g: &Conv2dGeometry) -> Self {
        let stride = g.stride.1;
        let out_width_padded = g.out_width().next_multiple_of(LANES);
        let max_shift = (g.kernel_width - 1) * g.dilation.1 / stride;
        let phase_len = out_width_padded + max_shift;
        PaddedPlane {
            in_height: g.in_height,
            in_width: g.in_width,
            pad_top: g.padding.0,
            pad_left: g.padding.1,
            stride,
            rows: (g.out_height() - 1) * g.stride.0 + (g.kernel_height - 1) * g.dilation.0 + 1,
            phase_len,
            row_len: stride * phase_len,
        }
    }

    /// Length of the scratch buffer.
    pub(super) fn scratch_len(&self) -> usize {
        self.rows * self.row_len
    }

    /// A zeroed scratch buffer for [`PaddedPlane::fill`]. The padding positions are the same
    /// for every plane and `fill` never writes them, so they stay zero across planes.
    pub(super) fn zeroed_scratch(&self) -> Vec<f32> {
        vec![0.0; self.scratch_len()]
    }

    /// For each tap `(ky, kx)`, row-major, the offset from a vector's window start to the
    /// element the tap reads (computed once: division by a runtime stride is slow).
    pub(super) fn tap_offsets(&self, g: &Conv2dGeometry) -> Vec<usize> {
        let mut offsets = Vec::with_capacity(g.kernel_height * g.kernel_width);
        for ky in 0..g.kernel_height {
            for kx in 0..g.kernel_width {
                let column = kx * g.dilation.1;
                offsets.push(
                    ky * g.dilation.0 * self.row_len
                        + (column % self.stride) * self.phase_len
                        + column / self.stride,
                );
            }
        }
        offsets
    }

    /// The output plane as vectors, row by row (a row of `out_width` is `out_width / 8`
    /// rounded up vectors, the last one possibly partial).
    pub(super) fn output_vectors(&self, g: &Conv2dGeometry) -> Vec<OutputVector> {
        let out_width = g.out_width();
        let mut vectors = Vec::new();
        for oy in 0..g.out_height() {
            for column in (0..out_width).step_by(LANES) {
                vectors.push(OutputVector {
                    input: oy * g.stride.0 * self.row_len + column,
                    output: oy * out_width + column,
                    count: (out_width - column).min(LANES),
                });
            }
        }
        vectors
    }

    /// Panics unless every tap of every vector reads inside the scratch plane: the one check
    /// each pass makes before its unchecked loads (`load_at`).
    pub(super) fn assert_reads_inside(&self, vectors: &[OutputVector], offsets: &[usize]) {
        let last_start = vectors.iter().map(|v| v.input).max().unwrap_or(0);
        let max_offset = offsets.iter().copied().max().unwrap_or(0);
        assert!(vectors.is_empty() || last_start + max_offset + LANES <= self.scratch_len());
    }

    /// Copies `plane` (`in_height x in_width`) into `scratch` (from
    /// [`PaddedPlane::zeroed_scratch`]) in the padded, phased layout.
    pub(super) fn fill(&self, plane: &[f32], scratch: &mut [f32]) {
        let kept_rows = self.rows.saturating_sub(self.pad_top).min(self.in_height);
        if self.in_width == 0 || kept_rows == 0 {
            return;
        }
        if self.stride == 1 {
            let start = self.pad_left.min(self.row_len);
            let copied = self.in_width.min(self.row_len - start);
            let dst = &mut scratch[self.pad_top * self.row_len + start..];
            copy_rows(plane, self.in_width, dst, self.row_len, kept_rows, copied);
            return;
        }
        if self.stride == 2 {
            self.fill_pairs(plane, scratch, kept_rows);
            return;
        }
        for iy in 0..kept_rows {
            let row = &plane[iy * self.in_width..][..self.in_width];
            let dst = &mut scratch[(self.pad_top + iy) * self.row_len..][..self.row_len];
            self.deinterleave(row, dst, 0);
        }
    }

    /// Stride 2: the even and odd input columns of each row each go to one contiguous run,
    /// 8 pairs at a time through fixed-length arrays (a few shuffles), with the bounds checked
    /// once per plane; the row's last, unpaired column (odd widths) is placed one by one.
    fn fill_pairs(&self, plane: &[f32], scratch: &mut [f32], kept_rows: usize) {
        // Padded column `pad_left + ix`: phase `(pad_left + ix) % 2`, index `(pad_left + ix) / 2`.
        let (half, half_up) = (self.pad_left / 2, self.pad_left.div_ceil(2));
        let (even_at, odd_at, even_room, odd_room) = if self.pad_left % 2 == 0 {
            (half, self.phase_len + half, half, half)
        } else {
            (self.phase_len + half, half_up, half, half_up)
        };
        let room = |skipped: usize| self.phase_len.saturating_sub(skipped);
        let pairs = (self.in_width / 2).min(room(even_room)).min(room(odd_room));
        let (vectors, row_len) = (pairs / LANES, self.row_len);
        // Every row writes below `even_at + pairs` and `odd_at + pairs`, both at most
        // `row_len`, and reads below `2 * pairs <= in_width`.
        assert!(even_at + pairs <= row_len && odd_at + pairs <= row_len);
        assert!(kept_rows * self.in_width <= plane.len());
        assert!((self.pad_top + kept_rows) * row_len <= scratch.len());
        for iy in 0..kept_rows {
            // SAFETY: row `iy` of `plane` and padded row `pad_top + iy` of `scratch` are in
            // bounds, and every index below stays inside them (asserted above).
            unsafe {
                let src = plane.as_ptr().add(iy * self.in_width);
                let dst = scratch.as_mut_ptr().add((self.pad_top + iy) * row_len);
                for v in 0..vectors {
                    let at = LANES * v;
                    split_pairs_raw(src.add(2 * at), dst.add(even_at + at), dst.add(odd_at + at));
                }
                for i in vectors * LANES..pairs {
                    *dst.add(even_at + i) = *src.add(2 * i);
                    *dst.add(odd_at + i) = *src.add(2 * i + 1);
                }
            }
            if 2 * pairs < self.in_width {
                let row = &plane[iy * self.in_width..][..self.in_width];
                let dst = &mut scratch[(self.pad_top + iy) * row_len..][..row_len];
                self.deinterleave(row, dst, 2 * pairs);
            }
        }
    }

    /// Any stride: columns `from..` of `row`, one by one.
    fn deinterleave(&self, row: &[f32], dst: &mut [f32], from: usize) {
        for (ix, &value) in row.iter().enumerate().skip(from) {
            let padded = ix + self.pad_left;
            let index = padded / self.stride;
            if index < self.phase_len {
                dst[(padded % self.stride) * self.phase_len + index] = value;
            }
        }
    }
}

/// Copies `rows` rows of `len` values, row `r` from `src[r * src_step..]` to
/// `dst[r * dst_step..]`: how each plane gets into its padded scratch. The bounds are checked
/// once for the whole copy. Checking and slicing row by row cost more than the copy itself on
/// small planes: on 8 x 8 planes the forward pass spent more instructions copying its input than
/// computing.
#[inline(always)]
pub(super) fn copy_rows(
    src: &[f32],
    src_step: usize,
    dst: &mut [f32],
    dst_step: usize,
    rows: usize,
    len: usize,
) {
    if rows == 0 || len == 0 {
        return;
    }
    assert!((rows - 1) * src_step + len <= src.len());
    assert!((rows - 1) * dst_step + len <= dst.len());
    let (src, dst) = (src.as_ptr(), dst.as_mut_ptr());
    for r in 0..rows {
        // SAFETY: row `r` is `[r * step, r * step + len)` on each side, in bounds by the
        // asserts above; the two slices cannot overlap (one is borrowed mutably).
        unsafe { copy_row(src.add(r * src_step), dst.add(r * dst_step), len) };
    }
}

/// Copies `len` values from `src` to `dst` by whole vectors, the last one overlapping its
/// neighbour when `len` is not a multiple of 8. The first two vectors are peeled off the loop:
/// LLVM turns a copy loop into a `memcpy` call, which costs more than a row of up to 16 values.
///
/// # Safety
/// `src[..len]` and `dst[..len]` are valid and do not overlap.
#[inline(always)]
unsafe fn copy_row(src: *const f32, dst: *mut f32, len: usize) {
    let copy_vector = |at: usize| {
        // SAFETY: every call below copies a vector inside `[0, len)` of both pointers.
        unsafe {
            let lanes = src.add(at).cast::<[f32; LANES]>().read_unaligned();
            dst.add(at).cast::<[f32; LANES]>().write_unaligned(lanes);
        }
    };
    if len < LANES {
        for at in 0..len {
            // SAFETY: `at < len`.
            unsafe { *dst.add(at) = *src.add(at) };
        }
        return;
    }
    copy_vector(0);
    let mut at = LANES;
    if len >= 2 * LANES {
        copy_vector(LANES);
        at = 2 * LANES;
        while at + LANES <= len {
            copy_vector(at);
            at += LANES;
        }
    }
    if at < len {
        copy_vector(len - LANES);
    }
}
