//! The SQLite backend: one writer task (see [`writer`]) and a pool of read-only readers.
//!
//! Reads go straight to the reader pool; in WAL mode they never block the writer, and a read
//! issued after a write was acknowledged sees it (the writer answers only after COMMIT).
//! Everything that changes a row, including the lease claims (`UPDATE .. RETURNING`), goes
//! through the writer, so the single-writer rule holds by construction.

mod writer;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hubhook_core::{EventId, InstanceId, NotificationId};
use jiff::Timestamp;
use serde_json::{Map, Value};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{ConnectOptions as _, Row as _};

use crate::{
    AttemptOutcome, AttemptRecord, AttemptRow, CommitOutcome, EventRow, InstanceRow, MasterKey,
    NewInstance, NotificationRow, OrganizationId, PendingNotification, PollCommit, PollJob,
    Principal, Result, StoreError, UserId,
};
use writer::Writer;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Reader connections: enough for the API and the engine to read side by side.
const READERS: u32 = 4;
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// SQLite's default limit on bound parameters is far above this, but long IN lists make slow
/// statements; the poller's batches are chunked to this size.
const IN_LIST_CHUNK: usize = 500;

// The SELECT lists are macros so that the SQL stays a `&'static str` literal (sqlx 0.9 only
// takes dynamic SQL through an explicit `AssertSqlSafe`).
macro_rules! instance_select {
    ($tail:literal) => {
        concat!(
            "SELECT id, organization_id, user_id, name, element_key, configuration, secrets, tags,
                 events_enabled, disabled, refresh_interval_ms, created_at, updated_at
             FROM instances ",
            $tail
        )
    };
}

macro_rules! notification_select {
    ($tail:literal) => {
        concat!(
            "SELECT id, instance_id, body, status, failed_attempts, next_attempt_at, created_at,
                 delivered_at
             FROM notifications ",
            $tail
        )
    };
}

#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: Writer,
    readers: SqlitePool,
    key: Arc<MasterKey>,
}

/// The file path of `sqlite://PATH` or `sqlite:PATH`. A `?query` (such as `?mode=rwc`) is not
/// part of the path and is ignored: the file is always created if missing. The binary derives
/// the master key file's path the same way (`PATH.key`), so the two stay side by side.
fn database_path(url: &str) -> Result<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| StoreError::InvalidUrl(url.to_owned()))?;
    let path = rest.split('?').next().unwrap_or(rest);
    // An in-memory database would be a different database on every pooled connection.
    if path.is_empty() || path.starts_with(":memory:") {
        return Err(StoreError::InvalidUrl(url.to_owned()));
    }
    Ok(PathBuf::from(path))
}

impl SqliteStore {
    pub async fn open(url: &str, key: MasterKey) -> Result<SqliteStore> {
        let path = database_path(url)?;
        let base = SqliteConnectOptions::new()
            .filename(&path)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            .synchronous(SqliteSynchronous::Normal);
        let mut writer = base
            .clone()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .connect()
            .await?;
        MIGRATOR.run(&mut writer).await?;
        // WAL mode is stored in the file, so readers need not (and, read-only, could not) set it.
        let readers = SqlitePoolOptions::new()
            .max_connections(READERS)
            .connect_with(base.read_only(true))
            .await?;
        Ok(SqliteStore {
            writer: Writer::spawn(writer),
            readers,
            key: Arc::new(key),
        })
    }

    pub async fn close(&self) {
        self.writer.close().await;
        self.readers.close().await;
    }

    // ---- organizations and users -------------------------------------------------------

    pub async fn create_organization(
        &self,
        name: &str,
        org_secret_hash: [u8; 32],
        user_secret_hash: [u8; 32],
        now: Timestamp,
    ) -> Result<(OrganizationId, UserId)> {
        let name = name.to_owned();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let organization: i64 = sqlx::query_scalar(
                        "INSERT INTO organizations (name, secret_hash, created_at)
                         VALUES ($1, $2, $3) RETURNING id",
                    )
                    .bind(&name)
                    .bind(&org_secret_hash[..])
                    .bind(now.as_millisecond())
                    .fetch_one(&mut *conn)
                    .await?;
                    let user: i64 = sqlx::query_scalar(
                        "INSERT INTO users (organization_id, secret_hash, created_at)
                         VALUES ($1, $2, $3) RETURNING id",
                    )
                    .bind(organization)
                    .bind(&user_secret_hash[..])
                    .bind(now.as_millisecond())
                    .fetch_one(&mut *conn)
                    .await?;
                    Ok((OrganizationId(organization), UserId(user)))
                })
            })
            .await
    }

    pub async fn authenticate(
        &self,
        org_secret_hash: [u8; 32],
        user_secret_hash: [u8; 32],
    ) -> Result<Option<Principal>> {
        // Looking the user up by its hash is safe to do with an index: the hash of a
        // high-entropy secret leaks nothing through timing. The organization's hash is then
        // compared in constant time.
        let row = sqlx::query(
            "SELECT u.id AS user_id, u.organization_id, o.secret_hash AS org_hash
             FROM users u JOIN organizations o ON o.id = u.organization_id
             WHERE u.secret_hash = $1",
        )
        .bind(&user_secret_hash[..])
        .fetch_optional(&self.readers)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let stored: Vec<u8> = row.try_get("org_hash")?;
        if !constant_time_eq(&stored, &org_secret_hash) {
            return Ok(None);
        }
        Ok(Some(Principal {
            organization_id: OrganizationId(row.try_get("organization_id")?),
            user_id: UserId(row.try_get("user_id")?),
        }))
    }

    // ---- instances ---------------------------------------------------------------------

    pub async fn create_instance(&self, new: NewInstance) -> Result<InstanceRow> {
        // Encrypt before queueing: the writer's time is the scarce resource.
        let sealed = self.key.seal(new.organization_id, &new.secrets)?;
        let configuration = to_json(&new.configuration)?;
        let tags = to_json(&new.tags)?;
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let now = new.now.as_millisecond();
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO instances (organization_id, user_id, name, element_key,
                             token_hash, configuration, secrets, tags, events_enabled, disabled,
                             refresh_interval_ms, created_at, updated_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $11, $11)
                         RETURNING id",
                    )
                    .bind(new.organization_id.0)
                    .bind(new.user_id.0)
                    .bind(&new.name)
                    .bind(&new.element_key)
                    .bind(&new.token_hash[..])
                    .bind(&configuration)
                    .bind(&sealed)
                    .bind(&tags)
                    .bind(new.events_enabled)
                    .bind(new.refresh_interval_ms)
                    .bind(now)
                    .fetch_one(&mut *conn)
                    .await?;
                    for resource in &new.resources {
                        sqlx::query(
                            "INSERT INTO poll_jobs (instance_id, resource, next_run_at)
                             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                        )
                        .bind(id)
                        .bind(resource)
                        .bind(now)
                        .execute(&mut *conn)
                        .await?;
                    }
                    Ok(InstanceRow {
                        id: InstanceId(id),
                        organization_id: new.organization_id,
                        user_id: new.user_id,
                        name: new.name,
                        element_key: new.element_key,
                        configuration: new.configuration,
                        secrets: new.secrets,
                        tags: new.tags,
                        events_enabled: new.events_enabled,
                        disabled: false,
                        refresh_interval_ms: new.refresh_interval_ms,
                        created_at: new.now,
                        updated_at: new.now,
                    })
                })
            })
            .await
    }

    pub async fn list_instances(&self, org: OrganizationId) -> Result<Vec<InstanceRow>> {
        let rows = sqlx::query(instance_select!("WHERE organization_id = $1 ORDER BY id"))
            .bind(org.0)
            .fetch_all(&self.readers)
            .await?;
        rows.iter().map(|row| self.instance_row(row)).collect()
    }

    pub async fn get_instance(
        &self,
        org: OrganizationId,
        id: InstanceId,
    ) -> Result<Option<InstanceRow>> {
        let row = sqlx::query(instance_select!("WHERE id = $1 AND organization_id = $2"))
            .bind(id.0)
            .bind(org.0)
            .fetch_optional(&self.readers)
            .await?;
        row.map(|row| self.instance_row(&row)).transpose()
    }

    pub async fn instance(&self, id: InstanceId) -> Result<Option<InstanceRow>> {
        let row = sqlx::query(instance_select!("WHERE id = $1"))
            .bind(id.0)
            .fetch_optional(&self.readers)
            .await?;
        row.map(|row| self.instance_row(&row)).transpose()
    }

    pub async fn instance_by_token(&self, token_hash: [u8; 32]) -> Result<Option<InstanceRow>> {
        let row = sqlx::query(instance_select!("WHERE token_hash = $1"))
            .bind(&token_hash[..])
            .fetch_optional(&self.readers)
            .await?;
        row.map(|row| self.instance_row(&row)).transpose()
    }

    pub async fn delete_instance(&self, org: OrganizationId, id: InstanceId) -> Result<bool> {
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let found: Option<i64> = sqlx::query_scalar(
                        "SELECT id FROM instances WHERE id = $1 AND organization_id = $2",
                    )
                    .bind(id.0)
                    .bind(org.0)
                    .fetch_optional(&mut *conn)
                    .await?;
                    if found.is_none() {
                        return Ok(false);
                    }
                    sqlx::query("DELETE FROM poll_jobs WHERE instance_id = $1")
                        .bind(id.0)
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("DELETE FROM known_objects WHERE instance_id = $1")
                        .bind(id.0)
                        .execute(&mut *conn)
                        .await?;
                    // The lease is left alone: a delivery in flight still records its attempt
                    // (every attempt is a row); `claim_notifications` never picks these again.
                    sqlx::query(
                        "UPDATE notifications SET status = 'cancelled', next_attempt_at = NULL
                         WHERE instance_id = $1 AND status IN ('pending', 'queued')",
                    )
                    .bind(id.0)
                    .execute(&mut *conn)
                    .await?;
                    sqlx::query("DELETE FROM instances WHERE id = $1")
                        .bind(id.0)
                        .execute(&mut *conn)
                        .await?;
                    Ok(true)
                })
            })
            .await
    }

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

    // ---- poller ------------------------------------------------------------------------

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
                    // without any reaper.
                    let rows = sqlx::query(
                        "UPDATE poll_jobs SET lease_owner = $1, lease_until = $2, poll_requested = 0
                         WHERE (instance_id, resource) IN (
                             SELECT j.instance_id, j.resource
                             FROM poll_jobs j JOIN instances i ON i.id = j.instance_id
                             WHERE j.next_run_at <= $3
                               AND (j.lease_until IS NULL OR j.lease_until <= $3)
                               AND i.disabled = 0 AND i.events_enabled = 1
                             ORDER BY j.next_run_at
                             LIMIT $4)
                         RETURNING instance_id, resource, cursor, next_run_at, lease_until",
                    )
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
        owner: &str,
        next_run_at: Timestamp,
        error: &str,
    ) -> Result<()> {
        let (resource, owner, error) = (resource.to_owned(), owner.to_owned(), error.to_owned());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    // A poll asked for while this one ran keeps the time poll_now gave it (the
                    // column holds it: claiming does not touch next_run_at).
                    let updated = sqlx::query(
                        "UPDATE poll_jobs SET last_error = $4,
                             next_run_at = CASE WHEN poll_requested = 1
                                 THEN min(next_run_at, $5) ELSE $5 END,
                             poll_requested = 0, lease_owner = NULL, lease_until = NULL
                         WHERE instance_id = $1 AND resource = $2 AND lease_owner = $3",
                    )
                    .bind(instance.0)
                    .bind(&resource)
                    .bind(&owner)
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

    // ---- dispatcher --------------------------------------------------------------------

    pub async fn claim_notifications(
        &self,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<PendingNotification>> {
        let owner = owner.to_owned();
        let now = now.as_millisecond();
        let lease_until = now.saturating_add(duration_ms(lease));
        let rows = self
            .writer
            .write(move |conn| {
                Box::pin(async move {
                    let rows = sqlx::query(
                        "UPDATE notifications SET lease_owner = $1, lease_until = $2
                         WHERE id IN (
                             SELECT id FROM notifications
                             WHERE status = 'pending' AND next_attempt_at <= $3
                               AND (lease_until IS NULL OR lease_until <= $3)
                             ORDER BY next_attempt_at, created_at
                             LIMIT $4)
                         RETURNING id, instance_id, body, failed_attempts, next_attempt_at,
                             created_at",
                    )
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
        let mut claimed = rows
            .iter()
            .map(|row| {
                let due: i64 = row.try_get("next_attempt_at")?;
                let pending = PendingNotification {
                    id: NotificationId(row.try_get("id")?),
                    instance_id: InstanceId(row.try_get("instance_id")?),
                    body: row.try_get("body")?,
                    failed_attempts: count(row.try_get("failed_attempts")?)?,
                    created_at: timestamp(row.try_get("created_at")?)?,
                };
                Ok((due, pending))
            })
            .collect::<Result<Vec<_>>>()?;
        // RETURNING does not keep the subquery's order.
        claimed.sort_by_key(|(due, pending)| (*due, pending.created_at));
        Ok(claimed.into_iter().map(|(_, pending)| pending).collect())
    }

    pub async fn finish_attempt(&self, attempt: AttemptRecord) -> Result<()> {
        self.writer
            .write(move |conn| Box::pin(finish_attempt(conn, attempt)))
            .await
    }

    pub async fn next_notification_due(&self) -> Result<Option<Timestamp>> {
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(max(next_attempt_at, COALESCE(lease_until, next_attempt_at)))
             FROM notifications WHERE status = 'pending'",
        )
        .fetch_one(&self.readers)
        .await?;
        due.map(timestamp).transpose()
    }

    // ---- reads -------------------------------------------------------------------------

    pub async fn list_events(&self, instance: InstanceId, limit: u32) -> Result<Vec<EventRow>> {
        let rows = sqlx::query(
            "SELECT e.id, e.instance_id, e.object_type, e.object_id, e.event_type, e.event_date,
                 e.record, e.notification_id, COALESCE(n.status, 'none') AS status, e.created_at
             FROM events e LEFT JOIN notifications n ON n.id = e.notification_id
             WHERE e.instance_id = $1
             ORDER BY e.created_at DESC, e.event_date DESC, e.id DESC
             LIMIT $2",
        )
        .bind(instance.0)
        .bind(i64::from(limit))
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(EventRow {
                    id: EventId(row.try_get("id")?),
                    instance_id: InstanceId(row.try_get("instance_id")?),
                    object_type: row.try_get("object_type")?,
                    object_id: row.try_get("object_id")?,
                    event_type: row.try_get("event_type")?,
                    event_date: timestamp(row.try_get("event_date")?)?,
                    record_json: row.try_get("record")?,
                    notification_id: row
                        .try_get::<Option<String>, _>("notification_id")?
                        .map(NotificationId),
                    status: row.try_get("status")?,
                    created_at: timestamp(row.try_get("created_at")?)?,
                })
            })
            .collect()
    }

    pub async fn notification(&self, id: &NotificationId) -> Result<Option<NotificationRow>> {
        let row = sqlx::query(notification_select!("WHERE id = $1"))
            .bind(&id.0)
            .fetch_optional(&self.readers)
            .await?;
        row.as_ref().map(notification_row).transpose()
    }

    pub async fn list_notifications(
        &self,
        instance: InstanceId,
        limit: u32,
    ) -> Result<Vec<NotificationRow>> {
        let rows = sqlx::query(notification_select!(
            "WHERE instance_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
        ))
        .bind(instance.0)
        .bind(i64::from(limit))
        .fetch_all(&self.readers)
        .await?;
        rows.iter().map(notification_row).collect()
    }

    pub async fn list_attempts(&self, notification: &NotificationId) -> Result<Vec<AttemptRow>> {
        let rows = sqlx::query(
            "SELECT id, notification_id, attempted_at, status_code, latency_ms, error
             FROM delivery_attempts WHERE notification_id = $1 ORDER BY id",
        )
        .bind(&notification.0)
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AttemptRow {
                    id: row.try_get("id")?,
                    notification_id: NotificationId(row.try_get("notification_id")?),
                    attempted_at: timestamp(row.try_get("attempted_at")?)?,
                    status_code: row
                        .try_get::<Option<i64>, _>("status_code")?
                        .map(|code| u16::try_from(code).map_err(|_| corrupt("status_code", code)))
                        .transpose()?,
                    latency_ms: row.try_get("latency_ms")?,
                    error: row.try_get("error")?,
                })
            })
            .collect()
    }

    pub async fn poll_jobs(&self, instance: InstanceId) -> Result<Vec<PollJob>> {
        let rows = sqlx::query(
            "SELECT instance_id, resource, cursor, next_run_at, lease_until
             FROM poll_jobs WHERE instance_id = $1 ORDER BY resource",
        )
        .bind(instance.0)
        .fetch_all(&self.readers)
        .await?;
        rows.iter().map(poll_job).collect()
    }

    fn instance_row(&self, row: &SqliteRow) -> Result<InstanceRow> {
        let organization_id = OrganizationId(row.try_get("organization_id")?);
        let secrets: String = row.try_get("secrets")?;
        let configuration: String = row.try_get("configuration")?;
        let tags: String = row.try_get("tags")?;
        Ok(InstanceRow {
            id: InstanceId(row.try_get("id")?),
            organization_id,
            user_id: UserId(row.try_get("user_id")?),
            name: row.try_get("name")?,
            element_key: row.try_get("element_key")?,
            configuration: from_json::<Map<String, Value>>(&configuration, "configuration")?,
            secrets: self.key.open(organization_id, &secrets)?,
            tags: from_json(&tags, "tags")?,
            events_enabled: row.try_get("events_enabled")?,
            disabled: row.try_get("disabled")?,
            refresh_interval_ms: row.try_get("refresh_interval_ms")?,
            created_at: timestamp(row.try_get("created_at")?)?,
            updated_at: timestamp(row.try_get("updated_at")?)?,
        })
    }
}

/// The outbox write: objects seen, events, notifications and the cursor, all or nothing.
async fn commit_poll(conn: &mut SqliteConnection, commit: PollCommit) -> Result<CommitOutcome> {
    let owner: Option<Option<String>> = sqlx::query_scalar(
        "SELECT lease_owner FROM poll_jobs WHERE instance_id = $1 AND resource = $2",
    )
    .bind(commit.instance_id.0)
    .bind(&commit.resource)
    .fetch_optional(&mut *conn)
    .await?;
    // Fenced on the owner only: once a lease expires and another worker claims the job, the
    // owner changes, and that is what must stop this (late) result. A missing job means the
    // instance was deleted meanwhile, which must stop it too.
    if owner.flatten().as_deref() != Some(commit.owner.as_str()) {
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
    let mut new_events = std::collections::HashSet::new();
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
    // The cursor never moves backwards: a poll that outlived its lease and was run again by
    // its own node (same owner) may commit older results after newer ones.
    sqlx::query(
        "UPDATE poll_jobs SET cursor = CASE WHEN $4 IS NULL THEN cursor
                                            WHEN cursor IS NULL OR $4 > cursor THEN $4
                                            ELSE cursor END,
             next_run_at = CASE WHEN poll_requested = 1 THEN $6 ELSE $5 END,
             poll_requested = 0, last_error = NULL, last_polled_at = $6,
             lease_owner = NULL, lease_until = NULL
         WHERE instance_id = $1 AND resource = $2 AND lease_owner = $3",
    )
    .bind(commit.instance_id.0)
    .bind(&commit.resource)
    .bind(&commit.owner)
    .bind(commit.cursor.map(Timestamp::as_millisecond))
    .bind(commit.next_run_at.as_millisecond())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(outcome)
}

/// Records one delivery attempt and its consequence for the notification, fenced on the lease.
async fn finish_attempt(conn: &mut SqliteConnection, attempt: AttemptRecord) -> Result<()> {
    let owner: Option<Option<String>> =
        sqlx::query_scalar("SELECT lease_owner FROM notifications WHERE id = $1")
            .bind(&attempt.notification_id.0)
            .fetch_optional(&mut *conn)
            .await?;
    if owner.flatten().as_deref() != Some(attempt.owner.as_str()) {
        return Err(StoreError::LeaseLost);
    }
    let at = attempt.attempted_at.as_millisecond();
    let outcome = match attempt.outcome {
        AttemptOutcome::Delivered => "delivered",
        AttemptOutcome::RetryAt(_) => "retry",
        AttemptOutcome::Queued => "queued",
    };
    sqlx::query(
        "INSERT INTO delivery_attempts (notification_id, owner, attempted_at, status_code,
             latency_ms, error, outcome)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&attempt.notification_id.0)
    .bind(&attempt.owner)
    .bind(at)
    .bind(attempt.status_code.map(i64::from))
    .bind(attempt.latency_ms)
    .bind(&attempt.error)
    .bind(outcome)
    .execute(&mut *conn)
    .await?;
    let update = match attempt.outcome {
        AttemptOutcome::Delivered => sqlx::query(
            "UPDATE notifications SET status = 'delivered', delivered_at = $2,
                 next_attempt_at = NULL, lease_owner = NULL, lease_until = NULL
             WHERE id = $1",
        )
        .bind(&attempt.notification_id.0)
        .bind(at),
        AttemptOutcome::RetryAt(next) => sqlx::query(
            "UPDATE notifications SET failed_attempts = failed_attempts + 1,
                 next_attempt_at = $2, lease_owner = NULL, lease_until = NULL
             WHERE id = $1",
        )
        .bind(&attempt.notification_id.0)
        .bind(next.as_millisecond()),
        // A notification cancelled while in flight stays cancelled: its instance is gone.
        AttemptOutcome::Queued => sqlx::query(
            "UPDATE notifications SET failed_attempts = failed_attempts + 1,
                 status = CASE WHEN status = 'cancelled' THEN status ELSE 'queued' END,
                 next_attempt_at = NULL, lease_owner = NULL, lease_until = NULL
             WHERE id = $1",
        )
        .bind(&attempt.notification_id.0),
    };
    update.execute(&mut *conn).await?;
    Ok(())
}

fn poll_job(row: &SqliteRow) -> Result<PollJob> {
    Ok(PollJob {
        instance_id: InstanceId(row.try_get("instance_id")?),
        resource: row.try_get("resource")?,
        cursor: row
            .try_get::<Option<i64>, _>("cursor")?
            .map(timestamp)
            .transpose()?,
        next_run_at: timestamp(row.try_get("next_run_at")?)?,
        // Not leased reads as the epoch: a lease that ended long ago.
        lease_until: timestamp(row.try_get::<Option<i64>, _>("lease_until")?.unwrap_or(0))?,
    })
}

fn notification_row(row: &SqliteRow) -> Result<NotificationRow> {
    Ok(NotificationRow {
        id: NotificationId(row.try_get("id")?),
        instance_id: InstanceId(row.try_get("instance_id")?),
        body: row.try_get("body")?,
        status: row.try_get("status")?,
        failed_attempts: count(row.try_get("failed_attempts")?)?,
        next_attempt_at: row
            .try_get::<Option<i64>, _>("next_attempt_at")?
            .map(timestamp)
            .transpose()?,
        created_at: timestamp(row.try_get("created_at")?)?,
        delivered_at: row
            .try_get::<Option<i64>, _>("delivered_at")?
            .map(timestamp)
            .transpose()?,
    })
}

/// Compares two byte strings without an early exit, so timing does not reveal how many leading
/// bytes matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn timestamp(millis: i64) -> Result<Timestamp> {
    Timestamp::from_millisecond(millis).map_err(|_| corrupt("timestamp", millis))
}

fn count(value: i64) -> Result<u32> {
    u32::try_from(value).map_err(|_| corrupt("failed_attempts", value))
}

fn corrupt(what: &str, value: impl std::fmt::Display) -> StoreError {
    StoreError::Other(format!("stored {what} is out of range: {value}"))
}

fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Other(format!("JSON encoding: {e}")))
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str, column: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Other(format!("stored {column} is not valid JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_path_accepts_both_sqlite_url_forms() {
        assert_eq!(
            database_path("sqlite://data/hubhook.db").unwrap(),
            PathBuf::from("data/hubhook.db")
        );
        assert_eq!(
            database_path("sqlite:///var/lib/hubhook.db").unwrap(),
            PathBuf::from("/var/lib/hubhook.db")
        );
        assert_eq!(
            database_path("sqlite:hubhook.db").unwrap(),
            PathBuf::from("hubhook.db")
        );
        // The query string is not part of the file name.
        assert_eq!(
            database_path("sqlite:///tmp/x.db?mode=rwc").unwrap(),
            PathBuf::from("/tmp/x.db")
        );
        assert_eq!(
            database_path("sqlite:x.db?mode=rwc&cache=shared").unwrap(),
            PathBuf::from("x.db")
        );
        for bad in [
            "sqlite://",
            "sqlite://?mode=rwc",
            "sqlite::memory:",
            "sqlite::memory:?cache=shared",
            "mysql://x",
            "hubhook.db",
        ] {
            assert!(
                matches!(database_path(bad), Err(StoreError::InvalidUrl(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn constant_time_eq_compares_all_bytes() {
        assert!(constant_time_eq(&[1, 2, 3], &[1, 2, 3]));
        assert!(!constant_time_eq(&[1, 2, 3], &[1, 2, 4]));
        assert!(!constant_time_eq(&[9, 2, 3], &[1, 2, 3]));
        assert!(!constant_time_eq(&[1, 2], &[1, 2, 3]));
    }
}
