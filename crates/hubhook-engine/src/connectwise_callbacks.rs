//! Accepting ConnectWise's callbacks: check the signature, then make the matching polls due.
//!
//! A callback is a hint (see [`hubhook_core::connectwise_callback`]): once its signature is
//! verified, the resources it concerns are polled at once (and reconciled, for a delete), and
//! nothing from its body is announced. So the checks here only have to keep strangers from
//! making hubhook poll early or read keys from elsewhere:
//!
//! - `Metadata.key_url` must be ConnectWise's callback-key page on the instance's own site: the
//!   scheme, host and port of its `baseUrl`, the path `…/system/callbackkey/index.rails`, and
//!   no query but `companyName` and `id`. The key is fetched with the instance's credentials,
//!   so anything looser would let a stranger (callbacks carry no credentials) make hubhook
//!   call any ConnectWise endpoint with them and read the answer's shape from the errors.
//! - The key is cached per `key_url` only after it verified a signature, so a stranger cannot
//!   fill the cache. A signature that fails under a cached key fetches the key again (it may
//!   have been rotated), at most once a minute per `key_url`, and at most
//!   [`FETCHES_PER_MINUTE`] times a minute per instance whatever the `id` (a stranger can vary
//!   it); each fetch also waits for the site's request budget, as every call to the site does.
//! - Refusals say little: not the instance's site, not why a key answer did not read (the log
//!   has that), since the caller is anyone.
//! - Nor whether the instance exists: an instance id that is no instance's is answered as a
//!   callback whose `key_url` is not the instance's site would be (after the same checks of
//!   the body and of the signature's presence), since that is what a stranger, who does not
//!   know the site, gets from an instance that exists. Instance ids are sequential, so a
//!   `404` would let anyone count them.

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
    /// Per instance: when its current minute began, and the key fetches made in it.
    per_instance: HashMap<InstanceId, (Instant, u32)>,
}

/// How often one key URL is fetched at most.
const REFETCH_AFTER: Duration = Duration::from_secs(60);
/// Key fetches one instance's callbacks may cause in a minute, over all key URLs.
pub const FETCHES_PER_MINUTE: u32 = 5;
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

    /// Whether `key_url` may be fetched now for `instance`; records the fetch when it may.
    fn may_fetch(&self, instance: InstanceId, key_url: &str) -> bool {
        let mut state = self.lock();
        if state
            .fetched_at
            .get(key_url)
            .is_some_and(|at| at.elapsed() < REFETCH_AFTER)
        {
            return false;
        }
        let now = Instant::now();
        if state.per_instance.len() >= MAX_KEYS {
            state.per_instance.clear();
        }
        let minute = state.per_instance.entry(instance).or_insert((now, 0));
        if minute.0.elapsed() >= REFETCH_AFTER {
            *minute = (now, 0);
        }
        if minute.1 >= FETCHES_PER_MINUTE {
            return false;
        }
        minute.1 += 1;
        if state.fetched_at.len() >= MAX_KEYS {
            state.fetched_at.clear();
        }
        state.fetched_at.insert(key_url.to_string(), now);
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
    /// Checks a ConnectWise callback for `instance` (`None`: the address named no instance)
    /// and makes the polls it concerns due; returns the resources made due (empty when the
    /// instance polls nothing of that type).
    pub async fn accept_connectwise_callback(
        &self,
        instance: Option<(InstanceId, &InstanceConfig)>,
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
        // No instance: refused as a key URL on no instance's site is (the module docs).
        let Some((instance, config)) = instance else {
            return Err(not_the_key_page());
        };
        callback_key_url(&message.key_url, &config.connectwise.base_url)?;
        self.check_signature(instance, config, &message.key_url, body, signature)
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
        instance: InstanceId,
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
        if !keys.may_fetch(instance, key_url) {
            return Err(refused());
        }
        let key = self
            .fetch_signing_key(config, key_url)
            .await
            .map_err(|why| {
                tracing::warn!(instance = %instance, error = %why, "a ConnectWise callback's signing key could not be read");
                ConnectWiseCallbackRefused::KeyUnavailable(
                    "the key URL did not answer a signing key".into(),
                )
            })?;
        if !verify_connectwise_signature(&key, body, signature) {
            return Err(refused());
        }
        keys.remember(key_url, key);
        Ok(())
    }

    /// The key at `key_url`, or why not (for the log only: it may describe what an endpoint
    /// answered).
    async fn fetch_signing_key(
        &self,
        config: &InstanceConfig,
        key_url: &str,
    ) -> Result<String, String> {
        let credentials = &config.connectwise;
        let throttle = self.inner.sites.site(credentials).throttle.clone();
        if let Some(wait) = throttle.paused_for() {
            return Err(format!("ConnectWise asked this site to wait {wait:?}"));
        }
        throttle.ready().await;
        let mut request = self.inner.connectwise_http.get(key_url).basic_auth(
            format!("{}+{}", credentials.company, credentials.public_key),
            Some(&credentials.private_key),
        );
        if let Some(client_id) = &credentials.client_id {
            request = request.header("clientId", client_id);
        }
        let response = request
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if !response.status().is_success() {
            return Err(format!("the key URL answered {}", response.status()));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if bytes.len() > MAX_KEY_ANSWER {
            return Err("the key URL's answer is too large".into());
        }
        let answer: KeyAnswer = serde_json::from_slice(&bytes)
            .map_err(|e| format!("the key URL did not answer {{\"signing_key\": …}}: {e}"))?;
        Ok(answer.signing_key)
    }
}

/// The refusal of a `key_url` that is not ConnectWise's callback-key page on the instance's
/// site. It does not say which site that is.
fn not_the_key_page() -> ConnectWiseCallbackRefused {
    ConnectWiseCallbackRefused::Unauthorized(
        "`Metadata.key_url` is not ConnectWise's callback key page (…/system/callbackkey/index.rails?companyName=…&id=…) on the instance's site".into(),
    )
}

/// `key_url` must be ConnectWise's callback-key page on the instance's site (see the module
/// docs). The refusal does not say which site that is.
fn callback_key_url(key_url: &str, base_url: &str) -> Result<(), ConnectWiseCallbackRefused> {
    let refused = not_the_key_page;
    let key = url::Url::parse(key_url).map_err(|_| refused())?;
    let base = url::Url::parse(base_url).map_err(|_| refused())?;
    // ConnectWise writes the path with a doubled slash (`v2025_1//system/…`).
    let path = key.path().to_ascii_lowercase();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    // `system/callbackkey/index.rails`, below at most the codebase (`v2025_1`).
    let is_key_page =
        segments.len() <= 4 && segments.ends_with(&["system", "callbackkey", "index.rails"]);
    let plain_query = key.query_pairs().all(|(name, value)| {
        matches!(name.as_ref(), "companyName" | "id")
            && value.len() <= 128
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '))
    });
    let plain = key.username().is_empty() && key.password().is_none() && key.fragment().is_none();
    if key.origin() != base.origin() || !is_key_page || !plain_query || !plain {
        return Err(refused());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_urls_must_be_the_callback_key_page_of_the_instance_site() {
        let base = "https://na.myconnectwise.net/v4_6_release/apis/3.0";
        for key_page in [
            "https://na.myconnectwise.net/v2025_1//system/callbackkey/index.rails?companyName=Cobalt&id=e17e6674-42f6-4105-9cff-4cd6cb4e62e8",
            "https://na.myconnectwise.net/system/callbackkey/index.rails?id=1",
        ] {
            assert!(callback_key_url(key_page, base).is_ok(), "{key_page}");
        }
        for elsewhere in [
            "https://evil.example/v2025_1//system/callbackkey/index.rails?id=1",
            "http://na.myconnectwise.net/v2025_1//system/callbackkey/index.rails?id=1",
            "https://na.myconnectwise.net:8443/v2025_1//system/callbackkey/index.rails?id=1",
            // Any other endpoint of the site, which the instance's keys could read.
            "https://na.myconnectwise.net/v4_6_release/apis/3.0/company/contacts?pageSize=1",
            "https://na.myconnectwise.net/v4_6_release/apis/3.0/company/contacts/system/callbackkey/index.rails?id=1",
            "https://na.myconnectwise.net/v2025_1//system/callbackkey/index.rails?id=1&conditions=id%3D1",
            "https://na.myconnectwise.net/v2025_1//system/callbackkey/index.rails?id=1%26x%3D2",
            "https://user@na.myconnectwise.net/v2025_1//system/callbackkey/index.rails?id=1",
            "not a url",
        ] {
            let refused = callback_key_url(elsewhere, base);
            let Err(ConnectWiseCallbackRefused::Unauthorized(message)) = refused else {
                panic!("{elsewhere}: {refused:?}");
            };
            // The refusal does not name the instance's site.
            assert!(!message.contains("na.myconnectwise.net"), "{message}");
        }
    }

    #[test]
    fn a_key_url_is_fetched_at_most_once_a_minute_and_tables_stay_bounded() {
        let keys = CallbackKeys::default();
        let (one, two) = (InstanceId(1), InstanceId(2));
        assert!(keys.may_fetch(one, "https://cw/k?id=1"));
        assert!(!keys.may_fetch(one, "https://cw/k?id=1"));
        assert!(keys.may_fetch(one, "https://cw/k?id=2"));
        // However the key URL varies, one instance causes a few fetches a minute at most.
        for i in 3..=FETCHES_PER_MINUTE {
            assert!(keys.may_fetch(one, &format!("https://cw/k?id={i}")));
        }
        assert!(!keys.may_fetch(one, "https://cw/k?id=another"));
        assert!(keys.may_fetch(two, "https://cw/k?id=another"));
        for i in 0..MAX_KEYS + 5 {
            keys.may_fetch(InstanceId(i as i64 + 10), &format!("https://cw/k?id=x{i}"));
            keys.remember(&format!("https://cw/k?id=x{i}"), "key".into());
        }
        let state = keys.lock();
        assert!(state.fetched_at.len() <= MAX_KEYS);
        assert!(state.verified.len() <= MAX_KEYS);
        assert!(state.per_instance.len() <= MAX_KEYS);
    }
}
