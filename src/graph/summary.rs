//! The summary table, like torchsummary or Keras' `model.summary()`.

use std::fmt::Write;

use super::Graph;

/// One row of a summary: a node with its output shape and costs.
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryRow {
    pub name: String,
    pub kind: &'static str,
    pub description: String,
    /// Per-sample output shape.
    pub output_shape: Vec<usize>,
    pub parameters: usize,
    pub multiply_adds: u64,
}

/// `1234567` as `1,234,567`, as the summary and the CLI print counts.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1234567` as `1.23M`.
pub(crate) fn short(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{:.1}K", n as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.2}M", n as f64 / 1e6),
        _ => format!("{:.2}G", n as f64 / 1e9),
    }
}

fn shape_with_batch(shape: &[usize]) -> String {
    let dims: Vec<String> = std::iter::once("-1".to_string())
        .chain(shape.iter().map(|d| d.to_string()))
        .collect();
    format!("[{}]", dims.join(", "))
}

impl Graph {
    /// One row per node (the input included).
    pub fn summary_rows(&self) -> Vec<SummaryRow> {
        self.nodes
            .iter()
            .map(|node| SummaryRow {
                name: node.name.clone(),
                kind: node.kind(),
                description: node.layer.as_ref().map_or(String::new(), |l| l.describe()),
                output_shape: node.shape.clone(),
                parameters: self.node_parameter_count(node),
                multiply_adds: self.node_multiply_adds(node),
            })
            .collect()
    }

    /// The summary as text: a row per node (name, type, output shape, parameters,
    /// multiply-adds), then the totals.
    pub fn summary(&self) -> String {
        let rows = self.summary_rows();
        let name_width = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(5);
        let kind_width = rows
            .iter()
            .map(|r| r.kind.len() + 1 + r.description.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let shape_width = rows
            .iter()
            .map(|r| shape_with_batch(&r.output_shape).len())
            .max()
            .unwrap_or(12)
            .max(12);
        let mut out = String::new();
        let header = format!(
            "{:<name_width$}  {:<kind_width$}  {:<shape_width$}  {:>12}  {:>14}",
            "Layer", "Type", "Output shape", "Param #", "Mult-adds"
        );
        let rule = "=".repeat(header.len());
        let _ = writeln!(
            out,
            "{}: input [-1, {}]",
            self.name,
            self.input_shape()
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(out, "{rule}\n{header}\n{rule}");
        for r in &rows {
            let kind = if r.description.is_empty() {
                r.kind.to_string()
            } else {
                format!("{} {}", r.kind, r.description)
            };
            let _ = writeln!(
                out,
                "{:<name_width$}  {:<kind_width$}  {:<shape_width$}  {:>12}  {:>14}",
                r.name,
                kind,
                shape_with_batch(&r.output_shape),
                thousands(r.parameters as u64),
                thousands(r.multiply_adds)
            );
        }
        let total = self.parameter_count();
        let buffers: usize = self
            .param_specs()
            .iter()
            .filter(|p| p.spec.kind == crate::nn::ParamKind::Buffer)
            .map(|p| p.spec.shape.iter().product::<usize>())
            .sum();
        let macs = self.multiply_adds();
        let _ = writeln!(out, "{rule}");
        let _ = writeln!(out, "Total parameters: {total} ({})", short(total as u64));
        let _ = writeln!(out, "Buffers (running statistics): {buffers}");
        let _ = writeln!(out, "Multiply-adds per sample: {macs} ({})", short(macs));
        let _ = writeln!(
            out,
            "Parameter memory: {:.1} MB (f32)",
            (total + buffers) as f64 * 4.0 / 1e6
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(11_689_512), "11,689,512");
        assert_eq!(thousands(999), "999");
        assert_eq!(short(569_000_000), "569.00M");
        assert_eq!(short(61_706), "61.7K");
        assert_eq!(short(1_820_000_000), "1.82G");
    }
}
