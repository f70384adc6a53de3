//! ConnectWise `Link` headers.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    let _ = hubhook_fuzz::link::next_link(data);
});
