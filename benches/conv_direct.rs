//! The direct convolution kernel on the DESIGN.md layer shapes: forward, and forward plus both
//! backward passes (one training step of the layer), on the rayon pool (2 cores here). The
//! 3 x 3 shapes (stride 1 and 2) are also timed with the Winograd kernel that the dispatcher
//! sends them to (`winograd_vs_direct`: forward and backward-data, each beside the direct
//! kernel's), and the Winograd passes beside the scalar reference on a small 3 x 3 layer.
//!
//! Throughput is reported in elements per second where one element is one FLOP (a multiply-add
//! counts two), so criterion's `Gelem/s` reads as GFLOP/s. The scalar reference is measured on
//! LeNet's 5x5 layer at batch 8 only (it is far too slow for the large shapes), beside the direct
//! kernel on the same reduced shape.
//!
//! Run with glibc told to keep freed memory, as the PyTorch numbers in DESIGN.md were:
//! `MALLOC_MMAP_THRESHOLD_=1000000000 MALLOC_TRIM_THRESHOLD_=1000000000 cargo bench --bench conv_direct`

use std::time::Duration;

use convgrad_kernels::{
    conv::{direct, reference, winograd},
    Conv2dGeometry,
};
use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput,
};

/// Operands and gradient buffers of one layer, allocated once.
struct Layer {
    g: Conv2dGeometry,
    input: Vec<f32>,
    weight: Vec<f32>,
    bias: Vec<f32>,
    output: Vec<f32>,
    grad_output: Vec<f32>,
    grad_input: Vec<f32>,
    grad_weight: Vec<f32>,
    grad_bias: Vec<f32>,
}

impl Layer {
    fn new(g: Conv2dGeometry) -> Self {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut fill = |len: usize| -> Vec<f32> {
            (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                })
                .collect()
        };
        Layer {
            input: fill(g.input_len()),
            weight: fill(g.weight_len()),
            bias: fill(g.out_channels),
            output: vec![0.0; g.output_len()],
            grad_output: fill(g.output_len()),
            grad_input: vec![0.0; g.input_len()],
            grad_weight: vec![0.0; g.weight_len()],
            grad_bias: vec![0.0; g.out_channels],
            g,
        }
    }

    fn forward(&mut self) {
        direct::forward(
            &self.g,
            &self.input,
            &self.weight,
            Some(&self.bias),
            &mut self.output,
        );
    }

    fn backward(&mut self) {
        direct::backward_data(
            &self.g,
            &self.grad_output,
            &self.weight,
            &mut self.grad_input,
        );
        direct::backward_weight(
            &self.g,
            &self.input,
            &self.grad_output,
            &mut self.grad_weight,
            Some(&mut self.grad_bias),
        );
    }
}

/// The DESIGN.md direct shapes: (name, geometry).
fn shapes() -> Vec<(&'static str, Conv2dGeometry)> {
    vec![
        (
            "3x3_n32_c64_32x32",
            Conv2dGeometry::new(32, 64, 64, (32, 32), (3, 3)).with_padding((1, 1)),
        ),
        (
            "3x3_n32_c128_16x16",
            Conv2dGeometry::new(32, 128, 128, (16, 16), (3, 3)).with_padding((1, 1)),
        ),
        (
            "3x3_n32_c256_8x8",
            Conv2dGeometry::new(32, 256, 256, (8, 8), (3, 3)).with_padding((1, 1)),
        ),
        (
            "3x3s2_n32_c64to128_32x32",
            Conv2dGeometry::new(32, 64, 128, (32, 32), (3, 3))
                .with_stride((2, 2))
                .with_padding((1, 1)),
        ),
        (
            "5x5_lenet_n64_c6to16_14x14",
            Conv2dGeometry::new(64, 6, 16, (14, 14), (5, 5)),
        ),
        (
            "7x7s2_n8_c3to64_224x224",
            Conv2dGeometry::new(8, 3, 64, (224, 224), (7, 7))
                .with_stride((2, 2))
                .with_padding((3, 3)),
        ),
    ]
}

fn configure<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group
}

fn forward(c: &mut Criterion) {
    let mut group = configure(c, "direct_forward");
    for (name, g) in shapes() {
        let mut layer = Layer::new(g);
        group.throughput(Throughput::Elements(2 * g.multiply_adds()));
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| layer.forward())
        });
    }
    group.finish();
}

fn forward_backward(c: &mut Criterion) {
    let mut group = configure(c, "direct_forward_backward");
    for (name, g) in shapes() {
        let mut layer = Layer::new(g);
        group.throughput(Throughput::Elements(6 * g.multiply_adds()));
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                layer.forward();
                layer.backward();
            })
        });
    }
    group.finish();
}

/// The scalar reference against the direct kernel on LeNet's 5x5 layer at batch 8.
fn versus_reference(c: &mut Criterion) {
    let mut group = configure(c, "direct_vs_reference_lenet_n8");
    let g = Conv2dGeometry::new(8, 6, 16, (14, 14), (5, 5));
    let mut layer = Layer::new(g);
    group.throughput(Throughput::Elements(6 * g.multiply_adds()));
    group.bench_function("reference_forward_backward", |b| {
        b.iter(|| {
            let l = &mut layer;
            reference::conv2d_forward(&l.g, &l.input, &l.weight, Some(&l.bias), &mut l.output);
            reference::conv2d_backward_data(&l.g, &l.grad_output, &l.weight, &mut l.grad_input);
            reference::conv2d_backward_weight(
                &l.g,
                &l.input,
                &l.grad_output,
                &mut l.grad_weight,
                Some(&mut l.grad_bias),
            );
        })
    });
    group.bench_function("direct_forward_backward", |b| {
        b.iter(|| {
            layer.forward();
            layer.backward();
        })
    });
    group.finish();
}

/// Winograd against direct on the 3 x 3 shapes it serves, forward and backward-data.
fn winograd_vs_direct(c: &mut Criterion) {
    let mut group = configure(c, "winograd_vs_direct");
    for (name, g) in shapes().into_iter().filter(|(_, g)| winograd::applies(g)) {
        let mut l = Layer::new(g);
        // Direct-equivalent FLOPs for both, so the rates compare times.
        group.throughput(Throughput::Elements(2 * g.multiply_adds()));
        group.bench_function(BenchmarkId::new("winograd_forward", name), |b| {
            b.iter(|| winograd::forward(&l.g, &l.input, &l.weight, Some(&l.bias), &mut l.output))
        });
        group.bench_function(BenchmarkId::new("direct_forward", name), |b| {
            b.iter(|| l.forward())
        });
        group.bench_function(BenchmarkId::new("winograd_backward_data", name), |b| {
            b.iter(|| winograd::backward_data(&l.g, &l.grad_output, &l.weight, &mut l.grad_input))
        });
        group.bench_function(BenchmarkId::new("direct_backward_data", name), |b| {
            b.iter(|| direct::backward_data(&l.g, &l.grad_output, &l.weight, &mut l.grad_input))
        });
    }
    group.finish();
}

/// The scalar reference against the Winograd passes on a small 3 x 3 layer.
fn winograd_versus_reference(c: &mut Criterion) {
    let mut group = configure(c, "winograd_vs_reference_3x3_n2_c32_16x16");
    let g = Conv2dGeometry::new(2, 32, 32, (16, 16), (3, 3)).with_padding((1, 1));
    let mut l = Layer::new(g);
    group.throughput(Throughput::Elements(4 * g.multiply_adds()));
    group.bench_function("reference_forward_backward_data", |b| {
        b.iter(|| {
            reference::conv2d_forward(&l.g, &l.input, &l.weight, Some(&l.bias), &mut l.output);
            reference::conv2d_backward_data(&l.g, &l.grad_output, &l.weight, &mut l.grad_input);
        })
    });
    group.bench_function("winograd_forward_backward_data", |b| {
        b.iter(|| {
            winograd::forward(&l.g, &l.input, &l.weight, Some(&l.bias), &mut l.output);
            winograd::backward_data(&l.g, &l.grad_output, &l.weight, &mut l.grad_input);
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    forward,
    forward_backward,
    versus_reference,
    winograd_vs_direct,
    winograd_versus_reference
);
criterion_main!(benches);
