//! `filter.response.nulls`: Cloud Elements removes null fields from the answers of an element
//! whose instance has this setting on (the default). The adapter does it for every answer, hub
//! calls and poller reads alike, so a record looks the same in a hub answer and in an event.

/// Removes every object member whose value is null, at any depth. Nulls inside arrays are
/// elements, not fields, and are kept. It lives in core, beside the reader that does the same
/// while it reads a record's text ([`hubhook_core::record_text`]).
pub use hubhook_core::record_text::strip_nulls;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn null_fields_go_at_any_depth() {
        let mut value = json!([
            {"id": 1, "nick": null, "stage": {"id": 8, "_info": null},
             "items": [null, {"value": null, "caption": "x"}]},
            null
        ]);
        strip_nulls(&mut value);
        assert_eq!(
            value,
            json!([
                {"id": 1, "stage": {"id": 8}, "items": [null, {"caption": "x"}]},
                null
            ])
        );
    }
}
