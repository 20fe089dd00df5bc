//! The guide's generated parts match the code: every table between `<!-- generated:NAME -->`
//! markers, and every figure's DOT source, is what `examples/gen_docs` computes now. When the
//! zoo, the counts or BENCHMARKS.md change, this fails until `scripts/gen_docs.sh` is run.

#[allow(dead_code)] // the generator's code, shared; this test uses only part of it
#[path = "../examples/gen_docs/guide/mod.rs"]
mod guide;

use std::fs;
use std::path::{Path, PathBuf};

const REGENERATE: &str = "run scripts/gen_docs.sh (or cargo run --release --example gen_docs) \
                          and commit the result";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    fs::read_to_string(root().join(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// The markdown files that may hold generated blocks: the README and the guide.
fn markdown_files() -> Vec<String> {
    let mut files = vec!["README.md".to_string()];
    let guide = root().join("docs/guide");
    let mut chapters: Vec<PathBuf> = fs::read_dir(&guide)
        .expect("docs/guide exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    chapters.sort();
    for chapter in chapters {
        let name = chapter.file_name().unwrap().to_string_lossy().to_string();
        files.push(format!("docs/guide/{name}"));
    }
    files
}

/// The committed table differs from the generated one: a line saying where, and the first
/// differing line of each.
fn difference(file: &str, marker: &str, committed: &str, generated: &str) -> Option<String> {
    if committed == generated {
        return None;
    }
    let mismatch = committed
        .lines()
        .zip(generated.lines())
        .find(|(a, b)| a != b)
        .map(|(a, b)| format!("\n    committed: {a}\n    generated: {b}"))
        .unwrap_or_else(|| {
            format!(
                "\n    committed {} lines, generated {}",
                committed.lines().count(),
                generated.lines().count()
            )
        });
    Some(format!("{file}, block '{marker}':{mismatch}"))
}

#[test]
fn committed_tables_match_the_code() {
    let tables = guide::all_tables(root()).expect("the generator runs");
    let stale: Vec<String> = tables
        .iter()
        .filter_map(|table| {
            let markdown = read(table.file);
            let committed = guide::committed(&markdown, table.marker)
                .unwrap_or_else(|e| panic!("{}: {e}", table.file));
            difference(table.file, table.marker, committed, &table.text)
        })
        .collect();
    assert!(
        stale.is_empty(),
        "{} generated table(s) no longer match the code; {REGENERATE}:\n{}",
        stale.len(),
        stale.join("\n")
    );
}

#[test]
fn every_generated_block_has_a_generator() {
    let tables = guide::all_tables(root()).expect("the generator runs");
    for file in markdown_files() {
        for marker in guide::markers_in(&read(&file)) {
            assert!(
                tables.iter().any(|t| t.file == file && t.marker == marker),
                "{file} declares the generated block '{marker}', which nothing generates"
            );
        }
    }
}

#[test]
fn committed_figure_sources_match_the_code_and_are_rendered() {
    let figures = guide::all_figures().expect("the figures build");
    let mut stale = Vec::new();
    for figure in &figures {
        let source = format!("{}/{}.dot", guide::FIGURES_DIR, figure.name);
        match fs::read_to_string(root().join(&source)) {
            Ok(committed) if committed == figure.dot => {}
            Ok(_) => stale.push(format!("{source} differs from the graph the code builds")),
            Err(e) => stale.push(format!("{source}: {e}")),
        }
        let svg = format!("{}/{}.svg", guide::FIGURES_DIR, figure.name);
        if !root().join(&svg).is_file() {
            stale.push(format!("{svg} is missing"));
        }
    }
    assert!(stale.is_empty(), "{REGENERATE}:\n{}", stale.join("\n"));
}

#[test]
fn every_figure_the_guide_shows_is_generated() {
    let figures = guide::all_figures().expect("the figures build");
    for file in markdown_files() {
        let markdown = read(&file);
        for (at, _) in markdown.match_indices("figures/") {
            let rest = &markdown[at + "figures/".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name.is_empty() || !rest[name.len()..].starts_with(".svg") {
                continue;
            }
            assert!(
                figures.iter().any(|f| f.name == name.as_str()),
                "{file} shows figures/{name}.svg, which no generator draws"
            );
        }
    }
}

/// The check is not vacuous: a table edited by hand (one digit changed) is caught, and the
/// splice that regenerates it touches nothing outside its markers.
#[test]
fn a_hand_edited_table_is_caught_and_splicing_repairs_only_the_block() {
    let tables = guide::all_tables(root()).expect("the generator runs");
    let table = tables
        .iter()
        .find(|t| t.marker == "resnet-table")
        .expect("the ResNet chapter has a table");
    let markdown = read(table.file);
    let edited = markdown.replacen("11,689,512", "11,689,513", 1);
    assert_ne!(edited, markdown, "the ResNet-18 count is in the chapter");
    let committed = guide::committed(&edited, table.marker).unwrap();
    assert!(difference(table.file, table.marker, committed, &table.text).is_some());

    let repaired = guide::splice(&edited, table.marker, &table.text).unwrap();
    let outside = |text: &str| {
        let block = guide::committed(text, table.marker).unwrap();
        text.replacen(block, "", 1)
    };
    assert_eq!(outside(&repaired), outside(&edited));
    assert_eq!(
        guide::committed(&repaired, table.marker).unwrap(),
        table.text
    );
}

#[test]
fn markers_are_found_strictly() {
    let text = "a\n<!-- generated:t -->\nold\n<!-- end -->\nb\n";
    assert_eq!(guide::committed(text, "t").unwrap(), "old\n");
    assert_eq!(
        guide::splice(text, "t", "new\n").unwrap(),
        "a\n<!-- generated:t -->\nnew\n<!-- end -->\nb\n"
    );
    assert_eq!(guide::markers_in(text), vec!["t".to_string()]);
    assert!(guide::committed(text, "other").is_err());
    assert!(guide::committed("<!-- generated:t -->\nno end\n", "t").is_err());
    let twice = format!("{text}{text}");
    assert!(guide::committed(&twice, "t").is_err());
}

/// `base/../x` as a path relative to the repository root, or `None` if it climbs out of it.
fn normalise(base: &Path, target: &str) -> Option<String> {
    let mut parts: Vec<String> = base
        .iter()
        .map(|p| p.to_string_lossy().to_string())
        .collect();
    for piece in target.split('/') {
        match piece {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other.to_string()),
        }
    }
    Some(parts.join("/"))
}

#[test]
fn every_relative_link_of_the_guide_and_the_readme_resolves() {
    let mut broken = Vec::new();
    for file in markdown_files() {
        let markdown = read(&file);
        let base = Path::new(&file).parent().unwrap_or(Path::new(""));
        for (at, _) in markdown.match_indices("](") {
            let rest = &markdown[at + 2..];
            let Some(end) = rest.find(')') else { continue };
            let target = rest[..end].split('#').next().unwrap_or("");
            if target.is_empty() || target.contains("://") || target.contains(' ') {
                continue;
            }
            let Some(path) = normalise(base, target) else {
                broken.push(format!("{file}: {target} leaves the repository"));
                continue;
            };
            let path = path.trim_end_matches('/').to_string();
            if !root().join(&path).exists() {
                broken.push(format!("{file}: {target}"));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn measurements_are_read_back_from_benchmarks_md_strictly() {
    let text = "# Benchmarks\n\n## Training LeNet-5 on Fashion-MNIST\n\n```sh\n\
                cargo run --release -- train lenet5 --epochs 3\n```\n\n\
                | epoch | train loss | train acc | test loss | test acc | seconds | img/s |\n\
                |---:|---:|---:|---:|---:|---:|---:|\n\
                | 1 | 0.5 | 81% | 0.4 | 86.58% | 4.5 | 13,977 |\n\
                | 2 | 0.3 | 88% | 0.3 | 87.78% | 9.0 | 14,285 |\n\
                | 3 | 0.2 | 90% | 0.2 | **89.62%** | 4.3 | 14,359 |\n\n\
                ## Training a HOG baseline on Fashion-MNIST\n\nno convgrad train command here\n";
    let runs = guide::measured::trainings(text).unwrap();
    assert_eq!(
        runs.len(),
        1,
        "the section without `-- train` is not a model's run"
    );
    assert_eq!(runs[0].model, "lenet5");
    assert_eq!(runs[0].epochs, 3);
    assert_eq!(runs[0].final_test_accuracy, "89.62");
    assert_eq!(runs[0].median_epoch_seconds, 4.5);
    assert_eq!(runs[0].median_images_per_second, 14_285.0);

    let garbled = text.replace("| 4.3 |", "| fast |");
    let err = guide::measured::trainings(&garbled).unwrap_err();
    assert!(err.contains("seconds 'fast' is not a number"), "{err}");
    let no_table = text.replace("| epoch |", "| round |");
    assert!(guide::measured::trainings(&no_table).is_err());
}
