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
     or (ip and not tcp and not udp and not icmp and not ip proto 132)";

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
}
