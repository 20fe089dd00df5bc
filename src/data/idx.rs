//! The IDX format of MNIST and Fashion-MNIST, raw or gzipped, read with every size checked
//! before anything of that size is allocated.
//!
//! An IDX file is a magic number `00 00 TT DD` (`TT` the element type, `0x08` for unsigned bytes;
//! `DD` the number of dimensions), one big-endian `u32` per dimension, then the elements in
//! row-major order. Only unsigned bytes are read here: that is what image and label files hold.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use crate::error::{Error, Result};

/// IDX element type code for unsigned bytes.
const IDX_UNSIGNED_BYTE: u8 = 0x08;
/// The first two bytes of every gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Deflate cannot expand data by more than about 1032:1, so a gzip file of `n` bytes holds at
/// most `1032 * n` bytes: a header claiming more is rejected before any allocation.
const MAX_DEFLATE_RATIO: usize = 1032;
/// The most data an IDX file may hold, raw or after decompression: 4 GiB, some 90 times
/// Fashion-MNIST's training images. A file or a header beyond it is refused before it is read,
/// so a hostile header or a device file cannot make the reader exhaust memory.
pub const MAX_IDX_BYTES: usize = 1 << 32;
/// Capacity reserved up front for gzipped data, as a multiple of the compressed size; beyond it
/// the buffer grows as data actually arrives, so a lying header costs no more memory than the
/// real data (Fashion-MNIST's training images, 26 MB compressed to 47 MB, fit in one go).
const GZIP_INITIAL_RATIO: usize = 8;

/// The contents of an IDX file of unsigned bytes: its dimensions and its elements, row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Reads an IDX file of unsigned bytes with `ndims` dimensions (3 for images `[N, H, W]`, magic
/// `0x00000803`; 1 for labels `[N]`, magic `0x00000801`), gzipped or not.
///
/// Gzip is recognised by its magic bytes, whatever the file is called. The data must be exactly
/// what the header claims: a shortfall, an excess, a corrupt gzip stream or a wrong magic number
/// is an [`Error::Format`] naming the file; a file that cannot be read is an [`Error::Io`].
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("convgrad-idx-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("labels-idx1-ubyte");
/// // Magic 0x00000801, one dimension of 3, then three labels.
/// std::fs::write(&path, [0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1]).unwrap();
/// let labels = convgrad::data::read_idx(&path, 1)?;
/// assert_eq!((labels.dims, labels.data), (vec![3], vec![7, 2, 1]));
/// // One byte more than the header claims is an error.
/// std::fs::write(&path, [0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1, 0]).unwrap();
/// assert!(convgrad::data::read_idx(&path, 1).is_err());
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), convgrad::Error>(())
/// ```
pub fn read_idx(path: impl AsRef<Path>, ndims: usize) -> Result<IdxArray> {
    let path = path.as_ref();
    check_ndims(ndims)?;
    let bytes = read_capped(path, MAX_IDX_BYTES + 4 + 4 * ndims)?;
    idx_from_bytes(path, bytes, ndims)
}

/// Parses the bytes of an IDX file held in memory, raw or gzipped, exactly as [`read_idx`] does;
/// `origin` names the data in errors. Only what `bytes` holds is trusted: a header's claims are
/// checked against it (and, for gzip, against deflate's largest ratio and [`MAX_IDX_BYTES`])
/// before anything of the claimed size is allocated.
///
/// ```
/// use convgrad::data::idx_from_bytes;
/// // Magic 0x00000801, one dimension claiming 2^32 - 1 labels, and two bytes: an error.
/// let lying = vec![0, 0, 8, 1, 0xff, 0xff, 0xff, 0xff, 7, 2];
/// let err = idx_from_bytes("labels", lying, 1).unwrap_err().to_string();
/// assert!(err.contains("truncated"), "{err}");
/// ```
pub fn idx_from_bytes(origin: impl AsRef<Path>, bytes: Vec<u8>, ndims: usize) -> Result<IdxArray> {
    let path = origin.as_ref();
    check_ndims(ndims)?;
    if bytes.starts_with(&GZIP_MAGIC) {
        read_gzipped(path, &bytes, ndims)
    } else {
        read_raw(path, bytes, ndims)
    }
}

fn check_ndims(ndims: usize) -> Result<()> {
    if (1..=255).contains(&ndims) {
        Ok(())
    } else {
        Err(Error::invalid(
            "read_idx",
            format!("IDX files have 1 to 255 dimensions, not {ndims}"),
        ))
    }
}

/// The whole of a regular file of at most `limit` bytes. The size is checked before reading and
/// the read itself stops after `limit + 1` bytes, so neither a huge file nor one that grows (or a
/// device that never ends) is read into memory.
pub(crate) fn read_capped(path: &Path, limit: usize) -> Result<Vec<u8>> {
    let io_error = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io_error)?;
    let metadata = file.metadata().map_err(io_error)?;
    if !metadata.is_file() {
        return Err(format_error(path, "not a regular file"));
    }
    let too_big = |size: String| {
        format_error(
            path,
            format!("the file is {size} bytes, more than the {limit} convgrad reads"),
        )
    };
    if metadata.len() > limit as u64 {
        return Err(too_big(metadata.len().to_string()));
    }
    // The size is only a hint (the file may change), hence the limit on the read as well.
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    file.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error)?;
    if bytes.len() > limit {
        return Err(too_big("over".to_string()));
    }
    Ok(bytes)
}

fn format_error(path: &Path, message: impl Into<String>) -> Error {
    Error::Format {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn read_raw(path: &Path, mut bytes: Vec<u8>, ndims: usize) -> Result<IdxArray> {
    let header_len = 4 + 4 * ndims;
    if bytes.len() < header_len {
        if let Some(magic) = bytes.first_chunk::<4>() {
            check_magic(path, *magic, ndims)?;
        }
        return Err(format_error(
            path,
            format!(
                "file is {} bytes, shorter than the {header_len}-byte IDX header",
                bytes.len()
            ),
        ));
    }
    check_magic(path, bytes[..4].try_into().unwrap(), ndims)?;
    let dims = parse_dims(&bytes[4..header_len]);
    let claimed = payload_len(path, &dims)?;
    let held = bytes.len() - header_len;
    if held != claimed {
        return Err(format_error(
            path,
            format!(
                "header claims {dims:?} = {claimed} bytes of data but the file holds {held} ({})",
                if held < claimed {
                    "truncated"
                } else {
                    "excess bytes"
                }
            ),
        ));
    }
    // Shifts the data down in place rather than copying it to a second buffer.
    bytes.drain(..header_len);
    Ok(IdxArray { dims, data: bytes })
}

fn read_gzipped(path: &Path, compressed: &[u8], ndims: usize) -> Result<IdxArray> {
    let gzip_error = |error: io::Error, part: &str| {
        let message = if error.kind() == io::ErrorKind::UnexpectedEof {
            format!("gzip data ends inside the IDX {part}")
        } else {
            format!("corrupt gzip data in the IDX {part}: {error}")
        };
        format_error(path, message)
    };
    let mut decoder = MultiGzDecoder::new(compressed);
    let mut magic = [0u8; 4];
    decoder
        .read_exact(&mut magic)
        .map_err(|e| gzip_error(e, "header"))?;
    check_magic(path, magic, ndims)?;
    let mut dim_bytes = vec![0u8; 4 * ndims];
    decoder
        .read_exact(&mut dim_bytes)
        .map_err(|e| gzip_error(e, "header"))?;
    let dims = parse_dims(&dim_bytes);
    let claimed = payload_len(path, &dims)?;
    let most = compressed
        .len()
        .saturating_mul(MAX_DEFLATE_RATIO)
        .min(MAX_IDX_BYTES);
    if claimed > most {
        return Err(format_error(
            path,
            format!(
                "header claims {dims:?} = {claimed} bytes of data, more than a {}-byte gzip file \
                 can hold (at most {most}; convgrad reads at most {MAX_IDX_BYTES})",
                compressed.len()
            ),
        ));
    }
    let mut data =
        Vec::with_capacity(claimed.min(compressed.len().saturating_mul(GZIP_INITIAL_RATIO)));
    // One byte past the claim tells an excess from an exact fit; reading up to the end of the
    // stream also makes the decoder check the gzip CRC.
    decoder
        .take(claimed as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| gzip_error(e, "data"))?;
    if data.len() < claimed {
        return Err(format_error(
            path,
            format!(
                "header claims {dims:?} = {claimed} bytes of data but the gzip stream holds {} \
                 (truncated)",
                data.len()
            ),
        ));
    }
    if data.len() > claimed {
        return Err(format_error(
            path,
            format!(
                "header claims {dims:?} = {claimed} bytes of data but the gzip stream holds more \
                 (excess bytes)"
            ),
        ));
    }
    Ok(IdxArray { dims, data })
}

fn check_magic(path: &Path, magic: [u8; 4], ndims: usize) -> Result<()> {
    let expected = [0, 0, IDX_UNSIGNED_BYTE, ndims as u8];
    if magic == expected {
        return Ok(());
    }
    let what = match ndims {
        1 => " (a label file)",
        3 => " (an image file)",
        _ => "",
    };
    let hint = if magic[..2] != [0, 0] {
        ": not an IDX file"
    } else if magic[2] != IDX_UNSIGNED_BYTE {
        ": the elements are not unsigned bytes"
    } else if magic[3] == 1 {
        ": this is a label file"
    } else if magic[3] == 3 {
        ": this is an image file"
    } else {
        ""
    };
    Err(format_error(
        path,
        format!(
            "magic number 0x{:08x}, expected 0x{:08x}{what}{hint}",
            u32::from_be_bytes(magic),
            u32::from_be_bytes(expected)
        ),
    ))
}

fn parse_dims(bytes: &[u8]) -> Vec<usize> {
    bytes
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes(b.try_into().unwrap()) as usize)
        .collect()
}

/// Bytes of data the dimensions describe; an overflow is an error, not a wrap.
fn payload_len(path: &Path, dims: &[usize]) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            format_error(
                path,
                format!(
                    "header dimensions {dims:?} describe more than {} bytes",
                    usize::MAX
                ),
            )
        })
}

/// The first of `candidates` that exists, or every one of them for the error message.
pub(crate) fn find_file(candidates: Vec<PathBuf>) -> std::result::Result<PathBuf, Vec<PathBuf>> {
    match candidates.iter().find(|path| path.is_file()) {
        Some(found) => Ok(found.clone()),
        None => Err(candidates),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::testutil::{gzip, idx_bytes, TempDir};

    fn message(result: Result<IdxArray>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn raw_and_gzipped_round_trip() {
        let dir = TempDir::new("idx-round-trip");
        let data: Vec<u8> = (0..2 * 3 * 4).map(|v| (v * 11) as u8).collect();
        let raw = idx_bytes(&[2, 3, 4], &data);
        let expected = IdxArray {
            dims: vec![2, 3, 4],
            data,
        };
        let raw_path = dir.write("images-idx3-ubyte", &raw);
        assert_eq!(read_idx(&raw_path, 3).unwrap(), expected);
        // Gzip is detected by content: a misleading name does not matter.
        let gz_path = dir.write("images-idx3-ubyte", &gzip(&raw));
        assert_eq!(read_idx(&gz_path, 3).unwrap(), expected);
        let gz_path = dir.write("images.gz", &gzip(&raw));
        assert_eq!(read_idx(&gz_path, 3).unwrap(), expected);
        let labels = dir.write("labels.gz", &gzip(&idx_bytes(&[3], &[9, 0, 4])));
        assert_eq!(read_idx(&labels, 1).unwrap().data, [9, 0, 4]);
    }

    #[test]
    fn bad_magic_is_named() {
        let dir = TempDir::new("idx-magic");
        let labels = idx_bytes(&[2], &[1, 2]);
        for bytes in [labels.clone(), gzip(&labels)] {
            let path = dir.write("labels", &bytes);
            let text = message(read_idx(&path, 3));
            assert!(
                text.contains("0x00000801") && text.contains("0x00000803"),
                "{text}"
            );
            assert!(
                text.contains("label file") && text.contains("labels"),
                "{text}"
            );
        }
        let path = dir.write("page.html", b"<html>not found</html>");
        assert!(message(read_idx(&path, 1)).contains("not an IDX file"));
        let mut floats = idx_bytes(&[1], &[0, 0, 0, 0]);
        floats[2] = 0x0d;
        let path = dir.write("floats", &floats);
        assert!(message(read_idx(&path, 1)).contains("not unsigned bytes"));
    }

    #[test]
    fn truncated_and_excess_data_are_errors() {
        let dir = TempDir::new("idx-sizes");
        let full = idx_bytes(&[2, 2, 2], &[1; 8]);
        let short = &full[..full.len() - 1];
        let mut long = full.clone();
        long.push(0);
        for (bytes, word) in [(short.to_vec(), "truncated"), (long, "excess")] {
            for (name, contents) in [("raw", bytes.clone()), ("gz", gzip(&bytes))] {
                let path = dir.write(name, &contents);
                let text = message(read_idx(&path, 3));
                assert!(text.contains(word) && text.contains("[2, 2, 2]"), "{text}");
            }
        }
        // Cut inside the header.
        let path = dir.write("header", &full[..6]);
        assert!(message(read_idx(&path, 3)).contains("shorter than the 16-byte IDX header"));
        let path = dir.write("header.gz", &gzip(&full[..6]));
        assert!(message(read_idx(&path, 3)).contains("ends inside the IDX header"));
        let path = dir.write("empty", &[]);
        assert!(read_idx(&path, 3).is_err());
    }

    #[test]
    fn absurd_headers_fail_before_allocating() {
        // 2^40 bytes, ~3.4 TB, and a product that overflows: any allocation of the claimed size
        // would abort the test process, so passing shows none was attempted.
        let dir = TempDir::new("idx-absurd");
        let cases: [&[u32]; 3] = [
            &[1 << 20, 1 << 10, 1 << 10],
            &[u32::MAX, 28, 28],
            &[u32::MAX, u32::MAX, u32::MAX],
        ];
        for dims in cases {
            let bytes = idx_bytes(dims, &[0; 64]);
            for (name, contents) in [("raw", bytes.clone()), ("gz", gzip(&bytes))] {
                let path = dir.write(name, &contents);
                let text = message(read_idx(&path, 3));
                assert!(
                    text.contains("more than") || text.contains("holds 64"),
                    "{name} {dims:?}: {text}"
                );
            }
        }
        // A claim within deflate's ratio but beyond the real data is caught while reading.
        let bytes = idx_bytes(&[10, 28, 28], &[0; 64]);
        let path = dir.write("gz", &gzip(&bytes));
        assert!(message(read_idx(&path, 3)).contains("truncated"));
    }

    #[test]
    fn corrupt_gzip_is_an_error() {
        let dir = TempDir::new("idx-corrupt");
        let data: Vec<u8> = (0..4096u32).map(|v| (v * 7 % 251) as u8).collect();
        let compressed = gzip(&idx_bytes(&[4096], &data));
        // Damage the deflate stream in the middle, then the CRC at the end, then cut it short.
        let mut middle = compressed.clone();
        let at = middle.len() / 2;
        middle[at] ^= 0xff;
        middle[at + 1] ^= 0x55;
        let mut crc = compressed.clone();
        let at = crc.len() - 8;
        crc[at] ^= 0xff;
        let cut = compressed[..compressed.len() / 2].to_vec();
        for (name, bytes) in [("middle", middle), ("crc", crc), ("cut", cut)] {
            let path = dir.write(name, &bytes);
            let text = message(read_idx(&path, 1));
            assert!(
                text.contains(name) && text.contains("gzip"),
                "{name}: {text}"
            );
        }
    }

    #[test]
    fn missing_file_is_an_io_error_naming_it() {
        let dir = TempDir::new("idx-missing");
        let path = dir.path().join("nope.gz");
        match read_idx(&path, 1) {
            Err(Error::Io { path: named, .. }) => assert_eq!(named, path),
            other => panic!("expected Error::Io, got {other:?}"),
        }
    }

    /// Byte mutation of valid files, raw and gzipped: whatever the bytes, the reader returns
    /// either an array that matches its own dimensions or an error, and never panics.
    mod mutated_files {
        use super::*;
        use crate::data::testutil::{mutated, mutations};
        use proptest::prelude::*;

        fn check(bytes: Vec<u8>, ndims: usize) {
            if let Ok(array) = idx_from_bytes("fuzzed", bytes, ndims) {
                assert_eq!(array.dims.len(), ndims);
                assert_eq!(array.dims.iter().product::<usize>(), array.data.len());
            }
        }

        fn valid_file() -> impl Strategy<Value = (Vec<u8>, usize)> {
            (
                prop_oneof![Just(1usize), Just(3)],
                0u32..5,
                1u32..6,
                1u32..6,
            )
                .prop_flat_map(|(ndims, n, h, w)| {
                    let dims: Vec<u32> = if ndims == 1 { vec![n] } else { vec![n, h, w] };
                    let len = dims.iter().product::<u32>() as usize;
                    proptest::collection::vec(any::<u8>(), len)
                        .prop_map(move |data| (idx_bytes(&dims, &data), ndims))
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

            #[test]
            fn raw((file, ndims) in valid_file(), changes in mutations(4)) {
                check(mutated(&file, &changes), ndims);
                // The mutated payload, gzipped: the decompressed header lies instead.
                check(gzip(&mutated(&file, &changes)), ndims);
            }

            #[test]
            fn gzipped((file, ndims) in valid_file(), changes in mutations(4)) {
                check(mutated(&gzip(&file), &changes), ndims);
            }

            #[test]
            fn any_ndims(bytes in proptest::collection::vec(any::<u8>(), 0..64), ndims in 0usize..300) {
                let _ = idx_from_bytes("fuzzed", bytes.clone(), ndims);
                let _ = idx_from_bytes("fuzzed", gzip(&bytes), ndims);
            }
        }

        #[test]
        fn header_claims_beyond_the_cap_are_refused_even_within_the_deflate_ratio() {
            // 2^33 bytes of zeros compress to about 8 MB, within deflate's ratio: the cap must
            // refuse it. Writing only the header and a few zeros is enough to test that.
            let header = idx_bytes(&[1 << 11, 1 << 11, 1 << 11], &[0; 16]);
            let mut big = gzip(&header);
            big.resize(9 << 20, 0);
            let text = idx_from_bytes("big.gz", big, 3).unwrap_err().to_string();
            assert!(text.contains(&MAX_IDX_BYTES.to_string()), "{text}");
        }

        #[test]
        fn a_device_or_a_directory_is_not_read() {
            let dir = TempDir::new("idx-device");
            let text = message(read_idx(dir.path(), 1));
            assert!(text.contains("not a regular file"), "{text}");
            if Path::new("/dev/zero").exists() {
                let text = message(read_idx("/dev/zero", 1));
                assert!(text.contains("not a regular file"), "{text}");
            }
            assert!(read_idx(dir.path(), 0).is_err());
        }
    }
}
