//! The policy for repeated failed logins, kept apart from the storage of
//! failures so it can be tested without a database.

use std::time::Duration;

use crate::config::LoginThrottle;

#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Go ahead, after waiting this long.
    Delay(Duration),
    /// Refuse without checking the password.
    Refuse,
}

/// `failures` is the larger of the recent failures for the username and for
/// the client address, so neither guessing one user's password from many
/// addresses nor many users' from one address gets through.
pub fn decide(policy: &LoginThrottle, failures: u32) -> Decision {
    if failures >= policy.refuse_after {
        Decision::Refuse
    } else if failures >= policy.slow_after {
        let extra = failures - policy.slow_after + 1;
        Decision::Delay((policy.step * extra).min(Duration::from_secs(5)))
    } else {
        Decision::Allow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_failures_pass_then_slow_down_then_refuse() {
        let p = LoginThrottle::default();
        assert_eq!(decide(&p, 0), Decision::Allow);
        assert_eq!(decide(&p, p.slow_after - 1), Decision::Allow);
        assert_eq!(decide(&p, p.slow_after), Decision::Delay(p.step));
        assert_eq!(decide(&p, p.slow_after + 1), Decision::Delay(p.step * 2));
        assert_eq!(decide(&p, p.refuse_after), Decision::Refuse);
        assert_eq!(decide(&p, 1000), Decision::Refuse);
    }

    #[test]
    fn the_delay_is_capped() {
        let p = LoginThrottle {
            refuse_after: 1000,
            ..LoginThrottle::default()
        };
        assert_eq!(decide(&p, 999), Decision::Delay(Duration::from_secs(5)));
    }
}
