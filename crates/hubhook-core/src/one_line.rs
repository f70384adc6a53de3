//! What a one-line label (an instance name, a tag, a configuration key) may hold. Labels are
//! shown in lists, the console and log lines, and matched exactly (`tags[]`), so a character
//! that breaks a line, or that reorders how the text around it is displayed, is refused:
//! control characters (line breaks, tab, NUL, DEL), the line and paragraph separators, and
//! the bidirectional embedding, override and isolate controls (`invoice\u{202E}gpj.exe` shows
//! as `invoiceexe.jpg`). Other invisible characters are allowed inside a label (the zero-width
//! joiner inside emoji, the non-joiner Persian needs), but a label made only of them is as good
//! as blank.

/// Whether a one-line label may not hold `c`.
fn breaks_line(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// The first character a one-line label may not hold: its position (counted from 1) and the
/// character.
pub fn forbidden_char(text: &str) -> Option<(usize, char)> {
    text.chars()
        .enumerate()
        .find(|(_, c)| breaks_line(*c))
        .map(|(at, c)| (at + 1, c))
}

/// `text` with each character a label may not hold written as its escape (`\n`,
/// `\u{202e}`), so that text a caller sent can be shown on one line as it reads.
pub fn escaped(text: &str) -> String {
    text.chars()
        .map(|c| {
            if breaks_line(c) {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Whether a label shows anything: a character that is neither white space nor invisible.
/// Combining marks count as invisible here: they show only on a character before them, so a
/// label of marks alone is as blank as one of zero-width spaces.
pub fn has_visible_char(text: &str) -> bool {
    text.chars().any(|c| {
        !c.is_whitespace()
            && !c.is_control()
            && !matches!(
                c,
                '\u{00AD}'
                    | '\u{0300}'..='\u{036F}'
                    | '\u{115F}'
                    | '\u{1160}'
                    | '\u{180B}'..='\u{180F}'
                    | '\u{1AB0}'..='\u{1AFF}'
                    | '\u{1DC0}'..='\u{1DFF}'
                    | '\u{200B}'..='\u{200F}'
                    | '\u{202A}'..='\u{202E}'
                    | '\u{2060}'..='\u{2064}'
                    | '\u{2066}'..='\u{2069}'
                    | '\u{20D0}'..='\u{20FF}'
                    | '\u{2800}'
                    | '\u{3164}'
                    | '\u{FE00}'..='\u{FE0F}'
                    | '\u{FE20}'..='\u{FE2F}'
                    | '\u{FEFF}'
                    | '\u{FFA0}'
                    | '\u{FFF9}'..='\u{FFFB}'
                    | '\u{1D173}'..='\u{1D17A}'
                    | '\u{E0000}'..='\u{E007F}'
                    | '\u{E0100}'..='\u{E01EF}'
            )
    })
}

/// A message naming the character `forbidden_char` found in `field`.
pub fn forbidden_char_message(field: &str, at: usize, c: char) -> String {
    format!(
        "`{field}`: character {at} is `{}` (U+{:04X}); expected one line of text without control characters, line separators or bidirectional controls",
        c.escape_debug(),
        u32::from(c)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaking_and_reordering_characters_are_found() {
        assert_eq!(forbidden_char("plain name"), None);
        assert_eq!(forbidden_char("team \u{1F469}\u{200D}\u{1F4BB}"), None);
        assert_eq!(forbidden_char("a\nb"), Some((2, '\n')));
        assert_eq!(forbidden_char("x\u{7F}"), Some((2, '\u{7F}')));
        assert_eq!(forbidden_char("\u{2028}"), Some((1, '\u{2028}')));
        assert_eq!(
            forbidden_char("invoice\u{202E}gpj.exe"),
            Some((8, '\u{202E}'))
        );
        assert_eq!(forbidden_char("\u{2067}x"), Some((1, '\u{2067}')));
    }

    #[test]
    fn labels_of_only_invisible_characters_show_nothing() {
        assert!(has_visible_char("a\u{200B}"));
        assert!(has_visible_char("\u{1F469}\u{200D}\u{1F4BB}"));
        assert!(!has_visible_char("\u{200B}\u{200B}"));
        assert!(!has_visible_char("\u{FEFF}"));
        assert!(!has_visible_char("\u{00AD} \u{3164}"));
        assert!(!has_visible_char(""));
        // An outside tester's: Braille blank, marks alone, tag characters, a lone selector.
        for blank in [
            "\u{2800}",
            "\u{0301}\u{0301}",
            "\u{E0041}\u{E0042}",
            "\u{FE0F}",
        ] {
            assert!(!has_visible_char(blank), "{blank:?}");
        }
        assert!(has_visible_char("e\u{0301}"));
        assert!(has_visible_char("\u{2764}\u{FE0F}"));
    }
}
