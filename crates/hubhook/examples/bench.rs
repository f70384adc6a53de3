//! Benchmarks of issues #10 and #12 (not tests: run by hand, release build). Every figure is printed
//! beside a ceiling measured in the same run, and as their ratio, because the machine they run
//! on is shared and absolute figures move with its load.
//!
//! ```text
//! cargo run --release -p hubhook --example bench -- ingest   [--records 20000] [--runs 3]
//! cargo run --release -p hubhook --example bench -- latency  [--changes 60]
//! cargo run --release -p hubhook --example bench -- idle     [--instances 2000] [--resources 3] [--seconds 90]
//! cargo run --release -p hubhook --example bench -- delivery [--records 20000] [--interval 0.05] [--receiver node|axum]
//!                                                            [--receiver-concurrency 16]
//! cargo run --release -p hubhook --example bench -- storage  [--records 20000]
//! cargo run --release -p hubhook --example bench -- claims   [--backlog 20000] [--known 0] [--siblings 1] [--engine sqlite|postgres]
//! cargo run --release -p hubhook --example bench -- dictionary --out crates/hubhook-store/dictionaries/records-<id>.zdict
//! cargo build --release -p hubhook --bins --examples &&
//!   target/release/examples/bench nodes [--records 20000] [--seconds 30] [--instances 200]
//!                                       [--receiver-delay-ms 100]
//! ```
//!
//! The server runs in this process on the main tokio runtime; the simulator, the receiver and
//! the measuring helpers run on a second runtime whose threads are named `bench-side`, so the
//! server's CPU time is the process's minus those threads' (`/proc/self/task/*/stat`).
//! `nodes` (issue #12) is the exception: its servers are real `hubhook serve` processes
//! (target/release/hubhook), 1 to 3 of them on one PostgreSQL database created for the run,
//! and 1 on SQLite. docs/benchmarks.md records the figures.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use axum::{Router, body::Bytes, extract::State, routing::post};
use base64::Engine as _;
use connectwise_sim::{SimConfig, SimHandle, Simulator};
use hubhook::{config::ServeConfig, server::RunningServer};
use hubhook_core::{FieldPath, InstanceId};
use serde::Deserialize;
use serde_json::{Value, json, value::RawValue};
use tokio::{runtime::Handle, sync::Notify};

const SIDE_THREADS: &str = "bench-side";
/// POSTs in flight of the ceiling client, and deliveries in flight the server may have to one
/// receiver.
const CEILING_IN_FLIGHT: usize = 16;
const CONTACTS: &str = "company/contacts";
/// The server's `receiver_concurrency` (`--receiver-concurrency`, default
/// [`CEILING_IN_FLIGHT`]).
static RECEIVER_CONCURRENCY: std::sync::OnceLock<u32> = std::sync::OnceLock::new();

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let mut flags = HashMap::new();
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        flags.insert(flag.trim_start_matches("--").to_owned(), value);
    }
    let flag = |name: &str, default: usize| -> anyhow::Result<usize> {
        flags
            .get(name)
            .map_or(Ok(default), |v| v.parse())
            .with_context(|| format!("--{name}"))
    };
    let side = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(SIDE_THREADS)
        .enable_all()
        .build()?;
    let main = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let side_handle = side.handle().clone();
    let interval = flags
        .get("interval")
        .cloned()
        .unwrap_or_else(|| "0.05".to_owned());
    let node = match flags.get("receiver").map_or("node", String::as_str) {
        "node" => true,
        "axum" => false,
        other => bail!("--receiver `{other}`: expected node or axum"),
    };
    let out = flags.get("out").cloned();
    let postgres = match flags.get("engine").map_or("sqlite", String::as_str) {
        "sqlite" => false,
        "postgres" => true,
        other => bail!("--engine `{other}`: expected sqlite or postgres"),
    };
    let receiver_concurrency = flag("receiver-concurrency", CEILING_IN_FLIGHT)?;
    RECEIVER_CONCURRENCY
        .set(u32::try_from(receiver_concurrency).context("--receiver-concurrency")?)
        .ok();
    print_machine();
    main.block_on(async move {
        match command.as_str() {
            "ingest" => ingest(&side_handle, flag("records", 20_000)?, flag("runs", 3)?).await,
            "latency" => latency(&side_handle, flag("changes", 60)?).await,
            "idle" => {
                idle(
                    &side_handle,
                    flag("instances", 2000)?,
                    flag("resources", 3)?,
                    flag("seconds", 90)?,
                )
                .await
            }
            "delivery" | "storage" => {
                // The poll interval in minutes (0.05: 3 s, so that the tie set of the mass
                // update is read again while the backlog is delivered, as in production).
                let records = flag("records", 20_000)?;
                delivery(&side_handle, records, &interval, command == "storage", node).await
            }
            "nodes" => {
                nodes(
                    &side_handle,
                    flag("records", 20_000)?,
                    flag("seconds", 30)?,
                    flag("instances", 200)?,
                    Duration::from_millis(flag("receiver-delay-ms", 100)? as u64),
                )
                .await
            }
            "claims" => {
                let known = flag("known", 0)?;
                claims(flag("backlog", 20_000)?, known, flag("siblings", 1)?, postgres).await
            }
            "dictionary" => {
                let out = out.context("dictionary: --out <path> is required")?;
                dictionary(std::path::Path::new(&out))
            }
            other => bail!(
                "unknown benchmark `{other}`: ingest, latency, idle, delivery, storage, claims, nodes, \
                 dictionary"
            ),
        }
    })
}

fn print_machine() {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "machine: {cores} cores, {cpu}, load {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
}

// ---------------------------------------------------------------------------------------------
// The parts: simulator and receiver on the side runtime, the server on the main one.

struct Bench {
    sim: SimHandle,
    receiver: Receiver,
    server: RunningServer,
    auth: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
    db_path: std::path::PathBuf,
    /// The process's VmRSS once the simulator was seeded, before the server started (MB).
    rss_after_sim: f64,
}

/// The simulator with `records` seeded records per resource, on the side runtime.
async fn spawn_simulator(side: &Handle, config: SimConfig) -> anyhow::Result<SimHandle> {
    let address = "127.0.0.1:0".parse().expect("address");
    Ok(side
        .spawn(async move { Simulator::spawn(config, address).await })
        .await??)
}

/// The documented instance on the simulator at `base_url`, calling back `callback_url`,
/// polling `blocks` (resource -> poller block) every `interval` (minutes, as the
/// configuration takes it).
fn instance_body(base_url: &str, callback_url: &str, interval: &str, blocks: Value) -> Value {
    let sim = SimConfig::default();
    let mut body = hubhook_core::documented_instance_body(hubhook_core::DocumentedSite {
        base_url,
        company: &sim.company,
        public_key: &sim.public_key,
        private_key: &sim.private_key,
        callback_url,
    });
    let configuration = &mut body["configuration"];
    configuration["event.poller.refresh_interval"] = json!(interval);
    configuration["event.poller.configuration"] = blocks;
    body
}

/// `POST /elements/api-v2/instances` on the server at `server_url`; the new instance's id.
async fn create_instance(
    http: &reqwest::Client,
    server_url: &str,
    auth: &str,
    body: &Value,
) -> anyhow::Result<i64> {
    let response = http
        .post(format!("{server_url}/elements/api-v2/instances"))
        .header("Authorization", auth)
        .json(body)
        .send()
        .await?;
    let status = response.status();
    let created: Value = response.json().await?;
    if !status.is_success() {
        bail!("creating an instance: {status} {created}");
    }
    created["id"].as_i64().context("instance id")
}

async fn start(side: &Handle, records: usize) -> anyhow::Result<Bench> {
    start_with(
        side,
        SimConfig {
            records,
            ..SimConfig::default()
        },
    )
    .await
}

async fn start_with(side: &Handle, sim_config: SimConfig) -> anyhow::Result<Bench> {
    let started = Instant::now();
    let rss_before = rss_mb();
    let (records, contacts) = (sim_config.records, sim_config.contacts);
    let sim = spawn_simulator(side, sim_config).await?;
    let rss_after_sim = rss_mb();
    println!(
        "simulator: {records} records per resource{} seeded in {:.1} s, holding {:.0} MB \
         (VmRSS after seeding minus before)",
        contacts.map_or(String::new(), |n| format!(" ({n} contacts)")),
        started.elapsed().as_secs_f64(),
        rss_after_sim - rss_before
    );
    let receiver = side.spawn(Receiver::start()).await??;
    let dir = tempfile::tempdir()?;
    let db_path = dir.path().join("hubhook.db");
    let config = ServeConfig {
        listen: "127.0.0.1:0".into(),
        database_url: format!("sqlite://{}", db_path.display()),
        master_key: Some(hubhook::config::SecretText("11".repeat(32))),
        min_refresh_interval: 1,
        allow_private_callbacks: true,
        site_requests_per_minute: 0,
        site_poll_concurrency: 16,
        // As many deliveries in flight to the one receiver as the ceiling client has (the
        // default, 4, is a per-receiver protection, not the engine's capacity), unless the
        // run asks for another.
        receiver_concurrency: *RECEIVER_CONCURRENCY.get_or_init(|| CEILING_IN_FLIGHT as u32),
        // `bench delivery` holds POSTs at the receiver while a backlog is stored; they must
        // not time out (and be retried later) meanwhile.
        delivery_timeout: 300,
        delivery_lease: 600,
        ..ServeConfig::default()
    };
    let server = hubhook::server::start(&config).await?;
    let org = hubhook::org::create(server.store(), "bench").await?;
    Ok(Bench {
        sim,
        receiver,
        auth: format!(
            "User {}, Organization {}",
            org.user_secret, org.organization_secret
        ),
        server,
        http: reqwest::Client::new(),
        _dir: dir,
        db_path,
        rss_after_sim,
    })
}

impl Bench {
    /// The documented instance, polling `resources` every `interval` (minutes, as the
    /// configuration takes it).
    fn body(&self, resources: &[&str], interval: &str) -> Value {
        let mut blocks = serde_json::Map::new();
        for resource in resources {
            blocks.insert(
                (*resource).to_owned(),
                hubhook_core::connectwise_poller_block(resource),
            );
        }
        instance_body(
            &self.sim.base_url(),
            &self.receiver.url,
            interval,
            Value::Object(blocks),
        )
    }

    async fn create(&self, body: &Value) -> anyhow::Result<InstanceId> {
        let url = self.server.url();
        create_instance(&self.http, &url, &self.auth, body)
            .await
            .map(InstanceId)
    }

    /// The cursor of the instance's first poll job: it moves when a poll's last page commits.
    async fn cursor(&self, id: InstanceId) -> anyhow::Result<Option<jiff::Timestamp>> {
        let jobs = self.server.store().poll_jobs(id).await?;
        Ok(jobs.first().and_then(|job| job.cursor))
    }

    /// `POST /instances/{id}/poll`: polls the instance now, whatever its interval.
    async fn poll_now(&self, id: InstanceId) -> anyhow::Result<()> {
        let polled = self
            .http
            .post(format!(
                "{}/elements/api-v2/instances/{}/poll",
                self.server.url(),
                id.0
            ))
            .header("Authorization", &self.auth)
            .send()
            .await?;
        if !polled.status().is_success() {
            bail!("POST /instances/{}/poll: {}", id.0, polled.status());
        }
        Ok(())
    }

    /// Waits until every job of the instance has a cursor (its first poll is done).
    async fn baseline_done(&self, id: InstanceId) -> anyhow::Result<Instant> {
        loop {
            let jobs = self.server.store().poll_jobs(id).await?;
            if !jobs.is_empty() && jobs.iter().all(|j| j.cursor.is_some()) {
                return Ok(Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// The callback receiver: answers 200 (at once, or after `delay` for the nodes benchmark, and
/// only once its gate is open), notes when each POST arrived and was answered and the object
/// ids of its events, and keeps a few bodies for the ceiling client.
#[derive(Clone)]
struct Receiver {
    url: String,
    state: Arc<Mutex<Arrivals>>,
    arrived: Arc<Notify>,
    delay: Duration,
    /// While `false`, POSTs are held unanswered: a backlog builds up without being delivered.
    gate: Arc<tokio::sync::watch::Sender<bool>>,
}

#[derive(Default)]
struct Arrivals {
    posts: Vec<(Instant, Vec<String>)>,
    events: usize,
    samples: Vec<Bytes>,
    /// When each answer was sent.
    answered: Vec<Instant>,
}

#[derive(Deserialize)]
struct CallbackBody {
    message: CallbackMessage,
}

#[derive(Deserialize)]
struct CallbackMessage {
    events: Vec<CallbackEvent>,
}

#[derive(Deserialize)]
struct CallbackEvent {
    #[serde(rename = "objectId")]
    object_id: String,
}

const SAMPLES: usize = 256;

impl Receiver {
    async fn start() -> anyhow::Result<Receiver> {
        Receiver::start_with(Duration::ZERO).await
    }

    /// A receiver that takes `delay` to answer each POST, its gate open.
    async fn start_with(delay: Duration) -> anyhow::Result<Receiver> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let receiver = Receiver {
            url: format!("http://{}/webhook", listener.local_addr()?),
            state: Arc::default(),
            arrived: Arc::default(),
            delay,
            gate: Arc::new(tokio::sync::watch::channel(true).0),
        };
        let app = Router::new()
            .route("/webhook", post(receive))
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(receiver)
    }

    fn events(&self) -> usize {
        self.state.lock().expect("lock").events
    }

    /// Forgets what arrived (but keeps the sample bodies): a new measurement starts.
    fn reset(&self) {
        let mut state = self.state.lock().expect("lock");
        state.posts.clear();
        state.events = 0;
        state.answered.clear();
    }

    /// Waits for a POST carrying an event of `object_id`; returns when it arrived.
    async fn wait_for(&self, object_id: &str, timeout: Duration) -> anyhow::Result<Instant> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.arrived.notified();
            if let Some((at, _)) = self
                .state
                .lock()
                .expect("lock")
                .posts
                .iter()
                .rev()
                .find(|(_, ids)| ids.iter().any(|id| id == object_id))
            {
                return Ok(*at);
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                bail!("no callback for {object_id} within {timeout:?}");
            }
        }
    }
}

async fn receive(State(receiver): State<Receiver>, body: Bytes) -> &'static str {
    let at = Instant::now();
    let ids: Vec<String> = serde_json::from_slice::<CallbackBody>(&body)
        .map(|b| b.message.events.into_iter().map(|e| e.object_id).collect())
        .unwrap_or_default();
    {
        let mut state = receiver.state.lock().expect("lock");
        state.events += ids.len();
        state.posts.push((at, ids));
        if state.samples.len() < SAMPLES {
            state.samples.push(body);
        }
    }
    receiver.arrived.notify_waiters();
    let mut gate = receiver.gate.subscribe();
    // The sender lives as long as the receiver: waiting cannot fail.
    let _ = gate.wait_for(|open| *open).await;
    if !receiver.delay.is_zero() {
        tokio::time::sleep(receiver.delay).await;
    }
    receiver
        .state
        .lock()
        .expect("lock")
        .answered
        .push(Instant::now());
    "ok"
}

// ---------------------------------------------------------------------------------------------
// Measuring helpers.

/// CPU time (s) of the process and of the side runtime's threads.
/// The CPU seconds (user and system) of a `/proc/.../stat` line.
fn ticks(stat: &str) -> f64 {
    // Clock ticks are 1/100 s on Linux (sysconf(_SC_CLK_TCK) = 100).
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let stime: f64 = fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    (utime + stime) / 100.0
}

fn cpu_seconds() -> (f64, f64) {
    let process = ticks(&std::fs::read_to_string("/proc/self/stat").unwrap_or_default());
    let mut side = 0.0;
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.starts_with(SIDE_THREADS) {
            side += ticks(&std::fs::read_to_string(task.path().join("stat")).unwrap_or_default());
        }
    }
    (process, side)
}

/// The server's CPU seconds so far (the process minus the side runtime).
fn server_cpu() -> f64 {
    let (process, side) = cpu_seconds();
    process - side
}

fn rss_mb() -> f64 {
    status_mb("VmRSS:")
}

/// A `/proc/self/status` memory line in MB (Linux; zero elsewhere).
fn status_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Resets the process's peak RSS (`VmHWM`) to its current RSS (Linux: `5` written to
/// `/proc/self/clear_refs`), so a later `VmHWM` is the peak since now. False if unsupported.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    percentile(&values, 50.0)
}

fn file_size(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn wal_path(db: &std::path::Path) -> std::path::PathBuf {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    wal.into()
}

// ---------------------------------------------------------------------------------------------
// (a) Backfill ingest: hubhook's baseline of N contacts against a plain client walking the same
// forward-only pages.

/// A plain client walking `lastUpdated > [epoch]` with forward-only pages of 1000, as the
/// baseline poll asks; bodies are read, not parsed. Returns records per second, and the first
/// page (for the floor, [`record_floor`]).
async fn plain_walk(
    http: &reqwest::Client,
    base: &str,
    records: usize,
) -> anyhow::Result<(f64, Bytes)> {
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("demo+demo-public:demo-private")
    );
    let started = Instant::now();
    let mut url = format!(
        "{base}/{CONTACTS}?conditions=lastUpdated%20%3E%20%5B1970-01-01T00%3A00%3A00Z%5D&pageSize=1000"
    );
    let mut pages = 0;
    let mut first = Bytes::new();
    loop {
        let response = http
            .get(&url)
            .header("Authorization", &auth)
            .header("pagination-type", "forward-only")
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("plain walk: {}", response.status());
        }
        let next = response
            .headers()
            .get("link")
            .and_then(|v| v.to_str().ok())
            .and_then(|l| {
                l.split(", ")
                    .find(|p| p.ends_with("rel=\"next\""))
                    .and_then(|p| p.split(['<', '>']).nth(1).map(String::from))
            });
        let body = response.bytes().await?;
        pages += 1;
        if pages == 1 {
            first = body.clone();
        }
        match next {
            Some(n) if body.len() > 2 => url = n,
            _ => break,
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!("  plain walk: {pages} pages in {secs:.2} s");
    Ok((records as f64 / secs, first))
}

async fn ingest(side: &Handle, records: usize, runs: usize) -> anyhow::Result<()> {
    // Only contacts are walked: the other resources stay at the default size, so that a
    // million-contact backfill fits beside the server (the simulator's memory is printed).
    let bench = start_with(
        side,
        SimConfig {
            contacts: Some(records),
            ..SimConfig::default()
        },
    )
    .await?;
    let contacts = bench.sim.sim.ids(CONTACTS).len();
    let http = reqwest::Client::new();
    let (mut ceiling, mut ours, mut cpu) = (Vec::new(), Vec::new(), Vec::new());
    let mut first_page = Bytes::new();
    for run in 1..=runs {
        let base = bench.sim.base_url();
        let (c, page) = side
            .spawn({
                let http = http.clone();
                async move { plain_walk(&http, &base, contacts).await }
            })
            .await??;
        first_page = page;
        let body = bench.body(&["contacts"], "15");
        // The server's memory: the process's peak RSS during the backfill minus its RSS once
        // the simulator was seeded (before the server started). The simulator's page buffers
        // and the plain client's leftovers count too, so this is an upper bound; the peak
        // minus the RSS just before the run (after the plain walk) is printed beside it.
        let rss_before_run = rss_mb();
        let peak_reset = reset_peak_rss();
        let cpu_before = server_cpu();
        let started = Instant::now();
        let id = bench.create(&body).await?;
        let done = bench.baseline_done(id).await?;
        let secs = done.duration_since(started).as_secs_f64();
        let h = contacts as f64 / secs;
        let server = (server_cpu() - cpu_before) / secs;
        let peak = status_mb("VmHWM:");
        println!(
            "run {run}: plain client {c:.0} records/s, hubhook baseline {h:.0} records/s \
             ({contacts} records in {secs:.2} s, server CPU {:.0} % of a core), ratio {:.2}",
            server * 100.0,
            h / c
        );
        if peak_reset {
            println!(
                "  server RSS: peak {:.0} MB (process peak {peak:.0} MB during the backfill minus \
                 {:.0} MB once the simulator was seeded); the peak grew {:.0} MB over the \
                 {rss_before_run:.0} MB before the run",
                peak - bench.rss_after_sim,
                bench.rss_after_sim,
                peak - rss_before_run
            );
        } else {
            println!("  server RSS: not measured (/proc/self/clear_refs is not writable)");
        }
        ceiling.push(c);
        ours.push(h);
        cpu.push(server);
    }
    let (c, h) = (median(ceiling), median(ours));
    println!(
        "ingest (median of {runs}): hubhook {h:.0} records/s, plain client {c:.0} records/s, \
         server CPU {:.0} %, ratio {:.2}",
        median(cpu) * 100.0,
        h / c
    );
    record_floor(&first_page, c);
    bench.server.stop().await
}

/// The CPU a record costs in the steps hubhook's design takes for every record it stores,
/// timed one by one on one thread over `page` (the best of 20 rounds): parsing the page, dropping
/// null members, the canonical text and its SHA-256, and packing the text with the SQLite
/// store's dictionary. What is left out (fetching, the SQLite statements, the event and outbox,
/// allocation across threads) only adds, so the rate printed, both cores doing nothing else, is
/// an upper bound on a backfill's, to compare with the plain client's `ceiling`.
fn record_floor(page: &[u8], ceiling: f64) {
    use sha2::Digest as _;
    static DICTIONARY: &[u8] =
        include_bytes!("../../hubhook-store/dictionaries/records-248174138.zdict");
    // Each step times itself (µs per record); the best of 20 rounds is kept.
    let best = |mut step: Box<dyn FnMut() -> f64 + '_>| {
        (0..20).map(|_| step()).fold(f64::INFINITY, f64::min)
    };
    let per_record = |started: Instant, records: usize| {
        started.elapsed().as_secs_f64() * 1e6 / records.max(1) as f64
    };
    // The steps of this design: the page split into its records' texts, each record read into
    // its canonical text (parse, nulls, sorted keys: `hubhook_core::record_text`), hashed, packed.
    let split = best(Box::new(|| {
        let started = Instant::now();
        let records = serde_json::from_slice::<Vec<&RawValue>>(page).unwrap_or_default();
        per_record(started, std::hint::black_box(records).len())
    }));
    let raws: Vec<&RawValue> = serde_json::from_slice(page).unwrap_or_default();
    let fields = ["id", "_info.lastUpdated"].map(|p| FieldPath::parse(p).expect("path"));
    let fields: Vec<&FieldPath> = fields.iter().collect();
    let read = best(Box::new(|| {
        let started = Instant::now();
        for raw in &raws {
            std::hint::black_box(
                hubhook_core::record_text::read_record(raw.get(), true, &fields).ok(),
            );
        }
        per_record(started, raws.len())
    }));
    let texts: Vec<String> = raws
        .iter()
        .filter_map(|raw| hubhook_core::record_text::read_record(raw.get(), true, &fields).ok())
        .map(|(text, _)| text)
        .collect();
    let hash = best(Box::new(|| {
        let started = Instant::now();
        for text in &texts {
            std::hint::black_box(hex::encode(sha2::Sha256::digest(text.as_bytes())));
        }
        per_record(started, texts.len())
    }));
    let mut compressor =
        zstd::bulk::Compressor::with_dictionary(1, DICTIONARY).expect("zstd compressor");
    let pack = best(Box::new(|| {
        let started = Instant::now();
        for text in &texts {
            std::hint::black_box(compressor.compress(text.as_bytes()).ok());
        }
        per_record(started, texts.len())
    }));
    // The same reading as the fourteenth round did it, for the ratio: into serde_json values,
    // nulls removed, written canonically.
    let parse = best(Box::new(|| {
        let started = Instant::now();
        let records = serde_json::from_slice::<Vec<Value>>(page).unwrap_or_default();
        per_record(started, std::hint::black_box(records).len())
    }));
    let records: Vec<Value> = serde_json::from_slice(page).unwrap_or_default();
    let strip = best(Box::new(|| {
        let mut copy = records.clone();
        let started = Instant::now();
        copy.iter_mut().for_each(hubhook_connectwise::strip_nulls);
        per_record(started, std::hint::black_box(copy).len())
    }));
    let canonical = best(Box::new(|| {
        let started = Instant::now();
        for record in &records {
            std::hint::black_box(hubhook_core::classify::canonical_json(record));
        }
        per_record(started, records.len())
    }));
    // What an update adds (nineteenth round): each record's `changedFields` against the version
    // a mass update makes of it (`_info.lastUpdated` and `updatedBy` changed, nothing else).
    let updated: Vec<String> = records
        .iter()
        .map(|record| {
            let mut record = record.clone();
            hubhook_connectwise::strip_nulls(&mut record);
            if let Some(info) = record.get_mut("_info").and_then(Value::as_object_mut) {
                info.insert("lastUpdated".into(), json!("2030-01-01T00:00:00Z"));
                info.insert("updatedBy".into(), json!("integration"));
            }
            hubhook_core::classify::canonical_json(&record)
        })
        .collect();
    let changes = best(Box::new(|| {
        let started = Instant::now();
        for (before, after) in texts.iter().zip(&updated) {
            std::hint::black_box(hubhook_core::changed_fields(before, after));
        }
        per_record(started, updated.len())
    }));
    println!(
        "update: changedFields of each record against its mass-updated version {changes:.1} µs \
         a record, {:.2} times its read",
        changes / read
    );
    let total = split + read + hash + pack;
    println!(
        "floor: per record on one core, split {split:.1} µs + read {read:.1} (parse, nulls, \
         canonical text) + SHA-256 {hash:.1} + pack {pack:.1} = {total:.1} µs; two cores doing \
         only these: {:.0} records/s, ratio {:.2} to the plain client",
        2e6 / total,
        2e6 / total / ceiling
    );
    let values = parse + strip + canonical;
    println!(
        "floor, reading through serde_json values: parse {parse:.1} µs + nulls {strip:.1} + \
         canonical text {canonical:.1} = {values:.1} µs against {:.1} split and read: {:.2} times as much",
        split + read,
        values / (split + read)
    );
}

// ---------------------------------------------------------------------------------------------
// (b) Change → callback latency at a 1 s interval.

async fn latency(side: &Handle, changes: usize) -> anyhow::Result<()> {
    let bench = start(side, 1000).await?;
    // 1/60 of a minute: the 1 s floor the server allows.
    let id = bench
        .create(&bench.body(&["contacts"], "0.0166667"))
        .await?;
    bench.baseline_done(id).await?;
    let ids = bench.sim.sim.ids(CONTACTS);
    let mut latencies = Vec::new();
    for step in 0..changes {
        let contact = ids[(step * 7919) % ids.len()];
        // Spread the changes over the poll interval.
        tokio::time::sleep(Duration::from_millis(300 + (step as u64 * 397) % 1000)).await;
        let ops = json!([{ "op": "replace", "path": "title", "value": format!("t{step}") }]);
        let changed = Instant::now();
        bench.sim.sim.patch(CONTACTS, contact, ops)?;
        let arrived = bench
            .receiver
            .wait_for(&contact.to_string(), Duration::from_secs(30))
            .await?;
        latencies.push(arrived.saturating_duration_since(changed).as_secs_f64());
    }
    latencies.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&latencies, 50.0), percentile(&latencies, 99.0));
    println!(
        "latency ({changes} changes, 1 s interval): p50 {p50:.2} s, p99 {p99:.2} s; \
         ratio p50 / interval {p50:.2}, p99 / interval {p99:.2}"
    );
    bench.server.stop().await
}

// ---------------------------------------------------------------------------------------------
// (c) Idle cost of N instances × R resources polling each minute.

async fn idle(
    side: &Handle,
    instances: usize,
    resources: usize,
    seconds: usize,
) -> anyhow::Result<()> {
    const NAMES: [&str; 4] = ["contacts", "accounts", "opportunities", "activities"];
    let names = &NAMES[..resources.clamp(1, NAMES.len())];
    let bench = Arc::new(start(side, 10).await?);
    let body = bench.body(names, "1");
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut creators = Vec::new();
    for _ in 0..4 {
        let (bench, body, next) = (bench.clone(), body.clone(), next.clone());
        creators.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < instances {
                bench.create(&body).await?;
            }
            anyhow::Ok(())
        }));
    }
    for creator in creators {
        creator.await??;
    }
    println!(
        "created {instances} instances × {} resources in {:.1} s",
        names.len(),
        started.elapsed().as_secs_f64()
    );
    // Let the first round (the baselines) pass, then measure a steady stretch that covers at
    // least one whole interval, so that every job is polled in it.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let lags = side
        .spawn(schedule_lags(bench.db_path.clone(), seconds))
        .await;
    let cpu_before = server_cpu();
    let wall = Instant::now();
    let mut rss_max: f64 = 0.0;
    while wall.elapsed() < Duration::from_secs(seconds as u64) {
        rss_max = rss_max.max(rss_mb());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let cpu = (server_cpu() - cpu_before) / wall.elapsed().as_secs_f64();
    let mut lags = lags??;
    lags.sort_by(f64::total_cmp);
    let mut list_ms = Vec::new();
    let mut list_bytes = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let response = bench
            .http
            .get(format!("{}/elements/api-v2/instances", bench.server.url()))
            .header("Authorization", &bench.auth)
            .send()
            .await?;
        list_bytes = response.bytes().await?.len();
        list_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "idle {instances} × {}: server CPU {:.1} % of a core (goal < 50 % at 10,000 × 3), \
         RSS max {rss_max:.0} MB (process, with a 10-record simulator), schedule lag p50 {:.2} s \
         p99 {:.2} s over {} polls, GET /instances median {:.0} ms ({list_bytes} bytes); \
         ratio CPU / 50 % goal {:.2}",
        names.len(),
        cpu * 100.0,
        percentile(&lags, 50.0),
        percentile(&lags, 99.0),
        lags.len(),
        median(list_ms),
        cpu / 0.5
    );
    match Arc::try_unwrap(bench) {
        Ok(bench) => bench.server.stop().await,
        Err(_) => Ok(()),
    }
}

/// How late each poll ran: for every job polled during the stretch, the end of its poll
/// (`last_polled_at`) minus the `next_run_at` it had before (read every 2 s).
async fn schedule_lags(db: std::path::PathBuf, seconds: usize) -> anyhow::Result<Vec<f64>> {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", db.display())).await?;
    let read = || async {
        let rows: Vec<(i64, String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT instance_id, resource, next_run_at, last_polled_at FROM poll_jobs",
        )
        .fetch_all(&pool)
        .await?;
        anyhow::Ok(rows)
    };
    let mut due: HashMap<(i64, String), (i64, Option<i64>)> = read()
        .await?
        .into_iter()
        .map(|(i, r, n, l)| ((i, r), (n, l)))
        .collect();
    let mut lags = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(seconds as u64) {
        tokio::time::sleep(Duration::from_secs(2)).await;
        for (i, r, next, last) in read().await? {
            let entry = due.entry((i, r)).or_insert((next, last));
            if last != entry.1
                && let Some(polled) = last
            {
                lags.push((polled - entry.0) as f64 / 1000.0);
            }
            *entry = (next, last);
        }
    }
    pool.close().await;
    Ok(lags)
}

// ---------------------------------------------------------------------------------------------
// (d) and (e): a mass update of N contacts delivered, against a plain keep-alive client with 16
// POSTs in flight sending the same bodies to the same receiver; database bytes per event.

async fn delivery(
    side: &Handle,
    records: usize,
    interval: &str,
    storage: bool,
    node: bool,
) -> anyhow::Result<()> {
    // Only contacts are polled: the other resources stay at the default size.
    let bench = start_with(
        side,
        SimConfig {
            contacts: Some(records),
            ..SimConfig::default()
        },
    )
    .await?;
    let sink = if node {
        Sink::Node(NodeReceiver::start()?)
    } else {
        Sink::Axum(bench.receiver.clone())
    };
    println!(
        "receiver: {}, {CEILING_IN_FLIGHT} deliveries in flight allowed to it",
        if node {
            "Node (http module)"
        } else {
            "axum, in process"
        }
    );
    let mut body = bench.body(&["contacts"], interval);
    body["configuration"]["event.notification.callback.url"] = json!(sink.url());
    let id = bench.create(&body).await?;
    bench.baseline_done(id).await?;
    let db_before = file_size(&bench.db_path) + file_size(&wal_path(&bench.db_path));
    let changed = bench.sim.sim.mass_update(CONTACTS, records)?["updated"]
        .as_u64()
        .unwrap_or(0) as usize;
    let updated = Instant::now();
    // Requests the simulator has answered: the first one after this is the poll's first page.
    let answered = || bench.sim.sim.stats()["total"].as_u64().unwrap_or(0);
    let answered_before = answered();
    // When the poll's last page was committed (its cursor moved), and how many events had
    // arrived by then: how much of the delivery overlapped the storing.
    let cursor_before = bench.cursor(id).await?;
    // Poll now, whatever the interval (a long one keeps re-reads out of the measurement).
    bench.poll_now(id).await?;
    let cpu_before = server_cpu();
    let mut wal_max = 0;
    let mut first = None;
    let mut first_page = None;
    let mut stored_at = None;
    let stats = loop {
        let stats = sink.stats(&bench.http).await?;
        if stored_at.is_none() && bench.cursor(id).await? != cursor_before {
            stored_at = Some((updated.elapsed().as_secs_f64(), stats.events));
        }
        wal_max = wal_max.max(file_size(&wal_path(&bench.db_path)));
        if first_page.is_none() && answered() > answered_before {
            first_page = Some(updated.elapsed().as_secs_f64());
        }
        if first.is_none() && stats.events > 0 {
            first = Some(updated.elapsed().as_secs_f64());
        }
        if stats.events >= changed {
            break stats;
        }
        if updated.elapsed() > Duration::from_secs(1800) {
            bail!("only {} of {changed} events delivered", stats.events);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let cpu = (server_cpu() - cpu_before) / updated.elapsed().as_secs_f64();
    let posts = stats.posts;
    let spread = stats.spread.max(1e-3);
    let samples = sink.samples(&bench.http).await?;
    let ours = posts as f64 / spread;
    let db_after = file_size(&bench.db_path) + file_size(&wal_path(&bench.db_path));
    let body_kb =
        samples.iter().map(Bytes::len).sum::<usize>() as f64 / samples.len().max(1) as f64 / 1024.0;

    let url = sink.url();
    let samples_again = samples.clone();
    let ceiling = side
        .spawn(async move { plain_posts(&url, &samples, posts, CEILING_IN_FLIGHT).await })
        .await??;
    println!(
        "mass update of {changed} contacts: first callback after {:.2} s ({:.2} s after the \
         first page was served), {posts} notifications (about {body_kb:.1} KB each) in \
         {spread:.1} s",
        first.unwrap_or(f64::NAN),
        first.unwrap_or(f64::NAN) - first_page.unwrap_or(f64::NAN)
    );
    if let Some((at, events)) = stored_at {
        println!(
            "mass update: the poll was stored after {at:.2} s, when {events} of the {changed} \
             events had been delivered"
        );
    }
    if storage {
        let record_bytes: usize = bench
            .sim
            .sim
            .ids(CONTACTS)
            .iter()
            .take(1000)
            .filter_map(|id| bench.sim.sim.get(CONTACTS, *id))
            .map(|r| r.to_string().len())
            .sum();
        let record_kb = record_bytes as f64 / 1000.0_f64.min(changed as f64) / 1024.0;
        let per_event = (db_after.saturating_sub(db_before)) as f64 / changed as f64 / 1024.0;
        println!(
            "storage: {per_event:.2} KB of database and WAL per event (record about \
             {record_kb:.2} KB; goal ≤ 3.5 KB for a 3.2 KB record), WAL at most {:.1} MB, \
             database {:.1} MB + WAL {:.1} MB at the end; ratio per event / record {:.2}",
            wal_max as f64 / 1e6,
            file_size(&bench.db_path) as f64 / 1e6,
            file_size(&wal_path(&bench.db_path)) as f64 / 1e6,
            per_event / record_kb
        );
    } else {
        println!(
            "delivery: hubhook {ours:.0} notifications/s (server CPU {:.0} % of a core), plain \
             client {ceiling:.0} POSTs/s, ratio {:.2}",
            cpu * 100.0,
            ours / ceiling
        );
        if let Sink::Node(receiver) = &sink {
            let drain = backlog_drain(&bench, receiver, id, records).await?;
            let drained = drain.rate;
            // The ceiling again, right after: the machine's load moves between the two.
            let url = sink.url();
            let receiver_cpu = receiver.cpu();
            let again =
                side.spawn(async move {
                    plain_posts(&url, &samples_again, posts, CEILING_IN_FLIGHT).await
                })
                .await??;
            let receiver_cpu = (receiver.cpu() - receiver_cpu) / posts as f64;
            println!(
                "backlog: hubhook {drained:.0} notifications/s, plain client {again:.0} POSTs/s \
                 just after, ratio {:.2} ({:.2} to the first ceiling)",
                drained / again,
                drained / ceiling
            );
            // An estimate of the end-to-end figure's bound on this machine: every notification
            // costs the server the storing of its events and its delivery, and the receiver its
            // answer, on the same cores; the plain client pays only the last. (The first page
            // is stored before the first callback, outside the measured span, so a small run
            // can pass it.)
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
            let per = drain.store_cpu + drain.deliver_cpu + receiver_cpu;
            println!(
                "budget: CPU per notification: storing its events {:.0} µs (server), delivering \
                 it {:.0} µs (server), answering it {:.0} µs (receiver); {cores} cores doing \
                 only these: {:.0} notifications/s, ratio {:.2} to the plain client",
                drain.store_cpu * 1e6,
                drain.deliver_cpu * 1e6,
                receiver_cpu * 1e6,
                cores / per,
                cores / per / again
            );
        }
    }
    bench.server.stop().await
}

/// Delivery alone, at a backlog: the receiver holds every POST while a second mass update is
/// polled and stored, then answers; notifications per second from its opening to the last
/// answer. (The first figure runs from the first callback to the last while the poll is still
/// storing, so it is bound by ingest as much as by delivery.)
async fn backlog_drain(
    bench: &Bench,
    receiver: &NodeReceiver,
    id: InstanceId,
    records: usize,
) -> anyhow::Result<Drain> {
    let call = |path: &str| {
        let url = format!("{}{path}", receiver.base);
        let http = bench.http.clone();
        async move { http.post(url).send().await?.error_for_status().map(drop) }
    };
    call("/reset").await?;
    call("/hold").await?;
    let before = bench.cursor(id).await?;
    // The changes must carry a later ConnectWise second than the first mass update's.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let changed = bench.sim.sim.mass_update(CONTACTS, records)?["updated"]
        .as_u64()
        .unwrap_or(0) as usize;
    let stored_from = Instant::now();
    let store_cpu = server_cpu();
    bench.poll_now(id).await?;
    // The poll is done when the cursor has moved past the first mass update.
    while bench.cursor(id).await? == before {
        if stored_from.elapsed() > Duration::from_secs(1800) {
            bail!("the poll of the second mass update did not finish");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let polled = stored_from.elapsed().as_secs_f64();
    let store_cpu = server_cpu() - store_cpu;
    println!(
        "backlog: the poll of {changed} changed contacts stored them in {polled:.2} s \
         ({:.0} changed records/s)",
        changed as f64 / polled
    );
    // And every notification stored: another poll (at a short interval) may have moved the
    // cursor while this one still reads. Done when the count stops growing for a second.
    let waiting = || async {
        anyhow::Ok(
            bench
                .server
                .store()
                .delivery_backlog(jiff::Timestamp::now())
                .await?
                .due,
        )
    };
    let mut stored = waiting().await?;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = waiting().await?;
        if now == stored {
            break;
        }
        stored = now;
    }
    println!(
        "backlog: {changed} changed contacts, {stored} notifications waiting (besides the \
         {CEILING_IN_FLIGHT} held) after {:.1} s",
        stored_from.elapsed().as_secs_f64()
    );
    let cpu_before = server_cpu();
    call("/open").await?;
    let opened = Instant::now();
    let stats = loop {
        let stats = receiver.stats(&bench.http).await?;
        if stats.events >= changed && stats.parked == 0 {
            break stats;
        }
        if opened.elapsed() > Duration::from_secs(1800) {
            bail!("only {} of {changed} events delivered", stats.events);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let deliver_cpu = server_cpu() - cpu_before;
    let cpu = deliver_cpu / opened.elapsed().as_secs_f64();
    println!(
        "backlog: {} notifications ({} events) answered within {:.2} s of the opening \
         (server CPU {:.0} % of a core)",
        stats.posts,
        stats.events,
        stats.since_open,
        cpu * 100.0
    );
    // `BENCH_METRICS=1` prints the server's delivery metrics after the drain (the attempt
    // duration histogram shows where a delivery's time goes; docs/benchmarks.md).
    if std::env::var_os("BENCH_METRICS").is_some() {
        let metrics = bench
            .http
            .get(format!("{}/metrics", bench.server.url()))
            .send()
            .await?
            .text()
            .await?;
        for line in metrics
            .lines()
            .filter(|l| l.contains("delivery_duration") || l.contains("deliveries_"))
        {
            println!("METRIC {line}");
        }
    }
    let posts = stats.posts.max(1) as f64;
    Ok(Drain {
        rate: stats.posts as f64 / stats.since_open.max(1e-3),
        store_cpu: store_cpu / posts,
        deliver_cpu: deliver_cpu / posts,
    })
}

/// What [`backlog_drain`] measured.
struct Drain {
    /// Notifications per second from the opening to the last answer.
    rate: f64,
    /// The server's CPU seconds per notification while the poll stored the backlog, and
    /// while it was delivered.
    store_cpu: f64,
    deliver_cpu: f64,
}

/// What a receiver has seen: POSTs, events, and seconds from the first POST to the last.
struct SinkStats {
    posts: usize,
    events: usize,
    spread: f64,
}

/// The receiver of the delivery benchmark: the in-process axum one, or a Node process (the
/// issue's figures were measured with a Node receiver, which is slower than axum and so is a
/// lower ceiling).
enum Sink {
    Axum(Receiver),
    Node(NodeReceiver),
}

impl Sink {
    fn url(&self) -> String {
        match self {
            Sink::Axum(receiver) => receiver.url.clone(),
            Sink::Node(node) => format!("{}/webhook", node.base),
        }
    }

    async fn stats(&self, http: &reqwest::Client) -> anyhow::Result<SinkStats> {
        match self {
            Sink::Axum(receiver) => {
                let state = receiver.state.lock().expect("lock");
                let spread = match (state.posts.first(), state.posts.last()) {
                    (Some(a), Some(b)) => b.0.duration_since(a.0).as_secs_f64(),
                    _ => 0.0,
                };
                Ok(SinkStats {
                    posts: state.posts.len(),
                    events: state.events,
                    spread,
                })
            }
            Sink::Node(node) => {
                let stats = node.stats(http).await?;
                Ok(SinkStats {
                    posts: stats.posts,
                    events: stats.events,
                    spread: stats.spread,
                })
            }
        }
    }

    async fn samples(&self, http: &reqwest::Client) -> anyhow::Result<Vec<Bytes>> {
        match self {
            Sink::Axum(receiver) => Ok(receiver.state.lock().expect("lock").samples.clone()),
            Sink::Node(node) => {
                let bodies: Vec<String> = http
                    .get(format!("{}/samples", node.base))
                    .send()
                    .await?
                    .json()
                    .await?;
                Ok(bodies.into_iter().map(Bytes::from).collect())
            }
        }
    }
}

/// `node examples/bench_receiver.js`, killed when dropped.
struct NodeReceiver {
    child: std::process::Child,
    base: String,
}

/// What the Node receiver has seen since its last reset.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NodeStats {
    posts: usize,
    events: usize,
    /// POSTs held unanswered at the moment.
    parked: usize,
    /// From the first POST to the last, in milliseconds.
    spread_ms: f64,
    /// From the opening (`/open`) to the last answer, in milliseconds.
    since_open_ms: f64,
}

/// [`NodeStats`] in seconds.
struct ReceiverFigures {
    posts: usize,
    events: usize,
    parked: usize,
    spread: f64,
    since_open: f64,
}

impl NodeReceiver {
    fn start() -> anyhow::Result<NodeReceiver> {
        use std::io::BufRead as _;
        let mut child = std::process::Command::new("node")
            .arg("-e")
            .arg(include_str!("bench_receiver.js"))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .context(
                "starting the Node receiver (`node` must be on PATH, or use --receiver axum)",
            )?;
        let stdout = child.stdout.take().context("the receiver's stdout")?;
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        let port: u16 = line
            .trim()
            .parse()
            .with_context(|| format!("the Node receiver printed `{}`, not a port", line.trim()))?;
        Ok(NodeReceiver {
            child,
            base: format!("http://127.0.0.1:{port}"),
        })
    }
}

impl NodeReceiver {
    /// The receiver process's CPU seconds so far.
    fn cpu(&self) -> f64 {
        ticks(
            &std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default(),
        )
    }

    async fn stats(&self, http: &reqwest::Client) -> anyhow::Result<ReceiverFigures> {
        let stats: NodeStats = http
            .get(format!("{}/stats", self.base))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(ReceiverFigures {
            posts: stats.posts,
            events: stats.events,
            parked: stats.parked,
            spread: stats.spread_ms / 1000.0,
            since_open: stats.since_open_ms / 1000.0,
        })
    }
}

impl Drop for NodeReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// POSTs `total` bodies (cycling through `bodies`) with `in_flight` at a time over keep-alive
/// connections; returns POSTs per second.
async fn plain_posts(
    url: &str,
    bodies: &[Bytes],
    total: usize,
    in_flight: usize,
) -> anyhow::Result<f64> {
    let http = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));
    let bodies = Arc::new(bodies.to_vec());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..in_flight {
        let (http, next, bodies, url) =
            (http.clone(), next.clone(), bodies.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    return anyhow::Ok(());
                }
                let body = bodies[n % bodies.len()].clone();
                let response = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await?;
                response.bytes().await?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

// ---------------------------------------------------------------------------------------------
// (f) Issue #12: 1, 2 and 3 `hubhook serve` processes on one PostgreSQL database, and 1 on
// SQLite, against the same simulator and the same receiver, which takes 100 ms to answer (I/O
// bound, as real receivers are; `--receiver-delay-ms 0` measures the nodes' own cost).

/// Deliveries one node keeps in flight at most: the engine's `delivery_concurrency` (16, not a
/// setting). `--receiver-concurrency` (default 4 per callback origin) is raised to it below,
/// else one receiver could never see more than 4 per node.
const NODE_IN_FLIGHT: usize = 16;
/// Every node's settings, besides its database, node id and listen address.
const NODE_SETTINGS: &[(&str, &str)] = &[
    ("HUBHOOK_RECEIVER_CONCURRENCY", "16"),
    ("HUBHOOK_MIN_REFRESH_INTERVAL", "1"),
    ("HUBHOOK_SITE_REQUESTS_PER_MINUTE", "0"),
    ("HUBHOOK_SITE_POLL_CONCURRENCY", "16"),
    ("HUBHOOK_POLL_CONCURRENCY", "16"),
    ("HUBHOOK_ALLOW_PRIVATE_CALLBACKS", "true"),
    // Deliveries wait at the receiver's closed gate while the backlog is built; they must not
    // time out (and be retried seconds later) meanwhile.
    ("HUBHOOK_DELIVERY_TIMEOUT", "120"),
    ("HUBHOOK_DELIVERY_LEASE", "180"),
];
const NODES_MASTER_KEY: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
const POLLS_SERIES: &str = r#"hubhook_polls_total{outcome="success"}"#;
const STORED_SERIES: &str = "hubhook_notifications_stored_total";

/// One `hubhook serve` process (target/release/hubhook), stopped when dropped.
struct Node {
    child: std::process::Child,
    url: String,
}

impl Node {
    fn start(
        binary: &std::path::Path,
        database_url: &str,
        id: usize,
        log: &std::path::Path,
    ) -> anyhow::Result<Node> {
        use std::io::BufRead as _;
        let mut command = hubhook_command(binary);
        command
            .arg("serve")
            .env("HUBHOOK_DATABASE_URL", database_url)
            .env("HUBHOOK_MASTER_KEY", NODES_MASTER_KEY)
            .env("HUBHOOK_NODE_ID", format!("node-{id}"))
            .env("HUBHOOK_LISTEN", "127.0.0.1:0")
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(log)?);
        for (name, value) in NODE_SETTINGS {
            command.env(name, value);
        }
        let mut child = command.spawn().context("starting hubhook serve")?;
        let stdout = child.stdout.take().context("stdout")?;
        let (lines, found) = std::sync::mpsc::channel();
        // Reads on a thread, and keeps draining so that later prints never block the node.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = lines.send(line);
            }
        });
        let mut node = Node {
            child,
            url: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match found.recv_timeout(left) {
                Ok(line) if line.contains("listening on") => {
                    let at = line.find("http://").context("an address")?;
                    node.url = line[at..]
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    return Ok(node);
                }
                Ok(_) => {}
                Err(_) => bail!("node-{id} did not start; see {}", log.display()),
            }
        }
    }

    /// A counter of this node's `/metrics` (0 before it is first counted).
    async fn counter(&self, http: &reqwest::Client, series: &str) -> anyhow::Result<f64> {
        let text = http
            .get(format!("{}/metrics", self.url))
            .send()
            .await?
            .text()
            .await?;
        Ok(text
            .lines()
            .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse().ok())
            .unwrap_or(0.0))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // SIGTERM first (a clean stop gives its leases back), SIGKILL after 10 s.
        let _ = std::process::Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `hubhook` binary beside this example (target/release/examples/bench ->
/// target/release/hubhook), with none of the caller's `HUBHOOK_*` settings.
fn hubhook_command(binary: &std::path::Path) -> std::process::Command {
    let mut command = std::process::Command::new(binary);
    for (name, _) in std::env::vars() {
        if name.starts_with("HUBHOOK_") {
            command.env_remove(name);
        }
    }
    command
}

fn hubhook_binary() -> anyhow::Result<std::path::PathBuf> {
    let exe = std::env::current_exe()?;
    let binary = exe
        .parent()
        .and_then(std::path::Path::parent)
        .map(|dir| dir.join("hubhook"))
        .context("the example's directory")?;
    if !binary.exists() {
        bail!(
            "{} is missing: build it first (cargo build --release -p hubhook --bins --examples)",
            binary.display()
        );
    }
    Ok(binary)
}

/// `hubhook org create` on the database: the `Authorization` header of its first user.
fn org_auth(binary: &std::path::Path, database_url: &str) -> anyhow::Result<String> {
    let output = hubhook_command(binary)
        .args([
            "org",
            "create",
            "--name",
            "bench",
            "--database-url",
            database_url,
        ])
        .env("HUBHOOK_MASTER_KEY", NODES_MASTER_KEY)
        .output()?;
    if !output.status.success() {
        bail!(
            "org create: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let org: Value = serde_json::from_slice(&output.stdout)?;
    Ok(format!(
        "User {}, Organization {}",
        org["userSecret"].as_str().context("userSecret")?,
        org["organizationSecret"]
            .as_str()
            .context("organizationSecret")?
    ))
}

/// A PostgreSQL database of the run's own, on `HUBHOOK_BENCH_POSTGRES` (default the
/// machine's `postgres://postgres@127.0.0.1:5432`).
async fn postgres_admin(sql: String) -> anyhow::Result<()> {
    use sqlx::Connection as _;
    let server = std::env::var("HUBHOOK_BENCH_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned());
    let mut conn = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .with_context(|| format!("PostgreSQL at {server}"))?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}

fn postgres_url(database: &str) -> String {
    let server = std::env::var("HUBHOOK_BENCH_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned());
    format!("{server}/{database}")
}

/// What one configuration measured.
struct NodeFigures {
    label: String,
    nodes: usize,
    /// Notifications per second from the gate's opening to the last answer.
    deliveries: f64,
    posts: usize,
    polls: f64,
}

/// Everything the configurations share: the simulator, the receiver, the binary.
struct NodesBench {
    sim: SimHandle,
    receiver: Receiver,
    binary: std::path::PathBuf,
    dir: tempfile::TempDir,
    http: reqwest::Client,
    records: usize,
    seconds: usize,
    instances: usize,
}

async fn nodes(
    side: &Handle,
    records: usize,
    seconds: usize,
    instances: usize,
    receiver_delay: Duration,
) -> anyhow::Result<()> {
    let binary = hubhook_binary()?;
    let sim = spawn_simulator(
        side,
        SimConfig {
            records,
            ..SimConfig::default()
        },
    )
    .await?;
    let receiver = side.spawn(Receiver::start_with(receiver_delay)).await??;
    println!(
        "nodes: {records} contacts in the simulator; receiver answers 200 after {} ms; every \
         node: {}; each node keeps at most {NODE_IN_FLIGHT} deliveries in flight \
         (delivery_concurrency, fixed), all of them to this one receiver",
        receiver_delay.as_millis(),
        NODE_SETTINGS
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let bench = NodesBench {
        sim,
        receiver,
        binary,
        dir: tempfile::tempdir()?,
        http: reqwest::Client::new(),
        records,
        seconds,
        instances,
    };
    let mut figures = Vec::new();
    let sqlite = format!("sqlite://{}", bench.dir.path().join("bench.db").display());
    let auth = org_auth(&bench.binary, &sqlite)?;
    figures.push(bench.configuration("SQLite", &sqlite, &auth, 1).await?);

    let database = format!("hubhook_bench_{}", std::process::id());
    postgres_admin(format!("CREATE DATABASE {database}")).await?;
    let url = postgres_url(&database);
    let on_postgres = async {
        let auth = org_auth(&bench.binary, &url)?;
        let mut figures = Vec::new();
        for nodes in 1..=3 {
            figures.push(
                bench
                    .configuration("PostgreSQL", &url, &auth, nodes)
                    .await?,
            );
        }
        anyhow::Ok(figures)
    }
    .await;
    // Dropped whatever happened (FORCE: a node killed late may still hold a connection).
    postgres_admin(format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)")).await?;
    figures.extend(on_postgres?);

    // The ceilings: a plain keep-alive client with as many POSTs in flight as the nodes of a
    // configuration may have in total, the same bodies, the same receiver.
    let samples = bench.receiver.state.lock().expect("lock").samples.clone();
    let mut ceilings = HashMap::new();
    for n in 1..=3 {
        let in_flight = n * NODE_IN_FLIGHT;
        let total = figures.iter().map(|f| f.posts).max().unwrap_or(1000);
        let (url, samples) = (bench.receiver.url.clone(), samples.clone());
        let ceiling = side
            .spawn(async move { plain_posts(&url, &samples, total, in_flight).await })
            .await??;
        println!(
            "ceiling: plain keep-alive client, {in_flight} POSTs in flight ({n} × \
             {NODE_IN_FLIGHT}), {total} POSTs: {ceiling:.0} POSTs/s"
        );
        ceilings.insert(n, ceiling);
    }
    println!("| store | nodes | deliveries/s | ceiling (in flight) | ratio | polls/s |");
    for f in &figures {
        let ceiling = ceilings[&f.nodes];
        println!(
            "| {} | {} | {:.0} | {ceiling:.0} ({}) | {:.2} | {:.0} |",
            f.label,
            f.nodes,
            f.deliveries,
            f.nodes * NODE_IN_FLIGHT,
            f.deliveries / ceiling,
            f.polls
        );
    }
    let find = |label: &str, nodes: usize| {
        figures
            .iter()
            .find(|f| f.label == label && f.nodes == nodes)
            .map(|f| (f.deliveries, f.polls))
            .unwrap_or((f64::NAN, f64::NAN))
    };
    let (sqlite, pg1, pg2, pg3) = (
        find("SQLite", 1),
        find("PostgreSQL", 1),
        find("PostgreSQL", 2),
        find("PostgreSQL", 3),
    );
    println!(
        "goals: deliveries 3 nodes / 1 node on PostgreSQL {:.2} (goal ≥ 2), 2 nodes / 1 node \
         {:.2}; 1 node PostgreSQL / SQLite {:.2} (goal ≥ 0.7); polls 3 / 1 {:.2}, 2 / 1 {:.2}, \
         PostgreSQL / SQLite {:.2}",
        pg3.0 / pg1.0,
        pg2.0 / pg1.0,
        pg1.0 / sqlite.0,
        pg3.1 / pg1.1,
        pg2.1 / pg1.1,
        pg1.1 / sqlite.1
    );
    Ok(())
}

impl NodesBench {
    fn body(&self, interval: &str, polls_only: bool) -> Value {
        // Polls read `fields` (ConnectWise's user-defined fields: 8 records, whatever
        // --records says): a baseline of 8 records, then polls that find nothing new, so what
        // is measured is the cost of a poll. A filter on contacts would not do: the simulator
        // scans every contact to answer an empty page, and becomes the bottleneck.
        let resource = if polls_only { "fields" } else { "contacts" };
        let mut block = hubhook_core::connectwise_poller_block(resource);
        if polls_only {
            block["reconcileInterval"] = json!(0);
        }
        instance_body(
            &self.sim.base_url(),
            &self.receiver.url,
            interval,
            json!({ resource: block }),
        )
    }

    async fn create(&self, node: &Node, auth: &str, body: &Value) -> anyhow::Result<i64> {
        create_instance(&self.http, &node.url, auth, body).await
    }

    async fn delete(&self, node: &Node, auth: &str, id: i64) -> anyhow::Result<()> {
        let response = self
            .http
            .delete(format!("{}/elements/api-v2/instances/{id}", node.url))
            .header("Authorization", auth)
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("deleting instance {id}: {}", response.status());
        }
        Ok(())
    }

    /// A counter summed over the nodes.
    async fn total(&self, nodes: &[Node], series: &str) -> anyhow::Result<f64> {
        let mut sum = 0.0;
        for node in nodes {
            sum += node.counter(&self.http, series).await?;
        }
        Ok(sum)
    }

    async fn wait_total(&self, nodes: &[Node], series: &str, at_least: f64) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(900);
        while self.total(nodes, series).await? < at_least {
            if Instant::now() > deadline {
                bail!("{series} never reached {at_least}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// Starts `count` nodes on `database_url`, measures deliveries then polls, removes the
    /// instances it made (the next configuration shares the database) and stops the nodes.
    async fn configuration(
        &self,
        label: &str,
        database_url: &str,
        auth: &str,
        count: usize,
    ) -> anyhow::Result<NodeFigures> {
        let nodes = (1..=count)
            .map(|id| {
                let log = self
                    .dir
                    .path()
                    .join(format!("{label}-{count}-node-{id}.log"));
                Node::start(&self.binary, database_url, id, &log)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        println!("{label}, {count} node(s): started");

        // Deliveries: a backlog built behind the receiver's closed gate, then delivered.
        self.receiver.reset();
        self.receiver.gate.send_replace(false);
        // A 15 min interval: only the POST /poll below polls again.
        let id = self
            .create(&nodes[0], auth, &self.body("15", false))
            .await?;
        self.wait_total(&nodes, POLLS_SERIES, 1.0).await?;
        // The changes must carry a later ConnectWise second than the baseline saw.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let changed = self.sim.sim.mass_update(CONTACTS, self.records)?["updated"]
            .as_u64()
            .unwrap_or(0) as usize;
        let built = Instant::now();
        let polled = self
            .http
            .post(format!(
                "{}/elements/api-v2/instances/{id}/poll",
                nodes[0].url
            ))
            .header("Authorization", auth)
            .send()
            .await?;
        if !polled.status().is_success() {
            bail!("POST /instances/{id}/poll: {}", polled.status());
        }
        self.wait_total(&nodes, POLLS_SERIES, 2.0).await?;
        // And every notification stored (the count stops moving).
        let mut stored = self.total(&nodes, STORED_SERIES).await?;
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = self.total(&nodes, STORED_SERIES).await?;
            if now == stored {
                break;
            }
            stored = now;
        }
        let held = self.receiver.state.lock().expect("lock").posts.len();
        println!(
            "  backlog: {changed} changed contacts, {stored} notifications stored in {:.1} s \
             ({held} POSTs held at the closed gate)",
            built.elapsed().as_secs_f64()
        );
        let opened = Instant::now();
        self.receiver.gate.send_replace(true);
        while self.receiver.events() < changed {
            if opened.elapsed() > Duration::from_secs(1800) {
                bail!(
                    "only {} of {changed} events delivered",
                    self.receiver.events()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The last answer may still be on its way (the receiver notes arrivals first).
        tokio::time::sleep((self.receiver.delay * 2).max(Duration::from_millis(50))).await;
        let (posts, last) = {
            let state = self.receiver.state.lock().expect("lock");
            (
                state.posts.len(),
                state.answered.iter().max().copied().unwrap_or(opened),
            )
        };
        let spread = last.duration_since(opened).as_secs_f64().max(1e-3);
        let deliveries = posts as f64 / spread;
        println!(
            "  deliveries: {posts} notifications in {spread:.1} s from the gate's opening to the \
             last answer: {deliveries:.0}/s"
        );

        // Polls: many instances at the 1 s floor, polls counted over a stretch.
        let body = self.body("0.0166667", true);
        let started = Instant::now();
        let mut ids = vec![id];
        for n in 0..self.instances {
            // Created through every node in turn: all nodes write.
            ids.push(self.create(&nodes[n % count], auth, &body).await?);
        }
        println!(
            "  polls: {} instances × 1 resource (fields, 8 records) at a 1 s interval created in {:.1} s",
            self.instances,
            started.elapsed().as_secs_f64()
        );
        // Every baseline done, and a few seconds of steady polling before the stretch.
        self.wait_total(&nodes, POLLS_SERIES, 2.0 + self.instances as f64)
            .await?;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let before = self.total(&nodes, POLLS_SERIES).await?;
        let stretch = Instant::now();
        tokio::time::sleep(Duration::from_secs(self.seconds as u64)).await;
        let after = self.total(&nodes, POLLS_SERIES).await?;
        let polls = (after - before) / stretch.elapsed().as_secs_f64();
        println!(
            "  polls: {:.0} completed in {:.1} s: {polls:.0}/s (at most {} due per second)",
            after - before,
            stretch.elapsed().as_secs_f64(),
            self.instances
        );
        for (n, id) in ids.into_iter().enumerate() {
            self.delete(&nodes[n % count], auth, id).await?;
        }
        drop(nodes);
        Ok(NodeFigures {
            label: label.to_owned(),
            nodes: count,
            deliveries,
            posts,
            polls,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The SQLite store's record dictionary (not a benchmark: it makes the file the store packs
// records with; see hubhook-store's `sqlite/packed.rs`).

/// The simulator's list resources the dictionary learns from.
const DICTIONARY_RESOURCES: [&str; 9] = [
    "company/contacts",
    "company/companies",
    "service/tickets",
    "sales/opportunities",
    "sales/activities",
    "time/entries",
    "project/projects",
    "system/members",
    "service/boards",
];
/// Records sampled from each resource.
const DICTIONARY_SAMPLES: usize = 300;
/// The dictionary's size: 64 KiB packed faster than 16 KiB, to about the same sizes
/// (docs/benchmarks.md, "Fourteenth round").
const DICTIONARY_BYTES: usize = 64 * 1024;

/// The held instance's resources in `claims`.
const KNOWN_RESOURCES: [&str; 2] = ["contacts", "companies"];

/// What one delivery claim costs beside a backlog it cannot serve (`hubhook_store::deliveries`,
/// "Paused notifications" and `claim_head`), on a SQLite file of its own: an organization's
/// instance holds `backlog` due notifications, and `siblings` other instances of it and one of
/// a second organization hold 5 each. The median of 50 claims of 4 (each lease given back, so every claim sees the
/// same rows) is measured with the backlog servable (the ceiling: the claim takes the oldest),
/// with its instance disabled (its notifications parked), and with its receiver full (left out
/// by the claim's `skip`, read past). Also how long disabling and enabling take (parking and
/// bringing back the backlog). The held instance also knows `known` records (1.1 KB each, the
/// size of a packed record) of each of its two resources: an update that removes the second
/// forgets those (timed like the switches), and its delete at the end the first's.
async fn claims(
    backlog: usize,
    known: usize,
    siblings: usize,
    postgres: bool,
) -> anyhow::Result<()> {
    use hubhook_core::NotificationId;
    use hubhook_store::{MasterKey, NewInstance, NewNotification, OrganizationShares, Store};
    let dir = tempfile::tempdir()?;
    // On PostgreSQL, a database of its own for the run (HUBHOOK_BENCH_POSTGRES, as `nodes`).
    let database = format!("hubhook_bench_claims_{}", std::process::id());
    let url = if postgres {
        postgres_admin(format!("CREATE DATABASE {database}")).await?;
        postgres_url(&database)
    } else {
        format!("sqlite://{}", dir.path().join("claims.db").display())
    };
    let store = Store::open(&url, MasterKey::parse(&"42".repeat(32))?).await?;
    let now = jiff::Timestamp::now();
    let big = store
        .create_organization("big", [1; 32], [101; 32], now)
        .await?;
    let other = store
        .create_organization("other", [2; 32], [102; 32], now)
        .await?;
    // A notification body of the size the delivery benchmark sends (3.4 KB records).
    let body = format!(r#"{{"pad":"{}"}}"#, "x".repeat(3_400));
    let mut instances = Vec::new();
    let owners = std::iter::once((big, backlog))
        .chain(std::iter::repeat_n((big, 5), siblings))
        .chain(std::iter::once((other, 5)));
    for (n, ((org, user), count)) in owners.enumerate() {
        let mut token_hash = [0xee; 32];
        token_hash[..8].copy_from_slice(&(n as u64).to_le_bytes());
        let row = store
            .create_instance(NewInstance {
                organization_id: org,
                user_id: user,
                name: format!("instance {n}"),
                element_key: "connectwisecrmrest".into(),
                token_hash,
                configuration: serde_json::Map::new(),
                secrets: serde_json::Map::new(),
                tags: Vec::new(),
                events_enabled: false,
                // The held instance's two resources know `known` records each (below).
                resources: if n == 0 {
                    KNOWN_RESOURCES.map(String::from).to_vec()
                } else {
                    Vec::new()
                },
                refresh_interval_ms: 60_000,
                now,
            })
            .await?;
        // Stored as replays: the simplest way to make notifications due at `now`.
        let replays = (0..count)
            .map(|i| {
                let new = NewNotification {
                    id: NotificationId(format!("replay-{n}-{i}")),
                    event_ids: Vec::new(),
                    body: body.clone(),
                };
                (NotificationId(format!("original-{n}-{i}")), new)
            })
            .collect();
        store.insert_replays(row.id, replays, now).await?;
        instances.push(row.id);
    }
    if known > 0 {
        use sqlx::Connection as _;
        const KNOWN: &str = "WITH RECURSIVE n(i) AS (
                SELECT CAST(0 AS BIGINT) UNION ALL
                SELECT i + 1 FROM n WHERE i + 1 < CAST($2 AS BIGINT))
            INSERT INTO known_objects (instance_id, resource, object_id, content_hash,
                updated_at, record, numeric_id, organization_id)
            SELECT $1, $5, CAST(i AS TEXT), 'hash', 0, $3, i, $4 FROM n";
        let (record, count) = ("r".repeat(1_100), i64::try_from(known)?);
        // A statement per engine: a query is typed by its database.
        macro_rules! insert_known {
            ($connection:ty) => {{
                let mut conn = <$connection>::connect(&url).await?;
                for resource in KNOWN_RESOURCES {
                    sqlx::query(KNOWN)
                        .bind(instances[0].0)
                        .bind(count)
                        .bind(&record)
                        .bind(big.0.0)
                        .bind(resource)
                        .execute(&mut conn)
                        .await?;
                }
                conn.close().await?;
            }};
        }
        if postgres {
            insert_known!(sqlx::PgConnection);
        } else {
            insert_known!(sqlx::SqliteConnection);
        }
    }
    if postgres {
        // As autovacuum would soon after such a load: without statistics the planner's
        // choices say nothing about a running server.
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&url).await?;
        sqlx::raw_sql("ANALYZE").execute(&mut conn).await?;
        conn.close().await?;
    }
    let held = instances[0];
    let engine = if postgres { "PostgreSQL" } else { "SQLite" };
    let shares = OrganizationShares::unlimited();
    let median_claim = async |skip: &[InstanceId]| -> anyhow::Result<f64> {
        let mut times = Vec::new();
        for round in 0..50 {
            let owner = format!("bench-{round}");
            let at = jiff::Timestamp::now();
            let started = Instant::now();
            store
                .claim_notifications_fairly(
                    &owner,
                    at,
                    Duration::from_secs(60),
                    4,
                    skip,
                    16,
                    &shares,
                )
                .await?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            store.release_leases(&owner).await?;
        }
        Ok(median(times))
    };
    let servable = median_claim(&[]).await?;
    // While the held instance is disabled, enabled or deleted, the other instances' claims go
    // on (another tenant's deliveries): the longest of them is how long that write held them
    // up.
    let others = async |write: std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + '_>>| {
        let done = std::sync::atomic::AtomicBool::new(false);
        let probe = async {
            let (mut longest, mut slow) = (0.0f64, 0usize);
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let started = Instant::now();
                store
                    .claim_notifications_fairly(
                        "probe",
                        jiff::Timestamp::now(),
                        Duration::from_secs(60),
                        1,
                        &[held],
                        16,
                        &shares,
                    )
                    .await?;
                let took = started.elapsed().as_secs_f64() * 1000.0;
                longest = longest.max(took);
                slow += usize::from(took > 50.0);
                store.release_leases("probe").await?;
            }
            anyhow::Ok((longest, slow))
        };
        let timed = async {
            let started = Instant::now();
            let result = write.await;
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            result?;
            anyhow::Ok(started.elapsed().as_secs_f64() * 1000.0)
        };
        let (took, (longest, slow)) = tokio::try_join!(timed, probe)?;
        anyhow::Ok((took, longest, slow))
    };
    let switch = |disabled: bool| {
        let store = store.clone();
        Box::pin(async move {
            store
                .set_instance_disabled(big.0, held, disabled, jiff::Timestamp::now())
                .await?;
            anyhow::Ok(())
        }) as std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>>>>
    };
    let (disabling, disabling_stall, disabling_slow) = others(switch(true)).await?;
    let disabled = median_claim(&[]).await?;
    let (enabling, enabling_stall, enabling_slow) = others(switch(false)).await?;
    // A recovery of the whole backlog (`POST /instances/{id}/recover`): one redelivery of
    // every id, which SQLite makes due 1,000 per write (docs/benchmarks.md, "Twenty-second
    // round", has the figures of one write).
    let recovery = {
        let store = store.clone();
        Box::pin(async move {
            let ids: Vec<NotificationId> = (0..backlog)
                .map(|i| NotificationId(format!("replay-0-{i}")))
                .collect();
            store
                .redeliver(
                    held,
                    ids,
                    hubhook_store::Redeliver::Undelivered,
                    jiff::Timestamp::now(),
                )
                .await?;
            anyhow::Ok(())
        }) as std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>>>>
    };
    let (recovering, recovering_stall, recovering_slow) = others(recovery).await?;
    println!(
        "redelivering the instance's {backlog} notifications took {recovering:.0} ms; the \
         longest claim of the other instances meanwhile {recovering_stall:.0} ms \
         ({recovering_slow} over 50 ms)"
    );
    let skipped = median_claim(&[held]).await?;
    // One receiver for the whole organization, full: every instance of it skipped.
    let all_skipped = median_claim(&instances[..=siblings]).await?;
    let median_next_due = async |skip: &[InstanceId]| -> anyhow::Result<f64> {
        let mut times = Vec::new();
        for _ in 0..50 {
            let started = Instant::now();
            store
                .next_notification_due_except(skip, &[], jiff::Timestamp::now())
                .await?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        Ok(median(times))
    };
    let (due_servable, due_skipped) =
        (median_next_due(&[]).await?, median_next_due(&[held]).await?);
    println!(
        "the dispatcher's next due time, median of 50: {due_servable:.2} ms, its receiver full \
         {due_skipped:.2} ms"
    );
    let removed = {
        let store = store.clone();
        Box::pin(async move {
            let update = hubhook_store::InstanceUpdate {
                name: "instance 0".into(),
                configuration: serde_json::Map::new(),
                secrets: serde_json::Map::new(),
                tags: Vec::new(),
                events_enabled: false,
                resources: vec![KNOWN_RESOURCES[0].into()],
                refresh_interval_ms: 60_000,
                now: jiff::Timestamp::now(),
                read_version: None,
            };
            store.update_instance(big.0, held, update).await?;
            anyhow::Ok(())
        })
    };
    let (removing, removing_stall, removing_slow) = others(removed).await?;
    println!(
        "removing a resource from the instance ({known} known objects forgotten) took \
         {removing:.0} ms; the longest claim of the other instances meanwhile \
         {removing_stall:.0} ms ({removing_slow} over 50 ms)"
    );
    let deleted = {
        let store = store.clone();
        Box::pin(async move {
            store.delete_instance(big.0, held).await?;
            anyhow::Ok(())
        })
    };
    let (deleting, deleting_stall, deleting_slow) = others(deleted).await?;
    println!(
        "deleting the instance (its {backlog} notifications cancelled, {known} known objects \
         forgotten) took {deleting:.0} ms; \
         the longest claim of the other instances meanwhile {deleting_stall:.0} ms \
         ({deleting_slow} over 50 ms)"
    );
    println!(
        "claims on {engine} beside a backlog of {backlog} ({siblings} sibling instances), median of 50 claims \
         of 4: servable {servable:.2} ms, its instance disabled {disabled:.2} ms (ratio {:.2}), \
         its receiver full {skipped:.2} ms (ratio {:.2}), the organization's one receiver full \
         {all_skipped:.2} ms (ratio {:.2}); disabling took {disabling:.0} ms, enabling \
         {enabling:.0} ms; the longest claim of the other instances meanwhile \
         {disabling_stall:.0} ms and {enabling_stall:.0} ms ({disabling_slow} and {enabling_slow} \
         over 50 ms)",
        disabled / servable,
        skipped / servable,
        all_skipped / servable,
    );
    store.close().await;
    if postgres {
        postgres_admin(format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)")).await?;
    }
    Ok(())
}

/// Trains a zstd dictionary on the stored form of simulated records (null members dropped,
/// canonical JSON) and writes it to `out`. The data is the simulator's, seeded with a seed no
/// benchmark uses, and its hrefs point at a ConnectWise cloud host rather than the simulator,
/// so that a benchmark gains nothing from sharing the dictionary's exact values. Deterministic:
/// the same simulator and zstd make the same file.
fn dictionary(out: &std::path::Path) -> anyhow::Result<()> {
    const SEED: u64 = 7;
    let sim = Simulator::new(SimConfig {
        records: DICTIONARY_SAMPLES,
        seed: SEED,
        ..SimConfig::default()
    });
    let mut samples = Vec::new();
    for resource in DICTIONARY_RESOURCES {
        for id in sim.ids(resource).into_iter().take(DICTIONARY_SAMPLES) {
            let Some(mut record) = sim.get(resource, id) else {
                continue;
            };
            hubhook_connectwise::strip_nulls(&mut record);
            let text = hubhook_core::classify::canonical_json(&record).replace(
                "http://127.0.0.1/v4_6_release/",
                "https://api-na.myconnectwise.net/v4_6_release/",
            );
            samples.push(text.into_bytes());
        }
    }
    let dictionary =
        zstd::dict::from_samples(&samples, DICTIONARY_BYTES).context("training the dictionary")?;
    std::fs::write(out, &dictionary).with_context(|| format!("writing {}", out.display()))?;
    let id =
        zstd::zstd_safe::get_dict_id_from_dict(&dictionary).map_or(0, std::num::NonZeroU32::get);
    println!(
        "dictionary: {} bytes, id {id}, from {} records of {} resources, written to {}",
        dictionary.len(),
        samples.len(),
        DICTIONARY_RESOURCES.len(),
        out.display()
    );
    Ok(())
}
