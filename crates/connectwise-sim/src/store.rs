//! The in-memory data: one table per resource, records stored as JSON
//! without hrefs (those depend on the request's host and are added when
//! rendering). Every write goes through here so `_info` is stamped the same
//! way everywhere and each change is reported for callbacks.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::SimError;
use crate::patch;
use crate::prng::SplitMix64;
use crate::records::seed::SeedCtx;
use crate::records::write::{WriteCtx, build};
use crate::records::{ALL, ResourceDef, companies, index_of};
use crate::schema::Map;

#[derive(Debug, Default, Clone)]
pub struct Table {
    pub rows: BTreeMap<i64, Value>,
    pub next_id: i64,
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
    pub fn seeded(records: usize, seed: u64) -> Store {
        let mut tables: Vec<Table> = ALL
            .iter()
            .map(|d| Table {
                rows: BTreeMap::new(),
                next_id: d.id_base,
            })
            .collect();
        let mut rng = SplitMix64::new(seed);
        let mut child_seq = 1000;
        for (i, def) in ALL.iter().enumerate() {
            let rows = {
                let mut ctx = SeedCtx::new(&mut rng, &tables, &mut child_seq, seed);
                (def.seed)(&mut ctx, records)
            };
            let table = &mut tables[i];
            for mut rec in rows {
                let id = table.next_id;
                table.next_id += 1;
                rec.insert("id".into(), id.into());
                table.rows.insert(id, Value::Object(rec));
            }
        }
        if let (Some(ci), Some(pi)) = (index_of("company/companies"), index_of("company/contacts"))
        {
            let contacts = tables[pi].clone();
            companies::link_default_contacts(&mut tables[ci], &contacts);
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

    /// The record `id` of `def`, checking it belongs to `parent` for child collections.
    pub fn get(
        &self,
        def: &'static ResourceDef,
        parent: Option<i64>,
        id: i64,
    ) -> Result<&Value, SimError> {
        let rec = self.table(def).and_then(|t| t.rows.get(&id));
        match rec {
            Some(r) if belongs(def, r, parent) => Ok(r),
            _ => Err(SimError::NotFound {
                display: def.display,
                id,
            }),
        }
    }

    fn check_parent(&self, def: &'static ResourceDef, parent: Option<i64>) -> Result<(), SimError> {
        if let (Some(spec), Some(pid)) = (&def.parent, parent) {
            let pdef = crate::records::def(spec.path)
                .ok_or_else(|| SimError::UnknownResource(spec.path.into()))?;
            self.get(pdef, None, pid)?;
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
        table.rows.insert(id, value.clone());
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
        let existing = self
            .get(def, parent, id)?
            .as_object()
            .cloned()
            .unwrap_or_default();
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
        let existing = self
            .get(def, parent, id)?
            .as_object()
            .cloned()
            .unwrap_or_default();
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
        table.rows.insert(id, Value::Object(rec.clone()));
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
        self.get(def, parent, id)?;
        let table = self.table_mut(def)?;
        if def.soft_delete {
            let Some(rec) = table.rows.get_mut(&id).and_then(Value::as_object_mut) else {
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
                    record: Some(Value::Object(rec.clone())),
                });
            }
            rec.insert("deletedFlag".into(), true.into());
            rec.insert("dateDeleted".into(), stamp.now.clone().into());
            rec.insert("deletedBy".into(), stamp.by.clone().into());
            if let Some(info) = rec.get_mut("_info").and_then(Value::as_object_mut) {
                info.insert("lastUpdated".into(), stamp.now.clone().into());
                info.insert("updatedBy".into(), stamp.by.clone().into());
            }
            let record = Some(Value::Object(rec.clone()));
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
            if let (Some(spec), Ok(t)) = (&child.parent, self.table_mut(child)) {
                t.rows
                    .retain(|_, r| r.get(spec.field).and_then(Value::as_i64) != Some(id));
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

fn belongs(def: &ResourceDef, rec: &Value, parent: Option<i64>) -> bool {
    match (&def.parent, parent) {
        (Some(spec), Some(pid)) => rec.get(spec.field).and_then(Value::as_i64) == Some(pid),
        _ => true,
    }
}
