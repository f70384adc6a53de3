//! Soak: the demo workload, faster and for longer, with the server killed (`kill -9`),
//! stalled (`SIGSTOP` for a few seconds) and its receiver failing at random. It samples the
//! server's memory, open descriptors and database size, then checks that nothing was lost and
//! nothing was announced under two event ids.
//!
//! ```text
//! cargo build --release -p hubhook --bins --examples
//! target/release/examples/soak --minutes 30
//! ```
//!
//! A benchmark, not a test: it runs for as long as asked and prints its figures for
//! docs/benchmarks.md. The server is the release binary beside this example
//! (`target/release/hubhook`), a real process on a SQLite file, so kills are real.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::{Router, body::Bytes, extract::State, http::StatusCode, routing::post};
use connectwise_sim::{SimConfig, Simulator};
use serde_json::{Value, json};

const MASTER_KEY: &str = "7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b";
const INSTANCES: usize = 5;
/// The demo changes a contact every 4 s; ten times faster.
const CHANGE_EVERY: Duration = Duration::from_millis(400);

/// What the receiver saw: per (object, content), the event ids it came under; and the last
/// title delivered per contact.
#[derive(Default)]
struct Seen {
    ids_by_content: HashMap<(String, String), BTreeSet<String>>,
    titles: HashMap<String, BTreeSet<String>>,
    requests: u64,
    refused: u64,
}

#[derive(Clone)]
struct Receiver {
    seen: Arc<Mutex<Seen>>,
    rng: Arc<Mutex<u64>>,
}

fn next_random(state: &Mutex<u64>) -> u64 {
    // xorshift64*: a fault schedule, not cryptography.
    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    s.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

async fn receive(State(receiver): State<Receiver>, body: Bytes) -> StatusCode {
    let roll = next_random(&receiver.rng) % 100;
    {
        let mut seen = receiver.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.requests += 1;
        if roll < 10 {
            seen.refused += 1;
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
    }
    if roll < 12 {
        // A slow receiver: answered after a while, but answered.
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let message = &payload["message"];
    let object_type = message["raw"]["objectType"].as_str().unwrap_or("");
    let records = message["raw"][object_type]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut seen = receiver.seen.lock().unwrap_or_else(|e| e.into_inner());
    for event in message["events"].as_array().into_iter().flatten() {
        let object = event["objectId"].as_str().unwrap_or("").to_string();
        let record = records.iter().find(|r| {
            r["id"].as_i64().is_some_and(|n| object.parse() == Ok(n))
                || r["id"].as_str() == Some(&object)
        });
        let content = record.map(|r| r.to_string()).unwrap_or_default();
        let title = record
            .and_then(|r| r["title"].as_str())
            .unwrap_or("")
            .to_string();
        let id = event["id"].as_str().unwrap_or("").to_string();
        // Event ids are per instance: every instance announces the same change itself.
        let instance = message["instanceId"].to_string();
        seen.ids_by_content
            .entry((
                format!("{instance}/{object}"),
                format!("{}{content}", event["eventType"]),
            ))
            .or_default()
            .insert(id);
        seen.titles
            .entry(format!("{instance}/{object}"))
            .or_default()
            .insert(title);
    }
    StatusCode::OK
}

struct Server {
    binary: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
    url: String,
}

impl Server {
    fn start(&mut self) {
        let mut command = Command::new(&self.binary);
        command
            .arg("serve")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("RUST_LOG", "warn,hubhook=info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = command.spawn().expect("the server starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("listening on")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(line);
                }
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the server says where it listens");
        let address = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .map(|w| w.trim_matches(|c: char| c == '"' || c == ',').to_string())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        self.url = address;
        self.child = Some(child);
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn signal(&self, signal: &str) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args([signal, &pid.to_string()])
                .status();
        }
    }
}

/// RSS in KB, open descriptors, database + WAL bytes.
fn sample(pid: u32, database: &Path) -> (u64, usize, u64) {
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    let size = |suffix: &str| {
        std::fs::metadata(format!("{}{suffix}", database.display())).map_or(0, |m| m.len())
    };
    (rss, fds, size("") + size("-wal"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut minutes: u64 = 30;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--minutes" {
            minutes = args.next().and_then(|v| v.parse().ok()).unwrap_or(minutes);
        }
    }
    let binary = std::env::current_exe()?
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("hubhook"))
        .filter(|path| path.exists())
        .ok_or_else(|| {
            anyhow::anyhow!("build the server first: cargo build --release -p hubhook --bins")
        })?;
    let dir = tempfile::tempdir()?;
    let database = dir.path().join("soak.db");
    let database_url = format!("sqlite://{}", database.display());

    let sim_config = SimConfig {
        records: 200,
        ..SimConfig::default()
    };
    let sim = Simulator::spawn(sim_config.clone(), "127.0.0.1:0".parse()?).await?;
    let receiver = Receiver {
        seen: Arc::default(),
        rng: Arc::new(Mutex::new(0x9e37_79b9_7f4a_7c15)),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let callback = format!("http://{}/webhook", listener.local_addr()?);
    let app = Router::new()
        .route("/webhook", post(receive))
        .with_state(receiver.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let org = Command::new(&binary)
        .args([
            "org",
            "create",
            "--name",
            "soak",
            "--database-url",
            &database_url,
        ])
        .env("HUBHOOK_MASTER_KEY", MASTER_KEY)
        .output()?;
    anyhow::ensure!(
        org.status.success(),
        "{}",
        String::from_utf8_lossy(&org.stderr)
    );
    let org: Value = serde_json::from_slice(&org.stdout)?;
    let auth = format!(
        "User {}, Organization {}",
        org["userSecret"].as_str().unwrap_or(""),
        org["organizationSecret"].as_str().unwrap_or("")
    );
    let mut server = Server {
        binary: binary.clone(),
        env: [
            ("HUBHOOK_LISTEN", "127.0.0.1:0"),
            ("HUBHOOK_DATABASE_URL", database_url.as_str()),
            ("HUBHOOK_MASTER_KEY", MASTER_KEY),
            ("HUBHOOK_MIN_REFRESH_INTERVAL", "1"),
            ("HUBHOOK_ALLOW_PRIVATE_CALLBACKS", "true"),
            ("HUBHOOK_NODE_ID", "soak-node"),
            ("HUBHOOK_POLL_LEASE", "10"),
            ("HUBHOOK_DELIVERY_LEASE", "40"),
            ("HUBHOOK_RETRY_SCHEDULE", "1s,2s,4s,8s,16s,30s,30s,30s,30s"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        child: None,
        url: String::new(),
    };
    server.start();
    let http = reqwest::Client::new();
    for n in 0..INSTANCES {
        let mut body = hubhook_core::documented_instance_body(hubhook_core::DocumentedSite {
            base_url: &sim.base_url(),
            company: &sim_config.company,
            public_key: &sim_config.public_key,
            private_key: &sim_config.private_key,
            callback_url: &callback,
        });
        // The demo polls every 3 s; ten times faster is below the 1 s floor, so 1 s.
        body["configuration"]["event.poller.refresh_interval"] = json!("0.0167");
        body["name"] = json!(format!("soak-{n}"));
        let response = http
            .post(format!("{}/elements/api-v2/instances", server.url))
            .header("Authorization", &auth)
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(response.status().is_success(), "{}", response.text().await?);
    }

    // The workload: the demo's changes ten times faster, each retitling a contact with a
    // unique title, seen by every instance.
    let last_title: Arc<Mutex<BTreeMap<i64, String>>> = Arc::default();
    let changes = {
        let sim = sim.sim.clone();
        let last_title = last_title.clone();
        tokio::spawn(async move {
            let ids = sim.ids("company/contacts");
            let mut n: u64 = 0;
            loop {
                tokio::time::sleep(CHANGE_EVERY).await;
                n += 1;
                let id = ids[(n as usize * 7) % ids.len()];
                let title = format!("soak {n}");
                let patched = sim.patch(
                    "company/contacts",
                    id,
                    json!([{"op": "replace", "path": "title", "value": title}]),
                );
                if patched.is_ok() {
                    last_title
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(id, title);
                }
            }
        })
    };

    let started = Instant::now();
    let end = started + Duration::from_secs(minutes * 60);
    let rng = Mutex::new(0x1234_5678_9abc_def1_u64);
    let mut samples: Vec<(u64, u64, usize, u64)> = Vec::new();
    let (mut kills, mut stalls) = (0u32, 0u32);
    let mut next_fault = Instant::now() + Duration::from_secs(20 + next_random(&rng) % 40);
    let mut next_sample = Instant::now();
    while Instant::now() < end {
        if Instant::now() >= next_sample {
            if let Some(pid) = server.pid() {
                let (rss, fds, bytes) = sample(pid, &database);
                samples.push((started.elapsed().as_secs(), rss, fds, bytes));
                println!(
                    "t={:>5}s rss={:>7} KB fds={:>4} db={:>10} B kills={kills} stalls={stalls}",
                    started.elapsed().as_secs(),
                    rss,
                    fds,
                    bytes
                );
            }
            next_sample += Duration::from_secs(10);
        }
        if Instant::now() >= next_fault {
            if next_random(&rng).is_multiple_of(3) {
                // A stall shorter than the poll lease renewal gap would go unnoticed; this
                // one outlasts a poll lease (10 s), so another claim may fence the stalled work.
                server.signal("-STOP");
                tokio::time::sleep(Duration::from_secs(12)).await;
                server.signal("-CONT");
                stalls += 1;
            } else {
                server.kill9();
                server.start();
                kills += 1;
            }
            next_fault = Instant::now() + Duration::from_secs(20 + next_random(&rng) % 40);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    changes.abort();

    // Drain: every contact's last title must arrive.
    let expected = last_title.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let drain_started = Instant::now();
    let missing = loop {
        let missing: Vec<String> = {
            let guard = receiver.seen.lock().unwrap_or_else(|e| e.into_inner());
            let seen = &*guard;
            expected
                .iter()
                .flat_map(|(id, title)| {
                    (1..=INSTANCES).filter_map(move |instance| {
                        let key = format!("{instance}/{id}");
                        (!seen.titles.get(&key).is_some_and(|t| t.contains(title))).then_some(key)
                    })
                })
                .collect()
        };
        if missing.is_empty() || drain_started.elapsed() > Duration::from_secs(600) {
            break missing;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let seen = receiver.seen.lock().unwrap_or_else(|e| e.into_inner());
    let twice: Vec<(String, BTreeSet<String>)> = seen
        .ids_by_content
        .iter()
        .filter(|(_, ids)| ids.len() > 1)
        .map(|((object, _), ids)| (object.clone(), ids.clone()))
        .collect();
    let window = |from: u64, to: u64| {
        let picked: Vec<_> = samples.iter().filter(|s| s.0 >= from && s.0 < to).collect();
        let n = picked.len().max(1) as u64;
        (
            picked.iter().map(|s| s.1).sum::<u64>() / n,
            picked.iter().map(|s| s.2 as u64).sum::<u64>() / n,
            picked.iter().map(|s| s.3).max().unwrap_or(0),
        )
    };
    let total = started.elapsed().as_secs();
    let (rss_a, fds_a, db_a) = window(60, 360.min(total / 2));
    let (rss_b, fds_b, db_b) = window(total.saturating_sub(300), total + 1);
    println!();
    println!(
        "soak: {minutes} min, {INSTANCES} instances, a change every {CHANGE_EVERY:?}, {kills} kill -9, {stalls} SIGSTOP stalls of 12 s"
    );
    println!(
        "receiver: {} requests, {} answered 500, ~2 % answered after 5 s",
        seen.requests, seen.refused
    );
    println!("early (min 1-6):  rss {rss_a} KB, fds {fds_a}, db+wal max {db_a} B");
    println!("late (last 5 min): rss {rss_b} KB, fds {fds_b}, db+wal max {db_b} B");
    println!(
        "contacts whose last title never arrived: {} of {} (after {} s of draining)",
        missing.len(),
        expected.len(),
        drain_started.elapsed().as_secs()
    );
    println!("contents announced under two event ids: {}", twice.len());
    drop(seen);
    server.kill9();
    let first = |n: usize| n.min(5);
    anyhow::ensure!(
        missing.is_empty(),
        "lost, for example: {:?}",
        &missing[..first(missing.len())]
    );
    anyhow::ensure!(
        twice.is_empty(),
        "announced twice, for example: {:?}",
        &twice[..first(twice.len())]
    );
    Ok(())
}
