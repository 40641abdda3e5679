//! IP fragment reassembly: IPv4 fragments and IPv6 fragment headers in, whole datagrams out,
//! read into the same [`Packet`] as any other frame. **Pure**, fixed size: every slot is
//! allocated when the [`Reassembler`] is made, none per fragment.
//!
//! A scanner that splits its probes into 8- or 16-byte fragments (`nmap -f`, `--mtu 16`)
//! hides their TCP header from a reader of single frames, while the victim's kernel
//! reassembles them and answers. So the pipeline sees what the kernel reassembles, modelled on
//! Linux (`net/ipv4/ip_fragment.c` `ip_frag_queue`, `net/ipv6/reassembly.c` `ip6_frag_queue`,
//! `net/ipv4/inet_fragment.c` `inet_frag_queue_insert`, as of Linux 6.x):
//!
//! - **Key**: source, destination, identification and protocol (IPv4, 16-bit ID); source,
//!   destination and the 32-bit identification (IPv6, whose key has no protocol); and, ours,
//!   the interface the capture says each fragment came in on (see `Key`).
//! - **Timeout**: from the datagram's first fragment, never extended by later ones: 30 s for
//!   IPv4 (`ipfrag_time`), 60 s for IPv6 (`ip6frag_time`).
//! - **Ends**: a last fragment (no MF) ending before bytes already seen, or a second last
//!   fragment with another end, or bytes beyond a known end, or an empty fragment: the whole
//!   datagram is discarded. A non-last fragment whose length is not a multiple of 8 is cut to
//!   one (IPv4) or discards the datagram (IPv6).
//! - **Overlaps** discard the whole datagram (RFC 5722, which Linux applies to IPv4 too). A
//!   fragment wholly inside bytes already held (a run of contiguous fragments) is a
//!   *duplicate*: dropped, the datagram kept — whatever its bytes say (the first copy wins).
//! - **IPv6 first fragments** that do not hold the transport header's first bytes (20 for
//!   TCP, 8 for UDP; RFC 8200 §4.5, RFC 7112) are dropped by the kernel, so here too.
//! - **IPv4 header checksums** are checked fragment by fragment (the kernel drops a bad one
//!   before reassembly); a datagram longer than 65,535 bytes is discarded.
//! - **Bounds** (ours, in the spirit of `ipfrag_high_thresh`, which counts bytes): at most
//!   [`Limits::datagrams`] datagrams in progress in all, [`Limits::per_prefix`] per source
//!   prefix (IPv4 /24, IPv6 /48), [`Limits::fragments`] fragments per datagram, and
//!   [`KEEP`] bytes kept of each. A new datagram past a bound evicts the oldest one of its
//!   own prefix when the prefix is full, else the oldest of all (the kernel refuses new ones
//!   when full; evicting keeps a flood from blinding the reader for 30 s, at the cost of
//!   datagrams that wait longest, which a scanner's back-to-back fragments never do).
//!
//! Only the first [`KEEP`] bytes of a datagram are kept (its transport header and the first
//! bytes the pipeline reads), but a datagram is judged only once every byte of it has arrived
//! (the kernel delivers nothing before): a forger's lone first fragment is not a probe. Its
//! transport checksum is summed fragment by fragment as they arrive (fragment offsets are
//! multiples of 8, so the sums add up), and verified at the end: [`Integrity::Valid`] or
//! [`Integrity::Bad`] when every fragment was captured whole; [`Integrity::Unverified`] when
//! the capture's snap length cut one (or, on IPv6, an extension header precedes the transport
//! header), as for any packet cut short. Not modelled: `ipfrag_max_dist`, the ECN mix check,
//! the routing header's final destination, and the unfragmentable IPv6 extension headers
//! (dropped from the datagram read).
//!
//! Evidence of its own (RFC 1858, RFC 3128): a TCP datagram whose first fragment does not hold
//! its whole TCP header (a *tiny* fragment), and overlapping fragments. The reassembler says
//! which ([`Note`]); the pipeline weighs them.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use super::checksum::{self, Sum};
use super::{Direction, Full, Integrity, LinkType, Metadata, Packet, Skip};
use crate::time::Timestamp;

/// How many bytes of each datagram's fragmentable part are kept: the transport header (60
/// bytes at most), IPv6 extension headers before it, and the first payload bytes read.
pub const KEEP: usize = 256;
/// The longest IPv4 header.
const MAX_IP_HEADER: usize = 60;
/// The longest datagram IP allows.
const MAX_DATAGRAM: u32 = 65_535;
/// IPv6 extension headers walked to find the fragment header, at most.
const MAX_EXTENSIONS: usize = 8;
/// The most fragments a datagram may have here (the bound of [`Limits::fragments`]).
pub const MAX_FRAGMENTS: usize = 64;

/// The reassembler's bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Datagrams in progress, in all.
    pub datagrams: usize,
    /// Datagrams in progress from one source prefix (IPv4 /24, IPv6 /48).
    pub per_prefix: usize,
    /// Fragments of one datagram (at most [`MAX_FRAGMENTS`]): a 64 KiB datagram over a
    /// 1,280-byte link has 54.
    pub fragments: usize,
    /// How long an IPv4 datagram may take to arrive whole (Linux's `ipfrag_time`).
    pub timeout_v4: Duration,
    /// How long an IPv6 datagram may take to arrive whole (Linux's `ip6frag_time`).
    pub timeout_v6: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            datagrams: 256,
            per_prefix: 16,
            fragments: MAX_FRAGMENTS,
            timeout_v4: Duration::from_secs(30),
            timeout_v6: Duration::from_secs(60),
        }
    }
}

/// What the reassembler did with fragments since it was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    /// Datagrams reassembled whole.
    pub reassembled: u64,
    /// Datagrams dropped because they did not arrive whole in time.
    pub timed_out: u64,
    /// Datagrams discarded because two of their fragments overlapped.
    pub overlapping: u64,
    /// Fragments dropped as duplicates of bytes already held.
    pub duplicates: u64,
    /// Datagrams dropped for a bound: evicted by a newer one, or with too many fragments.
    pub dropped: u64,
    /// TCP datagrams whose first fragment cut the TCP header: reassembled (IPv4) or dropped
    /// with that fragment (IPv6, as the kernel does).
    pub tiny: u64,
    /// Fragments or datagrams the kernel drops as malformed (ends that disagree, an empty
    /// fragment, a length that is not a multiple of 8, too long, a bad IPv4 header checksum).
    pub malformed: u64,
}

/// What a reassembled datagram's fragments said about their sender.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Note {
    /// Its first fragment did not hold the whole TCP header (RFC 1858 §3.1).
    pub tiny: bool,
    /// Two fragments overlapped: the datagram was discarded (RFC 5722), and the packet is
    /// what its first fragment said.
    pub overlap: bool,
}

/// What became of a fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Kept: its datagram is not whole yet.
    Pending,
    /// Its datagram is whole: the packet read from it, and what its fragments said.
    Complete(Full, Note),
    /// It overlapped another: its datagram was discarded. The packet its first fragment made
    /// when that had arrived and held the transport header.
    Overlap(Option<Full>),
    /// Dropped (with its datagram or alone), or its datagram could not be read.
    Dropped,
}

/// One IP fragment, read from a captured frame: where its bytes go in its datagram.
#[derive(Clone, Copy, Debug)]
pub struct Fragment<'a> {
    /// IPv4: the whole header; IPv6: the fixed 40-byte header.
    header: &'a [u8],
    src: IpAddr,
    dst: IpAddr,
    id: u32,
    /// IPv4: the protocol; IPv6: the fragment header's next header.
    proto: u8,
    /// Where its bytes go in the fragmentable part, in bytes.
    offset: u32,
    /// More fragments follow.
    more: bool,
    /// Its length, as its IP header declares it.
    len: u32,
    /// Its bytes, as far as the capture holds them (at most `len`).
    data: &'a [u8],
    /// IPv4: its header checksum holds (always true for IPv6).
    header_ok: bool,
    /// Which way it went, as the capture said.
    direction: Direction,
    /// The interface, when the capture said.
    ifindex: Option<u32>,
}

impl Fragment<'_> {
    /// Its source address.
    pub fn src(&self) -> IpAddr {
        self.src
    }

    /// Its destination address.
    pub fn dst(&self) -> IpAddr {
        self.dst
    }

    /// Which way it went, as the capture said.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    fn is_v6(&self) -> bool {
        self.src.is_ipv6()
    }
}

/// Reads the fragment in `frame` (one [`super::parse_with`] found to be [`Skip::Fragment`]).
///
/// # Errors
///
/// The [`Skip`] reason when its headers are cut short or invalid, or it is no fragment.
pub fn fragment_of(link: LinkType, frame: &[u8], seen: Metadata) -> Result<Fragment<'_>, Skip> {
    let layer = super::ip_layer(link, frame, seen)?;
    let ip = layer.ip;
    let mut f = match ip.first().map(|b| b >> 4) {
        Some(4) => v4_fragment(ip)?,
        Some(6) => v6_fragment(ip)?,
        Some(_) => return Err(Skip::Malformed),
        None => return Err(Skip::Truncated),
    };
    // Shorter than its header says, with nothing cut by the capture: the kernel drops it.
    if seen.whole && f.data.len() < usize_of(f.len) {
        return Err(Skip::Truncated);
    }
    f.direction = layer.direction;
    f.ifindex = layer.ifindex;
    Ok(f)
}

fn usize_of(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn word(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// An IPv4 fragment: header, offset, MF, and its bytes up to its total length.
fn v4_fragment(ip: &[u8]) -> Result<Fragment<'_>, Skip> {
    let ihl = usize::from(ip.first().ok_or(Skip::Truncated)? & 0x0f) * 4;
    if ihl < 20 {
        return Err(Skip::Malformed);
    }
    let header = ip.get(..ihl).ok_or(Skip::Truncated)?;
    let total = usize::from(word(ip, 2).ok_or(Skip::Truncated)?);
    if total < ihl {
        return Err(Skip::Malformed);
    }
    // Options the kernel cannot walk: it drops the fragment before reassembly.
    if !super::ipv4_options_parse(&header[20..]) {
        return Err(Skip::Malformed);
    }
    let flags = word(ip, 6).ok_or(Skip::Truncated)?;
    let data = &ip[ihl..ip.len().min(total)];
    Ok(Fragment {
        header,
        src: IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15])),
        dst: IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19])),
        id: u32::from(word(ip, 4).ok_or(Skip::Truncated)?),
        proto: ip[9],
        offset: u32::from(flags & 0x1fff) * 8,
        more: flags & 0x2000 != 0,
        len: u32::try_from(total - ihl).map_err(|_| Skip::Malformed)?,
        data,
        header_ok: checksum::ipv4_header_ok(header),
        direction: Direction::Unknown,
        ifindex: None,
    })
}

/// An IPv6 fragment: the extension headers before the fragment header walked (hop-by-hop,
/// routing, destination options), then the fragment header read.
fn v6_fragment(ip: &[u8]) -> Result<Fragment<'_>, Skip> {
    let header = ip.get(..40).ok_or(Skip::Truncated)?;
    let end = 40 + usize::from(word(ip, 4).ok_or(Skip::Truncated)?);
    let mut next = ip[6];
    let mut at = 40;
    for _ in 0..MAX_EXTENSIONS {
        match next {
            0 | 43 | 60 => {
                let (Some(&n), Some(&len)) = (ip.get(at), ip.get(at + 1)) else {
                    return Err(Skip::Truncated);
                };
                next = n;
                at += (usize::from(len) + 1) * 8;
            }
            44 => {
                let frag = ip.get(at..at + 8).ok_or(Skip::Truncated)?;
                let off = u16::from_be_bytes([frag[2], frag[3]]);
                let start = at + 8;
                if end < start {
                    return Err(Skip::Malformed);
                }
                let src: [u8; 16] = ip[8..24].try_into().map_err(|_| Skip::Truncated)?;
                let dst: [u8; 16] = ip[24..40].try_into().map_err(|_| Skip::Truncated)?;
                return Ok(Fragment {
                    header,
                    src: IpAddr::V6(Ipv6Addr::from(src)),
                    dst: IpAddr::V6(Ipv6Addr::from(dst)),
                    id: u32::from_be_bytes([frag[4], frag[5], frag[6], frag[7]]),
                    proto: frag[0],
                    offset: u32::from(off & 0xfff8),
                    more: off & 1 != 0,
                    len: u32::try_from(end - start).map_err(|_| Skip::Malformed)?,
                    data: ip.get(start..ip.len().min(end)).unwrap_or_default(),
                    header_ok: true,
                    direction: Direction::Unknown,
                    ifindex: None,
                });
            }
            _ => return Err(Skip::OtherProtocol),
        }
    }
    Err(Skip::Malformed)
}

/// A datagram's identity (Linux's `frag_v4_compare_key`, `frag_v6_compare_key`), and the
/// interface its fragments came in on: the kernel checks each fragment's reverse path before
/// reassembly, so with `rp_filter` strict, fragments of one datagram that came over two links
/// never make it whole; here they never do (a forger on another link can neither complete
/// nor spoil a datagram that came over the scanner's, and the reverse-path check of the
/// datagram is that of every fragment).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    src: IpAddr,
    dst: IpAddr,
    id: u32,
    /// IPv4's protocol; 0 for IPv6, whose key has none.
    proto: u8,
    ifindex: Option<u32>,
}

/// A source prefix: IPv4 /24, IPv6 /48, as the bits of an IPv6 address.
fn prefix_of(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_bits() & 0xffff_ff00) | (1 << 127),
        IpAddr::V6(v6) => v6.to_bits() & !((1u128 << 80) - 1),
    }
}

/// A fragment's place: kept up to its end, or gone with what became of it.
#[derive(Debug)]
enum Placed {
    Keep(u32),
    Gone(Outcome),
}

/// Where a fragment went among those held.
#[derive(Debug, PartialEq, Eq)]
enum Insert {
    Ok,
    Duplicate,
    Overlap,
}

/// One datagram in progress.
#[derive(Clone, Debug)]
struct Slot {
    key: Key,
    prefix: u128,
    born: Timestamp,
    /// The how-manieth datagram it is since the reassembler was made: the oldest is the one
    /// begun first, also among datagrams born in the same capture microsecond (one burst of
    /// the kernel's), where comparing `born` picked the first slot, often the newest.
    order: u64,
    direction: Direction,
    ifindex: Option<u32>,
    /// The first fragment's IP header.
    header: [u8; MAX_IP_HEADER],
    header_len: u8,
    /// The first [`KEEP`] bytes of the fragmentable part.
    kept: [u8; KEEP],
    /// The first byte of the fragmentable part the capture did not hold (within the datagram).
    cut_at: u32,
    /// The sum of every fragment's bytes, while each was captured whole (`summable`).
    sum: Sum,
    summable: bool,
    /// Runs of contiguous fragments, as Linux keeps them: (start, end), sorted.
    runs: [(u32, u32); MAX_FRAGMENTS],
    n_runs: u8,
    fragments: u8,
    /// The datagram's length as far as known, and whether its last fragment came.
    len: u32,
    last_in: bool,
    first_in: bool,
    /// Bytes held (Linux's `meat`).
    meat: u32,
    /// The first fragment's length.
    first_len: u32,
    /// The transport protocol (IPv6: the first fragment's fragment header's next header).
    proto: u8,
    /// In use (in the index).
    used: bool,
}

impl Slot {
    fn new() -> Self {
        Slot {
            key: Key {
                src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                id: 0,
                proto: 0,
                ifindex: None,
            },
            prefix: 0,
            born: Timestamp::ZERO,
            order: 0,
            direction: Direction::Unknown,
            ifindex: None,
            header: [0; MAX_IP_HEADER],
            header_len: 0,
            kept: [0; KEEP],
            cut_at: u32::MAX,
            sum: Sum::default(),
            summable: true,
            runs: [(0, 0); MAX_FRAGMENTS],
            n_runs: 0,
            fragments: 0,
            len: 0,
            last_in: false,
            first_in: false,
            meat: 0,
            first_len: 0,
            proto: 0,
            used: false,
        }
    }

    /// Starts afresh for `f`'s datagram.
    fn reset(&mut self, at: Timestamp, key: Key, f: &Fragment<'_>) {
        self.key = key;
        self.prefix = prefix_of(f.src);
        self.born = at;
        self.direction = f.direction;
        self.ifindex = f.ifindex;
        self.header_len = 0;
        self.cut_at = u32::MAX;
        self.sum = Sum::default();
        self.summable = true;
        self.n_runs = 0;
        self.fragments = 0;
        self.len = 0;
        self.last_in = false;
        self.first_in = false;
        self.meat = 0;
        self.first_len = 0;
        self.proto = f.proto;
        self.used = true;
    }

    /// `inet_frag_queue_insert`: appended to the last run, a run of its own, a duplicate
    /// (wholly inside one run), or an overlap.
    fn insert(&mut self, offset: u32, end: u32) -> Insert {
        let n = usize::from(self.n_runs);
        let runs = &mut self.runs[..n];
        let Some(&(_, last_end)) = runs.last() else {
            self.runs[0] = (offset, end);
            self.n_runs = 1;
            return Insert::Ok;
        };
        if last_end < end {
            if offset < last_end {
                return Insert::Overlap;
            }
            if offset == last_end {
                runs[n - 1].1 = end;
                return Insert::Ok;
            }
            return self.push_run(n, n, offset, end);
        }
        let mut at = n;
        for (i, &(start, run_end)) in runs.iter().enumerate() {
            if end <= start {
                at = i;
                break;
            }
            if offset >= run_end {
                continue;
            }
            return if offset >= start && end <= run_end {
                Insert::Duplicate
            } else {
                Insert::Overlap
            };
        }
        self.push_run(n, at, offset, end)
    }

    fn push_run(&mut self, n: usize, at: usize, offset: u32, end: u32) -> Insert {
        // The caller bounds fragments, and so runs, below MAX_FRAGMENTS.
        if n >= MAX_FRAGMENTS {
            return Insert::Overlap;
        }
        self.runs.copy_within(at..n, at + 1);
        self.runs[at] = (offset, end);
        self.n_runs += 1;
        Insert::Ok
    }

    /// Keeps `f`'s bytes (those within [`KEEP`]) and adds them to the sum.
    fn keep(&mut self, f: &Fragment<'_>, end: u32) {
        let want = usize_of(end - f.offset);
        let data = &f.data[..f.data.len().min(want)];
        let start = usize_of(f.offset);
        if start < KEEP {
            let n = data.len().min(KEEP - start);
            self.kept[start..start + n].copy_from_slice(&data[..n]);
        }
        if data.len() < want {
            self.summable = false;
            let cut = f.offset + u32::try_from(data.len()).unwrap_or(0);
            self.cut_at = self.cut_at.min(cut);
        } else {
            self.sum = self.sum.join(Sum::default().add(data));
        }
        if f.offset == 0 {
            let n = f.header.len().min(MAX_IP_HEADER);
            self.header[..n].copy_from_slice(&f.header[..n]);
            self.header_len = u8::try_from(n).unwrap_or(0);
            self.first_in = true;
            self.first_len = end;
            self.proto = f.proto;
        }
    }

    /// The datagram's bytes as a reader of frames takes them: its first fragment's IP header
    /// (IPv4: its length the datagram's, no MF, no offset, the checksum made again; IPv6:
    /// the fixed header, its next header the fragment header's, its payload length the
    /// datagram's), then the first `usable` bytes, into `out`; how many.
    fn datagram(&self, len: u32, usable: usize, out: &mut [u8; MAX_IP_HEADER + KEEP]) -> usize {
        let hl = usize::from(self.header_len);
        out[..hl].copy_from_slice(&self.header[..hl]);
        if self.key.src.is_ipv4() {
            let total = u16::try_from(len + u32::try_from(hl).unwrap_or(0)).unwrap_or(u16::MAX);
            out[2..4].copy_from_slice(&total.to_be_bytes());
            out[6] &= 0x40; // DF kept; MF and the offset cleared
            out[7] = 0;
            out[10] = 0;
            out[11] = 0;
            let sum = !Sum::default().add(&out[..hl]).fold();
            out[10..12].copy_from_slice(&sum.to_be_bytes());
        } else {
            let payload = u16::try_from(len).unwrap_or(u16::MAX);
            out[4..6].copy_from_slice(&payload.to_be_bytes());
            out[6] = self.proto;
        }
        out[hl..hl + usable].copy_from_slice(&self.kept[..usable]);
        hl + usable
    }

    /// The datagram's transport checksum, from the fragments' sums.
    fn integrity(&self, proto: u8) -> Integrity {
        if !self.summable || !matches!(proto, checksum::TCP | checksum::UDP) {
            return Integrity::Unverified;
        }
        let (src, dst, len) = (self.key.src, self.key.dst, self.len);
        if proto == checksum::UDP {
            let ulen = u32::from(u16::from_be_bytes([self.kept[4], self.kept[5]]));
            let field = u16::from_be_bytes([self.kept[6], self.kept[7]]);
            if field == 0 {
                return if src.is_ipv4() {
                    Integrity::Valid
                } else {
                    Integrity::Bad
                };
            }
            if ulen < 8 || ulen > len {
                return Integrity::Bad;
            }
            if ulen < len {
                return Integrity::Unverified;
            }
        }
        if checksum::pseudo(src, dst, proto, len).join(self.sum).fold() == 0xffff {
            Integrity::Valid
        } else {
            Integrity::Bad
        }
    }
}

/// The reassembler: a fixed table of datagrams in progress.
#[derive(Debug)]
pub struct Reassembler {
    limits: Limits,
    slots: Box<[Slot]>,
    free: Vec<usize>,
    index: HashMap<Key, usize, foldhash::fast::RandomState>,
    per_prefix: HashMap<u128, usize, foldhash::fast::RandomState>,
    counters: Counters,
    scratch: Box<[u8; MAX_IP_HEADER + KEEP]>,
    /// Datagrams begun so far (each slot's [`Slot::order`]).
    begun: u64,
}

impl Reassembler {
    /// A reassembler with room for `limits.datagrams` datagrams, all allocated now.
    pub fn new(limits: Limits) -> Self {
        let limits = Limits {
            datagrams: limits.datagrams.max(1),
            per_prefix: limits.per_prefix.max(1),
            fragments: limits.fragments.clamp(1, MAX_FRAGMENTS),
            ..limits
        };
        let n = limits.datagrams;
        Reassembler {
            slots: vec![Slot::new(); n].into_boxed_slice(),
            free: (0..n).rev().collect(),
            index: HashMap::with_capacity_and_hasher(n, foldhash::fast::RandomState::default()),
            per_prefix: HashMap::with_capacity_and_hasher(
                n,
                foldhash::fast::RandomState::default(),
            ),
            counters: Counters::default(),
            scratch: Box::new([0; MAX_IP_HEADER + KEEP]),
            begun: 0,
            limits,
        }
    }

    /// What it did so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Datagrams in progress now.
    pub fn in_progress(&self) -> usize {
        self.index.len()
    }

    /// Forgets the datagrams whose time ran out by `at`.
    pub fn expire(&mut self, at: Timestamp) {
        for i in 0..self.slots.len() {
            if self.slots[i].used && self.timed_out(i, at) {
                self.counters.timed_out += 1;
                self.release(i);
            }
        }
    }

    fn timed_out(&self, i: usize, at: Timestamp) -> bool {
        let s = &self.slots[i];
        let timeout = if s.key.src.is_ipv4() {
            self.limits.timeout_v4
        } else {
            self.limits.timeout_v6
        };
        at.saturating_since(s.born) >= timeout
    }

    fn release(&mut self, i: usize) {
        let s = &mut self.slots[i];
        if std::mem::take(&mut s.used) {
            self.index.remove(&s.key);
            if let Some(n) = self.per_prefix.get_mut(&s.prefix) {
                *n -= 1;
                if *n == 0 {
                    self.per_prefix.remove(&s.prefix);
                }
            }
            self.free.push(i);
        }
    }

    /// The slot of `f`'s datagram: the one in progress, or a new one (past a bound, in place
    /// of the oldest of its prefix, or of all).
    fn slot_for(&mut self, at: Timestamp, f: &Fragment<'_>) -> Option<usize> {
        let key = Key {
            src: f.src,
            dst: f.dst,
            id: f.id,
            proto: if f.is_v6() { 0 } else { f.proto },
            ifindex: f.ifindex,
        };
        if let Some(&i) = self.index.get(&key) {
            if !self.timed_out(i, at) {
                return Some(i);
            }
            self.counters.timed_out += 1;
            self.release(i);
        }
        let prefix = prefix_of(f.src);
        let full_prefix =
            self.per_prefix.get(&prefix).copied().unwrap_or(0) >= self.limits.per_prefix;
        if full_prefix || self.free.is_empty() {
            let oldest = (0..self.slots.len())
                .filter(|&i| self.slots[i].used)
                .filter(|&i| !full_prefix || self.slots[i].prefix == prefix)
                .min_by_key(|&i| self.slots[i].order);
            if let Some(i) = oldest {
                self.counters.dropped += 1;
                self.release(i);
            }
        }
        // A slot was freed above when none was (every slot in use is in the index).
        let i = self.free.pop()?;
        self.slots[i].reset(at, key, f);
        self.begun += 1;
        self.slots[i].order = self.begun;
        self.index.insert(key, i);
        *self.per_prefix.entry(prefix).or_default() += 1;
        Some(i)
    }

    /// Takes one fragment that arrived at `at`.
    pub fn insert(&mut self, at: Timestamp, f: &Fragment<'_>) -> Outcome {
        if !f.header_ok {
            self.counters.malformed += 1;
            return Outcome::Dropped;
        }
        let end = f.offset.saturating_add(f.len);
        if f.is_v6() && (end > MAX_DATAGRAM) {
            self.counters.malformed += 1;
            return Outcome::Dropped;
        }
        if f.is_v6() && f.offset == 0 && f.len < transport_min(f.proto) {
            // RFC 8200 §4.5: the kernel drops this fragment (`ipv6frag_thdr_truncated`).
            self.counters.tiny += u64::from(f.proto == checksum::TCP);
            self.counters.malformed += u64::from(f.proto != checksum::TCP);
            return Outcome::Dropped;
        }
        let Some(i) = self.slot_for(at, f) else {
            self.counters.dropped += 1;
            return Outcome::Dropped;
        };
        match self.place(i, f, end) {
            Placed::Keep(end) => self.keep(i, f, end),
            Placed::Gone(outcome) => outcome,
        }
    }

    /// `ip_frag_queue`'s checks of a fragment's ends, and its place among those held: the
    /// end it is kept to, or what became of it.
    fn place(&mut self, i: usize, f: &Fragment<'_>, end: u32) -> Placed {
        let s = &mut self.slots[i];
        let mut end = end;
        let mut bad = false;
        if f.more {
            if end & 7 != 0 {
                // IPv4 cuts it to a multiple of 8; IPv6 discards the datagram.
                bad = f.is_v6();
                end &= !7;
            }
            if end > s.len {
                bad |= s.last_in;
                s.len = end;
            }
        } else {
            bad = end < s.len || (s.last_in && end != s.len);
            s.last_in = true;
            s.len = end;
        }
        bad |= end <= f.offset;
        if bad {
            self.counters.malformed += 1;
            self.release(i);
            return Placed::Gone(Outcome::Dropped);
        }
        if usize::from(s.fragments) >= self.limits.fragments {
            self.counters.dropped += 1;
            self.release(i);
            return Placed::Gone(Outcome::Dropped);
        }
        match s.insert(f.offset, end) {
            Insert::Ok => Placed::Keep(end),
            Insert::Duplicate => {
                self.counters.duplicates += 1;
                Placed::Gone(Outcome::Dropped)
            }
            Insert::Overlap => {
                self.counters.overlapping += 1;
                let first = self.first_packet(i);
                self.release(i);
                Placed::Gone(Outcome::Overlap(first))
            }
        }
    }

    /// Keeps a fragment placed; the datagram when it is whole.
    fn keep(&mut self, i: usize, f: &Fragment<'_>, end: u32) -> Outcome {
        let s = &mut self.slots[i];
        s.keep(f, end);
        s.fragments += 1;
        s.meat += end - f.offset;
        if !(s.first_in && s.last_in && s.meat == s.len) {
            return Outcome::Pending;
        }
        let header_len = u32::from(s.header_len);
        if s.key.src.is_ipv4() && s.len + header_len > MAX_DATAGRAM {
            self.counters.malformed += 1;
            self.release(i);
            return Outcome::Dropped;
        }
        let whole = self.read(i, self.slots[i].len);
        self.release(i);
        match whole {
            Some((packet, note)) => {
                self.counters.reassembled += 1;
                self.counters.tiny += u64::from(note.tiny);
                Outcome::Complete(packet, note)
            }
            None => Outcome::Dropped,
        }
    }

    /// The datagram of slot `i`, `len` bytes long, read as a packet, with its note.
    fn read(&mut self, i: usize, len: u32) -> Option<(Full, Note)> {
        let s = &self.slots[i];
        let usable = usize_of(len.min(s.cut_at)).min(KEEP);
        let n = s.datagram(len, usable, &mut self.scratch);
        let proto = s.proto;
        let packet = full(
            &self.scratch[..n],
            s.integrity(proto),
            s.direction,
            s.ifindex,
        )?;
        let tcp_header = if packet.tcp_flags.is_some() && proto == checksum::TCP {
            (u32::from(s.kept[12] >> 4) * 4).max(20)
        } else {
            0
        };
        let note = Note {
            tiny: s.first_len < tcp_header,
            overlap: false,
        };
        Some((packet, note))
    }

    /// What the first fragment of slot `i` says, when it came and held the transport header:
    /// the packet of an overlap's evidence (its integrity unverified: the datagram is not
    /// whole).
    fn first_packet(&mut self, i: usize) -> Option<Full> {
        let s = &self.slots[i];
        if !s.first_in {
            return None;
        }
        // The run from offset 0 is contiguous: its bytes are the datagram's first.
        let run = s.runs[..usize::from(s.n_runs)]
            .first()
            .filter(|r| r.0 == 0)
            .map_or(0, |r| r.1);
        let len = s.len.max(run);
        let usable = usize_of(run.min(s.cut_at)).min(KEEP);
        let mut n = s.datagram(len, usable, &mut self.scratch);
        let hl = usize::from(s.header_len);
        if s.proto == checksum::TCP && (4..20).contains(&usable) {
            // A tiny first fragment: its ports are known, its flags not. The rest of a
            // 20-byte header is read as zeros (no flags): the evidence is the overlap.
            self.scratch[hl + usable..hl + 20].fill(0);
            self.scratch[hl + 12] = 0x50;
            n = hl + 20;
        }
        full(
            &self.scratch[..n],
            Integrity::Unverified,
            s.direction,
            s.ifindex,
        )
    }

    /// A fragment this host sent: its first fragment read alone (the host's own stack made
    /// it, with its transport header whole), for the conversation memory; no state kept.
    pub fn lone(&mut self, f: &Fragment<'_>) -> Option<Full> {
        if f.offset != 0 || f.header.len() > MAX_IP_HEADER {
            return None;
        }
        let hl = f.header.len();
        let usable = f.data.len().min(KEEP);
        self.scratch[..hl].copy_from_slice(f.header);
        self.scratch[hl..hl + usable].copy_from_slice(&f.data[..usable]);
        let out = &mut self.scratch;
        if f.is_v6() {
            out[4..6].copy_from_slice(&u16::try_from(f.len).unwrap_or(u16::MAX).to_be_bytes());
            out[6] = f.proto;
        } else {
            out[6] &= 0x40;
            out[7] = 0;
        }
        full(
            &self.scratch[..hl + usable],
            Integrity::Unverified,
            f.direction,
            f.ifindex,
        )
    }
}

/// The datagram in `ip` read with all its details, its checksums' verdict `integrity` (from
/// the fragments' sums), and the direction and interface its fragments came with.
fn full(
    ip: &[u8],
    integrity: Integrity,
    direction: Direction,
    ifindex: Option<u32>,
) -> Option<Full> {
    let (packet, at) = super::packet_from_ip(ip, false).ok()?;
    Some(Full {
        packet: Packet {
            direction,
            ifindex,
            ..packet
        },
        integrity,
        shape: at.shape(&packet),
    })
}

/// The bytes of a transport header a first IPv6 fragment must hold (`ipv6frag_thdr_truncated`).
fn transport_min(proto: u8) -> u32 {
    match proto {
        checksum::TCP => 20,
        checksum::UDP | 58 => 8,
        _ => 1,
    }
}

#[cfg(test)]
mod tests;
