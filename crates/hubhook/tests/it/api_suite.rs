//! Every route of the API, driven from its own OpenAPI description, with bad input: another
//! organization's ids, missing and wrong `Authorization`, unknown ids and bad bodies. Each
//! check is a table over the description's operations, so a route added later is covered
//! without touching this file (and a route with a path parameter this file does not know makes
//! the test fail until the parameter is added to [`Fixture::value`]). Every refusal is checked
//! to have stored nothing: the database's digest is the same after the calls as before.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::app::{TestApp, spawn_app};

/// The base of the platform and hub APIs in the description's paths.
const API: &str = "/elements/api-v2";
/// Every field some route's body reads, with a value it takes; each route is sent the fields
/// of its own body ([`Operation::body_fields`]: some refuse fields they do not have), so that
/// a refusal comes from the ids or the authorization, not from the body.
fn any_body() -> Value {
    json!({
        "action": "confirm",
        "propertyValue": "x",
        "name": "x",
        "since": "2020-01-01T00:00:00Z",
        "from": "2020-01-01T00:00:00Z",
        "to": "2020-01-02T00:00:00Z",
    })
}

/// One operation of the description.
#[derive(Debug, Clone)]
struct Operation {
    method: Method,
    path: String,
    /// Its security scheme: `None` for public routes.
    scheme: Option<String>,
    has_body: bool,
    /// The properties of its request body's schema, when the description lists them.
    body_fields: Option<Vec<String>>,
}

impl Operation {
    fn params(&self) -> Vec<String> {
        self.path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .map(str::to_string)
            .collect()
    }

    fn is_hub(&self) -> bool {
        self.path.starts_with(&format!("{API}/hubs/"))
            || self.path.starts_with(&format!("{API}/objects"))
    }
}

fn operations(description: &Value) -> Vec<Operation> {
    let mut operations = Vec::new();
    for (path, item) in description["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            let scheme = operation["security"]
                .as_array()
                .and_then(|s| s.first())
                .and_then(|s| s.as_object())
                .and_then(|s| s.keys().next().cloned());
            operations.push(Operation {
                method,
                path: path.clone(),
                scheme,
                has_body: !operation["requestBody"].is_null(),
                body_fields: body_fields(description, operation),
            });
        }
    }
    operations
}

/// The properties of `operation`'s request body schema (its `$ref` followed).
fn body_fields(description: &Value, operation: &Value) -> Option<Vec<String>> {
    let content = operation["requestBody"]["content"].as_object()?;
    let schema = &content.values().next()?["schema"];
    let schema = match schema["$ref"].as_str() {
        Some(reference) => description.pointer(reference.strip_prefix('#')?)?,
        None => schema,
    };
    Some(schema["properties"].as_object()?.keys().cloned().collect())
}

/// The test organization's objects, which the other organization tries to reach.
struct Fixture {
    app: TestApp,
    instance: i64,
    token: String,
    event: String,
    notification: String,
    config_id: i64,
    /// `Authorization` of another organization.
    other: String,
}

impl Fixture {
    async fn new() -> Fixture {
        let app = spawn_app().await;
        let instance = app.create_polling_instance().await;
        let token = {
            // The polling instance's token was shown once; a quiet one gives a token to use.
            let quiet = app.create_quiet_instance("tokened").await;
            quiet["token"].as_str().expect("token").to_string()
        };
        let contact = app.sim.sim.ids("company/contacts")[0];
        app.retitle_contact(contact, "suite").await;
        app.poll_now(instance).await;
        let (event, _) = app
            .receiver
            .wait_for_event(Duration::from_secs(30), |_| true)
            .await;
        let (_, stored) = app
            .send(
                Method::GET,
                &format!("/instances/events/{}", event["id"].as_str().expect("id")),
                None,
            )
            .await;
        let (_, records) = app
            .send(
                Method::GET,
                &format!("/instances/{instance}/configuration"),
                None,
            )
            .await;
        let other = hubhook::org::create(app.server().store(), "other")
            .await
            .expect("other org");
        Fixture {
            instance,
            token,
            event: stored["id"].as_str().expect("event id").to_string(),
            notification: stored["notificationId"]
                .as_str()
                .expect("notification")
                .to_string(),
            config_id: records[0]["id"].as_i64().expect("config id"),
            other: format!(
                "User {}, Organization {}",
                other.user_secret, other.organization_secret
            ),
            app,
        }
    }

    /// The value of a path parameter: the test organization's object it names.
    fn value(&self, op: &Operation, param: &str) -> String {
        let first = op
            .path
            .trim_start_matches(API)
            .split('/')
            .nth(1)
            .unwrap_or("");
        match (param, first) {
            ("keyOrId", _) => "connectwisecrmrest".into(),
            ("eventId", _) => self.event.clone(),
            ("configId", _) => self.config_id.to_string(),
            ("resource", _) => "contacts".into(),
            ("instanceId", _) => self.instance.to_string(),
            ("recordId", _) => "1".into(),
            ("notificationId", _) | ("id", "notifications") => self.notification.clone(),
            ("id", "instances" | "elements") => self.instance.to_string(),
            ("id", "organizations" | "accounts") => self.app.org.organization_id.to_string(),
            ("id", "users") => self.app.org.user_id.to_string(),
            _ if op.is_hub() => "1".into(),
            _ => panic!(
                "{} {}: add the path parameter `{param}` to the api suite's table",
                op.method, op.path
            ),
        }
    }

    /// The test organization's `Authorization` for `op` (with the instance token where its
    /// scheme wants one); `None` for a route of another scheme.
    fn own_auth(&self, op: &Operation) -> Option<String> {
        match op.scheme.as_deref() {
            Some("UserOrganization") => Some(self.app.auth()),
            Some("UserOrganizationElement") => {
                Some(format!("{}, Element {}", self.app.auth(), self.token))
            }
            _ => None,
        }
    }

    fn url(&self, op: &Operation, value: impl Fn(&str) -> String) -> String {
        let mut path = op.path.clone();
        for param in op.params() {
            path = path.replace(&format!("{{{param}}}"), &value(&param));
        }
        format!("{}{path}", self.app.server().url())
    }

    async fn call(&self, op: &Operation, url: &str, auth: Option<&str>) -> (u16, Value) {
        let mut request = self.app.http.request(op.method.clone(), url);
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        if op.has_body {
            let mut body = any_body();
            if let (Some(fields), Some(all)) = (&op.body_fields, body.as_object_mut()) {
                all.retain(|field, _| fields.contains(field));
            }
            request = request.json(&body);
        }
        let response = request.send().await.expect("sent");
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }
}

/// `None` if the answer is a `400` error body whose message says `said`; else the operation
/// and what it answered, to list.
fn refused_saying(op: &Operation, status: u16, body: &Value, said: &str) -> Option<String> {
    let says = body["message"].as_str().is_some_and(|m| m.contains(said));
    if status == 400 && says && body["requestId"].is_string() {
        None
    } else {
        Some(format!("{} {}: {status} {body}", op.method, op.path))
    }
}

#[track_caller]
fn assert_error_body(op: &Operation, status: u16, body: &Value) {
    assert!(
        body["message"].is_string() && body["requestId"].is_string(),
        "{} {} answered {status} without the Cloud Elements error body: {body}",
        op.method,
        op.path
    );
}

#[tokio::test]
async fn every_route_answers_another_organizations_ids_with_404_and_tokens_with_401() {
    let fixture = Fixture::new().await;
    let description = fixture.app.openapi().await;
    let before = fixture.app.digest().await;
    let (mut by_id, mut by_token) = (0, 0);
    for op in operations(&description) {
        match op.scheme.as_deref() {
            Some("UserOrganization") => {
                let params = op.params();
                if params.iter().all(|p| p == "keyOrId") {
                    continue; // Nothing of an organization in the path.
                }
                let url = fixture.url(&op, |p| fixture.value(&op, p));
                let (status, body) = fixture.call(&op, &url, Some(&fixture.other)).await;
                assert_eq!(status, 404, "{} {url}: {body}", op.method);
                assert_error_body(&op, status, &body);
                by_id += 1;
            }
            Some("UserOrganizationElement") => {
                // Another organization's secrets with this organization's instance token.
                let url = fixture.url(&op, |p| fixture.value(&op, p));
                let auth = format!("{}, Element {}", fixture.other, fixture.token);
                let (status, body) = fixture.call(&op, &url, Some(&auth)).await;
                assert_eq!(status, 401, "{} {url}: {body}", op.method);
                assert_error_body(&op, status, &body);
                by_token += 1;
            }
            _ => {}
        }
    }
    assert!(
        by_id >= 20 && by_token >= 20,
        "{by_id} id routes, {by_token} token routes"
    );
    assert_eq!(
        fixture.app.digest().await,
        before,
        "a refused request changed the store"
    );
}

#[tokio::test]
async fn every_route_refuses_missing_and_wrong_authorization() {
    let fixture = Fixture::new().await;
    let description = fixture.app.openapi().await;
    let before = fixture.app.digest().await;
    let mut checked = 0;
    for op in operations(&description) {
        if op.scheme.is_none() {
            continue;
        }
        let url = fixture.url(&op, |p| fixture.value(&op, p));
        for auth in [
            None,
            Some("Bearer abc"),
            Some("User nope, Organization nope"),
            Some("User nope, Organization nope, Element nope"),
        ] {
            let (status, body) = fixture.call(&op, &url, auth).await;
            assert_eq!(status, 401, "{} {url} with {auth:?}: {body}", op.method);
            assert_error_body(&op, status, &body);
            assert!(
                !body.to_string().contains("nope"),
                "a refusal repeats what was sent: {body}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 60, "{checked} routes");
    assert_eq!(fixture.app.digest().await, before);
}

/// A query parameter a route does not take is refused by name, on every route but the hub's
/// (whose queries go to ConnectWise): otherwise `PUT /instances/1/enabled?dryRun=true` would
/// do just what it does without it, and the caller believe the parameter counted. Fails for
/// a route that reads no query and does not say so (an outside tester found eight).
#[tokio::test]
async fn every_route_refuses_a_query_parameter_it_does_not_take() {
    let fixture = Fixture::new().await;
    let description = fixture.app.openapi().await;
    let before = fixture.app.digest().await;
    let (mut checked, mut taken) = (0, Vec::new());
    for op in operations(&description) {
        let Some(auth) = fixture.own_auth(&op) else {
            continue;
        };
        if op.is_hub() {
            continue;
        }
        let url = fixture.url(&op, |p| fixture.value(&op, p));
        let url = format!("{url}?bogusParameter=1");
        let (status, body) = fixture.call(&op, &url, Some(&auth)).await;
        taken.extend(refused_saying(&op, status, &body, "bogusParameter"));
        checked += 1;
    }
    assert!(taken.is_empty(), "not refused:\n{}", taken.join("\n"));
    assert!(checked >= 40, "{checked} routes");
    assert_eq!(fixture.app.digest().await, before);
}

/// A body sent to a route that takes none is refused the same way, before the route runs:
/// `POST /instances/{id}/webhook-secret` with a secret of the caller's own rotated to a random
/// one and said nothing (an outside tester's). `null` and `{}`, which some Cloud Elements
/// clients send with every request, still pass. Fails for a route that ignores a body.
#[tokio::test]
async fn every_route_without_a_body_refuses_one() {
    let fixture = Fixture::new().await;
    let description = fixture.app.openapi().await;
    let before = fixture.app.digest().await;
    let (mut checked, mut taken) = (0, Vec::new());
    for op in operations(&description) {
        let Some(auth) = fixture.own_auth(&op) else {
            continue;
        };
        if op.is_hub() || op.has_body || op.method == Method::GET {
            continue;
        }
        let url = fixture.url(&op, |p| fixture.value(&op, p));
        let response = fixture
            .app
            .http
            .request(op.method.clone(), &url)
            .header("Authorization", &auth)
            .header("Content-Type", "application/json")
            .body(r#"{"webhookSecret": "whsec_mine"}"#)
            .send()
            .await
            .expect("sent");
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        taken.extend(refused_saying(&op, status, &body, "takes no request body"));
        checked += 1;
    }
    assert!(taken.is_empty(), "not refused:\n{}", taken.join("\n"));
    assert!(checked >= 10, "{checked} routes");
    assert_eq!(fixture.app.digest().await, before);
    // What clients send with every request passes (Jackson pretty-prints `{ }`; PHP's
    // `json_encode([])` is `[]`).
    let poll = format!(
        "{}/elements/api-v2/instances/{}/poll",
        fixture.app.server().url(),
        fixture.instance
    );
    for body in ["null", "{}", " ", "{ }", "[]"] {
        let response = fixture
            .app
            .http
            .post(&poll)
            .header("Authorization", fixture.app.auth())
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 202, "{body:?}");
    }
}

#[tokio::test]
async fn every_route_answers_unknown_ids_with_404() {
    let fixture = Fixture::new().await;
    let description = fixture.app.openapi().await;
    let before = fixture.app.digest().await;
    let auth = fixture.app.auth();
    let mut checked = 0;
    for op in operations(&description) {
        if op.scheme.as_deref() != Some("UserOrganization") {
            continue;
        }
        for unknown in op.params().into_iter().filter(|p| p != "resource") {
            let url = fixture.url(&op, |p| {
                if p == unknown {
                    match p {
                        "keyOrId" => "salesforce".to_string(),
                        "eventId" => "no-such-event".to_string(),
                        _ => "987654321".to_string(),
                    }
                } else {
                    fixture.value(&op, p)
                }
            });
            let (status, body) = fixture.call(&op, &url, Some(&auth)).await;
            assert_eq!(status, 404, "{} {url}: {body}", op.method);
            assert_error_body(&op, status, &body);
            checked += 1;
        }
    }
    assert!(checked >= 30, "{checked} checks");
    assert_eq!(fixture.app.digest().await, before);
}

#[tokio::test]
async fn bad_bodies_are_refused_with_a_clear_4xx_and_change_nothing() {
    let fixture = Fixture::new().await;
    let description = fixture.app.openapi().await;
    let before = fixture.app.digest().await;
    let auth = fixture.app.auth();
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(3 << 20));
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let wrong_types = json!({
        "element": "connectwisecrmrest", "name": 5, "configuration": "x", "tags": "x",
        "propertyValue": {"not": "a value"}, "key": 5, "action": 5,
        "since": 5, "from": [], "to": {},
    })
    .to_string();
    // An array of a body's fields in their order was read as the body (serde reads a struct
    // so), and `null` was refused naming the Rust type.
    let positional = r#"["2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z"]"#;
    let bodies: [(&str, &str, &str); 8] = [
        ("positional", "application/json", positional),
        ("null", "application/json", "null"),
        ("not JSON", "application/json", "{\"name\": "),
        ("empty", "application/json", ""),
        ("wrong types", "application/json", &wrong_types),
        ("huge", "application/json", &huge),
        ("deeply nested", "application/json", &deep),
        ("not JSON by type", "text/plain", "name=x"),
    ];
    let mut checked = 0;
    for op in operations(&description) {
        if !op.has_body || op.scheme.as_deref() != Some("UserOrganization") {
            continue;
        }
        let url = fixture.url(&op, |p| fixture.value(&op, p));
        for (what, content_type, body) in &bodies {
            let response = fixture
                .app
                .http
                .request(op.method.clone(), &url)
                .header("Authorization", &auth)
                .header("Content-Type", *content_type)
                .body(body.to_string())
                .send()
                .await
                .expect("sent");
            let status = response.status().as_u16();
            let answer: Value = response.json().await.unwrap_or(Value::Null);
            assert!(
                (400..500).contains(&status),
                "{} {url} with a {what} body answered {status}: {answer}",
                op.method
            );
            assert_error_body(&op, status, &answer);
            let message = answer["message"].as_str().unwrap_or_default();
            assert!(!message.contains("struct "), "a Rust type named: {answer}");
            if ["positional", "null"].contains(what) {
                assert!(
                    message.contains("expected a JSON object"),
                    "{} {url} with a {what} body: {answer}",
                    op.method
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 8 * 8, "{checked} checks");
    // Missing fields: a create without them names the first.
    let (status, error) = fixture
        .app
        .send(Method::POST, "/instances", Some(&json!({})))
        .await;
    assert_eq!(status, 400);
    assert!(
        error["message"]
            .as_str()
            .expect("m")
            .contains("element.key"),
        "{error}"
    );
    assert_eq!(fixture.app.digest().await, before);
}
