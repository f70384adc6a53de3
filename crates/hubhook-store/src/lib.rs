//! hubhook-store: the only crate with SQL.
//!
//! [`Store`] is an enum over the database engines, with inherent async methods that `match` on
//! the engine. Callers hold one `Store` (cheap to clone) and never see which engine is behind
//! it; a PostgreSQL backend (same schema, `FOR UPDATE SKIP LOCKED` leases) becomes a second
//! variant without changing them.
//!
//! What the store guarantees (see ARCHITECTURE.md):
//! - The outbox: a poll's events, notifications, observed objects and cursor are written in one
//!   transaction ([`Store::commit_poll`]), so a crash never moves a cursor past unstored events.
//! - Leases: work is claimed with a lease (`claim_*`), done with no transaction open, and
//!   completed with a write fenced on the lease owner; a late worker gets
//!   [`StoreError::LeaseLost`] and writes nothing. An ended lease is simply claimable again.
//! - SQLite has exactly one writer connection, and writes are group-committed (see the
//!   `sqlite::writer` module).
//! - Instance secrets are encrypted at rest with the [`MasterKey`] and decrypted only on read.
//!
//! Timestamps are `jiff::Timestamp` in the API and unix milliseconds in the database.

mod error;
mod model;
mod secrets;
mod sqlite;

use std::collections::HashMap;
use std::time::Duration;

use hubhook_core::{InstanceId, NotificationId};
use jiff::Timestamp;

pub use error::{Result, StoreError};
pub use model::{
    AttemptOutcome, AttemptRecord, AttemptRow, CommitOutcome, EventRow, InstanceRow, NewEvent,
    NewInstance, NewNotification, NotificationRow, ObservedObject, OrganizationId,
    PendingNotification, PollCommit, PollJob, Principal, UserId,
};
pub use secrets::MasterKey;
pub use sqlite::SqliteStore;

/// The database, whichever engine it is. Clones share the same connections.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqliteStore),
}

impl Store {
    /// Opens the database at `url` (`sqlite://PATH` or `sqlite:PATH`, any `?query` ignored; the
    /// file is created if missing) and brings its schema up to date.
    pub async fn open(url: &str, key: MasterKey) -> Result<Store> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Err(StoreError::PostgresUnsupported);
        }
        if url.starts_with("sqlite:") {
            return Ok(Store::Sqlite(SqliteStore::open(url, key).await?));
        }
        Err(StoreError::InvalidUrl(url.to_owned()))
    }

    pub fn is_sqlite(&self) -> bool {
        matches!(self, Store::Sqlite(_))
    }

    /// Lets queued writes finish, then closes every connection. Calls after this fail with
    /// "the store is closed".
    pub async fn close(&self) {
        match self {
            Store::Sqlite(store) => store.close().await,
        }
    }

    /// Creates an organization and its first user. Secrets are hashed by the caller (SHA-256);
    /// only the hashes are stored.
    pub async fn create_organization(
        &self,
        name: &str,
        org_secret_hash: [u8; 32],
        user_secret_hash: [u8; 32],
        now: Timestamp,
    ) -> Result<(OrganizationId, UserId)> {
        match self {
            Store::Sqlite(store) => {
                store
                    .create_organization(name, org_secret_hash, user_secret_hash, now)
                    .await
            }
        }
    }

    /// Finds the user by its secret hash and checks that it belongs to the organization with that
    /// secret hash (compared in constant time).
    pub async fn authenticate(
        &self,
        org_secret_hash: [u8; 32],
        user_secret_hash: [u8; 32],
    ) -> Result<Option<Principal>> {
        match self {
            Store::Sqlite(store) => store.authenticate(org_secret_hash, user_secret_hash).await,
        }
    }

    /// Inserts the instance (secrets encrypted) and one poll job per resource, due at `new.now`,
    /// with no cursor (the first poll is the baseline).
    pub async fn create_instance(&self, new: NewInstance) -> Result<InstanceRow> {
        match self {
            Store::Sqlite(store) => store.create_instance(new).await,
        }
    }

    /// The organization's instances, oldest first.
    pub async fn list_instances(&self, org: OrganizationId) -> Result<Vec<InstanceRow>> {
        match self {
            Store::Sqlite(store) => store.list_instances(org).await,
        }
    }

    /// The instance if it belongs to `org`.
    pub async fn get_instance(
        &self,
        org: OrganizationId,
        id: InstanceId,
    ) -> Result<Option<InstanceRow>> {
        match self {
            Store::Sqlite(store) => store.get_instance(org, id).await,
        }
    }

    /// The instance, whatever its organization (for the engine).
    pub async fn instance(&self, id: InstanceId) -> Result<Option<InstanceRow>> {
        match self {
            Store::Sqlite(store) => store.instance(id).await,
        }
    }

    /// The instance whose token has this SHA-256 hash.
    pub async fn instance_by_token(&self, token_hash: [u8; 32]) -> Result<Option<InstanceRow>> {
        match self {
            Store::Sqlite(store) => store.instance_by_token(token_hash).await,
        }
    }

    /// Deletes the instance, its poll jobs and known objects; its notifications not yet delivered
    /// become "cancelled" (events, notifications and attempts are history and are kept).
    /// `false` if there was no such instance in `org`.
    pub async fn delete_instance(&self, org: OrganizationId, id: InstanceId) -> Result<bool> {
        match self {
            Store::Sqlite(store) => store.delete_instance(org, id).await,
        }
    }

    /// Makes every poll job of the instance due at `now`. `false` if the instance does not exist.
    /// The request also survives a poll of the job that is running right now: that poll's
    /// [`commit_poll`](Store::commit_poll) or [`fail_poll`](Store::fail_poll) then makes the job
    /// due at once instead of at its own `next_run_at`.
    pub async fn poll_now(&self, id: InstanceId, now: Timestamp) -> Result<bool> {
        match self {
            Store::Sqlite(store) => store.poll_now(id, now).await,
        }
    }

    /// Claims up to `limit` poll jobs that are due (`next_run_at <= now`), whose lease is free or
    /// has ended, of instances that are enabled and have events enabled: they are leased to
    /// `owner` until `now + lease`. Returned in order of `next_run_at`. Claiming a job consumes
    /// a pending [`poll_now`](Store::poll_now) request on it.
    pub async fn claim_poll_jobs(
        &self,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<PollJob>> {
        match self {
            Store::Sqlite(store) => store.claim_poll_jobs(owner, now, lease, limit).await,
        }
    }

    /// The content hash of each already-observed object among `object_ids`, by object id.
    pub async fn known_objects(
        &self,
        instance: InstanceId,
        resource: &str,
        object_ids: &[String],
    ) -> Result<HashMap<String, String>> {
        match self {
            Store::Sqlite(store) => store.known_objects(instance, resource, object_ids).await,
        }
    }

    /// Writes the result of one poll in ONE transaction, fenced on the lease owner: upserts the
    /// observed objects, inserts the events and notifications (an id already stored is left as
    /// it is), links events to their notification, moves the cursor (when `Some`), sets
    /// `next_run_at` (or `commit.now` when [`poll_now`](Store::poll_now) was called since the
    /// job was claimed), clears the last error and releases the lease.
    /// `Err(LeaseLost)`, with nothing written, when `commit.owner` no longer holds the lease.
    pub async fn commit_poll(&self, commit: PollCommit) -> Result<CommitOutcome> {
        match self {
            Store::Sqlite(store) => store.commit_poll(commit).await,
        }
    }

    /// Records a failed poll, fenced on the lease owner: keeps the cursor, stores `error`, sets
    /// `next_run_at` (or keeps the time [`poll_now`](Store::poll_now) asked for, when it was
    /// called since the job was claimed and that is earlier) and releases the lease. `Err(LeaseLost)` when `owner` no longer holds it.
    pub async fn fail_poll(
        &self,
        instance: InstanceId,
        resource: &str,
        owner: &str,
        next_run_at: Timestamp,
        error: &str,
    ) -> Result<()> {
        match self {
            Store::Sqlite(store) => {
                store
                    .fail_poll(instance, resource, owner, next_run_at, error)
                    .await
            }
        }
    }

    /// When the earliest claimable poll job becomes claimable (for the scheduler's sleep); a
    /// leased job counts from the end of its lease. `None` when there are no jobs.
    pub async fn next_poll_due(&self) -> Result<Option<Timestamp>> {
        match self {
            Store::Sqlite(store) => store.next_poll_due().await,
        }
    }

    /// Claims up to `limit` pending notifications that are due and not leased (or whose lease has
    /// ended), oldest due first; they are leased to `owner` until `now + lease`.
    pub async fn claim_notifications(
        &self,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<PendingNotification>> {
        match self {
            Store::Sqlite(store) => store.claim_notifications(owner, now, lease, limit).await,
        }
    }

    /// Records one delivery attempt (every attempt is a row) and its consequence, in ONE
    /// transaction fenced on the lease owner: `Delivered` marks the notification delivered,
    /// `RetryAt(t)` counts a failure and makes it due at `t`, `Queued` counts a failure and parks
    /// it as queued. Releases the lease. `Err(LeaseLost)`, with nothing written, when
    /// `attempt.owner` no longer holds the lease.
    pub async fn finish_attempt(&self, attempt: AttemptRecord) -> Result<()> {
        match self {
            Store::Sqlite(store) => store.finish_attempt(attempt).await,
        }
    }

    /// When the earliest pending notification becomes claimable; `None` when none is pending.
    pub async fn next_notification_due(&self) -> Result<Option<Timestamp>> {
        match self {
            Store::Sqlite(store) => store.next_notification_due().await,
        }
    }

    /// The instance's events, newest first.
    pub async fn list_events(&self, instance: InstanceId, limit: u32) -> Result<Vec<EventRow>> {
        match self {
            Store::Sqlite(store) => store.list_events(instance, limit).await,
        }
    }

    /// One notification.
    pub async fn notification(&self, id: &NotificationId) -> Result<Option<NotificationRow>> {
        match self {
            Store::Sqlite(store) => store.notification(id).await,
        }
    }

    /// The instance's notifications, newest first.
    pub async fn list_notifications(
        &self,
        instance: InstanceId,
        limit: u32,
    ) -> Result<Vec<NotificationRow>> {
        match self {
            Store::Sqlite(store) => store.list_notifications(instance, limit).await,
        }
    }

    /// Every delivery attempt of a notification, in the order they were made.
    pub async fn list_attempts(&self, notification: &NotificationId) -> Result<Vec<AttemptRow>> {
        match self {
            Store::Sqlite(store) => store.list_attempts(notification).await,
        }
    }

    /// The instance's poll jobs by resource, leased or not.
    pub async fn poll_jobs(&self, instance: InstanceId) -> Result<Vec<PollJob>> {
        match self {
            Store::Sqlite(store) => store.poll_jobs(instance).await,
        }
    }
}
