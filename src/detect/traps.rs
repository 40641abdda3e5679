//! Which destination ports are traps. **Pure.**
//!
//! A probe counts only when it reaches a trap. In `listed` mode the traps are explicit port
//! lists (PortSentry's way); in `unused` mode every port without a local listener is one. In both
//! modes a port with a listener is never a trap (a service that just started is never mistaken
//! for one), excluded ports never are, and UDP to the local ephemeral range is not by default
//! (late replies to closed client sockets land there).

use std::collections::HashSet;
use std::net::IpAddr;
use std::ops::RangeInclusive;

use crate::wire::Proto;

/// A set of ports as a 65,536-bit map: O(1) lookups, 8 KiB.
#[derive(Clone, PartialEq, Eq)]
pub struct PortSet(Box<[u64; 1024]>);

impl PortSet {
    /// The empty set.
    pub fn new() -> Self {
        PortSet(Box::new([0; 1024]))
    }

    /// A set holding the ports of `ranges`.
    pub fn from_ranges<'a>(ranges: impl IntoIterator<Item = &'a RangeInclusive<u16>>) -> Self {
        let mut set = PortSet::new();
        for r in ranges {
            for port in r.clone() {
                set.insert(port);
            }
        }
        set
    }

    /// Adds a port.
    pub fn insert(&mut self, port: u16) {
        self.0[usize::from(port >> 6)] |= 1 << (port & 63);
    }

    /// Whether `port` is in the set.
    pub fn contains(&self, port: u16) -> bool {
        self.0[usize::from(port >> 6)] & (1 << (port & 63)) != 0
    }

    /// How many ports are in the set.
    pub fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether the set is empty. Reads all 8 KiB of the set: for configuration and reports,
    /// never per packet ([`PortSet::contains`] reads one word).
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&w| w == 0)
    }

    /// The ports in the set, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        // Word by word: an empty word (most of them) costs one test, not 64.
        let words = (0..=u16::MAX >> 6)
            .zip(self.0.iter())
            .filter(|(_, word)| **word != 0);
        words.flat_map(|(i, &word)| {
            (0..64u16)
                .filter(move |bit| word & (1 << bit) != 0)
                .map(move |bit| (i << 6) | bit)
        })
    }
}

impl Default for PortSet {
    fn default() -> Self {
        PortSet::new()
    }
}

impl std::fmt::Debug for PortSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PortSet({} ports)", self.len())
    }
}

/// Tripwire ports (`[detect] tripwire-tcp`, `tripwire-udp`): ports where one probe from a
/// source that passes the trust rules makes a detection, PortSentry's classic behaviour. Empty
/// by default (off). Plain data, so the kernel's first line can load the same sets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tripwires {
    /// TCP tripwire ports.
    pub tcp: PortSet,
    /// UDP tripwire ports.
    pub udp: PortSet,
}

impl Tripwires {
    /// Whether `proto` `port` is a tripwire.
    pub fn contains(&self, proto: Proto, port: u16) -> bool {
        match proto {
            Proto::Tcp => self.tcp.contains(port),
            Proto::Udp => self.udp.contains(port),
            // Tripwires are TCP and UDP ports only.
            Proto::Sctp | Proto::Ip => false,
        }
    }

    /// Whether there are none (the default: off).
    pub fn is_empty(&self) -> bool {
        self.tcp.is_empty() && self.udp.is_empty()
    }

    /// The tripwires on which `listens` finds a listener, as `2323/tcp`, ascending: they are
    /// not traps while it listens (a port with a listener never is), so they are skipped, and
    /// the daemon says so.
    pub fn with_listeners(&self, listens: impl Fn(Proto, u16) -> bool) -> Vec<String> {
        [(Proto::Tcp, &self.tcp), (Proto::Udp, &self.udp)]
            .into_iter()
            .flat_map(|(proto, set)| set.iter().map(move |port| (proto, port)))
            .filter(|&(proto, port)| listens(proto, port))
            .map(|(proto, port)| proto.label(port))
            .collect()
    }
}

/// How trap ports are chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrapMode {
    /// Only the listed ports are traps.
    Listed {
        /// TCP trap ports.
        tcp: PortSet,
        /// UDP trap ports.
        udp: PortSet,
    },
    /// Every port without a local listener is a trap.
    Unused,
}

/// The local sockets that accept traffic: TCP listeners, bound UDP sockets, SCTP listeners
/// (when the kernel has SCTP, and as the host's INIT-ACKs show them), and IP protocols the host
/// was seen to speak (none unless a caller records them).
///
/// A socket bound to the wildcard address listens on every local address; one bound to a
/// specific address only on that one.
#[derive(Clone, Debug, Default)]
pub struct Listeners {
    any_tcp: PortSet,
    any_udp: PortSet,
    any_sctp: PortSet,
    any_ip: PortSet,
    specific: HashSet<(Proto, IpAddr, u16)>,
}

impl Listeners {
    /// No listeners at all.
    pub fn new() -> Self {
        Listeners::default()
    }

    /// Records a listening socket; `addr` is `None` (or unspecified) for the wildcard.
    pub fn insert(&mut self, proto: Proto, addr: Option<IpAddr>, port: u16) {
        match addr {
            Some(a) if !a.is_unspecified() => {
                self.specific.insert((proto, a.to_canonical(), port));
            }
            _ => self.any_mut(proto).insert(port),
        }
    }

    /// The wildcard listeners of `proto`.
    fn any(&self, proto: Proto) -> &PortSet {
        match proto {
            Proto::Tcp => &self.any_tcp,
            Proto::Udp => &self.any_udp,
            Proto::Sctp => &self.any_sctp,
            Proto::Ip => &self.any_ip,
        }
    }

    fn any_mut(&mut self, proto: Proto) -> &mut PortSet {
        match proto {
            Proto::Tcp => &mut self.any_tcp,
            Proto::Udp => &mut self.any_udp,
            Proto::Sctp => &mut self.any_sctp,
            Proto::Ip => &mut self.any_ip,
        }
    }

    /// Whether something listens on `proto` `dst`:`port`.
    pub fn contains(&self, proto: Proto, dst: IpAddr, port: u16) -> bool {
        self.any(proto).contains(port)
            || (!self.specific.is_empty()
                && self.specific.contains(&(proto, dst.to_canonical(), port)))
    }

    /// Every (protocol, port) something listens on, on any local address, ascending (the
    /// kernel's first line keeps them in its `listen` set: a port bound to one address counts
    /// for all, which makes fewer trap ports and so fails safe).
    pub fn ports(&self) -> std::collections::BTreeSet<(Proto, u16)> {
        let any = Proto::ALL
            .into_iter()
            .map(|proto| (proto, self.any(proto)))
            .flat_map(|(proto, set)| set.iter().map(move |port| (proto, port)));
        any.chain(self.specific.iter().map(|&(proto, _, port)| (proto, port)))
            .collect()
    }

    /// Whether something listens on `proto` `port` on any local address.
    pub fn on_any_address(&self, proto: Proto, port: u16) -> bool {
        self.any(proto).contains(port)
            || self
                .specific
                .iter()
                .any(|&(p, _, q)| p == proto && q == port)
    }
}

/// The trap decision: mode, excludes, the ephemeral exemption and the current listeners.
#[derive(Clone, Debug)]
pub struct Traps {
    mode: TrapMode,
    exclude_tcp: PortSet,
    exclude_udp: PortSet,
    ephemeral_udp: Option<RangeInclusive<u16>>,
    listeners: Listeners,
}

impl Traps {
    /// Traps of `mode`, minus the excluded ports, minus UDP in `ephemeral_udp` if given.
    pub fn new(
        mode: TrapMode,
        exclude_tcp: PortSet,
        exclude_udp: PortSet,
        ephemeral_udp: Option<RangeInclusive<u16>>,
    ) -> Self {
        Traps {
            mode,
            exclude_tcp,
            exclude_udp,
            ephemeral_udp,
            listeners: Listeners::new(),
        }
    }

    /// Replaces the set of local listeners (from the socket table, or inferred by a replay).
    pub fn set_listeners(&mut self, listeners: Listeners) {
        self.listeners = listeners;
    }

    /// The current listeners.
    pub fn listeners(&self) -> &Listeners {
        &self.listeners
    }

    /// Records one listener seen at work (until the next [`Traps::set_listeners`]).
    pub fn learn_listener(&mut self, proto: Proto, addr: IpAddr, port: u16) {
        self.listeners.insert(proto, Some(addr), port);
    }

    /// The ports connect mode binds: in `listed` mode, the listed ports of `proto` less the
    /// excluded ones (and, for UDP, less the ephemeral range); in `unused` mode, none.
    pub fn bound_ports(&self, proto: Proto) -> Vec<u16> {
        let (listed, excluded) = match (proto, &self.mode) {
            (Proto::Tcp, TrapMode::Listed { tcp, .. }) => (tcp, &self.exclude_tcp),
            (Proto::Udp, TrapMode::Listed { udp, .. }) => (udp, &self.exclude_udp),
            // Connect mode binds TCP and UDP sockets only.
            (Proto::Sctp | Proto::Ip, _) | (_, TrapMode::Unused) => return Vec::new(),
        };
        listed
            .iter()
            .filter(|&p| p != 0 && !excluded.contains(p))
            .filter(|p| {
                proto == Proto::Tcp || !self.ephemeral_udp.as_ref().is_some_and(|r| r.contains(p))
            })
            .collect()
    }

    /// Whether a probe to `proto` `dst`:`port` reaches a trap.
    ///
    /// SCTP ports and IP protocol numbers are traps in either mode when nothing is known to
    /// listen there (the lists and excludes of `listed` mode name TCP and UDP ports only): an
    /// SCTP INIT to a port without an SCTP listener, or a packet of a protocol the host is not
    /// known to speak, is unsolicited wherever it lands.
    pub fn is_trap(&self, proto: Proto, dst: IpAddr, port: u16) -> bool {
        let (excluded, listed) = match (proto, &self.mode) {
            (Proto::Tcp, TrapMode::Listed { tcp, .. }) => (&self.exclude_tcp, tcp.contains(port)),
            (Proto::Udp, TrapMode::Listed { udp, .. }) => (&self.exclude_udp, udp.contains(port)),
            (Proto::Tcp, TrapMode::Unused) => (&self.exclude_tcp, true),
            (Proto::Udp, TrapMode::Unused) => (&self.exclude_udp, true),
            (Proto::Sctp | Proto::Ip, _) => {
                return !self.listeners.contains(proto, dst, port);
            }
        };
        let ephemeral = proto == Proto::Udp
            && self
                .ephemeral_udp
                .as_ref()
                .is_some_and(|r| r.contains(&port));
        listed
            && !excluded.contains(port)
            && !ephemeral
            && !self.listeners.contains(proto, dst, port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn port_set_edges() {
        let mut s = PortSet::new();
        assert!(s.is_empty());
        for p in [0, 63, 64, 65535] {
            s.insert(p);
        }
        assert!(s.contains(0) && s.contains(63) && s.contains(64) && s.contains(65535));
        assert!(!s.contains(1) && !s.contains(65534));
        assert_eq!(s.len(), 4);
        assert_eq!(PortSet::from_ranges(&[1..=1024]).len(), 1024);
    }

    #[test]
    fn unused_mode_traps_everything_but_listeners_excludes_and_ephemeral_udp() {
        let mut t = Traps::new(
            TrapMode::Unused,
            PortSet::from_ranges(&[113..=113]),
            PortSet::from_ranges(&[137..=139]),
            Some(32768..=60999),
        );
        let mut l = Listeners::new();
        l.insert(Proto::Tcp, None, 22);
        l.insert(Proto::Udp, Some(ip("198.51.100.1")), 53);
        t.set_listeners(l);
        let a = ip("198.51.100.1");
        let b = ip("198.51.100.2");
        assert!(t.is_trap(Proto::Tcp, a, 23));
        assert!(!t.is_trap(Proto::Tcp, a, 22), "wildcard listener");
        assert!(!t.is_trap(Proto::Tcp, a, 113), "excluded");
        assert!(
            t.is_trap(Proto::Udp, a, 113),
            "TCP excludes do not touch UDP"
        );
        assert!(!t.is_trap(Proto::Udp, a, 138), "excluded");
        assert!(!t.is_trap(Proto::Udp, a, 53), "listener on this address");
        assert!(
            t.is_trap(Proto::Udp, b, 53),
            "the listener is bound to another address"
        );
        assert!(!t.is_trap(Proto::Udp, a, 40000), "ephemeral UDP");
        assert!(
            t.is_trap(Proto::Tcp, a, 40000),
            "ephemeral exemption is UDP only"
        );
        assert!(t.is_trap(Proto::Udp, a, 61000));
    }

    #[test]
    fn listed_mode_traps_only_listed_ports_still_minus_listeners() {
        let mut t = Traps::new(
            TrapMode::Listed {
                tcp: PortSet::from_ranges(&[1..=1, 6667..=6667, 31337..=31337]),
                udp: PortSet::from_ranges(&[31335..=31335]),
            },
            PortSet::new(),
            PortSet::new(),
            None,
        );
        let a = ip("2001:db8::1");
        assert!(t.is_trap(Proto::Tcp, a, 31337));
        assert!(!t.is_trap(Proto::Tcp, a, 31338));
        assert!(t.is_trap(Proto::Udp, a, 31335));
        assert!(!t.is_trap(Proto::Udp, a, 31337));
        let mut l = Listeners::new();
        l.insert(Proto::Tcp, Some(ip("::")), 6667);
        t.set_listeners(l);
        assert!(
            !t.is_trap(Proto::Tcp, a, 6667),
            "a started service is never a trap"
        );
    }

    /// Issue 28: SCTP ports and IP protocol numbers are traps in either mode unless something
    /// is known to listen there; their listeners are kept apart from TCP's and UDP's.
    #[test]
    fn sctp_ports_and_ip_protocols_are_traps_without_a_listener_in_either_mode() {
        let a = ip("198.51.100.1");
        for mode in [
            TrapMode::Unused,
            TrapMode::Listed {
                tcp: PortSet::from_ranges(&[1..=1]),
                udp: PortSet::new(),
            },
        ] {
            let mut t = Traps::new(
                mode,
                PortSet::from_ranges(&[38412..=38412]),
                PortSet::new(),
                None,
            );
            let mut l = Listeners::new();
            l.insert(Proto::Sctp, None, 2905);
            l.insert(Proto::Tcp, None, 38412);
            t.set_listeners(l);
            assert!(
                t.is_trap(Proto::Sctp, a, 38412),
                "TCP excludes and listeners do not apply"
            );
            assert!(!t.is_trap(Proto::Sctp, a, 2905), "an SCTP listener");
            assert!(
                !t.listeners().contains(Proto::Tcp, a, 2905),
                "SCTP listeners do not touch TCP"
            );
            assert!(t.is_trap(Proto::Ip, a, 47));
            t.learn_listener(Proto::Sctp, a, 38412);
            assert!(
                !t.is_trap(Proto::Sctp, a, 38412),
                "learned from an INIT-ACK"
            );
            assert!(t.bound_ports(Proto::Sctp).is_empty() && t.bound_ports(Proto::Ip).is_empty());
            assert!(t.listeners().ports().contains(&(Proto::Sctp, 2905)));
        }
    }
}
