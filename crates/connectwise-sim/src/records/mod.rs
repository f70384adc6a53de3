//! The simulated resources: one module per resource with its schema, seed
//! data and `_info` hrefs, plus the shared machinery that renders stored
//! records the way ConnectWise shows them and turns client bodies into
//! stored records.

pub mod activities;
pub mod boards;
pub mod callback_entries;
pub mod companies;
pub mod contacts;
pub mod members;
pub mod opportunities;
pub mod projects;
pub mod render;
pub mod seed;
pub mod tickets;
pub mod time_entries;
pub mod user_defined_fields;
pub mod write;

use serde_json::Value;

use crate::prng::SplitMix64;
use crate::schema::{Field, Map};
use crate::store::Stamp;

/// A record's top-level fields by name, whether stored (`Map`) or being seeded
/// ([`seed::Slots`]), so that defaults, reference objects and `_info` links are written once
/// for both.
pub trait Fields {
    fn get(&self, key: &str) -> Option<&Value>;
    fn insert(&mut self, key: &'static str, value: Value);
}

impl Fields for Map {
    fn get(&self, key: &str) -> Option<&Value> {
        Map::get(self, key)
    }

    fn insert(&mut self, key: &'static str, value: Value) {
        Map::insert(self, key.to_string(), value);
    }
}

/// A collection that lives under a parent record (`service/tickets/{id}/notes`).
#[derive(Debug)]
pub struct ParentSpec {
    /// Path of the parent resource.
    pub path: &'static str,
    /// Field of the child holding the parent's id.
    pub field: &'static str,
    /// The segment after the parent id (`notes`).
    pub segment: &'static str,
}

pub struct ResourceDef {
    /// Path under `/apis/3.0/`, e.g. `company/contacts`.
    pub path: &'static str,
    /// Lowercase entity name used in `"contact object is invalid"`.
    pub entity: &'static str,
    /// Capitalised name used in `"Contact 57919 not found"`.
    pub display: &'static str,
    /// Callback `Type` (lowercase singular) when ConnectWise sends callbacks for it.
    pub callback_type: Option<&'static str>,
    pub fields: &'static [Field],
    pub required: &'static [&'static str],
    /// Fields that must be unique (case-insensitive), e.g. company identifier.
    pub unique: &'static [&'static str],
    /// Companies are soft-deleted (deletedFlag, dateDeleted, deletedBy).
    pub soft_delete: bool,
    /// `_info` carries dateEntered/enteredBy.
    pub entered_info: bool,
    /// Whether clients may POST/PUT/PATCH/DELETE.
    pub writable: bool,
    /// First id handed out; different bases per resource catch id mix-ups.
    pub id_base: i64,
    pub parent: Option<ParentSpec>,
    /// `_info` links of a record: (key, path after the API base).
    pub info_hrefs: fn(i64, &dyn Fields) -> Vec<(&'static str, String)>,
    /// Fills defaults for fields the client did not send.
    pub defaults: fn(&mut Map, &mut SplitMix64),
    /// The reference object other records embed to point at this record.
    pub reference: fn(&dyn Fields) -> Map,
    /// Server-computed fields on every write (closedDate, dateEntered...):
    /// (record being stored, stamp, previous version on updates).
    pub on_write: fn(&mut Map, &Stamp, Option<&Map>),
    /// Extra checks across records (callback duplicates, level/type rules):
    /// (record to store, all tables, own id on updates).
    pub validate: fn(&Map, &[crate::store::Table], Option<i64>) -> Vec<crate::error::FieldError>,
    /// Generates `n` seeded records (without `id`), handing each to [`seed::SeedCtx::emit`]
    /// as it is made so that only its stored text stays in memory.
    pub seed: fn(&mut seed::SeedCtx<'_>, usize),
}

impl std::fmt::Debug for ResourceDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceDef")
            .field("path", &self.path)
            .finish()
    }
}

/// All resources in seeding order (a record's references are seeded first).
pub static ALL: &[&ResourceDef] = &[
    &members::DEF,
    &companies::DEF,
    &contacts::DEF,
    &opportunities::DEF,
    &projects::DEF,
    &tickets::DEF,
    &tickets::NOTES,
    &activities::DEF,
    &time_entries::DEF,
    &callback_entries::DEF,
    // Added after the others so that the seed data of those stays what it was.
    &boards::DEF,
    &user_defined_fields::DEF,
];

pub fn index_of(path: &str) -> Option<usize> {
    ALL.iter().position(|d| d.path.eq_ignore_ascii_case(path))
}

pub fn def(path: &str) -> Option<&'static ResourceDef> {
    index_of(path).map(|i| ALL[i])
}

/// Copies `keys` from `rec` into a new map (building reference objects).
pub fn pick(rec: &(impl Fields + ?Sized), keys: &[&str]) -> Map {
    let mut out = Map::new();
    for k in keys {
        if let Some(v) = rec.get(k) {
            out.insert((*k).to_string(), v.clone());
        }
    }
    out
}

pub fn str_of<'a>(rec: &'a (impl Fields + ?Sized), key: &str) -> &'a str {
    rec.get(key).and_then(|v| v.as_str()).unwrap_or("")
}

/// `{"id":..,"name":..}` lookup tables for references that the simulator
/// does not serve as resources (boards, statuses, types...).
pub fn table_entry(table: &[(i64, &str)], rng: &mut SplitMix64) -> Map {
    let (id, name) = *rng.pick(table);
    let mut m = Map::new();
    m.insert("id".into(), id.into());
    m.insert("name".into(), name.into());
    m
}

/// For resources without cross-record rules.
pub fn no_checks(
    _rec: &Map,
    _tables: &[crate::store::Table],
    _self_id: Option<i64>,
) -> Vec<crate::error::FieldError> {
    Vec::new()
}

/// For resources without server-computed fields.
pub fn no_hook(_rec: &mut Map, _stamp: &Stamp, _previous: Option<&Map>) {}

/// A seeded datetime at midnight, `days` before the epoch.
pub fn midnight(epoch: i64, days: i64) -> String {
    let t = epoch - days * 86_400;
    crate::clock::format_ts(t - t.rem_euclid(86_400))
}
