//! The `hubhook` binary's library: command line, configuration, telemetry and the wiring of
//! store, engine and API into a running server. Kept as a library so the end-to-end tests can
//! start the real server in process on a random port.

pub mod cli;
pub mod config;
pub mod demo;
pub mod org;
pub mod server;
pub mod telemetry;
