//! `service/tickets` (shape from the real sandbox ticket in reference §3.4)
//! and their notes, `service/tickets/{id}/notes`.

use serde_json::{Value, json};

use super::companies::SITE_REF;
use super::seed::{SUMMARIES, SeedCtx, Slots};
use super::{Fields, ParentSpec, ResourceDef, midnight, pick, table_entry};
use crate::prng::SplitMix64;
use crate::schema::{
    COMPANY_REF, CONTACT_REF, Field, Kind, MEMBER_REF, Map, OPPORTUNITY_REF, RefSpec,
    custom_fields, field, info, read_only, table_ref,
};
use crate::store::Stamp;

pub static BOARDS: &[(i64, &str)] = &[
    (1, "Help Desk"),
    (2, "Network Security"),
    (3, "Professional Services"),
];
pub static STATUSES: &[(i64, &str)] = &[
    (1, "New"),
    (2, "In Progress"),
    (3, "Waiting Customer"),
    (4, "Completed"),
    (5, ">Closed"),
];
static PRIORITIES: &[(i64, &str)] = &[
    (1, "Priority 1 - Emergency Response"),
    (2, "Priority 2 - Quick Response"),
    (3, "Priority 3 - Normal Response"),
    (4, "Priority 4 - Schedule Maintenance"),
];
static TYPES: &[(i64, &str)] = &[
    (1, "Hardware"),
    (2, "Software"),
    (3, "Network"),
    (4, "User Admin"),
];
static TEAMS: &[(i64, &str)] = &[(1, "Tier 1"), (2, "Tier 2"), (3, "Network Security")];
static SOURCES: &[(i64, &str)] = &[(1, "Email Connector"), (2, "Phone"), (3, "Portal")];
static LOCATIONS: &[(i64, &str)] = &[(1, "On-Site"), (2, "Remote"), (3, "In-house")];

static BOARD_REF: RefSpec = table_ref("board_href", "service/boards/{id}", BOARDS);
static STATUS_REF: RefSpec = table_ref(
    "status_href",
    "service/boards/{board}/statuses/{id}",
    STATUSES,
);
static PRIORITY_REF: RefSpec = table_ref("priority_href", "service/priorities/{id}", PRIORITIES);
static TYPE_REF: RefSpec = table_ref("type_href", "service/boards/{board}/types/{id}", TYPES);
static TEAM_REF: RefSpec = table_ref("team_href", "service/boards/{board}/teams/{id}", TEAMS);
static SOURCE_REF: RefSpec = table_ref("source_href", "service/sources/{id}", SOURCES);
static LOCATION_REF: RefSpec = table_ref("location_href", "service/locations/{id}", LOCATIONS);

static FIELDS: &[Field] = &[
    read_only("id", Kind::Int),
    field("summary", Kind::Str),
    field("recordType", Kind::Str),
    field("board", Kind::Ref(&BOARD_REF)),
    field("status", Kind::Ref(&STATUS_REF)),
    field("company", Kind::Ref(&COMPANY_REF)),
    field("site", Kind::Ref(&SITE_REF)),
    field("siteName", Kind::Str),
    field("addressLine1", Kind::Str),
    field("city", Kind::Str),
    field("stateIdentifier", Kind::Str),
    field("zip", Kind::Str),
    field("contact", Kind::Ref(&CONTACT_REF)),
    field("contactName", Kind::Str),
    field("contactPhoneNumber", Kind::Str),
    field("contactEmailAddress", Kind::Str),
    field("type", Kind::Ref(&TYPE_REF)),
    field("team", Kind::Ref(&TEAM_REF)),
    field("owner", Kind::Ref(&MEMBER_REF)),
    field("priority", Kind::Ref(&PRIORITY_REF)),
    field("serviceLocation", Kind::Ref(&LOCATION_REF)),
    field("source", Kind::Ref(&SOURCE_REF)),
    field("opportunity", Kind::Ref(&OPPORTUNITY_REF)),
    field("severity", Kind::Str),
    field("impact", Kind::Str),
    field("closedFlag", Kind::Bool),
    read_only("closedDate", Kind::DateTime),
    read_only("closedBy", Kind::Str),
    field("approved", Kind::Bool),
    field("budgetHours", Kind::Num),
    field("actualHours", Kind::Num),
    field("billingMethod", Kind::Str),
    field("billTime", Kind::Str),
    field("billExpenses", Kind::Str),
    field("billProducts", Kind::Str),
    field("dateResplan", Kind::DateTime),
    field("dateResponded", Kind::DateTime),
    field("requiredDate", Kind::DateTime),
    field("isInSla", Kind::Bool),
    field("resources", Kind::Str),
    field("hasChildTicket", Kind::Bool),
    field("initialDescription", Kind::Str),
    read_only("mobileGuid", Kind::Str),
    custom_fields(),
    info(),
];

pub static DEF: ResourceDef = ResourceDef {
    path: "service/tickets",
    entity: "ticket",
    display: "Ticket",
    callback_type: Some("ticket"),
    fields: FIELDS,
    required: &["summary", "company", "board"],
    unique: &[],
    soft_delete: false,
    entered_info: true,
    writable: true,
    id_base: 945_000,
    parent: None,
    info_hrefs,
    defaults,
    reference,
    on_write,
    validate: super::no_checks,
    seed,
};

fn info_hrefs(id: i64, _rec: &dyn Fields) -> Vec<(&'static str, String)> {
    vec![
        (
            "activities_href",
            format!("sales/activities?conditions=ticket/id={id}"),
        ),
        (
            "scheduleentries_href",
            format!("schedule/entries?conditions=type/id=4 AND objectId={id}"),
        ),
        (
            "documents_href",
            format!("system/documents?recordType=Ticket&recordId={id}"),
        ),
        (
            "configurations_href",
            format!("service/tickets/{id}/configurations"),
        ),
        ("tasks_href", format!("service/tickets/{id}/tasks")),
        ("notes_href", format!("service/tickets/{id}/notes")),
        (
            "products_href",
            format!("procurement/products?conditions=chargeToType='Ticket' AND chargeToId={id}"),
        ),
        (
            "timeentries_href",
            format!(
                "time/entries?conditions=(chargeToType='ServiceTicket' OR chargeToType='ProjectTicket') AND chargeToId={id}"
            ),
        ),
    ]
}

fn defaults(m: &mut impl Fields, rng: &mut SplitMix64) {
    m.insert("recordType", "ServiceTicket".into());
    m.insert("board", json!({"id": 1, "name": "Help Desk"}));
    m.insert("status", json!({"id": 1, "name": "New"}));
    m.insert(
        "priority",
        json!({"id": 3, "name": "Priority 3 - Normal Response"}),
    );
    m.insert("severity", "Medium".into());
    m.insert("impact", "Medium".into());
    m.insert("closedFlag", false.into());
    m.insert("approved", true.into());
    m.insert("billingMethod", "ActualRates".into());
    m.insert("billTime", "NoDefault".into());
    m.insert("billExpenses", "NoDefault".into());
    m.insert("billProducts", "NoDefault".into());
    m.insert("isInSla", true.into());
    m.insert("hasChildTicket", false.into());
    m.insert("mobileGuid", rng.guid().into());
    m.insert("customFields", json!([]));
}

fn reference(rec: &dyn Fields) -> Map {
    pick(rec, &["id", "summary"])
}

/// Closing a ticket stamps closedDate/closedBy; reopening clears them.
fn on_write(rec: &mut Map, stamp: &Stamp, previous: Option<&Map>) {
    let closed = rec
        .get("closedFlag")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let was_closed = previous
        .and_then(|p| p.get("closedFlag"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if closed && !was_closed {
        rec.insert("closedDate".into(), stamp.now.clone().into());
        rec.insert("closedBy".into(), stamp.by.clone().into());
    } else if !closed {
        rec.remove("closedDate");
        rec.remove("closedBy");
    }
}

fn seed(ctx: &mut SeedCtx<'_>, n: usize) {
    for _ in 0..n {
        let mut m = Slots::new(FIELDS);
        defaults(&mut m, ctx.rng);
        m.insert("summary", (*ctx.rng.pick(SUMMARIES)).into());
        let board = table_entry(BOARDS, ctx.rng);
        m.insert("board", Value::Object(board));
        let status = table_entry(STATUSES, ctx.rng);
        let closed = status.get("id").and_then(Value::as_i64) == Some(5);
        m.insert("status", Value::Object(status));
        if let Some(contact) = ctx.random_record("company/contacts") {
            // The ticket's company is the contact's company, so records agree.
            if let Some(company) = contact.get("/company") {
                m.insert("company", company);
            }
            m.insert("contact", Value::Object(contact.reference()));
            m.insert(
                "contactName",
                format!(
                    "{} {}",
                    contact.str("/firstName").unwrap_or(""),
                    contact.str("/lastName").unwrap_or("")
                )
                .into(),
            );
            if let Some(p) = contact.get("/defaultPhoneNbr") {
                m.insert("contactPhoneNumber", p);
            }
            if let Some(e) = contact.get("/communicationItems/0/value") {
                m.insert("contactEmailAddress", e);
            }
        } else if let Some(company) = ctx.reference("company/companies") {
            m.insert("company", Value::Object(company));
        }
        m.insert("site", json!({"id": 1, "name": "Main"}));
        m.insert("siteName", "Main".into());
        m.insert("type", Value::Object(table_entry(TYPES, ctx.rng)));
        m.insert("team", Value::Object(table_entry(TEAMS, ctx.rng)));
        if let Some(owner) = ctx.reference("system/members") {
            m.insert("owner", Value::Object(owner));
        }
        m.insert("priority", Value::Object(table_entry(PRIORITIES, ctx.rng)));
        m.insert(
            "serviceLocation",
            Value::Object(table_entry(LOCATIONS, ctx.rng)),
        );
        m.insert("source", Value::Object(table_entry(SOURCES, ctx.rng)));
        m.insert(
            "severity",
            (*ctx.rng.pick(&["Low", "Medium", "High"])).into(),
        );
        m.insert("impact", (*ctx.rng.pick(&["Low", "Medium", "High"])).into());
        m.insert("budgetHours", json!(ctx.rng.below(8) as f64));
        m.insert("actualHours", json!(ctx.rng.below(16) as f64 / 4.0));
        m.insert(
            "requiredDate",
            midnight(ctx.epoch, -(ctx.rng.below(14) as i64)).into(),
        );
        let info = ctx.info(true);
        let entered = info.get("dateEntered").cloned().unwrap_or(Value::Null);
        m.insert("dateResplan", entered.clone());
        m.insert("dateResponded", entered);
        m.insert("closedFlag", Value::Bool(closed));
        if closed {
            m.insert(
                "closedDate",
                info.get("lastUpdated").cloned().unwrap_or(Value::Null),
            );
            m.insert(
                "closedBy",
                info.get("updatedBy").cloned().unwrap_or(Value::Null),
            );
        }
        m.insert(
            "resources",
            info.get("enteredBy").cloned().unwrap_or(Value::Null),
        );
        m.insert(
            "customFields",
            json!([{"id": 7, "caption": "Dispatch Billing Required", "type": "Text", "entryMethod": "List", "numberOfDecimals": 0}]),
        );
        m.insert("_info", Value::Object(info));
        m.remove_nulls();
        ctx.emit(m);
    }
}

static NOTE_FIELDS: &[Field] = &[
    read_only("id", Kind::Int),
    read_only("ticketId", Kind::Int),
    field("text", Kind::Str),
    field("detailDescriptionFlag", Kind::Bool),
    field("internalAnalysisFlag", Kind::Bool),
    field("resolutionFlag", Kind::Bool),
    field("issueFlag", Kind::Bool),
    field("member", Kind::Ref(&MEMBER_REF)),
    field("contact", Kind::Ref(&CONTACT_REF)),
    field("customerUpdatedFlag", Kind::Bool),
    field("processNotifications", Kind::Bool),
    field("internalFlag", Kind::Bool),
    field("externalFlag", Kind::Bool),
    read_only("dateCreated", Kind::DateTime),
    read_only("createdBy", Kind::Str),
    info(),
];

pub static NOTES: ResourceDef = ResourceDef {
    path: "service/tickets/notes",
    entity: "serviceNote",
    display: "ServiceNote",
    callback_type: None,
    fields: NOTE_FIELDS,
    required: &["text"],
    unique: &[],
    soft_delete: false,
    entered_info: false,
    writable: true,
    id_base: 3_100_000,
    parent: Some(ParentSpec {
        path: "service/tickets",
        field: "ticketId",
        segment: "notes",
    }),
    info_hrefs: |_, _| Vec::new(),
    defaults: note_defaults,
    reference: |rec| pick(rec, &["id"]),
    on_write: note_on_write,
    validate: super::no_checks,
    seed: seed_notes,
};

fn note_defaults(m: &mut impl Fields, _rng: &mut SplitMix64) {
    for flag in [
        "detailDescriptionFlag",
        "internalAnalysisFlag",
        "resolutionFlag",
        "issueFlag",
        "customerUpdatedFlag",
        "processNotifications",
        "internalFlag",
        "externalFlag",
    ] {
        m.insert(flag, false.into());
    }
}

fn note_on_write(rec: &mut Map, stamp: &Stamp, previous: Option<&Map>) {
    match previous {
        None => {
            rec.insert("dateCreated".into(), stamp.now.clone().into());
            rec.insert("createdBy".into(), stamp.by.clone().into());
        }
        Some(p) => {
            for k in ["dateCreated", "createdBy"] {
                if let Some(v) = p.get(k) {
                    rec.insert(k.into(), v.clone());
                }
            }
        }
    }
}

static NOTE_TEXTS: &[&str] = &[
    "Called the customer and left a voicemail.",
    "Remote session established; investigating.",
    "Issue resolved after restarting the service.",
    "Waiting on the vendor for a replacement part.",
    "Customer confirmed the fix.",
];

fn seed_notes(ctx: &mut SeedCtx<'_>, n: usize) {
    for _ in 0..n {
        let Some(ticket) = ctx.random_record("service/tickets") else {
            break;
        };
        let mut m = Slots::new(NOTE_FIELDS);
        note_defaults(&mut m, ctx.rng);
        m.insert("ticketId", ticket.get("/id").unwrap_or(Value::Null));
        m.insert("text", (*ctx.rng.pick(NOTE_TEXTS)).into());
        let kind = *ctx.rng.pick(&[
            "detailDescriptionFlag",
            "internalAnalysisFlag",
            "resolutionFlag",
        ]);
        m.insert(kind, true.into());
        let info = ctx.info(false);
        if let Some(member) = ctx.reference("system/members") {
            m.insert("member", Value::Object(member));
        }
        m.insert(
            "dateCreated",
            info.get("lastUpdated").cloned().unwrap_or(Value::Null),
        );
        m.insert(
            "createdBy",
            info.get("updatedBy").cloned().unwrap_or(Value::Null),
        );
        m.insert("_info", Value::Object(info));
        // Stored in id order per ticket is not required; ids follow generation order.
        ctx.emit(m);
    }
}
