//! What a hostile but fair user tries: exhausting connections, and a store that stops writing.

use std::time::Duration;

use tokio::io::AsyncWriteExt as _;

use crate::app::spawn_app;
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
    for path in ["/healthz", "/readyz"] {
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
