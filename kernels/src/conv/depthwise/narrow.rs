//! Depthwise forward and backward on planes whose rows are whole vectors: 3 x 3 kernels at
//! stride 1 with padding 1 on maps 8, 16, 32, ... pixels wide (the maps of MobileNet and
//! Xception on small images, and most of them at 224 x 224). Backward-data, with one output
//! channel per input channel, is the same filter with the kernel turned by 180 degrees;
//! backward-weight walks the same window.
//!
//! The plane is cut into strips one vector wide, and each strip is filtered down its rows.
//! Each input row of a strip is loaded once as three vectors: itself, and itself shifted one
//! column right and one left, read one value before and one after it. In the first strip the
//! lane left of the row is set to zero, and in the last strip the lane right of it, with a
//! bitwise mask, so whatever the neighbouring row holds never reaches the sum; inner strips
//! read their true neighbours. Tap `(ky, kx)` of output row `o` is then shift `kx` of input row
//! `o + ky - 1`: 9 FMAs per output vector on values already in registers, and 3 loads, where
//! the general kernel makes 9 loads from a padded copy of the plane it first has to write.
//!
//! In builds with AVX-512, planes whose width is a multiple of 16 use strips of 16 (`f32x16`):
//! the same loads and FMAs on twice the lanes (`vector.rs`).

use super::vector::Vector;
use super::{for_each_plane, LANES};
use crate::conv::tile::PAIRED;
use crate::Conv2dGeometry;
use wide::{f32x16, f32x8};

/// Whether planes `width` wide are filtered in strips of 16 (AVX-512 builds) rather than 8.
fn wide_strips(width: usize) -> bool {
    PAIRED && width % 16 == 0
}

/// Whether `g`'s forward is served here: a 3 x 3 kernel at unit stride and dilation with
/// padding 1, on input rows of whole vectors (so output rows are the same).
pub(super) fn applies(g: &Conv2dGeometry) -> bool {
    g.in_width % LANES == 0
        && g.in_width > 0
        && (g.kernel_height, g.kernel_width) == (3, 3)
        && g.stride == (1, 1)
        && g.padding == (1, 1)
        && g.dilation == (1, 1)
}

/// `output[n, co] = bias[co] + depthwise correlation of input[n, co / multiplier] with weight[co]`
/// for geometries where [`applies`] holds.
pub(super) fn forward(
    g: &Conv2dGeometry,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
) {
    run(g, input, weight, bias, false, output);
}

/// `grad_input = d(loss)/d(input)` where [`applies`] holds and every input channel has one output
/// channel: at stride 1 with padding 1, the input gradient is the same filter turned by 180
/// degrees, run over the output gradient.
pub(super) fn backward_data(
    g: &Conv2dGeometry,
    grad_output: &[f32],
    weight: &[f32],
    grad_input: &mut [f32],
) {
    debug_assert_eq!(g.out_channels, g.in_channels);
    run(g, grad_output, weight, None, true, grad_input);
}

/// Filters every plane of `source` into `output`, with each kernel turned by 180 degrees when
/// `turn` (then `multiplier` must be 1).
fn run(
    g: &Conv2dGeometry,
    source: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    turn: bool,
    output: &mut [f32],
) {
    debug_assert!(applies(g));
    let multiplier = g.out_channels / g.in_channels;
    let width = g.in_width;
    let plane = g.in_height * width;
    let out_group = multiplier * plane;
    for_each_plane(
        output,
        out_group,
        g.in_channels,
        |plane_index, in_channel, out_planes| {
            let start = plane_index * plane;
            for (m, out) in out_planes.chunks_exact_mut(plane).enumerate() {
                let co = in_channel * multiplier + m;
                let mut taps: [f32; 9] = weight[co * 9..][..9].try_into().unwrap();
                if turn {
                    taps.reverse();
                }
                let bias = bias.map_or(0.0, |b| b[co]);
                if wide_strips(width) {
                    filter_plane::<f32x16>(source, start, width, &taps, bias, out);
                } else {
                    filter_plane::<f32x8>(source, start, width, &taps, bias, out);
                }
            }
        },
    );
}

/// One output plane (`out`, rows of `width`) from the input plane at `input[start..]` of as
/// many rows, strip by strip. A window of three input rows slides down each strip; each output
/// vector sums them as three independent chains of 3 FMAs, so consecutive rows overlap in the
/// pipeline.
#[inline(always)]
fn filter_plane<V: Vector>(
    input: &[f32],
    start: usize,
    width: usize,
    taps: &[f32; 9],
    bias: f32,
    out: &mut [f32],
) {
    let height = out.len() / width;
    let w: [V; 9] = std::array::from_fn(|t| V::splat(taps[t]));
    let bias = V::splat(bias);
    for column in (0..width).step_by(V::LANES) {
        let strip = Strip::<V>::new(input, start, width, height, column);
        let mut above = [V::ZERO; 3];
        let mut middle = strip.row(0);
        for oy in 0..height {
            let below = strip.row(oy + 1);
            let top = above[0].mul_add(w[0], above[1].mul_add(w[1], above[2] * w[2]));
            let centre =
                middle[0].mul_add(w[3], middle[1].mul_add(w[4], middle[2].mul_add(w[5], bias)));
            let bottom = below[0].mul_add(w[6], below[1].mul_add(w[7], below[2] * w[8]));
            (top + centre + bottom).store(&mut out[oy * width + column..]);
            above = middle;
            middle = below;
        }
    }
}

/// Adds the weight gradient of one plane to `acc` (one vector per tap, summed across lanes by
/// the caller): `acc[3 ky + kx] += dy[oy] * (shift kx of input row oy + ky - 1)` over the rows
/// (of `width`) of one output-gradient plane `dy` and the input plane at `input[start..]`,
/// strip by strip. The loop runs over input rows: row `r`'s three shifts meet the gradient
/// rows `r + 1` (taps `ky = 0`), `r` and `r - 1`, loaded again from L1 rather than kept, so
/// the 9 accumulators, the shifts and the gradient vectors fit in the registers.
#[inline(always)]
pub(super) fn accumulate_weight(
    input: &[f32],
    start: usize,
    width: usize,
    dy: &[f32],
    acc: &mut [f32x8],
) {
    let acc: &mut [f32x8; 9] = acc.try_into().unwrap();
    let sums = if wide_strips(width) {
        weight_sums::<f32x16>(input, start, width, dy).map(Vector::fold)
    } else {
        weight_sums::<f32x8>(input, start, width, dy)
    };
    for (acc, sum) in acc.iter_mut().zip(sums) {
        *acc += sum;
    }
}

/// The 9 sums of [`accumulate_weight`] for one plane, in vectors of `V`.
#[inline(always)]
fn weight_sums<V: Vector>(input: &[f32], start: usize, width: usize, dy: &[f32]) -> [V; 9] {
    let height = dy.len() / width;
    assert_eq!(dy.len(), height * width);
    let mut sums = [V::ZERO; 9];
    for column in (0..width).step_by(V::LANES) {
        let strip = Strip::<V>::new(input, start, width, height, column);
        // Gradient row `oy` of the strip, or zeros outside the plane.
        let d = |oy: usize| {
            if oy < height {
                V::load(&dy[oy * width + column..])
            } else {
                V::ZERO
            }
        };
        for r in 0..height {
            let (x, d) = if strip.is_inner(r) {
                let at = |oy: usize| oy * width + column;
                // SAFETY: an inner row has gradient rows `r - 1` to `r + 1` in the plane, and
                // `dy` is exactly the plane (asserted above).
                unsafe {
                    let dy = dy.as_ptr();
                    let d = [at(r + 1), at(r), at(r - 1)].map(|at| V::load_at(dy, at));
                    (strip.inner_row(r), d)
                }
            } else {
                let d = [d(r + 1), d(r), r.checked_sub(1).map_or(V::ZERO, d)];
                (strip.edge_row(r), d)
            };
            for (ky, d) in d.into_iter().enumerate() {
                for (kx, x) in x.into_iter().enumerate() {
                    sums[3 * ky + kx] = d.mul_add(x, sums[3 * ky + kx]);
                }
            }
        }
    }
    sums
}

/// The columns `column..column + V::LANES` of every row of the plane of `height` rows of
/// `width` at `input[start..]`, with the masks its shifts need: only the first strip has no
/// column left of it, and only the last none right of it.
#[derive(Clone, Copy)]
struct Strip<'a, V> {
    input: &'a [f32],
    /// Where the strip's first row starts in `input`.
    at: usize,
    width: usize,
    height: usize,
    left: V,
    right: V,
}

impl<'a, V: Vector> Strip<'a, V> {
    /// Panics unless the plane is inside `input` and `column` is a whole vector of its rows:
    /// the check the unchecked loads of [`Strip::inner_row`] rest on.
    #[inline(always)]
    fn new(input: &'a [f32], start: usize, width: usize, height: usize, column: usize) -> Self {
        assert!(start + height * width <= input.len() && column + V::LANES <= width);
        Strip {
            input,
            at: start + column,
            width,
            height,
            left: if column == 0 {
                V::mask_end(true)
            } else {
                V::keep_all()
            },
            right: if column + V::LANES == width {
                V::mask_end(false)
            } else {
                V::keep_all()
            },
        }
    }

    /// Whether row `r` has a row of the plane above and below it. Its one-column shifts then
    /// read inside the plane, past the row's ends only into the rows around it.
    #[inline(always)]
    fn is_inner(&self, r: usize) -> bool {
        r >= 1 && r + 2 <= self.height
    }

    /// Row `r` of the strip as its three shifts, or zeros below the plane (the padding under
    /// its last row).
    #[inline(always)]
    fn row(&self, r: usize) -> [V; 3] {
        if self.is_inner(r) {
            // SAFETY: checked just above.
            unsafe { self.inner_row(r) }
        } else {
            self.edge_row(r)
        }
    }

    /// [`Strip::row`] for any row, with every load checked ([`shifted`]).
    #[inline(always)]
    fn edge_row(&self, r: usize) -> [V; 3] {
        if r < self.height {
            shifted(self.input, self.at + r * self.width, self.left, self.right)
        } else {
            [V::ZERO; 3]
        }
    }

    /// [`Strip::row`] for an inner row, without bounds checks.
    ///
    /// # Safety
    /// `self.is_inner(r)`.
    #[inline(always)]
    unsafe fn inner_row(&self, r: usize) -> [V; 3] {
        let at = self.at + r * self.width;
        let base = self.input.as_ptr();
        // SAFETY: `Strip::new` checked that the plane is inside `input`; an inner row's vector
        // starts at least a row (a vector or more) after the plane's start and ends at least a
        // row before its end, so one value before and after it are inside too.
        unsafe {
            [
                V::load_at(base, at - 1) & self.left,
                V::load_at(base, at),
                V::load_at(base, at + 1) & self.right,
            ]
        }
    }
}

/// The `V::LANES` values at `input[at..]` as `[left, row, right]`: lane `x` of `left` is the
/// value before lane `x` and of `right` the value after it, each masked (`keep_left`,
/// `keep_right`) where that is outside the row.
#[inline(always)]
fn shifted<V: Vector>(input: &[f32], at: usize, keep_left: V, keep_right: V) -> [V; 3] {
    let lanes = V::LANES;
    let row = V::load(&input[at..]);
    // The first row of the input has nothing before it, and the last nothing after it; those
    // vectors are in the first and the last strip, whose masks clear that lane.
    let left = match at.checked_sub(1) {
        Some(before) => V::load(&input[before..]) & keep_left,
        None => {
            let mut values = [0.0f32; 16];
            values[1..lanes].copy_from_slice(&input[at..at + lanes - 1]);
            V::load(&values)
        }
    };
    let right = if at + lanes < input.len() {
        V::load(&input[at + 1..]) & keep_right
    } else {
        let mut values = [0.0f32; 16];
        values[..lanes - 1].copy_from_slice(&input[at + 1..at + lanes]);
        V::load(&values)
    };
    [left, row, right]
}
