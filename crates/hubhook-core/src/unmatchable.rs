//! Poller `where` clauses that parse but can never match a record an event could come from.
//!
//! Such a resource polls every refresh interval, each poll finds nothing, and nothing tells the
//! user why no event ever comes: ConnectWise answers an empty page to `id < 0` exactly as it
//! does to a quiet resource. So an instance's create and change refuse a `where` that this
//! module can prove empty, naming the conditions that contradict each other.
//!
//! The proof has to be certain, not likely: a refusal of a clause that could match would keep a
//! working configuration out. So the rules are few, and each is a plain fact about the terms
//! joined by AND (a clause of alternatives is refused only when every alternative is):
//!
//! - **The poll's own window.** With `filterByUpdatedDate` (the default), a record is reported
//!   only if it was updated after the instant the URL's date placeholders are rendered with
//!   (the last poll's, or the Unix epoch while the resource has no cursor). A term that
//!   compares the updated date by `<`, `<=` or `=` with a placeholder's date that is that
//!   instant itself (to the minute, no later) keeps only records updated at or before it:
//!   every one is dropped. The date is read as the hub reads it for ConnectWise (a date
//!   without a zone is UTC), and must be the instant in both renderings:
//!   `'${gmtDate:yyyy-MM-dd}T23:59:59Z'` is later, and can match once the resource has a
//!   cursor; see `Context::outside_window` for the rest. The caller turns the rule off where
//!   the poll does not drop such records (no `filterByUpdatedDate`, dates read in another
//!   zone, a `firstRun` before the epoch). Placeholders are told from fixed values by
//!   rendering the URL at two instants that differ in every calendar field: the literals that
//!   differ are placeholders. The caller asks again with a later rendering in the other
//!   hemisphere's summer and refuses only if both answers do.
//! - **ConnectWise ids** are whole numbers from 1, so `id < 1`, `id <= 0`, `id = 0` and an
//!   `id in (...)` of such numbers match nothing.
//! - **Ranges on one field.** Number bounds that leave no number between them (`id > 5 and
//!   id < 3`, `id > 5 and id <= 5`), a number `=` outside the bounds or excluded by a `!=` or
//!   a `not in`, an `in (...)` with no number inside the bounds, two different number or
//!   boolean `=` values, the same text both `=` and `!=`, and `is null` beside `is not null`
//!   or beside a comparison with a value (which is never true of a missing value). Two
//!   different texts are never taken for different values (see `different`).
//!
//! Field names are compared without regard to case, as ConnectWise does. Numbers are compared
//! only when `f64` holds them exactly enough (see `number`); a term with another number, a
//! placeholder, a `like`, or text compared by `<` is left out of the proof, which can only
//! make the module refuse less. Checked when an instance is created or changed (for the
//! resources a change adds or alters), not when a stored one is read, so that instances
//! stored before this check keep polling.

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::ceql::{CompareOp, Expr, Literal, literal_instant};

/// A poller URL's `where` as rendered at one poll time.
#[derive(Clone, Copy)]
pub struct Rendering<'a> {
    pub clause: &'a Expr,
    /// The instant its date placeholders were rendered with.
    pub at: Timestamp,
}

/// Why the `where` clause can never match, or `None` when it may. `first` and `later` are the
/// same clause rendered at two poll times that differ in every calendar field (year to
/// millisecond, weekday, AM/PM), so that they differ exactly in the literals that
/// placeholders made. `updated_field` is the resource's `updatedDateField`
/// (`_info.lastUpdated`); `window` says whether a poll drops every record updated at or
/// before the instant it renders with (`filterByUpdatedDate`, dates read in UTC).
pub fn why_never(
    first: Rendering<'_>,
    later: Rendering<'_>,
    updated_field: &str,
    window: bool,
) -> Option<String> {
    let context = Context {
        updated_field,
        window,
        first_at: first.at,
        later_at: later.at,
    };
    context.never(first.clause, later.clause)
}

struct Context<'a> {
    updated_field: &'a str,
    window: bool,
    first_at: Timestamp,
    later_at: Timestamp,
}

/// A term of a conjunction as each rendering has it, with whether a placeholder made its
/// value (the two differ).
struct Term<'a> {
    expr: &'a Expr,
    later: &'a Expr,
    varies: bool,
}

impl Context<'_> {
    fn never(&self, first: &Expr, later: &Expr) -> Option<String> {
        match (first, later) {
            (Expr::Group(a), Expr::Group(b)) => self.never(a, b),
            (Expr::Or(a), Expr::Or(b)) if a.len() == b.len() => {
                let reasons = a
                    .iter()
                    .zip(b)
                    .map(|(a, b)| self.never(a, b))
                    .collect::<Option<Vec<_>>>()?;
                // Not `"; "`: the console splits a message into parts there.
                Some(format!("no alternative can: {}", reasons.join(", nor ")))
            }
            (Expr::Or(_), _) => None,
            _ => {
                let mut terms = Vec::new();
                if !conjunction(first, later, &mut terms) {
                    // The two renderings differ in shape: nothing is claimed.
                    return None;
                }
                // An alternative nested in the conjunction that can never hold makes it fail.
                for (a, b) in alternatives(first, later) {
                    if let Some(reason) = self.never(a, b) {
                        return Some(reason);
                    }
                }
                self.contradiction(&terms)
            }
        }
    }

    fn contradiction(&self, terms: &[Term<'_>]) -> Option<String> {
        for term in terms {
            if let Some(reason) = self.outside_window(term).or_else(|| no_such_id(term)) {
                return Some(reason);
            }
        }
        let mut fields: BTreeMap<String, Vec<&Term<'_>>> = BTreeMap::new();
        for term in terms.iter().filter(|term| !term.varies) {
            if let Some(field) = field_of(term.expr) {
                fields
                    .entry(field.to_ascii_lowercase())
                    .or_default()
                    .push(term);
            }
        }
        fields.values().find_map(|terms| one_field(terms))
    }

    /// A comparison of the updated date with a placeholder's date that keeps only records
    /// updated at or before the instant the poll renders with: in both renderings, the date
    /// (read as the hub reads it for ConnectWise) is that instant itself, to the minute and
    /// no later. Only then is it so at every instant: a placeholder of the poll's time in UTC
    /// (or with its offset written), at a precision of a minute or finer. A date the
    /// placeholder puts later (`'${gmtDate:yyyy-MM-dd}T23:59:59Z'`, a zone ahead of UTC
    /// written without its offset) can match once the resource has a cursor; one at a coarser
    /// precision (`'${dateTimeZone:Europe/Paris:yyyy-MM-dd}'`) or in a zone that is behind
    /// only sometimes may be later at some instant the renderings did not show; all are left
    /// alone.
    fn outside_window(&self, term: &Term<'_>) -> Option<String> {
        let (
            Expr::Compare {
                field,
                op,
                value: Literal::String(first),
            },
            Expr::Compare {
                value: Literal::String(later),
                ..
            },
        ) = (term.expr, term.later)
        else {
            return None;
        };
        let no_later = |text: &str, at: Timestamp| {
            literal_instant(text).is_some_and(|i| {
                i <= at && at.duration_since(i) < jiff::SignedDuration::from_mins(1)
            })
        };
        if !term.varies
            || !self.window
            || !matches!(op, CompareOp::Lt | CompareOp::Le | CompareOp::Eq)
            || !is_updated_field(field, self.updated_field)
            || !no_later(first, self.first_at)
            || !no_later(later, self.later_at)
        {
            return None;
        }
        Some(format!(
            "`{field} {} (the last poll's time)` keeps only records updated at or before the last poll, and with filterByUpdatedDate a poll reports only records updated after it; a poll's where bounds the updated date from below, as in lastUpdated>'${{gmtDate:yyyy-MM-dd'T'HH:mm:ss'Z'}}'",
            op.as_str()
        ))
    }
}

/// Whether `field` (as the `where` names it) is the record's updated date at `updated` (a
/// dotted path). ConnectWise's conditions also take `lastUpdated` for `_info/lastUpdated`.
fn is_updated_field(field: &str, updated: &str) -> bool {
    field.eq_ignore_ascii_case(updated)
        || (updated.eq_ignore_ascii_case("_info.lastUpdated")
            && field.eq_ignore_ascii_case("lastUpdated"))
}

/// Flattens the AND terms of `first` (and the same terms of `later`) into `terms`, through
/// parentheses; alternatives are left to [`alternatives`]. False when the two differ in shape.
fn conjunction<'a>(first: &'a Expr, later: &'a Expr, terms: &mut Vec<Term<'a>>) -> bool {
    match (first, later) {
        (Expr::And(a), Expr::And(b)) if a.len() == b.len() => {
            a.iter().zip(b).all(|(a, b)| conjunction(a, b, terms))
        }
        (Expr::Group(a), Expr::Group(b)) => conjunction(a, b, terms),
        (Expr::Or(_), Expr::Or(_)) => true,
        (a, b) if std::mem::discriminant(a) == std::mem::discriminant(b) => {
            terms.push(Term {
                expr: a,
                later: b,
                varies: a != b,
            });
            true
        }
        _ => false,
    }
}

/// The alternatives (OR clauses) among the AND terms of `first`, each with `later`'s.
fn alternatives<'a>(first: &'a Expr, later: &'a Expr) -> Vec<(&'a Expr, &'a Expr)> {
    match (first, later) {
        (Expr::And(a), Expr::And(b)) => a
            .iter()
            .zip(b)
            .flat_map(|(a, b)| alternatives(a, b))
            .collect(),
        (Expr::Group(a), Expr::Group(b)) => alternatives(a, b),
        (Expr::Or(_), Expr::Or(_)) => vec![(first, later)],
        _ => Vec::new(),
    }
}

fn field_of(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Compare { field, .. } | Expr::In { field, .. } | Expr::IsNull { field, .. } => {
            Some(field)
        }
        _ => None,
    }
}

/// `id` compared so that only numbers below 1 pass.
fn no_such_id(term: &Term<'_>) -> Option<String> {
    if term.varies {
        return None;
    }
    let below_one = match term.expr {
        Expr::Compare {
            field,
            op,
            value: Literal::Number(text),
        } if field.eq_ignore_ascii_case("id") => {
            let value = number(text)?;
            match op {
                CompareOp::Lt => value <= 1.0,
                CompareOp::Le => value < 1.0,
                CompareOp::Eq => value < 1.0 || value.fract() != 0.0,
                _ => false,
            }
        }
        Expr::In {
            field,
            values,
            negated: false,
        } if field.eq_ignore_ascii_case("id") => values.iter().all(|value| {
            matches!(value, Literal::Number(text)
                if number(text).is_some_and(|v| v < 1.0 || v.fract() != 0.0))
        }),
        _ => false,
    };
    below_one.then(|| {
        format!(
            "`{}` matches no record: ConnectWise ids are whole numbers from 1",
            ceql(term.expr)
        )
    })
}

/// The bounds the terms on one field put on its value, and whether they leave any.
fn one_field(terms: &[&Term<'_>]) -> Option<String> {
    let mut lower: Option<(f64, bool, &Expr)> = None; // (bound, inclusive, term)
    let mut upper: Option<(f64, bool, &Expr)> = None;
    let mut equal: Option<(&Literal, &Expr)> = None;
    let mut excluded: Vec<(&Literal, &Expr)> = Vec::new();
    let mut in_lists: Vec<(&[Literal], &Expr)> = Vec::new();
    let mut null: Option<&Expr> = None;
    let mut not_null: Option<&Expr> = None;
    let mut valued: Option<&Expr> = None;
    let clash =
        |a: &Expr, b: &Expr| Some(format!("`{}` and `{}` cannot both hold", ceql(a), ceql(b)));
    for term in terms {
        let expr = term.expr;
        match expr {
            Expr::IsNull { negated: false, .. } => null = Some(expr),
            Expr::IsNull { negated: true, .. } => not_null = Some(expr),
            Expr::In {
                values,
                negated: false,
                ..
            } => {
                valued = Some(expr);
                in_lists.push((values, expr));
            }
            Expr::In {
                values,
                negated: true,
                ..
            } => excluded.extend(values.iter().map(|value| (value, expr))),
            Expr::Compare { op, value, .. } => {
                if *value == Literal::Null {
                    continue;
                }
                match op {
                    CompareOp::Ne => excluded.push((value, expr)),
                    CompareOp::Eq => {
                        valued = Some(expr);
                        if let Some((earlier, other)) = equal {
                            if different(earlier, value) == Some(true) {
                                return clash(other, expr);
                            }
                        } else {
                            equal = Some((value, expr));
                        }
                    }
                    _ => {
                        valued = Some(expr);
                        let Literal::Number(text) = value else {
                            continue;
                        };
                        let Some(bound) = number(text) else {
                            continue;
                        };
                        let inclusive = matches!(op, CompareOp::Le | CompareOp::Ge);
                        let (slot, tighter): (_, fn(f64, f64) -> bool) =
                            if matches!(op, CompareOp::Gt | CompareOp::Ge) {
                                (&mut lower, |new, old| new > old)
                            } else {
                                (&mut upper, |new, old| new < old)
                            };
                        let replace = match slot {
                            None => true,
                            Some((old, old_inclusive, _)) => {
                                tighter(bound, *old)
                                    || (bound == *old && *old_inclusive && !inclusive)
                            }
                        };
                        if replace {
                            *slot = Some((bound, inclusive, expr));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if let (Some(a), Some(b)) = (null, not_null.or(valued)) {
        return clash(a, b);
    }
    if let (Some((low, low_inclusive, a)), Some((high, high_inclusive, b))) = (lower, upper)
        && (low > high || (low == high && !(low_inclusive && high_inclusive)))
    {
        return clash(a, b);
    }
    let within = |value: &Literal| -> Option<bool> {
        let Literal::Number(text) = value else {
            return None;
        };
        let value = number(text)?;
        let above =
            lower.is_none_or(|(low, inclusive, _)| value > low || (inclusive && value == low));
        let below =
            upper.is_none_or(|(high, inclusive, _)| value < high || (inclusive && value == high));
        Some(above && below)
    };
    if let Some((value, expr)) = equal {
        if let Literal::Number(text) = value
            && let Some(value) = number(text)
        {
            if let Some((low, inclusive, bound)) = lower
                && (value < low || (value == low && !inclusive))
            {
                return clash(bound, expr);
            }
            if let Some((high, inclusive, bound)) = upper
                && (value > high || (value == high && !inclusive))
            {
                return clash(bound, expr);
            }
        }
        if let Some((_, other)) = excluded
            .iter()
            .find(|(excluded, _)| different(excluded, value) == Some(false))
        {
            return clash(expr, other);
        }
    }
    for (values, expr) in in_lists {
        let possible = values.iter().any(|value| {
            within(value) != Some(false)
                && !excluded
                    .iter()
                    .any(|(excluded, _)| different(excluded, value) == Some(false))
                && equal.is_none_or(|(equal, _)| different(equal, value) != Some(true))
        });
        if !possible {
            // Bounds, an `=` and `!=`s may each remove some of its values: no one term is to
            // blame.
            return Some(format!(
                "no value of `{}` is left by the other terms on its field",
                ceql(expr)
            ));
        }
    }
    None
}

/// Whether two literals are certainly different values (`Some(true)`), certainly the same one
/// (`Some(false)`), or cannot be told apart here (`None`: a number too long, or two kinds).
///
/// Two texts are the same value when they are the same bytes, but different ones need not be
/// different values: ConnectWise's database compares text by a collation (case, accents and
/// trailing spaces aside: `'École' = 'école '`), the hub turns dates into instants
/// (`'…12:00:00Z'` and `'…13:00+01:00'` are one), and a text compared with a number field is
/// read as a number (`'07'` is 7). So texts are only ever certainly the same.
fn different(a: &Literal, b: &Literal) -> Option<bool> {
    match (a, b) {
        (Literal::Number(a), Literal::Number(b)) => Some(number(a)? != number(b)?),
        (Literal::String(a), Literal::String(b)) => (a == b).then_some(false),
        (Literal::Bool(a), Literal::Bool(b)) => Some(a != b),
        _ => None,
    }
}

/// A number literal's value when `f64` holds it exactly enough to compare: at most 15
/// significant digits, and a magnitude from 1e-300 to 1e15 (or zero, written as zero: a
/// `0.000…1` of 400 zeros reads as 0.0).
fn number(text: &str) -> Option<f64> {
    let digits = text
        .trim_start_matches(['-', '+'])
        .split(['e', 'E'])
        .next()?
        .chars()
        .filter(char::is_ascii_digit)
        .skip_while(|c| *c == '0')
        .count();
    let value: f64 = text.parse().ok()?;
    let magnitude = if value == 0.0 {
        digits == 0
    } else {
        (1e-300..1e15).contains(&value.abs())
    };
    (digits <= 15 && magnitude).then_some(value)
}

/// A term as CEQL writes it, for messages.
fn ceql(expr: &Expr) -> String {
    let literal = |value: &Literal| match value {
        // Cut, and escaped, so that a line break or a bidirectional control in the text shows
        // as such.
        Literal::String(text) => {
            let mut shown: String = text.chars().take(100).collect();
            if shown.len() < text.len() {
                shown.push('…');
            }
            format!("'{}'", crate::one_line::escaped(&shown.replace('\'', "''")))
        }
        Literal::Number(text) => text.clone(),
        Literal::Bool(value) => value.to_string(),
        Literal::Null => "null".to_string(),
    };
    match expr {
        Expr::Compare { field, op, value } => format!("{field}{}{}", op.as_str(), literal(value)),
        Expr::In {
            field,
            values,
            negated,
        } => format!(
            "{field} {}in ({})",
            if *negated { "not " } else { "" },
            values.iter().map(literal).collect::<Vec<_>>().join(", ")
        ),
        Expr::IsNull { field, negated } => {
            format!("{field} is {}null", if *negated { "not " } else { "" })
        }
        Expr::Like {
            field,
            pattern,
            negated,
        } => format!(
            "{field} {}like {}",
            if *negated { "not " } else { "" },
            literal(pattern)
        ),
        Expr::And(_) | Expr::Or(_) | Expr::Group(_) => "…".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ceql::parse_where;

    const UPDATED: &str = "_info.lastUpdated";
    const LATER: Timestamp = Timestamp::constant(1_638_023_872, 386_000_000);

    /// The reason `where` can never match, with filterByUpdatedDate. Placeholders: `$` is
    /// `${gmtDate}` (`'1970-01-01T00:00:00Z'` at the first poll, `'2021-11-27T14:37:52Z'`
    /// later), `{END}` is `'${gmtDate:yyyy-MM-dd}T23:59:59Z'`, `{TOKYO}` the poll's time in
    /// Tokyo written without its offset.
    fn never(clause: &str) -> Option<String> {
        let render = |at: &str, day: &str, tokyo: &str| {
            let text = clause
                .replace('$', &format!("'{at}'"))
                .replace("{END}", &format!("'{day}T23:59:59Z'"))
                .replace("{TOKYO}", &format!("'{tokyo}'"));
            parse_where(&text).unwrap()
        };
        let first = render("1970-01-01T00:00:00Z", "1970-01-01", "1970-01-01T09:00:00");
        let later = render("2021-11-27T14:37:52Z", "2021-11-27", "2021-11-27T23:37:52");
        why_never(
            Rendering {
                clause: &first,
                at: Timestamp::UNIX_EPOCH,
            },
            Rendering {
                clause: &later,
                at: LATER,
            },
            UPDATED,
            true,
        )
    }

    #[test]
    fn clauses_that_can_match_are_left_alone() {
        for clause in [
            "lastUpdated>$",
            "lastUpdated>=$",
            "_info.lastUpdated>$ and id>0",
            "lastUpdated>$ and id>=1",
            "lastUpdated>$ and id>100 and id<200",
            "lastUpdated>$ and id>5 and id<=6",
            "lastUpdated>$ and id>=5 and id<=5",
            "lastUpdated>$ and dateEntered<$",
            "lastUpdated>$ and (id<0 or id>10)",
            "lastUpdated>$ and name='Smith' and name='SMITH'",
            "lastUpdated>$ and name='a' and name!='b'",
            "lastUpdated>$ and name='a' and name='b'",
            "lastUpdated>$ and name='École' and name='école'",
            "lastUpdated>$ and name='a' and name='a '",
            "lastUpdated>$ and d='2025-12-08T12:09:59Z' and d='2025-12-08T13:09:59+01:00'",
            "lastUpdated>$ and d='2025-12-08T00:00Z' and d in ('2025-12-08T00:00:00.000Z')",
            "lastUpdated>$ and id='07' and id=7",
            "lastUpdated>=$ and lastUpdated<={END}",
            "lastUpdated>$ and lastUpdated<{TOKYO}",
            "lastUpdated>$ and level=0 and level!=0.0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000001",
            "lastUpdated>$ and id in (-1, 5) and id>0",
            "lastUpdated>$ and id=5 and id not in (4, 6)",
            "lastUpdated>$ and name is null and name!='x'",
            "lastUpdated>$ and id<9007199254740993 and id>9007199254740992",
            "lastUpdated>$ and id>'5' and id<'3'",
            "lastUpdated<'2020-01-01T00:00:00Z' and lastUpdated>$",
            "lastUpdated>$ and inactiveFlag=false",
            "lastUpdated>$ and type like 'A%' and type like 'B%'",
        ] {
            assert_eq!(never(clause), None, "{clause}");
        }
        // Without filterByUpdatedDate the poll's window is the user's to set.
        let first = parse_where("lastUpdated<'1970-01-01T00:00:00Z'").unwrap();
        let later = parse_where("lastUpdated<'2021-11-27T14:37:52Z'").unwrap();
        let at = |clause, at| Rendering { clause, at };
        let (first, later) = (at(&first, Timestamp::UNIX_EPOCH), at(&later, LATER));
        assert_eq!(why_never(first, later, UPDATED, false), None);
    }

    #[test]
    fn clauses_that_never_match_say_which_terms_clash() {
        for (clause, says) in [
            (
                "lastUpdated<$",
                "`lastUpdated < (the last poll's time)` keeps only",
            ),
            (
                "lastUpdated<=$ and id>3",
                "`lastUpdated <= (the last poll's time)`",
            ),
            ("(LASTUPDATED=$)", "`LASTUPDATED = (the last poll's time)`"),
            (
                "_info.lastUpdated<$",
                "`_info.lastUpdated < (the last poll's time)`",
            ),
            (
                "lastUpdated>$ and id<0",
                "`id<0` matches no record: ConnectWise ids",
            ),
            ("lastUpdated>$ and id<=0.5", "`id<=0.5` matches no record"),
            ("lastUpdated>$ and id=0", "`id=0` matches no record"),
            (
                "lastUpdated>$ and ID in (0, -4)",
                "`ID in (0, -4)` matches no record",
            ),
            (
                "lastUpdated>$ and id>5 and id<3",
                "`id>5` and `id<3` cannot both hold",
            ),
            (
                "lastUpdated>$ and (id>5 and (Id<=5))",
                "`id>5` and `Id<=5` cannot both hold",
            ),
            (
                "lastUpdated>$ and id>=5 and id<5",
                "`id>=5` and `id<5` cannot both hold",
            ),
            (
                "lastUpdated>$ and id=7 and id=8",
                "`id=7` and `id=8` cannot both hold",
            ),
            (
                "lastUpdated>$ and id=7 and id>10",
                "`id>10` and `id=7` cannot both hold",
            ),
            (
                "lastUpdated>$ and id=7 and id!=7.0",
                "`id=7` and `id!=7.0` cannot both hold",
            ),
            (
                "lastUpdated>$ and id=7 and id not in (6, 7)",
                "`id=7` and `id not in (6, 7)`",
            ),
            (
                "lastUpdated>$ and id in (1, 2) and id>2",
                "no value of `id in (1, 2)` is left by the other terms",
            ),
            (
                "lastUpdated>$ and name='a' and name!='a'",
                "`name='a'` and `name!='a'`",
            ),
            (
                "lastUpdated>$ and n='a\nb\u{202e}' and n!='a\nb\u{202e}'",
                "`n='a\\nb\\u{202e}'` and",
            ),
            (
                "lastUpdated>$ and f=true and f=false",
                "`f=true` and `f=false`",
            ),
            (
                "lastUpdated>$ and name is null and name is not null",
                "cannot both hold",
            ),
            (
                "lastUpdated>$ and name is null and name='x'",
                "`name is null` and `name='x'`",
            ),
            (
                "lastUpdated>$ and (id<0 or id=7 and id=8)",
                "no alternative can: `id<0`",
            ),
            (
                "(id<0 or lastUpdated<$) and lastUpdated>$",
                "no alternative can",
            ),
        ] {
            let reason = never(clause).unwrap_or_else(|| panic!("{clause}: not refused"));
            assert!(reason.contains(says), "{clause}: {reason}");
        }
    }

    #[test]
    fn long_numbers_are_left_out_of_the_proof() {
        assert_eq!(number("123456789012345"), Some(123_456_789_012_345.0));
        assert_eq!(number("1234567890123456"), None);
        assert_eq!(number("0.000000000000001"), Some(1e-15));
        assert_eq!(number("1e400"), None);
        assert_eq!(
            never("lastUpdated>$ and id>1234567890123456 and id<3"),
            None
        );
    }
}
