//! Records read from ConnectWise's text (`hubhook_core::record_text`): the canonical text must
//! be byte for byte what the record's serde_json value writes (nulls removed or kept), and the
//! same inputs must be refused, since stored content hashes were taken over the value's text.
#![no_main]

use hubhook_core::classify::canonical_json;
use hubhook_core::record_text::{read_record, strip_nulls};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &str| {
    for strip in [false, true] {
        let through_value = serde_json::from_str::<Value>(data).map(|mut value| {
            if strip {
                strip_nulls(&mut value);
            }
            canonical_json(&value)
        });
        let read = read_record(data, strip, &[]).map(|(text, _)| text);
        match (read, through_value) {
            (Ok(read), Ok(value)) => assert_eq!(read, value, "strip_nulls {strip}"),
            (Err(_), Err(_)) => {}
            (read, value) => panic!("read {read:?}, through a value {value:?}"),
        }
    }
});
