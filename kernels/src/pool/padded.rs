//! A per-thread copy of one input plane with its padding written out and its columns split by
//! stride phase, so that the fast pooling kernels never test a border and always load eight
//! consecutive floats.
//!
//! Along the width, output `ox` reads padded column `ox * stride + kx * dilation`. Storing the
//! padded row as `stride` sub-rows ("phases"), where phase `r` holds padded columns
//! `r, r + stride, r + 2 * stride, ...`, puts the columns that eight neighbouring outputs read
//! for one tap next to each other: tap `kx` of outputs `ox0..ox0 + 8` is the run starting at
//! index `ox0 + kx * dilation / stride` of phase `kx * dilation % stride`. With stride 1 there is
//! one phase and the copy is a padded plane.
//!
//! Each phase is long enough for every window of every output, plus the lanes of a last,
//! partial vector of outputs, and is a whole number of vectors, so loads need no bounds tests
//! beyond the slice's own.

use crate::lanes::LANES;
use crate::Pool2dGeometry;

/// Where each padded position of one plane lives in the buffer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PaddedLayout {
    in_width: usize,
    pad_top: usize,
    pad_left: usize,
    rows: usize,
    phases: usize,
    phase_len: usize,
    dilation_x: usize,
}

impl PaddedLayout {
    pub(crate) fn new(g: &Pool2dGeometry) -> Self {
        let (out_h, out_w) = (g.out_height(), g.out_width());
        let span_y = (g.kernel.0 - 1) * g.dilation.0 + 1;
        let span_x = (g.kernel.1 - 1) * g.dilation.1 + 1;
        let rows = (g.in_height + 2 * g.padding.0).max((out_h - 1) * g.stride.0 + span_y);
        let padded_width = (g.in_width + 2 * g.padding.1).max((out_w - 1) * g.stride.1 + span_x);
        let phases = g.stride.1;
        let vector_outputs = out_w.div_ceil(LANES) * LANES;
        // Whole vectors over every output plus the farthest tap, and whole vectors over the
        // positions a backward pass gathers into (`out_w + (span_x - 1) / phases` of them).
        let phase_len = padded_width
            .div_ceil(phases)
            .max((vector_outputs + (span_x - 1) / phases).div_ceil(LANES) * LANES);
        PaddedLayout {
            in_width: g.in_width,
            pad_top: g.padding.0,
            pad_left: g.padding.1,
            rows,
            phases,
            phase_len,
            dilation_x: g.dilation.1,
        }
    }

    /// Length of the buffer.
    pub(crate) fn len(&self) -> usize {
        self.rows * self.phases * self.phase_len
    }

    /// Buffer index of padded row `padded_row`, phase 0, position 0.
    #[inline]
    pub(crate) fn row_start(&self, padded_row: usize) -> usize {
        padded_row * self.phases * self.phase_len
    }

    /// Offset from a row start to where tap `kx` of output column 0 lives; output `ox` of the
    /// same tap is `ox` further on.
    #[inline]
    pub(crate) fn tap_offset(&self, kx: usize) -> usize {
        let column = kx * self.dilation_x;
        (column % self.phases) * self.phase_len + column / self.phases
    }

    /// Copies the real elements of `plane` to their places in `buffer`; the padding positions
    /// are left as they are (callers fill them once with `-inf` or zero).
    pub(crate) fn scatter_plane(&self, plane: &[f32], buffer: &mut [f32]) {
        let row_len = self.phases * self.phase_len;
        for (y, row) in plane.chunks_exact(self.in_width).enumerate() {
            let padded_row = &mut buffer[self.row_start(y + self.pad_top)..][..row_len];
            match self.phases {
                1 => padded_row[self.pad_left..][..self.in_width].copy_from_slice(row),
                2 => self.split_row_in_two(row, padded_row),
                _ => {
                    for phase in 0..self.phases {
                        let Some((first_x, first_j)) = self.first_in_phase(phase) else {
                            continue;
                        };
                        let phase_row = &mut padded_row[phase * self.phase_len + first_j..];
                        let columns = row[first_x..].iter().step_by(self.phases);
                        for (slot, &value) in phase_row.iter_mut().zip(columns) {
                            *slot = value;
                        }
                    }
                }
            }
        }
    }

    /// Stride 2: even padded columns to phase 0, odd ones to phase 1, one pass over pairs.
    fn split_row_in_two(&self, row: &[f32], padded_row: &mut [f32]) {
        let (even, odd) = padded_row.split_at_mut(self.phase_len);
        // With odd padding, input column 0 is odd: it goes alone, and pairs start at column 1.
        let lone = self.pad_left % 2;
        if lone == 1 {
            odd[self.pad_left / 2] = row[0];
        }
        let first_j = self.pad_left.div_ceil(2);
        let pairs = row[lone..].chunks_exact(2);
        if let [last] = pairs.remainder() {
            even[first_j + (row.len() - lone) / 2] = *last;
        }
        for ((even_slot, odd_slot), pair) in even[first_j..]
            .iter_mut()
            .zip(&mut odd[first_j..])
            .zip(pairs)
        {
            *even_slot = pair[0];
            *odd_slot = pair[1];
        }
    }

    /// The inverse of [`PaddedLayout::scatter_plane`]: copies the real positions of `buffer`
    /// back to `plane` (used by backward passes that accumulate into the padded buffer).
    pub(crate) fn gather_plane(&self, buffer: &[f32], plane: &mut [f32]) {
        for (y, row) in plane.chunks_exact_mut(self.in_width).enumerate() {
            let padded_row = &buffer[self.row_start(y + self.pad_top)..];
            if self.phases == 1 {
                row.copy_from_slice(&padded_row[self.pad_left..][..self.in_width]);
                continue;
            }
            for phase in 0..self.phases {
                let Some((first_x, first_j)) = self.first_in_phase(phase) else {
                    continue;
                };
                let phase_row = &padded_row[phase * self.phase_len + first_j..];
                let columns = row[first_x..].iter_mut().step_by(self.phases);
                for (value, &slot) in columns.zip(phase_row) {
                    *value = slot;
                }
            }
        }
    }

    /// The first input column stored in `phase` and its index within the phase, if the phase
    /// holds any input column.
    fn first_in_phase(&self, phase: usize) -> Option<(usize, usize)> {
        // Padded column j * phases + phase holds input column j * phases + phase - pad_left.
        let first_j = self.pad_left.saturating_sub(phase).div_ceil(self.phases);
        let first_x = first_j * self.phases + phase - self.pad_left;
        (first_x < self.in_width).then_some((first_x, first_j))
    }

    /// Elements in each phase of a padded row.
    pub(crate) fn phase_len(&self) -> usize {
        self.phase_len
    }
}
