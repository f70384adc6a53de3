//! The PostgreSQL backend: a pool of connections, every one of which may write, shared by any
//! number of nodes (`hubhook serve` processes) on the same database.
//!
//! Why it is correct with many writers, under PostgreSQL's default READ COMMITTED isolation:
//! - Claims are one statement each: a CTE picks due rows `FOR UPDATE SKIP LOCKED` and the
//!   UPDATE leases them with a fresh token per row (`gen_random_uuid`). Two nodes claiming at
//!   once lock disjoint rows; neither waits for the other, neither gets a row twice.
//! - Fenced writes are single conditional statements `UPDATE .. WHERE lease_token = $n` whose
//!   row count says whether the lease still held; under READ COMMITTED an UPDATE re-checks its
//!   WHERE on the newest row version after waiting on a lock, so a token replaced by a
//!   concurrent claim never matches. Multi-statement completions (the outbox commit, a delivery
//!   attempt) first lock their row with `SELECT .. WHERE lease_token = $n FOR UPDATE`: from then
//!   on no claim can take the row (claims skip locked rows) until the transaction ends.
//! - Each store call that writes runs in one transaction ([`PostgresStore::write`]), the same
//!   all-or-nothing unit the SQLite writer gives each command.
//! - Times (lease expiry, schedules) are compared with the `now` the caller passes, so tests
//!   keep driving time through the engine's injectable clock. A served node's clock follows
//!   the database's ([`PostgresStore::database_time`], read periodically by the engine), so
//!   all nodes decide on one clock. Correctness never depends on clocks agreeing anyway: every
//!   completion is fenced on its token, and skew only moves *when* an abandoned lease is taken
//!   over (the slow holder's late write is then refused).
//! - Migrations run at start through sqlx's migrator, which holds a PostgreSQL advisory lock
//!   while it migrates, so several nodes starting at once apply each migration exactly once.
//! - Work created by one node wakes the others: writes that make work due send
//!   `NOTIFY hubhook_work` inside their transaction (delivered on commit), naming their schema,
//!   and each node's [`Wakeups`] listener on that schema turns it into a local wake-up of its
//!   poller or dispatcher.
//!
//! The SQL of each concern is in its own file, mirroring `../sqlite/`.

mod console;
mod deliveries;
mod events;
mod feed;
mod finish_batch;
mod instances;
mod organizations;
mod polls;
mod redelivery;
mod retention;
mod settings;
mod target_versions;
mod wakeups;
mod webhook_secrets;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use sqlx::Row as _;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};

use crate::{MasterKey, Result, StoreError};
pub use wakeups::{Wake, Wakeups};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Connections per node: the poller and dispatcher run up to a few dozen items at once, each
/// holding a connection only for the length of one statement or transaction.
const MAX_CONNECTIONS: u32 = 16;
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// Id lists are chunked to this size, like SQLite's, to keep statements short.
const IN_LIST_CHUNK: usize = 500;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// Kept for the wake-up listener, which has a connection of its own (see `wakeups`).
    options: Arc<PgConnectOptions>,
    key: Arc<MasterKey>,
    /// When this store's claims last parked (`crate::deliveries::Parking`).
    parking: Arc<crate::deliveries::Parking>,
    /// Attempt results waiting to be written together (see [`crate::finish_queue`]).
    finishes: Arc<crate::finish_queue::FinishQueue>,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://` or `postgresql://`, any libpq-style parameters such as
    /// `?options[search_path]=x`) and brings the schema up to date under the migrator's
    /// advisory lock.
    pub(crate) fn master_key(&self) -> &MasterKey {
        &self.key
    }

    pub async fn open(url: &str, key: MasterKey) -> Result<PostgresStore> {
        let options: PgConnectOptions = url
            .parse()
            .map_err(|_| StoreError::InvalidUrl(url.to_owned()))?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(PostgresStore {
            pool,
            options: Arc::new(options),
            key: Arc::new(key),
            parking: Arc::default(),
            finishes: Arc::default(),
        })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub fn is_writable(&self) -> bool {
        !self.pool.is_closed()
    }

    /// Every connection may write; there is no writer task that could die.
    pub fn writer_alive(&self) -> bool {
        !self.pool.is_closed()
    }

    /// Runs `work` in one transaction and commits it: the unit of atomicity of one store call,
    /// as one command of the SQLite writer is. An error rolls everything back.
    async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send,
        F: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<T>> + Send,
    {
        let mut tx = self.pool.begin().await.map_err(closed_or)?;
        let outcome = work(&mut tx).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// The database server's clock, read in one round trip.
    pub async fn database_time(&self) -> Result<Timestamp> {
        let millis: i64 =
            sqlx::query_scalar("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint")
                .fetch_one(&self.pool)
                .await
                .map_err(closed_or)?;
        timestamp(millis)
    }

    pub async fn release_leases(&self, owner: &str) -> Result<u64> {
        let owner = owner.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                let mut freed = 0;
                for sql in [
                    "UPDATE poll_jobs SET lease_owner = NULL, lease_until = NULL,
                         lease_token = NULL
                     WHERE lease_owner = $1",
                    "UPDATE notifications SET lease_owner = NULL, lease_until = NULL,
                         lease_token = NULL
                     WHERE lease_owner = $1",
                ] {
                    freed += sqlx::query(sql)
                        .bind(&owner)
                        .execute(&mut *conn)
                        .await?
                        .rows_affected();
                }
                if freed > 0 {
                    notify(conn, Wake::Polls).await?;
                    notify(conn, Wake::Deliveries).await?;
                }
                Ok(freed)
            })
        })
        .await
    }
}

/// A closed pool reads as "the store is closed", as SQLite's closed writer does.
fn closed_or(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::PoolClosed => StoreError::Other("the store is closed".to_owned()),
        other => StoreError::Database(other),
    }
}

/// Tells every node listening on this database (this one included) that work became due.
/// Sent inside the caller's transaction, so it is delivered only if the work is committed.
/// The payload names the store's schema: channels are shared by the whole database, and nodes
/// of another hubhook on another schema skip it (see [`Wakeups`]).
async fn notify(conn: &mut PgConnection, wake: Wake) -> Result<()> {
    sqlx::query("SELECT pg_notify($1, concat_ws(' ', $2::text, current_schema()))")
        .bind(wakeups::CHANNEL)
        .bind(wake.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A fresh lease token, made by PostgreSQL inside the claiming statement so that every
/// claimed row gets its own: 128 random bits as 32 hex digits, as SQLite's.
macro_rules! new_lease_token {
    () => {
        "replace(gen_random_uuid()::text, '-', '')"
    };
}
use new_lease_token;

fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn timestamp(millis: i64) -> Result<Timestamp> {
    Timestamp::from_millisecond(millis).map_err(|_| corrupt("timestamp", millis))
}

fn optional_timestamp(row: &PgRow, column: &str) -> Result<Option<Timestamp>> {
    row.try_get::<Option<i64>, _>(column)?
        .map(timestamp)
        .transpose()
}

/// A `due, oldest` row as a [`crate::Backlog`].
fn backlog(row: &PgRow) -> Result<crate::Backlog> {
    let due: i64 = row.try_get("due")?;
    Ok(crate::Backlog {
        due: u64::try_from(due).unwrap_or(0),
        oldest_due: optional_timestamp(row, "oldest")?,
    })
}

fn count(value: i64) -> Result<u32> {
    u32::try_from(value).map_err(|_| corrupt("failed_attempts", value))
}

fn corrupt(what: &str, value: impl std::fmt::Display) -> StoreError {
    StoreError::Other(format!("stored {what} is out of range: {value}"))
}

fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Other(format!("JSON encoding: {e}")))
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str, column: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Other(format!("stored {column} is not valid JSON: {e}")))
}
