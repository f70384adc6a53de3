//! `hubhook demo`: the whole path on one machine with no setup. A ConnectWise simulator, the
//! hubhook server on a temporary SQLite database, and a callback receiver run in this process;
//! an instance is created through the real HTTP API with the documented body, then contacts
//! change in the simulator every few seconds and each delivered event is printed.

use std::time::Duration;

use anyhow::Context as _;
use axum::{Router, body::Bytes, http::HeaderMap, routing::post};
use connectwise_sim::{SimConfig, Simulator};
use serde_json::{Value, json};

use crate::{cli::DemoArgs, config::ServeConfig};

const SIGNATURE_KEY: &str = "demo-signature-key";

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let sim_config = SimConfig::default();
    let sim = Simulator::spawn(sim_config.clone(), "127.0.0.1:0".parse()?)
        .await
        .context("starting the simulator")?;
    let receiver = start_receiver().await?;

    let mut config = ServeConfig {
        listen: args.listen.clone(),
        database_url: format!("sqlite://{}", dir.path().join("hubhook.db").display()),
        master_key: Some(crate::config::SecretText(
            hubhook_store::MasterKey::generate().to_hex(),
        )),
        min_refresh_interval: 1,
        allow_private_callbacks: true,
        ..ServeConfig::default()
    };
    let server = match crate::server::start(&config).await {
        Ok(server) => server,
        Err(err) => {
            eprintln!(
                "{} is not available ({err:#}); using a free port",
                args.listen
            );
            config.listen = "127.0.0.1:0".into();
            crate::server::start(&config).await?
        }
    };
    // A user who can sign in to the console, with a password made for this run.
    let password: String = hubhook_api::fresh_secret()
        .context("generating a password")?
        .plain
        .chars()
        .take(20)
        .collect();
    let email = "demo@hubhook.local";
    let org = crate::org::create_with_login(
        server.store(),
        "demo",
        Some(crate::org::Login {
            email: email.into(),
            password: password.clone(),
            first_name: "Demo".into(),
            last_name: "User".into(),
        }),
    )
    .await?;
    let auth = format!(
        "User {}, Organization {}",
        org.user_secret, org.organization_secret
    );
    let body = instance_body(&sim.base_url(), &sim_config, &receiver);
    let http = reqwest::Client::new();
    let response = http
        .post(format!("{}/elements/api-v2/instances", server.url()))
        .header("Authorization", &auth)
        .json(&body)
        .send()
        .await
        .context("creating the instance")?;
    let status = response.status();
    let instance: Value = response.json().await.context("reading the instance")?;
    anyhow::ensure!(
        status.is_success(),
        "creating the instance failed: {status} {instance}"
    );
    let instance_id = instance["id"].clone();

    println!();
    println!("hubhook demo is running (Ctrl-C to stop)");
    println!(
        "  console:    {}/  (sign in as {email}, password {password})",
        server.url()
    );
    println!("  simulator:  {}", sim.base_url());
    println!("  receiver:   {receiver}");
    println!("  instance:   {instance_id} polling contacts every 3 s");
    println!();
    println!("Try the API:");
    println!(
        "  curl -s -H 'Authorization: {auth}' {}/elements/api-v2/instances/{instance_id}/events",
        server.url()
    );
    println!();

    let changes = change_contacts(
        sim.sim.clone(),
        Duration::from_secs(args.change_every.max(1)),
    );
    tokio::select! {
        _ = changes => {}
        _ = crate::server::shutdown_signal() => {}
    }
    server.stop().await
}

/// The documented instance body, pointed at the simulator, polling every 3 s and signed.
fn instance_body(base_url: &str, sim: &SimConfig, callback: &str) -> Value {
    let mut body = hubhook_core::documented_instance_body(hubhook_core::DocumentedSite {
        base_url,
        company: &sim.company,
        public_key: &sim.public_key,
        private_key: &sim.private_key,
        callback_url: callback,
    });
    let configuration = &mut body["configuration"];
    configuration["event.poller.refresh_interval"] = json!("0.05");
    configuration["event.notification.signature.key"] = json!(SIGNATURE_KEY);
    body["tags"] = json!(["demo"]);
    body
}

/// A local webhook receiver that checks the signature and prints each event.
async fn start_receiver() -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = Router::new().route("/webhook", post(receive));
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!(error = %err, "demo receiver stopped");
        }
    });
    Ok(format!("http://{addr}/webhook"))
}

async fn receive(headers: HeaderMap, body: Bytes) -> &'static str {
    let signature = headers
        .get("Elements-Webhook-Signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let verified =
        hubhook_core::verify_elements_signature(SIGNATURE_KEY.as_bytes(), &body, signature);
    let id = headers
        .get("Elements-Webhook-Id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("?");
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        println!("<- webhook {id}: body is not JSON");
        return "ok";
    };
    let message = &payload["message"];
    let events = message["events"].as_array().cloned().unwrap_or_default();
    let object_type = message["raw"]["objectType"].as_str().unwrap_or("");
    let records = message["raw"][object_type]
        .as_array()
        .cloned()
        .unwrap_or_default();
    println!(
        "<- webhook {id} signature {} with {} event(s)",
        if verified { "ok" } else { "INVALID" },
        events.len()
    );
    for event in events {
        let object_id = event["objectId"].as_str().unwrap_or("");
        let name = records
            .iter()
            .find(|r| id_text(&r["id"]) == object_id)
            .map(|r| {
                format!(
                    "{} {}",
                    r["firstName"].as_str().unwrap_or(""),
                    r["lastName"].as_str().unwrap_or("")
                )
            })
            .unwrap_or_default();
        println!(
            "   {:<8} {} {} {}  at {}",
            event["eventType"].as_str().unwrap_or(""),
            event["objectType"].as_str().unwrap_or(""),
            object_id,
            name.trim(),
            event["eventDate"].as_str().unwrap_or("")
        );
    }
    "ok"
}

fn id_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Alternately create a contact and retitle an existing one, as people using ConnectWise would.
async fn change_contacts(sim: Simulator, every: Duration) {
    const FIRST: &[&str] = &[
        "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken",
    ];
    const LAST: &[&str] = &[
        "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson",
    ];
    const TITLES: &[&str] = &["CTO", "Engineer", "Architect", "Manager", "Analyst"];
    let mut step = 0usize;
    loop {
        tokio::time::sleep(every).await;
        step += 1;
        if step % 2 == 1 {
            let Some(&company) = sim.ids("company/companies").first() else {
                continue;
            };
            let contact = json!({
                "firstName": FIRST[step % FIRST.len()],
                "lastName": LAST[(step / 2) % LAST.len()],
                "company": { "id": company },
            });
            match sim.create("company/contacts", contact) {
                Ok(created) => println!("-> ConnectWise: created contact {}", created["id"]),
                Err(err) => println!("-> ConnectWise: create failed: {err}"),
            }
        } else {
            let ids = sim.ids("company/contacts");
            if ids.is_empty() {
                continue;
            }
            let id = ids[(step * 7) % ids.len()];
            let title = TITLES[step % TITLES.len()];
            let ops = json!([{ "op": "replace", "path": "title", "value": title }]);
            match sim.patch("company/contacts", id, ops) {
                Ok(_) => println!("-> ConnectWise: contact {id} title is now {title}"),
                Err(err) => println!("-> ConnectWise: update failed: {err}"),
            }
        }
    }
}
