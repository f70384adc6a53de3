//! Cloud Elements hub URLs: `/hubs/crm/contacts?where=...&orderBy=...`, as poller resources
//! name them and as hub calls arrive.
//!
//! A hub URL names a path of the `crm` hub (`contacts`, `incidents/5/comments`,
//! `objects/service/boards`) and may carry `where` (CEQL), `orderBy`, `fields`, `pageSize`,
//! `page` and `nextPage`. This module reads them into their parts and checks each against what
//! ConnectWise accepts, so that a configuration whose URL could never be sent is refused when
//! the instance is created, the poller reads the same URL the same way at every poll, and a hub
//! call with the same parameters means the same thing ([`HubParams::from_pairs`]). Which
//! ConnectWise path a hub path stands for is the element adapter's business
//! (`hubhook-connectwise`).
//!
//! Limits, all in characters: the URL at most [`MAX_URL_LENGTH`], so its `where` clause too (a
//! hub call's parameter values each at most that); CEQL adds its own limits on comparisons and
//! nesting ([`crate::ceql`]).

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
    /// The hub path after `/hubs/crm/`, without a trailing `/`: a resource name such as
    /// `contacts`, or a longer path such as `incidents/5/comments` or `objects/service/boards`.
    pub path: String,
    pub params: HubParams,
}

/// The query parameters of a hub URL or call, checked.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HubParams {
    /// The `where` clause (an empty one is no clause).
    pub filter: Option<Expr>,
    /// `orderBy` in ConnectWise form: `company/name asc, id desc`.
    pub order_by: Option<String>,
    /// `fields` in ConnectWise form, each a `/`-separated path.
    pub fields: Option<Vec<String>>,
    /// `pageSize`, 1 to 1000.
    pub page_size: Option<u32>,
    /// `page`, from 1. The poller reads every page and ignores it.
    pub page: Option<u32>,
    /// `nextPage`, the page token of a hub call as sent (an empty one is none). The poller
    /// ignores it.
    pub next_page: Option<String>,
}

/// Why a hub URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubUrlError {
    #[error("the url is {length} characters long, the limit is {MAX_URL_LENGTH}")]
    TooLong { length: usize },
    #[error(
        "the url must start with /hubs/crm/ followed by a resource name (or path) of letters, digits, `_`, `-`, `.` and `/`"
    )]
    NotHub,
    #[error("query parameter `{name}` is not valid UTF-8 once percent-decoded")]
    NotUtf8 { name: String },
    #[error(
        "unsupported query parameter `{name}`, expected where, orderBy, fields, pageSize, page or nextPage"
    )]
    UnknownParameter { name: String },
    #[error("query parameter `{name}` appears more than once")]
    Duplicate { name: String },
    #[error("query parameter `{name}` is {length} characters long, the limit is {MAX_URL_LENGTH}")]
    ValueTooLong { name: String, length: usize },
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
const PAGE_FORM: &str = "a whole number from 1";

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
        let path = path
            .strip_prefix(HUB_PREFIX)
            .map(|rest| rest.trim_end_matches('/'))
            .filter(|path| {
                !path.is_empty()
                    && path
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
            })
            .ok_or(HubUrlError::NotHub)?;
        let mut pairs = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, raw) = pair.split_once('=').unwrap_or((pair, ""));
            let value =
                percent_decode_str(raw)
                    .decode_utf8()
                    .map_err(|_| HubUrlError::NotUtf8 {
                        name: name.to_owned(),
                    })?;
            pairs.push((name.to_owned(), value.into_owned()));
        }
        Ok(HubUrl {
            path: path.to_owned(),
            params: HubParams::from_pairs(pairs)?,
        })
    }
}

impl HubParams {
    /// Reads decoded query parameters (a hub call's, form-decoded by its caller). Each may be
    /// given once; any other parameter is refused, naming it.
    pub fn from_pairs(
        pairs: impl IntoIterator<Item = (String, String)>,
    ) -> Result<HubParams, HubUrlError> {
        let mut out = HubParams::default();
        let mut seen: Vec<String> = Vec::new();
        for (name, value) in pairs {
            if seen.contains(&name) {
                return Err(HubUrlError::Duplicate { name });
            }
            let length = value.chars().count();
            if length > MAX_URL_LENGTH {
                return Err(HubUrlError::ValueTooLong { name, length });
            }
            let blank = value.trim().is_empty();
            match name.as_str() {
                // Form builders send an empty `where` and `nextPage` for "none".
                "where" if blank => {}
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
                "page" => {
                    let page = value.trim().parse::<u32>().ok().filter(|n| *n >= 1);
                    out.page = Some(page.ok_or_else(|| invalid("page", &value, PAGE_FORM))?);
                }
                "nextPage" if blank => {}
                "nextPage" => out.next_page = Some(value.trim().to_owned()),
                _ => return Err(HubUrlError::UnknownParameter { name }),
            }
            seen.push(name);
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
        assert_eq!(url.path, "contacts");
        assert_eq!(
            url.params
                .filter
                .map(|e| crate::ceql::to_conditions(&e))
                .as_deref(),
            Some("lastUpdated > [2019-03-01T10:15:00Z]")
        );
        assert_eq!(parse("/hubs/crm/time-entries/").path, "time-entries");
        assert_eq!(
            parse("/hubs/crm/objects/service/boards?where=id=1").path,
            "objects/service/boards"
        );
        assert_eq!(
            parse("/hubs/crm/incidents/5/comments").path,
            "incidents/5/comments"
        );
    }

    #[test]
    fn reads_order_by_fields_and_page_size() {
        let url = parse(
            "/hubs/crm/contacts?orderBy=company.name%20ASC,%20id%20desc,lastName&fields=id,_info/lastUpdated,company.name&pageSize=50&page=3",
        );
        assert_eq!(
            url.params.order_by.as_deref(),
            Some("company/name asc, id desc, lastName")
        );
        assert_eq!(
            url.params.fields,
            Some(vec![
                "id".to_owned(),
                "_info/lastUpdated".to_owned(),
                "company/name".to_owned()
            ])
        );
        assert_eq!(url.params.page_size, Some(50));
        assert_eq!(url.params.page, Some(3));
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
            "unsupported query parameter `limit`, expected where, orderBy, fields, pageSize, page or nextPage",
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
            "/hubs/crm/a#b",
            "/hubs/crm/a%2Fb",
            "hubs/crm/x",
        ] {
            assert_eq!(HubUrl::parse(path), Err(HubUrlError::NotHub), "{path}");
        }
    }

    #[test]
    fn reads_the_parameters_of_hub_calls() {
        let pairs = |list: &[(&str, &str)]| {
            HubParams::from_pairs(list.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        };
        let params = pairs(&[
            ("where", "name = 'a+b'"),
            ("nextPage", "YWZ0ZXI6NQ"),
            ("page", "2"),
        ])
        .expect("parses");
        assert!(params.filter.is_some());
        assert_eq!(params.next_page.as_deref(), Some("YWZ0ZXI6NQ"));
        assert_eq!(params.page, Some(2));
        assert_eq!(
            pairs(&[("where", " "), ("nextPage", "")]),
            Ok(HubParams::default())
        );
        for page in ["0", "-1", "x", ""] {
            assert_eq!(
                pairs(&[("page", page)]).map_err(|e| e.to_string()),
                Err(format!(
                    "`page` `{page}` is not valid, expected a whole number from 1"
                ))
            );
        }
        let long = "a".repeat(MAX_URL_LENGTH + 1);
        assert_eq!(
            pairs(&[("fields", &long)]),
            Err(HubUrlError::ValueTooLong {
                name: "fields".into(),
                length: MAX_URL_LENGTH + 1
            })
        );
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
                if let Some(order) = &parsed.params.order_by {
                    prop_assert_eq!(order_by(order), Ok(order.clone()));
                }
                if let Some(fields) = &parsed.params.fields {
                    let joined = fields.join(",");
                    prop_assert_eq!(self::fields(&joined), Ok(fields.clone()));
                }
            }
        }
    }
}
