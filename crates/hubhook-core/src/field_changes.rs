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

use serde_json::{Map, Value};

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

/// The fields that differ between `previous` and `current`, in the order of their paths.
pub fn changed_fields(previous: &Value, current: &Value) -> Vec<FieldChange> {
    let mut changes = Vec::new();
    compare(&mut String::new(), previous, current, &mut changes);
    changes.retain(|change| !is_bookkeeping(&change.path));
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    changes
}

fn compare(path: &mut String, previous: &Value, current: &Value, out: &mut Vec<FieldChange>) {
    match (previous, current) {
        (Value::Object(before), Value::Object(after)) => compare_objects(path, before, after, out),
        (before, after) if before == after => {}
        (before, _) => out.push(FieldChange {
            path: path.clone(),
            previous: before.clone(),
        }),
    }
}

fn compare_objects(
    path: &mut String,
    before: &Map<String, Value>,
    after: &Map<String, Value>,
    out: &mut Vec<FieldChange>,
) {
    let keys = before
        .keys()
        .chain(after.keys().filter(|key| !before.contains_key(*key)));
    for key in keys {
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
        let absent = Value::Null;
        compare(
            path,
            before.get(key).unwrap_or(&absent),
            after.get(key).unwrap_or(&absent),
            out,
        );
        path.truncate(len);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[track_caller]
    fn check(previous: Value, current: Value, expected: &[(&str, Value)]) {
        let changes = changed_fields(&previous, &current);
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
}
