//! Standard Webhooks signatures (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
//!
//! The specification (standardwebhooks.com) signs `{id}.{timestamp}.{body}` with HMAC-SHA256
//! under the bytes of a `whsec_<base64>` secret and sends `v1,<base64 MAC>`; several
//! signatures are separated by spaces, which is how a receiver keeps working while its secret
//! is rotated. Receivers use the specification's libraries, so hubhook must produce exactly
//! these bytes: the unit tests check the specification's own test vector, and
//! `crates/hubhook/tests/standardwebhooks/run.sh` checks real deliveries with the Python
//! library.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Prefix of a Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// A `whsec_…` secret, decoded. Its `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(********)")
    }
}

impl WebhookSecret {
    /// A secret from key bytes (24 random bytes, as Svix makes them, is what hubhook uses).
    pub fn from_bytes(bytes: Vec<u8>) -> WebhookSecret {
        WebhookSecret(bytes)
    }

    /// Reads `whsec_<standard base64>`.
    pub fn parse(text: &str) -> Result<WebhookSecret, String> {
        let encoded = text
            .strip_prefix(SECRET_PREFIX)
            .ok_or_else(|| format!("expected a secret starting with `{SECRET_PREFIX}`"))?;
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| format!("expected standard base64 after `{SECRET_PREFIX}`"))?;
        if bytes.is_empty() {
            return Err(format!("expected key bytes after `{SECRET_PREFIX}`"));
        }
        Ok(WebhookSecret(bytes))
    }

    /// The `whsec_…` text given to the receiver.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        // HMAC takes keys of any length, so this cannot fail; the fallback avoids a panic path.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.0) {
            Ok(mac) => mac,
            Err(_) => <Hmac<Sha256> as KeyInit>::new(&Default::default()),
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` header: one signature per secret, separated by spaces.
pub fn signature_header(
    secrets: &[&WebhookSecret],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|secret| secret.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_specification_test_vector() {
        // From the Standard Webhooks specification's reference libraries.
        let secret =
            WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("secret");
        let signature = secret.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_round_trip_and_bad_ones_are_named() {
        let secret = WebhookSecret::from_bytes(vec![7; 24]);
        assert_eq!(WebhookSecret::parse(&secret.expose()), Ok(secret.clone()));
        assert_eq!(format!("{secret:?}"), "WebhookSecret(********)");
        for (text, needle) in [
            ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_"),
            ("whsec_not base64!", "base64"),
            ("whsec_", "key bytes"),
        ] {
            let error = WebhookSecret::parse(text).expect_err(text);
            assert!(error.contains(needle), "{error}");
        }
    }

    #[test]
    fn the_header_carries_one_signature_per_secret() {
        let (a, b) = (
            WebhookSecret::from_bytes(vec![1; 24]),
            WebhookSecret::from_bytes(vec![2; 24]),
        );
        let header = signature_header(&[&a, &b], "id", 5, b"{}");
        assert_eq!(
            header,
            format!("{} {}", a.sign("id", 5, b"{}"), b.sign("id", 5, b"{}"))
        );
        assert_ne!(a.sign("id", 5, b"{}"), b.sign("id", 5, b"{}"));
        assert_eq!(
            signature_header(&[&a], "id", 5, b"{}"),
            a.sign("id", 5, b"{}")
        );
    }
}
