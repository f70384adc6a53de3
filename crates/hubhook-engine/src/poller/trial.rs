//! A trial read of each poller URL when an instance is created or changed, so that a
//! configuration that parses but can never deliver an event is refused at once, naming the
//! setting, instead of failing at every poll where only `/health` shows it.
//!
//! # What it catches, and what it cannot
//!
//! Each configured resource is read once, the way its polls read it, with its date placeholders
//! rendered at the epoch (every record qualifies) and one record per page. ConnectWise's answer
//! tells what parsing the configuration could not:
//! - a path ConnectWise does not have (404), a `where` on a field it does not know or a value
//!   it cannot compare (400), a list the API member may not read (403): refused, naming the
//!   resource's `url`, with ConnectWise's own words;
//! - an answer that is not a list, or not ConnectWise's JSON, or a list whose pages cannot be
//!   walked (forward-only paging needs numeric `id`s): refused, as every poll would fail the
//!   same way;
//! - the first record it lists, read as the poller reads records: an `idField` or
//!   `updatedDateField` that record does not have, or a date that does not match the configured
//!   format, would make every record unusable, so it is refused naming the setting; so is a
//!   `createdDateField` it does not have or cannot read (records would still be used, but
//!   CREATED could never be told from UPDATED by the dates the user configured).
//!
//! An empty list proves nothing about the record settings and passes: a new site, or a `where`
//! that matches nothing yet, is a valid configuration. A failure that may pass by itself (a
//! timeout, a 5xx, rate limiting, a dropped connection) passes too, logged: the credentials
//! were just accepted by the same server, and refusing an instance because ConnectWise
//! hiccupped once would be worse than the poll's own retry. A `where` that can never match any record (`id = 1 and id = 2`) is not
//! caught: ConnectWise answers it like any other empty list.

use hubhook_connectwise::{CwError, HubQuery, PageRequest};
use hubhook_core::{
    ClassifyContext, InstanceConfig, PageRecord, ResourcePoll, classify, object_id, read_date,
    render_url,
};
use jiff::Timestamp;
use serde_json::Value;
use tokio::task::JoinSet;

use crate::Engine;

/// A resource whose trial read was refused: the setting to change and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrialProblem {
    /// The configuration key to change, such as `event.poller.configuration.contacts.url`.
    pub field: String,
    pub message: String,
    /// ConnectWise's own words, when it refused the read.
    pub provider_message: Option<String>,
}

/// Reads one record of every configured resource (at once; the site's throttle still bounds
/// the requests in flight). Returns every problem found, by resource name; none when events are
/// off (nothing is polled). With the `previous` configuration of an instance being changed, a
/// resource it already polled the same way, on the same site, is not read again.
pub async fn trial_read(
    engine: &Engine,
    config: &InstanceConfig,
    previous: Option<&InstanceConfig>,
) -> Vec<TrialProblem> {
    if !config.events.enabled {
        return Vec::new();
    }
    let polled_before = |name: &str, resource: &ResourcePoll| {
        previous.is_some_and(|p| {
            p.events.enabled
                && p.connectwise == config.connectwise
                && p.filter_response_nulls == config.filter_response_nulls
                && p.events
                    .resources
                    .get(name)
                    .is_some_and(|r| **r == *resource)
        })
    };
    let client = match engine.poller_element(config) {
        Ok(client) => client,
        // The credentials check before this one builds the same client and names the problem.
        Err(_) => return Vec::new(),
    };
    let mut reads = JoinSet::new();
    for (name, resource) in &config.events.resources {
        if polled_before(name, resource) {
            continue;
        }
        let (name, resource, client) = (name.clone(), resource.clone(), client.clone());
        reads.spawn(async move {
            let field = format!("event.poller.configuration.{name}");
            let problem = |key: &str, message: String, provider: Option<&str>| TrialProblem {
                field: format!("{field}{key}"),
                message,
                provider_message: provider.map(str::to_owned),
            };
            // Creation already rendered and parsed this URL; a failure here is the same one.
            let Ok(url) = render_url(&resource.url, Timestamp::UNIX_EPOCH) else {
                return None;
            };
            let Ok(mut query) = HubQuery::parse(&url, Some(1)) else {
                return None;
            };
            query.page_size = 1;
            query.page = PageRequest::First;
            let page = match client.fetch_page(&query).await {
                Ok(page) => page,
                // An answer that is not ConnectWise's JSON (`Decode`) counts as retryable for a
                // poll, but the same URL gives the same answer: it is refused here.
                Err(err) if err.is_retryable() && !matches!(err, CwError::Decode(_)) => {
                    tracing::warn!(resource = %name, error = %err, "the trial read of a new or changed resource could not be made; the change is kept and its polls will retry");
                    return None;
                }
                Err(err) => {
                    let message = refused(&query.path, &err);
                    return Some(problem(".url", message, err.provider_message()));
                }
            };
            let Value::Array(records) = page.body else {
                let message = format!(
                    "ConnectWise does not answer a list at `{}`, so no poll can read records from it",
                    query.path
                );
                return Some(problem(".url", message, None));
            };
            let record = records.into_iter().next()?;
            let listed = record
                .get("id")
                .map(|id| format!(" (id {id})"))
                .unwrap_or_default();
            let unusable = |why: String, outcome: &str| {
                format!(
                    "the first record ConnectWise lists at `{}`{listed} cannot be read with these settings: {why}; {outcome}",
                    query.path
                )
            };
            const SKIPPED: &str = "every record would be skipped";
            if let Err(why) = object_id(&resource, &record) {
                return Some(problem(".idField", unusable(why, SKIPPED), None));
            }
            let known = std::collections::HashMap::new();
            let ctx = ClassifyContext {
                resource: &resource,
                since: Timestamp::UNIX_EPOCH,
                poll_started: Timestamp::MAX,
                known: &known,
                all_created: false,
            };
            // A created date that cannot be read does not skip a record (the poll falls back to
            // what it knows of the object), so classifying does not report it; but on the first
            // record it means the setting is wrong, and CREATED would never be told apart.
            let created = (!resource.dates.same_field())
                .then(|| read_date(&record, &resource.dates.created).err())
                .flatten();
            let message = match classify(&ctx, vec![PageRecord::of_value(&record, &resource)]).errors.into_iter().next() {
                Some(error) => unusable(error.message, SKIPPED),
                None => unusable(
                    format!("its created date: {}", created?),
                    "CREATED could never be told from UPDATED by it",
                ),
            };
            Some(problem(".datesConfiguration", message, None))
        });
    }
    let mut problems: Vec<TrialProblem> = reads.join_all().await.into_iter().flatten().collect();
    problems.sort_by(|a, b| a.field.cmp(&b.field));
    problems
}

/// Why ConnectWise's refusal means the URL can never be polled.
fn refused(path: &str, err: &CwError) -> String {
    let what = match err {
        CwError::Status { status: 404, .. } => "has no such list",
        CwError::Unauthorized { status: 403, .. } => {
            "does not let this API member read it (check the member's security role)"
        }
        CwError::Status { status: 400, .. } => {
            "refused the query (a field in `where` or `orderBy` it does not know, or a value it cannot compare)"
        }
        CwError::Decode(_) => "answers something the poller cannot read as pages of records",
        _ => "refused to list it",
    };
    format!("ConnectWise {what}: GET `{path}` with one record per page answered: {err}")
}
