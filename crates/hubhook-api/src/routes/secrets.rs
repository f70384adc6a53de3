//! Rotating secrets: `POST /organizations/{id}/secret` and `POST /users/{id}/secret` make a new
//! organization or user secret, return it once, and end the old one at once. A caller can only
//! rotate its own organization's secret and the secrets of its organization's users; any other
//! id is a 404, as if it did not exist.

use axum::{
    Json,
    extract::{Path, State},
};
use hubhook_store::{OrganizationId, UserId};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::{Caller, fresh_secret};
use crate::openapi::CommonErrors;
use crate::{ApiError, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(rotate_organization_secret))
        .routes(routes!(rotate_user_secret))
}

/// A new secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotatedOut {
    pub id: i64,
    pub secret: String,
}

fn parse_id(kind: &str, id: &str) -> Result<i64, ApiError> {
    if id.is_empty() || id.len() > 18 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad_request(format!(
            "{kind} id `{}` is not valid: expected a positive whole number of at most 18 digits",
            id.chars().take(40).collect::<String>().escape_debug()
        )));
    }
    id.parse()
        .map_err(|_| ApiError::bad_request(format!("{kind} id is not valid")))
}

/// Replace the caller's organization secret; every user of the organization needs the new one.
#[utoipa::path(
    post, path = "/organizations/{id}/secret", tag = "users",
    params(("id" = String, Path, description = "The caller's organization id")),
    security(("UserOrganization" = [])),
    responses((status = 200, body = RotatedOut), CommonErrors)
)]
async fn rotate_organization_secret(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<RotatedOut>, ApiError> {
    let id = parse_id("organization", &id)?;
    let not_found = || ApiError::not_found(format!("no organization with id {id}"));
    if id != caller.organization_id.0 {
        return Err(not_found());
    }
    let secret = fresh_secret().map_err(ApiError::internal)?;
    let plain = secret.plain.clone();
    if !state
        .engine
        .store()
        .rotate_organization_secret(OrganizationId(id), secret)
        .await?
    {
        return Err(not_found());
    }
    tracing::info!(organization = id, "organization secret rotated");
    Ok(Json(RotatedOut { id, secret: plain }))
}

/// Replace the secret of a user of the caller's organization.
#[utoipa::path(
    post, path = "/users/{id}/secret", tag = "users",
    params(("id" = String, Path, description = "A user of the caller's organization")),
    security(("UserOrganization" = [])),
    responses((status = 200, body = RotatedOut), CommonErrors)
)]
async fn rotate_user_secret(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<RotatedOut>, ApiError> {
    let id = parse_id("user", &id)?;
    let secret = fresh_secret().map_err(ApiError::internal)?;
    let plain = secret.plain.clone();
    if !state
        .engine
        .store()
        .rotate_user_secret(caller.organization_id, UserId(id), secret)
        .await?
    {
        return Err(ApiError::not_found(format!("no user with id {id}")));
    }
    tracing::info!(user = id, "user secret rotated");
    Ok(Json(RotatedOut { id, secret: plain }))
}
