//! The three transforms of F(2 x 2, 3 x 3), each the matrix sandwich of the module docs written
//! out as additions: the kernel's (`U = G g G^T`, once per call), the input's (`V = B^T d B`, 8
//! tiles per vector) and the output's (`Y = A^T M A`, 8 tiles per vector).

use crate::conv::padded::SplitInput;
use crate::conv::tile::LANES;
use wide::f32x8;

/// `U = G g G^T` for a 3 x 3 kernel `g` (row-major), as 16 values `U[4i + j]`, with
/// `G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]`.
pub(super) fn kernel(g: &[f32; 9]) -> [f32; 16] {
    // `G` applied to a column (or row) of three values.
    let side = |a: f32, b: f32, c: f32| [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
    // Down the columns: `t = G g`, 4 x 3.
    let columns: [[f32; 4]; 3] = std::array::from_fn(|j| side(g[j], g[3 + j], g[6 + j]));
    // Along the rows: `U = t G^T`, 4 x 4.
    let mut u = [0.0; 16];
    for i in 0..4 {
        let row = side(columns[0][i], columns[1][i], columns[2][i]);
        u[4 * i..4 * i + 4].copy_from_slice(&row);
    }
    u
}

/// `B^T` applied to four values: `[x0 - x2, x1 + x2, x2 - x1, x1 - x3]`.
#[inline(always)]
fn input_side(x: [f32x8; 4]) -> [f32x8; 4] {
    [x[0] - x[2], x[1] + x[2], x[2] - x[1], x[1] - x[3]]
}

/// `A^T` applied to four values: `[m0 + m1 + m2, m1 - m2 - m3]`.
#[inline(always)]
fn output_side(m: [f32x8; 4]) -> [f32x8; 2] {
    [m[0] + m[1] + m[2], m[1] - m[2] - m[3]]
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
/// Tile `(row, column)` covers padded rows `2 row .. 2 row + 4` and padded columns
/// `2 column .. 2 column + 4`, which in the split input are, per row, even values
/// `column, column + 1` and odd values `column, column + 1`: 8 consecutive tiles read 8
/// consecutive values of each.
pub(super) fn input(
    split: &SplitInput,
    channels: usize,
    run: Run,
    v: &mut [f32],
    (slot, stride): (usize, usize),
) {
    let source = &split.planes[..];
    let load = |at: usize| f32x8::from(<[f32; LANES]>::try_from(&source[at..at + LANES]).unwrap());
    for channel in 0..channels {
        let first_row = channel * split.height + 2 * run.row;
        let base = run.image * split.image + first_row * split.row + run.column;
        for start in (0..run.count).step_by(LANES) {
            // `d[r]` is row `r` of the 4 x 4 patches of 8 tiles. (Written out: `array::from_fn`
            // here was not inlined, a tenth of a forward pass.)
            let mut d = [[f32x8::ZERO; 4]; 4];
            for (r, row) in d.iter_mut().enumerate() {
                let even = base + r * split.row + start;
                let odd = even + split.phase;
                *row = [load(even), load(odd), load(even + 1), load(odd + 1)];
            }
            // Down the columns (`B^T d`), then along the rows (`(B^T d) B`).
            let down = [
                sub4(d[0], d[2]),
                add4(d[1], d[2]),
                sub4(d[2], d[1]),
                sub4(d[1], d[3]),
            ];
            for (i, row) in down.into_iter().enumerate() {
                for (j, value) in input_side(row).into_iter().enumerate() {
                    let at = ((4 * i + j) * channels + channel) * stride + slot + start;
                    let dst: &mut [f32; LANES] = (&mut v[at..at + LANES]).try_into().unwrap();
                    *dst = value.to_array();
                }
            }
        }
    }
}

/// `a - b`, four vectors at a time.
#[inline(always)]
fn sub4(a: [f32x8; 4], b: [f32x8; 4]) -> [f32x8; 4] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2], a[3] - b[3]]
}

/// `a + b`, four vectors at a time.
#[inline(always)]
fn add4(a: [f32x8; 4], b: [f32x8; 4]) -> [f32x8; 4] {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3]]
}

/// `Y = A^T M A` for 8 tiles: `m[4i + j]` holds position `(i, j)` of their products, the result
/// is `[y00, y01, y10, y11]` (row-major within each 2 x 2 output block).
#[inline(always)]
pub(super) fn output(m: [f32x8; 16]) -> [f32x8; 4] {
    let column = |j: usize| output_side([m[j], m[4 + j], m[8 + j], m[12 + j]]);
    let s = [column(0), column(1), column(2), column(3)];
    let [y00, y01] = output_side([s[0][0], s[1][0], s[2][0], s[3][0]]);
    let [y10, y11] = output_side([s[0][1], s[1][1], s[2][1], s[3][1]]);
    [y00, y01, y10, y11]
}
