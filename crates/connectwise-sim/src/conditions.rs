//! The `conditions` language (reference §2.1): parser and evaluator.
//!
//! ```text
//! expr       := and_expr { "or" and_expr }
//! and_expr   := term { "and" term }
//! term       := "(" expr ")" | comparison
//! comparison := field op value | field ["not"] ("contains"|"like") string
//!             | field ["not"] "in" "(" value {"," value} ")"
//! ```
//! ConnectWise hands conditions to SQL Server, so `and` binds tighter than
//! `or` and string comparisons are case-insensitive (the default collation).
//! A comparison against a missing (null) field is false unless it tests for
//! `null`, as in SQL's three-valued logic. The same parser serves
//! `childConditions` (array paths allowed, one element must satisfy the whole
//! expression) and `customFieldConditions` (rooted at `customFields`).

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::Value;

use crate::clock;
use crate::error::SimError;
use crate::schema::{CUSTOM_FIELD_FIELDS, Field, Kind, Resolved, resolve};

/// The help text ConnectWise appends to literal errors (quoted in the
/// connectwise-rest README as the server's message).
pub const LITERAL_HELP: &str = "String values should be enclosed with double or single quotes; DateTime values should be enclosed in square brackets; numbers should consist of only digits, and optionally a decimal point and a negation sign; boolean values should be indicated with the keywords true or false; null values should be indicated by the keyword null.";

#[derive(Debug, Clone, PartialEq)]
enum Token {
    LParen,
    RParen,
    Comma,
    Cmp(CmpOp),
    Word(String),
    Str(String),
    Num(f64),
    DateTime(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    /// Kept lowercased: comparisons are case-insensitive.
    Str(String),
    Num(f64),
    Bool(bool),
    DateTime(i64, i32),
    Null,
}

impl Lit {
    fn type_name(&self) -> &'static str {
        match self {
            Lit::Str(_) => "string",
            Lit::Num(_) => "numeric",
            Lit::Bool(_) => "boolean",
            Lit::DateTime(..) => "datetime",
            Lit::Null => "null",
        }
    }
}

#[derive(Debug, Clone)]
pub enum Test {
    Cmp(CmpOp, Lit),
    Contains(String),
    Like(Pattern),
    In(Vec<Lit>),
}

#[derive(Debug, Clone)]
pub struct Comparison {
    pub field: Resolved,
    pub test: Test,
    pub negate: bool,
}

/// `And`/`Or` hold their operands as a flat list, so a long `a and b and
/// c ...` chain is one node rather than a left-deep tree: evaluating and
/// dropping it never recurse deeper than the parenthesis nesting, which the
/// parser caps at [`MAX_DEPTH`].
#[derive(Debug, Clone)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Leaf(Comparison),
}

/// The deepest parenthesis nesting the parser accepts.
pub const MAX_DEPTH: usize = 64;

/// The longest `conditions` / `childConditions` / `customFieldConditions`
/// string accepted, in bytes.
pub const MAX_LEN: usize = 64 * 1024;

/// Which query parameter is being parsed; decides whether array paths are legal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Flavor {
    Conditions,
    ChildConditions,
    CustomFieldConditions,
}

/// Parses `input` against `fields` (the resource schema). `entity` names the
/// resource in error messages.
pub fn parse(
    input: &str,
    fields: &'static [Field],
    entity: &str,
    flavor: Flavor,
) -> Result<Expr, SimError> {
    if input.len() > MAX_LEN {
        return Err(SimError::bad_request(format!(
            "Conditions are too long ({} characters); the limit is {MAX_LEN}.",
            input.len()
        )));
    }
    let tokens = tokenize(input)?;
    if tokens.is_empty() {
        return Err(SimError::bad_request("Conditions cannot be empty."));
    }
    let fields = if flavor == Flavor::CustomFieldConditions {
        &CUSTOM_FIELD_FIELDS[..]
    } else {
        fields
    };
    let mut p = Parser {
        tokens,
        pos: 0,
        fields,
        entity,
        flavor,
        depth: 0,
    };
    let expr = p.or_expr()?;
    if let Some(t) = p.tokens.get(p.pos) {
        return Err(SimError::bad_request(format!(
            "Unexpected {} in conditions.",
            describe(t)
        )));
    }
    Ok(expr)
}

fn describe(t: &Token) -> String {
    match t {
        Token::LParen => "'('".into(),
        Token::RParen => "')'".into(),
        Token::Comma => "','".into(),
        Token::Cmp(op) => format!("'{}'", op.symbol()),
        Token::Word(w) => format!("'{w}'"),
        Token::Str(s) => format!("string \"{s}\""),
        Token::Num(n) => format!("number {n}"),
        Token::DateTime(d) => format!("datetime [{d}]"),
    }
}

fn tokenize(input: &str) -> Result<Vec<Token>, SimError> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Token::LParen);
                i += 1;
            }
            ')' => {
                out.push(Token::RParen);
                i += 1;
            }
            ',' => {
                out.push(Token::Comma);
                i += 1;
            }
            '=' => {
                out.push(Token::Cmp(CmpOp::Eq));
                i += 1;
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                out.push(Token::Cmp(CmpOp::Ne));
                i += 2;
            }
            '<' => match chars.get(i + 1) {
                Some('=') => {
                    out.push(Token::Cmp(CmpOp::Le));
                    i += 2;
                }
                Some('>') => {
                    out.push(Token::Cmp(CmpOp::Ne));
                    i += 2;
                }
                _ => {
                    out.push(Token::Cmp(CmpOp::Lt));
                    i += 1;
                }
            },
            '>' => {
                if chars.get(i + 1) == Some(&'=') {
                    out.push(Token::Cmp(CmpOp::Ge));
                    i += 2;
                } else {
                    out.push(Token::Cmp(CmpOp::Gt));
                    i += 1;
                }
            }
            '"' | '\'' => {
                let quote = c;
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(SimError::bad_request(format!(
                                "Unterminated string in conditions. {LITERAL_HELP}"
                            )));
                        }
                        Some('\\') if i + 1 < chars.len() => {
                            s.push(chars[i + 1]);
                            i += 2;
                        }
                        // SQL-style doubled quote inside a string.
                        Some(&q) if q == quote && chars.get(i + 1) == Some(&quote) => {
                            s.push(quote);
                            i += 2;
                        }
                        Some(&q) if q == quote => {
                            i += 1;
                            break;
                        }
                        Some(&other) => {
                            s.push(other);
                            i += 1;
                        }
                    }
                }
                out.push(Token::Str(s));
            }
            '[' => {
                let start = i + 1;
                let end = chars[start..]
                    .iter()
                    .position(|&c| c == ']')
                    .map(|p| start + p)
                    .ok_or_else(|| {
                        SimError::bad_request(format!(
                            "Unterminated datetime in conditions. {LITERAL_HELP}"
                        ))
                    })?;
                out.push(Token::DateTime(chars[start..end].iter().collect()));
                i = end + 1;
            }
            c if c.is_ascii_digit()
                || ((c == '-' || c == '.')
                    && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit())) =>
            {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                if chars
                    .get(i)
                    .is_some_and(|c| c.is_alphanumeric() || *c == '_')
                {
                    return Err(SimError::bad_request(format!(
                        "Invalid number '{text}{}' in conditions. {LITERAL_HELP}",
                        chars[i]
                    )));
                }
                let n = text.parse::<f64>().map_err(|_| {
                    SimError::bad_request(format!(
                        "Invalid number '{text}' in conditions. {LITERAL_HELP}"
                    ))
                })?;
                out.push(Token::Num(n));
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '/')
                {
                    i += 1;
                }
                out.push(Token::Word(chars[start..i].iter().collect()));
            }
            other => {
                return Err(SimError::bad_request(format!(
                    "Unexpected character '{other}' in conditions."
                )));
            }
        }
    }
    Ok(out)
}

struct Parser<'a> {
    tokens: Vec<Token>,
    pos: usize,
    fields: &'static [Field],
    entity: &'a str,
    flavor: Flavor,
    /// Current parenthesis nesting.
    depth: usize,
}

fn is_kw(t: Option<&Token>, kw: &str) -> bool {
    matches!(t, Some(Token::Word(w)) if w.eq_ignore_ascii_case(kw))
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn or_expr(&mut self) -> Result<Expr, SimError> {
        let first = self.and_expr()?;
        if !is_kw(self.peek(), "or") {
            return Ok(first);
        }
        let mut items = vec![first];
        while is_kw(self.peek(), "or") {
            self.pos += 1;
            items.push(self.and_expr()?);
        }
        Ok(Expr::Or(items))
    }

    fn and_expr(&mut self) -> Result<Expr, SimError> {
        let first = self.term()?;
        if !is_kw(self.peek(), "and") {
            return Ok(first);
        }
        let mut items = vec![first];
        while is_kw(self.peek(), "and") {
            self.pos += 1;
            items.push(self.term()?);
        }
        Ok(Expr::And(items))
    }

    fn term(&mut self) -> Result<Expr, SimError> {
        match self.next() {
            Some(Token::LParen) => {
                if self.depth >= MAX_DEPTH {
                    return Err(SimError::bad_request(format!(
                        "Conditions are nested too deeply; at most {MAX_DEPTH} levels of parentheses are allowed."
                    )));
                }
                self.depth += 1;
                let e = self.or_expr();
                self.depth -= 1;
                let e = e?;
                match self.next() {
                    Some(Token::RParen) => Ok(e),
                    Some(t) => Err(SimError::bad_request(format!(
                        "Expected ')' but found {}.",
                        describe(&t)
                    ))),
                    None => Err(SimError::bad_request(
                        "Expected ')' but the conditions ended.",
                    )),
                }
            }
            Some(Token::Word(name)) => self.comparison(&name),
            Some(t) => Err(SimError::bad_request(format!(
                "Expected a field name but found {}.",
                describe(&t)
            ))),
            None => Err(SimError::bad_request("Unexpected end of conditions.")),
        }
    }

    fn comparison(&mut self, name: &str) -> Result<Expr, SimError> {
        let field = self.field(name)?;
        let negate = if is_kw(self.peek(), "not") {
            self.pos += 1;
            true
        } else {
            false
        };
        let test = match self.next() {
            Some(Token::Cmp(op)) if !negate => {
                let lit = self.literal(&field)?;
                check_op(&field, op, &lit)?;
                Test::Cmp(op, lit)
            }
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("contains") => {
                Test::Contains(self.string_operand(&field, "contains")?.to_lowercase())
            }
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("like") => {
                Test::Like(Pattern::compile(&self.string_operand(&field, "like")?))
            }
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("in") => {
                match self.next() {
                    Some(Token::LParen) => {}
                    _ => return Err(SimError::bad_request("Expected '(' after 'in'.")),
                }
                let mut items = Vec::new();
                loop {
                    let lit = self.literal(&field)?;
                    if lit == Lit::Null {
                        return Err(SimError::bad_request(
                            "null is not allowed in an 'in' list.",
                        ));
                    }
                    items.push(lit);
                    match self.next() {
                        Some(Token::Comma) => continue,
                        Some(Token::RParen) => break,
                        _ => {
                            return Err(SimError::bad_request(
                                "Expected ',' or ')' in an 'in' list.",
                            ));
                        }
                    }
                }
                Test::In(items)
            }
            Some(t) => {
                return Err(SimError::bad_request(format!(
                    "Expected an operator after {} but found {}.",
                    field.display(),
                    describe(&t)
                )));
            }
            None => {
                return Err(SimError::bad_request(format!(
                    "Expected an operator after {} but the conditions ended.",
                    field.display()
                )));
            }
        };
        Ok(Expr::Leaf(Comparison {
            field,
            test,
            negate,
        }))
    }

    fn field(&self, name: &str) -> Result<Resolved, SimError> {
        let resolved = resolve(self.fields, name).ok_or_else(|| {
            SimError::bad_request(format!("Cannot find field '{name}' on {}.", self.entity))
        })?;
        if resolved.array.is_some() && self.flavor == Flavor::Conditions {
            return Err(SimError::bad_request(format!(
                "Field '{name}' is a collection; use childConditions to search it."
            )));
        }
        match resolved.kind {
            Kind::Ref(_) | Kind::RefList(_) | Kind::Objects(_) | Kind::Object(_) => {
                Err(SimError::bad_request(format!(
                    "Field '{name}' is an object; compare one of its fields, e.g. '{name}/id'."
                )))
            }
            _ => Ok(resolved),
        }
    }

    fn string_operand(&mut self, field: &Resolved, op: &str) -> Result<String, SimError> {
        if !matches!(field.kind, Kind::Str | Kind::Any) {
            return Err(SimError::bad_request(format!(
                "The '{op}' operator can only be used with string fields; {} is not a string.",
                field.display()
            )));
        }
        match self.next() {
            Some(Token::Str(s)) => Ok(s),
            Some(t) => Err(SimError::bad_request(format!(
                "Expected a string value, not {}. {LITERAL_HELP}",
                describe(&t)
            ))),
            None => Err(SimError::bad_request(format!(
                "Expected a string value. {LITERAL_HELP}"
            ))),
        }
    }

    /// Reads one literal and checks it against the field's type.
    fn literal(&mut self, field: &Resolved) -> Result<Lit, SimError> {
        let lit = match self.next() {
            Some(Token::Str(s)) => Lit::Str(s.to_lowercase()),
            Some(Token::Num(n)) => Lit::Num(n),
            Some(Token::DateTime(d)) => {
                let (secs, nanos) = clock::parse_literal(&d).ok_or_else(|| {
                    SimError::bad_request(format!("'{d}' is not a valid datetime. {LITERAL_HELP}"))
                })?;
                Lit::DateTime(secs, nanos)
            }
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("true") => Lit::Bool(true),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("false") => Lit::Bool(false),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("null") => Lit::Null,
            Some(Token::Word(w)) => {
                return Err(SimError::bad_request(format!(
                    "Unrecognized value '{w}'. {LITERAL_HELP}"
                )));
            }
            Some(t) => {
                return Err(SimError::bad_request(format!(
                    "Expected a value but found {}. {LITERAL_HELP}",
                    describe(&t)
                )));
            }
            None => {
                return Err(SimError::bad_request(format!(
                    "Expected a value. {LITERAL_HELP}"
                )));
            }
        };
        let expected = match field.kind {
            Kind::Str => "string",
            Kind::Int | Kind::Num => "numeric",
            Kind::Bool => "boolean",
            Kind::DateTime => "datetime",
            _ => return Ok(lit),
        };
        if lit == Lit::Null || lit.type_name() == expected {
            Ok(lit)
        } else {
            Err(SimError::bad_request(format!(
                "Expected a {expected} value, not a {}. {LITERAL_HELP}",
                lit.type_name()
            )))
        }
    }
}

fn check_op(field: &Resolved, op: CmpOp, lit: &Lit) -> Result<(), SimError> {
    let ordering = !matches!(op, CmpOp::Eq | CmpOp::Ne);
    if ordering && (*lit == Lit::Null || matches!(lit, Lit::Bool(_))) {
        return Err(SimError::bad_request(format!(
            "The '{}' operator cannot be used with {} values ({}).",
            op.symbol(),
            lit.type_name(),
            field.display()
        )));
    }
    Ok(())
}

/// A compiled `like` pattern: `%` and `*` match any run, `_` one character,
/// `[abc]`/`[^a]` a set (so `[[]` is a literal bracket, as DG documents).
#[derive(Debug, Clone)]
pub struct Pattern(Vec<PatItem>);

#[derive(Debug, Clone)]
enum PatItem {
    Any,
    One,
    Char(char),
    Set(Vec<char>, bool),
}

impl Pattern {
    pub fn compile(s: &str) -> Pattern {
        let chars: Vec<char> = s.to_lowercase().chars().collect();
        // next_close[k]: the index of the first `]` at or after k. Computed in one backward
        // pass, so finding the end of each set costs nothing; searching forward from every `[`
        // made a pattern of many `[` and no `]` quadratic.
        let mut next_close = vec![None; chars.len() + 1];
        for k in (0..chars.len()).rev() {
            next_close[k] = if chars[k] == ']' {
                Some(k)
            } else {
                next_close[k + 1]
            };
        }
        let mut items = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '%' | '*' => {
                    // A run of wildcards matches what one does.
                    if !matches!(items.last(), Some(PatItem::Any)) {
                        items.push(PatItem::Any);
                    }
                }
                '_' => items.push(PatItem::One),
                '[' => {
                    // A set runs to the next ']' after at least one member.
                    if let Some(end) = next_close.get(i + 2).copied().flatten() {
                        let mut body: Vec<char> = chars[i + 1..end].to_vec();
                        let negated = body.first() == Some(&'^') && body.len() > 1;
                        if negated {
                            body.remove(0);
                        }
                        items.push(PatItem::Set(body, negated));
                        i = end;
                    } else {
                        items.push(PatItem::Char('['));
                    }
                }
                c => items.push(PatItem::Char(c)),
            }
            i += 1;
        }
        Pattern(items)
    }

    /// Matches `text` case-insensitively without allocating: the classic
    /// wildcard algorithm, backtracking only to the last `%` seen. Runs of
    /// `%` are merged at compile time, so the work is bounded by
    /// pattern length x text length.
    pub fn matches(&self, text: &str) -> bool {
        let items = &self.0;
        let mut p = 0;
        let mut t = text.chars().flat_map(char::to_lowercase);
        // Pattern index after the last `%`, and the text position it resumes from.
        let mut star = None;
        loop {
            if matches!(items.get(p), Some(PatItem::Any)) {
                star = Some((p + 1, t.clone()));
                p += 1;
                continue;
            }
            let mut probe = t.clone();
            let Some(c) = probe.next() else {
                return items[p..].iter().all(|i| matches!(i, PatItem::Any));
            };
            let ok = match items.get(p) {
                Some(PatItem::One) => true,
                Some(PatItem::Char(pc)) => *pc == c,
                Some(PatItem::Set(set, negated)) => set.contains(&c) != *negated,
                Some(PatItem::Any) | None => false,
            };
            if ok {
                p += 1;
                t = probe;
                continue;
            }
            match &mut star {
                Some((sp, st)) => {
                    // Let the last `%` swallow one more character and retry.
                    if st.next().is_none() {
                        return false;
                    }
                    p = *sp;
                    t = st.clone();
                }
                None => return false,
            }
        }
    }
}

impl Expr {
    /// Evaluates against a stored record (`conditions`).
    pub fn matches(&self, record: &Value) -> bool {
        self.eval(record, None)
    }

    /// `childConditions`: true when one element of the referenced array
    /// satisfies the whole expression. Expressions spanning several arrays
    /// fall back to testing each comparison on its own.
    pub fn matches_child(&self, record: &Value) -> bool {
        let mut arrays = Vec::new();
        self.arrays(&mut arrays);
        arrays.dedup();
        match arrays.as_slice() {
            [(array_segments, _)] => match lookup(record, array_segments) {
                Some(Value::Array(items)) => items
                    .iter()
                    .any(|e| self.eval(record, Some((array_segments, e)))),
                _ => false,
            },
            _ => self.eval(record, None),
        }
    }

    /// `customFieldConditions`: one custom field must satisfy the expression.
    pub fn matches_custom(&self, record: &Value) -> bool {
        match record.get("customFields") {
            Some(Value::Array(items)) => items.iter().any(|cf| self.eval(cf, None)),
            _ => false,
        }
    }

    /// Whether every field the expression names is one of `paths` (then a record holding
    /// only those fields evaluates the same as the whole record).
    pub fn only_names(&self, paths: &[&[&str]]) -> bool {
        match self {
            Expr::And(items) | Expr::Or(items) => items.iter().all(|e| e.only_names(paths)),
            Expr::Leaf(c) => {
                c.field.array.is_none() && paths.contains(&c.field.segments.as_slice())
            }
        }
    }

    fn arrays<'a>(&'a self, out: &mut Vec<(&'a [&'static str], ())>) {
        match self {
            Expr::And(items) | Expr::Or(items) => {
                for e in items {
                    e.arrays(out);
                }
            }
            Expr::Leaf(c) => {
                if let Some(k) = c.field.array
                    && !out.iter().any(|(s, _)| *s == &c.field.segments[..=k])
                {
                    out.push((&c.field.segments[..=k], ()));
                }
            }
        }
    }

    fn eval(&self, record: &Value, binding: Option<(&[&'static str], &Value)>) -> bool {
        match self {
            Expr::And(items) => items.iter().all(|e| e.eval(record, binding)),
            Expr::Or(items) => items.iter().any(|e| e.eval(record, binding)),
            Expr::Leaf(c) => c.eval(record, binding),
        }
    }
}

fn lookup<'v>(mut v: &'v Value, segments: &[&str]) -> Option<&'v Value> {
    for s in segments {
        v = v.get(s)?;
    }
    Some(v)
}

impl Comparison {
    fn eval(&self, record: &Value, binding: Option<(&[&'static str], &Value)>) -> bool {
        let segs = &self.field.segments;
        match self.field.array {
            None => self.test_value(lookup(record, segs)),
            Some(k) => {
                let array_path = &segs[..=k];
                let rest = &segs[k + 1..];
                if let Some((bound, element)) = binding
                    && bound == array_path
                {
                    return self.test_value(lookup(element, rest));
                }
                match lookup(record, array_path) {
                    Some(Value::Array(items)) => {
                        items.iter().any(|e| self.test_value(lookup(e, rest)))
                    }
                    _ => false,
                }
            }
        }
    }

    fn test_value(&self, value: Option<&Value>) -> bool {
        let value = value.filter(|v| !v.is_null());
        let result = match (&self.test, value) {
            (Test::Cmp(CmpOp::Eq, Lit::Null), v) => return v.is_none() != self.negate,
            (Test::Cmp(CmpOp::Ne, Lit::Null), v) => return v.is_some() != self.negate,
            // SQL: any other comparison with NULL is unknown, which filters the row out.
            (_, None) => return false,
            (Test::Cmp(op, lit), Some(v)) => match compare(self.field.kind, v, lit) {
                Some(ord) => match op {
                    CmpOp::Eq => ord == Ordering::Equal,
                    CmpOp::Ne => ord != Ordering::Equal,
                    CmpOp::Lt => ord == Ordering::Less,
                    CmpOp::Le => ord != Ordering::Greater,
                    CmpOp::Gt => ord == Ordering::Greater,
                    CmpOp::Ge => ord != Ordering::Less,
                },
                // Incomparable (a custom field of another type): only `!=` holds.
                None => *op == CmpOp::Ne,
            },
            (Test::Contains(needle), Some(v)) => {
                text_of(v).is_some_and(|t| t.to_lowercase().contains(needle))
            }
            (Test::Like(p), Some(v)) => text_of(v).is_some_and(|t| p.matches(&t)),
            (Test::In(items), Some(v)) => items
                .iter()
                .any(|lit| compare(self.field.kind, v, lit) == Some(Ordering::Equal)),
        };
        result != self.negate
    }
}

fn text_of(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        _ => None,
    }
}

fn cmp_ci(a: &str, b_lower: &str) -> Ordering {
    a.chars().flat_map(char::to_lowercase).cmp(b_lower.chars())
}

/// Orders a stored value against a literal; `None` when they cannot be compared.
fn compare(kind: &Kind, v: &Value, lit: &Lit) -> Option<Ordering> {
    match (kind, lit) {
        (Kind::DateTime, Lit::DateTime(secs, nanos)) => {
            let stored = clock::parse_stored(v.as_str()?)?;
            Some((stored, 0).cmp(&(*secs, *nanos)))
        }
        (_, Lit::Str(s)) => match v {
            Value::String(t) => Some(cmp_ci(t, s)),
            // A custom field holding a number compared with a string.
            Value::Number(n) => Some(cmp_ci(&n.to_string(), s)),
            _ => None,
        },
        (_, Lit::Num(n)) => {
            let f = match v {
                Value::Number(x) => x.as_f64()?,
                Value::String(s) if matches!(kind, Kind::Any) => s.trim().parse::<f64>().ok()?,
                _ => return None,
            };
            f.partial_cmp(n)
        }
        (_, Lit::Bool(b)) => match v {
            Value::Bool(x) => Some(x.cmp(b)),
            Value::String(s) if matches!(kind, Kind::Any) => {
                s.parse::<bool>().ok().map(|x| x.cmp(b))
            }
            _ => None,
        },
        (_, Lit::DateTime(secs, nanos)) => {
            let stored = clock::parse_stored(v.as_str()?)?;
            Some((stored, 0).cmp(&(*secs, *nanos)))
        }
        (_, Lit::Null) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{COMPANY_REF, custom_fields, field, info, read_only};
    use serde_json::json;

    static CONTACT_ITEM: [Field; 2] = [
        field("value", Kind::Str),
        field("communicationType", Kind::Str),
    ];
    static FIELDS: [Field; 9] = [
        read_only("id", Kind::Int),
        field("firstName", Kind::Str),
        field("lastName", Kind::Str),
        field("inactiveFlag", Kind::Bool),
        field("score", Kind::Num),
        field("company", Kind::Ref(&COMPANY_REF)),
        field("communicationItems", Kind::Objects(&CONTACT_ITEM)),
        custom_fields(),
        info(),
    ];

    fn records() -> Vec<Value> {
        vec![
            json!({"id": 1, "firstName": "Fred", "lastName": "O'Neil", "inactiveFlag": false, "score": 1.5,
                   "company": {"id": 10, "identifier": "Acme", "name": "Acme Inc"},
                   "communicationItems": [{"value": "fred@acme.com", "communicationType": "Email"},
                                          {"value": "555-1234", "communicationType": "Phone"}],
                   "customFields": [{"id": 1, "caption": "TomNumber", "value": "42"}],
                   "_info": {"lastUpdated": "2026-01-01T00:00:00Z", "updatedBy": "apiuser"}}),
            json!({"id": 2, "firstName": "Ben", "inactiveFlag": true, "score": 3,
                   "company": {"id": 11, "identifier": "Globex", "name": "Globex [Corp]"},
                   "communicationItems": [{"value": "ben@globex.com", "communicationType": "Phone"}],
                   "customFields": [{"id": 1, "caption": "TomNumber"}],
                   "_info": {"lastUpdated": "2026-01-02T12:30:00Z", "updatedBy": "other"}}),
            json!({"id": 3, "firstName": "fredrick", "lastName": "Zed", "inactiveFlag": false,
                   "company": {"id": 10, "identifier": "Acme", "name": "Acme Inc"},
                   "_info": {"lastUpdated": "2026-01-03T00:00:00Z", "updatedBy": "apiuser"}}),
        ]
    }

    /// Parses `input` as conditions and returns the matching ids, or the error message.
    fn run(input: &str, flavor: Flavor) -> Result<Vec<i64>, String> {
        let expr = parse(input, &FIELDS, "contact", flavor).map_err(|e| e.to_string())?;
        Ok(records()
            .iter()
            .filter(|r| match flavor {
                Flavor::Conditions => expr.matches(r),
                Flavor::ChildConditions => expr.matches_child(r),
                Flavor::CustomFieldConditions => expr.matches_custom(r),
            })
            .filter_map(|r| r["id"].as_i64())
            .collect())
    }

    fn check(input: &str, expected: &[i64]) {
        assert_eq!(
            run(input, Flavor::Conditions),
            Ok(expected.to_vec()),
            "conditions: {input}"
        );
    }

    fn check_err(input: &str, message_part: &str) {
        match run(input, Flavor::Conditions) {
            Ok(ids) => panic!("{input}: expected an error, got {ids:?}"),
            Err(m) => assert!(m.contains(message_part), "{input}: {m}"),
        }
    }

    #[test]
    fn comparisons() {
        check("id = 1", &[1]);
        check("id != 1", &[2, 3]);
        check("id<2", &[1]);
        check("id <= 2", &[1, 2]);
        check("id > 1", &[2, 3]);
        check("id >= 3", &[3]);
        check("score > 2", &[2]);
        check("score = 1.5", &[1]);
        check("id = -1", &[]);
        check("firstName = \"fred\"", &[1]);
        check("firstName = 'FRED'", &[1]);
        check("lastName = 'O''Neil'", &[1]);
        check("lastName = \"O'Neil\"", &[1]);
        check("firstName < 'c'", &[2]);
        check("inactiveFlag = true", &[2]);
        check("InactiveFlag = False", &[1, 3]);
    }

    #[test]
    fn nulls_follow_sql() {
        check("lastName = null", &[2]);
        check("lastName != NULL", &[1, 3]);
        check("lastName != 'Zed'", &[1]);
        check("lastName not contains 'x'", &[1, 3]);
    }

    #[test]
    fn string_operators() {
        check("firstName contains 'RED'", &[1, 3]);
        check("firstName not contains 'red'", &[2]);
        check("firstName like 'Fred%'", &[1, 3]);
        check("firstName like 'fred*'", &[1, 3]);
        check("firstName like 'fre_'", &[1]);
        check("firstName not like 'fred%'", &[2]);
        check("company/name like '%[[]Corp]'", &[2]);
        check("company/name like '[ag]%'", &[1, 2, 3]);
        check("company/name like '[^a]%'", &[2]);
    }

    #[test]
    fn lists_paths_and_logic() {
        check("id in (1, 3)", &[1, 3]);
        check("id not in (1,3)", &[2]);
        check("firstName in ('ben', \"Fred\")", &[1, 2]);
        check("company/id = 10", &[1, 3]);
        check("Company/Identifier = 'globex'", &[2]);
        check("company/id = 10 and firstName = 'fred'", &[1]);
        check("id = 1 or id = 2 and inactiveFlag = false", &[1]);
        check("(id = 1 or id = 2) and inactiveFlag = false", &[1]);
        check("((id = 2)) OR (firstName like 'fred%' AND id > 1)", &[2, 3]);
    }

    #[test]
    fn last_updated_alias_and_datetime_forms() {
        check("lastUpdated > [2026-01-01T00:00:00Z]", &[2, 3]);
        check(
            "LastUpdated >= [2026-01-01T00:00:00Z] AND LastUpdated <= [2026-01-02T12:30:00Z]",
            &[1, 2],
        );
        check("_info/lastUpdated = [2026-01-02T12:30:00Z]", &[2]);
        check("lastUpdated > [2026-01-02T14:30:00+02:00]", &[3]);
        check("lastUpdated >= [2026-01-02T12:30:00.000001Z]", &[3]);
        check("lastUpdated > [2026-01-01T00:00:00.123456]", &[2, 3]);
        check("lastUpdated < [2026-01-02]", &[1]);
        check("updatedBy = 'apiuser'", &[1, 3]);
    }

    #[test]
    fn errors_name_the_problem() {
        check_err(
            "inactiveFlag = 1",
            "Expected a boolean value, not a numeric",
        );
        check_err("id = 'x'", "Expected a numeric value, not a string");
        check_err(
            "lastUpdated > '2020-01-01'",
            "Expected a datetime value, not a string",
        );
        check_err("firstName = fred", "Unrecognized value 'fred'");
        check_err("nope = 1", "Cannot find field 'nope' on contact");
        check_err("company = 1", "is an object");
        check_err("communicationItems/value = 'x'", "use childConditions");
        check_err("id = 1 and", "Unexpected end of conditions");
        check_err("(id = 1", "Expected ')'");
        check_err("id = 1)", "Unexpected ')'");
        check_err("id 1", "Expected an operator");
        check_err("firstName = 'abc", "Unterminated string");
        check_err("lastUpdated > [2020-01-01", "Unterminated datetime");
        check_err("lastUpdated > [yesterday]", "not a valid datetime");
        check_err("id contains 'x'", "only be used with string fields");
        check_err("id in 1", "Expected '('");
        check_err("id in (1 2)", "Expected ',' or ')'");
        check_err("inactiveFlag > true", "cannot be used with boolean");
        check_err("id = 1 # 2", "Unexpected character '#'");
        check_err("id = 12abc", "Invalid number");
        check_err("", "cannot be empty");
        check_err("   ", "cannot be empty");
    }

    #[test]
    fn deep_nesting_is_a_400_not_a_stack_overflow() {
        let ok = format!("{}id = 1{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        check(&ok, &[1]);
        let deep = format!("{}id = 1{}", "(".repeat(2000), ")".repeat(2000));
        check_err(&deep, "nested too deeply");
        let unclosed = "(".repeat(100_000);
        check_err(&unclosed, "");
    }

    #[test]
    fn long_and_chains_are_flat_and_conditions_are_capped() {
        // Just under the length cap: a flat chain of thousands of terms.
        let n = MAX_LEN / 12;
        let chain = vec!["id > 1"; n].join(" and ");
        assert!(chain.len() <= MAX_LEN);
        let expr = parse(&chain, &FIELDS, "contact", Flavor::Conditions).unwrap();
        match &expr {
            Expr::And(items) => assert_eq!(items.len(), n),
            other => panic!("expected a flat And, got {other:?}"),
        }
        check(&chain, &[2, 3]);
        let ors = vec!["id = 3"; n].join(" or ");
        check(&ors, &[3]);
        let too_long = vec!["id > 1"; 200_000].join(" and ");
        check_err(&too_long, "too long");
        for flavor in [Flavor::ChildConditions, Flavor::CustomFieldConditions] {
            let err = run(&too_long, flavor).unwrap_err();
            assert!(err.contains("too long"), "{err}");
        }
    }

    #[test]
    fn like_patterns_merge_wildcard_runs() {
        let p = Pattern::compile("a%%*%b**");
        assert_eq!(p.0.len(), 4, "{p:?}");
        assert!(p.matches("AxyzB"));
        assert!(p.matches("ab"));
        assert!(!p.matches("ba"));
        assert!(Pattern::compile("%a_c%").matches("xxABC"));
        assert!(!Pattern::compile("%a_c").matches("abcd"));
        assert!(Pattern::compile("%").matches(""));
        assert!(!Pattern::compile("_").matches(""));
        assert!(Pattern::compile("%ab%ab%").matches("xabyabz"));
        assert!(Pattern::compile("a%b%c").matches("aXbYbZc"));
        assert!(!Pattern::compile("a%b%c").matches("aXcYb"));
        // Case-folding that changes length (U+0130 lowercases to two chars).
        assert!(Pattern::compile("i%").matches("\u{130}"));
        // A run of 60,000 wildcards is one item, so matching costs the text's length, not
        // pattern x text steps.
        let pattern = Pattern::compile(&format!("{}x", "%".repeat(60_000)));
        assert_eq!(pattern.0.len(), 2, "{pattern:?}");
        assert!(!pattern.matches(&"a".repeat(20_000)));
    }

    #[test]
    fn like_patterns_of_unclosed_brackets_compile_in_one_pass() {
        // Found by fuzzing: each `[` searched the rest of the pattern for its `]`, so a megabyte
        // of `[` took about 5 * 10^11 steps. Now it is one pass (this test ran for hours before).
        let pattern = Pattern::compile(&"[".repeat(1 << 20));
        assert_eq!(pattern.0.len(), 1 << 20);
        assert!(pattern.matches(&"[".repeat(1 << 20)));
        // A closing bracket far away still ends the set that opens first.
        let pattern = Pattern::compile(&format!("[a{}]", "[".repeat(1 << 20)));
        assert_eq!(pattern.0.len(), 1, "{:?}", &pattern.0[..1]);
        assert!(Pattern::compile("[ab]]").matches("a]"));
        assert!(Pattern::compile("[]x]").matches("x"));
    }

    #[test]
    fn child_and_custom_field_conditions() {
        let child = |s| run(s, Flavor::ChildConditions);
        assert_eq!(
            child(
                "communicationItems/value like 'fred@%' AND communicationItems/communicationType = 'Email'"
            ),
            Ok(vec![1])
        );
        // Both comparisons must hold for the same element.
        assert_eq!(
            child(
                "communicationItems/value like 'fred@%' AND communicationItems/communicationType = 'Phone'"
            ),
            Ok(vec![])
        );
        assert_eq!(
            child("communicationItems/communicationType = 'Phone'"),
            Ok(vec![1, 2])
        );
        let custom = |s| run(s, Flavor::CustomFieldConditions);
        assert_eq!(
            custom("caption = 'TomNumber' AND value != null"),
            Ok(vec![1])
        );
        assert_eq!(custom("caption = 'TomNumber' AND value = 42"), Ok(vec![1]));
        assert_eq!(custom("caption = 'TomNumber'"), Ok(vec![1, 2]));
        assert!(custom("nope = 1").is_err());
    }
}

#[cfg(test)]
mod properties {
    //! Generated conditions never make the parser or the evaluator panic.

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::schema::{COMPANY_REF, custom_fields, field, info, read_only};

    static ITEM: [Field; 2] = [
        field("value", Kind::Str),
        field("communicationType", Kind::Str),
    ];
    static FIELDS: [Field; 8] = [
        read_only("id", Kind::Int),
        field("name", Kind::Str),
        field("flag", Kind::Bool),
        field("score", Kind::Num),
        field("company", Kind::Ref(&COMPANY_REF)),
        field("items", Kind::Objects(&ITEM)),
        custom_fields(),
        info(),
    ];

    fn records() -> Vec<Value> {
        vec![
            json!({"id": 1, "name": "Fred [x]", "flag": true, "score": 1.5,
                   "company": {"id": 2, "identifier": "A", "name": "Acme"},
                   "items": [{"value": "a@b", "communicationType": "Email"}],
                   "customFields": [{"id": 1, "caption": "C", "value": 42}],
                   "_info": {"lastUpdated": "2026-01-01T00:00:00Z"}}),
            json!({"id": 2, "name": null, "items": "not an array", "customFields": {},
                   "_info": {"lastUpdated": "not a date"}}),
            json!({}),
        ]
    }

    fn run(input: &str) {
        for flavor in [
            Flavor::Conditions,
            Flavor::ChildConditions,
            Flavor::CustomFieldConditions,
        ] {
            if let Ok(expr) = parse(input, &FIELDS, "contact", flavor) {
                for record in records() {
                    let _ = expr.matches(&record);
                    let _ = expr.matches_child(&record);
                    let _ = expr.matches_custom(&record);
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_text_never_panics(input in any::<String>()) {
            run(&input);
        }

        #[test]
        fn token_soup_never_panics(
            tokens in prop::collection::vec(
                prop_oneof![
                    Just("("), Just(")"), Just(","), Just("="), Just("!="), Just("<>"),
                    Just("<"), Just(">="), Just("and"), Just("OR"), Just("not"), Just("like"),
                    Just("contains"), Just("in"), Just("null"), Just("true"), Just("id"),
                    Just("name"), Just("company/name"), Just("items/value"), Just("caption"),
                    Just("value"), Just("lastUpdated"), Just("_info/lastUpdated"), Just("score"),
                    Just("flag"), Just("'x%_[a]'"), Just("\"y\\\""), Just("1"), Just("-2.5"),
                    Just("1.2.3"), Just("[2026-01-01T00:00:00Z]"), Just("[2026-13-01]"),
                    Just("["), Just("'"), Just("'[^]%'"),
                ],
                0..30,
            )
        ) {
            run(&tokens.join(" "));
        }

        #[test]
        fn like_patterns_never_panic(pattern in any::<String>(), text in any::<String>()) {
            let compiled = Pattern::compile(&pattern);
            let _ = compiled.matches(&text);
            // A pattern without wildcards or sets matches itself.
            if !pattern.contains(['%', '*', '_', '[']) {
                prop_assert!(compiled.matches(&pattern));
            }
        }
    }
}
