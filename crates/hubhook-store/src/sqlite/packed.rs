//! The big JSON columns of the SQLite store, compressed: `known_objects.record`,
//! `events.record` and `notifications.body`.
//!
//! A change is kept three times: the record's latest version (to tell what changed next
//! time), the event (what was announced), and the notification body (the bytes every attempt
//! sends, ten events to a body). Stored as text that is about 2.7 times the record per event
//! (issue #10's storage figure), and writing it is most of what a poll's commit costs. JSON
//! of records compresses several times over, so the three columns hold zstd frames (level 1:
//! the fastest, which still takes most of the size away), made by the caller before its write
//! reaches the single writer, so the writer's thread only copies bytes.
//!
//! Rows written before compression hold text, and SQLite keeps whatever type a value was
//! stored with, so a value is read as bytes and unpacked only when it starts with the zstd
//! frame's magic number: `28 B5 2F FD` cannot begin UTF-8 text (0xB5 is a continuation byte),
//! so the two can never be mistaken for each other. Nothing else reads these columns in SQL.
//!
//! PostgreSQL needs none of this: it compresses values this large itself (TOAST).

use std::cell::RefCell;

use sqlx::Row as _;
use sqlx::sqlite::SqliteRow;
use zstd::bulk::{Compressor, Decompressor};

use crate::{Result, StoreError};

/// zstd's frame magic number, little-endian on disk.
const MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// zstd level 1: the fastest of the standard levels.
const LEVEL: i32 = 1;

/// The largest text a frame may claim to hold before it is unpacked in one piece; larger (or
/// unknown) sizes are streamed, so a corrupt header cannot make us allocate gigabytes.
const MAX_ONE_PIECE: u64 = 64 << 20;

thread_local! {
    // zstd's contexts are a few hundred kilobytes each and creating one costs more than
    // packing a record (`ZSTD_createDCtx` was 4 % of a delivery run's profile), so each
    // thread keeps one of each. `None` when zstd could not allocate one: then the one-shot
    // functions are used.
    static COMPRESSOR: RefCell<Option<Compressor<'static>>> =
        RefCell::new(Compressor::new(LEVEL).ok());
    static DECOMPRESSOR: RefCell<Option<Decompressor<'static>>> =
        RefCell::new(Decompressor::new().ok());
}

/// The stored form of a JSON text.
pub(crate) fn pack(text: &str) -> Vec<u8> {
    let packed = COMPRESSOR.with_borrow_mut(|compressor| match compressor {
        Some(compressor) => compressor.compress(text.as_bytes()),
        None => zstd::bulk::compress(text.as_bytes(), LEVEL),
    });
    // Compressing a byte slice in memory can fail only on allocation; keep the text then.
    packed.unwrap_or_else(|_| text.as_bytes().to_vec())
}

/// The text of a stored value, compressed or not.
pub(crate) fn unpack(stored: Vec<u8>) -> Result<String> {
    let bytes = if stored.starts_with(&MAGIC) {
        unpack_frame(&stored)
            .map_err(|e| StoreError::Other(format!("a stored JSON value does not unpack: {e}")))?
    } else {
        stored
    };
    String::from_utf8(bytes)
        .map_err(|e| StoreError::Other(format!("a stored JSON value is not UTF-8: {e}")))
}

fn unpack_frame(frame: &[u8]) -> std::io::Result<Vec<u8>> {
    // `pack` writes the text's size into the frame's header.
    let size = zstd::zstd_safe::get_frame_content_size(frame)
        .ok()
        .flatten();
    match size {
        Some(size) if size <= MAX_ONE_PIECE => {
            DECOMPRESSOR.with_borrow_mut(|decompressor| match decompressor {
                Some(decompressor) => decompressor.decompress(frame, size as usize),
                None => zstd::bulk::decompress(frame, size as usize),
            })
        }
        _ => zstd::stream::decode_all(frame),
    }
}

/// Column `name` of `row`, unpacked.
pub(crate) fn column(row: &SqliteRow, name: &str) -> Result<String> {
    // Text and blobs alike are read as their bytes.
    unpack(row.try_get_unchecked::<Vec<u8>, _>(name)?)
}

/// Column `name` of `row`, unpacked, when not NULL.
pub(crate) fn optional_column(row: &SqliteRow, name: &str) -> Result<Option<String>> {
    row.try_get_unchecked::<Option<Vec<u8>>, _>(name)?
        .map(unpack)
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_text_unpacks_and_plain_text_passes_through() {
        let record = r#"{"id":1,"title":"Café ☕","_info":{"lastUpdated":"2026-01-01T00:00:00Z"}}"#
            .repeat(20);
        let packed = pack(&record);
        assert!(packed.starts_with(&MAGIC));
        assert!(packed.len() < record.len() / 4, "{} bytes", packed.len());
        assert_eq!(unpack(packed).unwrap(), record);
        // A row written before compression.
        assert_eq!(unpack(record.clone().into_bytes()).unwrap(), record);
        assert_eq!(unpack(Vec::new()).unwrap(), "");
        // A value that claims to be a frame but is not one is an error, not a panic.
        assert!(unpack(vec![0x28, 0xB5, 0x2F, 0xFD, 1, 2, 3]).is_err());
        // The same contexts serve many values in turn.
        for n in 0..50 {
            let text = format!("{{\"n\":{n}}}").repeat(n + 1);
            assert_eq!(unpack(pack(&text)).unwrap(), text);
        }
        // A frame whose header claims more than it holds is an error too.
        let mut short = pack(&record);
        short.truncate(short.len() - 8);
        assert!(unpack(short).is_err());
    }
}
