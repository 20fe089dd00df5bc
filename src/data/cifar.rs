//! CIFAR-10's binary version: fixed-size records of one label byte and 3 x 32 x 32 pixel bytes.

use std::path::{Path, PathBuf};

use super::idx::read_capped;
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
/// The largest batch file read: 1 GiB, some 35 times an official one (10,000 records); a
/// larger file (or a sparse one that claims to be) is refused before it is read.
const MAX_FILE_BYTES: usize = 1 << 30;
/// The largest `batches.meta.txt` read (the official one has 61 bytes).
const MAX_META_BYTES: usize = 64 << 10;

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

    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for path in &paths {
        let bytes = read_capped(path, MAX_FILE_BYTES)?;
        // The first file tells how much the others will hold (five equal batches).
        if pixels.is_empty() {
            let records = bytes.len() / RECORD_LEN * paths.len();
            pixels.reserve_exact(records * PIXELS_PER_RECORD);
            labels.reserve_exact(records);
        }
        read_records(path, &bytes, &mut pixels, &mut labels)?;
    }
    let class_names = read_class_names(&dir.join("batches.meta.txt"))?;
    Dataset::new(pixels, labels, SAMPLE_SHAPE, class_names)
}

/// Parses one CIFAR-10 batch file held in memory (records of a label byte and 3,072 pixel
/// bytes) into a [`Dataset`] with the standard class names, with the checks of
/// [`load_cifar10`]; `origin` names the data in errors.
///
/// ```
/// let mut record = vec![3u8]; // a cat
/// record.extend(std::iter::repeat_n(128u8, 3 * 32 * 32));
/// let data = convgrad::data::cifar10_from_bytes("one.bin", &record)?;
/// assert_eq!((data.len(), data.label(0)), (1, 3));
/// assert!(convgrad::data::cifar10_from_bytes("cut.bin", &record[..100]).is_err());
/// # Ok::<(), convgrad::Error>(())
/// ```
pub fn cifar10_from_bytes(origin: impl AsRef<Path>, bytes: &[u8]) -> Result<Dataset> {
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    read_records(origin.as_ref(), bytes, &mut pixels, &mut labels)?;
    let class_names = CIFAR10_CLASSES.iter().map(|n| n.to_string()).collect();
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
    let bytes = read_capped(path, MAX_META_BYTES)?;
    parse_class_names(path, &bytes)
}

/// Ten non-empty lines of UTF-8 text.
fn parse_class_names(path: &Path, bytes: &[u8]) -> Result<Vec<String>> {
    let text = std::str::from_utf8(bytes).map_err(|e| Error::Format {
        path: path.to_path_buf(),
        message: format!("class names are not UTF-8 text: {e}"),
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

    /// Byte mutation of a valid batch file and of a class-name file: an error or a consistent
    /// dataset, never a panic.
    mod mutated_files {
        use super::*;
        use crate::data::testutil::{mutated, mutations};
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

            #[test]
            fn batch_file(labels in proptest::collection::vec(0u8..10, 0..4), changes in mutations(4)) {
                let bytes = mutated(&records(&labels), &changes);
                if let Ok(data) = cifar10_from_bytes("fuzzed.bin", &bytes) {
                    prop_assert_eq!(data.len() * RECORD_LEN, bytes.len());
                    prop_assert!(data.labels().iter().all(|&l| l < 10));
                }
            }

            #[test]
            fn class_names(changes in mutations(6)) {
                let text: String = CIFAR10_CLASSES.iter().map(|n| format!("{n}\n")).collect();
                let bytes = mutated(text.as_bytes(), &changes);
                if let Ok(names) = parse_class_names(Path::new("meta"), &bytes) {
                    prop_assert_eq!(names.len(), 10);
                }
            }
        }

        #[test]
        fn oversized_files_are_refused_before_reading() {
            let dir = TempDir::new("cifar-huge");
            let path = dir.write("test_batch.bin", &records(&[1]));
            // A sparse file that claims 2 GiB: refused by its size, nothing read.
            std::fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(2 << 30)
                .unwrap();
            let text = load_cifar10(dir.path(), false).unwrap_err().to_string();
            assert!(text.contains("more than the 1073741824"), "{text}");
            let meta = dir.write("batches.meta.txt", &[b'a'; 100 << 10]);
            assert!(read_class_names(&meta).is_err());
        }
    }
}
