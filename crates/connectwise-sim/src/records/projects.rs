//! `project/projects` (fields: SPEC Project; pyconnectwise requires
//! name, billingMethod, estimatedStart and estimatedEnd on every record).

use serde_json::{Value, json};

use super::seed::{SeedCtx, Slots};
use super::{Fields, ResourceDef, midnight, no_hook, pick, table_entry};
use crate::prng::SplitMix64;
use crate::schema::{
    COMPANY_REF, CONTACT_REF, Field, Kind, MEMBER_REF, RefSpec, custom_fields, field, info,
    read_only, table_ref,
};

static BOARDS: &[(i64, &str)] = &[(1, "Projects"), (2, "Onboarding"), (3, "Infrastructure")];
static STATUSES: &[(i64, &str)] = &[
    (1, "Open"),
    (2, "In Progress"),
    (3, "On Hold"),
    (4, "Closed"),
];
static TYPES: &[(i64, &str)] = &[(1, "Fixed Fee"), (2, "Time and Materials"), (3, "Internal")];

static BOARD_REF: RefSpec = table_ref("board_href", "project/boards/{id}", BOARDS);
static STATUS_REF: RefSpec = table_ref("status_href", "project/statuses/{id}", STATUSES);
static TYPE_REF: RefSpec = table_ref("type_href", "project/projectTypes/{id}", TYPES);

static FIELDS: &[Field] = &[
    read_only("id", Kind::Int),
    field("name", Kind::Str),
    field("description", Kind::Str),
    field("board", Kind::Ref(&BOARD_REF)),
    field("status", Kind::Ref(&STATUS_REF)),
    field("type", Kind::Ref(&TYPE_REF)),
    field("company", Kind::Ref(&COMPANY_REF)),
    field("contact", Kind::Ref(&CONTACT_REF)),
    field("manager", Kind::Ref(&MEMBER_REF)),
    field("billingMethod", Kind::Str),
    field("billTime", Kind::Str),
    field("billExpenses", Kind::Str),
    field("billProducts", Kind::Str),
    field("estimatedStart", Kind::DateTime),
    field("estimatedEnd", Kind::DateTime),
    field("scheduledStart", Kind::DateTime),
    field("scheduledEnd", Kind::DateTime),
    field("actualStart", Kind::DateTime),
    field("actualEnd", Kind::DateTime),
    field("budgetHours", Kind::Num),
    field("actualHours", Kind::Num),
    field("estimatedHours", Kind::Num),
    field("percentComplete", Kind::Num),
    field("closedFlag", Kind::Bool),
    field("customerPO", Kind::Str),
    custom_fields(),
    info(),
];

pub static DEF: ResourceDef = ResourceDef {
    path: "project/projects",
    entity: "project",
    display: "Project",
    callback_type: Some("project"),
    fields: FIELDS,
    required: &["name", "board", "company", "estimatedStart", "estimatedEnd"],
    unique: &[],
    soft_delete: false,
    entered_info: true,
    writable: true,
    id_base: 700,
    parent: None,
    info_hrefs: |id, _| {
        vec![
            ("phases_href", format!("project/projects/{id}/phases")),
            ("notes_href", format!("project/projects/{id}/notes")),
            ("contacts_href", format!("project/projects/{id}/contacts")),
            (
                "teamMembers_href",
                format!("project/projects/{id}/teamMembers"),
            ),
            (
                "tickets_href",
                format!("project/tickets?conditions=project/id={id}"),
            ),
            (
                "timeEntries_href",
                format!("time/entries?conditions=project/id={id}"),
            ),
            (
                "documents_href",
                format!("system/documents?recordType=Project&recordId={id}"),
            ),
        ]
    },
    defaults,
    reference: |rec| pick(rec, &["id", "name"]),
    on_write: no_hook,
    validate: super::no_checks,
    seed,
};

fn defaults(m: &mut impl Fields, _rng: &mut SplitMix64) {
    m.insert("board", json!({"id": 1, "name": "Projects"}));
    m.insert("status", json!({"id": 1, "name": "Open"}));
    m.insert("billingMethod", "ActualRates".into());
    m.insert("billTime", "Billable".into());
    m.insert("billExpenses", "Billable".into());
    m.insert("billProducts", "Billable".into());
    m.insert("closedFlag", false.into());
    m.insert("percentComplete", json!(0.0));
    m.insert("customFields", json!([]));
}

fn seed(ctx: &mut SeedCtx<'_>, n: usize) {
    for i in 0..n {
        let mut m = Slots::new(FIELDS);
        defaults(&mut m, ctx.rng);
        let what = *ctx.rng.pick(&[
            "Server Migration",
            "New Office Build-out",
            "Network Refresh",
            "Cloud Onboarding",
        ]);
        m.insert("name", format!("{what} {}", i + 1).into());
        m.insert("description", format!("{what} for the customer").into());
        m.insert("board", Value::Object(table_entry(BOARDS, ctx.rng)));
        let status = table_entry(STATUSES, ctx.rng);
        let closed = status.get("id").and_then(Value::as_i64) == Some(4);
        m.insert("status", Value::Object(status));
        m.insert("closedFlag", Value::Bool(closed));
        m.insert("type", Value::Object(table_entry(TYPES, ctx.rng)));
        if let Some(contact) = ctx.random_record("company/contacts") {
            if let Some(company) = contact.get("/company") {
                m.insert("company", company);
            }
            m.insert("contact", Value::Object(contact.reference()));
        }
        if let Some(manager) = ctx.reference("system/members") {
            m.insert("manager", Value::Object(manager));
        }
        let start = 10 + ctx.rng.below(120) as i64;
        m.insert("estimatedStart", midnight(ctx.epoch, start).into());
        m.insert(
            "estimatedEnd",
            midnight(ctx.epoch, start - 30 - ctx.rng.below(60) as i64).into(),
        );
        m.insert("budgetHours", json!((20 + ctx.rng.below(200)) as f64));
        m.insert("actualHours", json!(ctx.rng.below(150) as f64));
        m.insert("percentComplete", json!(ctx.rng.below(101) as f64));
        m.insert("_info", Value::Object(ctx.info(true)));
        ctx.emit(m);
    }
}
