//! Your own architecture through the graph builder: a small network mixing the ideas of the
//! zoo (a residual connection around a depthwise-separable convolution, two parallel branches
//! concatenated as in Inception, global average pooling), plus a layer of your own (Swish,
//! `x * sigmoid(x)`) written by implementing the `Layer` trait.
//!
//! It builds the graph, prints its summary (and where to get a drawing), runs inference, and
//! trains it for a few steps on a synthetic task (is the bright shape in the noise a
//! horizontal bar, a vertical bar, a square, or absent?), one explicit training step at a time: forward on a tape, cross-entropy, backward,
//! the optimiser's update and the batch-norm statistics written back.
//!
//! Run with `cargo run --release --example custom_graph`.

use convgrad::autograd::Pool2dOptions;
use convgrad::functional;
use convgrad::graph::{Graph, GraphBuilder, ParamStore};
use convgrad::nn::{Conv2d, Layer, Mode, SeparableConv2d, TapeContext};
use convgrad::optim::{trainable_grads, Adam, Optimizer};
use convgrad::{Rng, Tape, Tensor, Var};

/// Swish (Ramachandran et al. 2017), `x * sigmoid(x)`: a layer of our own. It has no
/// parameters and keeps the shape; its two forwards are compositions of existing ops, so the tape
/// differentiates it without a backward of its own.
#[derive(Debug)]
struct Swish;

impl Layer for Swish {
    fn kind(&self) -> &'static str {
        "Swish"
    }
    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        match inputs {
            [one] => Ok(one.to_vec()),
            _ => Err(format!("takes one input, got {}", inputs.len())),
        }
    }
    fn forward(&self, inputs: &[&Tensor], _params: &[&Tensor]) -> convgrad::Result<Tensor> {
        functional::mul(inputs[0], &functional::sigmoid(inputs[0]))
    }
    fn forward_tape(
        &self,
        tape: &mut Tape,
        inputs: &[Var],
        _params: &[Var],
        _ctx: &mut TapeContext<'_>,
    ) -> convgrad::Result<Var> {
        let gate = tape.sigmoid(inputs[0])?;
        tape.mul(inputs[0], gate)
    }
}

const CLASSES: usize = 4;
const SIZE: usize = 24;

fn build() -> convgrad::Result<Graph> {
    let (mut b, x) = GraphBuilder::new("my_net", &[1, SIZE, SIZE]);
    // Stem.
    let x = b.conv("stem.conv", x, Conv2d::new(0, 16, 3).padding(1).bias(false))?;
    let x = b.batch_norm("stem.bn", x)?;
    let stem = b.add_layer("stem.swish", Swish, &[x])?;
    // A residual block around a depthwise-separable convolution (Xception's idea).
    let y = b.separable_conv("block.sep", stem, SeparableConv2d::new(0, 16, 3).padding(1))?;
    let y = b.batch_norm("block.bn", y)?;
    let y = b.add("block.add", &[y, stem])?;
    let y = b.relu("block.relu", y)?;
    let y = b.max_pool("pool", y, Pool2dOptions::new(2))?;
    // Two branches on the same map, concatenated (GoogLeNet's idea).
    let wide = b.conv("mix.branch1x1", y, Conv2d::new(0, 16, 1))?;
    let local = b.conv("mix.branch3x3", y, Conv2d::new(0, 16, 3).padding(1))?;
    let y = b.concat("mix.cat", &[wide, local])?;
    let y = b.relu("mix.relu", y)?;
    // Global average pooling, then the classifier (no flattening: see docs/mistakes.md).
    let y = b.global_avg_pool("avgpool", y)?;
    let y = b.dropout("dropout", y, 0.2)?;
    let y = b.linear("fc", y, CLASSES)?;
    b.build(y)
}

/// A batch of noisy images, each holding a bright horizontal bar (class 0), vertical bar (1),
/// square (2) or nothing (3) at a random place. The class does not depend on the place, which
/// suits a network that ends in global average pooling.
fn synthetic_batch(batch: usize, rng: &mut Rng) -> convgrad::Result<(Tensor, Vec<usize>)> {
    let mut pixels = vec![0.0f32; batch * SIZE * SIZE];
    let mut labels = Vec::with_capacity(batch);
    for (i, image) in pixels.chunks_exact_mut(SIZE * SIZE).enumerate() {
        let class = i % CLASSES;
        let (height, width) = [(3, 12), (12, 3), (7, 7), (0, 0)][class];
        let top = rng.below(SIZE - height.max(1));
        let left = rng.below(SIZE - width.max(1));
        for (p, value) in image.iter_mut().enumerate() {
            let (row, col) = (p / SIZE, p % SIZE);
            let inside = (top..top + height).contains(&row) && (left..left + width).contains(&col);
            *value = 0.5 * rng.normal() + if inside { 1.5 } else { 0.0 };
        }
        labels.push(class);
    }
    Ok((Tensor::from_vec(pixels, &[batch, 1, SIZE, SIZE])?, labels))
}

/// One training step: forward on a tape in training mode, loss, backward, update. Returns the
/// loss before the update.
fn train_step(
    graph: &Graph,
    store: &mut ParamStore,
    optimizer: &mut dyn Optimizer,
    images: &Tensor,
    labels: &[usize],
    rng: &mut Rng,
) -> convgrad::Result<f32> {
    let mut tape = Tape::new();
    let input = tape.input(images.clone());
    let out = graph.forward_tape(&mut tape, store, input, Mode::Train, rng, true)?;
    let loss = tape.cross_entropy(out.output, labels)?;
    let loss_value = tape.value(loss)?.item()?;
    let mut grads = tape.backward(loss)?;
    let grads = trainable_grads(store.kinds(), &out.params, &mut grads)?;
    optimizer.step(store.tensors_mut(), &grads)?;
    // Batch norm's running statistics are not trained by gradient: they come back from the
    // forward pass and are written into the store.
    for (slot, value) in out.buffer_updates {
        store.tensors_mut()[slot] = value;
    }
    Ok(loss_value)
}

fn accuracy(logits: &Tensor, labels: &[usize]) -> f64 {
    convgrad::train::correct_predictions(logits, labels) as f64 / labels.len() as f64
}

fn main() -> convgrad::Result<()> {
    let graph = build()?;
    print!("{}", graph.summary());
    println!(
        "(a drawing: write graph.to_dot() to my_net.dot and run `dot -Tsvg my_net.dot`; it has {} lines)\n",
        graph.to_dot().lines().count()
    );

    // A mistake the builder catches, with the node and the shapes.
    let (mut b, x) = GraphBuilder::new("broken", &[1, SIZE, SIZE]);
    let a = b.conv("a", x, Conv2d::new(0, 8, 3).padding(1))?;
    let c = b.conv("c", x, Conv2d::new(0, 8, 3))?; // no padding: 22 x 22
    if let Err(e) = b.add("sum", &[a, c]) {
        println!("the builder refuses a bad residual sum:\n  {e}\n");
    }

    train_and_evaluate(&graph)?;
    Ok(())
}

/// Accuracy on 256 fresh images before and after 60 training steps.
fn train_and_evaluate(graph: &Graph) -> convgrad::Result<(f64, f64)> {
    let mut rng = Rng::seed(0);
    let mut store = ParamStore::init(graph, &mut rng);
    let (test_images, test_labels) = synthetic_batch(256, &mut rng)?;
    let before = accuracy(&graph.forward(&store, &test_images)?, &test_labels);
    println!(
        "inference before training: {:?} -> logits {:?}, accuracy {:.1}% (chance: 25%)",
        test_images.shape(),
        graph.output_shape(),
        100.0 * before
    );

    let mut adam = Adam::new(3e-3)?;
    for step in 1..=60 {
        let (images, labels) = synthetic_batch(32, &mut rng)?;
        let loss = train_step(graph, &mut store, &mut adam, &images, &labels, &mut rng)?;
        if step == 1 || step % 15 == 0 {
            println!("step {step:3}: training loss {loss:.3}");
        }
    }
    let after = accuracy(&graph.forward(&store, &test_images)?, &test_labels);
    println!(
        "inference after 60 steps (evaluation mode, running statistics): accuracy {:.1}%",
        100.0 * after
    );
    Ok((before, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixty_steps_learn_the_synthetic_task() {
        let (before, after) = train_and_evaluate(&build().unwrap()).unwrap();
        assert!(before < 0.5, "{before}");
        assert!(after > 0.9, "{after}");
    }
}
