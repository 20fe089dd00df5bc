//! Determinism: the same seed and the same thread count give bit-identical losses and
//! parameters, run after run. (The kernels' own parallel reductions are checked in
//! `kernels/tests/determinism.rs`; whole `convgrad train` processes in `tests/crash.rs`, which
//! compares a resumed run with an uninterrupted one.)

use convgrad::graph::ParamStore;
use convgrad::models::{self, ModelConfig};
use convgrad::nn::Mode;
use convgrad::optim::{trainable_grads, Adam, Optimizer};
use convgrad::{Rng, Tape, Tensor};

/// `steps` Adam steps of `model` on seeded random batches; the loss of every step and the final
/// parameters, as bits.
fn train_steps(model: &str, input: [usize; 3], steps: usize) -> (Vec<u32>, Vec<Vec<u32>>) {
    let graph = models::build_with(model, &ModelConfig::new(10).input(input)).unwrap();
    let mut store = ParamStore::init(&graph, &mut Rng::seed(21));
    let mut optimizer = Adam::builder(1e-3).build().unwrap();
    let mut data_rng = Rng::seed(5);
    let mut dropout_rng = Rng::seed(6);
    let kinds = store.kinds().to_vec();
    let batch = 6;
    let mut losses = Vec::new();
    for _ in 0..steps {
        let len = batch * input.iter().product::<usize>();
        let images: Vec<f32> = (0..len).map(|_| data_rng.uniform(-1.0, 1.0)).collect();
        let images = Tensor::from_vec(images, &[batch, input[0], input[1], input[2]]).unwrap();
        let labels: Vec<usize> = (0..batch).map(|i| (i * 3) % 10).collect();
        let mut tape = Tape::new();
        let x = tape.input(images);
        let out = graph
            .forward_tape(&mut tape, &store, x, Mode::Train, &mut dropout_rng, true)
            .unwrap();
        let loss = tape.cross_entropy(out.output, &labels).unwrap();
        losses.push(tape.value(loss).unwrap().item().unwrap().to_bits());
        let mut grads = tape.backward(loss).unwrap();
        let grads = trainable_grads(&kinds, &out.params, &mut grads).unwrap();
        optimizer.step(store.tensors_mut(), &grads).unwrap();
        for (slot, value) in out.buffer_updates {
            store.tensors_mut()[slot] = value;
        }
    }
    let params = store
        .tensors()
        .iter()
        .map(|t| t.data().iter().map(|v| v.to_bits()).collect())
        .collect();
    (losses, params)
}

#[test]
fn same_seed_and_threads_give_bit_identical_training() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    // ResNet-18: direct convolutions, batch norm, residual sums. MobileNet v2: depthwise and
    // pointwise convolutions, ReLU6, dropout.
    for (model, input) in [("resnet18", [3, 16, 16]), ("mobilenet_v2", [3, 32, 32])] {
        let (losses, params) = pool.install(|| train_steps(model, input, 3));
        let (again, params_again) = pool.install(|| train_steps(model, input, 3));
        assert_eq!(losses, again, "{model}: losses differ between runs");
        assert!(
            params == params_again,
            "{model}: parameters differ between runs"
        );
        // The steps did train: the loss moved.
        assert_ne!(losses[0], losses[2], "{model}");
    }
}
