//! Paging of platform lists (instances, events) the way Cloud Elements pages: `page` (from 1)
//! and `pageSize`, or `nextPage` with the token the previous page sent in
//! `Elements-Next-Page-Token`.
//!
//! A token names the last item shown (a keyset), not a position, so items added or removed
//! between two calls shift nothing: nothing is skipped or shown twice. It is unpadded URL-safe
//! base64, opaque to clients and safe in a header and a URL. A full page carries a token; a
//! shorter page does not, so a list whose size is a multiple of `pageSize` ends with an empty
//! page.

use axum::http::{HeaderName, HeaderValue};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::ApiError;

/// Where the next page starts; send it back as `nextPage`.
pub const NEXT_PAGE_HEADER: HeaderName = HeaderName::from_static("elements-next-page-token");

pub const DEFAULT_PAGE_SIZE: u32 = 200;
pub const MAX_PAGE_SIZE: u32 = 1000;
const MAX_PAGE: u32 = 1_000_000;

/// `page`, `pageSize` and the decoded `nextPage` of one list request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paging {
    pub page: u32,
    pub page_size: u32,
    /// The decoded token: what the last item of the previous page was.
    pub after: Option<String>,
}

impl Paging {
    /// Items to skip before this page when paging by number (0 when a token is given: the
    /// token wins over `page`, which clients often keep sending unchanged).
    pub fn offset(&self) -> u32 {
        if self.after.is_some() {
            0
        } else {
            (self.page - 1).saturating_mul(self.page_size)
        }
    }

    /// The token of a keyset page (`<created ms> <id>` of the last item shown), decoded.
    pub fn keyset(&self) -> Result<Option<(i64, String)>, ApiError> {
        let Some(token) = self.after.as_deref() else {
            return Ok(None);
        };
        token
            .split_once(' ')
            .and_then(|(ms, id)| Some((ms.parse().ok()?, id.to_string())))
            .map(Some)
            .ok_or_else(|| ApiError::bad_request("`nextPage` is not a page token of this list"))
    }

    /// The keyset token of an item: its creation time (ms) and id.
    pub fn keyset_token(created_ms: i64, id: &str) -> String {
        format!("{created_ms} {id}")
    }

    /// Reads `page`, `pageSize` and `nextPage` from the query pairs, refusing repeated ones.
    pub fn parse<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Paging, ApiError> {
        let mut paging = Paging {
            page: 1,
            page_size: DEFAULT_PAGE_SIZE,
            after: None,
        };
        let (mut page, mut size, mut next) = (false, false, false);
        for (key, value) in pairs {
            let seen = match key {
                "page" => &mut page,
                "pageSize" => &mut size,
                "nextPage" => &mut next,
                _ => continue,
            };
            if std::mem::replace(seen, true) {
                return Err(ApiError::bad_request(format!(
                    "`{key}` is given twice, expected it at most once"
                )));
            }
            match key {
                "page" => paging.page = number(key, value, MAX_PAGE)?,
                "pageSize" => paging.page_size = number(key, value, MAX_PAGE_SIZE)?,
                _ if value.is_empty() => {}
                _ => paging.after = Some(decode(value)?),
            }
        }
        Ok(paging)
    }
}

fn number(key: &str, value: &str, max: u32) -> Result<u32, ApiError> {
    match value.parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) && value.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(ApiError::bad_request(format!(
            "`{key}`: got `{}`, expected a whole number from 1 to {max}",
            value.chars().take(40).collect::<String>().escape_debug()
        ))),
    }
}

/// The token for a page that ends with the item described by `last`.
pub fn encode(last: &str) -> String {
    URL_SAFE_NO_PAD.encode(last)
}

fn decode(token: &str) -> Result<String, ApiError> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        // No token this server sends holds a control character; a NUL could not even be
        // looked up on PostgreSQL.
        .filter(|text| !text.chars().any(char::is_control))
        .ok_or_else(|| {
            ApiError::bad_request(
                "`nextPage` is not a page token: send back the `Elements-Next-Page-Token` of the previous page",
            )
        })
}

/// The `Elements-Next-Page-Token` header of a page, when it is full.
pub fn next_page_header(
    shown: usize,
    paging: &Paging,
    last: Option<String>,
) -> Option<(HeaderName, HeaderValue)> {
    if shown < paging.page_size as usize {
        return None;
    }
    let token = encode(&last?);
    HeaderValue::from_str(&token)
        .ok()
        .map(|value| (NEXT_PAGE_HEADER, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &str) -> Result<Paging, String> {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        Paging::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))).map_err(|e| e.message)
    }

    #[test]
    fn reads_page_size_and_tokens_and_names_bad_values() {
        assert_eq!(parse("").unwrap().page_size, DEFAULT_PAGE_SIZE);
        let paging = parse("page=3&pageSize=10").unwrap();
        assert_eq!(paging.offset(), 20);
        let token = encode("42");
        let paging = parse(&format!("page=3&pageSize=10&nextPage={token}")).unwrap();
        assert_eq!((paging.after.as_deref(), paging.offset()), (Some("42"), 0));
        for (query, field) in [
            ("pageSize=0", "pageSize"),
            ("pageSize=1001", "pageSize"),
            ("pageSize=+5", "pageSize"),
            ("page=x", "page"),
            ("page=1&page=2", "page"),
            ("nextPage=%%%", "nextPage"),
            // "123 a\0b": a NUL in a token is refused, not looked up.
            ("nextPage=MTIzIGEAYg", "nextPage"),
        ] {
            let err = parse(query).unwrap_err();
            assert!(err.contains(field), "{query}: {err}");
        }
    }
}
