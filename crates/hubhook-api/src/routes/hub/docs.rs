//! The OpenAPI description of hub answers and parameters. Hub bodies are ConnectWise records,
//! whose fields are ConnectWise's (hubhook passes them through), so they are described as
//! objects; the parameters and headers are hubhook's and are described in full.

#![allow(dead_code)] // These types exist for their OpenAPI description only.

use serde_json::Value;
use utoipa::{IntoParams, IntoResponses, ToSchema};

use super::operations::DeletedOut;
use crate::error::ErrorBody;

/// A ConnectWise record as ConnectWise shows it, with its null fields removed unless the
/// instance sets `filter.response.nulls` to false.
#[derive(ToSchema)]
#[schema(value_type = Object)]
pub struct Record(Value);

/// Query parameters of hub lists.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// CEQL filter: `AND OR = != < > <= >= LIKE IN IS NULL`, parentheses, 'quoted' strings,
    /// `back-ticked` field names, dotted paths (`company.id = 250`), ISO dates compared as
    /// dates. A query that does not parse answers 400 "Error parsing query: ...".
    #[param(rename = "where")]
    filter: Option<String>,
    /// Navigable page number, from 1.
    #[param(minimum = 1)]
    page: Option<u32>,
    /// Records per page, 1 to 1000; default 200.
    #[param(rename = "pageSize", minimum = 1, maximum = 1000)]
    page_size: Option<u32>,
    /// The `Elements-Next-Page-Token` of the previous page; send the same query with it.
    #[param(rename = "nextPage")]
    next_page: Option<String>,
    /// `field asc|desc`, comma-separated (`company.name asc`).
    #[param(rename = "orderBy")]
    order_by: Option<String>,
    /// The fields to return, comma-separated (`id,firstName,company.name`).
    fields: Option<String>,
}

/// Answers of a hub list.
#[derive(IntoResponses)]
pub enum ListAnswer {
    /// One page of records, a bare JSON array. An `objects/` path that ConnectWise answers with
    /// an object (`system/info`, `.../count`) gets that object.
    #[response(
        status = 200,
        headers(
            ("Elements-Next-Page-Token" = String, description = "Present when another page follows: send it back as `nextPage`"),
            ("Elements-Element-Instance-Id" = i64, description = "The instance that answered"),
        )
    )]
    Page(Vec<Record>),
}

/// Answers of a hub call on one record.
#[derive(IntoResponses)]
pub enum RecordAnswer {
    /// The record.
    #[response(
        status = 200,
        headers(("Elements-Element-Instance-Id" = i64, description = "The instance that answered"))
    )]
    Record(Record),
}

/// Answers of a hub DELETE.
#[derive(IntoResponses)]
pub enum DeletedAnswer {
    /// The record is deleted (ConnectWise only marks companies deleted).
    #[response(
        status = 200,
        headers(("Elements-Element-Instance-Id" = i64, description = "The instance that answered"))
    )]
    Deleted(DeletedOut),
}

/// Answers of the object list.
#[derive(IntoResponses)]
pub enum ObjectsAnswer {
    /// The names of the hub's objects.
    #[response(
        status = 200,
        headers(("Elements-Element-Instance-Id" = i64, description = "The instance that answered"))
    )]
    Objects(Vec<String>),
}

/// The errors of hub calls beside the common ones; every one carries
/// `Elements-Element-Instance-Id` once the instance is known, and ConnectWise's words in
/// `providerMessage` when they come from ConnectWise.
#[derive(IntoResponses)]
pub enum HubErrors {
    /// The instance is disabled, or ConnectWise refused its API member (401/403 there).
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// ConnectWise refused the change as conflicting, or the instance's stored configuration
    /// cannot be used any more.
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// ConnectWise is rate limiting the site; `Retry-After` says when to come back.
    #[response(status = 429)]
    TooManyRequests(ErrorBody),
    /// ConnectWise failed (5xx), could not be reached, or answered something that is not JSON.
    #[response(status = 502)]
    BadGateway(ErrorBody),
    /// ConnectWise did not answer in time.
    #[response(status = 504)]
    GatewayTimeout(ErrorBody),
}
