//! The crm hub over HTTP against the simulator: every object and verb, CEQL, paging with the
//! token, incident comments and time entries, the objects passthrough (also as a poller URL),
//! the poller and the hub agreeing, nulls, and every kind of refusal.

use std::collections::BTreeSet;
use std::time::Duration;

use connectwise_sim::Fault;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::app::{Receiver, TestApp, spawn_app, spawn_app_configured};

/// One hub answer.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn records(&self) -> &Vec<Value> {
        self.body
            .as_array()
            .unwrap_or_else(|| panic!("a list, got {self:?}"))
    }

    #[track_caller]
    fn expect(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "{self:#?}");
        &self.body
    }
}

/// An instance of the test organization, called through the hub with its token.
struct Hub<'a> {
    app: &'a TestApp,
    id: i64,
    token: String,
}

/// An instance without events: credentials only, plus `extra` configuration.
async fn hub_instance<'a>(app: &'a TestApp, extra: Value) -> Hub<'a> {
    let mut configuration = json!({
        "baseUrl": app.sim.base_url(),
        "company": "demo",
        "public.key": "demo-public",
        "private.key": "demo-private",
        "event.notification.enabled": false,
    });
    for (key, value) in extra.as_object().expect("object") {
        configuration[key] = value.clone();
    }
    let response = app
        .create_instance(&json!({
            "element": {"key": "connectwisecrmrest"},
            "configuration": configuration,
            "name": "hub",
        }))
        .await;
    assert_eq!(response.status(), 200);
    let instance: Value = response.json().await.expect("json");
    Hub {
        app,
        id: instance["id"].as_i64().expect("id"),
        token: instance["token"].as_str().expect("token").to_string(),
    }
}

impl Hub<'_> {
    fn authorization(&self) -> String {
        format!("{}, Element {}", self.app.auth(), self.token)
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        send(self.app, method, path, Some(self.authorization()), body).await
    }

    async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    /// GET of a list with a CEQL `where`, encoded as HTTP clients encode it.
    async fn get_where(&self, path: &str, filter: &str) -> Answer {
        let separator = if path.contains('?') { '&' } else { '?' };
        self.get(&format!("{path}{separator}where={}", encode(filter)))
            .await
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(body)).await
    }

    /// Every record of a list, following `Elements-Next-Page-Token` to the end.
    async fn all_pages(&self, path_and_query: &str) -> Vec<Value> {
        let separator = if path_and_query.contains('?') {
            '&'
        } else {
            '?'
        };
        let mut records = Vec::new();
        let mut next: Option<String> = None;
        for _ in 0..100 {
            let url = match &next {
                Some(token) => format!("{path_and_query}{separator}nextPage={token}"),
                None => path_and_query.to_string(),
            };
            let page = self.get(&url).await;
            page.expect(200);
            records.extend(page.records().iter().cloned());
            match page.header("Elements-Next-Page-Token") {
                Some(token) => next = Some(token.to_string()),
                None => return records,
            }
        }
        panic!("the page tokens of {path_and_query} never ended");
    }
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    authorization: Option<String>,
    body: Option<Value>,
) -> Answer {
    let mut request = app.http.request(method, app.api(path));
    if let Some(authorization) = authorization {
        request = request.header("Authorization", authorization);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("sent");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{status} answer is not JSON ({e}): {text:?}"));
    Answer {
        status,
        headers,
        body,
    }
}

fn ids(records: &[Value]) -> Vec<i64> {
    records
        .iter()
        .map(|r| r["id"].as_i64().unwrap_or_else(|| panic!("id in {r}")))
        .collect()
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn every_object_is_created_read_listed_changed_and_deleted() {
    let app = spawn_app().await;
    let hub = hub_instance(&app, json!({})).await;
    let company = app.sim.sim.ids("company/companies")[0];
    let contact = app.sim.sim.ids("company/contacts")[0];
    let ticket = app.sim.sim.ids("service/tickets")[0];
    // (object, create body, a field PATCH changes to a new value)
    let objects = [
        (
            "contacts",
            json!({"firstName": "Ada", "lastName": "Hub", "company": {"id": company}}),
            ("title", json!("Analyst")),
        ),
        (
            "organizations",
            json!({"identifier": "HubCo", "name": "Hub Company"}),
            ("name", json!("Hub Company Renamed")),
        ),
        (
            "incidents",
            json!({"summary": "Printer on fire", "company": {"id": company}, "board": {"id": 1}}),
            ("summary", json!("Printer still on fire")),
        ),
        (
            "opportunities",
            json!({"name": "Hub deal", "company": {"id": company}, "contact": {"id": contact}, "primarySalesRep": {"id": 100}}),
            ("name", json!("Bigger hub deal")),
        ),
        (
            "activities",
            json!({"name": "Call Ada", "assignTo": {"id": 100}}),
            ("name", json!("Call Ada back")),
        ),
        (
            "time-entries",
            json!({"ticket": {"id": ticket}, "timeStart": "2026-01-05T09:00:00Z", "timeEnd": "2026-01-05T10:00:00Z"}),
            ("notes", json!("Replaced the toner")),
        ),
        (
            "fields",
            json!({"podId": 1, "caption": "Hub Size", "fieldTypeIdentifier": "Number"}),
            ("caption", json!("Hub Width")),
        ),
    ];
    for (object, body, (field, value)) in objects {
        let created = hub.post(&format!("/hubs/crm/{object}"), body.clone()).await;
        let created_body = created.expect(200).clone();
        assert_eq!(
            created.header("Elements-Element-Instance-Id"),
            Some(hub.id.to_string().as_str()),
            "{object}"
        );
        let id = created_body["id"].as_i64().expect("id");
        let path = format!("/hubs/crm/{object}/{id}");

        let read = hub.get(&path).await;
        assert_eq!(read.expect(200), &created_body, "{object}");

        let listed = hub
            .get_where(&format!("/hubs/crm/{object}"), &format!("id = {id}"))
            .await;
        assert_eq!(ids(listed.records()), [id], "{object}");
        assert!(listed.header("Elements-Element-Instance-Id").is_some());

        let patched = hub
            .call(Method::PATCH, &path, Some(json!({ field: value.clone() })))
            .await;
        assert_eq!(patched.expect(200)[field], value, "{object}");

        // PUT replaces every field: the patched one goes back to what the body says.
        let mut replacement = body.clone();
        replacement[field] = json!(format!("{} (put)", value.as_str().unwrap_or("x")));
        let replaced = hub
            .call(Method::PUT, &path, Some(replacement.clone()))
            .await;
        assert_eq!(replaced.expect(200)[field], replacement[field], "{object}");
        assert_eq!(hub.get(&path).await.expect(200)[field], replacement[field]);

        let deleted = hub.call(Method::DELETE, &path, None).await;
        assert_eq!(
            deleted.expect(200),
            &json!({"id": id.to_string()}),
            "{object}"
        );
        assert!(deleted.header("Elements-Element-Instance-Id").is_some());
        let after = hub.get(&path).await;
        if object == "organizations" {
            // ConnectWise only marks companies deleted.
            assert_eq!(after.expect(200)["deletedFlag"], true);
        } else {
            let gone = after.expect(404);
            let provider = gone["providerMessage"].as_str().expect("providerMessage");
            assert!(provider.contains("not found"), "{object}: {gone}");
        }
    }
}

/// A `where` clause and which records it should select.
type Case = (String, Box<dyn Fn(&Value) -> bool>);

#[tokio::test]
async fn every_ceql_operator_selects_what_it_says() {
    let app = spawn_app().await;
    let hub = hub_instance(&app, json!({})).await;
    let all = hub
        .get("/hubs/crm/contacts?pageSize=1000")
        .await
        .records()
        .clone();
    assert_eq!(all.len(), 20);
    let field = |r: &Value, name: &str| r[name].as_str().map(str::to_string);
    let id = |r: &Value| r["id"].as_i64().expect("id");
    let sample = &all[5];
    let (x, last, company) = (
        id(sample),
        field(sample, "lastName").expect("lastName"),
        sample["company"]["id"].as_i64().expect("company"),
    );
    let company_name = sample["company"]["name"]
        .as_str()
        .expect("company name")
        .to_string();
    let prefix: String = last.chars().take(2).collect();
    let (a, b, c) = (id(&all[1]), id(&all[7]), id(&all[12]));
    let mut dates: Vec<String> = all
        .iter()
        .map(|r| {
            r["_info"]["lastUpdated"]
                .as_str()
                .expect("date")
                .to_string()
        })
        .collect();
    dates.sort();
    let median = dates[dates.len() / 2].clone();
    let quoted = last.replace('\'', "''");
    let cases: Vec<Case> = vec![
        (format!("id = {x}"), Box::new(move |r| id(r) == x)),
        (format!("id != {x}"), Box::new(move |r| id(r) != x)),
        (format!("id < {x}"), Box::new(move |r| id(r) < x)),
        (format!("id > {x}"), Box::new(move |r| id(r) > x)),
        (format!("id <= {x}"), Box::new(move |r| id(r) <= x)),
        (format!("id >= {x}"), Box::new(move |r| id(r) >= x)),
        (format!("lastName = '{quoted}'"), {
            let last = last.clone();
            Box::new(move |r| field(r, "lastName").as_deref() == Some(last.as_str()))
        }),
        (format!("lastName = \"{}\"", last.replace('"', "\"\"")), {
            let last = last.clone();
            Box::new(move |r| field(r, "lastName").as_deref() == Some(last.as_str()))
        }),
        (format!("lastName LIKE '{prefix}%'"), {
            let prefix = prefix.to_lowercase();
            Box::new(move |r| {
                field(r, "lastName").is_some_and(|l| l.to_lowercase().starts_with(&prefix))
            })
        }),
        (
            format!("id IN ({a}, {b}, {c})"),
            Box::new(move |r| [a, b, c].contains(&id(r))),
        ),
        (
            format!("id NOT IN ({a}, {b})"),
            Box::new(move |r| ![a, b].contains(&id(r))),
        ),
        (
            "title IS NULL".into(),
            Box::new(|r| r.get("title").is_none()),
        ),
        (
            "title IS NOT NULL".into(),
            Box::new(|r| r.get("title").is_some()),
        ),
        (
            format!("inactiveFlag = false AND id > {x}"),
            Box::new(move |r| r["inactiveFlag"] == false && id(r) > x),
        ),
        (
            format!("id = {a} OR id = {b}"),
            Box::new(move |r| id(r) == a || id(r) == b),
        ),
        (
            format!("(id = {a} OR id = {x}) AND lastName = '{quoted}'"),
            {
                let last = last.clone();
                Box::new(move |r| {
                    (id(r) == a || id(r) == x)
                        && field(r, "lastName").as_deref() == Some(last.as_str())
                })
            },
        ),
        (
            format!("`company.id` = {company}"),
            Box::new(move |r| r["company"]["id"] == company),
        ),
        (
            format!("company.name = '{}'", company_name.replace('\'', "''")),
            {
                let name = company_name.clone();
                Box::new(move |r| r["company"]["name"].as_str() == Some(name.as_str()))
            },
        ),
        (format!("lastUpdated > '{median}'"), {
            let median = median.clone();
            Box::new(move |r| r["_info"]["lastUpdated"].as_str().expect("date") > median.as_str())
        }),
    ];
    for (query, predicate) in cases {
        let answer = hub
            .get_where("/hubs/crm/contacts?pageSize=1000", &query)
            .await;
        let expected: Vec<i64> = all.iter().filter(|r| predicate(r)).map(id).collect();
        assert_eq!(ids(answer.records()), expected, "where {query}");
        assert!(
            !expected.is_empty() && expected.len() < all.len() || query.contains("NOT NULL"),
            "`{query}` must tell records apart to be a test"
        );
    }
    // `fields` and `orderBy` reach ConnectWise too.
    let answer = hub
        .get("/hubs/crm/contacts?pageSize=1000&fields=id,lastName&orderBy=lastName%20desc")
        .await;
    let names: Vec<&str> = answer
        .records()
        .iter()
        .map(|r| r["lastName"].as_str().expect("lastName"))
        .collect();
    let mut sorted = names.clone();
    sorted.sort_by_key(|n| std::cmp::Reverse(n.to_lowercase()));
    assert_eq!(names, sorted);
    assert!(
        answer
            .records()
            .iter()
            .all(|r| r.as_object().map(|o| o.len()) == Some(2))
    );
}

#[tokio::test]
async fn pages_follow_the_token_to_the_end() {
    let app = spawn_app().await;
    let hub = hub_instance(&app, json!({})).await;
    let mut expected = app.sim.sim.ids("company/contacts");
    expected.sort();
    // Forward-only by id, with a page size that does not divide the total.
    let by_pages = hub.all_pages("/hubs/crm/contacts?pageSize=6").await;
    assert_eq!(ids(&by_pages), expected);
    // A page size that divides it: the last full page is followed by an empty one.
    let by_pages = hub.all_pages("/hubs/crm/contacts?pageSize=5").await;
    assert_eq!(ids(&by_pages), expected);
    // Ordered: navigable pages, in the order one big page has.
    let one_page = hub
        .get("/hubs/crm/contacts?pageSize=1000&orderBy=lastName%20asc")
        .await;
    let ordered = hub
        .all_pages("/hubs/crm/contacts?pageSize=6&orderBy=lastName%20asc")
        .await;
    assert_eq!(ids(&ordered), ids(one_page.records()));
    // With a filter, and an explicit page number.
    let some = hub
        .all_pages("/hubs/crm/contacts?pageSize=4&where=id%20%3E%2057005")
        .await;
    assert_eq!(
        ids(&some),
        expected
            .iter()
            .copied()
            .filter(|id| *id > 57005)
            .collect::<Vec<_>>()
    );
    let second = hub.get("/hubs/crm/contacts?pageSize=6&page=2").await;
    assert_eq!(ids(second.records()), expected[6..12]);
    assert!(second.header("Elements-Next-Page-Token").is_some());
    // A token that is not ours.
    let refused = hub.get("/hubs/crm/contacts?nextPage=bm90LWEtdG9rZW4").await;
    let message = refused.expect(400)["message"].as_str().expect("message");
    assert!(message.contains("is not a page token"), "{message}");
}

#[tokio::test]
async fn incident_comments_and_time_entries() {
    let app = spawn_app().await;
    let hub = hub_instance(&app, json!({})).await;
    let ticket = app.sim.sim.ids("service/tickets")[3];
    let comments = format!("/hubs/crm/incidents/{ticket}/comments");
    let before = hub.all_pages(&comments).await;
    assert!(before.iter().all(|n| n["ticketId"] == ticket), "{before:?}");

    let created = hub
        .post(
            &comments,
            json!({"text": "Called the customer", "internalAnalysisFlag": true}),
        )
        .await;
    let note = created.expect(200).clone();
    let note_id = note["id"].as_i64().expect("id");
    let path = format!("{comments}/{note_id}");
    assert_eq!(hub.get(&path).await.expect(200), &note);
    let listed = hub.all_pages(&comments).await;
    assert_eq!(listed.len(), before.len() + 1);
    let patched = hub
        .call(Method::PATCH, &path, Some(json!({"text": "Called twice"})))
        .await;
    assert_eq!(patched.expect(200)["text"], "Called twice");
    let replaced = hub
        .call(
            Method::PUT,
            &path,
            Some(json!({"text": "Resolved by phone"})),
        )
        .await;
    assert_eq!(replaced.expect(200)["text"], "Resolved by phone");
    assert_eq!(
        replaced.body["internalAnalysisFlag"], false,
        "PUT replaces every field"
    );
    hub.call(Method::DELETE, &path, None).await.expect(200);
    hub.get(&path).await.expect(404);
    // A comment is found under its own incident only.
    let other = app.sim.sim.ids("service/tickets")[4];
    if let Some(first) = before.first() {
        let elsewhere = hub
            .get(&format!(
                "/hubs/crm/incidents/{other}/comments/{}",
                first["id"]
            ))
            .await;
        elsewhere.expect(404);
    }

    // Time entries charged to the incident, and only those, narrowed by `where`.
    for hours in ["09", "11"] {
        let entry = json!({
            "ticket": {"id": ticket},
            "timeStart": format!("2026-01-05T{hours}:00:00Z"),
            "timeEnd": format!("2026-01-05T{hours}:30:00Z"),
        });
        hub.post("/hubs/crm/time-entries", entry).await.expect(200);
    }
    let entries = hub
        .all_pages(&format!(
            "/hubs/crm/incidents/{ticket}/time-entries?pageSize=2"
        ))
        .await;
    assert!(entries.len() >= 2);
    assert!(
        entries.iter().all(|e| e["chargeToId"] == ticket),
        "{entries:?}"
    );
    let all_entries = hub.all_pages("/hubs/crm/time-entries?pageSize=1000").await;
    let charged = all_entries
        .iter()
        .filter(|e| e["chargeToId"] == ticket)
        .count();
    assert_eq!(entries.len(), charged);
    assert!(
        all_entries.len() > charged,
        "other incidents have entries too"
    );
    let morning = hub
        .get_where(
            &format!("/hubs/crm/incidents/{ticket}/time-entries"),
            "timeStart = '2026-01-05T09:00:00Z' OR timeStart = '2026-01-05T11:00:00Z'",
        )
        .await;
    assert_eq!(morning.records().len(), 2, "{morning:?}");
}

#[tokio::test]
async fn objects_are_listed_and_any_connectwise_path_passes_through() {
    let app = spawn_app().await;
    let hub = hub_instance(&app, json!({})).await;
    let expected = json!([
        "activities",
        "contacts",
        "fields",
        "incidents",
        "opportunities",
        "organizations",
        "time-entries"
    ]);
    for path in ["/hubs/crm/objects", "/objects"] {
        let answer = hub.get(path).await;
        assert_eq!(answer.expect(200), &expected);
        assert_eq!(
            answer.header("Elements-Element-Instance-Id"),
            Some(hub.id.to_string().as_str())
        );
    }
    let boards = hub.get("/hubs/crm/objects/service/boards").await;
    assert_eq!(ids(boards.records()), [1, 2, 3]);
    let help = hub
        .get_where("/hubs/crm/objects/service/boards", "name LIKE 'Help%'")
        .await;
    assert_eq!(help.records().len(), 1);
    assert_eq!(help.records()[0]["name"], "Help Desk");
    let board = hub.get("/hubs/crm/objects/service/boards/2").await;
    assert_eq!(board.expect(200)["name"], "Network Security");
    let info = hub.get("/hubs/crm/objects/system/info").await;
    assert!(
        info.expect(200)["version"].is_string(),
        "an object passes as it is"
    );
    let count = hub.get("/hubs/crm/objects/company/contacts/count").await;
    assert_eq!(count.expect(200), &json!({"count": 20}));
    // Writes pass through too; the same record is then an object of the hub.
    let created = hub
        .post(
            "/hubs/crm/objects/system/userDefinedFields",
            json!({"podId": 2, "caption": "Passed Through", "fieldTypeIdentifier": "Text"}),
        )
        .await;
    let id = created.expect(200)["id"].as_i64().expect("id");
    let via_fields = hub.get(&format!("/hubs/crm/fields/{id}")).await;
    assert_eq!(via_fields.expect(200)["caption"], "Passed Through");
    let patched = hub
        .call(
            Method::PATCH,
            &format!("/hubs/crm/objects/system/userDefinedFields/{id}"),
            Some(json!([{"op": "replace", "path": "caption", "value": "Patched Through"}])),
        )
        .await;
    assert_eq!(patched.expect(200)["caption"], "Patched Through");
    hub.call(
        Method::DELETE,
        &format!("/hubs/crm/objects/system/userDefinedFields/{id}"),
        None,
    )
    .await
    .expect(200);
    // Paths that could leave the ConnectWise API are refused before anything is sent.
    let before = app.sim.sim.stats().to_string();
    for bad in [
        "/hubs/crm/objects/..%2F..%2Flogin%2Fcompanyinfo%2Fdemo",
        "/hubs/crm/objects/service%3Fconditions%3Did%3D1",
        "/hubs/crm/objects/http:%2F%2Fevil.example",
        "/hubs/crm/objects/service/%5C..%5Cx",
    ] {
        let refused = hub.get(bad).await;
        let message = refused.expect(400)["message"]
            .as_str()
            .expect("message")
            .to_string();
        assert!(message.contains("segment"), "{bad}: {message}");
    }
    assert_eq!(
        app.sim.sim.stats().to_string(),
        before,
        "nothing reached ConnectWise"
    );
    // ConnectWise's own refusal of an unknown path keeps its code and words.
    let unknown = hub.get("/hubs/crm/objects/service/nonsense").await;
    let body = unknown.expect(404);
    assert!(
        body["providerMessage"]
            .as_str()
            .expect("provider")
            .contains("does not exist")
    );
}

#[tokio::test]
async fn a_poller_url_may_pass_through_objects() {
    let app = spawn_app().await;
    let mut body = app.documented_body();
    body["configuration"]["event.poller.configuration"] = json!({
        "udfs": {
            "url": "/hubs/crm/objects/system/userDefinedFields?where=lastUpdated>'${gmtDate:yyyy-MM-dd'T'HH:mm:ss'Z'}'",
            "idField": "id",
            "datesConfiguration": {
                "updatedDateField": "_info.lastUpdated",
                "updatedDateFormat": "yyyy-MM-dd'T'HH:mm:ss'Z'",
                "createdDateField": "_info.lastUpdated",
                "createdDateFormat": "yyyy-MM-dd'T'HH:mm:ss'Z'"
            }
        }
    });
    let response = app.create_instance(&body).await;
    assert_eq!(response.status(), 200);
    let instance: Value = response.json().await.expect("json");
    let id = instance["id"].as_i64().expect("id");
    let hub = Hub {
        app: &app,
        id,
        token: instance["token"].as_str().expect("token").to_string(),
    };
    app.wait_for_baseline(id).await;
    let created = hub
        .post(
            "/hubs/crm/fields",
            json!({"podId": 3, "caption": "Polled", "fieldTypeIdentifier": "Text"}),
        )
        .await;
    let field_id = created.expect(200)["id"].as_i64().expect("id");
    let object_id = field_id.to_string();
    app.poll_now(id).await;
    let (event, received) = app
        .receiver
        .wait_for_event(Duration::from_secs(30), |e| {
            e["objectType"] == "udfs" && e["objectId"] == object_id.as_str()
        })
        .await;
    assert_eq!(event["eventType"], "CREATED");
    // What the poller saw is what the hub shows for the same record.
    let raw = received.json()["message"]["raw"]["udfs"][0].clone();
    assert_eq!(
        raw,
        hub.get(&format!("/hubs/crm/fields/{field_id}")).await.body
    );
}

#[tokio::test]
async fn the_poller_and_the_hub_see_the_same_records() {
    let app = spawn_app().await;
    let id = app.create_polling_instance().await;
    // A second instance of the same site reads the same ConnectWise records through the hub.
    let hub = hub_instance(&app, json!({})).await;
    let contact = app.sim.sim.ids("company/contacts")[2];
    let object_id = contact.to_string();
    app.connectwise(Method::PATCH, &format!("company/contacts/{contact}"))
        .json(&json!([{"op": "replace", "path": "title", "value": "Chief Hub Officer"}]))
        .send()
        .await
        .expect("sent");
    app.poll_now(id).await;
    let (_, received) = app
        .receiver
        .wait_for_event(Duration::from_secs(30), |e| {
            e["objectId"] == object_id.as_str()
        })
        .await;
    let raw = received.json()["message"]["raw"]["contacts"].clone();
    let polled = raw
        .as_array()
        .expect("records")
        .iter()
        .find(|r| r["id"] == contact)
        .expect("the changed contact")
        .clone();
    // The documented poller URL's `where`, rendered before the change, in a hub call.
    let listed = hub
        .get_where("/hubs/crm/contacts", "lastUpdated > '2020-01-01T00:00:00Z'")
        .await;
    let shown = listed
        .records()
        .iter()
        .find(|r| r["id"] == contact)
        .expect("listed")
        .clone();
    assert_eq!(shown, polled);
    assert_eq!(
        hub.get(&format!("/hubs/crm/contacts/{contact}")).await.body,
        polled
    );
}

#[tokio::test]
async fn null_fields_are_removed_unless_the_instance_keeps_them() {
    let app = spawn_app().await;
    let filtering = hub_instance(&app, json!({})).await;
    let keeping = hub_instance(&app, json!({"filter.response.nulls": false})).await;
    // Seeded user-defined field 41 has no help text, which ConnectWise shows as null.
    let filtered = filtering.get("/hubs/crm/fields/41").await;
    assert!(
        filtered.expect(200).get("helpText").is_none(),
        "{filtered:?}"
    );
    let kept = keeping.get("/hubs/crm/fields/41").await;
    assert_eq!(kept.expect(200).get("helpText"), Some(&Value::Null));
    let listed = filtering.get("/hubs/crm/fields").await;
    assert!(
        listed
            .records()
            .iter()
            .all(|f| f.get("helpText") != Some(&Value::Null))
    );
    let listed = keeping.get("/hubs/crm/fields").await;
    assert!(
        listed
            .records()
            .iter()
            .any(|f| f.get("helpText") == Some(&Value::Null))
    );
    // IS NULL finds the fields without help text either way.
    let without = filtering
        .get_where("/hubs/crm/fields", "helpText IS NULL")
        .await;
    assert_eq!(without.records().len(), 5);
}

#[tokio::test]
async fn refusals_are_cloud_elements_errors() {
    let app = spawn_app().await;
    let hub = hub_instance(&app, json!({})).await;
    let contact = app.sim.sim.ids("company/contacts")[0];

    let bad = hub
        .get("/hubs/crm/contacts?where=lastName%20%3D%3D%20'x'")
        .await;
    let body = bad.expect(400);
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("Error parsing query"),
        "{body}"
    );
    assert!(body["requestId"].is_string());
    assert!(bad.header("Elements-Element-Instance-Id").is_some());

    let missing = hub.get("/hubs/crm/contacts/1").await;
    let body = missing.expect(404);
    assert_eq!(body["providerMessage"], "NotFound: Contact 1 not found");
    assert!(missing.header("Elements-Element-Instance-Id").is_some());

    let not_an_id = hub.get("/hubs/crm/contacts/abc").await;
    assert!(
        not_an_id.expect(400)["message"]
            .as_str()
            .expect("m")
            .contains("`abc` is not a record id")
    );

    let refused = hub
        .post("/hubs/crm/contacts", json!({"lastName": "No First Name"}))
        .await;
    let body = refused.expect(400);
    assert!(
        body["providerMessage"]
            .as_str()
            .expect("provider")
            .contains("firstName"),
        "{body}"
    );
    hub.post("/hubs/crm/contacts", json!(["not", "a", "record"]))
        .await
        .expect(400);
    let nothing = hub
        .call(
            Method::PATCH,
            &format!("/hubs/crm/contacts/{contact}"),
            Some(json!({"id": contact})),
        )
        .await;
    assert!(
        nothing.expect(400)["message"]
            .as_str()
            .expect("m")
            .contains("changes nothing")
    );
    hub.get("/hubs/crm/contacts?limit=5").await.expect(400);

    // Authentication: the token is required, must be an instance's, and of this organization.
    let path = format!("/hubs/crm/contacts/{contact}");
    let no_token = send(&app, Method::GET, &path, Some(app.auth()), None).await;
    assert!(
        no_token.expect(401)["message"]
            .as_str()
            .expect("m")
            .contains("Element")
    );
    assert!(no_token.header("Elements-Element-Instance-Id").is_none());
    let wrong = send(
        &app,
        Method::GET,
        &path,
        Some(format!("{}, Element nope", app.auth())),
        None,
    )
    .await;
    wrong.expect(401);
    send(&app, Method::GET, &path, None, None).await.expect(401);
    let other = hubhook::org::create(app.server().store(), "other")
        .await
        .expect("org");
    let other_auth = format!(
        "User {}, Organization {}, Element {}",
        other.user_secret, other.organization_secret, hub.token
    );
    let foreign = send(&app, Method::GET, &path, Some(other_auth), None).await;
    let body = foreign.expect(401);
    assert!(
        body.get("id").is_none() && body.get("firstName").is_none(),
        "{body}"
    );
    assert!(foreign.header("Elements-Element-Instance-Id").is_none());
    for answer in [&no_token, &wrong, &foreign] {
        assert!(
            !answer.body.to_string().contains(&hub.token),
            "the token is never repeated"
        );
    }
}

#[tokio::test]
async fn connectwise_failures_keep_their_meaning() {
    let app = spawn_app().await;
    let hub = hub_instance(&app, json!({})).await;
    // A member ConnectWise lets read but not write: its refusal is a 403 for the caller.
    let readonly = hub_instance(
        &app,
        json!({"public.key": "readonly-public", "private.key": "readonly-private"}),
    )
    .await;
    let refused = readonly
        .post(
            "/hubs/crm/fields",
            json!({"podId": 1, "caption": "x", "fieldTypeIdentifier": "Text"}),
        )
        .await;
    let body = refused.expect(403);
    assert!(
        body["providerMessage"]
            .as_str()
            .expect("provider")
            .contains("permissions"),
        "{body}"
    );
    assert!(!body.to_string().contains("readonly-private"));

    app.sim.sim.inject_faults(Fault {
        status: Some(500),
        count: Some(1),
        ..Fault::default()
    });
    let failed = hub.get("/hubs/crm/contacts").await;
    let body = failed.expect(502);
    assert!(body["providerMessage"].is_string(), "{body}");
    assert!(failed.header("Elements-Element-Instance-Id").is_some());

    app.sim.sim.inject_faults(Fault {
        drop_connection: Some(true),
        count: Some(1),
        ..Fault::default()
    });
    hub.get("/hubs/crm/contacts").await.expect(502);
    hub.get("/hubs/crm/contacts").await.expect(200);

    app.sim.sim.inject_faults(Fault {
        status: Some(429),
        retry_after: Some(3600),
        count: Some(1),
        ..Fault::default()
    });
    let limited = hub.get("/hubs/crm/contacts").await;
    limited.expect(429);
    assert_eq!(limited.header("Retry-After"), Some("3600"));
    // The site is paused for the hour ConnectWise asked for: the next call is answered 429
    // at once, without a request to ConnectWise.
    let asked = app.sim.sim.stats()["total"].clone();
    let paused = hub.get("/hubs/crm/contacts").await;
    paused.expect(429);
    let retry_after: u64 = paused
        .header("Retry-After")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((3590..=3600).contains(&retry_after), "{retry_after}");
    assert_eq!(app.sim.sim.stats()["total"], asked);
}

#[tokio::test]
async fn a_connectwise_site_that_does_not_answer_in_time_is_a_504() {
    let app = spawn_app_configured(Receiver::start().await, |config| {
        config.connectwise_timeout = 1;
    })
    .await;
    let hub = hub_instance(&app, json!({})).await;
    app.sim.sim.inject_faults(Fault {
        latency_ms: Some(3_000),
        count: Some(1),
        ..Fault::default()
    });
    let slow = hub.get("/hubs/crm/contacts").await;
    let body = slow.expect(504);
    assert!(
        body["message"].as_str().expect("m").contains("in time"),
        "{body}"
    );
}

#[tokio::test]
async fn a_disabled_instance_answers_403_but_lists_its_objects() {
    let app = spawn_app().await;
    let hub = hub_instance(&app, json!({})).await;
    hub.get("/hubs/crm/contacts").await.expect(200);
    set_disabled(&app, hub.id, true).await;
    let contact = app.sim.sim.ids("company/contacts")[0];
    let before = app.sim.sim.stats().to_string();
    for (method, path) in [
        (Method::GET, "/hubs/crm/contacts".to_string()),
        (Method::GET, format!("/hubs/crm/contacts/{contact}")),
        (Method::DELETE, format!("/hubs/crm/contacts/{contact}")),
        (Method::GET, "/hubs/crm/objects/service/boards".to_string()),
    ] {
        let refused = hub.call(method, &path, None).await;
        assert!(
            refused.expect(403)["message"]
                .as_str()
                .expect("m")
                .contains("disabled")
        );
        assert!(refused.header("Elements-Element-Instance-Id").is_some());
    }
    let refused = hub
        .call(
            Method::PATCH,
            &format!("/hubs/crm/contacts/{contact}"),
            Some(json!({"title": "x"})),
        )
        .await;
    refused.expect(403);
    assert_eq!(
        app.sim.sim.stats().to_string(),
        before,
        "nothing reached ConnectWise"
    );
    hub.get("/hubs/crm/objects").await.expect(200);
    hub.get("/objects").await.expect(200);
    set_disabled(&app, hub.id, false).await;
    hub.get("/hubs/crm/contacts").await.expect(200);
}

/// Disables or enables an instance through the platform API.
async fn set_disabled(app: &TestApp, id: i64, disabled: bool) {
    let method = if disabled {
        Method::DELETE
    } else {
        Method::PUT
    };
    let (status, instance) = app
        .send(method, &format!("/instances/{id}/enabled"), None)
        .await;
    assert_eq!(status, 200, "{instance}");
    assert_eq!(instance["disabled"], disabled);
}

#[tokio::test]
async fn every_hub_route_is_in_the_openapi_description() {
    let app = spawn_app().await;
    let description = app.openapi().await;
    let paths = description["paths"].as_object().expect("paths");
    let mut expected = BTreeSet::new();
    for object in [
        "activities",
        "contacts",
        "fields",
        "incidents",
        "opportunities",
        "organizations",
        "time-entries",
    ] {
        expected.insert((format!("/elements/api-v2/hubs/crm/{object}"), "get"));
        expected.insert((format!("/elements/api-v2/hubs/crm/{object}"), "post"));
        for verb in ["get", "put", "patch", "delete"] {
            expected.insert((format!("/elements/api-v2/hubs/crm/{object}/{{id}}"), verb));
        }
    }
    let comments = "/elements/api-v2/hubs/crm/incidents/{id}/comments";
    expected.insert((comments.to_string(), "get"));
    expected.insert((comments.to_string(), "post"));
    for verb in ["get", "put", "patch", "delete"] {
        expected.insert((format!("{comments}/{{commentId}}"), verb));
        expected.insert(("/elements/api-v2/hubs/crm/objects/{path}".to_string(), verb));
    }
    expected.insert((
        "/elements/api-v2/hubs/crm/objects/{path}".to_string(),
        "post",
    ));
    expected.insert((
        "/elements/api-v2/hubs/crm/incidents/{id}/time-entries".to_string(),
        "get",
    ));
    expected.insert(("/elements/api-v2/hubs/crm/objects".to_string(), "get"));
    expected.insert(("/elements/api-v2/objects".to_string(), "get"));
    let mut operation_ids = BTreeSet::new();
    for (path, verb) in &expected {
        let operation = &paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} is not described"))[verb];
        assert!(operation.is_object(), "{verb} {path} is not described");
        assert_eq!(
            operation["security"],
            json!([{"UserOrganizationElement": []}]),
            "{verb} {path}"
        );
        for status in ["200", "400", "401", "403", "404", "502", "504"] {
            assert!(
                operation["responses"][status].is_object(),
                "{verb} {path} {status}"
            );
        }
        assert!(
            operation["responses"]["200"]["headers"]["Elements-Element-Instance-Id"].is_object(),
            "{verb} {path}"
        );
        let id = operation["operationId"].as_str().expect("operationId");
        assert!(operation_ids.insert(id.to_string()), "{id} is used twice");
    }
    let list = &paths["/elements/api-v2/hubs/crm/contacts"]["get"];
    let names: BTreeSet<&str> = list["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["where", "page", "pageSize", "nextPage", "orderBy", "fields"])
    );
    assert!(list["responses"]["200"]["headers"]["Elements-Next-Page-Token"].is_object());
    // Every schema an answer or a body names is in the description.
    let mut stack = vec![&description];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) => {
                if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
                    let name = reference.trim_start_matches("#/components/schemas/");
                    assert!(
                        description["components"]["schemas"][name].is_object(),
                        "{reference} is not described"
                    );
                }
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
}
