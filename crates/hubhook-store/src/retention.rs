//! Retention: old delivery history and event metadata are deleted in small batches.
//!
//! Only what is finished is pruned: a delivered notification (its payload and attempts) once
//! it was delivered before the cutoff, a cancelled one once created before it; events once
//! stored before their own (longer) cutoff and their notification is finished or gone. Pending
//! and queued notifications, and their events, are kept however old: they still wait for
//! their receiver. Each batch is one short transaction, so the single writer is never held
//! for long; the caller decides how many batches to run and when.

use jiff::Timestamp;

use crate::{Result, Store, on_backend};

/// What one batch removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub notifications: u64,
    pub attempts: u64,
    pub events: u64,
}

impl Pruned {
    pub fn total(&self) -> u64 {
        self.notifications + self.attempts + self.events
    }
}

impl Store {
    /// Removes at most `batch` finished notifications (with their attempts) older than
    /// `deliveries_before`, and at most `batch` events stored before `events_before`.
    pub async fn prune(
        &self,
        deliveries_before: Timestamp,
        events_before: Timestamp,
        batch: u32,
    ) -> Result<Pruned> {
        on_backend!(self, s => s.prune(deliveries_before, events_before, batch).await)
    }
}
