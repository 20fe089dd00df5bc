//! The machine's FMA peak, the denominator of the "% of peak" column in BENCHMARKS.md.
//!
//! Each thread runs 10 independent chains of `f32x8` fused multiply-adds on registers, enough
//! to keep two FMA units busy through their latency, with no memory traffic. The best of five
//! rounds is printed for 1 thread and for all of rayon's threads.
//!
//! ```sh
//! cargo run --release -p convgrad-kernels --example fma_peak
//! ```

use std::hint::black_box;
use std::time::Instant;

use rayon::prelude::*;
use wide::f32x8;

/// Independent accumulators per thread.
const CHAINS: usize = 10;
/// Iterations of the inner loop per thread and round.
const ITERATIONS: usize = 50_000_000;

/// Runs the FMA chains once and returns a value that depends on all of them.
fn chains(iterations: usize) -> f32 {
    let mut acc: [f32x8; CHAINS] = std::array::from_fn(|i| f32x8::splat(i as f32 * 1e-3));
    let (a, b) = (
        black_box(f32x8::splat(0.999_9)),
        black_box(f32x8::splat(1e-4)),
    );
    for _ in 0..iterations {
        for acc in &mut acc {
            *acc = acc.mul_add(a, b);
        }
    }
    acc.iter().map(|v| v.reduce_add()).sum()
}

/// Best GFLOP/s over five rounds with `threads` threads.
fn peak(threads: usize) -> f64 {
    let flops = (2 * 8 * CHAINS * ITERATIONS * threads) as f64;
    (0..5)
        .map(|_| {
            let start = Instant::now();
            let sum: f32 = (0..threads)
                .into_par_iter()
                .map(|_| chains(black_box(ITERATIONS)))
                .sum();
            black_box(sum);
            flops / start.elapsed().as_secs_f64() / 1e9
        })
        .fold(0.0, f64::max)
}

fn main() {
    let threads = rayon::current_num_threads();
    println!("1 thread:   {:.1} GFLOP/s", peak(1));
    println!("{threads} threads:  {:.1} GFLOP/s", peak(threads));
}
