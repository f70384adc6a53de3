//! The in-memory data: one table per resource, each record kept as the text a GET sends
//! (see [`crate::row`] for why and how it is read back). Every write goes through here so
//! `_info` is stamped the same way everywhere and each change is reported for callbacks.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::error::SimError;
use crate::patch;
use crate::prng::SplitMix64;
use crate::records::seed::{Compact, Drawing, Notes, SeedCtx, Slots};
use crate::records::write::{WriteCtx, build};
use crate::records::{ALL, Fields, ResourceDef, companies, index_of};
use crate::row::Row;
use crate::schema::Map;

#[derive(Debug, Clone)]
pub struct Table {
    pub def: &'static ResourceDef,
    pub rows: BTreeMap<i64, Row>,
    pub next_id: i64,
}

impl Table {
    /// Record `id`, parsed.
    pub fn record(&self, id: i64) -> Option<Value> {
        self.rows.get(&id).map(|r| r.value(self.def))
    }

    /// Every record, parsed, in id order: for small tables and rare paths (uniqueness
    /// checks, lookups by name), never for list pages.
    pub fn records(&self) -> impl Iterator<Item = (i64, Value)> + '_ {
        self.rows.iter().map(|(id, row)| (*id, row.value(self.def)))
    }

    /// Stores a record written by a client (its text is checked, see [`Row::checked`]).
    fn put(&mut self, id: i64, record: &Value) {
        self.rows.insert(id, Row::checked(self.def, record));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Added,
    Updated,
    Deleted,
    /// The request succeeded but changed nothing (DELETE of an already
    /// soft-deleted company): no callback is sent.
    Unchanged,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Added => "added",
            Action::Updated => "updated",
            Action::Deleted => "deleted",
            Action::Unchanged => "unchanged",
        }
    }
}

/// A write, reported to the callback dispatcher.
#[derive(Debug, Clone)]
pub struct Change {
    pub def: &'static ResourceDef,
    pub action: Action,
    pub id: i64,
    /// The stored record after the write (None for hard deletes).
    pub record: Option<Value>,
}

/// Who writes and when: stamped into `_info`.
#[derive(Debug, Clone)]
pub struct Stamp {
    pub now: String,
    pub by: String,
    /// `system/members` id of the writer (callback `memberId`).
    pub member_id: i64,
}

#[derive(Debug)]
pub struct Store {
    pub tables: Vec<Table>,
    pub child_seq: i64,
    pub rng: SplitMix64,
    /// Bumped on every write; list-query caches key on it.
    pub generation: u64,
}

impl Store {
    /// `records` of each resource (`contacts` of contacts when set) from `seed`.
    pub fn seeded(records: usize, contacts: Option<usize>, seed: u64) -> Store {
        let mut tables: Vec<Table> = ALL
            .iter()
            .map(|d| Table {
                def: d,
                rows: BTreeMap::new(),
                next_id: d.id_base,
            })
            .collect();
        let mut rng = SplitMix64::new(seed);
        let mut child_seq = 1000;
        // What later resources draw from each seeded record, noted as it goes by so that no
        // draw parses a stored text (see `seed::NOTED`)...
        let mut notes = Notes::default();
        // ...unless fewer records are seeded after a resource than it has, so that most of
        // it is never drawn: then a record is parsed on its first draw (`seed::Drawing`).
        // Companies are always noted, as their rows are stored only after the contacts.
        let count = |def: &ResourceDef| match contacts {
            Some(n) if def.path == "company/contacts" => n,
            _ => records,
        };
        let mut drawing = Drawing::default();
        // Companies point at their first contact (`defaultContact`), as real companies do, but
        // contacts are seeded after companies. A company is therefore kept compact until the
        // contacts are seeded, and rendered once then: rendering it at once, then parsing it
        // back to add the link and rendering it again took 14-16 % of the profile of seeding a
        // million records spread over the resources (docs/benchmarks.md). Kept as built
        // (`Slots`, whose nested objects are B-tree nodes), they held 190 MB more.
        let mut pending_companies: Vec<(i64, Box<[Option<Compact>]>)> = Vec::new();
        // Company id -> reference of its first contact.
        let mut first_contacts: HashMap<i64, Compact> = HashMap::new();
        for (i, def) in ALL.iter().enumerate() {
            let n = count(def);
            let later: usize = ALL[i + 1..].iter().map(|d| count(d)).sum();
            let note = def.path == "company/companies" || n <= later;
            // Each record is rendered to text as soon as it is made (companies once the
            // contacts are seeded, below), so a million records never exist parsed at once. (Rendering on a second thread was tried: it took
            // twice the CPU, the records being freed on another thread than the one that
            // allocated them; docs/benchmarks.md.)
            let mut next_id = tables[i].next_id;
            let mut rows = BTreeMap::new();
            let mut noted = Vec::new();
            {
                let mut keep = |mut rec: Slots| {
                    let id = next_id;
                    next_id += 1;
                    rec.insert("id", id.into());
                    if def.path == "company/contacts"
                        && let Some(company) = rec
                            .get("company")
                            .and_then(|c| c.get("id"))
                            .and_then(Value::as_i64)
                    {
                        first_contacts
                            .entry(company)
                            .or_insert_with(|| Compact::of(&Value::Object((def.reference)(&rec))));
                    }
                    if note {
                        noted.extend(Notes::of(def, &rec));
                    }
                    if def.path == "company/companies" {
                        pending_companies.push((id, rec.to_compact()));
                    } else {
                        rows.insert(id, Row::seeded(def, &rec));
                    }
                };
                let mut ctx = SeedCtx::new(
                    &mut rng,
                    &notes,
                    &tables,
                    &mut drawing,
                    &mut child_seq,
                    seed,
                    &mut keep,
                );
                (def.seed)(&mut ctx, n);
            }
            if note {
                notes.set(i, noted);
            }
            let table = &mut tables[i];
            table.rows = rows;
            table.next_id = next_id;
            if def.path == "company/contacts"
                && let Some(ci) = index_of("company/companies")
            {
                let pending = std::mem::take(&mut pending_companies);
                let first_contacts = std::mem::take(&mut first_contacts);
                for (id, company) in pending {
                    let mut company = Slots::from_compact(tables[ci].def.fields, &company);
                    if let Some(Value::Object(contact)) =
                        first_contacts.get(&id).map(Compact::value)
                    {
                        companies::link_default_contact(&mut company, contact);
                    }
                    let row = Row::seeded(tables[ci].def, &company);
                    tables[ci].rows.insert(id, row);
                }
            }
        }
        // Writes after seeding draw from a stream independent of the seed data.
        let rng = SplitMix64::new(seed ^ 0x005E_ED0F_5EED);
        Store {
            tables,
            child_seq,
            rng,
            generation: 0,
        }
    }

    pub fn table(&self, def: &ResourceDef) -> Option<&Table> {
        self.tables.get(index_of(def.path)?)
    }

    fn table_mut(&mut self, def: &ResourceDef) -> Result<&mut Table, SimError> {
        let i =
            index_of(def.path).ok_or_else(|| SimError::UnknownResource(def.path.to_string()))?;
        self.tables
            .get_mut(i)
            .ok_or_else(|| SimError::UnknownResource(def.path.to_string()))
    }

    /// The stored row `id` of `def`, checking it belongs to `parent` for child collections.
    pub fn row(
        &self,
        def: &'static ResourceDef,
        parent: Option<i64>,
        id: i64,
    ) -> Result<&Row, SimError> {
        let row = self.table(def).and_then(|t| t.rows.get(&id));
        match row {
            Some(r) if belongs(def, r, parent) => Ok(r),
            _ => Err(SimError::NotFound {
                display: def.display,
                id,
            }),
        }
    }

    /// The record `id` of `def`, parsed (see [`Self::row`]).
    pub fn get(
        &self,
        def: &'static ResourceDef,
        parent: Option<i64>,
        id: i64,
    ) -> Result<Value, SimError> {
        self.row(def, parent, id).map(|r| r.value(def))
    }

    fn check_parent(&self, def: &'static ResourceDef, parent: Option<i64>) -> Result<(), SimError> {
        if let (Some(spec), Some(pid)) = (&def.parent, parent) {
            let pdef = crate::records::def(spec.path)
                .ok_or_else(|| SimError::UnknownResource(spec.path.into()))?;
            self.row(pdef, None, pid)?;
        }
        Ok(())
    }

    pub fn create(
        &mut self,
        def: &'static ResourceDef,
        parent: Option<i64>,
        body: &Value,
        stamp: &Stamp,
    ) -> Result<Change, SimError> {
        self.check_parent(def, parent)?;
        let mut rec = {
            let mut ctx = WriteCtx {
                tables: &self.tables,
                rng: &mut self.rng,
                child_seq: &mut self.child_seq,
            };
            build(def, &mut ctx, body, None, None)?
        };
        let mut info = Map::new();
        info.insert("lastUpdated".into(), stamp.now.clone().into());
        info.insert("updatedBy".into(), stamp.by.clone().into());
        if def.entered_info {
            info.insert("dateEntered".into(), stamp.now.clone().into());
            info.insert("enteredBy".into(), stamp.by.clone().into());
        }
        rec.insert("_info".into(), Value::Object(info));
        (def.on_write)(&mut rec, stamp, None);
        if let (Some(spec), Some(pid)) = (&def.parent, parent) {
            rec.insert(spec.field.into(), pid.into());
        }
        let table = self.table_mut(def)?;
        let id = table.next_id;
        table.next_id += 1;
        rec.insert("id".into(), id.into());
        let value = Value::Object(rec);
        table.put(id, &value);
        self.generation += 1;
        Ok(Change {
            def,
            action: Action::Added,
            id,
            record: Some(value),
        })
    }

    /// PUT: replaces every writable field.
    pub fn replace(
        &mut self,
        def: &'static ResourceDef,
        parent: Option<i64>,
        id: i64,
        body: &Value,
        stamp: &Stamp,
    ) -> Result<Change, SimError> {
        let existing = match self.get(def, parent, id)? {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let mut rec = {
            let mut ctx = WriteCtx {
                tables: &self.tables,
                rng: &mut self.rng,
                child_seq: &mut self.child_seq,
            };
            build(def, &mut ctx, body, Some(&existing), Some(id))?
        };
        self.finish_update(def, id, &existing, &mut rec, stamp)?;
        Ok(Change {
            def,
            action: Action::Updated,
            id,
            record: Some(Value::Object(rec)),
        })
    }

    /// PATCH: applies JSON Patch operations to the stored record, then
    /// validates the result like a PUT.
    pub fn patch(
        &mut self,
        def: &'static ResourceDef,
        parent: Option<i64>,
        id: i64,
        ops: &Value,
        stamp: &Stamp,
    ) -> Result<Change, SimError> {
        let existing = match self.get(def, parent, id)? {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let mut doc = Value::Object(existing.clone());
        patch::apply(&mut doc, ops, def.entity, def.fields)?;
        let mut rec = {
            let mut ctx = WriteCtx {
                tables: &self.tables,
                rng: &mut self.rng,
                child_seq: &mut self.child_seq,
            };
            build(def, &mut ctx, &doc, Some(&existing), Some(id))?
        };
        self.finish_update(def, id, &existing, &mut rec, stamp)?;
        Ok(Change {
            def,
            action: Action::Updated,
            id,
            record: Some(Value::Object(rec)),
        })
    }

    fn finish_update(
        &mut self,
        def: &'static ResourceDef,
        id: i64,
        existing: &Map,
        rec: &mut Map,
        stamp: &Stamp,
    ) -> Result<(), SimError> {
        let mut info = existing
            .get("_info")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        info.insert("lastUpdated".into(), stamp.now.clone().into());
        info.insert("updatedBy".into(), stamp.by.clone().into());
        rec.insert("_info".into(), Value::Object(info));
        (def.on_write)(rec, stamp, Some(existing));
        rec.insert("id".into(), id.into());
        if let Some(spec) = &def.parent
            && let Some(pid) = existing.get(spec.field)
        {
            rec.insert(spec.field.into(), pid.clone());
        }
        let table = self.table_mut(def)?;
        table.put(id, &Value::Object(rec.clone()));
        self.generation += 1;
        Ok(())
    }

    /// Hard delete, or soft delete for companies (flag, date, member; lastUpdated bumped).
    pub fn delete(
        &mut self,
        def: &'static ResourceDef,
        parent: Option<i64>,
        id: i64,
        stamp: &Stamp,
    ) -> Result<Change, SimError> {
        let mut value = self.get(def, parent, id)?;
        let table = self.table_mut(def)?;
        if def.soft_delete {
            let Some(rec) = value.as_object_mut() else {
                return Err(SimError::NotFound {
                    display: def.display,
                    id,
                });
            };
            // Deleting again is idempotent: 204, no re-stamp, no second callback.
            if rec.get("deletedFlag") == Some(&Value::Bool(true)) {
                return Ok(Change {
                    def,
                    action: Action::Unchanged,
                    id,
                    record: Some(value),
                });
            }
            rec.insert("deletedFlag".into(), true.into());
            rec.insert("dateDeleted".into(), stamp.now.clone().into());
            rec.insert("deletedBy".into(), stamp.by.clone().into());
            if let Some(info) = rec.get_mut("_info").and_then(Value::as_object_mut) {
                info.insert("lastUpdated".into(), stamp.now.clone().into());
                info.insert("updatedBy".into(), stamp.by.clone().into());
            }
            table.put(id, &value);
            let record = Some(value);
            self.generation += 1;
            return Ok(Change {
                def,
                action: Action::Deleted,
                id,
                record,
            });
        }
        table.rows.remove(&id);
        // Children (ticket notes) go with their parent.
        for child in ALL
            .iter()
            .filter(|d| d.parent.as_ref().is_some_and(|p| p.path == def.path))
        {
            if let Ok(t) = self.table_mut(child) {
                t.rows.retain(|_, r| r.parent() != Some(id));
            }
        }
        self.generation += 1;
        Ok(Change {
            def,
            action: Action::Deleted,
            id,
            record: None,
        })
    }
}

fn belongs(def: &ResourceDef, row: &Row, parent: Option<i64>) -> bool {
    match (&def.parent, parent) {
        (Some(_), Some(pid)) => row.parent() == Some(pid),
        _ => true,
    }
}
