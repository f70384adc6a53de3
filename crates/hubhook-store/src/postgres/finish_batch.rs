//! PostgreSQL's side of [`crate::finish_queue`]: a group of attempt results is one transaction
//! on a pooled connection, and its delivered results two statements over arrays.

use sqlx::postgres::PgConnection;

use super::PostgresStore;
use super::deliveries::finish_attempt;
use crate::finish_queue::{Replies, split};
use crate::{AttemptRecord, Result};

impl PostgresStore {
    /// Writes `attempt` with whatever results are queued beside it; `Ok(false)` when its lease
    /// no longer held.
    pub(super) async fn finish_queued(&self, attempt: AttemptRecord) -> Result<bool> {
        self.finishes
            .finish(attempt, || {
                tokio::spawn(self.clone().flush_finishes());
            })
            .await
    }

    /// One transaction for everything queued once it has begun.
    async fn flush_finishes(self) {
        let replies = Replies::default();
        let taken = replies.clone();
        let queue = self.finishes.clone();
        let written = self
            .write(move |conn| Box::pin(async move { write_group(conn, queue.take(&taken)).await }))
            .await;
        self.finishes.answer(&replies, written);
    }
}

/// The group's results in its order: whether each one's lease held.
async fn write_group(conn: &mut PgConnection, attempts: Vec<AttemptRecord>) -> Result<Vec<bool>> {
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

/// Delivered results with begun rows, all of them in two statements; returns the indexes (into
/// the group) whose lease held.
///
/// The first statement marks delivered, and releases, each notification that still holds its
/// result's token: the fence and the write are one UPDATE, which locks the row, and re-checks
/// the token against the row's latest version if another transaction changed it meanwhile.
/// Its `RETURNING` names the results that held; the second completes exactly their attempt
/// rows, in the same transaction.
async fn delivered(
    conn: &mut PgConnection,
    group: &[(usize, AttemptRecord)],
) -> Result<Vec<usize>> {
    let notifications: Vec<&str> = group
        .iter()
        .map(|(_, a)| a.notification_id.0.as_str())
        .collect();
    let tokens: Vec<&str> = group
        .iter()
        .map(|(_, a)| a.lease_token.0.as_str())
        .collect();
    let ats: Vec<i64> = group
        .iter()
        .map(|(_, a)| a.attempted_at.as_millisecond())
        .collect();
    let matched: Vec<String> = sqlx::query_scalar(
        "UPDATE notifications n SET status = 'delivered', delivered_at = c.at,
             next_attempt_at = NULL, lease_owner = NULL, lease_until = NULL, lease_token = NULL
         FROM unnest($1::text[], $2::text[], $3::bigint[]) AS c(notification, token, at)
         WHERE n.id = c.notification AND n.lease_token = c.token
         RETURNING n.id",
    )
    .bind(&notifications)
    .bind(&tokens)
    .bind(&ats)
    .fetch_all(&mut *conn)
    .await?;
    let held: Vec<&(usize, AttemptRecord)> = group
        .iter()
        .filter(|(_, a)| matched.contains(&a.notification_id.0))
        .collect();
    if held.is_empty() {
        return Ok(Vec::new());
    }
    let attempts: Vec<i64> = held
        .iter()
        .map(|(_, a)| a.attempt_id.unwrap_or_default())
        .collect();
    let notifications: Vec<&str> = held
        .iter()
        .map(|(_, a)| a.notification_id.0.as_str())
        .collect();
    let owners: Vec<&str> = held.iter().map(|(_, a)| a.owner.as_str()).collect();
    let ats: Vec<i64> = held
        .iter()
        .map(|(_, a)| a.attempted_at.as_millisecond())
        .collect();
    let statuses: Vec<Option<i64>> = held
        .iter()
        .map(|(_, a)| a.status_code.map(i64::from))
        .collect();
    let latencies: Vec<i64> = held.iter().map(|(_, a)| a.latency_ms).collect();
    let errors: Vec<Option<&str>> = held.iter().map(|(_, a)| a.error.as_deref()).collect();
    let excerpts: Vec<Option<&str>> = held
        .iter()
        .map(|(_, a)| a.response_excerpt.as_deref())
        .collect();
    sqlx::query(
        "UPDATE delivery_attempts d SET owner = c.owner, attempted_at = c.at,
             status_code = c.status, latency_ms = c.latency, error = c.error,
             outcome = 'delivered', response_excerpt = c.excerpt
         FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[],
                 $6::bigint[], $7::text[], $8::text[])
             AS c(attempt, notification, owner, at, status, latency, error, excerpt)
         WHERE d.id = c.attempt AND d.notification_id = c.notification",
    )
    .bind(&attempts)
    .bind(&notifications)
    .bind(&owners)
    .bind(&ats)
    .bind(&statuses)
    .bind(&latencies)
    .bind(&errors)
    .bind(&excerpts)
    .execute(&mut *conn)
    .await?;
    Ok(held.iter().map(|(index, _)| *index).collect())
}
