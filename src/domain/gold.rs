//! Gold candidates: candidates whose true verdict is known (injected fakes,
//! known pulsars), mixed into reviewers' queues to measure them. What is
//! parsed at the edge (the true verdict, the project's rate, the admin's
//! list of names) and the arithmetic of the figures `/ratings` shows.

use std::fmt;
use std::str::FromStr;

use crate::domain::text::shown;
use crate::domain::upload::{check_candidate_name, check_external_id};
use crate::domain::Verdict;

/// A gold candidate's true verdict: "unsure" is not a truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type, serde::Serialize)]
#[sqlx(type_name = "verdict", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum GoldVerdict {
    Real,
    NotReal,
}

impl GoldVerdict {
    pub const ALL: [GoldVerdict; 2] = [GoldVerdict::Real, GoldVerdict::NotReal];

    pub fn as_str(self) -> &'static str {
        self.verdict().as_str()
    }

    pub fn label(self) -> &'static str {
        self.verdict().label()
    }

    pub fn verdict(self) -> Verdict {
        match self {
            GoldVerdict::Real => Verdict::Real,
            GoldVerdict::NotReal => Verdict::NotReal,
        }
    }
}

impl FromStr for GoldVerdict {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "real" => Ok(GoldVerdict::Real),
            "not_real" => Ok(GoldVerdict::NotReal),
            other => Err(format!(
                "a true verdict is \"real\" or \"not_real\", not {}",
                shown(other)
            )),
        }
    }
}

impl fmt::Display for GoldVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// The largest share of "next" draws that may be gold: beyond it the
/// queue would be more test than work.
pub const MAX_RATE: f32 = 0.5;

/// The share of "next" draws that offer a gold candidate, 0 to
/// [`MAX_RATE`] (the database checks the same range).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GoldRate(f32);

impl GoldRate {
    pub fn new(v: f32) -> Result<Self, String> {
        if v.is_finite() && (0.0..=MAX_RATE).contains(&v) {
            Ok(Self(v))
        } else {
            Err(format!(
                "the gold rate is a share from 0 to {MAX_RATE} (0.1 is one draw in ten), not {v}"
            ))
        }
    }

    pub fn get(self) -> f32 {
        self.0
    }
}

impl FromStr for GoldRate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        // Rust's parser also takes "inf" and "NaN": `new` refuses those.
        let v: f32 = t.parse().map_err(|_| {
            format!(
                "the gold rate is a number from 0 to {MAX_RATE} (0.1 is one draw in ten), not {}",
                shown(t)
            )
        })?;
        Self::new(v)
    }
}

/// A uniform number in [0, 1) from the OS random source, for a queue draw:
/// a reviewer cannot predict or replay it.
pub fn roll() -> f64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("the OS random source works");
    // The top 53 bits, as a double's mantissa holds them exactly.
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

/// At most this many lines in one "mark as gold" form.
pub const MAX_LINES: usize = 5000;

/// One line of the admin's list: `observation/name`, or a name alone when
/// it is unique in the project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoldLine {
    pub observation: Option<String>,
    pub name: String,
    /// As typed (trimmed), for messages.
    pub text: String,
}

/// The non-blank lines of the list, each checked; every bad line is named,
/// and a repeated line counts once.
pub fn parse_lines(text: &str) -> Result<Vec<GoldLine>, Vec<String>> {
    let mut out: Vec<GoldLine> = Vec::new();
    let mut problems = Vec::new();
    let lines: Vec<(usize, &str)> = text
        .lines()
        .map(str::trim)
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .collect();
    if lines.is_empty() {
        return Err(vec![
            "List at least one candidate: observation/name, or a name alone, one a line".into(),
        ]);
    }
    if lines.len() > MAX_LINES {
        return Err(vec![format!(
            "At most {MAX_LINES} candidates at once, not {}",
            lines.len()
        )]);
    }
    for (i, line) in lines {
        // Neither an observation id nor a name can hold a '/', so the
        // first one divides them.
        let (observation, name) = match line.split_once('/') {
            Some((o, n)) => (Some(o.trim()), n.trim()),
            None => (None, line),
        };
        let mut bad =
            |why: String| problems.push(format!("Line {}: {}: {why}", i + 1, shown(line)));
        if let Some(o) = observation {
            if let Err(e) = check_external_id(o, 128) {
                bad(format!("the observation {e}"));
                continue;
            }
        }
        if let Err(e) = check_candidate_name(name) {
            bad(e);
            continue;
        }
        let parsed = GoldLine {
            observation: observation.map(str::to_string),
            name: name.to_string(),
            text: line.to_string(),
        };
        if !out
            .iter()
            .any(|l| l.observation == parsed.observation && l.name == parsed.name)
        {
            out.push(parsed);
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// One reviewer's current ratings of a project's gold candidates, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct GoldCounts {
    /// Gold candidates rated.
    pub rated: i64,
    /// Of those, truly real.
    pub real: i64,
    /// Truly real and called real.
    pub real_called_real: i64,
    /// Called real, whatever the truth.
    pub called_real: i64,
    /// Truly not real.
    pub not_real: i64,
    /// Truly not real and called real.
    pub not_real_called_real: i64,
}

fn share(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

impl GoldCounts {
    /// The share of truly real gold candidates called real; "unsure" and
    /// "not real" are both misses.
    pub fn recall(&self) -> Option<f64> {
        share(self.real_called_real, self.real)
    }

    /// The share of "real" verdicts on gold candidates that are right.
    pub fn precision(&self) -> Option<f64> {
        share(self.real_called_real, self.called_real)
    }

    /// The share of truly not-real gold candidates called real.
    pub fn false_positive_rate(&self) -> Option<f64> {
        share(self.not_real_called_real, self.not_real)
    }
}

/// The team's estimated completeness: the share of the project's other
/// (non-gold) candidates that anyone has rated, times the share of rated
/// gold-real candidates that the team found (most of their ratings real).
/// It assumes the real candidates among the rest are found as often as the
/// gold real ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Completeness {
    pub others: i64,
    pub others_rated: i64,
    pub gold_real_rated: i64,
    pub gold_real_found: i64,
}

impl Completeness {
    pub fn coverage(&self) -> Option<f64> {
        share(self.others_rated, self.others)
    }

    pub fn team_recall(&self) -> Option<f64> {
        share(self.gold_real_found, self.gold_real_rated)
    }

    pub fn estimate(&self) -> Option<f64> {
        Some(self.coverage()? * self.team_recall()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn true_verdicts_are_real_or_not_real_only() {
        assert_eq!("real".parse(), Ok(GoldVerdict::Real));
        assert_eq!("not_real".parse(), Ok(GoldVerdict::NotReal));
        for bad in ["unsure", "Real", "", "yes", "not real"] {
            assert!(bad.parse::<GoldVerdict>().is_err(), "{bad}");
        }
        assert_eq!(GoldVerdict::NotReal.verdict(), Verdict::NotReal);
    }

    #[test]
    fn rates_run_from_zero_to_one_half() {
        assert_eq!("0".parse::<GoldRate>().unwrap().get(), 0.0);
        assert_eq!(" 0.2 ".parse::<GoldRate>().unwrap().get(), 0.2);
        assert_eq!("0.5".parse::<GoldRate>().unwrap().get(), 0.5);
        for bad in ["0.51", "-0.1", "NaN", "inf", "", "20%", "1/5"] {
            let e = bad.parse::<GoldRate>().unwrap_err();
            assert!(e.contains("from 0 to 0.5"), "{bad}: {e}");
        }
    }

    #[test]
    fn rolls_are_uniform_in_zero_to_one() {
        let n = 20_000;
        let rolls: Vec<f64> = (0..n).map(|_| roll()).collect();
        assert!(rolls.iter().all(|r| (0.0..1.0).contains(r)));
        // Each tenth holds 2000 ± 42 (binomial); ±300 is seven of those.
        for tenth in 0..10 {
            let lo = tenth as f64 / 10.0;
            let k = rolls.iter().filter(|r| (lo..lo + 0.1).contains(*r)).count();
            assert!((1700..=2300).contains(&k), "{tenth}: {k}");
        }
    }

    #[test]
    fn lines_name_candidates_with_or_without_their_observation() {
        let lines = parse_lines("SB1/c01\n\n  c02  \nSB1/c01\r\nSB2 / c 3\n").unwrap();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines[0].observation.as_deref(), Some("SB1"));
        assert_eq!(lines[0].name, "c01");
        assert_eq!(lines[1].observation, None);
        assert_eq!(lines[1].name, "c02");
        assert_eq!(lines[2].observation.as_deref(), Some("SB2"));
        assert_eq!(lines[2].name, "c 3");
    }

    #[test]
    fn bad_lines_are_each_named_and_refuse_the_whole_list() {
        let e = parse_lines("c01\nSB 1/c02\nSB1/a/b\nSB1/\n").unwrap_err();
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].starts_with("Line 2: \"SB 1/c02\""), "{e:?}");
        assert!(e[1].starts_with("Line 3"), "{e:?}");
        assert!(e[2].starts_with("Line 4"), "{e:?}");
        assert!(parse_lines(" \n\n").is_err());
        let many = "c\n".repeat(MAX_LINES + 1);
        assert!(parse_lines(&many).unwrap_err()[0].contains("At most"));
    }

    #[test]
    fn figures_follow_their_definitions() {
        // 4 real (3 called real, 1 unsure), 2 not real (1 called real).
        let c = GoldCounts {
            rated: 6,
            real: 4,
            real_called_real: 3,
            called_real: 4,
            not_real: 2,
            not_real_called_real: 1,
        };
        assert_eq!(c.recall(), Some(0.75));
        assert_eq!(c.precision(), Some(0.75));
        assert_eq!(c.false_positive_rate(), Some(0.5));
        let none = GoldCounts::default();
        assert_eq!(
            (none.recall(), none.precision(), none.false_positive_rate()),
            (None, None, None)
        );
        let k = Completeness {
            others: 100,
            others_rated: 40,
            gold_real_rated: 5,
            gold_real_found: 4,
        };
        assert_eq!(k.coverage(), Some(0.4));
        assert_eq!(k.team_recall(), Some(0.8));
        assert!((k.estimate().unwrap() - 0.32).abs() < 1e-12);
        assert_eq!(Completeness::default().estimate(), None);
    }
}
