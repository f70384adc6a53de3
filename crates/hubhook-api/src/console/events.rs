//! An instance's events and their deliveries: a paged list filtered by type, resource, object
//! id, status and dates, and one event with its payload as sent (pretty JSON) and its delivery
//! attempts.
//!
//! The list reads the instance's newest [`SCAN`] events from the store and filters them here:
//! the console is for looking at what happened recently, and this keeps one store query for
//! events (the API's). Older events stay reachable through the API's paging.

use axum::extract::{Path, RawQuery, State};
use jiff::Timestamp;
use maud::{Markup, html};

use super::page::{Html, PageError, badge, page, when_text};
use super::session::ConsoleUser;
use crate::routes::events::{EventOut, events_out};
use crate::routes::instances::find;
use crate::{ApiError, AppState};

/// The newest events a filtered list looks through.
const SCAN: u32 = 2000;
const PAGE: usize = 50;
/// The last page a query can ask for: one past the pages the scan can fill.
const LAST_PAGE: usize = SCAN as usize / PAGE + 1;
const STATUSES: [&str; 5] = ["NEW", "DISPATCHED", "NOTIFIED", "FAILED", "RECEIVED"];
const TYPES: [&str; 3] = ["CREATED", "UPDATED", "DELETED"];

#[derive(Debug, Default)]
struct Filter {
    event_type: String,
    resource: String,
    object: String,
    status: String,
    from: String,
    to: String,
    page: usize,
    /// What in the query could not be read: shown, and no event is listed rather than a list
    /// the filter silently did not narrow.
    problems: Vec<String>,
}

/// A `datetime-local` value (`2026-01-01T10:00`), read as UTC, or an RFC 3339 time.
pub fn time(text: &str) -> Option<Timestamp> {
    if text.is_empty() {
        return None;
    }
    hubhook_core::parse_instant(text).ok().or_else(|| {
        text.parse::<jiff::civil::DateTime>()
            .ok()?
            .to_zoned(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp())
    })
}

impl Filter {
    fn parse(query: Option<&str>) -> Filter {
        let mut filter = Filter::default();
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let value = value.trim().to_string();
            match key.as_ref() {
                "type" => filter.event_type = value,
                "resource" => filter.resource = value,
                "object" => filter.object = value,
                "status" => filter.status = value,
                "from" => filter.from = value,
                "to" => filter.to = value,
                // Past the last page the scan can fill is empty anyway; bounded so that the
                // page arithmetic cannot overflow (`page=18446744073709551615` wrapped to
                // "Page 0").
                "page" => match value.parse::<usize>() {
                    Ok(page) => filter.page = page.min(LAST_PAGE),
                    Err(_) if value.is_empty() => {}
                    Err(_) => filter.problems.push(format!(
                        "Page `{}` is not a page number (0, 1, 2, …).",
                        crate::body::shown(&value, 40)
                    )),
                },
                other => filter.problems.push(format!(
                    "`{}` is not a filter of this page; it takes type, resource, object, status, from, to and page.",
                    crate::body::shown(other, 40).escape_debug()
                )),
            }
        }
        for (label, value, allowed) in [
            ("Type", &filter.event_type, &TYPES[..]),
            ("Status", &filter.status, &STATUSES[..]),
        ] {
            if !value.is_empty() && !allowed.contains(&value.as_str()) {
                filter.problems.push(format!(
                    "{label} `{}` is not one of {}.",
                    crate::body::shown(value, 40).escape_debug(),
                    allowed.join(", ")
                ));
            }
        }
        if filter.object.chars().any(char::is_control) {
            // Shown escaped, in the message and in the form it is echoed in.
            filter.object = filter.object.escape_debug().to_string();
            filter.problems.push(format!(
                "Object id `{}` holds a control character; no object id does.",
                crate::body::shown(&filter.object, 40)
            ));
        }
        for (label, value) in [("From", &filter.from), ("To", &filter.to)] {
            if !value.is_empty() && time(value).is_none() {
                filter.problems.push(format!(
                    "{label} `{}` is not a date and time such as 2026-01-31T09:00 (UTC).",
                    crate::body::shown(value, 40)
                ));
            }
        }
        filter
    }

    fn matches(&self, e: &hubhook_store::EventRow) -> bool {
        let from = time(&self.from);
        let to = time(&self.to);
        (self.event_type.is_empty() || e.event_type == self.event_type)
            && (self.resource.is_empty() || e.object_type == self.resource)
            && (self.object.is_empty() || e.object_id == self.object)
            && from.is_none_or(|from| e.created_at >= from)
            && to.is_none_or(|to| e.created_at < to)
    }

    /// This filter's query, on page `page`.
    fn query(&self, page: usize) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("type", &self.event_type)
            .append_pair("resource", &self.resource)
            .append_pair("object", &self.object)
            .append_pair("status", &self.status)
            .append_pair("from", &self.from)
            .append_pair("to", &self.to)
            .append_pair("page", &page.to_string())
            .finish()
    }
}

fn status_text(event: &EventOut) -> String {
    serde_json::to_value(event.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn select(id: &str, label: &str, name: &str, chosen: &str, options: &[String]) -> Markup {
    html! {
        div.field {
            label for=(id) { (label) }
            select id=(id) name=(name) {
                option value="" selected[chosen.is_empty()] { "Any" }
                @for o in options { option value=(o) selected[chosen == o.as_str()] { (o) } }
                // A value not offered (a resource no longer polled, whose events remain) is
                // shown as chosen rather than as "Any".
                @if !chosen.is_empty() && !options.iter().any(|o| o == chosen) {
                    option value=(chosen) selected { (chosen) }
                }
            }
        }
    }
}

pub async fn list(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Html, PageError> {
    let row = find(&state, &user.caller(), &id).await?;
    let filter = Filter::parse(query.as_deref());
    let store = state.engine.store();
    let scanned = store
        .organization_events(user.principal.organization_id, Some(row.id), None, 0, SCAN)
        .await
        .map_err(ApiError::from)?;
    // Said on the page, so that "No events match" is never mistaken for "none ever did".
    let horizon_reached = scanned.len() == SCAN as usize;
    let rows: Vec<_> = scanned
        .into_iter()
        .filter(|e| filter.problems.is_empty() && filter.matches(e))
        .collect();
    // The status depends on the delivery attempts, so it is filtered after they are read.
    let (shown, more) = if filter.status.is_empty() {
        let start = filter.page * PAGE;
        let page_rows: Vec<_> = rows.iter().skip(start).take(PAGE).cloned().collect();
        (
            events_out(&state, page_rows).await?,
            rows.len() > start + PAGE,
        )
    } else {
        let all: Vec<EventOut> = events_out(&state, rows)
            .await?
            .into_iter()
            .filter(|e| status_text(e) == filter.status)
            .collect();
        let more = all.len() > (filter.page + 1) * PAGE;
        (
            all.into_iter()
                .skip(filter.page * PAGE)
                .take(PAGE)
                .collect(),
            more,
        )
    };
    let mut resources: Vec<String> = row
        .configuration
        .get("event.poller.configuration")
        .and_then(|v| match v {
            serde_json::Value::Object(m) => Some(m.keys().cloned().collect()),
            serde_json::Value::String(s) => serde_json::from_str::<serde_json::Map<_, _>>(s)
                .ok()
                .map(|m| m.keys().cloned().collect()),
            _ => None,
        })
        .unwrap_or_default();
    resources.sort();
    let base = format!("/instances/{}", row.id);
    let types = TYPES.map(String::from);
    let statuses = STATUSES.map(String::from);
    let body = html! {
        p { a href=(base) { "← " (row.name) } }
        h1 { "Events of " (row.name) }
        form.filters method="get" action=(format!("{base}/events")) {
            (select("filter-type", "Type", "type", &filter.event_type, &types))
            (select("filter-resource", "Resource", "resource", &filter.resource, &resources))
            div.field { label for="filter-object" { "Object id" }
                input #filter-object type="text" name="object" value=(filter.object); }
            (select("filter-status", "Status", "status", &filter.status, &statuses))
            div.field { label for="filter-from" { "From (UTC)" }
                input #filter-from type="datetime-local" name="from" value=(filter.from); }
            div.field { label for="filter-to" { "To (UTC)" }
                input #filter-to type="datetime-local" name="to" value=(filter.to); }
            button type="submit" { "Filter" }
        }
        @if !filter.problems.is_empty() {
            div.error-summary role="alert" #filter-problems {
                @for problem in &filter.problems { p { (problem) } }
            }
        }
        @if horizon_reached {
            p.note #scan-horizon {
                "Filters look through the newest " (SCAN) " events of this instance; older ones are listed by the API ("
                code { "GET /elements/api-v2/instances/" (row.id) "/events" } ")."
            }
        }
        @if shown.is_empty() {
            p #no-events { "No events match." }
        } @else {
            table.events {
                caption.visually-hidden { "Events, newest first" }
                thead { tr {
                    th scope="col" { "Date" } th scope="col" { "Type" } th scope="col" { "Resource" }
                    th scope="col" { "Object id" } th scope="col" { "Status" } th scope="col" { "Attempts" }
                } }
                tbody {
                    @for e in &shown {
                        tr data-event=(e.id) {
                            td data-label="Date" { a href=(format!("{base}/events/{}", e.id)) { (when_text(&e.event_date)) } }
                            td data-label="Type" { (e.event_type) }
                            td data-label="Resource" { (e.object_type) }
                            td data-label="Object id" { (e.object_id) }
                            td data-label="Status" { (badge(&status_text(e))) }
                            td data-label="Attempts" { (e.notified_data.len()) }
                        }
                    }
                }
            }
        }
        nav.pager aria-label="Pages" {
            @if filter.page > 0 {
                a rel="prev" href=(format!("{base}/events?{}", filter.query(filter.page - 1))) { "Newer" }
            }
            " Page " (filter.page + 1) " "
            @if more {
                a rel="next" href=(format!("{base}/events?{}", filter.query(filter.page + 1))) { "Older" }
            }
        }
    };
    Ok(page(&format!("Events of {}", row.name), Some(&user), body))
}

pub async fn one(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path((id, event_id)): Path<(String, String)>,
) -> Result<Html, PageError> {
    let row = find(&state, &user.caller(), &id).await?;
    let event = state
        .engine
        .store()
        .organization_event(user.principal.organization_id, Some(row.id), &event_id)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no event with id `{}`",
                crate::body::shown(&event_id, 60).escape_debug()
            ))
        })?;
    let event = events_out(&state, vec![event])
        .await?
        .pop()
        .ok_or_else(|| ApiError::internal("an event vanished while being shown"))?;
    let payload = serde_json::from_str::<serde_json::Value>(&event.provider_data)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| event.provider_data.clone());
    let base = format!("/instances/{}", row.id);
    let body = html! {
        p { a href=(format!("{base}/events")) { "← Events of " (row.name) } }
        h1 { (event.event_type) " " (event.object_type) " " (event.object_id) }
        dl.settings {
            dt { "Event id" } dd { code { (event.id) } }
            dt { "Date" } dd { (when_text(&event.event_date)) }
            dt { "Status" } dd #event-status { (badge(&status_text(&event))) }
            @if let Some(n) = &event.notification_id { dt { "Notification" } dd { code { (n) } } }
        }
        @if let Some(n) = &event.notification_id {
            form method="post" action=(format!("{base}/events/{}/resend", event.id)) {
                input type="hidden" name="csrf" value=(user.csrf);
                input type="hidden" name="notification" value=(n);
                button type="submit" #resend { "Resend" }
            }
        }
        h2 { "Attempts" }
        @if event.notified_data.is_empty() {
            p #no-attempts { "No delivery attempt yet." }
        } @else {
            table.attempts {
                thead { tr {
                    th scope="col" { "Time" } th scope="col" { "HTTP status" }
                    th scope="col" { "Latency" } th scope="col" { "Error" }
                    th scope="col" { "Response" }
                } }
                tbody {
                    @for a in &event.notified_data {
                        tr {
                            td data-label="Time" { (when_text(&a.attempted_at)) }
                            td data-label="HTTP status" { (a.status_code.map_or_else(|| "—".to_string(), |c| c.to_string())) }
                            td data-label="Latency" { (a.latency_ms) " ms" }
                            td data-label="Error" { (a.error.as_deref().unwrap_or("")) }
                            td data-label="Response" { code.excerpt { (a.response_excerpt.as_deref().unwrap_or("")) } }
                        }
                    }
                }
            }
        }
        h2 { "Payload as sent" }
        pre.payload tabindex="0" { code { (payload) } }
    };
    Ok(page("Event", Some(&user), body))
}

/// "Resend": the event's notification sent again through the API's resend.
pub async fn resend(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path((id, event_id)): Path<(String, String)>,
    form: super::form::FormData,
) -> Result<axum::response::Redirect, PageError> {
    user.check_csrf(&form)?;
    let row = find(&state, &user.caller(), &id).await?;
    let event = state
        .engine
        .store()
        .organization_event(user.principal.organization_id, Some(row.id), &event_id)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no event with id `{}`",
                crate::body::shown(&event_id, 60).escape_debug()
            ))
        })?;
    let notification = event
        .notification_id
        .ok_or_else(|| ApiError::conflict("this event has no notification to send"))?;
    crate::routes::notifications::resend_one(
        &state,
        user.principal.organization_id,
        &notification.0,
    )
    .await?;
    Ok(axum::response::Redirect::to(&format!(
        "/instances/{}/events/{}",
        row.id, event.id.0
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_page_number_is_the_last_page_not_a_wrapped_one() {
        let filter = Filter::parse(Some("page=18446744073709551615"));
        assert_eq!(filter.page, LAST_PAGE);
        assert!(
            filter.page * PAGE >= SCAN as usize,
            "past every scanned row"
        );
        assert_eq!(Filter::parse(Some("page=2")).page, 2);
        assert_eq!(Filter::parse(Some("page=x")).page, 0);
    }
}
