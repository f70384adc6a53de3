//! `ApiError`: every failure of every route, rendered as the Cloud Elements error body.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

/// An API failure rendered as the Cloud Elements error body
/// `{"message": .., "requestId": .., "providerMessage": ..}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub provider_message: Option<String>,
    /// Sent as `Retry-After` (whole seconds), when the caller should try again later.
    pub retry_after: Option<std::time::Duration>,
}

/// The Cloud Elements error body.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// What is wrong, naming the field, the value and the expected form when the caller sent
    /// something we cannot act on.
    pub message: String,
    /// 24 hex digits; the server log has the details of internal errors under this id.
    pub request_id: String,
    /// What ConnectWise said, when the failure came from ConnectWise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_message: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            provider_message: None,
            retry_after: None,
        }
    }

    pub fn with_retry_after(mut self, retry_after: Option<std::time::Duration>) -> ApiError {
        self.retry_after = retry_after;
        self
    }

    /// The caller's fault: a request we cannot act on.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }

    pub fn with_provider_message(mut self, provider_message: Option<String>) -> ApiError {
        self.provider_message = provider_message;
        self
    }

    /// Our fault. The cause is logged with the request id; the caller only sees the id.
    pub fn internal(err: impl std::fmt::Display) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("internal error: {err}"),
            provider_message: None,
            retry_after: None,
        }
    }
}

impl From<hubhook_store::StoreError> for ApiError {
    fn from(err: hubhook_store::StoreError) -> ApiError {
        if err.is_unstorable_text() {
            // Reached by text in a URL, a query or a form (JSON bodies are checked earlier,
            // naming the field); which value held it is not known here.
            return ApiError::bad_request(
                "the request contains the NUL character (\\u0000 or %00), which text may not contain",
            );
        }
        ApiError::internal(err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = request_id();
        // Only our own failures are hidden (and logged as errors); a 502 or 504 says what the
        // provider did, which is the caller's to know and not a fault of ours.
        let message = if self.status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(request_id = %request_id, error = ?self.message, "request failed");
            "An internal error occurred; the server log has the details under this requestId"
                .to_string()
        } else {
            if self.status.is_server_error() {
                tracing::warn!(request_id = %request_id, status = self.status.as_u16(), error = ?self.message, "the provider failed the request");
            }
            capped(self.message)
        };
        let body = ErrorBody {
            message,
            request_id,
            provider_message: self.provider_message,
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(wait) = self.retry_after {
            // At least 1: `Retry-After: 0` would invite an immediate retry of the same refusal.
            let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// The most of a refusal's message that is sent, in bytes. Messages quote what was wrong, and
/// a few quote it whole (an unknown query parameter's name, a feed cursor): without a cap, a
/// 60 KB name came back as a 60 KB answer. Every problem of a long validation still fits.
const MESSAGE_LIMIT: usize = 8 * 1024;

/// `message` cut to [`MESSAGE_LIMIT`] bytes (at a character's boundary), saying how much was cut.
fn capped(message: String) -> String {
    if message.len() <= MESSAGE_LIMIT {
        return message;
    }
    let mut end = MESSAGE_LIMIT;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}… ({} more bytes not shown)",
        &message[..end],
        message.len() - end
    )
}

/// 24 hex digits, like Cloud Elements' request ids.
fn request_id() -> String {
    let mut bytes = [0u8; 12];
    // Without randomness the id is still useful as a log correlation key; fall back to time.
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = jiff::Timestamp::now().as_nanosecond().to_be_bytes();
        bytes.copy_from_slice(&nanos[4..]);
    }
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_message_is_cut_at_a_character() {
        assert_eq!(capped("short".into()), "short");
        let long = format!("`{}` is unknown", "é".repeat(MESSAGE_LIMIT));
        let cut = capped(long.clone());
        assert!(cut.len() < MESSAGE_LIMIT + 64, "{}", cut.len());
        // `é` is two bytes after a one-byte backquote: the limit falls inside one.
        let kept = MESSAGE_LIMIT - 1;
        assert!(cut.starts_with(&long[..kept]));
        assert!(
            cut.ends_with(&format!("… ({} more bytes not shown)", long.len() - kept)),
            "{cut}"
        );
    }
}
