//! The guide's tables: counts from the zoo's graphs, measurements from BENCHMARKS.md.

use std::fmt::Write;

use convgrad::autograd::Pool2dOptions;
use convgrad::graph::GraphBuilder;
use convgrad::models::{self, ModelConfig, ModelInfo, MODELS};
use convgrad::nn::{Conv2d, SeparableConv2d};
use convgrad_kernels::{Conv2dGeometry, ConvKind};

use super::measured::{KernelCase, Training};
use super::Table;
use convgrad::graph::thousands;

/// A model of a chapter's table, and whether to build its auxiliary heads.
type Variant = (&'static str, bool);

/// Each chapter's table: file, marker, and the models.
const CHAPTERS: &[(&str, &str, &[Variant])] = &[
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

fn err(e: convgrad::Error) -> String {
    e.to_string()
}

/// Every generated table of the guide and the README.
pub fn all(trainings: &[Training], kernels: &[KernelCase]) -> Result<Vec<Table>, String> {
    let mut out = Vec::new();
    for &(file, marker, variants) in CHAPTERS {
        out.push(Table {
            file,
            marker,
            text: family_table(variants, trainings)?,
        });
    }
    out.push(Table {
        file: "README.md",
        marker: "zoo-table",
        text: zoo_table("docs/guide/", trainings)?,
    });
    out.push(Table {
        file: "README.md",
        marker: "lenet-summary",
        text: lenet_summary()?,
    });
    out.push(Table {
        file: "README.md",
        marker: "benchmark-summary",
        text: benchmark_summary(trainings, kernels),
    });
    out.push(Table {
        file: "docs/guide/README.md",
        marker: "zoo-table",
        text: zoo_table("", trainings)?,
    });
    out.push(Table {
        file: "docs/guide/03-vgg.md",
        marker: "vgg-stacks",
        text: vgg_stacks()?,
    });
    out.push(Table {
        file: "docs/guide/05-inception-v3.md",
        marker: "factorised",
        text: factorised()?,
    });
    out.push(Table {
        file: "docs/guide/04-googlenet.md",
        marker: "inception-reductions",
        text: inception_reductions()?,
    });
    out.push(Table {
        file: "docs/guide/09-mobilenet.md",
        marker: "separable-cost",
        text: separable_cost()?,
    });
    out.push(Table {
        file: "docs/guide/kernels.md",
        marker: "kernel-intensity",
        text: kernel_intensity(kernels),
    });
    out.push(Table {
        file: "docs/guide/kernels.md",
        marker: "separable-pair",
        text: separable_pair(kernels)?,
    });
    Ok(out)
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

fn seconds(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.1} s")
    } else {
        format!("{s:.0} s")
    }
}

/// Standard-input counts and the Fashion-MNIST adaptation with its measured accuracy.
fn family_table(variants: &[(&str, bool)], trainings: &[Training]) -> Result<String, String> {
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
fn zoo_table(link_prefix: &str, trainings: &[Training]) -> Result<String, String> {
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

/// Stacks of small or thin convolutions against one large filter with the same receptive
/// field, counted on graphs the library builds: `channels` to `channels` at `size x size`.
fn stack_table(
    channels: usize,
    size: usize,
    stacks: &[(&str, &[(usize, usize)])],
) -> Result<String, String> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| layers ({channels} to {channels} channels, {size}x{size}, no bias) | receptive field \
         | weights | multiply-adds | ReLUs |"
    );
    out.push_str("|---|---:|---:|---:|---:|\n");
    for &(label, kernels) in stacks {
        let (mut b, mut x) = GraphBuilder::new(label, &[channels, size, size]);
        for (i, &(kh, kw)) in kernels.iter().enumerate() {
            let conv = Conv2d::new(0, channels, kh)
                .kernel((kh, kw))
                .padding2((kh / 2, kw / 2))
                .bias(false);
            x = b.conv(format!("conv{i}"), x, conv).map_err(err)?;
            x = b.relu(format!("relu{i}"), x).map_err(err)?;
        }
        let graph = b.build(x).map_err(err)?;
        let field_h = 1 + kernels.iter().map(|k| k.0 - 1).sum::<usize>();
        let field_w = 1 + kernels.iter().map(|k| k.1 - 1).sum::<usize>();
        let _ = writeln!(
            out,
            "| {label} | {field_h}x{field_w} | {} | {} | {} |",
            thousands(graph.parameter_count() as u64),
            thousands(graph.multiply_adds()),
            kernels.len()
        );
    }
    Ok(out)
}

/// VGG's argument: a stack of 3x3 convolutions sees as far as one large filter, for fewer
/// weights and more non-linearities; at VGG's stage-3 shape.
fn vgg_stacks() -> Result<String, String> {
    stack_table(
        256,
        56,
        &[
            ("one 5x5", &[(5, 5)]),
            ("two 3x3", &[(3, 3), (3, 3)]),
            ("one 7x7", &[(7, 7)]),
            ("three 3x3", &[(3, 3), (3, 3), (3, 3)]),
        ],
    )
}

/// Inception-v3's factorisations: 5x5 into two 3x3, 7x7 into 1x7 then 7x1; at the shape of
/// Mixed_6b's 7x7 branch (128 channels on the 17x17 grid).
fn factorised() -> Result<String, String> {
    stack_table(
        128,
        17,
        &[
            ("one 5x5", &[(5, 5)]),
            ("two 3x3", &[(3, 3), (3, 3)]),
            ("one 3x3", &[(3, 3)]),
            ("1x3 then 3x1", &[(1, 3), (3, 1)]),
            ("one 7x7", &[(7, 7)]),
            ("1x7 then 7x1", &[(1, 7), (7, 1)]),
        ],
    )
}

/// GoogLeNet's inception3a (192 channels in, 28x28) with and without its 1x1 reductions, as
/// the paper draws it (a real 5x5 branch, no batch norm), next to the zoo's module.
fn inception_reductions() -> Result<String, String> {
    let input = [192, 28, 28];
    let module = |reduce: bool| -> Result<convgrad::graph::Graph, String> {
        let (mut b, x) = GraphBuilder::new("inception3a", &input);
        let conv = |out, k: usize| Conv2d::new(0, out, k).padding(k / 2);
        let mut branches = vec![b.conv("1x1", x, conv(64, 1)).map_err(err)?];
        for (name, reduce_to, out, k) in [("3x3", 96, 128, 3), ("5x5", 16, 32, 5)] {
            let from = if reduce {
                b.conv(format!("{name} reduce"), x, conv(reduce_to, 1))
                    .map_err(err)?
            } else {
                x
            };
            branches.push(b.conv(name, from, conv(out, k)).map_err(err)?);
        }
        let pool = Pool2dOptions::new(3).stride(1).padding(1);
        let mut pooled = b.max_pool("pool", x, pool).map_err(err)?;
        if reduce {
            pooled = b.conv("pool proj", pooled, conv(32, 1)).map_err(err)?;
        }
        branches.push(pooled);
        let y = b.concat("concat", &branches).map_err(err)?;
        b.build(y).map_err(err)
    };
    let googlenet = models::build("googlenet", 1000).map_err(err)?;
    let zoo_nodes: Vec<_> = googlenet
        .nodes()
        .iter()
        .filter(|n| n.name.starts_with("inception3a."))
        .collect();
    let zoo_params: usize = zoo_nodes
        .iter()
        .map(|n| googlenet.node_parameter_count(n))
        .sum();
    let zoo_macs: u64 = zoo_nodes
        .iter()
        .map(|n| googlenet.node_multiply_adds(n))
        .sum();
    let zoo_out = googlenet
        .node("inception3a.concat")
        .ok_or("googlenet has no inception3a.concat")?
        .shape[0];

    let mut out = String::new();
    out.push_str("| inception3a on 192x28x28 | output channels | parameters | multiply-adds |\n");
    out.push_str("|---|---:|---:|---:|\n");
    for (label, reduce) in [
        ("naive: 1x1, 3x3, 5x5 and pool side by side", false),
        ("with 1x1 reductions (the paper's module)", true),
    ] {
        let g = module(reduce)?;
        let _ = writeln!(
            out,
            "| {label} | {} | {} | {} |",
            g.output_shape()[0],
            thousands(g.parameter_count() as u64),
            thousands(g.multiply_adds())
        );
    }
    let _ = writeln!(
        out,
        "| the zoo's `inception3a` (torchvision: 3x3 in the \"5x5\" branch, batch norm) | {zoo_out} | {} | {} |",
        thousands(zoo_params as u64),
        thousands(zoo_macs)
    );
    Ok(out)
}

/// MobileNet v1's thirteen depthwise-separable layers against standard 3x3 convolutions of the
/// same shapes, with the paper's ratio `1/N + 1/K^2`.
fn separable_cost() -> Result<String, String> {
    let graph = models::build("mobilenet_v1", 1000).map_err(err)?;
    let mut out = String::new();
    out.push_str(
        "| block | input | output | standard 3x3: weights | multiply-adds | separable: weights \
         | multiply-adds | separable / standard | 1/N + 1/9 |\n",
    );
    out.push_str("|---|---|---|---:|---:|---:|---:|---:|---:|\n");
    let (mut total_standard, mut total_separable) = (0u64, 0u64);
    for node in graph.nodes() {
        let Some(block) = node.name.strip_suffix(".conv_dw") else {
            continue;
        };
        let input = &graph.nodes()[node.inputs[0].index()].shape;
        let pointwise = graph
            .node(&format!("{block}.conv_pw"))
            .ok_or_else(|| format!("mobilenet_v1: {block} has no conv_pw"))?;
        let output = &pointwise.shape;
        let stride = input[1] / node.shape[1];

        // The same layer twice, built by the library: one standard conv, one separable conv.
        let (mut b, x) = GraphBuilder::new("standard", input);
        let standard = Conv2d::new(0, output[0], 3)
            .stride(stride)
            .padding(1)
            .bias(false);
        let y = b.conv("conv", x, standard).map_err(err)?;
        let standard = b.build(y).map_err(err)?;
        let (mut b, x) = GraphBuilder::new("separable", input);
        let separable = SeparableConv2d::new(0, output[0], 3)
            .stride(stride)
            .padding(1);
        let y = b.separable_conv("conv", x, separable).map_err(err)?;
        let separable = b.build(y).map_err(err)?;
        if separable.output_shape() != output.as_slice() {
            return Err(format!(
                "{block}: the separable conv does not give {output:?}"
            ));
        }
        // The zoo's block must cost what the separable layer costs.
        let zoo_macs = graph.node_multiply_adds(node) + graph.node_multiply_adds(pointwise);
        if zoo_macs != separable.multiply_adds() {
            return Err(format!(
                "{block}: zoo {zoo_macs} against {}",
                separable.multiply_adds()
            ));
        }
        total_standard += standard.multiply_adds();
        total_separable += separable.multiply_adds();
        let ratio = separable.multiply_adds() as f64 / standard.multiply_adds() as f64;
        let formula = 1.0 / output[0] as f64 + 1.0 / 9.0;
        let shape = |s: &[usize]| format!("{}x{}x{}", s[0], s[1], s[2]);
        let _ = writeln!(
            out,
            "| `{block}` | {} | {} | {} | {} | {} | {} | {ratio:.4} | {formula:.4} |",
            shape(input),
            shape(output),
            thousands(standard.parameter_count() as u64),
            thousands(standard.multiply_adds()),
            thousands(separable.parameter_count() as u64),
            thousands(separable.multiply_adds()),
        );
    }
    let _ = writeln!(
        out,
        "| all 13 | | | | {} | | {} | {:.4} | |",
        thousands(total_standard),
        thousands(total_separable),
        total_separable as f64 / total_standard as f64
    );
    Ok(out)
}

/// Arithmetic intensity of every benchmarked kernel case, next to what it reached.
fn kernel_intensity(kernels: &[KernelCase]) -> String {
    let mut out = String::new();
    out.push_str(
        "| case | shape | multiply-adds | MB moved (at least) | FLOP per byte | convgrad fwd ms \
         | PyTorch fwd ms | convgrad fwd+bwd ms | PyTorch fwd+bwd ms | convgrad fwd GFLOP/s |\n",
    );
    out.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for k in kernels {
        let g = geometry(k);
        let macs = g.multiply_adds();
        // Each operand read or written once, in f32: what no kernel can do with less traffic.
        let bytes = 4 * (g.input_len() + g.weight_len() + g.output_len()) as u64;
        let intensity = 2.0 * macs as f64 / bytes as f64;
        let shape: Vec<String> = k.shape.iter().map(|d| d.to_string()).collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} | {intensity:.1} | {} | {} | {} | {} | {:.0} |",
            k.case,
            shape.join(", "),
            thousands(macs),
            bytes as f64 / 1e6,
            k.convgrad_forward_ms,
            k.pytorch_forward_ms,
            k.convgrad_forward_backward_ms,
            k.pytorch_forward_backward_ms,
            k.gflops,
        );
    }
    out
}

/// The benchmarked standard-vs-separable pair (`sep_*` cases): multiply-adds against time.
fn separable_pair(kernels: &[KernelCase]) -> Result<String, String> {
    let case = |name: &str| {
        kernels
            .iter()
            .find(|k| k.case == name)
            .ok_or_else(|| format!("BENCHMARKS.md has no '{name}' case"))
    };
    let (standard, depthwise, pointwise) = (
        case("sep_std_3x3")?,
        case("sep_dw_3x3")?,
        case("sep_pw_1x1")?,
    );
    let macs = |k: &KernelCase| geometry(k).multiply_adds();
    let separable_macs = macs(depthwise) + macs(pointwise);
    let separable_fwd = depthwise.convgrad_forward_ms + pointwise.convgrad_forward_ms;
    let separable_both =
        depthwise.convgrad_forward_backward_ms + pointwise.convgrad_forward_backward_ms;
    let [n, c_in, c_out, size, ..] = standard.shape;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| {n} x {c_in} -> {c_out} channels, {size}x{size} | multiply-adds | convgrad fwd ms \
         | convgrad fwd+bwd ms |"
    );
    out.push_str("|---|---:|---:|---:|\n");
    for (label, k) in [
        ("standard 3x3", standard),
        ("depthwise 3x3", depthwise),
        ("pointwise 1x1", pointwise),
    ] {
        let _ = writeln!(
            out,
            "| {label} | {} | {} | {} |",
            thousands(macs(k)),
            k.convgrad_forward_ms,
            k.convgrad_forward_backward_ms
        );
    }
    let _ = writeln!(
        out,
        "| separable (depthwise + pointwise) | {} | {separable_fwd:.3} | {separable_both:.3} |",
        thousands(separable_macs)
    );
    let _ = writeln!(
        out,
        "| standard / separable | {:.1}x | {:.1}x | {:.1}x |",
        macs(standard) as f64 / separable_macs as f64,
        standard.convgrad_forward_ms / separable_fwd,
        standard.convgrad_forward_backward_ms / separable_both
    );
    Ok(out)
}

fn geometry(k: &KernelCase) -> Conv2dGeometry {
    let [n, c_in, c_out, size, kernel, stride, groups] = k.shape;
    Conv2dGeometry::new(n, c_in, c_out, (size, size), (kernel, kernel))
        .with_stride((stride, stride))
        .with_padding((kernel / 2, kernel / 2))
        .with_groups(groups)
}

/// `lo` to `hi` of some values, formatted with `digits` decimals.
fn range(values: impl Iterator<Item = f64>, digits: usize, unit: &str) -> String {
    let values: Vec<f64> = values.collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{lo:.digits$}{unit} to {hi:.digits$}{unit}")
}

/// The README's summary of BENCHMARKS.md: each kernel family against PyTorch, and the
/// recorded trainings.
fn benchmark_summary(trainings: &[Training], kernels: &[KernelCase]) -> String {
    let mut out = String::new();
    out.push_str(
        "| kernel family | cases | convgrad forward GFLOP/s | forward vs PyTorch \
         | forward + backward vs PyTorch |\n",
    );
    out.push_str("|---|---:|---|---|---|\n");
    for (label, kind) in [
        ("direct (3x3, 5x5, 7x7)", ConvKind::Direct),
        ("depthwise 3x3", ConvKind::Depthwise),
        ("pointwise 1x1", ConvKind::Pointwise),
    ] {
        let cases: Vec<&KernelCase> = kernels
            .iter()
            .filter(|k| geometry(k).kind() == kind)
            .collect();
        if cases.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "| {label} | {} | {} | {} | {} |",
            cases.len(),
            range(cases.iter().map(|k| k.gflops), 0, ""),
            range(
                cases
                    .iter()
                    .map(|k| k.pytorch_forward_ms / k.convgrad_forward_ms),
                2,
                "x"
            ),
            range(
                cases
                    .iter()
                    .map(|k| k.pytorch_forward_backward_ms / k.convgrad_forward_backward_ms),
                2,
                "x"
            ),
        );
    }
    out.push_str(
        "\n| `convgrad train` on Fashion-MNIST | epochs | test accuracy | time per epoch |\n",
    );
    out.push_str("|---|---:|---:|---:|\n");
    for t in trainings {
        let _ = writeln!(
            out,
            "| `{}` | {} | {}% | {} ({} img/s) |",
            if t.flags.is_empty() {
                t.model.clone()
            } else {
                format!("{} {}", t.model, t.flags)
            },
            t.epochs,
            t.final_test_accuracy,
            seconds(t.median_epoch_seconds),
            thousands(t.median_images_per_second.round() as u64)
        );
    }
    out
}

/// What `convgrad summary lenet5 --classes 10` prints (the CLI prints `Graph::summary`).
fn lenet_summary() -> Result<String, String> {
    let graph = models::build("lenet5", 10).map_err(err)?;
    Ok(format!(
        "```text\n$ convgrad summary lenet5 --classes 10\n{}```\n",
        graph.summary()
    ))
}
