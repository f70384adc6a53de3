//! Cloud Elements poller URL placeholders (`${gmtDate:yyyy-MM-dd'T'HH:mm:ss'Z'}` and friends).
//!
//! Every placeholder stands for the same instant: the time the resource was last polled (minus
//! `pollDelay`), which the caller passes in as `since`. Supported forms:
//!
//! | placeholder | renders |
//! |---|---|
//! | `${gmtDate:FMT}` | `since` in UTC with the Java pattern `FMT` |
//! | `${date:FMT}` | the same: Cloud Elements formats in its servers' zone, which is GMT, and so does hubhook |
//! | `${date}`, `${gmtDate}` | RFC 3339 in UTC with seconds, e.g. `2019-03-01T10:15:00Z` |
//! | `${dateTimeZone:ZONE:FMT}`, `${DateTimeZone:ZONE:FMT}` | `since` in `ZONE` (see [`parse_zone`]) |
//! | `${epoch}`, `${epoch:ms}`, `${milliseconds}` | unix milliseconds |
//! | `${epoch:s}`, `${epoch:us}` | unix seconds, microseconds |
//!
//! Placeholder names are matched case-insensitively. `FMT` may contain quotes and colons; a `}`
//! inside quotes does not end the placeholder. Text outside placeholders, including the
//! undocumented `{name}` substitutions without `$`, is copied unchanged. The result is not
//! percent-encoded: the element adapter reads the `where` clause from it and encodes the
//! provider request itself.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::java_time::{EpochUnit, JavaPattern, PatternError, parse_zone};

/// Why a URL template was refused. Every message names the placeholder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaceholderError {
    #[error(
        "unterminated placeholder starting at position {position}: `{text}` has no closing `}}`"
    )]
    Unterminated { position: usize, text: String },
    #[error(
        "unknown placeholder `{placeholder}`: expected ${{gmtDate:FORMAT}}, ${{date:FORMAT}}, ${{date}}, ${{dateTimeZone:ZONE:FORMAT}}, ${{epoch}}, ${{epoch:s|ms|us}} or ${{milliseconds}}"
    )]
    Unknown { placeholder: String },
    #[error("placeholder `{placeholder}` needs a format, as in ${{dateTimeZone:EST:yyyy-MM-dd}}")]
    MissingFormat { placeholder: String },
    #[error("placeholder `{placeholder}` has an unknown epoch unit: expected s, ms or us")]
    UnknownEpochUnit { placeholder: String },
    #[error("placeholder `{placeholder}`: {source}")]
    Pattern {
        placeholder: String,
        source: PatternError,
    },
}

/// One piece of a parsed template.
enum Segment<'t> {
    Literal(&'t str),
    Date {
        pattern: JavaPattern,
        zone: TimeZone,
        /// The placeholder as written, `${...}`, for messages.
        text: &'t str,
    },
    Rfc3339,
}

/// Replaces every `${...}` in `template` with the poll time `since`.
pub fn render_url(template: &str, since: Timestamp) -> Result<String, PlaceholderError> {
    let mut out = String::with_capacity(template.len());
    for segment in parse(template)? {
        match segment {
            Segment::Literal(text) => out.push_str(text),
            Segment::Date { pattern, zone, .. } => out.push_str(&pattern.format(since, &zone)),
            Segment::Rfc3339 => out.push_str(&since.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
        }
    }
    Ok(out)
}

/// Checks a template without a time, so a bad placeholder is refused when the instance is
/// created rather than at its first poll: every placeholder must be known, and every date
/// format must be able to read back the dates it writes (see
/// [`JavaPattern::check_round_trip`]); `${gmtDate:HH:mm}` would send ConnectWise a time without
/// a date.
pub fn validate_template(template: &str) -> Result<(), PlaceholderError> {
    for segment in parse(template)? {
        if let Segment::Date {
            pattern,
            zone,
            text,
        } = segment
        {
            pattern
                .check_round_trip(&zone)
                .map_err(|source| PlaceholderError::Pattern {
                    placeholder: text.to_owned(),
                    source,
                })?;
        }
    }
    Ok(())
}

/// The most characters [`render_url`] can produce from `template`, whatever the instant: the
/// literal text plus each placeholder at its longest (`MMMM` counts as `September`).
pub fn max_rendered_length(template: &str) -> Result<usize, PlaceholderError> {
    let length = parse(template)?
        .iter()
        .map(|segment| match segment {
            Segment::Literal(text) => text.chars().count(),
            Segment::Date { pattern, zone, .. } => pattern.max_formatted_length(zone),
            // `%Y-%m-%dT%H:%M:%SZ` with a year of up to 4 digits and a sign.
            Segment::Rfc3339 => 21,
        })
        .sum();
    Ok(length)
}

fn parse(template: &str) -> Result<Vec<Segment<'_>>, PlaceholderError> {
    let mut segments = Vec::new();
    let mut rest = template;
    let mut offset = 0;
    while let Some(start) = rest.find("${") {
        if start > 0 {
            segments.push(Segment::Literal(&rest[..start]));
        }
        let body_start = start + 2;
        let Some(length) = closing_brace(&rest[body_start..]) else {
            // The rest of the template is quoted only in part: it may be long.
            let mut text: String = rest[start..].chars().take(40).collect();
            if text.len() < rest.len() - start {
                text.push_str("...");
            }
            return Err(PlaceholderError::Unterminated {
                position: template[..offset + start].chars().count() + 1,
                text,
            });
        };
        let body = &rest[body_start..body_start + length];
        segments.push(placeholder(body, &rest[start..=body_start + length])?);
        let consumed = body_start + length + 1;
        offset += consumed;
        rest = &rest[consumed..];
    }
    if !rest.is_empty() {
        segments.push(Segment::Literal(rest));
    }
    Ok(segments)
}

/// The index of the `}` that ends a placeholder body, skipping quoted pattern text.
fn closing_brace(body: &str) -> Option<usize> {
    let mut quoted = false;
    for (i, c) in body.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '}' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// The segment of one placeholder: `body` is its text between `${` and `}`, `source` all of it.
fn placeholder<'t>(body: &str, source: &'t str) -> Result<Segment<'t>, PlaceholderError> {
    let text = source.to_owned();
    let (name, argument) = match body.split_once(':') {
        Some((name, argument)) => (name, Some(argument)),
        None => (body, None),
    };
    let pattern = |format: &str| {
        JavaPattern::parse(format).map_err(|source| PlaceholderError::Pattern {
            placeholder: text.clone(),
            source,
        })
    };
    let epoch = |unit| Segment::Date {
        pattern: JavaPattern::epoch(unit),
        zone: TimeZone::UTC,
        text: source,
    };
    let segment = match (name.trim().to_ascii_lowercase().as_str(), argument) {
        ("gmtdate" | "date", None) => Segment::Rfc3339,
        ("gmtdate" | "date", Some(format)) => Segment::Date {
            pattern: pattern(format)?,
            zone: TimeZone::UTC,
            text: source,
        },
        ("datetimezone", Some(argument)) => {
            let (zone, format) = split_zone(argument);
            let Some(format) = format else {
                return Err(PlaceholderError::MissingFormat { placeholder: text });
            };
            let zone = parse_zone(zone).map_err(|source| PlaceholderError::Pattern {
                placeholder: text.clone(),
                source,
            })?;
            Segment::Date {
                pattern: pattern(format)?,
                zone,
                text: source,
            }
        }
        ("datetimezone", None) => {
            return Err(PlaceholderError::MissingFormat { placeholder: text });
        }
        ("epoch" | "milliseconds", None) => epoch(EpochUnit::Milliseconds),
        ("epoch", Some(unit)) => match unit.trim() {
            "s" => epoch(EpochUnit::Seconds),
            "ms" => epoch(EpochUnit::Milliseconds),
            "us" => epoch(EpochUnit::Microseconds),
            _ => return Err(PlaceholderError::UnknownEpochUnit { placeholder: text }),
        },
        _ => return Err(PlaceholderError::Unknown { placeholder: text }),
    };
    Ok(segment)
}

/// Splits `ZONE:FMT` on the first colon after the zone. A zone written as an offset contains a
/// colon itself (`-8:00`, `GMT-08:00`), so an offset at the start is taken whole first.
fn split_zone(argument: &str) -> (&str, Option<&str>) {
    let offset_length = offset_prefix_length(argument);
    if offset_length > 0 && argument[offset_length..].starts_with(':') {
        return (
            &argument[..offset_length],
            Some(&argument[offset_length + 1..]),
        );
    }
    match argument.split_once(':') {
        Some((zone, format)) => (zone, Some(format)),
        None => (argument, None),
    }
}

/// The length of an offset such as `-8:00`, `+05:30` or `GMT-08:00` at the start of `text`,
/// or 0.
fn offset_prefix_length(text: &str) -> usize {
    let prefix = ["GMT", "UTC"]
        .iter()
        .find(|p| text.get(..3).is_some_and(|t| t.eq_ignore_ascii_case(p)))
        .map_or(0, |_| 3);
    let bytes = &text.as_bytes()[prefix..];
    if !matches!(bytes.first(), Some(b'+' | b'-')) {
        return 0;
    }
    let hours = bytes[1..].iter().take_while(|b| b.is_ascii_digit()).count();
    if !(1..=2).contains(&hours) {
        return 0;
    }
    let mut end = 1 + hours;
    if bytes.get(end) == Some(&b':')
        && bytes
            .get(end + 1..end + 3)
            .is_some_and(|m| m.iter().all(u8::is_ascii_digit))
    {
        end += 3;
    }
    prefix + end
}

#[cfg(test)]
mod tests {
    use super::*;

    const SINCE: &str = "2019-03-01T10:15:00.123456Z";

    fn check(template: &str, expected: Result<&str, &str>) {
        let since: Timestamp = SINCE.parse().expect("valid timestamp");
        let got = render_url(template, since);
        // Validation is stricter than rendering (it also checks that date formats read back).
        if validate_template(template).is_ok() {
            assert!(got.is_ok(), "validated {template} but could not render it");
        }
        match expected {
            Ok(url) => assert_eq!(got.as_deref(), Ok(url), "{template}"),
            Err(needle) => {
                let message = got.expect_err(template).to_string();
                assert!(
                    message.contains(needle),
                    "{message:?} should contain {needle:?}"
                );
            }
        }
    }

    #[test]
    fn renders_the_documented_poller_url() {
        check(
            "/hubs/crm/contacts?where=lastUpdated>'${gmtDate:yyyy-MM-dd'T'HH:mm:ss'Z'}'",
            Ok("/hubs/crm/contacts?where=lastUpdated>'2019-03-01T10:15:00Z'"),
        );
    }

    #[test]
    fn renders_every_placeholder_form() {
        check("${date:yyyy-MM-dd HH:mm}", Ok("2019-03-01 10:15"));
        check("x=${date}&y", Ok("x=2019-03-01T10:15:00Z&y"));
        check("${gmtDate}", Ok("2019-03-01T10:15:00Z"));
        check("${GMTDATE:yyyyMMdd}", Ok("20190301"));
        check(
            "${dateTimeZone:EST:yyyy-MM-dd'T'HH:mm:ssXXX}",
            Ok("2019-03-01T05:15:00-05:00"),
        );
        check("${DateTimeZone:PST:HH:mm}", Ok("02:15"));
        check("${dateTimeZone:America/Denver:HH:mm z}", Ok("03:15 MST"));
        check("${dateTimeZone:-8:00:HH:mm}", Ok("02:15"));
        check("${dateTimeZone:GMT+05:30:HH:mm}", Ok("15:45"));
        check("${dateTimeZone:+05:30:HH:mm}", Ok("15:45"));
        check("${epoch}", Ok("1551435300123"));
        check("${epoch:ms}", Ok("1551435300123"));
        check("${epoch:s}", Ok("1551435300"));
        check("${epoch:us}", Ok("1551435300123456"));
        check("${milliseconds}", Ok("1551435300123"));
        check("${date:'}'yyyy}", Ok("}2019"));
        check(
            "a ${epoch:s} b ${epoch:s} c",
            Ok("a 1551435300 b 1551435300 c"),
        );
        check(
            "/hubs/crm/contacts/{id}/notes",
            Ok("/hubs/crm/contacts/{id}/notes"),
        );
        check("no placeholders $ {x}", Ok("no placeholders $ {x}"));
    }

    #[test]
    fn refuses_bad_placeholders() {
        check("${objectId}", Err("unknown placeholder `${objectId}`"));
        check("${}", Err("unknown placeholder `${}`"));
        check(
            "${epoch:minutes}",
            Err("`${epoch:minutes}` has an unknown epoch unit"),
        );
        check(
            "${dateTimeZone:EST}",
            Err("`${dateTimeZone:EST}` needs a format"),
        );
        check(
            "${dateTimeZone:Mars/Olympus:HH}",
            Err("unknown time zone `Mars/Olympus`"),
        );
        check(
            "${gmtDate:yyyy-MM-ddTHH}",
            Err("`${gmtDate:yyyy-MM-ddTHH}`: unknown letter `T`"),
        );
        check("/x?w=a>'${gmtDate:yyyy", Err("position 9"));
        check("${date:'yyyy}", Err("no closing `}`"));
    }

    #[test]
    fn validation_refuses_date_formats_that_do_not_read_back() {
        let check_invalid = |template: &str, needle: &str| {
            let message = validate_template(template).expect_err(template).to_string();
            assert!(
                message.contains(needle),
                "{message:?} should contain {needle:?}"
            );
        };
        check_invalid(
            "/hubs/crm/contacts?where=lastUpdated>'${gmtDate:HH:mm}'",
            "placeholder `${gmtDate:HH:mm}`: date pattern `HH:mm` cannot read back",
        );
        check_invalid(
            "x=${date:yyyy} y=${dateTimeZone:PST:hh:mm z}",
            "placeholder `${dateTimeZone:PST:hh:mm z}`",
        );
        check_invalid("${gmtDate:EEEE MMMM}", "reads that back as 1970");
        check_invalid("${gmtDate:[yyyy]}", "`[` is reserved");
        for valid in [
            "/hubs/crm/contacts?where=lastUpdated>'${gmtDate:yyyy-MM-dd'T'HH:mm:ss'Z'}'",
            "${date}",
            "${epoch:s}",
            "${dateTimeZone:EST:yyyy-MM-dd'T'HH:mm:ssXXX}",
            "${date:'}'yyyy}",
        ] {
            assert_eq!(validate_template(valid), Ok(()), "{valid}");
        }
    }

    #[test]
    fn bounds_the_rendered_length() {
        let check_bound = |template: &str, expected: usize| {
            assert_eq!(max_rendered_length(template), Ok(expected), "{template}");
        };
        check_bound("/hubs/crm/contacts", 18);
        // 39 characters of text, and the documented placeholder renders to at most 21 (20, and
        // a sign for years before year 0).
        check_bound(
            "/hubs/crm/contacts?where=lastUpdated>'${gmtDate:yyyy-MM-dd'T'HH:mm:ss'Z'}'",
            39 + 21,
        );
        check_bound("${date:MMMM EEEE}", 19);
        check_bound("${epoch}${date}", 41);
        check_bound("${dateTimeZone:America/New_York:zzzz}", 16);
        assert!(max_rendered_length("${nope}").is_err());
    }

    #[test]
    fn megabyte_templates_are_read_in_one_pass() {
        // Each placeholder is scanned once; an unterminated one is reported without rescanning.
        let since = Timestamp::UNIX_EPOCH;
        let many = "${epoch:s}".repeat(100_000);
        assert_eq!(render_url(&many, since), Ok("0".repeat(100_000)));
        let open = "${date:'".repeat(125_000);
        assert!(matches!(
            render_url(&open, since),
            Err(PlaceholderError::Unterminated { position: 1, .. })
        ));
        let unknown = "${x".repeat(333_333);
        assert!(validate_template(&unknown).is_err());
    }
}

#[cfg(test)]
mod properties {
    //! Generated templates: no panic, validation implies rendering, and no rendering is longer
    //! than the bound.

    use proptest::prelude::*;

    use super::*;

    fn template() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            any::<String>(),
            Just("${".to_owned()),
            Just("}".to_owned()),
            Just("'".to_owned()),
            Just(":".to_owned()),
            "\\$\\{(gmtDate|date|dateTimeZone|DateTimeZone|epoch|milliseconds)(:[A-Za-z/_+0-9:-]{0,12})?(:[yMdHhmsSaEZXz' :.-]{0,20})?\\}",
        ];
        prop::collection::vec(piece, 0..6).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn templates_never_panic_and_stay_within_their_bound(
            template in template(),
            seconds in -62_135_596_800i64..253_402_300_799,
        ) {
            let since = Timestamp::from_second(seconds).expect("in range");
            let rendered = render_url(&template, since);
            if validate_template(&template).is_ok() {
                prop_assert!(rendered.is_ok(), "{}", template);
            }
            match (rendered, max_rendered_length(&template)) {
                (Ok(url), Ok(bound)) => prop_assert!(
                    url.chars().count() <= bound,
                    "{} rendered {} longer than {}", template, url, bound
                ),
                (Err(_), Err(_)) => {}
                (rendered, bound) => prop_assert!(
                    false, "{}: render {:?} but bound {:?}", template, rendered, bound
                ),
            }
        }
    }
}
