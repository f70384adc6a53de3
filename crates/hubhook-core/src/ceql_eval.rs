//! CEQL evaluated over hubhook's own records (Cloud Elements' delivery queries such as
//! `channel='webhook' and status='queued' and config.url='https://…'`), rather than
//! translated for ConnectWise.
//!
//! The caller says what each field is for one record; an unknown field is an error that names
//! it, so a typo is a `400` and not an empty (or, for a redelivery, an everything) selection.
//! Dates compare as instants: a string literal compared with a date field must be an RFC 3339
//! date-time (`'2026-01-01T00:00:00Z'`).

use jiff::Timestamp;

use crate::ceql::{CompareOp, Expr, Literal};

/// The value of one field of the record being tested.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Text(String),
    Number(i64),
    Time(Timestamp),
    /// The field exists but has no value (`IS NULL` matches).
    Null,
}

/// Whether the record whose fields `field` describes matches `expr`. `field` answers
/// `Err(message)` for a field it does not know.
pub fn matches(
    expr: &Expr,
    field: &dyn Fn(&str) -> Result<FieldValue, String>,
) -> Result<bool, String> {
    Ok(match expr {
        Expr::And(terms) => {
            let mut all = true;
            // Every term is evaluated, so an unknown field is reported whatever the data.
            for term in terms {
                all &= matches(term, field)?;
            }
            all
        }
        Expr::Or(terms) => {
            let mut any = false;
            for term in terms {
                any |= matches(term, field)?;
            }
            any
        }
        Expr::Group(inner) => matches(inner, field)?,
        Expr::IsNull {
            field: name,
            negated,
        } => (field(name)? == FieldValue::Null) != *negated,
        Expr::Compare {
            field: name,
            op,
            value,
        } => {
            let actual = field(name)?;
            compare(name, &actual, *op, value)?
        }
        Expr::In {
            field: name,
            values,
            negated,
        } => {
            let actual = field(name)?;
            let mut found = false;
            for value in values {
                found |= compare(name, &actual, CompareOp::Eq, value)?;
            }
            found != *negated
        }
        Expr::Like {
            field: name,
            pattern,
            negated,
        } => {
            let FieldValue::Text(text) = field(name)? else {
                return Err(format!("`{name}`: LIKE applies to text fields only"));
            };
            let Literal::String(pattern) = pattern else {
                return Err(format!("`{name}`: LIKE takes a quoted pattern"));
            };
            like(&text, pattern) != *negated
        }
    })
}

fn compare(
    name: &str,
    actual: &FieldValue,
    op: CompareOp,
    literal: &Literal,
) -> Result<bool, String> {
    let ordering = match (actual, literal) {
        (FieldValue::Null, _) | (_, Literal::Null) => return Ok(false),
        (FieldValue::Text(a), Literal::String(b)) => a.as_str().cmp(b.as_str()),
        (FieldValue::Number(a), Literal::Number(b)) => {
            let b: i64 = b
                .parse()
                .map_err(|_| format!("`{name}`: expected a whole number, got {b}"))?;
            a.cmp(&b)
        }
        (FieldValue::Number(a), Literal::String(b)) => {
            let b: i64 = b
                .parse()
                .map_err(|_| format!("`{name}`: expected a whole number, got '{b}'"))?;
            a.cmp(&b)
        }
        (FieldValue::Time(a), Literal::String(b)) => {
            let b: Timestamp = crate::rfc3339::parse_instant(b).map_err(|_| {
                format!("`{name}`: expected an RFC 3339 date-time such as '2026-01-01T00:00:00Z', got '{b}'")
            })?;
            a.cmp(&b)
        }
        (actual, other) => {
            let given = match other {
                Literal::String(text) => format!("'{text}'"),
                Literal::Number(number) => number.clone(),
                Literal::Bool(flag) => flag.to_string(),
                Literal::Null => "null".to_owned(),
            };
            let expected = match actual {
                FieldValue::Number(_) => "a whole number such as 7",
                FieldValue::Time(_) => "a quoted RFC 3339 date-time such as '2026-01-01T00:00:00Z'",
                FieldValue::Text(_) | FieldValue::Null => "a quoted string",
            };
            return Err(format!(
                "`{name}`: cannot compare with {given}; expected {expected}"
            ));
        }
    };
    use std::cmp::Ordering::*;
    Ok(match op {
        CompareOp::Eq => ordering == Equal,
        CompareOp::Ne => ordering != Equal,
        CompareOp::Lt => ordering == Less,
        CompareOp::Le => ordering != Greater,
        CompareOp::Gt => ordering == Greater,
        CompareOp::Ge => ordering != Less,
    })
}

/// SQL `LIKE` with `%` (any run) and `_` (one character), case-sensitive.
///
/// The pattern is cut at each `%` into pieces of fixed length. The first piece must match at
/// the start and the last at the end (unless the pattern begins or ends with `%`); every piece
/// between is taken at its leftmost place after the one before. Leftmost is always right: a
/// later place leaves less text for the pieces after it, never more. A piece without `_` is
/// found with `str::find`, linear in the text, so `%`-only patterns cost text + pattern; a
/// piece holding `_` is tried at each place, at most text × piece. (The recursive form was
/// exponential in the number of `%`; see also [`MAX_LIKE_PATTERN_CHARS`].)
fn like(text: &str, pattern: &str) -> bool {
    let Some((first, rest)) = pattern.split_once('%') else {
        // No `%`: the whole text is one piece.
        return piece_at(text, pattern) == Some(text.len());
    };
    // One `%`: nothing between the first piece and the last.
    let (middle, last) = rest.rsplit_once('%').unwrap_or(("", rest));
    // The first piece, at the start.
    let Some(mut at) = piece_at(text, first) else {
        return false;
    };
    for piece in middle.split('%') {
        match find_piece(&text[at..], piece) {
            Some((start, len)) => at += start + len,
            None => return false,
        }
    }
    // The last piece, at the end, after everything before it: it covers the text's last
    // characters, as many as it has.
    let end_start = match last.chars().count() {
        0 => text.len(),
        n => match text.char_indices().rev().nth(n - 1) {
            Some((i, _)) => i,
            None => return false,
        },
    };
    end_start >= at && piece_at(&text[end_start..], last) == Some(text.len() - end_start)
}

/// Bytes of `text` that `piece` (`_` for any one character) matches at its start, if it does.
fn piece_at(text: &str, piece: &str) -> Option<usize> {
    let mut chars = text.char_indices();
    for want in piece.chars() {
        let (_, got) = chars.next()?;
        if want != '_' && want != got {
            return None;
        }
    }
    Some(chars.next().map_or(text.len(), |(i, _)| i))
}

/// The leftmost place of `piece` in `text`: where it starts and the bytes it covers.
fn find_piece(text: &str, piece: &str) -> Option<(usize, usize)> {
    if !piece.contains('_') {
        return text.find(piece).map(|start| (start, piece.len()));
    }
    text.char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()))
        .find_map(|start| piece_at(&text[start..], piece).map(|len| (start, len)))
}

/// Characters of `LIKE` patterns one query may hold, all together: a pattern costs up to its
/// length times the text's at every row scanned (a piece with `_`), and real patterns are short.
pub const MAX_LIKE_PATTERN_CHARS: usize = 256;

/// Refuses a query whose `LIKE` patterns together are longer than [`MAX_LIKE_PATTERN_CHARS`].
pub fn check_like_patterns(expr: &Expr) -> Result<(), String> {
    fn total(expr: &Expr) -> usize {
        match expr {
            Expr::Like {
                pattern: Literal::String(pattern),
                ..
            } => pattern.chars().count(),
            Expr::And(terms) | Expr::Or(terms) => terms.iter().map(total).sum(),
            Expr::Group(inner) => total(inner),
            _ => 0,
        }
    }
    let chars = total(expr);
    if chars > MAX_LIKE_PATTERN_CHARS {
        return Err(format!(
            "the LIKE patterns hold {chars} characters together, at most {MAX_LIKE_PATTERN_CHARS}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ceql::parse_where;

    fn record(name: &str) -> Result<FieldValue, String> {
        match name {
            "channel" => Ok(FieldValue::Text("webhook".into())),
            "status" => Ok(FieldValue::Text("queued".into())),
            "config.url" => Ok(FieldValue::Text("https://hooks.example/in?x=1".into())),
            "instanceId" => Ok(FieldValue::Number(7)),
            "createdDate" => Ok(FieldValue::Time(
                "2026-03-01T10:00:00Z".parse().expect("time"),
            )),
            "deliveredDate" => Ok(FieldValue::Null),
            other => Err(format!("`{other}`: unknown field")),
        }
    }

    fn check(query: &str, expected: Result<bool, &str>) {
        let expr = parse_where(query).expect(query);
        match (matches(&expr, &record), expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{query}"),
            (Err(error), Err(needle)) => assert!(error.contains(needle), "{query}: {error}"),
            (got, want) => panic!("{query}: got {got:?}, expected {want:?}"),
        }
    }

    #[test]
    fn cloud_elements_delivery_queries() {
        check("channel='webhook' and status='queued'", Ok(true));
        check("channel='webhook' and status='delivered'", Ok(false));
        check("status in ('queued', 'retry')", Ok(true));
        check("status not in ('queued')", Ok(false));
        check("config.url = 'https://hooks.example/in?x=1'", Ok(true));
        check("config.url like 'https://hooks.%'", Ok(true));
        check("config.url like 'https://other%'", Ok(false));
        check("instanceId = 7 or instanceId = 8", Ok(true));
        check("instanceId > 7", Ok(false));
        check("createdDate >= '2026-03-01T00:00:00Z'", Ok(true));
        check("createdDate < '2026-03-01T10:00:00+01:00'", Ok(false));
        check("deliveredDate is null and (status = 'queued')", Ok(true));
        check("colour = 'red'", Err("`colour`: unknown field"));
        check("status = 'x' and colour = 'red'", Err("`colour`"));
        check("createdDate > 'yesterday'", Err("RFC 3339"));
        check("instanceId = 'seven'", Err("whole number"));
        check("instanceId like '7%'", Err("text fields only"));
        // The message names what the field takes, not always a string.
        check(
            "instanceId = true",
            Err("cannot compare with true; expected a whole number"),
        );
        check(
            "createdDate = 5",
            Err("expected a quoted RFC 3339 date-time"),
        );
        check(
            "status = 5",
            Err("cannot compare with 5; expected a quoted string"),
        );
    }

    #[test]
    fn like_matches_as_sql_does_and_never_backtracks_without_bound() {
        for (text, pattern, expected) in [
            ("webhook", "webhook", true),
            ("webhook", "web%", true),
            ("webhook", "%hook", true),
            ("webhook", "%b%o%", true),
            ("webhook", "w_bhook", true),
            ("webhook", "w_hook", false),
            ("webhook", "%", true),
            ("", "%", true),
            ("", "_", false),
            ("", "", true),
            ("a", "", false),
            ("abcabd", "%abd", true),
            ("abcabd", "a%c%d", true),
            ("abcabd", "a%c%e", false),
            ("mississippi", "%iss%ppi", true),
            ("mississippi", "m%s_s%pi", true),
            ("aaa", "a%a%a%a", false),
            ("WebHook", "webhook", false),
        ] {
            assert_eq!(like(text, pattern), expected, "{text:?} LIKE {pattern:?}");
        }
        for (text, pattern, expected) in [
            ("ab", "a%%b", true),
            ("ab", "%%", true),
            ("abc", "_%_", true),
            ("a", "_%_", false),
            ("héllo wörld", "h_llo%w_rld", true),
            ("héllo", "%ö%", false),
            ("aXbXc", "a%_c", true),
            ("abab", "%ab%ab", true),
            ("abab", "ab%ab%ab", false),
            ("xay", "%a", false),
            ("aaa", "%aa", true),
            ("aa", "a%aa", false),
        ] {
            assert_eq!(like(text, pattern), expected, "{text:?} LIKE {pattern:?}");
        }
        // Exponential for a backtracking matcher; immediate here.
        let text = format!("https://{}/in", "a".repeat(4000));
        let pattern = format!("{}b", "%a".repeat(40));
        assert!(!like(&text, &pattern));
        // The helper's query: text × pattern for a greedy matcher, linear here.
        let pattern = format!("%{}b", "a".repeat(50));
        assert!(!like(&text, &pattern));
        let long = crate::ceql::parse_where(&format!(
            "config.url like '%{}'",
            "a".repeat(MAX_LIKE_PATTERN_CHARS)
        ))
        .expect("parses");
        let error = check_like_patterns(&long).expect_err("too long");
        assert!(error.contains("at most 256"), "{error}");
        let short =
            crate::ceql::parse_where("config.url like '%a%' or status like 'q%'").expect("parses");
        assert!(check_like_patterns(&short).is_ok());
    }

    /// The textbook dynamic program, as the reference for [`like`].
    fn like_reference(text: &str, pattern: &str) -> bool {
        let (t, p): (Vec<char>, Vec<char>) = (text.chars().collect(), pattern.chars().collect());
        // ok[j]: the text so far matches the pattern's first j characters.
        let mut ok = vec![false; p.len() + 1];
        ok[0] = true;
        for j in 1..=p.len() {
            ok[j] = ok[j - 1] && p[j - 1] == '%';
        }
        for c in &t {
            let mut next = vec![false; p.len() + 1];
            for j in 1..=p.len() {
                next[j] = match p[j - 1] {
                    '%' => next[j - 1] || ok[j],
                    '_' => ok[j - 1],
                    want => ok[j - 1] && want == *c,
                };
            }
            ok = next;
        }
        ok[p.len()]
    }

    #[test]
    fn like_agrees_with_the_reference_on_many_small_cases() {
        // A fixed pseudo-random walk over short texts and patterns of a few letters.
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % n
        };
        for _ in 0..20_000 {
            let text: String = (0..next(7))
                .map(|_| ['a', 'b', 'é'][next(3) as usize])
                .collect();
            let pattern: String = (0..next(7))
                .map(|_| ['a', 'b', 'é', '_', '%'][next(5) as usize])
                .collect();
            assert_eq!(
                like(&text, &pattern),
                like_reference(&text, &pattern),
                "{text:?} LIKE {pattern:?}"
            );
        }
    }
}
