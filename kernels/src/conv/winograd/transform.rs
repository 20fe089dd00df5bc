//! The three 2-D transforms of a scheme (`schemes.rs`), each its one-dimensional matrix applied
//! down the columns and then along the rows: the kernel's (`U = G g G^T`, once per call), the
//! input's (`V = B^T d B`, 8 tiles per vector) and the output's (`Y = A^T M A`, 8 tiles per
//! vector).

use super::schemes::{Scheme, MAX_OUTPUT, MAX_SIDE};
use crate::conv::padded::SplitInput;
use crate::conv::tile::LANES;
use wide::f32x8;

/// Positions of the largest transformed tile.
pub(super) const MAX_POSITIONS: usize = MAX_SIDE * MAX_SIDE;

/// `U = G g G^T` for a 3 x 3 kernel `g` (row-major), as `S::SIDE^2` values `U[SIDE i + j]`.
pub(super) fn kernel<S: Scheme>(g: &[f32; 9]) -> [f32; MAX_POSITIONS] {
    // Down the columns: `t = G g`, SIDE x 3.
    let columns: [[f32; MAX_SIDE]; 3] =
        std::array::from_fn(|j| S::kernel_side([g[j], g[3 + j], g[6 + j]]));
    // Along the rows: `U = t G^T`, SIDE x SIDE.
    let mut u = [0.0; MAX_POSITIONS];
    for i in 0..S::SIDE {
        let row = S::kernel_side([columns[0][i], columns[1][i], columns[2][i]]);
        u[S::SIDE * i..S::SIDE * (i + 1)].copy_from_slice(&row[..S::SIDE]);
    }
    u
}

/// Where a run of tiles reads its input: tiles `column..column + count` of tile row `row` of one
/// image.
#[derive(Clone, Copy, Debug)]
pub(super) struct Run {
    pub(super) image: usize,
    pub(super) row: usize,
    pub(super) column: usize,
    pub(super) count: usize,
}

/// Writes `V = B^T d B` of every input channel for a run of tiles into `v`, laid out
/// `[position][channel][slot]` with `stride` slots per channel; the run's tiles take the slots
/// from `slot` on. Whole vectors are stored, so up to 7 slots past the run are overwritten with
/// values of no meaning (the caller leaves room for them and fills later slots afterwards).
///
/// Tile `(row, column)` covers padded rows and columns from `S::STEP * row + S::SHIFT` and
/// `S::STEP * column + S::SHIFT`, `S::INPUT` of each. The split input holds padded column `x` at
/// index `x / S::STEP` of phase `x % S::STEP`, so a tile's column `c` (padded column
/// `x = S::STEP * column + S::SHIFT + c`) is value `column + (S::SHIFT + c) / S::STEP` of phase
/// `(S::SHIFT + c) % S::STEP`: 8 consecutive tiles read 8 consecutive values.
pub(super) fn input<S: Scheme>(
    split: &SplitInput,
    channels: usize,
    run: Run,
    v: &mut [f32],
    (slot, stride): (usize, usize),
) {
    let source = &split.planes[..];
    let load = |at: usize| f32x8::from(<[f32; LANES]>::try_from(&source[at..at + LANES]).unwrap());
    let columns = columns::<S>(split);
    for channel in 0..channels {
        let first_row = channel * split.height + S::STEP * run.row + S::SHIFT;
        let base = run.image * split.image + first_row * split.row + run.column;
        for start in (0..run.count).step_by(LANES) {
            let first = base + start;
            let at = |xi: usize| (xi * channels + channel) * stride + slot + start;
            patch::<S>(
                |r, c| load(first + r * split.row + columns[c]),
                |xi, value| {
                    let dst: &mut [f32; LANES] =
                        (&mut v[at(xi)..at(xi) + LANES]).try_into().unwrap();
                    *dst = value.to_array();
                },
            );
        }
    }
}

/// [`input`] for whole rows of `N` tiles (`N` 1, 2 or 4: images of 4 to 16 outputs a side),
/// `8 / N` of them at a time: each vector takes `N` tiles from each run, so its lanes are full
/// where one row would fill only `N` of them. `runs` are consecutive rows of the group (their
/// slots follow one another from `slot`), at most `8 / N` of them.
pub(super) fn short_rows<S: Scheme, const N: usize>(
    split: &SplitInput,
    channels: usize,
    runs: &[Run],
    v: &mut [f32],
    (slot, stride): (usize, usize),
) {
    debug_assert!(runs.len() * N <= LANES && runs.iter().all(|run| run.count == N));
    let source = &split.planes[..];
    let columns = columns::<S>(split);
    let mut bases = [0; LANES];
    for (base, run) in bases.iter_mut().zip(runs) {
        *base = run.image * split.image + (S::STEP * run.row + S::SHIFT) * split.row + run.column;
    }
    let rows = runs.len();
    // The `N` values of each run at `offset` from its base, side by side.
    let load = |offset: usize| {
        let mut lanes = [0.0; LANES];
        for q in 0..rows {
            let at = bases[q] + offset;
            lanes[q * N..(q + 1) * N].copy_from_slice(&source[at..at + N]);
        }
        f32x8::from(lanes)
    };
    let plane = split.height * split.row;
    for channel in 0..channels {
        let first = channel * plane;
        let at = |xi: usize| (xi * channels + channel) * stride + slot;
        patch::<S>(
            |r, c| load(first + r * split.row + columns[c]),
            |xi, value| {
                let dst: &mut [f32; LANES] = (&mut v[at(xi)..at(xi) + LANES]).try_into().unwrap();
                *dst = value.to_array();
            },
        );
    }
}

/// Where column `c` of a tile's patch starts in the split input, from the start of the
/// tile's row (see [`input`]).
fn columns<S: Scheme>(split: &SplitInput) -> [usize; MAX_SIDE] {
    std::array::from_fn(|c| {
        let x = S::SHIFT + c;
        (x % S::STEP) * split.phase + x / S::STEP
    })
}

/// `V = B^T d B` of one vector of tiles: `load(r, c)` gives value `(r, c)` of their input
/// patches, and `store(ξ, V[ξ])` takes position `ξ = SIDE i + j` of the result.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // `c` indexes the columns of `down` and of the patch
fn patch<S: Scheme>(load: impl Fn(usize, usize) -> f32x8, mut store: impl FnMut(usize, f32x8)) {
    // Down the columns (`B^T d`): `down[i][c]` is value `i` of column `c`.
    let mut down = [[f32x8::ZERO; MAX_SIDE]; MAX_SIDE];
    for c in 0..S::INPUT {
        let mut d = [f32x8::ZERO; MAX_SIDE];
        for (r, value) in d.iter_mut().enumerate().take(S::INPUT) {
            *value = load(r, c);
        }
        let side = S::input_side(d);
        for i in 0..S::SIDE {
            down[i][c] = side[i];
        }
    }
    // Along the rows (`(B^T d) B`). By reference: `into_iter` moved the whole array, a `memcpy`
    // call that took a tenth of a forward pass.
    for (i, row) in down.iter().enumerate().take(S::SIDE) {
        for (j, &value) in S::input_side(*row).iter().enumerate().take(S::SIDE) {
            store(S::SIDE * i + j, value);
        }
    }
}

/// `Y = A^T M A` for 8 tiles: `m[SIDE i + j]` holds position `(i, j)` of their products; the
/// result holds output `(i, j)` at `OUTPUT i + j`.
#[inline(always)]
pub(super) fn output<S: Scheme>(m: &[f32x8; MAX_POSITIONS]) -> [f32x8; MAX_OUTPUT * MAX_OUTPUT] {
    // Down the columns: `s[j][i]` is output row `i` of column `j`.
    let mut s = [[f32x8::ZERO; MAX_OUTPUT]; MAX_SIDE];
    for (j, column) in s.iter_mut().enumerate().take(S::SIDE) {
        let mut values = [f32x8::ZERO; MAX_SIDE];
        for (i, value) in values.iter_mut().enumerate().take(S::SIDE) {
            *value = m[S::SIDE * i + j];
        }
        *column = S::output_side(values);
    }
    // Along the rows.
    let mut y = [f32x8::ZERO; MAX_OUTPUT * MAX_OUTPUT];
    for i in 0..S::OUTPUT {
        let mut values = [f32x8::ZERO; MAX_SIDE];
        for (j, value) in values.iter_mut().enumerate().take(S::SIDE) {
            *value = s[j][i];
        }
        let row = S::output_side(values);
        y[S::OUTPUT * i..S::OUTPUT * (i + 1)].copy_from_slice(&row[..S::OUTPUT]);
    }
    y
}
