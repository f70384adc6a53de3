//! The parsers of `connectwise-sim` and `hubhook-connectwise`, compiled from their own source
//! files, for the fuzz targets.
//!
//! Those crates pull in axum, tokio, reqwest and a TLS stack, which would make the instrumented
//! fuzz build take several minutes on a CI machine. The parser modules themselves need only
//! serde_json, jiff, thiserror, base64 and hubhook-core, so they are included here by path,
//! with the sibling modules they name through `crate::` (the simulator's `clock`, `error` and
//! `schema`; the adapter's `CwError`, `page_token` and `target`). If one of them comes to need
//! more, this build says so.

#![allow(dead_code, unreachable_pub)]

#[path = "../../crates/connectwise-sim/src/clock.rs"]
mod clock;
#[path = "../../crates/connectwise-sim/src/conditions.rs"]
pub mod conditions;
#[path = "../../crates/connectwise-sim/src/error.rs"]
mod error;
#[path = "../../crates/connectwise-sim/src/patch.rs"]
pub mod patch;
#[path = "../../crates/connectwise-sim/src/schema.rs"]
pub mod schema;

#[path = "../../crates/hubhook-connectwise/src/error.rs"]
mod cw_error;
#[path = "../../crates/hubhook-connectwise/src/hub.rs"]
pub mod hub;
#[path = "../../crates/hubhook-connectwise/src/page_token.rs"]
pub mod page_token;
#[path = "../../crates/hubhook-connectwise/src/target.rs"]
pub mod target;

pub use cw_error::CwError;

/// A contact-like schema with every kind of field, and records to evaluate conditions on.
pub mod fixtures {
    use serde_json::{Value, json};

    use crate::schema::{COMPANY_REF, Field, Kind, custom_fields, field, info, read_only};

    static ITEM: [Field; 2] = [
        field("value", Kind::Str),
        field("communicationType", Kind::Str),
    ];

    /// Fields of a contact: scalars, a reference, an array of objects, custom fields, `_info`.
    pub static CONTACT: [Field; 9] = [
        read_only("id", Kind::Int),
        field("firstName", Kind::Str),
        field("inactiveFlag", Kind::Bool),
        field("score", Kind::Num),
        field("birthDay", Kind::DateTime),
        field("company", Kind::Ref(&COMPANY_REF)),
        field("communicationItems", Kind::Objects(&ITEM)),
        custom_fields(),
        info(),
    ];

    /// Records of every shape the evaluator meets, including malformed ones.
    pub fn records() -> Vec<Value> {
        vec![
            json!({"id": 1, "firstName": "Fred [x] %_", "inactiveFlag": false, "score": 1.5,
                   "birthDay": "2000-02-29T00:00:00Z",
                   "company": {"id": 10, "identifier": "Acme", "name": "Acme Inc"},
                   "communicationItems": [{"value": "fred@acme.com", "communicationType": "Email"}],
                   "customFields": [{"id": 1, "caption": "TomNumber", "value": "42"}],
                   "_info": {"lastUpdated": "2026-01-01T00:00:00Z", "updatedBy": "apiuser"}}),
            json!({"id": 2, "firstName": null, "score": "3", "birthDay": "yesterday",
                   "communicationItems": {}, "customFields": [{"value": true}],
                   "_info": {"lastUpdated": 5}}),
            json!({}),
        ]
    }
}
