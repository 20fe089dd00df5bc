//! Elementwise passes over `f32` slices, split over rayon's threads when the slices are large.
//!
//! Activations, their gradients, residual sums and gradient accumulation are one pass over
//! memory each. Run on the calling thread they left the second core idle for that share of a
//! training step; here a pass over more than [`PARALLEL_MIN`] values is cut into chunks of
//! [`CHUNK`] values that the threads take in turn. Each chunk is a plain loop over slices, which
//! LLVM vectorises. Outputs are written into fresh, uninitialised capacity, so a pass that
//! produces a new buffer does not zero it first. Small slices (biases, LeNet-5's maps) stay on
//! the calling thread, where a task would cost more than the work.

use std::mem::MaybeUninit;

use rayon::prelude::*;

/// Values per task: 64 KiB of `f32`, enough to amortise the hand-off, small enough to balance.
const CHUNK: usize = 16 * 1024;

/// Passes over fewer values than this run on the calling thread.
const PARALLEL_MIN: usize = 4 * CHUNK;

/// The chunk length to split a pass over `len` values into, or `None` when it should stay on
/// the calling thread: for passes over several slices that the helpers below do not cover.
pub(crate) fn parallel_chunk(len: usize) -> Option<usize> {
    (len >= PARALLEL_MIN).then_some(CHUNK)
}

/// Fills `out` (uninitialised, `out.len() == len`) chunk by chunk: `fill(start, chunk)` writes
/// every element of `chunk`, which is `out[start..start + chunk.len()]`.
fn fill_chunks(out: &mut [MaybeUninit<f32>], fill: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync) {
    if out.len() < PARALLEL_MIN {
        fill(0, out);
    } else {
        out.par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(k, chunk)| fill(k * CHUNK, chunk));
    }
}

/// A new vector of `len` values, each written by `fill` (see [`fill_chunks`]).
fn collect(len: usize, fill: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync) -> Vec<f32> {
    let mut out = Vec::with_capacity(len);
    fill_chunks(&mut out.spare_capacity_mut()[..len], fill);
    // SAFETY: `fill_chunks` hands every element of `out[..len]` to `fill`, which writes it.
    unsafe { out.set_len(len) };
    out
}

/// `[f(x) for x in a]`.
pub(crate) fn map(a: &[f32], f: impl Fn(f32) -> f32 + Sync) -> Vec<f32> {
    collect(a.len(), |start, out| {
        for (o, &x) in out.iter_mut().zip(&a[start..]) {
            o.write(f(x));
        }
    })
}

/// `[f(x, y) for x, y in zip(a, b)]`; `a` and `b` have the same length.
pub(crate) fn zip_map(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) -> Vec<f32> {
    assert_eq!(a.len(), b.len(), "zip_map over slices of different lengths");
    collect(a.len(), |start, out| {
        for (o, (&x, &y)) in out.iter_mut().zip(a[start..].iter().zip(&b[start..])) {
            o.write(f(x, y));
        }
    })
}

/// `[f(x, y, z) for x, y, z in zip(a, b, c)]`; the three have the same length.
pub(crate) fn zip3_map(
    a: &[f32],
    b: &[f32],
    c: &[f32],
    f: impl Fn(f32, f32, f32) -> f32 + Sync,
) -> Vec<f32> {
    assert!(
        a.len() == b.len() && b.len() == c.len(),
        "zip3_map over slices of different lengths"
    );
    collect(a.len(), |start, out| {
        let inputs = a[start..].iter().zip(&b[start..]).zip(&c[start..]);
        for (o, ((&x, &y), &z)) in out.iter_mut().zip(inputs) {
            o.write(f(x, y, z));
        }
    })
}

/// `f(&mut d, s)` for each `d, s` in `zip(dst, src)`; the two have the same length.
pub(crate) fn update(dst: &mut [f32], src: &[f32], f: impl Fn(&mut f32, f32) + Sync) {
    assert_eq!(
        dst.len(),
        src.len(),
        "update over slices of different lengths"
    );
    let run = |d: &mut [f32], s: &[f32]| {
        for (d, &s) in d.iter_mut().zip(s) {
            f(d, s);
        }
    };
    if dst.len() < PARALLEL_MIN {
        run(dst, src);
    } else {
        dst.par_chunks_mut(CHUNK)
            .zip(src.par_chunks(CHUNK))
            .for_each(|(d, s)| run(d, s));
    }
}

/// `f(&mut d, &mut e, s)` for each element of `zip(dst, extra, src)`: two slices updated in
/// one pass (a parameter and its momentum buffer); all three have the same length.
pub(crate) fn update2(
    dst: &mut [f32],
    extra: &mut [f32],
    src: &[f32],
    f: impl Fn(&mut f32, &mut f32, f32) + Sync,
) {
    assert!(
        dst.len() == extra.len() && extra.len() == src.len(),
        "update2 over slices of different lengths"
    );
    let run = |d: &mut [f32], e: &mut [f32], s: &[f32]| {
        for ((d, e), &s) in d.iter_mut().zip(e.iter_mut()).zip(s) {
            f(d, e, s);
        }
    };
    if dst.len() < PARALLEL_MIN {
        run(dst, extra, src);
    } else {
        dst.par_chunks_mut(CHUNK)
            .zip(extra.par_chunks_mut(CHUNK))
            .zip(src.par_chunks(CHUNK))
            .for_each(|((d, e), s)| run(d, e, s));
    }
}

/// `f(r, row)` for each row `r` of `out` (rows of `row_len` values; `out.len()` a multiple of
/// it): copies that gather from several tensors per row, such as a concatenation per image.
pub(crate) fn for_each_row(out: &mut [f32], row_len: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    if row_len == 0 {
        return;
    }
    if out.len() < PARALLEL_MIN || out.len() == row_len {
        out.chunks_mut(row_len)
            .enumerate()
            .for_each(|(r, row)| f(r, row));
    } else {
        out.par_chunks_mut(row_len)
            .enumerate()
            .for_each(|(r, row)| f(r, row));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize) -> Vec<f32> {
        (0..len).map(|i| (i % 97) as f32 - 48.0).collect()
    }

    /// Lengths around both thresholds, so the serial path, the parallel path and a last,
    /// partial chunk are all taken.
    const LENGTHS: [usize; 6] = [
        0,
        1,
        CHUNK + 3,
        PARALLEL_MIN - 1,
        PARALLEL_MIN,
        5 * CHUNK + 7,
    ];

    #[test]
    fn maps_equal_the_serial_loops() {
        for len in LENGTHS {
            let (a, b, c) = (values(len), values(len + 1), values(len + 2));
            let (b, c) = (&b[1..], &c[2..]);
            let expected: Vec<f32> = a.iter().map(|x| x * 2.0 - 1.0).collect();
            assert_eq!(map(&a, |x| x * 2.0 - 1.0), expected, "map, {len}");
            let expected: Vec<f32> = a.iter().zip(b).map(|(x, y)| x * y).collect();
            assert_eq!(zip_map(&a, b, |x, y| x * y), expected, "zip_map, {len}");
            let expected: Vec<f32> = (0..len).map(|i| a[i] + b[i] * c[i]).collect();
            assert_eq!(
                zip3_map(&a, b, c, |x, y, z| x + y * z),
                expected,
                "zip3_map, {len}"
            );
        }
    }

    #[test]
    fn updates_equal_the_serial_loops() {
        for len in LENGTHS {
            let src = values(len);
            let mut dst = values(len + 5)[5..].to_vec();
            let expected: Vec<f32> = dst.iter().zip(&src).map(|(d, s)| d + 3.0 * s).collect();
            update(&mut dst, &src, |d, s| *d += 3.0 * s);
            assert_eq!(dst, expected, "update, {len}");

            let mut extra = values(len + 9)[9..].to_vec();
            let expected_extra: Vec<f32> = extra.iter().zip(&src).map(|(e, s)| e - s).collect();
            let expected: Vec<f32> = dst
                .iter()
                .zip(&expected_extra)
                .map(|(d, e)| d * e)
                .collect();
            update2(&mut dst, &mut extra, &src, |d, e, s| {
                *e -= s;
                *d *= *e;
            });
            assert_eq!((dst, extra), (expected, expected_extra), "update2, {len}");
        }
    }

    #[test]
    fn rows_are_visited_once_each_with_their_index() {
        for rows in [1, 3, 64] {
            let row_len = PARALLEL_MIN / 8 + 1;
            let mut out = vec![0.0; rows * row_len];
            for_each_row(&mut out, row_len, |r, row| {
                for (i, v) in row.iter_mut().enumerate() {
                    *v += (r * row_len + i) as f32;
                }
            });
            let expected: Vec<f32> = (0..rows * row_len).map(|i| i as f32).collect();
            assert_eq!(out, expected, "{rows} rows");
        }
    }
}
