//! Sweeps: one scanner probing a port or two on many hosts, so that no host sees a scan.
//! **Pure**; time is an argument.
//!
//! Each host publishes what it was probed with as summaries (scanner prefix, port, kind, the
//! local checks the probe passed), each (prefix, port) once per window, and only once the probe
//! passed the checks a block of its source would need there (the engine's `fleet_probes`). Every scanner prefix has one **owner** among the live
//! members, chosen by rendezvous hashing ([`owner`]): each member's weight for the prefix is a
//! hash of both, the heaviest owns it. Every host computes the same owner from the same
//! members, with no coordination, and when a member comes or goes only the prefixes it owned (or
//! now wins) change hands. The owner counts ([`Sweeps`]) distinct hosts per port and distinct
//! (host, port) pairs per prefix within the window; past `[fleet.sweep] hosts` on one port, or
//! `pairs` in all from [`MIN_HOSTS`] hosts at least (one host holds at most a third of them), it
//! is a sweep, which the owner blocks through its own rules and publishes.
//! Counts begin afresh at a new owner.
//!
//! Memory is bounded: at most [`MAX_PREFIXES`] prefixes and [`MAX_PAIRS`] pairs in all (the
//! least recently probed prefix of the host whose summaries began the most gives way: one
//! host's flood forgets its own counts), each prefix with at most `pairs` pairs (a prefix that
//! reaches them is a sweep already).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use hashlink::LinkedHashMap;
use ipnet::IpNet;

use super::message::HostName;
use crate::time::Timestamp;

/// Scanner prefixes counted at most.
pub const MAX_PREFIXES: usize = 16_384;
/// (host, port) pairs counted at most, over every prefix.
pub const MAX_PAIRS: usize = 262_144;
/// Distinct hosts a sweep takes at least, by either rule.
pub const MIN_HOSTS: usize = 3;

/// A member's weight for `prefix`: 64 bits of FNV-1a over both, mixed (splitmix64's finaliser).
/// Fixed, so that every host and every version computes the same owner.
fn weight(member: &str, prefix: &IpNet) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let text = prefix.to_string();
    for b in member.bytes().chain([0]).chain(text.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The owner of `prefix` among `members` (rendezvous hashing; ties, which need equal 64-bit
/// weights, go to the smaller name). `None` without members.
pub fn owner<'m>(
    prefix: &IpNet,
    members: impl IntoIterator<Item = &'m HostName>,
) -> Option<&'m HostName> {
    members.into_iter().max_by(|a, b| {
        weight(a.as_str(), prefix)
            .cmp(&weight(b.as_str(), prefix))
            .then_with(|| b.cmp(a))
    })
}

/// One probe a host reported: which host, which port (`22/tcp`), which kind, when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// The host probed.
    pub host: HostName,
    /// The port, as `22/tcp`.
    pub port: String,
    /// The probe's kind (`syn`).
    pub kind: String,
    /// When (wall clock).
    pub at: Timestamp,
}

/// A sweep found: the prefix, the hosts and ports it probed, its kinds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sweep {
    /// The scanner's prefix.
    pub source: IpNet,
    /// The hosts probed, in name order.
    pub hosts: Vec<HostName>,
    /// The ports probed, in order.
    pub ports: Vec<String>,
    /// The kinds of its probes, `+`-joined in order.
    pub kind: String,
    /// Its first probe counted (wall clock).
    pub first: Timestamp,
}

/// The thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    /// Distinct hosts on one port.
    pub hosts: u32,
    /// Distinct (host, port) pairs.
    pub pairs: u32,
    /// Within.
    pub window: Duration,
}

#[derive(Debug, Default)]
struct Prefix {
    /// (host, port) → (kind, when first seen).
    pairs: HashMap<(HostName, String), (String, Timestamp)>,
    /// The pairs in the order they were first seen, to let them leave the window.
    order: VecDeque<((HostName, String), Timestamp)>,
    /// Hosts probed per port.
    per_port: HashMap<String, usize>,
    /// Pairs per host.
    per_host: HashMap<HostName, usize>,
    /// The host whose summary began the count (it answers for the room the prefix takes).
    creator: Option<HostName>,
}

impl Prefix {
    /// Lets the pairs first seen before `horizon` go; how many went.
    fn expire(&mut self, horizon: Timestamp) -> usize {
        let mut gone = 0;
        while self.order.front().is_some_and(|(_, at)| *at < horizon) {
            let (key, _) = self.order.pop_front().expect("a front");
            self.pairs.remove(&key);
            if let Some(n) = self.per_port.get_mut(&key.1) {
                *n -= 1;
                if *n == 0 {
                    self.per_port.remove(&key.1);
                }
            }
            if let Some(n) = self.per_host.get_mut(&key.0) {
                *n -= 1;
                if *n == 0 {
                    self.per_host.remove(&key.0);
                }
            }
            gone += 1;
        }
        gone
    }
}

/// The owner's counts.
#[derive(Debug)]
pub struct Sweeps {
    thresholds: Thresholds,
    prefixes: LinkedHashMap<IpNet, Prefix>,
    /// Pairs over every prefix.
    pairs: usize,
    /// Prefixes counted now, per the host that began each, least recently probed first.
    created: HashMap<HostName, LinkedHashMap<IpNet, ()>>,
}

impl Sweeps {
    /// Nothing counted yet.
    pub fn new(thresholds: Thresholds) -> Self {
        Sweeps {
            thresholds,
            prefixes: LinkedHashMap::new(),
            pairs: 0,
            created: HashMap::new(),
        }
    }

    /// New thresholds; the counts stay.
    pub fn set_thresholds(&mut self, thresholds: Thresholds) {
        self.thresholds = thresholds;
    }

    /// Forgets what `source` did (it was blocked or unblocked: it starts afresh).
    pub fn forget(&mut self, source: &IpNet) {
        self.remove(source);
    }

    /// Removes the count of `source`, if there is one, with what it took.
    fn remove(&mut self, source: &IpNet) -> Option<Prefix> {
        let gone = self.prefixes.remove(source)?;
        self.pairs -= gone.pairs.len();
        if let Some(creator) = &gone.creator
            && let Some(its) = self.created.get_mut(creator)
        {
            its.remove(source);
            if its.is_empty() {
                self.created.remove(creator);
            }
        }
        Some(gone)
    }

    /// Makes room for one more prefix: the least recently probed prefix of the host that began
    /// the most gives way, so that one host's flood of prefixes (a compromised member's, or
    /// forged probes at one host) forgets its own counts, not the others'. Whether one went.
    fn make_room(&mut self) -> bool {
        let victim = self
            .created
            .iter()
            .max_by(|a, b| a.1.len().cmp(&b.1.len()).then_with(|| b.0.cmp(a.0)))
            .and_then(|(_, its)| its.front().map(|(source, ())| *source))
            .or_else(|| self.prefixes.front().map(|(source, _)| *source));
        match victim {
            Some(source) => self.remove(&source).is_some(),
            None => false,
        }
    }

    /// Pairs counted now, over every prefix.
    pub fn pairs(&self) -> usize {
        self.pairs
    }

    /// Prefixes counted now.
    pub fn len(&self) -> usize {
        self.prefixes.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty()
    }

    /// Counts `seen` for `source` at `now` (wall clock); the sweep, when this makes one (the
    /// prefix then starts afresh).
    pub fn count(&mut self, source: IpNet, seen: Seen, now: Timestamp) -> Option<Sweep> {
        let t = self.thresholds;
        let horizon = now.saturating_sub(t.window);
        if seen.at < horizon {
            return None;
        }
        // Never later than now: a pair dated in the future would stay in the window for as
        // long as its sender liked.
        let seen = Seen {
            at: seen.at.min(now),
            ..seen
        };
        self.touch(source, &seen.host);
        let prefix = self.prefixes.get_mut(&source).expect("just made");
        self.pairs -= prefix.expire(horizon);
        let cap = usize::try_from(t.pairs).unwrap_or(usize::MAX);
        let (counted, port) = prefix.add(seen, cap, self.pairs < MAX_PAIRS);
        self.pairs += usize::from(counted);
        if !prefix.swept(&port, cap, t.hosts) {
            return None;
        }
        let prefix = self.remove(&source).expect("counted just now");
        Some(prefix.sweep(source, now))
    }

    /// The count of `source`, made the most recently probed; begun by `host` if new, after
    /// making room for it ([`Sweeps::make_room`]).
    fn touch(&mut self, source: IpNet, host: &HostName) {
        while !self.prefixes.contains_key(&source)
            && (self.prefixes.len() >= MAX_PREFIXES || self.pairs >= MAX_PAIRS)
        {
            if !self.make_room() {
                break;
            }
        }
        if let Some(prefix) = self.prefixes.to_back(&source) {
            if let Some(creator) = &prefix.creator
                && let Some(its) = self.created.get_mut(creator)
            {
                its.to_back(&source);
            }
        } else {
            self.created
                .entry(host.clone())
                .or_default()
                .insert(source, ());
            self.prefixes.insert(
                source,
                Prefix {
                    creator: Some(host.clone()),
                    ..Prefix::default()
                },
            );
        }
    }
}

impl Prefix {
    /// Counts the pair of `seen` if it is new, the prefix holds fewer than `cap`, its host
    /// fewer than its share, and there is `room` over every prefix. Whether it was counted,
    /// and its port.
    ///
    /// One host holds at most a third of the pairs (rounded up), so the pairs rule takes three
    /// hosts at least: a scan of one host is that host's detector's to judge (with its
    /// reverse-path check), never a sweep, however many ports it probes; nor are two hosts'
    /// summaries (one of them may be a compromised member's).
    fn add(&mut self, seen: Seen, cap: usize, room: bool) -> (bool, String) {
        let per_host_cap = cap.div_ceil(3).max(1);
        let key = (seen.host, seen.port);
        let host_pairs = self.per_host.get(&key.0).copied().unwrap_or(0);
        let counted = !self.pairs.contains_key(&key)
            && self.pairs.len() < cap
            && host_pairs < per_host_cap
            && room;
        if counted {
            self.pairs.insert(key.clone(), (seen.kind, seen.at));
            self.order.push_back((key.clone(), seen.at));
            *self.per_port.entry(key.1.clone()).or_default() += 1;
            *self.per_host.entry(key.0).or_default() += 1;
        }
        (counted, key.1)
    }

    /// Whether the prefix is a sweep: `hosts` hosts (at least [`MIN_HOSTS`]) on `port`, or
    /// `cap` pairs over [`MIN_HOSTS`] hosts at least.
    fn swept(&self, port: &str, cap: usize, hosts: u32) -> bool {
        let on_port = self.per_port.get(port).copied().unwrap_or(0);
        on_port >= usize::try_from(hosts).unwrap_or(usize::MAX).max(MIN_HOSTS)
            || (self.pairs.len() >= cap && self.per_host.len() >= MIN_HOSTS)
    }

    /// The sweep this prefix makes, as `source`'s.
    fn sweep(self, source: IpNet, now: Timestamp) -> Sweep {
        let hosts: BTreeSet<HostName> = self.pairs.keys().map(|(h, _)| h.clone()).collect();
        let ports: BTreeSet<String> = self.pairs.keys().map(|(_, p)| p.clone()).collect();
        let kinds: BTreeSet<&str> = self.pairs.values().map(|(k, _)| k.as_str()).collect();
        let first = self.pairs.values().map(|(_, at)| *at).min().unwrap_or(now);
        Sweep {
            source,
            hosts: hosts.into_iter().collect(),
            ports: ports.into_iter().collect(),
            kind: kinds.into_iter().collect::<Vec<_>>().join("+"),
            first,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str) -> HostName {
        HostName::new(name).unwrap()
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_micros(secs * 1_000_000)
    }

    fn seen(h: &str, port: &str, secs: u64) -> Seen {
        Seen {
            host: host(h),
            port: port.into(),
            kind: "syn".into(),
            at: at(secs),
        }
    }

    fn members(n: usize) -> Vec<HostName> {
        (1..=n).map(|i| host(&format!("web-{i}"))).collect()
    }

    #[test]
    fn every_prefix_has_one_owner_and_prefixes_spread_over_the_members() {
        let fleet = members(16);
        let mut owned = std::collections::BTreeMap::<&HostName, usize>::new();
        for i in 0..4096_u32 {
            let prefix = IpNet::from(std::net::IpAddr::from(i.to_be_bytes()));
            let a = owner(&prefix, &fleet).unwrap();
            // Whatever order the members are listed in.
            assert_eq!(owner(&prefix, fleet.iter().rev()), Some(a));
            *owned.entry(a).or_default() += 1;
        }
        assert_eq!(owned.len(), 16);
        // 256 each on average: none far off.
        assert!(
            owned.values().all(|&n| (160..=352).contains(&n)),
            "{owned:?}"
        );
        assert_eq!(owner(&net("203.0.113.9/32"), &[]), None);
    }

    #[test]
    fn a_member_that_goes_takes_only_its_own_prefixes_elsewhere() {
        let fleet = members(16);
        let fewer: Vec<HostName> = fleet
            .iter()
            .filter(|h| h.as_str() != "web-7")
            .cloned()
            .collect();
        let mut moved = 0;
        for i in 0..4096_u32 {
            let prefix = IpNet::from(std::net::IpAddr::from(i.to_be_bytes()));
            let before = owner(&prefix, &fleet).unwrap();
            let after = owner(&prefix, &fewer).unwrap();
            if before != after {
                assert_eq!(before.as_str(), "web-7");
                moved += 1;
            } else {
                assert_ne!(before.as_str(), "web-7");
            }
        }
        assert!(moved > 0);
    }

    #[test]
    fn the_weights_are_fixed_across_hosts_and_versions() {
        // Every host must agree: a change here splits the fleet's owners between versions.
        assert_eq!(
            weight("web-1", &net("203.0.113.9/32")),
            weight("web-1", &net("203.0.113.9/32"))
        );
        assert_eq!(
            weight("web-1", &net("203.0.113.9/32")),
            6_091_974_209_060_670_449
        );
    }

    fn thresholds() -> Thresholds {
        Thresholds {
            hosts: 8,
            pairs: 16,
            window: Duration::from_secs(60),
        }
    }

    #[test]
    fn one_port_on_eight_hosts_is_a_sweep_seven_is_not() {
        let mut sweeps = Sweeps::new(thresholds());
        let scanner = net("203.0.113.9/32");
        for i in 1..=7 {
            assert_eq!(
                sweeps.count(scanner, seen(&format!("web-{i}"), "23/tcp", 100), at(100)),
                None
            );
        }
        // The same host again is not another host.
        assert_eq!(
            sweeps.count(scanner, seen("web-7", "23/tcp", 101), at(101)),
            None
        );
        let sweep = sweeps
            .count(scanner, seen("web-8", "23/tcp", 102), at(102))
            .unwrap();
        assert_eq!(sweep.source, scanner);
        assert_eq!(sweep.hosts.len(), 8);
        assert_eq!(sweep.ports, ["23/tcp"]);
        assert_eq!(sweep.kind, "syn");
        assert_eq!(sweep.first, at(100));
        // It starts afresh.
        assert!(sweeps.is_empty());
    }

    #[test]
    fn sixteen_pairs_on_fewer_hosts_are_a_sweep_and_old_probes_leave_the_window() {
        let mut sweeps = Sweeps::new(thresholds());
        let scanner = net("2001:db8:1::/64");
        // Four ports on each of four hosts: 16 pairs, no port on 8 hosts.
        let mut found = None;
        for (k, (h, p)) in (1..=4)
            .flat_map(|h| [22, 23, 80, 443].map(move |p| (h, p)))
            .enumerate()
        {
            let secs = 1000 + k as u64;
            found = sweeps.count(
                scanner,
                seen(&format!("web-{h}"), &format!("{p}/tcp"), secs),
                at(secs),
            );
            assert_eq!(found.is_some(), k == 15, "{k}");
        }
        assert_eq!(found.unwrap().ports.len(), 4);

        // Seven hosts, then the window passes: the eighth is not a sweep.
        for i in 1..=7 {
            sweeps.count(scanner, seen(&format!("web-{i}"), "23/tcp", 2000), at(2000));
        }
        assert_eq!(
            sweeps.count(scanner, seen("web-8", "23/tcp", 2061), at(2061)),
            None
        );
    }

    /// Issue 24: a sweep takes three hosts at least — one host holds at most a third of the
    /// pairs, and two hosts' pairs are no sweep however many; nor is one port on two hosts,
    /// whatever `hosts` says.
    #[test]
    fn a_sweep_takes_three_hosts_a_scan_of_one_or_two_never_is() {
        let mut sweeps = Sweeps::new(thresholds());
        let scanner = net("203.0.113.9/32");
        for port in 1..=100 {
            let s = seen("web-1", &format!("{port}/tcp"), 100);
            assert_eq!(sweeps.count(scanner, s, at(100)), None, "{port}");
        }
        // web-1 holds 6 pairs (a third of 16, rounded up); web-2 as many: no sweep.
        assert_eq!(sweeps.pairs(), 6);
        for port in 1..=100 {
            let s = seen("web-2", &format!("{port}/tcp"), 100);
            assert_eq!(sweeps.count(scanner, s, at(100)), None);
        }
        assert_eq!(sweeps.pairs(), 12);
        // Four more on a third host make the sweep.
        for port in 1..=3 {
            let s = seen("web-3", &format!("{port}/tcp"), 100);
            assert_eq!(sweeps.count(scanner, s, at(100)), None);
        }
        let sweep = sweeps
            .count(scanner, seen("web-3", "4/tcp", 100), at(100))
            .unwrap();
        assert_eq!(sweep.hosts.len(), 3);

        // Thresholds below three hosts (not a valid configuration) still take three.
        let mut sweeps = Sweeps::new(Thresholds {
            hosts: 2,
            pairs: 3,
            window: Duration::from_secs(60),
        });
        assert_eq!(
            sweeps.count(scanner, seen("web-1", "23/tcp", 100), at(100)),
            None
        );
        assert_eq!(
            sweeps.count(scanner, seen("web-2", "23/tcp", 100), at(100)),
            None
        );
        assert_eq!(
            sweeps.count(scanner, seen("web-2", "24/tcp", 100), at(100)),
            None
        );
        assert!(
            sweeps
                .count(scanner, seen("web-3", "23/tcp", 100), at(100))
                .is_some()
        );
    }

    #[test]
    fn a_pair_dated_in_the_future_leaves_the_window_like_one_seen_now() {
        let mut sweeps = Sweeps::new(thresholds());
        let scanner = net("203.0.113.9/32");
        // Seven hosts, one of them a day ahead.
        sweeps.count(scanner, seen("web-1", "23/tcp", 86_500), at(100));
        for i in 2..=7 {
            sweeps.count(scanner, seen(&format!("web-{i}"), "23/tcp", 100), at(100));
        }
        // A window later, they are all gone: the eighth host is no sweep.
        assert_eq!(
            sweeps.count(scanner, seen("web-8", "23/tcp", 161), at(161)),
            None
        );
        assert_eq!(sweeps.pairs(), 1);
    }

    /// Issue 24 (red team): a member that floods the owner with summaries of as many
    /// prefixes as it likes (it lies, or forged probes reach it) makes room with its own:
    /// a sweep the honest hosts are counting is not forgotten.
    #[test]
    fn a_flood_of_one_members_prefixes_forgets_only_its_own() {
        let mut sweeps = Sweeps::new(thresholds());
        let scanner = net("203.0.113.9/32");
        for i in 1..=4 {
            sweeps.count(scanner, seen(&format!("web-{i}"), "23/tcp", 100), at(100));
        }
        for i in 0..(2 * u32::try_from(MAX_PREFIXES).unwrap()) {
            let junk = IpNet::from(std::net::IpAddr::from((0x0a00_0000 + i).to_be_bytes()));
            assert_eq!(
                sweeps.count(junk, seen("web-9", "23/tcp", 101), at(101)),
                None
            );
        }
        assert!(sweeps.len() <= MAX_PREFIXES);
        for i in 5..=7 {
            let s = seen(&format!("web-{i}"), "23/tcp", 102);
            assert_eq!(sweeps.count(scanner, s, at(102)), None);
        }
        let sweep = sweeps.count(scanner, seen("web-8", "23/tcp", 102), at(102));
        assert_eq!(sweep.map(|s| s.hosts.len()), Some(8));

        // Nor when it keeps its own prefixes recently probed, behind 6,000 of the others'.
        let mut sweeps = Sweeps::new(thresholds());
        for i in 1..=4 {
            sweeps.count(scanner, seen(&format!("web-{i}"), "23/tcp", 100), at(100));
        }
        for i in 0..6000_u32 {
            let other = IpNet::from(std::net::IpAddr::from((0xc612_0000 + i).to_be_bytes()));
            let h = format!("web-{}", i % 4 + 1);
            sweeps.count(other, seen(&h, "23/tcp", 100), at(100));
        }
        for round in 0..3 {
            for i in 0..u32::try_from(MAX_PREFIXES).unwrap() {
                let junk = IpNet::from(std::net::IpAddr::from((0x0a00_0000 + i).to_be_bytes()));
                sweeps.count(junk, seen("web-9", "23/tcp", 101 + round), at(101 + round));
            }
        }
        for i in 5..=7 {
            let s = seen(&format!("web-{i}"), "23/tcp", 104);
            assert_eq!(sweeps.count(scanner, s, at(104)), None);
        }
        let sweep = sweeps.count(scanner, seen("web-8", "23/tcp", 104), at(104));
        assert_eq!(sweep.map(|s| s.hosts.len()), Some(8));
        assert!(sweeps.len() <= MAX_PREFIXES);
    }

    #[test]
    fn memory_is_bounded_by_prefixes_and_pairs() {
        let mut sweeps = Sweeps::new(Thresholds {
            hosts: 4096,
            pairs: 4096,
            window: Duration::from_secs(60),
        });
        for i in 0..(u32::try_from(MAX_PREFIXES).unwrap() + 100) {
            let prefix = IpNet::from(std::net::IpAddr::from(i.to_be_bytes()));
            sweeps.count(prefix, seen("web-1", "23/tcp", 5), at(5));
        }
        assert_eq!(sweeps.len(), MAX_PREFIXES);
        assert_eq!(sweeps.pairs(), MAX_PREFIXES);
        // Many pairs per prefix: the total stays within MAX_PAIRS.
        for i in 0..80_u32 {
            let prefix = IpNet::from(std::net::IpAddr::from((i + 1_000_000).to_be_bytes()));
            for port in 0..4095_u32 {
                let host = format!("web-{}", port % 3 + 1);
                sweeps.count(prefix, seen(&host, &format!("{port}/tcp"), 5), at(5));
            }
            assert!(sweeps.pairs() <= MAX_PAIRS, "{}", sweeps.pairs());
        }
        assert!(sweeps.pairs() > MAX_PAIRS / 2);
    }
}
