//! The responder: a detection in, a decision and firewall [`Action`]s out. **Pure**; time is an
//! argument.
//!
//! In this order:
//! 1. the never-block list (an aggregated prefix that covers a never-block address is narrowed
//!    to the one offending address);
//! 2. a source already blocked (by this block or one that covers it) gets nothing, or a refresh
//!    when `refresh = true`;
//! 3. the budget: at most `max-new-blocks-per-second` new blocks (a token bucket with a burst
//!    of as many) and at most `max-blocks` active ones; past either the detection is refused and
//!    logged, so a flood of spoofed sources can neither fill the kernel's set nor this table;
//! 4. the block, for `block-for × repeat-factor^(offences − 1)`, capped at `max-block-for`,
//!    where offences are counted over `remember-offences`. Smaller blocks the new one covers
//!    are lifted in the same batch (an interval set refuses overlapping elements).
//!
//! Memory is bounded: at most `max-blocks` active blocks and `2 × max-blocks` remembered
//! offenders (the one whose last offence is oldest is forgotten first).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use hashlink::LinkedHashMap;
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

/// Which budget refused a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Budget {
    /// `max-new-blocks-per-second` was spent.
    Rate(u32),
    /// `max-blocks` blocks are active.
    Size(usize),
}

/// What to do about a detection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Block `net` for `ttl`; lift the smaller blocks in `replaces` that it covers.
    Block {
        /// The address (host prefix) or network to block.
        net: IpNet,
        /// How long.
        ttl: Duration,
        /// Which offence of this source this is (1 for the first).
        offence: u32,
        /// Active blocks inside `net`, lifted in the same batch.
        replaces: Vec<IpNet>,
    },
    /// `net` was blocked already and its block is set to `ttl` again (`refresh = true`).
    Refresh {
        /// The blocked address or network.
        net: IpNet,
        /// The block's new duration.
        ttl: Duration,
    },
    /// `net` is blocked already, for `remaining` more.
    AlreadyBlocked {
        /// The blocked address or network.
        net: IpNet,
        /// Time left on the block.
        remaining: Duration,
    },
    /// A budget is spent: refused, and logged.
    OverBudget {
        /// What would have been blocked.
        net: IpNet,
        /// Which budget.
        budget: Budget,
    },
    /// The address is on the never-block list.
    NeverBlock {
        /// The address.
        addr: IpAddr,
        /// Why (the first matching entry's reason).
        reason: String,
    },
}

impl Decision {
    /// What the firewall must do for this decision.
    pub fn actions(&self) -> Vec<Action> {
        match self {
            Decision::Block {
                net, ttl, replaces, ..
            } => replaces
                .iter()
                .map(|&net| Action::Unblock { net })
                .chain([Action::Block {
                    net: *net,
                    ttl: *ttl,
                }])
                .collect(),
            Decision::Refresh { net, ttl } => vec![Action::Block {
                net: *net,
                ttl: *ttl,
            }],
            _ => Vec::new(),
        }
    }
}

/// Why an unblock was not needed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0} was not blocked")]
pub struct NotBlocked(pub IpNet);

#[derive(Clone, Copy, Debug)]
struct Active {
    until: Timestamp,
}

#[derive(Clone, Copy, Debug)]
struct Offender {
    count: u32,
    last: Timestamp,
}

/// Decides what to do with detections; remembers active blocks and past offenders.
#[derive(Debug)]
pub struct Responder {
    config: RespondConfig,
    /// Active blocks, ordered by network so that covering and covered blocks are found by range.
    blocked: BTreeMap<IpNet, Active>,
    /// Prefix lengths in use in `blocked`, per family, to find covering blocks quickly.
    lengths4: BTreeMap<u8, usize>,
    lengths6: BTreeMap<u8, usize>,
    /// Past offenders, least recently offending first.
    offenders: LinkedHashMap<IpNet, Offender>,
    /// The rate budget's tokens (in thousandths) and when they were last topped up.
    tokens_milli: u64,
    topped_up: Timestamp,
    next_sweep: Timestamp,
}

impl Responder {
    /// A responder with nothing blocked and a full budget.
    pub fn new(config: &RespondConfig) -> Self {
        Responder {
            tokens_milli: u64::from(config.max_new_blocks_per_second) * 1000,
            config: config.clone(),
            blocked: BTreeMap::new(),
            lengths4: BTreeMap::new(),
            lengths6: BTreeMap::new(),
            offenders: LinkedHashMap::new(),
            topped_up: Timestamp::ZERO,
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
        self.sweep(now);
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
        self.block(net, now)
    }

    /// Decides about blocking `net` by hand (`sentryctl block`): the budget and escalation
    /// apply, the never-block list is the caller's to check.
    pub fn block(&mut self, net: IpNet, now: Timestamp) -> Decision {
        self.sweep(now);
        if let Some((covering, active)) = self.covering(net, now) {
            if self.config.refresh && covering == net {
                let ttl = self.duration_for(net, now);
                self.insert(net, now.saturating_add(ttl));
                return Decision::Refresh { net, ttl };
            }
            return Decision::AlreadyBlocked {
                net: covering,
                remaining: active.until.saturating_since(now),
            };
        }
        let replaces = self.covered(net);
        if self.blocked.len() - replaces.len() >= self.config.max_blocks {
            return Decision::OverBudget {
                net,
                budget: Budget::Size(self.config.max_blocks),
            };
        }
        if !self.take_token(now) {
            return Decision::OverBudget {
                net,
                budget: Budget::Rate(self.config.max_new_blocks_per_second),
            };
        }
        let offence = self.offend(net, now);
        let ttl = self.duration_for(net, now);
        for inner in &replaces {
            self.remove(inner);
        }
        self.insert(net, now.saturating_add(ttl));
        Decision::Block {
            net,
            ttl,
            offence,
            replaces,
        }
    }

    /// Lifts the block of `net` (exactly that address or network).
    ///
    /// # Errors
    ///
    /// [`NotBlocked`] when no active block is exactly `net`.
    pub fn unblock(&mut self, net: IpNet, now: Timestamp) -> Result<Vec<Action>, NotBlocked> {
        self.sweep(now);
        if self.blocked.get(&net).is_some_and(|a| a.until > now) {
            self.remove(&net);
            Ok(vec![Action::Unblock { net }])
        } else {
            Err(NotBlocked(net))
        }
    }

    /// Records a block that exists already (read back from the kernel at start), so that it is
    /// known as active until `until`.
    pub fn restore(&mut self, net: IpNet, until: Timestamp) {
        self.insert(net, until);
    }

    /// Active blocks and their expiry, in network order.
    pub fn active(&self) -> impl Iterator<Item = (IpNet, Timestamp)> + '_ {
        self.blocked.iter().map(|(net, a)| (*net, a.until))
    }

    /// How many blocks are active (as of the last call).
    pub fn active_count(&self) -> usize {
        self.blocked.len()
    }

    /// How many offences of `net` are remembered.
    pub fn offences(&self, net: IpNet) -> u32 {
        self.offenders.get(&net).map_or(0, |o| o.count)
    }

    /// `block-for × repeat-factor^(offences − 1)`, capped at `max-block-for`.
    fn duration_for(&self, net: IpNet, now: Timestamp) -> Duration {
        let count = self
            .offenders
            .get(&net)
            .filter(|o| now.saturating_since(o.last) <= self.config.remember_offences)
            .map_or(1, |o| o.count.max(1));
        let mut ttl = self.config.block_for;
        for _ in 1..count {
            ttl = ttl.saturating_mul(self.config.repeat_factor);
            if ttl >= self.config.max_block_for {
                break;
            }
        }
        ttl.min(self.config.max_block_for)
    }

    /// Counts an offence of `net`; returns which one it is.
    fn offend(&mut self, net: IpNet, now: Timestamp) -> u32 {
        let memory = self.config.remember_offences;
        let count = match self.offenders.remove(&net) {
            Some(o) if now.saturating_since(o.last) <= memory => o.count.saturating_add(1),
            _ => 1,
        };
        let cap = self.config.max_blocks.saturating_mul(2).max(1);
        while self.offenders.len() >= cap {
            self.offenders.pop_front();
        }
        self.offenders.insert(net, Offender { count, last: now });
        count
    }

    fn take_token(&mut self, now: Timestamp) -> bool {
        let rate = u64::from(self.config.max_new_blocks_per_second);
        let full = rate * 1000;
        let elapsed_ms =
            u64::try_from(now.saturating_since(self.topped_up).as_millis()).unwrap_or(u64::MAX);
        self.tokens_milli = self
            .tokens_milli
            .saturating_add(elapsed_ms.saturating_mul(rate))
            .min(full);
        self.topped_up = self.topped_up.max(now);
        if self.tokens_milli >= 1000 {
            self.tokens_milli -= 1000;
            true
        } else {
            false
        }
    }

    /// The active block that is `net` or covers it.
    fn covering(&self, net: IpNet, now: Timestamp) -> Option<(IpNet, Active)> {
        let lengths = match net {
            IpNet::V4(_) => &self.lengths4,
            IpNet::V6(_) => &self.lengths6,
        };
        lengths
            .keys()
            .filter(|&&len| len <= net.prefix_len())
            .find_map(|&len| {
                let candidate = IpNet::new(net.addr(), len).ok()?.trunc();
                self.blocked
                    .get(&candidate)
                    .filter(|a| a.until > now)
                    .map(|a| (candidate, *a))
            })
    }

    /// Active blocks strictly inside `net`.
    fn covered(&self, net: IpNet) -> Vec<IpNet> {
        let net = net.trunc();
        let (Ok(lo), Ok(hi)) = (
            IpNet::new(net.network(), 0),
            IpNet::new(net.broadcast(), net.max_prefix_len()),
        ) else {
            return Vec::new();
        };
        self.blocked
            .range(lo..=hi)
            .map(|(n, _)| *n)
            .filter(|n| *n != net && net.contains(n))
            .collect()
    }

    fn insert(&mut self, net: IpNet, until: Timestamp) {
        if self.blocked.insert(net, Active { until }).is_none() {
            *self.lengths_mut(net).entry(net.prefix_len()).or_insert(0) += 1;
        }
    }

    fn remove(&mut self, net: &IpNet) {
        if self.blocked.remove(net).is_some() {
            let lengths = self.lengths_mut(*net);
            if let Some(n) = lengths.get_mut(&net.prefix_len()) {
                *n -= 1;
                if *n == 0 {
                    lengths.remove(&net.prefix_len());
                }
            }
        }
    }

    fn lengths_mut(&mut self, net: IpNet) -> &mut BTreeMap<u8, usize> {
        match net {
            IpNet::V4(_) => &mut self.lengths4,
            IpNet::V6(_) => &mut self.lengths6,
        }
    }

    /// Forgets expired blocks, at most once a second.
    fn sweep(&mut self, now: Timestamp) {
        if now < self.next_sweep {
            return;
        }
        self.next_sweep = now.saturating_add(Duration::from_secs(1));
        let expired: Vec<IpNet> = self
            .blocked
            .iter()
            .filter(|(_, a)| a.until <= now)
            .map(|(n, _)| *n)
            .collect();
        for net in expired {
            self.remove(&net);
        }
    }
}

#[cfg(test)]
mod tests;
