//! What makes a packet evidence a forger cannot cheaply make. **Pure.**
//!
//! An active responder's power to block is also a forger's: every check here keeps a packet
//! the kernel itself would not accept, or a source no scanner can have, from ever counting
//! towards a block. The checks that need the kernel's view (direction, reverse path,
//! established sessions) take it as an argument.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::time::Timestamp;

/// How the kernel would route a packet back to a source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteBack {
    /// Out of interface number `oif`.
    Via(u32),
    /// To this host itself (the source is one of its addresses).
    Local,
    /// No way back: no route, or a blackhole, unreachable or prohibit route.
    None,
}

/// `[respond] reverse-path`: whether a probe's source must be reachable back the way the probe
/// came, as the kernel's `rp_filter` asks of every packet. Forging a source is cheap; forging one
/// that the host routes back through the very interface the forger is on is not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReversePath {
    /// The route back to the source leaves by the interface the probe came in on (where the
    /// capture names it; else as `Loose`).
    #[default]
    Strict,
    /// There is a route back to the source at all.
    Loose,
    /// No check.
    Off,
    /// As the host's own `rp_filter` setting for IPv4 sources, read at each check: the larger of
    /// `net.ipv4.conf.all.rp_filter` and that of the interface the probe came in on (0 off, 1
    /// strict, 2 loose), as the kernel takes it. IPv6 has no such setting: strict.
    Kernel,
}

impl ReversePath {
    /// The check the kernel makes for IPv4 with `rp_filter` values `all` and `interface`.
    pub fn from_rp_filter(all: u8, interface: u8) -> ReversePath {
        match all.max(interface) {
            0 => ReversePath::Off,
            1 => ReversePath::Strict,
            _ => ReversePath::Loose,
        }
    }

    /// Whether a probe that came in on interface `arrived_on` (when known) from a source whose
    /// route back is `back` passes. A source the host routes to itself (one of its own
    /// addresses) arriving from outside never does.
    pub fn passes(self, arrived_on: Option<u32>, back: RouteBack) -> bool {
        match (self, back) {
            (ReversePath::Off, _) => true,
            (_, RouteBack::None | RouteBack::Local) => false,
            (ReversePath::Loose, RouteBack::Via(_)) => true,
            // `Kernel` is resolved by the caller (`from_rp_filter`); unresolved, it is strict.
            (ReversePath::Strict | ReversePath::Kernel, RouteBack::Via(oif)) => {
                arrived_on.is_none_or(|i| i == oif)
            }
        }
    }

    /// As the configuration writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ReversePath::Strict => "strict",
            ReversePath::Loose => "loose",
            ReversePath::Off => "off",
            ReversePath::Kernel => "kernel",
        }
    }
}

/// `[respond] protect`: whether a source this host is in conversation with may be blocked on
/// probe evidence alone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protect {
    /// A source with an established TCP connection to this host is reported, not blocked (a
    /// block by hand still works): the administrator who scans the host from the workstation
    /// they are logged in from keeps the session.
    #[default]
    Established,
    /// No protection.
    None,
}

impl Protect {
    /// As the configuration writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Protect::Established => "established",
            Protect::None => "none",
        }
    }
}

/// How long a conversation must have lasted to be remembered for `[respond] protect-for` after
/// it ends: an administrator's session does; a scanner's connect to an open port, or a page
/// fetched, does not.
pub const REMEMBER_AFTER: Duration = Duration::from_secs(60);
/// At most this many established connections are followed (the kernel's table can be larger on
/// a busy server; the rest protect only while a later reading finds room for them).
pub const MAX_FOLLOWED: usize = 65_536;
/// At most this many ended conversations are remembered (those that ended longest ago go).
pub const MAX_REMEMBERED: usize = 4_096;

/// One conversation of this host with a peer, as the daemon followed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conversation {
    /// The remote address.
    pub peer: IpAddr,
    /// The local port of the connection.
    pub port: u16,
    /// When the daemon first found it established (within a second of its start, once the
    /// daemon runs).
    pub since: Timestamp,
    /// When it was last found established, if it has ended; `None` while it lasts.
    pub ended: Option<Timestamp>,
}

/// This host's conversations over time, from readings of the kernel's socket table (its
/// established TCP connections: a handshake the kernel completed, which a forger off the path
/// cannot). **Pure**: the shell reads the table and hands the connections in.
///
/// A peer protects its addresses from probe evidence that began after one of its
/// conversations did: a connection established now, or one that lasted [`REMEMBER_AFTER`] or
/// more and ended within `protect-for`. Memory: at most [`MAX_FOLLOWED`] connections and
/// [`MAX_REMEMBERED`] ended conversations.
#[derive(Clone, Debug, Default)]
pub struct Peers {
    /// Connections found established at the last reading: (peer, local port, remote port) and
    /// when each was first found.
    open: HashMap<(IpAddr, u16, u16), Timestamp>,
    /// Ended conversations worth remembering, one per peer (its earliest start, latest end).
    remembered: HashMap<IpAddr, Conversation>,
    /// The earliest conversation of each peer, open or remembered, sorted by address.
    index: Vec<Conversation>,
    /// When the table was last read.
    last_read: Option<Timestamp>,
    protect_for: Duration,
}

impl Peers {
    /// No conversations yet; ended ones are remembered for `protect_for` (none for zero).
    pub fn new(protect_for: Duration) -> Self {
        Peers {
            protect_for,
            ..Peers::default()
        }
    }

    /// Changes how long ended conversations are remembered (a reload).
    pub fn set_protect_for(&mut self, protect_for: Duration, now: Timestamp) {
        self.protect_for = protect_for;
        self.forget_expired(now);
        self.reindex();
    }

    /// A reading of the socket table at `now`: each established connection as `(remote
    /// address, local port, remote port)`. Connections no longer listed have ended.
    pub fn observe(
        &mut self,
        now: Timestamp,
        connections: impl IntoIterator<Item = (IpAddr, u16, u16)>,
    ) {
        let mut open = HashMap::with_capacity(self.open.len());
        for (peer, port, remote_port) in connections {
            if open.len() == MAX_FOLLOWED {
                break;
            }
            let key = (peer.to_canonical(), port, remote_port);
            let since = self.open.get(&key).copied().unwrap_or(now);
            open.insert(key, since);
        }
        let last_read = self.last_read.unwrap_or(now);
        for (key, since) in std::mem::replace(&mut self.open, open) {
            if self.open.contains_key(&key) {
                continue;
            }
            let (peer, port, _) = key;
            if self.protect_for.is_zero() || last_read.saturating_since(since) < REMEMBER_AFTER {
                continue;
            }
            let ended = Conversation {
                peer,
                port,
                since,
                ended: Some(last_read),
            };
            self.remembered
                .entry(peer)
                .and_modify(|c| {
                    if since < c.since {
                        (c.since, c.port) = (since, port);
                    }
                    c.ended = c.ended.max(Some(last_read));
                })
                .or_insert(ended);
        }
        self.last_read = Some(now);
        self.forget_expired(now);
        self.reindex();
    }

    /// Drops remembered conversations past `protect-for`, and the oldest past the bound.
    fn forget_expired(&mut self, now: Timestamp) {
        let protect_for = self.protect_for;
        self.remembered.retain(|_, c| {
            c.ended.is_some_and(|end| {
                now.saturating_since(end) <= protect_for && !protect_for.is_zero()
            })
        });
        if self.remembered.len() > MAX_REMEMBERED {
            let mut ends: Vec<Timestamp> =
                self.remembered.values().filter_map(|c| c.ended).collect();
            ends.sort_unstable();
            let cut = ends[ends.len() - MAX_REMEMBERED];
            self.remembered.retain(|_, c| c.ended >= Some(cut));
            // Ties at the cut: drop arbitrary ones down to the bound.
            let excess = self.remembered.len().saturating_sub(MAX_REMEMBERED);
            let drop: Vec<IpAddr> = self.remembered.keys().take(excess).copied().collect();
            for peer in drop {
                self.remembered.remove(&peer);
            }
        }
    }

    fn reindex(&mut self) {
        let mut index: Vec<Conversation> = self
            .open
            .iter()
            .map(|(&(peer, port, _), &since)| Conversation {
                peer,
                port,
                since,
                ended: None,
            })
            .chain(self.remembered.values().copied())
            .collect();
        // Per peer, the earliest conversation; an open one before an ended one of the same start.
        index.sort_unstable_by_key(|c| (c.peer, c.since, c.ended.is_some(), c.port));
        index.dedup_by_key(|c| c.peer);
        self.index = index;
    }

    /// A conversation that protects `net` (what a block would cut off) from evidence that began
    /// at `evidence_from`: one of a peer inside `net` that had begun by then.
    pub fn protecting(&self, net: ipnet::IpNet, evidence_from: Timestamp) -> Option<Conversation> {
        let net = net.trunc();
        let first = self
            .index
            .partition_point(|c| match (c.peer, net.network()) {
                (IpAddr::V4(a), IpAddr::V4(n)) => a < n,
                (IpAddr::V6(a), IpAddr::V6(n)) => a < n,
                (IpAddr::V4(_), IpAddr::V6(_)) => true,
                (IpAddr::V6(_), IpAddr::V4(_)) => false,
            });
        self.index[first..]
            .iter()
            .take_while(|c| net.contains(&c.peer))
            .find(|c| c.since <= evidence_from)
            .copied()
    }

    /// The peers protected now, ascending (the kernel's first line never counts them).
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.index.iter().map(|c| c.peer)
    }

    /// How many peers are protected now (their earliest conversation open or remembered).
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

/// Why a source address cannot be a scanner's: no host on another network can send from it,
/// and a packet that claims it was forged (or is noise of the local link).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unroutable {
    /// `0.0.0.0/8`, `::`.
    Unspecified,
    /// `127.0.0.0/8`, `::1`: never from a wire.
    Loopback,
    /// `224.0.0.0/4`, `ff00::/8`: a group, not a sender.
    Multicast,
    /// `240.0.0.0/4`, `255.255.255.255` among them.
    Reserved,
    /// `169.254.0.0/16`, `fe80::/10`: never routed, and anyone on the link may claim one; a
    /// block of one would hold on every link.
    LinkLocal,
    /// `::ffff:0:0/96`: an IPv4 address in IPv6 clothes (its block would land on the IPv4
    /// address).
    V4Mapped,
    /// `::/96` (deprecated IPv4-compatible addresses).
    V4Compatible,
}

impl Unroutable {
    /// Why `ip` cannot be a scanner's source, if it cannot.
    pub fn of(ip: IpAddr) -> Option<Unroutable> {
        match ip {
            IpAddr::V4(a) => Self::of_v4(a),
            IpAddr::V6(a) => Self::of_v6(a),
        }
    }

    fn of_v4(a: Ipv4Addr) -> Option<Unroutable> {
        match a.octets() {
            [0, ..] => Some(Unroutable::Unspecified),
            [127, ..] => Some(Unroutable::Loopback),
            [169, 254, ..] => Some(Unroutable::LinkLocal),
            [224..=239, ..] => Some(Unroutable::Multicast),
            [240..=255, ..] => Some(Unroutable::Reserved),
            _ => None,
        }
    }

    fn of_v6(a: Ipv6Addr) -> Option<Unroutable> {
        let bits = a.to_bits();
        match bits {
            0 => Some(Unroutable::Unspecified),
            1 => Some(Unroutable::Loopback),
            _ if bits >> 120 == 0xff => Some(Unroutable::Multicast),
            _ if bits >> 118 == 0x3fa => Some(Unroutable::LinkLocal),
            _ if bits >> 32 == 0xffff => Some(Unroutable::V4Mapped),
            _ if bits >> 32 == 0 => Some(Unroutable::V4Compatible),
            _ => None,
        }
    }

    /// A short lower-case name, for counters and `why`.
    pub fn as_str(self) -> &'static str {
        match self {
            Unroutable::Unspecified => "unspecified",
            Unroutable::Loopback => "loopback",
            Unroutable::Multicast => "multicast",
            Unroutable::Reserved => "reserved or broadcast",
            Unroutable::LinkLocal => "link-local",
            Unroutable::V4Mapped => "IPv4-mapped",
            Unroutable::V4Compatible => "IPv4-compatible",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_no_scanner_can_have_are_named() {
        use Unroutable::*;
        for (addr, why) in [
            ("0.0.0.0", Some(Unspecified)),
            ("0.1.2.3", Some(Unspecified)),
            ("127.0.0.1", Some(Loopback)),
            ("169.254.1.1", Some(LinkLocal)),
            ("224.0.0.1", Some(Multicast)),
            ("239.255.255.250", Some(Multicast)),
            ("240.0.0.1", Some(Reserved)),
            ("255.255.255.255", Some(Reserved)),
            ("::", Some(Unspecified)),
            ("::1", Some(Loopback)),
            ("ff02::1", Some(Multicast)),
            ("fe80::2", Some(LinkLocal)),
            ("febf::1", Some(LinkLocal)),
            ("::ffff:198.51.100.50", Some(V4Mapped)),
            ("::198.51.100.50", Some(V4Compatible)),
            ("198.51.100.2", None),
            ("203.0.113.7", None),
            ("2001:db8::2", None),
            ("fec0::1", None),
            ("64:ff9b::c633:6402", None),
        ] {
            assert_eq!(Unroutable::of(addr.parse().unwrap()), why, "{addr}");
        }
    }

    #[test]
    fn kernel_follows_rp_filter_as_the_kernel_combines_it() {
        use ReversePath::{Loose, Off, Strict};
        for (all, interface, mode) in [
            (0, 0, Off),
            (1, 0, Strict),
            (0, 1, Strict),
            (2, 1, Loose),
            (1, 2, Loose),
            (0, 2, Loose),
        ] {
            assert_eq!(
                ReversePath::from_rp_filter(all, interface),
                mode,
                "{all} {interface}"
            );
        }
    }

    #[test]
    fn the_reverse_path_is_judged_like_rp_filter() {
        use ReversePath::{Loose, Off, Strict};
        let (on_2, on_3) = (Some(2), Some(3));
        for (mode, arrived, back, passes) in [
            (Strict, on_2, RouteBack::Via(2), true),
            (Strict, on_3, RouteBack::Via(2), false),
            (Strict, None, RouteBack::Via(2), true),
            (Strict, on_2, RouteBack::None, false),
            (Strict, on_2, RouteBack::Local, false),
            (Loose, on_3, RouteBack::Via(2), true),
            (Loose, on_3, RouteBack::None, false),
            (Off, on_3, RouteBack::None, true),
        ] {
            assert_eq!(
                mode.passes(arrived, back),
                passes,
                "{mode:?} {arrived:?} {back:?}"
            );
        }
    }

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_micros(1_800_000_000_000_000 + secs * 1_000_000)
    }

    fn net(s: &str) -> ipnet::IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_peer_inside_a_block_is_found_if_its_conversation_came_first() {
        let mut peers = Peers::new(Duration::from_secs(3600));
        peers.observe(
            at(100),
            [
                (ip("203.0.113.9"), 22, 50_000),
                (ip("2001:db8:0:1::2"), 443, 50_001),
                (ip("::ffff:198.51.100.7"), 80, 50_002),
                (ip("203.0.113.9"), 8080, 50_003),
            ],
        );
        assert_eq!(peers.len(), 3);
        let found = peers.protecting(net("203.0.113.9/32"), at(100)).unwrap();
        assert_eq!(
            (found.peer, found.port, found.since, found.ended),
            (ip("203.0.113.9"), 22, at(100), None)
        );
        // Evidence that began before the conversation: a scanner's own connection protects
        // nothing.
        assert_eq!(peers.protecting(net("203.0.113.9/32"), at(99)), None);
        assert_eq!(
            peers
                .protecting(net("203.0.113.0/24"), at(200))
                .map(|c| c.port),
            Some(22)
        );
        assert_eq!(peers.protecting(net("203.0.113.10/32"), at(200)), None);
        assert_eq!(
            peers
                .protecting(net("2001:db8:0:1::/64"), at(200))
                .map(|c| c.port),
            Some(443)
        );
        assert_eq!(peers.protecting(net("2001:db8:0:2::/64"), at(200)), None);
        assert_eq!(
            peers
                .protecting(net("198.51.100.7/32"), at(200))
                .map(|c| c.port),
            Some(80),
            "v4-mapped"
        );
        assert_eq!(
            peers.protecting(net("0.0.0.0/0"), at(200)).map(|c| c.port),
            Some(80)
        );
        // A later reading keeps the first time a connection was found.
        peers.observe(at(101), [(ip("203.0.113.9"), 22, 50_000)]);
        assert_eq!(
            peers
                .protecting(net("203.0.113.9/32"), at(300))
                .unwrap()
                .since,
            at(100)
        );
        assert_eq!(
            peers.len(),
            1,
            "the others ended within a minute: not remembered"
        );
    }

    #[test]
    fn a_conversation_of_a_minute_or_more_is_remembered_for_protect_for() {
        let admin = (ip("203.0.113.2"), 22, 40_000);
        let visitor = (ip("203.0.113.3"), 443, 40_001);
        let mut peers = Peers::new(Duration::from_secs(3600));
        peers.observe(at(0), [admin, visitor]);
        peers.observe(at(30), [admin]); // the visitor's page is done in half a minute
        peers.observe(at(90), [admin]);
        peers.observe(at(91), []); // the admin logged out, 90 s after the first reading
        let c = peers.protecting(net("203.0.113.2/32"), at(500)).unwrap();
        assert_eq!((c.port, c.since, c.ended), (22, at(0), Some(at(90))));
        assert_eq!(peers.protecting(net("203.0.113.3/32"), at(500)), None);
        // Within protect-for of its end, and no longer.
        peers.observe(at(90 + 3600), []);
        assert!(peers.protecting(net("203.0.113.2/32"), at(3000)).is_some());
        peers.observe(at(91 + 3600), []);
        assert_eq!(peers.protecting(net("203.0.113.2/32"), at(3000)), None);
        assert!(peers.is_empty());
        // protect-for = 0: only what is established.
        let mut now_only = Peers::new(Duration::ZERO);
        now_only.observe(at(0), [admin]);
        now_only.observe(at(120), [admin]);
        now_only.observe(at(121), []);
        assert!(now_only.is_empty());
    }

    /// Memory is bounded whatever the socket table holds: at most MAX_FOLLOWED connections,
    /// MAX_REMEMBERED ended conversations, those that ended last kept.
    #[test]
    fn the_peers_memory_is_bounded() {
        let v6 = |i: u128| IpAddr::from(std::net::Ipv6Addr::from((0x2001_0db8_u128 << 96) | i));
        let mut peers = Peers::new(Duration::from_secs(86_400));
        let many = (0..MAX_FOLLOWED as u128 + 5).map(|i| (v6(i), 22, 40_000));
        peers.observe(at(0), many);
        assert_eq!(peers.len(), MAX_FOLLOWED);
        // Ten long conversations end first, then MAX_REMEMBERED more.
        let early: Vec<_> = (0..10).map(|i| (v6(1 << 40 | i), 22, 40_000)).collect();
        let late: Vec<_> = (0..MAX_REMEMBERED as u128)
            .map(|i| (v6(2 << 40 | i), 22, 40_000))
            .collect();
        peers.observe(at(1), early.iter().chain(&late).copied());
        peers.observe(at(100), early.iter().chain(&late).copied());
        peers.observe(at(101), late.iter().copied());
        peers.observe(at(200), late.iter().copied());
        peers.observe(at(201), []);
        assert_eq!(peers.len(), MAX_REMEMBERED);
        assert_eq!(peers.protecting(net("2001:db8::100:0:0/96"), at(300)), None);
        assert!(
            peers
                .protecting(net("2001:db8::200:0:0/96"), at(300))
                .is_some()
        );
    }
}
