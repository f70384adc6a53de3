//! `time/entries` (shape: the RPETL real sample, reference §3.5): charged to
//! a service ticket of the same company, with top-level dateEntered/enteredBy.

use serde_json::{Value, json};

use super::seed::{SeedCtx, Slots};
use super::{Fields, ResourceDef, pick, table_entry};
use crate::prng::SplitMix64;
use crate::schema::{
    COMPANY_REF, Field, Kind, MEMBER_REF, Map, PROJECT_REF, RefSpec, TICKET_REF, custom_fields,
    field, info, read_only, table_ref,
};
use crate::store::Stamp;

static WORK_TYPES: &[(i64, &str)] = &[(1, "Regular"), (2, "After Hours"), (3, "Travel")];
static WORK_ROLES: &[(i64, &str)] = &[(1, "Engineer"), (2, "Technician"), (3, "Project Manager")];

static WORK_TYPE_REF: RefSpec = table_ref("workType_href", "time/workTypes/{id}", WORK_TYPES);
static WORK_ROLE_REF: RefSpec = table_ref("workRole_href", "time/workRoles/{id}", WORK_ROLES);

static FIELDS: &[Field] = &[
    read_only("id", Kind::Int),
    field("company", Kind::Ref(&COMPANY_REF)),
    field("chargeToId", Kind::Int),
    field("chargeToType", Kind::Str),
    field("member", Kind::Ref(&MEMBER_REF)),
    field("workType", Kind::Ref(&WORK_TYPE_REF)),
    field("workRole", Kind::Ref(&WORK_ROLE_REF)),
    field("ticket", Kind::Ref(&TICKET_REF)),
    field("project", Kind::Ref(&PROJECT_REF)),
    field("timeStart", Kind::DateTime),
    field("timeEnd", Kind::DateTime),
    field("actualHours", Kind::Num),
    field("hoursDeduct", Kind::Num),
    field("billableOption", Kind::Str),
    field("notes", Kind::Str),
    field("internalNotes", Kind::Str),
    field("addToDetailDescriptionFlag", Kind::Bool),
    field("addToInternalAnalysisFlag", Kind::Bool),
    field("addToResolutionFlag", Kind::Bool),
    field("status", Kind::Str),
    field("hourlyRate", Kind::Num),
    read_only("enteredBy", Kind::Str),
    read_only("dateEntered", Kind::DateTime),
    read_only("mobileGuid", Kind::Str),
    custom_fields(),
    info(),
];

pub static DEF: ResourceDef = ResourceDef {
    path: "time/entries",
    entity: "timeEntry",
    display: "TimeEntry",
    callback_type: Some("time"),
    fields: FIELDS,
    required: &["timeStart"],
    unique: &[],
    soft_delete: false,
    entered_info: false,
    writable: true,
    id_base: 1,
    parent: None,
    info_hrefs: |_, _| Vec::new(),
    defaults,
    reference: |rec| pick(rec, &["id"]),
    on_write,
    validate: super::no_checks,
    seed,
};

fn defaults(m: &mut impl Fields, rng: &mut SplitMix64) {
    m.insert("billableOption", "Billable".into());
    m.insert("status", "Open".into());
    m.insert("workType", json!({"id": 1, "name": "Regular"}));
    m.insert("hoursDeduct", json!(0.0));
    m.insert("addToDetailDescriptionFlag", false.into());
    m.insert("addToInternalAnalysisFlag", false.into());
    m.insert("addToResolutionFlag", false.into());
    m.insert("mobileGuid", rng.guid().into());
    m.insert("customFields", json!([]));
}

/// dateEntered/enteredBy on create; actualHours from start and end, as ConnectWise computes it.
fn on_write(rec: &mut Map, stamp: &Stamp, previous: Option<&Map>) {
    match previous {
        None => {
            rec.insert("dateEntered".into(), stamp.now.clone().into());
            rec.insert("enteredBy".into(), stamp.by.clone().into());
        }
        Some(p) => {
            for k in ["dateEntered", "enteredBy"] {
                if let Some(v) = p.get(k) {
                    rec.insert(k.into(), v.clone());
                }
            }
        }
    }
    let at = |k: &str| {
        rec.get(k)
            .and_then(Value::as_str)
            .and_then(crate::clock::parse_stored)
    };
    if let (Some(start), Some(end)) = (at("timeStart"), at("timeEnd"))
        && end >= start
    {
        let hours = ((end - start) as f64 / 3600.0 * 100.0).round() / 100.0;
        rec.insert("actualHours".into(), json!(hours));
    }
    if rec.get("chargeToType").is_none() && rec.get("ticket").is_some() {
        rec.insert("chargeToType".into(), "ServiceTicket".into());
    }
    if rec.get("chargeToId").is_none()
        && let Some(id) = rec.get("ticket").and_then(|t| t.get("id")).cloned()
    {
        rec.insert("chargeToId".into(), id);
    }
}

fn seed(ctx: &mut SeedCtx<'_>, n: usize) {
    for _ in 0..n {
        let mut m = Slots::new(FIELDS);
        defaults(&mut m, ctx.rng);
        if let Some(ticket) = ctx.random_record("service/tickets") {
            if let Some(company) = ticket.get("/company") {
                m.insert("company", company);
            }
            m.insert("chargeToId", ticket.get("/id").unwrap_or(Value::Null));
            m.insert("chargeToType", "ServiceTicket".into());
            m.insert("ticket", Value::Object(ticket.reference()));
        }
        let member = ctx.random_record("system/members");
        if let Some(member) = member {
            m.insert("member", Value::Object(member.reference()));
            if let Some(ident) = member.get("/identifier") {
                m.insert("enteredBy", ident);
            }
        }
        m.insert("workType", Value::Object(table_entry(WORK_TYPES, ctx.rng)));
        m.insert("workRole", Value::Object(table_entry(WORK_ROLES, ctx.rng)));
        let start = ctx.recent();
        let start = start - start.rem_euclid(900);
        let minutes = 15 * (1 + ctx.rng.below(16) as i64);
        m.insert("timeStart", crate::clock::format_ts(start).into());
        m.insert(
            "timeEnd",
            crate::clock::format_ts(start + minutes * 60).into(),
        );
        m.insert("actualHours", json!(minutes as f64 / 60.0));
        m.insert(
            "billableOption",
            (*ctx.rng.pick(&["Billable", "DoNotBill", "NoCharge"])).into(),
        );
        m.insert(
            "notes",
            (*ctx.rng.pick(&[
                "Troubleshooting",
                "Remote support",
                "On-site visit",
                "Follow-up call",
            ]))
            .into(),
        );
        m.insert(
            "status",
            (*ctx.rng.pick(&["Open", "ReadyToBill", "Billed"])).into(),
        );
        m.insert("hourlyRate", json!(125.0));
        let info = ctx.info(false);
        m.insert(
            "dateEntered",
            info.get("lastUpdated").cloned().unwrap_or(Value::Null),
        );
        if m.get("enteredBy").is_none() {
            m.insert(
                "enteredBy",
                info.get("updatedBy").cloned().unwrap_or(Value::Null),
            );
        }
        m.insert("_info", Value::Object(info));
        m.remove_nulls();
        ctx.emit(m);
    }
}
