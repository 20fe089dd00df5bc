//! `convgrad models`, `convgrad summary`, `convgrad dot`.

use clap::Args;
use convgrad::graph::{thousands, Graph};
use convgrad::models::{self, ModelConfig, MODELS};

#[derive(Args)]
pub struct ModelArgs {
    /// Architecture name (see `convgrad models`).
    pub model: String,
    /// Number of classes.
    #[arg(long, default_value_t = 1000)]
    pub classes: usize,
    /// Input as C,H,W (default: the model's standard input).
    #[arg(long, value_parser = parse_input)]
    pub input: Option<[usize; 3]>,
    /// Include the auxiliary classifiers (GoogLeNet, Inception-v3).
    #[arg(long)]
    pub aux: bool,
}

fn parse_input(s: &str) -> Result<[usize; 3], String> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let dims: Vec<usize> = parts
        .iter()
        .map(|p| p.parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("'{s}' is not C,H,W (three whole numbers, such as 3,224,224)"))?;
    match dims.as_slice() {
        &[c, h, w] if c > 0 && h > 0 && w > 0 => Ok([c, h, w]),
        _ => Err(format!(
            "'{s}' is not C,H,W (three positive numbers, such as 3,224,224)"
        )),
    }
}

fn build(args: &ModelArgs) -> convgrad::Result<Graph> {
    let mut config = ModelConfig::new(args.classes).aux_logits(args.aux);
    config.input = args.input;
    models::build_with(&args.model, &config)
}

pub fn models() -> convgrad::Result<()> {
    println!(
        "{:<14} {:<12} {:>5}  {:>13}  {:>14}  {:>11}  paper",
        "name", "family", "year", "parameters", "mult-adds", "input"
    );
    for info in MODELS {
        let graph = info.build(&ModelConfig::new(if info.name == "lenet5" {
            10
        } else {
            1000
        }))?;
        let [c, h, w] = info.standard_input;
        println!(
            "{:<14} {:<12} {:>5}  {:>13}  {:>14}  {:>11}  {}",
            info.name,
            info.family,
            info.year,
            thousands(graph.parameter_count() as u64),
            thousands(graph.multiply_adds()),
            format!("{c}x{h}x{w}"),
            info.paper
        );
    }
    Ok(())
}

pub fn summary(args: &ModelArgs) -> convgrad::Result<()> {
    print!("{}", build(args)?.summary());
    Ok(())
}

pub fn dot(args: &ModelArgs) -> convgrad::Result<()> {
    print!("{}", build(args)?.to_dot());
    Ok(())
}
