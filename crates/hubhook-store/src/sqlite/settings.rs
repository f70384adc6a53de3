//! SQL of account settings.

use jiff::Timestamp;
use serde_json::{Map, Value};
use sqlx::Row as _;

use super::{SqliteStore, from_json, to_json};
use crate::{OrganizationId, Result};

impl SqliteStore {
    pub async fn organization_settings(&self, org: OrganizationId) -> Result<Map<String, Value>> {
        let rows = sqlx::query(
            "SELECT key, value FROM organization_settings WHERE organization_id = $1 ORDER BY key",
        )
        .bind(org.0)
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|row| {
                let value: String = row.try_get("value")?;
                Ok((row.try_get("key")?, from_json(&value, "value")?))
            })
            .collect()
    }

    pub async fn update_organization_settings(
        &self,
        org: OrganizationId,
        settings: Map<String, Value>,
        now: Timestamp,
    ) -> Result<()> {
        let settings = settings
            .into_iter()
            .map(|(key, value)| Ok((key, to_json(&value)?)))
            .collect::<Result<Vec<_>>>()?;
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    for (key, value) in &settings {
                        sqlx::query(
                            "INSERT INTO organization_settings (organization_id, key, value,
                                 updated_at)
                             VALUES ($1, $2, $3, $4)
                             ON CONFLICT (organization_id, key) DO UPDATE
                                 SET value = excluded.value, updated_at = excluded.updated_at",
                        )
                        .bind(org.0)
                        .bind(key)
                        .bind(value)
                        .bind(now.as_millisecond())
                        .execute(&mut *conn)
                        .await?;
                    }
                    Ok(())
                })
            })
            .await
    }
}
