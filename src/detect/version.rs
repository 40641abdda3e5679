//! Version scans (`nmap -sV`): nmap's service probes ([`super::service_probes`]) sent as the
//! first bytes of connections this host accepted. **Pure**; time is each packet's capture
//! timestamp. Two fixed-size tables, allocated once, and nothing per packet:
//!
//! - [`FirstSegments`] remembers the connections the host accepted (its SYN+ACK went out) and
//!   the sequence number their first data segment must carry (the SYN+ACK's acknowledgment
//!   number: the client's ISN + 1) and the acknowledgment it must carry (this host's ISN + 1).
//!   Only that segment is looked at, once: what follows on the connection is never examined.
//!   A segment there proves the sender completed the handshake, so its address is its own
//!   (an off-path forger never sees the SYN+ACK whose sequence number it would have to
//!   acknowledge).
//! - [`VersionScans`] counts, per source, the distinct probes recognised within
//!   `window` of one another: a probe only ordinary software would never send
//!   ([`super::service_probes::Origin::NmapOnly`]) weighs 2, one a client may send weighs 1,
//!   each *name* once, however many ports or connections repeat it. A source reaching
//!   [`THRESHOLD`] with two probes or more, at least one of them on a connection it completed,
//!   is a version scan: a [`Detection`] with its [`Signature`]. UDP probes are named with a
//!   source a TCP probe already put in the table, and never start one nor add to its score:
//!   a datagram's source address may be forged.
//!
//! Why 3: one probe is what a health check or a curious client sends (HAProxy's
//! `OPTIONS / HTTP/1.0`, a `GET / HTTP/1.0` typed by hand); nmap against a web server and a
//! TLS port sends `GetRequest` (1) and `TLSSessionReq` or `SSLSessionReq` (2); against a
//! service it cannot name at once, a dozen probes within milliseconds. Three plain probes of
//! different names (`GET / HTTP/1.0`, `OPTIONS / HTTP/1.0`, `HELP`) from one source within a
//! window are no client's habit either.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

use super::service_probes::{self, ServiceProbe};
use super::{Detection, ScanKinds, Signature};
use crate::time::Timestamp;
use crate::wire::{Fields, Packet, ProbeKind, Proto, Shape};

/// The score at which a source is a version scan.
pub const THRESHOLD: u8 = 3;
/// What a version scan is reported as: [`Signature::tool`].
pub const TOOL: &str = "nmap version detection";
/// The distinct probes kept per source (more are counted in `packets`, not named).
pub const MAX_PROBES: usize = 8;
/// The distinct ports kept per source.
pub const MAX_PORTS: usize = 8;

/// The connections this host accepted recently, and the sequence number of the first data
/// segment each waits for: a direct-mapped table of `2^bits` slots of 24 bytes, keyed by a
/// seeded hash of the 4-tuple. A collision evicts the older connection, whose first segment is
/// then not examined (a probe missed, never a false one).
#[derive(Debug)]
pub struct FirstSegments {
    slots: Box<[Accepted]>,
    mask: u64,
    ttl: Duration,
    hasher: foldhash::fast::FixedState,
}

#[derive(Clone, Copy, Debug)]
struct Accepted {
    /// The 4-tuple's fingerprint; 0 for an empty slot.
    fingerprint: u64,
    /// The sequence number the first data segment carries (the client's ISN + 1).
    seq: u32,
    /// The acknowledgment number it carries (this host's ISN + 1, which only a client that
    /// received the SYN+ACK knows).
    ack: u32,
    /// When the SYN+ACK went out.
    at: Timestamp,
}

impl FirstSegments {
    /// A table of `2^bits` slots (at most 2^24) remembering accepted connections for `ttl`;
    /// `seed` keys the hash, so that remote parties cannot aim collisions.
    pub fn new(bits: u8, ttl: Duration, seed: u64) -> Self {
        let len = 1usize << bits.min(24);
        FirstSegments {
            slots: vec![
                Accepted {
                    fingerprint: 0,
                    seq: 0,
                    ack: 0,
                    at: Timestamp::ZERO,
                };
                len
            ]
            .into_boxed_slice(),
            mask: (len as u64) - 1,
            ttl,
            hasher: foldhash::fast::FixedState::with_seed(seed),
        }
    }

    /// The fingerprint of a connection (never 0, the empty slot's).
    fn fingerprint(&self, remote: IpAddr, remote_port: u16, local: IpAddr, local_port: u16) -> u64 {
        let bits = |a: IpAddr| match a.to_canonical() {
            IpAddr::V4(v4) => u128::from(v4.to_bits()),
            IpAddr::V6(v6) => v6.to_bits(),
        };
        self.hasher
            .hash_one((bits(remote), bits(local), remote_port, local_port))
            .max(1)
    }

    fn slot(&self, fingerprint: u64) -> usize {
        usize::try_from(fingerprint & self.mask).expect("the mask fits the table length")
    }

    /// A SYN+ACK this host sent (`syn_ack`, from a local address; its other fields `shape`):
    /// the connection it accepts,
    /// whose first data segment will carry the SYN+ACK's acknowledgment number.
    pub fn accepted(&mut self, at: Timestamp, syn_ack: &Packet, shape: &Shape) {
        let fingerprint =
            self.fingerprint(syn_ack.dst, syn_ack.dst_port, syn_ack.src, syn_ack.src_port);
        let i = self.slot(fingerprint);
        self.slots[i] = Accepted {
            fingerprint,
            seq: shape.ack,
            ack: shape.seq.wrapping_add(1),
            at,
        };
    }

    /// Whether `segment` (its other fields `shape`), arriving at `at`, is the first data segment of a connection accepted
    /// within the last `ttl` (its sequence number the client's ISN + 1, its ACK this host's
    /// ISN + 1: the handshake completed by whoever got the SYN+ACK): then when it was
    /// accepted, and the connection is forgotten (no later segment of it is ever looked at).
    pub fn first(&mut self, at: Timestamp, segment: &Packet, shape: &Shape) -> Option<Timestamp> {
        if !segment
            .tcp_flags
            .is_some_and(|f| f.contains(crate::wire::TcpFlags::ACK))
        {
            return None;
        }
        let fingerprint =
            self.fingerprint(segment.src, segment.src_port, segment.dst, segment.dst_port);
        let i = self.slot(fingerprint);
        let slot = self.slots[i];
        if slot.fingerprint != fingerprint
            || slot.seq != shape.seq
            || slot.ack != shape.ack
            || at.saturating_since(slot.at) > self.ttl
        {
            return None;
        }
        self.slots[i].fingerprint = 0;
        Some(slot.at)
    }
}

/// The version-probe evidence of one source. Fixed size: no allocation when it is made.
#[derive(Clone, Copy, Debug)]
struct Record {
    /// The source (address or prefix) counted here; `None` for an empty slot.
    source: Option<IpNet>,
    /// Its first address, and whether another one of the prefix sent probes since.
    first: IpAddr,
    several: bool,
    /// When its earliest connection with a probe was accepted (or its first probe arrived).
    first_seen: Timestamp,
    last_seen: Timestamp,
    /// The distinct probes, in the order first seen.
    probes: [Option<&'static ServiceProbe>; MAX_PROBES],
    /// The distinct ports they went to.
    ports: [(Proto, u16); MAX_PORTS],
    ports_len: u8,
    score: u8,
    packets: u64,
    /// Whether a probe came on a connection the source completed.
    handshake: bool,
    /// No new detection before this time (a window after the last).
    quiet_until: Timestamp,
}

impl Record {
    const EMPTY: Record = Record {
        source: None,
        first: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        several: false,
        first_seen: Timestamp::ZERO,
        last_seen: Timestamp::ZERO,
        probes: [None; MAX_PROBES],
        ports: [(Proto::Tcp, 0); MAX_PORTS],
        ports_len: 0,
        score: 0,
        packets: 0,
        handshake: false,
        quiet_until: Timestamp::ZERO,
    };

    /// Adds `probe` to `port`: a new name adds its weight, a new port is kept (up to the caps).
    /// A TCP probe adds its weight; a UDP one (whose source may be forged) is only named, and
    /// takes at most half the names, so that datagrams never crowd out connections' probes.
    fn add(&mut self, probe: &'static ServiceProbe, port: u16) {
        let udp_names = self.probes.iter().flatten().count() - self.tcp_names();
        let room = probe.proto == Proto::Tcp || udp_names < MAX_PROBES / 2;
        if room
            && !self
                .probes
                .iter()
                .flatten()
                .any(|p| p.name == probe.name && p.proto == probe.proto)
            && let Some(free) = self.probes.iter_mut().find(|p| p.is_none())
        {
            *free = Some(probe);
            if probe.proto == Proto::Tcp {
                self.score = self.score.saturating_add(probe.weight());
            }
        }
        let len = usize::from(self.ports_len);
        if len < MAX_PORTS && !self.ports[..len].contains(&(probe.proto, port)) {
            self.ports[len] = (probe.proto, port);
            self.ports_len += 1;
        }
        self.packets += 1;
    }

    fn tcp_names(&self) -> usize {
        self.probes
            .iter()
            .flatten()
            .filter(|p| p.proto == Proto::Tcp)
            .count()
    }
}

/// Version-probe evidence per source: a direct-mapped table of `2^bits` fixed-size records,
/// keyed by a seeded hash of the source. A source idle for a window is forgotten; a collision
/// evicts the record idle longer, or, between two live ones, the older.
#[derive(Debug)]
pub struct VersionScans {
    slots: Box<[Record]>,
    mask: u64,
    window: Duration,
    hasher: foldhash::fast::FixedState,
}

impl VersionScans {
    /// A table of `2^bits` records (at most 2^20) for probes within `window` of one another.
    pub fn new(bits: u8, window: Duration, seed: u64) -> Self {
        let len = 1usize << bits.min(20);
        VersionScans {
            slots: vec![Record::EMPTY; len].into_boxed_slice(),
            mask: (len as u64) - 1,
            window,
            hasher: foldhash::fast::FixedState::with_seed(seed ^ 0x5653),
        }
    }

    fn slot(&self, source: IpNet) -> usize {
        let fingerprint = self.hasher.hash_one(source);
        usize::try_from(fingerprint & self.mask).expect("the mask fits the table length")
    }

    /// Counts `probe`, recognised at `at` from `src` (counted as `source`) to `port`;
    /// `accepted` is when its connection was accepted (TCP), `None` for a datagram (UDP),
    /// which joins a source already in the table and never starts one. Returns a detection
    /// when the source becomes a version scan (at most once a window).
    pub fn observe(
        &mut self,
        at: Timestamp,
        src: IpAddr,
        source: IpNet,
        probe: &'static ServiceProbe,
        port: u16,
        accepted: Option<Timestamp>,
    ) -> Option<Detection> {
        let window = self.window;
        let i = self.slot(source);
        let record = &mut self.slots[i];
        let live = |r: &Record| r.source.is_some() && at.saturating_since(r.last_seen) <= window;
        if record.source != Some(source) || !live(record) {
            // A datagram never makes state; a connection replaces a record that is not live,
            // or one whose last probe is older than its own (the newer evidence wins).
            let started = accepted?;
            if live(record) && record.source != Some(source) && record.last_seen > started {
                return None;
            }
            *record = Record {
                source: Some(source),
                first: src,
                first_seen: started,
                last_seen: at,
                ..Record::EMPTY
            };
        }
        record.add(probe, port);
        record.several |= src != record.first;
        record.last_seen = record.last_seen.max(at);
        if let Some(started) = accepted {
            record.handshake = true;
            record.first_seen = record.first_seen.min(started);
        }
        if record.score < THRESHOLD
            || record.tcp_names() < 2
            || !record.handshake
            || at < record.quiet_until
        {
            return None;
        }
        record.quiet_until = at.saturating_add(window);
        let mut ports = record.ports[..usize::from(record.ports_len)].to_vec();
        ports.sort_unstable();
        let packets = std::mem::take(&mut record.packets);
        Some(Detection {
            source,
            addr: src,
            kinds: ScanKinds::of(ProbeKind::Version),
            ports,
            first_seen: record.first_seen,
            last_seen: at,
            packets,
            score: u64::from(record.score),
            several_addresses: record.several,
            arrived_on: None,
            tripwire: None,
            signature: Some(Signature {
                tool: TOOL,
                probes: record.probes.iter().flatten().map(|p| p.name).collect(),
            }),
        })
    }

    /// Lets `source` be detected again at its next probe (nothing was done about its last
    /// detection).
    pub fn reconsider(&mut self, source: IpNet) {
        let i = self.slot(source);
        if self.slots[i].source == Some(source) {
            self.slots[i].quiet_until = Timestamp::ZERO;
        }
    }

    /// Forgets every source inside `net` (an administrator lifted its block).
    pub fn forget(&mut self, net: IpNet) {
        for record in self.slots.iter_mut() {
            if record.source.is_some_and(|s| net.contains(&s.addr())) {
                *record = Record::EMPTY;
            }
        }
    }

    /// How many sources are counted now.
    pub fn tracked(&self) -> usize {
        self.slots.iter().filter(|r| r.source.is_some()).count()
    }
}

/// The service probe `p` carries, if it is one: its payload's first bytes and declared length
/// (from its other fields, `fields`).
pub fn recognise(p: &Packet, fields: &impl Fields) -> Option<&'static ServiceProbe> {
    let payload_len = fields.payload_len();
    if payload_len == 0 {
        return None;
    }
    service_probes::recognise(p.proto(), fields.head(), payload_len)
}

#[cfg(test)]
mod tests;
