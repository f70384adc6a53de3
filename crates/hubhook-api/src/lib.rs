//! The HTTP API: the only crate with axum. Cloud Elements platform paths under
//! `/elements/api-v2`, health endpoints, the OpenAPI description and the console.
//!
//! Handlers parse the request into domain types (`hubhook_core`), call the store or the engine,
//! and answer with typed response structs (`*Out`) that are also the OpenAPI schemas, so the
//! description at `/openapi.json` is generated from what is served. Every error goes through
//! [`ApiError`], which renders the Cloud Elements error body `{message, requestId,
//! providerMessage?}`; only failures that are ours (500) are logged as errors.
//!
//! Each route module ends with `pub fn router() -> OpenApiRouter<AppState>`; [`router`] nests
//! them and serves the description they add up to.

mod auth;
mod body;
mod console;
mod element;
mod error;
mod html;
mod metrics;
mod openapi;
mod paging;
mod routes;
mod serve;
mod session;
mod undeclared;

use axum::{Json, Router, routing::get};
use hubhook_engine::Engine;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

pub use auth::{fresh_secret, new_secret, password_hash, secret_hash};
pub use error::ApiError;
pub use serve::{ServeLimits, serve};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    /// `/metrics`' reads of the store's backlogs, one at a time ([`metrics::GaugeReads`]).
    gauges: std::sync::Arc<metrics::GaugeReads>,
    /// Changes of one instance on this node, one at a time
    /// ([`routes::instance_updates::ChangeLocks`]).
    changes: std::sync::Arc<routes::instance_updates::ChangeLocks>,
    /// Recent failed sign-ins, by email ([`session::SignInFailures`]).
    sign_in_failures: std::sync::Arc<session::SignInFailures>,
}

impl AppState {
    pub fn new(engine: Engine) -> AppState {
        AppState {
            engine,
            gauges: std::sync::Arc::default(),
            changes: std::sync::Arc::default(),
            sign_in_failures: std::sync::Arc::default(),
        }
    }
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    metrics::install();
    let (router, description) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .nest(
            "/elements/api-v2",
            routes::instances::router()
                .merge(routes::analytics::router())
                .merge(routes::instance_updates::router())
                .merge(routes::configuration::router())
                .merge(routes::enabled::router())
                .merge(routes::events::router())
                .merge(routes::elements::router())
                .merge(routes::secrets::router())
                .merge(routes::polling::router())
                .merge(routes::connectwise_callbacks::router())
                .merge(routes::hub::router())
                .merge(routes::webhook_secret::router())
                .merge(routes::settings::router())
                .merge(routes::notifications::router())
                .merge(routes::deliveries::router())
                .merge(routes::replay::router()),
        )
        .merge(routes::login::router())
        .merge(routes::health::router())
        .merge(metrics::router())
        .split_for_parts();
    let described = serde_json::to_value(&description).unwrap_or_default();
    let declared = undeclared::Declared::from_description(&described);
    router
        // After routing, so that the operation is known: only the described routes.
        .route_layer(axum::middleware::from_fn(move |request, next| {
            undeclared::refuse_undeclared(declared.clone(), request, next)
        }))
        .route(
            "/openapi.json",
            get(move || async move { Json(description) }),
        )
        .merge(console::router())
        // After routing, so that requests are counted by their route template.
        .route_layer(axum::middleware::from_fn(metrics::record_http))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .with_state(state)
        .layer(axum::middleware::from_fn(utf8_path))
        .layer(axum::extract::DefaultBodyLimit::max(body::BODY_LIMIT))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

/// Refuses a path that is not UTF-8 once percent-decoded (`/instances/%FF`) in the error body
/// every other refusal has; left to the routes, axum's path extractor would answer it in
/// plain text. No route has a segment that could be anything but text.
async fn utf8_path(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let path = request.uri().path();
    if percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .is_err()
    {
        let refused = ApiError::bad_request(format!(
            "the URL path `{path}` is not UTF-8 once percent-decoded"
        ));
        // A console address gets a page, as the console's other refusals are.
        let api = [
            "/elements/",
            "/openapi.json",
            "/healthz",
            "/readyz",
            "/metrics",
        ];
        if !api.iter().any(|prefix| path.starts_with(prefix)) {
            return console::PageError::from(refused).into_response();
        }
        return refused.into_response();
    }
    next.run(request).await
}
