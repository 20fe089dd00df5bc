//! Graph errors are found before any computation: a wrong channel count, an input too small for
//! the network, a layer that does not fit its inputs, weights of another architecture. Each
//! error names the node (or parameter) and the shapes involved.

use convgrad::autograd::Pool2dOptions;
use convgrad::graph::{GraphBuilder, ParamStore};
use convgrad::models::{self, ModelConfig};
use convgrad::nn::{
    AdaptiveAvgPool2d, Add, AvgPool2d, BatchNorm2d, Concat, Conv2d, Dropout, Flatten,
    GlobalAvgPool2d, Layer, Linear, MaxPool2d, ReLU, SeparableConv2d,
};
use convgrad::{Error, Rng, Tape, Tensor};

fn lenet() -> convgrad::graph::Graph {
    models::build_with("lenet5", &ModelConfig::new(10).input([1, 28, 28])).unwrap()
}

fn graph_error(result: convgrad::Result<impl std::fmt::Debug>) -> (String, String) {
    match result {
        Err(Error::Graph { node, message }) => (node, message),
        other => panic!("expected Error::Graph, got {other:?}"),
    }
}

#[test]
fn a_wrong_channel_count_names_the_input_and_both_shapes() {
    let graph = lenet();
    let store = ParamStore::init(&graph, &mut Rng::seed(0));
    let rgb = Tensor::zeros(&[2, 3, 28, 28]);
    let (node, message) = graph_error(graph.forward(&store, &rgb));
    assert_eq!(node, "input");
    assert!(
        message.contains("[N, 1, 28, 28]") && message.contains("[2, 3, 28, 28]"),
        "{message}"
    );
    let mut tape = Tape::new();
    let x = tape.input(rgb);
    let (node, _) = graph_error(graph.forward_tape(
        &mut tape,
        &store,
        x,
        convgrad::nn::Mode::Train,
        &mut Rng::seed(0),
        true,
    ));
    assert_eq!(node, "input");
    // A model built for three channels fed one-channel images, and a missing batch dimension.
    let (_, message) = graph_error(graph.forward(&store, &Tensor::zeros(&[1, 28, 28])));
    assert!(message.contains("[1, 28, 28]"), "{message}");
    // An empty batch is refused too: there is nothing to compute a loss or statistics from.
    let (node, message) = graph_error(graph.forward(&store, &Tensor::zeros(&[0, 1, 28, 28])));
    assert_eq!(node, "input");
    assert!(message.contains("empty batch"), "{message}");
}

#[test]
fn an_input_too_small_for_the_network_is_refused_when_the_graph_is_built() {
    let text = models::build_with("vgg11", &ModelConfig::new(10).input([3, 16, 16]))
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("at least 32x32") && text.contains("16x16"),
        "{text}"
    );
    // The builder itself finds the node where the feature map vanishes, with its input's shape.
    let (mut b, x) = GraphBuilder::new("tiny", &[1, 6, 6]);
    let x = b.conv("conv1", x, Conv2d::new(0, 4, 3)).unwrap();
    let x = b.max_pool("pool1", x, Pool2dOptions::new(2)).unwrap();
    let (node, message) = graph_error(b.conv("conv2", x, Conv2d::new(0, 8, 5)));
    assert_eq!(node, "conv2");
    assert!(message.contains("'pool1' [4, 2, 2]"), "{message}");
}

#[test]
fn layers_that_do_not_fit_their_inputs_are_named_with_the_shapes() {
    let (mut b, x) = GraphBuilder::new("bad", &[3, 8, 8]);
    // in_channels given explicitly and wrong.
    let (node, message) = graph_error(b.add_layer("conv", Conv2d::new(4, 8, 3), &[x]));
    assert_eq!(node, "conv");
    assert!(message.contains("'input' [3, 8, 8]"), "{message}");
    let (node, message) = graph_error(b.add_layer("bn", BatchNorm2d::new(5), &[x]));
    assert_eq!(node, "bn");
    assert!(message.contains("[3, 8, 8]"), "{message}");
    let flat = b.flatten("flatten", x).unwrap();
    let (_, message) = graph_error(b.add_layer("fc", Linear::new(100, 10), &[flat]));
    assert!(message.contains("'flatten' [192]"), "{message}");
    // A linear layer on an unflattened feature map.
    let (node, _) = graph_error(b.add_layer("fc2", Linear::new(3, 10), &[x]));
    assert_eq!(node, "fc2");
    let small = b.conv("small", x, Conv2d::new(0, 3, 3)).unwrap();
    let (node, message) = graph_error(b.add("sum", &[x, small]));
    assert_eq!(node, "sum");
    assert!(
        message.contains("[3, 8, 8]") && message.contains("[3, 6, 6]"),
        "{message}"
    );
    let (_, message) = graph_error(b.concat("cat", &[x, small]));
    assert!(
        message.contains("[3, 8, 8]") && message.contains("[3, 6, 6]"),
        "{message}"
    );
    let (node, message) = graph_error(b.add_layer("small", ReLU, &[x]));
    assert_eq!(node, "small");
    assert!(message.contains("already exists"), "{message}");
}

#[test]
fn every_layer_refuses_a_wrong_number_of_inputs_without_panicking() {
    let layers: Vec<Box<dyn Layer>> = vec![
        Box::new(Conv2d::new(3, 4, 3)),
        Box::new(SeparableConv2d::new(3, 4, 3)),
        Box::new(Linear::new(3, 4)),
        Box::new(BatchNorm2d::new(3)),
        Box::new(MaxPool2d(Pool2dOptions::new(2))),
        Box::new(AvgPool2d(Pool2dOptions::new(2))),
        Box::new(AdaptiveAvgPool2d((1, 1))),
        Box::new(GlobalAvgPool2d),
        Box::new(ReLU),
        Box::new(Flatten),
        Box::new(Dropout { p: 0.5 }),
        Box::new(Add),
        Box::new(Concat),
    ];
    let shape: &[usize] = &[3, 8, 8];
    for layer in &layers {
        let none = layer.output_shape(&[]);
        assert!(none.is_err(), "{} accepted no input", layer.kind());
        if !matches!(layer.kind(), "Add" | "Concat") {
            let two = layer.output_shape(&[shape, shape]);
            assert!(two.is_err(), "{} accepted two inputs", layer.kind());
        }
    }
}

#[test]
fn weights_of_another_architecture_list_every_name_and_shape() {
    let graph = lenet();
    let resnet = models::build_with("resnet18", &ModelConfig::new(10).input([1, 28, 28])).unwrap();
    let other = ParamStore::init(&resnet, &mut Rng::seed(0));
    let named = other.iter().map(|(n, t)| (n.to_string(), t.clone()));
    let text = ParamStore::from_named(&graph, named)
        .unwrap_err()
        .to_string();
    assert!(text.contains("load weights into lenet5"), "{text}");
    assert!(
        text.contains("conv1.weight: expected [6, 1, 5, 5], found [64, 1, 7, 7]"),
        "{text}"
    );
    assert!(
        text.contains("conv2.weight: missing (expected [16, 6, 5, 5])"),
        "{text}"
    );
    assert!(
        text.contains("layer1.0.conv1.weight: unexpected tensor [64, 64, 3, 3]"),
        "{text}"
    );
    // A store made for another graph, handed to forward: named, with both shapes, before running.
    let (node, message) = graph_error(graph.forward(&other, &Tensor::zeros(&[1, 1, 28, 28])));
    assert_eq!(node, "lenet5");
    assert!(
        message.contains("conv1.weight")
            && message.contains("[6, 1, 5, 5]")
            && message.contains("[64, 1, 7, 7]"),
        "{message}"
    );
    // Same architecture, another class count.
    let hundred = models::build_with("lenet5", &ModelConfig::new(100).input([1, 28, 28])).unwrap();
    let store = ParamStore::init(&hundred, &mut Rng::seed(0));
    let (_, message) = graph_error(graph.forward(&store, &Tensor::zeros(&[1, 1, 28, 28])));
    assert!(
        message.contains("fc3.weight: expected [10, 84], found [100, 84]"),
        "{message}"
    );
}
