//! SQL of delivery listings, subscription state and redelivery.

use hubhook_core::{InstanceId, NotificationId};
use jiff::Timestamp;
use sqlx::Row as _;

use super::{PostgresStore, deliveries::notification_row, timestamp};
use crate::{
    Deactivation, NewNotification, NotificationRow, Result,
    redelivery::{NotificationFilter, Redeliver},
};

impl PostgresStore {
    pub async fn find_notifications(
        &self,
        filter: NotificationFilter,
    ) -> Result<Vec<NotificationRow>> {
        // As on SQLite: two static statements (one instance, or the organization), so that an
        // index can serve each, and the page starts after the keyset `(created_at, id)` as a
        // row value (the first page after a key above every row).
        macro_rules! find {
            ($instance:literal) => {
                concat!(
                    "SELECT n.id, n.instance_id, CASE WHEN $9 THEN n.body ELSE '' END AS body,
                         n.status, n.failed_attempts,
                         COALESCE(n.next_attempt_at, n.paused_due_at) AS next_attempt_at, n.created_at,
                         n.delivered_at, n.replay_of
                     FROM notifications n JOIN instances i ON i.id = n.instance_id
                     WHERE n.organization_id = $1 AND i.organization_id = $1 ",
                    $instance,
                    " AND (cardinality($3::text[]) = 0
                            OR (CASE WHEN n.status = 'pending' AND n.failed_attempts > 0
                                     THEN 'failed' ELSE n.status END) = ANY($3))
                       AND ($4::bigint IS NULL OR n.created_at >= $4)
                       AND ($5::bigint IS NULL OR n.created_at < $5)
                       AND (n.created_at, n.id) < ($6, $7)
                     ORDER BY n.created_at DESC, n.id DESC
                     LIMIT $8"
                )
            };
        }
        let (after_at, after_id) = match &filter.after {
            Some((at, id)) => (at.as_millisecond(), id.0.clone()),
            None => (i64::MAX, String::new()),
        };
        let sql = match filter.instance {
            Some(_) => find!("AND n.instance_id = $2"),
            None => find!("AND $2::bigint IS NULL"),
        };
        let rows = sqlx::query(sql)
            .bind(filter.organization.0)
            .bind(filter.instance.map(|i| i.0))
            .bind(&filter.statuses)
            .bind(filter.since.map(|t| t.as_millisecond()))
            .bind(filter.until.map(|t| t.as_millisecond()))
            .bind(after_at)
            .bind(after_id)
            .bind(i64::from(filter.limit))
            .bind(filter.bodies)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(notification_row).collect()
    }

    pub async fn attempt_counts(&self, ids: &[NotificationId]) -> Result<Vec<u64>> {
        let mut counts = Vec::with_capacity(ids.len());
        for id in ids {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM delivery_attempts WHERE notification_id = $1",
            )
            .bind(&id.0)
            .fetch_one(&self.pool)
            .await?;
            counts.push(u64::try_from(n).unwrap_or(0));
        }
        Ok(counts)
    }

    pub async fn replayable_notifications(
        &self,
        instance: InstanceId,
        from: Timestamp,
        to: Timestamp,
        limit: u32,
    ) -> Result<Vec<NotificationRow>> {
        let rows = sqlx::query(
            "SELECT n.id, n.instance_id, n.body, n.status, n.failed_attempts,
                 COALESCE(n.next_attempt_at, n.paused_due_at) AS next_attempt_at,
                 n.created_at, n.delivered_at, n.replay_of
             FROM notifications n
             WHERE n.id IN (SELECT notification_id FROM events
                            WHERE instance_id = $1 AND created_at >= $2 AND created_at < $3)
               AND n.instance_id = $1
             ORDER BY n.created_at, n.id
             LIMIT $4",
        )
        .bind(instance.0)
        .bind(from.as_millisecond())
        .bind(to.as_millisecond())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(notification_row).collect()
    }

    pub async fn insert_replays(
        &self,
        instance: InstanceId,
        replays: Vec<(NotificationId, NewNotification)>,
        now: Timestamp,
    ) -> Result<u64> {
        self.write(move |conn| {
            Box::pin(async move {
                // Replays take their storage order under the instance's lock, as a
                // poll's notifications do (see `polls::lock_instance_order`).
                super::polls::lock_instance_order(conn, instance).await?;
                // The route found the instance, but a delete may have come between: its
                // replays would belong to no organization, pending for ever. The row lock
                // keeps a delete out until this commits.
                if !is_locked_for_share(conn, instance).await? {
                    return Err(crate::StoreError::NotFound);
                }
                let mut inserted = 0;
                for (original, replay) in &replays {
                    inserted += sqlx::query(crate::redelivery::INSERT_REPLAY)
                        .bind(&replay.id.0)
                        .bind(instance.0)
                        .bind(&replay.body)
                        .bind(now.as_millisecond())
                        .bind(&original.0)
                        .execute(&mut *conn)
                        .await?
                        .rows_affected();
                }
                if inserted > 0 {
                    super::notify(conn, super::Wake::Deliveries).await?;
                }
                Ok(inserted)
            })
        })
        .await
    }

    pub async fn oldest_undelivered(
        &self,
        instance: InstanceId,
    ) -> Result<Option<(NotificationId, Option<Timestamp>)>> {
        // position is the storage order: a poll stores its notifications in the order of its
        // events, under the instance's lock.
        let row = sqlx::query(
            "SELECT id, COALESCE(next_attempt_at, paused_due_at) AS next_attempt_at FROM notifications
             WHERE instance_id = $1 AND status IN ('pending', 'queued')
             ORDER BY position LIMIT 1",
        )
        .bind(instance.0)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            let due: Option<i64> = row.try_get("next_attempt_at")?;
            Ok((
                NotificationId(row.try_get("id")?),
                due.map(timestamp).transpose()?,
            ))
        })
        .transpose()
    }

    pub async fn deactivation(&self, instance: InstanceId) -> Result<Option<Deactivation>> {
        let row = sqlx::query(
            "SELECT deactivated_at, reason FROM delivery_subscriptions WHERE instance_id = $1",
        )
        .bind(instance.0)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(Deactivation {
                deactivated_at: timestamp(row.try_get("deactivated_at")?)?,
                reason: row.try_get("reason")?,
            })
        })
        .transpose()
    }

    pub async fn redeliver(
        &self,
        instance: InstanceId,
        ids: Vec<NotificationId>,
        which: Redeliver,
        now: Timestamp,
    ) -> Result<u64> {
        self.write(move |conn| Box::pin(redeliver_in(conn, instance, ids, which, now)))
            .await
    }

    /// [`PostgresStore::redeliver`] of several instances in one transaction: all of it or
    /// none, whatever stops the node.
    pub async fn redeliver_several(
        &self,
        runs: Vec<(InstanceId, Vec<NotificationId>)>,
        which: Redeliver,
        now: Timestamp,
    ) -> Result<u64> {
        self.write(move |conn| {
            Box::pin(async move {
                let mut due = 0;
                for (instance, ids) in runs {
                    due += redeliver_in(conn, instance, ids, which, now).await?;
                }
                Ok(due)
            })
        })
        .await
    }
}

/// Makes `ids` of the instance due again in the transaction of `conn` (see
/// `Store::redeliver`); how many were.
async fn redeliver_in(
    conn: &mut sqlx::PgConnection,
    instance: InstanceId,
    ids: Vec<NotificationId>,
    which: Redeliver,
    now: Timestamp,
) -> Result<u64> {
    // A delete may have come since the route found the instance: none of its notifications
    // is made due again (the route's answer for a deleted one). The row lock keeps a delete
    // out until this commits.
    if !is_locked_for_share(conn, instance).await? {
        return Ok(0);
    }
    sqlx::query("DELETE FROM delivery_subscriptions WHERE instance_id = $1")
        .bind(instance.0)
        .execute(&mut *conn)
        .await?;
    // One statement for the whole list, not a round trip per id. A disabled instance's are
    // parked at once, as its disable parked the others (`crate::deliveries`, "Paused
    // notifications"); the instance's row, locked above, keeps an enable waiting until this
    // commits.
    let ids: Vec<&str> = ids.iter().map(|id| id.0.as_str()).collect();
    let due = sqlx::query(
        "UPDATE notifications SET status = 'pending',
             next_attempt_at = CASE WHEN (SELECT disabled FROM instances WHERE id = $2)
                 THEN NULL ELSE $3 END,
             paused_due_at = CASE WHEN (SELECT disabled FROM instances WHERE id = $2)
                 THEN $3 ELSE NULL END,
             failed_attempts = 0
         WHERE id = ANY($1) AND instance_id = $2 AND status != 'cancelled'
           AND (status != 'delivered' OR $4)
           AND (lease_until IS NULL OR lease_until <= $3)",
    )
    .bind(&ids)
    .bind(instance.0)
    .bind(now.as_millisecond())
    .bind(which == Redeliver::Any)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if due > 0 {
        super::notify(conn, super::Wake::Deliveries).await?;
    }
    Ok(due)
}

/// Whether the instance exists, its row then locked against a delete until the transaction
/// ends.
async fn is_locked_for_share(conn: &mut sqlx::PgConnection, instance: InstanceId) -> Result<bool> {
    let found: Option<i64> = sqlx::query_scalar("SELECT id FROM instances WHERE id = $1 FOR SHARE")
        .bind(instance.0)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(found.is_some())
}
