//! Why skip connections: the gradient reaching each layer of a 30-layer plain network, and of
//! the same 30 convolutions arranged as 15 residual blocks, after one backward pass each.
//!
//! Both networks are initialised the way networks were before 2015, with Glorot and Bengio's
//! "Xavier" normal init. With ReLU it halves the signal's variance at every layer (He et al. 2015
//! worked this out, and showed such a 30-layer plain net did not train), so in the plain net the
//! gradient shrinks by about `1/sqrt(2)` per layer on its way down: the first layers get almost
//! nothing. In the residual net each block computes `x + F(x)`, and the `+ x` passes the
//! gradient down unchanged, whatever `F` does to it.
//!
//! A third column shows the plain net with He init (this library's default for `Conv2d`),
//! which keeps the variance at initialisation; what it does not fix is the optimisation
//! difficulty He et al. then found in deeper plain nets, which skip connections did.
//!
//! Run with `cargo run --release --example vanishing_gradients`.

use convgrad::graph::{Graph, GraphBuilder, NodeId, ParamStore};
use convgrad::nn::{Conv2d, Mode};
use convgrad::{Rng, Tape, Tensor};

const DEPTH: usize = 30;
const CHANNELS: usize = 16;
const SIZE: usize = 16;
const BATCH: usize = 8;
const CLASSES: usize = 10;

fn conv3x3() -> Conv2d {
    Conv2d::new(0, CHANNELS, 3).padding(1).bias(false)
}

/// `DEPTH` conv-ReLU layers, global average pooling and a linear classifier.
fn plain() -> convgrad::Result<Graph> {
    let (mut b, mut x) = GraphBuilder::new("plain", &[CHANNELS, SIZE, SIZE]);
    for layer in 1..=DEPTH {
        x = b.conv(format!("conv{layer}"), x, conv3x3())?;
        x = b.relu(format!("relu{layer}"), x)?;
    }
    head(b, x)
}

/// The same convolutions in pairs, each pair a residual block `relu(x + conv(relu(conv(x))))`.
fn residual() -> convgrad::Result<Graph> {
    let (mut b, mut x) = GraphBuilder::new("residual", &[CHANNELS, SIZE, SIZE]);
    for layer in (1..=DEPTH).step_by(2) {
        let out = b.conv(format!("conv{layer}"), x, conv3x3())?;
        let out = b.relu(format!("relu{layer}"), out)?;
        let out = b.conv(format!("conv{}", layer + 1), out, conv3x3())?;
        let sum = b.add(format!("add{}", layer + 1), &[out, x])?;
        x = b.relu(format!("relu{}", layer + 1), sum)?;
    }
    head(b, x)
}

fn head(mut b: GraphBuilder, x: NodeId) -> convgrad::Result<Graph> {
    let x = b.global_avg_pool("avgpool", x)?;
    let x = b.linear("fc", x, CLASSES)?;
    b.build(x)
}

/// Parameters with every convolution's weight redrawn from Glorot's normal init.
fn xavier_store(graph: &Graph, rng: &mut Rng) -> convgrad::Result<ParamStore> {
    let mut store = ParamStore::init(graph, rng);
    let conv_slots: Vec<usize> = store
        .names()
        .iter()
        .enumerate()
        .filter(|(_, name)| name.starts_with("conv"))
        .map(|(slot, _)| slot)
        .collect();
    for slot in conv_slots {
        let shape = store.tensors()[slot].shape().to_vec();
        store.tensors_mut()[slot] = Tensor::xavier_normal(&shape, rng)?;
    }
    Ok(store)
}

fn norm(t: &Tensor) -> f64 {
    t.data()
        .iter()
        .map(|&v| (v as f64) * (v as f64))
        .sum::<f64>()
        .sqrt()
}

/// One forward and backward pass; the norm of the gradient reaching each convolution's output,
/// `||dL/dy_l||`, for `l = 1..=DEPTH`.
fn gradient_norms(graph: &Graph, store: &ParamStore, x: &Tensor) -> convgrad::Result<Vec<f64>> {
    let mut tape = Tape::new();
    let input = tape.input(x.clone());
    let mut rng = Rng::seed(1);
    let out = graph.forward_tape(&mut tape, store, input, Mode::Train, &mut rng, false)?;
    let conv_outputs: Vec<_> = (1..=DEPTH)
        .map(|layer| {
            let node = graph
                .nodes()
                .iter()
                .position(|n| n.name == format!("conv{layer}"))
                .expect("every layer is named conv<l>");
            out.nodes[node]
        })
        .collect();
    for &var in &conv_outputs {
        tape.retain_grad(var)?;
    }
    let labels: Vec<usize> = (0..BATCH).map(|i| i % CLASSES).collect();
    let loss = tape.cross_entropy(out.output, &labels)?;
    let grads = tape.backward(loss)?;
    Ok(conv_outputs
        .iter()
        .map(|&var| grads.get(var).map_or(0.0, norm))
        .collect())
}

/// The three columns: plain with Xavier init, residual with Xavier init, plain with He init.
type Columns = (Vec<f64>, Vec<f64>, Vec<f64>);

fn measure() -> convgrad::Result<Columns> {
    let mut rng = Rng::seed(0);
    let x = Tensor::randn(&[BATCH, CHANNELS, SIZE, SIZE], &mut rng);
    let (plain, residual) = (plain()?, residual()?);
    let plain_xavier = gradient_norms(&plain, &xavier_store(&plain, &mut rng)?, &x)?;
    let residual_xavier = gradient_norms(&residual, &xavier_store(&residual, &mut rng)?, &x)?;
    let plain_he = gradient_norms(&plain, &ParamStore::init(&plain, &mut rng), &x)?;
    Ok((plain_xavier, residual_xavier, plain_he))
}

fn first_over_last(g: &[f64]) -> f64 {
    g[0] / g[DEPTH - 1]
}

fn main() -> convgrad::Result<()> {
    let (plain_xavier, residual_xavier, plain_he) = measure()?;

    println!(
        "||dL/dy|| at each convolution's output, {DEPTH} conv layers of {CHANNELS} channels, \
         one backward pass\n"
    );
    println!(
        "{:>5} {:>16} {:>16} {:>16}",
        "layer", "plain, Xavier", "residual, Xavier", "plain, He"
    );
    for layer in 0..DEPTH {
        println!(
            "{:>5} {:>16.3e} {:>16.3e} {:>16.3e}",
            layer + 1,
            plain_xavier[layer],
            residual_xavier[layer],
            plain_he[layer]
        );
    }
    println!(
        "\nfirst layer / last layer: plain (Xavier) {:.1e}, residual (Xavier) {:.2}, plain (He) {:.2}",
        first_over_last(&plain_xavier),
        first_over_last(&residual_xavier),
        first_over_last(&plain_he)
    );
    println!(
        "The plain net's first layers receive a gradient about {:.0} times smaller than its last \
         (about (1/sqrt 2)^{} = {:.1e} expected); through the skip connections the first layers \
         get at least as much as the last.",
        1.0 / first_over_last(&plain_xavier),
        DEPTH - 1,
        0.5f64.sqrt().powi(DEPTH as i32 - 1)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_net_loses_its_gradient_and_the_residual_net_does_not() {
        main().unwrap();
        let (plain_xavier, residual_xavier, plain_he) = measure().unwrap();
        // (1/sqrt 2)^29 is 4e-5; allow an order of magnitude either way for the random draw.
        let plain = first_over_last(&plain_xavier);
        assert!((4e-6..4e-4).contains(&plain), "plain, Xavier: {plain:e}");
        let residual = first_over_last(&residual_xavier);
        assert!(residual > 0.5, "residual, Xavier: {residual}");
        let he = first_over_last(&plain_he);
        assert!((0.1..10.0).contains(&he), "plain, He: {he}");
    }
}
