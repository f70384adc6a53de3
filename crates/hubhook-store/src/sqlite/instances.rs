//! SQL of element instances.
//!
//! # Deleting in parts
//!
//! SQLite has one writer for every tenant, so a write's length is every other organization's
//! wait: deleting an instance with 200,000 pending notifications in one write held up all
//! claims, polls and attempt results for 1.1–1.4 s, and for 1.9 s with as many known objects
//! (docs/benchmarks.md, "Twenty-first round" and "Twenty-second round"). A delete is therefore a short first write, parts of [`PARK_PART`] rows each a
//! write of its own, and a last write that deletes the row (`delete_part`). Why the instance
//! is never seen half-deleted:
//!
//! - The first write sets `deleting`, and every read of an instance (this file's
//!   `instance_select!`, the updates, enable and disable, poll now, redelivery, webhook
//!   secrets, the dispatcher's configuration versions, the event and notification feeds)
//!   skips a row that has it. From then on the instance answers 404 everywhere, as if gone;
//!   it cannot be enabled, updated or deleted twice, and `deleting` is never cleared.
//! - The first write also sets `disabled`, which every claim already honours, so no part
//!   of its backlog is sent between the parts; and it deletes its poll jobs, so no poll
//!   commits for it again (a commit needs its job's lease token). Nothing else creates known
//!   objects or notifications, so the parts only ever shrink what is left.
//! - The row goes in the part that found no notification to cancel and no known object left
//!   (in that one write), so the known objects' foreign key to it holds throughout.
//! - A node stopped between two parts leaves a row marked `deleting`: invisible, and
//!   finished when the server next starts, beside its API (`finish_leftovers`).
//!
//! Since everything after the first write is invisible, the API's `DELETE` answers after it
//! (`begin_delete_instance`) and the parts go on in a task of their own: a delete of 200,000
//! notifications took its caller 4.6–5.0 s when it waited for them.
//!
//! PostgreSQL keeps its one transaction: there, other tenants' claims do not wait for it
//! (7–229 ms beside a 3.9–5.9 s delete, docs/benchmarks.md, "Twenty-first round").
//!
//! # Forgetting a removed resource
//!
//! An update that stops polling a resource forgets what was known of its records (configured
//! again, it starts from a new baseline), which can be as many rows as a delete's. Its write
//! deletes the resource's job and lists the resource in `forgetting`; the known objects then
//! go a part per write (`forget_part`), and the part that finds none left takes the resource
//! off the list. Why that is correct:
//!
//! - Nothing reads known objects of a resource without a job, and nothing adds to them (a
//!   poll commits only with its job's lease token), so the parts are invisible.
//! - Each part stops if the resource has a job again, and the update that gives it one
//!   clears, in its own write, whatever a forget left (a node stopped halfway, or an earlier
//!   update's parts still running) and takes it off the list, so a resource configured again
//!   never starts from old rows.
//! - A resource leaves the list only in a write that finds none of its known objects, so a
//!   forget still running for a later removal of the same resource is never left unlisted.
//! - A node stopped halfway leaves the resource listed; the next start finishes its forget
//!   (`finish_leftovers`). The list goes with the instance's row (`ON DELETE CASCADE`).
//!
//! An update that removes nothing reads no known object at all.

use hubhook_core::InstanceId;
use serde_json::{Map, Value};
use sqlx::Row as _;
use sqlx::sqlite::SqliteRow;

use super::{SqliteStore, from_json, timestamp, to_json, to_the_end};
use crate::deliveries::PARK_PART;
use crate::{
    CHANGED_MEANWHILE, InstanceRow, InstanceUpdate, NewInstance, OrganizationId, Result,
    StoreError, UserId,
};

// The SELECT list is a macro so that the SQL stays a `&'static str` literal (sqlx 0.9 only
// takes dynamic SQL through an explicit `AssertSqlSafe`).
macro_rules! instance_select {
    ($tail:literal) => {
        concat!(
            "SELECT id, organization_id, user_id, name, element_key, configuration, secrets, tags,
                 events_enabled, disabled, refresh_interval_ms, created_at, updated_at
             FROM instances WHERE deleting = 0 AND ",
            $tail
        )
    };
}

impl SqliteStore {
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
                            "INSERT INTO poll_jobs (instance_id, resource, next_run_at, organization_id, added_at)
                             VALUES ($1, $2, $3, $4, $3) ON CONFLICT DO NOTHING",
                        )
                        .bind(id)
                        .bind(resource)
                        .bind(now)
                        .bind(new.organization_id.0)
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
        let rows = sqlx::query(instance_select!("organization_id = $1 ORDER BY id"))
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
        let row = sqlx::query(instance_select!("id = $1 AND organization_id = $2"))
            .bind(id.0)
            .bind(org.0)
            .fetch_optional(&self.readers)
            .await?;
        row.map(|row| self.instance_row(&row)).transpose()
    }

    pub async fn instance(&self, id: InstanceId) -> Result<Option<InstanceRow>> {
        let row = sqlx::query(instance_select!("id = $1"))
            .bind(id.0)
            .fetch_optional(&self.readers)
            .await?;
        row.map(|row| self.instance_row(&row)).transpose()
    }

    pub async fn instance_by_token(&self, token_hash: [u8; 32]) -> Result<Option<InstanceRow>> {
        let row = sqlx::query(instance_select!("token_hash = $1"))
            .bind(&token_hash[..])
            .fetch_optional(&self.readers)
            .await?;
        row.map(|row| self.instance_row(&row)).transpose()
    }

    /// Deletes in parts (see "Deleting in parts" above): one short write makes the instance
    /// invisible and stops its polls, then its notifications are cancelled and its known
    /// objects forgotten a part per write, and a last write deletes the row. The caller waits
    /// for all of it, as for a single write; only the other tenants' writes no longer wait.
    pub async fn delete_instance(&self, org: OrganizationId, id: InstanceId) -> Result<bool> {
        if !self.mark_deleting(org, id).await? {
            return Ok(false);
        }
        // A crash halfway is finished when the server next starts (`finish_leftovers`).
        let store = self.clone();
        to_the_end(async move { store.remove_deleted(id).await }).await?;
        Ok(true)
    }

    /// [`SqliteStore::delete_instance`], answering after its first write: from then on the
    /// instance is gone from every read and nothing of it is claimed or polled (see "Deleting
    /// in parts" above), so what the parts remove is invisible, and they go on in a task of
    /// their own. If that task fails or the node stops first, the next start finishes them
    /// (`finish_leftovers`).
    pub async fn begin_delete_instance(&self, org: OrganizationId, id: InstanceId) -> Result<bool> {
        if !self.mark_deleting(org, id).await? {
            return Ok(false);
        }
        // The instance is invisible meanwhile, but its due notifications, not yet cancelled,
        // stay in the claims' due index until the parts reach them.
        self.in_background(
            id,
            "removing a deleted instance's rows",
            move |store| async move { store.remove_deleted(id).await },
        );
        Ok(true)
    }

    /// Runs the rest of a removal begun by a write that answered its caller: tried again
    /// while the store can write (from 1 s, doubling to 5 min), and left to the next start
    /// (`finish_leftovers`) once it cannot, since the first write listed it there.
    fn in_background<F, Fut>(&self, id: InstanceId, what: &'static str, work: F)
    where
        F: Fn(SqliteStore) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<()>> + Send,
    {
        let store = self.clone();
        tokio::spawn(async move {
            let mut pause = std::time::Duration::from_secs(1);
            while let Err(error) = work(store.clone()).await {
                if !store.is_writable() {
                    tracing::warn!(instance = %id, %error, "{what} stopped; the next start finishes it");
                    return;
                }
                tracing::warn!(instance = %id, %error, "{what} failed; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(300));
            }
        });
    }

    /// The rest of a delete ([`SqliteStore::delete_rest`]), one instance at a time: the writer
    /// commits the writes queued together in one transaction, so several deletes' parts side
    /// by side would hold every other write for several parts, not one. A caller that gets
    /// its answer first (`begin_delete_instance`) could otherwise start any number of them.
    pub(super) async fn remove_deleted(&self, id: InstanceId) -> Result<()> {
        let _one = self
            .removals
            .acquire()
            .await
            .map_err(|e| crate::StoreError::Other(e.to_string()))?;
        self.delete_rest(id).await
    }

    /// The first write of a delete: the instance marked `deleting` and disabled, its poll jobs
    /// gone. `false` if there is no such instance in `org` (or it is being deleted already).
    async fn mark_deleting(&self, org: OrganizationId, id: InstanceId) -> Result<bool> {
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    // `disabled` too: every claim already skips a disabled instance's
                    // notifications, so none is taken while its cancellation is in parts.
                    let done = sqlx::query(
                        "UPDATE instances SET deleting = 1, disabled = 1
                         WHERE id = $1 AND organization_id = $2 AND deleting = 0",
                    )
                    .bind(id.0)
                    .bind(org.0)
                    .execute(&mut *conn)
                    .await?;
                    if done.rows_affected() == 0 {
                        return Ok(false);
                    }
                    // No job, no lease token: a poll in flight cannot commit any more, so
                    // nothing adds known objects or notifications behind the parts.
                    sqlx::query("DELETE FROM poll_jobs WHERE instance_id = $1")
                        .bind(id.0)
                        .execute(&mut *conn)
                        .await?;
                    Ok(true)
                })
            })
            .await
    }

    /// The parts of a delete after the first write, until the row is gone.
    pub(super) async fn delete_rest(&self, id: InstanceId) -> Result<()> {
        while !self
            .writer
            .write(move |conn| Box::pin(delete_part(conn, id)))
            .await?
        {}
        Ok(())
    }

    /// Stores the update, then forgets the known objects of the resources it removed, a part
    /// per write (see "Forgetting a removed resource" above); the caller waits for all of it.
    pub async fn update_instance(
        &self,
        org: OrganizationId,
        id: InstanceId,
        update: InstanceUpdate,
    ) -> Result<Option<InstanceRow>> {
        let Some(removed) = self.update_write(org, id, update).await? else {
            return Ok(None);
        };
        let store = self.clone();
        to_the_end(async move { store.forget_all(id, &removed).await }).await?;
        self.get_instance(org, id).await
    }

    /// [`SqliteStore::update_instance`], answering after the update's write: the removed
    /// resources have no job from then on, so nothing reads or adds to their known objects
    /// and the parts that forget them are invisible (see "Forgetting a removed resource"
    /// above). They go on in a task of their own; if it fails or the node stops first, the
    /// next start finishes them (`finish_leftovers`).
    pub async fn begin_update_instance(
        &self,
        org: OrganizationId,
        id: InstanceId,
        update: InstanceUpdate,
    ) -> Result<Option<InstanceRow>> {
        let Some(removed) = self.update_write(org, id, update).await? else {
            return Ok(None);
        };
        if !removed.is_empty() {
            self.in_background(
                id,
                "forgetting a removed resource's known objects",
                move |store| {
                    let removed = removed.clone();
                    async move { store.forget_all(id, &removed).await }
                },
            );
        }
        self.get_instance(org, id).await
    }

    /// The update's one write; `Some` with the resources it removed (listed in `forgetting`,
    /// their known objects still there) if it was stored.
    async fn update_write(
        &self,
        org: OrganizationId,
        id: InstanceId,
        update: InstanceUpdate,
    ) -> Result<Option<Vec<String>>> {
        let sealed = self.key.seal(org, &update.secrets)?;
        let configuration = to_json(&update.configuration)?;
        let tags = to_json(&update.tags)?;
        let resources = to_json(&update.resources)?;
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let now = update.now.as_millisecond();
                    let read_version = update.read_version.map(|at| at.as_millisecond());
                    // `updated_at` is the instance's configuration version (the poller's and
                    // the dispatcher's caches key on it), so it must change with every update,
                    // even two in one millisecond or one from a node whose clock is behind.
                    let done = sqlx::query(
                        "UPDATE instances SET name = $1, configuration = $2, secrets = $3,
                             tags = $4, events_enabled = $5, refresh_interval_ms = $6,
                             updated_at = max($7, updated_at + 1)
                         WHERE id = $8 AND organization_id = $9 AND deleting = 0
                           AND ($10 IS NULL OR updated_at = $10)",
                    )
                    .bind(&update.name)
                    .bind(&configuration)
                    .bind(&sealed)
                    .bind(&tags)
                    .bind(update.events_enabled)
                    .bind(update.refresh_interval_ms)
                    .bind(now)
                    .bind(id.0)
                    .bind(org.0)
                    .bind(read_version)
                    .execute(&mut *conn)
                    .await?;
                    if done.rows_affected() == 0 {
                        return if read_version.is_some() && exists(conn, org, id).await? {
                            Err(StoreError::Conflict(CHANGED_MEANWHILE.into()))
                        } else {
                            Ok(None)
                        };
                    }
                    // A resource no longer configured loses its job here, and what was known
                    // of its records after this write, in parts (`forget_part`): configured
                    // again later, it starts with a new baseline.
                    let removed: Vec<String> = sqlx::query_scalar(
                        "DELETE FROM poll_jobs WHERE instance_id = $1
                             AND resource NOT IN (SELECT value FROM json_each($2))
                         RETURNING resource",
                    )
                    .bind(id.0)
                    .bind(&resources)
                    .fetch_all(&mut *conn)
                    .await?;
                    // Listed until the last part: a stopped node's forget is finished at the next start.
                    sqlx::query(
                        "INSERT INTO forgetting (instance_id, resource, organization_id)
                         SELECT $1, value, $3 FROM json_each($2) WHERE true
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(id.0)
                    .bind(to_json(&removed)?)
                    .bind(org.0)
                    .execute(&mut *conn)
                    .await?;
                    // A resource configured anew starts from an empty baseline: what a forget
                    // left of it (its node stopped halfway, or the update that removed it is
                    // still running) goes now. Normally nothing: one seek per new resource.
                    sqlx::query(
                        "DELETE FROM known_objects WHERE instance_id = $1
                             AND resource IN (
                                 SELECT value FROM json_each($2) WHERE value NOT IN (
                                     SELECT resource FROM poll_jobs WHERE instance_id = $1))",
                    )
                    .bind(id.0)
                    .bind(&resources)
                    .execute(&mut *conn)
                    .await?;
                    sqlx::query(
                        "DELETE FROM forgetting WHERE instance_id = $1
                             AND resource IN (SELECT value FROM json_each($2))",
                    )
                    .bind(id.0)
                    .bind(&resources)
                    .execute(&mut *conn)
                    .await?;
                    sqlx::query(
                        "UPDATE poll_jobs SET next_run_at = min(next_run_at, $2 + $3)
                         WHERE instance_id = $1",
                    )
                    .bind(id.0)
                    .bind(now)
                    .bind(update.refresh_interval_ms)
                    .execute(&mut *conn)
                    .await?;
                    sqlx::query(
                        "INSERT INTO poll_jobs (instance_id, resource, next_run_at, organization_id, added_at)
                         SELECT $1, value, $2, $4, $2 FROM json_each($3) WHERE true
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(id.0)
                    .bind(now)
                    .bind(&resources)
                    .bind(org.0)
                    .execute(&mut *conn)
                    .await?;
                    Ok(Some(removed))
                })
            })
            .await
    }

    /// [`SqliteStore::forget_rest`] of each resource, in turn.
    async fn forget_all(&self, id: InstanceId, resources: &[String]) -> Result<()> {
        for resource in resources {
            self.forget_rest(id, resource.clone()).await?;
        }
        Ok(())
    }

    /// The parts of forgetting a removed resource, until none of its known objects is left;
    /// one removal at a time, as [`SqliteStore::remove_deleted`].
    pub(super) async fn forget_rest(&self, id: InstanceId, resource: String) -> Result<()> {
        let _one = self
            .removals
            .acquire()
            .await
            .map_err(|e| crate::StoreError::Other(e.to_string()))?;
        while self
            .writer
            .write({
                let resource = resource.clone();
                move |conn| Box::pin(async move { forget_part(conn, id, &resource).await })
            })
            .await?
            == PARK_PART
        {}
        Ok(())
    }

    pub async fn set_instance_disabled(
        &self,
        org: OrganizationId,
        id: InstanceId,
        disabled: bool,
        now: jiff::Timestamp,
    ) -> Result<Option<InstanceRow>> {
        let changed = self
            .writer
            .write(move |conn| {
                Box::pin(async move {
                    // Moves forward like an update's (see `update_instance`).
                    let done = sqlx::query(
                        "UPDATE instances SET disabled = $1, updated_at = max($2, updated_at + 1)
                         WHERE id = $3 AND organization_id = $4 AND deleting = 0",
                    )
                    .bind(disabled)
                    .bind(now.as_millisecond())
                    .bind(id.0)
                    .bind(org.0)
                    .execute(&mut *conn)
                    .await?;
                    if done.rows_affected() != 1 {
                        return Ok(None);
                    }
                    // Parks its pending notifications, or brings them back with their due
                    // times, the first part in the same write (`crate::deliveries`, "Paused
                    // notifications"). Leased ones are left to their attempt: a retry is
                    // parked by a later claim.
                    move_part(conn, id, disabled, now).await.map(Some)
                })
            })
            .await?;
        let Some(mut moved) = changed else {
            return Ok(None);
        };
        // The rest in parts, each a write of its own, so that other writes (every other
        // tenant's claims, polls and attempt results) wait for one part at most, not for the
        // whole backlog. A crash halfway is finished when the server next starts
        // (`finish_parking`), and meanwhile by the claims' parking step. Each part checks the
        // instance's state again: after a disable and an enable in quick succession, the
        // first's parts find it enabled and stop.
        let store = self.clone();
        to_the_end(async move {
            while moved == PARK_PART {
                moved = store
                    .writer
                    .write(move |conn| Box::pin(move_part(conn, id, disabled, now)))
                    .await?;
            }
            Ok(())
        })
        .await?;
        self.get_instance(org, id).await
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

/// Parks (`disabled`) or brings back up to [`PARK_PART`] of an instance's notifications
/// (`crate::deliveries`, "Paused notifications"), if the instance is still in that state;
/// returns how many it moved. Parks in due order (the claims' scans meet the earliest first,
/// so they stop reading past them first) and brings back in the order they were stored, which
/// is the order ordered delivery sends them in (`notifications_parked` holds them by rowid
/// within an instance), so that a claim between two parts takes the oldest.
async fn move_part(
    conn: &mut sqlx::SqliteConnection,
    id: InstanceId,
    disabled: bool,
    now: jiff::Timestamp,
) -> Result<i64> {
    let moved = if disabled {
        sqlx::query(
            "UPDATE notifications SET paused_due_at = next_attempt_at, next_attempt_at = NULL
             WHERE rowid IN (
                 SELECT n.rowid FROM instances i
                 CROSS JOIN notifications n INDEXED BY notifications_by_instance_status
                     ON n.instance_id = i.id
                 WHERE i.id = $1 AND i.disabled = 1
                   AND n.status = 'pending' AND n.next_attempt_at IS NOT NULL
                   AND (n.lease_until IS NULL OR n.lease_until <= $2)
                 LIMIT CAST($3 AS INTEGER))",
        )
        .bind(id.0)
        .bind(now.as_millisecond())
        .bind(PARK_PART)
    } else {
        sqlx::query(
            "UPDATE notifications SET next_attempt_at = paused_due_at, paused_due_at = NULL
             WHERE rowid IN (
                 SELECT n.rowid FROM instances i
                 CROSS JOIN notifications n INDEXED BY notifications_parked
                     ON n.instance_id = i.id
                 WHERE i.id = $1 AND i.disabled = 0
                   AND n.status = 'pending' AND n.next_attempt_at IS NULL
                   AND n.paused_due_at IS NOT NULL
                 LIMIT CAST($2 AS INTEGER))",
        )
        .bind(id.0)
        .bind(PARK_PART)
    };
    let done = moved.execute(&mut *conn).await?;
    Ok(i64::try_from(done.rows_affected()).unwrap_or(i64::MAX))
}

/// One part of a delete that has marked the instance `deleting` (`SqliteStore::delete_instance`):
/// cancels up to [`PARK_PART`] of its notifications that could still be sent, or, when none is
/// left, forgets up to [`PARK_PART`] of its known objects, or, when none is left either,
/// deletes the row (its webhook secret goes with it, `ON DELETE CASCADE`, and its
/// subscription's deactivation with it). Returns whether the
/// row is gone. The row goes in the write that found nothing left, so its foreign keys hold;
/// nothing adds to either table meanwhile (no poll job, no replay into an instance being
/// deleted).
///
/// Cancelled, a notification keeps its lease: a delivery in flight still records its attempt
/// (every attempt is a row), and no claim takes a cancelled notification.
async fn delete_part(conn: &mut sqlx::SqliteConnection, id: InstanceId) -> Result<bool> {
    let cancelled = sqlx::query(
        "UPDATE notifications SET status = 'cancelled', next_attempt_at = NULL,
             paused_due_at = NULL
         WHERE rowid IN (
             SELECT rowid FROM notifications INDEXED BY notifications_by_instance_status
             WHERE instance_id = $1 AND status IN ('pending', 'queued')
             LIMIT CAST($2 AS INTEGER))",
    )
    .bind(id.0)
    .bind(PARK_PART)
    .execute(&mut *conn)
    .await?;
    if cancelled.rows_affected() > 0 {
        return Ok(false);
    }
    let forgotten = sqlx::query(
        "DELETE FROM known_objects WHERE rowid IN (
             SELECT rowid FROM known_objects WHERE instance_id = $1
             LIMIT CAST($2 AS INTEGER))",
    )
    .bind(id.0)
    .bind(PARK_PART)
    .execute(&mut *conn)
    .await?;
    if forgotten.rows_affected() > 0 {
        return Ok(false);
    }
    let deleted = sqlx::query("DELETE FROM instances WHERE id = $1 AND deleting = 1")
        .bind(id.0)
        .execute(&mut *conn)
        .await?;
    if deleted.rows_affected() > 0 {
        // A deactivation names no instance any more: every claim walks this table.
        sqlx::query("DELETE FROM delivery_subscriptions WHERE instance_id = $1")
            .bind(id.0)
            .execute(&mut *conn)
            .await?;
    }
    Ok(true)
}

/// Forgets up to [`PARK_PART`] known objects of a resource the instance no longer polls
/// (`SqliteStore::update_instance`); returns how many. Stops as soon as the resource has a job
/// again: an update that configured it anew has cleared what was left, and the job's first
/// poll may already have stored its new baseline. The part that forgets fewer than a whole
/// part takes the resource off the `forgetting` list if, in that write, none of its known
/// objects is left (another forget of a later removal may still be running).
async fn forget_part(
    conn: &mut sqlx::SqliteConnection,
    id: InstanceId,
    resource: &str,
) -> Result<i64> {
    let done = sqlx::query(
        "DELETE FROM known_objects
         WHERE rowid IN (
               SELECT rowid FROM known_objects WHERE instance_id = $1 AND resource = $2
               LIMIT CAST($3 AS INTEGER))
           AND NOT EXISTS (
               SELECT 1 FROM poll_jobs WHERE instance_id = $1 AND resource = $2)",
    )
    .bind(id.0)
    .bind(resource)
    .bind(PARK_PART)
    .execute(&mut *conn)
    .await?;
    let forgotten = i64::try_from(done.rows_affected()).unwrap_or(i64::MAX);
    if forgotten < PARK_PART {
        sqlx::query(
            "DELETE FROM forgetting WHERE instance_id = $1 AND resource = $2
               AND NOT EXISTS (
                   SELECT 1 FROM known_objects WHERE instance_id = $1 AND resource = $2)",
        )
        .bind(id.0)
        .bind(resource)
        .execute(&mut *conn)
        .await?;
    }
    Ok(forgotten)
}

/// Whether `org` has the instance `id` (one not being deleted).
async fn exists(
    conn: &mut sqlx::SqliteConnection,
    org: OrganizationId,
    id: InstanceId,
) -> Result<bool> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM instances WHERE id = $1 AND organization_id = $2 AND deleting = 0",
    )
    .bind(id.0)
    .bind(org.0)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(found.is_some())
}
