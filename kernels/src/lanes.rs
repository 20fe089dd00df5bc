//! Eight-lane `f32x8` loads and stores on slices, and sums, shared by the kernels.
//!
//! All of them are safe: a full load or store panics if fewer than eight elements remain, the
//! partial ones touch only what is there (zero-filling the missing lanes on load).

use wide::f32x8;

/// Lanes in one vector.
pub(crate) const LANES: usize = 8;

/// The first eight elements of `values` as one vector.
#[inline(always)]
pub(crate) fn load(values: &[f32]) -> f32x8 {
    let lanes: [f32; LANES] = values[..LANES].try_into().expect("eight lanes");
    f32x8::new(lanes)
}

/// Eight consecutive values from each of eight rows `stride` apart, the first at `at`,
/// transposed: vector `i` holds value `i` of every row, row `j` in lane `j`. Eight vector loads
/// and a transpose in registers, where gathering the values one at a time would store each
/// and then stall the vector load that follows (a failed store-to-load forward).
#[inline(always)]
pub(crate) fn load_transposed(values: &[f32], at: usize, stride: usize) -> [f32x8; LANES] {
    f32x8::transpose(std::array::from_fn(|row| {
        load(&values[at + row * stride..])
    }))
}

/// Up to eight leading elements of `values`; lanes past the end are zero.
#[inline(always)]
pub(crate) fn load_partial(values: &[f32]) -> f32x8 {
    if values.len() >= LANES {
        load(values)
    } else {
        f32x8::from(values)
    }
}

/// Writes the eight lanes of `vector` to the start of `out`.
#[inline(always)]
pub(crate) fn store(vector: f32x8, out: &mut [f32]) {
    out[..LANES].copy_from_slice(vector.as_array());
}

/// Writes as many leading lanes of `vector` as `out` has room for (at most eight).
#[inline(always)]
pub(crate) fn store_partial(vector: f32x8, out: &mut [f32]) {
    let count = out.len().min(LANES);
    out[..count].copy_from_slice(&vector.as_array()[..count]);
}

/// Sum of all elements, eight lanes at a time with four independent accumulators; the final
/// reduction is done in `f64` so that callers accumulating many of these lose nothing further.
/// Values past the last whole vector are added one by one in `f64`, and slices shorter than a
/// vector skip the vectors altogether: the planes at the end of a network hold 1 to 49 values,
/// and there a partial vector load and an eight-lane reduction cost more than the sum itself.
#[inline]
pub(crate) fn sum(values: &[f32]) -> f64 {
    if values.len() < LANES {
        return values.iter().map(|&x| f64::from(x)).sum();
    }
    let mut accumulators = [f32x8::ZERO; 4];
    let mut blocks = values.chunks_exact(4 * LANES);
    for block in &mut blocks {
        for (lane_block, acc) in accumulators.iter_mut().enumerate() {
            *acc += load(&block[lane_block * LANES..]);
        }
    }
    let mut vectors = blocks.remainder().chunks_exact(LANES);
    let mut tail = f32x8::ZERO;
    for chunk in &mut vectors {
        tail += load(chunk);
    }
    let total = (accumulators[0] + accumulators[1]) + (accumulators[2] + accumulators[3]) + tail;
    let scalars: f64 = vectors.remainder().iter().map(|&x| f64::from(x)).sum();
    total.as_array().iter().map(|&x| f64::from(x)).sum::<f64>() + scalars
}

/// How many planes of `plane_len` elements one rayon task should take so that a task is worth
/// its scheduling cost (about 16 K elements), but never zero.
pub(crate) fn planes_per_task(plane_len: usize) -> usize {
    (16 * 1024 / plane_len.max(1)).max(1)
}

/// Asks the CPU to bring the cache line holding `value` into L1 ahead of use. A hint: it never
/// faults, and it does nothing on other architectures.
#[inline(always)]
pub(crate) fn prefetch(value: &f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` only needs SSE, part of every x86_64 target; a prefetch changes no
    // architectural state and cannot fault, and `value` is a valid reference in any case.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((value as *const f32).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}
