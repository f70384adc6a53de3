//! SQL of poll jobs, known objects and the outbox commit.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use hubhook_core::{InstanceId, cpu};
use jiff::{SignedDuration, Timestamp};
use sqlx::QueryBuilder;
use sqlx::Row as _;
use sqlx::sqlite::{Sqlite, SqliteConnection, SqliteRow};

use super::{
    IN_LIST_CHUNK, SqliteStore, backlog, duration_ms, new_lease_token, optional_timestamp, packed,
    timestamp, to_json,
};
use crate::{
    Backlog, CommitOutcome, JobHealth, KnownId, KnownObject, LeaseToken, MassDeleteAction,
    NewEvent, PollCommit, PollDone, PollJob, PollProgress, PollTrouble, Result, StoreError,
};

/// A job's instance's `updated_at` (its configuration version, `PollJob::instance_updated_at`)
/// as a column of a statement on `poll_jobs`: `UPDATE .. RETURNING` may not name a joined table,
/// but a scalar subquery in it may read one. A job always has its instance (deleting an
/// instance deletes its jobs in the same transaction), so the value is never NULL.
macro_rules! instance_updated_at {
    () => {
        "(SELECT i.updated_at FROM instances i
              WHERE i.id = poll_jobs.instance_id AND i.organization_id = poll_jobs.organization_id)
             AS instance_updated_at"
    };
}

impl SqliteStore {
    pub async fn poll_now(&self, id: InstanceId, now: Timestamp) -> Result<bool> {
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let found: Option<i64> = sqlx::query_scalar(
                        "SELECT id FROM instances WHERE id = $1 AND deleting = 0",
                    )
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
                             FROM poll_jobs j JOIN instances i ON i.id = j.instance_id AND i.organization_id = j.organization_id
                             WHERE j.next_run_at <= $3
                               AND (j.lease_until IS NULL OR j.lease_until <= $3)
                               AND i.disabled = 0 AND i.events_enabled = 1
                             ORDER BY j.next_run_at
                             LIMIT CAST($4 AS INTEGER))
                         RETURNING instance_id, resource, cursor, next_run_at, lease_until,
                             lease_token, checkpoint, next_reconcile_at, mass_delete_action,
                             settled_before, clock_lag_ms, added_at, ",
                        instance_updated_at!(),
                        ""
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
    ) -> Result<HashMap<String, KnownObject>> {
        let mut known = HashMap::new();
        for chunk in object_ids.chunks(IN_LIST_CHUNK) {
            // The id list travels as one JSON array parameter, so the SQL text stays fixed.
            let ids = to_json(chunk)?;
            let rows = sqlx::query(
                "SELECT object_id, content_hash, record, deleted, revision FROM known_objects
                 WHERE instance_id = $1 AND resource = $2
                   AND object_id IN (SELECT value FROM json_each($3))",
            )
            .bind(instance.0)
            .bind(resource)
            .bind(&ids)
            .fetch_all(&self.readers)
            .await?;
            for row in rows {
                known.insert(
                    row.try_get("object_id")?,
                    KnownObject {
                        content_hash: row.try_get("content_hash")?,
                        record: packed::optional_column(&row, "record")?,
                        deleted: row.try_get("deleted")?,
                        revision: u64::try_from(row.try_get::<i64, _>("revision")?)
                            .unwrap_or_default(),
                    },
                );
            }
        }
        Ok(known)
    }

    pub async fn known_ids(
        &self,
        instance: InstanceId,
        resource: &str,
        after: Option<i64>,
        up_to: i64,
        limit: u32,
    ) -> Result<Vec<KnownId>> {
        let rows = sqlx::query(
            "SELECT numeric_id, object_id, seen_at FROM known_objects
             WHERE instance_id = $1 AND resource = $2 AND deleted = 0
               AND numeric_id > $3 AND numeric_id <= $4
             ORDER BY numeric_id LIMIT CAST($5 AS INTEGER)",
        )
        .bind(instance.0)
        .bind(resource)
        .bind(after.unwrap_or(i64::MIN))
        .bind(up_to)
        .bind(i64::from(limit))
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(KnownId {
                    number: row.try_get("numeric_id")?,
                    object_id: row.try_get("object_id")?,
                    seen_at: optional_timestamp(row, "seen_at")?,
                })
            })
            .collect()
    }

    pub async fn known_count(&self, instance: InstanceId, resource: &str) -> Result<u64> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM known_objects
             WHERE instance_id = $1 AND resource = $2 AND deleted = 0",
        )
        .bind(instance.0)
        .bind(resource)
        .fetch_one(&self.readers)
        .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    pub async fn poll_health(
        &self,
        instance: InstanceId,
        now: Timestamp,
    ) -> Result<Vec<JobHealth>> {
        let rows = sqlx::query(
            "SELECT resource, cursor, last_polled_at, last_error, last_error_at, next_run_at,
                 lease_until, records_seen, events_emitted, record_problems, record_problem,
                 last_reconciled_at, next_reconcile_at, mass_delete_held
             FROM poll_jobs WHERE instance_id = $1 ORDER BY resource",
        )
        .bind(instance.0)
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|row| {
                let lease_until = optional_timestamp(row, "lease_until")?;
                Ok(JobHealth {
                    resource: row.try_get("resource")?,
                    cursor: optional_timestamp(row, "cursor")?,
                    last_success_at: optional_timestamp(row, "last_polled_at")?,
                    last_error: row.try_get("last_error")?,
                    last_error_at: optional_timestamp(row, "last_error_at")?,
                    next_run_at: timestamp(row.try_get("next_run_at")?)?,
                    running: lease_until.is_some_and(|until| until > now),
                    records_seen: count64(row.try_get("records_seen")?),
                    events_emitted: count64(row.try_get("events_emitted")?),
                    record_problems: count64(row.try_get("record_problems")?),
                    record_problem: row.try_get("record_problem")?,
                    last_reconciled_at: optional_timestamp(row, "last_reconciled_at")?,
                    next_reconcile_at: optional_timestamp(row, "next_reconcile_at")?,
                    mass_delete_held: row
                        .try_get::<Option<i64>, _>("mass_delete_held")?
                        .map(count64),
                })
            })
            .collect()
    }

    pub async fn resolve_mass_delete(
        &self,
        instance: InstanceId,
        resource: &str,
        action: MassDeleteAction,
        now: Timestamp,
    ) -> Result<bool> {
        let resource = resource.to_owned();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let updated = sqlx::query(
                        "UPDATE poll_jobs SET mass_delete_action = $3,
                             next_reconcile_at = $4,
                             next_run_at = min(next_run_at, $4)
                         WHERE instance_id = $1 AND resource = $2
                           AND mass_delete_held IS NOT NULL",
                    )
                    .bind(instance.0)
                    .bind(&resource)
                    .bind(action.as_str())
                    .bind(now.as_millisecond())
                    .execute(&mut *conn)
                    .await?;
                    Ok(updated.rows_affected() > 0)
                })
            })
            .await
    }

    pub async fn commit_poll(&self, commit: PollCommit) -> Result<CommitOutcome> {
        match QuietEnd::of(commit) {
            Ok(quiet) => self.end_quiet_poll(quiet).await,
            Err(commit) => self.commit_poll_in_full(*commit).await,
        }
    }

    /// The end of a poll that found nothing, the usual poll: one fenced statement, without a
    /// savepoint of its own (`Writer::write_unguarded`; a single statement has no part to undo
    /// alone). At 10,000 instances × 3 resources polled each minute this is 500 commits a
    /// second, and each statement is a round trip to the connection's thread (docs/benchmarks.md,
    /// seventh round): four of them became one.
    async fn end_quiet_poll(&self, quiet: QuietEnd) -> Result<CommitOutcome> {
        let QuietEnd {
            instance_id,
            resource,
            lease_token,
            now,
            done,
        } = quiet;
        let ended = self
            .writer
            .write_unguarded(move |conn| {
                Box::pin(async move {
                    finish_poll(conn, &instance_id, &resource, &lease_token, now, done).await
                })
            })
            .await?;
        if ended {
            Ok(CommitOutcome::default())
        } else {
            Err(StoreError::LeaseLost)
        }
    }

    async fn commit_poll_in_full(&self, commit: PollCommit) -> Result<CommitOutcome> {
        // Compressed before the writer, so that it only copies bytes.
        let (commit, stored) = Packed::of(commit).await;
        self.writer
            .write(move |conn| Box::pin(commit_poll(conn, commit, stored)))
            .await
    }

    pub async fn fail_poll(
        &self,
        instance: InstanceId,
        resource: &str,
        token: &LeaseToken,
        now: Timestamp,
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
                        "UPDATE poll_jobs SET last_error = $4, last_error_at = $6,
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
                    .bind(now.as_millisecond())
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

    pub async fn defer_poll(
        &self,
        instance: InstanceId,
        resource: &str,
        token: &LeaseToken,
        next_run_at: Timestamp,
    ) -> Result<()> {
        let (resource, token) = (resource.to_owned(), token.0.clone());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    // A poll asked for meanwhile still waits for the site: the deferral wins,
                    // but the request is kept for the run that follows.
                    let updated = sqlx::query(
                        "UPDATE poll_jobs SET next_run_at = $4, lease_owner = NULL,
                             lease_until = NULL, lease_token = NULL
                         WHERE instance_id = $1 AND resource = $2 AND lease_token = $3",
                    )
                    .bind(instance.0)
                    .bind(&resource)
                    .bind(&token)
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
        // Two index walks instead of a scan of every job (migration 0060): the earliest
        // unleased job of an enabled instance (CROSS JOIN keeps the jobs' due order as the
        // outer loop, so the walk stops at the first match), and the leased jobs, which are
        // at most the polls in flight plus leases left by crashed nodes.
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(due) FROM (
                 SELECT due FROM (
                     SELECT j.next_run_at AS due
                     FROM poll_jobs j CROSS JOIN instances i
                         ON i.id = j.instance_id AND i.organization_id = j.organization_id
                     WHERE j.lease_until IS NULL AND i.disabled = 0 AND i.events_enabled = 1
                     ORDER BY j.next_run_at LIMIT 1)
                 UNION ALL
                 SELECT max(j.next_run_at, j.lease_until)
                 FROM poll_jobs j CROSS JOIN instances i
                         ON i.id = j.instance_id AND i.organization_id = j.organization_id
                 WHERE j.lease_until IS NOT NULL AND i.disabled = 0 AND i.events_enabled = 1)",
        )
        .fetch_one(&self.readers)
        .await?;
        due.map(timestamp).transpose()
    }

    pub async fn poll_backlog(&self, now: Timestamp) -> Result<Backlog> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS due, MIN(j.next_run_at) AS oldest
             FROM poll_jobs j JOIN instances i ON i.id = j.instance_id AND i.organization_id = j.organization_id
             WHERE j.next_run_at <= $1 AND (j.lease_until IS NULL OR j.lease_until <= $1)
               AND i.disabled = 0 AND i.events_enabled = 1",
        )
        .bind(now.as_millisecond())
        .fetch_one(&self.readers)
        .await?;
        backlog(&row)
    }

    pub async fn callback_received(
        &self,
        instance: InstanceId,
        resources: Option<&[String]>,
        deleted: bool,
        now: Timestamp,
        reconcile_gap: Duration,
    ) -> Result<Vec<String>> {
        let resources =
            resources.map(|names| serde_json::to_string(names).unwrap_or_else(|_| "[]".into()));
        let (now, gap) = (now.as_millisecond(), duration_ms(reconcile_gap));
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let touched: Vec<String> = sqlx::query_scalar(
                        "UPDATE poll_jobs SET next_run_at = min(next_run_at, $3), poll_requested = 1,
                             next_reconcile_at = CASE
                                 WHEN $4 = 1 AND next_reconcile_at IS NOT NULL THEN
                                     min(next_reconcile_at,
                                         max($3, COALESCE(last_reconciled_at, 0) + $5))
                                 ELSE next_reconcile_at END
                         WHERE instance_id = $1
                           AND ($2 IS NULL OR resource IN (SELECT value FROM json_each($2)))
                         RETURNING resource",
                    )
                    .bind(instance.0)
                    .bind(resources)
                    .bind(now)
                    .bind(i64::from(deleted))
                    .bind(gap)
                    .fetch_all(&mut *conn)
                    .await?;
                    Ok(touched)
                })
            })
            .await
    }

    pub async fn poll_trouble(&self) -> Result<PollTrouble> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(last_error IS NOT NULL), 0) AS failing,
                 COALESCE(SUM(mass_delete_held IS NOT NULL), 0) AS held,
                 COALESCE(SUM(record_problems > 0), 0) AS problems
             FROM poll_jobs",
        )
        .fetch_one(&self.readers)
        .await?;
        let get = |name: &str| -> Result<u64> {
            let n: i64 = row.try_get(name)?;
            Ok(u64::try_from(n).unwrap_or(0))
        };
        Ok(PollTrouble {
            failing: get("failing")?,
            mass_delete_held: get("held")?,
            record_problems: get("problems")?,
        })
    }

    pub async fn poll_jobs(&self, instance: InstanceId) -> Result<Vec<PollJob>> {
        let rows = sqlx::query(concat!(
            "SELECT instance_id, resource, cursor, next_run_at, lease_until,
                     NULL AS lease_token, checkpoint, next_reconcile_at, mass_delete_action,
                     settled_before, clock_lag_ms, added_at, ",
            instance_updated_at!(),
            " FROM poll_jobs WHERE instance_id = $1 ORDER BY resource"
        ))
        .bind(instance.0)
        .fetch_all(&self.readers)
        .await?;
        rows.iter().map(poll_job).collect()
    }
}

/// The outbox write: objects seen and vanished, events, notifications, and the checkpoint or
/// the end of the poll, all or nothing.
/// Rows per multi-row INSERT: ten columns a row stays far below SQLite's 32,766 parameters.
const ROWS_PER_STATEMENT: usize = 100;

/// A commit's JSON columns in their stored form (see [`packed`]), in the commit's order.
struct Packed {
    observed: Vec<Vec<u8>>,
    events: Vec<Vec<u8>>,
    notifications: Vec<Vec<u8>>,
}

impl Packed {
    /// Packs `commit`'s JSON columns; large commits on the blocking pool, in one part per core
    /// (`hubhook_core::cpu::map`), beside the poll reading its next page.
    async fn of(mut commit: PollCommit) -> (PollCommit, Packed) {
        let body_bytes: usize = commit.notifications.iter().map(|n| n.body.len()).sum();
        let large = commit.observed.len() + commit.events.len() >= cpu::LARGE
            || body_bytes >= cpu::LARGE * 1024;
        let observed;
        (commit.observed, observed) = pack_each(large, std::mem::take(&mut commit.observed), |o| {
            packed::pack_record(&o.record)
        })
        .await;
        // An event usually stores the very text its object was observed as: packed once.
        let by_object: HashMap<&str, usize> = commit
            .observed
            .iter()
            .enumerate()
            .map(|(i, o)| (o.object_id.as_str(), i))
            .collect();
        let events: Vec<(NewEvent, Option<Vec<u8>>)> = std::mem::take(&mut commit.events)
            .into_iter()
            .map(|event| {
                let same = match by_object.get(event.object_id.as_str()) {
                    Some(&i) if commit.observed[i].record == event.record_json => {
                        Some(observed[i].clone())
                    }
                    _ => None,
                };
                (event, same)
            })
            .collect();
        let (rows, events) = pack_each(large, events, |(event, same)| {
            same.take()
                .unwrap_or_else(|| packed::pack_record(&event.record_json))
        })
        .await;
        commit.events = rows.into_iter().map(|(event, _)| event).collect();
        let notifications;
        (commit.notifications, notifications) = pack_each(
            large,
            std::mem::take(&mut commit.notifications),
            |notification| packed::pack(&notification.body),
        )
        .await;
        let stored = Packed {
            observed,
            events,
            notifications,
        };
        (commit, stored)
    }
}

/// `items`, and beside them what `pack` makes of each, in the same order (through
/// `hubhook_core::cpu::map`, so a `large` step runs on the blocking pool in parts).
async fn pack_each<T, F>(large: bool, items: Vec<T>, pack: F) -> (Vec<T>, Vec<Vec<u8>>)
where
    T: Send + 'static,
    F: Fn(&mut T) -> Vec<u8> + Send + Sync + 'static,
{
    cpu::map(large, items, move |mut item| {
        let packed = pack(&mut item);
        (item, packed)
    })
    .await
    .into_iter()
    .unzip()
}

/// A commit that only ends its poll: nothing observed, vanished or new, no reconciliation.
struct QuietEnd {
    instance_id: InstanceId,
    resource: String,
    lease_token: LeaseToken,
    now: i64,
    done: PollDone,
}

impl QuietEnd {
    /// `commit` as a quiet end, or `commit` back (boxed: it is large) when it carries more.
    fn of(commit: PollCommit) -> std::result::Result<QuietEnd, Box<PollCommit>> {
        let quiet = commit.observed.is_empty()
            && commit.vanished.is_empty()
            && commit.events.is_empty()
            && commit.notifications.is_empty();
        match commit.progress {
            PollProgress::Done(done) if quiet && done.reconciled.is_none() => Ok(QuietEnd {
                instance_id: commit.instance_id,
                resource: commit.resource,
                lease_token: commit.lease_token,
                now: commit.now.as_millisecond(),
                done,
            }),
            progress => Err(Box::new(PollCommit { progress, ..commit })),
        }
    }
}

async fn commit_poll(
    conn: &mut SqliteConnection,
    commit: PollCommit,
    stored: Packed,
) -> Result<CommitOutcome> {
    // Fenced on the claim's token: once a lease ends and the job is claimed again (by another
    // node, or by this node after a restart), the token changes, and that is what must stop
    // this late result. A missing job means the instance was deleted meanwhile, which must
    // stop it too. The writer runs one command at a time, so nothing can claim the job
    // between this check and the writes below.
    let held: Option<i64> = sqlx::query_scalar(
        "SELECT organization_id FROM poll_jobs WHERE instance_id = $1 AND resource = $2 AND lease_token = $3",
    )
    .bind(commit.instance_id.0)
    .bind(&commit.resource)
    .bind(&commit.lease_token.0)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(organization) = held else {
        return Err(StoreError::LeaseLost);
    };
    let now = commit.now.as_millisecond();
    // Many rows to a statement: every statement is a round trip to the connection's thread,
    // and a page of a thousand records would otherwise be thousands of them.
    let observed: Vec<_> = commit.observed.iter().zip(&stored.observed).collect();
    for rows in observed.chunks(ROWS_PER_STATEMENT) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO known_objects (instance_id, resource, object_id, content_hash, updated_at,
                 record, deleted, seen_at, numeric_id, organization_id) ",
        );
        insert.push_values(rows, |mut row, (object, record)| {
            row.push_bind(commit.instance_id.0)
                .push_bind(&commit.resource)
                .push_bind(&object.object_id)
                .push_bind(&object.content_hash)
                .push_bind(object.updated_at.as_millisecond())
                .push_bind(*record)
                .push_bind(object.deleted)
                .push_bind(now)
                .push_bind(object.object_id.parse::<i64>().ok())
                .push_bind(organization);
        });
        insert.push(
            " ON CONFLICT (instance_id, resource, object_id)
             DO UPDATE SET content_hash = excluded.content_hash, updated_at = excluded.updated_at,
                 record = excluded.record, deleted = excluded.deleted, seen_at = excluded.seen_at,
                 revision = known_objects.revision + CASE
                     WHEN known_objects.content_hash = excluded.content_hash
                         AND known_objects.deleted = excluded.deleted THEN 0 ELSE 1 END",
        );
        insert.build().execute(&mut *conn).await?;
    }
    for object_id in &commit.vanished {
        sqlx::query(
            "UPDATE known_objects SET deleted = 1,
                 revision = revision + CASE WHEN deleted THEN 0 ELSE 1 END
             WHERE instance_id = $1 AND resource = $2 AND object_id = $3",
        )
        .bind(commit.instance_id.0)
        .bind(&commit.resource)
        .bind(object_id)
        .execute(&mut *conn)
        .await?;
    }
    let outcome = insert_events(conn, &commit, &stored, organization, now).await?;
    match commit.progress {
        PollProgress::Checkpoint(checkpoint) => {
            sqlx::query(
                "UPDATE poll_jobs SET checkpoint = $4
                 WHERE instance_id = $1 AND resource = $2 AND lease_token = $3",
            )
            .bind(commit.instance_id.0)
            .bind(&commit.resource)
            .bind(&commit.lease_token.0)
            .bind(&checkpoint)
            .execute(&mut *conn)
            .await?;
        }
        PollProgress::Done(done) => {
            finish_poll(
                conn,
                &commit.instance_id,
                &commit.resource,
                &commit.lease_token,
                now,
                done,
            )
            .await?;
        }
    }
    Ok(outcome)
}

/// Inserts a commit's events and notifications; counts what was new.
async fn insert_events(
    conn: &mut SqliteConnection,
    commit: &PollCommit,
    stored: &Packed,
    organization: i64,
    now: i64,
) -> Result<CommitOutcome> {
    let mut outcome = CommitOutcome::default();
    // Each event is inserted with the notification that carries it. A new event is always in
    // a notification that is inserted below (a notification is kept when any of its events is
    // new), so this is the link the event would otherwise get from an UPDATE after the insert,
    // one row rewrite per event spared. An event in two notifications of the commit keeps the
    // first.
    let mut carried_by: HashMap<&str, &str> = HashMap::new();
    for notification in &commit.notifications {
        for event in &notification.event_ids {
            carried_by
                .entry(event.0.as_str())
                .or_insert(notification.id.0.as_str());
        }
    }
    // Event ids are deterministic, so a change seen twice lands once; RETURNING names the
    // events that are new.
    let mut new_events: HashSet<String> = HashSet::new();
    let events: Vec<_> = commit.events.iter().zip(&stored.events).collect();
    for rows in events.chunks(ROWS_PER_STATEMENT) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO events (id, instance_id, object_type, object_id, event_type, event_date,
                 record, created_at, organization_id, notification_id) ",
        );
        insert.push_values(rows, |mut row, (event, record)| {
            row.push_bind(&event.id.0)
                .push_bind(commit.instance_id.0)
                .push_bind(&event.object_type)
                .push_bind(&event.object_id)
                .push_bind(&event.event_type)
                .push_bind(event.event_date.as_millisecond())
                .push_bind(*record)
                .push_bind(now)
                .push_bind(organization)
                .push_bind(carried_by.get(event.id.0.as_str()).copied());
        });
        insert.push(" ON CONFLICT (id) DO NOTHING RETURNING id");
        let inserted: Vec<String> = insert.build_query_scalar().fetch_all(&mut *conn).await?;
        outcome.events_inserted += inserted.len();
        new_events.extend(inserted);
    }
    // A notification made only of events stored before (the same changes seen by an earlier,
    // overlapping run, grouped differently) would deliver them a second time.
    let notifications: Vec<_> = commit
        .notifications
        .iter()
        .zip(&stored.notifications)
        .filter(|(notification, _)| {
            notification
                .event_ids
                .iter()
                .any(|id| new_events.contains(&id.0))
        })
        .collect();
    for rows in notifications.chunks(ROWS_PER_STATEMENT) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO notifications (id, instance_id, body, status, failed_attempts,
                 next_attempt_at, created_at, organization_id) ",
        );
        insert.push_values(rows, |mut row, (notification, body)| {
            row.push_bind(&notification.id.0)
                .push_bind(commit.instance_id.0)
                .push_bind(*body)
                .push_bind("pending")
                .push_bind(0_i64)
                .push_bind(now)
                .push_bind(now)
                .push_bind(organization);
        });
        insert.push(" ON CONFLICT (id) DO NOTHING");
        outcome.notifications_inserted +=
            insert.build().execute(&mut *conn).await?.rows_affected() as usize;
    }
    // A kept notification may also carry events stored before (grouped differently); those
    // that no notification carried yet get this one. An event keeps the first notification
    // that carried it; a later duplicate does not rewrite that history.
    for (notification, _) in &notifications {
        let old: Vec<&str> = notification
            .event_ids
            .iter()
            .map(|id| id.0.as_str())
            .filter(|id| !new_events.contains(*id))
            .collect();
        if old.is_empty() {
            continue;
        }
        sqlx::query(
            "UPDATE events SET notification_id = $1
             WHERE id IN (SELECT value FROM json_each($2)) AND notification_id IS NULL",
        )
        .bind(&notification.id.0)
        .bind(to_json(&old)?)
        .execute(&mut *conn)
        .await?;
    }
    Ok(outcome)
}

/// The end of a poll: cursor, schedule, figures, reconciliation, and the lease released.
/// Fenced on the claim's token: `false` when it no longer holds (the job was claimed again,
/// or its instance deleted), and then nothing is written.
async fn finish_poll(
    conn: &mut SqliteConnection,
    instance: &InstanceId,
    resource: &str,
    token: &LeaseToken,
    now: i64,
    done: PollDone,
) -> Result<bool> {
    // A poll asked for (poll_now) while this one ran is due at once, not an interval later.
    // The cursor (and the settled instant) never moves backwards: a poll that outlived its
    // lease may commit older results after newer ones.
    let ended = sqlx::query(
        "UPDATE poll_jobs SET cursor = CASE WHEN $4 IS NULL THEN cursor
                                            WHEN cursor IS NULL OR $4 > cursor THEN $4
                                            ELSE cursor END,
             next_run_at = CASE WHEN poll_requested = 1 THEN $6 ELSE $5 END,
             poll_requested = 0, last_polled_at = $6,
             last_error = $12,
             last_error_at = CASE WHEN $12 IS NULL THEN last_error_at ELSE $6 END,
             records_seen = $7, events_emitted = $8,
             record_problems = $9, record_problem = $10,
             next_reconcile_at = COALESCE($11, next_reconcile_at),
             settled_before = CASE WHEN $13 IS NULL THEN settled_before
                                   WHEN settled_before IS NULL OR $13 > settled_before THEN $13
                                   ELSE settled_before END,
             clock_lag_ms = COALESCE($14, clock_lag_ms),
             checkpoint = NULL, lease_owner = NULL, lease_until = NULL, lease_token = NULL
         WHERE instance_id = $1 AND resource = $2 AND lease_token = $3",
    )
    .bind(instance.0)
    .bind(resource)
    .bind(&token.0)
    .bind(done.cursor.map(Timestamp::as_millisecond))
    .bind(done.next_run_at.as_millisecond())
    .bind(now)
    .bind(i64::try_from(done.records_seen).unwrap_or(i64::MAX))
    .bind(i64::try_from(done.events_emitted).unwrap_or(i64::MAX))
    .bind(i64::from(done.record_problems))
    .bind(&done.record_problem)
    .bind(done.schedule_reconcile_at.map(Timestamp::as_millisecond))
    .bind(&done.error)
    .bind(done.settled_before.map(Timestamp::as_millisecond))
    .bind(done.clock_lag.map(|lag| lag.as_millis() as i64))
    .execute(&mut *conn)
    .await?;
    if ended.rows_affected() == 0 {
        return Ok(false);
    }
    if let Some(reconciled) = done.reconciled {
        // The user's decision is used up by the reconciliation that acted on it.
        sqlx::query(
            "UPDATE poll_jobs SET last_reconciled_at = $3, next_reconcile_at = $4,
                 mass_delete_held = $5, mass_delete_action = NULL
             WHERE instance_id = $1 AND resource = $2",
        )
        .bind(instance.0)
        .bind(resource)
        .bind(now)
        .bind(reconciled.next_at.as_millisecond())
        .bind(
            reconciled
                .mass_delete_held
                .map(|held| i64::try_from(held).unwrap_or(i64::MAX)),
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(true)
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
        checkpoint: row.try_get("checkpoint")?,
        next_reconcile_at: optional_timestamp(row, "next_reconcile_at")?,
        mass_delete_action: row
            .try_get::<Option<String>, _>("mass_delete_action")?
            .as_deref()
            .and_then(MassDeleteAction::parse),
        settled_before: optional_timestamp(row, "settled_before")?,
        clock_lag: row
            .try_get::<Option<i64>, _>("clock_lag_ms")?
            .map(SignedDuration::from_millis),
        added_at: timestamp(row.try_get("added_at")?)?,
        instance_updated_at: timestamp(row.try_get("instance_updated_at")?)?,
    })
}

fn count64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}
