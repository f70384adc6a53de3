//! The hub API's calls against the simulator: one page at a time with page tokens, and
//! single records read, created, replaced, patched and deleted.

use connectwise_sim::Fault;
use hubhook_connectwise::{
    Client, ClientOptions, CwError, HubQuery, HubTarget, PageRequest, merge_to_json_patch,
};
use serde_json::{Value, json};

use crate::{client, credentials, ids, sim};

/// Every page of `hub_path?params`, following the next-page tokens as a hub caller would.
async fn read_by_pages(client: &Client, hub_path: &str, params: &[(&str, &str)]) -> Vec<Value> {
    let target = HubTarget::resolve(hub_path).expect("target");
    let mut records = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..1000 {
        let mut pairs: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let Some(token) = &token {
            pairs.push(("nextPage".into(), token.clone()));
        }
        let query = HubQuery::from_params(&target, pairs, 200).expect("query");
        let page = client.fetch_page(&query).await.expect("page");
        // The poller's read of the same page: the same records as text, the same next page.
        let raw = client.fetch_raw_page(&query).await.expect("raw page");
        let texts: Vec<Value> = raw
            .records
            .expect("a list")
            .iter()
            .map(|record| {
                let mut value = serde_json::from_str(record.get()).expect("json");
                hubhook_connectwise::strip_nulls(&mut value);
                value
            })
            .collect();
        assert_eq!(Some(&texts), page.body.as_array(), "{params:?}");
        assert_eq!(raw.next, page.next, "{params:?}");
        records.extend(page.body.as_array().expect("a list").iter().cloned());
        match page.next.and_then(|next| next.token()) {
            Some(next) => token = Some(next),
            None => return records,
        }
    }
    panic!("the tokens never ended");
}

#[tokio::test]
async fn pages_with_tokens_read_what_the_poller_reads() {
    let sim = sim(53).await;
    let client = client(&sim);
    for params in [
        // Forward-only by id, navigable by order, navigable because `fields` leaves out id.
        vec![("pageSize", "10")],
        vec![("pageSize", "10"), ("orderBy", "lastName desc")],
        vec![("pageSize", "8"), ("where", "id > 57010")],
    ] {
        let by_pages = read_by_pages(&client, "contacts", &params).await;
        let mut url = String::from("/hubs/crm/contacts?");
        for (k, v) in &params {
            url.push_str(&format!("{k}={v}&"));
        }
        let all = client
            .fetch_all(&HubQuery::parse(&url, None).expect("query"))
            .await
            .expect("all")
            .records;
        assert_eq!(ids(&by_pages), ids(&all), "{params:?}");
        assert!(!all.is_empty());
    }
    let names = read_by_pages(
        &client,
        "contacts",
        &[("pageSize", "10"), ("fields", "firstName")],
    )
    .await;
    assert_eq!(names.len(), 53);
    assert!(
        names
            .iter()
            .all(|r| r.as_object().is_some_and(|o| o.len() == 1))
    );

    // A full last page is followed by one empty page, then no token.
    let target = HubTarget::resolve("contacts").expect("target");
    let after = sim.sim.ids("company/contacts")[52 - 3];
    let query = HubQuery::from_params(
        &target,
        [
            ("pageSize".to_string(), "3".to_string()),
            (
                "nextPage".to_string(),
                PageRequest::After(after).token().expect("token"),
            ),
        ],
        200,
    )
    .expect("query");
    let page = client.fetch_page(&query).await.expect("page");
    assert_eq!(page.body.as_array().map(Vec::len), Some(3));
    let next = page.next.expect("a full page has a next page");
    let query = HubQuery {
        page: next,
        ..query
    };
    let page = client.fetch_page(&query).await.expect("page");
    assert_eq!(page.body, json!([]));
    assert_eq!(page.next, None);
}

#[tokio::test]
async fn records_are_created_read_changed_and_deleted() {
    let sim = sim(5).await;
    let client = client(&sim);
    let company = sim.sim.ids("company/companies")[0];
    let created = client
        .create_record(
            "company/contacts",
            &json!({"firstName": "Ada", "lastName": "Lovelace", "company": {"id": company}}),
        )
        .await
        .expect("created");
    let id = created["id"].as_i64().expect("id");
    let path = format!("company/contacts/{id}");
    assert_eq!(client.get_record(&path).await.expect("read"), created);

    // A merge body, with the read-only `id` and `_info` of the record read back.
    let changed = json!({"id": id, "_info": created["_info"], "title": "Analyst"});
    let patched = client
        .patch_record(&path, &merge_to_json_patch(&changed).expect("patch"))
        .await
        .expect("patched");
    assert_eq!(patched["title"], "Analyst");
    assert_eq!(patched["firstName"], "Ada");

    let replaced = client
        .replace_record(
            &path,
            &json!({"firstName": "Augusta", "lastName": "King", "company": {"id": company}}),
        )
        .await
        .expect("replaced");
    assert_eq!(replaced["firstName"], "Augusta");
    assert!(replaced.get("title").is_none(), "PUT replaces every field");

    client.delete_record(&path).await.expect("deleted");
    match client.get_record(&path).await {
        Err(CwError::Status {
            status: 404,
            provider_message,
        }) => assert!(provider_message.contains("not found"), "{provider_message}"),
        other => panic!("expected 404, got {other:?}"),
    }
}

#[tokio::test]
async fn null_fields_are_filtered_unless_the_instance_keeps_them() {
    let sim = sim(8).await;
    let fields = client(&sim)
        .get_record("system/userDefinedFields/41")
        .await
        .expect("read");
    assert!(fields.get("helpText").is_none(), "{fields}");
    let keeping = Client::new(
        reqwest::Client::new(),
        &credentials(&sim, "demo-private"),
        ClientOptions {
            filter_nulls: false,
            ..ClientOptions::default()
        },
    )
    .expect("client");
    let fields = keeping
        .get_record("system/userDefinedFields/41")
        .await
        .expect("read");
    assert_eq!(fields.get("helpText"), Some(&Value::Null), "{fields}");
    let query = HubQuery::parse("/hubs/crm/fields", None).expect("query");
    let all = client(&sim).fetch_all(&query).await.expect("all").records;
    assert!(all.iter().all(|f| f.get("helpText") != Some(&Value::Null)));
    let all = keeping.fetch_all(&query).await.expect("all").records;
    assert!(all.iter().any(|f| f.get("helpText") == Some(&Value::Null)));
}

#[tokio::test]
async fn slow_answers_are_timeouts_and_dropped_ones_transport_errors() {
    let sim = sim(1).await;
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(300))
        .build()
        .expect("http");
    let client = Client::new(
        http,
        &credentials(&sim, "demo-private"),
        ClientOptions::default(),
    )
    .expect("client");
    sim.sim.inject_faults(Fault {
        latency_ms: Some(3_000),
        count: Some(1),
        ..Fault::default()
    });
    let err = client.get_record("system/info").await.unwrap_err();
    assert!(matches!(err, CwError::Timeout(_)), "{err:?}");
    sim.sim.inject_faults(Fault {
        drop_connection: Some(true),
        count: Some(1),
        ..Fault::default()
    });
    let err = client.get_record("system/info").await.unwrap_err();
    assert!(matches!(err, CwError::Transport(_)), "{err:?}");
}
