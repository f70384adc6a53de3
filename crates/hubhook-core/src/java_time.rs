//! Java `SimpleDateFormat` / `DateTimeFormatter` patterns, for formatting and parsing with jiff.
//!
//! Cloud Elements configurations describe dates with Java patterns (`yyyy-MM-dd'T'HH:mm:ss'Z'`),
//! both in poller URL placeholders and in `updatedDateFormat` / `createdDateFormat`. No
//! maintained crate translates them for jiff, and jiff's `strptime` cannot express Java's
//! quoting or `X` offsets (which accept a literal `Z`), so this module interprets the pattern
//! itself. It supports the letters that appear in real configurations:
//!
//! | letters | meaning |
//! |---|---|
//! | `yyyy`, `y`, `yy` | year; `yy` is two digits, parsed as 20xx |
//! | `M`, `MM`, `MMM`, `MMMM` | month number, short name, full name |
//! | `d`, `dd`, `H`, `HH`, `h`, `hh`, `m`, `mm`, `s`, `ss` | day, hour (0-23 / 1-12), minute, second |
//! | `S` .. `SSSSSSSSS` | fraction of a second with that many digits |
//! | `a`, `EEE`, `EEEE` | AM/PM, short and full day name |
//! | `Z` (`+0800`), `ZZZZ` (`GMT+08:00`), `ZZZZZ` (`+08:00`) | offset |
//! | `X` (`+08`), `XX` (`+0800`), `XXX` (`+08:00`) | ISO offset, `Z` for zero |
//! | `z` (`PST`), `zzzz` (IANA id when formatting) | zone name |
//!
//! Quoted text (`'T'`) is literal and `''` is a single quote; other non-letters are literal,
//! except `[`, `]`, `{`, `}` and `#`: Java's `DateTimeFormatter` reads `[...]` as an optional
//! section and reserves the others, so a pattern using them unquoted would not mean in hubhook
//! what it means in Java, and is refused.
//! The special patterns `milliseconds` and `epoch` mean unix milliseconds, `epoch:s`,
//! `epoch:ms` and `epoch:us` unix seconds, milliseconds and microseconds.
//!
//! As in Java, a quoted `'Z'` is only a letter: text parsed with such a pattern carries no zone
//! information and is interpreted in the zone passed in (the configured `*DateTimezone`).

use jiff::civil::DateTime;
use jiff::tz::{Offset, TimeZone};
use jiff::{SignedDuration, Timestamp};

/// Why a pattern, a value or a zone was refused. Every message names the pattern or the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("the date pattern is empty")]
    Empty,
    #[error("the date pattern is {length} characters long, the limit is {MAX_PATTERN_LENGTH}")]
    TooLong { length: usize },
    #[error(
        "unknown letter `{letter}` in date pattern `{pattern}` (quote literal text, as in 'T')"
    )]
    UnknownLetter { pattern: String, letter: char },
    #[error("`{letter}` repeated {count} times is not supported in date pattern `{pattern}`")]
    UnsupportedWidth {
        pattern: String,
        letter: char,
        count: usize,
    },
    #[error("unterminated quote in date pattern `{pattern}`")]
    UnterminatedQuote { pattern: String },
    #[error(
        "`{ch}` is reserved in date pattern `{pattern}` (Java reads `[...]` as an optional section, which hubhook does not support); quote it as '{ch}' to mean the character"
    )]
    Reserved { pattern: String, ch: char },
    #[error("date pattern `{pattern}` cannot read back the dates it writes: {reason}")]
    NoRoundTrip { pattern: String, reason: String },
    #[error("value `{value}` does not match pattern `{pattern}`: {reason}")]
    Mismatch {
        pattern: String,
        value: String,
        reason: String,
    },
    #[error(
        "unknown time zone `{zone}`: expected GMT/UTC, an IANA id such as America/Denver, a US abbreviation such as EST or PST, or an offset such as -08:00"
    )]
    UnknownZone { zone: String },
}

/// The longest date pattern accepted, in characters. Real patterns have about 30; the limit
/// keeps error messages, which quote the pattern, short.
pub const MAX_PATTERN_LENGTH: usize = 200;

/// A compiled Java date pattern. Construct with [`JavaPattern::parse`].
#[derive(Debug, Clone, PartialEq)]
pub struct JavaPattern {
    source: String,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Epoch(EpochUnit),
    Fields(Vec<Token>),
}

/// The unit of a unix-time pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EpochUnit {
    Seconds,
    Milliseconds,
    Microseconds,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Year,
    Month,
    Day,
    Hour24,
    Hour12,
    Minute,
    Second,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(String),
    /// A numeric field written with `width` letters (the minimum number of digits).
    Number {
        field: Field,
        width: usize,
    },
    TwoDigitYear,
    MonthName {
        full: bool,
    },
    Fraction {
        digits: usize,
    },
    AmPm,
    Weekday {
        full: bool,
    },
    /// `Z`: `+0800`.
    OffsetCompact,
    /// `ZZZZ`: `GMT+08:00`.
    OffsetGmt,
    /// `ZZZZZ`: `+08:00`, or `Z` for zero.
    OffsetColon,
    /// `X`, `XX`, `XXX`: ISO offset, `Z` for zero.
    OffsetIso {
        width: usize,
    },
    /// `z` (abbreviation) or `zzzz` (full name).
    ZoneName {
        full: bool,
    },
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

impl JavaPattern {
    /// Compiles `pattern`. Unknown letters are refused rather than copied, because a Java
    /// pattern with an unsupported letter would silently produce a different date.
    pub fn parse(pattern: &str) -> Result<JavaPattern, PatternError> {
        let length = pattern.chars().count();
        if length > MAX_PATTERN_LENGTH {
            return Err(PatternError::TooLong { length });
        }
        let kind = match pattern.trim().to_ascii_lowercase().as_str() {
            "" => return Err(PatternError::Empty),
            "milliseconds" | "epoch" | "epoch:ms" => Kind::Epoch(EpochUnit::Milliseconds),
            "epoch:s" => Kind::Epoch(EpochUnit::Seconds),
            "epoch:us" => Kind::Epoch(EpochUnit::Microseconds),
            _ => Kind::Fields(tokenize(pattern)?),
        };
        Ok(JavaPattern {
            source: pattern.to_owned(),
            kind,
        })
    }

    /// A unix-time pattern in `unit`, named like the equivalent pattern string.
    pub(crate) fn epoch(unit: EpochUnit) -> JavaPattern {
        let source = match unit {
            EpochUnit::Seconds => "epoch:s",
            EpochUnit::Milliseconds => "epoch:ms",
            EpochUnit::Microseconds => "epoch:us",
        };
        JavaPattern {
            source: source.to_owned(),
            kind: Kind::Epoch(unit),
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Formats `ts` as seen in `tz`.
    pub fn format(&self, ts: Timestamp, tz: &TimeZone) -> String {
        let tokens = match &self.kind {
            Kind::Epoch(EpochUnit::Seconds) => return ts.as_second().to_string(),
            Kind::Epoch(EpochUnit::Milliseconds) => return ts.as_millisecond().to_string(),
            Kind::Epoch(EpochUnit::Microseconds) => return ts.as_microsecond().to_string(),
            Kind::Fields(tokens) => tokens,
        };
        let zoned = ts.to_zoned(tz.clone());
        let offset_seconds = zoned.offset().seconds();
        let mut out = String::new();
        for token in tokens {
            match token {
                Token::Literal(text) => out.push_str(text),
                Token::Number { field, width } => {
                    let value = match field {
                        Field::Year => i32::from(zoned.year()),
                        Field::Month => i32::from(zoned.month()),
                        Field::Day => i32::from(zoned.day()),
                        Field::Hour24 => i32::from(zoned.hour()),
                        Field::Hour12 => match i32::from(zoned.hour()) % 12 {
                            0 => 12,
                            h => h,
                        },
                        Field::Minute => i32::from(zoned.minute()),
                        Field::Second => i32::from(zoned.second()),
                    };
                    push_padded(&mut out, value, *width);
                }
                Token::TwoDigitYear => {
                    push_padded(&mut out, i32::from(zoned.year()).rem_euclid(100), 2)
                }
                Token::MonthName { full } => {
                    let name = MONTHS[usize::from(zoned.month().unsigned_abs()) - 1];
                    out.push_str(if *full { name } else { &name[..3] });
                }
                Token::Fraction { digits } => {
                    let nanos = format!("{:09}", zoned.subsec_nanosecond());
                    out.push_str(&nanos[..*digits]);
                }
                Token::AmPm => out.push_str(if zoned.hour() < 12 { "AM" } else { "PM" }),
                Token::Weekday { full } => {
                    let index = usize::from(zoned.weekday().to_monday_zero_offset().unsigned_abs());
                    let name = WEEKDAYS[index];
                    out.push_str(if *full { name } else { &name[..3] });
                }
                Token::OffsetCompact => push_offset(&mut out, offset_seconds, true, ""),
                Token::OffsetGmt => {
                    out.push_str("GMT");
                    if offset_seconds != 0 {
                        push_offset(&mut out, offset_seconds, true, ":");
                    }
                }
                Token::OffsetColon | Token::OffsetIso { .. } if offset_seconds == 0 => {
                    out.push('Z')
                }
                Token::OffsetColon => push_offset(&mut out, offset_seconds, true, ":"),
                Token::OffsetIso { width } => match width {
                    1 => push_offset(&mut out, offset_seconds, offset_seconds % 3600 != 0, ""),
                    2 => push_offset(&mut out, offset_seconds, true, ""),
                    _ => push_offset(&mut out, offset_seconds, true, ":"),
                },
                Token::ZoneName { full } => {
                    let info = tz.to_offset_info(ts);
                    match (full, tz.iana_name()) {
                        (true, Some(name)) => out.push_str(name),
                        _ => out.push_str(info.abbreviation()),
                    }
                }
            }
        }
        out
    }

    /// Parses `text`. Text without zone information is interpreted in `tz`; a wall-clock time
    /// that a DST change skips or repeats resolves like Java (the earlier offset for a repeated
    /// hour, shifted forward for a skipped one).
    pub fn parse_value(&self, text: &str, tz: &TimeZone) -> Result<Timestamp, PatternError> {
        let mismatch = |reason: String| PatternError::Mismatch {
            pattern: self.source.clone(),
            value: text.to_owned(),
            reason,
        };
        let tokens = match &self.kind {
            Kind::Epoch(unit) => {
                let number: i64 = text
                    .trim()
                    .parse()
                    .map_err(|_| mismatch("expected a whole number".to_owned()))?;
                let ts = match unit {
                    EpochUnit::Seconds => Timestamp::from_second(number),
                    EpochUnit::Milliseconds => Timestamp::from_millisecond(number),
                    EpochUnit::Microseconds => Timestamp::from_microsecond(number),
                };
                return ts.map_err(|e| mismatch(e.to_string()));
            }
            Kind::Fields(tokens) => tokens,
        };
        let mut parser = ValueParser {
            text,
            pos: 0,
            fields: Parsed::default(),
        };
        for (i, token) in tokens.iter().enumerate() {
            let next_is_numeric = matches!(
                tokens.get(i + 1),
                Some(Token::Number { .. } | Token::TwoDigitYear | Token::Fraction { .. })
            );
            parser.token(token, next_is_numeric).map_err(&mismatch)?;
        }
        if parser.pos != text.len() {
            return Err(mismatch(format!(
                "unexpected text `{}` at position {}",
                &text[parser.pos..],
                parser.position()
            )));
        }
        parser.fields.resolve(tz).map_err(mismatch)
    }
}

/// Instants every date pattern must be able to write and read back (see
/// [`JavaPattern::check_round_trip`]). Their times of day are 8 hours apart, so in every zone one
/// of them falls in the afternoon (a pattern with `hh` but no `a` fails on it); they lie in
/// different seasons (zone abbreviations change with daylight saving time); and no field has its
/// default value in all of them (a pattern that drops a field fails on one of them).
const ROUND_TRIP_SAMPLES: [Timestamp; 3] = [
    // 2019-01-17T01:05:09.123456789Z
    Timestamp::constant(1_547_687_109, 123_456_789),
    // 2019-07-23T09:45:56.987654321Z
    Timestamp::constant(1_563_875_156, 987_654_321),
    // 2019-11-28T17:31:42.246813579Z
    Timestamp::constant(1_574_962_302, 246_813_579),
];

/// The longest zone abbreviation counted for `z` when bounding the length of a formatted date.
/// tzdb abbreviations have at most 6 characters and jiff writes fixed offsets as at most
/// `+HH:MM:SS`.
const MAX_ABBREVIATION_LENGTH: usize = 16;

/// The finest unit a pattern writes, as a duration: a value it reads back may lie up to this much
/// before the instant that was written.
fn precision(tokens: &[Token]) -> Option<SignedDuration> {
    const DAY: i64 = 86_400;
    tokens
        .iter()
        .filter_map(|token| match token {
            Token::Number { field, .. } => Some(match field {
                Field::Year => SignedDuration::from_secs(366 * DAY),
                Field::Month => SignedDuration::from_secs(31 * DAY),
                Field::Day => SignedDuration::from_secs(DAY),
                Field::Hour24 | Field::Hour12 => SignedDuration::from_hours(1),
                Field::Minute => SignedDuration::from_mins(1),
                Field::Second => SignedDuration::from_secs(1),
            }),
            Token::TwoDigitYear => Some(SignedDuration::from_secs(366 * DAY)),
            Token::MonthName { .. } => Some(SignedDuration::from_secs(31 * DAY)),
            Token::Fraction { digits } => {
                Some(SignedDuration::from_nanos(10i64.pow(9 - *digits as u32)))
            }
            _ => None,
        })
        .min()
}

impl JavaPattern {
    /// Checks that the pattern can read back what it writes, as a date field of a record or a
    /// placeholder must: each of a few sample instants is formatted in `tz` and parsed back, and
    /// the result must be the same instant at the pattern's precision (`yyyy-MM-dd` reads back
    /// the start of the day). Patterns without a year, without AM/PM next to `hh`, or made only
    /// of literal text, offsets or names fail here; they would match no record.
    pub fn check_round_trip(&self, tz: &TimeZone) -> Result<(), PatternError> {
        let fail = |reason: String| PatternError::NoRoundTrip {
            pattern: self.source.clone(),
            reason,
        };
        let unit = match &self.kind {
            Kind::Epoch(EpochUnit::Seconds) => SignedDuration::from_secs(1),
            Kind::Epoch(EpochUnit::Milliseconds) => SignedDuration::from_millis(1),
            Kind::Epoch(EpochUnit::Microseconds) => SignedDuration::from_micros(1),
            Kind::Fields(tokens) => precision(tokens).ok_or_else(|| {
                fail("it has no date or time fields (such as yyyy, MM, dd, HH, mm, ss)".to_owned())
            })?,
        };
        for sample in ROUND_TRIP_SAMPLES {
            let text = self.format(sample, tz);
            let read = self.parse_value(&text, tz).map_err(|error| {
                let why = match error {
                    PatternError::Mismatch { reason, .. } => reason,
                    other => other.to_string(),
                };
                fail(format!(
                    "it writes {sample} as `{text}`, which it cannot read back ({why})"
                ))
            })?;
            let behind = sample.duration_since(read);
            if behind.is_negative() || behind >= unit {
                return Err(fail(format!(
                    "it writes {sample} as `{text}` and reads that back as {read}"
                )));
            }
        }
        Ok(())
    }

    /// The most characters [`JavaPattern::format`] can write in `tz`, for any instant.
    pub fn max_formatted_length(&self, tz: &TimeZone) -> usize {
        let tokens = match &self.kind {
            // An i64 has at most 19 digits and a sign.
            Kind::Epoch(_) => return 20,
            Kind::Fields(tokens) => tokens,
        };
        tokens
            .iter()
            .map(|token| match token {
                Token::Literal(text) => text.chars().count(),
                // Years run from -9999 to 9999: four digits and a sign.
                Token::Number {
                    field: Field::Year,
                    width,
                } => (*width).max(4) + 1,
                Token::Number { width, .. } => (*width).max(2),
                Token::TwoDigitYear | Token::AmPm => 2,
                Token::MonthName { full: true } | Token::Weekday { full: true } => 9,
                Token::MonthName { full: false } | Token::Weekday { full: false } => 3,
                Token::Fraction { digits } => *digits,
                Token::OffsetCompact => 5,
                Token::OffsetGmt => 9,
                Token::OffsetColon | Token::OffsetIso { .. } => 6,
                Token::ZoneName { full: true } => tz
                    .iana_name()
                    .map_or(MAX_ABBREVIATION_LENGTH, |name| name.chars().count()),
                Token::ZoneName { full: false } => MAX_ABBREVIATION_LENGTH,
            })
            .sum()
    }
}

impl std::fmt::Display for JavaPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

fn push_padded(out: &mut String, value: i32, width: usize) {
    if value < 0 {
        out.push('-');
    }
    out.push_str(&format!("{:0width$}", value.unsigned_abs()));
}

fn push_offset(out: &mut String, seconds: i32, with_minutes: bool, separator: &str) {
    out.push(if seconds < 0 { '-' } else { '+' });
    let seconds = seconds.unsigned_abs();
    out.push_str(&format!("{:02}", seconds / 3600));
    if with_minutes {
        out.push_str(separator);
        out.push_str(&format!("{:02}", seconds % 3600 / 60));
    }
}

fn tokenize(pattern: &str) -> Result<Vec<Token>, PatternError> {
    let mut tokens = Vec::new();
    let mut literal = String::new();
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            if chars.get(i + 1) == Some(&'\'') {
                literal.push('\'');
                i += 2;
                continue;
            }
            // A quoted section runs to the next lone quote; `''` inside it is a quote.
            i += 1;
            loop {
                match (chars.get(i), chars.get(i + 1)) {
                    (None, _) => {
                        return Err(PatternError::UnterminatedQuote {
                            pattern: pattern.to_owned(),
                        });
                    }
                    (Some('\''), Some('\'')) => {
                        literal.push('\'');
                        i += 2;
                    }
                    (Some('\''), _) => {
                        i += 1;
                        break;
                    }
                    (Some(other), _) => {
                        literal.push(*other);
                        i += 1;
                    }
                }
            }
            continue;
        }
        if matches!(c, '[' | ']' | '{' | '}' | '#') {
            return Err(PatternError::Reserved {
                pattern: pattern.to_owned(),
                ch: c,
            });
        }
        if !c.is_ascii_alphabetic() {
            literal.push(c);
            i += 1;
            continue;
        }
        let start = i;
        while chars.get(i) == Some(&c) {
            i += 1;
        }
        let count = i - start;
        if !literal.is_empty() {
            tokens.push(Token::Literal(std::mem::take(&mut literal)));
        }
        tokens.push(letter_token(pattern, c, count)?);
    }
    if !literal.is_empty() {
        tokens.push(Token::Literal(literal));
    }
    Ok(tokens)
}

fn letter_token(pattern: &str, letter: char, count: usize) -> Result<Token, PatternError> {
    let number = |field| Token::Number {
        field,
        width: count,
    };
    let token = match (letter, count) {
        ('y', 2) => Token::TwoDigitYear,
        ('y', 1..=9) => number(Field::Year),
        ('M', 1..=2) => number(Field::Month),
        ('M', 3) => Token::MonthName { full: false },
        ('M', 4) => Token::MonthName { full: true },
        ('d', 1..=2) => number(Field::Day),
        ('H', 1..=2) => number(Field::Hour24),
        ('h', 1..=2) => number(Field::Hour12),
        ('m', 1..=2) => number(Field::Minute),
        ('s', 1..=2) => number(Field::Second),
        ('S', 1..=9) => Token::Fraction { digits: count },
        ('a', 1) => Token::AmPm,
        ('E', 1..=3) => Token::Weekday { full: false },
        ('E', 4) => Token::Weekday { full: true },
        ('Z', 1..=3) => Token::OffsetCompact,
        ('Z', 4) => Token::OffsetGmt,
        ('Z', 5) => Token::OffsetColon,
        ('X', 1..=3) => Token::OffsetIso { width: count },
        ('z', 1..=3) => Token::ZoneName { full: false },
        ('z', 4) => Token::ZoneName { full: true },
        ('y' | 'M' | 'd' | 'H' | 'h' | 'm' | 's' | 'S' | 'a' | 'E' | 'Z' | 'X' | 'z', _) => {
            return Err(PatternError::UnsupportedWidth {
                pattern: pattern.to_owned(),
                letter,
                count,
            });
        }
        _ => {
            return Err(PatternError::UnknownLetter {
                pattern: pattern.to_owned(),
                letter,
            });
        }
    };
    Ok(token)
}

/// The fields read from a value, before they are combined into an instant.
#[derive(Default)]
struct Parsed {
    year: Option<i64>,
    month: Option<i64>,
    day: Option<i64>,
    hour24: Option<i64>,
    hour12: Option<i64>,
    pm: Option<bool>,
    minute: Option<i64>,
    second: Option<i64>,
    nanos: i64,
    offset: Option<Offset>,
    zone: Option<TimeZone>,
}

impl Parsed {
    fn resolve(self, tz: &TimeZone) -> Result<Timestamp, String> {
        let hour = match (self.hour24, self.hour12) {
            (Some(h), _) => h,
            (None, Some(h)) => h % 12 + if self.pm == Some(true) { 12 } else { 0 },
            (None, None) => 0,
        };
        let small = |value: i64, what: &str| {
            i8::try_from(value).map_err(|_| format!("{what} {value} is out of range"))
        };
        let year = i16::try_from(self.year.unwrap_or(1970))
            .map_err(|_| "the year is out of range".to_owned())?;
        let datetime = DateTime::new(
            year,
            small(self.month.unwrap_or(1), "month")?,
            small(self.day.unwrap_or(1), "day")?,
            small(hour, "hour")?,
            small(self.minute.unwrap_or(0), "minute")?,
            small(self.second.unwrap_or(0), "second")?,
            i32::try_from(self.nanos).map_err(|_| "the fraction is out of range".to_owned())?,
        )
        .map_err(|e| e.to_string())?;
        let result = match (self.offset, self.zone) {
            (Some(offset), _) => offset.to_timestamp(datetime),
            (None, Some(zone)) => zone.to_ambiguous_timestamp(datetime).compatible(),
            (None, None) => tz.to_ambiguous_timestamp(datetime).compatible(),
        };
        result.map_err(|e| e.to_string())
    }
}

struct ValueParser<'t> {
    text: &'t str,
    pos: usize,
    fields: Parsed,
}

impl ValueParser<'_> {
    /// The 1-based character position of the cursor, for messages.
    fn position(&self) -> usize {
        self.text[..self.pos].chars().count() + 1
    }

    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    fn digits(&mut self, min: usize, max: usize, what: &str) -> Result<(i64, usize), String> {
        let available = self
            .rest()
            .bytes()
            .take(max)
            .take_while(u8::is_ascii_digit)
            .count();
        if available < min {
            let count = if min == max {
                format!("{min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(format!(
                "expected {count} digits for {what} at position {}",
                self.position()
            ));
        }
        let digits = &self.rest()[..available];
        let value = digits
            .parse::<i64>()
            .map_err(|_| format!("{what} `{digits}` is out of range"))?;
        self.pos += available;
        Ok((value, available))
    }

    fn name(&mut self, names: &[&str], what: &str) -> Result<usize, String> {
        // Full names are tried first so that "March" is not read as "Mar" followed by "ch".
        let candidates = names
            .iter()
            .enumerate()
            .map(|(i, n)| (i, *n))
            .chain(names.iter().enumerate().map(|(i, n)| (i, &n[..3])));
        for (index, name) in candidates {
            let matches = self
                .rest()
                .get(..name.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(name));
            if matches {
                self.pos += name.len();
                return Ok(index);
            }
        }
        Err(format!("expected {what} at position {}", self.position()))
    }

    fn token(&mut self, token: &Token, next_is_numeric: bool) -> Result<(), String> {
        match token {
            Token::Literal(literal) => {
                if !self.rest().starts_with(literal.as_str()) {
                    return Err(format!(
                        "expected `{literal}` at position {}",
                        self.position()
                    ));
                }
                self.pos += literal.len();
            }
            Token::Number { field, width } => {
                let what = match field {
                    Field::Year => "the year",
                    Field::Month => "the month",
                    Field::Day => "the day",
                    Field::Hour24 | Field::Hour12 => "the hour",
                    Field::Minute => "the minutes",
                    Field::Second => "the seconds",
                };
                // Numbers directly followed by another number (yyyyMMdd) must have exactly
                // their pattern width; otherwise any count is accepted, as Java does.
                let (min, max) = match (next_is_numeric, field) {
                    (true, _) => (*width, *width),
                    (false, Field::Year) => (1, (*width).max(4)),
                    (false, _) => (1, (*width).max(2)),
                };
                let (value, _) = self.digits(min, max, what)?;
                let slot = match field {
                    Field::Year => &mut self.fields.year,
                    Field::Month => &mut self.fields.month,
                    Field::Day => &mut self.fields.day,
                    Field::Hour24 => &mut self.fields.hour24,
                    Field::Hour12 => &mut self.fields.hour12,
                    Field::Minute => &mut self.fields.minute,
                    Field::Second => &mut self.fields.second,
                };
                *slot = Some(value);
            }
            Token::TwoDigitYear => {
                let max = if next_is_numeric { 2 } else { 4 };
                let (value, count) = self.digits(2, max, "the year")?;
                // Two digits mean this century; hubhook has no clock here to pick a pivot the
                // way Java does (80 years back), and 20xx is right for every real poll time.
                self.fields.year = Some(if count == 2 { 2000 + value } else { value });
            }
            Token::MonthName { .. } => {
                self.fields.month = Some(self.name(&MONTHS, "a month name")? as i64 + 1);
            }
            Token::Weekday { .. } => {
                // The day name is redundant with the date, so it is checked but not used.
                self.name(&WEEKDAYS, "a day name")?;
            }
            Token::Fraction { digits } => {
                let (min, max) = if next_is_numeric {
                    (*digits, *digits)
                } else {
                    (1, 9)
                };
                let (value, count) = self.digits(min, max, "the fraction of a second")?;
                self.fields.nanos = value * 10i64.pow(9 - count as u32);
            }
            Token::AmPm => {
                let marker = self.rest().get(..2).map(str::to_ascii_uppercase);
                match marker.as_deref() {
                    Some("AM") => self.fields.pm = Some(false),
                    Some("PM") => self.fields.pm = Some(true),
                    _ => return Err(format!("expected AM or PM at position {}", self.position())),
                }
                self.pos += 2;
            }
            Token::OffsetCompact
            | Token::OffsetGmt
            | Token::OffsetColon
            | Token::OffsetIso { .. } => {
                let offset = self.offset()?;
                self.fields.offset = Some(offset);
            }
            Token::ZoneName { .. } => {
                let length = self
                    .rest()
                    .find(|c: char| !(c.is_ascii_alphanumeric() || "/_+-:".contains(c)))
                    .unwrap_or(self.rest().len());
                let name = &self.rest()[..length];
                let zone = parse_zone(name).map_err(|_| {
                    format!("unknown time zone `{name}` at position {}", self.position())
                })?;
                self.pos += length;
                self.fields.zone = Some(zone);
            }
        }
        Ok(())
    }

    /// Reads `Z`, `+HH`, `+HHMM`, `+HH:MM` or any of them after `GMT`/`UTC`.
    fn offset(&mut self) -> Result<Offset, String> {
        let position = self.position();
        let rest = self.rest();
        let (consumed, offset) = match rest.as_bytes().first() {
            Some(b'Z') => (1, Some(Offset::UTC)),
            _ => {
                let (prefix, after) = strip_gmt_prefix(rest);
                match scan_offset(after) {
                    Some((length, offset)) => (prefix + length, Some(offset)),
                    // A bare `GMT` or `UTC` is an offset of zero.
                    None if prefix > 0 => (prefix, Some(Offset::UTC)),
                    None => (0, None),
                }
            }
        };
        match offset {
            Some(offset) => {
                self.pos += consumed;
                Ok(offset)
            }
            None => Err(format!(
                "expected an offset such as Z, +05:30 or -0800 at position {position}"
            )),
        }
    }
}

fn strip_gmt_prefix(text: &str) -> (usize, &str) {
    for prefix in ["GMT", "UTC"] {
        if text
            .get(..3)
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
        {
            return (3, &text[3..]);
        }
    }
    (0, text)
}

/// Scans `+H`, `+HH`, `+HHMM`, `+HH:MM` (or `-`) at the start of `text`, returning how many
/// bytes it used and the offset.
fn scan_offset(text: &str) -> Option<(usize, Offset)> {
    let bytes = text.as_bytes();
    let sign: i32 = match bytes.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digit = |i: usize| {
        bytes
            .get(i)
            .filter(|b| b.is_ascii_digit())
            .map(|b| i32::from(b - b'0'))
    };
    let (hours, mut end) = match (digit(1), digit(2)) {
        (Some(h1), Some(h2)) => (h1 * 10 + h2, 3),
        (Some(h), None) => (h, 2),
        _ => return None,
    };
    let colon = bytes.get(end) == Some(&b':');
    let minutes_at = if colon { end + 1 } else { end };
    let minutes = match (digit(minutes_at), digit(minutes_at + 1)) {
        (Some(m1), Some(m2)) => {
            end = minutes_at + 2;
            m1 * 10 + m2
        }
        _ if colon => return None,
        _ => 0,
    };
    if hours > 18 || minutes > 59 {
        return None;
    }
    let offset = Offset::from_seconds(sign * (hours * 3600 + minutes * 60)).ok()?;
    Some((end, offset))
}

/// Resolves a zone name as Cloud Elements configurations write it.
///
/// `GMT`, `UTC` and `Z` are UTC. The US abbreviations (`EST`, `EDT`, `CST`, `CDT`, `MST`, `MDT`,
/// `PST`, `PDT`, `AKST`, `AKDT`, `HST`) mean the US zones with their daylight saving rules
/// (`America/New_York` and so on), which is what a user writing `EST` for a US-hosted API
/// means; use an offset such as `-05:00` for a fixed offset. Offsets may be written `+05:30`,
/// `-8:00`, `-0800` or `GMT-08:00`. Anything else is looked up as an IANA id in jiff's bundled
/// database.
pub fn parse_zone(name: &str) -> Result<TimeZone, PatternError> {
    let unknown = || PatternError::UnknownZone {
        zone: name.to_owned(),
    };
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(unknown());
    }
    let iana = match trimmed.to_ascii_uppercase().as_str() {
        "GMT" | "UTC" | "Z" | "UT" => return Ok(TimeZone::UTC),
        "EST" | "EDT" => "America/New_York",
        "CST" | "CDT" => "America/Chicago",
        "MST" | "MDT" => "America/Denver",
        "PST" | "PDT" => "America/Los_Angeles",
        "AKST" | "AKDT" => "America/Anchorage",
        "HST" => "Pacific/Honolulu",
        _ => {
            let (_, after) = strip_gmt_prefix(trimmed);
            if let Some((length, offset)) = scan_offset(after)
                && length == after.len()
            {
                return Ok(TimeZone::fixed(offset));
            }
            trimmed
        }
    };
    TimeZone::get(iana).map_err(|_| unknown())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        text.parse().expect("valid timestamp")
    }

    fn zone(name: &str) -> TimeZone {
        parse_zone(name).expect("valid zone")
    }

    /// Formats `instant` in `tz` with `pattern`, checks the text, then parses it back.
    fn check(pattern: &str, instant: &str, tz: &str, expected: &str) {
        let java = JavaPattern::parse(pattern).expect("valid pattern");
        assert_eq!(java.as_str(), pattern);
        let tz = zone(tz);
        assert_eq!(java.format(ts(instant), &tz), expected, "format {pattern}");
        assert_eq!(
            java.parse_value(expected, &tz),
            Ok(ts(instant)),
            "parse {pattern}"
        );
    }

    fn check_parse(pattern: &str, text: &str, tz: &str, expected: Result<&str, &str>) {
        let java = JavaPattern::parse(pattern).expect("valid pattern");
        let got = java.parse_value(text, &zone(tz));
        match expected {
            Ok(instant) => assert_eq!(got, Ok(ts(instant)), "{pattern} {text}"),
            Err(needle) => {
                let message = got.expect_err(text).to_string();
                assert!(
                    message.contains(needle),
                    "{message:?} should contain {needle:?}"
                );
            }
        }
    }

    fn check_pattern_error(pattern: &str, expected: PatternError) {
        assert_eq!(JavaPattern::parse(pattern), Err(expected));
    }

    #[test]
    fn round_trips_common_patterns() {
        let t = "2019-03-01T10:15:00Z";
        check("yyyy-MM-dd'T'HH:mm:ss'Z'", t, "GMT", "2019-03-01T10:15:00Z");
        check(
            "yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
            "2019-03-01T10:15:00.123Z",
            "UTC",
            "2019-03-01T10:15:00.123Z",
        );
        check(
            "yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
            "2019-03-01T10:15:00.123Z",
            "+05:30",
            "2019-03-01T15:45:00.123+05:30",
        );
        check(
            "yyyy-MM-dd'T'HH:mm:ssZ",
            t,
            "EST",
            "2019-03-01T05:15:00-0500",
        );
        check(
            "yyyy-MM-dd'T'HH:mm:ssX",
            t,
            "-08:00",
            "2019-03-01T02:15:00-08",
        );
        check(
            "yyyy-MM-dd'T'HH:mm:ssXX",
            t,
            "-08:00",
            "2019-03-01T02:15:00-0800",
        );
        check(
            "yyyy-MM-dd HH:mm:ss ZZZZ",
            t,
            "-08:00",
            "2019-03-01 02:15:00 GMT-08:00",
        );
        check(
            "yyyy-MM-dd HH:mm:ss ZZZZZ",
            t,
            "UTC",
            "2019-03-01 10:15:00 Z",
        );
        check("yyyyMMddHHmmss", t, "UTC", "20190301101500");
        check(
            "yyyyMMddHHmmssSSS",
            "2019-03-01T10:15:00.007Z",
            "UTC",
            "20190301101500007",
        );
        check(
            "MM/dd/yyyy hh:mm:ss a",
            "2019-03-01T22:05:09Z",
            "UTC",
            "03/01/2019 10:05:09 PM",
        );
        check(
            "M/d/yy h:m:s a",
            "2019-03-01T00:05:09Z",
            "UTC",
            "3/1/19 12:5:9 AM",
        );
        check(
            "EEE, dd MMM yyyy HH:mm:ss z",
            t,
            "PST",
            "Fri, 01 Mar 2019 02:15:00 PST",
        );
        check(
            "EEEE d MMMM yyyy",
            "2019-09-15T00:00:00Z",
            "UTC",
            "Sunday 15 September 2019",
        );
        check(
            "yyyy-MM-dd'T'HH:mm:ss.SSSSSSSSS'Z'",
            "2019-03-01T10:15:00.123456789Z",
            "UTC",
            "2019-03-01T10:15:00.123456789Z",
        );
        check(
            "''yyyy'' 'o''clock' HH",
            "2019-01-01T10:00:00Z",
            "UTC",
            "'2019' o'clock 10",
        );
        check(
            "milliseconds",
            "2017-09-27T20:35:12.258Z",
            "UTC",
            "1506544512258",
        );
        check("epoch", "2017-09-27T20:35:12.258Z", "UTC", "1506544512258");
        check("epoch:s", "2017-09-27T20:35:12Z", "UTC", "1506544512");
        check(
            "epoch:us",
            "2017-09-27T20:35:12.258001Z",
            "UTC",
            "1506544512258001",
        );
    }

    #[test]
    fn formats_across_daylight_saving_time() {
        // New York switches to EDT on 2024-03-10 at 02:00 local (07:00 UTC).
        let p = "yyyy-MM-dd HH:mm XXX z";
        check(
            p,
            "2024-03-10T06:30:00Z",
            "America/New_York",
            "2024-03-10 01:30 -05:00 EST",
        );
        check(
            p,
            "2024-03-10T07:30:00Z",
            "America/New_York",
            "2024-03-10 03:30 -04:00 EDT",
        );
        check(
            p,
            "2024-07-01T12:00:00Z",
            "EST",
            "2024-07-01 08:00 -04:00 EDT",
        );
        check(
            "yyyy-MM-dd HH:mm zzzz",
            "2024-07-01T12:00:00Z",
            "America/Denver",
            "2024-07-01 06:00 America/Denver",
        );
    }

    #[test]
    fn parses_in_the_configured_zone_unless_the_value_has_one() {
        let p = "yyyy-MM-dd'T'HH:mm:ss";
        check_parse(p, "2024-07-01T08:00:00", "EST", Ok("2024-07-01T12:00:00Z"));
        check_parse(p, "2024-01-01T08:00:00", "EST", Ok("2024-01-01T13:00:00Z"));
        check_parse(
            p,
            "2024-01-01T08:00:00",
            "Asia/Kolkata",
            Ok("2024-01-01T02:30:00Z"),
        );
        // A quoted 'Z' is only a letter, so the configured zone still applies, as in Java.
        check_parse(
            "yyyy-MM-dd'T'HH:mm:ss'Z'",
            "2024-01-01T08:00:00Z",
            "PST",
            Ok("2024-01-01T16:00:00Z"),
        );
        // An X pattern reads the zone from the text, including a literal Z.
        let x = "yyyy-MM-dd'T'HH:mm:ssXXX";
        check_parse(x, "2024-01-01T08:00:00Z", "PST", Ok("2024-01-01T08:00:00Z"));
        check_parse(
            x,
            "2024-01-01T08:00:00+02:00",
            "PST",
            Ok("2024-01-01T06:00:00Z"),
        );
        check_parse(
            "yyyy-MM-dd'T'HH:mm:ssZ",
            "2024-01-01T08:00:00-0800",
            "UTC",
            Ok("2024-01-01T16:00:00Z"),
        );
        check_parse(
            "yyyy-MM-dd HH:mm z",
            "2024-07-01 08:00 PDT",
            "UTC",
            Ok("2024-07-01T15:00:00Z"),
        );
        check_parse(
            "yyyy-MM-dd HH:mm z",
            "2024-07-01 08:00 GMT+02:00",
            "UTC",
            Ok("2024-07-01T06:00:00Z"),
        );
        // The hour repeated when DST ends takes the earlier (daylight) offset; the skipped hour
        // moves forward.
        check_parse(
            p,
            "2024-11-03T01:30:00",
            "America/New_York",
            Ok("2024-11-03T05:30:00Z"),
        );
        check_parse(
            p,
            "2024-03-10T02:30:00",
            "America/New_York",
            Ok("2024-03-10T07:30:00Z"),
        );
    }

    #[test]
    fn parses_leniently_where_java_does() {
        check_parse(
            "yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
            "2019-03-01T10:15:00.5Z",
            "UTC",
            Ok("2019-03-01T10:15:00.5Z"),
        );
        check_parse("M/d/yyyy", "3/1/2019", "UTC", Ok("2019-03-01T00:00:00Z"));
        check_parse("MM/dd/yyyy", "3/1/2019", "UTC", Ok("2019-03-01T00:00:00Z"));
        check_parse(
            "dd MMM yyyy",
            "01 march 2019",
            "UTC",
            Ok("2019-03-01T00:00:00Z"),
        );
        check_parse("HH:mm", "10:15", "UTC", Ok("1970-01-01T10:15:00Z"));
        check_parse(
            "epoch",
            " 1506544512258 ",
            "UTC",
            Ok("2017-09-27T20:35:12.258Z"),
        );
    }

    #[test]
    fn rejects_values_that_do_not_match() {
        let p = "yyyy-MM-dd'T'HH:mm:ss'Z'";
        check_parse(
            p,
            "x",
            "UTC",
            Err("value `x` does not match pattern `yyyy-MM-dd'T'HH:mm:ss'Z'`"),
        );
        check_parse(
            p,
            "2019-03-01 10:15:00Z",
            "UTC",
            Err("expected `T` at position 11"),
        );
        check_parse(
            p,
            "2019-03-01T10:15:00",
            "UTC",
            Err("expected `Z` at position 20"),
        );
        check_parse(
            p,
            "2019-03-01T10:15:00Z trailing",
            "UTC",
            Err("unexpected text ` trailing`"),
        );
        check_parse(p, "2019-13-01T10:15:00Z", "UTC", Err("month"));
        check_parse(p, "2019-02-30T10:15:00Z", "UTC", Err("day"));
        check_parse(p, "2019-02-01T24:15:00Z", "UTC", Err("hour"));
        check_parse(
            "yyyyMMdd",
            "201903",
            "UTC",
            Err("digits for the day at position 7"),
        );
        check_parse("yyyyMMdd", "2019031", "UTC", Ok("2019-03-01T00:00:00Z"));
        check_parse(
            "yyyy-MM-dd'T'HH:mm:ssXXX",
            "2019-03-01T10:15:00",
            "UTC",
            Err("expected an offset"),
        );
        check_parse(
            "yyyy-MM-dd'T'HH:mm:ssXXX",
            "2019-03-01T10:15:00+25:00",
            "UTC",
            Err("expected an offset"),
        );
        check_parse("hh a", "10 XM", "UTC", Err("expected AM or PM"));
        check_parse("dd MMM", "01 Foo", "UTC", Err("expected a month name"));
        check_parse(
            "HH z",
            "10 Mars/Olympus",
            "UTC",
            Err("unknown time zone `Mars/Olympus`"),
        );
        check_parse("epoch", "12.5", "UTC", Err("whole number"));
        check_parse(
            "epoch:s",
            "99999999999999",
            "UTC",
            Err("does not match pattern `epoch:s`"),
        );
    }

    #[test]
    fn rejects_bad_patterns() {
        check_pattern_error("", PatternError::Empty);
        check_pattern_error(
            "yyyy-MM-ddTHH:mm",
            PatternError::UnknownLetter {
                pattern: "yyyy-MM-ddTHH:mm".into(),
                letter: 'T',
            },
        );
        check_pattern_error(
            "YYYY",
            PatternError::UnknownLetter {
                pattern: "YYYY".into(),
                letter: 'Y',
            },
        );
        check_pattern_error(
            "yyyy-MM-dd'T",
            PatternError::UnterminatedQuote {
                pattern: "yyyy-MM-dd'T".into(),
            },
        );
        check_pattern_error(
            "HHH",
            PatternError::UnsupportedWidth {
                pattern: "HHH".into(),
                letter: 'H',
                count: 3,
            },
        );
        check_pattern_error(
            "ss.SSSSSSSSSS",
            PatternError::UnsupportedWidth {
                pattern: "ss.SSSSSSSSSS".into(),
                letter: 'S',
                count: 10,
            },
        );
        check_pattern_error(&"y".repeat(201), PatternError::TooLong { length: 201 });
        assert!(JavaPattern::parse(&format!("yyyy{}", "-".repeat(196))).is_ok());
        check_pattern_error(
            "XXXX",
            PatternError::UnsupportedWidth {
                pattern: "XXXX".into(),
                letter: 'X',
                count: 4,
            },
        );
        let message = JavaPattern::parse("yyyy-QQ").expect_err("Q").to_string();
        assert!(
            message.contains("`Q`") && message.contains("`yyyy-QQ`"),
            "{message}"
        );
    }

    #[test]
    fn megabyte_inputs_are_read_in_one_pass() {
        let pattern = JavaPattern::parse("yyyy-MM-dd'T'HH:mm:ss'Z'").expect("valid");
        let value = format!("2019-03-01T10:15:00Z{}", "x".repeat(1 << 20));
        let error = pattern
            .parse_value(&value, &TimeZone::UTC)
            .expect_err("trailing text");
        assert!(error.to_string().contains("unexpected text"));
        let digits = "9".repeat(1 << 20);
        assert!(pattern.parse_value(&digits, &TimeZone::UTC).is_err());
        assert_eq!(
            JavaPattern::parse(&"y".repeat(1 << 20)),
            Err(PatternError::TooLong { length: 1 << 20 })
        );
        assert!(parse_zone(&"+".repeat(1 << 20)).is_err());
    }

    #[test]
    fn refuses_reserved_characters_unless_quoted() {
        for (pattern, ch) in [
            ("[yyyy]", '['),
            ("yyyy]", ']'),
            ("{{", '{'),
            ("}", '}'),
            ("#", '#'),
        ] {
            check_pattern_error(
                pattern,
                PatternError::Reserved {
                    pattern: pattern.into(),
                    ch,
                },
            );
        }
        check("'['yyyy']'", "2019-01-01T00:00:00Z", "UTC", "[2019]");
    }

    /// Checks that `pattern` fails the round trip in `tz` with a reason containing `needle`.
    fn check_no_round_trip(pattern: &str, tz: &str, needle: &str) {
        let java = JavaPattern::parse(pattern).expect("valid pattern");
        match java.check_round_trip(&zone(tz)) {
            Err(PatternError::NoRoundTrip { pattern: p, reason }) => {
                assert_eq!(p, pattern);
                assert!(
                    reason.contains(needle),
                    "{pattern}: {reason:?} lacks {needle:?}"
                );
            }
            other => panic!("{pattern} in {tz}: expected NoRoundTrip, got {other:?}"),
        }
    }

    #[test]
    fn round_trip_check_refuses_patterns_that_match_no_record() {
        // The patterns a hostile-but-fair probe got accepted, each of which then failed on every
        // record.
        check_no_round_trip("ZZZZZ", "UTC", "no date or time fields");
        check_no_round_trip("EEEE MMMM", "UTC", "reads that back as 1970-01-01");
        check_no_round_trip("%s", "UTC", "as `%9`");
        // Missing year, missing AM/PM, missing hour.
        check_no_round_trip("MM-dd HH:mm", "UTC", "1970");
        check_no_round_trip("yyyy-MM-dd hh:mm", "UTC", "as `2019-11-28 05:31`");
        check_no_round_trip("yyyy-MM-dd hh:mm", "Pacific/Kiritimati", "");
        check_no_round_trip("yyyy-MM-dd mm:ss", "UTC", "");
        // A zone abbreviation hubhook reads as another zone (IST is not a US abbreviation).
        check_no_round_trip("yyyy-MM-dd HH:mm z", "Asia/Kolkata", "cannot read back");
    }

    #[test]
    fn round_trip_check_accepts_usable_patterns() {
        let cases = [
            ("yyyy-MM-dd'T'HH:mm:ss'Z'", "UTC"),
            ("yyyy-MM-dd'T'HH:mm:ss.SSSXXX", "America/New_York"),
            ("yyyy-MM-dd'T'HH:mm:ss", "Asia/Kolkata"),
            ("MM/dd/yyyy hh:mm:ss a", "-08:00"),
            ("EEE, dd MMM yyyy HH:mm:ss z", "PST"),
            ("yyyy-MM-dd HH:mm zzzz", "Europe/Paris"),
            ("yyyyMMdd", "UTC"),
            ("yyyy-MM", "+05:30"),
            ("yyyy", "EST"),
            ("yyyy XXX", "EST"),
            ("yy-MM-dd HH", "+05:30"),
            ("epoch", "UTC"),
            ("epoch:s", "UTC"),
            ("epoch:us", "UTC"),
        ];
        for (pattern, tz) in cases {
            let java = JavaPattern::parse(pattern).expect("valid pattern");
            assert_eq!(
                java.check_round_trip(&zone(tz)),
                Ok(()),
                "{pattern} in {tz}"
            );
        }
    }

    #[test]
    fn resolves_zones() {
        let offset = |name: &str| {
            let tz = zone(name);
            tz.to_offset(ts("2024-01-15T00:00:00Z")).seconds()
        };
        let cases = [
            ("GMT", 0),
            ("utc", 0),
            ("Z", 0),
            ("EST", -5 * 3600),
            ("EDT", -5 * 3600),
            ("CST", -6 * 3600),
            ("MST", -7 * 3600),
            ("PST", -8 * 3600),
            ("America/Denver", -7 * 3600),
            ("Asia/Kolkata", 19800),
            ("+05:30", 19800),
            ("-8:00", -8 * 3600),
            ("-0800", -8 * 3600),
            ("GMT-08:00", -8 * 3600),
            ("UTC+2", 2 * 3600),
        ];
        for (name, seconds) in cases {
            assert_eq!(offset(name), seconds, "{name}");
        }
        // The US abbreviations follow daylight saving time.
        assert_eq!(
            zone("PST").to_offset(ts("2024-07-01T00:00:00Z")).seconds(),
            -7 * 3600
        );
        assert_eq!(zone("EST").iana_name(), Some("America/New_York"));
        for bad in ["", "Mars/Olympus", "+25:00", "GMT+", "-08:0"] {
            assert_eq!(
                parse_zone(bad),
                Err(PatternError::UnknownZone { zone: bad.into() }),
                "{bad}"
            );
        }
    }
}

#[cfg(test)]
mod properties {
    //! Generated inputs: no pattern, value or zone makes the parser panic; formatting stays
    //! within its bound; and complete patterns read back what they write.

    use proptest::prelude::*;

    use super::*;

    const ZONES: [&str; 8] = [
        "UTC",
        "+05:30",
        "-08:00",
        "+14:00",
        "America/New_York",
        "Europe/Paris",
        "Australia/Lord_Howe",
        "Asia/Kolkata",
    ];

    fn zone() -> impl Strategy<Value = TimeZone> {
        prop::sample::select(&ZONES[..]).prop_map(|name| parse_zone(name).expect("valid zone"))
    }

    /// Any instant jiff can represent.
    fn instant() -> impl Strategy<Value = Timestamp> {
        (
            Timestamp::MIN.as_second()..=Timestamp::MAX.as_second(),
            0..1_000_000_000i32,
        )
            .prop_map(|(s, n)| Timestamp::new(s, n).unwrap_or(Timestamp::MAX))
    }

    /// Pattern text built from the letters and punctuation patterns use.
    fn pattern_soup() -> impl Strategy<Value = String> {
        "[yMdHhmsSaEZXzGQ'T:. /\\-\\[\\]{}#%]{0,24}"
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_patterns_values_and_zones_never_panic(
            pattern in prop_oneof![any::<String>(), pattern_soup()],
            value in prop_oneof![any::<String>(), "[0-9A-Za-z:+\\- ./']{0,30}"],
            zone_name in any::<String>(),
            ts in instant(),
            tz in zone(),
        ) {
            let _ = parse_zone(&zone_name);
            if let Ok(java) = JavaPattern::parse(&pattern) {
                let text = java.format(ts, &tz);
                prop_assert!(
                    text.chars().count() <= java.max_formatted_length(&tz),
                    "{} wrote {} for {}", pattern, text, ts
                );
                let _ = java.parse_value(&value, &tz);
                let _ = java.parse_value(&text, &tz);
                let _ = java.check_round_trip(&tz);
            }
        }

        #[test]
        fn complete_patterns_read_back_what_they_write(
            pattern in prop::sample::select(&[
                "yyyy-MM-dd'T'HH:mm:ss.SSSSSSSSSXXX",
                "yyyyMMddHHmmssSSSSSSSSS Z",
                "EEEE, d MMMM yyyy hh:mm:ss.SSSSSSSSS a ZZZZ",
                "dd MMM yyyy HH:mm:ss.SSSSSSSSS zzzz",
                "epoch:us",
            ][..]),
            // Years 1970 to 9999. Before that some zones used local mean time, offsets with
            // seconds (Paris was +00:09:21), which offset patterns write to the minute only, as
            // Java's do.
            seconds in 0i64..253_402_300_799,
            micros in 0..1_000_000i32,
            tz in zone(),
        ) {
            let ts = Timestamp::new(seconds, micros * 1000).expect("in range");
            let java = JavaPattern::parse(pattern).expect("valid pattern");
            let text = java.format(ts, &tz);
            prop_assert_eq!(java.parse_value(&text, &tz), Ok(ts), "{} wrote {}", pattern, text);
        }

        #[test]
        fn zone_less_patterns_read_back_in_fixed_zones(
            seconds in -30_610_224_000i64..253_402_300_799,
            nanos in 0..1_000_000_000i32,
            tz in prop::sample::select(&["UTC", "+05:30", "-08:00", "+14:00"][..]),
        ) {
            let ts = Timestamp::new(seconds, nanos).expect("in range");
            let tz = parse_zone(tz).expect("valid zone");
            let java = JavaPattern::parse("yyyy-MM-dd'T'HH:mm:ss.SSSSSSSSS").expect("valid");
            let text = java.format(ts, &tz);
            prop_assert_eq!(java.parse_value(&text, &tz), Ok(ts), "wrote {}", text);
        }
    }
}
