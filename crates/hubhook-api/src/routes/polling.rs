//! The poller as users see it: each resource's health, and decisions about mass deletes.
//!
//! - `GET /instances/{id}/health`: per resource, the last successful poll, the cursor and how
//!   far it lags, the last error and when, what the last poll read and announced, records it
//!   could not use, the reconciliation schedule, a held-back mass delete, and when it runs next.
//! - `POST /instances/{id}/mass-deletes/{resource}` with `{"action": "confirm" | "dismiss"}`:
//!   announce or forget the records a reconciliation held back.

use axum::{
    Json,
    extract::{Path, State},
};
use hubhook_store::{JobHealth, MassDeleteAction};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::body::JsonBody;
use crate::openapi::CommonErrors;
use crate::routes::instances::find;
use crate::{ApiError, AppState, auth::Caller};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(instance_health))
        .routes(routes!(decide_mass_delete))
}

/// An instance's pollers and deliveries.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceHealthOut {
    pub instance_id: i64,
    /// `ok` when every resource and the deliveries are ok; else the worst of them.
    pub status: HealthStatus,
    /// The instance is disabled: nothing is polled or delivered until it is enabled, so its
    /// resources' `nextRun` may be past.
    pub disabled: bool,
    pub resources: Vec<ResourceHealthOut>,
    pub deliveries: DeliveriesHealthOut,
}

/// How the instance's notifications are being delivered.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveriesHealthOut {
    /// `failing` while a notification waits for a retry after a failed attempt, or has run out
    /// of retries (`queued`, until recovered); else `ok`.
    pub status: HealthStatus,
    /// Pending notifications whose next attempt time has come.
    pub due: u64,
    /// Pending notifications that failed at least once and wait for a retry.
    pub failing: u64,
    /// Notifications whose retries ran out, kept until recovered (`POST /instances/{id}/recover`).
    pub queued: u64,
}

/// How a resource's poller is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum HealthStatus {
    /// Polling as configured.
    Ok,
    /// Not polled yet (the first poll is due or running).
    Pending,
    /// Polling, but something needs a look: records it cannot read, or a mass delete held
    /// back for a decision.
    Warning,
    /// The last poll failed; it is retried (see `nextRun`).
    Failing,
}

/// One resource's poller.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceHealthOut {
    pub resource: String,
    pub status: HealthStatus,
    /// The end of the last poll that succeeded.
    pub last_success: Option<String>,
    /// The latest updated date seen (ConnectWise's clock).
    pub cursor: Option<String>,
    /// Seconds between now and the cursor: how far behind a change may be found, at most.
    pub cursor_lag_seconds: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    pub next_run: String,
    /// A poll of the resource is running now.
    pub running: bool,
    /// Records the last poll read, and events it announced.
    pub records_seen: u64,
    pub events_emitted: u64,
    /// Records the last poll could not use (no id, an unreadable date), and why, for one.
    pub record_problems: u64,
    pub record_problem: Option<String>,
    pub last_reconciled: Option<String>,
    pub next_reconcile: Option<String>,
    /// Records that vanished at once beyond `massDeleteThreshold`, held back until confirmed
    /// or dismissed.
    pub mass_delete_held: Option<u64>,
}

impl ResourceHealthOut {
    fn new(job: JobHealth, now: Timestamp) -> ResourceHealthOut {
        let status = if job.last_error.is_some() {
            HealthStatus::Failing
        } else if job.last_success_at.is_none() {
            HealthStatus::Pending
        } else if job.mass_delete_held.is_some() || job.record_problems > 0 {
            HealthStatus::Warning
        } else {
            HealthStatus::Ok
        };
        ResourceHealthOut {
            resource: job.resource,
            status,
            last_success: job.last_success_at.map(date),
            cursor: job.cursor.map(date),
            cursor_lag_seconds: job
                .cursor
                .map(|cursor| now.duration_since(cursor).as_secs()),
            last_error: job.last_error,
            last_error_at: job.last_error_at.map(date),
            next_run: date(job.next_run_at),
            running: job.running,
            records_seen: job.records_seen,
            events_emitted: job.events_emitted,
            record_problems: job.record_problems,
            record_problem: job.record_problem,
            last_reconciled: job.last_reconciled_at.map(date),
            next_reconcile: job.next_reconcile_at.map(date),
            mass_delete_held: job.mass_delete_held,
        }
    }
}

fn date(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The health of each resource the instance polls, and of its deliveries.
#[utoipa::path(
    get, path = "/instances/{id}/health", tag = "instances",
    params(("id" = String, Path, description = "Instance id")),
    security(("UserOrganization" = [])),
    responses((status = 200, body = InstanceHealthOut), CommonErrors)
)]
async fn instance_health(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<InstanceHealthOut>, ApiError> {
    let row = find(&state, &caller, &id).await?;
    let delivery = state
        .engine
        .store()
        .delivery_health(
            row.organization_id,
            Some(row.id),
            state.engine.clock().now(),
        )
        .await?
        .into_iter()
        .next();
    health(&state, &row, delivery).await.map(Json)
}

/// The health of each resource the instance polls and of its deliveries, from its
/// organization's `delivery` counts (read once for a list of instances; `None`: nothing
/// undelivered): the route's answer, also shown by the console.
pub(crate) async fn health(
    state: &AppState,
    row: &hubhook_store::InstanceRow,
    delivery: Option<hubhook_store::DeliveryHealth>,
) -> Result<InstanceHealthOut, ApiError> {
    let now = state.engine.clock().now();
    let jobs = state.engine.store().poll_health(row.id, now).await?;
    let resources: Vec<ResourceHealthOut> = jobs
        .into_iter()
        .map(|job| ResourceHealthOut::new(job, now))
        .collect();
    let (due, failing, queued) = delivery.map_or((0, 0, 0), |c| (c.due, c.failing, c.queued));
    let deliveries = DeliveriesHealthOut {
        status: if failing + queued > 0 {
            HealthStatus::Failing
        } else {
            HealthStatus::Ok
        },
        due,
        failing,
        queued,
    };
    let status = resources
        .iter()
        .map(|r| r.status)
        .chain([deliveries.status])
        .max()
        .unwrap_or(HealthStatus::Ok);
    Ok(InstanceHealthOut {
        instance_id: row.id.0,
        status,
        disabled: row.disabled,
        resources,
        deliveries,
    })
}

/// What to do with a held-back mass delete; another field is refused, not ignored.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MassDeleteIn {
    /// `confirm`: announce the records as DELETED; `dismiss`: forget them without events.
    action: Option<String>,
}

/// The decision, recorded.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MassDeleteOut {
    pub instance_id: i64,
    pub resource: String,
    pub action: String,
}

/// Confirm or dismiss the mass delete a reconciliation held back; the next reconciliation,
/// made due now, carries it out.
#[utoipa::path(
    post, path = "/instances/{id}/mass-deletes/{resource}", tag = "instances",
    params(
        ("id" = String, Path, description = "Instance id"),
        ("resource" = String, Path, description = "Resource name, as in event.poller.configuration"),
    ),
    request_body = MassDeleteIn,
    security(("UserOrganization" = [])),
    responses((status = 200, body = MassDeleteOut), (status = 409, body = crate::error::ErrorBody), CommonErrors)
)]
async fn decide_mass_delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, resource)): Path<(String, String)>,
    JsonBody(body): JsonBody<MassDeleteIn>,
) -> Result<Json<MassDeleteOut>, ApiError> {
    let action = match body.action.as_deref() {
        Some(text) => MassDeleteAction::parse(text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "`action`: got `{}`, expected `confirm` or `dismiss`",
                text.escape_debug()
            ))
        })?,
        None => {
            return Err(ApiError::bad_request(
                "`action` is required: `confirm` or `dismiss`",
            ));
        }
    };
    let row = find(&state, &caller, &id).await?;
    let engine = &state.engine;
    let decided = engine
        .store()
        .resolve_mass_delete(row.id, &resource, action, engine.clock().now())
        .await?;
    if !decided {
        return Err(ApiError::conflict(format!(
            "resource `{}` of instance {} holds no mass delete to decide",
            resource.escape_debug(),
            row.id
        )));
    }
    engine.wake_poller();
    Ok(Json(MassDeleteOut {
        instance_id: row.id.0,
        resource,
        action: action.as_str().to_string(),
    }))
}
