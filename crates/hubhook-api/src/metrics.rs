//! `/metrics` in the Prometheus text format.
//!
//! Counters and histograms are recorded where things happen (the engine counts polls, events
//! and deliveries; [`record_http`] counts requests by route and status) through the `metrics`
//! facade, into one process-wide Prometheus recorder. Backlogs (work due, the age of the oldest
//! due item, queued notifications) are gauges read from the store when `/metrics` is scraped,
//! so they are true for the whole database, whichever node did the work.
//!
//! `/metrics` answers without credentials (scrapers have none), and its backlog gauges count
//! due rows: a scrape beside a backlog of 200,000 is a count over 200,000 index entries. So
//! that a flood of scrapes cannot take every reader connection of the store (and with them
//! the API's reads), the gauges are read by one scrape at a time, and the scrapes that arrive
//! while a read runs share the next one ([`GaugeReads`]).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hubhook_store::Backlog;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{ApiError, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// Seconds buckets for request and delivery durations.
const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process-wide recorder, installed on first use. Several servers in one process (tests)
/// share it.
fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = || {
            PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("duration_seconds".into()),
                    DURATION_BUCKETS,
                )
                .unwrap_or_else(|_| PrometheusBuilder::new())
        };
        builder().install_recorder().unwrap_or_else(|err| {
            // Another recorder was installed first (only an embedding program could do that):
            // serve our own, which then records nothing.
            tracing::warn!(error = %err, "metrics recorder already installed; /metrics will be empty");
            builder().build_recorder().handle()
        })
    })
}

/// Installs the recorder, so that counters recorded before the first scrape are kept.
pub fn install() {
    handle();
}

/// Counts every request by method, route template (never the raw path: ids would make one
/// series per object) and status, and times it.
pub async fn record_http(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("hubhook_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("hubhook_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Prometheus text format: request, poll, event and delivery counters, and the backlogs of
/// the poller and the dispatcher.
#[utoipa::path(
    get, path = "/metrics", tag = "health",
    responses(
        (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain; version=0.0.4"),
        (status = 500, body = crate::error::ErrorBody)
    )
)]
async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    state.gauges.refresh(read_gauges(&state)).await?;
    let handle = handle();
    handle.run_upkeep();
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response())
}

/// One scrape's reads of the store at a time, shared by the scrapes that wait for it.
///
/// A scrape's answer must be at least as new as the scrape: a read that began before a scrape
/// arrived may have missed what the scraper just did (a test that disables an instance and
/// then scrapes). So a scrape waits for the one read in flight, and reuses the next read if
/// another waiting scrape ran it, since that one began after both arrived; otherwise it reads
/// itself. However many scrapes arrive at once, there is one read at a time, and at most two
/// for one wave of scrapes.
#[derive(Debug, Default)]
pub(crate) struct GaugeReads {
    /// Reads begun, and the number of the last one finished.
    begun: AtomicU64,
    finished: AtomicU64,
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl GaugeReads {
    async fn refresh<E>(&self, read: impl Future<Output = Result<(), E>>) -> Result<(), E> {
        let arrived = self.begun.load(Ordering::SeqCst);
        let _turn = self.one_at_a_time.lock().await;
        if self.finished.load(Ordering::SeqCst) > arrived {
            return Ok(());
        }
        let number = self.begun.fetch_add(1, Ordering::SeqCst) + 1;
        read.await?;
        self.finished.store(number, Ordering::SeqCst);
        Ok(())
    }
}

/// Sets the backlog gauges from the store.
async fn read_gauges(state: &AppState) -> Result<(), ApiError> {
    let store = state.engine.store();
    let now = state.engine.clock().now();
    let polls = store.poll_backlog(now).await?;
    let deliveries = store.delivery_backlog(now).await?;
    let queued = store.queued_notifications().await?;
    set_backlog("polls", polls, now);
    set_backlog("notifications", deliveries, now);
    metrics::gauge!("hubhook_notifications_queued").set(queued as f64);
    // Counts, not one series per job: a node polls thousands of jobs, and the instance
    // health API says which ones.
    let trouble = store.poll_trouble().await?;
    for (state, jobs) in [
        ("failing", trouble.failing),
        ("mass_delete_held", trouble.mass_delete_held),
        ("record_problems", trouble.record_problems),
    ] {
        metrics::gauge!("hubhook_poll_jobs_in_trouble", "state" => state).set(jobs as f64);
    }
    Ok(())
}

fn set_backlog(work: &'static str, backlog: Backlog, now: jiff::Timestamp) {
    metrics::gauge!("hubhook_due", "work" => work).set(backlog.due as f64);
    let age = backlog.oldest_due.map_or(0.0, |oldest| {
        now.duration_since(oldest).as_secs_f64().max(0.0)
    });
    metrics::gauge!("hubhook_oldest_due_age_seconds", "work" => work).set(age);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use super::GaugeReads;

    /// A read that takes `ms` and counts itself.
    async fn read(count: &AtomicU64, ms: u64) -> Result<(), ()> {
        count.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(())
    }

    /// Scrapes one after another each read (each must see what came before it); a wave of
    /// scrapes that arrive while a read runs shares one more read, so twenty at once cost
    /// two reads, not twenty.
    #[tokio::test]
    async fn scrapes_at_once_share_a_read_and_scrapes_in_turn_each_read() {
        let reads = Arc::new(GaugeReads::default());
        let count = Arc::new(AtomicU64::new(0));
        for _ in 0..3 {
            reads.refresh(read(&count, 10)).await.unwrap();
        }
        assert_eq!(count.load(Ordering::SeqCst), 3);
        let wave: Vec<_> = (0..20)
            .map(|_| {
                let (reads, count) = (reads.clone(), count.clone());
                tokio::spawn(async move { reads.refresh(read(&count, 10)).await })
            })
            .collect();
        for scrape in wave {
            scrape.await.unwrap().unwrap();
        }
        assert_eq!(count.load(Ordering::SeqCst), 3 + 2);
    }

    /// A failed read is nobody's answer: the next scrape reads again.
    #[tokio::test]
    async fn a_failed_read_is_not_shared() {
        let reads = GaugeReads::default();
        assert_eq!(
            reads.refresh(async { Err::<(), _>("down") }).await,
            Err("down")
        );
        let count = AtomicU64::new(0);
        reads.refresh(read(&count, 0)).await.unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }
}
