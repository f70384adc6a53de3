//! The simulator's `conditions`, `childConditions` and `customFieldConditions`: parsed against a
//! schema, then evaluated on records of every shape.
#![no_main]

use hubhook_fuzz::conditions::{Flavor, parse};
use hubhook_fuzz::fixtures::{CONTACT, records};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    let records = records();
    for flavor in [
        Flavor::Conditions,
        Flavor::ChildConditions,
        Flavor::CustomFieldConditions,
    ] {
        if let Ok(expr) = parse(data, &CONTACT, "contact", flavor) {
            for record in &records {
                let _ = expr.matches(record);
                let _ = expr.matches_child(record);
                let _ = expr.matches_custom(record);
            }
        }
    }
});
