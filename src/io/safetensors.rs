//! Reading and writing safetensors files.
//!
//! Reading validates the whole file before use (the `safetensors` crate checks that the header
//! is well formed and that every tensor's offsets lie inside the data the file actually holds,
//! so a header that claims more than the file has is an error, never a large allocation) and
//! converts F16, BF16, F64 and integer tensors to f32. Writing goes to a temporary file in the
//! same directory, which is flushed to disk and then renamed over the target: a crash leaves
//! either the old file or the new one, never half of one.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use super::atomic::write_atomic;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::error::{Error, Result};
use crate::Tensor;

/// Tensors by name, in file order, with the file's string metadata.
#[derive(Clone, Debug, Default)]
pub struct NamedTensors {
    pub tensors: Vec<(String, Tensor)>,
    pub metadata: HashMap<String, String>,
}

impl NamedTensors {
    /// The tensor of this name.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// Removes and returns the tensor of this name.
    pub fn take(&mut self, name: &str) -> Option<Tensor> {
        let i = self.tensors.iter().position(|(n, _)| n == name)?;
        Some(self.tensors.remove(i).1)
    }
}

fn format_error(path: &Path, message: impl Into<String>) -> Error {
    Error::Format {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// IEEE half precision to f32, exactly.
fn f16_to_f32(bits: u16) -> f32 {
    let sign = ((bits >> 15) as u32) << 31;
    let exponent = ((bits >> 10) & 0x1f) as u32;
    let mantissa = (bits & 0x3ff) as u32;
    let value = match (exponent, mantissa) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: normalise it.
            let shift = m.leading_zeros() - 21;
            let m = (m << shift) & 0x3ff;
            sign | ((113 - shift) << 23) | (m << 13)
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(value)
}

fn to_f32(path: &Path, name: &str, view: &TensorView<'_>) -> Result<Vec<f32>> {
    let bytes = view.data();
    let convert = |size: usize, f: &dyn Fn(&[u8]) -> f32| -> Vec<f32> {
        bytes.chunks_exact(size).map(f).collect()
    };
    Ok(match view.dtype() {
        Dtype::F32 => convert(4, &|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        Dtype::F64 => convert(8, &|b| {
            f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32
        }),
        Dtype::F16 => convert(2, &|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]]))),
        Dtype::BF16 => convert(2, &|b| {
            f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16)
        }),
        Dtype::I64 => convert(8, &|b| i64::from_le_bytes(b.try_into().expect("8 bytes")) as f32),
        Dtype::I32 => convert(4, &|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32),
        Dtype::U8 => convert(1, &|b| b[0] as f32),
        other => {
            return Err(format_error(
                path,
                format!("tensor '{name}' has dtype {other:?}; convgrad reads F32, F16, BF16, F64, I64, I32 and U8"),
            ))
        }
    })
}

/// Says what a truncated or padded file should have held, before the `safetensors` crate parses
/// it: the first 8 bytes give the header's length, and the largest `data_offsets` end in the
/// header gives the data's length. Errors only; a file that passes still goes through the
/// crate's full validation.
fn check_lengths(path: &Path, bytes: &[u8]) -> Result<()> {
    let file_len = bytes.len();
    let Some(length_bytes) = bytes.get(..8) else {
        return Err(format_error(
            path,
            format!(
                "not a valid safetensors file: it is {file_len} bytes long, shorter than the \
                 8-byte header length every safetensors file starts with"
            ),
        ));
    };
    let header_len = u64::from_le_bytes(length_bytes.try_into().expect("8 bytes"));
    let after_length = (file_len - 8) as u64;
    if header_len > after_length {
        return Err(format_error(
            path,
            format!(
                "not a valid safetensors file: its header claims {header_len} bytes but only \
                 {after_length} follow the length (truncated, or not a safetensors file)"
            ),
        ));
    }
    let header = &bytes[8..8 + header_len as usize];
    let Some(data_len) = declared_data_len(header) else {
        return Ok(()); // not parseable here: the crate's own error will say why
    };
    let held = after_length - header_len;
    if data_len > held {
        return Err(format_error(
            path,
            format!(
                "truncated: its header describes {data_len} bytes of tensor data, but the file \
                 holds only {held} ({file_len} bytes in all)"
            ),
        ));
    }
    Ok(())
}

/// The largest `data_offsets` end in a safetensors JSON header (`None` if there is none or the
/// header is not text).
fn declared_data_len(header: &[u8]) -> Option<u64> {
    let text: String = std::str::from_utf8(header)
        .ok()?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let key = "\"data_offsets\":[";
    text.match_indices(key)
        .filter_map(|(at, _)| {
            let rest = &text[at + key.len()..];
            let pair = &rest[..rest.find(']')?];
            let (_, end) = pair.split_once(',')?;
            end.parse::<u64>().ok()
        })
        .max()
}

/// Reads every tensor of a safetensors file as f32.
pub fn read_safetensors(path: impl AsRef<Path>) -> Result<NamedTensors> {
    let path = path.as_ref();
    let bytes = fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    safetensors_from_bytes(path, &bytes)
}

/// Parses a safetensors file held in memory, as [`read_safetensors`] does; `origin` names it in
/// errors. Nothing is allocated beyond the converted tensors, whose sizes the file's own bytes
/// bound (every tensor's byte range is checked against the data the file holds).
pub fn safetensors_from_bytes(origin: impl AsRef<Path>, bytes: &[u8]) -> Result<NamedTensors> {
    let path = origin.as_ref();
    check_lengths(path, bytes)?;
    let (_, metadata) = SafeTensors::read_metadata(bytes)
        .map_err(|e| format_error(path, format!("not a valid safetensors file: {e}")))?;
    let file = SafeTensors::deserialize(bytes)
        .map_err(|e| format_error(path, format!("not a valid safetensors file: {e}")))?;
    let mut names: Vec<(usize, String)> = metadata
        .tensors()
        .into_iter()
        .map(|(name, info)| (info.data_offsets.0, name))
        .collect();
    names.sort();
    let mut tensors = Vec::with_capacity(names.len());
    for (_, name) in names {
        let view = file
            .tensor(&name)
            .map_err(|e| format_error(path, format!("tensor '{name}': {e}")))?;
        let data = to_f32(path, &name, &view)?;
        tensors.push((name, Tensor::from_vec(data, view.shape())?));
    }
    Ok(NamedTensors {
        tensors,
        metadata: metadata.metadata().clone().unwrap_or_default(),
    })
}

/// The bytes of a safetensors file holding f32 `tensors` and string `metadata`; `path` names the
/// file in errors.
pub fn safetensors_bytes(
    path: impl AsRef<Path>,
    tensors: &[(String, &Tensor)],
    metadata: &HashMap<String, String>,
) -> Result<Vec<u8>> {
    let path = path.as_ref();
    let bytes_of: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, t)| t.data().iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes_of)
        .map(|((name, t), bytes)| {
            TensorView::new(Dtype::F32, t.shape().to_vec(), bytes)
                .map(|view| (name.clone(), view))
                .map_err(|e| format_error(path, format!("tensor '{name}': {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let info = (!metadata.is_empty()).then(|| metadata.clone());
    safetensors::serialize(views, info)
        .map_err(|e| format_error(path, format!("cannot serialise: {e}")))
}

/// Writes f32 tensors and string metadata to `path`, atomically (see [`write_atomic`]): a crash
/// leaves the old file or the new one, never half of one.
pub fn write_safetensors(
    path: impl AsRef<Path>,
    tensors: &[(String, &Tensor)],
    metadata: &HashMap<String, String>,
) -> Result<()> {
    let path = path.as_ref();
    write_atomic(path, &safetensors_bytes(path, tensors, metadata)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn temp_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("convgrad-st-{}-{name}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir.join("t.safetensors")
    }

    #[test]
    fn round_trip_keeps_names_shapes_values_and_metadata() {
        let path = temp_path("round");
        let a = Tensor::from_vec(vec![1.5, -2.0, 3.25, 0.0, 7.0, 8.0], &[2, 3]).unwrap();
        let b = Tensor::scalar(4.0);
        let meta = HashMap::from([("epoch".to_string(), "3".to_string())]);
        write_safetensors(
            &path,
            &[("conv.weight".into(), &a), ("step".into(), &b)],
            &meta,
        )
        .unwrap();
        let read = read_safetensors(&path).unwrap();
        assert_eq!(read.get("conv.weight"), Some(&a));
        assert_eq!(read.get("step").unwrap().item().unwrap(), 4.0);
        assert_eq!(read.metadata.get("epoch").map(String::as_str), Some("3"));
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn half_precision_converts_exactly() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24)); // smallest subnormal
        assert_eq!(f16_to_f32(0x03ff), 1023.0 * 2f32.powi(-24));
        assert!(f16_to_f32(0x7c00).is_infinite());
        assert!(f16_to_f32(0x7e00).is_nan());
    }

    #[test]
    fn truncated_and_lying_files_are_errors() {
        let path = temp_path("bad");
        let a = Tensor::ones(&[16, 16]);
        write_safetensors(&path, &[("a".into(), &a)], &HashMap::new()).unwrap();
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
        let err = read_safetensors(&path).unwrap_err().to_string();
        assert!(
            err.contains("truncated: its header describes 1024 bytes of tensor data, but the file holds only 1014"),
            "{err}"
        );
        // A header that claims an enormous length.
        let mut lying = (u64::MAX / 2).to_le_bytes().to_vec();
        lying.extend_from_slice(b"{}");
        fs::write(&path, &lying).unwrap();
        let err = read_safetensors(&path).unwrap_err().to_string();
        assert!(
            err.contains("its header claims 9223372036854775807 bytes but only 2 follow"),
            "{err}"
        );
        // A well-formed header whose one tensor claims 4 GB of data the file does not have.
        let header = br#"{"a":{"dtype":"F32","shape":[1073741824],"data_offsets":[0,4294967296]}}"#;
        let mut lying = (header.len() as u64).to_le_bytes().to_vec();
        lying.extend_from_slice(header);
        lying.extend_from_slice(&[0; 16]);
        fs::write(&path, &lying).unwrap();
        let err = read_safetensors(&path).unwrap_err().to_string();
        assert!(
            err.contains("describes 4294967296 bytes of tensor data, but the file holds only 16"),
            "{err}"
        );
        fs::write(&path, b"abc").unwrap();
        assert!(read_safetensors(&path).is_err());
        let err = read_safetensors(path.with_file_name("missing.safetensors")).unwrap_err();
        assert!(matches!(err, Error::Io { .. }));
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    /// Byte mutation of valid files, and headers whose every number is chosen at random: the
    /// reader returns tensors that match their shapes or an error, and never panics.
    mod mutated_files {
        use super::*;
        use crate::data::testutil::{mutated, mutations};
        use proptest::prelude::*;

        fn check(bytes: &[u8]) {
            if let Ok(file) = safetensors_from_bytes("fuzzed", bytes) {
                for (_, tensor) in &file.tensors {
                    assert_eq!(
                        tensor.shape().iter().product::<usize>(),
                        tensor.data().len()
                    );
                }
            }
        }

        /// A file of one tensor per dtype convgrad reads, plus metadata.
        fn valid_file(values: &[u8]) -> Vec<u8> {
            let dtypes = [
                (Dtype::F32, 4),
                (Dtype::F16, 2),
                (Dtype::BF16, 2),
                (Dtype::F64, 8),
                (Dtype::I64, 8),
                (Dtype::I32, 4),
                (Dtype::U8, 1),
            ];
            let data: Vec<Vec<u8>> = dtypes
                .iter()
                .map(|&(_, size)| values.iter().cycle().take(2 * size).copied().collect())
                .collect();
            let views: Vec<(String, TensorView<'_>)> = dtypes
                .iter()
                .zip(&data)
                .enumerate()
                .map(|(i, (&(dtype, _), bytes))| {
                    (
                        format!("t{i}"),
                        TensorView::new(dtype, vec![2, 1], bytes).unwrap(),
                    )
                })
                .collect();
            let meta = HashMap::from([("k".to_string(), "v".to_string())]);
            safetensors::serialize(views, Some(meta)).unwrap()
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

            #[test]
            fn mutated_bytes(values in proptest::collection::vec(any::<u8>(), 1..8), changes in mutations(4)) {
                check(&mutated(&valid_file(&values), &changes));
            }

            #[test]
            fn random_header_numbers(
                dtype in prop_oneof![Just("F32"), Just("F16"), Just("BF16"), Just("F64"), Just("I64"), Just("U8"), Just("BOOL"), Just("F8_E4M3")],
                shape in proptest::collection::vec(prop_oneof![0u64..4, any::<u64>(), Just(u64::MAX), Just(1 << 62)], 0..4),
                offsets in (prop_oneof![0u64..16, any::<u64>()], prop_oneof![0u64..16, any::<u64>()]),
                data_len in 0usize..32,
                header_len_delta in -2i64..3,
            ) {
                let shape: Vec<String> = shape.iter().map(u64::to_string).collect();
                let header = format!(
                    r#"{{"t":{{"dtype":"{dtype}","shape":[{}],"data_offsets":[{},{}]}}}}"#,
                    shape.join(","), offsets.0, offsets.1
                );
                let mut bytes = (header.len() as i64 + header_len_delta).max(0).to_le_bytes().to_vec();
                bytes.extend_from_slice(header.as_bytes());
                bytes.extend(std::iter::repeat_n(0x3f, data_len));
                check(&bytes);
            }
        }

        #[test]
        fn every_dtype_of_the_valid_file_reads() {
            let file = safetensors_from_bytes("valid", &valid_file(&[0, 0x3c, 1, 2])).unwrap();
            assert_eq!(file.tensors.len(), 7);
            assert_eq!(file.get("t6").unwrap().data(), &[0.0, 60.0]);
        }
    }
}
