//! SQL of element instances.

use hubhook_core::InstanceId;
use serde_json::{Map, Value};
use sqlx::Row as _;
use sqlx::postgres::PgRow;

use super::{PostgresStore, Wake, from_json, notify, timestamp, to_json};
use crate::deliveries::{PARK_INSTANCE, UNPARK_INSTANCE};
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
             FROM instances ",
            $tail
        )
    };
}

impl PostgresStore {
    pub async fn create_instance(&self, new: NewInstance) -> Result<InstanceRow> {
        // Encrypt before queueing: the writer's time is the scarce resource.
        let sealed = self.key.seal(new.organization_id, &new.secrets)?;
        let configuration = to_json(&new.configuration)?;
        let tags = to_json(&new.tags)?;
        self.write(move |conn| {
            Box::pin(async move {
                let now = new.now.as_millisecond();
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO instances (organization_id, user_id, name, element_key,
                             token_hash, configuration, secrets, tags, events_enabled, disabled,
                             refresh_interval_ms, created_at, updated_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, false, $10, $11, $11)
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
                notify(conn, Wake::Polls).await?;
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
            .fetch_all(&self.pool)
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
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| self.instance_row(&row)).transpose()
    }

    pub async fn instance(&self, id: InstanceId) -> Result<Option<InstanceRow>> {
        let row = sqlx::query(instance_select!("WHERE id = $1"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| self.instance_row(&row)).transpose()
    }

    pub async fn instance_by_token(&self, token_hash: [u8; 32]) -> Result<Option<InstanceRow>> {
        let row = sqlx::query(instance_select!("WHERE token_hash = $1"))
            .bind(&token_hash[..])
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| self.instance_row(&row)).transpose()
    }

    pub async fn delete_instance(&self, org: OrganizationId, id: InstanceId) -> Result<bool> {
        self.write(move |conn| {
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
                    "UPDATE notifications SET status = 'cancelled', next_attempt_at = NULL,
                             paused_due_at = NULL
                         WHERE instance_id = $1 AND status IN ('pending', 'queued')",
                )
                .bind(id.0)
                .execute(&mut *conn)
                .await?;
                sqlx::query("DELETE FROM instances WHERE id = $1")
                    .bind(id.0)
                    .execute(&mut *conn)
                    .await?;
                // A deactivation names no instance any more: every claim walks this table.
                sqlx::query("DELETE FROM delivery_subscriptions WHERE instance_id = $1")
                    .bind(id.0)
                    .execute(&mut *conn)
                    .await?;
                Ok(true)
            })
        })
        .await
    }

    pub async fn update_instance(
        &self,
        org: OrganizationId,
        id: InstanceId,
        update: InstanceUpdate,
    ) -> Result<Option<InstanceRow>> {
        let sealed = self.key.seal(org, &update.secrets)?;
        let configuration = to_json(&update.configuration)?;
        let tags = to_json(&update.tags)?;
        let resources = update.resources.clone();
        let changed = self
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
                             updated_at = GREATEST($7, updated_at + 1)
                         WHERE id = $8 AND organization_id = $9
                           AND ($10::bigint IS NULL OR updated_at = $10)",
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
                            Ok(false)
                        };
                    }
                    // A resource no longer configured loses its job and what was known of its
                    // records: configured again later, it starts with a new baseline. The
                    // known objects are found from the removed jobs, so that an update that
                    // removes nothing reads none of them (a `resource NOT IN` filter walked
                    // every known object of the instance on every update).
                    sqlx::query(
                        "WITH removed AS (
                             DELETE FROM poll_jobs WHERE instance_id = $1
                                 AND resource NOT IN (SELECT unnest($2::text[]))
                             RETURNING resource)
                         DELETE FROM known_objects WHERE instance_id = $1
                             AND resource IN (SELECT resource FROM removed)",
                    )
                    .bind(id.0)
                    .bind(&resources)
                    .execute(&mut *conn)
                    .await?;
                    sqlx::query(
                        "UPDATE poll_jobs SET next_run_at = LEAST(next_run_at, $2 + $3)
                         WHERE instance_id = $1",
                    )
                    .bind(id.0)
                    .bind(now)
                    .bind(update.refresh_interval_ms)
                    .execute(&mut *conn)
                    .await?;
                    sqlx::query(
                        "INSERT INTO poll_jobs (instance_id, resource, next_run_at, organization_id, added_at)
                         SELECT $1, r, $2, $4, $2 FROM unnest($3::text[]) AS r
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(id.0)
                    .bind(now)
                    .bind(&resources)
                    .bind(org.0)
                    .execute(&mut *conn)
                    .await?;
                    notify(conn, Wake::Polls).await?;
                    Ok(true)
                })
            })
            .await?;
        if !changed {
            return Ok(None);
        }
        self.get_instance(org, id).await
    }

    pub async fn set_instance_disabled(
        &self,
        org: OrganizationId,
        id: InstanceId,
        disabled: bool,
        now: jiff::Timestamp,
    ) -> Result<Option<InstanceRow>> {
        let changed = self
            .write(move |conn| {
                Box::pin(async move {
                    // Moves forward like an update's (see `update_instance`).
                    let done = sqlx::query(
                        "UPDATE instances SET disabled = $1, updated_at = GREATEST($2, updated_at + 1)
                         WHERE id = $3 AND organization_id = $4",
                    )
                    .bind(disabled)
                    .bind(now.as_millisecond())
                    .bind(id.0)
                    .bind(org.0)
                    .execute(&mut *conn)
                    .await?;
                    if done.rows_affected() != 1 {
                        return Ok(false);
                    }
                    // Parks its pending notifications, or brings them back with their due
                    // times, in the same transaction and after the instance's row is locked
                    // by the update above (`crate::deliveries`, "Paused notifications"; a
                    // claim's parking locks the instance FOR SHARE). Leased ones are left to
                    // their attempt: a retry is parked by a later claim.
                    let moved = if disabled {
                        sqlx::query(PARK_INSTANCE)
                            .bind(id.0)
                            .bind(now.as_millisecond())
                    } else {
                        sqlx::query(UNPARK_INSTANCE).bind(id.0)
                    };
                    moved.execute(&mut *conn).await?;
                    notify(conn, Wake::Polls).await?;
                    notify(conn, Wake::Deliveries).await?;
                    Ok(true)
                })
            })
            .await?;
        if !changed {
            return Ok(None);
        }
        self.get_instance(org, id).await
    }

    fn instance_row(&self, row: &PgRow) -> Result<InstanceRow> {
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

/// Whether `org` has the instance `id`.
async fn exists(
    conn: &mut sqlx::PgConnection,
    org: OrganizationId,
    id: InstanceId,
) -> Result<bool> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT id FROM instances WHERE id = $1 AND organization_id = $2")
            .bind(id.0)
            .bind(org.0)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(found.is_some())
}
