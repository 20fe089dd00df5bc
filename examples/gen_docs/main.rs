//! Regenerates the guide's tables and figure sources from the code.
//!
//! ```sh
//! cargo run --release --example gen_docs          # rewrite the tables and the .dot files
//! cargo run --release --example gen_docs -- --check   # only report what is out of date
//! scripts/gen_docs.sh                              # both, then render the .dot files to SVG
//! ```
//!
//! Tables are rewritten between their `<!-- generated:NAME -->` and `<!-- end -->` lines in
//! the guide's chapters and the README; everything outside the markers is left as it is.
//! `tests/docs.rs` runs the same code and fails when a committed table or figure is stale.

mod guide;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::ExitCode;

fn run(root: &Path, check_only: bool) -> Result<Vec<String>, String> {
    let mut stale = Vec::new();

    // Group the tables by file, so each file is read and written once.
    let mut by_file: BTreeMap<&str, Vec<guide::Table>> = BTreeMap::new();
    for table in guide::all_tables(root)? {
        by_file.entry(table.file).or_default().push(table);
    }
    for (file, tables) in by_file {
        let path = root.join(file);
        let original = fs::read_to_string(&path).map_err(|e| format!("{file}: {e}"))?;
        // A marker the generator does not know would never be refreshed: refuse it.
        if let Some(unknown) = guide::markers_in(&original)
            .into_iter()
            .find(|m| !tables.iter().any(|t| t.marker == m))
        {
            return Err(format!("{file}: no generator for the block '{unknown}'"));
        }
        let mut text = original.clone();
        for table in &tables {
            let committed =
                guide::committed(&text, table.marker).map_err(|e| format!("{file}: {e}"))?;
            if committed != table.text {
                stale.push(format!("{file} ({})", table.marker));
            }
            text = guide::splice(&text, table.marker, &table.text)
                .map_err(|e| format!("{file}: {e}"))?;
        }
        if text != original && !check_only {
            fs::write(&path, text).map_err(|e| format!("{file}: {e}"))?;
        }
    }

    let figures_dir = root.join(guide::FIGURES_DIR);
    fs::create_dir_all(&figures_dir).map_err(|e| format!("{}: {e}", guide::FIGURES_DIR))?;
    for figure in guide::all_figures()? {
        let file = format!("{}/{}.dot", guide::FIGURES_DIR, figure.name);
        let path = root.join(&file);
        if fs::read_to_string(&path).ok().as_deref() != Some(figure.dot.as_str()) {
            stale.push(file.clone());
            if !check_only {
                fs::write(&path, &figure.dot).map_err(|e| format!("{file}: {e}"))?;
            }
        }
    }
    Ok(stale)
}

fn main() -> ExitCode {
    let check_only = std::env::args().any(|a| a == "--check");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    match run(root, check_only) {
        Ok(stale) if stale.is_empty() => {
            println!("the guide's tables and figure sources are up to date");
            ExitCode::SUCCESS
        }
        Ok(stale) => {
            let verb = if check_only {
                "out of date"
            } else {
                "rewritten"
            };
            for file in &stale {
                println!("{verb}: {file}");
            }
            if check_only {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
