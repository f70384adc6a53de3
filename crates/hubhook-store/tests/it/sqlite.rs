//! The conformance checks on SQLite, plus what only SQLite has: a file on disk.

use std::path::{Path, PathBuf};

use hubhook_core::NotificationId;
use hubhook_store::{MasterKey, Store, StoreError};
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
    ($($check:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $check() {
            let (_dir, _path, store) = fresh().await;
            conformance::$check(&store).await;
            store.close().await;
        }
    )*};
}

conformance!(
    check_organizations_and_authentication,
    check_instance_round_trip,
    check_claim_exclusivity,
    check_commit_poll_is_fenced,
    check_commit_poll_is_idempotent,
    check_commit_poll_writes_everything_together,
    check_finish_attempt_outcomes,
    check_claim_order_of_notifications,
    check_delete_instance_keeps_history,
    check_poll_now,
    check_poll_now_during_a_running_poll,
    check_failed_write_is_isolated,
    check_concurrent_commits_all_land,
    check_cursor_never_moves_backwards,
    check_known_events_are_not_notified_again,
    check_a_new_claim_fences_the_same_owners_old_one,
    check_renewing_a_poll_lease,
    check_releasing_a_nodes_leases,
    check_backlogs,
    check_next_poll_due_among_leased_and_unleased_jobs,
    check_a_poll_commits_page_by_page_and_resumes_from_its_checkpoint,
    check_known_objects_keep_their_last_version_and_deletions,
    check_a_held_mass_delete_waits_for_a_decision,
    check_deferring_a_poll_hands_it_back,
    check_a_callback_makes_its_jobs_due,
    check_webhook_secrets_rotate_with_an_overlap,
    check_a_deactivated_subscription_queues_until_redelivery,
    check_the_pull_feed_pages_in_storage_order,
    check_pruning_removes_at_most_a_batch,
    check_claims_share_out_among_instances,
    check_an_attempt_has_its_row_before_the_post,
);

macro_rules! platform_conformance {
    ($($check:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $check() {
            let (_dir, _path, store) = fresh().await;
            crate::platform::$check(&store).await;
            store.close().await;
        }
    )*};
}

platform_conformance!(
    check_updating_an_instance_keeps_kept_cursors,
    check_a_disabled_instance_neither_polls_nor_delivers,
    check_events_by_organization,
    check_users_sign_in_and_sealed_secrets,
);

macro_rules! console_conformance {
    ($($check:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $check() {
            let (_dir, _path, store) = fresh().await;
            crate::console::$check(&store).await;
            store.close().await;
        }
    )*};
}

console_conformance!(check_delivery_health_and_analytics, check_ending_a_session);

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
    // Closing twice is harmless.
    store.close().await;
}

#[tokio::test]
async fn open_rejects_unknown_urls() {
    for (url, expected) in [
        ("postgres://localhost/hubhook", "postgres"),
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
