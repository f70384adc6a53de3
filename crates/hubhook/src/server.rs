//! `hubhook serve`: the store, the engine and the API in one process.

use std::net::SocketAddr;

use anyhow::Context as _;
use hubhook_api::AppState;
use hubhook_engine::{Engine, EngineConfig};
use hubhook_store::{LeftoverWork, Store};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{ServeConfig, resolve_master_key};

/// A server started in this process: its address, its parts, and how to stop it.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub engine: Engine,
    pub shutdown: CancellationToken,
    tasks: JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    pub fn store(&self) -> &Store {
        self.engine.store()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop the API and both loops, wait for them, and close the database.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.wait().await
    }

    /// Wait until the server stops: on `shutdown`, or by itself when its store can no longer
    /// write (then with an error, so that the process exits non-zero and its supervisor
    /// restarts it).
    pub async fn wait(self) -> anyhow::Result<()> {
        let ended = self.tasks.await;
        self.engine.store().close().await;
        ended.context("server task ended abnormally")?
    }
}

/// Open the database, bind the listener and start the API, the poller, the dispatcher and the
/// finishing of what a stopped node left halfway.
pub async fn start(config: &ServeConfig) -> anyhow::Result<RunningServer> {
    // Check every setting before touching the database, so a typo creates no files.
    let retry_schedule = config.retry_schedule()?;
    let node_id = config.node_id()?;
    let (poll_lease, delivery_lease) = config.leases()?;
    let site_limits = config.site_limits()?;
    let poll_concurrency = config.poll_concurrency()?;
    let connectwise_timeout = config.connectwise_timeout()?;
    let key = resolve_master_key(&config.database_url, config.master_key_text()?.as_deref())?;
    let store = Store::open(&config.database_url, key)
        .await
        .with_context(|| format!("opening the database {}", redact_url(&config.database_url)))?;
    // Read before the API listens: what live requests list later is theirs to finish.
    let leftovers = store
        .leftovers()
        .await
        .context("reading the work a stopped node left halfway")?;
    let (delivery_retention, event_retention) = config.retention()?;
    let engine_config = EngineConfig {
        min_refresh_interval: config.min_refresh_interval(),
        allow_private_callbacks: config.allow_private_callbacks,
        retry_schedule,
        node_id,
        poll_lease,
        delivery_lease,
        connectwise_timeout,
        site_limits,
        poll_concurrency,
        delivery_timeout: config.delivery_timeout()?,
        webhook_secret_overlap: config.webhook_secret_overlap()?,
        delivery_retention,
        event_retention,
        receiver_limits: config.receiver_limits()?,
        ..EngineConfig::default()
    };
    // On a database several nodes share, every node decides on the database's clock.
    let clock = hubhook_engine::follow_database_clock(&store)
        .await
        .context("reading the database's clock")?;
    let engine = Engine::new(store, engine_config, clock)?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let limits = hubhook_api::ServeLimits {
        max_connections: config.max_connections,
        ..hubhook_api::ServeLimits::default()
    };
    let app = hubhook_api::router(AppState::new(engine.clone()));

    let api_shutdown = shutdown.clone();
    let loops_engine = engine.clone();
    let loops_shutdown = shutdown.clone();
    let tasks = tokio::spawn(async move {
        let api = hubhook_api::serve(listener, app, limits, api_shutdown);
        let watchdog = watch_store(loops_engine.store().clone(), loops_shutdown.clone());
        let leftovers = finish_leftovers(
            loops_engine.store().clone(),
            leftovers,
            loops_shutdown.clone(),
        );
        let (_, _, store, ()) =
            tokio::join!(api, loops_engine.run(loops_shutdown), watchdog, leftovers);
        store
    });
    tracing::info!(%addr, "hubhook is serving");
    Ok(RunningServer {
        addr,
        engine,
        shutdown,
        tasks,
    })
}

/// Watches the store until shutdown. If its writer stops (a panic in the SQLite writer task),
/// nothing can be stored any more: `/readyz` already answers 503, and this stops the server
/// with an error rather than keep answering while unable to write.
async fn watch_store(store: Store, shutdown: CancellationToken) -> anyhow::Result<()> {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(WATCHDOG_PERIOD) => {}
        }
        if !store.writer_alive() && !shutdown.is_cancelled() {
            tracing::error!("the database writer stopped; shutting down");
            shutdown.cancel();
            anyhow::bail!("the database writer stopped; nothing can be stored");
        }
    }
}

/// Finishes the work in parts that a node stopped halfway left (`Store::finish_leftovers`),
/// beside the API and the loops rather than before listening: a redelivery of 200,000
/// notifications left halfway took 6.1 s to finish, during which a supervisor's probes and
/// every tenant's requests went unanswered. What is left is invisible or harmless to them
/// meanwhile (hubhook-store's `sqlite/leftovers.rs` argues it). What fails is logged and tried
/// again, from a second on and doubling up to five minutes, while the server runs.
async fn finish_leftovers(store: Store, mut work: LeftoverWork, shutdown: CancellationToken) {
    let mut pause = std::time::Duration::from_secs(1);
    while !work.is_empty() {
        let started = std::time::Instant::now();
        let finished = tokio::select! {
            _ = shutdown.cancelled() => return,
            finished = store.finish_leftovers(work) => finished,
        };
        let done = finished.done;
        if done.any() {
            tracing::info!(
                deletes = done.deletes,
                forgets = done.forgets,
                redeliveries = done.redeliveries,
                parked_or_brought_back = done.moved,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "finished the work a stopped node left halfway"
            );
        }
        for error in &finished.errors {
            tracing::error!(%error, "finishing the work a stopped node left halfway failed; trying again");
        }
        work = finished.left;
        if work.is_empty() {
            return;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(std::time::Duration::from_secs(300));
    }
}

const WATCHDOG_PERIOD: std::time::Duration = std::time::Duration::from_millis(500);

/// Run until Ctrl-C or SIGTERM.
pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let server = start(&config).await?;
    println!(
        "hubhook listening on http://{} (console at http://{}/)",
        server.addr, server.addr
    );
    let shutdown = server.shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        shutdown.cancel();
    });
    server.wait().await
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}

/// A database URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("********"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}
