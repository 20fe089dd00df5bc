//! Normalisation tests: fast kernels against the reference over random shapes, finite-difference
//! gradient checks (input, gamma, beta), and hand-computed PyTorch cases.

use proptest::prelude::*;

use super::*;
use crate::test_support::{assert_close, gradient_error, TestRng, GRADIENT_TOLERANCE};

fn shapes() -> impl Strategy<Value = NchwShape> {
    (1usize..4, 1usize..6, 1usize..6, 1usize..10)
        .prop_map(|(batch, channels, height, width)| {
            NchwShape::new(batch, channels, (height, width))
        })
        .prop_filter("training needs two values per channel", |s| {
            s.batch * s.plane_len() >= 2
        })
}

/// Inputs with a per-channel offset of up to `max_offset` and a spread of about 1, upstream
/// gradients, gamma and beta.
struct BatchNormCase {
    g: BatchNormGeometry,
    input: Vec<f32>,
    upstream: Vec<f32>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

impl BatchNormCase {
    fn new(shape: NchwShape, max_offset: f32, seed: u64) -> Self {
        let mut rng = TestRng::new(seed);
        let offsets = rng.vec(shape.channels, -max_offset, max_offset);
        let input = (0..shape.len())
            .map(|i| offsets[i / shape.plane_len() % shape.channels] + rng.uniform(-1.5, 1.5))
            .collect();
        BatchNormCase {
            g: BatchNormGeometry {
                eps: 1e-3,
                ..BatchNormGeometry::new(shape)
            },
            input,
            upstream: rng.vec(shape.len(), -1.0, 1.0),
            gamma: rng.vec(shape.channels, 0.5, 2.0),
            beta: rng.vec(shape.channels, -1.0, 1.0),
        }
    }

    fn train_forward(&self, input: &[f32], gamma: &[f32], beta: &[f32]) -> Vec<f32> {
        let mut output = vec![0.0; self.g.shape.len()];
        batch_norm_forward_train(&self.g, input, Some(gamma), Some(beta), None, &mut output)
            .unwrap();
        output
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn batch_norm_train_matches_reference(
        shape in shapes(),
        affine in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let case = BatchNormCase::new(shape, 100.0, seed);
        let (gamma, beta) = if affine {
            (Some(&case.gamma[..]), Some(&case.beta[..]))
        } else {
            (None, None)
        };
        let channels = shape.channels;
        let (mut fast_mean, mut fast_var) = (case.gamma.clone(), case.beta.clone());
        let (mut slow_mean, mut slow_var) = (case.gamma.clone(), case.beta.clone());
        let (mut fast, mut slow) = (vec![0.0; shape.len()], vec![0.0; shape.len()]);
        let running = RunningStats { mean: &mut fast_mean, var: &mut fast_var };
        let fast_stats =
            batch_norm_forward_train(&case.g, &case.input, gamma, beta, Some(running), &mut fast)
                .unwrap();
        let running = RunningStats { mean: &mut slow_mean, var: &mut slow_var };
        let slow_stats = reference::batch_norm_forward_train(
            &case.g, &case.input, gamma, beta, Some(running), &mut slow,
        );
        assert_close("output", &fast, &slow);
        assert_close("mean", &fast_stats.mean, &slow_stats.mean);
        assert_close("inv_std", &fast_stats.inv_std, &slow_stats.inv_std);
        assert_close("running mean", &fast_mean, &slow_mean);
        assert_close("running var", &fast_var, &slow_var);

        let mut fast_grads = (vec![0.0; shape.len()], vec![0.0; channels], vec![0.0; channels]);
        let mut slow_grads = fast_grads.clone();
        let grads = BatchNormGrads {
            input: &mut fast_grads.0, gamma: &mut fast_grads.1, beta: &mut fast_grads.2,
        };
        batch_norm_backward_train(&case.g, &case.input, &case.upstream, gamma, &fast_stats, grads)
            .unwrap();
        let grads = BatchNormGrads {
            input: &mut slow_grads.0, gamma: &mut slow_grads.1, beta: &mut slow_grads.2,
        };
        reference::batch_norm_backward_train(
            &case.g, &case.input, &case.upstream, gamma, &slow_stats, grads,
        );
        assert_close("grad input", &fast_grads.0, &slow_grads.0);
        assert_close("grad gamma", &fast_grads.1, &slow_grads.1);
        assert_close("grad beta", &fast_grads.2, &slow_grads.2);
    }

    #[test]
    fn batch_norm_eval_matches_reference(shape in shapes(), seed in any::<u64>()) {
        let case = BatchNormCase::new(shape, 100.0, seed);
        let mut rng = TestRng::new(seed ^ 1);
        let running_mean = rng.vec(shape.channels, -100.0, 100.0);
        let running_var = rng.vec(shape.channels, 0.1, 3.0);
        let (gamma, beta) = (Some(&case.gamma[..]), Some(&case.beta[..]));
        let (mut fast, mut slow) = (vec![0.0; shape.len()], vec![0.0; shape.len()]);
        batch_norm_forward_eval(
            &case.g, &case.input, gamma, beta, &running_mean, &running_var, &mut fast,
        ).unwrap();
        reference::batch_norm_forward_eval(
            &case.g, &case.input, gamma, beta, &running_mean, &running_var, &mut slow,
        );
        assert_close("eval output", &fast, &slow);

        let channels = shape.channels;
        let mut fast_grads = (vec![0.0; shape.len()], vec![0.0; channels], vec![0.0; channels]);
        let mut slow_grads = fast_grads.clone();
        let grads = BatchNormGrads {
            input: &mut fast_grads.0, gamma: &mut fast_grads.1, beta: &mut fast_grads.2,
        };
        batch_norm_backward_eval(
            &case.g, &case.input, &case.upstream, gamma, &running_mean, &running_var, grads,
        ).unwrap();
        let grads = BatchNormGrads {
            input: &mut slow_grads.0, gamma: &mut slow_grads.1, beta: &mut slow_grads.2,
        };
        reference::batch_norm_backward_eval(
            &case.g, &case.input, &case.upstream, gamma, &running_mean, &running_var, grads,
        );
        assert_close("eval grad input", &fast_grads.0, &slow_grads.0);
        assert_close("eval grad gamma", &fast_grads.1, &slow_grads.1);
        assert_close("eval grad beta", &fast_grads.2, &slow_grads.2);
    }

    #[test]
    fn batch_norm_train_gradients_match_finite_differences(
        shape in shapes(),
        seed in any::<u64>(),
    ) {
        // Few values per channel make batch norm strongly curved where they bunch up, so the
        // step is small; f32 rounding of the loss stays well below the tolerance at this step.
        let case = BatchNormCase::new(shape, 0.0, seed);
        let step = 3e-3;
        let stats = batch_norm_forward_train(
            &case.g, &case.input, Some(&case.gamma), Some(&case.beta), None,
            &mut vec![0.0; shape.len()],
        ).unwrap();
        let channels = shape.channels;
        let mut grads = (vec![0.0; shape.len()], vec![0.0; channels], vec![0.0; channels]);
        let targets = BatchNormGrads {
            input: &mut grads.0, gamma: &mut grads.1, beta: &mut grads.2,
        };
        batch_norm_backward_train(
            &case.g, &case.input, &case.upstream, Some(&case.gamma), &stats, targets,
        ).unwrap();
        let (x, w, b) = (&case.input, &case.gamma, &case.beta);
        let through_input = |x: &[f32]| case.train_forward(x, w, b);
        let through_gamma = |w: &[f32]| case.train_forward(x, w, b);
        let through_beta = |b: &[f32]| case.train_forward(x, w, b);
        let errors = [
            gradient_error(through_input, x, &case.upstream, &grads.0, step),
            gradient_error(through_gamma, w, &case.upstream, &grads.1, step),
            gradient_error(through_beta, b, &case.upstream, &grads.2, step),
        ];
        prop_assert!(errors.iter().all(|&e| e <= GRADIENT_TOLERANCE), "errors {:?}", errors);
    }

    #[test]
    fn lrn_matches_reference(
        (batch, channels, height, width) in (1usize..3, 1usize..11, 1usize..5, 1usize..7),
        size in 1usize..8,
        (alpha, beta_choice, k) in (1e-4f32..2.0, 0usize..4, 0.5f32..2.5),
        seed in any::<u64>(),
    ) {
        let mut rng = TestRng::new(seed);
        let beta = [0.5, 0.75, 1.0, rng.uniform(0.2, 1.5)][beta_choice];
        let g = LrnGeometry {
            alpha, beta, k, ..LrnGeometry::new(NchwShape::new(batch, channels, (height, width)), size)
        };
        let input = rng.vec(g.shape.len(), -3.0, 3.0);
        let (mut fast, mut slow) = (vec![0.0; input.len()], vec![0.0; input.len()]);
        lrn_forward(&g, &input, &mut fast).unwrap();
        reference::lrn_forward(&g, &input, &mut slow);
        assert_close("lrn forward", &fast, &slow);
        let upstream = rng.vec(input.len(), -1.0, 1.0);
        lrn_backward(&g, &input, &upstream, &mut fast).unwrap();
        reference::lrn_backward(&g, &input, &upstream, &mut slow);
        assert_close("lrn backward", &fast, &slow);
    }

    #[test]
    fn lrn_gradient_matches_finite_differences(
        channels in 1usize..8,
        size in 1usize..6,
        beta_choice in 0usize..4,
        seed in any::<u64>(),
    ) {
        let mut rng = TestRng::new(seed);
        let beta = [0.5, 0.75, 1.0, 0.3][beta_choice];
        let g = LrnGeometry {
            alpha: 0.8, beta, k: 1.5, ..LrnGeometry::new(NchwShape::new(2, channels, (2, 3)), size)
        };
        let input = rng.vec(g.shape.len(), -2.0, 2.0);
        let upstream = rng.vec(input.len(), -1.0, 1.0);
        let mut grad = vec![0.0; input.len()];
        lrn_backward(&g, &input, &upstream, &mut grad).unwrap();
        let forward = |x: &[f32]| {
            let mut y = vec![0.0; x.len()];
            lrn_forward(&g, x, &mut y).unwrap();
            y
        };
        let error = gradient_error(forward, &input, &upstream, &grad, 1e-2);
        prop_assert!(error <= GRADIENT_TOLERANCE, "error {}", error);
    }
}

#[test]
fn batch_norm_eval_gradients_match_finite_differences() {
    let case = BatchNormCase::new(NchwShape::new(2, 3, (2, 3)), 100.0, 5);
    let running_mean = [90.0, -20.0, 3.0];
    let running_var = [0.5, 2.0, 1.0];
    let forward = |x: &[f32], w: &[f32]| {
        let mut y = vec![0.0; x.len()];
        let (mean, var) = (&running_mean[..], &running_var[..]);
        batch_norm_forward_eval(&case.g, x, Some(w), Some(&case.beta), mean, var, &mut y).unwrap();
        y
    };
    let mut grads = (vec![0.0; 36], vec![0.0; 3], vec![0.0; 3]);
    let targets = BatchNormGrads {
        input: &mut grads.0,
        gamma: &mut grads.1,
        beta: &mut grads.2,
    };
    let (x, w) = (&case.input, &case.gamma);
    batch_norm_backward_eval(
        &case.g,
        x,
        &case.upstream,
        Some(w),
        &running_mean,
        &running_var,
        targets,
    )
    .unwrap();
    let up = &case.upstream;
    assert!(gradient_error(|x| forward(x, w), x, up, &grads.0, 1e-2) <= GRADIENT_TOLERANCE);
    assert!(gradient_error(|w| forward(x, w), w, up, &grads.1, 1e-2) <= GRADIENT_TOLERANCE);
}

#[test]
fn batch_norm_gradient_check_catches_a_missing_term() {
    // Negative control: dropping the mean-of-dy term (treating the batch mean as a constant)
    // must fail the same check the real backward passes.
    let case = BatchNormCase::new(NchwShape::new(3, 2, (2, 2)), 0.0, 9);
    let stats = batch_norm_forward_train(
        &case.g,
        &case.input,
        Some(&case.gamma),
        Some(&case.beta),
        None,
        &mut [0.0; 24],
    )
    .unwrap();
    let mut wrong = vec![0.0; 24];
    let mut bad_grads = (vec![0.0; 24], vec![0.0; 2], vec![0.0; 2]);
    let targets = BatchNormGrads {
        input: &mut bad_grads.0,
        gamma: &mut bad_grads.1,
        beta: &mut bad_grads.2,
    };
    batch_norm_backward_train(
        &case.g,
        &case.input,
        &case.upstream,
        Some(&case.gamma),
        &stats,
        targets,
    )
    .unwrap();
    let per_channel_mean_dy = |c: usize| {
        let indices = (0..3).flat_map(|n| (0..4).map(move |i| (n * 2 + c) * 4 + i));
        indices.map(|i| case.upstream[i]).sum::<f32>() / 12.0
    };
    for (i, slot) in wrong.iter_mut().enumerate() {
        let c = i / 4 % 2;
        *slot = bad_grads.0[i] + case.gamma[c] * stats.inv_std[c] * per_channel_mean_dy(c);
    }
    let forward = |x: &[f32]| case.train_forward(x, &case.gamma, &case.beta);
    let up = &case.upstream;
    assert!(gradient_error(forward, &case.input, up, &bad_grads.0, 1e-2) <= GRADIENT_TOLERANCE);
    assert!(gradient_error(forward, &case.input, up, &wrong, 1e-2) > GRADIENT_TOLERANCE);
}

#[test]
fn batch_norm_running_statistics_use_the_unbiased_variance() {
    // bn = torch.nn.BatchNorm2d(1); y = bn(torch.tensor([1., 2., 3., 4.]).view(2, 1, 1, 2))
    // bn.running_mean -> [0.25]  (0.9 * 0 + 0.1 * 2.5)
    // bn.running_var  -> [1.0667] (0.9 * 1 + 0.1 * 5/3: unbiased, the biased variance is 1.25)
    // y.flatten()     -> (x - 2.5) / sqrt(1.25 + 1e-5) = [-1.3416, -0.4472, 0.4472, 1.3416]
    let g = BatchNormGeometry::new(NchwShape::new(2, 1, (1, 2)));
    let (mut running_mean, mut running_var) = ([0.0], [1.0]);
    let mut output = [0.0; 4];
    let running = RunningStats {
        mean: &mut running_mean,
        var: &mut running_var,
    };
    let stats = batch_norm_forward_train(
        &g,
        &[1.0, 2.0, 3.0, 4.0],
        None,
        None,
        Some(running),
        &mut output,
    )
    .unwrap();
    assert_close("running mean", &running_mean, &[0.25]);
    assert_close("running var", &running_var, &[0.9 + 0.1 * 5.0 / 3.0]);
    assert_close("saved mean", &stats.mean, &[2.5]);
    let inv_std = 1.0 / (1.25f32 + 1e-5).sqrt();
    assert_close("saved inv_std", &stats.inv_std, &[inv_std]);
    let expected = [-1.5 * inv_std, -0.5 * inv_std, 0.5 * inv_std, 1.5 * inv_std];
    assert_close("output", &output, &expected);
    // One value per channel cannot be normalised in training (PyTorch raises too).
    let single = BatchNormGeometry::new(NchwShape::new(1, 2, (1, 1)));
    let error = batch_norm_forward_train(&single, &[1.0, 2.0], None, None, None, &mut [0.0; 2]);
    assert!(error.unwrap_err().message().contains("at least 2"));
}

#[test]
fn lrn_small_example_by_hand() {
    // torch.nn.LocalResponseNorm(3, alpha=3., beta=1., k=1.)(torch.tensor([1., 2., 3.]).view(1, 3, 1, 1))
    //   -> [1/6, 2/15, 3/14]: windows {0, 1}, {0, 1, 2}, {1, 2}; alpha / size = 1.
    let shape = NchwShape::new(1, 3, (1, 1));
    let g = LrnGeometry {
        alpha: 3.0,
        beta: 1.0,
        k: 1.0,
        ..LrnGeometry::new(shape, 3)
    };
    let mut output = [0.0; 3];
    lrn_forward(&g, &[1.0, 2.0, 3.0], &mut output).unwrap();
    assert_close("size 3", &output, &[1.0 / 6.0, 2.0 / 15.0, 3.0 / 14.0]);
    // torch.nn.LocalResponseNorm(2, alpha=2., beta=0.75, k=2.)(same input)
    //   -> even size: one channel before, none after: windows {0}, {0, 1}, {1, 2}
    //   -> [1 / 3^0.75, 2 / 7^0.75, 3 / 15^0.75] = [0.4387, 0.4647, 0.3937]
    let g = LrnGeometry {
        alpha: 2.0,
        beta: 0.75,
        k: 2.0,
        ..LrnGeometry::new(shape, 2)
    };
    lrn_forward(&g, &[1.0, 2.0, 3.0], &mut output).unwrap();
    let expected = [
        3f32.powf(-0.75),
        2.0 * 7f32.powf(-0.75),
        3.0 * 15f32.powf(-0.75),
    ];
    assert_close("size 2", &output, &expected);
}

#[test]
fn norm_errors_name_the_shapes() {
    let g = LrnGeometry::new(NchwShape::new(1, 3, (2, 2)), 5);
    let error = lrn_forward(&g, &[0.0; 11], &mut [0.0; 12]).unwrap_err();
    assert!(error
        .message()
        .contains("input has 11 elements, the geometry needs 12"));
    assert!(error.message().contains("LrnGeometry"));
    let g = BatchNormGeometry::new(NchwShape::new(2, 3, (1, 1)));
    let error = batch_norm_forward_train(&g, &[0.0; 6], Some(&[1.0; 2]), None, None, &mut [0.0; 6]);
    assert!(error
        .unwrap_err()
        .message()
        .contains("gamma has 2 elements"));
}
