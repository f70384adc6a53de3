//! Deterministic seed data. The same seed gives byte-identical data: all
//! randomness comes from one splitmix64 stream and all timestamps from a fixed
//! epoch derived from the seed, never from the wall clock.

use std::collections::HashMap;
use std::rc::Rc;

use serde_json::Value;

use super::index_of;
use crate::clock;
use crate::prng::SplitMix64;
use crate::schema::Map;
use crate::store::Table;

/// 2026-01-01T00:00:00Z. Seeded records are stamped in the 30 days before
/// `FIXED_BASE - (seed % 365) days`, so they are always in the past.
const FIXED_BASE: i64 = 1_767_225_600;

pub struct SeedCtx<'a> {
    pub rng: &'a mut SplitMix64,
    pub tables: &'a [Table],
    pub child_seq: &'a mut i64,
    pub epoch: i64,
    ids: HashMap<usize, Vec<i64>>,
    /// Records already drawn, parsed once: stored records are text (see `crate::row`), and
    /// every seeded record draws a member or two.
    drawn: HashMap<(usize, i64), Rc<Map>>,
    /// Where seeded records go (the store renders and keeps each one).
    sink: &'a mut dyn FnMut(Map),
}

impl<'a> SeedCtx<'a> {
    pub fn new(
        rng: &'a mut SplitMix64,
        tables: &'a [Table],
        child_seq: &'a mut i64,
        seed: u64,
        sink: &'a mut dyn FnMut(Map),
    ) -> Self {
        let epoch = FIXED_BASE - (seed % 365) as i64 * 86_400;
        SeedCtx {
            rng,
            tables,
            child_seq,
            epoch,
            ids: HashMap::new(),
            drawn: HashMap::new(),
            sink,
        }
    }

    /// Hands a finished record to the store.
    pub fn emit(&mut self, record: Map) {
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
            Some(m) => m
                .get("identifier")
                .and_then(Value::as_str)
                .unwrap_or("admin")
                .to_string(),
            None => "admin".to_string(),
        }
    }

    pub fn next_child_id(&mut self) -> i64 {
        *self.child_seq += 1;
        *self.child_seq
    }

    /// A random already-seeded record of `path`.
    pub fn random_record(&mut self, path: &str) -> Option<Rc<Map>> {
        let i = index_of(path)?;
        let tables = self.tables;
        let table = tables.get(i)?;
        let ids = self
            .ids
            .entry(i)
            .or_insert_with(|| table.rows.keys().copied().collect());
        if ids.is_empty() {
            return None;
        }
        let id = ids[self.rng.below(ids.len() as u64) as usize];
        if let Some(m) = self.drawn.get(&(i, id)) {
            return Some(m.clone());
        }
        let Some(Value::Object(m)) = table.record(id) else {
            return None;
        };
        let m = Rc::new(m);
        self.drawn.insert((i, id), m.clone());
        Some(m)
    }

    /// A reference object to a random already-seeded record of `path`.
    pub fn reference(&mut self, path: &str) -> Option<Map> {
        let def = super::def(path)?;
        self.random_record(path).map(|r| (def.reference)(&r))
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
