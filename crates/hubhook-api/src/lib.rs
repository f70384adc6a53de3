//! The HTTP API: the only crate with axum. Cloud Elements platform paths under
//! `/elements/api-v2`, health endpoints, and the console page.
//!
//! Handlers parse the request into domain types (`hubhook_core`), call the store or the engine,
//! and render Cloud Elements shaped JSON. Every error goes through [`ApiError`], which renders
//! the Cloud Elements error body `{message, requestId, providerMessage?}`; only failures that
//! are ours (500) are logged as errors.

mod auth;
mod body;
mod error;
mod routes;
mod serve;

use axum::Router;
use hubhook_engine::Engine;

pub use auth::{new_secret, secret_hash};
pub use error::ApiError;
pub use serve::{ServeLimits, serve};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
}

/// Time a client has to send a request's body.
const REQUEST_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    Router::new()
        .nest("/elements/api-v2", routes::instances::router())
        .merge(routes::health::router())
        .merge(routes::console::router())
        .fallback(routes::not_found)
        .with_state(state)
        .layer(tower_http::trace::TraceLayer::new_for_http())
        // A client that starts a body and stops sending holds a connection and a handler;
        // bodies are small, so this is generous.
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            REQUEST_BODY_TIMEOUT,
        ))
}
