//! The calls behind the hub API and the poller: one page of a list, and one record read,
//! created, replaced, patched or deleted. Each is one ConnectWise request (plus the `429` waits
//! of [`Client::send`](crate::Client)); [`Client::fetch_all`] reads whole lists a page at a
//! time with the same query and the same answer handling.

use reqwest::Method;
use serde_json::Value;
use serde_json::value::RawValue;

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

/// One page of a list as the poller reads it: each record's own text, not yet parsed, so that
/// the poller reads it once, straight into its canonical form
/// ([`hubhook_core::PageRecord::read`]).
#[derive(Debug)]
pub struct RawPage {
    /// The records, or `None` when the answer is JSON but not a list.
    pub records: Option<Vec<Box<RawValue>>>,
    /// Whether the instance removes null fields (`filter.response.nulls`): the reader of the
    /// records does it, as [`Client::fetch_page`] does for its answers.
    pub filter_nulls: bool,
    /// As [`Page::next`].
    pub next: Option<PageRequest>,
    /// As [`Page::server_time`].
    pub server_time: Option<jiff::Timestamp>,
    /// As [`Page::read_by`].
    pub read_by: Option<jiff::Timestamp>,
}

/// A list page's answer, before its body is decoded.
struct Answer {
    bytes: Vec<u8>,
    /// The page number asked for, `None` for forward-only paging.
    number: Option<u32>,
    server_time: Option<jiff::Timestamp>,
    read_by: Option<jiff::Timestamp>,
}

impl Client {
    /// The page of `query` that `query.page` asks for; see [`crate::page_token`] for the
    /// paging style.
    pub async fn fetch_page(&self, query: &HubQuery) -> Result<Page, CwError> {
        let answer = self.fetch_answer(query).await?;
        let body = self.decode_json(answer.bytes).await?;
        let records = body.as_array();
        let next = next_page(query, answer.number, records.map(Vec::len), || {
            records?.last()?.get("id")?.as_i64()
        })?;
        Ok(Page {
            body,
            next,
            server_time: answer.server_time,
            read_by: answer.read_by,
        })
    }

    /// The page of `query` as [`fetch_page`](Client::fetch_page) reads it, with its records
    /// left as text. An answer that is not JSON is the same error.
    pub async fn fetch_raw_page(&self, query: &HubQuery) -> Result<RawPage, CwError> {
        let answer = self.fetch_answer(query).await?;
        let large = answer.bytes.len() >= hubhook_core::cpu::LARGE * 1024;
        let bytes = answer.bytes;
        // Splitting a page into its records still scans megabytes: off the poll's task.
        let records = hubhook_core::cpu::run(large, move || split_records(&bytes)).await?;
        let next = next_page(query, answer.number, records.as_ref().map(Vec::len), || {
            let last = records.as_ref()?.last()?;
            serde_json::from_str::<Value>(last.get())
                .ok()?
                .get("id")?
                .as_i64()
        })?;
        Ok(RawPage {
            records,
            filter_nulls: self.options.filter_nulls,
            next,
            server_time: answer.server_time,
            read_by: answer.read_by,
        })
    }

    /// Asks for the page and reads its body whole.
    async fn fetch_answer(&self, query: &HubQuery) -> Result<Answer, CwError> {
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
        let bytes = read_limited(response, MAX_PAGE_BYTES, Overflow::Fail).await?;
        // `server_time` is the `Date` header minus the wait for the headers; adding the whole
        // call's time gives the header plus the body's time.
        let read_by = server_time.and_then(|start| {
            let elapsed = jiff::SignedDuration::try_from(started.elapsed()).ok()?;
            start
                .checked_add(elapsed + jiff::SignedDuration::from_secs(1))
                .ok()
        });
        Ok(Answer {
            bytes,
            number,
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
        self.decode_json(bytes).await
    }

    async fn decode_json(&self, bytes: Vec<u8>) -> Result<Value, CwError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        // A page of a thousand records is megabytes of JSON: parsed off the poll's task (see
        // `hubhook_core::cpu`).
        let filter_nulls = self.options.filter_nulls;
        let large = bytes.len() >= hubhook_core::cpu::LARGE * 1024;
        hubhook_core::cpu::run(large, move || {
            let mut value: Value = serde_json::from_slice(&bytes).map_err(not_json)?;
            if filter_nulls {
                strip_nulls(&mut value);
            }
            Ok(value)
        })
        .await
    }
}

fn not_json(error: serde_json::Error) -> CwError {
    CwError::Decode(format!("the answer is not JSON: {error}"))
}

/// A list answer's records as text; `None` when the answer is JSON but not a list (an empty
/// body reads as null, as in [`Client::fetch_page`]).
fn split_records(bytes: &[u8]) -> Result<Option<Vec<Box<RawValue>>>, CwError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    match serde_json::from_slice::<Vec<Box<RawValue>>>(bytes) {
        Ok(records) => Ok(Some(records)),
        Err(error) if bytes.trim_ascii_start().starts_with(b"[") => Err(not_json(error)),
        // JSON that is not a list, or not JSON at all: reading the whole answer as one value
        // tells which (a raw read, which checks the text, UTF-8 included, without building it).
        Err(_) => serde_json::from_slice::<Box<RawValue>>(bytes)
            .map(|_| None)
            .map_err(not_json),
    }
}

/// The page after one that listed `count` records (`None`: no list): the next page number, or
/// for forward-only paging the records after the last one's id. Only a full page has a next.
fn next_page(
    query: &HubQuery,
    number: Option<u32>,
    count: Option<usize>,
    last_id: impl FnOnce() -> Option<i64>,
) -> Result<Option<PageRequest>, CwError> {
    let full = count.is_some_and(|count| count >= query.page_size as usize);
    if !full {
        return Ok(None);
    }
    if let Some(n) = number {
        return Ok(n.checked_add(1).map(PageRequest::Number));
    }
    let last = last_id().ok_or_else(|| {
        CwError::Decode(
            "the last record of a full page has no numeric id, so the list cannot be continued after it".to_string(),
        )
    })?;
    Ok(Some(PageRequest::After(last)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(body: &str) -> Result<Option<Vec<String>>, String> {
        split_records(body.as_bytes())
            .map(|records| records.map(|r| r.iter().map(|r| r.get().to_owned()).collect()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_page_splits_into_its_records_texts() {
        assert_eq!(
            split(r#" [ {"id": 1, "a": null} , {"id":2} ] "#),
            Ok(Some(vec![
                r#"{"id": 1, "a": null}"#.to_owned(),
                r#"{"id":2}"#.to_owned()
            ]))
        );
        assert_eq!(split("[]"), Ok(Some(Vec::new())));
        // JSON that is not a list, and no body at all: not a list, as `fetch_page` reads them.
        assert_eq!(split(r#"{"version": "v2019"}"#), Ok(None));
        assert_eq!(split(" \n"), Ok(None));
        // Not JSON: the error says so in serde_json's words, for the whole answer.
        let error = split(r#"[{"id": 1}, {"id": "#).unwrap_err();
        assert!(error.contains("the answer is not JSON"), "{error}");
        assert!(split(r#"[{"id": 1}] trailing"#).is_err());
        assert!(split(r#"{"id": 1} trailing"#).is_err());
        // Bytes that are not UTF-8 are not JSON, inside a list or not (a scan that skips
        // strings would have called the first a list and the second "not a list").
        for bytes in [&b"[{\"a\": \"\xff\"}]"[..], &b"{\"a\": \"\xff\"}"[..]] {
            let error = split_records(bytes).unwrap_err().to_string();
            assert!(error.contains("the answer is not JSON"), "{error}");
        }
        // Splitting does not recurse (however deep a record is nested, the stack stays
        // flat); reading such a record is what refuses it (`hubhook_core::record_text`).
        let deep = format!("[{}1{}]", "[".repeat(1_000_000), "]".repeat(1_000_000));
        assert_eq!(split(&deep).map(|r| r.map(|r| r.len())), Ok(Some(1)));
    }
}
