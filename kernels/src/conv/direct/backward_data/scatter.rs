//! The channel-vectorised job of backward-data.

use crate::conv::direct::{lane_bases, tile, Taps, LANES};
use wide::f32x8;

/// One channel block over all pixels of one phase, storing through an index table.
pub(super) struct ScatterJob<'a> {
    pub(super) source: &'a [f32],
    pub(super) bases: &'a [usize],
    pub(super) stores: &'a [usize],
    /// In the order `(row tap, out channel, col tap)`.
    pub(super) taps: Taps<'a>,
    /// Per row of the phase, the row taps that read real rows (see `Phase::row_taps`).
    pub(super) row_taps: &'a [(usize, usize)],
    pub(super) taps_per_row_tap: usize,
    /// Columns of the phase.
    pub(super) cols: usize,
    pub(super) plane: usize,
}

impl ScatterJob<'_> {
    pub(super) fn run<const V: usize, const P: usize>(
        &self,
        weights: &[[f32x8; V]],
        out: &mut [f32],
    ) {
        let channels = out.len() / self.plane;
        let pixels = self.bases.len();
        for first in (0..pixels).step_by(P) {
            let lanes = lane_bases::<P>(self.bases, first);
            // The row taps any pixel of the tile needs; the rest read only zeros.
            let rows = first / self.cols..=(pixels.min(first + P) - 1) / self.cols;
            let (from, to) = self.row_taps[rows]
                .iter()
                .fold((usize::MAX, 0), |(from, to), &(row_first, row_end)| {
                    (from.min(row_first), to.max(row_end))
                });
            let taps = from.min(to) * self.taps_per_row_tap..to * self.taps_per_row_tap;
            let acc = tile::<V, P>(
                self.source,
                &lanes,
                self.taps.slice(taps.clone()),
                &weights[taps],
            );
            let acc = acc.map(|row| row.map(|vector| vector.to_array()));
            let stores = &self.stores[first..self.bases.len().min(first + P)];
            for channel in 0..channels {
                let (v, lane) = (channel / LANES, channel % LANES);
                let plane = &mut out[channel * self.plane..][..self.plane];
                for (p, &at) in stores.iter().enumerate() {
                    plane[at] = acc[p][v][lane];
                }
            }
        }
    }
}
