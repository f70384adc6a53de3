//! Rendering a stored record as a GET shows it: reference objects get their
//! `_info{x_href}`, the record's `_info` gets its collection links, all built
//! from the request's host and codebase.
//!
//! Rendering streams straight into the serializer (no copy of the record):
//! list pages of 1000 records are the hot path, and cloning every record
//! just to add links cost more than the query itself. Fields come out in
//! schema order, `id` first, as ConnectWise's models list them.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
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

/// A stored record ready to serialize as ConnectWise shows it.
pub struct Rendered<'a> {
    pub def: &'static ResourceDef,
    pub record: &'a Value,
    /// `http://host/{codebase}/apis/3.0`
    pub base: &'a str,
}

#[derive(Clone, Copy)]
enum Shape {
    Plain,
    Ref(&'static RefSpec),
    Fields(&'static [Field]),
}

fn shape_of(kind: &'static Kind) -> (Shape, bool) {
    match kind {
        Kind::Ref(spec) => (Shape::Ref(spec), false),
        Kind::RefList(spec) => (Shape::Ref(spec), true),
        Kind::Objects(sub) => (Shape::Fields(sub), true),
        Kind::Object(sub) => (Shape::Fields(sub), false),
        _ => (Shape::Plain, false),
    }
}

struct Node<'a> {
    value: &'a Value,
    shape: Shape,
    array: bool,
    ctx: &'a Rendered<'a>,
}

struct Info<'a> {
    stored: Option<&'a serde_json::Map<String, Value>>,
    links: Vec<(&'static str, String)>,
}

impl Serialize for Info<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        if let Some(stored) = self.stored {
            for (k, v) in stored {
                map.serialize_entry(k, v)?;
            }
        }
        for (k, v) in &self.links {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl Serialize for Node<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match (self.array, self.value) {
            (true, Value::Array(items)) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Node {
                        value: item,
                        shape: self.shape,
                        array: false,
                        ctx: self.ctx,
                    })?;
                }
                seq.end()
            }
            (false, Value::Object(obj)) => match self.shape {
                Shape::Plain => self.value.serialize(s),
                Shape::Ref(spec) => {
                    let mut map = s.serialize_map(None)?;
                    for (k, v) in obj.iter().filter(|(k, _)| k.as_str() != "_info") {
                        map.serialize_entry(k, v)?;
                    }
                    let links = href(self.ctx.base, spec, self.value, self.ctx.record)
                        .map(|h| vec![(spec.href_key, h)])
                        .unwrap_or_default();
                    let stored = obj.get("_info").and_then(Value::as_object);
                    map.serialize_entry("_info", &Info { stored, links })?;
                    map.end()
                }
                Shape::Fields(fields) => serialize_fields(s, fields, obj, self.ctx, None),
            },
            _ => self.value.serialize(s),
        }
    }
}

fn serialize_fields<S: Serializer>(
    s: S,
    fields: &'static [Field],
    obj: &serde_json::Map<String, Value>,
    ctx: &Rendered<'_>,
    top_links: Option<Vec<(&'static str, String)>>,
) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(None)?;
    let mut top_links = top_links;
    for f in fields {
        let Some(v) = obj.get(f.name) else {
            // Every top-level record has `_info`; add it if a record lacks one.
            if f.name == "_info"
                && let Some(links) = top_links.take()
            {
                map.serialize_entry(
                    "_info",
                    &Info {
                        stored: None,
                        links,
                    },
                )?;
            }
            continue;
        };
        if f.name == "_info"
            && let Some(links) = top_links.take()
        {
            map.serialize_entry(
                "_info",
                &Info {
                    stored: v.as_object(),
                    links,
                },
            )?;
            continue;
        }
        let (shape, array) = shape_of(&f.kind);
        map.serialize_entry(
            f.name,
            &Node {
                value: v,
                shape,
                array,
                ctx,
            },
        )?;
    }
    map.end()
}

impl Serialize for Rendered<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (Some(obj), Some(id)) = (
            self.record.as_object(),
            self.record.get("id").and_then(Value::as_i64),
        ) else {
            return self.record.serialize(s);
        };
        let links = (self.def.info_hrefs)(id, obj)
            .into_iter()
            .map(|(k, path)| (k, format!("{}/{path}", self.base)))
            .collect();
        serialize_fields(s, self.def.fields, obj, self, Some(links))
    }
}

/// The rendered record as a `Value` (library calls, callbacks, `fields` projection).
pub fn render(def: &'static ResourceDef, record: &Value, base: &str) -> Value {
    serde_json::to_value(Rendered { def, record, base }).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use crate::records::ALL;
    use crate::schema::{Kind, find};
    use crate::store::Store;
    use serde_json::Value;

    /// Rendering emits schema fields only, so every stored key must be in the
    /// schema or it would silently disappear from responses.
    #[test]
    fn seeded_records_only_use_schema_fields() {
        let store = Store::seeded(40, 3);
        for (def, table) in ALL.iter().zip(&store.tables) {
            for rec in table.rows.values() {
                let obj = rec.as_object().expect("object");
                for (k, v) in obj {
                    let f = find(def.fields, k)
                        .unwrap_or_else(|| panic!("{}: {k} not in schema", def.path));
                    assert_eq!(f.name, k, "{}: key casing", def.path);
                    if let (Kind::Objects(sub), Value::Array(items)) = (&f.kind, v) {
                        for item in items {
                            for key in item.as_object().expect("object").keys() {
                                assert!(
                                    sub.iter().any(|s| s.name == key),
                                    "{}: {k}/{key} not in schema",
                                    def.path
                                );
                            }
                        }
                    }
                }
                let rendered = super::render(def, rec, "http://h/v4_6_release/apis/3.0");
                assert_eq!(
                    rendered.as_object().map(|o| o.len()),
                    Some(obj.len()),
                    "{}",
                    def.path
                );
            }
        }
    }
}
