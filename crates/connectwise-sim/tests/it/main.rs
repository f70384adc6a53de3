//! Integration tests: a real simulator on a random loopback port, spoken to
//! over HTTP with reqwest, as a ConnectWise client would.

mod auth;
mod callbacks;
mod contacts;
mod control;
mod paging;
mod resources;

use base64::Engine;
use connectwise_sim::{SimConfig, SimHandle, Simulator};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;

pub struct App {
    pub handle: SimHandle,
    pub http: reqwest::Client,
}

pub fn basic(company: &str, public: &str, private: &str) -> String {
    let raw = format!("{company}+{public}:{private}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

impl App {
    pub async fn start() -> App {
        App::with(SimConfig::default()).await
    }

    pub async fn with(config: SimConfig) -> App {
        let handle = Simulator::spawn(config, "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("spawn");
        App {
            handle,
            http: reqwest::Client::new(),
        }
    }

    pub fn sim(&self) -> &Simulator {
        &self.handle.sim
    }

    pub fn url(&self, path: &str) -> String {
        format!(
            "{}/{}",
            self.handle.base_url(),
            path.trim_start_matches('/')
        )
    }

    pub fn root(&self, path: &str) -> String {
        format!("http://{}{}", self.handle.addr, path)
    }

    /// A request to an API path with the default API member's credentials.
    pub fn api(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, self.url(path))
            .header(
                "authorization",
                basic("demo", "demo-public", "demo-private"),
            )
            .header(
                "accept",
                "application/vnd.connectwise.com+json; version=2025.1",
            )
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let resp = self.api(Method::GET, path).send().await.expect("send");
        status_json(resp).await
    }

    pub async fn control(&self, path: &str, body: Value) -> Value {
        let resp = self
            .http
            .post(self.root(path))
            .json(&body)
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        resp.json().await.expect("json")
    }

    /// Freezes the sim clock and returns "now".
    pub async fn freeze(&self) -> String {
        let v = self
            .control("/__sim/clock", serde_json::json!({"frozen": true}))
            .await;
        v["now"].as_str().expect("now").to_string()
    }
}

pub async fn status_json(resp: Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).expect("json body")
    };
    (status, v)
}

pub fn link_of(resp: &Response) -> Option<String> {
    resp.headers()
        .get("link")
        .map(|v| v.to_str().expect("ascii").to_string())
}

pub fn ids(v: &Value) -> Vec<i64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect()
}
