use super::*;
use crate::autograd::gradcheck::check_gradients;
use crate::autograd::Tape;
use crate::Rng;
use crate::Tensor;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn batch_norm_gradients(n in 2usize..4, c in 1usize..4, hw in 1usize..4, seed: u64, training: bool, affine: bool, flat: bool) {
        let mut rng = Rng::seed(seed);
        let shape = if flat { vec![n, c] } else { vec![n, c, hw, hw + 1] };
        // Values at least 0.1 apart: with two values per channel the normalised output is
        // close to a step function of their difference, and a near-tie puts the finite
        // difference on its steep part.
        let count: usize = shape.iter().product();
        let mut values: Vec<f32> = (0..count).map(|i| i as f32 * 0.1 - count as f32 * 0.05).collect();
        rng.shuffle(&mut values);
        let x = Tensor::from_vec(values, &shape).unwrap();
        let w = Tensor::uniform(&[c], 0.5, 1.5, &mut rng);
        let b = Tensor::uniform(&[c], -0.5, 0.5, &mut rng);
        let mean = Tensor::uniform(&[c], -0.5, 0.5, &mut rng);
        let var = Tensor::uniform(&[c], 0.5, 1.5, &mut rng);
        let options = BatchNormOptions::default();
        let running = Some((&mean, &var));
        let r = if affine {
            check_gradients(&[x, w, b], |tape, v| {
                Ok(tape.batch_norm(v[0], Some(v[1]), Some(v[2]), running, training, options)?.0)
            })
        } else {
            check_gradients(&[x], |tape, v| {
                Ok(tape.batch_norm(v[0], None, None, running, training, options)?.0)
            })
        };
        prop_assert!(r.is_ok(), "{shape:?} training {training} affine {affine}: {}", r.unwrap_err());
    }

    #[test]
    fn lrn_gradients(c in 1usize..7, size in 1usize..6, seed: u64) {
        let x = Tensor::uniform(&[2, c, 2, 3], -2.0, 2.0, &mut Rng::seed(seed));
        // A large alpha makes the normalisation matter at this scale.
        let options = LrnOptions { size, alpha: 0.5, beta: 0.75, k: 2.0 };
        let r = check_gradients(&[x], |tape, v| tape.local_response_norm(v[0], options));
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    }
}

#[test]
fn training_needs_a_variance_and_eval_needs_running_stats() {
    let x = Tensor::zeros(&[1, 3]);
    let err = batch_norm(&x, None, None, None, true, BatchNormOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("more than one value per channel"),
        "{err}"
    );
    let err = batch_norm(
        &Tensor::zeros(&[2, 3]),
        None,
        None,
        None,
        false,
        BatchNormOptions::default(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "batch_norm: evaluation mode needs the running mean and variance"
    );
    let err = batch_norm(
        &Tensor::zeros(&[2, 3]),
        None,
        Some(&Tensor::ones(&[4])),
        None,
        true,
        BatchNormOptions::default(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "batch_norm: input [2, 3]: weight must be [3], got [4]"
    );
}

/// `python3 scripts/torch_expected.py norm`
#[test]
fn matches_pytorch() {
    let x = Tensor::from_vec(
        (0..3 * 4 * 3 * 2)
            .map(|i| ((i * 7 % 23) as f32 - 11.0) / 5.0)
            .collect(),
        &[3, 4, 3, 2],
    )
    .unwrap();
    let w = Tensor::from_vec(vec![0.5, 1.0, 1.5, 2.0], &[4]).unwrap();
    let b = Tensor::from_vec(vec![0.1, 0.2, -0.3, 0.0], &[4]).unwrap();
    let mut mean = Tensor::from_vec(vec![0.1, -0.1, 0.2, 0.0], &[4]).unwrap();
    let mut var = Tensor::from_vec(vec![1.0, 2.0, 0.5, 1.5], &[4]).unwrap();
    let options = BatchNormOptions {
        eps: 1e-3,
        momentum: 0.1,
    };
    let y = batch_norm(
        &x,
        Some((&mut mean, &mut var)),
        Some(&w),
        Some(&b),
        true,
        options,
    )
    .unwrap();
    let upstream = Tensor::from_vec(
        (0..y.numel())
            .map(|i| ((i * 5 % 7) as f32 - 3.0) / 3.0)
            .collect(),
        y.shape(),
    )
    .unwrap();
    let mut tape = Tape::new();
    let (xv, wv, bv) = (
        tape.param(x.clone()),
        tape.param(w.clone()),
        tape.param(b.clone()),
    );
    let (m0, v0) = (
        Tensor::from_vec(vec![0.1, -0.1, 0.2, 0.0], &[4]).unwrap(),
        Tensor::from_vec(vec![1.0, 2.0, 0.5, 1.5], &[4]).unwrap(),
    );
    let (yv, _) = tape
        .batch_norm(xv, Some(wv), Some(bv), Some((&m0, &v0)), true, options)
        .unwrap();
    let grads = tape.backward_with(yv, upstream).unwrap();
    let lrn = local_response_norm(
        &x,
        LrnOptions {
            size: 3,
            alpha: 0.3,
            beta: 0.75,
            k: 2.0,
        },
    )
    .unwrap();
    let stats = |t: &Tensor| {
        (
            t.data().iter().map(|&v| v as f64).sum::<f64>(),
            t.data().iter().map(|&v| (v as f64).powi(2)).sum::<f64>(),
        )
    };
    let got = [
        stats(&y).0,
        stats(&y).1,
        stats(grads.get(xv).unwrap()).1,
        stats(grads.get(wv).unwrap()).0,
        stats(grads.get(bv).unwrap()).0,
        stats(&mean).0,
        stats(&var).0,
        stats(&lrn).0,
        stats(&lrn).1,
    ];
    for (i, (g, e)) in got.iter().zip(PYTORCH_NORM).enumerate() {
        assert!(
            (g - e).abs() <= 1e-4 * e.abs().max(1.0),
            "statistic {i}: {g} vs PyTorch {e}"
        );
    }
}

/// Sums (and sums of squares) of y, dx, dw, db, the updated running mean and variance, and
/// the LRN output, from PyTorch 2.15.
const PYTORCH_NORM: [f64; 9] = [
    1.564621925e-07,
    1.374379870e+02,
    3.573520166e+01,
    1.316243671e+00,
    -3.333334029e-01,
    1.666666567e-01,
    5.209463894e+00,
    -1.194499210e+00,
    2.984949743e+01,
];
