//! One delivery attempt of one notification.
//!
//! The body was built and stored when the events were committed, so every attempt sends the
//! same bytes with the same `Elements-Webhook-Id`: receivers can deduplicate, and the
//! signature of a retry matches the original. Any 2xx answer is success; everything else
//! (other statuses, timeouts, refused connections, refused addresses) is a failure that is
//! retried on the schedule and, once the schedule is exhausted, queued.

use std::time::Instant;

use anyhow::Context as _;
use hubhook_connectwise::transport_message;
use hubhook_core::{InstanceConfig, elements_signature, merge_secrets};
use hubhook_store::{AttemptOutcome, AttemptRecord, PendingNotification, StoreError};
use jiff::SignedDuration;

use crate::{Engine, redacted_url};

/// Header carrying the notification id, constant across retries.
pub const WEBHOOK_ID_HEADER: &str = "Elements-Webhook-Id";
/// Header carrying `sha256=<base64 HMAC-SHA256(key, body)>` when the instance has a key.
pub const WEBHOOK_SIGNATURE_HEADER: &str = "Elements-Webhook-Signature";

/// Make one attempt and record it.
pub async fn attempt(engine: &Engine, notification: PendingNotification) -> anyhow::Result<()> {
    let started_at = engine.clock().now();
    let clock_start = Instant::now();
    let result = send(engine, &notification).await;
    let latency_ms = clock_start.elapsed().as_millis() as i64;
    let failed_attempts = notification.failed_attempts + 1;
    let (status_code, error, outcome) = match result {
        Ok(status) if (200..300).contains(&status) => {
            (Some(status), None, AttemptOutcome::Delivered)
        }
        other => {
            let (status, message) = match other {
                Ok(status) => (Some(status), format!("callback answered HTTP {status}")),
                Err(e) => (e.status, e.message),
            };
            let outcome = match engine.config().retry_schedule.delay_after(failed_attempts) {
                Some(delay) => AttemptOutcome::RetryAt(
                    engine.clock().now()
                        + SignedDuration::try_from(delay).unwrap_or(SignedDuration::from_secs(60)),
                ),
                None => AttemptOutcome::Queued,
            };
            tracing::warn!(notification = %notification.id, instance = %notification.instance_id, attempt = failed_attempts, error = ?message, ?outcome, "delivery failed");
            (status, Some(message), outcome)
        }
    };
    if outcome == AttemptOutcome::Delivered {
        tracing::info!(notification = %notification.id, instance = %notification.instance_id, latency_ms, "delivered");
    }
    let outcome_label = match outcome {
        AttemptOutcome::Delivered => "delivered",
        AttemptOutcome::RetryAt(_) => "retry",
        AttemptOutcome::Queued => "queued",
    };
    metrics::counter!("hubhook_deliveries_total", "outcome" => outcome_label).increment(1);
    metrics::histogram!("hubhook_delivery_duration_seconds")
        .record(clock_start.elapsed().as_secs_f64());
    let record = AttemptRecord {
        notification_id: notification.id.clone(),
        owner: engine.config().node_id.clone(),
        lease_token: notification.lease_token.clone(),
        attempted_at: started_at,
        status_code,
        latency_ms,
        error,
        outcome,
    };
    match engine.store().finish_attempt(record).await {
        Ok(()) => Ok(()),
        Err(StoreError::LeaseLost) => {
            tracing::warn!(notification = %notification.id, "lease lost during delivery; the attempt is not recorded");
            Ok(())
        }
        Err(err) => Err(err).context("recording delivery attempt"),
    }
}

struct SendError {
    status: Option<u16>,
    message: String,
}

impl SendError {
    fn new(message: impl Into<String>) -> SendError {
        SendError {
            status: None,
            message: message.into(),
        }
    }
}

async fn send(engine: &Engine, notification: &PendingNotification) -> Result<u16, SendError> {
    let instance = engine
        .store()
        .instance(notification.instance_id)
        .await
        .map_err(|e| SendError::new(format!("reading instance: {e}")))?
        .ok_or_else(|| SendError::new("instance no longer exists"))?;
    let config = InstanceConfig::parse(&merge_secrets(&instance.configuration, &instance.secrets))
        .map_err(|e| SendError::new(format!("stored configuration is invalid: {e}")))?;
    let callback_url = config
        .events
        .callback_url
        .ok_or_else(|| SendError::new("instance has no event.notification.callback.url"))?;
    engine
        .callback_policy()
        .check_literal(&callback_url)
        .map_err(|e| SendError::new(e.0))?;

    let mut request = engine
        .inner
        .callback_http
        .post(&callback_url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(WEBHOOK_ID_HEADER, notification.id.0.as_str());
    if let Some(key) = &config.events.signature_key {
        request = request.header(
            WEBHOOK_SIGNATURE_HEADER,
            elements_signature(key.as_bytes(), notification.body.as_bytes()),
        );
    }
    // reqwest's errors name the URL; the stored and logged error must not carry its query
    // string (it may hold the receiver's token), so the URL is put back redacted.
    let response = request
        .body(notification.body.clone())
        .send()
        .await
        .map_err(|e| {
            SendError::new(format!(
                "{} ({})",
                transport_message(&e.without_url()),
                redacted_url(&callback_url)
            ))
        })?;
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(status);
    }
    let body = body_start(response).await;
    Err(SendError {
        status: Some(status),
        message: format!("callback answered HTTP {status}: {body}"),
    })
}

/// The first bytes of a failed callback's answer, for the attempt record. Read in chunks and
/// cut short, so a receiver that streams an endless body cannot exhaust our memory.
async fn body_start(mut response: reqwest::Response) -> String {
    const KEEP: usize = 512;
    let mut body = Vec::new();
    while body.len() < KEEP {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk[..chunk.len().min(KEEP - body.len())]),
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}
