//! A record's canonical text read straight from the text ConnectWise sent, without building a
//! `serde_json::Value` first.
//!
//! Every record a poll reads is hashed and stored as its canonical text
//! ([`canonical_json`](crate::classify::canonical_json):
//! nulls removed when the instance filters them, object keys sorted, no whitespace), and only
//! the few that changed are needed as values. Building a `Value` for each of them allocates a
//! `String` per key and per string and a B-tree per object, and took about two thirds of the
//! CPU of that step (docs/benchmarks.md, "Fifteenth round"). Here a record is parsed by
//! serde_json's own parser into a tree that borrows its strings from the input and keeps an
//! object's members in one vector; the members are sorted and written out again.
//!
//! # Why the text is the same as before
//!
//! The content hash is taken over this text and compared with the hashes stored by earlier
//! versions, so it must be byte for byte what
//! [`canonical_json`](crate::classify::canonical_json) writes for the record's `Value` after
//! [`strip_nulls`]. Each step does what `Value` does:
//!
//! - Parsing is serde_json's, with the same visitor calls: numbers arrive as the same `u64`,
//!   `i64` or `f64` and are kept as a [`serde_json::Number`], written by serde_json; strings
//!   arrive decoded.
//! - A key given twice keeps its last value, in the place of its key (a map's `insert`).
//! - Members are sorted by key bytewise, as a `BTreeMap<String, _>` iterates.
//! - Nulls are removed after duplicates are resolved, at any depth, only as object members
//!   (null array elements stay), as `strip_nulls` does on the parsed value.
//! - A string is written as serde_json writes it: it escapes only `"`, `\` and control
//!   characters, so a string holding none of them is copied as it is, and any other goes
//!   through serde_json's writer.
//! - Nesting deeper than serde_json's limit (128) is refused, as it is for a `Value`.
//!
//! Changes use the same parser: `changedFields` reads the stored version's and the new one's
//! objects member by member as texts (`members`) and parses with `parse` only the values
//! whose texts differ ([`crate::field_changes`]), and an event's notification carries the
//! canonical text as it is (`crate::event::RecordJson`).
//!
//! The equivalence is checked by a property test over generated JSON (escapes, non-ASCII,
//! duplicate keys, nulls at every depth, numbers of every form) and by a fuzz target.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Number, Value};

use crate::field_path::FieldPath;

/// A record read from its text: its canonical text, and the values at `paths`, in order
/// (`None` where a path finds nothing). Lookups see the record as it is stored: with nulls
/// removed when `strip_nulls`, so a null field is not found.
pub fn read_record(
    raw: &str,
    strip_nulls: bool,
    paths: &[&FieldPath],
) -> Result<(String, Vec<Option<Value>>), serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(raw);
    let tree = Seed { strip_nulls }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    let found = paths
        .iter()
        .map(|path| {
            path.segments()
                .try_fold(&tree, Node::get)
                .map(Node::to_value)
        })
        .collect();
    let mut text = Vec::with_capacity(raw.len());
    tree.write(&mut text)?;
    // Written from `&str` pieces and serde_json's own output: always UTF-8.
    let text = String::from_utf8(text).map_err(serde::ser::Error::custom)?;
    Ok((text, found))
}

/// Removes every object member whose value is null, at any depth, from a parsed value: what
/// [`read_record`] does with `strip_nulls` while it reads. Nulls inside arrays are elements,
/// not fields, and are kept.
pub fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            fields.retain(|_, v| !v.is_null());
            fields.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// `text` parsed as it is (nulls kept), for a walk over it ([`crate::field_changes`]).
pub(crate) fn parse(text: &str) -> Result<Node<'_>, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let tree = Seed { strip_nulls: false }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(tree)
}

/// A parsed JSON value whose strings borrow from the input when they hold no escape. Two
/// nodes are equal when the values they were parsed from are (an object's members are
/// sorted and unique, so member lists compare as maps do).
#[derive(Debug, PartialEq)]
pub(crate) enum Node<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Node<'a>>),
    /// Sorted by key, each key once, nulls removed when asked.
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
}

impl Node<'_> {
    /// One step of a [`FieldPath`], as `FieldPath::get` takes it on a `Value`.
    fn get(&self, segment: &str) -> Option<&Self> {
        match self {
            Node::Object(_) => self.member(segment),
            Node::Array(items) => items.get(segment.parse::<usize>().ok()?),
            _ => None,
        }
    }

    /// The member `key` of an object.
    pub(crate) fn member(&self, key: &str) -> Option<&Self> {
        let Node::Object(members) = self else {
            return None;
        };
        member_of(members, key)
    }

    pub(crate) fn to_value(&self) -> Value {
        match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Number(n) => Value::Number(n.clone()),
            Node::String(s) => Value::String(s.as_ref().to_owned()),
            Node::Array(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            Node::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(key, value)| (key.as_ref().to_owned(), value.to_value()))
                    .collect(),
            ),
        }
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        match self {
            Node::Null => out.extend_from_slice(b"null"),
            Node::Bool(true) => out.extend_from_slice(b"true"),
            Node::Bool(false) => out.extend_from_slice(b"false"),
            Node::Number(n) => serde_json::to_writer(&mut *out, n)?,
            Node::String(s) => write_string(out, s)?,
            Node::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write(out)?;
                }
                out.push(b']');
            }
            Node::Object(members) => {
                out.push(b'{');
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_string(out, key)?;
                    out.push(b':');
                    value.write(out)?;
                }
                out.push(b'}');
            }
        }
        Ok(())
    }
}

/// The member `key` among an object's members (sorted, each key once).
pub(crate) fn member_of<'n, 'a>(
    members: &'n [(Cow<'a, str>, Node<'a>)],
    key: &str,
) -> Option<&'n Node<'a>> {
    members
        .binary_search_by(|(k, _)| k.as_ref().cmp(key))
        .ok()
        .map(|at| &members[at].1)
}

/// Whether JSON needs an escape for any of `bytes`. Tested a block at a time without stopping
/// early inside a block, which the compiler turns into vector instructions: most strings of a
/// record need none, and this test ran on every byte of every string.
fn needs_escape(bytes: &[u8]) -> bool {
    bytes.chunks(32).any(|block| {
        block.iter().fold(false, |any, &b| {
            any | (b < 0x20) | (b == b'"') | (b == b'\\')
        })
    })
}

/// `s` as serde_json writes a string: quoted, escaping only `"`, `\` and control characters.
fn write_string(out: &mut Vec<u8>, s: &str) -> Result<(), serde_json::Error> {
    if !needs_escape(s.as_bytes()) {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        Ok(())
    } else {
        serde_json::to_writer(out, s)
    }
}

#[derive(Clone, Copy)]
struct Seed {
    strip_nulls: bool,
}

impl<'de> DeserializeSeed<'de> for Seed {
    type Value = Node<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node<'de>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed {
    type Value = Node<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node<'de>, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Node<'de>, E> {
        Ok(Node::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Node<'de>, E> {
        Ok(Node::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Node<'de>, E> {
        // As `Value` does: a float that is not finite (serde_json never gives one) is null.
        Ok(Number::from_f64(v).map_or(Node::Null, Node::Number))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Node<'de>, E> {
        Ok(Node::String(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Node<'de>, E> {
        Ok(Node::String(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Node<'de>, E> {
        Ok(Node::String(Cow::Owned(v)))
    }

    fn visit_unit<E>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }

    fn visit_none<E>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<'de>, A::Error> {
        let mut members: Vec<(Cow<'de, str>, Node<'de>)> = Vec::new();
        while let Some(key) = map.next_key_seed(Key)? {
            let value = map.next_value_seed(self)?;
            members.push((key, value));
        }
        let mut kept = sorted_unique(members);
        if self.strip_nulls {
            kept.retain(|(_, value)| !matches!(value, Node::Null));
        }
        Ok(Node::Object(kept))
    }
}

/// An object's members sorted by key, each key once: of a key given twice, the last member
/// (a map's `insert`).
fn sorted_unique<'a, V>(mut members: Vec<(Cow<'a, str>, V)>) -> Vec<(Cow<'a, str>, V)> {
    // Stable: of a key given twice, the later member comes later, and is the one kept.
    members.sort_by(|a, b| a.0.cmp(&b.0));
    let mut kept: Vec<(Cow<'a, str>, V)> = Vec::with_capacity(members.len());
    for member in members {
        match kept.last_mut() {
            Some(last) if last.0 == member.0 => *last = member,
            _ => kept.push(member),
        }
    }
    kept
}

/// The members of the object whose text is `text`, each value left as its text, sorted by key
/// and each key once as [`parse`] keeps them; `None` when `text` holds something other than an
/// object. The values' syntax is checked but they are not built, so a walk that compares them
/// as text ([`crate::field_changes`]) builds nothing for the values it finds equal.
pub(crate) fn members(text: &str) -> Result<Option<RawObject<'_>>, serde_json::Error> {
    if !text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{')
    {
        return Ok(None);
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let members = deserializer.deserialize_map(RawMembers)?;
    deserializer.end()?;
    Ok(Some(sorted_unique(members)))
}

/// An object's members as keys and value texts.
pub(crate) type RawObject<'a> = Vec<(Cow<'a, str>, &'a str)>;

/// Reads an object's members as keys and value texts.
struct RawMembers;

impl<'de> Visitor<'de> for RawMembers {
    type Value = RawObject<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(key) = map.next_key_seed(Key)? {
            let value: &'de RawValue = map.next_value()?;
            members.push((key, value.get()));
        }
        Ok(members)
    }
}

/// An object key, borrowed when it holds no escape.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Cow<'de, str>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::classify::canonical_json;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn needs_escape_finds_each_byte_json_escapes_wherever_it_is() {
        for byte in 0..=0x7f_u8 {
            let escaped = byte < 0x20 || byte == b'"' || byte == b'\\';
            // Before, on and after a block's edge, and in a short last block.
            for at in [0, 1, 31, 32, 33, 63, 64, 69] {
                let mut text = vec![b'a'; 70];
                text[at] = byte;
                assert_eq!(needs_escape(&text), escaped, "byte {byte:#04x} at {at}");
            }
        }
        assert!(!needs_escape(b""));
        assert!(!needs_escape("caf\u{e9} \u{1F600}".as_bytes()));
    }

    /// What the poller stored before this module: the record parsed into a `Value`, nulls
    /// removed when asked, written canonically.
    fn through_value(raw: &str, strip_nulls: bool) -> Result<String, serde_json::Error> {
        let mut value: Value = serde_json::from_str(raw)?;
        if strip_nulls {
            super::strip_nulls(&mut value);
        }
        Ok(canonical_json(&value))
    }

    fn same_as_value(raw: &str) {
        for strip_nulls in [false, true] {
            let before = through_value(raw, strip_nulls).map_err(|e| e.to_string());
            let now = read_record(raw, strip_nulls, &[])
                .map(|(text, _)| text)
                .map_err(|e| e.to_string());
            assert_eq!(now, before, "{raw:?} (strip_nulls {strip_nulls})");
        }
    }

    #[test]
    fn the_text_is_what_a_value_would_write() {
        for raw in [
            r#"{"b":1,"a":{"d":null,"c":[null,{"x":null}]},"e":null}"#,
            r#" { "id" : 42 , "name" : "Ann \"Q\" \\ \n\t\u0001 é \u00e9 \ud83d\ude00 \u2028" } "#,
            r#"{"k":1,"k":null}"#,
            r#"{"k":null,"k":2,"j":3,"k":4}"#,
            r#"{"é":1,"e":2,"E":3,"":4,"a\u0000b":5}"#,
            r#"[1,-0,0.0,-0.0,1e3,1E-7,123456789012345678901234,-9223372036854775808,18446744073709551615,1.5e308,2.2250738585072014e-308]"#,
            r#"{"deep":[[[[{"a":[{"b":null}]}]]]]}"#,
            r#""just a string""#,
            "null",
            "true",
            "[]",
            "{}",
            r#"{"bad": "\ud800"}"#,
            r#"{"trailing": 1} x"#,
            r#"{"unterminated": "#,
            "1e400",
        ] {
            same_as_value(raw);
        }
        // Nesting past serde_json's limit (128) is refused by both, not a stack overflow.
        let deep = format!("{}1{}", "[{\"a\":".repeat(100_000), "}]".repeat(100_000));
        same_as_value(&deep);
        assert!(read_record(&deep, true, &[]).is_err());
    }

    #[test]
    fn fields_are_found_as_on_the_stored_record() {
        let raw = r#"{"id":7,"_info":{"lastUpdated":"2019-03-01T10:15:00Z","x":null},
                      "phones":[{"n":"1"},{"n":"2"}],"flag":true,"gone":null,"id":8}"#;
        let path = |p: &str| FieldPath::parse(p).expect("path");
        let paths = [
            path("id"),
            path("_info.lastUpdated"),
            path("phones.1.n"),
            path("flag"),
            path("gone"),
            path("_info.x"),
            path("missing.deeper"),
            path("phones"),
        ];
        let refs: Vec<&FieldPath> = paths.iter().collect();
        let record: Value = serde_json::from_str(raw).expect("json");
        for strip_nulls in [false, true] {
            let (_, found) = read_record(raw, strip_nulls, &refs).expect("reads");
            let mut stored = record.clone();
            if strip_nulls {
                super::strip_nulls(&mut stored);
            }
            let expected: Vec<Option<Value>> =
                paths.iter().map(|p| p.get(&stored).cloned()).collect();
            assert_eq!(found, expected, "strip_nulls {strip_nulls}");
        }
        let (_, found) = read_record(raw, true, &refs[..1]).expect("reads");
        assert_eq!(found, vec![Some(json!(8))], "the last of a key given twice");
    }

    /// JSON text with what can differ between the two paths: escapes and non-ASCII in keys
    /// and strings, keys given twice, nulls at every depth, numbers of every form, whitespace.
    pub(crate) fn json_text() -> impl Strategy<Value = String> {
        let string = prop::string::string_regex(r#"([a-zA-Z_é😀 ]|\\["\\/bfnrt]|\\u00[0-1][0-9a-fA-F]|\\u20[0-2][0-9a-fA-F]|\\ud83d\\ude00){0,6}"#)
            .expect("regex")
            .prop_map(|s| format!("\"{s}\""))
            .boxed();
        let number = prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| format!("{f:e}")),
            prop::string::string_regex(
                "-?(0|[1-9][0-9]{0,25})(\\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?"
            )
            .expect("regex"),
        ];
        let leaf = prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("false".to_owned()),
            number,
            string.clone(),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            let key = prop_oneof![
                prop::sample::select(vec!["\"a\"", "\"b\"", "\"id\"", "\"\\u0061\"", "\"é\""])
                    .prop_map(str::to_owned),
                string.clone(),
            ];
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5)
                    .prop_map(|items| format!("[ {} ]", items.join(" , "))),
                prop::collection::vec((key, inner), 0..6).prop_map(|members| {
                    let members: Vec<String> = members
                        .into_iter()
                        .map(|(k, v)| format!("{k}: {v}"))
                        .collect();
                    format!("{{{}}}", members.join(","))
                }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn any_json_reads_to_the_text_a_value_would_write(raw in json_text()) {
            same_as_value(&raw);
        }
    }
}
