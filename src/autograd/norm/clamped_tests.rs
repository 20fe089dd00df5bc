//! The fused `batch_norm_clamped` tape op: finite differences away from the clamp's kinks, and
//! equality, bit for bit, with `batch_norm` followed by `relu` or `relu6`.

use super::{BatchNormOptions, Clamp};
use crate::autograd::gradcheck::check_gradients;
use crate::autograd::Tape;
use crate::{Rng, Tensor};
use proptest::prelude::*;

/// Distinct values 0.1 apart in a random order (see `batch_norm_gradients`: near-ties make the
/// normalised output steep), with weights and upstream gradients.
fn case(shape: &[usize], seed: u64) -> (Tensor, Tensor, Tensor) {
    let mut rng = Rng::seed(seed);
    let count: usize = shape.iter().product();
    let mut values: Vec<f32> = (0..count)
        .map(|i| i as f32 * 0.1 - count as f32 * 0.05)
        .collect();
    rng.shuffle(&mut values);
    let c = shape[1];
    let x = Tensor::from_vec(values, shape).unwrap();
    let w = Tensor::uniform(&[c], 0.5, 1.5, &mut rng);
    let upstream = Tensor::uniform(shape, -1.0, 1.0, &mut rng);
    (x, w, upstream)
}

/// Per channel, a shift that puts the clamp's `kink` in the middle of the widest gap between
/// the normalised values of `x` (scaled by `w`), so every output stays well away from it while
/// values fall on both sides.
fn shift_into_gaps(x: &Tensor, w: &Tensor, kink: f32) -> Tensor {
    let mut tape = Tape::new();
    let (xv, wv) = (tape.input(x.clone()), tape.input(w.clone()));
    let options = BatchNormOptions::default();
    let (y, _) = tape
        .batch_norm(xv, Some(wv), None, None, true, options)
        .unwrap();
    let y = tape.value(y).unwrap().clone();
    let (n, c) = (x.shape()[0], x.shape()[1]);
    let plane = x.numel() / (n * c);
    let shifts = (0..c)
        .map(|channel| {
            let mut values: Vec<f32> = (0..n)
                .flat_map(|i| (0..plane).map(move |j| (i * c + channel) * plane + j))
                .map(|index| y.data()[index])
                .collect();
            values.sort_by(f32::total_cmp);
            let (low, high) = values
                .windows(2)
                .map(|pair| (pair[0], pair[1]))
                .max_by(|a, b| (a.1 - a.0).total_cmp(&(b.1 - b.0)))
                .expect("two values per channel");
            kink - (low + high) / 2.0
        })
        .collect();
    Tensor::from_vec(shifts, &[c]).unwrap()
}

fn clamps() -> impl Strategy<Value = Clamp> {
    prop_oneof![Just(Clamp::Relu), Just(Clamp::Relu6)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn batch_norm_clamped_gradients(
        n in 2usize..4, c in 1usize..4, h in 1usize..4, w in 1usize..4,
        seed: u64, clamp in clamps(),
    ) {
        let shape = [n, c, h, w];
        let (x, gamma, _) = case(&shape, seed);
        let kink = if clamp == Clamp::Relu { 0.0 } else { 6.0 };
        let beta = shift_into_gaps(&x, &gamma, kink);
        let options = BatchNormOptions::default();
        if clamp == Clamp::Relu6 {
            // Relu6's other end, 0, is not placed in a gap: skip the rare case with an output
            // near it. A step of the check moves an output by at most about 0.3 here.
            let mut tape = Tape::new();
            let v = [x.clone(), gamma.clone(), beta.clone()].map(|t| tape.input(t));
            let (y, _) = tape.batch_norm(v[0], Some(v[1]), Some(v[2]), None, true, options).unwrap();
            prop_assume!(tape.value(y).unwrap().data().iter().all(|v| v.abs() > 0.5));
        }
        let r = check_gradients(&[x, gamma, beta], |tape, v| {
            Ok(tape.batch_norm_clamped(v[0], Some(v[1]), Some(v[2]), None, options, clamp)?.0)
        });
        prop_assert!(r.is_ok(), "{shape:?} {clamp:?}: {}", r.unwrap_err());
    }

    #[test]
    fn batch_norm_clamped_equals_batch_norm_then_clamp(
        n in 1usize..4, c in 1usize..5, h in 1usize..5, w in 1usize..11,
        seed: u64, clamp in clamps(), affine: bool,
    ) {
        prop_assume!(n * h * w >= 2);
        let shape = [n, c, h, w];
        let (x, gamma, upstream) = case(&shape, seed);
        let beta = Tensor::uniform(&[c], -1.0, 7.0, &mut Rng::seed(seed ^ 5));
        let mean = Tensor::uniform(&[c], -0.5, 0.5, &mut Rng::seed(seed ^ 6));
        let var = Tensor::uniform(&[c], 0.5, 1.5, &mut Rng::seed(seed ^ 7));
        let options = BatchNormOptions::default();
        let run = |fused: bool| {
            let mut tape = Tape::new();
            let xv = tape.param(x.clone());
            let (wv, bv) = (tape.param(gamma.clone()), tape.param(beta.clone()));
            let (wv, bv) = if affine { (Some(wv), Some(bv)) } else { (None, None) };
            let running = Some((&mean, &var));
            let (y, updated) = if fused {
                tape.batch_norm_clamped(xv, wv, bv, running, options, clamp).unwrap()
            } else {
                let (bn, updated) = tape.batch_norm(xv, wv, bv, running, true, options).unwrap();
                let y = match clamp {
                    Clamp::Relu => tape.relu(bn),
                    Clamp::Relu6 => tape.relu6(bn),
                };
                (y.unwrap(), updated)
            };
            let u = tape.input(upstream.clone());
            let weighted = tape.mul(y, u).unwrap();
            let loss = tape.sum(weighted).unwrap();
            let value = tape.value(y).unwrap().clone();
            let grads = tape.backward(loss).unwrap();
            let mut all = vec![value, grads.get(xv).unwrap().clone()];
            if let (Some(wv), Some(bv)) = (wv, bv) {
                all.push(grads.get(wv).unwrap().clone());
                all.push(grads.get(bv).unwrap().clone());
            }
            let (m, v) = updated.unwrap();
            all.extend([m, v]);
            all
        };
        let bits = |ts: Vec<Tensor>| -> Vec<Vec<u32>> {
            ts.iter().map(|t| t.data().iter().map(|v| v.to_bits()).collect()).collect()
        };
        prop_assert_eq!(bits(run(true)), bits(run(false)));
    }
}

#[test]
fn the_fused_op_is_named_for_its_clamp_and_checks_shapes() {
    let mut tape = Tape::new();
    let x = tape.param(Tensor::zeros(&[2, 3, 2, 2]));
    let w = tape.param(Tensor::zeros(&[4]));
    let err = tape
        .batch_norm_clamped(
            x,
            Some(w),
            None,
            None,
            BatchNormOptions::default(),
            Clamp::Relu,
        )
        .unwrap_err();
    let message = err.to_string();
    assert!(message.starts_with("batch_norm"), "{message}");
    assert!(
        message.contains("[4]") && message.contains("[2, 3, 2, 2]"),
        "{message}"
    );
}
