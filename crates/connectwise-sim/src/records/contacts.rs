//! `company/contacts`, shaped like the sandbox payloads in the reference
//! (§3.2): company reference, communication items, types, custom fields and
//! the `_info` links of a real contact.

use serde_json::{Value, json};

use super::companies::{COUNTRY_REF, SITE_REF};
use super::seed::{SeedCtx, Slots, TITLES};
use super::{Fields, ResourceDef, pick, str_of};
use crate::prng::SplitMix64;
use crate::schema::{
    COMPANY_REF, Field, Kind, Map, RefSpec, custom_fields, field, info, read_only, table_ref,
};

static COMMUNICATION_TYPES: &[(i64, &str)] = &[
    (1, "Email"),
    (2, "Direct"),
    (3, "Cell"),
    (4, "Fax"),
    (5, "Home"),
];
static CONTACT_TYPES: &[(i64, &str)] = &[
    (1, "Decision Maker"),
    (2, "Billing"),
    (3, "Technical"),
    (4, "End User"),
];
static RELATIONSHIPS: &[(i64, &str)] = &[(1, "Employee"), (2, "Owner"), (3, "Consultant")];
static DEPARTMENTS: &[(i64, &str)] = &[
    (1, "Accounting"),
    (2, "IT"),
    (3, "Operations"),
    (4, "Sales"),
];

static COMMUNICATION_TYPE_REF: RefSpec = table_ref(
    "type_href",
    "company/communicationTypes/{id}",
    COMMUNICATION_TYPES,
);
static CONTACT_TYPE_REF: RefSpec =
    table_ref("type_href", "company/contacts/types/{id}", CONTACT_TYPES);
static RELATIONSHIP_REF: RefSpec = table_ref(
    "relationship_href",
    "company/contacts/relationships/{id}",
    RELATIONSHIPS,
);
static DEPARTMENT_REF: RefSpec = table_ref(
    "department_href",
    "company/contacts/departments/{id}",
    DEPARTMENTS,
);

static COMMUNICATION_ITEM: &[Field] = &[
    field("id", Kind::Int),
    field("type", Kind::Ref(&COMMUNICATION_TYPE_REF)),
    field("value", Kind::Str),
    field("extension", Kind::Str),
    field("defaultFlag", Kind::Bool),
    field("domain", Kind::Str),
    field("communicationType", Kind::Str),
];

static FIELDS: &[Field] = &[
    read_only("id", Kind::Int),
    field("firstName", Kind::Str),
    field("lastName", Kind::Str),
    field("company", Kind::Ref(&COMPANY_REF)),
    field("site", Kind::Ref(&SITE_REF)),
    field("addressLine1", Kind::Str),
    field("addressLine2", Kind::Str),
    field("city", Kind::Str),
    field("state", Kind::Str),
    field("zip", Kind::Str),
    field("country", Kind::Ref(&COUNTRY_REF)),
    field("relationship", Kind::Ref(&RELATIONSHIP_REF)),
    field("department", Kind::Ref(&DEPARTMENT_REF)),
    field("inactiveFlag", Kind::Bool),
    field("title", Kind::Str),
    field("nickName", Kind::Str),
    field("marriedFlag", Kind::Bool),
    field("childrenFlag", Kind::Bool),
    field("portalSecurityLevel", Kind::Int),
    field("disablePortalLoginFlag", Kind::Bool),
    field("unsubscribeFlag", Kind::Bool),
    field("gender", Kind::Str),
    field("birthDay", Kind::DateTime),
    field("presence", Kind::Str),
    read_only("mobileGuid", Kind::Str),
    field("defaultPhoneType", Kind::Str),
    field("defaultPhoneNbr", Kind::Str),
    field("defaultPhoneExtension", Kind::Str),
    field("defaultBillingFlag", Kind::Bool),
    field("defaultFlag", Kind::Bool),
    field("communicationItems", Kind::Objects(COMMUNICATION_ITEM)),
    field("types", Kind::RefList(&CONTACT_TYPE_REF)),
    custom_fields(),
    info(),
];

pub static DEF: ResourceDef = ResourceDef {
    path: "company/contacts",
    entity: "contact",
    display: "Contact",
    callback_type: Some("contact"),
    fields: FIELDS,
    required: &["firstName"],
    unique: &[],
    soft_delete: false,
    entered_info: false,
    writable: true,
    id_base: 57_000,
    parent: None,
    info_hrefs,
    defaults,
    reference,
    on_write: super::no_hook,
    validate: super::no_checks,
    seed,
};

fn info_hrefs(id: i64, rec: &dyn Fields) -> Vec<(&'static str, String)> {
    let modified = rec
        .get("_info")
        .and_then(|i| i.get("lastUpdated"))
        .and_then(Value::as_str)
        .unwrap_or("");
    vec![
        (
            "communications_href",
            format!("company/contacts/{id}/communications"),
        ),
        ("notes_href", format!("company/contacts/{id}/notes")),
        ("tracks_href", format!("company/contacts/{id}/tracks")),
        (
            "portalSecurity_href",
            format!("company/contacts/{id}/portalSecurity"),
        ),
        (
            "activities_href",
            format!("sales/activities?conditions=contact/id={id}"),
        ),
        (
            "documents_href",
            format!("system/documents?recordType=Contact&recordId={id}"),
        ),
        (
            "configurations_href",
            format!("company/configurations?conditions=contact/id={id}"),
        ),
        (
            "tickets_href",
            format!("service/tickets?conditions=contact/id={id}"),
        ),
        (
            "opportunities_href",
            format!("sales/opportunities?conditions=contact/id={id}"),
        ),
        (
            "projects_href",
            format!("project/projects?conditions=contact/id={id}"),
        ),
        (
            "image_href",
            format!("company/contacts/{id}/image?lastModified={modified}"),
        ),
    ]
}

fn defaults(m: &mut impl Fields, rng: &mut SplitMix64) {
    for flag in [
        "inactiveFlag",
        "marriedFlag",
        "childrenFlag",
        "disablePortalLoginFlag",
        "unsubscribeFlag",
        "defaultBillingFlag",
        "defaultFlag",
    ] {
        m.insert(flag, false.into());
    }
    m.insert("mobileGuid", rng.guid().into());
    m.insert("communicationItems", json!([]));
    m.insert("types", json!([]));
    m.insert("customFields", json!([]));
}

fn reference(rec: &dyn Fields) -> Map {
    let mut r = pick(rec, &["id"]);
    let name = format!("{} {}", str_of(rec, "firstName"), str_of(rec, "lastName"));
    r.insert("name".into(), name.trim().to_string().into());
    r
}

fn seed(ctx: &mut SeedCtx<'_>, n: usize) {
    for _ in 0..n {
        let first = ctx.first_name();
        let last = ctx.last_name();
        let company = ctx.random_record("company/companies");
        let mut m = Slots::new(FIELDS);
        m.insert("firstName", first.into());
        m.insert("lastName", last.into());
        let domain = match company {
            Some(c) => {
                m.insert("company", Value::Object(c.reference()));
                for (k, pointer) in [
                    ("addressLine1", "/addressLine1"),
                    ("city", "/city"),
                    ("state", "/state"),
                    ("zip", "/zip"),
                    ("country", "/country"),
                ] {
                    if let Some(v) = c.get(pointer) {
                        m.insert(k, v);
                    }
                }
                format!(
                    "{}.example",
                    c.str("/identifier").unwrap_or("").to_lowercase()
                )
            }
            None => "example.com".to_string(),
        };
        m.insert("site", json!({"id": 1, "name": "Main"}));
        m.insert(
            "relationship",
            Value::Object(super::table_entry(RELATIONSHIPS, ctx.rng)),
        );
        m.insert(
            "department",
            Value::Object(super::table_entry(DEPARTMENTS, ctx.rng)),
        );
        m.insert("inactiveFlag", Value::Bool(ctx.rng.chance(0.1)));
        if ctx.rng.chance(0.8) {
            m.insert("title", (*ctx.rng.pick(TITLES)).into());
        }
        m.insert("marriedFlag", Value::Bool(ctx.rng.chance(0.5)));
        m.insert("childrenFlag", Value::Bool(ctx.rng.chance(0.4)));
        m.insert("portalSecurityLevel", json!(1 + ctx.rng.below(6)));
        m.insert("disablePortalLoginFlag", Value::Bool(ctx.rng.chance(0.7)));
        m.insert("unsubscribeFlag", false.into());
        m.insert("gender", (*ctx.rng.pick(&["Male", "Female"])).into());
        m.insert("presence", "NoAgent".into());
        m.insert("mobileGuid", ctx.rng.guid().into());
        let phone = ctx.phone();
        m.insert("defaultPhoneType", "Direct".into());
        m.insert("defaultPhoneNbr", phone.clone().into());
        m.insert("defaultBillingFlag", false.into());
        m.insert("defaultFlag", Value::Bool(ctx.rng.chance(0.2)));
        let email = format!(
            "{}.{}@{domain}",
            first.to_lowercase(),
            last.to_lowercase().replace('\'', "")
        );
        let (email_id, phone_id) = (ctx.next_child_id(), ctx.next_child_id());
        m.insert(
            "communicationItems",
            json!([
                {"id": email_id, "type": {"id": 1, "name": "Email"}, "value": email, "defaultFlag": true,
                 "domain": format!("@{domain}"), "communicationType": "Email"},
                {"id": phone_id, "type": {"id": 2, "name": "Direct"}, "value": phone, "defaultFlag": true,
                 "communicationType": "Phone"},
            ]),
        );
        m.insert(
            "types",
            Value::Array(vec![Value::Object(super::table_entry(
                CONTACT_TYPES,
                ctx.rng,
            ))]),
        );
        let mut custom = json!({"id": 2, "caption": "Preferred Contact Time", "type": "Text", "entryMethod": "EntryField",
                                "numberOfDecimals": 0});
        if ctx.rng.chance(0.5) {
            custom["value"] = (*ctx.rng.pick(&["Morning", "Afternoon", "Evening"])).into();
        }
        m.insert("customFields", Value::Array(vec![custom]));
        m.insert("_info", Value::Object(ctx.info(false)));
        ctx.emit(m);
    }
}
