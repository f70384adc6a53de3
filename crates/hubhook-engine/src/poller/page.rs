//! One page of a poll: its records classified against what the store knows, turned into
//! events (with what changed, for updates) and notifications, ready to be committed together.

use std::collections::{BTreeSet, HashMap};

use hubhook_core::{
    Changes, Classified, ClassifyContext, EventRecord, EventType, InstanceId, Known,
    MAX_EVENTS_PER_NOTIFICATION, PageRecord, RecordJson, ResourcePoll, build_notifications,
    changed_fields, classify, cpu, event_id,
};
use hubhook_store::{KnownObject, NewEvent, NewNotification, ObservedObject, Store, StoreError};
use jiff::Timestamp;

/// What the page is read against.
pub struct PageContext<'a> {
    pub instance: InstanceId,
    /// The resource name (the events' `objectType`).
    pub resource_name: &'a str,
    pub resource: &'a ResourcePoll,
    /// Records updated at or before this are observed, not events.
    pub since: Timestamp,
    /// ConnectWise's clock when the poll started (`filterByCurrentDate`).
    pub poll_started: Timestamp,
    /// The first run `all`: every record is CREATED.
    pub all_created: bool,
    /// The resource's generation (`hubhook_core::event_id`): 0 for a resource the instance
    /// was created with, else when it was added.
    pub generation: i64,
}

/// A page ready to commit.
#[derive(Default)]
pub struct PageOutcome {
    pub observed: Vec<ObservedObject>,
    pub events: Vec<NewEvent>,
    pub notifications: Vec<NewNotification>,
    pub max_updated: Option<Timestamp>,
    /// Records that could not be used, and the first reason.
    pub problems: u32,
    pub problem: Option<String>,
}

/// Classifies `records` and builds their events and notifications.
pub async fn process(
    store: &Store,
    ctx: &PageContext<'_>,
    records: Vec<PageRecord>,
) -> Result<PageOutcome, StoreError> {
    let ids: Vec<String> = records
        .iter()
        .filter_map(|r| r.object_id(ctx.resource).ok())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let known = store
        .known_objects(ctx.instance, ctx.resource_name, &ids)
        .await?;
    // Hashing, serializing and comparing a large page is the poll's largest CPU step; it runs
    // beside the commit of the page before (see `hubhook_core::cpu`).
    let page = Page {
        instance: ctx.instance,
        resource_name: ctx.resource_name.to_owned(),
        resource: ctx.resource.clone(),
        since: ctx.since,
        poll_started: ctx.poll_started,
        all_created: ctx.all_created,
        generation: ctx.generation,
        known,
    };
    Ok(cpu::run(records.len() >= cpu::LARGE, move || page.build(records)).await)
}

/// A page's context and what the store knows of its records, owned, so that building the
/// outcome can move to another thread.
struct Page {
    instance: InstanceId,
    resource_name: String,
    resource: ResourcePoll,
    since: Timestamp,
    poll_started: Timestamp,
    all_created: bool,
    generation: i64,
    known: HashMap<String, KnownObject>,
}

impl Page {
    fn build(self, records: Vec<PageRecord>) -> PageOutcome {
        let Page {
            instance,
            resource_name,
            resource,
            since,
            poll_started,
            all_created,
            generation,
            known,
        } = self;
        let states: HashMap<String, Known> = known
            .iter()
            .map(|(id, object)| {
                let state = Known {
                    content_hash: object.content_hash.clone(),
                    deleted: object.deleted,
                };
                (id.clone(), state)
            })
            .collect();
        let Classified {
            changes,
            observed,
            max_updated,
            errors,
        } = classify(
            &ClassifyContext {
                resource: &resource,
                since,
                poll_started,
                known: &states,
                all_created,
            },
            records,
        );
        // An event stores, and its notification carries, the text its record was observed as
        // (written once, when the page was read).
        let events: Vec<EventRecord> = changes
            .into_iter()
            .filter_map(|change| {
                let changes = match change.event_type {
                    EventType::Updated => {
                        what_changed(&resource, known.get(&change.object_id), &change.text)
                    }
                    _ => None,
                };
                let bookkeeping_only = changes
                    .as_ref()
                    .is_some_and(|changes| changes.fields.is_empty());
                if bookkeeping_only && resource.changes.ignore_bookkeeping_only {
                    return None;
                }
                Some(EventRecord {
                    id: event_id(
                        instance,
                        &resource_name,
                        &change.object_id,
                        change.event_type,
                        &change.content_hash,
                        known
                            .get(&change.object_id)
                            .map_or(0, |object| object.revision),
                        generation,
                    ),
                    event_type: change.event_type,
                    object_type: resource_name.clone(),
                    object_id: change.object_id,
                    event_date: change.updated,
                    record: RecordJson::Text(change.text),
                    changes,
                })
            })
            .collect();
        let (events, notifications) = outbox(instance, &events);
        PageOutcome {
            observed: observed
                .into_iter()
                .map(|o| ObservedObject {
                    object_id: o.object_id,
                    content_hash: o.content_hash,
                    updated_at: o.updated,
                    record: o.text,
                    deleted: o.deleted,
                })
                .filter(|o| !already_stored(known.get(&o.object_id), o))
                .collect(),
            events,
            notifications,
            max_updated,
            problems: u32::try_from(errors.len()).unwrap_or(u32::MAX),
            problem: errors
                .first()
                .map(|e| format!("record {}: {}", e.index, e.message)),
        }
    }
}

/// Whether the store already holds exactly this sighting: same content hash, same record text,
/// neither deleted. Re-reads (the overlap second, above all the tie set of a mass update that
/// every later poll reads again) are then not written back, which would only rewrite every row
/// with itself. The one column left behind is `seen_at`, which reconciliation reads to spare
/// records created after its scan began: such a record was written (with its `seen_at`) when it
/// was first seen, and `seen_at` only needs to be at least that late, so keeping the first
/// sighting's time is as good as refreshing it.
fn already_stored(known: Option<&KnownObject>, observed: &ObservedObject) -> bool {
    known.is_some_and(|known| {
        !known.deleted
            && !observed.deleted
            && known.content_hash == observed.content_hash
            && known.record.as_deref() == Some(observed.record.as_str())
    })
}

/// The `changedFields` of an update, against the version hubhook stored last. `None` when the
/// resource does not track changes, when no earlier version is stored (an object first seen
/// before hubhook kept versions), or when more changed than a list may hold
/// ([`changed_fields`]): then nothing is claimed about what changed.
fn what_changed(
    resource: &ResourcePoll,
    known: Option<&KnownObject>,
    current: &str,
) -> Option<Changes> {
    if !resource.changes.track {
        return None;
    }
    Some(Changes {
        fields: changed_fields(known?.record.as_deref()?, current)?,
        include_previous: resource.changes.include_previous,
    })
}

/// Events as the store takes them, with their notifications.
pub fn outbox(
    instance: InstanceId,
    events: &[EventRecord],
) -> (Vec<NewEvent>, Vec<NewNotification>) {
    let notifications = build_notifications(instance, events, MAX_EVENTS_PER_NOTIFICATION)
        .into_iter()
        .map(|n| NewNotification {
            id: n.id,
            event_ids: n.event_ids,
            body: n.body,
        })
        .collect();
    let events = events
        .iter()
        .map(|e| NewEvent {
            id: e.id.clone(),
            object_type: e.object_type.clone(),
            object_id: e.object_id.clone(),
            event_type: e.event_type.as_str().to_string(),
            event_date: e.event_date,
            record_json: e.record.to_text(),
        })
        .collect();
    (events, notifications)
}
