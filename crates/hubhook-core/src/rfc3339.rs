//! RFC 3339 instants as the API reads them.
//!
//! jiff reads more than RFC 3339: offsets up to ±25:59:59, offsets without a colon or with
//! seconds (`+2500`, `+25`, `+25:00:00`), time zone annotations (`[UTC]`), a space for the
//! `T`. So `2020-01-01T00:00:00+25:00` was accepted where RFC 3339 has no such time. The text
//! is first checked against RFC 3339's `date-time` (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`,
//! offset hours up to 23), then read by jiff. Every instant a caller sends to hubhook's own
//! API (a recovery's `since`, a replay's and analytics' `from` and `to`,
//! `event.poller.firstRun`'s `since:`, the queue API's `createdDate` and `updatedDate`
//! comparisons, the console's filters) is read here, so the rule is the same everywhere. The
//! crm hub's CEQL is not: it passes ConnectWise's looser forms (`-0500`) on to ConnectWise.

use jiff::Timestamp;

/// `text` as an instant, if it is an RFC 3339 `date-time`; a sentence saying why not, else.
pub fn parse_instant(text: &str) -> Result<Timestamp, String> {
    check_shape(text.as_bytes())?;
    text.parse::<Timestamp>().map_err(|e| e.to_string())
}

/// RFC 3339's `date-time` shape, with the offset's range (jiff checks the date and time's).
fn check_shape(text: &[u8]) -> Result<(), String> {
    const EXPECTED: &str =
        "expected an RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS, optional fraction, then Z or +HH:MM";
    let digits = |range: std::ops::Range<usize>| {
        text.get(range)
            .is_some_and(|part| part.iter().all(u8::is_ascii_digit))
    };
    let at = |i: usize, allowed: &[u8]| text.get(i).is_some_and(|b| allowed.contains(b));
    let date_and_time = digits(0..4)
        && at(4, b"-")
        && digits(5..7)
        && at(7, b"-")
        && digits(8..10)
        && at(10, b"Tt")
        && digits(11..13)
        && at(13, b":")
        && digits(14..16)
        && at(16, b":")
        && digits(17..19);
    if !date_and_time {
        return Err(EXPECTED.to_string());
    }
    let mut rest = &text[19..];
    if let [b'.', fraction @ ..] = rest {
        let length = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
        if length == 0 {
            return Err(EXPECTED.to_string());
        }
        rest = &fraction[length..];
    }
    match rest {
        [b'Z' | b'z'] => Ok(()),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2]
            if [h1, h2, m1, m2].iter().all(|b| b.is_ascii_digit()) =>
        {
            let hours = (h1 - b'0') * 10 + (h2 - b'0');
            let minutes = (m1 - b'0') * 10 + (m2 - b'0');
            if hours > 23 || minutes > 59 {
                Err(format!(
                    "the offset {}{}{}:{}{} is not one RFC 3339 allows (from -23:59 to +23:59)",
                    *sign as char, *h1 as char, *h2 as char, *m1 as char, *m2 as char
                ))
            } else {
                Ok(())
            }
        }
        _ => Err(EXPECTED.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_instant;

    #[test]
    fn only_rfc_3339_date_times_are_read() {
        for ok in [
            "2026-01-31T09:00:00Z",
            "2026-01-31t09:00:00z",
            "2026-01-31T09:00:00+23:59",
            "2026-01-31T09:00:00-05:00",
            "2026-01-31T09:00:00.5+01:00",
            "2026-01-31T09:00:00.123456789Z",
        ] {
            assert!(parse_instant(ok).is_ok(), "{ok}");
        }
        for refused in [
            "2020-01-01T00:00:00+25:00",
            "2020-01-01T00:00:00-24:00",
            "2020-01-01T00:00:00+00:60",
            "2020-01-01T00:00:00+2500",
            "2020-01-01T00:00:00+25",
            "2020-01-01T00:00:00+25:00:00",
            "2020-01-01T00:00:00+01:00[UTC]",
            "2020-01-01 00:00:00Z",
            "2020-01-01T00:00:00.Z",
            "2020-01-01T00:00:00",
            "2020-02-30T00:00:00Z",
            "not a time",
            "",
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
