//! The receiver's own rules for a block another host of the fleet made: what it takes, for how
//! long, and what it refuses. **Pure**; the time is an argument.
//!
//! A compromised or misconfigured host must be able to neither flood this host's sets nor block
//! for longer than this host allows, so every block from the fleet passes, in order:
//! its own (a host ignores its own messages), still due (one that has ended is dropped), the
//! per-origin cap (at most `max_per_minute` blocks from one origin in a minute), the maximum
//! duration (longer blocks are cut to it). The never-block list, the protected peers and the
//! budget are the engine's, and come after.

use std::collections::HashMap;
use std::time::Duration;

use ipnet::IpNet;

use super::message::HostName;
use crate::time::Timestamp;

/// The most origins whose minute is remembered (the fleet's members; past this, the one whose
/// minute began longest ago gives way).
pub const MAX_ORIGINS: usize = 4096;

/// What the gate lets through: the network, and the time this host blocks it for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Block `net` for `ttl` (the time left, cut to the maximum).
    Take {
        /// What to block.
        net: IpNet,
        /// For how long.
        ttl: Duration,
    },
    /// Not taken, and why.
    Refuse(Refusal),
}

/// Why a block from the fleet was not taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// This host's own, come back.
    Own,
    /// It has ended already.
    Ended,
    /// Its origin sent more than the cap in the last minute.
    RateCapped {
        /// The cap.
        per_minute: u32,
    },
}

/// The per-origin counts and the limits.
#[derive(Debug)]
pub struct Gate {
    own: HostName,
    max_duration: Duration,
    max_per_minute: u32,
    minutes: HashMap<HostName, (Timestamp, u32)>,
}

impl Gate {
    /// A gate for host `own`, with the limits of `[fleet]`.
    pub fn new(own: HostName, max_duration: Duration, max_per_minute: u32) -> Self {
        Gate {
            own,
            max_duration,
            max_per_minute,
            minutes: HashMap::new(),
        }
    }

    /// Judges a block of `net` from `origin`, ending at `until`, arriving at `now` (both wall
    /// clock).
    pub fn judge(
        &mut self,
        origin: &HostName,
        net: IpNet,
        until: Timestamp,
        now: Timestamp,
    ) -> Verdict {
        if *origin == self.own {
            return Verdict::Refuse(Refusal::Own);
        }
        let left = until.saturating_since(now);
        if left.is_zero() {
            return Verdict::Refuse(Refusal::Ended);
        }
        if !self.minutes.contains_key(origin) && self.minutes.len() >= MAX_ORIGINS {
            let oldest = self
                .minutes
                .iter()
                .min_by_key(|(_, (since, _))| *since)
                .map(|(host, _)| host.clone());
            if let Some(oldest) = oldest {
                self.minutes.remove(&oldest);
            }
        }
        let minute = self.minutes.entry(origin.clone()).or_insert((now, 0));
        if now.saturating_since(minute.0) >= Duration::from_secs(60) {
            *minute = (now, 0);
        }
        if minute.1 >= self.max_per_minute {
            return Verdict::Refuse(Refusal::RateCapped {
                per_minute: self.max_per_minute,
            });
        }
        minute.1 += 1;
        Verdict::Take {
            net,
            ttl: left.min(self.max_duration),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str) -> HostName {
        HostName::new(name).unwrap()
    }

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_micros(secs * 1_000_000)
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn a_block_is_taken_for_what_is_left_cut_to_the_maximum() {
        let mut gate = Gate::new(host("web-1"), Duration::from_secs(86_400), 10);
        assert_eq!(
            gate.judge(
                &host("web-3"),
                net("203.0.113.7/32"),
                at(1000 + 3600),
                at(1000 + 600)
            ),
            Verdict::Take {
                net: net("203.0.113.7/32"),
                ttl: Duration::from_secs(3000)
            }
        );
        // Seven days asked, one day given.
        assert_eq!(
            gate.judge(
                &host("web-3"),
                net("203.0.113.8/32"),
                at(1000 + 7 * 86_400),
                at(1000)
            ),
            Verdict::Take {
                net: net("203.0.113.8/32"),
                ttl: Duration::from_secs(86_400)
            }
        );
    }

    #[test]
    fn its_own_an_ended_one_and_a_flood_from_one_origin_are_refused() {
        let mut gate = Gate::new(host("web-1"), Duration::from_secs(86_400), 3);
        let target = net("203.0.113.7/32");
        assert_eq!(
            gate.judge(&host("web-1"), target, at(2000), at(1000)),
            Verdict::Refuse(Refusal::Own)
        );
        assert_eq!(
            gate.judge(&host("web-3"), target, at(1000), at(1000)),
            Verdict::Refuse(Refusal::Ended)
        );
        for i in 0..3 {
            assert!(matches!(
                gate.judge(&host("web-3"), target, at(5000), at(1000 + i)),
                Verdict::Take { .. }
            ));
        }
        assert_eq!(
            gate.judge(&host("web-3"), target, at(5000), at(1010)),
            Verdict::Refuse(Refusal::RateCapped { per_minute: 3 })
        );
        // Another origin has its own minute; the capped one gets a new one after 60 s.
        assert!(matches!(
            gate.judge(&host("web-4"), target, at(5000), at(1010)),
            Verdict::Take { .. }
        ));
        assert!(matches!(
            gate.judge(&host("web-3"), target, at(5000), at(1060)),
            Verdict::Take { .. }
        ));
    }

    #[test]
    fn the_origins_remembered_are_bounded() {
        let mut gate = Gate::new(host("web-1"), Duration::from_secs(60), 1);
        for i in 0..(MAX_ORIGINS as u64 + 10) {
            let origin = host(&format!("h{i}"));
            gate.judge(&origin, net("203.0.113.7/32"), at(i + 100), at(i));
        }
        assert_eq!(gate.minutes.len(), MAX_ORIGINS);
    }
}
