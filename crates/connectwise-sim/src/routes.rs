//! HTTP routing. One fallback handler parses the path itself because
//! ConnectWise tolerates what a router would not: any `vYYYY_N` codebase,
//! double slashes (`/v2025_1//apis/3.0/...`), trailing slashes and
//! case-insensitive resource names. Every response passes through here so
//! faults, common headers and stats apply uniformly.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use crate::Simulator;
use crate::auth::{self, Member};
use crate::error::SimError;
use crate::faults::Outcome;
use crate::paging;
use crate::query::{self, ListQuery};
use crate::records::render::Rendered;
use crate::records::{self, ALL, ResourceDef};
use crate::row::Row;

/// The API version this simulator reports (`api-current-version`).
pub const API_VERSION: &str = "2025.1";
const BODY_LIMIT: usize = 16 * 1024 * 1024;

pub fn json_response(status: u16, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

/// A JSON body already serialized (rendered records stream into bytes).
fn bytes_response(status: u16, body: Result<Vec<u8>, serde_json::Error>) -> Response {
    match body {
        Ok(bytes) => {
            let mut resp = Response::new(Body::from(bytes));
            *resp.status_mut() =
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            resp.headers_mut().insert(
                "content-type",
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            resp
        }
        Err(e) => {
            tracing::error!(error = %e, "connectwise-sim: cannot serialize a response");
            json_response(
                500,
                &json!({"code": "ConnectWiseApi", "message": "An error has occurred."}),
            )
        }
    }
}

/// A written record as GET shows it, fields in model order.
fn record_response(
    status: u16,
    def: &'static ResourceDef,
    record: Option<&Value>,
    base: &str,
) -> Response {
    match record {
        Some(r) => bytes_response(status, serde_json::to_vec(&Rendered::new(def, r, base))),
        None => json_response(status, &Value::Null),
    }
}

pub fn error_response(e: &SimError) -> Response {
    json_response(e.status(), &e.body())
}

/// A body that fails on first poll: hyper then closes the connection
/// without completing the response, which clients see as a dropped
/// connection.
struct Broken;

impl HttpBody for Broken {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "simulated drop",
        ))))
    }
}

/// Splits a path into non-empty segments (collapsing `//`).
fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect()
}

/// `v4_6_release`, or a cloud codebase such as `v2025_1`.
pub fn is_codebase(s: &str) -> bool {
    if s.eq_ignore_ascii_case("v4_6_release") {
        return true;
    }
    let Some(rest) = s.strip_prefix('v').or_else(|| s.strip_prefix('V')) else {
        return false;
    };
    let Some((year, n)) = rest.split_once('_') else {
        return false;
    };
    year.len() == 4
        && year.bytes().all(|b| b.is_ascii_digit())
        && !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit())
}

/// What an `/apis/3.0/...` path addresses.
#[derive(Debug, Clone)]
pub enum Target {
    SystemInfo,
    Collection {
        def: &'static ResourceDef,
        parent: Option<i64>,
    },
    Count {
        def: &'static ResourceDef,
        parent: Option<i64>,
    },
    Item {
        def: &'static ResourceDef,
        parent: Option<i64>,
        id: i64,
    },
    Search {
        def: &'static ResourceDef,
    },
}

impl Target {
    /// Route template for stats, e.g. `/company/contacts/{id}`.
    pub fn template(&self) -> String {
        match self {
            Target::SystemInfo => "/system/info".into(),
            Target::Collection { def, .. } => format!("/{}", collection_path(def, None)),
            Target::Count { def, .. } => format!("/{}/count", collection_path(def, None)),
            Target::Item { def, .. } => format!("/{}/{{id}}", collection_path(def, None)),
            Target::Search { def } => format!("/{}/search", def.path),
        }
    }
}

/// `service/tickets/{parent}/notes` for children, `company/contacts` otherwise.
pub fn collection_path(def: &ResourceDef, parent: Option<i64>) -> String {
    match &def.parent {
        Some(spec) => {
            let p = parent
                .map(|p| p.to_string())
                .unwrap_or_else(|| "{parentId}".into());
            format!("{}/{p}/{}", spec.path, spec.segment)
        }
        None => def.path.to_string(),
    }
}

fn parse_id(s: &str) -> Option<i64> {
    s.parse::<i64>().ok()
}

/// Resolves the segments after `/apis/3.0/`.
pub fn resolve(segs: &[String]) -> Result<Target, SimError> {
    let lower: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
    let l: Vec<&str> = lower.iter().map(String::as_str).collect();
    if l.as_slice() == ["system", "info"] {
        return Ok(Target::SystemInfo);
    }
    if l.len() < 2 {
        return Err(SimError::NoEndpoint);
    }
    let path = format!("{}/{}", l[0], l[1]);
    let def = ALL
        .iter()
        .copied()
        .find(|d| d.parent.is_none() && d.path.eq_ignore_ascii_case(&path))
        .ok_or(SimError::NoEndpoint)?;
    match &l[2..] {
        [] => Ok(Target::Collection { def, parent: None }),
        ["count"] => Ok(Target::Count { def, parent: None }),
        ["search"] if def.path == "service/tickets" => Ok(Target::Search { def }),
        [id] => parse_id(id)
            .map(|id| Target::Item {
                def,
                parent: None,
                id,
            })
            .ok_or(SimError::NoEndpoint),
        [pid, child, rest @ ..] => {
            let parent = parse_id(pid).ok_or(SimError::NoEndpoint)?;
            let child = ALL
                .iter()
                .copied()
                .find(|d| {
                    d.parent.as_ref().is_some_and(|p| {
                        p.path == def.path && p.segment.eq_ignore_ascii_case(child)
                    })
                })
                .ok_or(SimError::NoEndpoint)?;
            match rest {
                [] => Ok(Target::Collection {
                    def: child,
                    parent: Some(parent),
                }),
                ["count"] => Ok(Target::Count {
                    def: child,
                    parent: Some(parent),
                }),
                [id] => parse_id(id)
                    .map(|id| Target::Item {
                        def: child,
                        parent: Some(parent),
                        id,
                    })
                    .ok_or(SimError::NoEndpoint),
                _ => Err(SimError::NoEndpoint),
            }
        }
    }
}

/// Everything a handler needs to know about the request.
pub struct Req {
    pub method: Method,
    pub headers: HeaderMap,
    pub params: Vec<(String, String)>,
    pub body: Bytes,
    /// `http://host/{codebase}/apis/3.0`
    pub base: String,
}

/// Whether a Host header value is a plain `host[:port]` that is safe to put
/// in hrefs and `Link` headers (no `>`, `;`, `,`, spaces or quotes).
fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

/// The host for hrefs: the request's Host header when it is well formed,
/// else the listening address (port kept).
fn host(headers: &HeaderMap, listen: Option<std::net::SocketAddr>) -> String {
    match headers.get("host").and_then(|h| h.to_str().ok()) {
        Some(h) if valid_host(h) => h.to_string(),
        _ => match listen {
            Some(addr) if addr.ip().is_unspecified() => format!("127.0.0.1:{}", addr.port()),
            Some(addr) => addr.to_string(),
            None => "127.0.0.1".to_string(),
        },
    }
}

pub async fn handle(State(sim): State<Simulator>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let segs = segments(parts.uri.path());
    if segs.first().map(String::as_str) == Some("__sim") {
        let body = axum::body::to_bytes(body, BODY_LIMIT)
            .await
            .unwrap_or_default();
        return crate::control::handle(&sim, &parts.method, &segs[1..], &body);
    }
    let seq = sim
        .inner
        .request_seq
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (template, resp) = route(&sim, parts, segs, body).await;
    let mut resp = resp;
    let status = resp.status().as_u16();
    sim.inner.stats.record(&template, status);
    let h = resp.headers_mut();
    h.insert("api-current-version", HeaderValue::from_static(API_VERSION));
    h.insert("cache-control", HeaderValue::from_static("no-cache"));
    h.insert("pragma", HeaderValue::from_static("no-cache"));
    h.insert("x-server-name", HeaderValue::from_static("cwsim"));
    h.insert("x-frame-options", HeaderValue::from_static("SAMEORIGIN"));
    // The Date header comes from the simulated clock, like ConnectWise's comes from the clock
    // that stamps `lastUpdated`; clients (hubhook's poller) use it to relate the two.
    if let Some(date) = jiff::Timestamp::from_second(sim.inner.clock.now())
        .ok()
        .and_then(|t| {
            HeaderValue::from_str(&t.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string()).ok()
        })
    {
        h.insert("date", date);
    }
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{:08x}-sim0-4000-8000-{seq:012x}",
        sim.inner.config.seed as u32
    )) {
        h.insert("x-cw-request-id", v);
    }
    resp
}

/// Stats key for a method: made-up methods share one bucket so the map
/// cannot grow without bound.
fn stats_method(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "OTHER",
    }
}

async fn route(
    sim: &Simulator,
    parts: axum::http::request::Parts,
    segs: Vec<String>,
    body: Body,
) -> (String, Response) {
    let method = parts.method.clone();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    // Decide the route template first so stats group faulted requests too.
    let (template, target) = match s.as_slice() {
        [login, companyinfo, _company]
            if login.eq_ignore_ascii_case("login")
                && companyinfo.eq_ignore_ascii_case("companyinfo") =>
        {
            ("/login/companyinfo/{company}".to_string(), None)
        }
        [codebase, system, key, index]
            if is_codebase(codebase)
                && system.eq_ignore_ascii_case("system")
                && key.eq_ignore_ascii_case("callbackkey")
                && index.eq_ignore_ascii_case("index.rails") =>
        {
            ("/system/callbackkey/index.rails".to_string(), None)
        }
        [codebase, apis, version, rest @ ..]
            if is_codebase(codebase) && apis.eq_ignore_ascii_case("apis") && *version == "3.0" =>
        {
            let rest: Vec<String> = rest.iter().map(|x| x.to_string()).collect();
            match resolve(&rest) {
                Ok(t) => (t.template(), Some(Ok(((*codebase).to_string(), t)))),
                Err(e) => ("(unknown endpoint)".to_string(), Some(Err(e))),
            }
        }
        _ => (
            "(unknown endpoint)".to_string(),
            Some(Err(SimError::NoEndpoint)),
        ),
    };
    let template = format!("{} {template}", stats_method(&method));
    let decision = sim.inner.faults.decide(parts.uri.path());
    if let Some(latency) = decision.latency {
        tokio::time::sleep(latency).await;
    }
    match decision.outcome {
        Outcome::Serve => {}
        Outcome::Drop => {
            let mut resp = Response::new(Body::new(Broken));
            *resp.status_mut() = StatusCode::OK;
            return (template, resp);
        }
        Outcome::Respond {
            status,
            retry_after,
            body,
        } => {
            let mut resp = json_response(status, &body);
            if let Some(secs) = retry_after
                && let Ok(v) = HeaderValue::from_str(&secs.to_string())
            {
                resp.headers_mut().insert("retry-after", v);
            }
            return (template, resp);
        }
    }
    let body = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            return (
                template,
                error_response(&SimError::bad_request(
                    "The request body is too large or unreadable.",
                )),
            );
        }
    };
    let params: Vec<(String, String)> =
        url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let resp = match target {
        None if template.ends_with("/login/companyinfo/{company}") => {
            company_info(sim, &method, s.get(2).copied().unwrap_or(""))
        }
        None => sim.inner.callbacks.key_response(&method, &params),
        Some(Err(e)) => Err(e),
        Some(Ok((codebase, target))) => {
            let listen = *sim
                .inner
                .listen_addr
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let base = format!(
                "http://{}/{codebase}/apis/3.0",
                host(&parts.headers, listen)
            );
            let req = Req {
                method,
                headers: parts.headers,
                params,
                body,
                base,
            };
            api(sim, &req, target)
        }
    };
    (template, resp.unwrap_or_else(|e| error_response(&e)))
}

/// `GET /login/companyinfo/{company}`: unauthenticated codebase discovery;
/// an unknown company gets a 200 with body `null`, as DJCW observed.
fn company_info(sim: &Simulator, method: &Method, company: &str) -> Result<Response, SimError> {
    if method != Method::GET {
        return Err(SimError::MethodNotAllowed {
            method: method.to_string(),
        });
    }
    let c = &sim.inner.config;
    if !company.eq_ignore_ascii_case(&c.company) {
        return Ok(json_response(200, &Value::Null));
    }
    Ok(bytes_response(
        200,
        serde_json::to_vec(&CompanyInfo {
            company_name: format!("{} (simulated)", c.company),
            codebase: "v4_6_release/",
            version_code: "v2025.1",
            version_number: "v4.6.2025.1",
            company_id: &c.company,
            is_cloud: "False",
            site_url: None,
            allow_access: true,
        }),
    ))
}

fn read_json(req: &Req, entity: &'static str) -> Result<Value, SimError> {
    if req.body.is_empty() {
        return Err(SimError::invalid(
            entity,
            "InvalidObject",
            "",
            format!("The {entity} object is required."),
        ));
    }
    serde_json::from_slice(&req.body).map_err(|e| {
        SimError::invalid(
            entity,
            "InvalidObject",
            "",
            format!("The request body is not valid JSON: {e}."),
        )
    })
}

/// The `conditions` of a `POST .../search` body: a string, or absent/null
/// for every record. Anything else is a 400 rather than an unfiltered list.
fn search_conditions(body: &Value) -> Result<&str, SimError> {
    let Some(obj) = body.as_object() else {
        return Err(SimError::bad_request(
            "The search body must be an object such as {\"conditions\": \"id > 1\"}.",
        ));
    };
    match obj
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("conditions"))
        .map(|(_, v)| v)
    {
        None | Some(Value::Null) => Ok(""),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(SimError::bad_request("conditions must be a string.")),
    }
}

fn not_allowed(req: &Req) -> SimError {
    SimError::MethodNotAllowed {
        method: req.method.to_string(),
    }
}

fn forward_only(headers: &HeaderMap) -> bool {
    headers
        .get("pagination-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("forward-only"))
}

/// The API version a client asks for in `Accept: application/vnd.connectwise.com+json; version=2019.1`
/// (DG "Versioning"). `YYYY.N` and the legacy `3.0.0` are accepted; the
/// simulator serves one model for all of them. Anything else is a 400
/// (chosen: the developer guide does not say what ConnectWise answers).
pub fn accept_version(headers: &HeaderMap) -> Result<Option<String>, SimError> {
    let Some(accept) = headers.get("accept").and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    for part in accept.split([',', ';']) {
        let Some((name, value)) = part.split_once('=') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("version") {
            continue;
        }
        let v = value.trim().trim_matches('"');
        let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let valid = match v.split('.').collect::<Vec<_>>().as_slice() {
            [year, n] => year.len() == 4 && numeric(year) && numeric(n),
            [a, b, c] => numeric(a) && numeric(b) && numeric(c),
            _ => false,
        };
        return if valid {
            Ok(Some(v.to_string()))
        } else {
            Err(SimError::bad_request(format!(
                "The requested API version '{v}' is not valid."
            )))
        };
    }
    Ok(None)
}

fn api(sim: &Simulator, req: &Req, target: Target) -> Result<Response, SimError> {
    // Authenticate first: an unauthenticated request is a 401 whatever it asks for.
    let member = auth::authenticate(&req.headers, &sim.inner.config)?;
    accept_version(&req.headers)?;
    match target {
        Target::SystemInfo => {
            if req.method != Method::GET {
                return Err(not_allowed(req));
            }
            Ok(bytes_response(
                200,
                serde_json::to_vec(&SystemInfo::current()),
            ))
        }
        Target::Collection { def, parent } => match req.method {
            Method::GET => list(sim, req, def, parent, None),
            Method::POST if def.writable => {
                check_write(&member)?;
                let body = read_json(req, def.entity)?;
                let rec = sim.write(
                    crate::WriteOp::Create,
                    def,
                    parent,
                    None,
                    &body,
                    &member,
                    &req.base,
                )?;
                Ok(record_response(201, def, rec.as_ref(), &req.base))
            }
            _ => Err(not_allowed(req)),
        },
        Target::Count { def, parent } => {
            if req.method != Method::GET {
                return Err(not_allowed(req));
            }
            let q = ListQuery::parse(def, &req.params, false, None)?;
            let store = sim.read_store();
            check_parent(&store, def, parent)?;
            let n = query::count_cached(&store, def, parent, &q, &sim.inner.query_cache);
            Ok(json_response(200, &json!({"count": n})))
        }
        Target::Search { def } => {
            if req.method != Method::POST {
                return Err(not_allowed(req));
            }
            let body = read_json(req, def.entity)?;
            let conditions = search_conditions(&body)?;
            list(sim, req, def, None, Some(conditions))
        }
        Target::Item { def, parent, id } => match req.method {
            Method::GET => {
                let store = sim.read_store();
                let row = store.row(def, parent, id)?;
                let fields = query_fields(&req.params);
                let mut body = Vec::new();
                write_record(&mut body, def, row, &req.base, fields.as_ref());
                Ok(bytes_response(200, Ok(body)))
            }
            Method::PUT if def.writable => {
                check_write(&member)?;
                let body = read_json(req, def.entity)?;
                let rec = sim.write(
                    crate::WriteOp::Replace,
                    def,
                    parent,
                    Some(id),
                    &body,
                    &member,
                    &req.base,
                )?;
                Ok(record_response(200, def, rec.as_ref(), &req.base))
            }
            Method::PATCH if def.writable => {
                check_write(&member)?;
                let body = read_json(req, def.entity)?;
                let rec = sim.write(
                    crate::WriteOp::Patch,
                    def,
                    parent,
                    Some(id),
                    &body,
                    &member,
                    &req.base,
                )?;
                Ok(record_response(200, def, rec.as_ref(), &req.base))
            }
            Method::DELETE if def.writable => {
                check_write(&member)?;
                sim.write(
                    crate::WriteOp::Delete,
                    def,
                    parent,
                    Some(id),
                    &Value::Null,
                    &member,
                    &req.base,
                )?;
                let mut resp = Response::new(Body::empty());
                *resp.status_mut() = StatusCode::NO_CONTENT;
                Ok(resp)
            }
            _ => Err(not_allowed(req)),
        },
    }
}

fn forbidden() -> SimError {
    SimError::Forbidden {
        message: "You do not have sufficient permissions to perform this action.".into(),
    }
}

fn check_write(member: &Member) -> Result<(), SimError> {
    if member.read_only {
        Err(forbidden())
    } else {
        Ok(())
    }
}

fn check_parent(
    store: &crate::store::Store,
    def: &'static ResourceDef,
    parent: Option<i64>,
) -> Result<(), SimError> {
    if let (Some(spec), Some(pid)) = (&def.parent, parent)
        && let Some(pdef) = records::def(spec.path)
    {
        store.row(pdef, None, pid)?;
    }
    Ok(())
}

/// Appends a stored record as GET shows it: its stored text with the base spliced in, or,
/// with `fields=`, the parsed record streamed through the projection.
fn write_record(
    out: &mut Vec<u8>,
    def: &'static ResourceDef,
    row: &Row,
    base: &str,
    fields: Option<&query::Projection>,
) {
    match fields.filter(|p| !p.is_empty()) {
        None => row.write_rendered(def, base, out),
        Some(p) => {
            let rec = row.value(def);
            // Writing a Value into a Vec cannot fail.
            let _ = serde_json::to_writer(
                &mut *out,
                &Rendered::new(def, &rec, base).with_fields(Some(p)),
            );
        }
    }
}

fn query_fields(params: &[(String, String)]) -> Option<query::Projection> {
    params
        .iter()
        .rev()
        .find(|(k, _)| k.eq_ignore_ascii_case("fields"))
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.trim().is_empty())
        .map(query::Projection::parse)
}

fn list(
    sim: &Simulator,
    req: &Req,
    def: &'static ResourceDef,
    parent: Option<i64>,
    search: Option<&str>,
) -> Result<Response, SimError> {
    let fwd = forward_only(&req.headers);
    let q = ListQuery::parse(def, &req.params, fwd, search)?;
    let path = collection_path(def, parent);
    let (body, link) = {
        let store = sim.read_store();
        check_parent(&store, def, parent)?;
        let sel = query::select_cached(&store, def, parent, &q, &sim.inner.query_cache);
        // A page is its records' stored texts joined (see `crate::row`).
        let mut body = Vec::with_capacity(sel.rows.len() * 4096 + 2);
        body.push(b'[');
        for (i, (_, row)) in sel.rows.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            write_record(&mut body, def, row, &req.base, q.fields.as_ref());
        }
        body.push(b']');
        let body = Ok(body);
        let link = if fwd {
            let last = sel.rows.last().map(|(id, _)| *id);
            paging::forward_only(&req.base, &path, &q, last)
        } else {
            paging::navigable(&req.base, &path, &q, sel.total)
        };
        (body, link)
    };
    let mut resp = bytes_response(200, body);
    if let Ok(v) = HeaderValue::from_str(&link) {
        resp.headers_mut().insert("link", v);
    }
    Ok(resp)
}

/// `GET /system/info` (SPEC `model_info.go`), fields in the model's order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemInfo {
    pub version: &'static str,
    pub is_cloud: bool,
    pub server_time_zone: &'static str,
    pub license_bits: Vec<LicenseBit>,
    pub cloud_region: &'static str,
    pub max_work_flow_records_allowed: u32,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseBit {
    pub name: &'static str,
    pub active_flag: bool,
}

impl SystemInfo {
    pub fn current() -> SystemInfo {
        SystemInfo {
            version: "v2025.1.10421",
            is_cloud: false,
            server_time_zone: "Eastern Standard Time",
            license_bits: ["CRM", "Service", "Project", "Sales", "TimeExpense"]
                .into_iter()
                .map(|name| LicenseBit {
                    name,
                    active_flag: true,
                })
                .collect(),
            cloud_region: "NA",
            max_work_flow_records_allowed: 10000,
        }
    }
}

/// `GET /login/companyinfo/{company}`, fields in the order ConnectWise sends them.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct CompanyInfo<'a> {
    company_name: String,
    codebase: &'static str,
    version_code: &'static str,
    version_number: &'static str,
    #[serde(rename = "CompanyID")]
    company_id: &'a str,
    is_cloud: &'static str,
    site_url: Option<&'static str>,
    allow_access: bool,
}

impl IntoResponse for SimError {
    fn into_response(self) -> Response {
        error_response(&self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(accept: &str, expected: Result<Option<&str>, ()>) {
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(accept) {
            h.insert("accept", v);
        }
        let got = accept_version(&h).map_err(|_| ());
        assert_eq!(got, expected.map(|o| o.map(String::from)), "{accept}");
    }

    #[test]
    fn accept_versions() {
        check(
            "application/vnd.connectwise.com+json; version=2019.1",
            Ok(Some("2019.1")),
        );
        check(
            "application/vnd.connectwise.com+json; version=2021.1, application/json",
            Ok(Some("2021.1")),
        );
        check(
            "application/vnd.connectwise.com+json; version=3.0.0",
            Ok(Some("3.0.0")),
        );
        check("application/vnd.connectwise.com+json", Ok(None));
        check("*/*", Ok(None));
        check("application/vnd.connectwise.com+json; version=abc", Err(()));
        check(
            "application/vnd.connectwise.com+json; version=19.1",
            Err(()),
        );
    }

    #[test]
    fn host_headers_are_validated() {
        let listen: std::net::SocketAddr = "0.0.0.0:4567".parse().expect("addr");
        let with = |h: &str| {
            let mut m = HeaderMap::new();
            m.insert("host", HeaderValue::from_str(h).expect("header"));
            host(&m, Some(listen))
        };
        assert_eq!(with("example.com:8080"), "example.com:8080");
        assert_eq!(with("[::1]:80"), "[::1]:80");
        assert_eq!(with("evil>; rel=\"first\", <x"), "127.0.0.1:4567");
        assert_eq!(with("a b"), "127.0.0.1:4567");
        assert_eq!(with(""), "127.0.0.1:4567");
        assert_eq!(host(&HeaderMap::new(), Some(listen)), "127.0.0.1:4567");
        let local: std::net::SocketAddr = "127.0.0.2:99".parse().expect("addr");
        assert_eq!(with_listen(local), "127.0.0.2:99");
        fn with_listen(l: std::net::SocketAddr) -> String {
            let mut m = HeaderMap::new();
            m.insert("host", HeaderValue::from_static("x/y"));
            host(&m, Some(l))
        }
    }

    #[test]
    fn unknown_methods_share_a_stats_bucket() {
        assert_eq!(stats_method(&Method::GET), "GET");
        assert_eq!(stats_method(&Method::PATCH), "PATCH");
        let made_up = Method::from_bytes(b"FROBNICATE").expect("method");
        assert_eq!(stats_method(&made_up), "OTHER");
    }

    #[test]
    fn codebases() {
        for (s, ok) in [
            ("v4_6_release", true),
            ("v2025_1", true),
            ("V2019_3", true),
            ("v4_6", false),
            ("v2025", false),
            ("x2025_1", false),
            ("v20a5_1", false),
        ] {
            assert_eq!(is_codebase(s), ok, "{s}");
        }
    }
}
