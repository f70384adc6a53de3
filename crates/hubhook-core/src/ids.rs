//! Identifier newtypes, so that an instance id cannot be passed where an event id is expected.

use std::fmt;

/// The id of an element instance (a number, as in Cloud Elements).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct InstanceId(pub i64);

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The id of one event. It is derived from the change it describes (see
/// [`crate::event::event_id`]), so the same change seen twice gets the same id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct EventId(pub String);

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of one notification (one webhook body carrying up to ten events).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct NotificationId(pub String);

impl fmt::Display for NotificationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_the_bare_value() {
        assert_eq!(InstanceId(12345).to_string(), "12345");
        assert_eq!(InstanceId(-1).to_string(), "-1");
        assert_eq!(EventId("abc".into()).to_string(), "abc");
        assert_eq!(NotificationId("n-1".into()).to_string(), "n-1");
    }

    #[test]
    fn instance_id_serializes_as_a_number() {
        assert_eq!(
            serde_json::to_string(&InstanceId(7)).ok().as_deref(),
            Some("7")
        );
        assert_eq!(
            serde_json::to_string(&EventId("x".into())).ok().as_deref(),
            Some("\"x\"")
        );
    }
}
