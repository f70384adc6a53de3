//! Reliability under `kill -9`: a real server process is killed at random moments while it
//! polls and delivers thousands of events, and restarted on the same database each time.
//! Afterwards every event has been delivered at least once, always under the same event id,
//! and every POST the receiver saw has its row in the attempt history (rows are written
//! before the POST leaves). Bounded to well under 90 s.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::processes::ProcessApp;

const KILLS: usize = 12;
/// Contacts created before each kill: 12 × 1700 = 20,400 events in all, the 20,000.
const BATCH: usize = 1700;
/// Time allowed for everything to arrive after the last restart.
const DRAIN: Duration = Duration::from_secs(60);

/// A small deterministic generator for the kill moments; the seed is printed so that a
/// failing run can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

/// Asks for a poll now. The answer is not needed: the server may be starting, and the
/// instance polls on its own interval anyway.
async fn poll_now(app: &ProcessApp, instance: i64) {
    let _ = app
        .http
        .post(app.server.api(&format!("/instances/{instance}/poll")))
        .header("Authorization", &app.auth)
        .send()
        .await;
}

/// A platform API GET on the process, as JSON.
async fn get(app: &ProcessApp, path: &str) -> Value {
    app.http
        .get(app.server.api(path))
        .header("Authorization", &app.auth)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_loses_nothing_and_never_renames_an_event() {
    let mut app = ProcessApp::start(
        &[("HUBHOOK_RETRY_SCHEDULE", "1s,1s,1s,1s,1s,1s,1s,1s,1s")],
        None,
    )
    .await;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7);
    println!("kill storm: seed {seed}");
    let mut random = Lcg(seed);
    let instances = get(&app, "/instances").await;
    let instance = instances[0]["id"].as_i64().expect("instance id");
    let company = app.sim.sim.ids("company/companies")[0];
    let started = Instant::now();
    let mut created = HashSet::new();
    for round in 0..KILLS {
        for n in 0..BATCH {
            let contact = app
                .sim
                .sim
                .create(
                    "company/contacts",
                    json!({ "firstName": format!("Storm{round}x{n}"), "lastName": "Kill", "company": { "id": company } }),
                )
                .expect("contact created");
            created.insert(contact["id"].as_i64().expect("id").to_string());
        }
        poll_now(&app, instance).await;
        tokio::time::sleep(Duration::from_millis(100 + random.next(900))).await;
        app.server.kill9();
        app.server.restart();
    }
    poll_now(&app, instance).await;

    // Everything arrives.
    let deadline = tokio::time::Instant::now() + DRAIN;
    loop {
        let delivered: HashSet<String> = app
            .receiver
            .events()
            .into_iter()
            .filter_map(|(e, _)| e["objectId"].as_str().map(str::to_owned))
            .collect();
        let missing = created.difference(&delivered).count();
        if missing == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{missing} of {} events never arrived",
            created.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Never under two event ids.
    let mut ids_by_object: HashMap<String, HashSet<String>> = HashMap::new();
    for (event, _) in app.receiver.events() {
        let object = event["objectId"].as_str().unwrap_or_default().to_owned();
        if created.contains(&object) {
            ids_by_object
                .entry(object)
                .or_default()
                .insert(event["id"].as_str().expect("event id").to_owned());
        }
    }
    let renamed: Vec<_> = ids_by_object
        .iter()
        .filter(|(_, ids)| ids.len() > 1)
        .collect();
    assert!(
        renamed.is_empty(),
        "events delivered under two ids: {renamed:?}"
    );

    // Every POST the receiver saw has its attempt row.
    let mut posts: HashMap<String, usize> = HashMap::new();
    for request in app.receiver.received() {
        *posts
            .entry(request.header("webhook-id").expect("webhook-id").to_owned())
            .or_default() += 1;
    }
    let total_posts: usize = posts.values().sum();
    for (id, seen) in &posts {
        let attempts = get(&app, &format!("/notifications/{id}/attempts")).await;
        let rows = attempts.as_array().expect("attempts").len();
        assert!(
            rows >= *seen,
            "notification {id}: {seen} POSTs seen, {rows} attempt rows: {attempts}"
        );
    }
    println!(
        "kill storm: {KILLS} kills, {} events delivered in {} POSTs ({} notifications), {:.1} s",
        created.len(),
        total_posts,
        posts.len(),
        started.elapsed().as_secs_f64()
    );
}
