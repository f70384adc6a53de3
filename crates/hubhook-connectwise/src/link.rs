//! The RFC 8288 `Link` header ConnectWise uses for paging.

/// The target of `rel="next"` in a `Link` header, if any.
///
/// ConnectWise writes `<https://...&page=2>; rel="next", <...>; rel="last"`; forward-only paging
/// writes only `rel="next"`, and an empty header on the last page.
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim();
            p.eq_ignore_ascii_case("rel=\"next\"") || p.eq_ignore_ascii_case("rel=next")
        });
        (is_next && !target.is_empty()).then(|| target.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(header: &str, expected: Option<&str>) {
        assert_eq!(next_link(header).as_deref(), expected);
    }

    #[test]
    fn parses_connectwise_links() {
        check(
            "<https://x/v2017_3/apis/3.0/company/companies?pageSize=50&page=2>; rel=\"next\", <https://x/v2017_3/apis/3.0/company/companies?pageSize=50&page=4>; rel=\"last\"",
            Some("https://x/v2017_3/apis/3.0/company/companies?pageSize=50&page=2"),
        );
        check(
            "<https://x/a?page=1>; rel=\"first\", <https://x/a?page=3>; rel=\"prev\", <https://x/a?page=4>; rel=\"last\"",
            None,
        );
        check(
            "<https://x/a?pageId=1234>; rel=\"next\"",
            Some("https://x/a?pageId=1234"),
        );
        check("", None);
        check("<>; rel=\"next\"", None);
    }
}
