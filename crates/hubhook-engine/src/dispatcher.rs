//! One delivery attempt of one notification.
//!
//! The body was built and stored when the events were committed, so every attempt sends the
//! same bytes with the same `Elements-Webhook-Id` and `webhook-id`: receivers can deduplicate,
//! and the Cloud Elements signature of a retry matches the original. The Standard Webhooks
//! signature covers the attempt's own timestamp, so it is computed per attempt.
//!
//! Any 2xx answer is success. `410 Gone` deactivates the instance's subscription at once (the
//! receiver says it is gone for good). Everything else (other statuses, redirects, timeouts,
//! refused connections, refused addresses) is a failure: under the organization's `retry`
//! policy it is retried on its schedule (jittered, and never before the receiver's
//! `Retry-After`), and once the schedule is exhausted the subscription is deactivated; under
//! `queue`, the first failure deactivates it. A deactivated subscription queues the instance's
//! notifications until a redelivery.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use hubhook_connectwise::transport_message;
use hubhook_core::delivery_policy::{next_delay, retry_after};
use hubhook_core::{FailurePolicy, elements_signature, signature_header};
use hubhook_store::{
    AttemptOutcome, AttemptRecord, ConfigVersion, PendingNotification, StoreError,
};
use jiff::SignedDuration;
use tokio::sync::OwnedSemaphorePermit;

use crate::delivery_target::DeliveryTarget;
use crate::receivers::{Admission, receiver_of};
use crate::{Engine, redacted_url};

/// Header carrying the notification id, constant across retries.
pub const WEBHOOK_ID_HEADER: &str = "Elements-Webhook-Id";
/// Header carrying `sha256=<base64 HMAC-SHA256(key, body)>` when the instance has a key.
pub const WEBHOOK_SIGNATURE_HEADER: &str = "Elements-Webhook-Signature";
/// Standard Webhooks: the notification id (the same as `Elements-Webhook-Id`).
pub const STANDARD_ID_HEADER: &str = "webhook-id";
/// Standard Webhooks: the Unix time of this attempt, in seconds (signed with the body).
pub const STANDARD_TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// Standard Webhooks: `v1,<base64>` per secret, separated by spaces.
pub const STANDARD_SIGNATURE_HEADER: &str = "webhook-signature";

/// How long an attempt waits for its receiver to finish one of the deliveries in flight
/// before giving its claim back.
const FULL_RECEIVER_WAIT: Duration = Duration::from_secs(1);

/// How much of a callback's answer is kept with the attempt.
pub const RESPONSE_EXCERPT_BYTES: usize = 1024;

/// What came of one POST.
struct Sent {
    status: Option<u16>,
    error: Option<String>,
    excerpt: Option<String>,
    retry_after: Option<Duration>,
}

impl Sent {
    fn failed(message: impl Into<String>) -> Sent {
        Sent {
            status: None,
            error: Some(message.into()),
            excerpt: None,
            retry_after: None,
        }
    }

    fn delivered(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// Whether the answer says the receiver is unwell (for its circuit breaker): no answer, a
    /// 5xx or a 429.
    fn unwell(&self) -> bool {
        self.status.is_none_or(|s| s >= 500 || s == 429)
    }
}

/// For an ordered instance: `Some(when to look again)` when an earlier notification of the
/// instance is undelivered, so this one must wait (head-of-line blocking); `None` when this is
/// the head. One read per attempt, for ordered instances only.
async fn behind_the_head(
    engine: &Engine,
    notification: &PendingNotification,
) -> anyhow::Result<Option<jiff::Timestamp>> {
    let head = engine
        .store()
        .oldest_undelivered(notification.instance_id)
        .await
        .context("reading the head of an ordered instance")?;
    Ok(match head {
        Some((id, due)) if id != notification.id => {
            // Look again when the head is due, or soon if it is due or in flight now.
            let soon = engine.clock().now() + SignedDuration::from_secs(1);
            Some(due.map_or(soon, |due| due.max(soon)))
        }
        _ => None,
    })
}

/// Gives the notification back unattempted, due when its receiver can take it, with the
/// attempt row begun for it (no POST was made).
async fn release(
    engine: &Engine,
    notification: &PendingNotification,
    begun: Option<i64>,
    due_at: jiff::Timestamp,
    why: &'static str,
) -> anyhow::Result<()> {
    metrics::counter!("hubhook_deliveries_deferred_total", "reason" => why).increment(1);
    match engine
        .store()
        .release_notification(&notification.id, &notification.lease_token, due_at, begun)
        .await
    {
        Ok(()) | Err(StoreError::LeaseLost) => Ok(()),
        Err(err) => Err(err).context("releasing a deferred notification"),
    }
}

/// Make one attempt and record it. `version` is the instance's delivery configuration
/// version read when the batch was claimed (see [`crate::delivery_target`]); `begun`, the
/// attempt's row if the claim wrote it already (else it is written here, before the POST);
/// `slot`, the dispatcher's slot, given back once the POST is answered (see `work_loop`).
pub async fn attempt(
    engine: &Engine,
    notification: PendingNotification,
    version: Option<ConfigVersion>,
    begun: Option<i64>,
    slot: OwnedSemaphorePermit,
) -> anyhow::Result<()> {
    let started_at = engine.clock().now();
    let clock_start = Instant::now();
    let target = engine
        .inner
        .targets
        .get(
            engine.store(),
            &engine.config().retry_schedule,
            notification.instance_id,
            version,
        )
        .await;
    let mut attempt_id = begun;
    if let Ok(target) = &target
        && target.ordered
    {
        let wait = match behind_the_head(engine, &notification).await {
            Ok(None) => None,
            Ok(Some(due_at)) => Some((due_at, "ordered: an earlier one is undelivered")),
            // Given back (with its begun row: no POST was made) rather than left leased.
            Err(err) => {
                tracing::warn!(notification = %notification.id, error = %format!("{err:#}"), "an ordered notification was given back");
                let soon = started_at + SignedDuration::from_secs(1);
                Some((soon, "ordered: the head could not be read"))
            }
        };
        if let Some((due_at, why)) = wait {
            return release(engine, &notification, begun, due_at, why).await;
        }
    }
    let sent = match &target {
        Ok(target) => {
            let origin = receiver_of(target.organization, &target.callback_url);
            let receivers = &engine.inner.receivers;
            let admission = receivers
                .admit_waiting(
                    notification.instance_id,
                    &origin,
                    || engine.clock().now(),
                    FULL_RECEIVER_WAIT,
                )
                .await;
            match admission {
                Admission::Go => {
                    let mut admitted = Admitted {
                        receivers,
                        origin: &origin,
                        reported: false,
                    };
                    let admitted_at = engine.clock().now();
                    // The attempt's row exists before the POST leaves: a crash after it can
                    // never leave a POST the history does not show.
                    if attempt_id.is_none() {
                        let begun = engine
                            .store()
                            .begin_attempt(
                                &notification.id,
                                &notification.lease_token,
                                &engine.config().node_id,
                                started_at,
                            )
                            .await;
                        match begun {
                            Ok(id) => attempt_id = Some(id),
                            Err(err) => {
                                // `admitted` gives the admission back.
                                return match err {
                                    StoreError::LeaseLost => Ok(()),
                                    err => Err(err).context("recording the start of an attempt"),
                                };
                            }
                        }
                    }
                    let sent = send_in_slot(engine, target, &origin, &notification, slot).await;
                    receivers.finish(&origin, sent.unwell(), admitted_at, engine.clock().now());
                    admitted.reported = true;
                    sent
                }
                Admission::Later(due_at, why) => {
                    return release(engine, &notification, begun, due_at, why.as_str()).await;
                }
            }
        }
        Err(message) => Sent::failed(message.clone()),
    };
    let latency_ms = clock_start.elapsed().as_millis() as i64;
    let failed_attempts = notification.failed_attempts + 1;
    let outcome = if sent.delivered() {
        AttemptOutcome::Delivered
    } else {
        failure_outcome(engine, target.as_deref().ok(), &sent, failed_attempts)
    };
    match outcome {
        AttemptOutcome::Delivered => {
            tracing::info!(notification = %notification.id, instance = %notification.instance_id, latency_ms, "delivered");
        }
        _ => {
            tracing::warn!(notification = %notification.id, instance = %notification.instance_id, attempt = failed_attempts, error = ?sent.error, ?outcome, "delivery failed");
        }
    }
    metrics::counter!("hubhook_deliveries_total", "outcome" => outcome.as_str()).increment(1);
    metrics::histogram!("hubhook_delivery_duration_seconds")
        .record(clock_start.elapsed().as_secs_f64());
    let record = AttemptRecord {
        attempt_id,
        notification_id: notification.id.clone(),
        owner: engine.config().node_id.clone(),
        lease_token: notification.lease_token.clone(),
        attempted_at: started_at,
        status_code: sent.status,
        latency_ms,
        error: sent.error,
        response_excerpt: sent.excerpt,
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

/// What follows a failed attempt: see the module documentation.
fn failure_outcome(
    engine: &Engine,
    target: Option<&DeliveryTarget>,
    sent: &Sent,
    failed_attempts: u32,
) -> AttemptOutcome {
    if sent.status == Some(410) {
        return AttemptOutcome::Deactivated;
    }
    let schedule = match target {
        Some(target) if target.settings.failure_policy == FailurePolicy::Queue => {
            return AttemptOutcome::Deactivated;
        }
        Some(target) => &target.schedule,
        // No target (the instance is unreadable): the server's schedule.
        None => &engine.config().retry_schedule,
    };
    match schedule.delay_after(failed_attempts) {
        Some(delay) => {
            let delay = next_delay(delay, random_unit(), sent.retry_after)
                .min(hubhook_core::retry::MAX_RETRY_DELAY);
            let now = engine.clock().now();
            // Bounded above, so the sum stays a timestamp; checked all the same, since a panic
            // here would leave the notification leased and retried at every lease's end.
            let at = SignedDuration::try_from(delay)
                .ok()
                .and_then(|delay| now.checked_add(delay).ok())
                .unwrap_or(now + SignedDuration::from_secs(3600));
            AttemptOutcome::RetryAt(at)
        }
        None => AttemptOutcome::Deactivated,
    }
}

/// A random number in [0, 1) for jitter; 0.5 (no jitter) without a random source.
fn random_unit() -> f64 {
    let mut bytes = [0u8; 4];
    match getrandom::fill(&mut bytes) {
        Ok(()) => f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0),
        Err(_) => 0.5,
    }
}

/// An admission to a receiver, given back unless its end was reported: an attempt that ends
/// otherwise (an error before its POST, a panic, an abort) would leave the receiver's count of
/// deliveries in flight one too high for good, and a receiver taking one at a time
/// (`crate::receivers`) would take none again.
struct Admitted<'a> {
    receivers: &'a crate::receivers::Receivers,
    origin: &'a str,
    reported: bool,
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        if !self.reported {
            self.receivers.cancel(self.origin);
        }
    }
}

/// How long a POST holds its dispatcher slot before it counts as slow.
pub(crate) const SLOW_AFTER: Duration = Duration::from_secs(2);
/// Slow POSTs allowed per dispatcher slot (so `delivery_concurrency` × this, in all).
pub(crate) const SLOW_PER_SLOT: usize = 4;

/// [`send`], giving the dispatcher's slot back once the POST has taken [`SLOW_AFTER`], if the
/// node's allowance of slow deliveries has room: the POST goes on to its answer or its
/// timeout, and the slot takes other work.
///
/// Why: per-receiver isolation bounds what one receiver holds (`receiver_concurrency` slots),
/// not what many do. Receivers that never answer, or whose firewall drops packets, hold their
/// slots for the whole delivery timeout (15 s) per attempt, so a few of them (one
/// organization's, or several) would take every slot of the node and delay every other
/// receiver by up to the timeout at a time. A healthy receiver answers in milliseconds, so a
/// POST still unanswered after 2 s is almost surely one of those; its slot goes back and the
/// others wait at most 2 s. The slow ones stay bounded: each receiver's own limit, and
/// `SLOW_PER_SLOT` per slot over all of them (past that, a slow POST keeps its slot, as
/// before). A backlog to one healthy receiver never meets the 2 s, so what a node sends to it
/// at once is still `delivery_concurrency`.
///
/// Once past [`SLOW_AFTER`], the POST also counts as slow for its organization's share of the
/// slots until it ends (see [`crate::fair_share`]): an organization with slow POSTs holds at
/// most its share of the slots even when nobody else has work, so that past the slow
/// allowance its hanging POSTs still leave slots to whoever comes next; and for its receiver,
/// which lets a receiver that has not answered yet take one more POST (see
/// [`crate::receivers`], "One at a time until it answers").
async fn send_in_slot(
    engine: &Engine,
    target: &DeliveryTarget,
    origin: &str,
    notification: &PendingNotification,
    slot: OwnedSemaphorePermit,
) -> Sent {
    let sending = send(engine, target, notification);
    tokio::pin!(sending);
    tokio::select! {
        sent = &mut sending => return sent,
        () = tokio::time::sleep(SLOW_AFTER) => {}
    }
    // Locals of this future, so they stop counting however the attempt ends.
    let mut counted_slow = engine.inner.fair_share.slow(notification.organization_id);
    // A receiver that has not answered yet may take one more POST (`crate::receivers`): the
    // dispatcher is woken below either way.
    let slow_to_receiver = engine.inner.receivers.slow(origin);
    let slow = engine
        .inner
        .slow_deliveries
        .clone()
        .try_acquire_owned()
        .ok();
    let slot = match slow {
        Some(_) => {
            metrics::counter!("hubhook_deliveries_slow_total").increment(1);
            drop(slot);
            counted_slow.gave_slot_back();
            // The organization now holds one slot fewer: if its share held it back, the
            // dispatcher may claim another of its notifications (it left them out of its next
            // due time, so nothing else would wake it).
            engine.wake_dispatcher();
            None
        }
        None => {
            engine.wake_dispatcher();
            Some(slot)
        }
    };
    let sent = sending.await;
    drop((slot, slow, counted_slow, slow_to_receiver));
    sent
}

async fn send(
    engine: &Engine,
    target: &DeliveryTarget,
    notification: &PendingNotification,
) -> Sent {
    if let Err(e) = engine.callback_policy().check_literal(&target.callback_url) {
        return Sent::failed(e.0);
    }
    let now = engine.clock().now();
    let timestamp = now.as_second();
    let body = notification.body.as_bytes();
    let mut request = engine
        .inner
        .callback_http
        .post(&target.callback_url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(WEBHOOK_ID_HEADER, notification.id.0.as_str())
        .header(STANDARD_ID_HEADER, notification.id.0.as_str())
        .header(STANDARD_TIMESTAMP_HEADER, timestamp.to_string());
    if let Some(key) = &target.signature_key {
        request = request.header(
            WEBHOOK_SIGNATURE_HEADER,
            elements_signature(key.as_bytes(), body),
        );
    }
    // An instance without a webhook secret (created before secrets existed, until its first
    // rotation) gets the id and timestamp but no Standard Webhooks signature.
    let secrets = target.signing_secrets(now);
    if !secrets.is_empty() {
        request = request.header(
            STANDARD_SIGNATURE_HEADER,
            signature_header(&secrets, &notification.id.0, timestamp, body),
        );
    }
    // reqwest's errors name the URL; the stored and logged error must not carry its query
    // string (it may hold the receiver's token), so the URL is put back redacted.
    let response = match request.body(notification.body.clone()).send().await {
        Ok(response) => response,
        Err(e) => {
            return Sent::failed(format!(
                "{} ({})",
                transport_message(&e.without_url()),
                redacted_url(&target.callback_url)
            ));
        }
    };
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| retry_after(v, now));
    let excerpt = body_start(response).await;
    Sent {
        status: Some(status),
        error: (!(200..300).contains(&status)).then(|| format!("callback answered HTTP {status}")),
        excerpt: Some(excerpt),
        retry_after,
    }
}

/// The first [`RESPONSE_EXCERPT_BYTES`] of a callback's answer, for the attempt record. Read in
/// chunks and cut short, so a receiver that streams an endless body cannot exhaust our memory.
async fn body_start(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while body.len() < RESPONSE_EXCERPT_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => body
                .extend_from_slice(&chunk[..chunk.len().min(RESPONSE_EXCERPT_BYTES - body.len())]),
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}
