//! Test fixtures: a temporary directory removed on drop, and gzip in memory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh directory under the system's temp dir, removed with everything in it on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "convgrad-data-{name}-{}-{unique}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `bytes` to `name` inside the directory (creating parents) and returns its path.
    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).expect("create parent");
        std::fs::write(&path, bytes).expect("write fixture");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// An IDX file of unsigned bytes: magic `00 00 08 DD`, big-endian dimensions, data.
pub fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    bytes
}

/// One change to a file's bytes, as a fuzzer would make it.
#[derive(Clone, Debug)]
pub enum Mutation {
    /// XOR the byte at `at % len` with a non-zero mask.
    Flip { at: usize, mask: u8 },
    /// Overwrite four bytes at `at % len` with a big-endian `u32` (a size field, say).
    Word { at: usize, value: u32 },
    /// Keep only the first `at % (len + 1)` bytes.
    Truncate { at: usize },
    /// Insert bytes at `at % (len + 1)`.
    Insert { at: usize, bytes: Vec<u8> },
    /// Remove up to `count` bytes from `at % len`.
    Remove { at: usize, count: usize },
}

impl Mutation {
    pub fn apply(&self, bytes: &mut Vec<u8>) {
        let len = bytes.len();
        match self {
            Mutation::Flip { at, mask } if len > 0 => bytes[at % len] ^= mask.max(&1),
            Mutation::Word { at, value } if len > 0 => {
                let at = at % len;
                let end = (at + 4).min(len);
                bytes[at..end].copy_from_slice(&value.to_be_bytes()[..end - at]);
            }
            Mutation::Truncate { at } => bytes.truncate(at % (len + 1)),
            Mutation::Insert { at, bytes: new } => {
                let at = at % (len + 1);
                bytes.splice(at..at, new.iter().copied());
            }
            Mutation::Remove { at, count } if len > 0 => {
                let at = at % len;
                bytes.drain(at..(at + count).min(len));
            }
            _ => {}
        }
    }
}

/// Up to `most` random mutations.
pub fn mutations(most: usize) -> impl proptest::strategy::Strategy<Value = Vec<Mutation>> {
    use proptest::prelude::*;
    let one = prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        (
            any::<usize>(),
            prop_oneof![any::<u32>(), 0u32..64, Just(u32::MAX), Just(1 << 31)]
        )
            .prop_map(|(at, value)| Mutation::Word { at, value }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<usize>(), 1usize..64).prop_map(|(at, count)| Mutation::Remove { at, count }),
    ];
    proptest::collection::vec(one, 1..=most)
}

/// `bytes` with every mutation applied in turn.
pub fn mutated(bytes: &[u8], changes: &[Mutation]) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    for change in changes {
        change.apply(&mut bytes);
    }
    bytes
}
