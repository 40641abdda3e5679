//! Tool fingerprints: which scanner a packet's header says sent it, from its fields alone
//! (flags, window, TCP options, IP ID, payload). **Pure**, no allocation, a few comparisons a
//! packet.
//!
//! Each rule is a probe shape a tool writes into every packet it crafts, read from the tool's
//! own documentation or source and checked against captures of the real tool made in the lab
//! (`tests/data/`, Debian's nmap 7.93, masscan 1.3.2 and zmap 2.1.1):
//!
//! - **nmap OS detection** (nmap.org/book/osdetect-methods.html, "Probes Sent"; `osscan2.cc`,
//!   and `FPEngine.cc` for IPv6, which sends the same TCP probes): the six `SEQ` SYNs (windows
//!   1, 63, 4, 4, 16, 512, each with its own option order), the `ECN` SYN (ECE+CWR, window 3),
//!   `T2`–`T7` (flag sets null, SYN+FIN+PSH+URG, ACK, SYN, ACK, FIN+PSH+URG; windows 128, 256,
//!   1024, 31337, 32768, 65535; WScale 10 — 15 for T7 —, MSS 265, a timestamp of 0xFFFFFFFF
//!   and SACK permitted), and `U1` (a UDP datagram of 300 `C`s; IP ID 0x1042 over IPv4). Every
//!   TCP probe carries the timestamp value 0xFFFFFFFF with an echo of 0, and a window no stack
//!   offers in a SYN: the rule asks for the flags, the window and the exact option bytes.
//!   These are the only marks that make a detection on their own ([`decisive`]): they go to
//!   the open port, where no trap is.
//! - **nmap port scan** (`scan_engine_raw.cc`: raw probes with a window of 1024; SYN probes
//!   with the lone option MSS 1460, the others with none; no DF).
//! - **masscan** (`templ-pkt.c`: every SYN's IP ID is the low 16 bits of
//!   `target address ^ target port ^ sequence number`; no DF).
//! - **zmap** (`probe_modules/packet.c`: IP ID 54321 on every probe, TCP window 65535; no DF).
//!
//! The last three label a port scan that the trap ports detect anyway: one packet shape is all
//! such a tool sends, so a mark of theirs adds the tool's name to a detection and never makes
//! one. Nothing here matches an ordinary client's SYN: Linux (window 64240/64800 with
//! MSS, SACK, timestamp, NOP, WScale), Windows (64240 or 65535, MSS, NOP, WScale, NOP, NOP,
//! SACK), macOS and iOS (65535, MSS, NOP, WScale, NOP, NOP, timestamp, SACK, EOL) and Android
//! (Linux's) all set DF and send several options with a real timestamp (p0f 3's `p0f.fp`
//! signatures for them; the tests hold one vector of each).

use std::net::IpAddr;
use std::time::Duration;

use super::{ScanKinds, Signature};
use crate::time::Timestamp;
use crate::wire::{Fields, Packet, ProbeKind, TcpFlags};

/// A tool whose probes are recognised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    /// nmap's OS detection (`-O`).
    NmapOs,
    /// nmap's raw port scans (`-sS`, `-sF`, `-sN`, `-sX`, `-sM`).
    NmapScan,
    /// masscan.
    Masscan,
    /// zmap.
    Zmap,
}

impl Tool {
    /// The tool as an administrator reads it: `nmap OS detection`.
    pub fn name(self) -> &'static str {
        match self {
            Tool::NmapOs => "nmap OS detection",
            Tool::NmapScan => "nmap port scan",
            Tool::Masscan => "masscan",
            Tool::Zmap => "zmap",
        }
    }
}

/// How many distinct nmap OS-detection probes from one source make a detection: three. nmap
/// sends its six SEQ probes 100 ms apart before anything else, so the third comes 200 ms into
/// its first probe set; no client sends even one of them, and three forged packets buy no more
/// than a tripwire's one (the responder counts such a block as weak evidence).
pub const OS_PROBES: u32 = 3;

/// How many marked packets from one source a tool's name needs before it is attached to a
/// detection, when its marks are not decisive (masscan's, zmap's, nmap's port scans): three.
/// The responder admits a detection with a signature without `[respond] min-ports` (3 by
/// default), so a name must cost a forger as many packets as the ports it spares him.
pub const LABEL_PACKETS: u16 = 3;

/// The probes recognised, one bit each in [`Marks`]: the tool, and the probe's name.
const PROBES: [(Tool, &str); 22] = [
    (Tool::NmapOs, "SEQ1"),
    (Tool::NmapOs, "SEQ2"),
    (Tool::NmapOs, "SEQ3"),
    (Tool::NmapOs, "SEQ4"),
    (Tool::NmapOs, "SEQ5"),
    (Tool::NmapOs, "SEQ6"),
    (Tool::NmapOs, "ECN"),
    (Tool::NmapOs, "T2"),
    (Tool::NmapOs, "T3"),
    (Tool::NmapOs, "T4"),
    (Tool::NmapOs, "T5"),
    (Tool::NmapOs, "T6"),
    (Tool::NmapOs, "T7"),
    (Tool::NmapOs, "U1"),
    (Tool::NmapScan, "SYN"),
    (Tool::NmapScan, "FIN"),
    (Tool::NmapScan, "NULL"),
    (Tool::NmapScan, "XMAS"),
    (Tool::NmapScan, "Maimon"),
    (Tool::Masscan, "SYN"),
    (Tool::Zmap, "SYN"),
    (Tool::Zmap, "UDP"),
];

/// One recognised probe: an index into the table of probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark(u8);

impl Mark {
    const U1: Mark = Mark(13);

    /// The mark of the table's `index`th probe, if there is one (for tests and tools that
    /// list them).
    pub fn from_index(index: u8) -> Option<Mark> {
        (usize::from(index) < PROBES.len()).then_some(Mark(index))
    }

    /// The tool it belongs to.
    pub fn tool(self) -> Tool {
        PROBES[usize::from(self.0)].0
    }

    /// The probe's name (`T2`, `SYN`).
    pub fn probe(self) -> &'static str {
        PROBES[usize::from(self.0)].1
    }

    /// Whether marks of its tool make a detection on their own (nmap OS detection).
    pub fn decisive(self) -> bool {
        self.tool() == Tool::NmapOs
    }
}

/// A set of marks, one bit each: fixed size, what a source's state keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Marks(u32);

impl Marks {
    /// Adds `mark`.
    pub fn insert(&mut self, mark: Mark) {
        self.0 |= 1 << mark.0;
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The marks in table order.
    fn iter(self) -> impl Iterator<Item = Mark> {
        (0..PROBES.len())
            .filter(move |i| self.0 & (1 << i) != 0)
            .filter_map(|i| u8::try_from(i).ok().map(Mark))
    }

    /// How many distinct probes of `tool` the set holds.
    pub fn count(self, tool: Tool) -> u32 {
        self.iter().map(|m| u32::from(m.tool() == tool)).sum()
    }

    /// Whether the set makes a detection on its own: [`OS_PROBES`] distinct nmap OS probes.
    pub fn decisive(self) -> bool {
        self.count(Tool::NmapOs) >= OS_PROBES
    }

    /// The signature the set shows: nmap OS detection if any of its probes is there, else the
    /// tool with the most distinct probes (the first in the table on a tie), with its probes
    /// in table order. `None` for an empty set.
    pub fn signature(self) -> Option<Signature> {
        let mut best: Option<(Tool, u32)> = None;
        for tool in [Tool::NmapOs, Tool::NmapScan, Tool::Masscan, Tool::Zmap] {
            let count = self.count(tool);
            let better = best.is_none_or(|(t, n)| count > n && t != Tool::NmapOs);
            if count > 0 && better {
                best = Some((tool, count));
            }
        }
        let (tool, _) = best?;
        Some(Signature {
            tool: tool.name(),
            probes: self
                .iter()
                .filter(|m| m.tool() == tool)
                .map(Mark::probe)
                .collect(),
        })
    }
}

/// Whether a detection's signature stands on its own (a decisive set of marks): then it needs
/// no score and no trap port.
pub fn decisive(signature: &Signature) -> bool {
    signature.tool == Tool::NmapOs.name() && signature.probes.len() >= OS_PROBES as usize
}

/// What a source's marks are kept as in the detector: the set, the scan kinds of the marked
/// packets, and when the first of them came; they are forgotten a window after it. 32 bytes.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Seen {
    pub(super) marks: Marks,
    kinds: ScanKinds,
    /// Marked packets in the window (saturating).
    packets: u16,
    pub(super) since: Timestamp,
    until: Timestamp,
}

impl Seen {
    /// Adds `mark` (a packet of `kind`, if it is a probe) at `at`; marks older than `window`
    /// are forgotten first.
    pub(super) fn insert(
        &mut self,
        mark: Mark,
        kind: Option<ProbeKind>,
        at: Timestamp,
        window: Duration,
    ) {
        if self.marks.is_empty() || at > self.until {
            *self = Seen {
                since: at,
                until: at.saturating_add(window),
                ..Seen::default()
            };
        }
        self.marks.insert(mark);
        self.packets = self.packets.saturating_add(1);
        if let Some(kind) = kind {
            self.kinds.insert(ScanKinds::of(kind));
        }
    }

    /// The scan kinds of the marked packets still in the window at `at`.
    pub(super) fn kinds_at(&self, at: Timestamp) -> ScanKinds {
        if at > self.until {
            ScanKinds::default()
        } else {
            self.kinds
        }
    }

    /// The signature of the marks still in the window at `at`: decisive marks, or at least
    /// [`LABEL_PACKETS`] marked packets.
    pub(super) fn signature_at(&self, at: Timestamp) -> Option<Signature> {
        let enough = self.marks.decisive() || self.packets >= LABEL_PACKETS;
        if at > self.until || !enough {
            None
        } else {
            self.marks.signature()
        }
    }
}

/// The options of T2–T6: WScale 10, NOP, MSS 265, timestamp, SACK permitted.
const T_OPTIONS: [u8; 20] = [
    3, 3, 10, 1, 2, 4, 1, 9, 8, 10, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 4, 2,
];
/// T7's: the same with WScale 15.
const T7_OPTIONS: [u8; 20] = [
    3, 3, 15, 1, 2, 4, 1, 9, 8, 10, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 4, 2,
];

/// The nmap OS-detection TCP probes: (flags, without NS; window; options; mark).
const NMAP_OS_TCP: [(u16, u16, &[u8], Mark); 13] = {
    const F: u16 = TcpFlags::FIN.bits();
    const S: u16 = TcpFlags::SYN.bits();
    const P: u16 = TcpFlags::PSH.bits();
    const A: u16 = TcpFlags::ACK.bits();
    const U: u16 = TcpFlags::URG.bits();
    const E: u16 = TcpFlags::ECE.bits();
    const C: u16 = TcpFlags::CWR.bits();
    [
        (
            S,
            1,
            &[
                3, 3, 10, 1, 2, 4, 5, 0xb4, 8, 10, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 4, 2,
            ],
            Mark(0),
        ),
        (
            S,
            63,
            &[
                2, 4, 5, 0x78, 3, 3, 0, 4, 2, 8, 10, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0,
            ],
            Mark(1),
        ),
        (
            S,
            4,
            &[
                8, 10, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1, 1, 3, 3, 5, 1, 2, 4, 2, 0x80,
            ],
            Mark(2),
        ),
        (
            S,
            4,
            &[4, 2, 8, 10, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 3, 3, 10, 0],
            Mark(3),
        ),
        (
            S,
            16,
            &[
                2, 4, 2, 0x18, 4, 2, 8, 10, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 3, 3, 10, 0,
            ],
            Mark(4),
        ),
        (
            S,
            512,
            &[2, 4, 1, 9, 4, 2, 8, 10, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0],
            Mark(5),
        ),
        (
            S | E | C,
            3,
            &[3, 3, 10, 1, 2, 4, 5, 0xb4, 4, 2, 1, 1],
            Mark(6),
        ),
        (0, 128, &T_OPTIONS, Mark(7)),
        (S | F | P | U, 256, &T_OPTIONS, Mark(8)),
        (A, 1024, &T_OPTIONS, Mark(9)),
        (S, 31337, &T_OPTIONS, Mark(10)),
        (A, 32768, &T_OPTIONS, Mark(11)),
        (F | P | U, 65535, &T7_OPTIONS, Mark(12)),
    ]
};

/// Whether any rule could match `p`, from its flags and window alone (issue 29): `false` is
/// certain ([`recognise`] then finds nothing, whatever the rest of the header), so that a
/// conversation's packets are judged without their other fields read from the frame. Every
/// packet but TCP, and every SYN, may match; any other TCP segment only with a window one of
/// nmap's probes uses with its flags.
pub fn may_match(p: &Packet) -> bool {
    let Some(flags) = p.tcp_flags else {
        return true;
    };
    let bits = flags.bits() & 0xff;
    flags.bits() & 0x3f == TcpFlags::SYN.bits()
        || (p.window == 1024 && p.probe_kind().is_some())
        || NMAP_OS_TCP
            .iter()
            .any(|&(f, window, ..)| f == bits && window == p.window)
}

/// The probe `p` looks like, if its header (its other fields `s`) is one of a known tool's
/// (see the module's documentation for each rule and its source). Each rule asks first for
/// what [`Packet`] holds (flags, window), then for the fewest other fields it needs: read from
/// the frame ([`crate::wire::Lazy::fields`]), an ordinary SYN costs its IP ID, DF bit and
/// sequence number, not a copy of its whole header.
pub fn recognise(p: &Packet, s: &impl Fields) -> Option<Mark> {
    match p.tcp_flags {
        Some(flags) => nmap_os_tcp(p, s, flags)
            .or_else(|| zmap(p, s))
            .or_else(|| masscan(p, s, flags))
            .or_else(|| nmap_scan(p, s)),
        None => nmap_os_udp(p, s).or_else(|| zmap(p, s)),
    }
}

/// nmap's SEQ, ECN and T2–T7 probes: flags, window and option bytes exactly as nmap writes
/// them. The options are read only when the flags and window are one of the probes'.
fn nmap_os_tcp(p: &Packet, s: &impl Fields, flags: TcpFlags) -> Option<Mark> {
    let bits = flags.bits() & 0xff;
    let mut probes = NMAP_OS_TCP
        .iter()
        .filter(|&&(f, window, ..)| f == bits && window == p.window)
        .peekable();
    probes.peek()?;
    let options = s.options();
    probes
        .find(|(.., opts, _)| *opts == options)
        .map(|&(.., mark)| mark)
}

/// nmap's U1: 300 bytes of `C` to a closed UDP port; over IPv4 its IP ID is 0x1042.
fn nmap_os_udp(p: &Packet, s: &impl Fields) -> Option<Mark> {
    if s.payload_len() != 300 {
        return None;
    }
    let head = s.head();
    let v4_id = !p.dst.is_ipv4() || s.ip_id() == 0x1042;
    (!head.is_empty() && head.iter().all(|&b| b == b'C') && v4_id).then_some(Mark::U1)
}

/// zmap: IP ID 54321 and no DF over IPv4; a TCP probe is a SYN with window 65535.
fn zmap(p: &Packet, s: &impl Fields) -> Option<Mark> {
    if !p.dst.is_ipv4() || s.ip_id() != 54321 || s.dont_fragment() {
        return None;
    }
    match p.tcp_flags {
        Some(flags) => {
            (flags.bits() & 0x3f == TcpFlags::SYN.bits() && p.window == 65535).then_some(Mark(20))
        }
        None => Some(Mark(21)),
    }
}

/// masscan: a SYN without DF whose IP ID is `target address ^ target port ^ sequence number`
/// (low 16 bits), over IPv4.
fn masscan(p: &Packet, s: &impl Fields, flags: TcpFlags) -> Option<Mark> {
    let IpAddr::V4(dst) = p.dst else {
        return None;
    };
    if flags.bits() & 0x3f != TcpFlags::SYN.bits() {
        return None;
    }
    let id = (dst.to_bits() ^ u32::from(p.dst_port) ^ s.seq()) & 0xffff;
    (u32::from(s.ip_id()) == id && !s.dont_fragment()).then_some(Mark(19))
}

/// nmap's raw port-scan probes: window 1024, no DF (over IPv4); a SYN with the lone option MSS
/// 1460, the FIN, NULL, XMAS and Maimon probes with no option.
fn nmap_scan(p: &Packet, s: &impl Fields) -> Option<Mark> {
    if p.window != 1024 || s.dont_fragment() {
        return None;
    }
    let options = s.options();
    let mark = match p.probe_kind()? {
        ProbeKind::Syn if options == [2, 4, 5, 0xb4] => 14,
        ProbeKind::Fin if options.is_empty() => 15,
        ProbeKind::Null if options.is_empty() => 16,
        ProbeKind::Xmas if options.is_empty() => 17,
        ProbeKind::Maimon if options.is_empty() => 18,
        _ => return None,
    };
    Some(Mark(mark))
}

#[cfg(test)]
mod tests;
