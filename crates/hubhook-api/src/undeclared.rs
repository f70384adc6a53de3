//! Query parameters and bodies a route does not take are refused, by name, before the route
//! runs.
//!
//! Input a route would otherwise ignore without a word misleads its caller:
//! `PUT /instances/1/enabled?dryRun=true` does just what it does without it, and
//! `POST /instances/1/webhook-secret` with `{"webhookSecret": "whsec_mine"}` rotates to a
//! random secret; both callers believe what they sent counted. Each route's parameters and
//! body are already listed in the OpenAPI description (the schemathesis run checks that they
//! match what the routes read), so that description is the one list: this layer, run after
//! routing, answers `400` naming the first query parameter the matched operation does not
//! list, or the body of an operation that has none, whatever the handler would have done. A
//! body of nothing but `null`, `{}` or `[]` (whatever its white space) is let through: some
//! clients send one with every request (Jackson pretty-prints `{ }`, PHP's `json_encode([])`
//! is `[]`), and it says nothing. So is the `_` parameter, jQuery's cache-buster.
//!
//! Only the operations a customer's credentials call (those with a `security` scheme) are
//! checked. The hub's routes are left out (their queries and bodies go on to ConnectWise,
//! which names what it does not know), and so are the routes others call with URLs they
//! make: ConnectWise's callbacks (registered as `…?recordId=`, to which ConnectWise appends
//! the id), supervisors' probes and scrapers (`/healthz?probe=1`), the legacy sign-in.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use serde_json::Value;

use crate::ApiError;
use crate::body::shown;

/// What an operation of the description takes.
#[derive(Debug, Default, PartialEq)]
struct Takes {
    query: HashSet<String>,
    body: bool,
}

/// What each operation of the description takes, by method and path template.
#[derive(Clone, Default)]
pub(crate) struct Declared(Arc<HashMap<(String, String), Takes>>);

impl Declared {
    /// Read from the OpenAPI description, hub routes left out.
    pub(crate) fn from_description(description: &Value) -> Declared {
        let mut table = HashMap::new();
        let paths = description["paths"].as_object().into_iter().flatten();
        for (path, item) in paths {
            if is_hub(path) {
                continue;
            }
            let shared = item["parameters"].as_array().cloned().unwrap_or_default();
            for (method, operation) in item.as_object().into_iter().flatten() {
                let secured = operation["security"]
                    .as_array()
                    .is_some_and(|schemes| !schemes.is_empty());
                if method == "parameters" || !operation.is_object() || !secured {
                    continue;
                }
                let mut query = query_names(&shared);
                if let Some(own) = operation["parameters"].as_array() {
                    query.extend(query_names(own));
                }
                let body = !operation["requestBody"].is_null();
                table.insert((method.to_uppercase(), path.clone()), Takes { query, body });
            }
        }
        Declared(Arc::new(table))
    }
}

fn query_names(parameters: &[Value]) -> HashSet<String> {
    parameters
        .iter()
        .filter(|p| p["in"] == "query")
        .filter_map(|p| p["name"].as_str().map(str::to_string))
        .collect()
}

/// The hub's routes, whose queries and bodies are ConnectWise's.
fn is_hub(path: &str) -> bool {
    path.starts_with("/elements/api-v2/hubs/") || path.starts_with("/elements/api-v2/objects")
}

/// The layer: `400` for a query parameter the matched operation does not list, or a body it
/// does not take.
pub(crate) async fn refuse_undeclared(
    declared: Declared,
    request: Request,
    next: Next,
) -> Response {
    let Some(template) = request.extensions().get::<MatchedPath>() else {
        return next.run(request).await;
    };
    let key = (
        request.method().as_str().to_string(),
        template.as_str().to_string(),
    );
    let Some(takes) = declared.0.get(&key) else {
        return next.run(request).await;
    };
    if let Some(refused) = undeclared_query(request.uri().query().unwrap_or(""), &takes.query) {
        return refused.into_response();
    }
    if takes.body || !has_body(&request) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match crate::body::read_body(Request::new(body), &()).await {
        Ok(bytes) => bytes,
        Err(refused) => return refused.into_response(),
    };
    if !says_nothing(&bytes) {
        let text = String::from_utf8_lossy(&bytes);
        return ApiError::bad_request(format!(
            "this route takes no request body; got {} bytes (`{}`)",
            bytes.len(),
            shown(text.trim(), 40).escape_debug()
        ))
        .into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Whether a body is nothing, or JSON that carries nothing: `null`, `{}` or `[]`.
fn says_nothing(bytes: &[u8]) -> bool {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return true;
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Null) => true,
        Ok(Value::Object(members)) => members.is_empty(),
        Ok(Value::Array(items)) => items.is_empty(),
        _ => false,
    }
}

/// Whether a request says it has a body: a length past zero, or chunks.
fn has_body(request: &Request) -> bool {
    let headers = request.headers();
    headers.contains_key(axum::http::header::TRANSFER_ENCODING)
        || headers
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|length| length.trim() != "0")
}

/// The refusal of the first query parameter not in `taken`, if `query` has one.
fn undeclared_query(query: &str, taken: &HashSet<String>) -> Option<ApiError> {
    if query.is_empty() {
        return None;
    }
    let names: Vec<_> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(name, _)| name)
        .filter(|name| name != "_")
        .collect();
    let unknown = names.iter().find(|name| !taken.contains(name.as_ref()))?;
    // Names only: a value may be a secret sent in the wrong place.
    let message = if taken.is_empty() {
        let names: Vec<String> = names
            .iter()
            .map(|name| shown(name, 40).escape_debug().to_string())
            .collect();
        format!(
            "this route takes no query parameters; got `{}`",
            shown(&names.join("`, `"), 200)
        )
    } else {
        let mut names: Vec<&str> = taken.iter().map(String::as_str).collect();
        names.sort_unstable();
        format!(
            "`{}` is not a query parameter of this route; it takes `{}`",
            shown(unknown, 60).escape_debug(),
            names.join("`, `")
        )
    };
    Some(ApiError::bad_request(message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_table_lists_each_operations_query_parameters_and_body_and_leaves_the_hub_out() {
        let description = json!({"paths": {
            "/elements/api-v2/instances": {
                "get": {"parameters": [
                    {"name": "where", "in": "query"},
                    {"name": "Authorization", "in": "header"},
                ], "security": [{"UserOrganization": []}]},
                "post": {"requestBody": {"content": {}}, "security": [{"UserOrganization": []}]},
            },
            "/elements/api-v2/instances/{id}": {
                "parameters": [{"name": "id", "in": "path"}],
                "delete": {
                    "parameters": [{"name": "id", "in": "path"}],
                    "security": [{"UserOrganization": []}],
                },
            },
            "/elements/api-v2/hubs/crm/{resource}": {"get": {"security": [{"UserOrganization": []}]}},
            "/healthz": {"get": {}},
        }});
        let table = Declared::from_description(&description);
        let get = |method: &str, path: &str| {
            table
                .0
                .get(&(method.to_string(), path.to_string()))
                .map(|takes| {
                    let mut names: Vec<_> = takes.query.iter().cloned().collect();
                    names.sort();
                    (names, takes.body)
                })
        };
        assert_eq!(
            get("GET", "/elements/api-v2/instances"),
            Some((vec!["where".into()], false))
        );
        assert_eq!(
            get("POST", "/elements/api-v2/instances"),
            Some((vec![], true))
        );
        assert_eq!(
            get("DELETE", "/elements/api-v2/instances/{id}"),
            Some((vec![], false))
        );
        assert_eq!(get("GET", "/elements/api-v2/hubs/crm/{resource}"), None);
        assert_eq!(
            get("GET", "/healthz"),
            None,
            "no security: not a customer's route"
        );
        assert_eq!(table.0.len(), 3, "path-level parameters are no operation");
    }

    #[test]
    fn a_body_that_says_nothing_passes() {
        for nothing in [
            "", " \r\n", "null", "{}", "{ }", "{\n}", "[]", "[ ]", " null\n",
        ] {
            assert!(says_nothing(nothing.as_bytes()), "{nothing:?}");
        }
        for something in [
            "{\"a\":1}",
            "[1]",
            "0",
            "\"\"",
            "false",
            "not json{",
            "{}{}",
        ] {
            assert!(!says_nothing(something.as_bytes()), "{something:?}");
        }
    }

    #[test]
    fn a_refused_query_names_parameters_never_values() {
        let none = HashSet::new();
        let refused = undeclared_query("user=me&password=secret", &none).expect("refused");
        assert!(
            refused.message.contains("`user`, `password`"),
            "{}",
            refused.message
        );
        assert!(!refused.message.contains("secret"), "{}", refused.message);
        assert!(
            undeclared_query("_=1700000000", &none).is_none(),
            "a cache-buster"
        );
        let some = HashSet::from(["page".to_string()]);
        let refused = undeclared_query("page=1&pagesize=5", &some).expect("refused");
        assert!(
            refused.message.contains("`pagesize`"),
            "{}",
            refused.message
        );
    }
}
