//! The Cloud Elements `Authorization` header: `User <secret>, Organization <secret>`.

use axum::{extract::FromRequestParts, http::request::Parts};
use hubhook_core::{AuthHeader, parse_authorization};
use hubhook_store::Principal;
use sha2::{Digest, Sha256};

use crate::{ApiError, AppState};

/// The authenticated organization and user of a platform API request.
#[derive(Debug, Clone, Copy)]
pub struct Caller(pub Principal);

const EXPECTED: &str =
    "expected `Authorization: User <user secret>, Organization <organization secret>`";

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let auth = authorization(parts, EXPECTED)?;
        authenticate(state, &auth, EXPECTED).await.map(Caller)
    }
}

/// The parsed `Authorization` header; `expected` (the form the route wants) ends every
/// refusal. The messages never repeat the secrets.
pub(crate) fn authorization(parts: &Parts, expected: &str) -> Result<AuthHeader, ApiError> {
    // Two headers could carry two organizations' secrets: which one a request acts for must
    // not depend on their order.
    if parts
        .headers
        .get_all(axum::http::header::AUTHORIZATION)
        .iter()
        .nth(1)
        .is_some()
    {
        return Err(ApiError::bad_request(format!(
            "the request has more than one Authorization header; send one, {expected}"
        )));
    }
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized(format!("missing Authorization header, {expected}")))?
        .to_str()
        .map_err(|_| {
            ApiError::unauthorized(format!("Authorization header is not text, {expected}"))
        })?;
    parse_authorization(header).map_err(|e| {
        ApiError::unauthorized(format!("invalid Authorization header: {e}; {expected}"))
    })
}

/// The organization and user whose secrets the header carries.
pub(crate) async fn authenticate(
    state: &AppState,
    auth: &AuthHeader,
    expected: &str,
) -> Result<Principal, ApiError> {
    let (Some(user), Some(organization)) = (&auth.user, &auth.organization) else {
        return Err(ApiError::unauthorized(format!(
            "Authorization header needs both User and Organization secrets, {expected}"
        )));
    };
    state
        .engine
        .store()
        .authenticate(secret_hash(organization), secret_hash(user))
        .await?
        .ok_or_else(|| ApiError::unauthorized("the User and Organization secrets are not valid"))
}

/// Secrets and tokens are random and long, so a plain SHA-256 is enough to store them safely
/// (no password stretching needed) and lets the store find them by an indexed hash.
pub fn secret_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// A new secret or token: 32 random bytes in standard base64, so it looks like Cloud Elements'
/// (which contain `/`, `+` and `=`).
pub fn new_secret() -> Result<String, getrandom::Error> {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// An argon2id hash of a password, as a PHC string (`$argon2id$v=19$...`), salted with 16
/// random bytes. Passwords are chosen by people, so unlike secrets they need a slow hash.
pub fn password_hash(password: &str) -> anyhow::Result<String> {
    use argon2::password_hash::{PasswordHasher as _, SaltString};
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("no random salt available: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))
}

/// Whether `password` matches the PHC string `hash` (an unreadable hash matches nothing).
pub fn password_matches(hash: &str, password: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier as _};
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

const EXPECTED_TOKEN: &str = "expected `Authorization: User <user secret>, Organization <organization secret>, Element <instance token>`";

/// A platform call about "the instance of the `Element` token" (`PUT /instances`,
/// `/instances/configuration`, `/instances/enabled`): the caller and that instance, which must
/// be one of the caller's organization. A missing, unknown or foreign token is the same 401,
/// as on the hub, so nothing is learnt about other organizations' instances.
pub struct TokenInstance {
    pub instance: hubhook_store::InstanceRow,
}

/// The instance of the header's `Element` token, if it is one of the caller's organization;
/// else 401 (`missing` when there is no token), the same for an unknown and a foreign token.
pub(crate) async fn token_instance(
    state: &AppState,
    auth: &AuthHeader,
    caller: Principal,
    missing: &str,
    expected: &str,
) -> Result<hubhook_store::InstanceRow, ApiError> {
    let token = auth
        .element
        .as_deref()
        .ok_or_else(|| ApiError::unauthorized(format!("{missing}; {expected}")))?;
    state
        .engine
        .store()
        .instance_by_token(secret_hash(token))
        .await?
        .filter(|instance| instance.organization_id == caller.organization_id)
        .ok_or_else(|| {
            ApiError::unauthorized(
                "the Element token is not the token of an instance of this organization",
            )
        })
}

impl FromRequestParts<AppState> for TokenInstance {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let auth = authorization(parts, EXPECTED_TOKEN)?;
        let principal = authenticate(state, &auth, EXPECTED_TOKEN).await?;
        let instance = token_instance(
            state,
            &auth,
            principal,
            "this route acts on the instance of the `Element <instance token>`, which is missing",
            EXPECTED_TOKEN,
        )
        .await?;
        Ok(TokenInstance { instance })
    }
}

/// A fresh secret, ready to store: its hash for lookups and the secret for its sealed copy.
pub fn fresh_secret() -> Result<hubhook_store::NewSecret, getrandom::Error> {
    let plain = new_secret()?;
    Ok(hubhook_store::NewSecret {
        hash: secret_hash(&plain),
        plain,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_salted_argon2id_and_verify() {
        let hash = password_hash("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert_ne!(hash, password_hash("correct horse").unwrap(), "salted");
        assert!(password_matches(&hash, "correct horse"));
        assert!(!password_matches(&hash, "correct horsE"));
        assert!(!password_matches("not a hash", "correct horse"));
    }
}
