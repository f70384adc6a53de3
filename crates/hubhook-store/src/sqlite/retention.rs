//! SQL of retention.

use jiff::Timestamp;

use super::SqliteStore;
use crate::{Result, retention::Pruned};

impl SqliteStore {
    pub async fn prune(
        &self,
        deliveries_before: Timestamp,
        events_before: Timestamp,
        batch: u32,
    ) -> Result<Pruned> {
        let (deliveries_before, events_before) = (
            deliveries_before.as_millisecond(),
            events_before.as_millisecond(),
        );
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let ids: Vec<String> = sqlx::query_scalar(
                        "SELECT id FROM notifications
                         WHERE (status = 'delivered' AND delivered_at < $1)
                            OR (status = 'cancelled' AND created_at < $1
                                AND (lease_until IS NULL OR lease_until < $1))
                         LIMIT CAST($2 AS INTEGER)",
                    )
                    .bind(deliveries_before)
                    .bind(i64::from(batch))
                    .fetch_all(&mut *conn)
                    .await?;
                    let ids = serde_json::to_string(&ids)
                        .map_err(|e| crate::StoreError::Other(e.to_string()))?;
                    let attempts = sqlx::query(
                        "DELETE FROM delivery_attempts
                         WHERE notification_id IN (SELECT value FROM json_each($1))",
                    )
                    .bind(&ids)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    let notifications = sqlx::query(
                        "DELETE FROM notifications WHERE id IN (SELECT value FROM json_each($1))",
                    )
                    .bind(&ids)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    let events = sqlx::query(
                        "DELETE FROM events WHERE rowid IN (
                             SELECT e.rowid FROM events e
                             LEFT JOIN notifications n
                                 ON n.id = e.notification_id AND n.organization_id = e.organization_id
                             WHERE e.created_at < $1
                               AND (n.id IS NULL OR n.status IN ('delivered', 'cancelled'))
                               -- The newest row stays: an event's feed position is its rowid,
                               -- and SQLite gives a new row the largest rowid plus one, so
                               -- deleting the largest would hand out positions a reader's
                               -- cursor has already passed (its new events never shown).
                               AND e.rowid < (SELECT max(rowid) FROM events)
                             LIMIT CAST($2 AS INTEGER))",
                    )
                    .bind(events_before)
                    .bind(i64::from(batch))
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    Ok(Pruned {
                        notifications,
                        attempts,
                        events,
                    })
                })
            })
            .await
    }
}
