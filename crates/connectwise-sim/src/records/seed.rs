//! Deterministic seed data. The same seed gives byte-identical data: all
//! randomness comes from one splitmix64 stream and all timestamps from a fixed
//! epoch derived from the seed, never from the wall clock.

use std::collections::HashMap;
use std::rc::Rc;

use serde_json::{Number, Value};

use super::{ALL, Fields, index_of};
use crate::clock;
use crate::prng::SplitMix64;
use crate::schema::{Field, Map};
use crate::store::Table;

/// 2026-01-01T00:00:00Z. Seeded records are stamped in the 30 days before
/// `FIXED_BASE - (seed % 365) days`, so they are always in the past.
const FIXED_BASE: i64 = 1_767_225_600;

/// For each resource that later seeds draw records from, what they read of a drawn record
/// besides its reference object (`ResourceDef::reference`), as JSON pointers. Reading anything
/// else from a drawn record is a bug that debug builds (and so the tests) catch
/// ([`Drawn::get`]).
///
/// Why notes: stored records are compressed text (see `crate::row`), and every seeded record
/// draws a member or two and often a company, contact or ticket. Parsing each drawn record
/// from its text took half the CPU of seeding a million records spread over the resources, and
/// keeping the parsed records for the rest of a resource's seeding took gigabytes. A note is
/// taken from the record as it is stored (the stored text parses back to exactly that record,
/// checked by `row`'s round-trip test), so a draw gives what parsing would have given.
static NOTED: &[(&str, &[&str])] = &[
    ("system/members", &["/identifier"]),
    (
        "company/companies",
        &[
            "/identifier",
            "/addressLine1",
            "/city",
            "/state",
            "/zip",
            "/country",
        ],
    ),
    (
        "company/contacts",
        &[
            "/firstName",
            "/lastName",
            "/company",
            "/defaultPhoneNbr",
            "/communicationItems/0/value",
        ],
    ),
    ("sales/opportunities", &[]),
    ("service/tickets", &["/id", "/company"]),
];

/// The pointers noted for `path` (None: no seed draws records of it).
fn noted(path: &str) -> Option<&'static [&'static str]> {
    NOTED.iter().find(|(p, _)| *p == path).map(|(_, f)| *f)
}

/// A JSON value in as few allocations as exactness allows: an object is a boxed slice of pairs
/// rather than a `serde_json::Map`, whose B-tree allocates a node of about 600 bytes even for
/// the two entries of `{"id": 1, "name": "Main"}`.
#[derive(Debug)]
pub enum Compact {
    Null,
    Bool(bool),
    Number(Number),
    String(Box<str>),
    Array(Box<[Compact]>),
    Object(Box<[(Key, Compact)]>),
}

/// The keys of reference objects and lookup entries, which nearly every note holds: shared
/// rather than allocated per note (allocating and freeing them was a few percent of seeding).
static KEYS: &[&str] = &["id", "name", "identifier", "dailyCapacity", "summary"];

/// An object key of a [`Compact`].
#[derive(Debug)]
pub enum Key {
    Known(&'static str),
    Other(Box<str>),
}

impl Key {
    fn of(k: &str) -> Key {
        match KEYS.iter().find(|known| **known == k) {
            Some(known) => Key::Known(known),
            None => Key::Other(k.into()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Key::Known(k) => k,
            Key::Other(k) => k,
        }
    }
}

impl Compact {
    pub fn of(v: &Value) -> Compact {
        match v {
            Value::Null => Compact::Null,
            Value::Bool(b) => Compact::Bool(*b),
            Value::Number(n) => Compact::Number(n.clone()),
            Value::String(s) => Compact::String(s.as_str().into()),
            Value::Array(items) => Compact::Array(items.iter().map(Compact::of).collect()),
            Value::Object(m) => Compact::Object(
                m.iter()
                    .map(|(k, v)| (Key::of(k), Compact::of(v)))
                    .collect(),
            ),
        }
    }

    /// The value it was made from (an object's keys are sorted again by `Map`, as before).
    pub fn value(&self) -> Value {
        match self {
            Compact::Null => Value::Null,
            Compact::Bool(b) => Value::Bool(*b),
            Compact::Number(n) => Value::Number(n.clone()),
            // Not `to_string`, which goes through `Display` for a `Box<str>`.
            Compact::String(s) => Value::String(String::from(&**s)),
            Compact::Array(items) => Value::Array(items.iter().map(Compact::value).collect()),
            Compact::Object(_) => Value::Object(self.map()),
        }
    }

    /// The entries of an object (empty for anything else).
    fn map(&self) -> Map {
        let mut m = Map::new();
        if let Compact::Object(pairs) = self {
            for (k, v) in pairs.iter() {
                m.insert(String::from(k.as_str()), v.value());
            }
        }
        m
    }
}

/// A seeded record as it is built: one slot per field of its schema, in the schema's order.
/// Building a `serde_json::Map` instead allocated every key and a B-tree node per record, and
/// rendering then looked every field up again by name (about a sixth of seeding a million
/// records; docs/benchmarks.md).
#[derive(Debug)]
pub struct Slots {
    fields: &'static [Field],
    values: Vec<Option<Value>>,
    /// The slot of the last insert: seed functions mostly insert in schema order (tickets step
    /// back 4 times in 46 inserts, contacts once in 28), so the search for the next field starts
    /// after it.
    last: usize,
}

impl Slots {
    pub fn new(fields: &'static [Field]) -> Slots {
        Slots {
            fields,
            values: vec![None; fields.len()],
            last: 0,
        }
    }

    fn position(&self, key: &str, from: usize) -> Option<usize> {
        let n = self.fields.len();
        (0..n)
            .map(|k| (from + k) % n)
            .find(|&i| self.fields[i].name == key)
    }

    /// The schema the slots follow.
    pub fn fields(&self) -> &'static [Field] {
        self.fields
    }

    /// The values in schema order (None: the record has no such field).
    pub fn values(&self) -> &[Option<Value>] {
        &self.values
    }

    /// The values as [`Compact`]s, to keep a record waiting (a company waits for its first
    /// contact) in a fraction of the memory: each nested object of a `Value` is a B-tree node.
    pub fn to_compact(&self) -> Box<[Option<Compact>]> {
        self.values
            .iter()
            .map(|v| v.as_ref().map(Compact::of))
            .collect()
    }

    /// The record [`Slots::to_compact`] gave `values`.
    pub fn from_compact(fields: &'static [Field], values: &[Option<Compact>]) -> Slots {
        let mut slots = Slots::new(fields);
        for (slot, value) in slots.values.iter_mut().zip(values) {
            *slot = value.as_ref().map(Compact::value);
        }
        slots
    }

    /// Sets every field `other` has and this record does not.
    pub fn fill_missing(&mut self, mut other: Slots) {
        // Slot i is field i of the schema only when both follow the same one.
        assert!(std::ptr::eq(self.fields, other.fields));
        for (slot, value) in self.values.iter_mut().zip(&mut other.values) {
            if slot.is_none() {
                *slot = value.take();
            }
        }
    }

    /// Drops the fields holding `null`.
    pub fn remove_nulls(&mut self) {
        for slot in &mut self.values {
            if matches!(slot, Some(Value::Null)) {
                *slot = None;
            }
        }
    }

    /// The record as a stored `Value` (keys sorted, as a `Map` keeps them).
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        for (f, value) in self.fields.iter().zip(&self.values) {
            if let Some(value) = value {
                m.insert(f.name.to_string(), value.clone());
            }
        }
        Value::Object(m)
    }
}

impl Fields for Slots {
    fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(self.position(key, 0)?)?.as_ref()
    }

    /// Seed functions only set fields of their schema: debug builds panic on any other key, so
    /// every test that seeds checks it; release builds drop the value, as rendering (schema
    /// fields only) would.
    fn insert(&mut self, key: &'static str, value: Value) {
        let at = self.position(key, self.last + 1);
        debug_assert!(at.is_some(), "{key} is not a field of the schema");
        if let Some(at) = at {
            self.last = at;
            self.values[at] = Some(value);
        }
    }
}

/// What later seeds take from one seeded record: its reference object and the values at the
/// resource's [`NOTED`] pointers (None where the record has none).
#[derive(Debug)]
pub struct Note {
    reference: Compact,
    fields: Box<[Option<Compact>]>,
}

/// `Value::pointer` on a record's fields: `/communicationItems/0/value`.
fn pointer<'r>(record: &'r dyn Fields, pointer: &str) -> Option<&'r Value> {
    let rest = pointer.strip_prefix('/')?;
    let (key, rest) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    record.get(key)?.pointer(rest)
}

/// The notes of the records seeded so far, per resource of [`ALL`] noted as it is seeded, in
/// id order (so the i-th note is the record with the i-th smallest id, as the table's keys are
/// ordered). A resource without a list is noted on demand ([`Drawing`]).
#[derive(Debug)]
pub struct Notes {
    lists: Vec<Option<Vec<Note>>>,
}

impl Default for Notes {
    fn default() -> Self {
        Notes {
            lists: ALL.iter().map(|_| None).collect(),
        }
    }
}

impl Notes {
    /// The note of `record` (with its `id`) if some seed draws records of `def`.
    pub fn of(def: &'static super::ResourceDef, record: &dyn Fields) -> Option<Note> {
        let pointers = noted(def.path)?;
        let reference = (def.reference)(record);
        Some(Note {
            reference: Compact::of(&Value::Object(reference)),
            fields: pointers
                .iter()
                .map(|p| pointer(record, p).map(Compact::of))
                .collect(),
        })
    }

    /// Sets the notes of resource `i` once it is seeded.
    pub fn set(&mut self, i: usize, notes: Vec<Note>) {
        if let Some(list) = self.lists.get_mut(i) {
            *list = Some(notes);
        }
    }
}

/// Drawing from resources that were not noted as they were seeded: their ids, and the notes of
/// the records drawn so far, each parsed from its stored text on its first draw. That suits a
/// resource of which few records are drawn (a million contacts beside a hundred of everything
/// else: noting every contact held some 600 MB for a few hundred draws).
#[derive(Debug, Default)]
pub struct Drawing {
    ids: HashMap<usize, Vec<i64>>,
    parsed: HashMap<(usize, i64), Rc<Note>>,
}

#[derive(Debug, Clone)]
enum NoteRef<'a> {
    Listed(&'a Note),
    Parsed(Rc<Note>),
}

/// A drawn record, as its [`Note`] tells it.
#[derive(Clone)]
pub struct Drawn<'a> {
    pointers: &'static [&'static str],
    note: NoteRef<'a>,
}

impl Drawn<'_> {
    fn note(&self) -> &Note {
        match &self.note {
            NoteRef::Listed(n) => n,
            NoteRef::Parsed(n) => n,
        }
    }

    /// The record's reference object (`ResourceDef::reference` of the record).
    pub fn reference(&self) -> Map {
        self.note().reference.map()
    }

    fn compact(&self, pointer: &str) -> Option<&Compact> {
        let at = self.pointers.iter().position(|p| *p == pointer);
        debug_assert!(at.is_some(), "{pointer} is not noted (seed::NOTED)");
        self.note().fields.get(at?)?.as_ref()
    }

    /// The value at `pointer` (one of the resource's [`NOTED`] pointers).
    pub fn get(&self, pointer: &str) -> Option<Value> {
        self.compact(pointer).map(Compact::value)
    }

    /// The string at `pointer`, if it is one.
    pub fn str(&self, pointer: &str) -> Option<&str> {
        match self.compact(pointer)? {
            Compact::String(s) => Some(s),
            _ => None,
        }
    }
}

pub struct SeedCtx<'a> {
    pub rng: &'a mut SplitMix64,
    pub child_seq: &'a mut i64,
    pub epoch: i64,
    /// What the resources seeded before this one left for it to draw.
    notes: &'a Notes,
    /// The resources without notes, drawn from their stored records.
    tables: &'a [Table],
    drawing: &'a mut Drawing,
    /// Where seeded records go (the store renders and keeps each one).
    sink: &'a mut dyn FnMut(Slots),
}

impl<'a> SeedCtx<'a> {
    pub fn new(
        rng: &'a mut SplitMix64,
        notes: &'a Notes,
        tables: &'a [Table],
        drawing: &'a mut Drawing,
        child_seq: &'a mut i64,
        seed: u64,
        sink: &'a mut dyn FnMut(Slots),
    ) -> Self {
        let epoch = FIXED_BASE - (seed % 365) as i64 * 86_400;
        SeedCtx {
            rng,
            child_seq,
            epoch,
            notes,
            tables,
            drawing,
            sink,
        }
    }

    /// Hands a finished record to the store.
    pub fn emit(&mut self, record: Slots) {
        (self.sink)(record);
    }

    /// A point in the 30 days before the epoch.
    pub fn recent(&mut self) -> i64 {
        self.epoch - self.rng.below(30 * 86_400) as i64
    }

    /// `_info` of a seeded record: lastUpdated in the last 30 days before the
    /// epoch, dateEntered up to two years before that.
    pub fn info(&mut self, entered: bool) -> Map {
        let updated = self.recent();
        let by = self.member_identifier();
        let mut info = Map::new();
        info.insert("lastUpdated".into(), clock::format_ts(updated).into());
        info.insert("updatedBy".into(), by.into());
        if entered {
            let entered_at = updated - self.rng.below(730 * 86_400) as i64;
            let entered_by = self.member_identifier();
            info.insert("dateEntered".into(), clock::format_ts(entered_at).into());
            info.insert("enteredBy".into(), entered_by.into());
        }
        info
    }

    pub fn member_identifier(&mut self) -> String {
        match self.random_record("system/members") {
            Some(m) => m.str("/identifier").unwrap_or("admin").to_string(),
            None => "admin".to_string(),
        }
    }

    pub fn next_child_id(&mut self) -> i64 {
        *self.child_seq += 1;
        *self.child_seq
    }

    /// A random already-seeded record of `path` (one of [`NOTED`]'s resources): one draw
    /// from the stream when there are records, none when there are not.
    pub fn random_record(&mut self, path: &str) -> Option<Drawn<'a>> {
        let i = index_of(path)?;
        let def = ALL.get(i)?;
        let pointers = noted(def.path);
        debug_assert!(pointers.is_some(), "{path} is not noted (seed::NOTED)");
        let pointers = pointers?;
        let notes: &'a Notes = self.notes;
        if let Some(list) = notes.lists.get(i)?.as_ref() {
            if list.is_empty() {
                return None;
            }
            let note = list.get(self.rng.below(list.len() as u64) as usize)?;
            return Some(Drawn {
                pointers,
                note: NoteRef::Listed(note),
            });
        }
        let table = self.tables.get(i)?;
        let ids = self
            .drawing
            .ids
            .entry(i)
            .or_insert_with(|| table.rows.keys().copied().collect());
        if ids.is_empty() {
            return None;
        }
        let id = ids[self.rng.below(ids.len() as u64) as usize];
        let note = match self.drawing.parsed.get(&(i, id)) {
            Some(note) => note.clone(),
            None => {
                let record = table.record(id)?;
                let note = Rc::new(Notes::of(def, record.as_object()?)?);
                self.drawing.parsed.insert((i, id), note.clone());
                note
            }
        };
        Some(Drawn {
            pointers,
            note: NoteRef::Parsed(note),
        })
    }

    /// A reference object to a random already-seeded record of `path`.
    pub fn reference(&mut self, path: &str) -> Option<Map> {
        self.random_record(path).map(|r| r.reference())
    }

    pub fn first_name(&mut self) -> &'static str {
        let i = self.rng.below(FIRST_NAMES.len() as u64) as usize;
        FIRST_NAMES.get(i).copied().unwrap_or("Alex")
    }

    pub fn last_name(&mut self) -> &'static str {
        let i = self.rng.below(LAST_NAMES.len() as u64) as usize;
        LAST_NAMES.get(i).copied().unwrap_or("Smith")
    }

    pub fn phone(&mut self) -> String {
        format!(
            "{:03}{:03}{:04}",
            200 + self.rng.below(700),
            200 + self.rng.below(700),
            self.rng.below(10_000)
        )
    }

    pub fn city(&mut self) -> (&'static str, &'static str, String) {
        let (city, state) = *self.rng.pick(CITIES);
        (
            city,
            state,
            format!("{:05}", 10_000 + self.rng.below(89_999)),
        )
    }
}

pub static FIRST_NAMES: &[&str] = &[
    "Ava", "Ben", "Carla", "Dmitri", "Elena", "Farah", "Gus", "Hana", "Ivan", "Jamal", "Kira",
    "Liam", "Maya", "Noah", "Olga", "Pedro", "Quinn", "Rosa", "Sven", "Tara", "Umar", "Vera",
    "Wes", "Xia", "Yusuf", "Zoe", "Fred", "Grace", "Hector", "Iris",
];

pub static LAST_NAMES: &[&str] = &[
    "Anders", "Baker", "Chen", "Dubois", "Evans", "Fischer", "Garcia", "Hughes", "Ito", "Jensen",
    "Kowalski", "Lopez", "Moreau", "Nakamura", "O'Brien", "Patel", "Quist", "Rossi", "Schmidt",
    "Tanaka", "Ueda", "Varga", "Walsh", "Xu", "Young", "Zimmer",
];

pub static COMPANY_WORDS: &[&str] = &[
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Wonka",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Hooli",
    "Vandelay",
    "Gringotts",
    "Oscorp",
    "Monarch",
    "Aperture",
    "Blue Sun",
    "Duff",
    "Nakatomi",
    "Oceanic",
];

pub static COMPANY_SUFFIXES: &[&str] = &[
    "Inc",
    "LLC",
    "Ltd",
    "Group",
    "Partners",
    "Holdings",
    "Labs",
    "Dental",
    "Legal",
    "Logistics",
];

pub static CITIES: &[(&str, &str)] = &[
    ("Tampa", "FL"),
    ("Austin", "TX"),
    ("Denver", "CO"),
    ("Portland", "OR"),
    ("Raleigh", "NC"),
    ("Columbus", "OH"),
    ("Boise", "ID"),
    ("Madison", "WI"),
];

pub static TITLES: &[&str] = &[
    "Office Manager",
    "IT Director",
    "CEO",
    "Controller",
    "Receptionist",
    "Operations Lead",
    "Practice Manager",
    "CFO",
];

pub static SUMMARIES: &[&str] = &[
    "Printer offline in front office",
    "Cannot connect to VPN",
    "New user setup",
    "Outlook keeps asking for password",
    "Replace failing hard drive",
    "Firewall firmware update",
    "Shared drive permissions",
    "Laptop running slow",
    "Phone system voicemail not working",
    "Backup job failed overnight",
];
