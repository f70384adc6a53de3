//! Which ConnectWise path a hub path addresses: the one mapping from Cloud Elements' `crm` hub
//! resources to ConnectWise Manage, used by the poller (through [`crate::HubQuery::parse`]) and by
//! the hub API alike, so that both read the same records for the same URL.
//!
//! A hub path is what follows `/hubs/crm/`:
//!
//! | hub path | ConnectWise path | kind |
//! |---|---|---|
//! | `contacts`, `contacts/{id}` | `company/contacts[/{id}]` | list, record |
//! | `incidents/{id}/comments[/{commentId}]` | `service/tickets/{id}/notes[/{noteId}]` | list, record |
//! | `incidents/{id}/time-entries` | `time/entries` with the incident's conditions | list |
//! | `objects/{path...}` | `{path...}` as written | list, or record when it ends with a number |
//!
//! `objects/` reaches any ConnectWise path, so its segments are checked to be plain names or
//! numbers: no `..`, no empty segment, nothing that could end the path (`?`, `#`) or point
//! elsewhere (`:`, `%`, `\`). Together with a base URL that ends in `/apis/3.0`, a target can
//! only ever name a ConnectWise API path of the instance's own site.

use crate::CwError;

/// A hub resource and the ConnectWise path behind it.
struct Resource {
    name: &'static str,
    path: &'static str,
    /// One of the objects Cloud Elements documents for the `connectwisecrmrest` element (served
    /// as its own hub route and listed by `GET /hubs/crm/objects`). The others are synonyms
    /// that poller URLs written for earlier hubhook versions use.
    documented: bool,
}

const fn documented(name: &'static str, path: &'static str) -> Resource {
    Resource {
        name,
        path,
        documented: true,
    }
}

const fn synonym(name: &'static str, path: &'static str) -> Resource {
    Resource {
        name,
        path,
        documented: false,
    }
}

/// The Cloud Elements names are the documented ones for the `connectwisecrmrest` element
/// (reference §4.3); the ConnectWise paths are inferred from the records' shapes.
const RESOURCES: &[Resource] = &[
    documented("activities", "sales/activities"),
    documented("contacts", "company/contacts"),
    documented("fields", "system/userDefinedFields"),
    documented("incidents", "service/tickets"),
    documented("opportunities", "sales/opportunities"),
    documented("organizations", "company/companies"),
    documented("time-entries", "time/entries"),
    synonym("companies", "company/companies"),
    synonym("accounts", "company/companies"),
    synonym("tickets", "service/tickets"),
    synonym("projects", "project/projects"),
    synonym("members", "system/members"),
];

/// The hub segment that passes any other ConnectWise path through.
pub const OBJECTS: &str = "objects";

/// The ConnectWise path for a hub resource name, if hubhook knows it.
pub fn hub_resource_path(resource: &str) -> Option<&'static str> {
    RESOURCES
        .iter()
        .find(|r| r.name.eq_ignore_ascii_case(resource))
        .map(|r| r.path)
}

/// The objects of the `crm` hub, as `GET /hubs/crm/objects` lists them, sorted.
pub fn hub_objects() -> Vec<&'static str> {
    RESOURCES
        .iter()
        .filter(|r| r.documented)
        .map(|r| r.name)
        .collect()
}

/// Whether a target is a list (GET with paging, POST) or one record (GET, PUT, PATCH, DELETE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Collection,
    Record,
}

/// What a hub path addresses in ConnectWise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubTarget {
    /// ConnectWise path below `/apis/3.0/`, e.g. `company/contacts/57001`.
    pub path: String,
    pub kind: TargetKind,
    /// ConnectWise conditions the hub path itself implies (the time entries of one incident),
    /// added to the caller's own with `and`.
    pub scope: Option<String>,
}

/// Longest id we accept in a path: ConnectWise ids are 32-bit numbers.
const MAX_ID_DIGITS: usize = 18;
/// Bounds on `objects/` paths; the longest ConnectWise API path has eight segments.
const MAX_OBJECT_SEGMENTS: usize = 16;
const MAX_SEGMENT_CHARS: usize = 100;

impl HubTarget {
    /// Resolves a hub path (what follows `/hubs/crm/`, without a query), e.g. `contacts/57001`
    /// or `objects/service/boards`. Leading and trailing `/` are ignored.
    pub fn resolve(hub_path: &str) -> Result<HubTarget, CwError> {
        let trimmed = hub_path.trim_matches('/');
        let segments: Vec<&str> = trimmed.split('/').collect();
        if segments.iter().any(|s| s.is_empty()) {
            return Err(invalid(format!(
                "hub path `{}` has an empty segment",
                hub_path.escape_debug()
            )));
        }
        let (first, rest) = match segments.split_first() {
            Some(split) => split,
            None => return Err(invalid("the hub path is empty".to_string())),
        };
        if first.eq_ignore_ascii_case(OBJECTS) {
            return passthrough(rest, hub_path);
        }
        let path = hub_resource_path(first).ok_or_else(|| {
            let known: Vec<&str> = RESOURCES.iter().map(|r| r.name).collect();
            invalid(format!(
                "unknown hub resource `{}`, expected one of {} or objects/<ConnectWise path>",
                first.escape_debug(),
                known.join(", ")
            ))
        })?;
        let is_ticket = path == "service/tickets";
        match rest {
            [] => Ok(HubTarget::collection(path.to_string(), None)),
            [id] => Ok(HubTarget::record(format!("{path}/{}", id_segment(id)?))),
            [id, child] if is_ticket && child.eq_ignore_ascii_case("comments") => Ok(
                HubTarget::collection(format!("{path}/{}/notes", id_segment(id)?), None),
            ),
            [id, child, note] if is_ticket && child.eq_ignore_ascii_case("comments") => {
                Ok(HubTarget::record(format!(
                    "{path}/{}/notes/{}",
                    id_segment(id)?,
                    id_segment(note)?
                )))
            }
            [id, child] if is_ticket && child.eq_ignore_ascii_case("time-entries") => {
                let id = id_segment(id)?;
                // The same conditions ConnectWise itself links from a ticket
                // (`_info.timeentries_href`): service and project tickets share one id space.
                let scope = format!(
                    "(chargeToType = \"ServiceTicket\" or chargeToType = \"ProjectTicket\") and chargeToId = {id}"
                );
                Ok(HubTarget::collection(
                    "time/entries".to_string(),
                    Some(scope),
                ))
            }
            _ => Err(invalid(format!(
                "hub path `{}` is not supported: expected `{first}`, `{first}/{{id}}`{}",
                hub_path.escape_debug(),
                if is_ticket {
                    ", `{id}/comments[/{commentId}]` or `{id}/time-entries`"
                } else {
                    ""
                }
            ))),
        }
    }

    fn collection(path: String, scope: Option<String>) -> HubTarget {
        HubTarget {
            path,
            kind: TargetKind::Collection,
            scope,
        }
    }

    fn record(path: String) -> HubTarget {
        HubTarget {
            path,
            kind: TargetKind::Record,
            scope: None,
        }
    }
}

/// `objects/{path...}`: any ConnectWise path, checked segment by segment.
fn passthrough(segments: &[&str], hub_path: &str) -> Result<HubTarget, CwError> {
    if segments.is_empty() {
        return Err(invalid(
            "`objects` needs a ConnectWise path after it, e.g. objects/service/boards".to_string(),
        ));
    }
    if segments.len() > MAX_OBJECT_SEGMENTS {
        return Err(invalid(format!(
            "hub path `{}` has more than {MAX_OBJECT_SEGMENTS} segments",
            hub_path.escape_debug()
        )));
    }
    for segment in segments {
        let plain = segment.len() <= MAX_SEGMENT_CHARS
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            && !segment.bytes().all(|b| b == b'.');
        if !plain {
            return Err(invalid(format!(
                "`{}` in `objects/` is not a ConnectWise path segment: expected letters, digits, `_`, `-` or `.` (at most {MAX_SEGMENT_CHARS}), and not `.` or `..`",
                segment.escape_debug()
            )));
        }
    }
    let path = segments.join("/");
    let last = segments[segments.len() - 1];
    // ConnectWise record ids are numbers; every collection path ends with a name.
    Ok(
        if segments.len() > 1 && last.bytes().all(|b| b.is_ascii_digit()) {
            HubTarget::record(path)
        } else {
            HubTarget::collection(path, None)
        },
    )
}

/// A record id in a hub path: decimal digits only.
fn id_segment(id: &str) -> Result<&str, CwError> {
    if id.is_empty() || id.len() > MAX_ID_DIGITS || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(format!(
            "`{}` is not a record id: expected a whole number",
            id.escape_debug()
        )));
    }
    Ok(id)
}

fn invalid(message: String) -> CwError {
    CwError::InvalidQuery(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(hub_path: &str, expected: Result<(&str, TargetKind, Option<&str>), &str>) {
        match (HubTarget::resolve(hub_path), expected) {
            (Ok(target), Ok((path, kind, scope))) => {
                assert_eq!(target.path, path, "{hub_path}");
                assert_eq!(target.kind, kind, "{hub_path}");
                assert_eq!(target.scope.as_deref(), scope, "{hub_path}");
            }
            (Err(err), Err(message)) => {
                assert!(err.to_string().contains(message), "{hub_path}: {err}")
            }
            (got, want) => panic!("{hub_path}: got {got:?}, expected {want:?}"),
        }
    }

    use TargetKind::{Collection, Record};

    #[test]
    fn documented_resources() {
        check("contacts", Ok(("company/contacts", Collection, None)));
        check("/contacts/", Ok(("company/contacts", Collection, None)));
        check(
            "Contacts/57001",
            Ok(("company/contacts/57001", Record, None)),
        );
        check("organizations", Ok(("company/companies", Collection, None)));
        check("incidents/5", Ok(("service/tickets/5", Record, None)));
        check(
            "opportunities",
            Ok(("sales/opportunities", Collection, None)),
        );
        check("activities", Ok(("sales/activities", Collection, None)));
        check("time-entries/3", Ok(("time/entries/3", Record, None)));
        check("fields", Ok(("system/userDefinedFields", Collection, None)));
        check("projects", Ok(("project/projects", Collection, None)));
    }

    #[test]
    fn incident_children() {
        check(
            "incidents/945001/comments",
            Ok(("service/tickets/945001/notes", Collection, None)),
        );
        check(
            "incidents/945001/Comments/3100007",
            Ok(("service/tickets/945001/notes/3100007", Record, None)),
        );
        check(
            "incidents/945001/time-entries",
            Ok((
                "time/entries",
                Collection,
                Some(
                    r#"(chargeToType = "ServiceTicket" or chargeToType = "ProjectTicket") and chargeToId = 945001"#,
                ),
            )),
        );
        check("contacts/1/comments", Err("is not supported"));
        check("incidents/1/time-entries/2", Err("is not supported"));
    }

    #[test]
    fn objects_pass_through() {
        check(
            "objects/service/boards",
            Ok(("service/boards", Collection, None)),
        );
        check(
            "objects/service/boards/1/statuses",
            Ok(("service/boards/1/statuses", Collection, None)),
        );
        check(
            "objects/service/boards/1",
            Ok(("service/boards/1", Record, None)),
        );
        check("objects/system/info", Ok(("system/info", Collection, None)));
        check("objects/42", Ok(("42", Collection, None)));
        check(
            "objects/system/members/j.doe",
            Ok(("system/members/j.doe", Collection, None)),
        );
    }

    #[test]
    fn objects_refuse_what_could_leave_the_api() {
        for bad in [
            "objects/../login",
            "objects/service/..",
            "objects/.",
            "objects/http:",
            "objects/service%2Fboards",
            "objects/a?b=1",
            "objects/a#b",
            "objects/a b",
            "objects/a\\b",
            "objects/ä",
        ] {
            check(bad, Err("is not a ConnectWise path segment"));
        }
        check("objects", Err("needs a ConnectWise path"));
        check("objects//boards", Err("empty segment"));
        check(&format!("objects{}", "/a".repeat(17)), Err("more than 16"));
        check(
            &format!("objects/{}", "a".repeat(101)),
            Err("not a ConnectWise path segment"),
        );
    }

    #[test]
    fn errors_name_the_problem() {
        check("widgets", Err("unknown hub resource `widgets`"));
        check("contacts/abc", Err("`abc` is not a record id"));
        check("contacts/-1", Err("`-1` is not a record id"));
        check("contacts/1234567890123456789", Err("is not a record id"));
        check("contacts//1", Err("empty segment"));
        check("", Err("empty"));
    }

    #[test]
    fn objects_are_the_documented_resources() {
        assert_eq!(
            hub_objects(),
            [
                "activities",
                "contacts",
                "fields",
                "incidents",
                "opportunities",
                "organizations",
                "time-entries"
            ]
        );
    }
}
