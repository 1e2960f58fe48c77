//! The read API's paging: how many rows a page holds, and the cursors that
//! say where the next page starts. Cursors are opaque to clients (they
//! pass back what they were given); each kind has its own letter, so one
//! handed to the wrong list is refused rather than misread.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::domain::{CandidateId, ObservationId, Problem};

pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;
/// A cursor is a letter and at most two numbers.
const MAX_CURSOR_CHARS: usize = 48;

/// Rows per page, 1 to [`MAX_LIMIT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(u32);

impl Limit {
    pub fn parse(text: Option<&str>) -> Result<Self, Problem> {
        let Some(t) = text.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(Self(DEFAULT_LIMIT));
        };
        match t.parse::<u32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(Self(n)),
            _ => Err(Problem::new(
                "limit",
                format!("rows per page: a whole number from 1 to {MAX_LIMIT}"),
            )),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for Limit {
    fn default() -> Self {
        Self(DEFAULT_LIMIT)
    }
}

fn damaged() -> Problem {
    Problem::new(
        "cursor",
        "this cursor is not one this list gave out: pass back next_cursor as it came, or leave it out to start again",
    )
}

/// The numbers after `letter`, split at `.`.
fn numbers(text: &str, letter: char) -> Result<Vec<&str>, Problem> {
    if text.len() > MAX_CURSOR_CHARS {
        return Err(damaged());
    }
    let rest = text.strip_prefix(letter).ok_or_else(damaged)?;
    let parts: Vec<&str> = rest.split('.').collect();
    if parts
        .iter()
        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        Ok(parts)
    } else {
        Err(damaged())
    }
}

/// The one id after `letter`.
fn one_id(text: &str, letter: char) -> Result<i64, Problem> {
    match numbers(text, letter)?.as_slice() {
        [id] => id.parse().map_err(|_| damaged()),
        _ => Err(damaged()),
    }
}

/// A walk of candidates by id resumes after this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CandidateCursor(pub CandidateId);

impl CandidateCursor {
    pub fn parse(text: &str) -> Result<Self, Problem> {
        one_id(text, 'c').map(|id| Self(CandidateId(id)))
    }

    pub fn encode(self) -> String {
        format!("c{}", self.0 .0)
    }
}

/// A walk of observations, newest first, resumes before this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObservationCursor(pub ObservationId);

impl ObservationCursor {
    pub fn parse(text: &str) -> Result<Self, Problem> {
        one_id(text, 'o').map(|id| Self(ObservationId(id)))
    }

    pub fn encode(self) -> String {
        format!("o{}", self.0 .0)
    }
}

/// A position in the feed of rating changes: the writing transaction's id
/// and the change's own (`db::rating_changes`). The feed resumes after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChangeCursor {
    pub xid: u64,
    pub id: i64,
}

impl ChangeCursor {
    /// Before every change.
    pub const START: ChangeCursor = ChangeCursor { xid: 0, id: 0 };

    pub fn parse(text: &str) -> Result<Self, Problem> {
        match numbers(text, 'r')?.as_slice() {
            [xid, id] => Ok(Self {
                xid: xid.parse().map_err(|_| damaged())?,
                id: id.parse().map_err(|_| damaged())?,
            }),
            _ => Err(damaged()),
        }
    }

    pub fn encode(self) -> String {
        format!("r{}.{}", self.xid, self.id)
    }
}

/// `since`: an RFC 3339 time.
pub fn parse_since(text: &str) -> Result<OffsetDateTime, Problem> {
    OffsetDateTime::parse(text.trim(), &Rfc3339).map_err(|_| {
        Problem::new(
            "since",
            format!("{text:?} is not a time: use RFC 3339, such as 2024-05-01T12:00:00Z"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_default_and_are_bounded() {
        assert_eq!(Limit::parse(None).unwrap().get(), DEFAULT_LIMIT);
        assert_eq!(Limit::parse(Some(" ")).unwrap().get(), DEFAULT_LIMIT);
        assert_eq!(Limit::parse(Some("1000")).unwrap().get(), 1000);
        for bad in ["0", "1001", "-1", "ten", "1e3"] {
            assert_eq!(Limit::parse(Some(bad)).unwrap_err().field, "limit", "{bad}");
        }
    }

    #[test]
    fn cursors_round_trip_and_refuse_each_other() {
        let c = CandidateCursor(CandidateId(42));
        assert_eq!(CandidateCursor::parse(&c.encode()).unwrap(), c);
        let o = ObservationCursor(ObservationId(7));
        assert_eq!(ObservationCursor::parse(&o.encode()).unwrap(), o);
        let r = ChangeCursor {
            xid: 1 << 40,
            id: 9,
        };
        assert_eq!(ChangeCursor::parse(&r.encode()).unwrap(), r);
        assert!(CandidateCursor::parse(&o.encode()).is_err());
        assert!(ChangeCursor::parse(&c.encode()).is_err());
        for bad in [
            "",
            "c",
            "c-1",
            "c1.2",
            "r1",
            "r1.",
            "r.1",
            "c99999999999999999999",
            "c1 ",
            "r1.2.3",
        ] {
            assert!(
                CandidateCursor::parse(bad).is_err() && ChangeCursor::parse(bad).is_err(),
                "{bad}"
            );
        }
        assert!(ChangeCursor::START < r);
    }

    #[test]
    fn since_is_rfc3339() {
        assert!(parse_since("2024-05-01T12:00:00Z").is_ok());
        assert!(parse_since("2024-05-01T12:00:00+02:00").is_ok());
        assert_eq!(parse_since("yesterday").unwrap_err().field, "since");
    }
}
