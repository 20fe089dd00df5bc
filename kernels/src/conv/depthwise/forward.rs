//! Depthwise forward: per input plane, build the padded plane once, then compute each of its
//! `multiplier` output planes in blocks of 8 output vectors (anywhere in the plane, so small
//! planes fill a block too), each with its own accumulator, over all taps.

use super::{
    channels, load_at, narrow, planes_per_task, store, stride_two, OutputVector, PaddedPlane,
};
use crate::Conv2dGeometry;
use rayon::prelude::*;
use wide::f32x8;

/// `output[n, co] = bias[co] + depthwise correlation of input[n, co / multiplier] with weight[co]`.
pub fn forward(
    g: &Conv2dGeometry,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
) {
    if channels::applies(g) {
        return channels::forward(g, input, weight, bias, output);
    }
    if narrow::applies(g) {
        return narrow::forward(g, input, weight, bias, output);
    }
    if stride_two::applies(g) {
        return stride_two::forward(g, input, weight, bias, output);
    }
    let multiplier = g.out_channels / g.in_channels;
    let in_plane = g.in_height * g.in_width;
    let out_plane = g.out_height() * g.out_width();
    let taps = g.kernel_height * g.kernel_width;
    let layout = PaddedPlane::for_geometry(g);
    let tap_offsets = layout.tap_offsets(g);
    let vectors = layout.output_vectors(g);
    // Checked once here, so the blocks below load without checks.
    layout.assert_reads_inside(&vectors, &tap_offsets);
    // The output planes of one input plane are contiguous: (n, ci, m) -> (n * C + ci) * M + m.
    let out_group = multiplier * out_plane;
    let planes = g.batch * g.in_channels;
    let chunk = planes_per_task(planes);
    output
        .par_chunks_mut(chunk * out_group)
        .enumerate()
        .for_each(|(task, out_chunk)| {
            let mut scratch = layout.zeroed_scratch();
            // Index arithmetic rather than `chunks_exact` and `%` per plane: on 8 x 8 planes a
            // division per plane is a visible share of the time.
            let first_plane = task * chunk;
            let mut in_channel = first_plane % g.in_channels;
            for local in 0..out_chunk.len() / out_group {
                let plane = first_plane + local;
                let out_planes = &mut out_chunk[local * out_group..][..out_group];
                layout.fill(&input[plane * in_plane..][..in_plane], &mut scratch);
                for m in 0..multiplier {
                    let out = &mut out_planes[m * out_plane..][..out_plane];
                    let co = in_channel * multiplier + m;
                    let filter = Filter {
                        weights: &weight[co * taps..][..taps],
                        offsets: &tap_offsets,
                        bias: f32x8::splat(bias.map_or(0.0, |b| b[co])),
                    };
                    let mut blocks = vectors.chunks_exact(8);
                    for block in &mut blocks {
                        // SAFETY: the windows and offsets were checked against `scratch` above.
                        unsafe { filter.apply::<8>(&scratch, block, out) };
                    }
                    let mut rest = blocks.remainder().chunks_exact(4);
                    for block in &mut rest {
                        // SAFETY: the windows and offsets were checked against `scratch` above.
                        unsafe { filter.apply::<4>(&scratch, block, out) };
                    }
                    for block in rest.remainder().chunks_exact(1) {
                        // SAFETY: the windows and offsets were checked against `scratch` above.
                        unsafe { filter.apply::<1>(&scratch, block, out) };
                    }
                }
                in_channel += 1;
                if in_channel == g.in_channels {
                    in_channel = 0;
                }
            }
        });
}

/// One output channel's filter, with the scratch offset of each tap.
struct Filter<'a> {
    weights: &'a [f32],
    offsets: &'a [usize],
    bias: f32x8,
}

impl Filter<'_> {
    /// Computes and stores `BLOCK` output vectors (`block.len() == BLOCK`).
    ///
    /// # Safety
    /// For every vector of `block` and every offset, `input + offset + LANES <= scratch.len()`.
    #[inline(always)]
    unsafe fn apply<const BLOCK: usize>(
        &self,
        scratch: &[f32],
        block: &[OutputVector],
        out: &mut [f32],
    ) {
        // One base pointer per vector and the tap offset as the index: the loads become
        // `base + offset * 4` addressing, with no arithmetic per load.
        let bases: [*const f32; BLOCK] =
            std::array::from_fn(|v| scratch.as_ptr().wrapping_add(block[v].input));
        let mut acc = [self.bias; BLOCK];
        for (&w, &offset) in self.weights.iter().zip(self.offsets) {
            let w = f32x8::splat(w);
            for (acc, &base) in acc.iter_mut().zip(&bases) {
                // SAFETY: in bounds by the caller's guarantee.
                let x = unsafe { load_at(base, offset) };
                *acc = x.mul_add(w, *acc);
            }
        }
        for (acc, vector) in acc.into_iter().zip(block) {
            store(acc, out, vector.output, vector.count);
        }
    }
}
