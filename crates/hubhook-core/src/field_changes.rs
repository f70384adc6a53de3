//! What changed between two versions of a record: the `changedFields` (and `previous`) of an
//! UPDATED event.
//!
//! Paths are dotted, like the poller's `idField` and date fields (`company.name`,
//! `_info.lastUpdated`). Objects are compared key by key, recursively; anything else (a
//! string, a number, an array) is compared as a whole, so a list whose items changed is
//! reported once, by its own path (`communicationItems`), not item by item: indices shift
//! when an item is inserted, and a path per shifted item would say less than the list does.
//! A key present on one side only has changed; on the side where it is absent its value is
//! `null`.
//!
//! ConnectWise's bookkeeping ([`BOOKKEEPING`]: who saved last and when) changes on every save,
//! even a save that changed nothing, and so do some of its links (a contact's
//! `_info.image_href` carries `?lastModified=`): links (`…_href`) are derived from the record,
//! never data of their own, so they count as bookkeeping too. It is never reported, so an update of nothing else has
//! `changedFields: []`, which receivers (and the `ignoreBookkeepingOnlyUpdates` option) can
//! tell apart from a real change.
//!
//! Bounded: a record may hold thousands of fields under keys of any length, and the list (with
//! `previous`) goes into every copy of the notification body. Past [`MAX_CHANGED_FIELDS`]
//! changes, or [`MAX_PATH_BYTES`] of their paths together, the walk stops and there is no
//! list at all: nothing is claimed about what changed (as for a record first seen before
//! versions were kept), rather than a partial list a receiver would read as complete. Without
//! the bound, a record of 20,000 changing fields under a 50 KB key made a 1 GB notification
//! and took the server down.

use std::borrow::Cow;

use serde_json::Value;

use crate::record_text::{Node, member_of, parse};

/// Paths that change on every save and say nothing about the record itself.
pub const BOOKKEEPING: &[&str] = &["_info.lastUpdated", "_info.updatedBy"];

/// Whether a change at `path` says nothing about the record: ConnectWise's save bookkeeping,
/// or a link (`_href`) it derives from the record.
pub fn is_bookkeeping(path: &str) -> bool {
    BOOKKEEPING.contains(&path)
        || path
            .rsplit('.')
            .next()
            .is_some_and(|last| last.ends_with("_href"))
}

/// One changed field: its dotted path and its value before (`null` if it was absent).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldChange {
    pub path: String,
    pub previous: Value,
}

/// Changed fields reported at most; past this, none are (see the module docs).
pub const MAX_CHANGED_FIELDS: usize = 200;
/// Bytes of changed paths reported at most, all together.
pub const MAX_PATH_BYTES: usize = 16 * 1024;

/// The fields that differ between the records whose JSON texts are `previous` and `current`
/// (as stored: read straight from the text, [`crate::record_text`]), in the order of their
/// paths; `None` when there are more than the bounds allow, or when either is not JSON.
pub fn changed_fields(previous: &str, current: &str) -> Option<Vec<FieldChange>> {
    let (previous, current) = (parse(previous).ok()?, parse(current).ok()?);
    let mut changes = Changed::default();
    compare(&mut String::new(), &previous, &current, &mut changes).ok()?;
    let mut changes = changes.list;
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    Some(changes)
}

/// The changes found so far, and what their paths weigh.
#[derive(Default)]
struct Changed {
    list: Vec<FieldChange>,
    path_bytes: usize,
}

/// The walk went past the bounds.
struct TooMany;

impl Changed {
    fn push(&mut self, path: &str, previous: &Node<'_>) -> Result<(), TooMany> {
        if is_bookkeeping(path) {
            return Ok(());
        }
        self.path_bytes += path.len();
        if self.list.len() == MAX_CHANGED_FIELDS || self.path_bytes > MAX_PATH_BYTES {
            return Err(TooMany);
        }
        self.list.push(FieldChange {
            path: path.to_owned(),
            previous: previous.to_value(),
        });
        Ok(())
    }
}

fn compare(
    path: &mut String,
    previous: &Node<'_>,
    current: &Node<'_>,
    out: &mut Changed,
) -> Result<(), TooMany> {
    match (previous, current) {
        (Node::Object(before), Node::Object(after)) => compare_objects(path, before, after, out),
        (before, after) if before == after => Ok(()),
        (before, _) => out.push(path, before),
    }
}

fn compare_objects(
    path: &mut String,
    before: &[(Cow<'_, str>, Node<'_>)],
    after: &[(Cow<'_, str>, Node<'_>)],
    out: &mut Changed,
) -> Result<(), TooMany> {
    // The earlier version's keys, then those only the later one has (each side is sorted).
    let keys = before.iter().map(|(key, _)| key.as_ref()).chain(
        after
            .iter()
            .map(|(key, _)| key.as_ref())
            .filter(|key| member_of(before, key).is_none()),
    );
    let absent = Node::Null;
    for key in keys {
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
        let done = compare(
            path,
            member_of(before, key).unwrap_or(&absent),
            member_of(after, key).unwrap_or(&absent),
            out,
        );
        path.truncate(len);
        done?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[track_caller]
    fn check(previous: Value, current: Value, expected: &[(&str, Value)]) {
        let changes =
            changed_fields(&previous.to_string(), &current.to_string()).expect("within the bounds");
        let got: Vec<(&str, Value)> = changes
            .iter()
            .map(|c| (c.path.as_str(), c.previous.clone()))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn nested_scalars_are_reported_by_dotted_path() {
        check(
            json!({"id": 1, "title": "CEO", "company": {"id": 7, "name": "Acme"}}),
            json!({"id": 1, "title": "CTO", "company": {"id": 7, "name": "Acme Inc"}}),
            &[("company.name", json!("Acme")), ("title", json!("CEO"))],
        );
    }

    #[test]
    fn added_and_removed_keys_have_null_on_their_absent_side() {
        check(
            json!({"a": 1, "gone": "x"}),
            json!({"a": 1, "new": {"deep": true}}),
            &[("gone", json!("x")), ("new", Value::Null)],
        );
    }

    #[test]
    fn lists_and_type_changes_are_reported_whole() {
        check(
            json!({"items": [1, 2], "kind": {"x": 1}}),
            json!({"items": [1, 2, 3], "kind": "flat"}),
            &[("items", json!([1, 2])), ("kind", json!({"x": 1}))],
        );
    }

    #[test]
    fn bookkeeping_alone_is_no_change() {
        check(
            json!({"id": 1, "_info": {"lastUpdated": "2026-01-01T00:00:00Z", "updatedBy": "a", "dateEntered": "x"}}),
            json!({"id": 1, "_info": {"lastUpdated": "2026-01-02T00:00:00Z", "updatedBy": "b", "dateEntered": "x"}}),
            &[],
        );
    }

    #[test]
    fn links_derived_from_the_record_are_bookkeeping() {
        check(
            json!({"id": 1, "_info": {"image_href": "contacts/1/image?lastModified=a"}, "title": "x"}),
            json!({"id": 1, "_info": {"image_href": "contacts/1/image?lastModified=b"}, "title": "y"}),
            &[("title", json!("x"))],
        );
    }

    #[test]
    fn identical_records_have_no_changes() {
        let record = json!({"a": [1, {"b": null}], "c": {"d": {}}});
        check(record.clone(), record, &[]);
    }

    #[test]
    fn too_many_changes_claim_nothing_rather_than_a_partial_list() {
        let wide = |n: u64| {
            Value::Object(
                (0..=MAX_CHANGED_FIELDS as u64)
                    .map(|i| (format!("f{i}"), json!(n)))
                    .collect(),
            )
        };
        assert_eq!(
            changed_fields(&wide(1).to_string(), &wide(2).to_string()),
            None
        );
        // One under the bound is listed whole.
        let mut fewer = wide(2);
        fewer
            .as_object_mut()
            .expect("object")
            .insert("f0".into(), json!(1));
        assert_eq!(
            changed_fields(&wide(1).to_string(), &fewer.to_string()).map(|c| c.len()),
            Some(MAX_CHANGED_FIELDS)
        );
        // Bookkeeping does not count against the bound.
        let with_info = |record: &Value, stamp: &str| {
            let mut record = record.clone();
            record.as_object_mut().expect("object").insert(
                "_info".into(),
                json!({"lastUpdated": stamp, "image_href": stamp}),
            );
            record
        };
        assert_eq!(
            changed_fields(
                &with_info(&wide(1), "a").to_string(),
                &with_info(&fewer, "b").to_string()
            )
            .map(|c| c.len()),
            Some(MAX_CHANGED_FIELDS)
        );
        // A few changes under a very long key weigh too much.
        let key = "k".repeat(MAX_PATH_BYTES / 2);
        let long = |n: u64| json!({ key.clone(): {"a": n, "b": n, "c": n} });
        assert_eq!(
            changed_fields(&long(1).to_string(), &long(2).to_string()),
            None
        );
        // The attack that found it: 20,000 changes under a 50 KB key, answered at once.
        let key = "k".repeat(50_000);
        let huge = |n: u64| json!({ key.clone(): Value::Object((0..20_000).map(|i| (format!("a{i}"), json!(n))).collect()) });
        assert_eq!(
            changed_fields(&huge(1).to_string(), &huge(2).to_string()),
            None
        );
    }
}
