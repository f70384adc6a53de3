//! SQL of notifications (claims, attempts) and the attempt history.

use std::time::Duration;

use hubhook_core::{InstanceId, NotificationId};
use jiff::Timestamp;
use sqlx::Row as _;
use sqlx::sqlite::{SqliteConnection, SqliteRow};

use super::{
    SqliteStore, backlog, count, duration_ms, new_lease_token, optional_timestamp, timestamp,
};
use crate::{
    AttemptOutcome, AttemptRecord, AttemptRow, Backlog, LeaseToken, NotificationRow,
    PendingNotification, Result, StoreError,
};

macro_rules! notification_select {
    ($tail:literal) => {
        concat!(
            "SELECT id, instance_id, body, status, failed_attempts, next_attempt_at, created_at,
                 delivered_at
             FROM notifications ",
            $tail
        )
    };
}

impl SqliteStore {
    pub async fn claim_notifications(
        &self,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<PendingNotification>> {
        let owner = owner.to_owned();
        let now = now.as_millisecond();
        let lease_until = now.saturating_add(duration_ms(lease));
        let rows = self
            .writer
            .write(move |conn| {
                Box::pin(async move {
                    let rows = sqlx::query(concat!(
                        "UPDATE notifications SET lease_owner = $1, lease_until = $2,
                             lease_token = ",
                        new_lease_token!(),
                        " WHERE id IN (
                             SELECT id FROM notifications
                             WHERE status = 'pending' AND next_attempt_at <= $3
                               AND (lease_until IS NULL OR lease_until <= $3)
                               AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = notifications.instance_id
                   AND i.organization_id = notifications.organization_id AND i.disabled = 1)
                             ORDER BY next_attempt_at, created_at
                             LIMIT $4)
                         RETURNING id, instance_id, body, failed_attempts, next_attempt_at,
                             created_at, lease_token"
                    ))
                    .bind(&owner)
                    .bind(lease_until)
                    .bind(now)
                    .bind(i64::from(limit))
                    .fetch_all(&mut *conn)
                    .await?;
                    Ok(rows)
                })
            })
            .await?;
        let mut claimed = rows
            .iter()
            .map(|row| {
                let due: i64 = row.try_get("next_attempt_at")?;
                let pending = PendingNotification {
                    id: NotificationId(row.try_get("id")?),
                    lease_token: LeaseToken(row.try_get("lease_token")?),
                    instance_id: InstanceId(row.try_get("instance_id")?),
                    body: row.try_get("body")?,
                    failed_attempts: count(row.try_get("failed_attempts")?)?,
                    created_at: timestamp(row.try_get("created_at")?)?,
                };
                Ok((due, pending))
            })
            .collect::<Result<Vec<_>>>()?;
        // RETURNING does not keep the subquery's order.
        claimed.sort_by_key(|(due, pending)| (*due, pending.created_at));
        Ok(claimed.into_iter().map(|(_, pending)| pending).collect())
    }

    pub async fn finish_attempt(&self, attempt: AttemptRecord) -> Result<()> {
        self.writer
            .write(move |conn| Box::pin(finish_attempt(conn, attempt)))
            .await
    }

    pub async fn next_notification_due(&self) -> Result<Option<Timestamp>> {
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(max(next_attempt_at, COALESCE(lease_until, next_attempt_at)))
             FROM notifications WHERE status = 'pending'
               AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = notifications.instance_id
                   AND i.organization_id = notifications.organization_id AND i.disabled = 1)",
        )
        .fetch_one(&self.readers)
        .await?;
        due.map(timestamp).transpose()
    }

    pub async fn delivery_backlog(&self, now: Timestamp) -> Result<Backlog> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS due, MIN(next_attempt_at) AS oldest FROM notifications
             WHERE status = 'pending' AND next_attempt_at <= $1
               AND (lease_until IS NULL OR lease_until <= $1)
               AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = notifications.instance_id
                   AND i.organization_id = notifications.organization_id AND i.disabled = 1)",
        )
        .bind(now.as_millisecond())
        .fetch_one(&self.readers)
        .await?;
        backlog(&row)
    }

    pub async fn queued_notifications(&self) -> Result<u64> {
        let queued: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM notifications WHERE status = 'queued'")
                .fetch_one(&self.readers)
                .await?;
        Ok(u64::try_from(queued).unwrap_or(0))
    }

    pub async fn notification(&self, id: &NotificationId) -> Result<Option<NotificationRow>> {
        let row = sqlx::query(notification_select!("WHERE id = $1"))
            .bind(&id.0)
            .fetch_optional(&self.readers)
            .await?;
        row.as_ref().map(notification_row).transpose()
    }

    pub async fn list_notifications(
        &self,
        instance: InstanceId,
        limit: u32,
    ) -> Result<Vec<NotificationRow>> {
        let rows = sqlx::query(notification_select!(
            "WHERE instance_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
        ))
        .bind(instance.0)
        .bind(i64::from(limit))
        .fetch_all(&self.readers)
        .await?;
        rows.iter().map(notification_row).collect()
    }

    pub async fn list_attempts(&self, notification: &NotificationId) -> Result<Vec<AttemptRow>> {
        let rows = sqlx::query(
            "SELECT id, notification_id, attempted_at, status_code, latency_ms, error
             FROM delivery_attempts WHERE notification_id = $1 ORDER BY id",
        )
        .bind(&notification.0)
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AttemptRow {
                    id: row.try_get("id")?,
                    notification_id: NotificationId(row.try_get("notification_id")?),
                    attempted_at: timestamp(row.try_get("attempted_at")?)?,
                    status_code: row
                        .try_get::<Option<i64>, _>("status_code")?
                        .map(|code| {
                            u16::try_from(code).map_err(|_| super::corrupt("status_code", code))
                        })
                        .transpose()?,
                    latency_ms: row.try_get("latency_ms")?,
                    error: row.try_get("error")?,
                })
            })
            .collect()
    }
}

/// Records one delivery attempt and its consequence for the notification, fenced on the
/// claim's token.
async fn finish_attempt(conn: &mut SqliteConnection, attempt: AttemptRecord) -> Result<()> {
    let held: Option<i64> = sqlx::query_scalar(
        "SELECT organization_id FROM notifications WHERE id = $1 AND lease_token = $2",
    )
    .bind(&attempt.notification_id.0)
    .bind(&attempt.lease_token.0)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(organization) = held else {
        return Err(StoreError::LeaseLost);
    };
    let at = attempt.attempted_at.as_millisecond();
    let outcome = match attempt.outcome {
        AttemptOutcome::Delivered => "delivered",
        AttemptOutcome::RetryAt(_) => "retry",
        AttemptOutcome::Queued => "queued",
    };
    sqlx::query(
        "INSERT INTO delivery_attempts (notification_id, owner, attempted_at, status_code,
             latency_ms, error, outcome, organization_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&attempt.notification_id.0)
    .bind(&attempt.owner)
    .bind(at)
    .bind(attempt.status_code.map(i64::from))
    .bind(attempt.latency_ms)
    .bind(&attempt.error)
    .bind(outcome)
    .bind(organization)
    .execute(&mut *conn)
    .await?;
    let update = match attempt.outcome {
        AttemptOutcome::Delivered => sqlx::query(
            "UPDATE notifications SET status = 'delivered', delivered_at = $2,
                 next_attempt_at = NULL, lease_owner = NULL, lease_until = NULL,
                 lease_token = NULL
             WHERE id = $1",
        )
        .bind(&attempt.notification_id.0)
        .bind(at),
        AttemptOutcome::RetryAt(next) => sqlx::query(
            "UPDATE notifications SET failed_attempts = failed_attempts + 1,
                 next_attempt_at = $2, lease_owner = NULL, lease_until = NULL,
                 lease_token = NULL
             WHERE id = $1",
        )
        .bind(&attempt.notification_id.0)
        .bind(next.as_millisecond()),
        // A notification cancelled while in flight stays cancelled: its instance is gone.
        AttemptOutcome::Queued => sqlx::query(
            "UPDATE notifications SET failed_attempts = failed_attempts + 1,
                 status = CASE WHEN status = 'cancelled' THEN status ELSE 'queued' END,
                 next_attempt_at = NULL, lease_owner = NULL, lease_until = NULL,
                 lease_token = NULL
             WHERE id = $1",
        )
        .bind(&attempt.notification_id.0),
    };
    update.execute(&mut *conn).await?;
    Ok(())
}

fn notification_row(row: &SqliteRow) -> Result<NotificationRow> {
    Ok(NotificationRow {
        id: NotificationId(row.try_get("id")?),
        instance_id: InstanceId(row.try_get("instance_id")?),
        body: row.try_get("body")?,
        status: row.try_get("status")?,
        failed_attempts: count(row.try_get("failed_attempts")?)?,
        next_attempt_at: optional_timestamp(row, "next_attempt_at")?,
        created_at: timestamp(row.try_get("created_at")?)?,
        delivered_at: optional_timestamp(row, "delivered_at")?,
    })
}
