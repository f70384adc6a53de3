//! The web console: server-rendered pages at `/` for people who run hubhook.
//!
//! Why it is built this way:
//! - **One path into the store.** Every page acts through the same functions as the platform
//!   API (`routes::instances::create`, `instance_updates::replace`, `enabled::set_disabled`,
//!   `instances::poll`, `instances::delete`, `polling::health`, `events::events_out`,
//!   `analytics::analytics`), so a form refuses exactly what `POST /instances` refuses, with
//!   the same message, and nothing can be done here that the API would not allow.
//! - **Templates checked at compile time** (maud's `html!`): a page that does not render does
//!   not build, and every interpolated value is HTML-escaped.
//! - **No build step, no network**: the CSS and the small script (live refresh, the two poller
//!   editors kept in sync, confirmations) are compiled into the binary (`assets`); every action
//!   is also a plain form POST followed by a redirect, so the pages work without the script.
//! - **Sessions** are the platform's (`crate::session`), in a cookie of their own that is
//!   `HttpOnly` and `SameSite=Strict`; every form carries a CSRF token derived from the session
//!   (`session`), checked before anything else. An organization's pages look instances up
//!   through the caller's organization, so another organization's ids are 404.
//! - **Resend and recover** call the delivery routes' own functions
//!   (`notifications::resend_one`, `notifications::recover_since`).
//! - **Secrets** are never put in a page: the forms leave secret inputs empty and keep the
//!   stored value when they come back empty (sent as `********`, which the API keeps).

mod assets;
mod chart;
mod detail;
mod errors;
mod events;
mod form;
mod form_page;
mod list;
mod page;
pub(crate) use page::PageError;
mod session;

use axum::{
    Router,
    routing::{get, post},
};

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(list::index))
        .route("/console/instances", get(list::fragment))
        .route("/signin", get(session::sign_in_page).post(session::sign_in))
        .route("/signout", post(session::sign_out))
        .route("/instances/new", get(form::new_page).post(form::create))
        .route(
            "/instances/new/test-connection",
            post(form::test_new_connection),
        )
        .route("/instances/{id}", get(detail::show))
        .route("/instances/{id}/health", get(detail::health_fragment))
        .route(
            "/instances/{id}/edit",
            get(form::edit_page).post(form::update),
        )
        .route(
            "/instances/{id}/edit/test-connection",
            post(form::test_edit_connection),
        )
        .route("/instances/{id}/enable", post(detail::enable))
        .route("/instances/{id}/disable", post(detail::disable))
        .route("/instances/{id}/poll", post(detail::poll))
        .route(
            "/instances/{id}/delete",
            get(detail::confirm_delete).post(detail::delete),
        )
        .route("/instances/{id}/events", get(events::list))
        .route("/instances/{id}/events/{event}", get(events::one))
        .route(
            "/instances/{id}/events/{event}/resend",
            post(events::resend),
        )
        .route("/instances/{id}/recover", post(detail::recover))
        .merge(assets::router())
}
