//! The work in parts a stopped node left halfway, and finishing it beside the API.
//!
//! A delete, a removed resource's forget, a redelivery and a disable's or enable's parking go
//! a part per write (`sqlite/instances.rs`, "Deleting in parts" and "Forgetting a removed
//! resource"; `sqlite/redelivery.rs`; `crate::deliveries`, "Paused notifications"), and what a
//! node stopped in the middle of is recorded in the database: an instance marked `deleting`,
//! a resource listed in `forgetting`, a row of `redeliveries`, notifications of a disabled
//! instance not yet parked. The next start finishes them.
//!
//! Why beside the API rather than before it listens: each part is a write that is correct
//! between any two other writes (the sections above argue it), which is how the parts run
//! while a live request waits for them; what was left is invisible (a half-deleted instance
//! answers 404, a half-forgotten resource has no job) or harmless (a redelivery's rest is
//! made due a part at a time, as it would have been) to everything the API and the loops do.
//! Finishing took up to 6.1 s (a redelivery of 200,000 notifications), during which nothing
//! was answered.
//!
//! Why a snapshot taken before listening ([`SqliteStore::leftovers`]): once the API answers,
//! live requests list their own work in the same tables while their parts run, and a finisher
//! that read the tables then would run a live redelivery a second time (making notifications
//! that failed since due again and reactivating a subscription deactivated since), and count
//! live work as left over. What the snapshot holds was left by a stopped node: nothing else
//! runs it.
//!
//! Each item is finished on its own, so one that fails (a transient error) does not keep the
//! others waiting; what failed is handed back ([`Finished::left`]) for the caller to try again.

use hubhook_core::InstanceId;
use jiff::Timestamp;

use super::{SqliteStore, from_json};
use crate::{Leftovers, Result};

/// The work in parts a stopped node left halfway, read before the API listens.
#[derive(Debug, Default)]
pub struct LeftoverWork {
    /// Instances marked `deleting`.
    deletes: Vec<InstanceId>,
    /// Resources listed in `forgetting`.
    forgets: Vec<(InstanceId, String)>,
    /// Rows of `redeliveries`, by id: each is read again when it is finished, so that one
    /// tried again goes on from where its parts had come.
    redeliveries: Vec<i64>,
    /// Notifications of disabled instances to park, or of enabled ones to bring back.
    parking: bool,
}

impl LeftoverWork {
    /// Whether nothing is left to do.
    pub fn is_empty(&self) -> bool {
        self.deletes.is_empty()
            && self.forgets.is_empty()
            && self.redeliveries.is_empty()
            && !self.parking
    }
}

/// What [`SqliteStore::finish_leftovers`] did.
#[derive(Debug, Default)]
pub struct Finished {
    /// What was finished.
    pub done: Leftovers,
    /// The errors met, one per item that failed.
    pub errors: Vec<String>,
    /// The items that failed, to try again.
    pub left: LeftoverWork,
}

impl SqliteStore {
    /// The work in parts a stopped node left halfway. Read before the API listens (see the
    /// module docs); when none was left, a seek of `instances_deleting` and two empty tables.
    pub async fn leftovers(&self) -> Result<LeftoverWork> {
        let deletes: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM instances INDEXED BY instances_deleting WHERE deleting = 1",
        )
        .fetch_all(&self.readers)
        .await?;
        let forgets: Vec<(i64, String)> =
            sqlx::query_as("SELECT instance_id, resource FROM forgetting")
                .fetch_all(&self.readers)
                .await?;
        let redeliveries = sqlx::query_scalar("SELECT id FROM redeliveries ORDER BY id")
            .fetch_all(&self.readers)
            .await?;
        Ok(LeftoverWork {
            deletes: deletes.into_iter().map(InstanceId).collect(),
            forgets: forgets
                .into_iter()
                .map(|(id, resource)| (InstanceId(id), resource))
                .collect(),
            redeliveries,
            // Whether a disable or an enable was left halfway is only known by moving: the
            // statement finds nothing when nothing was (an index seek per disabled instance
            // and per instance with parked notifications).
            parking: true,
        })
    }

    /// Finishes `work`, each item on its own (see the module docs).
    pub async fn finish_leftovers(&self, work: LeftoverWork) -> Finished {
        let mut finished = Finished::default();
        // Deletes first: a half-deleted instance is disabled, and its notifications are
        // cancelled, not parked.
        for id in work.deletes {
            match self.remove_deleted(id).await {
                Ok(()) => finished.done.deletes += 1,
                Err(error) => {
                    finished
                        .errors
                        .push(format!("delete of instance {id}: {error}"));
                    finished.left.deletes.push(id);
                }
            }
        }
        for (id, resource) in work.forgets {
            match self.forget_rest(id, resource.clone()).await {
                Ok(()) => finished.done.forgets += 1,
                Err(error) => {
                    finished
                        .errors
                        .push(format!("forget of {resource} of instance {id}: {error}"));
                    finished.left.forgets.push((id, resource));
                }
            }
        }
        // Before parking: a disabled instance's redelivered notifications are then parked.
        for run in work.redeliveries {
            match self.finish_redelivery(run).await {
                Ok(()) => finished.done.redeliveries += 1,
                Err(error) => {
                    finished.errors.push(format!("redelivery {run}: {error}"));
                    finished.left.redeliveries.push(run);
                }
            }
        }
        if work.parking {
            match self.finish_parking(Timestamp::now()).await {
                Ok(moved) => finished.done.moved = moved,
                Err(error) => {
                    finished.errors.push(format!("parking: {error}"));
                    finished.left.parking = true;
                }
            }
        }
        finished
    }

    /// The rest of the redelivery listed as `run`, from where its parts had come (nothing if
    /// it is no longer listed).
    async fn finish_redelivery(&self, run: i64) -> Result<()> {
        let row: Option<(i64, String, i64, bool)> = sqlx::query_as(
            "SELECT instance_id, ids, done, delivered_too FROM redeliveries WHERE id = $1",
        )
        .bind(run)
        .fetch_optional(&self.readers)
        .await?;
        let Some((instance, ids, done, any)) = row else {
            return Ok(());
        };
        let ids: Vec<String> = from_json(&ids, "redeliveries.ids")?;
        let done = usize::try_from(done).unwrap_or(0);
        self.redeliver_from(
            InstanceId(instance),
            ids,
            done,
            Some(run),
            any,
            Timestamp::now(),
        )
        .await?;
        Ok(())
    }
}
