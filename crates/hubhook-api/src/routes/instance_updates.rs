//! Changing an instance: `PUT /instances/{id}` (full replace), `PATCH /instances/{id}`
//! (partial), and `PUT|PATCH /instances`, which act on the instance of the `Element` token.
//!
//! Every change goes through the same checks as a create (`instances::validate`: every
//! problem named by its field, the callback address, the poller URLs, the ConnectWise
//! credentials and a trial read of each poller URL), on the whole instance as it would be after
//! the change, and nothing is stored unless all of them pass. The calls to ConnectWise are
//! made only for what the change touches (the site or keys; new or changed resources): the
//! rest was checked when it was stored, and a rename must not depend on ConnectWise being up.
//! The poller and the dispatcher read the stored configuration at every poll and every
//! delivery, so a change applies from the next one without a restart; the store brings the poll jobs in line (new resources polled now,
//! removed ones dropped, kept ones keep their cursor).
//!
//! Secrets are never shown, so a client that sends back what it read sends `********`: a
//! secret sent as `********` keeps its stored value, in a PUT as in a PATCH. One sent as
//! `********` with no stored value behind it is refused (by `validate`), not dropped.
//!
//! Stored ConnectWise keys go only to the site they were given for: a change of `baseUrl` must
//! send `public.key` and `private.key` again ([`keys_follow_site`]). Otherwise anyone allowed to
//! change the instance, who may never read its keys, could point it at a server of their own
//! and read the keys from the credentials check's request.

use std::collections::HashMap;
use std::sync::Arc;

use axum::{
    Json,
    extract::{Path, State},
};
use hubhook_core::{
    InstanceConfig, InstanceId, SECRET_KEYS, is_mask, merge_secrets, split_secrets, stored_site,
};
use hubhook_store::{CHANGED_MEANWHILE, InstanceRow, InstanceUpdate, StoreError};
use serde_json::{Map, Value};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::{Caller, TokenInstance};
use crate::body::JsonBody;
use crate::openapi::{ChangedMeanwhile, CommonErrors, ConnectWiseUnavailable};
use crate::routes::instances::{ElementRef, InstanceIn, InstanceOut, find, instance_out, validate};
use crate::{ApiError, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(replace_instance, patch_instance))
        .routes(routes!(replace_token_instance, patch_token_instance))
}

/// Replace an instance: the body is a whole instance, as for a create (`element` may be left
/// out). Secrets sent as `********` keep their stored value; the credentials are checked again.
#[utoipa::path(
    put, path = "/instances/{id}", tag = "instances",
    params(("id" = String, Path, description = "Instance id")),
    request_body = InstanceIn,
    security(("UserOrganization" = [])),
    responses((status = 200, description = "The instance as replaced", body = InstanceOut), ChangedMeanwhile, CommonErrors, ConnectWiseUnavailable)
)]
async fn replace_instance(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<InstanceIn>,
) -> Result<Json<InstanceOut>, ApiError> {
    let row = find(&state, &caller, &id).await?;
    replace(&state, &row, body).await.map(Json)
}

/// Change part of an instance: `configuration` keys are merged (a `null` value removes the key),
/// `tags` and `name` replace the stored ones. Checked as a whole, like a create.
#[utoipa::path(
    patch, path = "/instances/{id}", tag = "instances",
    params(("id" = String, Path, description = "Instance id")),
    request_body = InstanceIn,
    security(("UserOrganization" = [])),
    responses((status = 200, description = "The instance as changed", body = InstanceOut), ChangedMeanwhile, CommonErrors, ConnectWiseUnavailable)
)]
async fn patch_instance(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<InstanceIn>,
) -> Result<Json<InstanceOut>, ApiError> {
    let row = find(&state, &caller, &id).await?;
    patch(&state, &row, body).await.map(Json)
}

/// Replace the instance of the `Element` token.
#[utoipa::path(
    put, path = "/instances", tag = "instances",
    request_body = InstanceIn,
    security(("UserOrganizationElement" = [])),
    responses((status = 200, description = "The instance as replaced", body = InstanceOut), ChangedMeanwhile, CommonErrors, ConnectWiseUnavailable)
)]
async fn replace_token_instance(
    State(state): State<AppState>,
    token: TokenInstance,
    JsonBody(body): JsonBody<InstanceIn>,
) -> Result<Json<InstanceOut>, ApiError> {
    replace(&state, &token.instance, body).await.map(Json)
}

/// Change part of the instance of the `Element` token.
#[utoipa::path(
    patch, path = "/instances", tag = "instances",
    request_body = InstanceIn,
    security(("UserOrganizationElement" = [])),
    responses((status = 200, description = "The instance as changed", body = InstanceOut), ChangedMeanwhile, CommonErrors, ConnectWiseUnavailable)
)]
async fn patch_token_instance(
    State(state): State<AppState>,
    token: TokenInstance,
    JsonBody(body): JsonBody<InstanceIn>,
) -> Result<Json<InstanceOut>, ApiError> {
    patch(&state, &token.instance, body).await.map(Json)
}

/// A full replace of `row` by `body`.
pub(crate) async fn replace(
    state: &AppState,
    row: &InstanceRow,
    body: InstanceIn,
) -> Result<InstanceOut, ApiError> {
    apply(state, row, |row| {
        let mut body = body.clone();
        if body.element.is_none() {
            body.element = Some(ElementRef::connectwise());
        }
        if let Some(configuration) = &mut body.configuration {
            keys_follow_site(row, configuration)?;
            for key in SECRET_KEYS {
                if configuration.get(*key).is_some_and(is_mask)
                    && let Some(stored) = row.secrets.get(*key)
                {
                    configuration.insert((*key).to_string(), stored.clone());
                }
            }
        }
        Ok(body)
    })
    .await
}

/// A partial change of `row`: the body's configuration keys merged into the stored ones.
pub(crate) async fn patch(
    state: &AppState,
    row: &InstanceRow,
    body: InstanceIn,
) -> Result<InstanceOut, ApiError> {
    apply(state, row, |row| {
        let changes = body.configuration.clone().unwrap_or_default();
        keys_follow_site(row, &changes)?;
        let configuration = merged_configuration(row, changes);
        Ok(InstanceIn {
            element: Some(body.element.clone().unwrap_or_else(ElementRef::connectwise)),
            provider_data: None,
            configuration: Some(configuration),
            tags: Some(
                body.tags
                    .clone()
                    .unwrap_or_else(|| row.tags.iter().cloned().map(Value::String).collect()),
            ),
            name: Some(body.name.clone().unwrap_or_else(|| row.name.clone())),
            other: body.other.clone(),
        })
    })
    .await
}

/// Refuses a change that moves the instance to another ConnectWise site (`baseUrl`) while
/// keeping a stored key (`public.key`, `private.key` left out or sent as `********`): stored
/// keys are sent only to the site they were given for. `sent` is the configuration as the
/// caller sent it, before stored secrets are put back.
pub(crate) fn keys_follow_site(
    row: &InstanceRow,
    sent: &Map<String, Value>,
) -> Result<(), ApiError> {
    let Some(new_site) = stored_site(sent) else {
        return Ok(());
    };
    if stored_site(&row.configuration).as_deref() == Some(new_site.as_str()) {
        return Ok(());
    }
    let kept: Vec<&str> = ["public.key", "private.key"]
        .into_iter()
        .filter(|key| row.secrets.contains_key(*key))
        .filter(|key| {
            sent.get(*key).is_none_or(|value| {
                is_mask(value) || value.as_str().is_some_and(|s| s.trim().is_empty())
            })
        })
        .collect();
    if kept.is_empty() {
        return Ok(());
    }
    Err(ApiError::bad_request(format!(
        "`baseUrl` changes to another ConnectWise site, so send {} again: stored keys are only sent to the site they were given for",
        kept.iter()
            .map(|key| format!("`{key}`"))
            .collect::<Vec<_>>()
            .join(" and ")
    )))
}

/// The stored configuration (secrets included) with `changes` merged in: `null` removes a key,
/// a secret sent as `********` keeps its stored value (and with none stored, stays `********`
/// for `validate` to refuse).
pub(crate) fn merged_configuration(
    row: &InstanceRow,
    changes: Map<String, Value>,
) -> Map<String, Value> {
    let mut configuration = merge_secrets(&row.configuration, &row.secrets);
    for (key, value) in changes {
        let masked_secret = SECRET_KEYS.contains(&key.as_str())
            && is_mask(&value)
            && row.secrets.contains_key(&key);
        if value.is_null() {
            configuration.remove(&key);
        } else if !masked_secret {
            configuration.insert(key, value);
        }
    }
    configuration
}

/// How many times a change is made again from a fresh read because another node stored a
/// change between its read and its write, before it is refused (409).
const ATTEMPTS: usize = 5;

/// Makes the instance as `change` makes it from the stored one, checks it, and stores it only
/// if every check passes and the instance is still as it was read.
///
/// Changes made at once must not undo each other: each is made from a read, and written back
/// whole (seen: 20 PATCHes of distinct keys sent at once, each answered 200, 4 kept). So:
/// - on this node, changes of one instance take turns ([`ChangeLocks`]), each made from a read
///   taken once its turn has come, so that they all apply, one after the other;
/// - across nodes, the write is conditional on the version read (`read_version`); if another
///   node stored a change meanwhile, `change` is made again from a fresh read, and after
///   [`ATTEMPTS`] such races the change is refused (409) rather than stored over the other.
pub(crate) async fn apply(
    state: &AppState,
    row: &InstanceRow,
    change: impl Fn(&InstanceRow) -> Result<InstanceIn, ApiError>,
) -> Result<InstanceOut, ApiError> {
    let _turn = state.changes.turn(row.id).await;
    for _ in 0..ATTEMPTS {
        let row = state
            .engine
            .store()
            .get_instance(row.organization_id, row.id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no instance with id {}", row.id)))?;
        if let Some(stored) = store(state, &row, change(&row)?).await? {
            return Ok(stored);
        }
    }
    Err(ApiError::conflict(format!(
        "{CHANGED_MEANWHILE} on another node, {ATTEMPTS} times in a row: send the change again"
    )))
}

/// One lock per instance being changed on this node (an entry lives only while a change holds
/// or waits for it, so the map holds no more than the changes in flight). A lock per instance,
/// not a few shared ones: a change may wait seconds on ConnectWise (its credentials check and
/// trial reads), and another organization's change must not wait behind it.
#[derive(Default)]
pub(crate) struct ChangeLocks(std::sync::Mutex<HashMap<InstanceId, Arc<tokio::sync::Mutex<()>>>>);

impl ChangeLocks {
    /// Waits for `id`'s turn; it lasts until the returned value is dropped (also when the
    /// request is dropped halfway).
    async fn turn(&self, id: InstanceId) -> Turn<'_> {
        let lock = self.map().entry(id).or_default().clone();
        // Made before the wait, so that a request dropped while it waits still removes an
        // entry that nobody else holds.
        let mut turn = Turn {
            locks: self,
            id,
            held: None,
        };
        turn.held = Some(lock.lock_owned().await);
        turn
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<InstanceId, Arc<tokio::sync::Mutex<()>>>> {
        // Nothing panics while holding it; a poisoned map is still a consistent map.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

struct Turn<'a> {
    locks: &'a ChangeLocks,
    id: InstanceId,
    held: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut map = self.locks.map();
        drop(self.held.take());
        // Only the map's own reference left: nobody holds or waits for this instance's lock
        // (a waiter clones it under the map's lock, so none can appear meanwhile).
        if map
            .get(&self.id)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            map.remove(&self.id);
        }
    }
}

/// Checks the instance as `body` makes it, and stores it only if every check passes; `None`
/// (nothing stored) if the instance no longer has `row`'s version.
async fn store(
    state: &AppState,
    row: &InstanceRow,
    body: InstanceIn,
) -> Result<Option<InstanceOut>, ApiError> {
    // The configuration as stored; `None` if it no longer parses (rules can tighten), and then
    // every check runs again.
    let previous = InstanceConfig::parse(&merge_secrets(&row.configuration, &row.secrets)).ok();
    let valid = validate(state, body, previous.as_ref()).await?;
    let refresh_interval_ms = valid.refresh_interval_ms();
    let (configuration, secrets) = split_secrets(&valid.configuration);
    let events = &valid.config.events;
    let engine = &state.engine;
    let updated = engine
        .store()
        .begin_update_instance(
            row.organization_id,
            row.id,
            InstanceUpdate {
                name: valid.name,
                configuration,
                secrets,
                tags: valid.tags,
                events_enabled: events.enabled,
                resources: events.resources.keys().cloned().collect(),
                refresh_interval_ms,
                now: engine.clock().now(),
                read_version: Some(row.updated_at),
            },
        )
        .await;
    let updated = match updated {
        Ok(Some(updated)) => updated,
        Ok(None) => {
            return Err(ApiError::not_found(format!(
                "no instance with id {}",
                row.id
            )));
        }
        Err(StoreError::Conflict(_)) => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    tracing::info!(instance = %row.id, "instance updated");
    engine.wake_poller();
    engine.instance_changed(row.id);
    instance_out(state, &updated, None).await.map(Some)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A turn's entry goes when nobody holds or waits for it, also when a waiter is dropped
    /// after the lock was handed to it but before it ran again (its client went away then):
    /// the map holds only the changes in flight. Fails if the turn is made after the wait
    /// (the entry is then left behind).
    #[tokio::test]
    async fn turns_leave_no_entry_behind_even_when_a_waiter_is_dropped() {
        let locks = ChangeLocks::default();
        let first = locks.turn(InstanceId(1)).await;
        let mut waiter = Box::pin(locks.turn(InstanceId(1)));
        let waited = tokio::time::timeout(Duration::from_millis(50), &mut waiter).await;
        assert!(waited.is_err(), "the second waits for the first");
        // The lock goes to the waiter, which is dropped before it runs again.
        drop(first);
        drop(waiter);
        assert!(locks.map().is_empty());
        let (a, b) = (
            locks.turn(InstanceId(2)).await,
            locks.turn(InstanceId(3)).await,
        );
        assert_eq!(locks.map().len(), 2);
        drop((a, b));
        assert!(locks.map().is_empty());
    }
}
