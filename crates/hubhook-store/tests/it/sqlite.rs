//! The conformance checks on SQLite, plus what only SQLite has: a file on disk.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hubhook_core::{InstanceId, NotificationId};
use hubhook_store::{
    AttemptOutcome, AttemptRecord, InstanceRow, LeaseToken, MasterKey, Store, StoreError,
};
use jiff::ToSpan as _;
use tempfile::TempDir;

use crate::conformance::{self, LEASE, SECRET, t0};

fn url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// A fresh database file; the directory lives as long as the returned guard.
async fn fresh() -> (TempDir, PathBuf, Store) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hubhook.db");
    let store = Store::open(&url(&path), key()).await.unwrap();
    (dir, path, store)
}

fn key() -> MasterKey {
    MasterKey::parse(&"42".repeat(32)).unwrap()
}

macro_rules! conformance {
    ($($module:ident :: $check:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $check() {
            let (_dir, _path, store) = fresh().await;
            crate::conformance::with_tokens(crate::$module::$check(&store)).await;
            store.close().await;
        }
    )*};
}

crate::every_check!(conformance);

/// Every byte SQLite wrote: the main file and the write-ahead log.
fn database_bytes(path: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap();
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    if let Ok(more) = std::fs::read(PathBuf::from(wal)) {
        bytes.extend(more);
    }
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn secrets_are_not_stored_in_plaintext() {
    let (_dir, path, store) = fresh().await;
    let instance = conformance::instance_with(&store, &["contacts"]).await;
    store.close().await;
    let bytes = database_bytes(&path);
    // The probe must be able to see plaintext: the public configuration is stored as is.
    assert!(contains(&bytes, b"demo-public"), "the probe reads nothing");
    assert!(
        !contains(&bytes, SECRET.as_bytes()),
        "secret found in the database file"
    );
    assert!(contains(&bytes, b"v1:"), "no sealed secrets in the file");

    let store = Store::open(&url(&path), key()).await.unwrap();
    let read = store.instance(instance.id).await.unwrap().unwrap();
    assert_eq!(read.secrets["private.key"], SECRET);
    store.close().await;
}

#[tokio::test]
async fn a_wrong_master_key_cannot_decrypt() {
    let (_dir, path, store) = fresh().await;
    let instance = conformance::instance_with(&store, &["contacts"]).await;
    store.close().await;

    let store = Store::open(&url(&path), MasterKey::generate())
        .await
        .unwrap();
    let err = store.instance(instance.id).await.unwrap_err();
    assert!(matches!(err, StoreError::Decrypt), "{err:?}");
    assert!(err.to_string().contains("wrong master key"));
    store.close().await;
}

#[tokio::test]
async fn pending_notifications_survive_a_restart() {
    crate::conformance::with_tokens(async move {
        let (_dir, path, store) = fresh().await;
        conformance::check_commit_poll_is_idempotent(&store).await;
        let instance = store
            .list_instances(hubhook_store::OrganizationId(1))
            .await
            .unwrap()[0]
            .id;
        // Dropped, not closed: a crash after the commit was acknowledged loses nothing.
        drop(store);

        let store = Store::open(&url(&path), key()).await.unwrap();
        assert_eq!(store.list_events(instance, 10).await.unwrap().len(), 2);
        let pending = store
            .claim_notifications("d", t0() + jiff::SignedDuration::from_secs(5), LEASE, 10)
            .await
            .unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].id, NotificationId("notification-0".into()));
        store.close().await;
    })
    .await
}

#[tokio::test]
async fn writes_after_close_are_refused() {
    let (_dir, _path, store) = fresh().await;
    store.close().await;
    let err = store
        .create_organization("late", [1; 32], [2; 32], t0())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("closed"), "{err}");
    // A delivery's result, which waits in a group for the writer, hears it too (twice: the
    // first must not leave the group stuck for the next).
    for _ in 0..2 {
        let result = AttemptRecord {
            attempt_id: Some(1),
            notification_id: NotificationId("late".into()),
            owner: "d".into(),
            lease_token: LeaseToken("token".into()),
            attempted_at: t0(),
            status_code: Some(200),
            latency_ms: 1,
            error: None,
            response_excerpt: None,
            outcome: AttemptOutcome::Delivered,
        };
        let err = tokio::time::timeout(Duration::from_secs(10), store.finish_attempt(result))
            .await
            .expect("answered, not left waiting")
            .unwrap_err();
        assert!(err.to_string().contains("closed"), "{err}");
    }
    // Closing twice is harmless.
    store.close().await;
}

#[tokio::test]
async fn open_rejects_unknown_urls() {
    for (url, expected) in [
        ("mysql://localhost/hubhook", "invalid database url"),
        ("sqlite::memory:", "invalid database url"),
    ] {
        let err = Store::open(url, key()).await.unwrap_err();
        assert!(err.to_string().contains(expected), "{url}: {err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let plain = format!("sqlite:{}", dir.path().join("x.db").display());
    let store = Store::open(&plain, key()).await.unwrap();
    assert!(store.is_sqlite());
    // One node owns the file: its own clock is the only one.
    assert!(store.database_time().await.unwrap().is_none());
    store.close().await;
}

#[tokio::test]
async fn a_query_string_is_not_part_of_the_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.db");
    let store = Store::open(&format!("{}?mode=rwc", url(&path)), key())
        .await
        .unwrap();
    let instance = conformance::instance_with(&store, &["contacts"]).await;
    store.close().await;
    assert!(path.exists(), "no {}", path.display());
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|name| name.contains('?')), "{names:?}");

    // The same database, with or without the query.
    let store = Store::open(&url(&path), key()).await.unwrap();
    assert!(store.instance(instance.id).await.unwrap().is_some());
    store.close().await;
}

/// Every table carries the organization id (ARCHITECTURE.md, "Organizations"), as on
/// PostgreSQL: the two schemas stay the same shape.
#[tokio::test]
async fn every_table_carries_the_organization() {
    use sqlx::Connection as _;
    let (_dir, path, store) = fresh().await;
    store.close().await;
    let mut conn = sqlx::SqliteConnection::connect(&url(&path)).await.unwrap();
    let missing: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master m
         WHERE type = 'table'
           AND name NOT IN ('organizations', '_sqlx_migrations', 'sqlite_sequence')
           AND NOT EXISTS (SELECT 1 FROM pragma_table_info(m.name) WHERE name = 'organization_id')",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(
        missing.is_empty(),
        "tables without organization_id: {missing:?}"
    );
    let tables: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(tables > 5, "the probe sees the tables: {tables}");
    conn.close().await.unwrap();
}

/// Records, events and notification bodies are stored as zstd frames and read back as the
/// text they were; a row written as text before compression still reads.
#[tokio::test]
async fn json_columns_are_stored_compressed_and_old_text_rows_still_read() {
    crate::conformance::with_tokens(async move {
        let (_dir, path, store) = fresh().await;
        let instance = conformance::instance_with(&store, &["contacts"]).await;
        conformance::claim_jobs(&store, "a", t0(), LEASE, 10)
            .await
            .unwrap();
        let record = format!(r#"{{"id":7,"notes":"{}"}}"#, "déjà vu ".repeat(200));
        let mut commit = conformance::commit_with_events(instance.id, "contacts", "a", 7, 1);
        commit.observed[0].record = record.clone();
        commit.events[0].record_json = record.clone();
        commit.notifications[0].body = format!(r#"{{"events":[{record}]}}"#);
        let body = commit.notifications[0].body.clone();
        store.commit_poll(commit).await.unwrap();

        let known = store
            .known_objects(instance.id, "contacts", &["7".to_owned()])
            .await
            .unwrap();
        assert_eq!(known["7"].record.as_deref(), Some(record.as_str()));
        let events = store.list_events(instance.id, 10).await.unwrap();
        assert_eq!(events[0].record_json, record);
        let claimed = conformance::claim_notifications(&store, "a", t0() + 60.seconds(), LEASE, 10)
            .await
            .unwrap();
        assert_eq!(claimed[0].body, body);

        let raw = sqlx::SqlitePool::connect(&url(&path)).await.unwrap();
        for sql in [
            "SELECT typeof(record), length(record) FROM known_objects",
            "SELECT typeof(record), length(record) FROM events",
            "SELECT typeof(body), length(body) FROM notifications",
        ] {
            let (kind, length): (String, i64) = sqlx::query_as(sql).fetch_one(&raw).await.unwrap();
            assert_eq!(kind, "blob", "{sql}");
            assert!(length < 200, "{sql}: {length} bytes");
        }
        // A row from before compression: text.
        sqlx::query("UPDATE events SET record = $1")
            .bind(r#"{"id":7,"old":true}"#)
            .execute(&raw)
            .await
            .unwrap();
        raw.close().await;
        let events = store.list_events(instance.id, 10).await.unwrap();
        assert_eq!(events[0].record_json, r#"{"id":7,"old":true}"#);
        store.close().await;
    })
    .await
}

/// What the parking of a disabled instance's notifications stores (`hubhook_store::deliveries`,
/// "Paused notifications"): its pending notification has no due time the claim's scans can
/// meet, and keeps the one it had aside. Fails if the claim does not park what reached a
/// disabled instance after it was disabled.
#[tokio::test]
async fn a_disabled_instance_s_notifications_are_parked_out_of_the_claims_way() {
    crate::conformance::with_tokens(async move {
        let (_dir, path, store) = fresh().await;
        let instance = conformance::disabled_instance_with_parked_notifications(&store).await;
        let due = t0() + 1.hours() + 1.seconds();
        assert_eq!(parked_counts(&path, instance, due).await, (0, 1));
        store.close().await;
    })
    .await
}

/// How many of an instance's pending notifications are unparked, and how many are parked
/// with the due time `due` ([`conformance::PARKED_COUNTS`]).
async fn parked_counts(path: &Path, instance: InstanceId, due: jiff::Timestamp) -> (i64, i64) {
    use sqlx::Connection as _;
    let mut conn = sqlx::SqliteConnection::connect(&url(path)).await.unwrap();
    sqlx::query_as(conformance::PARKED_COUNTS)
        .bind(instance.0)
        .bind(due.as_millisecond())
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

/// [`parked_counts`] with the due time of [`conformance::disabled_instance_with_several_parts`].
async fn parts(path: &Path, instance: InstanceId) -> (i64, i64) {
    parked_counts(path, instance, t0() + 1.seconds()).await
}

/// Sets an instance's `disabled` and nothing else, as a node stopped between the parts of a
/// disable or an enable leaves it (or a node of an older version, which does not park).
async fn set_disabled_only(path: &Path, instance: InstanceId, disabled: bool) {
    use sqlx::Connection as _;
    let mut conn = sqlx::SqliteConnection::connect(&url(path)).await.unwrap();
    sqlx::query("UPDATE instances SET disabled = $1 WHERE id = $2")
        .bind(disabled)
        .bind(instance.0)
        .execute(&mut conn)
        .await
        .unwrap();
}

/// A disable and an enable move a backlog of several parts whole: every notification parked,
/// then every one back. Fails if the disable's parts stop after the first.
#[tokio::test]
async fn a_backlog_of_several_parts_is_parked_whole_and_brought_back_whole() {
    crate::conformance::with_tokens(async move {
        let (_dir, path, store) = fresh().await;
        let (org, instance) = conformance::disabled_instance_with_several_parts(&store).await;
        let all = conformance::SEVERAL_PARTS as i64;
        assert_eq!(parts(&path, instance).await, (0, all));
        store
            .set_instance_disabled(org, instance, false, t0() + 3.seconds())
            .await
            .unwrap();
        assert_eq!(parts(&path, instance).await, (all, 0));
        store.close().await;
    })
    .await
}

/// Disables and enables of one instance racing each other, each moving its backlog in parts:
/// every part checks the instance's state again, so the parts of a switch that was overtaken
/// stop, and the last switch's parts finish. Whatever the interleaving, the backlog ends
/// where the instance's final state says: all parked if disabled, all due if enabled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_disables_and_enables_leave_the_backlog_where_the_last_one_says() {
    crate::conformance::with_tokens(async move {
        let (_dir, path, store) = fresh().await;
        let (org, instance) = conformance::disabled_instance_with_several_parts(&store).await;
        let all = conformance::SEVERAL_PARTS as i64;
        for round in 0..4 {
            let switch = |disabled: bool| {
                let store = store.clone();
                tokio::spawn(async move {
                    for n in 0..3 {
                        let at = t0() + (10 * round + n + 3).seconds();
                        store
                            .set_instance_disabled(org, instance, disabled, at)
                            .await
                            .unwrap();
                    }
                })
            };
            let (enables, disables) = (switch(false), switch(true));
            enables.await.unwrap();
            disables.await.unwrap();
            let row = store.instance(instance).await.unwrap().unwrap();
            let expected = if row.disabled { (0, all) } else { (all, 0) };
            assert_eq!(parts(&path, instance).await, expected, "round {round}");
        }
        store.close().await;
    })
    .await
}

/// The claims' parking step moves one part at a time (a claim never holds the one writer
/// for a whole backlog), and the next claim goes on at once while a part was full, rather
/// than a second later. Here an enable left everything parked (a node stopped after setting
/// `disabled`).
#[tokio::test]
async fn the_claims_bring_back_a_backlog_one_part_at_a_time() {
    crate::conformance::with_tokens(async move {
        let (_dir, path, store) = fresh().await;
        let (_, instance) = conformance::disabled_instance_with_several_parts(&store).await;
        set_disabled_only(&path, instance, false).await;
        let at = t0() + 10.seconds();
        let mut seen = Vec::new();
        for round in 0..3 {
            conformance::claim_notifications(&store, &format!("c{round}"), at, LEASE, 1)
                .await
                .unwrap();
            seen.push(parts(&path, instance).await);
        }
        assert_eq!(seen, [(1_000, 1_500), (2_000, 500), (2_500, 0)]);
        store.close().await;
    })
    .await
}

/// A node stopped between the parts of an enable (or a disable) finishes them when the store
/// restarts, instead of leaving them to one part per claim that parks.
#[tokio::test]
async fn a_restart_finishes_what_a_stopped_node_left_halfway() {
    crate::conformance::with_tokens(async move {
        let (_dir, path, store) = fresh().await;
        let (_, instance) = conformance::disabled_instance_with_several_parts(&store).await;
        let all = conformance::SEVERAL_PARTS as i64;
        store.close().await;
        set_disabled_only(&path, instance, false).await;
        let (store, left) = restarted(&path).await;
        assert_eq!(parts(&path, instance).await, (all, 0));
        assert_eq!(left.moved, all as u64);
        store.close().await;
        set_disabled_only(&path, instance, true).await;
        let (store, left) = restarted(&path).await;
        assert_eq!(parts(&path, instance).await, (0, all));
        assert_eq!(left.moved, all as u64);
        let (store, left) = {
            store.close().await;
            restarted(&path).await
        };
        assert!(!left.any(), "nothing left the second time: {left:?}");
        store.close().await;
    })
    .await
}

/// The store opened again and the work a stopped node left halfway finished, as a server
/// does when it starts (`Store::finish_leftovers`, beside its API).
async fn restarted(path: &Path) -> (Store, hubhook_store::Leftovers) {
    let store = Store::open(&url(path), key()).await.unwrap();
    let work = store.leftovers().await.unwrap();
    let finished = store.finish_leftovers(work).await;
    assert!(finished.errors.is_empty(), "{:?}", finished.errors);
    assert!(finished.left.is_empty());
    (store, finished.done)
}

/// Leaves an instance as the first write of its delete does (`deleting` and `disabled` set,
/// its poll jobs gone) and nothing more: what a node stopped before the delete's parts
/// leaves, or what every other read sees while they run.
async fn mark_deleting(path: &Path, instance: InstanceId) {
    use sqlx::Connection as _;
    let mut conn = sqlx::SqliteConnection::connect(&url(path)).await.unwrap();
    for sql in [
        "UPDATE instances SET deleting = 1, disabled = 1 WHERE id = $1",
        "DELETE FROM poll_jobs WHERE instance_id = $1",
    ] {
        sqlx::query(sql)
            .bind(instance.0)
            .execute(&mut conn)
            .await
            .unwrap();
    }
}

/// `SELECT COUNT(*)` of `sql` with the instance bound to `$1`, read from the file.
async fn count_of(path: &Path, sql: &'static str, instance: InstanceId) -> i64 {
    use sqlx::Connection as _;
    let mut conn = sqlx::SqliteConnection::connect(&url(path)).await.unwrap();
    sqlx::query_scalar(sql)
        .bind(instance.0)
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

/// A delete that a stopped node left after its first write (the instance marked, nothing
/// cancelled, nothing forgotten) is finished when the store restarts: the row gone,
/// every notification cancelled, parked ones too, every known object forgotten. Fails
/// without the deletes in `finish_leftovers`, or if it stops after one part.
#[tokio::test]
async fn a_restart_finishes_a_delete_a_stopped_node_left_halfway() {
    crate::conformance::with_tokens(async move {
        let (_dir, path, store) = fresh().await;
        let (_, instance) = conformance::disabled_instance_with_several_parts(&store).await;
        store.close().await;
        mark_deleting(&path, instance).await;
        let (store, left) = restarted(&path).await;
        assert_eq!(left.deletes, 1);
        let all = conformance::SEVERAL_PARTS as i64;
        let counts = (
            count_of(&path, "SELECT COUNT(*) FROM instances WHERE id = $1", instance).await,
            count_of(
                &path,
                "SELECT COUNT(*) FROM notifications WHERE instance_id = $1 AND status = 'cancelled'",
                instance,
            )
            .await,
            count_of(&path, "SELECT COUNT(*) FROM known_objects WHERE instance_id = $1", instance)
                .await,
        );
        assert_eq!(counts, (0, all, 0));
        store.close().await;
    })
    .await
}

/// An instance polling contacts and companies, with `companies` known objects of companies
/// and 3 of contacts, left as an update that removed companies leaves it when its node stops
/// after the update's own write, before any of the forget's parts: no job for companies, the
/// resource listed in `forgetting`, every known object still there.
async fn stopped_while_forgetting_companies(
    path: &Path,
    store: &Store,
    companies: usize,
) -> InstanceRow {
    let instance = conformance::instance_with(store, &["contacts", "companies"]).await;
    conformance::claim_jobs(store, "p", t0(), LEASE, 10)
        .await
        .unwrap();
    let commit = conformance::commit_with_events(instance.id, "companies", "p", 0, companies);
    store.commit_poll(commit).await.unwrap();
    let commit = conformance::commit_with_events(instance.id, "contacts", "p", companies, 3);
    store.commit_poll(commit).await.unwrap();
    use sqlx::Connection as _;
    let mut conn = sqlx::SqliteConnection::connect(&url(path)).await.unwrap();
    for sql in [
        "DELETE FROM poll_jobs WHERE instance_id = $1 AND resource = 'companies'",
        "INSERT INTO forgetting (instance_id, resource, organization_id)
         SELECT id, 'companies', organization_id FROM instances WHERE id = $1",
    ] {
        sqlx::query(sql)
            .bind(instance.id.0)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    instance
}

async fn known_count(path: &Path, instance: InstanceId, resource: &str) -> i64 {
    use sqlx::Connection as _;
    let mut conn = sqlx::SqliteConnection::connect(&url(path)).await.unwrap();
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM known_objects WHERE instance_id = $1 AND resource = $2",
    )
    .bind(instance.0)
    .bind(resource)
    .fetch_one(&mut conn)
    .await
    .unwrap()
}

/// A node stopped while it forgot a removed resource's known objects leaves some behind, with
/// no job (nothing reads them); configuring the resource again clears them in the same write,
/// so that it starts from an empty baseline, not from what was known before, and takes it off
/// the `forgetting` list. Fails if the update that adds a resource keeps what was left.
#[tokio::test]
async fn a_resource_configured_again_forgets_what_a_stopped_node_left_of_it() {
    crate::conformance::with_tokens(async move {
        let (_dir, path, store) = fresh().await;
        let instance = stopped_while_forgetting_companies(&path, &store, 5).await;
        assert_eq!(known_count(&path, instance.id, "companies").await, 5);
        let again = crate::platform::update(&["contacts", "companies"]);
        store
            .update_instance(instance.organization_id, instance.id, again)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(known_count(&path, instance.id, "companies").await, 0);
        assert_eq!(known_count(&path, instance.id, "contacts").await, 3);
        let listed = "SELECT COUNT(*) FROM forgetting WHERE instance_id = $1";
        assert_eq!(count_of(&path, listed, instance.id).await, 0);
        store.close().await;
    })
    .await
}

/// A forget of a removed resource that a stopped node left before its first part is finished
/// when the store restarts: every known object of the resource gone (several parts of
/// them), the other resource's kept, the resource off the list. Fails without
/// the forgets in `finish_leftovers`, or if it stops after one part. A forget that ran to its end
/// leaves nothing listed, or every start would walk it again.
#[tokio::test]
async fn a_restart_finishes_a_forget_a_stopped_node_left_halfway() {
    crate::conformance::with_tokens(async move {
        let (_dir, path, store) = fresh().await;
        let many = conformance::SEVERAL_PARTS;
        let instance = stopped_while_forgetting_companies(&path, &store, many).await;
        let listed = "SELECT COUNT(*) FROM forgetting WHERE instance_id = $1";
        let both = conformance::new_instance(
            instance.organization_id,
            instance.user_id,
            2,
            &["contacts", "companies"],
        );
        let finished = store.create_instance(both).await.unwrap();
        let removed = crate::platform::update(&["contacts"]);
        store
            .update_instance(finished.organization_id, finished.id, removed)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(count_of(&path, listed, finished.id).await, 0);
        assert_eq!(count_of(&path, listed, instance.id).await, 1);
        store.close().await;
        let (store, left) = restarted(&path).await;
        assert_eq!(left.forgets, 1);
        assert_eq!(known_count(&path, instance.id, "companies").await, 0);
        assert_eq!(known_count(&path, instance.id, "contacts").await, 3);
        assert_eq!(count_of(&path, listed, instance.id).await, 0);
        store.close().await;
    })
    .await
}

/// A redelivery or a replay into a disabled instance parks what it brings back (see the
/// check). Fails if either makes it due.
#[tokio::test]
async fn what_comes_back_to_a_disabled_instance_is_parked() {
    crate::conformance::with_tokens(async move {
        let (_dir, path, store) = fresh().await;
        let counts = |instance| {
            let path = path.clone();
            async move {
                let due = "SELECT COUNT(*) FROM notifications
                           WHERE instance_id = $1 AND next_attempt_at IS NOT NULL";
                let parked = "SELECT COUNT(*) FROM notifications
                              WHERE instance_id = $1 AND status = 'pending'
                                AND next_attempt_at IS NULL AND paused_due_at IS NOT NULL";
                (
                    count_of(&path, due, instance).await,
                    count_of(&path, parked, instance).await,
                )
            }
        };
        conformance::check_what_comes_back_to_a_disabled_instance_is_parked(&store, counts).await;
        store.close().await;
    })
    .await
}

#[tokio::test]
async fn a_restart_finishes_a_redelivery_a_stopped_node_left_halfway() {
    crate::conformance::with_tokens(async move {
        let (_dir, path, store) = fresh().await;
        let (org, user) = conformance::organization(&store, 1).await;
        let [halfway, finished] =
            conformance::instances_for(&store, &[(org, user, 1), (org, user, 2)]).await[..]
        else {
            unreachable!()
        };
        let all = conformance::SEVERAL_PARTS;
        let at = t0() + 1.seconds();
        conformance::notifications_due_at(&store, halfway, 0, all, at).await;
        conformance::notifications_due_at(&store, finished, all, all, at).await;
        let id = |n: usize| NotificationId(format!("notification-{n}"));
        let due = store
            .redeliver(
                finished,
                (all..2 * all).map(id).collect(),
                hubhook_store::Redeliver::Undelivered,
                t0() + 2.seconds(),
            )
            .await;
        assert_eq!(due.unwrap(), all as u64);
        let listed = "SELECT COUNT(*) FROM redeliveries WHERE instance_id = $1";
        assert_eq!(count_of(&path, listed, finished).await, 0);
        store.close().await;
        {
            use sqlx::Connection as _;
            let mut conn = sqlx::SqliteConnection::connect(&url(&path)).await.unwrap();
            let ids: Vec<String> = (0..all).map(|n| id(n).0).collect();
            for sql in [
                // Queued by a deactivation, then the first part's write, then a delivery of
                // one the parts had not reached yet (an attempt that was still going when the
                // list was made): it must not be made due again.
                "UPDATE notifications SET status = 'queued', next_attempt_at = NULL
                 WHERE instance_id = $1",
                "UPDATE notifications SET status = 'pending', next_attempt_at = 0
                 WHERE instance_id = $1 AND id IN (SELECT value FROM json_each($2) LIMIT 1000)",
                "UPDATE notifications SET status = 'delivered', next_attempt_at = NULL
                 WHERE id = 'notification-1500' AND $1 = $1 AND $2 = $2",
                "INSERT INTO redeliveries (instance_id, organization_id, ids, done)
                 SELECT id, organization_id, $2, 1000 FROM instances WHERE id = $1",
            ] {
                sqlx::query(sql)
                    .bind(halfway.0)
                    .bind(serde_json::to_string(&ids).unwrap())
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
        }
        let (store, left) = restarted(&path).await;
        assert_eq!(left.redeliveries, 1);
        let counts = (
            count_of(
                &path,
                "SELECT COUNT(*) FROM notifications WHERE instance_id = $1 AND status = 'queued'",
                halfway,
            )
            .await,
            count_of(
                &path,
                "SELECT COUNT(*) FROM notifications WHERE instance_id = $1 AND status = 'pending'",
                halfway,
            )
            .await,
            count_of(&path, listed, halfway).await,
        );
        assert_eq!(counts, (0, all as i64 - 1, 0));
        store.close().await;
    })
    .await
}

/// Claims running beside a delete of several parts take none of the instance's notifications
/// once it is gone from reads (the delete's first write disables it too), though its parts
/// are still cancelling them; before that, they may. Fails if the first write leaves the
/// instance enabled: a claim between two parts would then send a deleted instance's
/// notifications.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_beside_a_delete_take_nothing_of_the_instance_once_it_is_gone() {
    crate::conformance::with_tokens(async move {
        let (_dir, _path, store) = fresh().await;
        let (org, user) = conformance::organization(&store, 1).await;
        let [doomed, sibling] =
            conformance::instances_for(&store, &[(org, user, 1), (org, user, 2)]).await[..]
        else {
            unreachable!()
        };
        let all = conformance::SEVERAL_PARTS;
        conformance::notifications_due_at(&store, doomed, 0, all, t0() + 1.seconds()).await;
        conformance::notifications_due_at(&store, sibling, all, 1, t0() + 1.seconds()).await;
        let deleting = tokio::spawn({
            let store = store.clone();
            async move { store.delete_instance(org, doomed).await }
        });
        let mut after_gone = 0;
        while !deleting.is_finished() {
            let gone = store.instance(doomed).await.unwrap().is_none();
            let claimed =
                conformance::claim_notifications(&store, "c", t0() + 10.seconds(), LEASE, 10)
                    .await
                    .unwrap();
            store.release_leases("c").await.unwrap();
            if gone {
                after_gone += 1;
                let of_doomed: Vec<_> =
                    claimed.iter().filter(|n| n.instance_id == doomed).collect();
                assert!(
                    of_doomed.is_empty(),
                    "claimed while deleting: {of_doomed:?}"
                );
            }
        }
        assert!(deleting.await.unwrap().unwrap());
        assert!(after_gone > 0, "no claim ran between the delete's parts");
        store.close().await;
    })
    .await
}

/// While its delete's parts run, an instance is gone from every read and write of the
/// store, as it is once the row is gone: not found, not listed, not authenticated by its
/// token, not updated, enabled, disabled or deleted again, not polled, nothing of it
/// redelivered, replayed or sent, its secret not rotated, its events and notifications not
/// in the organization's feeds or the console's counts, and its notifications are not parked
/// (they are being cancelled). Its sibling is untouched. Fails if any of these reads forgets
/// `deleting`.
#[tokio::test]
async fn an_instance_being_deleted_is_gone_from_every_read_and_write() {
    crate::conformance::with_tokens(async move {
        let (_dir, path, store) = fresh().await;
        let (org, user) = conformance::organization(&store, 1).await;
        let [doomed, sibling] =
            conformance::instances_for(&store, &[(org, user, 1), (org, user, 2)]).await[..]
        else {
            unreachable!()
        };
        conformance::notifications_due_at(&store, doomed, 0, 2, t0() + 1.seconds()).await;
        conformance::notifications_due_at(&store, sibling, 10, 1, t0() + 1.seconds()).await;
        // notification-0 of the doomed instance is delivered: an attempt in its history.
        let delivered = NotificationId("notification-0".into());
        let at = t0() + 2.seconds();
        conformance::claim_notifications(&store, "d", at, LEASE, 10)
            .await
            .unwrap();
        store
            .finish_attempt(conformance::delivered(
                &delivered,
                "d",
                conformance::token_of("d", &delivered.0),
                at,
            ))
            .await
            .unwrap();
        store.release_leases("d").await.unwrap();
        mark_deleting(&path, doomed).await;
        let now = t0() + 10.seconds();

        assert!(store.instance(doomed).await.unwrap().is_none());
        assert!(store.get_instance(org, doomed).await.unwrap().is_none());
        let listed: Vec<_> = store.list_instances(org).await.unwrap();
        assert_eq!(listed.iter().map(|i| i.id).collect::<Vec<_>>(), [sibling]);
        let token = conformance::new_instance(org, user, 1, &["contacts"]).token_hash;
        assert!(store.instance_by_token(token).await.unwrap().is_none());
        let update = crate::platform::update(&["contacts"]);
        assert!(
            store
                .update_instance(org, doomed, update)
                .await
                .unwrap()
                .is_none()
        );
        // Disabled last, then enabled: an enable that got through would leave it claimable.
        for disabled in [true, false] {
            let switched = store
                .set_instance_disabled(org, doomed, disabled, now)
                .await;
            assert!(switched.unwrap().is_none(), "disabled: {disabled}");
        }
        assert!(!store.delete_instance(org, doomed).await.unwrap());
        assert!(!store.poll_now(doomed, now).await.unwrap());
        let both = vec![delivered, NotificationId("notification-1".into())];
        assert_eq!(
            store
                .redeliver(doomed, both, hubhook_store::Redeliver::Any, now)
                .await
                .unwrap(),
            0
        );
        let replay = vec![(
            NotificationId("notification-0".into()),
            conformance::notification(20, &[]),
        )];
        assert!(matches!(
            store.insert_replays(doomed, replay, now).await,
            Err(StoreError::NotFound)
        ));
        let rotated = store
            .rotate_webhook_secret(org, doomed, "whsec_x".into(), now, Duration::ZERO)
            .await;
        assert!(!rotated.unwrap());
        let versions = store
            .delivery_config_versions(&[doomed, sibling])
            .await
            .unwrap();
        assert_eq!(versions.keys().collect::<Vec<_>>(), [&sibling]);
        let events = store
            .organization_events(org, None, None, 0, 10)
            .await
            .unwrap();
        assert!(
            events.iter().all(|e| e.instance_id == sibling),
            "{events:?}"
        );
        assert_eq!(events.len(), 1);
        let feed = store
            .find_notifications(hubhook_store::NotificationFilter {
                organization: org,
                instance: None,
                statuses: Vec::new(),
                since: None,
                until: None,
                after: None,
                limit: 10,
                bodies: false,
            })
            .await
            .unwrap();
        assert_eq!(
            feed.iter().map(|n| n.instance_id).collect::<Vec<_>>(),
            [sibling]
        );
        let health = store.delivery_health(org, None, now).await.unwrap();
        assert_eq!(
            health.iter().map(|h| h.instance_id).collect::<Vec<_>>(),
            [sibling]
        );
        let analytics = store
            .event_analytics(org, t0(), now + 1.hours(), 3_600_000)
            .await
            .unwrap();
        assert!(
            analytics.iter().all(|a| a.instance_id == sibling),
            "{analytics:?}"
        );
        let claimed = conformance::claim_notifications(&store, "d", now, LEASE, 10)
            .await
            .unwrap();
        let ids: Vec<_> = claimed.iter().map(|n| n.id.0.as_str()).collect();
        assert_eq!(ids, ["notification-10"]);
        // Nor did that claim's parking step park them: they are being cancelled.
        assert_eq!(
            parked_counts(&path, doomed, t0() + 1.seconds()).await,
            (1, 0)
        );
        // None of these calls left anything behind (an update that got through would have
        // given it poll jobs again, which the row's delete would trip over): a restart
        // finishes the delete.
        assert!(store.poll_jobs(doomed).await.unwrap().is_empty());
        store.close().await;
        let (store, _) = restarted(&path).await;
        let row = count_of(
            &path,
            "SELECT COUNT(*) FROM instances WHERE id = $1",
            doomed,
        )
        .await;
        assert_eq!(row, 0);
        store.close().await;
    })
    .await
}

/// An instance enabled by a node that does not know parking (an older version, during a
/// rolling upgrade: it sets `disabled` and moves nothing back) gets its parked notifications
/// back at the next claim, instead of never again.
#[tokio::test]
async fn an_instance_enabled_by_an_older_node_gets_its_notifications_back() {
    crate::conformance::with_tokens(async move {
        let (_dir, path, store) = fresh().await;
        let instance = conformance::disabled_instance_with_parked_notifications(&store).await;
        set_disabled_only(&path, instance, false).await;
        let at = t0() + 2.hours();
        let claimed = conformance::claim_notifications(&store, "new", at, LEASE, 10)
            .await
            .unwrap();
        let ids: Vec<_> = claimed.iter().map(|n| n.id.0.as_str()).collect();
        assert_eq!(ids, ["notification-0"]);
        store.close().await;
    })
    .await
}

/// A redelivery of several instances lists every instance's ids in its first write, however
/// short the list, so that a node stopped after that write finishes all of them at its next
/// start, not only the instance it was at; and nothing is left listed at its end. Fails if an
/// instance's list is recorded only when its turn comes (the short one was not recorded at
/// all: a stopped node left it queued for good).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivery_of_several_instances_is_listed_whole_before_its_parts() {
    crate::conformance::with_tokens(async move {
        let (_dir, path, store) = fresh().await;
        let (org, user) = conformance::organization(&store, 1).await;
        let [big, small] =
            conformance::instances_for(&store, &[(org, user, 1), (org, user, 2)]).await[..]
        else {
            unreachable!()
        };
        // Twenty parts: time enough to see the list while they run.
        let many = 20_000;
        let at = t0() + 1.seconds();
        conformance::notifications_due_at(&store, big, 0, many, at).await;
        conformance::notifications_due_at(&store, small, many, 2, at).await;
        let id = |n: usize| NotificationId(format!("notification-{n}"));
        let runs = vec![
            (big, (0..many).map(id).collect()),
            (small, (many..many + 2).map(id).collect()),
        ];
        use sqlx::Connection as _;
        // Connected first: the watch starts with the redelivery.
        let mut conn = sqlx::SqliteConnection::connect(&url(&path)).await.unwrap();
        let running = tokio::spawn({
            let store = store.clone();
            async move {
                store
                    .redeliver_several(
                        runs,
                        hubhook_store::Redeliver::Undelivered,
                        t0() + 5.seconds(),
                    )
                    .await
            }
        });
        let listed = "SELECT COUNT(*) FROM redeliveries";
        let seen: i64 = loop {
            let n: i64 = sqlx::query_scalar(listed)
                .fetch_one(&mut conn)
                .await
                .unwrap();
            if n > 0 || running.is_finished() {
                break n;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        assert_eq!(seen, 2, "both instances listed in the first write");
        assert_eq!(running.await.unwrap().unwrap(), many as u64 + 2);
        let left: i64 = sqlx::query_scalar(listed)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(left, 0, "nothing left listed at the end");
        store.close().await;
    })
    .await
}

/// What a start finishes is what it read before its API listened: a redelivery listed by a
/// live request after that is the request's own, and finishing the leftovers leaves it alone
/// (run twice, it would make due again what failed since, and reactivate a subscription
/// deactivated since). Fails if the finishing reads the tables itself.
#[tokio::test]
async fn the_leftovers_finished_are_those_read_before_listening() {
    crate::conformance::with_tokens(async move {
        let (_dir, path, store) = fresh().await;
        let (org, user) = conformance::organization(&store, 1).await;
        let [instance] = conformance::instances_for(&store, &[(org, user, 1)]).await[..] else {
            unreachable!()
        };
        conformance::notifications_due_at(&store, instance, 0, 3, t0() + 1.seconds()).await;
        let work = store.leftovers().await.unwrap();
        {
            use sqlx::Connection as _;
            let mut conn = sqlx::SqliteConnection::connect(&url(&path)).await.unwrap();
            sqlx::query(
                "INSERT INTO redeliveries (instance_id, organization_id, ids, done)
                 SELECT id, organization_id, '[\"notification-0\"]', 0 FROM instances
                 WHERE id = $1",
            )
            .bind(instance.0)
            .execute(&mut conn)
            .await
            .unwrap();
        }
        let finished = store.finish_leftovers(work).await;
        assert_eq!(finished.done.redeliveries, 0);
        let listed = "SELECT COUNT(*) FROM redeliveries WHERE instance_id = $1";
        assert_eq!(
            count_of(&path, listed, instance).await,
            1,
            "left to its request"
        );
        store.close().await;
    })
    .await
}
