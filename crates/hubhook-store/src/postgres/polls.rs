//! SQL of poll jobs, known objects and the outbox commit.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use hubhook_core::InstanceId;
use jiff::{SignedDuration, Timestamp};
use sqlx::Row as _;
use sqlx::postgres::{PgConnection, PgRow};

/// Rows per statement of the outbox commit: array parameters instead of one round trip per
/// row (a page of 1000 records is then a handful of statements).
const BATCH: usize = 1000;

use super::{
    IN_LIST_CHUNK, PostgresStore, Wake, backlog, duration_ms, new_lease_token, notify,
    optional_timestamp, timestamp,
};
use crate::{
    Backlog, CommitOutcome, JobHealth, KnownId, KnownObject, LeaseToken, MassDeleteAction,
    PollCommit, PollDone, PollJob, PollProgress, PollTrouble, Result, StoreError,
};

impl PostgresStore {
    pub async fn poll_now(&self, id: InstanceId, now: Timestamp) -> Result<bool> {
        self.write(move |conn| {
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
                    "UPDATE poll_jobs SET next_run_at = $2, poll_requested = true
                         WHERE instance_id = $1",
                )
                .bind(id.0)
                .bind(now.as_millisecond())
                .execute(&mut *conn)
                .await?;
                notify(conn, Wake::Polls).await?;
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
            .write(move |conn| {
                Box::pin(async move {
                    // A lease whose end has come is free: a crashed worker's job is taken over
                    // without any reaper. Every claimed row gets its own token.
                    // SKIP LOCKED: nodes claiming at the same moment each take different rows
                    // instead of queueing behind one another's row locks; a row another
                    // claim has locked is simply not claimable right now. The outer UPDATE
                    // re-checks nothing: the rows are locked by the CTE until commit.
                    let rows = sqlx::query(concat!(
                        "WITH due AS (
                             SELECT j.instance_id, j.resource, i.updated_at AS instance_updated_at
                             FROM poll_jobs j JOIN instances i ON i.id = j.instance_id AND i.organization_id = j.organization_id
                             WHERE j.next_run_at <= $3
                               AND (j.lease_until IS NULL OR j.lease_until <= $3)
                               AND NOT i.disabled AND i.events_enabled
                             ORDER BY j.next_run_at
                             LIMIT $4
                             FOR UPDATE OF j SKIP LOCKED)
                         UPDATE poll_jobs p SET lease_owner = $1, lease_until = $2,
                             poll_requested = false, lease_token = ",
                        new_lease_token!(),
                        " FROM due
                         WHERE p.instance_id = due.instance_id AND p.resource = due.resource
                         RETURNING p.instance_id, p.resource, p.cursor, p.next_run_at,
                             p.lease_until, p.lease_token, p.checkpoint, p.next_reconcile_at,
                             p.mass_delete_action, p.settled_before, p.clock_lag_ms,
                             p.added_at, due.instance_updated_at"
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
        self.write(move |conn| {
            Box::pin(async move {
                let renewed = sqlx::query(
                    "UPDATE poll_jobs SET lease_until = GREATEST(lease_until, $4)
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
            // The id list travels as one array parameter, so the SQL text stays fixed.
            let rows = sqlx::query(
                "SELECT object_id, content_hash, record, deleted, revision FROM known_objects
                 WHERE instance_id = $1 AND resource = $2
                   AND object_id = ANY($3)",
            )
            .bind(instance.0)
            .bind(resource)
            .bind(chunk)
            .fetch_all(&self.pool)
            .await?;
            for row in rows {
                known.insert(
                    row.try_get("object_id")?,
                    KnownObject {
                        content_hash: row.try_get("content_hash")?,
                        record: row.try_get("record")?,
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
             WHERE instance_id = $1 AND resource = $2 AND NOT deleted
               AND numeric_id > $3 AND numeric_id <= $4
             ORDER BY numeric_id LIMIT $5",
        )
        .bind(instance.0)
        .bind(resource)
        .bind(after.unwrap_or(i64::MIN))
        .bind(up_to)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
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
             WHERE instance_id = $1 AND resource = $2 AND NOT deleted",
        )
        .bind(instance.0)
        .bind(resource)
        .fetch_one(&self.pool)
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
        .fetch_all(&self.pool)
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
        self.write(move |conn| {
            Box::pin(async move {
                let updated = sqlx::query(
                    "UPDATE poll_jobs SET mass_delete_action = $3,
                             next_reconcile_at = $4,
                             next_run_at = LEAST(next_run_at, $4)
                         WHERE instance_id = $1 AND resource = $2
                           AND mass_delete_held IS NOT NULL",
                )
                .bind(instance.0)
                .bind(&resource)
                .bind(action.as_str())
                .bind(now.as_millisecond())
                .execute(&mut *conn)
                .await?;
                if updated.rows_affected() > 0 {
                    notify(conn, Wake::Polls).await?;
                }
                Ok(updated.rows_affected() > 0)
            })
        })
        .await
    }

    pub async fn commit_poll(&self, commit: PollCommit) -> Result<CommitOutcome> {
        self.write(move |conn| Box::pin(commit_poll(conn, commit)))
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
        self.write(move |conn| {
            Box::pin(async move {
                // A poll asked for while this one ran keeps the time poll_now gave it (the
                // column holds it: claiming does not touch next_run_at).
                let updated = sqlx::query(
                    "UPDATE poll_jobs SET last_error = $4, last_error_at = $6,
                             next_run_at = CASE WHEN poll_requested
                                 THEN LEAST(next_run_at, $5) ELSE $5 END,
                             poll_requested = false, lease_owner = NULL, lease_until = NULL,
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
        self.write(move |conn| {
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
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(GREATEST(j.next_run_at, COALESCE(j.lease_until, j.next_run_at)))
             FROM poll_jobs j JOIN instances i ON i.id = j.instance_id AND i.organization_id = j.organization_id
             WHERE NOT i.disabled AND i.events_enabled",
        )
        .fetch_one(&self.pool)
        .await?;
        due.map(timestamp).transpose()
    }

    pub async fn poll_backlog(&self, now: Timestamp) -> Result<Backlog> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS due, MIN(j.next_run_at) AS oldest
             FROM poll_jobs j JOIN instances i ON i.id = j.instance_id AND i.organization_id = j.organization_id
             WHERE j.next_run_at <= $1 AND (j.lease_until IS NULL OR j.lease_until <= $1)
               AND NOT i.disabled AND i.events_enabled",
        )
        .bind(now.as_millisecond())
        .fetch_one(&self.pool)
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
        let resources = resources.map(<[String]>::to_vec);
        let (now, gap) = (now.as_millisecond(), duration_ms(reconcile_gap));
        self.write(move |conn| {
            Box::pin(async move {
                let touched: Vec<String> = sqlx::query_scalar(
                    "UPDATE poll_jobs SET next_run_at = LEAST(next_run_at, $3),
                         poll_requested = true,
                         next_reconcile_at = CASE
                             WHEN $4 AND next_reconcile_at IS NOT NULL THEN
                                 LEAST(next_reconcile_at,
                                     GREATEST($3, COALESCE(last_reconciled_at, 0) + $5))
                             ELSE next_reconcile_at END
                     WHERE instance_id = $1
                       AND ($2::text[] IS NULL OR resource = ANY($2))
                     RETURNING resource",
                )
                .bind(instance.0)
                .bind(resources)
                .bind(now)
                .bind(deleted)
                .bind(gap)
                .fetch_all(&mut *conn)
                .await?;
                if !touched.is_empty() {
                    notify(conn, Wake::Polls).await?;
                }
                Ok(touched)
            })
        })
        .await
    }

    pub async fn poll_trouble(&self) -> Result<PollTrouble> {
        let row = sqlx::query(
            "SELECT COALESCE(COUNT(*) FILTER (WHERE last_error IS NOT NULL), 0) AS failing,
                 COALESCE(COUNT(*) FILTER (WHERE mass_delete_held IS NOT NULL), 0) AS held,
                 COALESCE(COUNT(*) FILTER (WHERE record_problems > 0), 0) AS problems
             FROM poll_jobs",
        )
        .fetch_one(&self.pool)
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
        let rows = sqlx::query(
            "SELECT j.instance_id, j.resource, j.cursor, j.next_run_at, j.lease_until,
                 NULL AS lease_token, j.checkpoint, j.next_reconcile_at, j.mass_delete_action,
                 j.settled_before, j.clock_lag_ms, j.added_at,
                 i.updated_at AS instance_updated_at
             FROM poll_jobs j JOIN instances i
                 ON i.id = j.instance_id AND i.organization_id = j.organization_id
             WHERE j.instance_id = $1 ORDER BY j.resource",
        )
        .bind(instance.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(poll_job).collect()
    }
}

/// The outbox write: objects seen and vanished, events, notifications, and the checkpoint or
/// the end of the poll, all or nothing.
async fn commit_poll(conn: &mut PgConnection, commit: PollCommit) -> Result<CommitOutcome> {
    // Fenced on the claim's token: once a lease ends and the job is claimed again (by another
    // node, or by this node after a restart), the token changes, and that is what must stop
    // this late result. A missing job means the instance was deleted meanwhile, which must
    // stop it too. FOR UPDATE locks the job row until this transaction ends, so no claim can
    // take the job between this check and the writes below (a claim skips the locked row).
    let held: Option<i64> = sqlx::query_scalar(
        "SELECT organization_id FROM poll_jobs WHERE instance_id = $1 AND resource = $2 AND lease_token = $3
         FOR UPDATE",
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
    upsert_known_objects(conn, &commit, organization, now).await?;
    if !commit.vanished.is_empty() {
        sqlx::query(
            "UPDATE known_objects SET deleted = true,
                 revision = revision + CASE WHEN deleted THEN 0 ELSE 1 END
             WHERE instance_id = $1 AND resource = $2 AND object_id = ANY($3)",
        )
        .bind(commit.instance_id.0)
        .bind(&commit.resource)
        .bind(&commit.vanished)
        .execute(&mut *conn)
        .await?;
    }
    // The order lock is for the inserts: a commit with nothing to insert (most polls find no
    // change) draws no position, so it neither waits for the instance's other writers nor
    // spends a round trip on the lock.
    if !commit.events.is_empty() || !commit.notifications.is_empty() {
        lock_instance_order(conn, commit.instance_id).await?;
    }
    let outcome = insert_events(conn, &commit, organization, now).await?;
    if outcome.notifications_inserted > 0 {
        notify(conn, Wake::Deliveries).await?;
    }
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
    conn: &mut PgConnection,
    commit: &PollCommit,
    organization: i64,
    now: i64,
) -> Result<CommitOutcome> {
    let mut outcome = CommitOutcome::default();
    let mut new_events = HashSet::new();
    for chunk in commit.events.chunks(BATCH) {
        // Event ids are deterministic, so a change seen twice lands once. Rows are inserted
        // in the commit's order (ORDINALITY), which is their storage order.
        let inserted: Vec<String> = sqlx::query_scalar(
            "INSERT INTO events (id, instance_id, object_type, object_id, event_type, event_date,
                 record, created_at, organization_id)
             SELECT id, $1, object_type, object_id, event_type, event_date, record, $2, $3
             FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::int8[], $9::text[])
                 WITH ORDINALITY AS e (id, object_type, object_id, event_type, event_date,
                     record, n)
             ORDER BY n
             ON CONFLICT (id) DO NOTHING
             RETURNING id",
        )
        .bind(commit.instance_id.0)
        .bind(now)
        .bind(organization)
        .bind(chunk.iter().map(|e| e.id.0.as_str()).collect::<Vec<_>>())
        .bind(
            chunk
                .iter()
                .map(|e| e.object_type.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            chunk
                .iter()
                .map(|e| e.object_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            chunk
                .iter()
                .map(|e| e.event_type.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            chunk
                .iter()
                .map(|e| e.event_date.as_millisecond())
                .collect::<Vec<_>>(),
        )
        .bind(
            chunk
                .iter()
                .map(|e| e.record_json.as_str())
                .collect::<Vec<_>>(),
        )
        .fetch_all(&mut *conn)
        .await?;
        outcome.events_inserted += inserted.len();
        new_events.extend(inserted);
    }
    // A notification made only of events stored before (the same changes seen by an earlier,
    // overlapping run, grouped differently) would deliver them a second time.
    let notifications: Vec<_> = commit
        .notifications
        .iter()
        .filter(|n| n.event_ids.iter().any(|id| new_events.contains(&id.0)))
        .collect();
    // An event keeps the first notification that carried it; a later duplicate does not
    // rewrite that history.
    let mut links: Vec<(&str, &str)> = Vec::new();
    let mut linked = HashSet::new();
    for notification in &notifications {
        for event in &notification.event_ids {
            if linked.insert(event.0.as_str()) {
                links.push((event.0.as_str(), notification.id.0.as_str()));
            }
        }
    }
    for chunk in notifications.chunks(BATCH) {
        let inserted = sqlx::query(
            "INSERT INTO notifications (id, instance_id, body, status, failed_attempts,
                 next_attempt_at, created_at, organization_id)
             SELECT id, $1, body, 'pending', 0, $2, $2, $3
             FROM unnest($4::text[], $5::text[]) WITH ORDINALITY AS n (id, body, k)
             ORDER BY k
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(commit.instance_id.0)
        .bind(now)
        .bind(organization)
        .bind(chunk.iter().map(|n| n.id.0.as_str()).collect::<Vec<_>>())
        .bind(chunk.iter().map(|n| n.body.as_str()).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
        outcome.notifications_inserted +=
            usize::try_from(inserted.rows_affected()).unwrap_or(usize::MAX);
    }
    for chunk in links.chunks(BATCH) {
        sqlx::query(
            "UPDATE events e SET notification_id = l.notification
             FROM unnest($1::text[], $2::text[]) AS l (event, notification)
             WHERE e.id = l.event AND e.notification_id IS NULL",
        )
        .bind(chunk.iter().map(|(e, _)| *e).collect::<Vec<_>>())
        .bind(chunk.iter().map(|(_, n)| *n).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    Ok(outcome)
}

/// Upserts what the poll saw of each object, as array parameters (one statement per
/// [`BATCH`] objects, not one per object). An object seen twice in one commit keeps its last
/// sighting, as one statement per object would (one upsert cannot touch a row twice).
async fn upsert_known_objects(
    conn: &mut PgConnection,
    commit: &PollCommit,
    organization: i64,
    now: i64,
) -> Result<()> {
    let mut last = HashMap::new();
    for (n, object) in commit.observed.iter().enumerate() {
        last.insert(object.object_id.as_str(), n);
    }
    let objects: Vec<_> = commit
        .observed
        .iter()
        .enumerate()
        .filter(|(n, object)| last.get(object.object_id.as_str()) == Some(n))
        .map(|(_, object)| object)
        .collect();
    for chunk in objects.chunks(BATCH) {
        sqlx::query(
            "INSERT INTO known_objects (instance_id, resource, object_id, content_hash, updated_at,
                 record, deleted, seen_at, numeric_id, organization_id)
             SELECT $1, $2, object_id, content_hash, updated_at, record, deleted, $3, numeric_id,
                 $4
             FROM unnest($5::text[], $6::text[], $7::int8[], $8::text[], $9::bool[], $10::int8[])
                 AS o (object_id, content_hash, updated_at, record, deleted, numeric_id)
             ON CONFLICT (instance_id, resource, object_id)
             DO UPDATE SET content_hash = excluded.content_hash, updated_at = excluded.updated_at,
                 record = excluded.record, deleted = excluded.deleted, seen_at = excluded.seen_at,
                 revision = known_objects.revision + CASE
                     WHEN known_objects.content_hash = excluded.content_hash
                         AND known_objects.deleted = excluded.deleted THEN 0 ELSE 1 END",
        )
        .bind(commit.instance_id.0)
        .bind(&commit.resource)
        .bind(now)
        .bind(organization)
        .bind(
            chunk
                .iter()
                .map(|o| o.object_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            chunk
                .iter()
                .map(|o| o.content_hash.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            chunk
                .iter()
                .map(|o| o.updated_at.as_millisecond())
                .collect::<Vec<_>>(),
        )
        .bind(chunk.iter().map(|o| o.record.as_str()).collect::<Vec<_>>())
        .bind(chunk.iter().map(|o| o.deleted).collect::<Vec<_>>())
        .bind(
            chunk
                .iter()
                .map(|o| o.object_id.parse::<i64>().ok())
                .collect::<Vec<_>>(),
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The end of a poll: cursor, schedule, figures, reconciliation, and the lease released.
async fn finish_poll(
    conn: &mut PgConnection,
    instance: &InstanceId,
    resource: &str,
    token: &LeaseToken,
    now: i64,
    done: PollDone,
) -> Result<()> {
    // A poll asked for (poll_now) while this one ran is due at once, not an interval later.
    // The cursor (and the settled instant) never moves backwards: a poll that outlived its
    // lease may commit older results after newer ones.
    sqlx::query(
        "UPDATE poll_jobs SET cursor = CASE WHEN $4 IS NULL THEN cursor
                                            WHEN cursor IS NULL OR $4 > cursor THEN $4
                                            ELSE cursor END,
             next_run_at = CASE WHEN poll_requested THEN $6 ELSE $5 END,
             poll_requested = false, last_polled_at = $6,
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
    Ok(())
}

fn poll_job(row: &PgRow) -> Result<PollJob> {
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

/// Takes the instance's storage-order lock until the transaction ends. Events and
/// notifications draw their `position` (their storage order, which the pull feed and ordered
/// delivery follow) when inserted; two transactions of one instance inserting at once could
/// commit in the other order than they drew positions, and a reader paging by position would
/// then skip the row that committed late. Under this lock, one instance's inserts draw and
/// commit in the same order. Other instances are not held up.
pub(super) async fn lock_instance_order(
    conn: &mut PgConnection,
    instance: InstanceId,
) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(instance.0)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
