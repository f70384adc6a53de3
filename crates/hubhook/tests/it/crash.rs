//! Crashes: `kill -9` of a real server process in the middle of a poll or a delivery, then a
//! restart on the same database. Leases are set to an hour here, so work only resumes at once
//! if the restarted node takes its own leases back; waiting for them to expire would fail
//! these tests.

use std::time::Duration;

use connectwise_sim::Fault;
use serde_json::Value;

use crate::app::{Behaviour, is_about};
use crate::processes::{ProcessApp, WAIT};

const HOUR_LEASES: &[(&str, &str)] = &[
    ("HUBHOOK_POLL_LEASE", "3600"),
    ("HUBHOOK_DELIVERY_LEASE", "3600"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_killed_midway_runs_again_at_once_after_a_restart() {
    let mut app = ProcessApp::start(HOUR_LEASES, None).await;
    // ConnectWise holds the next contacts query for ten minutes: the next poll is stuck in
    // flight, with its job leased for an hour.
    app.sim.sim.inject_faults(Fault {
        latency_ms: Some(600_000),
        path_contains: Some("company/contacts".into()),
        count: Some(1),
        ..Fault::default()
    });
    let changed = app.contact(1);
    app.change(changed);
    wait_until_the_fault_is_used(&app).await;
    app.server.kill9();

    app.server.restart();
    app.receiver
        .wait_for_event(WAIT, |e| is_about(e, changed))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_killed_midway_is_made_again_at_once_after_a_restart() {
    let mut app = ProcessApp::start(HOUR_LEASES, None).await;
    app.receiver.set_behaviour(Behaviour::Hang);
    let changed = app.contact(2);
    app.change(changed);
    let held = app
        .receiver
        .wait_for_request(WAIT, |r| carries(r, changed))
        .await;
    app.server.kill9();

    app.receiver.set_behaviour(Behaviour::Accept);
    app.server.restart();
    let (_, delivered) = app
        .receiver
        .wait_for_event(WAIT, |e| is_about(e, changed))
        .await;
    assert_eq!(
        delivered.header("Elements-Webhook-Id"),
        held.header("Elements-Webhook-Id"),
        "the same notification, delivered again"
    );
}

/// Whether a callback carries an event for this contact.
fn carries(received: &crate::app::Received, contact: i64) -> bool {
    let body: Value = serde_json::from_slice(&received.body).unwrap_or_default();
    body["message"]["events"]
        .as_array()
        .is_some_and(|events| events.iter().any(|e| is_about(e, contact)))
}

/// Waits until the one-shot fault injected in the simulator has been applied to a request,
/// i.e. a poll is now held by it.
async fn wait_until_the_fault_is_used(app: &ProcessApp) {
    let url = format!("http://{}/__sim/faults", app.sim.addr);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let faults: Value = app
            .http
            .get(&url)
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("JSON");
        // A used-up fault is removed from the list.
        let active = faults["faults"].as_array().map_or(0, Vec::len);
        if active == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no contacts query reached the simulator: {faults}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
