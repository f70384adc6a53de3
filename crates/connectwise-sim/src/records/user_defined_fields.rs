//! `system/userDefinedFields` (fields: SPEC UserDefinedField; the Cloud Elements `fields`
//! resource of the crm hub, whose payloads carry `podId`, `fieldTypeIdentifier`,
//! `sequenceNumber` and `caption`, reference §4.3).
//!
//! Seeded fields without help text carry `"helpText": null`: ConnectWise answers omit null
//! fields "frequently" (reference §3.1), not always, so clients (and hubhook's
//! `filter.response.nulls`) must meet both forms. Records written through the API omit them.

use serde_json::Value;

use super::seed::{SeedCtx, Slots};
use super::{Fields, ResourceDef, pick};
use crate::prng::SplitMix64;
use crate::schema::{Field, Kind, Map, field, info, read_only};
use crate::store::Stamp;

static FIELDS: &[Field] = &[
    read_only("id", Kind::Int),
    field("podId", Kind::Int),
    field("caption", Kind::Str),
    field("sequenceNumber", Kind::Int),
    field("helpText", Kind::Str),
    field("fieldTypeIdentifier", Kind::Str),
    field("numberOfDecimals", Kind::Int),
    field("entryTypeIdentifier", Kind::Str),
    field("requiredFlag", Kind::Bool),
    field("displayOnScreenFlag", Kind::Bool),
    field("readOnlyFlag", Kind::Bool),
    field("listViewFlag", Kind::Bool),
    read_only("dateCreated", Kind::DateTime),
    info(),
];

pub static DEF: ResourceDef = ResourceDef {
    path: "system/userDefinedFields",
    entity: "userDefinedField",
    display: "UserDefinedField",
    callback_type: None,
    fields: FIELDS,
    required: &["podId", "caption", "fieldTypeIdentifier"],
    unique: &[],
    soft_delete: false,
    entered_info: false,
    writable: true,
    id_base: 40,
    parent: None,
    info_hrefs: |_, _| Vec::new(),
    defaults,
    reference: |rec| pick(rec, &["id", "caption"]),
    on_write,
    validate: super::no_checks,
    seed,
};

fn defaults(m: &mut impl Fields, _rng: &mut SplitMix64) {
    m.insert("sequenceNumber", 1.into());
    m.insert("numberOfDecimals", 0.into());
    m.insert("entryTypeIdentifier", "EntryField".into());
    for flag in [
        "requiredFlag",
        "displayOnScreenFlag",
        "readOnlyFlag",
        "listViewFlag",
    ] {
        m.insert(flag, false.into());
    }
}

fn on_write(rec: &mut Map, stamp: &Stamp, previous: Option<&Map>) {
    let created = previous
        .and_then(|p| p.get("dateCreated").cloned())
        .unwrap_or_else(|| stamp.now.clone().into());
    rec.insert("dateCreated".into(), created);
}

/// (screen id, caption, field type, help text): screens are ConnectWise "pods" (contact,
/// company, ticket).
static SEEDED: &[(i64, &str, &str, Option<&str>)] = &[
    (
        1,
        "Preferred Contact Time",
        "Text",
        Some("Morning or afternoon"),
    ),
    (1, "Newsletter", "Checkbox", None),
    (2, "Account Tier", "Text", Some("Gold, Silver or Bronze")),
    (2, "Contract Renewal", "Date", None),
    (2, "Seats", "Number", None),
    (3, "Dispatch Billing Required", "Checkbox", None),
    (
        3,
        "Root Cause",
        "Text",
        Some("Filled in when the ticket closes"),
    ),
    (3, "Affected Users", "Number", None),
];

/// At most the captions above: user-defined fields are a short list on any real site.
fn seed(ctx: &mut SeedCtx<'_>, n: usize) {
    let seeded: Vec<Slots> = SEEDED
        .iter()
        .take(n)
        .enumerate()
        .map(|(i, (pod, caption, kind, help))| {
            let mut m = Slots::new(FIELDS);
            defaults(&mut m, ctx.rng);
            m.insert("podId", (*pod).into());
            m.insert("caption", (*caption).into());
            m.insert("sequenceNumber", (i as i64 + 1).into());
            m.insert("fieldTypeIdentifier", (*kind).into());
            m.insert("helpText", help.map_or(Value::Null, Value::from));
            m.insert("displayOnScreenFlag", true.into());
            let info = ctx.info(false);
            if let Some(updated) = info.get("lastUpdated") {
                m.insert("dateCreated", updated.clone());
            }
            m.insert("_info", Value::Object(info));
            m
        })
        .collect();
    for m in seeded {
        ctx.emit(m);
    }
}
