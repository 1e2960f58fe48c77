//! Rules for the short texts people and pipelines give things (project,
//! tag and metric names, units), one rule per kind of field whichever path
//! it arrives by: the upload API, the upload client or an admin form; and
//! how any text is written into XML, for the VOTable export and the SVG
//! charts alike (the chart engine must not depend on the web layer).

/// A name shown on one line: 1 to `max` characters once trimmed, and no
/// line breaks or other control characters (they would break the table, the
/// CSV export and every `<select>` the name appears in).
pub fn one_line(s: &str, max: usize) -> Result<(), String> {
    let n = s.trim().chars().count();
    if n == 0 || n > max {
        return Err(format!("has 1 to {max} characters"));
    }
    if s.chars().any(char::is_control) {
        return Err("is one line of text: no line breaks or control characters".into());
    }
    Ok(())
}

/// A value echoed in a message, quoted and cut short: a refused 1 MB name
/// must not come back as a 1 MB message.
pub fn shown(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() <= MAX {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head:?}… ({} characters)", s.chars().count())
    }
}

/// Text for XML content or attribute values: the five special characters
/// escaped, carriage returns kept as a reference (a parser would turn a
/// raw one into a newline), and characters XML 1.0 cannot hold at all
/// replaced by U+FFFD.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_xml_escaped(&mut out, s);
    out
}

/// [`xml_escape`] onto the end of `out`, for writers that build a document
/// in one buffer.
pub fn push_xml_escaped(out: &mut String, s: &str) {
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' => out.push(ch),
            c if !xml_char(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

/// Whether XML 1.0 can hold the character at all, escaped or not.
pub fn xml_char(c: char) -> bool {
    !((c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') || c == '\u{FFFE}' || c == '\u{FFFF}')
}

/// `s` with every character XML 1.0 cannot hold replaced by U+FFFD, for
/// writers that escape the rest themselves (quick-xml).
pub fn xml_clean(s: &str) -> std::borrow::Cow<'_, str> {
    if s.chars().all(xml_char) {
        std::borrow::Cow::Borrowed(s)
    } else {
        std::borrow::Cow::Owned(
            s.chars()
                .map(|c| if xml_char(c) { c } else { '\u{FFFD}' })
                .collect(),
        )
    }
}

/// A name made safe as a downloaded file's name (and inside a quoted
/// `Content-Disposition` filename): letters, digits and `-_.+` kept, anything
/// else `_`.
pub fn file_stem(name: &str) -> String {
    name.chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.' | '+') {
                ch
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_names() {
        assert!(one_line("Known pulsar", 64).is_ok());
        assert!(one_line("   ", 64).is_err());
        assert!(one_line("a\r\nb", 64).unwrap_err().contains("one line"));
        assert!(one_line(&"x".repeat(65), 64).is_err());
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        assert_eq!(shown("J1"), "\"J1\"");
        let m = shown(&"x".repeat(1_000_000));
        assert!(m.len() < 100 && m.ends_with("(1000000 characters)"), "{m}");
    }

    #[test]
    fn xml_text_is_escaped_and_kept_well_formed() {
        assert_eq!(
            xml_escape("a<b>&\"c\"'d'"),
            "a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;"
        );
        assert_eq!(xml_escape("line\r\nnext\ttab"), "line&#13;\nnext\ttab");
        assert_eq!(xml_escape("bell\u{7}"), "bell\u{FFFD}");
        assert_eq!(xml_escape("J1234−45 ✓"), "J1234−45 ✓");
        assert_eq!(
            xml_clean("a\u{0}b\u{1F}\tc\u{FFFF}"),
            "a\u{FFFD}b\u{FFFD}\tc\u{FFFD}"
        );
        assert!(matches!(xml_clean("plain"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn file_stems_keep_only_safe_characters() {
        assert_eq!(file_stem("J1234-45+6.5_x"), "J1234-45+6.5_x");
        assert_eq!(file_stem("a/b \"c\"\r;é"), "a_b__c____");
    }
}
