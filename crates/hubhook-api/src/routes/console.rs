//! The web console. For now a single page that says where things are; the console issue
//! builds the configuration pages.

use axum::{Router, response::Html, routing::get};

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/", get(index))
}

async fn index() -> Html<&'static str> {
    Html(include_str!("../../assets/index.html"))
}
