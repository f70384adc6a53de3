//! Engine-independent behaviour of the store. Every check starts from an empty database.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Duration;

use hubhook_core::{EventId, InstanceId, NotificationId};
use hubhook_store::{
    AttemptOutcome, AttemptRecord, Backlog, CommitOutcome, InstanceRow, KnownId, KnownObject,
    LeaseToken, MassDeleteAction, NewEvent, NewInstance, NewNotification, NotificationClaim,
    NotificationFilter, ObservedObject, OrganizationId, OrganizationShares, PendingNotification,
    PollCommit, PollDone, PollJob, PollProgress, Principal, Reconciled, Redeliver, Store,
    StoreError, UserId,
};
use jiff::{SignedDuration, Timestamp, ToSpan as _};
use serde_json::{Map, Value, json};

pub const SECRET: &str = "very-secret-private-key-0123456789";
pub const LEASE: Duration = Duration::from_secs(30);

pub fn t0() -> Timestamp {
    Timestamp::from_second(1_700_000_000).unwrap()
}

pub fn hash(n: u8) -> [u8; 32] {
    [n; 32]
}

pub fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

pub async fn organization(store: &Store, n: u8) -> (OrganizationId, UserId) {
    store
        .create_organization(&format!("org {n}"), hash(n), hash(100 + n), t0())
        .await
        .unwrap()
}

pub fn new_instance(
    org: OrganizationId,
    user: UserId,
    token: u8,
    resources: &[&str],
) -> NewInstance {
    NewInstance {
        organization_id: org,
        user_id: user,
        name: format!("instance {token}"),
        element_key: "connectwisecrmrest".into(),
        token_hash: hash(200 + token),
        configuration: object(json!({
            "company": "demo",
            "public.key": "demo-public",
            "private.key": "********",
            "event.notification.enabled": true,
        })),
        secrets: object(json!({ "private.key": SECRET })),
        tags: vec!["blue".into(), "green".into()],
        events_enabled: true,
        resources: resources.iter().map(|r| r.to_string()).collect(),
        refresh_interval_ms: 60_000,
        now: t0(),
    }
}

/// An organization with one instance polling `resources`.
pub async fn instance_with(store: &Store, resources: &[&str]) -> InstanceRow {
    let (org, user) = organization(store, 1).await;
    store
        .create_instance(new_instance(org, user, 1, resources))
        .await
        .unwrap()
}

fn event(n: usize, object_id: &str) -> NewEvent {
    NewEvent {
        id: EventId(format!("event-{n}")),
        object_type: "contacts".into(),
        object_id: object_id.into(),
        event_type: "UPDATED".into(),
        event_date: t0(),
        record_json: format!(r#"{{"id":{object_id}}}"#),
    }
}

pub fn notification(n: usize, events: &[&NewEvent]) -> NewNotification {
    NewNotification {
        id: NotificationId(format!("notification-{n}")),
        event_ids: events.iter().map(|e| e.id.clone()).collect(),
        body: format!(r#"{{"n":{n}}}"#),
    }
}

/// The token `owner` got for `work` at its latest claim; a made-up one if it never claimed it
/// (which the store must refuse like any stale token).
///
/// Tests speak of owners ("a's late commit") and this keeps them readable: each owner's
/// claims are remembered here by the `claim_*` wrappers below.
pub fn token_of(owner: &str, work: &str) -> LeaseToken {
    tokens(|tokens| tokens.get(&(owner.to_string(), work.to_string())).cloned())
        .unwrap_or_else(|| LeaseToken(format!("never-claimed-by-{owner}")))
}

type Tokens = BTreeMap<(String, String), LeaseToken>;

tokio::task_local! {
    /// The tokens of one test's claims. One map per test, not one per process: under `cargo
    /// test` the tests run at once in one process, each on a fresh database whose instance and
    /// notification ids repeat, so a shared map let one test's claim overwrite another's token
    /// ("a" claiming `1/contacts` in both), and the first test's commit was refused.
    static TOKENS: RefCell<Tokens>;
}

/// Runs a test with a token map of its own (see [`TOKENS`]). Every test that claims through
/// the wrappers below runs inside one; the conformance macros wrap every check.
pub async fn with_tokens<F: Future>(test: F) -> F::Output {
    TOKENS.scope(RefCell::new(Tokens::new()), test).await
}

fn tokens<T>(f: impl FnOnce(&mut Tokens) -> T) -> T {
    TOKENS
        .try_with(|tokens| f(&mut tokens.borrow_mut()))
        .expect("a test that claims through the conformance wrappers runs in `with_tokens`, and not in a spawned task")
}

fn job_key(instance: InstanceId, resource: &str) -> String {
    format!("{instance}/{resource}")
}

/// `Store::claim_poll_jobs`, remembering each claimed job's token for `owner`.
pub async fn claim_jobs(
    store: &Store,
    owner: &str,
    now: Timestamp,
    lease: Duration,
    limit: u32,
) -> hubhook_store::Result<Vec<PollJob>> {
    let jobs = store.claim_poll_jobs(owner, now, lease, limit).await?;
    tokens(|tokens| {
        for job in &jobs {
            let token = job.lease_token.clone().expect("a claimed job has a token");
            tokens.insert(
                (owner.into(), job_key(job.instance_id, &job.resource)),
                token,
            );
        }
    });
    Ok(jobs)
}

/// `Store::claim_notifications`, remembering each claimed notification's token for `owner`.
pub async fn claim_notifications(
    store: &Store,
    owner: &str,
    now: Timestamp,
    lease: Duration,
    limit: u32,
) -> hubhook_store::Result<Vec<PendingNotification>> {
    let claimed = store.claim_notifications(owner, now, lease, limit).await?;
    tokens(|tokens| {
        for n in &claimed {
            tokens.insert((owner.into(), n.id.0.clone()), n.lease_token.clone());
        }
    });
    Ok(claimed)
}

/// A commit that ends a poll: cursor at t0 + 5 s, next run at t0 + 60 s, made at t0 + 1 s.
fn poll_commit(instance: InstanceId, resource: &str, owner: &str) -> PollCommit {
    PollCommit {
        instance_id: instance,
        resource: resource.into(),
        lease_token: token_of(owner, &job_key(instance, resource)),
        now: t0() + 1.second(),
        observed: Vec::new(),
        vanished: Vec::new(),
        events: Vec::new(),
        notifications: Vec::new(),
        progress: PollProgress::Done(PollDone {
            cursor: Some(t0() + 5.seconds()),
            next_run_at: t0() + 60.seconds(),
            records_seen: 0,
            events_emitted: 0,
            record_problems: 0,
            record_problem: None,
            reconciled: None,
            schedule_reconcile_at: None,
            error: None,
            settled_before: None,
            clock_lag: None,
        }),
    }
}

/// The end-of-poll part of a commit made by [`poll_commit`].
fn done(commit: &mut PollCommit) -> &mut PollDone {
    match &mut commit.progress {
        PollProgress::Done(done) => done,
        PollProgress::Checkpoint(_) => panic!("not the end of a poll"),
    }
}

fn observed(object_id: &str, content_hash: &str) -> ObservedObject {
    ObservedObject {
        object_id: object_id.into(),
        content_hash: content_hash.into(),
        updated_at: t0(),
        record: format!(r#"{{"id":{object_id}}}"#),
        deleted: false,
    }
}

/// A commit carrying `events` event ids `first..first+events` in one notification.
pub fn commit_with_events(
    instance: InstanceId,
    resource: &str,
    owner: &str,
    first: usize,
    events: usize,
) -> PollCommit {
    let mut commit = poll_commit(instance, resource, owner);
    commit.events = (first..first + events)
        .map(|n| event(n, &n.to_string()))
        .collect();
    let refs: Vec<&NewEvent> = commit.events.iter().collect();
    commit.notifications = vec![notification(first, &refs)];
    commit.observed = commit
        .events
        .iter()
        .map(|e| observed(&e.object_id, &format!("hash-{}", e.object_id)))
        .collect();
    commit
}

/// [`commit_with_events`] with one notification per event (`notification-{n}` for event `n`).
fn commit_one_per_event(
    instance: InstanceId,
    resource: &str,
    owner: &str,
    first: usize,
    events: usize,
) -> PollCommit {
    let mut commit = commit_with_events(instance, resource, owner, first, events);
    commit.notifications = commit
        .events
        .iter()
        .map(|e| notification(e.id.0["event-".len()..].parse().unwrap(), &[e]))
        .collect();
    commit
}

pub async fn check_organizations_and_authentication(store: &Store) {
    let (org1, user1) = organization(store, 1).await;
    let (org2, user2) = organization(store, 2).await;
    assert_ne!(org1, org2);
    assert_ne!(user1, user2);

    let principal = store.authenticate(hash(1), hash(101)).await.unwrap();
    assert_eq!(
        principal,
        Some(Principal {
            organization_id: org1,
            user_id: user1
        })
    );
    assert_eq!(
        store.authenticate(hash(2), hash(102)).await.unwrap(),
        Some(Principal {
            organization_id: org2,
            user_id: user2
        })
    );
    // Wrong organization secret, wrong user secret, and a user paired with another org.
    assert_eq!(store.authenticate(hash(9), hash(101)).await.unwrap(), None);
    assert_eq!(store.authenticate(hash(1), hash(109)).await.unwrap(), None);
    assert_eq!(store.authenticate(hash(2), hash(101)).await.unwrap(), None);
}

pub async fn check_instance_round_trip(store: &Store) {
    let (org, user) = organization(store, 1).await;
    let (other_org, _) = organization(store, 2).await;
    let created = store
        .create_instance(new_instance(org, user, 1, &["contacts", "companies"]))
        .await
        .unwrap();
    assert!(
        !format!("{created:?}").contains(SECRET),
        "Debug shows the secrets"
    );

    let read = store.get_instance(org, created.id).await.unwrap().unwrap();
    assert_eq!(read.id, created.id);
    assert_eq!(read.organization_id, org);
    assert_eq!(read.user_id, user);
    assert_eq!(read.name, "instance 1");
    assert_eq!(read.element_key, "connectwisecrmrest");
    assert_eq!(read.secrets["private.key"], SECRET);
    assert_eq!(read.configuration["private.key"], "********");
    assert_eq!(read.configuration["company"], "demo");
    assert_eq!(read.tags, vec!["blue", "green"]);
    assert!(read.events_enabled);
    assert!(!read.disabled);
    assert_eq!(read.refresh_interval_ms, 60_000);
    assert_eq!(read.created_at, t0());
    assert_eq!(read.updated_at, t0());

    assert!(
        store
            .get_instance(other_org, created.id)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.instance(created.id).await.unwrap().unwrap().name,
        "instance 1"
    );
    let by_token = store.instance_by_token(hash(201)).await.unwrap().unwrap();
    assert_eq!(by_token.id, created.id);
    assert!(store.instance_by_token(hash(202)).await.unwrap().is_none());
    assert_eq!(store.list_instances(org).await.unwrap().len(), 1);
    assert!(store.list_instances(other_org).await.unwrap().is_empty());

    let jobs = store.poll_jobs(created.id).await.unwrap();
    let resources: Vec<&str> = jobs.iter().map(|j| j.resource.as_str()).collect();
    assert_eq!(resources, ["companies", "contacts"]);
    for job in &jobs {
        assert_eq!(job.cursor, None, "the first poll is the baseline");
        assert_eq!(job.next_run_at, t0());
    }
}

pub async fn check_claim_exclusivity(store: &Store) {
    let instance = instance_with(store, &["contacts", "companies"]).await;
    // An instance with events disabled is never polled.
    let (org, user) = organization(store, 2).await;
    let mut quiet = new_instance(org, user, 2, &["tickets"]);
    quiet.events_enabled = false;
    store.create_instance(quiet).await.unwrap();

    assert!(
        claim_jobs(store, "a", t0() - 1.second(), LEASE, 10)
            .await
            .unwrap()
            .is_empty(),
        "not due yet"
    );
    let a = claim_jobs(store, "a", t0(), LEASE, 1).await.unwrap();
    assert_eq!(a.len(), 1, "limit");
    let a2 = claim_jobs(store, "a", t0(), LEASE, 10).await.unwrap();
    assert_eq!(a2.len(), 1);
    assert_ne!(a[0].resource, a2[0].resource);
    for job in a.iter().chain(&a2) {
        assert_eq!(job.instance_id, instance.id);
        assert_eq!(job.lease_until, t0() + 30.seconds());
    }

    let lease_end = t0() + 30.seconds();
    assert!(
        claim_jobs(store, "b", lease_end - 1.millisecond(), LEASE, 10)
            .await
            .unwrap()
            .is_empty(),
        "a leased job was claimed again"
    );
    assert_eq!(store.next_poll_due().await.unwrap(), Some(lease_end));
    let b = claim_jobs(store, "b", lease_end, LEASE, 10).await.unwrap();
    assert_eq!(b.len(), 2, "an ended lease is claimable");
}

/// A contacts job claimed by "a", whose lease ended, and then by "b" at the returned time.
async fn a_job_taken_over_by_b(store: &Store) -> (InstanceRow, Timestamp) {
    let instance = instance_with(store, &["contacts"]).await;
    claim_jobs(store, "a", t0(), LEASE, 10).await.unwrap();
    let later = t0() + 31.seconds();
    assert_eq!(
        claim_jobs(store, "b", later, LEASE, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    (instance, later)
}

/// The job of [`a_job_taken_over_by_b`] as b's claim left it: no cursor, b's lease.
async fn assert_only_b_touched_the_job(store: &Store, instance: InstanceId, later: Timestamp) {
    let job = &store.poll_jobs(instance).await.unwrap()[0];
    assert_eq!(job.cursor, None, "a's late commit moved the cursor");
    assert_eq!(
        job.lease_until,
        later + 30.seconds(),
        "b's lease was touched"
    );
}

pub async fn check_commit_poll_is_fenced(store: &Store) {
    let (instance, later) = a_job_taken_over_by_b(store).await;

    let late = commit_with_events(instance.id, "contacts", "a", 0, 3);
    let err = store.commit_poll(late).await.unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost), "{err:?}");
    let err = store
        .fail_poll(
            instance.id,
            "contacts",
            &token_of("a", &job_key(instance.id, "contacts")),
            t0(),
            later,
            "boom",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost), "{err:?}");

    assert!(
        store
            .list_events(instance.id, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_notifications(instance.id, 100)
            .await
            .unwrap()
            .is_empty()
    );
    let ids = vec!["0".to_string(), "1".to_string()];
    assert!(
        store
            .known_objects(instance.id, "contacts", &ids)
            .await
            .unwrap()
            .is_empty()
    );
    assert_only_b_touched_the_job(store, instance.id, later).await;

    // The current owner's commit goes through.
    let outcome = store
        .commit_poll(commit_with_events(instance.id, "contacts", "b", 0, 3))
        .await
        .unwrap();
    assert_eq!(outcome.events_inserted, 3);
}

/// The end of a poll that found nothing (the usual poll, which SQLite writes by a shorter
/// path) is fenced like any commit.
pub async fn check_a_poll_that_found_nothing_is_fenced_too(store: &Store) {
    let (instance, later) = a_job_taken_over_by_b(store).await;
    // a's poll ends, having found nothing, after b took the job over.
    let err = store
        .commit_poll(poll_commit(instance.id, "contacts", "a"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost), "{err:?}");
    assert_only_b_touched_the_job(store, instance.id, later).await;

    // b's end goes through: cursor, schedule, lease released.
    let outcome = store
        .commit_poll(poll_commit(instance.id, "contacts", "b"))
        .await
        .unwrap();
    assert_eq!(outcome, CommitOutcome::default());
    let job = &store.poll_jobs(instance.id).await.unwrap()[0];
    assert_eq!(job.cursor, Some(t0() + 5.seconds()));
    assert_eq!(job.next_run_at, t0() + 60.seconds());
    assert_eq!(job.lease_token, None);
    // Once released, the same token ends nothing.
    let err = store
        .commit_poll(poll_commit(instance.id, "contacts", "b"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost), "{err:?}");

    // A poll whose instance was deleted meanwhile ends nothing either.
    let due = t0() + 60.seconds();
    assert_eq!(
        claim_jobs(store, "c", due, LEASE, 10).await.unwrap().len(),
        1
    );
    assert!(
        store
            .delete_instance(instance.organization_id, instance.id)
            .await
            .unwrap()
    );
    let err = store
        .commit_poll(poll_commit(instance.id, "contacts", "c"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost), "{err:?}");
}

pub async fn check_commit_poll_is_idempotent(store: &Store) {
    let instance = instance_with(store, &["contacts"]).await;
    claim_jobs(store, "a", t0(), LEASE, 10).await.unwrap();
    let first = store
        .commit_poll(commit_with_events(instance.id, "contacts", "a", 0, 2))
        .await
        .unwrap();
    assert_eq!(
        first,
        CommitOutcome {
            events_inserted: 2,
            notifications_inserted: 1
        }
    );

    // The same changes seen again (overlap window, another node): same ids, stored once.
    let due = t0() + 60.seconds();
    assert_eq!(
        claim_jobs(store, "a", due, LEASE, 10).await.unwrap().len(),
        1
    );
    let again = store
        .commit_poll(commit_with_events(instance.id, "contacts", "a", 0, 2))
        .await
        .unwrap();
    assert_eq!(again, CommitOutcome::default());
    assert_eq!(store.list_events(instance.id, 100).await.unwrap().len(), 2);
    assert_eq!(
        store
            .list_notifications(instance.id, 100)
            .await
            .unwrap()
            .len(),
        1
    );
}

/// An event stored without a notification (its commit carried none) gets the first new
/// notification that carries it; the new events of that notification get it too.
pub async fn check_a_new_notification_also_takes_old_events_no_notification_carried(store: &Store) {
    let instance = instance_with(store, &["contacts"]).await;
    claim_jobs(store, "a", t0(), LEASE, 10).await.unwrap();
    let mut first = commit_with_events(instance.id, "contacts", "a", 0, 1);
    first.notifications.clear();
    store.commit_poll(first).await.unwrap();
    let due = t0() + 60.seconds();
    claim_jobs(store, "a", due, LEASE, 10).await.unwrap();
    let mut second = commit_with_events(instance.id, "contacts", "a", 0, 2);
    second.notifications[0].id = NotificationId("notification-7".into());
    let outcome = store.commit_poll(second).await.unwrap();
    assert_eq!(
        outcome,
        CommitOutcome {
            events_inserted: 1,
            notifications_inserted: 1
        }
    );
    let events = store.list_events(instance.id, 100).await.unwrap();
    assert_eq!(events.len(), 2);
    for e in &events {
        assert_eq!(
            e.notification_id,
            Some(NotificationId("notification-7".into())),
            "{}",
            e.id.0
        );
    }
}

pub async fn check_commit_poll_writes_everything_together(store: &Store) {
    let instance = instance_with(store, &["contacts"]).await;
    let claimed = claim_jobs(store, "a", t0(), LEASE, 10).await.unwrap();
    assert_eq!(claimed[0].cursor, None);

    let mut commit = commit_with_events(instance.id, "contacts", "a", 0, 3);
    // A second notification carrying a event of the first keeps the event on the first.
    commit
        .notifications
        .push(notification(9, &[&commit.events[0]]));
    let outcome = store.commit_poll(commit).await.unwrap();
    assert_eq!(
        outcome,
        CommitOutcome {
            events_inserted: 3,
            notifications_inserted: 2
        }
    );

    let events = store.list_events(instance.id, 100).await.unwrap();
    assert_eq!(events.len(), 3);
    for e in &events {
        assert_eq!(e.instance_id, instance.id);
        assert_eq!(
            e.notification_id,
            Some(NotificationId("notification-0".into()))
        );
        assert_eq!(e.status, "pending");
        assert_eq!(e.event_type, "UPDATED");
        assert_eq!(e.object_type, "contacts");
        assert_eq!(e.record_json, format!(r#"{{"id":{}}}"#, e.object_id));
        assert_eq!(e.event_date, t0());
        assert_eq!(e.created_at, t0() + 1.second());
    }
    assert_eq!(
        store.list_events(instance.id, 2).await.unwrap().len(),
        2,
        "limit"
    );

    let n = store
        .notification(&NotificationId("notification-0".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n.status, "pending");
    assert_eq!(n.instance_id, instance.id);
    assert_eq!(n.body, r#"{"n":0}"#);
    assert_eq!(n.failed_attempts, 0);
    assert_eq!(n.next_attempt_at, Some(t0() + 1.second()));
    assert_eq!(n.delivered_at, None);
    assert_eq!(
        store.next_notification_due(t0()).await.unwrap(),
        Some(t0() + 1.second())
    );

    let ids: Vec<String> = ["0", "2", "7"].iter().map(|s| s.to_string()).collect();
    let known = store
        .known_objects(instance.id, "contacts", &ids)
        .await
        .unwrap();
    assert_eq!(known.len(), 2);
    assert_eq!(
        known["2"],
        KnownObject {
            content_hash: "hash-2".into(),
            record: Some(r#"{"id":2}"#.into()),
            deleted: false,
            revision: 0,
        }
    );
    assert!(
        store
            .known_objects(instance.id, "companies", &ids)
            .await
            .unwrap()
            .is_empty()
    );

    let job = &store.poll_jobs(instance.id).await.unwrap()[0];
    assert_eq!(job.cursor, Some(t0() + 5.seconds()));
    assert_eq!(job.next_run_at, t0() + 60.seconds());
    assert_eq!(
        job.lease_until,
        Timestamp::UNIX_EPOCH,
        "the lease was released"
    );
    assert_eq!(
        store.next_poll_due().await.unwrap(),
        Some(t0() + 60.seconds())
    );

    // A failed poll keeps the cursor; a commit without a cursor keeps it too.
    let due = t0() + 60.seconds();
    claim_jobs(store, "a", due, LEASE, 10).await.unwrap();
    store
        .fail_poll(
            instance.id,
            "contacts",
            &token_of("a", &job_key(instance.id, "contacts")),
            t0(),
            due + 10.seconds(),
            "HTTP 500",
        )
        .await
        .unwrap();
    let job = &store.poll_jobs(instance.id).await.unwrap()[0];
    assert_eq!(job.cursor, Some(t0() + 5.seconds()));
    assert_eq!(job.next_run_at, due + 10.seconds());
    assert!(
        claim_jobs(store, "b", due + 10.seconds(), LEASE, 10)
            .await
            .unwrap()
            .len()
            == 1
    );
    let mut keep = poll_commit(instance.id, "contacts", "b");
    done(&mut keep).cursor = None;
    store.commit_poll(keep).await.unwrap();
    assert_eq!(
        store.poll_jobs(instance.id).await.unwrap()[0].cursor,
        Some(t0() + 5.seconds())
    );

    // Known objects are chunked: more ids than one query takes still all come back.
    let many_ids: Vec<String> = (0..1200).map(|n| n.to_string()).collect();
    claim_jobs(store, "b", t0() + 60.seconds(), LEASE, 10)
        .await
        .unwrap();
    let mut big = poll_commit(instance.id, "contacts", "b");
    big.observed = many_ids.iter().map(|id| observed(id, "h")).collect();
    store.commit_poll(big).await.unwrap();
    assert_eq!(
        store
            .known_objects(instance.id, "contacts", &many_ids)
            .await
            .unwrap()
            .len(),
        1200
    );
}

pub async fn check_finish_attempt_outcomes(store: &Store) {
    let instance = instance_with(store, &["contacts"]).await;
    claim_jobs(store, "poller", t0(), LEASE, 10).await.unwrap();
    let commit = commit_one_per_event(instance.id, "contacts", "poller", 0, 3);
    store.commit_poll(commit).await.unwrap();

    let now = t0() + 2.seconds();
    let claimed = claim_notifications(store, "d", now, LEASE, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    assert!(
        claim_notifications(store, "e", now, LEASE, 10)
            .await
            .unwrap()
            .is_empty(),
        "claimed twice"
    );
    let id = |n: usize| NotificationId(format!("notification-{n}"));
    let attempt = |n: usize, owner: &str, outcome| AttemptRecord {
        attempt_id: None,
        notification_id: id(n),
        owner: owner.into(),
        lease_token: token_of(owner, &id(n).0),
        attempted_at: now,
        status_code: Some(500),
        latency_ms: 12,
        error: Some("server error".into()),
        response_excerpt: Some("the answer".into()),
        outcome,
    };

    // Not the owner: LeaseLost, and no attempt row.
    let err = store
        .finish_attempt(attempt(0, "e", AttemptOutcome::Delivered))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost), "{err:?}");
    assert!(store.list_attempts(&id(0)).await.unwrap().is_empty());

    let mut delivered = attempt(0, "d", AttemptOutcome::Delivered);
    delivered.status_code = Some(200);
    delivered.error = None;
    store.finish_attempt(delivered).await.unwrap();
    let retry_at = now + 60.seconds();
    store
        .finish_attempt(attempt(1, "d", AttemptOutcome::RetryAt(retry_at)))
        .await
        .unwrap();
    let mut queued = attempt(2, "d", AttemptOutcome::Queued);
    queued.status_code = None;
    queued.error = Some("connection refused".into());
    store.finish_attempt(queued).await.unwrap();

    let n0 = store.notification(&id(0)).await.unwrap().unwrap();
    assert_eq!(n0.status, "delivered");
    assert_eq!(n0.delivered_at, Some(now));
    assert_eq!(n0.failed_attempts, 0);
    let n1 = store.notification(&id(1)).await.unwrap().unwrap();
    assert_eq!(n1.status, "pending");
    assert_eq!(n1.failed_attempts, 1);
    assert_eq!(n1.next_attempt_at, Some(retry_at));
    let n2 = store.notification(&id(2)).await.unwrap().unwrap();
    assert_eq!(n2.status, "queued");
    assert_eq!(n2.failed_attempts, 1);

    let a0 = store.list_attempts(&id(0)).await.unwrap();
    assert_eq!(a0.len(), 1);
    assert_eq!(a0[0].notification_id, id(0));
    assert_eq!(a0[0].status_code, Some(200));
    assert_eq!(a0[0].attempted_at, now);
    assert_eq!(a0[0].latency_ms, 12);
    assert_eq!(a0[0].error, None);
    assert_eq!(a0[0].response_excerpt.as_deref(), Some("the answer"));
    assert_eq!(a0[0].outcome, "delivered");
    let a2 = store.list_attempts(&id(2)).await.unwrap();
    assert_eq!(a2[0].status_code, None);
    assert_eq!(a2[0].error.as_deref(), Some("connection refused"));

    // The lease is released: finishing again is no longer ours.
    let err = store
        .finish_attempt(attempt(0, "d", AttemptOutcome::Delivered))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost), "{err:?}");

    // Only the retry comes back, and only when it is due.
    assert_eq!(
        store.next_notification_due(t0()).await.unwrap(),
        Some(retry_at)
    );
    assert!(
        claim_notifications(store, "d", retry_at - 1.millisecond(), LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = claim_notifications(store, "d", retry_at, LEASE, 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, id(1));
    assert_eq!(again[0].failed_attempts, 1);
    assert_eq!(again[0].instance_id, instance.id);
    assert_eq!(again[0].body, r#"{"n":1}"#);
    store
        .finish_attempt(attempt(1, "d", AttemptOutcome::Delivered))
        .await
        .unwrap();
    assert_eq!(
        store.list_attempts(&id(1)).await.unwrap().len(),
        2,
        "every attempt is a row"
    );
    assert_eq!(store.next_notification_due(t0()).await.unwrap(), None);

    // Events show their notification's status.
    let events = store.list_events(instance.id, 10).await.unwrap();
    let status_of = |object: &str| {
        events
            .iter()
            .find(|e| e.object_id == object)
            .map(|e| e.status.clone())
            .unwrap()
    };
    assert_eq!(status_of("0"), "delivered");
    assert_eq!(status_of("2"), "queued");
}

pub async fn check_claim_order_of_notifications(store: &Store) {
    let instance = instance_with(store, &["a", "b"]).await;
    claim_jobs(store, "p", t0(), LEASE, 10).await.unwrap();
    // "b" is committed first but becomes due later.
    let mut late = commit_with_events(instance.id, "b", "p", 10, 1);
    late.now = t0() + 5.seconds();
    store.commit_poll(late).await.unwrap();
    store
        .commit_poll(commit_with_events(instance.id, "a", "p", 0, 1))
        .await
        .unwrap();
    let claimed = claim_notifications(store, "d", t0() + 10.seconds(), LEASE, 10)
        .await
        .unwrap();
    let ids: Vec<&str> = claimed.iter().map(|n| n.id.0.as_str()).collect();
    assert_eq!(ids, ["notification-0", "notification-10"]);
}

pub async fn check_delete_instance_keeps_history(store: &Store) {
    let instance = instance_with(store, &["contacts"]).await;
    let (other_org, _) = organization(store, 2).await;
    claim_jobs(store, "p", t0(), LEASE, 10).await.unwrap();
    store
        .commit_poll(commit_with_events(instance.id, "contacts", "p", 0, 2))
        .await
        .unwrap();
    claim_jobs(store, "p", t0() + 60.seconds(), LEASE, 10)
        .await
        .unwrap();

    assert!(!store.delete_instance(other_org, instance.id).await.unwrap());
    assert!(store.instance(instance.id).await.unwrap().is_some());
    assert!(
        store
            .delete_instance(instance.organization_id, instance.id)
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_instance(instance.organization_id, instance.id)
            .await
            .unwrap()
    );
    assert!(store.instance(instance.id).await.unwrap().is_none());
    assert!(store.poll_jobs(instance.id).await.unwrap().is_empty());
    assert!(!store.poll_now(instance.id, t0()).await.unwrap());
    let ids = vec!["0".to_string()];
    assert!(
        store
            .known_objects(instance.id, "contacts", &ids)
            .await
            .unwrap()
            .is_empty()
    );

    // History stays; undelivered work is cancelled and never claimed again.
    assert_eq!(store.list_events(instance.id, 10).await.unwrap().len(), 2);
    let notifications = store.list_notifications(instance.id, 10).await.unwrap();
    assert_eq!(notifications.len(), 1);
    assert_eq!(notifications[0].status, "cancelled");
    assert!(
        claim_notifications(store, "d", t0() + 1.hour(), LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.next_notification_due(t0()).await.unwrap(), None);
    // A poll in flight when the instance went away cannot write.
    let err = store
        .commit_poll(commit_with_events(instance.id, "contacts", "p", 5, 1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost), "{err:?}");
}

pub async fn check_poll_now(store: &Store) {
    let instance = instance_with(store, &["contacts", "companies"]).await;
    claim_jobs(store, "p", t0(), LEASE, 10).await.unwrap();
    for resource in ["contacts", "companies"] {
        store
            .commit_poll(poll_commit(instance.id, resource, "p"))
            .await
            .unwrap();
    }
    let asked = t0() + 10.seconds();
    assert!(
        claim_jobs(store, "p", asked, LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.poll_now(instance.id, asked).await.unwrap());
    assert!(
        !store
            .poll_now(InstanceId(instance.id.0 + 1000), asked)
            .await
            .unwrap()
    );
    assert_eq!(store.next_poll_due().await.unwrap(), Some(asked));
    assert_eq!(
        claim_jobs(store, "p", asked, LEASE, 10)
            .await
            .unwrap()
            .len(),
        2
    );
}

/// `poll_now` while a poll of the job is running is not lost: the running poll's commit (or
/// failure) makes the job due at once instead of at its own `next_run_at`, and the request is
/// consumed by the next claim.
pub async fn check_poll_now_during_a_running_poll(store: &Store) {
    let instance = instance_with(store, &["contacts", "companies"]).await;
    assert_eq!(
        claim_jobs(store, "p", t0(), LEASE, 10).await.unwrap().len(),
        2
    );
    let asked = t0() + 1.second();
    assert!(store.poll_now(instance.id, asked).await.unwrap());

    let far = t0() + 3600.seconds();
    let mut commit = poll_commit(instance.id, "contacts", "p");
    done(&mut commit).next_run_at = far;
    commit.now = t0() + 2.seconds();
    store.commit_poll(commit).await.unwrap();
    store
        .fail_poll(
            instance.id,
            "companies",
            &token_of("p", &job_key(instance.id, "companies")),
            t0(),
            far,
            "boom",
        )
        .await
        .unwrap();
    let due: Vec<(String, Timestamp)> = store
        .poll_jobs(instance.id)
        .await
        .unwrap()
        .into_iter()
        .map(|job| (job.resource, job.next_run_at))
        .collect();
    assert_eq!(
        due,
        [
            ("companies".to_string(), asked),
            ("contacts".to_string(), t0() + 2.seconds()),
        ]
    );
    assert_eq!(store.next_poll_due().await.unwrap(), Some(asked));

    // The request was used up: the poll it caused reschedules normally.
    let now = t0() + 3.seconds();
    assert_eq!(
        claim_jobs(store, "p", now, LEASE, 10).await.unwrap().len(),
        2
    );
    let mut commit = poll_commit(instance.id, "contacts", "p");
    done(&mut commit).next_run_at = far;
    commit.now = now;
    store.commit_poll(commit).await.unwrap();
    store
        .fail_poll(
            instance.id,
            "companies",
            &token_of("p", &job_key(instance.id, "companies")),
            t0(),
            far,
            "boom",
        )
        .await
        .unwrap();
    for job in store.poll_jobs(instance.id).await.unwrap() {
        assert_eq!(job.next_run_at, far, "{}", job.resource);
    }

    // A poll_now before a claim is consumed by that claim, not carried to the commit.
    assert!(store.poll_now(instance.id, now).await.unwrap());
    assert_eq!(
        claim_jobs(store, "p", now, LEASE, 10).await.unwrap().len(),
        2
    );
    let mut commit = poll_commit(instance.id, "contacts", "p");
    done(&mut commit).next_run_at = far;
    commit.now = now + 1.second();
    store.commit_poll(commit).await.unwrap();
    let contacts = store.poll_jobs(instance.id).await.unwrap();
    assert_eq!(contacts[1].resource, "contacts");
    assert_eq!(contacts[1].next_run_at, far);
}

/// A command that fails inside a batch rolls back only its own writes, and its neighbours in
/// the same batch commit.
pub async fn check_failed_write_is_isolated(store: &Store) {
    organization(store, 1).await;
    let mut tasks = Vec::new();
    for n in 0..50u8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            if n % 5 == 0 {
                // The organization row goes in, then the user's hash collides with org 1's
                // user: the whole command must vanish.
                store
                    .create_organization("doomed", hash(10 + n), hash(101), t0())
                    .await
            } else {
                store
                    .create_organization("fine", hash(10 + n), hash(110 + n), t0())
                    .await
            }
        }));
    }
    for (n, task) in tasks.into_iter().enumerate() {
        let result = task.await.unwrap();
        assert_eq!(result.is_err(), n % 5 == 0, "command {n}: {result:?}");
    }
    for n in 0..50u8 {
        let principal = store
            .authenticate(hash(10 + n), hash(110 + n))
            .await
            .unwrap();
        assert_eq!(principal.is_some(), n % 5 != 0, "organization {n}");
    }
    // The doomed organizations' hashes are free again: their rows were rolled back.
    store
        .create_organization("retry", hash(10), hash(250), t0())
        .await
        .unwrap();
}

/// Many writers at once: every one is answered and every write lands.
pub async fn check_concurrent_commits_all_land(store: &Store) {
    const JOBS: usize = 200;
    let resources: Vec<String> = (0..JOBS).map(|n| format!("resource-{n}")).collect();
    let refs: Vec<&str> = resources.iter().map(String::as_str).collect();
    let instance = instance_with(store, &refs).await;
    let claimed = claim_jobs(store, "p", t0(), LEASE, JOBS as u32)
        .await
        .unwrap();
    assert_eq!(claimed.len(), JOBS);

    let mut tasks = Vec::new();
    for (n, resource) in resources.into_iter().enumerate() {
        let store = store.clone();
        // Built here: the claims' tokens are this task's (see `TOKENS`).
        let commit = commit_with_events(instance.id, &resource, "p", n, 1);
        tasks.push(tokio::spawn(async move { store.commit_poll(commit).await }));
    }
    for task in tasks {
        let outcome = task.await.unwrap().unwrap();
        assert_eq!(outcome.events_inserted, 1);
        assert_eq!(outcome.notifications_inserted, 1);
    }
    assert_eq!(
        store.list_events(instance.id, 1000).await.unwrap().len(),
        JOBS
    );
    assert_eq!(
        store
            .list_notifications(instance.id, 1000)
            .await
            .unwrap()
            .len(),
        JOBS
    );
    let jobs = store.poll_jobs(instance.id).await.unwrap();
    assert!(jobs.iter().all(|j| j.cursor == Some(t0() + 5.seconds())));
}

/// The cursor and the settled instant never move backwards (a late poll may commit older
/// results); the clock lag bound is replaced when given and kept when not, and a claim hands
/// all three to the next poll.
pub async fn check_cursor_never_moves_backwards(store: &Store) {
    let instance = instance_with(store, &["contacts"]).await;
    let lags = [Some(SignedDuration::from_millis(1500)), None];
    for (round, cursor) in [t0() + 50.seconds(), t0() + 20.seconds()]
        .into_iter()
        .enumerate()
    {
        let jobs = claim_jobs(store, "node-a", t0() + 100.seconds(), LEASE, 10)
            .await
            .unwrap();
        assert_eq!(jobs.len(), 1);
        if round == 1 {
            assert_eq!(jobs[0].settled_before, Some(t0() + 40.seconds()));
            assert_eq!(jobs[0].clock_lag, Some(SignedDuration::from_millis(1500)));
        }
        let mut commit = poll_commit(instance.id, "contacts", "node-a");
        done(&mut commit).cursor = Some(cursor);
        done(&mut commit).settled_before = Some(cursor - 10.seconds());
        done(&mut commit).clock_lag = lags[round];
        done(&mut commit).next_run_at = t0();
        store.commit_poll(commit).await.unwrap();
    }
    let jobs = store.poll_jobs(instance.id).await.unwrap();
    assert_eq!(jobs[0].cursor, Some(t0() + 50.seconds()));
    assert_eq!(jobs[0].settled_before, Some(t0() + 40.seconds()));
    assert_eq!(jobs[0].clock_lag, Some(SignedDuration::from_millis(1500)));
}

pub async fn check_known_events_are_not_notified_again(store: &Store) {
    let instance = instance_with(store, &["contacts"]).await;
    claim_jobs(store, "node-a", t0(), LEASE, 10).await.unwrap();
    let first = commit_with_events(instance.id, "contacts", "node-a", 1, 3);
    store.commit_poll(first).await.unwrap();
    // The same events again, grouped into a notification with another id.
    claim_jobs(store, "node-a", t0() + 100.seconds(), LEASE, 10)
        .await
        .unwrap();
    let mut again = commit_with_events(instance.id, "contacts", "node-a", 1, 3);
    again.notifications[0].id = NotificationId("another-grouping".into());
    let outcome = store.commit_poll(again).await.unwrap();
    assert_eq!(
        outcome,
        CommitOutcome {
            events_inserted: 0,
            notifications_inserted: 0
        }
    );
    let notifications = store.list_notifications(instance.id, 10).await.unwrap();
    assert_eq!(notifications.len(), 1, "{notifications:?}");
}

pub async fn check_a_new_claim_fences_the_same_owners_old_one(store: &Store) {
    let instance = instance_with(store, &["contacts"]).await;
    let first = claim_jobs(store, "a", t0(), LEASE, 10).await.unwrap();
    let old = first[0].lease_token.clone().unwrap();
    // The same node claims the job again after its lease ended (a restarted node, or a poll
    // that outlived its lease): the old claim must not be able to write any more.
    let later = t0() + 31.seconds();
    let again = claim_jobs(store, "a", later, LEASE, 10).await.unwrap();
    let new = again[0].lease_token.clone().unwrap();
    assert_ne!(old, new, "every claim gets its own token");

    let mut stale = commit_with_events(instance.id, "contacts", "a", 0, 2);
    stale.lease_token = old.clone();
    let err = store.commit_poll(stale).await.unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost), "{err:?}");
    let err = store
        .renew_poll_lease(instance.id, "contacts", &old, later + 1.hour())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost), "{err:?}");
    let err = store
        .fail_poll(instance.id, "contacts", &old, later, later, "late")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost), "{err:?}");
    assert!(store.list_events(instance.id, 10).await.unwrap().is_empty());

    let outcome = store
        .commit_poll(commit_with_events(instance.id, "contacts", "a", 0, 2))
        .await
        .unwrap();
    assert_eq!(outcome.events_inserted, 2);
}

pub async fn check_renewing_a_poll_lease(store: &Store) {
    let instance = instance_with(store, &["contacts"]).await;
    let jobs = claim_jobs(store, "a", t0(), LEASE, 10).await.unwrap();
    let token = jobs[0].lease_token.clone().unwrap();
    let renewed_until = t0() + 80.seconds();
    store
        .renew_poll_lease(instance.id, "contacts", &token, renewed_until)
        .await
        .unwrap();
    // A renewal never shortens a lease.
    store
        .renew_poll_lease(instance.id, "contacts", &token, t0() + 10.seconds())
        .await
        .unwrap();
    let job = &store.poll_jobs(instance.id).await.unwrap()[0];
    assert_eq!(job.lease_until, renewed_until);
    assert!(
        claim_jobs(store, "b", t0() + 40.seconds(), LEASE, 10)
            .await
            .unwrap()
            .is_empty(),
        "a renewed lease was taken over at its original end"
    );
    assert_eq!(store.next_poll_due().await.unwrap(), Some(renewed_until));
    let outcome = store
        .commit_poll(commit_with_events(instance.id, "contacts", "a", 0, 1))
        .await
        .unwrap();
    assert_eq!(outcome.events_inserted, 1);
}

pub async fn check_releasing_a_nodes_leases(store: &Store) {
    let instance = instance_with(store, &["contacts", "companies"]).await;
    let a_jobs = claim_jobs(store, "a", t0(), LEASE, 1).await.unwrap();
    let a_resource = a_jobs[0].resource.clone();
    claim_jobs(store, "other", t0(), LEASE, 1).await.unwrap();
    let mut commit = poll_commit(instance.id, &a_resource, "a");
    commit.events = vec![event(0, "1"), event(1, "2")];
    commit.notifications = vec![
        notification(0, &[&commit.events[0]]),
        notification(1, &[&commit.events[1]]),
    ];
    done(&mut commit).next_run_at = t0();
    store.commit_poll(commit).await.unwrap();
    claim_jobs(store, "a", t0(), LEASE, 1).await.unwrap();
    let notes = claim_notifications(store, "a", t0() + 1.second(), LEASE, 1)
        .await
        .unwrap();
    assert_eq!(notes.len(), 1);

    // "a" restarts: its leases (one job, one notification) are freed at once, "other"'s kept.
    assert_eq!(store.release_leases("a").await.unwrap(), 2);
    let now = t0() + 2.seconds();
    let jobs = claim_jobs(store, "b", now, LEASE, 10).await.unwrap();
    assert_eq!(jobs.len(), 1, "only a's job is free again");
    assert_eq!(jobs[0].resource, a_resource);
    let notes_b = claim_notifications(store, "b", now, LEASE, 10)
        .await
        .unwrap();
    assert_eq!(notes_b.len(), 2, "a's notification and the unclaimed one");

    // The old process's claims cannot write.
    let attempt = AttemptRecord {
        attempt_id: None,
        notification_id: notes[0].id.clone(),
        owner: "a".into(),
        lease_token: notes[0].lease_token.clone(),
        attempted_at: now,
        status_code: Some(200),
        latency_ms: 1,
        error: None,
        response_excerpt: None,
        outcome: AttemptOutcome::Delivered,
    };
    let err = store.finish_attempt(attempt).await.unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost), "{err:?}");
    assert_eq!(store.release_leases("nobody").await.unwrap(), 0);
}

pub async fn check_backlogs(store: &Store) {
    let instance = instance_with(store, &["contacts", "companies"]).await;
    let before = store.poll_backlog(t0() - 1.second()).await.unwrap();
    assert_eq!(before, Backlog::default(), "nothing due yet");
    let due = store.poll_backlog(t0() + 5.seconds()).await.unwrap();
    assert_eq!(due.due, 2);
    assert_eq!(due.oldest_due, Some(t0()));
    // A leased job is not waiting.
    claim_jobs(store, "a", t0(), LEASE, 1).await.unwrap();
    assert_eq!(store.poll_backlog(t0()).await.unwrap().due, 1);

    let claimed = claim_jobs(store, "a", t0(), LEASE, 1).await.unwrap();
    let commit = commit_one_per_event(instance.id, &claimed[0].resource, "a", 0, 2);
    store.commit_poll(commit).await.unwrap();
    let now = t0() + 10.seconds();
    let backlog = store.delivery_backlog(now).await.unwrap();
    assert_eq!(backlog.due, 2);
    assert_eq!(backlog.oldest_due, Some(t0() + 1.second()));
    let notes = claim_notifications(store, "d", now, LEASE, 1)
        .await
        .unwrap();
    assert_eq!(store.delivery_backlog(now).await.unwrap().due, 1);
    assert_eq!(store.queued_notifications().await.unwrap(), 0);
    store
        .finish_attempt(AttemptRecord {
            attempt_id: None,
            notification_id: notes[0].id.clone(),
            owner: "d".into(),
            lease_token: notes[0].lease_token.clone(),
            attempted_at: now,
            status_code: None,
            latency_ms: 1,
            error: Some("refused".into()),
            response_excerpt: None,
            outcome: AttemptOutcome::Queued,
        })
        .await
        .unwrap();
    assert_eq!(store.queued_notifications().await.unwrap(), 1);
}

pub async fn check_a_poll_commits_page_by_page_and_resumes_from_its_checkpoint(store: &Store) {
    let instance = instance_with(store, &["contacts"]).await;
    claim_jobs(store, "a", t0(), LEASE, 10).await.unwrap();
    let mut page = commit_with_events(instance.id, "contacts", "a", 0, 2);
    page.progress = PollProgress::Checkpoint("after page 1".into());
    assert_eq!(store.commit_poll(page).await.unwrap().events_inserted, 2);
    // The lease is kept: nobody else can claim the job while its poll goes on.
    assert!(
        claim_jobs(store, "b", t0() + 10.seconds(), LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let job = &store.poll_jobs(instance.id).await.unwrap()[0];
    assert_eq!(job.cursor, None, "a page does not move the cursor");
    assert_eq!(job.checkpoint.as_deref(), Some("after page 1"));

    // a dies; b takes the job over after the lease and finds where to resume.
    let resumed = claim_jobs(store, "b", t0() + 31.seconds(), LEASE, 10)
        .await
        .unwrap();
    assert_eq!(resumed[0].checkpoint.as_deref(), Some("after page 1"));
    // a's late page is refused.
    let mut late = commit_with_events(instance.id, "contacts", "a", 5, 1);
    late.progress = PollProgress::Checkpoint("after page 2".into());
    assert!(matches!(
        store.commit_poll(late).await.unwrap_err(),
        StoreError::LeaseLost
    ));
    // A failure keeps the checkpoint, so the next run resumes there too.
    store
        .fail_poll(
            instance.id,
            "contacts",
            &token_of("b", &job_key(instance.id, "contacts")),
            t0() + 32.seconds(),
            t0() + 40.seconds(),
            "ConnectWise answered 500",
        )
        .await
        .unwrap();
    let health = &store
        .poll_health(instance.id, t0() + 33.seconds())
        .await
        .unwrap()[0];
    assert_eq!(
        health.last_error.as_deref(),
        Some("ConnectWise answered 500")
    );
    assert_eq!(health.last_error_at, Some(t0() + 32.seconds()));
    assert!(!health.running);
    let again = claim_jobs(store, "b", t0() + 40.seconds(), LEASE, 10)
        .await
        .unwrap();
    assert_eq!(again[0].checkpoint.as_deref(), Some("after page 1"));

    let mut last = commit_with_events(instance.id, "contacts", "b", 2, 1);
    done(&mut last).records_seen = 3;
    done(&mut last).events_emitted = 3;
    store.commit_poll(last).await.unwrap();
    let job = &store.poll_jobs(instance.id).await.unwrap()[0];
    assert_eq!(
        job.checkpoint, None,
        "the end of a poll clears its checkpoint"
    );
    assert_eq!(job.cursor, Some(t0() + 5.seconds()));
    let health = &store
        .poll_health(instance.id, t0() + 41.seconds())
        .await
        .unwrap()[0];
    assert_eq!(health.last_error, None);
    assert_eq!(health.last_success_at, Some(t0() + 1.second()));
    assert_eq!((health.records_seen, health.events_emitted), (3, 3));
    assert_eq!(store.list_events(instance.id, 10).await.unwrap().len(), 3);
}

pub async fn check_known_objects_keep_their_last_version_and_deletions(store: &Store) {
    let instance = instance_with(store, &["contacts"]).await;
    claim_jobs(store, "a", t0(), LEASE, 10).await.unwrap();
    let mut first = poll_commit(instance.id, "contacts", "a");
    first.observed = ["3", "10", "2", "x-9"]
        .iter()
        .map(|id| observed(id, &format!("v1-{id}")))
        .collect();
    first.observed[1].record = r#"{"id":10,"v":1}"#.into();
    store.commit_poll(first).await.unwrap();
    claim_jobs(store, "a", t0() + 60.seconds(), LEASE, 10)
        .await
        .unwrap();
    let mut second = poll_commit(instance.id, "contacts", "a");
    second.now = t0() + 61.seconds();
    let mut changed = observed("10", "v2-10");
    changed.record = r#"{"id":10,"v":2}"#.into();
    second.observed = vec![changed];
    second.vanished = vec!["3".into()];
    store.commit_poll(second).await.unwrap();

    let ids: Vec<String> = ["2", "3", "10", "x-9", "404"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let known = store
        .known_objects(instance.id, "contacts", &ids)
        .await
        .unwrap();
    assert_eq!(known.len(), 4);
    assert_eq!(known["10"].content_hash, "v2-10");
    assert_eq!(known["10"].record.as_deref(), Some(r#"{"id":10,"v":2}"#));
    assert!(known["3"].deleted, "vanished objects are marked deleted");
    assert_eq!(
        known["3"].record.as_deref(),
        Some(r#"{"id":3}"#),
        "and keep their last version"
    );
    assert!(!known["2"].deleted);

    // Known ids in numeric order (not text order), without the deleted and the non-numeric.
    let numbers = |ids: Vec<KnownId>| ids.iter().map(|k| k.number).collect::<Vec<_>>();
    let all = store
        .known_ids(instance.id, "contacts", None, i64::MAX, 100)
        .await
        .unwrap();
    assert_eq!(numbers(all.clone()), [2, 10]);
    assert_eq!(all[1].object_id, "10");
    assert_eq!(all[1].seen_at, Some(t0() + 61.seconds()));
    assert_eq!(all[0].seen_at, Some(t0() + 1.second()));
    let window = store
        .known_ids(instance.id, "contacts", Some(2), 10, 100)
        .await
        .unwrap();
    assert_eq!(numbers(window), [10]);
    let limited = store
        .known_ids(instance.id, "contacts", None, i64::MAX, 1)
        .await
        .unwrap();
    assert_eq!(numbers(limited), [2]);
    assert_eq!(store.known_count(instance.id, "contacts").await.unwrap(), 3);
}

/// A known object's revision counts the changes of its stored state (content hash, deleted
/// flag), and only those: event ids include it, so that an object coming back to an earlier
/// content is a new change (`hubhook_core::event_id`).
pub async fn check_known_object_revisions_count_changes_of_state(store: &Store) {
    let instance = instance_with(store, &["contacts"]).await;
    // Each step is one poll's commit: what it observed of object 7 (content hash, deleted
    // flag), or `None`: it vanished.
    let steps: [Option<(&str, bool)>; 7] = [
        Some(("a", false)), // first sighting: revision 0
        Some(("a", false)), // seen again unchanged: still 0
        Some(("b", false)), // changed: 1
        Some(("b", true)),  // its deleted flag set: 2
        Some(("b", true)),  // seen deleted again: still 2
        Some(("a", false)), // alive with its first content: 3
        None,               // vanished: 4
    ];
    let mut revisions = Vec::new();
    for (n, step) in (0_i64..).zip(steps) {
        let at = t0() + (60 * n).seconds();
        assert_eq!(
            claim_jobs(store, "a", at, LEASE, 10).await.unwrap().len(),
            1
        );
        let mut commit = poll_commit(instance.id, "contacts", "a");
        commit.now = at + 1.second();
        done(&mut commit).next_run_at = at + 60.seconds();
        match step {
            Some((hash, deleted)) => {
                commit.observed = vec![ObservedObject {
                    deleted,
                    ..observed("7", hash)
                }]
            }
            None => commit.vanished = vec!["7".into()],
        }
        store.commit_poll(commit).await.unwrap();
        let known = store
            .known_objects(instance.id, "contacts", &["7".to_string()])
            .await
            .unwrap();
        revisions.push(known["7"].revision);
    }
    assert_eq!(revisions, [0, 0, 1, 2, 2, 3, 4]);
    // Vanishing again once deleted changes nothing.
    claim_jobs(store, "a", t0() + 420.seconds(), LEASE, 10)
        .await
        .unwrap();
    let mut again = poll_commit(instance.id, "contacts", "a");
    again.now = t0() + 421.seconds();
    again.vanished = vec!["7".into()];
    store.commit_poll(again).await.unwrap();
    let known = store
        .known_objects(instance.id, "contacts", &["7".to_string()])
        .await
        .unwrap();
    assert_eq!((known["7"].revision, known["7"].deleted), (4, true));
}

pub async fn check_a_held_mass_delete_waits_for_a_decision(store: &Store) {
    let instance = instance_with(store, &["contacts"]).await;
    claim_jobs(store, "a", t0(), LEASE, 10).await.unwrap();
    let mut baseline = poll_commit(instance.id, "contacts", "a");
    let reconcile_at = t0() + 3600.seconds();
    done(&mut baseline).schedule_reconcile_at = Some(reconcile_at);
    store.commit_poll(baseline).await.unwrap();
    assert_eq!(
        store.poll_jobs(instance.id).await.unwrap()[0].next_reconcile_at,
        Some(reconcile_at)
    );
    assert!(
        !store
            .resolve_mass_delete(instance.id, "contacts", MassDeleteAction::Confirm, t0())
            .await
            .unwrap(),
        "nothing is held"
    );

    // A reconciliation holds back 40 vanished records.
    let at = t0() + 3600.seconds();
    claim_jobs(store, "a", at, LEASE, 10).await.unwrap();
    let mut held = poll_commit(instance.id, "contacts", "a");
    held.now = at;
    done(&mut held).next_run_at = at + 60.seconds();
    done(&mut held).reconciled = Some(Reconciled {
        next_at: at + 3600.seconds(),
        mass_delete_held: Some(40),
    });
    store.commit_poll(held).await.unwrap();
    let health = &store.poll_health(instance.id, at).await.unwrap()[0];
    assert_eq!(health.mass_delete_held, Some(40));
    assert_eq!(health.last_reconciled_at, Some(at));
    assert_eq!(health.next_reconcile_at, Some(at + 3600.seconds()));

    // The user confirms: the job is due now, and its next claim carries the decision.
    let decided = at + 10.seconds();
    assert!(
        store
            .resolve_mass_delete(instance.id, "contacts", MassDeleteAction::Dismiss, decided)
            .await
            .unwrap()
    );
    let jobs = claim_jobs(store, "a", decided, LEASE, 10).await.unwrap();
    assert_eq!(jobs.len(), 1, "a decision makes the job due at once");
    assert_eq!(jobs[0].mass_delete_action, Some(MassDeleteAction::Dismiss));
    assert_eq!(jobs[0].next_reconcile_at, Some(decided));
    // The reconciliation that acts on it clears both.
    let mut acted = poll_commit(instance.id, "contacts", "a");
    acted.now = decided;
    done(&mut acted).reconciled = Some(Reconciled {
        next_at: decided + 3600.seconds(),
        mass_delete_held: None,
    });
    store.commit_poll(acted).await.unwrap();
    let job = &store.poll_jobs(instance.id).await.unwrap()[0];
    assert_eq!(job.mass_delete_action, None);
    let health = &store.poll_health(instance.id, decided).await.unwrap()[0];
    assert_eq!(health.mass_delete_held, None);
}

pub async fn check_deferring_a_poll_hands_it_back(store: &Store) {
    let instance = instance_with(store, &["contacts"]).await;
    let jobs = claim_jobs(store, "a", t0(), LEASE, 10).await.unwrap();
    let token = jobs[0].lease_token.clone().unwrap();
    let later = t0() + 2.seconds();
    store
        .defer_poll(instance.id, "contacts", &token, later)
        .await
        .unwrap();
    let job = &store.poll_jobs(instance.id).await.unwrap()[0];
    assert_eq!(job.next_run_at, later);
    assert_eq!(job.cursor, None, "a deferral is not a poll");
    assert!(
        store.poll_health(instance.id, t0()).await.unwrap()[0]
            .last_error
            .is_none(),
        "a deferral is not a failure"
    );
    // The old claim is over: it can neither defer nor commit again.
    assert!(matches!(
        store
            .defer_poll(instance.id, "contacts", &token, later)
            .await,
        Err(StoreError::LeaseLost)
    ));
    assert!(
        claim_jobs(store, "b", t0() + 1.seconds(), LEASE, 10)
            .await
            .unwrap()
            .is_empty(),
        "a deferred job was claimed before its time"
    );
    let again = claim_jobs(store, "b", later, LEASE, 10).await.unwrap();
    assert_eq!(again.len(), 1);
}

pub async fn check_a_callback_makes_its_jobs_due(store: &Store) {
    let instance = instance_with(store, &["companies", "contacts"]).await;
    claim_jobs(store, "a", t0(), LEASE, 10).await.unwrap();
    for resource in ["companies", "contacts"] {
        let mut commit = poll_commit(instance.id, resource, "a");
        done(&mut commit).schedule_reconcile_at = Some(t0() + 3600.seconds());
        store.commit_poll(commit).await.unwrap();
    }
    let at = t0() + 10.seconds();
    let gap = Duration::from_secs(60);
    let only = ["contacts".to_string()];

    // An update: the job is due now; its reconciliation stays where it was.
    let touched = store
        .callback_received(instance.id, Some(&only), false, at, gap)
        .await
        .unwrap();
    assert_eq!(touched, vec!["contacts".to_string()]);
    let jobs = store.poll_jobs(instance.id).await.unwrap();
    let job = |name: &str| jobs.iter().find(|j| j.resource == name).unwrap().clone();
    assert_eq!(job("contacts").next_run_at, at);
    assert_eq!(
        job("contacts").next_reconcile_at,
        Some(t0() + 3600.seconds())
    );
    assert_eq!(
        job("companies").next_run_at,
        t0() + 60.seconds(),
        "another resource"
    );

    // A delete brings reconciliation forward, never before the gap after the last one.
    store
        .callback_received(instance.id, Some(&only), true, at, gap)
        .await
        .unwrap();
    let jobs = store.poll_jobs(instance.id).await.unwrap();
    let contacts = jobs.iter().find(|j| j.resource == "contacts").unwrap();
    assert_eq!(contacts.next_reconcile_at, Some(at));

    // Unknown kinds of records: every job of the instance.
    let touched = store
        .callback_received(instance.id, None, false, at, gap)
        .await
        .unwrap();
    assert_eq!(touched.len(), 2);
    // Another instance's jobs are never touched.
    let other = store
        .callback_received(InstanceId(instance.id.0 + 1000), None, true, at, gap)
        .await
        .unwrap();
    assert!(other.is_empty());
}

/// A replay stores its notifications under the instance's organization, and stores nothing
/// for an instance deleted meanwhile (they would belong to no organization, pending for ever).
pub async fn check_replays_belong_to_a_live_instance(store: &Store) {
    let instance = instance_with(store, &["contacts"]).await;
    let replay = |n: usize| {
        vec![(
            NotificationId(format!("original-{n}")),
            notification(n, &[]),
        )]
    };
    assert_eq!(
        store
            .insert_replays(instance.id, replay(1), t0())
            .await
            .unwrap(),
        1
    );
    let stored = store
        .notification(&NotificationId("notification-1".into()))
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(stored.instance_id, instance.id);
    assert!(
        store
            .delete_instance(instance.organization_id, instance.id)
            .await
            .unwrap()
    );
    assert!(matches!(
        store.insert_replays(instance.id, replay(2), t0()).await,
        Err(StoreError::NotFound)
    ));
    assert!(
        store
            .notification(&NotificationId("notification-2".into()))
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn check_webhook_secrets_rotate_with_an_overlap(store: &Store) {
    let instance = instance_with(store, &["contacts"]).await;
    let org = instance.organization_id;
    let (other_org, _) = organization(store, 2).await;
    assert_eq!(store.webhook_secrets(instance.id).await.unwrap(), None);

    let set = |org, secret: &str, now| {
        store.rotate_webhook_secret(
            org,
            instance.id,
            secret.into(),
            now,
            Duration::from_secs(60),
        )
    };
    assert!(set(org, "whsec_first", t0()).await.unwrap());
    let first = store.webhook_secrets(instance.id).await.unwrap().unwrap();
    assert_eq!(first.current, "whsec_first");
    assert_eq!(first.retired, [], "nothing to overlap with at creation");
    assert_eq!(first.updated_at, t0());

    // Another organization's rotation is refused and changes nothing.
    assert!(!set(other_org, "whsec_stolen", t0()).await.unwrap());
    assert_eq!(
        store.webhook_secrets(instance.id).await.unwrap().unwrap(),
        first
    );

    let later = t0() + 10.seconds();
    assert!(set(org, "whsec_second", later).await.unwrap());
    let second = store.webhook_secrets(instance.id).await.unwrap().unwrap();
    assert_eq!(second.current, "whsec_second");
    assert_eq!(
        second.retired,
        [("whsec_first".to_string(), later + 60.seconds())]
    );
    // A second rotation inside the first one's overlap (a client that lost the answer and
    // asked again) keeps both earlier secrets signing, each until its own overlap ends.
    let again = later + 5.seconds();
    assert!(set(org, "whsec_third", again).await.unwrap());
    let third = store.webhook_secrets(instance.id).await.unwrap().unwrap();
    assert_eq!(third.current, "whsec_third");
    assert_eq!(
        third.retired,
        [
            ("whsec_second".to_string(), again + 60.seconds()),
            ("whsec_first".to_string(), later + 60.seconds()),
        ]
    );
    // Once the first overlap has ended, the next rotation drops it.
    let past = later + 61.seconds();
    assert!(set(org, "whsec_fourth", past).await.unwrap());
    let fourth = store.webhook_secrets(instance.id).await.unwrap().unwrap();
    assert_eq!(
        fourth.retired,
        [
            ("whsec_third".to_string(), past + 60.seconds()),
            ("whsec_second".to_string(), again + 60.seconds()),
        ]
    );
    assert!(
        !format!("{fourth:?}").contains("whsec_"),
        "Debug masks the secrets"
    );

    assert!(store.delete_instance(org, instance.id).await.unwrap());
    assert_eq!(store.webhook_secrets(instance.id).await.unwrap(), None);
}

/// Owner "d"'s attempt of `claimed` answered 410 at `at`: the subscription is deactivated.
fn answered_gone(claimed: &PendingNotification, at: Timestamp) -> AttemptRecord {
    AttemptRecord {
        attempt_id: None,
        notification_id: claimed.id.clone(),
        owner: "d".into(),
        lease_token: claimed.lease_token.clone(),
        attempted_at: at,
        status_code: Some(410),
        latency_ms: 3,
        error: Some("callback answered HTTP 410".into()),
        response_excerpt: Some("gone".into()),
        outcome: AttemptOutcome::Deactivated,
    }
}

/// A notification claimed beside the one whose answer deactivates the subscription, and
/// given back unattempted (its receiver's breaker open, or busy), is queued like the others,
/// not left due for when the breaker closes (it showed as `failed` until then). Before the
/// deactivation, a give-back keeps it due at the time given; after a delete, one cancelled
/// stays cancelled. Fails if a release ignores the deactivation, or revives a cancelled one.
pub async fn check_a_notification_given_back_after_a_deactivation_is_queued(store: &Store) {
    let instance = instance_with(store, &["contacts"]).await;
    claim_jobs(store, "poller", t0(), LEASE, 10).await.unwrap();
    let commit = commit_one_per_event(instance.id, "contacts", "poller", 0, 5);
    store.commit_poll(commit).await.unwrap();
    let now = t0() + 2.seconds();
    let claimed = claim_notifications(store, "d", now, LEASE, 5)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 5);
    let later = now + 30.seconds();
    store
        .release_notification(&claimed[2].id, &claimed[2].lease_token, later, None)
        .await
        .unwrap();
    let before = store.notification(&claimed[2].id).await.unwrap().unwrap();
    assert_eq!(
        (before.status.as_str(), before.next_attempt_at),
        ("pending", Some(later))
    );

    store
        .finish_attempt(answered_gone(&claimed[0], now))
        .await
        .unwrap();
    store
        .release_notification(&claimed[1].id, &claimed[1].lease_token, later, None)
        .await
        .unwrap();
    let after = store.notification(&claimed[1].id).await.unwrap().unwrap();
    assert_eq!(
        (after.status.as_str(), after.next_attempt_at),
        ("queued", None)
    );
    // The one given back before the deactivation was queued by it.
    let earlier = store.notification(&claimed[2].id).await.unwrap().unwrap();
    assert_eq!(earlier.status, "queued");
    // Cancelled by a delete while its claim still held it (a delete keeps the lease), then
    // given back: it stays cancelled. The deactivation goes with the instance (every claim
    // walks the deactivations).
    let org = instance.organization_id;
    assert!(store.delete_instance(org, instance.id).await.unwrap());
    assert_eq!(store.deactivation(instance.id).await.unwrap(), None);
    // An attempt still in flight at the delete (it keeps its lease) that ends in a
    // deactivation leaves none behind either.
    store
        .finish_attempt(answered_gone(&claimed[4], now))
        .await
        .unwrap();
    assert_eq!(store.deactivation(instance.id).await.unwrap(), None);
    store
        .release_notification(&claimed[3].id, &claimed[3].lease_token, later, None)
        .await
        .unwrap();
    let cancelled = store.notification(&claimed[3].id).await.unwrap().unwrap();
    assert_eq!(cancelled.status, "cancelled");
}

pub async fn check_a_deactivated_subscription_queues_until_redelivery(store: &Store) {
    let instance = instance_with(store, &["contacts"]).await;
    let org = instance.organization_id;
    claim_jobs(store, "poller", t0(), LEASE, 10).await.unwrap();
    let commit = commit_one_per_event(instance.id, "contacts", "poller", 0, 3);
    store.commit_poll(commit).await.unwrap();
    let id = |n: usize| NotificationId(format!("notification-{n}"));
    let now = t0() + 2.seconds();
    let versions = store
        .delivery_config_versions(&[instance.id])
        .await
        .unwrap();
    let before = versions[&instance.id];

    // One claimed notification is answered 410: the subscription is deactivated and the other
    // two are queued without being tried.
    let claimed = claim_notifications(store, "d", now, LEASE, 1)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let gone = claimed[0].id.clone();
    store
        .finish_attempt(answered_gone(&claimed[0], now))
        .await
        .unwrap();
    let deactivation = store.deactivation(instance.id).await.unwrap().unwrap();
    assert_eq!(deactivation.deactivated_at, now);
    assert_eq!(deactivation.reason, "callback answered HTTP 410");
    assert!(
        claim_notifications(store, "d", now + 1.hours(), LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let filter = |statuses: &[&str]| NotificationFilter {
        organization: org,
        instance: Some(instance.id),
        statuses: statuses.iter().map(|s| s.to_string()).collect(),
        since: None,
        until: None,
        after: None,
        limit: 10,
        bodies: true,
    };
    let queued = store.find_notifications(filter(&["queued"])).await.unwrap();
    assert_eq!(queued.len(), 3, "{queued:?}");
    assert_eq!(
        store.attempt_counts(&[gone.clone(), id(9)]).await.unwrap(),
        [1, 0]
    );

    // Without bodies: the same rows, bodies left empty.
    let mut bare = filter(&["queued"]);
    bare.bodies = false;
    let bare = store.find_notifications(bare).await.unwrap();
    assert_eq!(
        bare.iter().map(|n| &n.id).collect::<Vec<_>>(),
        queued.iter().map(|n| &n.id).collect::<Vec<_>>()
    );
    assert!(bare.iter().all(|n| n.body.is_empty()), "{bare:?}");
    assert!(queued.iter().all(|n| !n.body.is_empty()), "{queued:?}");

    // Another organization sees none of them.
    let (other, _) = organization(store, 2).await;
    let mut theirs = filter(&[]);
    theirs.organization = other;
    assert!(store.find_notifications(theirs).await.unwrap().is_empty());

    // Paging: newest first, the cursor continues after the last one shown.
    let mut first_page = filter(&[]);
    first_page.limit = 2;
    let page = store.find_notifications(first_page.clone()).await.unwrap();
    assert_eq!(page.len(), 2);
    let mut next = first_page;
    next.after = Some((page[1].created_at, page[1].id.clone()));
    let rest = store.find_notifications(next).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert!(!page.iter().any(|n| n.id == rest[0].id));

    // Redelivery reactivates and makes them due with a fresh schedule.
    let due = store
        .redeliver(
            instance.id,
            queued.iter().map(|n| n.id.clone()).collect(),
            Redeliver::Undelivered,
            now,
        )
        .await
        .unwrap();
    assert_eq!(due, 3);
    assert_eq!(store.deactivation(instance.id).await.unwrap(), None);
    let again = claim_notifications(store, "d", now, LEASE, 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 3);
    assert!(again.iter().all(|n| n.failed_attempts == 0));
    assert_eq!(
        store.list_attempts(&gone).await.unwrap().len(),
        1,
        "history kept"
    );

    // Settings: stored per key, and they change the configuration version.
    assert!(store.organization_settings(org).await.unwrap().is_empty());
    let settings = object(json!({ "notification.webhook.failure.policy": "queue" }));
    store
        .update_organization_settings(org, settings.clone(), now)
        .await
        .unwrap();
    assert_eq!(store.organization_settings(org).await.unwrap(), settings);
    let after = store
        .delivery_config_versions(&[instance.id])
        .await
        .unwrap()[&instance.id];
    assert_ne!(before, after);
}

/// A notification stored after its subscription was deactivated (a poll that was running
/// then) is queued by the next claim instead of being tried.
pub async fn check_a_notification_stored_after_a_deactivation_is_queued_not_tried(store: &Store) {
    let instance = instance_with(store, &["contacts", "accounts"]).await;
    claim_jobs(store, "poller", t0(), LEASE, 10).await.unwrap();
    store
        .commit_poll(commit_one_per_event(
            instance.id,
            "contacts",
            "poller",
            0,
            1,
        ))
        .await
        .unwrap();
    let now = t0() + 2.seconds();
    let claimed = claim_notifications(store, "d", now, LEASE, 1)
        .await
        .unwrap();
    store
        .finish_attempt(answered_gone(&claimed[0], now))
        .await
        .unwrap();
    store
        .commit_poll(commit_one_per_event(
            instance.id,
            "accounts",
            "poller",
            10,
            2,
        ))
        .await
        .unwrap();

    let later = claim_notifications(store, "d", now + 1.hours(), LEASE, 10)
        .await
        .unwrap();
    assert!(later.is_empty(), "{later:?}");
    let queued = store
        .find_notifications(NotificationFilter {
            organization: instance.organization_id,
            instance: Some(instance.id),
            statuses: vec!["queued".to_owned()],
            since: None,
            until: None,
            after: None,
            limit: 10,
            bodies: true,
        })
        .await
        .unwrap();
    let mut ids: Vec<_> = queued.iter().map(|n| n.id.0.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        ["notification-0", "notification-10", "notification-11"]
    );
    assert_eq!(
        store
            .attempt_counts(&[
                NotificationId("notification-10".into()),
                NotificationId("notification-11".into())
            ])
            .await
            .unwrap(),
        [0, 0],
        "never tried"
    );
}

pub async fn check_the_pull_feed_pages_in_storage_order(store: &Store) {
    let instance = instance_with(store, &["a", "b"]).await;
    claim_jobs(store, "p", t0(), LEASE, 10).await.unwrap();
    // "b" is committed first, with later event dates: storage order wins.
    let mut first = commit_with_events(instance.id, "b", "p", 10, 3);
    for event in &mut first.events {
        event.event_date = t0() + 1.hours();
    }
    store.commit_poll(first).await.unwrap();
    store
        .commit_poll(commit_with_events(instance.id, "a", "p", 0, 2))
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = store.events_after(instance.id, after, 2).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.iter().all(|(position, _)| *position > after));
        after = page.last().unwrap().0;
        seen.extend(page.into_iter().map(|(_, e)| e.id.0));
    }
    assert_eq!(
        seen,
        ["event-10", "event-11", "event-12", "event-0", "event-1"]
    );
    // Nothing is given twice, and a later commit continues after the last position.
    claim_jobs(store, "p", t0() + 24.hours(), LEASE, 10)
        .await
        .unwrap();
    store
        .commit_poll(commit_with_events(instance.id, "a", "p", 20, 1))
        .await
        .unwrap();
    let rest = store.events_after(instance.id, after, 10).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].1.id.0, "event-20");
}

/// The result of a delivery that `owner` made with its lease `token` at `at`: a 200.
pub fn delivered(
    id: &NotificationId,
    owner: &str,
    token: LeaseToken,
    at: Timestamp,
) -> AttemptRecord {
    AttemptRecord {
        attempt_id: None,
        notification_id: id.clone(),
        owner: owner.into(),
        lease_token: token,
        attempted_at: at,
        status_code: Some(200),
        latency_ms: 1,
        error: None,
        response_excerpt: None,
        outcome: AttemptOutcome::Delivered,
    }
}

pub async fn check_pruning_removes_at_most_a_batch(store: &Store) {
    let instance = instance_with(store, &["contacts"]).await;
    claim_jobs(store, "poller", t0(), LEASE, 10).await.unwrap();
    let commit = commit_one_per_event(instance.id, "contacts", "poller", 0, 3);
    store.commit_poll(commit).await.unwrap();
    let now = t0() + 2.seconds();
    for n in claim_notifications(store, "d", now, LEASE, 10)
        .await
        .unwrap()
    {
        store
            .finish_attempt(delivered(&n.id, "d", n.lease_token, now))
            .await
            .unwrap();
    }
    let later = now + 1.hours();
    for expected in [1, 1, 1, 0] {
        let pruned = store.prune(later, t0(), 1).await.unwrap();
        assert_eq!(
            (pruned.notifications, pruned.attempts, pruned.events),
            (expected, expected, 0)
        );
    }
    // A reader of the feed has seen all three.
    let seen = store.events_after(instance.id, 0, 10).await.unwrap();
    assert_eq!(seen.len(), 3);
    let cursor = seen.last().unwrap().0;
    assert_eq!(store.prune(later, later, 2).await.unwrap().events, 2);
    let mut pruned = 2;
    loop {
        match store.prune(later, later, 2).await.unwrap().events {
            0 => break,
            n => pruned += n,
        }
    }
    // Everything old goes, except that SQLite keeps the newest row (its rowid is the feed
    // position, and a position must never be handed out twice).
    let left = store.list_events(instance.id, 10).await.unwrap();
    assert_eq!(pruned + left.len() as u64, 3);
    assert!(left.iter().all(|e| e.id.0 == "event-2"), "{left:?}");
    // Events stored after the pruning come after the reader's cursor: none is skipped.
    claim_jobs(store, "poller", later, LEASE, 10).await.unwrap();
    store
        .commit_poll(commit_with_events(instance.id, "contacts", "poller", 10, 2))
        .await
        .unwrap();
    let next: Vec<_> = store
        .events_after(instance.id, cursor, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, e)| e.id.0)
        .collect();
    assert_eq!(next, ["event-10", "event-11"]);
}

pub async fn check_claims_share_out_among_instances(store: &Store) {
    let busy = instance_with(store, &["contacts"]).await;
    let quiet = store
        .create_instance(new_instance(
            busy.organization_id,
            busy.user_id,
            2,
            &["contacts"],
        ))
        .await
        .unwrap();
    claim_jobs(store, "p", t0(), LEASE, 10).await.unwrap();
    // The busy instance has five older notifications, the quiet one a single newer one.
    let backlog = commit_one_per_event(busy.id, "contacts", "p", 0, 5);
    store.commit_poll(backlog).await.unwrap();
    let mut late = commit_with_events(quiet.id, "contacts", "p", 10, 1);
    late.now = t0() + 5.seconds();
    store.commit_poll(late).await.unwrap();

    let now = t0() + 10.seconds();
    let claimed = store
        .claim_notifications_fairly(
            "d",
            now,
            LEASE,
            2,
            &[],
            10,
            &OrganizationShares::unlimited(),
        )
        .await
        .unwrap()
        .notifications;
    let mut ids: Vec<&str> = claimed.iter().map(|n| n.id.0.as_str()).collect();
    ids.sort();
    assert_eq!(
        ids,
        ["notification-0", "notification-10"],
        "one each, oldest first"
    );

    // A skipped instance gets nothing, the others the whole claim.
    let claimed = store
        .claim_notifications_fairly(
            "d",
            now,
            LEASE,
            10,
            &[busy.id],
            10,
            &OrganizationShares::unlimited(),
        )
        .await
        .unwrap()
        .notifications;
    assert!(
        claimed.is_empty(),
        "the quiet instance's only one is leased already"
    );
    let claimed = store
        .claim_notifications_fairly(
            "d",
            now,
            LEASE,
            10,
            &[quiet.id],
            3,
            &OrganizationShares::unlimited(),
        )
        .await
        .unwrap()
        .notifications;
    assert_eq!(claimed.len(), 3, "at most three of one instance");
    assert!(claimed.iter().all(|n| n.instance_id == busy.id));
}

/// A claim takes turns per organization, not in claim order: one organization's large backlog,
/// spread over two instances and older than the whole window, does not keep another's newer
/// notifications out of it; an organization at its share gives way to those under theirs, and
/// still takes what they leave.
pub async fn check_claims_share_out_among_organizations(store: &Store) {
    let (big, big_user) = organization(store, 1).await;
    let (small, small_user) = organization(store, 2).await;
    let instances = instances_for(
        store,
        &[
            (big, big_user, 1),
            (big, big_user, 2),
            (small, small_user, 3),
        ],
    )
    .await;
    // The big organization: ten notifications on each of its instances (0..=9 at t0 + 1 s,
    // 20..=29 at t0 + 2 s); the small one: three, later (100..=102 at t0 + 5 s).
    for (instance, first, count, at) in [
        (instances[0], 0, 10, 1),
        (instances[1], 20, 10, 2),
        (instances[2], 100, 3, 5),
    ] {
        notifications_due_at(store, instance, first, count, t0() + at.seconds()).await;
    }
    let now = t0() + 10.seconds();
    // Notifications of one commit are due at the same instant, so which of an instance's
    // comes first is not defined: the checks count by instance.
    let instances = &instances;
    let claim = |limit: u32, shares: OrganizationShares| async move {
        let claimed = store
            .claim_notifications_fairly("d", now, LEASE, limit, &[], 10, &shares)
            .await
            .unwrap()
            .notifications;
        let mut by_instance = [0; 3];
        for n in &claimed {
            let i = instances.iter().position(|i| *i == n.instance_id).unwrap();
            by_instance[i] += 1;
            let org = if i == 2 { small } else { big };
            assert_eq!(n.organization_id, org, "{n:?}");
        }
        by_instance
    };

    // The window of a claim of two is the oldest eight, all the big organization's; the small
    // one's oldest still comes in the first turn.
    assert_eq!(claim(2, OrganizationShares::unlimited()).await, [1, 0, 1]);

    // The big organization holds its share: the small one's turns come first, both of them,
    // though the big one's are older.
    let at_share = OrganizationShares {
        share: 2,
        in_flight: vec![(big, 2)],
        ..OrganizationShares::unlimited()
    };
    assert_eq!(claim(2, at_share).await, [0, 0, 2]);

    // Both at their share, and the small one has nothing more due: the big one takes what is
    // left (no slot stays free while work is due), its instances in turns.
    let both_at_share = OrganizationShares {
        share: 2,
        in_flight: vec![(big, 3), (small, 3)],
        ..OrganizationShares::unlimited()
    };
    assert_eq!(claim(3, both_at_share).await, [2, 1, 0]);
}

/// An organization with slow POSTs in flight takes at most its share less the slots it holds,
/// even alone: past its allowance, its turns are left out, not ranked last. Unmarked, the same
/// organization at the same share takes the whole claim.
pub async fn check_an_organization_with_slow_posts_takes_no_more_than_its_share(store: &Store) {
    let (org, user) = organization(store, 1).await;
    let instances = instances_for(store, &[(org, user, 1), (org, user, 2)]).await;
    for (instance, first) in [(instances[0], 0), (instances[1], 100)] {
        notifications_due_at(store, instance, first, 10, t0() + 1.seconds()).await;
    }
    let now = t0() + 10.seconds();
    // Four in flight against a share of three: at its share, so its turns come after the
    // others' (there are none); three of them hold a slot, one gave its slot back.
    let slow = |holding: u32| OrganizationShares {
        share: 3,
        in_flight: vec![(org, 4)],
        slow: vec![(org, holding)],
        ..OrganizationShares::unlimited()
    };
    assert_eq!(slow(3).held_back(), [org], "holding its share");
    assert_eq!(slow(1).held_back(), [], "one slot held of three");
    // The dispatcher's next due time leaves a held-back organization out (its notifications
    // would claim nothing).
    assert_eq!(
        store
            .next_notification_due_except(&[], &slow(3).held_back(), t0())
            .await
            .unwrap(),
        None
    );
    assert!(
        store
            .next_notification_due_except(&[], &[], t0())
            .await
            .unwrap()
            .is_some()
    );
    let claim = |limit: u32, shares: OrganizationShares| async move {
        let claimed = store
            .claim_notifications_fairly("d", now, LEASE, limit, &[], 10, &shares)
            .await
            .unwrap()
            .notifications;
        assert!(claimed.iter().all(|n| n.organization_id == org));
        claimed.len()
    };

    assert_eq!(claim(6, slow(3)).await, 0, "its slots hold its share");
    assert_eq!(
        claim(6, slow(1)).await,
        2,
        "the share less the slot it holds"
    );
    let unmarked = OrganizationShares {
        slow: Vec::new(),
        ..slow(1)
    };
    assert_eq!(
        claim(6, unmarked).await,
        6,
        "work-conserving: the whole claim"
    );
}

pub async fn check_an_attempt_has_its_row_before_the_post(store: &Store) {
    let instance = instance_with(store, &["contacts"]).await;
    claim_jobs(store, "p", t0(), LEASE, 10).await.unwrap();
    store
        .commit_poll(commit_with_events(instance.id, "contacts", "p", 0, 1))
        .await
        .unwrap();
    let now = t0() + 2.seconds();
    let claimed = claim_notifications(store, "d", now, LEASE, 1)
        .await
        .unwrap();
    let n = &claimed[0];
    let stranger = LeaseToken("not-the-claim".into());
    let err = store
        .begin_attempt(&n.id, &stranger, "d", now)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost), "{err:?}");
    let id = store
        .begin_attempt(&n.id, &n.lease_token, "d", now)
        .await
        .unwrap();
    let rows = store.list_attempts(&n.id).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].outcome, "started", "a crash now leaves this row");
    assert_eq!(rows[0].status_code, None);
    store
        .finish_attempt(AttemptRecord {
            attempt_id: Some(id),
            notification_id: n.id.clone(),
            owner: "d".into(),
            lease_token: n.lease_token.clone(),
            attempted_at: now,
            status_code: Some(200),
            latency_ms: 5,
            error: None,
            response_excerpt: Some("ok".into()),
            outcome: AttemptOutcome::Delivered,
        })
        .await
        .unwrap();
    let rows = store.list_attempts(&n.id).await.unwrap();
    assert_eq!(rows.len(), 1, "the begun row is completed, not doubled");
    assert_eq!(rows[0].outcome, "delivered");
    assert_eq!(rows[0].status_code, Some(200));
}

/// A claimed batch begins its attempts' rows in one write: only claims that still hold get
/// one, and a notification given back unattempted takes its row with it (no POST was made),
/// while a late release of a claim that moved on removes nothing.
pub async fn check_a_batch_begins_its_attempts_and_a_release_removes_its_row(store: &Store) {
    let instance = instance_with(store, &["contacts"]).await;
    claim_jobs(store, "p", t0(), LEASE, 10).await.unwrap();
    store
        .commit_poll(commit_one_per_event(instance.id, "contacts", "p", 0, 3))
        .await
        .unwrap();
    let now = t0() + 2.seconds();
    let claimed = claim_notifications(store, "d", now, LEASE, 3)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    let mut claims: Vec<_> = claimed
        .iter()
        .map(|n| (n.id.clone(), n.lease_token.clone()))
        .collect();
    claims[2].1 = LeaseToken("not-the-claim".into());
    let begun = store.begin_attempts(&claims, "d", now).await.unwrap();
    assert_eq!(begun.len(), 2, "{begun:?}");
    assert!(
        !begun.contains_key(&claimed[2].id),
        "a stale claim begins nothing"
    );
    for n in &claimed[..2] {
        let rows = store.list_attempts(&n.id).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].id, begun[&n.id]);
        assert_eq!(rows[0].outcome, "started");
    }
    assert!(
        store
            .list_attempts(&claimed[2].id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .begin_attempts(&[], "d", now)
            .await
            .unwrap()
            .is_empty()
    );

    // Given back unattempted: the row goes with the claim.
    let (a, b) = (&claimed[0], &claimed[1]);
    store
        .release_notification(&a.id, &a.lease_token, now, Some(begun[&a.id]))
        .await
        .unwrap();
    assert!(store.list_attempts(&a.id).await.unwrap().is_empty());
    // A late release (the claim moved on) is refused and removes nothing.
    let err = store
        .release_notification(&b.id, &LeaseToken("stale".into()), now, Some(begun[&b.id]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost), "{err:?}");
    assert_eq!(store.list_attempts(&b.id).await.unwrap().len(), 1);
    // The begun row is the one the attempt completes.
    store
        .finish_attempt(AttemptRecord {
            attempt_id: Some(begun[&b.id]),
            notification_id: b.id.clone(),
            owner: "d".into(),
            lease_token: b.lease_token.clone(),
            attempted_at: now,
            status_code: Some(200),
            latency_ms: 5,
            error: None,
            response_excerpt: None,
            outcome: AttemptOutcome::Delivered,
        })
        .await
        .unwrap();
    let rows = store.list_attempts(&b.id).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].outcome, "delivered");
}

/// A result of a claim that outlived its lease, arriving together with the result of the
/// claim that took over, is refused and leaves its own row as it was; the current one lands.
pub async fn check_a_stale_result_beside_the_current_one_is_refused(store: &Store) {
    let instance = instance_with(store, &["contacts"]).await;
    claim_jobs(store, "p", t0(), LEASE, 10).await.unwrap();
    store
        .commit_poll(commit_one_per_event(instance.id, "contacts", "p", 0, 1))
        .await
        .unwrap();
    let first_at = t0() + 2.seconds();
    let NotificationClaim {
        notifications: old,
        begun: old_rows,
        ..
    } = store
        .claim_and_begin_attempts(
            "d",
            first_at,
            LEASE,
            1,
            &[],
            1,
            &OrganizationShares::unlimited(),
        )
        .await
        .unwrap();
    // LEASE is 30 s.
    let taken_at = first_at + 31.seconds();
    let NotificationClaim {
        notifications: new,
        begun: new_rows,
        ..
    } = store
        .claim_and_begin_attempts(
            "d",
            taken_at,
            LEASE,
            1,
            &[],
            1,
            &OrganizationShares::unlimited(),
        )
        .await
        .unwrap();
    assert_eq!(
        (old.len(), new.len()),
        (1, 1),
        "the lease ended, so it is claimed again"
    );
    let (old, new) = (&old[0], &new[0]);
    assert_eq!(old.id, new.id);
    let result = |n: &PendingNotification, attempt: i64, status: u16| AttemptRecord {
        attempt_id: Some(attempt),
        notification_id: n.id.clone(),
        owner: "d".into(),
        lease_token: n.lease_token.clone(),
        attempted_at: taken_at,
        status_code: Some(status),
        latency_ms: 1,
        error: None,
        response_excerpt: None,
        outcome: AttemptOutcome::Delivered,
    };
    // Both wait for the writer at once (joined in one task, so in one group where the store
    // groups results).
    let (stale, current) = tokio::join!(
        store.finish_attempt(result(old, old_rows[&old.id], 299)),
        store.finish_attempt(result(new, new_rows[&new.id], 200)),
    );
    assert!(matches!(stale, Err(StoreError::LeaseLost)), "{stale:?}");
    current.unwrap();
    let rows = store.list_attempts(&new.id).await.unwrap();
    let row = |id: i64| rows.iter().find(|r| r.id == id).unwrap();
    assert_eq!(row(old_rows[&old.id]).outcome, "started", "{rows:?}");
    assert_eq!(row(new_rows[&new.id]).outcome, "delivered", "{rows:?}");
    assert_eq!(row(new_rows[&new.id]).status_code, Some(200), "{rows:?}");
}

/// A claim that begins its attempts leases the batch and begins one `started` row for each
/// claimed notification in the same write; a plain claim begins none.
pub async fn check_a_claim_can_begin_its_attempts_in_the_same_write(store: &Store) {
    let instance = instance_with(store, &["contacts"]).await;
    claim_jobs(store, "p", t0(), LEASE, 10).await.unwrap();
    store
        .commit_poll(commit_one_per_event(instance.id, "contacts", "p", 0, 5))
        .await
        .unwrap();
    let now = t0() + 2.seconds();
    let plain = claim_notifications(store, "d", now, LEASE, 2)
        .await
        .unwrap();
    assert_eq!(plain.len(), 2);
    for n in &plain {
        assert!(store.list_attempts(&n.id).await.unwrap().is_empty());
    }
    let NotificationClaim {
        notifications: batch,
        begun,
        ..
    } = store
        .claim_and_begin_attempts(
            "d",
            now,
            LEASE,
            10,
            &[],
            10,
            &OrganizationShares::unlimited(),
        )
        .await
        .unwrap();
    assert_eq!(
        batch.len(),
        3,
        "the two already claimed are not claimed again"
    );
    assert_eq!(begun.len(), 3, "{begun:?}");
    for n in &batch {
        assert!(plain.iter().all(|p| p.id != n.id));
        let rows = store.list_attempts(&n.id).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].id, begun[&n.id]);
        assert_eq!(rows[0].outcome, "started");
        assert_eq!(rows[0].attempted_at, now);
    }
    // Nothing left to claim: nothing begun.
    let NotificationClaim {
        notifications: none,
        begun,
        ..
    } = store
        .claim_and_begin_attempts(
            "d",
            now,
            LEASE,
            10,
            &[],
            10,
            &OrganizationShares::unlimited(),
        )
        .await
        .unwrap();
    assert!(none.is_empty() && begun.is_empty());
}

/// Results that arrive together (the SQLite store writes them as one group) each keep their
/// own answer and their own fence: a stale claim is refused and writes nothing, a retry counts
/// its failure, and each attempt row says what its own attempt reported.
pub async fn check_results_arriving_together_keep_their_own_answers(store: &Store) {
    let instance = instance_with(store, &["contacts"]).await;
    claim_jobs(store, "p", t0(), LEASE, 10).await.unwrap();
    store
        .commit_poll(commit_one_per_event(instance.id, "contacts", "p", 0, 16))
        .await
        .unwrap();
    let now = t0() + 2.seconds();
    let later = now + 1.minutes();
    let claimed = claim_notifications(store, "d", now, LEASE, 16)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 16);
    // Kinds by index: 0 delivered, 1 a stale claim, 2 a retry, 3 delivered without a row begun
    // at the claim.
    let kind = |i: usize| i % 4;
    let claims: Vec<_> = claimed
        .iter()
        .enumerate()
        .filter(|(i, _)| kind(*i) != 3)
        .map(|(_, n)| (n.id.clone(), n.lease_token.clone()))
        .collect();
    let begun = store.begin_attempts(&claims, "d", now).await.unwrap();
    let mut results = tokio::task::JoinSet::new();
    for (i, n) in claimed.iter().enumerate() {
        let record = AttemptRecord {
            attempt_id: begun.get(&n.id).copied(),
            notification_id: n.id.clone(),
            owner: "d".into(),
            lease_token: match kind(i) {
                1 => LeaseToken("stale".into()),
                _ => n.lease_token.clone(),
            },
            attempted_at: now + (i as i64).seconds(),
            status_code: Some(if kind(i) == 2 { 503 } else { 200 }),
            latency_ms: i as i64,
            error: (kind(i) == 2).then(|| format!("error {i}")),
            response_excerpt: Some(format!("answer {i}")),
            outcome: match kind(i) {
                2 => AttemptOutcome::RetryAt(later),
                _ => AttemptOutcome::Delivered,
            },
        };
        let store = store.clone();
        results.spawn(async move { (i, store.finish_attempt(record).await) });
    }
    for (i, answer) in results.join_all().await {
        match kind(i) {
            1 => assert!(
                matches!(answer, Err(StoreError::LeaseLost)),
                "{i}: {answer:?}"
            ),
            _ => assert!(answer.is_ok(), "{i}: {answer:?}"),
        }
    }
    for (i, n) in claimed.iter().enumerate() {
        let row = store.notification(&n.id).await.unwrap().unwrap();
        let attempts = store.list_attempts(&n.id).await.unwrap();
        assert_eq!(attempts.len(), 1, "{i}: {attempts:?}");
        let attempt = &attempts[0];
        match kind(i) {
            0 | 3 => {
                assert_eq!(row.status, "delivered", "{i}");
                assert_eq!(row.delivered_at, Some(now + (i as i64).seconds()), "{i}");
                assert_eq!(attempt.outcome, "delivered", "{i}");
                assert_eq!(attempt.status_code, Some(200), "{i}");
                assert_eq!(attempt.latency_ms, i as i64, "{i}");
                assert_eq!(attempt.attempted_at, now + (i as i64).seconds(), "{i}");
                assert_eq!(
                    attempt.response_excerpt.as_deref(),
                    Some(format!("answer {i}").as_str())
                );
                assert_eq!(attempt.error, None, "{i}");
            }
            1 => {
                assert_eq!(row.status, "pending", "{i}");
                assert_eq!(row.failed_attempts, 0, "{i}");
                assert_eq!(
                    attempt.outcome, "started",
                    "{i}: the refused result wrote nothing"
                );
            }
            _ => {
                assert_eq!(row.status, "pending", "{i}");
                assert_eq!(row.failed_attempts, 1, "{i}");
                assert_eq!(row.next_attempt_at, Some(later), "{i}");
                assert_eq!(attempt.outcome, "retry", "{i}");
                assert_eq!(attempt.status_code, Some(503), "{i}");
                assert_eq!(
                    attempt.error.as_deref(),
                    Some(format!("error {i}").as_str())
                );
            }
        }
        if let Some(begun) = begun.get(&n.id) {
            assert_eq!(
                attempt.id, *begun,
                "{i}: the begun row is the one completed"
            );
        }
    }
}

/// The next due poll is the earliest unleased job of an enabled instance, or the end of a
/// lease, whichever comes first; jobs of instances that are not polled never count, however
/// early they are.
pub async fn check_next_poll_due_among_leased_and_unleased_jobs(store: &Store) {
    assert_eq!(store.next_poll_due().await.unwrap(), None, "no jobs yet");
    let (org, user) = organization(store, 2).await;
    let mut quiet = new_instance(org, user, 2, &["tickets"]);
    quiet.events_enabled = false;
    quiet.now = t0() - 10.seconds();
    store.create_instance(quiet).await.unwrap();
    assert_eq!(
        store.next_poll_due().await.unwrap(),
        None,
        "only a quiet job"
    );

    instance_with(store, &["contacts", "companies"]).await;
    assert_eq!(store.next_poll_due().await.unwrap(), Some(t0()));
    claim_jobs(store, "a", t0(), LEASE, 1).await.unwrap();
    assert_eq!(
        store.next_poll_due().await.unwrap(),
        Some(t0()),
        "the other job is still due"
    );
    claim_jobs(store, "a", t0() + 1.second(), LEASE, 1)
        .await
        .unwrap();
    assert_eq!(
        store.next_poll_due().await.unwrap(),
        Some(t0() + 30.seconds()),
        "both leased: the first lease's end"
    );
}

/// `count` organizations, each with one instance polling contacts, whose poll jobs are claimed
/// by "p" for an hour (so that any commit time holds).
async fn organizations_with_an_instance(
    store: &Store,
    count: u16,
) -> Vec<(OrganizationId, InstanceId)> {
    // Secrets of their own: `organization` and `new_instance` derive them from a u8.
    let secret = |kind: u8, n: u16| {
        let mut hash = [kind; 32];
        hash[..2].copy_from_slice(&n.to_be_bytes());
        hash
    };
    let mut made = Vec::new();
    for n in 0..count {
        let (org, user) = store
            .create_organization(&format!("org {n}"), secret(0xe1, n), secret(0xe2, n), t0())
            .await
            .unwrap();
        let mut instance = new_instance(org, user, 0, &["contacts"]);
        instance.token_hash = secret(0xe3, n);
        let row = store.create_instance(instance).await.unwrap();
        made.push((org, row.id));
    }
    claim_jobs(
        store,
        "p",
        t0(),
        Duration::from_secs(3600),
        u32::from(count),
    )
    .await
    .unwrap();
    made
}

/// Stores `count` notifications of `instance` (`notification-{first}..`), due at `at`.
pub async fn notifications_due_at(
    store: &Store,
    instance: InstanceId,
    first: usize,
    count: usize,
    at: Timestamp,
) {
    let mut commit = commit_one_per_event(instance, "contacts", "p", first, count);
    commit.now = at;
    store.commit_poll(commit).await.unwrap();
}

/// An instance of `contacts` for each (organization, user, token), their poll jobs claimed by
/// `p` (so that `p` may commit notifications for them).
pub async fn instances_for(
    store: &Store,
    owners: &[(OrganizationId, UserId, u8)],
) -> Vec<InstanceId> {
    let mut instances = Vec::new();
    for (org, user, token) in owners {
        let row = store
            .create_instance(new_instance(*org, *user, *token, &["contacts"]))
            .await
            .unwrap();
        instances.push(row.id);
    }
    claim_jobs(store, "p", t0(), LEASE, 10).await.unwrap();
    instances
}

/// Seventy organizations at the lowest ids have pending notifications that no claim can take
/// now (waiting for their time, leased, or of a disabled instance); above them, one
/// organization has a backlog larger than the claim's window, and another a due notification
/// behind it, itself behind older ones of its own that are in flight. The claim still looks
/// the second one up: only organizations it can serve count toward those it looks up, and an
/// organization's notifications in flight do not hide its due ones.
pub async fn check_a_claim_looks_past_organizations_it_cannot_serve(store: &Store) {
    let orgs = organizations_with_an_instance(store, 72).await;
    let (unservable, rest) = orgs.split_at(70);
    let [(big, big_instance), (hidden, hidden_instance)] = *rest else {
        unreachable!()
    };
    let mut leased = 0;
    for (i, (org, instance)) in unservable.iter().enumerate() {
        let first = 10_000 + i * 10;
        match i % 3 {
            // Due only after the claims below (as a retry waiting for its time is).
            0 => notifications_due_at(store, *instance, first, 2, t0() + 100.seconds()).await,
            1 => {
                notifications_due_at(store, *instance, first, 2, t0() + 1.second()).await;
                leased += 2;
            }
            _ => {
                notifications_due_at(store, *instance, first, 2, t0() + 1.second()).await;
                let row = store
                    .set_instance_disabled(*org, *instance, true, t0() + 1.second())
                    .await
                    .unwrap();
                assert!(row.is_some());
            }
        }
    }
    // The hidden organization's three oldest are in flight too; a second instance of it has
    // one more that is not, due later.
    notifications_due_at(store, hidden_instance, 100, 3, t0() + 1.second()).await;
    leased += 3;
    let taken = claim_notifications(store, "other", t0() + 2.seconds(), LEASE, 1000)
        .await
        .unwrap();
    assert_eq!(
        taken.len(),
        leased,
        "the leasable ones, not the disabled ones"
    );
    let user = store
        .list_instances(hidden)
        .await
        .unwrap()
        .remove(0)
        .user_id;
    let mut second = new_instance(hidden, user, 0, &["contacts"]);
    second.token_hash = [0xe4; 32];
    let second = store.create_instance(second).await.unwrap();
    claim_jobs(store, "p", t0(), Duration::from_secs(3600), 1)
        .await
        .unwrap();
    notifications_due_at(store, second.id, 200, 1, t0() + 5.seconds()).await;

    let limit = 2;
    notifications_due_at(store, big_instance, 0, 12, t0() + 3.seconds()).await;
    let claim = store
        .claim_notifications_fairly(
            "d",
            t0() + 10.seconds(),
            LEASE,
            limit,
            &[],
            10,
            &OrganizationShares::unlimited(),
        )
        .await
        .unwrap();
    let mut claimed: Vec<(OrganizationId, &str)> = claim
        .notifications
        .iter()
        .map(|n| (n.organization_id, n.id.0.as_str()))
        .collect();
    claimed.sort_by_key(|(o, _)| o.0);
    assert_eq!(claimed.len(), 2, "{claimed:?}");
    assert_eq!(
        (claimed[0].0, claimed[1]),
        (big, (hidden, "notification-200")),
        "one each, though the window holds only the big organization's"
    );
    assert_eq!(
        claim.walked_to,
        Some(hidden),
        "72 visited (fewer than the bound), 2 counted: the walk ends at the highest id"
    );
}

/// A claim visits at most 256 organizations: past 256 that it cannot serve, an organization
/// behind another's backlog is not looked up by this claim, but by the next, whose walk goes
/// on from where this one stopped.
pub async fn check_the_next_claim_walks_on_past_the_bound(store: &Store) {
    let orgs = organizations_with_an_instance(store, 262).await;
    let (unservable, rest) = orgs.split_at(260);
    let [(big, big_instance), (hidden, hidden_instance)] = *rest else {
        unreachable!()
    };
    for (i, (_, instance)) in unservable.iter().enumerate() {
        notifications_due_at(store, *instance, 10_000 + i, 1, t0() + 100.seconds()).await;
    }
    notifications_due_at(store, big_instance, 0, 12, t0() + 3.seconds()).await;
    notifications_due_at(store, hidden_instance, 100, 1, t0() + 5.seconds()).await;
    let claim = |look_up_after: Option<OrganizationId>| async move {
        let shares = OrganizationShares {
            look_up_after,
            ..OrganizationShares::unlimited()
        };
        let claim = store
            .claim_notifications_fairly("d", t0() + 10.seconds(), LEASE, 2, &[], 10, &shares)
            .await
            .unwrap();
        let mut claimed: Vec<OrganizationId> = claim
            .notifications
            .iter()
            .map(|n| n.organization_id)
            .collect();
        claimed.sort_by_key(|o| o.0);
        (claimed, claim.walked_to)
    };
    // Organizations 1..=256 visited, none counted; the window holds only the big
    // organization's.
    let (claimed, walked_to) = claim(None).await;
    assert_eq!(claimed, [big, big]);
    assert_eq!(walked_to, Some(unservable[255].0));
    // On from 257: 257..=260, the big organization and the hidden one, then from 1 again up
    // to the bound.
    let (claimed, walked_to) = claim(walked_to).await;
    assert_eq!(claimed, [big, hidden]);
    assert_eq!(walked_to, Some(unservable[249].0));
}

/// More organizations can be served than one claim looks up: they are looked up in turn, from
/// where the last claim's walk ended, so repeated claims reach every one of them although a
/// backlog older than all of theirs fills every claim's window.
pub async fn check_claims_look_up_every_organization_in_turn(store: &Store) {
    let orgs = organizations_with_an_instance(store, 71).await;
    let (big, big_instance) = orgs[0];
    notifications_due_at(store, big_instance, 0, 300, t0() + 1.second()).await;
    for (i, (_, instance)) in orgs[1..].iter().enumerate() {
        notifications_due_at(store, *instance, 1000 + i, 1, t0() + 2.seconds()).await;
    }
    let mut reached = std::collections::BTreeSet::new();
    let mut shares = OrganizationShares::unlimited();
    for round in 0..2_i64 {
        // After the previous claim's leases have ended, so every organization can be served
        // again and only the lookup decides which ones a claim sees: 64 organizations' first
        // turns fill the claim, and the big organization's backlog its window.
        let now = t0() + 10.seconds() + (round * (LEASE.as_secs() as i64 + 1)).seconds();
        let claim = store
            .claim_notifications_fairly("d", now, LEASE, 64, &[], 10, &shares)
            .await
            .unwrap();
        assert_eq!(claim.notifications.len(), 64, "round {round}");
        reached.extend(claim.notifications.iter().map(|n| n.organization_id.0));
        // As the dispatcher does: the next claim walks on from where this one stopped.
        shares.look_up_after = claim.walked_to;
    }
    let all: std::collections::BTreeSet<i64> = orgs.iter().map(|(o, _)| o.0).collect();
    assert!(reached.contains(&big.0));
    assert_eq!(
        all.difference(&reached).collect::<Vec<_>>(),
        Vec::<&i64>::new(),
        "organizations never looked up in two claims"
    );
}

/// An organization held back by its slow POSTs (cap 0) whose older backlog would fill the
/// claim's window must not hide another organization that is at its allowance (so the walk
/// does not look it up) but not capped: otherwise the claim takes nothing although slots are
/// free and that organization has due work, while the dispatcher's next due time (which leaves
/// out only the held-back organization) says "now", and the engine loops claiming nothing.
pub async fn check_a_held_back_backlog_hides_no_organization_at_its_share(store: &Store) {
    let (hung, hung_user) = organization(store, 1).await;
    let (busy, busy_user) = organization(store, 2).await;
    let instances = instances_for(store, &[(hung, hung_user, 1), (busy, busy_user, 2)]).await;
    // The hung organization: a backlog of 40, older; the busy one: 5, newer.
    for (instance, first, count, at) in [(instances[0], 0, 40, 1), (instances[1], 100, 5, 2)] {
        notifications_due_at(store, instance, first, count, t0() + at.seconds()).await;
    }
    let now = t0() + 10.seconds();
    // 16 slots, two organizations busy: share 6. The hung one holds 6 slots with slow POSTs
    // (held back); the busy one has 6 healthy deliveries in flight (at its allowance, not
    // slow, so not capped: "organizations without slow POSTs keep the work-conserving claim").
    // 4 slots are free.
    let shares = OrganizationShares {
        share: 6,
        in_flight: vec![(hung, 6), (busy, 6)],
        slow: vec![(hung, 6)],
        ..OrganizationShares::unlimited()
    };
    assert_eq!(shares.held_back(), [hung]);
    let due = store
        .next_notification_due_except(&[], &shares.held_back(), now)
        .await
        .unwrap();
    assert!(
        due.is_some_and(|due| due <= now),
        "the dispatcher wakes at once"
    );
    let claimed = store
        .claim_notifications_fairly("d", now, LEASE, 4, &[], 10, &shares)
        .await
        .unwrap()
        .notifications;
    assert!(
        !claimed.is_empty() && claimed.iter().all(|n| n.organization_id == busy),
        "4 free slots, the busy organization has 5 due notifications, the claim took none: \
         the dispatcher spins (next due = now, claim = 0)"
    );
}

/// A claim whose head is crowded by a backlog it cannot take (an instance whose receiver is
/// full, more notifications than the claim reads first: `claim_head`) still finds everything
/// else it could take: the full instance's organization's other instance (asked instance by
/// instance), an organization under its share, and, in the slots left, one at its allowance
/// (found by the walk when the window comes back short), as a claim that read the whole
/// backlog did.
pub async fn check_a_claim_behind_a_full_receiver_s_backlog_finds_the_rest(store: &Store) {
    let (a, a_user) = organization(store, 1).await;
    let (b, b_user) = organization(store, 2).await;
    let (c, c_user) = organization(store, 3).await;
    let instances = instances_for(
        store,
        &[
            (a, a_user, 1),
            (a, a_user, 2),
            (b, b_user, 3),
            (c, c_user, 4),
        ],
    )
    .await;
    let [full, sibling, at_allowance, newcomer] = instances[..] else {
        unreachable!()
    };
    for (instance, first, count, at) in [
        (full, 0, 600, 1),
        (sibling, 1000, 3, 2),
        (at_allowance, 2000, 3, 3),
        (newcomer, 3000, 2, 4),
    ] {
        notifications_due_at(store, instance, first, count, t0() + at.seconds()).await;
    }
    let shares = OrganizationShares {
        share: 4,
        in_flight: vec![(b, 4)],
        ..OrganizationShares::unlimited()
    };
    let now = t0() + 10.seconds();
    let claimed = store
        .claim_notifications_fairly("d", now, LEASE, 8, &[full], 10, &shares)
        .await
        .unwrap()
        .notifications;
    let of = |instance: InstanceId| claimed.iter().filter(|n| n.instance_id == instance).count();
    assert_eq!(
        [of(full), of(sibling), of(at_allowance), of(newcomer)],
        [0, 3, 3, 2],
        "{claimed:?}"
    );
    // Nothing else of `a` can be taken: its sibling's are in flight.
    let claimed = store
        .claim_notifications_fairly("e", now, LEASE, 8, &[full], 10, &shares)
        .await
        .unwrap()
        .notifications;
    assert!(claimed.is_empty(), "{claimed:?}");
}

/// An organization whose oldest due notifications (more than a claim's worth) belong to a
/// disabled instance, or to one whose receiver is full, is still looked up for its healthy
/// instance's: otherwise that due work waits behind another organization's backlog, as it did
/// before the fair share.
pub async fn check_an_organization_is_not_hidden_by_its_disabled_instance(store: &Store) {
    let (big, big_user) = organization(store, 1).await;
    let (small, small_user) = organization(store, 2).await;
    let instances = instances_for(
        store,
        &[
            (big, big_user, 1),
            (small, small_user, 2),
            (small, small_user, 3),
        ],
    )
    .await;
    // small's first instance: 20 old ones (t0+1); big: 40 (t0+2); small's second: 3 (t0+3).
    for (instance, first, count, at) in [
        (instances[1], 200, 20, 1),
        (instances[0], 0, 40, 2),
        (instances[2], 100, 3, 3),
    ] {
        notifications_due_at(store, instance, first, count, t0() + at.seconds()).await;
    }
    let now = t0() + 10.seconds();
    let shares = OrganizationShares {
        share: 8,
        in_flight: vec![(big, 4)],
        ..OrganizationShares::unlimited()
    };
    // (a) small's first instance's receiver is full (skipped).
    let claimed = store
        .claim_notifications_fairly("d", now, LEASE, 4, &[instances[1]], 10, &shares)
        .await
        .unwrap()
        .notifications;
    let of_small = claimed
        .iter()
        .filter(|n| n.instance_id == instances[2])
        .count();
    // (b) small's first instance disabled instead: its notifications stay pending for good.
    store
        .set_instance_disabled(small, instances[1], true, t0())
        .await
        .unwrap();
    let claimed_b = store
        .claim_notifications_fairly("d2", now + 1.seconds(), LEASE, 4, &[], 10, &shares)
        .await
        .unwrap()
        .notifications;
    let of_small_b = claimed_b
        .iter()
        .filter(|n| n.instance_id == instances[2])
        .count();
    assert!(
        of_small > 0 && of_small_b > 0,
        "small (nothing in flight) got no turn: big's backlog took the claim"
    );
}

/// The dispatcher's next due time when more notifications than the head it reads
/// (`DUE_HEAD`, 256) come first and cannot be claimed (an instance whose receiver is full):
/// exact while the head tells, and otherwise a second from now at the latest, when the
/// dispatcher claims again; that claim finds what lies behind the head.
pub async fn check_the_next_due_time_looks_past_a_crowded_head(store: &Store) {
    let (org, user) = organization(store, 1).await;
    let (other_org, other_user) = organization(store, 2).await;
    let instances = instances_for(
        store,
        &[(org, user, 1), (org, user, 2), (other_org, other_user, 3)],
    )
    .await;
    let [full, free, other] = instances[..] else {
        unreachable!()
    };
    notifications_due_at(store, full, 0, 300, t0() + 1.seconds()).await;
    notifications_due_at(store, free, 1000, 2, t0() + 2.seconds()).await;
    notifications_due_at(store, other, 2000, 1, t0() + 3.seconds()).await;
    let now = t0() + 10.seconds();
    let due = |skip: Vec<InstanceId>, held_back: Vec<OrganizationId>| async move {
        store
            .next_notification_due_except(&skip, &held_back, now)
            .await
            .unwrap()
    };
    // The head tells: its first is servable.
    assert_eq!(due(vec![], vec![]).await, Some(t0() + 1.seconds()));
    // Crowded: the head is `full`'s alone; a second from now.
    assert_eq!(due(vec![full], vec![]).await, Some(now + 1.seconds()));
    assert_eq!(
        due(vec![full], vec![org, other_org]).await,
        Some(now + 1.seconds())
    );
    // What the dispatcher's claim then takes: what lies behind the head.
    let shares = OrganizationShares::unlimited();
    let claimed = store
        .claim_notifications_fairly("d", now, LEASE, 10, &[full], 10, &shares)
        .await
        .unwrap()
        .notifications;
    let mut ids: Vec<_> = claimed.iter().map(|n| n.id.0.clone()).collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "notification-1000",
            "notification-1001",
            "notification-2000"
        ]
    );
    // Fewer than the head once `full`'s are parked: exact again (the leases' end).
    store
        .set_instance_disabled(org, full, true, now)
        .await
        .unwrap();
    assert_eq!(due(vec![full], vec![]).await, Some(now + LEASE));
}

/// A disabled instance's notifications are parked (`hubhook_store::deliveries`, "Paused
/// notifications"): none is claimed while it is disabled, each still shows the due time it
/// had, one that reaches it meanwhile (a redelivery) waits too, and enabling makes each due
/// when it was, a retry scheduled for later included.
pub async fn check_a_disabled_instance_s_notifications_wait_with_their_due_times(store: &Store) {
    disabled_instance_with_parked_notifications(store).await;
}

/// More notifications than SQLite parks in one write (`hubhook_store::deliveries`,
/// `PARK_PART`, 1,000): a disable and an enable of an instance holding them move them in
/// several parts.
pub const SEVERAL_PARTS: usize = 2_500;

/// Returns an instance holding [`SEVERAL_PARTS`] pending notifications due at `t0 + 1 s`,
/// disabled at `t0 + 2 s`, and its organization.
pub async fn disabled_instance_with_several_parts(store: &Store) -> (OrganizationId, InstanceId) {
    let (org, user) = organization(store, 1).await;
    let [instance] = instances_for(store, &[(org, user, 1)]).await[..] else {
        unreachable!()
    };
    notifications_due_at(store, instance, 0, SEVERAL_PARTS, t0() + 1.seconds()).await;
    store
        .set_instance_disabled(org, instance, true, t0() + 2.seconds())
        .await
        .unwrap();
    (org, instance)
}

/// Disabling and enabling an instance whose backlog takes several parts to park (SQLite
/// parks in parts, so that other writes wait for one part at most): none is claimed while it
/// is disabled, and enabling brings every one back with its due time. Fails if an enable
/// stops after its first part.
pub async fn check_a_backlog_of_several_parts_is_parked_and_comes_back_whole(store: &Store) {
    let (org, instance) = disabled_instance_with_several_parts(store).await;
    let at = t0() + 10.seconds();
    let claimed = claim_notifications(store, "d", at, LEASE, 10)
        .await
        .unwrap();
    assert!(claimed.is_empty(), "{claimed:?}");
    assert_eq!(store.delivery_backlog(at).await.unwrap().due, 0);
    let row = store
        .set_instance_disabled(org, instance, false, t0() + 3.seconds())
        .await
        .unwrap()
        .unwrap();
    assert!(!row.disabled);
    let backlog = store.delivery_backlog(at).await.unwrap();
    assert_eq!(backlog.due, SEVERAL_PARTS as u64, "{backlog:?}");
    assert_eq!(backlog.oldest_due, Some(t0() + 1.seconds()));
    let last = NotificationId(format!("notification-{}", SEVERAL_PARTS - 1));
    let row = store.notification(&last).await.unwrap().unwrap();
    assert_eq!(row.next_attempt_at, Some(t0() + 1.seconds()));
    let claimed = claim_notifications(store, "e", at, LEASE, 3).await.unwrap();
    assert_eq!(claimed.len(), 3, "{claimed:?}");
}

/// Deleting an instance that holds more notifications and known objects than SQLite deletes
/// in one write (it deletes in parts, so that other writes wait for one part at most): every
/// one of its notifications is cancelled and every known object forgotten by the time the
/// delete returns, and its sibling's backlog is untouched. Fails if a delete stops after its
/// first part.
pub async fn check_deleting_an_instance_of_several_parts_cancels_and_forgets_it_all(store: &Store) {
    let (org, user) = organization(store, 1).await;
    let [doomed, sibling] = instances_for(store, &[(org, user, 1), (org, user, 2)]).await[..]
    else {
        unreachable!()
    };
    notifications_due_at(store, doomed, 0, SEVERAL_PARTS, t0() + 1.seconds()).await;
    notifications_due_at(store, sibling, SEVERAL_PARTS, 3, t0() + 1.seconds()).await;
    assert!(store.delete_instance(org, doomed).await.unwrap());
    assert!(store.instance(doomed).await.unwrap().is_none());
    assert!(!store.delete_instance(org, doomed).await.unwrap());

    let rows = store
        .list_notifications(doomed, SEVERAL_PARTS as u32 + 1)
        .await
        .unwrap();
    assert_eq!(rows.len(), SEVERAL_PARTS);
    let sendable: Vec<_> = rows.iter().filter(|n| n.status != "cancelled").collect();
    assert!(sendable.is_empty(), "{} not cancelled", sendable.len());
    let ids: Vec<String> = (0..SEVERAL_PARTS).map(|n| n.to_string()).collect();
    let known = store.known_objects(doomed, "contacts", &ids).await.unwrap();
    assert!(known.is_empty(), "{} known objects left", known.len());

    let at = t0() + 10.seconds();
    assert_eq!(store.delivery_backlog(at).await.unwrap().due, 3);
    let claimed = claim_notifications(store, "d", at, LEASE, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3, "{claimed:?}");
    assert!(
        claimed.iter().all(|n| n.instance_id == sibling),
        "{claimed:?}"
    );
}

/// A redelivery and a replay larger than SQLite writes at once (it makes them due and stores
/// them 1,000 per write, so that other writes wait for one part at most): every notification
/// is made due, every replay stored, in the order given. Fails if either stops after its
/// first part.
pub async fn check_a_redelivery_and_a_replay_of_several_parts_take_every_one(store: &Store) {
    let (org, user) = organization(store, 1).await;
    let [instance] = instances_for(store, &[(org, user, 1)]).await[..] else {
        unreachable!()
    };
    notifications_due_at(store, instance, 0, SEVERAL_PARTS, t0() + 1.seconds()).await;
    let id = |n: usize| NotificationId(format!("notification-{n}"));
    let ids: Vec<_> = (0..SEVERAL_PARTS).map(id).collect();
    let due = store
        .redeliver(instance, ids, Redeliver::Undelivered, t0() + 5.seconds())
        .await;
    assert_eq!(due.unwrap(), SEVERAL_PARTS as u64);
    let last = store.notification(&id(SEVERAL_PARTS - 1)).await.unwrap();
    assert_eq!(last.unwrap().next_attempt_at, Some(t0() + 5.seconds()));

    let replays: Vec<_> = (0..SEVERAL_PARTS)
        .map(|n| (id(n), notification(SEVERAL_PARTS + n, &[])))
        .collect();
    let stored = store
        .insert_replays(instance, replays, t0() + 6.seconds())
        .await;
    assert_eq!(stored.unwrap(), SEVERAL_PARTS as u64);
    let last = store
        .notification(&id(2 * SEVERAL_PARTS - 1))
        .await
        .unwrap();
    assert_eq!(last.unwrap().replay_of, Some(id(SEVERAL_PARTS - 1)));
}

/// A redelivery of several instances (the organization's `PUT` of its deliveries) makes every
/// instance's notifications due, several parts of one of them included, and skips an
/// instance deleted since its list was made. Fails if it stops after the first instance.
pub async fn check_a_redelivery_of_several_instances_takes_every_one(store: &Store) {
    let (org, user) = organization(store, 1).await;
    let [big, small, gone] =
        instances_for(store, &[(org, user, 1), (org, user, 2), (org, user, 3)]).await[..]
    else {
        unreachable!()
    };
    let at = t0() + 1.seconds();
    notifications_due_at(store, big, 0, SEVERAL_PARTS, at).await;
    notifications_due_at(store, small, SEVERAL_PARTS, 3, at).await;
    notifications_due_at(store, gone, SEVERAL_PARTS + 3, 2, at).await;
    assert!(store.delete_instance(org, gone).await.unwrap());
    let id = |n: usize| NotificationId(format!("notification-{n}"));
    let runs = vec![
        (big, (0..SEVERAL_PARTS).map(id).collect()),
        (small, (SEVERAL_PARTS..SEVERAL_PARTS + 3).map(id).collect()),
        (
            gone,
            (SEVERAL_PARTS + 3..SEVERAL_PARTS + 5).map(id).collect(),
        ),
    ];
    let later = t0() + 5.seconds();
    let due = store
        .redeliver_several(runs, Redeliver::Undelivered, later)
        .await;
    assert_eq!(due.unwrap(), SEVERAL_PARTS as u64 + 3);
    for n in [0, SEVERAL_PARTS - 1, SEVERAL_PARTS, SEVERAL_PARTS + 2] {
        let row = store.notification(&id(n)).await.unwrap().unwrap();
        assert_eq!(row.next_attempt_at, Some(later), "notification-{n}");
    }
    let row = store.notification(&id(SEVERAL_PARTS + 3)).await.unwrap();
    assert_eq!(row.unwrap().status, "cancelled", "the deleted instance's");
}

/// A redelivery's list was made before some of its notifications were delivered (their
/// attempts were still going, or another redelivery sent them first): those are not sent
/// twice, unless the redelivery is a resend ([`Redeliver::Any`]). Fails if a redelivery
/// makes a delivered notification due again (seen: 1,632 delivered notifications sent again
/// when a stopped node's redelivery was finished at start).
pub async fn check_a_redelivery_leaves_what_was_delivered_meanwhile(store: &Store) {
    let (org, user) = organization(store, 1).await;
    let [instance] = instances_for(store, &[(org, user, 1)]).await[..] else {
        unreachable!()
    };
    notifications_due_at(store, instance, 0, 3, t0() + 1.seconds()).await;
    let now = t0() + 2.seconds();
    let claimed = claim_notifications(store, "d", now, LEASE, 1)
        .await
        .unwrap();
    let sent = claimed[0].id.clone();
    store
        .finish_attempt(delivered(&sent, "d", claimed[0].lease_token.clone(), now))
        .await
        .unwrap();
    let id = |n: usize| NotificationId(format!("notification-{n}"));
    let all: Vec<_> = (0..3).map(id).collect();
    let later = now + 5.seconds();
    let due = store
        .redeliver(instance, all.clone(), Redeliver::Undelivered, later)
        .await;
    assert_eq!(due.unwrap(), 2);
    let row = store.notification(&sent).await.unwrap().unwrap();
    assert_eq!(row.status, "delivered");
    let due = store
        .redeliver(instance, vec![sent.clone()], Redeliver::Any, later)
        .await;
    assert_eq!(due.unwrap(), 1);
    let row = store.notification(&sent).await.unwrap().unwrap();
    assert_eq!(
        (row.status.as_str(), row.next_attempt_at),
        ("pending", Some(later))
    );
}

/// How many of an instance (`$1`) pending notifications a claim's scans could meet (a due
/// time), and how many are parked with the due time `$2`: the engines' own checks of what
/// parking stores (the same SQL on both).
pub const PARKED_COUNTS: &str = "SELECT COUNT(*) FILTER (WHERE next_attempt_at IS NOT NULL),
        COUNT(*) FILTER (WHERE paused_due_at = $2)
    FROM notifications WHERE instance_id = $1 AND status = 'pending'";

/// The check above. Returns the instance, disabled again at the end and holding one pending
/// notification (`notification-0`): the retry of an attempt that was in flight when it was
/// disabled, due at `t0 + 1 h + 1 s`, which the last claim parked.
pub async fn disabled_instance_with_parked_notifications(store: &Store) -> InstanceId {
    let (org, user) = organization(store, 1).await;
    let instances = instances_for(store, &[(org, user, 1), (org, user, 2)]).await;
    let [disabled, other] = instances[..] else {
        unreachable!()
    };
    let id = |n: usize| NotificationId(format!("notification-{n}"));
    notifications_due_at(store, disabled, 0, 3, t0() + 1.seconds()).await;
    notifications_due_at(store, other, 10, 1, t0() + 2.seconds()).await;
    // Notification 1 failed once: its retry is due in an hour.
    let now = t0() + 5.seconds();
    let claimed = claim_notifications(store, "d", now, LEASE, 1)
        .await
        .unwrap();
    assert_eq!(claimed[0].id, id(0));
    let retry_at = t0() + 1.hours();
    let mut failed = AttemptRecord {
        attempt_id: None,
        notification_id: id(0),
        owner: "d".into(),
        lease_token: token_of("d", &id(0).0),
        attempted_at: now,
        status_code: Some(500),
        latency_ms: 3,
        error: Some("server error".into()),
        response_excerpt: None,
        outcome: AttemptOutcome::RetryAt(retry_at),
    };
    store.finish_attempt(failed.clone()).await.unwrap();
    let due_of = |n: usize| async move {
        store
            .notification(&id(n))
            .await
            .unwrap()
            .unwrap()
            .next_attempt_at
    };
    assert_eq!(due_of(0).await, Some(retry_at));

    store
        .set_instance_disabled(org, disabled, true, t0() + 10.seconds())
        .await
        .unwrap();
    // Shown as they were: pending, each with its due time.
    for (n, due) in [
        (0, retry_at),
        (1, t0() + 1.seconds()),
        (2, t0() + 1.seconds()),
    ] {
        let row = store.notification(&id(n)).await.unwrap().unwrap();
        assert_eq!(
            (row.status.as_str(), row.next_attempt_at),
            ("pending", Some(due)),
            "{n}"
        );
    }
    // A redelivery while disabled waits too (parked by the redelivery itself).
    let at = t0() + 20.seconds();
    assert_eq!(
        store
            .redeliver(disabled, vec![id(1)], Redeliver::Undelivered, at)
            .await
            .unwrap(),
        1
    );
    for round in 0..2 {
        let claimed = claim_notifications(store, &format!("e{round}"), at, LEASE, 10)
            .await
            .unwrap();
        let ids: Vec<_> = claimed.iter().map(|n| n.id.clone()).collect();
        assert_eq!(
            ids,
            if round == 0 { vec![id(10)] } else { vec![] },
            "claim {round}"
        );
    }
    assert_eq!(due_of(1).await, Some(at));
    assert_eq!(
        store
            .next_notification_due_except(&[], &[], at)
            .await
            .unwrap(),
        Some(at + LEASE)
    );
    let backlog = store.delivery_backlog(at).await.unwrap();
    assert_eq!(backlog.due, 0, "{backlog:?}");

    // Enabled: 2 (due since t0 + 1 s) and 1 (redelivered at t0 + 20 s) are due, in that
    // order, and the retry only in its hour.
    let at = t0() + 30.seconds();
    store
        .set_instance_disabled(org, disabled, false, at)
        .await
        .unwrap();
    let claimed = claim_notifications(store, "f", at, LEASE, 10)
        .await
        .unwrap();
    let ids: Vec<_> = claimed.iter().map(|n| n.id.clone()).collect();
    assert_eq!(ids, vec![id(2), id(1)]);
    for (n, owner) in [(2, "f"), (1, "f"), (10, "e0")] {
        let mut delivered = failed.clone();
        delivered.notification_id = id(n);
        delivered.owner = owner.into();
        delivered.lease_token = token_of(owner, &id(n).0);
        delivered.outcome = AttemptOutcome::Delivered;
        store.finish_attempt(delivered).await.unwrap();
    }
    let claimed = claim_notifications(store, "g", retry_at, LEASE, 10)
        .await
        .unwrap();
    let ids: Vec<_> = claimed.iter().map(|n| n.id.clone()).collect();
    assert_eq!(ids, vec![id(0)]);
    // Leased while disabled again: left to its attempt, then its retry waits.
    store
        .set_instance_disabled(org, disabled, true, retry_at)
        .await
        .unwrap();
    failed.notification_id = id(0);
    failed.owner = "g".into();
    failed.lease_token = token_of("g", &id(0).0);
    failed.outcome = AttemptOutcome::RetryAt(retry_at + 1.seconds());
    store.finish_attempt(failed).await.unwrap();
    let later = retry_at + 1.minutes();
    assert!(
        claim_notifications(store, "h", later, LEASE, 10)
            .await
            .unwrap()
            .is_empty(),
        "a disabled instance's retry was claimed"
    );
    disabled
}

/// What a redelivery and a replay bring back into a disabled instance is parked at once, as
/// its disable parked the rest, rather than made due for the claims to park again a part a
/// second; enabling makes all of it due. Not in `every_check!`: parked and due look alike
/// through the store's API (it shows a parked notification's due time), so each engine's
/// module passes `counts`, the instance's (due, parked) read from its tables.
pub async fn check_what_comes_back_to_a_disabled_instance_is_parked<F, Fut>(
    store: &Store,
    counts: F,
) where
    F: Fn(InstanceId) -> Fut,
    Fut: std::future::Future<Output = (i64, i64)>,
{
    let (org, user) = organization(store, 1).await;
    let [instance] = instances_for(store, &[(org, user, 1)]).await[..] else {
        unreachable!()
    };
    let all = SEVERAL_PARTS;
    notifications_due_at(store, instance, 0, all, t0() + 1.seconds()).await;
    let disabled = store
        .set_instance_disabled(org, instance, true, t0() + 2.seconds())
        .await;
    assert!(disabled.unwrap().is_some());
    let id = |n: usize| NotificationId(format!("notification-{n}"));
    let redelivered = store
        .redeliver(
            instance,
            (0..all).map(id).collect(),
            Redeliver::Undelivered,
            t0() + 3.seconds(),
        )
        .await;
    assert_eq!(redelivered.unwrap(), all as u64);
    assert_eq!(counts(instance).await, (0, all as i64), "redelivered");
    let replays = vec![(id(0), notification(all, &[]))];
    let stored = store
        .insert_replays(instance, replays, t0() + 4.seconds())
        .await;
    assert_eq!(stored.unwrap(), 1);
    assert_eq!(counts(instance).await, (0, all as i64 + 1), "replayed");
    let enabled = store
        .set_instance_disabled(org, instance, false, t0() + 5.seconds())
        .await;
    assert!(enabled.unwrap().is_some());
    assert_eq!(counts(instance).await, (all as i64 + 1, 0), "enabled");
}
