//! The pixel-vectorised job of backward-data, for groups of few input channels.

use super::phases::Phase;
use crate::conv::direct::{pixel_tile, Taps, LANES};

/// One group of few input channels over one phase: rows of the phase in runs of `8 * U` pixels.
pub(super) struct PixelJob<'a> {
    pub(super) source: &'a [f32],
    pub(super) taps: Taps<'a>,
    pub(super) phase: &'a Phase,
    pub(super) padded_width: usize,
    pub(super) stride: (usize, usize),
    pub(super) in_width: usize,
    pub(super) plane: usize,
}

impl PixelJob<'_> {
    /// Runs over the output-gradient channels in chunks whose rows fit in L1 (about 16 KiB
    /// each), so consecutive rows of the phase reuse what the previous row loaded; the first
    /// chunk stores and the others add.
    pub(super) fn run<const C: usize, const U: usize>(
        &self,
        weights: &[[f32; C]],
        out: &mut [f32],
    ) {
        let (ry, rx) = self.phase.origin;
        let (rows, cols) = self.phase.size;
        let (kernel_rows, kernel_cols) = self.phase.kernel_taps;
        let row_bytes = kernel_rows * self.padded_width * std::mem::size_of::<f32>();
        let channels_per_chunk = (L1_CHUNK_BYTES / row_bytes).max(1);
        let chunk_taps = channels_per_chunk * kernel_rows * kernel_cols;
        for chunk_start in (0..self.taps.len()).step_by(chunk_taps) {
            let chunk = chunk_start..self.taps.len().min(chunk_start + chunk_taps);
            let taps = self.taps.slice(chunk.clone());
            let weights = &weights[chunk];
            let first_chunk = chunk_start == 0;
            for jy in 0..rows {
                let out_row = (ry + self.stride.0 * jy) * self.in_width + rx;
                for first in (0..cols).step_by(U * LANES) {
                    let start = jy * self.padded_width + first;
                    let acc = pixel_tile::<C, U>(self.source, start, taps, weights);
                    let count = (U * LANES).min(cols - first);
                    for (c, vectors) in acc.iter().enumerate() {
                        let values = vectors.map(|vector| vector.to_array());
                        let plane = &mut out[c * self.plane..][..self.plane];
                        for i in 0..count {
                            let at = out_row + self.stride.1 * (first + i);
                            let value = values[i / LANES][i % LANES];
                            if first_chunk {
                                plane[at] = value;
                            } else {
                                plane[at] += value;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Bytes of output-gradient rows one chunk of [`PixelJob`] reads per row of its phase.
const L1_CHUNK_BYTES: usize = 16 * 1024;
