//! Tables from the kernel measurements of BENCHMARKS.md, and the README's summary of it.

use std::fmt::Write;

use convgrad::graph::thousands;
use convgrad_kernels::conv::winograd;
use convgrad_kernels::{Conv2dGeometry, ConvKind};

use super::super::measured::{KernelCase, Training};
use super::seconds;

/// Arithmetic intensity of every benchmarked kernel case, next to what it reached.
pub(super) fn kernel_intensity(kernels: &[KernelCase]) -> String {
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
pub(super) fn separable_pair(kernels: &[KernelCase]) -> Result<String, String> {
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

/// The kernel families of the README's summary.
const FAMILIES: [&str; 4] = [
    "Winograd (3x3, stride 1)*",
    "direct (3x3 stride 2, 5x5, 7x7)",
    "depthwise 3x3",
    "pointwise 1x1",
];

/// The index in [`FAMILIES`] of the kernel a benchmarked case runs on. Stride 2 counts as the
/// direct kernel's, where BENCHMARKS.md's reference table measured it: AVX-512 builds send it
/// there, AVX2 builds to Winograd's algorithm (`winograd::applies`), and the summary must not
/// change with the build that generates it.
fn family(k: &KernelCase) -> usize {
    let g = geometry(k);
    match g.kind() {
        _ if winograd::applies(&g) && g.stride == (1, 1) => 0,
        ConvKind::Depthwise => 2,
        ConvKind::Pointwise => 3,
        ConvKind::Direct | ConvKind::Im2col => 1,
    }
}

/// The README's summary of BENCHMARKS.md: each kernel family against PyTorch, and the
/// recorded trainings.
pub(super) fn benchmark_summary(trainings: &[Training], kernels: &[KernelCase]) -> String {
    let mut out = String::new();
    out.push_str(
        "| kernel family | cases | convgrad forward GFLOP/s | forward vs PyTorch \
         | forward + backward vs PyTorch |\n",
    );
    out.push_str("|---|---:|---|---|---|\n");
    for (index, label) in FAMILIES.iter().enumerate() {
        let cases: Vec<&KernelCase> = kernels.iter().filter(|k| family(k) == index).collect();
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
        "\n\\* Forward and backward-data by Winograd's algorithm, 36 products per 4 x 4 outputs \
         instead of 144 on maps of 14 or more (16 per 2 x 2 on smaller ones): GFLOP/s counts \
         the direct convolution's multiply-adds, so it can pass the machine's peak.\n",
    );
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
