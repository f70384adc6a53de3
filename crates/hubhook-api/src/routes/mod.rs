pub mod console;
pub mod health;
pub mod hub;
pub mod instances;
pub mod polling;

use crate::ApiError;

pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no such endpoint: {}", uri.path()))
}
