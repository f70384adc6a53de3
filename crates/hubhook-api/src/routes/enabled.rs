//! Disabling and enabling an instance: `DELETE|PUT /instances/{id}/enabled`, and
//! `DELETE|PUT /instances/enabled` for the instance of the `Element` token.
//!
//! A disabled instance keeps everything: its configuration, its poll jobs with their cursors,
//! and its notifications. The store leaves its jobs and its due notifications unclaimed (so it
//! neither polls nor delivers; notifications that fall due wait), and its hub calls answer 403
//! (`routes::hub::call`). Enabling makes the jobs claimable again: each resumes from its stored
//! cursor, so changes made in between are found by the next poll, and waiting notifications are
//! delivered; nothing is lost.

use axum::{
    Json,
    extract::{Path, State},
};
use hubhook_store::InstanceRow;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::{Caller, TokenInstance};
use crate::openapi::CommonErrors;
use crate::routes::instances::{InstanceOut, find, instance_out};
use crate::{ApiError, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(disable_instance, enable_instance))
        .routes(routes!(disable_token_instance, enable_token_instance))
}

/// Disable an instance: no polls, no deliveries, hub calls answer 403.
#[utoipa::path(
    delete, path = "/instances/{id}/enabled", tag = "instances",
    params(("id" = String, Path, description = "Instance id")),
    security(("UserOrganization" = [])),
    responses((status = 200, description = "The instance, disabled", body = InstanceOut), CommonErrors)
)]
async fn disable_instance(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<InstanceOut>, ApiError> {
    let row = find(&state, &caller, &id).await?;
    set_disabled(&state, &row, true).await
}

/// Enable an instance again: polling resumes from the stored cursors.
#[utoipa::path(
    put, path = "/instances/{id}/enabled", tag = "instances",
    params(("id" = String, Path, description = "Instance id")),
    security(("UserOrganization" = [])),
    responses((status = 200, description = "The instance, enabled", body = InstanceOut), CommonErrors)
)]
async fn enable_instance(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<InstanceOut>, ApiError> {
    let row = find(&state, &caller, &id).await?;
    set_disabled(&state, &row, false).await
}

/// Disable the instance of the `Element` token.
#[utoipa::path(
    delete, path = "/instances/enabled", tag = "instances",
    security(("UserOrganizationElement" = [])),
    responses((status = 200, description = "The instance, disabled", body = InstanceOut), CommonErrors)
)]
async fn disable_token_instance(
    State(state): State<AppState>,
    token: TokenInstance,
) -> Result<Json<InstanceOut>, ApiError> {
    set_disabled(&state, &token.instance, true).await
}

/// Enable the instance of the `Element` token.
#[utoipa::path(
    put, path = "/instances/enabled", tag = "instances",
    security(("UserOrganizationElement" = [])),
    responses((status = 200, description = "The instance, enabled", body = InstanceOut), CommonErrors)
)]
async fn enable_token_instance(
    State(state): State<AppState>,
    token: TokenInstance,
) -> Result<Json<InstanceOut>, ApiError> {
    set_disabled(&state, &token.instance, false).await
}

pub(crate) async fn set_disabled(
    state: &AppState,
    row: &InstanceRow,
    disabled: bool,
) -> Result<Json<InstanceOut>, ApiError> {
    let engine = &state.engine;
    let updated = engine
        .store()
        .set_instance_disabled(row.organization_id, row.id, disabled, engine.clock().now())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no instance with id {}", row.id)))?;
    tracing::info!(instance = %row.id, disabled, "instance enabled state changed");
    if !disabled {
        // Jobs and notifications that fell due meanwhile are due now.
        engine.wake_poller();
        engine.wake_dispatcher();
    }
    instance_out(state, &updated, None).await.map(Json)
}
