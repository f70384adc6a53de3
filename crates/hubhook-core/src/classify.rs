//! Turning the records of one poll into changes (reference §1.4), with hubhook's improvements.
//!
//! Cloud Elements decides CREATED or UPDATED by comparing a record's created and updated
//! dates, and drops records not updated since the last poll. hubhook keeps those rules and
//! adds these:
//!
//! - Content dedupe: the caller passes the content hash of every object it has already
//!   observed. A record whose content is unchanged is never an event again, so overlapping
//!   poll windows, re-polls and a cursor that had to stay put cannot produce duplicates.
//! - Known objects: when created and updated read the same field (the documented ConnectWise
//!   default, `_info.lastUpdated` for both), the dates cannot tell the two apart, and Cloud
//!   Elements' rule would call every change CREATED. hubhook instead reports UPDATED for an
//!   object it has observed before and CREATED otherwise. The same rule applies when the
//!   fields differ but a record's created date is missing or unparsable.
//! - One record per object: the same object id can come back twice in one poll (offset pages
//!   drift when records change during the scan). Only the last occurrence counts, in the
//!   position of that last occurrence.
//! - Too new: with `filter_by_current_date`, a record updated at or after the start of the poll
//!   is left out entirely: it is neither a change nor observed, and it does not move the
//!   cursor (`max_updated`), so the next poll sees it again and announces it then.
//!
//! A record whose id or updated date cannot be read (no id, unparsable updated date) yields a
//! [`RecordError`], which the poller logs, and is otherwise skipped: it is neither observed nor
//! changed. It does not hold the cursor back (other records of the poll still move it), so it
//! is seen again only if it changes again (a later updated date brings it back into the poll
//! window).

use std::collections::HashMap;
use std::fmt::Write as _;

use jiff::Timestamp;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::{DateField, ResourcePoll};
use crate::field_path::FieldPath;
use crate::record_text::read_record;

/// The kind of change an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventType {
    Created,
    Updated,
    Deleted,
    Unknown,
}

impl EventType {
    /// The name used in payloads: `CREATED`, `UPDATED`, `DELETED` or `UNKNOWN`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Created => "CREATED",
            EventType::Updated => "UPDATED",
            EventType::Deleted => "DELETED",
            EventType::Unknown => "UNKNOWN",
        }
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What classification needs to know besides the records.
pub struct ClassifyContext<'a> {
    pub resource: &'a ResourcePoll,
    /// Records whose updated date is not later than this are not events (when
    /// filter_by_updated_date), but are still observed.
    pub since: Timestamp,
    /// Start of this poll (for filter_by_current_date: records updated at or after it are left
    /// out entirely, neither changes nor observed, for the next poll to see).
    pub poll_started: Timestamp,
    /// What this instance already knows of each object, by object id.
    pub known: &'a HashMap<String, Known>,
    /// Report every record that is not too old as CREATED (the first run `all`).
    pub all_created: bool,
}

/// What hubhook knows of an object it has observed before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub content_hash: String,
    /// Its deletion was announced.
    pub deleted: bool,
}

/// A valid record seen in this poll, whether or not it is an event.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub object_id: String,
    pub content_hash: String,
    pub updated: Timestamp,
    /// The record's canonical JSON text ([`canonical_json`]), which its content hash is
    /// taken over: what is remembered as the object's last version.
    pub text: String,
    /// Its deleted flag is set (a soft delete).
    pub deleted: bool,
}

/// A record that is an event.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub object_id: String,
    pub event_type: EventType,
    pub updated: Timestamp,
    pub content_hash: String,
    /// The record's canonical text (as [`Observed::text`]).
    pub text: String,
}

/// A record that could not be read; `index` is its position in the poll's records.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordError {
    pub index: usize,
    pub message: String,
}

/// The outcome of classifying one poll's records.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Classified {
    pub changes: Vec<Change>,
    pub observed: Vec<Observed>,
    /// The latest updated date among the observed records (too-new records are not observed,
    /// so they never move it).
    pub max_updated: Option<Timestamp>,
    pub errors: Vec<RecordError>,
}

/// A record of a page as classification reads it: its canonical text ([`canonical_json`]),
/// and the fields the resource's configuration names, read from ConnectWise's text in one
/// pass ([`crate::record_text`]); no `Value` is built for a record that is no change.
#[derive(Debug, Clone, PartialEq)]
pub struct PageRecord {
    /// The canonical text: what the content hash covers and what is stored.
    pub text: String,
    id: Option<Value>,
    updated: Option<Value>,
    created: Option<Value>,
    deleted: bool,
    /// ConnectWise's own numeric `id` (forward-only pages continue after the last one).
    pub numeric_id: Option<i64>,
}

/// ConnectWise's record id, which paging reads whatever `idField` says.
static ID: std::sync::LazyLock<FieldPath> =
    std::sync::LazyLock::new(|| FieldPath::parse("id").expect("`id` is a field path"));

impl PageRecord {
    /// Reads one record of a page from its text, nulls removed when `strip_nulls` (the
    /// instance's `filter.response.nulls`). An error only for text that is not JSON.
    pub fn read(
        raw: &str,
        strip_nulls: bool,
        resource: &ResourcePoll,
    ) -> Result<PageRecord, serde_json::Error> {
        let paths = [
            &resource.id_field,
            &resource.dates.updated.path,
            &resource.dates.created.path,
            &resource.deleted_flag_field,
            &*ID,
        ];
        let (text, found) = read_record(raw, strip_nulls, &paths)?;
        let [id, updated, created, deleted, numeric_id]: [Option<Value>; 5] =
            found.try_into().expect("one value per path");
        Ok(PageRecord {
            text,
            id,
            updated,
            created,
            deleted: deleted == Some(Value::Bool(true)),
            numeric_id: numeric_id.as_ref().and_then(Value::as_i64),
        })
    }

    /// A record already parsed (nulls as they are in it).
    pub fn of_value(record: &Value, resource: &ResourcePoll) -> PageRecord {
        Self::read(&record.to_string(), false, resource)
            .expect("a serialized JSON value reads back")
    }

    /// The object id events carry ([`object_id`]).
    pub fn object_id(&self, resource: &ResourcePoll) -> Result<String, String> {
        id_text(resource, self.id.as_ref())
    }
}

/// Classifies `records` (in order) for `ctx.resource`.
///
/// When an object id occurs more than once, only its last occurrence is classified (at that
/// occurrence's position); the earlier ones are dropped without an error.
pub fn classify(ctx: &ClassifyContext<'_>, records: Vec<PageRecord>) -> Classified {
    let ids: Vec<Result<String, String>> = records
        .iter()
        .map(|record| record.object_id(ctx.resource))
        .collect();
    let mut last: HashMap<&str, usize> = HashMap::new();
    for (index, id) in ids.iter().enumerate() {
        if let Ok(id) = id {
            last.insert(id.as_str(), index);
        }
    }
    let superseded: Vec<bool> = ids
        .iter()
        .enumerate()
        .map(|(index, id)| matches!(id, Ok(id) if last[id.as_str()] != index))
        .collect();
    drop(last);

    let mut out = Classified::default();
    for (index, (record, id)) in records.into_iter().zip(ids).enumerate() {
        if superseded[index] {
            continue;
        }
        let outcome = id.and_then(|object_id| classify_one(ctx, object_id, record));
        match outcome {
            Ok(None) => {}
            Ok(Some(outcome)) => {
                out.max_updated = out.max_updated.max(Some(outcome.observed.updated));
                if let Some(event_type) = outcome.event_type {
                    out.changes.push(Change {
                        object_id: outcome.observed.object_id.clone(),
                        event_type,
                        updated: outcome.observed.updated,
                        content_hash: outcome.observed.content_hash.clone(),
                        text: outcome.observed.text.clone(),
                    });
                }
                out.observed.push(outcome.observed);
            }
            Err(message) => out.errors.push(RecordError { index, message }),
        }
    }
    out
}

struct Outcome {
    observed: Observed,
    event_type: Option<EventType>,
}

/// The object id of `record` as events carry it: a string id as it is, a number as its
/// decimal text; anything else (missing, null, empty, other types) is an error naming the field.
pub fn object_id(resource: &ResourcePoll, record: &Value) -> Result<String, String> {
    id_text(resource, resource.id_field.get(record))
}

fn id_text(resource: &ResourcePoll, id: Option<&Value>) -> Result<String, String> {
    let id_path = resource.id_field.as_str();
    match id {
        None | Some(Value::Null) => Err(format!("missing idField `{id_path}`")),
        Some(Value::String(s)) if s.is_empty() => Err(format!("idField `{id_path}` is empty")),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(other) => Err(format!(
            "idField `{id_path}` is {}, not a string or number",
            kind(other)
        )),
    }
}

/// `Ok(None)`: the record is too new for this poll (filter_by_current_date) and is left out.
///
/// A record whose deleted flag is set (`deletedFlagField`, a soft delete) is DELETED if hubhook
/// knew it alive, and nothing otherwise (an already announced deletion, or a record that was
/// deleted before hubhook ever saw it). A record hubhook announced as deleted that comes back
/// alive is CREATED again.
fn classify_one(
    ctx: &ClassifyContext<'_>,
    object_id: String,
    record: PageRecord,
) -> Result<Option<Outcome>, String> {
    let resource = ctx.resource;
    let updated = date_of(&resource.dates.updated, record.updated.as_ref())?;
    if resource.filter_by_current_date && updated >= ctx.poll_started {
        return Ok(None);
    }
    let PageRecord {
        text,
        deleted,
        created,
        ..
    } = record;
    let content_hash = hash_text(&text);
    let alive = ctx.known.get(&object_id).filter(|known| !known.deleted);

    let event_type = if deleted {
        alive.map(|_| EventType::Deleted)
    } else {
        let known_rule = || {
            if alive.is_some() {
                EventType::Updated
            } else {
                EventType::Created
            }
        };
        let unchanged = alive.is_some_and(|known| known.content_hash == content_hash);
        let too_old = resource.filter_by_updated_date && updated <= ctx.since;
        if unchanged || too_old {
            None
        } else if ctx.all_created {
            Some(EventType::Created)
        } else if resource.dates.same_field() {
            Some(known_rule())
        } else {
            // Without a readable created date the dates cannot be compared; what hubhook knows
            // still tells CREATED from UPDATED.
            Some(match date_of(&resource.dates.created, created.as_ref()) {
                Ok(created) => {
                    let apart = (updated.as_nanosecond() - created.as_nanosecond()).unsigned_abs();
                    if apart <= resource.created_check_tolerance.as_nanos() {
                        EventType::Created
                    } else {
                        EventType::Updated
                    }
                }
                Err(_) => known_rule(),
            })
        }
    };
    Ok(Some(Outcome {
        observed: Observed {
            object_id,
            content_hash,
            updated,
            text,
            deleted,
        },
        event_type,
    }))
}

/// A record's date as `field` says to read it, or why it cannot be read (naming the field).
pub fn read_date(record: &Value, field: &DateField) -> Result<Timestamp, String> {
    date_of(field, field.path.get(record))
}

fn date_of(field: &DateField, value: Option<&Value>) -> Result<Timestamp, String> {
    let path = field.path.as_str();
    let text = match value {
        None | Some(Value::Null) => return Err(format!("missing date field `{path}`")),
        Some(Value::String(s)) => s.clone(),
        // Epoch patterns read numbers.
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => {
            return Err(format!("`{path}` is {}, not a date string", kind(other)));
        }
    };
    field
        .pattern
        .parse_value(&text, &field.zone)
        .map_err(|error| format!("`{path}` {error}"))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// SHA-256 (lower-case hex) of the canonical JSON of `record` ([`canonical_json`]).
pub fn content_hash(record: &Value) -> String {
    hash_text(&canonical_json(record))
}

fn hash_text(canonical: &str) -> String {
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// The canonical JSON text of `record`: object keys sorted recursively, no whitespace. It is
/// both what the content hash is taken over and what is stored as the object's last version,
/// so a record is serialized once.
///
/// Without serde_json's `preserve_order` feature (this build has it off), a JSON object is a
/// map sorted by key, and serde_json's own compact writer already writes the canonical text.
/// Whether maps keep their keys sorted is a property of the map type, checked once rather than
/// assumed, so that some crate turning the feature on could not change a content hash (that
/// would make every stored record an event again): records are then written key by key.
pub fn canonical_json(record: &Value) -> String {
    if *MAPS_ARE_SORTED && let Ok(text) = serde_json::to_string(record) {
        return text;
    }
    let mut canonical = String::new();
    write_canonical(&mut canonical, record);
    canonical
}

/// Whether `serde_json::Map` iterates in key order whatever the insertion order (a `BTreeMap`,
/// as without `preserve_order`), rather than in insertion order.
static MAPS_ARE_SORTED: std::sync::LazyLock<bool> = std::sync::LazyLock::new(|| {
    let mut map = serde_json::Map::new();
    map.insert("b".to_owned(), Value::Null);
    map.insert("a".to_owned(), Value::Null);
    map.keys().is_sorted()
});

fn write_canonical(out: &mut String, value: &Value) {
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                // A JSON string's Display is its escaped, quoted form.
                let _ = write!(out, "{}:", Value::String(key.clone()));
                write_canonical(out, item);
            }
            out.push('}');
        }
        scalar => {
            let _ = write!(out, "{scalar}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatesConfig;
    use crate::field_path::FieldPath;
    use crate::java_time::JavaPattern;
    use serde_json::json;
    use std::time::Duration;

    const FORMAT: &str = "yyyy-MM-dd'T'HH:mm:ss'Z'";
    const SINCE: &str = "2019-03-01T10:00:00Z";
    const STARTED: &str = "2019-03-01T10:15:00Z";

    fn date_field(path: &str) -> DateField {
        DateField {
            path: FieldPath::parse(path).expect("path"),
            pattern: JavaPattern::parse(FORMAT).expect("pattern"),
            zone: jiff::tz::TimeZone::UTC,
        }
    }

    /// The documented ConnectWise default: both dates read `_info.lastUpdated`.
    fn same_field() -> ResourcePoll {
        ResourcePoll {
            url: "/hubs/crm/contacts".into(),
            id_field: FieldPath::parse("id").expect("path"),
            dates: DatesConfig {
                updated: date_field("_info.lastUpdated"),
                created: date_field("_info.lastUpdated"),
            },
            filter_by_updated_date: true,
            filter_by_current_date: false,
            created_check_tolerance: Duration::ZERO,
            page_size: None,
            poll_delay: Duration::ZERO,
            changes: crate::config::ChangeTracking {
                track: true,
                include_previous: false,
                ignore_bookkeeping_only: false,
            },
            reconcile_interval: None,
            mass_delete_threshold: crate::config::DEFAULT_MASS_DELETE_THRESHOLD,
            deleted_flag_field: FieldPath::parse("deletedFlag").expect("path"),
        }
    }

    /// Distinct created (`_info.dateEntered`) and updated dates.
    fn two_fields() -> ResourcePoll {
        let mut resource = same_field();
        resource.dates.created = date_field("_info.dateEntered");
        resource
    }

    fn record(id: Value, updated: &str, entered: &str, name: &str) -> Value {
        json!({"id": id, "name": name, "_info": {"lastUpdated": updated, "dateEntered": entered}})
    }

    fn ts(text: &str) -> Timestamp {
        text.parse().expect("timestamp")
    }

    /// What classification produced, reduced to comparable text:
    /// changes as `id:TYPE`, observed ids, max_updated, error messages as `index:message`.
    #[derive(Debug, PartialEq)]
    struct Summary {
        changes: Vec<String>,
        observed: Vec<String>,
        max_updated: Option<String>,
        errors: Vec<String>,
    }

    fn check(
        resource: &ResourcePoll,
        known: &[(&str, &Value)],
        records: Vec<Value>,
        expected: Summary,
    ) {
        let known: HashMap<String, Known> = known
            .iter()
            .map(|(id, record)| ((*id).to_owned(), alive(record)))
            .collect();
        assert_eq!(run(resource, &known, false, records), expected);
    }

    fn page_of(resource: &ResourcePoll, records: &[Value]) -> Vec<PageRecord> {
        records
            .iter()
            .map(|record| PageRecord::of_value(record, resource))
            .collect()
    }

    fn alive(record: &Value) -> Known {
        Known {
            content_hash: content_hash(record),
            deleted: false,
        }
    }

    fn run(
        resource: &ResourcePoll,
        known: &HashMap<String, Known>,
        all_created: bool,
        records: Vec<Value>,
    ) -> Summary {
        let ctx = ClassifyContext {
            resource,
            since: ts(SINCE),
            poll_started: ts(STARTED),
            known,
            all_created,
        };
        let classified = classify(&ctx, page_of(resource, &records));
        // Every change carries its record and the record's hash.
        for change in &classified.changes {
            let record: Value = serde_json::from_str(&change.text).expect("json");
            assert_eq!(change.content_hash, content_hash(&record));
            assert!(records.contains(&record));
        }
        Summary {
            changes: classified
                .changes
                .iter()
                .map(|c| format!("{}:{}", c.object_id, c.event_type))
                .collect(),
            observed: classified
                .observed
                .iter()
                .map(|o| o.object_id.clone())
                .collect(),
            max_updated: classified.max_updated.map(|t| t.to_string()),
            errors: classified
                .errors
                .iter()
                .map(|e| format!("{}:{}", e.index, e.message))
                .collect(),
        }
    }

    fn summary(changes: &[&str], observed: &[&str], max: Option<&str>, errors: &[&str]) -> Summary {
        let strings = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
        Summary {
            changes: strings(changes),
            observed: strings(observed),
            max_updated: max.map(str::to_owned),
            errors: strings(errors),
        }
    }

    #[test]
    fn same_field_uses_known_objects() {
        let old = record(json!(1), "2019-03-01T09:00:00Z", "", "old");
        check(
            &same_field(),
            &[("1", &old)],
            vec![
                record(json!(1), "2019-03-01T10:05:00Z", "", "renamed"),
                record(json!(2), "2019-03-01T10:06:00Z", "", "new"),
            ],
            summary(
                &["1:UPDATED", "2:CREATED"],
                &["1", "2"],
                Some("2019-03-01T10:06:00Z"),
                &[],
            ),
        );
    }

    #[test]
    fn distinct_fields_compare_dates_with_tolerance() {
        let records = || {
            vec![
                record(
                    json!(1),
                    "2019-03-01T10:05:00Z",
                    "2019-03-01T10:05:00Z",
                    "a",
                ),
                record(
                    json!(2),
                    "2019-03-01T10:05:02Z",
                    "2019-03-01T10:05:00Z",
                    "b",
                ),
                record(
                    json!(3),
                    "2019-03-01T10:05:03Z",
                    "2019-03-01T10:05:00Z",
                    "c",
                ),
                record(
                    json!(4),
                    "2019-03-01T10:05:00Z",
                    "2019-01-01T00:00:00Z",
                    "d",
                ),
            ]
        };
        let observed = ["1", "2", "3", "4"];
        let max = Some("2019-03-01T10:05:03Z");
        check(
            &two_fields(),
            &[],
            records(),
            summary(
                &["1:CREATED", "2:UPDATED", "3:UPDATED", "4:UPDATED"],
                &observed,
                max,
                &[],
            ),
        );
        let mut tolerant = two_fields();
        tolerant.created_check_tolerance = Duration::from_secs(2);
        check(
            &tolerant,
            &[],
            records(),
            summary(
                &["1:CREATED", "2:CREATED", "3:UPDATED", "4:UPDATED"],
                &observed,
                max,
                &[],
            ),
        );
    }

    #[test]
    fn unchanged_content_is_never_an_event_again() {
        let seen = record(
            json!("A-1"),
            "2019-03-01T10:05:00Z",
            "2019-03-01T10:05:00Z",
            "same",
        );
        let changed = record(
            json!("A-2"),
            "2019-03-01T10:05:00Z",
            "2019-03-01T10:05:00Z",
            "v2",
        );
        let previous = record(
            json!("A-2"),
            "2019-03-01T10:05:00Z",
            "2019-03-01T10:05:00Z",
            "v1",
        );
        check(
            &two_fields(),
            &[("A-1", &seen), ("A-2", &previous)],
            vec![seen.clone(), changed],
            summary(
                &["A-2:CREATED"],
                &["A-1", "A-2"],
                Some("2019-03-01T10:05:00Z"),
                &[],
            ),
        );
    }

    #[test]
    fn filters_by_updated_and_current_date() {
        let records = || {
            vec![
                record(json!(1), "2019-03-01T09:59:59Z", "", "before since"),
                record(json!(2), SINCE, "", "at since"),
                record(json!(3), "2019-03-01T10:00:01Z", "", "inside"),
                record(json!(4), STARTED, "", "at poll start"),
                record(json!(5), "2019-03-01T10:20:00Z", "", "after poll start"),
            ]
        };
        let observed = ["1", "2", "3", "4", "5"];
        let max = Some("2019-03-01T10:20:00Z");
        check(
            &same_field(),
            &[],
            records(),
            summary(
                &["3:CREATED", "4:CREATED", "5:CREATED"],
                &observed,
                max,
                &[],
            ),
        );
        let mut current = same_field();
        current.filter_by_current_date = true;
        // Too-new records (4 and 5) are left out entirely: not observed, and the cursor
        // stays before them, so the next poll announces them.
        check(
            &current,
            &[],
            records(),
            summary(
                &["3:CREATED"],
                &["1", "2", "3"],
                Some("2019-03-01T10:00:01Z"),
                &[],
            ),
        );
        let mut unfiltered = same_field();
        unfiltered.filter_by_updated_date = false;
        check(
            &unfiltered,
            &[],
            records(),
            summary(
                &[
                    "1:CREATED",
                    "2:CREATED",
                    "3:CREATED",
                    "4:CREATED",
                    "5:CREATED",
                ],
                &observed,
                max,
                &[],
            ),
        );
    }

    #[test]
    fn reports_bad_records_and_skips_them() {
        let ok = record(
            json!(9),
            "2019-03-01T10:05:00Z",
            "2019-03-01T10:05:00Z",
            "ok",
        );
        check(
            &two_fields(),
            &[],
            vec![
                json!({"name": "no id", "_info": {"lastUpdated": "2019-03-01T10:05:00Z"}}),
                record(json!(null), "2019-03-01T10:05:00Z", "", "null id"),
                record(json!({"x": 1}), "2019-03-01T10:05:00Z", "", "object id"),
                record(json!(""), "2019-03-01T10:05:00Z", "", "empty id"),
                json!({"id": 5}),
                record(json!(6), "x", "", "bad updated"),
                ok,
            ],
            summary(
                &["9:CREATED"],
                &["9"],
                Some("2019-03-01T10:05:00Z"),
                &[
                    "0:missing idField `id`",
                    "1:missing idField `id`",
                    "2:idField `id` is an object, not a string or number",
                    "3:idField `id` is empty",
                    "4:missing date field `_info.lastUpdated`",
                    "5:`_info.lastUpdated` value `x` does not match pattern `yyyy-MM-dd'T'HH:mm:ss'Z'`: expected 1 to 4 digits for the year at position 1",
                ],
            ),
        );
    }

    #[test]
    fn too_new_records_are_neither_observed_nor_counted() {
        let mut resource = same_field();
        resource.filter_by_current_date = true;
        let old = record(json!(1), "2019-03-01T09:00:00Z", "", "old");
        check(
            &resource,
            &[("1", &old)],
            vec![
                record(
                    json!(1),
                    "2019-03-01T10:16:00Z",
                    "",
                    "changed after the poll began",
                ),
                record(json!(2), STARTED, "", "created as the poll began"),
                record(json!(3), "2019-03-01T10:05:00Z", "", "in the window"),
            ],
            summary(&["3:CREATED"], &["3"], Some("2019-03-01T10:05:00Z"), &[]),
        );
        // Nothing but too-new records: nothing observed, the cursor does not move.
        check(
            &resource,
            &[],
            vec![record(json!(2), STARTED, "", "created as the poll began")],
            summary(&[], &[], None, &[]),
        );
    }

    #[test]
    fn a_deleted_flag_is_a_delete_once() {
        let resource = same_field();
        let when = "2019-03-01T10:05:00Z";
        let flagged = |id: i64| {
            let mut r = record(json!(id), when, "", "gone");
            r["deletedFlag"] = json!(true);
            r
        };
        let before = record(json!(1), "2019-03-01T09:00:00Z", "", "alive");
        let mut known: HashMap<String, Known> = HashMap::new();
        known.insert("1".into(), alive(&before));
        known.insert(
            "2".into(),
            Known {
                content_hash: "announced before".into(),
                deleted: true,
            },
        );
        known.insert(
            "4".into(),
            Known {
                content_hash: "announced before".into(),
                deleted: true,
            },
        );
        let mut undeleted = record(json!(4), when, "", "back");
        undeleted["deletedFlag"] = json!(false);
        let result = run(
            &resource,
            &known,
            false,
            vec![flagged(1), flagged(2), flagged(3), undeleted],
        );
        // Known alive → DELETED; already announced → nothing; never known → nothing (but
        // remembered); announced deleted and now alive → CREATED.
        assert_eq!(result.changes, ["1:DELETED", "4:CREATED"]);
        assert_eq!(result.observed, ["1", "2", "3", "4"]);
    }

    #[test]
    fn the_first_run_all_reports_every_record_as_created() {
        let resource = two_fields();
        // Entered long before its last update: UPDATED by the dates, CREATED in `all`.
        let edited = record(
            json!(1),
            "2019-03-01T10:05:00Z",
            "2018-01-01T00:00:00Z",
            "old",
        );
        let known = HashMap::new();
        assert_eq!(
            run(&resource, &known, false, vec![edited.clone()]).changes,
            ["1:UPDATED"]
        );
        assert_eq!(
            run(&resource, &known, true, vec![edited]).changes,
            ["1:CREATED"]
        );
    }

    #[test]
    fn the_canonical_text_is_written_once_and_is_what_the_hash_covers() {
        let nested = json!({
            "b": [1, 2.5, {"z": null, "a": "x\"\n\u{1F600}"}],
            "a": {"\u{e9}": true, "B": -3, "": []},
        });
        let mut reference = String::new();
        write_canonical(&mut reference, &nested);
        assert_eq!(
            reference,
            "{\"a\":{\"\":[],\"B\":-3,\"\u{e9}\":true},\"b\":[1,2.5,{\"a\":\"x\\\"\\n\u{1F600}\",\"z\":null}]}"
        );
        assert_eq!(canonical_json(&nested), reference);
        assert_eq!(content_hash(&nested), hash_text(&reference));
        // This build takes serde_json's writer (its maps are sorted); `write_canonical`, the
        // other way, is what `reference` was written by.
        assert!(*MAPS_ARE_SORTED);
        let observed = classify(
            &ClassifyContext {
                resource: &same_field(),
                since: ts(SINCE),
                poll_started: ts(STARTED),
                known: &HashMap::new(),
                all_created: false,
            },
            page_of(
                &same_field(),
                &[record(json!(1), "2019-03-01T10:05:00Z", "", "a")],
            ),
        )
        .observed;
        assert_eq!(
            observed[0].text,
            canonical_json(&record(json!(1), "2019-03-01T10:05:00Z", "", "a"))
        );
    }

    #[test]
    fn duplicate_object_ids_count_once_keeping_the_last() {
        let copy = || record(json!(1), "2019-03-01T10:05:00Z", "", "same");
        check(
            &same_field(),
            &[],
            vec![copy(), copy()],
            summary(&["1:CREATED"], &["1"], Some("2019-03-01T10:05:00Z"), &[]),
        );

        // Different content: the last occurrence wins, in its own position.
        let first = record(json!(1), "2019-03-01T10:05:00Z", "", "first");
        let last = record(json!(1), "2019-03-01T10:07:00Z", "", "last");
        let known = HashMap::new();
        let resource = same_field();
        let ctx = ClassifyContext {
            resource: &resource,
            since: ts(SINCE),
            poll_started: ts(STARTED),
            known: &known,
            all_created: false,
        };
        let other = record(json!(2), "2019-03-01T10:06:00Z", "", "other");
        let classified = classify(&ctx, page_of(&resource, &[first, other, last.clone()]));
        let ids: Vec<&str> = classified
            .changes
            .iter()
            .map(|c| c.object_id.as_str())
            .collect();
        assert_eq!(ids, ["2", "1"]);
        assert_eq!(classified.changes[1].text, canonical_json(&last));
        assert_eq!(classified.observed.len(), 2);
        assert_eq!(classified.observed[1].content_hash, content_hash(&last));
        assert_eq!(classified.max_updated, Some(ts("2019-03-01T10:07:00Z")));

        // The same id as a number and as a string is the same object.
        check(
            &same_field(),
            &[],
            vec![
                record(json!(7), "2019-03-01T10:05:00Z", "", "number"),
                record(json!("7"), "2019-03-01T10:06:00Z", "", "string"),
            ],
            summary(&["7:CREATED"], &["7"], Some("2019-03-01T10:06:00Z"), &[]),
        );
    }

    #[test]
    fn unreadable_created_date_falls_back_to_known_objects() {
        let previous = record(json!(1), "2019-03-01T09:00:00Z", "", "before");
        check(
            &two_fields(),
            &[("1", &previous)],
            vec![
                record(json!(1), "2019-03-01T10:05:00Z", "yesterday", "renamed"),
                record(json!(2), "2019-03-01T10:06:00Z", "yesterday", "new"),
                json!({"id": 3, "name": "no created", "_info": {"lastUpdated": "2019-03-01T10:07:00Z"}}),
            ],
            summary(
                &["1:UPDATED", "2:CREATED", "3:CREATED"],
                &["1", "2", "3"],
                Some("2019-03-01T10:07:00Z"),
                &[],
            ),
        );
    }

    #[test]
    fn ids_render_without_quotes() {
        check(
            &same_field(),
            &[],
            vec![
                record(json!(42), "2019-03-01T10:05:00Z", "", "number"),
                record(json!("abc"), "2019-03-01T10:05:00Z", "", "string"),
                record(json!(1.5), "2019-03-01T10:05:00Z", "", "float"),
            ],
            summary(
                &["42:CREATED", "abc:CREATED", "1.5:CREATED"],
                &["42", "abc", "1.5"],
                Some("2019-03-01T10:05:00Z"),
                &[],
            ),
        );
    }

    #[test]
    fn content_hash_is_canonical() {
        let check = |a: Value, b: Value, equal: bool| {
            assert_eq!(content_hash(&a) == content_hash(&b), equal, "{a} vs {b}");
        };
        check(
            json!({"a": 1, "b": {"y": 2, "x": [1, {"q": 1, "p": 2}]}}),
            json!({"b": {"x": [1, {"p": 2, "q": 1}], "y": 2}, "a": 1}),
            true,
        );
        check(json!({"a": 1}), json!({"a": 2}), false);
        check(json!([1, 2]), json!([2, 1]), false);
        check(json!({"a": "1"}), json!({"a": 1}), false);
        // The canonical text of {"b":[1,"x\""],"a":null} is {"a":null,"b":[1,"x\""]}.
        assert_eq!(
            content_hash(&json!({"b": [1, "x\""], "a": null})),
            hex::encode(Sha256::digest(br#"{"a":null,"b":[1,"x\""]}"#))
        );
        // sha256("{}")
        assert_eq!(
            content_hash(&json!({})),
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }
}
