//! The vectors the strip kernels of `narrow.rs` work on: `f32x8`, or `f32x16` in builds with
//! AVX-512 on rows whose width is a multiple of 16. A depthwise 3 x 3 on a plane held in L2
//! costs about three quarters of its time in arithmetic at 32 x 32, so the wider vector
//! halves most of it.

use std::ops::{Add, BitAnd, Mul};

use wide::{f32x16, f32x8};

use super::KEEP;

/// What `narrow.rs` needs of a vector of `f32` lanes.
pub(super) trait Vector:
    Copy + Add<Output = Self> + Mul<Output = Self> + BitAnd<Output = Self>
{
    /// Lanes in one vector.
    const LANES: usize;
    const ZERO: Self;
    fn splat(value: f32) -> Self;
    /// `self * a + b`.
    fn mul_add(self, a: Self, b: Self) -> Self;
    /// The first `LANES` values of `values`; panics if there are fewer.
    fn load(values: &[f32]) -> Self;
    /// The vector at `base + at`, without a bounds check.
    ///
    /// # Safety
    /// `base.add(at)` and the `LANES - 1` values after it are in one live allocation.
    unsafe fn load_at(base: *const f32, at: usize) -> Self;
    /// Writes the lanes to the first `LANES` values of `out`; panics if there are fewer.
    fn store(self, out: &mut [f32]);
    /// A bitwise mask that clears lane 0 (`first`) or the last lane (`!first`) and keeps the
    /// others.
    fn mask_end(first: bool) -> Self;
    /// A bitwise mask that keeps every lane.
    fn keep_all() -> Self;
    /// The lanes folded into 8 (lane `i` plus lane `i + 8`), for 8-lane accumulators.
    fn fold(self) -> f32x8;
}

/// A mask of `N` lanes with the first or the last cleared.
fn end_mask<const N: usize>(first: bool) -> [f32; N] {
    let cleared = if first { 0 } else { N - 1 };
    std::array::from_fn(|lane| if lane == cleared { 0.0 } else { KEEP })
}

/// Implements [`Vector`] for a `wide` vector of `$lanes` lanes, with `$fold` as its `fold`.
macro_rules! impl_vector {
    ($vector:ident, $lanes:literal, $fold:expr) => {
        impl Vector for $vector {
            const LANES: usize = $lanes;
            const ZERO: Self = $vector::ZERO;

            #[inline(always)]
            fn splat(value: f32) -> Self {
                $vector::splat(value)
            }

            #[inline(always)]
            fn mul_add(self, a: Self, b: Self) -> Self {
                $vector::mul_add(self, a, b)
            }

            #[inline(always)]
            fn load(values: &[f32]) -> Self {
                let lanes: [f32; $lanes] = values[..$lanes].try_into().unwrap();
                $vector::new(lanes)
            }

            #[inline(always)]
            unsafe fn load_at(base: *const f32, at: usize) -> Self {
                // SAFETY: guaranteed by the caller; `read_unaligned` needs no alignment.
                $vector::new(unsafe { base.add(at).cast::<[f32; $lanes]>().read_unaligned() })
            }

            #[inline(always)]
            fn store(self, out: &mut [f32]) {
                // An array assignment, one vector store.
                let out: &mut [f32; $lanes] = (&mut out[..$lanes]).try_into().unwrap();
                *out = self.to_array();
            }

            #[inline(always)]
            fn mask_end(first: bool) -> Self {
                $vector::new(end_mask(first))
            }

            #[inline(always)]
            fn keep_all() -> Self {
                $vector::splat(KEEP)
            }

            #[inline(always)]
            fn fold(self) -> f32x8 {
                let fold: fn(Self) -> f32x8 = $fold;
                fold(self)
            }
        }
    };
}

impl_vector!(f32x8, 8, |v| v);
impl_vector!(f32x16, 16, |v| {
    let lanes = v.as_array();
    let low: [f32; 8] = lanes[..8].try_into().unwrap();
    let high: [f32; 8] = lanes[8..].try_into().unwrap();
    f32x8::new(low) + f32x8::new(high)
});
