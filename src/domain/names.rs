//! The names a pipeline gives in an upload URL: a project's slug, an
//! observation's id, a beam's name. Each is checked once, where the path is
//! read, and names its own field when it is refused.

use super::upload::{check_external_id, check_slug};
use super::Problem;

macro_rules! checked_name {
    ($(#[$doc:meta])* $name:ident, $field:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, Problem> {
                let check: fn(&str) -> Result<(), String> = $check;
                check(s)
                    .map(|()| Self(s.to_string()))
                    .map_err(|e| Problem::new($field, e))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

checked_name!(
    /// Lowercase, because it is typed into URLs and shell scripts.
    ProjectSlug,
    "project",
    check_slug
);
checked_name!(
    /// What the survey calls the observation (`SB50230`, `1341914000`).
    ObservationKey,
    "observation",
    |s| check_external_id(s, 128)
);
checked_name!(
    /// Unique within its observation (`beam00`).
    BeamName,
    "beam",
    |s| check_external_id(s, 64)
);

checked_name!(
    /// A reference catalogue's short name (`racs-low`, `psrcat`, `gaia.dr3`),
    /// typed in commands and table filters.
    CatalogueName,
    "catalogue",
    check_catalogue_name
);

fn check_catalogue_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || (i > 0 && matches!(b, b'_' | b'.' | b'-'))
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a catalogue name: 1 to 64 lowercase letters, digits, '_', '.' or '-', starting with a letter or digit"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_name_keeps_its_own_rule_and_field() {
        assert_eq!(
            ProjectSlug::parse("vast-demo").unwrap().as_str(),
            "vast-demo"
        );
        assert_eq!(ProjectSlug::parse("VAST").unwrap_err().field, "project");
        assert_eq!(
            ObservationKey::parse("SB50230").unwrap().to_string(),
            "SB50230"
        );
        assert_eq!(
            ObservationKey::parse("a/b").unwrap_err().field,
            "observation"
        );
        assert!(ObservationKey::parse(&"x".repeat(128)).is_ok());
        assert!(BeamName::parse(&"x".repeat(64)).is_ok());
        assert_eq!(BeamName::parse(&"x".repeat(65)).unwrap_err().field, "beam");
    }
}
