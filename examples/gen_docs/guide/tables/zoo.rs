//! The chapters' family tables and the zoo table: parameter and multiply-add counts from the
//! graphs, and the best recorded Fashion-MNIST run of each model.

use std::fmt::Write;

use convgrad::graph::thousands;
use convgrad::models::{self, ModelConfig, ModelInfo, MODELS};

use super::super::measured::Training;
use super::{err, seconds};

/// A model of a chapter's table, and whether to build its auxiliary heads.
type Variant = (&'static str, bool);

/// Each chapter's table: file, marker, and the models.
pub(super) const CHAPTERS: &[(&str, &str, &[Variant])] = &[
    (
        "docs/guide/01-lenet5.md",
        "lenet-table",
        &[("lenet5", false)],
    ),
    (
        "docs/guide/02-alexnet.md",
        "alexnet-table",
        &[("alexnet", false)],
    ),
    (
        "docs/guide/03-vgg.md",
        "vgg-table",
        &[
            ("vgg11", false),
            ("vgg13", false),
            ("vgg16", false),
            ("vgg19", false),
            ("vgg11_bn", false),
            ("vgg13_bn", false),
            ("vgg16_bn", false),
            ("vgg19_bn", false),
        ],
    ),
    (
        "docs/guide/04-googlenet.md",
        "googlenet-table",
        &[("googlenet", false), ("googlenet", true)],
    ),
    (
        "docs/guide/05-inception-v3.md",
        "inception-v3-table",
        &[("inception_v3", false), ("inception_v3", true)],
    ),
    (
        "docs/guide/06-resnet.md",
        "resnet-table",
        &[
            ("resnet18", false),
            ("resnet34", false),
            ("resnet50", false),
            ("resnet101", false),
            ("resnet152", false),
        ],
    ),
    (
        "docs/guide/07-xception.md",
        "xception-table",
        &[("xception", false)],
    ),
    (
        "docs/guide/08-densenet.md",
        "densenet-table",
        &[
            ("densenet121", false),
            ("densenet161", false),
            ("densenet169", false),
            ("densenet201", false),
        ],
    ),
    (
        "docs/guide/09-mobilenet.md",
        "mobilenet-table",
        &[("mobilenet_v1", false), ("mobilenet_v2", false)],
    ),
];

/// Fashion-MNIST's images, and its classes.
const FMNIST_INPUT: [usize; 3] = [1, 28, 28];
const FMNIST_CLASSES: usize = 10;

/// The class count a model is usually counted at: 1000 (ImageNet), 10 for LeNet-5 (digits).
fn standard_classes(info: &ModelInfo) -> usize {
    if info.name == "lenet5" {
        10
    } else {
        1000
    }
}

/// The recorded run of `model` with the best final test accuracy (the first of equals).
fn measured<'a>(trainings: &'a [Training], model: &str) -> Option<&'a Training> {
    let accuracy = |t: &Training| t.final_test_accuracy.parse::<f64>().unwrap_or(0.0);
    trainings
        .iter()
        .filter(|t| t.model == model)
        .reduce(|best, t| {
            if accuracy(t) > accuracy(best) {
                t
            } else {
                best
            }
        })
}

/// The image size a run resized Fashion-MNIST to (`--resize N`), if it did.
fn resized(t: &Training) -> Option<usize> {
    let mut words = t.flags.split_whitespace();
    words.find(|&w| w == "--resize")?;
    words.next()?.parse().ok()
}

fn accuracy_cell(info: &ModelInfo, trainings: &[Training]) -> String {
    match measured(trainings, info.name) {
        Some(t) => {
            let epochs = if t.epochs == 1 { "epoch" } else { "epochs" };
            match resized(t) {
                Some(n) => format!(
                    "{}% ({} {epochs}, resized to {n}x{n})",
                    t.final_test_accuracy, t.epochs
                ),
                None => format!("{}% ({} {epochs})", t.final_test_accuracy, t.epochs),
            }
        }
        None if info.min_size > FMNIST_INPUT[1] => {
            format!("not measured (needs `--resize {0}`)", info.min_size)
        }
        None => "not measured yet".to_string(),
    }
}

/// Standard-input counts and the Fashion-MNIST adaptation with its measured accuracy.
pub(super) fn family_table(
    variants: &[(&str, bool)],
    trainings: &[Training],
) -> Result<String, String> {
    let mut out = String::new();
    out.push_str(
        "| model | input | parameters | multiply-adds | at 1x28x28, 10 classes: parameters \
         | multiply-adds | Fashion-MNIST test accuracy | time per epoch |\n",
    );
    out.push_str("|---|---|---:|---:|---:|---:|---|---|\n");
    for &(name, aux) in variants {
        let info = models::info(name).map_err(err)?;
        let config = ModelConfig::new(standard_classes(info)).aux_logits(aux);
        let graph = info.build(&config).map_err(err)?;
        let [c, h, w] = info.standard_input;
        let label = if aux {
            format!("`{name}` with aux heads")
        } else {
            format!("`{name}`")
        };
        // The Fashion-MNIST input this model was (or would be) trained at.
        let run = measured(trainings, name);
        let input = match run.and_then(resized) {
            Some(n) => [1, n, n],
            None => FMNIST_INPUT,
        };
        let (small_params, small_macs, accuracy, time) = if aux {
            let dash = "-".to_string();
            (dash.clone(), dash.clone(), dash.clone(), dash)
        } else if info.min_size > input[1] {
            let dash = "-".to_string();
            (
                dash.clone(),
                dash.clone(),
                accuracy_cell(info, trainings),
                dash,
            )
        } else {
            let config = ModelConfig::new(FMNIST_CLASSES).input(input);
            let small = info.build(&config).map_err(err)?;
            let at = if input == FMNIST_INPUT {
                String::new()
            } else {
                format!(" (at 1x{}x{})", input[1], input[2])
            };
            let time = match run {
                Some(t) => format!(
                    "{} ({} img/s)",
                    seconds(t.median_epoch_seconds),
                    thousands(t.median_images_per_second.round() as u64)
                ),
                None => "not measured yet".to_string(),
            };
            (
                format!("{}{at}", thousands(small.parameter_count() as u64)),
                format!("{}{at}", thousands(small.multiply_adds())),
                accuracy_cell(info, trainings),
                time,
            )
        };
        let _ = writeln!(
            out,
            "| {label} | {c}x{h}x{w} | {} | {} | {small_params} | {small_macs} | {accuracy} | {time} |",
            thousands(graph.parameter_count() as u64),
            thousands(graph.multiply_adds()),
        );
    }
    Ok(out)
}

/// The chapter that tells a model's story.
fn chapter_of(name: &str) -> Option<&'static str> {
    CHAPTERS
        .iter()
        .find(|(_, _, variants)| variants.iter().any(|&(n, _)| n == name))
        .map(|&(file, _, _)| file.trim_start_matches("docs/guide/"))
}

/// One row per model of the zoo: year, counts at the standard input, measured accuracy.
/// `link_prefix` is where the chapters are from the file the table sits in.
pub(super) fn zoo_table(link_prefix: &str, trainings: &[Training]) -> Result<String, String> {
    let mut out = String::new();
    out.push_str(
        "| model | year | parameters | multiply-adds | input | smallest input \
         | Fashion-MNIST test accuracy |\n",
    );
    out.push_str("|---|---:|---:|---:|---|---:|---|\n");
    for info in MODELS {
        let graph = info
            .build(&ModelConfig::new(standard_classes(info)))
            .map_err(err)?;
        let [c, h, w] = info.standard_input;
        let name = match chapter_of(info.name) {
            Some(chapter) => format!("[`{}`]({link_prefix}{chapter})", info.name),
            None => format!("`{}`", info.name),
        };
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {c}x{h}x{w} | {} | {} |",
            info.year,
            thousands(graph.parameter_count() as u64),
            thousands(graph.multiply_adds()),
            info.min_size,
            accuracy_cell(info, trainings),
        );
    }
    Ok(out)
}

/// What `convgrad summary lenet5 --classes 10` prints (the CLI prints `Graph::summary`).
pub(super) fn lenet_summary() -> Result<String, String> {
    let graph = models::build("lenet5", 10).map_err(err)?;
    Ok(format!(
        "```text\n$ convgrad summary lenet5 --classes 10\n{}```\n",
        graph.summary()
    ))
}
