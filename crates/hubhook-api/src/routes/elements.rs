//! `/elements/{keyOrId}`: the one element hubhook provides (`connectwisecrmrest`, id 3012),
//! its metadata and configuration keys, and its instances (`/elements/{keyOrId}/instances`),
//! which are the caller's instances reached through their element: the same handlers as under
//! `/instances`, after the element is checked. Any other key or id is a 404.

use axum::{
    Json,
    extract::{Path, RawQuery, State},
    http::HeaderMap,
};
use hubhook_core::ELEMENT_KEY;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::Caller;
use crate::body::JsonBody;
use crate::element::{ConfigurationField, ELEMENT_ID, ElementOut, configuration_fields};
use crate::openapi::{ChangedMeanwhile, CommonErrors, ConnectWiseUnavailable};
use crate::routes::instance_updates::{patch, replace};
use crate::routes::instances::{
    DeletedOut, ElementRef, InstanceIn, InstanceOut, create, delete, find, instance_out, list,
};
use crate::{ApiError, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_element))
        .routes(routes!(element_metadata))
        .routes(routes!(element_configuration))
        .routes(routes!(list_element_instances, create_element_instance))
        .routes(routes!(
            get_element_instance,
            replace_element_instance,
            patch_element_instance,
            delete_element_instance
        ))
}

/// The element with its configuration keys.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ElementDetailOut {
    #[serde(flatten)]
    pub element: ElementOut,
    pub configuration: Vec<ConfigurationField>,
}

/// What the element supports.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ElementMetadataOut {
    pub id: i64,
    pub key: &'static str,
    pub hub: &'static str,
    pub events: EventsMetadata,
}

/// How the element finds events: polling only (ConnectWise's callbacks are not used).
#[derive(Debug, Serialize, ToSchema)]
pub struct EventsMetadata {
    pub supported: bool,
    pub methods: Vec<&'static str>,
}

/// `connectwisecrmrest` or `3012`; anything else is no element of ours.
fn check_element(key_or_id: &str) -> Result<(), ApiError> {
    if key_or_id == ELEMENT_KEY || key_or_id == ELEMENT_ID.to_string() {
        return Ok(());
    }
    Err(ApiError::not_found(format!(
        "no element `{}`: the only element is `{ELEMENT_KEY}` (id {ELEMENT_ID})",
        key_or_id
            .chars()
            .take(100)
            .collect::<String>()
            .escape_debug()
    )))
}

/// The element.
#[utoipa::path(
    get, path = "/elements/{keyOrId}", tag = "elements",
    params(("keyOrId" = String, Path, description = "`connectwisecrmrest` or `3012`")),
    security(("UserOrganization" = [])),
    responses((status = 200, body = ElementDetailOut), CommonErrors)
)]
async fn get_element(
    _caller: Caller,
    Path(key_or_id): Path<String>,
) -> Result<Json<ElementDetailOut>, ApiError> {
    check_element(&key_or_id)?;
    Ok(Json(ElementDetailOut {
        element: ElementOut::connectwise(),
        configuration: configuration_fields(),
    }))
}

/// The element's metadata: events by polling.
#[utoipa::path(
    get, path = "/elements/{keyOrId}/metadata", tag = "elements",
    params(("keyOrId" = String, Path, description = "`connectwisecrmrest` or `3012`")),
    security(("UserOrganization" = [])),
    responses((status = 200, body = ElementMetadataOut), CommonErrors)
)]
async fn element_metadata(
    _caller: Caller,
    Path(key_or_id): Path<String>,
) -> Result<Json<ElementMetadataOut>, ApiError> {
    check_element(&key_or_id)?;
    Ok(Json(ElementMetadataOut {
        id: ELEMENT_ID,
        key: ELEMENT_KEY,
        hub: "crm",
        events: EventsMetadata {
            supported: true,
            methods: vec!["polling"],
        },
    }))
}

/// The element's configuration keys, with the default `event.poller.configuration`.
#[utoipa::path(
    get, path = "/elements/{keyOrId}/configuration", tag = "elements",
    params(("keyOrId" = String, Path, description = "`connectwisecrmrest` or `3012`")),
    security(("UserOrganization" = [])),
    responses((status = 200, body = Vec<ConfigurationField>), CommonErrors)
)]
async fn element_configuration(
    _caller: Caller,
    Path(key_or_id): Path<String>,
) -> Result<Json<Vec<ConfigurationField>>, ApiError> {
    check_element(&key_or_id)?;
    Ok(Json(configuration_fields()))
}

/// The caller's instances of the element (as `GET /instances`).
#[utoipa::path(
    get, path = "/elements/{keyOrId}/instances", tag = "instances",
    params(("keyOrId" = String, Path, description = "`connectwisecrmrest` or `3012`"),
        crate::routes::instances::InstanceListQuery),
    security(("UserOrganization" = [])),
    responses((status = 200, body = Vec<InstanceOut>), CommonErrors)
)]
async fn list_element_instances(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(key_or_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<(HeaderMap, Json<Vec<InstanceOut>>), ApiError> {
    check_element(&key_or_id)?;
    list(&state, caller, query.as_deref()).await
}

/// Create an instance of the element (as `POST /instances`; `element` may be left out).
#[utoipa::path(
    post, path = "/elements/{keyOrId}/instances", tag = "instances",
    params(("keyOrId" = String, Path, description = "`connectwisecrmrest` or `3012`")),
    request_body = InstanceIn,
    security(("UserOrganization" = [])),
    responses((status = 200, body = InstanceOut), CommonErrors)
)]
async fn create_element_instance(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(key_or_id): Path<String>,
    JsonBody(mut body): JsonBody<InstanceIn>,
) -> Result<Json<InstanceOut>, ApiError> {
    check_element(&key_or_id)?;
    if body.element.is_none() {
        body.element = Some(ElementRef::connectwise());
    }
    create(&state, caller, body).await.map(Json)
}

/// One instance of the element.
#[utoipa::path(
    get, path = "/elements/{keyOrId}/instances/{id}", tag = "instances",
    params(("keyOrId" = String, Path, description = "`connectwisecrmrest` or `3012`"),
        ("id" = String, Path, description = "Instance id")),
    security(("UserOrganization" = [])),
    responses((status = 200, body = InstanceOut), CommonErrors)
)]
async fn get_element_instance(
    State(state): State<AppState>,
    caller: Caller,
    Path((key_or_id, id)): Path<(String, String)>,
) -> Result<Json<InstanceOut>, ApiError> {
    check_element(&key_or_id)?;
    let row = find(&state, &caller, &id).await?;
    instance_out(&state, &row, None).await.map(Json)
}

/// Replace an instance of the element (as `PUT /instances/{id}`).
#[utoipa::path(
    put, path = "/elements/{keyOrId}/instances/{id}", tag = "instances",
    params(("keyOrId" = String, Path, description = "`connectwisecrmrest` or `3012`"),
        ("id" = String, Path, description = "Instance id")),
    request_body = InstanceIn,
    security(("UserOrganization" = [])),
    responses((status = 200, body = InstanceOut), ChangedMeanwhile, CommonErrors, ConnectWiseUnavailable)
)]
async fn replace_element_instance(
    State(state): State<AppState>,
    caller: Caller,
    Path((key_or_id, id)): Path<(String, String)>,
    JsonBody(body): JsonBody<InstanceIn>,
) -> Result<Json<InstanceOut>, ApiError> {
    check_element(&key_or_id)?;
    let row = find(&state, &caller, &id).await?;
    replace(&state, &row, body).await.map(Json)
}

/// Change part of an instance of the element (as `PATCH /instances/{id}`).
#[utoipa::path(
    patch, path = "/elements/{keyOrId}/instances/{id}", tag = "instances",
    params(("keyOrId" = String, Path, description = "`connectwisecrmrest` or `3012`"),
        ("id" = String, Path, description = "Instance id")),
    request_body = InstanceIn,
    security(("UserOrganization" = [])),
    responses((status = 200, body = InstanceOut), ChangedMeanwhile, CommonErrors, ConnectWiseUnavailable)
)]
async fn patch_element_instance(
    State(state): State<AppState>,
    caller: Caller,
    Path((key_or_id, id)): Path<(String, String)>,
    JsonBody(body): JsonBody<InstanceIn>,
) -> Result<Json<InstanceOut>, ApiError> {
    check_element(&key_or_id)?;
    let row = find(&state, &caller, &id).await?;
    patch(&state, &row, body).await.map(Json)
}

/// Delete an instance of the element (as `DELETE /instances/{id}`).
#[utoipa::path(
    delete, path = "/elements/{keyOrId}/instances/{id}", tag = "instances",
    params(("keyOrId" = String, Path, description = "`connectwisecrmrest` or `3012`"),
        ("id" = String, Path, description = "Instance id")),
    security(("UserOrganization" = [])),
    responses((status = 200, body = DeletedOut), CommonErrors)
)]
async fn delete_element_instance(
    State(state): State<AppState>,
    caller: Caller,
    Path((key_or_id, id)): Path<(String, String)>,
) -> Result<Json<DeletedOut>, ApiError> {
    check_element(&key_or_id)?;
    delete(&state, &caller, &id).await
}
