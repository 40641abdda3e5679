//! The responder: a detection in, a decision out. **Pure**; time is an argument.
//!
//! Order: the never-block list first (an aggregated prefix that covers a never-block address is
//! narrowed to the one offending address); a source already blocked gets nothing new; past
//! `max-blocks` active blocks a detection is refused (so a flood of spoofed sources cannot
//! fill the kernel set or this table); anything else is blocked for the configured duration. The shell carries the decision out, or only logs
//! it in dry-run mode and in replays.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

use crate::config::RespondConfig;
use crate::detect::Detection;
use crate::ignore::IgnoreList;
use crate::time::Timestamp;

/// What the firewall is asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Block `net` for `ttl` (refreshing an existing block).
    Block {
        /// The address (host prefix) or network.
        net: IpNet,
        /// How long; never zero.
        ttl: Duration,
    },
    /// Lift the block of `net` (fine if there is none).
    Unblock {
        /// The address or network.
        net: IpNet,
    },
}

/// What to do about a detection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Block `net` for `ttl`.
    Block {
        /// The address (host prefix) or network to block.
        net: IpNet,
        /// How long.
        ttl: Duration,
    },
    /// `net` is blocked already, for `remaining` more.
    AlreadyBlocked {
        /// The blocked address or network.
        net: IpNet,
        /// Time left on the block.
        remaining: Duration,
    },
    /// `max-blocks` blocks are active: refused, and logged.
    OverBudget {
        /// What would have been blocked.
        net: IpNet,
        /// The limit.
        max_blocks: usize,
    },
    /// The address is on the never-block list.
    NeverBlock {
        /// The address.
        addr: IpAddr,
        /// Why (the first matching entry's reason).
        reason: String,
    },
}

/// Decides what to do with detections, remembering what it blocked until it expires.
#[derive(Debug)]
pub struct Responder {
    block_for: Duration,
    max_blocks: usize,
    blocked: HashMap<IpNet, Timestamp>,
    next_sweep: Timestamp,
}

impl Responder {
    /// A responder with nothing blocked.
    pub fn new(config: &RespondConfig) -> Self {
        Responder {
            block_for: config.block_for,
            max_blocks: config.max_blocks,
            blocked: HashMap::new(),
            next_sweep: Timestamp::ZERO,
        }
    }

    /// Decides about `detection` at `now`.
    pub fn on_detection(
        &mut self,
        detection: &Detection,
        ignore: &IgnoreList,
        now: Timestamp,
    ) -> Decision {
        if now >= self.next_sweep {
            self.blocked.retain(|_, until| *until > now);
            self.next_sweep = now.saturating_add(Duration::from_secs(1));
        }
        if let Some(entry) = ignore.why(detection.addr).next() {
            return Decision::NeverBlock {
                addr: detection.addr,
                reason: entry.reason.to_string(),
            };
        }
        let net = if ignore.overlaps(detection.source) {
            IpNet::from(detection.addr)
        } else {
            detection.source
        };
        if let Some(until) = self.blocked.get(&net).filter(|until| **until > now) {
            return Decision::AlreadyBlocked {
                net,
                remaining: until.saturating_since(now),
            };
        }
        if self.blocked.len() >= self.max_blocks {
            // Expired entries may still be counted: sweep before refusing.
            self.blocked.retain(|_, until| *until > now);
            if self.blocked.len() >= self.max_blocks {
                return Decision::OverBudget {
                    net,
                    max_blocks: self.max_blocks,
                };
            }
        }
        self.blocked.insert(net, now.saturating_add(self.block_for));
        Decision::Block {
            net,
            ttl: self.block_for,
        }
    }

    /// How many blocks are active (as of the last decision).
    pub fn active(&self) -> usize {
        self.blocked.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::ScanKinds;
    use crate::ignore::{Entry, Reason};
    use crate::wire::ProbeKind;

    fn detection(source: &str, addr: &str) -> Detection {
        Detection {
            source: source.parse().unwrap(),
            addr: addr.parse().unwrap(),
            kinds: ScanKinds::of(ProbeKind::Syn),
            ports: Vec::new(),
            first_seen: Timestamp::ZERO,
            last_seen: Timestamp::ZERO,
            packets: 1,
            score: 21,
        }
    }

    fn responder() -> Responder {
        Responder::new(&RespondConfig {
            block_for: Duration::from_secs(3600),
            dry_run: false,
            max_blocks: 2,
        })
    }

    fn ignore(nets: &[&str]) -> IgnoreList {
        IgnoreList::new(
            nets.iter()
                .map(|n| Entry {
                    net: n.parse().unwrap(),
                    reason: Reason::Gateway("eth0".into()),
                })
                .collect(),
        )
    }

    fn t(s: u64) -> Timestamp {
        Timestamp::from_micros(s * 1_000_000)
    }

    #[test]
    fn blocks_once_then_reports_already_blocked_until_expiry() {
        let mut r = responder();
        let d = detection("203.0.113.7/32", "203.0.113.7");
        let none = ignore(&[]);
        assert_eq!(
            r.on_detection(&d, &none, t(10)),
            Decision::Block {
                net: "203.0.113.7/32".parse().unwrap(),
                ttl: Duration::from_secs(3600)
            }
        );
        assert_eq!(
            r.on_detection(&d, &none, t(70)),
            Decision::AlreadyBlocked {
                net: "203.0.113.7/32".parse().unwrap(),
                remaining: Duration::from_secs(3540)
            }
        );
        assert!(matches!(
            r.on_detection(&d, &none, t(3610)),
            Decision::Block { .. }
        ));
    }

    #[test]
    fn past_max_blocks_detections_are_refused_until_blocks_expire() {
        let mut r = responder();
        let none = ignore(&[]);
        for (i, addr) in ["203.0.113.1", "203.0.113.2"].into_iter().enumerate() {
            let d = detection(&format!("{addr}/32"), addr);
            assert!(matches!(
                r.on_detection(&d, &none, t(i as u64)),
                Decision::Block { .. }
            ));
        }
        let third = detection("203.0.113.3/32", "203.0.113.3");
        assert_eq!(
            r.on_detection(&third, &none, t(10)),
            Decision::OverBudget {
                net: "203.0.113.3/32".parse().unwrap(),
                max_blocks: 2
            }
        );
        assert_eq!(r.active(), 2);
        // Once the first block has expired there is room again.
        assert!(matches!(
            r.on_detection(&third, &none, t(3600)),
            Decision::Block { .. }
        ));
    }

    #[test]
    fn never_block_wins_and_names_the_reason() {
        let mut r = responder();
        let d = detection("198.51.100.1/32", "198.51.100.1");
        assert_eq!(
            r.on_detection(&d, &ignore(&["198.51.100.1/32"]), t(0)),
            Decision::NeverBlock {
                addr: "198.51.100.1".parse().unwrap(),
                reason: "default gateway on eth0".into()
            }
        );
        assert_eq!(r.active(), 0);
    }

    #[test]
    fn a_prefix_covering_a_never_block_address_is_narrowed_to_the_scanner() {
        let mut r = responder();
        let d = detection("2001:db8::/64", "2001:db8::66");
        assert_eq!(
            r.on_detection(&d, &ignore(&["2001:db8::1/128"]), t(0)),
            Decision::Block {
                net: "2001:db8::66/128".parse().unwrap(),
                ttl: Duration::from_secs(3600)
            }
        );
        assert_eq!(
            r.on_detection(&d, &ignore(&[]), t(1)),
            Decision::Block {
                net: "2001:db8::/64".parse().unwrap(),
                ttl: Duration::from_secs(3600)
            }
        );
    }
}
