//! Signing in and out of the console, the signed-in user of a page, and CSRF tokens.
//!
//! The session cookie (`hubhook_session`) is `HttpOnly` (scripts cannot read it),
//! `SameSite=Strict` (other sites' pages never send it), `Path=/`, and `Secure` when the
//! request came through HTTPS (`crate::session::secure_flag`). Through HTTPS both console
//! cookies are named with the `__Host-` prefix (`__Host-hubhook_session`), which browsers keep
//! only when it was set `Secure`, for `Path=/` and without `Domain` by this very host: a page
//! on a sibling subdomain cannot plant a cookie of that name (to sign a browser in to an
//! account of its choosing, or to fix the sign-in token), and only the prefixed name is read
//! then. On top of that every form carries a CSRF token, checked before the form is read: for
//! a signed-in user it is an HMAC-like SHA-256 of the session secret, so it needs no storage
//! and cannot be computed without the cookie; the sign-in form, which has no session yet, uses
//! a random token kept in a second `SameSite=Strict` cookie (double submit), so another site
//! cannot sign a browser in to an account of its choosing.

use axum::{
    extract::{FromRequestParts, State},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
};
use hubhook_store::Principal;
use maud::html;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

use super::form::FormData;
use super::page::{PageError, page};
use crate::auth::new_secret;
use crate::session::{
    DEVICE_COOKIE, DEVICE_DAYS, SESSION_HOURS, SessionKind, cookie, cookies, secure_flag,
    through_https,
};
use crate::{ApiError, AppState};

const SESSION_COOKIE: &str = "hubhook_session";
const SIGN_IN_CSRF_COOKIE: &str = "hubhook_signin";

/// The name a console cookie has on `request`: `__Host-` before it through HTTPS (see the
/// module docs), plain over plain HTTP, where browsers refuse the prefix (it needs `Secure`).
fn cookie_name(request: &HeaderMap, name: &str) -> String {
    if through_https(request) {
        format!("__Host-{name}")
    } else {
        name.to_string()
    }
}

/// The value of the request's console cookie `name`, under the name it has on this request.
fn console_cookie<'a>(request: &'a HeaderMap, name: &str) -> Option<&'a str> {
    cookie(request, &cookie_name(request, name))
}

/// The signed-in user of a console request. Pages that need one take it as an argument; without
/// a valid session the browser is sent to the sign-in page.
#[derive(Debug, Clone)]
pub struct ConsoleUser {
    pub principal: Principal,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
    /// The session's secret (only its hash is stored), kept to end the session.
    session: String,
}

impl ConsoleUser {
    pub fn caller(&self) -> crate::auth::Caller {
        crate::auth::Caller(self.principal)
    }

    /// Refuses a form whose CSRF token is not this session's (403, nothing done).
    pub fn check_csrf(&self, form: &FormData) -> Result<(), PageError> {
        check_token(form.get("csrf").unwrap_or(""), &self.csrf)
    }
}

fn check_token(sent: &str, expected: &str) -> Result<(), PageError> {
    if !expected.is_empty() && bool::from(sent.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(PageError::new(
            StatusCode::FORBIDDEN,
            "The form's security token is missing or out of date. Go back, reload the page and try again.",
        ))
    }
}

/// The CSRF token of a session: a hash of its secret under a fixed label.
fn csrf_of(session: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"hubhook console csrf\0");
    hasher.update(session.as_bytes());
    hex::encode(&hasher.finalize()[..16])
}

/// Without a session: a page is redirected to the sign-in page, anything else is 401.
pub struct SignInFirst(bool);

impl IntoResponse for SignInFirst {
    fn into_response(self) -> Response {
        if self.0 {
            Redirect::to("/signin").into_response()
        } else {
            PageError::new(StatusCode::UNAUTHORIZED, "Sign in first.").into_response()
        }
    }
}

impl FromRequestParts<AppState> for ConsoleUser {
    type Rejection = SignInFirst;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let is_page = parts.method == axum::http::Method::GET;
        let Some(session) = console_cookie(&parts.headers, SESSION_COOKIE).map(str::to_string)
        else {
            return Err(SignInFirst(is_page));
        };
        match crate::session::principal(state, SessionKind::Console, &session).await {
            Ok(Some(principal)) => Ok(ConsoleUser {
                principal,
                csrf: csrf_of(&session),
                session,
            }),
            _ => Err(SignInFirst(is_page)),
        }
    }
}

/// A console cookie, `Secure` and `__Host-` named when `request` came through HTTPS.
fn set_cookie(
    request: &HeaderMap,
    name: &str,
    value: &str,
    max_age: i64,
) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(&format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        cookie_name(request, name),
        secure_flag(request)
    ))
    .map_err(ApiError::internal)
}

/// The sign-in page, with a fresh double-submit token.
pub async fn sign_in_page(headers: HeaderMap) -> Result<Response, PageError> {
    sign_in_form(&headers, StatusCode::OK, "", None)
}

fn sign_in_form(
    request: &HeaderMap,
    status: StatusCode,
    email: &str,
    error: Option<&str>,
) -> Result<Response, PageError> {
    let token = new_secret().map_err(ApiError::internal)?;
    let token = hex::encode(Sha256::digest(token.as_bytes()));
    let body = html! {
        h1 { "Sign in" }
        @if let Some(error) = error {
            p.error-summary role="alert" id="signin-error" { (error) }
        }
        form.narrow method="post" action="/signin" {
            input type="hidden" name="csrf" value=(token);
            div.field {
                label for="email" { "Email" }
                input #email type="email" name="email" value=(email) required autocomplete="username"
                    aria-describedby=[error.map(|_| "signin-error")];
            }
            div.field {
                label for="password" { "Password" }
                input #password type="password" name="password" required autocomplete="current-password";
            }
            button type="submit" { "Sign in" }
        }
    };
    let mut response = (status, page("Sign in", None, body)).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(request, SIGN_IN_CSRF_COOKIE, &token, 3600)?,
    );
    Ok(response)
}

/// Checks the email and password (the platform's check) and starts a session.
pub async fn sign_in(
    State(state): State<AppState>,
    request: HeaderMap,
    form: FormData,
) -> Result<Response, PageError> {
    check_token(
        form.get("csrf").unwrap_or(""),
        console_cookie(&request, SIGN_IN_CSRF_COOKIE).unwrap_or(""),
    )?;
    let email = form.get("email").unwrap_or("").trim().to_string();
    let password = form.get("password").unwrap_or("").to_string();
    if email.is_empty() || password.is_empty() {
        return sign_in_form(
            &request,
            StatusCode::BAD_REQUEST,
            &email,
            Some("Give your email and your password."),
        );
    }
    let devices = cookies(&request, &cookie_name(&request, DEVICE_COOKIE));
    match crate::session::sign_in(&state, SessionKind::Console, &email, password, devices).await {
        Ok(signed) => {
            let mut response = Redirect::to("/").into_response();
            let headers = response.headers_mut();
            headers.append(
                header::SET_COOKIE,
                set_cookie(
                    &request,
                    SESSION_COOKIE,
                    &signed.session,
                    SESSION_HOURS * 3600,
                )?,
            );
            headers.append(
                header::SET_COOKIE,
                set_cookie(
                    &request,
                    DEVICE_COOKIE,
                    &signed.device,
                    DEVICE_DAYS * 86_400,
                )?,
            );
            headers.append(
                header::SET_COOKIE,
                set_cookie(&request, SIGN_IN_CSRF_COOKIE, "", 0)?,
            );
            Ok(response)
        }
        Err(err) if err.status == StatusCode::UNAUTHORIZED => sign_in_form(
            &request,
            StatusCode::UNAUTHORIZED,
            &email,
            Some("The email or the password is wrong."),
        ),
        Err(err) if err.status == StatusCode::TOO_MANY_REQUESTS => {
            let said = format!("{}.", capitalized(&err.message));
            let mut form =
                sign_in_form(&request, StatusCode::TOO_MANY_REQUESTS, &email, Some(&said))?;
            if let Some(wait) = err.retry_after {
                form.headers_mut()
                    .insert(header::RETRY_AFTER, wait.as_secs().max(1).into());
            }
            Ok(form)
        }
        Err(err) => Err(err.into()),
    }
}

/// Ends the session and forgets the cookie.
pub async fn sign_out(
    State(state): State<AppState>,
    request: HeaderMap,
    user: ConsoleUser,
    form: FormData,
) -> Result<Response, PageError> {
    user.check_csrf(&form)?;
    state
        .engine
        .store()
        .end_session(SessionKind::Console.hash(&user.session))
        .await
        .map_err(ApiError::from)?;
    let mut response = Redirect::to("/signin").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&request, SESSION_COOKIE, "", 0)?,
    );
    Ok(response)
}

/// `text` with its first letter in capitals, for a sentence on a page.
fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
