use std::time::Duration;

/// What went wrong talking to ConnectWise, classified so that callers can act on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CwError {
    /// A hub URL or request (poller URL, hub path, query, PATCH body) cannot be turned into a
    /// ConnectWise request. The message names what is wrong.
    #[error("{0}")]
    InvalidQuery(String),
    /// ConnectWise refused the credentials (401) or the member's security role (403).
    #[error("ConnectWise refused the credentials ({status}): {provider_message}")]
    Unauthorized {
        status: u16,
        provider_message: String,
    },
    /// Still rate limited after the retries we allow ourselves.
    #[error("ConnectWise is rate limiting requests (retry after {retry_after:?})")]
    RateLimited { retry_after: Duration },
    /// Any other non-success answer.
    #[error("ConnectWise answered {status}: {provider_message}")]
    Status {
        status: u16,
        provider_message: String,
    },
    /// No answer: connection refused, DNS, TLS, a connection dropped mid-answer.
    #[error("could not reach ConnectWise: {0}")]
    Transport(String),
    /// ConnectWise did not answer in the time allowed.
    #[error("ConnectWise did not answer in time: {0}")]
    Timeout(String),
    /// An answer that is not the JSON ConnectWise sends.
    #[error("unexpected answer from ConnectWise: {0}")]
    Decode(String),
}

impl CwError {
    /// Whether trying again later can succeed without anyone changing the configuration.
    pub fn is_retryable(&self) -> bool {
        match self {
            CwError::RateLimited { .. }
            | CwError::Transport(_)
            | CwError::Timeout(_)
            | CwError::Decode(_) => true,
            CwError::Status { status, .. } => *status >= 500 || *status == 408 || *status == 409,
            CwError::InvalidQuery(_) | CwError::Unauthorized { .. } => false,
        }
    }

    /// The provider's own words, for the Cloud Elements `providerMessage` field.
    pub fn provider_message(&self) -> Option<&str> {
        match self {
            CwError::Unauthorized {
                provider_message, ..
            }
            | CwError::Status {
                provider_message, ..
            } => Some(provider_message),
            _ => None,
        }
    }

    /// How long ConnectWise asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CwError::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        }
    }
}
