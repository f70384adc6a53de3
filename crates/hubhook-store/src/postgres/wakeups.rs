//! Wake-ups across nodes: `LISTEN hubhook_work`.
//!
//! A node sleeps between claims until its next known due time (at most a few seconds). Work
//! made due by another node (a new instance, `poll now`, a poll's new notifications) would wait
//! for that sleep to end; instead the writing transaction sends `NOTIFY hubhook_work, 'polls'`
//! or `'deliveries'`, and every node's listener wakes its poller or dispatcher at once. A
//! missed notification (the listener reconnecting) costs only latency: the sleep still ends.
//!
//! Channels belong to the whole database, not to a schema, so two hubhooks on two schemas of
//! one database (a staging and a production, or the test suite's schemas) hear each other.
//! The payload therefore names the sender's schema (`polls hubhook`), and a listener skips
//! wake-ups named for another schema. One without a schema (sent by a version before this
//! rule, during a rolling upgrade) wakes it: a wake-up too many only makes a node look for
//! work, while one skipped wrongly would leave work waiting for the sleep.

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

/// One node's subscription to the wake-ups of all nodes on its schema.
pub struct Wakeups {
    listener: PgListener,
    /// The store's schema (`current_schema()`); `None` when its search path names none.
    schema: Option<String>,
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
        let schema: Option<String> = sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(&pool)
            .await?;
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CHANNEL).await?;
        Ok(Wakeups { listener, schema })
    }

    /// The next wake-up. The listener reconnects by itself after a lost connection (and the
    /// notifications sent meanwhile are lost, which only delays work until the next sleep
    /// ends); an error means the database cannot be reached at all.
    pub async fn next(&mut self) -> Result<Wake> {
        loop {
            let notification = self.listener.recv().await?;
            if let Some(wake) = wake_for(notification.payload(), self.schema.as_deref()) {
                return Ok(wake);
            }
        }
    }
}

/// What a notification's payload (`kind` or `kind schema`) wakes on a node of `schema`:
/// nothing when it names another schema or an unknown kind.
fn wake_for(payload: &str, schema: Option<&str>) -> Option<Wake> {
    let (kind, sender) = match payload.split_once(' ') {
        Some((kind, sender)) => (kind, Some(sender)),
        None => (payload, None),
    };
    if sender.is_some_and(|sender| Some(sender) != schema) {
        return None;
    }
    match kind {
        "polls" => Some(Wake::Polls),
        "deliveries" => Some(Wake::Deliveries),
        _ => None,
    }
}

impl super::PostgresStore {
    pub async fn wakeups(&self) -> Result<Wakeups> {
        Wakeups::listen(self).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wake_up_is_for_its_own_schema_or_for_every_schema_when_it_names_none() {
        let ours = Some("hubhook");
        assert_eq!(wake_for("polls hubhook", ours), Some(Wake::Polls));
        assert_eq!(wake_for("deliveries hubhook", ours), Some(Wake::Deliveries));
        assert_eq!(wake_for("polls staging", ours), None);
        assert_eq!(wake_for("deliveries hubhook_2", ours), None);
        // From a node before schemas were named, or a store whose search path names none.
        assert_eq!(wake_for("polls", ours), Some(Wake::Polls));
        assert_eq!(wake_for("deliveries", None), Some(Wake::Deliveries));
        assert_eq!(wake_for("polls hubhook", None), None);
        // Schema names may hold spaces: the rest of the payload is the name.
        assert_eq!(
            wake_for("polls my schema", Some("my schema")),
            Some(Wake::Polls)
        );
        assert_eq!(wake_for("reports hubhook", ours), None);
        assert_eq!(wake_for("", ours), None);
    }
}
