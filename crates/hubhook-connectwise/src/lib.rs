//! The ConnectWise *element adapter*: the only crate that speaks ConnectWise Manage.
//!
//! A Cloud Elements hub URL such as `/hubs/crm/contacts?where=lastUpdated>'2019-03-01T10:15:00Z'`
//! is resolved, in process, to a ConnectWise request (`GET /company/contacts?conditions=
//! lastUpdated > [..]`): [`HubTarget`] maps the hub path to a ConnectWise path and
//! [`HubQuery`] translates the parameters (CEQL `where` to `conditions`, `orderBy`, `fields`,
//! paging). [`Client`] runs requests against the customer's ConnectWise site: Basic auth with
//! `company+public:private`, the `clientId` and versioned `Accept` headers, `429 Retry-After`
//! honoured, null fields filtered as the instance asks.
//!
//! Two callers share this path, so they cannot disagree about what a URL means: the poller and
//! the hub API read lists one page at a time ([`Client::fetch_page`], and for the poller
//! [`Client::fetch_raw_page`], the same request and paging with each record left as its text;
//! [`Client::fetch_all`] reads them all), and the hub reads and writes single records ([`Client::get_record`] and
//! friends). Paging never depends on the `Link` header: a full page is followed by a request
//! for the next one (forward-only: after its last id) and a short or empty page ends the list,
//! which works whatever `Link` ConnectWise sent.

mod calls;
mod client;
mod error;
mod hub;
mod merge_patch;
mod nulls;
pub mod page_token;
pub mod target;
mod throttle;

pub use calls::{Page, RawPage};
pub use client::{Client, ClientOptions, Fetched, transport_message};
pub use error::CwError;
pub use hub::{HubQuery, MAX_PAGE_SIZE};
pub use merge_patch::merge_to_json_patch;
pub use nulls::strip_nulls;
pub use page_token::PageRequest;
pub use target::{HubTarget, OBJECTS, TargetKind, hub_objects, hub_resource_path};
pub use throttle::SiteThrottle;
