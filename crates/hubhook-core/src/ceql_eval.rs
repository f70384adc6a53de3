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
            let b: Timestamp = b.parse().map_err(|_| {
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
/// Greedy with one resume point, the last `%` seen: on a mismatch the text position after
/// that `%` moves one character on and the rest of the pattern is tried again. An earlier `%`
/// never needs revisiting (whatever it could absorb, the later one can), so this is
/// O(text × pattern) at worst. The plain recursive form is exponential in the number of `%`:
/// `%a%a%a%a%a%a%a%b` against a long URL kept a worker busy for minutes.
fn like(text: &str, pattern: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    let pattern: Vec<char> = pattern.chars().collect();
    let (mut t, mut p) = (0, 0);
    // After the last `%`: where the pattern resumes, and the text position it last tried.
    let mut resume: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('%') => {
                p += 1;
                resume = Some((p, t));
            }
            Some('_') => {
                p += 1;
                t += 1;
            }
            Some(c) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match resume {
                Some((after, tried)) => {
                    p = after;
                    t = tried + 1;
                    resume = Some((after, tried + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '%')
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
        // Exponential for a backtracking matcher; immediate here.
        let text = format!("https://{}/in", "a".repeat(4000));
        let pattern = format!("{}b", "%a".repeat(40));
        assert!(!like(&text, &pattern));
    }
}
