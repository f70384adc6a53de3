//! Attempt results written together: every result that arrives while one is waiting for the
//! writer rides in the same write command, and the common one (delivered, its row begun at
//! the claim) as two statements for the whole group, sent as one.
//!
//! Why: draining a backlog, the writer spent its time on results, two statements each, and
//! every statement is a round trip to the connection's thread (docs/benchmarks.md, "Fourth
//! round"). A group of results costs the same two statements as one result.
//!
//! How: [`FinishQueue`] holds the results not yet taken. The caller that finds it empty
//! spawns a flush, which sends one write command; the command takes everything queued *when
//! the writer runs it*, so results that arrive while it waits in the writer's queue join it,
//! and results that arrive after it took the queue find the queue empty and start the next
//! flush. So a result is never left queued with no flush on its way.
//!
//! Why it is correct:
//! - Each result is fenced on its own claim's lease token, exactly as alone: the group's two
//!   `UPDATE .. FROM json_each` statements (the attempt rows, then the notifications) match a
//!   result only while its notification holds its token. A result whose claim moved on is
//!   answered `LeaseLost` and writes nothing.
//! - Two results for one notification cannot both match: only one holds its current token,
//!   and the group's statements take a notification once (a second result for it goes one by
//!   one after them), so matching by id names the one result that matched.
//! - Every caller hears only after the group's transaction committed (the writer answers the
//!   flush after COMMIT, and the flush answers the callers), and if the write fails, every
//!   caller of the group hears the failure; nothing in the group was written then.
//! - The flush is a task of its own, so a caller that stops waiting (its future dropped)
//!   cannot strand the others' answers. A flush whose command never ran (the store was
//!   closed) answers what is queued with that error, so no result waits for ever.
//!
//! Other outcomes (retries, queued, deactivated) and results without a begun row go one by
//! one through [`super::deliveries::finish_attempt`], inside the same command.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use sqlx::sqlite::SqliteConnection;
use tokio::sync::oneshot;

use super::deliveries::finish_attempt;
use super::writer::Writer;
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

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The guarded sections only move values in and out; a panic elsewhere cannot leave them
    // half done.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes `attempt` with whatever results are queued beside it; `Ok(false)` when its lease no
/// longer held.
pub(crate) async fn finish(
    writer: &Writer,
    queue: &Arc<FinishQueue>,
    attempt: AttemptRecord,
) -> Result<bool> {
    let (reply, answer) = oneshot::channel();
    let first = {
        let mut pending = lock(&queue.pending);
        pending.push(Waiting { attempt, reply });
        pending.len() == 1
    };
    if first {
        tokio::spawn(flush(writer.clone(), queue.clone()));
    }
    answer
        .await
        .map_err(|_| StoreError::Other("the store is closed".to_owned()))?
}

/// One write command for everything queued when the writer gets to it.
async fn flush(writer: Writer, queue: Arc<FinishQueue>) {
    let taken: Arc<Mutex<Vec<oneshot::Sender<Result<bool>>>>> = Arc::default();
    let replies = taken.clone();
    let left = queue.clone();
    let written = writer
        .write_unguarded(move |conn| {
            Box::pin(async move {
                let group = std::mem::take(&mut *lock(&queue.pending));
                let (attempts, senders): (Vec<_>, Vec<_>) =
                    group.into_iter().map(|w| (w.attempt, w.reply)).unzip();
                *lock(&replies) = senders;
                write_group(conn, attempts).await
            })
        })
        .await;
    let mut senders = std::mem::take(&mut *lock(&taken));
    if written.is_err() && senders.is_empty() {
        // The command never ran (the writer is closed): nothing will take the queue now, and
        // leaving it would keep every later result waiting behind it, so the flush answers it.
        let group = std::mem::take(&mut *lock(&left.pending));
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

/// The group's results in its order: whether each one's lease held.
async fn write_group(
    conn: &mut SqliteConnection,
    attempts: Vec<AttemptRecord>,
) -> Result<Vec<bool>> {
    let mut held = vec![false; attempts.len()];
    // The grouped statements tell which notifications matched by id, so a notification may be
    // in them once: a second result for it (a claim that outlived its lease beside the claim
    // that took over) goes one by one after them, fenced on its own token.
    let mut grouped = HashSet::new();
    let (simple, other): (Vec<_>, Vec<_>) = attempts.into_iter().enumerate().partition(|(_, a)| {
        a.outcome == AttemptOutcome::Delivered
            && a.attempt_id.is_some()
            && grouped.insert(a.notification_id.clone())
    });
    if !simple.is_empty() {
        for index in delivered(conn, &simple).await? {
            held[index] = true;
        }
    }
    for (index, attempt) in other {
        held[index] = finish_attempt(conn, attempt).await?;
    }
    Ok(held)
}

/// A delivered result whose begun attempt row is to be completed.
#[derive(Serialize)]
struct Completed<'a> {
    notification: &'a str,
    token: &'a str,
    attempt: i64,
    owner: &'a str,
    at: i64,
    status: Option<u16>,
    latency_ms: i64,
    error: Option<&'a str>,
    excerpt: Option<&'a str>,
}

/// Delivered results with begun rows, for all of them two statements sent as one (one round
/// trip to the connection's thread; sqlx runs each in turn with the same parameter); returns
/// the indexes (into the group) whose lease held.
///
/// Both statements are fenced on each result's own token: the first completes the attempt
/// rows of the results whose claim still holds, the second then marks those notifications
/// delivered and releases their claims. Nothing runs between them (one connection, one
/// transaction), so the two match the same results, and the second's `RETURNING` names them.
async fn delivered(
    conn: &mut SqliteConnection,
    group: &[(usize, AttemptRecord)],
) -> Result<Vec<usize>> {
    let rows: Vec<_> = group
        .iter()
        .map(|(_, a)| Completed {
            notification: &a.notification_id.0,
            token: &a.lease_token.0,
            attempt: a.attempt_id.unwrap_or_default(),
            owner: &a.owner,
            at: a.attempted_at.as_millisecond(),
            status: a.status_code,
            latency_ms: a.latency_ms,
            error: a.error.as_deref(),
            excerpt: a.response_excerpt.as_deref(),
        })
        .collect();
    let matched: Vec<String> = sqlx::query_scalar(
        "UPDATE delivery_attempts SET owner = c.value ->> 'owner', attempted_at = c.value ->> 'at',
             status_code = c.value ->> 'status', latency_ms = c.value ->> 'latency_ms',
             error = c.value ->> 'error', outcome = 'delivered',
             response_excerpt = c.value ->> 'excerpt'
         FROM json_each($1) c
             JOIN notifications n ON n.id = c.value ->> 'notification'
                 AND n.lease_token = c.value ->> 'token'
         WHERE delivery_attempts.id = c.value ->> 'attempt'
           AND delivery_attempts.notification_id = c.value ->> 'notification';
         UPDATE notifications SET status = 'delivered', delivered_at = c.value ->> 'at',
             next_attempt_at = NULL, lease_owner = NULL, lease_until = NULL, lease_token = NULL
         FROM json_each($1) c
         WHERE notifications.id = c.value ->> 'notification'
           AND notifications.lease_token = c.value ->> 'token'
         RETURNING notifications.id",
    )
    .bind(to_json(&rows)?)
    .fetch_all(&mut *conn)
    .await?;
    Ok(group
        .iter()
        .filter(|(_, a)| matched.contains(&a.notification_id.0))
        .map(|(index, _)| *index)
        .collect())
}

fn to_json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Other(e.to_string()))
}
