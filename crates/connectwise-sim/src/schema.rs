//! Field schemas of the simulated resources.
//!
//! One static description per resource drives everything that must agree on
//! field names and types: condition parsing (unknown fields and type errors),
//! `orderBy`, write validation, reference resolution and href rendering.

use serde_json::Value;

pub type Map = serde_json::Map<String, Value>;

#[derive(Debug)]
pub enum Kind {
    Str,
    Int,
    Num,
    Bool,
    /// Stored as `YYYY-MM-DDTHH:MM:SSZ`.
    DateTime,
    /// A custom field's `value`: string, number or boolean.
    Any,
    /// A reference object `{id, name|identifier, _info{x_href}}`.
    Ref(&'static RefSpec),
    /// An array of reference objects (contact `types`).
    RefList(&'static RefSpec),
    /// An array of plain objects (communicationItems, customFields).
    Objects(&'static [Field]),
    /// A nested object (`_info`).
    Object(&'static [Field]),
}

#[derive(Debug)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
    /// Clients cannot set it (id, `_info`, server-computed fields).
    pub read_only: bool,
}

pub const fn field(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        read_only: false,
    }
}

pub const fn read_only(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        read_only: true,
    }
}

/// Where the label fields of a reference come from when a client writes `{"id": 5}`.
#[derive(Debug)]
pub enum RefSource {
    /// Another simulated resource (path in the store).
    Resource(&'static str),
    /// A fixed lookup list (boards, statuses, ...): (id, name).
    Table(&'static [(i64, &'static str)]),
}

#[derive(Debug)]
pub struct RefSpec {
    /// Key inside the reference's `_info`, e.g. `company_href`.
    pub href_key: &'static str,
    /// Path after the API base; `{id}` is the reference id and `{x}` the id of
    /// the record's own `x` reference (statuses live under their board).
    pub href: &'static str,
    pub source: RefSource,
    /// Sub-fields that conditions may traverse into (`company/name`).
    pub fields: &'static [Field],
}

pub static ID_NAME: [Field; 2] = [field("id", Kind::Int), field("name", Kind::Str)];
pub static ID_IDENTIFIER_NAME: [Field; 3] = [
    field("id", Kind::Int),
    field("identifier", Kind::Str),
    field("name", Kind::Str),
];
pub static MEMBER_REF_FIELDS: [Field; 4] = [
    field("id", Kind::Int),
    field("identifier", Kind::Str),
    field("name", Kind::Str),
    field("dailyCapacity", Kind::Num),
];
pub static TICKET_REF_FIELDS: [Field; 2] = [field("id", Kind::Int), field("summary", Kind::Str)];

pub static INFO_FIELDS: [Field; 4] = [
    read_only("lastUpdated", Kind::DateTime),
    read_only("updatedBy", Kind::Str),
    read_only("dateEntered", Kind::DateTime),
    read_only("enteredBy", Kind::Str),
];

pub static CUSTOM_FIELD_FIELDS: [Field; 6] = [
    field("id", Kind::Int),
    field("caption", Kind::Str),
    field("type", Kind::Str),
    field("entryMethod", Kind::Str),
    field("numberOfDecimals", Kind::Int),
    field("value", Kind::Any),
];

pub static COMPANY_REF: RefSpec = RefSpec {
    href_key: "company_href",
    href: "company/companies/{id}",
    source: RefSource::Resource("company/companies"),
    fields: &ID_IDENTIFIER_NAME,
};
pub static CONTACT_REF: RefSpec = RefSpec {
    href_key: "contact_href",
    href: "company/contacts/{id}",
    source: RefSource::Resource("company/contacts"),
    fields: &ID_NAME,
};
pub static MEMBER_REF: RefSpec = RefSpec {
    href_key: "member_href",
    href: "system/members/{id}",
    source: RefSource::Resource("system/members"),
    fields: &MEMBER_REF_FIELDS,
};
pub static TICKET_REF: RefSpec = RefSpec {
    href_key: "ticket_href",
    href: "service/tickets/{id}",
    source: RefSource::Resource("service/tickets"),
    fields: &TICKET_REF_FIELDS,
};
pub static PROJECT_REF: RefSpec = RefSpec {
    href_key: "project_href",
    href: "project/projects/{id}",
    source: RefSource::Resource("project/projects"),
    fields: &ID_NAME,
};
pub static OPPORTUNITY_REF: RefSpec = RefSpec {
    href_key: "opportunity_href",
    href: "sales/opportunities/{id}",
    source: RefSource::Resource("sales/opportunities"),
    fields: &ID_NAME,
};

/// A table-backed reference: `{id, name, _info{key: base/href}}`.
pub const fn table_ref(
    href_key: &'static str,
    href: &'static str,
    table: &'static [(i64, &'static str)],
) -> RefSpec {
    RefSpec {
        href_key,
        href,
        source: RefSource::Table(table),
        fields: &ID_NAME,
    }
}

/// The custom-field array every record carries (may be empty).
pub const fn custom_fields() -> Field {
    field("customFields", Kind::Objects(&CUSTOM_FIELD_FIELDS))
}

pub const fn info() -> Field {
    read_only("_info", Kind::Object(&INFO_FIELDS))
}

/// Top-level condition names that ConnectWise accepts although the value
/// lives in `_info` (AMP read.go: "All objects react to the LastUpdated query").
pub const INFO_ALIASES: [&str; 4] = ["lastUpdated", "updatedBy", "dateEntered", "enteredBy"];

pub fn find<'a>(fields: &'a [Field], name: &str) -> Option<&'a Field> {
    fields.iter().find(|f| f.name.eq_ignore_ascii_case(name))
}

/// A field path resolved against a schema: canonical segment names plus the
/// kind of the leaf. `array` is the index of the segment that is an array of
/// objects (only allowed in childConditions / customFieldConditions).
#[derive(Debug, Clone)]
pub struct Resolved {
    pub segments: Vec<&'static str>,
    pub kind: &'static Kind,
    pub array: Option<usize>,
}

impl Resolved {
    pub fn display(&self) -> String {
        self.segments.join("/")
    }
}

/// Resolves `company/name` (case-insensitively) against `fields`.
pub fn resolve(fields: &'static [Field], path: &str) -> Option<Resolved> {
    let parts: Vec<&str> = path.split('/').collect();
    let direct = resolve_parts(fields, &parts);
    if direct.is_some() {
        return direct;
    }
    // `lastUpdated` is a top-level alias of `_info/lastUpdated`.
    if parts.len() == 1
        && INFO_ALIASES
            .iter()
            .any(|a| a.eq_ignore_ascii_case(parts[0]))
    {
        return resolve_parts(fields, &["_info", parts[0]]);
    }
    None
}

fn resolve_parts(fields: &'static [Field], parts: &[&str]) -> Option<Resolved> {
    let mut segments = Vec::with_capacity(parts.len());
    let mut current: &'static [Field] = fields;
    let mut array = None;
    for (i, part) in parts.iter().enumerate() {
        let f = find(current, part)?;
        segments.push(f.name);
        let last = i + 1 == parts.len();
        match &f.kind {
            Kind::Ref(spec) => {
                if last {
                    return Some(Resolved {
                        segments,
                        kind: &f.kind,
                        array,
                    });
                }
                current = spec.fields;
            }
            Kind::RefList(spec) => {
                if array.is_some() {
                    return None;
                }
                array = Some(i);
                if last {
                    return Some(Resolved {
                        segments,
                        kind: &f.kind,
                        array,
                    });
                }
                current = spec.fields;
            }
            Kind::Objects(sub) => {
                if array.is_some() {
                    return None;
                }
                array = Some(i);
                if last {
                    return Some(Resolved {
                        segments,
                        kind: &f.kind,
                        array,
                    });
                }
                current = sub;
            }
            Kind::Object(sub) => {
                if last {
                    return Some(Resolved {
                        segments,
                        kind: &f.kind,
                        array,
                    });
                }
                current = sub;
            }
            _ => {
                return if last {
                    Some(Resolved {
                        segments,
                        kind: &f.kind,
                        array,
                    })
                } else {
                    None
                };
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    static FIELDS: [Field; 5] = [
        read_only("id", Kind::Int),
        field("firstName", Kind::Str),
        field("company", Kind::Ref(&COMPANY_REF)),
        custom_fields(),
        info(),
    ];

    #[test]
    fn resolves_case_insensitively_and_through_references() {
        let r = resolve(&FIELDS, "Company/Name").map(|r| r.display());
        assert_eq!(r.as_deref(), Some("company/name"));
        let r = resolve(&FIELDS, "LASTUPDATED").map(|r| r.display());
        assert_eq!(r.as_deref(), Some("_info/lastUpdated"));
        let r = resolve(&FIELDS, "_info/lastUpdated").map(|r| r.display());
        assert_eq!(r.as_deref(), Some("_info/lastUpdated"));
        assert!(resolve(&FIELDS, "nope").is_none());
        assert!(resolve(&FIELDS, "firstName/x").is_none());
        let cf = resolve(&FIELDS, "customFields/caption");
        assert_eq!(cf.and_then(|r| r.array), Some(0));
    }
}
