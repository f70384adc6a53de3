//! Dotted JSON paths such as `_info.lastUpdated`, as used by `idField` and the date fields of
//! the poller configuration.

use crate::error::ConfigError;

/// A parsed dotted path. Numeric segments also index arrays (`contacts.0.id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    source: String,
    segments: Vec<String>,
}

impl FieldPath {
    /// Parses `dotted`. The error names the field `path`; callers rewrite it to the real
    /// configuration key.
    pub fn parse(dotted: &str) -> Result<FieldPath, ConfigError> {
        let expected = "a dot-separated JSON path such as `id` or `_info.lastUpdated`";
        let source = dotted.trim();
        if source.is_empty() {
            return Err(ConfigError::missing("path", expected));
        }
        let segments: Vec<String> = source.split('.').map(str::to_owned).collect();
        if segments
            .iter()
            .any(|s| s.is_empty() || s.trim() != s.as_str())
        {
            return Err(ConfigError::invalid("path", dotted, expected));
        }
        Ok(FieldPath {
            source: source.to_owned(),
            segments,
        })
    }

    /// The value at this path, if every step exists.
    pub fn get<'a>(&self, v: &'a serde_json::Value) -> Option<&'a serde_json::Value> {
        self.segments
            .iter()
            .try_fold(v, |current, segment| match current {
                serde_json::Value::Object(map) => map.get(segment),
                serde_json::Value::Array(items) => items.get(segment.parse::<usize>().ok()?),
                _ => None,
            })
    }

    /// The path's steps, in order.
    pub(crate) fn segments(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().map(String::as_str)
    }

    /// The path as written (trimmed).
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl std::fmt::Display for FieldPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(path: &str, expected: Option<serde_json::Value>) {
        let record = json!({
            "id": 42,
            "_info": {"lastUpdated": "2019-03-01T10:15:00Z"},
            "company": {"id": 7, "name": null},
            "phones": [{"number": "555"}, {"number": "556"}],
        });
        let path = FieldPath::parse(path).expect("valid path");
        assert_eq!(path.get(&record), expected.as_ref(), "{}", path.as_str());
    }

    #[test]
    fn gets_nested_values() {
        check("id", Some(json!(42)));
        check("_info.lastUpdated", Some(json!("2019-03-01T10:15:00Z")));
        check("company.id", Some(json!(7)));
        check("company.name", Some(json!(null)));
        check("phones.1.number", Some(json!("556")));
        check("phones.2.number", None);
        check("phones.x", None);
        check("company.id.deeper", None);
        check("missing", None);
    }

    #[test]
    fn rejects_malformed_paths() {
        for bad in ["", "  ", "a..b", ".a", "a.", "a. b"] {
            let error = FieldPath::parse(bad).expect_err(bad);
            assert_eq!(error.field, "path");
        }
        assert_eq!(
            FieldPath::parse(" id ").map(|p| p.as_str().to_owned()),
            Ok("id".into())
        );
    }
}
