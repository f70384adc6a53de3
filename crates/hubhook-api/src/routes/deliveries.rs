//! Cloud Elements' queue API: `GET /notifications/subscriptions/deliveries?where=…` lists
//! deliveries, `PUT` on the same selection sends them again and reactivates the
//! subscriptions involved.
//!
//! A delivery is one of hubhook's notifications in Cloud Elements' delivery shape; the
//! subscription is the instance's webhook (`subscriptionId` = instance id, `channel` =
//! `webhook`, `config.url` = its callback URL). `where` is CEQL over `channel`, `status`
//! (Cloud Elements' names: `created` = not tried yet, `retry` = failed and retrying,
//! `delivered`, `queued`, `cancelled`), `config.url`, `subscriptionId` (or `instanceId`),
//! `notificationId`, `createdDate` and `updatedDate`; it is evaluated over the organization's
//! notifications, newest first, so unknown fields are a `400` and never an empty selection.
//! `PUT` sends again what is selected and not delivered (a delivered one is sent again only
//! by an explicit resend).

use std::collections::HashMap;

use axum::{
    Json,
    extract::{RawQuery, State},
    http::HeaderMap,
};
use hubhook_core::InstanceId;
use hubhook_core::ceql::{Expr, Literal, parse_where};
use hubhook_core::ceql_eval::{FieldValue, check_like_patterns, matches};
use hubhook_store::{NotificationFilter, NotificationRow, Redeliver};
use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::openapi::CommonErrors;
use crate::routes::notifications::{
    RedeliveryOut, after, api_status, format_date, list_query, next_page, redeliver_several,
};
use crate::{ApiError, AppState, auth::Caller};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_deliveries, redeliver_selection))
}

/// A delivery as Cloud Elements shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryOut {
    pub notification_id: String,
    pub subscription_id: i64,
    /// `created`, `retry`, `delivered`, `queued` or `cancelled`.
    pub status: &'static str,
    pub created_date: String,
    pub updated_date: String,
    /// The notification body, as sent.
    #[schema(value_type = Object)]
    pub notification: Value,
    pub subscription: SubscriptionOut,
}

/// The webhook subscription of an instance.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubscriptionOut {
    pub id: i64,
    /// Always `webhook`.
    pub channel: &'static str,
    pub topics: Vec<String>,
    pub config: SubscriptionConfig,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubscriptionConfig {
    pub url: String,
}

/// Query of the delivery API.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Only its OpenAPI description is used; the query is read by `list_query`.
pub struct DeliveriesQuery {
    /// CEQL, e.g. `channel='webhook' and status='queued'`; absent selects everything.
    #[param(rename = "where")]
    where_: Option<String>,
    /// 1 to 1000, default 200 (GET only).
    #[param(rename = "pageSize")]
    page_size: Option<u32>,
    /// The `Elements-Next-Page-Token` of the previous page (GET only).
    #[param(rename = "nextPage")]
    next_page: Option<String>,
}

/// The statuses `where` can compare `status` with (Cloud Elements' names).
const CE_STATUSES: &[&str] = &["created", "retry", "delivered", "queued"];

/// A `status` compared with a value no listed delivery can have (`'bogus'`, `'RETRY'`, and
/// `'cancelled'`: those are the notifications of deleted instances, which are not listed)
/// would select nothing without a word: refused, naming the statuses there are.
fn check_status_values(expr: &Expr) -> Result<(), String> {
    let check = |field: &str, value: &Literal| match value {
        Literal::String(text) if field == "status" && text == "cancelled" => Err(
            "`status` is never `cancelled` here: cancelled notifications belong to deleted \
             instances, which are not listed"
                .to_owned(),
        ),
        Literal::String(text) if field == "status" && !CE_STATUSES.contains(&text.as_str()) => {
            Err(format!(
                "`status` is never `{}`; it is one of {}",
                text.escape_debug(),
                CE_STATUSES.join(", ")
            ))
        }
        _ => Ok(()),
    };
    match expr {
        Expr::Compare { field, value, .. } => check(field, value),
        Expr::Like { .. } | Expr::IsNull { .. } => Ok(()),
        Expr::In { field, values, .. } => values.iter().try_for_each(|v| check(field, v)),
        Expr::And(terms) | Expr::Or(terms) => terms.iter().try_for_each(check_status_values),
        Expr::Group(inner) => check_status_values(inner),
    }
}

fn ce_status(row: &NotificationRow) -> &'static str {
    match api_status(row) {
        "pending" => "created",
        "failed" => "retry",
        "delivered" => "delivered",
        "queued" => "queued",
        _ => "cancelled",
    }
}

fn updated_at(row: &NotificationRow) -> jiff::Timestamp {
    row.delivered_at
        .or(row.next_attempt_at)
        .unwrap_or(row.created_at)
}

/// The fields `where` can name, for one notification (or for none: a sample of each field's
/// type, against which a `where` is checked before any notification is read, so that a typo or
/// a comparison of a date with a number is refused whether or not anything would be scanned).
fn field(row: Option<(&NotificationRow, &str)>, name: &str) -> Result<FieldValue, String> {
    let epoch = jiff::Timestamp::UNIX_EPOCH;
    Ok(match name {
        "channel" => FieldValue::Text("webhook".into()),
        "status" => FieldValue::Text(row.map_or("created", |(row, _)| ce_status(row)).into()),
        "config.url" => FieldValue::Text(row.map_or("", |(_, url)| url).into()),
        "subscriptionId" | "instanceId" => {
            FieldValue::Number(row.map_or(0, |(row, _)| row.instance_id.0))
        }
        "notificationId" => {
            FieldValue::Text(row.map_or(String::new(), |(row, _)| row.id.0.clone()))
        }
        "createdDate" => FieldValue::Time(row.map_or(epoch, |(row, _)| row.created_at)),
        "updatedDate" => FieldValue::Time(row.map_or(epoch, |(row, _)| updated_at(row))),
        other => {
            return Err(format!(
                "Error parsing query: unknown field `{}`, expected channel, status, config.url, subscriptionId, instanceId, notificationId, createdDate or updatedDate",
                other.escape_debug()
            ));
        }
    })
}

/// The selection: the caller's notifications matching `where`, scanned newest first from
/// `after`, until `want` match (or the end). Returns them with the last row scanned.
struct Selection {
    rows: Vec<NotificationRow>,
    urls: HashMap<InstanceId, String>,
}

async fn select(
    state: &AppState,
    caller: &Caller,
    where_: Option<&str>,
    after: Option<(jiff::Timestamp, hubhook_core::NotificationId)>,
    want: usize,
) -> Result<Selection, ApiError> {
    let expr: Option<Expr> = match where_.filter(|w| !w.trim().is_empty()) {
        Some(text) => {
            let expr =
                parse_where(text).map_err(|e| ApiError::bad_request(format!("`where`: {e}")))?;
            matches(&expr, &|name| field(None, name))
                .and_then(|_| check_status_values(&expr))
                .and_then(|()| check_like_patterns(&expr))
                .map_err(|e| ApiError::bad_request(format!("`where`: {e}")))?;
            Some(expr)
        }
        None => None,
    };
    let store = state.engine.store();
    let org = caller.0.organization_id;
    let urls: HashMap<InstanceId, String> = store
        .list_instances(org)
        .await?
        .into_iter()
        .map(|i| {
            let url = i
                .configuration
                .get("event.notification.callback.url")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            (i.id, url)
        })
        .collect();
    let mut filter = NotificationFilter {
        organization: org,
        instance: None,
        statuses: Vec::new(),
        since: None,
        until: None,
        after,
        limit: 500,
        // `where` names no field of the body; the rows a listing shows get theirs below.
        bodies: false,
    };
    let mut rows = Vec::new();
    loop {
        let page = store.find_notifications(filter.clone()).await?;
        let full = page.len() == filter.limit as usize;
        filter.after = page.last().map(|r| (r.created_at, r.id.clone()));
        for row in page {
            let url = urls
                .get(&row.instance_id)
                .map(String::as_str)
                .unwrap_or_default();
            let selected = match &expr {
                Some(expr) => matches(expr, &|name| field(Some((&row, url)), name))
                    .map_err(|e| ApiError::bad_request(format!("`where`: {e}")))?,
                None => true,
            };
            if selected {
                rows.push(row);
                if rows.len() == want {
                    return Ok(Selection { rows, urls });
                }
            }
        }
        if !full {
            return Ok(Selection { rows, urls });
        }
    }
}

/// List deliveries (Cloud Elements' queue retrieval), newest first.
#[utoipa::path(
    get, path = "/notifications/subscriptions/deliveries", tag = "delivery",
    params(DeliveriesQuery),
    security(("UserOrganization" = [])),
    responses((status = 200, body = Vec<DeliveryOut>, headers((
        "Elements-Next-Page-Token" = String, description = "The next page's token; absent on the last page"
    ))), CommonErrors)
)]
async fn list_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<(HeaderMap, Json<Vec<DeliveryOut>>), ApiError> {
    let (paging, others) = list_query(query.as_deref(), &["where"])?;
    let selection = select(
        &state,
        &caller,
        others.get("where").map(String::as_str),
        after(&paging)?,
        paging.page_size as usize,
    )
    .await?;
    let headers = next_page(&selection.rows, &paging);
    // The scan left the bodies out; the page's rows are read again with theirs (one read by
    // id each, at most a page of them). One deleted meanwhile is left out.
    let mut rows = Vec::with_capacity(selection.rows.len());
    for row in &selection.rows {
        if let Some(whole) = state.engine.store().notification(&row.id).await? {
            rows.push(whole);
        }
    }
    let deliveries = rows
        .iter()
        .map(|row| DeliveryOut {
            notification_id: row.id.0.clone(),
            subscription_id: row.instance_id.0,
            status: ce_status(row),
            created_date: format_date(row.created_at),
            updated_date: format_date(updated_at(row)),
            notification: serde_json::from_str(&row.body).unwrap_or(Value::Null),
            subscription: SubscriptionOut {
                id: row.instance_id.0,
                channel: "webhook",
                topics: Vec::new(),
                config: SubscriptionConfig {
                    url: selection
                        .urls
                        .get(&row.instance_id)
                        .cloned()
                        .unwrap_or_default(),
                },
            },
        })
        .collect();
    Ok((headers, Json(deliveries)))
}

/// Send the selected deliveries again (those not delivered) and reactivate their
/// subscriptions.
#[utoipa::path(
    put, path = "/notifications/subscriptions/deliveries", tag = "delivery",
    params(DeliveriesQuery),
    security(("UserOrganization" = [])),
    responses((status = 200, body = RedeliveryOut), CommonErrors)
)]
async fn redeliver_selection(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<RedeliveryOut>, ApiError> {
    let (_, others) = list_query(query.as_deref(), &["where"])?;
    let selection = select(
        &state,
        &caller,
        others.get("where").map(String::as_str),
        None,
        usize::MAX,
    )
    .await?;
    let mut by_instance: HashMap<InstanceId, Vec<(Timestamp, hubhook_core::NotificationId)>> =
        HashMap::new();
    for row in selection.rows {
        if !matches!(row.status.as_str(), "delivered" | "cancelled") {
            let entry = by_instance.entry(row.instance_id).or_default();
            entry.push((row.created_at, row.id));
        }
    }
    let mut runs: Vec<_> = by_instance.into_iter().collect();
    runs.sort_by_key(|(instance, _)| instance.0);
    let redelivered = redeliver_several(&state, runs, Redeliver::Undelivered).await?;
    Ok(Json(RedeliveryOut { redelivered }))
}
