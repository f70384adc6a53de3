//! Instance names and tags are stored with HTML tags removed (as Cloud Elements did), so a
//! name shown in a console or a client's page cannot carry markup or scripts.
//!
//! A `<` starts a tag only when followed by a letter, `/`, `!` or `?` (as HTML parsers read
//! it), so text like `a < b` is kept; a tag that never closes runs to the end of the text, as
//! a browser would read it. Entities are left as written: they are text, not markup.

///
/// Stripping once can leave a tag behind: `<<b>img onerror=…>` loses `<b>` and becomes
/// `<img onerror=…>`. So it runs again until nothing changes, at most [`MAX_PASSES`] times:
/// text nested deeper than that (`<<<<…b>b>b>…` can need a pass per `<`, quadratic over a
/// 2 MB body) loses every `<` instead, which leaves no tag either.
pub fn strip_tags(text: &str) -> String {
    let mut text = strip_once(text);
    for _ in 1..MAX_PASSES {
        let again = strip_once(&text);
        if again == text {
            return text;
        }
        text = again;
    }
    text.replace('<', "")
}

/// Where (the character's index) `text` has a `<` that starts a tag with no `>` after it: a
/// tag that never closes runs to the end of the text, so stripping would remove the rest
/// (`Sales<Q3 report` would be stored as `Sales`). Callers refuse such text rather than cut it
/// without a word.
pub fn unfinished_tag(text: &str) -> Option<usize> {
    let last_close = text.rfind('>');
    let mut chars = text.char_indices().enumerate().peekable();
    while let Some((at, (byte, c))) = chars.next() {
        let starts_tag = c == '<'
            && chars.peek().is_some_and(|(_, (_, next))| {
                next.is_ascii_alphabetic() || matches!(next, '/' | '!' | '?')
            });
        if starts_tag && last_close.is_none_or(|close| close < byte) {
            return Some(at);
        }
    }
    None
}

/// Passes of [`strip_tags`] before it gives up on nesting.
const MAX_PASSES: usize = 8;

fn strip_once(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let starts_tag = c == '<'
            && chars
                .peek()
                .is_some_and(|next| next.is_ascii_alphabetic() || matches!(next, '/' | '!' | '?'));
        if starts_tag {
            for inner in chars.by_ref() {
                if inner == '>' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{strip_tags, unfinished_tag};

    #[test]
    fn finds_a_tag_that_never_closes() {
        for (input, expected) in [
            ("Sales<Q3 report", Some(5)),
            ("a<b", Some(1)),
            ("é<b", Some(1)),
            ("<b>bold</b> then <i", Some(17)),
            ("<b>bold</b>", None),
            ("a < b", None),
            ("a <3 b", None),
            ("John <john@example.com>", None),
            ("", None),
        ] {
            assert_eq!(unfinished_tag(input), expected, "{input}");
        }
    }

    #[test]
    fn removes_tags_and_keeps_text() {
        for (input, expected) in [
            ("plain", "plain"),
            ("<b>bold</b> name", "bold name"),
            ("<script>alert(1)</script>x", "alert(1)x"),
            ("a < b and c > d", "a < b and c > d"),
            ("x<img src=x onerror=alert(1)", "x"),
            ("<!-- c -->y", "y"),
            ("&lt;kept&gt;", "&lt;kept&gt;"),
            // A tag hidden inside another comes out whole after one pass: removed too.
            ("<<b>img src=x onerror=alert(1)>", ""),
            ("<<i>script>alert(2)<</i>/script>", "alert(2)"),
            ("<<<b>b>i>x", "x"),
            // Deeper than the passes allow: eight tags go, then every `<` left.
            (
                &format!("{}{}x", "<".repeat(20), "b>".repeat(20)),
                &format!("{}x", "b>".repeat(12)),
            ),
        ] {
            assert_eq!(strip_tags(input), expected, "{input}");
        }
    }
}
