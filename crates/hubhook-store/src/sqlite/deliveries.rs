//! SQL of notifications (claims, attempts) and the attempt history.

use std::collections::HashMap;

use hubhook_core::{InstanceId, NotificationId};
use jiff::Timestamp;
use sqlx::Row as _;
use sqlx::sqlite::{SqliteConnection, SqliteRow};

use super::{
    SqliteStore, backlog, count, duration_ms, finish_batch, new_lease_token, optional_timestamp,
    packed, timestamp,
};
use crate::deliveries::{
    CROWDED_RECHECK_MS, ClaimAsk, DUE_HEAD, LOOKED_UP_ORGANIZATIONS, PARK_PART,
    VISITED_ORGANIZATIONS, claim_head, fair_window,
};
use crate::{
    AttemptOutcome, AttemptRecord, AttemptRow, Backlog, LeaseToken, NotificationClaim,
    NotificationRow, OrganizationId, PendingNotification, Result, StoreError,
};

macro_rules! notification_select {
    ($tail:literal) => {
        concat!(
            "SELECT id, instance_id, body, status, failed_attempts,
                 COALESCE(next_attempt_at, paused_due_at) AS next_attempt_at, created_at,
                 delivered_at, replay_of
             FROM notifications ",
            $tail
        )
    };
}

/// Parks the pending notifications of disabled instances that are not leased
/// (`crate::deliveries`, "Paused notifications"): what reached one since it was disabled (a
/// failed attempt's retry, a redelivery, a poll that was running), and what a disable did not
/// get to (the node stopped between its parts). Driven from the few disabled instances
/// (`instances_disabled`), one seek each for rows not parked yet, so it costs nothing when
/// there is nothing to park. `$1` is now. An instance being deleted is disabled too, but its
/// notifications are being cancelled (`sqlite/instances.rs`, "Deleting in parts"): parking
/// them first would only double the writes.
/// Then brings back what is parked for an instance that is enabled: what an enable did not get
/// to, and an enable by a node of an older version (during a rolling upgrade), which does not
/// know parking; nothing else would ever make those due again. Driven from the few instances
/// with parked notifications (a walk of `notifications_parked`, one seek per instance), so it
/// too costs nothing when all is well.
/// Each statement moves at most `$2` ([`PARK_PART`]) rows, as a disable's parts do, so that a
/// claim never holds the writer for a whole backlog; while a part was full, the next claim
/// parks again at once (`Parking::again`) rather than a second later.
const PARK_DISABLED: &str =
    "UPDATE notifications SET paused_due_at = next_attempt_at, next_attempt_at = NULL
     WHERE rowid IN (
         SELECT n.rowid FROM instances i INDEXED BY instances_disabled
         CROSS JOIN notifications n INDEXED BY notifications_by_instance_status
             ON n.instance_id = i.id
         WHERE i.disabled = 1 AND i.deleting = 0
           AND n.status = 'pending' AND n.next_attempt_at IS NOT NULL
           AND (n.lease_until IS NULL OR n.lease_until <= $1)
         LIMIT CAST($2 AS INTEGER));
     WITH RECURSIVE parked(instance_id) AS (
         SELECT (SELECT instance_id FROM notifications INDEXED BY notifications_parked
                 WHERE status = 'pending' AND next_attempt_at IS NULL
                   AND paused_due_at IS NOT NULL
                 ORDER BY instance_id LIMIT 1)
         UNION ALL
         SELECT (SELECT n.instance_id FROM notifications n INDEXED BY notifications_parked
                 WHERE n.status = 'pending' AND n.next_attempt_at IS NULL
                   AND n.paused_due_at IS NOT NULL AND n.instance_id > p.instance_id
                 ORDER BY n.instance_id LIMIT 1)
         FROM parked p WHERE p.instance_id IS NOT NULL)
     UPDATE notifications SET next_attempt_at = paused_due_at, paused_due_at = NULL
     WHERE rowid IN (
         SELECT n.rowid FROM parked p
         CROSS JOIN instances i ON i.id = p.instance_id
         CROSS JOIN notifications n INDEXED BY notifications_parked
             ON n.instance_id = p.instance_id
         WHERE i.disabled = 0 AND n.status = 'pending' AND n.next_attempt_at IS NULL
           AND n.paused_due_at IS NOT NULL
         LIMIT CAST($2 AS INTEGER));";

impl SqliteStore {
    /// Finishes the parking and bringing back that a stopped node left halfway (its disable
    /// or enable moves them in parts, `crate::deliveries`, "Paused notifications"), in parts,
    /// when the server starts (`finish_leftovers`): otherwise an enabled instance's parked notifications would
    /// come back one part per claim that parks. When nothing was left halfway it finds
    /// nothing, in one index seek per disabled instance and one per instance with parked
    /// notifications.
    pub(crate) async fn finish_parking(&self, now: Timestamp) -> Result<u64> {
        let now = now.as_millisecond();
        let mut all = 0;
        loop {
            let moved = self
                .writer
                .write(move |conn| {
                    Box::pin(async move {
                        let done = sqlx::query(PARK_DISABLED)
                            .bind(now)
                            .bind(PARK_PART)
                            .execute(&mut *conn)
                            .await?;
                        Ok(done.rows_affected())
                    })
                })
                .await?;
            all += moved;
            if moved < PARK_PART as u64 {
                return Ok(all);
            }
        }
    }

    pub(crate) async fn claim_notifications(&self, ask: ClaimAsk<'_>) -> Result<NotificationClaim> {
        let ClaimAsk {
            owner,
            now,
            lease,
            limit,
            skip,
            per_instance,
            shares,
            begin,
        } = ask;
        let owner = owner.to_owned();
        let skip = serde_json::to_string(&skip.iter().map(|i| i.0).collect::<Vec<_>>())
            .map_err(|e| StoreError::Other(e.to_string()))?;
        let allowances = serde_json::to_string(&shares.allowances())
            .map_err(|e| StoreError::Other(e.to_string()))?;
        let slow_caps = serde_json::to_string(&shares.slow_caps())
            .map_err(|e| StoreError::Other(e.to_string()))?;
        let share = i64::from(shares.share);
        let start = shares.walk_start();
        let park = self.parking.due(now);
        let parking = self.parking.clone();
        let now = now.as_millisecond();
        let lease_until = now.saturating_add(duration_ms(lease));
        // Without a savepoint of its own (`Writer::write_unguarded`): a claim fails only when
        // SQL fails, and a savepoint would be two more round trips to the connection's thread
        // for every claim.
        let (walk, rows, begun) = self
            .writer
            .write_unguarded(move |conn| {
                Box::pin(async move {
                    // Two statements sent as one (sqlx runs each in turn with the same
                    // parameters), one round trip. The first queues the notifications of a
                    // deactivated subscription instead of trying them; driven from the (few)
                    // deactivated instances, CROSS JOIN fixing that order, it costs nothing
                    // when none is deactivated. The second is the walk of the organizations
                    // (see `OrganizationShares`), after the first so that it does not count
                    // what was just queued. From the organization after $2, each step seeks the
                    // next organization id with pending notifications in
                    // `notifications_pending_by_organization` (named, because without
                    // statistics the planner walks the due index for it, every pending row),
                    // up to the highest and then from the lowest up to $2, and tells whether
                    // the organization it leaves (`prev`) can be served (`counts`: not at its
                    // share, and a due notification that is not
                    // leased and whose instance is neither skipped nor disabled), so that each
                    // is one subquery; it stops after $6 organizations visited or $5 counted.
                    // Each organization counted, and the last visited (where the next claim's
                    // walk starts), comes back as a row, in the walk's order.
                    // Parking first, on its own (at most once a second: `Parking`).
                    if park {
                        let moved = sqlx::query(PARK_DISABLED)
                            .bind(now)
                            .bind(PARK_PART)
                            .execute(&mut *conn)
                            .await?;
                        if moved.rows_affected() >= PARK_PART as u64 {
                            parking.again();
                        }
                    }
                    let walk = sqlx::query(
                        "UPDATE notifications SET status = 'queued', next_attempt_at = NULL
                         WHERE rowid IN (
                             SELECT n.rowid FROM delivery_subscriptions d
                             CROSS JOIN notifications n ON n.instance_id = d.instance_id
                             WHERE n.status = 'pending' AND n.next_attempt_at <= $1
                               AND (n.lease_until IS NULL OR n.lease_until <= $1));
                         WITH RECURSIVE
                         skipped_orgs(org) AS (
                             SELECT organization_id FROM instances
                             WHERE id IN (SELECT value FROM json_each($4))),
                         head(instance_id, organization_id, lease_until) AS (
                             SELECT instance_id, organization_id, lease_until
                             FROM notifications INDEXED BY notifications_by_due_in_order
                             WHERE status = 'pending' AND next_attempt_at <= $1
                             ORDER BY next_attempt_at, created_at
                             LIMIT CAST($7 AS INTEGER)),
                         crowded(yes) AS (
                             SELECT COUNT(*) = $7 AND COALESCE(SUM(
                                     (lease_until IS NULL OR lease_until <= $1)
                                     AND instance_id NOT IN (SELECT value FROM json_each($4))
                                     AND instance_id NOT IN (
                                         SELECT id FROM instances WHERE disabled = 1)
                                     AND organization_id NOT IN (
                                         SELECT json_extract(value, '$[0]') FROM json_each($9)
                                         WHERE json_extract(value, '$[1]') <= 0)), 0) < $8
                             FROM head),
                         at_share(org) AS (
                             SELECT json_extract(value, '$[0]') FROM json_each($3)
                             WHERE json_extract(value, '$[1]') <= 0
                               AND NOT (SELECT yes FROM crowded)),
                         walk(org, prev, counts, counted, visited) AS (
                             SELECT COALESCE(
                                     (SELECT organization_id FROM notifications INDEXED BY
                                          notifications_pending_by_organization
                                      WHERE status = 'pending' AND organization_id > $2
                                      ORDER BY organization_id LIMIT 1),
                                     (SELECT organization_id FROM notifications INDEXED BY
                                          notifications_pending_by_organization
                                      WHERE status = 'pending'
                                      ORDER BY organization_id LIMIT 1)),
                                 NULL, 0, 0, 0
                             UNION ALL
                             SELECT COALESCE(
                                     (SELECT organization_id FROM notifications INDEXED BY
                                          notifications_pending_by_organization
                                      WHERE status = 'pending' AND organization_id > w.org
                                        AND organization_id <= CASE WHEN w.org > $2
                                            THEN 9223372036854775807 ELSE $2 END
                                      ORDER BY organization_id LIMIT 1),
                                     (SELECT organization_id FROM notifications INDEXED BY
                                          notifications_pending_by_organization
                                      WHERE status = 'pending' AND organization_id <= $2
                                        AND w.org > $2
                                      ORDER BY organization_id LIMIT 1)),
                                 w.org,
                                 CASE
                                     WHEN w.org IN (SELECT org FROM at_share) THEN 0
                                     WHEN w.org IN (SELECT org FROM skipped_orgs) THEN EXISTS (
                                         SELECT 1 FROM (
                                             SELECT instance_id, lease_until
                                             FROM notifications INDEXED BY
                                                 notifications_pending_by_organization
                                             WHERE status = 'pending'
                                               AND organization_id = w.org
                                               AND next_attempt_at <= $1
                                             ORDER BY next_attempt_at, created_at
                                             LIMIT CAST($7 AS INTEGER))
                                         WHERE (lease_until IS NULL OR lease_until <= $1)
                                           AND instance_id NOT IN (
                                               SELECT value FROM json_each($4))
                                           AND instance_id NOT IN (
                                               SELECT id FROM instances WHERE disabled = 1))
                                     OR (SELECT COUNT(*) FROM (
                                             SELECT 1 FROM notifications INDEXED BY
                                                 notifications_pending_by_organization
                                             WHERE status = 'pending'
                                               AND organization_id = w.org
                                               AND next_attempt_at <= $1
                                             LIMIT CAST($7 AS INTEGER))) = $7
                                     AND EXISTS (
                                         SELECT 1 FROM instances i INDEXED BY
                                             instances_by_organization
                                         WHERE i.organization_id = w.org AND i.disabled = 0
                                           AND i.id NOT IN (SELECT value FROM json_each($4))
                                           AND EXISTS (
                                               SELECT 1 FROM notifications INDEXED BY
                                                   notifications_by_instance_status
                                               WHERE instance_id = i.id
                                                 AND status = 'pending'
                                                 AND next_attempt_at <= $1
                                                 AND (lease_until IS NULL
                                                     OR lease_until <= $1)))
                                     WHEN EXISTS (
                                         SELECT 1 FROM notifications INDEXED BY
                                             notifications_pending_by_organization
                                         WHERE status = 'pending'
                                           AND organization_id = w.org
                                           AND next_attempt_at <= $1
                                           AND (lease_until IS NULL OR lease_until <= $1)
                                           AND instance_id NOT IN (
                                               SELECT value FROM json_each($4))
                                           AND instance_id NOT IN (
                                               SELECT id FROM instances WHERE disabled = 1))
                                     THEN 1 ELSE 0 END,
                                 w.counted + w.counts, w.visited + 1
                             FROM walk w
                             WHERE w.org IS NOT NULL AND w.visited < $6
                               AND w.counted + w.counts < $5)
                         SELECT prev AS organization_id, counts = 1 AS counts FROM walk
                         WHERE visited > 0
                           AND (counts = 1 OR visited = (SELECT MAX(visited) FROM walk))
                         ORDER BY visited",
                    )
                    .bind(now)
                    .bind(start)
                    .bind(&allowances)
                    .bind(&skip)
                    .bind(LOOKED_UP_ORGANIZATIONS)
                    .bind(VISITED_ORGANIZATIONS)
                    .bind(claim_head(limit))
                    .bind(fair_window(limit))
                    .bind(&slow_caps)
                    .fetch_all(&mut *conn)
                    .await?;
                    let walk = walk
                        .iter()
                        .map(|row| Ok((row.try_get("organization_id")?, row.try_get("counts")?)))
                        .collect::<Result<Vec<(i64, bool)>>>()?;
                    let looked_up = serde_json::to_string(
                        &walk
                            .iter()
                            .filter(|(_, counts)| *counts)
                            .map(|(org, _)| *org)
                            .collect::<Vec<_>>(),
                    )
                    .map_err(|e| StoreError::Other(e.to_string()))?;
                    // The window reads the head (`claim_head`) as a co-routine, which yields
                    // its rows in due order, and stops at the window's size. No second ORDER
                    // BY: it would sort the whole head (every row read, a temporary b-tree)
                    // before the limit, and make a claim beside a backlog it can take about a
                    // fifth dearer; the order among candidates is set by the ranking below.
                    // The claim: the candidates are the window of the oldest due and the
                    // oldest due of each organization the walk counted, one seek each in
                    // `notifications_pending_by_organization`; they are ranked in turns per
                    // instance, then per organization, and an organization's turns past its
                    // allowance come last; an organization with slow POSTs takes none past
                    // its cap (`OrganizationShares::slow`). A disabled instance is left out by
                    // its id alone: instance ids are unique across organizations here
                    // (INTEGER PRIMARY KEY), and one uncorrelated list is cheaper than a
                    // lookup per row of the window.
                    let rows = sqlx::query(concat!(
                        "WITH
                         allowances(org, allowance) AS (
                             SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]')
                             FROM json_each($8)),
                         organizations_(org) AS (SELECT value FROM json_each($10)),
                         slow_caps(org, cap) AS (
                             SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]')
                             FROM json_each($11)),
                         skipped_orgs(org) AS (
                             SELECT organization_id FROM instances
                             WHERE id IN (SELECT value FROM json_each($5))),
                         org_heads(org, rowid, next_attempt_at, created_at, servable) AS (
                             SELECT o.org, n.rowid, n.next_attempt_at, n.created_at,
                                 (n.lease_until IS NULL OR n.lease_until <= $3)
                                 AND n.instance_id NOT IN (SELECT value FROM json_each($5))
                                 AND n.instance_id NOT IN (
                                     SELECT id FROM instances WHERE disabled = 1)
                             FROM organizations_ o JOIN notifications n ON n.rowid IN (
                                 SELECT rowid FROM notifications INDEXED BY
                                     notifications_pending_by_organization
                                 WHERE status = 'pending' AND organization_id = o.org
                                   AND next_attempt_at <= $3
                                 ORDER BY next_attempt_at, created_at
                                 LIMIT CAST($12 AS INTEGER))
                             WHERE o.org IN (SELECT org FROM skipped_orgs)),
                         crowded_orgs(org) AS (
                             SELECT org FROM org_heads GROUP BY org
                             HAVING COUNT(*) = $12 AND SUM(servable) < $4),
                         candidates(id, instance_id, organization_id, next_attempt_at,
                             created_at) AS (
                             SELECT * FROM (
                                 SELECT id, instance_id, organization_id, next_attempt_at,
                                     created_at
                                 FROM (
                                     SELECT id, instance_id, organization_id, next_attempt_at,
                                         created_at, lease_until
                                     FROM notifications INDEXED BY notifications_by_due_in_order
                                     WHERE status = 'pending' AND next_attempt_at <= $3
                                     ORDER BY next_attempt_at, created_at
                                     LIMIT CAST($12 AS INTEGER))
                                 WHERE (lease_until IS NULL OR lease_until <= $3)
                                   AND instance_id NOT IN (SELECT value FROM json_each($5))
                                   AND instance_id NOT IN (
                                       SELECT id FROM instances WHERE disabled = 1)
                                   AND organization_id NOT IN (
                                       SELECT org FROM slow_caps WHERE cap <= 0)
                                 LIMIT CAST($6 AS INTEGER))
                             UNION
                             SELECT n.id, n.instance_id, n.organization_id, n.next_attempt_at,
                                 n.created_at
                             FROM crowded_orgs c JOIN notifications n ON n.rowid IN (
                                 SELECT m.rowid
                                 FROM instances i INDEXED BY instances_by_organization
                                 JOIN notifications m ON m.rowid IN (
                                     SELECT rowid FROM notifications INDEXED BY
                                         notifications_by_instance_status
                                     WHERE instance_id = i.id AND status = 'pending'
                                       AND next_attempt_at <= $3
                                       AND (lease_until IS NULL OR lease_until <= $3)
                                     ORDER BY next_attempt_at
                                     LIMIT CAST($4 AS INTEGER))
                                 WHERE i.organization_id = c.org AND i.disabled = 0
                                   AND i.id NOT IN (SELECT value FROM json_each($5))
                                 ORDER BY m.next_attempt_at, m.created_at
                                 LIMIT CAST($4 AS INTEGER))
                             UNION
                             SELECT id, instance_id, organization_id, next_attempt_at,
                                 created_at
                             FROM notifications WHERE rowid IN (
                                 SELECT rowid FROM (
                                     SELECT rowid, ROW_NUMBER() OVER (PARTITION BY org
                                         ORDER BY next_attempt_at, created_at) AS k
                                     FROM org_heads WHERE servable)
                                 WHERE k <= $4)
                             UNION
                             SELECT n.id, n.instance_id, n.organization_id, n.next_attempt_at,
                                 n.created_at
                             FROM organizations_ o JOIN notifications n ON n.rowid IN (
                                 SELECT rowid FROM notifications INDEXED BY
                                     notifications_pending_by_organization
                                 WHERE status = 'pending' AND organization_id = o.org
                                   AND next_attempt_at <= $3
                                   AND (lease_until IS NULL OR lease_until <= $3)
                                   AND instance_id NOT IN (SELECT value FROM json_each($5))
                                   AND instance_id NOT IN (
                                       SELECT id FROM instances WHERE disabled = 1)
                                 ORDER BY next_attempt_at, created_at
                                 LIMIT CAST($4 AS INTEGER))
                             WHERE o.org NOT IN (SELECT org FROM skipped_orgs)),
                         turns AS (
                             SELECT id, organization_id, next_attempt_at, created_at,
                                 ROW_NUMBER() OVER (PARTITION BY instance_id
                                     ORDER BY next_attempt_at, created_at) AS turn
                             FROM candidates),
                         shared AS (
                             SELECT id, organization_id, next_attempt_at, created_at,
                                 ROW_NUMBER() OVER (PARTITION BY organization_id
                                     ORDER BY turn, next_attempt_at, created_at) AS org_turn
                             FROM turns WHERE turn <= $7)
                         UPDATE notifications SET lease_owner = $1, lease_until = $2,
                             lease_token = ",
                        new_lease_token!(),
                        " WHERE id IN (
                             SELECT s.id FROM shared s
                             LEFT JOIN allowances a ON a.org = s.organization_id
                             LEFT JOIN slow_caps c ON c.org = s.organization_id
                             WHERE c.cap IS NULL OR s.org_turn <= c.cap
                             ORDER BY s.org_turn > COALESCE(a.allowance, $9), s.org_turn,
                                 s.next_attempt_at, s.created_at
                             LIMIT CAST($4 AS INTEGER))
                         RETURNING id, instance_id, organization_id, body, failed_attempts,
                             next_attempt_at, created_at, lease_token"
                    ))
                    .bind(&owner)
                    .bind(lease_until)
                    .bind(now)
                    .bind(i64::from(limit))
                    .bind(&skip)
                    .bind(fair_window(limit))
                    .bind(i64::from(per_instance))
                    .bind(&allowances)
                    .bind(share)
                    .bind(&looked_up)
                    .bind(&slow_caps)
                    .bind(claim_head(limit))
                    .fetch_all(&mut *conn)
                    .await?;
                    // The claimed batch's attempt rows, in the same write (see
                    // `Store::claim_and_begin_attempts`).
                    let begun = if begin && !rows.is_empty() {
                        let claims = rows
                            .iter()
                            .map(|row| Ok([row.try_get("id")?, row.try_get("lease_token")?]))
                            .collect::<Result<Vec<[String; 2]>>>()?;
                        begin_rows(conn, &claims, &owner, now).await?
                    } else {
                        Vec::new()
                    };
                    Ok((walk, rows, begun))
                })
            })
            .await?;
        let begun = begun
            .into_iter()
            .map(|(id, attempt)| (NotificationId(id), attempt))
            .collect();
        let mut claimed = rows
            .iter()
            .map(|row| {
                let due: i64 = row.try_get("next_attempt_at")?;
                let pending = PendingNotification {
                    id: NotificationId(row.try_get("id")?),
                    lease_token: LeaseToken(row.try_get("lease_token")?),
                    instance_id: InstanceId(row.try_get("instance_id")?),
                    organization_id: OrganizationId(row.try_get("organization_id")?),
                    body: packed::column(row, "body")?,
                    failed_attempts: count(row.try_get("failed_attempts")?)?,
                    created_at: timestamp(row.try_get("created_at")?)?,
                };
                Ok((due, pending))
            })
            .collect::<Result<Vec<_>>>()?;
        // RETURNING does not keep the subquery's order.
        claimed.sort_by_key(|(due, pending)| (*due, pending.created_at));
        Ok(NotificationClaim {
            notifications: claimed.into_iter().map(|(_, pending)| pending).collect(),
            begun,
            // The last row is the walk's last step (the rows come in the walk's order).
            walked_to: walk.last().map(|(org, _)| OrganizationId(*org)),
        })
    }

    pub async fn finish_attempt(&self, attempt: AttemptRecord) -> Result<()> {
        // Written with the results that arrive beside it (see `finish_batch`).
        let held = finish_batch::finish(&self.writer, &self.finishes, attempt).await?;
        if !held {
            return Err(StoreError::LeaseLost);
        }
        Ok(())
    }

    pub async fn begin_attempts(
        &self,
        claims: &[(NotificationId, LeaseToken)],
        owner: &str,
        at: Timestamp,
    ) -> Result<HashMap<NotificationId, i64>> {
        let claims: Vec<[String; 2]> = claims
            .iter()
            .map(|(id, token)| [id.0.clone(), token.0.clone()])
            .collect();
        let owner = owner.to_owned();
        let at = at.as_millisecond();
        let rows = self
            .writer
            .write_unguarded(move |conn| {
                Box::pin(async move { begin_rows(conn, &claims, &owner, at).await })
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, attempt)| (NotificationId(id), attempt))
            .collect())
    }

    pub async fn release_notification(
        &self,
        id: &NotificationId,
        token: &LeaseToken,
        due_at: Timestamp,
        begun: Option<i64>,
    ) -> Result<()> {
        let (id, token) = (id.0.clone(), token.0.clone());
        let released = self
            .writer
            .write(move |conn| {
                Box::pin(async move {
                    let released = sqlx::query(crate::deliveries::RELEASE_NOTIFICATION)
                        .bind(&id)
                        .bind(&token)
                        .bind(due_at.as_millisecond())
                        .execute(&mut *conn)
                        .await?
                        .rows_affected();
                    if released > 0
                        && let Some(begun) = begun
                    {
                        sqlx::query(crate::deliveries::FORGET_STARTED_ATTEMPT)
                            .bind(begun)
                            .bind(&id)
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(released)
                })
            })
            .await?;
        if released == 0 {
            return Err(StoreError::LeaseLost);
        }
        Ok(())
    }

    pub async fn next_notification_due(
        &self,
        skip: &[InstanceId],
        held_back: &[OrganizationId],
        now: Timestamp,
    ) -> Result<Option<Timestamp>> {
        let skip = serde_json::to_string(&skip.iter().map(|i| i.0).collect::<Vec<_>>())
            .map_err(|e| StoreError::Other(e.to_string()))?;
        let held_back = serde_json::to_string(&held_back.iter().map(|o| o.0).collect::<Vec<_>>())
            .map_err(|e| StoreError::Other(e.to_string()))?;
        // The head alone (`crate::deliveries::DUE_HEAD`): when it cannot tell, a second
        // from now.
        let row = sqlx::query(
            "WITH
             head AS (
                 SELECT instance_id, organization_id, next_attempt_at, lease_until
                 FROM notifications INDEXED BY notifications_by_due_in_order
                 WHERE status = 'pending' AND next_attempt_at IS NOT NULL
                 ORDER BY next_attempt_at, created_at
                 LIMIT CAST($3 AS INTEGER)),
             servable AS (
                 SELECT next_attempt_at, lease_until FROM head
                 WHERE instance_id NOT IN (SELECT value FROM json_each($1))
                   AND organization_id NOT IN (SELECT value FROM json_each($2))
                   AND instance_id NOT IN (SELECT id FROM instances WHERE disabled = 1))
             SELECT
                 (SELECT MIN(max(next_attempt_at, COALESCE(lease_until, next_attempt_at)))
                  FROM servable) AS due,
                 (SELECT COUNT(*) FROM head) < $3 OR EXISTS (
                     SELECT 1 FROM servable
                     WHERE lease_until IS NULL OR lease_until <= next_attempt_at) AS told",
        )
        .bind(&skip)
        .bind(&held_back)
        .bind(DUE_HEAD)
        .fetch_one(&self.readers)
        .await?;
        let (mut due, told): (Option<i64>, bool) = (row.try_get("due")?, row.try_get("told")?);
        if !told {
            let recheck = now.as_millisecond().saturating_add(CROWDED_RECHECK_MS);
            due = Some(due.map_or(recheck, |due| due.min(recheck)));
        }
        due.map(timestamp).transpose()
    }

    pub async fn delivery_backlog(&self, now: Timestamp) -> Result<Backlog> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS due, MIN(next_attempt_at) AS oldest FROM notifications
             WHERE status = 'pending' AND next_attempt_at <= $1
               AND (lease_until IS NULL OR lease_until <= $1)
               AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = notifications.instance_id
                   AND i.organization_id = notifications.organization_id AND i.disabled = 1)",
        )
        .bind(now.as_millisecond())
        .fetch_one(&self.readers)
        .await?;
        backlog(&row)
    }

    pub async fn queued_notifications(&self) -> Result<u64> {
        let queued: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM notifications WHERE status = 'queued'")
                .fetch_one(&self.readers)
                .await?;
        Ok(u64::try_from(queued).unwrap_or(0))
    }

    pub async fn notification(&self, id: &NotificationId) -> Result<Option<NotificationRow>> {
        let row = sqlx::query(notification_select!("WHERE id = $1"))
            .bind(&id.0)
            .fetch_optional(&self.readers)
            .await?;
        row.as_ref().map(notification_row).transpose()
    }

    pub async fn list_notifications(
        &self,
        instance: InstanceId,
        limit: u32,
    ) -> Result<Vec<NotificationRow>> {
        let rows = sqlx::query(notification_select!(
            "WHERE instance_id = $1 ORDER BY created_at DESC, id DESC LIMIT CAST($2 AS INTEGER)"
        ))
        .bind(instance.0)
        .bind(i64::from(limit))
        .fetch_all(&self.readers)
        .await?;
        rows.iter().map(notification_row).collect()
    }

    pub async fn list_attempts(&self, notification: &NotificationId) -> Result<Vec<AttemptRow>> {
        let rows = sqlx::query(
            "SELECT id, notification_id, attempted_at, status_code, latency_ms, error,
                 response_excerpt, outcome
             FROM delivery_attempts WHERE notification_id = $1 ORDER BY id",
        )
        .bind(&notification.0)
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AttemptRow {
                    id: row.try_get("id")?,
                    notification_id: NotificationId(row.try_get("notification_id")?),
                    attempted_at: timestamp(row.try_get("attempted_at")?)?,
                    status_code: row
                        .try_get::<Option<i64>, _>("status_code")?
                        .map(|code| {
                            u16::try_from(code).map_err(|_| super::corrupt("status_code", code))
                        })
                        .transpose()?,
                    latency_ms: row.try_get("latency_ms")?,
                    error: row.try_get("error")?,
                    response_excerpt: row.try_get("response_excerpt")?,
                    outcome: row.try_get("outcome")?,
                })
            })
            .collect()
    }
}

/// Records one delivery attempt and its consequence for the notification, fenced on the
/// claim's token: the notification's update is the fence (it matches only while the token is
/// current), so a late result writes nothing (and is `false`), and the attempt row follows.
/// One statement fewer than a separate check, and this runs once per delivery, so it runs
/// without a savepoint ([`super::writer::Writer::write_unguarded`]): its only failures are
/// SQL failures, which fail its batch.
/// Begins the attempt rows of `claims` (`[notification id, lease token]`) whose claims still
/// hold: `(notification id, attempt row id)` of each.
async fn begin_rows(
    conn: &mut SqliteConnection,
    claims: &[[String; 2]],
    owner: &str,
    at: i64,
) -> Result<Vec<(String, i64)>> {
    let claims = serde_json::to_string(claims).map_err(|e| StoreError::Other(e.to_string()))?;
    Ok(sqlx::query_as(
        "INSERT INTO delivery_attempts (notification_id, owner, attempted_at,
             latency_ms, outcome, organization_id)
         SELECT n.id, $2, $3, 0, 'started', n.organization_id
         FROM json_each($1) c CROSS JOIN notifications n
             ON n.id = c.value ->> 0 AND n.lease_token = c.value ->> 1
         RETURNING notification_id, id",
    )
    .bind(&claims)
    .bind(owner)
    .bind(at)
    .fetch_all(&mut *conn)
    .await?)
}

pub(super) async fn finish_attempt(
    conn: &mut SqliteConnection,
    attempt: AttemptRecord,
) -> Result<bool> {
    let at = attempt.attempted_at.as_millisecond();
    let outcome = attempt.outcome.as_str();
    let (id, token) = (&attempt.notification_id.0, &attempt.lease_token.0);
    let update = match attempt.outcome {
        AttemptOutcome::Delivered => sqlx::query_scalar(
            "UPDATE notifications SET status = 'delivered', delivered_at = $3,
                 next_attempt_at = NULL, lease_owner = NULL, lease_until = NULL,
                 lease_token = NULL
             WHERE id = $1 AND lease_token = $2
             RETURNING organization_id",
        )
        .bind(id)
        .bind(token)
        .bind(at),
        AttemptOutcome::RetryAt(next) => sqlx::query_scalar(
            "UPDATE notifications SET failed_attempts = failed_attempts + 1,
                 next_attempt_at = $3, lease_owner = NULL, lease_until = NULL,
                 lease_token = NULL
             WHERE id = $1 AND lease_token = $2
             RETURNING organization_id",
        )
        .bind(id)
        .bind(token)
        .bind(next.as_millisecond()),
        // A notification cancelled while in flight stays cancelled: its instance is gone.
        AttemptOutcome::Queued | AttemptOutcome::Deactivated => sqlx::query_scalar(
            "UPDATE notifications SET failed_attempts = failed_attempts + 1,
                 status = CASE WHEN status = 'cancelled' THEN status ELSE 'queued' END,
                 next_attempt_at = NULL, lease_owner = NULL, lease_until = NULL,
                 lease_token = NULL
             WHERE id = $1 AND lease_token = $2
             RETURNING organization_id",
        )
        .bind(id)
        .bind(token),
    };
    let held: Option<i64> = update.fetch_optional(&mut *conn).await?;
    let Some(organization) = held else {
        return Ok(false);
    };
    // The row begun before the POST is completed; without one, a row is begun now.
    let attempt_id =
        match attempt.attempt_id {
            Some(id) => id,
            None => sqlx::query_scalar(
                "INSERT INTO delivery_attempts (notification_id, owner, attempted_at, latency_ms,
                     outcome, organization_id)
                 VALUES ($1, $2, $3, 0, 'started', $4)
                 RETURNING id",
            )
            .bind(id)
            .bind(&attempt.owner)
            .bind(at)
            .bind(organization)
            .fetch_one(&mut *conn)
            .await?,
        };
    sqlx::query(
        "UPDATE delivery_attempts SET owner = $2, attempted_at = $3, status_code = $4,
             latency_ms = $5, error = $6, outcome = $7, response_excerpt = $8
         WHERE notification_id = $1 AND id = $9",
    )
    .bind(id)
    .bind(&attempt.owner)
    .bind(at)
    .bind(attempt.status_code.map(i64::from))
    .bind(attempt.latency_ms)
    .bind(&attempt.error)
    .bind(outcome)
    .bind(&attempt.response_excerpt)
    .bind(attempt_id)
    .execute(&mut *conn)
    .await?;
    if attempt.outcome == AttemptOutcome::Deactivated {
        // Queues the instance's other notifications that are not in flight; this one was
        // queued above.
        deactivate(conn, &attempt).await?;
    }
    Ok(true)
}

/// Deactivates the subscription of the attempt's instance and queues its other undelivered
/// notifications that are not in flight (those in flight are queued when their attempt ends, or
/// at their next claim).
async fn deactivate(conn: &mut SqliteConnection, attempt: &AttemptRecord) -> Result<()> {
    let reason = attempt
        .error
        .clone()
        .unwrap_or_else(|| "delivery failed".to_owned());
    sqlx::query(crate::deliveries::DEACTIVATE_SUBSCRIPTION)
        .bind(&attempt.notification_id.0)
        .bind(attempt.attempted_at.as_millisecond())
        .bind(&reason)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "UPDATE notifications SET status = 'queued', next_attempt_at = NULL
         WHERE status = 'pending' AND (lease_until IS NULL OR lease_until <= $2)
           AND instance_id = (SELECT instance_id FROM notifications WHERE id = $1)",
    )
    .bind(&attempt.notification_id.0)
    .bind(attempt.attempted_at.as_millisecond())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(super) fn notification_row(row: &SqliteRow) -> Result<NotificationRow> {
    Ok(NotificationRow {
        id: NotificationId(row.try_get("id")?),
        instance_id: InstanceId(row.try_get("instance_id")?),
        body: packed::column(row, "body")?,
        status: row.try_get("status")?,
        failed_attempts: count(row.try_get("failed_attempts")?)?,
        next_attempt_at: optional_timestamp(row, "next_attempt_at")?,
        created_at: timestamp(row.try_get("created_at")?)?,
        delivered_at: optional_timestamp(row, "delivered_at")?,
        replay_of: row
            .try_get::<Option<String>, _>("replay_of")?
            .map(NotificationId),
    })
}
