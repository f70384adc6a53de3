//! The pull feed: an instance's events in storage order, after a position.
//!
//! Positions are the events' storage sequence (SQLite's rowid), which only grows as events are
//! committed, so a reader that keeps the last position it saw gets every later event exactly
//! once, whatever the events' own dates.

use hubhook_core::InstanceId;

use crate::{EventRow, Result, Store, on_backend};

impl Store {
    /// Up to `limit` events of the instance stored after position `after` (0: from the
    /// start), in storage order, each with its position.
    pub async fn events_after(
        &self,
        instance: InstanceId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, EventRow)>> {
        on_backend!(self, s => s.events_after(instance, after, limit).await)
    }
}
