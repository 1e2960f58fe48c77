use std::fmt;

/// A password someone is choosing. Length is the rule that matters (NIST
/// 800-63B): at least 10 characters, and at most 1024 so hashing stays cheap.
#[derive(Clone)]
pub struct NewPassword(String);

impl NewPassword {
    pub const MIN_CHARS: usize = 10;
    pub const MAX_CHARS: usize = 1024;

    pub fn parse(s: &str, username: &str) -> Result<Self, String> {
        let n = s.chars().count();
        if n < Self::MIN_CHARS {
            return Err(format!(
                "the password must have at least {} characters",
                Self::MIN_CHARS
            ));
        }
        if n > Self::MAX_CHARS {
            return Err(format!(
                "the password must have at most {} characters",
                Self::MAX_CHARS
            ));
        }
        if s.eq_ignore_ascii_case(username) {
            return Err("the password must not be the username".into());
        }
        Ok(Self(s.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_bounds_and_username_are_checked() {
        assert!(NewPassword::parse("123456789", "bob").is_err());
        assert!(NewPassword::parse("1234567890", "bob").is_ok());
        assert!(NewPassword::parse(&"x".repeat(1025), "bob").is_err());
        assert!(NewPassword::parse("AliceAlice", "alicealice").is_err());
        assert!(!format!("{:?}", NewPassword::parse("1234567890", "b").unwrap()).contains("123"));
    }
}
