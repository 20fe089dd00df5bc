//! No allocation larger than the file can justify: the largest single allocation made while
//! reading a hostile file is measured with a counting global allocator (this test binary's
//! only test, so no other test allocates meanwhile) and must stay within a small constant (the
//! gzip decoder's window and buffers, error messages) plus what the file's own bytes justify.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

use convgrad::data::{cifar10_from_bytes, idx_from_bytes};
use convgrad::io::safetensors_from_bytes;

/// The system allocator, remembering the largest request.
struct Largest;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator, which upholds the
// `GlobalAlloc` contract; the counter has no effect on the memory returned.
unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's guarantees for `layout` are passed on as they are.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: `ptr` and `layout` come from this allocator, that is from `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` and `layout` come from this allocator, that is from `System`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Largest = Largest;

/// Decoder state, buffers and messages: what any read may allocate whatever the file says.
const CONSTANT: usize = 256 << 10;

/// The largest allocation `read` makes.
fn largest_allocation(read: impl FnOnce()) -> usize {
    LARGEST.store(0, Ordering::Relaxed);
    read();
    LARGEST.load(Ordering::Relaxed)
}

fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn hostile_files_allocate_no_more_than_their_bytes_justify() {
    let claims: [&[u32]; 6] = [
        &[1 << 20, 1 << 10, 1 << 10], // 2^40 images of one byte
        &[u32::MAX, 28, 28],
        &[u32::MAX, u32::MAX, u32::MAX],
        &[1 << 16, 28, 28], // 51 MB, within deflate's ratio for a large enough file
        &[1000, 28, 28],
        &[3, 28, 28],
    ];
    for dims in claims {
        for padding in [0usize, 64, 100_000] {
            // The header and `padding` zero bytes, which deflate squeezes to almost nothing:
            // a gzip file whose header claims far more than the stream holds.
            let raw = idx(dims, &vec![0; padding]);
            let compressed = gzip(&raw);
            let len = compressed.len();
            let largest = largest_allocation(|| {
                assert!(idx_from_bytes("lying.gz", compressed, 3).is_err());
            });
            // The output buffer starts at 8 times the compressed size and grows only as real
            // data arrives (at most doubling past it).
            let justified = CONSTANT + 16 * len + 2 * padding;
            assert!(
                largest <= justified,
                "gzip claiming {dims:?} with {padding} bytes ({len} compressed): allocated {largest}, justified {justified}"
            );
            let largest = largest_allocation(|| {
                assert!(idx_from_bytes("lying", raw, 3).is_err());
            });
            assert!(
                largest <= CONSTANT,
                "raw claiming {dims:?}: allocated {largest}"
            );
        }
    }

    // A claim within deflate's ratio for the file's size (4 MiB from about 4 KiB of
    // incompressible bytes) but far beyond what the stream holds: only the real data may cost
    // memory, not the claim.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let compressed = gzip(&idx(&[4, 1024, 1024], &noise));
    let len = compressed.len();
    assert!(
        4 << 20 <= 1032 * len,
        "the claim must pass the ratio check to test the read"
    );
    let largest = largest_allocation(|| {
        let text = idx_from_bytes("lying.gz", compressed, 3)
            .unwrap_err()
            .to_string();
        assert!(text.contains("truncated"), "{text}");
    });
    assert!(
        largest <= CONSTANT + 16 * len,
        "allocated {largest} for a {len}-byte gzip file"
    );

    // CIFAR-10 and safetensors headers that lie about sizes.
    let largest = largest_allocation(|| {
        assert!(cifar10_from_bytes("short.bin", &[3; 3000]).is_err());
    });
    assert!(largest <= CONSTANT, "cifar: {largest}");
    for header in [
        r#"{"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}}"#,
        r#"{"t":{"dtype":"F64","shape":[1073741824],"data_offsets":[0,8589934592]}}"#,
        r#"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"k":"v"}}"#,
    ] {
        for claimed_len in [header.len() as u64, u64::MAX / 2, 100_000_000] {
            let mut bytes = claimed_len.to_le_bytes().to_vec();
            bytes.extend_from_slice(header.as_bytes());
            bytes.extend_from_slice(&[0; 16]);
            let largest = largest_allocation(|| {
                let _ = safetensors_from_bytes("lying.safetensors", &bytes);
            });
            assert!(
                largest <= CONSTANT,
                "safetensors {header} ({claimed_len}): {largest}"
            );
        }
    }
}
