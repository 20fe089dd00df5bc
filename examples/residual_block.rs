//! A residual block (He et al. 2015) built with the graph builder, three ways:
//!
//! 1. with an identity shortcut, where the block keeps the shape (`[4, 64, 28, 28]` in and out);
//! 2. with a 1 x 1 projection on the shortcut, where the channels change
//!    (`[4, 1, 28, 28]` becomes `[4, 64, 28, 28]`);
//! 3. with a projection of stride 2, where the resolution halves too (`[4, 64, 14, 14]`).
//!
//! It also shows what happens without the projection when the shapes differ: the sum cannot be
//! formed, and the builder says so with the shapes.
//!
//! Run with `cargo run --release --example residual_block`.

use convgrad::graph::{Graph, GraphBuilder, NodeId, ParamStore};
use convgrad::nn::Conv2d;
use convgrad::{Rng, Tensor};

/// A 3 x 3 convolution without bias (a batch norm follows), padded by 1: stride 1 keeps the size.
fn conv3x3(out_channels: usize, stride: usize) -> Conv2d {
    Conv2d::new(0, out_channels, 3)
        .stride(stride)
        .padding(1)
        .bias(false)
}

/// The shortcut path: `x` itself, or a 1 x 1 convolution with the block's stride plus batch
/// norm (torchvision's `downsample`) when `project` is set.
fn shortcut(
    b: &mut GraphBuilder,
    x: NodeId,
    out_channels: usize,
    stride: usize,
    project: bool,
) -> convgrad::Result<NodeId> {
    if !project {
        return Ok(x);
    }
    let conv1x1 = Conv2d::new(0, out_channels, 1).stride(stride).bias(false);
    let s = b.conv("downsample.0", x, conv1x1)?;
    b.batch_norm("downsample.1", s)
}

/// ResNet's basic block: `relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`.
fn basic_block(
    input: [usize; 3],
    out_channels: usize,
    stride: usize,
    project: bool,
) -> convgrad::Result<Graph> {
    let (mut b, x) = GraphBuilder::new("basic_block", &input);
    let out = b.conv("conv1", x, conv3x3(out_channels, stride))?;
    let out = b.batch_norm("bn1", out)?;
    let out = b.relu("relu1", out)?;
    let out = b.conv("conv2", out, conv3x3(out_channels, 1))?;
    let out = b.batch_norm("bn2", out)?;
    let skip = shortcut(&mut b, x, out_channels, stride, project)?;
    let sum = b.add("add", &[out, skip])?;
    let y = b.relu("relu", sum)?;
    b.build(y)
}

/// Builds the block, prints its summary, and runs a batch of four random images through it.
fn show(title: &str, graph: &Graph, rng: &mut Rng) -> convgrad::Result<()> {
    println!("== {title}\n");
    print!("{}", graph.summary());
    let store = ParamStore::init(graph, rng);
    let mut batch_shape = vec![4];
    batch_shape.extend_from_slice(graph.input_shape());
    let x = Tensor::randn(&batch_shape, rng);
    let y = graph.forward(&store, &x)?;
    println!("forward: {:?} -> {:?}\n", x.shape(), y.shape());
    Ok(())
}

fn main() -> convgrad::Result<()> {
    let mut rng = Rng::seed(0);

    let identity = basic_block([64, 28, 28], 64, 1, false)?;
    show(
        "identity shortcut: the block keeps the shape, the shortcut costs nothing",
        &identity,
        &mut rng,
    )?;

    // One channel in, 64 out: `x` cannot be added to the block's output as it is.
    match basic_block([1, 28, 28], 64, 1, false) {
        Ok(_) => unreachable!("a [1, 28, 28] input cannot be added to a [64, 28, 28] output"),
        Err(e) => println!("== without a projection, 1 -> 64 channels fails:\n{e}\n"),
    }

    let projected = basic_block([1, 28, 28], 64, 1, true)?;
    show(
        "1x1 projection: the shortcut maps 1 channel to 64",
        &projected,
        &mut rng,
    )?;

    let strided = basic_block([1, 28, 28], 64, 2, true)?;
    show(
        "stride 2: conv1 and the projection both halve the resolution",
        &strided,
        &mut rng,
    )?;

    let projection_params = strided.node_parameter_count(strided.node("downsample.0").unwrap())
        + strided.node_parameter_count(strided.node("downsample.1").unwrap());
    println!(
        "The projection costs {projection_params} of the block's {} parameters; \
         the identity shortcut costs none, which is why ResNet projects only where the shape changes.",
        strided.parameter_count()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shapes_the_example_prints() {
        main().unwrap();
        assert_eq!(
            basic_block([1, 28, 28], 64, 1, true)
                .unwrap()
                .output_shape(),
            [64, 28, 28]
        );
        assert_eq!(
            basic_block([1, 28, 28], 64, 2, true)
                .unwrap()
                .output_shape(),
            [64, 14, 14]
        );
        assert!(basic_block([1, 28, 28], 64, 1, false).is_err());
        assert_eq!(
            basic_block([64, 28, 28], 64, 1, false)
                .unwrap()
                .output_shape(),
            [64, 28, 28]
        );
    }
}
