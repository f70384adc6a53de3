//! Which page of a hub list a call asks for, and the `Elements-Next-Page-Token` that names the
//! next one.
//!
//! A hub list is read from ConnectWise in one of its two paging styles (reference §2.4, §2.5):
//!
//! - **forward-only** (keyset on `id`): the default when the call has no `orderBy`. The next page
//!   is "records with an id above the last one shown", which stays right when records are added
//!   or deleted between calls, the same reason the poller reads this way.
//! - **navigable** (`page` numbers): when the call orders the list (`orderBy`, which forward-only
//!   paging refuses), names a page (`page=N`), or asks for `fields` without `id` (the keyset
//!   needs the id of the last record).
//!
//! The token carries which of the two it continues and where: the text `after:<id>` or
//! `page:<n>`, in unpadded URL-safe base64 so that it is opaque, fits a header and can be sent
//! back as `nextPage` without escaping. It holds no secret and no query; the caller sends the
//! same query with it, as Cloud Elements asks.

use base64::Engine as _;

use crate::CwError;

/// The page a hub call asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PageRequest {
    /// No `page` and no `nextPage`.
    #[default]
    First,
    /// Navigable page `n` (1-based).
    Number(u32),
    /// Forward-only: the records whose id is above this one.
    After(i64),
}

const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Longest token we try to decode; real ones are under 30 characters.
const MAX_TOKEN_CHARS: usize = 64;

impl PageRequest {
    /// The token naming this page, for `Elements-Next-Page-Token`. `None` for the first page.
    pub fn token(&self) -> Option<String> {
        let text = match self {
            PageRequest::First => return None,
            PageRequest::Number(n) => format!("page:{n}"),
            PageRequest::After(id) => format!("after:{id}"),
        };
        Some(BASE64.encode(text))
    }

    /// The page a `nextPage` token names.
    pub fn from_token(token: &str) -> Result<PageRequest, CwError> {
        let invalid = || {
            let shown: String = token.chars().take(MAX_TOKEN_CHARS).collect();
            CwError::InvalidQuery(format!(
                "nextPage `{}` is not a page token: send back the Elements-Next-Page-Token header of the previous page",
                shown.escape_debug()
            ))
        };
        if token.len() > MAX_TOKEN_CHARS {
            return Err(invalid());
        }
        let bytes = BASE64.decode(token.trim()).map_err(|_| invalid())?;
        let text = std::str::from_utf8(&bytes).map_err(|_| invalid())?;
        let digits_only = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        match text.split_once(':') {
            Some(("page", n)) if digits_only(n) => match n.parse::<u32>() {
                Ok(n) if n >= 1 => Ok(PageRequest::Number(n)),
                _ => Err(invalid()),
            },
            Some(("after", id)) if digits_only(id) => {
                id.parse().map(PageRequest::After).map_err(|_| invalid())
            }
            _ => Err(invalid()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        for page in [
            PageRequest::Number(1),
            PageRequest::Number(u32::MAX),
            PageRequest::After(0),
            PageRequest::After(57_010),
            PageRequest::After(i64::MAX),
        ] {
            let token = page.token().expect("a token");
            assert!(
                token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{token} needs no escaping"
            );
            assert_eq!(PageRequest::from_token(&token), Ok(page));
        }
        assert_eq!(PageRequest::First.token(), None);
        assert_eq!(
            PageRequest::After(57010).token().as_deref(),
            Some("YWZ0ZXI6NTcwMTA")
        );
    }

    #[test]
    fn foreign_tokens_are_refused() {
        for bad in [
            "",
            "x",
            "page:2",
            &BASE64.encode("page:0"),
            &BASE64.encode("page:-1"),
            &BASE64.encode("page:+1"),
            &BASE64.encode("page:99999999999"),
            &BASE64.encode("after:"),
            &BASE64.encode("after:1.5"),
            &BASE64.encode("cursor:5"),
            &BASE64.encode([0xff, 0xfe]),
            &"A".repeat(65),
        ] {
            let err = PageRequest::from_token(bad).unwrap_err();
            assert!(
                err.to_string().contains("is not a page token"),
                "{bad}: {err}"
            );
        }
    }
}
