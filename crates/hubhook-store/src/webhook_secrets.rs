//! Standard Webhooks secrets of instances: set at creation, rotated on request.

use std::time::Duration;

use hubhook_core::InstanceId;
use jiff::Timestamp;

use crate::{OrganizationId, Result, Store, WebhookSecrets, on_backend};

impl Store {
    /// Makes `secret` the instance's current Standard Webhooks secret. The secret it replaces
    /// (if any) keeps signing until `now + overlap`. `Ok(false)`, with nothing written, when the
    /// organization has no such instance.
    pub async fn rotate_webhook_secret(
        &self,
        org: OrganizationId,
        instance: InstanceId,
        secret: String,
        now: Timestamp,
        overlap: Duration,
    ) -> Result<bool> {
        on_backend!(self, s => s.rotate_webhook_secret(org, instance, secret, now, overlap).await)
    }

    /// The instance's secrets, decrypted; `None` for an instance that has none.
    pub async fn webhook_secrets(&self, instance: InstanceId) -> Result<Option<WebhookSecrets>> {
        on_backend!(self, s => s.webhook_secrets(instance).await)
    }
}
