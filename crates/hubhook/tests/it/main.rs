//! End-to-end tests: the real server, the real ConnectWise simulator and a real callback
//! receiver, each on a random loopback port, with a fresh SQLite database per test (or a fresh
//! PostgreSQL database with `HUBHOOK_TEST_DATABASE=postgres`).

mod api_suite;
mod app;
mod cli;
mod console;
mod crash;
mod delivery;
mod hardening;
mod hub;
mod instances;
mod isolation;
mod kill_storm;
mod legacy_login;
mod nodes;
mod observability;
mod platform;
mod poller;
mod postgres;
mod processes;
mod redelivery;
mod standard_webhooks;
