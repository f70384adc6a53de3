//! SQL of Standard Webhooks secrets.

use std::time::Duration;

use hubhook_core::InstanceId;
use jiff::Timestamp;
use sqlx::Row as _;

use super::SqliteStore;
use crate::webhook_secrets::{self, StoredSecrets};
use crate::{OrganizationId, Result, WebhookSecrets};

impl SqliteStore {
    pub async fn rotate_webhook_secret(
        &self,
        org: OrganizationId,
        instance: InstanceId,
        secret: String,
        now: Timestamp,
        overlap: Duration,
    ) -> Result<bool> {
        let key = self.key.clone();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let found: Option<i64> = sqlx::query_scalar(
                        "SELECT id FROM instances
                         WHERE id = $1 AND organization_id = $2 AND deleting = 0",
                    )
                    .bind(instance.0)
                    .bind(org.0)
                    .fetch_optional(&mut *conn)
                    .await?;
                    if found.is_none() {
                        return Ok(false);
                    }
                    let old: Option<(String, Option<i64>, i64)> = sqlx::query_as(
                        "SELECT sealed, previous_until, updated_at FROM webhook_secrets
                         WHERE instance_id = $1",
                    )
                    .bind(instance.0)
                    .fetch_optional(&mut *conn)
                    .await?;
                    let old =
                        old.as_ref()
                            .map(|(sealed, previous_until, updated_at)| StoredSecrets {
                                sealed,
                                previous_until: *previous_until,
                                updated_at: *updated_at,
                            });
                    let (sealed, previous_until) =
                        webhook_secrets::rotated(&key, org, old, secret, now, overlap)?;
                    sqlx::query(
                        "INSERT INTO webhook_secrets (instance_id, organization_id, sealed,
                             previous_until, updated_at)
                         VALUES ($1, $2, $3, $4, $5)
                         ON CONFLICT (instance_id) DO UPDATE SET sealed = excluded.sealed,
                             previous_until = excluded.previous_until,
                             updated_at = excluded.updated_at",
                    )
                    .bind(instance.0)
                    .bind(org.0)
                    .bind(&sealed)
                    .bind(previous_until)
                    .bind(now.as_millisecond())
                    .execute(&mut *conn)
                    .await?;
                    Ok(true)
                })
            })
            .await
    }

    pub async fn webhook_secrets(&self, instance: InstanceId) -> Result<Option<WebhookSecrets>> {
        let Some(row) = sqlx::query(
            "SELECT organization_id, sealed, previous_until, updated_at FROM webhook_secrets
             WHERE instance_id = $1",
        )
        .bind(instance.0)
        .fetch_optional(&self.readers)
        .await?
        else {
            return Ok(None);
        };
        let org = OrganizationId(row.try_get("organization_id")?);
        let stored = StoredSecrets {
            sealed: row.try_get("sealed")?,
            previous_until: row.try_get("previous_until")?,
            updated_at: row.try_get("updated_at")?,
        };
        webhook_secrets::opened(&self.key, org, stored).map(Some)
    }
}
