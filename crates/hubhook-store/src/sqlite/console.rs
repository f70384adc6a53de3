//! SQL of the console's organization-wide aggregates.

use hubhook_core::InstanceId;
use jiff::Timestamp;
use sqlx::Row as _;

use super::{SqliteStore, timestamp};
use crate::{AnalyticsBucket, DeliveryHealth, OrganizationId, Result};

/// A count read back from SQLite (never negative; a sum over no rows is NULL).
fn non_negative(value: Option<i64>) -> u64 {
    value.and_then(|v| u64::try_from(v).ok()).unwrap_or(0)
}

impl SqliteStore {
    pub async fn delivery_health(
        &self,
        org: OrganizationId,
        instance: Option<InstanceId>,
        now: Timestamp,
    ) -> Result<Vec<DeliveryHealth>> {
        let rows = sqlx::query(
            "SELECT n.instance_id,
                    SUM(n.status = 'pending'
                        AND COALESCE(n.next_attempt_at, n.paused_due_at) <= $2) AS due,
                    SUM(n.status = 'pending' AND n.failed_attempts > 0) AS failing,
                    SUM(n.status = 'queued') AS queued
             FROM notifications n
                 JOIN instances i ON i.id = n.instance_id AND i.organization_id = n.organization_id
             WHERE i.organization_id = $1 AND i.deleting = 0 AND n.status IN ('pending', 'queued')
               AND ($3 IS NULL OR n.instance_id = $3)
             GROUP BY n.instance_id ORDER BY n.instance_id",
        )
        .bind(org.0)
        .bind(now.as_millisecond())
        .bind(instance.map(|id| id.0))
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DeliveryHealth {
                    instance_id: InstanceId(row.try_get("instance_id")?),
                    due: non_negative(row.try_get("due")?),
                    failing: non_negative(row.try_get("failing")?),
                    queued: non_negative(row.try_get("queued")?),
                })
            })
            .collect()
    }

    pub async fn event_analytics(
        &self,
        org: OrganizationId,
        from: Timestamp,
        to: Timestamp,
        bucket_ms: i64,
    ) -> Result<Vec<AnalyticsBucket>> {
        let (from_ms, to_ms) = (from.as_millisecond(), to.as_millisecond());
        let rows = sqlx::query(
            "SELECT instance_id, bucket, SUM(events) AS events, SUM(delivered) AS delivered,
                    SUM(failed) AS failed
             FROM (
                SELECT e.instance_id, (e.created_at - $2) / $4 AS bucket,
                       1 AS events, 0 AS delivered, 0 AS failed
                FROM events e
                    JOIN instances i
                        ON i.id = e.instance_id AND i.organization_id = e.organization_id
                WHERE i.organization_id = $1 AND i.deleting = 0
                  AND e.created_at >= $2 AND e.created_at < $3
                UNION ALL
                SELECT n.instance_id, (a.attempted_at - $2) / $4 AS bucket, 0 AS events,
                       a.outcome = 'delivered' AS delivered, a.outcome <> 'delivered' AS failed
                FROM delivery_attempts a
                JOIN notifications n
                    ON n.id = a.notification_id AND n.organization_id = a.organization_id
                JOIN instances i ON i.id = n.instance_id AND i.organization_id = n.organization_id
                WHERE i.organization_id = $1 AND i.deleting = 0
                  AND a.attempted_at >= $2 AND a.attempted_at < $3
             )
             GROUP BY instance_id, bucket ORDER BY instance_id, bucket",
        )
        .bind(org.0)
        .bind(from_ms)
        .bind(to_ms)
        .bind(bucket_ms.max(1))
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|row| {
                let bucket: i64 = row.try_get("bucket")?;
                Ok(AnalyticsBucket {
                    instance_id: InstanceId(row.try_get("instance_id")?),
                    start: timestamp(from_ms.saturating_add(bucket.saturating_mul(bucket_ms)))?,
                    events: non_negative(row.try_get("events")?),
                    delivered: non_negative(row.try_get("delivered")?),
                    failed: non_negative(row.try_get("failed")?),
                })
            })
            .collect()
    }
}
