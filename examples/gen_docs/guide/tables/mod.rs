//! The guide's tables: counts from the zoo's graphs, measurements from BENCHMARKS.md.
//!
//! - [`zoo`]: each chapter's family table, the zoo table and LeNet-5's summary;
//! - [`shapes`]: layer shapes compared on graphs the library builds (VGG's stacks, Inception's
//!   factorised and reduction blocks, the separable convolution's cost);
//! - [`benchmarks`]: the kernel measurements and the README's summary of BENCHMARKS.md.

mod benchmarks;
mod shapes;
mod zoo;

use super::measured::{KernelCase, Training};
use super::Table;

fn err(e: convgrad::Error) -> String {
    e.to_string()
}

/// Every generated table of the guide and the README.
pub fn all(trainings: &[Training], kernels: &[KernelCase]) -> Result<Vec<Table>, String> {
    let mut out = Vec::new();
    for &(file, marker, variants) in zoo::CHAPTERS {
        out.push(Table {
            file,
            marker,
            text: zoo::family_table(variants, trainings)?,
        });
    }
    out.push(Table {
        file: "README.md",
        marker: "zoo-table",
        text: zoo::zoo_table("docs/guide/", trainings)?,
    });
    out.push(Table {
        file: "README.md",
        marker: "lenet-summary",
        text: zoo::lenet_summary()?,
    });
    out.push(Table {
        file: "README.md",
        marker: "benchmark-summary",
        text: benchmarks::benchmark_summary(trainings, kernels),
    });
    out.push(Table {
        file: "docs/guide/README.md",
        marker: "zoo-table",
        text: zoo::zoo_table("", trainings)?,
    });
    out.push(Table {
        file: "docs/guide/03-vgg.md",
        marker: "vgg-stacks",
        text: shapes::vgg_stacks()?,
    });
    out.push(Table {
        file: "docs/guide/05-inception-v3.md",
        marker: "factorised",
        text: shapes::factorised()?,
    });
    out.push(Table {
        file: "docs/guide/04-googlenet.md",
        marker: "inception-reductions",
        text: shapes::inception_reductions()?,
    });
    out.push(Table {
        file: "docs/guide/09-mobilenet.md",
        marker: "separable-cost",
        text: shapes::separable_cost()?,
    });
    out.push(Table {
        file: "docs/guide/kernels.md",
        marker: "kernel-intensity",
        text: benchmarks::kernel_intensity(kernels),
    });
    out.push(Table {
        file: "docs/guide/kernels.md",
        marker: "separable-pair",
        text: benchmarks::separable_pair(kernels)?,
    });
    Ok(out)
}

/// Seconds, with a decimal below 10.
fn seconds(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.1} s")
    } else {
        format!("{s:.0} s")
    }
}
