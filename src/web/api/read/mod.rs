//! The read API under `/api/v1/`, for a token with the read scope: what
//! the token's user would see signed in, as JSON with cursor paging (and
//! the exports as files). See docs/read-api.md.
//!
//! Queries are read strictly: a parameter a route does not take, or one
//! given twice, is a 400 that names it (a typo in a filter must not quietly
//! return everything), and the query string is bounded.

pub mod candidates;
pub mod exports;
pub mod projects;
pub mod ratings;

use poem::Request;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::domain::Problem;
use crate::web::plumbing::error::AppError;

/// The longest query string the read API reads.
pub const MAX_QUERY_BYTES: usize = 8 * 1024;

/// A route's query, checked against the parameters it takes.
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn read(req: &Request, takes: impl Fn(&str) -> bool) -> Result<Self, AppError> {
        let raw = req.uri().query().unwrap_or("");
        if raw.len() > MAX_QUERY_BYTES {
            return Err(AppError::invalid(vec![Problem::new(
                "query",
                format!("the query string is limited to {MAX_QUERY_BYTES} bytes"),
            )]));
        }
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw).map_err(|e| {
            AppError::invalid(vec![Problem::new(
                "query",
                format!("not a readable query string: {e}"),
            )])
        })?;
        let mut problems = Vec::new();
        for (i, (k, _)) in pairs.iter().enumerate() {
            if !takes(k) {
                problems.push(Problem::new(
                    k.as_str(),
                    "this route takes no such parameter (see docs/read-api.md)",
                ));
            } else if pairs[..i].iter().any(|(earlier, _)| earlier == k) {
                problems.push(Problem::new(k.as_str(), "given more than once"));
            }
        }
        if problems.is_empty() {
            Ok(Self { pairs })
        } else {
            Err(AppError::invalid(problems))
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.trim().is_empty())
    }

    /// The pairs whose keys pass `keep`.
    pub fn pairs_where(&self, keep: impl Fn(&str) -> bool) -> Vec<(String, String)> {
        self.pairs
            .iter()
            .filter(|(k, _)| keep(k))
            .cloned()
            .collect()
    }
}

/// A metric value in JSON: a number, or for NaN and the infinities the
/// strings the upload API takes for them ("NaN", "Infinity", "-Infinity"),
/// which JSON numbers cannot hold.
pub fn number(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else if v.is_nan() {
        json!("NaN")
    } else if v > 0.0 {
        json!("Infinity")
    } else {
        json!("-Infinity")
    }
}

/// A time in JSON: RFC 3339, UTC.
pub fn timestamp(t: OffsetDateTime) -> Value {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .map_or(Value::Null, Value::String)
}

/// Problems from several checks, as one 400 if there are any.
pub fn refuse(problems: Vec<Problem>) -> Result<(), AppError> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(AppError::invalid(problems))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_values_are_spelled_as_the_upload_api_takes_them() {
        assert_eq!(number(1.5), json!(1.5));
        assert_eq!(number(f64::NAN), json!("NaN"));
        assert_eq!(number(f64::INFINITY), json!("Infinity"));
        assert_eq!(number(f64::NEG_INFINITY), json!("-Infinity"));
    }
}
