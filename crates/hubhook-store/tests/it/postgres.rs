//! The conformance checks on PostgreSQL, each in a fresh schema so they run in parallel, plus
//! what only PostgreSQL has: several nodes (stores with their own connections) on one database.
//!
//! The server is the machine's (`HUBHOOK_TEST_POSTGRES`, by default
//! `postgres://postgres@127.0.0.1:5432/test`); `.ci/run` makes sure it answers.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use hubhook_store::{MasterKey, Store, Wake};
use jiff::ToSpan as _;
use sqlx::Connection as _;

use crate::conformance::{self, LEASE, t0};

fn server_url() -> String {
    std::env::var("HUBHOOK_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn key() -> MasterKey {
    MasterKey::parse(&"42".repeat(32)).unwrap()
}

/// A schema of its own for one test, dropped when the guard goes (even when the test failed).
struct Schema {
    name: String,
}

impl Schema {
    async fn create() -> Schema {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "hubhook_test_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = sqlx::PgConnection::connect(&server_url()).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.unwrap();
        Schema { name }
    }

    /// The database URL whose connections see only this schema.
    fn url(&self) -> String {
        let base = server_url();
        let separator = if base.contains('?') { '&' } else { '?' };
        format!("{base}{separator}options[search_path]={}", self.name)
    }

    async fn open(&self) -> Store {
        Store::open(&self.url(), key()).await.unwrap()
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        // Drop runs inside the test's runtime, which cannot block on itself: a thread of its
        // own, with a runtime of its own, drops the schema.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async move {
                    let mut admin = sqlx::PgConnection::connect(&server_url()).await?;
                    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(&mut admin)
                        .await?;
                    admin.close().await
                })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop schema {}: {dropped:?}", self.name);
        }
    }
}

macro_rules! conformance {
    ($($module:ident :: $check:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $check() {
            let schema = Schema::create().await;
            let store = schema.open().await;
            crate::conformance::with_tokens(crate::$module::$check(&store)).await;
            store.close().await;
        }
    )*};
}

crate::every_check!(conformance);

/// Nodes starting at once on an empty schema: the migrator's advisory lock lets one migrate
/// and the others find the schema up to date; every node can then work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_at_once_migrate_once() {
    let schema = Schema::create().await;
    let url = schema.url();
    let (a, b, c, d) = tokio::join!(
        Store::open(&url, key()),
        Store::open(&url, key()),
        Store::open(&url, key()),
        Store::open(&url, key()),
    );
    let stores = [a.unwrap(), b.unwrap(), c.unwrap(), d.unwrap()];
    conformance::organization(&stores[3], 1).await;
    for store in stores {
        store.close().await;
    }
}

/// Several nodes (each its own connection pool) claiming the same due work at the same time:
/// every job is claimed exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_from_many_nodes_never_overlap() {
    const JOBS: usize = 300;
    let schema = Schema::create().await;
    let first = schema.open().await;
    let resources: Vec<String> = (0..JOBS).map(|n| format!("resource-{n}")).collect();
    let refs: Vec<&str> = resources.iter().map(String::as_str).collect();
    conformance::instance_with(&first, &refs).await;
    let mut nodes = vec![first];
    for _ in 1..3 {
        nodes.push(schema.open().await);
    }
    let mut claims = Vec::new();
    for (n, store) in nodes.iter().enumerate() {
        for worker in 0..4 {
            let store = store.clone();
            claims.push(tokio::spawn(async move {
                let owner = format!("node-{n}-{worker}");
                let mut mine = Vec::new();
                loop {
                    let jobs = store.claim_poll_jobs(&owner, t0(), LEASE, 7).await.unwrap();
                    if jobs.is_empty() {
                        return mine;
                    }
                    mine.extend(jobs.into_iter().map(|job| job.resource));
                }
            }));
        }
    }
    let mut seen = HashSet::new();
    for claim in claims {
        for resource in claim.await.unwrap() {
            assert!(seen.insert(resource.clone()), "{resource} claimed twice");
        }
    }
    assert_eq!(seen.len(), JOBS);
    for store in nodes {
        store.close().await;
    }
}

/// Several nodes claiming notifications at once, some of their dispatchers with one instance's
/// receiver full (skipped): every notification is claimed exactly once. The claim reads and
/// locks its candidates one by one by id (LATERAL lookups, SKIP LOCKED) on generic plans, and
/// its window, organization lookups and organization heads can offer the same notification
/// twice; this holds all of them to taking each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_claims_from_many_nodes_never_overlap() {
    crate::conformance::with_tokens(async move {
        let schema = Schema::create().await;
        let first = schema.open().await;
        let (a, a_user) = conformance::organization(&first, 1).await;
        let (b, b_user) = conformance::organization(&first, 2).await;
        let instances =
            conformance::instances_for(&first, &[(a, a_user, 1), (a, a_user, 2), (b, b_user, 3)])
                .await;
        let counts = [400, 60, 60];
        for (n, (instance, count)) in instances.iter().zip(counts).enumerate() {
            conformance::notifications_due_at(&first, *instance, n * 1000, count, t0()).await;
        }
        let mut nodes = vec![first];
        for _ in 1..3 {
            nodes.push(schema.open().await);
        }
        let shares = hubhook_store::OrganizationShares {
            share: 4,
            ..hubhook_store::OrganizationShares::unlimited()
        };
        let now = t0() + 1.seconds();
        let mut claims = Vec::new();
        for (n, store) in nodes.iter().enumerate() {
            for worker in 0..3 {
                let store = store.clone();
                let shares = shares.clone();
                let skip = if worker == 0 {
                    vec![instances[0]]
                } else {
                    Vec::new()
                };
                claims.push(tokio::spawn(async move {
                    let owner = format!("node-{n}-{worker}");
                    let mut mine = Vec::new();
                    loop {
                        let claimed = store
                            .claim_notifications_fairly(&owner, now, LEASE, 4, &skip, 10, &shares)
                            .await
                            .unwrap()
                            .notifications;
                        if claimed.is_empty() {
                            return mine;
                        }
                        mine.extend(claimed.into_iter().map(|n| n.id));
                    }
                }));
            }
        }
        let mut seen = HashSet::new();
        for claim in claims {
            for id in claim.await.unwrap() {
                assert!(seen.insert(id.clone()), "{id:?} claimed twice");
            }
        }
        assert_eq!(seen.len(), counts.iter().sum::<usize>());
        for store in nodes {
            store.close().await;
        }
    })
    .await
}

/// The next wake-up. The bound only keeps a broken listener from hanging the test; it asserts
/// no timing.
async fn next(wakeups: &mut hubhook_store::Wakeups) -> Wake {
    tokio::time::timeout(Duration::from_secs(30), wakeups.next())
        .await
        .expect("no wake-up arrived")
        .unwrap()
}

/// Work made due on one node wakes the others: the notification is sent by the committing
/// transaction and heard by every listener on the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_made_on_one_node_wakes_another() {
    crate::conformance::with_tokens(async move {
        let schema = Schema::create().await;
        let a = schema.open().await;
        let b = schema.open().await;
        let mut wakeups = b.wakeups().await.unwrap().expect("PostgreSQL has wake-ups");
        let instance = conformance::instance_with(&a, &["contacts"]).await;
        assert_eq!(next(&mut wakeups).await, Wake::Polls);
        assert!(a.poll_now(instance.id, t0()).await.unwrap());
        assert_eq!(next(&mut wakeups).await, Wake::Polls);
        let jobs = conformance::claim_jobs(&a, "a", t0(), LEASE, 10)
            .await
            .unwrap();
        assert_eq!(jobs.len(), 1);
        a.commit_poll(conformance::commit_with_events(
            instance.id,
            "contacts",
            "a",
            0,
            2,
        ))
        .await
        .unwrap();
        let committed = std::time::Instant::now();
        assert_eq!(next(&mut wakeups).await, Wake::Deliveries);
        // A figure, not an assertion (timing goals belong to benchmarks).
        println!(
            "wake-up across nodes: heard {:?} after the commit returned",
            committed.elapsed()
        );
        a.close().await;
        b.close().await;
    })
    .await
}

/// NOTIFY channels belong to the whole database: a hubhook on another schema of it (here,
/// another test's) must not wake this one's loops, and its own wake-ups still do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wake_ups_of_another_schema_are_not_heard() {
    crate::conformance::with_tokens(async move {
        let (ours, theirs) = (Schema::create().await, Schema::create().await);
        let (node, other) = (ours.open().await, theirs.open().await);
        let instance = conformance::instance_with(&other, &["contacts"]).await;
        assert!(other.poll_now(instance.id, t0()).await.unwrap());
        let jobs = conformance::claim_jobs(&other, "a", t0(), LEASE, 10)
            .await
            .unwrap();
        assert_eq!(jobs.len(), 1);
        let mut wakeups = node
            .wakeups()
            .await
            .unwrap()
            .expect("PostgreSQL has wake-ups");
        // Sent first, on the other schema: new notifications to deliver.
        other
            .commit_poll(conformance::commit_with_events(
                instance.id,
                "contacts",
                "a",
                0,
                2,
            ))
            .await
            .unwrap();
        // Then this schema's own: a new instance to poll. The first wake-up heard is this one.
        conformance::instance_with(&node, &["contacts"]).await;
        assert_eq!(next(&mut wakeups).await, Wake::Polls);
        node.close().await;
        other.close().await;
    })
    .await
}

#[tokio::test]
async fn a_postgres_url_opens_postgres() {
    let schema = Schema::create().await;
    let store = schema.open().await;
    assert!(!store.is_sqlite());
    // Nodes sharing the database decide on its clock.
    assert!(store.database_time().await.unwrap().is_some());
    store.close().await;
}

/// Every table carries the organization id (ARCHITECTURE.md, "Organizations"): the schema can
/// be distributed by organization. `organizations` is keyed by it already.
#[tokio::test]
async fn every_table_carries_the_organization() {
    let schema = Schema::create().await;
    schema.open().await.close().await;
    let mut conn = sqlx::PgConnection::connect(&schema.url()).await.unwrap();
    let missing: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables t
         WHERE table_schema = $1 AND table_name NOT IN ('organizations', '_sqlx_migrations')
           AND NOT EXISTS (SELECT 1 FROM information_schema.columns c
                           WHERE c.table_schema = t.table_schema AND c.table_name = t.table_name
                             AND c.column_name = 'organization_id')",
    )
    .bind(&schema.name)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(
        missing.is_empty(),
        "tables without organization_id: {missing:?}"
    );
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = $1",
    )
    .bind(&schema.name)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(tables > 5, "the probe sees the schema's tables: {tables}");
    conn.close().await.unwrap();
}

/// What the parking of a disabled instance's notifications stores (`hubhook_store::deliveries`,
/// "Paused notifications"), as on SQLite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_instance_s_notifications_are_parked_out_of_the_claims_way() {
    crate::conformance::with_tokens(async move {
        let schema = Schema::create().await;
        let store = schema.open().await;
        let instance =
            crate::conformance::disabled_instance_with_parked_notifications(&store).await;
        let due = (t0() + 1.hours() + 1.seconds()).as_millisecond();
        let mut conn = sqlx::PgConnection::connect(&schema.url()).await.unwrap();
        let (unparked, parked): (i64, i64) = sqlx::query_as(crate::conformance::PARKED_COUNTS)
            .bind(instance.0)
            .bind(due)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!((unparked, parked), (0, 1));
        store.close().await;
    })
    .await
}

/// A redelivery or a replay into a disabled instance parks what it brings back (see the
/// check). Fails if either makes it due.
#[tokio::test]
async fn what_comes_back_to_a_disabled_instance_is_parked() {
    crate::conformance::with_tokens(async move {
        let schema = Schema::create().await;
        let store = schema.open().await;
        let url = schema.url();
        let counts = |instance: hubhook_core::InstanceId| {
            let url = url.clone();
            async move {
                let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
                sqlx::query_as::<_, (i64, i64)>(
                    "SELECT COUNT(*) FILTER (WHERE next_attempt_at IS NOT NULL),
                            COUNT(*) FILTER (WHERE status = 'pending' AND next_attempt_at IS NULL
                                               AND paused_due_at IS NOT NULL)
                     FROM notifications WHERE instance_id = $1",
                )
                .bind(instance.0)
                .fetch_one(&mut conn)
                .await
                .unwrap()
            }
        };
        conformance::check_what_comes_back_to_a_disabled_instance_is_parked(&store, counts).await;
        store.close().await;
    })
    .await
}

/// An enable racing another node's claim must not leave a notification parked for an enabled
/// instance, where nothing would ever bring it back: the claim's parking locks the disabled
/// instance FOR SHARE (`hubhook_store::deliveries`, "Paused notifications"). Each round
/// redelivers the instance's notifications while it is disabled and makes them due as a node
/// of an older version would (a redelivery now parks them itself), so that there is something
/// to park, then enables it while the other node claims.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enable_racing_a_claim_leaves_nothing_parked() {
    crate::conformance::with_tokens(async move {
        use hubhook_core::NotificationId;
        let schema = Schema::create().await;
        let (a, b) = (schema.open().await, schema.open().await);
        let (org, user) = conformance::organization(&a, 1).await;
        let instance = conformance::instances_for(&a, &[(org, user, 1)]).await[0];
        conformance::notifications_due_at(&a, instance, 0, 20, t0()).await;
        let ids: Vec<_> = (0..20)
            .map(|n| NotificationId(format!("notification-{n}")))
            .collect();
        let mut conn = sqlx::PgConnection::connect(&schema.url()).await.unwrap();
        let shares = hubhook_store::OrganizationShares::unlimited();
        for round in 0..60 {
            let at = t0() + (round + 1).seconds();
            a.set_instance_disabled(org, instance, true, at)
                .await
                .unwrap();
            a.redeliver(
                instance,
                ids.clone(),
                hubhook_store::Redeliver::Undelivered,
                at,
            )
            .await
            .unwrap();
            sqlx::query(
                "UPDATE notifications SET next_attempt_at = paused_due_at, paused_due_at = NULL
                 WHERE instance_id = $1 AND next_attempt_at IS NULL",
            )
            .bind(instance.0)
            .execute(&mut conn)
            .await
            .unwrap();
            let claim = b.claim_notifications_fairly("b", at, LEASE, 1, &[], 1, &shares);
            let (enabled, claimed) =
                tokio::join!(a.set_instance_disabled(org, instance, false, at), claim);
            enabled.unwrap();
            claimed.unwrap();
            let stuck: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM notifications
             WHERE instance_id = $1 AND status = 'pending' AND next_attempt_at IS NULL",
            )
            .bind(instance.0)
            .fetch_one(&mut conn)
            .await
            .unwrap();
            assert_eq!(stuck, 0, "round {round}: parked for an enabled instance");
            b.release_leases("b").await.unwrap();
        }
        a.close().await;
        b.close().await;
    })
    .await
}

/// An instance enabled by a node that does not know parking (an older version, during a
/// rolling upgrade: it sets `disabled` and moves nothing back) gets its parked notifications
/// back at the next claim, instead of never again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_enabled_by_an_older_node_gets_its_notifications_back() {
    crate::conformance::with_tokens(async move {
        let schema = Schema::create().await;
        let store = schema.open().await;
        let instance =
            crate::conformance::disabled_instance_with_parked_notifications(&store).await;
        let mut conn = sqlx::PgConnection::connect(&schema.url()).await.unwrap();
        sqlx::query("UPDATE instances SET disabled = false WHERE id = $1")
            .bind(instance.0)
            .execute(&mut conn)
            .await
            .unwrap();
        let at = t0() + 2.hours();
        let claimed = crate::conformance::claim_notifications(&store, "new", at, LEASE, 10)
            .await
            .unwrap();
        let ids: Vec<_> = claimed.iter().map(|n| n.id.0.as_str()).collect();
        assert_eq!(ids, ["notification-0"]);
        store.close().await;
    })
    .await
}
