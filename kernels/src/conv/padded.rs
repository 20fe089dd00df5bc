//! Zero-padded copies of an input, built once per call so that the inner loops have no border
//! tests: `PaddedPlanes` (every plane padded, in a buffer reused by the next call on the thread)
//! and `SplitInput` (padded, each row split into column phases).

use super::recycled::Recycled;
use crate::Conv2dGeometry;
use rayon::prelude::*;

/// A zero-padded copy of a stack of planes, in a buffer that is reused by the next call on the
/// same thread (see `conv/recycled.rs`).
pub(in crate::conv) struct PaddedPlanes {
    data: Recycled,
}

impl PaddedPlanes {
    /// Copies planes of `height x width` into planes with `(top, bottom, left, right)` rows and
    /// columns of zeros around them, followed by `slack` zeros so vector reads may run a little
    /// past the last plane. Every element is written, so a reused buffer needs no clearing.
    pub(in crate::conv) fn new(
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

    /// A buffer of `len` values, recycled when this thread has one, handed to `fill`, which must
    /// write every value (a reused buffer holds the last call's data).
    pub(in crate::conv) fn build(len: usize, fill: impl FnOnce(&mut [f32])) -> Self {
        let mut data = Recycled::take(len);
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

/// Each image of a batch, padded for the task that reads it. Tasks that split one image's
/// channels (small batches) share a padded copy of the whole batch. Where every task is a whole
/// image, each pads its own, which is then still in L2 for its tiles: padded up front, the
/// batch's copy went to memory and came back, a tenth of the direct forward at stride 2 (64 ->
/// 128 channels on 32 x 32).
pub(in crate::conv) struct PaddedImages<'a, F> {
    batch: &'a [f32],
    /// Values per image of `batch`.
    image: usize,
    /// Values per padded image, and values a task may read past its padded image.
    padded: usize,
    reach: usize,
    shared: Option<PaddedPlanes>,
    pad: F,
}

impl<'a, F: Fn(&[f32]) -> PaddedPlanes> PaddedImages<'a, F> {
    /// `pad` copies images of `image` values (any number of them) into padded ones of `padded`
    /// values, followed by at least `reach` values of slack.
    pub(in crate::conv) fn new(
        batch: &'a [f32],
        image: usize,
        whole_images: bool,
        (padded, reach): (usize, usize),
        pad: F,
    ) -> Self {
        let shared = (!whole_images).then(|| pad(batch));
        PaddedImages {
            batch,
            image,
            padded,
            reach,
            shared,
            pad,
        }
    }

    /// Padded image `n`, and the `reach` values after it.
    pub(in crate::conv) fn image(&self, n: usize) -> PaddedImage<'_> {
        let len = self.padded + self.reach;
        match &self.shared {
            Some(all) => PaddedImage::Shared(&all[n * self.padded..][..len]),
            None => {
                let own = (self.pad)(&self.batch[n * self.image..][..self.image]);
                PaddedImage::Own(own, len)
            }
        }
    }
}

/// One padded image of [`PaddedImages`]: a slice of the shared copy, or the task's own.
pub(in crate::conv) enum PaddedImage<'a> {
    Shared(&'a [f32]),
    Own(PaddedPlanes, usize),
}

impl std::ops::Deref for PaddedImage<'_> {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        match self {
            PaddedImage::Shared(values) => values,
            PaddedImage::Own(planes, len) => &planes[..*len],
        }
    }
}

/// The zero-padded input (`g.padding` on each side) with every row rewritten as its `phases`
/// column phases one after the other: phase `r` holds padded columns `r, r + phases, ...`, so
/// outputs that read columns `phases` apart read consecutive values of one phase.
/// `direct/forward_pixels.rs` splits by the column stride; the Winograd tiles by the step from
/// one tile to the next (2 at unit stride, 4 at stride 2).
pub(in crate::conv) struct SplitInput {
    pub(in crate::conv) planes: PaddedPlanes,
    /// Values per phase: `ceil(padded width / phases)`.
    pub(in crate::conv) phase: usize,
    /// Values per split row: `phases * phase` (zeros past the padded width).
    pub(in crate::conv) row: usize,
    /// Rows per padded plane.
    pub(in crate::conv) height: usize,
    /// Values per split image (all its channels).
    pub(in crate::conv) image: usize,
}

impl SplitInput {
    /// Splits `input` (laid out as `g` says) into `phases` phases per row, with `slack` zeros
    /// after the last image so that reads may run a little past it.
    pub(in crate::conv) fn new(
        g: &Conv2dGeometry,
        input: &[f32],
        phases: usize,
        slack: usize,
    ) -> Self {
        let (pad_h, pad_w) = g.padding;
        let stride = phases;
        let height = g.in_height + 2 * pad_h;
        let phase = (g.in_width + 2 * pad_w).div_ceil(stride);
        let row = stride * phase;
        let image = g.in_channels * height * row;
        let in_plane = g.in_height * g.in_width;
        // With 4 phases, the padded row's even and odd columns, zero where they are padding.
        let half = (g.in_width + 2 * pad_w).div_ceil(2);
        let halves = || vec![0.0; if stride == 4 { 2 * half } else { 0 }];
        let planes = PaddedPlanes::build(g.batch * image + slack, |data| {
            data[g.batch * image..].fill(0.0);
            data[..g.batch * image]
                .par_chunks_mut(height * row)
                .zip(input.par_chunks(in_plane))
                .for_each_init(halves, |halves, (dst, src)| {
                    dst[..pad_h * row].fill(0.0);
                    dst[(pad_h + g.in_height) * row..].fill(0.0);
                    let rows = dst[pad_h * row..].chunks_exact_mut(row);
                    for (dst_row, src_row) in rows.zip(src.chunks_exact(g.in_width)) {
                        dst_row.fill(0.0);
                        match stride {
                            // One phase: the row as it is.
                            1 => dst_row[pad_w..][..g.in_width].copy_from_slice(src_row),
                            2 => split_pairs(src_row, dst_row.split_at_mut(phase), pad_w),
                            4 => split_quads(src_row, dst_row, phase, halves, pad_w),
                            _ => split_values(src_row, dst_row, stride, phase, pad_w),
                        }
                    }
                });
        });
        SplitInput {
            planes,
            phase,
            row,
            height,
            image,
        }
    }
}

/// One row split in `stride` phases of `phase` values, one value at a time.
fn split_values(src_row: &[f32], dst_row: &mut [f32], stride: usize, phase: usize, pad_w: usize) {
    // Phase `r` holds padded columns `r, r + stride, ...`; the first of them inside the image
    // is `column`, input column `column - pad_w`.
    for (r, dst_phase) in dst_row.chunks_exact_mut(phase).enumerate() {
        let column = pad_w + (r + stride - pad_w % stride) % stride;
        let values = src_row.iter().skip(column - pad_w).step_by(stride);
        for (slot, &value) in dst_phase[column / stride..].iter_mut().zip(values) {
            *slot = value;
        }
    }
}

/// One row split in 4 phases of `phase` values, as two rounds of [`split_pairs`]: the padded
/// row into its even and odd columns (`halves`, whose padding is zero), then each of those into
/// its even and odd values, which are phases 0 and 2, and 1 and 3. (The one-value loop of
/// [`split_values`] divides for every value: with 4 phases it was a tenth of a stride-2
/// Winograd forward.)
fn split_quads(src: &[f32], dst: &mut [f32], phase: usize, halves: &mut [f32], pad_w: usize) {
    let (even, odd) = halves.split_at_mut(halves.len() / 2);
    split_pairs(src, (&mut *even, &mut *odd), pad_w);
    let (zero, rest) = dst.split_at_mut(phase);
    let (one, rest) = rest.split_at_mut(phase);
    let (two, three) = rest.split_at_mut(phase);
    split_pairs(even, (zero, two), 0);
    split_pairs(odd, (one, three), 0);
}

/// One row split in two phases: input column `x` is padded column `x + pad_w`, which goes to
/// `even` or `odd` at index `(x + pad_w) / 2`. Taken a pair of columns at a time, which the
/// compiler vectorises; the general loop in [`SplitInput::new`] moves one value at a time, and
/// was a tenth of a Winograd forward.
fn split_pairs(src: &[f32], (even, odd): (&mut [f32], &mut [f32]), pad_w: usize) {
    // Input columns `2j` and `2j + 1` go to `first[j + shift.0]` and `second[j + shift.1]`.
    let (first, second, shift) = if pad_w % 2 == 0 {
        (even, odd, (pad_w / 2, pad_w / 2))
    } else {
        (odd, even, (pad_w / 2, pad_w / 2 + 1))
    };
    let pairs = src.chunks_exact(2);
    if let [last] = pairs.remainder() {
        first[shift.0 + src.len() / 2] = *last;
    }
    let slots = first[shift.0..].iter_mut().zip(&mut second[shift.1..]);
    for ((a, b), pair) in slots.zip(pairs) {
        *a = pair[0];
        *b = pair[1];
    }
}
