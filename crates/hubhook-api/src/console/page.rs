//! The page shell every console page shares, the console's error page, and small formatting
//! helpers. Pages are sent with a Content-Security-Policy that allows only this server's own
//! stylesheet and script, so an injected `<script>` would not run even if escaping failed.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use jiff::Timestamp;
use maud::{DOCTYPE, Markup, html};

use super::session::ConsoleUser;
use crate::ApiError;

const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A whole page: the navigation (with sign-out when signed in) and `body` as the main content.
pub fn page(title: &str, user: Option<&ConsoleUser>, body: Markup) -> Html {
    Html(html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · hubhook" }
                link rel="stylesheet" href="/assets/console.css";
                script src="/assets/console.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    nav aria-label="Main" {
                        a.brand href="/" { "hubhook" }
                        @if let Some(user) = user {
                            a href="/" { "Instances" }
                            a href="/instances/new" { "New instance" }
                            form.inline method="post" action="/signout" {
                                input type="hidden" name="csrf" value=(user.csrf);
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main #main { (body) }
            }
        }
    })
}

/// A rendered page or fragment, sent with the console's security headers.
pub struct Html(pub Markup);

impl IntoResponse for Html {
    fn into_response(self) -> Response {
        let mut response = self.0.into_string().into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// A console failure shown as a page: 404 for what the organization does not have (including
/// another organization's instances), 403 for a bad CSRF token, 500 with the request id only.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    message: String,
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> PageError {
        PageError {
            status,
            message: message.into(),
        }
    }
}

impl From<ApiError> for PageError {
    fn from(err: ApiError) -> PageError {
        if err.status.is_server_error() {
            // Logged with its cause by `ApiError`; the page says only that it failed.
            let _ = err.into_response();
            return PageError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something failed on our side; the server log has the details.",
            );
        }
        PageError::new(err.status, err.message)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = match self.status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::FORBIDDEN => "Refused",
            StatusCode::UNAUTHORIZED => "Sign in",
            _ => "Error",
        };
        let body = html! {
            h1 { (title) }
            p role="alert" { (self.message) }
            p { a href="/" { "Back to the instances" } }
        };
        (self.status, page(title, None, body)).into_response()
    }
}

/// A time as people read it in a table: `2026-01-01 10:00:00 UTC`.
pub fn when(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// An API date (`2026-01-01T10:00:00Z`) as [`when`] shows it.
pub fn when_text(date: &str) -> String {
    date.parse::<Timestamp>()
        .map(when)
        .unwrap_or_else(|_| date.to_string())
}

/// A duration in seconds, short: `42 s`, `3 min`, `5 h`, `2 d`.
pub fn seconds(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

/// A status word as a badge; the word itself carries the meaning (colour only helps).
pub fn badge(word: &str) -> Markup {
    let class = match word {
        "ok" | "NOTIFIED" | "enabled" | "on" => "badge good",
        "pending" | "NEW" | "DISPATCHED" | "RECEIVED" => "badge wait",
        "warning" => "badge warn",
        "failing" | "FAILED" | "disabled" => "badge bad",
        _ => "badge",
    };
    html! { span class=(class) { (word) } }
}
