//! The SQLite writer task: the one connection that writes, and group commit.
//!
//! SQLite allows one writer at a time; several connections competing for the write lock get
//! `SQLITE_BUSY` in ways `busy_timeout` cannot always absorb (a deferred transaction that
//! upgrades from read to write fails at once). So exactly one connection writes, owned by this
//! task, and every write in the process is a [`WriteCommand`] sent to it over a bounded channel.
//!
//! Lifecycle of a batch: the task takes up to [`MAX_BATCH`] queued commands, opens one
//! `BEGIN IMMEDIATE` transaction, runs each command inside its own SAVEPOINT (a command that
//! fails rolls back only its own savepoint and keeps its own error), commits once, and only
//! then answers every caller. One fsync covers the whole batch, and no caller hears "done"
//! before its write is durable.
//!
//! The task ends when every `Store` handle is dropped or when `close` asks it to; commands
//! still queued at that point are dropped, and their callers get "the store is closed".

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::Connection as _;
use sqlx::sqlite::SqliteConnection;
use tokio::sync::{mpsc, oneshot};

use crate::{Result, StoreError};

/// Upper bound on commands per transaction: large enough to amortize the fsync under load,
/// small enough that one batch does not hold the write lock for long.
pub(crate) const MAX_BATCH: usize = 256;

/// How many commands may wait for the writer before senders are slowed down (backpressure).
pub(crate) const QUEUE_CAPACITY: usize = 1024;

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub(crate) enum Message {
    Write(Box<dyn WriteCommand>),
    /// Finish the batch in hand, close the connection, then say so.
    Close(oneshot::Sender<()>),
}

/// One caller's write, type-erased so that commands with different results share a batch.
pub(crate) trait WriteCommand: Send {
    /// Runs the command inside its savepoint; returns whether it succeeded, i.e. whether the
    /// savepoint is to be released (kept) or rolled back.
    fn run<'c>(&'c mut self, conn: &'c mut SqliteConnection) -> BoxFuture<'c, bool>;

    /// Answers the caller once the fate of the batch is known: `Err` when the batch did not
    /// commit, in which case even a command that ran fine has written nothing.
    fn answer(self: Box<Self>, batch: Result<(), String>);

    /// Whether the command runs inside its own savepoint (see [`Writer::write_unguarded`]).
    fn in_savepoint(&self) -> bool;
}

struct Command<T, F> {
    work: Option<F>,
    outcome: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
    savepoint: bool,
}

impl<T, F> WriteCommand for Command<T, F>
where
    T: Send + 'static,
    F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
{
    fn run<'c>(&'c mut self, conn: &'c mut SqliteConnection) -> BoxFuture<'c, bool> {
        Box::pin(async move {
            let outcome = match self.work.take() {
                Some(work) => work(conn).await,
                None => Err(StoreError::Other("a write command ran twice".to_owned())),
            };
            let ok = outcome.is_ok();
            self.outcome = Some(outcome);
            ok
        })
    }

    fn answer(self: Box<Self>, batch: Result<(), String>) {
        let result = match (batch, self.outcome) {
            (Ok(()), Some(outcome)) => outcome,
            // The command's own failure explains more than the batch's.
            (Err(_), Some(Err(own))) => Err(own),
            (Err(batch), _) => Err(StoreError::Other(format!(
                "the write was not committed: {batch}"
            ))),
            (Ok(()), None) => Err(StoreError::Other(
                "the write command was not run".to_owned(),
            )),
        };
        // The caller may have stopped waiting (its future was dropped); the write stands anyway.
        let _ = self.reply.send(result);
    }

    fn in_savepoint(&self) -> bool {
        self.savepoint
    }
}

/// The sending side of the writer, one per `SqliteStore` (cheap to clone).
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    sender: mpsc::Sender<Message>,
    /// Whether the last batch committed. A writer whose batches keep failing (disk full, file
    /// gone) is alive but cannot write; readiness probes must see that too.
    last_batch_ok: Arc<AtomicBool>,
}

fn closed() -> StoreError {
    StoreError::Other("the store is closed".to_owned())
}

impl Writer {
    /// Starts the writer task on `conn`, which must be the only connection that writes.
    pub(crate) fn spawn(conn: SqliteConnection) -> Writer {
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let last_batch_ok = Arc::new(AtomicBool::new(true));
        tokio::spawn(run(conn, receiver, last_batch_ok.clone()));
        Writer {
            sender,
            last_batch_ok,
        }
    }

    /// Whether the task is alive: it drops its receiver when it ends, by `close` or a panic.
    pub(crate) fn is_alive(&self) -> bool {
        !self.sender.is_closed()
    }

    /// Whether writes can succeed: the task is alive and its last batch committed.
    pub(crate) fn is_writable(&self) -> bool {
        self.is_alive() && self.last_batch_ok.load(Ordering::Relaxed)
    }

    /// Queues `work` for the next batch and waits until that batch is committed.
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        self.send(work, true).await
    }

    /// [`Writer::write`] for `work` that fails only when SQL fails (a refusal, such as a
    /// lease that no longer holds, is an `Ok` value). It runs without a savepoint of its own:
    /// a savepoint is two more statements, each a round trip to the connection's thread, and
    /// this is for the writes made once per delivery, per claim or per quiet poll. Since
    /// nothing could then undo its part alone, a failure fails the whole batch (it is rolled
    /// back, and every caller is told).
    pub(crate) async fn write_unguarded<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        self.send(work, false).await
    }

    async fn send<T, F>(&self, work: F, savepoint: bool) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let command = Box::new(Command {
            work: Some(work),
            outcome: None,
            reply,
            savepoint,
        });
        self.sender
            .send(Message::Write(command))
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Lets the writer finish what is queued before this call, then close its connection.
    pub(crate) async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.sender.send(Message::Close(done)).await.is_ok() {
            let _ = closed.await;
        }
    }
}

async fn run(
    mut conn: SqliteConnection,
    mut receiver: mpsc::Receiver<Message>,
    last_batch_ok: Arc<AtomicBool>,
) {
    let mut messages = Vec::with_capacity(MAX_BATCH);
    let mut close_requests = Vec::new();
    let mut last_wal_check = Instant::now();
    while close_requests.is_empty() {
        if receiver.recv_many(&mut messages, MAX_BATCH).await == 0 {
            break; // every sender is gone
        }
        let mut commands = Vec::with_capacity(messages.len());
        for message in messages.drain(..) {
            match message {
                Message::Write(command) => commands.push(command),
                Message::Close(done) => close_requests.push(done),
            }
        }
        if !commands.is_empty() {
            let ok = run_batch(&mut conn, commands).await;
            last_batch_ok.store(ok, Ordering::Relaxed);
            if last_wal_check.elapsed() >= WAL_CHECK_EVERY {
                last_wal_check = Instant::now();
                bound_wal(&mut conn).await;
            }
        }
    }
    // Refuse new work before closing, so no caller waits on a connection that is gone.
    receiver.close();
    while let Ok(message) = receiver.try_recv() {
        if let Message::Close(done) = message {
            close_requests.push(done);
        }
    }
    if let Err(error) = conn.close().await {
        tracing::warn!(%error, "closing the SQLite writer connection failed");
    }
    for done in close_requests {
        let _ = done.send(());
    }
}

/// How often the writer looks at the WAL's size (after a batch, never while one is open).
const WAL_CHECK_EVERY: Duration = Duration::from_secs(1);

/// WAL pages past which the writer empties the WAL (16,384 pages: 64 MB at 4 KB a page).
const WAL_MAX_PAGES: i64 = 16_384;

/// Keeps the WAL bounded. SQLite checkpoints by itself (PASSIVE, every 1000 pages), but a
/// passive checkpoint never waits for readers, and the WAL file is rewritten from its start
/// only when no reader still uses it; under steady reads (the API, the claims' reads, the
/// dispatcher) that moment may never come and the file only grows (744 MB in issue #10).
/// So, at most once a second, the writer checkpoints passively and reads how long the WAL
/// is; past [`WAL_MAX_PAGES`] it asks for TRUNCATE, which waits (busy timeout) for the
/// readers of old snapshots to finish (new readers read the database file once everything is
/// copied back) and then empties the file. A checkpoint moves committed pages only: it changes
/// nothing a reader can see and nothing about durability, so failing (busy) is harmless and
/// is tried again a second later.
async fn bound_wal(conn: &mut SqliteConnection) {
    let passive: std::result::Result<(i64, i64, i64), _> =
        sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&mut *conn)
            .await;
    match passive {
        Ok((_, log, _)) if log > WAL_MAX_PAGES => {
            if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&mut *conn)
                .await
            {
                tracing::debug!(%error, "emptying the WAL failed; tried again later");
            }
        }
        Ok(_) => {}
        Err(error) => tracing::debug!(%error, "WAL checkpoint failed; tried again later"),
    }
}

/// Runs one batch; `true` when it committed.
async fn run_batch(conn: &mut SqliteConnection, mut commands: Vec<Box<dyn WriteCommand>>) -> bool {
    let outcome = async {
        // IMMEDIATE takes the write lock up front, so no statement in the batch can fail with
        // SQLITE_BUSY halfway (another process, e.g. the CLI, may hold the lock briefly).
        let mut tx = conn
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| e.to_string())?;
        for command in commands.iter_mut() {
            if !command.in_savepoint() {
                if command.run(&mut tx).await {
                    continue;
                }
                return Err("a write without a savepoint failed".to_owned());
            }
            let mut savepoint = tx.begin().await.map_err(|e| e.to_string())?;
            let ok = command.run(&mut savepoint).await;
            let end = if ok {
                savepoint.commit().await
            } else {
                savepoint.rollback().await
            };
            // A savepoint that cannot be released or rolled back leaves the transaction in an
            // unknown state: give up the whole batch (dropping `tx` rolls it back).
            end.map_err(|e| e.to_string())?;
        }
        tx.commit().await.map_err(|e| e.to_string())
    }
    .await;
    match &outcome {
        Ok(()) => tracing::trace!(commands = commands.len(), "SQLite write batch committed"),
        Err(error) => {
            tracing::error!(%error, commands = commands.len(), "SQLite write batch failed");
        }
    }
    let ok = outcome.is_ok();
    for command in commands {
        command.answer(outcome.clone());
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn writer() -> Writer {
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        sqlx::query("CREATE TABLE t (v INTEGER PRIMARY KEY)")
            .execute(&mut conn)
            .await
            .unwrap();
        Writer::spawn(conn)
    }

    fn insert(
        v: i64,
    ) -> impl for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<u64>> {
        move |conn| {
            Box::pin(async move {
                Ok(sqlx::query("INSERT INTO t (v) VALUES ($1)")
                    .bind(v)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected())
            })
        }
    }

    fn count() -> impl for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<i64>> {
        |conn| {
            Box::pin(async move {
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM t")
                    .fetch_one(&mut *conn)
                    .await?)
            })
        }
    }

    /// A command that keeps the writer busy, so that the commands sent meanwhile share the
    /// next batch.
    fn pause() -> impl for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<()>> {
        |_| {
            Box::pin(async {
                tokio::time::sleep(Duration::from_millis(200)).await;
                Ok(())
            })
        }
    }

    #[tokio::test]
    async fn a_failed_command_in_a_savepoint_fails_alone_and_a_failed_statement_fails_its_batch() {
        let writer = writer().await;
        assert_eq!(writer.write_unguarded(insert(1)).await.unwrap(), 1);
        // In its savepoint, a failure (a duplicate key) is the command's own; the others of
        // its batch commit.
        let busy = tokio::spawn({
            let writer = writer.clone();
            async move { writer.write(pause()).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (dup, fresh) = tokio::join!(writer.write(insert(1)), writer.write(insert(2)));
        busy.await.unwrap().unwrap();
        assert!(dup.is_err());
        assert_eq!(fresh.unwrap(), 1);
        assert_eq!(writer.write(count()).await.unwrap(), 2);
        // Without one, the whole batch fails, and every caller of the batch hears so.
        let busy = tokio::spawn({
            let writer = writer.clone();
            async move { writer.write(pause()).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (dup, fresh) = tokio::join!(writer.write_unguarded(insert(1)), writer.write(insert(3)));
        busy.await.unwrap().unwrap();
        assert!(dup.is_err());
        let fresh = fresh.unwrap_err().to_string();
        assert!(fresh.contains("not committed"), "{fresh}");
        assert_eq!(writer.write(count()).await.unwrap(), 2);
        assert_eq!(writer.write_unguarded(insert(3)).await.unwrap(), 1);
    }
}
