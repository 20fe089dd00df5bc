//! convgrad against PyTorch, on fixtures written by `scripts/torch_fixtures.py`: the same
//! weights (torchvision's names, randomised BatchNorm statistics) and the same input must give
//!
//! - logits (evaluation mode, by `Graph::forward` and by the folded `Graph::inference` plan)
//!   within 1e-3 of PyTorch's, relative to the largest |logit|;
//! - the mean cross-entropy of a training-mode forward (batch statistics, no dropout) within
//!   1e-4, relative;
//! - every parameter's gradient within 1e-3 of PyTorch's, relative in norm:
//!   `||g - g_torch|| / ||g_torch||`.
//!
//! "PyTorch's" here is PyTorch in float64 from the same float32 weights and input: the exact
//! answer for those numbers. Random deep networks in training mode can be so badly conditioned
//! (gradients that grow layer by layer, pre-activations a hair from a ReLU kink, BatchNorm over
//! two values on a 1 x 1 map) that PyTorch's own float32 result misses the exact one by more than
//! these tolerances; the fixtures record by how much. PyTorch's float32 result is not even one
//! number: run with one thread, in channels-last format or with its native convolution, it sums
//! in other orders and, on such a network, lands on other sides of ReLU kinks (ResNet-34's
//! gradients: 2.0e-5 from exact by default, 2.5e-2 with the native convolution).
//!
//! A quantity passes when convgrad is within the tolerance, *or* within `TORCH_FACTOR` times
//! PyTorch's default float32 error, *or* within `VARIANT_MARGIN` times the worst of PyTorch's
//! float32 variants (for gradients, the worst over the model: rounding differences, once
//! amplified, spread through every layer below, so which parameter comes out worst is itself
//! chance). The report prints all three, so a model that passes only by the second or third
//! rule is plain to see.
//!
//! The loss has one more allowance. Four variants are four samples of where float32 rounding
//! can fall; `torch_f32_loss_spread` samples it sixteen times, adding each layer's measured
//! float32 error at random to the float64 network (see `scripts/torch_fixtures.py`). On
//! ResNet-152 in training mode its standard deviation is 2.8e-4: the loss is so sensitive to
//! the first layers that a float32 result within 1e-4 is luck (PyTorch's default is lucky, at
//! 1.6e-5; convgrad's per-block activation errors are within 1.1x of PyTorch's, and its loss
//! lands at 3.8e-4). A loss within `SPREAD_SIGMAS` standard deviations passes.
//!
//! The small configurations in `tests/fixtures/torch/` are checked always. Full-size models
//! (batch 2 at 64 x 64, 96 x 96 for Inception-v3, 10 classes) are checked when
//! `CONVGRAD_TORCH_FIXTURES` names a directory of fixtures; they are too large to commit:
//!
//! ```text
//! python scripts/torch_fixtures.py /tmp/torch-fixtures
//! CONVGRAD_TORCH_FIXTURES=/tmp/torch-fixtures cargo test --release --test torch_equality -- --nocapture
//! ```

use std::path::{Path, PathBuf};

use convgrad::graph::{Graph, ParamStore};
use convgrad::io::read_safetensors;
use convgrad::models::weights::Weights;
use convgrad::models::{self, ModelConfig};
use convgrad::nn::{Mode, ParamKind};
use convgrad::{Rng, Tape, Tensor};

const LOGITS_TOLERANCE: f64 = 1e-3;
const LOSS_TOLERANCE: f64 = 1e-4;
const GRADIENT_TOLERANCE: f64 = 1e-3;
/// How much further from exact than PyTorch's own float32 result convgrad's may be.
const TORCH_FACTOR: f64 = 4.0;
/// How much further from exact than the worst of PyTorch's float32 variants (one thread,
/// channels-last, native convolution; see `scripts/torch_fixtures.py`) convgrad's may be: the
/// margin is for rounding on top of a shared ReLU-kink crossing.
const VARIANT_MARGIN: f64 = 1.25;
/// How many standard deviations of float32's loss spread (`torch_f32_loss_spread`) the loss
/// may be from exact.
const SPREAD_SIGMAS: f64 = 3.0;

/// The worst errors found for one model.
#[derive(Debug)]
struct Report {
    name: String,
    logits: f64,
    loss: f64,
    gradient: f64,
    worst_gradient: String,
    /// PyTorch float32's own errors against the float64 reference, for the same quantities
    /// (for gradients, its worst over the model).
    torch_logits: f64,
    torch_loss: f64,
    torch_gradient: f64,
    /// The worst of PyTorch's float32 variants against float64 (0 for fixtures without it).
    variants_logits: f64,
    variants_loss: f64,
    variants_gradient: f64,
    /// The standard deviation of the loss's relative error under float32 rounding (0 for
    /// fixtures without it).
    loss_spread: f64,
    /// The largest error divided by what it is allowed (at most 1 to pass).
    worst_ratio: f64,
    gradients: usize,
    /// Parameters whose PyTorch gradient is zero in exact arithmetic (a convolution's bias
    /// right before a training-mode BatchNorm): compared absolutely, see `gradient_error`.
    null_gradients: usize,
}

impl Report {
    fn passes(&self) -> bool {
        self.worst_ratio <= 1.0
    }

    /// Within issue 6's tolerances with no allowance for PyTorch's own float32 error.
    fn strict(&self) -> bool {
        self.logits <= LOGITS_TOLERANCE
            && self.loss <= LOSS_TOLERANCE
            && self.gradient <= GRADIENT_TOLERANCE
    }
}

fn norm(data: &[f32]) -> f64 {
    data.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt()
}

/// The model a fixture was made from, as its `io.safetensors` metadata describes it.
fn build(io: &convgrad::io::NamedTensors, input: &Tensor, classes: usize) -> Graph {
    let meta = |key: &str| io.metadata.get(key).map(String::as_str);
    let model = meta("model").expect("fixture metadata names the model");
    let shape = input.shape();
    let config = ModelConfig::new(classes)
        .input([shape[1], shape[2], shape[3]])
        .aux_logits(meta("aux_logits") == Some("true"));
    let graph = if let Some(width) = meta("width_mult") {
        models::mobilenet_v2_width(width.parse().unwrap(), &config)
    } else if model == "densenet" {
        let number = |key: &str| meta(key).unwrap().parse::<usize>().unwrap();
        let blocks: Vec<usize> = meta("block_config")
            .unwrap()
            .split(',')
            .map(|b| b.parse().unwrap())
            .collect();
        models::densenet(
            number("growth_rate"),
            blocks.try_into().unwrap(),
            number("num_init_features"),
            &config,
        )
    } else {
        models::build_with(model, &config)
    };
    graph.unwrap_or_else(|e| panic!("{model}: {e}"))
}

/// Runs one fixture directory and measures every error.
fn check(dir: &Path) -> Report {
    check_tweaked(dir, &|_| {})
}

/// [`check`], with the weights changed by `tweak` after loading (for the negative control).
fn check_tweaked(dir: &Path, tweak: &dyn Fn(&mut ParamStore)) -> Report {
    let name = dir.file_name().unwrap().to_string_lossy().to_string();
    let mut io = read_safetensors(dir.join("io.safetensors")).unwrap();
    let input = io.take("input").expect("io has input");
    let targets: Vec<usize> = io
        .take("target")
        .expect("io has target")
        .data()
        .iter()
        .map(|&t| t as usize)
        .collect();
    let torch_logits = io.take("logits").expect("io has logits");
    let torch_loss = io.take("loss").expect("io has loss").data()[0] as f64;
    let graph = build(&io, &input, torch_logits.shape()[1]);
    let mut store = Weights::read(dir.join("weights.safetensors"))
        .and_then(|w| w.store_for(&graph))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    tweak(&mut store);

    // Evaluation mode, both as the graph runs node by node and as the inference plan runs it
    // (BatchNorm folded into the convolutions, activations in place): the worse counts.
    let logits = graph.forward(&store, &input).unwrap();
    let folded = graph.inference(&store).unwrap().forward(&input).unwrap();
    assert_eq!(logits.shape(), torch_logits.shape(), "{name}: logits shape");
    let largest = torch_logits
        .data()
        .iter()
        .fold(0f64, |m, &v| m.max((v as f64).abs()));
    let logits_error = [&logits, &folded]
        .map(|l| l.max_abs_diff(&torch_logits).unwrap() as f64 / largest)
        .into_iter()
        .fold(0.0, f64::max);

    // Training mode: batch statistics, dropout off, mean cross-entropy on the main output.
    let mut tape = Tape::new();
    let x = tape.input(input);
    let out = graph
        .forward_tape(&mut tape, &store, x, Mode::Train, &mut Rng::seed(0), false)
        .unwrap();
    let loss = tape.cross_entropy(out.output, &targets).unwrap();
    let loss_value = tape.value(loss).unwrap().item().unwrap() as f64;
    let loss_error = (loss_value - torch_loss).abs() / torch_loss.abs();
    let grads = tape.backward(loss).unwrap();

    let mut torch_grads = read_safetensors(dir.join("grads.safetensors")).unwrap();
    // PyTorch float32's own error against the float64 reference (0 for fixtures without it).
    let torch_error = |meta: &std::collections::HashMap<String, String>, key: &str| -> f64 {
        meta.get(key).map_or(0.0, |v| v.parse().unwrap())
    };
    let torch_logits = torch_error(&io.metadata, "torch_f32_logits_error");
    let torch_loss_error = torch_error(&io.metadata, "torch_f32_loss_error");
    let variants_logits = torch_error(&io.metadata, "torch_f32_variants_logits_error");
    let variants_loss = torch_error(&io.metadata, "torch_f32_variants_loss_error");
    let variants_gradient = torch_error(&io.metadata, "torch_f32_variants_gradient_error");
    let loss_spread = torch_error(&io.metadata, "torch_f32_loss_spread");
    let allowed = |tolerance: f64, torch: f64, variants: f64| {
        tolerance
            .max(TORCH_FACTOR * torch)
            .max(VARIANT_MARGIN * variants)
    };
    let mut report = Report {
        name: name.clone(),
        logits: logits_error,
        loss: loss_error,
        gradient: 0.0,
        worst_gradient: String::new(),
        torch_logits,
        torch_loss: torch_loss_error,
        torch_gradient: 0.0,
        variants_logits,
        variants_loss,
        variants_gradient,
        loss_spread,
        worst_ratio: (logits_error / allowed(LOGITS_TOLERANCE, torch_logits, variants_logits)).max(
            loss_error
                / allowed(LOSS_TOLERANCE, torch_loss_error, variants_loss)
                    .max(SPREAD_SIGMAS * loss_spread),
        ),
        gradients: 0,
        null_gradients: 0,
    };
    // The scale of the model's gradients, for parameters whose true gradient is zero.
    let largest_norm = torch_grads
        .tensors
        .iter()
        .fold(0f64, |m, (_, g)| m.max(norm(g.data())));
    // A gradient is null when it is zero in exact arithmetic (below 1e-6 of the largest): a
    // bias right before a training-mode BatchNorm, a channel that no sample activates.
    let is_null = |g: &Tensor| norm(g.data()) < 1e-6 * largest_norm;
    report.torch_gradient = torch_grads
        .tensors
        .iter()
        .filter(|(_, g)| !is_null(g))
        .map(|(name, _)| torch_error(&torch_grads.metadata, name))
        .fold(0.0, f64::max);
    for (i, (param, kind)) in store.names().iter().zip(store.kinds()).enumerate() {
        if *kind != ParamKind::Trainable {
            continue;
        }
        let ours = grads.get(out.params[i]);
        let Some(theirs) = torch_grads.take(&format!("grad.{param}")) else {
            // PyTorch gave this parameter no gradient (an auxiliary head, off the main loss):
            // neither may convgrad.
            let stray = ours.map_or(0.0, |g| norm(g.data()));
            assert!(
                stray == 0.0,
                "{name}: {param} has a gradient PyTorch has not"
            );
            continue;
        };
        let ours = ours.unwrap_or_else(|| panic!("{name}: {param} got no gradient"));
        assert_eq!(ours.shape(), theirs.shape(), "{name}: {param}");
        let difference: Vec<f32> = ours
            .data()
            .iter()
            .zip(theirs.data())
            .map(|(a, b)| a - b)
            .collect();
        let theirs_norm = norm(theirs.data());
        // Both sides hold only rounding noise in a null gradient: measure it against the
        // model's gradient scale instead of its own.
        let null = is_null(&theirs);
        report.null_gradients += usize::from(null);
        let denominator = if null { largest_norm } else { theirs_norm };
        let error = norm(&difference) / denominator;
        let torch = if null {
            0.0
        } else {
            torch_error(&torch_grads.metadata, &format!("grad.{param}"))
        };
        if std::env::var_os("CONVGRAD_TORCH_VERBOSE").is_some() {
            println!(
                "  {name} {param}: {error:.3e} (PyTorch f32 {torch:.3e}; |g| {theirs_norm:.3e})"
            );
        }
        report.gradients += 1;
        let (torch_allowance, variants_allowance) = if null {
            (0.0, 0.0)
        } else {
            (report.torch_gradient, report.variants_gradient)
        };
        report.worst_ratio = report
            .worst_ratio
            .max(error / allowed(GRADIENT_TOLERANCE, torch_allowance, variants_allowance));
        if error >= report.gradient {
            report.gradient = error;
            report.worst_gradient = param.clone();
        }
    }
    let left: Vec<&String> = torch_grads.tensors.iter().map(|(n, _)| n).collect();
    assert!(
        left.is_empty(),
        "{name}: PyTorch gradients for unknown parameters {left:?}"
    );
    report
}

fn check_all(dirs: Vec<PathBuf>) {
    assert!(!dirs.is_empty(), "no fixtures found");
    let mut failures = Vec::new();
    println!(
        "errors against float64 PyTorch (in brackets: PyTorch float32's own by default | the \
         worst of its float32 variants; for gradients the worst over the model); verdict: \
         'strict' within issue 6's tolerances, 'as torch' only within {TORCH_FACTOR} times \
         PyTorch's default float32 error, {VARIANT_MARGIN} times its worst variant's, or (loss) \
         {SPREAD_SIGMAS} standard deviations of float32's loss spread, printed after the loss"
    );
    println!(
        "{:<20} {:>31} {:>31} {:>9} {:>31}  {:<8} worst gradient (of n; null)",
        "model", "logits", "loss", "spread", "gradient", "verdict"
    );
    for dir in dirs {
        let report = check(&dir);
        let pair = |ours: f64, torch: f64, variants: f64| {
            format!("{ours:.2e} [{torch:.2e} | {variants:.2e}]")
        };
        let verdict = match (report.strict(), report.passes()) {
            (true, _) => "strict",
            (false, true) => "as torch",
            (false, false) => "FAILS",
        };
        println!(
            "{:<20} {:>31} {:>31} {:>9.2e} {:>31}  {:<8} {} (of {}; {} null)",
            report.name,
            pair(report.logits, report.torch_logits, report.variants_logits),
            pair(report.loss, report.torch_loss, report.variants_loss),
            report.loss_spread,
            pair(
                report.gradient,
                report.torch_gradient,
                report.variants_gradient
            ),
            verdict,
            report.worst_gradient,
            report.gradients,
            report.null_gradients
        );
        if !report.passes() {
            failures.push(report);
        }
    }
    assert!(failures.is_empty(), "differs from PyTorch: {failures:#?}");
}

fn fixture_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("io.safetensors").is_file())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn small_models_compute_what_pytorch_computes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch");
    check_all(fixture_dirs(&root));
}

#[test]
fn a_slightly_wrong_weight_fails_the_comparison() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch/lenet5");
    assert!(check(&dir).strict());
    // One weight of 2,400 in conv2 off by 10%.
    let report = check_tweaked(&dir, &|store| {
        let position = store
            .names()
            .iter()
            .position(|n| n == "conv2.weight")
            .unwrap();
        store.tensors_mut()[position].data_mut()[0] *= 1.1;
    });
    assert!(!report.passes(), "{report:?}");
}

#[test]
fn full_size_models_compute_what_pytorch_computes() {
    let Some(root) = std::env::var_os("CONVGRAD_TORCH_FIXTURES") else {
        eprintln!("CONVGRAD_TORCH_FIXTURES is not set: full-size models not checked");
        return;
    };
    check_all(fixture_dirs(Path::new(&root)));
}
