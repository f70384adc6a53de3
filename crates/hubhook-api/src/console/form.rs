//! Creating and editing an instance through the form.
//!
//! The form's inputs are named by the configuration keys they set (`baseUrl`,
//! `event.notification.callback.url`, `event.poller.configuration.contacts.url`, ...), so an API
//! refusal naming a key lands next to its input (`errors`). A submitted form becomes the same
//! `InstanceIn` body a client would POST, and goes through the API's own create
//! (`instances::create`) or replace (`instance_updates::replace`): the checks, the messages and
//! the store writes are the API's.
//!
//! The poller configuration has two editors, a per-resource one and the raw JSON of
//! `event.poller.configuration`; the script keeps them in step and says which was edited last
//! (`poller_source`). The raw JSON, when chosen, is sent as the JSON text it is (the API
//! accepts a JSON-encoded string there), so a typo in it gets the API's own message. Without the
//! script the per-resource editor wins, starting from the raw JSON's blocks so keys it does not
//! show (`pageSize`, ...) are kept.

use axum::{
    extract::{FromRequest, Path, Request, State},
    http::{StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use hubhook_core::{InstanceConfig, MASK, connectwise_poller_block, is_mask};
use hubhook_store::InstanceRow;
use serde_json::{Map, Value};

use super::errors::{FieldErrors, POLLER};
use super::form_page::{Connection, Mode, render};
use super::page::{Html, PageError};
use super::session::ConsoleUser;
use crate::element::DEFAULT_POLLED;
use crate::routes::instance_updates::{keys_follow_site, replace as api_replace};
use crate::routes::instances::{
    ElementRef, InstanceIn, check_credentials, create as api_create, find,
};
use crate::{ApiError, AppState};

/// A submitted `application/x-www-form-urlencoded` body: each name's values in the order
/// given (checkboxes repeat). Looked up by name, so a body of many pairs costs its length,
/// not its length squared (a list scanned per lookup made one 2 MB form of 190,000
/// `resource` pairs hold a core for 163 s).
#[derive(Debug, Default)]
pub struct FormData(std::collections::HashMap<String, Vec<String>>);

impl FormData {
    fn of(pairs: impl IntoIterator<Item = (String, String)>) -> FormData {
        let mut form = FormData::default();
        for (name, value) in pairs {
            form.0.entry(name).or_default().push(value);
        }
        form
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .and_then(|values| values.first())
            .map(String::as_str)
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .get(name)
            .map(|values| values.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or("").trim().to_string()
    }
}

impl<S: Send + Sync> FromRequest<S> for FormData {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.to_ascii_lowercase()
                    .starts_with("application/x-www-form-urlencoded")
            });
        if !is_form {
            return Err(PageError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected a form (application/x-www-form-urlencoded)",
            ));
        }
        let body = crate::body::read_body(req, state).await?;
        Ok(FormData::of(
            url::form_urlencoded::parse(&body).into_owned(),
        ))
    }
}

/// The secret keys the form has inputs for; never filled in a page.
pub const SECRETS: [&str; 3] = [
    "public.key",
    "private.key",
    "event.notification.signature.key",
];

/// The parts of a resource's poller block the per-resource editor shows.
pub const EDITOR_PATHS: [&str; 8] = [
    "url",
    "idField",
    "datesConfiguration.updatedDateField",
    "datesConfiguration.updatedDateFormat",
    "datesConfiguration.updatedDateTimezone",
    "datesConfiguration.createdDateField",
    "datesConfiguration.createdDateFormat",
    "datesConfiguration.createdDateTimezone",
];

/// What the form shows. Secret values are never part of it.
#[derive(Debug, Clone, Default)]
pub struct InstanceForm {
    pub name: String,
    pub tags: String,
    pub base_url: String,
    pub company: String,
    pub client_id: String,
    pub events_enabled: bool,
    pub callback_url: String,
    pub refresh_interval: String,
    /// `changes`, `all` or `since`.
    pub first_run: String,
    pub first_run_since: String,
    /// The poller blocks of the selected resources.
    pub poller: Map<String, Value>,
    /// The raw JSON editor's text.
    pub raw: String,
    /// The secrets stored for the instance being edited (their inputs may stay empty).
    pub stored_secrets: Vec<String>,
}

impl InstanceForm {
    /// An empty form with the element's defaults (events on, every 15 minutes, contacts).
    fn blank() -> InstanceForm {
        let mut poller = Map::new();
        poller.insert("contacts".into(), connectwise_poller_block("contacts"));
        InstanceForm {
            events_enabled: true,
            refresh_interval: "15".into(),
            first_run: "changes".into(),
            raw: pretty(&poller),
            poller,
            ..InstanceForm::default()
        }
    }

    /// The form of a stored instance (its configuration is the masked, public one).
    fn of(row: &InstanceRow) -> InstanceForm {
        let config = &row.configuration;
        let text = |key: &str| match config.get(key) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        let poller = poller_of(config.get(POLLER));
        let first_run = text("event.poller.firstRun");
        let (first_run, since) = match first_run.split_once(':') {
            Some((_, since)) => ("since".to_string(), since.to_string()),
            None if first_run.is_empty() => ("changes".to_string(), String::new()),
            None => (first_run, String::new()),
        };
        InstanceForm {
            name: row.name.clone(),
            tags: join_tags(&row.tags),
            base_url: text("baseUrl"),
            company: text("company"),
            client_id: text("connectwise.clientID"),
            events_enabled: row.events_enabled,
            callback_url: text("event.notification.callback.url"),
            refresh_interval: text("event.poller.refresh_interval"),
            first_run,
            first_run_since: since,
            raw: pretty(&poller),
            poller,
            stored_secrets: SECRETS
                .iter()
                .filter(|k| config.get(**k).is_some_and(|v| !v.is_null()))
                .map(|k| k.to_string())
                .collect(),
        }
    }

    /// Every resource the form offers: the element's list, then any other one configured.
    pub fn offered(&self) -> Vec<String> {
        let mut offered: Vec<String> = DEFAULT_POLLED.iter().map(|r| r.to_string()).collect();
        for resource in self.poller.keys() {
            if !offered.contains(resource) {
                offered.push(resource.clone());
            }
        }
        offered
    }

    /// The names of the form's inputs, where errors can be shown.
    pub fn inputs(&self) -> Vec<String> {
        let mut inputs: Vec<String> = [
            "name",
            "tags",
            "baseUrl",
            "company",
            "connectwise.clientID",
            "event.notification.enabled",
            "event.notification.callback.url",
            "event.poller.refresh_interval",
            "event.poller.firstRun",
            POLLER,
        ]
        .iter()
        .chain(SECRETS.iter())
        .map(|s| s.to_string())
        .collect();
        for resource in self.offered() {
            for path in EDITOR_PATHS {
                inputs.push(format!("{POLLER}.{resource}.{path}"));
            }
        }
        inputs
    }
}

fn pretty(map: &Map<String, Value>) -> String {
    serde_json::to_string_pretty(map).unwrap_or_default()
}

/// A stored `event.poller.configuration` (an object, or a JSON-encoded string of one).
fn poller_of(value: Option<&Value>) -> Map<String, Value> {
    match value {
        Some(Value::Object(map)) => map.clone(),
        Some(Value::String(text)) => serde_json::from_str(text).unwrap_or_default(),
        _ => Map::new(),
    }
}

/// Sets a dotted `path` of a block to a string, making objects on the way.
fn set_path(block: &mut Value, path: &str, value: &str) {
    let mut node = block;
    let mut keys = path.split('.').peekable();
    while let Some(key) = keys.next() {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        let Value::Object(map) = node else { return };
        if keys.peek().is_none() {
            map.insert(key.to_string(), Value::String(value.to_string()));
            return;
        }
        node = map.entry(key.to_string()).or_insert(Value::Null);
    }
}

/// Reads a submitted form: what to show again if it is refused, and the API body.
fn read(form: &FormData, existing: Option<&InstanceRow>) -> (InstanceForm, InstanceIn) {
    let mut shown = InstanceForm {
        name: form.text("name"),
        tags: form.text("tags"),
        base_url: form.text("baseUrl"),
        company: form.text("company"),
        client_id: form.text("connectwise.clientID"),
        events_enabled: form.get("event.notification.enabled") == Some("true"),
        callback_url: form.text("event.notification.callback.url"),
        refresh_interval: form.text("event.poller.refresh_interval"),
        first_run: form.text("event.poller.firstRun"),
        first_run_since: form.text("event.poller.firstRun.since"),
        raw: form.get(POLLER).unwrap_or("").to_string(),
        stored_secrets: existing
            .map(|row| InstanceForm::of(row).stored_secrets)
            .unwrap_or_default(),
        ..InstanceForm::default()
    };
    let mut configuration = existing
        .map(|row| row.configuration.clone())
        .unwrap_or_default();
    let mut set = |key: &str, value: &str| {
        if value.is_empty() {
            configuration.remove(key);
        } else {
            configuration.insert(key.into(), Value::String(value.into()));
        }
    };
    set("baseUrl", &shown.base_url);
    set("company", &shown.company);
    set("connectwise.clientID", &shown.client_id);
    set("event.notification.callback.url", &shown.callback_url);
    set("event.poller.refresh_interval", &shown.refresh_interval);
    let first_run = match shown.first_run.as_str() {
        "since" => format!("since:{}", shown.first_run_since),
        other => other.to_string(),
    };
    set("event.poller.firstRun", &first_run);
    for key in SECRETS {
        match form.get(key).unwrap_or("") {
            // Left empty: keep the stored secret (`********` keeps it), or have none.
            "" if shown.stored_secrets.iter().any(|k| k == key) => {
                configuration.insert(key.into(), Value::String(MASK.into()));
            }
            "" => {
                configuration.remove(key);
            }
            value => {
                configuration.insert(key.into(), Value::String(value.into()));
            }
        }
    }
    configuration.insert(
        "event.notification.enabled".into(),
        Value::Bool(shown.events_enabled),
    );
    let raw_blocks: Map<String, Value> = serde_json::from_str(&shown.raw).unwrap_or_default();
    let poller = if form.get("poller_source") == Some("raw") {
        configuration.insert(POLLER.into(), Value::String(shown.raw.clone()));
        raw_blocks
    } else {
        let mut poller = Map::new();
        // Each resource once, and one more than an instance may have, so that the API's own
        // message about the limit still comes, without building thousands of blocks first.
        let mut resources = form.all("resource");
        resources.sort_unstable();
        resources.dedup();
        resources.truncate(hubhook_core::config::MAX_RESOURCES + 1);
        for resource in resources {
            let mut block = raw_blocks
                .get(resource)
                .filter(|b| b.is_object())
                .cloned()
                .unwrap_or_else(|| connectwise_poller_block(resource));
            for path in EDITOR_PATHS {
                if let Some(value) = form.get(&format!("{POLLER}.{resource}.{path}")) {
                    set_path(&mut block, path, value.trim());
                }
            }
            poller.insert(resource.to_string(), block);
        }
        configuration.insert(POLLER.into(), Value::Object(poller.clone()));
        shown.raw = pretty(&poller);
        poller
    };
    shown.poller = poller;
    let tags = split_tags(&shown.tags)
        .into_iter()
        .map(Value::String)
        .collect();
    let body = InstanceIn {
        element: Some(ElementRef::connectwise()),
        name: Some(shown.name.clone()),
        tags: Some(tags),
        configuration: Some(configuration),
        ..InstanceIn::default()
    };
    (shown, body)
}

fn show(
    user: &ConsoleUser,
    form: &InstanceForm,
    errors: &FieldErrors,
    mode: Mode,
    connection: Option<Connection>,
    status: StatusCode,
) -> Response {
    (status, render(user, form, errors, mode, connection)).into_response()
}

/// A refusal shown in the form; our own failures are an error page.
fn refused(
    user: &ConsoleUser,
    form: &InstanceForm,
    err: ApiError,
    mode: Mode,
) -> Result<Response, PageError> {
    // Our own failure is the error page; ConnectWise failing (502, 503, 504) is shown on the
    // form like any refusal, with the values kept.
    if err.status == StatusCode::INTERNAL_SERVER_ERROR {
        return Err(err.into());
    }
    let errors = FieldErrors::from_api(&err, &form.inputs());
    Ok(show(user, form, &errors, mode, None, err.status))
}

pub async fn new_page(user: ConsoleUser) -> Html {
    render(
        &user,
        &InstanceForm::blank(),
        &FieldErrors::default(),
        Mode::New,
        None,
    )
}

/// Creates the instance through the API's create.
pub async fn create(
    State(state): State<AppState>,
    user: ConsoleUser,
    form: FormData,
) -> Result<Response, PageError> {
    user.check_csrf(&form)?;
    let (shown, body) = read(&form, None);
    match api_create(&state, user.principal, body).await {
        Ok(out) => Ok(Redirect::to(&format!("/instances/{}", out.id)).into_response()),
        Err(err) => refused(&user, &shown, err, Mode::New),
    }
}

pub async fn edit_page(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
) -> Result<Html, PageError> {
    let row = find(&state, &user.caller(), &id).await?;
    Ok(render(
        &user,
        &InstanceForm::of(&row),
        &FieldErrors::default(),
        Mode::Edit(row.id.0),
        None,
    ))
}

/// Replaces the instance through the API's replace (secrets left empty are kept).
pub async fn update(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
    form: FormData,
) -> Result<Response, PageError> {
    user.check_csrf(&form)?;
    let row = find(&state, &user.caller(), &id).await?;
    let (shown, body) = read(&form, Some(&row));
    match api_replace(&state, &row, body).await {
        Ok(_) => Ok(Redirect::to(&format!("/instances/{}", row.id)).into_response()),
        Err(err) => refused(&user, &shown, err, Mode::Edit(row.id.0)),
    }
}

pub async fn test_new_connection(
    State(state): State<AppState>,
    user: ConsoleUser,
    form: FormData,
) -> Result<Response, PageError> {
    user.check_csrf(&form)?;
    test_connection(&state, &user, &form, None).await
}

pub async fn test_edit_connection(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
    form: FormData,
) -> Result<Response, PageError> {
    user.check_csrf(&form)?;
    let row = find(&state, &user.caller(), &id).await?;
    test_connection(&state, &user, &form, Some(&row)).await
}

/// "Test connection": the site fields (stored secrets for inputs left empty) checked the way a
/// create checks them, the form shown again with the answer in the site section.
async fn test_connection(
    state: &AppState,
    user: &ConsoleUser,
    form: &FormData,
    existing: Option<&InstanceRow>,
) -> Result<Response, PageError> {
    let (shown, body) = read(form, existing);
    let mode = existing.map_or(Mode::New, |row| Mode::Edit(row.id.0));
    let mut site = Map::new();
    let configuration = body.configuration.unwrap_or_default();
    // Testing a new site with the stored keys would send them to it: the same rule as saving.
    if let Some(row) = existing
        && let Err(err) = keys_follow_site(row, &configuration)
    {
        return refused(user, &shown, err, mode);
    }
    for key in [
        "baseUrl",
        "company",
        "connectwise.clientID",
        "public.key",
        "private.key",
    ] {
        let value = match (configuration.get(key), existing) {
            (Some(v), Some(row)) if is_mask(v) => row.secrets.get(key).cloned(),
            (value, _) => value.cloned(),
        };
        if let Some(value) = value {
            site.insert(key.into(), value);
        }
    }
    let checked = match InstanceConfig::parse(&site) {
        Ok(config) => check_credentials(state, &config)
            .await
            .map(|()| config.connectwise.base_url.clone()),
        Err(e) => Err(ApiError::bad_request(format!("invalid configuration: {e}"))),
    };
    match checked {
        Ok(base_url) => Ok(show(
            user,
            &shown,
            &FieldErrors::default(),
            mode,
            Some(Connection(format!(
                "Connected: ConnectWise at {base_url} accepted the keys."
            ))),
            StatusCode::OK,
        )),
        Err(err) => refused(user, &shown, err, mode),
    }
}

/// Tags as the form's one input shows them: separated by commas, a tag holding a comma or a
/// double quote written in double quotes (a quote inside doubled), as in CSV. Without the
/// quotes, `Acme, Inc.` came back from an unchanged edit as two tags.
fn join_tags(tags: &[String]) -> String {
    tags.iter()
        .map(|tag| {
            if tag.contains([',', '"']) {
                format!("\"{}\"", tag.replace('"', "\"\""))
            } else {
                tag.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The tags of the form's input (see [`join_tags`]); empty ones are dropped.
fn split_tags(text: &str) -> Vec<String> {
    let mut tags = Vec::new();
    let mut tag = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                tag.push('"');
                chars.next();
            }
            '"' if quoted => quoted = false,
            '"' if tag.trim().is_empty() => {
                tag.clear();
                quoted = true;
            }
            ',' if !quoted => tags.push(std::mem::take(&mut tag)),
            c => tag.push(c),
        }
    }
    tags.push(tag);
    tags.into_iter()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_with_commas_and_quotes_survive_an_unchanged_edit() {
        let tags: Vec<String> = ["Acme, Inc.", "prod", "say \"hi\"", "a,\"b\""]
            .map(String::from)
            .to_vec();
        let shown = join_tags(&tags);
        assert_eq!(shown, r#""Acme, Inc.", prod, "say ""hi""", "a,""b""""#);
        assert_eq!(split_tags(&shown), tags);
        // What people type by hand.
        assert_eq!(split_tags(" a , b,,c "), ["a", "b", "c"]);
        assert_eq!(split_tags(r#"x"y, z"#), [r#"x"y"#, "z"]);
        assert_eq!(
            split_tags(r#""unclosed, still one"#),
            ["unclosed, still one"]
        );
        assert_eq!(split_tags(""), Vec::<String>::new());
    }

    fn form(pairs: impl IntoIterator<Item = (String, String)>) -> FormData {
        FormData::of(pairs)
    }

    #[test]
    fn repeated_resources_are_read_once_and_bounded() {
        // 190,000 copies of one resource: read as one, in one pass over the pairs (a scan per
        // lookup took minutes here).
        let pairs = [("poller_source", "editor"), ("name", "x")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .chain(std::iter::repeat_n(
                ("resource".to_owned(), "contacts".to_owned()),
                190_000,
            ));
        let (shown, _) = read(&form(pairs), None);
        assert_eq!(shown.poller.keys().collect::<Vec<_>>(), ["contacts"]);
        // More resources than an instance may have: one more than the limit is kept, so the
        // API's own message about the limit is what the form shows.
        let many = (0..500).map(|n| ("resource".to_owned(), format!("r{n}")));
        let (shown, _) = read(&form(many), None);
        assert_eq!(shown.poller.len(), hubhook_core::config::MAX_RESOURCES + 1);
        // Values of one name keep their order; the first is the one read alone.
        let data = form([("a", "1"), ("b", "2"), ("a", "3")].map(|(k, v)| (k.into(), v.into())));
        assert_eq!(data.get("a"), Some("1"));
        assert_eq!(data.all("a"), ["1", "3"]);
        assert_eq!(data.all("c"), Vec::<&str>::new());
    }
}
