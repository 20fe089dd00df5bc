//! Datasets: IDX (MNIST, Fashion-MNIST), CIFAR-10 binary batches and image folders; batching,
//! shuffling, normalisation and augmentation.
//!
//! # Storage
//!
//! A [`Dataset`] keeps its images as **bytes**, one contiguous `Vec<u8>` in `[N, C, H, W]`
//! order, exactly as every supported format stores them. Fashion-MNIST's 60,000 training images
//! take 47 MB this way instead of 188 MB as `f32`, CIFAR-10's 50,000 take 154 MB instead of
//! 614 MB. The conversion to `f32` happens when a batch is built, fused with normalisation and
//! augmentation in a single pass over the batch: reading a quarter of the bytes pays for it.
//!
//! # Formats and what is checked
//!
//! - **IDX** ([`read_idx`], [`load_fashion_mnist`], [`load_mnist`]): a 4-byte magic number
//!   (`0x00000803` for u8 images `[N, H, W]`, `0x00000801` for u8 labels `[N]`), one big-endian
//!   `u32` per dimension, then the bytes. Files may be gzipped; gzip is recognised by its magic
//!   bytes `1f 8b`, not by the file name. The header must describe exactly the bytes that follow:
//!   a shortfall or an excess is an error, and so is a header claiming more than the file could
//!   hold, which is caught *before* anything of the claimed size is allocated (for gzip, deflate
//!   expands at most 1032:1, and the data is read with a limit of the claimed size plus one byte).
//!   Images and labels must agree in count, and every label must be below the class count.
//! - **CIFAR-10** ([`load_cifar10`]): `data_batch_1.bin` ... `data_batch_5.bin` and
//!   `test_batch.bin`, records of 1 label byte and 3,072 pixel bytes (3 x 32 x 32, CHW). Each file
//!   must be a whole number of records and every label below 10. Class names come from
//!   `batches.meta.txt` when it is present.
//! - **Image folders** ([`load_image_folder`]), as torchvision's `ImageFolder`: one sub-directory
//!   per class, classes numbered in sorted order, PNG and JPEG files decoded in parallel,
//!   converted to 1 (luma) or 3 (RGB) channels and resized (bilinear) to a requested size.
//!
//! Errors name the file: [`Error::Io`](crate::Error::Io) when it cannot be read (a missing
//! dataset says where it was looked for and how to install it),
//! [`Error::Format`](crate::Error::Format) when its contents are wrong.
//!
//! # Batches
//!
//! A [`Loader`] turns a dataset into `[B, C, H, W]` tensors and label vectors. Everything random
//! is a pure function of `(seed, epoch)` or `(seed, epoch, batch)`: the order of an epoch is
//! [`epoch_order`], and each batch's augmentation ([`Augment`]: random crop with zero padding,
//! horizontal flip) draws from an [`Rng`](crate::Rng) derived from its own coordinates. A resumed
//! run therefore sees the same batches, and the batches do not depend on which thread built them.
//! [`Loader::epoch`] builds the next batches on a background thread while the caller trains.
//!
//! ```
//! use std::sync::Arc;
//! use convgrad::data::{Augment, Dataset, Loader, Normalize};
//!
//! // Four 1x2x2 images of classes 0 and 1.
//! let pixels: Vec<u8> = (0..16).map(|v| v * 16).collect();
//! let data = Dataset::new(pixels, vec![0, 1, 0, 1], [1, 2, 2], vec!["a".into(), "b".into()])?;
//! let loader = Loader::new(Arc::new(data), 3)?
//!     .shuffle(42)
//!     .normalize(Normalize::new(&[0.5], &[0.25])?)?
//!     .augment(Augment { pad: 1, flip: true });
//! let shapes: Vec<Vec<usize>> = loader.epoch(0).map(|b| b.images.shape().to_vec()).collect();
//! assert_eq!(shapes, [vec![3, 1, 2, 2], vec![1, 1, 2, 2]]); // the partial batch is kept
//! # Ok::<(), convgrad::Error>(())
//! ```

mod augment;
mod cifar;
mod dataset;
mod folder;
mod idx;
mod loader;
mod mnist;
mod resize;
#[cfg(test)]
pub(crate) mod testutil;

pub use augment::{Augment, Normalize, SampleTransform};
pub use cifar::{cifar10_from_bytes, load_cifar10, CIFAR10_CLASSES};
pub use dataset::Dataset;
pub use folder::load_image_folder;
pub use idx::{idx_from_bytes, read_idx, IdxArray, MAX_IDX_BYTES};
pub use loader::{epoch_order, Batch, Batches, Loader};
pub use mnist::{
    load_fashion_mnist, load_idx, load_mnist, FASHION_MNIST_CLASSES, FASHION_MNIST_DIR,
    MNIST_CLASSES,
};
pub use resize::resize_images;
