//! The Cloud Elements `Authorization` header.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    let _ = hubhook_core::parse_authorization(data);
});
