//! The rows and commands that cross the store's API. Plain data, no SQL.

use hubhook_core::{EventId, InstanceId, NotificationId};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OrganizationId(pub i64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserId(pub i64);

/// Proof of one claim of one row of work (a poll job or a notification): a random value the
/// store generates per claimed row. Completions are fenced on it, so a worker whose lease
/// ended and was claimed again, by another node or by its own node after a restart, cannot
/// write. The node id only says who holds a lease; it does not fence.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeaseToken(pub String);

/// Who is calling: an authenticated user of an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub organization_id: OrganizationId,
    pub user_id: UserId,
}

/// A user or organization secret to store: its SHA-256, by which requests find it, and the
/// secret itself, of which an encrypted copy is kept (for the legacy `getSecrets`).
pub struct NewSecret {
    pub hash: [u8; 32],
    pub plain: String,
}

/// A user to create. Without `email` and `password_hash` the user can only use its secrets.
pub struct NewUser {
    pub secret: NewSecret,
    /// Lower-cased by the store; unique across the database.
    pub email: Option<String>,
    /// An argon2 PHC string, made by the caller.
    pub password_hash: Option<String>,
    pub first_name: String,
    pub last_name: String,
}

/// A user as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: UserId,
    pub organization_id: OrganizationId,
    pub email: Option<String>,
    pub first_name: String,
    pub last_name: String,
}

/// What signing in with an email needs: who it is and the password hash to check.
#[derive(Clone)]
pub struct SignIn {
    pub principal: Principal,
    pub password_hash: String,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn")
            .field("principal", &self.principal)
            .field("password_hash", &"********")
            .finish()
    }
}

/// The user and organization secrets, decrypted from their stored copies.
pub struct Secrets {
    pub user: String,
    pub organization: String,
}

/// A new state of an instance (PUT, PATCH, a configuration record): everything a create sets
/// except its owner and token. Poll jobs follow `resources`: new resources get a job due now,
/// removed ones lose theirs (and what was known of their records), kept ones keep their cursor.
pub struct InstanceUpdate {
    pub name: String,
    pub configuration: Map<String, Value>,
    pub secrets: Map<String, Value>,
    pub tags: Vec<String>,
    pub events_enabled: bool,
    pub resources: Vec<String>,
    pub refresh_interval_ms: i64,
    pub now: Timestamp,
    /// The `updated_at` of the instance this state was made from (a PATCH merges into what it
    /// read): written only if the instance still has it, else [`crate::StoreError::Conflict`]
    /// and nothing changes, so two changes made at once cannot silently undo each other.
    /// `None` writes over whatever is stored.
    pub read_version: Option<Timestamp>,
}

/// What [`crate::StoreError::Conflict`] says when an update's `read_version` is no longer the
/// instance's.
pub const CHANGED_MEANWHILE: &str =
    "the instance was changed by another request since this one read it";

pub struct NewInstance {
    pub organization_id: OrganizationId,
    pub user_id: UserId,
    pub name: String,
    pub element_key: String,
    /// SHA-256 of the instance token; the token itself is never stored.
    pub token_hash: [u8; 32],
    /// The public part of the configuration (secrets masked).
    pub configuration: Map<String, Value>,
    /// Encrypted at rest.
    pub secrets: Map<String, Value>,
    pub tags: Vec<String>,
    pub events_enabled: bool,
    /// One poll job per resource, first run due at `now`.
    pub resources: Vec<String>,
    pub refresh_interval_ms: i64,
    pub now: Timestamp,
}

#[derive(Clone)]
pub struct InstanceRow {
    pub id: InstanceId,
    pub organization_id: OrganizationId,
    pub user_id: UserId,
    pub name: String,
    pub element_key: String,
    pub configuration: Map<String, Value>,
    /// Decrypted. Kept out of `Debug` so it never reaches a log line.
    pub secrets: Map<String, Value>,
    pub tags: Vec<String>,
    pub events_enabled: bool,
    pub disabled: bool,
    pub refresh_interval_ms: i64,
    pub created_at: Timestamp,
    /// When the instance last changed: the `now` of the change, or one millisecond after the
    /// previous value if that is not later (two changes in one millisecond, or a node whose
    /// clock is behind), so that every change gives a value the instance never had before.
    /// The engine's caches of the instance's configuration are keyed on it.
    pub updated_at: Timestamp,
}

impl std::fmt::Debug for InstanceRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceRow")
            .field("id", &self.id)
            .field("organization_id", &self.organization_id)
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .field("element_key", &self.element_key)
            .field("configuration", &self.configuration)
            .field("secrets", &"********")
            .field("tags", &self.tags)
            .field("events_enabled", &self.events_enabled)
            .field("disabled", &self.disabled)
            .field("refresh_interval_ms", &self.refresh_interval_ms)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct PollJob {
    pub instance_id: InstanceId,
    pub resource: String,
    /// `None`: never polled, so the first poll is the baseline.
    pub cursor: Option<Timestamp>,
    pub next_run_at: Timestamp,
    /// When the current lease ends. For a job that is not leased (as `Store::poll_jobs` may
    /// return) this is the Unix epoch, i.e. already expired.
    pub lease_until: Timestamp,
    /// The token of the current claim; `Some` on a job returned by a claim.
    pub lease_token: Option<LeaseToken>,
    /// Where a poll that did not finish left off (opaque to the store), to resume from there.
    pub checkpoint: Option<String>,
    /// When the job next compares its known ids with ConnectWise's; `None`: not scheduled
    /// (reconciliation off, or the baseline has not run).
    pub next_reconcile_at: Option<Timestamp>,
    /// What the user decided about a mass delete the last reconciliation held back.
    pub mass_delete_action: Option<MassDeleteAction>,
    /// Every record dated before this instant has been read (opaque to the store, which only
    /// keeps it from moving backwards; the poller's module docs say why it holds).
    pub settled_before: Option<Timestamp>,
    /// The smallest bound seen on how far record dates run behind ConnectWise's `Date` clock.
    pub clock_lag: Option<SignedDuration>,
    /// When the resource was added to its instance (the instance's creation for the
    /// resources it was created with): the first poll, the baseline, announces the changes
    /// made since then by default, not those since the instance was created, which for a
    /// resource added later would be every change of the instance's lifetime.
    pub added_at: Timestamp,
    /// The instance's `updated_at` when the job was read. Every change of the instance (its
    /// configuration, secrets, settings or state) moves it forward, never to a value it had
    /// before, so it versions the instance's configuration: the poller's configuration cache
    /// is keyed on it.
    pub instance_updated_at: Timestamp,
}

/// A user's answer to a held-back mass delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MassDeleteAction {
    /// The records are gone: announce them as DELETED.
    Confirm,
    /// Do not announce them; forget them silently.
    Dismiss,
}

impl MassDeleteAction {
    pub fn as_str(self) -> &'static str {
        match self {
            MassDeleteAction::Confirm => "confirm",
            MassDeleteAction::Dismiss => "dismiss",
        }
    }

    pub fn parse(text: &str) -> Option<MassDeleteAction> {
        match text {
            "confirm" => Some(MassDeleteAction::Confirm),
            "dismiss" => Some(MassDeleteAction::Dismiss),
            _ => None,
        }
    }
}

/// A record as a poll saw it.
#[derive(Debug, Clone)]
pub struct ObservedObject {
    pub object_id: String,
    pub content_hash: String,
    /// Its updated date (ConnectWise's clock).
    pub updated_at: Timestamp,
    /// The record (JSON text): the `previous` of its next update, and what a DELETED event
    /// carries if it vanishes. Only the last version of an object is kept.
    pub record: String,
    /// Whether this sighting says the record is deleted (its deleted flag is set).
    pub deleted: bool,
}

/// What the store remembers of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownObject {
    pub content_hash: String,
    /// The last version seen (JSON text).
    pub record: Option<String>,
    /// It was announced as deleted.
    pub deleted: bool,
    /// How many times its stored content hash or deleted flag has changed: the next change's
    /// event id includes it (`hubhook_core::event_id`), so that returning to an earlier
    /// content is a new change, not a duplicate of the earlier one.
    pub revision: u64,
}

/// An object id in ConnectWise's numeric order, for reconciliation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownId {
    pub number: i64,
    pub object_id: String,
    /// When a poll last saw it (hubhook's clock).
    pub seen_at: Option<Timestamp>,
}

#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: EventId,
    pub object_type: String,
    pub object_id: String,
    /// "CREATED", "UPDATED", "DELETED".
    pub event_type: String,
    pub event_date: Timestamp,
    pub record_json: String,
}

#[derive(Debug, Clone)]
pub struct NewNotification {
    pub id: NotificationId,
    pub event_ids: Vec<EventId>,
    pub body: String,
}

/// Part or all of one poll's result, written in one transaction (the outbox): a poll commits
/// page by page ([`PollProgress::Checkpoint`]) and ends with [`PollProgress::Done`].
pub struct PollCommit {
    pub instance_id: InstanceId,
    pub resource: String,
    /// The claim this poll ran under; the commit is fenced on it.
    pub lease_token: LeaseToken,
    pub now: Timestamp,
    pub observed: Vec<ObservedObject>,
    /// Object ids that are gone (found missing by reconciliation): marked deleted, their last
    /// version kept for reference.
    pub vanished: Vec<String>,
    pub events: Vec<NewEvent>,
    pub notifications: Vec<NewNotification>,
    pub progress: PollProgress,
}

/// Whether a poll goes on after a commit.
pub enum PollProgress {
    /// More follows: keep the lease, and remember where to resume (opaque text).
    Checkpoint(String),
    /// The poll is over: move the cursor, schedule the next run, release the lease.
    Done(PollDone),
}

/// The end of a poll.
pub struct PollDone {
    /// The new cursor; `None` keeps the old one.
    pub cursor: Option<Timestamp>,
    pub next_run_at: Timestamp,
    /// Records this poll read, and events it stored (for the job's health).
    pub records_seen: u64,
    pub events_emitted: u64,
    /// Records of this poll that could not be used (no id, unreadable date), and one of the
    /// reasons, for the job's health.
    pub record_problems: u32,
    pub record_problem: Option<String>,
    /// Set when this poll also reconciled ids.
    pub reconciled: Option<Reconciled>,
    /// Sets the next reconciliation (after a baseline, or a reconciliation that failed).
    pub schedule_reconcile_at: Option<Timestamp>,
    /// A failure of part of the poll (its reconciliation) that did not stop it: shown as the
    /// job's last error. `None` clears the last error.
    pub error: Option<String>,
    /// A later settled instant (see [`PollJob::settled_before`]); `None`, or an earlier one,
    /// keeps the stored one.
    pub settled_before: Option<Timestamp>,
    /// The new clock lag bound; `None` keeps the stored one.
    pub clock_lag: Option<SignedDuration>,
}

/// What a reconciliation decided.
pub struct Reconciled {
    pub next_at: Timestamp,
    /// How many records vanished beyond the mass-delete threshold and were held back;
    /// `None` when nothing is held back (any earlier hold is cleared, with the user's
    /// decision).
    pub mass_delete_held: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CommitOutcome {
    /// Events that were new; an event id already stored is not counted.
    pub events_inserted: usize,
    pub notifications_inserted: usize,
}

#[derive(Debug, Clone)]
pub struct PendingNotification {
    pub id: NotificationId,
    /// The claim this delivery runs under; its attempt is fenced on it.
    pub lease_token: LeaseToken,
    pub instance_id: InstanceId,
    /// The instance's organization: the dispatcher shares its slots out by organization.
    pub organization_id: OrganizationId,
    pub body: String,
    pub failed_attempts: u32,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Delivered,
    RetryAt(Timestamp),
    /// Retries exhausted: kept in the queue for later redelivery.
    Queued,
    /// Queued, and the instance's subscription deactivated (its error is the reason): every
    /// other undelivered notification of the instance is queued too, and so are new ones,
    /// until a redelivery reactivates it.
    Deactivated,
}

impl AttemptOutcome {
    /// The stored name of the outcome.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::RetryAt(_) => "retry",
            AttemptOutcome::Queued => "queued",
            AttemptOutcome::Deactivated => "deactivated",
        }
    }
}

#[derive(Debug, Clone)]
pub struct AttemptRecord {
    /// The row written by [`crate::Store::begin_attempt`] before the POST, completed here;
    /// `None` writes a new row.
    pub attempt_id: Option<i64>,
    pub notification_id: NotificationId,
    /// The node that made the attempt, kept in the attempt row.
    pub owner: String,
    /// The claim the attempt ran under; the update is fenced on it.
    pub lease_token: LeaseToken,
    pub attempted_at: Timestamp,
    pub status_code: Option<u16>,
    pub latency_ms: i64,
    pub error: Option<String>,
    /// The first 1 KB of the answer's body (lossy UTF-8), when there was an answer.
    pub response_excerpt: Option<String>,
    pub outcome: AttemptOutcome,
}

#[derive(Debug, Clone)]
pub struct EventRow {
    pub id: EventId,
    pub instance_id: InstanceId,
    pub object_type: String,
    pub object_id: String,
    pub event_type: String,
    pub event_date: Timestamp,
    pub record_json: String,
    pub notification_id: Option<NotificationId>,
    /// The status of the event's notification, or "none" when it has none.
    pub status: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct NotificationRow {
    pub id: NotificationId,
    pub instance_id: InstanceId,
    pub body: String,
    /// "pending" | "delivered" | "queued" | "cancelled"
    pub status: String,
    pub failed_attempts: u32,
    pub next_attempt_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
    /// For a replay, the notification it replays.
    pub replay_of: Option<NotificationId>,
}

#[derive(Debug, Clone)]
pub struct AttemptRow {
    pub id: i64,
    pub notification_id: NotificationId,
    pub attempted_at: Timestamp,
    pub status_code: Option<u16>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
    /// `delivered` | `retry` | `queued` | `deactivated`.
    pub outcome: String,
}

/// When an instance's delivery configuration last changed: the update times of the instance,
/// of its webhook secret and of its organization's settings (Unix ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConfigVersion(pub [i64; 3]);

/// A deactivated webhook subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deactivation {
    pub deactivated_at: Timestamp,
    pub reason: String,
}

/// Work waiting in one loop, for `/metrics`: how many items are due now and since when the
/// oldest has been due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Backlog {
    pub due: u64,
    pub oldest_due: Option<Timestamp>,
}

/// How many poll jobs need a look, across every instance (for `/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollTrouble {
    /// Jobs whose last poll failed.
    pub failing: u64,
    /// Jobs holding back a mass delete until someone decides.
    pub mass_delete_held: u64,
    /// Jobs whose last poll skipped records it could not read.
    pub record_problems: u64,
}

/// One poll job's health, for `GET /instances/{id}/health` and the console.
#[derive(Debug, Clone, PartialEq)]
pub struct JobHealth {
    pub resource: String,
    /// The latest updated date seen (ConnectWise's clock); `None` before the baseline.
    pub cursor: Option<Timestamp>,
    pub last_success_at: Option<Timestamp>,
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
    pub next_run_at: Timestamp,
    /// A poll is running (its lease has not ended).
    pub running: bool,
    pub records_seen: u64,
    pub events_emitted: u64,
    pub record_problems: u64,
    pub record_problem: Option<String>,
    pub last_reconciled_at: Option<Timestamp>,
    pub next_reconcile_at: Option<Timestamp>,
    /// Records held back by mass-delete protection, awaiting a decision.
    pub mass_delete_held: Option<u64>,
}

/// An instance's Standard Webhooks secrets (`whsec_…` texts), decrypted.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecrets {
    pub current: String,
    /// Secrets replaced by earlier rotations, newest first, each signing until the given time
    /// (see the `webhook_secrets` module). May hold some whose time has passed.
    pub retired: Vec<(String, Timestamp)>,
    /// When the current secret was set.
    pub updated_at: Timestamp,
}

impl std::fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSecrets")
            .field("current", &"********")
            .field(
                "retired_until",
                &self
                    .retired
                    .iter()
                    .map(|(_, until)| until)
                    .collect::<Vec<_>>(),
            )
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// An instance's undelivered notifications, for the console's delivery health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryHealth {
    pub instance_id: InstanceId,
    /// Pending and due now (waiting for a dispatcher).
    pub due: u64,
    /// Pending after at least one failed attempt (waiting for a retry).
    pub failing: u64,
    /// Retries exhausted: parked until recovered.
    pub queued: u64,
}

/// Counts of one instance in one time bucket, for the analytics route and the console's charts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnalyticsBucket {
    pub instance_id: InstanceId,
    /// Where the bucket starts.
    pub start: Timestamp,
    /// Events stored.
    pub events: u64,
    /// Delivery attempts that delivered.
    pub delivered: u64,
    /// Delivery attempts that failed.
    pub failed: u64,
}
