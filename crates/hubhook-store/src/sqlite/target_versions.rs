//! SQL of the delivery configuration versions (see `Store::delivery_config_versions`).

use std::collections::HashMap;

use hubhook_core::InstanceId;
use sqlx::Row as _;

use super::SqliteStore;
use crate::{ConfigVersion, Result};

impl SqliteStore {
    pub async fn delivery_config_versions(
        &self,
        instances: &[InstanceId],
    ) -> Result<HashMap<InstanceId, ConfigVersion>> {
        let ids = serde_json::to_string(&instances.iter().map(|i| i.0).collect::<Vec<_>>())
            .map_err(|e| crate::StoreError::Other(e.to_string()))?;
        let rows = sqlx::query(
            "SELECT i.id, i.updated_at, COALESCE(w.updated_at, 0) AS secret_at,
                 COALESCE((SELECT MAX(s.updated_at) FROM organization_settings s
                           WHERE s.organization_id = i.organization_id), 0) AS settings_at
             FROM instances i LEFT JOIN webhook_secrets w
                 ON w.instance_id = i.id AND w.organization_id = i.organization_id
             WHERE i.id IN (SELECT value FROM json_each($1)) AND i.deleting = 0",
        )
        .bind(ids)
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    InstanceId(row.try_get("id")?),
                    ConfigVersion([
                        row.try_get("updated_at")?,
                        row.try_get("secret_at")?,
                        row.try_get("settings_at")?,
                    ]),
                ))
            })
            .collect()
    }
}
