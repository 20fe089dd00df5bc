//! Common mistakes when writing CNNs, each shown to matter with numbers (see docs/mistakes.md).
//!
//! Every test prints what it measured (`cargo test --release --test mistakes -- --nocapture`)
//! and fails if the effect it demonstrates were to disappear: each asserts both the mistake's
//! symptom and the correct version's absence of it.

use convgrad::autograd::{BatchNormOptions, Conv2dOptions};
use convgrad::graph::{Graph, GraphBuilder, NodeId, ParamStore};
use convgrad::nn::{Conv2d, Mode};
use convgrad::optim::{trainable_grads, Adam, Optimizer};
use convgrad::{functional as F, Rng, Tape, Tensor};

// ---------------------------------------------------------------------------------------------
// 1. One BatchNorm shared by two convolutions
// ---------------------------------------------------------------------------------------------

/// Per-channel mean and standard deviation of an `[N, C, H, W]` tensor.
fn channel_stats(t: &Tensor) -> Vec<(f64, f64)> {
    let &[n, c, h, w] = t.shape() else {
        panic!("expects [N, C, H, W]")
    };
    let mut sums = vec![(0.0f64, 0.0f64); c];
    for (i, &v) in t.data().iter().enumerate() {
        let s = &mut sums[(i / (h * w)) % c];
        s.0 += v as f64;
        s.1 += (v as f64) * (v as f64);
    }
    let count = (n * h * w) as f64;
    sums.iter()
        .map(|&(sum, sq)| {
            let mean = sum / count;
            (mean, (sq / count - mean * mean).max(0.0).sqrt())
        })
        .collect()
}

/// How far a normalised output is from zero mean and unit deviation, per channel on average:
/// `(mean |mean|, mean |std - 1|)`.
fn normalisation_error(t: &Tensor) -> (f64, f64) {
    let stats = channel_stats(t);
    let c = stats.len() as f64;
    (
        stats.iter().map(|s| s.0.abs()).sum::<f64>() / c,
        stats.iter().map(|s| (s.1 - 1.0).abs()).sum::<f64>() / c,
    )
}

#[test]
fn a_batch_norm_shared_by_two_convolutions_mixes_their_statistics() {
    // The graph builder does not let two nodes share a name, so the torchvision way (`bn1` after
    // conv1, `bn2` after conv2) is the only one it can express; reusing "bn" is refused.
    let (mut b, x) = GraphBuilder::new("block", &[8, 8, 8]);
    let c1 = b.conv("conv1", x, Conv2d::new(0, 8, 3).padding(1)).unwrap();
    let c2 = b
        .conv("conv2", c1, Conv2d::new(0, 8, 3).padding(1))
        .unwrap();
    b.batch_norm("bn", c1).unwrap();
    let err = b.batch_norm("bn", c2).unwrap_err().to_string();
    println!("builder: {err}");
    assert!(err.contains("already exists"), "{err}");

    // What sharing does to the statistics, written with the functional ops as a hand-written
    // model would: conv1 sees the zero-mean input, conv2 sees ReLU outputs (all >= 0), so the two
    // outputs have different per-channel means and variances.
    let mut rng = Rng::seed(3);
    let w1 = Tensor::kaiming_normal(&[8, 8, 3, 3], &mut rng).unwrap();
    let w2 = Tensor::kaiming_normal(&[8, 8, 3, 3], &mut rng).unwrap();
    let options = Conv2dOptions {
        padding: (1, 1),
        ..Conv2dOptions::default()
    };
    let outputs = |rng: &mut Rng| {
        let x = Tensor::randn(&[16, 8, 8, 8], rng);
        let y1 = F::conv2d(&x, &w1, None, options).unwrap();
        let y2 = F::conv2d(&F::relu(&y1), &w2, None, options).unwrap();
        (y1, y2)
    };
    let bn = BatchNormOptions::default();
    let fresh = || (Tensor::zeros(&[8]), Tensor::ones(&[8]));
    let (mut shared_mean, mut shared_var) = fresh();
    let (mut mean1, mut var1) = fresh();
    let (mut mean2, mut var2) = fresh();
    // Training: every batch updates the running statistics of whichever BN it goes through.
    for _ in 0..100 {
        let (y1, y2) = outputs(&mut rng);
        for (y, (m, v)) in [
            (&y1, (&mut mean1, &mut var1)),
            (&y2, (&mut mean2, &mut var2)),
        ] {
            F::batch_norm(y, Some((m, v)), None, None, true, bn).unwrap();
        }
        for y in [&y1, &y2] {
            let running = Some((&mut shared_mean, &mut shared_var));
            F::batch_norm(y, running, None, None, true, bn).unwrap();
        }
    }
    // Evaluation on a fresh batch: normalised outputs should have mean ~0 in every channel.
    let (y1, y2) = outputs(&mut rng);
    let eval = |y: &Tensor, m: &Tensor, v: &Tensor| {
        let (mut m, mut v) = (m.clone(), v.clone());
        F::batch_norm(y, Some((&mut m, &mut v)), None, None, false, bn).unwrap()
    };
    let separate = [
        normalisation_error(&eval(&y1, &mean1, &var1)),
        normalisation_error(&eval(&y2, &mean2, &var2)),
    ];
    let shared = [
        normalisation_error(&eval(&y1, &shared_mean, &shared_var)),
        normalisation_error(&eval(&y2, &shared_mean, &shared_var)),
    ];
    println!(
        "eval-mode output, per channel |mean| and |std - 1| (0 is right): separate BNs \
         conv1 {:.3} {:.3}, conv2 {:.3} {:.3}; one shared BN conv1 {:.3} {:.3}, conv2 {:.3} {:.3}",
        separate[0].0,
        separate[0].1,
        separate[1].0,
        separate[1].1,
        shared[0].0,
        shared[0].1,
        shared[1].0,
        shared[1].1
    );
    for i in 0..2 {
        assert!(separate[i].0 < 0.1 && separate[i].1 < 0.1, "{separate:?}");
        // Each output is off by a good part of a standard deviation in mean or in scale, about
        // ten times the error of its own BN.
        let (own, mixed) = (separate[i].0 + separate[i].1, shared[i].0 + shared[i].1);
        assert!(
            mixed > 0.25 && mixed > 5.0 * own,
            "{shared:?} vs {separate:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 2. A stride of 2 in every residual block
// ---------------------------------------------------------------------------------------------

const WIDTH: usize = 16;

/// A ResNet-18-shaped body for a 32 x 32 input: a 3 x 3 stem, then eight basic blocks with the
/// given strides (projection shortcuts wherever the shape changes), pooling and a classifier.
fn resnet_body(strides: &[usize; 8]) -> Graph {
    let (mut b, x) = GraphBuilder::new("body", &[3, 32, 32]);
    let conv = |stride| {
        Conv2d::new(0, WIDTH, 3)
            .stride(stride)
            .padding(1)
            .bias(false)
    };
    let mut x = b.conv("stem", x, conv(1)).unwrap();
    for (i, &stride) in strides.iter().enumerate() {
        let name = format!("block{}", i + 1);
        let out = b.conv(format!("{name}.conv1"), x, conv(stride)).unwrap();
        let out = b.batch_norm(format!("{name}.bn1"), out).unwrap();
        let out = b.relu(format!("{name}.relu1"), out).unwrap();
        let out = b.conv(format!("{name}.conv2"), out, conv(1)).unwrap();
        let out = b.batch_norm(format!("{name}.bn2"), out).unwrap();
        let shortcut: NodeId = if stride == 1 {
            x
        } else {
            let projection = Conv2d::new(0, WIDTH, 1).stride(stride).bias(false);
            b.conv(format!("{name}.downsample"), x, projection).unwrap()
        };
        let sum = b.add(format!("{name}.add"), &[out, shortcut]).unwrap();
        x = b.relu(format!("{name}.relu"), sum).unwrap();
    }
    let x = b.global_avg_pool("avgpool", x).unwrap();
    let x = b.linear("fc", x, 10).unwrap();
    b.build(x).unwrap()
}

/// Output side of every block.
fn block_sizes(graph: &Graph) -> Vec<usize> {
    (1..=8)
        .map(|i| graph.node(&format!("block{i}.relu")).unwrap().shape[1])
        .collect()
}

/// Fraction of the last block's second 3 x 3 convolution's *off-centre* weights (8 of each 9)
/// whose gradient is not zero after one backward pass.
fn off_centre_weights_with_gradient(graph: &Graph) -> f64 {
    let mut rng = Rng::seed(0);
    let store = ParamStore::init(graph, &mut rng);
    let mut tape = Tape::new();
    let input = tape.input(Tensor::randn(&[4, 3, 32, 32], &mut rng));
    let out = graph
        .forward_tape(&mut tape, &store, input, Mode::Train, &mut rng, false)
        .unwrap();
    let loss = tape.cross_entropy(out.output, &[0, 1, 2, 3]).unwrap();
    let grads = tape.backward(loss).unwrap();
    let slot = graph
        .param_specs()
        .iter()
        .position(|p| p.name == "block8.conv2.weight")
        .unwrap();
    let g = grads.get(out.params[slot]).unwrap();
    // Weight [out, in, 3, 3]: position 4 of each 3 x 3 kernel is its centre.
    let off_centre: Vec<f32> = g
        .data()
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 9 != 4)
        .map(|(_, &v)| v)
        .collect();
    off_centre.iter().filter(|&&v| v != 0.0).count() as f64 / off_centre.len() as f64
}

#[test]
fn a_stride_of_2_in_every_residual_block_collapses_the_map_to_one_pixel() {
    let right = resnet_body(&[1, 1, 2, 1, 2, 1, 2, 1]);
    let wrong = resnet_body(&[2; 8]);
    let (right_sizes, wrong_sizes) = (block_sizes(&right), block_sizes(&wrong));
    println!("map side after each block, 32x32 input: stride 2 per stage {right_sizes:?}, in every block {wrong_sizes:?}");
    assert_eq!(right_sizes, [32, 32, 16, 16, 8, 8, 4, 4]);
    assert_eq!(wrong_sizes, [16, 8, 4, 2, 1, 1, 1, 1]);

    // On a 1 x 1 map padded by 1, a 3 x 3 kernel only ever multiplies padding with all but its
    // centre weight: 8 of its 9 weights get no gradient and never learn.
    let (right_frac, wrong_frac) = (
        off_centre_weights_with_gradient(&right),
        off_centre_weights_with_gradient(&wrong),
    );
    println!(
        "block8.conv2 off-centre weights (8 of 9) with a non-zero gradient: {:.1}% (stride per stage) \
         vs {:.1}% (stride everywhere)",
        100.0 * right_frac,
        100.0 * wrong_frac
    );
    assert!(right_frac > 0.9, "{right_frac}");
    assert_eq!(wrong_frac, 0.0);
}

// ---------------------------------------------------------------------------------------------
// 3. Flattening instead of global pooling before the classifier
// ---------------------------------------------------------------------------------------------

/// A small convolutional trunk for `[1, size, size]` images ending in 64 channels at a quarter
/// of the side, then `flatten` + fc or global average pooling + fc.
fn classifier(size: usize, flatten: bool) -> Graph {
    let (mut b, x) = GraphBuilder::new("net", &[1, size, size]);
    let x = b
        .conv("conv1", x, Conv2d::new(0, 32, 3).stride(2).padding(1))
        .unwrap();
    let x = b.relu("relu1", x).unwrap();
    let x = b
        .conv("conv2", x, Conv2d::new(0, 64, 3).stride(2).padding(1))
        .unwrap();
    let x = b.relu("relu2", x).unwrap();
    let x = if flatten {
        b.flatten("flatten", x).unwrap()
    } else {
        b.global_avg_pool("avgpool", x).unwrap()
    };
    let x = b.linear("fc", x, 10).unwrap();
    b.build(x).unwrap()
}

#[test]
fn flattening_before_the_classifier_multiplies_its_parameters_and_fixes_the_input_size() {
    // ResNet-18's last map at 224 x 224 is 512 x 7 x 7: the classifier on top of it.
    let head = |flatten: bool| {
        let (mut b, x) = GraphBuilder::new("head", &[512, 7, 7]);
        let x = if flatten {
            b.flatten("flatten", x).unwrap()
        } else {
            b.global_avg_pool("avgpool", x).unwrap()
        };
        let x = b.linear("fc", x, 1000).unwrap();
        b.build(x).unwrap().parameter_count()
    };
    let (flat, pooled) = (head(true), head(false));
    println!(
        "ResNet-18's classifier: {flat} parameters after flatten, {pooled} after global pooling"
    );
    assert_eq!(pooled, 512 * 1000 + 1000);
    assert_eq!(flat, 512 * 49 * 1000 + 1000);
    // More than ResNet-18's whole 11.7M.
    assert!(flat > 2 * 11_689_512);

    // Weights trained at 28 x 28, reused at 32 x 32.
    let mut rng = Rng::seed(0);
    let x32 = Tensor::randn(&[2, 1, 32, 32], &mut rng);
    for flatten in [false, true] {
        let (g28, g32) = (classifier(28, flatten), classifier(32, flatten));
        let trained = ParamStore::init(&g28, &mut rng);
        let named = trained
            .iter()
            .map(|(name, t)| (name.to_string(), t.clone()));
        let reused = ParamStore::from_named(&g32, named);
        let fc_params = g28.node_parameter_count(g28.node("fc").unwrap());
        match (flatten, reused) {
            (false, Ok(store)) => {
                let logits = g32.forward(&store, &x32).unwrap();
                println!(
                    "global pooling: fc has {fc_params} parameters; the 28x28 weights run on 32x32 -> {:?}",
                    logits.shape()
                );
            }
            (true, Err(e)) => {
                println!("flatten: fc has {fc_params} parameters; the 28x28 weights do not fit 32x32: {e}");
                assert!(e.to_string().contains("fc.weight"), "{e}");
            }
            (flatten, result) => panic!("flatten = {flatten}: unexpected {result:?}"),
        }
    }
    assert_eq!(
        classifier(28, true).parameter_count() - classifier(28, false).parameter_count(),
        64 * 49 * 10 - 64 * 10
    );
}

// ---------------------------------------------------------------------------------------------
// 4. A single-output head for a 10-class problem
// ---------------------------------------------------------------------------------------------

const CLASSES: usize = 10;

/// Ten classes of 2-D points around a circle (class `k` near angle `2 pi k / 10`).
fn circle_classes(points: usize, rng: &mut Rng) -> (Tensor, Vec<usize>) {
    let mut xy = Vec::with_capacity(points * 2);
    let mut labels = Vec::with_capacity(points);
    for i in 0..points {
        let class = i % CLASSES;
        let angle = std::f32::consts::TAU * class as f32 / CLASSES as f32;
        xy.push(angle.cos() + 0.08 * rng.normal());
        xy.push(angle.sin() + 0.08 * rng.normal());
        labels.push(class);
    }
    (Tensor::from_vec(xy, &[points, 2]).unwrap(), labels)
}

/// Trains a linear layer `2 -> outputs` for 400 full-batch Adam steps with `loss`; returns the
/// trained weight and bias.
fn train_linear(
    x: &Tensor,
    outputs: usize,
    loss: impl Fn(&mut Tape, convgrad::Var) -> convgrad::Result<convgrad::Var>,
) -> convgrad::Result<Vec<Tensor>> {
    let mut rng = Rng::seed(1);
    let mut params = vec![
        Tensor::xavier_uniform(&[outputs, 2], &mut rng)?,
        Tensor::zeros(&[outputs]),
    ];
    let mut adam = Adam::new(0.05)?;
    for _ in 0..400 {
        let mut tape = Tape::new();
        let input = tape.input(x.clone());
        let (w, b) = (tape.param(params[0].clone()), tape.param(params[1].clone()));
        let out = tape.linear(input, w, Some(b))?;
        let l = loss(&mut tape, out)?;
        let mut grads = tape.backward(l)?;
        adam.step(&mut params, &[grads.take(w), grads.take(b)])?;
    }
    Ok(params)
}

#[test]
fn a_single_output_head_cannot_hold_ten_classes() {
    let mut rng = Rng::seed(0);
    let (x, labels) = circle_classes(1000, &mut rng);

    // Cross-entropy refuses one logit for ten classes.
    let mut tape = Tape::new();
    let input = tape.input(x.clone());
    let w = tape.param(Tensor::ones(&[1, 2]));
    let logit = tape.linear(input, w, None).unwrap();
    let err = tape.cross_entropy(logit, &labels).unwrap_err().to_string();
    println!("cross-entropy on a [N, 1] head: {err}");
    assert!(err.contains("1 classes"), "{err}");

    // The usual workaround, regressing the class index with MSE, imposes an order on the classes
    // (class 5 is "between" 4 and 6, 9 is "far" from 0): one linear output cannot follow a circle.
    let targets = Tensor::from_vec(labels.iter().map(|&l| l as f32).collect(), &[1000, 1]).unwrap();
    let regression = train_linear(&x, 1, |tape, out| {
        let t = tape.input(targets.clone());
        tape.mse_loss(out, t)
    })
    .unwrap();
    let predicted = F::linear(&x, &regression[0], Some(&regression[1])).unwrap();
    let regression_acc = predicted
        .data()
        .iter()
        .zip(&labels)
        .filter(|(p, &l)| p.round().clamp(0.0, 9.0) as usize == l)
        .count() as f64
        / labels.len() as f64;

    let softmax = train_linear(&x, CLASSES, |tape, out| tape.cross_entropy(out, &labels)).unwrap();
    let logits = F::linear(&x, &softmax[0], Some(&softmax[1])).unwrap();
    let softmax_acc =
        convgrad::train::correct_predictions(&logits, &labels) as f64 / labels.len() as f64;
    println!(
        "same linear layer on the same points: 1 output + MSE on the class index {:.1}%, \
         10 outputs + cross-entropy {:.1}%",
        100.0 * regression_acc,
        100.0 * softmax_acc
    );
    assert!(regression_acc < 0.35, "{regression_acc}");
    assert!(softmax_acc > 0.95, "{softmax_acc}");
}

// ---------------------------------------------------------------------------------------------
// 5. A learning rate too high for Adam
// ---------------------------------------------------------------------------------------------

/// Full-batch losses of an MLP (2-64-64-10) on the circle classes, trained with Adam at `lr`.
fn adam_losses(lr: f64, steps: usize) -> Vec<f32> {
    let mut rng = Rng::seed(0);
    let (x, labels) = circle_classes(500, &mut rng);
    let sizes = [2, 64, 64, CLASSES];
    let mut params = Vec::new();
    for pair in sizes.windows(2) {
        params.push(Tensor::kaiming_uniform(&[pair[1], pair[0]], &mut rng).unwrap());
        params.push(Tensor::zeros(&[pair[1]]));
    }
    let mut adam = Adam::new(lr).unwrap();
    let mut losses = Vec::with_capacity(steps);
    for _ in 0..steps {
        let mut tape = Tape::new();
        let mut h = tape.input(x.clone());
        let vars: Vec<_> = params.iter().map(|p| tape.param(p.clone())).collect();
        for (layer, pair) in vars.chunks(2).enumerate() {
            h = tape.linear(h, pair[0], Some(pair[1])).unwrap();
            if layer + 1 < vars.len() / 2 {
                h = tape.relu(h).unwrap();
            }
        }
        let loss = tape.cross_entropy(h, &labels).unwrap();
        losses.push(tape.value(loss).unwrap().item().unwrap());
        let mut grads = tape.backward(loss).unwrap();
        let g: Vec<_> = vars.iter().map(|&v| grads.take(v)).collect();
        adam.step(&mut params, &g).unwrap();
    }
    losses
}

#[test]
fn a_learning_rate_too_high_for_adam_blows_the_loss_up_and_leaves_it_stuck() {
    let steps = 150;
    let rates = [1e-2, 1e-1, 1.0, 10.0];
    let runs: Vec<Vec<f32>> = rates.iter().map(|&lr| adam_losses(lr, steps)).collect();
    println!("Adam on the 10-class circle, MLP 2-64-64-10, full batch:");
    println!(
        "{:>6} {:>10} {:>12} {:>10} {:>10}",
        "lr", "step 0", "worst", "step 50", "step 149"
    );
    for (lr, losses) in rates.iter().zip(&runs) {
        let worst = losses.iter().copied().fold(0.0f32, f32::max);
        println!(
            "{lr:>6} {:>10.3} {worst:>12.1} {:>10.4} {:>10.4}",
            losses[0],
            losses[50],
            losses[steps - 1]
        );
        assert!(losses.iter().all(|l| l.is_finite()), "lr {lr}: {losses:?}");
    }
    let [usual, _, high, far_too_high] = [&runs[0], &runs[1], &runs[2], &runs[3]];
    let initial = usual[0];
    // Same seed, same initialisation: the runs differ only by the learning rate.
    assert!(runs.iter().all(|l| l[0] == initial));
    assert!(usual[steps - 1] < 0.01, "lr 1e-2 converges: {usual:?}");
    // Adam moves each weight by about lr per step whatever the gradient, so a high rate does not
    // run off to infinity as SGD would: the loss jumps at once and stays far behind.
    let worst = |l: &[f32]| l.iter().copied().fold(0.0f32, f32::max);
    assert!(worst(high) > 10.0 * initial, "lr 1 jumps: {high:?}");
    assert!(
        high[steps - 1] > 100.0 * usual[steps - 1],
        "lr 1 stays far behind: {high:?}"
    );
    assert!(
        worst(far_too_high) > 1e4 * initial,
        "lr 10 jumps: {far_too_high:?}"
    );
    assert!(
        far_too_high[steps - 1] > 0.7 * initial,
        "lr 10 stays near chance: {far_too_high:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Forgetting evaluation mode for BatchNorm and dropout
// ---------------------------------------------------------------------------------------------

fn bn_dropout_net() -> Graph {
    let (mut b, x) = GraphBuilder::new("net", &[1, 12, 12]);
    let x = b
        .conv("conv", x, Conv2d::new(0, 16, 3).padding(1).bias(false))
        .unwrap();
    let x = b.batch_norm("bn", x).unwrap();
    let x = b.relu("relu", x).unwrap();
    let x = b.global_avg_pool("avgpool", x).unwrap();
    let x = b.dropout("dropout", x, 0.5).unwrap();
    let x = b.linear("fc", x, 10).unwrap();
    b.build(x).unwrap()
}

/// Logits on a tape in `mode`; in training mode, dropout only if `dropout`.
fn logits_on_tape(
    graph: &Graph,
    store: &ParamStore,
    x: &Tensor,
    mode: Mode,
    seed: u64,
    dropout: bool,
) -> Tensor {
    let mut tape = Tape::new();
    let input = tape.input(x.clone());
    let mut rng = Rng::seed(seed);
    let out = graph
        .forward_tape(&mut tape, store, input, mode, &mut rng, dropout)
        .unwrap();
    tape.value(out.output).unwrap().clone()
}

/// Largest difference between the first `rows` rows of two `[N, C]` logits.
fn max_diff(a: &Tensor, b: &Tensor, rows: usize) -> f32 {
    let c = a.shape()[1];
    a.data()[..rows * c]
        .iter()
        .zip(&b.data()[..rows * c])
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn forgetting_evaluation_mode_makes_predictions_random_and_dependent_on_the_batch() {
    let graph = bn_dropout_net();
    let mut rng = Rng::seed(0);
    let mut store = ParamStore::init(&graph, &mut rng);
    // A few training steps so that the running statistics and weights are not the initial ones.
    let mut adam = Adam::new(1e-2).unwrap();
    for _ in 0..20 {
        let x = Tensor::randn(&[16, 1, 12, 12], &mut rng);
        let labels: Vec<usize> = (0..16).map(|i| i % 10).collect();
        let mut tape = Tape::new();
        let input = tape.input(x);
        let out = graph
            .forward_tape(&mut tape, &store, input, Mode::Train, &mut rng, true)
            .unwrap();
        let loss = tape.cross_entropy(out.output, &labels).unwrap();
        let mut grads = tape.backward(loss).unwrap();
        let grads = trainable_grads(store.kinds(), &out.params, &mut grads).unwrap();
        adam.step(store.tensors_mut(), &grads).unwrap();
        for (slot, value) in out.buffer_updates {
            store.tensors_mut()[slot] = value;
        }
    }

    // The same 4 images twice, and the same 4 images among 4 other, brighter ones.
    let images = Tensor::randn(&[4, 1, 12, 12], &mut rng);
    let others = Tensor::randn(&[4, 1, 12, 12], &mut rng).map(|v| 2.0 + 3.0 * v);
    let mixed = F::concat(&[&images, &others], 0).unwrap();

    // Dropout: two runs on the same images. Batch norm: with dropout off, the same images alone
    // and among others.
    let train_a = logits_on_tape(&graph, &store, &images, Mode::Train, 1, true);
    let train_b = logits_on_tape(&graph, &store, &images, Mode::Train, 2, true);
    let train_alone = logits_on_tape(&graph, &store, &images, Mode::Train, 1, false);
    let train_mixed = logits_on_tape(&graph, &store, &mixed, Mode::Train, 1, false);
    let eval_a = logits_on_tape(&graph, &store, &images, Mode::Eval, 1, true);
    let eval_b = logits_on_tape(&graph, &store, &images, Mode::Eval, 2, true);
    let eval_mixed = logits_on_tape(&graph, &store, &mixed, Mode::Eval, 1, true);
    let inference = graph.forward(&store, &images).unwrap();

    let (train_runs, train_batch) = (
        max_diff(&train_a, &train_b, 4),
        max_diff(&train_alone, &train_mixed, 4),
    );
    let (eval_runs, eval_batch) = (
        max_diff(&eval_a, &eval_b, 4),
        max_diff(&eval_a, &eval_mixed, 4),
    );
    println!(
        "largest logit change for the same 4 images: train mode {train_runs:.3} between two runs, \
         {train_batch:.3} with other images in the batch (dropout off); eval mode {eval_runs:.2e} \
         and {eval_batch:.2e}"
    );
    assert!(train_runs > 0.05, "dropout in train mode: {train_runs}");
    assert!(
        train_batch > 0.05,
        "batch statistics in train mode: {train_batch}"
    );
    assert!(eval_runs == 0.0, "{eval_runs}");
    assert!(eval_batch < 1e-5, "{eval_batch}");
    // graph.forward is evaluation mode: the same numbers as Mode::Eval on a tape.
    assert!(max_diff(&inference, &eval_a, 4) < 1e-5);
}
