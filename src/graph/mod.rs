//! Graphs: an architecture as named nodes over layers, built like the Keras functional API.
//!
//! ```
//! use convgrad::graph::GraphBuilder;
//! use convgrad::nn::{Conv2d, Linear};
//! let (mut b, x) = GraphBuilder::new("tiny", &[1, 28, 28]);
//! let x = b.conv("conv", x, Conv2d::new(1, 8, 3).padding(1))?;
//! let x = b.relu("relu", x)?;
//! let x = b.flatten("flatten", x)?;
//! let x = b.linear("fc", x, 10)?;
//! let graph = b.build(x)?;
//! assert_eq!(graph.output_shape(), &[10]);
//! assert_eq!(graph.parameter_count(), 8 * 9 + 8 + 8 * 28 * 28 * 10 + 10);
//! # Ok::<(), convgrad::Error>(())
//! ```
//!
//! One graph serves everything: [`Graph::forward`] for inference, [`Graph::forward_tape`] for
//! training, [`Graph::param_specs`] for names and checkpoints, [`Graph::summary`] for the table,
//! [`Graph::to_dot`] for a drawing, and per-node parameter and multiply-add counts. Nodes are kept
//! in the order they were added, which is a topological order: running the graph is one pass.

mod builder;
mod dot;
#[cfg(test)]
mod fused_tests;
mod inference;
mod run;
mod store;
mod summary;

pub use builder::GraphBuilder;
pub use inference::Inference;
pub use run::TapeOutput;
pub use store::ParamStore;
pub use summary::{thousands, SummaryRow};

use crate::nn::{Layer, ParamKind, ParamSpec};

/// A node's position in its graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub(crate) usize);

impl NodeId {
    pub fn index(self) -> usize {
        self.0
    }
}

/// One named layer applied to the outputs of earlier nodes.
#[derive(Debug)]
pub struct Node {
    pub name: String,
    /// `None` for the graph's input.
    pub layer: Option<Box<dyn Layer>>,
    pub inputs: Vec<NodeId>,
    /// Per-sample output shape (`[C, H, W]` or `[F]`).
    pub shape: Vec<usize>,
    /// Positions of this node's parameters in [`Graph::param_specs`].
    pub params: Vec<usize>,
}

impl Node {
    /// The layer's type, or `"Input"`.
    pub fn kind(&self) -> &'static str {
        self.layer.as_ref().map_or("Input", |l| l.kind())
    }
}

/// A finished architecture: nodes in topological order, with its parameters described by name.
#[derive(Debug)]
pub struct Graph {
    name: String,
    nodes: Vec<Node>,
    output: NodeId,
    /// Auxiliary classifier outputs (GoogLeNet, Inception-v3), computed only on a tape.
    aux_outputs: Vec<NodeId>,
    /// Full names (`layer1.0.conv1.weight`), shapes and inits of every tensor, in node order.
    params: Vec<NamedParam>,
}

/// A parameter or buffer with its full name.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedParam {
    pub name: String,
    pub spec: ParamSpec,
}

impl Graph {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Per-sample input shape.
    pub fn input_shape(&self) -> &[usize] {
        &self.nodes[0].shape
    }

    /// Per-sample output shape.
    pub fn output_shape(&self) -> &[usize] {
        &self.nodes[self.output.0].shape
    }

    /// Auxiliary outputs (deep supervision heads used in training), if any.
    pub fn aux_outputs(&self) -> &[NodeId] {
        &self.aux_outputs
    }

    /// Every parameter and buffer, named as in PyTorch's `state_dict()`.
    pub fn param_specs(&self) -> &[NamedParam] {
        &self.params
    }

    /// Number of trainable parameters (buffers such as running statistics excluded),
    /// as `sum(p.numel() for p in model.parameters())` counts them.
    pub fn parameter_count(&self) -> usize {
        self.params
            .iter()
            .filter(|p| p.spec.kind == ParamKind::Trainable)
            .map(|p| p.spec.shape.iter().product::<usize>())
            .sum()
    }

    /// Trainable parameters of one node.
    pub fn node_parameter_count(&self, node: &Node) -> usize {
        node.params
            .iter()
            .map(|&i| &self.params[i])
            .filter(|p| p.spec.kind == ParamKind::Trainable)
            .map(|p| p.spec.shape.iter().product::<usize>())
            .sum()
    }

    /// Multiply-adds of one node for one sample.
    pub fn node_multiply_adds(&self, node: &Node) -> u64 {
        let Some(layer) = &node.layer else {
            return 0;
        };
        let inputs: Vec<&[usize]> = node
            .inputs
            .iter()
            .map(|i| self.nodes[i.0].shape.as_slice())
            .collect();
        layer.multiply_adds(&inputs, &node.shape)
    }

    /// Multiply-adds of one forward pass for one sample (convolutions and linear layers; the
    /// count the MobileNet paper gives as 569M for MobileNet 1.0-224).
    pub fn multiply_adds(&self) -> u64 {
        self.nodes.iter().map(|n| self.node_multiply_adds(n)).sum()
    }

    /// The node with this name.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }
}
