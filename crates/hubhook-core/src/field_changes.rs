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
use std::cmp::Ordering;

use serde_json::Value;

use crate::record_text::{Node, members, parse};

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
/// paths; `None` when there are more than the bounds allow, or when either is not JSON (its
/// syntax is checked everywhere; what only building a value finds, such as a number past
/// `f64`'s range, only where the two versions differ: see `compare_texts`).
pub fn changed_fields(previous: &str, current: &str) -> Option<Vec<FieldChange>> {
    let mut changes = Changed::default();
    compare_texts(&mut String::new(), previous, current, 0, &mut changes).ok()?;
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

/// Why the walk stopped: past the bounds, or a text that is not JSON.
enum Stop {
    TooMany,
    NotJson,
}

/// Levels of objects the text walk opens; below, both sides are parsed whole and walked as
/// trees. Each level reads the texts of the objects it opens again, so a change under `d`
/// levels costs up to `d` reads of the text above it: bounded here, a record nested as deep as
/// serde_json allows (128) costs at most this many reads and one parse, not 128 reads.
/// ConnectWise's records nest three or four levels.
const TEXT_DEPTH: usize = 16;

impl Changed {
    fn push(&mut self, path: &str, previous: &Node<'_>) -> Result<(), Stop> {
        if is_bookkeeping(path) {
            return Ok(());
        }
        self.path_bytes += path.len();
        if self.list.len() == MAX_CHANGED_FIELDS || self.path_bytes > MAX_PATH_BYTES {
            return Err(Stop::TooMany);
        }
        self.list.push(FieldChange {
            path: path.to_owned(),
            previous: previous.to_value(),
        });
        Ok(())
    }
}

/// Compares two versions as text first: the stored version and the new one are both the
/// poller's canonical text (keys sorted and unique, no whitespace, one way to write each
/// value), so an unchanged field is the same bytes on both sides, and most of a record is
/// unchanged. Only objects are opened (their members read as texts, [`members`]); where two
/// texts differ and are not both objects, they are parsed and compared as values, so that the
/// answer is the one whole parsed trees give even for text written another way (whitespace,
/// escapes, key order inside a list). Two texts of the same bytes are the same value, whatever
/// their form, which is all the shortcut assumes. (Inside a value the walk does not open,
/// serde_json checks the syntax but not what only building the value finds: a number past
/// `f64`'s range, a lone surrogate escape, nesting past serde_json's limit of 128. A record
/// holding any of them is refused when it is read ([`crate::record_text::read_record`]), so
/// neither the stored version nor the new one can.)
///
/// Parsing whole trees of both versions took twice as long as reading the new record itself
/// (docs/benchmarks.md, "Nineteenth round").
fn compare_texts(
    path: &mut String,
    previous: &str,
    current: &str,
    depth: usize,
    out: &mut Changed,
) -> Result<(), Stop> {
    // At the top, the texts are read even when equal: a text that is not JSON has no changes
    // to list.
    if depth > 0 && previous == current {
        return Ok(());
    }
    let objects = if depth < TEXT_DEPTH {
        (
            members(previous).map_err(|_| Stop::NotJson)?,
            members(current).map_err(|_| Stop::NotJson)?,
        )
    } else {
        (None, None)
    };
    let (Some(before), Some(after)) = objects else {
        let previous = parse(previous).map_err(|_| Stop::NotJson)?;
        let current = parse(current).map_err(|_| Stop::NotJson)?;
        return compare_trees(path, &previous, &current, out);
    };
    each_member(path, &before, &after, &"null", |path, previous, current| {
        compare_texts(path, previous, current, depth + 1, out)
    })
}

/// The same walk over parsed values: objects member by member, anything else whole.
fn compare_trees(
    path: &mut String,
    previous: &Node<'_>,
    current: &Node<'_>,
    out: &mut Changed,
) -> Result<(), Stop> {
    match (previous, current) {
        (Node::Object(before), Node::Object(after)) => each_member(
            path,
            before,
            after,
            &Node::Null,
            |path, previous, current| compare_trees(path, previous, current, out),
        ),
        (before, after) if before == after => Ok(()),
        (before, _) => out.push(path, before),
    }
}

/// Calls `each` with the path of every key of two objects and its value on each side
/// (`absent` on a side without it: an absent member is null). Both lists are sorted by key
/// and hold each key once, so one merge pairs them.
fn each_member<'m, T>(
    path: &mut String,
    before: &'m [(Cow<'_, str>, T)],
    after: &'m [(Cow<'_, str>, T)],
    absent: &'m T,
    mut each: impl FnMut(&mut String, &'m T, &'m T) -> Result<(), Stop>,
) -> Result<(), Stop> {
    let (mut i, mut j) = (0, 0);
    while i < before.len() || j < after.len() {
        let order = match (before.get(i), after.get(j)) {
            (Some((b, _)), Some((a, _))) => b.cmp(a),
            (Some(_), None) => Ordering::Less,
            (None, _) => Ordering::Greater,
        };
        let (key, previous, current) = match order {
            Ordering::Equal => {
                (i, j) = (i + 1, j + 1);
                (&before[i - 1].0, &before[i - 1].1, &after[j - 1].1)
            }
            Ordering::Less => {
                i += 1;
                (&before[i - 1].0, &before[i - 1].1, absent)
            }
            Ordering::Greater => {
                j += 1;
                (&after[j - 1].0, absent, &after[j - 1].1)
            }
        };
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
        let done = each(path, previous, current);
        path.truncate(len);
        done?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::record_text::read_record;
    use crate::record_text::tests::json_text;

    /// The walk as the module docs define it, over whole `Value`s (keys given twice keep the
    /// last, as in every parse here): the answer the text walk must give.
    fn through_values(previous: &str, current: &str) -> Option<Vec<FieldChange>> {
        fn walk(path: &str, before: &Value, after: &Value, out: &mut Vec<FieldChange>) {
            match (before, after) {
                (Value::Object(b), Value::Object(a)) => {
                    for key in b.keys().chain(a.keys().filter(|k| !b.contains_key(*k))) {
                        let path = if path.is_empty() {
                            key.clone()
                        } else {
                            format!("{path}.{key}")
                        };
                        let absent = Value::Null;
                        walk(
                            &path,
                            b.get(key).unwrap_or(&absent),
                            a.get(key).unwrap_or(&absent),
                            out,
                        );
                    }
                }
                (b, a) if b == a => {}
                (b, _) => out.push(FieldChange {
                    path: path.to_owned(),
                    previous: b.clone(),
                }),
            }
        }
        let before: Value = serde_json::from_str(previous).ok()?;
        let after: Value = serde_json::from_str(current).ok()?;
        let mut out = Vec::new();
        walk("", &before, &after, &mut out);
        out.retain(|change| !is_bookkeeping(&change.path));
        let path_bytes: usize = out.iter().map(|change| change.path.len()).sum();
        if out.len() > MAX_CHANGED_FIELDS || path_bytes > MAX_PATH_BYTES {
            return None;
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Some(out)
    }

    /// Two versions of a value: the same text, the same value written canonically (as the
    /// poller stores it), or another value; objects whose members are on both sides, one, or
    /// the other, with keys that repeat.
    fn versions() -> impl Strategy<Value = (String, String)> {
        let leaf = (json_text(), json_text(), 0..3_u8).prop_map(|(a, b, how)| match how {
            0 => (a.clone(), a),
            1 => {
                let canonical = read_record(&a, false, &[]).map_or_else(|_| a.clone(), |r| r.0);
                (a, canonical)
            }
            _ => (a, b),
        });
        leaf.prop_recursive(4, 64, 6, |inner| {
            let key = prop::sample::select(vec![
                "\"a\"",
                "\"b\"",
                "\"_info\"",
                "\"lastUpdated\"",
                "\"x_href\"",
                "\"\\u0061\"",
            ]);
            prop::collection::vec((key, inner, 0..4_u8), 0..6).prop_map(|members| {
                let (mut before, mut after) = (Vec::new(), Vec::new());
                for (key, (b, a), side) in members {
                    if side != 1 {
                        before.push(format!("{key}:{b}"));
                    }
                    if side != 2 {
                        after.push(format!("{key}:{a}"));
                    }
                }
                (
                    format!("{{{}}}", before.join(",")),
                    format!("{{ {} }}", after.join(" , ")),
                )
            })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        #[test]
        fn the_text_walk_finds_what_whole_values_differ_in((before, after) in versions()) {
            // Records as read and stored: a text holding what serde_json refuses only when it
            // builds a value (see `compare_texts`) is never one.
            prop_assume!(serde_json::from_str::<Value>(&before).is_ok());
            prop_assume!(serde_json::from_str::<Value>(&after).is_ok());
            prop_assert_eq!(changed_fields(&before, &after), through_values(&before, &after));
            prop_assert_eq!(changed_fields(&after, &before), through_values(&after, &before));
        }
    }

    #[test]
    fn text_written_another_way_is_the_same_value() {
        let stored = r#"{"a":{"b":"A","c":[{"x":1,"y":2}]},"d":1}"#;
        let other = r#" { "d" : 1, "a": {"c": [ {"y":2, "x":1} ], "b": "\u0041"} } "#;
        assert_eq!(changed_fields(stored, other), Some(vec![]));
        assert_eq!(
            changed_fields(stored, r#"{"a":{"b":"B","c":[{"x":1,"y":2}]},"d":1,"d":2}"#),
            Some(vec![
                FieldChange {
                    path: "a.b".into(),
                    previous: json!("A")
                },
                FieldChange {
                    path: "d".into(),
                    previous: json!(1)
                },
            ])
        );
        // Not JSON, on either side, anywhere: nothing is claimed.
        assert_eq!(
            changed_fields(stored, r#"{"a":{"b":"A","c":[1,]},"d":1}"#),
            None
        );
        assert_eq!(changed_fields(r#"{"a":1} x"#, r#"{"a":1}"#), None);
        assert_eq!(changed_fields("{", "{"), None);
    }

    #[test]
    fn deep_records_get_the_same_answer_past_the_text_walk() {
        // Deeper than the text walk goes, the trees take over, with the same answer; past
        // serde_json's limit, where the difference is, nothing is claimed.
        let nested = |levels: usize, leaf: u8| {
            format!("{}{leaf}{}", "{\"a\":".repeat(levels), "}".repeat(levels))
        };
        for levels in [TEXT_DEPTH - 1, TEXT_DEPTH, TEXT_DEPTH + 1, 100] {
            let (before, after) = (nested(levels, 1), nested(levels, 2));
            let changes = changed_fields(&before, &after);
            assert_eq!(changes, through_values(&before, &after), "{levels} levels");
            assert_eq!(changes.map(|c| c[0].path.len()), Some(levels * 2 - 1));
        }
        assert_eq!(changed_fields(&nested(200, 1), &nested(200, 2)), None);
    }

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
