//! SQL of stored events.

use hubhook_core::{EventId, InstanceId, NotificationId};
use sqlx::Row as _;

use super::{SqliteStore, timestamp};
use crate::{EventRow, Result};

impl SqliteStore {
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
}
