//! Throughput and memory of a zoo model: training steps and inference on random data, the
//! protocol of `shared/bench/torch_train.py steps` (SGD with momentum 0.9, learning rate 0.01,
//! two warm-up steps, then timed steps), so `convgrad bench` and PyTorch can be set side by side.
//!
//! Times are medians over the timed steps: the machine is shared and a median shrugs off the
//! odd slow step that a mean would carry. Memory is the process's peak resident set (Linux
//! `VmHWM`), reset between the training and the inference phase through `/proc/self/clear_refs`,
//! so each phase reports its own peak; on other systems memory is reported as unknown.

use std::fs;
use std::time::{Duration, Instant};

use super::step::train_step;
use crate::error::{Error, Result};
use crate::graph::{Graph, ParamStore};
use crate::models::{self, ModelConfig};
use crate::optim::Sgd;
use crate::{Rng, Tensor};

/// What to measure.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchConfig {
    pub model: String,
    pub batch_size: usize,
    /// Per-sample input `[C, H, W]`.
    pub input: [usize; 3],
    pub num_classes: usize,
    /// Untimed steps first (buffers, caches, thread pool start-up).
    pub warmup: usize,
    /// Timed steps of each phase.
    pub steps: usize,
    pub seed: u64,
}

impl BenchConfig {
    /// The defaults of `torch_train.py steps`: 2 warm-up steps, 5 timed, 10 classes.
    pub fn new(model: impl Into<String>, batch_size: usize, input: [usize; 3]) -> Self {
        BenchConfig {
            model: model.into(),
            batch_size,
            input,
            num_classes: 10,
            warmup: 2,
            steps: 5,
            seed: 0,
        }
    }
}

/// Which phase a progress report is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchPhase {
    Train,
    Inference,
}

/// What [`bench()`] measured.
#[derive(Clone, Debug)]
pub struct BenchReport {
    pub config: BenchConfig,
    pub parameters: usize,
    /// Multiply-adds of one forward pass of one image.
    pub multiply_adds: u64,
    /// Median time of one training step (forward, backward, update) on a batch.
    pub train_step: Duration,
    /// Median time of one inference forward pass on a batch.
    pub inference: Duration,
    /// Peak resident memory of the process during the training phase, in bytes.
    pub peak_train_bytes: Option<u64>,
    /// Peak resident memory during the inference phase, in bytes.
    pub peak_inference_bytes: Option<u64>,
}

impl BenchReport {
    pub fn train_images_per_second(&self) -> f64 {
        self.config.batch_size as f64 / self.train_step.as_secs_f64()
    }

    pub fn inference_images_per_second(&self) -> f64 {
        self.config.batch_size as f64 / self.inference.as_secs_f64()
    }
}

/// The process's peak resident set size so far (`VmHWM`), where the system reports it.
pub fn peak_resident_bytes() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Resets the peak resident set size to the current one; false where the system cannot.
pub fn reset_peak_resident() -> bool {
    fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Builds `config.model`, trains it for the warm-up and timed steps on one random batch, then
/// times inference in evaluation mode. `progress(phase, done, total)` is called after every step.
pub fn bench(
    config: &BenchConfig,
    progress: &mut dyn FnMut(BenchPhase, usize, usize),
) -> Result<BenchReport> {
    if config.batch_size == 0 || config.steps == 0 {
        return Err(Error::invalid(
            "bench",
            "batch size and step count must be at least 1",
        ));
    }
    let graph: Graph = models::info(&config.model)?
        .build(&ModelConfig::new(config.num_classes).input(config.input))?;
    let mut rng = Rng::seed(config.seed);
    let mut store = ParamStore::init(&graph, &mut rng);
    let [c, h, w] = config.input;
    let images = Tensor::randn(&[config.batch_size, c, h, w], &mut rng);
    let labels: Vec<usize> = (0..config.batch_size)
        .map(|_| rng.below(config.num_classes))
        .collect();
    let mut optimizer = Sgd::builder(0.01).momentum(0.9).build()?;

    reset_peak_resident();
    let total = config.warmup + config.steps;
    let mut train_times = Vec::with_capacity(config.steps);
    for step in 0..total {
        let started = Instant::now();
        let outcome = train_step(
            &graph,
            &mut store,
            &mut optimizer,
            images.clone(),
            &labels,
            &mut rng,
        )?;
        if step >= config.warmup {
            train_times.push(started.elapsed());
        }
        if !outcome.loss.is_finite() {
            return Err(Error::invalid(
                "bench",
                format!("the loss became {} at step {}", outcome.loss, step + 1),
            ));
        }
        progress(BenchPhase::Train, step + 1, total);
    }
    let peak_train_bytes = peak_resident_bytes();

    reset_peak_resident();
    // Weights prepared once (BatchNorm folded), as `convgrad infer` and `eval` run them.
    let plan = graph.inference(&store)?;
    let mut inference_times = Vec::with_capacity(config.steps);
    for step in 0..total {
        let started = Instant::now();
        let logits = plan.forward(&images)?;
        if step >= config.warmup {
            inference_times.push(started.elapsed());
        }
        drop(logits);
        progress(BenchPhase::Inference, step + 1, total);
    }
    let peak_inference_bytes = peak_resident_bytes();

    Ok(BenchReport {
        config: config.clone(),
        parameters: graph.parameter_count(),
        multiply_adds: graph.multiply_adds(),
        train_step: median(train_times),
        inference: median(inference_times),
        peak_train_bytes,
        peak_inference_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenet_bench_reports_positive_rates_and_counts_every_step() {
        let config = BenchConfig {
            steps: 3,
            ..BenchConfig::new("lenet5", 4, [1, 28, 28])
        };
        let mut calls = Vec::new();
        let report = bench(&config, &mut |phase, done, total| {
            calls.push((phase, done, total))
        })
        .unwrap();
        assert_eq!(calls.len(), 10);
        assert_eq!(calls[4], (BenchPhase::Train, 5, 5));
        assert_eq!(calls[9], (BenchPhase::Inference, 5, 5));
        assert_eq!(report.parameters, 61_706);
        assert!(report.train_images_per_second() > 0.0);
        assert!(report.inference_images_per_second() > 0.0);
        if cfg!(target_os = "linux") {
            assert!(report.peak_train_bytes.unwrap() > 1 << 20);
        }
    }

    #[test]
    fn too_small_inputs_and_zero_batches_are_refused() {
        let err = bench(&BenchConfig::new("vgg11", 2, [3, 8, 8]), &mut |_, _, _| {}).unwrap_err();
        assert!(err.to_string().contains("vgg11"), "{err}");
        let err = bench(
            &BenchConfig::new("lenet5", 0, [1, 28, 28]),
            &mut |_, _, _| {},
        )
        .unwrap_err();
        assert!(err.to_string().contains("batch size"), "{err}");
    }
}
