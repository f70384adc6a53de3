//! `system/members`: the staff and API members. The first three are the API
//! members whose keys the simulator accepts (see `auth.rs`); their
//! identifiers appear as `updatedBy` on records they write.

use serde_json::{Value, json};

use super::seed::{SeedCtx, Slots};
use super::{Fields, ResourceDef, pick, str_of};
use crate::prng::SplitMix64;
use crate::schema::{Field, Kind, Map, custom_fields, field, info, read_only, table_ref};

static TIME_ZONES: &[(i64, &str)] = &[
    (1, "Eastern"),
    (2, "Central"),
    (3, "Mountain"),
    (4, "Pacific"),
];
static MEMBER_TYPES: &[(i64, &str)] = &[(1, "Employee"), (2, "API Member")];
static ROLES: &[(i64, &str)] = &[(1, "Admin"), (2, "Technician"), (3, "Sales"), (4, "API")];

static TIME_ZONE_REF: crate::schema::RefSpec = table_ref(
    "timeZoneSetup_href",
    "system/timeZoneSetups/{id}",
    TIME_ZONES,
);
static TYPE_REF: crate::schema::RefSpec =
    table_ref("type_href", "system/members/types/{id}", MEMBER_TYPES);
static ROLE_REF: crate::schema::RefSpec =
    table_ref("securityRole_href", "system/securityRoles/{id}", ROLES);

static FIELDS: &[Field] = &[
    read_only("id", Kind::Int),
    field("identifier", Kind::Str),
    field("firstName", Kind::Str),
    field("lastName", Kind::Str),
    field("title", Kind::Str),
    field("licenseClass", Kind::Str),
    field("inactiveFlag", Kind::Bool),
    field("disableOnlineFlag", Kind::Bool),
    field("officeEmail", Kind::Str),
    field("officePhone", Kind::Str),
    field("primaryEmail", Kind::Str),
    field("defaultEmail", Kind::Str),
    field("dailyCapacity", Kind::Num),
    field("hourlyCost", Kind::Num),
    field("timeZone", Kind::Ref(&TIME_ZONE_REF)),
    field("type", Kind::Ref(&TYPE_REF)),
    field("securityRole", Kind::Ref(&ROLE_REF)),
    field("hireDate", Kind::DateTime),
    field("defaultPhone", Kind::Str),
    field("agreementInvoicingDisplayOptions", Kind::Str),
    field("invoicingDisplayOptions", Kind::Str),
    field("invoiceScreenDefaultTabFormat", Kind::Str),
    custom_fields(),
    info(),
];

pub static DEF: ResourceDef = ResourceDef {
    path: "system/members",
    entity: "member",
    display: "Member",
    callback_type: Some("member"),
    fields: FIELDS,
    required: &["identifier", "firstName", "lastName"],
    unique: &["identifier"],
    soft_delete: false,
    entered_info: false,
    writable: false,
    id_base: 100,
    parent: None,
    info_hrefs,
    defaults,
    reference,
    on_write: super::no_hook,
    validate: super::no_checks,
    seed,
};

/// The API members, in the order of `auth::API_MEMBERS`.
pub static API_MEMBERS: &[(&str, &str, &str)] = &[
    ("apiuser", "API", "User"),
    ("integration", "Integration", "Member"),
    ("readonly", "Read Only", "Member"),
];

fn info_hrefs(id: i64, _rec: &dyn Fields) -> Vec<(&'static str, String)> {
    vec![("image_href", format!("system/members/{id}/image"))]
}

fn defaults(m: &mut impl Fields, _rng: &mut SplitMix64) {
    m.insert("licenseClass", "F".into());
    m.insert("defaultEmail", "Office".into());
    m.insert("defaultPhone", "Office".into());
    m.insert(
        "agreementInvoicingDisplayOptions",
        "RemainOnInvoicingScreen".into(),
    );
    m.insert("invoicingDisplayOptions", "RemainOnInvoicingScreen".into());
    m.insert("invoiceScreenDefaultTabFormat", "ShowInvoicingTab".into());
    m.insert("inactiveFlag", false.into());
    m.insert("disableOnlineFlag", false.into());
    m.insert("customFields", json!([]));
}

fn reference(rec: &dyn Fields) -> Map {
    let mut r = pick(rec, &["id", "identifier"]);
    r.insert(
        "name".into(),
        format!("{} {}", str_of(rec, "firstName"), str_of(rec, "lastName")).into(),
    );
    if let Some(c) = rec.get("dailyCapacity") {
        r.insert("dailyCapacity".into(), c.clone());
    }
    r
}

fn seed(ctx: &mut SeedCtx<'_>, n: usize) {
    let mut out = Vec::with_capacity(n.max(API_MEMBERS.len()));
    for (identifier, first, last) in API_MEMBERS {
        let mut m = Slots::new(FIELDS);
        m.insert("identifier", (*identifier).into());
        m.insert("firstName", (*first).into());
        m.insert("lastName", (*last).into());
        m.insert("licenseClass", "A".into());
        m.insert("inactiveFlag", false.into());
        m.insert("disableOnlineFlag", true.into());
        m.insert("dailyCapacity", json!(0.0));
        m.insert("type", json!({"id": 2, "name": "API Member"}));
        m.insert("securityRole", json!({"id": 4, "name": "API"}));
        m.insert("timeZone", json!({"id": 1, "name": "Eastern"}));
        m.insert("customFields", json!([]));
        out.push(m);
    }
    let mut used: std::collections::HashSet<String> = out
        .iter()
        .map(|m| str_of(m, "identifier").to_string())
        .collect();
    let mut next_k: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    while out.len() < n {
        let first = ctx.first_name();
        let last = ctx.last_name();
        let base: String = format!("{}{}", &first[..1], last)
            .to_lowercase()
            .replace('\'', "");
        let identifier = if used.contains(&base) {
            // The first of base2, base3... not used yet. Trying them from 2 for every member
            // was a sixth of seeding 111,112 members (about 140 per base); `next_k` starts
            // where the last search for this base ended, which gives the same identifier since
            // every suffix below it is taken and `used` only grows.
            let k = next_k.entry(base.clone()).or_insert(2);
            let mut identifier = format!("{base}{k}");
            while used.contains(&identifier) {
                *k += 1;
                identifier = format!("{base}{k}");
            }
            identifier
        } else {
            base
        };
        used.insert(identifier.clone());
        let mut m = Slots::new(FIELDS);
        m.insert("identifier", identifier.clone().into());
        m.insert("firstName", first.into());
        m.insert("lastName", last.into());
        m.insert(
            "title",
            (*ctx.rng.pick(&[
                "Technician",
                "Service Manager",
                "Account Manager",
                "Engineer",
            ]))
            .into(),
        );
        m.insert("licenseClass", "F".into());
        m.insert("inactiveFlag", Value::Bool(ctx.rng.chance(0.05)));
        m.insert("disableOnlineFlag", false.into());
        m.insert(
            "officeEmail",
            format!("{identifier}@demo-msp.example").into(),
        );
        m.insert(
            "primaryEmail",
            format!("{identifier}@demo-msp.example").into(),
        );
        m.insert("defaultEmail", "Office".into());
        m.insert("officePhone", ctx.phone().into());
        m.insert("dailyCapacity", json!(8.0));
        m.insert("hourlyCost", json!(35.0 + ctx.rng.below(40) as f64));
        m.insert(
            "timeZone",
            Value::Object(super::table_entry(TIME_ZONES, ctx.rng)),
        );
        m.insert("type", json!({"id": 1, "name": "Employee"}));
        m.insert(
            "securityRole",
            Value::Object(super::table_entry(&ROLES[..3], ctx.rng)),
        );
        let hired = ctx.epoch - 86_400 * (100 + ctx.rng.below(3000) as i64);
        m.insert(
            "hireDate",
            crate::clock::format_ts(hired - hired.rem_euclid(86_400)).into(),
        );
        m.insert("customFields", json!([]));
        out.push(m);
    }
    for m in &mut out {
        defaults_missing(m);
        let mut info = Map::new();
        let at = ctx.recent();
        info.insert("lastUpdated".into(), crate::clock::format_ts(at).into());
        info.insert("updatedBy".into(), "admin".into());
        m.insert("_info", Value::Object(info));
    }
    for m in out {
        ctx.emit(m);
    }
}

/// Display options every member record carries (pyconnectwise's model
/// requires them).
fn defaults_missing(m: &mut Slots) {
    let mut d = Slots::new(FIELDS);
    defaults(&mut d, &mut SplitMix64::new(0));
    m.fill_missing(d);
}
