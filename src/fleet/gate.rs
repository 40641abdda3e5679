//! The receiver's own rules for a block another host of the fleet made: what it takes, for how
//! long, and what it refuses. **Pure**; the time is an argument.
//!
//! A compromised or misconfigured host must be able to neither flood this host's sets nor block
//! for longer than this host allows, so every block from the fleet passes, in order:
//! its own (a host ignores its own messages), still due (one that has ended is dropped), the
//! per-origin cap (at most `max_per_minute` blocks from one origin in a minute, and at most
//! [`MAX_V4_PER_MINUTE`] IPv4 addresses and [`MAX_V6_PER_MINUTE`] IPv6 /64s of address space,
//! each block at its real size; [`WIDE_V4`] and [`WIDE_V6`] for a block by hand from an origin
//! the receiver names in `accept-wide`),
//! the maximum duration (longer blocks are cut to it). Unblocks have a minute of their own per
//! origin, with the same cap ([`Gate::judge_unblock`]). The never-block list, the protected
//! peers and the budget are the engine's, and come after.
//!
//! Before all of it comes the **floor** ([`super::floor`]): what no message may block whoever
//! sent it. What an origin's blocks hold **in force** here
//! ([`MAX_V4_HELD`], [`MAX_V6_HELD`]) is the engine's to count, as blocks end and are lifted.

use std::collections::HashMap;
use std::time::Duration;

use ipnet::IpNet;

use super::message::HostName;
use crate::time::Timestamp;

/// IPv4 address space one origin's blocks may take on this host in a minute: four /24s
/// (1,024 addresses). An honest host's 60 single-address blocks a minute pass; a flood of /24s
/// stops at the fourth.
pub const MAX_V4_PER_MINUTE: u64 = 1024;
/// IPv6 address space one origin's blocks may take in a minute, in /64s: four /48s (262,144).
pub const MAX_V6_PER_MINUTE: u64 = 4 * 65_536;
/// IPv4 address space one origin's blocks may hold **in force at once** on this host, at least:
/// 64 /24s (16,384 addresses). The cap is this or the origin's share of `[respond] max-blocks`
/// (a quarter), whichever is larger, so that an honest member's single-address detections
/// meet the share first, never this; a member's /24s, four a minute, stop at the 64th.
pub const MAX_V4_HELD: u64 = 64 * 256;
/// IPv6 address space one origin's blocks may hold in force at once, in /64s, at least: 64
/// /48s (4,194,304). See [`MAX_V4_HELD`].
pub const MAX_V6_HELD: u64 = 64 * 65_536;
/// IPv4 address space the blocks by hand of an origin named in `accept-wide` may take, in a
/// minute and in force at once (with its other blocks): a /8's (16,777,216 addresses). Its
/// other blocks still meet [`MAX_V4_PER_MINUTE`] and [`MAX_V4_HELD`], its wide ones counted.
pub const WIDE_V4: u64 = 1 << 24;
/// IPv6 address space the blocks by hand of an origin named in `accept-wide` may take, in
/// /64s: a /32's (4,294,967,296). See [`WIDE_V4`].
pub const WIDE_V6: u64 = 1 << 32;
/// The address space `net` takes against the per-origin caps, in IPv4 addresses or IPv6 /64s
/// (a longer IPv6 prefix counts as one /64; `::/0`, which does not fit, as `u64::MAX`): its
/// real size, also for a network wider than the floor's widest (a block by hand from an origin
/// named in `accept-wide`).
pub fn space(net: &IpNet) -> u64 {
    match net {
        IpNet::V4(n) => 1u64 << (32 - u32::from(n.prefix_len())),
        IpNet::V6(n) => 1u64
            .checked_shl(64u32.saturating_sub(u32::from(n.prefix_len())))
            .unwrap_or(u64::MAX),
    }
}

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
    /// Its origin's blocks took more address space than the cap in the last minute.
    SpaceCapped {
        /// The cap, in IPv4 addresses or IPv6 /64s.
        per_minute: u64,
    },
}

/// One origin's minute: when it began, the blocks, the IPv4 addresses and IPv6 /64s taken.
#[derive(Clone, Copy, Debug)]
struct Minute {
    since: Timestamp,
    blocks: u32,
    v4: u64,
    v6: u64,
}

/// The per-origin counts and the limits.
#[derive(Debug)]
pub struct Gate {
    own: HostName,
    max_duration: Duration,
    max_per_minute: u32,
    minutes: HashMap<HostName, Minute>,
    /// Unblocks, per origin: when the minute began, and how many.
    unblocks: HashMap<HostName, (Timestamp, u32)>,
}

/// The entry of `origin` in `map`, made room for (past [`MAX_ORIGINS`], the one whose minute
/// began longest ago gives way) and begun afresh when its minute is over.
fn minute_of<'m, T: Copy>(
    map: &'m mut HashMap<HostName, T>,
    origin: &HostName,
    now: Timestamp,
    since: impl Fn(&T) -> Timestamp,
    fresh: T,
) -> &'m mut T {
    if !map.contains_key(origin) && map.len() >= MAX_ORIGINS {
        let oldest = map
            .iter()
            .min_by_key(|(_, m)| since(m))
            .map(|(host, _)| host.clone());
        if let Some(oldest) = oldest {
            map.remove(&oldest);
        }
    }
    let entry = map.entry(origin.clone()).or_insert(fresh);
    if now.saturating_since(since(entry)) >= Duration::from_secs(60) {
        *entry = fresh;
    }
    entry
}

impl Gate {
    /// A gate for host `own`, with the limits of `[fleet]`.
    pub fn new(own: HostName, max_duration: Duration, max_per_minute: u32) -> Self {
        Gate {
            own,
            max_duration,
            max_per_minute,
            minutes: HashMap::new(),
            unblocks: HashMap::new(),
        }
    }

    /// Whether an unblock from `origin` at `now` is within its cap (at most `max_per_minute`
    /// a minute from one origin); counts it when it is.
    pub fn judge_unblock(&mut self, origin: &HostName, now: Timestamp) -> bool {
        if *origin == self.own {
            return false;
        }
        let minute = minute_of(&mut self.unblocks, origin, now, |m| m.0, (now, 0));
        if minute.1 >= self.max_per_minute {
            return false;
        }
        minute.1 += 1;
        true
    }

    /// Judges a block of `net` from `origin`, ending at `until`, arriving at `now` (both wall
    /// clock). `wide`: a block by hand from an origin named in `accept-wide`, whose space
    /// (its real size) is capped at [`WIDE_V4`] or [`WIDE_V6`] a minute instead.
    pub fn judge(
        &mut self,
        origin: &HostName,
        net: IpNet,
        until: Timestamp,
        now: Timestamp,
        wide: bool,
    ) -> Verdict {
        if *origin == self.own {
            return Verdict::Refuse(Refusal::Own);
        }
        let left = until.saturating_since(now);
        if left.is_zero() {
            return Verdict::Refuse(Refusal::Ended);
        }
        let fresh = Minute {
            since: now,
            blocks: 0,
            v4: 0,
            v6: 0,
        };
        let minute = minute_of(&mut self.minutes, origin, now, |m| m.since, fresh);
        if minute.blocks >= self.max_per_minute {
            return Verdict::Refuse(Refusal::RateCapped {
                per_minute: self.max_per_minute,
            });
        }
        let (taken, cap) = match (net, wide) {
            (IpNet::V4(_), false) => (&mut minute.v4, MAX_V4_PER_MINUTE),
            (IpNet::V4(_), true) => (&mut minute.v4, WIDE_V4),
            (IpNet::V6(_), false) => (&mut minute.v6, MAX_V6_PER_MINUTE),
            (IpNet::V6(_), true) => (&mut minute.v6, WIDE_V6),
        };
        let after = taken.saturating_add(space(&net));
        if after > cap {
            return Verdict::Refuse(Refusal::SpaceCapped { per_minute: cap });
        }
        *taken = after;
        minute.blocks += 1;
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
                at(1000 + 600),
                false
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
                at(1000),
                false
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
            gate.judge(&host("web-1"), target, at(2000), at(1000), false),
            Verdict::Refuse(Refusal::Own)
        );
        assert_eq!(
            gate.judge(&host("web-3"), target, at(1000), at(1000), false),
            Verdict::Refuse(Refusal::Ended)
        );
        for i in 0..3 {
            assert!(matches!(
                gate.judge(&host("web-3"), target, at(5000), at(1000 + i), false),
                Verdict::Take { .. }
            ));
        }
        assert_eq!(
            gate.judge(&host("web-3"), target, at(5000), at(1010), false),
            Verdict::Refuse(Refusal::RateCapped { per_minute: 3 })
        );
        // Another origin has its own minute; the capped one gets a new one after 60 s.
        assert!(matches!(
            gate.judge(&host("web-4"), target, at(5000), at(1010), false),
            Verdict::Take { .. }
        ));
        assert!(matches!(
            gate.judge(&host("web-3"), target, at(5000), at(1060), false),
            Verdict::Take { .. }
        ));
    }

    #[test]
    fn the_origins_remembered_are_bounded() {
        let mut gate = Gate::new(host("web-1"), Duration::from_secs(60), 1);
        for i in 0..(MAX_ORIGINS as u64 + 10) {
            let origin = host(&format!("h{i}"));
            gate.judge(&origin, net("203.0.113.7/32"), at(i + 100), at(i), false);
        }
        assert_eq!(gate.minutes.len(), MAX_ORIGINS);
        // Unblocks' minutes too (issue 24, red team).
        for i in 0..(MAX_ORIGINS as u64 + 10) {
            assert!(gate.judge_unblock(&host(&format!("u{i}")), at(i)));
        }
        assert_eq!(gate.unblocks.len(), MAX_ORIGINS);
    }

    /// Issue 24: 60 single addresses a minute from an honest host pass; a flood of /24s stops
    /// at the fourth, and so does one of /48s; the other family and another origin are apart.
    #[test]
    fn the_address_space_of_an_origins_blocks_is_capped_per_minute() {
        let mut gate = Gate::new(host("web-1"), Duration::from_secs(86_400), 1000);
        for i in 0..60 {
            let one = net(&format!("198.51.100.{i}/32"));
            assert!(
                matches!(
                    gate.judge(&host("web-3"), one, at(5000), at(1000), false),
                    Verdict::Take { .. }
                ),
                "{one}"
            );
        }
        let mut taken = 0;
        for i in 0..20 {
            let wide = net(&format!("203.0.{i}.0/24"));
            match gate.judge(&host("web-4"), wide, at(5000), at(1000), false) {
                Verdict::Take { .. } => taken += 1,
                Verdict::Refuse(r) => assert_eq!(
                    r,
                    Refusal::SpaceCapped {
                        per_minute: MAX_V4_PER_MINUTE
                    }
                ),
            }
        }
        assert_eq!(taken, 4);
        let mut taken6 = 0;
        for i in 0..20 {
            let wide = net(&format!("2001:db8:{i:x}::/48"));
            if matches!(
                gate.judge(&host("web-4"), wide, at(5000), at(1000), false),
                Verdict::Take { .. }
            ) {
                taken6 += 1;
            }
        }
        assert_eq!(taken6, 4);
        // The next minute, room again.
        assert!(matches!(
            gate.judge(
                &host("web-4"),
                net("203.0.99.0/24"),
                at(5000),
                at(1060),
                false
            ),
            Verdict::Take { .. }
        ));
        // A wider block (by hand, from an origin named in accept-wide) costs its real size.
        assert_eq!(space(&net("10.0.0.0/8")), 1 << 24);
        assert_eq!(space(&net("0.0.0.0/0")), 1 << 32);
        assert_eq!(space(&net("2001:db8::/32")), 1 << 32);
        assert_eq!(space(&net("::/0")), u64::MAX);
        assert_eq!(space(&net("2001:db8::/64")), 1);
        assert_eq!(space(&net("2001:db8::1/128")), 1);
    }

    /// Issue 24 (red team, open): a block by hand from an origin named in `accept-wide`
    /// counts its real size, against a /8's (or a /32's) a minute; the same block, not
    /// named, meets the four /24s.
    #[test]
    fn a_wide_block_by_hand_counts_its_real_size() {
        let mut gate = Gate::new(host("web-1"), Duration::from_secs(86_400), 1000);
        let admin = host("admin-1");
        let take = |gate: &mut Gate, n: &str, wide: bool| {
            gate.judge(&admin, net(n), at(5000), at(1000), wide)
        };
        assert!(matches!(
            take(&mut gate, "10.0.0.0/9", true),
            Verdict::Take { .. }
        ));
        assert!(matches!(
            take(&mut gate, "11.0.0.0/9", true),
            Verdict::Take { .. }
        ));
        assert_eq!(
            take(&mut gate, "12.0.0.0/24", true),
            Verdict::Refuse(Refusal::SpaceCapped {
                per_minute: WIDE_V4
            })
        );
        assert!(matches!(
            take(&mut gate, "2001:db8::/33", true),
            Verdict::Take { .. }
        ));
        assert_eq!(
            take(&mut gate, "2001:db9::/32", true),
            Verdict::Refuse(Refusal::SpaceCapped {
                per_minute: WIDE_V6
            })
        );
        let mut gate = Gate::new(host("web-1"), Duration::from_secs(86_400), 1000);
        assert_eq!(
            take(&mut gate, "10.0.0.0/16", false),
            Verdict::Refuse(Refusal::SpaceCapped {
                per_minute: MAX_V4_PER_MINUTE
            })
        );
    }

    /// Issue 24: unblocks have a minute of their own per origin, with the same cap.
    #[test]
    fn unblocks_are_capped_per_origin() {
        let mut gate = Gate::new(host("web-1"), Duration::from_secs(86_400), 3);
        for i in 0..3 {
            assert!(gate.judge_unblock(&host("web-3"), at(1000 + i)));
        }
        assert!(!gate.judge_unblock(&host("web-3"), at(1010)));
        assert!(gate.judge_unblock(&host("web-4"), at(1010)));
        assert!(gate.judge_unblock(&host("web-3"), at(1060)));
        assert!(!gate.judge_unblock(&host("web-1"), at(1060)), "its own");
        // Blocks keep their own count.
        assert!(matches!(
            gate.judge(
                &host("web-3"),
                net("203.0.113.7/32"),
                at(5000),
                at(1010),
                false
            ),
            Verdict::Take { .. }
        ));
    }
}
