//! Sessions started with an email and a password, shared by Cloud Elements' legacy sign-in
//! (`routes::login`, cookie `JSESSIONID` for scripted clients) and the console (its own cookie,
//! `SameSite=Strict`, for browsers). One password check and one session store, so both sign-ins
//! refuse and expire alike.
//!
//! Passwords are checked against their argon2 hash on a blocking thread (a check takes tens of
//! milliseconds of CPU). An unknown email is checked against a fixed hash all the same, so the
//! answer takes as long and reads the same as for a wrong password. A session is a random
//! secret, stored as its SHA-256, valid for [`SESSION_HOURS`].

use axum::http::{HeaderMap, header};
use hubhook_store::Principal;

use crate::auth::{new_secret, password_matches, secret_hash};
use crate::{ApiError, AppState};

pub(crate) const SESSION_HOURS: i64 = 12;

/// An argon2 hash of no one's password (made once, with a random salt), checked when the email
/// is unknown so that the check costs the same.
fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| crate::auth::password_hash("no one's password").unwrap_or_default())
        .clone()
}

/// Checks the email and password and starts a session: the principal and the session secret
/// (for the cookie). A wrong email and a wrong password are the same 401.
pub(crate) async fn sign_in(
    state: &AppState,
    email: &str,
    password: String,
) -> Result<(Principal, String), ApiError> {
    let user = state.engine.store().sign_in_user(email.trim()).await?;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let matches = tokio::task::spawn_blocking(move || {
        password_matches(&hash.unwrap_or_else(dummy_hash), &password)
    })
    .await
    .map_err(ApiError::internal)?;
    let principal = match user {
        Some(user) if matches => user.principal,
        _ => return Err(ApiError::unauthorized("the email or the password is wrong")),
    };
    let session = new_secret().map_err(ApiError::internal)?;
    let now = state.engine.clock().now();
    let expires = now
        .checked_add(jiff::SignedDuration::from_hours(SESSION_HOURS))
        .map_err(ApiError::internal)?;
    state
        .engine
        .store()
        .create_session(secret_hash(&session), principal.user_id, expires)
        .await?;
    Ok((principal, session))
}

/// Who holds the session with this secret, if it is valid now.
pub(crate) async fn principal(
    state: &AppState,
    session: &str,
) -> Result<Option<Principal>, ApiError> {
    Ok(state
        .engine
        .store()
        .session(secret_hash(session), state.engine.clock().now())
        .await?)
}

/// The value of the request's cookie `name`, if it sent one.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
}
