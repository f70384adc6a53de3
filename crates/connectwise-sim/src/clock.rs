//! The simulator clock: real UTC time plus an offset, or frozen, at second
//! precision because ConnectWise stamps `_info.lastUpdated` in whole seconds.

use std::sync::Mutex;

#[derive(Debug, Default)]
struct ClockState {
    offset_seconds: i64,
    /// When frozen, the sim time at which it stopped.
    frozen_at: Option<i64>,
}

#[derive(Debug, Default)]
pub struct Clock {
    state: Mutex<ClockState>,
}

fn real_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

impl Clock {
    /// Current sim time in Unix seconds.
    pub fn now(&self) -> i64 {
        let s = self.lock();
        s.frozen_at
            .unwrap_or_else(|| real_now().saturating_add(s.offset_seconds))
    }

    pub fn now_string(&self) -> String {
        format_ts(self.now())
    }

    pub fn set_offset(&self, seconds: i64) {
        let mut s = self.lock();
        s.offset_seconds = seconds;
        if s.frozen_at.is_some() {
            s.frozen_at = Some(real_now().saturating_add(seconds));
        }
    }

    pub fn set_frozen(&self, frozen: bool) {
        let mut s = self.lock();
        match (frozen, s.frozen_at) {
            (true, None) => s.frozen_at = Some(real_now().saturating_add(s.offset_seconds)),
            (false, Some(at)) => {
                // Resume from the frozen instant so time never jumps backwards.
                s.offset_seconds = at.saturating_sub(real_now());
                s.frozen_at = None;
            }
            _ => {}
        }
    }

    /// Moves sim time forward (or back) by `seconds`, frozen or not.
    pub fn advance(&self, seconds: i64) {
        let mut s = self.lock();
        s.offset_seconds = s.offset_seconds.saturating_add(seconds);
        if let Some(at) = s.frozen_at.as_mut() {
            *at = at.saturating_add(seconds);
        }
    }

    pub fn reset(&self) {
        *self.lock() = ClockState::default();
    }

    pub fn describe(&self) -> serde_json::Value {
        let s = self.lock();
        let now = s
            .frozen_at
            .unwrap_or_else(|| real_now().saturating_add(s.offset_seconds));
        serde_json::json!({
            "now": format_ts(now),
            "offsetSeconds": s.offset_seconds,
            "frozen": s.frozen_at.is_some(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ClockState> {
        // A poisoned clock still holds valid integers; keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `2026-11-28T18:04:26Z`, the only datetime format ConnectWise emits.
pub fn format_ts(seconds: i64) -> String {
    match jiff::Timestamp::from_second(seconds) {
        Ok(ts) => ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Err(_) => "0001-01-01T00:00:00Z".to_string(),
    }
}

/// Fast path for the canonical stored form; falls back to jiff for anything else.
pub fn parse_stored(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() == 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'Z'
    {
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let mut v = 0i64;
            for &c in &b[r] {
                if !c.is_ascii_digit() {
                    return None;
                }
                v = v * 10 + i64::from(c - b'0');
            }
            Some(v)
        };
        let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
            return None;
        }
        return Some(days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss);
    }
    parse_literal(s).map(|(secs, _)| secs)
}

/// Parses a datetime as clients write it inside `[...]`: with `Z`, with an
/// offset, with fractional seconds, or naive (taken as UTC, see docs), or a
/// bare date. Returns (unix seconds, nanoseconds).
pub fn parse_literal(s: &str) -> Option<(i64, i32)> {
    let s = s.trim();
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return Some((ts.as_second(), ts.subsec_nanosecond()));
    }
    let dt = if let Ok(dt) = s.parse::<jiff::civil::DateTime>() {
        dt
    } else {
        s.parse::<jiff::civil::Date>()
            .ok()?
            .to_datetime(jiff::civil::Time::midnight())
    };
    let ts = dt.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
    Some((ts.as_second(), ts.subsec_nanosecond()))
}

/// Howard Hinnant's days_from_civil: days since 1970-01-01.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_fast_path_matches_jiff() {
        for s in [
            "2026-11-28T18:04:26Z",
            "1970-01-01T00:00:00Z",
            "2000-02-29T23:59:59Z",
            "1999-12-31T00:00:01Z",
        ] {
            let jiff = s.parse::<jiff::Timestamp>().map(|t| t.as_second()).ok();
            assert_eq!(parse_stored(s), jiff, "{s}");
            assert_eq!(format_ts(parse_stored(s).unwrap_or(0)), s);
        }
    }

    #[test]
    fn literal_forms() {
        let base = parse_stored("2020-01-01T00:00:00Z").unwrap();
        assert_eq!(parse_literal("2020-01-01T00:00:00Z"), Some((base, 0)));
        assert_eq!(
            parse_literal("2020-01-01T00:00:00.123456+00:00"),
            Some((base, 123_456_000))
        );
        assert_eq!(parse_literal("2020-01-01T02:00:00+02:00"), Some((base, 0)));
        assert_eq!(
            parse_literal("2020-01-01T00:00:00.5"),
            Some((base, 500_000_000))
        );
        assert_eq!(parse_literal("2020-01-01"), Some((base, 0)));
        assert_eq!(parse_literal("yesterday"), None);
        assert_eq!(parse_literal("2020-13-01T00:00:00Z"), None);
    }

    #[test]
    fn frozen_clock_does_not_move_and_offsets_apply() {
        let c = Clock::default();
        c.set_frozen(true);
        let t = c.now();
        c.advance(60);
        assert_eq!(c.now(), t + 60);
        c.set_offset(-3600);
        assert!(c.now() < t);
    }
}
