//! SQL of Standard Webhooks secrets.

use std::time::Duration;

use hubhook_core::InstanceId;
use jiff::Timestamp;
use serde_json::{Map, Value};
use sqlx::Row as _;

use super::{SqliteStore, duration_ms, timestamp};
use crate::{OrganizationId, Result, StoreError, WebhookSecrets};

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
                        "SELECT id FROM instances WHERE id = $1 AND organization_id = $2",
                    )
                    .bind(instance.0)
                    .bind(org.0)
                    .fetch_optional(&mut *conn)
                    .await?;
                    if found.is_none() {
                        return Ok(false);
                    }
                    let old: Option<String> = sqlx::query_scalar(
                        "SELECT sealed FROM webhook_secrets WHERE instance_id = $1",
                    )
                    .bind(instance.0)
                    .fetch_optional(&mut *conn)
                    .await?;
                    let mut secrets = Map::new();
                    secrets.insert("current".into(), Value::String(secret));
                    let previous = match old {
                        Some(sealed) => key.open(org, &sealed)?.remove("current"),
                        None => None,
                    };
                    let previous_until = previous
                        .is_some()
                        .then(|| now.as_millisecond().saturating_add(duration_ms(overlap)));
                    if let Some(previous) = previous {
                        secrets.insert("previous".into(), previous);
                    }
                    let sealed = key.seal(org, &secrets)?;
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
        let mut secrets = self.key.open(org, row.try_get("sealed")?)?;
        let mut text = |name: &str| match secrets.remove(name) {
            Some(Value::String(s)) => Ok(Some(s)),
            None => Ok(None),
            Some(_) => Err(StoreError::Other(format!(
                "stored webhook secret `{name}` is not a string"
            ))),
        };
        let current = text("current")?.ok_or_else(|| {
            StoreError::Other("stored webhook secrets have no current secret".into())
        })?;
        let previous = text("previous")?;
        let previous_until: Option<i64> = row.try_get("previous_until")?;
        Ok(Some(WebhookSecrets {
            current,
            previous: match (previous, previous_until) {
                (Some(secret), Some(until)) => Some((secret, timestamp(until)?)),
                _ => None,
            },
            updated_at: timestamp(row.try_get("updated_at")?)?,
        }))
    }
}
