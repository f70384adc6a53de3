use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use hubhook_store::Store;
use jiff::{SignedDuration, Timestamp};

/// Where the engine reads "now". Production uses the system clock; tests may pin or shift it so
/// that time-dependent decisions (retry schedules, due jobs) are checked without sleeping.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> Timestamp + Send + Sync>);

impl Clock {
    pub fn system() -> Clock {
        Clock(Arc::new(Timestamp::now))
    }

    /// The system clock shifted by the offset in `offset_ms`, which may change while the clock
    /// is in use ([`follow_database_clock`] keeps it up to date).
    pub fn offset(offset_ms: Arc<AtomicI64>) -> Clock {
        Clock(Arc::new(move || {
            let offset = SignedDuration::from_millis(offset_ms.load(Ordering::Relaxed));
            Timestamp::now()
                .saturating_add(offset)
                .unwrap_or_else(|_| Timestamp::now())
        }))
    }

    /// A clock that reads whatever `now` returns.
    pub fn from_fn(now: impl Fn() -> Timestamp + Send + Sync + 'static) -> Clock {
        Clock(Arc::new(now))
    }

    pub fn now(&self) -> Timestamp {
        (self.0)()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

/// How often a node re-reads the database's clock: machine clocks drift by well under a
/// millisecond a minute once NTP has set them.
const RESYNC: Duration = Duration::from_secs(60);

/// A clock that follows the database server's, when the store has one nodes share
/// (PostgreSQL): leases and schedules written by several nodes are then all on one clock,
/// whatever each machine's clock says. The offset is measured at once and then every minute,
/// by a task that ends when the store closes. On SQLite this is the system clock.
pub async fn follow_database_clock(store: &Store) -> anyhow::Result<Clock> {
    let Some(offset) = measure_offset(store).await? else {
        return Ok(Clock::system());
    };
    let offset_ms = Arc::new(AtomicI64::new(offset));
    let shared = offset_ms.clone();
    let store = store.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(RESYNC).await;
            match measure_offset(&store).await {
                Ok(Some(offset)) => shared.store(offset, Ordering::Relaxed),
                Ok(None) => return,
                // A closed store ends the task; a passing failure keeps the last offset.
                Err(_) if !store.is_writable() => return,
                Err(err) => tracing::warn!(error = %err, "could not read the database's clock"),
            }
        }
    });
    Ok(Clock::offset(offset_ms))
}

/// Database time minus local time, in milliseconds, taking the local time halfway through the
/// round trip.
async fn measure_offset(store: &Store) -> anyhow::Result<Option<i64>> {
    let before = Timestamp::now().as_millisecond();
    let Some(database) = store.database_time().await? else {
        return Ok(None);
    };
    let after = Timestamp::now().as_millisecond();
    Ok(Some(database.as_millisecond() - (before + after) / 2))
}
