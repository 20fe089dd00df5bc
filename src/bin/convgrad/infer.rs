//! `convgrad infer`: a zoo model with torchvision weights, on a batch from a safetensors file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use convgrad::io::{read_safetensors, write_safetensors, NamedTensors};
use convgrad::models::weights::{load_model, LoadedModel, Weights};
use convgrad::{Error, Tensor};

#[derive(Args)]
pub struct InferArgs {
    /// Architecture name (see `convgrad models`).
    pub model: String,
    /// Weights: a torchvision/timm state_dict as safetensors (scripts/export_weights.py).
    #[arg(long)]
    pub weights: PathBuf,
    /// Safetensors file holding the tensor `input` [N, C, H, W], already normalised.
    #[arg(long)]
    pub input: PathBuf,
    /// Where to write the tensor `logits` [N, classes].
    #[arg(long)]
    pub output: PathBuf,
    /// Number of classes (default: read from the weights; an error if they disagree).
    #[arg(long)]
    pub classes: Option<usize>,
}

fn format_error(path: &Path, message: String) -> Error {
    Error::Format {
        path: path.to_path_buf(),
        message,
    }
}

/// Reads a safetensors file and takes its `input` [N, C, H, W] tensor out.
pub fn read_batch(path: &Path) -> convgrad::Result<(NamedTensors, Tensor)> {
    let mut file = read_safetensors(path)?;
    const SHOWN: usize = 6;
    let mut found: Vec<String> = file
        .tensors
        .iter()
        .take(SHOWN)
        .map(|(n, t)| format!("{n} {:?}", t.shape()))
        .collect();
    if file.tensors.len() > SHOWN {
        found.push(format!("and {} more", file.tensors.len() - SHOWN));
    }
    let input = file.take("input").ok_or_else(|| {
        format_error(
            path,
            format!(
                "no tensor 'input' (expected [N, C, H, W]); found {}",
                if found.is_empty() {
                    "no tensors".to_string()
                } else {
                    found.join(", ")
                }
            ),
        )
    })?;
    if input.rank() != 4 || input.numel() == 0 {
        return Err(format_error(
            path,
            format!(
                "'input' must be a non-empty [N, C, H, W] batch, found {:?}",
                input.shape()
            ),
        ));
    }
    if !input.all_finite() {
        return Err(format_error(
            path,
            "'input' holds NaN or infinite values".into(),
        ));
    }
    Ok((file, input))
}

/// Reads the weights and builds `model` to fit them and the batch's `[C, H, W]`.
pub fn load_for_batch(
    model: &str,
    weights: &Path,
    input: &Tensor,
    classes: Option<usize>,
) -> convgrad::Result<LoadedModel> {
    let weights = Weights::read(weights)?;
    let found = weights.config_for(model)?.num_classes;
    if let Some(classes) = classes.filter(|&c| c != found) {
        return Err(format_error(
            weights.path(),
            format!("--classes {classes} was asked for, but these weights have {found} classes"),
        ));
    }
    let shape = input.shape();
    let loaded = load_model(model, &weights, Some([shape[1], shape[2], shape[3]]))?;
    if !loaded.skipped_aux.is_empty() {
        eprintln!(
            "note: {} auxiliary-classifier tensors left out: a {}x{} input is too small for the \
             auxiliary head, which plays no part in the main output",
            loaded.skipped_aux.len(),
            shape[2],
            shape[3]
        );
    }
    Ok(loaded)
}

pub fn run(args: &InferArgs) -> convgrad::Result<()> {
    let (_, input) = read_batch(&args.input)?;
    let model = load_for_batch(&args.model, &args.weights, &input, args.classes)?;
    let start = Instant::now();
    let logits = model.graph.inference(&model.store)?.forward(&input)?;
    let elapsed = start.elapsed();
    let metadata = HashMap::from([("model".to_string(), args.model.clone())]);
    write_safetensors(&args.output, &[("logits".to_string(), &logits)], &metadata)?;
    println!(
        "{}: input {:?} -> logits {:?} in {:.1} ms (evaluation mode), written to {}",
        args.model,
        input.shape(),
        logits.shape(),
        elapsed.as_secs_f64() * 1e3,
        args.output.display()
    );
    Ok(())
}
