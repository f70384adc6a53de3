//! ConnectWise's own callbacks, as an optional low-latency source of changes.
//!
//! A user may register `…/elements/api-v2/events/connectwisecrmrest/{instanceId}/` in
//! ConnectWise (`system/callbacks`); ConnectWise then POSTs a small message to it, with the
//! record id appended, whenever a record of the registered type is added, updated or deleted.
//! What it sends (reference: connectwise-manage-api.md §5.2, §5.3):
//!
//! ```json
//! {"Action":"updated","ID":57961,"Type":"contact","CompanyId":"Cobalt","Entity":"{…}",
//!  "Metadata":{"key_url":"https://…/system/callbackkey/index.rails?companyName=…&id=…"}, …}
//! ```
//!
//! signed in `x-content-signature` as `base64(HMAC-SHA256(key = SHA256(signing_key), body))`,
//! where `signing_key` is what `Metadata.key_url` answers (`{"signing_key": "…"}`).
//!
//! hubhook treats a callback as a hint, never as data: it does not use `Entity`. A verified
//! callback makes the matching resources' polls due at once (and, for a delete, their id
//! reconciliation), so the record is read from ConnectWise through the poller's one path, with
//! its deduplication and boundary guarantees. A forged or replayed callback can therefore cause
//! at most an early poll, and a lost one only delays a change to the next scheduled poll.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// What hubhook reads from a callback (field names compared without case: consumers have
/// seen both `MessageId` and `MessageID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackMessage {
    /// `added`, `updated` or `deleted` (lowercased).
    pub action: String,
    /// The record type, lowercased: `contact`, `company`, `ticket`, ….
    pub kind: String,
    /// The record's id.
    pub id: Option<i64>,
    /// Where the signing key is served.
    pub key_url: String,
}

impl CallbackMessage {
    /// Reads a callback body, or says what is missing.
    pub fn parse(body: &[u8]) -> Result<CallbackMessage, String> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
        let Value::Object(fields) = value else {
            return Err("the body is not a JSON object".into());
        };
        let field = |name: &str| {
            fields
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value)
        };
        let text = |name: &str| {
            field(name)
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase)
        };
        let action =
            text("Action").ok_or("`Action` is missing: expected added, updated or deleted")?;
        if !matches!(action.as_str(), "added" | "updated" | "deleted") {
            return Err(format!(
                "`Action`: got `{}`, expected added, updated or deleted",
                action.escape_debug()
            ));
        }
        let kind =
            text("Type").ok_or("`Type` is missing: expected a record type such as contact")?;
        let id = field("ID").and_then(|id| match id {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        });
        let key_url = field("Metadata")
            .and_then(|metadata| match metadata {
                Value::Object(metadata) => metadata
                    .iter()
                    .find(|(key, _)| key.eq_ignore_ascii_case("key_url"))
                    .and_then(|(_, url)| url.as_str()),
                _ => None,
            })
            .ok_or("`Metadata.key_url` is missing: it says where the signing key is")?
            .to_string();
        Ok(CallbackMessage {
            action,
            kind,
            id,
            key_url,
        })
    }

    pub fn is_delete(&self) -> bool {
        self.action == "deleted"
    }

    /// The ConnectWise list a record of this type lives in, when hubhook knows the type;
    /// `None` means "some record changed", and every resource of the instance is polled.
    pub fn connectwise_path(&self) -> Option<&'static str> {
        Some(match self.kind.as_str() {
            "contact" => "company/contacts",
            "company" => "company/companies",
            "ticket" => "service/tickets",
            "projectticket" => "project/tickets",
            "opportunity" => "sales/opportunities",
            "activity" => "sales/activities",
            "project" => "project/projects",
            "member" => "system/members",
            "configuration" => "company/configurations",
            "agreement" => "finance/agreements",
            "invoice" => "finance/invoices",
            "time" | "timeentry" => "time/entries",
            _ => return None,
        })
    }
}

/// Whether `header` (`x-content-signature`) signs `body` under ConnectWise's `signing_key`:
/// `base64(HMAC-SHA256(key = SHA256(signing_key), body))`, compared in constant time.
pub fn verify_connectwise_signature(signing_key: &str, body: &[u8], header: &str) -> bool {
    let Ok(tag) = STANDARD.decode(header.trim()) else {
        return false;
    };
    let key = Sha256::digest(signing_key.as_bytes());
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The signature computed independently: HMAC by hand from SHA-256 (RFC 2104).
    fn sign(signing_key: &str, body: &[u8]) -> String {
        let key = Sha256::digest(signing_key.as_bytes());
        let mut padded = [0u8; 64];
        padded[..32].copy_from_slice(&key);
        let inner: Vec<u8> = padded
            .iter()
            .map(|b| b ^ 0x36)
            .chain(body.iter().copied())
            .collect();
        let inner = Sha256::digest(&inner);
        let outer: Vec<u8> = padded
            .iter()
            .map(|b| b ^ 0x5c)
            .chain(inner.iter().copied())
            .collect();
        STANDARD.encode(Sha256::digest(&outer))
    }

    #[test]
    fn signatures_verify_and_forgeries_do_not() {
        let body = br#"{"Action":"updated","ID":5}"#;
        let good = sign("s3cret", body);
        assert!(verify_connectwise_signature("s3cret", body, &good));
        assert!(!verify_connectwise_signature("other", body, &good));
        assert!(!verify_connectwise_signature("s3cret", b"{}", &good));
        assert!(!verify_connectwise_signature("s3cret", body, "not base64!"));
        assert!(!verify_connectwise_signature("s3cret", body, ""));
    }

    #[test]
    fn messages_are_read_whatever_the_case_of_their_fields() {
        let message = CallbackMessage::parse(
            br#"{"action":"Deleted","id":"42","TYPE":"Contact","metadata":{"KEY_URL":"https://cw.example/k"}}"#,
        )
        .expect("valid");
        assert!(message.is_delete());
        assert_eq!(message.id, Some(42));
        assert_eq!(message.connectwise_path(), Some("company/contacts"));
        assert_eq!(message.key_url, "https://cw.example/k");
        let unknown = CallbackMessage {
            kind: "widget".into(),
            ..message
        };
        assert_eq!(unknown.connectwise_path(), None);
    }

    #[test]
    fn bad_messages_say_what_is_wrong() {
        for (body, expected) in [
            (&b"[1]"[..], "not a JSON object"),
            (&b"{"[..], "not JSON"),
            (&br#"{"Type":"contact"}"#[..], "`Action` is missing"),
            (
                &br#"{"Action":"moved","Type":"contact"}"#[..],
                "`Action`: got `moved`",
            ),
            (&br#"{"Action":"added"}"#[..], "`Type` is missing"),
            (&br#"{"Action":"added","Type":"contact"}"#[..], "key_url"),
        ] {
            let err = CallbackMessage::parse(body).unwrap_err();
            assert!(err.contains(expected), "{err}");
        }
    }
}
