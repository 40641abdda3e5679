//! TCP flag bits and what they say about the sender. **Pure.**

use std::fmt;

/// The nine TCP flag bits as they are on the wire: `NS` (bit 8), then `CWR ECE URG ACK PSH RST
/// SYN FIN` (bits 7..0, header byte 13).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TcpFlags(u16);

impl TcpFlags {
    /// FIN: no more data from the sender.
    pub const FIN: TcpFlags = TcpFlags(0x001);
    /// SYN: synchronise sequence numbers (opens a connection).
    pub const SYN: TcpFlags = TcpFlags(0x002);
    /// RST: reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x004);
    /// PSH: push.
    pub const PSH: TcpFlags = TcpFlags(0x008);
    /// ACK: the acknowledgment field is significant.
    pub const ACK: TcpFlags = TcpFlags(0x010);
    /// URG: the urgent pointer is significant.
    pub const URG: TcpFlags = TcpFlags(0x020);
    /// ECE: ECN echo.
    pub const ECE: TcpFlags = TcpFlags(0x040);
    /// CWR: congestion window reduced.
    pub const CWR: TcpFlags = TcpFlags(0x080);
    /// NS: ECN nonce (historic).
    pub const NS: TcpFlags = TcpFlags(0x100);

    /// The six flags that decide a segment's role; the ECN bits (`ECE`, `CWR`, `NS`) do not.
    const CONTROL: u16 = 0x03f;

    const NAMES: [(TcpFlags, &'static str); 9] = [
        (TcpFlags::FIN, "FIN"),
        (TcpFlags::SYN, "SYN"),
        (TcpFlags::RST, "RST"),
        (TcpFlags::PSH, "PSH"),
        (TcpFlags::ACK, "ACK"),
        (TcpFlags::URG, "URG"),
        (TcpFlags::ECE, "ECE"),
        (TcpFlags::CWR, "CWR"),
        (TcpFlags::NS, "NS"),
    ];

    /// Flags from their raw value; bits above the nine flags are dropped.
    pub const fn from_bits(bits: u16) -> Self {
        TcpFlags(bits & 0x1ff)
    }

    /// Reads the flags from a TCP header (at least 14 bytes; shorter gives no flags).
    pub fn from_header(header: &[u8]) -> Self {
        match (header.get(12), header.get(13)) {
            (Some(&offset_ns), Some(&flags)) => {
                TcpFlags(u16::from(flags) | (u16::from(offset_ns & 1) << 8))
            }
            _ => TcpFlags(0),
        }
    }

    /// The raw value.
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// Whether every flag of `other` is set in `self`.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The six control flags only (FIN SYN RST PSH ACK URG).
    const fn control(self) -> u16 {
        self.0 & Self::CONTROL
    }
}

impl std::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl fmt::Display for TcpFlags {
    /// `SYN|FIN`, or `none` when no flag is set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("none");
        }
        let mut first = true;
        for (flag, name) in Self::NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// How much a single probe says about intent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Evidence {
    /// What a client sends to open a connection (SYN, a UDP datagram): a probe only because
    /// nothing listens there.
    Ordinary,
    /// A segment no client sends first, but one a confused stack might (a stray FIN, FIN+ACK
    /// after the socket is gone): nmap's FIN, Maimon and custom-flag scans.
    Stealth,
    /// A flag set no TCP stack ever sends to open a connection (NULL, XMAS, SYN+FIN, SYN+RST).
    Impossible,
}

/// The kind of an unsolicited packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    /// SYN without ACK (ECN bits allowed): nmap `-sS`, masscan, or a real client.
    Syn,
    /// FIN alone: nmap `-sF`.
    Fin,
    /// No flags at all: nmap `-sN`.
    Null,
    /// FIN+PSH+URG without ACK: nmap `-sX`.
    Xmas,
    /// FIN+ACK with no conversation behind it: nmap `-sM`.
    Maimon,
    /// Any other flag set a client would not send first (SYN+FIN, URG alone, …).
    Odd(TcpFlags),
    /// A segment with ACK that matched no socket at all, as the kernel's bare RST answer shows:
    /// nmap `-sA` and `-sW`.
    Ack,
    /// A UDP datagram.
    Udp,
    /// A TCP probe whose first IP fragment did not hold its whole TCP header (RFC 1858 §3.1's
    /// tiny fragment: `nmap -f`, `--mtu 16`), reassembled whole by the kernel.
    TinyFragment,
    /// A probe whose IP fragments overlapped (RFC 1858 §3.2, RFC 3128): the kernel discards
    /// the datagram (RFC 5722); its first fragment named the port.
    FragmentOverlap,
    /// An SCTP INIT (verification tag 0) to a port: nmap `-sY`, or a real client. Issue 28.
    SctpInit,
    /// An SCTP COOKIE ECHO with no INIT ACK of ours before it: nmap `-sZ`.
    SctpCookieEcho,
    /// A packet of an IP protocol other than TCP, UDP, SCTP and ICMP: one probe of an IP
    /// protocol scan (nmap `-sO`), whose "port" is the protocol number.
    IpProtocol,
    /// nmap's service probes, as the first bytes of connections the host accepted (nmap
    /// `-sV`; [`crate::detect::version`]). Never scored by trap port.
    Version,
}

impl ProbeKind {
    /// How much one probe of this kind says about intent.
    pub fn evidence(self) -> Evidence {
        match self {
            // An INIT is what an SCTP client sends; one packet of a protocol is what a peer
            // speaking it sends: what marks a scan is how many ports or protocols.
            ProbeKind::Syn
            | ProbeKind::Udp
            | ProbeKind::SctpInit
            | ProbeKind::IpProtocol
            | ProbeKind::Version => Evidence::Ordinary,
            // No client sends a COOKIE ECHO that no INIT ACK asked for, as none sends a FIN
            // on no connection.
            ProbeKind::Fin | ProbeKind::Maimon | ProbeKind::Ack | ProbeKind::SctpCookieEcho => {
                Evidence::Stealth
            }
            ProbeKind::Null | ProbeKind::Xmas => Evidence::Impossible,
            // No TCP/IP stack cuts its own TCP header in IP fragments (Linux sets DF on TCP and
            // never fragments below 68 bytes, IPv6 below 1,280) nor overlaps its fragments.
            ProbeKind::TinyFragment | ProbeKind::FragmentOverlap => Evidence::Impossible,
            ProbeKind::Odd(flags) => {
                if flags.contains(TcpFlags::SYN)
                    && (flags.contains(TcpFlags::FIN) || flags.contains(TcpFlags::RST))
                {
                    Evidence::Impossible
                } else {
                    Evidence::Stealth
                }
            }
        }
    }

    /// The scan name an administrator knows: `syn`, `fin`, `null`, `xmas`, `maimon`,
    /// `odd-flags`, `ack`, `udp`, `tiny-fragment`, `fragment-overlap`, `sctp-init`,
    /// `sctp-cookie-echo`, `ip-protocol`, `version`.
    pub fn scan_name(self) -> &'static str {
        match self {
            ProbeKind::Syn => "syn",
            ProbeKind::Fin => "fin",
            ProbeKind::Null => "null",
            ProbeKind::Xmas => "xmas",
            ProbeKind::Maimon => "maimon",
            ProbeKind::Odd(_) => "odd-flags",
            ProbeKind::Ack => "ack",
            ProbeKind::Udp => "udp",
            ProbeKind::TinyFragment => "tiny-fragment",
            ProbeKind::FragmentOverlap => "fragment-overlap",
            ProbeKind::SctpInit => "sctp-init",
            ProbeKind::SctpCookieEcho => "sctp-cookie-echo",
            ProbeKind::IpProtocol => "ip-protocol",
            ProbeKind::Version => "version",
        }
    }
}

/// Classifies a TCP segment by its flags alone: the kind of probe it would be if unsolicited, or
/// `None` when it is conversation traffic (SYN+ACK, ACK, RST, PSH+ACK, RST+ACK, …).
///
/// The ECN bits are ignored, so an ECN-setup SYN (SYN+ECE+CWR) is a plain [`ProbeKind::Syn`].
/// A bare RST is conversation too: stacks send it, without ACK, to answer a stray ACK.
///
/// ```
/// use scansentry::wire::{Evidence, ProbeKind, TcpFlags, classify_tcp};
///
/// assert_eq!(classify_tcp(TcpFlags::SYN | TcpFlags::ECE | TcpFlags::CWR), Some(ProbeKind::Syn));
/// assert_eq!(classify_tcp(TcpFlags::SYN | TcpFlags::ACK), None);
/// let syn_fin = classify_tcp(TcpFlags::SYN | TcpFlags::FIN).unwrap();
/// assert_eq!(syn_fin.evidence(), Evidence::Impossible);
/// ```
pub fn classify_tcp(flags: TcpFlags) -> Option<ProbeKind> {
    const FIN: u16 = TcpFlags::FIN.0;
    const SYN: u16 = TcpFlags::SYN.0;
    const RST: u16 = TcpFlags::RST.0;
    const PSH: u16 = TcpFlags::PSH.0;
    const ACK: u16 = TcpFlags::ACK.0;
    const URG: u16 = TcpFlags::URG.0;

    let c = flags.control();
    // SYN with FIN or RST is never legitimate, with or without ACK.
    if c & SYN != 0 && c & (FIN | RST) != 0 {
        return Some(ProbeKind::Odd(flags));
    }
    if c & ACK != 0 {
        return (c == ACK | FIN).then_some(ProbeKind::Maimon);
    }
    match c {
        0 => Some(ProbeKind::Null),
        SYN => Some(ProbeKind::Syn),
        FIN => Some(ProbeKind::Fin),
        x if x == FIN | PSH | URG => Some(ProbeKind::Xmas),
        RST => None,
        _ => Some(ProbeKind::Odd(flags)),
    }
}
