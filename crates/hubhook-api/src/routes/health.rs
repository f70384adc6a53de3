//! Liveness and readiness probes.

use axum::{extract::State, http::StatusCode};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// The process is up (liveness).
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = String)))]
async fn healthz() -> &'static str {
    "ok"
}

/// The process can read and write its database (readiness). A store that cannot write (its
/// writer has stopped, or its last write failed) is not ready, even though reads may work.
#[utoipa::path(
    get, path = "/readyz", tag = "health",
    responses((status = 200, body = String), (status = 503, body = String))
)]
async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    let store = state.engine.store();
    if !store.is_writable() {
        return (StatusCode::SERVICE_UNAVAILABLE, "database not writable");
    }
    match store.next_poll_due().await {
        Ok(_) => (StatusCode::OK, "ready"),
        Err(err) => {
            tracing::warn!(error = %err, "not ready: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
        }
    }
}
