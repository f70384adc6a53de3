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

use super::seed::Slots;
use super::{Fields, ResourceDef};
use crate::query::Projection;
use crate::schema::{Field, Kind, RefSpec};

/// Fills a reference href template, giving the path after the base: `{id}` is the reference
/// id, `{x}` the id of the record's own `x` reference (0 if it has none); an unclosed `{`
/// gives no href. Written in one pass into one buffer: building it with `replace`,
/// `to_string` and `format!` was most of the 8-10 % that hrefs took in the profile of
/// seeding a million records.
fn href(spec: &RefSpec, reference: &Value, record: Record<'_>) -> Option<String> {
    use std::fmt::Write;
    let id = reference.get("id")?.as_i64()?;
    let mut path = String::with_capacity(spec.href.len() + 16);
    let mut rest = spec.href;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}')? + start;
        path.push_str(&rest[..start]);
        let n = match &rest[start + 1..end] {
            "id" => id,
            key => record
                .get(key)
                .and_then(|r| r.get("id"))
                .and_then(Value::as_i64)
                .unwrap_or(0),
        };
        // Writing to a String cannot fail.
        let _ = write!(path, "{n}");
        rest = &rest[end + 1..];
    }
    path.push_str(rest);
    Some(path)
}

/// `{base}/{path}` as a JSON string, written straight into the output (no joined `String`).
struct Href<'a> {
    base: &'a str,
    path: &'a str,
}

impl Serialize for Href<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{}/{}", self.base, self.path))
    }
}

/// The record a [`Rendered`] shows: a stored one, or a seeded one as it was built.
#[derive(Clone, Copy)]
enum Record<'a> {
    Value(&'a Value),
    Slots(&'a Slots),
}

impl Record<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Record::Value(v) => v.get(key),
            Record::Slots(s) => s.get(key),
        }
    }
}

/// A stored record ready to serialize as ConnectWise shows it.
pub struct Rendered<'a> {
    pub def: &'static ResourceDef,
    record: Record<'a>,
    /// `http://host/{codebase}/apis/3.0`
    pub base: &'a str,
    /// `fields=`: only these properties are emitted (still in model order).
    pub fields: Option<&'a Projection>,
}

impl<'a> Rendered<'a> {
    pub fn new(def: &'static ResourceDef, record: &'a Value, base: &'a str) -> Self {
        Rendered {
            def,
            record: Record::Value(record),
            base,
            fields: None,
        }
    }

    /// A seeded record (with its `id`), rendered without first becoming a `Map`.
    pub fn seeded(def: &'static ResourceDef, record: &'a Slots, base: &'a str) -> Self {
        // Rendering walks the schema and the slots together: they must be the same schema.
        assert!(std::ptr::eq(def.fields, record.fields()), "{}", def.path);
        Rendered {
            def,
            record: Record::Slots(record),
            base,
            fields: None,
        }
    }

    pub fn with_fields(mut self, fields: Option<&'a Projection>) -> Self {
        self.fields = fields;
        self
    }
}

/// Whether `key` survives the projection, and the projection for its value
/// (`None`: keep the value whole).
fn pick<'p>(proj: Option<&'p Projection>, key: &str) -> Option<Option<&'p Projection>> {
    match proj {
        None => Some(None),
        Some(p) => p.child(key).map(|sub| Some(sub).filter(|s| !s.is_empty())),
    }
}

/// A plain JSON value, filtered by a projection (map keys keep their order).
struct Plain<'a> {
    value: &'a Value,
    proj: Option<&'a Projection>,
}

impl Serialize for Plain<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Some(proj) = self.proj else {
            return self.value.serialize(s);
        };
        match self.value {
            Value::Object(obj) => {
                let mut map = s.serialize_map(None)?;
                for (k, v) in obj {
                    if let Some(sub) = pick(Some(proj), k) {
                        map.serialize_entry(
                            k,
                            &Plain {
                                value: v,
                                proj: sub,
                            },
                        )?;
                    }
                }
                map.end()
            }
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Plain {
                        value: item,
                        proj: Some(proj),
                    })?;
                }
                seq.end()
            }
            other => other.serialize(s),
        }
    }
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
    proj: Option<&'a Projection>,
}

struct Info<'a> {
    stored: Option<&'a serde_json::Map<String, Value>>,
    /// The base URL the link paths are under.
    base: &'a str,
    /// (key, path after the base).
    links: &'a [(&'static str, String)],
    proj: Option<&'a Projection>,
}

impl Serialize for Info<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        if let Some(stored) = self.stored {
            for (k, v) in stored {
                if let Some(sub) = pick(self.proj, k) {
                    map.serialize_entry(
                        k,
                        &Plain {
                            value: v,
                            proj: sub,
                        },
                    )?;
                }
            }
        }
        for (k, path) in self.links {
            if pick(self.proj, k).is_some() {
                map.serialize_entry(
                    k,
                    &Href {
                        base: self.base,
                        path,
                    },
                )?;
            }
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
                        proj: self.proj,
                    })?;
                }
                seq.end()
            }
            (false, Value::Object(obj)) => match self.shape {
                Shape::Plain => Plain {
                    value: self.value,
                    proj: self.proj,
                }
                .serialize(s),
                Shape::Ref(spec) => {
                    let mut map = s.serialize_map(None)?;
                    for (k, v) in obj.iter().filter(|(k, _)| k.as_str() != "_info") {
                        if let Some(sub) = pick(self.proj, k) {
                            map.serialize_entry(
                                k,
                                &Plain {
                                    value: v,
                                    proj: sub,
                                },
                            )?;
                        }
                    }
                    if let Some(proj) = pick(self.proj, "_info") {
                        // At most one link: a slice of an Option, not a Vec per reference.
                        let link =
                            href(spec, self.value, self.ctx.record).map(|h| (spec.href_key, h));
                        let links = link.as_slice();
                        let stored = obj.get("_info").and_then(Value::as_object);
                        map.serialize_entry(
                            "_info",
                            &Info {
                                stored,
                                base: self.ctx.base,
                                links,
                                proj,
                            },
                        )?;
                    }
                    map.end()
                }
                Shape::Fields(fields) => {
                    serialize_fields(s, fields, Obj::Map(obj), self.ctx, None, self.proj)
                }
            },
            _ => Plain {
                value: self.value,
                proj: self.proj,
            }
            .serialize(s),
        }
    }
}

/// The fields of an object being rendered: a stored map, or a seeded record's slots (one per
/// field, in order, so that nothing is looked up by name).
#[derive(Clone, Copy)]
enum Obj<'a> {
    Map(&'a serde_json::Map<String, Value>),
    Slots(&'a [Option<Value>]),
}

fn serialize_fields<S: Serializer>(
    s: S,
    fields: &'static [Field],
    obj: Obj<'_>,
    ctx: &Rendered<'_>,
    top_links: Option<&[(&'static str, String)]>,
    proj: Option<&Projection>,
) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(None)?;
    let mut top_links = top_links;
    for (i, f) in fields.iter().enumerate() {
        let Some(sub) = pick(proj, f.name) else {
            continue;
        };
        let v = match obj {
            Obj::Map(m) => m.get(f.name),
            Obj::Slots(slots) => slots.get(i).and_then(Option::as_ref),
        };
        let Some(v) = v else {
            // Every top-level record has `_info`; add it if a record lacks one.
            if f.name == "_info"
                && let Some(links) = top_links.take()
            {
                map.serialize_entry(
                    "_info",
                    &Info {
                        stored: None,
                        base: ctx.base,
                        links,
                        proj: sub,
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
                    base: ctx.base,
                    links,
                    proj: sub,
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
                proj: sub,
            },
        )?;
    }
    map.end()
}

impl Serialize for Rendered<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let proj = self.fields.filter(|p| !p.is_empty());
        match self.record {
            Record::Value(record) => {
                let (Some(obj), Some(id)) =
                    (record.as_object(), record.get("id").and_then(Value::as_i64))
                else {
                    return Plain {
                        value: record,
                        proj: self.fields,
                    }
                    .serialize(s);
                };
                let links = (self.def.info_hrefs)(id, obj);
                serialize_fields(s, self.def.fields, Obj::Map(obj), self, Some(&links), proj)
            }
            Record::Slots(record) => {
                let id = record.get("id").and_then(Value::as_i64).unwrap_or(0);
                let links = (self.def.info_hrefs)(id, record);
                let slots = Obj::Slots(record.values());
                serialize_fields(s, self.def.fields, slots, self, Some(&links), proj)
            }
        }
    }
}

/// The rendered record as a `Value` (library calls). A `Value` map sorts its
/// keys, so HTTP bodies and callback entities serialize [`Rendered`] directly.
pub fn render(def: &'static ResourceDef, record: &Value, base: &str) -> Value {
    serde_json::to_value(Rendered::new(def, record, base)).unwrap_or(Value::Null)
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
        let store = Store::seeded(40, None, 3);
        for (def, table) in ALL.iter().zip(&store.tables) {
            for (_, rec) in table.records() {
                let rec = &rec;
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

    /// `fields=` streams through `Rendered` in model order and keeps exactly
    /// what the Value-based projection keeps.
    #[test]
    fn projected_rendering_matches_the_value_projection() {
        use crate::query::Projection;
        let store = Store::seeded(30, None, 5);
        let base = "http://h/v4_6_release/apis/3.0";
        for text in [
            "id",
            "id,_info",
            "_info/lastUpdated",
            "company,firstName",
            "company/name, company/_info , id",
            "communicationItems/value,customFields/caption,id",
            "nope,ID,Name",
            "status/name,board,types/id",
        ] {
            let proj = Projection::parse(text);
            for (def, table) in ALL.iter().zip(&store.tables) {
                for (_, rec) in table.records().take(5) {
                    let rec = &rec;
                    let streamed = serde_json::to_value(
                        super::Rendered::new(def, rec, base).with_fields(Some(&proj)),
                    )
                    .expect("json");
                    assert_eq!(
                        streamed,
                        proj.apply(super::render(def, rec, base)),
                        "{} fields={text}",
                        def.path
                    );
                }
            }
        }
    }
}
