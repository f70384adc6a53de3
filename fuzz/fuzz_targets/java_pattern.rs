//! Java date patterns and values: the first line is a pattern, the rest a value to parse with
//! it. Formatting stays within its bound, and the round-trip check never panics.
#![no_main]

use hubhook_core::{JavaPattern, parse_zone};
use jiff::Timestamp;
use libfuzzer_sys::fuzz_target;

const ZONES: [&str; 5] = ["UTC", "+05:30", "America/New_York", "Australia/Lord_Howe", "PST"];
const INSTANTS: [i64; 4] = [0, 1_547_687_109, -62_135_596_800, 253_402_300_799];

fuzz_target!(|data: &str| {
    let (pattern, value) = data.split_once('\n').unwrap_or((data, ""));
    let Ok(java) = JavaPattern::parse(pattern) else {
        return;
    };
    for (i, zone) in ZONES.iter().enumerate() {
        let Ok(tz) = parse_zone(zone) else { continue };
        let second = INSTANTS[(pattern.len() + i) % INSTANTS.len()];
        let Ok(ts) = Timestamp::from_second(second) else { continue };
        let text = java.format(ts, &tz);
        assert!(text.chars().count() <= java.max_formatted_length(&tz));
        let _ = java.parse_value(&text, &tz);
        let _ = java.parse_value(value, &tz);
        let _ = java.check_round_trip(&tz);
    }
});
