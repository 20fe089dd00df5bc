//! The engine through its public API only: a network composed of several ops is gradient-checked
//! with the public harness, and a small classifier actually learns.

use convgrad::autograd::gradcheck::{check_gradients, GradCheck};
use convgrad::{functional as F, Rng, Tape, Tensor};

#[test]
fn a_composed_network_passes_the_public_gradient_check() {
    let mut rng = Rng::seed(11);
    let x = Tensor::uniform(&[4, 3], -1.0, 1.0, &mut rng);
    let w1 = Tensor::uniform(&[3, 5], -1.0, 1.0, &mut rng);
    let b1 = Tensor::uniform(&[5], -0.5, 0.5, &mut rng);
    let w2 = Tensor::uniform(&[5, 2], -1.0, 1.0, &mut rng);
    let result = check_gradients(&[x, w1, b1, w2], |tape, v| {
        let h = tape.matmul(v[0], v[1])?;
        let h = tape.add(h, v[2])?;
        let h = tape.tanh(h)?;
        let y = tape.matmul(h, v[3])?;
        let p = tape.log_softmax(y, 1)?;
        let e = tape.exp(p)?;
        let both = tape.concat(&[p, e], 1)?;
        tape.mean_axis(both, 0, false)
    });
    assert!(result.is_ok(), "{}", result.unwrap_err());
}

#[test]
fn a_tighter_check_still_passes_on_smooth_ops() {
    let x = Tensor::from_vec(vec![0.1, -0.4, 0.9, 1.3, -2.0, 0.05], &[2, 3]).unwrap();
    let strict = GradCheck {
        step: 1e-2,
        tolerance: 2e-3,
        ..GradCheck::default()
    };
    let result = strict.run(&[x], |tape, v| {
        let s = tape.sigmoid(v[0])?;
        let t = tape.mul(s, v[0])?;
        tape.softmax(t, 0)
    });
    assert!(result.is_ok(), "{}", result.unwrap_err());
}

/// Logistic regression on two Gaussian blobs: the loss must fall and accuracy must be high.
#[test]
fn gradient_descent_learns_a_separable_problem() {
    let mut rng = Rng::seed(3);
    let n = 200;
    let mut points = Vec::with_capacity(2 * n);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let class = i % 2;
        let centre = if class == 0 { -1.5 } else { 1.5 };
        points.extend([centre + rng.normal(), centre + rng.normal()]);
        labels.push(class);
    }
    let x = Tensor::from_vec(points, &[n, 2]).unwrap();
    let mut w = Tensor::zeros(&[2, 2]);
    let mut b = Tensor::zeros(&[2]);
    let mut first_loss = None;
    let mut last_loss = 0.0;
    for _ in 0..100 {
        let mut tape = Tape::new();
        let xv = tape.input(x.clone());
        let (wv, bv) = (tape.param(w.clone()), tape.param(b.clone()));
        let logits = tape.matmul(xv, wv).unwrap();
        let logits = tape.add(logits, bv).unwrap();
        let loss = tape.cross_entropy(logits, &labels).unwrap();
        last_loss = tape.value(loss).unwrap().item().unwrap();
        first_loss.get_or_insert(last_loss);
        let grads = tape.backward(loss).unwrap();
        for (p, var) in [(&mut w, wv), (&mut b, bv)] {
            let g = grads.get(var).unwrap();
            for (p, g) in p.data_mut().iter_mut().zip(g.data()) {
                *p -= 0.5 * g;
            }
        }
    }
    assert!((first_loss.unwrap() - std::f32::consts::LN_2).abs() < 1e-6);
    assert!(last_loss < 0.15, "loss {last_loss}");
    let logits = F::add(&F::matmul(&x, &w).unwrap(), &b).unwrap();
    let predictions = F::softmax(&logits, 1).unwrap();
    let correct = predictions
        .data()
        .chunks_exact(2)
        .zip(&labels)
        .filter(|(p, &l)| (p[1] > p[0]) == (l == 1))
        .count();
    assert!(correct >= 190, "{correct} of {n} correct");
}
