//! JSON Patch bodies applied by the simulator to a stored record.
#![no_main]

use hubhook_fuzz::fixtures::{CONTACT, records};
use hubhook_fuzz::patch::apply;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    if let Ok(ops) = serde_json::from_slice::<Value>(data) {
        for mut record in records() {
            let _ = apply(&mut record, &ops, "contact", &CONTACT);
        }
    }
});
