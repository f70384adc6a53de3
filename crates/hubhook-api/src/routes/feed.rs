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

/// A cursor names its instance: positions are comparable only within one instance's feed
/// (PostgreSQL numbers each instance's events on their own), so another instance's cursor
/// would silently skip events or read them again.
fn encode(instance: i64, position: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("feed:{instance}:{position}"))
}

/// A cursor read: its instance (`None` for a cursor made before cursors named one, taken as
/// the instance's own) and position.
#[derive(Debug, PartialEq)]
struct Cursor {
    instance: Option<i64>,
    position: i64,
}

fn decode(cursor: &str) -> Result<Cursor, ApiError> {
    if cursor.is_empty() {
        return Ok(Cursor {
            instance: None,
            position: 0,
        });
    }
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| {
            let rest = text.strip_prefix("feed:")?;
            let (instance, position) = match rest.split_once(':') {
                Some((instance, position)) => (Some(instance.parse::<i64>().ok()?), position),
                None => (None, rest),
            };
            let position = position.parse::<i64>().ok().filter(|p| *p >= 0)?;
            Some(Cursor { instance, position })
        })
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
    let cursor = decode(cursor)?;
    let limit = Paging::parse(page_size_text.map(|text| ("pageSize", text)))?.page_size;
    let instance = find(state, caller, id).await?;
    if cursor.instance.is_some_and(|of| of != instance.id.0) {
        return Err(ApiError::bad_request(format!(
            "`cursor`: the cursor is of another instance's feed, not of instance {}; send an empty cursor to start this one's",
            instance.id.0
        )));
    }
    let page = state
        .engine
        .store()
        .events_after(instance.id, cursor.position, limit)
        .await?;
    let mut headers = HeaderMap::new();
    // Every page with events says where the next one starts, a short one too: the reader
    // keeps that cursor and never reads an event twice. Only an empty page (the end, for now)
    // has no header; the reader then asks again later with the cursor it has.
    if let Some((last, _)) = page.last()
        && let Ok(value) = HeaderValue::from_str(&encode(instance.id.0, *last))
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
        let at = |instance, position| Cursor { instance, position };
        assert_eq!(decode("").ok(), Some(at(None, 0)));
        assert_eq!(decode(&encode(7, 42)).ok(), Some(at(Some(7), 42)));
        // Made before cursors named their instance.
        assert_eq!(
            decode(&URL_SAFE_NO_PAD.encode("feed:42")).ok(),
            Some(at(None, 42))
        );
        for bad in [
            "42",
            "feed:1",
            &URL_SAFE_NO_PAD.encode("page:3"),
            &URL_SAFE_NO_PAD.encode("feed:-1"),
            &URL_SAFE_NO_PAD.encode("feed:7:-1"),
            &URL_SAFE_NO_PAD.encode("feed:x:1"),
            &URL_SAFE_NO_PAD.encode("feed:7:1:2"),
            &URL_SAFE_NO_PAD.encode("feed::1"),
        ] {
            assert!(decode(bad).is_err(), "{bad}");
        }
    }
}
