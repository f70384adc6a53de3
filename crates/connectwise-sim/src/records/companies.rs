//! `company/companies`: soft-deleted (`deletedFlag`, `dateDeleted`,
//! `deletedBy`) and still readable after deletion, as DJCW relies on.

use serde_json::{Value, json};

use super::seed::{COMPANY_SUFFIXES, COMPANY_WORDS, SeedCtx, Slots};
use super::{Fields, ResourceDef, pick, table_entry};
use crate::prng::SplitMix64;
use crate::schema::{
    CONTACT_REF, Field, Kind, Map, RefSpec, custom_fields, field, info, read_only, table_ref,
};

pub static STATUSES: &[(i64, &str)] = &[
    (1, "Active"),
    (2, "Inactive"),
    (3, "Not-Approved"),
    (4, "Delinquent"),
];
pub static TYPES: &[(i64, &str)] = &[
    (1, "Client"),
    (2, "Prospect"),
    (3, "Vendor"),
    (4, "Partner"),
    (5, "Competitor"),
];
pub static COUNTRIES: &[(i64, &str)] = &[
    (1, "United States"),
    (2, "Canada"),
    (3, "United Kingdom"),
    (4, "Australia"),
];
static TERRITORIES: &[(i64, &str)] = &[(1, "Main"), (2, "East"), (3, "West")];
static MARKETS: &[(i64, &str)] = &[
    (1, "Healthcare"),
    (2, "Legal"),
    (3, "Manufacturing"),
    (4, "Retail"),
    (5, "Finance"),
];
pub static SITES: &[(i64, &str)] = &[(1, "Main"), (2, "Branch Office"), (3, "Warehouse")];

static STATUS_REF: RefSpec = table_ref("status_href", "company/companies/statuses/{id}", STATUSES);
static TYPE_REF: RefSpec = table_ref("type_href", "company/companies/types/{id}", TYPES);
pub static COUNTRY_REF: RefSpec = table_ref("country_href", "company/countries/{id}", COUNTRIES);
static TERRITORY_REF: RefSpec = table_ref("location_href", "system/locations/{id}", TERRITORIES);
static MARKET_REF: RefSpec = table_ref("market_href", "company/marketDescriptions/{id}", MARKETS);
pub static SITE_REF: RefSpec =
    table_ref("site_href", "company/companies/{company}/sites/{id}", SITES);

static FIELDS: &[Field] = &[
    read_only("id", Kind::Int),
    field("identifier", Kind::Str),
    field("name", Kind::Str),
    field("status", Kind::Ref(&STATUS_REF)),
    field("types", Kind::RefList(&TYPE_REF)),
    field("addressLine1", Kind::Str),
    field("addressLine2", Kind::Str),
    field("city", Kind::Str),
    field("state", Kind::Str),
    field("zip", Kind::Str),
    field("country", Kind::Ref(&COUNTRY_REF)),
    field("phoneNumber", Kind::Str),
    field("faxNumber", Kind::Str),
    field("website", Kind::Str),
    field("territory", Kind::Ref(&TERRITORY_REF)),
    field("market", Kind::Ref(&MARKET_REF)),
    field("accountNumber", Kind::Str),
    field("defaultContact", Kind::Ref(&CONTACT_REF)),
    field("dateAcquired", Kind::DateTime),
    field("annualRevenue", Kind::Num),
    field("numberOfEmployees", Kind::Int),
    field("leadFlag", Kind::Bool),
    field("unsubscribeFlag", Kind::Bool),
    field("invoiceToEmailAddress", Kind::Str),
    read_only("deletedFlag", Kind::Bool),
    read_only("dateDeleted", Kind::DateTime),
    read_only("deletedBy", Kind::Str),
    read_only("mobileGuid", Kind::Str),
    custom_fields(),
    info(),
];

pub static DEF: ResourceDef = ResourceDef {
    path: "company/companies",
    entity: "company",
    display: "Company",
    callback_type: Some("company"),
    fields: FIELDS,
    required: &["identifier", "name"],
    unique: &["identifier"],
    soft_delete: true,
    entered_info: true,
    writable: true,
    id_base: 250,
    parent: None,
    info_hrefs,
    defaults,
    reference,
    on_write: super::no_hook,
    validate: super::no_checks,
    seed,
};

fn info_hrefs(id: i64, _rec: &dyn Fields) -> Vec<(&'static str, String)> {
    vec![
        (
            "contacts_href",
            format!("company/contacts?conditions=company/id={id}"),
        ),
        (
            "agreements_href",
            format!("finance/agreements?conditions=company/id={id}"),
        ),
        (
            "tickets_href",
            format!("service/tickets?conditions=company/id={id}"),
        ),
        (
            "opportunities_href",
            format!("sales/opportunities?conditions=company/id={id}"),
        ),
        (
            "activities_href",
            format!("sales/activities?conditions=company/id={id}"),
        ),
        (
            "projects_href",
            format!("project/projects?conditions=company/id={id}"),
        ),
        (
            "configurations_href",
            format!("company/configurations?conditions=company/id={id}"),
        ),
        (
            "orders_href",
            format!("sales/orders?conditions=company/id={id}"),
        ),
        (
            "documents_href",
            format!("system/documents?recordType=Company&recordId={id}"),
        ),
        ("sites_href", format!("company/companies/{id}/sites")),
        ("teams_href", format!("company/companies/{id}/teams")),
        (
            "reports_href",
            format!("company/companies/{id}/managementSummaryReports"),
        ),
        ("notes_href", format!("company/companies/{id}/notes")),
    ]
}

fn defaults(m: &mut impl Fields, rng: &mut SplitMix64) {
    m.insert("status", json!({"id": 1, "name": "Active"}));
    m.insert("types", json!([]));
    m.insert("leadFlag", false.into());
    m.insert("unsubscribeFlag", false.into());
    m.insert("deletedFlag", false.into());
    m.insert("mobileGuid", rng.guid().into());
    m.insert("customFields", json!([]));
}

fn reference(rec: &dyn Fields) -> Map {
    pick(rec, &["id", "identifier", "name"])
}

fn seed(ctx: &mut SeedCtx<'_>, n: usize) {
    for i in 0..n {
        let word = *ctx.rng.pick(COMPANY_WORDS);
        let suffix = *ctx.rng.pick(COMPANY_SUFFIXES);
        let name = if i < COMPANY_WORDS.len() {
            format!("{word} {suffix}")
        } else {
            format!("{word} {suffix} {}", i + 1)
        };
        // Identifiers are unique, like ConnectWise enforces.
        let identifier: String = format!("{}{}", word.replace(' ', ""), i + 1);
        let (city, state, zip) = ctx.city();
        let mut m = Slots::new(FIELDS);
        m.insert("identifier", identifier.clone().into());
        m.insert("name", name.into());
        let status = if ctx.rng.chance(0.9) {
            (1, "Active")
        } else {
            *ctx.rng.pick(&STATUSES[1..])
        };
        m.insert("status", json!({"id": status.0, "name": status.1}));
        m.insert(
            "types",
            Value::Array(vec![Value::Object(table_entry(&TYPES[..4], ctx.rng))]),
        );
        m.insert(
            "addressLine1",
            format!("{} Main Street", 100 + ctx.rng.below(9000)).into(),
        );
        m.insert("city", city.into());
        m.insert("state", state.into());
        m.insert("zip", zip.into());
        m.insert("country", json!({"id": 1, "name": "United States"}));
        m.insert("phoneNumber", ctx.phone().into());
        m.insert(
            "website",
            format!("www.{}.example", identifier.to_lowercase()).into(),
        );
        m.insert(
            "territory",
            Value::Object(table_entry(TERRITORIES, ctx.rng)),
        );
        m.insert("market", Value::Object(table_entry(MARKETS, ctx.rng)));
        m.insert(
            "accountNumber",
            format!("A{:06}", ctx.rng.below(1_000_000)).into(),
        );
        let acquired = ctx.epoch - 86_400 * (30 + ctx.rng.below(3650) as i64);
        m.insert(
            "dateAcquired",
            crate::clock::format_ts(acquired - acquired.rem_euclid(86_400)).into(),
        );
        m.insert("annualRevenue", json!((ctx.rng.below(500) * 10_000) as f64));
        m.insert("numberOfEmployees", json!(1 + ctx.rng.below(500)));
        m.insert("leadFlag", false.into());
        m.insert("unsubscribeFlag", false.into());
        m.insert("deletedFlag", false.into());
        m.insert("mobileGuid", ctx.rng.guid().into());
        m.insert(
            "customFields",
            json!([{"id": 1, "caption": "Contract Tier", "type": "Text", "entryMethod": "List", "numberOfDecimals": 0,
                    "value": *ctx.rng.pick(&["Gold", "Silver", "Bronze"])}]),
        );
        m.insert("_info", Value::Object(ctx.info(true)));
        ctx.emit(m);
    }
}

/// Each company points at one of its contacts as `defaultContact`, as real companies do:
/// `contact` is the reference of its first contact. A company that already has one keeps it.
pub fn link_default_contact(company: &mut impl Fields, contact: Map) {
    if company.get("defaultContact").is_none() {
        company.insert("defaultContact", Value::Object(contact));
    }
}
