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

/// A poll of many pages is killed after it committed some of them; the restarted node
/// resumes from the checkpoint, and every change arrives under one event id, none missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_killed_between_pages_resumes_from_its_checkpoint() {
    let mut app = ProcessApp::start(HOUR_LEASES, None).await;
    // A second instance reading contacts five at a time, polled only when asked.
    let mut body = crate::app::documented_body(&app.sim.base_url(), &app.receiver.url);
    let configuration = &mut body["configuration"];
    configuration["event.poller.refresh_interval"] = serde_json::json!("60");
    configuration["event.poller.configuration"]["contacts"]["pageSize"] = serde_json::json!(5);
    let created: Value = app
        .http
        .post(app.server.api("/instances"))
        .header("Authorization", &app.auth)
        .json(&body)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    let instance = hubhook_core::InstanceId(created["id"].as_i64().expect("id"));
    let store = hubhook_store::Store::open(
        &app.database_url,
        hubhook_store::MasterKey::parse(crate::processes::MASTER_KEY).expect("key"),
    )
    .await
    .expect("the server's database opens beside it");
    let job = |store: hubhook_store::Store| async move {
        store.poll_jobs(instance).await.expect("jobs").remove(0)
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    while job(store.clone()).await.cursor.is_none() {
        assert!(tokio::time::Instant::now() < deadline, "no baseline");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Every contact changes; each page of the next poll takes a second to come back.
    let touched = app
        .sim
        .sim
        .mass_update("company/contacts", 20)
        .expect("touched");
    let ids: Vec<i64> = serde_json::from_value(touched["ids"].clone()).expect("ids");
    app.sim.sim.inject_faults(Fault {
        latency_ms: Some(1000),
        path_contains: Some("company/contacts".into()),
        ..Fault::default()
    });
    let poll = app
        .http
        .post(app.server.api(&format!("/instances/{}/poll", instance.0)))
        .header("Authorization", &app.auth)
        .send()
        .await
        .expect("sent");
    assert_eq!(poll.status(), 202);
    while job(store.clone()).await.checkpoint.is_none() {
        assert!(tokio::time::Instant::now() < deadline, "no page committed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.server.kill9();
    let checkpoint = job(store.clone()).await.checkpoint;
    assert!(checkpoint.is_some(), "killed after a page was committed");

    app.sim.sim.clear_faults();
    app.server.restart();
    let of_instance = |e: &Value, r: &crate::app::Received| {
        r.json()["message"]["instanceId"] == instance.0 && e["eventType"] == "UPDATED"
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut event_ids: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
            Default::default();
        for (event, received) in app.receiver.events() {
            if of_instance(&event, &received) {
                event_ids
                    .entry(event["objectId"].as_str().unwrap_or("").to_string())
                    .or_default()
                    .insert(event["id"].as_str().unwrap_or("").to_string());
            }
        }
        assert!(
            event_ids.values().all(|ids| ids.len() == 1),
            "an object announced under two event ids: {event_ids:?}"
        );
        if ids.iter().all(|id| event_ids.contains_key(&id.to_string())) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "missing changes after the restart: got {:?} of {ids:?}",
            event_ids.keys()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = job(store.clone()).await;
    assert!(after.checkpoint.is_none(), "the resumed poll finished");
    store.close().await;
}
