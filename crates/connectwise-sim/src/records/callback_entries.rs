//! `system/callbacks`: callback registrations (`CallbackEntry`, SPEC
//! `model_callback_entry.go`; behaviour from the AMP sandbox fixtures):
//! `objectId` 0 becomes 1 for level `owner`, a second registration of the
//! same url/type/level/objectId is `ObjectExists`, `memberId` is the
//! registering API member and `connectWiseID` a server-made GUID.

use serde_json::{Value, json};

use super::{Fields, ResourceDef, pick};
use crate::error::FieldError;
use crate::prng::SplitMix64;
use crate::schema::{Field, Kind, Map, field, info, read_only};
use crate::store::{Stamp, Table};

static FIELDS: &[Field] = &[
    read_only("id", Kind::Int),
    field("description", Kind::Str),
    field("url", Kind::Str),
    field("objectId", Kind::Int),
    field("type", Kind::Str),
    field("level", Kind::Str),
    read_only("memberId", Kind::Int),
    field("payloadVersion", Kind::Str),
    field("inactiveFlag", Kind::Bool),
    field("isSoapCallbackFlag", Kind::Bool),
    field("isSelfSuppressedFlag", Kind::Bool),
    read_only("connectWiseID", Kind::Str),
    info(),
];

pub static DEF: ResourceDef = ResourceDef {
    path: "system/callbacks",
    entity: "callbackEntry",
    display: "CallbackEntry",
    callback_type: None,
    fields: FIELDS,
    required: &["url", "type", "level"],
    unique: &[],
    soft_delete: false,
    entered_info: false,
    writable: true,
    id_base: 26_552,
    parent: None,
    info_hrefs: |_, _| Vec::new(),
    defaults,
    reference: |rec| pick(rec, &["id", "description"]),
    on_write,
    validate,
    seed: |_, _| {},
};

/// Callback types and the levels each accepts (CBDOC head, DG, AMP). Levels
/// other than `owner` narrow deliveries to records whose reference of that
/// name has id `objectId` (or the record itself for the type's own name).
pub static LEVELS: &[(&str, &[&str])] = &[
    (
        "activity",
        &["owner", "status", "type", "company", "activity"],
    ),
    ("agreement", &["owner", "type", "company", "agreement"]),
    (
        "company",
        &["owner", "status", "type", "territory", "company"],
    ),
    (
        "configuration",
        &["owner", "type", "status", "company", "configuration"],
    ),
    ("contact", &["owner", "type", "company", "contact"]),
    ("expense", &["owner", "company", "expense"]),
    ("invoice", &["owner", "company", "invoice"]),
    ("member", &["owner", "member"]),
    (
        "opportunity",
        &["owner", "status", "type", "company", "opportunity"],
    ),
    ("productcatalog", &["owner", "productcatalog"]),
    (
        "project",
        &["owner", "board", "status", "company", "project"],
    ),
    ("purchaseorder", &["owner", "purchaseorder"]),
    ("schedule", &["owner", "schedule"]),
    (
        "ticket",
        &["owner", "board", "status", "type", "company", "ticket"],
    ),
    ("time", &["owner", "company", "member", "time"]),
];

fn defaults(m: &mut impl Fields, rng: &mut SplitMix64) {
    m.insert("objectId", json!(0));
    m.insert("payloadVersion", "3.0.0".into());
    m.insert("inactiveFlag", false.into());
    m.insert("isSoapCallbackFlag", false.into());
    m.insert("isSelfSuppressedFlag", false.into());
    m.insert("connectWiseID", rng.guid().into());
}

fn lower(rec: &mut Map, key: &str) {
    if let Some(Value::String(s)) = rec.get_mut(key) {
        *s = s.to_ascii_lowercase();
    }
}

fn on_write(rec: &mut Map, stamp: &Stamp, previous: Option<&Map>) {
    lower(rec, "type");
    lower(rec, "level");
    if rec.get("level").and_then(Value::as_str) == Some("owner")
        && rec.get("objectId").and_then(Value::as_i64) == Some(0)
    {
        rec.insert("objectId".into(), json!(1));
    }
    match previous.and_then(|p| p.get("memberId")) {
        Some(m) => rec.insert("memberId".into(), m.clone()),
        None => rec.insert("memberId".into(), json!(stamp.member_id)),
    };
}

fn invalid(code: &'static str, field: &str, message: &str) -> FieldError {
    FieldError {
        code,
        message: message.into(),
        field: field.into(),
    }
}

fn validate(rec: &Map, tables: &[Table], self_id: Option<i64>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let get = |k: &str| {
        rec.get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    let url = rec.get("url").and_then(Value::as_str).unwrap_or("");
    let url_ok = url::Url::parse(url)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
    if !url.is_empty() && !url_ok {
        errors.push(invalid("InvalidField", "url", "Invalid URL"));
    }
    let (kind, level) = (get("type"), get("level"));
    match LEVELS.iter().find(|(t, _)| *t == kind) {
        None if !kind.is_empty() => errors.push(invalid(
            "InvalidObject",
            "type",
            "Unrecognized type, see documentation for supported types",
        )),
        Some((_, levels)) if !level.is_empty() && !levels.contains(&level.as_str()) => {
            errors.push(invalid(
                "InvalidObject",
                "level",
                "Unrecognized level for type, see documentation for supported levels for each type",
            ))
        }
        _ => {}
    }
    let object_id = rec.get("objectId").and_then(Value::as_i64).unwrap_or(0);
    let object_id = if level == "owner" && object_id == 0 {
        1
    } else {
        object_id
    };
    if level != "owner" && object_id <= 0 {
        errors.push(invalid(
            "InvalidField",
            "objectId",
            "objectId is required for this level",
        ));
    }
    if errors.is_empty()
        && let Some(table) = super::index_of(DEF.path).and_then(|i| tables.get(i))
    {
        let duplicate = table.records().any(|(id, other)| {
            let s = |k: &str| {
                other
                    .get(k)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_ascii_lowercase()
            };
            Some(id) != self_id
                && s("url") == url.to_ascii_lowercase()
                && s("type") == kind
                && s("level") == level
                && other.get("objectId").and_then(Value::as_i64) == Some(object_id)
        });
        if duplicate {
            errors.push(invalid(
                "ObjectExists",
                "objectId",
                "A matching callback entry already exists",
            ));
        }
    }
    errors
}
