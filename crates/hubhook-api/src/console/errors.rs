//! Puts an API refusal next to the form field it is about.
//!
//! The console does not check anything itself: it shows what `instances::validate` said. Every
//! refusal there names its field first, in backticks, as the API's messages do
//! (`` `event.notification.callback.url`: ... ``), and a configuration with several problems is
//! one message of such parts joined by `"; "`. So the message is split into its parts and each
//! part goes to the input named by its field; a part about a field the form has no input for
//! goes to the nearest one that holds it (a poller key to the raw JSON editor), and the rest,
//! like a refusal of the ConnectWise credentials, to the ConnectWise site section.

use std::collections::BTreeMap;

use crate::ApiError;

/// Where errors that name no input of the form are shown: the ConnectWise site section.
pub const SITE: &str = "connectwise";
/// The raw JSON view of `event.poller.configuration`.
pub const POLLER: &str = "event.poller.configuration";

/// The refusal of a form, by field.
#[derive(Debug, Default)]
pub struct FieldErrors {
    /// The whole message, shown at the top of the form.
    pub summary: Option<String>,
    pub by_field: BTreeMap<String, Vec<String>>,
}

impl FieldErrors {
    /// Splits `err` over the form's `inputs` (their names are configuration keys).
    pub fn from_api(err: &ApiError, inputs: &[String]) -> FieldErrors {
        let mut errors = FieldErrors {
            summary: Some(match &err.provider_message {
                Some(provider) => format!("{} (ConnectWise said: {provider})", err.message),
                None => err.message.clone(),
            }),
            by_field: BTreeMap::new(),
        };
        let message = err
            .message
            .strip_prefix("invalid configuration: ")
            .unwrap_or(&err.message);
        for part in parts(message) {
            let target = field_of(&part)
                .map(|field| place(&field, inputs))
                .unwrap_or_else(|| SITE.to_string());
            errors.by_field.entry(target).or_default().push(part);
        }
        errors
    }

    pub fn get(&self, field: &str) -> Option<&[String]> {
        self.by_field.get(field).map(Vec::as_slice)
    }
}

/// The parts of a message: each `"; "` that starts a new `` `field` `` starts a new part.
fn parts(message: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = message;
    while let Some(cut) = rest.find("; `") {
        parts.push(rest[..cut].to_string());
        rest = &rest[cut + 2..];
    }
    parts.push(rest.to_string());
    parts
}

/// The field a part starts with (`` `name`: ``, or `` `name` is required ``).
fn field_of(part: &str) -> Option<String> {
    let rest = part.strip_prefix('`')?;
    let end = rest.find('`')?;
    Some(rest[..end].to_string())
}

/// The input that shows an error about `field`: the input itself, else the closest enclosing
/// key the form has an input for (`event.poller.configuration.x.pageSize` goes to the raw
/// JSON), else the site section.
fn place(field: &str, inputs: &[String]) -> String {
    // One input holds every tag: `tags[2]` goes to it.
    let field = if field.starts_with("tags[") {
        "tags"
    } else {
        field
    };
    let mut key = field;
    loop {
        if inputs.iter().any(|input| input == key) {
            return key.to_string();
        }
        match key.rfind('.') {
            Some(dot) => key = &key[..dot],
            None => break,
        }
    }
    if field.starts_with(POLLER) {
        POLLER.to_string()
    } else if field.starts_with("element.") || field == "name" || field == "tags" {
        "name".to_string()
    } else {
        SITE.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> Vec<String> {
        [
            "name",
            "tags",
            "baseUrl",
            "event.notification.callback.url",
            "event.poller.configuration",
            "event.poller.configuration.contacts.url",
        ]
        .map(str::to_string)
        .to_vec()
    }

    #[test]
    fn each_part_goes_to_its_field() {
        let err = ApiError::bad_request(
            "invalid configuration: `baseUrl`: missing, expected a URL; `event.poller.configuration.contacts.url`: invalid value, got `x; y`, expected a hub URL; `event.poller.configuration.contacts.pageSize`: invalid value, got `0`, expected 1..1000",
        );
        let errors = FieldErrors::from_api(&err, &inputs());
        assert_eq!(errors.get("baseUrl").unwrap().len(), 1);
        assert!(
            errors
                .get("event.poller.configuration.contacts.url")
                .unwrap()[0]
                .contains("got `x; y`")
        );
        assert!(errors.get(POLLER).unwrap()[0].contains("pageSize"));
    }

    #[test]
    fn a_tag_s_error_goes_to_the_tags() {
        let err = ApiError::bad_request("`tags[1]` is empty once HTML tags are removed");
        let errors = FieldErrors::from_api(&err, &inputs());
        assert!(errors.get("tags").is_some_and(|e| e[0].contains("tags[1]")));
        assert!(errors.get(SITE).is_none());
    }

    #[test]
    fn messages_without_a_field_go_to_the_site() {
        let err = ApiError::bad_request(
            "ConnectWise at `http://x` refused the credentials (`company`, `public.key`)",
        );
        let errors = FieldErrors::from_api(&err, &inputs());
        assert!(errors.get(SITE).is_some());
        let err = ApiError::bad_request("`event.notification.callback.url`: loopback address");
        let errors = FieldErrors::from_api(&err, &inputs());
        assert!(errors.get("event.notification.callback.url").is_some());
    }
}
