//! Which dataset a run trains on: where its files are, how it is normalised and augmented.

use std::path::{Path, PathBuf};

use crate::data::{
    load_cifar10, load_fashion_mnist, load_image_folder, load_mnist, Augment, Dataset, Normalize,
    FASHION_MNIST_DIR,
};
use crate::error::{Error, Result};

/// Where the images come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatasetKind {
    FashionMnist,
    Mnist,
    Cifar10,
    /// One sub-directory per class, resized to `size x size` with `channels` channels.
    Folder {
        channels: usize,
        size: usize,
    },
}

impl DatasetKind {
    pub fn name(&self) -> &'static str {
        match self {
            DatasetKind::FashionMnist => "fashion-mnist",
            DatasetKind::Mnist => "mnist",
            DatasetKind::Cifar10 => "cifar10",
            DatasetKind::Folder { .. } => "folder",
        }
    }

    /// The default directory, or an error saying that `--data` is needed.
    fn default_dir(&self) -> Result<PathBuf> {
        match self {
            DatasetKind::FashionMnist => Ok(PathBuf::from(FASHION_MNIST_DIR)),
            _ => Err(Error::invalid(
                "train",
                format!("the {} dataset needs --data DIR", self.name()),
            )),
        }
    }

    /// The training and test sets. An image folder holds `train/` and `test/` (or `val/`).
    pub fn load(&self, dir: Option<&Path>) -> Result<(Dataset, Dataset)> {
        let dir = match dir {
            Some(d) => d.to_path_buf(),
            None => self.default_dir()?,
        };
        Ok(match self {
            DatasetKind::FashionMnist => (
                load_fashion_mnist(&dir, true)?,
                load_fashion_mnist(&dir, false)?,
            ),
            DatasetKind::Mnist => (load_mnist(&dir, true)?, load_mnist(&dir, false)?),
            DatasetKind::Cifar10 => (load_cifar10(&dir, true)?, load_cifar10(&dir, false)?),
            DatasetKind::Folder { channels, size } => {
                let test_dir = if dir.join("test").is_dir() {
                    dir.join("test")
                } else {
                    dir.join("val")
                };
                (
                    load_image_folder(dir.join("train"), *channels, [*size, *size])?,
                    load_image_folder(test_dir, *channels, [*size, *size])?,
                )
            }
        })
    }

    pub(super) fn normalize(&self, train: &Dataset) -> Result<Normalize> {
        match self {
            DatasetKind::FashionMnist => Ok(Normalize::fashion_mnist()),
            DatasetKind::Mnist => Ok(Normalize::mnist()),
            DatasetKind::Cifar10 => Ok(Normalize::cifar10()),
            DatasetKind::Folder { .. } => Normalize::from_dataset(train),
        }
    }

    pub(super) fn augment(&self) -> Augment {
        match self {
            DatasetKind::Cifar10 => Augment::cifar10(),
            _ => Augment {
                pad: 0,
                flip: false,
            },
        }
    }
}
