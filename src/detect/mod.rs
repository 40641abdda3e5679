//! The scan detector: probes in, detections out. **Pure**; its clock is each probe's capture
//! timestamp, so a capture file replays the same way every time.
//!
//! Scoring is per source (an address, or its prefix when IPv6 sources are aggregated) over a
//! sliding window, on *distinct* trap ports rather than packets: each new port adds
//! `port weight × evidence weight` (privileged ports and stealth flag sets weigh more, after
//! scanlogd), a port probed again with stronger evidence is upgraded, and ports whose first probe
//! left the window stop counting. A source whose score reaches the threshold is a
//! [`Detection`]; while it keeps scanning it is reported again at most once per window.
//!
//! Memory is bounded whatever the traffic, and eviction favours evidence: a new source starts
//! on *probation*, a table of its own of at most `max_sources` (the one idle longest gives way
//! to a new one), and is promoted to the main table, also of at most `max_sources`, at its
//! second probe. So a flood of one-packet sources, forged or not, churns only the probation
//! table: a source with several probes is never evicted by it, and a slow scanner survives a
//! one-packet-per-source flood as long as fewer than `max_sources` new sources arrive between
//! two of its probes. At most `max_ports_per_source` ports each (the oldest is dropped), with
//! counters of both. Worst case ≈ `max_sources × (2 × 160 + 24 × max_ports_per_source)` bytes
//! (a slot of 144 bytes and its index entry per source, 24 bytes a port past the first, which
//! is kept in the slot); the slots stay allocated once made, so a full table is reused, never
//! reallocated (`detect::table`). Callers check the never-block list and the trap ports *before* [`Detector::observe`],
//! so neither ignored sources nor ordinary traffic ever create state here.

pub mod decoy;
pub mod fingerprint;
pub mod service_probes;
mod table;
pub mod traps;
pub mod version;

use std::collections::VecDeque;
use std::fmt;
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use ipnet::IpNet;

use table::{List, Table};

use crate::time::Timestamp;
use crate::wire::{Evidence, ProbeKind, Proto, TcpFlags};

/// One unsolicited packet to a trap port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    /// Capture time.
    pub at: Timestamp,
    /// Who sent it.
    pub src: IpAddr,
    /// The local address it was sent to.
    pub dst: IpAddr,
    /// TCP or UDP.
    pub proto: Proto,
    /// The trap port.
    pub dst_port: u16,
    /// What kind of probe it is.
    pub kind: ProbeKind,
}

/// Weights of the score: `port × evidence` per distinct port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Weights {
    /// Ports below 1024.
    pub privileged_port: u16,
    /// Ports from 1024.
    pub unprivileged_port: u16,
    /// SYN and UDP probes.
    pub ordinary: u16,
    /// FIN, Maimon and other odd flag sets.
    pub stealth: u16,
    /// NULL, XMAS, SYN+FIN, SYN+RST: flag sets no TCP stack sends to open a connection.
    pub impossible: u16,
}

impl Weights {
    /// scanlogd's port weights (3 and 1), doubled for stealth probes, and an impossible flag set
    /// on a privileged port reaching the default threshold (21) on its own.
    pub const DEFAULT: Weights = Weights {
        privileged_port: 3,
        unprivileged_port: 1,
        ordinary: 1,
        stealth: 2,
        impossible: 7,
    };

    /// The score one probe of `evidence` to `port` adds.
    pub fn of(&self, port: u16, evidence: Evidence) -> u32 {
        let port_weight = if port < 1024 {
            self.privileged_port
        } else {
            self.unprivileged_port
        };
        let evidence_weight = match evidence {
            Evidence::Ordinary => self.ordinary,
            Evidence::Stealth => self.stealth,
            Evidence::Impossible => self.impossible,
        };
        u32::from(port_weight) * u32::from(evidence_weight)
    }
}

/// The detector's settings (validated by `config`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetectorConfig {
    /// Score at which a source is a scanner.
    pub threshold: u32,
    /// How long a port keeps counting after its first probe.
    pub window: Duration,
    /// The weights.
    pub weights: Weights,
    /// How many sources are tracked at most.
    pub max_sources: usize,
    /// How many distinct ports are kept per source at most.
    pub max_ports_per_source: usize,
    /// IPv4 sources are counted per prefix of this length (32: per address).
    pub ipv4_prefix: u8,
    /// IPv6 sources are counted per prefix of this length (64 by default).
    pub ipv6_prefix: u8,
    /// Ports where one probe makes a detection, whatever the score (none by default).
    pub tripwire: traps::Tripwires,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            threshold: 21,
            window: Duration::from_secs(60),
            weights: Weights::DEFAULT,
            max_sources: 32_768,
            max_ports_per_source: 64,
            ipv4_prefix: 32,
            ipv6_prefix: 64,
            tripwire: traps::Tripwires::default(),
        }
    }
}

/// A set of scan kinds, as seen in one source's probes.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ScanKinds(u16);

impl ScanKinds {
    /// One kind for each bit, in bit order (`Odd` stands for any odd flag set).
    const KINDS: [ProbeKind; 14] = [
        ProbeKind::Syn,
        ProbeKind::Fin,
        ProbeKind::Null,
        ProbeKind::Xmas,
        ProbeKind::Maimon,
        ProbeKind::Odd(TcpFlags::URG),
        ProbeKind::Udp,
        ProbeKind::Ack,
        ProbeKind::TinyFragment,
        ProbeKind::FragmentOverlap,
        ProbeKind::SctpInit,
        ProbeKind::SctpCookieEcho,
        ProbeKind::IpProtocol,
        ProbeKind::Version,
    ];

    /// The bit of `kind`: its place in [`ScanKinds::KINDS`] (a match, on the per-probe path;
    /// a test holds the two together).
    fn bit(kind: ProbeKind) -> u16 {
        match kind {
            ProbeKind::Syn => 1,
            ProbeKind::Fin => 1 << 1,
            ProbeKind::Null => 1 << 2,
            ProbeKind::Xmas => 1 << 3,
            ProbeKind::Maimon => 1 << 4,
            ProbeKind::Odd(_) => 1 << 5,
            ProbeKind::Udp => 1 << 6,
            ProbeKind::Ack => 1 << 7,
            ProbeKind::TinyFragment => 1 << 8,
            ProbeKind::FragmentOverlap => 1 << 9,
            ProbeKind::SctpInit => 1 << 10,
            ProbeKind::SctpCookieEcho => 1 << 11,
            ProbeKind::IpProtocol => 1 << 12,
            ProbeKind::Version => 1 << 13,
        }
    }

    /// Every kind there is (a bit for each).
    pub const ALL: ScanKinds = ScanKinds((1 << Self::KINDS.len()) - 1);

    /// The set holding `kind`.
    pub fn of(kind: ProbeKind) -> Self {
        ScanKinds(Self::bit(kind))
    }

    /// Adds the kinds of `other`.
    pub fn insert(&mut self, other: ScanKinds) {
        self.0 |= other.0;
    }

    /// Whether `kind` is in the set.
    pub fn contains(self, kind: ProbeKind) -> bool {
        self.0 & Self::bit(kind) != 0
    }

    /// The names in the set ([`ProbeKind::scan_name`]), in a fixed order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::KINDS
            .into_iter()
            .filter(move |k| self.contains(*k))
            .map(ProbeKind::scan_name)
    }
}

impl fmt::Display for ScanKinds {
    /// `syn`, or `syn+udp` for a mix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, name) in self.names().enumerate() {
            if i > 0 {
                f.write_str("+")?;
            }
            f.write_str(name)?;
        }
        Ok(())
    }
}

impl fmt::Debug for ScanKinds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScanKinds({self})")
    }
}

/// A source recognised as a scanner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detection {
    /// What was counted: the address (a host prefix) or, when aggregated, its network.
    pub source: IpNet,
    /// The address of the probe that crossed the threshold.
    pub addr: IpAddr,
    /// The kinds of probe seen in the window.
    pub kinds: ScanKinds,
    /// The distinct trap ports in the window, sorted.
    pub ports: Vec<(Proto, u16)>,
    /// The first probe of the window.
    pub first_seen: Timestamp,
    /// The probe that crossed the threshold.
    pub last_seen: Timestamp,
    /// Probes from this source since it was first tracked or last reported.
    pub packets: u64,
    /// The score that crossed the threshold (a sum of up to 65,536 weights of up to a million
    /// each: a u64, which a u32 was not).
    pub score: u64,
    /// Whether more than one address of `source` probed (when `source` is a prefix wider than
    /// one address): the evidence that the prefix, not one host of it, is the scanner's.
    pub several_addresses: bool,
    /// The interface the probe that crossed the threshold came in on, when the capture says
    /// (set by the pipeline): what the reverse-path check compares the route back with.
    pub arrived_on: Option<u32>,
    /// The tripwire port (`[detect] tripwire-tcp`/`-udp`) the probe that made the detection
    /// reached, if it did: one probe there is enough, whatever the score, and the responder
    /// does not ask for `min-ports` ports.
    pub tripwire: Option<(Proto, u16)>,
    /// The tool its probes look like, when their shapes or payloads say (issue 28): strong
    /// evidence however few trap ports they touched.
    pub signature: Option<Signature>,
}

/// The tool a source's probes look like, and which of its probes were recognised: what
/// `sentryctl why` and the events say ("nmap OS detection: T2, T3, ECN").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    /// The tool and what it was doing, as an administrator reads it: `nmap OS detection`.
    pub tool: &'static str,
    /// The names of the probes recognised, in the order first seen (at most a handful).
    pub probes: Vec<&'static str>,
}

impl fmt::Display for Signature {
    /// `nmap OS detection (T2, T3, ECN)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.tool, self.probes.join(", "))
    }
}

/// A source that crossed the threshold, before the second look at the socket table that makes
/// it a [`Detection`] ([`Detector::settle`]). Nothing acts on a candidate: a detection is
/// decided once, and never taken back.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "a candidate is nothing until it is settled"]
pub struct Candidate(Detection);

impl Candidate {
    /// What the detection would be, as it stands.
    pub fn as_detection(&self) -> &Detection {
        &self.0
    }

    /// The same, arrived on interface `ifindex`.
    pub fn arrived_on(self, ifindex: Option<u32>) -> Self {
        Candidate(Detection {
            arrived_on: ifindex,
            ..self.0
        })
    }
}

impl Detection {
    /// What an administrator reads in a log line: `syn scan, 25 ports in 3.0s`,
    /// `tripwire 2323/tcp, syn scan, 1 port in 0.0s`, `ip-protocol scan, 7 IP protocols in
    /// 0.0s`, and the tool the probes looked like last: `syn scan, 0 ports in 0.2s, nmap OS
    /// detection (SEQ1, SEQ2, SEQ3)`.
    pub fn summary(&self) -> String {
        let tripwire = self.tripwire.map_or_else(String::new, |(proto, port)| {
            format!("tripwire {}, ", proto.label(port))
        });
        let signature = self
            .signature
            .as_ref()
            .map_or_else(String::new, |s| format!(", {s}"));
        let span = self.last_seen.saturating_since(self.first_seen);
        // IP protocol numbers are no ports (issue 28): `ip-protocol scan, 7 IP protocols`.
        let protocols = self.ports.iter().filter(|(p, _)| *p == Proto::Ip).count();
        let ports = self.ports.len() - protocols;
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        let counted = match (ports, protocols) {
            (n, 0) => format!("{n} port{}", plural(n)),
            (0, m) => format!("{m} IP protocol{}", plural(m)),
            (n, m) => format!("{n} port{} and {m} IP protocol{}", plural(n), plural(m)),
        };
        format!(
            "{tripwire}{} scan, {counted} in {:.1}s{signature}",
            self.kinds,
            span.as_secs_f64()
        )
    }
}

/// A source being counted, as [`Detector::leaders`] shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watched {
    /// The address, or its prefix when sources are counted per prefix.
    pub source: IpNet,
    /// Its score in the window.
    pub score: u64,
    /// Distinct trap ports in the window.
    pub ports: usize,
    /// The kinds of its probes in the window.
    pub kinds: ScanKinds,
    /// Probes counted from it.
    pub packets: u64,
    /// Its last probe.
    pub last_seen: Timestamp,
}

/// Counters of the detector's memory management.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DetectorStats {
    /// Sources tracked now.
    pub tracked: usize,
    /// Sources dropped to make room for a new one.
    pub evicted_sources: u64,
    /// Ports dropped because a source reached its port cap.
    pub evicted_ports: u64,
    /// Sources forgotten after a window without probes.
    pub expired_sources: u64,
    /// Detections made.
    pub detections: u64,
}

/// One distinct trap port of a source. 24 bytes.
#[derive(Clone, Copy, Debug)]
struct Hit {
    at: Timestamp,
    port: u16,
    proto: Proto,
    kinds: ScanKinds,
    weight: u32,
}

/// A source's distinct ports in the window, oldest first: the first inline, so that a source
/// on probation (one probe, one port) costs no allocation (issue 29); more on the heap.
#[derive(Debug)]
enum Hits {
    Inline(Option<Hit>),
    Heap(VecDeque<Hit>),
}

impl Default for Hits {
    fn default() -> Self {
        Hits::Inline(None)
    }
}

impl Hits {
    fn len(&self) -> usize {
        match self {
            Hits::Inline(hit) => usize::from(hit.is_some()),
            Hits::Heap(hits) => hits.len(),
        }
    }

    fn front(&self) -> Option<&Hit> {
        match self {
            Hits::Inline(hit) => hit.as_ref(),
            Hits::Heap(hits) => hits.front(),
        }
    }

    fn pop_front(&mut self) -> Option<Hit> {
        match self {
            Hits::Inline(hit) => hit.take(),
            Hits::Heap(hits) => hits.pop_front(),
        }
    }

    fn push_back(&mut self, new: Hit) {
        match self {
            Hits::Inline(None) => *self = Hits::Inline(Some(new)),
            Hits::Inline(Some(first)) => {
                let mut hits = VecDeque::with_capacity(4);
                hits.push_back(*first);
                hits.push_back(new);
                *self = Hits::Heap(hits);
            }
            Hits::Heap(hits) => hits.push_back(new),
        }
    }

    fn iter(&self) -> impl Iterator<Item = &Hit> {
        let (a, b) = match self {
            Hits::Inline(hit) => (hit.as_slice(), &[][..]),
            Hits::Heap(hits) => hits.as_slices(),
        };
        a.iter().chain(b)
    }

    /// The hit on `proto` `port`.
    fn find_mut(&mut self, proto: Proto, port: u16) -> Option<&mut Hit> {
        let (a, b) = match self {
            Hits::Inline(hit) => (hit.as_mut_slice(), &mut [][..]),
            Hits::Heap(hits) => hits.as_mut_slices(),
        };
        a.iter_mut()
            .chain(b)
            .find(|h| h.port == port && h.proto == proto)
    }

    /// The place of the hit on `proto` `port`, oldest first.
    fn position(&self, proto: Proto, port: u16) -> Option<usize> {
        self.iter().position(|h| h.port == port && h.proto == proto)
    }

    fn remove(&mut self, i: usize) -> Option<Hit> {
        match self {
            Hits::Inline(hit) if i == 0 => hit.take(),
            Hits::Inline(_) => None,
            Hits::Heap(hits) => hits.remove(i),
        }
    }

    fn retain(&mut self, mut keep: impl FnMut(&Hit) -> bool) {
        match self {
            Hits::Inline(hit) => {
                if hit.as_ref().is_some_and(|h| !keep(h)) {
                    *hit = None;
                }
            }
            Hits::Heap(hits) => hits.retain(|h| keep(h)),
        }
    }
}

#[derive(Debug)]
struct Source {
    /// Distinct ports in the window, oldest first.
    hits: Hits,
    score: u64,
    last_seen: Timestamp,
    packets: u64,
    /// No new detection before this time (one window after the last that was acted on).
    quiet_until: Timestamp,
    /// The first address of the prefix that probed, and whether another one did since.
    first: IpAddr,
    several: bool,
    /// The tool fingerprints of its packets in the window ([`fingerprint`]).
    seen: fingerprint::Seen,
}

impl Source {
    /// The detection this source makes now (`src` at `at`), with the counts since the last
    /// one, which start again.
    fn detection(
        &mut self,
        net: IpNet,
        src: IpAddr,
        at: Timestamp,
        tripwire: Option<(Proto, u16)>,
    ) -> Detection {
        let mut kinds = self.seen.kinds_at(at);
        let mut ports: Vec<(Proto, u16)> = Vec::with_capacity(self.hits.len());
        for h in self.hits.iter() {
            kinds.insert(h.kinds);
            ports.push((h.proto, h.port));
        }
        ports.sort_unstable();
        let first_hit = self.hits.front().map_or(at, |h| h.at);
        let signature = self.seen.signature_at(at);
        let first_seen = match signature {
            Some(_) => first_hit.min(self.seen.since),
            None => first_hit,
        };
        let packets = std::mem::take(&mut self.packets);
        Detection {
            source: net,
            addr: src,
            kinds,
            ports,
            first_seen,
            last_seen: at,
            packets,
            score: self.score,
            several_addresses: self.several,
            arrived_on: None,
            tripwire,
            signature,
        }
    }
}

/// The detector: a bounded table of sources and their windows.
#[derive(Debug)]
pub struct Detector {
    config: DetectorConfig,
    /// Sources with two probes or more ([`List::Main`]) and sources with one probe so far
    /// ([`List::Probation`]), each least recently active first: one index for both.
    sources: Table<Source>,
    stats: DetectorStats,
    mask4: u32,
    mask6: u128,
}

impl Detector {
    /// A detector with no state.
    ///
    /// # Panics
    ///
    /// If `max_sources` or `max_ports_per_source` is 0 (validated configurations never are).
    pub fn new(config: DetectorConfig) -> Self {
        assert!(config.max_sources > 0, "max_sources must be positive");
        assert!(
            config.max_ports_per_source > 0,
            "max_ports_per_source must be positive"
        );
        // A random seed, so that remote parties cannot aim collisions at the tables.
        let seed = foldhash::fast::RandomState::default().hash_one(0x5eed_u64);
        Detector {
            sources: Table::new(seed),
            mask4: mask4(config.ipv4_prefix),
            mask6: mask6(config.ipv6_prefix),
            config,
            stats: DetectorStats::default(),
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// Counts one probe; returns a candidate when its source crosses the threshold, which
    /// [`Detector::settle`] makes a detection or takes back.
    pub fn observe(&mut self, probe: &Probe) -> Option<Candidate> {
        self.observe_marked(probe, None)
    }

    /// [`Detector::observe`], for a probe whose header is also a tool's ([`fingerprint`]):
    /// the mark is kept with the source's, and a detection names the tool.
    pub fn observe_marked(
        &mut self,
        probe: &Probe,
        mark: Option<fingerprint::Mark>,
    ) -> Option<Candidate> {
        let key = self.key(probe.src);
        let prefix_len = self.prefix_len(key);
        let weight = self
            .config
            .weights
            .of(probe.dst_port, probe.kind.evidence());
        let window = self.config.window;
        let max_ports = self.config.max_ports_per_source;
        // A bare ACK is what a connection that ended leaves behind, not a probe that opens one.
        // (One word of the bitmap is read; `is_empty` would read all 1,024: issue 29.)
        let tripped = probe.kind != ProbeKind::Ack
            && self.config.tripwire.contains(probe.proto, probe.dst_port);

        let threshold = u64::from(self.config.threshold);
        let source = entry(
            &mut self.sources,
            &mut self.stats,
            self.config.max_sources,
            (key, probe.src, probe.at),
        );
        if let Some(mark) = mark {
            source.seen.insert(mark, Some(probe.kind), probe.at, window);
        }

        // Slide the window: ports first probed more than a window ago stop counting.
        let horizon = probe.at.saturating_sub(window);
        while source.hits.front().is_some_and(|h| h.at < horizon) {
            if let Some(old) = source.hits.pop_front() {
                source.score -= u64::from(old.weight);
            }
        }

        let kinds = ScanKinds::of(probe.kind);
        match source.hits.find_mut(probe.proto, probe.dst_port) {
            Some(hit) => {
                // A port probed already: an ACK seen through the kernel's answer is that probe's
                // own echo (a Maimon FIN+ACK gets the same bare RST), not another scan kind.
                if probe.kind != ProbeKind::Ack {
                    hit.kinds.insert(kinds);
                }
                if weight > hit.weight {
                    source.score += u64::from(weight - hit.weight);
                    hit.weight = weight;
                }
            }
            None => {
                if source.hits.len() >= max_ports {
                    if let Some(old) = source.hits.pop_front() {
                        source.score -= u64::from(old.weight);
                    }
                    self.stats.evicted_ports += 1;
                }
                source.hits.push_back(Hit {
                    at: probe.at,
                    port: probe.dst_port,
                    proto: probe.proto,
                    kinds,
                    weight,
                });
                source.score += u64::from(weight);
            }
        }
        source.packets += 1;
        source.several |= probe.src != source.first;
        // Capture timestamps may step back a little; never move last_seen backwards.
        source.last_seen = source.last_seen.max(probe.at);

        if (source.score < threshold && !tripped) || probe.at < source.quiet_until {
            return None;
        }
        source.quiet_until = probe.at.saturating_add(window);
        let net = IpNet::new(key, prefix_len).expect("prefix lengths are validated");
        let tripwire = tripped.then_some((probe.proto, probe.dst_port));
        Some(Candidate(
            source.detection(net, probe.src, probe.at, tripwire),
        ))
    }

    /// Counts one packet of a tool's decisive probes ([`fingerprint::Mark::decisive`], nmap OS
    /// detection) that reached no trap port (they go to the open port): its mark is kept with
    /// the source's, and a candidate is returned when the source's marks make a detection on
    /// their own ([`fingerprint::OS_PROBES`] distinct probes in a window). The caller has made
    /// every check a probe goes through but the trap port's.
    pub fn mark(
        &mut self,
        at: Timestamp,
        src: IpAddr,
        mark: fingerprint::Mark,
        kind: Option<ProbeKind>,
    ) -> Option<Candidate> {
        let key = self.key(src);
        let net = IpNet::new(key, self.prefix_len(key)).expect("prefix lengths are validated");
        let window = self.config.window;
        let source = entry(
            &mut self.sources,
            &mut self.stats,
            self.config.max_sources,
            (key, src, at),
        );
        source.seen.insert(mark, kind, at, window);
        source.packets += 1;
        source.several |= src != source.first;
        source.last_seen = source.last_seen.max(at);
        if !source.seen.marks.decisive() || at < source.quiet_until {
            return None;
        }
        source.quiet_until = at.saturating_add(window);
        Some(Candidate(source.detection(net, src, at, None)))
    }

    /// Lets the source of `detection` be detected again at its next probe: nothing was done
    /// about it (refused by the budget, or too little evidence yet), so the quiet period that
    /// follows a detection must not shelter it.
    pub fn reconsider(&mut self, detection: &Detection) {
        let key = self.key(detection.addr);
        if let Some(source) = self.source_mut(&key) {
            source.quiet_until = Timestamp::ZERO;
        }
    }

    /// Forgets sources with no probe for a whole window. Cheap: sources are kept in order of
    /// last activity, so only the expired ones are visited.
    pub fn expire(&mut self, now: Timestamp) {
        let horizon = now.saturating_sub(self.config.window);
        for list in [List::Main, List::Probation] {
            while self
                .sources
                .front(list)
                .is_some_and(|(_, s)| s.last_seen < horizon)
            {
                self.sources.pop_front(list);
                self.stats.expired_sources += 1;
            }
        }
    }

    /// Takes back the hit of `src` on `proto` `port` (the port turned out to have a listener:
    /// the kernel answered the probe with SYN+ACK).
    pub fn retract(&mut self, src: IpAddr, proto: Proto, port: u16) {
        let key = self.key(src);
        if let Some(source) = self.source_mut(&key)
            && let Some(i) = source.hits.position(proto, port)
            && let Some(hit) = source.hits.remove(i)
        {
            source.score -= u64::from(hit.weight);
        }
    }

    /// Settles `candidate` with a second look at the socket table, the only way to a
    /// detection: hits on ports where `listens` now finds a socket (a service that started after
    /// the table was last read) are taken back, and so is a tripwire with a listener now.
    /// Returns the detection (counted, with those ports gone from it) if its source still
    /// crosses the threshold without them or still reached a tripwire, else `None`, and then
    /// the source may be detected at its next probe, as if this one had not counted.
    pub fn settle(
        &mut self,
        candidate: Candidate,
        listens: impl Fn(Proto, u16) -> bool,
    ) -> Option<Detection> {
        let Candidate(mut detection) = candidate;
        if detection
            .ports
            .iter()
            .any(|&(proto, port)| listens(proto, port))
        {
            if detection
                .tripwire
                .is_some_and(|(proto, port)| listens(proto, port))
            {
                detection.tripwire = None;
            }
            detection
                .ports
                .retain(|&(proto, port)| !listens(proto, port));
            let threshold = u64::from(self.config.threshold);
            if let Some(source) = self.source_mut(&detection.source.addr()) {
                source.hits.retain(|h| {
                    let open = listens(h.proto, h.port);
                    if open {
                        source.score -= u64::from(h.weight);
                    }
                    !open
                });
                detection.score = source.score;
                let decisive = detection
                    .signature
                    .as_ref()
                    .is_some_and(fingerprint::decisive);
                if source.score < threshold && detection.tripwire.is_none() && !decisive {
                    source.quiet_until = Timestamp::ZERO;
                    return None;
                }
            }
        }
        self.stats.detections += 1;
        Some(detection)
    }

    /// Forgets every source inside `net`, so that its next probes are judged afresh (after an
    /// administrator lifts its block).
    pub fn forget(&mut self, net: ipnet::IpNet) {
        self.sources.retain(List::Main, |key, _| !net.contains(key));
        self.sources
            .retain(List::Probation, |key, _| !net.contains(key));
    }

    /// The `n` sources with the highest scores in their windows now (of those with two probes
    /// or more), highest first: who is scanning, for `sentryctl top`. One pass over the table.
    pub fn leaders(&self, n: usize) -> Vec<Watched> {
        let mut leaders: Vec<Watched> = Vec::with_capacity(n + 1);
        for (key, s) in self.sources.iter(List::Main) {
            if leaders.len() == n && leaders.last().is_some_and(|w| w.score >= s.score) {
                continue;
            }
            let mut kinds = ScanKinds::default();
            for hit in s.hits.iter() {
                kinds.insert(hit.kinds);
            }
            let watched = Watched {
                source: IpNet::new(*key, self.prefix_len(*key))
                    .expect("prefix lengths are validated"),
                score: s.score,
                ports: s.hits.len(),
                kinds,
                packets: s.packets,
                last_seen: s.last_seen,
            };
            let at = leaders.partition_point(|w| w.score >= watched.score);
            leaders.insert(at, watched);
            leaders.truncate(n);
        }
        leaders
    }

    /// The trap ports `src` (as it is counted: its address or prefix) probed within its
    /// window, oldest first, at most `n`.
    pub fn ports_of(&self, src: IpAddr, n: usize) -> Vec<(Proto, u16)> {
        let key = self.key(src);
        let source = self.sources.get(&key);
        source
            .map(|s| s.hits.iter().take(n).map(|h| (h.proto, h.port)).collect())
            .unwrap_or_default()
    }

    /// Counters, and the number of sources tracked now.
    pub fn stats(&self) -> DetectorStats {
        DetectorStats {
            tracked: self.sources.len(List::Main) + self.sources.len(List::Probation),
            ..self.stats
        }
    }

    /// The source counted under `key`, in either table.
    fn source_mut(&mut self, key: &IpAddr) -> Option<&mut Source> {
        self.sources.get_mut(key)
    }

    /// The key a source is counted under: its address, masked to the configured prefix.
    /// The source `src` is counted as: the address, or its prefix.
    pub fn source_of(&self, src: IpAddr) -> IpNet {
        let key = self.key(src);
        IpNet::new(key, self.prefix_len(key)).expect("prefix lengths are validated")
    }

    fn key(&self, src: IpAddr) -> IpAddr {
        match src.to_canonical() {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from_bits(a.to_bits() & self.mask4)),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from_bits(a.to_bits() & self.mask6)),
        }
    }

    fn prefix_len(&self, addr: IpAddr) -> u8 {
        match addr {
            IpAddr::V4(_) => self.config.ipv4_prefix,
            IpAddr::V6(_) => self.config.ipv6_prefix,
        }
    }
}

/// The state of the source counted under `key` (`src` probing at `at`), made on probation if
/// there is none, promoted to the main table at its second packet; the least recently active of
/// a full table gives way.
fn entry<'a>(
    tables: &'a mut Table<Source>,
    stats: &mut DetectorStats,
    max_sources: usize,
    (key, src, at): (IpAddr, IpAddr, Timestamp),
) -> &'a mut Source {
    // One lookup for both lists.
    let hash = tables.hash(&key);
    match tables.find(hash, &key) {
        Some(slot) if slot.list == List::Main => tables.touch(slot, List::Main),
        Some(slot) => {
            // Its second probe: off probation, into the main table.
            if tables.len(List::Main) >= max_sources {
                tables.pop_front(List::Main);
                stats.evicted_sources += 1;
            }
            tables.touch(slot, List::Main)
        }
        None => {
            if tables.len(List::Probation) >= max_sources {
                tables.pop_front(List::Probation);
                stats.evicted_sources += 1;
            }
            tables.push_back(
                List::Probation,
                hash,
                key,
                Source {
                    hits: Hits::default(),
                    score: 0,
                    last_seen: at,
                    packets: 0,
                    quiet_until: Timestamp::ZERO,
                    first: src,
                    several: false,
                    seen: fingerprint::Seen::default(),
                },
            )
        }
    }
}

/// The IPv4 network mask of a prefix length (0-32).
fn mask4(len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0)
}

/// The IPv6 network mask of a prefix length (0-128).
fn mask6(len: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(len.min(128)))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod mask_tests {
    #[test]
    fn masks_of_every_length() {
        assert_eq!(super::mask4(0), 0);
        assert_eq!(super::mask4(24), 0xffff_ff00);
        assert_eq!(super::mask4(32), u32::MAX);
        assert_eq!(super::mask6(64), u128::MAX << 64);
        assert_eq!(super::mask6(128), u128::MAX);
        assert_eq!(super::mask6(0), 0);
    }
}
