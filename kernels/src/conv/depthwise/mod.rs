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
//! The layout and the copies that fill it live in `layout.rs`.
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
//! Small maps with one output channel per input channel and output rows narrower than a vector
//! (the last stages of MobileNet v2 at 32 x 32, down to 1 x 1) go to `channels.rs` instead,
//! which transposes each image to `[pixel][channel]` and puts eight channels in a vector.
//! Planes whose rows are whole vectors (8, 16, 32, ... wide) under a 3 x 3 kernel at stride 1
//! with padding 1 go to `narrow.rs`, which needs no scratch plane: it filters the plane in
//! strips one vector wide, loads each input row of a strip once with its two one-column
//! shifts, and slides a window of three rows down the strip in registers.
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
mod channels;
mod forward;
mod layout;
mod narrow;
mod stride_two;
#[cfg(test)]
mod tests;
mod vector;

pub use backward_data::backward_data;
pub use backward_weight::backward_weight;
pub use forward::forward;

use layout::{copy_rows, OutputVector, PaddedPlane};

use rayon::prelude::*;
use wide::f32x8;

/// Lanes of one SIMD vector.
const LANES: usize = 8;

/// Bitwise lane masks for `f32x8::bitand`: a lane of all ones keeps its value, a zero lane
/// clears it (whatever it held, so non-finite values outside a row never reach a sum).
/// `NOT_LAST` clears lane 7. (`vector.rs` builds the masks of the strip kernels.)
const KEEP: f32 = f32::from_bits(u32::MAX);
const NOT_LAST: [f32; LANES] = [KEEP, KEEP, KEEP, KEEP, KEEP, KEEP, KEEP, 0.0];

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

/// Calls `f(plane, channel, out)` for every (image, channel) plane of `output`, where `out` is
/// that plane's `plane_len` values and `channel` its index within the image, over rayon tasks
/// that take runs of whole planes. The channel is counted, not divided per plane: on 8 x 8
/// planes a division per plane is a visible share of the time.
fn for_each_plane(
    output: &mut [f32],
    plane_len: usize,
    channels: usize,
    f: impl Fn(usize, usize, &mut [f32]) + Sync + Send,
) {
    if plane_len == 0 || channels == 0 {
        return;
    }
    let chunk = planes_per_task(output.len() / plane_len);
    output
        .par_chunks_mut(chunk * plane_len)
        .enumerate()
        .for_each(|(task, planes)| {
            let first = task * chunk;
            let mut channel = first % channels;
            for (local, out) in planes.chunks_exact_mut(plane_len).enumerate() {
                f(first + local, channel, out);
                channel += 1;
                if channel == channels {
                    channel = 0;
                }
            }
        });
}

/// How many planes each rayon task takes: enough tasks to balance two cores (and a few more),
/// few enough that the per-task scratch allocation and scheduling cost nothing.
fn planes_per_task(planes: usize) -> usize {
    let tasks = rayon::current_num_threads().max(1) * 8;
    planes.div_ceil(tasks).max(1)
}
