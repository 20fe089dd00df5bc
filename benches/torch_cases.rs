//! The convolution cases of `shared/bench/torch_kernels.py`, timed the same way (two warm-up
//! calls, then repeat until at least a second has passed; the mean is reported), so the two
//! tables can be put side by side. Each pass goes through the functional API
//! (`functional::conv2d`, `conv2d_input_grad`, `conv2d_weight_grad`), as PyTorch's side goes
//! through `F.conv2d` and autograd: each call allocates its result, and a dropped result's
//! buffer is reused by the next call of its length as it would be in a training loop.
//!
//! ```sh
//! MALLOC_MMAP_THRESHOLD_=1000000000 MALLOC_TRIM_THRESHOLD_=1000000000 cargo bench --bench torch_cases
//! ```
//!
//! A further argument keeps only the cases whose name contains it
//! (`cargo bench --bench torch_cases -- direct3x3`). Prints one JSON line per case, with the same fields as the PyTorch script: `fwd_ms` is the
//! forward pass, `fwdbwd_ms` forward plus backward-data plus backward-weight (no bias), as
//! `y.sum().backward()` computes in PyTorch. The main thread is rayon's worker 0 (see `main`).

use std::hint::black_box;
use std::time::Instant;

use convgrad::functional::{conv2d, conv2d_input_grad, conv2d_weight_grad, Conv2dOptions};
use convgrad::Tensor;
use convgrad_kernels::Conv2dGeometry;

fn time_ms(mut f: impl FnMut()) -> f64 {
    f();
    f();
    let start = Instant::now();
    let mut n = 0;
    loop {
        f();
        n += 1;
        let elapsed = start.elapsed().as_secs_f64();
        if elapsed > 1.0 && n >= 3 {
            return elapsed / n as f64 * 1e3;
        }
    }
}

fn values(len: usize, seed: u32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn conv_case(
    name: &str,
    n: usize,
    cin: usize,
    cout: usize,
    h: usize,
    k: usize,
    stride: usize,
    groups: usize,
) {
    let pad = k / 2;
    let g = Conv2dGeometry::new(n, cin, cout, (h, h), (k, k))
        .with_stride((stride, stride))
        .with_padding((pad, pad))
        .with_groups(groups);
    let options = Conv2dOptions {
        stride: (stride, stride),
        padding: (pad, pad),
        groups,
        ..Default::default()
    };
    let tensor = |shape: &[usize], seed| {
        let len = shape.iter().product();
        Tensor::from_vec(values(len, seed), shape).expect("length matches the shape")
    };
    let x = tensor(&[n, cin, h, h], 1);
    let w = tensor(&[cout, cin / groups, k, k], 2);
    let out_shape = [n, cout, g.out_height(), g.out_width()];
    let dy = Tensor::ones(&out_shape);
    let forward = || black_box(conv2d(&x, &w, None, options).unwrap());
    let fwd = time_ms(|| drop(forward()));
    let fwdbwd = time_ms(|| {
        let y = forward();
        let dx = conv2d_input_grad(x.shape(), &w, &dy, options).unwrap();
        let dw = conv2d_weight_grad(&x, w.shape(), &dy, options).unwrap();
        black_box((y, dx, dw));
    });
    let gflops = 2.0 * g.multiply_adds() as f64 / fwd / 1e6;
    println!(
        "{{\"case\": \"{name}\", \"n\": {n}, \"cin\": {cin}, \"cout\": {cout}, \"h\": {h}, \"k\": {k}, \"stride\": {stride}, \"groups\": {groups}, \"fwd_ms\": {fwd:.3}, \"fwdbwd_ms\": {fwdbwd:.3}, \"fwd_gflops\": {gflops:.2}}}"
    );
}

fn main() {
    // `cargo test --benches` runs bench targets with `--bench`-less arguments; only time when benching.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    // The main thread as rayon's worker 0, as the README advises and the `convgrad` command
    // does: each pass then runs on the calling thread and the other worker steals half, instead
    // of being handed to the pool while the caller sleeps. PyTorch's main thread is likewise
    // one of its OpenMP threads.
    rayon::ThreadPoolBuilder::new()
        .use_current_thread()
        .build_global()
        .expect("rayon's global pool is built once, here");
    let filter = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let conv_case = |name: &str, n, cin, cout, h, k, stride, groups| {
        if filter.as_deref().is_none_or(|f| name.contains(f)) {
            conv_case(name, n, cin, cout, h, k, stride, groups);
        }
    };
    conv_case("direct3x3", 32, 64, 64, 32, 3, 1, 1);
    conv_case("direct3x3", 32, 128, 128, 16, 3, 1, 1);
    conv_case("direct3x3", 32, 256, 256, 8, 3, 1, 1);
    conv_case("direct3x3_s2", 32, 64, 128, 32, 3, 2, 1);
    conv_case("direct5x5", 64, 6, 16, 14, 5, 1, 1);
    conv_case("direct7x7_s2", 8, 3, 64, 224, 7, 2, 1);
    conv_case("depthwise3x3", 32, 128, 128, 32, 3, 1, 128);
    conv_case("depthwise3x3", 32, 256, 256, 16, 3, 1, 256);
    conv_case("depthwise3x3", 32, 512, 512, 8, 3, 1, 512);
    conv_case("depthwise3x3_s2", 32, 128, 128, 32, 3, 2, 128);
    conv_case("pointwise1x1", 32, 128, 256, 16, 1, 1, 1);
    conv_case("pointwise1x1", 32, 256, 256, 16, 1, 1, 1);
    conv_case("pointwise1x1", 32, 728, 728, 8, 1, 1, 1);
    conv_case("sep_std_3x3", 32, 128, 128, 16, 3, 1, 1);
    conv_case("sep_dw_3x3", 32, 128, 128, 16, 3, 1, 128);
    conv_case("sep_pw_1x1", 32, 128, 128, 16, 1, 1, 1);
}
