//! Time zone names as configurations write them (`EST`, `America/Denver`, `GMT-08:00`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    let _ = hubhook_core::parse_zone(data);
});
