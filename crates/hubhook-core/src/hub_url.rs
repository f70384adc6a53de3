//! Cloud Elements hub URLs of poller resources: `/hubs/crm/contacts?where=...&orderBy=...`.
//!
//! A poller URL names a resource of the `crm` hub and may carry `where` (CEQL), `orderBy`,
//! `fields` and `pageSize`. This module reads a *rendered* URL (placeholders already replaced)
//! into its parts and checks each against what ConnectWise accepts, so that a configuration
//! whose URL could never be sent is refused when the instance is created, and the poller reads
//! the same URL the same way at every poll. Which ConnectWise path a resource name stands for is
//! the element adapter's business (`hubhook-connectwise`).
//!
//! Limits, all in characters: the URL at most [`MAX_URL_LENGTH`], so its `where` clause too;
//! CEQL adds its own limits on comparisons and nesting ([`crate::ceql`]).

use percent_encoding::percent_decode_str;

use crate::ceql::{CeqlError, Expr, parse_where};

/// The longest poller URL accepted, in characters. ConnectWise advises keeping request URLs
/// under 2000 characters; the request hubhook sends adds the base URL and percent-encoding, and
/// stays far below what an HTTP client can send.
pub const MAX_URL_LENGTH: usize = 2000;

/// The hub of the ConnectWise element.
const HUB_PREFIX: &str = "/hubs/crm/";

/// A hub URL read into its parts.
#[derive(Debug, Clone, PartialEq)]
pub struct HubUrl {
    /// The resource name after `/hubs/crm/`, e.g. `contacts`.
    pub resource: String,
    /// The `where` clause.
    pub filter: Option<Expr>,
    /// `orderBy` in ConnectWise form: `company/name asc, id desc`.
    pub order_by: Option<String>,
    /// `fields` in ConnectWise form, each a `/`-separated path.
    pub fields: Option<Vec<String>>,
    /// `pageSize`, 1 to 1000.
    pub page_size: Option<u32>,
}

/// Why a hub URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubUrlError {
    #[error("the url is {length} characters long, the limit is {MAX_URL_LENGTH}")]
    TooLong { length: usize },
    #[error(
        "the url must start with /hubs/crm/ followed by a resource name of letters, digits, `_` and `-`"
    )]
    NotHub,
    #[error("query parameter `{name}` is not valid UTF-8 once percent-decoded")]
    NotUtf8 { name: String },
    #[error("unsupported query parameter `{name}`, expected where, orderBy, fields or pageSize")]
    UnknownParameter { name: String },
    #[error("query parameter `{name}` appears more than once")]
    Duplicate { name: String },
    /// The CEQL message already starts with "Error parsing query".
    #[error("{0}")]
    Where(CeqlError),
    #[error("`{name}` `{value}` is not valid, expected {expected}")]
    Invalid {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
}

const ORDER_BY_FORM: &str = "comma-separated `field asc` or `field desc` (the direction may be left out), fields such as `id` or `company/name`";
const FIELDS_FORM: &str = "comma-separated field names such as `id,company/name`";
const PAGE_SIZE_FORM: &str = "a whole number from 1 to 1000";

impl HubUrl {
    /// Reads a rendered hub URL. The query string is split by hand rather than form-decoded:
    /// a rendered date such as `2019-03-01T10:15:00+00:00` carries a literal `+` that form
    /// decoding would turn into a space.
    pub fn parse(url: &str) -> Result<HubUrl, HubUrlError> {
        let length = url.chars().count();
        if length > MAX_URL_LENGTH {
            return Err(HubUrlError::TooLong { length });
        }
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        let resource = path
            .strip_prefix(HUB_PREFIX)
            .map(|rest| rest.trim_end_matches('/'))
            .filter(|name| {
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            })
            .ok_or(HubUrlError::NotHub)?;
        let mut out = HubUrl {
            resource: resource.to_owned(),
            filter: None,
            order_by: None,
            fields: None,
            page_size: None,
        };
        let mut seen: Vec<&str> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, raw) = pair.split_once('=').unwrap_or((pair, ""));
            if seen.contains(&name) {
                return Err(HubUrlError::Duplicate {
                    name: name.to_owned(),
                });
            }
            seen.push(name);
            let value =
                percent_decode_str(raw)
                    .decode_utf8()
                    .map_err(|_| HubUrlError::NotUtf8 {
                        name: name.to_owned(),
                    })?;
            match name {
                "where" => out.filter = Some(parse_where(&value).map_err(HubUrlError::Where)?),
                "orderBy" => out.order_by = Some(order_by(&value)?),
                "fields" => out.fields = Some(fields(&value)?),
                "pageSize" => {
                    let size = value
                        .trim()
                        .parse::<u32>()
                        .ok()
                        .filter(|n| (1..=1000).contains(n));
                    out.page_size =
                        Some(size.ok_or_else(|| invalid("pageSize", &value, PAGE_SIZE_FORM))?);
                }
                // Paging belongs to the poller, which always reads every page.
                "page" | "nextPage" => {}
                other => {
                    return Err(HubUrlError::UnknownParameter {
                        name: other.to_owned(),
                    });
                }
            }
        }
        Ok(out)
    }
}

fn invalid(name: &'static str, value: &str, expected: &'static str) -> HubUrlError {
    HubUrlError::Invalid {
        name,
        value: value.to_owned(),
        expected,
    }
}

/// A field path as ConnectWise writes it (`company/name`), from `company/name` or the CEQL
/// spelling `company.name`; `None` unless every segment is an identifier.
fn field_path(text: &str) -> Option<String> {
    let segments: Vec<&str> = text.split(['/', '.']).collect();
    let valid = segments.iter().all(|segment| {
        let mut chars = segment.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    });
    valid.then(|| segments.join("/"))
}

/// `orderBy`: `field [asc|desc]`, comma-separated, written back in ConnectWise form.
fn order_by(text: &str) -> Result<String, HubUrlError> {
    let refuse = || invalid("orderBy", text, ORDER_BY_FORM);
    let mut terms = Vec::new();
    for term in text.split(',') {
        let mut words = term.split_whitespace();
        let field = words.next().and_then(field_path).ok_or_else(refuse)?;
        let direction = match words.next() {
            None => None,
            Some(word) if word.eq_ignore_ascii_case("asc") => Some("asc"),
            Some(word) if word.eq_ignore_ascii_case("desc") => Some("desc"),
            Some(_) => return Err(refuse()),
        };
        if words.next().is_some() {
            return Err(refuse());
        }
        terms.push(match direction {
            Some(direction) => format!("{field} {direction}"),
            None => field,
        });
    }
    Ok(terms.join(", "))
}

/// `fields`: field paths, comma-separated.
fn fields(text: &str) -> Result<Vec<String>, HubUrlError> {
    text.split(',')
        .map(|field| field_path(field.trim()).ok_or_else(|| invalid("fields", text, FIELDS_FORM)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> HubUrl {
        HubUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    fn check_error(url: &str, expected: &str) {
        let error = HubUrl::parse(url).expect_err(url).to_string();
        assert_eq!(error, expected, "{url}");
    }

    #[test]
    fn reads_the_documented_url() {
        let url = parse("/hubs/crm/contacts?where=lastUpdated>'2019-03-01T10:15:00Z'");
        assert_eq!(url.resource, "contacts");
        assert_eq!(
            url.filter
                .map(|e| crate::ceql::to_conditions(&e))
                .as_deref(),
            Some("lastUpdated > [2019-03-01T10:15:00Z]")
        );
        assert_eq!(parse("/hubs/crm/time-entries/").resource, "time-entries");
    }

    #[test]
    fn reads_order_by_fields_and_page_size() {
        let url = parse(
            "/hubs/crm/contacts?orderBy=company.name%20ASC,%20id%20desc,lastName&fields=id,_info/lastUpdated,company.name&pageSize=50&page=3",
        );
        assert_eq!(
            url.order_by.as_deref(),
            Some("company/name asc, id desc, lastName")
        );
        assert_eq!(
            url.fields,
            Some(vec![
                "id".to_owned(),
                "_info/lastUpdated".to_owned(),
                "company/name".to_owned()
            ])
        );
        assert_eq!(url.page_size, Some(50));
    }

    #[test]
    fn refuses_what_connectwise_would_refuse() {
        check_error(
            "/hubs/crm/contacts?orderBy=id desc; drop",
            "`orderBy` `id desc; drop` is not valid, expected comma-separated `field asc` or `field desc` (the direction may be left out), fields such as `id` or `company/name`",
        );
        for order in ["", "id,", "id up", "id asc desc", "1d", "a..b", "a/ asc"] {
            let url = format!("/hubs/crm/contacts?orderBy={order}");
            assert!(
                matches!(
                    HubUrl::parse(&url),
                    Err(HubUrlError::Invalid {
                        name: "orderBy",
                        ..
                    })
                ),
                "{url}"
            );
        }
        check_error(
            "/hubs/crm/contacts?fields=id,name;x",
            "`fields` `id,name;x` is not valid, expected comma-separated field names such as `id,company/name`",
        );
        for size in ["0", "1001", "5000", "-1", "2.5", "x", ""] {
            check_error(
                &format!("/hubs/crm/contacts?pageSize={size}"),
                &format!(
                    "`pageSize` `{size}` is not valid, expected a whole number from 1 to 1000"
                ),
            );
        }
        check_error(
            "/hubs/crm/contacts?where=a=1&where=b=2",
            "query parameter `where` appears more than once",
        );
        check_error(
            "/hubs/crm/contacts?limit=3",
            "unsupported query parameter `limit`, expected where, orderBy, fields or pageSize",
        );
        check_error(
            "/hubs/crm/contacts?where=%FF",
            "query parameter `where` is not valid UTF-8 once percent-decoded",
        );
        check_error(
            "/hubs/crm/contacts?where=a>>1",
            "Error parsing query: unexpected `>` at position 3, expected a value (a quoted string, a number, true, false or null)",
        );
        for path in [
            "/company/contacts",
            "/hubs/crm/",
            "/hubs/crm/a b",
            "/hubs/crm/a/b",
            "hubs/crm/x",
        ] {
            assert_eq!(HubUrl::parse(path), Err(HubUrlError::NotHub), "{path}");
        }
    }

    #[test]
    fn limits_the_length() {
        // The 20,000-OR query of the probe: refused by length before it is read.
        let ors = vec!["id=1"; 20_000].join(" OR ");
        let url = format!("/hubs/crm/contacts?where={ors}");
        assert_eq!(
            HubUrl::parse(&url),
            Err(HubUrlError::TooLong {
                length: url.chars().count()
            })
        );
        let at_limit = format!(
            "/hubs/crm/contacts?fields={}",
            "a".repeat(MAX_URL_LENGTH - 26)
        );
        assert_eq!(at_limit.chars().count(), MAX_URL_LENGTH);
        assert!(HubUrl::parse(&at_limit).is_ok());
    }
}

#[cfg(test)]
mod properties {
    //! Generated URLs never make the reader panic, and what it accepts it writes back in a form
    //! it accepts again.

    use proptest::prelude::*;

    use super::*;

    fn url() -> impl Strategy<Value = String> {
        let parameter = prop_oneof![
            "where=[a-z.]{1,6}( ?[=<>!]{1,2} ?)('[^']{0,5}'|[0-9]{1,3})",
            "orderBy=[a-zA-Z_./ ,]{0,20}",
            "fields=[a-zA-Z_./ ,]{0,20}",
            "pageSize=[0-9-]{0,5}",
            "(page|nextPage|limit)=[a-z0-9]{0,3}",
            any::<String>(),
        ];
        (
            prop_oneof![Just("/hubs/crm/contacts".to_owned()), any::<String>()],
            prop::collection::vec(parameter, 0..4),
        )
            .prop_map(|(path, parameters)| format!("{path}?{}", parameters.join("&")))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_urls_never_panic_and_normal_forms_are_stable(url in url()) {
            if let Ok(parsed) = HubUrl::parse(&url) {
                if let Some(order) = &parsed.order_by {
                    prop_assert_eq!(order_by(order), Ok(order.clone()));
                }
                if let Some(fields) = &parsed.fields {
                    let joined = fields.join(",");
                    prop_assert_eq!(self::fields(&joined), Ok(fields.clone()));
                }
            }
        }
    }
}
