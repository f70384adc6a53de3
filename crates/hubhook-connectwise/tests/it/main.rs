//! The adapter against the ConnectWise simulator over real HTTP.

use connectwise_sim::{Fault, SimConfig, SimHandle, Simulator};
use hubhook_connectwise::{Client, ClientOptions, CwError, HubQuery};
use hubhook_core::ConnectWiseCredentials;
use serde_json::Value;

mod hub_calls;
mod paging_variants;

async fn sim(records: usize) -> SimHandle {
    Simulator::spawn(
        SimConfig {
            records,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await
    .expect("simulator")
}

fn credentials(sim: &SimHandle, private_key: &str) -> ConnectWiseCredentials {
    ConnectWiseCredentials {
        base_url: sim.base_url(),
        company: "demo".into(),
        public_key: "demo-public".into(),
        private_key: private_key.into(),
        client_id: None,
    }
}

fn client(sim: &SimHandle) -> Client {
    Client::new(
        reqwest::Client::new(),
        &credentials(sim, "demo-private"),
        ClientOptions::default(),
    )
    .expect("client")
}

fn ids(records: &[Value]) -> Vec<i64> {
    records
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect()
}

#[tokio::test]
async fn reads_every_page_forward_only_and_navigable() {
    let sim = sim(2_345).await;
    let client = client(&sim);
    let mut expected = sim.sim.ids("company/contacts");
    expected.sort();

    // Forward-only (no orderBy): pages of 1000 by id.
    let all = client
        .fetch_all(&HubQuery::parse("/hubs/crm/contacts", None).expect("query"))
        .await
        .expect("fetch");
    assert_eq!(all.pages, 3);
    let began = all.server_time_at_start.expect("the Date header is read");
    assert!(
        began <= jiff::Timestamp::now(),
        "a lower bound of the server's time: {began}"
    );
    assert_eq!(ids(&all.records), expected);

    // Navigable, following the Link header, with small pages and an order.
    let query =
        HubQuery::parse("/hubs/crm/contacts?orderBy=id desc&pageSize=100", None).expect("query");
    let all = client.fetch_all(&query).await.expect("fetch").records;
    let mut descending = expected.clone();
    descending.reverse();
    assert_eq!(ids(&all), descending);
}

#[tokio::test]
async fn ceql_where_becomes_conditions_on_last_updated() {
    let sim = sim(50).await;
    let client = client(&sim);
    let all = client
        .fetch_all(&HubQuery::parse("/hubs/crm/contacts", None).expect("q"))
        .await
        .expect("all")
        .records;
    let mut dates: Vec<&str> = all
        .iter()
        .map(|r| r["_info"]["lastUpdated"].as_str().expect("date"))
        .collect();
    dates.sort();
    let median = dates[dates.len() / 2];
    let url = format!("/hubs/crm/contacts?where=lastUpdated>'{median}'");
    let newer = client
        .fetch_all(&HubQuery::parse(&url, None).expect("q"))
        .await
        .expect("newer")
        .records;
    let expected = dates.iter().filter(|d| **d > median).count();
    assert_eq!(newer.len(), expected);
    assert!(
        newer
            .iter()
            .all(|r| r["_info"]["lastUpdated"].as_str().expect("date") > median)
    );
}

#[tokio::test]
async fn rate_limits_are_waited_out() {
    let sim = sim(10).await;
    sim.sim.inject_faults(Fault {
        status: Some(429),
        count: Some(2),
        retry_after: Some(1),
        ..Fault::default()
    });
    let all = client(&sim)
        .fetch_all(&HubQuery::parse("/hubs/crm/contacts", None).expect("q"))
        .await
        .expect("fetch");
    assert_eq!(all.records.len(), 10);
    let stats = sim.sim.stats().to_string();
    assert!(
        stats.contains("429"),
        "the simulator served the 429s: {stats}"
    );

    // A wait longer than we accept ends the call with a retryable error naming the wait.
    sim.sim.inject_faults(Fault {
        status: Some(429),
        count: Some(1),
        retry_after: Some(3600),
        ..Fault::default()
    });
    let err = client(&sim)
        .fetch_all(&HubQuery::parse("/hubs/crm/contacts", None).expect("q"))
        .await
        .unwrap_err();
    assert_eq!(
        err.retry_after(),
        Some(std::time::Duration::from_secs(3600))
    );
    assert!(err.is_retryable());
}

#[tokio::test]
async fn refusals_carry_the_provider_message() {
    let sim = sim(1).await;
    let wrong = Client::new(
        reqwest::Client::new(),
        &credentials(&sim, "wrong"),
        ClientOptions::default(),
    )
    .expect("client");
    match wrong.system_info().await {
        Err(CwError::Unauthorized {
            status,
            provider_message,
        }) => {
            assert_eq!(status, 401);
            assert!(!provider_message.is_empty());
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(client(&sim).system_info().await.expect("info")["version"].is_string());

    sim.sim.inject_faults(Fault {
        status: Some(500),
        count: Some(1),
        ..Fault::default()
    });
    let err = client(&sim).system_info().await.unwrap_err();
    assert!(
        matches!(err, CwError::Status { status: 500, .. }),
        "{err:?}"
    );
    assert!(err.is_retryable());
}

#[tokio::test]
async fn unreachable_sites_are_transport_errors() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let credentials = ConnectWiseCredentials {
        base_url: format!("http://{addr}/v4_6_release/apis/3.0"),
        company: "demo".into(),
        public_key: "p".into(),
        private_key: "k".into(),
        client_id: None,
    };
    let client = Client::new(
        reqwest::Client::new(),
        &credentials,
        ClientOptions::default(),
    )
    .expect("client");
    let err = client.system_info().await.unwrap_err();
    assert!(matches!(err, CwError::Transport(_)), "{err:?}");
}
