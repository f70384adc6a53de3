//! Resolving a Cloud Elements hub URL (`/hubs/crm/contacts?where=...`) to a ConnectWise request.

use hubhook_core::{HubUrl, to_conditions};

use crate::CwError;

/// The ConnectWise Manage path behind each hub resource of the `crm` hub.
///
/// The Cloud Elements names (contacts, organizations, incidents, ...) are the documented ones for
/// the `connectwisecrmrest` element; the others let users poll more of ConnectWise by copying a
/// resource block, which the Cloud Elements documentation invites.
const HUB_RESOURCES: &[(&str, &str)] = &[
    ("contacts", "company/contacts"),
    ("organizations", "company/companies"),
    ("companies", "company/companies"),
    ("accounts", "company/companies"),
    ("incidents", "service/tickets"),
    ("tickets", "service/tickets"),
    ("opportunities", "sales/opportunities"),
    ("activities", "sales/activities"),
    ("time-entries", "time/entries"),
    ("projects", "project/projects"),
    ("members", "system/members"),
];

/// The ConnectWise path for a hub resource name, if hubhook knows it.
pub fn hub_resource_path(resource: &str) -> Option<&'static str> {
    HUB_RESOURCES
        .iter()
        .find(|(hub, _)| hub.eq_ignore_ascii_case(resource))
        .map(|(_, cw)| *cw)
}

/// A hub query resolved to ConnectWise terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubQuery {
    /// ConnectWise path below `/apis/3.0/`, e.g. `company/contacts`.
    pub path: String,
    /// ConnectWise `conditions`, translated from CEQL `where`.
    pub conditions: Option<String>,
    /// ConnectWise `orderBy` (`contact/name asc`).
    pub order_by: Option<String>,
    /// ConnectWise `fields`.
    pub fields: Option<String>,
    /// Records per page; ConnectWise caps it at 1000.
    pub page_size: u32,
}

impl HubQuery {
    /// Parse a hub URL such as `/hubs/crm/contacts?where=lastUpdated>'2019-03-01T10:15:00Z'`.
    ///
    /// The URL is read by [`HubUrl::parse`] (core), which also checks `orderBy`, `fields`,
    /// `pageSize` and the limits, so that instance creation and every poll agree on it; this
    /// adds the ConnectWise path of the resource and the translated conditions. `page_size` is
    /// the resource's `pageSize` setting; a `pageSize` in the URL wins.
    pub fn parse(hub_url: &str, page_size: Option<u32>) -> Result<HubQuery, CwError> {
        let url = HubUrl::parse(hub_url).map_err(|e| CwError::InvalidQuery(e.to_string()))?;
        let cw_path = hub_resource_path(&url.resource).ok_or_else(|| {
            let known: Vec<&str> = HUB_RESOURCES.iter().map(|(hub, _)| *hub).collect();
            CwError::InvalidQuery(format!(
                "unknown hub resource `{}` in url `{hub_url}`, expected one of {}",
                url.resource,
                known.join(", ")
            ))
        })?;
        Ok(HubQuery {
            path: cw_path.to_string(),
            conditions: url.filter.as_ref().map(to_conditions),
            order_by: url.order_by,
            fields: url.fields.map(|fields| fields.join(",")),
            page_size: url.page_size.or(page_size).unwrap_or(1000).clamp(1, 1000),
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
                "/hubs/crm/(contacts|widgets|tickets)(\\?(where|orderBy|fields|pageSize)=.{0,30})?",
            ],
            page_size in prop::option::of(any::<u32>()),
        ) {
            if let Ok(query) = HubQuery::parse(&url, page_size) {
                prop_assert!((1..=1000).contains(&query.page_size));
            }
        }
    }
}
