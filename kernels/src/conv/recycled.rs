//! Working buffers reused from one call to the next on the same thread.
//!
//! A large fresh buffer costs a page fault per 4 KiB the first time it is written, on every call
//! (DESIGN.md, "A trap"): for Winograd's transformed weights at 128 channels (2.3 MiB) that was
//! a twentieth of a pass. So the kernels take their padded inputs, packed weights and scratch
//! from here, and give them back when they drop them.

use std::cell::RefCell;

/// Buffers kept per thread, at most.
const KEPT: usize = 4;
/// Bytes kept per thread beyond the largest buffer, at most: smaller buffers past this are
/// freed, so a thread holds its largest buffer and up to this much besides.
const KEPT_BYTES: usize = 32 << 20;

thread_local! {
    /// The buffers given back on this thread, largest first.
    static SPARES: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// A buffer of `f32`s that goes back to its thread's spares when dropped.
pub(in crate::conv) struct Recycled {
    data: Vec<f32>,
}

impl Recycled {
    /// A buffer of `len` values: the smallest spare that holds them (or the largest, grown),
    /// else a new one. Its values are stale: whatever the last user left, and zeros where it
    /// grew. Callers read only what they have written.
    pub(in crate::conv) fn take(len: usize) -> Self {
        // Taking a buffer out (rather than borrowing it) keeps a nested call on this thread,
        // such as a rayon task stolen while waiting, correct: it takes another one or allocates.
        let mut data = SPARES.with(|spares| {
            let mut spares = spares.borrow_mut();
            let fitting = spares.iter().rposition(|b| b.capacity() >= len);
            match fitting {
                Some(index) => spares.remove(index),
                None if !spares.is_empty() => spares.remove(0),
                None => Vec::new(),
            }
        });
        data.resize(len, 0.0);
        Recycled { data }
    }
}

impl std::ops::Deref for Recycled {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.data
    }
}

impl std::ops::DerefMut for Recycled {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }
}

impl Drop for Recycled {
    fn drop(&mut self) {
        let data = std::mem::take(&mut self.data);
        if data.capacity() == 0 {
            return;
        }
        // `try_with`: during a thread's teardown the spares may already be gone.
        let _ = SPARES.try_with(|spares| {
            let mut spares = spares.borrow_mut();
            let at = spares.partition_point(|b| b.capacity() >= data.capacity());
            spares.insert(at, data);
            spares.truncate(KEPT);
            let mut besides = 0;
            let kept = spares
                .iter()
                .skip(1)
                .take_while(|b| {
                    besides += b.capacity() * std::mem::size_of::<f32>();
                    besides <= KEPT_BYTES
                })
                .count();
            spares.truncate(1 + kept);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_buffer_is_taken_again_with_its_values() {
        let mut first = Recycled::take(1000);
        first.fill(7.0);
        let address = first.as_ptr();
        drop(first);
        let again = Recycled::take(500);
        assert_eq!(again.as_ptr(), address);
        assert_eq!(again.len(), 500);
        assert!(again.iter().all(|&x| x == 7.0));
        // Grown past its old length: the new values are zeros.
        drop(again);
        let grown = Recycled::take(1000);
        assert!(grown[..500].iter().all(|&x| x == 7.0));
        assert!(grown[500..].iter().all(|&x| x == 0.0));
    }

    #[test]
    fn the_smallest_fitting_spare_is_taken_and_few_are_kept() {
        let buffers: Vec<Recycled> = [100, 10, 1000, 50, 5000, 20]
            .iter()
            .map(|&len| Recycled::take(len))
            .collect();
        drop(buffers);
        let kept = SPARES.with(|s| s.borrow().iter().map(Vec::capacity).collect::<Vec<_>>());
        assert_eq!(kept, [5000, 1000, 100, 50]);
        let taken = Recycled::take(60);
        assert_eq!(taken.data.capacity(), 100);
    }
}
