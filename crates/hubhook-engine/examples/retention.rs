//! Retention under steady load: does the database file stop growing?
//!
//! The same twenty contacts change every hour of simulated time; the engine (its real poller,
//! dispatcher and retention, on a real SQLite file, against the simulator and a receiver
//! over loopback) polls, delivers and prunes on a clock moved by hand an hour at a time, with
//! deliveries kept one day and events two. The file size is printed each simulated day: it
//! should grow for the first days and then stay level, because pruned pages are reused.
//!
//! ```text
//! cargo run --release -p hubhook-engine --example retention -- [DAYS]
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::{Router, http::StatusCode, routing::post};
use connectwise_sim::{SimConfig, Simulator};
use hubhook_core::split_secrets;
use hubhook_engine::{Clock, Engine, EngineConfig};
use hubhook_store::{MasterKey, NewInstance, Store};
use serde_json::json;

const CONTACTS: usize = 20;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let days: u64 = std::env::args()
        .nth(1)
        .and_then(|d| d.parse().ok())
        .unwrap_or(7);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("retention.db");
    let url = format!("sqlite://{}", path.display());

    let sim = Simulator::spawn(
        SimConfig {
            records: CONTACTS,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse()?,
    )
    .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let callback = format!("http://{}/hook", listener.local_addr()?);
    let app = Router::new().route("/hook", post(|| async { StatusCode::OK }));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let millis = Arc::new(AtomicI64::new(jiff::Timestamp::now().as_millisecond()));
    let clock = {
        let millis = millis.clone();
        Clock::from_fn(move || {
            jiff::Timestamp::from_millisecond(millis.load(Ordering::SeqCst))
                .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        })
    };
    let store = Store::open(&url, MasterKey::generate()).await?;
    let mut body = hubhook_core::documented_instance_body(hubhook_core::DocumentedSite {
        base_url: &sim.base_url(),
        company: "demo",
        public_key: "demo-public",
        private_key: "demo-private",
        callback_url: &callback,
    });
    body["configuration"]["event.poller.refresh_interval"] = json!("1");
    let configuration = body["configuration"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let (public, secrets) = split_secrets(&configuration);
    let now = clock.now();
    let (org, user) = store
        .create_organization("retention", [1; 32], [2; 32], now)
        .await?;
    store
        .create_instance(NewInstance {
            organization_id: org,
            user_id: user,
            name: "retention".into(),
            element_key: "connectwisecrmrest".into(),
            token_hash: [3; 32],
            configuration: public,
            secrets,
            tags: vec![],
            events_enabled: true,
            resources: vec!["contacts".into()],
            refresh_interval_ms: 60_000,
            now,
        })
        .await?;
    let engine = Engine::new(
        store,
        EngineConfig {
            min_refresh_interval: Duration::from_secs(1),
            allow_private_callbacks: true,
            delivery_retention: Duration::from_secs(86_400),
            event_retention: Duration::from_secs(2 * 86_400),
            ..EngineConfig::default()
        },
        clock,
    )?;
    engine.poll_due().await?;

    let size = || {
        let file = |suffix: &str| {
            std::fs::metadata(format!("{}{suffix}", path.display())).map_or(0, |m| m.len())
        };
        file("") + file("-wal")
    };
    let ids = sim.sim.ids("company/contacts");
    let (mut events, mut pruned) = (0u64, 0u64);
    println!("day  events  pruned rows  database + WAL");
    for hour in 1..=days * 24 {
        for (n, id) in ids.iter().enumerate() {
            sim.sim
                .patch(
                    "company/contacts",
                    *id,
                    json!([{"op": "replace", "path": "title", "value": format!("hour {hour} #{n}")}]),
                )
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        }
        millis.fetch_add(3_600_000, Ordering::SeqCst);
        // The simulator's clock is real: let a second pass so the changes are after the cursor.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        engine.poll_due().await?;
        while engine.dispatch_due().await? > 0 {}
        let removed = engine.prune_due().await?;
        pruned += removed.total();
        events += CONTACTS as u64;
        if hour % 24 == 0 {
            println!(
                "{:>3}  {events:>6}  {pruned:>11}  {:>10} B",
                hour / 24,
                size()
            );
        }
    }
    Ok(())
}
