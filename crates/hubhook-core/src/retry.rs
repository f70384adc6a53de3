//! When to retry a failed webhook delivery.

use std::time::Duration;

/// The delays before each retry of a failed delivery; after the last one, delivery gives up (and
/// the events are queued, as in Cloud Elements).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

impl RetrySchedule {
    /// The Cloud Elements policy: 9 retries, retry `x` after `4^x` seconds (4 s, 16 s, ...,
    /// 262144 s), which adds up to a little under 73 hours.
    pub fn cloud_elements() -> RetrySchedule {
        RetrySchedule(
            (1..=9u32)
                .map(|x| Duration::from_secs(4u64.pow(x)))
                .collect(),
        )
    }

    /// A schedule with the given delays, in order.
    pub fn new(delays: Vec<Duration>) -> RetrySchedule {
        RetrySchedule(delays)
    }

    /// Parses a comma-separated list of delays: `"4s,16s,64s"`, `"4,16,64"` (seconds), `"500ms"`,
    /// `"5m"`, `"1h"`, `"1d"`. An empty text or `none` means no retries at all.
    pub fn parse(text: &str) -> Result<RetrySchedule, String> {
        let text = text.trim();
        if text.is_empty() || text.eq_ignore_ascii_case("none") {
            return Ok(RetrySchedule(Vec::new()));
        }
        text.split(',')
            .map(|item| parse_delay(item.trim()))
            .collect::<Result<Vec<_>, _>>()
            .map(RetrySchedule)
    }

    /// The delay before the next attempt after `failed_attempts` failures (1 = the first delivery
    /// failed). `None` means give up. Zero failures need no wait.
    pub fn delay_after(&self, failed_attempts: u32) -> Option<Duration> {
        match failed_attempts {
            0 => Some(Duration::ZERO),
            n => self.0.get(usize::try_from(n - 1).ok()?).copied(),
        }
    }

    /// How many retries follow the first attempt.
    pub fn max_retries(&self) -> usize {
        self.0.len()
    }

    /// The delays, in order.
    pub fn delays(&self) -> &[Duration] {
        &self.0
    }
}

impl Default for RetrySchedule {
    fn default() -> RetrySchedule {
        RetrySchedule::cloud_elements()
    }
}

/// The longest delay a schedule may hold: a year. Longer is no retry at all in practice, and
/// an instant that far ahead can leave the range of timestamps.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(365 * 86_400);

fn parse_delay(item: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "invalid retry delay `{item}`: expected a whole number with an optional unit ms, s, m, h or d, such as `4s` or `5m`, of at most 365d"
        )
    };
    let digits_end = item
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(item.len());
    let (number, unit) = item.split_at(digits_end);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let millis_per_unit: u64 = match unit.trim() {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    number
        .checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .filter(|delay| *delay <= MAX_RETRY_DELAY)
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|s| Duration::from_secs(*s)).collect()
    }

    fn check(text: &str, expected: Result<Vec<Duration>, &str>) {
        let got = RetrySchedule::parse(text).map(|s| s.0);
        match expected {
            Ok(delays) => assert_eq!(got, Ok(delays), "{text}"),
            Err(needle) => {
                let error = got.expect_err(text);
                assert!(error.contains(needle), "{error} should contain {needle}");
            }
        }
    }

    #[test]
    fn cloud_elements_is_nine_powers_of_four() {
        let schedule = RetrySchedule::default();
        assert_eq!(schedule, RetrySchedule::cloud_elements());
        assert_eq!(schedule.max_retries(), 9);
        assert_eq!(
            schedule.0,
            secs(&[4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144])
        );
        // The documentation's "a little under 73 hours" is the last delay, 4^9 seconds.
        let last = schedule.0[8];
        assert!(last < Duration::from_secs(73 * 3600));
        assert!(last > Duration::from_secs(72 * 3600));
    }

    #[test]
    fn delay_after_counts_failures() {
        let schedule = RetrySchedule::cloud_elements();
        let cases = [
            (0, Some(0)),
            (1, Some(4)),
            (2, Some(16)),
            (9, Some(262144)),
            (10, None),
            (u32::MAX, None),
        ];
        for (failures, expected) in cases {
            assert_eq!(
                schedule.delay_after(failures),
                expected.map(Duration::from_secs),
                "{failures}"
            );
        }
        assert_eq!(RetrySchedule::new(vec![]).delay_after(1), None);
    }

    #[test]
    fn parses_lists_of_delays() {
        check("4s,16s,64s", Ok(secs(&[4, 16, 64])));
        check("4, 16 ,64", Ok(secs(&[4, 16, 64])));
        check("5m,1h,1d", Ok(secs(&[300, 3600, 86400])));
        check("250ms", Ok(vec![Duration::from_millis(250)]));
        check("", Ok(vec![]));
        check("none", Ok(vec![]));
        check("4s,x,64s", Err("`x`"));
        check("4s,,64s", Err("``"));
        check("-4", Err("`-4`"));
        check("4w", Err("`4w`"));
        check("1.5s", Err("`1.5s`"));
        check("99999999999999999999d", Err("`99999999999999999999d`"));
        // A delay past a year could leave the range of timestamps when added to now (it made
        // every failed delivery panic and be retried at each lease's end).
        check("365d", Ok(secs(&[365 * 86_400])));
        check("366d", Err("at most 365d"));
        check("1000000000d", Err("`1000000000d`"));
    }
}
