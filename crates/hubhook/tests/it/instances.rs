//! The platform API: creating, reading and deleting instances, and its errors.

use std::time::Duration;

use connectwise_sim::Fault;
use serde_json::{Value, json};

use crate::app::spawn_app;

#[tokio::test]
async fn documented_body_creates_an_instance_in_cloud_elements_shape() {
    let app = spawn_app().await;
    let response = app.create_instance(&app.documented_body()).await;
    assert_eq!(response.status(), 200);
    let instance: Value = response.json().await.expect("json");
    assert!(instance["id"].as_i64().is_some(), "{instance}");
    assert_eq!(instance["name"], "API_Polling");
    let token = instance["token"].as_str().expect("token");
    assert!(token.len() >= 40 && token != "********", "{token}");
    assert_eq!(instance["element"]["key"], "connectwisecrmrest");
    assert_eq!(instance["element"]["hub"], "crm");
    assert_eq!(instance["tags"], json!(["Test"]));
    assert_eq!(instance["eventsEnabled"], true);
    assert_eq!(instance["valid"], true);
    assert_eq!(instance["disabled"], false);
    assert!(
        instance["createdDate"]
            .as_str()
            .expect("date")
            .ends_with('Z')
    );
    let configuration = &instance["configuration"];
    assert_eq!(configuration["private.key"], "********");
    assert_eq!(configuration["public.key"], "********");
    assert_eq!(
        configuration["event.notification.signature.key"],
        "********"
    );
    assert_eq!(configuration["company"], "demo");
    assert_eq!(
        configuration["event.notification.callback.url"],
        app.receiver.url
    );

    // Reads mask the token and the secrets, and list what was created.
    let id = instance["id"].as_i64().expect("id");
    let (status, one) = app.get(&format!("/instances/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(one["token"], "********");
    assert_eq!(one["configuration"]["private.key"], "********");
    let (status, list) = app.get("/instances").await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().map(Vec::len), Some(1));

    // The secrets never reach the database in clear text.
    let stored = app.stored_bytes().await;
    assert!(
        contains(&stored, b"connectwisecrmrest"),
        "the probe reads nothing"
    );
    assert!(
        !contains(&stored, b"demo-private"),
        "private key stored in clear"
    );
    assert!(
        !contains(&stored, b"MySecretEventSignatureKey"),
        "signature key stored in clear"
    );

    let deleted = app
        .http
        .delete(app.api(&format!("/instances/{id}")))
        .header("Authorization", app.auth())
        .send()
        .await
        .expect("sent");
    assert_eq!(deleted.status(), 200);
    let (status, _) = app.get(&format!("/instances/{id}")).await;
    assert_eq!(status, 404);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Cloud Elements' API takes the element by its numeric id too (`{"id": 3012}`, as reads show
/// it in `elementId`); before, only the key was, and such a body was refused for lacking it.
#[tokio::test]
async fn the_element_may_be_given_by_its_id() {
    let app = spawn_app().await;
    for id in [json!(3012), json!("3012"), json!(3012.0)] {
        let mut body = app.documented_body();
        body["element"] = json!({ "id": id });
        let response = app.create_instance(&body).await;
        assert_eq!(response.status(), 200, "{id}");
        let instance: Value = response.json().await.expect("json");
        assert_eq!(instance["element"]["key"], "connectwisecrmrest");
        assert_eq!(instance["elementId"], 3012);
    }
}

#[tokio::test]
async fn the_second_documented_form_with_string_configuration_is_accepted() {
    let app = spawn_app().await;
    let mut body = app.documented_body();
    let poller = body["configuration"]["event.poller.configuration"].to_string();
    body["configuration"]["event.poller.configuration"] = json!(poller);
    body["configuration"]["event.notification.enabled"] = json!("true");
    body["configuration"]["baseURL"] = body["configuration"]["baseUrl"].clone();
    body["configuration"]
        .as_object_mut()
        .expect("object")
        .remove("baseUrl");
    let response = app.create_instance(&body).await;
    assert_eq!(
        response.status(),
        200,
        "{}",
        response.text().await.unwrap_or_default()
    );
}

/// The documented body with `change`'s fields replaced; its `configuration` object, if any,
/// replaces only the keys it names.
fn documented_with(app: &crate::app::TestApp, change: Value) -> Value {
    let mut body = app.documented_body();
    for (key, value) in change.as_object().expect("object") {
        match (key.as_str(), value) {
            ("configuration", Value::Object(keys)) => {
                for (k, v) in keys {
                    body["configuration"][k] = v.clone();
                }
            }
            _ => body[key] = value.clone(),
        }
    }
    body
}

/// POST /instances with `body`; asserts the status and that the message mentions `needle`.
async fn check_rejected(
    app: &crate::app::TestApp,
    body: Value,
    status: u16,
    needles: &[&str],
) -> Value {
    let response = app.create_instance(&body).await;
    assert_eq!(response.status(), status);
    let error: Value = response.json().await.expect("error body is JSON");
    let message = error["message"].as_str().expect("message");
    for needle in needles {
        assert!(message.contains(needle), "`{needle}` not in `{message}`");
    }
    assert!(
        error["requestId"].as_str().is_some_and(|r| !r.is_empty()),
        "{error}"
    );
    error
}

#[tokio::test]
async fn invalid_bodies_get_errors_naming_the_field() {
    let app = spawn_app().await;

    // The first, OAuth-shaped example of the source document has no ConnectWise keys.
    let oauth = json!({
      "element": { "key": "connectwisecrmrest" },
      "providerData": { "code": "<AUTHORIZATION_GRANT_CODE>" },
      "configuration": {
        "oauth.api.key": "<CLIENT_ID>", "oauth.api.secret": "<CLIENT_SECRET>", "oauth.callback.url": "<CALLBACK_URL>",
        "event.notification.enabled": true, "event.notification.callback.url": "http://mycoolapp.com",
        "event.poller.refresh_interval": "15",
        "event.poller.configuration": app.documented_body()["configuration"]["event.poller.configuration"].clone()
      },
      "tags": ["t"], "name": "oauth"
    });
    check_rejected(
        &app,
        oauth,
        400,
        &["company", "public.key", "private.key", "baseUrl"],
    )
    .await;

    let mut body = app.documented_body();
    body["configuration"]["event.poller.refresh_interval"] = json!("soon");
    check_rejected(&app, body, 400, &["event.poller.refresh_interval", "soon"]).await;

    let mut body = app.documented_body();
    body["configuration"]["event.poller.configuration"]["contacts"]
        .as_object_mut()
        .expect("obj")
        .remove("idField");
    check_rejected(
        &app,
        body,
        400,
        &["event.poller.configuration.contacts.idField"],
    )
    .await;

    let mut body = app.documented_body();
    body["configuration"]["event.poller.configuration"]["contacts"]["url"] =
        json!("/hubs/crm/widgets");
    check_rejected(
        &app,
        body,
        400,
        &["event.poller.configuration.contacts.url", "widgets"],
    )
    .await;

    let mut body = app.documented_body();
    body["element"]["key"] = json!("salesforce");
    check_rejected(&app, body, 400, &["element.key", "salesforce"]).await;
    let mut body = app.documented_body();
    body["element"] = json!({"id": 3013});
    check_rejected(&app, body, 400, &["`element.id`: unknown element 3013"]).await;
    let mut body = app.documented_body();
    body["element"]["id"] = json!(12);
    check_rejected(&app, body, 400, &["`element.id`: 12 is not the id of"]).await;
    let mut body = app.documented_body();
    body["element"] = json!({});
    check_rejected(&app, body, 400, &["`element.key` is required"]).await;

    let mut body = app.documented_body();
    body.as_object_mut().expect("obj").remove("name");
    check_rejected(&app, body, 400, &["name"]).await;

    // ConnectWise refuses the keys: the provider's words come back.
    let mut body = app.documented_body();
    body["configuration"]["private.key"] = json!("wrong");
    let error = check_rejected(&app, body, 400, &["refused the credentials"]).await;
    assert!(
        error["providerMessage"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{error}"
    );

    // `********` is what reads show for a stored secret; at creation there is none to keep,
    // so it must not become the signature key.
    let body = documented_with(
        &app,
        json!({"configuration": {"event.notification.signature.key": "********"}}),
    );
    check_rejected(
        &app,
        body,
        400,
        &[
            "`event.notification.signature.key`",
            "send the value itself",
        ],
    )
    .await;

    // A first run since a time jiff cannot hold says why, not only the expected form.
    let body = documented_with(
        &app,
        json!({"configuration": {"event.poller.firstRun": "since:9999-12-31T23:59:59Z"}}),
    );
    check_rejected(
        &app,
        body,
        400,
        &["event.poller.firstRun", "could not be read"],
    )
    .await;

    // A field no instance has (a typo) is refused, not dropped.
    let mut body = app.documented_body();
    body["nmae"] = json!("typo");
    check_rejected(&app, body, 400, &["`nmae` is not a field"]).await;

    // An id longer than any id says the limit.
    let (status, error) = app.get("/instances/9223372036854775807").await;
    assert_eq!(status, 400);
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("at most 18 digits")),
        "{error}"
    );

    // Not JSON at all.
    let response = app
        .http
        .post(app.api("/instances"))
        .header("Authorization", app.auth())
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 400);

    // Nothing was stored by any of these.
    let (status, list) = app.get("/instances").await;
    assert_eq!(status, 200);
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn requests_without_valid_secrets_are_refused() {
    let app = spawn_app().await;
    let cases = [
        None,
        Some("Bearer abc".to_string()),
        Some(format!("User {}", app.org.user_secret)),
        Some(format!(
            "User wrong, Organization {}",
            app.org.organization_secret
        )),
        Some(format!("User {}, Organization wrong", app.org.user_secret)),
    ];
    for header in cases {
        let mut request = app.http.get(app.api("/instances"));
        if let Some(h) = &header {
            request = request.header("Authorization", h);
        }
        let response = request.send().await.expect("sent");
        assert_eq!(response.status(), 401, "{header:?}");
        let body: Value = response.json().await.expect("json");
        assert!(body["message"].as_str().is_some(), "{body}");
    }
    // Any order, as Cloud Elements allows.
    let reversed = format!(
        "Organization {} , User {}",
        app.org.organization_secret, app.org.user_secret
    );
    let response = app
        .http
        .get(app.api("/instances"))
        .header("Authorization", reversed)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    // Two headers, two organizations: which one the request acts for must not depend on
    // their order. Refused, whichever comes first.
    let other = app.other_organization().await;
    for (first, second) in [(app.auth(), other.clone()), (other, app.auth())] {
        let response = app
            .http
            .get(app.api("/instances"))
            .header("Authorization", first)
            .header("Authorization", second)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.expect("json");
        let message = body["message"].as_str().expect("message");
        assert!(
            message.contains("more than one Authorization header"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn the_client_id_is_sent_when_configured() {
    let app = spawn_app().await;
    let strict = connectwise_sim::Simulator::spawn(
        connectwise_sim::SimConfig {
            client_id: Some("11111111-2222-3333-4444-555555555555".into()),
            ..Default::default()
        },
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await
    .expect("simulator");
    let mut body = app.documented_body();
    body["configuration"]["baseUrl"] = json!(strict.base_url());
    let error = check_rejected(&app, body.clone(), 400, &["refused the credentials"]).await;
    assert!(error["providerMessage"].as_str().is_some(), "{error}");

    body["configuration"]["connectwise.clientID"] = json!("11111111-2222-3333-4444-555555555555");
    let response = app.create_instance(&body).await;
    assert_eq!(response.status(), 200);

    // The OAuth-shaped key name carries the client id too.
    let mut body = app.documented_body();
    body["configuration"]["baseUrl"] = json!(strict.base_url());
    body["configuration"]["oauth.api.key"] = json!("11111111-2222-3333-4444-555555555555");
    let response = app.create_instance(&body).await;
    assert_eq!(response.status(), 200);
}

/// Configurations that parse but could never deliver an event: ConnectWise is asked for one
/// record of each resource at creation, and what it says names the setting to fix.
#[tokio::test]
async fn configurations_connectwise_cannot_serve_are_refused_at_creation() {
    let app = spawn_app().await;
    let date = "${gmtDate:yyyy-MM-dd'T'HH:mm:ss'Z'}";
    let contacts = |change: &dyn Fn(&mut Value)| {
        let mut body = app.documented_body();
        change(&mut body["configuration"]["event.poller.configuration"]["contacts"]);
        body
    };

    // A `where` on a field ConnectWise does not have: its words come back.
    let body = contacts(&|c| {
        c["url"] = json!(format!(
            "/hubs/crm/contacts?where=lastUpdated>'{date}' and shoeSize = 'x'"
        ))
    });
    let error = check_rejected(
        &app,
        body,
        400,
        &[
            "`event.poller.configuration.contacts.url`",
            "refused the query",
        ],
    )
    .await;
    assert!(
        error["providerMessage"]
            .as_str()
            .is_some_and(|m| m.contains("shoeSize")),
        "{error}"
    );

    // A path ConnectWise does not have.
    let body = contacts(&|c| c["url"] = json!("/hubs/crm/objects/company/shoes"));
    check_rejected(
        &app,
        body,
        400,
        &[
            "`event.poller.configuration.contacts.url`",
            "has no such list",
            "404",
        ],
    )
    .await;

    // An id field the records do not have.
    let body = contacts(&|c| c["idField"] = json!("identifier"));
    check_rejected(
        &app,
        body,
        400,
        &[
            "`event.poller.configuration.contacts.idField`",
            "identifier",
            "every record would be skipped",
        ],
    )
    .await;

    // A date field the records do not have, and a format their dates never match: both
    // resources are named in one answer.
    let mut body =
        contacts(&|c| c["datesConfiguration"]["updatedDateField"] = json!("_info.updatedAt"));
    let mut late = hubhook_core::connectwise_poller_block("opportunities");
    late["datesConfiguration"]["updatedDateFormat"] = json!("yyyy-MM-dd HH:mm:ss");
    body["configuration"]["event.poller.configuration"]["opportunities"] = late;
    check_rejected(
        &app,
        body,
        400,
        &[
            "`event.poller.configuration.contacts.datesConfiguration`",
            "_info.updatedAt",
            "`event.poller.configuration.opportunities.datesConfiguration`",
        ],
    )
    .await;

    // A created-date field the records do not have: records would still be used, but CREATED
    // could never be told apart by it.
    let body = contacts(&|c| c["datesConfiguration"]["createdDateField"] = json!("_info.nosuch"));
    check_rejected(
        &app,
        body,
        400,
        &[
            "`event.poller.configuration.contacts.datesConfiguration`",
            "created date",
            "_info.nosuch",
        ],
    )
    .await;

    // Nothing was stored by any of these.
    let (status, list) = app.get("/instances").await;
    assert_eq!(status, 200);
    assert_eq!(list, json!([]));

    // A server that answers, but not with pages the poller can walk (ids that are not numbers),
    // is refused too: every poll would fail the same way.
    let odd = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let odd_url = format!(
        "http://{}/v4_6_release/apis/3.0",
        odd.local_addr().expect("addr")
    );
    let router = axum::Router::new()
        .route(
            "/v4_6_release/apis/3.0/system/info",
            axum::routing::get(|| async { axum::Json(json!({"version": "v2025.1"})) }),
        )
        .fallback(|| async {
            axum::Json(json!([{"id": "A-0", "_info": {"lastUpdated": "2026-01-01T00:00:00Z"}}]))
        });
    tokio::spawn(async move { axum::serve(odd, router).await });
    let mut body = contacts(&|c| c["url"] = json!("/hubs/crm/objects/odd/things"));
    body["configuration"]["baseUrl"] = json!(odd_url);
    check_rejected(
        &app,
        body,
        400,
        &[
            "`event.poller.configuration.contacts.url`",
            "cannot read as pages",
        ],
    )
    .await;

    // A query that lists nothing yet proves nothing wrong: it is a valid configuration (one
    // that never can, `id < 0`, is refused before the read).
    let body = contacts(&|c| {
        c["url"] = json!(format!(
            "/hubs/crm/contacts?where=lastUpdated>'{date}' and id > 999999999"
        ))
    });
    let response = app.create_instance(&body).await;
    assert_eq!(
        response.status(),
        200,
        "{}",
        response.text().await.unwrap_or_default()
    );

    // The same checks guard a change to an existing instance.
    let id = app.create_polling_instance().await;
    // What a read shows can be sent back as it is (its own fields are ignored, the masked
    // secrets keep their values).
    let (_, read) = app.get(&format!("/instances/{id}")).await;
    let (status, answer) = app
        .call(
            reqwest::Method::PUT,
            &format!("/instances/{id}"),
            Some(&app.auth()),
            Some(&read),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let mut body = app.documented_body();
    body["configuration"]["event.poller.configuration"]["contacts"]["idField"] =
        json!("identifier");
    let (status, error) = app
        .call(
            reqwest::Method::PUT,
            &format!("/instances/{id}"),
            Some(&app.auth()),
            Some(&body),
        )
        .await;
    assert_eq!(status, 400, "{error}");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("contacts.idField")),
        "{error}"
    );
}

/// Names and tags are one line; credentials fit a request header; keys hubhook does not read
/// are bounded. Each refusal names the field, and nothing is stored.
#[tokio::test]
async fn names_tags_credentials_and_extra_keys_are_bounded() {
    let app = spawn_app().await;
    for (change, needles) in [
        (
            json!({"name": "first line\nsecond line"}),
            vec!["`name`", "U+000A"],
        ),
        (
            json!({"tags": ["fine", "split\u{2028}tag"]}),
            vec!["`tags[1]`", "U+2028"],
        ),
        (json!({"tags": ["nul\u{0}"]}), vec!["`tags[0]`"]),
        (
            json!({"name": "invoice\u{202E}gpj.exe"}),
            vec!["`name`", "U+202E", "bidirectional"],
        ),
        (
            json!({"tags": ["\u{200B}\u{FEFF}"]}),
            vec!["`tags[0]`", "visible"],
        ),
        // A tag that never closes would take the rest of the text with it when tags are
        // removed: refused, not cut to `Sales`.
        (
            json!({"name": "Sales<Q3 report"}),
            vec!["`name`", "character 6", "never ends"],
        ),
        (
            json!({"tags": ["fine", "a<b"]}),
            vec!["`tags[1]`", "never ends"],
        ),
        (
            json!({"name": "<b></b>"}),
            vec!["`name` is empty once HTML tags are removed"],
        ),
        (
            json!({"name": "n".repeat(256)}),
            vec!["`name` is too long: 256 characters, at most 255"],
        ),
        (
            json!({"configuration": {"company": "c".repeat(1 << 20)}}),
            vec!["`company`", "at most 256 characters"],
        ),
        (
            json!({"configuration": {"connectwise.clientID": "id\r\nX-Other: 1"}}),
            vec!["`connectwise.clientID`", "control characters"],
        ),
        (
            json!({"configuration": {"my.notes": "n".repeat(100_000)}}),
            vec!["`my.notes`", "16384 bytes"],
        ),
    ] {
        check_rejected(&app, documented_with(&app, change), 400, &needles).await;
    }
    let (_, list) = app.get("/instances").await;
    assert_eq!(list, json!([]));

    // A zero-width joiner is text some scripts need: kept.
    let mut body = app.documented_body();
    body["name"] = json!("team \u{1F469}\u{200D}\u{1F4BB}");
    let response = app.create_instance(&body).await;
    assert_eq!(response.status(), 200);
    let created: Value = response.json().await.expect("json");
    assert_eq!(created["name"], "team \u{1F469}\u{200D}\u{1F4BB}");
}

/// The stored secrets of an instance, read from the store (reads through the API mask them).
async fn stored_secrets(app: &crate::app::TestApp, id: i64) -> serde_json::Map<String, Value> {
    app.server()
        .store()
        .instance(hubhook_core::InstanceId(id))
        .await
        .expect("read")
        .expect("instance")
        .secrets
}

/// `********` stands for a stored secret however it is padded, and never becomes one; stored
/// ConnectWise keys are never sent to a site other than theirs; a change that leaves the site
/// and the poller settings alone does not need ConnectWise; and ConnectWise failing is not the
/// caller's mistake.
#[tokio::test]
async fn secrets_stay_with_their_site_and_updates_need_connectwise_only_for_what_they_change() {
    let app = spawn_app().await;
    let auth = app.auth();
    let patch = |id: i64, body: Value| {
        let auth = auth.clone();
        let app = &app;
        async move {
            app.call(
                reqwest::Method::PATCH,
                &format!("/instances/{id}"),
                Some(&auth),
                Some(&body),
            )
            .await
        }
    };

    // Padded, the mask is still the mask: refused at creation, keeps the stored key later.
    let mut body = app.documented_body();
    body["configuration"]["event.notification.signature.key"] = json!(" ******** ");
    check_rejected(&app, body, 400, &["`event.notification.signature.key`"]).await;
    let id = app.create_polling_instance().await;
    let before = stored_secrets(&app, id).await;
    let (status, answer) = patch(
        id,
        json!({"configuration": {"event.notification.signature.key": "******** "}}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(stored_secrets(&app, id).await, before);

    // A blank secret is not a secret: refused (it read as `********` and signed nothing).
    let (status, answer) = patch(
        id,
        json!({"configuration": {"event.notification.signature.key": "  "}}),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(stored_secrets(&app, id).await, before);

    // With nothing stored under the key, the mask is refused on an update too.
    let mut body = app.documented_body();
    body["configuration"]
        .as_object_mut()
        .expect("object")
        .remove("event.notification.signature.key");
    let unsigned = app.create_instance(&body).await;
    assert_eq!(unsigned.status(), 200);
    let unsigned = unsigned.json::<Value>().await.expect("json")["id"]
        .as_i64()
        .expect("id");
    let (status, answer) = patch(
        unsigned,
        json!({"configuration": {"event.notification.signature.key": "********"}}),
    )
    .await;
    assert_eq!(status, 400, "{answer}");

    // Another site, keys kept: refused, and nothing is sent to that site.
    let elsewhere = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let other = format!(
        "http://{}/v4_6_release/apis/3.0",
        elsewhere.local_addr().expect("addr")
    );
    let (status, answer) = patch(id, json!({"configuration": {"baseUrl": other}})).await;
    assert_eq!(status, 400, "{answer}");
    let message = answer["message"].as_str().expect("message");
    assert!(
        message.contains("`public.key` and `private.key`"),
        "{message}"
    );
    let (status, answer) = patch(
        id,
        json!({"configuration": {"baseUrl": other, "public.key": "********"}}),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        tokio::time::timeout(Duration::from_millis(100), elsewhere.accept())
            .await
            .is_err(),
        "the stored keys were sent to another site"
    );
    // The same site written differently keeps its keys.
    let same = format!("{}/", app.sim.base_url());
    let (status, answer) = patch(id, json!({"configuration": {"baseUrl": same}})).await;
    assert_eq!(status, 200, "{answer}");

    // ConnectWise down: a rename and a new callback need nothing of it; a new resource does,
    // and its failure is ConnectWise's (502), not the caller's.
    app.sim.sim.inject_faults(Fault {
        status: Some(503),
        ..Fault::default()
    });
    let (status, answer) = patch(id, json!({"name": "renamed while ConnectWise is down"})).await;
    assert_eq!(status, 200, "{answer}");
    let mut more = app.documented_body();
    more["configuration"]["event.poller.configuration"]["accounts"] =
        hubhook_core::connectwise_poller_block("accounts");
    let response = app.create_instance(&more).await;
    assert_eq!(response.status(), 502);
    let error: Value = response.json().await.expect("json");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("try again later")),
        "{error}"
    );
    app.sim.sim.clear_faults();

    // Rate limited for a minute: 503 with the wait.
    app.sim.sim.inject_faults(Fault {
        status: Some(429),
        retry_after: Some(60),
        count: Some(1),
        path_contains: Some("system/info".into()),
        ..Fault::default()
    });
    let response = app.create_instance(&app.documented_body()).await;
    assert_eq!(response.status(), 503);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("60")
    );
}

/// PATCHes of one instance sent at once: each is made from the instance as it is once its
/// turn comes, so none undoes another (before, 20 sent at once each answered 200 and 4 were
/// kept). On one node they all apply. Beside a second API on the same database, as another
/// node's would be, whose changes do not take turns with the first's, a change that raced the
/// other node's too often is refused (409), but none answered 200 is lost. Fails if an update
/// writes back a stale read (keys missing), or if one node's changes do not take turns (409s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_sent_at_once_all_apply_and_none_undoes_another() {
    let app = spawn_app().await;
    let created = app.create_quiet_instance("at once").await;
    let id = created["id"].as_i64().expect("id");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bound");
    let other_node = format!("http://{}", listener.local_addr().expect("address"));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let router = hubhook_api::router(hubhook_api::AppState::new(app.server().engine.clone()));
    tokio::spawn(hubhook_api::serve(
        listener,
        router,
        hubhook_api::ServeLimits::default(),
        shutdown.clone(),
    ));

    let patch_at_once = async |keys: std::ops::Range<usize>, on_other_node: fn(usize) -> bool| {
        let mut sent = tokio::task::JoinSet::new();
        for n in keys {
            let base = if on_other_node(n) {
                other_node.clone()
            } else {
                app.server().url()
            };
            let request = app
                .http
                .patch(format!("{base}/elements/api-v2/instances/{id}"))
                .header("Authorization", app.auth())
                .json(&json!({ "configuration": { format!("custom.k{n}"): n } }));
            sent.spawn(async move { (n, request.send().await.expect("sent").status().as_u16()) });
        }
        sent.join_all().await
    };
    let stored_keys = async || {
        let (_, instance) = app.get(&format!("/instances/{id}")).await;
        let configuration = instance["configuration"]
            .as_object()
            .expect("configuration");
        configuration
            .keys()
            .filter_map(|key| key.strip_prefix("custom.k")?.parse::<usize>().ok())
            .collect::<std::collections::BTreeSet<usize>>()
    };

    let one_node = patch_at_once(0..16, |_| false).await;
    assert!(
        one_node.iter().all(|(_, status)| *status == 200),
        "{one_node:?}"
    );
    assert_eq!(stored_keys().await, (0..16).collect());

    let two_nodes = patch_at_once(16..32, |n| n % 2 == 1).await;
    assert!(
        two_nodes
            .iter()
            .all(|(_, status)| [200, 409].contains(status)),
        "{two_nodes:?}"
    );
    let answered_200 = two_nodes
        .iter()
        .filter(|(_, status)| *status == 200)
        .map(|(n, _)| *n);
    let stored = stored_keys().await;
    let lost: Vec<usize> = answered_200.filter(|n| !stored.contains(n)).collect();
    assert!(lost.is_empty(), "answered 200 but not stored: {lost:?}");
    assert!((0..16).all(|n| stored.contains(&n)));
    shutdown.cancel();
}

/// A misspelt key in a resource of the poller configuration, or in its `datesConfiguration`,
/// is refused naming it (all of them at once), on a create as on a PATCH, and nothing is
/// stored: kept, it would be silently ignored and its default used (a zone of GMT instead of
/// the one meant). Fails if unknown keys are accepted.
#[tokio::test]
async fn misspelt_keys_of_a_polled_resource_are_refused_by_name() {
    let app = spawn_app().await;
    let poller = "configuration.event.poller.configuration";
    let mut body = app.documented_body();
    let contacts = &mut body["configuration"]["event.poller.configuration"]["contacts"];
    contacts["datesConfiguration"]["updatedDateTimeZone"] = json!("America/New_York");
    contacts["reconcileIntervall"] = json!(0);
    let created = refused_then_documented(
        &app,
        body,
        &[
            "`event.poller.configuration.contacts.datesConfiguration.updatedDateTimeZone`: invalid value, got `America/New_York`, expected it under `updatedDateTimezone`, the key this looks like",
            "`event.poller.configuration.contacts.reconcileIntervall`: invalid value, got `0`, expected it under `reconcileInterval`, the key this looks like",
        ],
    )
    .await;
    let mut resources = created["configuration"]["event.poller.configuration"].clone();
    resources["contacts"]["trackChange"] = json!(false);
    let message = poller_change_refused(&app, &created, &resources).await;
    assert!(
        message.contains("contacts.trackChange`") && message.contains("under `trackChanges`"),
        "{poller}: {message}"
    );
}

/// Checks that `body` is refused naming each of `needles` and that nothing was stored, then
/// creates the documented instance and returns it as created.
async fn refused_then_documented(
    app: &crate::app::TestApp,
    body: Value,
    needles: &[&str],
) -> Value {
    check_rejected(app, body, 400, needles).await;
    let (_, listed) = app.get("/instances").await;
    assert_eq!(listed.as_array().map(Vec::len), Some(0), "{listed}");
    let created = app.create_instance(&app.documented_body()).await;
    assert_eq!(created.status(), 200);
    created.json().await.expect("json")
}

/// PATCHes the poller configuration of the instance `created` to `resources`, checks that it
/// is a 400 and that the stored one is unchanged, and returns the refusal's message.
async fn poller_change_refused(
    app: &crate::app::TestApp,
    created: &Value,
    resources: &Value,
) -> String {
    let id = created["id"].as_i64().expect("id");
    let (status, refused) = app
        .send(
            reqwest::Method::PATCH,
            &format!("/instances/{id}"),
            Some(&json!({ "configuration": { "event.poller.configuration": resources } })),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    let (_, kept) = app.get(&format!("/instances/{id}")).await;
    assert_eq!(
        kept["configuration"]["event.poller.configuration"],
        created["configuration"]["event.poller.configuration"],
        "the poller configuration changed anyway"
    );
    refused["message"].as_str().expect("message").to_string()
}

/// A `where` that parses but can never match (an impossible id, bounds that leave nothing, the
/// updated date kept before the last poll) is refused on create and on change, naming the
/// terms; before, such a resource polled every interval and nothing said why no event came.
/// Fails if the check is not made, or made only on create.
#[tokio::test]
async fn a_where_that_can_never_match_is_refused_naming_its_terms() {
    let app = spawn_app().await;
    let window = "lastUpdated>'${gmtDate:yyyy-MM-dd'T'HH:mm:ss'Z'}'";
    let mut body = app.documented_body();
    let resources = &mut body["configuration"]["event.poller.configuration"];
    resources["contacts"]["url"] = json!(format!("/hubs/crm/contacts?where={window} and id<0"));
    let mut before = resources["contacts"].clone();
    before["url"] =
        json!("/hubs/crm/contacts?where=lastUpdated<'${gmtDate:yyyy-MM-dd'T'HH:mm:ss'Z'}'");
    resources["old"] = before;
    let created = refused_then_documented(
        &app,
        body,
        &[
            "`event.poller.configuration.contacts.url`: invalid value, got `/hubs/crm/contacts?where=lastUpdated>",
            "expected a where that some record can match: `id<0` matches no record: ConnectWise ids are whole numbers from 1",
            "`event.poller.configuration.old.url`",
            "`lastUpdated < (the last poll's time)` keeps only records updated at or before the last poll",
        ],
    )
    .await;
    let id = created["id"].as_i64().expect("id");
    let mut resources = created["configuration"]["event.poller.configuration"].clone();
    resources["contacts"]["url"] = json!(format!(
        "/hubs/crm/contacts?where={window} and (id>5 and id<3)"
    ));
    let message = poller_change_refused(&app, &created, &resources).await;
    assert!(
        message.contains("contacts.url`") && message.contains("`id>5` and `id<3` cannot both hold"),
        "{message}"
    );

    // Bounds that leave something, and alternatives of which one can match, are kept.
    resources["contacts"]["url"] = json!(format!(
        "/hubs/crm/contacts?where={window} and (id<0 or id>=5) and id<=5"
    ));
    let (status, changed) = app
        .send(
            reqwest::Method::PATCH,
            &format!("/instances/{id}"),
            Some(&json!({ "configuration": { "event.poller.configuration": resources } })),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
}

/// A body with several problems gets them all in one answer, each naming its field: the
/// name, every tag, and the configuration's, so that a user fixes them in one round trip.
/// Fails if validation stops at the first problem.
#[tokio::test]
async fn every_problem_of_a_body_is_named_at_once() {
    let app = spawn_app().await;
    let mut body = app.documented_body();
    body["name"] = json!("");
    body["tags"] = json!(["", "<b></b>", "fine"]);
    body["configuration"]
        .as_object_mut()
        .expect("configuration")
        .remove("company");
    body["configuration"]["event.notification.signature.key"] = json!(" ");
    check_rejected(
        &app,
        body,
        400,
        &[
            "`name` is empty",
            "`tags[0]` is empty",
            "`tags[1]` is empty once HTML tags are removed",
            "`company`",
            "`event.notification.signature.key` is blank",
        ],
    )
    .await;
    let (_, listed) = app.get("/instances").await;
    assert_eq!(listed, json!([]));
}

/// What a route would otherwise ignore without a word is refused, naming it: a query on a
/// route that takes none (`DELETE ?force=true` deleted all the same), a body field a route
/// does not have (a recover's `extra` was dropped), a compressed body or one starting with a
/// byte-order mark (read as JSON: "expected value at line 1"). Nothing is done.
#[tokio::test]
async fn what_a_route_would_ignore_is_refused_by_name() {
    let app = spawn_app().await;
    let created = app.create_quiet_instance("kept").await;
    let id = created["id"].as_i64().expect("id");
    let (status, answer) = app
        .send(
            reqwest::Method::DELETE,
            &format!("/instances/{id}?force=true"),
            None,
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains("`force`") && !m.contains("true")),
        "{answer}"
    );
    let (status, _) = app.get(&format!("/instances/{id}?foo=bar")).await;
    assert_eq!(status, 400);
    let (status, _) = app.get(&format!("/instances/{id}")).await;
    assert_eq!(status, 200, "deleted anyway");

    for (path, body, field) in [
        (
            format!("/instances/{id}/replay"),
            json!({"form": "2020-01-01T00:00:00Z"}),
            "form",
        ),
        (
            format!("/instances/{id}/recover"),
            json!({"since": "2020-01-01T00:00:00Z", "extra": 1}),
            "extra",
        ),
    ] {
        let (status, answer) = app.send(reqwest::Method::POST, &path, Some(&body)).await;
        assert_eq!(status, 400, "{path}: {answer}");
        assert!(
            answer["message"]
                .as_str()
                .is_some_and(|m| m.contains(&format!("unknown field `{field}`"))),
            "{path}: {answer}"
        );
    }
    let (_, records) = app.get(&format!("/instances/{id}/configuration")).await;
    let record = records
        .as_array()
        .and_then(|all| all.iter().find(|r| r["key"] == "company"))
        .expect("the company record")
        .clone();
    let path = format!("/instances/{id}/configuration/{}", record["id"]);
    let (status, answer) = app
        .send(
            reqwest::Method::PATCH,
            &path,
            Some(&json!({"propertyValue": "x", "bogus": 1})),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    // A record read back whole, with its new value, is fine.
    let mut sent_back = record.clone();
    sent_back["propertyValue"] = json!("demo");
    let (status, answer) = app
        .send(reqwest::Method::PATCH, &path, Some(&sent_back))
        .await;
    assert_eq!(status, 200, "{answer}");

    let raw = |body: Vec<u8>, encoding: Option<&str>| {
        let mut request = app
            .http
            .patch(app.api(&format!("/instances/{id}")))
            .header("Authorization", app.auth())
            .header("Content-Type", "application/json")
            .body(body);
        if let Some(encoding) = encoding {
            request = request.header("Content-Encoding", encoding);
        }
        request.send()
    };
    let gzip = raw(vec![0x1f, 0x8b, 8, 0], Some("gzip"))
        .await
        .expect("sent");
    assert_eq!(gzip.status(), 415);
    let said: Value = gzip.json().await.expect("json");
    assert!(
        said["message"]
            .as_str()
            .is_some_and(|m| m.contains("`gzip`")),
        "{said}"
    );
    let bom = raw(b"\xEF\xBB\xBF{\"name\":\"x\"}".to_vec(), None)
        .await
        .expect("sent");
    assert_eq!(bom.status(), 400);
    let said: Value = bom.json().await.expect("json");
    assert!(
        said["message"]
            .as_str()
            .is_some_and(|m| m.contains("byte-order mark")),
        "{said}"
    );
    let (_, kept) = app.get(&format!("/instances/{id}")).await;
    assert_eq!(kept["name"], "kept");
}
