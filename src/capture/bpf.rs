//! The kernel capture filter, as pcap filter text. **Pure.**
//!
//! The kernel hands over only what the pipeline can use: TCP segments that open or close a
//! conversation or carry no ACK (every probe kind, and the handshakes and closes the
//! conversation memory needs), UDP, SCTP packets whose first chunk is an INIT, INIT ACK or
//! COOKIE ECHO (the probes of `nmap -sY` and `-sZ`, and a listener's answer), packets of every
//! other IP protocol but ICMP (the probes of an IP protocol scan, `nmap -sO`, and the packets
//! of a tunnel this host speaks, which make them conversations), and IPv6 packets whose next
//! header is none of TCP, UDP, ICMPv6 and SCTP (extension headers, which userspace walks; the
//! other IP protocols). The bulk of a busy host's traffic — segments with ACK and neither SYN
//! nor FIN, RSTs of established connections, SCTP DATA and SACK, ICMP — stays in the kernel.
//! A tunnel's packets (GRE, ESP, IP in IP) do not: like UDP, they cost a copy each, never
//! memory.
//!
//! IPv4 fragments pass whatever they hold (MF or an offset: `ip[6:2] & 0x3fff`), tested
//! first: pcap's `tcp[…]` matches only a first fragment, and a load past the end of a tiny
//! one ends the whole program with a refusal; the reassembler needs every fragment of a
//! datagram; IPv6 fragments pass as a next header
//! other than TCP, UDP and ICMPv6 (44).
//!
//! Of the segments with ACK, the kernel also hands over those whose first four payload bytes
//! begin one of nmap's service probes ([`crate::detect::service_probes::tcp_prefixes`]): the
//! first segment of a version scan's connections, which is all [`crate::detect::version`]
//! looks at. An ordinary request that begins the same way (`GET `, `OPTI`, a TLS record
//! header `16 03 00 00`) passes too, and is told apart in userspace by its length and bytes.
//!
//! pcap's `tcp[tcpflags]` only works for IPv4 (its compiled code checks for EtherType 0x0800),
//! so IPv6 TCP is matched on the fixed header: next header at byte 6, flags at byte 40 + 13.

pub use crate::config::Interfaces;

/// ARPHRD_LOOPBACK, the hardware type of loopback in a Linux cooked header (bytes 2-3).
const ARPHRD_LOOPBACK: u16 = 772;

/// What the kernel keeps, whatever the link: the pcap method compiles it for its device's link
/// type, the raw method for raw IP ([`crate::capture::raw::filter`]).
pub const PROBES: &str = "(ip and ip[6:2] & 0x3fff != 0) \
     or (ip and tcp and (tcp[tcpflags] & tcp-ack == 0 or tcp[tcpflags] & (tcp-syn|tcp-fin) != 0)) \
     or (ip6 and ip6[6] == 6 and (ip6[53] & 0x10 == 0 or ip6[53] & 0x03 != 0)) \
     or (ip6 and ip6[6] != 6 and ip6[6] != 17 and ip6[6] != 58 and ip6[6] != 132) \
     or udp \
     or (ip and ip proto 132 and (ip[((ip[0] & 0xf) << 2) + 12] == 1 \
         or ip[((ip[0] & 0xf) << 2) + 12] == 2 or ip[((ip[0] & 0xf) << 2) + 12] == 10)) \
     or (ip6 and ip6[6] == 132 and (ip6[52] == 1 or ip6[52] == 2 or ip6[52] == 10)) \
     or (ip and not tcp and not udp and not icmp and not ip proto 132) \
     or (ip and tcp and (tcp[((tcp[12] & 0xf0) >> 2):4] = 0x00000071 or tcp[((tcp[12] & 0xf0) >> 2):4] = 0x000000a4 \
     or tcp[((tcp[12] & 0xf0) >> 2):4] = 0x00030001 or tcp[((tcp[12] & 0xf0) >> 2):4] = 0x000c0000 \
     or tcp[((tcp[12] & 0xf0) >> 2):4] = 0x001e0006 or tcp[((tcp[12] & 0xf0) >> 2):4] = 0x005a0000 \
     or tcp[((tcp[12] & 0xf0) >> 2):4] = 0x010000fd or tcp[((tcp[12] & 0xf0) >> 2):4] = 0x01646566 \
     or tcp[((tcp[12] & 0xf0) >> 2):4] = 0x0300000b or tcp[((tcp[12] & 0xf0) >> 2):4] = 0x0300002a \
     or tcp[((tcp[12] & 0xf0) >> 2):4] = 0x04010016 or tcp[((tcp[12] & 0xf0) >> 2):4] = 0x05040001 \
     or tcp[((tcp[12] & 0xf0) >> 2):4] = 0x0d0a0d0a or tcp[((tcp[12] & 0xf0) >> 2):4] = 0x12010034 \
     or tcp[((tcp[12] & 0xf0) >> 2):4] = 0x16030000 or tcp[((tcp[12] & 0xf0) >> 2):4] = 0x300c0201 \
     or tcp[((tcp[12] & 0xf0) >> 2):4] = 0x30840000 or tcp[((tcp[12] & 0xf0) >> 2):4] = 0x3a000000 \
     or tcp[((tcp[12] & 0xf0) >> 2):4] = 0x446d6454 or tcp[((tcp[12] & 0xf0) >> 2):4] = 0x47455420 \
     or tcp[((tcp[12] & 0xf0) >> 2):4] = 0x47494f50 or tcp[((tcp[12] & 0xf0) >> 2):4] = 0x48454c50 \
     or tcp[((tcp[12] & 0xf0) >> 2):4] = 0x4a524d49 or tcp[((tcp[12] & 0xf0) >> 2):4] = 0x4f505449 \
     or tcp[((tcp[12] & 0xf0) >> 2):4] = 0x544e4d50 or tcp[((tcp[12] & 0xf0) >> 2):4] = 0x6c000b00 \
     or tcp[((tcp[12] & 0xf0) >> 2):4] = 0x80000028)) \
     or (ip6 and ip6[6] == 6 and (ip6[40 + ((ip6[52] & 0xf0) >> 2):4] = 0x00000071 or ip6[40 + ((ip6[52] & 0xf0) >> 2):4] = 0x000000a4 \
     or ip6[40 + ((ip6[52] & 0xf0) >> 2):4] = 0x00030001 or ip6[40 + ((ip6[52] & 0xf0) >> 2):4] = 0x000c0000 \
     or ip6[40 + ((ip6[52] & 0xf0) >> 2):4] = 0x001e0006 or ip6[40 + ((ip6[52] & 0xf0) >> 2):4] = 0x005a0000 \
     or ip6[40 + ((ip6[52] & 0xf0) >> 2):4] = 0x010000fd or ip6[40 + ((ip6[52] & 0xf0) >> 2):4] = 0x01646566 \
     or ip6[40 + ((ip6[52] & 0xf0) >> 2):4] = 0x0300000b or ip6[40 + ((ip6[52] & 0xf0) >> 2):4] = 0x0300002a \
     or ip6[40 + ((ip6[52] & 0xf0) >> 2):4] = 0x04010016 or ip6[40 + ((ip6[52] & 0xf0) >> 2):4] = 0x05040001 \
     or ip6[40 + ((ip6[52] & 0xf0) >> 2):4] = 0x0d0a0d0a or ip6[40 + ((ip6[52] & 0xf0) >> 2):4] = 0x12010034 \
     or ip6[40 + ((ip6[52] & 0xf0) >> 2):4] = 0x16030000 or ip6[40 + ((ip6[52] & 0xf0) >> 2):4] = 0x300c0201 \
     or ip6[40 + ((ip6[52] & 0xf0) >> 2):4] = 0x30840000 or ip6[40 + ((ip6[52] & 0xf0) >> 2):4] = 0x3a000000 \
     or ip6[40 + ((ip6[52] & 0xf0) >> 2):4] = 0x446d6454 or ip6[40 + ((ip6[52] & 0xf0) >> 2):4] = 0x47455420 \
     or ip6[40 + ((ip6[52] & 0xf0) >> 2):4] = 0x47494f50 or ip6[40 + ((ip6[52] & 0xf0) >> 2):4] = 0x48454c50 \
     or ip6[40 + ((ip6[52] & 0xf0) >> 2):4] = 0x4a524d49 or ip6[40 + ((ip6[52] & 0xf0) >> 2):4] = 0x4f505449 \
     or ip6[40 + ((ip6[52] & 0xf0) >> 2):4] = 0x544e4d50 or ip6[40 + ((ip6[52] & 0xf0) >> 2):4] = 0x6c000b00 \
     or ip6[40 + ((ip6[52] & 0xf0) >> 2):4] = 0x80000028))";

/// The pcap method's filter for a capture on `device` (`any` or an interface): [`PROBES`], and
/// on `any` without loopback, a test of the cooked header's hardware type.
pub fn filter(interfaces: &Interfaces) -> String {
    match interfaces {
        Interfaces::AllButLoopback => format!("link[2:2] != {ARPHRD_LOOPBACK} and ({PROBES})"),
        Interfaces::All | Interfaces::Named(_) => PROBES.to_string(),
    }
}

/// The pcap devices to open.
pub fn devices(interfaces: &Interfaces) -> Vec<String> {
    match interfaces {
        Interfaces::AllButLoopback | Interfaces::All => vec!["any".into()],
        Interfaces::Named(names) => names.clone(),
    }
}

/// The integration tests' frame builder (etherparse's `PacketBuilder`, independent of our parser).
#[cfg(test)]
#[path = "../../tests/support/frames.rs"]
#[allow(
    dead_code,
    reason = "the capture-file writer is for the integration tests"
)]
pub(crate) mod frames;

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    use etherparse::IpNumber;

    use super::frames;

    fn tcp4(flags: u16) -> Vec<u8> {
        frames::tcp_frame(ip("203.0.113.7"), ip("198.51.100.1"), 40000, 22, flags)
    }

    fn tcp6(flags: u16) -> Vec<u8> {
        frames::tcp_frame(ip("2001:db8::7"), ip("2001:db8::1"), 40000, 22, flags)
    }

    fn udp4() -> Vec<u8> {
        frames::udp_frame(ip("203.0.113.7"), ip("198.51.100.1"), 5000, 161)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn passes(filter: &str, frame: &[u8]) -> bool {
        let dead = pcap::Capture::dead(pcap::Linktype::ETHERNET).unwrap();
        let program = dead.compile(filter, true).expect("the filter compiles");
        program.filter(frame)
    }

    #[test]
    fn probes_and_handshakes_pass_bulk_traffic_does_not() {
        let f = filter(&Interfaces::All);
        for (what, frame, expected) in [
            ("SYN", tcp4(0x02), true),
            ("NULL", tcp4(0x00), true),
            ("XMAS", tcp4(0x29), true),
            ("FIN", tcp4(0x01), true),
            ("FIN+ACK", tcp4(0x11), true),
            ("SYN+ACK", tcp4(0x12), true),
            ("ACK", tcp4(0x10), false),
            ("PSH+ACK", tcp4(0x18), false),
            ("RST+ACK", tcp4(0x14), false),
            ("RST", tcp4(0x04), true),
            ("UDP", udp4(), true),
            ("IPv6 SYN", tcp6(0x02), true),
            ("IPv6 XMAS", tcp6(0x29), true),
            ("IPv6 FIN+ACK", tcp6(0x11), true),
            ("IPv6 ACK", tcp6(0x10), false),
            ("IPv6 PSH+ACK", tcp6(0x18), false),
        ] {
            assert_eq!(passes(&f, &frame), expected, "{what}");
        }
    }

    /// Issue 28: SCTP's INIT, INIT ACK and COOKIE ECHO and the packets of other IP protocols
    /// pass, both families; SCTP's association traffic and ICMP stay in the kernel.
    #[test]
    fn sctp_handshakes_and_other_protocols_pass_icmp_and_sctp_data_do_not() {
        let f = filter(&Interfaces::All);
        for (src, dst) in [
            (ip("203.0.113.7"), ip("198.51.100.1")),
            (ip("2001:db8::7"), ip("2001:db8::1")),
        ] {
            let sctp = |chunk| frames::sctp_frame(src, dst, 40000, 38412, chunk, 0);
            let icmp = if src.is_ipv4() { 1 } else { 58 };
            for (what, frame, expected) in [
                ("INIT", sctp(1), true),
                ("INIT ACK", sctp(2), true),
                ("COOKIE ECHO", sctp(10), true),
                ("DATA", sctp(0), false),
                ("SACK", sctp(3), false),
                ("ABORT", sctp(6), false),
                ("GRE", frames::ip_frame(src, dst, 47, &[0; 4]), true),
                ("ESP", frames::ip_frame(src, dst, 50, &[0; 16]), true),
                (
                    "empty protocol 253",
                    frames::ip_frame(src, dst, 253, &[]),
                    true,
                ),
                (
                    "ICMP",
                    frames::ip_frame(src, dst, icmp, &[8, 0, 0, 0]),
                    false,
                ),
            ] {
                assert_eq!(passes(&f, &frame), expected, "{what} from {src}");
            }
        }
    }

    #[test]
    fn ipv6_extension_headers_go_to_userspace() {
        // An IPv6 header announcing a hop-by-hop header (0): the filter cannot see the flags.
        let mut frame = tcp6(0x10);
        let ip = 14;
        frame[ip + 6] = u8::from(IpNumber::IPV6_HEADER_HOP_BY_HOP);
        assert!(passes(&filter(&Interfaces::All), &frame));
    }

    #[test]
    fn every_fragment_passes() {
        let f = filter(&Interfaces::All);
        for (frame, size) in [(tcp4(0x02), 8), (tcp4(0x10), 8), (tcp6(0x02), 8)] {
            for (i, fragment) in frames::fragments(&frame, size, 1).iter().enumerate() {
                assert!(passes(&f, fragment), "fragment {i} of {frame:02x?}");
            }
        }
        let big = frames::udp_frame_with(ip("203.0.113.7"), ip("198.51.100.1"), 1, 2, &[0; 3000]);
        for fragment in frames::fragments(&big, 1480, 2) {
            assert!(passes(&f, &fragment));
        }
        // An ACK whole is still left in the kernel.
        assert!(!passes(&f, &tcp4(0x10)));
    }

    #[test]
    fn every_variant_compiles() {
        for i in [
            Interfaces::AllButLoopback,
            Interfaces::All,
            Interfaces::Named(vec!["eth0".into()]),
        ] {
            let dead = pcap::Capture::dead(pcap::Linktype::LINUX_SLL).unwrap();
            assert!(dead.compile(&filter(&i), true).is_ok(), "{i:?}");
        }
        assert_eq!(devices(&Interfaces::AllButLoopback), ["any"]);
        assert_eq!(
            devices(&Interfaces::Named(vec!["eth0".into(), "eth1".into()])),
            ["eth0", "eth1"]
        );
    }

    /// A PSH+ACK data segment carrying `payload`, with the timestamp option real stacks send
    /// (the payload's offset depends on the header's length).
    fn data(src: &str, payload: &[u8]) -> Vec<u8> {
        use etherparse::{PacketBuilder, TcpOptionElement};
        let eth = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0xa], [2, 0, 0, 0, 0, 0xb]);
        let options = [
            TcpOptionElement::Noop,
            TcpOptionElement::Noop,
            TcpOptionElement::Timestamp(1, 2),
        ];
        let mut out = Vec::new();
        match (
            ip(src),
            ip(if src.contains(':') {
                "2001:db8::1"
            } else {
                "198.51.100.1"
            }),
        ) {
            (IpAddr::V4(s), IpAddr::V4(d)) => eth
                .ipv4(s.octets(), d.octets(), 64)
                .tcp(40000, 80, 1, 502)
                .ack(1)
                .psh()
                .options(&options)
                .unwrap()
                .write(&mut out, payload),
            (IpAddr::V6(s), IpAddr::V6(d)) => eth
                .ipv6(s.octets(), d.octets(), 64)
                .tcp(40000, 80, 1, 502)
                .ack(1)
                .psh()
                .options(&options)
                .unwrap()
                .write(&mut out, payload),
            _ => unreachable!(),
        }
        .unwrap();
        out
    }

    #[test]
    fn data_segments_pass_only_when_they_begin_like_one_of_nmaps_service_probes() {
        use crate::detect::service_probes::{TCP, tcp_prefixes};
        let f = filter(&Interfaces::All);
        for src in ["203.0.113.7", "2001:db8::7"] {
            for probe in TCP {
                assert!(passes(&f, &data(src, probe.head)), "{src} {}", probe.name);
            }
            for (what, payload, expected) in [
                // Begins like GetRequest: passes, and userspace tells it apart.
                (
                    "HTTP/1.1 request",
                    &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
                    true,
                ),
                ("POST", b"POST /api HTTP/1.1\r\n", false),
                (
                    "TLS 1.2 client hello",
                    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
                    false,
                ),
                ("SSH banner", b"SSH-2.0-OpenSSH_9.2p1\r\n", false),
                ("three bytes", b"GET", false),
                ("no payload", b"", false),
            ] {
                assert_eq!(passes(&f, &data(src, payload)), expected, "{src} {what}");
            }
        }
        // The filter's words are the table's, every one of them.
        for word in tcp_prefixes() {
            assert!(PROBES.contains(&format!("{word:#010x}")), "{word:#010x}");
        }
        assert_eq!(
            PROBES.matches("tcp[((tcp[12] & 0xf0) >> 2):4]").count(),
            tcp_prefixes().len()
        );
        // The raw method's program (raw IP) keeps the same, well under the kernel's limit.
        let raw = crate::capture::raw::filter::program().expect("it compiles for raw IP");
        assert!(
            raw.instructions().len() < 200,
            "{}",
            raw.instructions().len()
        );
        let dead = pcap::Capture::dead(pcap::Linktype(12)).unwrap();
        let raw = dead.compile(PROBES, true).unwrap();
        for src in ["203.0.113.7", "2001:db8::7"] {
            for (payload, expected) in [
                (&b"OPTIONS / RTSP/1.0\r\n\r\n"[..], true),
                (b"POST /", false),
            ] {
                assert_eq!(raw.filter(&data(src, payload)[14..]), expected, "{src}");
            }
        }
    }
}
