//! The policy for repeated failed logins, kept apart from the storage of
//! failures so it can be tested without a database.
//!
//! Failures are counted per account-and-address pair and per address, never
//! per account alone: counting an account's failures from everywhere would
//! let anyone lock its owner out by guessing wrongly ten times.

use std::time::Duration;

use crate::config::LoginThrottle;
pub use crate::db::login_failures::Failures;

#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Go ahead, after waiting this long.
    Delay(Duration),
    /// Refuse without checking the password.
    Refuse,
}

pub fn decide(policy: &LoginThrottle, f: Failures) -> Decision {
    if f.pair >= policy.refuse_after || f.address >= policy.address_refuse_after {
        Decision::Refuse
    } else if f.pair >= policy.slow_after {
        let extra = f.pair - policy.slow_after + 1;
        Decision::Delay((policy.step * extra).min(Duration::from_secs(5)))
    } else {
        Decision::Allow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(n: u32) -> Failures {
        Failures {
            pair: n,
            address: n,
        }
    }

    #[test]
    fn few_failures_pass_then_slow_down_then_refuse() {
        let p = LoginThrottle::default();
        assert_eq!(decide(&p, pair(0)), Decision::Allow);
        assert_eq!(decide(&p, pair(p.slow_after - 1)), Decision::Allow);
        assert_eq!(decide(&p, pair(p.slow_after)), Decision::Delay(p.step));
        assert_eq!(
            decide(&p, pair(p.slow_after + 1)),
            Decision::Delay(p.step * 2)
        );
        assert_eq!(decide(&p, pair(p.refuse_after)), Decision::Refuse);
        assert_eq!(decide(&p, pair(1000)), Decision::Refuse);
    }

    #[test]
    fn a_busy_address_is_refused_only_far_above_the_pair_limit() {
        let p = LoginThrottle::default();
        let busy = |address| Failures { pair: 0, address };
        assert_eq!(decide(&p, busy(p.refuse_after * 5)), Decision::Allow);
        assert_eq!(decide(&p, busy(p.address_refuse_after)), Decision::Refuse);
    }

    #[test]
    fn the_delay_is_capped() {
        let p = LoginThrottle {
            refuse_after: 1000,
            ..LoginThrottle::default()
        };
        let f = Failures {
            pair: 999,
            address: 0,
        };
        assert_eq!(decide(&p, f), Decision::Delay(Duration::from_secs(5)));
    }
}
