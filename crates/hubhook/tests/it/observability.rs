//! What operators read: `/metrics` and `/openapi.json`.

use std::time::Duration;

use serde_json::json;

use crate::app::{is_about, spawn_app};

/// The value of one Prometheus sample line (`name{labels} value`), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_polls_events_and_deliveries() {
    let app = spawn_app().await;
    let id = app.create_polling_instance().await;
    let contact = app.sim.sim.ids("company/contacts")[1];
    app.sim
        .sim
        .patch(
            "company/contacts",
            contact,
            json!([{ "op": "replace", "path": "title", "value": "Counted" }]),
        )
        .expect("patched");
    app.receiver
        .wait_for_event(Duration::from_secs(30), |e| is_about(e, contact))
        .await;
    let (status, _) = app.get(&format!("/instances/{id}")).await;
    assert_eq!(status, 200);

    let text = app
        .http
        .get(format!("{}/metrics", app.server().url()))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    // Requests are counted by route template, never by raw path.
    assert_eq!(
        sample(
            &text,
            r#"hubhook_http_requests_total{method="POST",route="/elements/api-v2/instances",status="200"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            r#"hubhook_http_requests_total{method="GET",route="/elements/api-v2/instances/{id}",status="200"}"#
        )
        .is_some(),
        "{text}"
    );
    assert!(!text.contains(&format!("/instances/{id}\"")), "{text}");
    let at_least_one = |series: &str| {
        let value = sample(&text, series).unwrap_or(0.0);
        assert!(value >= 1.0, "{series} = {value}\n{text}");
    };
    at_least_one(r#"hubhook_polls_total{outcome="success"}"#);
    at_least_one("hubhook_events_stored_total");
    at_least_one(r#"hubhook_deliveries_total{outcome="delivered"}"#);
    assert!(
        text.contains("hubhook_delivery_duration_seconds_bucket"),
        "{text}"
    );
    for series in [
        r#"hubhook_due{work="polls"}"#,
        r#"hubhook_due{work="notifications"}"#,
        r#"hubhook_oldest_due_age_seconds{work="notifications"}"#,
        "hubhook_notifications_queued",
    ] {
        assert!(sample(&text, series).is_some(), "{series} missing\n{text}");
    }
}

#[tokio::test]
async fn the_openapi_description_covers_every_route_it_serves() {
    let app = spawn_app().await;
    let description = app.openapi().await;
    assert!(
        description["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{description}"
    );
    let paths = description["paths"].as_object().expect("paths");
    for path in [
        "/elements/api-v2/instances",
        "/elements/api-v2/instances/{id}",
        "/elements/api-v2/instances/{id}/events",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(paths.contains_key(path), "{path} is not described");
    }
    let schemes = &description["components"]["securitySchemes"];
    assert!(schemes["UserOrganization"].is_object(), "{schemes}");
    assert!(description["components"]["schemas"]["ErrorBody"].is_object());
}
