//! `POST /elements/api-v2/events/connectwisecrmrest/{instanceId}[/{recordId}]`: the address a
//! user registers in ConnectWise (`system/callbacks`) so that changes reach hubhook at once
//! instead of at the next poll. ConnectWise appends the record id to the registered URL, so
//! both forms are answered.
//!
//! ConnectWise cannot send Cloud Elements' `Authorization` header: the request is
//! authenticated by its `x-content-signature`, checked against the key its `key_url` serves
//! on the instance's own ConnectWise site (see `hubhook_engine::connectwise_callbacks`). A
//! verified callback only makes polls due; nothing in its body is announced.

use axum::{
    Json,
    extract::{Path, State},
    http::HeaderMap,
};
use hubhook_core::{InstanceConfig, InstanceId, merge_secrets};
use hubhook_engine::ConnectWiseCallbackRefused;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::body::RawBody;
use crate::openapi::CommonErrors;
use crate::{ApiError, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(callback))
        .routes(routes!(callback_for_record))
}

/// The callback was verified.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallbackAccepted {
    pub instance_id: i64,
    /// The resources whose polls were made due (empty when the instance polls nothing of
    /// the callback's type).
    pub resources: Vec<String>,
}

/// A ConnectWise callback for an instance.
#[utoipa::path(
    post, path = "/events/connectwisecrmrest/{instanceId}", tag = "events",
    params(("instanceId" = String, Path, description = "Instance id")),
    request_body(content = String, description = "ConnectWise's callback message, signed in x-content-signature", content_type = "application/json"),
    responses(
        (status = 200, body = CallbackAccepted),
        (status = 502, description = "The signing key could not be read from ConnectWise", body = crate::error::ErrorBody),
        CommonErrors
    )
)]
async fn callback(
    State(state): State<AppState>,
    Path(instance): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<CallbackAccepted>, ApiError> {
    accept(&state, &instance, &headers, &body).await
}

/// A ConnectWise callback for an instance, with the record id ConnectWise appends.
#[utoipa::path(
    post, path = "/events/connectwisecrmrest/{instanceId}/{recordId}", tag = "events",
    params(
        ("instanceId" = String, Path, description = "Instance id"),
        ("recordId" = String, Path, description = "The changed record's id (informative)"),
    ),
    request_body(content = String, description = "ConnectWise's callback message, signed in x-content-signature", content_type = "application/json"),
    responses(
        (status = 200, body = CallbackAccepted),
        (status = 502, description = "The signing key could not be read from ConnectWise", body = crate::error::ErrorBody),
        CommonErrors
    )
)]
async fn callback_for_record(
    State(state): State<AppState>,
    Path((instance, _record)): Path<(String, String)>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<CallbackAccepted>, ApiError> {
    accept(&state, &instance, &headers, &body).await
}

async fn accept(
    state: &AppState,
    instance: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Json<CallbackAccepted>, ApiError> {
    // An id that is no instance's is answered like a callback for an instance whose site
    // its `key_url` is not on (`hubhook_engine::connectwise_callbacks`): a `404` would tell
    // strangers which ids exist.
    let id = instance
        .parse::<i64>()
        .ok()
        .filter(|_| instance.bytes().all(|b| b.is_ascii_digit()))
        .map(InstanceId);
    let engine = &state.engine;
    let row = match id {
        Some(id) => engine.store().instance(id).await?,
        None => None,
    };
    let config = row
        .map(|row| {
            InstanceConfig::parse(&merge_secrets(&row.configuration, &row.secrets))
                .map(|config| (row.id, config))
                .map_err(|e| ApiError::internal(format!("stored configuration is invalid: {e}")))
        })
        .transpose()?;
    let signature = headers
        .get("x-content-signature")
        .and_then(|value| value.to_str().ok());
    let resources = engine
        .accept_connectwise_callback(
            config.as_ref().map(|(id, config)| (*id, config)),
            body,
            signature,
        )
        .await
        .map_err(|refused| match refused {
            ConnectWiseCallbackRefused::BadMessage(message) => ApiError::bad_request(message),
            ConnectWiseCallbackRefused::Unauthorized(message) => ApiError::unauthorized(message),
            refused @ ConnectWiseCallbackRefused::KeyUnavailable(_) => {
                ApiError::new(axum::http::StatusCode::BAD_GATEWAY, refused.to_string())
            }
            ConnectWiseCallbackRefused::Store(err) => ApiError::from(err),
        })?;
    // Only a callback for an instance is ever accepted.
    let id = config
        .map(|(id, _)| id.0)
        .ok_or_else(|| ApiError::internal("a callback was accepted without an instance"))?;
    tracing::info!(instance = id, ?resources, "ConnectWise callback accepted");
    Ok(Json(CallbackAccepted {
        instance_id: id,
        resources,
    }))
}
