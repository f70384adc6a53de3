//! Instance configurations from arbitrary JSON: parsed or refused with field-named errors.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fuzz_target!(|data: &[u8]| {
    if let Ok(configuration) = serde_json::from_slice::<Map<String, Value>>(data) {
        if let Err(errors) = hubhook_core::InstanceConfig::parse(&configuration) {
            assert!(errors.0.iter().all(|error| !error.field.is_empty()));
        }
    }
});
