//! Deterministic event ids and the Cloud Elements webhook payload.

use std::collections::BTreeMap;

use serde::Serialize;
use serde::ser::SerializeMap as _;
use serde_json::Value;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::classify::EventType;
use crate::config::ELEMENT_KEY;
use crate::field_changes::FieldChange;
use crate::ids::{EventId, InstanceId, NotificationId};

/// One event as stored and delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub id: EventId,
    pub event_type: EventType,
    /// The resource name, e.g. `contacts`.
    pub object_type: String,
    pub object_id: String,
    pub event_date: jiff::Timestamp,
    /// The raw provider record (for a DELETED event, the last version hubhook stored).
    pub record: RecordJson,
    /// What changed, for an UPDATED event of a resource that tracks changes.
    pub changes: Option<Changes>,
}

/// An event's record: the canonical text the poller read it as ([`crate::record_text`]), or
/// a value. A text is carried into the body as it is, so a record is written once, and the
/// body holds byte for byte what the event's row stores.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordJson {
    Text(String),
    Value(Value),
}

impl RecordJson {
    /// The record's JSON text.
    pub fn to_text(&self) -> String {
        match self {
            RecordJson::Text(text) => text.clone(),
            RecordJson::Value(value) => value.to_string(),
        }
    }
}

impl Serialize for RecordJson {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            // Checked to be one JSON value (a scan, no allocation) so that the body stays JSON
            // whatever the text holds; the poller's texts always are, being written by it.
            RecordJson::Text(text) => match serde_json::from_str::<&RawValue>(text) {
                Ok(raw) => raw.serialize(serializer),
                Err(_) => serializer.serialize_str(text),
            },
            RecordJson::Value(value) => value.serialize(serializer),
        }
    }
}

/// The `changedFields` (and, when asked for, `previous`) of an UPDATED event.
#[derive(Debug, Clone, PartialEq)]
pub struct Changes {
    pub fields: Vec<FieldChange>,
    /// Whether the payload carries the old values (`includePrevious`).
    pub include_previous: bool,
}

/// One webhook body and the events it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub id: NotificationId,
    pub event_ids: Vec<EventId>,
    /// The exact bytes to send (and sign).
    pub body: String,
}

/// Cloud Elements puts at most ten polling events in one notification.
pub const MAX_EVENTS_PER_NOTIFICATION: usize = 10;

/// The id of a change. The same (instance, object type, object id, event type, content hash,
/// revision, generation) always gets the same id, so a change seen twice (an overlapping poll
/// window, a re-poll, another node) deduplicates in storage and at receivers.
///
/// # The generation: a resource added back is a new stream
///
/// Revisions are kept with what is known of each record, and a resource removed from an
/// instance forgets it; added back, its records start again from revision 0, so without more
/// its baseline's events would take the ids of the first baseline's (with `firstRun: all`,
/// every unchanged record's), and be dropped as their duplicates, along with every
/// notification whose ten events were all such (an outside test on three nodes saw 1,377 old
/// ids sent again in new notifications and 640 records never sent). `generation` is when the
/// resource was added (`PollJob::added_at`, in milliseconds) for a resource added after the
/// instance was created, and 0 for those it was created with, which adds no part, so their ids
/// stay what they were.
///
/// # The revision: the same content twice is two changes
///
/// `revision` is the number of times the object's stored state (content hash, deleted flag)
/// had changed before this change (`KnownObject::revision` in the store; 0 for an object never
/// seen). The content hash alone does not tell a change seen twice from an object that comes
/// back to content it had before: ConnectWise's `lastUpdated` has whole seconds, so a record
/// edited to B and back to A within one second reads exactly as it did, and a delete can show
/// the same last version twice. Without the revision, the later change would get the earlier
/// one's id and be dropped as its duplicate, and the receiver would never learn the record
/// went back. The revision keeps re-polls deterministic: a change that was stored has moved
/// the revision and is not an event again (its content hash is the stored one), and a change
/// whose commit was lost is seen again from the same revision, so under the same id. Revision
/// 0 adds no part, so ids stay what they were before revisions were kept (2026-12-06).
///
/// # Layout: deterministic, and near the ids stored with it
///
/// The id is a UUIDv8 (RFC 9562), whose 122 free bits are ours to lay out. Every id is looked
/// up in the store's unique index on event ids, and an index on ids that are uniformly random
/// puts each of a page's thousand events on a different index page: a commit then rewrites
/// (and writes to the WAL, and later checkpoints) hundreds of pages for a thousand small
/// entries. Storing a mass update, that was 35 of the SQLite writer's 82 ms of statements a
/// page (docs/benchmarks.md, "Twelfth round"). So the first 48 bits say where the change
/// belongs:
///
/// - bits 0–15: the first two bytes of SHA-256 over (instance, object type), the same for
///   every change of one resource of one instance;
/// - bits 16–47: the object id as a 32-bit big-endian number when it reads as one
///   (ConnectWise ids do), otherwise four more bytes of the digest below.
///
/// A page lists its records in id order, so its events now sit side by side in the index
/// (beside the earlier events of the same objects), and the hex text sorts the same way. The
/// other 74 bits (version and variant take 6) are SHA-256 over all the parts, each prefixed
/// with its length so that no two different part lists hash the same bytes: two changes of
/// one object share the first 48 bits and differ in those 74 with certainty for practical
/// purposes (1 in 2^74 per pair). Everything comes from the parts, so the id stays a pure
/// function of the change.
///
/// Events stored before this layout (2026-12-06) keep the ids they were delivered with. A
/// record whose content hash is stored with its object is never made into an event again
/// ([`crate::classify`]), so a change polled before the upgrade does not come back under a
/// new id; only a baseline made anew (a resource removed and added back with `firstRun: all`)
/// announces records again, and an old id no longer suppresses those (docs/behaviour.md).
pub fn event_id(
    instance: InstanceId,
    object_type: &str,
    object_id: &str,
    event_type: EventType,
    content_hash: &str,
    revision: u64,
    generation: i64,
) -> EventId {
    let instance = instance.0.to_string();
    let revision = revision.to_string();
    // Never the same text as a revision's part, so the two cannot stand for each other.
    let generation = (generation != 0).then(|| format!("generation {generation}"));
    let mut parts = vec![
        "hubhook.event.v1",
        &instance,
        object_type,
        object_id,
        event_type.as_str(),
        content_hash,
    ];
    // Length-prefixed parts: a list one part longer never hashes like a shorter one.
    if revision != "0" {
        parts.push(&revision);
    }
    if let Some(generation) = &generation {
        parts.push(generation);
    }
    let mut bytes = digest(&parts);
    let stream = digest(&["hubhook.event.stream.v1", &instance, object_type]);
    bytes[..2].copy_from_slice(&stream[..2]);
    // Only placement: "042" and "42" share these bits, and their digests tell them apart.
    if let Ok(number) = object_id.parse::<u32>() {
        bytes[2..6].copy_from_slice(&number.to_be_bytes());
    }
    EventId(uuid::Uuid::new_v8(bytes).to_string())
}

/// A notification's id: its events' ids hashed, under the first event's 48-bit prefix (see
/// [`event_id`]), so that the notifications of one page also sit side by side in the store's
/// index on notification ids.
fn notification_id(events: &[&EventRecord]) -> NotificationId {
    let mut parts = vec!["hubhook.notification.v1"];
    parts.extend(events.iter().map(|e| e.id.0.as_str()));
    let mut bytes = digest(&parts);
    if let Some(first) = events
        .first()
        .and_then(|e| uuid::Uuid::parse_str(&e.id.0).ok())
    {
        bytes[..6].copy_from_slice(&first.as_bytes()[..6]);
    }
    NotificationId(uuid::Uuid::new_v8(bytes).to_string())
}

fn uuid_v8(parts: &[&str]) -> String {
    uuid::Uuid::new_v8(digest(parts)).to_string()
}

/// The first 16 bytes of SHA-256 over `parts`, each prefixed with its length.
fn digest(parts: &[&str]) -> [u8; 16] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes
}

/// Splits `events` (in order) into notifications of at most `max_per_notification` events
/// (at least one), each of one object type; object types keep the order they first appear
/// in. Each notification's `raw` repeats only the records of its own events, so a large poll
/// does not multiply into huge bodies.
///
/// The body, serialized compactly with fields in exactly this order:
///
/// ```json
/// {"message":{"eventId":"<notification id>","instanceId":12345,"elementKey":"connectwisecrmrest",
///   "events":[{"eventType":"CREATED","objectType":"contacts","objectId":"42",
///              "eventDate":"2019-03-01T10:15:00Z","elementKey":"connectwisecrmrest"}],
///   "raw":{"instance_id":12345,"objectType":"contacts","contacts":[<records>]}}}
/// ```
pub fn build_notifications(
    instance: InstanceId,
    events: &[EventRecord],
    max_per_notification: usize,
) -> Vec<Notification> {
    let mut groups: Vec<(&str, Vec<&EventRecord>)> = Vec::new();
    for event in events {
        match groups.iter_mut().find(|(t, _)| *t == event.object_type) {
            Some((_, group)) => group.push(event),
            None => groups.push((&event.object_type, vec![event])),
        }
    }
    let size = max_per_notification.max(1);
    groups
        .iter()
        .flat_map(|(object_type, group)| {
            group
                .chunks(size)
                .map(move |chunk| notification(instance, object_type, chunk))
        })
        .collect()
}

fn notification(instance: InstanceId, object_type: &str, events: &[&EventRecord]) -> Notification {
    let id = notification_id(events);
    let body = Body {
        message: Message {
            event_id: &id.0,
            instance_id: instance.0,
            element_key: ELEMENT_KEY,
            events: events.iter().map(|event| EventOut::new(event)).collect(),
            raw: Raw {
                instance_id: instance.0,
                object_type,
                records: events.iter().map(|event| &event.record).collect(),
            },
        },
    };
    Notification {
        event_ids: events.iter().map(|e| e.id.clone()).collect(),
        // Plain structs, strings and JSON values: serializing them cannot fail.
        body: serde_json::to_string(&body).expect("a webhook body serializes"),
        id,
    }
}

/// A replay of a stored notification body: the same events and records, under a new
/// notification id (`message.eventId`) made from the original's id and `salt` (the replay
/// request), with `message.replayOf` naming the original. The event ids stay, so receivers
/// that deduplicate per event see the same events; a receiver that deduplicates per
/// notification sees a new one, which is what a replay asks for. `None` when the stored body
/// is not a webhook body.
pub fn replay_notification(
    original_id: &NotificationId,
    body: &str,
    salt: &str,
) -> Option<Notification> {
    let value: Value = serde_json::from_str(body).ok()?;
    let message = value.get("message")?;
    let id = NotificationId(uuid_v8(&["hubhook.replay.v1", &original_id.0, salt]));
    let events = message.get("events")?;
    let event_ids = events
        .as_array()?
        .iter()
        .filter_map(|e| e["id"].as_str().map(|id| EventId(id.to_string())))
        .collect();
    let replay = ReplayBody {
        message: ReplayMessage {
            event_id: &id.0,
            instance_id: message.get("instanceId")?,
            element_key: message.get("elementKey")?,
            events,
            raw: message.get("raw")?,
            replay_of: &original_id.0,
        },
    };
    Some(Notification {
        body: serde_json::to_string(&replay).ok()?,
        event_ids,
        id,
    })
}

#[derive(Serialize)]
struct ReplayBody<'a> {
    message: ReplayMessage<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReplayMessage<'a> {
    event_id: &'a str,
    instance_id: &'a Value,
    element_key: &'a Value,
    events: &'a Value,
    raw: &'a Value,
    replay_of: &'a str,
}

/// The webhook body. Fields serialize in declaration order, whatever serde_json's features.
#[derive(Serialize)]
struct Body<'a> {
    message: Message<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Message<'a> {
    event_id: &'a str,
    instance_id: i64,
    element_key: &'static str,
    events: Vec<EventOut<'a>>,
    raw: Raw<'a>,
}

/// One entry of `message.events`: Cloud Elements' normalized fields, then hubhook's.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventOut<'a> {
    event_type: &'static str,
    object_type: &'a str,
    object_id: &'a str,
    event_date: String,
    element_key: &'static str,
    /// The stable event id, so receivers can deduplicate per event.
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    changed_fields: Option<Vec<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous: Option<BTreeMap<&'a str, &'a Value>>,
}

impl<'a> EventOut<'a> {
    fn new(event: &'a EventRecord) -> EventOut<'a> {
        let changes = event.changes.as_ref();
        EventOut {
            event_type: event.event_type.as_str(),
            object_type: &event.object_type,
            object_id: &event.object_id,
            event_date: event.event_date.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            element_key: ELEMENT_KEY,
            id: &event.id.0,
            changed_fields: changes
                .map(|changes| changes.fields.iter().map(|c| c.path.as_str()).collect()),
            previous: changes
                .filter(|changes| changes.include_previous)
                .map(|changes| {
                    changes
                        .fields
                        .iter()
                        .map(|c| (c.path.as_str(), &c.previous))
                        .collect()
                }),
        }
    }
}

/// `{"instance_id": .., "objectType": "contacts", "contacts": [records]}`: the records sit
/// under a key named by the object type, so this is written as a map.
struct Raw<'a> {
    instance_id: i64,
    object_type: &'a str,
    records: Vec<&'a RecordJson>,
}

impl Serialize for Raw<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("instance_id", &self.instance_id)?;
        map.serialize_entry("objectType", self.object_type)?;
        map.serialize_entry(self.object_type, &self.records)?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(object_type: &str, n: usize) -> EventRecord {
        let object_id = n.to_string();
        let record = json!({"id": n, "name": format!("record \"{n}\"")});
        let hash = crate::classify::content_hash(&record);
        EventRecord {
            id: event_id(
                InstanceId(12345),
                object_type,
                &object_id,
                EventType::Updated,
                &hash,
                0,
                0,
            ),
            event_type: EventType::Updated,
            object_type: object_type.to_owned(),
            object_id,
            event_date: "2019-03-01T10:15:00.999Z".parse().expect("timestamp"),
            record: RecordJson::Value(record),
            changes: None,
        }
    }

    /// A record read as text is carried as that text: the same body as from its value.
    #[test]
    fn a_record_read_as_text_gives_the_body_its_value_gives() {
        let from_values: Vec<EventRecord> = (1..=3).map(|n| event("contacts", n)).collect();
        let from_texts: Vec<EventRecord> = from_values
            .iter()
            .map(|event| EventRecord {
                record: RecordJson::Text(event.record.to_text()),
                ..event.clone()
            })
            .collect();
        assert_eq!(
            build_notifications(InstanceId(12345), &from_texts, 10),
            build_notifications(InstanceId(12345), &from_values, 10)
        );
        // The text is what the body carries.
        let mut other = from_texts.clone();
        other[0].record = RecordJson::Text(r#"{"id":1,"from":"text"}"#.to_owned());
        let body = &build_notifications(InstanceId(12345), &other, 10)[0].body;
        assert!(
            body.contains(r#""contacts":[{"id":1,"from":"text"},"#),
            "{body}"
        );
        // Text that is not one JSON value is not spliced in: it is carried as a string.
        other[0].record = RecordJson::Text(r#"{"id": 1,"#.to_owned());
        let body = &build_notifications(InstanceId(12345), &other, 10)[0].body;
        assert!(
            body.contains(r#""contacts":["{\"id\": 1,",{"id":2"#),
            "{body}"
        );
    }

    fn is_uuid_v8(text: &str) -> bool {
        let groups: Vec<&str> = text.split('-').collect();
        let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
        lengths == [8, 4, 4, 4, 12]
            && text
                .chars()
                .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c))
            && groups[2].starts_with('8')
            && groups[3].starts_with(['8', '9', 'a', 'b'])
    }

    #[test]
    fn event_ids_are_deterministic_uuid_v8() {
        let id = |instance, object_type, object_id, event_type, hash| {
            event_id(
                InstanceId(instance),
                object_type,
                object_id,
                event_type,
                hash,
                0,
                0,
            )
            .0
        };
        let base = id(1, "contacts", "42", EventType::Created, "h");
        assert!(is_uuid_v8(&base), "{base}");
        assert_eq!(base, id(1, "contacts", "42", EventType::Created, "h"));
        let variations = [
            id(2, "contacts", "42", EventType::Created, "h"),
            id(1, "incidents", "42", EventType::Created, "h"),
            id(1, "contacts", "43", EventType::Created, "h"),
            id(1, "contacts", "42", EventType::Updated, "h"),
            id(1, "contacts", "42", EventType::Created, "h2"),
            // Length prefixes keep shifted boundaries apart.
            id(1, "contacts4", "2", EventType::Created, "h"),
        ];
        for other in variations {
            assert!(is_uuid_v8(&other), "{other}");
            assert_ne!(base, other);
        }
    }

    #[test]
    fn the_revision_tells_a_change_from_content_that_came_back() {
        let id = |revision| {
            event_id(
                InstanceId(1),
                "contacts",
                "42",
                EventType::Updated,
                "h",
                revision,
                0,
            )
            .0
        };
        let ids: std::collections::BTreeSet<String> = (0..100).map(id).collect();
        assert_eq!(ids.len(), 100);
        assert!(ids.iter().all(|i| i[..13] == id(0)[..13]), "placed alike");
        // Revision 0 adds nothing: the ids of the stores written before revisions were kept.
        assert_eq!(id(0), "c8910000-002a-8355-ab6c-6530a3aaa6a3");
    }

    #[test]
    fn a_resource_added_back_is_a_new_stream_of_ids() {
        let id = |revision, generation| {
            event_id(
                InstanceId(1),
                "contacts",
                "42",
                EventType::Updated,
                "h",
                revision,
                generation,
            )
            .0
        };
        let mut seen = std::collections::BTreeSet::new();
        for generation in [0, 1_700_000_000_000, 1_700_000_000_001] {
            for revision in 0..3 {
                assert!(
                    seen.insert(id(revision, generation)),
                    "{revision} {generation}"
                );
            }
        }
        assert!(
            seen.iter().all(|i| i[..13] == id(0, 0)[..13]),
            "placed alike"
        );
        // Generation 0 adds nothing: the ids of the resources an instance was created with.
        assert_eq!(id(0, 0), "c8910000-002a-8355-ab6c-6530a3aaa6a3");
        assert_ne!(id(1, 0), id(0, 1), "a revision never reads as a generation");
    }

    #[test]
    fn ids_of_one_resource_sort_by_object_and_notifications_sit_beside_their_events() {
        let id = |instance, object_id: &str, hash: &str| {
            event_id(
                InstanceId(instance),
                "contacts",
                object_id,
                EventType::Updated,
                hash,
                0,
                0,
            )
            .0
        };
        // A page of records in id order, of which some changed twice.
        let ids: Vec<String> = (1..=1000_u32)
            .map(|n| id(7, &n.to_string(), &format!("hash {}", n % 3)))
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(sorted, ids, "the store's index receives them in order");
        assert!(ids.iter().all(|i| is_uuid_v8(i) && i[..4] == ids[0][..4]));
        assert_eq!(
            &ids[41][4..13],
            "0000-002a",
            "object 42 in bits 16-47: {}",
            ids[41]
        );
        // Two changes of one object share the prefix and are still different ids.
        let (first, second) = (id(7, "42", "a"), id(7, "42", "b"));
        assert_eq!(first[..13], second[..13]);
        assert_ne!(first, second);
        // Another instance's resource has its own prefix; ids that are not numbers still vary.
        assert_ne!(id(8, "42", "a")[..4], first[..4]);
        let (text, other) = (id(7, "ab-12", "a"), id(7, "ab-13", "a"));
        assert!(is_uuid_v8(&text) && is_uuid_v8(&other));
        assert_ne!(text[4..13], other[4..13]);
        // "042" reads as the number 42 for placement only.
        assert_ne!(id(7, "042", "a"), first);

        let events: Vec<EventRecord> = (1..=25).map(|n| event("contacts", n)).collect();
        let notifications = build_notifications(InstanceId(7), &events, 10);
        for (notification, chunk) in notifications.iter().zip(events.chunks(10)) {
            assert!(is_uuid_v8(&notification.id.0));
            assert_eq!(notification.id.0[..13], chunk[0].id.0[..13]);
        }
        assert_ne!(notifications[0].id.0, notifications[1].id.0);
    }

    #[test]
    fn body_has_the_exact_shape() {
        let events = [event("contacts", 42)];
        let notifications = build_notifications(InstanceId(12345), &events, 10);
        assert_eq!(notifications.len(), 1);
        let n = &notifications[0];
        assert!(is_uuid_v8(&n.id.0));
        assert_eq!(n.event_ids, vec![events[0].id.clone()]);
        let expected = format!(
            concat!(
                r#"{{"message":{{"eventId":"{}","instanceId":12345,"elementKey":"connectwisecrmrest","#,
                r#""events":[{{"eventType":"UPDATED","objectType":"contacts","objectId":"42","#,
                r#""eventDate":"2019-03-01T10:15:00Z","elementKey":"connectwisecrmrest","id":"{}"}}],"#,
                r#""raw":{{"instance_id":12345,"objectType":"contacts","contacts":[{}]}}}}}}"#
            ),
            n.id.0,
            events[0].id.0,
            events[0].record.to_text()
        );
        assert_eq!(n.body, expected);
        // The body is valid JSON that round-trips to the same values.
        let parsed: serde_json::Value = serde_json::from_str(&n.body).expect("json");
        assert_eq!(
            parsed["message"]["raw"]["contacts"][0]["name"],
            json!("record \"42\"")
        );
    }

    #[test]
    fn batches_by_object_type_and_size() {
        let check = |events: Vec<EventRecord>, max: usize, expected: &[(&str, usize)]| {
            let notifications = build_notifications(InstanceId(7), &events, max);
            let shape: Vec<(String, usize)> = notifications
                .iter()
                .map(|n| {
                    let body: serde_json::Value = serde_json::from_str(&n.body).expect("json");
                    let object_type = body["message"]["raw"]["objectType"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    let raw_count = body["message"]["raw"][&object_type]
                        .as_array()
                        .map_or(0, Vec::len);
                    assert_eq!(raw_count, n.event_ids.len());
                    assert_eq!(
                        body["message"]["events"].as_array().map_or(0, Vec::len),
                        n.event_ids.len()
                    );
                    (object_type, n.event_ids.len())
                })
                .collect();
            let expected: Vec<(String, usize)> = expected
                .iter()
                .map(|(t, n)| ((*t).to_owned(), *n))
                .collect();
            assert_eq!(shape, expected);
            // Events keep their order across notifications.
            let ids: Vec<&EventId> = notifications.iter().flat_map(|n| &n.event_ids).collect();
            let mut types: Vec<&str> = Vec::new();
            for event in &events {
                if !types.contains(&event.object_type.as_str()) {
                    types.push(&event.object_type);
                }
            }
            let by_type: Vec<&EventId> = types
                .iter()
                .flat_map(|t| {
                    events
                        .iter()
                        .filter(move |e| e.object_type == *t)
                        .map(|e| &e.id)
                })
                .collect();
            assert_eq!(ids, by_type);
        };
        let many = |t: &str, n: usize| (0..n).map(|i| event(t, i)).collect::<Vec<_>>();
        check(
            many("contacts", 25),
            10,
            &[("contacts", 10), ("contacts", 10), ("contacts", 5)],
        );
        check(
            many("contacts", 10),
            MAX_EVENTS_PER_NOTIFICATION,
            &[("contacts", 10)],
        );
        check(
            many("contacts", 3),
            0,
            &[("contacts", 1), ("contacts", 1), ("contacts", 1)],
        );
        check(Vec::new(), 10, &[]);
        let mut mixed = many("incidents", 2);
        mixed.extend(many("contacts", 3));
        mixed.push(event("incidents", 9));
        check(
            mixed,
            2,
            &[
                ("incidents", 2),
                ("incidents", 1),
                ("contacts", 2),
                ("contacts", 1),
            ],
        );
    }

    #[test]
    fn notification_ids_are_deterministic() {
        let events: Vec<EventRecord> = (0..25).map(|i| event("contacts", i)).collect();
        let first = build_notifications(InstanceId(1), &events, 10);
        let again = build_notifications(InstanceId(1), &events, 10);
        assert_eq!(first, again);
        let ids: std::collections::HashSet<&str> = first.iter().map(|n| n.id.0.as_str()).collect();
        assert_eq!(ids.len(), 3);
        let regrouped = build_notifications(InstanceId(1), &events, 5);
        assert_ne!(first[0].id, regrouped[0].id);
    }

    #[test]
    fn updates_say_what_changed_and_optionally_what_it_was() {
        let mut tracked = event("contacts", 1);
        tracked.changes = Some(Changes {
            fields: crate::field_changes::changed_fields(
                r#"{"title": "CEO", "company": {"name": "A"}, "x": 1}"#,
                r#"{"title": "CTO", "company": {"name": "B"}, "x": 1}"#,
            )
            .expect("within the bounds"),
            include_previous: true,
        });
        let mut bare = event("contacts", 2);
        bare.changes = Some(Changes {
            fields: Vec::new(),
            include_previous: false,
        });
        let untracked = event("contacts", 3);
        let n = &build_notifications(InstanceId(1), &[tracked, bare, untracked], 10)[0];
        let body: Value = serde_json::from_str(&n.body).expect("json");
        let events = &body["message"]["events"];
        assert_eq!(events[0]["changedFields"], json!(["company.name", "title"]));
        assert_eq!(
            events[0]["previous"],
            json!({"company.name": "A", "title": "CEO"})
        );
        assert_eq!(events[1]["changedFields"], json!([]));
        assert!(events[1].get("previous").is_none());
        assert!(events[2].get("changedFields").is_none());
        for (i, id) in n.event_ids.iter().enumerate() {
            assert_eq!(events[i]["id"], json!(id.0));
        }
    }

    #[test]
    fn a_replay_keeps_the_events_under_a_new_notification_id() {
        let instance = InstanceId(7);
        let event = EventRecord {
            id: EventId("e-1".into()),
            event_type: EventType::Created,
            object_type: "contacts".into(),
            object_id: "42".into(),
            event_date: "2026-01-01T00:00:00Z".parse().expect("time"),
            record: RecordJson::Value(serde_json::json!({"id": 42})),
            changes: None,
        };
        let original = build_notifications(instance, &[event], 10).remove(0);
        let replay = replay_notification(&original.id, &original.body, "salt").expect("replay");
        assert_ne!(replay.id, original.id);
        assert_eq!(replay.event_ids, original.event_ids);
        let body: Value = serde_json::from_str(&replay.body).expect("json");
        let before: Value = serde_json::from_str(&original.body).expect("json");
        assert_eq!(body["message"]["eventId"], replay.id.0.as_str());
        assert_eq!(body["message"]["replayOf"], original.id.0.as_str());
        assert_eq!(body["message"]["events"], before["message"]["events"]);
        assert_eq!(body["message"]["raw"], before["message"]["raw"]);
        let again = replay_notification(&original.id, &original.body, "other").expect("replay");
        assert_ne!(
            again.id, replay.id,
            "each replay request is a new notification"
        );
        assert_eq!(replay_notification(&original.id, "{}", "salt"), None);
    }
}
