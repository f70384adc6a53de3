//! `POST /instances/{id}/replay` `{"from": RFC 3339, "to": RFC 3339}`: the instance's events
//! stored in `[from, to)` are delivered again as new notifications.
//!
//! Each notification that carried such events is replayed whole (same events, same records,
//! same event ids), under a new notification id and with `message.replayOf` naming the
//! original: receivers that deduplicate per event recognize the events, and the replay has its
//! own attempts, so the original's history is never rewritten. Replaying twice makes two
//! replays. At most [`MAX_REPLAY`] notifications per request, so one call cannot flood a
//! receiver or the writer; a larger range is refused (nothing stored) with the count to split.
//!
//! A replay is stored in parts (on SQLite a thousand per write), so a request cut short (a
//! crash, a dropped connection, a timeout on the caller's side) may have stored some of its
//! replays, which are then delivered; retried, it would store and deliver those again. With
//! an `Idempotency-Key` header, a replay's id is made from the key and the range instead of
//! the time, so a retry with the same key and range makes the same ids, and the store's
//! `ON CONFLICT (id) DO NOTHING` keeps each once: the retry stores only what the first attempt
//! did not, and says how many were there already (`alreadyStored`). Without the key, each
//! request is a replay of its own (its ids are made from its time and a random part). The key
//! needs no table of its own: it lives in the ids it made, for as long as they are kept.

use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
};
use hubhook_core::replay_notification;
use hubhook_store::NewNotification;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::body::{JsonBody, shown};
use crate::openapi::CommonErrors;
use crate::routes::instances::find;
use crate::routes::notifications::parse_instant;
use crate::{ApiError, AppState, auth::Caller};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(replay))
}

/// Most notifications one replay request creates.
pub const MAX_REPLAY: u32 = 10_000;

/// `POST /instances/{id}/replay` body; another field is refused, not ignored.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayIn {
    /// RFC 3339: events stored at or after this instant.
    from: Option<String>,
    /// RFC 3339: events stored before this instant.
    to: Option<String>,
}

/// The header that makes a retried replay store nothing twice (see the module docs).
const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// Longest `Idempotency-Key` taken, in characters (a UUID is 36).
const MAX_KEY: usize = 255;

/// The request's `Idempotency-Key`, if it sent one: 1 to [`MAX_KEY`] printable ASCII
/// characters, once.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let mut values = headers.get_all(IDEMPOTENCY_KEY).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::bad_request(format!(
            "`{IDEMPOTENCY_KEY}` is sent twice; send it once"
        )));
    }
    let text = String::from_utf8_lossy(value.as_bytes());
    let key = text.trim();
    if key.is_empty() || key.len() > MAX_KEY || !key.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(ApiError::bad_request(format!(
            "`{IDEMPOTENCY_KEY}`: invalid value, got `{}`, expected 1 to {MAX_KEY} printable ASCII characters (a UUID, for instance)",
            shown(&text.escape_debug().to_string(), 100)
        )));
    }
    Ok(Some(key.to_owned()))
}

/// What a replay created.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplayOut {
    /// New notifications, due now.
    pub replays: u64,
    /// With an `Idempotency-Key`: replays of this request that an earlier attempt with the
    /// same key and range had stored already (not stored again). Absent when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub already_stored: Option<u64>,
    /// Present when they cannot go out now, and says why and what sends them: the instance's
    /// subscription is deactivated (they are queued until a redelivery reactivates it), or
    /// the instance is disabled (they wait until it is enabled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
}

/// Deliver the events stored in `[from, to)` again, as new notifications.
#[utoipa::path(
    post, path = "/instances/{id}/replay", tag = "delivery",
    params(
        ("id" = String, Path, description = "Instance id"),
        ("Idempotency-Key" = Option<String>, Header,
            description = "1 to 255 printable ASCII characters: a retry with the same key and range stores nothing twice"),
    ),
    request_body = ReplayIn,
    security(("UserOrganization" = [])),
    responses((status = 202, body = ReplayOut), CommonErrors)
)]
async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ReplayIn>,
) -> Result<(StatusCode, Json<ReplayOut>), ApiError> {
    let key = idempotency_key(&headers)?;
    let from = parse_instant("from", body.from.as_deref())?;
    let to = parse_instant("to", body.to.as_deref())?;
    if to <= from {
        return Err(ApiError::bad_request(format!(
            "`to` ({to}) must be after `from` ({from})"
        )));
    }
    let instance = find(&state, &caller, &id).await?;
    let engine = &state.engine;
    let originals = engine
        .store()
        .replayable_notifications(instance.id, from, to, MAX_REPLAY + 1)
        .await?;
    if originals.len() > MAX_REPLAY as usize {
        return Err(ApiError::bad_request(format!(
            "more than {MAX_REPLAY} notifications carry events stored between `from` and `to`; replay a shorter range"
        )));
    }
    let now = engine.clock().now();
    let salt = match &key {
        // The range as read, so that `…Z` and `…+00:00` are one request.
        Some(key) => format!("key:{from}:{to}:{key}"),
        // The time and a random part: two requests in one millisecond are two replays.
        None => format!(
            "{}:{}",
            now.as_millisecond(),
            crate::auth::new_secret().map_err(ApiError::internal)?
        ),
    };
    let replays: Vec<_> = originals
        .iter()
        .filter_map(|original| {
            let replay = replay_notification(&original.id, &original.body, &salt)?;
            Some((
                original.id.clone(),
                NewNotification {
                    id: replay.id,
                    event_ids: replay.event_ids,
                    body: replay.body,
                },
            ))
        })
        .collect();
    let made = replays.len() as u64;
    let replays = match engine
        .store()
        .insert_replays(instance.id, replays, now)
        .await
    {
        Err(hubhook_store::StoreError::NotFound) => {
            return Err(ApiError::not_found(format!(
                "no instance with id {}: it was deleted",
                instance.id
            )));
        }
        other => other?,
    };
    engine.wake_dispatcher();
    tracing::info!(instance = %instance.id, replays, "replay requested");
    // Stored either way (nothing is lost), but a caller must not think they are on their way.
    let held = if instance.disabled {
        Some("the instance is disabled: the replays are delivered once it is enabled".to_owned())
    } else {
        engine.store().deactivation(instance.id).await?.map(|d| {
            format!(
                "the instance's delivery subscription was deactivated at {} ({}): the replays \
                 are queued until a redelivery reactivates it (PUT \
                 /notifications/subscriptions/deliveries?where=instanceId={})",
                d.deactivated_at, d.reason, instance.id
            )
        })
    };
    let already_stored = key
        .is_some()
        .then(|| made.saturating_sub(replays))
        .filter(|n| *n > 0);
    Ok((
        StatusCode::ACCEPTED,
        Json(ReplayOut {
            replays,
            already_stored,
            held,
        }),
    ))
}
