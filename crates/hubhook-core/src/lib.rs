//! hubhook-core: the pure domain of hubhook.
//!
//! Everything here is deterministic and side-effect free: no IO, no async, no randomness and no
//! clock reads (the current time is always passed in). That keeps the rules of the Cloud
//! Elements events framework (instance configuration, poller URL placeholders, Java date
//! patterns, CEQL, hub URLs, change classification, payloads, signatures, retry schedules)
//! testable with plain unit tests, and lets the engine, the store and the API share one definition of them.

pub mod auth_header;
pub mod ceql;
pub mod ceql_eval;
pub mod classify;
pub mod config;
pub mod connectwise_callback;
pub mod cpu;
pub mod delivery_policy;
pub mod documented;
pub mod error;
pub mod event;
pub mod field_changes;
pub mod field_path;
pub mod hub_url;
pub mod ids;
pub mod java_time;
pub mod one_line;
pub mod placeholders;
pub mod record_text;
pub mod retry;
pub mod rfc3339;
pub mod signing;
pub mod standard_webhooks;
pub mod unmatchable;

pub use auth_header::{AuthHeader, AuthHeaderError, parse_authorization};
pub use ceql::{
    CeqlError, CompareOp, Expr, Literal, parse_where, to_conditions, where_to_conditions,
};
pub use classify::{
    Change, Classified, ClassifyContext, EventType, Known, Observed, PageRecord, RecordError,
    classify, content_hash, object_id, read_date,
};
pub use config::{
    ChangeTracking, ConnectWiseCredentials, DEFAULT_MASS_DELETE_THRESHOLD, DateField, DatesConfig,
    ELEMENT_KEY, EventsConfig, FirstRun, InstanceConfig, MASK, RefreshInterval, ResourcePoll,
    SECRET_KEYS, is_mask, mask_secrets, merge_secrets, split_secrets, stored_site,
};
pub use connectwise_callback::{CallbackMessage, verify_connectwise_signature};
pub use delivery_policy::{DeliverySettings, FailurePolicy, SchedulePreset};
pub use documented::{DocumentedSite, connectwise_poller_block, documented_instance_body};
pub use error::{ConfigError, ConfigErrors};
pub use event::{
    Changes, EventRecord, MAX_EVENTS_PER_NOTIFICATION, Notification, RecordJson,
    build_notifications, event_id, replay_notification,
};
pub use field_changes::{BOOKKEEPING, FieldChange, changed_fields};
pub use field_path::FieldPath;
pub use hub_url::{HubParams, HubUrl, HubUrlError, MAX_URL_LENGTH};
pub use ids::{EventId, InstanceId, NotificationId};
pub use java_time::{JavaPattern, PatternError, parse_zone};
pub use placeholders::{PlaceholderError, max_rendered_length, render_url, validate_template};
pub use retry::RetrySchedule;
pub use rfc3339::parse_instant;
pub use signing::{elements_signature, verify_elements_signature};
pub use standard_webhooks::{WebhookSecret, signature_header};
