//! Fleet mode in the engine: what this host tells the fleet (its blocks, and the unblocks its
//! administrator asks fleet-wide), and what it does with what the others say. The NATS link is
//! the shell's (`daemon::fleet`); here a message is a value, and nothing waits on the network.
//!
//! Another host's block passes, in order: the floor ([`floor::refuses`]: no unroutable, metadata
//! or too wide a network), the gate ([`Gate`]: own ignored, ended dropped, the per-origin cap
//! in messages and address space, the maximum duration), then this host's own rules — an
//! unblock here, or by its origin, since it was detected; the never-block list; the addresses
//! the members claim for themselves; the addresses this host refused as forged (reverse path);
//! the protected peers; the origin's share of `max-blocks` and of address space in force
//! (a running count per origin, corrected as its blocks end, are lifted or are taken over,
//! [`held_cap`]); keep the longer (no block here is
//! shortened, nor replaced unless it is the origin's own and ends sooner); a grace period; the
//! budget (a sweep as weak evidence). Every refusal is counted by rule; those that protect this
//! host are also said.
//!
//! An unblock from the fleet lifts only what its origin's blocks added here, within a
//! per-origin cap. Every map here is bounded (members, their addresses, the lifted networks,
//! the addresses refused as forged).
//!
//! A probe counted here goes to the sweep count (told to the owner of its prefix, or counted
//! here when this host owns it) only after it passed every local check a block of its source
//! would need: the pipeline's (an unroutable source, the never-block list), then the
//! reverse-path check with the interface it came in on and the protected peers. Its summary
//! says which it passed ([`Check`]); the owner counts only summaries that passed a
//! reverse-path check, and the peers check too when the owner protects its own peers. A forger
//! cannot make the fleet count what no host would have blocked on its own.

use std::collections::HashMap;

use hashlink::LinkedHashMap;
use ipnet::IpNet;

use super::*;
use crate::config::fleet::FleetConfig;
use crate::fleet::floor;
use crate::fleet::gate::{self, Gate, Refusal, Verdict};
use crate::fleet::message::{
    Body, Check, HostName, MAX_ADDRESSES, MAX_PORTS, MAX_PROBES, Message, ProbeSummary,
};
use crate::fleet::sweep::{self, Seen, Sweep, Sweeps, Thresholds};
use crate::fleet::{MEMBER_FOR, ProbeRefusedBy, RefusedBy};
use crate::pipeline::Tapped;
use crate::report::{Actor, Did};
use crate::respond::Held;

/// How often this host's probes go out as summaries (a batch at most this old).
pub const PROBES_EVERY: Duration = Duration::from_millis(100);
/// Probes this host checks for the fleet in a second at most (to tell them, or to count them
/// itself as the owner of their prefix); past it they are dropped (counted) before any route
/// is looked up, so that a flood of forged probes costs a bounded number of lookups here and a
/// bounded rate on the bus. A batch ([`PROBES_EVERY`]) takes at most half of what is left of
/// its second (so every batch of a second gets some), shared by [`fair_share`]: among the
/// interfaces the probes came in on, then among the IPv4 /24s and IPv6 /48s of their sources
/// within one, those that spent least this second first.
pub const PROBES_PER_SECOND: u32 = 1000;
/// (source, port) pairs remembered as told, at most: each is told once per sweep window.
pub(super) const MAX_TOLD: usize = 65_536;
/// Members remembered at most.
pub(super) const MAX_MEMBERS: usize = 4096;
/// One origin's blocks hold at most this fraction of `[respond] max-blocks` here (a quarter).
pub const ORIGIN_SHARE: usize = 4;

/// The address space one origin's blocks may hold in force here, in `net`'s family, and its
/// unit: [`gate::MAX_V4_HELD`] IPv4 addresses or [`gate::MAX_V6_HELD`] IPv6 /64s, or the
/// origin's `share` of `max-blocks` if that is larger (its single-address blocks never meet
/// it); for a block by hand from an origin named in `accept-wide` (`wide`), a /8's or a /32's
/// ([`gate::WIDE_V4`], [`gate::WIDE_V6`]), its other blocks counted in.
fn held_cap(net: &IpNet, share: usize, wide: bool) -> (u64, &'static str) {
    let share = u64::try_from(share).unwrap_or(u64::MAX);
    match (net, wide) {
        (IpNet::V4(_), false) => (gate::MAX_V4_HELD.max(share), "IPv4 addresses"),
        (IpNet::V4(_), true) => (gate::WIDE_V4.max(share), "IPv4 addresses"),
        (IpNet::V6(_), false) => (gate::MAX_V6_HELD.max(share), "IPv6 /64s"),
        (IpNet::V6(_), true) => (gate::WIDE_V6.max(share), "IPv6 /64s"),
    }
}

/// Networks whose last unblock is remembered, per origin (past it, the oldest of the origin, or
/// of this host, that holds the most gives way): a block the
/// fleet detected before an unblock here (or by its origin) is not taken again, also when it
/// comes back from the key-value bucket at a reconnection.
pub(super) const MAX_LIFTED: usize = 4096;

/// A member's own addresses (claimed in its heartbeats) are kept from fleet blocks this long
/// after it last claimed them.
pub const MEMBER_ADDRESSES_FOR: Duration = Duration::from_secs(3600);

/// Addresses this host refused as forged (reverse path) remembered at most (the oldest gives
/// way); each for `[respond] protect-for`, or [`FORGED_AT_LEAST`] if that is longer.
pub(super) const MAX_FORGED: usize = 4096;
/// See [`MAX_FORGED`].
pub const FORGED_AT_LEAST: Duration = Duration::from_secs(3600);

/// The engine's side of the fleet.
#[derive(Debug)]
pub(super) struct Fleet {
    host: HostName,
    gate: Gate,
    limits: (Duration, u32),
    /// Networks unblocked here (`None`) or by a host of the fleet, and when (wall clock).
    lifted: LinkedHashMap<(Option<HostName>, IpNet), Timestamp>,
    /// How many of `lifted` each holds (here: `None`).
    lifted_per: HashMap<Option<HostName>, usize>,
    /// The addresses each member claims for itself, and when it last did (engine time).
    claimed: HashMap<HostName, (Timestamp, Vec<IpNet>)>,
    /// Addresses this host refused as forged (reverse path), and when (engine time).
    forged: LinkedHashMap<std::net::IpAddr, Timestamp>,
    /// Messages from the other hosts taken in.
    received: u64,
    /// Blocks taken from the other hosts.
    taken: u64,
    /// Blocks from the other hosts refused, by rule.
    refused: std::collections::BTreeMap<&'static str, u64>,
    /// The other hosts, and when each was last heard from (engine time).
    members: HashMap<HostName, Timestamp>,
    /// The sweeps counted for the prefixes this host owns.
    sweeps: Sweeps,
    /// (source, protocol, port) told to the fleet, and when: once per window.
    told: LinkedHashMap<(IpNet, Proto, u16), Timestamp>,
    /// The second probes are checked in, and how many were checked in it.
    second: (Timestamp, u32),
    /// What each interface and source prefix had checked in that second.
    spent: Spent,
    /// Summaries sent, dropped past the rate, and sweeps found.
    probes_sent: u64,
    probes_dropped: u64,
    sweeps_found: u64,
    /// Probes not told (nor counted here) by the local check that refused each, and the other
    /// hosts' summaries not counted for what their senders did not verify (`unverified`).
    probes_refused: std::collections::BTreeMap<&'static str, u64>,
}

/// What each interface, and each source prefix within one, had checked in the current second
/// (at most [`PROBES_PER_SECOND`] entries each: only what was checked is counted).
#[derive(Debug, Default)]
pub(super) struct Spent {
    links: HashMap<Option<u32>, u32>,
    prefixes: HashMap<(Option<u32>, IpNet), u32>,
}

/// The prefix a probe's source shares the check budget by: its IPv4 /24 or IPv6 /48 (what a
/// forger spoofing one network, or one provider's customer, holds).
pub(super) fn check_prefix(addr: IpAddr) -> IpNet {
    let len = if addr.is_ipv4() { 24 } else { 48 };
    IpNet::new(addr, len).map_or_else(|_| IpNet::from(addr), |n| n.trunc())
}

/// One source prefix's probes in a batch, by index, in arrival order.
type Queue = (IpNet, std::collections::VecDeque<usize>);

/// Which of a batch's probes, given as (interface, source prefix) in arrival order, are
/// checked, `allowance` at most, in arrival order; counted in `spent`. **Pure.** In rounds:
/// each interface in turn (those that spent least this second first) has one probe checked,
/// from the next of its prefixes in turn (those that spent least first; ties in arrival
/// order). Probes on one link cannot spend what probes on another need, and one prefix cannot
/// spend a link's share while another prefix there waits.
pub(super) fn fair_share(
    groups: &[(Option<u32>, IpNet)],
    allowance: u32,
    spent: &mut Spent,
) -> Vec<usize> {
    // Each link's prefixes, each prefix's probes, in arrival order.
    let mut links: Vec<(Option<u32>, Vec<Queue>)> = Vec::new();
    let mut index: HashMap<(Option<u32>, IpNet), (usize, usize)> = HashMap::new();
    for (i, (link, prefix)) in groups.iter().enumerate() {
        if let Some(&(l, k)) = index.get(&(*link, *prefix)) {
            links[l].1[k].1.push_back(i);
            continue;
        }
        let l = match links.iter().position(|(k, _)| k == link) {
            Some(l) => l,
            None => {
                links.push((*link, Vec::new()));
                links.len() - 1
            }
        };
        let prefixes = &mut links[l].1;
        prefixes.push((*prefix, std::collections::VecDeque::from([i])));
        index.insert((*link, *prefix), (l, prefixes.len() - 1));
    }
    // Least spent first (the sorts are stable: ties stay in arrival order).
    links.sort_by_key(|(link, _)| spent.links.get(link).copied().unwrap_or(0));
    for (link, prefixes) in &mut links {
        prefixes.sort_by_key(|(p, _)| spent.prefixes.get(&(*link, *p)).copied().unwrap_or(0));
    }
    let mut next = vec![0usize; links.len()];
    let mut admitted = Vec::new();
    let budget = usize::try_from(allowance).unwrap_or(usize::MAX);
    while admitted.len() < budget {
        let mut any = false;
        for (l, (link, prefixes)) in links.iter_mut().enumerate() {
            if admitted.len() >= budget {
                break;
            }
            // The next of this link's prefixes with a probe left.
            let n = prefixes.len();
            let Some(k) = (0..n)
                .map(|j| (next[l] + j) % n)
                .find(|&k| !prefixes[k].1.is_empty())
            else {
                continue;
            };
            next[l] = (k + 1) % n;
            let (prefix, queue) = &mut prefixes[k];
            if let Some(i) = queue.pop_front() {
                admitted.push(i);
                *spent.links.entry(*link).or_default() += 1;
                *spent.prefixes.entry((*link, *prefix)).or_default() += 1;
                any = true;
            }
        }
        if !any {
            break;
        }
    }
    admitted.sort_unstable();
    admitted
}

/// What was looked up for one batch of probes: each interface's reverse-path check and each
/// source's route back at most once (`None`: the lookup failed, or routes cannot be asked).
#[derive(Default)]
struct Looked {
    modes: HashMap<Option<u32>, ReversePath>,
    routes: HashMap<IpAddr, Option<RouteBack>>,
}

fn thresholds(config: &FleetConfig) -> Thresholds {
    Thresholds {
        hosts: config.sweep_hosts,
        pairs: config.sweep_pairs,
        window: config.sweep_window,
    }
}

/// A probe of a batch that may be told to the fleet: its source as the detector counts it, the
/// member that owns its prefix's count, and whether that is this host.
#[derive(Debug)]
struct Candidate {
    tapped: Tapped,
    source: IpNet,
    owner: HostName,
    own: bool,
}

/// The summaries of a batch to send, by the member that owns their prefixes' counts.
type Summaries = std::collections::BTreeMap<HostName, Vec<ProbeSummary>>;

/// A block another host of the fleet offers this host, as its rules read it.
struct Offer {
    origin: HostName,
    net: IpNet,
    /// `net` as the log says it.
    text: String,
    /// A block by hand from an origin named in `accept-wide`: it may be wide.
    wide: bool,
    /// When its origin detected it (wall clock, not after it arrived here).
    at: Timestamp,
    /// When it arrived (engine time).
    now: Timestamp,
    /// How long the gate lets it last here (zero until the gate has judged it).
    ttl: Duration,
}

impl Offer {
    /// Refused by `rule`, said (this host's rule protects it) with `reason`.
    fn refused(&self, rule: RefusedBy, reason: impl std::fmt::Display) -> Refused {
        Refused::Said(
            rule,
            format!("refused {}'s block of {}: {reason}", self.origin, self.text),
        )
    }
}

/// How a block from the fleet is refused.
enum Refused {
    /// Not counted: this host's own block come back, or fleet mode is off.
    Quietly,
    /// Counted by its rule (in `status`), not said: the gate's and the origin's own limits.
    Counted(RefusedBy),
    /// Counted by its rule and said (folded under a flood): a refusal that protects this host.
    Said(RefusedBy, String),
}

/// One of this host's own rules for a block from the fleet, once past the floor and the gate.
type FleetRule = fn(&mut Engine, &Offer) -> Result<(), Refused>;

/// This host's own rules for a block from the fleet, in the order they are checked: an unblock
/// here, or by its origin, since it was detected; the never-block list; the addresses the
/// members claim and those refused here as forged; the protected peers; the origin's share;
/// keep the longer.
const FLEET_RULES: [FleetRule; 6] = [
    Engine::offer_not_lifted,
    Engine::offer_not_never_block,
    Engine::offer_not_known,
    Engine::offer_not_protected,
    Engine::offer_within_share,
    Engine::offer_keeps_longer,
];

impl Fleet {
    /// The fleet's side for `config`; `None` without a host name (the shell fills it in from
    /// the system's before the engine starts).
    pub(super) fn new(config: &FleetConfig) -> Option<Fleet> {
        let host = config.host.clone()?;
        Some(Fleet {
            gate: Gate::new(
                host.clone(),
                config.max_block_for,
                config.max_per_origin_per_minute,
            ),
            limits: (config.max_block_for, config.max_per_origin_per_minute),
            host,
            lifted: LinkedHashMap::new(),
            lifted_per: HashMap::new(),
            claimed: HashMap::new(),
            forged: LinkedHashMap::new(),
            received: 0,
            taken: 0,
            refused: std::collections::BTreeMap::new(),
            members: HashMap::new(),
            sweeps: Sweeps::new(thresholds(config)),
            told: LinkedHashMap::new(),
            second: (Timestamp::ZERO, 0),
            spent: Spent::default(),
            probes_sent: 0,
            probes_dropped: 0,
            sweeps_found: 0,
            probes_refused: std::collections::BTreeMap::new(),
        })
    }

    /// Takes a new configuration: the counts stay; the gate starts afresh if its limits or the
    /// host's name changed.
    pub(super) fn reconfigure(mut self, config: &FleetConfig) -> Option<Fleet> {
        let host = config.host.clone()?;
        let limits = (config.max_block_for, config.max_per_origin_per_minute);
        if host != self.host || limits != self.limits {
            self.gate = Gate::new(host.clone(), limits.0, limits.1);
            self.limits = limits;
            self.host = host;
        }
        self.sweeps.set_thresholds(thresholds(config));
        Some(self)
    }

    /// The members heard from lately (`now`: engine time), this host among them, in name order.
    fn live(&self, now: Timestamp) -> Vec<HostName> {
        let mut live: Vec<HostName> = self
            .members
            .iter()
            .filter(|(_, seen)| now.saturating_since(**seen) < MEMBER_FOR)
            .map(|(host, _)| host.clone())
            .chain([self.host.clone()])
            .collect();
        live.sort_unstable();
        live.dedup();
        live
    }

    fn heard(&mut self, host: &HostName, now: Timestamp) {
        if let Some(seen) = self.members.get_mut(host) {
            *seen = now;
        } else {
            if self.members.len() >= MAX_MEMBERS {
                self.members
                    .retain(|_, seen| now.saturating_since(*seen) < MEMBER_FOR);
            }
            if self.members.len() < MAX_MEMBERS {
                self.members.insert(host.clone(), now);
            }
        }
    }

    /// How many unblocks are remembered.
    #[cfg(test)]
    pub(super) fn lifted_count(&self) -> usize {
        self.lifted.len()
    }

    /// How many entries each map keyed by what the others say holds: members, their claimed
    /// addresses, addresses refused as forged, unblocks, (source, port) pairs told.
    #[cfg(test)]
    pub(super) fn sizes(&self) -> [usize; 5] {
        [
            self.members.len(),
            self.claimed.values().map(|(_, a)| a.len()).sum(),
            self.forged.len(),
            self.lifted.len(),
            self.told.len(),
        ]
    }

    /// `net` was lifted at `at`: here (`by` `None`), or by host `by` of the fleet.
    /// Past [`MAX_LIFTED`], the oldest of whoever holds the most gives way (here or an
    /// origin): a member's flood of unblocks forgets its own, never the others' nor this host's.
    fn lifted(&mut self, by: Option<HostName>, net: IpNet, at: Timestamp) {
        let key = (by, net);
        if self.lifted.remove(&key).is_none() {
            if self.lifted.len() >= MAX_LIFTED {
                let most = self
                    .lifted_per
                    .iter()
                    .max_by_key(|(_, n)| **n)
                    .map(|(by, _)| by.clone());
                let oldest =
                    most.and_then(|most| self.lifted.keys().find(|(by, _)| *by == most).cloned());
                if let Some(oldest) = oldest {
                    self.lifted.remove(&oldest);
                    self.count_lifted(&oldest.0, false);
                }
            }
            self.count_lifted(&key.0, true);
        }
        self.lifted.insert(key, at);
    }

    fn count_lifted(&mut self, by: &Option<HostName>, more: bool) {
        let n = self.lifted_per.entry(by.clone()).or_default();
        if more {
            *n += 1;
        } else {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.lifted_per.remove(by);
            }
        }
    }

    /// Whether a block of `net` from `origin` detected at `at` was lifted since: here, or by
    /// its origin (another host's unblock lifts only its own blocks).
    fn lifted_since(&self, origin: &HostName, net: IpNet, at: Timestamp) -> bool {
        [None, Some(origin.clone())].into_iter().any(|by| {
            self.lifted
                .get(&(by, net))
                .is_some_and(|lifted| *lifted >= at)
        })
    }

    /// `host` claims `addresses` for itself at `now` (an empty claim, from an older host,
    /// changes nothing). Bounded: members × [`MAX_ADDRESSES`].
    fn claim(&mut self, host: &HostName, addresses: Vec<IpNet>, now: Timestamp) {
        if addresses.is_empty() {
            return;
        }
        let addresses: Vec<IpNet> = addresses.into_iter().take(MAX_ADDRESSES).collect();
        if !self.claimed.contains_key(host) && self.claimed.len() >= MAX_MEMBERS {
            self.claimed
                .retain(|_, (at, _)| now.saturating_since(*at) < MEMBER_ADDRESSES_FOR);
            if self.claimed.len() >= MAX_MEMBERS {
                return;
            }
        }
        self.claimed.insert(host.clone(), (now, addresses));
    }

    /// The member whose own address (claimed within [`MEMBER_ADDRESSES_FOR`]) `net` holds,
    /// and that address.
    fn member_in(&self, net: &IpNet, now: Timestamp) -> Option<(HostName, IpNet)> {
        self.claimed
            .iter()
            .filter(|(_, (at, _))| now.saturating_since(*at) < MEMBER_ADDRESSES_FOR)
            .find_map(|(host, (_, addresses))| {
                addresses
                    .iter()
                    .find(|a| net.contains(&a.addr()) || a.contains(&net.addr()))
                    .map(|a| (host.clone(), *a))
            })
    }

    /// An address in `net` this host refused as forged within `within` of `now`, and how
    /// long ago.
    fn forged_in(
        &self,
        net: &IpNet,
        now: Timestamp,
        within: Duration,
    ) -> Option<(std::net::IpAddr, Duration)> {
        let recent = |at: &Timestamp| now.saturating_since(*at) < within;
        if net.prefix_len() == net.max_prefix_len() {
            let addr = net.addr();
            return self
                .forged
                .get(&addr)
                .filter(|at| recent(at))
                .map(|at| (addr, now.saturating_since(*at)));
        }
        self.forged
            .iter()
            .find(|(addr, at)| net.contains(*addr) && recent(at))
            .map(|(addr, at)| (*addr, now.saturating_since(*at)))
    }

    fn refuse(&mut self, rule: RefusedBy) {
        *self.refused.entry(rule.as_str()).or_default() += 1;
    }

    /// Which of a batch's `candidates` are checked, in arrival order: at most half of what is
    /// left of the current second's [`PROBES_PER_SECOND`], shared by [`fair_share`] among the
    /// interfaces they came in on, then their /24s or /48s (what a forger cannot choose
    /// freely), before any route is looked up. The rest are counted as dropped.
    fn admit(&mut self, candidates: Vec<Candidate>, now: Timestamp) -> Vec<Candidate> {
        if now.saturating_since(self.second.0) >= Duration::from_secs(1) {
            self.second = (now, 0);
            self.spent = Spent::default();
        }
        let groups: Vec<(Option<u32>, IpNet)> = candidates
            .iter()
            .map(|c| (c.tapped.arrived_on, check_prefix(c.tapped.probe.src)))
            .collect();
        let left = PROBES_PER_SECOND.saturating_sub(self.second.1);
        let admitted = fair_share(&groups, left.div_ceil(2), &mut self.spent);
        self.second.1 += u32::try_from(admitted.len()).unwrap_or(u32::MAX);
        self.probes_dropped += (candidates.len() - admitted.len()) as u64;
        let mut admitted = admitted.into_iter().peekable();
        candidates
            .into_iter()
            .enumerate()
            .filter(|(i, _)| admitted.next_if_eq(i).is_some())
            .map(|(_, c)| c)
            .collect()
    }

    /// `key` (source, protocol, port) was told to the fleet (or counted here) at `at`: not
    /// again within a sweep window. Bounded by [`MAX_TOLD`] (the oldest gives way).
    fn told(&mut self, key: (IpNet, Proto, u16), at: Timestamp) {
        self.told.remove(&key);
        if self.told.len() >= MAX_TOLD {
            self.told.pop_front();
        }
        self.told.insert(key, at);
    }
}

impl Engine {
    fn fleet_config(&self) -> Option<&FleetConfig> {
        self.config().fleet.as_ref()
    }

    /// Tells the fleet of this host's block of `net`, just made or refreshed, when it shares
    /// its blocks (a block taken from the fleet is not told again, nor what a dry run would
    /// block: a host that watches first must not make the others block).
    pub(super) fn publish_block(&mut self, net: IpNet, now: Timestamp) {
        if !self.fleet_config().is_some_and(|f| f.share_blocks)
            || self.fleet.is_none()
            || self.mode == Mode::DryRun
        {
            return;
        }
        let Some(block) = self.responder.block_of(net, now) else {
            return;
        };
        if block.why.origin.is_some() {
            return;
        }
        // Not what the others would refuse: the floor (a wide block by hand only for those
        // that accept it), a member's own address.
        let manual = block.why.kind == "manual";
        if floor::refuses(&block.net, manual).is_some()
            || self
                .fleet
                .as_ref()
                .is_some_and(|f| f.member_in(&block.net, now).is_some())
        {
            return;
        }
        let body = Body::Block {
            net: block.net,
            kind: block.why.kind.clone(),
            ports: block
                .why
                .port_labels()
                .into_iter()
                .take(MAX_PORTS)
                .collect(),
            at: self.wall.to_wall(block.since),
            until: self.wall.to_wall(block.until),
        };
        self.effects.push(Effect::Fleet { body, to: None });
    }

    /// Remembers that `net` was lifted here now; with `fleet_wide`, asks the fleet to lift it
    /// too. Whether the fleet was asked.
    pub(super) fn lifted_here(&mut self, net: IpNet, fleet_wide: bool) -> bool {
        let at = self.wall.to_wall(self.clock.now());
        let Some(fleet) = &mut self.fleet else {
            return false;
        };
        fleet.lifted(None, net, at);
        fleet.sweeps.forget(&net);
        if fleet_wide {
            self.effects.push(Effect::Fleet {
                body: Body::Unblock { net, at },
                to: None,
            });
        }
        fleet_wide
    }

    /// A message from another host of the fleet, as the link received and checked it
    /// ([`Message::decode`]).
    pub fn fleet_message(&mut self, message: Message) {
        let accept = self.fleet_config().is_some_and(|f| f.accept_blocks);
        let Some(fleet) = &mut self.fleet else {
            return;
        };
        if message.origin == fleet.host {
            return;
        }
        fleet.received += 1;
        let now = self.clock.now();
        fleet.heard(&message.origin, now);
        // Another host's clock, or a compromised host, may say "later than now": no statement
        // is taken as made after it arrived, so that a block or an unblock dated in the future
        // cannot outrank every later one here (a block detected before an unblock is refused).
        let wall_now = self.wall.to_wall(now);
        match message.body {
            Body::Block {
                net,
                kind,
                ports,
                at,
                until,
            } if accept => {
                let at = at.min(wall_now);
                let why = Why {
                    kind,
                    ports: ports.iter().filter_map(|p| Proto::parse_label(p)).collect(),
                    origin: Some(message.origin),
                    signature: None,
                };
                self.block_from_fleet(net, why, at, until);
            }
            Body::Unblock { net, at } if accept => {
                self.unblock_from_fleet(&message.origin, net, at.min(wall_now));
            }
            Body::Probes { probes } => self.count_probes(&message.origin, probes),
            // A heartbeat says the origin is alive (heard above), and which addresses are its
            // own: those are kept from the fleet's blocks, not put on this host's never-block
            // list (a member lying about a scanner's address keeps only the fleet off it).
            Body::Heartbeat { addresses, .. } => {
                if let Some(fleet) = &mut self.fleet {
                    fleet.claim(&message.origin, addresses, now);
                }
            }
            _ => {}
        }
    }

    /// This host's own addresses as its heartbeats claim them: the routable interface
    /// addresses, at most [`MAX_ADDRESSES`] (IPv4 first).
    pub fn fleet_addresses(&self) -> Vec<IpNet> {
        let mut own: Vec<IpNet> = self
            .own_addresses
            .iter()
            .map(|&a| IpNet::from(a))
            .filter(|n| floor::refuses(n, false).is_none())
            .collect();
        own.sort_by_key(|n| (n.addr().is_ipv6(), *n));
        own.dedup();
        own.truncate(MAX_ADDRESSES);
        own
    }

    /// A detection of `addr` refused here as forged (reverse path) at `now`: no fleet block
    /// or sweep of it is taken for a while ([`FORGED_AT_LEAST`], or `protect-for`).
    pub(super) fn refused_as_forged(&mut self, addr: std::net::IpAddr, now: Timestamp) {
        if let Some(fleet) = &mut self.fleet {
            fleet.forged.remove(&addr);
            if fleet.forged.len() >= MAX_FORGED {
                fleet.forged.pop_front();
            }
            fleet.forged.insert(addr, now);
        }
    }

    /// How long an address refused as forged is kept from fleet blocks.
    fn forged_for(&self) -> Duration {
        self.config().respond.protect_for.max(FORGED_AT_LEAST)
    }

    /// The fleet's rules for what this host itself knows of `net` (a block or a sweep from
    /// the fleet): a member's own address, an address this host refused as forged. The rule
    /// and the reason, if one refuses it.
    fn fleet_knows(&self, net: &IpNet, now: Timestamp) -> Option<(RefusedBy, String)> {
        let fleet = self.fleet.as_ref()?;
        if let Some((member, addr)) = fleet.member_in(net, now) {
            return Some((
                RefusedBy::Member,
                format!(
                    "{} is an address of the fleet's member {member}",
                    addr.addr()
                ),
            ));
        }
        fleet
            .forged_in(net, now, self.forged_for())
            .map(|(addr, ago)| {
                (
                    RefusedBy::ReversePath,
                    format!(
                        "this host refused {addr} as forged {} ago (reverse path: its packets \
                         arrived where this host does not route back)",
                        human(ago)
                    ),
                )
            })
    }

    /// Whether the pipeline keeps the probes it counts for the fleet: in fleet mode, when this
    /// host shares them or counts sweeps.
    pub(super) fn tap_probes(&mut self) {
        let on = self.fleet.is_some()
            && self
                .fleet_config()
                .is_some_and(|f| f.share_probes || f.accept_probes);
        self.pipeline.set_tap(on);
    }

    /// Every [`PROBES_EVERY`]: the probes counted since go out as summaries, each (source,
    /// port) once per sweep window and at most [`PROBES_PER_SECOND`] checked (half of what is
    /// left of the second in a batch, shared by [`fair_share`]), each to the owner
    /// of its prefix's count; this host counts those of the prefixes it owns itself. A probe
    /// is told (or counted here) only when it passed this host's local checks
    /// ([`Engine::check_probe`]); one that did not is counted by the rule that refused it.
    pub(super) fn fleet_probes(&mut self, now: Timestamp) {
        let (share, accept, window) = match self.fleet_config() {
            Some(f) => (f.share_probes, f.accept_probes, f.sweep_window),
            None => return,
        };
        let (probes, _) = self.pipeline.take_tapped();
        if probes.is_empty() {
            return;
        }
        let Some(live) = self.fleet.as_ref().map(|f| f.live(now)) else {
            return;
        };
        let candidates = self.probe_candidates(probes, &live, (share, accept), window);
        let Some(fleet) = &mut self.fleet else {
            return;
        };
        let admitted = fleet.admit(candidates, now);
        let (mine, out) = self.check_probes(admitted);
        self.send_probes(out);
        let wall_now = self.wall.to_wall(now);
        for (source, seen) in mine {
            self.count_sweep(source, seen, wall_now);
        }
    }

    /// What of `probes` may be told (`share`) or counted here (`accept`): a (source, port) not
    /// told within `window`, nor twice in the batch, whose prefix has an owner among `live`.
    fn probe_candidates(
        &self,
        probes: Vec<Tapped>,
        live: &[HostName],
        (share, accept): (bool, bool),
        window: Duration,
    ) -> Vec<Candidate> {
        let Some(fleet) = &self.fleet else {
            return Vec::new();
        };
        let mut candidates = Vec::new();
        let mut in_batch = std::collections::HashSet::new();
        for tapped in probes {
            let p = tapped.probe;
            let source = self.pipeline.source_of(p.src);
            let key = (source, p.proto, p.dst_port);
            if fleet
                .told
                .get(&key)
                .is_some_and(|at| p.at.saturating_since(*at) < window)
                || in_batch.contains(&key)
            {
                continue;
            }
            let Some(owner) = sweep::owner(&source, live) else {
                continue;
            };
            let own = *owner == fleet.host;
            if (own && !accept) || (!own && !share) {
                continue;
            }
            in_batch.insert(key);
            candidates.push(Candidate {
                tapped,
                source,
                owner: owner.clone(),
                own,
            });
        }
        candidates
    }

    /// The admitted probes that pass this host's checks ([`Engine::check_probe`]; a refused
    /// one is counted by its rule), each remembered as told: those of the prefixes this host
    /// owns, as seen here, and the others' summaries by owner.
    fn check_probes(&mut self, admitted: Vec<Candidate>) -> (Vec<(IpNet, Seen)>, Summaries) {
        let wall = self.wall;
        let mut looked = Looked::default();
        let mut mine: Vec<(IpNet, Seen)> = Vec::new();
        let mut out = Summaries::new();
        for Candidate {
            tapped,
            source,
            owner,
            own,
        } in admitted
        {
            let checked = self.check_probe(&tapped, source, &mut looked);
            let Some(fleet) = &mut self.fleet else {
                break;
            };
            let checked = match checked {
                Ok(checked) => checked,
                Err(rule) => {
                    *fleet.probes_refused.entry(rule.as_str()).or_default() += 1;
                    continue;
                }
            };
            let p = tapped.probe;
            let summary = ProbeSummary {
                source,
                port: p.proto.label(p.dst_port),
                kind: p.kind.scan_name().to_string(),
                at: wall.to_wall(p.at),
                checked,
            };
            if own {
                let seen = Seen {
                    host: fleet.host.clone(),
                    port: summary.port,
                    kind: summary.kind,
                    at: summary.at,
                };
                mine.push((source, seen));
            } else {
                out.entry(owner).or_default().push(summary);
            }
            fleet.told((source, p.proto, p.dst_port), p.at);
        }
        (mine, out)
    }

    /// Each owner's summaries go out, [`MAX_PROBES`] in a message at most; counted as sent.
    fn send_probes(&mut self, out: Summaries) {
        let Some(fleet) = &mut self.fleet else {
            return;
        };
        for (owner, summaries) in out {
            fleet.probes_sent += summaries.len() as u64;
            for chunk in summaries.chunks(MAX_PROBES) {
                self.effects.push(Effect::Fleet {
                    body: Body::Probes {
                        probes: chunk.to_vec(),
                    },
                    to: Some(owner.clone()),
                });
            }
        }
    }

    /// The local checks a probe must pass before it is told to the fleet, those a block of its
    /// source would need beyond the pipeline's: the reverse-path check in force for the
    /// interface it came in on (the route back asked of the host once per source in a batch),
    /// then, with `[respond] protect`, the protected peers. The checks it passed, or the rule
    /// that refused it: `reverse-path`, `protected`, or `unchecked` when this host cannot
    /// check its source (its reverse-path check is off, or the route back could not be looked
    /// up): a probe nobody verified is never told.
    fn check_probe(
        &mut self,
        tapped: &Tapped,
        source: IpNet,
        looked: &mut Looked,
    ) -> Result<Vec<Check>, ProbeRefusedBy> {
        let (p, arrived_on) = (&tapped.probe, tapped.arrived_on);
        let mode = match self.config().respond.reverse_path {
            ReversePath::Kernel if p.src.is_ipv4() => match looked.modes.get(&arrived_on) {
                Some(mode) => *mode,
                None => {
                    let mode = self.reverse_path_of(p.src, arrived_on);
                    looked.modes.insert(arrived_on, mode);
                    mode
                }
            },
            _ => self.reverse_path_of(p.src, arrived_on),
        };
        if mode == ReversePath::Off {
            return Err(ProbeRefusedBy::Unchecked);
        }
        let back = match looked.routes.get(&p.src) {
            Some(back) => *back,
            None => {
                let back = self.route_back_to(p.src, mode);
                looked.routes.insert(p.src, back);
                back
            }
        };
        let Some(back) = back else {
            return Err(ProbeRefusedBy::Unchecked);
        };
        if !mode.passes(arrived_on, back) {
            return Err(ProbeRefusedBy::ReversePath);
        }
        // Strict with the interface known is the reverse-path check proper; without it, or
        // loose, only a route back was found.
        let mut checked = vec![match (mode, arrived_on) {
            (ReversePath::Loose, _) | (_, None) => Check::RouteBack,
            _ => Check::ReversePath,
        }];
        if self.config().respond.protect != Protect::None {
            if self.peers.protecting(source, p.at).is_some() {
                return Err(ProbeRefusedBy::Protected);
            }
            checked.push(Check::Peers);
        }
        Ok(checked)
    }

    /// Another host's summaries, sent to this host as the owner of their prefixes' counts
    /// (counted also when this host's view of the members differs for a moment: nobody else
    /// got them). A summary is counted only when its sender says its probe passed a
    /// reverse-path check, and the protected peers too when this host protects its own: the
    /// fleet's evidence is never stronger than this host's own would have to be.
    fn count_probes(&mut self, origin: &HostName, probes: Vec<ProbeSummary>) {
        if !self.fleet_config().is_some_and(|f| f.accept_probes) {
            return;
        }
        let peers = self.config().respond.protect != Protect::None;
        let wall_now = self.wall.to_wall(self.clock.now());
        for p in probes {
            if !Check::reverse_path(&p.checked) || (peers && !p.checked.contains(&Check::Peers)) {
                if let Some(fleet) = &mut self.fleet {
                    *fleet
                        .probes_refused
                        .entry(ProbeRefusedBy::Unverified.as_str())
                        .or_default() += 1;
                }
                continue;
            }
            let seen = Seen {
                host: origin.clone(),
                port: p.port,
                kind: p.kind,
                at: p.at,
            };
            self.count_sweep(p.source, seen, wall_now);
        }
    }

    fn count_sweep(&mut self, source: IpNet, seen: Seen, wall_now: Timestamp) {
        let Some(fleet) = &mut self.fleet else {
            return;
        };
        if let Some(sweep) = fleet.sweeps.count(source, seen, wall_now) {
            fleet.sweeps_found += 1;
            self.block_sweep(sweep);
        }
    }

    /// A sweep this host counted: blocked through this host's own rules (the never-block list,
    /// the protected peers, a grace period, the budget), and told to the fleet.
    fn block_sweep(&mut self, sweep: Sweep) {
        let now = self.clock.now();
        let net = sweep.source;
        let net_text = source_text(&net);
        let hosts: Vec<&str> = sweep.hosts.iter().map(HostName::as_str).collect();
        let what = format!(
            "a sweep of {} across {} ({})",
            sweep.ports.join(" "),
            report::count(sweep.hosts.len() as u64, "host", "hosts"),
            hosts.join(", ")
        );
        if let Some(why) = floor::refuses(&net, false) {
            self.refuse_from_fleet(
                RefusedBy::Floor,
                format!("not blocking {net_text} for {what}: {why}"),
            );
            return;
        }
        if let Some(entries) = self.overlapping_never_block(net) {
            self.warn(format!(
                "not blocking {net_text} for {what}: it overlaps the never-block list: {entries}"
            ));
            return;
        }
        if let Some((rule, why)) = self.fleet_knows(&net, now) {
            self.refuse_from_fleet(rule, format!("not blocking {net_text} for {what}: {why}"));
            return;
        }
        if self.config().respond.protect != Protect::None
            && let Some(c) = self.peers.protecting(net, now)
        {
            self.warn(format!(
                "not blocking {net_text} for {what}: {} is a protected peer (a \
                     conversation on port {})",
                c.peer, c.port
            ));
            return;
        }
        let ports = sweep.ports.iter().filter_map(|p| Proto::parse_label(p));
        let why = Why {
            kind: "sweep".into(),
            ports: ports.collect(),
            origin: None,
            signature: None,
        };
        let decision = self.responder.block_sweep(net, why, now);
        match &decision {
            Decision::Block { ttl, .. } | Decision::Refresh { ttl, .. } => {
                let ttl = *ttl;
                match self.enforce(&decision) {
                    Ok(()) => {
                        let verb = self.verb("blocked", "would block");
                        let line = format!("{verb} {net_text} for {}: {what}", human(ttl));
                        let facts = (Some(net), Some(ttl.as_secs()));
                        self.act(Level::Info, (Did::Block, Actor::Daemon), facts, line);
                        self.publish_block(net, now);
                    }
                    Err(e) => self.warn(format!("could not block {net_text} for {what}: {e}")),
                }
            }
            Decision::InGrace { .. } => {
                self.log(format!(
                    "not blocking {net_text} for {what}: in a grace period"
                ));
            }
            Decision::OverBudget { .. } => {
                self.log(format!(
                    "not blocking {net_text} for {what}: refused by the budget"
                ));
            }
            Decision::AlreadyBlocked { .. }
            | Decision::NeverBlock { .. }
            | Decision::TooFewPorts { .. }
            | Decision::ReversePath { .. }
            | Decision::Protected { .. }
            | Decision::DeletedOutside { .. } => {}
        }
    }

    /// Another host's block of `net` (`why` names its origin), detected at `at` (wall clock,
    /// not after it arrived) and ending at `until`: taken when it passes the floor, the gate
    /// and [`FLEET_RULES`] in order, and then the responder (a grace period, the budget);
    /// otherwise refused as the first rule that refuses it says ([`Refused`]).
    fn block_from_fleet(&mut self, net: IpNet, why: Why, at: Timestamp, until: Timestamp) {
        let Some(origin) = why.origin.clone() else {
            return;
        };
        // A wide block by hand only from an origin this host names (`accept-wide`).
        let wide = why.kind == "manual"
            && self
                .fleet_config()
                .is_some_and(|f| f.accept_wide.contains(&origin));
        let mut offer = Offer {
            origin,
            net,
            text: source_text(&net),
            wide,
            at,
            now: self.clock.now(),
            ttl: Duration::ZERO,
        };
        match self.judge_offer(&mut offer, until) {
            Ok(()) => self.take_from_fleet(&offer, why),
            Err(refused) => self.refuse_offer(refused),
        }
    }

    /// The floor, the gate (which sets the offer's `ttl`), then [`FLEET_RULES`] in order: the
    /// first that refuses `offer`.
    fn judge_offer(&mut self, offer: &mut Offer, until: Timestamp) -> Result<(), Refused> {
        if let Some(why) = floor::refuses(&offer.net, offer.wide) {
            return Err(offer.refused(RefusedBy::Floor, why));
        }
        offer.ttl = self.fleet_gate(offer, until)?;
        FLEET_RULES.iter().try_for_each(|rule| rule(self, offer))
    }

    /// The gate's verdict ([`Gate::judge`]): how long the block may last here.
    fn fleet_gate(&mut self, offer: &Offer, until: Timestamp) -> Result<Duration, Refused> {
        let wall_now = self.wall.to_wall(offer.now);
        let Some(fleet) = &mut self.fleet else {
            return Err(Refused::Quietly);
        };
        match fleet
            .gate
            .judge(&offer.origin, offer.net, until, wall_now, offer.wide)
        {
            Verdict::Take { ttl, .. } => Ok(ttl),
            Verdict::Refuse(Refusal::Own) => Err(Refused::Quietly),
            Verdict::Refuse(Refusal::Ended) => Err(Refused::Counted(RefusedBy::Ended)),
            Verdict::Refuse(Refusal::RateCapped { .. }) => {
                Err(Refused::Counted(RefusedBy::RateCap))
            }
            Verdict::Refuse(Refusal::SpaceCapped { .. }) => {
                Err(Refused::Counted(RefusedBy::SpaceCap))
            }
        }
    }

    /// [`FLEET_RULES`]: not lifted here, nor by its origin, since it was detected.
    fn offer_not_lifted(&mut self, offer: &Offer) -> Result<(), Refused> {
        match &self.fleet {
            Some(fleet) if fleet.lifted_since(&offer.origin, offer.net, offer.at) => {
                Err(Refused::Counted(RefusedBy::Unblocked))
            }
            _ => Ok(()),
        }
    }

    /// [`FLEET_RULES`]: clear of the never-block list.
    fn offer_not_never_block(&mut self, offer: &Offer) -> Result<(), Refused> {
        match self.overlapping_never_block(offer.net) {
            Some(entries) => Err(offer.refused(
                RefusedBy::NeverBlock,
                format!("it overlaps the never-block list: {entries}"),
            )),
            None => Ok(()),
        }
    }

    /// [`FLEET_RULES`]: no member's own address, nor one this host refused as forged
    /// ([`Engine::fleet_knows`]).
    fn offer_not_known(&mut self, offer: &Offer) -> Result<(), Refused> {
        match self.fleet_knows(&offer.net, offer.now) {
            Some((rule, why)) => Err(offer.refused(rule, why)),
            None => Ok(()),
        }
    }

    /// [`FLEET_RULES`]: with `[respond] protect`, no protected peer.
    fn offer_not_protected(&mut self, offer: &Offer) -> Result<(), Refused> {
        if self.config().respond.protect == Protect::None {
            return Ok(());
        }
        match self.peers.protecting(offer.net, offer.now) {
            Some(c) => Err(offer.refused(
                RefusedBy::Protected,
                format!(
                    "{} is a protected peer (a conversation on port {})",
                    c.peer, c.port
                ),
            )),
            None => Ok(()),
        }
    }

    /// [`FLEET_RULES`]: a new block keeps its origin within its share of this host's sets
    /// ([`ORIGIN_SHARE`] of `max-blocks`) and of address space in force ([`held_cap`]).
    fn offer_within_share(&mut self, offer: &Offer) -> Result<(), Refused> {
        let (net, origin, now) = (offer.net, &offer.origin, offer.now);
        if self.responder.block_of(net, now).is_some() {
            return Ok(());
        }
        let max_blocks = self.config().respond.max_blocks;
        let share = (max_blocks / ORIGIN_SHARE).max(1);
        let held = self.responder.held_by(origin, now);
        if held.blocks >= share {
            return Err(offer.refused(
                RefusedBy::Share,
                format!(
                    "{origin} holds {share} blocks here, its share (a quarter of [respond] \
                     max-blocks = {max_blocks})"
                ),
            ));
        }
        let (cap, unit) = held_cap(&net, share, offer.wide);
        let holds = held.of_family(&net);
        if holds.saturating_add(Held::space(&net)) > cap {
            return Err(offer.refused(
                RefusedBy::HeldCap,
                format!(
                    "{origin}'s blocks in force here hold {holds} {unit}, and at most {cap} may \
                     be held"
                ),
            ));
        }
        Ok(())
    }

    /// [`FLEET_RULES`]: it keeps the longer: it lifts no block here that is by hand, ends
    /// later, or is not its origin's ([`Responder::kept_from_fleet`]).
    fn offer_keeps_longer(&mut self, offer: &Offer) -> Result<(), Refused> {
        let (now, ttl) = (offer.now, offer.ttl);
        let until = now.saturating_add(ttl);
        let Some(kept) = self
            .responder
            .kept_from_fleet(offer.net, &offer.origin, until, now)
        else {
            return Ok(());
        };
        let which = if kept.why.kind == "manual" {
            "was made by hand".to_string()
        } else if kept.until <= until {
            kept.why
                .origin
                .as_ref()
                .map_or_else(|| "this host detected".to_string(), |o| format!("{o} made"))
        } else {
            format!("ends in {}", human(kept.until.saturating_since(now)))
        };
        Err(Refused::Said(
            RefusedBy::Shorter,
            format!(
                "refused {}'s block of {} for {}: it would lift the block of {} here ({}), \
                 which {which}",
                offer.origin,
                offer.text,
                human(ttl),
                source_text(&kept.net),
                kept.why.kind,
            ),
        ))
    }

    /// An offer that passed every rule, as the responder decides it (a grace period, the
    /// budget): enforced and said when it blocks, counted (and said) when refused.
    fn take_from_fleet(&mut self, offer: &Offer, why: Why) {
        let detected = self.wall.from_wall(offer.at);
        let decision =
            self.responder
                .block_from_fleet(offer.net, offer.ttl, why.clone(), detected, offer.now);
        match &decision {
            Decision::Block { ttl, .. } | Decision::Refresh { ttl, .. } => {
                let ttl = *ttl;
                match self.enforce(&decision) {
                    Ok(()) => self.took_from_fleet(offer, ttl, &why),
                    Err(e) => self.warn(format!(
                        "could not carry out {}'s block of {}: {e}",
                        offer.origin, offer.text
                    )),
                }
            }
            Decision::AlreadyBlocked { .. } => {}
            Decision::InGrace { .. } => self.refuse_offer(Refused::Counted(RefusedBy::Grace)),
            Decision::OverBudget { budget, .. } => {
                // A block from the fleet meets the size budget; a sweep, the rate budget's
                // rules for weak evidence too.
                let budget = if budget.is_rate() {
                    format!(
                        "a sweep is weak evidence here: {}",
                        report::budget_text(budget)
                    )
                } else {
                    report::budget_text(budget)
                };
                self.refuse_offer(offer.refused(RefusedBy::Budget, budget));
            }
            Decision::NeverBlock { .. }
            | Decision::TooFewPorts { .. }
            | Decision::ReversePath { .. }
            | Decision::Protected { .. }
            | Decision::DeletedOutside { .. } => {}
        }
    }

    /// A block from the fleet was carried out for `ttl`: counted and said.
    fn took_from_fleet(&mut self, offer: &Offer, ttl: Duration, why: &Why) {
        if let Some(fleet) = &mut self.fleet {
            fleet.taken += 1;
        }
        let verb = self.verb("blocked", "would block");
        let ports = why.port_labels();
        let ports = if ports.is_empty() {
            String::new()
        } else {
            format!(", {}", ports.join(" "))
        };
        self.act(
            Level::Info,
            (Did::Block, Actor::Fleet),
            (Some(offer.net), Some(ttl.as_secs())),
            format!(
                "{verb} {} for {}: blocked by fleet, detected on {} at {} ({}{ports})",
                offer.text,
                human(ttl),
                offer.origin,
                offer.at,
                why.kind,
            ),
        );
    }

    /// A block from the fleet refused: counted by its rule, and said when that protects this
    /// host.
    fn refuse_offer(&mut self, refused: Refused) {
        match refused {
            Refused::Quietly => {}
            Refused::Counted(rule) => {
                if let Some(fleet) = &mut self.fleet {
                    fleet.refuse(rule);
                }
            }
            Refused::Said(rule, line) => self.refuse_from_fleet(rule, line),
        }
    }

    /// A refusal that protects this host: counted, and said (folded under a flood).
    fn refuse_from_fleet(&mut self, rule: RefusedBy, line: String) {
        if let Some(fleet) = &mut self.fleet {
            fleet.refuse(rule);
        }
        if self.fold.offer(report::Folded::Fleet, self.clock.now()) {
            self.warn(line);
        }
    }

    /// Another host's unblock of `net`: it lifts here only a block that host's own block made
    /// (never a detection here, a block by hand, a sweep counted here, nor a third host's
    /// block), within its per-origin cap; that host's older blocks of `net` are not taken
    /// again.
    fn unblock_from_fleet(&mut self, origin: &HostName, net: IpNet, at: Timestamp) {
        let now = self.clock.now();
        let wall_now = self.wall.to_wall(now);
        let Some(fleet) = &mut self.fleet else {
            return;
        };
        // The same unblock again (from the bucket at a reconnection) changes nothing.
        let key = (Some(origin.clone()), net);
        if fleet.lifted.get(&key).is_some_and(|lifted| *lifted >= at) {
            return;
        }
        if !fleet.gate.judge_unblock(origin, wall_now) {
            return fleet.refuse(RefusedBy::UnblockCap);
        }
        fleet.lifted(Some(origin.clone()), net, at);
        let Some(block) = self.responder.block_of(net, now) else {
            return;
        };
        if block.why.origin.as_ref() != Some(origin) {
            if let Some(fleet) = &mut self.fleet {
                fleet.refuse(RefusedBy::NotItsBlock);
            }
            if self.options.verbosity >= Verbosity::Verbose {
                let whose = block
                    .why
                    .origin
                    .as_ref()
                    .map_or_else(|| "this host's".to_string(), |o| format!("{o}'s"));
                self.log(format!(
                    "kept the block of {}: {origin} asked the fleet to lift it, but it is \
                     {whose}",
                    source_text(&block.net)
                ));
            }
            return;
        }
        let actions = match self.responder.unblock(block.net, None, now) {
            Ok(actions) => actions,
            Err(_) => return,
        };
        match self.apply(&actions) {
            Ok(()) => {
                self.dirty = true;
                self.pipeline.forget(block.net);
                let verb = self.verb("unblocked", "would unblock");
                self.act(
                    Level::Info,
                    (Did::Unblock, Actor::Fleet),
                    (Some(block.net), None),
                    format!(
                        "{verb} {}: lifted fleet-wide from {origin}",
                        source_text(&block.net)
                    ),
                );
            }
            Err(e) => self.warn(format!(
                "could not carry out {origin}'s unblock of {}: {e}",
                source_text(&net)
            )),
        }
    }

    /// The fleet line of `status`: the engine's figures, and the `link`'s as the shell read them.
    pub fn fleet_info(&self, link: Option<&LinkFigures>) -> Option<FleetInfo> {
        let fleet = self.fleet.as_ref()?;
        let link = link.cloned().unwrap_or_default();
        Some(FleetInfo {
            host: fleet.host.to_string(),
            connected: link.connected,
            server: link.server,
            members: fleet.live(self.clock.now()).len(),
            round_trip_us: link.round_trip_us,
            queued: link.queued,
            dropped: link.dropped_out + link.dropped_in.values().sum::<u64>(),
            sent: link.sent,
            received: fleet.received,
            taken: fleet.taken,
            refused: fleet
                .refused
                .iter()
                .map(|(rule, n)| ((*rule).to_string(), *n))
                .collect(),
            probes_sent: fleet.probes_sent,
            probes_dropped: fleet.probes_dropped,
            probes_refused: fleet
                .probes_refused
                .iter()
                .map(|(rule, n)| ((*rule).to_string(), *n))
                .collect(),
            sweeps: fleet.sweeps_found,
            dropped_in: link.dropped_in,
            bucket_refused: link.bucket_refused,
        })
    }

    /// This host's name in the fleet, when fleet mode is on.
    pub fn fleet_host(&self) -> Option<&HostName> {
        self.fleet.as_ref().map(|f| &f.host)
    }
}
