//! What every hub route does, whatever its resource: resolve the hub path to ConnectWise
//! (`hubhook_connectwise::HubTarget`, the mapping the poller uses too), then make one call.
//!
//! Lists answer a bare JSON array with `Elements-Next-Page-Token` when another page follows;
//! POST, PUT and PATCH answer `200` with the record ConnectWise returned, DELETE `200` with
//! `{"id": ..}` (Cloud Elements' convention, where ConnectWise answers `201` and `204`).

use hubhook_connectwise::{HubQuery, HubTarget, OBJECTS, TargetKind, merge_to_json_patch};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::call::{HubAnswer, HubCall, HubError, HubReply};
use crate::ApiError;
use crate::body::JsonBody;

/// Records per page of a hub list when the call does not say (Cloud Elements' default).
pub const DEFAULT_PAGE_SIZE: u32 = 200;

/// The answer to a DELETE.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedOut {
    /// The id of the deleted record (the last segment of its path).
    pub id: String,
}

/// A request body as the handlers receive it: a rejection is answered like any other hub
/// failure, with the instance's header.
pub type Body = Result<JsonBody<Value, false>, ApiError>;

impl HubCall {
    /// `GET` of a list (a page of it) or, for an `objects/` path naming a record, of that record.
    pub async fn list(self, hub_path: &str, raw_query: Option<String>) -> HubReply {
        let outcome = self.list_outcome(hub_path, raw_query).await;
        self.reply(outcome)
    }

    async fn list_outcome(
        &self,
        hub_path: &str,
        raw_query: Option<String>,
    ) -> Result<HubAnswer, HubError> {
        self.check_enabled()?;
        let target = HubTarget::resolve(hub_path)?;
        if target.kind == TargetKind::Record {
            return self.read_outcome(&target).await;
        }
        // Form decoding: hub calls come from HTTP clients, which encode a space as `+`.
        let params = url::form_urlencoded::parse(raw_query.as_deref().unwrap_or("").as_bytes())
            .map(|(name, value)| (name.into_owned(), value.into_owned()));
        let query = HubQuery::from_params(&target, params, DEFAULT_PAGE_SIZE)?;
        let page = self.client.fetch_page(&query).await?;
        Ok(HubAnswer {
            body: page.body,
            next_page: page.next.and_then(|next| next.token()),
        })
    }

    /// `GET` of one record.
    pub async fn read(self, hub_path: &str) -> HubReply {
        let outcome = match self.enabled_target(hub_path) {
            Ok(target) => self.read_outcome(&target).await,
            Err(err) => Err(err),
        };
        self.reply(outcome)
    }

    async fn read_outcome(&self, target: &HubTarget) -> Result<HubAnswer, HubError> {
        Ok(HubAnswer::json(self.client.get_record(&target.path).await?))
    }

    /// `POST`: creates a record in the list.
    pub async fn create(self, hub_path: &str, body: Body) -> HubReply {
        let outcome = self.write_outcome(hub_path, body, Write::Create).await;
        self.reply(outcome)
    }

    /// `PUT`: replaces every field of a record.
    pub async fn replace(self, hub_path: &str, body: Body) -> HubReply {
        let outcome = self.write_outcome(hub_path, body, Write::Replace).await;
        self.reply(outcome)
    }

    async fn write_outcome(
        &self,
        hub_path: &str,
        body: Body,
        write: Write,
    ) -> Result<HubAnswer, HubError> {
        let target = self.enabled_target(hub_path)?;
        let body = record_body(hub_path, body)?;
        let record = match write {
            Write::Create => self.client.create_record(&target.path, &body).await?,
            Write::Replace => self.client.replace_record(&target.path, &body).await?,
        };
        Ok(HubAnswer::json(record))
    }

    /// `PATCH`: changes the fields the body names (turned into ConnectWise JSON Patch).
    pub async fn patch(self, hub_path: &str, body: Body) -> HubReply {
        let outcome = self.patch_outcome(hub_path, body).await;
        self.reply(outcome)
    }

    async fn patch_outcome(&self, hub_path: &str, body: Body) -> Result<HubAnswer, HubError> {
        let target = self.enabled_target(hub_path)?;
        let JsonBody(body) = body?;
        let operations = merge_to_json_patch(&body)?;
        Ok(HubAnswer::json(
            self.client.patch_record(&target.path, &operations).await?,
        ))
    }

    /// `DELETE` of a record.
    pub async fn delete(self, hub_path: &str) -> HubReply {
        let outcome = self.delete_outcome(hub_path).await;
        self.reply(outcome)
    }

    async fn delete_outcome(&self, hub_path: &str) -> Result<HubAnswer, HubError> {
        let target = self.enabled_target(hub_path)?;
        self.client.delete_record(&target.path).await?;
        let id = target
            .path
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let body = serde_json::to_value(DeletedOut { id }).map_err(ApiError::internal)?;
        Ok(HubAnswer::json(body))
    }

    fn enabled_target(&self, hub_path: &str) -> Result<HubTarget, HubError> {
        self.check_enabled()?;
        Ok(HubTarget::resolve(hub_path)?)
    }
}

/// The writes that send a whole record.
#[derive(Clone, Copy)]
enum Write {
    Create,
    Replace,
}

/// The body of a POST or PUT: a JSON object for the hub's own resources (a record), anything
/// JSON for `objects/` paths, whose bodies are ConnectWise's to judge.
fn record_body(hub_path: &str, body: Body) -> Result<Value, HubError> {
    let JsonBody(body) = body?;
    let passthrough = hub_path
        .split('/')
        .next()
        .is_some_and(|first| first.eq_ignore_ascii_case(OBJECTS));
    if !passthrough && !body.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object: the record's fields, as ConnectWise names them",
        )
        .into());
    }
    Ok(body)
}
