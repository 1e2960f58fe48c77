//! A reviewer's queue: which candidates "next" draws from, in which order.

use serde::{Deserialize, Serialize};

use crate::domain::TagId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum QueueMode {
    /// Candidates I have not rated.
    #[default]
    UnratedByMe,
    /// Candidates nobody has rated.
    UnratedByAnyone,
    /// Candidates others rated and I have not: a second opinion. Only the
    /// count of ratings is used, which the blind rule does not hide.
    RatedByOthers,
    /// Candidates whose ratings disagree on the verdict, among those whose
    /// ratings the reviewer may see (`domain::visibility`): in a blind
    /// project, candidates they rated.
    Disagreements,
    /// Candidates whose consensus is disputed (`domain::consensus`) and that
    /// the reviewer has not rated: a deciding verdict. A project can keep
    /// this queue to its experts.
    Disputed,
}

impl QueueMode {
    pub const ALL: [QueueMode; 5] = [
        QueueMode::UnratedByMe,
        QueueMode::UnratedByAnyone,
        QueueMode::RatedByOthers,
        QueueMode::Disagreements,
        QueueMode::Disputed,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            QueueMode::UnratedByMe => "unrated_by_me",
            QueueMode::UnratedByAnyone => "unrated_by_anyone",
            QueueMode::RatedByOthers => "rated_by_others",
            QueueMode::Disagreements => "disagreements",
            QueueMode::Disputed => "disputed",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            QueueMode::UnratedByMe => "not rated by me",
            QueueMode::UnratedByAnyone => "not rated by anyone",
            QueueMode::RatedByOthers => "rated by others, not by me",
            QueueMode::Disagreements => "disagreements",
            QueueMode::Disputed => "disputed, not rated by me",
        }
    }
    pub fn parse(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not a queue mode"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum QueueOrder {
    #[default]
    Name,
    /// By a metric of the queue's project, NaN and missing values last.
    Metric {
        key: String,
        descending: bool,
    },
    FewestRatings,
    /// A shuffled order that stays the same for each reviewer.
    Shuffled,
    /// By the observation's start time (newest or oldest first; those
    /// without one last), then by name within an observation.
    Observed {
        newest: bool,
    },
    /// By the model's P(real), most likely real first; unscored candidates
    /// after the scored ones.
    Likely,
    /// By how close the model's P(real) is to one half: the candidates a
    /// verdict teaches the model most (active learning).
    Uncertain,
}

impl QueueOrder {
    /// The orders that walk the model's scores, which are per project.
    pub fn uses_scores(&self) -> bool {
        matches!(self, QueueOrder::Likely | QueueOrder::Uncertain)
    }
}

impl QueueOrder {
    /// The form value: `name`, `fewest`, `shuffled`, `metric:KEY:asc|desc`.
    pub fn as_param(&self) -> String {
        match self {
            QueueOrder::Name => "name".into(),
            QueueOrder::FewestRatings => "fewest".into(),
            QueueOrder::Shuffled => "shuffled".into(),
            QueueOrder::Observed { newest: true } => "newest".into(),
            QueueOrder::Observed { newest: false } => "oldest".into(),
            QueueOrder::Likely => "likely".into(),
            QueueOrder::Uncertain => "uncertain".into(),
            QueueOrder::Metric { key, descending } => {
                format!("metric:{key}:{}", if *descending { "desc" } else { "asc" })
            }
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "name" => Ok(QueueOrder::Name),
            "fewest" => Ok(QueueOrder::FewestRatings),
            "shuffled" => Ok(QueueOrder::Shuffled),
            "newest" => Ok(QueueOrder::Observed { newest: true }),
            "oldest" => Ok(QueueOrder::Observed { newest: false }),
            "likely" => Ok(QueueOrder::Likely),
            "uncertain" => Ok(QueueOrder::Uncertain),
            other => {
                let parts: Vec<&str> = other.split(':').collect();
                match parts.as_slice() {
                    ["metric", key, dir @ ("asc" | "desc")] => {
                        crate::domain::upload::check_key(key)?;
                        Ok(QueueOrder::Metric {
                            key: key.to_string(),
                            descending: *dir == "desc",
                        })
                    }
                    _ => Err(format!("{other:?} is not a queue order")),
                }
            }
        }
    }

    pub fn label(&self) -> String {
        match self {
            QueueOrder::Name => "by name".into(),
            QueueOrder::FewestRatings => "fewest ratings first".into(),
            QueueOrder::Shuffled => "shuffled".into(),
            QueueOrder::Observed { newest: true } => "newest observations first".into(),
            QueueOrder::Observed { newest: false } => "oldest observations first".into(),
            QueueOrder::Likely => "most likely real first (model score)".into(),
            QueueOrder::Uncertain => "most uncertain first (model score)".into(),
            QueueOrder::Metric { key, descending } => {
                format!(
                    "by {key}, {}",
                    if *descending {
                        "largest first"
                    } else {
                        "smallest first"
                    }
                )
            }
        }
    }
}

/// What a reviewer's "next" draws from. Stored as JSON per reviewer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct QueueView {
    /// Project slug; none means every project.
    pub project: Option<String>,
    /// Observation external id within the project.
    pub observation: Option<String>,
    /// Only candidates someone tagged with this tag (id).
    pub tag: Option<TagId>,
    pub order: QueueOrder,
    pub mode: QueueMode,
    /// A candidate-table query string (`domain::filter`): only candidates
    /// it matches ("rate these" on a saved view).
    #[serde(default)]
    pub filter: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_round_trip_through_their_form_values() {
        for o in [
            QueueOrder::Name,
            QueueOrder::FewestRatings,
            QueueOrder::Shuffled,
            QueueOrder::Observed { newest: true },
            QueueOrder::Observed { newest: false },
            QueueOrder::Likely,
            QueueOrder::Uncertain,
            QueueOrder::Metric {
                key: "snr".into(),
                descending: true,
            },
        ] {
            assert_eq!(QueueOrder::parse(&o.as_param()).unwrap(), o);
        }
        assert!(QueueOrder::parse("metric:Bad Key:asc").is_err());
        assert!(QueueOrder::parse("metric:snr:sideways").is_err());
        assert!(QueueOrder::parse("random").is_err());
    }

    #[test]
    fn a_stored_view_with_unknown_or_missing_fields_still_loads() {
        let v: QueueView = serde_json::from_str(r#"{"project":"vast","future_field":1}"#).unwrap();
        assert_eq!(v.project.as_deref(), Some("vast"));
        assert_eq!(v.mode, QueueMode::UnratedByMe);
    }
}
