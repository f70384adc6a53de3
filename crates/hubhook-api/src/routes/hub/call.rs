//! One hub call: who makes it (the `Element` token's instance), how ConnectWise's failures are
//! answered, and the headers every hub answer carries.
//!
//! # Authentication
//!
//! `Authorization: User <secret>, Organization <secret>, Element <instance token>`. The user and
//! organization secrets are checked as on the platform API; the token is looked up by its
//! SHA-256 (it is stored hashed) and must belong to an instance of that same organization.
//! Another organization's token is answered exactly like an unknown one (401), so a caller
//! learns nothing about instances that are not theirs. Nothing the caller sent is repeated in
//! a refusal.

use axum::{
    Json,
    extract::FromRequestParts,
    http::{HeaderName, HeaderValue, StatusCode, request::Parts},
    response::{IntoResponse, Response},
};
use hubhook_connectwise::{Client, CwError};
use hubhook_core::{InstanceConfig, merge_secrets};
use hubhook_store::InstanceRow;
use serde_json::Value;

use crate::auth::{authenticate, authorization, token_instance};
use crate::{ApiError, AppState};

/// The id of the instance that answered, on every hub answer (Cloud Elements' header).
pub const INSTANCE_ID_HEADER: HeaderName = HeaderName::from_static("elements-element-instance-id");
/// Where the next page starts; send it back as `nextPage`.
pub const NEXT_PAGE_HEADER: HeaderName = HeaderName::from_static("elements-next-page-token");

const EXPECTED: &str = "expected `Authorization: User <user secret>, Organization <organization secret>, Element <instance token>`";

/// An authenticated hub call: the caller's instance and its element adapter.
pub struct HubCall {
    pub instance: InstanceRow,
    pub client: Client,
}

impl FromRequestParts<AppState> for HubCall {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let auth = authorization(parts, EXPECTED)?;
        let caller = authenticate(state, &auth, EXPECTED).await?;
        let instance = token_instance(
            state,
            &auth,
            caller,
            "hub calls need the instance token: `Element <instance token>` is missing",
            EXPECTED,
        )
        .await?;
        let configuration = merge_secrets(&instance.configuration, &instance.secrets);
        let config = InstanceConfig::parse(&configuration).map_err(|e| {
            ApiError::conflict(format!(
                "the stored configuration of instance {} is not valid any more: {e}; update the instance",
                instance.id
            ))
        })?;
        let client = state.engine.element(&config).map_err(|e| {
            ApiError::conflict(format!(
                "the ConnectWise credentials of instance {} cannot be used: {e}",
                instance.id
            ))
        })?;
        Ok(HubCall { instance, client })
    }
}

impl HubCall {
    /// A disabled instance answers 403 to everything but the list of objects.
    pub fn check_enabled(&self) -> Result<(), HubError> {
        if self.instance.disabled {
            return Err(ApiError::forbidden(format!(
                "instance {} is disabled; enable it with PUT /instances/{}/enabled",
                self.instance.id, self.instance.id
            ))
            .into());
        }
        Ok(())
    }

    /// The answer to this call, with the instance's id.
    pub fn reply(&self, outcome: Result<HubAnswer, HubError>) -> HubReply {
        HubReply {
            instance_id: self.instance.id.0,
            outcome,
        }
    }
}

/// A successful hub answer: JSON, and for a list page, where the next page starts.
pub struct HubAnswer {
    pub body: Value,
    pub next_page: Option<String>,
}

impl HubAnswer {
    pub fn json(body: Value) -> HubAnswer {
        HubAnswer {
            body,
            next_page: None,
        }
    }
}

/// A failed hub call: the Cloud Elements error (with `Retry-After` when ConnectWise said how
/// long to wait).
pub struct HubError {
    error: ApiError,
}

impl From<ApiError> for HubError {
    fn from(error: ApiError) -> HubError {
        HubError { error }
    }
}

/// ConnectWise's failures in Cloud Elements' terms, its own words in `providerMessage`: its
/// 4xx keep their codes, except that a refusal of the instance's credentials or role (401,
/// 403) is a 403 for the caller (the caller's own hubhook secrets were fine); a failure of
/// ConnectWise is a 502, no answer in time a 504.
impl From<CwError> for HubError {
    fn from(err: CwError) -> HubError {
        let provider_message = err.provider_message().map(str::to_string);
        let retry_after = err.retry_after();
        let error = match &err {
            CwError::InvalidQuery(message) => ApiError::bad_request(message.clone()),
            CwError::Unauthorized { status, .. } => ApiError::forbidden(format!(
                "ConnectWise refused the instance's API member ({status}): check its keys and its security role"
            )),
            CwError::RateLimited { retry_after } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "ConnectWise is rate limiting this site's requests; retry after {} s",
                    retry_after.as_secs()
                ),
            ),
            CwError::Status { status, .. } => {
                let code = StatusCode::from_u16(*status)
                    .ok()
                    .filter(StatusCode::is_client_error)
                    .unwrap_or(StatusCode::BAD_GATEWAY);
                ApiError::new(code, format!("ConnectWise answered {status}"))
            }
            CwError::Transport(_) | CwError::Decode(_) => {
                ApiError::new(StatusCode::BAD_GATEWAY, err.to_string())
            }
            CwError::Timeout(_) => ApiError::new(StatusCode::GATEWAY_TIMEOUT, err.to_string()),
        };
        HubError {
            error: error
                .with_provider_message(provider_message)
                .with_retry_after(retry_after),
        }
    }
}

/// What a hub handler returns: the answer or the error, with `Elements-Element-Instance-Id`
/// either way.
pub struct HubReply {
    instance_id: i64,
    outcome: Result<HubAnswer, HubError>,
}

impl IntoResponse for HubReply {
    fn into_response(self) -> Response {
        let mut response = match self.outcome {
            Ok(answer) => {
                let mut response = Json(answer.body).into_response();
                if let Some(token) = answer
                    .next_page
                    .and_then(|t| HeaderValue::from_str(&t).ok())
                {
                    response.headers_mut().insert(NEXT_PAGE_HEADER, token);
                }
                response
            }
            Err(failure) => failure.error.into_response(),
        };
        response
            .headers_mut()
            .insert(INSTANCE_ID_HEADER, self.instance_id.into());
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[track_caller]
    fn check(err: CwError, status: u16, provider_message: Option<&str>) {
        let failure = HubError::from(err);
        assert_eq!(failure.error.status.as_u16(), status);
        assert_eq!(failure.error.provider_message.as_deref(), provider_message);
    }

    #[test]
    fn connectwise_failures_become_cloud_elements_errors() {
        let status = |status, message: &str| CwError::Status {
            status,
            provider_message: message.to_string(),
        };
        check(
            status(400, "InvalidObject: x"),
            400,
            Some("InvalidObject: x"),
        );
        check(status(404, "NotFound: y"), 404, Some("NotFound: y"));
        check(status(409, "z"), 409, Some("z"));
        check(status(500, "boom"), 502, Some("boom"));
        check(status(503, "down"), 502, Some("down"));
        check(status(302, ""), 502, Some(""));
        for code in [401, 403] {
            check(
                CwError::Unauthorized {
                    status: code,
                    provider_message: "ConnectWiseApi: UserNotAuthenticated".into(),
                },
                403,
                Some("ConnectWiseApi: UserNotAuthenticated"),
            );
        }
        check(CwError::Timeout("slow".into()), 504, None);
        check(CwError::Transport("refused".into()), 502, None);
        check(CwError::Decode("not JSON".into()), 502, None);
        check(
            CwError::InvalidQuery("Error parsing query: x".into()),
            400,
            None,
        );
        let limited = HubError::from(CwError::RateLimited {
            retry_after: Duration::from_secs(30),
        });
        assert_eq!(limited.error.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(limited.error.retry_after, Some(Duration::from_secs(30)));
    }
}
