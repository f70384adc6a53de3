//! Turning a client's POST/PUT body (or a patched record) into a stored
//! record: case-insensitive keys as ConnectWise's .NET deserializer accepts
//! them, unknown and read-only keys ignored, values coerced the way
//! Newtonsoft.Json coerces them, references resolved to full reference
//! objects, required and unique fields checked. Failures are collected into
//! one `InvalidObject` error, as ConnectWise reports all of them at once.

use serde_json::Value;

use super::{ResourceDef, index_of};
use crate::clock;
use crate::error::{FieldError, SimError};
use crate::prng::SplitMix64;
use crate::schema::{Field, Kind, Map, RefSource, RefSpec, find};
use crate::store::Table;

pub struct WriteCtx<'a> {
    pub tables: &'a [Table],
    pub rng: &'a mut SplitMix64,
    /// Ids for array items (communication items) that arrive without one.
    pub child_seq: &'a mut i64,
}

/// Builds the stored fields (no `id`, no `_info`) for `def` from `input`.
/// `existing` is the record being replaced (PUT/PATCH): its read-only fields
/// survive. `self_id` excludes the record itself from uniqueness checks.
pub fn build(
    def: &'static ResourceDef,
    ctx: &mut WriteCtx<'_>,
    input: &Value,
    existing: Option<&Map>,
    self_id: Option<i64>,
) -> Result<Map, SimError> {
    let Some(input) = input.as_object() else {
        return Err(SimError::invalid(
            def.entity,
            "InvalidObject",
            "",
            format!("The request body must be a {} object.", def.entity),
        ));
    };
    let mut out = Map::new();
    (def.defaults)(&mut out, ctx.rng);
    if let Some(existing) = existing {
        for f in def
            .fields
            .iter()
            .filter(|f| f.read_only && f.name != "_info" && f.name != "id")
        {
            if let Some(v) = existing.get(f.name) {
                out.insert(f.name.to_string(), v.clone());
            }
        }
    }
    let mut errors = Vec::new();
    for (key, value) in input {
        let Some(f) = find(def.fields, key) else {
            continue;
        };
        if f.read_only {
            continue;
        }
        if value.is_null() {
            if !matches!(f.kind, Kind::Bool) {
                out.remove(f.name);
            }
            continue;
        }
        match coerce(f, value, ctx) {
            Ok(v) => {
                out.insert(f.name.to_string(), v);
            }
            Err(message) => errors.push(FieldError {
                code: "InvalidField",
                message,
                field: f.name.to_string(),
            }),
        }
    }
    for r in def.required {
        let missing = match out.get(*r) {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.trim().is_empty(),
            _ => false,
        };
        if missing && !errors.iter().any(|e| e.field == *r) {
            errors.push(FieldError {
                code: "MissingRequiredField",
                message: format!("The {r} field is required."),
                field: (*r).to_string(),
            });
        }
    }
    if let Some(table) = index_of(def.path).and_then(|i| ctx.tables.get(i)) {
        for u in def.unique {
            let Some(wanted) = out.get(*u).and_then(Value::as_str) else {
                continue;
            };
            let taken = table.records().any(|(id, rec)| {
                Some(id) != self_id
                    && rec
                        .get(*u)
                        .and_then(Value::as_str)
                        .is_some_and(|s| s.eq_ignore_ascii_case(wanted))
            });
            if taken {
                errors.push(FieldError {
                    code: "ObjectExists",
                    message: format!("The {u} '{wanted}' is already in use."),
                    field: (*u).to_string(),
                });
            }
        }
    }
    errors.extend((def.validate)(&out, ctx.tables, self_id));
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(SimError::InvalidObject {
            entity: def.entity,
            errors,
        })
    }
}

fn invalid(f: &Field) -> String {
    format!("The {} field is invalid.", f.name)
}

fn coerce(f: &Field, v: &Value, ctx: &mut WriteCtx<'_>) -> Result<Value, String> {
    match &f.kind {
        Kind::Str => match v {
            Value::String(s) => Ok(Value::String(s.clone())),
            Value::Number(n) => Ok(Value::String(n.to_string())),
            Value::Bool(b) => Ok(Value::String(b.to_string())),
            _ => Err(invalid(f)),
        },
        Kind::Int => match v {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|x| x.fract() == 0.0 && x.abs() < 9.0e15)
                        .map(|x| x as i64)
                })
                .map(Value::from)
                .ok_or_else(|| invalid(f)),
            Value::String(s) => s
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| invalid(f)),
            _ => Err(invalid(f)),
        },
        Kind::Num => match v {
            Value::Number(_) => Ok(v.clone()),
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| invalid(f)),
            _ => Err(invalid(f)),
        },
        Kind::Bool => match v {
            Value::Bool(_) => Ok(v.clone()),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
            _ => Err(invalid(f)),
        },
        Kind::DateTime => match v {
            Value::String(s) => clock::parse_literal(s)
                .map(|(secs, _)| Value::String(clock::format_ts(secs)))
                .ok_or_else(|| format!("The {} field is not a valid datetime.", f.name)),
            _ => Err(invalid(f)),
        },
        Kind::Any => match v {
            Value::String(_) | Value::Number(_) | Value::Bool(_) => Ok(v.clone()),
            _ => Err(invalid(f)),
        },
        Kind::Ref(spec) => resolve_ref(f.name, spec, v, ctx.tables).map(Value::Object),
        Kind::RefList(spec) => match v {
            Value::Array(items) => items
                .iter()
                .map(|i| resolve_ref(f.name, spec, i, ctx.tables).map(Value::Object))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            _ => Err(invalid(f)),
        },
        Kind::Objects(sub) => {
            let Value::Array(items) = v else {
                return Err(invalid(f));
            };
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let Value::Object(obj) = item else {
                    return Err(invalid(f));
                };
                let mut m = Map::new();
                for (k, val) in obj {
                    let Some(sf) = find(sub, k) else { continue };
                    if val.is_null() {
                        continue;
                    }
                    m.insert(sf.name.to_string(), coerce(sf, val, ctx)?);
                }
                if find(sub, "id").is_some() && !m.contains_key("id") {
                    *ctx.child_seq += 1;
                    m.insert("id".into(), Value::from(*ctx.child_seq));
                }
                out.push(Value::Object(m));
            }
            Ok(Value::Array(out))
        }
        Kind::Object(_) => Err(invalid(f)),
    }
}

/// Resolves `{"id":5}`, `{"identifier":"X"}` or `{"name":"Y"}` to the full
/// reference, as ConnectWise does when it echoes a write.
pub fn resolve_ref(
    field: &str,
    spec: &RefSpec,
    v: &Value,
    tables: &[Table],
) -> Result<Map, String> {
    let Value::Object(obj) = v else {
        return Err(format!(
            "The {field} field must be an object such as {{\"id\": 1}}."
        ));
    };
    let get_ci = |k: &str| {
        obj.iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(k))
            .map(|(_, v)| v)
    };
    let id = get_ci("id").and_then(|v| {
        v.as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    });
    let identifier = get_ci("identifier").and_then(Value::as_str);
    let name = get_ci("name").and_then(Value::as_str);
    match &spec.source {
        RefSource::Resource(path) => {
            let (Some(i), Some(target)) = (index_of(path), super::def(path)) else {
                return Err(format!("The {field} field cannot be resolved."));
            };
            let Some(table) = tables.get(i) else {
                return Err(format!("The {field} field cannot be resolved."));
            };
            let matches_str = |rec: &Value, key: &str, want: &str| {
                rec.get(key)
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.eq_ignore_ascii_case(want))
            };
            let found = if let Some(id) = id {
                table.record(id)
            } else if let Some(ident) = identifier {
                table
                    .records()
                    .map(|(_, r)| r)
                    .find(|r| matches_str(r, "identifier", ident))
            } else if let Some(name) = name {
                table.records().map(|(_, r)| r).find(|r| {
                    matches_str(r, "name", name)
                        || (target.reference)(r.as_object().unwrap_or(&Map::new()))
                            .get("name")
                            .and_then(Value::as_str)
                            .is_some_and(|n| n.eq_ignore_ascii_case(name))
                })
            } else {
                return Err(format!(
                    "The {field} field requires an id, identifier or name."
                ));
            };
            match found.as_ref().and_then(Value::as_object) {
                Some(rec) => Ok((target.reference)(rec)),
                None => Err(match (id, identifier, name) {
                    (Some(id), _, _) => format!("{} {id} not found.", target.display),
                    (_, Some(ident), _) => format!("{} '{ident}' not found.", target.display),
                    (_, _, n) => format!("{} '{}' not found.", target.display, n.unwrap_or("")),
                }),
            }
        }
        RefSource::Table(table) => {
            let found = if let Some(id) = id {
                table.iter().find(|(tid, _)| *tid == id)
            } else if let Some(name) = name.or(identifier) {
                table.iter().find(|(_, n)| n.eq_ignore_ascii_case(name))
            } else {
                return Err(format!("The {field} field requires an id or name."));
            };
            match found {
                Some((id, name)) => {
                    let mut m = Map::new();
                    m.insert("id".into(), (*id).into());
                    m.insert("name".into(), (*name).into());
                    Ok(m)
                }
                None => Err(format!("The {field} reference was not found.")),
            }
        }
    }
}
