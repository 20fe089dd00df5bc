//! [`Loader`]: a dataset cut into normalised, augmented `[B, C, H, W]` batches, with the next
//! batches built on a background thread while the current one trains.
//!
//! Every random choice is a pure function of its coordinates: the order of epoch `e` comes from
//! `(seed, e)`, the augmentation of batch `b` from `(seed, e, b)`. So batch `b` of epoch `e` is
//! the same whether it is built inline, prefetched, or rebuilt after a restart.

use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use rayon::prelude::*;

use super::{Augment, Dataset, Normalize, SampleTransform};
use crate::error::{Error, Result};
use crate::{Rng, Tensor};

/// Streams of randomness derived from the one seed, kept apart so that turning augmentation on
/// does not change the shuffling.
const SHUFFLE_STREAM: u64 = 1;
const AUGMENT_STREAM: u64 = 2;
/// Samples per rayon task when a batch is built: one image is too little work to hand out.
const SAMPLES_PER_TASK: usize = 8;

/// A seed that depends on every one of `parts` (a chain of seeded xoshiro draws).
fn derive_seed(parts: &[u64]) -> u64 {
    parts
        .iter()
        .fold(0x5EED_u64, |acc, &part| Rng::seed(acc ^ part).next_u64())
}

/// The order in which epoch `epoch` visits `len` samples: a permutation of `0..len` that
/// depends only on `(seed, epoch)`, so a run resumed at epoch 7 sees epoch 7's order.
///
/// ```
/// use convgrad::data::epoch_order;
/// let order = epoch_order(10, 42, 3);
/// assert_eq!(order, epoch_order(10, 42, 3));
/// assert_ne!(order, epoch_order(10, 42, 4));
/// let mut sorted = order.clone();
/// sorted.sort();
/// assert_eq!(sorted, (0..10).collect::<Vec<_>>());
/// ```
pub fn epoch_order(len: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    Rng::seed(derive_seed(&[seed, SHUFFLE_STREAM, epoch])).shuffle(&mut order);
    order
}

/// One batch: images `[B, C, H, W]` (normalised, augmented) and their labels.
#[derive(Clone, Debug)]
pub struct Batch {
    pub images: Tensor,
    pub labels: Vec<usize>,
    /// Position of this batch in its epoch.
    pub index: usize,
}

/// Cuts a [`Dataset`] into batches; see the [module docs](super) for an example.
///
/// Defaults: no shuffling, no augmentation, pixels scaled to `[0, 1]` ([`Normalize::identity`]),
/// the last partial batch kept, two batches prefetched.
#[derive(Clone, Debug)]
pub struct Loader {
    dataset: Arc<Dataset>,
    batch_size: usize,
    seed: u64,
    shuffle: bool,
    drop_last: bool,
    normalize: Normalize,
    augment: Augment,
    prefetch: usize,
}

impl Loader {
    pub fn new(dataset: Arc<Dataset>, batch_size: usize) -> Result<Loader> {
        if batch_size == 0 {
            return Err(Error::invalid(
                "Loader::new",
                "batch size must be at least 1",
            ));
        }
        let channels = dataset.channels();
        Ok(Loader {
            dataset,
            batch_size,
            seed: 0,
            shuffle: false,
            drop_last: false,
            normalize: Normalize::identity(channels),
            augment: Augment::default(),
            prefetch: 2,
        })
    }

    /// Shuffles each epoch in the order [`epoch_order`]`(len, seed, epoch)`; the seed also
    /// drives augmentation.
    pub fn shuffle(mut self, seed: u64) -> Loader {
        self.seed = seed;
        self.shuffle = true;
        self
    }

    /// Sets the seed without shuffling (for augmentation of an unshuffled stream).
    pub fn seed(mut self, seed: u64) -> Loader {
        self.seed = seed;
        self
    }

    /// Drops the last batch of an epoch when it is smaller than the batch size.
    pub fn drop_last(mut self, drop_last: bool) -> Loader {
        self.drop_last = drop_last;
        self
    }

    /// Normalises with `normalize`, which must have one mean and std per channel.
    pub fn normalize(mut self, normalize: Normalize) -> Result<Loader> {
        if normalize.channels() != self.dataset.channels() {
            return Err(Error::invalid(
                "Loader::normalize",
                format!(
                    "{} normalisation channels for images of shape {:?}",
                    normalize.channels(),
                    self.dataset.sample_shape()
                ),
            ));
        }
        self.normalize = normalize;
        Ok(self)
    }

    /// Augments every sample (use it for training only).
    pub fn augment(mut self, augment: Augment) -> Loader {
        self.augment = augment;
        self
    }

    /// How many batches [`epoch`](Self::epoch) builds ahead on its background thread; 0 builds
    /// each batch in the caller's thread when asked for.
    pub fn prefetch(mut self, batches: usize) -> Loader {
        self.prefetch = batches;
        self
    }

    pub fn dataset(&self) -> &Arc<Dataset> {
        &self.dataset
    }

    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Batches per epoch.
    pub fn num_batches(&self) -> usize {
        let len = self.dataset.len();
        if self.drop_last {
            len / self.batch_size
        } else {
            len.div_ceil(self.batch_size)
        }
    }

    /// The sample order of `epoch`: [`epoch_order`] when shuffling, else `0..len`.
    pub fn epoch_order(&self, epoch: u64) -> Vec<usize> {
        if self.shuffle {
            epoch_order(self.dataset.len(), self.seed, epoch)
        } else {
            (0..self.dataset.len()).collect()
        }
    }

    /// Batch `index` of `epoch`, built now in this thread; `None` past the last batch.
    /// The same batch the iterator yields, at the cost of recomputing the epoch's order.
    pub fn batch(&self, epoch: u64, index: usize) -> Option<Batch> {
        (index < self.num_batches()).then(|| self.build(&self.epoch_order(epoch), epoch, index))
    }

    /// The batches of `epoch`, in order. Dropping the iterator (or calling
    /// [`Batches::stop`]) stops the background thread.
    pub fn epoch(&self, epoch: u64) -> Batches {
        self.epoch_from(epoch, 0)
    }

    /// The batches of `epoch` from batch `first` on: resuming a run part-way through an epoch.
    pub fn epoch_from(&self, epoch: u64, first: usize) -> Batches {
        let order = self.epoch_order(epoch);
        let end = self.num_batches();
        let next = first.min(end);
        if self.prefetch == 0 {
            let source = Source::Inline {
                loader: self.clone(),
                order,
                epoch,
            };
            return Batches { source, next, end };
        }
        let (sender, receiver) = sync_channel(self.prefetch);
        let loader = self.clone();
        let worker = std::thread::Builder::new()
            .name("convgrad-prefetch".into())
            .spawn(move || {
                for index in next..end {
                    // A closed channel means the consumer stopped: nothing more to build.
                    if sender.send(loader.build(&order, epoch, index)).is_err() {
                        break;
                    }
                }
            })
            .expect("spawn the prefetch thread");
        let source = Source::Prefetch {
            receiver: Some(receiver),
            worker: Some(worker),
        };
        Batches { source, next, end }
    }

    /// Builds batch `index` from the epoch's `order`, its samples in parallel.
    fn build(&self, order: &[usize], epoch: u64, index: usize) -> Batch {
        let start = index * self.batch_size;
        let picked = &order[start..(start + self.batch_size).min(order.len())];
        // Drawn in sample order before the parallel part, so threads cannot change them.
        let mut rng = Rng::seed(derive_seed(&[
            self.seed,
            AUGMENT_STREAM,
            epoch,
            index as u64,
        ]));
        let transforms: Vec<SampleTransform> = picked
            .iter()
            .map(|_| self.augment.sample(&mut rng))
            .collect();
        let shape = self.dataset.sample_shape();
        let sample_len = self.dataset.sample_len();
        let mut data = vec![0.0f32; picked.len() * sample_len];
        data.par_chunks_mut(sample_len)
            .zip(picked.par_iter().zip(transforms.par_iter()))
            .with_min_len(SAMPLES_PER_TASK)
            .for_each(|(out, (&sample, transform))| {
                transform.write(self.dataset.image(sample), shape, &self.normalize, out);
            });
        let [channels, height, width] = shape;
        Batch {
            images: Tensor::from_parts(data, &[picked.len(), channels, height, width]),
            labels: picked
                .iter()
                .map(|&sample| self.dataset.label(sample))
                .collect(),
            index,
        }
    }
}

/// Iterator over the batches of an epoch, from [`Loader::epoch`].
pub struct Batches {
    source: Source,
    next: usize,
    end: usize,
}

enum Source {
    Inline {
        loader: Loader,
        order: Vec<usize>,
        epoch: u64,
    },
    Prefetch {
        receiver: Option<Receiver<Batch>>,
        worker: Option<JoinHandle<()>>,
    },
}

impl Batches {
    /// Stops early: the background thread finishes the batch in hand, then exits.
    pub fn stop(self) {
        drop(self);
    }
}

impl Iterator for Batches {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.next >= self.end {
            return None;
        }
        let batch = match &mut self.source {
            Source::Inline {
                loader,
                order,
                epoch,
            } => loader.build(order, *epoch, self.next),
            Source::Prefetch { receiver, worker } => {
                match receiver.as_ref().map(Receiver::recv) {
                    Some(Ok(batch)) => batch,
                    _ => {
                        // The worker hung up before the end: it panicked. Pass the panic on
                        // rather than end the epoch early without a word.
                        if let Some(Err(panic)) = worker.take().map(JoinHandle::join) {
                            std::panic::resume_unwind(panic);
                        }
                        self.next = self.end;
                        return None;
                    }
                }
            }
        };
        self.next += 1;
        Some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.end - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Batches {}

impl Drop for Batches {
    fn drop(&mut self) {
        if let Source::Prefetch { receiver, worker } = &mut self.source {
            // Closing the channel first makes the worker's next send fail, so it exits.
            drop(receiver.take());
            if let Some(worker) = worker.take() {
                let _ = worker.join();
            }
        }
    }
}

#[cfg(test)]
#[path = "loader_tests.rs"]
mod tests;
