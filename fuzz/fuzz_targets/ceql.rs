//! CEQL `where` clauses: any text is parsed or refused, never a panic; what parses translates.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    if let Ok(expr) = hubhook_core::parse_where(data) {
        let _ = hubhook_core::to_conditions(&expr);
    }
});
