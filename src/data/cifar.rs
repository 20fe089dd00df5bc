//! CIFAR-10's binary version: fixed-size records of one label byte and 3 x 32 x 32 pixel bytes.

use std::path::{Path, PathBuf};

use super::Dataset;
use crate::error::{Error, Result};

/// CIFAR-10's ten classes in label order (the contents of `batches.meta.txt`).
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

const SAMPLE_SHAPE: [usize; 3] = [3, 32, 32];
const PIXELS_PER_RECORD: usize = 3 * 32 * 32;
const RECORD_LEN: usize = 1 + PIXELS_PER_RECORD;
/// The sub-directory the official archive unpacks to; accepted as `dir` or inside it.
const ARCHIVE_DIR: &str = "cifar-10-batches-bin";

/// Loads CIFAR-10's training set (`data_batch_1.bin` ... `data_batch_5.bin`, 50,000 images) or
/// test set (`test_batch.bin`, 10,000 images) from `dir` or from `dir/cifar-10-batches-bin`.
///
/// Each file must be a whole number of 3,073-byte records (a label byte, then the red, green and
/// blue 32x32 planes) and every label below 10. Class names are read from `batches.meta.txt`
/// when it is there (ten non-empty lines), else they are [`CIFAR10_CLASSES`].
///
/// ```no_run
/// let train = convgrad::data::load_cifar10("data/cifar-10-batches-bin", true)?;
/// assert_eq!((train.len(), train.sample_shape()), (50_000, [3, 32, 32]));
/// # Ok::<(), convgrad::Error>(())
/// ```
pub fn load_cifar10(dir: impl AsRef<Path>, train: bool) -> Result<Dataset> {
    let mut dir = dir.as_ref().to_path_buf();
    let names: Vec<String> = if train {
        (1..=5).map(|i| format!("data_batch_{i}.bin")).collect()
    } else {
        vec!["test_batch.bin".to_string()]
    };
    if !dir.join(&names[0]).is_file() && dir.join(ARCHIVE_DIR).is_dir() {
        dir.push(ARCHIVE_DIR);
    }
    let paths: Vec<PathBuf> = names.iter().map(|name| dir.join(name)).collect();
    let missing: Vec<String> = paths
        .iter()
        .filter(|path| !path.is_file())
        .map(|path| path.display().to_string())
        .collect();
    if !missing.is_empty() {
        return Err(Error::Io {
            path: dir.clone(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "CIFAR-10 {} files not found: {} (expected {}; download the binary version, \
                     https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz, unpack it and pass \
                     `--data DIR`)",
                    if train { "training" } else { "test" },
                    missing.join(", "),
                    names.join(", ")
                ),
            ),
        });
    }

    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    // Sizes first, so the pixels are allocated once, at what the files actually hold.
    let mut total = 0;
    for path in &paths {
        total += std::fs::metadata(path).map_err(io_error(path))?.len() as usize;
    }
    let mut pixels = Vec::with_capacity(total / RECORD_LEN * PIXELS_PER_RECORD);
    let mut labels = Vec::with_capacity(total / RECORD_LEN);
    for path in &paths {
        let bytes = std::fs::read(path).map_err(io_error(path))?;
        read_records(path, &bytes, &mut pixels, &mut labels)?;
    }
    let class_names = read_class_names(&dir.join("batches.meta.txt"))?;
    Dataset::new(pixels, labels, SAMPLE_SHAPE, class_names)
}

/// Appends the records of one batch file, checking its size and its labels.
fn read_records(
    path: &Path,
    bytes: &[u8],
    pixels: &mut Vec<u8>,
    labels: &mut Vec<usize>,
) -> Result<()> {
    let format_error = |message: String| Error::Format {
        path: path.to_path_buf(),
        message,
    };
    if bytes.len() % RECORD_LEN != 0 {
        return Err(format_error(format!(
            "{} bytes are not a whole number of {RECORD_LEN}-byte records ({} records and {} \
             bytes over)",
            bytes.len(),
            bytes.len() / RECORD_LEN,
            bytes.len() % RECORD_LEN
        )));
    }
    for (index, record) in bytes.chunks_exact(RECORD_LEN).enumerate() {
        let label = usize::from(record[0]);
        if label >= CIFAR10_CLASSES.len() {
            return Err(format_error(format!(
                "label {label} of record {index} is not below the class count 10"
            )));
        }
        labels.push(label);
        pixels.extend_from_slice(&record[1..]);
    }
    Ok(())
}

/// Ten non-empty lines of `batches.meta.txt`, or the standard names when the file is absent.
fn read_class_names(path: &Path) -> Result<Vec<String>> {
    if !path.is_file() {
        return Ok(CIFAR10_CLASSES
            .iter()
            .map(|name| name.to_string())
            .collect());
    }
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let names: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(String::from)
        .collect();
    if names.len() != CIFAR10_CLASSES.len() {
        return Err(Error::Format {
            path: path.to_path_buf(),
            message: format!("{} class names, expected 10", names.len()),
        });
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::testutil::TempDir;

    /// `labels.len()` records; record `i` has every red pixel `i`, green `i + 1`, blue `i + 2`.
    fn records(labels: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for (i, &label) in labels.iter().enumerate() {
            bytes.push(label);
            for channel in 0..3 {
                bytes.extend(std::iter::repeat_n((i + channel) as u8, 1024));
            }
        }
        bytes
    }

    fn write_training_set(dir: &TempDir) {
        for i in 1..=5 {
            dir.write(&format!("data_batch_{i}.bin"), &records(&[i, 0]));
        }
    }

    #[test]
    fn round_trip_of_both_splits() {
        let dir = TempDir::new("cifar-round-trip");
        write_training_set(&dir);
        dir.write("test_batch.bin", &records(&[9, 8, 7]));
        let train = load_cifar10(dir.path(), true).unwrap();
        assert_eq!((train.len(), train.sample_shape()), (10, [3, 32, 32]));
        assert_eq!(train.labels(), &[1, 0, 2, 0, 3, 0, 4, 0, 5, 0]);
        // Planes stay CHW: second record of the first file, green plane.
        assert!(train.image(1)[1024..2048].iter().all(|&v| v == 2));
        assert_eq!(train.class_names()[3], "cat");
        let test = load_cifar10(dir.path(), false).unwrap();
        assert_eq!(test.labels(), &[9, 8, 7]);
        assert_eq!(test.image(2)[3071], 4);
    }

    #[test]
    fn finds_the_archive_subdirectory_and_reads_class_names() {
        let dir = TempDir::new("cifar-meta");
        dir.write("cifar-10-batches-bin/test_batch.bin", &records(&[0]));
        let names: String = (0..10).map(|i| format!("class{i}\n")).collect();
        dir.write(
            "cifar-10-batches-bin/batches.meta.txt",
            format!("{names}\n\n").as_bytes(),
        );
        let test = load_cifar10(dir.path(), false).unwrap();
        assert_eq!(test.class_names()[7], "class7");
        dir.write("cifar-10-batches-bin/batches.meta.txt", b"cat\ndog\n");
        let text = load_cifar10(dir.path(), false).unwrap_err().to_string();
        assert!(text.contains("2 class names, expected 10"), "{text}");
    }

    #[test]
    fn partial_records_and_bad_labels_are_errors() {
        let dir = TempDir::new("cifar-bad");
        let mut bytes = records(&[1, 2]);
        bytes.pop();
        dir.write("test_batch.bin", &bytes);
        let text = load_cifar10(dir.path(), false).unwrap_err().to_string();
        assert!(
            text.contains("test_batch.bin") && text.contains("not a whole number"),
            "{text}"
        );
        dir.write("test_batch.bin", &records(&[1, 10]));
        let text = load_cifar10(dir.path(), false).unwrap_err().to_string();
        assert!(text.contains("label 10 of record 1"), "{text}");
    }

    #[test]
    fn missing_files_are_named() {
        let dir = TempDir::new("cifar-missing");
        write_training_set(&dir);
        std::fs::remove_file(dir.path().join("data_batch_4.bin")).unwrap();
        let err = load_cifar10(dir.path(), true).unwrap_err();
        let text = err.to_string();
        let missing = dir.path().join("data_batch_4.bin");
        let found = dir.path().join("data_batch_3.bin");
        assert!(
            text.contains(&format!("not found: {} (", missing.display())),
            "{text}"
        );
        assert!(!text.contains(&found.display().to_string()), "{text}");
        assert!(matches!(err, Error::Io { .. }));
        let text = load_cifar10(dir.path().join("absent"), false)
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("test_batch.bin") && text.contains("--data DIR"),
            "{text}"
        );
    }
}
