//! Rendered hub URLs, read by core's `HubUrl` and the adapter's `HubQuery`.
#![no_main]

use hubhook_fuzz::hub::HubQuery;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    let _ = hubhook_core::HubUrl::parse(data);
    if let Ok(query) = HubQuery::parse(data, Some(50)) {
        assert!((1..=1000).contains(&query.page_size));
    }
});
