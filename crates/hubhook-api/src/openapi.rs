//! The OpenAPI 3.1 description of the API, generated from the handlers' `#[utoipa::path]`
//! annotations and the request/response types, so it cannot drift from what is served.
//! Served at `GET /openapi.json`.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi};

use crate::error::ErrorBody;

/// Security scheme of the platform API: `Authorization: User <secret>, Organization <secret>`.
pub const USER_ORGANIZATION: &str = "UserOrganization";
/// Security scheme of the hub API: the same plus `, Element <instance token>`.
pub const USER_ORGANIZATION_ELEMENT: &str = "UserOrganizationElement";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hubhook",
        description = "Self-hosted events engine for ConnectWise Manage, compatible with the Cloud Elements platform and hub APIs (element `connectwisecrmrest`)."
    ),
    modifiers(&SecuritySchemes),
    components(schemas(ErrorBody)),
    tags(
        (name = "instances", description = "Element instances: credentials and events configuration"),
        (name = "events", description = "Events hubhook detected and stored"),
        (name = "elements", description = "The connectwisecrmrest element: its metadata and configuration keys"),
        (name = "users", description = "Sign-in (Cloud Elements' legacy login) and secret rotation"),
        (name = "delivery", description = "Webhook delivery: secrets, notifications, attempts, redelivery and replay"),
        (name = "crm hub", description = "Cloud Elements' crm hub over the instance's ConnectWise site: contacts, organizations, incidents and more, and any other ConnectWise path under objects/"),
        (name = "health", description = "Liveness, readiness"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            USER_ORGANIZATION,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "User <user secret>, Organization <organization secret>",
            ))),
        );
        components.add_security_scheme(
            USER_ORGANIZATION_ELEMENT,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "User <user secret>, Organization <organization secret>, Element <instance token>",
            ))),
        );
    }
}

/// The error answers every authenticated route can give, in the Cloud Elements error body.
/// List it in a route's `responses(...)` beside its success answer.
#[derive(IntoResponses)]
#[allow(dead_code)] // Only its OpenAPI description is used.
pub enum CommonErrors {
    /// The request cannot be acted on; the message names the field, the value and the form
    /// expected.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// Missing or invalid `Authorization` header.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// No such object in the caller's organization.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// The request body is larger than 2,097,152 bytes.
    #[response(status = 413)]
    PayloadTooLarge(ErrorBody),
    /// The request body is not JSON.
    #[response(status = 415)]
    UnsupportedMediaType(ErrorBody),
    /// Our fault; the log has the details under the `requestId`.
    #[response(status = 500)]
    Internal(ErrorBody),
}

/// The answer of a change of an instance that another node's change overtook five times in a
/// row (`instance_updates::apply`): nothing was stored; send it again.
#[derive(IntoResponses)]
#[allow(dead_code)] // Only its OpenAPI description is used.
pub enum ChangedMeanwhile {
    /// Another node changed the instance between this change's read and its write, five times
    /// in a row; nothing was stored.
    #[response(status = 409)]
    Conflict(ErrorBody),
}

/// The answers of a route that checks a configuration with ConnectWise when ConnectWise cannot
/// answer now (nothing was changed): not the caller's mistake, so not a `400`.
#[derive(IntoResponses)]
#[allow(dead_code)] // Only its OpenAPI description is used.
pub enum ConnectWiseUnavailable {
    /// ConnectWise answered with a server error.
    #[response(status = 502)]
    BadGateway(ErrorBody),
    /// ConnectWise is rate limiting the site; `Retry-After` says for how long.
    #[response(status = 503, headers(("Retry-After" = u64, description = "Seconds to wait")))]
    Unavailable(ErrorBody),
    /// ConnectWise did not answer in time.
    #[response(status = 504)]
    GatewayTimeout(ErrorBody),
}
