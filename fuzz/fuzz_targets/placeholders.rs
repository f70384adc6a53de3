//! Poller URL templates: validation implies rendering, and no rendering exceeds its bound.
#![no_main]

use hubhook_core::{max_rendered_length, render_url, validate_template};
use jiff::Timestamp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    let valid = validate_template(data).is_ok();
    let bound = max_rendered_length(data);
    for second in [0, 1_547_687_109, -62_135_596_800] {
        let Ok(since) = Timestamp::from_second(second) else { continue };
        let rendered = render_url(data, since);
        assert!(!valid || rendered.is_ok());
        if let (Ok(url), Ok(bound)) = (&rendered, &bound) {
            assert!(url.chars().count() <= *bound);
        }
    }
});
