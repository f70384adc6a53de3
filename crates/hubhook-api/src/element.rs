//! The one element hubhook provides, `connectwisecrmrest`, described the way Cloud Elements
//! describes its elements (inside an instance, and at `/elements/{keyOrId}`).

use hubhook_core::ELEMENT_KEY;
use serde::Serialize;
use utoipa::ToSchema;

/// Cloud Elements' id of the `connectwisecrmrest` element, kept for clients that read it.
pub const ELEMENT_ID: i64 = 3012;

/// An element, as Cloud Elements shows it inside an instance.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ElementOut {
    pub id: i64,
    pub name: &'static str,
    pub key: &'static str,
    pub description: &'static str,
    pub active: bool,
    pub deleted: bool,
    pub type_oauth: bool,
    pub trial_account: bool,
    pub resources: Vec<String>,
    pub transformations_enabled: bool,
    pub bulk_download_enabled: bool,
    pub bulk_upload_enabled: bool,
    pub cloneable: bool,
    pub extendable: bool,
    pub beta: bool,
    pub authentication: ElementAuthentication,
    pub extended: bool,
    pub hub: &'static str,
    pub protocol_type: &'static str,
    pub parameters: Vec<String>,
    pub private: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ElementAuthentication {
    #[serde(rename = "type")]
    pub kind: &'static str,
}

impl ElementOut {
    /// The ConnectWise REST element.
    pub fn connectwise() -> ElementOut {
        ElementOut {
            id: ELEMENT_ID,
            name: "ConnectWise CRM REST",
            key: ELEMENT_KEY,
            description: "ConnectWise Manage (PSA) through the crm hub: contacts, organizations, incidents and more, with polling events.",
            active: true,
            deleted: false,
            type_oauth: false,
            trial_account: false,
            resources: Vec::new(),
            transformations_enabled: false,
            bulk_download_enabled: false,
            bulk_upload_enabled: false,
            cloneable: false,
            extendable: false,
            beta: false,
            authentication: ElementAuthentication { kind: "custom" },
            extended: false,
            hub: "crm",
            protocol_type: "http",
            parameters: Vec::new(),
            private: false,
        }
    }
}

/// One configuration key of the element, as `GET /elements/{keyOrId}/configuration` lists it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationField {
    pub key: &'static str,
    pub name: &'static str,
    /// The value used when the key is left out (`event.poller.configuration`: JSON text).
    pub default_value: Option<String>,
    pub required: bool,
    /// Not shown in Cloud Elements' instance form (advanced keys).
    pub hidden: bool,
    /// `text`, `password` (a secret, never shown), `boolean`, `number` or `textarea` (JSON).
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// The resources the element polls by default, each a copy of the documented ConnectWise block
/// on its own hub object.
pub const DEFAULT_POLLED: &[&str] = &[
    "contacts",
    "organizations",
    "incidents",
    "opportunities",
    "activities",
    "time-entries",
];

/// The default `event.poller.configuration`: every resource of [`DEFAULT_POLLED`] polled by
/// `lastUpdated`, as the documentation's ConnectWise block polls contacts.
pub fn default_poller_configuration() -> serde_json::Value {
    serde_json::Value::Object(
        DEFAULT_POLLED
            .iter()
            .map(|resource| {
                (
                    (*resource).to_string(),
                    hubhook_core::connectwise_poller_block(resource),
                )
            })
            .collect(),
    )
}

/// The element's configuration keys, in the order of Cloud Elements' instance form.
pub fn configuration_fields() -> Vec<ConfigurationField> {
    let field = |key, name, default: Option<&str>, required, hidden, kind| ConfigurationField {
        key,
        name,
        default_value: default.map(str::to_string),
        required,
        hidden,
        kind,
    };
    vec![
        field(
            "baseUrl",
            "ConnectWise API URL (https://…/v4_6_release/apis/3.0)",
            None,
            true,
            false,
            "text",
        ),
        field("company", "Company ID", None, true, false, "text"),
        field("public.key", "Public Key", None, true, false, "password"),
        field("private.key", "Private Key", None, true, false, "password"),
        field(
            "connectwise.clientID",
            "Client ID",
            None,
            false,
            false,
            "text",
        ),
        field(
            "filter.response.nulls",
            "Filter null values from the response",
            Some("true"),
            false,
            true,
            "boolean",
        ),
        field(
            "event.notification.enabled",
            "Events Enabled",
            Some("false"),
            false,
            false,
            "boolean",
        ),
        field(
            "event.notification.ordered",
            "Deliver in order, one at a time (a failing notification holds back the later ones)",
            Some("false"),
            false,
            false,
            "boolean",
        ),
        field(
            "event.vendor.type",
            "Event Type",
            Some("polling"),
            false,
            true,
            "text",
        ),
        field(
            "event.notification.callback.url",
            "Event Notification Callback URL",
            None,
            false,
            false,
            "text",
        ),
        field(
            "event.notification.signature.key",
            "Callback Notification Signature Key",
            None,
            false,
            false,
            "password",
        ),
        field(
            "event.poller.refresh_interval",
            "Event poller refresh interval (mins)",
            Some("15"),
            false,
            false,
            "number",
        ),
        field(
            "event.poller.configuration",
            "Configure Polling",
            Some(&default_poller_configuration().to_string()),
            false,
            false,
            "textarea",
        ),
        field(
            "event.poller.firstRun",
            "First poll: changes, all or since:<RFC 3339>",
            Some("changes"),
            false,
            true,
            "text",
        ),
    ]
}

/// The definition of one configuration key, if the element defines it.
pub fn configuration_field(key: &str) -> Option<ConfigurationField> {
    configuration_fields().into_iter().find(|f| f.key == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_poller_configuration_is_a_valid_configuration() {
        let configuration = serde_json::json!({
            "baseUrl": "https://api-na.myconnectwise.net/v4_6_release/apis/3.0",
            "company": "demo", "public.key": "p", "private.key": "k",
            "event.notification.enabled": "true",
            "event.notification.callback.url": "https://example.com/hook",
            "event.poller.refresh_interval": "15",
            "event.poller.configuration": configuration_field("event.poller.configuration")
                .and_then(|f| f.default_value).expect("a default"),
        });
        let parsed =
            hubhook_core::InstanceConfig::parse(configuration.as_object().expect("object"))
                .expect("the default is valid");
        let polled: Vec<&str> = parsed.events.resources.keys().map(String::as_str).collect();
        let mut expected = DEFAULT_POLLED.to_vec();
        expected.sort_unstable();
        assert_eq!(polled, expected);
    }
}
