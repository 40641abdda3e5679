//! The Internet checksums of a captured packet (RFC 1071): would the kernel accept it?
//!
//! A capture sees frames before the kernel judges them, so a packet with a wrong checksum is
//! captured although no socket ever sees it. [`Integrity`] says what the bytes in hand allow one
//! to tell. The rule for checksum offload: a sender's stack that leaves the transport checksum
//! to the network card writes the pseudo-header's sum into the field (Linux's
//! `CHECKSUM_PARTIAL`), and such frames are captured as they are: this host's own frames on
//! their way out, and frames over loopback on their way in, which the kernel takes without
//! checking since they never left memory. Only the capture's metadata (the packet type, the
//! device type) tells where a frame was, so [`transport`] reports the form as
//! [`Integrity::Offloaded`], and `wire::parse_with` makes it [`Integrity::PseudoOnly`] when
//! the capture says the frame arrived over a device other than loopback: the kernel checks
//! that sum and drops the packet (an off-path forger's). A frame
//! that came in over a wire carries a finished checksum, whatever the card verified, so
//! anything else that does not verify is [`Integrity::Bad`].

use std::net::IpAddr;

/// What the checksums of one packet say, as far as the captured bytes let them be checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Integrity {
    /// The IPv4 header's and the transport's checksums verify.
    Valid,
    /// The transport checksum holds only the pseudo-header's sum, on a frame the kernel has
    /// not checked yet (this host's frames on their way out, loopback) or whose capture does
    /// not say which way it went: left by the sender's stack for the card to finish. A forger
    /// gains nothing by it that a right checksum would not give.
    Offloaded,
    /// The transport checksum holds only the pseudo-header's sum, on a frame the capture says
    /// arrived over a device other than loopback: the kernel checks it and
    /// drops the packet, so such a probe is no evidence. (A veth peer's own stack sends this
    /// form too, which its kernel takes unchecked; the capture does not tell it from a
    /// forger's, so it does not count either.)
    PseudoOnly,
    /// The capture cut the segment short (the snap length), so its checksum cannot be summed;
    /// the IPv4 header's was checked.
    Unverified,
    /// A checksum is wrong, or a UDP length does not fit: the kernel drops the packet before
    /// any socket sees it.
    Bad,
}

/// A running ones'-complement sum, 32 bits at a time into 64 (folded at the end: the sum of
/// 32-bit words folds to the sum of 16-bit words, RFC 1071 §2).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Sum(u64);

impl Sum {
    pub(super) fn add(self, bytes: &[u8]) -> Sum {
        let mut acc = self.0;
        let mut words = bytes.chunks_exact(4);
        for w in &mut words {
            acc += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
        }
        // The last one to three bytes, padded with zeros (spelled out: a copy of a length
        // known only at run time is a call to memmove, issue 29).
        let tail = match *words.remainder() {
            [a] => [a, 0, 0, 0],
            [a, b] => [a, b, 0, 0],
            [a, b, c] => [a, b, c, 0],
            _ => [0; 4],
        };
        Sum(acc + u64::from(u32::from_be_bytes(tail)))
    }

    fn add_u32(self, value: u32) -> Sum {
        Sum(self.0 + u64::from(value))
    }

    /// Two running sums as one (their bytes started at offsets a multiple of 4 apart, as IP
    /// fragments do: offsets are multiples of 8).
    pub(super) fn join(self, other: Sum) -> Sum {
        Sum(self.0.saturating_add(other.0))
    }

    /// Folded to 16 bits, end-around carry; never 0 for a non-zero sum.
    pub(super) fn fold(self) -> u16 {
        let mut s = self.0;
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        u16::try_from(s).unwrap_or(u16::MAX) // s ≤ 0xffff after the loop
    }
}

/// Whether an IPv4 header (all of it, options included) sums to all ones.
pub(crate) fn ipv4_header_ok(header: &[u8]) -> bool {
    Sum::default().add(header).fold() == 0xffff
}

/// The protocol numbers that the pseudo-header carries.
pub(crate) const TCP: u8 = 6;
/// See [`TCP`].
pub(crate) const UDP: u8 = 17;

/// Judges a TCP or UDP segment. `segment` is what the IP header says the payload is (cut
/// short when `complete` is false); `src` and `dst` make the pseudo-header.
pub(crate) fn transport(
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    segment: &[u8],
    complete: bool,
) -> Integrity {
    let (field_at, len) = if proto == UDP {
        let (Some(ulen), Some(field)) = (
            segment
                .get(4..6)
                .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]]))),
            segment.get(6..8).map(|b| u16::from_be_bytes([b[0], b[1]])),
        ) else {
            return Integrity::Unverified;
        };
        if field == 0 {
            // "No checksum": allowed over IPv4 only (RFC 768; RFC 8200 §8.1 for IPv6).
            return if src.is_ipv4() {
                Integrity::Valid
            } else {
                Integrity::Bad
            };
        }
        if ulen < 8 {
            return Integrity::Bad;
        }
        if ulen > segment.len() {
            // Longer than the datagram: the kernel drops it; or only longer than the capture.
            return if complete {
                Integrity::Bad
            } else {
                Integrity::Unverified
            };
        }
        (6, ulen)
    } else {
        if !complete {
            return Integrity::Unverified;
        }
        (16, segment.len())
    };
    let Some(field) = segment.get(field_at..field_at + 2) else {
        return Integrity::Unverified;
    };
    let field = u16::from_be_bytes([field[0], field[1]]);
    let Ok(len32) = u32::try_from(len) else {
        return Integrity::Bad;
    };
    let pseudo = pseudo(src, dst, proto, len32);
    let total = pseudo.add(&segment[..len]);
    if total.fold() == 0xffff {
        Integrity::Valid
    } else if field == pseudo.fold() {
        Integrity::Offloaded
    } else {
        Integrity::Bad
    }
}

/// The pseudo-header's sum (RFC 768, RFC 793; RFC 8200 §8.1 for IPv6).
pub(super) fn pseudo(src: IpAddr, dst: IpAddr, proto: u8, len: u32) -> Sum {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Sum::default()
            .add(&s.octets())
            .add(&d.octets())
            .add_u32(u32::from(proto))
            .add_u32(len),
        (s, d) => Sum::default()
            .add(&octets16(s))
            .add(&octets16(d))
            .add_u32(len)
            .add_u32(u32::from(proto)),
    }
}

fn octets16(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 §3's example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
    #[test]
    fn the_sum_is_rfc_1071s() {
        let sum = Sum::default().add(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
        assert_eq!(sum.fold(), 0xddf2);
        // Odd lengths are padded with a zero byte.
        assert_eq!(Sum::default().add(&[0x12]).fold(), 0x1200);
        assert_eq!(Sum::default().add(&[0x12, 0x34]).fold(), 0x1234);
        assert_eq!(Sum::default().add(&[0x12, 0x34, 0x56]).fold(), 0x6834);
    }

    /// Whatever the bytes, a verdict and no panic: every prefix of a datagram and a segment.
    #[test]
    fn short_segments_are_unverified_not_a_panic() {
        let (src, dst) = (
            "203.0.113.7".parse().unwrap(),
            "198.51.100.1".parse().unwrap(),
        );
        let segment = [0x9c, 0x40, 0, 53, 0, 9, 0x12, 0x34, 0xff];
        for cut in 0..segment.len() {
            for proto in [TCP, UDP] {
                let _ = transport(src, dst, proto, &segment[..cut], true);
                let _ = transport(src, dst, proto, &segment[..cut], false);
            }
        }
        assert_eq!(
            transport(src, dst, UDP, &segment[..7], true),
            Integrity::Unverified
        );
    }

    #[test]
    fn an_ipv4_header_is_checked_whole() {
        // 45 00 00 3c 1c 46 40 00 40 06 b1 e6 ac 10 0a 63 ac 10 0a 0c (a textbook header).
        let mut h = [
            0x45, 0x00, 0x00, 0x3c, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0xb1, 0xe6, 0xac, 0x10,
            0x0a, 0x63, 0xac, 0x10, 0x0a, 0x0c,
        ];
        assert!(ipv4_header_ok(&h));
        h[11] ^= 1;
        assert!(!ipv4_header_ok(&h));
    }
}
