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
//! Records (`known_objects.record`, `events.record`: one object each, about 3 KB) are packed
//! with a dictionary; notification bodies (ten records, about 34 KB) without one. Packing a
//! frame of a few kilobytes is largely building the tables zstd needs for it, and a record
//! alone has little repetition to find. A dictionary trained on records brings both the tables
//! and the text records repeat (member names, nested shapes, href paths): a simulated contact
//! packs in about half the time and to 43 % of the size, and one whose values the dictionary
//! never saw to about two thirds. A body is long enough to repeat itself, and packing one with
//! the dictionary took longer than without (docs/benchmarks.md, "Fourteenth round").
//!
//! The dictionary ([`RECORDS_DICTIONARY`]) is a file built into the binary
//! (`dictionaries/records-<its id>.zdict`), trained by `bench dictionary` on simulated records
//! (no customer's data is in it). A zstd frame names the dictionary it was made with, so
//! unpacking reads the frame's dictionary id and picks: none (values packed before
//! dictionaries, and bodies), this one, or an error naming the id (a value written by a later
//! version with a dictionary this one lacks; migration 0066 keeps older versions off such a
//! database). Frames must stay readable for as long as rows live, so the file is never changed:
//! a better dictionary would be added beside it under its own id, and
//! [`RECORDS_DICTIONARY_ID`] is pinned by a test.
//!
//! PostgreSQL needs none of this: it compresses values this large itself (TOAST).

use std::cell::RefCell;
use std::sync::LazyLock;

use sqlx::Row as _;
use sqlx::sqlite::SqliteRow;
use zstd::bulk::{Compressor, Decompressor};
use zstd::dict::{DecoderDictionary, EncoderDictionary};

use crate::{Result, StoreError};

/// zstd's frame magic number, little-endian on disk.
const MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// zstd level 1: the fastest of the standard levels.
const LEVEL: i32 = 1;

/// The largest text a frame may claim to hold before it is unpacked in one piece; larger (or
/// unknown) sizes are streamed, so a corrupt header cannot make us allocate gigabytes.
const MAX_ONE_PIECE: u64 = 64 << 20;

/// The dictionary records are packed with (`bench dictionary` made it; never changed, see the
/// module docs).
pub(crate) static RECORDS_DICTIONARY: &[u8] =
    include_bytes!("../../dictionaries/records-248174138.zdict");

/// The id [`RECORDS_DICTIONARY`] writes into its frames.
pub(crate) const RECORDS_DICTIONARY_ID: u32 = 248_174_138;

/// The dictionary digested once for each direction and shared by every thread's context.
static RECORDS_ENCODER: LazyLock<EncoderDictionary<'static>> =
    LazyLock::new(|| EncoderDictionary::copy(RECORDS_DICTIONARY, LEVEL));
static RECORDS_DECODER: LazyLock<DecoderDictionary<'static>> =
    LazyLock::new(|| DecoderDictionary::copy(RECORDS_DICTIONARY));

thread_local! {
    // zstd's contexts are a few hundred kilobytes each and creating one costs more than
    // packing a record (`ZSTD_createDCtx` was 4 % of a delivery run's profile), so each
    // thread keeps one of each kind. `None` when zstd could not make one: then the one-shot
    // functions are used.
    static COMPRESSOR: RefCell<Option<Compressor<'static>>> =
        RefCell::new(Compressor::new(LEVEL).ok());
    static DECOMPRESSOR: RefCell<Option<Decompressor<'static>>> =
        RefCell::new(Decompressor::new().ok());
    static RECORD_COMPRESSOR: RefCell<Option<Compressor<'static>>> =
        RefCell::new(Compressor::with_prepared_dictionary(&RECORDS_ENCODER).ok());
    static RECORD_DECOMPRESSOR: RefCell<Option<Decompressor<'static>>> =
        RefCell::new(Decompressor::with_prepared_dictionary(&RECORDS_DECODER).ok());
}

/// The stored form of a JSON text (a notification body: no dictionary).
pub(crate) fn pack(text: &str) -> Vec<u8> {
    let packed = COMPRESSOR.with_borrow_mut(|compressor| match compressor {
        Some(compressor) => compressor.compress(text.as_bytes()),
        None => zstd::bulk::compress(text.as_bytes(), LEVEL),
    });
    // Compressing a byte slice in memory can fail only on allocation; keep the text then.
    packed.unwrap_or_else(|_| text.as_bytes().to_vec())
}

/// The stored form of one record's JSON text: packed with [`RECORDS_DICTIONARY`].
pub(crate) fn pack_record(text: &str) -> Vec<u8> {
    let packed = RECORD_COMPRESSOR.with_borrow_mut(|compressor| match compressor {
        Some(compressor) => compressor.compress(text.as_bytes()),
        None => Compressor::with_prepared_dictionary(&RECORDS_ENCODER)
            .and_then(|mut compressor| compressor.compress(text.as_bytes())),
    });
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
    let with_dictionary = match zstd::zstd_safe::get_dict_id_from_frame(frame) {
        None => false,
        Some(id) if id.get() == RECORDS_DICTIONARY_ID => true,
        Some(id) => {
            return Err(std::io::Error::other(format!(
                "it was packed with zstd dictionary {id}, which this version of hubhook does not have"
            )));
        }
    };
    // `pack` writes the text's size into the frame's header.
    let size = zstd::zstd_safe::get_frame_content_size(frame)
        .ok()
        .flatten();
    match size {
        Some(size) if size <= MAX_ONE_PIECE => {
            let size = size as usize;
            if with_dictionary {
                RECORD_DECOMPRESSOR.with_borrow_mut(|decompressor| match decompressor {
                    Some(decompressor) => decompressor.decompress(frame, size),
                    None => Decompressor::with_prepared_dictionary(&RECORDS_DECODER)
                        .and_then(|mut decompressor| decompressor.decompress(frame, size)),
                })
            } else {
                DECOMPRESSOR.with_borrow_mut(|decompressor| match decompressor {
                    Some(decompressor) => decompressor.decompress(frame, size),
                    None => zstd::bulk::decompress(frame, size),
                })
            }
        }
        _ if with_dictionary => {
            let mut text = Vec::new();
            std::io::Read::read_to_end(
                &mut zstd::stream::read::Decoder::with_prepared_dictionary(
                    std::io::BufReader::new(frame),
                    &RECORDS_DECODER,
                )?,
                &mut text,
            )?;
            Ok(text)
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

    /// A contact as ConnectWise lists it, in the stored (canonical) form.
    fn contact(n: u32) -> String {
        format!(
            r#"{{"_info":{{"communications_href":"https://api-na.myconnectwise.net/v4_6_release/apis/3.0/company/contacts/{n}/communications","dateEntered":"2026-03-0{d}T10:11:12Z","enteredBy":"jsmith","lastUpdated":"2026-11-2{d}T08:09:10Z","updatedBy":"jsmith"}},"communicationItems":[{{"communicationType":"Email","defaultFlag":true,"id":{n},"type":{{"id":1,"name":"Email"}},"value":"person{n}@example.com"}}],"company":{{"id":{c},"identifier":"Company{c}","name":"Company {c} Ltd"}},"firstName":"Person","id":{n},"inactiveFlag":false,"lastName":"Number {n}","site":{{"id":1,"name":"Main"}},"types":[]}}"#,
            d = n % 9 + 1,
            c = n % 97,
        )
    }

    #[test]
    fn records_pack_with_the_dictionary_the_binary_carries() {
        // The file is the dictionary its id says: changing it would make every frame packed
        // with it unreadable (see the module docs).
        assert_eq!(
            zstd::zstd_safe::get_dict_id_from_dict(RECORDS_DICTIONARY).map(|id| id.get()),
            Some(RECORDS_DICTIONARY_ID)
        );
        for n in [1, 250, 70_001] {
            let record = contact(n);
            let packed = pack_record(&record);
            assert_eq!(
                zstd::zstd_safe::get_dict_id_from_frame(&packed).map(|id| id.get()),
                Some(RECORDS_DICTIONARY_ID)
            );
            // The dictionary is what makes a small record small.
            assert!(
                packed.len() < pack(&record).len(),
                "{} bytes with the dictionary, {} without",
                packed.len(),
                pack(&record).len()
            );
            assert_eq!(unpack(packed).unwrap(), record);
        }
        // Rows packed before dictionaries (and bodies) unpack beside them, on the same thread.
        let record = contact(7);
        assert_eq!(unpack(pack(&record)).unwrap(), record);
        assert_eq!(unpack(pack_record(&record)).unwrap(), record);
    }

    #[test]
    fn a_dictionary_frame_without_its_size_is_streamed() {
        let record = contact(42);
        let mut encoder =
            zstd::stream::write::Encoder::with_prepared_dictionary(Vec::new(), &RECORDS_ENCODER)
                .unwrap();
        std::io::Write::write_all(&mut encoder, record.as_bytes()).unwrap();
        let frame = encoder.finish().unwrap();
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&frame)
                .ok()
                .flatten(),
            None
        );
        assert_eq!(unpack(frame).unwrap(), record);
    }

    #[test]
    fn damaged_dictionary_frames_are_errors_not_panics() {
        let record = contact(11);
        let frame = pack_record(&record);
        // Every truncation, and a byte changed at each position to a few values: each unpacks
        // to an error or to some text (a change inside a literal can survive), never a panic.
        for end in 0..frame.len() {
            let _ = unpack(frame[..end].to_vec());
        }
        for at in 0..frame.len() {
            for value in [0x00, 0x01, 0x7F, 0x80, 0xFF] {
                let mut damaged = frame.clone();
                damaged[at] = value;
                let _ = unpack(damaged);
            }
        }
        // The thread's contexts still work after all that.
        assert_eq!(unpack(pack_record(&record)).unwrap(), record);
    }

    #[test]
    fn a_frame_of_a_dictionary_this_version_lacks_is_an_error_naming_it() {
        let mut frame = pack_record(&contact(3));
        // The frame header: magic (4 bytes), descriptor (1), the window byte unless the frame
        // is a single segment, then the dictionary id in as many bytes as the descriptor says.
        let descriptor = frame[4];
        let id_bytes = [0, 1, 2, 4][usize::from(descriptor & 0b11)];
        let at = 5 + usize::from(descriptor & 0b10_0000 == 0);
        assert_eq!(id_bytes, 4, "the dictionary id needs four bytes");
        frame[at..at + 4].copy_from_slice(&(RECORDS_DICTIONARY_ID + 1).to_le_bytes());
        let error = unpack(frame).unwrap_err().to_string();
        assert!(
            error.contains(&format!("dictionary {}", RECORDS_DICTIONARY_ID + 1)),
            "{error}"
        );
    }
}
