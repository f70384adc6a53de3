//! Failed deliveries through the API: a `410 Gone` deactivates the subscription and queues
//! everything, Cloud Elements' queue API lists and redelivers it, the `queue` policy stops at
//! the first failure until a recovery, `Retry-After` is honoured, and nothing of another
//! organization is visible.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::app::{Behaviour, TestApp, spawn_app};

const WAIT: Duration = Duration::from_secs(30);

/// Sends the call and checks it is refused with a `400` whose message contains `needle`.
async fn refused(app: &TestApp, method: Method, path: &str, body: Option<&Value>, needle: &str) {
    let (status, error) = app.send(method, path, body).await;
    assert_eq!(status, 400, "{error}");
    let message = error["message"].as_str().expect("message");
    assert!(message.contains(needle), "{message}");
}

/// Waits until the instance has `count` notifications with this status; returns them.
async fn wait_for_status(app: &TestApp, instance: i64, status: &str, count: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (code, list) = app
            .get(&format!(
                "/instances/{instance}/notifications?status={status}"
            ))
            .await;
        assert_eq!(code, 200, "{list}");
        let list = list.as_array().expect("array").clone();
        if list.len() >= count {
            return list;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{count} {status} notifications expected, got {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn gone_deactivates_and_the_queue_api_redelivers() {
    let app = spawn_app().await;
    app.receiver.set_behaviour(Behaviour::Status(410));
    let instance = app.create_polling_instance().await;
    let first = app.add_contact("Gone");
    app.poll_now(instance).await;
    let queued = wait_for_status(&app, instance, "queued", 1).await;
    let gone_id = queued[0]["id"].as_str().expect("id").to_string();
    assert_eq!(queued[0]["attempts"], 1, "410 is not retried: {queued:?}");
    assert!(!queued[0]["eventIds"].as_array().expect("ids").is_empty());

    let (status, attempts) = app
        .send(
            Method::GET,
            &format!("/notifications/{gone_id}/attempts"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{attempts}");
    assert_eq!(attempts[0]["statusCode"], 410);
    assert_eq!(attempts[0]["outcome"], "deactivated");
    assert_eq!(attempts[0]["responseExcerpt"], "answer 410");

    // The subscription is deactivated: the next change is queued without being tried.
    let second = app.add_contact("Waiting");
    app.poll_now(instance).await;
    let queued = wait_for_status(&app, instance, "queued", 2).await;
    let waiting = queued
        .iter()
        .find(|n| n["id"] != gone_id.as_str())
        .expect("second notification");
    assert_eq!(waiting["attempts"], 0, "{waiting}");

    let (status, deliveries) = app.send(
        Method::GET,
        "/notifications/subscriptions/deliveries?where=channel%3D'webhook'%20and%20status%3D'queued'",
        None,
    )
    .await;
    assert_eq!(status, 200, "{deliveries}");
    let deliveries = deliveries.as_array().expect("array");
    assert_eq!(deliveries.len(), 2, "{deliveries:?}");
    assert_eq!(
        deliveries[0]["subscription"]["config"]["url"],
        app.receiver.url.as_str()
    );
    assert_eq!(deliveries[0]["subscriptionId"], instance);
    // Each delivery shows the body it carries (the scan reads none; the page's rows are read
    // whole).
    for delivery in deliveries {
        assert!(
            delivery["notification"]["message"]["events"].is_array(),
            "{delivery}"
        );
    }

    // A typo is refused, not an empty selection.
    refused(
        &app,
        Method::PUT,
        "/notifications/subscriptions/deliveries?where=colour%3D'red'",
        None,
        "colour",
    )
    .await;

    // LIKE patterns are bounded (each costs its length times the URL's at every row).
    refused(
        &app,
        Method::GET,
        &format!(
            "/notifications/subscriptions/deliveries?where=config.url%20like%20'%25{}b'",
            "a".repeat(300)
        ),
        None,
        "at most 256",
    )
    .await;

    // Another organization sees none of it.
    let other_auth = app.other_organization().await;
    for path in [
        format!("/notifications/{gone_id}/attempts"),
        format!("/instances/{instance}/notifications"),
    ] {
        let (status, _) = app.call(Method::GET, &path, Some(&other_auth), None).await;
        assert_eq!(status, 404, "{path}");
    }
    let (_, theirs) = app
        .call(
            Method::GET,
            "/notifications/subscriptions/deliveries",
            Some(&other_auth),
            None,
        )
        .await;
    assert_eq!(theirs, json!([]));

    // A replay meanwhile is stored, and its answer says it is queued and what sends it.
    let (status, replay) = app
        .send(
            Method::POST,
            &format!("/instances/{instance}/replay"),
            Some(&json!({ "from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z" })),
        )
        .await;
    assert_eq!(status, 202, "{replay}");
    assert_eq!(replay["replays"], 2, "{replay}");
    let held = replay["held"].as_str().expect("held says why");
    assert!(
        held.contains("deactivated") && held.contains("410") && held.contains("redelivery"),
        "{held}"
    );
    wait_for_status(&app, instance, "queued", 4).await;

    // Redelivery reactivates: both arrive (and both replays).
    app.receiver.set_behaviour(Behaviour::Accept);
    let (status, answer) = app
        .send(
            Method::PUT,
            "/notifications/subscriptions/deliveries?where=status%3D'queued'",
            None,
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["redelivered"], 4);
    for object in [first, second] {
        app.receiver
            .wait_for_event(WAIT, |e| e["objectId"] == object.as_str())
            .await;
    }
    wait_for_status(&app, instance, "delivered", 4).await;
}

#[tokio::test]
async fn the_queue_policy_stops_at_the_first_failure_until_recovered() {
    let app = spawn_app().await;
    let org = app.org.organization_id;
    refused(
        &app,
        Method::POST,
        &format!("/accounts/{org}/settings"),
        Some(&json!({ "notification.webhook.failure.policy": "drop" })),
        "expected \"retry\" or \"queue\"",
    )
    .await;
    let (status, _) = app
        .send(
            Method::PATCH,
            &format!("/accounts/{}/settings", org + 1),
            Some(&json!({})),
        )
        .await;
    assert_eq!(status, 404);
    let (status, settings) = app
        .send(
            Method::PATCH,
            &format!("/accounts/{org}/settings"),
            Some(&json!({ "notification.webhook.failure.policy": "queue" })),
        )
        .await;
    assert_eq!(status, 200, "{settings}");
    assert_eq!(settings["notification.webhook.failure.policy"], "queue");
    let (_, settings) = app
        .send(Method::GET, &format!("/accounts/{org}/settings"), None)
        .await;
    assert_eq!(settings["notification.webhook.failure.policy"], "queue");
    assert_eq!(settings["notification.webhook.retry.schedule"], "default");

    app.receiver.set_behaviour(Behaviour::Status(500));
    let instance = app.create_polling_instance().await;
    let since = jiff::Timestamp::now();
    let object = app.add_contact("Queued");
    app.poll_now(instance).await;
    let queued = wait_for_status(&app, instance, "queued", 1).await;
    assert_eq!(queued[0]["attempts"], 1, "no retry under the queue policy");

    refused(
        &app,
        Method::POST,
        &format!("/instances/{instance}/recover"),
        Some(&json!({ "since": "yesterday" })),
        "`since`",
    )
    .await;
    // An offset RFC 3339 has no such thing as (hours 00-23), though jiff reads it.
    refused(
        &app,
        Method::POST,
        &format!("/instances/{instance}/recover"),
        Some(&json!({ "since": "2020-01-01T00:00:00+25:00" })),
        "`since`",
    )
    .await;

    app.receiver.set_behaviour(Behaviour::Accept);
    let (status, answer) = app
        .send(
            Method::POST,
            &format!("/instances/{instance}/recover"),
            Some(&json!({ "since": since.to_string() })),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["redelivered"], 1);
    app.receiver
        .wait_for_event(WAIT, |e| e["objectId"] == object.as_str())
        .await;
    let delivered = wait_for_status(&app, instance, "delivered", 1).await;
    let id = delivered[0]["id"].as_str().expect("id");
    let (_, attempts) = app
        .send(Method::GET, &format!("/notifications/{id}/attempts"), None)
        .await;
    let outcomes: Vec<&str> = attempts
        .as_array()
        .expect("array")
        .iter()
        .map(|a| a["outcome"].as_str().expect("outcome"))
        .collect();
    assert_eq!(outcomes, ["deactivated", "delivered"], "history is kept");

    // A resend of a delivered notification sends it again.
    let (status, answer) = app
        .send(Method::POST, &format!("/notifications/{id}/resend"), None)
        .await;
    assert_eq!(status, 202, "{answer}");
    app.receiver
        .wait_for_request(WAIT, |r| {
            r.header("webhook-id") == Some(id)
                && app
                    .receiver
                    .received()
                    .iter()
                    .filter(|o| o.header("webhook-id") == Some(id))
                    .count()
                    >= 3
        })
        .await;
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let app = spawn_app().await;
    app.receiver.set_behaviour(Behaviour::TooManyRequests(120));
    let instance = app.create_polling_instance().await;
    app.add_contact("Throttled");
    app.poll_now(instance).await;
    let failed = wait_for_status(&app, instance, "failed", 1).await;
    let id = failed[0]["id"].as_str().expect("id");
    let (_, attempts) = app
        .send(Method::GET, &format!("/notifications/{id}/attempts"), None)
        .await;
    let attempted: jiff::Timestamp = attempts[0]["attemptedDate"]
        .as_str()
        .expect("date")
        .parse()
        .expect("time");
    let next: jiff::Timestamp = failed[0]["nextAttemptDate"]
        .as_str()
        .expect("date")
        .parse()
        .expect("time");
    // The server's schedule says 1 s; the receiver asked for 120 s.
    assert!(
        next.duration_since(attempted) >= jiff::SignedDuration::from_secs(120),
        "{attempted} -> {next}"
    );
    assert_eq!(attempts[0]["statusCode"], 429);
}

#[tokio::test]
async fn a_replay_sends_the_same_events_under_new_notification_ids() {
    let app = spawn_app().await;
    let instance = app.create_polling_instance().await;
    let from = jiff::Timestamp::now();
    let object = app.add_contact("Replayed");
    app.poll_now(instance).await;
    let (event, original) = app
        .receiver
        .wait_for_event(WAIT, |e| e["objectId"] == object.as_str())
        .await;
    let original_id = original.header("webhook-id").expect("id").to_string();
    let to = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(1);

    let path = format!("/instances/{instance}/replay");
    let (status, error) = app
        .send(
            Method::POST,
            &path,
            Some(&json!({ "from": to.to_string(), "to": from.to_string() })),
        )
        .await;
    assert_eq!(status, 400, "{error}");
    assert!(
        error["message"].as_str().expect("message").contains("`to`"),
        "{error}"
    );

    let (status, answer) = app
        .send(
            Method::POST,
            &path,
            Some(&json!({ "from": from.to_string(), "to": to.to_string() })),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["replays"], 1);
    assert!(answer.get("held").is_none(), "nothing holds them: {answer}");
    let replay = app
        .receiver
        .wait_for_request(WAIT, |r| {
            r.header("webhook-id") != Some(original_id.as_str())
                && r.json()["message"]["replayOf"] == original_id.as_str()
        })
        .await;
    let replayed = replay.json();
    assert_eq!(
        replayed["message"]["events"][0]["id"], event["id"],
        "same event id"
    );
    assert_eq!(
        replayed["message"]["eventId"],
        replay.header("webhook-id").expect("id")
    );
    let (_, list) = app
        .get(&format!("/instances/{instance}/notifications"))
        .await;
    assert!(
        list.as_array()
            .expect("array")
            .iter()
            .any(|n| n["replayOf"] == original_id.as_str()),
        "{list}"
    );
}

/// A replay retried with the same `Idempotency-Key` and range stores nothing twice (a replay
/// cut short by a crash or a dropped connection may have stored part of itself, which is
/// delivered); another key, or none, is a replay of its own. A bad key is refused by name.
/// Fails if the key is not in the replays' ids.
#[tokio::test]
async fn a_replay_retried_with_its_idempotency_key_stores_nothing_twice() {
    let app = spawn_app().await;
    let instance = app.create_polling_instance().await;
    let from = jiff::Timestamp::now();
    for name in ["Once", "Twice"] {
        let object = app.add_contact(name);
        app.poll_now(instance).await;
        app.receiver
            .wait_for_event(WAIT, |e| e["objectId"] == object.as_str())
            .await;
    }
    let to = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(1);
    let path = format!("/instances/{instance}/replay");
    let range = json!({ "from": from.to_string(), "to": to.to_string() });
    let replay = |key: Option<&str>| {
        let mut request = app
            .http
            .post(app.api(&path))
            .header("Authorization", app.auth())
            .json(&range);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        async move {
            let response = request.send().await.expect("sent");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.expect("json"))
        }
    };
    let replays_stored = || async {
        let (_, list) = app
            .get(&format!("/instances/{instance}/notifications"))
            .await;
        list.as_array()
            .expect("array")
            .iter()
            .filter(|n| n["replayOf"].is_string())
            .count()
    };

    let (status, first) = replay(Some("7f1c2a44-0d3e-4c55-9a0e-5b7d3c1e2f10")).await;
    assert_eq!((status, &first["replays"]), (202, &json!(2)), "{first}");
    assert!(first.get("alreadyStored").is_none(), "{first}");
    let (status, retried) = replay(Some("7f1c2a44-0d3e-4c55-9a0e-5b7d3c1e2f10")).await;
    assert_eq!(
        (status, &retried["replays"], &retried["alreadyStored"]),
        (202, &json!(0), &json!(2)),
        "{retried}"
    );
    assert_eq!(replays_stored().await, 2);
    let (_, other_key) = replay(Some("another")).await;
    assert_eq!(other_key["replays"], 2, "{other_key}");
    let (_, no_key) = replay(None).await;
    assert_eq!(no_key["replays"], 2, "{no_key}");
    assert_eq!(replays_stored().await, 6);

    for bad in ["", "tab\tinside", &"k".repeat(256)] {
        let (status, refused) = replay(Some(bad)).await;
        assert_eq!(status, 400, "{bad}: {refused}");
        assert!(
            refused["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("`Idempotency-Key`: invalid value")),
            "{refused}"
        );
    }
    assert_eq!(replays_stored().await, 6);
}

#[tokio::test]
async fn stored_errors_never_carry_the_callback_query_string() {
    let app = spawn_app().await;
    // A port with nothing listening: every attempt fails with a transport error naming the URL.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = closed.local_addr().expect("addr");
    drop(closed);
    let mut body = app.documented_body();
    body["configuration"]["event.notification.callback.url"] =
        json!(format!("http://{addr}/hook?token=s3cr3t-value"));
    let response = app.create_instance(&body).await;
    assert_eq!(response.status(), 200);
    let instance = response.json::<Value>().await.expect("json")["id"]
        .as_i64()
        .expect("id");
    app.wait_for_baseline(instance).await;
    app.add_contact("Redacted");
    app.poll_now(instance).await;
    let failed = wait_for_status(&app, instance, "failed", 1).await;
    let id = failed[0]["id"].as_str().expect("id");
    let (_, attempts) = app
        .send(Method::GET, &format!("/notifications/{id}/attempts"), None)
        .await;
    let error = attempts[0]["error"].as_str().expect("an error").to_string();
    assert!(error.contains(&addr.to_string()), "{error}");
    assert!(!error.contains("s3cr3t"), "{error}");
}

/// The pull feed: a receiver that was away reads the instance's events in storage order from
/// its cursor, each once, and finds new ones later from the cursor it kept.
#[tokio::test]
async fn the_pull_feed_gives_every_event_once_in_storage_order() {
    let app = crate::app::spawn_app().await;
    let instance = app.create_polling_instance().await;
    let ids = app.sim.sim.ids("company/contacts");
    for (n, id) in ids[..3].iter().enumerate() {
        app.retitle_contact(*id, &format!("feed {n}")).await;
    }
    for id in &ids[..3] {
        app.receiver
            .wait_for_event(std::time::Duration::from_secs(30), |e| {
                crate::app::is_about(e, *id)
            })
            .await;
    }
    let feed = |cursor: String| {
        let url = app.api(&format!(
            "/instances/{instance}/events?cursor={cursor}&pageSize=2"
        ));
        let request = app.http.get(url).header("Authorization", app.auth());
        async move {
            let response = request.send().await.expect("sent");
            assert_eq!(response.status(), 200);
            let next = response
                .headers()
                .get("Elements-Next-Page-Token")
                .map(|v| v.to_str().expect("text").to_string());
            let events: Vec<serde_json::Value> = response.json().await.expect("json");
            (events, next)
        }
    };
    let mut cursor = String::new();
    let mut read = Vec::new();
    loop {
        let (events, next) = feed(cursor.clone()).await;
        read.extend(
            events
                .iter()
                .map(|e| e["id"].as_str().expect("id").to_string()),
        );
        match next {
            Some(next) => cursor = next,
            None => {
                assert!(events.is_empty(), "only an empty page ends the feed");
                break;
            }
        }
    }
    let unique: std::collections::BTreeSet<&String> = read.iter().collect();
    assert_eq!(unique.len(), read.len(), "an event read twice: {read:?}");
    assert_eq!(read.len(), 3, "{read:?}");

    // A later change is the only thing the kept cursor brings.
    app.retitle_contact(ids[3], "feed later").await;
    app.receiver
        .wait_for_event(std::time::Duration::from_secs(30), |e| {
            crate::app::is_about(e, ids[3])
        })
        .await;
    let (events, next) = feed(cursor.clone()).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["objectId"], ids[3].to_string());
    assert!(next.is_some());

    // Anything else beside a cursor is refused, and so is a cursor of another kind.
    let (status, body) = app
        .get(&format!("/instances/{instance}/events?cursor=&page=2"))
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app
        .get(&format!(
            "/instances/{instance}/events?cursor=bm90LWEtZmVlZA"
        ))
        .await;
    let says = |body: &serde_json::Value, words: &str| {
        body["message"]
            .as_str()
            .is_some_and(|message| message.contains(words))
    };
    assert_eq!(status, 400, "{body}");
    assert!(says(&body, "cursor"), "{body}");

    // A cursor belongs to its instance's feed: positions are not comparable across instances,
    // so another instance's cursor is refused rather than skipping that feed's events.
    let other = app.create_polling_instance().await;
    let (status, body) = app
        .get(&format!("/instances/{other}/events?cursor={cursor}"))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(says(&body, "another instance"), "{body}");
    let (status, body) = app.get(&format!("/instances/{other}/events?cursor=")).await;
    assert_eq!(status, 200, "{body}");
}

/// A `where` that could never match because it names no field of a delivery, or compares a
/// field with a value of another type, is refused even when there is nothing to scan: an
/// empty answer would read as "nothing failed".
#[tokio::test]
async fn a_where_that_can_never_be_evaluated_is_refused_before_anything_is_read() {
    let app = spawn_app().await;
    for method in [Method::GET, Method::PUT] {
        for (query, needle) in [
            ("colour%3D'red'", "colour"),
            ("status%3D'retry'%20or%20stauts%3D'queued'", "stauts"),
            ("createdDate%3E5", "createdDate"),
            ("status%3D'bogus'", "never `bogus`"),
            ("status%20in%20('retry'%2C'RETRY')", "never `RETRY`"),
            ("status%3D'cancelled'", "deleted instances"),
        ] {
            refused(
                &app,
                method.clone(),
                &format!("/notifications/subscriptions/deliveries?where={query}"),
                None,
                needle,
            )
            .await;
        }
    }
    // A valid `where` over nothing is an empty answer.
    let (status, deliveries) = app
        .send(
            Method::GET,
            "/notifications/subscriptions/deliveries?where=status%3D'retry'",
            None,
        )
        .await;
    assert_eq!(status, 200, "{deliveries}");
    assert_eq!(deliveries, json!([]));
}
