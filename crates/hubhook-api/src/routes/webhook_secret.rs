//! Standard Webhooks secrets of instances (`whsec_…`).
//!
//! An instance gets its secret at creation, shown once in the answer (`webhookSecret`), like
//! the instance token: it is stored encrypted and never shown again. `POST
//! /instances/{id}/webhook-secret` replaces it and answers the new one; the old secret keeps
//! signing beside the new one (two signatures in `webhook-signature`) for
//! `--webhook-secret-overlap`, so a receiver can switch without refusing a delivery.

use axum::{
    Json,
    extract::{Path, State},
};
use hubhook_core::InstanceId;
use hubhook_core::WebhookSecret;
use hubhook_store::OrganizationId;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::openapi::CommonErrors;
use crate::routes::instances::find;
use crate::{ApiError, AppState, auth::Caller};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(rotate_webhook_secret))
}

/// A new Standard Webhooks secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSecretOut {
    /// `whsec_` and the standard base64 of 24 random bytes.
    pub webhook_secret: String,
}

/// A fresh `whsec_` secret of 24 random bytes (192 bits, as Svix makes them).
fn generate() -> Result<WebhookSecret, ApiError> {
    let mut bytes = vec![0u8; 24];
    getrandom::fill(&mut bytes).map_err(ApiError::internal)?;
    Ok(WebhookSecret::from_bytes(bytes))
}

/// Gives the instance a new secret; the one it replaces (if any) signs beside it for the
/// configured overlap. Returns the new secret's text, or `None` when the organization has no
/// such instance.
pub(crate) async fn set_new_secret(
    state: &AppState,
    org: OrganizationId,
    instance: InstanceId,
) -> Result<Option<String>, ApiError> {
    let engine = &state.engine;
    let secret = generate()?.expose();
    let found = engine
        .store()
        .rotate_webhook_secret(
            org,
            instance,
            secret.clone(),
            engine.clock().now(),
            engine.config().webhook_secret_overlap,
        )
        .await?;
    Ok(found.then_some(secret))
}

/// Rotate the instance's Standard Webhooks secret. The replaced secret keeps signing beside
/// the new one for the server's overlap (default 24 h), and so does each earlier one until its
/// own overlap ends (at most 10 replaced secrets).
#[utoipa::path(
    post, path = "/instances/{id}/webhook-secret", tag = "delivery",
    params(("id" = String, Path, description = "Instance id")),
    security(("UserOrganization" = [])),
    responses((status = 200, description = "The new secret, shown once", body = WebhookSecretOut), CommonErrors)
)]
async fn rotate_webhook_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<WebhookSecretOut>, ApiError> {
    let row = find(&state, &caller, &id).await?;
    let webhook_secret = set_new_secret(&state, caller.0.organization_id, row.id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no instance with id {}", row.id)))?;
    tracing::info!(instance = %row.id, "webhook secret rotated");
    Ok(Json(WebhookSecretOut { webhook_secret }))
}
