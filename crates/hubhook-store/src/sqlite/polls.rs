//! SQL of poll jobs, known objects and the outbox commit.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use hubhook_core::InstanceId;
use jiff::Timestamp;
use sqlx::Row as _;
use sqlx::sqlite::{SqliteConnection, SqliteRow};

use super::{
    IN_LIST_CHUNK, SqliteStore, backlog, duration_ms, new_lease_token, optional_timestamp,
    timestamp, to_json,
};
use crate::{Backlog, CommitOutcome, LeaseToken, PollCommit, PollJob, Result, StoreError};

impl SqliteStore {
    pub async fn poll_now(&self, id: InstanceId, now: Timestamp) -> Result<bool> {
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let found: Option<i64> =
                        sqlx::query_scalar("SELECT id FROM instances WHERE id = $1")
                            .bind(id.0)
                            .fetch_optional(&mut *conn)
                            .await?;
                    if found.is_none() {
                        return Ok(false);
                    }
                    // The flag survives a poll already running: its commit or failure then
                    // reschedules the job now rather than an interval later.
                    sqlx::query(
                        "UPDATE poll_jobs SET next_run_at = $2, poll_requested = 1
                         WHERE instance_id = $1",
                    )
                    .bind(id.0)
                    .bind(now.as_millisecond())
                    .execute(&mut *conn)
                    .await?;
                    Ok(true)
                })
            })
            .await
    }

    pub async fn claim_poll_jobs(
        &self,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<PollJob>> {
        let owner = owner.to_owned();
        let now = now.as_millisecond();
        let lease_until = now.saturating_add(duration_ms(lease));
        let rows = self
            .writer
            .write(move |conn| {
                Box::pin(async move {
                    // A lease whose end has come is free: a crashed worker's job is taken over
                    // without any reaper. Every claimed row gets its own token.
                    let rows = sqlx::query(concat!(
                        "UPDATE poll_jobs SET lease_owner = $1, lease_until = $2,
                             poll_requested = 0, lease_token = ",
                        new_lease_token!(),
                        " WHERE (instance_id, resource) IN (
                             SELECT j.instance_id, j.resource
                             FROM poll_jobs j JOIN instances i ON i.id = j.instance_id
                             WHERE j.next_run_at <= $3
                               AND (j.lease_until IS NULL OR j.lease_until <= $3)
                               AND i.disabled = 0 AND i.events_enabled = 1
                             ORDER BY j.next_run_at
                             LIMIT $4)
                         RETURNING instance_id, resource, cursor, next_run_at, lease_until,
                             lease_token"
                    ))
                    .bind(&owner)
                    .bind(lease_until)
                    .bind(now)
                    .bind(i64::from(limit))
                    .fetch_all(&mut *conn)
                    .await?;
                    Ok(rows)
                })
            })
            .await?;
        let mut jobs = rows.iter().map(poll_job).collect::<Result<Vec<_>>>()?;
        // RETURNING does not keep the subquery's order.
        jobs.sort_by_key(|job| job.next_run_at);
        Ok(jobs)
    }

    pub async fn renew_poll_lease(
        &self,
        instance: InstanceId,
        resource: &str,
        token: &LeaseToken,
        until: Timestamp,
    ) -> Result<()> {
        let (resource, token) = (resource.to_owned(), token.0.clone());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let renewed = sqlx::query(
                        "UPDATE poll_jobs SET lease_until = max(lease_until, $4)
                         WHERE instance_id = $1 AND resource = $2 AND lease_token = $3",
                    )
                    .bind(instance.0)
                    .bind(&resource)
                    .bind(&token)
                    .bind(until.as_millisecond())
                    .execute(&mut *conn)
                    .await?;
                    if renewed.rows_affected() == 0 {
                        return Err(StoreError::LeaseLost);
                    }
                    Ok(())
                })
            })
            .await
    }

    pub async fn known_objects(
        &self,
        instance: InstanceId,
        resource: &str,
        object_ids: &[String],
    ) -> Result<HashMap<String, String>> {
        let mut known = HashMap::new();
        for chunk in object_ids.chunks(IN_LIST_CHUNK) {
            // The id list travels as one JSON array parameter, so the SQL text stays fixed.
            let ids = to_json(chunk)?;
            let rows = sqlx::query(
                "SELECT object_id, content_hash FROM known_objects
                 WHERE instance_id = $1 AND resource = $2
                   AND object_id IN (SELECT value FROM json_each($3))",
            )
            .bind(instance.0)
            .bind(resource)
            .bind(&ids)
            .fetch_all(&self.readers)
            .await?;
            for row in rows {
                known.insert(row.try_get("object_id")?, row.try_get("content_hash")?);
            }
        }
        Ok(known)
    }

    pub async fn commit_poll(&self, commit: PollCommit) -> Result<CommitOutcome> {
        self.writer
            .write(move |conn| Box::pin(commit_poll(conn, commit)))
            .await
    }

    pub async fn fail_poll(
        &self,
        instance: InstanceId,
        resource: &str,
        token: &LeaseToken,
        next_run_at: Timestamp,
        error: &str,
    ) -> Result<()> {
        let (resource, token, error) = (resource.to_owned(), token.0.clone(), error.to_owned());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    // A poll asked for while this one ran keeps the time poll_now gave it (the
                    // column holds it: claiming does not touch next_run_at).
                    let updated = sqlx::query(
                        "UPDATE poll_jobs SET last_error = $4,
                             next_run_at = CASE WHEN poll_requested = 1
                                 THEN min(next_run_at, $5) ELSE $5 END,
                             poll_requested = 0, lease_owner = NULL, lease_until = NULL,
                             lease_token = NULL
                         WHERE instance_id = $1 AND resource = $2 AND lease_token = $3",
                    )
                    .bind(instance.0)
                    .bind(&resource)
                    .bind(&token)
                    .bind(&error)
                    .bind(next_run_at.as_millisecond())
                    .execute(&mut *conn)
                    .await?;
                    if updated.rows_affected() == 0 {
                        return Err(StoreError::LeaseLost);
                    }
                    Ok(())
                })
            })
            .await
    }

    pub async fn next_poll_due(&self) -> Result<Option<Timestamp>> {
        // A leased job cannot be claimed before its lease ends, whatever its next_run_at.
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(max(j.next_run_at, COALESCE(j.lease_until, j.next_run_at)))
             FROM poll_jobs j JOIN instances i ON i.id = j.instance_id
             WHERE i.disabled = 0 AND i.events_enabled = 1",
        )
        .fetch_one(&self.readers)
        .await?;
        due.map(timestamp).transpose()
    }

    pub async fn poll_backlog(&self, now: Timestamp) -> Result<Backlog> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS due, MIN(j.next_run_at) AS oldest
             FROM poll_jobs j JOIN instances i ON i.id = j.instance_id
             WHERE j.next_run_at <= $1 AND (j.lease_until IS NULL OR j.lease_until <= $1)
               AND i.disabled = 0 AND i.events_enabled = 1",
        )
        .bind(now.as_millisecond())
        .fetch_one(&self.readers)
        .await?;
        backlog(&row)
    }

    pub async fn poll_jobs(&self, instance: InstanceId) -> Result<Vec<PollJob>> {
        let rows = sqlx::query(
            "SELECT instance_id, resource, cursor, next_run_at, lease_until, NULL AS lease_token
             FROM poll_jobs WHERE instance_id = $1 ORDER BY resource",
        )
        .bind(instance.0)
        .fetch_all(&self.readers)
        .await?;
        rows.iter().map(poll_job).collect()
    }
}

/// The outbox write: objects seen, events, notifications and the cursor, all or nothing.
async fn commit_poll(conn: &mut SqliteConnection, commit: PollCommit) -> Result<CommitOutcome> {
    // Fenced on the claim's token: once a lease ends and the job is claimed again (by another
    // node, or by this node after a restart), the token changes, and that is what must stop
    // this late result. A missing job means the instance was deleted meanwhile, which must
    // stop it too. The writer runs one command at a time, so nothing can claim the job
    // between this check and the writes below.
    let held: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM poll_jobs WHERE instance_id = $1 AND resource = $2 AND lease_token = $3",
    )
    .bind(commit.instance_id.0)
    .bind(&commit.resource)
    .bind(&commit.lease_token.0)
    .fetch_optional(&mut *conn)
    .await?;
    if held.is_none() {
        return Err(StoreError::LeaseLost);
    }
    let now = commit.now.as_millisecond();
    for object in &commit.observed {
        sqlx::query(
            "INSERT INTO known_objects (instance_id, resource, object_id, content_hash, updated_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (instance_id, resource, object_id)
             DO UPDATE SET content_hash = excluded.content_hash, updated_at = excluded.updated_at",
        )
        .bind(commit.instance_id.0)
        .bind(&commit.resource)
        .bind(&object.object_id)
        .bind(&object.content_hash)
        .bind(object.updated_at.as_millisecond())
        .execute(&mut *conn)
        .await?;
    }
    let mut outcome = CommitOutcome::default();
    let mut new_events = HashSet::new();
    for event in &commit.events {
        // Event ids are deterministic, so a change seen twice lands once.
        let inserted = sqlx::query(
            "INSERT INTO events (id, instance_id, object_type, object_id, event_type, event_date,
                 record, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&event.id.0)
        .bind(commit.instance_id.0)
        .bind(&event.object_type)
        .bind(&event.object_id)
        .bind(&event.event_type)
        .bind(event.event_date.as_millisecond())
        .bind(&event.record_json)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        if inserted.rows_affected() > 0 {
            outcome.events_inserted += 1;
            new_events.insert(event.id.0.as_str());
        }
    }
    for notification in &commit.notifications {
        // A notification made only of events stored before (the same changes seen by an
        // earlier, overlapping run, grouped differently) would deliver them a second time.
        if !notification
            .event_ids
            .iter()
            .any(|id| new_events.contains(id.0.as_str()))
        {
            continue;
        }
        let inserted = sqlx::query(
            "INSERT INTO notifications (id, instance_id, body, status, failed_attempts,
                 next_attempt_at, created_at)
             VALUES ($1, $2, $3, 'pending', 0, $4, $4)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&notification.id.0)
        .bind(commit.instance_id.0)
        .bind(&notification.body)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        if inserted.rows_affected() > 0 {
            outcome.notifications_inserted += 1;
        }
        // An event keeps the first notification that carried it; a later duplicate does not
        // rewrite that history.
        for event_id in &notification.event_ids {
            sqlx::query(
                "UPDATE events SET notification_id = $1
                 WHERE id = $2 AND notification_id IS NULL",
            )
            .bind(&notification.id.0)
            .bind(&event_id.0)
            .execute(&mut *conn)
            .await?;
        }
    }
    // A poll asked for (poll_now) while this one ran is due at once, not an interval later.
    // The cursor never moves backwards: a poll that outlived its lease may commit older
    // results after newer ones.
    sqlx::query(
        "UPDATE poll_jobs SET cursor = CASE WHEN $4 IS NULL THEN cursor
                                            WHEN cursor IS NULL OR $4 > cursor THEN $4
                                            ELSE cursor END,
             next_run_at = CASE WHEN poll_requested = 1 THEN $6 ELSE $5 END,
             poll_requested = 0, last_error = NULL, last_polled_at = $6,
             record_problems = $7, record_problem = $8,
             lease_owner = NULL, lease_until = NULL, lease_token = NULL
         WHERE instance_id = $1 AND resource = $2 AND lease_token = $3",
    )
    .bind(commit.instance_id.0)
    .bind(&commit.resource)
    .bind(&commit.lease_token.0)
    .bind(commit.cursor.map(Timestamp::as_millisecond))
    .bind(commit.next_run_at.as_millisecond())
    .bind(now)
    .bind(i64::from(commit.record_problems))
    .bind(&commit.record_problem)
    .execute(&mut *conn)
    .await?;
    Ok(outcome)
}

fn poll_job(row: &SqliteRow) -> Result<PollJob> {
    Ok(PollJob {
        instance_id: InstanceId(row.try_get("instance_id")?),
        resource: row.try_get("resource")?,
        cursor: optional_timestamp(row, "cursor")?,
        next_run_at: timestamp(row.try_get("next_run_at")?)?,
        // Not leased reads as the epoch: a lease that ended long ago.
        lease_until: timestamp(row.try_get::<Option<i64>, _>("lease_until")?.unwrap_or(0))?,
        lease_token: row
            .try_get::<Option<String>, _>("lease_token")?
            .map(LeaseToken),
    })
}
