//! Depthwise convolution (`groups == in_channels`): one small 2-D filter per output channel.
//!
//! Output channel `co` reads only input channel `co / multiplier`, so a depthwise layer does
//! `kernel_height * kernel_width` multiply-adds per output pixel and is bound by memory, not
//! arithmetic. The kernels here therefore aim at one pass over each operand per direction, and
//! vectorise along the contiguous width axis (8 output columns per `f32x8`).
//!
//! ## The padded, phased plane
//!
//! Every pass first copies the one input plane it works on (4 KiB for 32 x 32) into a scratch
//! buffer that stays in L1, with zero padding on all four sides and its columns split into
//! `stride_w` phases (`padded column % stride_w`), each phase stored contiguously. Kernel tap
//! `(ky, kx)` of output column `ox` then reads padded row `oy*sy + ky*dy`, phase `(kx*dx) % sx`,
//! index `ox + (kx*dx) / sx`: one unaligned vector load at a fixed offset per tap, for any
//! stride, dilation and padding, with no border branches and no gathers. The padding positions
//! are the same for every plane, so the scratch is zeroed once per task and each plane only
//! copies its values in (a few L1 writes per input element, against `taps` loads per output).
//!
//! Output vectors (8 consecutive columns of one row) are processed in blocks of 8 with one
//! accumulator each, taken anywhere in the plane, so an 8 x 8 plane is one block: 8 independent
//! FMA chains hide the FMA latency whatever the width.
//!
//! - [`forward`]: per input plane, build the padded plane, then for each of its `multiplier`
//!   output planes accumulate blocks over the taps, starting from the bias.
//! - [`backward_data`] is the transposed convolution, written as a gather so every input-gradient
//!   element is written once, by phase pairs (see its module); the output gradients are copied
//!   into zero-padded planes, so it is again one vector load per tap.
//! - [`backward_weight`] reduces `grad_output * input under the tap` per output channel: tasks
//!   take contiguous runs of planes, keep one vector accumulator per (channel, tap) and reduce
//!   once at their end; partial gradients of the few tasks are then summed.
//!
//! The innermost loads skip bounds checks (`load_at`, from a base pointer per vector with the
//! tap's offset as the index) after one check per call of the largest offset the windows
//! read: with the checks the forward pass ran about 1.4x slower. Planes are copied into their
//! scratch with one bounds check per plane (`copy_rows`): on 8 x 8 planes the row-by-row
//! slicing and `memcpy` calls had cost more than the arithmetic.
//! Work is split over rayon in runs of whole planes; each task allocates its scratch once.
//! Preconditions for every function: the geometry is valid and every slice has the length the
//! geometry implies (the dispatcher in `conv/mod.rs` checks both).

mod backward_data;
mod backward_weight;
mod forward;
#[cfg(test)]
mod tests;

pub use backward_data::backward_data;
pub use backward_weight::backward_weight;
pub use forward::forward;

use crate::Conv2dGeometry;
use wide::f32x8;

/// Lanes of one SIMD vector.
const LANES: usize = 8;

#[inline(always)]
fn load(slice: &[f32], at: usize) -> f32x8 {
    let lanes: [f32; LANES] = slice[at..at + LANES].try_into().unwrap();
    f32x8::from(lanes)
}

/// The vector at `base + at`, without a bounds check: for the innermost loops, whose callers
/// check the whole range they read once, before the loops.
///
/// # Safety
/// `base.add(at)` and the 7 values after it are in one live allocation.
#[inline(always)]
unsafe fn load_at(base: *const f32, at: usize) -> f32x8 {
    // SAFETY: guaranteed by the caller; `read_unaligned` has no alignment requirement.
    let lanes = unsafe { base.add(at).cast::<[f32; LANES]>().read_unaligned() };
    f32x8::from(lanes)
}

/// Stores the first `count` lanes of `v` (all of them when `count >= LANES`).
#[inline(always)]
fn store(v: f32x8, slice: &mut [f32], at: usize, count: usize) {
    let lanes = v.to_array();
    if count >= LANES {
        // An array assignment, one vector store; `copy_from_slice` here would share a
        // variable-length `memcpy` call with the partial branch below.
        let dst: &mut [f32; LANES] = (&mut slice[at..at + LANES]).try_into().unwrap();
        *dst = lanes;
    } else {
        for (d, &lane) in slice[at..at + count].iter_mut().zip(&lanes) {
            *d = lane;
        }
    }
}

/// How many planes each rayon task takes: enough tasks to balance two cores (and a few more),
/// few enough that the per-task scratch allocation and scheduling cost nothing.
fn planes_per_task(planes: usize) -> usize {
    let tasks = rayon::current_num_threads().max(1) * 8;
    planes.div_ceil(tasks).max(1)
}

/// Layout of one input plane copied into scratch with zero padding on all four sides and its
/// columns split into `stride_w` phases (see the module docs). Padded row `py` starts at
/// `py * row_len`; phase `p` of that row at `py * row_len + p * phase_len`. Exactly the rows
/// and columns some output reads are kept, rounded up to whole vectors of output columns.
#[derive(Clone, Copy, Debug)]
struct PaddedPlane {
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
struct OutputVector {
    input: usize,
    output: usize,
    count: usize,
}

impl PaddedPlane {
    fn for_geometry(g: &Conv2dGeometry) -> Self {
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
    fn scratch_len(&self) -> usize {
        self.rows * self.row_len
    }

    /// A zeroed scratch buffer for [`PaddedPlane::fill`]. The padding positions are the same
    /// for every plane and `fill` never writes them, so they stay zero across planes.
    fn zeroed_scratch(&self) -> Vec<f32> {
        vec![0.0; self.scratch_len()]
    }

    /// For each tap `(ky, kx)`, row-major, the offset from a vector's window start to the
    /// element the tap reads (computed once: division by a runtime stride is slow).
    fn tap_offsets(&self, g: &Conv2dGeometry) -> Vec<usize> {
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
    fn output_vectors(&self, g: &Conv2dGeometry) -> Vec<OutputVector> {
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

    /// Copies `plane` (`in_height x in_width`) into `scratch` (from
    /// [`PaddedPlane::zeroed_scratch`]) in the padded, phased layout.
    fn fill(&self, plane: &[f32], scratch: &mut [f32]) {
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
        for iy in 0..kept_rows {
            let row = &plane[iy * self.in_width..][..self.in_width];
            let dst = &mut scratch[(self.pad_top + iy) * self.row_len..][..self.row_len];
            if self.stride == 2 {
                self.deinterleave_pairs(row, dst);
            } else {
                self.deinterleave(row, dst, 0);
            }
        }
    }

    /// Stride 2: the even and odd input columns each go to one contiguous run, a loop that
    /// compiles to vector shuffles.
    fn deinterleave_pairs(&self, row: &[f32], dst: &mut [f32]) {
        let (phase0, phase1) = dst.split_at_mut(self.phase_len);
        // Even columns (padded position ix + pad) go to `even`, odd ones to `odd`.
        let (even, odd) = if self.pad_left % 2 == 0 {
            (
                &mut phase0[self.pad_left / 2..],
                &mut phase1[self.pad_left / 2..],
            )
        } else {
            (
                &mut phase1[self.pad_left / 2..],
                &mut phase0[self.pad_left.div_ceil(2)..],
            )
        };
        let pairs = (row.len() / 2).min(even.len()).min(odd.len());
        let (even, odd, row_pairs) = (&mut even[..pairs], &mut odd[..pairs], &row[..2 * pairs]);
        for i in 0..pairs {
            even[i] = row_pairs[2 * i];
            odd[i] = row_pairs[2 * i + 1];
        }
        self.deinterleave(row, dst, 2 * pairs);
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
fn copy_rows(
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
