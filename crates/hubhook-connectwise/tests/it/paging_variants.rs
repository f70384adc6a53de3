//! Every ending of a forward-only list that ConnectWise's sources describe (no `Link`, an
//! empty `Link`, a `next` on the last full page, a short last page, an empty page past the
//! end), served by a small server of our own that varies only that; and the simulator, which
//! links the next page from every page with records.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use hubhook_connectwise::{Client, ClientOptions, CwError, HubQuery};
use hubhook_core::ConnectWiseCredentials;
use serde_json::{Value, json};

/// How the list's server ends its pages.
#[derive(Debug, Clone, Copy)]
enum Ending {
    /// No `Link` header at all.
    NoLink,
    /// `Link:` with an empty value on every page.
    EmptyLink,
    /// `rel="next"` on every page with records, empty on the empty page (the simulator's and
    /// the Developer Guide's reading).
    NextWhileRecords,
    /// Ignores `pageId`: the first page again and again.
    IgnoresPageId,
}

#[derive(Clone)]
struct Server {
    ending: Ending,
    records: i64,
    base: String,
}

async fn list(
    State(server): State<Server>,
    Query(params): Query<Vec<(String, String)>>,
) -> impl IntoResponse {
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.parse::<i64>().ok())
    };
    let size = param("pageSize").unwrap_or(25);
    let after = match server.ending {
        Ending::IgnoresPageId => 0,
        _ => param("pageId").unwrap_or(0),
    };
    let page: Vec<Value> = (after + 1..=server.records)
        .take(size as usize)
        .map(|id| json!({"id": id, "name": format!("record {id}")}))
        .collect();
    let mut headers = HeaderMap::new();
    let last = page.last().and_then(|r| r["id"].as_i64());
    match (server.ending, last) {
        (Ending::NoLink, _) => {}
        (Ending::EmptyLink, _) | (Ending::NextWhileRecords, None) => {
            headers.insert("link", "".parse().expect("header"));
        }
        (Ending::NextWhileRecords | Ending::IgnoresPageId, Some(last)) => {
            let link = format!(
                "<{}/company/contacts/?pageSize={size}&pageId={last}>; rel=\"next\"",
                server.base
            );
            headers.insert("link", link.parse().expect("header"));
        }
        (Ending::IgnoresPageId, None) => {}
    }
    (headers, axum::Json(page))
}

async fn serve(ending: Ending, records: i64) -> Client {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!(
        "http://{}/v4_6_release/apis/3.0",
        listener.local_addr().expect("addr")
    );
    let app = axum::Router::new()
        .route(
            "/v4_6_release/apis/3.0/company/contacts",
            axum::routing::get(list),
        )
        .route(
            "/v4_6_release/apis/3.0/company/contacts/",
            axum::routing::get(list),
        )
        .with_state(Server {
            ending,
            records,
            base: base.clone(),
        });
    tokio::spawn(async move { axum::serve(listener, app).await });
    Client::new(
        reqwest::Client::new(),
        &ConnectWiseCredentials {
            base_url: base,
            company: "demo".into(),
            public_key: "p".into(),
            private_key: "k".into(),
            client_id: None,
        },
        ClientOptions::default(),
    )
    .expect("client")
}

fn contacts(page_size: u32) -> HubQuery {
    HubQuery::parse(&format!("/hubs/crm/contacts?pageSize={page_size}"), None).expect("query")
}

#[tokio::test]
async fn every_described_ending_reads_each_record_once() {
    for ending in [Ending::NoLink, Ending::EmptyLink, Ending::NextWhileRecords] {
        // An exact multiple of the page size, and a short last page.
        for records in [20, 23, 0, 5] {
            let client = serve(ending, records).await;
            let fetched = client.fetch_all(&contacts(5)).await.unwrap_or_else(|e| {
                panic!("{ending:?} with {records} records: {e}");
            });
            let ids: Vec<i64> = fetched
                .records
                .iter()
                .map(|r| r["id"].as_i64().expect("id"))
                .collect();
            assert_eq!(
                ids,
                (1..=records).collect::<Vec<_>>(),
                "{ending:?} with {records} records"
            );
            // Full pages, then one short or empty page that ends the list.
            assert_eq!(
                fetched.pages as i64,
                records / 5 + 1,
                "{ending:?} {records}"
            );
        }
    }
}

#[tokio::test]
async fn a_server_that_ignores_page_id_is_an_error_not_a_loop() {
    let client = serve(Ending::IgnoresPageId, 20).await;
    let err = client.fetch_all(&contacts(5)).await.unwrap_err();
    assert!(matches!(err, CwError::Decode(_)), "{err:?}");
    assert!(err.to_string().contains("do not move forward"), "{err}");
}

#[tokio::test]
async fn the_simulator_links_the_next_page_from_a_full_last_page() {
    let sim = crate::sim(10).await;
    let http = reqwest::Client::new();
    let url = |page_id: Option<i64>| {
        let mut url = format!("{}/company/contacts?pageSize=5", sim.base_url());
        if let Some(id) = page_id {
            url.push_str(&format!("&pageId={id}"));
        }
        url
    };
    let get = |url: String| {
        http.get(url)
            .basic_auth("demo+demo-public", Some("demo-private"))
            .header("pagination-type", "forward-only")
            .send()
    };
    let mut page_id = None;
    for _ in 0..2 {
        let response = get(url(page_id)).await.expect("sent");
        let link = response.headers()["link"]
            .to_str()
            .expect("text")
            .to_string();
        let page: Vec<Value> = response.json().await.expect("json");
        assert_eq!(page.len(), 5);
        let last = page[4]["id"].as_i64().expect("id");
        assert!(
            link.contains(&format!("pageId={last}>; rel=\"next\"")),
            "{link}"
        );
        page_id = Some(last);
    }
    let response = get(url(page_id)).await.expect("sent");
    assert_eq!(response.headers()["link"], "");
    let page: Vec<Value> = response.json().await.expect("json");
    assert!(page.is_empty());
}
