//! Notifications (the outbox rows) and their delivery attempts.

use std::time::Duration;

use hubhook_core::{InstanceId, NotificationId};
use jiff::Timestamp;

use crate::{
    AttemptRecord, AttemptRow, Backlog, NotificationRow, PendingNotification, Result, Store,
    on_backend,
};

impl Store {
    /// Claims up to `limit` pending notifications that are due and not leased (or whose lease has
    /// ended), oldest due first; each is leased to `owner` until `now + lease` under a fresh
    /// token (in `PendingNotification::lease_token`).
    pub async fn claim_notifications(
        &self,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<PendingNotification>> {
        on_backend!(self, s => s.claim_notifications(owner, now, lease, limit).await)
    }

    /// Records one delivery attempt (every attempt is a row) and its consequence, in ONE
    /// transaction fenced on the lease token: `Delivered` marks the notification delivered,
    /// `RetryAt(t)` counts a failure and makes it due at `t`, `Queued` counts a failure and parks
    /// it as queued. Releases the lease. `Err(LeaseLost)`, with nothing written, when
    /// `attempt.lease_token` no longer holds the lease.
    pub async fn finish_attempt(&self, attempt: AttemptRecord) -> Result<()> {
        on_backend!(self, s => s.finish_attempt(attempt).await)
    }

    /// When the earliest pending notification becomes claimable; `None` when none is pending.
    pub async fn next_notification_due(&self) -> Result<Option<Timestamp>> {
        on_backend!(self, s => s.next_notification_due().await)
    }

    /// Pending notifications due at `now` and not leased.
    pub async fn delivery_backlog(&self, now: Timestamp) -> Result<Backlog> {
        on_backend!(self, s => s.delivery_backlog(now).await)
    }

    /// How many notifications are queued (retries exhausted, waiting for redelivery).
    pub async fn queued_notifications(&self) -> Result<u64> {
        on_backend!(self, s => s.queued_notifications().await)
    }

    /// One notification.
    pub async fn notification(&self, id: &NotificationId) -> Result<Option<NotificationRow>> {
        on_backend!(self, s => s.notification(id).await)
    }

    /// The instance's notifications, newest first.
    pub async fn list_notifications(
        &self,
        instance: InstanceId,
        limit: u32,
    ) -> Result<Vec<NotificationRow>> {
        on_backend!(self, s => s.list_notifications(instance, limit).await)
    }

    /// Every delivery attempt of a notification, in the order they were made.
    pub async fn list_attempts(&self, notification: &NotificationId) -> Result<Vec<AttemptRow>> {
        on_backend!(self, s => s.list_attempts(notification).await)
    }
}
