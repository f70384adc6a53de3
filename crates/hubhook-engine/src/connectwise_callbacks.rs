//! Accepting ConnectWise's callbacks: check the signature, then make the matching polls due.
//!
//! A callback is a hint (see [`hubhook_core::connectwise_callback`]): once its signature is
//! verified, the resources it concerns are polled at once (and reconciled, for a delete), and
//! nothing from its body is announced. So the checks here only have to keep strangers from
//! making hubhook poll early or read keys from elsewhere:
//!
//! - `Metadata.key_url` must be on the instance's own ConnectWise site (scheme, host and port
//!   of its `baseUrl`): the key is fetched with the instance's credentials, which must never
//!   go to another host.
//! - The key is cached per `key_url` only after it verified a signature, so a stranger cannot
//!   fill the cache. A signature that fails under a cached key fetches the key again (it may
//!   have been rotated), at most once a minute per `key_url`; a `key_url` whose key verified
//!   nothing is not fetched again for a minute either. Each callback therefore costs
//!   ConnectWise at most one request a minute per key URL, whoever sends it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hubhook_core::{
    CallbackMessage, InstanceConfig, InstanceId, render_url, verify_connectwise_signature,
};
use hubhook_store::StoreError;
use serde::Deserialize;

use crate::Engine;

/// Why a callback was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConnectWiseCallbackRefused {
    /// The body is not a ConnectWise callback (400).
    #[error("{0}")]
    BadMessage(String),
    /// The signature is missing or wrong, or the key URL is not the instance's site (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The signing key could not be fetched from ConnectWise (502).
    #[error("the signing key could not be read from ConnectWise: {0}")]
    KeyUnavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Signing keys that verified a callback, by `key_url`, and when each URL was last fetched.
#[derive(Debug, Default)]
pub struct CallbackKeys {
    state: Mutex<KeyState>,
}

#[derive(Debug, Default)]
struct KeyState {
    verified: HashMap<String, String>,
    fetched_at: HashMap<String, Instant>,
}

/// How often one key URL is fetched at most.
const REFETCH_AFTER: Duration = Duration::from_secs(60);
/// Key URLs remembered at most; beyond, the tables start afresh (keys are fetched again).
const MAX_KEYS: usize = 10_000;
/// How soon after a reconciliation a delete callback may start another.
const RECONCILE_GAP: Duration = Duration::from_secs(60);
/// The most of a key URL's answer that is read.
const MAX_KEY_ANSWER: usize = 64 * 1024;

#[derive(Deserialize)]
struct KeyAnswer {
    signing_key: String,
}

impl CallbackKeys {
    fn verified(&self, key_url: &str) -> Option<String> {
        self.lock().verified.get(key_url).cloned()
    }

    /// Whether `key_url` may be fetched now; records the fetch when it may.
    fn may_fetch(&self, key_url: &str) -> bool {
        let mut state = self.lock();
        if state
            .fetched_at
            .get(key_url)
            .is_some_and(|at| at.elapsed() < REFETCH_AFTER)
        {
            return false;
        }
        if state.fetched_at.len() >= MAX_KEYS {
            state.fetched_at.clear();
        }
        state.fetched_at.insert(key_url.to_string(), Instant::now());
        true
    }

    fn remember(&self, key_url: &str, key: String) {
        let mut state = self.lock();
        if state.verified.len() >= MAX_KEYS {
            state.verified.clear();
        }
        state.verified.insert(key_url.to_string(), key);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, KeyState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Engine {
    /// Checks a ConnectWise callback for `instance` and makes the polls it concerns due;
    /// returns the resources made due (empty when the instance polls nothing of that type).
    pub async fn accept_connectwise_callback(
        &self,
        instance: InstanceId,
        config: &InstanceConfig,
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<Vec<String>, ConnectWiseCallbackRefused> {
        let message =
            CallbackMessage::parse(body).map_err(ConnectWiseCallbackRefused::BadMessage)?;
        let signature = signature.ok_or_else(|| {
            ConnectWiseCallbackRefused::Unauthorized(
                "the x-content-signature header is missing".into(),
            )
        })?;
        same_site(&message.key_url, &config.connectwise.base_url)?;
        self.check_signature(config, &message.key_url, body, signature)
            .await?;

        let resources = match message.connectwise_path() {
            // A type we do not know: whatever changed, a poll of everything finds it.
            None => None,
            Some(path) => {
                let matching: Vec<String> = config
                    .events
                    .resources
                    .iter()
                    .filter(|(_, resource)| {
                        // The URL as a poll renders it; the date does not change the path.
                        render_url(&resource.url, jiff::Timestamp::UNIX_EPOCH)
                            .ok()
                            .and_then(|url| hubhook_connectwise::HubQuery::parse(&url, None).ok())
                            .is_some_and(|query| query.path.trim_matches('/') == path)
                    })
                    .map(|(name, _)| name.clone())
                    .collect();
                if matching.is_empty() {
                    return Ok(Vec::new());
                }
                Some(matching)
            }
        };
        let touched = self
            .store()
            .callback_received(
                instance,
                resources.as_deref(),
                message.is_delete(),
                self.clock().now(),
                RECONCILE_GAP,
            )
            .await?;
        if !touched.is_empty() {
            self.wake_poller();
        }
        metrics::counter!("hubhook_connectwise_callbacks_total", "action" => message.action)
            .increment(1);
        Ok(touched)
    }

    async fn check_signature(
        &self,
        config: &InstanceConfig,
        key_url: &str,
        body: &[u8],
        signature: &str,
    ) -> Result<(), ConnectWiseCallbackRefused> {
        let keys = &self.inner.callback_keys;
        if let Some(key) = keys.verified(key_url)
            && verify_connectwise_signature(&key, body, signature)
        {
            return Ok(());
        }
        let refused =
            || ConnectWiseCallbackRefused::Unauthorized("the signature does not match".into());
        if !keys.may_fetch(key_url) {
            return Err(refused());
        }
        let key = self.fetch_signing_key(config, key_url).await?;
        if !verify_connectwise_signature(&key, body, signature) {
            return Err(refused());
        }
        keys.remember(key_url, key);
        Ok(())
    }

    async fn fetch_signing_key(
        &self,
        config: &InstanceConfig,
        key_url: &str,
    ) -> Result<String, ConnectWiseCallbackRefused> {
        let credentials = &config.connectwise;
        let mut request = self.inner.connectwise_http.get(key_url).basic_auth(
            format!("{}+{}", credentials.company, credentials.public_key),
            Some(&credentials.private_key),
        );
        if let Some(client_id) = &credentials.client_id {
            request = request.header("clientId", client_id);
        }
        let unavailable =
            |e: &dyn std::fmt::Display| ConnectWiseCallbackRefused::KeyUnavailable(e.to_string());
        let response = request
            .send()
            .await
            .map_err(|e| unavailable(&e.without_url()))?;
        if !response.status().is_success() {
            return Err(unavailable(&format!(
                "the key URL answered {}",
                response.status()
            )));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| unavailable(&e.without_url()))?;
        if bytes.len() > MAX_KEY_ANSWER {
            return Err(unavailable(&"the key URL's answer is too large"));
        }
        let answer: KeyAnswer = serde_json::from_slice(&bytes).map_err(|e| {
            unavailable(&format!(
                "the key URL did not answer {{\"signing_key\": …}}: {e}"
            ))
        })?;
        Ok(answer.signing_key)
    }
}

/// `key_url` must be on the instance's ConnectWise site.
fn same_site(key_url: &str, base_url: &str) -> Result<(), ConnectWiseCallbackRefused> {
    let key = url::Url::parse(key_url).map_err(|_| {
        ConnectWiseCallbackRefused::Unauthorized(format!(
            "`Metadata.key_url` `{}` is not a URL",
            key_url.escape_debug()
        ))
    })?;
    let base = url::Url::parse(base_url).map_err(|_| {
        ConnectWiseCallbackRefused::Unauthorized("the instance's baseUrl is not a URL".into())
    })?;
    if key.origin() != base.origin() {
        return Err(ConnectWiseCallbackRefused::Unauthorized(format!(
            "`Metadata.key_url` is on {}, not on the instance's ConnectWise site {}",
            key.origin().ascii_serialization(),
            base.origin().ascii_serialization()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_urls_must_be_on_the_instance_site() {
        let base = "https://na.myconnectwise.net/v4_6_release/apis/3.0";
        assert!(
            same_site(
                "https://na.myconnectwise.net/v2025_1//system/callbackkey/index.rails?id=1",
                base
            )
            .is_ok()
        );
        for elsewhere in [
            "https://evil.example/system/callbackkey",
            "http://na.myconnectwise.net/system/callbackkey",
            "https://na.myconnectwise.net:8443/system/callbackkey",
            "not a url",
        ] {
            assert!(
                matches!(
                    same_site(elsewhere, base),
                    Err(ConnectWiseCallbackRefused::Unauthorized(_))
                ),
                "{elsewhere}"
            );
        }
    }

    #[test]
    fn a_key_url_is_fetched_at_most_once_a_minute_and_tables_stay_bounded() {
        let keys = CallbackKeys::default();
        assert!(keys.may_fetch("https://cw/k?id=1"));
        assert!(!keys.may_fetch("https://cw/k?id=1"));
        assert!(keys.may_fetch("https://cw/k?id=2"));
        for i in 0..MAX_KEYS + 5 {
            keys.may_fetch(&format!("https://cw/k?id=x{i}"));
            keys.remember(&format!("https://cw/k?id=x{i}"), "key".into());
        }
        let state = keys.lock();
        assert!(state.fetched_at.len() <= MAX_KEYS);
        assert!(state.verified.len() <= MAX_KEYS);
    }
}
