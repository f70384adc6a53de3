//! `sales/activities` (fields: SPEC Activity; `_info` per DJCW fixtures).

use serde_json::{Value, json};

use super::seed::{SeedCtx, Slots};
use super::{Fields, ResourceDef, no_hook, pick, table_entry};
use crate::prng::SplitMix64;
use crate::schema::{
    COMPANY_REF, CONTACT_REF, Field, Kind, MEMBER_REF, OPPORTUNITY_REF, RefSpec, TICKET_REF,
    custom_fields, field, info, read_only, table_ref,
};

static TYPES: &[(i64, &str)] = &[(1, "Call"), (2, "Email"), (3, "Meeting"), (4, "Task")];
static STATUSES: &[(i64, &str)] = &[(1, "Open"), (2, "Closed"), (3, "Cancelled")];

static TYPE_REF: RefSpec = table_ref("type_href", "sales/activities/types/{id}", TYPES);
static STATUS_REF: RefSpec = table_ref("status_href", "sales/activities/statuses/{id}", STATUSES);

static FIELDS: &[Field] = &[
    read_only("id", Kind::Int),
    field("name", Kind::Str),
    field("type", Kind::Ref(&TYPE_REF)),
    field("status", Kind::Ref(&STATUS_REF)),
    field("company", Kind::Ref(&COMPANY_REF)),
    field("contact", Kind::Ref(&CONTACT_REF)),
    field("phoneNumber", Kind::Str),
    field("email", Kind::Str),
    field("opportunity", Kind::Ref(&OPPORTUNITY_REF)),
    field("ticket", Kind::Ref(&TICKET_REF)),
    field("notes", Kind::Str),
    field("dateStart", Kind::DateTime),
    field("dateEnd", Kind::DateTime),
    field("assignedBy", Kind::Ref(&MEMBER_REF)),
    field("assignTo", Kind::Ref(&MEMBER_REF)),
    field("notifyFlag", Kind::Bool),
    read_only("mobileGuid", Kind::Str),
    custom_fields(),
    info(),
];

pub static DEF: ResourceDef = ResourceDef {
    path: "sales/activities",
    entity: "activity",
    display: "Activity",
    callback_type: Some("activity"),
    fields: FIELDS,
    required: &["name", "assignTo"],
    unique: &[],
    soft_delete: false,
    entered_info: true,
    writable: true,
    id_base: 12_000,
    parent: None,
    info_hrefs: |id, _| {
        vec![(
            "documents_href",
            format!("system/documents?recordType=Activity&recordId={id}"),
        )]
    },
    defaults,
    reference: |rec| pick(rec, &["id", "name"]),
    on_write: no_hook,
    validate: super::no_checks,
    seed,
};

fn defaults(m: &mut impl Fields, rng: &mut SplitMix64) {
    m.insert("status", json!({"id": 1, "name": "Open"}));
    m.insert("notifyFlag", false.into());
    m.insert("mobileGuid", rng.guid().into());
    m.insert("customFields", json!([]));
}

fn seed(ctx: &mut SeedCtx<'_>, n: usize) {
    for _ in 0..n {
        let mut m = Slots::new(FIELDS);
        defaults(&mut m, ctx.rng);
        let kind = table_entry(TYPES, ctx.rng);
        let verb = kind
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("Call")
            .to_string();
        m.insert("type", Value::Object(kind));
        m.insert("status", Value::Object(table_entry(STATUSES, ctx.rng)));
        if let Some(contact) = ctx.random_record("company/contacts") {
            if let Some(company) = contact.get("/company") {
                m.insert("company", company);
            }
            let contact_ref = contact.reference();
            let who = contact_ref
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            m.insert("name", format!("{verb} with {who}").into());
            m.insert("contact", Value::Object(contact_ref));
            if let Some(p) = contact.get("/defaultPhoneNbr") {
                m.insert("phoneNumber", p);
            }
        } else {
            m.insert("name", verb.into());
        }
        if ctx.rng.chance(0.3)
            && let Some(opp) = ctx.reference("sales/opportunities")
        {
            m.insert("opportunity", Value::Object(opp));
        }
        let start = ctx.recent();
        m.insert("dateStart", crate::clock::format_ts(start).into());
        m.insert("dateEnd", crate::clock::format_ts(start + 1800).into());
        if let Some(by) = ctx.reference("system/members") {
            m.insert("assignedBy", Value::Object(by));
        }
        if let Some(to) = ctx.reference("system/members") {
            m.insert("assignTo", Value::Object(to));
        }
        m.insert("_info", Value::Object(ctx.info(true)));
        ctx.emit(m);
    }
}
