//! `/instances`: create, list, read and delete element instances, and poll one now. The
//! instance's shape (`InstanceOut`) and the checks of an instance body (`validate`) live here
//! and are shared by the updates (`instance_updates`), the configuration records
//! (`configuration`) and the element-scoped routes (`elements`).

use axum::{
    Json,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, StatusCode},
};
use hubhook_connectwise::{CwError, HubQuery};
use hubhook_core::{
    ConfigErrors, ELEMENT_KEY, InstanceConfig, InstanceId, MASK, SECRET_KEYS, is_mask,
    mask_secrets, one_line, render_url, split_secrets,
};
use hubhook_store::{InstanceRow, NewInstance, Principal, UserRow};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::element::{ELEMENT_ID, ElementOut};
use crate::html::{self, strip_tags};
use crate::openapi::{CommonErrors, ConnectWiseUnavailable};
use crate::paging::{Paging, next_page_header};
use crate::{ApiError, AppState, auth::Caller, body::JsonBody, new_secret, secret_hash};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_instance, list_instances))
        .routes(routes!(get_instance, delete_instance))
        .routes(routes!(poll_instance))
}

/// `POST /instances` body, as Cloud Elements documents it. Everything is optional here so that
/// a missing field gets our own error naming it rather than a deserializer message.
#[derive(Debug, Default, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceIn {
    /// `{"key": "connectwisecrmrest"}`.
    pub(crate) element: Option<ElementRef>,
    /// Accepted for compatibility with Cloud Elements' OAuth examples; ConnectWise has no OAuth.
    #[allow(dead_code)]
    #[schema(value_type = Option<Object>)]
    pub(crate) provider_data: Option<Value>,
    /// ConnectWise credentials and the events configuration (`event.*` keys).
    #[schema(value_type = Option<Object>)]
    pub(crate) configuration: Option<Map<String, Value>>,
    /// Strings (or `{"name": ..}` objects, as older Cloud Elements examples send).
    #[schema(value_type = Option<Vec<String>>)]
    pub(crate) tags: Option<Vec<Value>>,
    pub(crate) name: Option<String>,
    /// Every other field: a read's own fields sent back (`id`, `token`, ...) are ignored,
    /// anything else is refused ([`check_other_fields`]), so that a typo (`nmae`) is not
    /// silently dropped.
    #[serde(flatten)]
    #[schema(ignore)]
    pub(crate) other: Map<String, Value>,
}

/// The fields of an instance as reads show it that a body may carry back and that a create or
/// an update ignores: a client that reads an instance, changes it and sends it back is not
/// refused for what it did not write.
const READ_ONLY_FIELDS: &[&str] = &[
    "id",
    "createdDate",
    "updatedDate",
    "token",
    "elementId",
    "provisionInteractions",
    "valid",
    "disabled",
    "maxCacheSize",
    "cacheTimeToLive",
    "eventsEnabled",
    "eventsNotificationCallbackUrl",
    "traceLoggingEnabled",
    "cachingEnabled",
    "externalAuthentication",
    "user",
    "webhookSecret",
];

/// Refuses a field that is neither an instance body's nor a read's own.
fn check_other_fields(other: &Map<String, Value>) -> Result<(), ApiError> {
    match other
        .keys()
        .find(|key| !READ_ONLY_FIELDS.contains(&key.as_str()))
    {
        None => Ok(()),
        Some(key) => Err(ApiError::bad_request(format!(
            "`{}` is not a field of an instance body; expected `name`, `tags`, `configuration`, `element` (and `providerData`, accepted and ignored; the fields a read shows are ignored too)",
            key.chars().take(100).collect::<String>().escape_debug()
        ))),
    }
}

/// The element an instance is of, by its key or by Cloud Elements' numeric id (3012), which
/// its API takes too.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ElementRef {
    pub(crate) key: Option<String>,
    /// A whole number or its digits as a string (`3012`, `"3012"`, `3012.0`), as JSON clients
    /// write ids.
    #[schema(value_type = Option<i64>)]
    pub(crate) id: Option<Value>,
}

impl ElementRef {
    /// The element of every instance.
    pub(crate) fn connectwise() -> ElementRef {
        ElementRef {
            key: Some(ELEMENT_KEY.to_string()),
            id: None,
        }
    }

    /// Why this is not the ConnectWise element, naming the field.
    fn problem(&self) -> Option<String> {
        // Whether the id given, if any, is the element's.
        let ours = self
            .id
            .as_ref()
            .filter(|id| !id.is_null())
            .map(|id| match id {
                Value::Number(n) => {
                    n.as_i64() == Some(ELEMENT_ID) || n.as_f64() == Some(ELEMENT_ID as f64)
                }
                Value::String(text) => text.trim() == ELEMENT_ID.to_string(),
                _ => false,
            });
        let shown = || {
            let text = self.id.as_ref().map(Value::to_string).unwrap_or_default();
            crate::body::shown(&text, 100)
        };
        match (self.key.as_deref(), ours) {
            (Some(ELEMENT_KEY), None | Some(true)) | (None, Some(true)) => None,
            (Some(ELEMENT_KEY), Some(false)) => Some(format!(
                "`element.id`: {} is not the id of `{ELEMENT_KEY}`, expected {ELEMENT_ID} (or no id)",
                shown()
            )),
            (Some(other), _) => Some(format!(
                "`element.key`: unknown element `{}`, expected `{ELEMENT_KEY}`",
                other.chars().take(100).collect::<String>().escape_debug()
            )),
            (None, Some(false)) => Some(format!(
                "`element.id`: unknown element {}, expected {ELEMENT_ID} (`{ELEMENT_KEY}`)",
                shown()
            )),
            (None, None) => Some(format!(
                "`element.key` is required, expected `{ELEMENT_KEY}` (or `element.id` {ELEMENT_ID})"
            )),
        }
    }
}

/// An element instance in Cloud Elements' shape. Secrets in `configuration` are masked; the
/// `token` is shown once, in the answer to the create, and masked afterwards (it is stored
/// hashed).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceOut {
    pub id: i64,
    pub name: String,
    pub created_date: String,
    pub updated_date: String,
    pub token: String,
    pub element: ElementOut,
    pub element_id: i64,
    pub tags: Vec<String>,
    pub provision_interactions: Vec<String>,
    pub valid: bool,
    pub disabled: bool,
    pub max_cache_size: i64,
    pub cache_time_to_live: i64,
    #[schema(value_type = Object)]
    pub configuration: Map<String, Value>,
    pub events_enabled: bool,
    pub events_notification_callback_url: String,
    pub trace_logging_enabled: bool,
    pub caching_enabled: bool,
    pub external_authentication: String,
    pub user: UserOut,
    /// The Standard Webhooks secret (`whsec_…`), only in the answer to the create.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
}

/// The user who created an instance. Users made without an email show empty strings, since
/// Cloud Elements clients expect the fields to be there.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserOut {
    pub id: i64,
    pub email_address: String,
    pub first_name: String,
    pub last_name: String,
}

impl UserOut {
    fn new(id: i64, users: &[UserRow]) -> UserOut {
        let user = users.iter().find(|u| u.id.0 == id);
        UserOut {
            id,
            email_address: user.and_then(|u| u.email.clone()).unwrap_or_default(),
            first_name: user.map(|u| u.first_name.clone()).unwrap_or_default(),
            last_name: user.map(|u| u.last_name.clone()).unwrap_or_default(),
        }
    }
}

/// The instances as Cloud Elements shows them, with their users; `token` only at creation.
pub(crate) async fn instances_out(
    state: &AppState,
    org: hubhook_store::OrganizationId,
    rows: &[InstanceRow],
    token: Option<&str>,
) -> Result<Vec<InstanceOut>, ApiError> {
    let users = state.engine.store().users(org).await?;
    Ok(rows
        .iter()
        .map(|row| InstanceOut::new(row, token, &users))
        .collect())
}

/// One instance as Cloud Elements shows it.
pub(crate) async fn instance_out(
    state: &AppState,
    row: &InstanceRow,
    token: Option<&str>,
) -> Result<InstanceOut, ApiError> {
    let mut out =
        instances_out(state, row.organization_id, std::slice::from_ref(row), token).await?;
    out.pop()
        .ok_or_else(|| ApiError::internal("an instance vanished while being shown"))
}

impl InstanceOut {
    /// The instance as Cloud Elements shows it; `token` only at creation (else masked).
    fn new(row: &InstanceRow, token: Option<&str>, users: &[UserRow]) -> InstanceOut {
        let configuration = mask_secrets(&row.configuration);
        let callback = configuration
            .get("event.notification.callback.url")
            .and_then(Value::as_str)
            .map(str::to_string);
        InstanceOut {
            id: row.id.0,
            name: row.name.clone(),
            created_date: format_date(row.created_at),
            updated_date: format_date(row.updated_at),
            token: token.unwrap_or(MASK).to_string(),
            element: ElementOut::connectwise(),
            element_id: ELEMENT_ID,
            tags: row.tags.clone(),
            provision_interactions: Vec::new(),
            valid: true,
            disabled: row.disabled,
            max_cache_size: 0,
            cache_time_to_live: 0,
            configuration,
            events_enabled: row.events_enabled,
            events_notification_callback_url: callback.unwrap_or_else(|| "false".to_string()),
            trace_logging_enabled: false,
            caching_enabled: false,
            external_authentication: "none".to_string(),
            user: UserOut::new(row.user_id.0, users),
            webhook_secret: None,
        }
    }
}

pub(crate) fn format_date(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Create an element instance: checks the configuration (every problem named) and the
/// ConnectWise credentials (a `GET /system/info` with them), then starts polling.
#[utoipa::path(
    post, path = "/instances", tag = "instances",
    request_body = InstanceIn,
    security(("UserOrganization" = [])),
    responses((status = 200, description = "The instance, with its token", body = InstanceOut), CommonErrors, ConnectWiseUnavailable)
)]
async fn create_instance(
    State(state): State<AppState>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<InstanceIn>,
) -> Result<Json<InstanceOut>, ApiError> {
    create(&state, caller, body).await.map(Json)
}

/// Creates the caller's instance from a body, after every check.
pub(crate) async fn create(
    state: &AppState,
    caller: Principal,
    body: InstanceIn,
) -> Result<InstanceOut, ApiError> {
    let valid = validate(state, body, None).await?;
    let engine = &state.engine;
    let now = engine.clock().now();
    let token = new_secret().map_err(ApiError::internal)?;
    let (public, secrets) = split_secrets(&valid.configuration);
    let refresh_ms = valid.refresh_interval_ms();
    let events = &valid.config.events;
    let row = engine
        .store()
        .create_instance(NewInstance {
            organization_id: caller.organization_id,
            user_id: caller.user_id,
            name: valid.name,
            element_key: ELEMENT_KEY.to_string(),
            token_hash: secret_hash(&token),
            configuration: public,
            secrets,
            tags: valid.tags,
            events_enabled: events.enabled,
            resources: if events.enabled {
                events.resources.keys().cloned().collect()
            } else {
                Vec::new()
            },
            refresh_interval_ms: refresh_ms,
            now,
        })
        .await?;
    let webhook_secret =
        crate::routes::webhook_secret::set_new_secret(state, caller.organization_id, row.id)
            .await?;
    tracing::info!(instance = %row.id, resources = events.resources.len(), "instance created");
    engine.wake_poller();
    let mut out = instance_out(state, &row, Some(&token)).await?;
    out.webhook_secret = webhook_secret;
    Ok(out)
}

/// An instance body that passed every check a create makes.
pub(crate) struct ValidInstance {
    pub name: String,
    pub tags: Vec<String>,
    /// The configuration as sent (secrets included).
    pub configuration: Map<String, Value>,
    pub config: InstanceConfig,
}

impl ValidInstance {
    pub fn refresh_interval_ms(&self) -> i64 {
        i64::try_from(self.config.events.refresh_interval.duration().as_millis())
            .unwrap_or(i64::MAX)
    }
}

/// Every check of an instance body, in the order a user fixes things: the element, the name
/// and tags, the configuration (all its problems at once), the callback address, the poller
/// URLs, and last the calls to ConnectWise: the credentials, then a trial read of each poller
/// URL. An update passes the instance's `previous` configuration: what it does not change was
/// checked with ConnectWise when it was stored and is not asked again, so renaming an instance
/// or moving its callback works while ConnectWise is down.
pub(crate) async fn validate(
    state: &AppState,
    body: InstanceIn,
    previous: Option<&InstanceConfig>,
) -> Result<ValidInstance, ApiError> {
    check_other_fields(&body.other)?;
    // Every problem of the body at once, each a part naming its field (the console puts each
    // beside its input): a user fixes them in one round trip, not one per request.
    let mut problems: Vec<String> = Vec::new();
    let element = body.element.unwrap_or(ElementRef {
        key: None,
        id: None,
    });
    problems.extend(element.problem());
    let name = match body.name {
        None => {
            problems.push(format!(
                "`name` is required: a non-empty string of at most {MAX_NAME_CHARS} characters (HTML tags are removed)"
            ));
            None
        }
        Some(name) => stripped("name", &name, MAX_NAME_CHARS)
            .map_err(|e| problems.push(e.message))
            .ok(),
    };
    let tags = parse_tags(body.tags).map_err(|e| problems.extend(e)).ok();
    let mut configuration_problems = Vec::new();
    let configuration = body.configuration;
    let config = match &configuration {
        None => {
            problems.push("`configuration` is required: an object with the ConnectWise keys and the events settings".to_string());
            None
        }
        Some(configuration) => {
            for key in SECRET_KEYS {
                let Some(value) = configuration.get(*key) else {
                    continue;
                };
                // Updates put stored secrets back in place of `********` before this; one
                // still here has no stored value behind it (a create, or a key never set):
                // it must not become the secret.
                if is_mask(value) {
                    configuration_problems.push(format!(
                        "`{key}`: `{MASK}` stands for a stored secret in what reads show, and none is stored under `{key}`; send the value itself"
                    ));
                }
                // A blank secret would be stored (and shown as `********`) while meaning
                // none: deliveries would go unsigned under a configuration that reads as
                // signed.
                if value.as_str().is_some_and(|text| text.trim().is_empty()) {
                    configuration_problems.push(format!(
                        "`{key}` is blank; send the secret, or null to have none"
                    ));
                }
            }
            let unknown = hubhook_core::config::unknown_poller_keys(configuration);
            configuration_problems.extend(unknown.iter().map(ToString::to_string));
            match InstanceConfig::parse(configuration) {
                Ok(config) => {
                    let unmatchable = hubhook_core::config::unmatchable_polls(&config, previous);
                    configuration_problems.extend(unmatchable.iter().map(ToString::to_string));
                    Some(config)
                }
                Err(ConfigErrors(errors)) => {
                    configuration_problems.extend(errors.iter().map(ToString::to_string));
                    None
                }
            }
        }
    };
    let (Some(name), Some(tags), Some(configuration), Some(config), true, true) = (
        name,
        tags,
        configuration,
        config,
        problems.is_empty(),
        configuration_problems.is_empty(),
    ) else {
        // Only the configuration's: said as before, for clients that read the prefix.
        let message = if problems.is_empty() {
            format!(
                "invalid configuration: {}",
                configuration_problems.join("; ")
            )
        } else {
            problems.extend(configuration_problems);
            problems.join("; ")
        };
        return Err(ApiError::bad_request(message));
    };

    let engine = &state.engine;
    if let (true, Some(callback)) = (config.events.enabled, &config.events.callback_url) {
        engine
            .callback_policy()
            .check_url(callback)
            .await
            .map_err(|e| {
                ApiError::bad_request(format!("`event.notification.callback.url`: {e}"))
            })?;
    }
    let now = engine.clock().now();
    for (resource, poll) in &config.events.resources {
        let field = format!("event.poller.configuration.{resource}.url");
        let url = render_url(&poll.url, now)
            .map_err(|e| ApiError::bad_request(format!("`{field}`: {e}")))?;
        HubQuery::parse(&url, poll.page_size)
            .map_err(|e| ApiError::bad_request(format!("`{field}`: {e}")))?;
    }
    let same_site = previous.is_some_and(|p| p.connectwise == config.connectwise);
    if !same_site {
        check_credentials(state, &config).await?;
    }
    check_poller_urls(state, &config, previous).await?;
    Ok(ValidInstance {
        name,
        tags,
        configuration,
        config,
    })
}

/// Longest instance name, in characters.
const MAX_NAME_CHARS: usize = 255;
/// Most tags on one instance, and longest tag, in characters.
const MAX_TAGS: usize = 50;
const MAX_TAG_CHARS: usize = 100;

/// Tags are strings; older Cloud Elements examples send `{"name": ..}` objects, accepted too.
/// Bounded in number and length, and blank tags are refused.
fn parse_tags(tags: Option<Vec<Value>>) -> Result<Vec<String>, Vec<String>> {
    let tags = tags.unwrap_or_default();
    if tags.len() > MAX_TAGS {
        return Err(vec![format!(
            "`tags`: {} tags given, at most {MAX_TAGS} are allowed",
            tags.len()
        )]);
    }
    let mut kept = Vec::new();
    let mut problems = Vec::new();
    for (i, tag) in tags.iter().enumerate() {
        let text = match tag {
            Value::String(s) => Some(s.as_str()),
            Value::Object(o) => o.get("name").and_then(Value::as_str),
            _ => None,
        };
        let Some(text) = text else {
            problems.push(format!(
                "`tags[{i}]`: expected a string, got {}",
                short(tag)
            ));
            continue;
        };
        match stripped(&format!("tags[{i}]"), text, MAX_TAG_CHARS) {
            Ok(tag) => kept.push(tag),
            Err(e) => problems.push(e.message),
        }
    }
    if problems.is_empty() {
        Ok(kept)
    } else {
        Err(problems)
    }
}

/// A name or a tag as stored: HTML tags removed, trimmed, at most `max` characters, one line.
/// Each refusal says which of these it is.
fn stripped(field: &str, text: &str, max: usize) -> Result<String, ApiError> {
    if let Some(at) = html::unfinished_tag(text) {
        return Err(ApiError::bad_request(format!(
            "`{field}`: the `<` at character {} starts an HTML tag that never ends with `>`, and HTML tags are removed, so the rest of the text would be lost; write `< ` with a space after it",
            at + 1
        )));
    }
    let kept = strip_tags(text).trim().to_string();
    if kept.is_empty() {
        let why = if text.trim().is_empty() {
            "is empty"
        } else {
            "is empty once HTML tags are removed"
        };
        return Err(ApiError::bad_request(format!(
            "`{field}` {why}: expected a non-empty string of at most {max} characters"
        )));
    }
    let length = kept.chars().count();
    if length > max {
        return Err(ApiError::bad_request(format!(
            "`{field}` is too long: {length} characters, at most {max}"
        )));
    }
    check_one_line(field, &kept)?;
    Ok(kept)
}

/// Names and tags are one line of text that shows something (`hubhook_core::one_line`): shown
/// in lists, logs and the console, matched by `tags[]`.
fn check_one_line(field: &str, text: &str) -> Result<(), ApiError> {
    if let Some((at, bad)) = one_line::forbidden_char(text) {
        return Err(ApiError::bad_request(one_line::forbidden_char_message(
            field, at, bad,
        )));
    }
    if !one_line::has_visible_char(text) {
        return Err(ApiError::bad_request(format!(
            "`{field}`: expected text with at least one visible character (this one has only invisible ones)"
        )));
    }
    Ok(())
}

/// A JSON value for an error message, cut short.
fn short(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// `GET /system/info` with the given keys: a wrong key is found now, not at the first poll.
pub(crate) async fn check_credentials(
    state: &AppState,
    config: &InstanceConfig,
) -> Result<(), ApiError> {
    let base_url = &config.connectwise.base_url;
    let client = state
        .engine
        .connectwise(&config.connectwise)
        .map_err(|e| ApiError::bad_request(format!("invalid ConnectWise credentials: {e}")))?;
    match client.system_info().await {
        Ok(_) => Ok(()),
        Err(err @ CwError::Unauthorized { .. }) => Err(ApiError::bad_request(format!(
            "ConnectWise at `{base_url}` refused the credentials (`company`, `public.key`, `private.key`, `connectwise.clientID`)"
        ))
        .with_provider_message(err.provider_message().map(str::to_string))),
        Err(CwError::Transport(message)) => Err(ApiError::bad_request(format!(
            "could not reach ConnectWise at `baseUrl` `{base_url}`: {message}"
        ))),
        // ConnectWise is there but cannot answer now: not the caller's mistake, so not a 400;
        // the answer says when to try again when ConnectWise said.
        Err(err @ CwError::RateLimited { retry_after }) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("could not check the credentials now: {err}; nothing was changed, try again later"),
        )
        .with_retry_after(Some(retry_after))),
        Err(err @ (CwError::Timeout(_) | CwError::Status { status: 500.., .. })) => {
            let status = match err {
                CwError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
                _ => StatusCode::BAD_GATEWAY,
            };
            Err(ApiError::new(
                status,
                format!(
                    "could not check the credentials with ConnectWise at `{base_url}` now: {err}; nothing was changed, try again later"
                ),
            )
            .with_provider_message(err.provider_message().map(str::to_string)))
        }
        Err(err) => Err(ApiError::bad_request(format!(
            "ConnectWise at `{base_url}` did not accept GET /system/info: {err}"
        ))
        .with_provider_message(err.provider_message().map(str::to_string))),
    }
}

/// A one-record read of each poller URL (`hubhook_engine::poller::trial_read`): a URL
/// ConnectWise refuses, or record settings its records do not fit, are found now rather than
/// at every poll. Every resource's problem is named at once.
async fn check_poller_urls(
    state: &AppState,
    config: &InstanceConfig,
    previous: Option<&InstanceConfig>,
) -> Result<(), ApiError> {
    let problems = hubhook_engine::poller::trial_read(&state.engine, config, previous).await;
    let Some(first) = problems.first() else {
        return Ok(());
    };
    let message = problems
        .iter()
        .map(|p| format!("`{}`: {}", p.field, p.message))
        .collect::<Vec<_>>()
        .join("; ");
    Err(ApiError::bad_request(message).with_provider_message(first.provider_message.clone()))
}

/// Query of the instance list (read by hand: `tags[]` repeats).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Only its OpenAPI description is used.
pub struct InstanceListQuery {
    /// Page number, from 1.
    page: Option<u32>,
    /// 1 to 1000, default 200.
    #[param(rename = "pageSize")]
    page_size: Option<u32>,
    /// The `Elements-Next-Page-Token` of the previous page.
    #[param(rename = "nextPage")]
    next_page: Option<String>,
    /// Only instances carrying every one of these tags.
    #[param(rename = "tags[]")]
    tags: Option<Vec<String>>,
    /// `false`: leave each instance's `configuration` out (an empty object).
    hydrate: Option<bool>,
}

/// The caller's instances, oldest first, paged.
#[utoipa::path(
    get, path = "/instances", tag = "instances",
    params(InstanceListQuery),
    security(("UserOrganization" = [])),
    responses((status = 200, body = Vec<InstanceOut>,
        headers(("Elements-Next-Page-Token" = String, description = "Where the next page starts, on a full page"))), CommonErrors)
)]
async fn list_instances(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RawQuery(query): RawQuery,
) -> Result<(HeaderMap, Json<Vec<InstanceOut>>), ApiError> {
    list(&state, caller, query.as_deref()).await
}

/// One page of the caller's instances, filtered by tags.
pub(crate) async fn list(
    state: &AppState,
    caller: Principal,
    query: Option<&str>,
) -> Result<(HeaderMap, Json<Vec<InstanceOut>>), ApiError> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let paging = Paging::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let mut tags = Vec::new();
    let mut hydrate = true;
    for (key, value) in &pairs {
        match key.as_str() {
            "page" | "pageSize" | "nextPage" => {}
            "tags[]" | "tags" => tags.push(value.trim().to_string()),
            "hydrate" => {
                hydrate = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "`hydrate`: got `{}`, expected `true` or `false`",
                            other.escape_debug()
                        )));
                    }
                }
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter `{}`: expected `page`, `pageSize`, `nextPage`, `tags[]` or `hydrate`",
                    other.escape_debug()
                )));
            }
        }
    }
    let after = paging
        .after
        .as_deref()
        .map(|last| {
            last.parse::<i64>().map_err(|_| {
                ApiError::bad_request("`nextPage` is not a page token of the instance list")
            })
        })
        .transpose()?;
    let rows: Vec<InstanceRow> = state
        .engine
        .store()
        .list_instances(caller.organization_id)
        .await?
        .into_iter()
        .filter(|row| tags.iter().all(|tag| row.tags.contains(tag)))
        .filter(|row| after.is_none_or(|after| row.id.0 > after))
        .skip(paging.offset() as usize)
        .take(paging.page_size as usize)
        .collect();
    let mut headers = HeaderMap::new();
    if let Some((name, value)) = next_page_header(
        rows.len(),
        &paging,
        rows.last().map(|row| row.id.0.to_string()),
    ) {
        headers.insert(name, value);
    }
    let mut out = instances_out(state, caller.organization_id, &rows, None).await?;
    if !hydrate {
        for instance in &mut out {
            instance.configuration = Map::new();
        }
    }
    Ok((headers, Json(out)))
}

/// An instance id from a path: decimal digits only (`+1` and ` 1` are not ids).
pub(crate) fn parse_id(id: &str) -> Result<InstanceId, ApiError> {
    let invalid = || {
        ApiError::bad_request(format!(
            "instance id `{}` is not valid: expected a positive whole number of at most 18 digits",
            id.chars().take(40).collect::<String>().escape_debug()
        ))
    };
    if id.is_empty() || id.len() > 18 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    id.parse::<i64>().map(InstanceId).map_err(|_| invalid())
}

/// The caller's instance with this id, or 404 (also for another organization's instance).
pub(crate) async fn find(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<InstanceRow, ApiError> {
    let id = parse_id(id)?;
    state
        .engine
        .store()
        .get_instance(caller.0.organization_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no instance with id {id}")))
}

/// One instance.
#[utoipa::path(
    get, path = "/instances/{id}", tag = "instances",
    params(("id" = String, Path, description = "Instance id")),
    security(("UserOrganization" = [])),
    responses((status = 200, body = InstanceOut), CommonErrors)
)]
async fn get_instance(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<InstanceOut>, ApiError> {
    let row = find(&state, &caller, &id).await?;
    instance_out(&state, &row, None).await.map(Json)
}

/// The answer to a DELETE: what was deleted (Cloud Elements clients expect a JSON body).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeletedOut {
    pub id: i64,
    pub deleted: bool,
}

/// Delete an instance: polling stops, undelivered notifications are cancelled; events and
/// the delivery history are kept. A body of `null` or `{}` (which some Cloud Elements clients
/// send with `Content-Type: application/json`) is ignored; any other is refused.
#[utoipa::path(
    delete, path = "/instances/{id}", tag = "instances",
    params(("id" = String, Path, description = "Instance id")),
    security(("UserOrganization" = [])),
    responses((status = 200, description = "Deleted", body = DeletedOut), CommonErrors)
)]
async fn delete_instance(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DeletedOut>, ApiError> {
    delete(&state, &caller, &id).await
}

/// Deletes the caller's instance with this id.
pub(crate) async fn delete(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<Json<DeletedOut>, ApiError> {
    let row = find(state, caller, id).await?;
    // Answered once the instance is gone from every route and nothing of it is polled or
    // delivered; on SQLite its rows are then removed in the background, in parts.
    if !state
        .engine
        .store()
        .begin_delete_instance(caller.0.organization_id, row.id)
        .await?
    {
        return Err(ApiError::not_found(format!(
            "no instance with id {}",
            row.id
        )));
    }
    tracing::info!(instance = %row.id, "instance deleted");
    Ok(Json(DeletedOut {
        id: row.id.0,
        deleted: true,
    }))
}

/// The answer to a poll request.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PollOut {
    pub instance_id: i64,
    /// Always `polling`.
    pub status: &'static str,
}

/// hubhook extension: poll every resource of the instance now instead of at the next interval.
#[utoipa::path(
    post, path = "/instances/{id}/poll", tag = "instances",
    params(("id" = String, Path, description = "Instance id")),
    security(("UserOrganization" = [])),
    responses((status = 202, body = PollOut), CommonErrors)
)]
async fn poll_instance(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<PollOut>), ApiError> {
    let row = find(&state, &caller, &id).await?;
    poll(&state, &row).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(PollOut {
            instance_id: row.id.0,
            status: "polling",
        }),
    ))
}

/// Makes every resource of the instance due now and wakes the poller.
pub(crate) async fn poll(state: &AppState, row: &InstanceRow) -> Result<(), ApiError> {
    let engine = &state.engine;
    engine
        .store()
        .poll_now(row.id, engine.clock().now())
        .await?;
    engine.wake_poller();
    Ok(())
}
