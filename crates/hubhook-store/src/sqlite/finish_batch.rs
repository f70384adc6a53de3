//! SQLite's side of [`crate::finish_queue`]: a group of attempt results is one command of the
//! writer, and its delivered results two statements sent as one.

use std::sync::Arc;

use serde::Serialize;
use sqlx::sqlite::SqliteConnection;

use super::deliveries::finish_attempt;
use super::writer::Writer;
use crate::finish_queue::{FinishQueue, Replies, split};
use crate::{AttemptRecord, Result, StoreError};

/// Writes `attempt` with whatever results are queued beside it; `Ok(false)` when its lease no
/// longer held.
pub(crate) async fn finish(
    writer: &Writer,
    queue: &Arc<FinishQueue>,
    attempt: AttemptRecord,
) -> Result<bool> {
    queue
        .finish(attempt, || {
            tokio::spawn(flush(writer.clone(), queue.clone()));
        })
        .await
}

/// One write command for everything queued when the writer gets to it.
async fn flush(writer: Writer, queue: Arc<FinishQueue>) {
    let replies = Replies::default();
    let taken = replies.clone();
    let group = queue.clone();
    let written = writer
        .write_unguarded(move |conn| {
            Box::pin(async move { write_group(conn, group.take(&taken)).await })
        })
        .await;
    queue.answer(&replies, written);
}

/// The group's results in its order: whether each one's lease held.
async fn write_group(
    conn: &mut SqliteConnection,
    attempts: Vec<AttemptRecord>,
) -> Result<Vec<bool>> {
    let mut held = vec![false; attempts.len()];
    let (simple, other) = split(attempts);
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
