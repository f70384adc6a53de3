//! Stored events, read back for the API.

use hubhook_core::InstanceId;

use crate::{EventRow, Result, Store, on_backend};

impl Store {
    /// The instance's events, newest first.
    pub async fn list_events(&self, instance: InstanceId, limit: u32) -> Result<Vec<EventRow>> {
        on_backend!(self, s => s.list_events(instance, limit).await)
    }
}
