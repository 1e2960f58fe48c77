//! Where the team stands on a candidate: open, settled one way, or disputed.
//!
//! The rule is the SQL function `consensus_state` (one place, used by every
//! filter and export): settled when real or not real has at least k
//! verdicts and leads the other by k; disputed when both have verdicts and
//! neither leads by k; open otherwise. Unsure verdicts count for neither.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Consensus {
    Open,
    SettledReal,
    SettledNotReal,
    Disputed,
}

impl Consensus {
    pub const ALL: [Consensus; 4] = [
        Consensus::Open,
        Consensus::SettledReal,
        Consensus::SettledNotReal,
        Consensus::Disputed,
    ];

    /// The rule, as `consensus_state` computes it in SQL (kept in step by a
    /// test against the database).
    pub fn of(n_real: i32, n_not_real: i32, k: i32) -> Self {
        if n_real >= k && n_real - n_not_real >= k {
            Consensus::SettledReal
        } else if n_not_real >= k && n_not_real - n_real >= k {
            Consensus::SettledNotReal
        } else if n_real > 0 && n_not_real > 0 {
            Consensus::Disputed
        } else {
            Consensus::Open
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Consensus::Open => "open",
            Consensus::SettledReal => "settled_real",
            Consensus::SettledNotReal => "settled_not_real",
            Consensus::Disputed => "disputed",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Consensus::Open => "open",
            Consensus::SettledReal => "settled: real",
            Consensus::SettledNotReal => "settled: not real",
            Consensus::Disputed => "disputed",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                format!("{s:?} is not a consensus state: use open, settled_real, settled_not_real or disputed")
            })
    }
}

impl fmt::Display for Consensus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// The settled-after-k rule of a project: 1 to 20 agreeing verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsensusK(i16);

impl ConsensusK {
    pub fn new(k: i64) -> Result<Self, String> {
        if (1..=20).contains(&k) {
            Ok(Self(k as i16))
        } else {
            Err(format!(
                "the verdicts that settle a candidate are 1 to 20, not {k}"
            ))
        }
    }
    pub fn get(self) -> i16 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_has_known_answers() {
        use Consensus::*;
        for (r, n, k, want) in [
            (0, 0, 2, Open),
            (1, 0, 2, Open),
            (2, 0, 2, SettledReal),
            (2, 1, 2, Disputed),
            (3, 1, 2, SettledReal),
            (0, 2, 2, SettledNotReal),
            (1, 1, 1, Disputed),
            (2, 1, 1, SettledReal),
            (1, 0, 1, SettledReal),
            (5, 4, 3, Disputed),
        ] {
            assert_eq!(Consensus::of(r, n, k), want, "{r} real, {n} not, k {k}");
        }
    }

    #[test]
    fn states_round_trip_and_k_is_bounded() {
        for c in Consensus::ALL {
            assert_eq!(Consensus::parse(c.as_str()).unwrap(), c);
        }
        assert!(Consensus::parse("settled").is_err());
        assert!(ConsensusK::new(0).is_err());
        assert!(ConsensusK::new(21).is_err());
        assert_eq!(ConsensusK::new(3).unwrap().get(), 3);
    }
}
