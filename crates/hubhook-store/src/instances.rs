//! Element instances: their configuration (secrets encrypted) and lifecycle.

use hubhook_core::InstanceId;

use jiff::Timestamp;

use crate::{InstanceRow, InstanceUpdate, NewInstance, OrganizationId, Result, Store, on_backend};

impl Store {
    /// Inserts the instance (secrets encrypted) and one poll job per resource, due at `new.now`,
    /// with no cursor (the first poll is the baseline).
    pub async fn create_instance(&self, new: NewInstance) -> Result<InstanceRow> {
        on_backend!(self, s => s.create_instance(new).await)
    }

    /// The organization's instances, oldest first.
    pub async fn list_instances(&self, org: OrganizationId) -> Result<Vec<InstanceRow>> {
        on_backend!(self, s => s.list_instances(org).await)
    }

    /// The instance if it belongs to `org`.
    pub async fn get_instance(
        &self,
        org: OrganizationId,
        id: InstanceId,
    ) -> Result<Option<InstanceRow>> {
        on_backend!(self, s => s.get_instance(org, id).await)
    }

    /// The instance, whatever its organization (for the engine).
    pub async fn instance(&self, id: InstanceId) -> Result<Option<InstanceRow>> {
        on_backend!(self, s => s.instance(id).await)
    }

    /// The instance whose token has this SHA-256 hash.
    pub async fn instance_by_token(&self, token_hash: [u8; 32]) -> Result<Option<InstanceRow>> {
        on_backend!(self, s => s.instance_by_token(token_hash).await)
    }

    /// Deletes the instance, its poll jobs and known objects; its notifications not yet delivered
    /// become "cancelled" (events, notifications and attempts are history and are kept).
    /// `false` if there was no such instance in `org`. On SQLite it is done in parts, each a
    /// write of its own, the instance gone from every read from the first
    /// (`sqlite/instances.rs`, "Deleting in parts"); it has all happened when this returns.
    pub async fn delete_instance(&self, org: OrganizationId, id: InstanceId) -> Result<bool> {
        on_backend!(self, s => s.delete_instance(org, id).await)
    }

    /// [`Store::delete_instance`] for a caller that need not wait for the rows to go: it
    /// answers once the instance is gone from every read and nothing of it is polled or
    /// delivered any more. On SQLite the rest is removed in parts in the background (a node
    /// stopped first finishes it at its next start, [`Store::finish_leftovers`]); PostgreSQL
    /// deletes in one transaction, all of it before this returns.
    pub async fn begin_delete_instance(&self, org: OrganizationId, id: InstanceId) -> Result<bool> {
        match self {
            Store::Sqlite(s) => s.begin_delete_instance(org, id).await,
            Store::Postgres(s) => s.delete_instance(org, id).await,
        }
    }

    /// Replaces the instance's name, tags and configuration (secrets encrypted) and brings its
    /// poll jobs in line (see [`InstanceUpdate`]); jobs it keeps become due no later than one
    /// new refresh interval from now, so a shorter interval applies at once. `None` if there
    /// is no such instance in `org`; [`crate::StoreError::Conflict`] ([`crate::CHANGED_MEANWHILE`])
    /// if it no longer has the update's `read_version`.
    pub async fn update_instance(
        &self,
        org: OrganizationId,
        id: InstanceId,
        update: InstanceUpdate,
    ) -> Result<Option<InstanceRow>> {
        on_backend!(self, s => s.update_instance(org, id, update).await)
    }

    /// [`Store::update_instance`] for a caller that need not wait for a removed resource's
    /// known objects to go: it answers once the update is stored, from when nothing reads or
    /// adds to them. On SQLite they are then forgotten in parts in the background (a node
    /// stopped first finishes it at its next start, [`Store::finish_leftovers`]); PostgreSQL
    /// forgets them in the update's transaction, before this returns.
    pub async fn begin_update_instance(
        &self,
        org: OrganizationId,
        id: InstanceId,
        update: InstanceUpdate,
    ) -> Result<Option<InstanceRow>> {
        match self {
            Store::Sqlite(s) => s.begin_update_instance(org, id, update).await,
            Store::Postgres(s) => s.update_instance(org, id, update).await,
        }
    }

    /// Disables (no polls, no deliveries, hub calls refused) or enables the instance. Its
    /// cursors and due notifications are kept, so enabling resumes where it stopped. `None` if
    /// there is no such instance in `org`.
    pub async fn set_instance_disabled(
        &self,
        org: OrganizationId,
        id: InstanceId,
        disabled: bool,
        now: Timestamp,
    ) -> Result<Option<InstanceRow>> {
        on_backend!(self, s => s.set_instance_disabled(org, id, disabled, now).await)
    }
}
