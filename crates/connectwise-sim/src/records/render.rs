//! Rendering a stored record as a GET shows it: reference objects get their
//! `_info{x_href}`, the record's `_info` gets its collection links, all built
//! from the request's host and codebase.

use serde_json::Value;

use super::ResourceDef;
use crate::schema::{Field, Kind, RefSpec};

/// Fills a reference href template: `{id}` is the reference id, `{x}` the id
/// of the record's own `x` reference.
fn href(base: &str, spec: &RefSpec, reference: &Value, record: &Value) -> Option<String> {
    let id = reference.get("id")?.as_i64()?;
    let mut path = spec.href.replace("{id}", &id.to_string());
    while let Some(start) = path.find('{') {
        let end = path[start..].find('}')? + start;
        let key = path[start + 1..end].to_string();
        let other = record
            .get(&key)
            .and_then(|r| r.get("id"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        path.replace_range(start..=end, &other.to_string());
    }
    Some(format!("{base}/{path}"))
}

fn add_ref_info(base: &str, spec: &RefSpec, reference: &mut Value, record: &Value) {
    let Some(link) = href(base, spec, reference, record) else {
        return;
    };
    if let Some(obj) = reference.as_object_mut() {
        let info = obj
            .entry("_info")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(info) = info.as_object_mut() {
            info.insert(spec.href_key.to_string(), Value::String(link));
        }
    }
}

fn walk(base: &str, fields: &[Field], value: &mut Value, record: &Value) {
    let Some(obj) = value.as_object_mut() else {
        return;
    };
    for f in fields {
        let Some(v) = obj.get_mut(f.name) else {
            continue;
        };
        match &f.kind {
            Kind::Ref(spec) => add_ref_info(base, spec, v, record),
            Kind::RefList(spec) => {
                if let Some(items) = v.as_array_mut() {
                    for item in items {
                        add_ref_info(base, spec, item, record);
                    }
                }
            }
            Kind::Objects(sub) => {
                if let Some(items) = v.as_array_mut() {
                    for item in items {
                        walk(base, sub, item, record);
                    }
                }
            }
            Kind::Object(sub) => walk(base, sub, v, record),
            _ => {}
        }
    }
}

/// `base` is `http://host/{codebase}/apis/3.0`.
pub fn render(def: &ResourceDef, record: &Value, base: &str) -> Value {
    let mut out = record.clone();
    walk(base, def.fields, &mut out, record);
    let (Some(id), Some(rec)) = (record.get("id").and_then(Value::as_i64), record.as_object())
    else {
        return out;
    };
    let links = (def.info_hrefs)(id, rec);
    if let Some(obj) = out.as_object_mut() {
        let info = obj
            .entry("_info")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(info) = info.as_object_mut() {
            for (key, path) in links {
                info.insert(key.to_string(), Value::String(format!("{base}/{path}")));
            }
        }
    }
    out
}
