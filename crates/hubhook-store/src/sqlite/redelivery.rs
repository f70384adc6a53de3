//! SQL of delivery listings, subscription state and redelivery.

use hubhook_core::{InstanceId, NotificationId};
use jiff::Timestamp;
use sqlx::Row as _;

use super::{SqliteStore, deliveries::notification_row, packed, timestamp, to_json, to_the_end};
use crate::{
    Deactivation, NewNotification, NotificationRow, Result,
    redelivery::{NotificationFilter, Redeliver},
};

impl SqliteStore {
    pub async fn find_notifications(
        &self,
        filter: NotificationFilter,
    ) -> Result<Vec<NotificationRow>> {
        // Two static statements, for one instance and for the organization: a parameter that
        // is either NULL or a value (`$2 IS NULL OR …`) cannot constrain an index, and this
        // is a list that is paged through whole (the deliveries' `where` scans an
        // organization's history 500 rows at a time). The page starts after the keyset
        // `(created_at, id)` as a row value, which walks the index from there; the first page
        // starts after a key above every row. The API status is derived from the stored one.
        macro_rules! find {
            ($instance:literal) => {
                concat!(
                    "SELECT n.id, n.instance_id, CASE WHEN $9 THEN n.body ELSE '' END AS body,
                         n.status, n.failed_attempts,
                         COALESCE(n.next_attempt_at, n.paused_due_at) AS next_attempt_at, n.created_at,
                         n.delivered_at, n.replay_of
                     FROM notifications n JOIN instances i
                         ON i.id = n.instance_id AND i.deleting = 0
                     WHERE ",
                    $instance,
                    " AND ($3 = '[]' OR (CASE WHEN n.status = 'pending' AND n.failed_attempts > 0
                                             THEN 'failed' ELSE n.status END)
                                        IN (SELECT value FROM json_each($3)))
                       AND ($4 IS NULL OR n.created_at >= $4)
                       AND ($5 IS NULL OR n.created_at < $5)
                       AND (n.created_at, n.id) < ($6, $7)
                     ORDER BY n.created_at DESC, n.id DESC
                     LIMIT CAST($8 AS INTEGER)"
                )
            };
        }
        let statuses = serde_json::to_string(&filter.statuses)
            .map_err(|e| crate::StoreError::Other(e.to_string()))?;
        let (after_at, after_id) = match &filter.after {
            Some((at, id)) => (at.as_millisecond(), id.0.clone()),
            None => (i64::MAX, String::new()),
        };
        let sql = match filter.instance {
            // `+` keeps the organization's index out of an instance's listing: its own
            // index is the narrower walk. Either way the instance is the organization's and
            // still exists (a deleted instance's notifications are not listed).
            Some(_) => {
                find!("+n.organization_id = $1 AND +i.organization_id = $1 AND n.instance_id = $2")
            }
            None => find!("n.organization_id = $1 AND i.organization_id = $1 AND $2 IS NULL"),
        };
        let rows = sqlx::query(sql)
            .bind(filter.organization.0)
            .bind(filter.instance.map(|i| i.0))
            .bind(statuses)
            .bind(filter.since.map(|t| t.as_millisecond()))
            .bind(filter.until.map(|t| t.as_millisecond()))
            .bind(after_at)
            .bind(after_id)
            .bind(i64::from(filter.limit))
            .bind(filter.bodies)
            .fetch_all(&self.readers)
            .await?;
        rows.iter().map(notification_row).collect()
    }

    pub async fn attempt_counts(&self, ids: &[NotificationId]) -> Result<Vec<u64>> {
        let mut counts = Vec::with_capacity(ids.len());
        for id in ids {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM delivery_attempts WHERE notification_id = $1",
            )
            .bind(&id.0)
            .fetch_one(&self.readers)
            .await?;
            counts.push(u64::try_from(n).unwrap_or(0));
        }
        Ok(counts)
    }

    pub async fn replayable_notifications(
        &self,
        instance: InstanceId,
        from: Timestamp,
        to: Timestamp,
        limit: u32,
    ) -> Result<Vec<NotificationRow>> {
        let rows = sqlx::query(
            "SELECT n.id, n.instance_id, n.body, n.status, n.failed_attempts,
                 COALESCE(n.next_attempt_at, n.paused_due_at) AS next_attempt_at,
                 n.created_at, n.delivered_at, n.replay_of
             FROM notifications n
             WHERE n.id IN (SELECT notification_id FROM events
                            WHERE instance_id = $1 AND created_at >= $2 AND created_at < $3)
             ORDER BY n.created_at, n.id
             LIMIT CAST($4 AS INTEGER)",
        )
        .bind(instance.0)
        .bind(from.as_millisecond())
        .bind(to.as_millisecond())
        .bind(i64::from(limit))
        .fetch_all(&self.readers)
        .await?;
        rows.iter().map(notification_row).collect()
    }

    pub async fn insert_replays(
        &self,
        instance: InstanceId,
        replays: Vec<(NotificationId, NewNotification)>,
        now: Timestamp,
    ) -> Result<u64> {
        let mut packed: Vec<(NotificationId, NotificationId, Vec<u8>)> = replays
            .into_iter()
            .map(|(original, replay)| {
                let body = packed::pack(&replay.body);
                (original, replay.id, body)
            })
            .collect();
        // In parts, each a write of its own, in their order (see `redeliver`).
        let store = self.clone();
        to_the_end(async move {
            let mut inserted = 0;
            while !packed.is_empty() {
                let tail = packed.split_off(packed.len().min(PART));
                let part = std::mem::replace(&mut packed, tail);
                inserted += store
                    .writer
                    .write(move |conn| {
                        Box::pin(
                            async move { insert_replay_part(conn, instance, &part, now).await },
                        )
                    })
                    .await?;
            }
            Ok(inserted)
        })
        .await
    }

    pub async fn oldest_undelivered(
        &self,
        instance: InstanceId,
    ) -> Result<Option<(NotificationId, Option<Timestamp>)>> {
        // rowid is the storage order: a poll stores its notifications in the order of its events.
        let row = sqlx::query(
            "SELECT id, COALESCE(next_attempt_at, paused_due_at) AS next_attempt_at FROM notifications
             WHERE instance_id = $1 AND status IN ('pending', 'queued')
             ORDER BY rowid LIMIT 1",
        )
        .bind(instance.0)
        .fetch_optional(&self.readers)
        .await?;
        row.map(|row| {
            let due: Option<i64> = row.try_get("next_attempt_at")?;
            Ok((
                NotificationId(row.try_get("id")?),
                due.map(timestamp).transpose()?,
            ))
        })
        .transpose()
    }

    pub async fn deactivation(&self, instance: InstanceId) -> Result<Option<Deactivation>> {
        let row = sqlx::query(
            "SELECT deactivated_at, reason FROM delivery_subscriptions WHERE instance_id = $1",
        )
        .bind(instance.0)
        .fetch_optional(&self.readers)
        .await?;
        row.map(|row| {
            Ok(Deactivation {
                deactivated_at: timestamp(row.try_get("deactivated_at")?)?,
                reason: row.try_get("reason")?,
            })
        })
        .transpose()
    }

    /// In parts of [`PART`] ids, each a write of its own, in the order given (the API gives
    /// them oldest first): one writer serves every organization, and a recovery after a long
    /// outage can cover hundreds of thousands (docs/benchmarks.md, "Twenty-second round"). A
    /// delete that comes between two parts stops the rest; what was made due before it, it
    /// cancels. A redelivery of more than one part is listed in `redeliveries` from a first
    /// write on, with its ids, and each part's write moves its count on, so that the next start
    /// finishes one a stopped node left halfway (`finish_leftovers`): the first part
    /// has reactivated the subscription, and the rest would otherwise stay queued for good.
    pub async fn redeliver(
        &self,
        instance: InstanceId,
        ids: Vec<NotificationId>,
        which: Redeliver,
        now: Timestamp,
    ) -> Result<u64> {
        if ids.len() > PART {
            return self
                .redeliver_several(vec![(instance, ids)], which, now)
                .await;
        }
        let any = which == Redeliver::Any;
        let ids: Vec<String> = ids.into_iter().map(|id| id.0).collect();
        let store = self.clone();
        to_the_end(async move { store.redeliver_from(instance, ids, 0, None, any, now).await })
            .await
    }

    /// [`SqliteStore::redeliver`] of several instances, each list in the order given: every
    /// list is recorded in `redeliveries` in one first write, however short, so that a node
    /// stopped halfway finishes every instance's at its next start (`finish_leftovers`),
    /// not only the one it was at; and the parts run in a task of their own, so a request
    /// dropped halfway does not stop them either. Instances deleted meanwhile are skipped.
    pub async fn redeliver_several(
        &self,
        runs: Vec<(InstanceId, Vec<NotificationId>)>,
        which: Redeliver,
        now: Timestamp,
    ) -> Result<u64> {
        let any = which == Redeliver::Any;
        let store = self.clone();
        // All of it in the spawned task, the listing too: listed by a request dropped before
        // its parts began, it would run only at the next start, days later perhaps.
        to_the_end(async move {
            let mut lists = Vec::with_capacity(runs.len());
            for (instance, ids) in runs {
                let ids: Vec<String> = ids.into_iter().map(|id| id.0).collect();
                let all = to_json(&ids)?;
                lists.push((instance, ids, all));
            }
            let listed = store
                .writer
                .write(move |conn| {
                    Box::pin(async move {
                        let mut listed = Vec::with_capacity(lists.len());
                        for (instance, ids, all) in lists {
                            let run = list_redelivery(conn, instance, all, any).await?;
                            listed.push((instance, ids, run));
                        }
                        Ok(listed)
                    })
                })
                .await?;
            let mut due = 0;
            for (instance, ids, run) in listed {
                // Gone since the route found it: nothing is made due.
                if let Some(run) = run {
                    due += store
                        .redeliver_from(instance, ids, 0, Some(run), any, now)
                        .await?;
                }
            }
            Ok(due)
        })
        .await
    }

    /// The parts of a redelivery from its `done`th id on. `run` is its row in `redeliveries`
    /// (none for a single part): each part's write moves it on, and the last deletes it, as
    /// does the part that finds the instance gone.
    pub(super) async fn redeliver_from(
        &self,
        instance: InstanceId,
        ids: Vec<String>,
        mut done: usize,
        run: Option<i64>,
        any: bool,
        now: Timestamp,
    ) -> Result<u64> {
        let mut due = 0;
        while done < ids.len() {
            let next = (done + PART).min(ids.len());
            let part = to_json(&ids[done..next])?;
            let last = next == ids.len();
            let made_due = self
                .writer
                .write(move |conn| {
                    Box::pin(async move {
                        let made_due = redeliver_part(conn, instance, &part, any, now).await?;
                        if let Some(run) = run {
                            if made_due.is_none() || last {
                                sqlx::query("DELETE FROM redeliveries WHERE id = $1")
                                    .bind(run)
                                    .execute(&mut *conn)
                                    .await?;
                            } else {
                                sqlx::query("UPDATE redeliveries SET done = $2 WHERE id = $1")
                                    .bind(run)
                                    .bind(i64::try_from(next).unwrap_or(i64::MAX))
                                    .execute(&mut *conn)
                                    .await?;
                            }
                        }
                        Ok(made_due)
                    })
                })
                .await?;
            let Some(made_due) = made_due else { break };
            due += made_due;
            done = next;
        }
        Ok(due)
    }
}

/// Records a redelivery of `ids` (a JSON list) in `redeliveries`, for the next start to finish
/// if this node stops first; `None` if the instance is gone.
async fn list_redelivery(
    conn: &mut sqlx::SqliteConnection,
    instance: InstanceId,
    ids: String,
    any: bool,
) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "INSERT INTO redeliveries (instance_id, organization_id, ids, delivered_too)
         SELECT id, organization_id, $2, $3 FROM instances
         WHERE id = $1 AND deleting = 0
         RETURNING id",
    )
    .bind(instance.0)
    .bind(ids)
    .bind(any)
    .fetch_optional(&mut *conn)
    .await?)
}

/// `NotFound` unless the instance exists (inside the writer's transaction, so it holds for the
/// rest of the command).
async fn instance_exists(conn: &mut sqlx::SqliteConnection, instance: InstanceId) -> Result<()> {
    if is_live(conn, instance).await? {
        Ok(())
    } else {
        Err(crate::StoreError::NotFound)
    }
}

/// Whether the instance exists and is not being deleted (`sqlite/instances.rs`, "Deleting in
/// parts").
async fn is_live(conn: &mut sqlx::SqliteConnection, instance: InstanceId) -> Result<bool> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT id FROM instances WHERE id = $1 AND deleting = 0")
            .bind(instance.0)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(found.is_some())
}

/// How many notifications one write of a redelivery or a replay touches: the size of the
/// parts a disable or a delete moves (`crate::deliveries::PARK_PART`).
const PART: usize = crate::deliveries::PARK_PART as usize;

/// One part of `SqliteStore::redeliver`: makes these notifications (`ids`, a JSON array) due
/// at `now`, delivered ones only if `any` ([`Redeliver::Any`]), and reactivates the
/// subscription; `None`, with nothing written, once the instance is gone or being deleted
/// (none of its notifications is made due again, the route's answer for a deleted one).
async fn redeliver_part(
    conn: &mut sqlx::SqliteConnection,
    instance: InstanceId,
    ids: &str,
    any: bool,
    now: Timestamp,
) -> Result<Option<u64>> {
    if !is_live(conn, instance).await? {
        return Ok(None);
    }
    sqlx::query("DELETE FROM delivery_subscriptions WHERE instance_id = $1")
        .bind(instance.0)
        .execute(&mut *conn)
        .await?;
    // One statement for the part: a statement per id cost a round trip to the connection's
    // thread each (docs/benchmarks.md, "Twenty-second round"). `+instance_id` keeps the planner
    // on the ids' primary key: by the instance's index it read every notification of the
    // instance, for each part. A disabled instance's are parked at once, as its disable
    // parked the others (`crate::deliveries`, "Paused notifications"), rather than made due
    // for the claims to park again a part a second; the flag is read in the same write as an
    // enable's, so an enable either comes before (they are due) or brings them back.
    let due = sqlx::query(
        "UPDATE notifications SET status = 'pending',
             next_attempt_at = CASE WHEN (SELECT disabled FROM instances WHERE id = $2)
                 THEN NULL ELSE $3 END,
             paused_due_at = CASE WHEN (SELECT disabled FROM instances WHERE id = $2)
                 THEN $3 ELSE NULL END,
             failed_attempts = 0
         WHERE id IN (SELECT value FROM json_each($1)) AND +instance_id = $2
           AND status != 'cancelled' AND (status != 'delivered' OR $4)
           AND (lease_until IS NULL OR lease_until <= $3)",
    )
    .bind(ids)
    .bind(instance.0)
    .bind(now.as_millisecond())
    .bind(any)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(Some(due))
}

/// One part of `SqliteStore::insert_replays`: (original, replay id, packed body) each.
async fn insert_replay_part(
    conn: &mut sqlx::SqliteConnection,
    instance: InstanceId,
    part: &[(NotificationId, NotificationId, Vec<u8>)],
    now: Timestamp,
) -> Result<u64> {
    // The route found the instance, but a delete may have come between: its replays would
    // belong to no organization, pending for ever.
    instance_exists(conn, instance).await?;
    let mut inserted = 0;
    for (original, replay, body) in part {
        inserted += sqlx::query(crate::redelivery::INSERT_REPLAY)
            .bind(&replay.0)
            .bind(instance.0)
            .bind(body)
            .bind(now.as_millisecond())
            .bind(&original.0)
            .execute(&mut *conn)
            .await?
            .rows_affected();
    }
    Ok(inserted)
}
