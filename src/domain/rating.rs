//! A reviewer's judgement of a candidate, parsed from the rating form.

use std::fmt;
use std::str::FromStr;

use crate::domain::TagId;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type, serde::Serialize, serde::Deserialize,
)]
#[sqlx(type_name = "verdict", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Real,
    NotReal,
    Unsure,
}

impl Verdict {
    pub const ALL: [Verdict; 3] = [Verdict::Real, Verdict::NotReal, Verdict::Unsure];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Real => "real",
            Verdict::NotReal => "not_real",
            Verdict::Unsure => "unsure",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Verdict::Real => "Real",
            Verdict::NotReal => "Not real",
            Verdict::Unsure => "Unsure",
        }
    }

    /// The key that submits this verdict on the rating page.
    pub const fn key(self) -> &'static str {
        match self {
            Verdict::Real => "y",
            Verdict::NotReal => "n",
            Verdict::Unsure => "u",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl FromStr for Verdict {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "real" => Ok(Verdict::Real),
            "not_real" => Ok(Verdict::NotReal),
            "unsure" => Ok(Verdict::Unsure),
            other => Err(format!(
                "{other:?} is not a verdict: use real, not_real or unsure"
            )),
        }
    }
}

/// The optional 1-5 score of projects that use one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Score(i16);

impl Score {
    pub fn new(v: i16) -> Result<Self, String> {
        if (1..=5).contains(&v) {
            Ok(Self(v))
        } else {
            Err(format!("a score is 1 to 5, not {v}"))
        }
    }
    pub fn get(self) -> i16 {
        self.0
    }
}

pub const MAX_NOTES_CHARS: usize = 10_000;

/// A rating as submitted, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct RatingInput {
    pub verdict: Verdict,
    pub tag_ids: Vec<TagId>,
    pub notes: String,
    pub score: Option<Score>,
}

impl RatingInput {
    /// `tags` are the ids the form sent, `allowed` the project's tags;
    /// `score_enabled` says whether the project asks for a score.
    pub fn parse(
        verdict: &str,
        tags: &[String],
        notes: &str,
        score: Option<&str>,
        allowed: &[TagId],
        score_enabled: bool,
    ) -> Result<Self, String> {
        let verdict: Verdict = verdict.parse()?;
        let mut tag_ids = Vec::with_capacity(tags.len());
        for t in tags {
            let id: TagId = t.parse().map_err(|_| format!("{t:?} is not a tag"))?;
            if !allowed.contains(&id) {
                return Err(format!("tag {id} does not belong to this project"));
            }
            if !tag_ids.contains(&id) {
                tag_ids.push(id);
            }
        }
        tag_ids.sort_unstable();
        let notes = notes.replace("\r\n", "\n").trim().to_string();
        if notes.chars().count() > MAX_NOTES_CHARS {
            return Err(format!("notes are limited to {MAX_NOTES_CHARS} characters"));
        }
        let score = match score.map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(_) if !score_enabled => return Err("this project does not use scores".into()),
            Some(s) => Some(Score::new(
                s.parse().map_err(|_| format!("{s:?} is not a score"))?,
            )?),
        };
        Ok(Self {
            verdict,
            tag_ids,
            notes,
            score,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rating_form_is_checked_against_the_project() {
        let r = RatingInput::parse(
            "real",
            &["3".into(), "1".into(), "3".into()],
            " hi \r\n",
            None,
            &[TagId(1), TagId(3)],
            false,
        )
        .unwrap();
        assert_eq!(r.tag_ids, vec![TagId(1), TagId(3)]);
        assert_eq!(r.notes, "hi");
        assert!(RatingInput::parse("maybe", &[], "", None, &[], false).is_err());
        assert!(RatingInput::parse("real", &["9".into()], "", None, &[TagId(1)], false).is_err());
        assert!(RatingInput::parse("real", &["x".into()], "", None, &[TagId(1)], false).is_err());
        assert!(RatingInput::parse("real", &[], "", Some("3"), &[], false).is_err());
        assert_eq!(
            RatingInput::parse("real", &[], "", Some("3"), &[], true)
                .unwrap()
                .score,
            Some(Score(3))
        );
        assert!(RatingInput::parse("real", &[], "", Some("6"), &[], true).is_err());
        assert!(RatingInput::parse("real", &[], &"x".repeat(10_001), None, &[], false).is_err());
    }
}
