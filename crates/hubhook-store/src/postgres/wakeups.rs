//! Wake-ups across nodes: `LISTEN hubhook_work`.
//!
//! A node sleeps between claims until its next known due time (at most a few seconds). Work
//! made due by another node (a new instance, `poll now`, a poll's new notifications) would wait
//! for that sleep to end; instead the writing transaction sends `NOTIFY hubhook_work, 'polls'`
//! or `'deliveries'`, and every node's listener wakes its poller or dispatcher at once. A
//! missed notification (the listener reconnecting) costs only latency: the sleep still ends.

use sqlx::postgres::{PgListener, PgPoolOptions};

use crate::Result;

pub(super) const CHANNEL: &str = "hubhook_work";

/// Which loop a notification wakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    Polls,
    Deliveries,
}

impl Wake {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Wake::Polls => "polls",
            Wake::Deliveries => "deliveries",
        }
    }
}

/// One node's subscription to the wake-ups of all nodes on the database.
pub struct Wakeups {
    listener: PgListener,
}

impl std::fmt::Debug for Wakeups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Wakeups")
    }
}

impl Wakeups {
    /// Listens on a connection outside the store's pool: it is held for as long as the node
    /// runs, and must neither take one of the pool's connections nor keep `close` waiting.
    pub(super) async fn listen(store: &super::PostgresStore) -> Result<Wakeups> {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_lazy_with((*store.options).clone());
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CHANNEL).await?;
        Ok(Wakeups { listener })
    }

    /// The next wake-up. The listener reconnects by itself after a lost connection (and the
    /// notifications sent meanwhile are lost, which only delays work until the next sleep
    /// ends); an error means the database cannot be reached at all.
    pub async fn next(&mut self) -> Result<Wake> {
        loop {
            let notification = self.listener.recv().await?;
            match notification.payload() {
                "polls" => return Ok(Wake::Polls),
                "deliveries" => return Ok(Wake::Deliveries),
                _ => continue,
            }
        }
    }
}

impl super::PostgresStore {
    pub async fn wakeups(&self) -> Result<Wakeups> {
        Wakeups::listen(self).await
    }
}
