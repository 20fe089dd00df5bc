//! `convgrad bench`: training and inference images per second and peak memory of a zoo model
//! on random data, with the protocol of `shared/bench/torch_train.py steps`.

use clap::Args;
use convgrad::models;
use convgrad::train::{bench, BenchConfig, BenchPhase};
use indicatif::{ProgressBar, ProgressStyle};

use crate::train::set_threads;

#[derive(Args)]
pub struct BenchArgs {
    /// Architecture name (see `convgrad models`).
    pub model: String,
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Input height and width (default: 28 for LeNet-5, 32 for the others).
    #[arg(long)]
    pub size: Option<usize>,
    /// Input channels (default: 1 for LeNet-5, 3 for the others).
    #[arg(long)]
    pub channels: Option<usize>,
    #[arg(long, default_value_t = 10)]
    pub classes: usize,
    /// Timed steps of each phase (after two warm-up steps).
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

fn megabytes(bytes: Option<u64>) -> String {
    bytes.map_or("unknown".into(), |b| {
        format!("{:.0} MB", b as f64 / (1 << 20) as f64)
    })
}

pub fn run(args: &BenchArgs) -> convgrad::Result<()> {
    set_threads(args.threads)?;
    let info = models::info(&args.model)?;
    let grey = info.standard_input[0] == 1;
    let size = args.size.unwrap_or(if grey { 28 } else { 32 });
    let channels = args.channels.unwrap_or(info.standard_input[0]);
    let config = BenchConfig {
        num_classes: args.classes,
        steps: args.steps,
        ..BenchConfig::new(&args.model, args.batch_size, [channels, size, size])
    };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>9} [{bar:30}] {pos}/{len} steps ({elapsed})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let report = bench(&config, &mut |phase, done, total| {
        bar.set_length(total as u64);
        bar.set_prefix(match phase {
            BenchPhase::Train => "training",
            BenchPhase::Inference => "inference",
        });
        bar.set_position(done as u64);
    });
    bar.finish_and_clear();
    let report = report?;
    println!(
        "{}: input {}x{}x{}, batch {}, {} threads, {} parameters, {:.2} million multiply-adds per image",
        args.model,
        channels,
        size,
        size,
        args.batch_size,
        rayon::current_num_threads(),
        report.parameters,
        report.multiply_adds as f64 * 1e-6
    );
    println!(
        "training:  {:>9.1} img/s  ({:.1} ms per step, median of {})  peak memory {}",
        report.train_images_per_second(),
        report.train_step.as_secs_f64() * 1e3,
        args.steps,
        megabytes(report.peak_train_bytes)
    );
    println!(
        "inference: {:>9.1} img/s  ({:.1} ms per batch, median of {})  peak memory {}",
        report.inference_images_per_second(),
        report.inference.as_secs_f64() * 1e3,
        args.steps,
        megabytes(report.peak_inference_bytes)
    );
    Ok(())
}
