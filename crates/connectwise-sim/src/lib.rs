//! connectwise-sim: a ConnectWise Manage REST API simulator.
//!
//! It serves `/{codebase}/apis/3.0/...` with the behaviour ConnectWise
//! clients rely on (conditions, paging with `Link` headers, forward-only
//! paging, Basic auth of API members, record shapes with `_info` hrefs,
//! error bodies, callbacks) and a test-control surface under `/__sim/`.
//! `docs/connectwise-simulator.md` lists what is reproduced and the source of
//! each behaviour.
//!
//! Lifecycle: [`Simulator::new`] seeds deterministic data from
//! [`SimConfig::seed`]; [`Simulator::router`] (or [`Simulator::serve`] /
//! [`Simulator::spawn`]) exposes it over HTTP. All state is in memory behind
//! one `RwLock`; reads (lists, counts) share it and writes are short.

mod auth;
mod callbacks;
pub use callbacks::sign as sign_callback;
mod clock;
mod conditions;
mod control;
mod error;
mod faults;
mod paging;
mod patch;
mod prng;
mod query;
mod records;
mod routes;
mod row;
mod schema;
mod stats;
mod store;

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde_json::{Value, json};

pub use error::{FieldError, SimError};

use auth::Member;
use records::ResourceDef;
use routes::Target;
use store::{Stamp, Store};

/// Base used for hrefs in records returned by library calls.
const LIBRARY_BASE: &str = "http://127.0.0.1/v4_6_release/apis/3.0";

#[derive(Debug, Clone)]
pub struct SimConfig {
    /// ConnectWise company id (the part before `+` in Basic auth).
    pub company: String,
    pub public_key: String,
    pub private_key: String,
    /// When Some, the `clientId` header is required and must match.
    pub client_id: Option<String>,
    /// Seeded records per resource.
    pub records: usize,
    /// Seeded contacts when set, instead of `records`: a backfill benchmark of a million
    /// contacts needs nothing else in bulk (contacts reference companies, which `records`
    /// still sizes).
    pub contacts: Option<usize>,
    pub seed: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            company: "demo".into(),
            public_key: "demo-public".into(),
            private_key: "demo-private".into(),
            client_id: None,
            records: 100,
            contacts: None,
            seed: 1,
        }
    }
}

/// A fault to inject (`POST /__sim/faults` takes the same JSON).
#[derive(Debug, Clone, serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Fault {
    /// HTTP status to answer with (429 gets `Retry-After` and ConnectWise's throttling body).
    pub status: Option<u16>,
    /// How many requests it applies to; None = until cleared.
    pub count: Option<u32>,
    /// Seconds for `Retry-After` (429 defaults to 30).
    pub retry_after: Option<u64>,
    /// Apply to this fraction of requests (0..=1), drawn from a seeded PRNG.
    pub fraction: Option<f64>,
    /// Added latency before answering.
    pub latency_ms: Option<u64>,
    /// Close the connection without a complete response.
    pub drop_connection: Option<bool>,
    /// Only requests whose path contains this (case-insensitive).
    pub path_contains: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum WriteOp {
    Create,
    Replace,
    Patch,
    Delete,
}

pub(crate) struct Inner {
    pub config: SimConfig,
    pub store: RwLock<Store>,
    pub clock: clock::Clock,
    pub faults: faults::Faults,
    pub stats: stats::Stats,
    pub request_seq: AtomicU64,
    pub callbacks: callbacks::Callbacks,
    pub query_cache: query::QueryCache,
    /// The address `serve` listens on: hrefs fall back to it when a request's
    /// Host header is missing or not a plain host[:port].
    pub listen_addr: std::sync::Mutex<Option<SocketAddr>>,
}

/// Shared simulator state; cheap to clone (Arc inside).
#[derive(Clone)]
pub struct Simulator {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("company", &self.inner.config.company)
            .finish()
    }
}

/// A simulator served on a spawned task.
#[derive(Debug)]
pub struct SimHandle {
    pub addr: SocketAddr,
    pub sim: Simulator,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl SimHandle {
    /// `http://{addr}/v4_6_release/apis/3.0`
    pub fn base_url(&self) -> String {
        format!("http://{}/v4_6_release/apis/3.0", self.addr)
    }

    /// Stops serving (the task is otherwise left running until the runtime ends).
    pub fn abort(&self) {
        self.task.abort();
    }
}

impl Simulator {
    pub fn new(config: SimConfig) -> Simulator {
        let store = Store::seeded(config.records, config.contacts, config.seed);
        let faults = faults::Faults::new(config.seed);
        Simulator {
            inner: Arc::new(Inner {
                store: RwLock::new(store),
                clock: clock::Clock::default(),
                faults,
                stats: stats::Stats::default(),
                request_seq: AtomicU64::new(1),
                callbacks: callbacks::Callbacks::new(config.seed),
                query_cache: query::QueryCache::default(),
                listen_addr: std::sync::Mutex::new(None),
                config,
            }),
        }
    }

    /// All routes: `/{codebase}/apis/3.0/...`, `/login/companyinfo/{company}`,
    /// `/{codebase}/system/callbackkey/index.rails` and `/__sim/...`.
    pub fn router(&self) -> axum::Router {
        self.inner.callbacks.start(self);
        axum::Router::new()
            .fallback(routes::handle)
            .with_state(self.clone())
    }

    /// Serves on the listener until the future is dropped or the process ends.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        if let Ok(addr) = listener.local_addr() {
            *self
                .inner
                .listen_addr
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(addr);
        }
        axum::serve(listener, self.router()).await
    }

    /// Binds `addr` (use port 0 for a free port), spawns the server on the
    /// current tokio runtime and returns a handle.
    pub async fn spawn(config: SimConfig, addr: SocketAddr) -> std::io::Result<SimHandle> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let sim = Simulator::new(config);
        let task = tokio::spawn(sim.clone().serve(listener));
        Ok(SimHandle { addr, sim, task })
    }

    pub(crate) fn read_store(&self) -> RwLockReadGuard<'_, Store> {
        // A panic while holding the lock cannot leave a half-written record
        // (writes replace whole values), so a poisoned lock is still usable.
        self.inner.store.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_store(&self) -> RwLockWriteGuard<'_, Store> {
        self.inner.store.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The one write path for HTTP and library calls: stamps `_info`,
    /// queues callbacks (rendered with `base`) and returns the stored record
    /// (None for hard deletes), which callers render in model order.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn write(
        &self,
        op: WriteOp,
        def: &'static ResourceDef,
        parent: Option<i64>,
        id: Option<i64>,
        body: &Value,
        member: &Member,
        base: &str,
    ) -> Result<Option<Value>, SimError> {
        let stamp = Stamp {
            now: self.inner.clock.now_string(),
            by: member.identifier.to_string(),
            member_id: member.id,
        };
        let change = {
            let mut store = self.write_store();
            let id = id.unwrap_or(0);
            match op {
                WriteOp::Create => store.create(def, parent, body, &stamp)?,
                WriteOp::Replace => store.replace(def, parent, id, body, &stamp)?,
                WriteOp::Patch => store.patch(def, parent, id, body, &stamp)?,
                WriteOp::Delete => store.delete(def, parent, id, &stamp)?,
            }
        };
        self.inner.callbacks.notify(self, &change, base, member.id);
        Ok(change.record)
    }

    /// [`Self::write`] for library calls: the record as GET shows it.
    fn write_rendered(
        &self,
        op: WriteOp,
        resource: &str,
        id: Option<i64>,
        body: &Value,
    ) -> Result<Value, SimError> {
        let (def, parent) = Self::writable(resource)?;
        let record = self.write(op, def, parent, id, body, &auth::primary(), LIBRARY_BASE)?;
        Ok(record
            .map(|r| records::render::render(def, &r, LIBRARY_BASE))
            .unwrap_or(Value::Null))
    }

    fn collection(resource: &str) -> Result<(&'static ResourceDef, Option<i64>), SimError> {
        let segs: Vec<String> = resource
            .split('/')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        match routes::resolve(&segs) {
            Ok(Target::Collection { def, parent }) => Ok((def, parent)),
            _ => Err(SimError::UnknownResource(resource.to_string())),
        }
    }

    fn writable(resource: &str) -> Result<(&'static ResourceDef, Option<i64>), SimError> {
        let (def, parent) = Self::collection(resource)?;
        if def.writable {
            Ok((def, parent))
        } else {
            Err(SimError::MethodNotAllowed {
                method: "write".into(),
            })
        }
    }

    /// Creates a record as the primary API member; returns it as GET shows it
    /// (hrefs on host 127.0.0.1). `resource` is a ConnectWise path such as
    /// `company/contacts` or `service/tickets/{id}/notes`.
    pub fn create(&self, resource: &str, body: Value) -> Result<Value, SimError> {
        self.write_rendered(WriteOp::Create, resource, None, &body)
    }

    /// Applies a JSON Patch array to record `id`.
    pub fn patch(&self, resource: &str, id: i64, ops: Value) -> Result<Value, SimError> {
        self.write_rendered(WriteOp::Patch, resource, Some(id), &ops)
    }

    /// Replaces record `id` (PUT semantics).
    pub fn replace(&self, resource: &str, id: i64, body: Value) -> Result<Value, SimError> {
        self.write_rendered(WriteOp::Replace, resource, Some(id), &body)
    }

    /// Deletes record `id` (companies are soft-deleted).
    pub fn delete(&self, resource: &str, id: i64) -> Result<(), SimError> {
        self.write_rendered(WriteOp::Delete, resource, Some(id), &Value::Null)
            .map(|_| ())
    }

    pub fn get(&self, resource: &str, id: i64) -> Option<Value> {
        let (def, parent) = Self::collection(resource).ok()?;
        let store = self.read_store();
        store
            .get(def, parent, id)
            .ok()
            .map(|r| records::render::render(def, &r, LIBRARY_BASE))
    }

    /// Ids of all records of `resource` (including soft-deleted companies), ascending.
    pub fn ids(&self, resource: &str) -> Vec<i64> {
        let Ok((def, parent)) = Self::collection(resource) else {
            return Vec::new();
        };
        let store = self.read_store();
        let Some(table) = store.table(def) else {
            return Vec::new();
        };
        table
            .rows
            .iter()
            .filter(|(_, r)| match (&def.parent, parent) {
                (Some(_), Some(pid)) => r.parent() == Some(pid),
                _ => true,
            })
            .map(|(id, _)| *id)
            .collect()
    }

    /// Sim clock = real UTC + `seconds`.
    pub fn set_clock_offset(&self, seconds: i64) {
        self.inner.clock.set_offset(seconds);
    }

    /// Freezes (or resumes) the sim clock.
    pub fn set_clock_frozen(&self, frozen: bool) {
        self.inner.clock.set_frozen(frozen);
    }

    /// Moves the sim clock by `seconds`.
    pub fn advance_clock(&self, seconds: i64) {
        self.inner.clock.advance(seconds);
    }

    /// The sim clock's now, `YYYY-MM-DDTHH:MM:SSZ`.
    pub fn now(&self) -> String {
        self.inner.clock.now_string()
    }

    pub fn inject_faults(&self, fault: Fault) {
        self.inner.faults.add(fault);
    }

    pub fn clear_faults(&self) {
        self.inner.faults.clear();
    }

    /// The key ConnectWise would serve at a callback's `key_url`.
    pub fn callback_signing_key(&self) -> String {
        self.inner.callbacks.signing_key().to_string()
    }

    /// The `id` of the key URL this simulator's callbacks carry
    /// (`…/system/callbackkey/index.rails?companyName=…&id=<this>`).
    pub fn callback_key_id(&self) -> String {
        self.inner.callbacks.key_id().to_string()
    }

    /// Every callback delivery attempt so far: `[{callbackId, recordId, action, url, attempt, status, error}]`.
    pub fn callback_deliveries(&self) -> Value {
        self.inner.callbacks.log()
    }

    /// Requests served by route and status: `{"total", "byStatus", "byPath"}`.
    pub fn stats(&self) -> Value {
        self.inner.stats.snapshot()
    }

    /// Fresh data from `seed`; clears faults, stats, callbacks and the clock offset.
    pub fn reset(&self, records: usize, seed: u64) {
        let mut store = Store::seeded(records, None, seed);
        {
            let mut current = self.write_store();
            // The query cache is keyed by generation: keep counting up so no
            // entry cached before the reset can match the new data.
            store.generation = current.generation.wrapping_add(1);
            *current = store;
            self.inner.query_cache.clear();
        }
        self.inner.faults.clear();
        self.inner.stats.reset();
        self.inner.clock.reset();
        self.inner.callbacks.reset();
    }

    /// Touches `count` records of `resource` (lowest ids first) so they all
    /// share one `lastUpdated`, like a ConnectWise bulk update or workflow.
    pub fn mass_update(&self, resource: &str, count: usize) -> Result<Value, SimError> {
        let (def, parent) = Self::writable(resource)?;
        let now = self.inner.clock.now_string();
        let by = "integration";
        let mut changes = Vec::new();
        {
            let mut store = self.write_store();
            let idx = records::index_of(def.path)
                .ok_or_else(|| SimError::UnknownResource(resource.into()))?;
            let Some(table) = store.tables.get_mut(idx) else {
                return Err(SimError::UnknownResource(resource.into()));
            };
            for (id, row) in table.rows.iter_mut() {
                if changes.len() >= count {
                    break;
                }
                if let (Some(_), Some(pid)) = (&def.parent, parent)
                    && row.parent() != Some(pid)
                {
                    continue;
                }
                let mut rec = row.value(def);
                if let Some(info) = rec.get_mut("_info").and_then(Value::as_object_mut) {
                    info.insert("lastUpdated".into(), now.clone().into());
                    info.insert("updatedBy".into(), by.into());
                }
                // Only `_info` changed, to a clock string and a member identifier: the row's
                // text still inverts exactly if it did before.
                *row = if row.is_text() {
                    row::Row::trusted(def, &rec)
                } else {
                    row::Row::checked(def, &rec)
                };
                changes.push(store::Change {
                    def,
                    action: store::Action::Updated,
                    id: *id,
                    record: Some(rec),
                });
            }
            store.generation += 1;
        }
        let ids: Vec<i64> = changes.iter().map(|c| c.id).collect();
        for c in &changes {
            self.inner.callbacks.notify(self, c, LIBRARY_BASE, 0);
        }
        Ok(json!({"resource": def.path, "updated": ids.len(), "lastUpdated": now, "ids": ids}))
    }

    /// Merges company `from` into `into` the way ConnectWise does it as seen
    /// by pollers: `from` gets `deletedFlag` (with dateDeleted/deletedBy) but
    /// its `_info.lastUpdated` is NOT bumped, so `lastUpdated>` polls miss it
    /// (reference §6, DeskDirector #704). No callback is sent.
    pub fn merge_companies(&self, from: i64, into: i64) -> Result<Value, SimError> {
        let def = records::def("company/companies")
            .ok_or_else(|| SimError::UnknownResource("company".into()))?;
        if from == into {
            return Err(SimError::bad_request(
                "A company cannot be merged into itself.",
            ));
        }
        let now = self.inner.clock.now_string();
        let mut store = self.write_store();
        store.row(def, None, into)?;
        let mut rec = store.get(def, None, from)?;
        let idx = records::index_of(def.path)
            .ok_or_else(|| SimError::UnknownResource(def.path.into()))?;
        let Some(fields) = rec.as_object_mut() else {
            return Err(SimError::NotFound {
                display: def.display,
                id: from,
            });
        };
        fields.insert("deletedFlag".into(), true.into());
        fields.insert("dateDeleted".into(), now.clone().into());
        fields.insert("deletedBy".into(), auth::primary().identifier.into());
        let table = store.tables.get_mut(idx).ok_or(SimError::NotFound {
            display: def.display,
            id: from,
        })?;
        table.rows.insert(from, row::Row::checked(def, &rec));
        store.generation += 1;
        Ok(json!({"from": from, "into": into, "dateDeleted": now}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_keeps_the_store_generation_counting_up() {
        let sim = Simulator::new(SimConfig::default());
        let id = sim.ids("company/contacts")[0];
        sim.patch(
            "company/contacts",
            id,
            json!([{"op": "replace", "path": "title", "value": "X"}]),
        )
        .expect("patch");
        let before = sim.read_store().generation;
        assert!(before > 0);
        sim.reset(10, 1);
        let after = sim.read_store().generation;
        assert!(after > before, "{after} > {before}");
    }
}
