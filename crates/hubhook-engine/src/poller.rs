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
//! The first poll of a job (no cursor yet) is the *baseline*: it reads every record, remembers
//! them all, and emits events only for records changed since the instance was created. That is
//! how a later change to a record that existed before the instance is told apart as UPDATED
//! rather than CREATED when, as in the documented ConnectWise configuration, created and updated
//! dates come from the same field.
//!
//! Events, their notifications, the observed hashes and the new cursor are committed in one
//! transaction, fenced on our lease: a crash before the commit loses nothing (the next poll
//! reads the same records again), and a crash after it loses nothing either (the outbox holds
//! the notifications).

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use anyhow::Context as _;
use hubhook_connectwise::HubQuery;
use hubhook_core::{
    ClassifyContext, EventRecord, InstanceConfig, Known, MAX_EVENTS_PER_NOTIFICATION,
    build_notifications, classify, event_id, merge_secrets, object_id, render_url,
};
use hubhook_store::{
    CommitOutcome, LeaseToken, NewEvent, NewNotification, ObservedObject, PollCommit, PollDone,
    PollJob, PollProgress, StoreError,
};
use jiff::{SignedDuration, Timestamp};

use crate::Engine;

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
    let store = engine.store();
    let failure = match polled {
        Ok(commit) => match store.commit_poll(commit).await {
            Ok(outcome) => {
                metrics::counter!("hubhook_polls_total", "outcome" => "success").increment(1);
                metrics::counter!("hubhook_events_stored_total")
                    .increment(outcome.events_inserted as u64);
                metrics::counter!("hubhook_notifications_stored_total")
                    .increment(outcome.notifications_inserted as u64);
                if outcome.events_inserted > 0 {
                    tracing::info!(instance = %job.instance_id, resource = ?job.resource, events = outcome.events_inserted, "poll stored events");
                }
                return Ok(outcome);
            }
            Err(StoreError::LeaseLost) => {
                metrics::counter!("hubhook_polls_total", "outcome" => "lease_lost").increment(1);
                tracing::warn!(instance = %job.instance_id, resource = ?job.resource, "lease lost before commit; the job will be polled again");
                return Ok(CommitOutcome::default());
            }
            // The store could not take the results (a transient "unable to open database file",
            // a full disk). Nothing was written; release the job so that it is retried soon
            // rather than left leased. If releasing fails too, the short lease expires.
            Err(err) => PollFailure::new(
                format!("storing the poll's results failed: {err}"),
                RETRY_AFTER_STORE_ERROR,
            ),
        },
        Err(failure) => failure,
    };
    let now = engine.clock().now();
    let next = now + failure.retry_in;
    metrics::counter!("hubhook_polls_total", "outcome" => "failure").increment(1);
    tracing::warn!(instance = %job.instance_id, resource = ?job.resource, error = ?failure.message, "poll failed");
    match store
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

/// Why a poll did not produce a commit, and when to try again.
struct PollFailure {
    message: String,
    retry_in: SignedDuration,
}

impl PollFailure {
    fn new(message: impl Into<String>, retry_in: Duration) -> PollFailure {
        PollFailure {
            message: message.into(),
            retry_in: SignedDuration::try_from(retry_in).unwrap_or(SignedDuration::from_secs(60)),
        }
    }
}

/// Default wait after a failure that says nothing about when to come back.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(60);

/// Wait after the store refused a poll's results: store errors are usually brief.
const RETRY_AFTER_STORE_ERROR: Duration = Duration::from_secs(5);

async fn poll(
    engine: &Engine,
    job: &PollJob,
    token: &LeaseToken,
) -> Result<PollCommit, PollFailure> {
    let store = engine.store();
    let instance = store
        .instance(job.instance_id)
        .await
        .map_err(|e| PollFailure::new(format!("reading instance: {e}"), RETRY_AFTER_FAILURE))?
        .ok_or_else(|| PollFailure::new("instance no longer exists", Duration::from_secs(3600)))?;
    let config = InstanceConfig::parse(&merge_secrets(&instance.configuration, &instance.secrets))
        .map_err(|e| {
            PollFailure::new(
                format!("stored configuration is invalid: {e}"),
                Duration::from_secs(3600),
            )
        })?;
    let interval = config
        .events
        .refresh_interval
        .floored(engine.config().min_refresh_interval)
        .duration();
    let resource = config.events.resources.get(&job.resource).ok_or_else(|| {
        PollFailure::new(
            format!("resource `{}` is no longer configured", job.resource),
            interval,
        )
    })?;

    let poll_started = engine.clock().now();
    let overlap = SignedDuration::from_secs(1)
        + SignedDuration::try_from(resource.poll_delay).unwrap_or(SignedDuration::ZERO);
    // Baseline: read everything (the placeholder at the epoch); see the module docs.
    let render_since = job
        .cursor
        .map_or(Timestamp::UNIX_EPOCH, |cursor| cursor - overlap);
    let url = render_url(&resource.url, render_since)
        .map_err(|e| PollFailure::new(format!("rendering url: {e}"), interval))?;
    let query = HubQuery::parse(&url, resource.page_size)
        .map_err(|e| PollFailure::new(e.to_string(), interval))?;
    let client = engine
        .element(&config)
        .map_err(|e| PollFailure::new(e.to_string(), interval))?;
    let requested_at = engine.clock().now();
    let fetched = client.fetch_all(&query).await.map_err(|e| {
        let retry_in = e
            .retry_after()
            .unwrap_or(RETRY_AFTER_FAILURE)
            .max(if e.is_retryable() {
                Duration::ZERO
            } else {
                interval
            });
        PollFailure::new(e.to_string(), retry_in)
    })?;
    let filter_since = match job.cursor {
        Some(cursor) => cursor - overlap,
        None => baseline_since(
            instance.created_at,
            requested_at,
            fetched.server_time_at_start,
        ),
    };
    let fetched_at_server = fetched.server_time_at_start;
    let records = fetched.records;
    metrics::counter!("hubhook_poll_records_read_total").increment(records.len() as u64);

    let ids: Vec<String> = records
        .iter()
        .filter_map(|r| object_id(resource, r).ok())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let known: HashMap<String, Known> = store
        .known_objects(job.instance_id, &job.resource, &ids)
        .await
        .map_err(|e| PollFailure::new(format!("reading known objects: {e}"), RETRY_AFTER_FAILURE))?
        .into_iter()
        .map(|(id, known)| {
            (
                id,
                Known {
                    content_hash: known.content_hash,
                    deleted: known.deleted,
                },
            )
        })
        .collect();
    let classified = classify(
        &ClassifyContext {
            resource,
            since: filter_since,
            // filterByCurrentDate compares with record dates, so it uses ConnectWise's clock.
            poll_started: fetched_at_server.unwrap_or(poll_started),
            known: &known,
            all_created: false,
        },
        records,
    );
    // One line per poll, however many records were unusable: a configuration that cannot
    // read a resource's records must not flood the log. The count and one reason go to the
    // job's health. Values from ConnectWise are logged with `?`, i.e. escaped.
    let record_problems = u32::try_from(classified.errors.len()).unwrap_or(u32::MAX);
    let record_problem = classified
        .errors
        .first()
        .map(|e| format!("record {}: {}", e.index, e.message));
    metrics::counter!("hubhook_poll_records_skipped_total").increment(u64::from(record_problems));
    if let Some(sample) = &record_problem {
        tracing::warn!(instance = %job.instance_id, resource = ?job.resource, skipped = record_problems, first = ?sample, "records skipped");
    }

    let events: Vec<EventRecord> = classified
        .changes
        .into_iter()
        .map(|change| EventRecord {
            id: event_id(
                job.instance_id,
                &job.resource,
                &change.object_id,
                change.event_type,
                &change.content_hash,
            ),
            event_type: change.event_type,
            object_type: job.resource.clone(),
            object_id: change.object_id,
            event_date: change.updated,
            record: change.record,
            changes: None,
        })
        .collect();
    let notifications = build_notifications(job.instance_id, &events, MAX_EVENTS_PER_NOTIFICATION);
    let cursor = next_cursor(
        job.cursor,
        classified.max_updated,
        fetched.server_time_at_start,
    );
    let interval = SignedDuration::try_from(interval).unwrap_or(SignedDuration::from_secs(60));
    let records_seen = classified.observed.len() as u64;
    let events_emitted = events.len() as u64;
    Ok(PollCommit {
        instance_id: job.instance_id,
        resource: job.resource.clone(),
        lease_token: token.clone(),
        now: engine.clock().now(),
        observed: classified
            .observed
            .into_iter()
            .map(|o| ObservedObject {
                object_id: o.object_id,
                content_hash: o.content_hash,
                updated_at: o.updated,
                record: o.record.to_string(),
                deleted: o.deleted,
            })
            .collect(),
        vanished: Vec::new(),
        events: events
            .iter()
            .map(|e| NewEvent {
                id: e.id.clone(),
                object_type: e.object_type.clone(),
                object_id: e.object_id.clone(),
                event_type: e.event_type.as_str().to_string(),
                event_date: e.event_date,
                record_json: e.record.to_string(),
            })
            .collect(),
        notifications: notifications
            .into_iter()
            .map(|n| NewNotification {
                id: n.id,
                event_ids: n.event_ids,
                body: n.body,
            })
            .collect(),
        progress: PollProgress::Done(PollDone {
            cursor,
            next_run_at: poll_started + interval,
            records_seen,
            events_emitted,
            record_problems,
            record_problem,
            reconciled: None,
            schedule_reconcile_at: None,
        }),
    })
}

fn start_of_second(ts: Timestamp) -> Timestamp {
    Timestamp::from_second(ts.as_second()).unwrap_or(ts)
}

/// The instant, on ConnectWise's clock, from which the baseline announces changes: the
/// instance's creation, moved by the offset between ConnectWise's clock and ours. The server
/// time is a lower bound (see [`hubhook_connectwise::Fetched`]), so the estimate errs early;
/// one more second covers the `Date` header's second precision. A change made just before the
/// creation may be announced; none made after it is lost.
fn baseline_since(
    created_at: Timestamp,
    requested_at: Timestamp,
    server_time_at_start: Option<Timestamp>,
) -> Timestamp {
    let offset = server_time_at_start.map_or(SignedDuration::ZERO, |server| {
        server.duration_since(requested_at)
    });
    start_of_second(created_at + offset) - SignedDuration::from_secs(1)
}

/// The cursor after a poll: the latest updated date seen, never moving backwards, and never
/// past ConnectWise's time when the fetch began.
///
/// Pages are read one after another, not as one snapshot: a record on an early page can change
/// after that page was read while a later page shows a newer change, so taking the newest date
/// seen would skip the first change. Capping at the fetch's start re-reads anything changed
/// since then on the next poll (deduplicated by content hash). The cap also keeps a record
/// dated in the future from freezing the cursor ahead of real changes.
fn next_cursor(
    old: Option<Timestamp>,
    max_seen: Option<Timestamp>,
    server_time_at_start: Option<Timestamp>,
) -> Option<Timestamp> {
    let seen = match (max_seen, server_time_at_start) {
        (Some(seen), Some(began)) => Some(seen.min(began)),
        (seen, _) => seen,
    };
    match (old, seen) {
        (Some(old), Some(seen)) => Some(old.max(seen)),
        (old, seen) => seen.or(old),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn cursor_never_passes_the_fetch_start() {
        let began = Some(ts("2026-01-01T10:00:00Z"));
        let seen = Some(ts("2026-01-01T10:00:05Z"));
        let earlier = Some(ts("2026-01-01T09:59:00Z"));
        assert_eq!(next_cursor(None, seen, began), began);
        assert_eq!(next_cursor(None, earlier, began), earlier);
        assert_eq!(next_cursor(None, seen, None), seen);
        let old = Some(ts("2026-01-01T10:00:30Z"));
        assert_eq!(next_cursor(old, seen, began), old, "never backwards");
        assert_eq!(next_cursor(old, None, began), old);
    }

    #[test]
    fn baseline_uses_connectwise_time() {
        let created = ts("2026-01-01T10:00:00.400Z");
        let asked = ts("2026-01-01T10:00:10Z");
        // ConnectWise is 30 s behind us: the baseline starts 30 s earlier on its clock.
        assert_eq!(
            baseline_since(created, asked, Some(ts("2026-01-01T09:59:40Z"))),
            ts("2026-01-01T09:59:29Z")
        );
        assert_eq!(
            baseline_since(created, asked, None),
            ts("2026-01-01T09:59:59Z")
        );
    }
}
