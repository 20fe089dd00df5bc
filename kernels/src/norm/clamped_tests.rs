//! The clamped batch normalisation equals batch normalisation followed by the clamp, bit for bit,
//! forward and backward, on planes of every length (whole vectors, tails, and planes shorter than
//! one vector).

use proptest::prelude::*;

use super::*;
use crate::test_support::TestRng;

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

/// A case whose outputs land on both sides of each end of the clamp.
struct Case {
    g: BatchNormGeometry,
    input: Vec<f32>,
    upstream: Vec<f32>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

impl Case {
    fn new(shape: NchwShape, clamp: Clamp, seed: u64) -> Self {
        let mut rng = TestRng::new(seed);
        let (gamma, beta) = match clamp {
            Clamp::Relu => (
                rng.vec(shape.channels, 0.5, 2.0),
                rng.vec(shape.channels, -1.0, 1.0),
            ),
            Clamp::Relu6 => (
                rng.vec(shape.channels, 2.0, 5.0),
                rng.vec(shape.channels, 1.0, 5.0),
            ),
        };
        Case {
            g: BatchNormGeometry::new(shape),
            input: rng.vec(shape.len(), -3.0, 3.0),
            upstream: rng.vec(shape.len(), -1.0, 1.0),
            gamma,
            beta,
        }
    }
}

fn shapes() -> impl Strategy<Value = NchwShape> {
    (1usize..4, 1usize..6, 1usize..7, 1usize..12)
        .prop_map(|(batch, channels, height, width)| {
            NchwShape::new(batch, channels, (height, width))
        })
        .prop_filter("training needs two values per channel", |s| {
            s.batch * s.plane_len() >= 2
        })
}

fn clamps() -> impl Strategy<Value = Clamp> {
    prop_oneof![Just(Clamp::Relu), Just(Clamp::Relu6)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn clamped_equals_batch_norm_then_clamp(
        shape in shapes(),
        clamp in clamps(),
        affine in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let case = Case::new(shape, clamp, seed);
        let (gamma, beta) = if affine {
            (Some(&case.gamma[..]), Some(&case.beta[..]))
        } else {
            (None, None)
        };
        let n = shape.len();
        let channels = shape.channels;

        let (mut plain_mean, mut plain_var) = (vec![0.5; channels], vec![2.0; channels]);
        let mut plain = vec![0.0; n];
        let running = RunningStats { mean: &mut plain_mean, var: &mut plain_var };
        let plain_stats =
            batch_norm_forward_train(&case.g, &case.input, gamma, beta, Some(running), &mut plain)
                .unwrap();
        let clamped_after: Vec<f32> = plain.iter().map(|&v| clamp.apply(v)).collect();

        let (mut fused_mean, mut fused_var) = (vec![0.5; channels], vec![2.0; channels]);
        let mut fused = vec![f32::NAN; n];
        let running = RunningStats { mean: &mut fused_mean, var: &mut fused_var };
        let fused_stats = batch_norm_forward_train_clamped(
            &case.g, clamp, &case.input, gamma, beta, Some(running), &mut fused,
        ).unwrap();
        prop_assert_eq!(bits(&fused), bits(&clamped_after));
        prop_assert_eq!(&fused_stats, &plain_stats);
        prop_assert_eq!(bits(&fused_mean), bits(&plain_mean));
        prop_assert_eq!(bits(&fused_var), bits(&plain_var));

        // Backward: the clamp's gradient (read from the BatchNorm's value, as the unfused op
        // does), then batch normalisation's.
        let masked: Vec<f32> = (case.upstream.iter().zip(&plain))
            .map(|(&dy, &x)| dy * clamp.derivative_at_output(clamp.apply(x)))
            .collect();
        let mut plain_grads = (vec![0.0; n], vec![0.0; channels], vec![0.0; channels]);
        let grads = BatchNormGrads {
            input: &mut plain_grads.0, gamma: &mut plain_grads.1, beta: &mut plain_grads.2,
        };
        batch_norm_backward_train(&case.g, &case.input, &masked, gamma, &plain_stats, grads)
            .unwrap();
        let mut fused_grads = (vec![f32::NAN; n], vec![f32::NAN; channels], vec![0.0; channels]);
        let grads = BatchNormGrads {
            input: &mut fused_grads.0, gamma: &mut fused_grads.1, beta: &mut fused_grads.2,
        };
        batch_norm_backward_train_clamped(
            &case.g, clamp, &case.input, &fused, &case.upstream, gamma, &fused_stats, grads,
        ).unwrap();
        prop_assert_eq!(bits(&fused_grads.0), bits(&plain_grads.0));
        prop_assert_eq!(bits(&fused_grads.1), bits(&plain_grads.1));
        prop_assert_eq!(bits(&fused_grads.2), bits(&plain_grads.2));
    }
}

/// The clamp really cuts: on this case some outputs are clamped and some gradients masked,
/// so the equality above is not between two unclamped passes.
#[test]
fn the_cases_reach_both_ends_of_relu6() {
    let shape = NchwShape::new(2, 3, (4, 5));
    let case = Case::new(shape, Clamp::Relu6, 7);
    let mut out = vec![0.0; shape.len()];
    batch_norm_forward_train_clamped(
        &case.g,
        Clamp::Relu6,
        &case.input,
        Some(&case.gamma),
        Some(&case.beta),
        None,
        &mut out,
    )
    .unwrap();
    assert!(out.contains(&0.0), "{out:?}");
    assert!(out.contains(&6.0), "{out:?}");
    assert!(out.iter().any(|&v| v > 0.0 && v < 6.0), "{out:?}");
}

#[test]
fn clamped_backward_checks_the_output_length() {
    let shape = NchwShape::new(2, 1, (1, 3));
    let g = BatchNormGeometry::new(shape);
    let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let mut y = [0.0; 6];
    let stats =
        batch_norm_forward_train_clamped(&g, Clamp::Relu, &x, None, None, None, &mut y).unwrap();
    let (mut dx, mut dw, mut db) = ([0.0; 6], [0.0; 1], [0.0; 1]);
    let grads = BatchNormGrads {
        input: &mut dx,
        gamma: &mut dw,
        beta: &mut db,
    };
    let err =
        batch_norm_backward_train_clamped(&g, Clamp::Relu, &x, &y[..5], &x, None, &stats, grads)
            .unwrap_err();
    assert!(err.message().contains("output"), "{}", err.message());
    assert!(err.message().contains('5'), "{}", err.message());
}
