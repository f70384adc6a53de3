use connectwise_sim::{Fault, SimConfig, Simulator};
use reqwest::Method;
use serde_json::json;

use crate::{App, status_json};

#[tokio::test]
async fn throttling_fault_returns_429_with_retry_after_then_clears() {
    let app = App::start().await;
    app.control(
        "/__sim/faults",
        json!({"status": 429, "count": 2, "retryAfter": 3}),
    )
    .await;
    for _ in 0..2 {
        let resp = app
            .api(Method::GET, "company/contacts")
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status().as_u16(), 429);
        assert_eq!(resp.headers()["retry-after"], "3");
        let (_, body) = status_json(resp).await;
        assert_eq!(
            body,
            json!({"error": "ConnectWiseAPI", "message": "Too many requests. Please try again in 3 seconds."})
        );
    }
    let resp = app
        .api(Method::GET, "company/contacts")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 200);
}

#[tokio::test]
async fn server_errors_and_dropped_connections() {
    let app = App::start().await;
    app.sim().inject_faults(Fault {
        status: Some(500),
        count: Some(1),
        path_contains: Some("contacts".into()),
        ..Default::default()
    });
    let (status, _) = app.get_json("system/info").await;
    assert_eq!(status, 200, "path filter");
    let (status, body) = app.get_json("company/contacts").await;
    assert_eq!(status, 500);
    assert_eq!(body["code"], "ConnectWiseApi");
    app.control("/__sim/faults", json!({"dropConnection": true, "count": 1}))
        .await;
    let result = async {
        app.api(Method::GET, "company/contacts")
            .send()
            .await?
            .text()
            .await
    }
    .await;
    assert!(result.is_err(), "connection should drop: {result:?}");
    let (status, _) = app.get_json("company/contacts").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn stats_count_requests_by_route_and_status() {
    let app = App::start().await;
    let id = app.sim().ids("company/contacts")[0];
    app.get_json("company/contacts").await;
    app.get_json(&format!("company/contacts/{id}")).await;
    app.get_json("company/contacts/1").await;
    let resp = app
        .http
        .get(app.root("/__sim/stats"))
        .send()
        .await
        .expect("send");
    let (_, stats) = status_json(resp).await;
    assert_eq!(stats["byPath"]["GET /company/contacts"]["200"], 1);
    assert_eq!(stats["byPath"]["GET /company/contacts/{id}"]["200"], 1);
    assert_eq!(stats["byPath"]["GET /company/contacts/{id}"]["404"], 1);
    assert_eq!(stats["total"], 3);
    assert_eq!(app.sim().stats(), stats);
}

#[tokio::test]
async fn reset_reseeds_deterministically() {
    let a = Simulator::new(SimConfig {
        seed: 42,
        records: 20,
        ..Default::default()
    });
    let b = Simulator::new(SimConfig {
        seed: 42,
        records: 20,
        ..Default::default()
    });
    let c = Simulator::new(SimConfig {
        seed: 43,
        records: 20,
        ..Default::default()
    });
    let all = |s: &Simulator| -> Vec<serde_json::Value> {
        s.ids("company/contacts")
            .into_iter()
            .filter_map(|id| s.get("company/contacts", id))
            .collect()
    };
    assert_eq!(all(&a), all(&b));
    assert_ne!(all(&a), all(&c));
    let app = App::start().await;
    let before = app.sim().ids("company/contacts");
    app.sim()
        .delete("company/contacts", before[0])
        .expect("delete");
    app.control("/__sim/reset", json!({"records": 5, "seed": 9}))
        .await;
    assert_eq!(app.sim().ids("company/contacts").len(), 5);
    app.control("/__sim/reset", json!({})).await;
    assert_eq!(app.sim().ids("company/contacts"), before);
}

#[tokio::test]
async fn library_writes_stamp_the_sim_clock() {
    let app = App::start().await;
    app.sim().set_clock_offset(-86_400);
    let now = app.freeze().await;
    let company = app.sim().ids("company/companies")[0];
    let rec = app
        .sim()
        .create(
            "company/contacts",
            json!({"firstName": "Lib", "company": {"id": company}}),
        )
        .expect("create");
    assert_eq!(rec["_info"]["lastUpdated"], now.as_str());
    assert!(
        rec["_info"]["notes_href"]
            .as_str()
            .unwrap_or("")
            .starts_with("http://127.0.0.1/v4_6_release/apis/3.0/")
    );
    let id = rec["id"].as_i64().expect("id");
    let patched = app
        .sim()
        .patch(
            "company/contacts",
            id,
            json!([{"op": "add", "path": "/title", "value": "T"}]),
        )
        .expect("patch");
    assert_eq!(patched["title"], "T");
    assert!(app.sim().create("nope/nothing", json!({})).is_err());
    assert!(
        app.sim()
            .patch("company/contacts", id, json!({"bad": true}))
            .is_err()
    );
    let bad = app
        .control("/__sim/clock", json!({"offsetSeconds": 0, "frozen": false}))
        .await;
    assert_eq!(bad["frozen"], false);
}

#[tokio::test]
async fn the_date_header_follows_the_sim_clock() {
    let app = App::start().await;
    app.sim().set_clock_offset(-86_400);
    let now = app.freeze().await;
    let resp = app
        .api(Method::GET, "system/info")
        .send()
        .await
        .expect("send");
    let date = resp
        .headers()
        .get("date")
        .and_then(|v| v.to_str().ok())
        .expect("Date header");
    let parsed = jiff::fmt::rfc2822::parse(date)
        .expect("HTTP date")
        .timestamp();
    assert_eq!(parsed.to_string(), now, "Date `{date}` is the sim clock");
}

#[tokio::test]
async fn fault_validation_rejects_huge_latency_and_informational_status() {
    let app = App::start().await;
    for (fault, field) in [
        (json!({"latencyMs": 600_001}), "latencyMs"),
        (json!({"latencyMs": u64::MAX}), "latencyMs"),
        (json!({"status": 100}), "status"),
        (json!({"status": 101}), "status"),
        (json!({"status": 199}), "status"),
        (json!({"status": 600}), "status"),
        // A bad fault in an array activates none of them.
        (
            json!([{"status": 500}, {"latencyMs": 700_000}]),
            "latencyMs",
        ),
    ] {
        let resp = app
            .http
            .post(app.root("/__sim/faults"))
            .json(&fault)
            .send()
            .await
            .expect("send");
        let (status, body) = status_json(resp).await;
        assert_eq!(status, 400, "{fault}");
        assert!(
            body["message"].as_str().expect("message").contains(field),
            "{fault}: {body}"
        );
    }
    let resp = app
        .http
        .get(app.root("/__sim/faults"))
        .send()
        .await
        .expect("send");
    let (_, active) = status_json(resp).await;
    assert_eq!(active["faults"], json!([]));
    app.control("/__sim/faults", json!({"latencyMs": 1, "count": 1}))
        .await;
    let (status, _) = app.get_json("company/contacts").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn made_up_methods_share_one_stats_bucket() {
    let app = App::start().await;
    for m in ["FROBNICATE", "XYZZY", "PLUGH"] {
        app.api(
            Method::from_bytes(m.as_bytes()).expect("method"),
            "company/contacts",
        )
        .send()
        .await
        .expect("send");
    }
    let resp = app
        .http
        .get(app.root("/__sim/stats"))
        .send()
        .await
        .expect("send");
    let (_, stats) = status_json(resp).await;
    let by_path = stats["byPath"].as_object().expect("byPath");
    assert_eq!(
        stats["byPath"]["OTHER /company/contacts"]["405"], 3,
        "{stats}"
    );
    assert!(
        by_path.keys().all(|k| !k.starts_with("FROBNICATE")),
        "{stats}"
    );
}
