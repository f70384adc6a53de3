//! An instance's configuration as Cloud Elements' configuration records: `GET
//! /instances/{id}/configuration`, `GET|PATCH /instances/{id}/configuration/{configId}`, and
//! the same under `/instances/configuration` for the instance of the `Element` token.
//!
//! A record is one configuration key. Its `id` is derived from the key (a stable hash), not
//! stored, so it is the same for a key on every read and on every instance, and needs no table
//! of its own; hubhook configurations hold a few dozen keys, far from any chance of two keys
//! sharing an id. A PATCH is a PATCH of the instance with that one key
//! (`instance_updates::patch`): checked as a whole like a create, stored only if valid, in
//! effect from the next poll or delivery.

use axum::{
    Json,
    extract::{Path, State},
};
use hubhook_core::mask_secrets;
use hubhook_store::InstanceRow;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::{Caller, TokenInstance};
use crate::body::JsonBody;
use crate::element::configuration_field;
use crate::openapi::{ChangedMeanwhile, CommonErrors, ConnectWiseUnavailable};
use crate::routes::instance_updates::patch;
use crate::routes::instances::{InstanceIn, find};
use crate::{ApiError, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_records))
        .routes(routes!(get_record, patch_record))
        .routes(routes!(list_token_records))
        .routes(routes!(get_token_record, patch_token_record))
}

/// One configuration key of an instance. Secret values are `********`; values that are not
/// strings (objects such as `event.poller.configuration`, booleans) are shown as JSON text.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationRecordOut {
    pub id: i64,
    pub key: String,
    pub name: String,
    pub property_value: String,
    pub hidden: bool,
}

/// A PATCH of one record: its new `propertyValue` (a string, or any JSON value; `null` removes
/// the key). `id`, `key` and the other fields of a record read back may be sent; a `key` that
/// is not the record's is refused.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigurationRecordIn {
    #[schema(value_type = Option<String>)]
    #[serde(default, deserialize_with = "present")]
    property_value: Option<Value>,
    key: Option<String>,
    /// A read's own fields: `id` must be the record's own if given (as `key`); the others
    /// are accepted and ignored; any other field is refused, not ignored.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    id: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    #[allow(dead_code)]
    name: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    #[allow(dead_code)]
    hidden: Option<Value>,
    /// The fields of the element's configuration records (`GET /elements/{key}/configuration`)
    /// and of Cloud Elements' own, so that a body made from one of those is read too; ignored.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    #[allow(dead_code)]
    default_value: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    #[allow(dead_code)]
    required: Option<Value>,
    #[serde(default, rename = "type")]
    #[schema(value_type = Option<Object>)]
    #[allow(dead_code)]
    kind: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    #[allow(dead_code)]
    description: Option<Value>,
}

/// `Some(Value::Null)` for an explicit `null`, `None` only when the field is absent.
fn present<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(de).map(Some)
}

/// The stable id of a configuration key: FNV-1a, kept to 31 bits so that every client reads it
/// as a positive number.
pub fn record_id(key: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    i64::try_from(hash & 0x7fff_ffff).unwrap_or(0) + 1
}

fn records(row: &InstanceRow) -> Vec<ConfigurationRecordOut> {
    let mut records: Vec<ConfigurationRecordOut> = mask_secrets(&row.configuration)
        .into_iter()
        .map(|(key, value)| {
            let field = configuration_field(&key);
            ConfigurationRecordOut {
                id: record_id(&key),
                name: field
                    .as_ref()
                    .map_or_else(|| key.clone(), |f| f.name.to_string()),
                hidden: field.as_ref().is_some_and(|f| f.hidden),
                property_value: match value {
                    Value::String(text) => text,
                    other => other.to_string(),
                },
                key,
            }
        })
        .collect();
    records.sort_by(|a, b| a.key.cmp(&b.key));
    records
}

fn record(row: &InstanceRow, config_id: &str) -> Result<ConfigurationRecordOut, ApiError> {
    let not_found = || {
        ApiError::not_found(format!(
            "instance {} has no configuration record `{}`",
            row.id,
            config_id
                .chars()
                .take(40)
                .collect::<String>()
                .escape_debug()
        ))
    };
    let id: i64 = config_id.parse().map_err(|_| not_found())?;
    records(row)
        .into_iter()
        .find(|record| record.id == id)
        .ok_or_else(not_found)
}

async fn patch_one(
    state: &AppState,
    row: &InstanceRow,
    config_id: &str,
    body: ConfigurationRecordIn,
) -> Result<Json<ConfigurationRecordOut>, ApiError> {
    let current = record(row, config_id)?;
    if let Some(key) = body.key.as_deref().filter(|key| *key != current.key) {
        return Err(ApiError::bad_request(format!(
            "`key`: record {} is `{}`, not `{}`",
            current.id,
            current.key,
            key.chars().take(100).collect::<String>().escape_debug()
        )));
    }
    // A record read back whole is fine; one with another record's id is a mistake that the
    // path would otherwise quietly override.
    if let Some(id) = body.id.filter(|id| id.as_i64() != Some(current.id)) {
        return Err(ApiError::bad_request(format!(
            "`id`: this is record {} (`{}`), not {}",
            current.id,
            current.key,
            crate::body::shown(&id.to_string(), 40).escape_debug()
        )));
    }
    let value = body.property_value.ok_or_else(|| {
        ApiError::bad_request("`propertyValue` is required: the new value of the key")
    })?;
    let mut change = Map::new();
    change.insert(current.key.clone(), value);
    patch(
        state,
        row,
        InstanceIn {
            configuration: Some(change),
            ..InstanceIn::default()
        },
    )
    .await?;
    let updated = state
        .engine
        .store()
        .get_instance(row.organization_id, row.id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no instance with id {}", row.id)))?;
    // A record set to null is gone; it is shown as it was, with an empty value.
    Ok(Json(record(&updated, config_id).unwrap_or(
        ConfigurationRecordOut {
            property_value: String::new(),
            ..current
        },
    )))
}

/// The instance's configuration records, by key.
#[utoipa::path(
    get, path = "/instances/{id}/configuration", tag = "instances",
    params(("id" = String, Path, description = "Instance id")),
    security(("UserOrganization" = [])),
    responses((status = 200, body = Vec<ConfigurationRecordOut>), CommonErrors)
)]
async fn list_records(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<ConfigurationRecordOut>>, ApiError> {
    let row = find(&state, &caller, &id).await?;
    Ok(Json(records(&row)))
}

/// One configuration record.
#[utoipa::path(
    get, path = "/instances/{id}/configuration/{configId}", tag = "instances",
    params(
        ("id" = String, Path, description = "Instance id"),
        ("configId" = String, Path, description = "Configuration record id"),
    ),
    security(("UserOrganization" = [])),
    responses((status = 200, body = ConfigurationRecordOut), CommonErrors)
)]
async fn get_record(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, config_id)): Path<(String, String)>,
) -> Result<Json<ConfigurationRecordOut>, ApiError> {
    let row = find(&state, &caller, &id).await?;
    record(&row, &config_id).map(Json)
}

/// Change one configuration value; checked like a create, in effect from the next poll or
/// delivery.
#[utoipa::path(
    patch, path = "/instances/{id}/configuration/{configId}", tag = "instances",
    params(
        ("id" = String, Path, description = "Instance id"),
        ("configId" = String, Path, description = "Configuration record id"),
    ),
    request_body = ConfigurationRecordIn,
    security(("UserOrganization" = [])),
    responses((status = 200, body = ConfigurationRecordOut), ChangedMeanwhile, CommonErrors, ConnectWiseUnavailable)
)]
async fn patch_record(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, config_id)): Path<(String, String)>,
    JsonBody(body): JsonBody<ConfigurationRecordIn>,
) -> Result<Json<ConfigurationRecordOut>, ApiError> {
    let row = find(&state, &caller, &id).await?;
    patch_one(&state, &row, &config_id, body).await
}

/// The configuration records of the instance of the `Element` token.
#[utoipa::path(
    get, path = "/instances/configuration", tag = "instances",
    security(("UserOrganizationElement" = [])),
    responses((status = 200, body = Vec<ConfigurationRecordOut>), CommonErrors)
)]
async fn list_token_records(token: TokenInstance) -> Json<Vec<ConfigurationRecordOut>> {
    Json(records(&token.instance))
}

/// One configuration record of the instance of the `Element` token.
#[utoipa::path(
    get, path = "/instances/configuration/{configId}", tag = "instances",
    params(("configId" = String, Path, description = "Configuration record id")),
    security(("UserOrganizationElement" = [])),
    responses((status = 200, body = ConfigurationRecordOut), CommonErrors)
)]
async fn get_token_record(
    token: TokenInstance,
    Path(config_id): Path<String>,
) -> Result<Json<ConfigurationRecordOut>, ApiError> {
    record(&token.instance, &config_id).map(Json)
}

/// Change one configuration value of the instance of the `Element` token.
#[utoipa::path(
    patch, path = "/instances/configuration/{configId}", tag = "instances",
    params(("configId" = String, Path, description = "Configuration record id")),
    request_body = ConfigurationRecordIn,
    security(("UserOrganizationElement" = [])),
    responses((status = 200, body = ConfigurationRecordOut), ChangedMeanwhile, CommonErrors, ConnectWiseUnavailable)
)]
async fn patch_token_record(
    State(state): State<AppState>,
    token: TokenInstance,
    Path(config_id): Path<String>,
    JsonBody(body): JsonBody<ConfigurationRecordIn>,
) -> Result<Json<ConfigurationRecordOut>, ApiError> {
    patch_one(&state, &token.instance, &config_id, body).await
}
