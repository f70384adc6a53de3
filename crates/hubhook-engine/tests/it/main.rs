//! The engine's loops driven one round at a time against the real simulator, a real receiver
//! and a real SQLite file, with a clock the test controls.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicI64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State, http::StatusCode, routing::post};
use connectwise_sim::{SimConfig, SimHandle, Simulator};
use hubhook_core::{InstanceId, RetrySchedule, split_secrets};
use hubhook_engine::{Clock, Engine, EngineConfig};
use hubhook_store::{InstanceUpdate, MasterKey, NewInstance, Store};
use serde_json::{Map, Value, json};

/// A receiver that answers with a status the test sets after a delay the test sets, records
/// bodies, and counts the POSTs it holds at once.
#[derive(Clone)]
struct Receiver {
    url: String,
    status: Arc<Mutex<StatusCode>>,
    bodies: Arc<Mutex<Vec<Value>>>,
    /// When each POST arrived.
    arrivals: Arc<Mutex<Vec<std::time::Instant>>>,
    delay: Arc<Mutex<Duration>>,
    in_flight: Arc<AtomicUsize>,
    /// The most POSTs held at once.
    peak: Arc<AtomicUsize>,
    /// How many of the next POSTs to hold unanswered until `release` is set.
    hold_next: Arc<AtomicUsize>,
    release: Arc<tokio::sync::watch::Sender<bool>>,
}

async fn start_receiver(status: StatusCode) -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let receiver = Receiver {
        url: format!("http://{addr}/hook"),
        status: Arc::new(Mutex::new(status)),
        bodies: Arc::new(Mutex::new(Vec::new())),
        arrivals: Arc::new(Mutex::new(Vec::new())),
        delay: Arc::new(Mutex::new(Duration::ZERO)),
        in_flight: Arc::new(AtomicUsize::new(0)),
        peak: Arc::new(AtomicUsize::new(0)),
        hold_next: Arc::new(AtomicUsize::new(0)),
        release: Arc::new(tokio::sync::watch::channel(false).0),
    };
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(receiver.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    receiver
}

async fn receive(State(receiver): State<Receiver>, body: Bytes) -> StatusCode {
    receiver
        .arrivals
        .lock()
        .expect("lock")
        .push(std::time::Instant::now());
    let held = receiver.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    receiver.peak.fetch_max(held, Ordering::SeqCst);
    receiver
        .bodies
        .lock()
        .expect("lock")
        .push(serde_json::from_slice(&body).expect("json body"));
    let delay = *receiver.delay.lock().expect("lock");
    tokio::time::sleep(delay).await;
    let hold = receiver
        .hold_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if hold {
        let _ = receiver
            .release
            .subscribe()
            .wait_for(|released| *released)
            .await;
    }
    receiver.in_flight.fetch_sub(1, Ordering::SeqCst);
    *receiver.status.lock().expect("lock")
}

/// A clock the test moves by hand.
#[derive(Clone)]
struct TestClock(Arc<AtomicI64>);

impl TestClock {
    fn new() -> TestClock {
        TestClock(Arc::new(AtomicI64::new(
            jiff::Timestamp::now().as_millisecond(),
        )))
    }
    fn clock(&self) -> Clock {
        let millis = self.0.clone();
        Clock::from_fn(move || {
            jiff::Timestamp::from_millisecond(millis.load(Ordering::SeqCst)).expect("valid time")
        })
    }
    fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
    fn now(&self) -> jiff::Timestamp {
        self.clock().now()
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    url: String,
    sim: SimHandle,
    instance: InstanceId,
}

const KEY: &str = "2222222222222222222222222222222222222222222222222222222222222222";

async fn open(url: &str) -> Store {
    Store::open(url, MasterKey::parse(KEY).expect("key"))
        .await
        .expect("open store")
}

fn engine(store: Store, clock: Clock, schedule: RetrySchedule) -> Engine {
    engine_with(
        store,
        clock,
        EngineConfig {
            retry_schedule: schedule,
            ..EngineConfig::default()
        },
    )
}

fn engine_with(store: Store, clock: Clock, config: EngineConfig) -> Engine {
    let config = EngineConfig {
        min_refresh_interval: Duration::from_secs(1),
        allow_private_callbacks: true,
        ..config
    };
    Engine::new(store, config, clock).expect("engine")
}

/// The documented configuration of an instance of `sim` (public part, secrets), polling
/// every 3 s, with the given private key and, if given, `contacts_url` for the contacts.
fn configuration(
    sim: &SimHandle,
    callback: &str,
    private_key: &str,
    contacts_url: Option<&str>,
) -> (Map<String, Value>, Map<String, Value>) {
    let mut body = hubhook_core::documented_instance_body(hubhook_core::DocumentedSite {
        base_url: &sim.base_url(),
        company: "demo",
        public_key: "demo-public",
        private_key,
        callback_url: callback,
    });
    let configuration = &mut body["configuration"];
    configuration["event.poller.refresh_interval"] = json!("0.05");
    if let Some(url) = contacts_url {
        configuration["event.poller.configuration"]["contacts"]["url"] = json!(url);
    }
    split_secrets(configuration.as_object().expect("object"))
}

/// A database with one instance polling contacts of a fresh simulator into `callback`.
async fn setup(callback: &str, now: jiff::Timestamp) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("engine.db").display());
    let sim = Simulator::spawn(
        SimConfig {
            records: 5,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await
    .expect("sim");
    let (public, secrets) = configuration(&sim, callback, "demo-private", None);
    let store = open(&url).await;
    let (org, user) = store
        .create_organization("acme", [1; 32], [2; 32], now)
        .await
        .expect("org");
    let row = store
        .create_instance(NewInstance {
            organization_id: org,
            user_id: user,
            name: "engine test".into(),
            element_key: "connectwisecrmrest".into(),
            token_hash: [3; 32],
            configuration: public,
            secrets,
            tags: vec![],
            events_enabled: true,
            resources: vec!["contacts".into()],
            refresh_interval_ms: 3000,
            now,
        })
        .await
        .expect("instance");
    store.close().await;
    Setup {
        _dir: dir,
        url,
        sim,
        instance: row.id,
    }
}

fn new_contact(sim: &SimHandle, name: &str) -> i64 {
    let company = sim.sim.ids("company/companies")[0];
    let created = sim
        .sim
        .create(
            "company/contacts",
            json!({ "firstName": name, "lastName": "Engine", "company": { "id": company } }),
        )
        .expect("contact created");
    created["id"].as_i64().expect("id")
}

#[tokio::test]
async fn events_committed_before_a_stop_are_delivered_after_restart() {
    let receiver = start_receiver(StatusCode::OK).await;
    let clock = TestClock::new();
    let setup = setup(&receiver.url, clock.now()).await;

    // First process: poll only (baseline, then the change), and stop before any delivery.
    let first = engine(
        open(&setup.url).await,
        clock.clock(),
        RetrySchedule::cloud_elements(),
    );
    assert_eq!(first.poll_due().await.expect("baseline"), 1);
    let id = new_contact(&setup.sim, "Crash");
    clock.advance(Duration::from_secs(5));
    assert_eq!(first.poll_due().await.expect("poll"), 1);
    let pending = first
        .store()
        .list_notifications(setup.instance, 10)
        .await
        .expect("read");
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].status, "pending");
    assert!(
        first
            .store()
            .list_attempts(&pending[0].id)
            .await
            .expect("read")
            .is_empty()
    );
    first.store().close().await;
    drop(first);
    assert!(receiver.bodies.lock().expect("lock").is_empty());

    // Second process on the same file: the outbox still holds the notification.
    let second = engine(
        open(&setup.url).await,
        clock.clock(),
        RetrySchedule::cloud_elements(),
    );
    assert_eq!(second.dispatch_due().await.expect("dispatch"), 1);
    let bodies = receiver.bodies.lock().expect("lock").clone();
    assert_eq!(bodies.len(), 1);
    assert_eq!(
        bodies[0]["message"]["events"][0]["objectId"],
        id.to_string()
    );
    assert_eq!(bodies[0]["message"]["events"][0]["eventType"], "CREATED");
    let delivered = second
        .store()
        .notification(&pending[0].id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(delivered.status, "delivered");

    // Polling the same records again stores nothing new.
    clock.advance(Duration::from_secs(5));
    assert_eq!(second.poll_due().await.expect("poll"), 1);
    assert_eq!(
        second
            .store()
            .list_notifications(setup.instance, 10)
            .await
            .expect("read")
            .len(),
        1
    );
}

#[tokio::test]
async fn failed_deliveries_follow_the_retry_schedule_then_queue() {
    let receiver = start_receiver(StatusCode::INTERNAL_SERVER_ERROR).await;
    let clock = TestClock::new();
    let setup = setup(&receiver.url, clock.now()).await;
    let schedule = RetrySchedule::cloud_elements();
    let engine = engine(open(&setup.url).await, clock.clock(), schedule.clone());
    engine.poll_due().await.expect("baseline");
    new_contact(&setup.sim, "Unlucky");
    clock.advance(Duration::from_secs(5));
    engine.poll_due().await.expect("poll");
    let id = engine
        .store()
        .list_notifications(setup.instance, 1)
        .await
        .expect("read")[0]
        .id
        .clone();

    // The first attempt, then one retry after each documented delay (4 s, 16 s, ... 4^9 s),
    // jittered by ±20 %: never before 0.8 × the delay, always by 1.2 × the delay.
    assert_eq!(engine.dispatch_due().await.expect("attempt"), 1);
    for failures in 1..=9u32 {
        let delay = schedule.delay_after(failures).expect("a retry is due");
        assert_eq!(delay, Duration::from_secs(4u64.pow(failures)));
        let earliest = delay.mul_f64(0.8);
        clock.advance(earliest - Duration::from_millis(1));
        assert_eq!(
            engine.dispatch_due().await.expect("early"),
            0,
            "retry {failures} came early"
        );
        clock.advance(delay.mul_f64(1.2) - earliest + Duration::from_millis(1));
        assert_eq!(
            engine.dispatch_due().await.expect("retry"),
            1,
            "retry {failures} not made"
        );
    }
    let queued = engine
        .store()
        .notification(&id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(queued.status, "queued");
    assert_eq!(queued.failed_attempts, 10);
    let attempts = engine.store().list_attempts(&id).await.expect("attempts");
    assert_eq!(attempts.len(), 10);
    assert!(
        attempts
            .iter()
            .all(|a| a.status_code == Some(500) && a.error.is_some())
    );
    // Queued notifications are not retried any more.
    clock.advance(Duration::from_secs(10 * 24 * 3600));
    assert_eq!(engine.dispatch_due().await.expect("nothing"), 0);
    assert_eq!(receiver.bodies.lock().expect("lock").len(), 10);
}

#[tokio::test]
async fn a_poll_whose_results_cannot_be_stored_is_released_and_retried_soon() {
    let receiver = start_receiver(StatusCode::OK).await;
    let clock = TestClock::new();
    let setup = setup(&receiver.url, clock.now()).await;
    // An hour-long lease: only an explicit release makes the job claimable again soon.
    let engine = engine_with(
        open(&setup.url).await,
        clock.clock(),
        EngineConfig {
            poll_lease: Duration::from_secs(3600),
            ..EngineConfig::default()
        },
    );
    assert_eq!(engine.poll_due().await.expect("baseline"), 1);

    // The database refuses the next poll's events, as a failing disk would.
    let mut raw = <sqlx::SqliteConnection as sqlx::Connection>::connect(&setup.url)
        .await
        .expect("raw connection");
    sqlx::query(
        "CREATE TRIGGER refuse_events BEFORE INSERT ON events
         BEGIN SELECT RAISE(ABORT, 'disk I/O error (injected)'); END",
    )
    .execute(&mut raw)
    .await
    .expect("trigger");
    new_contact(&setup.sim, "Unstored");
    clock.advance(Duration::from_secs(5));
    assert_eq!(engine.poll_due().await.expect("poll"), 1);
    assert!(
        engine
            .store()
            .list_events(setup.instance, 10)
            .await
            .expect("read")
            .is_empty()
    );
    let job = &engine
        .store()
        .poll_jobs(setup.instance)
        .await
        .expect("jobs")[0];
    assert_eq!(
        job.lease_until,
        jiff::Timestamp::UNIX_EPOCH,
        "the job was left leased after its commit failed"
    );

    // The disk recovers: the job is retried within seconds, not after its lease.
    sqlx::query("DROP TRIGGER refuse_events")
        .execute(&mut raw)
        .await
        .expect("drop trigger");
    clock.advance(Duration::from_secs(5));
    assert_eq!(engine.poll_due().await.expect("retry"), 1);
    let events = engine
        .store()
        .list_events(setup.instance, 10)
        .await
        .expect("read");
    assert_eq!(events.len(), 1, "{events:?}");
}

#[tokio::test]
async fn retention_prunes_finished_history_and_keeps_what_waits() {
    let (_receiver, clock, setup) = start(StatusCode::OK).await;
    let engine = engine_with(
        open(&setup.url).await,
        clock.clock(),
        EngineConfig {
            delivery_retention: Duration::from_secs(30 * 86_400),
            event_retention: Duration::from_secs(90 * 86_400),
            ..EngineConfig::default()
        },
    );
    engine.poll_due().await.expect("baseline");
    let store = engine.store().clone();
    let notifications = || async {
        store
            .list_notifications(setup.instance, 100)
            .await
            .expect("read")
    };
    // Enough changes for several notifications, delivered.
    for n in 0..25 {
        new_contact(&setup.sim, &format!("Old{n}"));
    }
    clock.advance(Duration::from_secs(5));
    engine.poll_due().await.expect("poll");
    while engine.dispatch_due().await.expect("dispatch") > 0 {}
    let delivered = notifications().await;
    assert!(delivered.len() > 1 && delivered.iter().all(|n| n.status == "delivered"));
    let first = delivered[0].id.clone();
    assert_eq!(store.list_attempts(&first).await.expect("read").len(), 1);
    let events_before = store
        .list_events(setup.instance, 1000)
        .await
        .expect("read")
        .len();

    // A later change not delivered yet waits, however old it gets.
    let waiting_contact = new_contact(&setup.sim, "Waiting");
    clock.advance(Duration::from_secs(5));
    engine.poll_due().await.expect("poll");
    let waiting = notifications().await;
    let waiting = waiting
        .iter()
        .find(|n| n.status == "pending")
        .expect("a pending notification")
        .id
        .clone();
    let events_before = events_before + 1;
    clock.advance(Duration::from_secs(29 * 86_400));
    assert_eq!(
        engine.prune_due().await.expect("prune").total(),
        0,
        "nothing is old enough yet"
    );

    clock.advance(Duration::from_secs(2 * 86_400));
    let pruned = engine.prune_due().await.expect("prune");
    assert_eq!(pruned.notifications as usize, delivered.len());
    assert_eq!(pruned.attempts as usize, delivered.len());
    assert_eq!(pruned.events, 0, "event metadata is kept longer");
    let left: Vec<_> = notifications().await.into_iter().map(|n| n.id).collect();
    assert_eq!(left, std::slice::from_ref(&waiting));
    assert!(store.list_attempts(&first).await.expect("read").is_empty());
    assert_eq!(
        store
            .list_events(setup.instance, 1000)
            .await
            .expect("read")
            .len(),
        events_before
    );

    clock.advance(Duration::from_secs(60 * 86_400));
    let pruned = engine.prune_due().await.expect("prune");
    assert_eq!(pruned.events as usize, events_before - 1);
    let left = store.list_events(setup.instance, 1000).await.expect("read");
    assert_eq!(left.len(), 1, "the waiting notification's event is kept");
    assert_eq!(left[0].object_id, waiting_contact.to_string());
    assert!(store.notification(&waiting).await.expect("read").is_some());
}

/// A receiver answering `status`, a clock the test moves, and an instance on the simulator.
async fn start(status: StatusCode) -> (Receiver, TestClock, Setup) {
    let receiver = start_receiver(status).await;
    let clock = TestClock::new();
    let setup = setup(&receiver.url, clock.now()).await;
    (receiver, clock, setup)
}

/// Creates `n` contacts and polls (after the baseline): they become notifications.
async fn changes(
    engine: &Engine,
    clock: &TestClock,
    setup: &Setup,
    prefix: &str,
    n: usize,
) -> Vec<i64> {
    engine.poll_due().await.expect("baseline");
    let contacts = (0..n)
        .map(|i| new_contact(&setup.sim, &format!("{prefix}{i}")))
        .collect();
    clock.advance(Duration::from_secs(5));
    engine.poll_due().await.expect("poll");
    contacts
}

/// One new contact polled and delivered, so that the setup's receiver has answered on this
/// node (a receiver new to it takes one delivery at a time, `receivers`): for tests of a
/// receiver that answered, then hangs.
async fn answered_once(engine: &Engine, clock: &TestClock, setup: &Setup) {
    changes(engine, clock, setup, "Warm", 1).await;
    assert!(engine.dispatch_due().await.expect("dispatch") > 0);
    while engine.dispatch_due().await.expect("dispatch") > 0 {}
    assert!(
        statuses(engine, setup.instance)
            .await
            .iter()
            .all(|s| s == "delivered")
    );
}

/// Moves the clock by `step` and runs a delivery round, `rounds` times.
async fn run_for(engine: &Engine, clock: &TestClock, step: Duration, rounds: usize) {
    for _ in 0..rounds {
        clock.advance(step);
        while engine.dispatch_due().await.expect("dispatch") > 0 {}
    }
}

/// Notifications of the instance by status.
async fn statuses(engine: &Engine, instance: InstanceId) -> Vec<String> {
    let mut statuses: Vec<String> = engine
        .store()
        .list_notifications(instance, 100)
        .await
        .expect("read")
        .into_iter()
        .map(|n| n.status)
        .collect();
    statuses.sort();
    statuses
}

#[tokio::test]
async fn a_receiver_down_for_an_hour_gets_everything_when_it_comes_back() {
    let (receiver, clock, setup) = start(StatusCode::SERVICE_UNAVAILABLE).await;
    let engine = engine(
        open(&setup.url).await,
        clock.clock(),
        RetrySchedule::cloud_elements(),
    );
    let contacts = changes(&engine, &clock, &setup, "Down", 25).await;
    while engine.dispatch_due().await.expect("dispatch") > 0 {}

    // An hour of accelerated time with the receiver down: retried, never given up.
    run_for(&engine, &clock, Duration::from_secs(30), 120).await;
    assert!(
        statuses(&engine, setup.instance)
            .await
            .iter()
            .all(|s| s == "pending")
    );
    let tried = receiver.bodies.lock().expect("lock").len();
    assert!(tried > 3, "retried during the hour: {tried} POSTs");

    // Back up: everything arrives within the schedule's next retries (and the breaker's probe).
    *receiver.status.lock().expect("lock") = StatusCode::OK;
    run_for(&engine, &clock, Duration::from_secs(60), 4 * 60).await;
    assert!(
        statuses(&engine, setup.instance)
            .await
            .iter()
            .all(|s| s == "delivered")
    );
    let bodies = receiver.bodies.lock().expect("lock").clone();
    for contact in contacts {
        let id = contact.to_string();
        assert!(
            bodies.iter().any(|b| b["message"]["events"]
                .as_array()
                .is_some_and(|events| events.iter().any(|e| e["objectId"] == id.as_str()))),
            "contact {contact} never arrived"
        );
    }
}

/// The running dispatcher (its loop, which claims as slots free up while POSTs are in flight,
/// not rounds driven by the test): the POSTs in flight never exceed `delivery_concurrency`,
/// the slots do fill, and no notification is sent twice or left out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_dispatcher_fills_its_slots_and_never_exceeds_them() {
    let (receiver, clock, setup) = start(StatusCode::OK).await;
    *receiver.delay.lock().expect("lock") = Duration::from_millis(50);
    let engine = engine_with(
        open(&setup.url).await,
        clock.clock(),
        EngineConfig {
            delivery_concurrency: 3,
            receiver_limits: hubhook_engine::ReceiverLimits {
                concurrency: 100,
                ..Default::default()
            },
            ..EngineConfig::default()
        },
    );
    // 400 changed contacts: 40 notifications of 10 events, stored before the loop starts.
    let contacts = changes(&engine, &clock, &setup, "Slots", 400).await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn({
        let (engine, shutdown) = (engine.clone(), shutdown.clone());
        async move { engine.run(shutdown).await }
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while statuses(&engine, setup.instance)
        .await
        .iter()
        .any(|s| s != "delivered")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the backlog was not delivered: {:?}",
            statuses(&engine, setup.instance).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    running.await.expect("the engine stopped");

    assert_eq!(
        receiver.peak.load(Ordering::SeqCst),
        3,
        "POSTs held at once"
    );
    let bodies = receiver.bodies.lock().expect("lock").clone();
    assert_eq!(bodies.len(), 40, "one POST per notification");
    let mut objects: Vec<String> = bodies
        .iter()
        .flat_map(|b| b["message"]["events"].as_array().expect("events").clone())
        .map(|e| e["objectId"].as_str().expect("objectId").to_string())
        .collect();
    objects.sort();
    let mut expected: Vec<String> = contacts.iter().map(i64::to_string).collect();
    expected.sort();
    assert_eq!(objects, expected, "every contact once");
}

/// POSTs that go unanswered (a receiver that hangs, a firewall that drops packets) give their
/// slot back after a while, so they cannot hold every slot of the node for the whole delivery
/// timeout: here the node's two slots are both taken by POSTs held unanswered, and the rest of
/// the backlog is still delivered while they hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_posts_do_not_keep_their_slots_for_the_whole_timeout() {
    let (receiver, clock, setup) = start(StatusCode::OK).await;
    receiver.hold_next.store(2, Ordering::SeqCst);
    let engine = engine_with(
        open(&setup.url).await,
        clock.clock(),
        slots_config(2, Duration::from_secs(120)),
    );
    // 100 changed contacts: 10 notifications of 10 events.
    changes(&engine, &clock, &setup, "Hang", 100).await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn({
        let (engine, shutdown) = (engine.clone(), shutdown.clone());
        async move { engine.run(shutdown).await }
    });
    // Without the hand-off, nothing more could be sent until the held POSTs end (120 s).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let delivered = statuses(&engine, setup.instance)
            .await
            .iter()
            .filter(|s| *s == "delivered")
            .count();
        if delivered == 8 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{delivered} of the 8 others delivered while two POSTs hang"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        receiver.hold_next.load(Ordering::SeqCst),
        0,
        "two POSTs held"
    );
    // Answered at last, the two held ones are delivered too.
    receiver.release.send_replace(true);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while statuses(&engine, setup.instance)
        .await
        .iter()
        .any(|s| s != "delivered")
    {
        assert!(tokio::time::Instant::now() < deadline, "the held ones");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shutdown.cancel();
    running.await.expect("the engine stopped");
    assert_eq!(receiver.bodies.lock().expect("lock").len(), 10);
}

/// Four slots, POSTs that may hang for two minutes, and receivers that take any number at
/// once: only the organizations' shares of the slots keep one from taking them all.
fn shared_slots_config() -> EngineConfig {
    slots_config(4, Duration::from_secs(120))
}

/// `slots` delivery slots, a delivery timeout of `timeout` (the lease twice that), and
/// receivers that take any number of POSTs at once.
fn slots_config(slots: u32, timeout: Duration) -> EngineConfig {
    EngineConfig {
        delivery_concurrency: slots,
        delivery_timeout: timeout,
        delivery_lease: 2 * timeout,
        receiver_limits: hubhook_engine::ReceiverLimits {
            concurrency: 100,
            ..Default::default()
        },
        ..EngineConfig::default()
    }
}

/// A second organization in the setup's database, with an instance of the same simulator
/// delivering to `callback`.
async fn second_organization(
    engine: &Engine,
    setup: &Setup,
    callback: &str,
    now: jiff::Timestamp,
) -> InstanceId {
    let store = engine.store();
    let (org, user) = store
        .create_organization("globex", [4; 32], [5; 32], now)
        .await
        .expect("org");
    // Only the contacts named `Later`: what the first organization's backlog was made of
    // stays out, whatever the first poll makes of records older than the instance.
    let contacts = "/hubs/crm/contacts?where=lastUpdated>'${gmtDate:yyyy-MM-dd'T'HH:mm:ss'Z'}' \
                    and lastName='Later'";
    let (configuration, secrets) =
        configuration(&setup.sim, callback, "demo-private", Some(contacts));
    store
        .create_instance(NewInstance {
            organization_id: org,
            user_id: user,
            name: "the other organization".into(),
            element_key: "connectwisecrmrest".into(),
            token_hash: [6; 32],
            configuration,
            secrets,
            tags: vec![],
            events_enabled: true,
            resources: vec!["contacts".into()],
            refresh_interval_ms: 3000,
            now,
        })
        .await
        .expect("instance")
        .id
}

/// Waits (up to a minute, so a regression fails instead of hanging) until `done` holds.
async fn eventually<F: std::future::Future<Output = bool>>(what: &str, done: impl Fn() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An organization with a large backlog to a receiver that never answers cannot take every
/// slot while another organization's notifications are due: without the share, its older
/// notifications were claimed first, two seconds' hand-off after two seconds' hand-off, until
/// its hanging POSTs held every slot, and the other's waited for the two-minute timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_to_a_hanging_receiver_leaves_slots_to_another_organization() {
    let (hanging, clock, setup) = start(StatusCode::OK).await;
    let engine = engine_with(open(&setup.url).await, clock.clock(), shared_slots_config());
    // A receiver that answered, then hangs: it takes its whole limit at once.
    answered_once(&engine, &clock, &setup).await;
    hanging.hold_next.store(usize::MAX / 2, Ordering::SeqCst);
    // The first organization: 50 notifications, older than anything of the other, more than
    // the four slots and their sixteen slow POSTs can hold.
    changes(&engine, &clock, &setup, "Backlog", 500).await;
    let healthy = start_receiver(StatusCode::OK).await;
    let other = second_organization(&engine, &setup, &healthy.url, clock.now()).await;
    engine.poll_due().await.expect("the other's baseline");
    let company = setup.sim.sim.ids("company/companies")[0];
    for i in 0..25 {
        let contact = json!({ "firstName": format!("N{i}"), "lastName": "Later", "company": { "id": company } });
        setup
            .sim
            .sim
            .create("company/contacts", contact)
            .expect("contact created");
    }
    clock.advance(Duration::from_secs(5));
    assert_eq!(engine.poll_due().await.expect("poll"), 2, "both instances");
    assert_eq!(statuses(&engine, other).await, ["pending"; 3]);

    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn({
        let (engine, shutdown) = (engine.clone(), shutdown.clone());
        async move { engine.run(shutdown).await }
    });
    let (engine_, instance) = (&engine, setup.instance);
    eventually(
        "the other organization's notifications delivered",
        || async move {
            statuses(engine_, other)
                .await
                .iter()
                .all(|s| s == "delivered")
        },
    )
    .await;
    assert!(
        hanging.in_flight.load(Ordering::SeqCst) > 0,
        "delivered while the first organization's POSTs hang"
    );
    assert!(
        statuses(&engine, setup.instance)
            .await
            .iter()
            .any(|s| s != "delivered"),
        "the backlog was still there"
    );

    // The hanging receiver answers at last: the backlog goes too.
    hanging.release.send_replace(true);
    eventually("the backlog delivered", || async move {
        statuses(engine_, instance)
            .await
            .iter()
            .all(|s| s == "delivered")
    })
    .await;
    shutdown.cancel();
    running.await.expect("the engine stopped");
    assert_eq!(healthy.bodies.lock().expect("lock").len(), 3);
}

/// A receiver that has never answered gets one POST at a time, and one more only once the POST
/// in flight goes slow (unanswered for 2 s): a receiver that hangs from the start holds one
/// slot, not its whole limit, before anything shows that it hangs, so that its organization's
/// other receivers are not kept waiting behind it. Fails if the receiver's limit (4) applies
/// from its first POST: the backlog's POSTs then arrive together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_never_answered_gets_one_post_at_a_time() {
    let (hanging, clock, setup) = start(StatusCode::OK).await;
    hanging.hold_next.store(usize::MAX / 2, Ordering::SeqCst);
    let mut config = slots_config(4, Duration::from_secs(60));
    config.receiver_limits.concurrency = 4;
    let engine = engine_with(open(&setup.url).await, clock.clock(), config);
    // 100 changed contacts: 10 notifications of 10 events.
    changes(&engine, &clock, &setup, "Hang", 100).await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn({
        let (engine, shutdown) = (engine.clone(), shutdown.clone());
        async move { engine.run(shutdown).await }
    });
    let arrivals = &hanging.arrivals;
    eventually("a second POST", || async move {
        arrivals.lock().expect("lock").len() >= 2
    })
    .await;
    let arrivals = arrivals.lock().expect("lock").clone();
    let gap = arrivals[1] - arrivals[0];
    assert!(
        gap >= Duration::from_millis(1500),
        "the second POST came {gap:?} after the first, before the first went slow"
    );
    hanging.release.send_replace(true);
    let (engine_, instance) = (&engine, setup.instance);
    eventually("everything delivered once it answers", || async move {
        let statuses = statuses(engine_, instance).await;
        statuses.len() == 10 && statuses.iter().all(|s| s == "delivered")
    })
    .await;
    shutdown.cancel();
    running.await.expect("the engine stopped");
}

/// The share holds an organization back only while others wait: alone, with a delivery
/// hanging (its share of four slots is then two), its next notifications still take all four.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_organization_still_uses_every_slot() {
    let (receiver, clock, setup) = start(StatusCode::OK).await;
    receiver.hold_next.store(4, Ordering::SeqCst);
    let engine = engine_with(open(&setup.url).await, clock.clock(), shared_slots_config());
    changes(&engine, &clock, &setup, "First", 5).await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn({
        let (engine, shutdown) = (engine.clone(), shutdown.clone());
        async move { engine.run(shutdown).await }
    });
    let (engine_, instance, in_flight) = (&engine, setup.instance, &receiver.in_flight);
    eventually("the first POST held", || async move {
        in_flight.load(Ordering::SeqCst) == 1
    })
    .await;
    // Six more notifications, while the first hangs (the running poller may make them).
    for i in 0..60 {
        new_contact(&setup.sim, &format!("More{i}"));
    }
    clock.advance(Duration::from_secs(5));
    engine.poll_due().await.expect("poll");
    eventually("four POSTs held at once, one per slot", || async move {
        in_flight.load(Ordering::SeqCst) >= 4
    })
    .await;

    receiver.release.send_replace(true);
    eventually("everything delivered", || async move {
        let statuses = statuses(engine_, instance).await;
        statuses.len() == 7 && statuses.iter().all(|s| s == "delivered")
    })
    .await;
    shutdown.cancel();
    running.await.expect("the engine stopped");
}

/// An organization alone on the node whose receiver never answers, with a backlog: its POSTs
/// go slow and give their slots back until the node's allowance of slow POSTs is spent (two
/// slots, so eight), and it holds slots with the next ones. Work-conserving, it took every
/// slot then, and a newcomer's notification waited for a delivery timeout; with slow POSTs in
/// flight it holds at most its share, so the newcomer finds a free slot at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_organization_alone_leaves_a_slot_to_a_newcomer() {
    let (hanging, clock, setup) = start(StatusCode::OK).await;
    let timeout = Duration::from_secs(60);
    let engine = engine_with(
        open(&setup.url).await,
        clock.clock(),
        slots_config(2, timeout),
    );
    // A receiver that answered, then hangs: it takes its whole limit at once.
    answered_once(&engine, &clock, &setup).await;
    hanging.hold_next.store(usize::MAX / 2, Ordering::SeqCst);
    // 30 notifications, more than the two slots and their eight slow POSTs can hold.
    changes(&engine, &clock, &setup, "Hang", 300).await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn({
        let (engine, shutdown) = (engine.clone(), shutdown.clone());
        async move { engine.run(shutdown).await }
    });
    // The node's slow allowance is 4 per slot: past eight POSTs held, the next ones hanging
    // keep their slots.
    let in_flight = &hanging.in_flight;
    eventually(
        "the slow allowance spent, a POST held in a slot",
        || async move { in_flight.load(Ordering::SeqCst) > 2 * 4 },
    )
    .await;

    // The newcomer: one notification, after the hanging organization's whole backlog.
    let healthy = start_receiver(StatusCode::OK).await;
    let newcomer = second_organization(&engine, &setup, &healthy.url, clock.now()).await;
    engine.poll_due().await.expect("the newcomer's baseline");
    let company = setup.sim.sim.ids("company/companies")[0];
    let contact = json!({ "firstName": "New", "lastName": "Later", "company": { "id": company } });
    setup
        .sim
        .sim
        .create("company/contacts", contact)
        .expect("contact created");
    clock.advance(Duration::from_secs(5));
    engine.poll_due().await.expect("poll");
    // Well before the hanging POSTs' timeout, which would free a slot anyway.
    let deadline = tokio::time::Instant::now() + timeout / 3;
    loop {
        let statuses = statuses(&engine, newcomer).await;
        if statuses == ["delivered"] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the newcomer's notification still {statuses:?} while the other's POSTs hang"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        hanging.in_flight.load(Ordering::SeqCst) > 0,
        "delivered while the first organization's POSTs hang"
    );
    assert_eq!(healthy.bodies.lock().expect("lock").len(), 1);

    // The hanging receiver answers at last: the backlog goes too.
    hanging.release.send_replace(true);
    let (engine_, instance) = (&engine, setup.instance);
    eventually("the backlog delivered", || async move {
        statuses(engine_, instance)
            .await
            .iter()
            .all(|s| s == "delivered")
    })
    .await;
    shutdown.cancel();
    running.await.expect("the engine stopped");
}

#[tokio::test]
async fn with_the_queue_policy_nothing_is_tried_until_the_redelivery() {
    let (receiver, clock, setup) = start(StatusCode::SERVICE_UNAVAILABLE).await;
    let engine = engine(
        open(&setup.url).await,
        clock.clock(),
        RetrySchedule::cloud_elements(),
    );
    let org = engine
        .store()
        .instance(setup.instance)
        .await
        .expect("read")
        .expect("instance")
        .organization_id;
    let mut settings = serde_json::Map::new();
    settings.insert("notification.webhook.failure.policy".into(), json!("queue"));
    engine
        .store()
        .update_organization_settings(org, settings, clock.now())
        .await
        .expect("settings");
    changes(&engine, &clock, &setup, "Queued", 25).await;
    while engine.dispatch_due().await.expect("dispatch") > 0 {}
    let first_tries = receiver.bodies.lock().expect("lock").len();
    assert!(first_tries >= 1);

    // An hour later nothing more was tried: the subscription is deactivated, all is queued.
    *receiver.status.lock().expect("lock") = StatusCode::OK;
    run_for(&engine, &clock, Duration::from_secs(60), 60).await;
    assert_eq!(receiver.bodies.lock().expect("lock").len(), first_tries);
    let queued = statuses(&engine, setup.instance).await;
    assert!(queued.iter().all(|s| s == "queued"), "{queued:?}");

    // The redelivery sends everything.
    let ids = engine
        .store()
        .list_notifications(setup.instance, 100)
        .await
        .expect("read")
        .into_iter()
        .map(|n| n.id)
        .collect();
    engine
        .store()
        .redeliver(
            setup.instance,
            ids,
            hubhook_store::Redeliver::Undelivered,
            clock.now(),
        )
        .await
        .expect("redeliver");
    run_for(&engine, &clock, Duration::from_secs(1), 3).await;
    assert!(
        statuses(&engine, setup.instance)
            .await
            .iter()
            .all(|s| s == "delivered")
    );
}

#[tokio::test]
async fn an_ordered_instance_delivers_one_at_a_time_in_storage_order() {
    let (receiver, clock, setup) = start(StatusCode::SERVICE_UNAVAILABLE).await;
    let store = open(&setup.url).await;
    // Turn ordering on the way a PATCH of the instance would store it.
    let mut instance = store
        .instance(setup.instance)
        .await
        .expect("read")
        .expect("instance");
    instance
        .configuration
        .insert("event.notification.ordered".into(), json!("true"));
    let mut raw = <sqlx::SqliteConnection as sqlx::Connection>::connect(&setup.url)
        .await
        .expect("raw connection");
    sqlx::query("UPDATE instances SET configuration = $1, updated_at = updated_at + 1")
        .bind(serde_json::to_string(&instance.configuration).expect("json"))
        .execute(&mut raw)
        .await
        .expect("configured");
    let engine = engine(store, clock.clock(), RetrySchedule::cloud_elements());
    changes(&engine, &clock, &setup, "Ordered", 35).await;

    // The head fails: nothing behind it is sent, whatever is due.
    run_for(&engine, &clock, Duration::from_secs(1), 30).await;
    let tried = receiver.bodies.lock().expect("lock").clone();
    let heads: std::collections::HashSet<String> = tried
        .iter()
        .map(|b| b["message"]["eventId"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(heads.len(), 1, "only the head was tried: {heads:?}");

    // Back up: everything, one at a time, in the order the poll stored it.
    *receiver.status.lock().expect("lock") = StatusCode::OK;
    let before = tried.len();
    run_for(&engine, &clock, Duration::from_secs(2), 120).await;
    let delivered = receiver.bodies.lock().expect("lock")[before..].to_vec();
    assert_eq!(
        delivered.len(),
        4,
        "35 events in 4 notifications, each sent once"
    );
    let firsts: Vec<i64> = delivered
        .iter()
        .map(|b| {
            b["message"]["events"][0]["objectId"]
                .as_str()
                .and_then(|id| id.parse().ok())
                .expect("object id")
        })
        .collect();
    let mut sorted = firsts.clone();
    sorted.sort();
    assert_eq!(firsts, sorted, "delivered out of order");
    assert!(
        statuses(&engine, setup.instance)
            .await
            .iter()
            .all(|s| s == "delivered")
    );
}

/// Changes the instance's configuration as a PATCH would, at `now`.
async fn reconfigure(
    engine: &Engine,
    setup: &Setup,
    callback: &str,
    private_key: &str,
    contacts_url: Option<&str>,
    now: jiff::Timestamp,
) {
    let store = engine.store();
    let row = store
        .instance(setup.instance)
        .await
        .expect("read")
        .expect("instance");
    let (configuration, secrets) = configuration(&setup.sim, callback, private_key, contacts_url);
    store
        .update_instance(
            row.organization_id,
            row.id,
            InstanceUpdate {
                name: row.name,
                configuration,
                secrets,
                tags: row.tags,
                events_enabled: true,
                resources: vec!["contacts".into()],
                refresh_interval_ms: row.refresh_interval_ms,
                now,
                read_version: Some(row.updated_at),
            },
        )
        .await
        .expect("update")
        .expect("instance exists");
}

async fn contacts_health(engine: &Engine, instance: InstanceId) -> hubhook_store::JobHealth {
    engine
        .store()
        .poll_health(instance, engine.clock().now())
        .await
        .expect("health")
        .into_iter()
        .find(|job| job.resource == "contacts")
        .expect("contacts job")
}

async fn event_objects(engine: &Engine, instance: InstanceId) -> Vec<String> {
    let mut ids: Vec<String> = engine
        .store()
        .list_events(instance, 100)
        .await
        .expect("read")
        .into_iter()
        .map(|event| event.object_id)
        .collect();
    ids.sort();
    ids
}

/// The poller keeps each instance's parsed configuration and client between polls; a change
/// must still reach the very next poll, even one stored in the same millisecond as the
/// instance's previous state (the clock here does not move between the creation, the first
/// poll and the first change). The change goes through the store only, as one made by
/// another node would: nothing tells this engine about it.
#[tokio::test]
async fn a_changed_configuration_is_used_by_the_very_next_poll() {
    let receiver = start_receiver(StatusCode::OK).await;
    let clock = TestClock::new();
    let setup = setup(&receiver.url, clock.now()).await;
    let engine = engine(
        open(&setup.url).await,
        clock.clock(),
        RetrySchedule::cloud_elements(),
    );
    assert_eq!(engine.poll_due().await.expect("baseline"), 1);
    assert!(
        contacts_health(&engine, setup.instance)
            .await
            .last_error
            .is_none()
    );

    // New credentials that ConnectWise refuses: the next poll uses them, and fails.
    reconfigure(
        &engine,
        &setup,
        &receiver.url,
        "wrong-private",
        None,
        clock.now(),
    )
    .await;
    new_contact(&setup.sim, "Unseen");
    clock.advance(Duration::from_secs(5));
    assert_eq!(engine.poll_due().await.expect("poll"), 1);
    let health = contacts_health(&engine, setup.instance).await;
    let error = health.last_error.expect("the poll failed");
    assert!(error.contains("401"), "{error}");
    assert!(event_objects(&engine, setup.instance).await.is_empty());

    // The right key again, and a resource url that asks for one first name only: the next
    // poll reads with both, so of the new contacts only the wanted one is an event (the one
    // made while the key was wrong is left out by the new url too).
    let url = "/hubs/crm/contacts?where=lastUpdated>'${gmtDate:yyyy-MM-dd'T'HH:mm:ss'Z'}' \
               and firstName='Wanted'";
    reconfigure(
        &engine,
        &setup,
        &receiver.url,
        "demo-private",
        Some(url),
        clock.now(),
    )
    .await;
    let wanted = new_contact(&setup.sim, "Wanted");
    new_contact(&setup.sim, "Unwanted");
    clock.advance(Duration::from_secs(5));
    assert_eq!(engine.poll_due().await.expect("poll"), 1);
    let health = contacts_health(&engine, setup.instance).await;
    assert!(health.last_error.is_none(), "{:?}", health.last_error);
    assert_eq!(
        event_objects(&engine, setup.instance).await,
        [wanted.to_string()]
    );
}

/// While the version the claim returns is the cached one, a poll reads nothing of its
/// instance: a configuration broken behind the store's back (without moving its version) goes
/// unnoticed, and is noticed as soon as the version moves.
#[tokio::test]
async fn a_poll_reads_its_instance_only_when_its_version_moved() {
    let receiver = start_receiver(StatusCode::OK).await;
    let clock = TestClock::new();
    let setup = setup(&receiver.url, clock.now()).await;
    let engine = engine(
        open(&setup.url).await,
        clock.clock(),
        RetrySchedule::cloud_elements(),
    );
    assert_eq!(engine.poll_due().await.expect("baseline"), 1);

    let mut raw = <sqlx::SqliteConnection as sqlx::Connection>::connect(&setup.url)
        .await
        .expect("raw connection");
    sqlx::query("UPDATE instances SET configuration = '{}' WHERE id = $1")
        .bind(setup.instance.0)
        .execute(&mut raw)
        .await
        .expect("break the configuration");
    let id = new_contact(&setup.sim, "Cached");
    clock.advance(Duration::from_secs(5));
    assert_eq!(engine.poll_due().await.expect("poll"), 1);
    assert!(
        contacts_health(&engine, setup.instance)
            .await
            .last_error
            .is_none()
    );
    assert_eq!(
        event_objects(&engine, setup.instance).await,
        [id.to_string()]
    );

    sqlx::query("UPDATE instances SET updated_at = updated_at + 1 WHERE id = $1")
        .bind(setup.instance.0)
        .execute(&mut raw)
        .await
        .expect("move the version");
    clock.advance(Duration::from_secs(5));
    assert_eq!(engine.poll_due().await.expect("poll"), 1);
    let error = contacts_health(&engine, setup.instance)
        .await
        .last_error
        .expect("the poll failed");
    assert!(error.contains("configuration is invalid"), "{error}");
}
