//! `spawn_app()`: everything a test needs, started for real on random ports.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, http::StatusCode, routing::post};
use base64::Engine as _;
use connectwise_sim::{SimConfig, SimHandle, Simulator};
use hubhook::{config::ServeConfig, org::CreatedOrganization, server::RunningServer};
use serde_json::{Value, json};
use tokio::sync::Notify;

pub const SIGNATURE_KEY: &str = "MySecretEventSignatureKey";

pub struct TestApp {
    pub server: Option<RunningServer>,
    pub config: ServeConfig,
    pub sim: SimHandle,
    pub receiver: Receiver,
    pub org: CreatedOrganization,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    /// The test's own PostgreSQL database, with `HUBHOOK_TEST_DATABASE=postgres`.
    pub database: Option<crate::postgres::Database>,
}

/// One POST that reached the receiver, and how the receiver answered it.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    /// `None` while the receiver holds the request without answering ([`Behaviour::Hang`]).
    pub answered: Option<u16>,
    /// When it arrived.
    pub at: std::time::Instant,
}

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// 200.
    Accept,
    /// Never answer (the request is recorded on arrival).
    Hang,
    /// This status, with the body `answer <status>`.
    Status(u16),
    /// 429 with `Retry-After: <seconds>`.
    TooManyRequests(u32),
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("callback body is JSON")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A webhook receiver that records every request and answers as told (200 by default).
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    state: Arc<ReceiverState>,
}

struct ReceiverState {
    received: Mutex<Vec<Received>>,
    behaviour: Mutex<Behaviour>,
    arrived: Notify,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        Receiver::start_on(listener)
    }

    pub fn start_on(listener: tokio::net::TcpListener) -> Receiver {
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(ReceiverState {
            received: Mutex::new(Vec::new()),
            behaviour: Mutex::new(Behaviour::Accept),
            arrived: Notify::new(),
        });
        let app = Router::new()
            .route("/webhook", post(receive))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.expect("receiver serves") });
        Receiver {
            url: format!("http://{addr}/webhook"),
            state,
        }
    }

    /// Every request that arrived, answered or not.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("lock").clone()
    }

    /// The requests from the `start`-th one on, in arrival order (none when fewer arrived), so
    /// that a test reading a long stream of callbacks reads each one once.
    pub fn received_since(&self, start: usize) -> Vec<Received> {
        let received = self.state.received.lock().expect("lock");
        received.get(start..).unwrap_or_default().to_vec()
    }

    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *self.state.behaviour.lock().expect("lock") = behaviour;
    }

    /// Wait until a request matching `pred` arrives (answered or not); panics after `timeout`.
    pub async fn wait_for_request(
        &self,
        timeout: Duration,
        pred: impl Fn(&Received) -> bool,
    ) -> Received {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.state.arrived.notified();
            if let Some(found) = self.received().into_iter().find(|r| pred(r)) {
                return found;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!("no matching request within {timeout:?}");
            }
        }
    }

    /// Every event delivered so far (in a request answered 2xx), with the request it came in.
    pub fn events(&self) -> Vec<(Value, Received)> {
        self.received()
            .into_iter()
            .filter(|r| {
                r.answered
                    .is_some_and(|status| (200..300).contains(&status))
            })
            .flat_map(|r| {
                let events = r.json()["message"]["events"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                events.into_iter().map(move |e| (e, r.clone()))
            })
            .collect()
    }

    /// Wait until an event matching `pred` arrives; panics after `timeout`.
    pub async fn wait_for_event(
        &self,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> (Value, Received) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.state.arrived.notified();
            if let Some(found) = self.events().into_iter().find(|(e, _)| pred(e)) {
                return found;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!(
                    "no matching event within {timeout:?}; received: {:#?}",
                    self.events().iter().map(|(e, _)| e).collect::<Vec<_>>()
                );
            }
        }
    }
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let behaviour = *state.behaviour.lock().expect("lock");
    let status = match behaviour {
        Behaviour::Accept => Some(StatusCode::OK),
        Behaviour::Hang => None,
        Behaviour::Status(code) => Some(StatusCode::from_u16(code).expect("status")),
        Behaviour::TooManyRequests(_) => Some(StatusCode::TOO_MANY_REQUESTS),
    };
    state.received.lock().expect("lock").push(Received {
        headers,
        body,
        answered: status.map(|s| s.as_u16()),
        at: std::time::Instant::now(),
    });
    state.arrived.notify_waiters();
    let Some(status) = status else {
        return std::future::pending().await;
    };
    match behaviour {
        Behaviour::TooManyRequests(seconds) => {
            (status, [("Retry-After", seconds.to_string())]).into_response()
        }
        Behaviour::Status(code) => (status, format!("answer {code}")).into_response(),
        _ => status.into_response(),
    }
}

/// Start the simulator, a receiver and the server on a fresh database, and create an org.
pub async fn spawn_app() -> TestApp {
    let receiver = Receiver::start().await;
    spawn_app_with_receiver(receiver).await
}

pub async fn spawn_app_with_receiver(receiver: Receiver) -> TestApp {
    spawn_app_configured(receiver, |_| {}).await
}

/// [`spawn_app`] with a receiver and server settings of the test's choosing.
pub async fn spawn_app_configured(
    receiver: Receiver,
    adjust: impl FnOnce(&mut ServeConfig),
) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = test_simulator().await;
    let database = if crate::postgres::wanted() {
        Some(crate::postgres::Database::create().await)
    } else {
        None
    };
    let database_url = match &database {
        Some(database) => database.url(),
        None => format!("sqlite://{}", dir.path().join("hubhook.db").display()),
    };
    let mut config = ServeConfig {
        listen: "127.0.0.1:0".into(),
        database_url,
        master_key: Some(hubhook::config::SecretText("11".repeat(32))),
        min_refresh_interval: 1,
        allow_private_callbacks: true,
        retry_schedule: Some("1s,1s,1s,1s,1s,1s,1s,1s,1s".into()),
        // Stable across the restarts some tests make, as a deployed node's id is.
        node_id: Some("test-node".into()),
        ..ServeConfig::default()
    };
    adjust(&mut config);
    let server = hubhook::server::start(&config)
        .await
        .expect("server starts");
    let org = hubhook::org::create(server.store(), "acme")
        .await
        .expect("org");
    TestApp {
        server: Some(server),
        config,
        sim,
        receiver,
        org,
        http: reqwest::Client::new(),
        dir,
        database,
    }
}

impl TestApp {
    pub fn server(&self) -> &RunningServer {
        self.server.as_ref().expect("server running")
    }

    pub fn auth(&self) -> String {
        format!(
            "User {}, Organization {}",
            self.org.user_secret, self.org.organization_secret
        )
    }

    pub fn api(&self, path: &str) -> String {
        format!("{}/elements/api-v2{path}", self.server().url())
    }

    /// The second example body of the source document, pointed at our simulator and receiver,
    /// polling every 3 s and signed.
    pub fn documented_body(&self) -> Value {
        documented_body(&self.sim.base_url(), &self.receiver.url)
    }

    /// GET a platform API path with the org's secrets: (status, JSON body).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(self.api(path))
            .header("Authorization", self.auth())
            .send()
            .await
            .expect("sent");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON body"))
    }

    /// A platform API call with the given `Authorization` (none if `None`) and JSON body:
    /// (status, JSON body; `Null` when the body is not JSON).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        auth: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, self.api(path));
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("sent");
        let status = response.status().as_u16();
        let bytes = response.bytes().await.expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// Creates another organization; returns its `Authorization` header.
    pub async fn other_organization(&self) -> String {
        let other = hubhook::org::create(self.server().store(), "other")
            .await
            .expect("other organization");
        format!(
            "User {}, Organization {}",
            other.user_secret, other.organization_secret
        )
    }

    /// A call with the test organization's secrets.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        self.call(method, path, Some(&self.auth()), body).await
    }

    /// An instance body with the simulator's credentials and events off: nothing polls, so the
    /// stored rows change only through the API.
    pub fn quiet_body(&self, name: &str) -> Value {
        json!({
            "element": {"key": "connectwisecrmrest"},
            "configuration": {
                "baseUrl": self.sim.base_url(),
                "company": "demo",
                "public.key": "demo-public",
                "private.key": "demo-private",
                "event.notification.enabled": false,
            },
            "tags": ["quiet"],
            "name": name,
        })
    }

    /// Creates an instance from [`TestApp::quiet_body`]; returns its JSON (with the token).
    pub async fn create_quiet_instance(&self, name: &str) -> Value {
        let response = self.create_instance(&self.quiet_body(name)).await;
        assert_eq!(response.status(), 200);
        response.json().await.expect("json")
    }

    /// Everything the platform API can change, read straight from the database file: equal
    /// digests before and after a refused request show that it stored nothing.
    pub async fn digest(&self) -> String {
        if self.database.is_some() {
            return self.postgres_digest().await;
        }
        let pool = sqlx::SqlitePool::connect(&self.config.database_url)
            .await
            .expect("database");
        let mut digest = String::new();
        for sql in [
            "SELECT COALESCE(group_concat(id || name || configuration || secrets || tags
                 || events_enabled || disabled || refresh_interval_ms || updated_at
                 || hex(token_hash), '|'), '') FROM instances",
            "SELECT COALESCE(group_concat(instance_id || resource, '|'), '') FROM poll_jobs",
            "SELECT COALESCE(group_concat(id || hex(secret_hash) || COALESCE(email, ''), '|'), '') FROM users",
            "SELECT COALESCE(group_concat(id || hex(secret_hash), '|'), '') FROM organizations",
        ] {
            let part: String = sqlx::query_scalar(sql)
                .fetch_one(&pool)
                .await
                .expect("digest");
            digest.push_str(&part);
            digest.push('#');
        }
        pool.close().await;
        digest
    }

    /// [`TestApp::digest`] on PostgreSQL: every row of the same tables, as text.
    async fn postgres_digest(&self) -> String {
        let pool = sqlx::PgPool::connect(&self.config.database_url)
            .await
            .expect("database");
        let mut digest = String::new();
        for sql in [
            "SELECT COALESCE(string_agg(t::text, '|' ORDER BY id), '') FROM instances t",
            "SELECT COALESCE(string_agg(instance_id || resource, '|' ORDER BY instance_id, resource), '')
             FROM poll_jobs",
            "SELECT COALESCE(string_agg(t::text, '|' ORDER BY id), '') FROM users t",
            "SELECT COALESCE(string_agg(t::text, '|' ORDER BY id), '') FROM organizations t",
        ] {
            let part: String = sqlx::query_scalar(sql)
                .fetch_one(&pool)
                .await
                .expect("digest");
            digest.push_str(&part);
            digest.push('#');
        }
        pool.close().await;
        digest
    }

    /// Every byte the database holds, as stored: the SQLite file and its write-ahead log, or
    /// every row of every PostgreSQL table as text. Tests look for secrets in clear in it.
    pub async fn stored_bytes(&self) -> Vec<u8> {
        if self.database.is_none() {
            let mut bytes = std::fs::read(self.dir.path().join("hubhook.db")).expect("db file");
            bytes.extend(std::fs::read(self.dir.path().join("hubhook.db-wal")).unwrap_or_default());
            return bytes;
        }
        let pool = sqlx::PgPool::connect(&self.config.database_url)
            .await
            .expect("database");
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema()",
        )
        .fetch_all(&pool)
        .await
        .expect("tables");
        let mut bytes = Vec::new();
        for table in tables {
            let rows: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT string_agg(t::text, '|') FROM {table} t"
            )))
            .fetch_one(&pool)
            .await
            .expect("rows");
            bytes.extend(rows.unwrap_or_default().into_bytes());
        }
        pool.close().await;
        bytes
    }

    /// The server's OpenAPI description.
    pub async fn openapi(&self) -> Value {
        self.http
            .get(format!("{}/openapi.json", self.server().url()))
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("the description is JSON")
    }

    pub async fn create_instance(&self, body: &Value) -> reqwest::Response {
        self.http
            .post(self.api("/instances"))
            .header("Authorization", self.auth())
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// Create the documented instance and wait for its baseline poll, after which every change
    /// in the simulator is an event.
    pub async fn create_polling_instance(&self) -> i64 {
        let response = self.create_instance(&self.documented_body()).await;
        assert_eq!(response.status(), 200);
        let instance: Value = response.json().await.expect("json");
        let id = instance["id"].as_i64().expect("numeric id");
        self.wait_for_baseline(id).await;
        id
    }

    pub async fn wait_for_baseline(&self, id: i64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let jobs = self
                .server()
                .store()
                .poll_jobs(hubhook_core::InstanceId(id))
                .await
                .expect("jobs");
            if !jobs.is_empty() && jobs.iter().all(|j| j.cursor.is_some()) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "baseline poll did not finish: {jobs:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn poll_now(&self, id: i64) {
        let response = self
            .http
            .post(self.api(&format!("/instances/{id}/poll")))
            .header("Authorization", self.auth())
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 202);
    }

    /// A ConnectWise API call to the simulator, as any ConnectWise client would make it.
    pub fn connectwise(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let basic =
            base64::engine::general_purpose::STANDARD.encode("demo+demo-public:demo-private");
        self.http
            .request(method, format!("{}/{path}", self.sim.base_url()))
            .header("Authorization", format!("Basic {basic}"))
    }

    /// Creates a contact in the simulator; returns its id as events carry it (a string).
    pub fn add_contact(&self, first_name: &str) -> String {
        let company = self.sim.sim.ids("company/companies")[0];
        let contact = self
            .sim
            .sim
            .create(
                "company/contacts",
                json!({ "firstName": first_name, "lastName": "Added", "company": { "id": company } }),
            )
            .expect("contact created");
        contact["id"].as_i64().expect("id").to_string()
    }

    /// Changes a contact's title in the simulator, as a ConnectWise user would.
    pub async fn retitle_contact(&self, id: i64, title: &str) {
        let response = self
            .connectwise(reqwest::Method::PATCH, &format!("company/contacts/{id}"))
            .json(&json!([{ "op": "replace", "path": "title", "value": title }]))
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 200);
    }

    pub async fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await.expect("server stops cleanly");
        }
        self.server = Some(
            hubhook::server::start(&self.config)
                .await
                .expect("server restarts"),
        );
    }
}

/// The documented instance body for the simulator's default keys, polling every 3 s and signed
/// with [`SIGNATURE_KEY`]: the one fixture every end-to-end test starts from.
pub fn documented_body(sim_base_url: &str, callback_url: &str) -> Value {
    let mut body = hubhook_core::documented_instance_body(hubhook_core::DocumentedSite {
        base_url: sim_base_url,
        company: "demo",
        public_key: "demo-public",
        private_key: "demo-private",
        callback_url,
    });
    let configuration = &mut body["configuration"];
    configuration["event.poller.refresh_interval"] = json!("0.05");
    configuration["event.notification.signature.key"] = json!(SIGNATURE_KEY);
    body
}

/// The simulator every end-to-end test uses: 20 records per resource, on a free port.
pub async fn test_simulator() -> SimHandle {
    Simulator::spawn(
        SimConfig {
            records: 20,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await
    .expect("simulator starts")
}

/// Whether a delivered event is about this object (ids travel as strings).
pub fn is_about(event: &Value, object_id: i64) -> bool {
    event["objectId"].as_str() == Some(object_id.to_string().as_str())
}

/// The Cloud Elements signature computed here with the hmac crate, independently of hubhook's
/// signing code.
pub fn expected_signature(key: &str, body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(body);
    format!(
        "sha256={}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}
