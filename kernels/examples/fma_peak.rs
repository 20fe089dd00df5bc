//! The machine's FMA peak, the denominator of the "% of peak" column in BENCHMARKS.md.
//!
//! Each thread runs 10 independent chains of fused multiply-adds on registers, enough to keep
//! two FMA units busy through their latency, with no memory traffic. The best of five rounds is
//! printed for 1 thread and for all of rayon's threads, with 8-lane vectors (`f32x8`, AVX2) and
//! with 16-lane ones (`f32x16`: one AVX-512 instruction in builds that have it, two AVX2
//! instructions otherwise). The machine's peak is the larger of the two.
//!
//! ```sh
//! cargo run --release -p convgrad-kernels --example fma_peak
//! ```

use std::hint::black_box;
use std::time::Instant;

use rayon::prelude::*;
use wide::{f32x16, f32x8};

/// Independent accumulators per thread.
const CHAINS: usize = 10;
/// Iterations of the inner loop per thread and round.
const ITERATIONS: usize = 50_000_000;

/// `chains_x8` and `chains_x16`: run the FMA chains once on vectors of one width and return a
/// value that depends on all of them.
macro_rules! chains {
    ($name:ident, $vector:ty) => {
        fn $name(iterations: usize) -> f32 {
            let mut acc: [$vector; CHAINS] =
                std::array::from_fn(|i| <$vector>::splat(i as f32 * 1e-3));
            let (a, b) = (
                black_box(<$vector>::splat(0.999_9)),
                black_box(<$vector>::splat(1e-4)),
            );
            for _ in 0..iterations {
                for acc in &mut acc {
                    *acc = acc.mul_add(a, b);
                }
            }
            acc.iter().map(|v| v.reduce_add()).sum()
        }
    };
}
chains!(chains_x8, f32x8);
chains!(chains_x16, f32x16);

/// Best GFLOP/s over five rounds with `threads` threads, each running `chains` on vectors of
/// `lanes` lanes.
fn peak(threads: usize, lanes: usize, chains: fn(usize) -> f32) -> f64 {
    let flops = (2 * lanes * CHAINS * ITERATIONS * threads) as f64;
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
    for (name, lanes, chains) in [
        ("f32x8", 8, chains_x8 as fn(usize) -> f32),
        ("f32x16", 16, chains_x16),
    ] {
        println!("{name:7} 1 thread:   {:.1} GFLOP/s", peak(1, lanes, chains));
        println!(
            "{name:7} {threads} threads:  {:.1} GFLOP/s",
            peak(threads, lanes, chains)
        );
    }
}
