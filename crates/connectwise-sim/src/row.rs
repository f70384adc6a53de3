//! How one record is kept in memory: as the text a GET sends, not as a parsed tree.
//!
//! A `serde_json::Value` tree costs about 11 KB per record (a heap allocation per key, string
//! and map node), so a million records took 11 GB and more than a minute to seed. A record is
//! instead stored as its rendered JSON ([`crate::records::render::Rendered`]: model order,
//! `id` first, reference and collection hrefs included) with [`BASE_MARK`] where the
//! request's base URL (`http://{host}/{codebase}/apis/3.0`) goes. A list page without `fields=`
//! is then these texts joined by commas with the base spliced in: no parse, no serialization,
//! which is the hot path (pages of 1000 records).
//!
//! Everything else (writes, `fields=`, conditions on other fields, `orderBy`, callbacks) asks
//! for [`Row::value`]: the text parsed and its hrefs taken out, which gives back exactly the
//! stored record. That inverse is simple because of two facts:
//! - hrefs are the only strings that start with [`BASE_MARK`], and they only live in `_info`
//!   objects (a record's own, and each reference's). A record whose own data contains the
//!   mark (a client can send any text) is kept parsed instead ([`Body::Parsed`]), so the rule
//!   never confuses data with a link.
//! - rendering adds an `_info` to every reference, empty when the reference has no href; a
//!   stored reference never has an `_info` of its own (references are built by each
//!   resource's `reference` function or from lookup tables), and a record's own `_info` is
//!   never empty (every write stamps `lastUpdated`). So an `_info` that is empty once its
//!   links are gone was added by rendering and is dropped.
//!
//! Client writes check the inverse (render, parse back, compare) and keep the record parsed if
//! it does not hold; seeded data is checked by a test over every seeded resource.
//!
//! The text is kept LZ4-compressed (`lz4_flex`, pure Rust) against a per-resource dictionary:
//! the text of the first record of that resource stored in the process. Records of one
//! resource share most of their bytes (keys, hrefs, lookup values), so a 2.4 KB contact takes
//! about 0.6 KB, and decompressing it costs about a microsecond: a page of 1000 stays a few
//! milliseconds of copying, and a million contacts take 754 MB instead of 2.5 GB. Any
//! text is a valid dictionary; it only has to be the same bytes for compressing and
//! decompressing, which a process-wide `OnceLock` per resource guarantees.
//!
//! Conditions on `id` and `lastUpdated` alone (what pollers send) do not need the parse either:
//! a row keeps `_info.lastUpdated` beside the text, and [`Row::index_value`] is a two-field
//! record those conditions evaluate against.

use std::sync::OnceLock;

use serde_json::{Map, Value};

use crate::records::render::Rendered;
use crate::records::seed::Slots;
use crate::records::{ALL, Fields, ResourceDef};

/// Stands for the base URL in stored text: a private-use character (three bytes in UTF-8),
/// which `serde_json` writes as is.
pub const BASE_MARK: &str = "\u{F8FF}";

/// Compression dictionaries, one per resource of [`ALL`].
static DICTS: [OnceLock<Box<[u8]>>; 16] = [const { OnceLock::new() }; 16];

/// The dictionary of `def`, set from `text` on first use.
fn dict(def: &'static ResourceDef, text: &[u8]) -> &'static [u8] {
    match ALL.iter().position(|d| std::ptr::eq(*d, def)) {
        Some(i) if i < DICTS.len() => DICTS[i].get_or_init(|| text.into()),
        _ => &[],
    }
}

/// The dictionary of `def` once set (empty before: nothing was compressed with it yet).
fn dict_of(def: &'static ResourceDef) -> &'static [u8] {
    ALL.iter()
        .position(|d| std::ptr::eq(*d, def))
        .and_then(|i| DICTS.get(i))
        .and_then(OnceLock::get)
        .map_or(&[], |d| d)
}

thread_local! {
    /// The rendered text and its compressed form, reused from record to record rather than
    /// a fresh buffer of a few KB for each, which glibc serves through its large-chunk path:
    /// seeding a million records spread over the resources left 160 MB less resident and
    /// took about 2 % less CPU (docs/benchmarks.md).
    static SCRATCH: std::cell::RefCell<(Vec<u8>, Vec<u8>)> = const {
        std::cell::RefCell::new((Vec::new(), Vec::new()))
    };
}

/// `text` compressed against `dict` with its length first, as
/// `lz4_flex::block::compress_prepend_size_with_dict` writes it (and
/// `decompress_size_prepended_with_dict` reads it), through the buffer `out`.
fn pack(text: &[u8], dict: &[u8], out: &mut Vec<u8>) -> Option<Box<[u8]>> {
    let len = u32::try_from(text.len()).ok()?;
    // As `compress_prepend_size_with_dict`: a dictionary of 3 bytes or fewer is none.
    let dict = if dict.len() <= 3 { &[][..] } else { dict };
    let max = 4 + lz4_flex::block::get_maximum_output_size(text.len());
    if out.len() < max {
        out.resize(max, 0);
    }
    out[..4].copy_from_slice(&len.to_le_bytes());
    let n = lz4_flex::block::compress_into_with_dict(text, &mut out[4..max], dict).ok()?;
    Some(out[..4 + n].into())
}

#[derive(Debug, Clone)]
enum Body {
    /// The rendered record with [`BASE_MARK`] for the base URL, compressed with the
    /// resource's dictionary (uncompressed length first, as `lz4_flex` prepends it).
    Text(Box<[u8]>),
    /// A record whose data contains [`BASE_MARK`], or that rendering would not give back.
    Parsed(Box<Value>),
}

/// One stored record of a [`crate::store::Table`].
#[derive(Debug, Clone)]
pub struct Row {
    body: Body,
    /// `_info.lastUpdated` as stored.
    last_updated: Option<Box<str>>,
    /// The parent record's id for child collections (a note's `ticketId`).
    parent: Option<i64>,
}

impl Row {
    /// A row for a record whose inverse is known to hold (re-stamps of seeded records, and the
    /// debug check of [`Row::seeded`]). Debug builds check it anyway.
    /// Such records are also known not to contain [`BASE_MARK`] (the simulator's own word
    /// lists, numbers and dates), so the walk that looks for it is skipped: it was a tenth of
    /// seeding.
    pub fn trusted(def: &'static ResourceDef, record: &Value) -> Row {
        debug_assert!(
            !contains_mark(record),
            "{}: seeded data holds the mark",
            def.path
        );
        let row = Row::build(def, record, false);
        debug_assert_eq!(row.value(def), *record, "{} round trip", def.path);
        row
    }

    /// A row for a record written by a client: kept as text only if parsing the text gives
    /// the record back.
    pub fn checked(def: &'static ResourceDef, record: &Value) -> Row {
        let row = Row::build(def, record, true);
        if matches!(row.body, Body::Text(_)) && row.value(def) != *record {
            return Row {
                body: Body::Parsed(Box::new(record.clone())),
                ..row
            };
        }
        row
    }

    /// A row for a seeded record (with its `id`), rendered straight from its slots. Seed data
    /// is trusted as in [`Row::trusted`]; debug builds check it.
    pub fn seeded(def: &'static ResourceDef, record: &Slots) -> Row {
        debug_assert!(std::ptr::eq(record.fields(), def.fields), "{}", def.path);
        let packed = render_packed(def, &Rendered::seeded(def, record, BASE_MARK));
        let row = Row {
            body: match packed {
                Some(packed) => Body::Text(packed),
                None => Body::Parsed(Box::new(record.to_value())),
            },
            last_updated: last_updated(record),
            parent: parent(def, record),
        };
        // The slots must render to the very text the same record rendered as a `Map` gives
        // (what was stored before slots). Debug builds check it for every seeded record, so
        // every test that seeds does (`Row::trusted` checks that text's round trip).
        #[cfg(debug_assertions)]
        {
            let as_map = Row::trusted(def, &record.to_value());
            assert_eq!(row.text(def), as_map.text(def), "{}", def.path);
            assert_eq!(row.last_updated, as_map.last_updated, "{}", def.path);
            assert_eq!(row.parent, as_map.parent, "{}", def.path);
        }
        row
    }

    /// `check_mark`: look for [`BASE_MARK`] in the data first (client data may hold it).
    fn build(def: &'static ResourceDef, record: &Value, check_mark: bool) -> Row {
        let obj = record.as_object();
        let packed = if check_mark && contains_mark(record) {
            None
        } else {
            render_packed(def, &Rendered::new(def, record, BASE_MARK))
        };
        let body = match packed {
            Some(packed) => Body::Text(packed),
            None => Body::Parsed(Box::new(record.clone())),
        };
        Row {
            body,
            last_updated: obj.and_then(|o| last_updated(o)),
            parent: obj.and_then(|o| parent(def, o)),
        }
    }

    /// The rendered text with [`BASE_MARK`]s (None for parsed rows).
    fn text(&self, def: &'static ResourceDef) -> Option<Vec<u8>> {
        match &self.body {
            // Compressed here with this dictionary, so it decompresses.
            Body::Text(packed) => Some(
                lz4_flex::block::decompress_size_prepended_with_dict(packed, dict_of(def))
                    .unwrap_or_default(),
            ),
            Body::Parsed(_) => None,
        }
    }

    /// The stored record (without hrefs), parsed.
    pub fn value(&self, def: &'static ResourceDef) -> Value {
        match (&self.body, self.text(def)) {
            (Body::Parsed(v), _) => (**v).clone(),
            (Body::Text(_), text) => {
                // The text was written by serde_json from a Value, so it parses.
                let mut v: Value =
                    serde_json::from_slice(&text.unwrap_or_default()).unwrap_or(Value::Null);
                strip_links(&mut v);
                v
            }
        }
    }

    pub fn parent(&self) -> Option<i64> {
        self.parent
    }

    /// `{"id": id, "_info": {"lastUpdated": ...}}`: enough for conditions and `orderBy` that
    /// name only those fields ([`INDEXED`]).
    pub fn index_value(&self, id: i64) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), id.into());
        if let Some(lu) = &self.last_updated {
            let mut info = Map::new();
            info.insert("lastUpdated".into(), Value::String(lu.to_string()));
            m.insert("_info".into(), Value::Object(info));
        }
        Value::Object(m)
    }

    /// Appends the record as GET shows it (no `fields=`) with hrefs on `base`.
    pub fn write_rendered(&self, def: &'static ResourceDef, base: &str, out: &mut Vec<u8>) {
        match &self.body {
            Body::Text(_) => {
                let bytes = self.text(def).unwrap_or_default();
                // Written by serde_json, so UTF-8.
                let text = std::str::from_utf8(&bytes).unwrap_or_default();
                let mut parts = text.split(BASE_MARK);
                if let Some(first) = parts.next() {
                    out.extend_from_slice(first.as_bytes());
                }
                for part in parts {
                    out.extend_from_slice(base.as_bytes());
                    out.extend_from_slice(part.as_bytes());
                }
            }
            Body::Parsed(v) => {
                // Writing into a Vec cannot fail, and a Value always serializes.
                let _ = serde_json::to_writer(&mut *out, &Rendered::new(def, v, base));
            }
        }
    }

    /// Whether the row is kept as text (else parsed, see [`Row::checked`]).
    pub fn is_text(&self) -> bool {
        matches!(self.body, Body::Text(_))
    }
}

/// The record rendered and compressed (None if it does not serialize).
fn render_packed(def: &'static ResourceDef, rendered: &Rendered<'_>) -> Option<Box<[u8]>> {
    SCRATCH.with_borrow_mut(|(text, out)| {
        text.clear();
        serde_json::to_writer(&mut *text, rendered).ok()?;
        let dict = dict(def, text);
        let packed = pack(text, dict, out);
        // A client may write a huge record once; its buffers are not kept.
        if text.capacity() > 1 << 20 {
            *text = Vec::new();
            *out = Vec::new();
        }
        packed
    })
}

/// `_info.lastUpdated` of a record, as a row keeps it.
fn last_updated(record: &dyn Fields) -> Option<Box<str>> {
    record
        .get("_info")
        .and_then(|i| i.get("lastUpdated"))
        .and_then(Value::as_str)
        .map(Box::from)
}

/// The parent record's id of a child record (a note's `ticketId`).
fn parent(def: &'static ResourceDef, record: &dyn Fields) -> Option<i64> {
    def.parent
        .as_ref()
        .and_then(|spec| record.get(spec.field))
        .and_then(Value::as_i64)
}

/// Field paths a row answers without parsing: the id (the table's key) and
/// `_info/lastUpdated`.
pub const INDEXED: [&[&str]; 2] = [&["id"], &["_info", "lastUpdated"]];

/// Whether any string or key in `v` contains [`BASE_MARK`].
fn contains_mark(v: &Value) -> bool {
    match v {
        Value::String(s) => has_mark(s),
        Value::Array(items) => items.iter().any(contains_mark),
        Value::Object(m) => m.iter().any(|(k, v)| has_mark(k) || contains_mark(v)),
        _ => false,
    }
}

/// `s.contains(BASE_MARK)`, with a first look for the mark's lead byte (0xEF, which only
/// characters U+F000 to U+FFFF start with): a byte search is cheaper than setting up a
/// substring searcher for every short string.
fn has_mark(s: &str) -> bool {
    s.as_bytes().contains(&BASE_MARK.as_bytes()[0]) && s.contains(BASE_MARK)
}

/// Takes out what rendering added: strings starting with [`BASE_MARK`] in `_info` objects,
/// then `_info` objects left empty (see the module docs for why that is exact).
fn strip_links(v: &mut Value) {
    match v {
        Value::Array(items) => items.iter_mut().for_each(strip_links),
        Value::Object(m) => {
            let mut drop_info = false;
            if let Some(Value::Object(info)) = m.get_mut("_info") {
                info.retain(|_, v| !v.as_str().is_some_and(|s| s.starts_with(BASE_MARK)));
                drop_info = info.is_empty();
            }
            if drop_info {
                m.remove("_info");
            }
            for (k, v) in m.iter_mut() {
                if k != "_info" {
                    strip_links(v);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use crate::records::ALL;
    use crate::store::Store;

    /// Every seeded record of every resource comes back exactly from its text, so seeding
    /// may skip the check that client writes make.
    #[test]
    fn seeded_records_round_trip_through_their_text() {
        // The contacts shape draws contacts from their texts (`seed::Drawing`).
        for (seed, contacts) in [(1, None), (2, None), (7, None), (5, Some(300))] {
            let store = Store::seeded(30, contacts, seed);
            for (def, table) in ALL.iter().zip(&store.tables) {
                for (id, row) in &table.rows {
                    assert!(row.is_text(), "{} {id} kept as text", def.path);
                    let back = row.value(def);
                    let again = super::Row::checked(def, &back);
                    assert!(again.is_text(), "{} {id} inverts exactly", def.path);
                }
            }
        }
    }

    /// A client string holding the mark keeps the record parsed, and it still renders with
    /// the request's base and comes back unchanged.
    #[test]
    fn data_with_the_mark_is_kept_parsed() {
        let store = Store::seeded(3, None, 1);
        let def = crate::records::def("company/contacts").expect("contacts");
        let table = store.table(def).expect("table");
        let (id, row) = table.rows.iter().next().expect("a contact");
        let mut rec = row.value(def);
        rec["firstName"] = format!("x{}y", super::BASE_MARK).into();
        let row = super::Row::checked(def, &rec);
        assert!(!row.is_text());
        assert_eq!(row.value(def), rec);
        let mut out = Vec::new();
        row.write_rendered(def, "http://h/v4_6_release/apis/3.0", &mut out);
        let shown: serde_json::Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(shown["id"], *id);
        assert_eq!(shown["firstName"], rec["firstName"]);
        assert!(
            shown["_info"]["notes_href"]
                .as_str()
                .is_some_and(|h| h.starts_with("http://h/v4_6_release/apis/3.0/")),
            "{shown}"
        );
    }
}
