//! The poller's second stage, end to end against the simulator: deleted records (hard deletes
//! through reconciliation, soft deletes, merged companies), mass-delete protection, what
//! changed in an update, the first-run modes, and per-site throttling.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use connectwise_sim::Fault;
use reqwest::Method;
use serde_json::{Value, json};

use crate::app::{Receiver, TestApp, is_about, spawn_app, spawn_app_configured, test_simulator};

const WAIT: Duration = Duration::from_secs(30);

/// The documented body with the contacts block adjusted by `adjust`, and instance-level
/// settings from `instance`.
fn body_with(app: &TestApp, contacts: Value, instance: Value) -> Value {
    let mut body = app.documented_body();
    let configuration = body["configuration"].as_object_mut().expect("object");
    let block = configuration["event.poller.configuration"]["contacts"]
        .as_object_mut()
        .expect("contacts block");
    for (key, value) in contacts.as_object().expect("object") {
        block.insert(key.clone(), value.clone());
    }
    for (key, value) in instance.as_object().expect("object") {
        configuration.insert(key.clone(), value.clone());
    }
    body
}

/// Creates the instance and waits for its baseline; returns its id.
async fn create(app: &TestApp, body: &Value) -> i64 {
    let response = app.create_instance(body).await;
    let status = response.status();
    let instance: Value = response.json().await.expect("json");
    assert_eq!(status, 200, "{instance}");
    let id = instance["id"].as_i64().expect("id");
    app.wait_for_baseline(id).await;
    id
}

async fn connectwise_ok(app: &TestApp, method: Method, path: &str, body: Option<Value>) {
    let mut request = app.connectwise(method, path);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("sent");
    let status = response.status();
    assert!(
        status.is_success(),
        "{path}: {status} {}",
        response.text().await.unwrap_or_default()
    );
}

async fn health(app: &TestApp, instance: i64) -> Value {
    let (status, body) = app.get(&format!("/instances/{instance}/health")).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Waits until the instance's health for `resource` satisfies `done`; returns it.
async fn wait_for_health(
    app: &TestApp,
    instance: i64,
    resource: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let body = health(app, instance).await;
        let found = body["resources"]
            .as_array()
            .and_then(|all| all.iter().find(|r| r["resource"] == resource))
            .cloned()
            .unwrap_or(Value::Null);
        if done(&found) {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "health never matched: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn events_of(receiver: &Receiver, event_type: &str) -> Vec<Value> {
    receiver
        .events()
        .into_iter()
        .map(|(event, _)| event)
        .filter(|event| event["eventType"] == event_type)
        .collect()
}

/// The record a delivered event's notification carried for `object_id`.
fn raw_record(request: &crate::app::Received, object_id: i64) -> Value {
    let body = request.json();
    let object_type = body["message"]["raw"]["objectType"]
        .as_str()
        .expect("objectType")
        .to_string();
    body["message"]["raw"][object_type]
        .as_array()
        .expect("records")
        .iter()
        .find(|r| r["id"] == object_id)
        .cloned()
        .expect("the record is in raw")
}

#[tokio::test]
async fn a_hard_delete_is_found_by_reconciliation_with_the_last_stored_record() {
    let app = spawn_app().await;
    // Reconcile every 1.2 s (0.02 minutes); the server's floor is 1 s.
    let body = body_with(&app, json!({"reconcileInterval": "0.02"}), json!({}));
    let instance = create(&app, &body).await;
    let id = app.sim.sim.ids("company/contacts")[3];
    let before = app.sim.sim.get("company/contacts", id).expect("exists");
    connectwise_ok(
        &app,
        Method::DELETE,
        &format!("company/contacts/{id}"),
        None,
    )
    .await;

    let (event, request) = app
        .receiver
        .wait_for_event(WAIT, |e| e["eventType"] == "DELETED" && is_about(e, id))
        .await;
    assert_eq!(event["objectType"], "contacts");
    let record = raw_record(&request, id);
    assert_eq!(record["firstName"], before["firstName"], "{record}");
    let health = wait_for_health(&app, instance, "contacts", |r| {
        r["lastReconciled"].is_string()
    })
    .await;
    assert!(health["nextReconcile"].is_string(), "{health}");
    // Announced once: later reconciliations do not repeat it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let deleted: Vec<Value> = events_of(&app.receiver, "DELETED");
    assert_eq!(deleted.len(), 1, "{deleted:?}");
}

#[tokio::test]
async fn soft_deleted_and_merged_companies_become_deleted_events() {
    let app = spawn_app().await;
    let mut body = body_with(&app, json!({}), json!({}));
    let contacts = body["configuration"]["event.poller.configuration"]["contacts"].clone();
    let mut organizations = contacts.clone();
    organizations["url"] =
        json!("/hubs/crm/organizations?where=lastUpdated>'${gmtDate:yyyy-MM-dd'T'HH:mm:ss'Z'}'");
    organizations["reconcileInterval"] = json!("0.02");
    body["configuration"]["event.poller.configuration"] = json!({ "organizations": organizations });
    let instance = create(&app, &body).await;
    let ids = app.sim.sim.ids("company/companies");
    let (soft, merged, into) = (ids[4], ids[5], ids[6]);

    // Deleting a company soft-deletes it (deletedFlag) and moves lastUpdated: the next poll
    // sees it, as DELETED and not UPDATED.
    connectwise_ok(
        &app,
        Method::DELETE,
        &format!("company/companies/{soft}"),
        None,
    )
    .await;
    app.poll_now(instance).await;
    app.receiver
        .wait_for_event(WAIT, |e| e["eventType"] == "DELETED" && is_about(e, soft))
        .await;

    // A merge sets deletedFlag without moving lastUpdated: only reconciliation sees it.
    app.sim.sim.merge_companies(merged, into).expect("merged");
    app.receiver
        .wait_for_event(WAIT, |e| e["eventType"] == "DELETED" && is_about(e, merged))
        .await;
    let updated_deleted: Vec<Value> = events_of(&app.receiver, "UPDATED")
        .into_iter()
        .filter(|e| is_about(e, soft) || is_about(e, merged))
        .collect();
    assert!(
        updated_deleted.is_empty(),
        "deleted companies announced as updated: {updated_deleted:?}"
    );
    let deleted = events_of(&app.receiver, "DELETED");
    assert_eq!(deleted.len(), 2, "each deletion once: {deleted:?}");
}

/// Deletes the first `n` contacts in the simulator; returns their ids.
async fn delete_contacts(app: &TestApp, n: usize) -> Vec<i64> {
    let ids: Vec<i64> = app.sim.sim.ids("company/contacts")[..n].to_vec();
    for id in &ids {
        connectwise_ok(app, Method::DELETE, &format!("company/contacts/{id}"), None).await;
    }
    ids
}

async fn decide(app: &TestApp, instance: i64, action: &str) -> (u16, Value) {
    let response = app
        .http
        .post(app.api(&format!("/instances/{instance}/mass-deletes/contacts")))
        .header("Authorization", app.auth())
        .json(&json!({ "action": action }))
        .send()
        .await
        .expect("sent");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_mass_delete_is_held_until_confirmed() {
    let app = spawn_app().await;
    let body = body_with(&app, json!({"reconcileInterval": "0.02"}), json!({}));
    let instance = create(&app, &body).await;
    // Nothing is held: a decision has nothing to act on.
    let (status, refused) = decide(&app, instance, "confirm").await;
    assert_eq!(status, 409, "{refused}");

    // 12 of 20 vanish: far beyond the default 20 %.
    let gone = delete_contacts(&app, 12).await;
    let held = wait_for_health(&app, instance, "contacts", |r| {
        r["massDeleteHeld"].is_number()
    })
    .await;
    assert_eq!(held["massDeleteHeld"], 12, "{held}");
    assert_eq!(held["status"], "warning", "{held}");
    let metrics = metrics_text(&app).await;
    assert!(
        metrics.contains("hubhook_poll_jobs_in_trouble{state=\"mass_delete_held\"} 1"),
        "{metrics}"
    );
    // Held: a few more reconciliations pass without announcing anything.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(events_of(&app.receiver, "DELETED").is_empty());

    let (status, answer) = decide(&app, instance, "confirm").await;
    assert_eq!(status, 200, "{answer}");
    for id in &gone {
        app.receiver
            .wait_for_event(WAIT, |e| e["eventType"] == "DELETED" && is_about(e, *id))
            .await;
    }
    let cleared = wait_for_health(&app, instance, "contacts", |r| {
        r["massDeleteHeld"].is_null()
    })
    .await;
    assert_eq!(cleared["status"], "ok", "{cleared}");
}

#[tokio::test]
async fn a_dismissed_mass_delete_is_forgotten_without_events() {
    let app = spawn_app().await;
    let body = body_with(&app, json!({"reconcileInterval": "0.02"}), json!({}));
    let instance = create(&app, &body).await;
    let (status, refused) = decide(&app, instance, "shred").await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused.to_string().contains("action"), "{refused}");

    delete_contacts(&app, 12).await;
    wait_for_health(&app, instance, "contacts", |r| r["massDeleteHeld"] == 12).await;
    let (status, answer) = decide(&app, instance, "dismiss").await;
    assert_eq!(status, 200, "{answer}");
    wait_for_health(&app, instance, "contacts", |r| {
        r["massDeleteHeld"].is_null() && r["status"] == "ok"
    })
    .await;
    // Reconciliations go on, and the dismissed records never come back as events.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(events_of(&app.receiver, "DELETED").is_empty());
    // A later single delete is announced as usual.
    let last = app.sim.sim.ids("company/contacts")[0];
    connectwise_ok(
        &app,
        Method::DELETE,
        &format!("company/contacts/{last}"),
        None,
    )
    .await;
    app.receiver
        .wait_for_event(WAIT, |e| e["eventType"] == "DELETED" && is_about(e, last))
        .await;
}

#[tokio::test]
async fn updates_say_what_changed_and_bookkeeping_only_updates_are_marked() {
    let app = spawn_app().await;
    let body = body_with(&app, json!({"includePrevious": true}), json!({}));
    let instance = create(&app, &body).await;
    let id = app.sim.sim.ids("company/contacts")[2];
    let old_title = app.sim.sim.get("company/contacts", id).expect("exists")["title"].clone();
    connectwise_ok(
        &app,
        Method::PATCH,
        &format!("company/contacts/{id}"),
        Some(json!([{"op": "replace", "path": "title", "value": "Chief Tester"}])),
    )
    .await;
    app.poll_now(instance).await;
    let (event, _) = app
        .receiver
        .wait_for_event(WAIT, |e| e["eventType"] == "UPDATED" && is_about(e, id))
        .await;
    assert_eq!(event["changedFields"], json!(["title"]), "{event}");
    let previous = event["previous"].as_object().expect("previous");
    assert_eq!(previous.len(), 1, "{event}");
    assert_eq!(previous["title"], old_title, "{event}");
    assert!(event["id"].is_string(), "{event}");

    // Only lastUpdated/updatedBy moved: an UPDATED with no changed fields.
    let touched = app
        .sim
        .sim
        .mass_update("company/contacts", 1)
        .expect("touched");
    let touched = touched["ids"][0].as_i64().expect("id");
    app.poll_now(instance).await;
    let (event, _) = app
        .receiver
        .wait_for_event(WAIT, |e| {
            e["eventType"] == "UPDATED" && is_about(e, touched) && e["changedFields"] == json!([])
        })
        .await;
    assert_eq!(event["previous"], json!({}), "{event}");
}

#[tokio::test]
async fn bookkeeping_only_updates_can_be_suppressed_and_tracking_turned_off() {
    let app = spawn_app().await;
    let body = body_with(
        &app,
        json!({"ignoreBookkeepingOnlyUpdates": true, "trackChanges": true}),
        json!({}),
    );
    let instance = create(&app, &body).await;
    let ids = app.sim.sim.ids("company/contacts");
    let touched = app
        .sim
        .sim
        .mass_update("company/contacts", 3)
        .expect("touched");
    assert_eq!(touched["updated"], 3);
    // A real change after the touches, so that its event proves the touches were polled.
    let real = ids[10];
    connectwise_ok(
        &app,
        Method::PATCH,
        &format!("company/contacts/{real}"),
        Some(json!([{"op": "replace", "path": "title", "value": "Real change"}])),
    )
    .await;
    app.poll_now(instance).await;
    let (event, _) = app
        .receiver
        .wait_for_event(WAIT, |e| is_about(e, real))
        .await;
    assert_eq!(event["changedFields"], json!(["title"]));
    let updated = events_of(&app.receiver, "UPDATED");
    assert_eq!(
        updated.len(),
        1,
        "touch-only updates were sent: {updated:?}"
    );

    // With trackChanges off, an update carries no changedFields at all.
    let app = spawn_app().await;
    let body = body_with(&app, json!({"trackChanges": false}), json!({}));
    let instance = create(&app, &body).await;
    let id = app.sim.sim.ids("company/contacts")[1];
    connectwise_ok(
        &app,
        Method::PATCH,
        &format!("company/contacts/{id}"),
        Some(json!([{"op": "replace", "path": "title", "value": "Untracked"}])),
    )
    .await;
    app.poll_now(instance).await;
    let (event, _) = app.receiver.wait_for_event(WAIT, |e| is_about(e, id)).await;
    assert!(event.get("changedFields").is_none(), "{event}");
}

#[tokio::test]
async fn first_run_all_announces_every_record_once_as_created() {
    let app = spawn_app().await;
    let body = body_with(&app, json!({}), json!({"event.poller.firstRun": "all"}));
    let instance = create(&app, &body).await;
    let all: BTreeSet<String> = app
        .sim
        .sim
        .ids("company/contacts")
        .iter()
        .map(i64::to_string)
        .collect();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let created: BTreeSet<String> = events_of(&app.receiver, "CREATED")
            .iter()
            .filter_map(|e| e["objectId"].as_str().map(String::from))
            .collect();
        if created == all {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "CREATED for {created:?}, expected {all:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Later polls do not repeat them.
    app.poll_now(instance).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut per_object: BTreeMap<String, usize> = BTreeMap::new();
    for event in events_of(&app.receiver, "CREATED") {
        *per_object
            .entry(event["objectId"].as_str().unwrap_or("").to_string())
            .or_default() += 1;
    }
    assert!(per_object.values().all(|n| *n == 1), "{per_object:?}");
}

#[tokio::test]
async fn first_run_since_announces_changes_made_since_then_and_changes_announces_none() {
    let app = spawn_app().await;
    let ids = app.sim.sim.ids("company/contacts");
    // Two contacts change before the instance exists, after the chosen moment.
    let since = app.sim.sim.now();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for id in &ids[..2] {
        connectwise_ok(
            &app,
            Method::PATCH,
            &format!("company/contacts/{id}"),
            Some(json!([{"op": "replace", "path": "title", "value": "Before the instance"}])),
        )
        .await;
    }
    let body = body_with(
        &app,
        json!({}),
        json!({"event.poller.firstRun": format!("since:{since}")}),
    );
    create(&app, &body).await;
    for id in &ids[..2] {
        app.receiver
            .wait_for_event(WAIT, |e| is_about(e, *id))
            .await;
    }
    let announced: BTreeSet<String> = app
        .receiver
        .events()
        .iter()
        .filter_map(|(e, _)| e["objectId"].as_str().map(String::from))
        .collect();
    let expected: BTreeSet<String> = ids[..2].iter().map(i64::to_string).collect();
    assert_eq!(announced, expected, "only the changes since {since}");

    // The default (`changes`) announces nothing of what came before the instance (more than
    // the one second of slack a baseline allows for clock estimates; see baseline_since).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let quiet = Receiver::start().await;
    let mut body = body.clone();
    body["configuration"]["event.notification.callback.url"] = json!(quiet.url);
    body["configuration"]
        .as_object_mut()
        .expect("object")
        .remove("event.poller.firstRun");
    create(&app, &body).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(quiet.events().is_empty(), "{:?}", quiet.events());
}

#[tokio::test]
async fn bad_poller_settings_are_refused_with_the_field_named() {
    let app = spawn_app().await;
    for (contacts, instance, field) in [
        (
            json!({"reconcileInterval": "soon"}),
            json!({}),
            "reconcileInterval",
        ),
        (json!({"trackChanges": "maybe"}), json!({}), "trackChanges"),
        (json!({"includePrevious": 3}), json!({}), "includePrevious"),
        (
            json!({"massDeleteThreshold": "120%"}),
            json!({}),
            "massDeleteThreshold",
        ),
        (
            json!({}),
            json!({"event.poller.firstRun": "yesterday"}),
            "event.poller.firstRun",
        ),
    ] {
        let response = app
            .create_instance(&body_with(&app, contacts, instance))
            .await;
        let status = response.status();
        let text = response.text().await.expect("body");
        assert_eq!(status, 400, "{field}: {text}");
        assert!(text.contains(field), "{field} not named: {text}");
    }
    let (status, list) = app.get("/instances").await;
    assert_eq!(status, 200);
    assert_eq!(list, json!([]), "nothing stored on refusal");

    // The same checks on PATCH, and the stored configuration stays as it was.
    let instance = create(&app, &body_with(&app, json!({}), json!({}))).await;
    let (_, before) = app.get(&format!("/instances/{instance}")).await;
    let mut bad_block =
        app.documented_body()["configuration"]["event.poller.configuration"].clone();
    bad_block["contacts"]["massDeleteThreshold"] = json!("lots");
    for (configuration, field) in [
        (
            json!({"event.poller.firstRun": "yesterday"}),
            "event.poller.firstRun",
        ),
        (
            json!({"event.poller.configuration": bad_block}),
            "massDeleteThreshold",
        ),
    ] {
        let response = app
            .http
            .patch(app.api(&format!("/instances/{instance}")))
            .header("Authorization", app.auth())
            .json(&json!({ "configuration": configuration }))
            .send()
            .await
            .expect("sent");
        let status = response.status();
        let text = response.text().await.expect("body");
        assert_eq!(status, 400, "{field}: {text}");
        assert!(text.contains(field), "{field} not named: {text}");
    }
    let (_, after) = app.get(&format!("/instances/{instance}")).await;
    assert_eq!(before, after);
}

#[tokio::test]
async fn records_without_a_readable_date_are_counted_and_never_stop_a_poll() {
    let app = spawn_app().await;
    let mut body = body_with(&app, json!({}), json!({}));
    let dates =
        &mut body["configuration"]["event.poller.configuration"]["contacts"]["datesConfiguration"];
    dates["updatedDateField"] = json!("_info.noSuchDate");
    // Creation's trial read would refuse this configuration (its first record has no such
    // date); a ConnectWise hiccup at that moment lets it through, as it lets through an instance
    // whose first records are fine and whose later ones are not.
    app.sim.sim.inject_faults(Fault {
        status: Some(503),
        count: Some(1),
        path_contains: Some("company/contacts".into()),
        ..Fault::default()
    });
    let response = app.create_instance(&body).await;
    assert_eq!(response.status(), 200);
    let instance = response.json::<Value>().await.expect("json")["id"]
        .as_i64()
        .expect("id");
    // The poll ends as a success that read 20 records and could use none of them.
    let health = wait_for_health(&app, instance, "contacts", |r| {
        r["recordProblems"].as_u64().is_some_and(|n| n > 0) && r["lastSuccess"].is_string()
    })
    .await;
    assert_eq!(health["recordProblems"], 20, "{health}");
    assert!(events_of(&app.receiver, "CREATED").is_empty());
    assert_eq!(health["status"], "warning", "{health}");
    assert!(
        health["lastError"].is_null(),
        "the poll itself succeeded: {health}"
    );
    assert!(
        health["recordProblem"]
            .as_str()
            .is_some_and(|p| p.contains("noSuchDate")),
        "{health}"
    );
}

#[tokio::test]
async fn a_throttled_site_pauses_its_own_polls_only() {
    // One poll at a time on the node: a site that waited out a 429 inside its poll would
    // hold the only slot.
    let app = spawn_app_configured(Receiver::start().await, |config| {
        config.poll_concurrency = 1;
    })
    .await;
    let other_site = test_simulator().await;
    let mut throttled_body = body_with(&app, json!({}), json!({}));
    let block = throttled_body["configuration"]["event.poller.configuration"]["contacts"].clone();
    // Three jobs on the throttled site.
    throttled_body["configuration"]["event.poller.configuration"] = json!({
        "contacts": block,
        "contacts-a": block,
        "contacts-b": block,
    });
    let throttled = create(&app, &throttled_body).await;
    let mut other_body = body_with(&app, json!({}), json!({}));
    other_body["configuration"]["baseUrl"] = json!(other_site.base_url());
    let other = create(&app, &other_body).await;

    app.sim.sim.inject_faults(Fault {
        status: Some(429),
        retry_after: Some(60),
        ..Fault::default()
    });
    app.poll_now(throttled).await;
    // Wait until the throttled site has answered a 429 (one of its jobs fails on it).
    let deadline = tokio::time::Instant::now() + WAIT;
    while health(&app, throttled).await["status"] != "failing" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no poll met the 429"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let id = other_site.sim.ids("company/contacts")[0];
    other_site
        .sim
        .patch(
            "company/contacts",
            id,
            json!([{"op": "replace", "path": "title", "value": "Elsewhere"}]),
        )
        .expect("patched");
    app.poll_now(other).await;
    app.poll_now(throttled).await;
    app.receiver.wait_for_event(WAIT, |e| is_about(e, id)).await;
    // The throttled site was asked once, then left alone for its Retry-After.
    let stats = app.sim.sim.stats();
    assert_eq!(stats["byStatus"]["429"], 1, "{stats}");
    // The failing job shows in /metrics too.
    let metrics = metrics_text(&app).await;
    assert!(
        metrics.contains("hubhook_poll_jobs_in_trouble{state=\"failing\"} 1"),
        "{metrics}"
    );
}

async fn metrics_text(app: &TestApp) -> String {
    app.http
        .get(format!("{}/metrics", app.server().url()))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_longer_than_its_lease_keeps_it_and_is_not_run_twice() {
    // Leases of 3 s on two nodes sharing the database.
    let app = spawn_app_configured(Receiver::start().await, |config| config.poll_lease = 3).await;
    let mut second = app.config.clone();
    second.node_id = Some("test-node-2".into());
    let second = hubhook::server::start(&second)
        .await
        .expect("second node starts");
    let body = body_with(
        &app,
        json!({"pageSize": 5}),
        json!({"event.poller.refresh_interval": "60"}),
    );
    let instance = create(&app, &body).await;
    let touched = app
        .sim
        .sim
        .mass_update("company/contacts", 20)
        .expect("touched");
    let ids: Vec<i64> = serde_json::from_value(touched["ids"].clone()).expect("ids");
    // Five pages of 1.5 s: the poll runs about 7.5 s, two and a half leases.
    app.sim.sim.inject_faults(Fault {
        latency_ms: Some(1500),
        path_contains: Some("company/contacts".into()),
        ..Fault::default()
    });
    app.poll_now(instance).await;

    // Watch the job's lease: renewed (never shortened) from the first sighting until the
    // poll ends, well past its first 3 s.
    let store = app.server().store();
    let started = tokio::time::Instant::now();
    let mut first_seen: Option<tokio::time::Instant> = None;
    let mut last_until = jiff::Timestamp::UNIX_EPOCH;
    let held_for = loop {
        let job = store
            .poll_jobs(hubhook_core::InstanceId(instance))
            .await
            .expect("jobs")
            .remove(0);
        let leased = job.lease_until > jiff::Timestamp::UNIX_EPOCH;
        match (first_seen, leased) {
            (None, true) => first_seen = Some(tokio::time::Instant::now()),
            (Some(since), false) => break since.elapsed(),
            _ => {}
        }
        if leased {
            assert!(job.lease_until >= last_until, "a lease moved back");
            last_until = job.lease_until;
        }
        assert!(started.elapsed() < WAIT, "the poll never ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        held_for > Duration::from_secs(4),
        "the poll ended after {held_for:?}; it should outlast its 3 s lease"
    );
    // Neither node lost a claim: the other node never took the running poll over.
    let metrics = metrics_text(&app).await;
    assert!(!metrics.contains("lease_lost"), "{metrics}");
    assert!(
        metrics.contains("hubhook_polls_total{outcome=\"success\"}"),
        "{metrics}"
    );
    for id in &ids {
        app.receiver
            .wait_for_event(WAIT, |e| e["eventType"] == "UPDATED" && is_about(e, *id))
            .await;
    }
    let mut per_object: BTreeMap<String, usize> = BTreeMap::new();
    for event in events_of(&app.receiver, "UPDATED") {
        *per_object
            .entry(event["objectId"].as_str().unwrap_or("").to_string())
            .or_default() += 1;
    }
    assert!(per_object.values().all(|n| *n == 1), "{per_object:?}");
    second.stop().await.expect("second node stops");
}

/// A server with the documented instance polled only hourly, its baseline done.
async fn hourly_instance() -> (TestApp, i64) {
    let app = spawn_app().await;
    let body = body_with(
        &app,
        json!({}),
        json!({"event.poller.refresh_interval": "60"}),
    );
    let instance = create(&app, &body).await;
    (app, instance)
}

/// The address a user registers in ConnectWise for an instance.
fn callback_address(app: &TestApp, instance: i64) -> String {
    app.api(&format!("/events/connectwisecrmrest/{instance}/"))
}

async fn next_run(app: &TestApp, instance: i64) -> jiff::Timestamp {
    app.server()
        .store()
        .poll_jobs(hubhook_core::InstanceId(instance))
        .await
        .expect("jobs")[0]
        .next_run_at
}

#[tokio::test]
async fn connectwise_callbacks_bring_changes_and_deletes_at_once() {
    // Polled hourly: only a callback can explain an event within the test's wait.
    let (app, instance) = hourly_instance().await;
    connectwise_ok(
        &app,
        Method::POST,
        "system/callbacks",
        Some(json!({
            // The form ConnectWise's guide suggests (it appends the record's id); the
            // instance's own query check refused it for a while.
            "url": app.api(&format!("/events/connectwisecrmrest/{instance}?recordId=")),
            "type": "contact",
            "level": "owner",
            "objectId": 0,
            "description": "hubhook",
        })),
    )
    .await;

    let id = app.sim.sim.ids("company/contacts")[5];
    connectwise_ok(
        &app,
        Method::PATCH,
        &format!("company/contacts/{id}"),
        Some(json!([{"op": "replace", "path": "title", "value": "Called back"}])),
    )
    .await;
    let (event, _) = app
        .receiver
        .wait_for_event(WAIT, |e| e["eventType"] == "UPDATED" && is_about(e, id))
        .await;
    assert_eq!(event["changedFields"], json!(["title"]));

    let gone = app.sim.sim.ids("company/contacts")[6];
    connectwise_ok(
        &app,
        Method::DELETE,
        &format!("company/contacts/{gone}"),
        None,
    )
    .await;
    app.receiver
        .wait_for_event(WAIT, |e| e["eventType"] == "DELETED" && is_about(e, gone))
        .await;
    // ConnectWise's deliveries were all accepted.
    let deliveries = app.sim.sim.callback_deliveries();
    assert!(
        deliveries.as_array().is_some_and(|d| d.len() >= 2),
        "{deliveries}"
    );
}

#[tokio::test]
async fn forged_connectwise_callbacks_are_refused_and_change_nothing() {
    let (app, instance) = hourly_instance().await;
    let before = next_run(&app, instance).await;
    let codebase = app.sim.base_url();
    let codebase = codebase.split("/apis/").next().expect("codebase");
    let key_url = format!(
        "{codebase}//system/callbackkey/index.rails?companyName=demo&id={}",
        app.sim.sim.callback_key_id()
    );
    let no_key_url = format!("{codebase}//system/callbackkey/index.rails?companyName=demo&id=nope");
    let message = |key_url: &str| {
        json!({
            "Action": "updated", "ID": 1, "Type": "contact", "CompanyId": "demo",
            "Metadata": {"key_url": key_url},
        })
        .to_string()
    };
    let real_key = app.sim.sim.callback_signing_key();
    let signed = |key: &str, body: &str| connectwise_sim::sign_callback(key, body.as_bytes());
    let post = |url: String, body: String, signature: Option<String>| {
        let mut request = app.http.post(url).body(body);
        if let Some(signature) = signature {
            request = request.header("x-content-signature", signature);
        }
        request.send()
    };
    let address = format!("{}123", callback_address(&app, instance));
    // Any other endpoint of the instance's own site: fetching it with the instance's keys would
    // let a stranger read the site through the errors.
    let contacts = format!("{}/company/contacts?pageSize=1", app.sim.base_url());
    let cases = [
        (
            message(&contacts),
            Some(signed(&real_key, &message(&contacts))),
            401,
        ),
        // No signature.
        (message(&key_url), None, 401),
        // Signed with another key.
        (
            message(&key_url),
            Some(signed("guess", &message(&key_url))),
            401,
        ),
        // Signed for another body.
        (message(&key_url), Some(signed(&real_key, "{}")), 401),
        // A key URL that serves no key.
        (
            message(&no_key_url),
            Some(signed(&real_key, &message(&no_key_url))),
            502,
        ),
        // A key URL on another host: never fetched with the instance's credentials.
        (
            message("http://127.0.0.1:9/system/callbackkey"),
            Some(signed(
                &real_key,
                &message("http://127.0.0.1:9/system/callbackkey"),
            )),
            401,
        ),
        // Not a callback at all.
        ("{\"hello\": 1}".to_string(), Some("x".into()), 400),
    ];
    for (body, signature, expected) in cases {
        let response = post(address.clone(), body.clone(), signature)
            .await
            .expect("sent");
        let status = response.status().as_u16();
        let answer: Value = response.json().await.expect("error body");
        assert_eq!(status, expected, "{body}: {answer}");
        let said = answer["message"].as_str().expect("message");
        // A stranger learns neither the instance's site nor what a key URL answered.
        assert!(
            !said.contains("127.0.0.1") && !said.contains("404"),
            "{said}"
        );
    }
    // An id that is no instance's is answered as a key URL on another site is, after the
    // same checks of the body and the signature header: strangers cannot tell which ids
    // exist.
    let answer = async |address: String, body: String, signature: Option<String>| {
        let response = post(address, body, signature).await.expect("sent");
        let status = response.status().as_u16();
        let message = response.json::<Value>().await.expect("error body")["message"].clone();
        (status, message)
    };
    let elsewhere = message("http://127.0.0.1:9/system/callbackkey");
    let signed_elsewhere = Some(signed(&real_key, &elsewhere));
    let existing = answer(address.clone(), elsewhere.clone(), signed_elsewhere.clone()).await;
    assert_eq!(existing.0, 401);
    for missing in ["999999/1", "999999", "abc", "-1"] {
        let address = app.api(&format!("/events/connectwisecrmrest/{missing}"));
        assert_eq!(
            answer(address.clone(), elsewhere.clone(), signed_elsewhere.clone()).await,
            existing,
            "{missing}"
        );
        let without_signature = answer(address.clone(), message(&key_url), None).await;
        assert_eq!(
            without_signature,
            answer(address.clone(), message(&key_url), None).await,
            "{missing}"
        );
        let not_a_callback = answer(address, "{\"hello\": 1}".into(), Some("x".into())).await;
        assert_eq!(not_a_callback.0, 400, "{missing}");
    }
    assert_eq!(
        next_run(&app, instance).await,
        before,
        "no poll was made due"
    );
    assert!(app.receiver.events().is_empty());
}

/// Changes every contact with ConnectWise's clock frozen (so all share one second, which cannot
/// end), polls, then changes one contact again within that second and polls again: only a
/// re-read of the second can find that change, and it must be found. Returns the contact.
async fn a_change_within_a_mass_updates_second_is_found(app: &TestApp, instance: i64) -> i64 {
    let contacts = app.sim.sim.ids("company/contacts");
    app.sim.sim.set_clock_frozen(true);
    let stamped = app.sim.sim.now();
    app.sim
        .sim
        .mass_update("company/contacts", contacts.len())
        .expect("touched");
    app.poll_now(instance).await;
    for id in &contacts {
        app.receiver
            .wait_for_event(WAIT, |e| e["eventType"] == "UPDATED" && is_about(e, *id))
            .await;
    }
    let again = contacts[3];
    connectwise_ok(
        app,
        Method::PATCH,
        &format!("company/contacts/{again}"),
        Some(json!([{"op": "replace", "path": "title", "value": "Same Second"}])),
    )
    .await;
    assert_eq!(app.sim.sim.now(), stamped, "the change shares the second");
    app.poll_now(instance).await;
    app.receiver
        .wait_for_event(WAIT, |e| {
            e["eventType"] == "UPDATED"
                && is_about(e, again)
                && e["changedFields"] == json!(["title"])
        })
        .await;
    again
}

/// After a mass update, its second is read again only while it may still gain records; once
/// it has ended, polls stop reading the tie set (they read nothing).
#[tokio::test]
async fn a_mass_updates_second_is_read_again_only_until_it_has_ended() {
    let app = spawn_app().await;
    let instance = create(&app, &app.documented_body()).await;
    a_change_within_a_mass_updates_second_is_found(&app, instance).await;
    let contacts = app.sim.sim.ids("company/contacts").len() as u64;
    // Frozen, the second never ends: each poll reads the whole tie set again.
    wait_for_health(&app, instance, "contacts", |r| {
        r["recordsSeen"] == contacts && r["running"] == false
    })
    .await;
    app.sim.sim.set_clock_frozen(false);
    // A few seconds of ConnectWise's time later (the lag learnt, about a second, plus the two
    // second margin), polls at the 3 s interval read nothing.
    wait_for_health(&app, instance, "contacts", |r| r["recordsSeen"] == 0).await;
    // And a change after that is still found.
    let id = app.sim.sim.ids("company/contacts")[5];
    connectwise_ok(
        &app,
        Method::PATCH,
        &format!("company/contacts/{id}"),
        Some(json!([{"op": "replace", "path": "title", "value": "Later"}])),
    )
    .await;
    app.receiver
        .wait_for_event(WAIT, |e| {
            e["eventType"] == "UPDATED" && is_about(e, id) && e["changedFields"] == json!(["title"])
        })
        .await;
}

/// A contact edited and edited back within one second of ConnectWise's clock reads exactly as
/// it did: the same content, whose event id (a pure function of the change) would be the
/// earlier change's. Each change must still reach the receiver, under ids of its own.
#[tokio::test]
async fn content_seen_before_is_a_new_change_when_it_comes_back() {
    let app = spawn_app().await;
    let instance = create(&app, &app.documented_body()).await;
    let id = app.sim.sim.ids("company/contacts")[4];
    let first_title = app.sim.sim.get("company/contacts", id).expect("exists")["title"].clone();
    app.sim.sim.set_clock_frozen(true);
    let titles = [json!("Flip"), first_title, json!("Flip")];
    for (n, title) in titles.iter().enumerate() {
        connectwise_ok(
            &app,
            Method::PATCH,
            &format!("company/contacts/{id}"),
            Some(json!([{"op": "replace", "path": "title", "value": title}])),
        )
        .await;
        app.poll_now(instance).await;
        let deadline = tokio::time::Instant::now() + WAIT;
        while events_of(&app.receiver, "UPDATED")
            .iter()
            .filter(|e| is_about(e, id))
            .count()
            <= n
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "change {n} (title {title}) never arrived: {:?}",
                events_of(&app.receiver, "UPDATED")
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    app.sim.sim.set_clock_frozen(false);
    let updates: Vec<Value> = events_of(&app.receiver, "UPDATED")
        .into_iter()
        .filter(|e| is_about(e, id))
        .collect();
    let ids: BTreeSet<&str> = updates.iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(ids.len(), 3, "three changes, three ids: {updates:?}");
    let delivered: Vec<Value> = app
        .receiver
        .events()
        .iter()
        .filter(|(event, _)| event["eventType"] == "UPDATED" && is_about(event, id))
        .map(|(_, request)| raw_record(request, id)["title"].clone())
        .collect();
    assert_eq!(delivered, titles, "each version, in order");
}

/// Record dates nine hours behind the `Date` header (a zone misread as GMT): the header alone
/// would call the mass update's second long ended; the lag learnt from the data does not, and
/// a change within that second is still found.
#[tokio::test]
async fn a_misread_zone_does_not_settle_a_second_that_is_still_running() {
    let app = spawn_app().await;
    let zone = json!({
        "datesConfiguration": {
            "updatedDateField": "_info.lastUpdated",
            "updatedDateFormat": "yyyy-MM-dd'T'HH:mm:ss'Z'",
            "updatedDateTimezone": "Asia/Tokyo",
            "createdDateField": "_info.lastUpdated",
            "createdDateFormat": "yyyy-MM-dd'T'HH:mm:ss'Z'",
            "createdDateTimezone": "Asia/Tokyo"
        }
    });
    let instance = create(&app, &body_with(&app, zone, json!({}))).await;
    a_change_within_a_mass_updates_second_is_found(&app, instance).await;
    app.sim.sim.set_clock_frozen(false);
}
