//! `service/boards` (fields: SPEC Board, trimmed to the common ones): the service boards that
//! tickets reference. Read-only here, and always the boards of `tickets::BOARDS` with their
//! ids, whatever `--records` says, so that every ticket's `board` is a board this resource
//! serves.

use serde_json::json;

use super::seed::{SeedCtx, Slots};
use super::tickets::BOARDS;
use super::{Fields, ResourceDef, no_hook, pick};
use crate::prng::SplitMix64;
use crate::schema::{Field, Kind, RefSpec, field, info, read_only, table_ref};

static LOCATIONS: &[(i64, &str)] = &[(1, "Main Office"), (2, "Branch Office")];
static DEPARTMENTS: &[(i64, &str)] = &[(1, "Services"), (2, "Projects")];

static LOCATION_REF: RefSpec = table_ref("location_href", "system/locations/{id}", LOCATIONS);
static DEPARTMENT_REF: RefSpec =
    table_ref("department_href", "system/departments/{id}", DEPARTMENTS);

static FIELDS: &[Field] = &[
    read_only("id", Kind::Int),
    field("name", Kind::Str),
    field("location", Kind::Ref(&LOCATION_REF)),
    field("department", Kind::Ref(&DEPARTMENT_REF)),
    field("inactiveFlag", Kind::Bool),
    field("projectFlag", Kind::Bool),
    field("signOffTemplate", Kind::Str),
    info(),
];

pub static DEF: ResourceDef = ResourceDef {
    path: "service/boards",
    entity: "board",
    display: "Board",
    callback_type: None,
    fields: FIELDS,
    required: &["name", "location", "department"],
    unique: &["name"],
    soft_delete: false,
    entered_info: false,
    writable: false,
    id_base: 1,
    parent: None,
    info_hrefs: |id, _| {
        vec![
            ("statuses_href", format!("service/boards/{id}/statuses")),
            ("types_href", format!("service/boards/{id}/types")),
            ("teams_href", format!("service/boards/{id}/teams")),
        ]
    },
    defaults,
    reference: |rec| pick(rec, &["id", "name"]),
    on_write: no_hook,
    validate: super::no_checks,
    seed,
};

fn defaults(m: &mut impl Fields, _rng: &mut SplitMix64) {
    m.insert("inactiveFlag", false.into());
    m.insert("projectFlag", false.into());
    m.insert("signOffTemplate", "Standard".into());
}

fn seed(ctx: &mut SeedCtx<'_>, _n: usize) {
    let seeded: Vec<Slots> = BOARDS
        .iter()
        .enumerate()
        .map(|(i, (_, name))| {
            let mut m = Slots::new(FIELDS);
            defaults(&mut m, ctx.rng);
            m.insert("name", (*name).into());
            let (location, department) = (LOCATIONS[i % 2], DEPARTMENTS[i % 2]);
            m.insert("location", json!({"id": location.0, "name": location.1}));
            m.insert(
                "department",
                json!({"id": department.0, "name": department.1}),
            );
            m.insert("_info", serde_json::Value::Object(ctx.info(false)));
            m
        })
        .collect();
    for m in seeded {
        ctx.emit(m);
    }
}
