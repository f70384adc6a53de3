use axum::{Router, extract::State, http::StatusCode, routing::get};

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// The process is up.
async fn healthz() -> &'static str {
    "ok"
}

/// The process can read and write its database. A store that cannot write (its writer has
/// stopped, or its last write failed) is not ready, even though reads may still work.
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
