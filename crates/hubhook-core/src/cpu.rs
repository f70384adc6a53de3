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
//! Nothing here changes what a step computes or the order of a poll's commits: the caller
//! awaits the step's result exactly where it would have computed it.

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

    #[tokio::test]
    #[should_panic(expected = "in the step")]
    async fn a_panic_in_a_large_step_reaches_the_caller() {
        run(true, || panic!("in the step")).await
    }
}
