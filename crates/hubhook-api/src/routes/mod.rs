pub mod analytics;
pub mod configuration;
pub mod connectwise_callbacks;
pub mod deliveries;
pub mod elements;
pub mod enabled;
pub mod events;
pub mod feed;
pub mod health;
pub mod hub;
pub mod instance_updates;
pub mod instances;
pub mod login;
pub mod notifications;
pub mod polling;
pub mod replay;
pub mod secrets;
pub mod settings;
pub mod webhook_secret;

use crate::ApiError;

pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no such endpoint: {}", uri.path()))
}

/// A known path with a method it does not answer: 405 in the Cloud Elements error body
/// (axum's own 405 has no body).
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
    )
}
