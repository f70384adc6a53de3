//! The retention loop: every few minutes, finished delivery history older than
//! `delivery_retention` and event metadata older than `event_retention` are deleted, in
//! batches of [`BATCH`] rows, yielding between batches so that the writer serves polls and
//! deliveries in between (each batch is one short transaction). What is still waiting for its
//! receiver is never pruned (see `hubhook_store::Store::prune`).

use std::time::Duration;

use hubhook_store::Pruned;
use jiff::SignedDuration;
use tokio_util::sync::CancellationToken;

use crate::Engine;

/// Rows per kind removed by one transaction.
pub const BATCH: u32 = 500;
/// Most batches of one round: a large backlog drains over several rounds rather than in one
/// long burst.
const MAX_BATCHES: usize = 200;
/// Time between rounds.
const INTERVAL: Duration = Duration::from_secs(300);

impl Engine {
    /// One retention round at the engine's clock: batches until nothing is left to prune (or
    /// the round's bound). Returns what was removed. Tests call it with a clock they move.
    pub async fn prune_due(&self) -> anyhow::Result<Pruned> {
        let now = self.clock().now();
        let before = |keep: Duration| {
            now - SignedDuration::try_from(keep).unwrap_or(SignedDuration::from_hours(24 * 365))
        };
        let deliveries_before = before(self.config().delivery_retention);
        let events_before = before(self.config().event_retention);
        let mut total = Pruned::default();
        for _ in 0..MAX_BATCHES {
            let pruned = self
                .store()
                .prune(deliveries_before, events_before, BATCH)
                .await?;
            total.notifications += pruned.notifications;
            total.attempts += pruned.attempts;
            total.events += pruned.events;
            if pruned.notifications < u64::from(BATCH) && pruned.events < u64::from(BATCH) {
                break;
            }
            tokio::task::yield_now().await;
        }
        Ok(total)
    }

    /// Runs retention rounds until `shutdown`.
    pub(crate) async fn retention_loop(&self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(INTERVAL) => {}
            }
            match self.prune_due().await {
                Ok(pruned) if pruned.total() > 0 => {
                    tracing::info!(
                        notifications = pruned.notifications,
                        attempts = pruned.attempts,
                        events = pruned.events,
                        "retention pruned old history"
                    );
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(error = %format!("{err:#}"), "retention failed; retried next round")
                }
            }
        }
    }
}
