//! Large CPU-bound steps of a poll, run beside the async workers rather than on them.
//!
//! A page of a thousand records costs tens of milliseconds each to parse, to classify (hash,
//! serialize, compare) and to compress. A poll runs as one task that joins two halves: the
//! commit of one page and the read of the next (see the poller). Futures joined in one task
//! take turns on one thread, so without this the poll's CPU work ran on one core while the
//! other idled; profiled in docs/benchmarks.md ("Sixth round"). Handed to tokio's blocking pool,
//! the step of one half runs while the other half's step runs too.
//!
//! Small inputs stay on the calling task: an idle poll's page of one record would spend more
//! on the hand-off (a thread wake-up, the captured data moved) than on the work.
//!
//! A step that treats each item of a page alone (reading a record, packing a row) can also be
//! cut into parts that run on the pool at once ([`map`]): one part per core. While the other
//! half of the poll waits on the network or the store's writer, a step in one piece would
//! leave a core idle (docs/benchmarks.md, "Sixteenth round").
//!
//! Nothing here changes what a step computes or the order of a poll's commits: the caller
//! awaits the step's result exactly where it would have computed it, and [`map`] returns its
//! results in the items' order.

use std::sync::{Arc, LazyLock};

/// Inputs at least this large (records, rows, kilobytes: each caller says) go to the blocking
/// pool.
pub const LARGE: usize = 64;

/// Runs `work` on tokio's blocking pool when `large`, otherwise here, and returns its result.
/// A panic in `work` continues in the caller, as it would have inline.
pub async fn run<T, F>(large: bool, work: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    if !large {
        return work();
    }
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        // A blocking task is cancelled only when the runtime shuts down, which drops every
        // task, this one included; there is nothing to return to.
        Err(_) => std::future::pending().await,
    }
}

/// How many parts [`map`] cuts its items into: the cores this process may use.
static PARTS: LazyLock<usize> =
    LazyLock::new(|| std::thread::available_parallelism().map_or(1, |n| n.get()));

/// `items.into_iter().map(work).collect()`: when `large` (the caller says, as for [`run`]) on
/// the blocking pool, cut into one part per core; otherwise here. Results come back in the
/// items' order. A panic in `work` continues in the caller.
pub async fn map<T, U, F>(large: bool, items: Vec<T>, work: F) -> Vec<U>
where
    T: Send + 'static,
    U: Send + 'static,
    F: Fn(T) -> U + Send + Sync + 'static,
{
    let parts = items.len().min(*PARTS);
    if !large || parts <= 1 {
        // Nothing to hand off for no items.
        return run(large && parts == 1, move || {
            items.into_iter().map(work).collect()
        })
        .await;
    }
    let work = Arc::new(work);
    let size = items.len().div_ceil(parts);
    let mut rest = items;
    let mut chunks = Vec::with_capacity(parts);
    while rest.len() > size {
        let tail = rest.split_off(size);
        chunks.push(std::mem::replace(&mut rest, tail));
    }
    chunks.push(rest);
    // Spawned at once (not when first awaited), so that the parts run beside each other.
    let running: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let work = Arc::clone(&work);
            tokio::task::spawn_blocking(move || {
                chunk.into_iter().map(|item| work(item)).collect::<Vec<U>>()
            })
        })
        .collect();
    let mut results = Vec::new();
    for part in running {
        match part.await {
            Ok(part) => results.extend(part),
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => std::future::pending::<()>().await,
        }
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_large_step_runs_off_the_calling_thread_and_a_small_one_on_it() {
        let here = std::thread::current().id();
        let small = run(false, std::thread::current).await;
        let large = run(true, std::thread::current).await;
        assert_eq!(small.id(), here);
        assert_ne!(large.id(), here);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn map_keeps_the_order_of_its_items_whatever_their_number() {
        for n in [0, 1, 2, 3, LARGE - 1, LARGE, 2 * LARGE + 1, 10 * LARGE + 7] {
            for large in [false, true] {
                let items: Vec<usize> = (0..n).collect();
                let doubled = map(large, items, |i| i * 2).await;
                assert_eq!(
                    doubled,
                    (0..n).map(|i| i * 2).collect::<Vec<_>>(),
                    "{n} items"
                );
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_small_map_runs_on_the_calling_thread() {
        let here = std::thread::current().id();
        let threads = map(false, vec![(); 4 * LARGE], |()| std::thread::current().id()).await;
        assert!(threads.iter().all(|thread| *thread == here));
        let threads = map(true, Vec::<()>::new(), |()| std::thread::current().id()).await;
        assert!(threads.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn map_cuts_large_inputs_into_parts_that_run_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::time::{Duration, Instant};
        let parts = *PARTS;
        // Each part's first item waits (up to 10 s) until every part has started, and says
        // whether they all did: they can only if the parts run at the same time.
        let started = Arc::new(AtomicUsize::new(0));
        let items: Vec<usize> = (0..parts * LARGE).collect();
        let met = map(true, items, move |i| {
            if i % LARGE != 0 {
                return true;
            }
            started.fetch_add(1, Ordering::SeqCst);
            let deadline = Instant::now() + Duration::from_secs(10);
            while started.load(Ordering::SeqCst) < parts && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            started.load(Ordering::SeqCst) == parts
        })
        .await;
        assert_eq!(met.len(), parts * LARGE);
        assert!(
            met.iter().all(|&met| met),
            "the {parts} parts did not run at once"
        );
    }

    #[tokio::test]
    #[should_panic(expected = "in the step")]
    async fn a_panic_in_a_part_reaches_the_caller() {
        map(true, (0..4 * LARGE).collect::<Vec<_>>(), |i| {
            assert!(i != 3 * LARGE, "in the step");
            i
        })
        .await;
    }

    #[tokio::test]
    #[should_panic(expected = "in the step")]
    async fn a_panic_in_a_large_step_reaches_the_caller() {
        run(true, || panic!("in the step")).await
    }
}
