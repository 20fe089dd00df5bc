//! A dense block of DenseNet (Huang et al. 2016): every layer receives the concatenation of
//! all the maps before it and adds only `growth_rate` new ones, so the channels grow linearly
//! through the block, then a transition layer halves them (and the resolution).
//!
//! It builds DenseNet-121's first block (six layers, growth rate 32, on a `[64, 56, 56]` map),
//! prints the channels layer by layer with each layer's parameters, checks the count against the
//! zoo's `densenet121`, and runs a batch through it.
//!
//! Run with `cargo run --release --example dense_block`.

use convgrad::autograd::Pool2dOptions;
use convgrad::graph::{GraphBuilder, NodeId, ParamStore};
use convgrad::nn::Conv2d;
use convgrad::{models, Rng, Tensor};

const GROWTH_RATE: usize = 32;
const LAYERS: usize = 6;
/// The 1 x 1 bottleneck widens to `4 * growth_rate` (torchvision's `bn_size`).
const BOTTLENECK_FACTOR: usize = 4;

/// One dense layer, named as torchvision names it: concatenate everything so far, then
/// BN-ReLU-conv 1x1 to `4k` maps and BN-ReLU-conv 3x3 to `k` new maps.
fn dense_layer(b: &mut GraphBuilder, name: &str, features: &[NodeId]) -> convgrad::Result<NodeId> {
    let x = match features {
        [only] => *only,
        _ => b.concat(format!("{name}.cat"), features)?,
    };
    let x = b.batch_norm(format!("{name}.norm1"), x)?;
    let x = b.relu(format!("{name}.relu1"), x)?;
    let bottleneck = Conv2d::new(0, BOTTLENECK_FACTOR * GROWTH_RATE, 1).bias(false);
    let x = b.conv(format!("{name}.conv1"), x, bottleneck)?;
    let x = b.batch_norm(format!("{name}.norm2"), x)?;
    let x = b.relu(format!("{name}.relu2"), x)?;
    let conv = Conv2d::new(0, GROWTH_RATE, 3).padding(1).bias(false);
    b.conv(format!("{name}.conv2"), x, conv)
}

fn main() -> convgrad::Result<()> {
    let (mut b, x) = GraphBuilder::new("dense_block", &[64, 56, 56]);
    let mut features = vec![x];
    let mut channels = b.channels(x);
    println!("DenseNet-121, dense block 1: growth rate {GROWTH_RATE}, input [64, 56, 56]\n");
    println!(
        "{:<12} {:>12} {:>10} {:>16}",
        "layer", "sees (ch)", "adds (ch)", "block now (ch)"
    );
    println!("{:<12} {:>12} {:>10} {channels:>16}", "input", "", "");
    for i in 1..=LAYERS {
        let new_maps = dense_layer(&mut b, &format!("denselayer{i}"), &features)?;
        features.push(new_maps);
        let added = b.channels(new_maps);
        println!(
            "{:<12} {channels:>12} {added:>10} {:>16}",
            format!("denselayer{i}"),
            channels + added
        );
        channels += added;
    }
    let block = b.concat("cat", &features)?;

    // The transition: BN-ReLU, a 1 x 1 conv halving the channels (compression 0.5), a 2 x 2
    // average pool halving the resolution.
    let t = b.batch_norm("transition.norm", block)?;
    let t = b.relu("transition.relu", t)?;
    let compress = Conv2d::new(0, channels / 2, 1).bias(false);
    let t = b.conv("transition.conv", t, compress)?;
    let t = b.avg_pool("transition.pool", t, Pool2dOptions::new(2))?;
    println!(
        "{:<12} {channels:>12} {:>10} {:>16}   then 2x2 average pool: {:?}\n",
        "transition",
        "",
        b.channels(t),
        b.shape(t)
    );
    let graph = b.build(t)?;

    println!("parameters per layer (1x1 bottleneck + 3x3, with their batch norms):");
    for i in 1..=LAYERS {
        let prefix = format!("denselayer{i}.");
        let params: usize = graph
            .nodes()
            .iter()
            .filter(|n| n.name.starts_with(&prefix))
            .map(|n| graph.node_parameter_count(n))
            .sum();
        println!("  denselayer{i}: {params}");
    }
    // Each layer's 1x1 sees 32 more channels than the one before, so it costs a little more; the
    // 3x3 always maps 128 to 32 channels.
    let connections = (LAYERS + 1) * LAYERS / 2;
    println!(
        "{LAYERS} layers, {connections} direct connections (each layer reads every earlier output).\n"
    );

    let zoo = models::build("densenet121", 1000)?;
    let block_params = |graph: &convgrad::graph::Graph, prefix: &str| -> usize {
        graph
            .nodes()
            .iter()
            .filter(|n| n.name.starts_with(prefix))
            .map(|n| graph.node_parameter_count(n))
            .sum()
    };
    let ours = block_params(&graph, "denselayer");
    let zoo_block = block_params(&zoo, "features.denseblock1.");
    println!("block parameters: {ours} here, {zoo_block} in the zoo's densenet121 (features.denseblock1)");
    assert_eq!(ours, zoo_block, "the same block, counted twice");

    let mut rng = Rng::seed(0);
    let store = ParamStore::init(&graph, &mut rng);
    let input = Tensor::randn(&[2, 64, 56, 56], &mut rng);
    let y = graph.forward(&store, &input)?;
    println!(
        "forward through block and transition: {:?} -> {:?}",
        input.shape(),
        y.shape()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs_and_matches_the_zoo() {
        // main asserts that the block's parameter count equals the zoo's densenet121 block 1.
        super::main().unwrap();
    }
}
