//! The engine: the poller and the dispatcher, hubhook's two background loops. No HTTP server
//! lives here (that is `hubhook-api`); the engine only makes outbound calls.
//!
//! # Lifecycle
//!
//! [`Engine::run`] starts both loops and returns when the shutdown token is cancelled. Each loop
//! claims due work from the store with a lease (so several nodes can share a database), does the
//! outbound HTTP with no transaction open, and completes the work with an update fenced on the
//! lease owner. Between rounds a loop sleeps until the store says the next item is due, or until
//! it is woken: the API wakes the poller on `POST /instances/{id}/poll`, and a poll that stored
//! events wakes the dispatcher.
//!
//! - [`poller`]: one poll of one (instance, resource) job: render the URL, read every page from
//!   ConnectWise, classify, and commit events + notifications + the new cursor in one
//!   transaction (the outbox).
//! - [`dispatcher`]: one delivery attempt of one notification: POST the stored body, signed,
//!   record the attempt, and schedule the retry or mark it delivered.

mod callback_policy;
mod clock;
pub mod dispatcher;
pub mod poller;

use std::{sync::Arc, time::Duration};

use hubhook_core::RetrySchedule;
use hubhook_store::Store;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use callback_policy::{CallbackPolicy, CallbackRefused};
pub use clock::Clock;

/// Settings of the engine, from the command line or environment.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// This node's name in lease columns; unique per process.
    pub node_id: String,
    /// The floor under every instance's refresh interval.
    pub min_refresh_interval: Duration,
    /// Whether callbacks may target loopback and private addresses.
    pub allow_private_callbacks: bool,
    /// Delays between delivery attempts; after the last one a notification is queued.
    pub retry_schedule: RetrySchedule,
    /// How long a claimed poll job stays ours without being completed.
    pub poll_lease: Duration,
    /// How long a claimed notification stays ours without being completed.
    pub delivery_lease: Duration,
    /// Total time allowed for one callback POST.
    pub delivery_timeout: Duration,
    /// Poll jobs run at once by this node.
    pub poll_concurrency: u32,
    /// Deliveries in flight at once from this node.
    pub delivery_concurrency: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            node_id: format!("node-{}", std::process::id()),
            min_refresh_interval: Duration::from_secs(60),
            allow_private_callbacks: false,
            retry_schedule: RetrySchedule::cloud_elements(),
            poll_lease: Duration::from_secs(300),
            delivery_lease: Duration::from_secs(120),
            delivery_timeout: Duration::from_secs(30),
            poll_concurrency: 4,
            delivery_concurrency: 16,
        }
    }
}

/// Shared handle to the engine; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: EngineConfig,
    clock: Clock,
    connectwise_http: reqwest::Client,
    callback_http: reqwest::Client,
    callback_policy: CallbackPolicy,
    poll_wake: Notify,
    dispatch_wake: Notify,
}

/// Longest sleep of a loop with nothing due: bounds how late work created by another node
/// (which cannot wake us) is noticed.
const MAX_IDLE: Duration = Duration::from_secs(5);

impl Engine {
    pub fn new(store: Store, config: EngineConfig, clock: Clock) -> anyhow::Result<Engine> {
        let callback_policy = CallbackPolicy::new(config.allow_private_callbacks);
        let connectwise_http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("hubhook/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let callback_http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(config.delivery_timeout)
            // A redirect would be followed to wherever the receiver says, past the address check.
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(callback_policy.resolver()))
            .user_agent(concat!("hubhook/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Engine {
            inner: Arc::new(Inner {
                store,
                config,
                clock,
                connectwise_http,
                callback_http,
                callback_policy,
                poll_wake: Notify::new(),
                dispatch_wake: Notify::new(),
            }),
        })
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    pub fn callback_policy(&self) -> &CallbackPolicy {
        &self.inner.callback_policy
    }

    /// A ConnectWise client for one instance's credentials, sharing this engine's connections.
    pub fn connectwise(
        &self,
        credentials: &hubhook_core::ConnectWiseCredentials,
    ) -> Result<hubhook_connectwise::Client, hubhook_connectwise::CwError> {
        hubhook_connectwise::Client::new(
            self.inner.connectwise_http.clone(),
            credentials,
            hubhook_connectwise::ClientOptions::default(),
        )
    }

    /// Ask the poller to look for due jobs now (after `poll_now` made some due).
    pub fn wake_poller(&self) {
        self.inner.poll_wake.notify_one();
    }

    /// Ask the dispatcher to look for due notifications now.
    pub fn wake_dispatcher(&self) {
        self.inner.dispatch_wake.notify_one();
    }

    /// Run the poller and the dispatcher until `shutdown` is cancelled.
    pub async fn run(&self, shutdown: CancellationToken) {
        tokio::join!(
            self.poll_loop(shutdown.clone()),
            self.dispatch_loop(shutdown)
        );
    }

    async fn poll_loop(&self, shutdown: CancellationToken) {
        loop {
            let worked = match self.poll_due().await {
                Ok(n) => n,
                Err(err) => {
                    tracing::error!(error = %format!("{err:#}"), "poller round failed");
                    0
                }
            };
            if worked > 0 {
                continue;
            }
            let due = self.inner.store.next_poll_due().await.ok().flatten();
            let sleep = self.idle_sleep(due);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.inner.poll_wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
            }
        }
    }

    async fn dispatch_loop(&self, shutdown: CancellationToken) {
        loop {
            let worked = match self.dispatch_due().await {
                Ok(n) => n,
                Err(err) => {
                    tracing::error!(error = %format!("{err:#}"), "dispatcher round failed");
                    0
                }
            };
            if worked > 0 {
                continue;
            }
            let due = self
                .inner
                .store
                .next_notification_due()
                .await
                .ok()
                .flatten();
            let sleep = self.idle_sleep(due);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.inner.dispatch_wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
            }
        }
    }

    fn idle_sleep(&self, due: Option<jiff::Timestamp>) -> Duration {
        let Some(due) = due else { return MAX_IDLE };
        let now = self.inner.clock.now();
        let wait = due
            .as_millisecond()
            .saturating_sub(now.as_millisecond())
            .max(0);
        Duration::from_millis(wait as u64).min(MAX_IDLE)
    }

    /// Claim the due poll jobs and run them; returns how many ran. The tests call this directly.
    pub async fn poll_due(&self) -> anyhow::Result<usize> {
        let inner = &self.inner;
        let jobs = inner
            .store
            .claim_poll_jobs(
                &inner.config.node_id,
                inner.clock.now(),
                inner.config.poll_lease,
                inner.config.poll_concurrency,
            )
            .await?;
        let n = jobs.len();
        let mut set = tokio::task::JoinSet::new();
        for job in jobs {
            let engine = self.clone();
            set.spawn(async move { poller::run_job(&engine, job).await });
        }
        let mut stored_events = false;
        while let Some(res) = set.join_next().await {
            match res {
                Ok(Ok(outcome)) => stored_events |= outcome.notifications_inserted > 0,
                Ok(Err(err)) => tracing::error!(error = %format!("{err:#}"), "poll job failed"),
                Err(err) => tracing::error!(error = %err, "poll task panicked"),
            }
        }
        if stored_events {
            self.wake_dispatcher();
        }
        Ok(n)
    }

    /// Claim the due notifications and attempt each once; returns how many were attempted.
    pub async fn dispatch_due(&self) -> anyhow::Result<usize> {
        let inner = &self.inner;
        let batch = inner
            .store
            .claim_notifications(
                &inner.config.node_id,
                inner.clock.now(),
                inner.config.delivery_lease,
                inner.config.delivery_concurrency,
            )
            .await?;
        let n = batch.len();
        let mut set = tokio::task::JoinSet::new();
        for notification in batch {
            let engine = self.clone();
            set.spawn(async move { dispatcher::attempt(&engine, notification).await });
        }
        while let Some(res) = set.join_next().await {
            match res {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    tracing::error!(error = %format!("{err:#}"), "delivery attempt failed")
                }
                Err(err) => tracing::error!(error = %err, "delivery task panicked"),
            }
        }
        Ok(n)
    }
}
