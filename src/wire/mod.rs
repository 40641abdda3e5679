//! Packet parsing: captured bytes in, a small plain [`Packet`] out. **Pure.**
//!
//! Each layer is sliced by `etherparse` (IP in its *lax* mode, so a capture cut short by the snap
//! length still yields its addresses, ports and flags as long as the transport header is whole). Link types: Ethernet (with up to three
//! VLAN tags), Linux cooked capture v1 and v2 (what pcap gives on the `any` device), raw IP and
//! the loopback encapsulations. IPv6 extension headers are walked.
//!
//! TCP flags are read as the raw bits of the header ([`TcpFlags`]) and classified here by
//! [`classify_tcp`]: a validating TCP parser would reject or normalise exactly the odd flag sets
//! that betray a scanner.
//!
//! SCTP (issue 28) is read to its first chunk's type and its CRC32c checked ([`sctp`]); a
//! packet of any other IP protocol but ICMP is read as that protocol's number ([`Other::Ip`]),
//! what an IP protocol scan probes.
//!
//! A [`Packet`] holds what every packet is judged by (direction, interface, addresses, ports,
//! flags, window), and is small; what only some need (the checksums' verdict, [`Integrity`];
//! the other header fields and the payload's first bytes, [`Shape`]) stays in the frame, read
//! when asked through a [`Seen`] ([`read`]), at most once through a [`Lazy`].
//!
//! Invariants callers rely on: [`parse`] never panics and never allocates, whatever the bytes;
//! every frame that does not yield a packet is reported as one [`Skip`] reason so the caller
//! can count it.

mod checksum;
mod flags;
pub mod reassembly;
pub mod sctp;
pub mod shape;

pub use checksum::Integrity;
pub use flags::{Evidence, ProbeKind, TcpFlags, classify_tcp};
pub use sctp::{ChunkType, Sctp};
use shape::InHeaders;
pub use shape::{Fields, Shape};

use std::net::IpAddr;

use etherparse::{
    EtherType, Ethernet2Header, Ethernet2HeaderSlice, IpNumber, LaxIpSlice, SingleVlanHeader,
    SingleVlanHeaderSlice, TcpHeaderSlice, UdpHeaderSlice,
};

/// How the frames of a capture are encapsulated (pcap's `DLT_*` / `LINKTYPE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkType {
    /// Ethernet II, possibly with VLAN tags (`DLT_EN10MB`).
    Ethernet,
    /// Linux cooked capture v1, 16-byte header (`DLT_LINUX_SLL`).
    LinuxSll,
    /// Linux cooked capture v2, 20-byte header (`DLT_LINUX_SLL2`).
    LinuxSll2,
    /// The frame starts with the IPv4 or IPv6 header (`DLT_RAW`, `LINKTYPE_IPV4/6`).
    RawIp,
    /// BSD loopback: a 4-byte address family, then IP (`DLT_NULL`, `DLT_LOOP`).
    Loopback,
}

impl LinkType {
    /// Maps a pcap data-link type number to a supported link type.
    pub fn from_dlt(dlt: i32) -> Option<LinkType> {
        match dlt {
            1 => Some(LinkType::Ethernet),
            113 => Some(LinkType::LinuxSll),
            276 => Some(LinkType::LinuxSll2),
            // DLT_RAW is 12 on most systems and 14 on OpenBSD; 101 is LINKTYPE_RAW in files.
            12 | 14 | 101 | 228 | 229 => Some(LinkType::RawIp),
            0 | 108 => Some(LinkType::Loopback),
            _ => None,
        }
    }
}

/// The transport protocol of a packet.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP (IP protocol 132; RFC 9260): its ports are SCTP ports.
    Sctp,
    /// Any other IP protocol, as an IP protocol scan (`nmap -sO`) probes it: its "port" is the
    /// IP protocol number (0-255), so each distinct protocol a source sends counts as one
    /// distinct trap, as each distinct port does for TCP.
    Ip,
}

impl Proto {
    /// Every protocol, in order.
    pub const ALL: [Proto; 4] = [Proto::Tcp, Proto::Udp, Proto::Sctp, Proto::Ip];

    /// `"tcp"`, `"udp"`, `"sctp"` or `"ip"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
            Proto::Ip => "ip",
        }
    }

    /// A port as administrators write it: `22/tcp`, `38412/sctp`; an IP protocol number as
    /// `47/ip` (protocol 47, GRE).
    pub fn label(self, port: u16) -> String {
        format!("{port}/{}", self.as_str())
    }

    /// Whether it has ports the kernel's first line, the audit and the nft sets know of (TCP
    /// and UDP): SCTP and IP protocol numbers are judged by the pipeline only.
    pub fn has_nft_ports(self) -> bool {
        matches!(self, Proto::Tcp | Proto::Udp)
    }

    /// A port as [`Proto::label`] writes it, read back.
    pub fn parse_label(text: &str) -> Option<(Proto, u16)> {
        let (port, proto) = text.split_once('/')?;
        let proto = match proto {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            "sctp" => Proto::Sctp,
            "ip" => Proto::Ip,
            _ => return None,
        };
        let port: u16 = port.parse().ok()?;
        // An IP protocol number is one byte.
        (proto != Proto::Ip || port <= 255).then_some((proto, port))
    }
}

/// Which way a frame went, as the capturing kernel saw it — never inferred from its addresses,
/// which a forger chooses. Linux cooked captures (the `any` device, or any device switched to
/// cooked mode) and the raw method's packet socket carry the kernel's packet type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Addressed to this host (`PACKET_HOST`).
    Incoming,
    /// Sent by this host (`PACKET_OUTGOING`).
    Outgoing,
    /// Broadcast, multicast, or for another host (`PACKET_BROADCAST`, `_MULTICAST`,
    /// `_OTHERHOST`): no probe of ours.
    Elsewhere,
    /// The capture does not say (Ethernet, raw IP): the caller infers it from the addresses.
    Unknown,
}

impl Direction {
    /// From a Linux packet type (`sll_pkttype`).
    pub fn from_pkttype(pkttype: u16) -> Self {
        match pkttype {
            0 => Direction::Incoming,
            4 => Direction::Outgoing,
            1..=3 => Direction::Elsewhere,
            _ => Direction::Unknown,
        }
    }
}

/// What was read from one frame: addresses, ports and, for TCP, the raw flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet {
    /// Which way it went, when the capture says.
    pub direction: Direction,
    /// The interface it came in on (or left by), when the capture says (cooked v2 captures,
    /// the raw method): what the reverse-path check compares the route back with.
    pub ifindex: Option<u32>,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// TCP flags, or `None` for UDP.
    pub tcp_flags: Option<TcpFlags>,
    /// The TCP window (0 for UDP).
    pub window: u16,
    /// For a packet of neither TCP nor UDP, what it was ([`Other`]); `None` for TCP and UDP.
    pub other: Option<Other>,
}

/// A packet of neither TCP nor UDP that the pipeline still judges (issue 28).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Other {
    /// SCTP (its ports are the packet's `src_port` and `dst_port`): the first chunk.
    Sctp(sctp::Sctp),
    /// Another IP protocol (not ICMP or ICMPv6, which are skipped), by number. The number is
    /// also the packet's `src_port` and `dst_port`, so that a protocol this host speaks to a
    /// peer makes a conversation both ways, as a port pair does.
    Ip(u8),
}

/// What a capture knew of a frame apart from its bytes (the raw method's socket address):
/// what [`parse_with`] takes over what the frame's own header says, when it says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metadata {
    /// Which way it went ([`Direction::Unknown`]: not known apart from the bytes).
    pub direction: Direction,
    /// The interface it came in on, or left by.
    pub ifindex: Option<u32>,
    /// Whether that interface is a loopback device (`ARPHRD_LOOPBACK`).
    pub loopback: bool,
    /// Whether the capture holds the whole frame (no snap length cut it): then a packet
    /// shorter than its IP header says is one the kernel drops, not one cut short.
    pub whole: bool,
}

impl Default for Metadata {
    fn default() -> Self {
        Metadata {
            direction: Direction::Unknown,
            ifindex: None,
            loopback: false,
            whole: false,
        }
    }
}

/// `ARPHRD_LOOPBACK`, the device type of `lo` in a cooked capture's header.
const ARPHRD_LOOPBACK: u16 = 772;

impl Packet {
    /// A TCP segment from `src`:`src_port` to `dst`:`dst_port` with `flags` and a zero window,
    /// its direction and interface unknown: what tests and tools build a packet from, with
    /// struct update syntax for the rest.
    pub fn tcp(src: IpAddr, src_port: u16, dst: IpAddr, dst_port: u16, flags: TcpFlags) -> Self {
        Packet {
            direction: Direction::Unknown,
            ifindex: None,
            src,
            dst,
            src_port,
            dst_port,
            tcp_flags: Some(flags),
            window: 0,
            other: None,
        }
    }

    /// The transport protocol.
    pub fn proto(&self) -> Proto {
        match (self.tcp_flags, self.other) {
            (Some(_), _) => Proto::Tcp,
            (None, None) => Proto::Udp,
            (None, Some(Other::Sctp(_))) => Proto::Sctp,
            (None, Some(Other::Ip(_))) => Proto::Ip,
        }
    }

    /// What kind of probe this packet would be if nobody had asked for it, or `None` for the
    /// traffic of ordinary conversations (SYN+ACK, ACK, RST, PSH+ACK, …; an SCTP chunk other
    /// than INIT and COOKIE ECHO; an INIT with a verification tag, which the kernel discards).
    /// Every UDP datagram and every packet of another IP protocol is a candidate; whether it is
    /// unsolicited is for the caller to decide.
    pub fn probe_kind(&self) -> Option<ProbeKind> {
        match (self.tcp_flags, self.other) {
            (Some(flags), _) => classify_tcp(flags),
            (None, None) => Some(ProbeKind::Udp),
            (None, Some(Other::Sctp(s))) => match s.chunk {
                sctp::ChunkType::INIT if s.zero_tag => Some(ProbeKind::SctpInit),
                sctp::ChunkType::COOKIE_ECHO => Some(ProbeKind::SctpCookieEcho),
                _ => None,
            },
            (None, Some(Other::Ip(_))) => Some(ProbeKind::IpProtocol),
        }
    }
}

/// Why a frame yielded no [`Packet`]. Each is counted by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Skip {
    /// A header was cut short (by the snap length or by the sender).
    Truncated,
    /// A header was present but invalid (bad version, bad length field, …).
    Malformed,
    /// Not IPv4 or IPv6 (ARP, LLDP, …).
    NotIp,
    /// ICMP or ICMPv6 (judged by the kernel, not here), or an SCTP packet too short for its
    /// common header and a chunk.
    OtherProtocol,
    /// An IP fragment: its transport header is not (wholly) in this frame.
    Fragment,
}

impl Skip {
    /// Every reason, in display order.
    pub const ALL: [Skip; 5] = [
        Skip::Truncated,
        Skip::Malformed,
        Skip::NotIp,
        Skip::OtherProtocol,
        Skip::Fragment,
    ];

    /// A short lower-case name, for counters.
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::Truncated => "truncated",
            Skip::Malformed => "malformed",
            Skip::NotIp => "not-ip",
            Skip::OtherProtocol => "other-protocol",
            Skip::Fragment => "fragment",
        }
    }
}

/// Length of the Linux cooked capture v1 header; its protocol type is at offset 14.
const SLL_HEADER_LEN: usize = 16;
/// Length of the Linux cooked capture v2 header; its protocol type is at offset 0.
const SLL2_HEADER_LEN: usize = 20;
/// At most this many VLAN tags are walked (QinQ and one more).
const MAX_VLAN_TAGS: usize = 3;

/// Parses one captured frame, with nothing known of it but its bytes: the [`Packet`] alone
/// (its checksums and other header fields are not read: [`parse_full`] reads them).
///
/// # Errors
///
/// Returns the [`Skip`] reason when the frame holds no complete TCP, UDP or SCTP header, or is
/// ICMP.
#[inline]
pub fn parse(link: LinkType, frame: &[u8]) -> Result<Packet, Skip> {
    read(link, frame, Metadata::default()).map(|seen| seen.packet)
}

/// Parses one captured frame, with what the capture knew of it apart from its bytes (`seen`:
/// its direction, interface and device type, taken over the frame's own header where known):
/// the [`Packet`] alone, as [`parse`] does.
///
/// # Errors
///
/// Returns the [`Skip`] reason when the frame holds no complete TCP, UDP or SCTP header, or is
/// ICMP.
#[inline]
pub fn parse_with(link: LinkType, frame: &[u8], seen: Metadata) -> Result<Packet, Skip> {
    read(link, frame, seen).map(|seen| seen.packet)
}

/// Parses one captured frame as [`parse_with`] does, and keeps where the rest of its headers
/// are: a [`Seen`], which reads its checksums ([`Integrity`]) and other fields ([`Shape`]) from
/// the frame only when asked. What the daemon's per-packet path uses: most packets are
/// classified without them.
///
/// A transport checksum that holds only the pseudo-header's sum is [`Integrity::PseudoOnly`]
/// when the capture says the frame arrived (a packet type other than outgoing) over a device
/// other than loopback (a cooked header's device type, the raw method's socket address): the
/// kernel checks such a sum, and drops the packet. It stays [`Integrity::Offloaded`] where the
/// kernel has not checked it yet (outgoing, loopback), and where the capture does not say
/// which way the frame went (an Ethernet or raw IP capture file, often taken at the sender).
///
/// # Errors
///
/// Returns the [`Skip`] reason when the frame holds no complete TCP, UDP or SCTP header, or is
/// ICMP.
#[inline]
pub fn read(link: LinkType, frame: &[u8], seen: Metadata) -> Result<Seen<'_>, Skip> {
    let layer = ip_layer(link, frame, seen)?;
    // The common packet built where it is returned: a packet built, then copied whole, is read
    // with wide loads of what was just stored narrow, which stalls (issue 29).
    let kernel_checks = layer.kernel_checks();
    if let Some(seen) = ipv4_tcp_udp(layer.ip, layer.direction, layer.ifindex, kernel_checks) {
        return Ok(seen);
    }
    read_any(&layer, seen.whole)
}

/// [`read`] of a packet the fast path leaves (or, in tests, of any): etherparse's lax slices.
fn read_any<'a>(layer: &IpLayer<'a>, whole: bool) -> Result<Seen<'a>, Skip> {
    let (mut packet, mut at) = packet_from_any_ip(layer.ip, whole)?;
    at.kernel_checks = layer.kernel_checks();
    packet.direction = layer.direction;
    packet.ifindex = layer.ifindex;
    Ok(Seen {
        packet,
        source: Source::Frame(at),
    })
}

/// [`read`] without the IPv4 fast path: etherparse's lax slices for every packet, as before
/// issue 29 (the red team's tests compare the two on forged frames).
#[cfg(test)]
pub(crate) fn read_by_etherparse(
    link: LinkType,
    frame: &[u8],
    seen: Metadata,
) -> Result<Seen<'_>, Skip> {
    read_any(&ip_layer(link, frame, seen)?, seen.whole)
}

/// Parses one captured frame with all its details read: its checksums and other header fields
/// beside the [`Packet`] (for tests, tools, and a replay's first look).
///
/// # Errors
///
/// As [`parse`].
pub fn parse_full(link: LinkType, frame: &[u8]) -> Result<Full, Skip> {
    parse_full_with(link, frame, Metadata::default())
}

/// [`parse_full`], with what the capture knew of the frame ([`parse_with`]).
///
/// # Errors
///
/// As [`parse`].
pub fn parse_full_with(link: LinkType, frame: &[u8], seen: Metadata) -> Result<Full, Skip> {
    read(link, frame, seen).map(|seen| seen.full())
}

/// A packet with all its details read ([`parse_full`]): the [`Packet`] (its fields read
/// through it, by `Deref`), its checksums' verdict and its other header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full {
    /// Addresses, ports, flags.
    pub packet: Packet,
    /// Whether its checksums say the kernel would take it ([`Integrity`]).
    pub integrity: Integrity,
    /// The other header fields and the payload's first bytes ([`Shape`]).
    pub shape: Shape,
}

impl Full {
    /// `packet` with valid checksums and no other field set: a test's or a tool's packet.
    pub fn valid(packet: Packet) -> Self {
        Full {
            packet,
            integrity: Integrity::Valid,
            shape: Shape::default(),
        }
    }
}

impl std::ops::Deref for Full {
    type Target = Packet;
    fn deref(&self) -> &Packet {
        &self.packet
    }
}

impl std::ops::DerefMut for Full {
    fn deref_mut(&mut self) -> &mut Packet {
        &mut self.packet
    }
}

/// A parsed [`Packet`] and where the rest of its details are: in its frame, read when asked
/// ([`read`]), or already known (a datagram reassembled from fragments, a test's packet).
/// Small and `Copy`: it borrows the frame.
#[derive(Clone, Copy, Debug)]
pub struct Seen<'a> {
    /// Addresses, ports, flags.
    pub packet: Packet,
    source: Source<'a>,
}

/// Where a [`Seen`]'s details are.
#[derive(Clone, Copy, Debug)]
enum Source<'a> {
    /// In the frame.
    Frame(InFrame<'a>),
    /// Known already.
    Known(Integrity, &'a Shape),
}

/// Where a packet's headers are in its frame, and how its checksums are judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct InFrame<'a> {
    /// From the start of the IP header.
    ip: &'a [u8],
    /// Where the transport header starts in `ip` (after IPv6 extension headers).
    transport: u32,
    /// Where the transport segment ends in `ip`: its declared end, or the capture's.
    end: u32,
    /// Whether the capture cut the segment short of what the IP header declares.
    incomplete: bool,
    /// Whether the kernel checks the transport sum of this frame before any socket sees it
    /// (it arrived, over a device other than loopback): then a sum of the pseudo-header alone
    /// is [`Integrity::PseudoOnly`].
    kernel_checks: bool,
}

impl<'a> InFrame<'a> {
    /// The transport segment, as far as the capture holds it.
    fn segment(&self) -> &[u8] {
        let (from, to) = (self.transport as usize, self.end as usize);
        self.ip.get(from..to).unwrap_or_default()
    }

    /// What the checksums of `p` (read from this frame) say.
    fn integrity(&self, p: &Packet) -> Integrity {
        let ihl = usize::from(self.ip.first().copied().unwrap_or(0) & 0x0f) * 4;
        let header_ok = p.src.is_ipv6() || self.ip.get(..ihl).is_some_and(checksum::ipv4_header_ok);
        if !header_ok {
            return Integrity::Bad;
        }
        let segment = self.segment();
        let integrity = match p.proto() {
            Proto::Tcp => {
                checksum::transport(p.src, p.dst, checksum::TCP, segment, !self.incomplete)
            }
            Proto::Udp => {
                checksum::transport(p.src, p.dst, checksum::UDP, segment, !self.incomplete)
            }
            // Cut by the capture: the CRC32c cannot be summed.
            Proto::Sctp if self.incomplete => Integrity::Unverified,
            Proto::Sctp if sctp::checksum_ok(segment) => Integrity::Valid,
            Proto::Sctp => Integrity::Bad,
            // No transport checksum is known for the protocol: the kernel checks the IPv4
            // header's only before it hands the packet on (or answers "protocol unreachable").
            Proto::Ip => Integrity::Valid,
        };
        if integrity == Integrity::Offloaded && self.kernel_checks {
            Integrity::PseudoOnly
        } else {
            integrity
        }
    }

    /// The other header fields of `p` (read from this frame), and its payload's first bytes.
    fn shape(&self, p: &Packet) -> Shape {
        let (mut shape, _) = shape::ip_fields(self.ip);
        let segment = self.segment();
        let header_len = self.header_len(p);
        if p.proto() == Proto::Tcp {
            shape::tcp_fields(&mut shape, segment.get(..header_len).unwrap_or(segment));
        }
        shape.payload_len = self.payload_len(p);
        shape.head = shape::Head::new(segment.get(header_len..).unwrap_or_default());
        shape
    }

    /// Where the fields a [`Shape`] holds are, to be read one at a time ([`Fields`]).
    fn headers(&self, p: &Packet) -> InHeaders<'a> {
        let (from, to) = (self.transport as usize, self.end as usize);
        let segment = self.ip.get(from..to).unwrap_or_default();
        let header_len = self.header_len(p);
        InHeaders {
            ip: self.ip,
            tcp: if p.proto() == Proto::Tcp {
                segment.get(..header_len).unwrap_or(segment)
            } else {
                &[]
            },
            payload: segment.get(header_len..).unwrap_or_default(),
            payload_len: self.payload_len(p),
        }
    }

    /// The length of `p`'s transport header in this frame (TCP: its data offset, which the
    /// parse checked whole and at least 5 words; cut to what the capture holds).
    fn header_len(&self, p: &Packet) -> usize {
        match p.proto() {
            Proto::Tcp => {
                let segment = self.segment();
                let len = usize::from(segment.get(12).copied().unwrap_or(0) >> 4) * 4;
                len.min(segment.len())
            }
            Proto::Udp => UDP_HEADER_LEN,
            Proto::Sctp => sctp::COMMON_HEADER_LEN,
            Proto::Ip => 0,
        }
    }

    /// The payload's length as the IP header declares it (whatever the capture cut): three
    /// header fields read, nothing copied.
    fn payload_len(&self, p: &Packet) -> u16 {
        let declared = shape::ip_total(self.ip).saturating_sub(self.transport as usize);
        clamp16(declared.saturating_sub(self.header_len(p)))
    }
}

impl<'a> Seen<'a> {
    /// A packet whose details are known already.
    pub fn known(packet: Packet, integrity: Integrity, shape: &'a Shape) -> Self {
        Seen {
            packet,
            source: Source::Known(integrity, shape),
        }
    }

    /// What its checksums say (summed from the frame on each call: see [`Lazy`]).
    pub fn integrity(&self) -> Integrity {
        match &self.source {
            Source::Frame(at) => at.integrity(&self.packet),
            Source::Known(integrity, _) => *integrity,
        }
    }

    /// Its other header fields (read from the frame on each call: see [`Lazy`]).
    pub fn shape(&self) -> Shape {
        match &self.source {
            Source::Frame(at) => at.shape(&self.packet),
            Source::Known(_, shape) => **shape,
        }
    }

    /// Its other header fields, each read from the frame when asked ([`Fields`]).
    pub fn fields(&self) -> impl Fields + '_ {
        match &self.source {
            Source::Frame(at) => Either::Frame(at.headers(&self.packet)),
            Source::Known(_, shape) => Either::Read(shape),
        }
    }

    /// All of it.
    pub fn full(&self) -> Full {
        Full {
            packet: self.packet,
            integrity: self.integrity(),
            shape: self.shape(),
        }
    }
}

impl<'a> From<&'a Full> for Seen<'a> {
    fn from(full: &'a Full) -> Self {
        Seen::known(full.packet, full.integrity, &full.shape)
    }
}

/// A packet whose details are read at most once, when first asked for: what the pipeline
/// judges a packet with, asking for the checksums and other fields only where a decision
/// needs them. Made from a [`Seen`] (read from its frame when asked), a [`Full`] (known), or a
/// bare [`Packet`] (valid checksums, no other field set: a synthetic packet; never one parsed
/// from a frame, whose details are in it).
#[derive(Debug)]
pub struct Lazy<'a> {
    packet: Packet,
    frame: Option<InFrame<'a>>,
    shape: std::cell::OnceCell<Shape>,
    integrity: std::cell::Cell<Option<Integrity>>,
}

impl Lazy<'_> {
    /// The packet.
    pub fn packet(&self) -> &Packet {
        &self.packet
    }

    /// What its checksums say, summed on the first call.
    pub fn integrity(&self) -> Integrity {
        if let Some(known) = self.integrity.get() {
            return known;
        }
        let integrity = self
            .frame
            .as_ref()
            .map_or(Integrity::Valid, |at| at.integrity(&self.packet));
        self.integrity.set(Some(integrity));
        integrity
    }

    /// Its other header fields, read on the first call.
    pub fn shape(&self) -> &Shape {
        self.shape.get_or_init(|| {
            self.frame
                .as_ref()
                .map_or(Shape::EMPTY, |at| at.shape(&self.packet))
        })
    }

    /// Its other header fields, each read when asked ([`Fields`]): from the shape if it was
    /// read already, else from the frame, one field at a time (no [`Shape`] is built).
    pub fn fields(&self) -> impl Fields + '_ {
        match (self.shape.get(), &self.frame) {
            (None, Some(at)) => Either::Frame(at.headers(&self.packet)),
            (Some(shape), _) => Either::Read(shape),
            (None, None) => Either::Read(&Shape::EMPTY),
        }
    }

    /// Its payload's length as the IP header declares it ([`Shape::payload_len`]), without
    /// the rest of the shape read (0 for a synthetic packet).
    pub fn payload_len(&self) -> u16 {
        if let Some(shape) = self.shape.get() {
            return shape.payload_len;
        }
        self.frame
            .as_ref()
            .map_or(0, |at| at.payload_len(&self.packet))
    }

    /// All of it.
    fn known(full: Full) -> Self {
        Lazy {
            packet: full.packet,
            frame: None,
            shape: std::cell::OnceCell::from(full.shape),
            integrity: std::cell::Cell::new(Some(full.integrity)),
        }
    }
}

impl<'a> From<Seen<'a>> for Lazy<'a> {
    fn from(seen: Seen<'a>) -> Self {
        match seen.source {
            Source::Frame(at) => Lazy {
                packet: seen.packet,
                frame: Some(at),
                shape: std::cell::OnceCell::new(),
                integrity: std::cell::Cell::new(None),
            },
            Source::Known(integrity, shape) => Lazy::known(Full {
                packet: seen.packet,
                integrity,
                shape: *shape,
            }),
        }
    }
}

impl From<Full> for Lazy<'_> {
    fn from(full: Full) -> Self {
        Lazy::known(full)
    }
}

impl From<&Full> for Lazy<'_> {
    fn from(full: &Full) -> Self {
        Lazy::known(*full)
    }
}

impl From<Packet> for Lazy<'_> {
    fn from(packet: Packet) -> Self {
        Lazy {
            packet,
            frame: None,
            shape: std::cell::OnceCell::new(),
            integrity: std::cell::Cell::new(None),
        }
    }
}

/// A packet's [`Fields`]: read already, or in its frame.
enum Either<'a> {
    Read(&'a Shape),
    Frame(InHeaders<'a>),
}

/// Each field from where it is.
macro_rules! either {
    ($($field:ident -> $ty:ty),* $(,)?) => {
        $(
            fn $field(&self) -> $ty {
                match self {
                    Either::Read(s) => s.$field(),
                    Either::Frame(h) => h.$field(),
                }
            }
        )*
    };
}

impl Fields for Either<'_> {
    either!(
        ip_id -> u16,
        dont_fragment -> bool,
        seq -> u32,
        options -> &[u8],
        payload_len -> u16,
        head -> &[u8],
    );
}

/// A frame down to its IP header, with what its link layer and the capture said of it.
#[derive(Clone, Copy, Debug)]
struct IpLayer<'a> {
    /// From the start of the IP header.
    ip: &'a [u8],
    /// Which way it went: the capture's word, else the cooked header's.
    direction: Direction,
    /// The interface, when the capture or the cooked header says.
    ifindex: Option<u32>,
    /// Whether it came over a loopback device, as far as anything says.
    loopback: bool,
}

impl IpLayer<'_> {
    /// Whether the kernel checks its transport sum before any socket sees it: it arrived (the
    /// capture says so) over a device other than loopback ([`InFrame::kernel_checks`]).
    fn kernel_checks(&self) -> bool {
        !matches!(self.direction, Direction::Outgoing | Direction::Unknown) && !self.loopback
    }
}

/// Slices the link layer of `frame` off: its IP bytes, direction, interface and device type.
#[inline]
fn ip_layer(link: LinkType, frame: &[u8], seen: Metadata) -> Result<IpLayer<'_>, Skip> {
    let mut ifindex = None;
    // The device type of a cooked header, read only when it matters.
    let hatype = |at: usize| {
        frame
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let (ip, direction) = match link {
        LinkType::Ethernet => {
            let eth = Ethernet2HeaderSlice::from_slice(frame).map_err(|_| Skip::Truncated)?;
            let payload = frame.get(Ethernet2Header::LEN..).unwrap_or_default();
            (
                ether_payload(eth.ether_type(), payload)?,
                Direction::Unknown,
            )
        }
        LinkType::LinuxSll => {
            // Packet type: big-endian u16 at offset 0.
            let pkttype = frame.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));
            (
                cooked(frame, 14, SLL_HEADER_LEN)?,
                pkttype.map_or(Direction::Unknown, Direction::from_pkttype),
            )
        }
        LinkType::LinuxSll2 => {
            // Interface index: big-endian u32 at offset 4; packet type: one byte at offset 10.
            ifindex = frame
                .get(4..8)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
            let pkttype = frame.get(10).copied().map(u16::from);
            (
                cooked(frame, 0, SLL2_HEADER_LEN)?,
                pkttype.map_or(Direction::Unknown, Direction::from_pkttype),
            )
        }
        LinkType::RawIp => (frame, Direction::Unknown),
        LinkType::Loopback => (frame.get(4..).ok_or(Skip::Truncated)?, Direction::Unknown),
    };
    let direction = if seen.direction == Direction::Unknown {
        direction
    } else {
        seen.direction
    };
    let loopback = seen.loopback
        || match link {
            // Cooked v1: the device type at offset 2; v2: at offset 8.
            LinkType::LinuxSll => hatype(2) == Some(ARPHRD_LOOPBACK),
            LinkType::LinuxSll2 => hatype(8) == Some(ARPHRD_LOOPBACK),
            LinkType::Ethernet | LinkType::RawIp | LinkType::Loopback => false,
        };
    Ok(IpLayer {
        ip,
        direction,
        ifindex: seen.ifindex.or(ifindex),
        loopback,
    })
}

/// Walks VLAN tags (802.1Q, 802.1ad, the old QinQ 0x9100) to the IP header.
#[inline]
fn ether_payload(mut ether_type: EtherType, mut payload: &[u8]) -> Result<&[u8], Skip> {
    for _ in 0..=MAX_VLAN_TAGS {
        match ether_type {
            EtherType::IPV4 | EtherType::IPV6 => return ip_of_its_version(ether_type, payload),
            EtherType::VLAN_TAGGED_FRAME
            | EtherType::PROVIDER_BRIDGING
            | EtherType::VLAN_DOUBLE_TAGGED_FRAME => {
                let tag =
                    SingleVlanHeaderSlice::from_slice(payload).map_err(|_| Skip::Truncated)?;
                ether_type = tag.ether_type();
                payload = payload.get(SingleVlanHeader::LEN..).unwrap_or_default();
            }
            _ => return Err(Skip::NotIp),
        }
    }
    Err(Skip::NotIp)
}

/// `payload` when its IP version is the one its link-layer protocol names: the kernel drops
/// an IPv4 packet in an IPv6 frame, and the reverse, so neither is a probe.
#[inline]
fn ip_of_its_version(ether_type: EtherType, payload: &[u8]) -> Result<&[u8], Skip> {
    let version = payload.first().ok_or(Skip::Truncated)? >> 4;
    match (ether_type, version) {
        (EtherType::IPV4, 4) | (EtherType::IPV6, 6) => Ok(payload),
        _ => Err(Skip::Malformed),
    }
}

/// Slices a Linux cooked capture frame (v1 or v2). Both carry the payload's EtherType in a
/// big-endian field and nothing else we need; the hardware type is deliberately not checked,
/// since `any` captures include loopback (ARPHRD 772) and tunnels. A protocol field that is not
/// an IP EtherType (netlink, for instance) comes out as [`Skip::NotIp`].
#[inline]
fn cooked(frame: &[u8], proto_at: usize, header_len: usize) -> Result<&[u8], Skip> {
    let (Some(proto), Some(payload)) = (frame.get(proto_at..proto_at + 2), frame.get(header_len..))
    else {
        return Err(Skip::Truncated);
    };
    ether_payload(EtherType(u16::from_be_bytes([proto[0], proto[1]])), payload)
}

/// From the start of the IP header: addresses, then the TCP, UDP or SCTP header's ports and
/// flags, and where the transport segment is (nothing else is read: [`InFrame`] reads the
/// rest when asked). IPv6 extension headers are walked by etherparse; a payload cut short by
/// the snap length is fine as long as the transport header is whole, but not one shorter than
/// its header says when the capture holds the `whole` frame.
#[inline]
fn packet_from_ip(bytes: &[u8], whole: bool) -> Result<(Packet, InFrame<'_>), Skip> {
    match ipv4_tcp_udp(bytes, Direction::Unknown, None, false) {
        Some(seen) => match seen.source {
            Source::Frame(at) => Ok((seen.packet, at)),
            Source::Known(..) => unreachable!("the fast path reads from the frame"),
        },
        None => packet_from_any_ip(bytes, whole),
    }
}

/// [`packet_from_ip`] for the packets most of a capture is (issue 29): an IPv4 datagram held
/// whole by the capture, not a fragment, carrying a TCP segment whose header is whole or a UDP
/// datagram, read field by field. Anything else (IPv6, options past the capture, a total
/// length the capture cuts or the header does not fit, a fragment, another protocol, a cut
/// transport header: every case with an error or a choice to make) is `None`, and
/// [`packet_from_any_ip`] reads it. Where this reads a packet it is the one
/// [`packet_from_any_ip`] reads (tested on changed frames, and by the `packet` fuzz target).
#[inline(always)]
fn ipv4_tcp_udp(
    bytes: &[u8],
    direction: Direction,
    ifindex: Option<u32>,
    kernel_checks: bool,
) -> Option<Seen<'_>> {
    let word = |i: usize| Some(u16::from_be_bytes([*bytes.get(i)?, *bytes.get(i + 1)?]));
    let first = *bytes.first()?;
    let header_len = usize::from(first & 0x0f) * 4;
    let total = usize::from(word(2)?);
    // Version 4, a header of 20 bytes or more, the whole datagram captured (the padding of a
    // short Ethernet frame after it), no fragment (neither more fragments nor an offset).
    if first >> 4 != 4 || header_len < 20 || total < header_len || total > bytes.len() {
        return None;
    }
    if word(6)? & 0x3fff != 0 {
        return None;
    }
    if header_len > 20 && !ipv4_options_parse(bytes.get(20..header_len)?) {
        return None;
    }
    let address = |i: usize| -> Option<IpAddr> {
        let b: [u8; 4] = bytes.get(i..i + 4)?.try_into().ok()?;
        Some(IpAddr::V4(std::net::Ipv4Addr::from(b)))
    };
    let (src, dst) = (address(12)?, address(16)?);
    let segment = bytes.get(header_len..total)?;
    let port = |i: usize| Some(u16::from_be_bytes([*segment.get(i)?, *segment.get(i + 1)?]));
    let (tcp_flags, window) = match *bytes.get(9)? {
        6 => {
            let offset = usize::from(*segment.get(12)? >> 4) * 4;
            if offset < 20 || offset > segment.len() {
                return None;
            }
            (Some(TcpFlags::from_header(segment)), port(14)?)
        }
        17 if segment.len() >= UDP_HEADER_LEN => (None, 0),
        _ => return None,
    };
    let (src_port, dst_port) = (port(0)?, port(2)?);
    Some(Seen {
        packet: Packet {
            direction,
            ifindex,
            src,
            dst,
            src_port,
            dst_port,
            tcp_flags,
            window,
            other: None,
        },
        source: Source::Frame(InFrame {
            ip: bytes,
            transport: u32::try_from(header_len).ok()?,
            end: u32::try_from(total).ok()?,
            incomplete: false,
            kernel_checks,
        }),
    })
}

/// Whether the IPv4 fast path, where it reads `frame`, reads what etherparse reads (always
/// true; what the `packet` fuzz target holds it to, with bytes no test wrote).
#[doc(hidden)]
pub fn fast_path_agrees(link: LinkType, frame: &[u8]) -> bool {
    let Ok(layer) = ip_layer(link, frame, Metadata::default()) else {
        return true;
    };
    ipv4_tcp_udp(layer.ip, Direction::Unknown, None, false).is_none_or(|seen| {
        let Source::Frame(at) = seen.source else {
            return false;
        };
        [false, true]
            .iter()
            .all(|&whole| packet_from_any_ip(layer.ip, whole) == Ok((seen.packet, at)))
    })
}

/// Whether IPv4 `options` (the header's bytes past its first 20) can be walked as the kernel
/// walks them on arrival (`ip_options_compile`): after an end-of-list option nothing counts; a
/// no-operation is one byte; any other option has a length byte of at least 2 that stays within
/// the options. The kernel drops a datagram whose options it cannot walk (red team, issue 29);
/// what each known option's own fields must hold, and the source routes its settings refuse,
/// are not judged here.
fn ipv4_options_parse(options: &[u8]) -> bool {
    let mut rest = options;
    loop {
        match rest {
            [] | [0, ..] => return true,
            [1, tail @ ..] => rest = tail,
            [_, len, ..] if *len >= 2 && usize::from(*len) <= rest.len() => {
                rest = &rest[usize::from(*len)..];
            }
            _ => return false,
        }
    }
}

/// `bytes` as etherparse's lax IP slice, if the kernel would take the datagram whole on
/// arrival (not a fragment, not cut short where the capture holds the `whole` frame, an IPv4
/// header whose total length and options hold), else why not.
fn ip_the_kernel_takes(bytes: &[u8], whole: bool) -> Result<LaxIpSlice<'_>, Skip> {
    use etherparse::err::ip::LaxHeaderSliceError;
    let (ip, ext_err) = LaxIpSlice::from_slice(bytes).map_err(|e| match e {
        LaxHeaderSliceError::Len(_) => Skip::Truncated,
        LaxHeaderSliceError::Content(_) => Skip::Malformed,
    })?;
    let payload = ip.payload();
    if let Some((err, _layer)) = ext_err {
        return Err(match err {
            etherparse::err::ipv6_exts::HeaderSliceError::Len(_) => Skip::Truncated,
            etherparse::err::ipv6_exts::HeaderSliceError::Content(_) => Skip::Malformed,
        });
    }
    if payload.fragmented {
        return Err(Skip::Fragment);
    }
    // Shorter than its header says, with nothing cut by the capture: the kernel drops it.
    if payload.incomplete && whole {
        return Err(Skip::Truncated);
    }
    // An IPv4 total length under the header's length: the kernel drops it (`ip_rcv_core`),
    // where the lax slice reads the rest of the frame as its payload (issue 29, red team). A
    // total length 0 is left to it where it may be a BIG TCP packet GRO built (over 64 KiB, or
    // cut by the capture).
    if let LaxIpSlice::Ipv4(v4) = &ip {
        let header = v4.header();
        let total = usize::from(header.total_len());
        if total < header.slice().len() && (total != 0 || (whole && bytes.len() <= 0xffff)) {
            return Err(Skip::Malformed);
        }
        // Options the kernel cannot walk: it drops the datagram (`ip_options_compile`).
        if !ipv4_options_parse(header.options()) {
            return Err(Skip::Malformed);
        }
    }
    Ok(ip)
}

/// [`packet_from_ip`] for any IP packet, by etherparse's lax slices.
fn packet_from_any_ip(bytes: &[u8], whole: bool) -> Result<(Packet, InFrame<'_>), Skip> {
    let ip = ip_the_kernel_takes(bytes, whole)?;
    let payload = ip.payload();
    let (src, dst) = (ip.source_addr(), ip.destination_addr());
    // Where the transport header starts in `bytes` (after IPv6 extension headers).
    let transport = (payload.payload.as_ptr() as usize).saturating_sub(bytes.as_ptr() as usize);
    let at = InFrame {
        ip: bytes,
        transport: u32::try_from(transport).unwrap_or(u32::MAX),
        end: u32::try_from(transport + payload.payload.len()).unwrap_or(u32::MAX),
        incomplete: payload.incomplete,
        kernel_checks: false,
    };
    let packet = |src_port, dst_port, tcp_flags, window, other| Packet {
        direction: Direction::Unknown,
        ifindex: None,
        src,
        dst,
        src_port,
        dst_port,
        tcp_flags,
        window,
        other,
    };
    let packet = match payload.ip_number {
        IpNumber::TCP => {
            let tcp = TcpHeaderSlice::from_slice(payload.payload).map_err(|e| match e {
                etherparse::err::tcp::HeaderSliceError::Len(_) => Skip::Truncated,
                etherparse::err::tcp::HeaderSliceError::Content(_) => Skip::Malformed,
            })?;
            packet(
                tcp.source_port(),
                tcp.destination_port(),
                Some(TcpFlags::from_header(tcp.slice())),
                tcp.window_size(),
                None,
            )
        }
        IpNumber::UDP => {
            let udp = UdpHeaderSlice::from_slice(payload.payload).map_err(|_| Skip::Truncated)?;
            packet(udp.source_port(), udp.destination_port(), None, 0, None)
        }
        // SCTP (issue 28): read to its first chunk (its CRC32c is checked when asked).
        IpNumber::SCTP => {
            let (src_port, dst_port, chunk) =
                sctp::parse(payload.payload).map_err(|_| Skip::OtherProtocol)?;
            packet(src_port, dst_port, None, 0, Some(Other::Sctp(chunk)))
        }
        // ICMP stays the kernel's: it answers it, and a ping is no scan of ports.
        IpNumber::ICMP | IpNumber::IPV6_ICMP => return Err(Skip::OtherProtocol),
        // Any other protocol is read as its number.
        IpNumber(number) => {
            let port = u16::from(number);
            packet(port, port, None, 0, Some(Other::Ip(number)))
        }
    };
    Ok((packet, at))
}

/// The length of a UDP header.
const UDP_HEADER_LEN: usize = 8;

/// A length as a `u16` (IP lengths are; a larger one is saturated).
fn clamp16(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

#[cfg(test)]
pub(crate) mod tests;
