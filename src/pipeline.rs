//! The per-packet path from parsed packet to detection. **Pure**; used unchanged by the live
//! daemon and by `sentryd --replay`.
//!
//! For each packet, in this order:
//! 1. frames that did not parse are counted by reason;
//! 2. packets *from* this host are never acted on; they are remembered as conversations so
//!    that the answers to them are not mistaken for probes. Which way a packet went is the
//!    capture's packet type where it has one (cooked captures, the raw method), so a frame
//!    forged "from" the host is not taken for one of its own; only captures without it (files
//!    of Ethernet or raw IP frames) fall back to the source address;
//! 3. packets to an address that is not local (transit, broadcast) are ignored;
//! 4. conversation traffic (ACK, SYN+ACK, RST, …) is not a probe;
//! 5. an answer to something we sent (the reversed 4-tuple was seen recently) is not a probe;
//! 6. probes from a source no scanner can have ([`crate::trust::Unroutable`]) do not count;
//!    **the never-block list is checked before any per-source state exists**;
//! 7. probes of ports that are not traps do not count;
//! 8. what is left is a [`Probe`] for the [`Detector`].
//!
//! A packet whose header is a known tool's probe ([`fingerprint`]) goes through the same
//! checks; nmap's OS-detection probes (decisive marks) count even as conversation traffic (its
//! T4 and T6 are ACKs) and on a port that is not a trap (they go to the open port).
//!
//! Memory: the conversation memory is a fixed, direct-mapped table ([`RecentFlows`]); the
//! detector bounds its own.
//!
//! Version scans go beside the trap ports: the first data segment of a connection the host
//! accepted (and any datagram) is compared with nmap's service probes, after the same checks
//! (direction, checksums, unroutable sources, the never-block list), and counted apart
//! ([`crate::detect::version`]): their ports are open, not traps.

use std::collections::HashSet;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::time::Duration;

use crate::detect::decoy::{self, Decoys};
use crate::detect::fingerprint;
use crate::detect::traps::{Listeners, Traps};
use crate::detect::version::{FirstSegments, VersionScans};
use crate::detect::{Candidate, Detection, Detector, DetectorConfig, DetectorStats, Probe};
use crate::never_block::NeverBlockList;
use crate::time::Timestamp;
use crate::wire::reassembly::{self, Note, Outcome, Reassembler};
use crate::wire::{self, Direction, Lazy, LinkType, Metadata, Packet, ProbeKind, Proto, Skip};

/// What happened to the packets seen so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    /// Frames handed to the pipeline.
    pub frames: u64,
    /// Frames skipped because they were cut short.
    pub truncated: u64,
    /// Frames skipped because a header was invalid.
    pub malformed: u64,
    /// Frames that were not IPv4 or IPv6.
    pub not_ip: u64,
    /// IP packets the pipeline does not judge: ICMP, ICMPv6, SCTP too short for its headers
    /// (SCTP and other IP protocols are judged since issue 28).
    pub other_protocol: u64,
    /// IP fragments.
    pub fragments: u64,
    /// Packets sent by a local address.
    pub outbound: u64,
    /// Packets to an address that is not local.
    pub not_local: u64,
    /// Conversation traffic (ACK, SYN+ACK, RST, …).
    pub conversation: u64,
    /// Probe-like packets that answered something we sent.
    pub replies: u64,
    /// Probes from never-block sources.
    pub never_block: u64,
    /// Probes from a source no scanner can have (unspecified, loopback, multicast, reserved,
    /// link-local, IPv4-mapped or -compatible): forged, never counted.
    pub unroutable: u64,
    /// Packets to this host with a wrong IPv4 header, TCP or UDP checksum: the kernel drops
    /// them before any socket sees them, so they are neither probes nor conversation.
    pub bad_checksum: u64,
    /// Probes of ports that are not traps.
    pub not_trap: u64,
    /// Probes counted by the detector.
    pub probes: u64,
    /// Detections.
    pub detections: u64,
    /// Detections taken back when a fresh look at the socket table found a service on enough
    /// of their ports.
    pub withdrawn: u64,
    /// IP datagrams reassembled whole from fragments ([`wire::reassembly`]), then judged as
    /// any packet.
    pub reassembled: u64,
    /// Fragmented datagrams that did not arrive whole in time (30 s IPv4, 60 s IPv6).
    pub fragments_timed_out: u64,
    /// Fragmented datagrams discarded because their fragments overlapped.
    pub fragment_overlaps: u64,
    /// Fragmented datagrams dropped for a bound of the reassembler (evicted by newer ones,
    /// too many fragments).
    pub fragments_dropped: u64,
    /// TCP datagrams whose first fragment cut the TCP header (tiny fragments).
    pub tiny_fragments: u64,
    /// Packets whose header is a known tool's probe ([`crate::detect::fingerprint`]), counted
    /// after the checks every probe goes through.
    pub fingerprinted: u64,
    /// nmap service probes recognised (the first segment of an accepted connection, or a
    /// datagram), counted towards a version scan ([`crate::detect::version`]).
    pub version_probes: u64,
    /// Sources named likely decoys of a scan (`nmap -D`, [`decoy`]), as the verdicts are taken.
    pub decoy_verdicts: u64,
}

impl Counters {
    fn skipped(&mut self, reason: Skip) {
        match reason {
            Skip::Truncated => self.truncated += 1,
            Skip::Malformed => self.malformed += 1,
            Skip::NotIp => self.not_ip += 1,
            Skip::OtherProtocol => self.other_protocol += 1,
            Skip::Fragment => self.fragments += 1,
        }
    }
}

/// The words that name the fragment counters (the status's `fragments`, the metric's
/// `outcome` label), in the order they are said: [`Counters::reassembled`],
/// [`Counters::tiny_fragments`], [`Counters::fragment_overlaps`],
/// [`Counters::fragments_timed_out`], [`Counters::fragments_dropped`].
pub const FRAGMENT_OUTCOMES: [&str; 5] =
    ["reassembled", "tiny", "overlapping", "timed-out", "dropped"];

/// The kinds of issue 28's evidence beyond trap ports, as `status` and the metrics name them
/// (the `kind` label), in the order they are said: [`Counters::fingerprinted`],
/// [`Counters::version_probes`], [`Counters::decoy_verdicts`].
pub const EVIDENCE_KINDS: [&str; 3] = ["tool-fingerprint", "version-probe", "decoy-verdict"];

/// Conversation memory: which 4-tuples local addresses sent from, recently.
///
/// A direct-mapped table of `2^bits` slots holding a 64-bit fingerprint and a time: O(1), no
/// allocation after construction, and a fixed size whatever the traffic. A collision evicts the
/// older flow; the cost is that an answer to it may be examined as a probe, which the trap and
/// threshold checks still stand between.
#[derive(Debug)]
pub struct RecentFlows {
    slots: Box<[(u64, Timestamp)]>,
    mask: u64,
    ttl: Duration,
    hasher: foldhash::fast::FixedState,
}

impl RecentFlows {
    /// A table of `2^bits` slots (16 bytes each) remembering flows for `ttl`. `seed` keys the
    /// hash, so that remote parties cannot aim collisions at a given flow.
    pub fn new(bits: u8, ttl: Duration, seed: u64) -> Self {
        let len = 1usize << bits.min(24);
        RecentFlows {
            slots: vec![(0, Timestamp::ZERO); len].into_boxed_slice(),
            mask: (len as u64) - 1,
            ttl,
            hasher: foldhash::fast::FixedState::with_seed(seed),
        }
    }

    fn fingerprint(
        &self,
        src: IpAddr,
        src_port: u16,
        dst: IpAddr,
        dst_port: u16,
        proto: Proto,
    ) -> u64 {
        let ports = (u32::from(src_port) << 16) | u32::from(dst_port);
        match (src.to_canonical(), dst.to_canonical()) {
            // Most flows: both addresses in one word (issue 29: a third of the hashing).
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let pair = (u64::from(a.to_bits()) << 32) | u64::from(b.to_bits());
                self.hasher.hash_one((pair, ports, proto))
            }
            (a, b) => {
                let wide = |addr: IpAddr| match addr {
                    IpAddr::V4(v4) => u128::from(v4.to_bits()),
                    IpAddr::V6(v6) => v6.to_bits(),
                };
                self.hasher.hash_one((wide(a), wide(b), ports, proto))
            }
        }
    }

    fn slot(&self, fp: u64) -> usize {
        usize::try_from(fp & self.mask).expect("the mask fits the table length")
    }

    /// Records that `p` was sent (by a local address) at `at`; returns whether its flow, in
    /// this direction, was already remembered within the last `ttl`.
    pub fn remember(&mut self, at: Timestamp, p: &Packet) -> bool {
        let fp = self.fingerprint(p.src, p.src_port, p.dst, p.dst_port, p.proto());
        let i = self.slot(fp);
        let (stored, when) = self.slots[i];
        self.slots[i] = (fp, at);
        stored == fp && when != Timestamp::ZERO && at.saturating_since(when) <= self.ttl
    }

    /// Whether `p` travels the reverse way of a flow remembered within the last `ttl`.
    pub fn is_answer(&self, at: Timestamp, p: &Packet) -> bool {
        let fp = self.fingerprint(p.dst, p.dst_port, p.src, p.src_port, p.proto());
        let (stored, when) = self.slots[self.slot(fp)];
        stored == fp && when != Timestamp::ZERO && at.saturating_since(when) <= self.ttl
    }
}

/// The host's own addresses. A host has a handful, so a linear scan beats hashing; a hash set
/// takes over past [`Locals::LINEAR`].
#[derive(Debug)]
enum Locals {
    Few(Vec<IpAddr>),
    Many(HashSet<IpAddr, foldhash::fast::RandomState>),
}

impl Locals {
    const LINEAR: usize = 16;

    fn new(addrs: impl IntoIterator<Item = IpAddr>) -> Self {
        let mut v: Vec<IpAddr> = addrs.into_iter().map(|a| a.to_canonical()).collect();
        v.sort_unstable();
        v.dedup();
        if v.len() <= Self::LINEAR {
            Locals::Few(v)
        } else {
            Locals::Many(v.into_iter().collect())
        }
    }

    fn contains(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        match self {
            Locals::Few(v) => v.contains(&addr),
            Locals::Many(set) => set.contains(&addr),
        }
    }
}

/// Size of the conversation memory: 2^16 flows, 1 MiB.
const FLOW_BITS: u8 = 16;
/// Connections accepted whose first data segment is awaited: 2^15, 768 KiB.
const FIRST_SEGMENT_BITS: u8 = 15;
/// How long an accepted connection's first segment is awaited (nmap waits up to 6 s for a
/// banner before it sends its first probe on the connection).
const FIRST_SEGMENT_TTL: Duration = Duration::from_secs(30);
/// SYN+ACKs awaiting their answer (decoy scans): 2^12 slots of 48 bytes, walked once a
/// second. A decoy scan's SYN+ACKs are one per open port and source.
const DECOY_BITS: u8 = 12;

/// Sources with version-probe evidence: 2^12 records of about 200 bytes.
const VERSION_BITS: u8 = 12;
/// How long a flow we started is remembered after its last outbound packet.
const FLOW_TTL: Duration = Duration::from_secs(300);
/// How often idle sources are expired, in capture time.
const EXPIRE_EVERY: Duration = Duration::from_secs(1);

/// Where a probed port comes from, which says whether it is a trap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ProbedPort {
    /// In a captured packet: a trap only if [`Traps::is_trap`] says so.
    Captured,
    /// One of connect mode's own trap sockets: a trap by construction.
    OwnTrap,
}

/// The per-packet pipeline.
#[derive(Debug)]
pub struct Pipeline {
    locals: Locals,
    flows: RecentFlows,
    never_block: NeverBlockList,
    traps: Traps,
    detector: Detector,
    counters: Counters,
    next_expire: Timestamp,
    local_check: bool,
    /// Fleet mode's sweeps: every probe counted is also kept here, up to [`TAP_MAX`] between
    /// two takes ([`Pipeline::take_tapped`]); `None` when off.
    tap: Option<Vec<Tapped>>,
    /// Probes the tap had no room for.
    tap_dropped: u64,
    /// Datagrams whose fragments are arriving.
    reassembly: Reassembler,
    /// Accepted connections awaiting their first data segment.
    first_segments: FirstSegments,
    /// Version-probe evidence per source.
    versions: VersionScans,
    /// The answers to this host's SYN+ACKs, per source: decoy scans (`nmap -D`).
    decoys: Decoys,
}

/// What a packet made of its source: a candidate of the trap-port count (settled against the
/// socket table), or a version scan (on open ports by nature: nothing to settle).
enum Found {
    Threshold(Candidate),
    Version(Detection),
}

/// Probes the tap keeps between two takes at most (the engine takes them every 100 ms).
pub const TAP_MAX: usize = 4096;

/// A probe the tap kept, with the interface it came in on (when the capture said): what the
/// engine's reverse-path check of it needs before it is told to the fleet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tapped {
    /// The probe, as counted.
    pub probe: Probe,
    /// The index of the interface it came in on; `None` when the capture did not say, or the
    /// probe is not a packet that came in (connect mode's connections, the RSTs of ACK scans).
    pub arrived_on: Option<u32>,
}

impl Pipeline {
    /// A pipeline with no state. `seed` keys the conversation memory's hash (the daemon passes a
    /// random one; replays a fixed one so that they are repeatable).
    pub fn new(
        detector: DetectorConfig,
        traps: Traps,
        never_block: NeverBlockList,
        locals: impl IntoIterator<Item = IpAddr>,
        seed: u64,
    ) -> Self {
        Pipeline {
            first_segments: FirstSegments::new(FIRST_SEGMENT_BITS, FIRST_SEGMENT_TTL, seed),
            versions: VersionScans::new(VERSION_BITS, detector.window, seed),
            decoys: Decoys::new(DECOY_BITS, seed),
            locals: Locals::new(locals),
            flows: RecentFlows::new(FLOW_BITS, FLOW_TTL, seed),
            never_block,
            traps,
            detector: Detector::new(detector),
            counters: Counters::default(),
            next_expire: Timestamp::ZERO,
            local_check: true,
            tap: None,
            tap_dropped: 0,
            reassembly: Reassembler::new(reassembly::Limits::default()),
        }
    }

    /// Keeps every probe counted for [`Pipeline::take_tapped`] (`on`), or stops.
    pub fn set_tap(&mut self, on: bool) {
        match (on, &self.tap) {
            (true, None) => self.tap = Some(Vec::new()),
            (false, Some(_)) => self.tap = None,
            _ => {}
        }
    }

    /// The probes counted since the last take (with the tap on), and how many it had no room
    /// for since start.
    pub fn take_tapped(&mut self) -> (Vec<Tapped>, u64) {
        let probes = self.tap.as_mut().map(std::mem::take).unwrap_or_default();
        (probes, self.tap_dropped)
    }

    /// The source `addr` is counted as: itself, or its prefix (`[detect] ipv6-prefix`).
    pub fn source_of(&self, addr: IpAddr) -> ipnet::IpNet {
        self.detector.source_of(addr)
    }

    /// Whether traffic from the host's own addresses is left alone (`true`, the default) or,
    /// when it is also addressed to the host, judged like any other (PortSentry's `-L`): then
    /// a scan of the host by itself is detected, and the responder reports it and blocks
    /// nothing, the host's addresses being on the never-block list.
    pub fn set_local_check(&mut self, on: bool) {
        self.local_check = on;
    }

    /// Parses and processes one frame.
    pub fn process_frame(
        &mut self,
        at: Timestamp,
        link: LinkType,
        frame: &[u8],
    ) -> Option<Detection> {
        match wire::read(link, frame, Metadata::default()) {
            Err(Skip::Fragment) => {
                self.process_fragment_looking(at, link, frame, Metadata::default(), || None)
            }
            parsed => self.process(at, parsed),
        }
    }

    /// Processes one parsed frame (or the reason it did not parse), with no fresh reading of
    /// the socket table (the one in use is looked at again). A frame is given as
    /// [`wire::read`] gives it, its details in it, or as anything else a [`Lazy`] is made
    /// from.
    pub fn process<'a>(
        &mut self,
        at: Timestamp,
        parsed: Result<impl Into<Lazy<'a>>, Skip>,
    ) -> Option<Detection> {
        self.process_looking(at, parsed, || None)
    }

    /// Processes one parsed frame (or the reason it did not parse). When its source crosses the
    /// threshold, `look` is asked for a fresh reading of the listening sockets (`None`: keep
    /// the one in use) and the candidate is settled against it: the detection returned is
    /// final, and counted once.
    pub fn process_looking<'a>(
        &mut self,
        at: Timestamp,
        parsed: Result<impl Into<Lazy<'a>>, Skip>,
        look: impl FnOnce() -> Option<Listeners>,
    ) -> Option<Detection> {
        let parsed = parsed.map(Into::into);
        let found = self.candidate(at, parsed.as_ref().map_err(|&skip| skip), None)?;
        self.settle_found(found, look)
    }

    /// An IP fragment ([`Skip::Fragment`] by [`wire::parse_with`]) that arrived at `at`: kept
    /// until its datagram is whole, which is then judged as any packet, with what its
    /// fragments said (a tiny first fragment, overlaps) as the kind of its probe. Nothing of
    /// it is kept from a source the trust rules refuse (not to us, unroutable, never-block).
    pub fn process_fragment_looking(
        &mut self,
        at: Timestamp,
        link: LinkType,
        frame: &[u8],
        seen: Metadata,
        look: impl FnOnce() -> Option<Listeners>,
    ) -> Option<Detection> {
        self.tick(at);
        self.counters.fragments += 1;
        let (packet, note) = self.reassemble(at, link, frame, seen)?;
        let found = self.candidate(at, Ok(&Lazy::from(packet)), Some(note))?;
        self.settle_found(found, look)
    }

    /// A fragment to the reassembler, after the checks that come before any state: the
    /// datagram when it is whole (or the first fragment of an overlap).
    fn reassemble(
        &mut self,
        at: Timestamp,
        link: LinkType,
        frame: &[u8],
        seen: Metadata,
    ) -> Option<(wire::Full, Note)> {
        let f = match reassembly::fragment_of(link, frame, seen) {
            Ok(f) => f,
            Err(reason) => {
                self.counters.skipped(reason);
                return None;
            }
        };
        let c = &mut self.counters;
        let from_us = match f.direction() {
            Direction::Outgoing => true,
            Direction::Incoming => false,
            Direction::Elsewhere => {
                c.not_local += 1;
                return None;
            }
            Direction::Unknown => self.locals.contains(f.src()),
        };
        if from_us {
            // This host's own stack made it: its first fragment holds the transport header,
            // read alone for the conversation memory.
            return self.reassembly.lone(&f).map(|p| (p, Note::default()));
        }
        let src = f.src();
        if !self.locals.contains(f.dst()) {
            c.not_local += 1;
            return None;
        }
        if crate::trust::Unroutable::of(src).is_some() {
            c.unroutable += 1;
            return None;
        }
        if self.never_block.contains(src) && (self.local_check || !self.locals.contains(src)) {
            c.never_block += 1;
            return None;
        }
        let outcome = self.reassembly.insert(at, &f);
        self.fragment_counters();
        match outcome {
            Outcome::Complete(packet, note) => Some((packet, note)),
            Outcome::Overlap(Some(packet)) => Some((
                packet,
                Note {
                    overlap: true,
                    ..Note::default()
                },
            )),
            Outcome::Overlap(None) | Outcome::Pending | Outcome::Dropped => None,
        }
    }

    /// The reassembler's counters, into the pipeline's.
    fn fragment_counters(&mut self) {
        let r = self.reassembly.counters();
        let c = &mut self.counters;
        c.reassembled = r.reassembled;
        c.fragments_timed_out = r.timed_out;
        c.fragment_overlaps = r.overlapping;
        c.fragments_dropped = r.dropped;
        c.tiny_fragments = r.tiny;
    }

    /// What a packet made of its source, final: a version scan as it is (its ports are open by
    /// nature), a candidate settled against the socket table.
    fn settle_found(
        &mut self,
        found: Found,
        look: impl FnOnce() -> Option<Listeners>,
    ) -> Option<Detection> {
        match found {
            Found::Threshold(candidate) => self.settle(candidate, look),
            Found::Version(detection) => {
                self.counters.detections += 1;
                Some(detection)
            }
        }
    }

    /// A candidate settled against the socket table (read afresh by `look`, when it can).
    fn settle(
        &mut self,
        candidate: Candidate,
        look: impl FnOnce() -> Option<Listeners>,
    ) -> Option<Detection> {
        if let Some(fresh) = look() {
            self.traps.set_listeners(fresh);
        }
        let listeners = self.traps.listeners();
        let settled = self.detector.settle(candidate, |proto, port| {
            listeners.on_any_address(proto, port)
        });
        match settled {
            Some(_) => self.counters.detections += 1,
            None => self.counters.withdrawn += 1,
        }
        settled
    }

    /// A frame through every check to the detector: a candidate when its source crosses the
    /// threshold. `fragments`: the packet is a datagram reassembled from fragments (whose
    /// frames were counted), and what they said.
    fn candidate(
        &mut self,
        at: Timestamp,
        parsed: Result<&Lazy<'_>, Skip>,
        fragments: Option<Note>,
    ) -> Option<Found> {
        if fragments.is_none() {
            self.tick(at);
        }
        let c = &mut self.counters;
        // The packet's checksums and other fields (`d`) are read from its frame only where a
        // decision needs them, once: most packets are classified without them.
        let d = match parsed {
            Ok(d) => d,
            Err(reason) => {
                c.skipped(reason);
                return None;
            }
        };
        let p = d.packet();
        // Which way the packet went: the capture's packet type when it has one, so that a
        // frame forged "from" this host is neither taken for one of its replies nor remembered
        // as a conversation of its own; the addresses only when the capture does not say.
        let from_us = match p.direction {
            Direction::Outgoing => true,
            Direction::Incoming => {
                if self.locals.contains(p.src) && self.local_check {
                    // From outside, yet "from" one of our addresses: forged (or our own traffic
                    // looped back); never a conversation of ours, never blocked.
                    c.never_block += 1;
                    return None;
                }
                false
            }
            Direction::Elsewhere => {
                c.not_local += 1;
                return None;
            }
            Direction::Unknown => self.locals.contains(p.src),
        };
        if from_us && !self.locals.contains(p.src) {
            // Sent on, not by us (a router forwarding): none of our conversations.
            c.not_local += 1;
            return None;
        }
        if from_us {
            c.outbound += 1;
            // A bare RST (no ACK) with a zero window, on no conversation we know of, is the
            // kernel's answer to a segment with ACK that matched no socket at all, listening or
            // connected: an ACK or Window scan probe (nmap -sA, -sW), with the socket table
            // consulted by the kernel itself. An application's abort is a RST on a known
            // conversation (its SYN or SYN+ACK went out before); a RST crafted by a tool has a
            // window. Stray late ACKs of closed connections still count, one port at a time.
            let bare_rst = p
                .tcp_flags
                .is_some_and(|f| f.bits() & 0x3f == crate::wire::TcpFlags::RST.bits());
            let known = self.flows.remember(at, p);
            if bare_rst && p.window == 0 && !known && !self.locals.contains(p.dst) {
                return self
                    .count(
                        at,
                        p.dst,
                        p.src,
                        Proto::Tcp,
                        p.src_port,
                        Some(ProbeKind::Ack),
                        (ProbedPort::Captured, None, None),
                    )
                    .map(Found::Threshold);
            }
            // A SYN+ACK leaving us: the kernel accepted the SYN, so the port has a listener now,
            // even one started after the socket table was last read. The SYN was no probe.
            let syn_ack = crate::wire::TcpFlags::SYN.bits() | crate::wire::TcpFlags::ACK.bits();
            if p.tcp_flags.is_some_and(|f| f.bits() & 0x3f == syn_ack) {
                self.first_segments.accepted(at, p, d.shape());
                self.decoys.sent(at, p, d.shape());
                self.traps.learn_listener(Proto::Tcp, p.src, p.src_port);
                self.detector.retract(p.dst, Proto::Tcp, p.src_port);
            }
            // An SCTP INIT ACK leaving us is the same answer for SCTP (issue 28): an endpoint
            // listens on the port, whatever the socket table said (the sctp module's sock_diag
            // may be missing).
            if crate::wire::sctp::is_init_ack(p) {
                self.traps.learn_listener(Proto::Sctp, p.src, p.src_port);
                self.detector.retract(p.dst, Proto::Sctp, p.src_port);
            }
            if self.local_check || !self.locals.contains(p.dst) {
                return None;
            }
            // Local check off, and the host talks to itself: judged below like any packet.
        }
        if !self.locals.contains(p.dst) {
            self.counters.not_local += 1;
            return None;
        }
        let kind = p.probe_kind();
        let rst = crate::wire::TcpFlags::RST.bits();
        if p.tcp_flags.is_some_and(|f| f.bits() & 0x3f == rst)
            && d.integrity() == wire::Integrity::Valid
        {
            // A RST answering one of our SYN+ACKs (decoy scans); a sum the kernel finds wrong
            // answers nothing.
            self.decoys.arrived(at, p, d.shape());
        }
        if let Some(detection) = self.version_probe(at, d) {
            return Some(Found::Version(detection));
        }
        let c = &mut self.counters;
        // A tool's probe shape (nmap's OS probes include ACKs, which are otherwise
        // conversation) is judged like a probe, but needs no trap port when it is decisive.
        // Only where a rule may match are the other header fields read, and then only those
        // the rules ask for (issue 29): none for a conversation's segments.
        let mark = fingerprint::may_match(p)
            .then(|| fingerprint::recognise(p, &d.fields()))
            .flatten();
        if kind.is_none() && !mark.is_some_and(fingerprint::Mark::decisive) {
            c.conversation += 1;
            return None;
        }
        // What its fragments said is stronger evidence than its flags (RFC 1858, RFC 3128).
        let kind = match fragments {
            Some(Note { overlap: true, .. }) => Some(ProbeKind::FragmentOverlap),
            Some(Note { tiny: true, .. }) if p.tcp_flags.is_some() => Some(ProbeKind::TinyFragment),
            _ => kind,
        };
        if matches!(
            d.integrity(),
            wire::Integrity::Bad | wire::Integrity::PseudoOnly
        ) {
            // A sum wrong, or one the kernel checks and finds wrong on arrival: the kernel
            // drops it (summed for candidate probes only: a conversation's frames are not,
            // and are not counted here).
            c.bad_checksum += 1;
            return None;
        }
        if self.flows.is_answer(at, p) {
            c.replies += 1;
            return None;
        }
        self.count(
            at,
            p.src,
            p.dst,
            p.proto(),
            p.dst_port,
            kind,
            (ProbedPort::Captured, p.ifindex, mark),
        )
        .map(|c| Found::Threshold(c.arrived_on(p.ifindex)))
    }

    /// A packet to this host that carries one of nmap's service probes: the first data segment
    /// of a connection the host accepted (TCP), or a datagram (UDP, which only adds to a source
    /// a connection put in the table). Checked as any probe (checksums, unroutable sources,
    /// the never-block list before any state) and counted towards a version scan.
    fn version_probe(&mut self, at: Timestamp, d: &Lazy<'_>) -> Option<Detection> {
        let p = d.packet();
        // The cheap tests first: most packets carry no payload (three header fields say so,
        // and the rest of the header is not read), most payloads are no probe.
        if d.payload_len() == 0 {
            return None;
        }
        let probe = crate::detect::version::recognise(p, &d.fields())?;
        if matches!(
            d.integrity(),
            wire::Integrity::Bad | wire::Integrity::PseudoOnly
        ) {
            return None;
        }
        let accepted = match p.proto() {
            Proto::Tcp => Some(self.first_segments.first(at, p, d.shape())?),
            Proto::Udp => None,
            Proto::Sctp | Proto::Ip => return None,
        };
        if crate::trust::Unroutable::of(p.src).is_some()
            || (self.never_block.contains(p.src)
                && (self.local_check || !self.locals.contains(p.src)))
        {
            return None;
        }
        self.counters.version_probes += 1;
        let source = self.detector.source_of(p.src);
        let detection = self
            .versions
            .observe(at, p.src, source, probe, p.dst_port, accepted)?;
        Some(Detection {
            arrived_on: p.ifindex,
            ..detection
        })
    }

    /// A connection accepted (TCP, a completed handshake) or a datagram received (UDP) on a
    /// trap port that connect mode bound: the never-block list, then the detector. The port is
    /// a trap by construction (the socket table shows it as listening: the daemon's own).
    pub fn connection(
        &mut self,
        at: Timestamp,
        src: IpAddr,
        dst: IpAddr,
        proto: Proto,
        dst_port: u16,
    ) -> Option<Detection> {
        self.tick(at);
        if self.local_check && self.locals.contains(src) && !self.never_block.contains(src) {
            self.counters.outbound += 1;
            return None;
        }
        let kind = match proto {
            Proto::Tcp => ProbeKind::Syn,
            Proto::Udp => ProbeKind::Udp,
            // Connect mode binds TCP and UDP traps only: no such connection exists.
            Proto::Sctp | Proto::Ip => return None,
        };
        let candidate = self.count(
            at,
            src,
            dst,
            proto,
            dst_port,
            Some(kind),
            (ProbedPort::OwnTrap, None, None),
        )?;
        // The trap port is the daemon's own socket, listed as listening: nothing to look at.
        let detection = self.detector.settle(candidate, |_, _| false);
        self.counters.detections += u64::from(detection.is_some());
        detection
    }

    /// Counts a frame, and forgets idle sources at most once a second of capture time.
    fn tick(&mut self, at: Timestamp) {
        self.counters.frames += 1;
        if at >= self.next_expire {
            self.detector.expire(at);
            self.reassembly.expire(at);
            self.decoys.sweep(at);
            self.fragment_counters();
            self.next_expire = at.saturating_add(EXPIRE_EVERY);
        }
    }

    /// The checks every probe goes through, from the never-block list on, then the detector.
    /// `port` says where the probed port comes from, the interface the probe came in on, and
    /// the tool's probe its header is, if it is one: a decisive mark ([`fingerprint`]) is
    /// counted without a trap port, and a packet with no probe kind only for its mark.
    #[expect(
        clippy::too_many_arguments,
        reason = "a probe's fields, passed apart: the hot path builds no struct it may not need"
    )]
    fn count(
        &mut self,
        at: Timestamp,
        src: IpAddr,
        dst: IpAddr,
        proto: Proto,
        dst_port: u16,
        kind: Option<ProbeKind>,
        (port, arrived_on, mark): (ProbedPort, Option<u32>, Option<fingerprint::Mark>),
    ) -> Option<Candidate> {
        let c = &mut self.counters;
        // A source no scanner can have: forged, or noise of the local link. Never counted,
        // so never blocked.
        if crate::trust::Unroutable::of(src).is_some() {
            c.unroutable += 1;
            return None;
        }
        // With the local check off, the host's own addresses (a bounded few) are judged and
        // reported; the responder's never-block check still keeps them out of the firewall.
        if self.never_block.contains(src) && (self.local_check || !self.locals.contains(src)) {
            c.never_block += 1;
            return None;
        }
        let trap = port == ProbedPort::OwnTrap || self.traps.is_trap(proto, dst, dst_port);
        let (true, Some(kind)) = (trap, kind) else {
            return match mark.filter(|m| m.decisive()) {
                Some(mark) => {
                    c.fingerprinted += 1;
                    self.detector.mark(at, src, mark, kind)
                }
                None => {
                    c.not_trap += 1;
                    None
                }
            };
        };
        c.probes += 1;
        c.fingerprinted += u64::from(mark.is_some());
        let probe = Probe {
            at,
            src,
            dst,
            proto,
            dst_port,
            kind,
        };
        if let Some(tap) = &mut self.tap {
            if tap.len() < TAP_MAX {
                tap.push(Tapped { probe, arrived_on });
            } else {
                self.tap_dropped += 1;
            }
        }
        self.detector.observe_marked(&probe, mark)
    }

    /// Takes a new configuration (on reload): the detector starts afresh only if its settings
    /// changed; the conversation memory is kept.
    pub fn reconfigure(
        &mut self,
        detector: DetectorConfig,
        traps: Traps,
        never_block: NeverBlockList,
        locals: impl IntoIterator<Item = IpAddr>,
    ) {
        if *self.detector.config() != detector {
            self.detector = Detector::new(detector);
        }
        self.traps = traps;
        self.never_block = never_block;
        self.locals = Locals::new(locals);
    }

    /// Takes the host's current addresses and never-block list (after an interface, address,
    /// route or resolv.conf change).
    pub fn set_host(
        &mut self,
        locals: impl IntoIterator<Item = IpAddr>,
        never_block: NeverBlockList,
    ) {
        self.locals = Locals::new(locals);
        self.never_block = never_block;
    }

    /// Nothing was done about `detection` (refused by the budget, or too little evidence yet):
    /// its source may be detected again at its next probe.
    pub fn reconsider(&mut self, detection: &Detection) {
        self.detector.reconsider(detection);
        self.versions.reconsider(detection.source);
    }

    /// Forgets what the detector knows of the sources in `net`.
    pub fn forget(&mut self, net: ipnet::IpNet) {
        self.detector.forget(net);
        self.versions.forget(net);
    }

    /// The local listening sockets as last read.
    pub fn listeners(&self) -> &crate::detect::traps::Listeners {
        self.traps.listeners()
    }

    /// Replaces the set of local listening sockets.
    pub fn set_listeners(&mut self, listeners: crate::detect::traps::Listeners) {
        self.traps.set_listeners(listeners);
    }

    /// The sources judged likely decoys since the last take ([`crate::detect::decoy`]), and
    /// how many verdicts found no room since start. The verdicts come at least
    /// [`decoy::ANSWER_WITHIN`] after the SYN+ACKs they judge, so after the detections of the
    /// same scan: the responder shortens the blocks they name.
    pub fn take_decoys(&mut self) -> (Vec<decoy::Verdict>, u64) {
        let (verdicts, no_room) = self.decoys.take_verdicts();
        self.counters.decoy_verdicts += verdicts.len() as u64;
        (verdicts, no_room)
    }

    /// The decoy verdict reached on `addr` earlier, if any: a detection of a likely decoy that
    /// comes after its verdict is cut short as it is made.
    pub fn decoy_verdict(&self, addr: IpAddr) -> Option<decoy::Verdict> {
        self.decoys.verdict(addr)
    }

    /// Judges the SYN+ACKs unanswered by `at` when no packet came to do it (the engine calls
    /// it once a second): a decoy's verdict does not wait for the next packet.
    pub fn sweep_decoys(&mut self, at: Timestamp) {
        self.decoys.sweep(at);
    }

    /// The counters so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The `n` sources scoring highest now, highest first.
    pub fn leaders(&self, n: usize) -> Vec<crate::detect::Watched> {
        self.detector.leaders(n)
    }

    /// The trap ports `src` probed within its window, oldest first, at most `n`.
    pub fn ports_of(&self, src: IpAddr, n: usize) -> Vec<(Proto, u16)> {
        self.detector.ports_of(src, n)
    }

    /// The detector's memory counters.
    pub fn detector_stats(&self) -> DetectorStats {
        self.detector.stats()
    }

    /// The never-block list in use.
    pub fn never_block(&self) -> &NeverBlockList {
        &self.never_block
    }

    /// The trap decision in use.
    pub fn traps(&self) -> &Traps {
        &self.traps
    }
}

#[cfg(test)]
#[path = "pipeline/fragment_tests.rs"]
mod fragment_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::traps::{Listeners, PortSet, TrapMode};
    use crate::never_block::{Entry, Reason};
    use crate::wire::{Proto, TcpFlags};

    const LOCAL: &str = "198.51.100.1";
    const SCANNER: &str = "203.0.113.7";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn pipeline(ignore: &[&str]) -> Pipeline {
        let mut traps = Traps::new(TrapMode::Unused, PortSet::new(), PortSet::new(), None);
        let mut listeners = Listeners::new();
        listeners.insert(Proto::Tcp, None, 22);
        traps.set_listeners(listeners);
        let ignore = NeverBlockList::new(
            ignore
                .iter()
                .map(|s| Entry {
                    net: s.parse().unwrap(),
                    reason: Reason::Config,
                })
                .collect(),
        );
        Pipeline::new(DetectorConfig::default(), traps, ignore, [ip(LOCAL)], 7)
    }

    fn tcp(src: &str, sport: u16, dst: &str, dport: u16, flags: TcpFlags) -> Packet {
        Packet::tcp(ip(src), sport, ip(dst), dport, flags)
    }

    fn at(s: u64) -> Timestamp {
        Timestamp::from_micros(1_700_000_000_000_000 + s * 1_000_000)
    }

    fn seen(p: Packet, direction: Direction) -> Result<Packet, Skip> {
        Ok(Packet { direction, ..p })
    }

    /// Issue 14: RSTs or SYN+ACKs forged "from" the host made a scanner's probes count as
    /// answers, or took them back. Where the capture gives the packet type, what arrives is
    /// never taken for the host's own.
    #[test]
    fn issue_14_packets_forged_from_the_host_do_not_hide_a_scan() {
        use Direction::{Incoming, Unknown};
        for (direction, hidden) in [(Incoming, false), (Unknown, true)] {
            let mut p = pipeline(&[]);
            let mut found = 0;
            for port in 1..=10 {
                // Forged: a RST "from" the host to the scanner's port, as if the host had
                // talked to it first, and a SYN+ACK "from" the host's probed port.
                let rst = tcp(LOCAL, port, SCANNER, 40000, TcpFlags::RST);
                p.process(at(0), seen(rst, direction));
                let syn = tcp(SCANNER, 40000, LOCAL, port, TcpFlags::SYN);
                found += usize::from(p.process(at(0), seen(syn, direction)).is_some());
                let syn_ack = tcp(LOCAL, port, SCANNER, 40000, TcpFlags::SYN | TcpFlags::ACK);
                p.process(at(0), seen(syn_ack, direction));
            }
            assert_eq!(found == 0, hidden, "{direction:?}: {:?}", p.counters());
        }
    }

    /// Issue 14: a probe with a wrong checksum never reaches a socket (the kernel drops it), so
    /// it is no evidence; the form a sender's stack leaves for checksum offload is.
    #[test]
    fn issue_14_probes_the_kernel_drops_for_their_checksum_do_not_count() {
        use wire::Integrity::{Bad, Offloaded, PseudoOnly, Unverified, Valid};
        for (integrity, counted) in [
            (Bad, false),
            (PseudoOnly, false),
            (Offloaded, true),
            (Unverified, true),
            (Valid, true),
        ] {
            let mut p = pipeline(&[]);
            let mut found = false;
            for port in 1..=10 {
                let syn = crate::wire::Full {
                    packet: Packet {
                        direction: Direction::Incoming,
                        ..tcp(SCANNER, 40000, LOCAL, port, TcpFlags::SYN)
                    },
                    integrity,
                    shape: crate::wire::Shape::default(),
                };
                found |= p.process(at(0), Ok(syn)).is_some();
            }
            assert_eq!(found, counted, "{integrity:?}");
            let c = p.counters();
            assert_eq!(
                c.bad_checksum,
                if counted { 0 } else { 10 },
                "{integrity:?}"
            );
            assert_eq!(c.probes, if counted { 10 } else { 0 }, "{integrity:?}");
        }
    }

    /// nmap's T2, T3 and T4 OS probes, as nmap 7.93 sent them to the open port 22.
    fn nmap_t2_t4(src: &str) -> [crate::wire::Full; 3] {
        let options = [
            3, 3, 10, 1, 2, 4, 1, 9, 8, 10, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 4, 2,
        ];
        let probe = |flags: TcpFlags, window: u16| crate::wire::Full {
            packet: Packet {
                window,
                ..tcp(src, 40000, LOCAL, 22, flags)
            },
            integrity: wire::Integrity::Valid,
            shape: crate::wire::Shape {
                options: crate::wire::shape::TcpOptions::new(&options),
                ..crate::wire::Shape::default()
            },
        };
        [
            probe(TcpFlags::from_bits(0), 128),
            probe(
                TcpFlags::SYN | TcpFlags::FIN | TcpFlags::PSH | TcpFlags::URG,
                256,
            ),
            probe(TcpFlags::ACK, 1024),
        ]
    }

    /// Issue 28: nmap's OS probes to the open port (no trap; T4 is an ACK, conversation for
    /// any other packet) make a detection after the checks every probe goes through: not
    /// from a never-block or unroutable source, not with a bad checksum, not as an answer.
    #[test]
    fn nmap_os_probes_to_the_open_port_are_judged_like_probes() {
        let mut p = pipeline(&[]);
        let found: Vec<Detection> = nmap_t2_t4(SCANNER)
            .into_iter()
            .filter_map(|probe| p.process(at(0), Ok(probe)))
            .collect();
        assert_eq!(found.len(), 1, "{:?}", p.counters());
        assert_eq!(
            found[0].signature.as_ref().unwrap().to_string(),
            "nmap OS detection (T2, T3, T4)"
        );
        assert_eq!((p.counters().fingerprinted, p.counters().probes), (3, 0));

        let refused = |p: &mut Pipeline, src: &str, integrity: wire::Integrity| {
            nmap_t2_t4(src)
                .into_iter()
                .filter_map(|probe| p.process(at(0), Ok(crate::wire::Full { integrity, ..probe })))
                .count()
        };
        let mut p = pipeline(&["203.0.113.0/24"]);
        assert_eq!(refused(&mut p, SCANNER, wire::Integrity::Valid), 0);
        assert_eq!(p.counters().never_block, 3);
        assert_eq!(refused(&mut p, "0.0.0.7", wire::Integrity::Valid), 0);
        assert_eq!(p.counters().unroutable, 3);
        assert_eq!(refused(&mut p, "198.51.100.77", wire::Integrity::Bad), 0);
        assert_eq!(
            refused(&mut p, "198.51.100.78", wire::Integrity::PseudoOnly),
            0
        );
        assert_eq!(p.counters().bad_checksum, 6);
        assert_eq!(p.counters().fingerprinted, 0);
        // Answers to a conversation the host started are not probes, whatever they look like.
        let mut p = pipeline(&[]);
        p.process(
            at(0),
            seen(
                tcp(LOCAL, 22, SCANNER, 40000, TcpFlags::ACK),
                Direction::Outgoing,
            ),
        );
        assert_eq!(refused(&mut p, SCANNER, wire::Integrity::Valid), 0);
        assert_eq!(p.counters().replies, 3);
    }

    /// Issue 28, red team: three copies of one forged NULL probe in nmap's port-scan shape
    /// (window 1024, no option) to one privileged trap port, each detection given back as the
    /// engine does when nothing was done about it: the third carries the tool's name, with
    /// one port (the responder then refuses it for `min-ports`:
    /// `respond::tests::issue_28_red_a_named_scan_of_one_port_is_fewer_than_min_ports`).
    #[test]
    fn issue_28_red_three_copies_of_one_shaped_probe_are_named_with_one_port() {
        let mut p = pipeline(&[]);
        let mut last = None;
        for _ in 0..3 {
            let null = Packet {
                window: 1024,
                ..tcp(SCANNER, 40000, LOCAL, 23, TcpFlags::from_bits(0))
            };
            if let Some(d) = p.process(at(0), seen(null, Direction::Incoming)) {
                p.reconsider(&d);
                last = Some(d);
            }
        }
        let d = last.expect("one NULL probe of a privileged port reaches the threshold");
        assert_eq!(d.ports, [(Proto::Tcp, 23)]);
        assert_eq!(
            d.signature.map(|s| s.to_string()).as_deref(),
            Some("nmap port scan (NULL)")
        );
    }

    #[test]
    fn frames_for_others_and_forwarded_frames_are_not_ours() {
        let mut p = pipeline(&[]);
        let syn = tcp(SCANNER, 40000, LOCAL, 1, TcpFlags::SYN);
        p.process(at(0), seen(syn, Direction::Elsewhere));
        let forwarded = tcp(SCANNER, 40000, "198.51.100.9", 1, TcpFlags::SYN);
        p.process(at(0), seen(forwarded, Direction::Outgoing));
        assert_eq!((p.counters().not_local, p.counters().probes), (2, 0));
    }

    #[test]
    fn a_syn_scan_of_closed_ports_is_detected() {
        let mut p = pipeline(&[]);
        let found: Vec<_> = (1..=7)
            .filter_map(|port| {
                p.process(at(0), Ok(tcp(SCANNER, 40000, LOCAL, port, TcpFlags::SYN)))
            })
            .collect();
        assert_eq!(found.len(), 1);
        assert_eq!(p.counters().probes, 7);
    }

    /// The system clock stepped while the daemon runs, as the daemon sees it: capture
    /// timestamps and the real-time clock jump, the monotonic clock does not. Detection
    /// windows keep to the daemon's steady time once capture timestamps are converted (the
    /// responder takes its time from the steady clock directly), and the state file, written
    /// in real-time clock time, gives the next start the time each block really has left.
    #[test]
    fn a_stepped_system_clock_neither_stretches_nor_ends_windows_and_blocks() {
        use crate::respond::{Decision, Responder};
        use crate::time::{SteadyTime, WallOffset};
        const HOUR: i64 = 3_600_000_000;
        let boot = at(0);
        let steady = SteadyTime::starting(boot, Duration::ZERO);
        // The real-time clock (and so every capture timestamp) `second` seconds after the
        // start, after a step of `step` µs; and how the daemon reads it.
        let wall = |second: u64, step: i64| {
            WallOffset::from_micros(step).to_wall(steady.at(Duration::from_secs(second)))
        };
        let offset =
            |second: u64, step: i64| steady.offset(wall(second, step), Duration::from_secs(second));
        let syn = |port| Ok(tcp(SCANNER, 40000, LOCAL, port, TcpFlags::SYN));

        // Six probes, the clock stepped back an hour, a seventh 70 s after the first: the
        // window of the first six has ended, so no scan (the threshold takes seven).
        let mut p = pipeline(&[]);
        for port in 1..=6 {
            let t = offset(u64::from(port), 0).from_wall(wall(u64::from(port), 0));
            assert!(p.process(t, syn(port)).is_none());
        }
        let t = offset(71, -HOUR).from_wall(wall(71, -HOUR));
        assert_eq!(t, steady.at(Duration::from_secs(71)));
        assert!(
            p.process(t, syn(7)).is_none(),
            "a step back stretched the window"
        );
        // Taken as the capture gives it, the seventh probe would seem to come an hour early,
        // inside the window: the conversion is what keeps it out.
        let mut raw = pipeline(&[]);
        for port in 1..=6 {
            raw.process(wall(u64::from(port), 0), syn(port));
        }
        assert!(raw.process(wall(71, -HOUR), syn(7)).is_some());

        // A scan, blocked for an hour.
        let mut p = pipeline(&[]);
        let start = steady.at(Duration::from_secs(100));
        let d = (1..=7)
            .find_map(|port| p.process(start, syn(port)))
            .expect("a scan");
        let mut r = Responder::new(&crate::config::Config::default().respond);
        let Decision::Block { ttl, .. } = r.on_detection(&d, p.never_block(), start) else {
            panic!("not blocked");
        };
        assert_eq!(ttl, Duration::from_secs(3600));
        // Ten minutes on, the system clock is stepped and the state saved; a new start, whose
        // steady clock begins at the stepped system time, reads it back.
        let now = steady.at(Duration::from_secs(700));
        let block = r.active(now).next().expect("blocked");
        for (step, unconverted) in [(2 * HOUR, 0), (-2 * HOUR, 3000 + 7200)] {
            let left_after_restart = |saved_with: WallOffset| {
                let saved = crate::state::State::new([block.clone()], [], saved_with);
                let restarted = SteadyTime::starting(wall(700, step), Duration::ZERO);
                let now_wall = restarted.offset(wall(700, step), Duration::ZERO);
                let back = saved.active_blocks(now_wall).next().expect("saved");
                back.until
                    .saturating_since(restarted.at(Duration::ZERO))
                    .as_secs()
            };
            // 50 minutes left: not ended by a step forward, not stretched by a step back.
            assert_eq!(left_after_restart(offset(700, step)), 3000);
            // Saved without the offset, the block would have ended, or have 2 h 50 min left.
            assert_eq!(left_after_restart(WallOffset::default()), unconverted);
        }
    }

    #[test]
    fn the_host_scanning_itself_counts_only_with_the_local_check_off() {
        // The host's addresses are on its never-block list, as discovered.
        // The probes and the kernel's RST+ACK answers, as a capture on loopback shows them.
        let scan_self = |p: &mut Pipeline| -> Vec<Detection> {
            (1..=7)
                .flat_map(|port| {
                    let probe = tcp(LOCAL, 40000, LOCAL, port, TcpFlags::SYN);
                    let answer = tcp(LOCAL, port, LOCAL, 40000, TcpFlags::RST | TcpFlags::ACK);
                    [p.process(at(0), Ok(probe)), p.process(at(0), Ok(answer))]
                })
                .flatten()
                .collect()
        };
        let mut p = pipeline(&["198.51.100.1/32"]);
        assert!(scan_self(&mut p).is_empty());
        assert_eq!(p.counters().probes, 0);

        let mut p = pipeline(&["198.51.100.1/32"]);
        p.set_local_check(false);
        let found = scan_self(&mut p);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].addr, ip(LOCAL));
        assert_eq!(p.counters().probes, 7);
        // An open port's SYN+ACK still marks it as a listener, not a trap.
        p.process(at(1), Ok(tcp(LOCAL, 40001, LOCAL, 8080, TcpFlags::SYN)));
        p.process(
            at(1),
            Ok(tcp(
                LOCAL,
                8080,
                LOCAL,
                40001,
                TcpFlags::SYN | TcpFlags::ACK,
            )),
        );
        p.process(at(1), Ok(tcp(LOCAL, 40002, LOCAL, 8080, TcpFlags::SYN)));
        assert_eq!(p.counters().not_trap, 1);
    }

    #[test]
    fn the_never_block_list_comes_before_any_state() {
        let mut p = pipeline(&["203.0.113.0/24"]);
        for port in 1..=100 {
            assert_eq!(
                p.process(at(0), Ok(tcp(SCANNER, 1, LOCAL, port, TcpFlags::SYN))),
                None
            );
        }
        assert_eq!(p.counters().never_block, 100);
        assert_eq!(
            p.detector_stats().tracked,
            0,
            "no per-source state for an ignored source"
        );
    }

    #[test]
    fn listeners_outbound_transit_and_conversation_never_count() {
        let mut p = pipeline(&[]);
        let c = |p: &Pipeline| *p.counters();
        p.process(at(0), Ok(tcp(SCANNER, 1, LOCAL, 22, TcpFlags::SYN)));
        assert_eq!(c(&p).not_trap, 1);
        p.process(at(0), Ok(tcp(LOCAL, 1, SCANNER, 23, TcpFlags::SYN)));
        assert_eq!(c(&p).outbound, 1);
        p.process(
            at(0),
            Ok(tcp(SCANNER, 1, "198.51.100.99", 23, TcpFlags::SYN)),
        );
        assert_eq!(c(&p).not_local, 1);
        p.process(at(0), Ok(tcp(SCANNER, 1, LOCAL, 23, TcpFlags::ACK)));
        p.process(at(0), Ok(tcp(SCANNER, 1, LOCAL, 23, TcpFlags::RST)));
        assert_eq!(c(&p).conversation, 2);
        p.process(at(0), Err::<Packet, _>(Skip::Truncated));
        assert_eq!(c(&p).truncated, 1);
        assert_eq!(c(&p).probes, 0);
        assert_eq!(c(&p).frames, 6);
    }

    #[test]
    fn answers_to_our_own_packets_are_not_probes_until_the_flow_is_forgotten() {
        let mut p = pipeline(&[]);
        // We closed a connection from port 80; the peer's FIN+ACK (Maimon-shaped) answers it.
        p.process(
            at(0),
            Ok(tcp(
                LOCAL,
                80,
                SCANNER,
                50000,
                TcpFlags::FIN | TcpFlags::ACK,
            )),
        );
        let answer = tcp(SCANNER, 50000, LOCAL, 80, TcpFlags::FIN | TcpFlags::ACK);
        p.process(at(1), Ok(answer));
        assert_eq!(p.counters().replies, 1);
        assert_eq!(p.counters().probes, 0);
        // Long after, the same packet is unsolicited.
        p.process(at(1 + 301), Ok(answer));
        assert_eq!(p.counters().probes, 1);
        // A UDP answer to a query we sent is not a probe either.
        let query = Packet {
            direction: Direction::Unknown,
            ifindex: None,
            src: ip(LOCAL),
            dst: ip(SCANNER),
            src_port: 5353,
            dst_port: 53,
            tcp_flags: None,
            window: 0,
            other: None,
        };
        p.process(at(400), Ok(query));
        let reply = Packet {
            direction: Direction::Unknown,
            ifindex: None,
            src: ip(SCANNER),
            dst: ip(LOCAL),
            src_port: 53,
            dst_port: 5353,
            tcp_flags: None,
            window: 0,
            other: None,
        };
        p.process(at(400), Ok(reply));
        assert_eq!(p.counters().replies, 2);
    }

    #[test]
    fn our_bare_rsts_reveal_an_ack_scan_of_ports_with_no_socket() {
        let mut p = pipeline(&[]);
        // The kernel answers each ACK probe to a port with no socket with a bare RST.
        let found: Vec<_> = (1..=4)
            .filter_map(|port| {
                p.process(at(0), Ok(tcp(LOCAL, port, SCANNER, 40000, TcpFlags::RST)))
            })
            .collect();
        assert_eq!(
            found.len(),
            1,
            "four privileged ports probed with ACK: 4 × 3 × 2 ≥ 21"
        );
        assert_eq!(found[0].addr, ip(SCANNER));
        assert_eq!(found[0].kinds.to_string(), "ack");
        // An application's abort, on a conversation that began with our SYN, is no probe.
        let mut p2 = pipeline(&[]);
        for port in 1..=20 {
            p2.process(
                at(0),
                Ok(tcp(LOCAL, 50000 + port, SCANNER, 80, TcpFlags::SYN)),
            );
            p2.process(
                at(0),
                Ok(tcp(LOCAL, 50000 + port, SCANNER, 80, TcpFlags::RST)),
            );
        }
        assert_eq!(p2.counters().probes, 0);
        // RST+ACK (the answer to a SYN or a FIN to a closed port) says nothing of the kind.
        let mut p = pipeline(&[]);
        for port in 1..=20 {
            p.process(
                at(0),
                Ok(tcp(
                    LOCAL,
                    port,
                    SCANNER,
                    40000,
                    TcpFlags::RST | TcpFlags::ACK,
                )),
            );
        }
        assert_eq!(p.counters().probes, 0);
    }

    /// Issue 28's SCTP and IP protocol probes.
    mod other_protocols;

    /// Issue 29's red team: forged sums read lazily from the frame.
    mod issue_29_red;

    #[test]
    fn a_syn_answered_with_syn_ack_was_no_probe() {
        let mut p = pipeline(&[]);
        // Five closed privileged ports, then port 25, where a service has just started: the
        // kernel answers its SYN with SYN+ACK before the socket table is read again.
        for port in 1..=5 {
            assert_eq!(
                p.process(at(0), Ok(tcp(SCANNER, 40000, LOCAL, port, TcpFlags::SYN))),
                None
            );
        }
        p.process(at(0), Ok(tcp(SCANNER, 40000, LOCAL, 25, TcpFlags::SYN)));
        p.process(
            at(0),
            Ok(tcp(
                LOCAL,
                25,
                SCANNER,
                40000,
                TcpFlags::SYN | TcpFlags::ACK,
            )),
        );
        // Port 25 no longer counts, and is no trap for the next probe either.
        assert_eq!(
            p.process(at(0), Ok(tcp(SCANNER, 40001, LOCAL, 25, TcpFlags::SYN))),
            None
        );
        assert_eq!(
            p.process(at(0), Ok(tcp(SCANNER, 40000, LOCAL, 6, TcpFlags::SYN))),
            None
        );
        let d = p
            .process(at(0), Ok(tcp(SCANNER, 40000, LOCAL, 7, TcpFlags::SYN)))
            .expect("seven closed ports");
        assert!(!d.ports.contains(&(Proto::Tcp, 25)), "{:?}", d.ports);
    }

    #[test]
    fn flows_table_forgets_by_ttl_and_by_collision_only() {
        let mut flows = RecentFlows::new(4, Duration::from_secs(10), 1);
        let out = tcp(LOCAL, 1, SCANNER, 2, TcpFlags::ACK);
        let back = tcp(SCANNER, 2, LOCAL, 1, TcpFlags::ACK);
        assert!(!flows.is_answer(at(0), &back));
        flows.remember(at(0), &out);
        assert!(flows.is_answer(at(10), &back));
        assert!(!flows.is_answer(at(11), &back));
        assert!(
            !flows.is_answer(at(1), &out),
            "the same direction is not an answer"
        );
    }

    mod property {
        use super::*;
        use crate::respond::{Action, Responder};
        use ipnet::IpNet;
        use proptest::prelude::*;

        /// A probe of the stream: source (from a small space, so that sources repeat and
        /// meet the never-block networks), port, flags, and the time step before it.
        fn arb_probe() -> impl Strategy<Value = (IpAddr, u16, u16, u64)> {
            let v4 = (0u8..2, 0u8..8).prop_map(|(c, d)| IpAddr::from([203, 0, 113 + c, d]));
            let v6 = (0u16..4, 0u16..8)
                .prop_map(|(net, host)| IpAddr::from([0x2001, 0xdb8, 7, net, 0, 0, 0, host]));
            (
                prop_oneof![3 => v4, 1 => v6],
                1u16..300,
                prop_oneof![
                    Just(0x02u16),
                    Just(0x01),
                    Just(0x00),
                    Just(0x29),
                    Just(0x10)
                ],
                0u64..300_000,
            )
        }

        fn arb_never() -> impl Strategy<Value = IpNet> {
            prop_oneof![
                (0u8..2, 0u8..8, 28u8..=32).prop_map(|(c, d, len)| IpNet::new(
                    IpAddr::from([203, 0, 113 + c, d]),
                    len
                )
                .unwrap()
                .trunc()),
                (0u16..4, 60u8..=128).prop_map(|(net, len)| IpNet::new(
                    IpAddr::from([0x2001, 0xdb8, 7, net, 0, 0, 0, 1]),
                    len
                )
                .unwrap()
                .trunc()),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(128))]

            /// Whatever the probe stream: no block ever holds a never-block address, the
            /// detector never tracks more sources than its capacity, and the responder never
            /// holds more blocks than its size budget nor makes more than its rate allows.
            #[test]
            fn never_block_capacity_and_budgets_hold_for_any_stream(
                never in proptest::collection::vec(arb_never(), 1..5),
                probes in proptest::collection::vec(arb_probe(), 1..1500),
            ) {
                let ignore = NeverBlockList::new(
                    never.iter().map(|&net| Entry { net, reason: Reason::Config }).collect(),
                );
                let mut traps = Traps::new(TrapMode::Unused, PortSet::new(), PortSet::new(), None);
                traps.set_listeners(Listeners::new());
                let detector = DetectorConfig {
                    max_sources: 16,
                    max_ports_per_source: 8,
                    ..DetectorConfig::default()
                };
                let mut p = Pipeline::new(
                    detector,
                    traps,
                    ignore.clone(),
                    [ip(LOCAL), ip("2001:db8::1")],
                    7,
                );
                let mut respond = crate::config::Config::default().respond;
                respond.max_blocks = 12;
                respond.max_new_blocks_per_second = 3;
                let mut r = Responder::new(&respond);
                let start = at(0);
                let mut now = start;
                // New blocks per address family: each has its own bucket.
                let mut new_blocks = [0u64; 2];
                for (src, port, flags, step_us) in probes {
                    now = now.saturating_add(Duration::from_micros(step_us));
                    let dst = if src.is_ipv4() { ip(LOCAL) } else { ip("2001:db8::1") };
                    let packet = Packet {
                        direction: Direction::Unknown,
                        ifindex: None,
                        src,
                        dst,
                        src_port: 40000,
                        dst_port: port,
                        tcp_flags: Some(TcpFlags::from_bits(flags)),
                        window: 1024,
                        other: None,
        };
                    if let Some(d) = p.process(now, Ok(packet)) {
                        let decision = r.on_detection(&d, p.never_block(), now);
                        for action in decision.actions() {
                            if let Action::Block { net, .. } = action {
                                prop_assert!(
                                    !ignore.overlaps(net),
                                    "blocked {net}, which holds a never-block address of {never:?}"
                                );
                                new_blocks[usize::from(net.addr().is_ipv6())] += 1;
                            }
                        }
                    }
                    prop_assert!(p.detector_stats().tracked <= 2 * 16, "the main table and probation");
                    // The size budget is per address family.
                    let v4 = r.active(now).filter(|b| b.net.addr().is_ipv4()).count();
                    prop_assert!(v4 <= 12 && r.active_count() - v4 <= 12);
                }
                // A token bucket of 3 a second with a burst of 3, per family.
                let seconds = now.saturating_since(start).as_secs_f64();
                for n in new_blocks {
                    prop_assert!(
                        n as f64 <= 3.0 + 3.0 * seconds.ceil(),
                        "{n} blocks of one family in {seconds:.1}s"
                    );
                }
            }
        }
    }
}
