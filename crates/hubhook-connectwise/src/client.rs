//! HTTP calls to one customer's ConnectWise Manage site.

use std::time::Duration;

use base64::Engine as _;
use hubhook_core::ConnectWiseCredentials;
use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, DATE, HeaderMap, HeaderValue, RETRY_AFTER};
use serde_json::Value;

use crate::{CwError, HubQuery, PageRequest};

/// The API version hubhook asks for. ConnectWise serves the models of this release even when the
/// site runs a newer one, so records keep the shape hubhook was tested with.
const ACCEPT_VERSION: &str = "application/vnd.connectwise.com+json; version=2025.1";

/// How the adapter behaves when ConnectWise pushes back.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Waits of up to this long asked for by `429 Retry-After` are taken in process; longer
    /// ones end the call with [`CwError::RateLimited`] so the poller reschedules instead.
    pub max_retry_after: Duration,
    /// How many 429 answers one call absorbs before giving up.
    pub max_rate_limit_retries: u32,
    /// Safety net against a server whose `Link` header never ends.
    pub max_pages: u32,
    /// The instance's `filter.response.nulls`: remove null fields from every answer (see
    /// `nulls`).
    pub filter_nulls: bool,
    /// The site's request budget and pause, shared by every client of the site.
    pub throttle: Option<std::sync::Arc<crate::SiteThrottle>>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        // Short in-process waits only: a poll holds a worker slot and a lease while it sleeps,
        // so longer waits go back to the scheduler instead.
        ClientOptions {
            max_retry_after: Duration::from_secs(10),
            max_rate_limit_retries: 3,
            max_pages: 100_000,
            filter_nulls: true,
            throttle: None,
        }
    }
}

/// Largest list page we accept (a page of 1000 large records is a few MB).
pub(crate) const MAX_PAGE_BYTES: usize = 32 * 1024 * 1024;
/// Largest `/system/info` answer (a few hundred bytes in practice).
const MAX_INFO_BYTES: usize = 64 * 1024;
/// How much of an error body we keep for messages.
const MAX_ERROR_BYTES: usize = 2048;

/// The records of a query, with what the poller needs to place its cursor safely.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    pub records: Vec<Value>,
    /// How many pages were read. More than one page is not one snapshot: records can change
    /// between pages.
    pub pages: u32,
    /// A lower bound of ConnectWise's clock when this fetch began: the first page's `Date`
    /// header (second precision, stamped when ConnectWise answered) minus the time we waited
    /// for that answer, retries included. A change written after this instant may be missing
    /// from the pages read; one written before it is in them (or was overwritten later).
    pub server_time_at_start: Option<jiff::Timestamp>,
}

/// A ConnectWise client bound to one instance's credentials.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    pub(crate) base_url: String,
    headers: HeaderMap,
    pub(crate) options: ClientOptions,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The headers carry the private key; never print them.
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for the site and API member in `credentials`. `http` is shared between
    /// instances so connections are pooled.
    pub fn new(
        http: reqwest::Client,
        credentials: &ConnectWiseCredentials,
        options: ClientOptions,
    ) -> Result<Client, CwError> {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}+{}:{}",
            credentials.company, credentials.public_key, credentials.private_key
        ));
        let mut headers = HeaderMap::new();
        let mut auth = HeaderValue::from_str(&format!("Basic {basic}")).map_err(|_| {
            CwError::InvalidQuery(
                "company or keys contain characters not allowed in a header".into(),
            )
        })?;
        auth.set_sensitive(true);
        headers.insert(AUTHORIZATION, auth);
        headers.insert(ACCEPT, HeaderValue::from_static(ACCEPT_VERSION));
        if let Some(client_id) = &credentials.client_id {
            let value = HeaderValue::from_str(client_id).map_err(|_| {
                CwError::InvalidQuery(
                    "connectwise.clientID contains characters not allowed in a header".into(),
                )
            })?;
            headers.insert("clientId", value);
        }
        Ok(Client {
            http,
            base_url: credentials.base_url.trim_end_matches('/').to_string(),
            headers,
            options,
        })
    }

    /// `GET /system/info`: the cheapest authenticated call, used to check credentials.
    pub async fn system_info(&self) -> Result<Value, CwError> {
        let url = format!("{}/system/info", self.base_url);
        let response = self.send(Method::GET, &url, None, false).await?;
        let body = read_limited(response, MAX_INFO_BYTES, Overflow::Fail).await?;
        serde_json::from_slice(&body)
            .map_err(|e| CwError::Decode(format!("/system/info is not JSON: {e}")))
    }

    /// Every record matching `query`, reading all pages one after another with
    /// [`Client::fetch_page`] (the one paging path; the poller's [`Client::fetch_raw_page`] shares
    /// its request and next-page rule).
    ///
    /// Without an `orderBy`, pages are read with ConnectWise's forward-only paging (`id >
    /// pageId`): offsets shift when records are deleted during a scan, which would skip a
    /// record, while a keyset on `id` cannot. With an `orderBy` (which forward-only paging
    /// refuses) numbered pages are read instead. Either way the `Link` header is not needed:
    /// a full page is followed by a request for the next one, and a short or empty page ends
    /// the list, so a list whose size is an exact multiple of the page size ends with one
    /// empty page whatever `Link` ConnectWise sent (none, an empty one, or a next one).
    pub async fn fetch_all(&self, query: &HubQuery) -> Result<Fetched, CwError> {
        let mut query = query.clone();
        query.page = PageRequest::First;
        let forward_only = query.forward_only();
        let mut fetched = Fetched::default();
        let mut last_id: Option<i64> = None;
        loop {
            fetched.pages += 1;
            if fetched.pages > self.options.max_pages {
                return Err(CwError::Decode(format!(
                    "more than {} pages; stopping",
                    self.options.max_pages
                )));
            }
            let page = self.fetch_page(&query).await?;
            if fetched.pages == 1 {
                fetched.server_time_at_start = page.server_time;
            }
            let Value::Array(records) = page.body else {
                return Err(CwError::Decode(
                    "a list page is not a JSON array".to_string(),
                ));
            };
            let id = |record: Option<&Value>| record?.get("id")?.as_i64();
            // A server that ignores `pageId` would answer the same page for ever.
            if forward_only
                && let (Some(first), Some(previous)) = (id(records.first()), last_id)
                && first <= previous
            {
                return Err(CwError::Decode(format!(
                    "id {first} came after id {previous}; the pages do not move forward"
                )));
            }
            last_id = id(records.last()).or(last_id);
            fetched.records.extend(records);
            match page.next {
                Some(next) => query.page = next,
                None => break,
            }
        }
        Ok(fetched)
    }

    /// The URL of the first page of `query`'s list: its path with `conditions`, `orderBy`,
    /// `fields` and `pageSize`.
    pub(crate) fn list_url(&self, query: &HubQuery) -> Result<url::Url, CwError> {
        let mut url = self.url(&query.path)?;
        {
            let mut pairs = url.query_pairs_mut();
            if let Some(conditions) = &query.conditions {
                pairs.append_pair("conditions", conditions);
            }
            if let Some(order_by) = &query.order_by {
                pairs.append_pair("orderBy", order_by);
            }
            if let Some(fields) = &query.fields {
                pairs.append_pair("fields", fields);
            }
            pairs.append_pair("pageSize", &query.page_size.to_string());
        }
        Ok(url)
    }

    /// The URL of a ConnectWise path below the base URL (`company/contacts/5`).
    pub(crate) fn url(&self, path: &str) -> Result<url::Url, CwError> {
        url::Url::parse(&format!("{}/{path}", self.base_url)).map_err(|e| {
            CwError::InvalidQuery(format!(
                "baseUrl `{}` is not a valid URL: {e}",
                self.base_url
            ))
        })
    }

    /// One request with the instance's credentials; a success answer, or the failure
    /// classified. `429` answers are waited out (see [`ClientOptions`]): ConnectWise refused the
    /// request without acting on it, so repeating it is safe for writes too.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        forward_only: bool,
    ) -> Result<reqwest::Response, CwError> {
        let mut rate_limited = 0;
        loop {
            let mut request = self
                .http
                .request(method.clone(), url)
                .headers(self.headers.clone());
            if forward_only {
                request = request.header("pagination-type", "forward-only");
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            if let Some(throttle) = &self.options.throttle {
                // A site paused for longer than we would wait is answered at once, as
                // ConnectWise would answer it, without spending a request.
                if let Some(left) = throttle.paused_for()
                    && left > self.options.max_retry_after
                {
                    return Err(CwError::RateLimited {
                        retry_after: round_up_to_seconds(left),
                    });
                }
                throttle.ready().await;
            }
            let response = request.send().await.map_err(|e| transport_error(&e))?;
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            if status.as_u16() == 429 {
                let retry_after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs)
                    .unwrap_or(Duration::from_secs(30));
                // The whole site waits, not only this request: ConnectWise counts per site.
                if let Some(throttle) = &self.options.throttle {
                    throttle.pause(retry_after);
                }
                rate_limited += 1;
                if rate_limited > self.options.max_rate_limit_retries
                    || retry_after > self.options.max_retry_after
                {
                    return Err(CwError::RateLimited { retry_after });
                }
                tracing::info!(
                    ?retry_after,
                    "ConnectWise rate limited the request; waiting as asked"
                );
                // With a throttle, the next `ready()` waits out the site's pause.
                if self.options.throttle.is_none() {
                    tokio::time::sleep(retry_after).await;
                }
                continue;
            }
            let body = read_limited(response, MAX_ERROR_BYTES, Overflow::Truncate)
                .await
                .unwrap_or_default();
            let provider_message = provider_message(&String::from_utf8_lossy(&body));
            return Err(match status.as_u16() {
                401 | 403 => CwError::Unauthorized {
                    status: status.as_u16(),
                    provider_message,
                },
                code => CwError::Status {
                    status: code,
                    provider_message,
                },
            });
        }
    }
}

/// ConnectWise's clock when a request was sent, at the latest: the answer's `Date` header
/// minus how long the call took (`waited`). `None` without a readable `Date`.
pub(crate) fn server_time(
    response: &reqwest::Response,
    waited: std::time::Duration,
) -> Option<jiff::Timestamp> {
    let waited = jiff::SignedDuration::try_from(waited).unwrap_or(jiff::SignedDuration::MAX);
    response
        .headers()
        .get(DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| jiff::fmt::rfc2822::parse(v).ok())
        .and_then(|z| z.timestamp().checked_sub(waited).ok())
}

/// What to do with a body longer than we accept.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Overflow {
    /// Keep the first bytes (error bodies, which are only for messages).
    Truncate,
    /// Fail (list pages, which must be whole).
    Fail,
}

/// The body, read in chunks up to `limit` bytes: a hostile or broken server cannot make us
/// buffer without bound.
pub(crate) async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
    overflow: Overflow,
) -> Result<Vec<u8>, CwError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| transport_error(&e))? {
        let room = limit - body.len();
        if chunk.len() > room {
            return match overflow {
                Overflow::Truncate => {
                    body.extend_from_slice(&chunk[..room]);
                    Ok(body)
                }
                Overflow::Fail => Err(CwError::Decode(format!(
                    "response larger than {limit} bytes"
                ))),
            };
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// ConnectWise error bodies are `{"code":..,"message":..}` (or `{"error":..,"message":..}` on
/// 429), with the field problems of a refused write in `errors[]` (`{"code":"InvalidObject",
/// "message":"contact object is invalid","errors":[{"message":"The firstName field is
/// required.","field":"firstName",..}]}`): those say what to fix, so they are kept. Anything
/// else falls back to the raw text, shortened.
fn provider_message(body: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return body.chars().take(500).collect();
    };
    let code = v
        .get("code")
        .or_else(|| v.get("error"))
        .and_then(Value::as_str);
    let Some(message) = v.get("message").and_then(Value::as_str) else {
        return body.chars().take(500).collect();
    };
    let mut text = match code {
        Some(code) => format!("{code}: {message}"),
        None => message.to_string(),
    };
    let details: Vec<&str> = v
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("message").and_then(Value::as_str))
        .collect();
    if !details.is_empty() {
        text.push_str(" (");
        text.push_str(&details.join(" "));
        text.push(')');
    }
    text
}

/// A failed exchange: a timeout (which the hub answers with 504) or any other transport failure.
fn transport_error(err: &reqwest::Error) -> CwError {
    if err.is_timeout() {
        CwError::Timeout(transport_message(err))
    } else {
        CwError::Transport(transport_message(err))
    }
}

/// reqwest's top-level message hides the cause ("error sending request"); the whole chain
/// says what actually failed (refused, DNS, TLS, timeout).
pub fn transport_message(err: &reqwest::Error) -> String {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// A duration in whole seconds, rounded up (`Retry-After` counts seconds; rounding down could
/// tell a caller to come back before the pause ends).
fn round_up_to_seconds(duration: Duration) -> Duration {
    let seconds = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    Duration::from_secs(seconds)
}

#[cfg(test)]
mod tests {
    use super::provider_message;

    #[test]
    fn provider_messages_keep_connectwise_words() {
        let check = |body: &str, expected: &str| assert_eq!(provider_message(body), expected);
        check(
            r#"{"code":"NotFound","message":"Contact 57919 not found"}"#,
            "NotFound: Contact 57919 not found",
        );
        check(
            r#"{"code":"InvalidObject","message":"contact object is invalid","errors":[{"code":"MissingRequiredField","message":"The firstName field is required.","resource":"contact","field":"firstName"},{"code":"InvalidField","message":"Invalid URL","field":"url"}]}"#,
            "InvalidObject: contact object is invalid (The firstName field is required. Invalid URL)",
        );
        check(
            r#"{"error":"ConnectWiseAPI","message":"Too many requests."}"#,
            "ConnectWiseAPI: Too many requests.",
        );
        check(r#"{"message":"m","errors":null}"#, "m");
        check("<html>Bad Gateway</html>", "<html>Bad Gateway</html>");
        check(r#"{"code":"x"}"#, r#"{"code":"x"}"#);
    }
}
