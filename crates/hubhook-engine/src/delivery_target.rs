//! Where and how an instance's notifications are sent, cached per instance.
//!
//! Resolving a target reads the instance, decrypts its secrets, parses its configuration,
//! decrypts its webhook secrets and reads its organization's settings: far too much to do for
//! every attempt of a backlog. The cache keeps the resolved target with the
//! [`ConfigVersion`] it was built from (the update times of the instance, its webhook secret
//! and its organization's settings), which the dispatcher reads once per claimed batch. A
//! changed instance has a new version, so the cache can never serve a stale configuration for
//! longer than one claim; nothing needs invalidating by hand, and several nodes stay coherent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hubhook_core::{
    DeliverySettings, InstanceConfig, InstanceId, RetrySchedule, WebhookSecret, merge_secrets,
};
use hubhook_store::{ConfigVersion, OrganizationId, Store};
use jiff::Timestamp;

/// Everything an attempt needs about its instance. No `Debug`: it holds secrets.
pub struct DeliveryTarget {
    /// The instance's organization: receivers are isolated per organization and origin.
    pub organization: OrganizationId,
    pub callback_url: String,
    /// `event.notification.signature.key`: the Cloud Elements signature.
    pub signature_key: Option<String>,
    /// The Standard Webhooks secrets, current first; the previous one with its end.
    pub webhook_secrets: Vec<(WebhookSecret, Option<Timestamp>)>,
    pub settings: DeliverySettings,
    pub schedule: RetrySchedule,
    /// `event.notification.ordered`: one at a time, in storage order.
    pub ordered: bool,
}

impl DeliveryTarget {
    /// The webhook secrets that sign at `now`.
    pub fn signing_secrets(&self, now: Timestamp) -> Vec<&WebhookSecret> {
        self.webhook_secrets
            .iter()
            .filter(|(_, until)| until.is_none_or(|until| until > now))
            .map(|(secret, _)| secret)
            .collect()
    }
}

/// Resolved targets by instance, each with the version it was built from.
#[derive(Default)]
pub struct TargetCache {
    targets: Mutex<HashMap<InstanceId, (ConfigVersion, Arc<DeliveryTarget>)>>,
}

impl TargetCache {
    /// The instance's target at `version`: cached, or resolved from the store and cached.
    /// Without a version (the instance was not found when the batch was claimed) it is
    /// resolved and not cached.
    pub async fn get(
        &self,
        store: &Store,
        server_schedule: &RetrySchedule,
        instance: InstanceId,
        version: Option<ConfigVersion>,
    ) -> Result<Arc<DeliveryTarget>, String> {
        if let Some(version) = version
            && let Some((cached, target)) = self.lock().get(&instance)
            && *cached == version
        {
            return Ok(target.clone());
        }
        let target = Arc::new(resolve(store, server_schedule, instance).await?);
        if let Some(version) = version {
            self.lock().insert(instance, (version, target.clone()));
        }
        Ok(target)
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<InstanceId, (ConfigVersion, Arc<DeliveryTarget>)>> {
        // A panic while holding this lock cannot leave the map half-updated (single inserts),
        // so a poisoned lock is still usable.
        self.targets.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn resolve(
    store: &Store,
    server_schedule: &RetrySchedule,
    instance: InstanceId,
) -> Result<DeliveryTarget, String> {
    let row = store
        .instance(instance)
        .await
        .map_err(|e| format!("reading instance: {e}"))?
        .ok_or("instance no longer exists")?;
    let config = InstanceConfig::parse(&merge_secrets(&row.configuration, &row.secrets))
        .map_err(|e| format!("stored configuration is invalid: {e}"))?;
    let callback_url = config
        .events
        .callback_url
        .ok_or("instance has no event.notification.callback.url")?;
    let mut webhook_secrets = Vec::new();
    if let Some(stored) = store
        .webhook_secrets(instance)
        .await
        .map_err(|e| format!("reading the webhook secret: {e}"))?
    {
        let parse = |text: &str| {
            WebhookSecret::parse(text).map_err(|e| format!("stored webhook secret is invalid: {e}"))
        };
        webhook_secrets.push((parse(&stored.current)?, None));
        for (retired, until) in &stored.retired {
            webhook_secrets.push((parse(retired)?, Some(*until)));
        }
    }
    let stored_settings = store
        .organization_settings(row.organization_id)
        .await
        .map_err(|e| format!("reading the account settings: {e}"))?;
    let settings = DeliverySettings::parse(&stored_settings)
        .map_err(|e| format!("stored account settings are invalid: {e}"))?;
    Ok(DeliveryTarget {
        organization: row.organization_id,
        callback_url,
        signature_key: config.events.signature_key.clone(),
        webhook_secrets,
        schedule: settings.schedule.schedule(server_schedule),
        settings,
        ordered: config.events.ordered,
    })
}
