//! How an organization's failed deliveries are handled: its account settings, the retry
//! schedule they select, jitter, and the receiver's `Retry-After`.
//!
//! Cloud Elements has one setting, `notification.webhook.failure.policy` (`retry` | `queue`).
//! hubhook adds `notification.webhook.retry.schedule` (`default` | `short`), so an
//! organization whose receivers should hear about a failure within a day can choose so. What
//! is decided here is pure; the dispatcher supplies the clock and the random numbers.

use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Map, Value};

use crate::RetrySchedule;

/// Key of the Cloud Elements failure policy.
pub const FAILURE_POLICY: &str = "notification.webhook.failure.policy";
/// Key of hubhook's retry schedule preset.
pub const RETRY_SCHEDULE: &str = "notification.webhook.retry.schedule";

/// What follows a failed delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailurePolicy {
    /// Retry on the schedule; once it is exhausted, deactivate the subscription and queue.
    #[default]
    Retry,
    /// Deactivate the subscription at the first failure; everything queues until redelivery.
    Queue,
}

/// Which retry schedule an organization uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SchedulePreset {
    /// Cloud Elements' 9 retries at 4^x s (or the server's `--retry-schedule`).
    #[default]
    Default,
    /// 5 s, 5 min, 30 min, 2 h, 5 h, 10 h (Svix's schedule, a day in all).
    Short,
}

impl SchedulePreset {
    /// The schedule this preset stands for; `default` is the server's.
    pub fn schedule(self, server_default: &RetrySchedule) -> RetrySchedule {
        match self {
            SchedulePreset::Default => server_default.clone(),
            SchedulePreset::Short => RetrySchedule::new(
                [5, 300, 1800, 7200, 18000, 36000]
                    .into_iter()
                    .map(Duration::from_secs)
                    .collect(),
            ),
        }
    }
}

/// An organization's delivery settings, read from its stored account settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeliverySettings {
    pub failure_policy: FailurePolicy,
    pub schedule: SchedulePreset,
}

impl DeliverySettings {
    /// Reads the settings a user sent (or that were stored). Unknown keys and bad values are
    /// refused with the key, the value and what is expected; missing keys keep their default.
    pub fn parse(settings: &Map<String, Value>) -> Result<DeliverySettings, String> {
        let mut parsed = DeliverySettings::default();
        for (key, value) in settings {
            let text = value.as_str();
            match (key.as_str(), text) {
                (FAILURE_POLICY, Some("retry")) => parsed.failure_policy = FailurePolicy::Retry,
                (FAILURE_POLICY, Some("queue")) => parsed.failure_policy = FailurePolicy::Queue,
                (FAILURE_POLICY, _) => {
                    return Err(format!(
                        "`{FAILURE_POLICY}`: got {value}, expected \"retry\" or \"queue\""
                    ));
                }
                (RETRY_SCHEDULE, Some("default")) => parsed.schedule = SchedulePreset::Default,
                (RETRY_SCHEDULE, Some("short")) => parsed.schedule = SchedulePreset::Short,
                (RETRY_SCHEDULE, _) => {
                    return Err(format!(
                        "`{RETRY_SCHEDULE}`: got {value}, expected \"default\" or \"short\""
                    ));
                }
                (other, _) => {
                    return Err(format!(
                        "`{}`: unknown setting, expected `{FAILURE_POLICY}` or `{RETRY_SCHEDULE}`",
                        other.escape_debug()
                    ));
                }
            }
        }
        Ok(parsed)
    }
}

/// `delay` scaled by a factor from 0.8 to 1.2 (±20 %), `unit` being a random number in
/// [0, 1): retries of notifications that failed together spread out instead of arriving at
/// a recovering receiver all at once.
pub fn with_jitter(delay: Duration, unit: f64) -> Duration {
    let factor = 0.8 + 0.4 * unit.clamp(0.0, 1.0);
    delay.mul_f64(factor)
}

/// The longest wait a `Retry-After` can ask for; beyond it the schedule decides (a receiver
/// cannot park deliveries for days with one header).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// A `Retry-After` header (delay in seconds, or an HTTP date) as a wait from `now`, at most
/// [`MAX_RETRY_AFTER`]; `None` when absent or unreadable.
pub fn retry_after(header: &str, now: Timestamp) -> Option<Duration> {
    let header = header.trim();
    let wait = if !header.is_empty() && header.bytes().all(|b| b.is_ascii_digit()) {
        // More seconds than a u64 holds is still "later than the cap".
        header
            .parse::<u64>()
            .map_or(MAX_RETRY_AFTER, Duration::from_secs)
    } else {
        let at = http_date(header)?;
        Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// An HTTP date in any of the three forms RFC 9110 says a recipient must read: IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`), the obsolete RFC 850 form (`Sunday, 06-Nov-94 08:49:37
/// GMT`) and asctime (`Sun Nov  6 08:49:37 1994`). A date past the last instant a timestamp
/// can hold (`31 Dec 9999 23:59:59`) reads as that last instant: still "later than the cap".
fn http_date(header: &str) -> Option<Timestamp> {
    if let Ok(at) = jiff::fmt::rfc2822::DateTimeParser::new().parse_timestamp(header) {
        return Some(at);
    }
    // asctime pads a one-digit day with a space; read it as one space.
    let spaced = header.split_whitespace().collect::<Vec<_>>().join(" ");
    [
        "%a, %d %b %Y %H:%M:%S GMT",
        "%A, %d-%b-%y %H:%M:%S GMT",
        "%a %b %d %H:%M:%S %Y",
    ]
    .iter()
    .find_map(|format| jiff::civil::DateTime::strptime(format, &spaced).ok())
    .map(|civil| {
        civil
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map_or(Timestamp::MAX, |zoned| zoned.timestamp())
    })
}

/// When to try again after a failure: the schedule's delay (jittered), but never before the
/// receiver's `Retry-After`.
pub fn next_delay(scheduled: Duration, unit: f64, retry_after: Option<Duration>) -> Duration {
    let jittered = with_jitter(scheduled, unit);
    retry_after.map_or(jittered, |wait| jittered.max(wait))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<DeliverySettings, String> {
        DeliverySettings::parse(value.as_object().expect("object"))
    }

    #[test]
    fn settings_are_read_and_bad_ones_named() {
        assert_eq!(parse(json!({})), Ok(DeliverySettings::default()));
        assert_eq!(
            parse(json!({ FAILURE_POLICY: "queue", RETRY_SCHEDULE: "short" })),
            Ok(DeliverySettings {
                failure_policy: FailurePolicy::Queue,
                schedule: SchedulePreset::Short
            })
        );
        for (body, needle) in [
            (
                json!({ FAILURE_POLICY: "drop" }),
                "got \"drop\", expected \"retry\" or \"queue\"",
            ),
            (json!({ FAILURE_POLICY: 1 }), "got 1"),
            (
                json!({ RETRY_SCHEDULE: "fast" }),
                "expected \"default\" or \"short\"",
            ),
            (json!({ "colour": "red" }), "`colour`: unknown setting"),
        ] {
            let error = parse(body.clone()).expect_err(&body.to_string());
            assert!(error.contains(needle), "{error}");
        }
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let delay = Duration::from_secs(100);
        for (unit, expected) in [(0.0, 80.0), (0.5, 100.0), (0.999_999, 120.0), (7.0, 120.0)] {
            let got = with_jitter(delay, unit).as_secs_f64();
            assert!((got - expected).abs() < 0.01, "{unit}: {got}");
        }
    }

    #[test]
    fn retry_after_is_read_and_bounded() {
        let now: Timestamp = "2015-10-21T07:28:00Z".parse().expect("time");
        for (header, expected) in [
            ("120", Some(120)),
            (" 5 ", Some(5)),
            ("999999", Some(3600)),
            ("Wed, 21 Oct 2015 07:29:00 GMT", Some(60)),
            ("Wed, 21 Oct 2015 07:00:00 GMT", Some(0)),
            ("soon", None),
            ("-1", None),
            // RFC 9110's other two date forms, and values past what can be held: capped.
            ("Wednesday, 21-Oct-15 07:29:00 GMT", Some(60)),
            ("Wed Oct 21 07:29:30 2015", Some(90)),
            ("Thu Oct  1 07:29:30 2015", Some(0)),
            ("Fri, 31 Dec 9999 23:59:59 GMT", Some(3600)),
            ("99999999999999999999", Some(3600)),
        ] {
            assert_eq!(
                retry_after(header, now),
                expected.map(Duration::from_secs),
                "{header}"
            );
        }
    }

    #[test]
    fn the_next_delay_never_comes_before_retry_after() {
        let four = Duration::from_secs(4);
        assert_eq!(next_delay(four, 0.5, None), four);
        assert_eq!(
            next_delay(four, 0.5, Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
        assert_eq!(next_delay(four, 0.5, Some(Duration::from_secs(1))), four);
        let short = SchedulePreset::Short.schedule(&RetrySchedule::cloud_elements());
        assert_eq!(short.max_retries(), 6);
        assert_eq!(
            SchedulePreset::Default.schedule(&RetrySchedule::cloud_elements()),
            RetrySchedule::cloud_elements()
        );
    }
}
