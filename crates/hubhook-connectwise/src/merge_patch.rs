//! A Cloud Elements PATCH body turned into the JSON Patch ConnectWise takes.
//!
//! Cloud Elements hub PATCH bodies name the fields to change, `{"title": "CTO"}` (a JSON merge
//! patch, RFC 7396). ConnectWise takes a JSON Patch array (RFC 6902), and its developer guide
//! says to patch whole top-level fields only: `company/identifier` can answer 200 without
//! changing anything, while `company` with `{"identifier": "X"}` works. So each top-level key
//! becomes one operation on that key:
//!
//! - a value: `replace` with the whole value (ConnectWise's models have every field, so a field
//!   it omitted as null can be replaced too);
//! - `null`: `remove` (ConnectWise sets the field to its default).
//!
//! `id` and `_info` are read-only in every ConnectWise model and are in every record a GET shows,
//! so they are left out: a caller may send them back with its changes. Other read-only fields
//! (which differ by model) are ConnectWise's to refuse, in its own words. A body that is already
//! an array is taken to be JSON Patch and sent as it is, for users who copy ConnectWise's own
//! examples.

use serde_json::{Map, Value, json};

use crate::CwError;

/// Keys ConnectWise never lets a client write.
const READ_ONLY: &[&str] = &["id", "_info"];

/// The JSON Patch array for a PATCH body.
pub fn merge_to_json_patch(body: &Value) -> Result<Value, CwError> {
    let fields: &Map<String, Value> = match body {
        Value::Array(ops) if !ops.is_empty() => return Ok(body.clone()),
        Value::Object(fields) => fields,
        _ => {
            return Err(CwError::InvalidQuery(
                "a PATCH body must be a JSON object of the fields to change (or a non-empty JSON Patch array)".to_string(),
            ));
        }
    };
    let ops: Vec<Value> = fields
        .iter()
        .filter(|(key, _)| !READ_ONLY.contains(&key.as_str()))
        .map(|(key, value)| {
            let path = format!("/{}", key.replace('~', "~0").replace('/', "~1"));
            if value.is_null() {
                json!({"op": "remove", "path": path})
            } else {
                json!({"op": "replace", "path": path, "value": value})
            }
        })
        .collect();
    if ops.is_empty() {
        return Err(CwError::InvalidQuery(
            "the PATCH body changes nothing: it has no fields besides the read-only `id` and `_info`".to_string(),
        ));
    }
    Ok(Value::Array(ops))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(body: Value, expected: Result<Value, &str>) {
        match (merge_to_json_patch(&body), expected) {
            (Ok(ops), Ok(want)) => assert_eq!(ops, want),
            (Err(err), Err(message)) => assert!(err.to_string().contains(message), "{err}"),
            (got, want) => panic!("{body}: got {got:?}, expected {want:?}"),
        }
    }

    #[test]
    fn each_top_level_field_is_one_operation() {
        check(
            json!({"title": "CTO", "company": {"id": 250}, "inactiveFlag": false, "nickName": null}),
            Ok(json!([
                {"op": "replace", "path": "/company", "value": {"id": 250}},
                {"op": "replace", "path": "/inactiveFlag", "value": false},
                {"op": "remove", "path": "/nickName"},
                {"op": "replace", "path": "/title", "value": "CTO"},
            ])),
        );
        check(
            json!({"a/b": 1, "c~d": 2}),
            Ok(json!([
                {"op": "replace", "path": "/a~1b", "value": 1},
                {"op": "replace", "path": "/c~0d", "value": 2},
            ])),
        );
    }

    #[test]
    fn read_only_fields_are_left_out() {
        check(
            json!({"id": 57001, "_info": {"lastUpdated": "2026-01-01T00:00:00Z"}, "title": "x"}),
            Ok(json!([{"op": "replace", "path": "/title", "value": "x"}])),
        );
        check(json!({"id": 1}), Err("changes nothing"));
        check(json!({}), Err("changes nothing"));
    }

    #[test]
    fn json_patch_arrays_pass_and_other_bodies_are_refused() {
        let ops = json!([{"op": "replace", "path": "title", "value": "x"}]);
        check(ops.clone(), Ok(ops));
        check(json!([]), Err("must be a JSON object"));
        check(json!("title"), Err("must be a JSON object"));
        check(Value::Null, Err("must be a JSON object"));
    }
}
