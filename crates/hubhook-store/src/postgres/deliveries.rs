//! SQL of notifications (claims, attempts) and the attempt history.

use std::collections::HashMap;

use hubhook_core::{InstanceId, NotificationId};
use jiff::Timestamp;
use sqlx::Row as _;
use sqlx::postgres::{PgConnection, PgRow};

use super::{
    PostgresStore, backlog, count, duration_ms, new_lease_token, optional_timestamp, timestamp,
};
use crate::deliveries::{
    CROWDED_RECHECK_MS, ClaimAsk, DUE_HEAD, LOOKED_UP_ORGANIZATIONS, VISITED_ORGANIZATIONS,
    claim_head, fair_window,
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

impl PostgresStore {
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
        let skip: Vec<i64> = skip.iter().map(|i| i.0).collect();
        let (allowance_orgs, allowance_counts): (Vec<i64>, Vec<i64>) =
            shares.allowances().into_iter().unzip();
        let (slow_orgs, slow_caps): (Vec<i64>, Vec<i64>) = shares.slow_caps().into_iter().unzip();
        let share = i64::from(shares.share);
        let start = shares.walk_start();
        let park = self.parking.due(now);
        let now = now.as_millisecond();
        let lease_until = now.saturating_add(duration_ms(lease));
        let (walk, rows, begun) = self
            .write(move |conn| {
                Box::pin(async move {
                    // First (at most once a second: `Parking`), alone, so that it takes its
                    // locks before any other: parks what is pending for a disabled instance
                    // (`crate::deliveries`, "Paused notifications"): what reached one since
                    // it was disabled (a failed attempt's retry, a redelivery, a poll that
                    // was running). Driven from the few disabled instances with something to
                    // park, one seek each. The instance is locked FOR SHARE: an enable that
                    // commits meanwhile (it updates the instance, then brings its
                    // notifications back) either waits for this claim, and then brings back
                    // what it parked, or makes this claim wait and re-read the instance,
                    // enabled. Without the lock, a claim that read the instance before the
                    // enable committed would park what the enable had just brought back.
                    // SKIP LOCKED: two nodes parking at once take different rows. In the same
                    // statement (other rows: those of enabled instances), what is parked for
                    // an instance that is enabled comes back: an enable by a node of an older
                    // version (during a rolling upgrade) does not know parking, and nothing
                    // else would make those due again. Driven from the few instances with
                    // parked notifications (a walk of `notifications_parked`).
                    if park {
                        sqlx::query(
                            "WITH RECURSIVE
                             parked(instance_id) AS (
                                 SELECT (SELECT instance_id FROM notifications
                                         WHERE status = 'pending' AND next_attempt_at IS NULL
                                           AND paused_due_at IS NOT NULL
                                         ORDER BY instance_id LIMIT 1)
                                 UNION ALL
                                 SELECT (SELECT n.instance_id FROM notifications n
                                         WHERE n.status = 'pending' AND n.next_attempt_at IS NULL
                                           AND n.paused_due_at IS NOT NULL
                                           AND n.instance_id > p.instance_id
                                         ORDER BY n.instance_id LIMIT 1)
                                 FROM parked p WHERE p.instance_id IS NOT NULL),
                             unparked AS (
                                 UPDATE notifications SET next_attempt_at = paused_due_at,
                                     paused_due_at = NULL
                                 WHERE status = 'pending' AND next_attempt_at IS NULL
                                   AND paused_due_at IS NOT NULL
                                   AND instance_id IN (
                                       SELECT p.instance_id FROM parked p
                                       JOIN instances i ON i.id = p.instance_id
                                       WHERE NOT i.disabled))
                             UPDATE notifications SET paused_due_at = next_attempt_at,
                                 next_attempt_at = NULL
                             WHERE id IN (
                                 SELECT n.id FROM notifications n
                                 WHERE n.instance_id IN (
                                         SELECT i.id FROM instances i
                                         WHERE i.disabled AND EXISTS (
                                             SELECT 1 FROM notifications m
                                             WHERE m.instance_id = i.id AND m.status = 'pending'
                                               AND m.next_attempt_at IS NOT NULL
                                               AND (m.lease_until IS NULL OR m.lease_until <= $1))
                                         FOR SHARE OF i)
                                   AND n.status = 'pending' AND n.next_attempt_at IS NOT NULL
                                   AND (n.lease_until IS NULL OR n.lease_until <= $1)
                                 FOR UPDATE OF n SKIP LOCKED)",
                        )
                        .bind(now)
                        .execute(&mut *conn)
                        .await?;
                    }
                    // One statement, one round trip: `queued` queues the notifications of a
                    // deactivated subscription instead of trying them (driven from the few
                    // deactivated instances), and the rest is the walk of the organizations
                    // (see `OrganizationShares`). The walk sees the notifications as they were
                    // before `queued` (one snapshot for the whole statement), so it may count an
                    // organization whose only due work was just queued; the claim then finds
                    // nothing there, once. From the organization after $2, each step seeks the
                    // next organization id with pending notifications in
                    // `notifications_pending_by_organization`, up to the highest and then from
                    // the lowest up to $2, and tells whether the organization it leaves
                    // (`prev`) can be served (`counts`: not at its share, and a due
                    // notification that is not leased and whose instance is neither skipped
                    // nor disabled), so that each is one subquery;
                    // it stops after $7 organizations visited or $6 counted. Each organization
                    // counted, and the last visited (where the next claim's walk starts), comes
                    // back as a row, in the walk's order. Whether an organization can be
                    // served is the first such notification in its due order (a scalar
                    // subquery with ORDER BY, which the planner must answer from
                    // `notifications_pending_by_organization`), not an EXISTS: PostgreSQL
                    // drops an EXISTS's ORDER BY and LIMIT, and a custom plan then took a
                    // sequential scan, expecting thousands of matches spread over the table,
                    // where one organization's rows are stored together: 1.9 ms an
                    // organization beside 20,000 (docs/benchmarks.md, "Eighteenth round").
                    // The walk and the claim run on generic plans, planned once per
                    // connection: planning them anew for every claim (PostgreSQL's custom
                    // plans, which it kept choosing for these statements) cost 1–1.6 ms each,
                    // most of a claim. Both are written so that any plan is a walk of indexes
                    // in due order and of primary keys (ORDER BY .. LIMIT subqueries, LATERAL
                    // lookups), so knowing `now` or the limits would not change the plan.
                    // LOCAL: the rest of the node's statements keep the default.
                    sqlx::raw_sql("SET LOCAL plan_cache_mode = force_generic_plan")
                        .execute(&mut *conn)
                        .await?;
                    let walk: Vec<(i64, bool)> = sqlx::query_as(
                        "WITH RECURSIVE
                         queued AS (
                             UPDATE notifications n SET status = 'queued',
                                 next_attempt_at = NULL
                             FROM delivery_subscriptions d
                             WHERE n.instance_id = d.instance_id
                               AND n.organization_id = d.organization_id
                               AND n.status = 'pending' AND n.next_attempt_at <= $1
                               AND (n.lease_until IS NULL OR n.lease_until <= $1)),
                         skipped_orgs(org) AS (
                             SELECT DISTINCT organization_id FROM instances WHERE id = ANY($5)),
                         head AS (
                             SELECT instance_id, organization_id, lease_until FROM notifications
                             WHERE status = 'pending' AND next_attempt_at <= $1
                             ORDER BY next_attempt_at, created_at
                             LIMIT $8),
                         crowded(yes) AS (
                             SELECT COUNT(*) = $8 AND COUNT(*) FILTER (WHERE
                                     (lease_until IS NULL OR lease_until <= $1)
                                     AND instance_id <> ALL($5)
                                     AND instance_id NOT IN (
                                         SELECT id FROM instances WHERE disabled)
                                     AND organization_id NOT IN (
                                         SELECT org FROM unnest($10::bigint[], $11::bigint[])
                                             c(org, cap)
                                         WHERE cap <= 0)) < $9
                             FROM head),
                         at_share(org) AS (
                             SELECT org FROM unnest($3::bigint[], $4::bigint[]) a(org, allowance)
                             WHERE allowance <= 0 AND NOT (SELECT yes FROM crowded)),
                         walk(org, prev, counts, counted, visited) AS (
                             SELECT COALESCE(
                                     (SELECT organization_id FROM notifications
                                      WHERE status = 'pending' AND organization_id > $2
                                      ORDER BY organization_id LIMIT 1),
                                     (SELECT organization_id FROM notifications
                                      WHERE status = 'pending'
                                      ORDER BY organization_id LIMIT 1)),
                                 NULL::bigint, 0, 0, 0
                             UNION ALL
                             SELECT COALESCE(
                                     (SELECT organization_id FROM notifications
                                      WHERE status = 'pending' AND organization_id > w.org
                                        AND organization_id <= CASE WHEN w.org > $2
                                            THEN 9223372036854775807 ELSE $2 END
                                      ORDER BY organization_id LIMIT 1),
                                     (SELECT organization_id FROM notifications
                                      WHERE status = 'pending' AND organization_id <= $2
                                        AND w.org > $2
                                      ORDER BY organization_id LIMIT 1)),
                                 w.org,
                                 CASE
                                     WHEN w.org IN (SELECT org FROM at_share) THEN 0
                                     WHEN w.org IN (SELECT org FROM skipped_orgs) THEN
                                         CASE WHEN EXISTS (
                                             SELECT 1 FROM (
                                                 SELECT instance_id, lease_until
                                                 FROM notifications
                                                 WHERE status = 'pending'
                                                   AND organization_id = w.org
                                                   AND next_attempt_at <= $1
                                                 ORDER BY next_attempt_at, created_at
                                                 LIMIT $8) h
                                             WHERE (h.lease_until IS NULL
                                                     OR h.lease_until <= $1)
                                               AND h.instance_id <> ALL($5)
                                               AND h.instance_id NOT IN (
                                                   SELECT id FROM instances WHERE disabled))
                                         OR (SELECT COUNT(*) FROM (
                                                 SELECT 1 FROM notifications
                                                 WHERE status = 'pending'
                                                   AND organization_id = w.org
                                                   AND next_attempt_at <= $1
                                                 ORDER BY next_attempt_at, created_at
                                                 LIMIT $8) c) = $8
                                         AND EXISTS (
                                             SELECT 1 FROM instances i
                                             WHERE i.organization_id = w.org AND NOT i.disabled
                                               AND i.id <> ALL($5)
                                               AND EXISTS (
                                                   SELECT 1 FROM notifications n
                                                   WHERE n.instance_id = i.id
                                                     AND n.status = 'pending'
                                                     AND n.next_attempt_at <= $1
                                                     AND (n.lease_until IS NULL
                                                         OR n.lease_until <= $1)))
                                         THEN 1 ELSE 0 END
                                     WHEN (
                                         SELECT n.next_attempt_at FROM notifications n
                                         WHERE n.status = 'pending'
                                           AND n.organization_id = w.org
                                           AND n.next_attempt_at <= $1
                                           AND (n.lease_until IS NULL OR n.lease_until <= $1)
                                           AND n.instance_id <> ALL($5)
                                           AND NOT EXISTS (SELECT 1 FROM instances i
                                               WHERE i.id = n.instance_id
                                                 AND i.organization_id = n.organization_id
                                                 AND i.disabled)
                                         ORDER BY n.next_attempt_at
                                         LIMIT 1) IS NOT NULL
                                     THEN 1 ELSE 0 END,
                                 w.counted + w.counts, w.visited + 1
                             FROM walk w
                             WHERE w.org IS NOT NULL AND w.visited < $7
                               AND w.counted + w.counts < $6)
                         SELECT prev AS organization_id, counts = 1 AS counts FROM walk
                         WHERE visited > 0
                           AND (counts = 1 OR visited = (SELECT MAX(visited) FROM walk))
                         ORDER BY visited",
                    )
                    .bind(now)
                    .bind(start)
                    .bind(&allowance_orgs)
                    .bind(&allowance_counts)
                    .bind(&skip)
                    .bind(LOOKED_UP_ORGANIZATIONS)
                    .bind(VISITED_ORGANIZATIONS)
                    .bind(claim_head(limit))
                    .bind(fair_window(limit))
                    .bind(&slow_orgs)
                    .bind(&slow_caps)
                    .fetch_all(&mut *conn)
                    .await?;
                    let looked_up: Vec<i64> = walk
                        .iter()
                        .filter(|(_, counts)| *counts)
                        .map(|(org, _)| *org)
                        .collect();
                    // The claim: the candidates are the window of the oldest due (`oldest`,
                    // the head read in due order up to `claim_head`, stopping at the window's
                    // size: no second ORDER BY, which would sort the whole head first), the
                    // oldest due of each organization the walk counted (`looked_up`, one seek
                    // each in `notifications_pending_by_organization`), and for organizations
                    // with a skipped instance their own head (`looked_up_in_head`) or, when
                    // that is crowded too, their instances one by one (`looked_up_by_instance`).
                    // They are ranked in turns per instance, then per organization, and an
                    // organization's turns past its allowance come last; an organization with
                    // slow POSTs takes none past its cap (`OrganizationShares::slow`).
                    // Candidates are read from the indexes as they are, and only the chosen
                    // are locked (`locked`): FOR UPDATE SKIP LOCKED, one primary-key lookup
                    // each, re-checking that each is still pending, due and unleased (in READ
                    // COMMITTED a row changed since the statement's snapshot is re-read at its
                    // latest version), so nodes claiming at once take different rows. A chosen
                    // row another node holds is skipped, not replaced: the claim takes fewer,
                    // never a wrong one. Locking every candidate instead (4 times the claim,
                    // `fair_window`) cost 0.04 ms a row; and the lookup by id inside a LATERAL
                    // with FOR UPDATE cannot be merged into a join, so no plan can hash the
                    // chosen against every pending notification, which a generic plan did
                    // (docs/benchmarks.md, "Eighteenth round").
                    let rows = sqlx::query(concat!(
                        "WITH
                         allowances(org, allowance) AS (
                             SELECT * FROM unnest($8::bigint[], $9::bigint[])),
                         organizations_(org) AS (SELECT unnest($11::bigint[])),
                         slow_caps(org, cap) AS (
                             SELECT * FROM unnest($12::bigint[], $13::bigint[])),
                         skipped_orgs(org) AS (
                             SELECT DISTINCT organization_id FROM instances WHERE id = ANY($5)),
                         org_heads AS (
                             SELECT o.org, h.id, h.instance_id, h.next_attempt_at, h.created_at,
                                 (h.lease_until IS NULL OR h.lease_until <= $3)
                                 AND h.instance_id <> ALL($5)
                                 AND h.instance_id NOT IN (
                                     SELECT id FROM instances WHERE disabled) AS servable
                             FROM skipped_orgs o CROSS JOIN LATERAL (
                                 SELECT id, instance_id, lease_until, next_attempt_at,
                                     created_at
                                 FROM notifications
                                 WHERE status = 'pending' AND organization_id = o.org
                                   AND next_attempt_at <= $3
                                 ORDER BY next_attempt_at, created_at
                                 LIMIT $14) h
                             WHERE o.org IN (SELECT org FROM organizations_)),
                         crowded_orgs(org) AS (
                             SELECT org FROM org_heads GROUP BY org
                             HAVING COUNT(*) = $14 AND COUNT(*) FILTER (WHERE servable) < $4),
                         oldest AS (
                             SELECT h.id, h.instance_id, h.organization_id, h.next_attempt_at,
                                 h.created_at
                             FROM (
                                 SELECT id, instance_id, organization_id, lease_until,
                                     next_attempt_at, created_at
                                 FROM notifications
                                 WHERE status = 'pending' AND next_attempt_at <= $3
                                 ORDER BY next_attempt_at, created_at
                                 LIMIT $14) h
                             WHERE (h.lease_until IS NULL OR h.lease_until <= $3)
                               AND h.instance_id <> ALL($5)
                               AND h.instance_id NOT IN (
                                   SELECT id FROM instances WHERE disabled)
                               AND h.organization_id NOT IN (
                                   SELECT org FROM slow_caps WHERE cap <= 0)
                             LIMIT $6),
                         looked_up_by_instance AS (
                             SELECT p.* FROM crowded_orgs c CROSS JOIN LATERAL (
                                 SELECT f.id, f.instance_id, f.organization_id,
                                     f.next_attempt_at, f.created_at
                                 FROM instances i CROSS JOIN LATERAL (
                                     SELECT id, instance_id, organization_id, next_attempt_at,
                                         created_at
                                     FROM notifications
                                     WHERE instance_id = i.id AND status = 'pending'
                                       AND next_attempt_at <= $3
                                       AND (lease_until IS NULL OR lease_until <= $3)
                                     ORDER BY next_attempt_at
                                     LIMIT $4) f
                                 WHERE i.organization_id = c.org AND NOT i.disabled
                                   AND i.id <> ALL($5)
                                 ORDER BY f.next_attempt_at, f.created_at
                                 LIMIT $4) p),
                         looked_up_in_head AS (
                             SELECT id, instance_id, organization_id, next_attempt_at,
                                 created_at
                             FROM (
                                 SELECT id, instance_id, org AS organization_id,
                                     next_attempt_at, created_at,
                                     ROW_NUMBER() OVER (PARTITION BY org
                                         ORDER BY next_attempt_at, created_at) AS k
                                 FROM org_heads WHERE servable) ranked
                             WHERE k <= $4),
                         looked_up AS (
                             SELECT l.* FROM organizations_ o CROSS JOIN LATERAL (
                                 SELECT id, instance_id, organization_id, next_attempt_at,
                                     created_at
                                 FROM notifications
                                 WHERE status = 'pending' AND organization_id = o.org
                                   AND next_attempt_at <= $3
                                   AND (lease_until IS NULL OR lease_until <= $3)
                                   AND instance_id <> ALL($5)
                                   AND NOT EXISTS (SELECT 1 FROM instances i
                                       WHERE i.id = notifications.instance_id
                                         AND i.organization_id = notifications.organization_id
                                         AND i.disabled)
                                 ORDER BY next_attempt_at, created_at
                                 LIMIT $4) l
                             WHERE o.org NOT IN (SELECT org FROM skipped_orgs)),
                         candidates AS (
                             SELECT * FROM oldest UNION SELECT * FROM looked_up
                             UNION SELECT * FROM looked_up_in_head
                             UNION SELECT * FROM looked_up_by_instance),
                         turns AS (
                             SELECT id, instance_id, organization_id, next_attempt_at,
                                 created_at,
                                 ROW_NUMBER() OVER (PARTITION BY instance_id
                                     ORDER BY next_attempt_at, created_at) AS turn
                             FROM candidates),
                         shared AS (
                             SELECT id, organization_id, next_attempt_at, created_at,
                                 ROW_NUMBER() OVER (PARTITION BY organization_id
                                     ORDER BY turn, next_attempt_at, created_at) AS org_turn
                             FROM turns WHERE turn <= $7),
                         chosen AS (
                             SELECT s.id FROM shared s
                             LEFT JOIN allowances a ON a.org = s.organization_id
                             LEFT JOIN slow_caps c ON c.org = s.organization_id
                             WHERE c.cap IS NULL OR s.org_turn <= c.cap
                             ORDER BY s.org_turn > COALESCE(a.allowance, $10), s.org_turn,
                                 s.next_attempt_at, s.created_at
                             LIMIT $4),
                         locked AS (
                             SELECT l.id FROM chosen c CROSS JOIN LATERAL (
                                 SELECT n.id FROM notifications n
                                 WHERE n.id = c.id AND n.status = 'pending'
                                   AND n.next_attempt_at <= $3
                                   AND (n.lease_until IS NULL OR n.lease_until <= $3)
                                 FOR UPDATE SKIP LOCKED) l)
                         UPDATE notifications n SET lease_owner = $1, lease_until = $2,
                             lease_token = ",
                        new_lease_token!(),
                        " FROM locked WHERE n.id = locked.id
                         RETURNING n.id, n.instance_id, n.organization_id, n.body,
                             n.failed_attempts, n.next_attempt_at, n.created_at, n.lease_token"
                    ))
                    .bind(&owner)
                    .bind(lease_until)
                    .bind(now)
                    .bind(i64::from(limit))
                    .bind(&skip)
                    .bind(fair_window(limit))
                    .bind(i64::from(per_instance))
                    .bind(&allowance_orgs)
                    .bind(&allowance_counts)
                    .bind(share)
                    .bind(&looked_up)
                    .bind(&slow_orgs)
                    .bind(&slow_caps)
                    .bind(claim_head(limit))
                    .fetch_all(&mut *conn)
                    .await?;
                    // The claimed batch's attempt rows, in the same transaction (see
                    // `Store::claim_and_begin_attempts`).
                    let begun = if begin && !rows.is_empty() {
                        let ids = rows
                            .iter()
                            .map(|row| row.try_get("id"))
                            .collect::<Result<Vec<String>, _>>()?;
                        let tokens = rows
                            .iter()
                            .map(|row| row.try_get("lease_token"))
                            .collect::<Result<Vec<String>, _>>()?;
                        begin_rows(conn, &ids, &tokens, &owner, now).await?
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
                    body: row.try_get("body")?,
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
        // Written with the results that arrive beside it (see `crate::finish_queue`).
        if !self.finish_queued(attempt).await? {
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
        let ids: Vec<String> = claims.iter().map(|(id, _)| id.0.clone()).collect();
        let tokens: Vec<String> = claims.iter().map(|(_, token)| token.0.clone()).collect();
        let owner = owner.to_owned();
        let at = at.as_millisecond();
        let rows = self
            .write(move |conn| {
                Box::pin(async move { begin_rows(conn, &ids, &tokens, &owner, at).await })
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
        let skip: Vec<i64> = skip.iter().map(|i| i.0).collect();
        let held_back: Vec<i64> = held_back.iter().map(|o| o.0).collect();
        // The head alone (`crate::deliveries::DUE_HEAD`): when it cannot tell, a second
        // from now.
        let (mut due, told): (Option<i64>, bool) = sqlx::query_as(
            "WITH
             head AS (
                 SELECT instance_id, organization_id, next_attempt_at, lease_until
                 FROM notifications
                 WHERE status = 'pending' AND next_attempt_at IS NOT NULL
                 ORDER BY next_attempt_at, created_at
                 LIMIT $3),
             servable AS (
                 SELECT next_attempt_at, lease_until FROM head
                 WHERE instance_id <> ALL($1) AND organization_id <> ALL($2)
                   AND instance_id NOT IN (SELECT id FROM instances WHERE disabled))
             SELECT
                 (SELECT MIN(GREATEST(next_attempt_at, COALESCE(lease_until, next_attempt_at)))
                  FROM servable),
                 (SELECT COUNT(*) FROM head) < $3 OR EXISTS (
                     SELECT 1 FROM servable
                     WHERE lease_until IS NULL OR lease_until <= next_attempt_at)",
        )
        .bind(&skip)
        .bind(&held_back)
        .bind(DUE_HEAD)
        .fetch_one(&self.pool)
        .await?;
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
                   AND i.organization_id = notifications.organization_id AND i.disabled)",
        )
        .bind(now.as_millisecond())
        .fetch_one(&self.pool)
        .await?;
        backlog(&row)
    }

    pub async fn queued_notifications(&self) -> Result<u64> {
        let queued: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM notifications WHERE status = 'queued'")
                .fetch_one(&self.pool)
                .await?;
        Ok(u64::try_from(queued).unwrap_or(0))
    }

    pub async fn notification(&self, id: &NotificationId) -> Result<Option<NotificationRow>> {
        let row = sqlx::query(notification_select!("WHERE id = $1"))
            .bind(&id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(notification_row).transpose()
    }

    pub async fn list_notifications(
        &self,
        instance: InstanceId,
        limit: u32,
    ) -> Result<Vec<NotificationRow>> {
        let rows = sqlx::query(notification_select!(
            "WHERE instance_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
        ))
        .bind(instance.0)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
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
        .fetch_all(&self.pool)
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
/// claim's token.
/// Begins the attempt rows of the claims (`ids[i]` under `tokens[i]`) that still hold:
/// `(notification id, attempt row id)` of each.
async fn begin_rows(
    conn: &mut PgConnection,
    ids: &[String],
    tokens: &[String],
    owner: &str,
    at: i64,
) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "INSERT INTO delivery_attempts (notification_id, owner, attempted_at,
             latency_ms, outcome, organization_id)
         SELECT n.id, $3, $4, 0, 'started', n.organization_id
         FROM notifications n
         JOIN unnest($1::text[], $2::text[]) AS c(id, token)
             ON n.id = c.id AND n.lease_token = c.token
         ORDER BY n.id
         FOR UPDATE OF n
         RETURNING notification_id, id",
    )
    .bind(ids)
    .bind(tokens)
    .bind(owner)
    .bind(at)
    .fetch_all(&mut *conn)
    .await?)
}

/// One result in the caller's transaction; `Ok(false)`, with nothing written, when its lease
/// no longer held (found by the first statement, so the transaction can go on).
pub(super) async fn finish_attempt(
    conn: &mut PgConnection,
    attempt: AttemptRecord,
) -> Result<bool> {
    // FOR UPDATE holds the row until commit: no claim can take it between check and write.
    let held: Option<i64> = sqlx::query_scalar(
        "SELECT organization_id FROM notifications WHERE id = $1 AND lease_token = $2
         FOR UPDATE",
    )
    .bind(&attempt.notification_id.0)
    .bind(&attempt.lease_token.0)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(organization) = held else {
        return Ok(false);
    };
    let at = attempt.attempted_at.as_millisecond();
    let outcome = attempt.outcome.as_str();
    // The row begun before the POST is completed; without one, a row is begun now.
    let id =
        match attempt.attempt_id {
            Some(id) => id,
            None => sqlx::query_scalar(
                "INSERT INTO delivery_attempts (notification_id, owner, attempted_at, latency_ms,
                     outcome, organization_id)
                 VALUES ($1, $2, $3, 0, 'started', $4)
                 RETURNING id",
            )
            .bind(&attempt.notification_id.0)
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
    .bind(&attempt.notification_id.0)
    .bind(&attempt.owner)
    .bind(at)
    .bind(attempt.status_code.map(i64::from))
    .bind(attempt.latency_ms)
    .bind(&attempt.error)
    .bind(outcome)
    .bind(&attempt.response_excerpt)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    if attempt.outcome == AttemptOutcome::Deactivated {
        deactivate(conn, &attempt).await?;
    }
    let update = match attempt.outcome {
        AttemptOutcome::Delivered => sqlx::query(
            "UPDATE notifications SET status = 'delivered', delivered_at = $2,
                 next_attempt_at = NULL, lease_owner = NULL, lease_until = NULL,
                 lease_token = NULL
             WHERE id = $1",
        )
        .bind(&attempt.notification_id.0)
        .bind(at),
        AttemptOutcome::RetryAt(next) => sqlx::query(
            "UPDATE notifications SET failed_attempts = failed_attempts + 1,
                 next_attempt_at = $2, lease_owner = NULL, lease_until = NULL,
                 lease_token = NULL
             WHERE id = $1",
        )
        .bind(&attempt.notification_id.0)
        .bind(next.as_millisecond()),
        // A notification cancelled while in flight stays cancelled: its instance is gone.
        AttemptOutcome::Queued | AttemptOutcome::Deactivated => sqlx::query(
            "UPDATE notifications SET failed_attempts = failed_attempts + 1,
                 status = CASE WHEN status = 'cancelled' THEN status ELSE 'queued' END,
                 next_attempt_at = NULL, lease_owner = NULL, lease_until = NULL,
                 lease_token = NULL
             WHERE id = $1",
        )
        .bind(&attempt.notification_id.0),
    };
    update.execute(&mut *conn).await?;
    Ok(true)
}

/// Deactivates the subscription of the attempt's instance and queues its other undelivered
/// notifications that are not in flight (those in flight are queued when their attempt ends, or
/// at their next claim).
async fn deactivate(conn: &mut PgConnection, attempt: &AttemptRecord) -> Result<()> {
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

pub(super) fn notification_row(row: &PgRow) -> Result<NotificationRow> {
    Ok(NotificationRow {
        id: NotificationId(row.try_get("id")?),
        instance_id: InstanceId(row.try_get("instance_id")?),
        body: row.try_get("body")?,
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
