//! Stored events, read back for the API.

use hubhook_core::InstanceId;

use crate::{EventRow, OrganizationId, Result, Store, on_backend};

impl Store {
    /// The instance's events, newest first.
    pub async fn list_events(&self, instance: InstanceId, limit: u32) -> Result<Vec<EventRow>> {
        on_backend!(self, s => s.list_events(instance, limit).await)
    }

    /// The organization's events (of one instance, or of all its instances), newest first,
    /// starting after `after` (the `(created_at ms, id)` of the last event of the previous
    /// page), skipping `offset` more. Events of deleted instances are no longer listed: the organization is known
    /// through the instance.
    pub async fn organization_events(
        &self,
        org: OrganizationId,
        instance: Option<InstanceId>,
        after: Option<(i64, String)>,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<EventRow>> {
        on_backend!(self, s => s.organization_events(org, instance, after, offset, limit).await)
    }

    /// One event of the organization (of that instance, when given).
    pub async fn organization_event(
        &self,
        org: OrganizationId,
        instance: Option<InstanceId>,
        id: &str,
    ) -> Result<Option<EventRow>> {
        on_backend!(self, s => s.organization_event(org, instance, id).await)
    }
}
