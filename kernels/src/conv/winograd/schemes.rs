//! The one-dimensional algorithms the 2-D passes are built from. Each is three small matrices
//! written out as additions: `G` takes 3 kernel taps to `SIDE` values, `B^T` takes `INPUT`
//! input values to `SIDE` values, and `A^T` takes the `SIDE` products to `OUTPUT` outputs. The
//! 2-D transforms (`transform.rs`) apply each down the columns and then along the rows, so a
//! tile costs `SIDE * SIDE` products per pair of channels.
//!
//! | scheme | pass | input tile (step) | products | outputs | direct multiply-adds |
//! |---|---|---|---:|---|---:|
//! | [`UnitStride`] | stride 1 | 4 (2) | 16 | 2 x 2 | 36 |
//! | [`UnitStrideFour`] | stride 1 | 6 (4) | 36 | 4 x 4 | 144 |
//! | [`StrideTwo`] | stride 2 | 5 (4) | 25 | 2 x 2 | 36 |
//! | [`StrideTwoBackEven`] | backward-data of stride 2, padding 0 | 3 (2) | 25 | 4 x 4 | 36 |
//! | [`StrideTwoBackOdd`] | backward-data of stride 2, padding 1 | 3 (2) | 25 | 4 x 4 | 36 |

use wide::f32x8;

/// The most values any scheme has on a side of its transformed tile, and of its input tile.
pub(super) const MAX_SIDE: usize = 6;
/// The most outputs any scheme gives along a side.
pub(super) const MAX_OUTPUT: usize = 4;

/// A one-dimensional minimal-filtering algorithm for a 3-tap kernel. Entries past `SIDE` (or
/// `OUTPUT`) in the arrays are unused.
pub(super) trait Scheme {
    /// Input values one tile reads along an axis.
    const INPUT: usize;
    /// Input values from one tile to the next along an axis; also the column phases the input
    /// is split into, so that 8 consecutive tiles read 8 consecutive values.
    const STEP: usize;
    /// Padded rows (and columns) before the first tile's first value.
    const SHIFT: usize;
    /// Transformed values along an axis.
    const SIDE: usize;
    /// Outputs one tile gives along an axis.
    const OUTPUT: usize;
    /// Positions `ξ` of the transformed tile: products per tile and pair of channels.
    const POSITIONS: usize = Self::SIDE * Self::SIDE;

    /// `G`: the kernel taps `[w0, w1, w2]` to `SIDE` values.
    fn kernel_side(w: [f32; 3]) -> [f32; MAX_SIDE];
    /// `B^T`: `INPUT` input values to `SIDE` values.
    fn input_side(x: [f32x8; MAX_SIDE]) -> [f32x8; MAX_SIDE];
    /// `A^T`: `SIDE` products to `OUTPUT` outputs.
    fn output_side(m: [f32x8; MAX_SIDE]) -> [f32x8; MAX_OUTPUT];
}

const ZERO: f32x8 = f32x8::ZERO;

/// F(2, 3), Lavin and Gray's: `y0 = w0 x0 + w1 x1 + w2 x2`, `y1 = w0 x1 + w1 x2 + w2 x3` from
/// 4 products, with
/// `G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]`, `B^T` and `A^T` as in the module docs.
pub(super) struct UnitStride;

impl Scheme for UnitStride {
    const INPUT: usize = 4;
    const STEP: usize = 2;
    const SHIFT: usize = 0;
    const SIDE: usize = 4;
    const OUTPUT: usize = 2;

    #[inline(always)]
    fn kernel_side([a, b, c]: [f32; 3]) -> [f32; MAX_SIDE] {
        [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c, 0.0, 0.0]
    }

    #[inline(always)]
    fn input_side(x: [f32x8; MAX_SIDE]) -> [f32x8; MAX_SIDE] {
        [
            x[0] - x[2],
            x[1] + x[2],
            x[2] - x[1],
            x[1] - x[3],
            ZERO,
            ZERO,
        ]
    }

    #[inline(always)]
    fn output_side(m: [f32x8; MAX_SIDE]) -> [f32x8; MAX_OUTPUT] {
        [m[0] + m[1] + m[2], m[1] - m[2] - m[3], ZERO, ZERO]
    }
}

/// F(4, 3), Lavin and Gray's larger one: 4 outputs from 6 products, where F(2, 3) gives 2 from
/// 4. It interpolates at the points 0, 1, -1, 2, -2 and infinity:
///
/// ```text
///       | 4  0 -5  0  1  0 |        |  1/4     0     0  |
///       | 0 -4 -4  1  1  0 |        | -1/6  -1/6  -1/6  |        | 1  1  1  1  1  0 |
/// B^T = | 0  4 -4 -1  1  0 |    G = | -1/6   1/6  -1/6  |  A^T = | 0  1 -1  2 -2  0 |
///       | 0 -2 -1  2  1  0 |        |  1/24  1/12  1/6  |        | 0  1  1  4  4  0 |
///       | 0  2 -1 -2  1  0 |        |  1/24 -1/12  1/6  |        | 0  1 -1  8 -8  1 |
///       | 0  4  0 -5  0  1 |        |  0     0     1    |
/// ```
///
/// The constants up to 8 cost precision: see the module docs of `winograd`.
pub(super) struct UnitStrideFour;

impl Scheme for UnitStrideFour {
    const INPUT: usize = 6;
    const STEP: usize = 4;
    const SHIFT: usize = 0;
    const SIDE: usize = 6;
    const OUTPUT: usize = 4;

    #[inline(always)]
    fn kernel_side([a, b, c]: [f32; 3]) -> [f32; MAX_SIDE] {
        // Multiplied by the reciprocals: a division per value took a tenth of a pass at
        // 16 x 16, where the kernels are transformed once per call.
        const SIXTH: f32 = 1.0 / 6.0;
        const TWENTY_FOURTH: f32 = 1.0 / 24.0;
        let (even, odd) = (a + c, b);
        let (even4, odd2) = (a + 4.0 * c, 2.0 * b);
        [
            0.25 * a,
            -(even + odd) * SIXTH,
            -(even - odd) * SIXTH,
            (even4 + odd2) * TWENTY_FOURTH,
            (even4 - odd2) * TWENTY_FOURTH,
            c,
        ]
    }

    #[inline(always)]
    fn input_side(x: [f32x8; MAX_SIDE]) -> [f32x8; MAX_SIDE] {
        // Rows 1 and 2 share `x4 - 4 x2` and `x3 - 4 x1`; rows 3 and 4 `x4 - x2` and
        // `2 (x3 - x1)`.
        let four = f32x8::splat(4.0);
        let a = x[4] - four * x[2];
        let b = x[3] - four * x[1];
        let c = x[4] - x[2];
        let d = (x[3] - x[1]) * f32x8::splat(2.0);
        [
            four * x[0] - f32x8::splat(5.0) * x[2] + x[4],
            a + b,
            a - b,
            c + d,
            c - d,
            four * x[1] - f32x8::splat(5.0) * x[3] + x[5],
        ]
    }

    #[inline(always)]
    fn output_side(m: [f32x8; MAX_SIDE]) -> [f32x8; MAX_OUTPUT] {
        let (sum12, diff12) = (m[1] + m[2], m[1] - m[2]);
        let (sum34, diff34) = (m[3] + m[4], m[3] - m[4]);
        [
            m[0] + sum12 + sum34,
            diff12 + f32x8::splat(2.0) * diff34,
            sum12 + f32x8::splat(4.0) * sum34,
            diff12 + f32x8::splat(8.0) * diff34 + m[5],
        ]
    }
}

/// Two outputs of a stride-2 convolution, `y0 = w0 x0 + w1 x1 + w2 x2` and
/// `y1 = w0 x2 + w1 x3 + w2 x4`, from 5 products instead of 6. The even inputs `x0, x2, x4` meet
/// the taps `w0, w2` as a stride-1 convolution with a 2-tap kernel, which F(2, 2) does in 3
/// products (`(x0 - x2) w0`, `x2 (w0 + w2)`, `(x4 - x2) w2`); the odd inputs meet `w1` alone.
pub(super) struct StrideTwo;

impl Scheme for StrideTwo {
    const INPUT: usize = 5;
    const STEP: usize = 4;
    const SHIFT: usize = 0;
    const SIDE: usize = 5;
    const OUTPUT: usize = 2;

    #[inline(always)]
    fn kernel_side([w0, w1, w2]: [f32; 3]) -> [f32; MAX_SIDE] {
        [w0, w0 + w2, w2, w1, w1, 0.0]
    }

    #[inline(always)]
    fn input_side(x: [f32x8; MAX_SIDE]) -> [f32x8; MAX_SIDE] {
        [x[0] - x[2], x[2], x[4] - x[2], x[1], x[3], ZERO]
    }

    #[inline(always)]
    fn output_side(m: [f32x8; MAX_SIDE]) -> [f32x8; MAX_OUTPUT] {
        [m[0] + m[1] + m[3], m[1] + m[2] + m[4], ZERO, ZERO]
    }
}

// Backward-data of a stride-2 convolution. Input-gradient position `q` (counted in the padded
// input) gets `w1 dy[m]` when `q = 2m + 1` is odd, and `w0 dy[m] + w2 dy[m - 1]` when `q = 2m`
// is even: the even positions are a stride-1 convolution of `dy` with the 2-tap kernel
// `(w2, w0)` (F(2, 2) again: 3 products for 2 outputs), the odd ones a 1-tap one. A tile of
// 3 values of `dy` gives 4 consecutive positions from 5 products, where the direct kernel
// spends 6. Which parity comes first depends on the padding: the tiles start at input row and
// column 0, which is padded position `p`.

/// Backward-data of stride 2 with padding 0: positions `4b .. 4b + 4` (even, odd, even, odd)
/// from `d = dy[2b - 1 .. 2b + 2]` (the output gradient padded by 1, no shift).
pub(super) struct StrideTwoBackEven;

impl Scheme for StrideTwoBackEven {
    const INPUT: usize = 3;
    const STEP: usize = 2;
    const SHIFT: usize = 0;
    const SIDE: usize = 5;
    const OUTPUT: usize = 4;

    #[inline(always)]
    fn kernel_side([w0, w1, w2]: [f32; 3]) -> [f32; MAX_SIDE] {
        [w2, w2 + w0, w0, w1, w1, 0.0]
    }

    #[inline(always)]
    fn input_side(d: [f32x8; MAX_SIDE]) -> [f32x8; MAX_SIDE] {
        [d[0] - d[1], d[1], d[2] - d[1], d[1], d[2], ZERO]
    }

    #[inline(always)]
    fn output_side(m: [f32x8; MAX_SIDE]) -> [f32x8; MAX_OUTPUT] {
        [m[0] + m[1], m[3], m[1] + m[2], m[4]]
    }
}

/// Backward-data of stride 2 with padding 1: padded positions `4b + 1 .. 4b + 5` (odd, even,
/// odd, even), which are input rows `4b .. 4b + 4`, from `d = dy[2b .. 2b + 3]` (the output
/// gradient padded by 1, shifted by 1).
pub(super) struct StrideTwoBackOdd;

impl Scheme for StrideTwoBackOdd {
    const INPUT: usize = 3;
    const STEP: usize = 2;
    const SHIFT: usize = 1;
    const SIDE: usize = 5;
    const OUTPUT: usize = 4;

    #[inline(always)]
    fn kernel_side(w: [f32; 3]) -> [f32; MAX_SIDE] {
        StrideTwoBackEven::kernel_side(w)
    }

    #[inline(always)]
    fn input_side(d: [f32x8; MAX_SIDE]) -> [f32x8; MAX_SIDE] {
        [d[0] - d[1], d[1], d[2] - d[1], d[0], d[1], ZERO]
    }

    #[inline(always)]
    fn output_side(m: [f32x8; MAX_SIDE]) -> [f32x8; MAX_OUTPUT] {
        [m[3], m[0] + m[1], m[4], m[1] + m[2]]
    }
}
