//! `/accounts/{id}/settings`: an organization's delivery settings, as Cloud Elements sets its
//! failure policy (`POST|PATCH` with `{"notification.webhook.failure.policy": "retry" |
//! "queue"}`, read with `GET`).
//!
//! hubhook's organization is Cloud Elements' account: the id is the caller's organization id,
//! and any other id is a `404` (another organization's settings are not even confirmed to
//! exist). `POST` and `PATCH` both set the keys given and keep the others; unknown keys and bad
//! values are refused with nothing stored. The dispatcher sees a change at its next claim (the
//! settings' update time is part of its cache key).

use axum::{
    Json,
    extract::{Path, State},
};
use hubhook_core::{DeliverySettings, FailurePolicy, SchedulePreset};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::body::JsonBody;
use crate::openapi::CommonErrors;
use crate::{ApiError, AppState, auth::Caller};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_settings, post_settings, patch_settings))
}

/// An account's delivery settings, defaults included.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsOut {
    /// `retry` (default): retry on the schedule, then deactivate and queue; `queue`:
    /// deactivate and queue at the first failure.
    #[serde(rename = "notification.webhook.failure.policy")]
    pub failure_policy: &'static str,
    /// hubhook: `default` (Cloud Elements' 9 retries at 4^x s) or `short` (5 s, 5 min, 30 min,
    /// 2 h, 5 h, 10 h).
    #[serde(rename = "notification.webhook.retry.schedule")]
    pub retry_schedule: &'static str,
}

impl From<DeliverySettings> for SettingsOut {
    fn from(settings: DeliverySettings) -> SettingsOut {
        SettingsOut {
            failure_policy: match settings.failure_policy {
                FailurePolicy::Retry => "retry",
                FailurePolicy::Queue => "queue",
            },
            retry_schedule: match settings.schedule {
                SchedulePreset::Default => "default",
                SchedulePreset::Short => "short",
            },
        }
    }
}

/// The caller's organization if `id` names it, else 404.
fn account(caller: &Caller, id: &str) -> Result<hubhook_store::OrganizationId, ApiError> {
    let org = caller.0.organization_id;
    if id != org.0.to_string() {
        return Err(ApiError::not_found(format!(
            "no account with id `{}`; your account id is {}",
            id.escape_debug(),
            org.0
        )));
    }
    Ok(org)
}

async fn read(
    state: &AppState,
    org: hubhook_store::OrganizationId,
) -> Result<SettingsOut, ApiError> {
    let stored = state.engine.store().organization_settings(org).await?;
    let settings = DeliverySettings::parse(&stored).map_err(ApiError::internal)?;
    Ok(settings.into())
}

async fn write(
    state: &AppState,
    caller: &Caller,
    id: &str,
    body: Map<String, Value>,
) -> Result<Json<SettingsOut>, ApiError> {
    let org = account(caller, id)?;
    DeliverySettings::parse(&body).map_err(ApiError::bad_request)?;
    let engine = &state.engine;
    engine
        .store()
        .update_organization_settings(org, body, engine.clock().now())
        .await?;
    tracing::info!(organization = %org.0, "account settings changed");
    Ok(Json(read(state, org).await?))
}

/// The account's delivery settings.
#[utoipa::path(
    get, path = "/accounts/{id}/settings", tag = "delivery",
    params(("id" = String, Path, description = "Account (organization) id")),
    security(("UserOrganization" = [])),
    responses((status = 200, body = SettingsOut), CommonErrors)
)]
async fn get_settings(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SettingsOut>, ApiError> {
    let org = account(&caller, &id)?;
    Ok(Json(read(&state, org).await?))
}

/// Set delivery settings (`notification.webhook.failure.policy`,
/// `notification.webhook.retry.schedule`); keys not given keep their values.
#[utoipa::path(
    post, path = "/accounts/{id}/settings", tag = "delivery",
    params(("id" = String, Path, description = "Account (organization) id")),
    request_body(content = Object, description = "Settings to set, by key"),
    security(("UserOrganization" = [])),
    responses((status = 200, body = SettingsOut), CommonErrors)
)]
async fn post_settings(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> Result<Json<SettingsOut>, ApiError> {
    write(&state, &caller, &id, body).await
}

/// The same as `POST`.
#[utoipa::path(
    patch, path = "/accounts/{id}/settings", tag = "delivery",
    params(("id" = String, Path, description = "Account (organization) id")),
    request_body(content = Object, description = "Settings to set, by key"),
    security(("UserOrganization" = [])),
    responses((status = 200, body = SettingsOut), CommonErrors)
)]
async fn patch_settings(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> Result<Json<SettingsOut>, ApiError> {
    write(&state, &caller, &id, body).await
}
