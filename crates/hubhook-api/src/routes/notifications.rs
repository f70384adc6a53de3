//! Operations on deliveries, under `/elements/api-v2`:
//!
//! - `GET /instances/{id}/notifications?status=&pageSize=&nextPage=`: the instance's
//!   notifications, newest first, with their event ids and attempt counts; the next page's
//!   token in `Elements-Next-Page-Token` (absent on the last page).
//! - `GET /notifications/{notificationId}/attempts`: every attempt (time, status, latency,
//!   error, the first 1 KB of the answer, outcome).
//! - `POST /notifications/{notificationId}/resend`: send it again now (even if delivered).
//! - `POST /instances/{id}/recover` `{"since": RFC 3339}`: everything failed or queued
//!   created since then is sent again.
//!
//! Sending again makes the notification due now with a fresh retry schedule and reactivates
//! the instance's subscription; the attempt history is kept (attempts are only added). A
//! notification of another organization's instance is a `404`, as if it did not exist.

use std::collections::HashMap;

use axum::{
    Json,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, StatusCode},
};
use hubhook_core::{InstanceId, NotificationId};
use hubhook_store::{NotificationFilter, NotificationRow, OrganizationId, Redeliver};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::body::JsonBody;
use crate::openapi::CommonErrors;
use crate::paging::{Paging, next_page_header};
use crate::routes::instances::find;
use crate::{ApiError, AppState, auth::Caller};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_notifications))
        .routes(routes!(list_attempts))
        .routes(routes!(resend))
        .routes(routes!(recover))
}

/// A notification: one POST body carrying up to 10 events.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationOut {
    /// Also `Elements-Webhook-Id`, `webhook-id` and `message.eventId`.
    pub id: String,
    pub instance_id: i64,
    /// `pending` (due, not failed yet), `failed` (failed, retry scheduled), `delivered`,
    /// `queued` (waiting for a redelivery) or `cancelled` (its instance was deleted).
    pub status: String,
    /// The stable ids of the events it carries.
    pub event_ids: Vec<String>,
    /// Attempts made so far.
    pub attempts: u64,
    pub created_date: String,
    pub next_attempt_date: Option<String>,
    pub delivered_date: Option<String>,
    /// For a replay (`POST /instances/{id}/replay`), the notification it replays.
    pub replay_of: Option<String>,
}

/// The status users see: a pending notification that has failed is `failed`.
pub(crate) fn api_status(row: &NotificationRow) -> &str {
    if row.status == "pending" && row.failed_attempts > 0 {
        "failed"
    } else {
        &row.status
    }
}

pub(crate) fn format_date(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The event ids in a stored body (`message.events[].id`).
pub(crate) fn event_ids(body: &str) -> Vec<String> {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["message"]["events"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e["id"].as_str().map(str::to_owned))
        .collect()
}

async fn notifications_out(
    state: &AppState,
    rows: &[NotificationRow],
) -> Result<Vec<NotificationOut>, ApiError> {
    let ids: Vec<NotificationId> = rows.iter().map(|r| r.id.clone()).collect();
    let counts = state.engine.store().attempt_counts(&ids).await?;
    Ok(rows
        .iter()
        .zip(counts)
        .map(|(row, attempts)| NotificationOut {
            id: row.id.0.clone(),
            instance_id: row.instance_id.0,
            status: api_status(row).to_string(),
            event_ids: event_ids(&row.body),
            attempts,
            created_date: format_date(row.created_at),
            next_attempt_date: row.next_attempt_at.map(format_date),
            delivered_date: row.delivered_at.map(format_date),
            replay_of: row.replay_of.as_ref().map(|id| id.0.clone()),
        })
        .collect())
}

/// Query of notification lists.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Only its OpenAPI description is used; the query is read by `list_query`.
pub struct NotificationsQuery {
    /// `pending`, `failed`, `delivered`, `queued` or `cancelled`; several separated by commas.
    status: Option<String>,
    /// 1 to 1000, default 200.
    #[param(rename = "pageSize")]
    page_size: Option<u32>,
    /// The `Elements-Next-Page-Token` of the previous page.
    #[param(rename = "nextPage")]
    next_page: Option<String>,
}

const STATUSES: [&str; 5] = ["pending", "failed", "delivered", "queued", "cancelled"];

/// The paging (`pageSize`, `nextPage`) of a notification list and its other parameters (each
/// at most once), refusing any parameter not in `known`. Lists are keysets: `page` is not
/// offered.
pub(crate) fn list_query(
    query: Option<&str>,
    known: &[&str],
) -> Result<(Paging, HashMap<String, String>), ApiError> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let mut others = HashMap::new();
    for (key, value) in &pairs {
        if matches!(key.as_str(), "pageSize" | "nextPage") {
            continue;
        }
        if !known.contains(&key.as_str()) {
            return Err(ApiError::bad_request(format!(
                "unknown query parameter `{}`: expected {}, `pageSize` or `nextPage`",
                key.chars().take(100).collect::<String>().escape_debug(),
                known
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if others.insert(key.clone(), value.clone()).is_some() {
            return Err(ApiError::bad_request(format!(
                "`{key}` is given twice, expected it at most once"
            )));
        }
    }
    let paging = Paging::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    Ok((paging, others))
}

/// The `Elements-Next-Page-Token` of a full page of notifications.
pub(crate) fn next_page(rows: &[NotificationRow], paging: &Paging) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let last = rows
        .last()
        .map(|r| Paging::keyset_token(r.created_at.as_millisecond(), &r.id.0));
    if let Some((name, value)) = next_page_header(rows.len(), paging, last) {
        headers.insert(name, value);
    }
    headers
}

/// The keyset position of a page token.
pub(crate) fn after(paging: &Paging) -> Result<Option<(Timestamp, NotificationId)>, ApiError> {
    Ok(match paging.keyset()? {
        Some((ms, id)) => Some((
            Timestamp::from_millisecond(ms).map_err(|_| {
                ApiError::bad_request("`nextPage` is not a page token of this list")
            })?,
            NotificationId(id),
        )),
        None => None,
    })
}

/// The instance's notifications, newest first.
#[utoipa::path(
    get, path = "/instances/{id}/notifications", tag = "delivery",
    params(("id" = String, Path, description = "Instance id"), NotificationsQuery),
    security(("UserOrganization" = [])),
    responses((status = 200, body = Vec<NotificationOut>, headers((
        "Elements-Next-Page-Token" = String, description = "The next page's token; absent on the last page"
    ))), CommonErrors)
)]
async fn list_notifications(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<(HeaderMap, Json<Vec<NotificationOut>>), ApiError> {
    let (paging, others) = list_query(query.as_deref(), &["status"])?;
    let statuses = match others
        .get("status")
        .map(String::as_str)
        .filter(|s| !s.is_empty())
    {
        None => Vec::new(),
        Some(text) => text
            .split(',')
            .map(|s| {
                let s = s.trim();
                if STATUSES.contains(&s) {
                    Ok(s.to_string())
                } else {
                    Err(ApiError::bad_request(format!(
                        "`status`: got `{}`, expected one of {} (several separated by commas)",
                        s.escape_debug(),
                        STATUSES.join(", ")
                    )))
                }
            })
            .collect::<Result<_, _>>()?,
    };
    let instance = find(&state, &caller, &id).await?;
    let rows = state
        .engine
        .store()
        .find_notifications(NotificationFilter {
            organization: caller.0.organization_id,
            instance: Some(instance.id),
            statuses,
            since: None,
            until: None,
            after: after(&paging)?,
            limit: paging.page_size,
            bodies: true,
        })
        .await?;
    let headers = next_page(&rows, &paging);
    Ok((headers, Json(notifications_out(&state, &rows).await?)))
}

/// A notification id from a path: what hubhook makes (UUID-formatted), at most 100 characters.
fn parse_notification_id(id: &str) -> Result<NotificationId, ApiError> {
    if id.is_empty() || id.len() > 100 || !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Err(ApiError::bad_request(format!(
            "notification id `{}` is not valid: expected a UUID-formatted id such as `4fa1c2d0-0b1e-8c3a-9f00-1234567890ab`",
            id.escape_debug()
        )));
    }
    Ok(NotificationId(id.to_string()))
}

/// The caller's notification with this id, or 404 (also for another organization's).
async fn find_notification(
    state: &AppState,
    org: OrganizationId,
    id: &str,
) -> Result<NotificationRow, ApiError> {
    let id = parse_notification_id(id)?;
    let store = state.engine.store();
    let not_found = || ApiError::not_found(format!("no notification with id {}", id.0));
    let row = store.notification(&id).await?.ok_or_else(not_found)?;
    store
        .get_instance(org, row.instance_id)
        .await?
        .ok_or_else(not_found)?;
    Ok(row)
}

/// One delivery attempt.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptOut {
    pub attempted_date: String,
    /// The receiver's HTTP status; absent when there was no answer.
    pub status_code: Option<u16>,
    pub latency_ms: i64,
    /// Why it failed (the callback URL shown without its query string).
    pub error: Option<String>,
    /// The first 1 KB of the receiver's answer.
    pub response_excerpt: Option<String>,
    /// `delivered`, `retry`, `queued`, `deactivated` (the subscription was deactivated) or
    /// `started` (no answer recorded: in flight now, or the node stopped during it).
    pub outcome: String,
}

/// Every attempt of a notification, oldest first.
#[utoipa::path(
    get, path = "/notifications/{notificationId}/attempts", tag = "delivery",
    params(("notificationId" = String, Path, description = "Notification id")),
    security(("UserOrganization" = [])),
    responses((status = 200, body = Vec<AttemptOut>), CommonErrors)
)]
async fn list_attempts(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<AttemptOut>>, ApiError> {
    let row = find_notification(&state, caller.0.organization_id, &id).await?;
    let attempts = state.engine.store().list_attempts(&row.id).await?;
    Ok(Json(
        attempts
            .into_iter()
            .map(|a| AttemptOut {
                attempted_date: format_date(a.attempted_at),
                status_code: a.status_code,
                latency_ms: a.latency_ms,
                error: a.error,
                response_excerpt: a.response_excerpt,
                outcome: a.outcome,
            })
            .collect(),
    ))
}

/// How many notifications were made due again.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RedeliveryOut {
    pub redelivered: u64,
}

/// Makes these notifications of one instance (with their creation times) due now, oldest
/// first, and wakes the dispatcher; `which` says whether one delivered by now is sent again.
/// On SQLite the store makes a large list due a part per write (`Store::redeliver`), so in
/// this order the oldest are sent first.
pub(crate) async fn redeliver(
    state: &AppState,
    instance: InstanceId,
    notifications: Vec<(Timestamp, NotificationId)>,
    which: Redeliver,
) -> Result<u64, ApiError> {
    let engine = &state.engine;
    let due = engine
        .store()
        .redeliver(
            instance,
            oldest_first(notifications),
            which,
            engine.clock().now(),
        )
        .await?;
    engine.wake_dispatcher();
    tracing::info!(instance = %instance, due, "redelivery requested");
    Ok(due)
}

/// [`redeliver`] for several instances as one request (`Store::redeliver_several`: all of
/// them are finished even if the node stops or the caller goes away halfway).
pub(crate) async fn redeliver_several(
    state: &AppState,
    runs: Vec<(InstanceId, Vec<(Timestamp, NotificationId)>)>,
    which: Redeliver,
) -> Result<u64, ApiError> {
    let engine = &state.engine;
    let instances = runs.len();
    let runs = runs
        .into_iter()
        .map(|(instance, notifications)| (instance, oldest_first(notifications)))
        .collect();
    let due = engine
        .store()
        .redeliver_several(runs, which, engine.clock().now())
        .await?;
    engine.wake_dispatcher();
    tracing::info!(instances, due, "redelivery requested");
    Ok(due)
}

/// The ids, oldest first: by creation time, then id.
fn oldest_first(mut notifications: Vec<(Timestamp, NotificationId)>) -> Vec<NotificationId> {
    notifications.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.0.cmp(&b.1.0)));
    notifications.into_iter().map(|(_, id)| id).collect()
}

/// Send a notification again now (delivered or not), with a fresh retry schedule; reactivates
/// its instance's subscription. `redelivered` is 0 when it is being delivered right now or
/// its instance was deleted.
#[utoipa::path(
    post, path = "/notifications/{notificationId}/resend", tag = "delivery",
    params(("notificationId" = String, Path, description = "Notification id")),
    security(("UserOrganization" = [])),
    responses((status = 202, body = RedeliveryOut), CommonErrors)
)]
async fn resend(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<RedeliveryOut>), ApiError> {
    let redelivered = resend_one(&state, caller.0.organization_id, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(RedeliveryOut { redelivered })))
}

/// Sends one of the organization's notifications again (the route's work, also the console's).
pub(crate) async fn resend_one(
    state: &AppState,
    org: OrganizationId,
    id: &str,
) -> Result<u64, ApiError> {
    let row = find_notification(state, org, id).await?;
    redeliver(
        state,
        row.instance_id,
        vec![(row.created_at, row.id)],
        Redeliver::Any,
    )
    .await
}

/// `POST /instances/{id}/recover` body; another field is refused, not ignored.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoverIn {
    /// RFC 3339: notifications created at or after this instant.
    since: Option<String>,
}

/// Send again every failed or queued notification of the instance created since `since`.
#[utoipa::path(
    post, path = "/instances/{id}/recover", tag = "delivery",
    params(("id" = String, Path, description = "Instance id")),
    request_body = RecoverIn,
    security(("UserOrganization" = [])),
    responses((status = 202, body = RedeliveryOut), CommonErrors)
)]
async fn recover(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<RecoverIn>,
) -> Result<(StatusCode, Json<RedeliveryOut>), ApiError> {
    let since = parse_instant("since", body.since.as_deref())?;
    let instance = find(&state, &caller, &id).await?;
    let redelivered = recover_since(&state, &instance, since).await?;
    Ok((StatusCode::ACCEPTED, Json(RedeliveryOut { redelivered })))
}

/// Sends again every failed or queued notification of the instance created since `since` (the
/// route's work, also the console's).
pub(crate) async fn recover_since(
    state: &AppState,
    instance: &hubhook_store::InstanceRow,
    since: Timestamp,
) -> Result<u64, ApiError> {
    let mut filter = NotificationFilter {
        organization: instance.organization_id,
        instance: Some(instance.id),
        statuses: vec!["failed".into(), "queued".into()],
        since: Some(since),
        until: None,
        after: None,
        limit: 1000,
        bodies: false,
    };
    let mut ids = Vec::new();
    loop {
        let rows = state
            .engine
            .store()
            .find_notifications(filter.clone())
            .await?;
        let full = rows.len() == filter.limit as usize;
        filter.after = rows.last().map(|r| (r.created_at, r.id.clone()));
        ids.extend(rows.into_iter().map(|r| (r.created_at, r.id)));
        if !full {
            break;
        }
    }
    redeliver(state, instance.id, ids, Redeliver::Undelivered).await
}

/// A required RFC 3339 instant of a request body.
pub(crate) fn parse_instant(field: &str, text: Option<&str>) -> Result<Timestamp, ApiError> {
    let expected = "expected an RFC 3339 date-time such as `2026-01-31T09:00:00Z`";
    let text =
        text.ok_or_else(|| ApiError::bad_request(format!("`{field}` is required: {expected}")))?;
    // The reason says what is wrong with a date-time of the right shape (a year past what
    // can be counted in, 9999-12-31, is one).
    hubhook_core::parse_instant(text).map_err(|reason| {
        ApiError::bad_request(format!(
            "`{field}`: got `{}`, {expected}: {reason}",
            text.chars().take(60).collect::<String>().escape_debug()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recovery's selection comes newest first; it is made due oldest first (creation
    /// time, then id), none left out or repeated.
    #[test]
    fn a_redelivery_goes_oldest_first() {
        let t0 = Timestamp::from_second(1_700_000_000).unwrap();
        let newest_first: Vec<_> = (0..2_500i64)
            .rev()
            .map(|n| {
                let at = t0 + jiff::SignedDuration::from_millis(n / 2);
                (at, NotificationId(format!("n-{n:04}")))
            })
            .collect();
        let ids: Vec<String> = oldest_first(newest_first)
            .into_iter()
            .map(|id| id.0)
            .collect();
        let expected: Vec<String> = (0..2_500).map(|n| format!("n-{n:04}")).collect();
        assert_eq!(ids, expected);
    }
}
