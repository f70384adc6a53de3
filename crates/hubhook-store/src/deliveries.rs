//! Notifications (the outbox rows) and their delivery attempts.
//!
//! # Paused notifications
//!
//! A disabled instance keeps its notifications, and none is tried until it is enabled again
//! (docs/behaviour.md). Leaving them `pending` and due, as they were, made every claim read past
//! them: the claim's window, its walk of the organizations and each organization's lookup scan
//! due notifications in due order and drop a disabled instance's one by one, so a disabled
//! instance holding 20,000 cost each claim about 13 ms on SQLite, against 0.45 ms without them
//! (docs/benchmarks.md, "Seventeenth round"), on the one writer thread.
//!
//! So they are *parked*: still `pending` (every listing, count and filter reads them as
//! before), their due time moved from `next_attempt_at` to `paused_due_at` and
//! `next_attempt_at` NULL. Every scan of due notifications asks `next_attempt_at <= now`,
//! which NULL never satisfies, and in the indexes that lead with the status (or the
//! organization) and then the due time, the range starts past the NULLs: the scans no longer
//! meet them at all. Displays read `COALESCE(next_attempt_at, paused_due_at)`, so a parked
//! notification shows the due time it had.
//!
//! Why nothing is lost or tried early:
//! - Disabling parks the instance's pending notifications; enabling moves every parked one
//!   back (`next_attempt_at = paused_due_at`), so each is due when it was, and the order among
//!   them (due time, then creation) is kept.
//! - On SQLite they are moved in parts of [`PARK_PART`], each a write of its own that checks
//!   the instance is still in the state it moves them for: the one writer is every tenant's,
//!   and disabling an instance holding 200,000 in one write held it, and with it every other
//!   organization's claims, polls and attempt results, for 1.0 to 1.9 s (docs/benchmarks.md,
//!   "Twenty-first round"). Between two parts some are parked and some not, which is only
//!   about cost: the claims leave a disabled instance's notifications out whether or not they
//!   are parked, and an enabled instance's parked ones come back in the order they were stored,
//!   oldest first. On PostgreSQL a disable or an enable stays one transaction: other writers
//!   do not wait for its locks (they are on this instance's notifications, which no other
//!   tenant's claim takes), and the claims' parking step relies on it (below). Another
//!   instance's claims there are slowed by the churn of the rows, not by the transaction:
//!   moving them in parts was tried, and it shortened the longest claim during an enable of
//!   200,000 (65–101 ms against 284–660) but not during a disable (226–325 against 32–328),
//!   with more claims over 50 ms (docs/benchmarks.md, "Twenty-first round"), so it was not
//!   kept.
//! - A redelivery or a replay into a disabled instance parks what it brings back itself, due
//!   at its own time, reading the instance's flag in its own write (so an enable either comes
//!   first, and they are due, or brings them back).
//! - What else reaches a disabled instance later (the retry of an attempt that was in flight,
//!   the commit of a poll that was running) is parked by a later claim: a claim
//!   (at most one a second on each node, `PARK_EVERY_MS`) first parks the unleased, unparked
//!   pending notifications of disabled instances, driven from the few disabled instances (a
//!   partial index), so that costs nothing when there is nothing to park. Until then the
//!   claim's filters still leave them out, as before, so parking is only ever about cost.
//! - Leased notifications are never parked: their attempt ends as it would have, and a retry
//!   is parked by a later claim.
//! - Cancelling (an instance deleted) clears `paused_due_at`, and redelivering sets it only
//!   while the instance is disabled, so it never outlives the parking.
//! - On PostgreSQL, an enable and a claim parking at once cannot leave a row parked for an
//!   enabled instance: the claim's parking locks the disabled instance's row FOR SHARE, and
//!   the enable updates that row before it moves the notifications back, so one waits for the
//!   other (see the claim).
//! - Whatever is parked for an enabled instance all the same (an enable by a node of an older
//!   version during a rolling upgrade, which only sets `disabled`) is brought back by the same
//!   step of a later claim, within a second, driven from the few instances with parked
//!   notifications (`notifications_parked`): parking can delay a notification, never strand
//!   it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use hubhook_core::{InstanceId, NotificationId};
use jiff::Timestamp;

use crate::{
    AttemptRecord, AttemptRow, Backlog, LeaseToken, NotificationRow, OrganizationId,
    PendingNotification, Result, Store, StoreError, on_backend,
};

/// Parks one instance's pending notifications that are not leased ("Paused notifications"),
/// as disabling it does on PostgreSQL (SQLite parks in parts); `$1` the instance, `$2` now.
pub(crate) const PARK_INSTANCE: &str = "UPDATE notifications SET paused_due_at = next_attempt_at,
         next_attempt_at = NULL
     WHERE instance_id = $1 AND status = 'pending' AND next_attempt_at IS NOT NULL
       AND (lease_until IS NULL OR lease_until <= $2)";

/// Brings one instance's parked notifications back with their due times, as enabling it does
/// on PostgreSQL (SQLite brings them back in parts); `$1` the instance.
pub(crate) const UNPARK_INSTANCE: &str = "UPDATE notifications SET next_attempt_at = paused_due_at,
         paused_due_at = NULL
     WHERE instance_id = $1 AND status = 'pending' AND next_attempt_at IS NULL
       AND paused_due_at IS NOT NULL";

/// Gives a claimed notification back (`$1` its id, `$2` the claim's lease token), due again at
/// `$3`. Given back into a subscription deactivated meanwhile (its attempt waited beside the
/// one that deactivated it), it is queued as the others were, not left due when the
/// receiver's breaker closes again. One cancelled by a delete meanwhile (it keeps its lease)
/// stays cancelled, whether or not a deactivation is there (a delete takes it away).
pub(crate) const RELEASE_NOTIFICATION: &str =
    "UPDATE notifications SET lease_owner = NULL, lease_until = NULL, lease_token = NULL,
         status = CASE WHEN d.instance_id IS NULL OR status = 'cancelled' THEN status
             ELSE 'queued' END,
         next_attempt_at = CASE WHEN status = 'cancelled' THEN next_attempt_at
             WHEN d.instance_id IS NULL THEN $3
             ELSE NULL END
     FROM (SELECT n.id, s.instance_id FROM notifications n
           LEFT JOIN delivery_subscriptions s ON s.instance_id = n.instance_id
           WHERE n.id = $1) AS d
     WHERE notifications.id = $1 AND d.id = $1 AND lease_token = $2";

/// Removes the `started` attempt row (`$1`) of a notification (`$2`) given back before its
/// POST left: no receiver saw it.
pub(crate) const FORGET_STARTED_ATTEMPT: &str = "DELETE FROM delivery_attempts
     WHERE id = $1 AND notification_id = $2 AND outcome = 'started'";

/// Deactivates the subscription of the instance of notification `$1` at `$2` for reason
/// `$3`, if it is not already. Only for an instance that is still there: a delete keeps the
/// lease of a notification in flight, whose attempt may end after the delete took the
/// instance's row (and its deactivation) away.
pub(crate) const DEACTIVATE_SUBSCRIPTION: &str =
    "INSERT INTO delivery_subscriptions (instance_id, deactivated_at, reason, organization_id)
     SELECT n.instance_id, $2, $3, n.organization_id
     FROM notifications n JOIN instances i ON i.id = n.instance_id
     WHERE n.id = $1
     ON CONFLICT (instance_id) DO NOTHING";

/// How many notifications one write parks or brings back on SQLite ("Paused notifications"):
/// a disable's or an enable's parts, and the claims' parking step. About 9 ms plus 8 µs a
/// notification of the writer per part, with other writes in between (docs/benchmarks.md,
/// "Twenty-first round"): the order of a poll's commit.
pub(crate) const PARK_PART: i64 = 1_000;

/// How often a node's claims park and un-park (see "Paused notifications"): at most once
/// this often, by the claim's clock.
///
/// Parking in every claim cost a claim beside a backlog it can take about a tenth more on
/// SQLite (two statements that find nothing; on PostgreSQL a round trip), for what is rare:
/// notifications reaching a disabled instance after it was disabled, which the claim's
/// filters leave out meanwhile anyway, and an enable by a node of an older version, which
/// then waits this long at most.
const PARK_EVERY_MS: i64 = 1_000;

/// When this node's claims last parked ([`PARK_EVERY_MS`]).
#[derive(Debug)]
pub(crate) struct Parking(AtomicI64);

impl Default for Parking {
    fn default() -> Self {
        Parking(AtomicI64::new(i64::MIN))
    }
}

impl Parking {
    /// Whether a claim at `now` parks: the first, one a second or more after the last that
    /// did, or one whose clock went back. Two claims at once may both park; that is harmless.
    pub(crate) fn due(&self, now: Timestamp) -> bool {
        let now = now.as_millisecond();
        let last = self.0.load(Ordering::Relaxed);
        let due = now >= last.saturating_add(PARK_EVERY_MS) || now < last;
        if due {
            self.0.store(now, Ordering::Relaxed);
        }
        due
    }

    /// Makes the next claim park again at once: the last one moved a whole part
    /// ([`PARK_PART`]), so there may be more to move.
    pub(crate) fn again(&self) {
        self.0.store(i64::MIN, Ordering::Relaxed);
    }
}

/// What a claim of notifications asks for: the one claim function of each engine.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClaimAsk<'a> {
    pub owner: &'a str,
    pub now: Timestamp,
    pub lease: Duration,
    pub limit: u32,
    /// Instances left out (their receivers cannot take work).
    pub skip: &'a [InstanceId],
    /// At most this many of one instance.
    pub per_instance: u32,
    /// How far each organization's turns come first.
    pub shares: &'a OrganizationShares,
    /// Whether each claimed notification's attempt row is begun in the same write.
    pub begin: bool,
}

/// How many of the oldest due notifications a claim shares out fairly among their instances:
/// four times what it takes, at most 256.
///
/// Bounded, so a claim costs the same whatever the backlog; proportional to the claim,
/// because on SQLite ranking the window is most of a claim's cost (about 1 µs a row: a claim
/// of 7 took 0.73 ms with a window of 256 and 0.51 ms with 28, docs/benchmarks.md, "Eighth
/// round"). Fairness does not rest on the window alone: the claim also looks up the oldest
/// due ones of the organizations it can serve ([`OrganizationShares`]), and an instance whose
/// receiver is full is left out of the next claims (`skip`), so an instance whose oldest due
/// notification lies past the window waits at most until the instances ahead of it fill their
/// receivers or run out of due work.
pub(crate) fn fair_window(limit: u32) -> i64 {
    (i64::from(limit) * 4).clamp(1, 256)
}

/// How many due notifications, first in due order, a claim reads for its window
/// ([`fair_window`]): the window's size and 256 more, for those it cannot take (leased,
/// skipped, disabled, of an organization held back by slow POSTs).
///
/// The window used to read as far as it had to for its size, so behind an instance whose
/// receiver was full (skipped) it read that instance's whole backlog: 10 ms a claim beside
/// 20,000, 48–68 ms beside 100,000 on SQLite (docs/benchmarks.md, "Seventeenth round"), on
/// the writer, for every claim while the receiver stayed full. Now a claim reads this head at
/// most, and:
/// - When the head holds every due notification, or enough it can take for the window, the
///   window is what it was: the oldest due it can take.
/// - Otherwise the head is *crowded* and the window comes back short. What the window alone
///   found (an organization at its allowance, whose notifications the walk does not look up)
///   is then found by the walk: in a crowded claim it looks up organizations at their
///   allowance too. Their turns still come after every other organization's first ones, so
///   the claim stays work-conserving and fair as before; it looks up more organizations, at
///   most [`LOOKED_UP_ORGANIZATIONS`].
/// - The walk and each organization's lookup read past a skipped instance's notifications in
///   the organization's due order just as the window did. So for an organization with a
///   skipped instance they read its head the same way (this many of its due notifications at
///   most), and only when that head is crowded too, ask each of its other instances (one seek
///   each in `notifications_by_instance_status`, reading past only what is in flight), keeping
///   the organization's oldest as its lookup does: bounded by the organization's instances,
///   not by the backlog (2.4 ms a claim beside 1,000 sibling instances, 0.6 ms beside one).
///   Other organizations are read as before.
pub(crate) fn claim_head(limit: u32) -> i64 {
    fair_window(limit) + 256
}

/// How many of the pending notifications first in due order the dispatcher's next due time
/// ([`Store::next_notification_due_except`]) reads.
///
/// The next due time is the earliest moment a notification the dispatcher could claim
/// becomes claimable: the greatest of its due time and its lease's end, over the pending
/// notifications of instances neither skipped nor disabled, of organizations not held back.
/// It was one scan of every pending notification (the greatest of two columns has no index),
/// 10 ms beside 20,000 and 45 ms beside 100,000 on SQLite (docs/benchmarks.md, "Seventeenth
/// round"), and the dispatcher asks after every claim that comes back short: with the default
/// `receiver_concurrency` (4 of 16 slots) that is after nearly every delivery of a backlog.
///
/// Now it reads the head: this many, first in due order. The answer read there is exact when
/// the head holds every pending notification, or holds a servable one that is not leased
/// (`lease_until` NULL or not past its due time, so its moment is its due time): every
/// notification after it in due order is due no earlier, and its moment is no earlier than
/// its due time. Otherwise (the head is *crowded*: all leased, skipped, disabled or held
/// back, a backlog behind a full receiver) the answer is the earliest of what the head shows
/// and [`CROWDED_RECHECK_MS`] from now. The dispatcher then claims again, and a claim finds
/// what lies behind a crowded head (its walk looks every servable organization up, see
/// [`claim_head`]), so a notification there is claimed at most that long after it falls due,
/// sooner if a delivery ends or a poll stores work meanwhile (both wake the dispatcher).
/// Asking each servable instance instead (a first version) was exact but cost a seek per
/// instance: 27 ms beside 5,000 instances, after every delivery.
pub(crate) const DUE_HEAD: i64 = 256;

/// How soon the dispatcher looks again when the head of the due order is crowded
/// ([`DUE_HEAD`]).
pub(crate) const CROWDED_RECHECK_MS: i64 = 1_000;

/// How many organizations a claim looks up beside its window, each by a read of its oldest
/// due notifications: only organizations the claim can serve count, those under their
/// allowance with a due notification that is not leased, of an instance neither disabled nor
/// skipped. Bounded, so a claim costs
/// the same however many organizations have work queued; the walk that finds them starts where
/// the previous claim's ended ([`OrganizationShares::look_up_after`]), so when more can be
/// served, each is looked up within a few claims.
pub(crate) const LOOKED_UP_ORGANIZATIONS: i64 = 64;

/// How many organizations with pending notifications one claim's walk visits at most (in
/// organization id order, from where the previous walk ended, wrapping around), counting those
/// it can serve toward [`LOOKED_UP_ORGANIZATIONS`]. Organizations that cannot be served
/// (retries waiting for their time, work in flight, a disabled instance's queue, at their
/// share) cost a visit each but must not hide the others, as they did when the first 64 by id
/// were looked up whatever they held; yet the walk must not grow with the number of
/// organizations either. Four times the lookups: each visit is a seek for the next
/// organization id and one for its oldest due notifications, so a walk of 256 costs about
/// what the window of 256 does (0.46 ms against 0.47 ms on SQLite 3.40, 1,000 organizations
/// holding only notifications due later, beside a backlog of 50,000), and the walk stops
/// sooner when 64 can be served. The next claim goes on from where this one stopped, so a run
/// of unservable organizations delays the others by a claim or a few, not for good.
pub(crate) const VISITED_ORGANIZATIONS: i64 = 4 * LOOKED_UP_ORGANIZATIONS;

/// How a claim of notifications shares itself out among organizations: the dispatcher's fair
/// share of its delivery slots (the engine's `fair_share` module says how `share` is chosen).
///
/// A claim takes turns per organization: each organization's oldest due notification, then each
/// one's second, and so on (within an organization its instances take turns the same way), at
/// most `per_instance` of one instance. An organization's turns come first only up to its
/// *allowance*, `share` less what it has `in_flight`; its further turns come after every other
/// organization's first ones, so they fill only what the others leave (the claim stays
/// work-conserving: slots are never left free while due work waits). Save for an organization
/// with slow POSTs in flight (`slow`): it takes at most `share` less the slots it holds, even
/// when nobody else has due work, so that POSTs to receivers that hang cannot take every slot
/// once the node's allowance of slow POSTs is spent and keep a newcomer waiting for a delivery
/// timeout. What counts there is the slots it holds, not its deliveries in flight: a slow POST
/// that gave its slot back costs nobody a slot, and counting it would stop an organization
/// alone on the node, whose receiver holds a few POSTs unanswered, from delivering anything
/// else until they time out.
///
/// The candidates are the window of the oldest due notifications ([`fair_window`]) and the
/// oldest due ones of up to [`LOOKED_UP_ORGANIZATIONS`] organizations the claim can serve: so an
/// organization's due work is seen even when another's large backlog fills the window, which no
/// window of bounded size can promise by itself. Those organizations are found by a walk of the
/// organizations with pending notifications in id order (one seek each in
/// `notifications_pending_by_organization`) that starts after `look_up_after` and wraps around
/// past the highest id, visiting at most [`VISITED_ORGANIZATIONS`]. Counted are only those the
/// claim can serve: under their allowance, with a due notification that is not leased and
/// whose instance is neither disabled nor in `skip` (the check reads past the ones that are,
/// as the lookup of an organization's oldest due ones does: an organization whose oldest due
/// notifications all belong to a disabled instance must not be hidden for its other
/// instances). An organization held back by its slow POSTs (`slow`, with no turn left) is
/// left out of the window too, so that its backlog cannot fill the window and hide the due
/// work of an organization at its allowance, which only the window finds. The claim reports where its walk ended ([`NotificationClaim::walked_to`]); the
/// next claim, given it as `look_up_after`, goes on from there, so that when more organizations
/// can be served than one claim looks up, every one of them is looked up within a few claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationShares {
    /// The deliveries one organization may have in flight while others wait.
    pub share: u32,
    /// Deliveries each organization has in flight now (organizations with none left out).
    pub in_flight: Vec<(OrganizationId, u32)>,
    /// The organizations with a slow POST in flight (one unanswered past the dispatcher's
    /// first seconds), each with how many of its deliveries in flight hold a delivery slot
    /// (a slow POST may have given its slot back). Their turns stop at `share` less that,
    /// even when nobody else has due work.
    pub slow: Vec<(OrganizationId, u32)>,
    /// Where the walk of the organizations starts: after this one (the previous claim's
    /// [`NotificationClaim::walked_to`]); `None` from the lowest id.
    pub look_up_after: Option<OrganizationId>,
}

impl OrganizationShares {
    /// No share: any organization may take a whole claim, though still turn by turn with the
    /// others (what a claim made outside the dispatcher wants).
    pub fn unlimited() -> OrganizationShares {
        OrganizationShares {
            share: u32::MAX,
            in_flight: Vec::new(),
            slow: Vec::new(),
            look_up_after: None,
        }
    }

    /// What each organization in flight may still take before the others' turns (0: none).
    pub(crate) fn allowances(&self) -> Vec<(i64, i64)> {
        self.in_flight
            .iter()
            .map(|(org, n)| (org.0, i64::from(self.share.saturating_sub(*n))))
            .collect()
    }

    /// How many turns in all each organization with slow POSTs may take ([`Self::slow`]):
    /// `share` less the slots it holds (0: none).
    pub(crate) fn slow_caps(&self) -> Vec<(i64, i64)> {
        self.slow
            .iter()
            .map(|(org, holding)| (org.0, i64::from(self.share.saturating_sub(*holding))))
            .collect()
    }

    /// The organizations a claim would take nothing of, whatever is due: those with slow
    /// POSTs that hold their share of the slots. Waking for their due notifications would
    /// claim nothing, so the dispatcher leaves them out of its next due time
    /// ([`Store::next_notification_due_except`]).
    pub fn held_back(&self) -> Vec<OrganizationId> {
        self.slow
            .iter()
            .filter(|(_, holding)| *holding >= self.share)
            .map(|(org, _)| *org)
            .collect()
    }

    /// Where the walk starts, as the claim's SQL takes it: ids are positive, so 0 is before
    /// every organization.
    pub(crate) fn walk_start(&self) -> i64 {
        self.look_up_after.map_or(0, |org| org.0)
    }
}

/// What a fair claim took.
#[derive(Debug, Default)]
pub struct NotificationClaim {
    /// The claimed notifications, oldest due first.
    pub notifications: Vec<PendingNotification>,
    /// The attempt row begun for each claimed notification, by notification
    /// ([`Store::claim_and_begin_attempts`] only).
    pub begun: HashMap<NotificationId, i64>,
    /// The last organization the claim's walk visited: the next claim's
    /// [`OrganizationShares::look_up_after`]. `None` when no organization has pending
    /// notifications.
    pub walked_to: Option<OrganizationId>,
}

impl Store {
    /// Claims up to `limit` pending notifications that are due and not leased (or whose lease has
    /// ended), oldest due first; each is leased to `owner` until `now + lease` under a fresh
    /// token (in `PendingNotification::lease_token`).
    pub async fn claim_notifications(
        &self,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<PendingNotification>> {
        let shares = OrganizationShares::unlimited();
        let claim = self
            .claim_notifications_fairly(owner, now, lease, limit, &[], u32::MAX, &shares)
            .await?;
        Ok(claim.notifications)
    }

    /// [`Store::claim_notifications`], shared fairly: turn by turn among organizations and,
    /// within each, among its instances (see [`OrganizationShares`]), so one organization's or
    /// one instance's backlog cannot fill a claim while others wait; at most `per_instance` of
    /// one instance (what its receiver can take at once). Instances in `skip` (whose receivers
    /// are saturated or failing) are left out. The claim's `walked_to` is where the next
    /// claim's walk of the organizations is to start (`shares.look_up_after`).
    #[allow(clippy::too_many_arguments)]
    pub async fn claim_notifications_fairly(
        &self,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
        skip: &[InstanceId],
        per_instance: u32,
        shares: &OrganizationShares,
    ) -> Result<NotificationClaim> {
        let ask = ClaimAsk {
            owner,
            now,
            lease,
            limit,
            skip,
            per_instance,
            shares,
            begin: false,
        };
        on_backend!(self, s => s.claim_notifications(ask).await)
    }

    /// [`Store::claim_notifications_fairly`], beginning the attempt row of each claimed
    /// notification (as [`Store::begin_attempts`] does) in the same write: what the
    /// dispatcher does with every batch, in one trip to the database instead of two. The
    /// begun rows are in the claim's `begun`, by notification.
    #[allow(clippy::too_many_arguments)]
    pub async fn claim_and_begin_attempts(
        &self,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
        skip: &[InstanceId],
        per_instance: u32,
        shares: &OrganizationShares,
    ) -> Result<NotificationClaim> {
        let ask = ClaimAsk {
            owner,
            now,
            lease,
            limit,
            skip,
            per_instance,
            shares,
            begin: true,
        };
        on_backend!(self, s => s.claim_notifications(ask).await)
    }

    /// Writes the row of an attempt about to be made (outcome `started`), fenced on the
    /// claim's token, and returns its id. Written before the POST, so that every POST a
    /// receiver sees has a row even if the process dies before it can record the answer (the
    /// row then stays `started`: interrupted). `Err(LeaseLost)` when the claim no longer holds.
    pub async fn begin_attempt(
        &self,
        notification: &NotificationId,
        token: &LeaseToken,
        owner: &str,
        at: Timestamp,
    ) -> Result<i64> {
        let claim = [(notification.clone(), token.clone())];
        self.begin_attempts(&claim, owner, at)
            .await?
            .remove(notification)
            .ok_or(StoreError::LeaseLost)
    }

    /// [`Store::begin_attempt`] for a whole claimed batch in one write, so that a backlog
    /// does not cost two writes per delivery before the POST. Returns the begun rows by
    /// notification; a notification whose claim no longer holds is missing. A row begun here
    /// and never attempted must go with the claim: [`Store::release_notification`] removes it.
    pub async fn begin_attempts(
        &self,
        claims: &[(NotificationId, LeaseToken)],
        owner: &str,
        at: Timestamp,
    ) -> Result<HashMap<NotificationId, i64>> {
        if claims.is_empty() {
            return Ok(HashMap::new());
        }
        on_backend!(self, s => s.begin_attempts(claims, owner, at).await)
    }

    /// Records one delivery attempt (every attempt is a row) and its consequence, in ONE
    /// transaction fenced on the lease token: `Delivered` marks the notification delivered,
    /// `RetryAt(t)` counts a failure and makes it due at `t`, `Queued` counts a failure and parks
    /// it as queued. Releases the lease. `Err(LeaseLost)`, with nothing written, when
    /// `attempt.lease_token` no longer holds the lease. Results that arrive together share
    /// their transaction (`finish_queue`), each still fenced on its own token; the caller hears
    /// after it committed.
    pub async fn finish_attempt(&self, attempt: AttemptRecord) -> Result<()> {
        on_backend!(self, s => s.finish_attempt(attempt).await)
    }

    /// Gives a claimed notification back without an attempt (its receiver cannot take it
    /// now), due again at `due_at`; queued instead if its subscription was deactivated
    /// meanwhile, and left cancelled if its instance was deleted. Fenced on the claim's token
    /// like [`Store::finish_attempt`].
    /// `begun`: the `started` row [`Store::begin_attempts`] wrote for this claim, removed with
    /// it (no POST was made).
    pub async fn release_notification(
        &self,
        id: &NotificationId,
        token: &LeaseToken,
        due_at: Timestamp,
        begun: Option<i64>,
    ) -> Result<()> {
        on_backend!(self, s => s.release_notification(id, token, due_at, begun).await)
    }

    /// When the earliest pending notification becomes claimable; `None` when none is pending.
    /// Behind more than [`DUE_HEAD`] that cannot be claimed (leased), at most a second after
    /// `now` (see there).
    pub async fn next_notification_due(&self, now: Timestamp) -> Result<Option<Timestamp>> {
        self.next_notification_due_except(&[], &[], now).await
    }

    /// [`Store::next_notification_due`] among the instances not in `skip` (those whose
    /// receivers cannot take work) and the organizations not in `held_back` (those the fair
    /// share holds back: [`OrganizationShares::held_back`]): waking for their notifications
    /// would claim nothing. Behind more than [`DUE_HEAD`] that cannot be claimed, at most a
    /// second after `now`, when the dispatcher claims again.
    pub async fn next_notification_due_except(
        &self,
        skip: &[InstanceId],
        held_back: &[OrganizationId],
        now: Timestamp,
    ) -> Result<Option<Timestamp>> {
        on_backend!(self, s => s.next_notification_due(skip, held_back, now).await)
    }

    /// Pending notifications due at `now` and not leased.
    pub async fn delivery_backlog(&self, now: Timestamp) -> Result<Backlog> {
        on_backend!(self, s => s.delivery_backlog(now).await)
    }

    /// How many notifications are queued (retries exhausted, waiting for redelivery).
    pub async fn queued_notifications(&self) -> Result<u64> {
        on_backend!(self, s => s.queued_notifications().await)
    }

    /// One notification.
    pub async fn notification(&self, id: &NotificationId) -> Result<Option<NotificationRow>> {
        on_backend!(self, s => s.notification(id).await)
    }

    /// The instance's notifications, newest first.
    pub async fn list_notifications(
        &self,
        instance: InstanceId,
        limit: u32,
    ) -> Result<Vec<NotificationRow>> {
        on_backend!(self, s => s.list_notifications(instance, limit).await)
    }

    /// Every delivery attempt of a notification, in the order they were made.
    pub async fn list_attempts(&self, notification: &NotificationId) -> Result<Vec<AttemptRow>> {
        on_backend!(self, s => s.list_attempts(notification).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_park_at_most_once_a_second_by_their_clock() {
        let at = |ms: i64| Timestamp::from_millisecond(1_700_000_000_000 + ms).unwrap();
        let parking = Parking::default();
        assert!(parking.due(at(0)), "the first claim parks");
        assert!(!parking.due(at(0)));
        assert!(!parking.due(at(999)));
        assert!(parking.due(at(1_000)));
        assert!(!parking.due(at(1_500)));
        assert!(parking.due(at(-5_000)), "a clock that went back parks");
        assert!(!parking.due(at(-4_500)));
    }
}
