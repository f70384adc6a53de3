//! `/instances`: create, list, read and delete element instances, poll one now, and read the
//! events it stored.

use axum::{
    Json, Router,
    extract::{Path, RawQuery, State},
    http::StatusCode,
    routing::{get, post},
};
use hubhook_connectwise::{CwError, HubQuery};
use hubhook_core::{
    ELEMENT_KEY, InstanceConfig, InstanceId, MASK, mask_secrets, render_url, split_secrets,
};
use hubhook_store::{InstanceRow, NewInstance};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::{ApiError, AppState, auth::Caller, body::JsonBody, new_secret, secret_hash};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/instances", post(create_instance).get(list_instances))
        .route("/instances/{id}", get(get_instance).delete(delete_instance))
        .route("/instances/{id}/poll", post(poll_instance))
        .route("/instances/{id}/events", get(list_events))
}

/// `POST /instances` body, as Cloud Elements documents it. Everything is optional here so that
/// a missing field gets our own error naming it rather than a deserializer message.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceIn {
    element: Option<ElementRef>,
    #[allow(dead_code)]
    provider_data: Option<Value>,
    configuration: Option<Map<String, Value>>,
    tags: Option<Vec<Value>>,
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ElementRef {
    key: Option<String>,
}

/// The fixed description of the one element hubhook provides, in the shape Cloud Elements
/// returns inside an instance.
fn element_json() -> Value {
    json!({
        "id": ELEMENT_ID,
        "name": "ConnectWise CRM REST",
        "key": ELEMENT_KEY,
        "description": "ConnectWise Manage (PSA) through the crm hub: contacts, organizations, incidents and more, with polling events.",
        "active": true,
        "deleted": false,
        "typeOauth": false,
        "trialAccount": false,
        "resources": [],
        "transformationsEnabled": false,
        "bulkDownloadEnabled": false,
        "bulkUploadEnabled": false,
        "cloneable": false,
        "extendable": false,
        "beta": false,
        "authentication": { "type": "custom" },
        "extended": false,
        "hub": "crm",
        "protocolType": "http",
        "parameters": [],
        "private": false
    })
}

/// Cloud Elements' id of the `connectwisecrmrest` element, kept for clients that read it.
const ELEMENT_ID: i64 = 3012;

/// `InstanceOut`: the Cloud Elements instance JSON. The token is only known at creation (it is
/// stored hashed), so reads show it masked.
fn instance_out(row: &InstanceRow, token: Option<&str>) -> Value {
    let configuration = mask_secrets(&row.configuration);
    let callback = configuration
        .get("event.notification.callback.url")
        .and_then(Value::as_str)
        .map(str::to_string);
    json!({
        "id": row.id.0,
        "name": row.name,
        "createdDate": format_date(row.created_at),
        "updatedDate": format_date(row.updated_at),
        "token": token.unwrap_or(MASK),
        "element": element_json(),
        "elementId": ELEMENT_ID,
        "tags": row.tags,
        "provisionInteractions": [],
        "valid": true,
        "disabled": row.disabled,
        "maxCacheSize": 0,
        "cacheTimeToLive": 0,
        "configuration": configuration,
        "eventsEnabled": row.events_enabled,
        "eventsNotificationCallbackUrl": callback.unwrap_or_else(|| "false".to_string()),
        "traceLoggingEnabled": false,
        "cachingEnabled": false,
        "externalAuthentication": "none",
        "user": { "id": row.user_id.0 },
    })
}

fn format_date(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

async fn create_instance(
    State(state): State<AppState>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<InstanceIn>,
) -> Result<Json<Value>, ApiError> {
    let key = body.element.and_then(|e| e.key);
    match key.as_deref() {
        Some(ELEMENT_KEY) => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "`element.key`: unknown element `{other}`, expected `{ELEMENT_KEY}`"
            )));
        }
        None => {
            return Err(ApiError::bad_request(format!(
                "`element.key` is required, expected `{ELEMENT_KEY}`"
            )));
        }
    }
    let name = body.name.map(|n| n.trim().to_string()).unwrap_or_default();
    if name.is_empty() || name.chars().count() > 255 {
        return Err(ApiError::bad_request(
            "`name` is required: a non-empty string of at most 255 characters",
        ));
    }
    let tags = parse_tags(body.tags)?;
    let configuration = body
        .configuration
        .ok_or_else(|| ApiError::bad_request("`configuration` is required: an object with the ConnectWise keys and the events settings"))?;
    let config = InstanceConfig::parse(&configuration)
        .map_err(|e| ApiError::bad_request(format!("invalid configuration: {e}")))?;

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
    check_credentials(&state, &config).await?;

    let token = new_secret().map_err(ApiError::internal)?;
    let (public, secrets) = split_secrets(&configuration);
    let refresh_ms = config.events.refresh_interval.duration().as_millis() as i64;
    let row = engine
        .store()
        .create_instance(NewInstance {
            organization_id: caller.organization_id,
            user_id: caller.user_id,
            name,
            element_key: ELEMENT_KEY.to_string(),
            token_hash: secret_hash(&token),
            configuration: public,
            secrets,
            tags,
            events_enabled: config.events.enabled,
            resources: if config.events.enabled {
                config.events.resources.keys().cloned().collect()
            } else {
                Vec::new()
            },
            refresh_interval_ms: refresh_ms,
            now,
        })
        .await?;
    tracing::info!(instance = %row.id, resources = config.events.resources.len(), "instance created");
    engine.wake_poller();
    Ok(Json(instance_out(&row, Some(&token))))
}

/// Tags are strings; older Cloud Elements examples send `{"name": ..}` objects, accepted too.
fn parse_tags(tags: Option<Vec<Value>>) -> Result<Vec<String>, ApiError> {
    tags.unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, tag)| match tag {
            Value::String(s) => Ok(s),
            Value::Object(ref o) => o
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| {
                    ApiError::bad_request(format!("`tags[{i}]`: expected a string, got {tag}"))
                }),
            other => Err(ApiError::bad_request(format!(
                "`tags[{i}]`: expected a string, got {other}"
            ))),
        })
        .collect()
}

/// `GET /system/info` with the given keys: a wrong key is found now, not at the first poll.
async fn check_credentials(state: &AppState, config: &InstanceConfig) -> Result<(), ApiError> {
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
        Err(err) => Err(ApiError::bad_request(format!(
            "ConnectWise at `{base_url}` did not accept GET /system/info: {err}"
        ))
        .with_provider_message(err.provider_message().map(str::to_string))),
    }
}

async fn list_instances(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<Value>, ApiError> {
    let rows = state
        .engine
        .store()
        .list_instances(caller.organization_id)
        .await?;
    Ok(Json(Value::Array(
        rows.iter().map(|row| instance_out(row, None)).collect(),
    )))
}

fn parse_id(id: &str) -> Result<InstanceId, ApiError> {
    id.parse::<i64>()
        .map(InstanceId)
        .map_err(|_| ApiError::bad_request(format!("instance id `{id}` is not a number")))
}

async fn find(state: &AppState, caller: &Caller, id: &str) -> Result<InstanceRow, ApiError> {
    let id = parse_id(id)?;
    state
        .engine
        .store()
        .get_instance(caller.0.organization_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no instance with id {id}")))
}

async fn get_instance(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = find(&state, &caller, &id).await?;
    Ok(Json(instance_out(&row, None)))
}

async fn delete_instance(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let row = find(&state, &caller, &id).await?;
    if !state
        .engine
        .store()
        .delete_instance(caller.0.organization_id, row.id)
        .await?
    {
        return Err(ApiError::not_found(format!(
            "no instance with id {}",
            row.id
        )));
    }
    tracing::info!(instance = %row.id, "instance deleted");
    Ok(StatusCode::OK)
}

/// hubhook extension: poll every resource of the instance now instead of at the next interval.
async fn poll_instance(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let row = find(&state, &caller, &id).await?;
    let engine = &state.engine;
    engine
        .store()
        .poll_now(row.id, engine.clock().now())
        .await?;
    engine.wake_poller();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "instanceId": row.id.0, "status": "polling" })),
    ))
}

/// `pageSize` from the query string (1 to 1000, default 200), with an error naming it.
fn page_size(query: Option<&str>) -> Result<u32, ApiError> {
    let value = query
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == "pageSize")
        .map(|(_, value)| value);
    match value {
        None => Ok(200),
        Some(text) => match text.parse::<u32>() {
            Ok(n @ 1..=1000) => Ok(n),
            _ => Err(ApiError::bad_request(format!(
                "`pageSize`: got `{text}`, expected a number from 1 to 1000"
            ))),
        },
    }
}

/// The events the instance stored, newest first, in the Cloud Elements event record shape.
async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let limit = page_size(query.as_deref())?;
    let row = find(&state, &caller, &id).await?;
    let events = state.engine.store().list_events(row.id, limit).await?;
    let out: Vec<Value> = events
        .into_iter()
        .map(|e| {
            let status = if e.status == "delivered" {
                "NOTIFIED"
            } else {
                "NEW"
            };
            json!({
                "id": e.id.0,
                "instanceId": e.instance_id.0,
                "eventType": e.event_type,
                "objectType": e.object_type,
                "objectId": e.object_id,
                "eventDate": format_date(e.event_date),
                "status": status,
                "notificationId": e.notification_id.map(|n| n.0),
                "providerData": e.record_json,
            })
        })
        .collect();
    Ok(Json(Value::Array(out)))
}
