//! What a hostile but fair user tries: exhausting connections, and a store that stops writing.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;

use crate::app::{Receiver, spawn_app, spawn_app_configured};
use crate::processes::ProcessApp;

/// The server runs with 1024 open files and a bound of 200 connections; 2,000 strangers would
/// take every descriptor of a server without that bound, and then its database and its
/// deliveries would fail too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_idle_connections_stop_neither_the_api_nor_deliveries() {
    let app = ProcessApp::start(&[("HUBHOOK_MAX_CONNECTIONS", "200")], Some(1024)).await;
    let addr = app.server.url.trim_start_matches("http://").to_string();

    // Half connect and say nothing, half start a request and stop.
    let mut strangers = Vec::new();
    for n in 0..2000 {
        let mut stream = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        if n % 2 == 1 {
            stream
                .write_all(b"GET /elements/api-v2/instances HTTP/1.1\r\nHost: x\r\n")
                .await
                .expect("partial request");
        }
        strangers.push(stream);
    }

    // A client arriving now is served: the API, readiness, and the whole delivery chain.
    let fresh = reqwest::Client::new();
    // A probe's own query is no concern of the API's checks.
    for path in ["/healthz?probe=1", "/readyz"] {
        let response = fresh
            .get(format!("{}{path}", app.server.url))
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status(), 200, "{path}");
    }
    let listed = fresh
        .get(app.server.api("/instances"))
        .header("Authorization", &app.auth)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("answered");
    assert_eq!(listed.status(), 200);
    app.change_and_wait(app.contact(3)).await;
    drop(strangers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_cannot_write_makes_the_server_unready_and_stop_with_an_error() {
    let mut app = spawn_app().await;
    let readyz = format!("{}/readyz", app.server().url());
    assert_eq!(
        app.http.get(&readyz).send().await.expect("sent").status(),
        200
    );

    // The writer goes away (as if its task had died).
    app.server().store().close().await;
    let response = app.http.get(&readyz).send().await.expect("sent");
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.text().await.expect("text"),
        "database not writable"
    );

    // The server does not carry on unable to write: it stops, with an error.
    let server = app.server.take().expect("running");
    let ended = tokio::time::timeout(Duration::from_secs(30), server.wait())
        .await
        .expect("the server stopped by itself");
    let err = ended.expect_err("stopped with an error");
    assert!(err.to_string().contains("writer stopped"), "{err:#}");
}

/// Text with a NUL (`\u0000` in JSON, `%00` in a URL or a form) gets a 400 on both engines:
/// PostgreSQL cannot hold it, and there every such value that reached the database came back
/// as a 500 (nine routes, two of them before sign-in, each leaving an ERROR in the log). A
/// JSON body with something after its document is refused too, not read as its first part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_with_a_nul_and_bodies_with_trailing_data_are_refused_on_both_engines() {
    for postgres in [false, true] {
        let database = match postgres {
            true => Some(crate::postgres::Database::create().await),
            false => None,
        };
        let url = database.as_ref().map(crate::postgres::Database::url);
        let app = spawn_app_configured(Receiver::start().await, |config| {
            if let Some(url) = url {
                config.database_url = url;
            }
        })
        .await;
        let engine = if postgres { "PostgreSQL" } else { "SQLite" };
        let auth = app.auth();

        let mut body = app.documented_body();
        body["name"] = json!("a\u{0}b");
        let (status, refused) = app
            .call(Method::POST, "/instances", Some(&auth), Some(&body))
            .await;
        assert_eq!(status, 400, "{engine}: {refused}");
        let message = refused["message"].as_str().expect("message");
        assert!(
            message.contains("`name`") && message.contains("NUL"),
            "{engine}: {message}"
        );

        let created = app.create_instance(&app.documented_body()).await;
        assert_eq!(created.status(), 200, "{engine}");
        let instance: Value = created.json().await.expect("json");
        let id = instance["id"].as_i64().expect("id");
        let trailing = app
            .http
            .patch(app.api(&format!("/instances/{id}")))
            .header("Authorization", &auth)
            .header("Content-Type", "application/json")
            .body(r#"{"name":"first"}{"name":"second"} and more"#)
            .send()
            .await
            .expect("sent");
        assert_eq!(trailing.status(), 400, "{engine}");
        let (_, kept) = app.get(&format!("/instances/{id}")).await;
        assert_eq!(kept["name"], instance["name"], "{engine}: renamed anyway");
        // A key given twice would keep its last value without a word: refused, named.
        let twice = app
            .http
            .patch(app.api(&format!("/instances/{id}")))
            .header("Authorization", &auth)
            .header("Content-Type", "application/json")
            .body(r#"{"configuration":{"event.poller.refresh_interval":"1","event.poller.refresh_interval":"60"}}"#)
            .send()
            .await
            .expect("sent");
        assert_eq!(twice.status(), 400, "{engine}");
        let answer: Value = twice.json().await.expect("json");
        assert!(
            answer["message"].as_str().is_some_and(
                |m| m.contains("`configuration.event.poller.refresh_interval` is given twice")
            ),
            "{engine}: {answer}"
        );
        let (_, kept) = app.get(&format!("/instances/{id}")).await;
        let interval = |i: &Value| i["configuration"]["event.poller.refresh_interval"].clone();
        assert_eq!(
            interval(&kept),
            interval(&instance),
            "{engine}: changed anyway"
        );

        // `MTIzIGEAYg` is the page token "123 a\0b".
        for path in [
            "/instances/events/%00".to_owned(),
            format!("/instances/{id}/events/a%00b"),
            "/instances/events?nextPage=MTIzIGEAYg".to_owned(),
            format!("/instances/{id}/notifications?nextPage=MTIzIGEAYg"),
        ] {
            let (status, answer) = app.call(Method::GET, &path, Some(&auth), None).await;
            assert!(
                [400, 404].contains(&status),
                "{engine}: GET {path}: {status} {answer}"
            );
        }
        let (status, answer) = app
            .call(
                Method::POST,
                &format!("/instances/{id}/mass-deletes/con%00tacts"),
                Some(&auth),
                Some(&json!({ "action": "confirm" })),
            )
            .await;
        // SQLite holds such a name and finds no mass delete for it: 409.
        assert!(
            [400, 409].contains(&status),
            "{engine}: mass-delete confirmation: {status} {answer}"
        );
        let sign_in = app
            .http
            .post(format!(
                "{}/elements/j_spring_security_check",
                app.server().url()
            ))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("j_username=a%00b&j_password=x")
            .send()
            .await
            .expect("sent");
        assert!(
            [400, 401].contains(&sign_in.status().as_u16()),
            "{engine}: sign-in answered {}",
            sign_in.status()
        );
        drop(app);
        drop(database);
    }
}

/// A path that is not UTF-8 once percent-decoded gets the JSON error body of every other
/// refusal (axum's own answer was plain text) on platform and hub routes, and the console's
/// error page on a console address (it was JSON there too).
#[tokio::test]
async fn a_path_that_is_not_utf8_gets_the_error_body_of_its_kind() {
    let app = spawn_app().await;
    let console = app
        .http
        .get(format!("{}/instances/%C3%28", app.server().url()))
        .send()
        .await
        .expect("sent");
    assert_eq!(console.status(), 400);
    let page = console.text().await.expect("text");
    assert!(page.contains("<h1>Error</h1>"), "{page}");
    assert!(page.contains("not UTF-8"), "{page}");
    for path in [
        "/elements/api-v2/instances/%FF",
        "/elements/api-v2/notifications/%FF/attempts",
        "/elements/api-v2/hubs/crm/contacts/%FF",
    ] {
        let response = app
            .http
            .get(format!("{}{path}", app.server().url()))
            .header("Authorization", app.auth())
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 400, "{path}");
        let body: Value = response.json().await.expect("a JSON body");
        let message = body["message"].as_str().expect("message");
        assert!(message.contains("not UTF-8"), "{path}: {message}");
        assert!(body["requestId"].is_string(), "{path}: {body}");
    }
}

/// A body over the limit is a `413` that says the limit, not a `400` about buffering: a JSON
/// body of the API and a console form alike.
#[tokio::test]
async fn a_body_over_the_limit_is_a_413_that_says_the_limit() {
    let app = spawn_app().await;
    let body = json!({ "name": "x".repeat(3 * 1024 * 1024) });
    let (status, answer) = app
        .call(Method::POST, "/instances", Some(&app.auth()), Some(&body))
        .await;
    assert_eq!(status, 413, "{answer}");
    let message = answer["message"].as_str().expect("message");
    assert!(message.contains("2097152 bytes"), "{message}");

    let form = app
        .http
        .post(format!("{}/signin", app.server().url()))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("email={}", "x".repeat(3 * 1024 * 1024)))
        .send()
        .await
        .expect("sent");
    assert_eq!(form.status(), 413, "console form");
    let page = form.text().await.expect("page");
    assert!(page.contains("2097152 bytes"), "{page}");

    // The routes that read raw bytes (the legacy sign-in form, ConnectWise's signed callbacks)
    // answer the same JSON 413, not axum's plain text.
    for url in [
        format!("{}/elements/j_spring_security_check", app.server().url()),
        app.api("/events/connectwisecrmrest/1"),
        app.api("/events/connectwisecrmrest/1/2"),
    ] {
        let response = app
            .http
            .post(&url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("x".repeat(3 * 1024 * 1024))
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 413, "{url}");
        let answer: Value = response.json().await.expect("a JSON error body");
        let message = answer["message"].as_str().expect("message");
        assert!(message.contains("2097152 bytes"), "{url}: {message}");
    }
}
