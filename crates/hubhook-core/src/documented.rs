//! The instance body the Cloud Elements documentation gives for the ConnectWise REST element
//! (the second example of its events page), with a site, keys and a callback filled in.
//!
//! One definition for everything that creates "the documented instance": the demo, the
//! end-to-end tests, the engine tests and the benchmarks. Callers adjust what they need
//! (a shorter refresh interval, a signature key) on the returned JSON.

use serde_json::{Value, json};

/// Where the instance polls and delivers.
#[derive(Debug, Clone, Copy)]
pub struct DocumentedSite<'a> {
    /// `https://…/v4_6_release/apis/3.0`.
    pub base_url: &'a str,
    pub company: &'a str,
    pub public_key: &'a str,
    pub private_key: &'a str,
    pub callback_url: &'a str,
}

/// The documented `POST /instances` body: contacts polled every 15 minutes by `lastUpdated`,
/// the ConnectWise default block, tags `["Test"]`, name `API_Polling`.
pub fn documented_instance_body(site: DocumentedSite<'_>) -> Value {
    json!({
        "element": { "key": "connectwisecrmrest" },
        "providerData": { "code": "1c6ff4089d58d80e86482ab7d5b97f15dd7b041d" },
        "configuration": {
            "baseUrl": site.base_url,
            "company": site.company,
            "public.key": site.public_key,
            "private.key": site.private_key,
            "event.notification.enabled": true,
            "event.notification.callback.url": site.callback_url,
            "event.poller.refresh_interval": "15",
            "event.poller.configuration": {
                "contacts": connectwise_poller_block("contacts"),
            }
        },
        "tags": ["Test"],
        "name": "API_Polling"
    })
}

/// The documentation's ConnectWise block for one hub resource: polled by `lastUpdated`, dates
/// read from `_info.lastUpdated` in GMT. The documentation gives it for `contacts` and invites
/// copying it for any other resource, which the element's default configuration does.
pub fn connectwise_poller_block(resource: &str) -> Value {
    json!({
        "url": format!("/hubs/crm/{resource}?where=lastUpdated>'${{gmtDate:yyyy-MM-dd'T'HH:mm:ss'Z'}}'"),
        "idField": "id",
        "datesConfiguration": {
            "updatedDateField": "_info.lastUpdated",
            "updatedDateFormat": "yyyy-MM-dd'T'HH:mm:ss'Z'",
            "updatedDateTimezone": "GMT",
            "createdDateField": "_info.lastUpdated",
            "createdDateFormat": "yyyy-MM-dd'T'HH:mm:ss'Z'",
            "createdDateTimezone": "GMT"
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InstanceConfig;

    #[test]
    fn the_documented_body_is_a_valid_configuration() {
        let body = documented_instance_body(DocumentedSite {
            base_url: "https://api-na.myconnectwise.net/v4_6_release/apis/3.0",
            company: "demo",
            public_key: "pub",
            private_key: "priv",
            callback_url: "https://hooks.example/in",
        });
        let configuration = body["configuration"].as_object().expect("object");
        let config = InstanceConfig::parse(configuration).expect("valid");
        assert!(config.events.resources.contains_key("contacts"));
        assert_eq!(config.events.refresh_interval.duration().as_secs(), 15 * 60);
    }
}
