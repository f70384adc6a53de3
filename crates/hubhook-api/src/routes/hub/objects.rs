//! `GET /hubs/crm/objects` (and `GET /objects`): the names of the hub's objects; and
//! `/hubs/crm/objects/{path...}`: any other ConnectWise path, passed through.
//!
//! The passthrough lets a user read (and poll) any ConnectWise resource the way Cloud Elements'
//! documentation invites: copy a poller block and point its `url` at
//! `/hubs/crm/objects/service/boards?where=...`. The path is checked segment by segment
//! (`hubhook_connectwise::target`), so it can only name an API path of the instance's own
//! ConnectWise site. A GET of a path ending with a number reads that record; any other GET is a
//! list (paged and filtered like the hub's own objects), or whatever object ConnectWise answers.

use axum::extract::{Path, RawQuery};
use hubhook_connectwise::hub_objects;

use super::call::{HubAnswer, HubCall, HubReply};
use super::docs::{
    DeletedAnswer, HubErrors, ListAnswer, ListParams, ObjectsAnswer, Record, RecordAnswer,
};
use super::operations::Body;
use crate::ApiError;
use crate::openapi::CommonErrors;

fn objects(hub: HubCall) -> HubReply {
    let outcome = serde_json::to_value(hub_objects())
        .map(HubAnswer::json)
        .map_err(|e| ApiError::internal(e).into());
    hub.reply(outcome)
}

/// The names of the crm hub's objects. Answered while the instance is disabled too.
#[utoipa::path(
    get, path = "/hubs/crm/objects", tag = "crm hub",
    operation_id = "getHubObjects",
    security(("UserOrganizationElement" = [])),
    responses(ObjectsAnswer, CommonErrors, HubErrors)
)]
pub async fn list_hub_objects(hub: HubCall) -> HubReply {
    objects(hub)
}

/// The names of the objects of the instance's hub (crm), as `GET /hubs/crm/objects`.
#[utoipa::path(
    get, path = "/objects", tag = "crm hub",
    operation_id = "getObjects",
    security(("UserOrganizationElement" = [])),
    responses(ObjectsAnswer, CommonErrors, HubErrors)
)]
pub async fn list_objects(hub: HubCall) -> HubReply {
    objects(hub)
}

/// The hub path of a passthrough call.
fn passthrough(path: &str) -> String {
    format!("objects/{path}")
}

/// Any ConnectWise path: a page of a list (filtered and paged like the hub's objects), one
/// record when the path ends with its id, or the object ConnectWise answers.
#[utoipa::path(
    get, path = "/hubs/crm/objects/{path}", tag = "crm hub",
    operation_id = "getObjectsByPath",
    params(
        ("path" = String, Path, description = "A ConnectWise path below /apis/3.0, e.g. service/boards or service/boards/1"),
        ListParams
    ),
    security(("UserOrganizationElement" = [])),
    responses(ListAnswer, CommonErrors, HubErrors)
)]
pub async fn read(hub: HubCall, Path(path): Path<String>, RawQuery(query): RawQuery) -> HubReply {
    hub.list(&passthrough(&path), query).await
}

/// POST to any ConnectWise path; the body goes to ConnectWise as it is.
#[utoipa::path(
    post, path = "/hubs/crm/objects/{path}", tag = "crm hub",
    operation_id = "createObjectsByPath",
    params(("path" = String, Path, description = "A ConnectWise path below /apis/3.0")),
    request_body = Record,
    security(("UserOrganizationElement" = [])),
    responses(RecordAnswer, CommonErrors, HubErrors)
)]
pub async fn create(hub: HubCall, Path(path): Path<String>, body: Body) -> HubReply {
    hub.create(&passthrough(&path), body).await
}

/// PUT to any ConnectWise path.
#[utoipa::path(
    put, path = "/hubs/crm/objects/{path}", tag = "crm hub",
    operation_id = "replaceObjectsByPath",
    params(("path" = String, Path, description = "A ConnectWise path below /apis/3.0")),
    request_body = Record,
    security(("UserOrganizationElement" = [])),
    responses(RecordAnswer, CommonErrors, HubErrors)
)]
pub async fn replace(hub: HubCall, Path(path): Path<String>, body: Body) -> HubReply {
    hub.replace(&passthrough(&path), body).await
}

/// PATCH any ConnectWise path: a JSON object of fields (turned into JSON Patch) or a JSON Patch
/// array.
#[utoipa::path(
    patch, path = "/hubs/crm/objects/{path}", tag = "crm hub",
    operation_id = "updateObjectsByPath",
    params(("path" = String, Path, description = "A ConnectWise path below /apis/3.0")),
    request_body = Record,
    security(("UserOrganizationElement" = [])),
    responses(RecordAnswer, CommonErrors, HubErrors)
)]
pub async fn patch(hub: HubCall, Path(path): Path<String>, body: Body) -> HubReply {
    hub.patch(&passthrough(&path), body).await
}

/// DELETE any ConnectWise path.
#[utoipa::path(
    delete, path = "/hubs/crm/objects/{path}", tag = "crm hub",
    operation_id = "deleteObjectsByPath",
    params(("path" = String, Path, description = "A ConnectWise path below /apis/3.0")),
    security(("UserOrganizationElement" = [])),
    responses(DeletedAnswer, CommonErrors, HubErrors)
)]
pub async fn delete(hub: HubCall, Path(path): Path<String>) -> HubReply {
    hub.delete(&passthrough(&path)).await
}
