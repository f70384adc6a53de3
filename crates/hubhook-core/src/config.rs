//! The Cloud Elements `configuration` object of a `connectwisecrmrest` instance.
//!
//! Cloud Elements stores every configuration value as a string, but clients send strings,
//! booleans and numbers interchangeably (`"15"` and `15`, `"true"` and `true`), and the
//! poller configuration arrives either as an object or as a JSON-encoded string of one. Parsing
//! accepts all of these, collects every problem instead of stopping at the first, and names
//! each offending field by its full dotted key so the user can fix the body in one round trip.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::{ConfigError, ConfigErrors};
use crate::field_path::FieldPath;
use crate::hub_url::{HubUrl, MAX_URL_LENGTH};
use crate::java_time::{JavaPattern, parse_zone};
use crate::placeholders::{max_rendered_length, render_url, validate_template};
use crate::unmatchable::Rendering;

/// The element key of the ConnectWise REST element.
pub const ELEMENT_KEY: &str = "connectwisecrmrest";

/// Keys whose values are secrets: never returned, never logged, stored encrypted.
pub const SECRET_KEYS: &[&str] = &[
    "private.key",
    "public.key",
    "event.notification.signature.key",
    "oauth.api.secret",
];

/// What a secret value is replaced with wherever a configuration is shown.
pub const MASK: &str = "********";

/// Whether a value is [`MASK`], the stand-in reads show for a stored secret. White space around
/// it does not matter, as it does not around any value the parser reads: `" ******** "` must
/// not become a secret of eight asterisks.
pub fn is_mask(value: &Value) -> bool {
    value.as_str().is_some_and(|text| text.trim() == MASK)
}

/// The ConnectWise site a configuration's keys belong to: its `baseUrl` (or `baseURL`) as the
/// parser reads it (trimmed, without a trailing `/`), if it has one.
pub fn stored_site(configuration: &Map<String, Value>) -> Option<String> {
    ["baseUrl", "baseURL"]
        .iter()
        .find_map(|key| configuration.get(*key)?.as_str())
        .map(|url| url.trim().trim_end_matches('/').to_owned())
        .filter(|url| !url.is_empty())
}

/// The configuration with every secret value replaced by [`MASK`]. Absent and null secrets stay
/// as they are, so the output does not claim a secret exists when it does not.
pub fn mask_secrets(configuration: &Map<String, Value>) -> Map<String, Value> {
    split_secrets(configuration).0
}

/// Splits a configuration into (the configuration with secret keys present as [`MASK`], the
/// secret values only), so the two can be stored separately and the secrets encrypted.
pub fn split_secrets(
    configuration: &Map<String, Value>,
) -> (Map<String, Value>, Map<String, Value>) {
    let mut public = configuration.clone();
    let mut secrets = Map::new();
    for key in SECRET_KEYS {
        if let Some(value) = configuration.get(*key).filter(|v| !v.is_null()) {
            secrets.insert((*key).to_owned(), value.clone());
            public.insert((*key).to_owned(), Value::String(MASK.to_owned()));
        }
    }
    (public, secrets)
}

/// The inverse of [`split_secrets`]: the public configuration with the secret values put back
/// (a secret value wins over whatever the public map holds for that key).
pub fn merge_secrets(
    public: &Map<String, Value>,
    secrets: &Map<String, Value>,
) -> Map<String, Value> {
    let mut merged = public.clone();
    for (key, value) in secrets {
        merged.insert(key.clone(), value.clone());
    }
    merged
}

/// A validated instance configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceConfig {
    pub connectwise: ConnectWiseCredentials,
    pub events: EventsConfig,
    pub filter_response_nulls: bool,
}

/// How to reach and authenticate to ConnectWise Manage.
#[derive(Clone, PartialEq)]
pub struct ConnectWiseCredentials {
    /// An http(s) URL such as `https://api-na.myconnectwise.net/v4_6_release/apis/3.0`,
    /// without a trailing `/`.
    pub base_url: String,
    pub company: String,
    pub public_key: String,
    pub private_key: String,
    pub client_id: Option<String>,
}

impl fmt::Debug for ConnectWiseCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys are masked so that logging a configuration can never leak them.
        f.debug_struct("ConnectWiseCredentials")
            .field("base_url", &self.base_url)
            .field("company", &self.company)
            .field("public_key", &MASK)
            .field("private_key", &MASK)
            .field("client_id", &self.client_id)
            .finish()
    }
}

/// The events part of the configuration.
#[derive(Clone, PartialEq)]
pub struct EventsConfig {
    pub enabled: bool,
    pub callback_url: Option<String>,
    pub refresh_interval: RefreshInterval,
    pub signature_key: Option<String>,
    /// The resources to poll, by resource name (which is the events' `objectType`). Shared
    /// (`Arc`) so that a long-lived holder of many configurations, such as the poller's cache,
    /// can keep one copy of blocks that many instances configure alike.
    pub resources: BTreeMap<String, Arc<ResourcePoll>>,
    /// What the first poll of each resource reports.
    pub first_run: FirstRun,
    /// `event.notification.ordered`: deliver the instance's notifications one at a time, in the
    /// order they were stored (head-of-line blocking); default false.
    pub ordered: bool,
}

impl fmt::Debug for EventsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventsConfig")
            .field("enabled", &self.enabled)
            .field("callback_url", &self.callback_url)
            .field("refresh_interval", &self.refresh_interval)
            .field("signature_key", &self.signature_key.as_ref().map(|_| MASK))
            .field("resources", &self.resources)
            .field("first_run", &self.first_run)
            .field("ordered", &self.ordered)
            .finish()
    }
}

const REFRESH_INTERVAL: &str = "event.poller.refresh_interval";
const MAX_REFRESH_MINUTES: f64 = 10_080.0;
const DEFAULT_REFRESH_MINUTES: u64 = 15;
/// The shortest refresh interval accepted: one second. Anything shorter would round to a few
/// milliseconds or to nothing; the server raises short intervals to its own floor anyway.
const MIN_REFRESH: Duration = Duration::from_secs(1);
const REFRESH_EXPECTED: &str =
    "a number of minutes from 0.0167 (1 second) to 10080 (one week), such as 15 or \"0.5\"";

/// How often an instance is polled. Configured in minutes, possibly fractional.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RefreshInterval(Duration);

impl RefreshInterval {
    /// Parses `event.poller.refresh_interval`: minutes as a number or a string (`15`, `"15"`,
    /// `"0.05"` = 3 s), finite, at least one second once rounded to the millisecond (`0.0167`
    /// minutes; exactly 1/60 counts) and at most 10080 (one week).
    pub fn parse(value: &Value) -> Result<RefreshInterval, ConfigError> {
        let invalid =
            || ConfigError::invalid(REFRESH_INTERVAL, display_value(value), REFRESH_EXPECTED);
        let minutes = number(value).ok_or_else(invalid)?;
        if !minutes.is_finite() || minutes <= 0.0 || minutes > MAX_REFRESH_MINUTES {
            return Err(invalid());
        }
        // The bounds above keep this product far inside u64.
        let interval = Duration::from_millis((minutes * 60_000.0).round() as u64);
        if interval < MIN_REFRESH {
            return Err(invalid());
        }
        Ok(RefreshInterval(interval))
    }

    /// The interval as a duration.
    pub fn duration(self) -> Duration {
        self.0
    }

    /// This interval, but never shorter than `min` (the server's configured floor).
    pub fn floored(self, min: Duration) -> RefreshInterval {
        RefreshInterval(self.0.max(min))
    }
}

impl Default for RefreshInterval {
    fn default() -> RefreshInterval {
        RefreshInterval(Duration::from_secs(DEFAULT_REFRESH_MINUTES * 60))
    }
}

/// How to poll one resource (one entry of `event.poller.configuration`).
#[derive(Debug, Clone, PartialEq)]
pub struct ResourcePoll {
    /// The hub URL template, e.g. `/hubs/crm/contacts?where=lastUpdated>'${gmtDate:...}'`.
    pub url: String,
    pub id_field: FieldPath,
    pub dates: DatesConfig,
    /// Drop records whose updated date is not later than the last poll (default true).
    pub filter_by_updated_date: bool,
    /// Drop records updated at or after the start of this poll (default false).
    pub filter_by_current_date: bool,
    /// How far apart created and updated may be for a record to count as created (default 0).
    pub created_check_tolerance: Duration,
    /// Records per page, 1..=1000 (ConnectWise's maximum); `None` uses the adapter default.
    pub page_size: Option<u32>,
    /// Subtracted from the last poll time, for providers whose search lags (default 0).
    pub poll_delay: Duration,
    /// What UPDATED events say about the change (`trackChanges`, `includePrevious`,
    /// `ignoreBookkeepingOnlyUpdates`).
    pub changes: ChangeTracking,
    /// How often known ids are compared with ConnectWise's to find deleted records
    /// (`reconcileInterval`, minutes); `None` = never.
    pub reconcile_interval: Option<Duration>,
    /// The share of known records that may vanish in one reconciliation before hubhook stops
    /// and asks for confirmation (`massDeleteThreshold`, 0 < share <= 1, default 0.2).
    pub mass_delete_threshold: f64,
    /// A field that, when `true`, marks a record deleted (`deletedFlagField`, default
    /// `deletedFlag`, as ConnectWise companies have).
    pub deleted_flag_field: FieldPath,
}

/// What UPDATED events of a resource say about the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeTracking {
    /// Carry `changedFields` (default true).
    pub track: bool,
    /// Also carry `previous`: the old value of each changed field (default false).
    pub include_previous: bool,
    /// Send no event for an update that changed only ConnectWise's bookkeeping
    /// (`_info.lastUpdated`, `_info.updatedBy`) (default false).
    pub ignore_bookkeeping_only: bool,
}

/// `reconcileInterval` when not given, in minutes.
const DEFAULT_RECONCILE_MINUTES: u64 = 60;
/// `massDeleteThreshold` when not given.
pub const DEFAULT_MASS_DELETE_THRESHOLD: f64 = 0.2;

/// What an instance's first poll of a resource reports (`event.poller.firstRun`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FirstRun {
    /// Remember every record, and report only changes made after the instance was created.
    #[default]
    Changes,
    /// Report every record as CREATED.
    All,
    /// Report the changes made since this instant, as later polls would have.
    Since(jiff::Timestamp),
}

/// Where a record's updated and created dates are, and how to read them.
#[derive(Debug, Clone, PartialEq)]
pub struct DatesConfig {
    pub updated: DateField,
    pub created: DateField,
}

impl DatesConfig {
    /// True when created and updated read the same field (the documented ConnectWise default),
    /// so the dates cannot tell CREATED from UPDATED.
    pub fn same_field(&self) -> bool {
        self.updated.path == self.created.path
    }
}

/// One date field of a record.
#[derive(Debug, Clone, PartialEq)]
pub struct DateField {
    pub path: FieldPath,
    pub pattern: JavaPattern,
    /// The zone for values without zone information (default UTC).
    pub zone: jiff::tz::TimeZone,
}

const POLLER_CONFIGURATION: &str = "event.poller.configuration";

/// The keys a resource of the poller configuration may hold: Cloud Elements' (with the
/// archived documentation's `filterByUpdateDate` spelling) and hubhook's own.
const RESOURCE_KEYS: &[&str] = &[
    "url",
    "idField",
    "datesConfiguration",
    "filterByUpdatedDate",
    "filterByUpdateDate",
    "filterByCurrentDate",
    "createdCheckTolerance",
    "pollDelay",
    "pageSize",
    "updatedDateTimezone",
    "createdDateTimezone",
    "trackChanges",
    "includePrevious",
    "ignoreBookkeepingOnlyUpdates",
    "massDeleteThreshold",
    "deletedFlagField",
    "reconcileInterval",
];

/// The keys a resource's `datesConfiguration` may hold.
const DATES_KEYS: &[&str] = &[
    "updatedDateField",
    "updatedDateFormat",
    "updatedDateTimezone",
    "createdDateField",
    "createdDateFormat",
    "createdDateTimezone",
];

/// The known key `key` was most likely meant as: the same but for case, else one at most two
/// edits away (`reconcileIntervall`, `trackChange`).
fn closest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    if let Some(same) = known.iter().find(|k| k.eq_ignore_ascii_case(key)) {
        return Some(same);
    }
    known
        .iter()
        .map(|k| (strsim::levenshtein(key, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// The keys of the poller configuration's resources (and their `datesConfiguration`) that
/// hubhook does not know, each named with the keys it could have meant. Stored, a misspelt key
/// (`updatedDateTimeZone`, `reconcileIntervall`) would be silently ignored and its default
/// used. Checked when an instance is created or changed, not by [`InstanceConfig::parse`],
/// so that instances stored before this check keep polling.
pub fn unknown_poller_keys(configuration: &Map<String, Value>) -> Vec<ConfigError> {
    let decoded;
    let resources = match configuration.get(POLLER_CONFIGURATION) {
        Some(Value::Object(resources)) => resources,
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(resources)) => {
                decoded = resources;
                &decoded
            }
            // Not an object: `InstanceConfig::parse` says so.
            _ => return Vec::new(),
        },
        _ => return Vec::new(),
    };
    let unknown = |map: &Map<String, Value>, known: &[&str], prefix: &str| -> Vec<ConfigError> {
        map.iter()
            .filter(|(key, _)| !known.contains(&key.as_str()))
            .map(|(key, value)| {
                let expected = match closest(key, known) {
                    Some(meant) => format!(
                        "it under `{meant}`, the key this looks like (a key hubhook does not know is refused; the keys here are {})",
                        known.join(", ")
                    ),
                    None => format!(
                        "no such key: hubhook does not know it (the keys here are {})",
                        known.join(", ")
                    ),
                };
                ConfigError::invalid(
                    format!("{prefix}.{}", truncate(&key.escape_debug().to_string())),
                    display_value(value),
                    expected,
                )
            })
            .collect()
    };
    let mut errors = Vec::new();
    for (name, resource) in resources {
        let Value::Object(resource) = resource else {
            continue;
        };
        let prefix = format!(
            "{POLLER_CONFIGURATION}.{}",
            truncate(&name.escape_debug().to_string())
        );
        errors.extend(unknown(resource, RESOURCE_KEYS, &prefix));
        if let Some(Value::Object(dates)) = resource.get("datesConfiguration") {
            errors.extend(unknown(
                dates,
                DATES_KEYS,
                &format!("{prefix}.datesConfiguration"),
            ));
        }
    }
    errors
}

/// The resources whose poller URL has a `where` that can never match a record an event could
/// come from (`id<0`, `lastUpdated<'${gmtDate}'`; see [`crate::unmatchable`]): such a resource
/// would poll every interval and never say why nothing comes. Checked when an instance is
/// created or changed, not by [`InstanceConfig::parse`], so that instances stored before this
/// check keep polling; and on a change only for the resources it adds or changes
/// (`previous`), so that renaming an older instance is not refused over a resource nobody
/// touched.
pub fn unmatchable_polls(
    config: &InstanceConfig,
    previous: Option<&InstanceConfig>,
) -> Vec<ConfigError> {
    let filter = |template: &str, at| rendered_hub_url(template, at).ok()?.params.filter;
    // The first run renders at the epoch; a `firstRun` from before it reports what a
    // placeholder at the epoch leaves out.
    let first_run_before_epoch = matches!(
        config.events.first_run,
        FirstRun::Since(since) if since < jiff::Timestamp::UNIX_EPOCH
    );
    config
        .events
        .resources
        .iter()
        .filter(|(name, resource)| {
            previous.is_none_or(|previous| previous.events.resources.get(*name) != Some(resource))
        })
        .filter_map(|(name, resource)| {
            let first = filter(&resource.url, jiff::Timestamp::UNIX_EPOCH)?;
            // Records updated at or before the rendered instant are dropped only when their
            // dates read as ConnectWise stores them (UTC) and the poll filters by them.
            let window = resource.filter_by_updated_date
                && resource.dates.updated.zone == jiff::tz::TimeZone::UTC
                && !first_run_before_epoch;
            // Refused only if the proof holds beside each later rendering: what depends on the
            // instant (a placeholder's date against the poll's) must hold at every one.
            let mut reasons = LATER_RENDERINGS.iter().map(|&at| {
                let later = filter(&resource.url, at)?;
                crate::unmatchable::why_never(
                    Rendering {
                        clause: &first,
                        at: jiff::Timestamp::UNIX_EPOCH,
                    },
                    Rendering { clause: &later, at },
                    resource.dates.updated.path.as_str(),
                    window,
                )
            });
            let reason = reasons.next()??;
            reasons.all(|other| other.is_some()).then_some(())?;
            Some(ConfigError::invalid(
                format!("{POLLER_CONFIGURATION}.{name}.url"),
                display_value(&Value::String(resource.url.clone())),
                format!("a where that some record can match: {reason}"),
            ))
        })
        .collect()
}

/// The most resources one instance may poll. Each is polled on its own every refresh interval;
/// the hub knows 11 kinds of ConnectWise records, so 32 leaves room for several filtered views
/// of each without letting one instance flood its ConnectWise site.
pub const MAX_RESOURCES: usize = 32;

/// The longest resource name, in characters.
pub const MAX_RESOURCE_NAME_LENGTH: usize = 64;

/// What a resource name may be. Names are the events' `objectType`, appear in logs and in dotted
/// field names of error messages (`event.poller.configuration.contacts.url`), so they are
/// plain: no dots (which would make those field names ambiguous), spaces or control characters.
const RESOURCE_NAME_RULE: &str = "resource names of 1 to 64 characters, each a letter (A-Z, a-z), a digit, `_` or `-`, such as contacts or time-entries";

/// The longest `baseUrl` and callback URL accepted, in characters: the usual limit of HTTP
/// servers and proxies, far below what the HTTP client can send.
pub const MAX_HTTP_URL_LENGTH: usize = 2000;

/// Whether `name` follows [`RESOURCE_NAME_RULE`].
fn is_resource_name(name: &str) -> bool {
    (1..=MAX_RESOURCE_NAME_LENGTH).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// A poll time at which poller URLs are rendered to be checked at creation, besides the Unix
/// epoch (the first poll's): 2019-01-17T01:05:09Z.
const SAMPLE_POLL_TIME: jiff::Timestamp = jiff::Timestamp::constant(1_547_687_109, 0);

/// The poll times [`unmatchable_polls`] renders a URL at besides the epoch: 2021-11-27 (a
/// Saturday) 14:37:52.386 UTC and 2024-07-15 (a Monday) 21:48:13.517 UTC each differ from
/// 1970-01-01 (a Thursday) 00:00:00.000 in every calendar field a date pattern can show, in
/// every zone, so a literal a placeholder made always differs between the epoch's rendering
/// and either. One is in the southern summer and one in the northern, so a zone that is UTC+0
/// in one season and ahead of it in the other (`WET`, `Atlantic/Canary`, `Antarctica/Troll`)
/// is ahead in one of them.
const LATER_RENDERINGS: [jiff::Timestamp; 2] = [
    jiff::Timestamp::constant(1_638_023_872, 386_000_000),
    jiff::Timestamp::constant(1_721_080_093, 517_000_000),
];

const NO_OAUTH: &str =
    "ConnectWise Manage has no OAuth; use an API member's public and private keys";
/// Seconds-valued options are capped at a week so a typo cannot stall polling for years.
const MAX_SECONDS: f64 = 604_800.0;

impl InstanceConfig {
    /// Parses and validates a full configuration (secrets included). All problems are
    /// reported together.
    pub fn parse(configuration: &Map<String, Value>) -> Result<InstanceConfig, ConfigErrors> {
        let mut errors = Vec::new();
        let mut top = Fields {
            map: configuration,
            prefix: String::new(),
            errors: &mut errors,
        };
        let connectwise = top.credentials();
        let events = top.events();
        let filter_response_nulls = top.boolean("filter.response.nulls", true);
        top.extra_key_limits();
        if errors.is_empty() {
            Ok(InstanceConfig {
                connectwise,
                events,
                filter_response_nulls,
            })
        } else {
            Err(ConfigErrors(errors))
        }
    }
}

/// Reads the keys of one JSON object, recording errors under `prefix`.
struct Fields<'m, 'e> {
    map: &'m Map<String, Value>,
    prefix: String,
    errors: &'e mut Vec<ConfigError>,
}

/// A value that was looked up: absent (or null, or blank), present, or present but invalid
/// (the error is already recorded).
enum Lookup<T> {
    Absent,
    Found(T),
    Invalid,
}

impl<T> Lookup<T> {
    fn ok(self) -> Option<T> {
        match self {
            Lookup::Found(value) => Some(value),
            Lookup::Absent | Lookup::Invalid => None,
        }
    }
}

impl<'m> Fields<'m, '_> {
    fn name(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    fn raw(&self, key: &str) -> Option<&'m Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn invalid(&mut self, key: &str, value: &Value, expected: &str) {
        let shown = if SECRET_KEYS.contains(&key) {
            MASK.to_owned()
        } else {
            display_value(value)
        };
        let error = ConfigError::invalid(self.name(key), shown, expected);
        self.errors.push(error);
    }

    fn missing(&mut self, key: &str, expected: &str) {
        let error = ConfigError::missing(self.name(key), expected);
        self.errors.push(error);
    }

    /// A string (numbers are accepted as their text). Blank strings count as absent.
    fn string(&mut self, key: &str, expected: &str) -> Lookup<String> {
        let Some(value) = self.raw(key) else {
            return Lookup::Absent;
        };
        let text = match value {
            Value::String(s) => s.trim().to_owned(),
            Value::Number(n) => n.to_string(),
            other => {
                let other = other.clone();
                self.invalid(key, &other, expected);
                return Lookup::Invalid;
            }
        };
        if text.is_empty() {
            Lookup::Absent
        } else {
            Lookup::Found(text)
        }
    }

    fn required_string(&mut self, key: &str, expected: &str) -> Option<String> {
        match self.string(key, expected) {
            Lookup::Found(text) => Some(text),
            Lookup::Absent => {
                self.missing(key, expected);
                None
            }
            Lookup::Invalid => None,
        }
    }

    fn boolean(&mut self, key: &str, default: bool) -> bool {
        let Some(value) = self.raw(key) else {
            return default;
        };
        let parsed = match value {
            Value::Bool(b) => Some(*b),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" => Some(true),
                "false" | "no" => Some(false),
                _ => None,
            },
            _ => None,
        };
        match parsed {
            Some(b) => b,
            None => {
                let value = value.clone();
                self.invalid(key, &value, "true or false (also \"yes\" or \"no\")");
                default
            }
        }
    }

    fn seconds(&mut self, key: &str) -> Duration {
        let Some(value) = self.raw(key) else {
            return Duration::ZERO;
        };
        match number(value) {
            Some(s) if s.is_finite() && (0.0..=MAX_SECONDS).contains(&s) => {
                Duration::from_millis((s * 1000.0).round() as u64)
            }
            _ => {
                let value = value.clone();
                self.invalid(
                    key,
                    &value,
                    "a number of seconds from 0 to 604800 (one week)",
                );
                Duration::ZERO
            }
        }
    }

    fn http_url(&mut self, key: &str, expected: &str, required: bool) -> Option<String> {
        let url = if required {
            self.required_string(key, expected)?
        } else {
            self.string(key, expected).ok()?
        };
        let length = url.chars().count();
        if length > MAX_HTTP_URL_LENGTH {
            let expected = format!(
                "{expected}, of at most {MAX_HTTP_URL_LENGTH} characters (this one has {length})"
            );
            self.invalid(key, &Value::String(url), &expected);
            None
        } else if is_http_url(&url) {
            Some(url)
        } else {
            let expected = format!(
                "{expected} (a host of ASCII letters, digits, `-` and `.`: an international name in its `xn--` form; a port from 1 to 65535; no user name)"
            );
            self.invalid(key, &Value::String(url), &expected);
            None
        }
    }

    fn credentials(&mut self) -> ConnectWiseCredentials {
        let oauth_shaped = ["oauth.api.key", "oauth.api.secret", "oauth.callback.url"]
            .iter()
            .any(|k| self.raw(k).is_some());
        let note = |expected: &str| {
            if oauth_shaped {
                format!("{expected} ({NO_OAUTH})")
            } else {
                expected.to_owned()
            }
        };
        let base_key = if self.raw("baseUrl").is_none() && self.raw("baseURL").is_some() {
            "baseURL"
        } else {
            "baseUrl"
        };
        const BASE_URL: &str = "an http(s) URL of the ConnectWise API, such as https://api-na.myconnectwise.net/v4_6_release/apis/3.0";
        // Two spellings of one setting with different values: which one the user meant is
        // unknown, and one would be kept and shown while the other is used.
        // (`connectwise.clientID` over `oauth.api.key` is a documented precedence instead: the
        // OAuth-shaped key may hold something else.)
        self.one_of("baseUrl", "baseURL");
        let base_url = self
            .http_url(base_key, BASE_URL, true)
            .map(|url| url.trim_end_matches('/').to_owned())
            .filter(|url| {
                // Every call appends a path to the base URL: a query or a fragment would move
                // ConnectWise's path into it and send every call to the base URL's own path.
                let clean = !url.contains(['?', '#']);
                if !clean {
                    let expected = format!("{BASE_URL}, without a query (`?`) or fragment (`#`)");
                    self.invalid(base_key, &Value::String(url.clone()), &expected);
                }
                clean
            });
        let company = self
            .required_string(
                "company",
                &note("the ConnectWise company id you log in with"),
            )
            .and_then(|text| self.header_text("company", text));
        let public_key = self
            .required_string("public.key", &note("a ConnectWise API member public key"))
            .and_then(|text| self.header_text("public.key", text));
        let private_key = self
            .required_string("private.key", &note("a ConnectWise API member private key"))
            .and_then(|text| self.header_text("private.key", text));
        let client_id = match self.string("connectwise.clientID", "a ConnectWise client id") {
            Lookup::Found(id) => self.header_text("connectwise.clientID", id),
            Lookup::Invalid => None,
            Lookup::Absent => self
                .string("oauth.api.key", "a ConnectWise client id")
                .ok()
                .and_then(|id| self.header_text("oauth.api.key", id)),
        };
        ConnectWiseCredentials {
            base_url: base_url.unwrap_or_default(),
            company: company.unwrap_or_default(),
            public_key: public_key.unwrap_or_default(),
            private_key: private_key.unwrap_or_default(),
            client_id,
        }
    }

    /// Refuses a configuration that gives both spellings of one setting with different values.
    fn one_of(&mut self, key: &str, other: &str) {
        let text = |value: &Value| match value {
            Value::String(s) => s.trim().trim_end_matches('/').to_owned(),
            other => other.to_string(),
        };
        if let (Some(a), Some(b)) = (self.raw(key), self.raw(other))
            && text(a) != text(b)
        {
            let b = b.clone();
            self.invalid(
                other,
                &b,
                &format!(
                    "the same value as `{key}`, or only one of the two (they are one setting)"
                ),
            );
        }
    }

    /// A credential sent to ConnectWise in a request header (`Authorization`, `clientId`):
    /// bounded, and without control characters, which no header may carry. Checked here so
    /// that the error names the field, instead of ConnectWise refusing an oversized header.
    fn header_text(&mut self, key: &str, text: String) -> Option<String> {
        let length = text.chars().count();
        if length > MAX_CREDENTIAL_LENGTH || text.chars().any(char::is_control) {
            let expected = format!(
                "at most {MAX_CREDENTIAL_LENGTH} characters without control characters such as line breaks (this one has {length} characters)"
            );
            self.invalid(key, &Value::String(text), &expected);
            None
        } else {
            Some(text)
        }
    }

    /// Keys this parser does not read are kept as sent (Cloud Elements configurations carry
    /// many), so they are bounded: their number, their names' length and each value's size.
    fn extra_key_limits(&mut self) {
        if self.map.len() > MAX_CONFIGURATION_KEYS {
            let error = ConfigError::invalid(
                "configuration".to_owned(),
                format!("{} keys", self.map.len()),
                format!("at most {MAX_CONFIGURATION_KEYS} keys"),
            );
            self.errors.push(error);
            return;
        }
        for (key, value) in self.map {
            if key.trim().is_empty()
                || key.chars().count() > MAX_KEY_LENGTH
                || crate::one_line::forbidden_char(key).is_some()
            {
                let error = ConfigError::invalid(
                    "configuration".to_owned(),
                    format!("a key `{}`", truncate(&key.escape_debug().to_string())),
                    format!(
                        "key names of 1 to {MAX_KEY_LENGTH} characters, not blank, without control characters, line separators or bidirectional controls"
                    ),
                );
                self.errors.push(error);
                continue;
            }
            // The poller configuration has limits of its own, field by field, and a key
            // already refused is not refused twice.
            if key == POLLER_CONFIGURATION || self.errors.iter().any(|e| e.field == *key) {
                continue;
            }
            let size = value_size(value);
            if size > MAX_VALUE_BYTES {
                let expected = format!(
                    "a value of at most {MAX_VALUE_BYTES} bytes as JSON (this one has {size})"
                );
                self.invalid(key, value, &expected);
            }
        }
    }

    fn events(&mut self) -> EventsConfig {
        let enabled = self.boolean("event.notification.enabled", false);
        let callback_url = self.http_url(
            "event.notification.callback.url",
            "an http(s) URL to deliver events to",
            enabled,
        );
        let refresh_interval = match self.raw(REFRESH_INTERVAL) {
            Some(value) => match RefreshInterval::parse(value) {
                Ok(interval) => interval,
                Err(error) => {
                    self.errors.push(error);
                    RefreshInterval::default()
                }
            },
            None => {
                if enabled {
                    self.missing(REFRESH_INTERVAL, REFRESH_EXPECTED);
                }
                RefreshInterval::default()
            }
        };
        let signature_key = self
            .string(
                "event.notification.signature.key",
                "a non-empty string used to sign notifications",
            )
            .ok();
        let resources = self.resources(enabled);
        let first_run = self.first_run();
        let ordered = self.boolean("event.notification.ordered", false);
        EventsConfig {
            enabled,
            callback_url,
            refresh_interval,
            signature_key,
            resources,
            first_run,
            ordered,
        }
    }

    fn first_run(&mut self) -> FirstRun {
        const KEY: &str = "event.poller.firstRun";
        const EXPECTED: &str = "`changes` (the default: only changes made after the instance was created), `all` (every record as CREATED) or `since:<RFC 3339 time>` such as since:2026-01-01T00:00:00Z";
        let Lookup::Found(text) = self.string(KEY, EXPECTED) else {
            return FirstRun::default();
        };
        let parsed = match text.to_ascii_lowercase().as_str() {
            "changes" => Ok(FirstRun::Changes),
            "all" => Ok(FirstRun::All),
            // jiff says why a time was not read: out of its range (after 9999-12-30), or not
            // RFC 3339 at all.
            lower if lower.starts_with("since:") => {
                crate::rfc3339::parse_instant(text["since:".len()..].trim())
                    .map(FirstRun::Since)
                    .map_err(|e| {
                        format!("{EXPECTED}; the time after `since:` could not be read: {e}")
                    })
            }
            _ => Err(EXPECTED.to_owned()),
        };
        parsed.unwrap_or_else(|expected| {
            self.invalid(KEY, &Value::String(text), &expected);
            FirstRun::default()
        })
    }

    fn resources(&mut self, enabled: bool) -> BTreeMap<String, Arc<ResourcePoll>> {
        const EXPECTED: &str = "an object of resources to poll (or a JSON-encoded string of one), such as {\"contacts\": {\"url\": ..., \"idField\": ..., \"datesConfiguration\": ...}}";
        let decoded;
        let resources = match self.raw(POLLER_CONFIGURATION) {
            None => None,
            Some(Value::Object(map)) => Some(map),
            Some(Value::String(text)) if text.trim().is_empty() => None,
            Some(value @ Value::String(text)) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(map)) => {
                    decoded = map;
                    Some(&decoded)
                }
                Ok(_) => {
                    let value = value.clone();
                    self.invalid(POLLER_CONFIGURATION, &value, EXPECTED);
                    return BTreeMap::new();
                }
                Err(error) => {
                    let shown = Value::String(format!("{} ({error})", truncate(text)));
                    self.invalid(POLLER_CONFIGURATION, &shown, EXPECTED);
                    return BTreeMap::new();
                }
            },
            Some(other) => {
                let other = other.clone();
                self.invalid(POLLER_CONFIGURATION, &other, EXPECTED);
                return BTreeMap::new();
            }
        };
        let mut parsed = BTreeMap::new();
        let Some(resources) = resources else {
            if enabled {
                self.missing(
                    POLLER_CONFIGURATION,
                    "at least one resource to poll when events are enabled",
                );
            }
            return parsed;
        };
        if resources.is_empty() && enabled {
            self.invalid(
                POLLER_CONFIGURATION,
                &Value::Object(Map::new()),
                "at least one resource to poll when events are enabled",
            );
        }
        if resources.len() > MAX_RESOURCES {
            self.errors.push(ConfigError::invalid(
                POLLER_CONFIGURATION,
                format!("{} resources", resources.len()),
                format!("at most {MAX_RESOURCES} resources per instance"),
            ));
            return parsed;
        }
        for (name, value) in resources {
            if !is_resource_name(name) {
                // Escaped, so a newline or NUL in the name shows as such in the message.
                self.errors.push(ConfigError::invalid(
                    POLLER_CONFIGURATION,
                    format!(
                        "resource name \"{}\"",
                        truncate(&name.escape_debug().to_string())
                    ),
                    RESOURCE_NAME_RULE,
                ));
                continue;
            }
            let prefix = format!("{POLLER_CONFIGURATION}.{name}");
            let Value::Object(map) = value else {
                self.errors.push(ConfigError::invalid(
                    prefix,
                    display_value(value),
                    "an object with url, idField and datesConfiguration",
                ));
                continue;
            };
            let mut fields = Fields {
                map,
                prefix,
                errors: self.errors,
            };
            if let Some(resource) = fields.resource() {
                parsed.insert(name.clone(), Arc::new(resource));
            }
        }
        parsed
    }

    fn resource(&mut self) -> Option<ResourcePoll> {
        let url = self
            .required_string("url", POLLER_URL)
            .and_then(|url| match poller_url(&url) {
                Ok(fields) => Some((url, fields)),
                Err(expected) => {
                    self.invalid("url", &Value::String(url), &expected);
                    None
                }
            });
        let id_field = self.path("idField", "the JSON path of the record id, such as id");
        let dates = self.dates();
        // A `fields` list in the URL must keep what the poller reads, or every record would be
        // skipped as having no id or no date.
        if let (Some((url, Some(fields))), Some(id_field), Some(dates)) = (&url, &id_field, &dates)
        {
            let needed = [
                ("idField", id_field),
                ("updatedDateField", &dates.updated.path),
                ("createdDateField", &dates.created.path),
            ];
            if let Some((key, path)) = needed.iter().find(|(_, path)| !covers(fields, path)) {
                let expected = format!(
                    "a `fields` list that keeps the fields the poller reads: it leaves out {key} `{path}`"
                );
                self.invalid("url", &Value::String(url.clone()), &expected);
                return None;
            }
        }
        let url = url.map(|(url, _)| url);
        let filter_by_updated_date = if self.raw("filterByUpdatedDate").is_some() {
            self.boolean("filterByUpdatedDate", true)
        } else {
            // The archived Cloud Elements documentation spells it this way once; accept both.
            self.boolean("filterByUpdateDate", true)
        };
        let filter_by_current_date = self.boolean("filterByCurrentDate", false);
        let created_check_tolerance = self.seconds("createdCheckTolerance");
        let poll_delay = self.seconds("pollDelay");
        let page_size = self
            .raw("pageSize")
            .cloned()
            .and_then(|value| match number(&value) {
                Some(n) if n.fract() == 0.0 && (1.0..=1000.0).contains(&n) => Some(n as u32),
                _ => {
                    self.invalid("pageSize", &value, "a whole number from 1 to 1000");
                    None
                }
            });
        let changes = ChangeTracking {
            track: self.boolean("trackChanges", true),
            include_previous: self.boolean("includePrevious", false),
            ignore_bookkeeping_only: self.boolean("ignoreBookkeepingOnlyUpdates", false),
        };
        let reconcile_interval = self.reconcile_interval(id_field.as_ref());
        let mass_delete_threshold =
            self.share("massDeleteThreshold", DEFAULT_MASS_DELETE_THRESHOLD);
        let deleted_flag_field = match self.raw("deletedFlagField") {
            Some(_) => self.path(
                "deletedFlagField",
                "the JSON path of a boolean that marks deleted records, such as deletedFlag",
            ),
            None => FieldPath::parse("deletedFlag").ok(),
        };
        Some(ResourcePoll {
            url: url?,
            id_field: id_field?,
            dates: dates?,
            filter_by_updated_date,
            filter_by_current_date,
            created_check_tolerance,
            page_size,
            poll_delay,
            changes,
            reconcile_interval,
            mass_delete_threshold,
            deleted_flag_field: deleted_flag_field?,
        })
    }

    /// `reconcileInterval`: minutes like the refresh interval, fractional allowed, `0` = off,
    /// default 60. Reconciliation walks ConnectWise's ids in order (forward-only paging is a
    /// keyset on `id`), so it needs `idField` to be `id`; with another idField it is off unless
    /// asked for, and asking for it is an error.
    fn reconcile_interval(&mut self, id_field: Option<&FieldPath>) -> Option<Duration> {
        const KEY: &str = "reconcileInterval";
        const EXPECTED: &str =
            "a number of minutes from 0 (off) to 10080 (one week), such as 60 or \"0.5\"";
        let by_id = id_field.is_none_or(|path| path.as_str() == "id");
        let Some(value) = self.raw(KEY).cloned() else {
            return by_id.then(|| Duration::from_secs(DEFAULT_RECONCILE_MINUTES * 60));
        };
        let minutes = match number(&value) {
            Some(m) if m.is_finite() && (0.0..=MAX_REFRESH_MINUTES).contains(&m) => m,
            _ => {
                self.invalid(KEY, &value, EXPECTED);
                return None;
            }
        };
        if minutes == 0.0 {
            return None;
        }
        if !by_id {
            self.invalid(
                KEY,
                &value,
                "0: finding deleted records compares ConnectWise `id`s, so it needs idField `id`",
            );
            return None;
        }
        let millis = (minutes * 60_000.0).round() as u64;
        if millis < 1000 {
            self.invalid(KEY, &value, "0 (off) or at least 0.0167 (1 second)");
            return None;
        }
        Some(Duration::from_millis(millis))
    }

    /// A share: a number with 0 < x <= 1 (`0.2`), or a percentage (`"20%"`).
    fn share(&mut self, key: &str, default: f64) -> f64 {
        const EXPECTED: &str = "a share of the known records above 0 and at most 1, such as 0.2, or a percentage such as \"20%\"";
        let Some(value) = self.raw(key).cloned() else {
            return default;
        };
        let share = match &value {
            Value::String(text) if text.trim().ends_with('%') => text
                .trim()
                .trim_end_matches('%')
                .trim()
                .parse::<f64>()
                .ok()
                .map(|percent| percent / 100.0),
            other => number(other),
        };
        match share {
            Some(share) if share.is_finite() && share > 0.0 && share <= 1.0 => share,
            _ => {
                self.invalid(key, &value, EXPECTED);
                default
            }
        }
    }

    fn path(&mut self, key: &str, expected: &str) -> Option<FieldPath> {
        let text = self.required_string(key, expected)?;
        match FieldPath::parse(&text) {
            Ok(path) => Some(path),
            Err(error) => {
                self.invalid(key, &Value::String(text), &error.expected);
                None
            }
        }
    }

    fn dates(&mut self) -> Option<DatesConfig> {
        const KEY: &str = "datesConfiguration";
        const EXPECTED: &str = "an object with updatedDateField, updatedDateFormat, createdDateField and createdDateFormat";
        let fallback_updated = self.zone("updatedDateTimezone");
        let fallback_created = self.zone("createdDateTimezone");
        let map = match self.raw(KEY) {
            Some(Value::Object(map)) => map,
            Some(other) => {
                let other = other.clone();
                self.invalid(KEY, &other, EXPECTED);
                return None;
            }
            None => {
                self.missing(KEY, EXPECTED);
                return None;
            }
        };
        let mut fields = Fields {
            map,
            prefix: self.name(KEY),
            errors: self.errors,
        };
        let updated = fields.date_field("updated", fallback_updated.clone());
        let created = fields.date_field("created", fallback_created.or(fallback_updated));
        Some(DatesConfig {
            updated: updated?,
            created: created?,
        })
    }

    /// `{kind}DateField`, `{kind}DateFormat` and `{kind}DateTimezone` of a datesConfiguration.
    fn date_field(
        &mut self,
        kind: &str,
        fallback_zone: Option<jiff::tz::TimeZone>,
    ) -> Option<DateField> {
        let path = self.path(
            &format!("{kind}DateField"),
            "the JSON path of a date, such as _info.lastUpdated",
        );
        let zone = self
            .zone(&format!("{kind}DateTimezone"))
            .or(fallback_zone)
            .unwrap_or(jiff::tz::TimeZone::UTC);
        let format_key = format!("{kind}DateFormat");
        let pattern = self
            .required_string(
                &format_key,
                "a Java date pattern such as yyyy-MM-dd'T'HH:mm:ss'Z'",
            )
            .and_then(|text| {
                // A pattern that cannot read back what it writes matches no record: every poll
                // would skip every record with a warning. It is checked in the field's zone.
                match JavaPattern::parse(&text)
                    .and_then(|pattern| pattern.check_round_trip(&zone).map(|()| pattern))
                {
                    Ok(pattern) => Some(pattern),
                    Err(error) => {
                        let expected = format!(
                            "a Java date pattern that reads back the dates it writes, such as yyyy-MM-dd'T'HH:mm:ss'Z' ({error})"
                        );
                        self.invalid(&format_key, &Value::String(text), &expected);
                        None
                    }
                }
            });
        Some(DateField {
            path: path?,
            pattern: pattern?,
            zone,
        })
    }

    fn zone(&mut self, key: &str) -> Option<jiff::tz::TimeZone> {
        const EXPECTED: &str = "a time zone such as GMT, EST, America/Denver or -08:00";
        let name = self.string(key, EXPECTED).ok()?;
        match parse_zone(&name) {
            Ok(zone) => Some(zone),
            Err(_) => {
                self.invalid(key, &Value::String(name), EXPECTED);
                None
            }
        }
    }
}

const POLLER_URL: &str =
    "a hub path such as /hubs/crm/contacts?where=lastUpdated>'${gmtDate:yyyy-MM-dd'T'HH:mm:ss'Z'}'";

/// Checks a poller URL template as far as it can be checked without ConnectWise: placeholders
/// that are known and whose dates read back, a rendering that can never exceed
/// [`MAX_URL_LENGTH`], and a hub URL (`where`, `orderBy`, `fields`, `pageSize`) that reads at the
/// first poll (rendered at the Unix epoch) and at a later one. Returns the `fields` list of the
/// URL, if any, or what was expected instead.
fn poller_url(template: &str) -> Result<Option<Vec<String>>, String> {
    validate_template(template)
        .map_err(|error| format!("{POLLER_URL}, with valid placeholders ({error})"))?;
    let longest = max_rendered_length(template)
        .map_err(|error| format!("{POLLER_URL}, with valid placeholders ({error})"))?;
    if longest > MAX_URL_LENGTH {
        return Err(format!(
            "a poller URL of at most {MAX_URL_LENGTH} characters with its placeholders rendered at their longest (this one can reach {longest})"
        ));
    }
    let mut fields = None;
    for instant in [jiff::Timestamp::UNIX_EPOCH, SAMPLE_POLL_TIME] {
        let hub_url = rendered_hub_url(template, instant)
            .map_err(|error| format!("{POLLER_URL} ({error})"))?;
        fields = hub_url.params.fields;
    }
    Ok(fields)
}

/// The poller URL `template` rendered at `at` and read as a hub URL.
fn rendered_hub_url(template: &str, at: jiff::Timestamp) -> Result<HubUrl, String> {
    let rendered = render_url(template, at).map_err(|error| error.to_string())?;
    HubUrl::parse(&rendered).map_err(|error| error.to_string())
}

/// Whether a `fields` list (ConnectWise paths such as `_info/lastUpdated`) keeps `path`: one of
/// them is `path` or one of its parents. ConnectWise matches field names without regard to case.
fn covers(fields: &[String], path: &FieldPath) -> bool {
    fields.iter().any(|field| {
        let kept: Vec<&str> = field.split('/').collect();
        let wanted: Vec<&str> = path.as_str().split('.').collect();
        kept.len() <= wanted.len()
            && kept
                .iter()
                .zip(&wanted)
                .all(|(a, b)| a.eq_ignore_ascii_case(b))
    })
}

/// Longest ConnectWise credential (`company`, the keys, the client id), in characters. Real
/// ones are short: a company id of a few words, 16-character keys, a 36-character client id.
pub const MAX_CREDENTIAL_LENGTH: usize = 256;
/// Most keys in one configuration, longest key name (characters), and largest value of a key
/// hubhook does not read (bytes as JSON). The element's own configuration has about 30 keys.
pub const MAX_CONFIGURATION_KEYS: usize = 200;
pub const MAX_KEY_LENGTH: usize = 256;
pub const MAX_VALUE_BYTES: usize = 16 * 1024;

/// A value's size as compact JSON, without building the text.
fn value_size(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` to a writer that never fails cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// A number given as a JSON number or as a string holding one.
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
}

/// A value as shown in an error: strings without quotes, anything else as JSON, shortened.
/// Characters a one-line label may not hold (control characters, line separators,
/// bidirectional controls) are shown escaped (`\n`), so that a message stays one line in a
/// log and reads as it was sent.
fn display_value(value: &Value) -> String {
    let text = match value {
        Value::String(s) => truncate(s),
        other => truncate(&other.to_string()),
    };
    crate::one_line::escaped(&text)
}

fn truncate(text: &str) -> String {
    const MAX: usize = 120;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let head: String = text.chars().take(MAX).collect();
        format!("{head}...")
    }
}

/// Whether `text` is an absolute http or https URL with a host. Hand-written because the
/// rules are few and this crate stays free of IO-oriented dependencies; the HTTP client
/// re-parses the URL anyway.
fn is_http_url(text: &str) -> bool {
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let lower = text.to_ascii_lowercase();
    let Some(scheme_length) = ["http://", "https://"]
        .iter()
        .find(|s| lower.starts_with(*s))
        .map(|s| s.len())
    else {
        return false;
    };
    let rest = &text[scheme_length..];
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return false;
    }
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        match inner.split_once(']') {
            Some((host, "")) => (host, None),
            Some((host, after)) => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return false,
            },
            None => return false,
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._:".contains(c));
    // Port 0 parses but nothing can listen there: every call would fail.
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p != 0));
    host_ok && port_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DOC_URL: &str =
        "/hubs/crm/contacts?where=lastUpdated>'${gmtDate:yyyy-MM-dd'T'HH:mm:ss'Z'}'";

    fn documented_resources() -> Value {
        json!({
            "contacts": {
                "url": DOC_URL,
                "idField": "id",
                "datesConfiguration": {
                    "updatedDateField": "_info.lastUpdated",
                    "updatedDateFormat": "yyyy-MM-dd'T'HH:mm:ss'Z'",
                    "updatedDateTimezone": "GMT",
                    "createdDateField": "_info.lastUpdated",
                    "createdDateFormat": "yyyy-MM-dd'T'HH:mm:ss'Z'",
                    "createdDateTimezone": "GMT"
                }
            }
        })
    }

    /// The second example body of the ConnectWise events page (API member keys).
    fn keys_example() -> Map<String, Value> {
        let body = json!({
            "baseUrl": "https://api-cloudelements/v4_6_release/apis/3.0",
            "company": "cloudelements",
            "public.key": "xxxxxxxx",
            "private.key": "xxxxxxxxxxxxxxxxxx",
            "event.notification.enabled": true,
            "event.notification.callback.url": "http://mycoolapp.com",
            "event.poller.refresh_interval": "15",
            "event.poller.configuration": documented_resources(),
        });
        object(body)
    }

    /// The first example body of the page (OAuth-shaped, no keys).
    fn oauth_example() -> Map<String, Value> {
        object(json!({
            "oauth.api.key": "<CLIENT_ID>",
            "oauth.api.secret": "<CLIENT_SECRET>",
            "oauth.callback.url": "<CALLBACK_URL>",
            "event.notification.enabled": true,
            "event.notification.callback.url": "http://mycoolapp.com",
            "event.poller.refresh_interval": "<minutes>",
            "event.poller.configuration": documented_resources(),
        }))
    }

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("test configuration must be an object"),
        }
    }

    fn with(mut base: Map<String, Value>, changes: Value) -> Map<String, Value> {
        for (key, value) in object(changes) {
            if value.is_null() {
                base.remove(&key);
            } else {
                base.insert(key, value);
            }
        }
        base
    }

    fn with_resource(changes: Value) -> Map<String, Value> {
        let mut resources = documented_resources();
        let contacts = &mut resources["contacts"];
        for (key, value) in object(changes) {
            let (map, key) = match key.strip_prefix("dates.") {
                Some(inner) => (&mut contacts["datesConfiguration"], inner.to_owned()),
                None => (&mut *contacts, key),
            };
            let Value::Object(map) = map else {
                panic!("test resource must be an object")
            };
            if value.is_null() {
                map.remove(&key);
            } else {
                map.insert(key, value);
            }
        }
        with(
            keys_example(),
            json!({"event.poller.configuration": resources}),
        )
    }

    /// `unmatchable_polls` over the documented body with the contacts' `where` given, on
    /// create (`previous` none) or on a change from `previous`.
    fn unmatchable(clause: &str, previous: Option<&InstanceConfig>) -> Vec<String> {
        let url = format!("/hubs/crm/contacts?where={clause}");
        let config = parse(with_resource(json!({ "url": url })));
        unmatchable_polls(&config, previous)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_where_that_can_never_match_is_found_and_a_placeholder_is_never_taken_for_a_value() {
        let window = "lastUpdated>'${gmtDate:yyyy-MM-dd'T'HH:mm:ss'Z'}'";
        let refused = unmatchable(&format!("{window} and id<0"), None);
        assert!(
            refused.len() == 1
                && refused[0].starts_with("`event.poller.configuration.contacts.url`")
                && refused[0].contains("`id<0` matches no record"),
            "{refused:?}"
        );
        // A placeholder is never taken for a fixed value: its literal differs between the
        // two renderings, so it is left out of the bounds (`${epoch}` is 0 at the first poll,
        // and `n=0 and n=3` would clash).
        for clause in [
            format!("{window} and n=${{epoch}} and n=3"),
            format!("{window} and n=${{epoch:ms}} and n!=0"),
            format!("{window} and y='${{gmtDate:yyyy}}' and y='1970'"),
        ] {
            assert_eq!(unmatchable(&clause, None), Vec::<String>::new(), "{clause}");
        }
        // The window rule: the updated date kept at or before the rendered instant, unless
        // the records' dates are read in another zone or the poll does not filter by them.
        let before = "lastUpdated<='${gmtDate:yyyy-MM-dd'T'HH:mm:ss'Z'}'";
        assert_eq!(unmatchable(before, None).len(), 1);
        // The poll's time in another zone with its offset written: the instant itself,
        // refused. Written without its offset, left alone: a zone at UTC+0 in winter and ahead
        // in summer is later half the year, and a zone behind UTC is not the instant itself.
        let offset = "lastUpdated<'${dateTimeZone:America/New_York:yyyy-MM-dd'T'HH:mm:ssXXX}'";
        assert_eq!(unmatchable(offset, None).len(), 1);
        for zone in [
            "WET",
            "Atlantic/Canary",
            "Antarctica/Troll",
            "Australia/Sydney",
            "America/New_York",
        ] {
            let clause = format!("lastUpdated<'${{dateTimeZone:{zone}:yyyy-MM-dd'T'HH:mm:ss}}'");
            assert_eq!(unmatchable(&clause, None), Vec::<String>::new(), "{clause}");
        }
        // A day's precision in a zone ahead of UTC: the next day at some instants.
        let day = "lastUpdated<'${dateTimeZone:Europe/Paris:yyyy-MM-dd}T00:00:00Z'";
        assert_eq!(unmatchable(day, None), Vec::<String>::new());
        let url = format!("/hubs/crm/contacts?where={before}");
        for changes in [
            json!({ "url": url, "filterByUpdatedDate": false }),
            json!({ "url": url, "dates.updatedDateTimezone": "Asia/Tokyo" }),
        ] {
            let config = parse(with_resource(changes));
            assert!(unmatchable_polls(&config, None).is_empty());
        }
        let mut since = with_resource(json!({ "url": url }));
        since.insert(
            "event.poller.firstRun".into(),
            json!("since:1969-12-01T00:00:00Z"),
        );
        assert!(unmatchable_polls(&parse(since), None).is_empty());
    }

    #[test]
    fn a_change_is_checked_only_for_the_resources_it_adds_or_changes() {
        let stored = parse(with_resource(
            json!({ "url": "/hubs/crm/contacts?where=id<0" }),
        ));
        // Stored before the check: a change that leaves the resource as it is passes.
        let same = parse(with_resource(
            json!({ "url": "/hubs/crm/contacts?where=id<0" }),
        ));
        assert!(unmatchable_polls(&same, Some(&stored)).is_empty());
        // Changing the resource checks it.
        let changed = unmatchable("id<0 and id>5", Some(&stored));
        assert!(
            changed[0].contains("`id<0` matches no record"),
            "{changed:?}"
        );
    }

    /// Checks that parsing fails with exactly these fields named (in order).
    fn check_errors(configuration: Map<String, Value>, fields: &[&str]) -> ConfigErrors {
        let errors = InstanceConfig::parse(&configuration).expect_err("invalid configuration");
        assert_eq!(errors.fields(), fields, "{errors}");
        errors
    }

    fn parse(configuration: Map<String, Value>) -> InstanceConfig {
        match InstanceConfig::parse(&configuration) {
            Ok(config) => config,
            Err(errors) => panic!("unexpected errors: {errors}"),
        }
    }

    #[test]
    fn parses_the_documented_keys_example() {
        let config = parse(keys_example());
        assert_eq!(
            config.connectwise.base_url,
            "https://api-cloudelements/v4_6_release/apis/3.0"
        );
        assert_eq!(config.connectwise.company, "cloudelements");
        assert_eq!(config.connectwise.public_key, "xxxxxxxx");
        assert_eq!(config.connectwise.private_key, "xxxxxxxxxxxxxxxxxx");
        assert_eq!(config.connectwise.client_id, None);
        assert!(config.filter_response_nulls);
        let events = &config.events;
        assert!(events.enabled);
        assert_eq!(events.callback_url.as_deref(), Some("http://mycoolapp.com"));
        assert_eq!(events.refresh_interval.duration(), Duration::from_secs(900));
        assert_eq!(events.signature_key, None);
        let contacts = &events.resources["contacts"];
        assert_eq!(contacts.url, DOC_URL);
        assert_eq!(contacts.id_field.as_str(), "id");
        assert_eq!(contacts.dates.updated.path.as_str(), "_info.lastUpdated");
        assert_eq!(
            contacts.dates.updated.pattern.as_str(),
            "yyyy-MM-dd'T'HH:mm:ss'Z'"
        );
        assert_eq!(contacts.dates.updated.zone, jiff::tz::TimeZone::UTC);
        assert!(contacts.dates.same_field());
        assert!(contacts.filter_by_updated_date);
        assert!(!contacts.filter_by_current_date);
        assert_eq!(contacts.created_check_tolerance, Duration::ZERO);
        assert_eq!(contacts.page_size, None);
        assert_eq!(contacts.poll_delay, Duration::ZERO);
    }

    #[test]
    fn refuses_the_oauth_example_naming_each_missing_key() {
        let errors = check_errors(
            oauth_example(),
            &[
                "baseUrl",
                "company",
                "public.key",
                "private.key",
                "event.poller.refresh_interval",
            ],
        );
        for error in &errors.0[1..4] {
            assert!(error.expected.contains("has no OAuth"), "{error}");
        }
        assert!(
            errors.0[2]
                .to_string()
                .contains("a ConnectWise API member public key (ConnectWise Manage has no OAuth")
        );
        // Without OAuth keys the hint is left out.
        let errors = check_errors(with(keys_example(), json!({"company": null})), &["company"]);
        assert!(!errors.to_string().contains("OAuth"));
    }

    #[test]
    fn accepts_scalars_as_strings_and_the_configuration_as_json_text() {
        let resources = documented_resources().to_string();
        let config = parse(with(
            keys_example(),
            json!({
                "baseUrl": null,
                "baseURL": "HTTPS://api-na.myconnectwise.net/v4_6_release/apis/3.0//",
                "event.notification.enabled": "TRUE",
                "event.poller.refresh_interval": 0.05,
                "event.poller.configuration": resources,
                "filter.response.nulls": "no",
                "connectwise.clientID": "client-1",
                "oauth.api.key": "ignored",
                "event.notification.signature.key": "sig",
            }),
        ));
        assert_eq!(
            config.connectwise.base_url,
            "HTTPS://api-na.myconnectwise.net/v4_6_release/apis/3.0"
        );
        assert!(config.events.enabled);
        assert_eq!(
            config.events.refresh_interval.duration(),
            Duration::from_secs(3)
        );
        assert!(!config.filter_response_nulls);
        assert_eq!(config.connectwise.client_id.as_deref(), Some("client-1"));
        assert_eq!(config.events.signature_key.as_deref(), Some("sig"));
        assert!(config.events.resources.contains_key("contacts"));
        // The client id falls back to oauth.api.key.
        let config = parse(with(keys_example(), json!({"oauth.api.key": "cid"})));
        assert_eq!(config.connectwise.client_id.as_deref(), Some("cid"));
    }

    #[test]
    fn disabled_events_need_no_poller_settings() {
        let config = parse(with(
            keys_example(),
            json!({
                "event.notification.enabled": "false",
                "event.notification.callback.url": null,
                "event.poller.refresh_interval": null,
                "event.poller.configuration": null,
            }),
        ));
        assert!(!config.events.enabled);
        assert_eq!(
            config.events.refresh_interval.duration(),
            Duration::from_secs(900)
        );
        assert!(config.events.resources.is_empty());
        // But what is present is still validated.
        check_errors(
            with(
                keys_example(),
                json!({
                    "event.notification.enabled": false,
                    "event.notification.callback.url": "ftp://x",
                    "event.poller.refresh_interval": "soon",
                }),
            ),
            &[
                "event.notification.callback.url",
                "event.poller.refresh_interval",
            ],
        );
    }

    #[test]
    fn enabled_events_need_callback_interval_and_resources() {
        check_errors(
            with(
                keys_example(),
                json!({
                    "event.notification.callback.url": null,
                    "event.poller.refresh_interval": null,
                    "event.poller.configuration": null,
                }),
            ),
            &[
                "event.notification.callback.url",
                "event.poller.refresh_interval",
                "event.poller.configuration",
            ],
        );
        check_errors(
            with(keys_example(), json!({"event.poller.configuration": {}})),
            &["event.poller.configuration"],
        );
        check_errors(
            with(
                keys_example(),
                json!({"event.poller.configuration": "{not json"}),
            ),
            &["event.poller.configuration"],
        );
        check_errors(
            with(keys_example(), json!({"event.poller.configuration": "[1]"})),
            &["event.poller.configuration"],
        );
    }

    #[test]
    fn names_each_bad_top_level_field() {
        let cases: &[(Value, &str)] = &[
            (json!({"baseUrl": "api-na.myconnectwise.net"}), "baseUrl"),
            (json!({"baseUrl": "https://"}), "baseUrl"),
            (json!({"baseUrl": "https://user@host/x"}), "baseUrl"),
            (json!({"baseUrl": "https://host:99999/x"}), "baseUrl"),
            (json!({"company": "  "}), "company"),
            (json!({"company": ["x"]}), "company"),
            (json!({"private.key": true}), "private.key"),
            (json!({"public.key": ""}), "public.key"),
            (
                json!({"event.notification.enabled": "maybe"}),
                "event.notification.enabled",
            ),
            (
                json!({"event.notification.callback.url": "mycoolapp.com"}),
                "event.notification.callback.url",
            ),
            (
                json!({"event.poller.refresh_interval": 0}),
                "event.poller.refresh_interval",
            ),
            (
                json!({"event.poller.refresh_interval": "-1"}),
                "event.poller.refresh_interval",
            ),
            (
                json!({"event.poller.refresh_interval": "10081"}),
                "event.poller.refresh_interval",
            ),
            (
                json!({"event.poller.refresh_interval": "NaN"}),
                "event.poller.refresh_interval",
            ),
            (
                json!({"event.poller.refresh_interval": true}),
                "event.poller.refresh_interval",
            ),
            (json!({"filter.response.nulls": 1}), "filter.response.nulls"),
            (
                json!({"event.notification.signature.key": {"a": 1}}),
                "event.notification.signature.key",
            ),
        ];
        for (changes, field) in cases {
            check_errors(with(keys_example(), changes.clone()), &[field]);
        }
    }

    #[test]
    fn secret_values_never_appear_in_errors() {
        let errors = check_errors(
            with(keys_example(), json!({"private.key": ["hunter2"]})),
            &["private.key"],
        );
        assert!(!errors.to_string().contains("hunter2"), "{errors}");
        assert!(errors.to_string().contains(MASK));
    }

    #[test]
    fn names_each_bad_resource_field() {
        let p = "event.poller.configuration.contacts";
        let cases: Vec<(Value, Vec<String>)> = vec![
            (json!({"idField": null}), vec![format!("{p}.idField")]),
            (json!({"idField": "a..b"}), vec![format!("{p}.idField")]),
            (json!({"url": null}), vec![format!("{p}.url")]),
            (
                json!({"url": "https://elsewhere/contacts"}),
                vec![format!("{p}.url")],
            ),
            (
                json!({"url": "/hubs/crm/contacts?where=x>'${nope}'"}),
                vec![format!("{p}.url")],
            ),
            (
                json!({"datesConfiguration": null}),
                vec![format!("{p}.datesConfiguration")],
            ),
            (
                json!({"datesConfiguration": "x"}),
                vec![format!("{p}.datesConfiguration")],
            ),
            (
                json!({"dates.updatedDateFormat": null}),
                vec![format!("{p}.datesConfiguration.updatedDateFormat")],
            ),
            (
                json!({"dates.updatedDateFormat": "yyyy-MM-ddTHH"}),
                vec![format!("{p}.datesConfiguration.updatedDateFormat")],
            ),
            (
                json!({"dates.createdDateField": null, "dates.createdDateFormat": null}),
                vec![
                    format!("{p}.datesConfiguration.createdDateField"),
                    format!("{p}.datesConfiguration.createdDateFormat"),
                ],
            ),
            (
                json!({"dates.updatedDateTimezone": "Mars/Olympus"}),
                vec![format!("{p}.datesConfiguration.updatedDateTimezone")],
            ),
            (
                json!({"updatedDateTimezone": "nowhere"}),
                vec![format!("{p}.updatedDateTimezone")],
            ),
            (
                json!({"filterByUpdatedDate": "sometimes"}),
                vec![format!("{p}.filterByUpdatedDate")],
            ),
            (
                json!({"filterByCurrentDate": 3}),
                vec![format!("{p}.filterByCurrentDate")],
            ),
            (
                json!({"createdCheckTolerance": -1}),
                vec![format!("{p}.createdCheckTolerance")],
            ),
            (
                json!({"pollDelay": "a while"}),
                vec![format!("{p}.pollDelay")],
            ),
            (json!({"pageSize": 0}), vec![format!("{p}.pageSize")]),
            (json!({"pageSize": "1001"}), vec![format!("{p}.pageSize")]),
            (json!({"pageSize": 2.5}), vec![format!("{p}.pageSize")]),
        ];
        for (changes, fields) in cases {
            let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
            check_errors(with_resource(changes), &fields);
        }
        check_errors(
            with(
                keys_example(),
                json!({"event.poller.configuration": {"": {}, "x": 1}}),
            ),
            &["event.poller.configuration", "event.poller.configuration.x"],
        );
    }

    #[test]
    fn reads_optional_resource_settings() {
        let config = parse(with_resource(json!({
            "filterByUpdateDate": "false",
            "filterByCurrentDate": "yes",
            "createdCheckTolerance": "2",
            "pageSize": "500",
            "pollDelay": 1.5,
            "unknownKey": {"ignored": true},
            "updatedDateTimezone": "EST",
            "dates.updatedDateTimezone": null,
            "dates.createdDateTimezone": null,
            "dates.createdDateField": "_info.dateEntered",
        })));
        let contacts = &config.events.resources["contacts"];
        assert!(!contacts.filter_by_updated_date);
        assert!(contacts.filter_by_current_date);
        assert_eq!(contacts.created_check_tolerance, Duration::from_secs(2));
        assert_eq!(contacts.page_size, Some(500));
        assert_eq!(contacts.poll_delay, Duration::from_millis(1500));
        // The resource-level updatedDateTimezone is the fallback for both dates.
        assert_eq!(
            contacts.dates.updated.zone.iana_name(),
            Some("America/New_York")
        );
        assert_eq!(
            contacts.dates.created.zone.iana_name(),
            Some("America/New_York")
        );
        assert!(!contacts.dates.same_field());
        // filterByUpdatedDate wins over the typo spelling.
        let config = parse(with_resource(json!({
            "filterByUpdatedDate": true,
            "filterByUpdateDate": false,
        })));
        assert!(config.events.resources["contacts"].filter_by_updated_date);
    }

    /// Parses `configuration` and returns the one error it must have, on `field`.
    #[test]
    fn reads_change_tracking_reconciliation_and_first_run() {
        let config = parse(with_resource(json!({})));
        let contacts = &config.events.resources["contacts"];
        assert_eq!(
            contacts.changes,
            ChangeTracking {
                track: true,
                include_previous: false,
                ignore_bookkeeping_only: false
            }
        );
        assert_eq!(contacts.reconcile_interval, Some(Duration::from_secs(3600)));
        assert_eq!(contacts.mass_delete_threshold, 0.2);
        assert_eq!(contacts.deleted_flag_field.as_str(), "deletedFlag");
        assert_eq!(config.events.first_run, FirstRun::Changes);

        let config = parse(with(
            with_resource(json!({
                "trackChanges": "false",
                "includePrevious": true,
                "ignoreBookkeepingOnlyUpdates": "yes",
                "reconcileInterval": "0.5",
                "massDeleteThreshold": "35%",
                "deletedFlagField": "inactiveFlag",
            })),
            json!({"event.poller.firstRun": "since:2026-01-01T00:00:00Z"}),
        ));
        let contacts = &config.events.resources["contacts"];
        assert!(!contacts.changes.track);
        assert!(contacts.changes.include_previous);
        assert!(contacts.changes.ignore_bookkeeping_only);
        assert_eq!(contacts.reconcile_interval, Some(Duration::from_secs(30)));
        assert!((contacts.mass_delete_threshold - 0.35).abs() < 1e-9);
        assert_eq!(contacts.deleted_flag_field.as_str(), "inactiveFlag");
        assert_eq!(
            config.events.first_run,
            FirstRun::Since("2026-01-01T00:00:00Z".parse().expect("time"))
        );
        let all = parse(with(
            keys_example(),
            json!({"event.poller.firstRun": "ALL"}),
        ));
        assert_eq!(all.events.first_run, FirstRun::All);
        let off = parse(with_resource(json!({"reconcileInterval": 0})));
        assert_eq!(off.events.resources["contacts"].reconcile_interval, None);
        // Another idField: reconciliation is off unless asked for, and cannot be asked for.
        let other_id = parse(with_resource(json!({"idField": "identifier"})));
        assert_eq!(
            other_id.events.resources["contacts"].reconcile_interval,
            None
        );
    }

    #[test]
    fn refuses_bad_change_tracking_reconciliation_and_first_run_values() {
        let prefix = "event.poller.configuration.contacts";
        for (changes, field) in [
            (json!({"trackChanges": "maybe"}), "trackChanges"),
            (json!({"includePrevious": 3}), "includePrevious"),
            (
                json!({"ignoreBookkeepingOnlyUpdates": []}),
                "ignoreBookkeepingOnlyUpdates",
            ),
            (json!({"reconcileInterval": -1}), "reconcileInterval"),
            (json!({"reconcileInterval": "soon"}), "reconcileInterval"),
            (json!({"reconcileInterval": "0.00001"}), "reconcileInterval"),
            (json!({"reconcileInterval": 20000}), "reconcileInterval"),
            (
                json!({"idField": "identifier", "reconcileInterval": 5}),
                "reconcileInterval",
            ),
            (json!({"massDeleteThreshold": 0}), "massDeleteThreshold"),
            (
                json!({"massDeleteThreshold": "150%"}),
                "massDeleteThreshold",
            ),
            (
                json!({"massDeleteThreshold": "lots"}),
                "massDeleteThreshold",
            ),
            (json!({"deletedFlagField": ""}), "deletedFlagField"),
        ] {
            let error = single_error(with_resource(changes.clone()), &format!("{prefix}.{field}"));
            assert!(!error.to_string().is_empty(), "{changes}");
        }
        for bad in ["sometimes", "since:yesterday", "since:"] {
            single_error(
                with(keys_example(), json!({"event.poller.firstRun": bad})),
                "event.poller.firstRun",
            );
        }
    }

    fn single_error(configuration: Map<String, Value>, field: &str) -> ConfigError {
        let errors = check_errors(configuration, &[field]);
        errors.0[0].clone()
    }

    #[test]
    fn refuses_date_formats_that_match_no_record() {
        let p = "event.poller.configuration.contacts.datesConfiguration";
        for (format, needle) in [
            ("ZZZZZ", "no date or time fields"),
            ("%s", "cannot read back"),
            ("{{", "`{` is reserved"),
            ("[yyyy]", "`[` is reserved"),
            ("EEEE MMMM", "reads that back as 1970-01-01"),
            ("yyyy-MM-dd hh:mm:ss", "reads that back"),
        ] {
            let error = single_error(
                with_resource(json!({"dates.updatedDateFormat": format})),
                &format!("{p}.updatedDateFormat"),
            );
            assert_eq!(error.value.as_deref(), Some(format));
            assert!(
                error
                    .expected
                    .starts_with("a Java date pattern that reads back the dates it writes"),
                "{error}"
            );
            assert!(error.expected.contains(needle), "{format}: {error}");
            single_error(
                with_resource(json!({"dates.createdDateFormat": format})),
                &format!("{p}.createdDateFormat"),
            );
        }
        // The round trip runs in the field's zone: IST is not a zone name hubhook reads back.
        single_error(
            with_resource(json!({
                "dates.updatedDateFormat": "yyyy-MM-dd HH:mm z",
                "dates.updatedDateTimezone": "Asia/Kolkata",
            })),
            &format!("{p}.updatedDateFormat"),
        );
        parse(with_resource(json!({
            "dates.updatedDateFormat": "yyyy-MM-dd HH:mm z",
            "dates.updatedDateTimezone": "PST",
        })));
    }

    #[test]
    fn refuses_poller_urls_that_could_not_be_sent() {
        let field = "event.poller.configuration.contacts.url";
        let url_error = |url: &str| single_error(with_resource(json!({"url": url})), field);
        // A placeholder whose format writes no date.
        let error = url_error("/hubs/crm/contacts?where=lastUpdated>'${gmtDate:HH:mm}'");
        assert!(error.expected.contains("`${gmtDate:HH:mm}`"), "{error}");
        // The 20,000-OR query of the probe (200 KB).
        let ors = vec!["id=1"; 20_000].join(" OR ");
        let error = url_error(&format!("/hubs/crm/contacts?where={ors}"));
        assert!(
            error.expected.contains("at most 2000 characters")
                && error.expected.contains("reach 160021"),
            "{error}"
        );
        // Short enough, but too many comparisons.
        let error = url_error(&format!(
            "/hubs/crm/contacts?where={}",
            vec!["id=1"; 101].join(" OR ")
        ));
        assert!(
            error.expected.contains("more than 100 comparisons"),
            "{error}"
        );
        // Short as written (1289 characters), long once rendered: 234 month names.
        let months = format!("${{gmtDate:yyyy{}}}", " MMMM".repeat(39)).repeat(6);
        let url = format!("/hubs/crm/contacts?where=a='{months}'");
        assert_eq!(url.chars().count(), 1289);
        let error = url_error(&url);
        assert!(error.expected.contains("reach 2399"), "{error}");
        let error = url_error("/hubs/crm/contacts?orderBy=id desc; drop");
        assert!(
            error
                .expected
                .contains("`orderBy` `id desc; drop` is not valid"),
            "{error}"
        );
        let error = url_error("/hubs/crm/contacts?fields=id;name");
        assert!(error.expected.contains("`fields`"), "{error}");
        let error = url_error("/hubs/crm/contacts?pageSize=5000");
        assert!(error.expected.contains("from 1 to 1000"), "{error}");
        let error = url_error("/hubs/crm/contacts?where=a=1&where=b=2");
        assert!(error.expected.contains("more than once"), "{error}");
        let error = url_error("/hubs/contacts");
        assert!(error.expected.contains("/hubs/crm/"), "{error}");
        // `fields` must keep the id and the dates.
        let error = url_error("/hubs/crm/contacts?fields=name,_info");
        assert!(
            error.expected.contains("leaves out idField `id`"),
            "{error}"
        );
        let error = url_error("/hubs/crm/contacts?fields=id,name");
        assert!(
            error
                .expected
                .contains("leaves out updatedDateField `_info.lastUpdated`"),
            "{error}"
        );
        for url in [
            "/hubs/crm/contacts?fields=ID,_info&orderBy=company.name asc,id",
            "/hubs/crm/contacts?fields=id,_info/lastUpdated&pageSize=1000",
            "/hubs/crm/contacts?where=lastUpdated>'${dateTimeZone:EST:yyyy-MM-dd'T'HH:mm:ssXXX}'",
        ] {
            parse(with_resource(json!({"url": url})));
        }
    }

    #[test]
    fn refuses_resource_names_outside_the_documented_set() {
        let resources = |name: &str| {
            let mut resources = Map::new();
            resources.insert(name.to_owned(), documented_resources()["contacts"].clone());
            with(
                keys_example(),
                json!({"event.poller.configuration": resources}),
            )
        };
        for (name, shown) in [
            ("con\ntacts", "resource name \"con\\ntacts\""),
            ("a\u{0}b", "resource name \"a\\0b\""),
            ("a.b", "resource name \"a.b\""),
            ("two words", "resource name \"two words\""),
            ("", "resource name \"\""),
            ("k\u{e9}y", "resource name \"k\u{e9}y\""),
        ] {
            let error = single_error(resources(name), "event.poller.configuration");
            assert_eq!(error.value.as_deref(), Some(shown), "{name:?}");
            assert!(
                error
                    .expected
                    .starts_with("resource names of 1 to 64 characters"),
                "{error}"
            );
        }
        single_error(resources(&"a".repeat(65)), "event.poller.configuration");
        for name in [
            "contacts",
            "time-entries",
            "Service_Tickets2",
            &"a".repeat(64),
        ] {
            assert!(
                parse(resources(name)).events.resources.contains_key(name),
                "{name}"
            );
        }
        let mut many = Map::new();
        for i in 0..=MAX_RESOURCES {
            many.insert(format!("r{i}"), documented_resources()["contacts"].clone());
        }
        let error = single_error(
            with(keys_example(), json!({"event.poller.configuration": many})),
            "event.poller.configuration",
        );
        assert_eq!(error.value.as_deref(), Some("33 resources"));
        assert_eq!(error.expected, "at most 32 resources per instance");
        many.remove("r0");
        assert_eq!(
            parse(with(
                keys_example(),
                json!({"event.poller.configuration": many})
            ))
            .events
            .resources
            .len(),
            MAX_RESOURCES
        );
    }

    #[test]
    fn limits_the_length_of_http_urls() {
        let long = format!(
            "https://example.com/{}",
            "a".repeat(MAX_HTTP_URL_LENGTH - 19)
        );
        for key in ["baseUrl", "event.notification.callback.url"] {
            let mut changes = Map::new();
            changes.insert(key.to_owned(), json!(long));
            let error = single_error(with(keys_example(), Value::Object(changes)), key);
            assert!(
                error
                    .expected
                    .contains("of at most 2000 characters (this one has 2001)"),
                "{error}"
            );
            let mut changes = Map::new();
            changes.insert(key.to_owned(), json!(&long[..long.len() - 1]));
            parse(with(keys_example(), Value::Object(changes)));
        }
    }

    #[test]
    fn credentials_fit_a_header_and_unread_keys_are_bounded() {
        let long = "k".repeat(MAX_CREDENTIAL_LENGTH + 1);
        let errors = check_errors(
            with(
                keys_example(),
                json!({
                    "company": long,
                    "public.key": "pub\r\nX-Injected: 1",
                    "private.key": long,
                    "connectwise.clientID": "id\nmore",
                }),
            ),
            &[
                "company",
                "public.key",
                "private.key",
                "connectwise.clientID",
            ],
        );
        let text = errors.to_string();
        assert!(text.contains("257 characters"), "{text}");
        // Secret values stay masked even when refused.
        assert!(!text.contains("X-Injected"), "{text}");
        // A value is shown on one line, and each key is refused once.
        assert!(text.contains("`id\\nmore`"), "{text}");
        assert_eq!(text.matches("`company`").count(), 1, "{text}");
        // The longest accepted credential is accepted.
        let fits = "k".repeat(MAX_CREDENTIAL_LENGTH);
        parse(with(keys_example(), json!({ "company": fits })));

        // Keys hubhook does not read are kept, within bounds.
        parse(with(
            keys_example(),
            json!({ "my.own.setting": "x".repeat(1000) }),
        ));
        let big = "x".repeat(MAX_VALUE_BYTES);
        let errors = check_errors(
            with(keys_example(), json!({ "my.own.setting": big })),
            &["my.own.setting"],
        );
        assert!(errors.to_string().contains("16384 bytes"), "{errors}");
        for key in ["", " ", "a\u{2028}b", "x\u{202E}y"] {
            check_errors(with(keys_example(), json!({ key: 1 })), &["configuration"]);
        }
        // A base URL with a query or fragment would take every call's path into it; two
        // spellings of one setting must agree.
        for base in [
            "https://cw.example/v4_6_release/apis/3.0?x=",
            "https://cw.example/v4_6_release/apis/3.0#f",
        ] {
            check_errors(
                with(keys_example(), json!({ "baseUrl": base })),
                &["baseUrl"],
            );
        }
        check_errors(
            with(
                keys_example(),
                json!({ "baseURL": "https://elsewhere.example/apis/3.0" }),
            ),
            &["baseURL"],
        );
        parse(with(
            keys_example(),
            json!({ "baseURL": "https://api-cloudelements/v4_6_release/apis/3.0/" }),
        ));
        let key = format!("line\n{}", "k".repeat(10));
        let errors = check_errors(with(keys_example(), json!({ key: 1 })), &["configuration"]);
        assert!(errors.to_string().contains("line\\n"), "{errors}");
        let mut many = keys_example();
        for i in 0..MAX_CONFIGURATION_KEYS {
            many.insert(format!("extra.{i}"), json!(i));
        }
        check_errors(many, &["configuration"]);
    }

    #[test]
    fn megabyte_values_and_deep_nesting_are_refused_quickly() {
        let megabyte = "a".repeat(1 << 20);
        let p = "event.poller.configuration.contacts";
        let errors = check_errors(
            with_resource(json!({
                "url": format!("/hubs/crm/contacts?where={megabyte}"),
                "idField": format!("{megabyte}..x"),
                "dates.updatedDateFormat": megabyte,
            })),
            &[
                &format!("{p}.url"),
                &format!("{p}.idField"),
                &format!("{p}.datesConfiguration.updatedDateFormat"),
            ],
        );
        // Messages quote at most a short part of each value.
        assert!(
            errors.to_string().len() < 2000,
            "{}",
            errors.to_string().len()
        );
        let mut resources = Map::new();
        resources.insert(megabyte, json!({}));
        check_errors(
            with(
                keys_example(),
                json!({"event.poller.configuration": resources}),
            ),
            &["event.poller.configuration"],
        );
        // A configuration string nested 100,000 levels deep is refused by the JSON reader's
        // depth limit, not by a stack overflow.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        check_errors(
            with(keys_example(), json!({"event.poller.configuration": deep})),
            &["event.poller.configuration"],
        );
    }

    #[test]
    fn refresh_interval_names_the_smallest_value() {
        let error = RefreshInterval::parse(&json!("0.0000001")).expect_err("too short");
        assert_eq!(error.field, "event.poller.refresh_interval");
        assert_eq!(error.value.as_deref(), Some("0.0000001"));
        assert!(error.expected.contains("from 0.0167 (1 second)"), "{error}");
        let interval = |value: Value| RefreshInterval::parse(&value).map(RefreshInterval::duration);
        assert_eq!(interval(json!("0.0167")), Ok(Duration::from_millis(1002)));
        assert_eq!(interval(json!(1.0 / 60.0)), Ok(Duration::from_secs(1)));
        assert!(interval(json!("0.0166")).is_err());
    }

    #[test]
    fn refresh_interval_parses_minutes() {
        let check = |value: Value, expected: Option<Duration>| {
            assert_eq!(
                RefreshInterval::parse(&value)
                    .ok()
                    .map(RefreshInterval::duration),
                expected,
                "{value}"
            );
        };
        check(json!("15"), Some(Duration::from_secs(900)));
        check(json!(15), Some(Duration::from_secs(900)));
        check(json!(" 1 "), Some(Duration::from_secs(60)));
        check(json!("0.05"), Some(Duration::from_secs(3)));
        check(json!("0.1"), Some(Duration::from_secs(6)));
        check(json!(10080), Some(Duration::from_secs(604_800)));
        check(json!(10080.5), None);
        check(json!("0"), None);
        check(json!("0.0000000001"), None);
        check(json!("-5"), None);
        check(json!("inf"), None);
        check(json!(""), None);
        check(json!(null), None);
        let error = RefreshInterval::parse(&json!("abc")).expect_err("invalid");
        assert_eq!(error.field, "event.poller.refresh_interval");
        assert_eq!(error.value.as_deref(), Some("abc"));
        let interval = RefreshInterval::parse(&json!("0.05")).expect("valid");
        assert_eq!(
            interval.floored(Duration::from_secs(60)).duration(),
            Duration::from_secs(60)
        );
        assert_eq!(
            interval.floored(Duration::from_secs(1)).duration(),
            Duration::from_secs(3)
        );
    }

    #[test]
    fn secrets_are_masked_split_and_merged() {
        let configuration = with(
            keys_example(),
            json!({"event.notification.signature.key": "sig", "oauth.api.secret": null}),
        );
        let masked = mask_secrets(&configuration);
        assert_eq!(masked["private.key"], json!(MASK));
        assert_eq!(masked["public.key"], json!(MASK));
        assert_eq!(masked["event.notification.signature.key"], json!(MASK));
        assert!(!masked.contains_key("oauth.api.secret"));
        assert_eq!(masked["company"], json!("cloudelements"));
        let (public, secrets) = split_secrets(&configuration);
        assert_eq!(public, masked);
        assert_eq!(
            Value::Object(secrets.clone()),
            json!({
                "private.key": "xxxxxxxxxxxxxxxxxx",
                "public.key": "xxxxxxxx",
                "event.notification.signature.key": "sig",
            })
        );
        assert_eq!(merge_secrets(&public, &secrets), configuration);
    }

    #[test]
    fn debug_output_hides_secrets() {
        let config = parse(with(
            keys_example(),
            json!({"event.notification.signature.key": "topsecret"}),
        ));
        let debug = format!("{config:?}");
        for secret in ["xxxxxxxxxxxxxxxxxx", "xxxxxxxx\"", "topsecret"] {
            assert!(!debug.contains(secret), "{secret} leaked in {debug}");
        }
        assert!(debug.contains("cloudelements"));
    }

    #[test]
    fn recognizes_http_urls() {
        let cases = [
            ("http://mycoolapp.com", true),
            (
                "https://api-na.myconnectwise.net/v4_6_release/apis/3.0",
                true,
            ),
            ("http://127.0.0.1:8080/hook?x=1", true),
            ("http://[::1]:8080/", true),
            ("HTTPS://Example.com", true),
            ("ftp://example.com", false),
            ("mycoolapp.com", false),
            ("http://", false),
            ("http:///path", false),
            ("http://a b.com", false),
            ("http://host:/x", false),
            ("http://host:http", false),
            ("http://[::1", false),
            // Nothing listens on port 0; an international name must be sent as `xn--`.
            ("http://127.0.0.1:0/x", false),
            ("http://[::1]:0/", false),
            ("https://exämple.com/x", false),
            ("https://xn--exmple-cua.com/x", true),
        ];
        for (url, expected) in cases {
            assert_eq!(is_http_url(url), expected, "{url}");
        }
    }
}

#[cfg(test)]
mod properties {
    //! Generated configurations never make parsing panic: arbitrary JSON, and the documented
    //! example with any one of its values replaced.

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|f| json!(f)),
            any::<String>().prop_map(Value::String),
            prop::sample::select(
                &[
                    "15",
                    "0.0167",
                    "yyyy-MM-dd'T'HH:mm:ss'Z'",
                    "EEEE MMMM",
                    "GMT",
                    "id",
                    "_info.lastUpdated",
                    "/hubs/crm/contacts?where=a=1",
                    "https://x/y",
                    "true",
                    "${gmtDate:yyyy}",
                    "{\"contacts\": {}}",
                ][..]
            )
            .prop_map(|s| Value::String(s.to_owned())),
        ];
        leaf.prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        "[a-zA-Z.]{0,12}",
                        prop::sample::select(
                            &[
                                "url",
                                "idField",
                                "datesConfiguration",
                                "updatedDateFormat",
                                "updatedDateField",
                                "createdDateFormat",
                                "createdDateField",
                                "updatedDateTimezone",
                                "pageSize",
                                "pollDelay",
                                "contacts",
                            ][..]
                        )
                        .prop_map(str::to_owned),
                    ],
                    inner,
                    0..5,
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// The documented configuration (keys example, one resource).
    fn documented() -> Map<String, Value> {
        let value = json!({
            "baseUrl": "https://api-na.myconnectwise.net/v4_6_release/apis/3.0",
            "company": "c", "public.key": "p", "private.key": "s",
            "event.notification.enabled": true,
            "event.notification.callback.url": "http://mycoolapp.com",
            "event.poller.refresh_interval": "15",
            "event.poller.configuration": {"contacts": {
                "url": "/hubs/crm/contacts?where=lastUpdated>'${gmtDate:yyyy-MM-dd'T'HH:mm:ss'Z'}'",
                "idField": "id",
                "datesConfiguration": {
                    "updatedDateField": "_info.lastUpdated",
                    "updatedDateFormat": "yyyy-MM-dd'T'HH:mm:ss'Z'",
                    "createdDateField": "_info.lastUpdated",
                    "createdDateFormat": "yyyy-MM-dd'T'HH:mm:ss'Z'"
                }
            }}
        });
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    /// Every JSON pointer to a value inside `value`.
    fn pointers(value: &Value, prefix: String, out: &mut Vec<String>) {
        out.push(prefix.clone());
        if let Value::Object(map) = value {
            for (key, inner) in map {
                let escaped = key.replace('~', "~0").replace('/', "~1");
                pointers(inner, format!("{prefix}/{escaped}"), out);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_json_never_panics(value in json_value()) {
            if let Value::Object(map) = &value {
                let _ = InstanceConfig::parse(map);
            }
            let mut map = Map::new();
            map.insert("event.poller.configuration".to_owned(), value.clone());
            map.insert("event.notification.enabled".to_owned(), json!(true));
            let _ = InstanceConfig::parse(&map);
            map.insert("event.poller.configuration".to_owned(), json!(value.to_string()));
            let _ = InstanceConfig::parse(&map);
        }

        #[test]
        fn replacing_any_documented_value_never_panics(
            index in any::<prop::sample::Index>(),
            replacement in json_value(),
        ) {
            let mut document = Value::Object(documented());
            prop_assert!(InstanceConfig::parse(&documented()).is_ok());
            let mut all = Vec::new();
            pointers(&document, String::new(), &mut all);
            let pointer = index.get(&all[1..]).clone();
            if let Some(slot) = document.pointer_mut(&pointer) {
                *slot = replacement;
            }
            if let Value::Object(map) = &document
                && let Err(errors) = InstanceConfig::parse(map)
            {
                // Every error names a field and secrets never show.
                for error in &errors.0 {
                    prop_assert!(!error.field.is_empty());
                    if SECRET_KEYS.contains(&error.field.as_str()) {
                        prop_assert!(matches!(error.value.as_deref(), None | Some(MASK)));
                    }
                }
            }
        }
    }
}
