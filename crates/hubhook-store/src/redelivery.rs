//! What users do with deliveries: list them by status, see a subscription's state, and send
//! notifications again (resend, recover, Cloud Elements' redelivery of the queue).

use hubhook_core::{InstanceId, NotificationId};
use jiff::Timestamp;

use crate::{
    ConfigVersion, Deactivation, NewNotification, NotificationRow, OrganizationId, Result, Store,
    on_backend,
};

/// Stores a replay (`$1` its id, `$3` its body, `$5` the notification it replays) of instance
/// `$2` at `$4`, once: a replay retried with the same ids stores nothing again. Into a
/// disabled instance it is parked at once (`crate::deliveries`, "Paused notifications").
pub(crate) const INSERT_REPLAY: &str = "INSERT INTO notifications (id, instance_id, body, status,
         failed_attempts, next_attempt_at, created_at, replay_of, organization_id, paused_due_at)
     SELECT $1, $2, $3, 'pending', 0, CASE WHEN disabled THEN NULL ELSE $4 END, $4, $5,
         organization_id, CASE WHEN disabled THEN $4 ELSE NULL END
     FROM instances WHERE id = $2
     ON CONFLICT (id) DO NOTHING";

/// Which notifications to list. Statuses as the API shows them: `pending` (not tried yet, or
/// due again after a redelivery), `failed` (failed, retry scheduled), `delivered`, `queued`,
/// `cancelled`.
#[derive(Debug, Clone)]
pub struct NotificationFilter {
    pub organization: OrganizationId,
    /// One instance, or every instance of the organization.
    pub instance: Option<InstanceId>,
    /// Empty: every status.
    pub statuses: Vec<String>,
    /// Created at or after.
    pub since: Option<Timestamp>,
    /// Created before.
    pub until: Option<Timestamp>,
    /// Paging: only notifications listed after this one (newest first).
    pub after: Option<(Timestamp, NotificationId)>,
    pub limit: u32,
    /// Whether the rows carry their bodies (else `body` is empty). A scan that only tests the
    /// rows' fields leaves them out: reading and unpacking every body was most of its cost.
    pub bodies: bool,
}

/// Which notifications of a redelivery's list are made due again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redeliver {
    /// Those not delivered: a notification delivered after the list was made (its earlier
    /// attempt was still going, or another redelivery sent it first) is not sent twice. What
    /// a recovery and the queue API's `PUT` select.
    Undelivered,
    /// Delivered ones too: `resend` sends one again on purpose.
    Any,
}

impl Store {
    /// The version of each instance's delivery configuration (its row, its webhook secret and
    /// its organization's settings): the dispatcher's cache stays valid while it is unchanged.
    /// Read once per claimed batch, not per attempt. Deleted instances are absent.
    pub async fn delivery_config_versions(
        &self,
        instances: &[InstanceId],
    ) -> Result<std::collections::HashMap<InstanceId, ConfigVersion>> {
        on_backend!(self, s => s.delivery_config_versions(instances).await)
    }

    /// Notifications matching the filter, newest first.
    pub async fn find_notifications(
        &self,
        filter: NotificationFilter,
    ) -> Result<Vec<NotificationRow>> {
        on_backend!(self, s => s.find_notifications(filter).await)
    }

    /// How many delivery attempts each of these notifications has (in the same order).
    pub async fn attempt_counts(&self, ids: &[NotificationId]) -> Result<Vec<u64>> {
        on_backend!(self, s => s.attempt_counts(ids).await)
    }

    /// The notifications (not replays) carrying events of the instance stored in
    /// `[from, to)`, oldest first, at most `limit`.
    pub async fn replayable_notifications(
        &self,
        instance: InstanceId,
        from: Timestamp,
        to: Timestamp,
        limit: u32,
    ) -> Result<Vec<NotificationRow>> {
        on_backend!(self, s => s.replayable_notifications(instance, from, to, limit).await)
    }

    /// Stores replays (each with the id of the notification it replays), due at `now`, in one
    /// transaction on PostgreSQL and on SQLite 1,000 per write in the order given. Returns how
    /// many were new. `NotFound` when the instance no longer exists (on SQLite, parts stored
    /// before a delete came are cancelled by it).
    pub async fn insert_replays(
        &self,
        instance: InstanceId,
        replays: Vec<(NotificationId, NewNotification)>,
        now: Timestamp,
    ) -> Result<u64> {
        on_backend!(self, s => s.insert_replays(instance, replays, now).await)
    }

    /// The instance's oldest undelivered (pending or queued) notification, in the order
    /// notifications were stored, with when it is due: the head of an ordered instance's line.
    pub async fn oldest_undelivered(
        &self,
        instance: InstanceId,
    ) -> Result<Option<(NotificationId, Option<Timestamp>)>> {
        on_backend!(self, s => s.oldest_undelivered(instance).await)
    }

    /// Whether the instance's webhook subscription is deactivated, since when and why.
    pub async fn deactivation(&self, instance: InstanceId) -> Result<Option<Deactivation>> {
        on_backend!(self, s => s.deactivation(instance).await)
    }

    /// Makes these notifications of the instance due at `now` with a fresh retry schedule
    /// (their attempt history stays) and reactivates the instance's subscription, in one
    /// transaction on PostgreSQL and on SQLite 1,000 per write in the order given (one writer
    /// serves every organization). Notifications being delivered right now and cancelled ones
    /// are left alone, and so are those delivered by now unless `which` is
    /// [`Redeliver::Any`]; none is made due once the instance is deleted. Returns how many
    /// were made due.
    pub async fn redeliver(
        &self,
        instance: InstanceId,
        ids: Vec<NotificationId>,
        which: Redeliver,
        now: Timestamp,
    ) -> Result<u64> {
        on_backend!(self, s => s.redeliver(instance, ids, which, now).await)
    }

    /// [`Store::redeliver`] for several instances (each list in the order given), as one
    /// request: on PostgreSQL in one transaction; on SQLite every instance's list is recorded
    /// in a first write, so that a node stopped halfway finishes all of them at its next start
    /// ([`Store::finish_leftovers`]), and a caller that stops waiting does not stop them.
    pub async fn redeliver_several(
        &self,
        runs: Vec<(InstanceId, Vec<NotificationId>)>,
        which: Redeliver,
        now: Timestamp,
    ) -> Result<u64> {
        match self {
            Store::Sqlite(s) => s.redeliver_several(runs, which, now).await,
            // Spawned, so that a caller that stops waiting does not roll it back.
            Store::Postgres(s) => {
                let s = s.clone();
                tokio::spawn(async move { s.redeliver_several(runs, which, now).await })
                    .await
                    .map_err(|e| crate::StoreError::Other(e.to_string()))?
            }
        }
    }
}
