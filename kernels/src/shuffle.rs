//! Lane shuffles that `wide` does not offer, written with AVX2 intrinsics where the build has
//! them and as plain loops where it does not (the results are the same).

/// Values per vector.
const LANES: usize = 8;

/// `even[i] = pairs[2 * i]` and `odd[i] = pairs[2 * i + 1]` for `i < 8`.
///
/// # Safety
/// `pairs[..16]`, `even[..8]` and `odd[..8]` are valid and do not overlap.
#[inline(always)]
pub(crate) unsafe fn split_pairs_raw(pairs: *const f32, even: *mut f32, odd: *mut f32) {
    #[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
    // SAFETY: the caller's guarantee; the target has AVX2 (checked at compile time).
    unsafe {
        use std::arch::x86_64::*;
        let a = _mm256_loadu_ps(pairs);
        let b = _mm256_loadu_ps(pairs.add(LANES));
        // Within each 128-bit half: [a0 a2 b0 b2] and [a1 a3 b1 b3]; then the 64-bit
        // quarters reordered 0, 2, 1, 3 put the halves in column order.
        let evens = _mm256_shuffle_ps::<0b10_00_10_00>(a, b);
        let odds = _mm256_shuffle_ps::<0b11_01_11_01>(a, b);
        let order = |v: __m256| {
            _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(v)))
        };
        _mm256_storeu_ps(even, order(evens));
        _mm256_storeu_ps(odd, order(odds));
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "avx2")))]
    // SAFETY: the caller's guarantee.
    unsafe {
        for i in 0..LANES {
            *even.add(i) = *pairs.add(2 * i);
            *odd.add(i) = *pairs.add(2 * i + 1);
        }
    }
}

/// From eight values `v`, `[v0, v0, v1, v1, v2, v2, v3, v3]` and
/// `[v1, v1, v2, v2, v3, v3, v4, v4]`: each of the first five values twice, for spreading a
/// row over twice as many columns.
#[inline(always)]
pub(crate) fn spread_pairs(v: &[f32; LANES]) -> ([f32; LANES], [f32; LANES]) {
    #[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
    // SAFETY: eight values in, two arrays of eight out; the target has AVX2 (checked at
    // compile time).
    unsafe {
        use std::arch::x86_64::*;
        let values = _mm256_loadu_ps(v.as_ptr());
        let low = _mm256_permutevar8x32_ps(values, _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3));
        let high = _mm256_permutevar8x32_ps(values, _mm256_setr_epi32(1, 1, 2, 2, 3, 3, 4, 4));
        let (mut a, mut b) = ([0.0; LANES], [0.0; LANES]);
        _mm256_storeu_ps(a.as_mut_ptr(), low);
        _mm256_storeu_ps(b.as_mut_ptr(), high);
        (a, b)
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "avx2")))]
    {
        (
            std::array::from_fn(|l| v[l / 2]),
            std::array::from_fn(|l| v[l / 2 + 1]),
        )
    }
}

/// `[first, v0, v1, ..., v6]`: the lanes moved up by one, `first` into lane 0.
#[inline(always)]
pub(crate) fn shift_in(first: f32, v: &[f32; LANES]) -> [f32; LANES] {
    #[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
    // SAFETY: eight values in, eight out; the target has AVX2 (checked at compile time).
    unsafe {
        use std::arch::x86_64::*;
        let values = _mm256_loadu_ps(v.as_ptr());
        let moved = _mm256_permutevar8x32_ps(values, _mm256_setr_epi32(0, 0, 1, 2, 3, 4, 5, 6));
        let mut out = [0.0; LANES];
        _mm256_storeu_ps(
            out.as_mut_ptr(),
            _mm256_blend_ps::<1>(moved, _mm256_set1_ps(first)),
        );
        out
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "avx2")))]
    {
        std::array::from_fn(|l| if l == 0 { first } else { v[l - 1] })
    }
}

/// The even- and odd-indexed halves of sixteen consecutive values: `(pairs[0], pairs[2], ...)`
/// and `(pairs[1], pairs[3], ...)`.
#[inline(always)]
pub(crate) fn split_pairs(pairs: &[f32; 2 * LANES]) -> ([f32; LANES], [f32; LANES]) {
    let (mut even, mut odd) = ([0.0; LANES], [0.0; LANES]);
    // SAFETY: sixteen values in, two distinct arrays of eight out.
    unsafe { split_pairs_raw(pairs.as_ptr(), even.as_mut_ptr(), odd.as_mut_ptr()) };
    (even, odd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_pairs_takes_even_and_odd_lanes() {
        let pairs: [f32; 16] = std::array::from_fn(|i| i as f32);
        let (even, odd) = split_pairs(&pairs);
        assert_eq!(even, [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0]);
        assert_eq!(odd, [1.0, 3.0, 5.0, 7.0, 9.0, 11.0, 13.0, 15.0]);
    }

    #[test]
    fn shift_in_moves_lanes_up() {
        let v: [f32; 8] = std::array::from_fn(|i| i as f32 + 1.0);
        assert_eq!(
            shift_in(-1.0, &v),
            [-1.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
        );
    }

    #[test]
    fn spread_pairs_doubles_each_value() {
        let (a, b) = spread_pairs(&std::array::from_fn(|i| i as f32));
        assert_eq!(a, [0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0]);
        assert_eq!(b, [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0]);
    }
}
