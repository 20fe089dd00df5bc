//! A shelf of large buffers for outputs that their kernel overwrites.
//!
//! A fresh `vec![0.0; n]` is `calloc`: unless its pages come straight from the operating system,
//! the allocator zeroes the whole buffer, and the kernel then writes every element again. For a
//! ResNet stem's output (8 x 64 x 112 x 112, 25.7 MB) that `memset` and the cache traffic after
//! it took about a third as long as the convolution. PyTorch's outputs come from `malloc`
//! without zeroing. Rust cannot hand uninitialised memory to a `&mut [f32]` soundly, but it can
//! hand over a buffer that held another tensor's values: [`take`] gives a buffer from the shelf
//! when one of the right length is there, and the tensor made from it
//! (`Tensor::from_shelf`) puts it back when it is dropped. Its old values are stale but
//! initialised, so this is safe; callers use [`take`] only for kernels that write every element
//! of their output (the convolution kernels' tests fill outputs with NaN first to check exactly
//! that).
//!
//! Only buffers that came from the shelf go back to it. When every large dropped tensor went
//! there, the shelf kept buffers the allocator would have reused for other ops, which then paid
//! for fresh pages instead: LeNet-5's training step went from 3 to 5 ms and its peak memory from
//! 16 to 70 MB. Convolution outputs and input gradients come back with the lengths the next
//! step asks for. The shelf is bounded all the same: past [`MAX_BYTES`] its oldest buffers are
//! freed.

use std::sync::Mutex;

/// Buffers shorter than this (256 KiB) are cheap to zero and are not kept.
const MIN_LEN: usize = 1 << 16;
/// What the shelf may hold, in bytes.
const MAX_BYTES: usize = 96 << 20;

struct Shelf {
    /// Oldest first.
    buffers: Vec<Vec<f32>>,
    bytes: usize,
}

static SHELF: Mutex<Shelf> = Mutex::new(Shelf {
    buffers: Vec::new(),
    bytes: 0,
});

fn bytes(buffer: &Vec<f32>) -> usize {
    buffer.capacity() * std::mem::size_of::<f32>()
}

impl Shelf {
    /// The most recently given buffer of `len` values, if there is one.
    fn take(&mut self, len: usize) -> Option<Vec<f32>> {
        let at = self.buffers.iter().rposition(|b| b.len() == len)?;
        let buffer = self.buffers.remove(at);
        self.bytes -= bytes(&buffer);
        Some(buffer)
    }

    /// Keeps `buffer` (if it is worth keeping) and returns the buffers evicted to stay within
    /// [`MAX_BYTES`], oldest first.
    fn give(&mut self, buffer: Vec<f32>) -> Vec<Vec<f32>> {
        if buffer.len() < MIN_LEN || bytes(&buffer) > MAX_BYTES {
            return vec![buffer];
        }
        self.bytes += bytes(&buffer);
        self.buffers.push(buffer);
        let mut evicted = Vec::new();
        while self.bytes > MAX_BYTES {
            let oldest = self.buffers.remove(0);
            self.bytes -= bytes(&oldest);
            evicted.push(oldest);
        }
        evicted
    }
}

fn shelf() -> std::sync::MutexGuard<'static, Shelf> {
    // A poisoned lock only means another thread panicked while holding it; the shelf is still a
    // list of valid buffers.
    SHELF
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A buffer of `len` values whose contents are unspecified (zeros, or a dropped tensor's
/// values): the caller must overwrite every element before it is read.
pub(crate) fn take(len: usize) -> Vec<f32> {
    let reused = if len >= MIN_LEN {
        shelf().take(len)
    } else {
        None
    };
    reused.unwrap_or_else(|| vec![0.0; len])
}

/// Puts `buffer` on the shelf if it is large enough to be worth keeping.
pub(crate) fn give(buffer: Vec<f32>) {
    if buffer.len() >= MIN_LEN {
        let evicted = shelf().give(buffer);
        // Freed outside the lock: returning a large buffer to the system can take a while.
        drop(evicted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty() -> Shelf {
        Shelf {
            buffers: Vec::new(),
            bytes: 0,
        }
    }

    #[test]
    fn a_buffer_comes_back_once_for_its_length_with_its_values() {
        let mut shelf = empty();
        let mut buffer = vec![0.0; MIN_LEN + 3];
        buffer[7] = 42.0;
        let address = buffer.as_ptr();
        assert!(shelf.give(buffer).is_empty());
        assert!(shelf.take(MIN_LEN + 4).is_none(), "another length");
        let again = shelf.take(MIN_LEN + 3).expect("kept");
        assert_eq!((again.as_ptr(), again[7]), (address, 42.0));
        assert!(shelf.take(MIN_LEN + 3).is_none(), "only once");
        assert_eq!(shelf.bytes, 0);
    }

    #[test]
    fn small_buffers_are_not_kept_and_the_oldest_go_first() {
        let mut shelf = empty();
        assert_eq!(shelf.give(vec![1.0; 10]).len(), 1);
        let third = MAX_BYTES / std::mem::size_of::<f32>() / 3;
        for value in 1..=4 {
            let evicted = shelf.give(vec![value as f32; third]);
            assert_eq!(evicted.len(), usize::from(value == 4));
            if value == 4 {
                assert_eq!(evicted[0][0], 1.0, "the oldest");
            }
        }
        assert!(shelf.bytes <= MAX_BYTES);
        assert_eq!(shelf.take(third).expect("kept")[0], 4.0, "the newest first");
    }
}
