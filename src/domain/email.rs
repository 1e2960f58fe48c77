//! An e-mail address as vetter accepts one: for a daily summary, a
//! project's e-mail target, the From of every message. Checked once, so
//! that nothing that reaches an SMTP command or a mail header can carry a
//! line break, a bracket or a second address.

use std::fmt;

use crate::domain::text::shown;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// `local@domain`: printable ASCII in the local part (no spaces, quotes,
    /// angle brackets, commas or semicolons), a domain of at least two
    /// labels of letters, digits and hyphens, 254 characters at most.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let bad = || format!("{} is not an e-mail address like ann@example.org", shown(s));
        if s.len() < 3 || s.len() > 254 {
            return Err(bad());
        }
        let (local, domain) = s.rsplit_once('@').ok_or_else(bad)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && local.bytes().all(|b| {
                b.is_ascii_graphic()
                    && !matches!(
                        b,
                        b'<' | b'>'
                            | b'"'
                            | b','
                            | b';'
                            | b'@'
                            | b'\\'
                            | b'('
                            | b')'
                            | b'['
                            | b']'
                            | b':'
                    )
            })
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..");
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        let domain_ok = domain.contains('.') && domain.split('.').all(label_ok);
        if local_ok && domain_ok {
            Ok(Self(s.to_string()))
        } else {
            Err(bad())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Addresses one a line or separated by commas; every bad one named.
pub fn parse_list(text: &str, max: usize) -> Result<Vec<EmailAddress>, Vec<String>> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for part in text
        .split([',', '\n', ';'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        match EmailAddress::parse(part) {
            Ok(a) if !out.contains(&a) => out.push(a),
            Ok(_) => {}
            Err(e) => problems.push(e),
        }
    }
    if out.is_empty() && problems.is_empty() {
        problems.push("give at least one e-mail address".into());
    }
    if out.len() > max {
        problems.push(format!("at most {max} addresses, not {}", out.len()));
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_addresses_pass_and_header_tricks_do_not() {
        for ok in ["ann@example.org", "a.b+tag@mail.uni-x.edu.au", "x_y@a.io"] {
            assert_eq!(EmailAddress::parse(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "ann",
            "ann@",
            "@example.org",
            "ann@localhost",
            "a b@example.org",
            "ann@example.org\r\nBcc: eve@evil.org",
            "<ann@example.org>",
            "ann@exa_mple.org",
            "ann@example.org,bob@example.org",
            "ann..x@example.org",
            "ann@-x.org",
            "änn@example.org",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn lists_name_each_bad_address() {
        let l = parse_list("ann@example.org, bob@example.org\nann@example.org", 5).unwrap();
        assert_eq!(l.len(), 2);
        let e = parse_list("ann@example.org, nope, also nope", 5).unwrap_err();
        assert_eq!(e.len(), 2);
        assert!(parse_list("  ", 5).is_err());
        assert!(parse_list("a@x.org,b@x.org", 1).is_err());
    }
}
