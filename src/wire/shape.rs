//! The header fields of a packet beyond its addresses, ports and flags: what a tool's probe
//! shape is recognised by (window, TCP options, IP ID, TTL, urgent pointer, reserved bits), and
//! the first bytes of its payload, which a version probe is recognised by. **Pure**, fixed
//! size, no allocation: a [`Shape`] is read from the frame only when a decision needs it
//! ([`super::Lazy`]).

/// The most TCP option bytes a header holds (a data offset of 15 words, less the 20 fixed bytes).
pub const MAX_OPTIONS: usize = 40;
/// How many payload bytes are kept: enough to tell nmap's service probes and a scanner's fixed
/// payloads apart by their beginning; what follows is not looked at.
pub const HEAD_LEN: usize = 32;

/// Header fields read from the IP and transport headers of one packet, as they were on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shape {
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// IPv4 type of service or IPv6 traffic class (DSCP and ECN bits).
    pub tos: u8,
    /// IPv4 identification (0 for IPv6).
    pub ip_id: u16,
    /// IPv4 "don't fragment" bit (false for IPv6).
    pub dont_fragment: bool,
    /// IPv6 flow label (0 for IPv4).
    pub flow_label: u32,
    /// TCP sequence number (0 for UDP).
    pub seq: u32,
    /// TCP acknowledgment number, whatever the ACK flag says (0 for UDP).
    pub ack: u32,
    /// TCP urgent pointer, whatever the URG flag says (0 for UDP).
    pub urgent: u16,
    /// The three reserved bits of the TCP header (byte 12, bits 3..1), shifted down (0-7).
    pub reserved: u8,
    /// The TCP options, as they were on the wire (none for UDP).
    pub options: TcpOptions,
    /// The transport payload's length as the IP header declares it (whatever the capture cut).
    pub payload_len: u16,
    /// The payload's first bytes, as far as the capture holds them.
    pub head: Head,
}

impl Shape {
    /// No field set, no options, no payload (what [`Shape::default`] gives, as a constant).
    pub const EMPTY: Shape = Shape {
        ttl: 0,
        tos: 0,
        ip_id: 0,
        dont_fragment: false,
        flow_label: 0,
        seq: 0,
        ack: 0,
        urgent: 0,
        reserved: 0,
        options: TcpOptions {
            len: 0,
            bytes: [0; MAX_OPTIONS],
        },
        payload_len: 0,
        head: Head {
            len: 0,
            bytes: [0; HEAD_LEN],
        },
    };
}

/// TCP option bytes, as they were on the wire (at most [`MAX_OPTIONS`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TcpOptions {
    len: u8,
    bytes: [u8; MAX_OPTIONS],
}

impl Default for TcpOptions {
    fn default() -> Self {
        TcpOptions {
            len: 0,
            bytes: [0; MAX_OPTIONS],
        }
    }
}

impl TcpOptions {
    /// The options of `raw` (at most [`MAX_OPTIONS`] bytes are kept).
    pub fn new(raw: &[u8]) -> Self {
        let mut options = TcpOptions::default();
        let n = raw.len().min(MAX_OPTIONS);
        options.bytes[..n].copy_from_slice(&raw[..n]);
        options.len = u8::try_from(n).expect("at most 40");
        options
    }

    /// The option bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for TcpOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TcpOptions(")?;
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// The first payload bytes of a packet (at most [`HEAD_LEN`]; fewer when the payload is shorter
/// or the capture's snap length cut it).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Head {
    len: u8,
    bytes: [u8; HEAD_LEN],
}

impl Default for Head {
    fn default() -> Self {
        Head {
            len: 0,
            bytes: [0; HEAD_LEN],
        }
    }
}

impl Head {
    /// The first bytes of `payload` (at most [`HEAD_LEN`]).
    pub fn new(payload: &[u8]) -> Self {
        let mut head = Head::default();
        let n = payload.len().min(HEAD_LEN);
        head.bytes[..n].copy_from_slice(&payload[..n]);
        head.len = u8::try_from(n).expect("at most 32");
        head
    }

    /// The bytes kept.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Head({:?})", self.as_bytes().escape_ascii().to_string())
    }
}

/// The fields of a packet's header that a rule reads ([`crate::detect::fingerprint`],
/// [`crate::detect::version`]), wherever they are: in a [`Shape`] read before, or still in the
/// frame ([`InHeaders`]), where each is read only when a rule asks for it (issue 29: a scan's
/// SYN is judged by its flags, its window and two or three of these, not by a copy of the whole
/// header and payload head). Both give the same values for the same frame (tested).
pub trait Fields {
    /// [`Shape::ip_id`].
    fn ip_id(&self) -> u16;
    /// [`Shape::dont_fragment`].
    fn dont_fragment(&self) -> bool;
    /// [`Shape::seq`].
    fn seq(&self) -> u32;
    /// [`Shape::options`], as bytes.
    fn options(&self) -> &[u8];
    /// [`Shape::payload_len`].
    fn payload_len(&self) -> u16;
    /// [`Shape::head`], as bytes.
    fn head(&self) -> &[u8];
}

impl Fields for Shape {
    fn ip_id(&self) -> u16 {
        self.ip_id
    }
    fn dont_fragment(&self) -> bool {
        self.dont_fragment
    }
    fn seq(&self) -> u32 {
        self.seq
    }
    fn options(&self) -> &[u8] {
        self.options.as_bytes()
    }
    fn payload_len(&self) -> u16 {
        self.payload_len
    }
    fn head(&self) -> &[u8] {
        self.head.as_bytes()
    }
}

/// A packet's header fields where they are in its frame, read one at a time as asked
/// ([`Fields`]); what [`Shape`] would copy out of the same bytes.
#[derive(Clone, Copy, Debug)]
pub(super) struct InHeaders<'a> {
    /// From the start of the IP header.
    pub(super) ip: &'a [u8],
    /// The whole TCP header, options included, as far as the capture holds it (empty for any
    /// other protocol).
    pub(super) tcp: &'a [u8],
    /// The transport payload, as far as the capture holds it.
    pub(super) payload: &'a [u8],
    /// The payload's length as the IP header declares it.
    pub(super) payload_len: u16,
}

impl InHeaders<'_> {
    fn byte(bytes: &[u8], i: usize) -> u8 {
        bytes.get(i).copied().unwrap_or(0)
    }
}

impl Fields for InHeaders<'_> {
    fn ip_id(&self) -> u16 {
        if Self::byte(self.ip, 0) >> 4 == 4 {
            u16::from_be_bytes([Self::byte(self.ip, 4), Self::byte(self.ip, 5)])
        } else {
            0
        }
    }
    fn dont_fragment(&self) -> bool {
        Self::byte(self.ip, 0) >> 4 == 4 && Self::byte(self.ip, 6) & 0x40 != 0
    }
    fn seq(&self) -> u32 {
        let b = |i| Self::byte(self.tcp, i);
        u32::from_be_bytes([b(4), b(5), b(6), b(7)])
    }
    fn options(&self) -> &[u8] {
        let options = self.tcp.get(20..).unwrap_or_default();
        &options[..options.len().min(MAX_OPTIONS)]
    }
    fn payload_len(&self) -> u16 {
        self.payload_len
    }
    fn head(&self) -> &[u8] {
        &self.payload[..self.payload.len().min(HEAD_LEN)]
    }
}

/// The IP header fields of a [`Shape`], from the start of an IPv4 or IPv6 header (whose
/// version and length the caller has checked): TTL, TOS, IP ID, DF, flow label, and the total
/// length the header declares (IPv4 total length; IPv6 40 + payload length).
pub(super) fn ip_fields(header: &[u8]) -> (Shape, usize) {
    let total = ip_total(header);
    let byte = |i: usize| header.get(i).copied().unwrap_or(0);
    let word = |i: usize| u16::from_be_bytes([byte(i), byte(i + 1)]);
    let mut shape = Shape::default();
    if byte(0) >> 4 == 4 {
        shape.tos = byte(1);
        shape.ip_id = word(4);
        shape.dont_fragment = byte(6) & 0x40 != 0;
        shape.ttl = byte(8);
        (shape, total)
    } else {
        shape.tos = (byte(0) << 4) | (byte(1) >> 4);
        shape.flow_label =
            (u32::from(byte(1) & 0x0f) << 16) | (u32::from(byte(2)) << 8) | u32::from(byte(3));
        shape.ttl = byte(7);
        (shape, total)
    }
}

/// The total length an IPv4 or IPv6 header (`header`, from its start) declares: IPv4 total
/// length; IPv6 40 + payload length.
pub(super) fn ip_total(header: &[u8]) -> usize {
    let word = |i: usize| {
        usize::from(u16::from_be_bytes([
            header.get(i).copied().unwrap_or(0),
            header.get(i + 1).copied().unwrap_or(0),
        ]))
    };
    if header.first().copied().unwrap_or(0) >> 4 == 4 {
        word(2)
    } else {
        40 + word(4)
    }
}

/// Adds the TCP fields of a whole TCP header (`tcp`, options included) to `shape`.
pub(super) fn tcp_fields(shape: &mut Shape, tcp: &[u8]) {
    let byte = |i: usize| tcp.get(i).copied().unwrap_or(0);
    let long = |i: usize| u32::from_be_bytes([byte(i), byte(i + 1), byte(i + 2), byte(i + 3)]);
    shape.seq = long(4);
    shape.ack = long(8);
    shape.reserved = (byte(12) >> 1) & 0x07;
    shape.urgent = u16::from_be_bytes([byte(18), byte(19)]);
    shape.options = TcpOptions::new(tcp.get(20..).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_and_heads_keep_at_most_their_size() {
        assert_eq!(TcpOptions::new(&[1; 60]).as_bytes().len(), MAX_OPTIONS);
        assert_eq!(Head::new(&[b'C'; 300]).as_bytes(), &[b'C'; HEAD_LEN]);
        assert_eq!(Head::new(b"GET").as_bytes(), b"GET");
        assert_eq!(
            format!("{:?}", Head::new(b"A\r\n")),
            "Head(\"A\\\\r\\\\n\")"
        );
    }
}
