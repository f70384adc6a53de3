//! Changes in ConnectWise become signed callbacks: the whole path, end to end.

use std::{collections::HashMap, time::Duration};

use reqwest::Method;
use serde_json::{Value, json};

use crate::app::{Receiver, SIGNATURE_KEY, expected_signature, spawn_app, spawn_app_with_receiver};

const WAIT: Duration = Duration::from_secs(30);

async fn create_contact(app: &crate::app::TestApp, first: &str) -> i64 {
    let company = app.sim.sim.ids("company/companies")[0];
    let response = app
        .connectwise(Method::POST, "company/contacts")
        .json(&json!({ "firstName": first, "lastName": "Tester", "company": { "id": company } }))
        .send()
        .await
        .expect("sent");
    let status = response.status();
    let contact: Value = response.json().await.expect("json");
    assert_eq!(status, 201, "{contact}");
    contact["id"].as_i64().expect("id")
}

async fn retitle_contact(app: &crate::app::TestApp, id: i64, title: &str) {
    let response = app
        .connectwise(Method::PATCH, &format!("company/contacts/{id}"))
        .json(&json!([{ "op": "replace", "path": "title", "value": title }]))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
}

/// `objectId` is a string in the payload; ConnectWise ids are numbers.
fn object_id_of(event: &Value) -> Option<i64> {
    event["objectId"].as_str().and_then(|s| s.parse().ok())
}

fn is(event: &Value, event_type: &str, object_id: i64) -> bool {
    event["eventType"] == event_type && object_id_of(event) == Some(object_id)
}

#[tokio::test]
async fn contact_changes_arrive_as_signed_cloud_elements_callbacks() {
    let app = spawn_app().await;
    let instance = app.create_polling_instance().await;

    // A new contact is CREATED.
    let id = create_contact(&app, "Ada").await;
    app.poll_now(instance).await;
    let (event, request) = app
        .receiver
        .wait_for_event(WAIT, |e| is(e, "CREATED", id))
        .await;
    assert_eq!(event["objectType"], "contacts");
    assert_eq!(event["elementKey"], "connectwisecrmrest");
    assert!(
        event["eventDate"]
            .as_str()
            .is_some_and(|d| d.ends_with('Z')),
        "{event}"
    );

    let signature = request
        .header("Elements-Webhook-Signature")
        .expect("signature header");
    assert_eq!(signature, expected_signature(SIGNATURE_KEY, &request.body));
    let body = request.json();
    let message = &body["message"];
    assert_eq!(
        request.header("Elements-Webhook-Id"),
        message["eventId"].as_str()
    );
    assert_eq!(message["instanceId"], instance);
    assert_eq!(message["elementKey"], "connectwisecrmrest");
    assert_eq!(message["raw"]["instance_id"], instance);
    assert_eq!(message["raw"]["objectType"], "contacts");
    let records = message["raw"]["contacts"].as_array().expect("raw records");
    let record = records
        .iter()
        .find(|r| r["id"] == id)
        .expect("the record is in raw");
    assert_eq!(record["firstName"], "Ada");
    assert!(record["_info"]["lastUpdated"].is_string());
    assert!(
        request
            .header("Content-Type")
            .is_some_and(|c| c.starts_with("application/json"))
    );

    // Changing it is UPDATED, and so is changing a contact that existed before the instance.
    retitle_contact(&app, id, "Countess").await;
    app.poll_now(instance).await;
    let (_, request) = app
        .receiver
        .wait_for_event(WAIT, |e| is(e, "UPDATED", id))
        .await;
    let raw = request.json()["message"]["raw"]["contacts"].clone();
    assert!(
        raw.as_array()
            .expect("array")
            .iter()
            .any(|r| r["id"] == id && r["title"] == "Countess"),
        "{raw}"
    );
    let seeded = app.sim.sim.ids("company/contacts")[0];
    retitle_contact(&app, seeded, "Old timer").await;
    app.poll_now(instance).await;
    app.receiver
        .wait_for_event(WAIT, |e| is(e, "UPDATED", seeded))
        .await;

    // Deleting one: delete detection comes later; it must not show up as a create or update.
    let deleted = create_contact(&app, "Short-lived").await;
    let response = app
        .connectwise(Method::DELETE, &format!("company/contacts/{deleted}"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 204);

    // Several more polls over the same records must not deliver anything twice.
    let last = create_contact(&app, "Grace").await;
    for _ in 0..3 {
        app.poll_now(instance).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    app.receiver
        .wait_for_event(WAIT, |e| is(e, "CREATED", last))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let events = app.receiver.events();
    assert!(
        !events.iter().any(|(e, _)| object_id_of(e) == Some(deleted)),
        "deleted contact delivered: {events:?}"
    );
    let mut by_change: HashMap<(String, String), usize> = HashMap::new();
    for (event, _) in &events {
        *by_change
            .entry((
                event["objectId"].as_str().unwrap_or("").to_string(),
                event["eventType"].as_str().unwrap_or("").to_string(),
            ))
            .or_default() += 1;
    }
    for (change, count) in &by_change {
        assert_eq!(*count, 1, "{change:?} delivered {count} times");
    }
    let mut webhook_ids: Vec<String> = app
        .receiver
        .received()
        .iter()
        .map(|r| r.header("Elements-Webhook-Id").unwrap_or("").to_string())
        .collect();
    let total = webhook_ids.len();
    webhook_ids.sort();
    webhook_ids.dedup();
    assert_eq!(
        webhook_ids.len(),
        total,
        "a notification was delivered twice"
    );
    // Only the changes we made (Ada created and updated, the seeded contact updated, Grace
    // created): the 20 seeded contacts were not announced by the baseline.
    assert_eq!(by_change.len(), 4, "{by_change:?}");
}

#[tokio::test]
async fn many_changes_are_split_into_notifications_of_at_most_ten() {
    let app = spawn_app().await;
    let instance = app.create_polling_instance().await;
    let mut ids = Vec::new();
    for i in 0..23 {
        ids.push(create_contact(&app, &format!("Bulk{i}")).await);
    }
    app.poll_now(instance).await;
    for id in &ids {
        app.receiver
            .wait_for_event(WAIT, |e| is(e, "CREATED", *id))
            .await;
    }
    for request in app.receiver.received() {
        let body = request.json();
        let events = body["message"]["events"].as_array().expect("events").len();
        let raw = body["message"]["raw"]["contacts"]
            .as_array()
            .expect("raw")
            .len();
        assert!(
            (1..=10).contains(&events),
            "{events} events in one notification"
        );
        assert_eq!(
            raw, events,
            "raw carries the records of this notification's events"
        );
    }
}

#[tokio::test]
async fn pending_events_are_delivered_after_a_restart() {
    // The receiver's port is reserved but nothing answers yet: deliveries fail and stay pending.
    let reserved = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = reserved.local_addr().expect("addr");
    drop(reserved);
    let dead_receiver_url = format!("http://{addr}/webhook");
    let placeholder = Receiver::start().await;
    let mut app = spawn_app_with_receiver(placeholder).await;
    let mut body = app.documented_body();
    body["configuration"]["event.notification.callback.url"] = json!(dead_receiver_url);
    let response = app.create_instance(&body).await;
    assert_eq!(response.status(), 200);
    let instance = response.json::<Value>().await.expect("json")["id"]
        .as_i64()
        .expect("id");
    app.wait_for_baseline(instance).await;

    let id = create_contact(&app, "Durable").await;
    app.poll_now(instance).await;
    let store_instance = hubhook_core::InstanceId(instance);
    let deadline = tokio::time::Instant::now() + WAIT;
    let notification = loop {
        let pending = app
            .server()
            .store()
            .list_notifications(store_instance, 10)
            .await
            .expect("read");
        if let Some(n) = pending.into_iter().next() {
            break n;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the poll stored nothing"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_ne!(notification.status, "delivered");

    // Stop the server with the notification undelivered, bring the receiver up, restart.
    app.server
        .take()
        .expect("running")
        .stop()
        .await
        .expect("server stops cleanly");
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("rebind receiver port");
    let receiver = Receiver::start_on(listener);
    app.restart().await;

    let (event, request) = receiver
        .wait_for_event(WAIT, |e| is(e, "CREATED", id))
        .await;
    assert_eq!(
        request.header("Elements-Webhook-Id"),
        Some(notification.id.0.as_str())
    );
    assert_eq!(event["objectType"], "contacts");
    // The receiver answers before the dispatcher records the attempt; wait for the record.
    let deadline = tokio::time::Instant::now() + WAIT;
    while app
        .server()
        .store()
        .notification(&notification.id)
        .await
        .expect("read")
        .map(|n| n.status)
        != Some("delivered".to_string())
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "delivery was not recorded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let attempts = app
        .server()
        .store()
        .list_attempts(&notification.id)
        .await
        .expect("attempts");
    assert!(
        attempts.len() >= 2,
        "the failed attempts and the delivery are all recorded: {attempts:?}"
    );
    assert!(
        attempts.iter().any(|a| a.status_code == Some(200)),
        "{attempts:?}"
    );
    assert!(attempts.iter().any(|a| a.error.is_some()), "{attempts:?}");
}
