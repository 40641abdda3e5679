//! What makes a packet evidence a forger cannot cheaply make. **Pure.**
//!
//! An active responder's power to block is also a forger's: every check here keeps a packet
//! the kernel itself would not accept, or a source no scanner can have, from ever counting
//! towards a block. The checks that need the kernel's view (direction, reverse path,
//! established sessions) take it as an argument.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::host::fib::RouteBack;

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
}

impl ReversePath {
    /// Whether a probe that came in on interface `arrived_on` (when known) from a source whose
    /// route back is `back` passes. A source the host routes to itself (one of its own
    /// addresses) arriving from outside never does.
    pub fn passes(self, arrived_on: Option<u32>, back: RouteBack) -> bool {
        match (self, back) {
            (ReversePath::Off, _) => true,
            (_, RouteBack::None | RouteBack::Local) => false,
            (ReversePath::Loose, RouteBack::Via(_)) => true,
            (ReversePath::Strict, RouteBack::Via(oif)) => arrived_on.is_none_or(|i| i == oif),
        }
    }

    /// As the configuration writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ReversePath::Strict => "strict",
            ReversePath::Loose => "loose",
            ReversePath::Off => "off",
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

/// The peers of this host's established connections, as the kernel listed them: each remote
/// address with the local port of one of its connections. **Pure**, built by the shell from
/// the socket table.
#[derive(Clone, Debug, Default)]
pub struct Peers {
    /// Sorted by address; one entry per address.
    peers: Vec<(IpAddr, u16)>,
}

impl Peers {
    /// From `(remote address, local port)` pairs.
    pub fn new(pairs: impl IntoIterator<Item = (IpAddr, u16)>) -> Self {
        let mut peers: Vec<(IpAddr, u16)> = pairs
            .into_iter()
            .map(|(addr, port)| (addr.to_canonical(), port))
            .collect();
        peers.sort_unstable();
        peers.dedup_by_key(|(addr, _)| *addr);
        Peers { peers }
    }

    /// A peer inside `net` (what a block of `net` would cut off), with the local port of one
    /// of its connections.
    pub fn within(&self, net: ipnet::IpNet) -> Option<(IpAddr, u16)> {
        let net = net.trunc();
        let first = self
            .peers
            .partition_point(|(a, _)| match (a, net.network()) {
                (IpAddr::V4(a), IpAddr::V4(n)) => *a < n,
                (IpAddr::V6(a), IpAddr::V6(n)) => *a < n,
                (IpAddr::V4(_), IpAddr::V6(_)) => true,
                (IpAddr::V6(_), IpAddr::V4(_)) => false,
            });
        self.peers
            .get(first)
            .copied()
            .filter(|(addr, _)| net.contains(addr))
    }

    /// How many peers.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
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

    #[test]
    fn a_peer_inside_a_block_is_found() {
        let peers = Peers::new([
            ("203.0.113.9".parse().unwrap(), 22),
            ("2001:db8:0:1::2".parse().unwrap(), 443),
            ("::ffff:198.51.100.7".parse().unwrap(), 80),
            ("203.0.113.9".parse().unwrap(), 8080),
        ]);
        assert_eq!(peers.len(), 3);
        let net = |s: &str| s.parse::<ipnet::IpNet>().unwrap();
        assert_eq!(
            peers.within(net("203.0.113.9/32")),
            Some(("203.0.113.9".parse().unwrap(), 22))
        );
        assert_eq!(peers.within(net("203.0.113.0/24")).map(|p| p.1), Some(22));
        assert_eq!(peers.within(net("203.0.113.10/32")), None);
        assert_eq!(
            peers.within(net("2001:db8:0:1::/64")).map(|p| p.1),
            Some(443)
        );
        assert_eq!(peers.within(net("2001:db8:0:2::/64")), None);
        assert_eq!(
            peers.within(net("198.51.100.7/32")).map(|p| p.1),
            Some(80),
            "v4-mapped"
        );
        assert_eq!(peers.within(net("0.0.0.0/0")).map(|p| p.1), Some(80));
    }
}
