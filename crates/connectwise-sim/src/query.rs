//! List parameters (`conditions`, `childConditions`, `customFieldConditions`,
//! `orderBy`, `fields`, `page`, `pageSize`, `pageId`) and their execution
//! against a table. Parameter names are case-insensitive, as ConnectWise
//! accepts `childconditions` and `customfieldconditions`.

use std::cmp::Ordering;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::conditions::{self, Expr, Flavor};
use crate::error::SimError;
use crate::records::ResourceDef;
use crate::row::{INDEXED, Row};
use crate::schema::{Kind, Resolved, resolve};
use crate::store::{Store, Table};

pub const DEFAULT_PAGE_SIZE: usize = 25;
/// "hard limit of 1,000 records" (PSA Pagination); larger sizes are capped.
pub const MAX_PAGE_SIZE: usize = 1000;

#[derive(Debug)]
pub struct ListQuery {
    pub conditions: Option<Expr>,
    pub child: Option<Expr>,
    pub custom: Option<Expr>,
    pub order: Vec<(Resolved, bool)>,
    pub fields: Option<Projection>,
    pub page: usize,
    pub page_size: usize,
    pub page_id: Option<i64>,
    pub forward_only: bool,
    /// Parameters carried into `Link` URLs (everything but the paging ones).
    pub carried: Vec<(String, String)>,
    /// The filter and order as text: identical keys select identical records.
    pub key: String,
    /// Filter and order name only fields a row keeps beside its text ([`INDEXED`]), so
    /// records need not be parsed to select them.
    pub index_only: bool,
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .rev()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Parses an integer query parameter the way ASP.NET model binding does:
/// anything that is not an Int32 is a 400.
fn int_param(params: &[(String, String)], name: &str) -> Result<Option<i64>, SimError> {
    match param(params, name).map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => v.parse::<i32>().map(|n| Some(i64::from(n))).map_err(|_| {
            SimError::bad_request(format!("The value '{v}' is not valid for {name}."))
        }),
    }
}

impl ListQuery {
    pub fn parse(
        def: &'static ResourceDef,
        params: &[(String, String)],
        forward_only: bool,
        search_conditions: Option<&str>,
    ) -> Result<ListQuery, SimError> {
        let cond_text = search_conditions
            .or_else(|| param(params, "conditions"))
            .filter(|s| !s.trim().is_empty());
        let conditions = cond_text
            .map(|c| conditions::parse(c, def.fields, def.entity, Flavor::Conditions))
            .transpose()?;
        let child = param(params, "childConditions")
            .filter(|s| !s.trim().is_empty())
            .map(|c| conditions::parse(c, def.fields, def.entity, Flavor::ChildConditions))
            .transpose()?;
        let custom = param(params, "customFieldConditions")
            .filter(|s| !s.trim().is_empty())
            .map(|c| conditions::parse(c, def.fields, def.entity, Flavor::CustomFieldConditions))
            .transpose()?;
        let order = match param(params, "orderBy").filter(|s| !s.trim().is_empty()) {
            Some(o) if forward_only => {
                return Err(SimError::bad_request(format!(
                    "orderBy '{o}' is not supported with forward-only pagination."
                )));
            }
            Some(o) => parse_order(def, o)?,
            None => Vec::new(),
        };
        let fields = param(params, "fields")
            .filter(|s| !s.trim().is_empty())
            .map(Projection::parse);
        let page = int_param(params, "page")?.unwrap_or(1).max(1) as usize;
        let page_size = match int_param(params, "pageSize")? {
            None => DEFAULT_PAGE_SIZE,
            Some(n) if n < 1 => DEFAULT_PAGE_SIZE,
            Some(n) => (n as usize).min(MAX_PAGE_SIZE),
        };
        let page_id = int_param(params, "pageId")?;
        let mut carried: Vec<(String, String)> = params
            .iter()
            .filter(|(k, _)| {
                let paging = ["page", "pageSize", "pageId"]
                    .iter()
                    .any(|p| k.eq_ignore_ascii_case(p));
                // A search body's conditions replace any in the query string.
                let replaced = search_conditions.is_some() && k.eq_ignore_ascii_case("conditions");
                !paging && !replaced
            })
            .cloned()
            .collect();
        // `POST .../search` links are GETs of the collection: carry the body's
        // conditions so the next page stays filtered.
        if let Some(c) = search_conditions.filter(|c| !c.trim().is_empty()) {
            carried.insert(0, ("conditions".to_string(), c.to_string()));
        }
        let key = [
            cond_text.unwrap_or(""),
            param(params, "childConditions").unwrap_or(""),
            param(params, "customFieldConditions").unwrap_or(""),
            param(params, "orderBy").unwrap_or(""),
        ]
        .join("\u{1f}");
        let index_only = conditions.as_ref().is_none_or(|e| e.only_names(&INDEXED))
            && child.is_none()
            && custom.is_none()
            && order
                .iter()
                .all(|(f, _)| INDEXED.contains(&f.segments.as_slice()));
        Ok(ListQuery {
            conditions,
            child,
            custom,
            order,
            fields,
            page,
            page_size,
            page_id,
            forward_only,
            carried,
            key,
            index_only,
        })
    }

    pub fn matches(&self, rec: &Value) -> bool {
        self.conditions.as_ref().is_none_or(|e| e.matches(rec))
            && self.child.as_ref().is_none_or(|e| e.matches_child(rec))
            && self.custom.as_ref().is_none_or(|e| e.matches_custom(rec))
    }

    fn filters(&self) -> bool {
        self.conditions.is_some() || self.child.is_some() || self.custom.is_some()
    }

    /// What the filter and order look at: the row's indexed fields when they suffice, else
    /// the parsed record.
    fn view(&self, def: &'static ResourceDef, id: i64, row: &Row) -> Value {
        if self.index_only {
            row.index_value(id)
        } else {
            row.value(def)
        }
    }

    /// Whether the row passes the filter (no parse when nothing filters).
    fn matches_row(&self, def: &'static ResourceDef, id: i64, row: &Row) -> bool {
        !self.filters() || self.matches(&self.view(def, id, row))
    }
}

fn parse_order(def: &'static ResourceDef, text: &str) -> Result<Vec<(Resolved, bool)>, SimError> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut words = part.split_whitespace();
        let name = words.next().unwrap_or("");
        let desc = match words.next() {
            None => false,
            Some(d) if d.eq_ignore_ascii_case("asc") => false,
            Some(d) if d.eq_ignore_ascii_case("desc") => true,
            Some(d) => {
                return Err(SimError::bad_request(format!(
                    "'{d}' is not a valid sort direction in orderBy; use asc or desc."
                )));
            }
        };
        if let Some(extra) = words.next() {
            return Err(SimError::bad_request(format!(
                "Unexpected '{extra}' in orderBy."
            )));
        }
        let resolved = resolve(def.fields, name)
            .filter(|r| {
                r.array.is_none()
                    && !matches!(
                        r.kind,
                        Kind::Ref(_) | Kind::Object(_) | Kind::Objects(_) | Kind::RefList(_)
                    )
            })
            .ok_or_else(|| {
                SimError::bad_request(format!(
                    "Cannot find field '{name}' on {} for orderBy.",
                    def.entity
                ))
            })?;
        out.push((resolved, desc));
    }
    Ok(out)
}

fn lookup<'v>(mut v: &'v Value, segments: &[&str]) -> Option<&'v Value> {
    for s in segments {
        v = v.get(s)?;
    }
    Some(v).filter(|v| !v.is_null())
}

fn compare_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        // SQL Server sorts NULLs first in ascending order.
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(Value::String(x)), Some(Value::String(y))) => x
            .chars()
            .flat_map(char::to_lowercase)
            .cmp(y.chars().flat_map(char::to_lowercase)),
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .unwrap_or(0.0)
            .partial_cmp(&y.as_f64().unwrap_or(0.0))
            .unwrap_or(Ordering::Equal),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

fn id_of(v: &Value) -> i64 {
    v.get("id").and_then(Value::as_i64).unwrap_or(0)
}

/// One page of results: ids and their stored rows.
pub struct Selection<'s> {
    pub rows: Vec<(i64, &'s Row)>,
    /// All matching records (navigable paging only; forward-only does not count).
    pub total: usize,
}

/// Matching ids of recent list queries, keyed by the store generation so any
/// write invalidates them. Walking a large result page by page then costs
/// one scan instead of one per page.
#[derive(Debug, Default)]
pub struct QueryCache {
    entries: Mutex<Vec<(CacheKey, Arc<Vec<i64>>)>>,
}

#[derive(Debug, Clone, PartialEq)]
struct CacheKey {
    path: &'static str,
    parent: Option<i64>,
    query: String,
    generation: u64,
}

const CACHE_ENTRIES: usize = 16;

impl QueryCache {
    fn get_or_compute(&self, key: CacheKey, compute: impl FnOnce() -> Vec<i64>) -> Arc<Vec<i64>> {
        {
            let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((_, ids)) = entries.iter().find(|(k, _)| *k == key) {
                return ids.clone();
            }
        }
        let ids = Arc::new(compute());
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|(k, _)| k.generation == key.generation);
        if entries.len() >= CACHE_ENTRIES {
            entries.remove(0);
        }
        entries.push((key, ids.clone()));
        ids
    }

    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// All matching ids in result order (the filter and orderBy of `q`).
fn matching_ids(
    store: &Store,
    def: &'static ResourceDef,
    parent: Option<i64>,
    q: &ListQuery,
) -> Vec<i64> {
    let Some(table) = store.table(def) else {
        return Vec::new();
    };
    let matching = table
        .rows
        .iter()
        .filter(|(id, r)| in_parent(def, parent, r) && q.matches_row(def, **id, r));
    if q.order.is_empty() {
        return matching.map(|(id, _)| *id).collect();
    }
    let mut all: Vec<Value> = matching.map(|(id, r)| q.view(def, *id, r)).collect();
    sort(&mut all, q);
    all.iter().map(id_of).collect()
}

fn in_parent(def: &ResourceDef, parent: Option<i64>, row: &Row) -> bool {
    match (&def.parent, parent) {
        (Some(_), Some(pid)) => row.parent() == Some(pid),
        _ => true,
    }
}

fn sort(all: &mut [Value], q: &ListQuery) {
    all.sort_by(|a, b| {
        for (field, desc) in &q.order {
            let ord = compare_values(lookup(a, &field.segments), lookup(b, &field.segments));
            let ord = if *desc { ord.reverse() } else { ord };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        id_of(a).cmp(&id_of(b))
    });
}

/// Navigable selection through the cache (forward-only needs none: it
/// starts scanning right after `pageId`).
pub fn select_cached<'s>(
    store: &'s Store,
    def: &'static ResourceDef,
    parent: Option<i64>,
    q: &ListQuery,
    cache: &QueryCache,
) -> Selection<'s> {
    if q.forward_only {
        return select(store, def, parent, q);
    }
    let Some(table) = store.table(def) else {
        return Selection {
            rows: Vec::new(),
            total: 0,
        };
    };
    let key = CacheKey {
        path: def.path,
        parent,
        query: q.key.clone(),
        generation: store.generation,
    };
    let ids = cache.get_or_compute(key, || matching_ids(store, def, parent, q));
    let rows = page_of(table, &ids, q);
    Selection {
        rows,
        total: ids.len(),
    }
}

/// `/count` through the cache.
pub fn count_cached(
    store: &Store,
    def: &'static ResourceDef,
    parent: Option<i64>,
    q: &ListQuery,
    cache: &QueryCache,
) -> usize {
    let key = CacheKey {
        path: def.path,
        parent,
        query: q.key.clone(),
        generation: store.generation,
    };
    cache
        .get_or_compute(key, || matching_ids(store, def, parent, q))
        .len()
}

pub fn select<'s>(
    store: &'s Store,
    def: &'static ResourceDef,
    parent: Option<i64>,
    q: &ListQuery,
) -> Selection<'s> {
    let Some(table) = store.table(def) else {
        return Selection {
            rows: Vec::new(),
            total: 0,
        };
    };
    let wanted = |(id, r): &(&i64, &Row)| in_parent(def, parent, r) && q.matches_row(def, **id, r);
    if q.forward_only {
        // `pageId` is an extra `id > pageId` condition over id order, so the
        // scan can start right after it instead of counting everything.
        let start = q.page_id.unwrap_or(i64::MIN).saturating_add(1);
        let rows: Vec<(i64, &Row)> = table
            .rows
            .range(start..)
            .filter(wanted)
            .take(q.page_size)
            .map(|(id, r)| (*id, r))
            .collect();
        return Selection {
            total: rows.len(),
            rows,
        };
    }
    let skip = (q.page - 1).saturating_mul(q.page_size);
    if q.order.is_empty() {
        // Default order is id ascending: the BTreeMap order. Only the page is kept.
        let mut total = 0;
        let mut rows = Vec::with_capacity(q.page_size.min(1024));
        for (id, r) in table.rows.iter().filter(wanted) {
            if total >= skip && rows.len() < q.page_size {
                rows.push((*id, r));
            }
            total += 1;
        }
        return Selection { rows, total };
    }
    let ids = matching_ids(store, def, parent, q);
    let total = ids.len();
    let rows = page_of(table, &ids, q);
    Selection { rows, total }
}

/// The rows of page `q.page` of the matching `ids`.
fn page_of<'s>(table: &'s Table, ids: &[i64], q: &ListQuery) -> Vec<(i64, &'s Row)> {
    ids.iter()
        .skip((q.page - 1).saturating_mul(q.page_size))
        .take(q.page_size)
        .filter_map(|id| table.rows.get(id).map(|r| (*id, r)))
        .collect()
}

/// `fields=id,name,status/id`: a tree of the properties to keep.
#[derive(Debug, Default, Clone)]
pub struct Projection(Vec<(String, Projection)>);

impl Projection {
    pub fn parse(text: &str) -> Projection {
        let mut root = Projection::default();
        for path in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let mut node = &mut root;
            for seg in path.split('/').filter(|s| !s.is_empty()) {
                let key = seg.to_ascii_lowercase();
                let pos = match node.0.iter().position(|(k, _)| *k == key) {
                    Some(p) => p,
                    None => {
                        node.0.push((key, Projection::default()));
                        node.0.len() - 1
                    }
                };
                node = &mut node.0[pos].1;
            }
        }
        root
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The projection for property `key` (case-insensitive), if it is kept.
    pub fn child(&self, key: &str) -> Option<&Projection> {
        let lower = key.to_ascii_lowercase();
        self.0
            .iter()
            .find(|(name, _)| *name == lower)
            .map(|(_, p)| p)
    }

    /// Keeps only the listed properties (case-insensitive); unknown names are
    /// ignored. Responses stream through `Rendered` instead; this is the
    /// reference the tests compare it with.
    #[cfg(test)]
    pub fn apply(&self, value: Value) -> Value {
        if self.0.is_empty() {
            return value;
        }
        match value {
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .filter_map(|(k, v)| {
                        let lower = k.to_ascii_lowercase();
                        self.0
                            .iter()
                            .find(|(name, _)| *name == lower)
                            .map(|(_, sub)| (k, sub.apply(v)))
                    })
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.into_iter().map(|v| self.apply(v)).collect()),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn projection_keeps_nested_paths() {
        let p = Projection::parse("id, Company/Name ,communicationItems/value");
        let v = json!({"id": 1, "firstName": "A", "company": {"id": 2, "name": "X"},
                       "communicationItems": [{"id": 3, "value": "a@b"}]});
        assert_eq!(
            p.apply(v),
            json!({"id": 1, "company": {"name": "X"}, "communicationItems": [{"value": "a@b"}]})
        );
    }
}
