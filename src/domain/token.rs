//! What an API token may do: read (the read API and the exports), upload
//! (the upload API, if its user may upload), or both. A token may do at
//! least one of them; the database checks that too.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct TokenScopes {
    #[sqlx(rename = "scope_read")]
    read: bool,
    #[sqlx(rename = "scope_upload")]
    upload: bool,
}

impl TokenScopes {
    /// What every token made before scopes existed could do, and what
    /// `vetter token create` makes unless told otherwise.
    pub const UPLOAD: TokenScopes = TokenScopes {
        read: false,
        upload: true,
    };

    pub fn new(read: bool, upload: bool) -> Result<Self, String> {
        if read || upload {
            Ok(Self { read, upload })
        } else {
            Err("a token must be allowed to read, to upload, or both".into())
        }
    }

    /// A comma-separated list: `read`, `upload`, `read,upload`.
    pub fn parse_list(s: &str) -> Result<Self, String> {
        let (mut read, mut upload) = (false, false);
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "read" => read = true,
                "upload" => upload = true,
                other => {
                    return Err(format!(
                        "{other:?} is not a scope: use read, upload or read,upload"
                    ))
                }
            }
        }
        Self::new(read, upload)
    }

    pub fn read(self) -> bool {
        self.read
    }

    pub fn upload(self) -> bool {
        self.upload
    }
}

impl fmt::Display for TokenScopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match (self.read, self.upload) {
            (true, true) => "read, upload",
            (true, false) => "read",
            _ => "upload",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_may_do_something_and_lists_are_read() {
        assert!(TokenScopes::new(false, false).is_err());
        assert_eq!(
            TokenScopes::parse_list("upload").unwrap(),
            TokenScopes::UPLOAD
        );
        let both = TokenScopes::parse_list(" read , upload").unwrap();
        assert!(both.read() && both.upload());
        assert_eq!(both.to_string(), "read, upload");
        assert_eq!(TokenScopes::parse_list("read").unwrap().to_string(), "read");
        assert!(TokenScopes::parse_list("").is_err());
        assert!(TokenScopes::parse_list("write").is_err());
    }
}
