//! The ConnectWise *element adapter*: the only crate that speaks ConnectWise Manage.
//!
//! A poller resource is configured with a Cloud Elements hub URL such as
//! `/hubs/crm/contacts?where=lastUpdated>'2019-03-01T10:15:00Z'`. [`HubQuery::parse`] resolves it,
//! in process, to a ConnectWise request (`GET /company/contacts?conditions=lastUpdated > [..]`),
//! and [`Client`] runs that request against the customer's ConnectWise site: Basic auth with
//! `company+public:private`, the `clientId` and versioned `Accept` headers, pages of 1000
//! following the `Link` header, and `429 Retry-After` honoured.

mod client;
mod error;
mod hub;
mod link;

pub use client::{Client, ClientOptions, Fetched, transport_message};
pub use error::CwError;
pub use hub::{HubQuery, hub_resource_path};
