//! The channel-vectorised job of backward-data.

use crate::conv::direct::{lane_bases, tile, Taps, LANES};
use wide::f32x8;

/// One channel block over all pixels of one phase, storing through an index table.
pub(super) struct ScatterJob<'a> {
    pub(super) source: &'a [f32],
    pub(super) bases: &'a [usize],
    pub(super) stores: &'a [usize],
    pub(super) taps: Taps<'a>,
    pub(super) plane: usize,
}

impl ScatterJob<'_> {
    pub(super) fn run<const V: usize, const P: usize>(
        &self,
        weights: &[[f32x8; V]],
        out: &mut [f32],
    ) {
        let channels = out.len() / self.plane;
        for first in (0..self.bases.len()).step_by(P) {
            let lanes = lane_bases::<P>(self.bases, first);
            let acc = tile::<V, P>(self.source, &lanes, self.taps, weights);
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
