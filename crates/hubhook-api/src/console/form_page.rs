//! The instance form, in Cloud Elements' order and with its labels: the ConnectWise site with
//! "Test connection", the optional fields behind "Show optional fields", the event settings,
//! "Configure Polling" (a tick and an editor per resource, Advanced Filtering for the dates), the
//! raw JSON of `event.poller.configuration`, tags, and Create/Update. Each input has a label and
//! its errors right after it (`aria-describedby`), and the whole refusal is summarised on top.

use maud::{Markup, html};
use serde_json::Value;

use super::errors::{FieldErrors, POLLER, SITE};
use super::form::{EDITOR_PATHS, InstanceForm};
use super::page::{Html, page};
use super::session::ConsoleUser;
use hubhook_core::connectwise_poller_block;

/// Creating a new instance, or editing the one with this id.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    New,
    Edit(i64),
}

impl Mode {
    fn action(self) -> String {
        match self {
            Mode::New => "/instances/new".to_string(),
            Mode::Edit(id) => format!("/instances/{id}/edit"),
        }
    }
}

/// The answer of "Test connection" when ConnectWise accepted the keys.
pub struct Connection(pub String);

/// An input's id: its name with dots as dashes.
fn id_of(key: &str) -> String {
    format!("f-{}", key.replace(['.', ' '], "-"))
}

fn error_list(errors: &FieldErrors, key: &str) -> Markup {
    let id = format!("{}-error", id_of(key));
    html! {
        @if let Some(messages) = errors.get(key) {
            div.field-error id=(id) {
                @for message in messages { p { (message) } }
            }
        }
    }
}

fn described_by(errors: &FieldErrors, key: &str) -> Option<String> {
    errors.get(key).map(|_| format!("{}-error", id_of(key)))
}

/// A labelled text-like input with its errors.
fn input(
    errors: &FieldErrors,
    key: &str,
    label: &str,
    kind: &str,
    value: &str,
    hint: Option<&str>,
) -> Markup {
    let id = id_of(key);
    html! {
        div.field.invalid[errors.get(key).is_some()] {
            label for=(id) { (label) }
            @if let Some(hint) = hint { span.hint { (hint) } }
            input id=(id) type=(kind) name=(key) value=(value)
                aria-invalid=[errors.get(key).map(|_| "true")]
                aria-describedby=[described_by(errors, key)];
            (error_list(errors, key))
        }
    }
}

/// A secret input: never filled; when a value is stored, leaving it empty keeps it.
fn secret(errors: &FieldErrors, form: &InstanceForm, key: &str, label: &str) -> Markup {
    let stored = form.stored_secrets.iter().any(|k| k == key);
    let hint = stored.then_some("Stored; leave empty to keep it.");
    input(errors, key, label, "password", "", hint)
}

fn block_text(block: &Value, path: &str) -> String {
    let mut node = block;
    for key in path.split('.') {
        match node.get(key) {
            Some(next) => node = next,
            None => return String::new(),
        }
    }
    match node {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

const PATH_LABELS: [&str; 8] = [
    "URL",
    "ID Field",
    "Updated Date Field",
    "Updated Date Format",
    "Updated Date Timezone",
    "Created Date Field",
    "Created Date Format",
    "Created Date Timezone",
];

/// One resource of "Configure Polling": its tick, and its editor (URL, ID field, and the date
/// fields behind "Advanced Filtering").
fn resource_row(errors: &FieldErrors, form: &InstanceForm, resource: &str) -> Markup {
    let selected = form.poller.contains_key(resource);
    let default = connectwise_poller_block(resource);
    let block = form.poller.get(resource).unwrap_or(&default);
    let tick = format!("resource-{resource}");
    let has_errors = errors
        .by_field
        .keys()
        .any(|k| k.starts_with(&format!("{POLLER}.{resource}.")));
    let field = |n: usize| {
        let path = EDITOR_PATHS[n];
        let key = format!("{POLLER}.{resource}.{path}");
        let id = id_of(&key);
        html! {
            div.field.invalid[errors.get(&key).is_some()] {
                label for=(id) { (PATH_LABELS[n]) }
                input id=(id) type="text" name=(key) value=(block_text(block, path))
                    data-resource=(resource) data-path=(path)
                    aria-invalid=[errors.get(&key).map(|_| "true")]
                    aria-describedby=[described_by(errors, &key)];
                (error_list(errors, &key))
            }
        }
    };
    html! {
        li.resource {
            input id=(tick) type="checkbox" name="resource" value=(resource) checked[selected]
                data-default=(default.to_string());
            label for=(tick) { (resource) }
            details open[has_errors] {
                summary { "Edit " (resource) }
                div.editor {
                    h4 { "Event Poller Configuration for “" (resource) "”" }
                    (field(0))
                    (field(1))
                    details.advanced open[has_errors] {
                        summary { "Advanced Filtering" }
                        @for n in 2..8 { (field(n)) }
                    }
                }
            }
        }
    }
}

pub fn render(
    user: &ConsoleUser,
    form: &InstanceForm,
    errors: &FieldErrors,
    mode: Mode,
    connection: Option<Connection>,
) -> Html {
    let action = mode.action();
    let title = match mode {
        Mode::New => "New instance".to_string(),
        Mode::Edit(_) => format!("Edit {}", form.name),
    };
    let optional_open = errors.get("event.notification.signature.key").is_some();
    let raw_open = errors.get(POLLER).is_some();
    let first_run_key = "event.poller.firstRun";
    let body = html! {
        h1 { (title) }
        @if let Some(summary) = &errors.summary {
            div.error-summary role="alert" tabindex="-1" #form-errors {
                h2 { "The instance was not saved" }
                p { (summary) }
            }
        }
        form.instance method="post" action=(action) novalidate {
            input type="hidden" name="csrf" value=(user.csrf);
            (input(errors, "name", "Name", "text", &form.name, None))
            fieldset {
                legend { "ConnectWise site" }
                (input(errors, "baseUrl", "ConnectWise API URL", "url", &form.base_url,
                    Some("https://…/v4_6_release/apis/3.0")))
                (input(errors, "company", "Company ID", "text", &form.company, None))
                (secret(errors, form, "public.key", "Public Key"))
                (secret(errors, form, "private.key", "Private Key"))
                (input(errors, "connectwise.clientID", "Client ID", "text", &form.client_id, None))
                div.site {
                    button.secondary type="submit" formaction=(format!("{action}/test-connection")) #test-connection {
                        "Test connection"
                    }
                    @if let Some(Connection(message)) = &connection {
                        p.ok role="status" #connection-result { (message) }
                    }
                    (error_list(errors, SITE))
                }
            }
            details.optional open[optional_open] {
                summary { "Show optional fields" }
                (secret(errors, form, "event.notification.signature.key", "Callback Notification Signature Key"))
            }
            fieldset {
                legend { "Event Configuration" }
                div.field.check.invalid[errors.get("event.notification.enabled").is_some()] {
                    input #f-event-notification-enabled type="checkbox" name="event.notification.enabled"
                        value="true" checked[form.events_enabled];
                    label for="f-event-notification-enabled" { "Events Enabled" }
                    (error_list(errors, "event.notification.enabled"))
                }
                (input(errors, "event.notification.callback.url", "Event Notification Callback URL", "url",
                    &form.callback_url, None))
                (input(errors, "event.poller.refresh_interval", "Event poller refresh interval (mins)", "number",
                    &form.refresh_interval, None))
                div.field.invalid[errors.get(first_run_key).is_some()] {
                    label for=(id_of(first_run_key)) { "First poll" }
                    span.hint { "What the first poll of a resource reports" }
                    select id=(id_of(first_run_key)) name=(first_run_key)
                        aria-describedby=[described_by(errors, first_run_key)] {
                        option value="changes" selected[form.first_run == "changes" || form.first_run.is_empty()] { "Changes from now on" }
                        option value="all" selected[form.first_run == "all"] { "Every record, as CREATED" }
                        option value="since" selected[form.first_run == "since"] { "Changes since a time" }
                    }
                    label for="f-first-run-since" { "Since (RFC 3339, when “since”)" }
                    input #f-first-run-since type="text" name="event.poller.firstRun.since"
                        value=(form.first_run_since) placeholder="2026-01-01T00:00:00Z";
                    (error_list(errors, first_run_key))
                }
            }
            fieldset {
                legend { "Configure Polling" }
                p.hint { "Tick the resources to poll; each starts from the element's default block." }
                ul.resources {
                    @for resource in form.offered() { (resource_row(errors, form, &resource)) }
                }
                details.raw open[raw_open] {
                    summary { "Edit as JSON (event.poller.configuration)" }
                    div.field.invalid[raw_open] {
                        label for="f-event-poller-configuration" { "event.poller.configuration" }
                        textarea #f-event-poller-configuration name=(POLLER) rows="16" spellcheck="false"
                            aria-describedby=[described_by(errors, POLLER)] { (form.raw) }
                        (error_list(errors, POLLER))
                    }
                    input #poller-source type="hidden" name="poller_source" value="fields";
                }
            }
            (input(errors, "tags", "Element Instance Tags", "text", &form.tags, Some("Comma-separated; a tag holding a comma in double quotes")))
            button type="submit" #save {
                @match mode { Mode::New => "Create Instance", Mode::Edit(_) => "Update Instance" }
            }
        }
    };
    page(&title, Some(user), body)
}
