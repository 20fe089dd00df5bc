//! The inception module of GoogLeNet (Szegedy et al. 2014): four branches on the same input,
//! concatenated along channels, with 1 x 1 convolutions that shrink the channels before the
//! expensive 3 x 3 and 5 x 5 ones.
//!
//! It builds the paper's `inception (3a)` on a `[192, 28, 28]` map, prints each branch's output
//! shape, parameters and multiply-adds, runs a batch through it to show the concatenation, and
//! then builds the same module *without* the 1 x 1 reductions to show what they save.
//!
//! Run with `cargo run --release --example inception_module`.

use convgrad::autograd::Pool2dOptions;
use convgrad::graph::{Graph, GraphBuilder, NodeId, ParamStore};
use convgrad::nn::Conv2d;
use convgrad::{models, Rng, Tensor};

/// Channels of inception (3a) in the paper's Table 1.
const CH1X1: usize = 64;
const CH3X3_REDUCE: usize = 96;
const CH3X3: usize = 128;
const CH5X5_REDUCE: usize = 16;
const CH5X5: usize = 32;
const POOL_PROJ: usize = 32;

/// A convolution (with bias, as in the paper) followed by ReLU; `kernel_size` is padded to keep
/// the spatial size, so the four branches can be concatenated.
fn conv_relu(
    b: &mut GraphBuilder,
    name: &str,
    x: NodeId,
    out_channels: usize,
    kernel_size: usize,
) -> convgrad::Result<NodeId> {
    let conv = Conv2d::new(0, out_channels, kernel_size).padding(kernel_size / 2);
    let x = b.conv(format!("{name}.conv"), x, conv)?;
    b.relu(format!("{name}.relu"), x)
}

/// The module; with `reduce` false, the 3 x 3 and 5 x 5 convolutions see all 192 input
/// channels and the pooling branch passes them through unprojected (the paper's "naive" module,
/// its Figure 2a).
fn inception(reduce: bool) -> convgrad::Result<Graph> {
    let (mut b, x) = GraphBuilder::new("inception_3a", &[192, 28, 28]);

    let branch1 = conv_relu(&mut b, "branch1", x, CH1X1, 1)?;

    let mut branch2 = x;
    if reduce {
        branch2 = conv_relu(&mut b, "branch2.reduce", x, CH3X3_REDUCE, 1)?;
    }
    let branch2 = conv_relu(&mut b, "branch2.3x3", branch2, CH3X3, 3)?;

    let mut branch3 = x;
    if reduce {
        branch3 = conv_relu(&mut b, "branch3.reduce", x, CH5X5_REDUCE, 1)?;
    }
    let branch3 = conv_relu(&mut b, "branch3.5x5", branch3, CH5X5, 5)?;

    let pool = Pool2dOptions::new(3).stride(1).padding(1);
    let mut branch4 = b.max_pool("branch4.pool", x, pool)?;
    if reduce {
        branch4 = conv_relu(&mut b, "branch4.proj", branch4, POOL_PROJ, 1)?;
    }

    let out = b.concat("concat", &[branch1, branch2, branch3, branch4])?;
    b.build(out)
}

/// Parameters and multiply-adds of the nodes whose names start with `prefix`, and the shape of
/// the last of them (the branch's output).
fn branch_costs(graph: &Graph, prefix: &str) -> (usize, u64, Vec<usize>) {
    let nodes: Vec<_> = graph
        .nodes()
        .iter()
        .filter(|n| n.name.starts_with(prefix))
        .collect();
    let params = nodes.iter().map(|n| graph.node_parameter_count(n)).sum();
    let macs = nodes.iter().map(|n| graph.node_multiply_adds(n)).sum();
    let shape = nodes.last().map(|n| n.shape.clone()).unwrap_or_default();
    (params, macs, shape)
}

fn print_branches(graph: &Graph, reduce: bool) {
    let branches = if reduce {
        [
            ("branch1", "1x1"),
            ("branch2", "1x1 reduce, 3x3"),
            ("branch3", "1x1 reduce, 5x5"),
            ("branch4", "3x3 max pool, 1x1 proj"),
        ]
    } else {
        [
            ("branch1", "1x1"),
            ("branch2", "3x3"),
            ("branch3", "5x5"),
            ("branch4", "3x3 max pool"),
        ]
    };
    println!(
        "{:<9} {:<24} {:>16} {:>10} {:>14}",
        "branch", "layers", "output", "params", "mult-adds"
    );
    for (prefix, layers) in branches {
        let (params, macs, shape) = branch_costs(graph, prefix);
        println!(
            "{prefix:<9} {layers:<24} {:>16} {params:>10} {macs:>14}",
            format!("{shape:?}")
        );
    }
    let out = graph.output_shape();
    println!(
        "{:<9} {:<24} {:>16} {:>10} {:>14}\n",
        "concat",
        "along channels",
        format!("{out:?}"),
        graph.parameter_count(),
        graph.multiply_adds()
    );
}

fn main() -> convgrad::Result<()> {
    let module = inception(true)?;
    println!("inception (3a) on a [192, 28, 28] map, as in the paper (per sample):\n");
    print_branches(&module, true);

    // The concatenation: 64 + 128 + 32 + 32 = 256 channels, the spatial size kept.
    let mut rng = Rng::seed(0);
    let store = ParamStore::init(&module, &mut rng);
    let x = Tensor::randn(&[2, 192, 28, 28], &mut rng);
    let y = module.forward(&store, &x)?;
    println!(
        "forward: {:?} -> {:?} ({CH1X1} + {CH3X3} + {CH5X5} + {POOL_PROJ} channels)\n",
        x.shape(),
        y.shape()
    );

    let naive = inception(false)?;
    println!("the same module without the 1x1 reductions (the paper's naive version):\n");
    print_branches(&naive, false);
    println!(
        "The reductions cut the multiply-adds {:.1}x and the parameters {:.1}x, and keep the output at \
         256 channels instead of {} (the unprojected pool passes all 192 through, so every \
         naive module would widen the next one).",
        naive.multiply_adds() as f64 / module.multiply_adds() as f64,
        naive.parameter_count() as f64 / module.parameter_count() as f64,
        naive.output_shape()[0]
    );

    // The zoo's GoogLeNet is torchvision's: batch norm after each convolution, no conv bias,
    // and a 3 x 3 where the paper has 5 x 5 (pytorch/vision#906).
    let googlenet = models::build("googlenet", 1000)?;
    let zoo_3a: usize = googlenet
        .nodes()
        .iter()
        .filter(|n| n.name.starts_with("inception3a."))
        .map(|n| googlenet.node_parameter_count(n))
        .sum();
    println!(
        "\nFor comparison, torchvision's inception3a (3x3 for 5x5, batch norm, no bias) in the zoo's \
         googlenet: {zoo_3a} parameters against {} here.",
        module.parameter_count()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reductions_keep_256_channels_and_save_over_half_the_work() {
        main().unwrap();
        let (module, naive) = (inception(true).unwrap(), inception(false).unwrap());
        assert_eq!(module.output_shape(), [256, 28, 28]);
        assert_eq!(naive.output_shape(), [416, 28, 28]);
        assert!(naive.multiply_adds() > 2 * module.multiply_adds());
    }
}
