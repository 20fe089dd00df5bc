//! What the guide's generated parts should contain, computed from the code.
//!
//! Shared by the generator (`examples/gen_docs/main.rs`, which writes the files) and by
//! `tests/docs.rs` (which fails when a committed table or figure source differs from what the
//! code gives now). Tables sit in markdown between two marker lines:
//!
//! ```text
//! <!-- generated:resnet-table -->
//! | model | ... |
//! <!-- end -->
//! ```
//!
//! Numbers come from two places only: the library (parameter and multiply-add counts, graphs)
//! and BENCHMARKS.md (what `convgrad train` and the kernel benchmarks measured), so a table can
//! never claim a number that neither the code nor a recorded measurement gives.

pub mod figures;
pub mod measured;
pub mod tables;

use std::path::Path;

/// A generated table: the markdown file (relative to the repository root), its marker name and
/// the text that belongs between the markers.
#[derive(Debug)]
pub struct Table {
    pub file: &'static str,
    pub marker: &'static str,
    pub text: String,
}

/// A generated figure: `docs/guide/figures/<name>.dot`, rendered to `<name>.svg` by
/// `scripts/gen_docs.sh`.
#[derive(Debug)]
pub struct Figure {
    pub name: &'static str,
    pub dot: String,
}

/// Where the figures live, relative to the repository root.
pub const FIGURES_DIR: &str = "docs/guide/figures";

/// Every generated table, given the repository root (BENCHMARKS.md is read from there).
pub fn all_tables(root: &Path) -> Result<Vec<Table>, String> {
    let benchmarks_path = root.join("BENCHMARKS.md");
    let benchmarks = std::fs::read_to_string(&benchmarks_path)
        .map_err(|e| format!("{}: {e}", benchmarks_path.display()))?;
    let trainings = measured::trainings(&benchmarks)?;
    let kernels = measured::kernel_cases(&benchmarks)?;
    tables::all(&trainings, &kernels)
}

/// Every generated figure source.
pub fn all_figures() -> Result<Vec<Figure>, String> {
    figures::all()
}

fn start_marker(marker: &str) -> String {
    format!("<!-- generated:{marker} -->")
}

const END_MARKER: &str = "<!-- end -->";

/// The byte range of the text between `marker`'s start line and the next end line.
fn block_range(markdown: &str, marker: &str) -> Result<std::ops::Range<usize>, String> {
    let start = start_marker(marker);
    let mut found = markdown.match_indices(&start);
    let Some((at, _)) = found.next() else {
        return Err(format!("no '{start}' line"));
    };
    if found.next().is_some() {
        return Err(format!("'{start}' appears twice"));
    }
    let body_start = markdown[at..]
        .find('\n')
        .map(|i| at + i + 1)
        .ok_or_else(|| format!("'{start}' is the last line"))?;
    let body_end = markdown[body_start..]
        .find(END_MARKER)
        .map(|i| body_start + i)
        .ok_or_else(|| format!("'{start}' has no '{END_MARKER}' after it"))?;
    Ok(body_start..body_end)
}

/// The committed text between `marker`'s lines.
pub fn committed<'a>(markdown: &'a str, marker: &str) -> Result<&'a str, String> {
    Ok(&markdown[block_range(markdown, marker)?])
}

/// `markdown` with the text between `marker`'s lines replaced by `text`.
pub fn splice(markdown: &str, marker: &str, text: &str) -> Result<String, String> {
    let range = block_range(markdown, marker)?;
    Ok(format!(
        "{}{text}{}",
        &markdown[..range.start],
        &markdown[range.end..]
    ))
}

/// The names of every generated block a markdown file declares.
pub fn markers_in(markdown: &str) -> Vec<String> {
    markdown
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("<!-- generated:")?;
            Some(rest.strip_suffix("-->")?.trim().to_string())
        })
        .collect()
}
