//! The SQLite backend: one writer task (see [`writer`]) and a pool of read-only readers.
//!
//! Reads go straight to the reader pool; in WAL mode they never block the writer, and a read
//! issued after a write was acknowledged sees it (the writer answers only after COMMIT).
//! Everything that changes a row, including the lease claims (`UPDATE .. RETURNING`), goes
//! through the writer, so the single-writer rule holds by construction.
//!
//! Durability: `synchronous = NORMAL` in WAL mode. A committed batch survives a crash of the
//! process (the WAL is written before the commit returns); only a power loss or an operating
//! system crash can lose the last batches before a checkpoint. docs/behaviour.md says so.
//!
//! The SQL of each concern is in its own file: `organizations`, `instances`, `polls`,
//! `deliveries`, `events`.
//!
//! A row limit is written `LIMIT CAST($n AS INTEGER)`, never as the bare parameter: SQLite
//! (3.51, as bundled) reads a bare bound limit as a hint to the planner and so marks the
//! statement to be prepared again every time a value is bound to it; the cached claim statement
//! was then recompiled on every claim (docs/benchmarks.md, seventh round). A cast is an
//! expression, so the statement stays prepared. A test below keeps the rule.

mod console;
mod deliveries;
mod events;
mod feed;
mod finish_batch;
mod instances;
mod leftovers;
mod organizations;
mod packed;
mod polls;
mod redelivery;
mod retention;
mod settings;
mod target_versions;
mod webhook_secrets;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions as _, Row as _};

use crate::{MasterKey, Result, StoreError};
pub use leftovers::{Finished, LeftoverWork};
use writer::Writer;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Reader connections: enough for the API and the engine to read side by side.
const READERS: u32 = 4;
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// SQLite's default limit on bound parameters is far above this, but long IN lists make slow
/// statements; id lists are chunked to this size.
const IN_LIST_CHUNK: usize = 500;

#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: Writer,
    readers: SqlitePool,
    key: Arc<MasterKey>,
    /// Attempt results waiting to be written together (see [`crate::finish_queue`]).
    finishes: Arc<crate::finish_queue::FinishQueue>,
    /// When this store's claims last parked (`crate::deliveries::Parking`).
    parking: Arc<crate::deliveries::Parking>,
    /// One removal at a time: of a deleted instance's rows (`remove_deleted`) or of a removed
    /// resource's known objects (`forget_rest`).
    removals: Arc<tokio::sync::Semaphore>,
}

/// The file path of `sqlite://PATH` or `sqlite:PATH`. A `?query` (such as `?mode=rwc`) is not
/// part of the path and is ignored: the file is always created if missing. The binary derives
/// the master key file's path the same way (`PATH.key`), so the two stay side by side.
fn database_path(url: &str) -> Result<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| StoreError::InvalidUrl(url.to_owned()))?;
    let path = rest.split('?').next().unwrap_or(rest);
    // An in-memory database would be a different database on every pooled connection.
    if path.is_empty() || path.starts_with(":memory:") {
        return Err(StoreError::InvalidUrl(url.to_owned()));
    }
    Ok(PathBuf::from(path))
}

impl SqliteStore {
    pub(crate) fn master_key(&self) -> &MasterKey {
        &self.key
    }

    pub async fn open(url: &str, key: MasterKey) -> Result<SqliteStore> {
        let path = database_path(url)?;
        let base = SqliteConnectOptions::new()
            .filename(&path)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            .synchronous(SqliteSynchronous::Normal);
        let mut writer = base
            .clone()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // A WAL file that grew under load is cut back to this size when SQLite next
            // rewrites it from the start (see `writer::bound_wal`).
            .pragma("journal_size_limit", "67108864")
            .connect()
            .await?;
        MIGRATOR.run(&mut writer).await?;
        // WAL mode is stored in the file, so readers need not (and, read-only, could not) set it.
        let readers = SqlitePoolOptions::new()
            .max_connections(READERS)
            .connect_with(base.read_only(true))
            .await?;
        Ok(SqliteStore {
            writer: Writer::spawn(writer),
            readers,
            key: Arc::new(key),
            finishes: Arc::default(),
            parking: Arc::default(),
            removals: Arc::new(tokio::sync::Semaphore::new(1)),
        })
    }

    pub async fn close(&self) {
        self.writer.close().await;
        self.readers.close().await;
    }

    pub fn is_writable(&self) -> bool {
        self.writer.is_writable()
    }

    pub fn writer_alive(&self) -> bool {
        self.writer.is_alive()
    }

    pub async fn release_leases(&self, owner: &str) -> Result<u64> {
        let owner = owner.to_owned();
        self.writer
            .write(move |conn| {
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
                    Ok(freed)
                })
            })
            .await
    }
}

/// A fresh lease token, made by SQLite itself inside the claiming statement so that every
/// claimed row gets its own: 128 random bits as 32 hex digits. A macro so that claims can
/// `concat!` it into their `&'static str` SQL.
macro_rules! new_lease_token {
    () => {
        "lower(hex(randomblob(16)))"
    };
}
use new_lease_token;

fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn timestamp(millis: i64) -> Result<Timestamp> {
    Timestamp::from_millisecond(millis).map_err(|_| corrupt("timestamp", millis))
}

fn optional_timestamp(row: &sqlx::sqlite::SqliteRow, column: &str) -> Result<Option<Timestamp>> {
    row.try_get::<Option<i64>, _>(column)?
        .map(timestamp)
        .transpose()
}

/// A `due, oldest` row as a [`crate::Backlog`].
fn backlog(row: &sqlx::sqlite::SqliteRow) -> Result<crate::Backlog> {
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

/// Runs the parts of a write that is split so that other tenants' writes wait for one part
/// at most (a disable, a delete, a removed resource, a redelivery, a replay) in a task of
/// their own, and waits for them: a request given up halfway (its client gone) drops this
/// future, not the task, so every part still happens.
async fn to_the_end<T: Send + 'static>(
    parts: impl std::future::Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    tokio::spawn(parts)
        .await
        .map_err(|e| StoreError::Other(e.to_string()))?
}

fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Other(format!("JSON encoding: {e}")))
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str, column: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Other(format!("stored {column} is not valid JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_statement_binds_a_bare_limit() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/sqlite");
        // Built at run time so that this test's own source does not match.
        let bare = [["LIMIT", " $"].concat(), ["LIMIT", " ?"].concat()];
        let mut offenders = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|extension| extension != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                if bare.iter().any(|form| line.contains(form.as_str())) {
                    offenders.push(format!("{}:{}", path.display(), n + 1));
                }
            }
        }
        assert!(offenders.is_empty(), "bare bound LIMIT at {offenders:?}");
    }

    #[test]
    fn database_path_accepts_both_sqlite_url_forms() {
        assert_eq!(
            database_path("sqlite://data/hubhook.db").unwrap(),
            PathBuf::from("data/hubhook.db")
        );
        assert_eq!(
            database_path("sqlite:///var/lib/hubhook.db").unwrap(),
            PathBuf::from("/var/lib/hubhook.db")
        );
        assert_eq!(
            database_path("sqlite:hubhook.db").unwrap(),
            PathBuf::from("hubhook.db")
        );
        // The query string is not part of the file name.
        assert_eq!(
            database_path("sqlite:///tmp/x.db?mode=rwc").unwrap(),
            PathBuf::from("/tmp/x.db")
        );
        assert_eq!(
            database_path("sqlite:x.db?mode=rwc&cache=shared").unwrap(),
            PathBuf::from("x.db")
        );
        for bad in [
            "sqlite://",
            "sqlite://?mode=rwc",
            "sqlite::memory:",
            "sqlite::memory:?cache=shared",
            "mysql://x",
            "hubhook.db",
        ] {
            assert!(
                matches!(database_path(bad), Err(StoreError::InvalidUrl(_))),
                "{bad}"
            );
        }
    }
}
