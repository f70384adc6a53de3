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
