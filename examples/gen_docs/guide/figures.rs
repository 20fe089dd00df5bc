//! The guide's figures: each architecture's characteristic block, cut out of the zoo's own
//! graph (so the drawing is what the code builds), except AlexNet's first layers, which the zoo
//! builds as torchvision does (without local response normalisation) and which are drawn here
//! as the paper describes them, with the same builder.

use convgrad::autograd::{LrnOptions, Pool2dOptions};
use convgrad::graph::{Graph, GraphBuilder};
use convgrad::models::{self, ModelConfig};
use convgrad::nn::Conv2d;

use super::Figure;

fn err(e: convgrad::Error) -> String {
    e.to_string()
}

fn zoo(name: &str) -> Result<Graph, String> {
    let classes = if name == "lenet5" { 10 } else { 1000 };
    models::build_with(name, &ModelConfig::new(classes)).map_err(err)
}

/// The nodes whose names start with `prefix` (a block: `layer2.0.`, `inception3a.`).
fn block(graph: &Graph, title: &str, prefix: &str) -> Result<String, String> {
    let dot = graph.to_dot_part(title, |node| node.name.starts_with(prefix));
    if !dot.contains("->") {
        return Err(format!("{}: no node starts with '{prefix}'", graph.name()));
    }
    Ok(dot)
}

/// The nodes named in `names`, in the graph's order.
fn named(graph: &Graph, title: &str, names: &[String]) -> Result<String, String> {
    if let Some(missing) = names.iter().find(|n| graph.node(n).is_none()) {
        return Err(format!("{}: no node '{missing}'", graph.name()));
    }
    Ok(graph.to_dot_part(title, |node| names.contains(&node.name)))
}

/// AlexNet's first two layers as the 2012 paper has them: 96 11x11 filters of stride 4, ReLU,
/// local response normalisation (k = 2, n = 5, alpha = 1e-4, beta = 0.75), overlapping 3x3
/// max pooling of stride 2; then 256 5x5 filters split into two groups, one per GPU.
fn alexnet_paper() -> Result<String, String> {
    let lrn = LrnOptions {
        k: 2.0,
        ..LrnOptions::new(5)
    };
    let pool = Pool2dOptions::new(3).stride(2);
    let (mut b, x) = GraphBuilder::new("alexnet (paper)", &[3, 224, 224]);
    let x = b
        .conv("conv1", x, Conv2d::new(0, 96, 11).stride(4).padding(2))
        .map_err(err)?;
    let x = b.relu("relu1", x).map_err(err)?;
    let x = b.local_response_norm("norm1", x, lrn).map_err(err)?;
    let x = b.max_pool("pool1", x, pool).map_err(err)?;
    let conv2 = Conv2d::new(0, 256, 5).padding(2).groups(2);
    let x = b.conv("conv2", x, conv2).map_err(err)?;
    let x = b.relu("relu2", x).map_err(err)?;
    let x = b.local_response_norm("norm2", x, lrn).map_err(err)?;
    let x = b.max_pool("pool2", x, pool).map_err(err)?;
    Ok(b.build(x).map_err(err)?.to_dot())
}

/// Every figure of the guide.
pub fn all() -> Result<Vec<Figure>, String> {
    let vgg16 = zoo("vgg16")?;
    let vgg16_stage3: Vec<String> = (10..=16).map(|i| format!("features.{i}")).collect();
    let resnet18 = zoo("resnet18")?;
    let resnet50 = zoo("resnet50")?;
    let inception_v3 = zoo("inception_v3")?;
    let mobilenet_v1 = zoo("mobilenet_v1")?;
    let mobilenet_v2 = zoo("mobilenet_v2")?;
    let densenet121 = zoo("densenet121")?;
    let first_dense_layers: Vec<String> = densenet121
        .nodes()
        .iter()
        .map(|n| n.name.clone())
        .filter(|name| {
            ["denselayer1.", "denselayer2.", "denselayer3."]
                .iter()
                .any(|layer| name.starts_with(&format!("features.denseblock1.{layer}")))
        })
        .collect();

    Ok(vec![
        Figure {
            name: "lenet5",
            dot: zoo("lenet5")?.to_dot(),
        },
        Figure {
            name: "alexnet_paper_layers",
            dot: alexnet_paper()?,
        },
        Figure {
            name: "vgg16_stage3",
            dot: named(&vgg16, "vgg16 stage 3", &vgg16_stage3)?,
        },
        Figure {
            name: "googlenet_inception3a",
            dot: block(&zoo("googlenet")?, "googlenet inception3a", "inception3a.")?,
        },
        Figure {
            name: "inception_v3_mixed_6b",
            dot: block(&inception_v3, "inception_v3 Mixed_6b", "Mixed_6b.")?,
        },
        Figure {
            name: "inception_v3_mixed_6a",
            dot: block(&inception_v3, "inception_v3 Mixed_6a", "Mixed_6a.")?,
        },
        Figure {
            name: "resnet18_layer2_0",
            dot: block(&resnet18, "resnet18 layer2.0", "layer2.0.")?,
        },
        Figure {
            name: "resnet50_layer2_0",
            dot: block(&resnet50, "resnet50 layer2.0", "layer2.0.")?,
        },
        Figure {
            name: "xception_block2",
            dot: block(&zoo("xception")?, "xception block2", "block2.")?,
        },
        Figure {
            name: "densenet121_denseblock1",
            dot: named(
                &densenet121,
                "densenet121 denseblock1, first three layers",
                &first_dense_layers,
            )?,
        },
        Figure {
            name: "mobilenet_v1_block",
            dot: block(&mobilenet_v1, "mobilenet_v1 blocks.1.0", "blocks.1.0.")?,
        },
        Figure {
            name: "mobilenet_v2_features_3",
            dot: block(&mobilenet_v2, "mobilenet_v2 features.3", "features.3.")?,
        },
    ])
}
