//! SQL of retention.

use jiff::Timestamp;

use super::PostgresStore;
use crate::{Result, retention::Pruned};

impl PostgresStore {
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
        self.write(move |conn| {
                Box::pin(async move {
                    let ids: Vec<String> = sqlx::query_scalar(
                        "SELECT id FROM notifications
                         WHERE (status = 'delivered' AND delivered_at < $1)
                            OR (status = 'cancelled' AND created_at < $1
                                AND (lease_until IS NULL OR lease_until < $1))
                         LIMIT $2",
                    )
                    .bind(deliveries_before)
                    .bind(i64::from(batch))
                    .fetch_all(&mut *conn)
                    .await?;
                    let attempts = sqlx::query(
                        "DELETE FROM delivery_attempts
                         WHERE notification_id = ANY($1)",
                    )
                    .bind(&ids)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    let notifications = sqlx::query(
                        "DELETE FROM notifications WHERE id = ANY($1)",
                    )
                    .bind(&ids)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    let events = sqlx::query(
                        "DELETE FROM events WHERE id IN (
                             SELECT e.id FROM events e
                             LEFT JOIN notifications n
                                 ON n.id = e.notification_id AND n.organization_id = e.organization_id
                             WHERE e.created_at < $1
                               AND (n.id IS NULL OR n.status IN ('delivered', 'cancelled'))
                             LIMIT $2)",
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
