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
    },
    Rfc3339,
}

/// Replaces every `${...}` in `template` with the poll time `since`.
pub fn render_url(template: &str, since: Timestamp) -> Result<String, PlaceholderError> {
    let mut out = String::with_capacity(template.len());
    for segment in parse(template)? {
        match segment {
            Segment::Literal(text) => out.push_str(text),
            Segment::Date { pattern, zone } => out.push_str(&pattern.format(since, &zone)),
            Segment::Rfc3339 => out.push_str(&since.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
        }
    }
    Ok(out)
}

/// Checks a template without a time, so a bad placeholder is refused when the instance is
/// created rather than at its first poll.
pub fn validate_template(template: &str) -> Result<(), PlaceholderError> {
    parse(template).map(|_| ())
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
            return Err(PlaceholderError::Unterminated {
                position: template[..offset + start].chars().count() + 1,
                text: rest[start..].to_owned(),
            });
        };
        let body = &rest[body_start..body_start + length];
        segments.push(placeholder(body)?);
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

fn placeholder(body: &str) -> Result<Segment<'static>, PlaceholderError> {
    let text = format!("${{{body}}}");
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
    };
    let segment = match (name.trim().to_ascii_lowercase().as_str(), argument) {
        ("gmtdate" | "date", None) => Segment::Rfc3339,
        ("gmtdate" | "date", Some(format)) => Segment::Date {
            pattern: pattern(format)?,
            zone: TimeZone::UTC,
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
        assert_eq!(
            validate_template(template).is_ok(),
            got.is_ok(),
            "validate and render agree on {template}"
        );
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
}
