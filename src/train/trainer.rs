//! The training loop: data in, a model of the zoo trained epoch by epoch, and into the output
//! directory `checkpoint.safetensors`, `metrics.csv` and `curves.svg` after every epoch.
//!
//! Every random choice is a function of the seed and the epoch (data order, augmentation,
//! dropout), and a checkpoint holds the parameters, the running statistics and the optimiser's
//! state, so `--resume` continues exactly where an interrupted run stopped.

use std::fs;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::checkpoint::METRICS_KEY;
use super::nonfinite::{
    first_non_finite_parameter, forward_loss, locate_non_finite, non_finite, non_finite_error,
    NonFiniteStop, NonFiniteValue,
};
use super::{
    aux_weight, curves_svg, from_csv, load_checkpoint, save_checkpoint, to_csv, EpochMetrics,
    TrainConfig,
};
use crate::data::{resize_images, Dataset, Loader};
use crate::error::{Error, Result};
use crate::graph::{Graph, ParamStore};
use crate::io::atomic::write_atomic;
use crate::models::{self, ModelConfig};
use crate::optim::{trainable_grads, Schedule};
use crate::{Rng, Tensor};

/// Progress of one training step, for a progress display.
#[derive(Clone, Copy, Debug)]
pub struct StepProgress {
    pub epoch: usize,
    pub batch: usize,
    pub batches: usize,
    /// Running means over the epoch so far.
    pub loss: f64,
    pub accuracy: f64,
    pub images_per_second: f64,
}

/// Receives the training's progress (the CLI draws progress bars with it).
pub trait Observer {
    fn epoch_started(&mut self, _epoch: usize, _epochs: usize, _batches: usize) {}
    fn step(&mut self, _progress: &StepProgress) {}
    fn evaluating(&mut self, _epoch: usize) {}
    fn epoch_finished(&mut self, _metrics: &EpochMetrics) {}
    fn note(&mut self, _message: &str) {}
}

/// An observer that ignores everything.
pub struct Quiet;
impl Observer for Quiet {}

/// Number of correct arg-max predictions in `logits` `[N, C]`.
pub fn correct_predictions(logits: &Tensor, labels: &[usize]) -> usize {
    let classes = logits.shape()[1];
    logits
        .data()
        .chunks_exact(classes)
        .zip(labels)
        .filter(|(row, &label)| {
            let best = row
                .iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
                    if v > bv {
                        (i, v)
                    } else {
                        (bi, bv)
                    }
                });
            best.0 == label
        })
        .count()
}

/// Loss and accuracy of `graph` on `loader`'s batches, in evaluation mode.
pub fn evaluate(
    graph: &Graph,
    store: &ParamStore,
    loader: &Loader,
) -> Result<(f64, f64, Vec<usize>)> {
    let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
    let mut predictions = Vec::with_capacity(loader.dataset().len());
    let plan = graph.inference(store)?;
    for batch in loader.epoch(0) {
        let logits = plan.forward(&batch.images)?;
        let n = batch.labels.len();
        loss_sum +=
            crate::functional::cross_entropy(&logits, &batch.labels)?.item()? as f64 * n as f64;
        correct += correct_predictions(&logits, &batch.labels);
        let classes = logits.shape()[1];
        predictions.extend(logits.data().chunks_exact(classes).map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
                    if v > bv {
                        (i, v)
                    } else {
                        (bi, bv)
                    }
                })
                .0
        }));
        seen += n;
    }
    let seen = seen.max(1) as f64;
    Ok((loss_sum / seen, correct as f64 / seen, predictions))
}

/// What [`train`] leaves behind.
#[derive(Clone, Debug)]
pub struct TrainReport {
    pub metrics: Vec<EpochMetrics>,
    pub checkpoint: PathBuf,
}

/// The model for a dataset: its channels and classes, at the dataset's image size.
pub fn model_for(name: &str, data: &Dataset) -> Result<Graph> {
    let [c, h, w] = data.sample_shape();
    let info = models::info(name)?;
    if h < info.min_size || w < info.min_size {
        return Err(Error::invalid(
            "train",
            format!(
                "{name} needs images of at least {0}x{0}, the dataset's are {h}x{w}; \
                 resize them (`--resize {0}` or more) or pick a model that fits small images",
                info.min_size
            ),
        ));
    }
    info.build(&ModelConfig::new(data.num_classes()).input([c, h, w]))
}

/// Trains `config.model` on `config.dataset`; see the module documentation.
pub fn train(config: &TrainConfig, observer: &mut dyn Observer) -> Result<TrainReport> {
    if config.epochs == 0 || config.batch_size == 0 {
        return Err(Error::invalid(
            "train",
            "epochs and batch size must be at least 1",
        ));
    }
    // Cheap checks first, so a typo does not wait for the dataset to load.
    models::info(&config.model)?;
    let schedule = Schedule::parse(&config.schedule, config.lr, config.epochs)?;
    let mut optimizer = config.make_optimizer()?;
    let (train_set, test_set) = config.dataset.load(config.data_dir.as_deref())?;
    let (train_set, test_set) = match config.resize {
        Some(size) => (
            resize_images(&train_set, size)?,
            resize_images(&test_set, size)?,
        ),
        None => (train_set, test_set),
    };
    let graph = model_for(&config.model, &train_set)?;
    let normalize = config.dataset.normalize(&train_set)?;
    let train_loader = Loader::new(Arc::new(train_set), config.batch_size)?
        .shuffle(config.seed)
        .normalize(normalize.clone())?
        .augment(config.augment());
    let test_loader =
        Loader::new(Arc::new(test_set), config.batch_size.max(256))?.normalize(normalize)?;
    fs::create_dir_all(&config.out_dir).map_err(|source| Error::Io {
        path: config.out_dir.clone(),
        source,
    })?;
    let checkpoint_path = config.out_dir.join("checkpoint.safetensors");
    let metrics_path = config.out_dir.join("metrics.csv");
    let curves_path = config.out_dir.join("curves.svg");
    let fingerprint = config.fingerprint();

    let title = format!(
        "{} on {}, {} (lr {}), batch {}, seed {}",
        config.model,
        config.dataset.name(),
        config.optimizer.name(),
        config.lr,
        config.batch_size,
        config.seed
    );
    // Writes metrics.csv and curves.svg unless they already hold exactly this history.
    let write_history = |history: &[EpochMetrics]| -> Result<()> {
        for (path, contents) in [
            (&metrics_path, to_csv(history)),
            (&curves_path, curves_svg(&title, history)),
        ] {
            if fs::read(path).ok().as_deref() != Some(contents.as_bytes()) {
                write_atomic(path, contents.as_bytes())?;
            }
        }
        Ok(())
    };

    let resumable = config.resume && checkpoint_path.exists();
    if config.resume && !resumable {
        // A run killed before its first checkpoint has nothing to resume: start it again.
        observer.note(&format!(
            "no checkpoint at {} yet: starting from epoch 1",
            checkpoint_path.display()
        ));
    }
    let (mut store, mut history) = if resumable {
        let checkpoint = load_checkpoint(&checkpoint_path)?;
        for (key, value) in &fingerprint {
            if checkpoint.metadata.get(key) != Some(value) {
                return Err(Error::invalid(
                    "train --resume",
                    format!(
                        "{}: the checkpoint was made with {key} = {:?}, this run has {value:?}",
                        checkpoint_path.display(),
                        checkpoint.metadata.get(key)
                    ),
                ));
            }
        }
        let done = checkpoint.epoch(&checkpoint_path)?;
        let store = checkpoint.store_for(&graph)?;
        optimizer.load_state(&checkpoint.optimizer)?;
        let history = match checkpoint.history(&checkpoint_path)? {
            Some(history) => history,
            None => {
                // A checkpoint without its history: take it from metrics.csv.
                let text = fs::read_to_string(&metrics_path).map_err(|source| Error::Io {
                    path: metrics_path.clone(),
                    source,
                })?;
                let mut history = from_csv(&metrics_path, &text)?;
                history.retain(|m| m.epoch <= done);
                history
            }
        };
        if history.len() != done || history.iter().enumerate().any(|(i, m)| m.epoch != i + 1) {
            return Err(Error::Format {
                path: checkpoint_path.clone(),
                message: format!(
                    "holds the metrics of epochs {:?} but was written after epoch {done}",
                    history.iter().map(|m| m.epoch).collect::<Vec<_>>()
                ),
            });
        }
        observer.note(&format!(
            "resuming after epoch {done} from {}",
            checkpoint_path.display()
        ));
        // A run killed between the checkpoint and the other files left them one epoch behind.
        write_history(&history)?;
        (store, history)
    } else {
        (
            ParamStore::init(&graph, &mut Rng::seed(config.seed)),
            Vec::new(),
        )
    };

    let aux = aux_weight(&config.model);
    let kinds = store.kinds().to_vec();
    for epoch in history.len() + 1..=config.epochs {
        let started = Instant::now();
        let lr = schedule.lr_at(epoch - 1);
        optimizer.set_lr(lr);
        let batches = config.max_batches.map_or(train_loader.num_batches(), |m| {
            m.min(train_loader.num_batches())
        });
        observer.epoch_started(epoch, config.epochs, batches);
        let mut dropout_rng =
            Rng::seed(config.seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
        let mut batch_iter = train_loader.epoch(epoch as u64 - 1);
        for step in 0..batches {
            let Some(batch) = batch_iter.next() else {
                break;
            };
            // Kept to replay the step if a value turns out not to be finite.
            let (images, rng_before) = (batch.images.clone(), dropout_rng.clone());
            let (tape, out, loss) = forward_loss(
                &graph,
                &store,
                batch.images,
                &batch.labels,
                &mut dropout_rng,
                aux,
                true,
            )?;
            let global_step = history.len() * batches + step + 1;
            let stop = |what: String, found: Option<NonFiniteValue>| {
                non_finite_error(NonFiniteStop {
                    what,
                    epoch,
                    step: global_step,
                    batch: step + 1,
                    batches,
                    found,
                    checkpoint: &checkpoint_path,
                })
            };
            let locate = || {
                locate_non_finite(
                    &graph,
                    &store,
                    &images,
                    &batch.labels,
                    rng_before.clone(),
                    aux,
                )
            };
            let loss_value = tape.value(loss)?.item()?;
            if !loss_value.is_finite() {
                return Err(stop(format!("the loss became {loss_value}"), locate()?));
            }
            let n = batch.labels.len();
            correct += correct_predictions(tape.value(out.output)?, &batch.labels);
            loss_sum += loss_value as f64 * n as f64;
            seen += n;
            let mut grads = tape.backward(loss)?;
            let grads = trainable_grads(&kinds, &out.params, &mut grads)?;
            if grads.iter().flatten().any(|g| non_finite(g).0 > 0) {
                return Err(stop("a gradient became non-finite".into(), locate()?));
            }
            optimizer.step(store.tensors_mut(), &grads)?;
            if let Some(found) = first_non_finite_parameter(&store) {
                return Err(stop(
                    format!("the optimiser's update (lr {lr}) overflowed"),
                    Some(found),
                ));
            }
            for (slot, value) in out.buffer_updates {
                store.tensors_mut()[slot] = value;
            }
            observer.step(&StepProgress {
                epoch,
                batch: step + 1,
                batches,
                loss: loss_sum / seen as f64,
                accuracy: correct as f64 / seen as f64,
                images_per_second: seen as f64 / started.elapsed().as_secs_f64(),
            });
        }
        batch_iter.stop();
        let train_seconds = started.elapsed().as_secs_f64();
        observer.evaluating(epoch);
        let (test_loss, test_acc, _) = evaluate(&graph, &store, &test_loader)?;
        let metrics = EpochMetrics {
            epoch,
            train_loss: loss_sum / seen.max(1) as f64,
            train_acc: correct as f64 / seen.max(1) as f64,
            test_loss,
            test_acc,
            seconds: started.elapsed().as_secs_f64(),
            lr,
            images_per_second: seen as f64 / train_seconds,
        };
        history.push(metrics);
        let mut metadata = fingerprint.clone();
        metadata.insert("convgrad.epoch".into(), epoch.to_string());
        metadata.insert(METRICS_KEY.into(), to_csv(&history));
        // The checkpoint's rename commits the epoch; the other files follow from it.
        save_checkpoint(&checkpoint_path, &store, &optimizer.state(), &metadata)?;
        write_history(&history)?;
        observer.epoch_finished(&metrics);
    }
    Ok(TrainReport {
        metrics: history,
        checkpoint: checkpoint_path,
    })
}
