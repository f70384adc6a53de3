//! One instance: its settings (secrets never shown), its pollers and deliveries (refreshed
//! live), charts of the last hour by minute and the last week by hour, and the actions: edit,
//! enable or disable, poll now, delete (after a confirmation page). Each action is a form POST
//! through the API's own function, then a redirect back.

use axum::{
    extract::{Path, State},
    response::{IntoResponse, Redirect, Response},
};
use maud::{Markup, html};

use super::chart::bars;
use super::form::FormData;
use super::list::{deliveries, pollers};
use super::page::{Html, PageError, badge, page, seconds, when};
use super::session::ConsoleUser;
use crate::routes::analytics::{Interval, Window, analytics};
use crate::routes::enabled::set_disabled;
use crate::routes::instances::{delete as api_delete, find, poll as api_poll};
use crate::routes::polling::health;
use crate::{ApiError, AppState};

async fn health_block(
    state: &AppState,
    user: &ConsoleUser,
    row: &hubhook_store::InstanceRow,
) -> Result<Markup, ApiError> {
    let delivery = state
        .engine
        .store()
        .delivery_health(
            user.principal.organization_id,
            Some(row.id),
            state.engine.clock().now(),
        )
        .await?
        .into_iter()
        .next();
    let h = health(state, row, delivery).await?;
    Ok(html! {
        h2 { "Pollers" }
        (pollers(&h))
        h2 { "Deliveries" }
        p { (deliveries(delivery.as_ref())) }
    })
}

async fn charts(
    state: &AppState,
    user: &ConsoleUser,
    row: &hubhook_store::InstanceRow,
) -> Result<Markup, ApiError> {
    let now = state.engine.clock().now();
    let mut out = Vec::new();
    for (caption, interval) in [
        ("Last hour, by minute", Interval::Minute),
        ("Last week, by hour", Interval::Hour),
    ] {
        let counts = analytics(
            state,
            user.principal.organization_id,
            Window::recent(interval, now),
        )
        .await?;
        let buckets = counts
            .instances
            .into_iter()
            .find(|i| i.instance_id == row.id.0)
            .map(|i| i.buckets)
            .unwrap_or_default();
        out.push(bars(caption, &buckets));
    }
    Ok(html! { @for chart in out { (chart) } })
}

pub async fn show(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
) -> Result<Html, PageError> {
    let (state, user) = (&state, &user);
    let row = find(state, &user.caller(), &id).await?;
    let health = health_block(state, user, &row).await?;
    let charts = charts(state, user, &row).await?;
    let config = &row.configuration;
    let text = |key: &str| {
        config
            .get(key)
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .unwrap_or_else(|| "—".into())
    };
    let base = format!("/instances/{}", row.id);
    let body = html! {
        h1 { (row.name) }
        p {
            (badge(if row.disabled { "disabled" } else { "enabled" })) " "
            "Events " (badge(if row.events_enabled { "on" } else { "off" }))
        }
        div.actions {
            a.button href=(format!("{base}/edit")) { "Edit" }
            a.button href=(format!("{base}/events")) { "Events and deliveries" }
            form.inline method="post" action=(format!("{base}/{}", if row.disabled { "enable" } else { "disable" })) {
                input type="hidden" name="csrf" value=(user.csrf);
                button type="submit" { @if row.disabled { "Enable" } @else { "Disable" } }
            }
            form.inline method="post" action=(format!("{base}/poll")) {
                input type="hidden" name="csrf" value=(user.csrf);
                button type="submit" { "Poll now" }
            }
            a.button.danger href=(format!("{base}/delete")) { "Delete" }
        }
        dl.settings {
            dt { "ConnectWise" } dd { (text("baseUrl")) " (company " (text("company")) ")" }
            dt { "Event Notification Callback URL" } dd { (text("event.notification.callback.url")) }
            dt { "Refresh interval" } dd { (seconds(row.refresh_interval_ms / 1000)) }
            dt { "Tags" } dd { (row.tags.join(", ")) }
            dt { "Created" } dd { (when(row.created_at)) }
        }
        section #health data-refresh=(format!("{base}/health")) aria-live="polite" { (health) }
        section {
            h2 { "Recover" }
            form.inline method="post" action=(format!("{base}/recover")) {
                input type="hidden" name="csrf" value=(user.csrf);
                div.field {
                    label for="recover-since" { "Send again every failed or queued delivery since (UTC)" }
                    input #recover-since type="datetime-local" name="since" required
                        value=(recover_default(state));
                }
                button type="submit" #recover { "Recover" }
            }
        }
        section { h2 { "Activity" } (charts) }
    };
    Ok(page(&row.name, Some(user), body))
}

/// The pollers and deliveries alone, for the live refresh.
pub async fn health_fragment(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
) -> Result<Html, PageError> {
    let row = find(&state, &user.caller(), &id).await?;
    Ok(Html(health_block(&state, &user, &row).await?))
}

fn back(id: &str) -> Response {
    Redirect::to(&format!("/instances/{id}")).into_response()
}

pub async fn enable(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
    form: FormData,
) -> Result<Response, PageError> {
    user.check_csrf(&form)?;
    let row = find(&state, &user.caller(), &id).await?;
    let _instance = set_disabled(&state, &row, false).await?;
    Ok(back(&id))
}

pub async fn disable(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
    form: FormData,
) -> Result<Response, PageError> {
    user.check_csrf(&form)?;
    let row = find(&state, &user.caller(), &id).await?;
    let _instance = set_disabled(&state, &row, true).await?;
    Ok(back(&id))
}

pub async fn poll(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
    form: FormData,
) -> Result<Response, PageError> {
    user.check_csrf(&form)?;
    let row = find(&state, &user.caller(), &id).await?;
    api_poll(&state, &row).await?;
    Ok(back(&id))
}

/// The confirmation page of a delete (no script needed to confirm).
pub async fn confirm_delete(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
) -> Result<Html, PageError> {
    let row = find(&state, &user.caller(), &id).await?;
    let body = html! {
        h1 { "Delete " (row.name) "?" }
        p { "Polling stops and undelivered notifications are cancelled. Events and the delivery history are kept." }
        form method="post" action=(format!("/instances/{}/delete", row.id)) {
            input type="hidden" name="csrf" value=(user.csrf);
            button.danger type="submit" #confirm-delete { "Delete instance" }
            " "
            a href=(format!("/instances/{}", row.id)) { "Cancel" }
        }
    };
    Ok(page("Delete instance", Some(&user), body))
}

pub async fn delete(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
    form: FormData,
) -> Result<Response, PageError> {
    user.check_csrf(&form)?;
    let _deleted = api_delete(&state, &user.caller(), &id).await?;
    Ok(Redirect::to("/").into_response())
}

/// A day ago, as a `datetime-local` value in UTC.
fn recover_default(state: &AppState) -> String {
    let now = state.engine.clock().now();
    now.checked_sub(jiff::SignedDuration::from_hours(24))
        .unwrap_or(now)
        .strftime("%Y-%m-%dT%H:%M")
        .to_string()
}

/// "Recover": every failed or queued delivery since the time given, through the API's recover.
pub async fn recover(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
    form: FormData,
) -> Result<Response, PageError> {
    user.check_csrf(&form)?;
    let row = find(&state, &user.caller(), &id).await?;
    let text = form.get("since").unwrap_or("");
    let since = super::events::time(text).ok_or_else(|| {
        ApiError::bad_request(format!(
            "`since`: got `{}`, expected a date and time such as 2026-01-31T09:00",
            text.escape_debug()
        ))
    })?;
    crate::routes::notifications::recover_since(&state, &row, since).await?;
    Ok(back(&id))
}
