//! Where a pass over a whole network runs: on one of rayon's workers.
//!
//! Every kernel and elementwise pass splits its work with rayon. Called from a thread outside
//! rayon's pool, such as the program's main thread, each of those passes is handed to the pool
//! while the caller sleeps until it is done: two thread switches per pass, and a training step
//! of MobileNet v2 makes over a thousand passes. Called on a worker, a pass splits by putting
//! half of its work on that worker's own queue, where the other worker steals it, and nobody
//! sleeps. So the entry points that run a whole network (a forward pass on a tape, a backward
//! pass, an inference) move onto a worker once, with [`on_worker`], and their passes run there.
//!
//! `convgrad bench MODEL --threads 2` with the builds alternating, medians of training img/s
//! without and with: MobileNet v2 213 -> 251 (four rounds), DenseNet-121 at batch 16 62 -> 71,
//! LeNet-5 9134 -> 10032 (three rounds each); ResNet-18 within the noise.
//!
//! Better still is no hand-over at all: a program that builds rayon's global pool with
//! `use_current_thread()` makes its main thread worker 0, and [`on_worker`] then runs in place.
//! The `convgrad` command does so. Handing each network pass to whichever worker is free also
//! costs memory: each worker allocates from its own malloc arena, and glibc keeps a step's worth
//! of freed memory in each. ResNet-18's training peak was 220 MB that way and 155 MB with the
//! main thread as worker 0, which was also the faster (MobileNet v2 training 282 / 309 against
//! 340 / 349 img/s, two rounds).

/// Runs `work` on one of rayon's workers (in place when already on one) and returns its result.
pub(crate) fn on_worker<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        work()
    } else {
        rayon::scope(|_| work())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_runs_on_a_worker_and_returns_its_value() {
        assert_eq!(rayon::current_thread_index(), None);
        let (on_pool, value) = on_worker(|| (rayon::current_thread_index().is_some(), 7));
        assert!(on_pool);
        assert_eq!(value, 7);
        // Nested calls run in place.
        assert_eq!(on_worker(|| on_worker(|| 3)), 3);
    }
}
