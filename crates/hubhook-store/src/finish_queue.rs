//! Attempt results written together, for both engines: every result that arrives while one is
//! waiting to be written rides in the same transaction, and the common one (delivered, its row
//! begun at the claim) as two statements for the whole group.
//!
//! Why: draining a backlog, SQLite's writer spent its time on results, two statements each,
//! every statement a round trip to the connection's thread (docs/benchmarks.md, "Fourth
//! round"); on PostgreSQL each result was a transaction of its own, and its COMMIT (a WAL flush,
//! 1.2 ms) was the largest cost of a delivery ("Eighteenth round"). A group costs the same two
//! statements and one commit as one result.
//!
//! How: [`FinishQueue`] holds the results not yet taken. The caller that finds it empty starts
//! a flush (each engine's `flush`), which takes everything queued *when its transaction has
//! begun* ([`FinishQueue::take`]), so results that arrive while it waits for the writer (SQLite)
//! or for a connection (PostgreSQL) join it, and results that arrive after it took the queue
//! find the queue empty and start the next flush. So a result is never left queued with no
//! flush on its way. On PostgreSQL several flushes may run at once, on different connections:
//! their groups are disjoint (a result is taken once).
//!
//! Why it is correct:
//! - Each result is fenced on its own claim's lease token, exactly as alone: the group's
//!   statements match a result only while its notification holds its token. A result whose
//!   claim moved on is answered `LeaseLost` and writes nothing.
//! - Two results for one notification cannot both match: only one holds its current token,
//!   and the group's statements take a notification once ([`split`]: a second result for it goes
//!   one by one after them), so matching by id names the one result that matched.
//! - Every caller hears only after the group's transaction committed (the flush answers after
//!   COMMIT), and if the write fails, every caller of the group hears the failure; nothing in
//!   the group was written then.
//! - The flush is a task of its own, so a caller that stops waiting (its future dropped)
//!   cannot strand the others' answers. A flush whose transaction never ran (the store was
//!   closed) answers what is queued with that error, so no result waits for ever.
//!
//! Other outcomes (retries, queued, deactivated) and results without a begun row go one by
//! one through the engine's `finish_attempt`, inside the same transaction.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::{AttemptOutcome, AttemptRecord, Result, StoreError};

/// The results waiting for a flush.
#[derive(Default)]
pub(crate) struct FinishQueue {
    pending: Mutex<Vec<Waiting>>,
}

impl std::fmt::Debug for FinishQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FinishQueue")
            .field("pending", &lock(&self.pending).len())
            .finish()
    }
}

/// One caller's result and where its answer goes: `Ok(false)` when its lease no longer held.
struct Waiting {
    attempt: AttemptRecord,
    reply: oneshot::Sender<Result<bool>>,
}

/// Where a flush keeps the answers of the group it took, until its transaction has ended.
pub(crate) type Replies = Arc<Mutex<Vec<oneshot::Sender<Result<bool>>>>>;

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The guarded sections only move values in and out; a panic elsewhere cannot leave them
    // half done.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl FinishQueue {
    /// Queues `attempt`, calls `start_flush` when the queue was empty (no flush is on its way
    /// for it), and waits for the answer: whether its lease held.
    pub(crate) async fn finish(
        self: &Arc<Self>,
        attempt: AttemptRecord,
        start_flush: impl FnOnce(),
    ) -> Result<bool> {
        let (reply, answer) = oneshot::channel();
        let first = {
            let mut pending = lock(&self.pending);
            pending.push(Waiting { attempt, reply });
            pending.len() == 1
        };
        if first {
            start_flush();
        }
        answer
            .await
            .map_err(|_| StoreError::Other("the store is closed".to_owned()))?
    }

    /// Takes everything queued, for a flush whose transaction has begun; the answers go to
    /// `replies` until [`FinishQueue::answer`].
    pub(crate) fn take(&self, replies: &Replies) -> Vec<AttemptRecord> {
        let group = std::mem::take(&mut *lock(&self.pending));
        let (attempts, senders): (Vec<_>, Vec<_>) =
            group.into_iter().map(|w| (w.attempt, w.reply)).unzip();
        *lock(replies) = senders;
        attempts
    }

    /// Answers the group a flush took, after its transaction ended: `written` holds whether
    /// each one's lease held, in the group's order.
    pub(crate) fn answer(&self, replies: &Replies, written: Result<Vec<bool>>) {
        let mut senders = std::mem::take(&mut *lock(replies));
        if written.is_err() && senders.is_empty() {
            // The transaction never ran (the store is closed): nothing will take the queue
            // now, and leaving it would keep every later result waiting behind it, so the
            // flush answers it.
            let group = std::mem::take(&mut *lock(&self.pending));
            senders = group.into_iter().map(|w| w.reply).collect();
        }
        match written {
            Ok(held) => {
                for (reply, held) in senders.into_iter().zip(held) {
                    let _ = reply.send(Ok(held));
                }
            }
            Err(err) => {
                let message = err.to_string();
                for reply in senders {
                    let _ = reply.send(Err(StoreError::Other(message.clone())));
                }
            }
        }
    }
}

/// A group's results, each with its index in the group: the delivered ones with a begun row,
/// each notification once (written by the engine's two grouped statements), and the rest
/// (written one by one, after them, each fenced on its own token).
pub(crate) type Split = (Vec<(usize, AttemptRecord)>, Vec<(usize, AttemptRecord)>);

/// Splits a group as [`Split`] says. The grouped statements tell which notifications matched
/// by id, so a notification may be in them once: a second result for it (a claim that outlived
/// its lease beside the claim that took over) goes one by one.
pub(crate) fn split(attempts: Vec<AttemptRecord>) -> Split {
    let mut grouped = HashSet::new();
    attempts.into_iter().enumerate().partition(|(_, a)| {
        a.outcome == AttemptOutcome::Delivered
            && a.attempt_id.is_some()
            && grouped.insert(a.notification_id.clone())
    })
}
