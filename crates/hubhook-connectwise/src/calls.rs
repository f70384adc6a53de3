//! The calls behind the hub API and the poller: one page of a list, and one record read,
//! created, replaced, patched or deleted. Each is one ConnectWise request (plus the `429` waits
//! of [`Client::send`](crate::Client)); [`Client::fetch_all`] reads whole lists a page at a
//! time with the same query and the same answer handling.

use reqwest::Method;
use serde_json::Value;

use crate::client::{MAX_PAGE_BYTES, Overflow, read_limited, server_time};
use crate::nulls::strip_nulls;
use crate::page_token::PageRequest;
use crate::{Client, CwError, HubQuery};

/// One page of a hub list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// What ConnectWise answered: a JSON array of records, or, for an `objects/` path that is
    /// not a list (`system/info`, `.../count`), that object as it is.
    pub body: Value,
    /// The page after this one, when this one was full. A full last page is followed by an
    /// empty one: ConnectWise's `Link` headers cannot be trusted to say which page is the last
    /// (reference `connectwise-paging.md`), while an empty page always is.
    pub next: Option<PageRequest>,
    /// A lower bound of ConnectWise's clock when the request was sent: the answer's `Date`
    /// header (second precision) minus the time the call took, `429` waits included. `None`
    /// without a readable `Date` header.
    pub server_time: Option<jiff::Timestamp>,
    /// An upper bound of ConnectWise's clock when the page's records were read: the `Date`
    /// header plus one second (its precision) plus the time the body took to arrive. No record
    /// on the page can have been written later than this on that clock. `None` without a
    /// readable `Date` header.
    pub read_by: Option<jiff::Timestamp>,
}

impl Client {
    /// The page of `query` that `query.page` asks for; see [`crate::page_token`] for the
    /// paging style.
    pub async fn fetch_page(&self, query: &HubQuery) -> Result<Page, CwError> {
        let forward_only = query.forward_only();
        let mut url = self.list_url(query)?;
        let number = match query.page {
            PageRequest::After(id) => {
                url.query_pairs_mut().append_pair("pageId", &id.to_string());
                None
            }
            PageRequest::Number(n) => Some(n),
            PageRequest::First if forward_only => None,
            PageRequest::First => Some(1),
        };
        if let Some(n) = number {
            url.query_pairs_mut().append_pair("page", &n.to_string());
        }
        let started = std::time::Instant::now();
        let response = self
            .send(Method::GET, url.as_str(), None, forward_only)
            .await?;
        let server_time = server_time(&response, started.elapsed());
        let body = self.read_json(response).await?;
        // `server_time` is the `Date` header minus the wait for the headers; adding the whole
        // call's time gives the header plus the body's time.
        let read_by = server_time.and_then(|start| {
            let elapsed = jiff::SignedDuration::try_from(started.elapsed()).ok()?;
            start
                .checked_add(elapsed + jiff::SignedDuration::from_secs(1))
                .ok()
        });
        let full =
            matches!(&body, Value::Array(records) if records.len() >= query.page_size as usize);
        let next = match (full, &body, number) {
            (false, _, _) => None,
            (true, _, Some(n)) => n.checked_add(1).map(PageRequest::Number),
            (true, Value::Array(records), None) => {
                let last = records
                    .last()
                    .and_then(|r| r.get("id"))
                    .and_then(Value::as_i64)
                    .ok_or_else(|| {
                        CwError::Decode(
                            "the last record of a full page has no numeric id, so the list cannot be continued after it".to_string(),
                        )
                    })?;
                Some(PageRequest::After(last))
            }
            (true, _, None) => None,
        };
        Ok(Page {
            body,
            next,
            server_time,
            read_by,
        })
    }

    /// `GET {path}`: one record (or whatever a passthrough path answers).
    pub async fn get_record(&self, path: &str) -> Result<Value, CwError> {
        self.record_call(Method::GET, path, None).await
    }

    /// `POST {path}`: creates a record; ConnectWise answers `201` with it.
    pub async fn create_record(&self, path: &str, body: &Value) -> Result<Value, CwError> {
        self.record_call(Method::POST, path, Some(body)).await
    }

    /// `PUT {path}`: replaces every field of the record.
    pub async fn replace_record(&self, path: &str, body: &Value) -> Result<Value, CwError> {
        self.record_call(Method::PUT, path, Some(body)).await
    }

    /// `PATCH {path}` with a JSON Patch array (see [`crate::merge_to_json_patch`]).
    pub async fn patch_record(&self, path: &str, operations: &Value) -> Result<Value, CwError> {
        self.record_call(Method::PATCH, path, Some(operations))
            .await
    }

    /// `DELETE {path}`; ConnectWise answers `204` (companies are only marked deleted).
    pub async fn delete_record(&self, path: &str) -> Result<(), CwError> {
        self.record_call(Method::DELETE, path, None).await.map(drop)
    }

    async fn record_call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, CwError> {
        let url = self.url(path)?;
        let response = self.send(method, url.as_str(), body, false).await?;
        self.read_json(response).await
    }

    /// A success answer's JSON (null when it has no body, as a `204`), nulls filtered as the
    /// instance asks.
    async fn read_json(&self, response: reqwest::Response) -> Result<Value, CwError> {
        let bytes = read_limited(response, MAX_PAGE_BYTES, Overflow::Fail).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        // A page of a thousand records is megabytes of JSON: parsed off the poll's task (see
        // `hubhook_core::cpu`).
        let filter_nulls = self.options.filter_nulls;
        let large = bytes.len() >= hubhook_core::cpu::LARGE * 1024;
        hubhook_core::cpu::run(large, move || {
            let mut value: Value = serde_json::from_slice(&bytes)
                .map_err(|e| CwError::Decode(format!("the answer is not JSON: {e}")))?;
            if filter_nulls {
                strip_nulls(&mut value);
            }
            Ok(value)
        })
        .await
    }
}
