//! One training step (forward on the tape, cross-entropy, backward, SGD with momentum) of a few
//! zoo models on random data, the end-to-end figure `convgrad bench` and
//! `scripts/torch_bench.py` report: LeNet-5 at 28 x 28, batch 64; ResNet-18 and MobileNet v2 at
//! 32 x 32, batch 32. Throughput is in images per second.
//!
//! `cargo bench --bench train_step`

use std::time::Duration;

use convgrad::graph::{Graph, ParamStore};
use convgrad::models::{self, ModelConfig};
use convgrad::optim::Sgd;
use convgrad::train::train_step;
use convgrad::{Rng, Tensor};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn bench_model(c: &mut Criterion, name: &str, batch: usize, input: [usize; 3]) {
    let graph: Graph =
        models::build_with(name, &ModelConfig::new(10).input(input)).expect("a zoo model");
    let mut rng = Rng::seed(0);
    let mut store = ParamStore::init(&graph, &mut rng);
    let [channels, height, width] = input;
    let images = Tensor::randn(&[batch, channels, height, width], &mut rng);
    let labels: Vec<usize> = (0..batch).map(|_| rng.below(10)).collect();
    let mut optimizer = Sgd::builder(0.01).momentum(0.9).build().expect("valid SGD");
    let mut group = c.benchmark_group("train_step");
    group.throughput(Throughput::Elements(batch as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function(format!("{name}/{height}x{width}/batch{batch}"), |b| {
        b.iter(|| {
            train_step(
                &graph,
                &mut store,
                &mut optimizer,
                images.clone(),
                &labels,
                &mut rng,
            )
            .expect("a training step")
        })
    });
    group.finish();
}

fn train_steps(c: &mut Criterion) {
    bench_model(c, "lenet5", 64, [1, 28, 28]);
    bench_model(c, "resnet18", 32, [3, 32, 32]);
    bench_model(c, "mobilenet_v2", 32, [3, 32, 32]);
}

criterion_group!(benches, train_steps);
criterion_main!(benches);
