//! `sales/opportunities` (fields: SPEC Opportunity; shapes: DJCW fixtures).

use serde_json::{Value, json};

use super::seed::{SeedCtx, Slots};
use super::{Fields, ResourceDef, midnight, no_hook, pick, table_entry};
use crate::prng::SplitMix64;
use crate::schema::{
    COMPANY_REF, CONTACT_REF, Field, Kind, MEMBER_REF, RefSpec, custom_fields, field, info,
    read_only, table_ref,
};

static TYPES: &[(i64, &str)] = &[(1, "New Business"), (2, "Existing Client"), (3, "Renewal")];
static STAGES: &[(i64, &str)] = &[
    (1, "1.Prospect"),
    (2, "2.Qualified"),
    (3, "3.Quote"),
    (4, "4.Negotiation"),
    (5, "5.Closed"),
];
static STATUSES: &[(i64, &str)] = &[(1, "Open"), (2, "Won"), (3, "Lost"), (4, "No Decision")];
static PRIORITIES: &[(i64, &str)] = &[(1, "Low"), (2, "Medium"), (3, "High")];
static PROBABILITIES: &[(i64, &str)] = &[(1, "10"), (2, "25"), (3, "50"), (4, "75"), (5, "90")];
static RATINGS: &[(i64, &str)] = &[(1, "Hot"), (2, "Warm"), (3, "Cold")];

static TYPE_REF: RefSpec = table_ref("type_href", "sales/opportunities/types/{id}", TYPES);
static STAGE_REF: RefSpec = table_ref("stage_href", "sales/stages/{id}", STAGES);
static STATUS_REF: RefSpec =
    table_ref("status_href", "sales/opportunities/statuses/{id}", STATUSES);
static PRIORITY_REF: RefSpec = table_ref(
    "priority_href",
    "sales/opportunities/priorities/{id}",
    PRIORITIES,
);
static PROBABILITY_REF: RefSpec = table_ref(
    "probability_href",
    "sales/probabilities/{id}",
    PROBABILITIES,
);
static RATING_REF: RefSpec = table_ref("rating_href", "sales/opportunities/ratings/{id}", RATINGS);

static FIELDS: &[Field] = &[
    read_only("id", Kind::Int),
    field("name", Kind::Str),
    field("expectedCloseDate", Kind::DateTime),
    field("type", Kind::Ref(&TYPE_REF)),
    field("stage", Kind::Ref(&STAGE_REF)),
    field("status", Kind::Ref(&STATUS_REF)),
    field("priority", Kind::Ref(&PRIORITY_REF)),
    field("probability", Kind::Ref(&PROBABILITY_REF)),
    field("rating", Kind::Ref(&RATING_REF)),
    field("notes", Kind::Str),
    field("source", Kind::Str),
    field("primarySalesRep", Kind::Ref(&MEMBER_REF)),
    field("secondarySalesRep", Kind::Ref(&MEMBER_REF)),
    field("company", Kind::Ref(&COMPANY_REF)),
    field("contact", Kind::Ref(&CONTACT_REF)),
    field("customerPO", Kind::Str),
    field("pipelineChangeDate", Kind::DateTime),
    field("dateBecameLead", Kind::DateTime),
    field("closedDate", Kind::DateTime),
    field("closedBy", Kind::Ref(&MEMBER_REF)),
    field("totalSalesTax", Kind::Num),
    field("locationId", Kind::Int),
    field("businessUnitId", Kind::Int),
    custom_fields(),
    info(),
];

pub static DEF: ResourceDef = ResourceDef {
    path: "sales/opportunities",
    entity: "opportunity",
    display: "Opportunity",
    callback_type: Some("opportunity"),
    fields: FIELDS,
    required: &["name", "company", "contact", "primarySalesRep"],
    unique: &[],
    soft_delete: false,
    entered_info: false,
    writable: true,
    id_base: 4_000,
    parent: None,
    info_hrefs: |id, _| {
        vec![
            ("notes_href", format!("sales/opportunities/{id}/notes")),
            (
                "contacts_href",
                format!("sales/opportunities/{id}/contacts"),
            ),
            (
                "forecast_href",
                format!("sales/opportunities/{id}/forecast"),
            ),
            (
                "documents_href",
                format!("system/documents?recordType=Opportunity&recordId={id}"),
            ),
            (
                "activities_href",
                format!("sales/activities?conditions=opportunity/id={id}"),
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
    m.insert("status", json!({"id": 1, "name": "Open"}));
    m.insert("stage", json!({"id": 1, "name": "1.Prospect"}));
    m.insert("totalSalesTax", json!(0.0));
    m.insert("locationId", json!(1));
    m.insert("businessUnitId", json!(1));
    m.insert("customFields", json!([]));
}

fn seed(ctx: &mut SeedCtx<'_>, n: usize) {
    for i in 0..n {
        let mut m = Slots::new(FIELDS);
        defaults(&mut m, ctx.rng);
        let product = *ctx.rng.pick(&[
            "Managed Services",
            "Firewall Refresh",
            "Office 365 Migration",
            "Backup Upgrade",
            "VoIP Rollout",
        ]);
        m.insert("name", format!("{product} #{}", i + 1).into());
        m.insert(
            "expectedCloseDate",
            midnight(ctx.epoch, -(ctx.rng.below(90) as i64)).into(),
        );
        m.insert("type", Value::Object(table_entry(TYPES, ctx.rng)));
        m.insert("stage", Value::Object(table_entry(STAGES, ctx.rng)));
        m.insert("status", Value::Object(table_entry(STATUSES, ctx.rng)));
        m.insert("priority", Value::Object(table_entry(PRIORITIES, ctx.rng)));
        m.insert(
            "probability",
            Value::Object(table_entry(PROBABILITIES, ctx.rng)),
        );
        m.insert("rating", Value::Object(table_entry(RATINGS, ctx.rng)));
        m.insert(
            "source",
            (*ctx.rng.pick(&["Referral", "Website", "Trade Show"])).into(),
        );
        if let Some(rep) = ctx.reference("system/members") {
            m.insert("primarySalesRep", Value::Object(rep));
        }
        if let Some(contact) = ctx.random_record("company/contacts") {
            if let Some(company) = contact.get("/company") {
                m.insert("company", company);
            }
            m.insert("contact", Value::Object(contact.reference()));
        }
        m.insert(
            "dateBecameLead",
            midnight(ctx.epoch, 30 + ctx.rng.below(200) as i64).into(),
        );
        m.insert("_info", Value::Object(ctx.info(false)));
        ctx.emit(m);
    }
}
