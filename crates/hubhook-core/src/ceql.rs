//! CEQL, the Cloud Elements Query Language used in `where=`, and its translation to the
//! ConnectWise Manage `conditions` parameter.
//!
//! Grammar (keywords case-insensitive):
//!
//! ```text
//! query      := or
//! or         := and ( OR and )*
//! and        := primary ( AND primary )*
//! primary    := '(' or ')' | comparison
//! comparison := field ( '=' | '!=' | '<>' | '<' | '<=' | '>' | '>=' ) literal
//!             | field [NOT] LIKE literal
//!             | field [NOT] IN '(' literal ( ',' literal )* ')'
//!             | field IS [NOT] NULL
//! field      := name ( '.' name )* | `back-ticked name`
//! literal    := 'single' | "double" (a doubled quote escapes it) | number | true | false | null
//! ```
//!
//! The ConnectWise side (reference §4.4): strings in double quotes, ISO-8601 datetimes in
//! square brackets, nested fields with `/`, lower-case operators and connectives, parentheses
//! kept as written.

use std::fmt::Write as _;

/// A parsed `where` clause.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `field op value`.
    Compare {
        field: String,
        op: CompareOp,
        value: Literal,
    },
    /// `field LIKE pattern` or `field NOT LIKE pattern`; `%` wildcards pass through.
    Like {
        field: String,
        pattern: Literal,
        negated: bool,
    },
    /// `field IN (values)` or `field NOT IN (values)`.
    In {
        field: String,
        values: Vec<Literal>,
        negated: bool,
    },
    /// `field IS NULL` or `field IS NOT NULL`.
    IsNull { field: String, negated: bool },
    /// Two or more terms joined with AND.
    And(Vec<Expr>),
    /// Two or more terms joined with OR.
    Or(Vec<Expr>),
    /// A parenthesized expression, kept so the translation keeps the user's grouping.
    Group(Box<Expr>),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CompareOp {
    /// The operator as ConnectWise (and CEQL) write it.
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    String(String),
    /// A number, kept as written so that no precision is lost.
    Number(String),
    Bool(bool),
    Null,
}

/// A query that could not be parsed. Messages start with "Error parsing query: ", the phrase
/// Cloud Elements uses, and name the position (1-based, in characters) and the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CeqlError {
    #[error("Error parsing query: the query is empty")]
    Empty,
    #[error("Error parsing query: unexpected character `{ch}` at position {position}")]
    UnexpectedChar { position: usize, ch: char },
    #[error("Error parsing query: unterminated {what} starting at position {position}")]
    Unterminated { position: usize, what: String },
    #[error(
        "Error parsing query: unexpected `{found}` at position {position}, expected {expected}"
    )]
    UnexpectedToken {
        position: usize,
        found: String,
        expected: String,
    },
    #[error("Error parsing query: unexpected end of query, expected {expected}")]
    UnexpectedEnd { expected: String },
    #[error(
        "Error parsing query: parentheses nested deeper than {MAX_DEPTH} at position {position}"
    )]
    TooDeep { position: usize },
    #[error(
        "Error parsing query: the query is {length} characters long, the limit is {MAX_LENGTH}"
    )]
    TooLong { length: usize },
    #[error(
        "Error parsing query: more than {MAX_TERMS} comparisons, the one at position {position} is one too many"
    )]
    TooManyTerms { position: usize },
    #[error(
        "Error parsing query: field name `{name}` at position {position} is not letters, digits and `_` separated by dots"
    )]
    InvalidField { position: usize, name: String },
}

/// Nesting limit, so a hostile query cannot exhaust the stack of the recursive parser. The
/// ConnectWise simulator accepts the same depth.
pub const MAX_DEPTH: usize = 64;

/// The longest query accepted, in characters. A `where` clause travels inside the poller URL,
/// which is limited to the same length (see `hub_url`), and ConnectWise advises keeping request
/// URLs under about 2000 characters.
pub const MAX_LENGTH: usize = 2000;

/// The most comparisons one query may hold. ConnectWise turns conditions into SQL; a query of
/// thousands of ORs is better written as `IN (...)`, and is refused rather than sent.
pub const MAX_TERMS: usize = 100;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Field(String),
    Str(String),
    Number(String),
    Op(CompareOp),
    LParen,
    RParen,
    Comma,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    position: usize,
    text: String,
}

fn tokenize(input: &str) -> Result<Vec<Token>, CeqlError> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        let position = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let tok = match c {
            '(' => {
                i += 1;
                Tok::LParen
            }
            ')' => {
                i += 1;
                Tok::RParen
            }
            ',' => {
                i += 1;
                Tok::Comma
            }
            '=' => {
                i += 1;
                Tok::Op(CompareOp::Eq)
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                i += 2;
                Tok::Op(CompareOp::Ne)
            }
            '<' | '>' => {
                let next = chars.get(i + 1).copied();
                let (op, length) = match (c, next) {
                    ('<', Some('=')) => (CompareOp::Le, 2),
                    ('<', Some('>')) => (CompareOp::Ne, 2),
                    ('<', _) => (CompareOp::Lt, 1),
                    ('>', Some('=')) => (CompareOp::Ge, 2),
                    _ => (CompareOp::Gt, 1),
                };
                i += length;
                Tok::Op(op)
            }
            '\'' | '"' | '`' => {
                let (text, next) = quoted(&chars, i).ok_or_else(|| CeqlError::Unterminated {
                    position,
                    what: if c == '`' {
                        "back-ticked field name".to_owned()
                    } else {
                        "string".to_owned()
                    },
                })?;
                i = next;
                if c == '`' {
                    if !is_field_name(&text) {
                        return Err(CeqlError::InvalidField {
                            position,
                            name: text,
                        });
                    }
                    Tok::Field(text)
                } else {
                    Tok::Str(text)
                }
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                i += 1;
                while chars.get(i).is_some_and(|c| c.is_ascii_digit()) {
                    i += 1;
                }
                if chars.get(i) == Some(&'.') && chars.get(i + 1).is_some_and(char::is_ascii_digit)
                {
                    i += 1;
                    while chars.get(i).is_some_and(|c| c.is_ascii_digit()) {
                        i += 1;
                    }
                }
                Tok::Number(chars[start..i].iter().collect())
            }
            // Field names and keywords are ASCII: ConnectWise field names are, and a name
            // outside this alphabet could not be passed on without quoting it.
            c if c.is_ascii_alphabetic() || c == '_' => {
                while chars
                    .get(i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
                {
                    i += 1;
                }
                Tok::Word(chars[start..i].iter().collect())
            }
            ch => return Err(CeqlError::UnexpectedChar { position, ch }),
        };
        tokens.push(Token {
            tok,
            position,
            text: chars[start..i].iter().collect(),
        });
    }
    Ok(tokens)
}

/// Whether `name` is a dotted field name: ASCII letters, digits and `_`, in non-empty segments
/// separated by dots. Back-ticked names must be too, because they are copied into the
/// ConnectWise conditions unquoted: a name holding spaces, quotes or parentheses would change
/// the meaning of the conditions.
fn is_field_name(name: &str) -> bool {
    name.split('.').all(|segment| {
        !segment.is_empty()
            && segment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// Reads a quoted run starting at `chars[start]` (the quote); a doubled quote stands for one.
/// Returns the content and the index after the closing quote.
fn quoted(chars: &[char], start: usize) -> Option<(String, usize)> {
    let quote = chars[start];
    let mut text = String::new();
    let mut i = start + 1;
    loop {
        match (chars.get(i), chars.get(i + 1)) {
            (None, _) => return None,
            (Some(c), Some(d)) if *c == quote && *d == quote => {
                text.push(quote);
                i += 2;
            }
            (Some(c), _) if *c == quote => return Some((text, i + 1)),
            (Some(c), _) => {
                text.push(*c);
                i += 1;
            }
        }
    }
}

const KEYWORDS: &[&str] = &[
    "and", "or", "not", "like", "in", "is", "null", "true", "false",
];

struct Parser {
    tokens: Vec<Token>,
    next: usize,
    depth: usize,
    /// Comparisons read so far, capped at [`MAX_TERMS`].
    terms: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next)
    }

    fn peek_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Some(Token { tok: Tok::Word(w), .. }) if w.eq_ignore_ascii_case(keyword))
    }

    fn unexpected(&self, expected: &str) -> CeqlError {
        match self.peek() {
            Some(token) => CeqlError::UnexpectedToken {
                position: token.position,
                found: token.text.clone(),
                expected: expected.to_owned(),
            },
            None => CeqlError::UnexpectedEnd {
                expected: expected.to_owned(),
            },
        }
    }

    fn expect_keyword(&mut self, keyword: &str, expected: &str) -> Result<(), CeqlError> {
        if self.peek_keyword(keyword) {
            self.next += 1;
            Ok(())
        } else {
            Err(self.unexpected(expected))
        }
    }

    fn or(&mut self) -> Result<Expr, CeqlError> {
        let mut terms = vec![self.and()?];
        while self.peek_keyword("or") {
            self.next += 1;
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Expr::Or(terms)
        })
    }

    fn and(&mut self) -> Result<Expr, CeqlError> {
        let mut terms = vec![self.primary()?];
        while self.peek_keyword("and") {
            self.next += 1;
            terms.push(self.primary()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Expr::And(terms)
        })
    }

    fn primary(&mut self) -> Result<Expr, CeqlError> {
        if let Some(Token {
            tok: Tok::LParen,
            position,
            ..
        }) = self.peek()
        {
            let position = *position;
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(CeqlError::TooDeep { position });
            }
            self.next += 1;
            let inner = self.or()?;
            match self.peek() {
                Some(Token {
                    tok: Tok::RParen, ..
                }) => self.next += 1,
                _ => return Err(self.unexpected("`)`, AND or OR")),
            }
            self.depth -= 1;
            return Ok(Expr::Group(Box::new(inner)));
        }
        self.comparison()
    }

    fn field(&mut self) -> Result<String, CeqlError> {
        let field = match self.peek().map(|t| &t.tok) {
            Some(Tok::Field(name)) if !name.is_empty() => name.clone(),
            Some(Tok::Word(word))
                if !KEYWORDS.iter().any(|k| word.eq_ignore_ascii_case(k))
                    && is_field_name(word) =>
            {
                word.clone()
            }
            _ => return Err(self.unexpected("a field name")),
        };
        self.next += 1;
        Ok(field)
    }

    fn comparison(&mut self) -> Result<Expr, CeqlError> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            let position = self.peek().map_or(0, |t| t.position);
            return Err(CeqlError::TooManyTerms { position });
        }
        let field = self.field()?;
        const OPERATOR: &str = "an operator (=, !=, <, <=, >, >=, LIKE, IN, IS)";
        if let Some(Tok::Op(op)) = self.peek().map(|t| &t.tok) {
            let op = *op;
            self.next += 1;
            let value = self.literal()?;
            return Ok(Expr::Compare { field, op, value });
        }
        let negated = self.peek_keyword("not");
        if negated {
            self.next += 1;
        }
        if self.peek_keyword("like") {
            self.next += 1;
            let pattern = self.literal()?;
            return Ok(Expr::Like {
                field,
                pattern,
                negated,
            });
        }
        if self.peek_keyword("in") {
            self.next += 1;
            return self.in_list(field, negated);
        }
        if !negated && self.peek_keyword("is") {
            self.next += 1;
            let negated = self.peek_keyword("not");
            if negated {
                self.next += 1;
            }
            self.expect_keyword("null", "NULL")?;
            return Ok(Expr::IsNull { field, negated });
        }
        Err(self.unexpected(if negated { "LIKE or IN" } else { OPERATOR }))
    }

    fn in_list(&mut self, field: String, negated: bool) -> Result<Expr, CeqlError> {
        match self.peek().map(|t| &t.tok) {
            Some(Tok::LParen) => self.next += 1,
            _ => return Err(self.unexpected("`(` after IN")),
        }
        let mut values = vec![self.literal()?];
        loop {
            match self.peek().map(|t| &t.tok) {
                Some(Tok::Comma) => {
                    self.next += 1;
                    values.push(self.literal()?);
                }
                Some(Tok::RParen) => {
                    self.next += 1;
                    return Ok(Expr::In {
                        field,
                        values,
                        negated,
                    });
                }
                _ => return Err(self.unexpected("`,` or `)`")),
            }
        }
    }

    fn literal(&mut self) -> Result<Literal, CeqlError> {
        const VALUE: &str = "a value (a quoted string, a number, true, false or null)";
        let literal = match self.peek().map(|t| &t.tok) {
            Some(Tok::Str(s)) => Literal::String(s.clone()),
            Some(Tok::Number(n)) => Literal::Number(n.clone()),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => Literal::Bool(true),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => Literal::Bool(false),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("null") => Literal::Null,
            _ => return Err(self.unexpected(VALUE)),
        };
        self.next += 1;
        Ok(literal)
    }
}

/// Parses a CEQL `where` clause.
pub fn parse_where(input: &str) -> Result<Expr, CeqlError> {
    // The length is checked before any work, so the cost of a query is bounded by the limit
    // whatever the size of the input.
    let length = input.chars().count();
    if length > MAX_LENGTH {
        return Err(CeqlError::TooLong { length });
    }
    let tokens = tokenize(input)?;
    if tokens.is_empty() {
        return Err(CeqlError::Empty);
    }
    let mut parser = Parser {
        tokens,
        next: 0,
        depth: 0,
        terms: 0,
    };
    let expr = parser.or()?;
    if parser.peek().is_some() {
        return Err(parser.unexpected("AND, OR or the end of the query"));
    }
    Ok(expr)
}

/// Renders `expr` as a ConnectWise `conditions` value, e.g.
/// `lastUpdated > [2019-03-01T10:15:00Z] and company/id = 123`.
pub fn to_conditions(expr: &Expr) -> String {
    let mut out = String::new();
    write_conditions(&mut out, expr);
    out
}

/// [`parse_where`] then [`to_conditions`].
pub fn where_to_conditions(input: &str) -> Result<String, CeqlError> {
    parse_where(input).map(|expr| to_conditions(&expr))
}

fn write_conditions(out: &mut String, expr: &Expr) {
    match expr {
        Expr::Compare { field, op, value } => {
            let _ = write!(out, "{} {} ", field_path(field), op.as_str());
            write_literal(out, value);
        }
        Expr::Like {
            field,
            pattern,
            negated,
        } => {
            let not = if *negated { "not " } else { "" };
            let _ = write!(out, "{} {not}like ", field_path(field));
            write_literal(out, pattern);
        }
        Expr::In {
            field,
            values,
            negated,
        } => {
            let not = if *negated { "not " } else { "" };
            let _ = write!(out, "{} {not}in (", field_path(field));
            for (i, value) in values.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_literal(out, value);
            }
            out.push(')');
        }
        Expr::IsNull { field, negated } => {
            let op = if *negated { "!=" } else { "=" };
            let _ = write!(out, "{} {op} null", field_path(field));
        }
        Expr::And(terms) | Expr::Or(terms) => {
            let joiner = if matches!(expr, Expr::And(_)) {
                " and "
            } else {
                " or "
            };
            for (i, term) in terms.iter().enumerate() {
                if i > 0 {
                    out.push_str(joiner);
                }
                write_conditions(out, term);
            }
        }
        Expr::Group(inner) => {
            out.push('(');
            write_conditions(out, inner);
            out.push(')');
        }
    }
}

/// ConnectWise addresses nested fields with `/` where CEQL uses `.`.
fn field_path(field: &str) -> String {
    field.replace('.', "/")
}

fn write_literal(out: &mut String, literal: &Literal) {
    match literal {
        Literal::String(text) => match iso_datetime(text) {
            Some(datetime) => {
                let _ = write!(out, "[{datetime}]");
            }
            None => {
                // ConnectWise strings are double-quoted with backslash escapes, so both the
                // quote and the backslash itself are escaped.
                out.push('"');
                for c in text.chars() {
                    if c == '"' || c == '\\' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('"');
            }
        },
        Literal::Number(number) => out.push_str(number),
        Literal::Bool(value) => out.push_str(if *value { "true" } else { "false" }),
        Literal::Null => out.push_str("null"),
    }
}

/// The instant a text literal stands for when the hub sends it to ConnectWise as a date
/// ([`iso_datetime`]: one without a zone is read as UTC, as ConnectWise reads brackets), or
/// `None` when it is sent as text.
pub(crate) fn literal_instant(text: &str) -> Option<jiff::Timestamp> {
    let sent = iso_datetime(text)?;
    sent.parse::<jiff::Timestamp>().ok().or_else(|| {
        let civil: jiff::civil::DateTime = sent.parse().ok()?;
        civil
            .to_zoned(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp())
    })
}

/// When `text` is an ISO-8601 datetime (`2019-03-01T10:15:00Z`, optional seconds, fraction
/// and `Z` or offset), the text to put in ConnectWise's square brackets. ConnectWise reads
/// bracketed dates as UTC, so a value with an explicit offset is converted to UTC; one without
/// any zone is passed through as written.
fn iso_datetime(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range)
            .is_some_and(|s| !s.is_empty() && s.iter().all(u8::is_ascii_digit))
    };
    let shape = digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10)
        && b.get(10) == Some(&b'T')
        && digits(11..13)
        && b.get(13) == Some(&b':')
        && digits(14..16);
    if !shape {
        return None;
    }
    let mut i = 16;
    if b.get(i) == Some(&b':') {
        if !digits(i + 1..i + 3) {
            return None;
        }
        i += 3;
        if b.get(i) == Some(&b'.') {
            let fraction = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if fraction == 0 {
                return None;
            }
            i += 1 + fraction;
        }
    }
    let zone = &text[i..];
    match zone {
        "" | "Z" => {
            // Reject impossible dates such as month 13 so they stay plain strings and the
            // provider reports them, rather than hubhook sending a malformed bracket.
            text[..i].parse::<jiff::civil::DateTime>().ok()?;
            Some(text.to_owned())
        }
        _ => {
            let offset = zone.as_bytes();
            let valid = matches!(offset.first(), Some(b'+' | b'-'))
                && (offset.len() == 6 && offset[3] == b':' || offset.len() == 5)
                && offset[1..]
                    .iter()
                    .enumerate()
                    .all(|(k, c)| c.is_ascii_digit() || (k == 2 && *c == b':'));
            if !valid {
                return None;
            }
            // The hub passes ConnectWise's looser forms on (`-0500`), so jiff reads these,
            // not `rfc3339::parse_instant`.
            text.parse::<jiff::Timestamp>()
                .ok()
                .map(|ts| ts.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<&str, &str>) {
        match expected {
            Ok(conditions) => {
                assert_eq!(
                    where_to_conditions(input).as_deref(),
                    Ok(conditions),
                    "{input}"
                )
            }
            Err(message) => assert_eq!(
                where_to_conditions(input).map_err(|e| e.to_string()),
                Err(message.to_owned()),
                "{input}"
            ),
        }
    }

    #[test]
    fn translates_comparisons() {
        check(
            "lastUpdated>'2019-03-01T10:15:00Z'",
            Ok("lastUpdated > [2019-03-01T10:15:00Z]"),
        );
        check("company.id=123", Ok("company/id = 123"));
        check("email='Test'", Ok(r#"email = "Test""#));
        check(
            r#"contactPhoneNumber="555-5555""#,
            Ok(r#"contactPhoneNumber = "555-5555""#),
        );
        check("approved='false'", Ok(r#"approved = "false""#));
        check("approved=false", Ok("approved = false"));
        check("inactiveFlag = TRUE", Ok("inactiveFlag = true"));
        check("id != -4.5", Ok("id != -4.5"));
        check("id <> 4", Ok("id != 4"));
        check("a<1 and b<=2 and c>=3", Ok("a < 1 and b <= 2 and c >= 3"));
        check(
            "timeStart>='2017-08-23T00:01:00Z'",
            Ok("timeStart >= [2017-08-23T00:01:00Z]"),
        );
        check("`company.id` = 5", Ok("company/id = 5"));
        check("`order` = 'x'", Ok(r#"order = "x""#));
        check("board.name = null", Ok("board/name = null"));
    }

    #[test]
    fn translates_datetimes() {
        check(
            "d > '2019-03-01T10:15:00.123Z'",
            Ok("d > [2019-03-01T10:15:00.123Z]"),
        );
        check("d > '2019-03-01T10:15:00'", Ok("d > [2019-03-01T10:15:00]"));
        check("d > '2019-03-01T10:15Z'", Ok("d > [2019-03-01T10:15Z]"));
        check(
            "d > '2019-03-01T12:15:00+02:00'",
            Ok("d > [2019-03-01T10:15:00Z]"),
        );
        check(
            "d > '2019-03-01T05:15:00.5-0500'",
            Ok("d > [2019-03-01T10:15:00.5Z]"),
        );
        // Not datetimes: stay strings.
        check("d > '2019-03-01'", Ok(r#"d > "2019-03-01""#));
        check(
            "d > '2019-13-01T10:15:00Z'",
            Ok(r#"d > "2019-13-01T10:15:00Z""#),
        );
        check(
            "d > '2019-03-01T10:15:00Zulu'",
            Ok(r#"d > "2019-03-01T10:15:00Zulu""#),
        );
        check(
            "d > '2019-03-01T10:15:00+2'",
            Ok(r#"d > "2019-03-01T10:15:00+2""#),
        );
    }

    #[test]
    fn translates_logic_and_lists() {
        check(
            "notes='Test Internal Entry' AND enteredBy='Admin1'",
            Ok(r#"notes = "Test Internal Entry" and enteredBy = "Admin1""#),
        );
        check(
            "board.name='Integration' and summary='xyz' or board.id in (3, 2, 4) and lastUpdated > '2016-08-20T18:04:26Z'",
            Ok(
                r#"board/name = "Integration" and summary = "xyz" or board/id in (3, 2, 4) and lastUpdated > [2016-08-20T18:04:26Z]"#,
            ),
        );
        check(
            "(a=1 OR b=2) And (c=3 or (d=4))",
            Ok("(a = 1 or b = 2) and (c = 3 or (d = 4))"),
        );
        check(
            "status.name IN ('New','Open')",
            Ok(r#"status/name in ("New", "Open")"#),
        );
        check("id not in (1)", Ok("id not in (1)"));
        check("name LIKE 'Acme%'", Ok(r#"name like "Acme%""#));
        check("name not like '%x'", Ok(r#"name not like "%x""#));
        check("manager IS NULL", Ok("manager = null"));
        check("manager is not null", Ok("manager != null"));
    }

    #[test]
    fn escapes_quotes() {
        check("name='O''Brien'", Ok(r#"name = "O'Brien""#));
        check(r#"name='say "hi"'"#, Ok(r#"name = "say \"hi\"""#));
        check(r#"name="a""b""#, Ok(r#"name = "a\"b""#));
        check(r"path='C:\dir'", Ok(r#"path = "C:\\dir""#));
    }

    #[test]
    fn reports_errors_with_position_and_token() {
        check("", Err("Error parsing query: the query is empty"));
        check(
            "name = 'x",
            Err("Error parsing query: unterminated string starting at position 8"),
        );
        check(
            "`name = 1",
            Err("Error parsing query: unterminated back-ticked field name starting at position 1"),
        );
        check(
            "name = x",
            Err(
                "Error parsing query: unexpected `x` at position 8, expected a value (a quoted string, a number, true, false or null)",
            ),
        );
        check(
            "name =",
            Err(
                "Error parsing query: unexpected end of query, expected a value (a quoted string, a number, true, false or null)",
            ),
        );
        check(
            "name 'x'",
            Err(
                "Error parsing query: unexpected `'x'` at position 6, expected an operator (=, !=, <, <=, >, >=, LIKE, IN, IS)",
            ),
        );
        check(
            "a = 1 b = 2",
            Err(
                "Error parsing query: unexpected `b` at position 7, expected AND, OR or the end of the query",
            ),
        );
        check(
            "(a = 1",
            Err("Error parsing query: unexpected end of query, expected `)`, AND or OR"),
        );
        check(
            "a = 1)",
            Err(
                "Error parsing query: unexpected `)` at position 6, expected AND, OR or the end of the query",
            ),
        );
        check(
            "and = 1",
            Err("Error parsing query: unexpected `and` at position 1, expected a field name"),
        );
        check(
            "a = 1 and",
            Err("Error parsing query: unexpected end of query, expected a field name"),
        );
        check(
            "a in 1",
            Err("Error parsing query: unexpected `1` at position 6, expected `(` after IN"),
        );
        check(
            "a in (1 2)",
            Err("Error parsing query: unexpected `2` at position 9, expected `,` or `)`"),
        );
        check(
            "a is 1",
            Err("Error parsing query: unexpected `1` at position 6, expected NULL"),
        );
        check(
            "a not = 1",
            Err("Error parsing query: unexpected `=` at position 7, expected LIKE or IN"),
        );
        check(
            "a = 1 ; drop",
            Err("Error parsing query: unexpected character `;` at position 7"),
        );
        check(
            "a. = 1",
            Err("Error parsing query: unexpected `a.` at position 1, expected a field name"),
        );
        let deep = format!("{}a = 1{}", "(".repeat(100), ")".repeat(100));
        check(
            &deep,
            Err("Error parsing query: parentheses nested deeper than 64 at position 65"),
        );
    }

    #[test]
    fn back_ticked_names_cannot_inject_conditions() {
        // Found by the properties below: a back-ticked name was copied into the conditions
        // as written, so `a = 1) or (1` closed the user's group and added a term.
        check(
            "`a = 1) or (b` = 2",
            Err(
                "Error parsing query: field name `a = 1) or (b` at position 1 is not letters, digits and `_` separated by dots",
            ),
        );
        check(
            "`` = 2",
            Err(
                "Error parsing query: field name `` at position 1 is not letters, digits and `_` separated by dots",
            ),
        );
        check(
            "`a..b` = 2",
            Err(
                "Error parsing query: field name `a..b` at position 1 is not letters, digits and `_` separated by dots",
            ),
        );
        // Non-ASCII letters are not field names either.
        check(
            "n\u{e9}e = 1",
            Err("Error parsing query: unexpected character `\u{e9}` at position 2"),
        );
        check(
            "\u{e9} = 1",
            Err("Error parsing query: unexpected character `\u{e9}` at position 1"),
        );
    }

    #[test]
    fn limits_length_terms_and_depth() {
        let at_limit = format!("a = '{}'", "x".repeat(MAX_LENGTH - 6));
        assert_eq!(at_limit.chars().count(), MAX_LENGTH);
        assert!(parse_where(&at_limit).is_ok());
        let over = format!("{at_limit} ");
        check(
            &over,
            Err("Error parsing query: the query is 2001 characters long, the limit is 2000"),
        );
        // A megabyte is refused before it is read.
        let megabyte = "a = 1 or ".repeat(120_000);
        assert_eq!(
            parse_where(&megabyte),
            Err(CeqlError::TooLong {
                length: megabyte.len()
            })
        );
        // 100,000 nested parentheses: refused, not a stack overflow.
        let nested = format!("{}a = 1{}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(matches!(
            parse_where(&nested),
            Err(CeqlError::TooLong { .. })
        ));
        // Within the length limit, the depth limit answers.
        let nested = "(".repeat(MAX_LENGTH);
        assert_eq!(
            parse_where(&nested),
            Err(CeqlError::TooDeep {
                position: MAX_DEPTH + 1
            })
        );
        let terms = |n: usize| vec!["a=1"; n].join(" or ");
        assert!(parse_where(&terms(MAX_TERMS)).is_ok());
        assert_eq!(
            parse_where(&terms(MAX_TERMS + 1)),
            Err(CeqlError::TooManyTerms {
                position: MAX_TERMS * 7 + 1
            })
        );
    }

    #[test]
    fn parses_into_a_tree() {
        assert_eq!(
            parse_where("a = 'x' OR b IS NULL"),
            Ok(Expr::Or(vec![
                Expr::Compare {
                    field: "a".into(),
                    op: CompareOp::Eq,
                    value: Literal::String("x".into()),
                },
                Expr::IsNull {
                    field: "b".into(),
                    negated: false,
                },
            ]))
        );
    }
}

#[cfg(test)]
mod properties {
    //! Generated inputs: arbitrary text never panics, and printed trees read back the same.

    use proptest::prelude::*;

    use super::*;

    /// A CEQL field name that is not a keyword, possibly dotted.
    fn field() -> impl Strategy<Value = String> {
        "[a-z_][a-z0-9_]{0,5}(\\.[a-z_][a-z0-9_]{0,5}){0,2}"
            .prop_filter("keywords are not field names", |f| {
                !KEYWORDS.iter().any(|k| f.eq_ignore_ascii_case(k))
            })
    }

    fn literal() -> impl Strategy<Value = Literal> {
        prop_oneof![
            ".{0,12}".prop_map(Literal::String),
            "-?[0-9]{1,6}(\\.[0-9]{1,3})?".prop_map(Literal::Number),
            any::<bool>().prop_map(Literal::Bool),
            Just(Literal::Null),
        ]
    }

    fn leaf() -> impl Strategy<Value = Expr> {
        let op = prop_oneof![
            Just(CompareOp::Eq),
            Just(CompareOp::Ne),
            Just(CompareOp::Lt),
            Just(CompareOp::Le),
            Just(CompareOp::Gt),
            Just(CompareOp::Ge),
        ];
        prop_oneof![
            (field(), op, literal()).prop_map(|(field, op, value)| Expr::Compare {
                field,
                op,
                value
            }),
            (field(), literal(), any::<bool>()).prop_map(|(field, pattern, negated)| {
                Expr::Like {
                    field,
                    pattern,
                    negated,
                }
            }),
            (
                field(),
                prop::collection::vec(literal(), 1..4),
                any::<bool>()
            )
                .prop_map(|(field, values, negated)| Expr::In {
                    field,
                    values,
                    negated
                }),
            (field(), any::<bool>()).prop_map(|(field, negated)| Expr::IsNull { field, negated }),
        ]
    }

    /// Trees in the shape the parser produces: AND and OR lists are flat, an AND list holds no
    /// OR (that needs a group), and an OR list holds no OR.
    fn expr() -> impl Strategy<Value = Expr> {
        leaf().prop_recursive(3, 24, 3, |inner| {
            let group = inner.clone().prop_map(|e| Expr::Group(Box::new(e)));
            let unit = prop_oneof![leaf(), group];
            let and = prop::collection::vec(unit.clone(), 2..4).prop_map(Expr::And);
            let or_term = prop_oneof![unit.clone(), and.clone()];
            let or = prop::collection::vec(or_term, 2..4).prop_map(Expr::Or);
            prop_oneof![unit, and, or]
        })
    }

    /// Prints `expr` as CEQL, back-ticking field names when `tick` says so.
    fn print(expr: &Expr, tick: bool) -> String {
        let name = |f: &str| if tick { format!("`{f}`") } else { f.to_owned() };
        let lit = |l: &Literal| match l {
            Literal::String(s) => format!("'{}'", s.replace('\'', "''")),
            Literal::Number(n) => n.clone(),
            Literal::Bool(b) => b.to_string(),
            Literal::Null => "null".to_owned(),
        };
        let not = |negated: &bool| if *negated { "NOT " } else { "" };
        match expr {
            Expr::Compare { field, op, value } => {
                format!("{} {} {}", name(field), op.as_str(), lit(value))
            }
            Expr::Like {
                field,
                pattern,
                negated,
            } => format!("{} {}LIKE {}", name(field), not(negated), lit(pattern)),
            Expr::In {
                field,
                values,
                negated,
            } => {
                let values: Vec<String> = values.iter().map(lit).collect();
                format!("{} {}IN ({})", name(field), not(negated), values.join(", "))
            }
            Expr::IsNull { field, negated } => {
                format!("{} IS {}NULL", name(field), not(negated))
            }
            Expr::And(terms) | Expr::Or(terms) => {
                let joiner = if matches!(expr, Expr::And(_)) {
                    " and "
                } else {
                    " OR "
                };
                let terms: Vec<String> = terms.iter().map(|t| print(t, tick)).collect();
                terms.join(joiner)
            }
            Expr::Group(inner) => format!("({})", print(inner, tick)),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_text_never_panics(input in any::<String>()) {
            let _ = where_to_conditions(&input);
        }

        #[test]
        fn token_soup_never_panics(
            tokens in prop::collection::vec(
                prop_oneof![
                    Just("("), Just(")"), Just(","), Just("="), Just("!="), Just("<>"),
                    Just("<="), Just(">"), Just("and"), Just("OR"), Just("not"), Just("like"),
                    Just("in"), Just("is"), Just("null"), Just("true"), Just("a"), Just("b.c"),
                    Just("'x'"), Just("\"y\""), Just("`f`"), Just("1"), Just("-2.5"), Just("'"),
                    Just("`"), Just("'2019-03-01T10:15:00+02:00'"), Just("'2019-03-01T10:15:00.'"),
                ],
                0..40,
            )
        ) {
            let _ = where_to_conditions(&tokens.join(" "));
        }

        #[test]
        fn printed_trees_parse_back_and_translate_stably(expr in expr(), tick in any::<bool>()) {
            let text = print(&expr, tick);
            let parsed = parse_where(&text);
            prop_assert_eq!(parsed.as_ref(), Ok(&expr), "{}", text);
            let conditions = to_conditions(&expr);
            prop_assert_eq!(where_to_conditions(&text), Ok(conditions));
        }
    }
}
