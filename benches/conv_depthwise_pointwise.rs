//! Depthwise and pointwise convolution on the layer shapes of DESIGN.md ("PyTorch on this
//! machine"), forward and forward + backward (backward-data and backward-weight with bias), plus
//! the scalar reference at a reduced batch and the "separable pair" comparison: depthwise 3x3 +
//! pointwise 1x1 against a standard 3x3 on 32 x 128 -> 128 x 16 x 16.
//!
//! Throughput is in multiply-adds (`Conv2dGeometry::multiply_adds`, three times that for the
//! forward and backward passes): criterion's "elem/s" is MAC/s, half the FLOP/s. Buffers are
//! allocated once, as a training loop that reuses them would. Run with glibc told to keep freed
//! memory, as the PyTorch numbers were measured:
//!
//! ```text
//! MALLOC_MMAP_THRESHOLD_=1000000000 MALLOC_TRIM_THRESHOLD_=1000000000 \
//!     cargo bench --bench conv_depthwise_pointwise
//! ```

use std::time::Duration;

use convgrad_kernels::{
    conv::{depthwise, pointwise, reference},
    Conv2dGeometry,
};
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};

/// `(geometry, input, weight, bias, output)`.
type Forward = fn(&Conv2dGeometry, &[f32], &[f32], Option<&[f32]>, &mut [f32]);
/// `(geometry, grad_output, weight, grad_input)`.
type BackwardData = fn(&Conv2dGeometry, &[f32], &[f32], &mut [f32]);
/// `(geometry, input, grad_output, grad_weight, grad_bias)`.
type BackwardWeight = fn(&Conv2dGeometry, &[f32], &[f32], &mut [f32], Option<&mut [f32]>);

/// The three passes of one kernel family.
struct Kernel {
    forward: Forward,
    backward_data: BackwardData,
    backward_weight: BackwardWeight,
}

const DEPTHWISE: Kernel = Kernel {
    forward: depthwise::forward,
    backward_data: depthwise::backward_data,
    backward_weight: depthwise::backward_weight,
};
const POINTWISE: Kernel = Kernel {
    forward: pointwise::forward,
    backward_data: pointwise::backward_data,
    backward_weight: pointwise::backward_weight,
};
const REFERENCE: Kernel = Kernel {
    forward: reference::conv2d_forward,
    backward_data: reference::conv2d_backward_data,
    backward_weight: reference::conv2d_backward_weight,
};
/// The public dispatcher: whichever kernel the geometry selects.
const DISPATCH: Kernel = Kernel {
    forward: |g, x, w, b, y| convgrad_kernels::conv2d_forward(g, x, w, b, y).unwrap(),
    backward_data: |g, dy, w, dx| convgrad_kernels::conv2d_backward_data(g, dy, w, dx).unwrap(),
    backward_weight: |g, x, dy, dw, db| {
        convgrad_kernels::conv2d_backward_weight(g, x, dy, dw, db).unwrap()
    },
};

/// Operands and results of one layer, allocated once.
struct Buffers {
    input: Vec<f32>,
    weight: Vec<f32>,
    bias: Vec<f32>,
    output: Vec<f32>,
    grad_output: Vec<f32>,
    grad_input: Vec<f32>,
    grad_weight: Vec<f32>,
    grad_bias: Vec<f32>,
}

impl Buffers {
    fn new(g: &Conv2dGeometry) -> Self {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut random = |len: usize| -> Vec<f32> {
            (0..len)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                })
                .collect()
        };
        Buffers {
            input: random(g.input_len()),
            weight: random(g.weight_len()),
            bias: random(g.out_channels),
            output: vec![0.0; g.output_len()],
            grad_output: random(g.output_len()),
            grad_input: vec![0.0; g.input_len()],
            grad_weight: vec![0.0; g.weight_len()],
            grad_bias: vec![0.0; g.out_channels],
        }
    }

    fn forward(&mut self, kernel: &Kernel, g: &Conv2dGeometry) {
        (kernel.forward)(
            g,
            &self.input,
            &self.weight,
            Some(&self.bias),
            &mut self.output,
        );
    }

    fn forward_backward(&mut self, kernel: &Kernel, g: &Conv2dGeometry) {
        self.forward(kernel, g);
        (kernel.backward_data)(g, &self.grad_output, &self.weight, &mut self.grad_input);
        (kernel.backward_weight)(
            g,
            &self.input,
            &self.grad_output,
            &mut self.grad_weight,
            Some(&mut self.grad_bias),
        );
    }
}

fn depthwise_3x3(batch: usize, channels: usize, size: usize, stride: usize) -> Conv2dGeometry {
    Conv2dGeometry::new(batch, channels, channels, (size, size), (3, 3))
        .with_groups(channels)
        .with_padding((1, 1))
        .with_stride((stride, stride))
}

fn pointwise_1x1(batch: usize, c_in: usize, c_out: usize, size: usize) -> Conv2dGeometry {
    Conv2dGeometry::new(batch, c_in, c_out, (size, size), (1, 1))
}

/// Benches `name/fwd` and `name/fwd+bwd` of one kernel on one geometry.
fn bench_layer(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    kernel: &Kernel,
    g: &Conv2dGeometry,
) {
    let mut buffers = Buffers::new(g);
    group.throughput(Throughput::Elements(g.multiply_adds()));
    group.bench_function(format!("{name}/fwd"), |b| {
        b.iter(|| buffers.forward(kernel, g))
    });
    group.throughput(Throughput::Elements(3 * g.multiply_adds()));
    group.bench_function(format!("{name}/fwd+bwd"), |b| {
        b.iter(|| buffers.forward_backward(kernel, g))
    });
}

fn configure<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group
}

fn depthwise_layers(c: &mut Criterion) {
    let mut group = configure(c, "depthwise");
    for (name, g) in [
        ("3x3_32x128x32x32", depthwise_3x3(32, 128, 32, 1)),
        ("3x3_32x256x16x16", depthwise_3x3(32, 256, 16, 1)),
        ("3x3_32x512x8x8", depthwise_3x3(32, 512, 8, 1)),
        ("3x3s2_32x128x32x32", depthwise_3x3(32, 128, 32, 2)),
    ] {
        bench_layer(&mut group, name, &DEPTHWISE, &g);
    }
    group.finish();
}

fn pointwise_layers(c: &mut Criterion) {
    let mut group = configure(c, "pointwise");
    for (name, g) in [
        ("32x128to256x16x16", pointwise_1x1(32, 128, 256, 16)),
        ("32x256to256x16x16", pointwise_1x1(32, 256, 256, 16)),
        ("32x728to728x8x8", pointwise_1x1(32, 728, 728, 8)),
    ] {
        bench_layer(&mut group, name, &POINTWISE, &g);
    }
    group.finish();
}

/// The scalar reference at batch 4 (an eighth of the fast benches' batch), for scale.
fn reference_layers(c: &mut Criterion) {
    let mut group = configure(c, "reference_batch4");
    group.sample_size(10);
    bench_layer(
        &mut group,
        "depthwise_3x3_4x128x32x32",
        &REFERENCE,
        &depthwise_3x3(4, 128, 32, 1),
    );
    bench_layer(
        &mut group,
        "pointwise_4x128to256x16x16",
        &REFERENCE,
        &pointwise_1x1(4, 128, 256, 16),
    );
    group.finish();
}

/// MobileNet's claim in time: depthwise 3x3 + pointwise 1x1 against one standard 3x3.
fn separable_pair(c: &mut Criterion) {
    let mut group = configure(c, "separable_pair_32x128to128x16x16");
    group.sample_size(10);
    let standard = Conv2dGeometry::new(32, 128, 128, (16, 16), (3, 3)).with_padding((1, 1));
    bench_layer(&mut group, "standard_3x3", &DISPATCH, &standard);

    let depthwise = depthwise_3x3(32, 128, 16, 1);
    let pointwise = pointwise_1x1(32, 128, 128, 16);
    let mut dw = Buffers::new(&depthwise);
    let mut pw = Buffers::new(&pointwise);
    let macs = depthwise.multiply_adds() + pointwise.multiply_adds();
    group.throughput(Throughput::Elements(macs));
    group.bench_function("depthwise_3x3+pointwise_1x1/fwd", |b| {
        b.iter(|| {
            dw.forward(&DEPTHWISE, &depthwise);
            pw.input.copy_from_slice(&dw.output);
            pw.forward(&POINTWISE, &pointwise);
        })
    });
    group.throughput(Throughput::Elements(3 * macs));
    group.bench_function("depthwise_3x3+pointwise_1x1/fwd+bwd", |b| {
        b.iter(|| {
            dw.forward(&DEPTHWISE, &depthwise);
            pw.input.copy_from_slice(&dw.output);
            pw.forward_backward(&POINTWISE, &pointwise);
            dw.grad_output.copy_from_slice(&pw.grad_input);
            (DEPTHWISE.backward_data)(&depthwise, &dw.grad_output, &dw.weight, &mut dw.grad_input);
            (DEPTHWISE.backward_weight)(
                &depthwise,
                &dw.input,
                &dw.grad_output,
                &mut dw.grad_weight,
                Some(&mut dw.grad_bias),
            );
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    depthwise_layers,
    pointwise_layers,
    reference_layers,
    separable_pair
);
criterion_main!(benches);
