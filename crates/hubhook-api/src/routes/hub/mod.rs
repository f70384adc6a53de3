//! The crm hub: `/hubs/crm/...`, Cloud Elements' uniform API over the customer's ConnectWise
//! site, authenticated with `User …, Organization …, Element <instance token>`.
//!
//! Every call is answered in process by the instance's element adapter (`hubhook-connectwise`):
//! the hub path is resolved by `HubTarget` and the query by `HubQuery`, the same code that
//! resolves poller URLs, so `GET /hubs/crm/contacts?where=…` reads exactly the records a poller
//! resource with that URL reads. There is no HTTP loop back into hubhook.
//!
//! - [`call`]: authentication by the instance token, ConnectWise failures as Cloud Elements
//!   errors, the headers of every answer.
//! - [`operations`]: list (one page), read, create, replace, patch, delete of a hub path.
//! - [`resources`], [`incidents`], [`objects`]: the routes, one per operation in the OpenAPI
//!   description.

mod call;
mod docs;
mod incidents;
mod objects;
mod operations;
mod resources;

use axum::routing::get;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    use resources::{
        activities, contacts, fields, incidents as incident, opportunities, organizations,
        time_entries,
    };
    OpenApiRouter::new()
        .routes(routes!(activities::list, activities::create))
        .routes(routes!(
            activities::read,
            activities::replace,
            activities::patch,
            activities::delete
        ))
        .routes(routes!(contacts::list, contacts::create))
        .routes(routes!(
            contacts::read,
            contacts::replace,
            contacts::patch,
            contacts::delete
        ))
        .routes(routes!(fields::list, fields::create))
        .routes(routes!(
            fields::read,
            fields::replace,
            fields::patch,
            fields::delete
        ))
        .routes(routes!(incident::list, incident::create))
        .routes(routes!(
            incident::read,
            incident::replace,
            incident::patch,
            incident::delete
        ))
        .routes(routes!(opportunities::list, opportunities::create))
        .routes(routes!(
            opportunities::read,
            opportunities::replace,
            opportunities::patch,
            opportunities::delete
        ))
        .routes(routes!(organizations::list, organizations::create))
        .routes(routes!(
            organizations::read,
            organizations::replace,
            organizations::patch,
            organizations::delete
        ))
        .routes(routes!(time_entries::list, time_entries::create))
        .routes(routes!(
            time_entries::read,
            time_entries::replace,
            time_entries::patch,
            time_entries::delete
        ))
        .routes(routes!(incidents::list_comments, incidents::create_comment))
        .routes(routes!(
            incidents::read_comment,
            incidents::replace_comment,
            incidents::patch_comment,
            incidents::delete_comment
        ))
        .routes(routes!(incidents::list_time_entries))
        .routes(routes!(objects::list_hub_objects))
        .routes(routes!(objects::list_objects))
        .merge(passthrough_router())
}

/// The passthrough's paths are `{*path}` for axum (any number of segments) but `{path}` in the
/// OpenAPI description (which has no multi-segment parameters), so the route is registered by
/// hand and its description added beside it.
fn passthrough_router() -> OpenApiRouter<AppState> {
    // The schemas only answers name are not collected from the paths; they are listed here.
    #[derive(OpenApi)]
    #[openapi(
        paths(
            objects::read,
            objects::create,
            objects::replace,
            objects::patch,
            objects::delete
        ),
        components(schemas(docs::Record, operations::DeletedOut))
    )]
    struct Passthrough;

    OpenApiRouter::with_openapi(Passthrough::openapi()).route(
        "/hubs/crm/objects/{*path}",
        get(objects::read)
            .post(objects::create)
            .put(objects::replace)
            .patch(objects::patch)
            .delete(objects::delete),
    )
}
