//! Configuration errors that name the exact field, so a caller can fix the instance body.

use std::fmt;

/// One invalid configuration field.
///
/// `value` is `None` when the field is missing; secret fields never carry their value here, only
/// [`crate::config::MASK`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The configuration key, dotted like the Cloud Elements keys, e.g.
    /// `event.poller.configuration.contacts.idField`.
    pub field: String,
    /// The offending value as text, or `None` when the field is missing.
    pub value: Option<String>,
    /// What would have been accepted, as a phrase ("a number of minutes ...").
    pub expected: String,
}

impl ConfigError {
    /// A required field that is absent (or null, or an empty string).
    pub fn missing(field: impl Into<String>, expected: impl Into<String>) -> ConfigError {
        ConfigError {
            field: field.into(),
            value: None,
            expected: expected.into(),
        }
    }

    /// A field whose value is present but not acceptable.
    pub fn invalid(
        field: impl Into<String>,
        value: impl Into<String>,
        expected: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            field: field.into(),
            value: Some(value.into()),
            expected: expected.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            None => write!(f, "`{}`: missing", self.field)?,
            Some(value) => write!(f, "`{}`: invalid value, got `{value}`", self.field)?,
        }
        write!(f, ", expected {}", self.expected)
    }
}

/// All problems found in a configuration, so the user can fix them in one round trip.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The fields named by the errors, in order (handy for callers and tests).
    pub fn fields(&self) -> Vec<&str> {
        self.0.iter().map(|e| e.field.as_str()).collect()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(error: ConfigError, expected: &str) {
        assert_eq!(error.to_string(), expected);
    }

    #[test]
    fn display_names_field_value_and_expectation() {
        check(
            ConfigError::missing("company", "the ConnectWise company id"),
            "`company`: missing, expected the ConnectWise company id",
        );
        check(
            ConfigError::invalid("event.poller.refresh_interval", "-1", "a positive number"),
            "`event.poller.refresh_interval`: invalid value, got `-1`, expected a positive number",
        );
    }

    #[test]
    fn errors_join_with_semicolons() {
        let errors = ConfigErrors(vec![
            ConfigError::missing("a", "x"),
            ConfigError::invalid("b", "1", "y"),
        ]);
        assert_eq!(
            errors.to_string(),
            "`a`: missing, expected x; `b`: invalid value, got `1`, expected y"
        );
        assert_eq!(errors.fields(), vec!["a", "b"]);
    }
}
