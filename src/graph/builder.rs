//! The graph builder: `x = b.conv("conv1", x, ...)?; x = b.relu("relu", x)?;`, checking shapes
//! as it goes.

use super::{Graph, NamedParam, Node, NodeId};
use crate::autograd::{LrnOptions, Pool2dOptions};
use crate::error::{fmt_shape, Error, Result};
use crate::nn::{
    AdaptiveAvgPool2d, Add, AvgPool2d, BatchNorm2d, Concat, Conv2d, Dropout, Flatten,
    GlobalAvgPool2d, Layer, Linear, LocalResponseNorm, MaxPool2d, ReLU, ReLU6, SeparableConv2d,
};

/// Builds a [`Graph`] one node at a time. Every method checks the new node against its inputs'
/// shapes and fails with the node's name and the shapes involved.
#[derive(Debug)]
pub struct GraphBuilder {
    name: String,
    nodes: Vec<Node>,
}

impl GraphBuilder {
    /// A builder whose input is a per-sample tensor of `input_shape` (`[C, H, W]`), and the
    /// input node.
    pub fn new(name: impl Into<String>, input_shape: &[usize]) -> (GraphBuilder, NodeId) {
        let input = Node {
            name: "input".to_string(),
            layer: None,
            inputs: Vec::new(),
            shape: input_shape.to_vec(),
            params: Vec::new(),
        };
        let builder = GraphBuilder {
            name: name.into(),
            nodes: vec![input],
        };
        (builder, NodeId(0))
    }

    /// Per-sample shape of a node's output.
    pub fn shape(&self, node: NodeId) -> &[usize] {
        &self.nodes[node.0].shape
    }

    /// Channels of a node's `[C, H, W]` output (or features of a `[F]` one).
    pub fn channels(&self, node: NodeId) -> usize {
        self.nodes[node.0].shape.first().copied().unwrap_or(1)
    }

    /// Adds any layer, applied to `inputs`.
    pub fn add_layer(
        &mut self,
        name: impl Into<String>,
        layer: impl Layer + 'static,
        inputs: &[NodeId],
    ) -> Result<NodeId> {
        let name = name.into();
        let graph_error = |message: String| Error::Graph {
            node: name.clone(),
            message,
        };
        if self.nodes.iter().any(|n| n.name == name) {
            return Err(graph_error("a node of this name already exists".into()));
        }
        if let Some(bad) = inputs.iter().find(|i| i.0 >= self.nodes.len()) {
            return Err(graph_error(format!("input node {} does not exist", bad.0)));
        }
        let shapes: Vec<&[usize]> = inputs
            .iter()
            .map(|i| self.nodes[i.0].shape.as_slice())
            .collect();
        let shape = layer.output_shape(&shapes).map_err(|reason| {
            let described: Vec<String> = inputs
                .iter()
                .map(|i| {
                    let n = &self.nodes[i.0];
                    format!("'{}' {}", n.name, fmt_shape(&n.shape))
                })
                .collect();
            graph_error(format!(
                "{} {}: {reason} (input {})",
                layer.kind(),
                layer.describe(),
                described.join(", ")
            ))
        })?;
        if shape.contains(&0) {
            return Err(graph_error(format!(
                "{} produces an empty output {} (the input is too small for the network)",
                layer.kind(),
                fmt_shape(&shape)
            )));
        }
        self.nodes.push(Node {
            name,
            layer: Some(Box::new(layer)),
            inputs: inputs.to_vec(),
            shape,
            params: Vec::new(),
        });
        Ok(NodeId(self.nodes.len() - 1))
    }

    /// A convolution; its `in_channels` is taken from `x`.
    pub fn conv(&mut self, name: impl Into<String>, x: NodeId, conv: Conv2d) -> Result<NodeId> {
        let conv = Conv2d {
            in_channels: self.channels(x),
            ..conv
        };
        self.add_layer(name, conv, &[x])
    }

    /// A depthwise-separable convolution (depthwise then pointwise) as one node; its input
    /// channels are taken from `x`.
    pub fn separable_conv(
        &mut self,
        name: impl Into<String>,
        x: NodeId,
        conv: SeparableConv2d,
    ) -> Result<NodeId> {
        let conv = conv.with_in_channels(self.channels(x));
        self.add_layer(name, conv, &[x])
    }

    /// A fully connected layer to `out_features`, with a bias.
    pub fn linear(
        &mut self,
        name: impl Into<String>,
        x: NodeId,
        out_features: usize,
    ) -> Result<NodeId> {
        let linear = Linear::new(self.channels(x), out_features);
        self.add_layer(name, linear, &[x])
    }

    /// Batch normalisation over `x`'s channels with PyTorch's defaults (`eps = 1e-5`).
    pub fn batch_norm(&mut self, name: impl Into<String>, x: NodeId) -> Result<NodeId> {
        let bn = BatchNorm2d::new(self.channels(x));
        self.add_layer(name, bn, &[x])
    }

    /// Batch normalisation with another `eps` (GoogLeNet and Inception-v3 use `1e-3`).
    pub fn batch_norm_eps(
        &mut self,
        name: impl Into<String>,
        x: NodeId,
        eps: f32,
    ) -> Result<NodeId> {
        let bn = BatchNorm2d::new(self.channels(x)).eps(eps);
        self.add_layer(name, bn, &[x])
    }

    pub fn max_pool(
        &mut self,
        name: impl Into<String>,
        x: NodeId,
        options: Pool2dOptions,
    ) -> Result<NodeId> {
        self.add_layer(name, MaxPool2d(options), &[x])
    }

    pub fn avg_pool(
        &mut self,
        name: impl Into<String>,
        x: NodeId,
        options: Pool2dOptions,
    ) -> Result<NodeId> {
        self.add_layer(name, AvgPool2d(options), &[x])
    }

    pub fn adaptive_avg_pool(
        &mut self,
        name: impl Into<String>,
        x: NodeId,
        output_size: (usize, usize),
    ) -> Result<NodeId> {
        self.add_layer(name, AdaptiveAvgPool2d(output_size), &[x])
    }

    /// `[C, H, W]` to `[C]` by averaging each channel.
    pub fn global_avg_pool(&mut self, name: impl Into<String>, x: NodeId) -> Result<NodeId> {
        self.add_layer(name, GlobalAvgPool2d, &[x])
    }

    pub fn local_response_norm(
        &mut self,
        name: impl Into<String>,
        x: NodeId,
        options: LrnOptions,
    ) -> Result<NodeId> {
        self.add_layer(name, LocalResponseNorm(options), &[x])
    }

    pub fn relu(&mut self, name: impl Into<String>, x: NodeId) -> Result<NodeId> {
        self.add_layer(name, ReLU, &[x])
    }

    pub fn relu6(&mut self, name: impl Into<String>, x: NodeId) -> Result<NodeId> {
        self.add_layer(name, ReLU6, &[x])
    }

    pub fn flatten(&mut self, name: impl Into<String>, x: NodeId) -> Result<NodeId> {
        self.add_layer(name, Flatten, &[x])
    }

    pub fn dropout(&mut self, name: impl Into<String>, x: NodeId, p: f32) -> Result<NodeId> {
        self.add_layer(name, Dropout { p }, &[x])
    }

    /// Elementwise sum (a residual connection).
    pub fn add(&mut self, name: impl Into<String>, inputs: &[NodeId]) -> Result<NodeId> {
        self.add_layer(name, Add, inputs)
    }

    /// Concatenation along channels.
    pub fn concat(&mut self, name: impl Into<String>, inputs: &[NodeId]) -> Result<NodeId> {
        self.add_layer(name, Concat, inputs)
    }

    /// Finishes the graph with `output` as its result; parameters are named
    /// `<node name>.<local name>`.
    pub fn build(self, output: NodeId) -> Result<Graph> {
        self.build_with_aux(output, &[])
    }

    /// Finishes a graph that also has auxiliary classifier outputs (trained with a weighted extra
    /// loss, skipped at inference).
    pub fn build_with_aux(self, output: NodeId, aux_outputs: &[NodeId]) -> Result<Graph> {
        if let Some(bad) = std::iter::once(&output)
            .chain(aux_outputs)
            .find(|o| o.0 >= self.nodes.len())
        {
            return Err(Error::Graph {
                node: self.name,
                message: format!("output node {} does not exist", bad.0),
            });
        }
        if output.0 >= self.nodes.len() {
            return Err(Error::Graph {
                node: self.name,
                message: format!("output node {} does not exist", output.0),
            });
        }
        let mut nodes = self.nodes;
        let mut params = Vec::new();
        for node in &mut nodes {
            if let Some(layer) = &node.layer {
                for spec in layer.params() {
                    node.params.push(params.len());
                    params.push(NamedParam {
                        name: format!("{}.{}", node.name, spec.name),
                        spec,
                    });
                }
            }
        }
        Ok(Graph {
            name: self.name,
            nodes,
            output,
            aux_outputs: aux_outputs.to_vec(),
            params,
        })
    }
}
