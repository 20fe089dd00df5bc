//! `convgrad gradients`: one training-mode forward and backward with torchvision weights, and
//! the gradient norm of every layer.
//!
//! The forward runs BatchNorm on batch statistics with dropout disabled, so the result is
//! deterministic and equals PyTorch's `model.train()` with dropout modules in eval mode. The
//! loss is the mean cross-entropy of the main output only: for GoogLeNet and Inception-v3 built
//! with auxiliary heads (torchvision returns them in training mode, and its reference training
//! adds them with weights 0.3 and 0.4), the heads are not in the loss, get no gradient and are
//! left out of the table and the file. That is `F.cross_entropy(out.logits, target)` in PyTorch.

use std::collections::HashMap;
use std::path::PathBuf;

use clap::Args;
use convgrad::io::write_safetensors;
use convgrad::nn::{Mode, ParamKind};
use convgrad::{Error, Rng, Tape, Tensor};

use crate::infer::{load_for_batch, read_batch};

#[derive(Args)]
pub struct GradientsArgs {
    /// Architecture name (see `convgrad models`).
    pub model: String,
    /// Weights: a torchvision/timm state_dict as safetensors (scripts/export_weights.py).
    #[arg(long)]
    pub weights: PathBuf,
    /// Safetensors file holding `input` [N, C, H, W] and `target` [N] (class indices, integer
    /// or float).
    #[arg(long)]
    pub input: PathBuf,
    /// Where to write `loss` [1] and `grad.<parameter name>` for every parameter.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

fn norm(t: &Tensor) -> f64 {
    t.data()
        .iter()
        .map(|&v| (v as f64).powi(2))
        .sum::<f64>()
        .sqrt()
}

pub fn run(args: &GradientsArgs) -> convgrad::Result<()> {
    let (mut file, input) = read_batch(&args.input)?;
    let bad = |message: String| Error::Format {
        path: args.input.clone(),
        message,
    };
    let batch = input.shape()[0];
    let target = file.take("target").ok_or_else(|| {
        bad(format!(
            "no tensor 'target' (expected [{batch}] class indices)"
        ))
    })?;
    if target.shape() != [batch] {
        return Err(bad(format!(
            "'target' must be [{batch}] class indices (one per input), found {:?}",
            target.shape()
        )));
    }
    let model = load_for_batch(&args.model, &args.weights, &input, None)?;
    let classes = model.config.num_classes;
    let targets = target
        .data()
        .iter()
        .map(|&t| {
            if t.fract() == 0.0 && t >= 0.0 && (t as usize) < classes {
                Ok(t as usize)
            } else {
                Err(bad(format!(
                    "'target' holds {t}, not a class index in 0..{classes}"
                )))
            }
        })
        .collect::<convgrad::Result<Vec<usize>>>()?;

    let mut tape = Tape::new();
    let x = tape.input(input);
    let out = model.graph.forward_tape(
        &mut tape,
        &model.store,
        x,
        Mode::Train,
        &mut Rng::seed(0),
        false,
    )?;
    let loss = tape.cross_entropy(out.output, &targets)?;
    let loss_value = tape.value(loss)?.item()?;
    let mut grads = tape.backward(loss)?;

    // Gradients by parameter position; parameters the loss does not reach (auxiliary heads)
    // have none.
    let specs = model.graph.param_specs();
    let mut by_param: Vec<Option<Tensor>> = out.params.iter().map(|&v| grads.take(v)).collect();
    for (i, kind) in model.store.kinds().iter().enumerate() {
        if *kind != ParamKind::Trainable {
            by_param[i] = None;
        }
    }

    println!(
        "{}: mean cross-entropy {loss_value:.6} on {batch} samples (training mode, batch statistics, no dropout)",
        args.model
    );
    println!(
        "{:<48} {:<16} {:>11} {:>12} {:>12} {:>12}",
        "layer", "type", "parameters", "|grad|", "|weight|", "|grad|/|w|"
    );
    let mut skipped = 0;
    for node in model.graph.nodes() {
        let trainable: Vec<usize> = node
            .params
            .iter()
            .copied()
            .filter(|&i| specs[i].spec.kind == ParamKind::Trainable)
            .collect();
        if trainable.is_empty() {
            continue;
        }
        if trainable.iter().all(|&i| by_param[i].is_none()) {
            skipped += 1;
            continue;
        }
        let squares = |f: &dyn Fn(usize) -> f64| -> f64 {
            trainable.iter().map(|&i| f(i).powi(2)).sum::<f64>().sqrt()
        };
        let grad = squares(&|i| by_param[i].as_ref().map_or(0.0, norm));
        let weight = squares(&|i| norm(&model.store.tensors()[i]));
        println!(
            "{:<48} {:<16} {:>11} {:>12.4e} {:>12.4e} {:>12.4e}",
            node.name,
            node.kind(),
            model.graph.node_parameter_count(node),
            grad,
            weight,
            grad / weight
        );
    }
    if skipped > 0 {
        println!("({skipped} layers of auxiliary heads are not in the loss: no gradient)");
    }

    if let Some(path) = &args.output {
        let loss_tensor = Tensor::from_vec(vec![loss_value], &[1])?;
        let mut named: Vec<(String, &Tensor)> = vec![("loss".to_string(), &loss_tensor)];
        named.extend(
            specs
                .iter()
                .zip(&by_param)
                .filter_map(|(p, g)| g.as_ref().map(|g| (format!("grad.{}", p.name), g))),
        );
        let metadata = HashMap::from([("model".to_string(), args.model.clone())]);
        write_safetensors(path, &named, &metadata)?;
        println!(
            "loss and {} gradients written to {}",
            named.len() - 1,
            path.display()
        );
    }
    Ok(())
}
