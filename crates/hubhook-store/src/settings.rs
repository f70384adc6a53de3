//! Account (organization) settings, such as `notification.webhook.failure.policy`.

use jiff::Timestamp;
use serde_json::{Map, Value};

use crate::{OrganizationId, Result, Store, on_backend};

impl Store {
    /// Every setting the organization has set, by key.
    pub async fn organization_settings(&self, org: OrganizationId) -> Result<Map<String, Value>> {
        on_backend!(self, s => s.organization_settings(org).await)
    }

    /// Sets the given keys (others keep their values) in one transaction.
    pub async fn update_organization_settings(
        &self,
        org: OrganizationId,
        settings: Map<String, Value>,
        now: Timestamp,
    ) -> Result<()> {
        on_backend!(self, s => s.update_organization_settings(org, settings, now).await)
    }
}
