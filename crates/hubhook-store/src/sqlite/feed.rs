//! SQL of the pull feed.

use hubhook_core::InstanceId;
use sqlx::Row as _;

use super::{SqliteStore, events::event_row};
use crate::{EventRow, Result};

impl SqliteStore {
    pub async fn events_after(
        &self,
        instance: InstanceId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, EventRow)>> {
        let rows = sqlx::query(
            "SELECT e.rowid AS position, e.id, e.instance_id, e.object_type, e.object_id,
                 e.event_type, e.event_date, e.record, e.notification_id,
                 COALESCE(n.status, 'none') AS status, e.created_at
             FROM events e LEFT JOIN notifications n
                 ON n.id = e.notification_id AND n.organization_id = e.organization_id
             WHERE e.instance_id = $1 AND e.rowid > $2
             ORDER BY e.rowid
             LIMIT CAST($3 AS INTEGER)",
        )
        .bind(instance.0)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("position")?, event_row(row)?)))
            .collect()
    }
}
