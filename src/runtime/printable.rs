//! Text from user files (category names, sample texts, labels) made safe for a terminal:
//! control characters would move the cursor, clear the screen or change colours, so the
//! plain-text outputs show them escaped (`\u{1b}`), and tabs and newlines as `\t`, `\n`
//! where one value must stay on one line. CSV and JSON quote them already.

use std::borrow::Cow;

/// `s` with every control character escaped; unchanged (and not copied) when it has none.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect())
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(printable("Python"), "Python");
        assert_eq!(printable("a\x1b[2Jb\tc\nd"), "a\\u{1b}[2Jb\\tc\\nd");
        assert_eq!(printable("naïve 😀"), "naïve 😀");
    }
}
