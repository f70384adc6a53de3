//! An incident's comments (ConnectWise ticket notes) and time entries.

use axum::extract::{Path, RawQuery};
use serde::Deserialize;
use utoipa::IntoParams;

use super::call::{HubCall, HubReply};
use super::docs::{DeletedAnswer, HubErrors, ListAnswer, ListParams, Record, RecordAnswer};
use super::operations::Body;
use crate::openapi::CommonErrors;

/// The comments of an incident (its ConnectWise notes), a page at a time.
#[utoipa::path(
    get, path = "/hubs/crm/incidents/{id}/comments", tag = "crm hub",
    operation_id = "getIncidentComments",
    params(("id" = String, Path, description = "The incident's id"), ListParams),
    security(("UserOrganizationElement" = [])),
    responses(ListAnswer, CommonErrors, HubErrors)
)]
pub async fn list_comments(
    hub: HubCall,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> HubReply {
    hub.list(&format!("incidents/{id}/comments"), query).await
}

/// Add a comment to an incident.
#[utoipa::path(
    post, path = "/hubs/crm/incidents/{id}/comments", tag = "crm hub",
    operation_id = "createIncidentComment",
    params(("id" = String, Path, description = "The incident's id")),
    request_body = Record,
    security(("UserOrganizationElement" = [])),
    responses(RecordAnswer, CommonErrors, HubErrors)
)]
pub async fn create_comment(hub: HubCall, Path(id): Path<String>, body: Body) -> HubReply {
    hub.create(&format!("incidents/{id}/comments"), body).await
}

/// The path parameters of one comment.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CommentPath {
    /// The incident's id.
    id: String,
    /// The comment's id.
    #[serde(rename = "commentId")]
    #[param(rename = "commentId")]
    comment_id: String,
}

impl CommentPath {
    /// The hub path of the comment.
    fn hub_path(&self) -> String {
        format!("incidents/{}/comments/{}", self.id, self.comment_id)
    }
}

/// Read one comment of an incident.
#[utoipa::path(
    get, path = "/hubs/crm/incidents/{id}/comments/{commentId}", tag = "crm hub",
    operation_id = "getIncidentCommentById",
    params(CommentPath),
    security(("UserOrganizationElement" = [])),
    responses(RecordAnswer, CommonErrors, HubErrors)
)]
pub async fn read_comment(hub: HubCall, Path(path): Path<CommentPath>) -> HubReply {
    hub.read(&path.hub_path()).await
}

/// Replace every field of one comment.
#[utoipa::path(
    put, path = "/hubs/crm/incidents/{id}/comments/{commentId}", tag = "crm hub",
    operation_id = "replaceIncidentCommentById",
    params(CommentPath),
    request_body = Record,
    security(("UserOrganizationElement" = [])),
    responses(RecordAnswer, CommonErrors, HubErrors)
)]
pub async fn replace_comment(hub: HubCall, Path(path): Path<CommentPath>, body: Body) -> HubReply {
    hub.replace(&path.hub_path(), body).await
}

/// Change the fields the body names in one comment.
#[utoipa::path(
    patch, path = "/hubs/crm/incidents/{id}/comments/{commentId}", tag = "crm hub",
    operation_id = "updateIncidentCommentById",
    params(CommentPath),
    request_body = Record,
    security(("UserOrganizationElement" = [])),
    responses(RecordAnswer, CommonErrors, HubErrors)
)]
pub async fn patch_comment(hub: HubCall, Path(path): Path<CommentPath>, body: Body) -> HubReply {
    hub.patch(&path.hub_path(), body).await
}

/// Delete one comment.
#[utoipa::path(
    delete, path = "/hubs/crm/incidents/{id}/comments/{commentId}", tag = "crm hub",
    operation_id = "deleteIncidentCommentById",
    params(CommentPath),
    security(("UserOrganizationElement" = [])),
    responses(DeletedAnswer, CommonErrors, HubErrors)
)]
pub async fn delete_comment(hub: HubCall, Path(path): Path<CommentPath>) -> HubReply {
    hub.delete(&path.hub_path()).await
}

/// The time entries charged to an incident, a page at a time; `where` narrows them further.
#[utoipa::path(
    get, path = "/hubs/crm/incidents/{id}/time-entries", tag = "crm hub",
    operation_id = "getIncidentTimeEntries",
    params(("id" = String, Path, description = "The incident's id"), ListParams),
    security(("UserOrganizationElement" = [])),
    responses(ListAnswer, CommonErrors, HubErrors)
)]
pub async fn list_time_entries(
    hub: HubCall,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> HubReply {
    hub.list(&format!("incidents/{id}/time-entries"), query)
        .await
}
