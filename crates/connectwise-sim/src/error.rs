//! The one error type of the simulator. Every variant renders as the body
//! ConnectWise returns for that situation (reference §4.2), so a handler can
//! `?` its way out and the client still sees a faithful response.

use serde_json::{Value, json};

/// One entry of `errors[]` in an `InvalidObject` body.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub code: &'static str,
    pub message: String,
    pub field: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// `{"code":"NotFound","message":"Contact 57919 not found"}`
    #[error("{display} {id} not found")]
    NotFound { display: &'static str, id: i64 },
    /// Unknown route: `{"code":"ConnectWiseApi","message":"The endpoint does not exist."}`
    #[error("The endpoint does not exist.")]
    NoEndpoint,
    /// A malformed query (conditions, orderBy, paging parameters).
    #[error("{message}")]
    BadRequest { message: String },
    /// A record body that fails validation: `{"code":"InvalidObject","message":"contact object is invalid","errors":[..]}`
    #[error("{entity} object is invalid")]
    InvalidObject {
        entity: &'static str,
        errors: Vec<FieldError>,
    },
    #[error("UserNotAuthenticated")]
    Unauthenticated,
    /// The configured clientId header is missing or does not match.
    #[error("{message}")]
    ClientId { message: String },
    /// The API member's security role does not allow this.
    #[error("{message}")]
    Forbidden { message: String },
    #[error("The requested resource does not support http method '{method}'.")]
    MethodNotAllowed { method: String },
    /// A library caller named a resource the simulator does not serve.
    #[error("unknown resource {0}")]
    UnknownResource(String),
}

impl SimError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        SimError::BadRequest {
            message: message.into(),
        }
    }

    pub fn invalid(
        entity: &'static str,
        code: &'static str,
        field: &str,
        message: impl Into<String>,
    ) -> Self {
        SimError::InvalidObject {
            entity,
            errors: vec![FieldError {
                code,
                message: message.into(),
                field: field.to_string(),
            }],
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            SimError::NotFound { .. } | SimError::NoEndpoint | SimError::UnknownResource(_) => 404,
            SimError::BadRequest { .. } | SimError::InvalidObject { .. } => 400,
            SimError::Unauthenticated | SimError::ClientId { .. } => 401,
            SimError::Forbidden { .. } => 403,
            SimError::MethodNotAllowed { .. } => 405,
        }
    }

    /// The JSON body ConnectWise sends for this error.
    pub fn body(&self) -> Value {
        let message = self.to_string();
        match self {
            SimError::NotFound { .. } => json!({"code": "NotFound", "message": message}),
            SimError::NoEndpoint | SimError::UnknownResource(_) => {
                json!({"code": "ConnectWiseApi", "message": "The endpoint does not exist."})
            }
            SimError::BadRequest { .. } => json!({"code": "InvalidObject", "message": message}),
            SimError::InvalidObject { entity, errors } => json!({
                "code": "InvalidObject",
                "message": message,
                "errors": errors.iter().map(|e| json!({
                    "code": e.code,
                    "message": e.message,
                    "resource": entity,
                    "field": e.field,
                })).collect::<Vec<_>>(),
            }),
            SimError::Unauthenticated | SimError::ClientId { .. } => {
                json!({"code": "ConnectWiseApi", "message": message})
            }
            SimError::Forbidden { .. } => json!({"code": "Unauthorized", "message": message}),
            SimError::MethodNotAllowed { .. } => {
                json!({"code": "ConnectWiseApi", "message": message})
            }
        }
    }
}
