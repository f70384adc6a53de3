//! `Link` headers for navigable and forward-only paging, in the form
//! ConnectWise emits: `<{base}/company/contacts/?conditions=...&pageSize=2&page=2>; rel="next"`
//! (trailing slash before `?`, .NET `HttpUtility.UrlEncode` escaping with
//! lowercase hex and `+` for spaces, paging parameters last; reference §2.4).

use crate::query::ListQuery;

/// `HttpUtility.UrlEncode`: letters, digits and `-_.!*()` stay, space becomes
/// `+`, everything else is `%xx` in lowercase hex (UTF-8 bytes).
pub fn dotnet_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for b in s.bytes() {
        match b {
            b'a'..=b'z'
            | b'A'..=b'Z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'!'
            | b'*'
            | b'('
            | b')' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02x}")),
        }
    }
    out
}

fn url(base: &str, path: &str, q: &ListQuery, tail: &[(&str, String)]) -> String {
    let mut parts: Vec<String> = q
        .carried
        .iter()
        .map(|(k, v)| format!("{}={}", dotnet_encode(k), dotnet_encode(v)))
        .collect();
    for (k, v) in tail {
        parts.push(format!("{k}={v}"));
    }
    format!("{base}/{path}/?{}", parts.join("&"))
}

/// rels `first`/`prev` (after page 1), `next` (when more pages), `last` (always).
pub fn navigable(base: &str, path: &str, q: &ListQuery, total: usize) -> String {
    let size = q.page_size.max(1);
    let last = total.div_ceil(size).max(1);
    let link = |page: usize, rel: &str| {
        format!(
            "<{}>; rel=\"{rel}\"",
            url(
                base,
                path,
                q,
                &[("pageSize", size.to_string()), ("page", page.to_string())]
            )
        )
    };
    let mut rels = Vec::new();
    if q.page > 1 {
        rels.push(link(1, "first"));
        rels.push(link((q.page - 1).min(last), "prev"));
    }
    if q.page < last {
        rels.push(link(q.page + 1, "next"));
    }
    rels.push(link(last, "last"));
    rels.join(", ")
}

/// The `Link` of a forward-only page. ConnectWise's Developer Guide: "There will always be a
/// `link` header in the response for the next `pageId`", the last id of the page; the request
/// after the last records answers `[]` with an empty `Link`, which is what ends paging for the
/// clients that follow links (reference: connectwise-paging.md §1b). So every page with
/// records links the next one, even a full last page when the total is an exact multiple of
/// the page size, and only the empty page has an empty `Link`.
pub fn forward_only(base: &str, path: &str, q: &ListQuery, last_id: Option<i64>) -> String {
    match last_id {
        Some(id) => format!(
            "<{}>; rel=\"next\"",
            url(
                base,
                path,
                q,
                &[
                    ("pageSize", q.page_size.to_string()),
                    ("pageId", id.to_string())
                ]
            )
        ),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_dotnet() {
        assert_eq!(
            dotnet_encode("LastUpdated >= [2025-04-01T20:02:28Z]"),
            "LastUpdated+%3e%3d+%5b2025-04-01T20%3a02%3a28Z%5d"
        );
        assert_eq!(dotnet_encode("a/b=\"c\"&d"), "a%2fb%3d%22c%22%26d");
        assert_eq!(dotnet_encode("é"), "%c3%a9");
    }
}
