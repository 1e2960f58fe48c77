//! Rules for the short texts people and pipelines give things (project,
//! tag and metric names, units), one rule per kind of field whichever path
//! it arrives by: the upload API, the upload client or an admin form.

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
}
