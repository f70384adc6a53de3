//! The instances page: every instance of the organization with its pollers' health (per
//! resource: status, last poll, cursor lag, last error) and its delivery health (due, failing,
//! queued). The table is also served alone (`/console/instances`) for the live refresh.

use std::collections::HashMap;

use axum::extract::State;
use maud::{Markup, html};

use super::page::{Html, PageError, badge, page, seconds, when_text};
use super::session::ConsoleUser;
use crate::routes::polling::{HealthStatus, InstanceHealthOut, health};
use crate::{ApiError, AppState};
use hubhook_store::DeliveryHealth;

pub fn status_word(status: HealthStatus) -> &'static str {
    match status {
        HealthStatus::Ok => "ok",
        HealthStatus::Pending => "pending",
        HealthStatus::Warning => "warning",
        HealthStatus::Failing => "failing",
    }
}

/// Each resource's poller, one line each.
pub fn pollers(health: &InstanceHealthOut) -> Markup {
    html! {
        @if health.resources.is_empty() {
            span.muted { "not polling" }
        } @else {
            ul.health {
                @for r in &health.resources {
                    li data-resource=(r.resource) data-status=(status_word(r.status)) {
                        strong { (r.resource) } " " (badge(status_word(r.status)))
                        @if let Some(last) = &r.last_success { " · last poll " (when_text(last)) }
                        @if let Some(lag) = r.cursor_lag_seconds { " · lag " (seconds(lag)) }
                        @if let Some(error) = &r.last_error { br; span.error-text { "Last error: " (error) } }
                    }
                }
            }
        }
    }
}

/// An instance's undelivered notifications.
pub fn deliveries(delivery: Option<&DeliveryHealth>) -> Markup {
    let d = delivery.copied();
    let (due, failing, queued) = d.map_or((0, 0, 0), |d| (d.due, d.failing, d.queued));
    html! {
        span.deliveries {
            (due) " due · "
            @if failing > 0 { span.error-text { (failing) " failing" } } @else { "0 failing" }
            " · "
            @if queued > 0 { span.error-text { (queued) " queued" } } @else { "0 queued" }
        }
    }
}

async fn table(state: &AppState, user: &ConsoleUser) -> Result<Markup, ApiError> {
    let store = state.engine.store();
    let org = user.principal.organization_id;
    let rows = store.list_instances(org).await?;
    let delivery: HashMap<i64, DeliveryHealth> = store
        .delivery_health(org, None, state.engine.clock().now())
        .await?
        .into_iter()
        .map(|d| (d.instance_id.0, d))
        .collect();
    let mut healths = Vec::with_capacity(rows.len());
    for row in &rows {
        healths.push(health(state, row, delivery.get(&row.id.0).copied()).await?);
    }
    Ok(html! {
        @if rows.is_empty() {
            p { "No instances yet. " a href="/instances/new" { "Create one" } "." }
        } @else {
            table.instances {
                caption.visually-hidden { "Instances, their pollers and their deliveries" }
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "Tags" } th scope="col" { "Enabled" }
                    th scope="col" { "Events" } th scope="col" { "Pollers" } th scope="col" { "Deliveries" }
                } }
                tbody {
                    @for (row, h) in rows.iter().zip(&healths) {
                        tr data-instance=(row.id.0) {
                            td data-label="Name" { a href=(format!("/instances/{}", row.id)) { (row.name) } }
                            td data-label="Tags" { (row.tags.join(", ")) }
                            td data-label="Enabled" { (badge(if row.disabled { "disabled" } else { "enabled" })) }
                            td data-label="Events" { (badge(if row.events_enabled { "on" } else { "off" })) }
                            td data-label="Pollers" { (pollers(h)) }
                            td data-label="Deliveries" { (deliveries(delivery.get(&row.id.0))) }
                        }
                    }
                }
            }
        }
    })
}

pub async fn index(State(state): State<AppState>, user: ConsoleUser) -> Result<Html, PageError> {
    let table = table(&state, &user).await?;
    Ok(page(
        "Instances",
        Some(&user),
        html! {
            h1 { "Instances" }
            p { a.button href="/instances/new" { "New instance" } }
            div #instances data-refresh="/console/instances" aria-live="polite" { (table) }
        },
    ))
}

/// The table alone, for the live refresh.
pub async fn fragment(State(state): State<AppState>, user: ConsoleUser) -> Result<Html, PageError> {
    Ok(Html(table(&state, &user).await?))
}
