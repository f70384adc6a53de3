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

    #[test]
    fn a_megabyte_header_is_read_in_one_pass() {
        let many = "<https://x/a>; rel=\"prev\", ".repeat(40_000);
        check(
            &format!("{many}<https://x/b>; rel=\"next\""),
            Some("https://x/b"),
        );
        check(&";".repeat(1 << 20), None);
    }
}

#[cfg(test)]
mod properties {
    //! Generated headers never make the reader panic, and a next link written among others is
    //! found.

    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_headers_never_panic(header in prop_oneof![
            any::<String>(),
            "[<>;, =\"a-z:/?&]{0,60}",
        ]) {
            let _ = next_link(&header);
        }

        #[test]
        fn the_next_link_is_found_among_others(
            next in "https://[a-z]{1,8}/[a-z/?=&0-9]{0,20}",
            others in prop::collection::vec(("https://[a-z]{1,8}/[a-z0-9]{0,8}", "first|prev|last"), 0..3),
            position in 0usize..4,
        ) {
            let mut parts: Vec<String> = others
                .iter()
                .map(|(url, rel)| format!("<{url}>; rel=\"{rel}\""))
                .collect();
            parts.insert(position.min(parts.len()), format!("<{next}>; rel=\"next\""));
            prop_assert_eq!(next_link(&parts.join(", ")), Some(next));
        }
    }
}
