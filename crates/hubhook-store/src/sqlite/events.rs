//! SQL of stored events.

use hubhook_core::{EventId, InstanceId, NotificationId};
use sqlx::Row as _;
use sqlx::sqlite::SqliteRow;

use super::{SqliteStore, packed, timestamp};
use crate::{EventRow, OrganizationId, Result};

impl SqliteStore {
    pub async fn list_events(&self, instance: InstanceId, limit: u32) -> Result<Vec<EventRow>> {
        let rows = sqlx::query(
            "SELECT e.id, e.instance_id, e.object_type, e.object_id, e.event_type, e.event_date,
                 e.record, e.notification_id, COALESCE(n.status, 'none') AS status, e.created_at
             FROM events e LEFT JOIN notifications n
                 ON n.id = e.notification_id AND n.organization_id = e.organization_id
             WHERE e.instance_id = $1
             ORDER BY e.created_at DESC, e.event_date DESC, e.id DESC
             LIMIT CAST($2 AS INTEGER)",
        )
        .bind(instance.0)
        .bind(i64::from(limit))
        .fetch_all(&self.readers)
        .await?;
        rows.iter().map(event_row).collect()
    }

    pub async fn organization_events(
        &self,
        org: OrganizationId,
        instance: Option<InstanceId>,
        after: Option<(i64, String)>,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<EventRow>> {
        let (after_ms, after_id) = after.unwrap_or((i64::MAX, String::new()));
        let rows = sqlx::query(concat!(
            event_select!(),
            " WHERE i.organization_id = $1 AND ($2 IS NULL OR e.instance_id = $2)
               AND (e.created_at < $3 OR (e.created_at = $3 AND ($4 = '' OR e.id < $4)))
             ORDER BY e.created_at DESC, e.id DESC
             LIMIT CAST($5 AS INTEGER) OFFSET $6"
        ))
        .bind(org.0)
        .bind(instance.map(|i| i.0))
        .bind(after_ms)
        .bind(after_id)
        .bind(i64::from(limit))
        .bind(i64::from(offset))
        .fetch_all(&self.readers)
        .await?;
        rows.iter().map(event_row).collect()
    }

    pub async fn organization_event(
        &self,
        org: OrganizationId,
        instance: Option<InstanceId>,
        id: &str,
    ) -> Result<Option<EventRow>> {
        let row = sqlx::query(concat!(
            event_select!(),
            " WHERE i.organization_id = $1 AND ($2 IS NULL OR e.instance_id = $2) AND e.id = $3"
        ))
        .bind(org.0)
        .bind(instance.map(|i| i.0))
        .bind(id)
        .fetch_optional(&self.readers)
        .await?;
        row.as_ref().map(event_row).transpose()
    }
}

/// The columns of an [`EventRow`], joined with its instance (for the organization) and its
/// notification (for the status).
macro_rules! event_select {
    () => {
        "SELECT e.id, e.instance_id, e.object_type, e.object_id, e.event_type, e.event_date,
             e.record, e.notification_id, COALESCE(n.status, 'none') AS status, e.created_at
         FROM events e JOIN instances i ON i.id = e.instance_id
                 AND i.organization_id = e.organization_id AND i.deleting = 0
             LEFT JOIN notifications n
                 ON n.id = e.notification_id AND n.organization_id = e.organization_id"
    };
}
use event_select;

pub(super) fn event_row(row: &SqliteRow) -> Result<EventRow> {
    Ok(EventRow {
        id: EventId(row.try_get("id")?),
        instance_id: InstanceId(row.try_get("instance_id")?),
        object_type: row.try_get("object_type")?,
        object_id: row.try_get("object_id")?,
        event_type: row.try_get("event_type")?,
        event_date: timestamp(row.try_get("event_date")?)?,
        record_json: packed::column(row, "record")?,
        notification_id: row
            .try_get::<Option<String>, _>("notification_id")?
            .map(NotificationId),
        status: row.try_get("status")?,
        created_at: timestamp(row.try_get("created_at")?)?,
    })
}
