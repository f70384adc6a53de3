//! Standard Webhooks headers on real deliveries: the secret shown at creation verifies them,
//! and a rotation signs with the new secret and every earlier one still inside its overlap. Signatures are recomputed here
//! with the hmac crate, independently of hubhook's signing code (the Python library checks
//! them too, in `tests/standardwebhooks/run.sh`).

use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;

use crate::app::{Received, TestApp, spawn_app};

const WAIT: Duration = Duration::from_secs(30);

/// `v1,<base64>` of `{id}.{timestamp}.{body}` under the secret's key bytes.
fn expected(secret: &str, request: &Received) -> String {
    use hmac::{KeyInit, Mac};
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
        .expect("base64 key");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(request.header("webhook-id").expect("webhook-id").as_bytes());
    mac.update(b".");
    mac.update(
        request
            .header("webhook-timestamp")
            .expect("webhook-timestamp")
            .as_bytes(),
    );
    mac.update(b".");
    mac.update(&request.body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

async fn rotate(app: &TestApp, auth: &str, instance: i64) -> (u16, Value) {
    let path = format!("/instances/{instance}/webhook-secret");
    app.call(reqwest::Method::POST, &path, Some(auth), None)
        .await
}

#[tokio::test]
async fn deliveries_carry_standard_webhooks_headers_and_rotation_overlaps() {
    let app = spawn_app().await;
    let response = app.create_instance(&app.documented_body()).await;
    assert_eq!(response.status(), 200);
    let created: Value = response.json().await.expect("json");
    let instance = created["id"].as_i64().expect("id");
    let first = created["webhookSecret"]
        .as_str()
        .expect("webhookSecret in the answer to the create")
        .to_string();
    assert!(first.starts_with("whsec_"), "{first}");
    // Shown once: reads do not carry it.
    let (_, read) = app.get(&format!("/instances/{instance}")).await;
    assert!(read.get("webhookSecret").is_none(), "{read}");
    app.wait_for_baseline(instance).await;

    let object = app.add_contact("Std");
    app.poll_now(instance).await;
    let (event, request) = app
        .receiver
        .wait_for_event(WAIT, |e| e["objectId"] == object.as_str())
        .await;
    assert!(event["id"].is_string(), "events carry their stable id");
    assert_eq!(
        request.header("webhook-id"),
        request.header("Elements-Webhook-Id")
    );
    assert!(
        request
            .header("webhook-timestamp")
            .is_some_and(|t| t.parse::<i64>().is_ok()),
        "{:?}",
        request.headers
    );
    assert_eq!(
        request.header("webhook-signature"),
        Some(expected(&first, &request).as_str())
    );

    // Another organization cannot rotate it, and learns nothing about it.
    let other_auth = app.other_organization().await;
    let (status, body) = rotate(&app, &other_auth, instance).await;
    assert_eq!(status, 404, "{body}");

    // After a rotation both secrets sign, the new one first.
    let second = rotated(&app, instance).await;
    assert!(second.starts_with("whsec_") && second != first);
    let (request, signatures) = signed_change(&app, instance, "Rotated").await;
    assert_eq!(
        signatures,
        [expected(&second, &request), expected(&first, &request)]
    );

    // Rotated again inside the overlap (a client that lost the answer and asked again): the
    // first secret still signs, so a receiver that never learned the second keeps verifying.
    let third = rotated(&app, instance).await;
    let (request, signatures) = signed_change(&app, instance, "Rotated twice").await;
    assert_eq!(
        signatures,
        [
            expected(&third, &request),
            expected(&second, &request),
            expected(&first, &request)
        ]
    );
}

/// Rotates the instance's secret as its organization; the new secret.
async fn rotated(app: &TestApp, instance: i64) -> String {
    let (status, body) = rotate(app, &app.auth(), instance).await;
    assert_eq!(status, 200, "{body}");
    body["webhookSecret"]
        .as_str()
        .expect("new secret")
        .to_string()
}

/// Changes a contact and waits for its delivery; the request and its `webhook-signature`s.
async fn signed_change(app: &TestApp, instance: i64, name: &str) -> (Received, Vec<String>) {
    let object = app.add_contact(name);
    app.poll_now(instance).await;
    let (_, request) = app
        .receiver
        .wait_for_event(WAIT, |e| e["objectId"] == object.as_str())
        .await;
    let signatures = request
        .header("webhook-signature")
        .expect("signature")
        .split(' ')
        .map(str::to_owned)
        .collect();
    (request, signatures)
}
