//! MNIST and Fashion-MNIST: a pair of IDX files (images, labels) per split.

use std::path::{Path, PathBuf};

use super::idx::{find_file, read_idx};
use super::Dataset;
use crate::error::{Error, Result};

/// Where `apt-get install dataset-fashion-mnist` puts the four `.gz` files.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Fashion-MNIST's ten classes (Zalando), in label order.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// MNIST's ten classes: the digits.
pub const MNIST_CLASSES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// Loads an images file (IDX, `[N, H, W]` bytes) and a labels file (IDX, `[N]` bytes) into a
/// one-channel [`Dataset`]. The counts must agree and every label must be below
/// `class_names.len()`; the error names the file and, for a label, its index.
pub fn load_idx(
    images: impl AsRef<Path>,
    labels: impl AsRef<Path>,
    class_names: &[&str],
) -> Result<Dataset> {
    let (images_path, labels_path) = (images.as_ref(), labels.as_ref());
    let images = read_idx(images_path, 3)?;
    let labels = read_idx(labels_path, 1)?;
    let [count, height, width] = images.dims[..] else {
        unreachable!("read_idx(_, 3) returns three dimensions")
    };
    let format_error = |path: &Path, message: String| Error::Format {
        path: path.to_path_buf(),
        message,
    };
    if height == 0 || width == 0 {
        return Err(format_error(
            images_path,
            format!("images of {height}x{width} pixels hold nothing"),
        ));
    }
    if labels.dims[0] != count {
        return Err(format_error(
            labels_path,
            format!(
                "{} labels for the {count} images of {}",
                labels.dims[0],
                images_path.display()
            ),
        ));
    }
    if let Some((index, &label)) = labels
        .data
        .iter()
        .enumerate()
        .find(|&(_, &label)| usize::from(label) >= class_names.len())
    {
        return Err(format_error(
            labels_path,
            format!(
                "label {label} at index {index} is not below the class count {}",
                class_names.len()
            ),
        ));
    }
    let labels = labels.data.into_iter().map(usize::from).collect();
    let names = class_names.iter().map(|name| name.to_string()).collect();
    Dataset::new(images.data, labels, [1, height, width], names)
}

/// Loads Fashion-MNIST's training (60,000) or test (10,000) images from `dir`, which holds
/// `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and
/// `t10k-labels-idx1-ubyte`, each gzipped (`.gz`) or not. Most users want
/// [`FASHION_MNIST_DIR`]; a missing file is an [`Error::Io`] naming every path looked for and
/// how to install the dataset.
///
/// ```no_run
/// use convgrad::data::{load_fashion_mnist, FASHION_MNIST_DIR};
/// let train = load_fashion_mnist(FASHION_MNIST_DIR, true)?;
/// assert_eq!((train.len(), train.sample_shape()), (60_000, [1, 28, 28]));
/// assert_eq!(train.class_names()[9], "Ankle boot");
/// # Ok::<(), convgrad::Error>(())
/// ```
pub fn load_fashion_mnist(dir: impl AsRef<Path>, train: bool) -> Result<Dataset> {
    let hint = format!(
        "install it with `apt-get install dataset-fashion-mnist` (files in {FASHION_MNIST_DIR}/) \
         or pass `--data DIR` for a directory holding these files"
    );
    load_split(
        dir.as_ref(),
        train,
        "Fashion-MNIST",
        &FASHION_MNIST_CLASSES,
        &hint,
    )
}

/// Loads MNIST from `dir`, with the same file names and checks as [`load_fashion_mnist`].
pub fn load_mnist(dir: impl AsRef<Path>, train: bool) -> Result<Dataset> {
    let hint = "put MNIST's four IDX files in a directory and pass `--data DIR` (Fashion-MNIST, \
                same format: `apt-get install dataset-fashion-mnist`)";
    load_split(dir.as_ref(), train, "MNIST", &MNIST_CLASSES, hint)
}

fn load_split(
    dir: &Path,
    train: bool,
    name: &str,
    class_names: &[&str],
    hint: &str,
) -> Result<Dataset> {
    let prefix = if train { "train" } else { "t10k" };
    let candidates =
        |stem: String| -> Vec<PathBuf> { vec![dir.join(format!("{stem}.gz")), dir.join(stem)] };
    let images = find_file(candidates(format!("{prefix}-images-idx3-ubyte")));
    let labels = find_file(candidates(format!("{prefix}-labels-idx1-ubyte")));
    match (images, labels) {
        (Ok(images), Ok(labels)) => load_idx(images, labels, class_names),
        (images, labels) => {
            let looked_for: Vec<String> = [images, labels]
                .into_iter()
                .flat_map(|found| match found {
                    Ok(path) => vec![path],
                    Err(paths) => paths,
                })
                .map(|path| path.display().to_string())
                .collect();
            let split = if train { "training" } else { "test" };
            Err(Error::Io {
                path: dir.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!(
                        "{name} {split} files not found (looked for {}); {hint}",
                        looked_for.join(", ")
                    ),
                ),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::testutil::{gzip, idx_bytes, TempDir};

    /// Writes a split of `count` 3x2 images whose pixels encode (image, position).
    fn write_split(dir: &TempDir, prefix: &str, count: u32, labels: &[u8], gzipped: bool) {
        let pixels: Vec<u8> = (0..count * 6).map(|v| v as u8).collect();
        let ext = if gzipped { ".gz" } else { "" };
        let pack = |bytes: &[u8]| if gzipped { gzip(bytes) } else { bytes.to_vec() };
        let images = idx_bytes(&[count, 3, 2], &pixels);
        dir.write(&format!("{prefix}-images-idx3-ubyte{ext}"), &pack(&images));
        let labels = idx_bytes(&[labels.len() as u32], labels);
        dir.write(&format!("{prefix}-labels-idx1-ubyte{ext}"), &pack(&labels));
    }

    #[test]
    fn loads_both_splits_gzipped_or_raw() {
        let dir = TempDir::new("mnist-splits");
        write_split(&dir, "train", 4, &[0, 9, 3, 1], true);
        write_split(&dir, "t10k", 2, &[5, 6], false);
        let train = load_fashion_mnist(dir.path(), true).unwrap();
        assert_eq!((train.len(), train.sample_shape()), (4, [1, 3, 2]));
        assert_eq!(train.labels(), &[0, 9, 3, 1]);
        assert_eq!(train.image(2), &[12, 13, 14, 15, 16, 17]);
        assert_eq!(train.class_names()[0], "T-shirt/top");
        let test = load_mnist(dir.path(), false).unwrap();
        assert_eq!((test.len(), test.label(1)), (2, 6));
        assert_eq!(test.class_names()[6], "6");
    }

    #[test]
    fn counts_must_agree_and_labels_name_a_class() {
        let dir = TempDir::new("mnist-labels");
        write_split(&dir, "train", 3, &[0, 1], true);
        let text = load_fashion_mnist(dir.path(), true)
            .unwrap_err()
            .to_string();
        assert!(text.contains("2 labels for the 3 images"), "{text}");
        assert!(text.contains("train-labels-idx1-ubyte.gz"), "{text}");
        write_split(&dir, "train", 3, &[0, 10, 2], true);
        let text = load_fashion_mnist(dir.path(), true)
            .unwrap_err()
            .to_string();
        assert!(text.contains("label 10 at index 1"), "{text}");
        assert!(text.contains("train-labels-idx1-ubyte.gz"), "{text}");
    }

    #[test]
    fn missing_files_name_every_path_and_the_install_hint() {
        let dir = TempDir::new("mnist-missing");
        // Images present, labels missing: the error still lists all four paths looked for.
        write_split(&dir, "t10k", 1, &[0], true);
        std::fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte.gz")).unwrap();
        let err = load_fashion_mnist(dir.path(), false).unwrap_err();
        let text = err.to_string();
        for file in ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
            for ext in ["", ".gz"] {
                let path = dir.path().join(format!("{file}{ext}"));
                assert!(text.contains(&path.display().to_string()), "{text}");
            }
        }
        assert!(
            text.contains("apt-get install dataset-fashion-mnist"),
            "{text}"
        );
        assert!(
            text.contains(FASHION_MNIST_DIR) && text.contains("--data DIR"),
            "{text}"
        );
        assert!(
            matches!(err, Error::Io { ref source, .. } if source.kind() == std::io::ErrorKind::NotFound)
        );
        let text = load_mnist(dir.path().join("absent"), true)
            .unwrap_err()
            .to_string();
        assert!(text.contains("MNIST training files not found") && text.contains("--data DIR"));
    }

    /// Runs on machines with `apt-get install dataset-fashion-mnist` (CI); skipped elsewhere.
    #[test]
    fn real_fashion_mnist_when_installed() {
        if !Path::new(FASHION_MNIST_DIR).is_dir() {
            eprintln!("note: {FASHION_MNIST_DIR} not found, skipping the real Fashion-MNIST test");
            return;
        }
        let train = load_fashion_mnist(FASHION_MNIST_DIR, true).unwrap();
        let test = load_fashion_mnist(FASHION_MNIST_DIR, false).unwrap();
        assert_eq!((train.len(), test.len()), (60_000, 10_000));
        assert_eq!(train.sample_shape(), [1, 28, 28]);
        assert_eq!(test.sample_shape(), [1, 28, 28]);
        assert_eq!((train.num_classes(), test.num_classes()), (10, 10));
        // Balanced classes: 6,000 per class in training, 1,000 in test.
        let mut per_class = [0usize; 10];
        train
            .labels()
            .iter()
            .for_each(|&label| per_class[label] += 1);
        assert_eq!(per_class, [6_000; 10]);
        // The published normalisation constants come from this data.
        let (mean, std) = train.channel_stats().unwrap();
        assert!((mean[0] - 0.2860).abs() < 5e-4, "mean {}", mean[0]);
        assert!((std[0] - 0.3530).abs() < 5e-4, "std {}", std[0]);
    }
}
