//! Trains a small multilayer perceptron on three interleaved spirals, generated on the fly,
//! with nothing but the tape: matmul, broadcast bias, relu, cross-entropy and backward.
//!
//! Run with `cargo run --release --example spirals`. A linear classifier cannot separate the
//! spirals (about 50% accuracy); two hidden layers reach well over 95%.

use convgrad::{Rng, Tape, Tensor, Var};

const CLASSES: usize = 3;
const POINTS_PER_CLASS: usize = 200;

/// Points on `CLASSES` spiral arms with a little noise, and their arm as the label.
fn spirals(rng: &mut Rng) -> (Tensor, Vec<usize>) {
    let mut points = Vec::new();
    let mut labels = Vec::new();
    for class in 0..CLASSES {
        for i in 0..POINTS_PER_CLASS {
            let r = i as f32 / POINTS_PER_CLASS as f32;
            let angle = class as f32 * 4.0 + r * 4.0 + 0.2 * rng.normal();
            points.extend([r * angle.sin(), r * angle.cos()]);
            labels.push(class);
        }
    }
    let n = labels.len();
    (
        Tensor::from_vec(points, &[n, 2]).expect("2 values per point"),
        labels,
    )
}

struct Mlp {
    weights: Vec<Tensor>,
    biases: Vec<Tensor>,
}

impl Mlp {
    fn new(sizes: &[usize], rng: &mut Rng) -> convgrad::Result<Mlp> {
        let mut weights = Vec::new();
        let mut biases = Vec::new();
        for pair in sizes.windows(2) {
            weights.push(Tensor::kaiming_uniform(&[pair[0], pair[1]], rng)?);
            biases.push(Tensor::zeros(&[pair[1]]));
        }
        Ok(Mlp { weights, biases })
    }

    /// Records the forward pass; returns the logits and the parameter handles.
    fn forward(&self, tape: &mut Tape, x: Var) -> convgrad::Result<(Var, Vec<Var>)> {
        let mut h = x;
        let mut params = Vec::new();
        let layers = self.weights.len();
        for (i, (w, b)) in self.weights.iter().zip(&self.biases).enumerate() {
            let (w, b) = (tape.param(w.clone()), tape.param(b.clone()));
            params.extend([w, b]);
            h = tape.matmul(h, w)?;
            h = tape.add(h, b)?;
            if i + 1 < layers {
                h = tape.relu(h)?;
            }
        }
        Ok((h, params))
    }

    fn parameters_mut(&mut self) -> impl Iterator<Item = &mut Tensor> {
        self.weights
            .iter_mut()
            .zip(self.biases.iter_mut())
            .flat_map(|(w, b)| [w, b])
    }
}

fn accuracy(logits: &Tensor, labels: &[usize]) -> f32 {
    let classes = logits.shape()[1];
    let correct = logits
        .data()
        .chunks_exact(classes)
        .zip(labels)
        .filter(|(row, &label)| {
            let best = row
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(i, _)| i);
            best == Some(label)
        })
        .count();
    correct as f32 / labels.len() as f32
}

fn main() -> convgrad::Result<()> {
    let mut rng = Rng::seed(2024);
    let (points, labels) = spirals(&mut rng);
    let mut model = Mlp::new(&[2, 64, 64, CLASSES], &mut rng)?;
    let (learning_rate, momentum) = (0.1, 0.9);
    let mut velocity: Vec<Tensor> = model
        .parameters_mut()
        .map(|p| Tensor::zeros(p.shape()))
        .collect();

    println!("three spirals, {} points, MLP 2-64-64-3", labels.len());
    for step in 0..=600 {
        let mut tape = Tape::new();
        let x = tape.input(points.clone());
        let (logits, params) = model.forward(&mut tape, x)?;
        let loss = tape.cross_entropy(logits, &labels)?;
        let loss_value = tape.value(loss)?.item()?;
        let acc = accuracy(tape.value(logits)?, &labels);
        if step % 100 == 0 {
            println!(
                "step {step:5}  loss {loss_value:.4}  accuracy {:.1}%",
                100.0 * acc
            );
        }
        let mut grads = tape.backward(loss)?;
        // SGD with momentum: v = momentum * v + g; p -= lr * v.
        for ((p, v), var) in model.parameters_mut().zip(&mut velocity).zip(&params) {
            let g = grads.take(*var).expect("every parameter reaches the loss");
            for ((p, v), g) in p.data_mut().iter_mut().zip(v.data_mut()).zip(g.data()) {
                *v = momentum * *v + g;
                *p -= learning_rate * *v;
            }
        }
    }
    Ok(())
}
