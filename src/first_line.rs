//! The kernel's first line as a pure model, packet by packet: what its rules in own mode's table
//! (chain `first_line`, after conntrack and after the block chain) would have done with each
//! packet of a capture. **Pure**: packets and time in, outcomes out; `sentryd --replay` runs it
//! beside the engine to say which sources the kernel would have held, and when.
//!
//! The rules it follows (the lead's decisions of issue 27, design.md §1 "config W"; chain
//! `first_line` of `nft/scansentry.nft` as helper K wrote it), in order:
//! 1. what the input hook never sees: packets sent by the host, packets for another host or a
//!    broadcast, sources the kernel's routing drops before any hook (IPv4 `0/8`, `127/8`,
//!    multicast and broadcast; IPv6 multicast and `::1`);
//! 2. the block sets (own mode's `input` chain): a blocked source is dropped before this line;
//! 3. established or related: skipped;
//! 4. the allow sets (the never-block list): skipped (the `input` chain's accept does not stop
//!    this base chain, which skips them itself);
//! 5. a held source (`hold4`/`hold6`, the full address): dropped;
//! 6. skipped: a bare ACK (ACK without SYN, FIN or RST), RST, a SYN (without FIN, RST or ACK)
//!    that conntrack finds invalid, protected peers, `spare` sets, a
//!    listening proto . port, UDP to the ephemeral range, and the reverse-path check
//!    (`fib saddr . iif oif missing`);
//! 7. a tripwire proto . port: held at once;
//! 8. the pair source . proto . port (an IPv6 source by its /64) already counted within its
//!    60 s (an `add` does not refresh it): not counted again; a new pair is added, or, with the
//!    pairs set full, the probe is not counted (`score_full`: fail open);
//! 9. the source's token bucket (the /64 for IPv6; `limit rate over 1/minute burst 5 packets`,
//!    created full, refilled continuously at one token a minute, its element kept 60 s after
//!    its last draw) is drawn once, once more for a privileged port (< 1024) or a TCP probe
//!    without SYN, and once more for a TCP port scanners probe first ([`SCANNERS_FIRST`]); with
//!    the score set full, each draw fails open (`score_full`);
//! 10. the first draw that finds no token holds the source for `first-line-hold` (not refreshed
//!     by its later packets); with the hold set full, the probe is dropped and its pair deleted
//!     (`hold_full`), so that its retry is counted again.
//!
//! What a capture cannot tell is approximated, each way stated where it is done:
//! - **conntrack**: a conversation is remembered from the packets of the capture (both ways),
//!   as conntrack creates and confirms entries (a TCP entry only from a SYN, or from an ACK
//!   picked up mid-stream; none for a packet this line drops); a packet is established when its
//!   conversation has been seen both ways. Timeouts are conntrack's defaults, simplified
//!   (TCP: 120 s unanswered, 5 days answered, 10 s after a RST, 120 s after a FIN; UDP: 30 s,
//!   120 s answered). Window tracking is not modelled: a segment conntrack would find out of
//!   its window (invalid, so counted) is established here. The table is direct-mapped (2^16
//!   conversations): a collision forgets the older one, whose next packets look new (the
//!   kernel's table has a bound too);
//! - **fib**: a replay has no routes, so the reverse-path check passes every source;
//! - **peers, spare sets**: what the daemon feeds ([`FirstLineModel::set_facts`],
//!   [`FirstLineModel::spare`]); a replay has no peers;
//! - **the kernel's set GC** reclaims expired elements about once a second: the model sweeps
//!   once a second of capture time, so an expired element still takes room until then, while
//!   lookups never find it;
//! - **checksums**: the kernel drops an IPv4 header with a wrong checksum before any hook, but a
//!   wrong TCP or UDP checksum only after the input hook (conntrack marks it invalid, which this
//!   line does not skip): the model takes every packet the capture shows as the kernel would
//!   take a wrong transport checksum (it counts);
//! - **timing**: a block the daemon decides is in force from the next packet on (live, a
//!   millisecond or so later);
//! - **broadcast and multicast**: the input hook sees them (`meta pkttype != host` skips them
//!   after the hold's drop); the model takes only packets to the host's own addresses, so it
//!   neither counts those (as the kernel does not) nor counts them dropped while held.
//!
//! Memory is bounded whatever the packets: each set has the kernel's size (or a smaller one for
//! tests, [`Sizes`]), the conversation table is fixed (2^16 slots, 2 MiB), and a hold reports
//! at most [`PORTS_KEPT`] ports. With every set full at the kernel's sizes (2 × 262,144 pairs,
//! 2 × 65,536 buckets, 2 × 4,096 holds) that is about 60 MB of hash tables, as the kernel's own
//! sets then take about 100 MB (design.md §3); a replay of a forged flood reaches it.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv6Addr};
use std::ops::RangeInclusive;
use std::time::Duration;

use ipnet::IpNet;

use crate::detect::traps::PortSet;
use crate::firewall::{FirstLineFacts, KernelHold};
use crate::never_block::NeverBlockList;
use crate::time::Timestamp;
use crate::wire::{Direction, Packet, Proto, TcpFlags};

/// The facts the daemon loads into the first line's sets, from `config` and what the host
/// shows, so that the kernel never counts what the daemon never counts: the ports something
/// `listening` on with the excluded ones (`[detect] exclude-tcp`/`exclude-udp`), the
/// tripwires, the protected `peers`, and UDP's ephemeral range as configured (`local_range`,
/// the kernel's, for `auto`).
pub fn facts(
    config: &crate::config::Config,
    mut listening: BTreeSet<(Proto, u16)>,
    peers: Vec<IpNet>,
    local_range: RangeInclusive<u16>,
) -> FirstLineFacts {
    let traps = &config.traps;
    for (proto, set) in [
        (Proto::Tcp, &traps.exclude_tcp),
        (Proto::Udp, &traps.exclude_udp),
    ] {
        listening.extend(set.iter().map(|port| (proto, port)));
    }
    let tripwire = &config.detector.tripwire;
    let tripwires = [(Proto::Tcp, &tripwire.tcp), (Proto::Udp, &tripwire.udp)]
        .into_iter()
        .flat_map(|(proto, set)| set.iter().map(move |port| (proto, port)))
        .collect();
    let ephemeral = match &traps.ephemeral_udp {
        crate::config::EphemeralUdp::Auto => Some(local_range),
        crate::config::EphemeralUdp::Range(range) => Some(range.clone()),
        crate::config::EphemeralUdp::None => None,
    };
    FirstLineFacts {
        listening,
        tripwires,
        scanners_first: scanners_first(),
        peers,
        ephemeral,
    }
}

/// The TCP ports scanners probe before any other, which a probe of draws once more: nmap moves
/// the ports most often found open (its `random_port_cheat`, 28 ports) to the front of every
/// port list it scans, shuffled among themselves, so a scan's first probes are these, open and
/// closed mixed. Left out: 135, 139 and 445, which a Windows client tries by itself on a host
/// it browses, and 113 (ident), which a mail or IRC server calls back on. Two of the
/// privileged ones that nothing listens on hold a source; a listening one is never counted.
pub const SCANNERS_FIRST: [u16; 24] = [
    21, 22, 23, 25, 53, 80, 110, 111, 143, 199, 256, 443, 554, 587, 993, 995, 1025, 1720, 1723,
    3306, 3389, 5900, 8080, 8888,
];

/// [`SCANNERS_FIRST`] as the first line's set holds them: TCP . port.
pub fn scanners_first() -> BTreeSet<(Proto, u16)> {
    SCANNERS_FIRST
        .iter()
        .map(|&port| (Proto::Tcp, port))
        .collect()
}

/// How long a pair, and a score element after its last draw, last (`timeout 60s`).
pub const COUNT_FOR: Duration = Duration::from_secs(60);
/// The bucket's burst: how many draws a fresh source passes (`burst 5 packets`).
pub const BURST: u64 = 5;
/// One token, in microseconds of refill (`rate 1/minute`).
const TOKEN_US: u64 = 60_000_000;
/// How many of the trap ports a source's bucket paid for a hold reports (the latest).
pub const PORTS_KEPT: usize = 8;
/// How often expired elements are reclaimed, in capture time (the kernel's set GC).
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// The conversation table: 2^16 slots.
const CONNTRACK_BITS: u32 = 16;

/// The sizes of the first line's sets (per address family, as the kernel's sets are).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sizes {
    /// `pairs4`/`pairs6`.
    pub pairs: usize,
    /// `score4`/`score6`.
    pub score: usize,
    /// `hold4`/`hold6`.
    pub hold: usize,
    /// The block sets (own mode's `set_size`).
    pub blocked: usize,
    /// `spare4`/`spare6`.
    pub spare: usize,
}

impl Sizes {
    /// The kernel's sizes (design.md §3); the block sets as own mode's default.
    pub const KERNEL: Sizes = Sizes {
        pairs: 262_144,
        score: 65_536,
        hold: 4096,
        blocked: 65_536,
        spare: 4096,
    };
}

/// Why the first line let a packet through without counting it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Skip {
    /// A source of the allow sets (the never-block list).
    Allowed,
    /// TCP with RST.
    Rst,
    /// TCP with ACK and none of SYN, FIN, RST.
    BareAck,
    /// Of a connection conntrack knows both ways (established, related).
    Established,
    /// A protected peer.
    Peer,
    /// A source of the `spare` sets.
    Spared,
    /// A link-local source (169.254.0.0/16, fe80::/10), which the daemon never counts.
    LinkLocal,
    /// To a proto . port something listens on.
    Listening,
    /// UDP to the ephemeral range (late replies).
    EphemeralUdp,
    /// A SYN (without FIN, RST or ACK) that conntrack finds invalid: the kernel's rule for SYNs
    /// with a wrong checksum lets it pass.
    Invalid,
    /// Neither TCP nor UDP (SCTP, another IP protocol): the line judges those two only.
    OtherProtocol,
}

/// What the first line did with one packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The input hook never sees it: sent by the host, for another host or a broadcast, or
    /// from a source the kernel's routing drops.
    NotSeen,
    /// Dropped by the block sets, before this line.
    Blocked,
    /// Dropped: its source is held.
    Dropped,
    /// Let through, not counted.
    Skipped(Skip),
    /// Let through: its pair was counted already.
    Repeat,
    /// Counted: `weight` tokens drawn, `tokens_left` whole tokens left.
    Counted {
        /// Tokens drawn (1 to 3).
        weight: u8,
        /// Whole tokens left in the source's bucket.
        tokens_left: u64,
    },
    /// Let through uncounted: the pairs or score set was full (fail open).
    SetFull,
    /// The source is held from now on; this probe is dropped.
    Held(Hold),
    /// The source crossed, but the hold set was full: this probe is dropped, its pair deleted.
    HoldFull,
}

/// A hold the first line made: what the kernel reports for it (over nfnetlink_log), and what
/// the model knows besides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hold {
    /// When.
    pub at: Timestamp,
    /// When it ends unless lifted (not refreshed by the source's packets).
    pub until: Timestamp,
    /// The source and the probe that crossed, as the kernel's log message says them.
    pub probe: KernelHold,
    /// The source as counted: the address, or an IPv6 source's /64.
    pub counted_as: IpNet,
    /// Whether the probe's port is a tripwire (held at once).
    pub tripwire: bool,
    /// The trap ports the source's bucket paid for, the latest [`PORTS_KEPT`], the crossing
    /// probe's last.
    pub ports: Vec<(Proto, u16)>,
    /// How many trap ports the bucket paid for in all (the crossing probe's included).
    pub counted: u32,
}

impl Hold {
    /// The crossing probe's flags as a word (`SYN`, `FIN|ACK`), or `udp`.
    fn probe_text(&self) -> String {
        self.probe.tcp_flags.map_or_else(
            || "udp".to_string(),
            |f| TcpFlags::from_bits(u16::from(f)).to_string(),
        )
    }

    /// What a replay says of it: `would hold 203.0.113.9 for 5s at 902/tcp (SYN), 3 trap
    /// ports counted: 900/tcp 901/tcp 902/tcp`; a tripwire says so; an IPv6 source its /64.
    pub fn line(&self) -> String {
        let ports = |ports: &[(Proto, u16)]| {
            ports
                .iter()
                .map(|&(proto, port)| proto.label(port))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let prefix = if self.counted_as.prefix_len() < self.counted_as.max_prefix_len() {
            format!(" (counted as {})", self.counted_as)
        } else {
            String::new()
        };
        let why = if self.tripwire {
            "tripwire ".to_string()
        } else {
            String::new()
        };
        let kept = if u32::try_from(self.ports.len()).unwrap_or(u32::MAX) < self.counted {
            "the latest "
        } else {
            ""
        };
        format!(
            "first line would hold {}{prefix} for {} at {why}{} ({}), {} trap port{} counted: \
             {kept}{}",
            self.probe.source,
            crate::text::human(self.until.saturating_since(self.at)),
            self.probe.proto.label(self.probe.port),
            self.probe_text(),
            self.counted,
            if self.counted == 1 { "" } else { "s" },
            ports(&self.ports),
        )
    }

    /// The object `sentryd --replay --json` prints for it (type `hold`).
    pub fn json(&self) -> serde_json::Value {
        let ports: Vec<serde_json::Value> = self
            .ports
            .iter()
            .map(|(proto, port)| serde_json::json!({"proto": proto.as_str(), "port": port}))
            .collect();
        serde_json::json!({
            "schema": crate::report::SCHEMA,
            "type": "hold",
            "held_at": self.at.to_string(),
            "until_at": self.until.to_string(),
            "hold_s": self.until.saturating_since(self.at).as_secs(),
            "address": self.probe.source.to_string(),
            "prefix": crate::report::source_text(&self.counted_as),
            "probe": {"proto": self.probe.proto.as_str(), "port": self.probe.port},
            "flags": self.probe_text(),
            "tripwire": self.tripwire,
            "ports": ports,
            "ports_counted": self.counted,
        })
    }
}

/// What the first line did, since the model started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    /// Packets the input hook saw.
    pub seen: u64,
    /// Dropped by the block sets.
    pub blocked: u64,
    /// Dropped because their source was held.
    pub dropped: u64,
    /// Skipped: an allow-set source, or a link-local one.
    pub allowed: u64,
    /// Skipped: RST, a bare ACK, or a SYN conntrack finds invalid.
    pub rst_or_ack: u64,
    /// Skipped: established or related.
    pub established: u64,
    /// Skipped: a protected peer or a spared source.
    pub peer_or_spared: u64,
    /// Skipped: a listening port, or UDP to the ephemeral range.
    pub not_trap: u64,
    /// Probes whose pair was counted already.
    pub repeats: u64,
    /// Probes counted (a new pair).
    pub counted: u64,
    /// Holds made.
    pub holds: u64,
    /// Of which at a tripwire port.
    pub tripwire_holds: u64,
    /// The kernel's `score_full` counter: a pair not added, or a draw that found no room.
    pub score_full: u64,
    /// The kernel's `hold_full` counter: a hold not made.
    pub hold_full: u64,
}

/// A set whose elements time out, with the kernel's size bound: a full set takes no new
/// element (expired ones take room until the next sweep, as in the kernel).
#[derive(Debug)]
struct TimedSet<K, V> {
    map: HashMap<K, (Timestamp, V), foldhash::fast::RandomState>,
    size: usize,
}

impl<K: std::hash::Hash + Eq, V> TimedSet<K, V> {
    fn new(size: usize) -> Self {
        TimedSet {
            map: HashMap::default(),
            size,
        }
    }

    /// The element of `key`, unless it has expired.
    fn live_mut(&mut self, key: &K, now: Timestamp) -> Option<&mut (Timestamp, V)> {
        self.map.get_mut(key).filter(|(expires, _)| *expires > now)
    }

    fn contains(&self, key: &K, now: Timestamp) -> bool {
        self.map.get(key).is_some_and(|(expires, _)| *expires > now)
    }

    /// Adds `key` (replacing an expired element of the same key); `false` when the set is
    /// full. The caller looked it up first.
    fn insert(&mut self, key: K, expires: Timestamp, value: V) -> bool {
        if self.map.len() >= self.size && !self.map.contains_key(&key) {
            return false;
        }
        self.map.insert(key, (expires, value));
        true
    }

    fn remove(&mut self, key: &K) {
        self.map.remove(key);
    }

    fn sweep(&mut self, now: Timestamp) {
        self.map.retain(|_, (expires, _)| *expires > now);
    }
}

/// Networks with a time each ends (the block, spare and peer sets: intervals).
#[derive(Debug)]
struct NetSet {
    nets: TimedSet<IpNet, ()>,
    /// The prefix lengths in use, per family (false: IPv4): what a lookup masks with.
    lengths: BTreeSet<(bool, u8)>,
}

impl NetSet {
    fn new(size: usize) -> Self {
        NetSet {
            nets: TimedSet::new(size),
            lengths: BTreeSet::new(),
        }
    }

    fn add(&mut self, net: IpNet, until: Timestamp, now: Timestamp) {
        let net = net.trunc();
        if self.nets.contains(&net, now) {
            if let Some(e) = self.nets.map.get_mut(&net) {
                e.0 = e.0.max(until);
            }
            return;
        }
        if self.nets.insert(net, until, ()) {
            self.lengths
                .insert((net.addr().is_ipv6(), net.prefix_len()));
        }
    }

    fn contains(&self, addr: IpAddr, now: Timestamp) -> bool {
        let v6 = addr.is_ipv6();
        self.lengths
            .iter()
            .filter(|(family, _)| *family == v6)
            .any(|&(_, len)| {
                IpNet::new(addr, len).is_ok_and(|net| self.nets.contains(&net.trunc(), now))
            })
    }
}

/// A source as the first line counts it: an IPv4 address, or an IPv6 address's /64.
fn counted_as(src: IpAddr) -> IpNet {
    match src {
        IpAddr::V4(a) => IpNet::from(ipnet::Ipv4Net::from(a)),
        IpAddr::V6(a) => {
            let prefix = Ipv6Addr::from_bits(a.to_bits() & !u128::from(u64::MAX));
            IpNet::new(IpAddr::V6(prefix), 64).expect("64 is a valid IPv6 prefix length")
        }
    }
}

/// The key of a pair: the source as counted, the protocol and the port.
type PairKey = (IpNet, Proto, u16);

/// A source's token bucket (`limit rate over 1/minute burst 5 packets` in a dynamic set's
/// element), and the trap ports it paid for.
#[derive(Debug)]
struct Bucket {
    /// Tokens, in microseconds of refill (one token is [`TOKEN_US`]).
    tokens: u64,
    /// The last draw.
    last: Timestamp,
    /// The latest trap ports paid for (a ring of [`PORTS_KEPT`]).
    ports: [(Proto, u16); PORTS_KEPT],
    /// How many trap ports were paid for in all.
    counted: u32,
}

impl Bucket {
    fn full(now: Timestamp) -> Self {
        Bucket {
            tokens: BURST * TOKEN_US,
            last: now,
            ports: [(Proto::Tcp, 0); PORTS_KEPT],
            counted: 0,
        }
    }

    /// One draw, as nft_limit does it: refill for the time since the last draw (up to the
    /// burst), then take a token if there is one; `true` when there was none ("over").
    fn over(&mut self, now: Timestamp) -> bool {
        let refill = now.saturating_since(self.last).as_micros();
        let refill = u64::try_from(refill).unwrap_or(u64::MAX);
        self.tokens = self.tokens.saturating_add(refill).min(BURST * TOKEN_US);
        self.last = self.last.max(now);
        if self.tokens >= TOKEN_US {
            self.tokens -= TOKEN_US;
            false
        } else {
            true
        }
    }

    fn paid_for(&mut self, proto: Proto, port: u16) {
        let i = usize::try_from(self.counted).unwrap_or(0) % PORTS_KEPT;
        self.ports[i] = (proto, port);
        self.counted = self.counted.saturating_add(1);
    }

    /// The latest ports paid for, oldest first.
    fn latest(&self) -> Vec<(Proto, u16)> {
        let n = usize::try_from(self.counted).unwrap_or(usize::MAX);
        let kept = n.min(PORTS_KEPT);
        (n - kept..n).map(|i| self.ports[i % PORTS_KEPT]).collect()
    }
}

/// Conntrack, as far as a capture shows it: see the module's notes.
#[derive(Debug)]
struct Conntrack {
    slots: Box<[Conversation]>,
    hasher: foldhash::fast::FixedState,
}

/// One conversation of [`Conntrack`]'s table.
#[derive(Clone, Copy, Debug, Default)]
struct Conversation {
    /// The tuple's fingerprint (0: an empty slot).
    fp: u64,
    /// When conntrack would forget it.
    until: Timestamp,
    /// Whether its first packet was the host's.
    by_us: bool,
    /// Whether it has been seen both ways.
    answered: bool,
    /// Whether a RST ended it.
    reset: bool,
}

/// What conntrack would say of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CtState {
    /// Of a conversation seen both ways (or the first answer to one).
    Established,
    /// The first direction of a conversation: new.
    New,
    /// No conversation, and none is created (a flag set conntrack refuses, a RST, SYN+ACK,
    /// FIN, … out of the blue): invalid, which the first line does not skip either.
    Invalid,
}

impl Conntrack {
    fn new(seed: u64) -> Self {
        Conntrack {
            slots: vec![Conversation::default(); 1 << CONNTRACK_BITS].into_boxed_slice(),
            hasher: foldhash::fast::FixedState::with_seed(seed),
        }
    }

    /// The slot and fingerprint of `p`'s conversation, whichever way it goes.
    fn find(&self, p: &Packet, from_us: bool) -> (usize, u64) {
        use std::hash::BuildHasher;
        let (local, lport, remote, rport) = if from_us {
            (p.src, p.src_port, p.dst, p.dst_port)
        } else {
            (p.dst, p.dst_port, p.src, p.src_port)
        };
        let fp = self.hasher.hash_one((
            local.to_canonical(),
            lport,
            remote.to_canonical(),
            rport,
            p.tcp_flags.is_some(),
        )) | 1;
        let i = usize::try_from(fp >> (64 - CONNTRACK_BITS)).expect("16 bits fit usize");
        (i, fp)
    }

    /// What conntrack says of `p`, and whether it would make or keep an entry for it.
    fn state(&self, p: &Packet, from_us: bool, at: Timestamp) -> CtState {
        let Some(flags) = valid_flags(p) else {
            return CtState::Invalid;
        };
        let (i, fp) = self.find(p, from_us);
        let c = self.slots[i];
        if c.fp != fp || c.until <= at {
            return if creates(flags) {
                CtState::New
            } else {
                CtState::Invalid
            };
        }
        if c.by_us != from_us {
            // An answer: established from the first one on.
            return CtState::Established;
        }
        let syn_only = flags & 0x12 == 0x02;
        if !c.answered || (c.reset && syn_only) {
            // Not answered yet; or a SYN reopening a conversation a RST ended.
            CtState::New
        } else {
            CtState::Established
        }
    }

    /// Records `p` (accepted by the host, or sent by it) in its conversation.
    fn note(&mut self, p: &Packet, from_us: bool, at: Timestamp) {
        let state = self.state(p, from_us, at);
        let (i, fp) = self.find(p, from_us);
        let flags = p.tcp_flags.map(|f| f.bits() & 0x3f);
        let slot = &mut self.slots[i];
        match state {
            CtState::Invalid => return,
            CtState::New if slot.fp != fp || slot.until <= at || slot.reset => {
                *slot = Conversation {
                    fp,
                    until: at,
                    by_us: from_us,
                    answered: false,
                    reset: false,
                };
            }
            CtState::New => {}
            CtState::Established => slot.answered = true,
        }
        let life = match flags {
            None if slot.answered => 120,
            None => 30,
            Some(f) if f & 0x04 != 0 => {
                slot.reset = true;
                10
            }
            Some(f) if f & 0x01 != 0 => 120,
            Some(_) if slot.answered && !slot.reset => 5 * 24 * 3600,
            Some(_) if slot.reset => 10,
            Some(_) => 120,
        };
        slot.until = at.saturating_add(Duration::from_secs(life));
    }
}

/// A TCP packet's control flags when conntrack takes the set (its `tcp_valid_flags`, PSH, ECE
/// and CWR aside), `Some(0)` for UDP; `None` for a set it marks invalid.
fn valid_flags(p: &Packet) -> Option<u16> {
    const FIN: u16 = TcpFlags::FIN.bits();
    const SYN: u16 = TcpFlags::SYN.bits();
    const RST: u16 = TcpFlags::RST.bits();
    const ACK: u16 = TcpFlags::ACK.bits();
    const URG: u16 = TcpFlags::URG.bits();
    let Some(flags) = p.tcp_flags else {
        return Some(0);
    };
    let f = flags.bits() & (FIN | SYN | RST | ACK | URG);
    let valid = [
        SYN,
        SYN | URG,
        SYN | ACK,
        RST,
        RST | ACK,
        FIN | ACK,
        FIN | ACK | URG,
        ACK,
        ACK | URG,
    ];
    valid.contains(&f).then_some(f)
}

/// Whether a packet with no conversation makes one: UDP; TCP SYN; an ACK picked up
/// mid-stream (`nf_conntrack_tcp_loose`, on by default).
fn creates(flags: u16) -> bool {
    let syn = TcpFlags::SYN.bits();
    let ack = TcpFlags::ACK.bits();
    flags == 0 || flags & (syn | ack) == syn || flags & !TcpFlags::URG.bits() == ack
}

/// Whether the kernel's routing drops a packet from `src` before any netfilter hook (a martian
/// source).
fn martian(src: IpAddr) -> bool {
    match src {
        IpAddr::V4(a) => {
            a.is_loopback() || a.is_multicast() || a.is_broadcast() || a.octets()[0] == 0
        }
        IpAddr::V6(a) => a.is_multicast() || a.is_loopback(),
    }
}

/// `ip saddr 169.254.0.0/16`, `ip6 saddr fe80::/10`: the first line's link-local sources.
fn link_local(src: IpAddr) -> bool {
    match src {
        IpAddr::V4(a) => a.is_link_local(),
        IpAddr::V6(a) => a.is_unicast_link_local(),
    }
}

/// The kernel's first line, modelled.
#[derive(Debug)]
pub struct FirstLineModel {
    hold_for: Duration,
    locals: Vec<IpAddr>,
    allow: NeverBlockList,
    listening_tcp: PortSet,
    listening_udp: PortSet,
    tripwire_tcp: PortSet,
    tripwire_udp: PortSet,
    scanners_first: PortSet,
    ephemeral: Option<RangeInclusive<u16>>,
    peers: NetSet,
    spare: NetSet,
    blocked: NetSet,
    conntrack: Conntrack,
    pairs4: TimedSet<PairKey, ()>,
    pairs6: TimedSet<PairKey, ()>,
    score4: TimedSet<IpNet, Bucket>,
    score6: TimedSet<IpNet, Bucket>,
    hold4: TimedSet<IpAddr, ()>,
    hold6: TimedSet<IpAddr, ()>,
    counters: Counters,
    next_sweep: Timestamp,
}

/// A time no capture reaches: the end of what never times out.
const NEVER: Timestamp = Timestamp::from_micros(u64::MAX);

impl FirstLineModel {
    /// A first line with empty dynamic sets, holding for `hold_for`, on a host with `locals`,
    /// `allow` in its allow sets and `facts` in its fact sets. `seed` keys the conversation
    /// table's hash (fixed in a replay, so that it repeats).
    pub fn new(
        hold_for: Duration,
        sizes: Sizes,
        locals: impl IntoIterator<Item = IpAddr>,
        allow: NeverBlockList,
        facts: &FirstLineFacts,
        seed: u64,
    ) -> Self {
        let mut model = FirstLineModel {
            hold_for,
            locals: Vec::new(),
            allow: NeverBlockList::default(),
            listening_tcp: PortSet::new(),
            listening_udp: PortSet::new(),
            tripwire_tcp: PortSet::new(),
            tripwire_udp: PortSet::new(),
            scanners_first: PortSet::new(),
            ephemeral: facts.ephemeral.clone(),
            peers: NetSet::new(usize::MAX),
            spare: NetSet::new(sizes.spare),
            blocked: NetSet::new(sizes.blocked),
            conntrack: Conntrack::new(seed),
            pairs4: TimedSet::new(sizes.pairs),
            pairs6: TimedSet::new(sizes.pairs),
            score4: TimedSet::new(sizes.score),
            score6: TimedSet::new(sizes.score),
            hold4: TimedSet::new(sizes.hold),
            hold6: TimedSet::new(sizes.hold),
            counters: Counters::default(),
            next_sweep: Timestamp::ZERO,
        };
        model.set_host(locals, allow);
        model.set_facts(facts);
        model
    }

    /// Takes the host's addresses and the allow sets (the never-block list).
    pub fn set_host(&mut self, locals: impl IntoIterator<Item = IpAddr>, allow: NeverBlockList) {
        let mut locals: Vec<IpAddr> = locals.into_iter().map(|a| a.to_canonical()).collect();
        locals.sort_unstable();
        locals.dedup();
        self.locals = locals;
        self.allow = allow;
    }

    /// Replaces the fact sets whole, as the daemon does: listening ports, tripwires, the ports
    /// scanners probe first, peers and the ephemeral range.
    pub fn set_facts(&mut self, facts: &FirstLineFacts) {
        let ports = |set: &BTreeSet<(Proto, u16)>, proto: Proto| {
            let mut ports = PortSet::new();
            for &(p, port) in set {
                if p == proto {
                    ports.insert(port);
                }
            }
            ports
        };
        self.listening_tcp = ports(&facts.listening, Proto::Tcp);
        self.listening_udp = ports(&facts.listening, Proto::Udp);
        self.tripwire_tcp = ports(&facts.tripwires, Proto::Tcp);
        self.tripwire_udp = ports(&facts.tripwires, Proto::Udp);
        self.scanners_first = ports(&facts.scanners_first, Proto::Tcp);
        self.ephemeral = facts.ephemeral.clone();
        self.peers = NetSet::new(usize::MAX);
        for &net in &facts.peers {
            self.peers.add(net, NEVER, Timestamp::ZERO);
        }
    }

    /// A block the daemon made: `net`'s packets are dropped before this line until `until`.
    pub fn block(&mut self, net: IpNet, until: Timestamp, now: Timestamp) {
        self.blocked.add(net, until, now);
    }

    /// The daemon spares `nets` for `ttl`: not counted, not held.
    pub fn spare(&mut self, nets: &[IpNet], ttl: Duration, now: Timestamp) {
        for &net in nets {
            self.spare.add(net, now.saturating_add(ttl), now);
        }
    }

    /// The daemon lifts the holds of `sources`.
    pub fn lift(&mut self, sources: &[IpAddr]) {
        for &source in sources {
            match source.to_canonical() {
                a @ IpAddr::V4(_) => self.hold4.remove(&a),
                a @ IpAddr::V6(_) => self.hold6.remove(&a),
            }
        }
    }

    /// Whether `source` is held at `now`.
    pub fn is_held(&self, source: IpAddr, now: Timestamp) -> bool {
        match source.to_canonical() {
            a @ IpAddr::V4(_) => self.hold4.contains(&a, now),
            a @ IpAddr::V6(_) => self.hold6.contains(&a, now),
        }
    }

    /// What the first line did so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Elements in the dynamic sets now (pairs, score, hold; both families), expired ones the
    /// next sweep reclaims included.
    pub fn elements(&self) -> (usize, usize, usize) {
        (
            self.pairs4.map.len() + self.pairs6.map.len(),
            self.score4.map.len() + self.score6.map.len(),
            self.hold4.map.len() + self.hold6.map.len(),
        )
    }

    /// One packet of the capture, at `at`: what the first line does with it.
    pub fn packet(&mut self, at: Timestamp, p: &Packet) -> Outcome {
        self.sweep(at);
        let from_us = match p.direction {
            Direction::Outgoing => true,
            Direction::Incoming => false,
            Direction::Elsewhere => return Outcome::NotSeen,
            Direction::Unknown => self.is_local(p.src),
        };
        if from_us {
            self.conntrack.note(p, true, at);
            return Outcome::NotSeen;
        }
        let src = p.src.to_canonical();
        if !self.is_local(p.dst) || martian(src) {
            return Outcome::NotSeen;
        }
        self.counters.seen += 1;
        if self.blocked.contains(src, at) {
            self.counters.blocked += 1;
            return Outcome::Blocked;
        }
        let ct = self.conntrack.state(p, false, at);
        let outcome = self.judge(at, p, src, ct);
        if !matches!(
            outcome,
            Outcome::Dropped | Outcome::Held(_) | Outcome::HoldFull
        ) {
            // Accepted: conntrack confirms its entry (a dropped packet's is never confirmed).
            self.conntrack.note(p, false, at);
        }
        outcome
    }

    /// The chain `first_line` and those it jumps to, for a packet from `src` the input hook
    /// sees.
    fn judge(&mut self, at: Timestamp, p: &Packet, src: IpAddr, ct: CtState) -> Outcome {
        if ct == CtState::Established {
            self.counters.established += 1;
            return Outcome::Skipped(Skip::Established);
        }
        if self.allow.contains(src) {
            self.counters.allowed += 1;
            return Outcome::Skipped(Skip::Allowed);
        }
        if self.is_held(src, at) {
            self.counters.dropped += 1;
            return Outcome::Dropped;
        }
        if !p.proto().has_nft_ports() {
            // `meta l4proto != tcp meta l4proto != udp accept`: SCTP and other IP protocols
            // (issue 28) are the daemon's to judge, not this line's.
            return Outcome::Skipped(Skip::OtherProtocol);
        }
        let proto = p.proto();
        let port = p.dst_port;
        let skip = match p.tcp_flags.map(|f| f.bits()) {
            // `tcp flags & (fin | syn | rst | ack) == ack`, then `tcp flags & rst == rst`.
            Some(f) if f & 0x17 == TcpFlags::ACK.bits() => Some(Skip::BareAck),
            Some(f) if f & TcpFlags::RST.bits() != 0 => Some(Skip::Rst),
            // `ct state invalid tcp flags & (fin | syn | rst | ack) == syn`: a SYN conntrack
            // finds invalid is one with a wrong checksum, which a capture cannot tell; a SYN
            // with FIN (invalid by its flags) is counted.
            Some(f) if ct == CtState::Invalid && f & 0x17 == TcpFlags::SYN.bits() => {
                Some(Skip::Invalid)
            }
            _ if self.peers.contains(src, at) => Some(Skip::Peer),
            _ if self.spare.contains(src, at) => Some(Skip::Spared),
            _ if link_local(src) => Some(Skip::LinkLocal),
            _ if self.listening(proto, port) => Some(Skip::Listening),
            None if self.ephemeral.as_ref().is_some_and(|r| r.contains(&port)) => {
                Some(Skip::EphemeralUdp)
            }
            // `fib saddr . iif oif missing`: a replay has no routes; every source passes.
            _ => None,
        };
        if let Some(skip) = skip {
            let c = &mut self.counters;
            match skip {
                Skip::Rst | Skip::BareAck | Skip::Invalid => c.rst_or_ack += 1,
                Skip::Peer | Skip::Spared => c.peer_or_spared += 1,
                Skip::Listening | Skip::EphemeralUdp => c.not_trap += 1,
                Skip::LinkLocal => c.allowed += 1,
                Skip::Established | Skip::Allowed | Skip::OtherProtocol => {}
            }
            return Outcome::Skipped(skip);
        }
        let key = counted_as(src);
        let pair = (key, proto, port);
        if self.tripwire(proto, port) {
            return self.hold(at, p, src, pair, true);
        }
        let pairs = if src.is_ipv4() {
            &mut self.pairs4
        } else {
            &mut self.pairs6
        };
        if pairs.contains(&pair, at) {
            self.counters.repeats += 1;
            return Outcome::Repeat;
        }
        if !pairs.insert(pair, at.saturating_add(COUNT_FOR), ()) {
            self.counters.score_full += 1;
            return Outcome::SetFull;
        }
        self.counters.counted += 1;
        // Weigh (chain `weigh`): once, once more for a privileged port or a TCP probe without
        // SYN, once more for a TCP port scanners probe first.
        let stealth = p
            .tcp_flags
            .is_some_and(|f| f.bits() & TcpFlags::SYN.bits() == 0);
        let first = proto == Proto::Tcp && self.scanners_first.contains(port);
        let weight = 1 + u8::from(port < 1024 || stealth) + u8::from(first);
        self.count(at, p, src, pair, weight)
    }

    /// The chain `count`, jumped to `weight` times: each an `update` of the source's score
    /// element with its meter; the first draw that finds no token holds.
    fn count(
        &mut self,
        at: Timestamp,
        p: &Packet,
        src: IpAddr,
        pair: PairKey,
        weight: u8,
    ) -> Outcome {
        let key = pair.0;
        let score = if src.is_ipv4() {
            &mut self.score4
        } else {
            &mut self.score6
        };
        let mut paid = false;
        for _ in 0..weight {
            let expires = at.saturating_add(COUNT_FOR);
            let bucket = match score.live_mut(&key, at) {
                Some(e) => {
                    e.0 = expires;
                    &mut e.1
                }
                None => {
                    if !score.insert(key, expires, Bucket::full(at)) {
                        // No room for the source's element: this draw fails open.
                        self.counters.score_full += 1;
                        continue;
                    }
                    &mut score.live_mut(&key, at).expect("just inserted").1
                }
            };
            if !paid {
                bucket.paid_for(pair.1, pair.2);
                paid = true;
            }
            if bucket.over(at) {
                return self.hold(at, p, src, pair, false);
            }
        }
        let tokens_left = score
            .live_mut(&key, at)
            .map_or(0, |(_, b)| b.tokens / TOKEN_US);
        Outcome::Counted {
            weight,
            tokens_left,
        }
    }

    /// The chain `hold`: the source into the hold set (one log message), this probe dropped;
    /// with the set full, the probe dropped and its pair deleted.
    fn hold(
        &mut self,
        at: Timestamp,
        p: &Packet,
        src: IpAddr,
        pair: PairKey,
        tripwire: bool,
    ) -> Outcome {
        let until = at.saturating_add(self.hold_for);
        let (holds, pairs, score) = if src.is_ipv4() {
            (&mut self.hold4, &mut self.pairs4, &self.score4)
        } else {
            (&mut self.hold6, &mut self.pairs6, &self.score6)
        };
        if !holds.insert(src, until, ()) {
            self.counters.hold_full += 1;
            pairs.remove(&pair);
            return Outcome::HoldFull;
        }
        self.counters.holds += 1;
        self.counters.tripwire_holds += u64::from(tripwire);
        let bucket = score.map.get(&pair.0).filter(|(expires, _)| *expires > at);
        let (mut ports, mut counted) =
            bucket.map_or((Vec::new(), 0), |(_, b)| (b.latest(), b.counted));
        if tripwire {
            if ports.len() == PORTS_KEPT {
                ports.remove(0);
            }
            ports.push((pair.1, pair.2));
            counted = counted.saturating_add(1);
        }
        Outcome::Held(Hold {
            at,
            until,
            probe: KernelHold {
                source: src,
                proto: pair.1,
                port: pair.2,
                tcp_flags: p.tcp_flags.map(|f| f.bits().to_le_bytes()[0]),
                ifindex: p.ifindex,
            },
            counted_as: pair.0,
            tripwire,
            ports,
            counted,
        })
    }

    fn is_local(&self, addr: IpAddr) -> bool {
        self.locals.contains(&addr.to_canonical())
    }

    fn listening(&self, proto: Proto, port: u16) -> bool {
        match proto {
            Proto::Tcp => self.listening_tcp.contains(port),
            Proto::Udp => self.listening_udp.contains(port),
            // The first line sees TCP and UDP only.
            Proto::Sctp | Proto::Ip => false,
        }
    }

    fn tripwire(&self, proto: Proto, port: u16) -> bool {
        match proto {
            Proto::Tcp => self.tripwire_tcp.contains(port),
            Proto::Udp => self.tripwire_udp.contains(port),
            Proto::Sctp | Proto::Ip => false,
        }
    }

    /// Reclaims expired elements once a second of capture time, as the kernel's set GC does.
    fn sweep(&mut self, at: Timestamp) {
        if at < self.next_sweep {
            return;
        }
        self.next_sweep = at.saturating_add(SWEEP_EVERY);
        self.pairs4.sweep(at);
        self.pairs6.sweep(at);
        self.score4.sweep(at);
        self.score6.sweep(at);
        self.hold4.sweep(at);
        self.hold6.sweep(at);
        self.spare.nets.sweep(at);
        self.blocked.nets.sweep(at);
    }
}

#[cfg(test)]
mod tests;
