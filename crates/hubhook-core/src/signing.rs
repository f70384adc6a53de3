//! The Cloud Elements webhook signature (`Elements-Webhook-Signature`).
//!
//! Cloud Elements signs the raw notification body with HMAC-SHA256 under the instance's
//! `event.notification.signature.key` and sends `sha256=` followed by the standard, padded
//! base64 of the MAC. Receivers written for Cloud Elements verify exactly this, so hubhook
//! produces the same bytes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const PREFIX: &str = "sha256=";

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length (long keys are hashed, short ones padded), so this cannot
    // fail; the fallback only exists to avoid a panic path.
    match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => <HmacSha256 as KeyInit>::new(&Default::default()),
    }
}

/// The `Elements-Webhook-Signature` header value for `body` signed with `key`.
pub fn elements_signature(key: &[u8], body: &[u8]) -> String {
    let mut mac = mac(key);
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    format!("{PREFIX}{}", STANDARD.encode(tag))
}

/// Whether `header` is a valid signature of `body` under `key`. The comparison is constant
/// time, so a receiver using it does not leak how many bytes of a forged signature matched.
pub fn verify_elements_signature(key: &[u8], body: &[u8], header: &str) -> bool {
    let Some(encoded) = header.trim().strip_prefix(PREFIX) else {
        return false;
    };
    let Ok(tag) = STANDARD.decode(encoded) else {
        return false;
    };
    let mut mac = mac(key);
    mac.update(body);
    mac.verify_slice(&tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(key: &str, body: &str, expected: &str) {
        let signature = elements_signature(key.as_bytes(), body.as_bytes());
        assert_eq!(signature, expected);
        assert!(verify_elements_signature(
            key.as_bytes(),
            body.as_bytes(),
            &signature
        ));
    }

    #[test]
    fn matches_the_documented_test_vector() {
        check(
            "MySecretEventSignatureKey",
            "<INSERT_EVENT_NOTIFICATION_RESPONSE_BODY>",
            "sha256=jHdbRx5EZAsOfTwAPJOGkNUzQMVVdu5VJlxcsk+G6jQ=",
        );
    }

    #[test]
    fn matches_rfc_4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?", MAC
        // 5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843 in base64.
        check(
            "Jefe",
            "what do ya want for nothing?",
            "sha256=W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=",
        );
    }

    #[test]
    fn rejects_tampering_and_malformed_headers() {
        let key = b"k";
        let good = elements_signature(key, b"body");
        let cases: &[(&[u8], &[u8], &str)] = &[
            (key, b"body!", &good),
            (b"other", b"body", &good),
            (key, b"body", "sha1=abc"),
            (key, b"body", "sha256=not base64!"),
            (key, b"body", "sha256="),
            (key, b"body", ""),
        ];
        for (key, body, header) in cases {
            assert!(!verify_elements_signature(key, body, header), "{header}");
        }
        assert!(verify_elements_signature(key, b"body", &good));
    }
}
