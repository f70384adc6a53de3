//! Encryption of provider secrets at rest.
//!
//! Instance secrets (ConnectWise keys and the like) are sealed with XChaCha20-Poly1305 under the
//! master key. The 24-byte nonce is random for every encryption, which is safe with XChaCha's
//! nonce size. The organization id is the associated data, so a ciphertext copied into another
//! organization's row does not decrypt.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use serde_json::{Map, Value};

use crate::{OrganizationId, Result, StoreError};

const NONCE_LEN: usize = 24;
/// Prefix of the stored form; a later key-rotation scheme gets a new version.
const VERSION_PREFIX: &str = "v1:";
/// What device tokens are sealed under: an organization's secrets are sealed under its
/// decimal id, which never has a letter, so neither is ever opened as the other.
const DEVICE_AAD: &[u8] = b"device";

/// The 32-byte key that encrypts provider secrets at rest. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(********)")
    }
}

impl MasterKey {
    /// Accepts 64 hex characters, or the standard base64 of exactly 32 bytes.
    pub fn parse(text: &str) -> Result<MasterKey> {
        let text = text.trim();
        let expected = "expected 64 hex characters or the standard base64 encoding of 32 bytes";
        if text.len() == 64 {
            let mut bytes = [0u8; 32];
            if hex::decode_to_slice(text, &mut bytes).is_ok() {
                return Ok(MasterKey(bytes));
            }
        }
        match BASE64.decode(text) {
            Ok(decoded) => match <[u8; 32]>::try_from(decoded.as_slice()) {
                Ok(bytes) => Ok(MasterKey(bytes)),
                Err(_) => Err(StoreError::InvalidKey(format!(
                    "{expected} (the base64 decodes to {} bytes)",
                    decoded.len()
                ))),
            },
            Err(_) => Err(StoreError::InvalidKey(expected.to_owned())),
        }
    }

    /// A fresh random key from the operating system.
    pub fn generate() -> MasterKey {
        let mut bytes = [0u8; 32];
        // Without an OS random source no key can be made safely; there is nothing to fall back to.
        getrandom::fill(&mut bytes).expect("the operating system random source is unavailable");
        MasterKey(bytes)
    }

    /// The key as 64 lowercase hex characters (the form `parse` reads back).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.0.into())
    }

    /// Encrypts a secrets object into its stored text form `v1:<base64(nonce||ciphertext)>`.
    pub(crate) fn seal(
        &self,
        organization: OrganizationId,
        secrets: &Map<String, Value>,
    ) -> Result<String> {
        let plaintext = serde_json::to_vec(secrets)
            .map_err(|e| StoreError::Other(format!("secrets are not serializable: {e}")))?;
        self.seal_bytes(organization.0.to_string().as_bytes(), &plaintext)
    }

    /// `plaintext` sealed under `aad` (what it is bound to), in the stored text form.
    fn seal_bytes(&self, aad: &[u8], plaintext: &[u8]) -> Result<String> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce)
            .map_err(|e| StoreError::Other(format!("no random nonce available: {e}")))?;
        let ciphertext = self
            .cipher()
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| StoreError::Other("secrets could not be encrypted".to_owned()))?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(format!("{VERSION_PREFIX}{}", BASE64.encode(sealed)))
    }

    /// The inverse of [`MasterKey::seal_bytes`]; [`StoreError::Decrypt`] if `stored` was not
    /// sealed under this key and `aad`.
    fn open_bytes(&self, aad: &[u8], stored: &str) -> Result<Vec<u8>> {
        let encoded = stored
            .strip_prefix(VERSION_PREFIX)
            .ok_or(StoreError::Decrypt)?;
        let sealed = BASE64.decode(encoded).map_err(|_| StoreError::Decrypt)?;
        if sealed.len() < NONCE_LEN {
            return Err(StoreError::Decrypt);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = <[u8; NONCE_LEN]>::try_from(nonce).map_err(|_| StoreError::Decrypt)?;
        self.cipher()
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map_err(|_| StoreError::Decrypt)
    }

    /// A device token for `email`: proof, to every node sharing this key, that whoever holds
    /// it signed in as `email` once (see `hubhook_api::session`, device cookies). Bound to
    /// its purpose, so it can never be taken for a sealed secret or the other way round.
    /// The email is padded (after its length) to a multiple of 256 bytes, so that tokens of
    /// every usual email have one length and none tells how long its email is.
    pub fn seal_device(&self, email: &str) -> Result<String> {
        let length = u16::try_from(email.len())
            .map_err(|_| StoreError::Other("an email of over 65,535 bytes".to_owned()))?;
        let mut plain = length.to_be_bytes().to_vec();
        plain.extend_from_slice(email.as_bytes());
        plain.resize(plain.len().next_multiple_of(256), 0);
        self.seal_bytes(DEVICE_AAD, &plain)
    }

    /// The email a [`MasterKey::seal_device`] token was made for, or `None` if `token` is
    /// not one of this key's.
    pub fn open_device(&self, token: &str) -> Option<String> {
        let plain = self.open_bytes(DEVICE_AAD, token).ok()?;
        let (length, rest) = plain.split_first_chunk::<2>()?;
        let email = rest.get(..usize::from(u16::from_be_bytes(*length)))?;
        String::from_utf8(email.to_vec()).ok()
    }

    /// Encrypts one secret (a user or organization secret) the same way, as `{"secret": ..}`.
    pub(crate) fn seal_text(&self, organization: OrganizationId, secret: &str) -> Result<String> {
        let mut map = Map::new();
        map.insert("secret".to_owned(), Value::String(secret.to_owned()));
        self.seal(organization, &map)
    }

    /// The inverse of [`MasterKey::seal_text`].
    pub(crate) fn open_text(&self, organization: OrganizationId, stored: &str) -> Result<String> {
        match self.open(organization, stored)?.remove("secret") {
            Some(Value::String(secret)) => Ok(secret),
            _ => Err(StoreError::Decrypt),
        }
    }

    /// Decrypts the stored text form back into the secrets object.
    pub(crate) fn open(
        &self,
        organization: OrganizationId,
        stored: &str,
    ) -> Result<Map<String, Value>> {
        let plaintext = self.open_bytes(organization.0.to_string().as_bytes(), stored)?;
        serde_json::from_slice(&plaintext)
            .map_err(|e| StoreError::Other(format!("decrypted secrets are not a JSON object: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_hex_and_base64_and_names_the_forms_otherwise() {
        let key = MasterKey::generate();
        assert_eq!(MasterKey::parse(&key.to_hex()).unwrap(), key);
        assert_eq!(MasterKey::parse(&key.to_hex().to_uppercase()).unwrap(), key);
        assert_eq!(MasterKey::parse(&BASE64.encode(key.0)).unwrap(), key);
        for bad in ["", "abc", &"g".repeat(64), &BASE64.encode([1u8; 16])] {
            let err = MasterKey::parse(bad).unwrap_err().to_string();
            assert!(err.contains("64 hex characters"), "{bad:?}: {err}");
            assert!(err.contains("base64"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn debug_hides_the_key() {
        let key = MasterKey::parse(&"ab".repeat(32)).unwrap();
        assert_eq!(format!("{key:?}"), "MasterKey(********)");
    }

    #[test]
    fn seal_round_trips_and_is_bound_to_the_organization() {
        let key = MasterKey::generate();
        let mut secrets = Map::new();
        secrets.insert("privateKey".into(), Value::from("s3cr3t"));
        let sealed = key.seal(OrganizationId(7), &secrets).unwrap();
        assert!(sealed.starts_with("v1:"));
        assert!(!sealed.contains("s3cr3t"));
        assert_eq!(key.open(OrganizationId(7), &sealed).unwrap(), secrets);
        assert!(matches!(
            key.open(OrganizationId(8), &sealed),
            Err(StoreError::Decrypt)
        ));
        assert!(matches!(
            MasterKey::generate().open(OrganizationId(7), &sealed),
            Err(StoreError::Decrypt)
        ));
        // Two seals of the same secrets differ: the nonce is fresh each time.
        assert_ne!(sealed, key.seal(OrganizationId(7), &secrets).unwrap());
    }

    #[test]
    fn a_device_token_opens_to_its_email_under_its_key_only() {
        let key = MasterKey::generate();
        let token = key.seal_device("ops@example.com").unwrap();
        assert_eq!(key.open_device(&token).as_deref(), Some("ops@example.com"));
        // Its length does not tell the email's.
        let longer = key
            .seal_device("a.much.longer.address@example.com")
            .unwrap();
        assert_eq!(token.len(), longer.len());
        assert_eq!(
            key.open_device(&key.seal_device("").unwrap()).as_deref(),
            Some("")
        );
        assert_ne!(token, key.seal_device("ops@example.com").unwrap());
        assert_eq!(MasterKey::generate().open_device(&token), None);
        let mut flipped = token.clone().into_bytes();
        let last = flipped.len() - 3;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(key.open_device(&String::from_utf8(flipped).unwrap()), None);
        for bad in ["", "v1:", "v1:!!", "nonsense"] {
            assert_eq!(key.open_device(bad), None, "{bad:?}");
        }
        // Neither is ever taken for the other.
        let sealed = key.seal_text(OrganizationId(7), "secret").unwrap();
        assert_eq!(key.open_device(&sealed), None);
        assert!(key.open(OrganizationId(7), &token).is_err());
    }
}
