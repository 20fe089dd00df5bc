//! Training with each BatchNorm and its ReLU or ReLU6 as one op ([`Graph::forward_tape_fused`])
//! gives the same step as node by node, bit for bit, on every zoo family; and only the pairs
//! that may be fused are.

use super::{Graph, GraphBuilder, ParamStore};
use crate::models::{self, ModelConfig};
use crate::nn::{Conv2d, Mode};
use crate::{Rng, Tape, Tensor};

/// Loss, logits, auxiliary logits, running statistics and every parameter's gradient of one
/// training step, as bits.
fn step(graph: &Graph, store: &ParamStore, x: &Tensor, fused: bool) -> Vec<Vec<u32>> {
    let mut tape = Tape::new();
    let input = tape.input(x.clone());
    let mut rng = Rng::seed(5);
    let out = if fused {
        graph.forward_tape_fused(&mut tape, store, input, Mode::Train, &mut rng, true)
    } else {
        graph.forward_tape(&mut tape, store, input, Mode::Train, &mut rng, true)
    }
    .unwrap();
    let labels: Vec<usize> = (0..x.shape()[0]).map(|i| i % 10).collect();
    let mut loss = tape.cross_entropy(out.output, &labels).unwrap();
    for &aux in &out.aux {
        let aux_loss = tape.cross_entropy(aux, &labels).unwrap();
        loss = tape.add(loss, aux_loss).unwrap();
    }
    let mut values: Vec<Tensor> = [out.output, loss]
        .iter()
        .chain(&out.aux)
        .map(|&v| tape.value(v).unwrap().clone())
        .collect();
    values.extend(out.buffer_updates.iter().map(|(_, t)| t.clone()));
    let grads = tape.backward(loss).unwrap();
    values.extend(out.params.iter().filter_map(|&p| grads.get(p).cloned()));
    let bits = |t: &Tensor| t.data().iter().map(|v| v.to_bits()).collect();
    values.iter().map(bits).collect()
}

fn fused_pairs(graph: &Graph) -> usize {
    graph.clamp_fusions().iter().filter(|f| f.is_some()).count() / 2
}

fn assert_same_step(name: &str, graph: &Graph, input: &[usize]) {
    let mut rng = Rng::seed(11);
    let store = ParamStore::init(graph, &mut rng);
    let x = Tensor::uniform(input, -1.0, 1.0, &mut rng);
    let (plain, fused) = (
        step(graph, &store, &x, false),
        step(graph, &store, &x, true),
    );
    assert_eq!(plain.len(), fused.len(), "{name}");
    for (k, (a, b)) in plain.iter().zip(&fused).enumerate() {
        assert!(a == b, "{name}: value {k} of the step differs when fused");
    }
}

#[test]
fn fused_training_equals_node_by_node_on_every_family() {
    for (name, input, aux, pairs) in [
        // The stem's and each basic block's first BatchNorm; the second feeds the residual sum.
        ("resnet18", [2usize, 3, 32, 32], false, 1 + 8),
        // Every BatchNorm but the 17 projections', which have no activation.
        ("mobilenet_v2", [2, 3, 32, 32], false, 52 - 17),
        // The stem, and both halves of the 13 separable blocks.
        ("mobilenet_v1", [2, 3, 32, 32], false, 1 + 2 * 13),
        // Every BatchNorm, the pre-activation ones included.
        ("densenet121", [2, 3, 32, 32], false, 121),
        // The four stem convolutions, and each separable BatchNorm followed by the next ReLU
        // inside a block (1 in each of the 4 two-layer blocks, 2 in each of the 8 middle ones).
        ("xception", [2, 3, 32, 32], false, 4 + 4 + 2 * 8),
        // Every BasicConv2d: 3 in the stem, 6 per Inception module, 1 per auxiliary head.
        ("googlenet", [2, 3, 64, 64], true, 3 + 6 * 9 + 2),
        ("inception_v3", [2, 3, 75, 75], false, 94),
        ("vgg11_bn", [2, 3, 32, 32], false, 8),
    ] {
        let config = ModelConfig::new(10)
            .input([input[1], input[2], input[3]])
            .aux_logits(aux);
        let graph = models::build_with(name, &config).unwrap();
        assert_eq!(fused_pairs(&graph), pairs, "{name}");
        assert_same_step(name, &graph, &input);
    }
}

#[test]
fn only_a_batch_norm_read_by_nothing_but_its_clamp_is_fused() {
    let (mut b, x) = GraphBuilder::new("pairs", &[2, 5, 5]);
    let c = b.conv("conv", x, Conv2d::new(2, 3, 3).padding(1)).unwrap();
    // Fused: read only by the ReLU6.
    let n1 = b.batch_norm("bn1", c).unwrap();
    let r1 = b.relu6("relu1", n1).unwrap();
    // Not fused: also read by the sum.
    let n2 = b.batch_norm("bn2", r1).unwrap();
    let r2 = b.relu("relu2", n2).unwrap();
    let s = b.add("sum", &[n2, r2]).unwrap();
    // Not fused: the graph's output is the BatchNorm itself (over the logits).
    let f = b.flatten("flatten", s).unwrap();
    let logits = b.linear("fc", f, 10).unwrap();
    let n3 = b.batch_norm("bn3", logits).unwrap();
    let graph = b.build(n3).unwrap();
    assert_eq!(fused_pairs(&graph), 1);
    assert!(graph.clamp_fusions()[n1.index()].is_some());
    assert_same_step("pairs", &graph, &[3, 2, 5, 5]);

    // Evaluation-mode tapes are never fused.
    let store = ParamStore::init(&graph, &mut Rng::seed(1));
    let mut tape = Tape::new();
    let input = tape.input(Tensor::zeros(&[3, 2, 5, 5]));
    let out = graph
        .forward_tape_fused(
            &mut tape,
            &store,
            input,
            Mode::Eval,
            &mut Rng::seed(1),
            false,
        )
        .unwrap();
    assert_ne!(out.nodes[n1.index()], out.nodes[r1.index()]);
}
