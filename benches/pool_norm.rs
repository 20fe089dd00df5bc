//! Pooling and normalisation kernels on real layer shapes, fast against the scalar reference.
//!
//! Run with `cargo bench --bench pool_norm`. Shapes: ResNet's stem max-pool, Inception's padded
//! 3 x 3 average pool, a ResNet/MobileNet head's global average pool, a ResNet batch norm, a
//! MobileNet v2 batch norm with its ReLU6 (fused against separate passes), and AlexNet's first
//! local response normalisation.

use std::hint::black_box;
use std::time::Duration;

use convgrad_kernels::norm::{
    self, BatchNormGeometry, BatchNormGrads, Clamp, LrnGeometry, RunningStats,
};
use convgrad_kernels::pool::{self, NchwShape};
use convgrad_kernels::Pool2dGeometry;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use rayon::prelude::*;

/// Deterministic, non-repeating test data in `[-1, 1)`.
fn data(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn configure(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
}

fn max_pool(c: &mut Criterion) {
    let g = Pool2dGeometry {
        stride: (2, 2),
        padding: (1, 1),
        ..Pool2dGeometry::new(32, 64, (32, 32), (3, 3))
    };
    let input = data(g.input_len(), 1);
    let grad_output = data(g.output_len(), 2);
    let (mut output, mut argmax) = (vec![0.0; g.output_len()], vec![0u32; g.output_len()]);
    let mut grad_input = vec![0.0; g.input_len()];
    let mut group = c.benchmark_group("max_pool 3x3 s2 p1 32x64x32x32");
    configure(&mut group);
    group.bench_function("forward fast", |b| {
        b.iter(|| pool::max_pool2d_forward(&g, black_box(&input), &mut output, &mut argmax))
    });
    group.bench_function("forward reference", |b| {
        b.iter(|| {
            pool::reference::max_pool2d_forward(&g, black_box(&input), &mut output, &mut argmax)
        })
    });
    group.bench_function("backward fast", |b| {
        b.iter(|| pool::max_pool2d_backward(&g, black_box(&grad_output), &argmax, &mut grad_input))
    });
    group.bench_function("backward reference", |b| {
        b.iter(|| {
            pool::reference::max_pool2d_backward(
                &g,
                black_box(&grad_output),
                &argmax,
                &mut grad_input,
            )
        })
    });
    group.finish();
}

fn avg_pool(c: &mut Criterion) {
    let g = Pool2dGeometry {
        stride: (1, 1),
        padding: (1, 1),
        ..Pool2dGeometry::new(32, 192, (16, 16), (3, 3))
    };
    let input = data(g.input_len(), 3);
    let grad_output = data(g.output_len(), 4);
    let mut output = vec![0.0; g.output_len()];
    let mut grad_input = vec![0.0; g.input_len()];
    let mut group = c.benchmark_group("avg_pool 3x3 s1 p1 32x192x16x16");
    configure(&mut group);
    group.bench_function("forward fast", |b| {
        b.iter(|| pool::avg_pool2d_forward(&g, true, black_box(&input), &mut output))
    });
    group.bench_function("forward reference", |b| {
        b.iter(|| pool::reference::avg_pool2d_forward(&g, true, black_box(&input), &mut output))
    });
    group.bench_function("backward fast", |b| {
        b.iter(|| pool::avg_pool2d_backward(&g, true, black_box(&grad_output), &mut grad_input))
    });
    group.bench_function("backward reference", |b| {
        b.iter(|| {
            pool::reference::avg_pool2d_backward(&g, true, black_box(&grad_output), &mut grad_input)
        })
    });
    group.finish();
}

fn global_avg_pool(c: &mut Criterion) {
    let shape = NchwShape::new(32, 512, (8, 8));
    let input = data(shape.len(), 5);
    let grad_output = data(32 * 512, 6);
    let mut output = vec![0.0; 32 * 512];
    let mut grad_input = vec![0.0; shape.len()];
    let mut group = c.benchmark_group("global_avg_pool 32x512x8x8");
    configure(&mut group);
    group.bench_function("forward fast", |b| {
        b.iter(|| pool::global_avg_pool2d_forward(&shape, black_box(&input), &mut output))
    });
    group.bench_function("forward reference", |b| {
        b.iter(|| {
            pool::reference::global_avg_pool2d_forward(&shape, black_box(&input), &mut output)
        })
    });
    group.bench_function("backward fast", |b| {
        b.iter(|| {
            pool::global_avg_pool2d_backward(&shape, black_box(&grad_output), &mut grad_input)
        })
    });
    group.bench_function("backward reference", |b| {
        b.iter(|| {
            pool::reference::global_avg_pool2d_backward(
                &shape,
                black_box(&grad_output),
                &mut grad_input,
            )
        })
    });
    group.finish();
}

fn batch_norm(c: &mut Criterion) {
    let g = BatchNormGeometry::new(NchwShape::new(32, 64, (32, 32)));
    let channels = g.shape.channels;
    let input = data(g.shape.len(), 7);
    let grad_output = data(g.shape.len(), 8);
    let (gamma, beta) = (data(channels, 9), data(channels, 10));
    let (mut running_mean, mut running_var) = (vec![0.0; channels], vec![1.0; channels]);
    let mut output = vec![0.0; g.shape.len()];
    let mut grad_input = vec![0.0; g.shape.len()];
    let (mut grad_gamma, mut grad_beta) = (vec![0.0; channels], vec![0.0; channels]);
    let mut group = c.benchmark_group("batch_norm train fwd+bwd 32x64x32x32");
    configure(&mut group);
    group.bench_function("fast", |b| {
        b.iter(|| {
            let running = RunningStats {
                mean: &mut running_mean,
                var: &mut running_var,
            };
            let (w, bias) = (Some(&gamma[..]), Some(&beta[..]));
            let stats = norm::batch_norm_forward_train(
                &g,
                black_box(&input),
                w,
                bias,
                Some(running),
                &mut output,
            )
            .unwrap();
            let grads = BatchNormGrads {
                input: &mut grad_input,
                gamma: &mut grad_gamma,
                beta: &mut grad_beta,
            };
            norm::batch_norm_backward_train(&g, &input, black_box(&grad_output), w, &stats, grads)
        })
    });
    group.bench_function("reference", |b| {
        b.iter(|| {
            let running = RunningStats {
                mean: &mut running_mean,
                var: &mut running_var,
            };
            let (w, bias) = (Some(&gamma[..]), Some(&beta[..]));
            let stats = norm::reference::batch_norm_forward_train(
                &g,
                black_box(&input),
                w,
                bias,
                Some(running),
                &mut output,
            );
            let grads = BatchNormGrads {
                input: &mut grad_input,
                gamma: &mut grad_gamma,
                beta: &mut grad_beta,
            };
            norm::reference::batch_norm_backward_train(
                &g,
                &input,
                black_box(&grad_output),
                w,
                &stats,
                grads,
            )
        })
    });
    group.finish();
}

/// A MobileNet v2 expansion's BatchNorm and ReLU6 (144 channels at 16 x 16, batch 32), training
/// forward and backward: the clamped kernels against batch normalisation plus the clamp and its
/// gradient mask as their own passes, each writing a fresh buffer as separate tape ops do.
fn batch_norm_relu6(c: &mut Criterion) {
    let g = BatchNormGeometry::new(NchwShape::new(32, 144, (16, 16)));
    let (len, channels) = (g.shape.len(), g.shape.channels);
    let input = data(len, 11);
    let grad_output = data(len, 12);
    let gamma = data(channels, 13);
    let beta: Vec<f32> = data(channels, 14).iter().map(|b| b + 1.0).collect();
    let (w, bias) = (Some(&gamma[..]), Some(&beta[..]));
    let (mut grad_gamma, mut grad_beta) = (vec![0.0; channels], vec![0.0; channels]);
    let mut group = c.benchmark_group("batch_norm + relu6 train fwd+bwd 32x144x16x16");
    configure(&mut group);
    group.bench_function("fused", |b| {
        b.iter(|| {
            let mut output = vec![0.0; len];
            let clamp = Clamp::Relu6;
            let stats = norm::batch_norm_forward_train_clamped(
                &g,
                clamp,
                black_box(&input),
                w,
                bias,
                None,
                &mut output,
            )
            .unwrap();
            let mut grad_input = vec![0.0; len];
            let grads = BatchNormGrads {
                input: &mut grad_input,
                gamma: &mut grad_gamma,
                beta: &mut grad_beta,
            };
            let dy = black_box(&grad_output);
            norm::batch_norm_backward_train_clamped(
                &g, clamp, &input, &output, dy, w, &stats, grads,
            )
            .unwrap();
            grad_input
        })
    });
    group.bench_function("separate", |b| {
        b.iter(|| {
            let mut normalised = vec![0.0; len];
            let stats = norm::batch_norm_forward_train(
                &g,
                black_box(&input),
                w,
                bias,
                None,
                &mut normalised,
            )
            .unwrap();
            // Both cores, as convgrad's elementwise passes run.
            let activated: Vec<f32> = normalised.par_iter().map(|&v| v.clamp(0.0, 6.0)).collect();
            let masked: Vec<f32> = (grad_output.par_iter().zip(&normalised))
                .map(|(&dy, &x)| if x > 0.0 && x < 6.0 { dy } else { 0.0 })
                .collect();
            let mut grad_input = vec![0.0; len];
            let grads = BatchNormGrads {
                input: &mut grad_input,
                gamma: &mut grad_gamma,
                beta: &mut grad_beta,
            };
            norm::batch_norm_backward_train(&g, &input, black_box(&masked), w, &stats, grads)
                .unwrap();
            (activated, grad_input)
        })
    });
    group.finish();
}

fn lrn(c: &mut Criterion) {
    let g = LrnGeometry {
        k: 2.0,
        ..LrnGeometry::new(NchwShape::new(8, 96, (27, 27)), 5)
    };
    let input = data(g.shape.len(), 11);
    let grad_output = data(g.shape.len(), 12);
    let mut output = vec![0.0; g.shape.len()];
    let mut group = c.benchmark_group("lrn size 5 8x96x27x27");
    configure(&mut group);
    group.bench_function("forward fast", |b| {
        b.iter(|| norm::lrn_forward(&g, black_box(&input), &mut output))
    });
    group.bench_function("forward reference", |b| {
        b.iter(|| norm::reference::lrn_forward(&g, black_box(&input), &mut output))
    });
    group.bench_function("backward fast", |b| {
        b.iter(|| norm::lrn_backward(&g, &input, black_box(&grad_output), &mut output))
    });
    group.bench_function("backward reference", |b| {
        b.iter(|| norm::reference::lrn_backward(&g, &input, black_box(&grad_output), &mut output))
    });
    group.finish();
}

criterion_group!(
    benches,
    max_pool,
    avg_pool,
    global_avg_pool,
    batch_norm,
    batch_norm_relu6,
    lrn
);
criterion_main!(benches);
