//! The first line against a flood of sign-ins, in memory: per address, a
//! few attempts at a time, and an answer the database has just given (this
//! pair or this address is refused) repeated for a minute without asking it
//! again. The database's count stays the authority (`db::login_failures`);
//! this only keeps a flood from spending connections and audit rows on
//! answers already known. Each app host keeps its own.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Attempts from one address checked at once; more wait their turn (a team
/// behind one NAT signing in together), and past `WAIT` are told to slow
/// down.
const IN_FLIGHT_PER_ADDRESS: u32 = 4;
/// How long an attempt waits for its address's turn.
const WAIT: Duration = Duration::from_secs(5);
/// Entries kept at most; beyond this the gate stops remembering (and lets
/// the database decide) rather than grow.
const MAX_ENTRIES: usize = 100_000;

#[derive(Default)]
pub struct LoginGate {
    inner: Mutex<State>,
}

#[derive(Default)]
struct State {
    in_flight: HashMap<IpAddr, u32>,
    /// (address, lower-case username or "" for the whole address) → until.
    refused: HashMap<(IpAddr, String), Instant>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Too many attempts from this address at this moment.
    Busy,
    /// Refused a moment ago by the database; still refused.
    Refused,
}

/// Held while an attempt is checked; frees its place when dropped.
pub struct Ticket {
    gate: Arc<LoginGate>,
    address: Option<IpAddr>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let Some(a) = self.address else { return };
        let mut s = self.gate.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = s.in_flight.get_mut(&a) {
            *n -= 1;
            if *n == 0 {
                s.in_flight.remove(&a);
            }
        }
    }
}

impl LoginGate {
    pub fn enter(
        self: &Arc<Self>,
        address: Option<IpAddr>,
        username: &str,
    ) -> Result<Ticket, Verdict> {
        let Some(a) = address else {
            return Ok(Ticket {
                gate: self.clone(),
                address: None,
            });
        };
        let mut s = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        for key in [(a, String::new()), (a, username.to_string())] {
            match s.refused.get(&key) {
                Some(&until) if until > now => return Err(Verdict::Refused),
                Some(_) => {
                    s.refused.remove(&key);
                }
                None => {}
            }
        }
        let n = s.in_flight.entry(a).or_insert(0);
        if *n >= IN_FLIGHT_PER_ADDRESS {
            return Err(Verdict::Busy);
        }
        *n += 1;
        Ok(Ticket {
            gate: self.clone(),
            address: Some(a),
        })
    }

    /// `enter`, waiting up to `WAIT` for a turn when the address is busy.
    pub async fn wait(
        self: &Arc<Self>,
        address: Option<IpAddr>,
        username: &str,
    ) -> Result<Ticket, Verdict> {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.enter(address, username) {
                Err(Verdict::Busy) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                other => return other,
            }
        }
    }

    /// The database refused this pair (`whole_address` false) or every
    /// attempt from this address: repeat that for a while without asking.
    pub fn remember_refusal(
        &self,
        address: Option<IpAddr>,
        username: &str,
        whole_address: bool,
        how_long: Duration,
    ) {
        let Some(a) = address else { return };
        let mut s = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if s.refused.len() >= MAX_ENTRIES {
            s.refused.retain(|_, until| *until > now);
            if s.refused.len() >= MAX_ENTRIES {
                return;
            }
        }
        let who = if whole_address { "" } else { username };
        s.refused.insert((a, who.to_string()), now + how_long);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn addr(n: u8) -> Option<IpAddr> {
        Some(IpAddr::from([192, 0, 2, n]))
    }

    #[test]
    fn a_few_attempts_per_address_at_a_time() {
        let gate = Arc::new(LoginGate::default());
        let held: Vec<_> = (0..IN_FLIGHT_PER_ADDRESS)
            .map(|_| gate.enter(addr(1), "alice").unwrap())
            .collect();
        assert_eq!(gate.enter(addr(1), "alice").err(), Some(Verdict::Busy));
        // Another address is not held up.
        assert!(gate.enter(addr(2), "alice").is_ok());
        drop(held);
        assert!(gate.enter(addr(1), "alice").is_ok());
    }

    #[tokio::test]
    async fn a_busy_address_waits_its_turn() {
        let gate = Arc::new(LoginGate::default());
        let mut held: Vec<_> = (0..IN_FLIGHT_PER_ADDRESS)
            .map(|_| gate.enter(addr(1), "alice").unwrap())
            .collect();
        let waiting = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.wait(addr(1), "bob").await.is_ok() })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        held.pop();
        assert!(waiting.await.unwrap());
    }

    #[test]
    fn a_refusal_is_repeated_for_its_pair_or_its_address() {
        let gate = Arc::new(LoginGate::default());
        gate.remember_refusal(addr(1), "alice", false, MINUTE);
        assert_eq!(gate.enter(addr(1), "alice").err(), Some(Verdict::Refused));
        assert!(gate.enter(addr(1), "bob").is_ok());
        assert!(gate.enter(addr(2), "alice").is_ok());
        gate.remember_refusal(addr(1), "bob", true, MINUTE);
        assert_eq!(gate.enter(addr(1), "carol").err(), Some(Verdict::Refused));
    }
}
