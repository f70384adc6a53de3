use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::header::CONTENT_TYPE,
};
use serde::de::DeserializeOwned;

use crate::ApiError;

/// The largest request body the API reads (axum's default, set explicitly in [`crate::router`]
/// so that this figure is the one in force): an instance body is a few KB.
pub const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// A JSON body whose rejections are Cloud Elements error bodies naming what is wrong (axum's
/// own `Json` answers in plain text). `OBJECT`: the body must be a JSON object, as every body
/// of the platform API is (serde would also read a struct from an array of its fields in
/// order, `["2026-01-01T00:00:00Z", …]`, and name the Rust type when refusing the rest); the
/// hub's bodies, passed on to ConnectWise, may be anything (a JSON Patch is an array).
pub struct JsonBody<T, const OBJECT: bool = true>(pub T);

impl<S: Send + Sync, T: DeserializeOwned, const OBJECT: bool> FromRequest<S>
    for JsonBody<T, OBJECT>
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if !content_type.is_empty() && !content_type.contains("json") {
            return Err(ApiError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "Content-Type `{content_type}` is not supported, expected application/json"
                ),
            ));
        }
        let bytes = read_body(req, state).await?;
        // Said plainly: read as JSON, it is "expected value at line 1 column 1".
        if bytes.starts_with(b"\xEF\xBB\xBF") {
            return Err(ApiError::bad_request(
                "the request body starts with a UTF-8 byte-order mark; send the JSON without it",
            ));
        }
        if bytes.is_empty() {
            return Err(ApiError::bad_request(
                "the request body is empty, expected a JSON object",
            ));
        }
        if let Some(place) = has_escaped_nul(&bytes).then(|| nul_place(&bytes)).flatten() {
            return Err(ApiError::bad_request(format!(
                "{place} contains the NUL character (\\u0000), which text may not contain"
            )));
        }
        if OBJECT && let Some(kind) = not_an_object(&bytes) {
            return Err(ApiError::bad_request(format!(
                "the request body is {kind}, expected a JSON object ({{…}})"
            )));
        }
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = shortened(e.path().to_string());
            let inner = without_rust_types(&e.into_inner().to_string());
            // `?` is the path of an error found before any field was entered (bad syntax).
            if path == "." || path == "?" || path.is_empty() {
                ApiError::bad_request(format!("the request body is not valid: {inner}"))
            } else {
                ApiError::bad_request(format!("`{path}` is not valid: {inner}"))
            }
        })?;
        // One JSON document and nothing after it: `{..}{..}` or `{..} junk` is refused rather
        // than read as its first part.
        de.end()
            .map_err(|e| ApiError::bad_request(format!("the request body is not valid: {e}")))?;
        if let Some(place) = duplicate_key(&bytes) {
            return Err(ApiError::bad_request(format!(
                "{place} is given twice in the request body; give each field once"
            )));
        }
        Ok(JsonBody(value))
    }
}

/// What a JSON text that is not an object is, by its first character (`None` for an object,
/// or for text that is no JSON value at all, which the parser then names).
fn not_an_object(json: &[u8]) -> Option<&'static str> {
    let first = json.iter().find(|b| !b.is_ascii_whitespace())?;
    match first {
        b'[' => Some("an array"),
        b'"' => Some("a string"),
        b'n' => Some("null"),
        b't' | b'f' => Some("a boolean"),
        b'-' | b'0'..=b'9' => Some("a number"),
        _ => None,
    }
}

/// serde's refusal with the Rust types it names said as JSON: "expected struct ElementRef"
/// (or "… with 2 elements", for an array read as one) and "expected a map" are "expected a
/// JSON object", and a "sequence" or "map" it got is an array or an object.
fn without_rust_types(message: &str) -> String {
    let message = message
        .replace("invalid type: sequence", "invalid type: array")
        .replace("invalid type: map", "invalid type: object")
        .replace("expected a sequence", "expected an array")
        .replace("expected a map", "expected a JSON object");
    let mut said = String::with_capacity(message.len());
    let mut rest = message.as_str();
    while let Some(at) = rest.find("struct ") {
        said.push_str(&rest[..at]);
        let after = &rest[at + "struct ".len()..];
        let name = after
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if name == 0 || !after.starts_with(|c: char| c.is_ascii_uppercase()) {
            said.push_str("struct ");
            rest = after;
            continue;
        }
        said.push_str("a JSON object");
        rest = &after[name..];
        if let Some(tail) = rest.strip_prefix(" with ")
            && let Some(end) = tail.find(" element")
            && tail[..end].chars().all(|c| c.is_ascii_digit())
        {
            let tail = &tail[end + " element".len()..];
            rest = tail.strip_prefix('s').unwrap_or(tail);
        }
    }
    said.push_str(rest);
    said
}

/// `text` as a refusal quotes what a caller sent: its first `max` characters, `…` if cut.
pub(crate) fn shown(text: &str, max: usize) -> String {
    let mut shown: String = text.chars().take(max).collect();
    if shown.len() < text.len() {
        shown.push('…');
    }
    shown
}

/// A body read as bytes (signed callbacks, the legacy sign-in form), with the same `413` as
/// every other body; axum's own `Bytes` extractor answers in plain text.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        read_body(req, state).await.map(RawBody)
    }
}

/// Time a client has to send a request's whole body (bodies are small, so this is generous).
pub const BODY_TIME: std::time::Duration = std::time::Duration::from_secs(30);

/// The whole body of a request, up to [`BODY_LIMIT`], within [`BODY_TIME`]: what every body
/// extractor of the API reads with (JSON bodies, console forms, signed callbacks). Refused:
/// - a declared length past the limit, with a `413` that says the limit, before a byte is
///   read (and so before hyper answers `Expect: 100-continue`); a longer body than declared
///   or a chunked one past the limit when it gets there;
/// - a body that has not all arrived within [`BODY_TIME`] from the first look at it, `408`.
///   A total, not a time between chunks: a byte every few seconds would otherwise hold the
///   request for as long as the client likes (tower-http's body timeout restarts at each
///   chunk).
///
/// Each chunk is copied into one buffer as it arrives and then dropped: a chunk is a slice of
/// the connection's read buffer, and keeping the chunks (as collecting them does) kept one
/// such buffer alive per chunk, about 4 KB of memory per byte for a body sent a byte per
/// packet.
pub(crate) async fn read_body<S: Send + Sync>(req: Request, _state: &S) -> Result<Bytes, ApiError> {
    read_within(req, BODY_TIME).await
}

async fn read_within(req: Request, time: std::time::Duration) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {BODY_LIMIT} bytes, the most this API reads"),
        )
    };
    // Every body is read as sent: a compressed one would be read as its compressed bytes
    // ("expected value at line 1 column 1" for JSON, an empty form).
    if let Some(encoding) = req
        .headers()
        .get(axum::http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().eq_ignore_ascii_case("identity"))
    {
        return Err(ApiError::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Encoding `{}` is not supported; send the body uncompressed",
                encoding.chars().take(40).collect::<String>().escape_debug()
            ),
        ));
    }
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > BODY_LIMIT as u64) {
        return Err(too_large());
    }
    let mut body = req.into_body();
    // Grown as bytes arrive, at most 64 KiB ahead of them: a declared length alone reserves
    // no more than that.
    let mut bytes = Vec::with_capacity(declared.map_or(0, |length| length as usize).min(64 * 1024));
    let read = async {
        use hyper::body::Body as _;
        while let Some(frame) =
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
        {
            let frame = frame.map_err(|e| {
                ApiError::bad_request(format!("could not read the request body: {e}"))
            })?;
            if let Ok(data) = frame.into_data() {
                if bytes.len() + data.len() > BODY_LIMIT {
                    return Err(too_large());
                }
                bytes.extend_from_slice(&data);
            }
        }
        Ok(())
    };
    tokio::time::timeout(time, read).await.map_err(|_| {
        ApiError::new(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {} s; send it whole, at once",
                time.as_secs()
            ),
        )
    })??;
    Ok(Bytes::from(bytes))
}

/// Whether JSON text holds an escaped NUL (`\u0000`; a raw NUL is not valid JSON). In valid
/// JSON a backslash only begins an escape inside a string, and `\\` is an escape of its own,
/// so stepping over each escape's next character finds exactly the escapes that are NULs.
fn has_escaped_nul(json: &[u8]) -> bool {
    let mut i = 0;
    while i < json.len() {
        if json[i] == b'\\' {
            if json[i + 1..].starts_with(b"u0000") {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

/// A place in a JSON body: the keys and indices from its root. Kept as a stack while a body
/// is walked and written out only for the message, so the walk costs the same whatever the
/// keys' lengths (a path string built per element was quadratic: a 1 MB key above a list of
/// 500,000 numbers held a core for 14 s).
#[derive(Default)]
struct Place<'a>(Vec<Step<'a>>);

enum Step<'a> {
    Key(std::borrow::Cow<'a, str>),
    Index(usize),
}

impl Place<'_> {
    /// `` `a.b[2]` ``, or "the request body" at the root; long keys cut short.
    fn named(&self) -> String {
        if self.0.is_empty() {
            return "the request body".to_owned();
        }
        let mut path = String::new();
        for step in &self.0 {
            match step {
                Step::Key(key) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(&shortened(key.escape_debug().to_string()));
                }
                Step::Index(i) => path.push_str(&format!("[{i}]")),
            }
        }
        format!("`{}`", shortened(path))
    }
}

/// At most [`SHOWN_PATH_CHARS`] of a path or key in a message, marked when cut: the caller
/// sent it, and a 1 MB key need not come back whole.
fn shortened(text: String) -> String {
    match text.char_indices().nth(SHOWN_PATH_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Characters of a path or key shown in an error message.
const SHOWN_PATH_CHARS: usize = 200;

/// Where the first NUL of a JSON body is, named for an error message: `` `a.b[2]` ``, a key
/// of one, or the body itself. `None` when the body is not JSON (its parse error says more).
fn nul_place(json: &[u8]) -> Option<String> {
    fn find<'a>(value: &'a serde_json::Value, place: &mut Place<'a>) -> Option<String> {
        match value {
            serde_json::Value::String(text) if text.contains('\0') => Some(place.named()),
            serde_json::Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
                place.0.push(Step::Index(i));
                let found = find(item, place);
                place.0.pop();
                found
            }),
            serde_json::Value::Object(fields) => fields.iter().find_map(|(key, item)| {
                if key.contains('\0') {
                    return Some(format!("a field name in {}", place.named()));
                }
                place.0.push(Step::Key(key.as_str().into()));
                let found = find(item, place);
                place.0.pop();
                found
            }),
            _ => None,
        }
    }
    find(&serde_json::from_slice(json).ok()?, &mut Place::default())
}

/// The first object key a JSON text gives twice, named by its path (`` `configuration.company` ``).
/// serde keeps the last of two keys of a map without a word (a struct's own fields are
/// refused), so `{"company": "a", "company": "b"}` inside `configuration` would silently be
/// `b`. One more pass over a body that has already been read whole, storing nothing.
fn duplicate_key(json: &[u8]) -> Option<String> {
    use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
    use std::collections::HashSet;

    /// Walks one value at the place on the stack; a duplicate stops the walk with an error
    /// holding its place.
    struct Walk<'s>(&'s mut Place<'static>);

    impl<'de> DeserializeSeed<'de> for Walk<'_> {
        type Value = ();
        fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
            deserializer.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Walk<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
            let mut i = 0;
            loop {
                self.0.0.push(Step::Index(i));
                let item = items.next_element_seed(Walk(&mut *self.0));
                self.0.0.pop();
                if item?.is_none() {
                    return Ok(());
                }
                i += 1;
            }
        }
        fn visit_map<A: MapAccess<'de>>(self, mut fields: A) -> Result<(), A::Error> {
            let mut seen = HashSet::new();
            while let Some(key) = fields.next_key::<String>()? {
                if seen.contains(&key) {
                    self.0.0.push(Step::Key(key.into()));
                    return Err(de::Error::custom(self.0.named()));
                }
                // The key is kept twice (the set and the place) only while its value is walked.
                self.0.0.push(Step::Key(key.clone().into()));
                let value = fields.next_value_seed(Walk(&mut *self.0));
                self.0.0.pop();
                value?;
                seen.insert(key);
            }
            Ok(())
        }
    }

    let mut de = serde_json::Deserializer::from_slice(json);
    match Walk(&mut Place::default()).deserialize(&mut de) {
        Ok(()) => None,
        // The body parsed before this walk, so its only error is a duplicate (whose message
        // serde_json ends with a position, after the path).
        Err(e) => {
            let message = e.to_string();
            let place = message
                .rsplit_once(" at line ")
                .map_or(&*message, |(p, _)| p);
            Some(place.to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_that_is_no_object_is_named_by_its_kind() {
        for (body, kind) in [
            (&b" [\"2026-01-01T00:00:00Z\"]"[..], Some("an array")),
            (b"\"x\"", Some("a string")),
            (b"null", Some("null")),
            (b"false", Some("a boolean")),
            (b"-0", Some("a number")),
            (b"\n {\"a\": [1]}", None),
            (b"<xml/>", None),
        ] {
            assert_eq!(
                not_an_object(body),
                kind,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn refusals_name_json_not_rust_types() {
        for (said, plain) in [
            (
                "invalid type: string \"x\", expected struct ElementRef at line 1 column 5",
                "invalid type: string \"x\", expected a JSON object at line 1 column 5",
            ),
            (
                "invalid length 0, expected struct ReplayIn with 2 elements",
                "invalid length 0, expected a JSON object",
            ),
            (
                "invalid length 0, expected struct ElementRef with 1 element",
                "invalid length 0, expected a JSON object",
            ),
            (
                "a struct of lower case stays",
                "a struct of lower case stays",
            ),
            ("ends with struct ", "ends with struct "),
            (
                "invalid type: sequence, expected a map at line 1 column 17",
                "invalid type: array, expected a JSON object at line 1 column 17",
            ),
            (
                "invalid type: map, expected a sequence",
                "invalid type: object, expected an array",
            ),
        ] {
            assert_eq!(without_rust_types(said), plain);
        }
    }

    /// A body of `chunks` copies of `chunk`, one every `every`.
    struct Trickle {
        chunk: Bytes,
        chunks: usize,
        every: std::time::Duration,
        next: std::pin::Pin<Box<tokio::time::Sleep>>,
    }

    impl hyper::body::Body for Trickle {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
            if self.chunks == 0 {
                return std::task::Poll::Ready(None);
            }
            std::task::ready!(self.next.as_mut().poll(cx));
            let every = self.every;
            self.next = Box::pin(tokio::time::sleep(every));
            self.chunks -= 1;
            std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(self.chunk.clone()))))
        }
    }

    fn request(length: Option<u64>, chunks: usize, every: std::time::Duration) -> Request {
        trickled(length, Bytes::from_static(b"x"), chunks, every)
    }

    fn trickled(
        length: Option<u64>,
        chunk: Bytes,
        chunks: usize,
        every: std::time::Duration,
    ) -> Request {
        let body = Trickle {
            chunk,
            chunks,
            every,
            next: Box::pin(tokio::time::sleep(every)),
        };
        let mut request = Request::new(axum::body::Body::new(body));
        if let Some(length) = length {
            request
                .headers_mut()
                .insert(axum::http::header::CONTENT_LENGTH, length.into());
        }
        request
    }

    /// The body's time is a total: a byte every 20 ms, each well within any per-chunk timeout,
    /// is refused (408) once the whole has taken longer than the time given. Fails if the
    /// time restarts at each chunk.
    #[tokio::test]
    async fn a_body_trickled_past_its_time_is_refused() {
        let ms = std::time::Duration::from_millis;
        let whole = read_within(request(None, 5, ms(20)), ms(500)).await;
        assert_eq!(whole.unwrap(), Bytes::from_static(b"xxxxx"));
        let trickled = read_within(request(None, 50, ms(20)), ms(300)).await;
        let refused = trickled.unwrap_err();
        assert_eq!(refused.status, axum::http::StatusCode::REQUEST_TIMEOUT);
    }

    /// A declared length past the limit is refused before a byte is read: the body here would
    /// take an hour. Past the limit without a declared length, when it gets there.
    #[tokio::test]
    async fn a_body_past_the_limit_is_refused_at_once_when_declared() {
        let hour = std::time::Duration::from_secs(3600);
        let declared = request(Some(BODY_LIMIT as u64 + 1), 1, hour);
        let refused = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            read_within(declared, hour),
        )
        .await
        .expect("refused at once")
        .unwrap_err();
        assert_eq!(refused.status, axum::http::StatusCode::PAYLOAD_TOO_LARGE);
        assert!(
            refused.message.contains(&BODY_LIMIT.to_string()),
            "{}",
            refused.message
        );
        let chunk = Bytes::from(vec![b' '; 64 * 1024]);
        let chunks = BODY_LIMIT / chunk.len() + 1;
        let undeclared = trickled(None, chunk, chunks, std::time::Duration::ZERO);
        let refused = read_within(undeclared, hour).await.unwrap_err();
        assert_eq!(refused.status, axum::http::StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn escaped_nuls_are_found_and_escaped_backslashes_are_not_nuls() {
        assert!(has_escaped_nul(br#"{"name":"a\u0000b"}"#));
        assert!(has_escaped_nul(br#"{"a\u0000":1}"#));
        assert!(has_escaped_nul(br#"["\\\u0000"]"#));
        // A backslash, then the text `u0000`: no NUL.
        assert!(!has_escaped_nul(br#"{"name":"a\\u0000b"}"#));
        assert!(!has_escaped_nul(br#"{"name":"\u0001"}"#));
        // A lone backslash at the end (not JSON) is stepped over, not read past.
        assert!(!has_escaped_nul(b"\\"));
    }

    #[test]
    fn the_first_nul_is_named_by_its_path() {
        let place = |json: &str| nul_place(json.as_bytes());
        assert_eq!(
            place(r#"{"name":"ok","configuration":{"a.b":["x","y\u0000"]}}"#).as_deref(),
            Some("`configuration.a.b[1]`")
        );
        assert_eq!(
            place(r#"{"tags":{"k\u0000":1}}"#).as_deref(),
            Some("a field name in `tags`")
        );
        assert_eq!(place(r#""\u0000""#).as_deref(), Some("the request body"));
        assert_eq!(place(r#"{"name":"a\u0000b"#), None);
    }

    #[test]
    fn a_key_given_twice_is_named_by_its_path() {
        let twice = |json: &str| duplicate_key(json.as_bytes());
        assert_eq!(
            twice(r#"{"name":"a","configuration":{"company":"x","tags":[{"k":1,"k":2}],"company":"y"}}"#)
                .as_deref(),
            Some("`configuration.tags[0].k`")
        );
        assert_eq!(
            twice(r#"{"configuration":{"company":"x","company":"y"}}"#).as_deref(),
            Some("`configuration.company`")
        );
        assert_eq!(twice(r#"{"a":{"b":1},"c":{"b":1},"d":[1,1]}"#), None);
        // The same key text written with an escape is the same key.
        assert_eq!(twice(r#"{"a":1,"\u0061":2}"#).as_deref(), Some("`a`"));
    }

    #[test]
    fn a_long_key_above_a_long_list_is_walked_once_and_shown_short() {
        // A 1 MB key above 200,000 numbers: a path string per element copied the key each
        // time (200 GB of copying); the stack of steps copies nothing.
        let key = "k".repeat(1 << 20);
        let list = "1,".repeat(200_000);
        let nul = format!(r#"{{"from":{{"{key}":[{list}"\u0000"]}}}}"#);
        let place = nul_place(nul.as_bytes()).expect("found");
        assert!(
            place.starts_with("`from.kkk") && place.ends_with("…`"),
            "{place}"
        );
        assert!(place.chars().count() < 210, "{} characters", place.len());
        let twice = format!(r#"{{"from":{{"{key}":[{list}{{"a":1,"a":2}}]}}}}"#);
        let place = duplicate_key(twice.as_bytes()).expect("found");
        assert!(
            place.starts_with("`from.kkk") && place.ends_with("…`"),
            "{place}"
        );
        // Short paths are shown whole, indices included.
        assert_eq!(
            duplicate_key(br#"{"a":[0,{"b":[1,{"c":1,"c":2}]}]}"#).as_deref(),
            Some("`a[1].b[1].c`")
        );
    }
}
