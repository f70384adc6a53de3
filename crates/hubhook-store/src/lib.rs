//! hubhook-store: the only crate with SQL.
//!
//! [`Store`] is an enum over the database engines, with inherent async methods that `match` on
//! the engine. Callers hold one `Store` (cheap to clone) and never see which engine is behind
//! it. The methods are grouped by concern, one module each (`organizations`, `instances`,
//! `polls`, `deliveries`, `events`), and each engine keeps its SQL for one concern in one file
//! of the same name (`sqlite/polls.rs`, ...), so a concern reads as one file per engine.
//!
//! What the store guarantees (see ARCHITECTURE.md):
//! - The outbox: a poll's events, notifications, observed objects and cursor are written in one
//!   transaction ([`Store::commit_poll`]), so a crash never moves a cursor past unstored events.
//! - Leases: work is claimed with a lease (`claim_*`) that carries a fresh random token per
//!   claimed row, done with no transaction open, and completed with ONE conditional statement
//!   fenced on that token. A worker whose lease ended and was taken over (or released at a
//!   restart) gets [`StoreError::LeaseLost`] and writes nothing, even if it runs on the same
//!   node as the new holder. An ended lease is simply claimable again; a running worker
//!   renews its lease so that leases can be short.
//! - SQLite has exactly one writer connection, and writes are group-committed (see the
//!   `sqlite::writer` module). PostgreSQL has many writers, on many nodes: claims use
//!   `FOR UPDATE SKIP LOCKED` and every fenced write is one conditional statement or starts by
//!   locking its row on the token (see the `postgres` module).
//! - Instance secrets are encrypted at rest with the [`MasterKey`] and decrypted only on read.
//!
//! Timestamps are `jiff::Timestamp` in the API and unix milliseconds in the database.

mod console;
mod deliveries;
mod error;
mod events;
mod feed;
mod finish_queue;
mod instances;
mod model;
mod organizations;
mod polls;
mod postgres;
mod redelivery;
mod retention;
mod secrets;
mod settings;
mod sqlite;
mod webhook_secrets;

pub use deliveries::{NotificationClaim, OrganizationShares};
pub use error::{Result, StoreError};
pub use model::{
    AnalyticsBucket, AttemptOutcome, AttemptRecord, AttemptRow, Backlog, CHANGED_MEANWHILE,
    CommitOutcome, ConfigVersion, Deactivation, DeliveryHealth, EventRow, InstanceRow,
    InstanceUpdate, JobHealth, KnownId, KnownObject, LeaseToken, MassDeleteAction, NewEvent,
    NewInstance, NewNotification, NewSecret, NewUser, NotificationRow, ObservedObject,
    OrganizationId, PendingNotification, PollCommit, PollDone, PollJob, PollProgress, PollTrouble,
    Principal, Reconciled, Secrets, SignIn, UserId, UserRow, WebhookSecrets,
};
pub use postgres::{PostgresStore, Wake, Wakeups};
pub use redelivery::{NotificationFilter, Redeliver};
pub use retention::Pruned;
pub use secrets::MasterKey;
pub use sqlite::{Finished, LeftoverWork, SqliteStore};

/// What [`Store::finish_leftovers`] finished.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Leftovers {
    /// Deletes of instances.
    pub deletes: usize,
    /// Forgets of removed resources' known objects.
    pub forgets: usize,
    /// Redeliveries.
    pub redeliveries: usize,
    /// Notifications parked or brought back for a disable or an enable.
    pub moved: u64,
}

impl Leftovers {
    /// Whether there was anything to finish.
    pub fn any(&self) -> bool {
        *self != Leftovers::default()
    }
}

/// The database, whichever engine it is. Clones share the same connections.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

/// Runs `$body` with `$backend` bound to the engine behind `$store`. Every `Store` method is
/// one line of this, so a new engine is one new arm here, not one per method.
macro_rules! on_backend {
    ($store:expr, $backend:ident => $body:expr) => {
        match $store {
            $crate::Store::Sqlite($backend) => $body,
            $crate::Store::Postgres($backend) => $body,
        }
    };
}
pub(crate) use on_backend;

impl Store {
    /// Opens the database at `url` and brings its schema up to date: `sqlite://PATH` or
    /// `sqlite:PATH` (any `?query` ignored; the file is created if missing), or
    /// `postgres://…` / `postgresql://…` (the database must exist; migrations run under an
    /// advisory lock, so several nodes may start at once).
    pub async fn open(url: &str, key: MasterKey) -> Result<Store> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Store::Postgres(PostgresStore::open(url, key).await?));
        }
        if url.starts_with("sqlite:") {
            return Ok(Store::Sqlite(SqliteStore::open(url, key).await?));
        }
        Err(StoreError::InvalidUrl(url.to_owned()))
    }

    /// The key that seals provider secrets, for what else must be sealed or signed so that
    /// every node sharing the database can open it (the console's device tokens).
    pub fn master_key(&self) -> &MasterKey {
        on_backend!(self, s => s.master_key())
    }

    /// The work in parts that a node stopped halfway left in the database (SQLite: a delete,
    /// a removed resource's forget, a redelivery, a disable's parking; PostgreSQL does each in
    /// one transaction and leaves nothing). A server reads it before it listens and finishes
    /// it beside its API ([`Store::finish_leftovers`]; `sqlite/leftovers.rs` says why).
    pub async fn leftovers(&self) -> Result<LeftoverWork> {
        match self {
            Store::Sqlite(s) => s.leftovers().await,
            Store::Postgres(_) => Ok(LeftoverWork::default()),
        }
    }

    /// Finishes what [`Store::leftovers`] found, each item on its own; what failed comes back
    /// in [`Finished::left`], to try again.
    pub async fn finish_leftovers(&self, work: LeftoverWork) -> Finished {
        match self {
            Store::Sqlite(s) => s.finish_leftovers(work).await,
            Store::Postgres(_) => Finished::default(),
        }
    }

    pub fn is_sqlite(&self) -> bool {
        matches!(self, Store::Sqlite(_))
    }

    /// Wake-ups sent by every node sharing the database (PostgreSQL's `LISTEN/NOTIFY`), so
    /// that work made due on one node is picked up by another at once. `None` on SQLite: one
    /// process owns the file, and it wakes its own loops directly.
    pub async fn wakeups(&self) -> Result<Option<Wakeups>> {
        match self {
            Store::Sqlite(_) => Ok(None),
            Store::Postgres(s) => s.wakeups().await.map(Some),
        }
    }

    /// The database server's clock, for nodes that share it (PostgreSQL): every node then
    /// decides leases and schedules on the same clock. `None` on SQLite, whose database lives
    /// on the machine that runs the one node.
    pub async fn database_time(&self) -> Result<Option<jiff::Timestamp>> {
        match self {
            Store::Sqlite(_) => Ok(None),
            Store::Postgres(s) => s.database_time().await.map(Some),
        }
    }

    /// Lets queued writes finish, then closes every connection. Calls after this fail with
    /// "the store is closed".
    pub async fn close(&self) {
        on_backend!(self, s => s.close().await)
    }

    /// Whether the store can still write: `false` once its writer has stopped (SQLite's writer
    /// task died or the store was closed). Readiness probes report this.
    pub fn is_writable(&self) -> bool {
        on_backend!(self, s => s.is_writable())
    }

    /// Whether the part of the store that writes is still running (SQLite: the writer task).
    /// `false` is permanent: the store can never write again, and the process should stop so
    /// that its supervisor restarts it, rather than go on answering while unable to write.
    pub fn writer_alive(&self) -> bool {
        on_backend!(self, s => s.writer_alive())
    }

    /// Frees every lease held by `owner` on poll jobs and notifications, so that a node that
    /// restarts under the same identity takes its unfinished work back at once instead of
    /// waiting for its old leases to expire. The old leases' tokens stop being valid: a
    /// straggler of the previous process (there is none after a crash) could not write.
    /// Returns how many leases were freed.
    pub async fn release_leases(&self, owner: &str) -> Result<u64> {
        on_backend!(self, s => s.release_leases(owner).await)
    }
}
