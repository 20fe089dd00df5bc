//! Depthwise backward-weight: per output channel, `grad_weight[co, ky, kx]` is the sum over the
//! batch and the output plane of `grad_output * input under the tap`.
//!
//! Each rayon task takes a contiguous run of (image, channel) planes (memory order, so the
//! prefetchers stream) and keeps vector accumulators for every channel; it reduces them
//! horizontally once at its end, and the few per-task partial gradients are then summed. For
//! each plane it copies the input plane into
//! the padded layout of the forward pass and the output-gradient planes into rows padded with
//! zeros to whole vectors. Then it walks the plane's vectors once per group of up to 9 taps:
//! each grad-output vector is loaded once and multiplied into one accumulator per tap (9
//! independent FMA chains, enough to hide the latency, all in registers).

use super::{channels, copy_rows, load, load_at, narrow, OutputVector, PaddedPlane, LANES};
use crate::conv::bias_gradient;
use crate::Conv2dGeometry;
use rayon::prelude::*;
use wide::f32x8;

/// Taps handled in one pass over the plane: one accumulator register each.
const TAP_GROUP: usize = 9;

/// `grad_weight = sum over (n, oy, ox) of grad_output * input under the tap`; `grad_bias` the
/// sum of `grad_output` per channel.
pub fn backward_weight(
    g: &Conv2dGeometry,
    input: &[f32],
    grad_output: &[f32],
    grad_weight: &mut [f32],
    grad_bias: Option<&mut [f32]>,
) {
    if channels::applies(g) {
        channels::backward_weight(g, input, grad_output, grad_weight);
        if let Some(grad_bias) = grad_bias {
            bias_gradient(grad_output, g.out_height() * g.out_width(), grad_bias);
        }
        return;
    }
    let multiplier = g.out_channels / g.in_channels;
    let taps = g.kernel_height * g.kernel_width;
    let in_plane = g.in_height * g.in_width;
    let (out_height, out_width) = (g.out_height(), g.out_width());
    let out_plane = out_height * out_width;
    // The grad-output copy holds vector `v` of the plane at `v * LANES`.
    let padded_width = out_width.next_multiple_of(LANES);
    let padded_plane = out_height * padded_width;
    let layout = PaddedPlane::for_geometry(g);
    let tap_offsets = layout.tap_offsets(g);
    let vectors = layout.output_vectors(g);
    let want_bias = grad_bias.is_some();
    // Planes whose rows are whole vectors read the input in place (`narrow.rs`).
    let narrow = narrow::applies(g);
    // Checked once here, so the accumulation loops load without checks.
    layout.assert_reads_inside(&vectors, &tap_offsets);

    // Tasks take contiguous runs of (image, channel) planes, in memory order, so the hardware
    // prefetchers see streams; each returns its partial gradients for every channel.
    let planes = g.batch * g.in_channels;
    let tasks = (rayon::current_num_threads() * 2).clamp(1, planes.max(1));
    let partials: Vec<(Vec<f32>, Vec<f32>)> = (0..tasks)
        .into_par_iter()
        .map(|task| {
            let mut x_scratch = layout.zeroed_scratch();
            let mut dy_scratch = vec![0.0f32; multiplier * padded_plane];
            let mut weight_acc = vec![f32x8::ZERO; g.out_channels * taps];
            let mut bias_acc = vec![f32x8::ZERO; g.out_channels];
            let (first_plane, end_plane) = (task * planes / tasks, (task + 1) * planes / tasks);
            let mut in_channel = first_plane % g.in_channels;
            for plane in first_plane..end_plane {
                if !narrow {
                    layout.fill(&input[plane * in_plane..][..in_plane], &mut x_scratch);
                }
                let dy = &grad_output[plane * multiplier * out_plane..][..multiplier * out_plane];
                // Rows of whole vectors are read in place; others are copied with a zero tail
                // (allocated zeroed, never written).
                let rows_are_vectors = out_width == padded_width;
                if !rows_are_vectors {
                    let rows = multiplier * out_height;
                    copy_rows(
                        dy,
                        out_width,
                        &mut dy_scratch,
                        padded_width,
                        rows,
                        out_width,
                    );
                }
                let dy_planes = if rows_are_vectors {
                    dy
                } else {
                    &dy_scratch[..]
                };
                for m in 0..multiplier {
                    let dy_plane = &dy_planes[m * padded_plane..][..padded_plane];
                    let co = in_channel * multiplier + m;
                    let accs = &mut weight_acc[co * taps..][..taps];
                    if narrow {
                        let (start, width) = (plane * in_plane, g.in_width);
                        narrow::accumulate_weight(input, start, width, dy_plane, accs);
                    } else {
                        let planes = Planes {
                            dy: dy_plane,
                            x: &x_scratch,
                            vectors: &vectors,
                        };
                        let groups = accs
                            .chunks_mut(TAP_GROUP)
                            .zip(tap_offsets.chunks(TAP_GROUP));
                        for (acc, offsets) in groups {
                            // SAFETY: the windows and offsets were checked against the scratch
                            // length before the tasks started.
                            unsafe { planes.accumulate_taps(acc, offsets) };
                        }
                    }
                    if want_bias {
                        let mut sum = bias_acc[co];
                        for v in (0..dy_plane.len()).step_by(LANES) {
                            sum += load(dy_plane, v);
                        }
                        bias_acc[co] = sum;
                    }
                }
                in_channel += 1;
                if in_channel == g.in_channels {
                    in_channel = 0;
                }
            }
            let reduce = |accs: Vec<f32x8>| accs.into_iter().map(f32x8::reduce_add).collect();
            (reduce(weight_acc), reduce(bias_acc))
        })
        .collect();

    grad_weight.fill(0.0);
    for (partial, _) in &partials {
        for (gw, p) in grad_weight.iter_mut().zip(partial) {
            *gw += p;
        }
    }
    if let Some(grad_bias) = grad_bias {
        grad_bias.fill(0.0);
        for (_, partial) in &partials {
            for (gb, p) in grad_bias.iter_mut().zip(partial) {
                *gb += p;
            }
        }
    }
}

/// One image's grad-output plane (vector `v` at `v * LANES`) and padded input plane.
struct Planes<'a> {
    dy: &'a [f32],
    x: &'a [f32],
    vectors: &'a [OutputVector],
}

impl Planes<'_> {
    /// `acc[t] += sum over vectors v of dy[v] * x[v's window + offsets[t]]` for up to
    /// [`TAP_GROUP`] taps, through a copy of the accumulators with a compile-time length.
    ///
    /// # Safety
    /// For every vector and offset, `input + offset + LANES <= x.len()`.
    unsafe fn accumulate_taps(&self, acc: &mut [f32x8], offsets: &[usize]) {
        // SAFETY: every arm passes on the caller's guarantee.
        unsafe {
            match offsets.len() {
                1 => self.accumulate::<1>(acc, offsets),
                2 => self.accumulate::<2>(acc, offsets),
                3 => self.accumulate::<3>(acc, offsets),
                4 => self.accumulate::<4>(acc, offsets),
                5 => self.accumulate::<5>(acc, offsets),
                6 => self.accumulate::<6>(acc, offsets),
                7 => self.accumulate::<7>(acc, offsets),
                8 => self.accumulate::<8>(acc, offsets),
                9 => self.accumulate::<9>(acc, offsets),
                n => unreachable!("tap groups have 1 to {TAP_GROUP} taps, not {n}"),
            }
        }
    }

    /// # Safety
    /// As [`Planes::accumulate_taps`].
    #[inline(always)]
    unsafe fn accumulate<const TAPS: usize>(&self, acc: &mut [f32x8], offsets: &[usize]) {
        let offsets: [usize; TAPS] = offsets.try_into().unwrap();
        let mut sums: [f32x8; TAPS] = acc.try_into().unwrap();
        for (v, vector) in self.vectors.iter().enumerate() {
            let dy = load(self.dy, v * LANES);
            let base = self.x.as_ptr().wrapping_add(vector.input);
            for (sum, &offset) in sums.iter_mut().zip(&offsets) {
                // SAFETY: inside `x` by the caller's guarantee.
                let x = unsafe { load_at(base, offset) };
                *sum = dy.mul_add(x, *sum);
            }
        }
        acc.copy_from_slice(&sums);
    }
}
