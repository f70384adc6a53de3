//! `POST /instances/{id}/replay` `{"from": RFC 3339, "to": RFC 3339}`: the instance's events
//! stored in `[from, to)` are delivered again as new notifications.
//!
//! Each notification that carried such events is replayed whole (same events, same records,
//! same event ids), under a new notification id and with `message.replayOf` naming the
//! original: receivers that deduplicate per event recognize the events, and the replay has its
//! own attempts, so the original's history is never rewritten. Replaying twice makes two
//! replays. At most [`MAX_REPLAY`] notifications per request, so one call cannot flood a
//! receiver or the writer; a larger range is refused (nothing stored) with the count to split.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use hubhook_core::replay_notification;
use hubhook_store::NewNotification;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::body::JsonBody;
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

/// What a replay created.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplayOut {
    /// New notifications, due now.
    pub replays: u64,
    /// Present when they cannot go out now, and says why and what sends them: the instance's
    /// subscription is deactivated (they are queued until a redelivery reactivates it), or
    /// the instance is disabled (they wait until it is enabled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
}

/// Deliver the events stored in `[from, to)` again, as new notifications.
#[utoipa::path(
    post, path = "/instances/{id}/replay", tag = "delivery",
    params(("id" = String, Path, description = "Instance id")),
    request_body = ReplayIn,
    security(("UserOrganization" = [])),
    responses((status = 202, body = ReplayOut), CommonErrors)
)]
async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ReplayIn>,
) -> Result<(StatusCode, Json<ReplayOut>), ApiError> {
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
    let salt = now.as_millisecond().to_string();
    let replays = originals
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
    Ok((StatusCode::ACCEPTED, Json(ReplayOut { replays, held })))
}
