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
