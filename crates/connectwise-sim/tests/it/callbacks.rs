use std::time::Duration;

use axum::extract::Request;
use base64::Engine;
use hmac::{KeyInit, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::{App, status_json};

struct Received {
    uri: String,
    signature: String,
    body: Vec<u8>,
}

/// A callback receiver on a random port; every POST is forwarded to the channel.
async fn receiver() -> (String, mpsc::UnboundedReceiver<Received>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().fallback(move |req: Request| {
        let tx = tx.clone();
        async move {
            let uri = req.uri().to_string();
            let signature = req
                .headers()
                .get("x-content-signature")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let body = axum::body::to_bytes(req.into_body(), 1 << 20)
                .await
                .unwrap_or_default()
                .to_vec();
            let _ = tx.send(Received {
                uri,
                signature,
                body,
            });
            axum::http::StatusCode::NO_CONTENT
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("a callback arrives")
        .expect("open")
}

fn verify(key: &str, body: &[u8], signature: &str) -> bool {
    let k = Sha256::digest(key.as_bytes());
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(&k).expect("key");
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()) == signature
}

#[tokio::test]
async fn registered_callbacks_receive_signed_payloads() {
    let app = App::start().await;
    let (receiver_url, mut rx) = receiver().await;
    let resp = app
        .api(Method::POST, "system/callbacks")
        .json(&json!({"id": 0, "url": format!("{receiver_url}/cw?recordId="), "objectId": 0, "type": "contact",
                      "level": "Owner", "description": "test", "inactiveFlag": false, "memberId": 0,
                      "isSelfSuppressedFlag": false, "connectWiseID": ""}))
        .send()
        .await
        .expect("send");
    let (status, entry) = status_json(resp).await;
    assert_eq!(status, 201, "{entry}");
    assert_eq!(
        entry["objectId"], 1,
        "owner level normalises objectId 0 to 1"
    );
    assert_eq!(entry["level"], "owner");
    assert_eq!(entry["memberId"], 100);
    assert_eq!(entry["payloadVersion"], "3.0.0");
    assert_eq!(entry["connectWiseID"].as_str().map(str::len), Some(36));
    let resp = app
        .api(Method::POST, "system/callbacks")
        .json(&json!({"url": format!("{receiver_url}/cw?recordId="), "objectId": 1, "type": "contact", "level": "owner"}))
        .send()
        .await
        .expect("send");
    let (status, dup) = status_json(resp).await;
    assert_eq!(status, 400);
    assert_eq!(dup["message"], "callbackEntry object is invalid");
    assert_eq!(
        dup["errors"][0],
        json!({"code": "ObjectExists", "message": "A matching callback entry already exists", "resource": "callbackEntry", "field": "objectId"})
    );
    let resp = app
        .api(Method::POST, "system/callbacks")
        .json(&json!({"url": "not a url", "objectId": 1, "type": "contact", "level": "board"}))
        .send()
        .await
        .expect("send");
    let (status, bad) = status_json(resp).await;
    assert_eq!(status, 400);
    let messages: Vec<&str> = bad["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert_eq!(
        messages,
        vec![
            "Invalid URL",
            "Unrecognized level for type, see documentation for supported levels for each type"
        ]
    );

    let contact = app.sim().ids("company/contacts")[5];
    let resp = app
        .api(Method::PATCH, &format!("company/contacts/{contact}"))
        .json(&json!([{"op": "replace", "path": "title", "value": "Callback Tester"}]))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 200);
    let got = next(&mut rx).await;
    assert_eq!(got.uri, format!("/cw?recordId={contact}"));
    let payload: Value = serde_json::from_slice(&got.body).expect("json");
    assert_eq!(payload["Action"], "updated");
    assert_eq!(payload["Type"], "contact");
    assert_eq!(payload["ID"], contact);
    assert_eq!(payload["CompanyId"], "demo");
    assert_eq!(payload["CallbackObjectRecId"], entry["id"]);
    let entity: Value =
        serde_json::from_str(payload["Entity"].as_str().expect("Entity is a JSON string"))
            .expect("entity json");
    assert_eq!(entity["title"], "Callback Tester");
    assert!(
        payload["Entity"]
            .as_str()
            .expect("Entity")
            .starts_with(&format!("{{\"id\":{contact},")),
        "Entity keeps model field order"
    );
    assert_eq!(entity["id"], contact);
    let key_url = payload["Metadata"]["key_url"].as_str().expect("key_url");
    let (status, key) = status_json(app.http.get(key_url).send().await.expect("send")).await;
    assert_eq!(status, 200, "{key_url}");
    let signing_key = key["signing_key"].as_str().expect("signing_key");
    assert!(
        verify(signing_key, &got.body, &got.signature),
        "signature verifies"
    );
    assert!(!verify("wrong", &got.body, &got.signature));

    app.sim()
        .delete("company/contacts", contact)
        .expect("delete");
    let got = next(&mut rx).await;
    let payload: Value = serde_json::from_slice(&got.body).expect("json");
    assert_eq!(payload["Action"], "deleted");
    assert_eq!(payload["Entity"], Value::Null);
    assert!(verify(signing_key, &got.body, &got.signature));

    let company = app.sim().ids("company/companies")[0];
    let created = app
        .sim()
        .create(
            "company/contacts",
            json!({"firstName": "New", "company": {"id": company}}),
        )
        .expect("create");
    let got = next(&mut rx).await;
    let payload: Value = serde_json::from_slice(&got.body).expect("json");
    assert_eq!(payload["Action"], "added");
    assert_eq!(payload["ID"], created["id"]);

    let id = entry["id"].as_i64().expect("id");
    let resp = app
        .api(Method::DELETE, &format!("system/callbacks/{id}"))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 204);
    let (_, count) = app.get_json("system/callbacks/count").await;
    assert_eq!(count, json!({"count": 0}));
}

#[tokio::test]
async fn deleting_a_deleted_company_is_a_no_op_without_a_second_callback() {
    let app = App::start().await;
    let (receiver_url, mut rx) = receiver().await;
    let company = app.sim().ids("company/companies")[2];
    let resp = app
        .api(Method::POST, "system/callbacks")
        .json(&json!({"url": format!("{receiver_url}/cw?id="), "objectId": company, "type": "company", "level": "company"}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 201);
    let first = app.freeze().await;
    let delete = || async {
        app.api(Method::DELETE, &format!("company/companies/{company}"))
            .send()
            .await
            .expect("send")
            .status()
            .as_u16()
    };
    assert_eq!(delete().await, 204);
    let got = next(&mut rx).await;
    let payload: Value = serde_json::from_slice(&got.body).expect("json");
    assert_eq!(payload["Action"], "deleted");
    app.sim().advance_clock(3600);
    assert_eq!(delete().await, 204, "deleting again is idempotent");
    let (_, after) = app.get_json(&format!("company/companies/{company}")).await;
    assert_eq!(after["dateDeleted"], first.as_str(), "not re-stamped");
    assert_eq!(after["_info"]["lastUpdated"], first.as_str());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(rx.try_recv().is_err(), "no second callback");
}
