//! One poll of one (instance, resource) job.
//!
//! # The cursor, and why no change is missed or delivered twice
//!
//! The cursor is the latest `updated` date ConnectWise has shown us for the resource, on
//! ConnectWise's own clock, so clock skew between hubhook and ConnectWise does not matter. Each
//! poll asks for records updated after `cursor - 1 s - pollDelay`: the extra second re-reads the
//! records that share the cursor's second (ConnectWise dates have second precision, and the
//! documented query uses a strict `>`), and `pollDelay` covers records that become visible late.
//! Re-read records are not events again, because every observed record's content hash is kept
//! and a record seen with exactly the same content never becomes a second event; a record
//! changed twice within one second has a new hash and does.
//!
//! # The tie set after a mass update: read again only until its second has ended
//!
//! After a mass update every record shares the cursor's second, and the overlap would read
//! them all again at every poll until some other record moved the cursor. That second needs
//! reading again only while records can still be written (or become visible) with a date in
//! it, and the question is which clock says when it has ended. ConnectWise's `Date` header
//! alone cannot: record dates are the same clock only when the resource's
//! `updatedDateTimezone` is right, and when it is not (dates written in a local zone and read
//! as GMT, which the configuration cannot detect) they run behind the header by hours, so the
//! header would call the cursor's second long past while records of that very second are still
//! being written.
//!
//! So the lag is learnt from the data ([`window::observed_lag`]): a record cannot have been
//! written after the page that lists it was read, so a record dated `d` on a page read by
//! `read_by` (the `Date` header plus its one-second precision plus the body's time) shows that
//! record dates run at most `read_by - d` behind the header's clock. The job keeps the smallest
//! such bound it has ever seen, never below zero; right after any change is read it is about a
//! second (or the zone's hours plus a second). A window that opened at `server_start` and read
//! forward by id to its end has then listed every record dated in a second before
//! `server_start - lag - pollDelay - 2 s` ([`window::settled_before`]; the 2 s cover the web
//! and database servers' clocks drifting apart): such a record was written, and visible, before
//! the window opened, and if it changed again meanwhile its new date is later than that
//! instant. The job stores that instant (never moving it back), and the next window does not
//! read the settled seconds again ([`window::window_start`]); it never starts after the cursor.
//! After a mass update the tie set is read by the poll that finds it and by the polls of the
//! next four seconds or so, then no more. Without a `Date` header, or with page-number paging
//! (whose pages can shift while they are read), nothing settles and the overlap is read as
//! before. The bound assumes the date field is set by ConnectWise when a record is written, as
//! `_info.lastUpdated` is; a zone whose offset grows (a daylight-saving change misread as GMT)
//! would break the cursor itself, not only this.
//!
//! A re-read is also cheap where it still happens: a record read again with exactly the stored
//! content (hash and text) is not written back ([`page`]).
//!
//! The first poll of a job (no cursor yet) reads every record and remembers them all, so that
//! a later change to a record that existed before the instance is told apart as UPDATED rather
//! than CREATED when, as in the documented ConnectWise configuration, created and updated dates
//! come from the same field. What it announces is the instance's `event.poller.firstRun`:
//! changes made since the resource was added to the instance (the default; its creation for
//! the resources it was created with, `PollJob::added_at`), every record as CREATED (`all`),
//! or changes made since a given time.
//!
//! # Page by page, in bounded memory
//!
//! A poll reads its query one page at a time ([`window`]) and commits each page, its observed
//! records, events and notifications, in one transaction with the poll's progress as a
//! checkpoint (the outbox). While a page is committed, the next one is classified and the one
//! after it fetched (two pages ahead, never more; one request in flight at a time, as without
//! it): classifying only reads the store, and it reads only rows of the page's own records, so
//! it cannot depend on the commit before it unless the two pages share a record, and then it
//! waits for that commit. Fetching reads nothing of the store. Memory is three pages whatever
//! the resource's size; a poll cut short
//! (a crash, a failed page, a lost lease) resumes from its last checkpoint; and no commit is
//! larger than a page, so big polls never hold the store's writer for long. The cursor moves
//! only with the last page, and never past the moment the poll's query was first answered.
//!
//! Every `reconcileInterval` the poll then compares the ids it knows with ConnectWise's, to
//! find deleted records ([`reconcile`]).
//!
//! Every commit is fenced on the claim's token and the lease is renewed while the poll runs: a
//! crash before a commit loses nothing (the page is read again), a crash after it loses nothing
//! either (the outbox holds the notifications), and a poll that lost its lease writes nothing.

pub(crate) mod configs;
mod page;
mod reconcile;
mod trial;
pub mod window;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hubhook_connectwise::{Client, CwError, HubQuery, PageRequest, RawPage};
use hubhook_core::{FirstRun, InstanceConfig, PageRecord, ResourcePoll, merge_secrets, render_url};
use hubhook_store::{
    CommitOutcome, LeaseToken, PollCommit, PollDone, PollJob, PollProgress, Store, StoreError,
};
use jiff::{SignedDuration, Timestamp};

pub use trial::{TrialProblem, trial_read};

use crate::Engine;
use crate::sites::SiteBusy;
use page::PageContext;
use window::{
    Window, baseline_since, next_cursor, observed_lag, phase, settled_before, tighter, window_start,
};

/// Run one claimed job to completion: commit its results or record why it failed.
///
/// The lease is renewed while the poll runs (every third of its length), so leases can be
/// short: a node that dies mid-poll holds the job for at most one lease length. A poll whose
/// renewal finds the lease gone stops at once; it could not commit anyway.
pub async fn run_job(engine: &Engine, job: PollJob) -> anyhow::Result<CommitOutcome> {
    let Some(token) = job.lease_token.clone() else {
        anyhow::bail!(
            "poll job {}/{} was not claimed",
            job.instance_id,
            job.resource
        );
    };
    let polled = tokio::select! {
        polled = poll(engine, &job, &token) => polled,
        lost = keep_lease(engine, &job, &token) => {
            tracing::warn!(instance = %job.instance_id, resource = ?job.resource, error = %lost, "poll stopped: its lease could not be renewed");
            return Ok(CommitOutcome::default());
        }
    };
    let failure = match polled {
        Ok(outcome) => {
            metrics::counter!("hubhook_polls_total", "outcome" => "success").increment(1);
            if outcome.events_inserted > 0 {
                tracing::info!(instance = %job.instance_id, resource = ?job.resource, events = outcome.events_inserted, "poll stored events");
            }
            return Ok(outcome);
        }
        Err(failure) if let Some(busy) = failure.site_busy => {
            metrics::counter!("hubhook_polls_total", "outcome" => "deferred").increment(1);
            let next = engine.clock().now()
                + SignedDuration::try_from(busy.retry_in()).unwrap_or(SignedDuration::from_secs(2));
            return match engine
                .store()
                .defer_poll(job.instance_id, &job.resource, &token, next)
                .await
            {
                Ok(()) | Err(StoreError::LeaseLost) => Ok(CommitOutcome::default()),
                Err(err) => Err(err).context("deferring a poll"),
            };
        }
        Err(failure) if failure.lease_lost => {
            metrics::counter!("hubhook_polls_total", "outcome" => "lease_lost").increment(1);
            tracing::warn!(instance = %job.instance_id, resource = ?job.resource, "lease lost during the poll (its resource or instance was removed, or its lease ran out and another poll took it over); nothing of the rest was stored, and a job still configured is polled again from its last checkpoint");
            return Ok(CommitOutcome::default());
        }
        Err(failure) => failure,
    };
    let now = engine.clock().now();
    let next = now + failure.retry_in;
    metrics::counter!("hubhook_polls_total", "outcome" => "failure").increment(1);
    tracing::warn!(instance = %job.instance_id, resource = ?job.resource, error = ?failure.message, "poll failed");
    // A failure keeps the job's checkpoint: the next run resumes where this one stopped. If
    // recording the failure fails too (the store is down), the short lease expires.
    match engine
        .store()
        .fail_poll(
            job.instance_id,
            &job.resource,
            &token,
            now,
            next,
            &failure.message,
        )
        .await
    {
        Ok(()) | Err(StoreError::LeaseLost) => Ok(CommitOutcome::default()),
        Err(err) => Err(err).context("recording poll failure"),
    }
}

/// Renews the job's lease every third of its length; returns only when renewing fails.
async fn keep_lease(engine: &Engine, job: &PollJob, token: &LeaseToken) -> StoreError {
    let lease = engine.config().poll_lease;
    let every = lease / 3;
    loop {
        tokio::time::sleep(every).await;
        let until = engine.clock().now()
            + SignedDuration::try_from(lease).unwrap_or(SignedDuration::from_secs(60));
        match engine
            .store()
            .renew_poll_lease(job.instance_id, &job.resource, token, until)
            .await
        {
            Ok(()) => {}
            Err(StoreError::LeaseLost) => return StoreError::LeaseLost,
            // A store hiccup: keep polling, and try again at the next tick (the lease still
            // has two thirds of its length to run).
            Err(err) => {
                tracing::warn!(instance = %job.instance_id, resource = ?job.resource, error = %err, "renewing a poll lease failed");
            }
        }
    }
}

/// Why a poll stopped, and when to try again.
pub(crate) struct PollFailure {
    message: String,
    retry_in: SignedDuration,
    /// The poll's claim ended (a commit was refused): another run owns the job now.
    lease_lost: bool,
    /// The poll did not start: its ConnectWise site is busy or paused. Not a failure.
    site_busy: Option<SiteBusy>,
}

impl PollFailure {
    fn new(message: impl Into<String>, retry_in: Duration) -> PollFailure {
        PollFailure {
            message: message.into(),
            retry_in: SignedDuration::try_from(retry_in).unwrap_or(SignedDuration::from_secs(60)),
            lease_lost: false,
            site_busy: None,
        }
    }

    /// A failure that may pass: try again in a minute.
    fn soon(message: impl Into<String>) -> PollFailure {
        PollFailure::new(message, RETRY_AFTER_FAILURE)
    }

    /// A failure of the configuration: trying again before it changes is pointless.
    fn later(message: impl Into<String>) -> PollFailure {
        PollFailure::new(message, RETRY_AFTER_CONFIGURATION_ERROR)
    }
}

/// A store failure: a refused claim ends the poll quietly; anything else is retried soon
/// (store errors are usually brief: a full disk being cleared, a busy database).
fn store_failure(err: StoreError) -> PollFailure {
    match err {
        StoreError::LeaseLost => PollFailure {
            lease_lost: true,
            ..PollFailure::soon("the lease on this job was lost")
        },
        err => PollFailure::new(format!("the store failed: {err}"), RETRY_AFTER_STORE_ERROR),
    }
}

/// A ConnectWise failure, retried when ConnectWise says (`Retry-After`), soon when it may pass,
/// and after an hour when it will not (refused credentials, a query ConnectWise rejects).
fn connectwise_failure(err: CwError) -> PollFailure {
    let retry_in = match err.retry_after() {
        Some(after) => after,
        None if err.is_retryable() => RETRY_AFTER_FAILURE,
        None => RETRY_AFTER_CONFIGURATION_ERROR,
    };
    PollFailure::new(err.to_string(), retry_in)
}

/// Default wait after a failure that says nothing about when to come back.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(60);
/// Wait after the store refused a poll's results: store errors are usually brief.
const RETRY_AFTER_STORE_ERROR: Duration = Duration::from_secs(5);
/// Wait after a failure only a configuration change can fix.
const RETRY_AFTER_CONFIGURATION_ERROR: Duration = Duration::from_secs(3600);
/// Wait before trying a failed reconciliation again (the poll itself went on).
const RETRY_RECONCILIATION: Duration = Duration::from_secs(600);
/// More pages than this in one window means the server does not page as promised.
const MAX_PAGES: u32 = 100_000;

/// What a poll needs of its instance, built from its stored row. No `Debug`: it holds the
/// credentials.
pub(crate) struct Polled {
    /// When the instance was created: a resource added since is a new stream of event ids
    /// ([`generation`]).
    created_at: Timestamp,
    config: InstanceConfig,
    /// The instance's element adapter ([`Engine::poller_element`]), or why it cannot be built.
    client: Result<Client, String>,
}

/// The job's instance as of its claim or later: from the cache when the claim's version of the
/// instance is cached (no store read at all), else read, built and cached ([`configs`]).
async fn load(engine: &Engine, job: &PollJob) -> Result<Arc<Polled>, PollFailure> {
    let cache = engine.poll_configs();
    let now = engine.clock().now();
    if let Some(polled) = cache
        .instances
        .get(job.instance_id, job.instance_updated_at, now)
    {
        return Ok(polled);
    }
    let Some(instance) = engine
        .store()
        .instance(job.instance_id)
        .await
        .map_err(store_failure)?
    else {
        cache.instances.forget(job.instance_id);
        return Err(PollFailure::later("the instance no longer exists"));
    };
    let mut config =
        InstanceConfig::parse(&merge_secrets(&instance.configuration, &instance.secrets))
            .map_err(|e| PollFailure::later(format!("the stored configuration is invalid: {e}")))?;
    cache.share_blocks(&mut config);
    let client = engine.poller_element(&config).map_err(|e| e.to_string());
    let polled = Arc::new(Polled {
        created_at: instance.created_at,
        config,
        client,
    });
    cache
        .instances
        .insert(job.instance_id, instance.updated_at, polled.clone(), now);
    Ok(polled)
}

/// Reads the job's window page by page, committing each, then reconciles if that is due, and
/// ends the poll. Returns what the commits stored.
async fn poll(
    engine: &Engine,
    job: &PollJob,
    token: &LeaseToken,
) -> Result<CommitOutcome, PollFailure> {
    let polled = load(engine, job).await?;
    let Polled {
        created_at,
        config,
        client,
    } = &*polled;
    let generation = generation(job, *created_at);
    let interval = config
        .events
        .refresh_interval
        .floored(engine.config().min_refresh_interval)
        .duration();
    let resource = config.events.resources.get(&job.resource).ok_or_else(|| {
        PollFailure::later(format!(
            "resource `{}` is no longer configured",
            job.resource
        ))
    })?;
    // Held until the poll ends: bounds the polls running against one site.
    let _site_slot = engine
        .sites()
        .start_poll(&config.connectwise)
        .map_err(|busy| PollFailure {
            site_busy: Some(busy),
            ..PollFailure::soon("the ConnectWise site is busy")
        })?;
    // A clone (a few small allocations) lets the rest of the poll own its client as before.
    let client = client.clone().map_err(PollFailure::later)?;
    let now = || engine.clock().now();

    let mut window = job
        .checkpoint
        .as_deref()
        .and_then(|checkpoint| Window::resume(checkpoint, &resource.url))
        .unwrap_or_else(|| open_window(job, resource, now()));
    let mut outcome = CommitOutcome::default();
    // The window's URL is rendered once: every page is a page of the same query.
    let url = render_url(&resource.url, window.render_since)
        .map_err(|e| PollFailure::later(format!("rendering the url: {e}")))?;
    let base_query =
        HubQuery::parse(&url, resource.page_size).map_err(|e| PollFailure::later(e.to_string()))?;
    let fetch = |request: PageRequest| {
        let mut query = base_query.clone();
        query.page = request;
        let client = &client;
        async move {
            let requested_at = now();
            let page = match client.fetch_raw_page(&query).await {
                Ok(page) => ReadPage::read(page, resource).await,
                Err(error) => Err(error),
            };
            Fetched {
                request,
                query,
                requested_at,
                page,
            }
        }
    };
    // At most two pages ahead: while this page is committed, the next is classified and the
    // one after it is asked for (a page's own fetch, parse and classification each take about
    // as long as a commit, so one stage at a time would leave the store idle half the time).
    // Pages read ahead are used only after this page's commit, so the order of commits (and
    // what a checkpoint says) is the same as without them; if the commit fails, they are
    // dropped. Classifying reads the store's rows of the page's records and writes nothing, so
    // it can run beside the commit before it when the two pages share no record; when they do,
    // it waits for that commit (see `Content`). A request is used only if it is the one the
    // window asks for next, so a page fetched ahead on a stale guess is fetched again.
    let mut ahead: Option<Fetched> = None;
    let mut after: Option<Fetched> = None;
    while let Some(request) = window.next_request() {
        if window.pages >= MAX_PAGES {
            return Err(PollFailure::soon(format!(
                "more than {MAX_PAGES} pages in one poll; the server does not page as expected"
            )));
        }
        let Fetched {
            query,
            requested_at,
            page,
            ..
        } = match ahead.take() {
            Some(fetched) if fetched.request == request => fetched,
            _ => fetch(request).await,
        };
        let page = page.map_err(connectwise_failure)?.ok_or_else(|| {
            PollFailure::later(format!("`{}` does not answer a list", query.path))
        })?;
        if window.pages == 0 {
            window.server_start = page.server_time;
            window.filter_since = Some(filter_since(
                job,
                config,
                &window,
                requested_at,
                page.server_time,
            ));
        }
        if query.forward_only()
            && let (Some(first), Some(previous)) = (page.first_id, window.last_id)
            && first <= previous
        {
            return Err(PollFailure::soon(format!(
                "ConnectWise listed id {first} after id {previous}; its pages do not move forward"
            )));
        }
        let (next, last_id, count) = (page.next, page.last_id, page.count);
        if count == 0 && next.is_none() {
            // The usual idle poll: nothing changed. A commit would store only a checkpoint
            // that the poll's last commit, just below, replaces at once; if the poll dies in
            // between, the next run reads this one empty page again. One write saved per poll.
            window.advance(next, last_id);
            continue;
        }
        let ctx = PageContext {
            instance: job.instance_id,
            resource_name: &job.resource,
            resource,
            since: window.filter_since.unwrap_or(Timestamp::UNIX_EPOCH),
            // filterByCurrentDate compares with record dates, so it uses ConnectWise's clock.
            poll_started: window.server_start.unwrap_or(window.opened_at),
            all_created: window.first_run && config.events.first_run == FirstRun::All,
            generation,
        };
        let read_by = page.read_by;
        let (content, ids) = (page.content, page.ids);
        let commit_page = async {
            metrics::counter!("hubhook_poll_records_read_total").increment(count as u64);
            window.records_seen += count as u64;
            let processed = content.classify(engine.store(), &ctx).await;
            let processed = processed.map_err(store_failure)?;
            window.max_seen = window.max_seen.max(processed.max_updated);
            window.clock_lag = tighter(
                window.clock_lag,
                observed_lag(read_by, processed.max_updated),
            );
            window.events_emitted += processed.events.len() as u64;
            if processed.problems > 0 {
                window.record_problems = window.record_problems.saturating_add(processed.problems);
                window.record_problem = window.record_problem.take().or(processed.problem);
            }
            window.advance(next, last_id);
            let commit = PollCommit {
                instance_id: job.instance_id,
                resource: job.resource.clone(),
                lease_token: token.clone(),
                now: now(),
                observed: processed.observed,
                vanished: Vec::new(),
                events: processed.events,
                notifications: processed.notifications,
                progress: PollProgress::Checkpoint(window.checkpoint()),
            };
            engine
                .store()
                .commit_poll(commit)
                .await
                .map_err(store_failure)
        };
        let committed = match next {
            Some(request) => {
                let read_ahead = async {
                    let mut fetched = match after.take() {
                        Some(fetched) if fetched.request == request => fetched,
                        _ => fetch(request).await,
                    };
                    let mut then = None;
                    if let Ok(Some(page)) = &mut fetched.page {
                        let store = engine.store();
                        let classified = page.content.classify_beside(store, &ctx, &page.ids, &ids);
                        let fetch_after = async {
                            if let Some(request) = page.next {
                                then = Some(fetch(request).await);
                            }
                        };
                        tokio::join!(classified, fetch_after);
                    }
                    (fetched, then)
                };
                let (committed, (fetched, then)) = tokio::join!(commit_page, read_ahead);
                (ahead, after) = (Some(fetched), then);
                committed
            }
            None => commit_page.await,
        };
        let committed = committed?;
        // The page's notifications are stored: delivery need not wait for the rest of the poll
        // (a mass update's poll takes many seconds).
        if committed.notifications_inserted > 0 {
            engine.wake_dispatcher();
        }
        add(&mut outcome, committed);
    }

    // One line per poll, however many records were unusable: a configuration that cannot
    // read a resource's records must not flood the log. The count and one reason go to the
    // job's health. Values from ConnectWise are logged with `?`, i.e. escaped.
    metrics::counter!("hubhook_poll_records_skipped_total")
        .increment(u64::from(window.record_problems));
    if let Some(sample) = &window.record_problem {
        tracing::warn!(instance = %job.instance_id, resource = ?job.resource, skipped = window.record_problems, first = ?sample, "records skipped");
    }

    let reconcile_every = resource
        .reconcile_interval
        .map(|every| every.max(engine.config().min_refresh_interval));
    let mut reconciled = None;
    let mut partial_error = None;
    let mut schedule_reconcile_at = None;
    let due = |at: Timestamp| at <= now() && job.cursor.is_some();
    match (reconcile_every, job.next_reconcile_at) {
        (Some(every), Some(at)) if due(at) => {
            let run = reconcile::Job {
                job,
                token,
                resource,
                checkpoint: window.checkpoint(),
                interval: every,
                generation,
            };
            match reconcile::reconcile(engine.store(), &client, now, run).await {
                Ok(done) => {
                    window.events_emitted += done.deleted;
                    outcome.events_inserted += done.deleted as usize;
                    reconciled = Some(done.reconciled);
                }
                Err(failure) if failure.lease_lost => return Err(failure),
                // The poll's own work is done and stays done; the reconciliation is tried again
                // later, and its failure shows in the job's health.
                Err(failure) => {
                    tracing::warn!(instance = %job.instance_id, resource = ?job.resource, error = ?failure.message, "reconciliation failed");
                    partial_error = Some(format!("reconciliation: {}", failure.message));
                    schedule_reconcile_at = Some(
                        now() + SignedDuration::try_from(RETRY_RECONCILIATION).unwrap_or_default(),
                    );
                }
            }
        }
        // Not scheduled yet (the first poll, which has just read everything, or reconciliation
        // newly turned on): the first comparison is one interval away.
        (Some(every), None) => {
            schedule_reconcile_at = Some(
                now() + SignedDuration::try_from(every).unwrap_or(SignedDuration::from_secs(3600)),
            );
        }
        _ => {}
    }

    // What this window settled (see the module docs): only a window read forward by id to its
    // end is known to have listed every record visible when it opened.
    let clock_lag = tighter(job.clock_lag, window.clock_lag);
    let delay = SignedDuration::try_from(resource.poll_delay).ok();
    let settled = match (window.server_start, clock_lag, delay) {
        (Some(start), Some(lag), Some(delay)) if base_query.forward_only() => {
            settled_before(start, lag, delay)
        }
        _ => None,
    };
    let finished = now();
    let next_run_at = window.opened_at
        + SignedDuration::try_from(interval + phase(job.instance_id.0, &job.resource, interval))
            .unwrap_or(SignedDuration::from_secs(60));
    let commit = PollCommit {
        instance_id: job.instance_id,
        resource: job.resource.clone(),
        lease_token: token.clone(),
        now: finished,
        observed: Vec::new(),
        vanished: Vec::new(),
        events: Vec::new(),
        notifications: Vec::new(),
        progress: PollProgress::Done(PollDone {
            cursor: next_cursor(job.cursor, window.max_seen, window.cursor_cap(finished)),
            next_run_at,
            records_seen: window.records_seen,
            events_emitted: window.events_emitted,
            record_problems: window.record_problems,
            record_problem: window.record_problem.clone(),
            reconciled,
            schedule_reconcile_at,
            error: partial_error,
            settled_before: settled,
            clock_lag,
        }),
    };
    add(
        &mut outcome,
        engine
            .store()
            .commit_poll(commit)
            .await
            .map_err(store_failure)?,
    );
    metrics::counter!("hubhook_events_stored_total").increment(outcome.events_inserted as u64);
    metrics::counter!("hubhook_notifications_stored_total")
        .increment(outcome.notifications_inserted as u64);
    Ok(outcome)
}

/// The job's generation for its events' ids (`hubhook_core::event_id`): 0 for a resource
/// the instance was created with, else when it was added, in milliseconds.
fn generation(job: &PollJob, created_at: Timestamp) -> i64 {
    if job.added_at > created_at {
        job.added_at.as_millisecond()
    } else {
        0
    }
}

/// A new window for the job: from the cursor (minus the overlap, unless its seconds are
/// settled), or everything for the first poll.
fn open_window(job: &PollJob, resource: &ResourcePoll, now: Timestamp) -> Window {
    let overlap = SignedDuration::from_secs(1)
        + SignedDuration::try_from(resource.poll_delay).unwrap_or(SignedDuration::ZERO);
    match job.cursor {
        Some(cursor) => Window::open(
            &resource.url,
            window_start(cursor, overlap, job.settled_before),
            now,
            false,
        ),
        // The first poll reads everything (the placeholder at the epoch), to know every record.
        None => Window::open(&resource.url, Timestamp::UNIX_EPOCH, now, true),
    }
}

/// From when a window's records are events: after its rendered start for a regular poll; for
/// the first poll, as `event.poller.firstRun` says.
fn filter_since(
    job: &PollJob,
    config: &InstanceConfig,
    window: &Window,
    requested_at: Timestamp,
    server_time: Option<Timestamp>,
) -> Timestamp {
    if job.cursor.is_some() || !window.first_run {
        return window.render_since;
    }
    match config.events.first_run {
        FirstRun::Changes => baseline_since(job.added_at, requested_at, server_time),
        FirstRun::All => Timestamp::UNIX_EPOCH,
        FirstRun::Since(since) => since,
    }
}

/// A page asked for, as it came back.
struct Fetched {
    request: PageRequest,
    query: HubQuery,
    requested_at: Timestamp,
    /// `None` when the answer is not a list.
    page: Result<Option<ReadPage>, CwError>,
}

/// A page of records, and what paging needs to know of it.
struct ReadPage {
    first_id: Option<i64>,
    last_id: Option<i64>,
    count: usize,
    /// The object ids of its records.
    ids: HashSet<String>,
    next: Option<PageRequest>,
    server_time: Option<Timestamp>,
    read_by: Option<Timestamp>,
    content: Content,
}

impl ReadPage {
    /// Reads each record of the page into its canonical text and the fields the resource
    /// names (off the poll's task for a large page, see `hubhook_core::cpu`). `None` when the
    /// answer is not a list.
    async fn read(page: RawPage, resource: &ResourcePoll) -> Result<Option<Self>, CwError> {
        let RawPage {
            records,
            filter_nulls,
            next,
            server_time,
            read_by,
        } = page;
        let Some(records) = records else {
            return Ok(None);
        };
        let owned = resource.clone();
        let large = records.len() >= hubhook_core::cpu::LARGE;
        let records = hubhook_core::cpu::map(large, records, move |record| {
            PageRecord::read(record.get(), filter_nulls, &owned)
        })
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CwError::Decode(format!("the answer is not JSON: {e}")))?;
        Ok(Some(ReadPage {
            first_id: records.first().and_then(|record| record.numeric_id),
            last_id: records.last().and_then(|record| record.numeric_id),
            count: records.len(),
            ids: records
                .iter()
                .filter_map(|record| record.object_id(resource).ok())
                .collect(),
            next,
            server_time,
            read_by,
            content: Content::Records(records),
        }))
    }
}

/// A page's records, or what classifying them has made of them.
///
/// A page read ahead is classified while the page before it is committed only when the two
/// share no record: classifying reads what the store knows of each record, and the commit
/// before could change exactly that for a record on both pages (page-number paging can list a
/// record twice when records move between pages). Pages read forward by id never share one.
enum Content {
    Records(Vec<PageRecord>),
    Classified(Result<page::PageOutcome, StoreError>),
}

impl Content {
    async fn classify(
        self,
        store: &Store,
        ctx: &PageContext<'_>,
    ) -> Result<page::PageOutcome, StoreError> {
        match self {
            Content::Records(records) => page::process(store, ctx, records).await,
            Content::Classified(outcome) => outcome,
        }
    }

    /// Classifies the records now, unless the page shares a record with the one being
    /// committed (`ids` are this page's, `committing` that page's): then it waits for the
    /// commit.
    async fn classify_beside(
        &mut self,
        store: &Store,
        ctx: &PageContext<'_>,
        ids: &HashSet<String>,
        committing: &HashSet<String>,
    ) {
        let Content::Records(records) = self else {
            return;
        };
        if ids.is_disjoint(committing) {
            let records = std::mem::take(records);
            *self = Content::Classified(page::process(store, ctx, records).await);
        }
    }
}

fn add(total: &mut CommitOutcome, more: CommitOutcome) {
    total.events_inserted += more.events_inserted;
    total.notifications_inserted += more.notifications_inserted;
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubhook_store::MasterKey;
    use serde_json::json;

    fn ids(ids: &[&str]) -> HashSet<String> {
        ids.iter().map(|id| (*id).to_owned()).collect()
    }

    /// A page read ahead is classified beside the commit before it only when the two pages
    /// share no record; a shared one must be classified against what that commit stores.
    #[tokio::test]
    async fn a_page_sharing_a_record_with_the_commit_before_waits_for_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("hub.db").display());
        let store = Store::open(&url, MasterKey::parse(&"3".repeat(64)).expect("key"))
            .await
            .expect("store");
        let config = configs::tests::config(|_| {});
        let ctx = PageContext {
            instance: hubhook_core::InstanceId(1),
            resource_name: "contacts",
            resource: &config.events.resources["contacts"],
            since: Timestamp::UNIX_EPOCH,
            poll_started: Timestamp::UNIX_EPOCH,
            all_created: false,
            generation: 0,
        };
        let records = || {
            Content::Records(
                [
                    json!({"id": 2, "_info": {"lastUpdated": "2019-03-01T10:05:00Z"}}),
                    json!({"id": 3, "_info": {"lastUpdated": "2019-03-01T10:05:00Z"}}),
                ]
                .iter()
                .map(|record| PageRecord::of_value(record, ctx.resource))
                .collect(),
            )
        };
        let page = ids(&["2", "3"]);

        let mut shared = records();
        shared
            .classify_beside(&store, &ctx, &page, &ids(&["1", "2"]))
            .await;
        assert!(matches!(&shared, Content::Records(records) if records.len() == 2));

        let mut apart = records();
        apart
            .classify_beside(&store, &ctx, &page, &ids(&["0", "1"]))
            .await;
        let Content::Classified(Ok(outcome)) = apart else {
            panic!("a page apart from the commit is classified at once");
        };
        assert_eq!(outcome.observed.len(), 2);
        // Classified later, the shared page gives the same outcome.
        let later = shared.classify(&store, &ctx).await.expect("classified");
        assert_eq!(later.observed.len(), 2);
        store.close().await;
    }
}
