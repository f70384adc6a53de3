//! Finding deleted records: ConnectWise's lists never show a record that was deleted, so a
//! `lastUpdated` query cannot either. Every `reconcileInterval`, a job compares the ids it knows
//! with the ids ConnectWise has, and an id that vanished becomes a DELETED event carrying the
//! last version hubhook stored.
//!
//! # How, in bounded memory
//!
//! ConnectWise's forward-only pages list ids in ascending order (`fields=id`, pages of 1000, a
//! keyset on `id`), and the store lists known ids in the same order ([`Store::known_ids`]). The
//! two are walked side by side, a page at a time: a known id that falls between the ids of a
//! page without being one of them has vanished. Memory is one page of each, plus the ids found
//! vanished.
//!
//! The scan reads the resource's whole ConnectWise list, without the poller URL's `where`: a
//! record that merely leaves a filtered view is not deleted. A record whose deleted flag is set
//! (a soft-deleted or merged company, whose `lastUpdated` may not move) counts as vanished too.
//!
//! # Races
//!
//! - A record created after the scan passed its id range is not in the scan, but a poll that
//!   saw it recorded when: ids seen after the scan began are never judged.
//! - A record deleted during the scan may or may not be in it; if it is, the next
//!   reconciliation finds it.
//!
//! # Mass deletes
//!
//! When more than `massDeleteThreshold` of the known records (and more than
//! [`MIN_MASS_DELETE`] records) vanish at once, the likelier story is a ConnectWise problem (a
//! member that lost its permissions, a restored backup) than a real mass delete. Nothing is
//! announced: the job's health shows how many are held, and the user confirms (they are
//! announced) or dismisses (they are forgotten without events) through the API. The decision
//! is carried out by the next reconciliation, made due at once.

use std::time::Duration;

use hubhook_connectwise::{Client, HubQuery, PageRequest};
use hubhook_core::{EventRecord, EventType, InstanceId, RecordJson, ResourcePoll, event_id};
use hubhook_store::{
    LeaseToken, MassDeleteAction, PollCommit, PollJob, PollProgress, Reconciled, Store,
};
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use super::page::outbox;
use super::{PollFailure, connectwise_failure, store_failure};

/// Fewer vanished records than this never trigger mass-delete protection: deleting a few of a
/// handful of records is not a mass delete, whatever the share.
pub const MIN_MASS_DELETE: u64 = 10;

/// Ids read from ConnectWise per page, and known ids read from the store per query.
const PAGE: u32 = 1000;
/// Vanished records announced per commit.
const DELETES_PER_COMMIT: usize = 500;

/// What a reconciliation did.
pub struct ReconcileOutcome {
    pub reconciled: Reconciled,
    pub deleted: u64,
}

/// The job being reconciled.
pub struct Job<'a> {
    pub job: &'a PollJob,
    pub token: &'a LeaseToken,
    pub resource: &'a ResourcePoll,
    /// The checkpoint every commit of the reconciliation carries (the finished delta window).
    pub checkpoint: String,
    /// The reconciliation interval, floored by the server's minimum.
    pub interval: Duration,
    /// The resource's generation, for its events' ids (`PageContext::generation`).
    pub generation: i64,
}

pub async fn reconcile(
    store: &Store,
    client: &Client,
    now: impl Fn() -> Timestamp,
    job: Job<'_>,
) -> Result<ReconcileOutcome, PollFailure> {
    let instance = job.job.instance_id;
    let resource_name = job.job.resource.as_str();
    let scan_started = now();
    let known_total = store
        .known_count(instance, resource_name)
        .await
        .map_err(store_failure)?;
    let threshold = ((known_total as f64) * job.resource.mass_delete_threshold).floor() as u64;
    let action = job.job.mass_delete_action;
    let held_back =
        |vanished: u64| action.is_none() && vanished > threshold && vanished > MIN_MASS_DELETE;

    let mut query = id_query(job.resource)?;
    let mut vanished: Vec<String> = Vec::new();
    let mut count: u64 = 0;
    let mut known_after: Option<i64> = None;
    let mut last_remote: Option<i64> = None;
    let mut event_date: Option<Timestamp> = None;
    loop {
        let page = client
            .fetch_page(&query)
            .await
            .map_err(connectwise_failure)?;
        event_date.get_or_insert(page.server_time.unwrap_or_else(&now));
        let (remote, flagged) = ids_of(&page.body, job.resource)?;
        if let (Some(first), Some(last)) = (remote.first(), last_remote)
            && *first <= last
        {
            return Err(PollFailure::soon(format!(
                "reconciling: ConnectWise listed id {first} after id {last}; its pages do not move forward"
            )));
        }
        let up_to = match (&page.next, remote.last()) {
            (Some(_), Some(last)) => *last,
            _ => i64::MAX,
        };
        loop {
            let known = store
                .known_ids(instance, resource_name, known_after, up_to, PAGE)
                .await
                .map_err(store_failure)?;
            for id in &known {
                let seen_since_the_scan_began = id.seen_at.is_some_and(|seen| seen >= scan_started);
                if remote.binary_search(&id.number).is_err() && !seen_since_the_scan_began {
                    count += 1;
                    if !held_back(count) {
                        vanished.push(id.object_id.clone());
                    }
                }
            }
            known_after = known.last().map(|id| id.number).or(known_after);
            if known.len() < PAGE as usize {
                break;
            }
        }
        if !flagged.is_empty() {
            let known = store
                .known_objects(instance, resource_name, &flagged)
                .await
                .map_err(store_failure)?;
            for (id, object) in known {
                if !object.deleted {
                    count += 1;
                    if !held_back(count) {
                        vanished.push(id);
                    }
                }
            }
        }
        last_remote = remote.last().copied().or(last_remote);
        match page.next {
            Some(next) if up_to != i64::MAX => query.page = next,
            _ => break,
        }
        known_after = Some(up_to);
    }

    let next_at =
        now() + SignedDuration::try_from(job.interval).unwrap_or(SignedDuration::from_secs(3600));
    if held_back(count) {
        tracing::warn!(instance = %instance, resource = ?resource_name, vanished = count, known = known_total, "mass delete held back: confirm or dismiss it through the API");
        return Ok(ReconcileOutcome {
            reconciled: Reconciled {
                next_at,
                mass_delete_held: Some(count),
            },
            deleted: 0,
        });
    }
    let announce = action != Some(MassDeleteAction::Dismiss);
    let event_date = event_date.unwrap_or_else(&now);
    let mut deleted = 0;
    for chunk in vanished.chunks(DELETES_PER_COMMIT) {
        let events = if announce {
            deleted_events(
                store,
                (instance, job.generation),
                resource_name,
                chunk,
                event_date,
            )
            .await?
        } else {
            Vec::new()
        };
        deleted += events.len() as u64;
        let (events, notifications) = outbox(instance, &events);
        let commit = PollCommit {
            instance_id: instance,
            resource: resource_name.to_owned(),
            lease_token: job.token.clone(),
            now: now(),
            observed: Vec::new(),
            vanished: chunk.to_vec(),
            events,
            notifications,
            progress: PollProgress::Checkpoint(job.checkpoint.clone()),
        };
        store.commit_poll(commit).await.map_err(store_failure)?;
    }
    Ok(ReconcileOutcome {
        reconciled: Reconciled {
            next_at,
            mass_delete_held: None,
        },
        deleted,
    })
}

/// The resource's whole list, ids (and the deleted flag) only, forward-only by id.
fn id_query(resource: &ResourcePoll) -> Result<HubQuery, PollFailure> {
    let base = resource.url.split('?').next().unwrap_or(&resource.url);
    let url = format!("{base}?fields=id,{}", resource.deleted_flag_field.as_str());
    let mut query = HubQuery::parse(&url, Some(PAGE)).map_err(|e| {
        PollFailure::later(format!(
            "reconciling: the id list of `{base}` cannot be read: {e}"
        ))
    })?;
    query.page = PageRequest::First;
    Ok(query)
}

/// The numeric ids of a page, ascending, and the ids whose deleted flag is set.
fn ids_of(body: &Value, resource: &ResourcePoll) -> Result<(Vec<i64>, Vec<String>), PollFailure> {
    let Value::Array(records) = body else {
        return Err(PollFailure::later(
            "reconciling: ConnectWise did not answer a list",
        ));
    };
    let mut ids = Vec::with_capacity(records.len());
    let mut flagged = Vec::new();
    for record in records {
        let Some(id) = record.get("id").and_then(Value::as_i64) else {
            return Err(PollFailure::later(
                "reconciling: a record of the id list has no numeric id",
            ));
        };
        if resource.deleted_flag_field.get(record) == Some(&Value::Bool(true)) {
            flagged.push(id.to_string());
        }
        ids.push(id);
    }
    if !ids.is_sorted_by(|a, b| a < b) {
        return Err(PollFailure::soon(
            "reconciling: ConnectWise's id list is not in ascending order",
        ));
    }
    Ok((ids, flagged))
}

/// DELETED events for vanished ids, each carrying the last version hubhook stored.
async fn deleted_events(
    store: &Store,
    (instance, generation): (InstanceId, i64),
    resource_name: &str,
    ids: &[String],
    event_date: Timestamp,
) -> Result<Vec<EventRecord>, PollFailure> {
    let known = store
        .known_objects(instance, resource_name, ids)
        .await
        .map_err(store_failure)?;
    Ok(ids
        .iter()
        .filter_map(|id| {
            let object = known.get(id)?;
            let record = object
                .record
                .as_deref()
                .and_then(|text| serde_json::from_str(text).ok())
                .unwrap_or(Value::Null);
            Some(EventRecord {
                id: event_id(
                    instance,
                    resource_name,
                    id,
                    EventType::Deleted,
                    &object.content_hash,
                    object.revision,
                    generation,
                ),
                event_type: EventType::Deleted,
                object_type: resource_name.to_owned(),
                object_id: id.clone(),
                event_date,
                record: RecordJson::Value(record),
                changes: None,
            })
        })
        .collect())
}
