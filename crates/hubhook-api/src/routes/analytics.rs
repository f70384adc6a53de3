//! `GET /instances/events/analytics?from=&to=&interval=minute|hour|day`: how many events each
//! of the caller's instances stored, and how many deliveries it made and failed, per time
//! bucket. Cloud Elements lists this route; hubhook answers it with its own counts (the
//! reference does not document the body). The console draws its charts from the same function.
//!
//! The counts are aggregated by the store in one query confined to the caller's organization,
//! so another organization's instances never appear. Buckets are dense (every bucket from
//! `from` to `to`, zeros included) so that a chart needs no gap filling, and bounded in number
//! ([`MAX_BUCKETS`]) so that a wide window with a small interval cannot make a huge answer.

use std::collections::BTreeMap;

use axum::{
    Json,
    extract::{RawQuery, State},
};
use hubhook_store::{AnalyticsBucket, OrganizationId};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::Caller;
use crate::openapi::CommonErrors;
use crate::routes::instances::format_date;
use crate::{ApiError, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(event_analytics))
}

/// The most buckets one answer holds (a day by minute).
pub const MAX_BUCKETS: i64 = 1440;

/// The width of a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    Minute,
    Hour,
    Day,
}

impl Interval {
    /// As the `interval` parameter names it.
    fn word(self) -> &'static str {
        match self {
            Interval::Minute => "minute",
            Interval::Hour => "hour",
            Interval::Day => "day",
        }
    }

    fn parse(text: &str) -> Result<Interval, ApiError> {
        match text {
            "minute" => Ok(Interval::Minute),
            "hour" => Ok(Interval::Hour),
            "day" => Ok(Interval::Day),
            other => Err(ApiError::bad_request(format!(
                "`interval`: got `{}`, expected `minute`, `hour` or `day`",
                other.chars().take(40).collect::<String>().escape_debug()
            ))),
        }
    }

    pub fn millis(self) -> i64 {
        match self {
            Interval::Minute => 60_000,
            Interval::Hour => 3_600_000,
            Interval::Day => 86_400_000,
        }
    }

    /// The window shown when `from` is not given: an hour by minute, a week by hour, thirty
    /// days by day.
    fn default_span(self) -> SignedDuration {
        match self {
            Interval::Minute => SignedDuration::from_hours(1),
            Interval::Hour => SignedDuration::from_hours(24 * 7),
            Interval::Day => SignedDuration::from_hours(24 * 30),
        }
    }
}

/// Query of the analytics route.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Only its OpenAPI description is used; the query is read by hand.
pub struct AnalyticsQuery {
    /// Start of the window (RFC 3339); default `to` minus an hour (minute), a week (hour) or
    /// thirty days (day).
    from: Option<String>,
    /// End of the window, exclusive (RFC 3339); default now.
    to: Option<String>,
    /// `minute` (default), `hour` or `day`.
    interval: Option<String>,
}

/// Counts per instance and bucket.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalyticsOut {
    pub from: String,
    pub to: String,
    pub interval: Interval,
    /// Instances with anything in the window, by id.
    pub instances: Vec<InstanceAnalyticsOut>,
}

/// One instance's buckets, every one from `from` to `to`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceAnalyticsOut {
    pub instance_id: i64,
    pub buckets: Vec<BucketOut>,
}

/// One bucket's counts.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BucketOut {
    /// Where the bucket starts.
    pub start: String,
    /// Events stored.
    pub events: u64,
    /// Delivery attempts that delivered.
    pub delivered: u64,
    /// Delivery attempts that failed.
    pub failed: u64,
}

/// Events stored and deliveries made and failed by each of the caller's instances over time.
#[utoipa::path(
    get, path = "/instances/events/analytics", tag = "events",
    params(AnalyticsQuery),
    security(("UserOrganization" = [])),
    responses((status = 200, body = AnalyticsOut), CommonErrors)
)]
async fn event_analytics(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<AnalyticsOut>, ApiError> {
    let window = Window::parse(query.as_deref(), state.engine.clock().now())?;
    analytics(&state, caller.organization_id, window)
        .await
        .map(Json)
}

/// The window and bucket width of an analytics request.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub from: Timestamp,
    pub to: Timestamp,
    pub interval: Interval,
}

impl Window {
    /// The last `interval.default_span()` up to `now`.
    pub fn recent(interval: Interval, now: Timestamp) -> Window {
        Window::ending(interval, now, None).unwrap_or(Window {
            from: now,
            to: now,
            interval,
        })
    }

    fn ending(interval: Interval, to: Timestamp, from: Option<Timestamp>) -> Option<Window> {
        let from = match from {
            Some(from) => from,
            None => to.checked_sub(interval.default_span()).ok()?,
        };
        Some(Window { from, to, interval })
    }

    fn parse(query: Option<&str>, now: Timestamp) -> Result<Window, ApiError> {
        let (mut from, mut to, mut interval) = (None, None, Interval::Minute);
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match key.as_ref() {
                "from" => from = Some(time("from", &value)?),
                "to" => to = Some(time("to", &value)?),
                "interval" => interval = Interval::parse(&value)?,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "unknown query parameter `{}`: expected `from`, `to` or `interval`",
                        other.chars().take(100).collect::<String>().escape_debug()
                    )));
                }
            }
        }
        let to = to.unwrap_or(now);
        let window = Window::ending(interval, to, from)
            .ok_or_else(|| ApiError::bad_request("`to` is too early to count back from"))?;
        if window.from >= window.to {
            return Err(ApiError::bad_request(format!(
                "`from` ({}) must be before `to` ({})",
                format_date(window.from),
                format_date(window.to)
            )));
        }
        let buckets = window.bucket_count();
        if buckets > MAX_BUCKETS {
            return Err(ApiError::bad_request(format!(
                "`from`..`to` spans {buckets} buckets of one {interval}; at most {MAX_BUCKETS}: narrow the window or choose a wider `interval`",
                interval = window.interval.word()
            )));
        }
        Ok(window)
    }

    fn bucket_count(&self) -> i64 {
        let span = self.to.as_millisecond() - self.from.as_millisecond();
        let width = self.interval.millis();
        (span + width - 1) / width
    }
}

fn time(field: &str, value: &str) -> Result<Timestamp, ApiError> {
    hubhook_core::parse_instant(value).map_err(|reason| {
        ApiError::bad_request(format!(
            "`{field}`: got `{}`, expected an RFC 3339 time such as 2026-01-01T00:00:00Z: {reason}",
            value.chars().take(60).collect::<String>().escape_debug()
        ))
    })
}

/// The organization's counts in the window, dense per instance.
pub(crate) async fn analytics(
    state: &AppState,
    org: OrganizationId,
    window: Window,
) -> Result<AnalyticsOut, ApiError> {
    let width = window.interval.millis();
    let rows = state
        .engine
        .store()
        .event_analytics(org, window.from, window.to, width)
        .await?;
    let mut by_instance: BTreeMap<i64, Vec<AnalyticsBucket>> = BTreeMap::new();
    for row in rows {
        by_instance.entry(row.instance_id.0).or_default().push(row);
    }
    let count = window.bucket_count().max(0);
    let instances = by_instance
        .into_iter()
        .map(|(instance_id, rows)| {
            let mut buckets: Vec<BucketOut> = (0..count)
                .map(|n| BucketOut {
                    start: format_date(
                        Timestamp::from_millisecond(window.from.as_millisecond() + n * width)
                            .unwrap_or(window.from),
                    ),
                    events: 0,
                    delivered: 0,
                    failed: 0,
                })
                .collect();
            for row in rows {
                let n = (row.start.as_millisecond() - window.from.as_millisecond()) / width;
                if let Some(bucket) = usize::try_from(n).ok().and_then(|n| buckets.get_mut(n)) {
                    bucket.events = row.events;
                    bucket.delivered = row.delivered;
                    bucket.failed = row.failed;
                }
            }
            InstanceAnalyticsOut {
                instance_id,
                buckets,
            }
        })
        .collect();
    Ok(AnalyticsOut {
        from: format_date(window.from),
        to: format_date(window.to),
        interval: window.interval,
        instances,
    })
}
