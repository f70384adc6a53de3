//! Stored events in Cloud Elements' event record shape: `GET /instances/{id}/events`,
//! `GET /instances/events` (every instance of the caller), and one event by id under either.
//!
//! An event's `status` follows its notification: `NEW` until a delivery is attempted,
//! `DISPATCHED` while a failed delivery waits for its retry, `NOTIFIED` once delivered, and
//! `FAILED` when retries are exhausted (queued) or the instance was deleted first (cancelled);
//! `RECEIVED` is an event stored without a notification. `providerData` is the notification
//! body as JSON text (the record alone when there is no notification) and `notifiedData` its
//! delivery attempts. Lists are newest first and paged (`crate::paging`).

use std::collections::HashMap;

use axum::{
    Json,
    extract::{Path, RawQuery, State},
    http::HeaderMap,
};
use hubhook_core::{InstanceId, NotificationId};
use hubhook_store::{AttemptRow, EventRow, Principal};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::Caller;
use crate::openapi::CommonErrors;
use crate::paging::{Paging, next_page_header};
use crate::routes::instances::{find, format_date};
use crate::{ApiError, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_events))
        .routes(routes!(list_all_events))
        .routes(routes!(get_any_event))
        .routes(routes!(get_event))
}

/// Query of event lists.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Only its OpenAPI description is used; the query is read by `Paging`.
pub struct EventsQuery {
    /// Page number, from 1.
    page: Option<u32>,
    /// 1 to 1000, default 200.
    #[param(rename = "pageSize")]
    page_size: Option<u32>,
    /// The `Elements-Next-Page-Token` of the previous page.
    #[param(rename = "nextPage")]
    next_page: Option<String>,
}

/// The pull feed's parameters (`GET /instances/{id}/events` only).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Only its OpenAPI description is used; the query is read by hand.
pub struct FeedQuery {
    /// Read the instance's events in storage order from this cursor instead (empty: from the
    /// beginning); the next cursor comes in `Elements-Next-Page-Token`, absent at the end.
    cursor: Option<String>,
}

/// A stored event, in Cloud Elements' event record shape.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventOut {
    pub id: String,
    pub instance_id: i64,
    pub event_type: String,
    pub object_type: String,
    pub object_id: String,
    pub event_date: String,
    pub status: EventStatus,
    pub notification_id: Option<String>,
    /// The notification body (or the record, without a notification), as JSON text.
    pub provider_data: String,
    /// The delivery attempts of the event's notification, oldest first.
    pub notified_data: Vec<AttemptOut>,
}

/// Where an event is on its way to the callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventStatus {
    New,
    Received,
    Dispatched,
    /// Cloud Elements' status of an event a formula consumed; hubhook has no formulas and
    /// never sets it, but clients validate against the whole list.
    #[allow(dead_code)]
    Consumed,
    Notified,
    Failed,
}

/// One delivery attempt.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptOut {
    pub attempted_at: String,
    pub status_code: Option<u16>,
    pub latency_ms: i64,
    pub error: Option<String>,
    /// The first 1 KB of the receiver's answer.
    pub response_excerpt: Option<String>,
}

/// The events of one instance, newest first.
#[utoipa::path(
    get, path = "/instances/{id}/events", tag = "events",
    params(("id" = String, Path, description = "Instance id"), EventsQuery, FeedQuery),
    security(("UserOrganization" = [])),
    responses((status = 200, body = Vec<EventOut>,
        headers(("Elements-Next-Page-Token" = String, description = "Where the next page starts, on a full page"))), CommonErrors)
)]
async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<(HeaderMap, Json<Vec<EventOut>>), ApiError> {
    // With `cursor`, the pull feed: storage order from the cursor (see routes::feed).
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    if let Some((_, cursor)) = pairs.iter().find(|(key, _)| key == "cursor") {
        if let Some((key, _)) = pairs
            .iter()
            .find(|(key, _)| !matches!(key.as_str(), "cursor" | "pageSize"))
        {
            return Err(ApiError::bad_request(format!(
                "unknown query parameter `{}` with `cursor`: expected only `pageSize`",
                key.chars().take(100).collect::<String>().escape_debug()
            )));
        }
        let page_size = pairs
            .iter()
            .find(|(key, _)| key == "pageSize")
            .map(|(_, value)| value.as_str());
        return crate::routes::feed::events_feed(&state, &caller, &id, cursor, page_size).await;
    }
    let paging = paging(query.as_deref())?;
    let row = find(&state, &caller, &id).await?;
    page(&state, caller.0, Some(row.id), &paging).await
}

/// The events of all the caller's instances, newest first.
#[utoipa::path(
    get, path = "/instances/events", tag = "events",
    params(EventsQuery),
    security(("UserOrganization" = [])),
    responses((status = 200, body = Vec<EventOut>,
        headers(("Elements-Next-Page-Token" = String, description = "Where the next page starts, on a full page"))), CommonErrors)
)]
async fn list_all_events(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RawQuery(query): RawQuery,
) -> Result<(HeaderMap, Json<Vec<EventOut>>), ApiError> {
    let paging = paging(query.as_deref())?;
    page(&state, caller, None, &paging).await
}

/// One event of any of the caller's instances.
#[utoipa::path(
    get, path = "/instances/events/{eventId}", tag = "events",
    params(("eventId" = String, Path, description = "Event id")),
    security(("UserOrganization" = [])),
    responses((status = 200, body = EventOut), CommonErrors)
)]
async fn get_any_event(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(event_id): Path<String>,
) -> Result<Json<EventOut>, ApiError> {
    one(&state, caller, None, &event_id).await
}

/// One event of the instance.
#[utoipa::path(
    get, path = "/instances/{id}/events/{eventId}", tag = "events",
    params(("id" = String, Path, description = "Instance id"),
        ("eventId" = String, Path, description = "Event id")),
    security(("UserOrganization" = [])),
    responses((status = 200, body = EventOut), CommonErrors)
)]
async fn get_event(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, event_id)): Path<(String, String)>,
) -> Result<Json<EventOut>, ApiError> {
    let row = find(&state, &caller, &id).await?;
    one(&state, caller.0, Some(row.id), &event_id).await
}

fn paging(query: Option<&str>) -> Result<Paging, ApiError> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    if let Some((key, _)) = pairs
        .iter()
        .find(|(key, _)| !matches!(key.as_str(), "page" | "pageSize" | "nextPage"))
    {
        return Err(ApiError::bad_request(format!(
            "unknown query parameter `{}`: expected `page`, `pageSize` or `nextPage`",
            key.chars().take(100).collect::<String>().escape_debug()
        )));
    }
    Paging::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

async fn page(
    state: &AppState,
    caller: Principal,
    instance: Option<InstanceId>,
    paging: &Paging,
) -> Result<(HeaderMap, Json<Vec<EventOut>>), ApiError> {
    let rows = state
        .engine
        .store()
        .organization_events(
            caller.organization_id,
            instance,
            paging.keyset()?,
            paging.offset(),
            paging.page_size,
        )
        .await?;
    let mut headers = HeaderMap::new();
    let last = rows
        .last()
        .map(|e| Paging::keyset_token(e.created_at.as_millisecond(), &e.id.0));
    if let Some((name, value)) = next_page_header(rows.len(), paging, last) {
        headers.insert(name, value);
    }
    Ok((headers, Json(events_out(state, rows).await?)))
}

async fn one(
    state: &AppState,
    caller: Principal,
    instance: Option<InstanceId>,
    event_id: &str,
) -> Result<Json<EventOut>, ApiError> {
    let row = state
        .engine
        .store()
        .organization_event(caller.organization_id, instance, event_id)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no event with id `{}`",
                event_id
                    .chars()
                    .take(100)
                    .collect::<String>()
                    .escape_debug()
            ))
        })?;
    let mut out = events_out(state, vec![row]).await?;
    out.pop()
        .map(Json)
        .ok_or_else(|| ApiError::internal("an event vanished while being shown"))
}

/// The events with their notifications' bodies and attempts (read once per notification).
pub(crate) async fn events_out(
    state: &AppState,
    rows: Vec<EventRow>,
) -> Result<Vec<EventOut>, ApiError> {
    let store = state.engine.store();
    let mut notifications: HashMap<NotificationId, (String, Vec<AttemptRow>)> = HashMap::new();
    for id in rows.iter().filter_map(|e| e.notification_id.as_ref()) {
        if notifications.contains_key(id) {
            continue;
        }
        if let Some(notification) = store.notification(id).await? {
            let attempts = store.list_attempts(id).await?;
            notifications.insert(id.clone(), (notification.body, attempts));
        }
    }
    Ok(rows
        .into_iter()
        .map(|e| {
            let delivery = e
                .notification_id
                .as_ref()
                .and_then(|id| notifications.get(id));
            let attempts = delivery.map(|(_, a)| a.as_slice()).unwrap_or_default();
            EventOut {
                status: status(&e.status, attempts.len()),
                provider_data: delivery
                    .map_or_else(|| e.record_json.clone(), |(body, _)| body.clone()),
                notified_data: attempts
                    .iter()
                    .map(|a| AttemptOut {
                        attempted_at: format_date(a.attempted_at),
                        status_code: a.status_code,
                        latency_ms: a.latency_ms,
                        error: a.error.clone(),
                        response_excerpt: a.response_excerpt.clone(),
                    })
                    .collect(),
                id: e.id.0,
                instance_id: e.instance_id.0,
                event_type: e.event_type,
                object_type: e.object_type,
                object_id: e.object_id,
                event_date: format_date(e.event_date),
                notification_id: e.notification_id.map(|n| n.0),
            }
        })
        .collect())
}

fn status(notification_status: &str, attempts: usize) -> EventStatus {
    match notification_status {
        "delivered" => EventStatus::Notified,
        "queued" | "cancelled" => EventStatus::Failed,
        "pending" if attempts > 0 => EventStatus::Dispatched,
        "pending" => EventStatus::New,
        _ => EventStatus::Received,
    }
}
