//! Callback delivery: after every write to a resource with a callback type,
//! each active matching `system/callbacks` entry gets the ConnectWise payload
//! (reference §5.2) POSTed to `url + recordId`, signed as ConnectWise signs
//! it (§5.3): `x-content-signature = base64(HMAC-SHA256(key = SHA256(signing_key), body))`.
//! The signing key is served at the payload's `Metadata.key_url`.
//!
//! Delivery runs on a background task fed by an unbounded channel, so a
//! write never waits for a receiver. Responses 404, 409, 419 and 429 are
//! retried twice, after 2 s and then 4 s more, as the developer guide states;
//! every attempt is kept in a log served at `GET /__sim/callbacks`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::Method;
use axum::response::Response;
use base64::Engine;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::Simulator;
use crate::error::SimError;
use crate::prng::SplitMix64;
use crate::records;
use crate::routes::json_response;
use crate::store::{Action, Change};

#[derive(Debug)]
struct Delivery {
    url: String,
    body: Vec<u8>,
    signature: String,
    callback_id: i64,
    record_id: i64,
    action: &'static str,
}

#[derive(Debug)]
pub struct Callbacks {
    /// The key whose SHA-256 keys the HMAC; served at the key_url.
    signing_key: String,
    key_id: String,
    tx: mpsc::UnboundedSender<Delivery>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<Delivery>>>,
    started: AtomicBool,
    message_seq: AtomicU64,
    log: Arc<Mutex<Vec<Value>>>,
}

/// `base64(HMAC-SHA256(key = SHA256(signing_key), body))`.
pub fn sign(signing_key: &str, body: &[u8]) -> String {
    let key = Sha256::digest(signing_key.as_bytes());
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = hmac::Hmac::<Sha256>::new_from_slice(&key) else {
        return String::new();
    };
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

impl Callbacks {
    pub fn new(seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed ^ 0xCA11_BAC4);
        let signing_key = format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64());
        let key_id = rng.guid();
        let (tx, rx) = mpsc::unbounded_channel();
        Callbacks {
            signing_key,
            key_id,
            tx,
            rx: Mutex::new(Some(rx)),
            started: AtomicBool::new(false),
            message_seq: AtomicU64::new(1),
            log: Arc::new(Mutex::new(Vec::new())),
        }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn signing_key(&self) -> &str {
        &self.signing_key
    }

    /// Starts the delivery task on the current tokio runtime (once).
    pub fn start(&self, _sim: &Simulator) {
        if self.started.load(Ordering::SeqCst) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Some(rx) = self.rx.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        self.started.store(true, Ordering::SeqCst);
        let log = self.log.clone();
        handle.spawn(deliver_all(rx, log));
    }

    pub fn reset(&self) {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    pub fn log(&self) -> Value {
        Value::Array(self.log.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    /// Queues deliveries for `change` to every matching active registration.
    /// `writer` is the member id that made the change (for isSelfSuppressedFlag).
    pub fn notify(&self, sim: &Simulator, change: &Change, base: &str, writer: i64) {
        let Some(kind) = change.def.callback_type else {
            return;
        };
        if change.action == Action::Unchanged {
            return;
        }
        let entries: Vec<Value> = {
            let store = sim.read_store();
            let Some(table) = store.table(&records::callback_entries::DEF) else {
                return;
            };
            if table.rows.is_empty() {
                return;
            }
            table
                .records()
                .map(|(_, e)| e)
                .filter(|e| matches(e, kind, change, writer))
                .collect()
        };
        if entries.is_empty() {
            return;
        }
        let host = base
            .split("://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .unwrap_or("127.0.0.1");
        let scheme = base.split("://").next().unwrap_or("http");
        let codebase = base
            .split("://")
            .nth(1)
            .and_then(|r| r.split('/').nth(1))
            .unwrap_or("v4_6_release");
        let company = &sim.inner.config.company;
        let key_url = format!(
            "{scheme}://{host}/{codebase}//system/callbackkey/index.rails?companyName={company}&id={}",
            self.key_id
        );
        let entity = match (change.action, &change.record) {
            (Action::Deleted, _) | (_, None) => Value::Null,
            (_, Some(rec)) => {
                // Serialized straight from the record so fields keep model order.
                let rendered = records::render::Rendered::new(change.def, rec, base);
                Value::String(serde_json::to_string(&rendered).unwrap_or_default())
            }
        };
        let member = change
            .record
            .as_ref()
            .and_then(|r| r.get("_info"))
            .and_then(|i| i.get("updatedBy"))
            .and_then(Value::as_str)
            .unwrap_or("apiuser")
            .to_string();
        for entry in entries {
            let callback_id = entry.get("id").and_then(Value::as_i64).unwrap_or(0);
            let seq = self.message_seq.fetch_add(1, Ordering::Relaxed);
            let payload = json!({
                "Action": change.action.as_str(),
                "CallbackObjectRecId": callback_id,
                "CompanyId": company,
                "Entity": entity,
                "FromUrl": host,
                "ID": change.id,
                "MemberId": member,
                "MessageId": format!("{:08x}-5e46-47c0-8c84-{seq:012x}", callback_id as u32),
                "Metadata": {"key_url": key_url},
                "PartnerId": format!("sim-partner-{company}"),
                "ProductInstanceId": format!("sim-instance-{company}"),
                "Type": kind,
            });
            let body = serde_json::to_vec(&payload).unwrap_or_default();
            let url = format!(
                "{}{}",
                entry.get("url").and_then(Value::as_str).unwrap_or(""),
                change.id
            );
            let signature = sign(&self.signing_key, &body);
            let delivery = Delivery {
                url,
                body,
                signature,
                callback_id,
                record_id: change.id,
                action: change.action.as_str(),
            };
            // The receiver lives as long as the runtime; a closed channel only
            // means the simulator is shutting down.
            let _ = self.tx.send(delivery);
        }
    }

    /// `GET /{codebase}/system/callbackkey/index.rails?companyName=..&id=..`
    pub fn key_response(
        &self,
        method: &Method,
        params: &[(String, String)],
    ) -> Result<Response, SimError> {
        if method != Method::GET {
            return Err(SimError::MethodNotAllowed {
                method: method.to_string(),
            });
        }
        let id = params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("id"))
            .map(|(_, v)| v.as_str());
        if id != Some(self.key_id.as_str()) {
            return Err(SimError::NoEndpoint);
        }
        Ok(json_response(
            200,
            &json!({"signing_key": self.signing_key}),
        ))
    }
}

/// Whether registration `entry` wants `change` of callback type `kind`.
fn matches(entry: &Value, kind: &str, change: &Change, writer: i64) -> bool {
    let s = |k: &str| {
        entry
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    if s("type") != kind || entry.get("inactiveFlag").and_then(Value::as_bool) == Some(true) {
        return false;
    }
    if entry.get("isSelfSuppressedFlag").and_then(Value::as_bool) == Some(true)
        && entry.get("memberId").and_then(Value::as_i64) == Some(writer)
    {
        return false;
    }
    let object_id = entry.get("objectId").and_then(Value::as_i64).unwrap_or(0);
    let level = s("level");
    if level == "owner" {
        return true;
    }
    if level == kind {
        return change.id == object_id;
    }
    let Some(rec) = &change.record else {
        return false;
    };
    match rec.get(&level) {
        Some(Value::Array(items)) => items
            .iter()
            .any(|i| i.get("id").and_then(Value::as_i64) == Some(object_id)),
        Some(r) => r.get("id").and_then(Value::as_i64) == Some(object_id),
        // `type` level on companies uses the `types` array.
        None => rec
            .get(format!("{level}s"))
            .and_then(Value::as_array)
            .is_some_and(|items| {
                items
                    .iter()
                    .any(|i| i.get("id").and_then(Value::as_i64) == Some(object_id))
            }),
    }
}

async fn deliver_all(mut rx: mpsc::UnboundedReceiver<Delivery>, log: Arc<Mutex<Vec<Value>>>) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "connectwise-sim: cannot build the callback HTTP client");
            return;
        }
    };
    while let Some(d) = rx.recv().await {
        let client = client.clone();
        let log = log.clone();
        tokio::spawn(async move { deliver(client, d, log).await });
    }
}

async fn deliver(client: reqwest::Client, d: Delivery, log: Arc<Mutex<Vec<Value>>>) {
    let delays = [0u64, 2, 4];
    for (attempt, delay) in delays.iter().enumerate() {
        if *delay > 0 {
            tokio::time::sleep(Duration::from_secs(*delay)).await;
        }
        let result = client
            .post(&d.url)
            .header("content-type", "application/json")
            .header("x-content-signature", &d.signature)
            .body(d.body.clone())
            .send()
            .await;
        let (status, error) = match &result {
            Ok(r) => (Some(r.status().as_u16()), None),
            Err(e) => (None, Some(e.to_string())),
        };
        {
            let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
            // Bounded so a long-running simulator does not grow without limit.
            if l.len() >= 10_000 {
                l.remove(0);
            }
            l.push(json!({
                "callbackId": d.callback_id, "recordId": d.record_id, "action": d.action, "url": d.url,
                "attempt": attempt + 1, "status": status, "error": error,
            }));
        }
        match status {
            Some(404 | 409 | 419 | 429) => continue,
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_connectwise_scheme() {
        // Vector computed independently with Python's hmac/hashlib:
        // base64(hmac.new(sha256(b"secret").digest(), body, sha256).digest())
        let body = br#"{"Action":"added","ID":1}"#;
        assert_eq!(
            sign("secret", body),
            "6M+worrHQ2x4Ja5TVHBK8CWnPRUkiE1GVIkAqII0Jcc="
        );
        assert_ne!(sign("other", body), sign("secret", body));
    }
}

#[cfg(test)]
mod matching_tests {
    use super::*;
    use crate::records::{companies, contacts, tickets};

    fn check(
        entry: Value,
        def: &'static crate::records::ResourceDef,
        record: Value,
        writer: i64,
        expected: bool,
    ) {
        let kind = def.callback_type.unwrap_or("");
        let id = record.get("id").and_then(Value::as_i64).unwrap_or(0);
        let change = Change {
            def,
            action: Action::Updated,
            id,
            record: Some(record.clone()),
        };
        assert_eq!(
            matches(&entry, kind, &change, writer),
            expected,
            "{entry} {record}"
        );
    }

    #[test]
    fn levels_types_and_self_suppression() {
        let ticket =
            json!({"id": 9, "board": {"id": 2}, "status": {"id": 1}, "company": {"id": 250}});
        let owner = json!({"type": "ticket", "level": "owner", "objectId": 1, "memberId": 100});
        check(owner.clone(), &tickets::DEF, ticket.clone(), 101, true);
        check(
            json!({"type": "contact", "level": "owner", "objectId": 1}),
            &tickets::DEF,
            ticket.clone(),
            101,
            false,
        );
        check(
            json!({"type": "ticket", "level": "board", "objectId": 2}),
            &tickets::DEF,
            ticket.clone(),
            101,
            true,
        );
        check(
            json!({"type": "ticket", "level": "board", "objectId": 3}),
            &tickets::DEF,
            ticket.clone(),
            101,
            false,
        );
        check(
            json!({"type": "ticket", "level": "company", "objectId": 250}),
            &tickets::DEF,
            ticket.clone(),
            101,
            true,
        );
        check(
            json!({"type": "ticket", "level": "ticket", "objectId": 9}),
            &tickets::DEF,
            ticket.clone(),
            101,
            true,
        );
        check(
            json!({"type": "ticket", "level": "owner", "objectId": 1, "inactiveFlag": true}),
            &tickets::DEF,
            ticket.clone(),
            101,
            false,
        );
        let suppressed = json!({"type": "ticket", "level": "owner", "objectId": 1, "memberId": 100, "isSelfSuppressedFlag": true});
        check(
            suppressed.clone(),
            &tickets::DEF,
            ticket.clone(),
            100,
            false,
        );
        check(suppressed, &tickets::DEF, ticket, 101, true);
        let company = json!({"id": 250, "types": [{"id": 3}], "status": {"id": 1}});
        check(
            json!({"type": "company", "level": "type", "objectId": 3}),
            &companies::DEF,
            company.clone(),
            0,
            true,
        );
        check(
            json!({"type": "company", "level": "company", "objectId": 250}),
            &companies::DEF,
            company,
            0,
            true,
        );
        let contact = json!({"id": 5, "company": {"id": 250}});
        check(
            json!({"type": "contact", "level": "company", "objectId": 251}),
            &contacts::DEF,
            contact,
            0,
            false,
        );
    }
}
