//! Graphviz DOT export, like Keras' `plot_model`. Nodes are grouped into nested clusters by the
//! dotted prefixes of their names, so `layer1.0.conv1` sits in cluster `layer1.0` inside
//! `layer1`: a ResNet block or an Inception module reads as one box.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{Graph, Node};
use crate::error::fmt_shape;

#[derive(Default)]
struct Cluster {
    nodes: Vec<usize>,
    children: BTreeMap<String, Cluster>,
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

impl Cluster {
    fn write(&self, graph: &Graph, path: &str, depth: usize, out: &mut String) {
        let indent = "  ".repeat(depth + 1);
        for &i in &self.nodes {
            let node = &graph.nodes[i];
            let detail = node.layer.as_ref().map_or(String::new(), |l| l.describe());
            let label = format!(
                "{}\\n{}{}{}\\n{}",
                escape(&node.name),
                node.kind(),
                if detail.is_empty() { "" } else { " " },
                escape(&detail),
                fmt_shape(&node.shape)
            );
            let (shape, fill) = match node.kind() {
                "Input" => ("oval", "#e8e8e8"),
                "Conv2d" | "DepthwiseConv2d" | "SeparableConv2d" => ("box", "#cfe2f3"),
                "Linear" => ("box", "#d9ead3"),
                "Add" | "Concat" => ("diamond", "#fff2cc"),
                _ => ("box", "#ffffff"),
            };
            let _ = writeln!(
                out,
                "{indent}n{i} [label=\"{label}\", shape={shape}, style=filled, fillcolor=\"{fill}\"];"
            );
        }
        for (name, child) in &self.children {
            let full = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            let id: String = full
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            let _ = writeln!(out, "{indent}subgraph cluster_{id} {{");
            let _ = writeln!(
                out,
                "{indent}  label=\"{}\"; style=rounded; color=\"#888888\";",
                escape(&full)
            );
            child.write(graph, &full, depth + 1, out);
            let _ = writeln!(out, "{indent}}}");
        }
    }
}

impl Graph {
    /// The graph in Graphviz DOT (render with `dot -Tsvg`).
    pub fn to_dot(&self) -> String {
        let all: Vec<usize> = (0..self.nodes.len()).collect();
        self.write_dot(&self.name, &all)
    }

    /// A part of the graph in DOT: the nodes `keep` selects, clustered as in [`Graph::to_dot`],
    /// with every node outside the part that feeds it drawn as a dashed oval (its name and
    /// shape). The guide draws each architecture's characteristic block this way, from the
    /// zoo's own graph rather than from a hand-made drawing.
    ///
    /// ```
    /// let resnet = convgrad::models::build("resnet18", 1000)?;
    /// let block = resnet.to_dot_part("layer2.0", |node| node.name.starts_with("layer2.0."));
    /// assert!(block.contains("layer2.0.downsample.0"));
    /// assert!(block.contains("style=dashed")); // layer1.1.relu2, the block's input
    /// assert!(!block.contains("layer3"));
    /// # Ok::<(), convgrad::Error>(())
    /// ```
    pub fn to_dot_part(&self, title: &str, keep: impl Fn(&Node) -> bool) -> String {
        let selected: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| keep(&self.nodes[i]))
            .collect();
        self.write_dot(title, &selected)
    }

    /// DOT for the `selected` nodes (ascending indices) and the outside nodes feeding them.
    fn write_dot(&self, title: &str, selected: &[usize]) -> String {
        let mut root = Cluster::default();
        for &i in selected {
            let parts: Vec<&str> = self.nodes[i].name.split('.').collect();
            let mut cluster = &mut root;
            for part in &parts[..parts.len() - 1] {
                cluster = cluster.children.entry(part.to_string()).or_default();
            }
            cluster.nodes.push(i);
        }
        let mut feeders: Vec<usize> = selected
            .iter()
            .flat_map(|&i| self.nodes[i].inputs.iter().map(|input| input.0))
            .filter(|input| selected.binary_search(input).is_err())
            .collect();
        feeders.sort_unstable();
        feeders.dedup();

        let mut out = String::new();
        let _ = writeln!(out, "digraph \"{}\" {{", escape(title));
        let _ = writeln!(
            out,
            "  rankdir=TB; node [fontname=\"Helvetica\", fontsize=10]; edge [color=\"#555555\"];"
        );
        for &i in &feeders {
            let node = &self.nodes[i];
            let _ = writeln!(
                out,
                "  n{i} [label=\"{}\\n{}\", shape=oval, style=dashed];",
                escape(&node.name),
                fmt_shape(&node.shape)
            );
        }
        root.write(self, "", 0, &mut out);
        for &i in selected {
            for input in &self.nodes[i].inputs {
                let _ = writeln!(out, "  n{} -> n{i};", input.0);
            }
        }
        out.push_str("}\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::models;

    #[test]
    fn a_part_holding_every_node_is_the_whole_graph() {
        let graph = models::build("lenet5", 10).unwrap();
        assert_eq!(graph.to_dot_part("lenet5", |_| true), graph.to_dot());
    }

    #[test]
    fn a_block_draws_its_outside_input_once_with_every_edge_from_it() {
        let graph = models::build("resnet18", 10).unwrap();
        let dot = graph.to_dot_part("layer1.0", |n| n.name.starts_with("layer1.0."));
        // The block's input is the stem's max pool: one dashed node, feeding conv1 and the sum.
        let feeder = graph
            .nodes()
            .iter()
            .position(|n| n.name == "maxpool")
            .unwrap();
        let conv1 = graph
            .nodes()
            .iter()
            .position(|n| n.name == "layer1.0.conv1")
            .unwrap();
        let add = graph
            .nodes()
            .iter()
            .position(|n| n.name == "layer1.0.add")
            .unwrap();
        assert_eq!(dot.matches("style=dashed").count(), 1);
        assert!(dot.contains(&format!("n{feeder} [label=\"maxpool\\n[64, 56, 56]\"")));
        assert!(dot.contains(&format!("n{feeder} -> n{conv1};")));
        assert!(dot.contains(&format!("n{feeder} -> n{add};")));
        assert!(!dot.contains("layer1.1"), "only the block's own nodes");
        assert!(!dot.contains("conv1\\nConv2d 7x7"), "not the stem");
    }
}
