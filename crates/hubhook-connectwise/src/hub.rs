//! A Cloud Elements hub query (`/hubs/crm/contacts?where=...&orderBy=...`) resolved to a
//! ConnectWise request: the path (see [`crate::target`]), `conditions` translated from CEQL,
//! `orderBy`, `fields`, the page size and which page.
//!
//! The poller and the hub API build their queries here, from parameters read by core's
//! [`HubParams`] with the same rules, so a poller URL and a hub call with the same query read
//! the same records. They differ only in how the query string is decoded before it gets there:
//! hub calls arrive form-encoded (`+` is a space), while poller URLs are rendered by hubhook and
//! may carry a literal `+` in a date offset (see [`HubUrl::parse`]).

use hubhook_core::{HubParams, HubUrl, to_conditions};

use crate::CwError;
use crate::page_token::PageRequest;
use crate::target::{HubTarget, TargetKind};

/// Largest page ConnectWise serves (reference §2.4).
pub const MAX_PAGE_SIZE: u32 = 1000;

/// A hub query resolved to ConnectWise terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubQuery {
    /// ConnectWise path below `/apis/3.0/`, e.g. `company/contacts`.
    pub path: String,
    /// ConnectWise `conditions`: the CEQL `where` translated, and the target's own scope.
    pub conditions: Option<String>,
    /// ConnectWise `orderBy` (`contact/name asc`).
    pub order_by: Option<String>,
    /// ConnectWise `fields`.
    pub fields: Option<String>,
    /// Records per page; ConnectWise's maximum is 1000.
    pub page_size: u32,
    /// The page a hub call asks for (`page`, `nextPage`). The poller reads every page and
    /// ignores it.
    pub page: PageRequest,
}

impl HubQuery {
    /// Parse a poller URL such as `/hubs/crm/contacts?where=lastUpdated>'2019-03-01T10:15:00Z'`
    /// (any list: `/hubs/crm/incidents/5/comments`, `/hubs/crm/objects/service/boards`).
    ///
    /// The URL is read by [`HubUrl::parse`] (core), which also checks `orderBy`, `fields`,
    /// `pageSize` and the limits, so that instance creation and every poll agree on it; this
    /// adds the ConnectWise path and the translated conditions. `page_size` is the resource's
    /// `pageSize` setting (default 1000); a `pageSize` in the URL wins.
    pub fn parse(hub_url: &str, page_size: Option<u32>) -> Result<HubQuery, CwError> {
        let url = HubUrl::parse(hub_url).map_err(|e| CwError::InvalidQuery(e.to_string()))?;
        let target = HubTarget::resolve(&url.path)
            .map_err(|e| CwError::InvalidQuery(format!("{e} (in url `{hub_url}`)")))?;
        if target.kind != TargetKind::Collection {
            return Err(CwError::InvalidQuery(format!(
                "url `{hub_url}` addresses one record; a poller url must address a list"
            )));
        }
        HubQuery::new(&target, url.params, page_size.unwrap_or(MAX_PAGE_SIZE))
    }

    /// The query of a hub call on the list `target`, with its parameters (`where`, `orderBy`,
    /// `fields`, `pageSize`, `page`, `nextPage`) already decoded.
    pub fn from_params(
        target: &HubTarget,
        params: impl IntoIterator<Item = (String, String)>,
        default_page_size: u32,
    ) -> Result<HubQuery, CwError> {
        let params =
            HubParams::from_pairs(params).map_err(|e| CwError::InvalidQuery(e.to_string()))?;
        HubQuery::new(target, params, default_page_size)
    }

    fn new(
        target: &HubTarget,
        params: HubParams,
        default_page_size: u32,
    ) -> Result<HubQuery, CwError> {
        let token = params
            .next_page
            .as_deref()
            .map(PageRequest::from_token)
            .transpose()?;
        // The token continues the list the previous page began, so it wins over a page number
        // that a client keeps sending unchanged.
        let page = match (token, params.page) {
            (Some(token), _) => token,
            (None, Some(n)) => PageRequest::Number(n),
            (None, None) => PageRequest::First,
        };
        if let (PageRequest::After(_), Some(_)) = (page, &params.order_by) {
            return Err(CwError::InvalidQuery(
                "this nextPage token continues a list without orderBy; send the same query it came with"
                    .to_string(),
            ));
        }
        let own = params.filter.as_ref().map(to_conditions);
        let conditions = match (own, &target.scope) {
            (Some(own), Some(scope)) => Some(format!("({own}) and {scope}")),
            (own, scope) => own.or_else(|| scope.clone()),
        };
        Ok(HubQuery {
            path: target.path.clone(),
            conditions,
            order_by: params.order_by,
            fields: params.fields.map(|fields| fields.join(",")),
            page_size: params
                .page_size
                .unwrap_or(default_page_size)
                .clamp(1, MAX_PAGE_SIZE),
            page,
        })
    }

    /// Whether this query is read with forward-only paging (keyset on `id`) rather than by
    /// page numbers; see [`crate::page_token`].
    pub fn forward_only(&self) -> bool {
        match self.page {
            PageRequest::After(_) => true,
            PageRequest::Number(_) => false,
            PageRequest::First => self.order_by.is_none() && self.fields_include_id(),
        }
    }

    fn fields_include_id(&self) -> bool {
        self.fields.as_deref().is_none_or(|fields| {
            fields
                .split(',')
                .any(|f| f.trim().eq_ignore_ascii_case("id"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(hub_url: &str, path: &str, conditions: Option<&str>) {
        let q = HubQuery::parse(hub_url, None).expect("parses");
        assert_eq!(q.path, path);
        assert_eq!(q.conditions.as_deref(), conditions);
    }

    #[test]
    fn documented_poller_url() {
        check(
            "/hubs/crm/contacts?where=lastUpdated>'2019-03-01T10:15:00Z'",
            "company/contacts",
            Some("lastUpdated > [2019-03-01T10:15:00Z]"),
        );
    }

    #[test]
    fn percent_encoded_and_plus_sign_survive() {
        check(
            "/hubs/crm/incidents?where=lastUpdated%3E'2019-03-01T10:15:00%2B00:00'",
            "service/tickets",
            Some("lastUpdated > [2019-03-01T10:15:00Z]"),
        );
        check(
            "/hubs/crm/organizations?where=lastUpdated>'2019-03-01T12:15:00+02:00'",
            "company/companies",
            Some("lastUpdated > [2019-03-01T10:15:00Z]"),
        );
    }

    #[test]
    fn no_query() {
        check("/hubs/crm/contacts", "company/contacts", None);
    }

    #[test]
    fn other_parameters() {
        let q = HubQuery::parse(
            "/hubs/crm/contacts?orderBy=company.name asc&pageSize=50",
            None,
        )
        .expect("parses");
        assert_eq!(q.order_by.as_deref(), Some("company/name asc"));
        assert_eq!(q.page_size, 50);
        let q = HubQuery::parse("/hubs/crm/contacts?pageSize=500", Some(10)).expect("parses");
        assert_eq!(q.page_size, 500);
        let q = HubQuery::parse("/hubs/crm/contacts", Some(10)).expect("parses");
        assert_eq!(q.page_size, 10);
        // ConnectWise's maximum is 1000; a larger size is refused rather than cut silently.
        let err = HubQuery::parse("/hubs/crm/contacts?pageSize=5000", Some(10)).unwrap_err();
        assert!(err.to_string().contains("from 1 to 1000"), "{err}");
        let err = HubQuery::parse("/hubs/crm/contacts?orderBy=id desc; drop", None).unwrap_err();
        assert!(
            err.to_string().contains("`orderBy` `id desc; drop`"),
            "{err}"
        );
    }

    #[test]
    fn errors_name_the_problem() {
        let err = HubQuery::parse("/hubs/crm/widgets", None).unwrap_err();
        assert!(
            err.to_string().contains("unknown hub resource `widgets`"),
            "{err}"
        );
        let err = HubQuery::parse("/company/contacts", None).unwrap_err();
        assert!(err.to_string().contains("/hubs/crm/"), "{err}");
        let err = HubQuery::parse("/hubs/crm/contacts?where=lastUpdated>>'x'", None).unwrap_err();
        assert!(err.to_string().starts_with("Error parsing query"), "{err}");
        let err = HubQuery::parse("/hubs/crm/contacts?limit=3", None).unwrap_err();
        assert!(err.to_string().contains("`limit`"), "{err}");
        let err = HubQuery::parse("/hubs/crm/contacts/5", None).unwrap_err();
        assert!(err.to_string().contains("must address a list"), "{err}");
        let err = HubQuery::parse("/hubs/crm/contacts?where=a=1&where=b=2", None).unwrap_err();
        assert!(err.to_string().contains("more than once"), "{err}");
        let err = HubQuery::parse("/hubs/crm/contacts?page=0", None).unwrap_err();
        assert!(err.to_string().contains("`page` `0`"), "{err}");
        let err = HubQuery::parse("/hubs/crm/contacts?nextPage=zz", None).unwrap_err();
        assert!(err.to_string().contains("is not a page token"), "{err}");
        let after = PageRequest::After(5).token().expect("token");
        let err = HubQuery::parse(
            &format!("/hubs/crm/contacts?orderBy=name&nextPage={after}"),
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("without orderBy"), "{err}");
    }

    #[test]
    fn objects_and_children_are_lists_too() {
        check(
            "/hubs/crm/objects/service/boards?where=name LIKE 'Help%25'",
            "service/boards",
            Some(r#"name like "Help%""#),
        );
        check(
            "/hubs/crm/incidents/945001/comments",
            "service/tickets/945001/notes",
            None,
        );
        // The incident's own conditions are added to the caller's, which keep their grouping.
        check(
            "/hubs/crm/incidents/7/time-entries?where=a=1 or b=2",
            "time/entries",
            Some(
                r#"(a = 1 or b = 2) and (chargeToType = "ServiceTicket" or chargeToType = "ProjectTicket") and chargeToId = 7"#,
            ),
        );
        let q = HubQuery::parse("/hubs/crm/objects/system/info", None).expect("parses");
        assert_eq!(q.path, "system/info");
    }

    #[test]
    fn pages_and_paging_style() {
        let query = |url: &str| HubQuery::parse(url, None).expect("parses");
        let q = query("/hubs/crm/contacts?where=");
        assert_eq!(
            (q.conditions.as_deref(), q.page),
            (None, PageRequest::First)
        );
        assert!(q.forward_only());
        let q = query("/hubs/crm/contacts?page=3");
        assert_eq!(q.page, PageRequest::Number(3));
        assert!(!q.forward_only());
        assert!(!query("/hubs/crm/contacts?orderBy=name desc").forward_only());
        assert!(!query("/hubs/crm/contacts?fields=name,company.name").forward_only());
        assert!(query("/hubs/crm/contacts?fields=name, id").forward_only());
        let token = PageRequest::After(57_010).token().expect("token");
        // The token wins over a page number sent unchanged, and an empty one means none.
        let q = query(&format!("/hubs/crm/contacts?page=1&nextPage={token}"));
        assert_eq!(q.page, PageRequest::After(57_010));
        assert!(q.forward_only());
        assert_eq!(
            query("/hubs/crm/contacts?nextPage=").page,
            PageRequest::First
        );
        let token = PageRequest::Number(4).token().expect("token");
        let q = query(&format!("/hubs/crm/contacts?nextPage={token}"));
        assert_eq!(q.page, PageRequest::Number(4));
        assert!(!q.forward_only());
    }
}

#[cfg(test)]
mod properties {
    //! Generated hub URLs never make the parser panic, and a parsed query is within
    //! ConnectWise's limits.

    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_urls_never_panic(
            url in prop_oneof![
                any::<String>(),
                "/hubs/crm/(contacts|widgets|tickets|objects/[a-z./]{0,12}|incidents/[0-9]{1,3}/(comments|time-entries))(\\?(where|orderBy|fields|pageSize|page|nextPage)=.{0,30})?",
            ],
            page_size in prop::option::of(any::<u32>()),
        ) {
            if let Ok(query) = HubQuery::parse(&url, page_size) {
                prop_assert!((1..=1000).contains(&query.page_size));
            }
        }
    }
}
