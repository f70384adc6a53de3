//! Resolving a Cloud Elements hub URL (`/hubs/crm/contacts?where=...`) to a ConnectWise request.

use percent_encoding::percent_decode_str;

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
    /// The query string is split by hand rather than with form decoding, because a rendered
    /// date such as `2019-03-01T10:15:00+00:00` carries a literal `+` that form decoding would
    /// turn into a space.
    pub fn parse(hub_url: &str, page_size: Option<u32>) -> Result<HubQuery, CwError> {
        let (path, query) = hub_url.split_once('?').unwrap_or((hub_url, ""));
        let resource = path
            .trim_start_matches('/')
            .strip_prefix("hubs/crm/")
            .ok_or_else(|| {
                CwError::InvalidQuery(format!(
                    "url `{hub_url}` must start with /hubs/crm/ followed by a resource"
                ))
            })?
            .trim_end_matches('/');
        let cw_path = hub_resource_path(resource).ok_or_else(|| {
            let known: Vec<&str> = HUB_RESOURCES.iter().map(|(hub, _)| *hub).collect();
            CwError::InvalidQuery(format!(
                "unknown hub resource `{resource}` in url `{hub_url}`, expected one of {}",
                known.join(", ")
            ))
        })?;
        let mut out = HubQuery {
            path: cw_path.to_string(),
            conditions: None,
            order_by: None,
            fields: None,
            page_size: page_size.unwrap_or(1000).clamp(1, 1000),
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, raw) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode_str(raw)
                .decode_utf8()
                .map_err(|_| CwError::InvalidQuery(format!("`{name}` is not valid UTF-8")))?
                .into_owned();
            match name {
                "where" => {
                    let conditions = hubhook_core::where_to_conditions(&value)
                        .map_err(|e| CwError::InvalidQuery(e.to_string()))?;
                    out.conditions = Some(conditions);
                }
                "orderBy" => out.order_by = Some(value.replace('.', "/")),
                "fields" => out.fields = Some(value.replace('.', "/")),
                "pageSize" => {
                    let n: u32 = value.parse().map_err(|_| {
                        CwError::InvalidQuery(format!(
                            "pageSize `{value}` is not a number, expected 1 to 1000"
                        ))
                    })?;
                    out.page_size = n.clamp(1, 1000);
                }
                // Page and token parameters belong to the poller, which always reads every page.
                "page" | "nextPage" => {}
                other => {
                    return Err(CwError::InvalidQuery(format!(
                        "unsupported query parameter `{other}` in url `{hub_url}`, expected where, orderBy, fields or pageSize"
                    )));
                }
            }
        }
        Ok(out)
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
        let q = HubQuery::parse("/hubs/crm/contacts?pageSize=5000", Some(10)).expect("parses");
        assert_eq!(q.page_size, 1000);
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
