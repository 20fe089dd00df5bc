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
//! The innermost loads skip bounds checks (`load_unchecked`) after one check per block of the
//! largest offset the block reads: with the checks the forward pass ran about 1.4x slower.
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

/// [`load`] without the bounds check, for the innermost loops; callers check once per block.
///
/// # Safety
/// `at + LANES <= slice.len()`.
#[inline(always)]
unsafe fn load_unchecked(slice: &[f32], at: usize) -> f32x8 {
    debug_assert!(at + LANES <= slice.len());
    // SAFETY: the caller guarantees `slice[at..at + LANES]` is in bounds; `[f32; 8]` has no
    // alignment requirement beyond f32's, and `read_unaligned` needs none at all.
    let lanes = unsafe { std::ptr::read_unaligned(slice.as_ptr().add(at).cast::<[f32; LANES]>()) };
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

    /// A zeroed scratch buffer for [`PaddedPlane::fill`]. The padding positions are the same
    /// for every plane and `fill` never writes them, so they stay zero across planes.
    fn zeroed_scratch(&self) -> Vec<f32> {
        vec![0.0; self.rows * self.row_len]
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
        if self.in_width == 0 {
            return;
        }
        let kept_rows = self.rows.saturating_sub(self.pad_top).min(self.in_height);
        for iy in 0..kept_rows {
            let row = &plane[iy * self.in_width..][..self.in_width];
            let dst = &mut scratch[(self.pad_top + iy) * self.row_len..][..self.row_len];
            if self.stride == 1 {
                let start = self.pad_left.min(self.row_len);
                let copied = self.in_width.min(self.row_len - start);
                copy_short(&row[..copied], &mut dst[start..start + copied]);
            } else if self.stride == 2 {
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

/// `dst.copy_from_slice(src)` for the short rows of small planes, where a call to `memcpy`
/// costs more than the copy. The first vector is peeled off the loop: LLVM turns the loop into
/// a `memcpy` call, and for rows of at most 16 columns this keeps that call out.
#[inline(always)]
fn copy_short(src: &[f32], dst: &mut [f32]) {
    let len = src.len().min(dst.len());
    let mut at = 0;
    if len >= LANES {
        store(load(src, 0), dst, 0, LANES);
        at = LANES;
        if len >= 2 * LANES {
            store(load(src, LANES), dst, LANES, LANES);
            at = 2 * LANES;
        }
        while at + LANES <= len {
            store(load(src, at), dst, at, LANES);
            at += LANES;
        }
    }
    for (d, &s) in dst[at..len].iter_mut().zip(&src[at..len]) {
        *d = s;
    }
}
