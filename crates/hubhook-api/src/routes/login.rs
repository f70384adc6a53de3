//! Cloud Elements' legacy sign-in, for tools written against it: `POST
//! /elements/j_spring_security_check` (a form with `j_username` and `j_password`) starts a
//! session and answers 200 with its cookie (never a redirect, which scripted clients would
//! follow to a page they cannot read), and `GET /elements/api-v1/ui/getSecrets` with that
//! cookie answers `{"user": <user secret>, "company": <organization secret>}`, the secrets of
//! the `Authorization` header.
//!
//! The password check and the session are `crate::session`'s, shared with the console. The
//! secrets are read from their encrypted copies (see `docs/behaviour.md`).

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, HeaderValue, header},
    response::{AppendHeaders, IntoResponse},
};
use hubhook_store::Principal;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::body::RawBody;
use crate::openapi::CommonErrors;
use crate::session::{DEVICE_COOKIE, DEVICE_DAYS, SessionKind};
use crate::{ApiError, AppState};

/// The session cookie's name, as Cloud Elements' Java servers named it.
const COOKIE: &str = "JSESSIONID";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sign_in))
        .routes(routes!(get_secrets))
}

/// The sign-in form (read by hand, as form fields).
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Only its OpenAPI description is used.
pub struct SignInForm {
    /// The user's email.
    j_username: String,
    j_password: String,
}

/// The answer to a sign-in (the session is in the `Set-Cookie` header).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignInOut {
    pub user_id: i64,
    pub organization_id: i64,
}

/// The secrets of the `Authorization: User <user>, Organization <company>` header.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretsOut {
    pub user: String,
    pub company: String,
}

/// Sign in with an email and a password (form fields `j_username`, `j_password`).
#[utoipa::path(
    post, path = "/elements/j_spring_security_check", tag = "users",
    request_body(content = SignInForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = SignInOut,
        headers(("Set-Cookie" = String, description = "`JSESSIONID=<session>`"))),
        (status = 429, description = "Ten failed sign-ins for this email in the last ten minutes; try again after `Retry-After` seconds", body = crate::error::ErrorBody,
        headers(("Retry-After" = u64, description = "Seconds to wait"))), CommonErrors)
)]
async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<impl IntoResponse, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/x-www-form-urlencoded");
    if !content_type
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return Err(ApiError::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected a form: Content-Type application/x-www-form-urlencoded with `j_username` and `j_password`",
        ));
    }
    let (mut username, mut password) = (None, None);
    for (key, value) in url::form_urlencoded::parse(&body) {
        match key.as_ref() {
            "j_username" => username = Some(value.into_owned()),
            "j_password" => password = Some(value.into_owned()),
            _ => {}
        }
    }
    let username = username
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("`j_username` is required: the user's email"))?;
    let password = password.ok_or_else(|| ApiError::bad_request("`j_password` is required"))?;
    let devices = crate::session::cookies(&headers, DEVICE_COOKIE);
    let signed =
        crate::session::sign_in(&state, SessionKind::Legacy, &username, password, devices).await?;
    let secure = crate::session::secure_flag(&headers);
    let cookie = HeaderValue::from_str(&format!(
        "{COOKIE}={}; Path=/elements; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        signed.session,
        crate::session::SESSION_HOURS * 3600,
    ))
    .map_err(ApiError::internal)?;
    let device = HeaderValue::from_str(&format!(
        "{DEVICE_COOKIE}={}; Path=/elements; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        signed.device,
        DEVICE_DAYS * 86_400,
    ))
    .map_err(ApiError::internal)?;
    Ok((
        AppendHeaders([(header::SET_COOKIE, cookie), (header::SET_COOKIE, device)]),
        Json(SignInOut {
            user_id: signed.principal.user_id.0,
            organization_id: signed.principal.organization_id.0,
        }),
    ))
}

/// The signed-in user's secrets.
#[utoipa::path(
    get, path = "/elements/api-v1/ui/getSecrets", tag = "users",
    params(("Cookie" = String, Header, description = "`JSESSIONID=<session>` from the sign-in")),
    responses((status = 200, body = SecretsOut),
        (status = 409, description = "The secrets were made before copies were kept; rotate them", body = crate::error::ErrorBody),
        CommonErrors)
)]
async fn get_secrets(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<SecretsOut>, ApiError> {
    let principal = session(&state, &headers).await?;
    let secrets = state.engine.store().secrets(principal).await?.ok_or_else(|| {
        ApiError::conflict(
            "the secrets of this user or organization were made before hubhook kept a copy; rotate them (`hubhook user rotate-secret`, `hubhook org rotate-secret`) to read them here",
        )
    })?;
    Ok(Json(SecretsOut {
        user: secrets.user,
        company: secrets.organization,
    }))
}

/// Who holds the session of the request's cookie.
async fn session(state: &AppState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let token = crate::session::cookie(headers, COOKIE).ok_or_else(|| {
        ApiError::unauthorized(format!(
            "no session: sign in with POST /elements/j_spring_security_check and send its `{COOKIE}` cookie"
        ))
    })?;
    crate::session::principal(state, SessionKind::Legacy, token)
        .await?
        .ok_or_else(|| {
            ApiError::unauthorized("the session has expired or is not valid; sign in again")
        })
}
