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
fn like(text: &str, pattern: &str) -> bool {
    fn go(text: &[char], pattern: &[char]) -> bool {
        match pattern.split_first() {
            None => text.is_empty(),
            Some(('%', rest)) => (0..=text.len()).any(|skip| go(&text[skip..], rest)),
            Some(('_', rest)) => !text.is_empty() && go(&text[1..], rest),
            Some((c, rest)) => text.first() == Some(c) && go(&text[1..], rest),
        }
    }
    let text: Vec<char> = text.chars().collect();
    let pattern: Vec<char> = pattern.chars().collect();
    go(&text, &pattern)
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
}
