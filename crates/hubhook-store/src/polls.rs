//! Poll jobs: one per (instance, resource), claimed with a lease, completed by the outbox
//! commit that stores a poll's events, notifications and cursor together.

use std::collections::HashMap;
use std::time::Duration;

use hubhook_core::InstanceId;
use jiff::Timestamp;

use crate::{
    Backlog, CommitOutcome, JobHealth, KnownId, KnownObject, LeaseToken, MassDeleteAction,
    PollCommit, PollJob, PollTrouble, Result, Store, on_backend,
};

impl Store {
    /// Makes every poll job of the instance due at `now`. `false` if the instance does not exist.
    /// The request also survives a poll of the job that is running right now: that poll's
    /// [`commit_poll`](Store::commit_poll) or [`fail_poll`](Store::fail_poll) then makes the job
    /// due at once instead of at its own `next_run_at`.
    pub async fn poll_now(&self, id: InstanceId, now: Timestamp) -> Result<bool> {
        on_backend!(self, s => s.poll_now(id, now).await)
    }

    /// Claims up to `limit` poll jobs that are due (`next_run_at <= now`), whose lease is free or
    /// has ended, of instances that are enabled and have events enabled: each is leased to
    /// `owner` until `now + lease` under a fresh [`LeaseToken`] (in `PollJob::lease_token`).
    /// Returned in order of `next_run_at`. Claiming a job consumes a pending
    /// [`poll_now`](Store::poll_now) request on it.
    pub async fn claim_poll_jobs(
        &self,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<PollJob>> {
        on_backend!(self, s => s.claim_poll_jobs(owner, now, lease, limit).await)
    }

    /// Extends the lease of a running poll to `until`, fenced on its token.
    /// `Err(LeaseLost)` when the token no longer holds the job.
    pub async fn renew_poll_lease(
        &self,
        instance: InstanceId,
        resource: &str,
        token: &LeaseToken,
        until: Timestamp,
    ) -> Result<()> {
        on_backend!(self, s => s.renew_poll_lease(instance, resource, token, until).await)
    }

    /// What the store remembers of each already-observed object among `object_ids`, by id.
    pub async fn known_objects(
        &self,
        instance: InstanceId,
        resource: &str,
        object_ids: &[String],
    ) -> Result<HashMap<String, KnownObject>> {
        on_backend!(self, s => s.known_objects(instance, resource, object_ids).await)
    }

    /// Known objects not announced as deleted whose id is a number in `(after, up_to]`, in
    /// ascending order, at most `limit`: reconciliation walks them beside ConnectWise's pages.
    pub async fn known_ids(
        &self,
        instance: InstanceId,
        resource: &str,
        after: Option<i64>,
        up_to: i64,
        limit: u32,
    ) -> Result<Vec<KnownId>> {
        on_backend!(self, s => s.known_ids(instance, resource, after, up_to, limit).await)
    }

    /// How many known objects of the job are not announced as deleted.
    pub async fn known_count(&self, instance: InstanceId, resource: &str) -> Result<u64> {
        on_backend!(self, s => s.known_count(instance, resource).await)
    }

    /// The health of each of the instance's poll jobs, by resource.
    pub async fn poll_health(
        &self,
        instance: InstanceId,
        now: Timestamp,
    ) -> Result<Vec<JobHealth>> {
        on_backend!(self, s => s.poll_health(instance, now).await)
    }

    /// Records the user's decision about a mass delete held back on the job, and makes the job
    /// due at `now` so that the next reconciliation acts on it. `false` when the job holds no
    /// mass delete.
    pub async fn resolve_mass_delete(
        &self,
        instance: InstanceId,
        resource: &str,
        action: MassDeleteAction,
        now: Timestamp,
    ) -> Result<bool> {
        on_backend!(self, s => s.resolve_mass_delete(instance, resource, action, now).await)
    }

    /// Writes part or all of a poll's result in ONE transaction, fenced on the lease token:
    /// upserts the observed objects (their last version, hash, deleted flag and sighting
    /// time), marks the vanished ones deleted, inserts the events and notifications (an id
    /// already stored is left as it is; a notification made only of events stored before is
    /// dropped), and links events to their notification.
    ///
    /// With [`PollProgress::Checkpoint`] it stores the checkpoint and keeps the lease. With
    /// [`PollProgress::Done`] it moves the cursor (when `Some`, never backwards), sets
    /// `next_run_at` (or `commit.now` when [`poll_now`](Store::poll_now) was called since the
    /// job was claimed), records the poll's figures and any reconciliation, clears the
    /// checkpoint and the last error, and releases the lease.
    /// `Err(LeaseLost)`, with nothing written, when `commit.lease_token` no longer holds it.
    pub async fn commit_poll(&self, commit: PollCommit) -> Result<CommitOutcome> {
        on_backend!(self, s => s.commit_poll(commit).await)
    }

    /// Records a failed poll, fenced on the lease token: keeps the cursor (and any checkpoint,
    /// so the next run resumes where this one stopped), stores `error` (at `now`), sets
    /// `next_run_at` (or keeps the time [`poll_now`](Store::poll_now) asked for, when it was
    /// called since the job was claimed and that is earlier) and releases the lease.
    /// `Err(LeaseLost)` when `token` no longer holds it.
    pub async fn fail_poll(
        &self,
        instance: InstanceId,
        resource: &str,
        token: &LeaseToken,
        now: Timestamp,
        next_run_at: Timestamp,
        error: &str,
    ) -> Result<()> {
        on_backend!(self, s => s.fail_poll(instance, resource, token, now, next_run_at, error).await)
    }

    /// Hands a claimed job back without running it, fenced on the lease token: releases the
    /// lease and makes the job due at `next_run_at`, recording no error and keeping the cursor
    /// and any checkpoint. The scheduler defers a job whose ConnectWise site is busy or paused,
    /// so that it does not hold a slot other sites could use. `Err(LeaseLost)` when `token` no
    /// longer holds it.
    pub async fn defer_poll(
        &self,
        instance: InstanceId,
        resource: &str,
        token: &LeaseToken,
        next_run_at: Timestamp,
    ) -> Result<()> {
        on_backend!(self, s => s.defer_poll(instance, resource, token, next_run_at).await)
    }

    /// A ConnectWise callback said records of `resources` changed (`None`: of any resource):
    /// makes those jobs due at `now` (surviving a poll already running, like
    /// [`poll_now`](Store::poll_now)) and, when `deleted`, brings their next reconciliation
    /// forward to `now`, but not closer than `reconcile_gap` after the last one, so a burst
    /// of delete callbacks costs one scan. Jobs with reconciliation off keep it off. Returns
    /// the resources made due.
    pub async fn callback_received(
        &self,
        instance: InstanceId,
        resources: Option<&[String]>,
        deleted: bool,
        now: Timestamp,
        reconcile_gap: Duration,
    ) -> Result<Vec<String>> {
        on_backend!(self, s => s.callback_received(instance, resources, deleted, now, reconcile_gap).await)
    }

    /// How many jobs are failing, holding a mass delete, or skipping records.
    pub async fn poll_trouble(&self) -> Result<PollTrouble> {
        on_backend!(self, s => s.poll_trouble().await)
    }

    /// When the earliest claimable poll job becomes claimable (for the scheduler's sleep); a
    /// leased job counts from the end of its lease. `None` when there are no jobs.
    pub async fn next_poll_due(&self) -> Result<Option<Timestamp>> {
        on_backend!(self, s => s.next_poll_due().await)
    }

    /// Poll jobs due at `now` and not leased, of enabled instances.
    pub async fn poll_backlog(&self, now: Timestamp) -> Result<Backlog> {
        on_backend!(self, s => s.poll_backlog(now).await)
    }

    /// The instance's poll jobs by resource, leased or not.
    pub async fn poll_jobs(&self, instance: InstanceId) -> Result<Vec<PollJob>> {
        on_backend!(self, s => s.poll_jobs(instance).await)
    }
}
