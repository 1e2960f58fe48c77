use std::fmt;
use std::str::FromStr;

/// A login name: 1-64 characters of letters, digits, `_`, `.` and `-`,
/// starting with a letter or digit. Compared case-insensitively by the database.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Username {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err("a username is required".into());
        }
        if s.len() > 64 {
            return Err("a username has at most 64 characters".into());
        }
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
        if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) || !s.chars().all(ok_char) {
            return Err(
                "a username uses letters, digits, '_', '.' and '-' and starts with a letter or digit"
                    .into(),
            );
        }
        Ok(Self(s.to_string()))
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Username {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names_and_trims() {
        for ok in ["alice", "a", "Bob.Smith", "r2-d2", "x_y", " padded "] {
            assert!(ok.parse::<Username>().is_ok(), "{ok}");
        }
        assert_eq!(" padded ".parse::<Username>().unwrap().as_str(), "padded");
    }

    #[test]
    fn rejects_what_cannot_be_a_login_name() {
        let long = "a".repeat(65);
        for bad in [
            "",
            "   ",
            ".hidden",
            "-x",
            "a b",
            "<script>",
            "ünï",
            long.as_str(),
        ] {
            assert!(bad.parse::<Username>().is_err(), "{bad}");
        }
    }
}
