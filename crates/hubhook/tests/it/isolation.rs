//! One bad receiver never slows the others: a hanging one, a 500-forever one and a
//! 429-with-Retry-After one share the node with a healthy one, and the healthy one keeps its
//! delivery rate (measured on a backlog of its own, released at once, so that polls do not
//! count). The rate ratio (healthy alone vs. shared) is printed, not asserted (timing
//! goals belong to benchmarks); what is asserted is that the healthy receiver gets everything
//! and that the failing receiver's circuit breaker stops the node from hammering it.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::app::{Behaviour, Receiver, TestApp, spawn_app_configured};

const WAIT: Duration = Duration::from_secs(60);
/// Contacts changed per phase; each instance polls all of them, so each phase makes this many
/// events (a tenth as many notifications) per instance.
const CHANGES: usize = 2000;

fn create_contacts(app: &TestApp, phase: &str) {
    let company = app.sim.sim.ids("company/companies")[0];
    for n in 0..CHANGES {
        app.sim
            .sim
            .create(
                "company/contacts",
                json!({ "firstName": format!("{phase}{n}"), "lastName": "Iso", "company": { "id": company } }),
            )
            .expect("contact created");
    }
}

async fn instance_for(app: &TestApp, receiver: &Receiver) -> i64 {
    let mut body = app.documented_body();
    body["configuration"]["event.notification.callback.url"] = json!(receiver.url);
    let response = app.create_instance(&body).await;
    assert_eq!(response.status(), 200);
    let id = response.json::<Value>().await.expect("json")["id"]
        .as_i64()
        .expect("id");
    app.wait_for_baseline(id).await;
    id
}

/// Changes `CHANGES` contacts and polls every instance while the healthy receiver answers
/// `410 Gone`, so the healthy instance's notifications pile up queued; then redelivers them
/// at once with Cloud Elements' queue API and returns how long the healthy receiver took to
/// get them all: its delivery rate with a backlog, apart from the polls.
async fn phase(app: &TestApp, instances: &[i64], name: &str) -> Duration {
    let healthy = instances[0];
    app.receiver.set_behaviour(Behaviour::Status(410));
    create_contacts(app, name);
    for instance in instances {
        app.poll_now(*instance).await;
    }
    let expected = CHANGES / 10;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, queued) = app
            .get(&format!(
                "/instances/{healthy}/notifications?status=queued&pageSize=1000"
            ))
            .await;
        assert_eq!(status, 200, "{queued}");
        if queued.as_array().expect("array").len() >= expected {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the backlog did not build up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.receiver.set_behaviour(Behaviour::Accept);
    let before = app.receiver.events().len();
    let started = Instant::now();
    let response = app
        .http
        .put(app.api(&format!(
            "/notifications/subscriptions/deliveries?where=subscriptionId%3D{healthy}"
        )))
        .header("Authorization", app.auth())
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    while app.receiver.events().len() < before + CHANGES {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the healthy receiver got {} of {CHANGES} events",
            app.receiver.events().len() - before
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let last = app
        .receiver
        .received()
        .iter()
        .map(|r| r.at)
        .max()
        .expect("deliveries");
    last - started
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_receiver_keeps_its_rate_beside_hanging_failing_and_throttling_ones() {
    let healthy = Receiver::start().await;
    let app = spawn_app_configured(healthy, |config| {
        config.delivery_timeout = 5;
        config.retry_schedule = Some("1s,1s,1s,1s,1s,1s,1s,1s,1s".into());
    })
    .await;
    // Four instances polling the same contacts, so both phases carry the same poll load;
    // only the other three receivers' behaviour differs between them.
    let (hanging, failing, throttling) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    let mut instances = vec![instance_for(&app, &app.receiver).await];
    for receiver in [&hanging, &failing, &throttling] {
        instances.push(instance_for(&app, receiver).await);
    }
    let all_healthy = phase(&app, &instances, "Healthy").await;

    hanging.set_behaviour(Behaviour::Hang);
    failing.set_behaviour(Behaviour::Status(500));
    throttling.set_behaviour(Behaviour::TooManyRequests(5));
    let failing_before = failing.received().len();
    let shared = phase(&app, &instances, "Shared").await;

    let ratio = all_healthy.as_secs_f64() / shared.as_secs_f64();
    println!(
        "isolation: the healthy receiver took {all_healthy:?} for {CHANGES} events beside three healthy ones and {shared:?} beside hanging, 500 and 429 ones: rate ratio {:.2} ({:.0} %)",
        ratio,
        ratio * 100.0
    );
    // The failing receiver's notifications may still be waiting for their first claim when
    // the healthy one has everything: give it time to be tried at all.
    let deadline = tokio::time::Instant::now() + WAIT;
    while failing.received().len() == failing_before && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let failing_posts = failing.received().len() - failing_before;
    println!(
        "isolation: requests seen while misbehaving: hanging {}, 500 {failing_posts}, 429 {}",
        hanging
            .received()
            .iter()
            .filter(|r| r.answered.is_none())
            .count(),
        throttling
            .received()
            .iter()
            .filter(|r| r.answered == Some(429))
            .count()
    );
    // The failing receiver's breaker opened after a few failures: it saw far fewer POSTs than
    // the node had notifications for it.
    assert!(
        failing_posts < CHANGES / 10,
        "the 500 receiver got {failing_posts} requests"
    );
    assert!(failing_posts > 0, "it was tried");
}
