//! The `convgrad` command line: explore the zoo, compare convolutions, train and run models.

mod bench;
#[cfg(test)]
mod cli_tests;
mod compare;
mod gradients;
mod infer;
mod predict;
mod train;
mod zoo;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "convgrad",
    version,
    about = "Classic CNNs on a from-scratch autograd engine and SIMD kernels"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the architectures of the zoo with their year and parameter count.
    Models,
    /// Print a model's layers: output shapes, parameters and multiply-adds.
    Summary(zoo::ModelArgs),
    /// Write a model's graph in Graphviz DOT (render with `dot -Tsvg`).
    Dot(zoo::ModelArgs),
    /// Compare a standard convolution with a depthwise-separable one: parameters,
    /// multiply-adds and measured time.
    CompareConv(compare::CompareArgs),
    /// Train a model of the zoo on Fashion-MNIST, MNIST, CIFAR-10 or an image folder.
    Train(train::TrainArgs),
    /// Test accuracy and confusion matrix of a trained checkpoint.
    Eval(train::EvalArgs),
    /// Training and inference images per second and peak memory on random data.
    Bench(bench::BenchArgs),
    /// Run a model with torchvision weights on a batch from a safetensors file (evaluation
    /// mode): `input` [N, C, H, W] in, `logits` [N, classes] out.
    Infer(infer::InferArgs),
    /// One training-mode forward and backward with torchvision weights (batch statistics, no
    /// dropout, mean cross-entropy of the main output): gradient norms per layer, and
    /// optionally every gradient written to safetensors.
    Gradients(gradients::GradientsArgs),
    /// Classify PNG/JPEG images with ImageNet weights: top-5 classes with probabilities.
    Predict(predict::PredictArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Models => zoo::models(),
        Command::Summary(args) => zoo::summary(&args),
        Command::Dot(args) => zoo::dot(&args),
        Command::CompareConv(args) => compare::run(&args),
        Command::Train(args) => train::run_train(&args),
        Command::Eval(args) => train::run_eval(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Infer(args) => infer::run(&args),
        Command::Gradients(args) => gradients::run(&args),
        Command::Predict(args) => predict::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
