//! Inference prepared once: BatchNorm folded into convolutions, activations and sums in place
//! (see [`Inference`]).

use rayon::prelude::*;

use super::{Graph, NodeId};
use crate::autograd::{Clamp, Conv2dOptions};
use crate::error::{Error, Result};
use crate::functional::conv2d;
use crate::graph::ParamStore;
use crate::nn::Fusion;
use crate::parallel::on_worker;
use crate::Tensor;

/// How one node is computed.
#[derive(Debug)]
enum Step {
    /// Not needed for the main output (an auxiliary head), or folded into an earlier node.
    Skip,
    /// The layer's own forward pass.
    Layer,
    /// A convolution with a BatchNorm folded in.
    FoldedConv(Box<FoldedConv>),
    /// An elementwise map, in place when the input is read by nothing later.
    Map(fn(f32) -> f32),
    /// A sum, accumulated into the first input when nothing later reads it.
    Sum,
}

/// A convolution with a BatchNorm folded in; the BatchNorm node reads this node's value.
/// For a separable convolution, `depthwise` (options, weight and bias positions in the store)
/// runs first and the BatchNorm is folded into the pointwise half.
#[derive(Debug)]
struct FoldedConv {
    depthwise: Option<(Conv2dOptions, usize, Option<usize>)>,
    options: Conv2dOptions,
    weight: Tensor,
    bias: Tensor,
}

/// A graph and its weights, ready for inference: BatchNorm folded into the convolution before it,
/// and activations and residual sums computed in place.
///
/// In evaluation mode a BatchNorm is a fixed affine map per channel,
/// `y = (x - mean) / sqrt(var + eps) * gamma + beta`. When it reads a convolution's output and
/// nothing else does, the two are one convolution with
///
/// ```text
/// scale  = gamma / sqrt(var + eps)            per output channel o
/// w'[o]  = w[o] * scale[o]
/// b'[o]  = beta[o] + (b[o] - mean[o]) * scale[o]     (b = 0 for a convolution without bias)
/// ```
///
/// which saves a pass over the activations and an allocation per BatchNorm: ResNet, MobileNet,
/// GoogLeNet and Inception-v3 put one after every convolution. In DenseNet only the bottleneck's
/// second BatchNorm follows a convolution; the first normalises the concatenated features and
/// stays. After Xception's separable convolutions the BatchNorm folds into the pointwise half.
///
/// A ReLU or a residual `Add` whose input is read by nothing after it overwrites that input
/// rather than allocating a new tensor. The plan holds the folded weights, so it is built once
/// per set of weights ([`Graph::inference`]) and then run on any number of batches.
///
/// ```
/// use convgrad::graph::ParamStore;
/// use convgrad::models::{self, ModelConfig};
/// use convgrad::{Rng, Tensor};
/// let graph = models::build_with("resnet18", &ModelConfig::new(10).input([1, 32, 32]))?;
/// let store = ParamStore::init(&graph, &mut Rng::seed(0));
/// let plan = graph.inference(&store)?;
/// assert_eq!(plan.folded_batch_norms(), 20); // every BatchNorm of ResNet-18
/// let x = Tensor::zeros(&[2, 1, 32, 32]);
/// let (fast, plain) = (plan.forward(&x)?, graph.forward(&store, &x)?);
/// assert!(fast.max_abs_diff(&plain).unwrap() < 1e-4);
/// # Ok::<(), convgrad::Error>(())
/// ```
#[derive(Debug)]
pub struct Inference<'g> {
    graph: &'g Graph,
    store: &'g ParamStore,
    steps: Vec<Step>,
    /// Where each node's value lives: itself, or the convolution a BatchNorm was folded into.
    source: Vec<usize>,
    /// For each value slot, the last step that reads it (`usize::MAX` for the output).
    last_use: Vec<usize>,
    folded: usize,
}

/// Elements per task of an in-place map or sum: big enough to amortise the split.
const CHUNK: usize = 1 << 15;

impl Graph {
    /// Prepares evaluation-mode inference with these weights: BatchNorm folded into the
    /// convolution before it, activations and residual sums in place. The result equals
    /// [`Graph::forward`]'s up to float rounding.
    pub fn inference<'g>(&'g self, store: &'g ParamStore) -> Result<Inference<'g>> {
        self.check_store(store)?;
        let needed = self.needed_for_output();
        let n = self.nodes.len();
        let mut readers = vec![0usize; n];
        for (i, node) in self.nodes.iter().enumerate() {
            if needed[i] {
                for input in &node.inputs {
                    readers[input.0] += 1;
                }
            }
        }
        let mut steps: Vec<Step> = (0..n)
            .map(|i| {
                let layer = self.nodes[i].layer.as_ref();
                match layer.map(|l| l.fusion()) {
                    _ if i == 0 || !needed[i] => Step::Skip,
                    Some(Fusion::Map(f)) => Step::Map(f),
                    Some(Fusion::Clamp(Clamp::Relu)) => Step::Map(|v| Clamp::Relu.apply(v)),
                    Some(Fusion::Clamp(Clamp::Relu6)) => Step::Map(|v| Clamp::Relu6.apply(v)),
                    Some(Fusion::Sum) => Step::Sum,
                    _ => Step::Layer,
                }
            })
            .collect();
        let mut source: Vec<usize> = (0..n).collect();
        let mut folded = 0;
        for i in 1..n {
            let node = &self.nodes[i];
            let Some(Fusion::BatchNorm(bn)) = node.layer.as_ref().map(|l| l.fusion()) else {
                continue;
            };
            let conv_id = node.inputs[0].0;
            if !needed[i] || readers[conv_id] != 1 || self.is_output(NodeId(conv_id)) {
                continue;
            }
            let producer = &self.nodes[conv_id];
            // The convolution that produces the BatchNorm's input, where its weight and bias are
            // in the store, and the depthwise half that runs before it, if any.
            let (conv, weight_at, bias_at, depthwise) =
                match producer.layer.as_ref().map(|l| l.fusion()) {
                    Some(Fusion::Conv2d(conv)) => (
                        conv,
                        producer.params[0],
                        producer.params.get(1).copied(),
                        None,
                    ),
                    Some(Fusion::Separable(sep)) => {
                        let (dw_bias, pw_bias) = if sep.has_bias() {
                            (Some(producer.params[2]), Some(producer.params[3]))
                        } else {
                            (None, None)
                        };
                        let depthwise = (sep.depthwise.options, producer.params[0], dw_bias);
                        (&sep.pointwise, producer.params[1], pw_bias, Some(depthwise))
                    }
                    _ => continue,
                };
            let tensor = |k: usize| &store.tensors()[k];
            let [gamma, beta, mean, var] = [0, 1, 2, 3].map(|k| tensor(node.params[k]).data());
            let weight = tensor(weight_at);
            let bias = bias_at.map(|k| tensor(k).data());
            let per_channel = weight.numel() / conv.out_channels;
            let mut w = weight.data().to_vec();
            let mut b = vec![0.0f32; conv.out_channels];
            for o in 0..conv.out_channels {
                let scale = gamma[o] as f64 / (var[o] as f64 + bn.options.eps as f64).sqrt();
                for v in &mut w[o * per_channel..(o + 1) * per_channel] {
                    *v = (*v as f64 * scale) as f32;
                }
                let b0 = bias.map_or(0.0, |b| b[o] as f64);
                b[o] = (beta[o] as f64 + (b0 - mean[o] as f64) * scale) as f32;
            }
            steps[conv_id] = Step::FoldedConv(Box::new(FoldedConv {
                depthwise,
                options: conv.options,
                weight: Tensor::from_parts(w, weight.shape()),
                bias: Tensor::from_parts(b, &[conv.out_channels]),
            }));
            steps[i] = Step::Skip;
            source[i] = conv_id;
            folded += 1;
        }
        let mut last_use = vec![0usize; n];
        for (i, node) in self.nodes.iter().enumerate() {
            if matches!(steps[i], Step::Skip) {
                continue;
            }
            for input in &node.inputs {
                last_use[source[input.0]] = i;
            }
        }
        last_use[source[self.output.0]] = usize::MAX;
        Ok(Inference {
            graph: self,
            store,
            steps,
            source,
            last_use,
            folded,
        })
    }

    pub(super) fn is_output(&self, id: NodeId) -> bool {
        self.output == id || self.aux_outputs.contains(&id)
    }
}

impl Inference<'_> {
    /// How many BatchNorm layers were folded into a convolution.
    pub fn folded_batch_norms(&self) -> usize {
        self.folded
    }

    /// Runs the plan on `[N, ...input]` and returns `[N, ...output]`, as [`Graph::forward`].
    pub fn forward(&self, input: &Tensor) -> Result<Tensor> {
        on_worker(|| self.forward_on_worker(input))
    }

    fn forward_on_worker(&self, input: &Tensor) -> Result<Tensor> {
        let graph = self.graph;
        graph.check_input(input.shape())?;
        let mut values: Vec<Option<Tensor>> = vec![None; graph.nodes.len()];
        values[0] = Some(input.clone());
        for (i, node) in graph.nodes.iter().enumerate().skip(1) {
            let inputs: Vec<usize> = node.inputs.iter().map(|id| self.source[id.0]).collect();
            // An input this step reads for the last time may be overwritten in place.
            let take = |values: &mut [Option<Tensor>], k: usize| -> Tensor {
                if self.last_use[k] == i && inputs.iter().filter(|&&j| j == k).count() == 1 {
                    values[k].take().expect("inputs come first")
                } else {
                    values[k].clone().expect("inputs come first")
                }
            };
            let y = match &self.steps[i] {
                Step::Skip => continue,
                Step::Map(f) => {
                    let mut x = take(&mut values, inputs[0]);
                    x.data_mut()
                        .par_chunks_mut(CHUNK)
                        .for_each(|c| c.iter_mut().for_each(|v| *v = f(*v)));
                    Ok(x)
                }
                Step::Sum => {
                    let mut sum = take(&mut values, inputs[0]);
                    for &k in &inputs[1..] {
                        let x = values[k].as_ref().expect("inputs come first");
                        sum.data_mut()
                            .par_chunks_mut(CHUNK)
                            .zip(x.data().par_chunks(CHUNK))
                            .for_each(|(s, x)| s.iter_mut().zip(x).for_each(|(s, x)| *s += x));
                    }
                    Ok(sum)
                }
                Step::FoldedConv(folded) => {
                    let FoldedConv {
                        depthwise,
                        options,
                        weight,
                        bias,
                    } = folded.as_ref();
                    let x = values[inputs[0]].as_ref().expect("inputs come first");
                    let tensors = self.store.tensors();
                    match depthwise {
                        None => conv2d(x, weight, Some(bias), *options),
                        Some((dw_options, w, b)) => {
                            conv2d(x, &tensors[*w], b.map(|b| &tensors[b]), *dw_options)
                                .and_then(|mid| conv2d(&mid, weight, Some(bias), *options))
                        }
                    }
                }
                Step::Layer => {
                    let layer = node.layer.as_ref().expect("only the input has no layer");
                    let xs: Vec<&Tensor> = inputs
                        .iter()
                        .map(|&k| values[k].as_ref().expect("inputs come first"))
                        .collect();
                    let params: Vec<&Tensor> = node
                        .params
                        .iter()
                        .map(|&p| &self.store.tensors()[p])
                        .collect();
                    layer.forward(&xs, &params)
                }
            }
            .map_err(|e| Error::Graph {
                node: node.name.clone(),
                message: e.to_string(),
            })?;
            values[i] = Some(y);
            for &k in &inputs {
                if self.last_use[k] == i {
                    values[k] = None;
                }
            }
        }
        Ok(values[self.source[graph.output.0]]
            .take()
            .expect("the output was computed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{self, ModelConfig};
    use crate::nn::Conv2d;
    use crate::Rng;

    /// Random weights with BatchNorm statistics and affine parameters away from the identity,
    /// so that folding has something to fold.
    fn randomised(graph: &Graph, seed: u64) -> ParamStore {
        let mut rng = Rng::seed(seed);
        let mut store = ParamStore::init(graph, &mut rng);
        let names: Vec<String> = store.names().to_vec();
        for (k, name) in names.iter().enumerate() {
            let t = &mut store.tensors_mut()[k];
            let shape = t.shape().to_vec();
            let noise: Vec<f32> = (0..t.numel()).map(|_| rng.next_f32()).collect();
            let data = t.data_mut();
            if name.ends_with("running_var") {
                data.iter_mut()
                    .zip(&noise)
                    .for_each(|(v, r)| *v = 0.5 + 1.5 * r);
            } else if name.ends_with("running_mean")
                || (name.ends_with(".bias") && shape.len() == 1)
            {
                data.iter_mut()
                    .zip(&noise)
                    .for_each(|(v, r)| *v = 0.4 * (r - 0.5));
            } else if shape.len() == 1 && name.ends_with(".weight") {
                data.iter_mut().zip(&noise).for_each(|(v, r)| *v = 0.5 + r);
            }
        }
        store
    }

    fn check(name: &str, graph: &Graph, input: &[usize], expect_folded: usize) {
        let store = randomised(graph, 7);
        let plan = graph.inference(&store).unwrap();
        assert_eq!(plan.folded_batch_norms(), expect_folded, "{name}");
        let mut rng = Rng::seed(1);
        let x = Tensor::from_parts(
            (0..input.iter().product::<usize>())
                .map(|_| rng.normal())
                .collect(),
            input,
        );
        let plain = graph.forward(&store, &x).unwrap();
        let fast = plan.forward(&x).unwrap();
        let largest = plain.data().iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let diff = fast.max_abs_diff(&plain).unwrap();
        assert!(
            diff <= 1e-4 * largest.max(1.0),
            "{name}: folded inference differs from the plain forward by {diff} (largest logit {largest})"
        );
        // The plan is reusable and leaves its weights untouched.
        assert_eq!(plan.forward(&x).unwrap(), fast, "{name}");
    }

    #[test]
    fn folded_inference_equals_the_plain_forward() {
        for (name, input, folded) in [
            ("resnet18", [2, 3, 32, 32], 20),
            ("lenet5", [3, 1, 28, 28], 0),
        ] {
            let config = ModelConfig::new(10).input([input[1], input[2], input[3]]);
            let graph = models::build_with(name, &config).unwrap();
            check(name, &graph, &input, folded);
        }
    }

    #[test]
    fn every_zoo_family_folds_and_agrees() {
        for (name, input) in [
            ("mobilenet_v2", [2usize, 3, 32, 32]),
            ("mobilenet_v1", [2, 3, 32, 32]),
            ("googlenet", [2, 3, 32, 32]),
            ("inception_v3", [2, 3, 75, 75]),
            ("densenet121", [2, 3, 32, 32]),
            ("xception", [2, 3, 32, 32]),
            ("vgg11_bn", [2, 3, 32, 32]),
        ] {
            let config = ModelConfig::new(10).input([input[1], input[2], input[3]]);
            let graph = models::build_with(name, &config).unwrap();
            let bns = graph
                .nodes()
                .iter()
                .filter(|n| n.kind() == "BatchNorm2d")
                .count();
            let store = randomised(&graph, 3);
            let plan = graph.inference(&store).unwrap();
            // DenseNet's first BatchNorm of each layer reads the concatenation and stays.
            let expected = if name == "densenet121" { 1 + 58 } else { bns };
            assert_eq!(
                plan.folded_batch_norms(),
                expected,
                "{name} has {bns} BatchNorms"
            );
            check(name, &graph, &input, plan.folded_batch_norms());
        }
    }

    #[test]
    fn a_convolution_read_twice_is_not_folded() {
        use crate::graph::GraphBuilder;
        let (mut b, x) = GraphBuilder::new("twice", &[2, 6, 6]);
        let c = b.conv("conv", x, Conv2d::new(2, 4, 3).padding(1)).unwrap();
        let n = b.batch_norm("bn", c).unwrap();
        let s = b.add("sum", &[c, n]).unwrap();
        let r = b.relu("relu", s).unwrap();
        let graph = b.build(r).unwrap();
        check("twice", &graph, &[2, 2, 6, 6], 0);
    }
}
