//! Query parameters a route does not take are refused, by name, before the route runs.
//!
//! A parameter a route would otherwise ignore without a word misleads its caller:
//! `PUT /instances/1/enabled?dryRun=true` does just what it does without it, and the caller
//! believes it counted. Each route's parameters are already listed in the OpenAPI description
//! (the schemathesis run checks that they match what the routes read), so that description is
//! the one list: this layer, run after routing, answers `400` naming the first parameter the
//! matched operation does not list, whatever the handler would have done. The hub's routes
//! are left out: their queries go on to ConnectWise, which names what it does not know.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use serde_json::Value;

use crate::ApiError;
use crate::body::shown;

/// The query parameters of each operation of the description, by method and path template.
#[derive(Clone, Default)]
pub(crate) struct QueryParams(Arc<HashMap<(String, String), HashSet<String>>>);

impl QueryParams {
    /// Read from the OpenAPI description, hub routes left out.
    pub(crate) fn from_description(description: &Value) -> QueryParams {
        let mut table = HashMap::new();
        let paths = description["paths"].as_object().into_iter().flatten();
        for (path, item) in paths {
            if is_hub(path) {
                continue;
            }
            let shared = item["parameters"].as_array().cloned().unwrap_or_default();
            for (method, operation) in item.as_object().into_iter().flatten() {
                let Some(own) = operation["parameters"].as_array() else {
                    if operation.is_object() {
                        table.insert((method.to_uppercase(), path.clone()), query_names(&shared));
                    }
                    continue;
                };
                let mut names = query_names(&shared);
                names.extend(query_names(own));
                table.insert((method.to_uppercase(), path.clone()), names);
            }
        }
        QueryParams(Arc::new(table))
    }
}

fn query_names(parameters: &[Value]) -> HashSet<String> {
    parameters
        .iter()
        .filter(|p| p["in"] == "query")
        .filter_map(|p| p["name"].as_str().map(str::to_string))
        .collect()
}

/// The hub's routes, whose queries are ConnectWise's.
fn is_hub(path: &str) -> bool {
    path.starts_with("/elements/api-v2/hubs/") || path.starts_with("/elements/api-v2/objects")
}

/// The layer: `400` for a query parameter the matched operation does not list.
pub(crate) async fn refuse_undeclared(
    params: QueryParams,
    request: Request,
    next: Next,
) -> Response {
    let query = request.uri().query().unwrap_or("");
    if query.is_empty() {
        return next.run(request).await;
    }
    let Some(template) = request.extensions().get::<MatchedPath>() else {
        return next.run(request).await;
    };
    let key = (
        request.method().as_str().to_string(),
        template.as_str().to_string(),
    );
    let Some(taken) = params.0.get(&key) else {
        return next.run(request).await;
    };
    let unknown = url::form_urlencoded::parse(query.as_bytes())
        .map(|(name, _)| name)
        .find(|name| !taken.contains(name.as_ref()));
    let Some(unknown) = unknown else {
        return next.run(request).await;
    };
    let message = if taken.is_empty() {
        format!(
            "this route takes no query parameters; got `?{}`",
            shown(query, 60).escape_debug()
        )
    } else {
        let unknown = shown(&unknown, 60);
        let mut names: Vec<&str> = taken.iter().map(String::as_str).collect();
        names.sort_unstable();
        format!(
            "`{}` is not a query parameter of this route; it takes `{}`",
            unknown.escape_debug(),
            names.join("`, `")
        )
    };
    ApiError::bad_request(message).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_table_lists_each_operations_query_parameters_and_leaves_the_hub_out() {
        let description = json!({"paths": {
            "/elements/api-v2/instances": {
                "get": {"parameters": [
                    {"name": "where", "in": "query"},
                    {"name": "Authorization", "in": "header"},
                ]},
                "post": {},
            },
            "/elements/api-v2/instances/{id}": {
                "parameters": [{"name": "id", "in": "path"}],
                "delete": {"parameters": [{"name": "id", "in": "path"}]},
            },
            "/elements/api-v2/hubs/crm/{resource}": {"get": {}},
        }});
        let table = QueryParams::from_description(&description);
        let get = |method: &str, path: &str| {
            table
                .0
                .get(&(method.to_string(), path.to_string()))
                .map(|names| {
                    let mut names: Vec<_> = names.iter().cloned().collect();
                    names.sort();
                    names
                })
        };
        assert_eq!(
            get("GET", "/elements/api-v2/instances"),
            Some(vec!["where".into()])
        );
        assert_eq!(get("POST", "/elements/api-v2/instances"), Some(vec![]));
        assert_eq!(
            get("DELETE", "/elements/api-v2/instances/{id}"),
            Some(vec![])
        );
        assert_eq!(get("GET", "/elements/api-v2/hubs/crm/{resource}"), None);
    }
}
