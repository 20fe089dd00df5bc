//! Depthwise forward and backward-data at stride 2 on rows of whole vectors: 3 x 3 kernels with
//! padding 1, one output channel per input channel, input widths that are multiples of 16 so
//! that output rows are whole vectors too (the downsampling layers of MobileNet on 32 x 32 and
//! 16 x 16 maps).
//!
//! ## Forward
//! Output column `c` reads input columns `2c - 1`, `2c` and `2c + 1`. For the 8 output columns
//! `8j..8j + 8`, the 16 input values from column `16j` split into their even and odd columns
//! (taps `kx = 1` and `kx = 2`), and the odd columns moved up one lane, with column `16j - 1`
//! (the left padding, zero, in the first strip) entering lane 0, give tap `kx = 0`. Each input
//! row becomes these three vectors once; output row `o` takes tap row `ky` from input row
//! `2o - 1 + ky`, so the odd input rows serve two output rows. The general kernel copies every
//! plane into a scratch plane split by column phase and makes 9 loads per output vector; here
//! there is no copy.
//!
//! ## Backward-data
//! The general kernel stages the input gradient phase by phase and interleaves it back, which
//! writes every value twice and spends more time than the arithmetic. Here each output vector
//! of the input gradient, 8 columns `8j..8j + 8`, is built directly. Column `2c` is reached
//! only by tap `kx = 1` from gradient column `c`; column `2c + 1` by tap `kx = 2` from column
//! `c` and by tap `kx = 0` from column `c + 1`. So from the gradient row's values
//! `d = dy[4j..]`, two vectors do it all:
//!
//! ```text
//! a = [d0, d0, d1, d1, d2, d2, d3, d3]    times [w1, w2, w1, w2, ...] (taps kx = 1, 2)
//! b = [d1, d1, d2, d2, d3, d3, d4, d4]    times [ 0, w0,  0, w0, ...] (tap kx = 0)
//! ```
//!
//! and rows go the same way: input row `2r` is tap row `ky = 1` of gradient row `r`, and row
//! `2r + 1` is tap row 0 of gradient row `r + 1` plus tap row 2 of gradient row `r`. Each
//! gradient row is one load, two lane permutations and six multiply-adds for two output
//! vectors.
//!
//! Both passes work on strips one vector wide, down the rows. Backward-weight stays with the
//! general kernel: built the same way as the forward pass, it was slower (0.8x to 0.9x), the
//! lane shuffles of two input rows per output vector costing more than the general kernel's
//! split copy and nine loads.

use super::{for_each_plane, KEEP, LANES, NOT_LAST};
use crate::shuffle::{shift_in, split_pairs, spread_pairs};
use crate::Conv2dGeometry;
use wide::f32x8;

/// Whether `g` is served here.
pub(super) fn applies(g: &Conv2dGeometry) -> bool {
    (g.kernel_height, g.kernel_width) == (3, 3)
        && g.stride == (2, 2)
        && g.padding == (1, 1)
        && g.dilation == (1, 1)
        && g.out_channels == g.in_channels
        && g.in_width % (2 * LANES) == 0
        && g.in_width > 0
        && g.in_height > 0
}

/// `output[n, c] = bias[c] + depthwise correlation of input[n, c] with weight[c]`, at stride 2,
/// for geometries where [`applies`] holds.
pub(super) fn forward(
    g: &Conv2dGeometry,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
) {
    debug_assert!(applies(g));
    let in_plane = g.in_height * g.in_width;
    let out_plane = g.out_height() * g.out_width();
    for_each_plane(
        output,
        out_plane,
        g.in_channels,
        |plane_index, channel, out| {
            let plane = Plane {
                input,
                start: plane_index * in_plane,
                height: g.in_height,
                width: g.in_width,
            };
            let taps: &[f32; 9] = weight[channel * 9..][..9].try_into().unwrap();
            let bias = bias.map_or(0.0, |b| b[channel]);
            filter_plane(&plane, taps, bias, out);
        },
    );
}

/// One input plane, `height` rows of `width` at `input[start..]`.
struct Plane<'a> {
    input: &'a [f32],
    start: usize,
    height: usize,
    width: usize,
}

impl Plane<'_> {
    /// For the output columns `8j..8j + 8` (`column = 16j`), input row `iy`'s columns `2c - 1`,
    /// `2c` and `2c + 1` (taps `kx` 0, 1, 2), or zeros for rows in the padding.
    #[inline(always)]
    fn taps_of_row(&self, iy: usize, column: usize) -> [f32x8; 3] {
        if iy >= self.height {
            return [f32x8::ZERO; 3];
        }
        let at = self.start + iy * self.width + column;
        let sixteen: &[f32; 2 * LANES] = self.input[at..at + 2 * LANES].try_into().unwrap();
        let (even, odd) = split_pairs(sixteen);
        // Column `16j - 1` enters lane 0: the left padding in the first strip.
        let left = if column == 0 { 0.0 } else { self.input[at - 1] };
        [
            f32x8::from(shift_in(left, &odd)),
            f32x8::from(even),
            f32x8::from(odd),
        ]
    }
}

/// One output plane (`out`, rows of `width / 2`) from `plane`, strip by strip: output row `o`
/// sums tap row `ky` of input row `2o - 1 + ky`; the odd input row below is kept for the next
/// output row.
#[inline(always)]
fn filter_plane(plane: &Plane, taps: &[f32; 9], bias: f32, out: &mut [f32]) {
    let out_width = plane.width / 2;
    let out_height = out.len() / out_width;
    let w: [f32x8; 9] = std::array::from_fn(|t| f32x8::splat(taps[t]));
    let bias = f32x8::splat(bias);
    for column in (0..plane.width).step_by(2 * LANES) {
        let mut above = [f32x8::ZERO; 3];
        for oy in 0..out_height {
            let centre = plane.taps_of_row(2 * oy, column);
            let below = plane.taps_of_row(2 * oy + 1, column);
            let top = above[0].mul_add(w[0], above[1].mul_add(w[1], above[2] * w[2]));
            let middle =
                centre[0].mul_add(w[3], centre[1].mul_add(w[4], centre[2].mul_add(w[5], bias)));
            let bottom = below[0].mul_add(w[6], below[1].mul_add(w[7], below[2] * w[8]));
            let out: &mut [f32; LANES] = (&mut out[oy * out_width + column / 2..][..LANES])
                .try_into()
                .unwrap();
            *out = (top + middle + bottom).to_array();
            above = below;
        }
    }
}

/// `grad_input = d(loss)/d(input)` for geometries where [`applies`] holds.
pub(super) fn backward_data(
    g: &Conv2dGeometry,
    grad_output: &[f32],
    weight: &[f32],
    grad_input: &mut [f32],
) {
    debug_assert!(applies(g));
    let in_plane = g.in_height * g.in_width;
    let out_plane = g.out_height() * g.out_width();
    for_each_plane(
        grad_input,
        in_plane,
        g.in_channels,
        |plane_index, channel, dx| {
            let start = plane_index * out_plane;
            let taps: &[f32; 9] = weight[channel * 9..][..9].try_into().unwrap();
            spread_plane(grad_output, start, g.out_width(), taps, dx, g.in_width);
        },
    );
}

/// One input-gradient plane (`dx`, rows of `in_width`) from the gradient plane at
/// `dy[start..]` (rows of `out_width`, `in_width / 2`), strip by strip.
#[inline(always)]
fn spread_plane(
    dy: &[f32],
    start: usize,
    out_width: usize,
    taps: &[f32; 9],
    dx: &mut [f32],
    in_width: usize,
) {
    let in_height = dx.len() / in_width;
    let out_height = in_height.div_ceil(2);
    // Per tap row: `[w1, w2, w1, w2, ...]` and `[0, w0, 0, w0, ...]`.
    let near: [f32x8; 3] =
        std::array::from_fn(|ky| f32x8::from(std::array::from_fn(|l| taps[3 * ky + 1 + l % 2])));
    let far: [f32x8; 3] = std::array::from_fn(|ky| {
        f32x8::from(std::array::from_fn(|l| {
            if l % 2 == 1 {
                taps[3 * ky]
            } else {
                0.0
            }
        }))
    });
    for column in (0..in_width).step_by(LANES) {
        // Lane 7 of `b` is gradient column `column / 2 + 4`, past the row in the last strip:
        // cleared there, whatever the next row holds.
        let keep = if column + LANES == in_width {
            NOT_LAST
        } else {
            [KEEP; LANES]
        };
        let keep = f32x8::from(keep);
        let row = |r: usize| {
            let (a, b) = spread_pairs(&eight_from(dy, start + r * out_width + column / 2));
            (f32x8::from(a), f32x8::from(b) & keep)
        };
        let mut store = |iy: usize, v: f32x8| {
            let out: &mut [f32; LANES] = (&mut dx[iy * in_width + column..][..LANES])
                .try_into()
                .unwrap();
            *out = v.to_array();
        };
        // Tap row 2 of the gradient row above, waiting for tap row 0 of the next one.
        let mut pending = f32x8::ZERO;
        for r in 0..out_height {
            let (a, b) = row(r);
            let part = |ky: usize| a.mul_add(near[ky], b * far[ky]);
            if r > 0 {
                store(2 * r - 1, pending + part(0));
            }
            store(2 * r, part(1));
            pending = part(2);
        }
        if 2 * out_height - 1 < in_height {
            store(2 * out_height - 1, pending);
        }
    }
}

/// The 8 values at `values[at..]`, zeros past the end of `values`.
#[inline(always)]
fn eight_from(values: &[f32], at: usize) -> [f32; LANES] {
    match values.get(at..at + LANES) {
        Some(eight) => eight.try_into().unwrap(),
        None => std::array::from_fn(|i| values.get(at + i).copied().unwrap_or(0.0)),
    }
}
