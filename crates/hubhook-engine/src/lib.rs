//! The engine: the poller and the dispatcher, hubhook's two background loops. No HTTP server
//! lives here (that is `hubhook-api`); the engine only makes outbound calls.
//!
//! # Lifecycle
//!
//! [`Engine::run`] starts both loops and returns when the shutdown token is cancelled. Each loop
//! claims due work from the store with a lease (so several nodes can share a database), does the
//! outbound HTTP with no transaction open, and completes the work with an update fenced on the
//! lease owner. Between rounds a loop sleeps until the store says the next item is due, or until
//! it is woken: the API wakes the poller on `POST /instances/{id}/poll`, and each page of a poll
//! that stored notifications wakes the dispatcher (a long poll's first callbacks need not wait
//! for its end).
//!
//! - [`poller`]: one poll of one (instance, resource) job: render the URL, read every page from
//!   ConnectWise, classify, and commit events + notifications + the new cursor in one
//!   transaction (the outbox).
//! - [`dispatcher`]: one delivery attempt of one notification: POST the stored body, signed,
//!   record the attempt, and schedule the retry or mark it delivered.

mod callback_policy;
mod clock;
mod connectwise_callbacks;
mod delivery_target;
pub mod dispatcher;
mod fair_share;
pub mod poller;
mod receivers;
mod retention;
pub mod sites;

use std::{sync::Arc, time::Duration};

use hubhook_core::RetrySchedule;
use hubhook_store::Store;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

pub use callback_policy::{CallbackPolicy, CallbackRefused, redacted_url};
pub use clock::{Clock, follow_database_clock};
pub use connectwise_callbacks::{CallbackKeys, ConnectWiseCallbackRefused};
pub use receivers::ReceiverLimits;
pub use sites::{SiteLimits, Sites};

/// Settings of the engine, from the command line or environment.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// This node's name in lease columns. Unique among the nodes sharing a database and
    /// stable across restarts of the same node, so that a restarted node frees the leases it
    /// held before (see [`Engine::run`]).
    pub node_id: String,
    /// The floor under every instance's refresh interval.
    pub min_refresh_interval: Duration,
    /// Whether callbacks may target loopback and private addresses.
    pub allow_private_callbacks: bool,
    /// Delays between delivery attempts; after the last one a notification is queued.
    pub retry_schedule: RetrySchedule,
    /// How long a claimed poll job stays ours without being renewed; a running poll renews it
    /// every third of this, so it bounds how long a dead node's job waits to be taken over.
    pub poll_lease: Duration,
    /// How long a claimed notification stays ours; longer than `delivery_timeout`, so a
    /// delivery in flight never outlives its lease.
    pub delivery_lease: Duration,
    /// Total time allowed for one callback POST.
    pub delivery_timeout: Duration,
    /// Poll jobs run at once by this node.
    pub poll_concurrency: u32,
    /// Deliveries in flight at once from this node.
    pub delivery_concurrency: u32,
    /// Total time allowed for one ConnectWise request (a poll's page, a hub call).
    pub connectwise_timeout: Duration,
    /// What this node asks of each ConnectWise site at most (see [`sites`]).
    pub site_limits: SiteLimits,
    /// How long a rotated Standard Webhooks secret keeps signing beside its successor.
    pub webhook_secret_overlap: Duration,
    /// How long delivered notifications (payloads) and their attempts are kept.
    pub delivery_retention: Duration,
    /// How long event metadata is kept (longer than deliveries: the events API and replays).
    pub event_retention: Duration,
    /// Isolation between receivers (see the `receivers` module).
    pub receiver_limits: ReceiverLimits,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            node_id: random_node_id(),
            min_refresh_interval: Duration::from_secs(60),
            allow_private_callbacks: false,
            retry_schedule: RetrySchedule::cloud_elements(),
            poll_lease: Duration::from_secs(60),
            delivery_lease: Duration::from_secs(60),
            delivery_timeout: Duration::from_secs(15),
            // Polls mostly wait on ConnectWise; the per-site bound keeps any one site from
            // taking all of them.
            poll_concurrency: 16,
            delivery_concurrency: 16,
            connectwise_timeout: Duration::from_secs(120),
            site_limits: SiteLimits::default(),
            webhook_secret_overlap: Duration::from_secs(86_400),
            delivery_retention: Duration::from_secs(30 * 86_400),
            event_retention: Duration::from_secs(90 * 86_400),
            receiver_limits: ReceiverLimits::default(),
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
    sites: Sites,
    callback_keys: CallbackKeys,
    poll_wake: Notify,
    dispatch_wake: Notify,
    /// Resolved delivery configuration per instance (see [`delivery_target`]).
    targets: delivery_target::TargetCache,
    /// What polls need of their instances, per instance (see [`poller::configs`]).
    poll_configs: poller::configs::PollConfigs,
    /// Per-receiver limits and breakers (see [`receivers`]).
    receivers: receivers::Receivers,
    /// Deliveries in flight per organization, for its share of the slots (see [`fair_share`]).
    fair_share: fair_share::FairShare,
    /// Deliveries that outlasted [`dispatcher::SLOW_AFTER`] and gave their slot back (see
    /// `dispatcher::send_in_slot`): at most [`dispatcher::SLOW_PER_SLOT`] per slot.
    slow_deliveries: Arc<tokio::sync::Semaphore>,
}

/// Longest sleep of a loop with nothing due: bounds how late work created by another node
/// (which cannot wake us) is noticed.
const MAX_IDLE: Duration = Duration::from_secs(5);

impl Engine {
    pub fn new(store: Store, config: EngineConfig, clock: Clock) -> anyhow::Result<Engine> {
        let callback_policy = CallbackPolicy::new(config.allow_private_callbacks);
        let receivers = receivers::Receivers::new(config.receiver_limits);
        let connectwise_http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(config.connectwise_timeout)
            // ConnectWise answers API calls directly; following a redirect would carry the
            // API member's keys to wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("hubhook/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let callback_http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(config.delivery_timeout)
            // A redirect would be followed to wherever the receiver says, past the address check.
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(callback_policy.resolver()))
            // Through a proxy our resolver would only see the proxy's name, not the callback's.
            .no_proxy()
            .user_agent(concat!("hubhook/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let sites = Sites::new(config.site_limits);
        let slow_deliveries = Arc::new(tokio::sync::Semaphore::new(
            (config.delivery_concurrency as usize).max(1) * dispatcher::SLOW_PER_SLOT,
        ));
        let organization_shares = fair_share::FairShare::new(config.delivery_concurrency);
        Ok(Engine {
            inner: Arc::new(Inner {
                sites,
                callback_keys: CallbackKeys::default(),
                store,
                config,
                clock,
                connectwise_http,
                callback_http,
                callback_policy,
                poll_wake: Notify::new(),
                dispatch_wake: Notify::new(),
                targets: delivery_target::TargetCache::default(),
                poll_configs: poller::configs::PollConfigs::default(),
                receivers,
                fair_share: organization_shares,
                slow_deliveries,
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

    /// What polls need of their instances, cached by instance version.
    pub(crate) fn poll_configs(&self) -> &poller::configs::PollConfigs {
        &self.inner.poll_configs
    }

    /// The ConnectWise sites this node talks to, with their shared limits.
    pub fn sites(&self) -> &Sites {
        &self.inner.sites
    }

    /// A ConnectWise client for one instance's credentials, sharing this engine's connections.
    pub fn connectwise(
        &self,
        credentials: &hubhook_core::ConnectWiseCredentials,
    ) -> Result<hubhook_connectwise::Client, hubhook_connectwise::CwError> {
        hubhook_connectwise::Client::new(
            self.inner.connectwise_http.clone(),
            credentials,
            hubhook_connectwise::ClientOptions {
                throttle: Some(self.inner.sites.site(credentials).throttle.clone()),
                ..hubhook_connectwise::ClientOptions::default()
            },
        )
    }

    /// The element adapter of an instance: a client for its credentials that answers as the
    /// instance's settings ask (`filter.response.nulls`). The poller and the hub API both use
    /// it, so a record looks the same in an event and in a hub answer.
    pub fn element(
        &self,
        config: &hubhook_core::InstanceConfig,
    ) -> Result<hubhook_connectwise::Client, hubhook_connectwise::CwError> {
        hubhook_connectwise::Client::new(
            self.inner.connectwise_http.clone(),
            &config.connectwise,
            hubhook_connectwise::ClientOptions {
                filter_nulls: config.filter_response_nulls,
                throttle: Some(self.inner.sites.site(&config.connectwise).throttle.clone()),
                ..hubhook_connectwise::ClientOptions::default()
            },
        )
    }

    /// The element adapter as the poller uses it: like [`Engine::element`], but a `429` is
    /// not waited out inside the request. It pauses the site and fails the poll with
    /// ConnectWise's `Retry-After`, so the poll frees its slot and the site's other polls are
    /// deferred until the pause ends (see [`sites`]), instead of each waiting in a slot.
    pub fn poller_element(
        &self,
        config: &hubhook_core::InstanceConfig,
    ) -> Result<hubhook_connectwise::Client, hubhook_connectwise::CwError> {
        hubhook_connectwise::Client::new(
            self.inner.connectwise_http.clone(),
            &config.connectwise,
            hubhook_connectwise::ClientOptions {
                filter_nulls: config.filter_response_nulls,
                throttle: Some(self.inner.sites.site(&config.connectwise).throttle.clone()),
                max_rate_limit_retries: 0,
                ..hubhook_connectwise::ClientOptions::default()
            },
        )
    }

    /// An instance's configuration changed (its callback URL may have): its deliveries are no
    /// longer held back by what this node knew of its old receiver (see `receivers`), and the
    /// dispatcher looks for due work now.
    pub fn instance_changed(&self, instance: hubhook_core::InstanceId) {
        self.inner.receivers.forget(instance);
        self.wake_dispatcher();
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
    ///
    /// First frees the leases this node id still holds: they can only belong to a previous
    /// run of this node that ended without finishing its work (a crash, a `kill -9`), and
    /// waiting for them to expire would stall that work for a lease length.
    pub async fn run(&self, shutdown: CancellationToken) {
        match self
            .inner
            .store
            .release_leases(&self.inner.config.node_id)
            .await
        {
            Ok(0) => {}
            Ok(freed) => {
                tracing::info!(freed, node = ?self.inner.config.node_id, "took back the leases of this node's previous run");
            }
            Err(err) => {
                tracing::warn!(error = %err, "could not free this node's old leases; they will expire");
            }
        }
        tokio::join!(
            self.work_loop(Work::Polls, shutdown.clone()),
            self.work_loop(Work::Deliveries, shutdown.clone()),
            self.listen_for_wakeups(shutdown.clone()),
            self.retention_loop(shutdown)
        );
    }

    /// On a database shared by several nodes (PostgreSQL), turns the wake-ups every node sends
    /// when it makes work due into wake-ups of this node's loops, so that work created on one
    /// node is claimed by any idle node at once rather than after its idle sleep. A listener
    /// that fails is reopened after a pause; meanwhile the idle sleeps still find the work.
    async fn listen_for_wakeups(&self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let mut wakeups = match self.inner.store.wakeups().await {
                Ok(Some(wakeups)) => wakeups,
                Ok(None) => return, // one process owns the database: it wakes itself
                Err(err) => {
                    tracing::warn!(error = %err, "cannot listen for other nodes' wake-ups");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(ERROR_BACKOFF) => continue,
                    }
                }
            };
            loop {
                let wake = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    wake = wakeups.next() => wake,
                };
                match wake {
                    Ok(hubhook_store::Wake::Polls) => self.wake_poller(),
                    Ok(hubhook_store::Wake::Deliveries) => self.wake_dispatcher(),
                    Err(err) => {
                        tracing::warn!(error = %err, "lost the wake-up listener; reopening it");
                        break;
                    }
                }
            }
        }
    }

    /// One loop: keep up to the configured number of items in flight, claiming more as slots
    /// free up, so one slow ConnectWise site or receiver holds one slot, not the whole loop.
    ///
    /// A slot is a permit of `slots`, held by the item's task. A poll holds it to the end; a
    /// delivery gives it back as soon as its POST is answered, before the result is written:
    /// what the slots bound is requests in flight, and a slot kept through the result write
    /// would sit idle while the writer works (docs/benchmarks.md, "Fourth round", measures
    /// it). The result write is still fenced on the claim's lease, which holds until the
    /// write lands, so no other claim can take that notification meanwhile.
    async fn work_loop(&self, work: Work, shutdown: CancellationToken) {
        let (limit, wake) = match work {
            Work::Polls => (
                self.inner.config.poll_concurrency as usize,
                &self.inner.poll_wake,
            ),
            Work::Deliveries => (
                self.inner.config.delivery_concurrency as usize,
                &self.inner.dispatch_wake,
            ),
        };
        let slots = Arc::new(Semaphore::new(limit));
        let mut running = tokio::task::JoinSet::new();
        // Slots to gather before a claim while others are busy (see below).
        let refill = (limit / 4).max(1);
        loop {
            while let Some(done) = running.try_join_next() {
                log_task_end(work, done);
            }
            let mut free = slots.available_permits();
            if free > 0 && free < refill && free < limit {
                // A claim is a write; claiming for every slot as it frees would make a backlog
                // cost one claim per item. A moment's wait lets a few more slots free so that
                // one claim fills them; bounded, so a loop whose other slots hang (a slow
                // receiver, a slow site) still claims after it.
                let gather = tokio::time::sleep(REFILL_GATHER);
                tokio::pin!(gather);
                while free < refill {
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = &mut gather => break,
                        _ = slot_freed(&slots, free) => free = slots.available_permits(),
                        Some(done) = running.join_next() => log_task_end(work, done),
                    }
                }
                if shutdown.is_cancelled() {
                    break;
                }
            }
            if free == 0 {
                // Every slot is busy: only a freed slot (or shutdown) can change anything.
                // Waiting on the due time here would spin while due work queues up.
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = slot_freed(&slots, 0) => {}
                    Some(done) = running.join_next() => log_task_end(work, done),
                }
                continue;
            }
            let sleep = match self.claim_and_spawn(work, &slots, free, &mut running).await {
                // A full batch means more may be due already.
                Ok(claimed) if claimed == free => continue,
                Ok(_) => {
                    let due = match work {
                        Work::Polls => self.inner.store.next_poll_due().await,
                        Work::Deliveries => self.next_delivery_due().await,
                    };
                    self.idle_sleep(due.ok().flatten())
                }
                Err(err) => {
                    tracing::error!(error = %format!("{err:#}"), ?work, "claiming work failed");
                    // Back off rather than retry a failing database in a tight loop.
                    ERROR_BACKOFF
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
                Some(done) = running.join_next(), if !running.is_empty() => log_task_end(work, done),
            }
        }
        // Give work in flight a moment to record its result; what does not finish is redone
        // after its lease expires, which the outbox makes safe.
        let drain = async {
            while let Some(done) = running.join_next().await {
                log_task_end(work, done);
            }
        };
        if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
            tracing::warn!(
                ?work,
                "work still in flight at shutdown was abandoned; its lease will expire"
            );
        }
    }

    /// Claims up to `free` items and spawns each with one of `slots`' permits; `free` must
    /// not exceed the permits available (only the calling loop takes them).
    async fn claim_and_spawn(
        &self,
        work: Work,
        slots: &Arc<Semaphore>,
        free: usize,
        running: &mut tokio::task::JoinSet<anyhow::Result<()>>,
    ) -> anyhow::Result<usize> {
        let slot = || {
            slots
                .clone()
                .try_acquire_owned()
                .map_err(|_| anyhow::anyhow!("claimed more work than there were free slots"))
        };
        let inner = &self.inner;
        let (owner, now, limit) = (&inner.config.node_id, inner.clock.now(), free as u32);
        match work {
            Work::Polls => {
                let jobs = inner
                    .store
                    .claim_poll_jobs(owner, now, inner.config.poll_lease, limit)
                    .await?;
                let n = jobs.len();
                for job in jobs {
                    let engine = self.clone();
                    let slot = slot()?;
                    running.spawn(async move {
                        let done = engine.run_poll(job).await;
                        drop(slot);
                        done
                    });
                }
                Ok(n)
            }
            Work::Deliveries => {
                // Instances whose receivers cannot take work now stay in the database, and the
                // claim is shared fairly among the others: by organization first, each up to
                // its share of the slots before the others' turns (see `fair_share`).
                let skip = inner.receivers.skip(now);
                let shares = inner.fair_share.shares();
                // Every attempt's row must exist before its POST; the claim writes the
                // batch's rows in the same write (the dispatcher spends most of a delivery
                // waiting for writes).
                let claim = inner
                    .store
                    .claim_and_begin_attempts(
                        owner,
                        now,
                        inner.config.delivery_lease,
                        limit,
                        &skip,
                        inner.config.receiver_limits.concurrency,
                        &shares,
                    )
                    .await?;
                // The next claim's walk of the organizations goes on from here.
                inner.fair_share.walked_to(claim.walked_to);
                let (batch, begun) = (claim.notifications, claim.begun);
                let n = batch.len();
                if n == 0 {
                    return Ok(0);
                }
                // One read per batch tells which cached delivery configurations are still
                // current, so attempts do no database read of their own.
                let mut instances: Vec<_> = batch.iter().map(|n| n.instance_id).collect();
                instances.sort_by_key(|i| i.0);
                instances.dedup();
                let versions = inner.store.delivery_config_versions(&instances).await?;
                for notification in batch {
                    let engine = self.clone();
                    let version = versions.get(&notification.instance_id).copied();
                    let begun = begun.get(&notification.id).copied();
                    let slot = slot()?;
                    // Counted against its organization's share until the attempt ends.
                    let in_flight = inner.fair_share.hold(notification.organization_id);
                    running.spawn(async move {
                        let done =
                            dispatcher::attempt(&engine, notification, version, begun, slot).await;
                        drop(in_flight);
                        done
                    });
                }
                Ok(n)
            }
        }
    }

    /// One poll job; wakes the dispatcher when it stored notifications.
    async fn run_poll(&self, job: hubhook_store::PollJob) -> anyhow::Result<()> {
        let outcome = poller::run_job(self, job).await?;
        if outcome.notifications_inserted > 0 {
            self.wake_dispatcher();
        }
        Ok(())
    }

    /// When the dispatcher has work next: the earliest due notification of an instance whose
    /// receiver can take it and of an organization its share does not hold back, or the moment
    /// a blocked receiver unblocks. Notifications of blocked receivers, or of organizations
    /// whose slow POSTs hold their share of the slots, are due already, and waking for them
    /// would claim nothing in a loop; such an organization can take more only when one of its
    /// deliveries ends or gives its slot back, which wakes the dispatcher.
    async fn next_delivery_due(&self) -> hubhook_store::Result<Option<jiff::Timestamp>> {
        let now = self.inner.clock.now();
        let receivers = &self.inner.receivers;
        let held_back = self.inner.fair_share.shares().held_back();
        let due = self
            .inner
            .store
            .next_notification_due_except(&receivers.skip(now), &held_back, now)
            .await?;
        Ok(match (due, receivers.next_unblock(now)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
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

    /// Claim the due poll jobs and run them to completion; returns how many ran. Tests drive
    /// the engine one round at a time with this.
    pub async fn poll_due(&self) -> anyhow::Result<usize> {
        let mut running = tokio::task::JoinSet::new();
        let n = self
            .claim_and_spawn(
                Work::Polls,
                &Arc::new(Semaphore::new(self.inner.config.poll_concurrency as usize)),
                self.inner.config.poll_concurrency as usize,
                &mut running,
            )
            .await?;
        while let Some(done) = running.join_next().await {
            log_task_end(Work::Polls, done);
        }
        Ok(n)
    }

    /// Claim the due notifications and attempt each once; returns how many were attempted.
    pub async fn dispatch_due(&self) -> anyhow::Result<usize> {
        let mut running = tokio::task::JoinSet::new();
        let n = self
            .claim_and_spawn(
                Work::Deliveries,
                &Arc::new(Semaphore::new(
                    self.inner.config.delivery_concurrency as usize,
                )),
                self.inner.config.delivery_concurrency as usize,
                &mut running,
            )
            .await?;
        while let Some(done) = running.join_next().await {
            log_task_end(Work::Deliveries, done);
        }
        Ok(n)
    }
}

/// A node id for an engine nobody named: the host name and a random suffix. Unique, but not
/// stable across restarts; servers pass a stable one (see `hubhook serve --node-id`).
pub fn random_node_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "node".to_string());
    let mut suffix = [0u8; 6];
    // Without randomness, fall back to the process id and time, still unlikely to collide.
    if getrandom::fill(&mut suffix).is_err() {
        let nanos = jiff::Timestamp::now().as_nanosecond();
        return format!("{host}-{}-{nanos}", std::process::id());
    }
    format!("{host}-{}", hex::encode(suffix))
}

/// The two kinds of background work.
#[derive(Debug, Clone, Copy)]
enum Work {
    Polls,
    Deliveries,
}

/// Resolves once more than `free` of `slots` are available (a slot was given back).
async fn slot_freed(slots: &Semaphore, free: usize) {
    // Acquiring `free + 1` at once waits for exactly that; the permits go straight back.
    let wanted = u32::try_from(free + 1).unwrap_or(u32::MAX);
    if let Ok(permits) = slots.acquire_many(wanted).await {
        drop(permits);
    }
}

/// How long a loop with busy slots waits for more of them to free before it claims.
const REFILL_GATHER: Duration = Duration::from_millis(5);

/// Pause after a failed claim.
const ERROR_BACKOFF: Duration = Duration::from_secs(1);

/// How long shutdown waits for work in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

fn log_task_end(work: Work, done: Result<anyhow::Result<()>, tokio::task::JoinError>) {
    match done {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::error!(error = %format!("{err:#}"), ?work, "work item failed"),
        Err(err) => tracing::error!(error = %err, ?work, "work task panicked"),
    }
}
