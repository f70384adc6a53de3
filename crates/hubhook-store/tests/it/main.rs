//! Integration tests of hubhook-store.
//!
//! `conformance` holds engine-independent checks, each an `async fn check_xxx(store: &Store)`,
//! so that every backend runs the same ones; `sqlite` runs them on a fresh SQLite file each and
//! adds what only makes sense for SQLite (raw file contents, reopening the file).

mod conformance;
mod console;
mod platform;
mod sqlite;
