//! JSON Patch (RFC 6902) as ConnectWise accepts it: `add`, `replace`,
//! `remove`, plus `copy`, `move` and `test`. ConnectWise also takes paths
//! without the leading slash (`"path":"company"`), and patches whole
//! top-level fields; the first path segment is checked against the schema
//! (case-sensitively, as the developer guide warns).

use serde_json::Value;

use crate::error::SimError;
use crate::schema::Field;

fn err(entity: &'static str, field: &str, message: impl Into<String>) -> SimError {
    SimError::invalid(entity, "InvalidField", field, message)
}

/// The most segments a patch path may have; records nest far less deeply.
pub const MAX_PATH_SEGMENTS: usize = 16;

/// The most operations one patch may hold. Clients patch a few fields at a time.
pub const MAX_OPERATIONS: usize = 100;

/// The most JSON values (objects, arrays and scalars, counted with their contents) that the
/// `copy` operations of one patch may duplicate. Without it, copying an array into itself
/// doubles the record with each operation: 40 operations of a few bytes ask for 2^40 values.
pub const MAX_COPIED_VALUES: usize = 10_000;

/// How many values `value` holds, itself included, counting no further than `limit`. Iterative,
/// so a deeply nested value cannot exhaust the stack.
fn value_count(value: &Value, limit: usize) -> usize {
    let mut count = 0;
    let mut pending = vec![value];
    while let Some(next) = pending.pop() {
        count += 1;
        if count > limit {
            break;
        }
        match next {
            Value::Array(items) => pending.extend(items),
            Value::Object(map) => pending.extend(map.values()),
            _ => {}
        }
    }
    count
}

fn pointer_parts(path: &str, entity: &'static str) -> Result<Vec<String>, SimError> {
    let path_trimmed = path.trim_start_matches('/');
    if path_trimmed.split('/').nth(MAX_PATH_SEGMENTS).is_some() {
        return Err(err(
            entity,
            "",
            format!("The patch path has more than {MAX_PATH_SEGMENTS} segments."),
        ));
    }
    Ok(path_trimmed
        .split('/')
        .map(|p| p.replace("~1", "/").replace("~0", "~"))
        .collect())
}

/// Applies `ops` to `doc` (a stored record without hrefs).
pub fn apply(
    doc: &mut Value,
    ops: &Value,
    entity: &'static str,
    fields: &[Field],
) -> Result<(), SimError> {
    let Some(ops) = ops.as_array() else {
        return Err(SimError::invalid(
            entity,
            "InvalidObject",
            "",
            "The request body must be a JSON Patch array of operations.",
        ));
    };
    if ops.is_empty() {
        return Err(SimError::invalid(
            entity,
            "InvalidObject",
            "",
            "At least one patch operation is required.",
        ));
    }
    if ops.len() > MAX_OPERATIONS {
        return Err(SimError::invalid(
            entity,
            "InvalidObject",
            "",
            format!(
                "A patch may hold at most {MAX_OPERATIONS} operations; this one has {}.",
                ops.len()
            ),
        ));
    }
    let mut copied = 0;
    for op in ops {
        let get = |k: &str| {
            op.get(k).or_else(|| {
                op.as_object()?
                    .iter()
                    .find(|(x, _)| x.eq_ignore_ascii_case(k))
                    .map(|(_, v)| v)
            })
        };
        let kind = get("op")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_lowercase();
        let Some(path) = get("path").and_then(Value::as_str) else {
            return Err(err(entity, "", "Each patch operation needs a path."));
        };
        let parts = pointer_parts(path, entity)?;
        check_field(&parts, entity, fields, path)?;
        match kind.as_str() {
            "add" | "replace" => {
                let value = get("value").cloned().ok_or_else(|| {
                    err(entity, path, format!("The {kind} operation needs a value."))
                })?;
                set(doc, &parts, value, kind == "add").map_err(|m| err(entity, path, m))?;
            }
            "remove" => {
                remove(doc, &parts).map_err(|m| err(entity, path, m))?;
            }
            "copy" | "move" => {
                let from = get("from")
                    .and_then(Value::as_str)
                    .ok_or_else(|| err(entity, path, "from is required."))?;
                let from_parts = pointer_parts(from, entity)?;
                check_field(&from_parts, entity, fields, from)?;
                let source = lookup(doc, &from_parts)
                    .ok_or_else(|| err(entity, from, "from path does not exist."))?;
                if kind == "copy" {
                    // Counted before cloning, so an oversized copy costs no more than the limit.
                    copied += value_count(source, MAX_COPIED_VALUES - copied);
                    if copied > MAX_COPIED_VALUES {
                        return Err(err(
                            entity,
                            from,
                            format!(
                                "The copy operations of one patch may duplicate at most {MAX_COPIED_VALUES} values."
                            ),
                        ));
                    }
                }
                let value = source.clone();
                if kind == "move" {
                    remove(doc, &from_parts).map_err(|m| err(entity, from, m))?;
                }
                set(doc, &parts, value, true).map_err(|m| err(entity, path, m))?;
            }
            "test" => {
                let wanted = get("value").cloned().unwrap_or(Value::Null);
                let actual = lookup(doc, &parts).cloned().unwrap_or(Value::Null);
                if wanted != actual {
                    return Err(err(entity, path, "The test operation failed."));
                }
            }
            other => {
                return Err(err(
                    entity,
                    path,
                    format!("'{other}' is not a supported patch operation."),
                ));
            }
        }
    }
    Ok(())
}

fn check_field(
    parts: &[String],
    entity: &'static str,
    fields: &[Field],
    path: &str,
) -> Result<(), SimError> {
    let first = parts.first().map(String::as_str).unwrap_or("");
    match fields.iter().find(|f| f.name == first) {
        None => Err(err(
            entity,
            first,
            format!("Cannot find field '{first}' on {entity} (patch path '{path}').",),
        )),
        Some(f) if f.read_only => Err(err(
            entity,
            first,
            format!("The {first} field is read-only."),
        )),
        Some(_) => Ok(()),
    }
}

fn lookup<'v>(doc: &'v Value, parts: &[String]) -> Option<&'v Value> {
    let mut v = doc;
    for p in parts {
        v = match v {
            Value::Object(m) => m.get(p)?,
            Value::Array(a) => a.get(p.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(v)
}

fn parent<'v>(doc: &'v mut Value, parts: &[String]) -> Result<&'v mut Value, String> {
    let mut v = doc;
    for p in &parts[..parts.len().saturating_sub(1)] {
        v = match v {
            // RFC 6902 §4.1: a missing intermediate container is an error.
            Value::Object(m) => m.get_mut(p).ok_or("The path does not exist.")?,
            Value::Array(a) => {
                let i = p
                    .parse::<usize>()
                    .map_err(|_| format!("'{p}' is not an array index."))?;
                a.get_mut(i)
                    .ok_or_else(|| format!("Index {i} is out of range."))?
            }
            _ => return Err("The path does not exist.".into()),
        };
    }
    Ok(v)
}

fn set(doc: &mut Value, parts: &[String], value: Value, insert: bool) -> Result<(), String> {
    let last = parts.last().cloned().unwrap_or_default();
    match parent(doc, parts)? {
        Value::Object(m) => {
            m.insert(last, value);
            Ok(())
        }
        Value::Array(a) => {
            if last == "-" {
                a.push(value);
                return Ok(());
            }
            let i = last
                .parse::<usize>()
                .map_err(|_| format!("'{last}' is not an array index."))?;
            if insert && i <= a.len() {
                a.insert(i, value);
                Ok(())
            } else if !insert && i < a.len() {
                a[i] = value;
                Ok(())
            } else {
                Err(format!("Index {i} is out of range."))
            }
        }
        _ => Err("The path does not exist.".into()),
    }
}

fn remove(doc: &mut Value, parts: &[String]) -> Result<(), String> {
    let last = parts.last().cloned().unwrap_or_default();
    match parent(doc, parts)? {
        Value::Object(m) => {
            // Null fields are omitted, so removing an absent field is a no-op.
            m.remove(&last);
            Ok(())
        }
        Value::Array(a) => {
            let i = last
                .parse::<usize>()
                .map_err(|_| format!("'{last}' is not an array index."))?;
            if i < a.len() {
                a.remove(i);
                Ok(())
            } else {
                Err(format!("Index {i} is out of range."))
            }
        }
        _ => Err("The path does not exist.".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Kind, field, read_only};
    use serde_json::json;

    static FIELDS: [Field; 4] = [
        read_only("id", Kind::Int),
        field("firstName", Kind::Str),
        field("title", Kind::Str),
        field("types", Kind::Str),
    ];

    fn check(ops: Value, expected: Result<Value, &str>) {
        let mut doc = json!({"id": 1, "firstName": "Ann", "types": [1, 2]});
        let got = apply(&mut doc, &ops, "contact", &FIELDS)
            .map(|_| doc)
            .map_err(|e| format!("{:?}", e.body()));
        match (got, expected) {
            (Ok(d), Ok(e)) => assert_eq!(d, e, "{ops}"),
            (Err(m), Err(part)) => assert!(m.contains(part), "{ops}: {m}"),
            (got, expected) => panic!("{ops}: got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn operations() {
        check(
            json!([{"op": "replace", "path": "/firstName", "value": "Bo"}]),
            Ok(json!({"id": 1, "firstName": "Bo", "types": [1, 2]})),
        );
        check(
            json!([{"op": "replace", "path": "firstName", "value": "Bo"}]),
            Ok(json!({"id": 1, "firstName": "Bo", "types": [1, 2]})),
        );
        check(
            json!([{"op": "add", "path": "/title", "value": "CEO"}]),
            Ok(json!({"id": 1, "firstName": "Ann", "title": "CEO", "types": [1, 2]})),
        );
        check(
            json!([{"op": "remove", "path": "/firstName"}]),
            Ok(json!({"id": 1, "types": [1, 2]})),
        );
        check(
            json!([{"op": "add", "path": "/types/-", "value": 3}]),
            Ok(json!({"id": 1, "firstName": "Ann", "types": [1, 2, 3]})),
        );
        check(
            json!([{"op": "add", "path": "/types/0", "value": 0}]),
            Ok(json!({"id": 1, "firstName": "Ann", "types": [0, 1, 2]})),
        );
        check(
            json!([{"op": "remove", "path": "/types/1"}]),
            Ok(json!({"id": 1, "firstName": "Ann", "types": [1]})),
        );
        check(
            json!([{"op": "copy", "from": "/firstName", "path": "/title"}]),
            Ok(json!({"id": 1, "firstName": "Ann", "title": "Ann", "types": [1, 2]})),
        );
        check(
            json!([{"op": "move", "from": "/firstName", "path": "/title"}]),
            Ok(json!({"id": 1, "title": "Ann", "types": [1, 2]})),
        );
        check(
            json!([{"op": "test", "path": "/firstName", "value": "Ann"}]),
            Ok(json!({"id": 1, "firstName": "Ann", "types": [1, 2]})),
        );
    }

    #[test]
    fn bad_patches() {
        check(json!({"op": "replace"}), Err("JSON Patch array"));
        check(json!([]), Err("At least one"));
        check(
            json!([{"op": "replace", "path": "/FirstName", "value": "x"}]),
            Err("Cannot find field 'FirstName'"),
        );
        check(
            json!([{"op": "replace", "path": "/id", "value": 2}]),
            Err("read-only"),
        );
        check(
            json!([{"op": "replace", "path": "/firstName"}]),
            Err("needs a value"),
        );
        check(
            json!([{"op": "frobnicate", "path": "/firstName"}]),
            Err("not a supported"),
        );
        check(json!([{"path": "/firstName"}]), Err("not a supported"));
        check(json!([{"op": "replace", "value": 1}]), Err("needs a path"));
        check(
            json!([{"op": "remove", "path": "/types/9"}]),
            Err("out of range"),
        );
        check(
            json!([{"op": "test", "path": "/firstName", "value": "Bob"}]),
            Err("test operation failed"),
        );
        check(json!(["nonsense"]), Err("needs a path"));
    }

    #[test]
    fn missing_intermediates_are_errors_and_paths_are_capped() {
        check(
            json!([{"op": "add", "path": "/title/a/b", "value": 1}]),
            Err("path does not exist"),
        );
        check(
            json!([{"op": "add", "path": "/title/a", "value": 1}]),
            Err("path does not exist"),
        );
        // Nested objects that exist can still be patched.
        let mut doc = json!({"id": 1, "title": {"a": {}}});
        let ops = json!([{"op": "add", "path": "/title/a/b", "value": 1}]);
        apply(&mut doc, &ops, "contact", &FIELDS).unwrap();
        assert_eq!(doc, json!({"id": 1, "title": {"a": {"b": 1}}}));
        let long = format!("/title{}", "/a".repeat(100_000));
        check(
            json!([{"op": "add", "path": long, "value": 1}]),
            Err("more than 16 segments"),
        );
        check(
            json!([{"op": "copy", "from": long, "path": "/title"}]),
            Err("more than 16 segments"),
        );
        let ok = format!("/title{}", "/a".repeat(MAX_PATH_SEGMENTS - 1));
        check(
            json!([{"op": "add", "path": ok, "value": 1}]),
            Err("path does not exist"),
        );
        let body = apply(
            &mut json!({}),
            &json!([{"op": "add", "path": long, "value": 1}]),
            "contact",
            &FIELDS,
        )
        .unwrap_err();
        assert_eq!(body.status(), 400);
        assert_eq!(body.body()["code"], "InvalidObject");
    }

    #[test]
    fn copies_cannot_blow_up_the_record() {
        // Found in the fuzzing review: each copy of an array into itself doubled the record, so
        // 64 operations of 50 bytes asked for 2^64 values and the simulator ran out of memory
        // while holding its write lock.
        let double = json!({"op": "copy", "from": "/types", "path": "/types/-"});
        let ops = Value::Array(vec![double; 64]);
        check(ops, Err("may duplicate at most 10000 values"));
        // Small copies still work, up to the budget.
        let mut doc = json!({"id": 1, "types": [1, 2]});
        let ops = Value::Array(vec![
            json!({"op": "copy", "from": "/types/0", "path": "/types/-"});
            20
        ]);
        apply(&mut doc, &ops, "contact", &FIELDS).unwrap();
        assert_eq!(doc["types"].as_array().map(Vec::len), Some(22));
        // And the number of operations is capped.
        let ops = Value::Array(vec![
            json!({"op": "test", "path": "/firstName", "value": "Ann"});
            101
        ]);
        check(ops, Err("at most 100 operations"));
    }
}

#[cfg(test)]
mod properties {
    //! Generated patches never make `apply` panic, and no patch grows a record without bound.

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::schema::{Kind, field, read_only};

    static FIELDS: [Field; 4] = [
        read_only("id", Kind::Int),
        field("name", Kind::Str),
        field("types", Kind::Str),
        field("nested", Kind::Str),
    ];

    fn path() -> impl Strategy<Value = String> {
        prop_oneof![
            "/?(id|name|types|nested|other)(/([0-9]|-|a|b|~0|~1)){0,3}",
            any::<String>(),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            ".{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{1,3}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn operation() -> impl Strategy<Value = Value> {
        (
            prop::sample::select(&["add", "replace", "remove", "copy", "move", "test", "x"][..]),
            path(),
            prop::option::of(path()),
            prop::option::of(value()),
        )
            .prop_map(|(op, path, from, value)| {
                let mut object = json!({"op": op, "path": path});
                if let Some(from) = from {
                    object["from"] = json!(from);
                }
                if let Some(value) = value {
                    object["value"] = value;
                }
                object
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_patches_never_panic_and_stay_bounded(
            ops in prop_oneof![
                prop::collection::vec(operation(), 0..40).prop_map(Value::Array),
                value(),
            ],
        ) {
            let mut doc = json!({"id": 1, "name": "Ann", "types": [1, [2, 3]], "nested": {"a": {"b": []}}});
            let before = value_count(&doc, usize::MAX);
            let written: usize = ops
                .as_array()
                .map(|ops| ops.iter().map(|op| value_count(op, usize::MAX)).sum())
                .unwrap_or(0);
            let _ = apply(&mut doc, &ops, "contact", &FIELDS);
            // A patch adds at most what it carries plus what its copies may duplicate.
            prop_assert!(value_count(&doc, usize::MAX) <= before + written + MAX_COPIED_VALUES);
        }
    }
}
