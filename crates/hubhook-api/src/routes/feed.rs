//! The pull feed: `GET /instances/{id}/events?cursor=…`, the instance's events in storage
//! order, `pageSize` at a time, with the next cursor in `Elements-Next-Page-Token`.
//!
//! A receiver that was down catches up by reading from its last cursor: positions only grow
//! as events are committed, so every event stored after the cursor is on a later page and
//! nothing already read comes again. Every page with events carries the next cursor (a short
//! page too, so that its events are not read again); an empty page has none: that is the end
//! for now, and the reader keeps the cursor it sent.
//!
//! This module owns only the handler logic ([`events_feed`]); `GET /instances/{id}/events`
//! calls it when the request carries `cursor` (an empty `cursor` starts at the beginning).

use axum::{
    Json,
    http::{HeaderMap, HeaderValue},
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::paging::NEXT_PAGE_HEADER;
use crate::paging::Paging;
use crate::routes::events::{EventOut, events_out};
use crate::routes::instances::find;
use crate::{ApiError, AppState, auth::Caller};

fn encode(position: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("feed:{position}"))
}

fn decode(cursor: &str) -> Result<i64, ApiError> {
    if cursor.is_empty() {
        return Ok(0);
    }
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix("feed:")?.parse::<i64>().ok())
        .filter(|position| *position >= 0)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "`cursor`: `{}` is not a cursor of this feed; send an empty cursor to start, then the `Elements-Next-Page-Token` header's value",
                cursor.escape_debug()
            ))
        })
}

/// One page of the feed for the caller's instance `id` (404 for another organization's), in
/// the events API's shape.
pub async fn events_feed(
    state: &AppState,
    caller: &Caller,
    id: &str,
    cursor: &str,
    page_size_text: Option<&str>,
) -> Result<(HeaderMap, Json<Vec<EventOut>>), ApiError> {
    let after = decode(cursor)?;
    let limit = Paging::parse(page_size_text.map(|text| ("pageSize", text)))?.page_size;
    let instance = find(state, caller, id).await?;
    let page = state
        .engine
        .store()
        .events_after(instance.id, after, limit)
        .await?;
    let mut headers = HeaderMap::new();
    // Every page with events says where the next one starts, a short one too: the reader
    // keeps that cursor and never reads an event twice. Only an empty page (the end, for now)
    // has no header; the reader then asks again later with the cursor it has.
    if let Some((last, _)) = page.last()
        && let Ok(value) = HeaderValue::from_str(&encode(*last))
    {
        headers.insert(NEXT_PAGE_HEADER, value);
    }
    let events = events_out(state, page.into_iter().map(|(_, e)| e).collect()).await?;
    Ok((headers, Json(events)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        assert_eq!(decode("").ok(), Some(0));
        assert_eq!(decode(&encode(42)).ok(), Some(42));
        for bad in [
            "42",
            "feed:1",
            &URL_SAFE_NO_PAD.encode("page:3"),
            &URL_SAFE_NO_PAD.encode("feed:-1"),
        ] {
            assert!(decode(bad).is_err(), "{bad}");
        }
    }
}
