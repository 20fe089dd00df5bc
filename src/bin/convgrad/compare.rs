//! `convgrad compare-conv`: the MobileNet paper's section 3.1, measured.

use std::time::Instant;

use clap::Args;
use convgrad::functional::{conv2d, Conv2dOptions};
use convgrad::{Rng, Tensor};
use convgrad_kernels::conv::winograd;
use convgrad_kernels::Conv2dGeometry;

use convgrad::graph::thousands;

#[derive(Args)]
pub struct CompareArgs {
    /// Input channels (M in the paper).
    #[arg(long)]
    pub in_channels: usize,
    /// Output channels (N).
    #[arg(long)]
    pub out_channels: usize,
    /// Height and width of the feature map (kept by padding).
    #[arg(long)]
    pub size: usize,
    /// Kernel size (K).
    #[arg(long, default_value_t = 3)]
    pub kernel: usize,
    /// Batch size for the timing.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Timed repetitions (the median is reported).
    #[arg(long, default_value_t = 10)]
    pub repeats: usize,
}

fn median_ms(
    repeats: usize,
    mut f: impl FnMut() -> convgrad::Result<Tensor>,
) -> convgrad::Result<f64> {
    f()?; // warm-up
    let mut times = Vec::with_capacity(repeats);
    for _ in 0..repeats.max(1) {
        let start = Instant::now();
        std::hint::black_box(f()?);
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

pub fn run(a: &CompareArgs) -> convgrad::Result<()> {
    if a.in_channels == 0 || a.out_channels == 0 || a.size == 0 || a.kernel == 0 || a.batch == 0 {
        return Err(convgrad::Error::InvalidArgument {
            op: "compare-conv".into(),
            message: "channels, size, kernel and batch must all be at least 1".into(),
        });
    }
    let (m, n, k, hw) = (a.in_channels, a.out_channels, a.kernel, a.size * a.size);
    let standard_params = k * k * m * n;
    let depthwise_params = k * k * m;
    let pointwise_params = m * n;
    let separable_params = depthwise_params + pointwise_params;
    let standard_macs = (standard_params * hw) as u64;
    let separable_macs = (separable_params * hw) as u64;
    let ratio = separable_macs as f64 / standard_macs as f64;
    let formula = 1.0 / n as f64 + 1.0 / (k * k) as f64;

    println!(
        "{m} -> {n} channels, {k}x{k} kernel, {s}x{s} feature map (per image, no biases)",
        s = a.size
    );
    println!();
    println!("{:<34} {:>14} {:>16}", "", "parameters", "multiply-adds");
    println!(
        "{:<34} {:>14} {:>16}",
        "standard KxK conv",
        thousands(standard_params as u64),
        thousands(standard_macs)
    );
    println!(
        "{:<34} {:>14} {:>16}",
        "depthwise KxK (one filter per ch.)",
        thousands(depthwise_params as u64),
        thousands((depthwise_params * hw) as u64)
    );
    println!(
        "{:<34} {:>14} {:>16}",
        "pointwise 1x1",
        thousands(pointwise_params as u64),
        thousands((pointwise_params * hw) as u64)
    );
    println!(
        "{:<34} {:>14} {:>16}",
        "depthwise-separable (sum)",
        thousands(separable_params as u64),
        thousands(separable_macs)
    );
    println!();
    println!(
        "separable / standard = {ratio:.4}  (1/N + 1/K^2 = 1/{n} + 1/{} = {formula:.4})",
        k * k
    );
    println!(
        "the separable convolution needs {:.1}x fewer multiply-adds",
        1.0 / ratio
    );

    let mut rng = Rng::seed(0);
    let x = Tensor::randn(&[a.batch, m, a.size, a.size], &mut rng);
    let w_standard = Tensor::randn(&[n, m, k, k], &mut rng);
    let w_depthwise = Tensor::randn(&[m, 1, k, k], &mut rng);
    let w_pointwise = Tensor::randn(&[n, m, 1, 1], &mut rng);
    let pad = k / 2;
    let same = Conv2dOptions {
        padding: (pad, pad),
        ..Default::default()
    };
    let depthwise = Conv2dOptions { groups: m, ..same };
    let t_standard = median_ms(a.repeats, || conv2d(&x, &w_standard, None, same))?;
    let t_depthwise = median_ms(a.repeats, || conv2d(&x, &w_depthwise, None, depthwise))?;
    let mid = conv2d(&x, &w_depthwise, None, depthwise)?;
    let t_pointwise = median_ms(a.repeats, || {
        conv2d(&mid, &w_pointwise, None, Conv2dOptions::default())
    })?;
    let t_separable = t_depthwise + t_pointwise;
    let gflops = |macs: u64, ms: f64| 2.0 * macs as f64 * a.batch as f64 / (ms * 1e6);
    println!();
    println!(
        "measured on this machine, batch {}, median of {} runs ({} threads):",
        a.batch,
        a.repeats,
        rayon::current_num_threads()
    );
    println!(
        "  standard    {t_standard:9.3} ms  ({:6.1} GFLOP/s)",
        gflops(standard_macs, t_standard)
    );
    let geometry =
        Conv2dGeometry::new(a.batch, m, n, (a.size, a.size), (k, k)).with_padding((pad, pad));
    if winograd::applies(&geometry) {
        println!(
            "              (Winograd's algorithm: 2.25 to 4 times fewer multiplies than a direct\n               \
             convolution; GFLOP/s counts the direct convolution's)"
        );
    }
    println!(
        "  depthwise   {t_depthwise:9.3} ms  ({:6.1} GFLOP/s)",
        gflops((depthwise_params * hw) as u64, t_depthwise)
    );
    println!(
        "  pointwise   {t_pointwise:9.3} ms  ({:6.1} GFLOP/s)",
        gflops((pointwise_params * hw) as u64, t_pointwise)
    );
    println!(
        "  separable   {t_separable:9.3} ms  -> {:.1}x faster than standard (FLOPs promise {:.1}x)",
        t_standard / t_separable,
        1.0 / ratio
    );
    Ok(())
}
