//! The console's stylesheet and script, compiled into the binary (no CDN, no build step).
//! Served with a short cache lifetime: they change only with the binary.

use axum::{Router, http::header, response::IntoResponse, routing::get};

use crate::AppState;

const CSS: &str = include_str!("../../assets/console.css");
const JS: &str = include_str!("../../assets/console.js");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/assets/console.css", get(css))
        .route("/assets/console.js", get(js))
}

async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        CSS,
    )
}

async fn js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        JS,
    )
}
