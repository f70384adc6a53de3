//! RFC 3339 instants as the API reads them.
//!
//! jiff reads an offset of up to ±25:59:59, so `2020-01-01T00:00:00+25:00` was accepted where
//! RFC 3339 (`time-numoffset`, hours 00–23) has no such time. Every instant a caller sends
//! (a recovery's `since`, analytics' `from` and `to`, `event.poller.firstRun`'s `since:`,
//! CEQL date literals, the console's filters) is read here, so the rule is the same
//! everywhere.

use jiff::Timestamp;

/// `text` as an instant, if it is RFC 3339 with an offset RFC 3339 allows (`Z`, or `±HH:MM`
/// with hours up to 23 and minutes up to 59); jiff's own error or a sentence otherwise.
pub fn parse_instant(text: &str) -> Result<Timestamp, String> {
    let instant = text.parse::<Timestamp>().map_err(|e| e.to_string())?;
    let bytes = text.trim_end().as_bytes();
    if let [.., sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] = bytes
        && [h1, h2, m1, m2].iter().all(|b| b.is_ascii_digit())
    {
        let hours = (h1 - b'0') * 10 + (h2 - b'0');
        let minutes = (m1 - b'0') * 10 + (m2 - b'0');
        if hours > 23 || minutes > 59 {
            return Err(format!(
                "the offset {}{}{}:{}{} is not one RFC 3339 allows (from -23:59 to +23:59)",
                *sign as char, *h1 as char, *h2 as char, *m1 as char, *m2 as char
            ));
        }
    }
    Ok(instant)
}

#[cfg(test)]
mod tests {
    use super::parse_instant;

    #[test]
    fn offsets_past_a_day_are_refused() {
        for ok in [
            "2026-01-31T09:00:00Z",
            "2026-01-31T09:00:00+23:59",
            "2026-01-31T09:00:00-05:00",
            "2026-01-31T09:00:00.5+01:00",
        ] {
            assert!(parse_instant(ok).is_ok(), "{ok}");
        }
        for refused in [
            "2020-01-01T00:00:00+25:00",
            "2020-01-01T00:00:00-24:00",
            "2020-01-01T00:00:00+00:60",
            "not a time",
        ] {
            assert!(parse_instant(refused).is_err(), "{refused}");
        }
        assert!(
            parse_instant("2020-01-01T00:00:00+25:00")
                .unwrap_err()
                .contains("+25:00")
        );
    }
}
