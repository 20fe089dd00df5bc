//! Graphviz DOT export, like Keras' `plot_model`. Nodes are grouped into nested clusters by the
//! dotted prefixes of their names, so `layer1.0.conv1` sits in cluster `layer1.0` inside
//! `layer1`: a ResNet block or an Inception module reads as one box.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::Graph;
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
                "Conv2d" | "DepthwiseConv2d" => ("box", "#cfe2f3"),
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
        let mut root = Cluster::default();
        for (i, node) in self.nodes.iter().enumerate() {
            let parts: Vec<&str> = node.name.split('.').collect();
            let mut cluster = &mut root;
            for part in &parts[..parts.len() - 1] {
                cluster = cluster.children.entry(part.to_string()).or_default();
            }
            cluster.nodes.push(i);
        }
        let mut out = String::new();
        let _ = writeln!(out, "digraph \"{}\" {{", escape(&self.name));
        let _ = writeln!(
            out,
            "  rankdir=TB; node [fontname=\"Helvetica\", fontsize=10]; edge [color=\"#555555\"];"
        );
        root.write(self, "", 0, &mut out);
        for (i, node) in self.nodes.iter().enumerate() {
            for input in &node.inputs {
                let _ = writeln!(out, "  n{} -> n{i};", input.0);
            }
        }
        out.push_str("}\n");
        out
    }
}
