//! Tables that compare layer shapes on graphs the library builds: VGG's stacks of 3 x 3
//! convolutions, Inception-v3's factorised and GoogLeNet's reduction blocks, and what a
//! depthwise-separable convolution costs against a standard one.

use std::fmt::Write;

use convgrad::autograd::Pool2dOptions;
use convgrad::graph::{thousands, GraphBuilder};
use convgrad::models;
use convgrad::nn::{Conv2d, SeparableConv2d};

use super::err;

/// Stacks of small or thin convolutions against one large filter with the same receptive
/// field, counted on graphs the library builds: `channels` to `channels` at `size x size`.
fn stack_table(
    channels: usize,
    size: usize,
    stacks: &[(&str, &[(usize, usize)])],
) -> Result<String, String> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| layers ({channels} to {channels} channels, {size}x{size}, no bias) | receptive field \
         | weights | multiply-adds | ReLUs |"
    );
    out.push_str("|---|---:|---:|---:|---:|\n");
    for &(label, kernels) in stacks {
        let (mut b, mut x) = GraphBuilder::new(label, &[channels, size, size]);
        for (i, &(kh, kw)) in kernels.iter().enumerate() {
            let conv = Conv2d::new(0, channels, kh)
                .kernel((kh, kw))
                .padding2((kh / 2, kw / 2))
                .bias(false);
            x = b.conv(format!("conv{i}"), x, conv).map_err(err)?;
            x = b.relu(format!("relu{i}"), x).map_err(err)?;
        }
        let graph = b.build(x).map_err(err)?;
        let field_h = 1 + kernels.iter().map(|k| k.0 - 1).sum::<usize>();
        let field_w = 1 + kernels.iter().map(|k| k.1 - 1).sum::<usize>();
        let _ = writeln!(
            out,
            "| {label} | {field_h}x{field_w} | {} | {} | {} |",
            thousands(graph.parameter_count() as u64),
            thousands(graph.multiply_adds()),
            kernels.len()
        );
    }
    Ok(out)
}

/// VGG's argument: a stack of 3x3 convolutions sees as far as one large filter, for fewer
/// weights and more non-linearities; at VGG's stage-3 shape.
pub(super) fn vgg_stacks() -> Result<String, String> {
    stack_table(
        256,
        56,
        &[
            ("one 5x5", &[(5, 5)]),
            ("two 3x3", &[(3, 3), (3, 3)]),
            ("one 7x7", &[(7, 7)]),
            ("three 3x3", &[(3, 3), (3, 3), (3, 3)]),
        ],
    )
}

/// Inception-v3's factorisations: 5x5 into two 3x3, 7x7 into 1x7 then 7x1; at the shape of
/// Mixed_6b's 7x7 branch (128 channels on the 17x17 grid).
pub(super) fn factorised() -> Result<String, String> {
    stack_table(
        128,
        17,
        &[
            ("one 5x5", &[(5, 5)]),
            ("two 3x3", &[(3, 3), (3, 3)]),
            ("one 3x3", &[(3, 3)]),
            ("1x3 then 3x1", &[(1, 3), (3, 1)]),
            ("one 7x7", &[(7, 7)]),
            ("1x7 then 7x1", &[(1, 7), (7, 1)]),
        ],
    )
}

/// GoogLeNet's inception3a (192 channels in, 28x28) with and without its 1x1 reductions, as
/// the paper draws it (a real 5x5 branch, no batch norm), next to the zoo's module.
pub(super) fn inception_reductions() -> Result<String, String> {
    let input = [192, 28, 28];
    let module = |reduce: bool| -> Result<convgrad::graph::Graph, String> {
        let (mut b, x) = GraphBuilder::new("inception3a", &input);
        let conv = |out, k: usize| Conv2d::new(0, out, k).padding(k / 2);
        let mut branches = vec![b.conv("1x1", x, conv(64, 1)).map_err(err)?];
        for (name, reduce_to, out, k) in [("3x3", 96, 128, 3), ("5x5", 16, 32, 5)] {
            let from = if reduce {
                b.conv(format!("{name} reduce"), x, conv(reduce_to, 1))
                    .map_err(err)?
            } else {
                x
            };
            branches.push(b.conv(name, from, conv(out, k)).map_err(err)?);
        }
        let pool = Pool2dOptions::new(3).stride(1).padding(1);
        let mut pooled = b.max_pool("pool", x, pool).map_err(err)?;
        if reduce {
            pooled = b.conv("pool proj", pooled, conv(32, 1)).map_err(err)?;
        }
        branches.push(pooled);
        let y = b.concat("concat", &branches).map_err(err)?;
        b.build(y).map_err(err)
    };
    let googlenet = models::build("googlenet", 1000).map_err(err)?;
    let zoo_nodes: Vec<_> = googlenet
        .nodes()
        .iter()
        .filter(|n| n.name.starts_with("inception3a."))
        .collect();
    let zoo_params: usize = zoo_nodes
        .iter()
        .map(|n| googlenet.node_parameter_count(n))
        .sum();
    let zoo_macs: u64 = zoo_nodes
        .iter()
        .map(|n| googlenet.node_multiply_adds(n))
        .sum();
    let zoo_out = googlenet
        .node("inception3a.concat")
        .ok_or("googlenet has no inception3a.concat")?
        .shape[0];

    let mut out = String::new();
    out.push_str("| inception3a on 192x28x28 | output channels | parameters | multiply-adds |\n");
    out.push_str("|---|---:|---:|---:|\n");
    for (label, reduce) in [
        ("naive: 1x1, 3x3, 5x5 and pool side by side", false),
        ("with 1x1 reductions (the paper's module)", true),
    ] {
        let g = module(reduce)?;
        let _ = writeln!(
            out,
            "| {label} | {} | {} | {} |",
            g.output_shape()[0],
            thousands(g.parameter_count() as u64),
            thousands(g.multiply_adds())
        );
    }
    let _ = writeln!(
        out,
        "| the zoo's `inception3a` (torchvision: 3x3 in the \"5x5\" branch, batch norm) | {zoo_out} | {} | {} |",
        thousands(zoo_params as u64),
        thousands(zoo_macs)
    );
    Ok(out)
}

/// MobileNet v1's thirteen depthwise-separable layers against standard 3x3 convolutions of the
/// same shapes, with the paper's ratio `1/N + 1/K^2`.
pub(super) fn separable_cost() -> Result<String, String> {
    let graph = models::build("mobilenet_v1", 1000).map_err(err)?;
    let mut out = String::new();
    out.push_str(
        "| block | input | output | standard 3x3: weights | multiply-adds | separable: weights \
         | multiply-adds | separable / standard | 1/N + 1/9 |\n",
    );
    out.push_str("|---|---|---|---:|---:|---:|---:|---:|---:|\n");
    let (mut total_standard, mut total_separable) = (0u64, 0u64);
    for node in graph.nodes() {
        let Some(block) = node.name.strip_suffix(".conv_dw") else {
            continue;
        };
        let input = &graph.nodes()[node.inputs[0].index()].shape;
        let pointwise = graph
            .node(&format!("{block}.conv_pw"))
            .ok_or_else(|| format!("mobilenet_v1: {block} has no conv_pw"))?;
        let output = &pointwise.shape;
        let stride = input[1] / node.shape[1];

        // The same layer twice, built by the library: one standard conv, one separable conv.
        let (mut b, x) = GraphBuilder::new("standard", input);
        let standard = Conv2d::new(0, output[0], 3)
            .stride(stride)
            .padding(1)
            .bias(false);
        let y = b.conv("conv", x, standard).map_err(err)?;
        let standard = b.build(y).map_err(err)?;
        let (mut b, x) = GraphBuilder::new("separable", input);
        let separable = SeparableConv2d::new(0, output[0], 3)
            .stride(stride)
            .padding(1);
        let y = b.separable_conv("conv", x, separable).map_err(err)?;
        let separable = b.build(y).map_err(err)?;
        if separable.output_shape() != output.as_slice() {
            return Err(format!(
                "{block}: the separable conv does not give {output:?}"
            ));
        }
        // The zoo's block must cost what the separable layer costs.
        let zoo_macs = graph.node_multiply_adds(node) + graph.node_multiply_adds(pointwise);
        if zoo_macs != separable.multiply_adds() {
            return Err(format!(
                "{block}: zoo {zoo_macs} against {}",
                separable.multiply_adds()
            ));
        }
        total_standard += standard.multiply_adds();
        total_separable += separable.multiply_adds();
        let ratio = separable.multiply_adds() as f64 / standard.multiply_adds() as f64;
        let formula = 1.0 / output[0] as f64 + 1.0 / 9.0;
        let shape = |s: &[usize]| format!("{}x{}x{}", s[0], s[1], s[2]);
        let _ = writeln!(
            out,
            "| `{block}` | {} | {} | {} | {} | {} | {} | {ratio:.4} | {formula:.4} |",
            shape(input),
            shape(output),
            thousands(standard.parameter_count() as u64),
            thousands(standard.multiply_adds()),
            thousands(separable.parameter_count() as u64),
            thousands(separable.multiply_adds()),
        );
    }
    let _ = writeln!(
        out,
        "| all 13 | | | | {} | | {} | {:.4} | |",
        thousands(total_standard),
        thousands(total_separable),
        total_separable as f64 / total_standard as f64
    );
    Ok(out)
}
