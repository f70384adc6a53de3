//! The routes of the hub's documented objects: for each, `GET` (list) and `POST` on
//! `/hubs/crm/{object}`, and `GET`, `PUT`, `PATCH`, `DELETE` on `/hubs/crm/{object}/{id}`.
//!
//! The handlers are the same for every object (they hand the hub path to [`HubCall`]), but
//! each route is its own operation in the OpenAPI description, as Cloud Elements documents
//! them, so one macro writes the six handlers of an object.

use axum::extract::{Path, RawQuery};

use super::call::{HubCall, HubReply};
use super::docs::{DeletedAnswer, HubErrors, ListAnswer, ListParams, Record, RecordAnswer};
use super::operations::Body;
use crate::openapi::CommonErrors;

/// The six handlers of the object `$name` (its hub path), with operation ids made of
/// `$plural` and `$singular` (`getContacts`, `createContact`, `getContactById`, ...).
macro_rules! hub_object {
    ($module:ident, $name:literal, $plural:literal, $singular:literal) => {
        pub mod $module {
            use super::*;

            #[utoipa::path(
                        get, path = concat!("/hubs/crm/", $name), tag = "crm hub",
                        operation_id = concat!("get", $plural),
                        summary = concat!("List ", $name, ", a page at a time, filtered with CEQL"),
                        params(ListParams),
                        security(("UserOrganizationElement" = [])),
                        responses(ListAnswer, CommonErrors, HubErrors)
                    )]
            pub async fn list(hub: HubCall, RawQuery(query): RawQuery) -> HubReply {
                hub.list($name, query).await
            }

            #[utoipa::path(
                        post, path = concat!("/hubs/crm/", $name), tag = "crm hub",
                        operation_id = concat!("create", $singular),
                        summary = concat!("Create one of the ", $name),
                        request_body = Record,
                        security(("UserOrganizationElement" = [])),
                        responses(RecordAnswer, CommonErrors, HubErrors)
                    )]
            pub async fn create(hub: HubCall, body: Body) -> HubReply {
                hub.create($name, body).await
            }

            #[utoipa::path(
                        get, path = concat!("/hubs/crm/", $name, "/{id}"), tag = "crm hub",
                        operation_id = concat!("get", $singular, "ById"),
                        summary = concat!("Read one of the ", $name),
                        params(("id" = String, Path, description = "The record's id (a number)")),
                        security(("UserOrganizationElement" = [])),
                        responses(RecordAnswer, CommonErrors, HubErrors)
                    )]
            pub async fn read(hub: HubCall, Path(id): Path<String>) -> HubReply {
                hub.read(&format!("{}/{id}", $name)).await
            }

            #[utoipa::path(
                        put, path = concat!("/hubs/crm/", $name, "/{id}"), tag = "crm hub",
                        operation_id = concat!("replace", $singular, "ById"),
                        summary = concat!("Replace every field of one of the ", $name),
                        params(("id" = String, Path, description = "The record's id (a number)")),
                        request_body = Record,
                        security(("UserOrganizationElement" = [])),
                        responses(RecordAnswer, CommonErrors, HubErrors)
                    )]
            pub async fn replace(hub: HubCall, Path(id): Path<String>, body: Body) -> HubReply {
                hub.replace(&format!("{}/{id}", $name), body).await
            }

            #[utoipa::path(
                        patch, path = concat!("/hubs/crm/", $name, "/{id}"), tag = "crm hub",
                        operation_id = concat!("update", $singular, "ById"),
                        summary = concat!("Change the fields the body names in one of the ", $name),
                        params(("id" = String, Path, description = "The record's id (a number)")),
                        request_body = Record,
                        security(("UserOrganizationElement" = [])),
                        responses(RecordAnswer, CommonErrors, HubErrors)
                    )]
            pub async fn patch(hub: HubCall, Path(id): Path<String>, body: Body) -> HubReply {
                hub.patch(&format!("{}/{id}", $name), body).await
            }

            #[utoipa::path(
                        delete, path = concat!("/hubs/crm/", $name, "/{id}"), tag = "crm hub",
                        operation_id = concat!("delete", $singular, "ById"),
                        summary = concat!("Delete one of the ", $name),
                        params(("id" = String, Path, description = "The record's id (a number)")),
                        security(("UserOrganizationElement" = [])),
                        responses(DeletedAnswer, CommonErrors, HubErrors)
                    )]
            pub async fn delete(hub: HubCall, Path(id): Path<String>) -> HubReply {
                hub.delete(&format!("{}/{id}", $name)).await
            }
        }
    };
}

hub_object!(activities, "activities", "Activities", "Activity");
hub_object!(contacts, "contacts", "Contacts", "Contact");
hub_object!(fields, "fields", "Fields", "Field");
hub_object!(incidents, "incidents", "Incidents", "Incident");
hub_object!(
    opportunities,
    "opportunities",
    "Opportunities",
    "Opportunity"
);
hub_object!(
    organizations,
    "organizations",
    "Organizations",
    "Organization"
);
hub_object!(time_entries, "time-entries", "TimeEntries", "TimeEntry");
