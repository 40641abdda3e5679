use super::*;
use proptest::prelude::*;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Bytes from `tcpdump -xx` output (whitespace-separated hex groups).
fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(u8::is_ascii_hexdigit)
        .map(|b| match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => b - b'A' + 10,
        })
        .collect();
    digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
}

/// masscan SYN to port 697 from ../shared/pcaps/tcp_0_1000_20190821.pcap: Ethernet, one VLAN
/// tag (id 943), IPv4, TCP.
const MASSCAN_SYN: &str = "407c 7db1 e9b7 0024 3898 cb00 8100 03af
    0800 4500 0028 9c44 0000 fc06 087a ac1f 0f66 c67c 980f c8ce 02b9 7dba 06f2 0000
    0000 5002 0400 419d 0000 0000 1631 eeb5";

/// `tcpdump -i any -y LINUX_SLL2`: 127.0.0.1:53802 > 127.0.0.1:7 SYN.
const SLL2_SYN: &str = "0800 0000 0000 0001 0304 0006 0000 0000
    0000 0000 4500 003c c161 4000 4006 7b58 7f00 0001 7f00 0001 d22a 0007 6806 30db
    0000 0000 a002 ffd7 fe30 0000 0204 ffd7 0402 080a 9afd c2f0 0000 0000 0103 030a";

/// `tcpdump -i any -y LINUX_SLL`: [::1]:51416 > [::1]:9 SYN.
const SLL_SYN6: &str = "0000 0304 0006 0000 0000 0000 0000 86dd
    600d 785b 0028 0640 0000 0000 0000 0000 0000 0000 0000 0001 0000 0000 0000 0000
    0000 0000 0000 0001 c8d8 0009 c7d2 8a25 0000 0000 a002 ffc4 0030 0000 0204 ffc4
    0402 080a 195b d7cf 0000 0000 0103 030a";

/// Same capture: the RST+ACK answer, [::1]:9 > [::1]:51416.
const SLL_RSTACK6: &str = "0000 0304 0006 0000 0000 0000 0000 86dd
    6007 37f5 0014 0640 0000 0000 0000 0000 0000 0000 0000 0001 0000 0000 0000 0000
    0000 0000 0000 0001 0009 c8d8 0000 0000 c7d2 8a26 5014 0000 001c 0000";

/// Raw IPv6 2001:db8::1 > 2001:db8::2 with a hop-by-hop and a destination-options header
/// (each 8 bytes of PadN), then a TCP FIN from port 40000 to port 22.
const RAW6_EXT_FIN: &str = "6000 0000 0024 0040
    2001 0db8 0000 0000 0000 0000 0000 0001 2001 0db8 0000 0000 0000 0000 0000 0002
    3c00 0104 0000 0000  0600 0104 0000 0000
    9c40 0016 0000 0001 0000 0000 5001 0400 0000 0000";

/// BSD loopback (family 2, little endian), IPv4 198.51.100.1:53 > 198.51.100.2:5353 UDP.
const NULL_UDP: &str = "0200 0000
    4500 001c 0000 4000 4011 0000 c633 6401 c633 6402 0035 14e9 0008 0000";

#[test]
fn ethernet_vlan_ipv4_syn_from_masscan() {
    let p = parse(LinkType::Ethernet, &hex(MASSCAN_SYN)).expect("parses");
    assert_eq!(p.src, IpAddr::V4(Ipv4Addr::new(172, 31, 15, 102)));
    assert_eq!(p.dst, IpAddr::V4(Ipv4Addr::new(198, 124, 152, 15)));
    assert_eq!((p.src_port, p.dst_port), (51406, 697));
    assert_eq!(p.tcp_flags, Some(TcpFlags::SYN));
    assert_eq!(p.probe_kind(), Some(ProbeKind::Syn));
}

#[test]
fn linux_cooked_v2_ipv4_syn() {
    let p = parse(LinkType::LinuxSll2, &hex(SLL2_SYN)).expect("parses");
    assert_eq!(p.src, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!((p.src_port, p.dst_port), (53802, 7));
    assert_eq!(p.probe_kind(), Some(ProbeKind::Syn));
}

#[test]
fn linux_cooked_v1_ipv6_syn_and_its_rst_ack_answer() {
    let syn = parse(LinkType::LinuxSll, &hex(SLL_SYN6)).expect("parses");
    assert_eq!(syn.dst, IpAddr::V6(Ipv6Addr::LOCALHOST));
    assert_eq!((syn.src_port, syn.dst_port), (51416, 9));
    assert_eq!(syn.probe_kind(), Some(ProbeKind::Syn));

    let rst = parse(LinkType::LinuxSll, &hex(SLL_RSTACK6)).expect("parses");
    assert_eq!(rst.tcp_flags, Some(TcpFlags::RST | TcpFlags::ACK));
    assert_eq!(rst.probe_kind(), None, "an RST+ACK answer is not a probe");
}

/// The kernel's packet type is the frame's direction, whatever its addresses say.
#[test]
fn cooked_frames_carry_the_kernels_direction() {
    let syn = parse(LinkType::LinuxSll2, &hex(SLL2_SYN)).unwrap();
    assert_eq!(syn.direction, Direction::Incoming);
    let mut out = hex(SLL2_SYN);
    out[10] = 4; // PACKET_OUTGOING
    assert_eq!(
        parse(LinkType::LinuxSll2, &out).unwrap().direction,
        Direction::Outgoing
    );
    let mut other = hex(SLL_SYN6);
    assert_eq!(
        parse(LinkType::LinuxSll, &other).unwrap().direction,
        Direction::Incoming
    );
    for (pkttype, direction) in [
        (1, Direction::Elsewhere),
        (3, Direction::Elsewhere),
        (4, Direction::Outgoing),
        (9, Direction::Unknown),
    ] {
        other[1] = pkttype;
        assert_eq!(
            parse(LinkType::LinuxSll, &other).unwrap().direction,
            direction
        );
    }
    // Frames without a packet type leave it to the caller.
    let eth = parse(LinkType::Ethernet, &hex(MASSCAN_SYN)).unwrap();
    assert_eq!(eth.direction, Direction::Unknown);
    let seen = |direction, ifindex| Metadata {
        direction,
        ifindex,
        loopback: false,
        whole: false,
    };
    assert_eq!(
        parse_with(
            LinkType::Ethernet,
            &hex(MASSCAN_SYN),
            seen(Direction::Outgoing, None)
        )
        .unwrap()
        .direction,
        Direction::Outgoing
    );
    assert_eq!(
        parse_with(
            LinkType::LinuxSll2,
            &hex(SLL2_SYN),
            seen(Direction::Unknown, None)
        )
        .unwrap()
        .direction,
        Direction::Incoming
    );
    // Cooked v2 also names the interface (here 1, loopback); v1 does not.
    assert_eq!(syn.ifindex, Some(1));
    assert_eq!(
        parse(LinkType::LinuxSll, &hex(SLL_SYN6)).unwrap().ifindex,
        None
    );
    assert_eq!(
        parse_with(
            LinkType::Ethernet,
            &hex(MASSCAN_SYN),
            seen(Direction::Incoming, Some(7))
        )
        .unwrap()
        .ifindex,
        Some(7)
    );
}

#[test]
fn raw_ipv6_extension_headers_are_walked() {
    let p = parse(LinkType::RawIp, &hex(RAW6_EXT_FIN)).expect("parses");
    assert_eq!(p.src, "2001:db8::1".parse::<IpAddr>().unwrap());
    assert_eq!((p.src_port, p.dst_port), (40000, 22));
    assert_eq!(p.probe_kind(), Some(ProbeKind::Fin));
}

#[test]
fn loopback_udp() {
    let p = parse(LinkType::Loopback, &hex(NULL_UDP)).expect("parses");
    assert_eq!(p.proto(), Proto::Udp);
    assert_eq!((p.src_port, p.dst_port), (53, 5353));
    assert_eq!(p.probe_kind(), Some(ProbeKind::Udp));
}

#[test]
fn every_prefix_of_a_frame_is_skipped_as_truncated_and_never_panics() {
    for (link, frame) in [
        (LinkType::Ethernet, hex(MASSCAN_SYN)),
        (LinkType::LinuxSll2, hex(SLL2_SYN)),
        (LinkType::LinuxSll, hex(SLL_SYN6)),
        (LinkType::RawIp, hex(RAW6_EXT_FIN)),
    ] {
        // The frame parses once the TCP header is complete; the masscan frame has 6 bytes of
        // Ethernet padding after it.
        let complete = frame.len() - if link == LinkType::Ethernet { 6 } else { 0 };
        // SLL frames carry TCP options; the header ends 20 + options bytes into TCP.
        let min_ok = (0..=frame.len())
            .find(|&n| parse(link, &frame[..n]).is_ok())
            .expect("the full frame parses");
        assert!(
            min_ok <= complete,
            "{link:?}: needed {min_ok} of {complete}"
        );
        for n in 0..min_ok {
            assert_eq!(
                parse(link, &frame[..n]),
                Err(Skip::Truncated),
                "{link:?} cut at {n} bytes"
            );
        }
    }
}

#[test]
fn garbage_never_panics() {
    // A deterministic xorshift stream, so a failure reproduces.
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    let mut buf = [0u8; 128];
    for round in 0..20_000 {
        for b in buf.iter_mut() {
            *b = next().to_le_bytes()[0];
        }
        let len = usize::try_from(next() % 129).expect("fits");
        // Make half of the rounds look like IPv4/IPv6 so the deeper layers are reached too.
        if round % 2 == 0 && len > 0 {
            buf[0] = if round % 4 == 0 { 0x45 } else { 0x60 };
        }
        for link in [
            LinkType::Ethernet,
            LinkType::LinuxSll,
            LinkType::LinuxSll2,
            LinkType::RawIp,
            LinkType::Loopback,
        ] {
            let _ = parse(link, &buf[..len]);
        }
    }
}

#[test]
fn ipv4_fragment_is_skipped_as_fragment() {
    let mut frame = hex(MASSCAN_SYN);
    // Set More Fragments in the IPv4 header (byte 6 after the 18-byte Ethernet+VLAN header).
    frame[18 + 6] |= 0x20;
    assert_eq!(parse(LinkType::Ethernet, &frame), Err(Skip::Fragment));
}

#[test]
fn icmp_and_arp_are_skipped_with_their_reason() {
    let mut icmp = hex(NULL_UDP);
    icmp[4 + 9] = 1; // protocol ICMP
    assert_eq!(parse(LinkType::Loopback, &icmp), Err(Skip::OtherProtocol));

    let mut arp = hex(MASSCAN_SYN);
    arp[16] = 0x08;
    arp[17] = 0x06; // ethertype ARP after the VLAN tag
    assert!(matches!(
        parse(LinkType::Ethernet, &arp),
        Err(Skip::NotIp | Skip::Truncated | Skip::Malformed)
    ));
    let mut lldp = hex(MASSCAN_SYN);
    lldp[16] = 0x88;
    lldp[17] = 0xcc;
    assert_eq!(parse(LinkType::Ethernet, &lldp), Err(Skip::NotIp));
}

#[test]
fn bad_ip_version_is_malformed() {
    let mut frame = hex(NULL_UDP);
    frame[4] = 0x75; // version 7
    assert_eq!(parse(LinkType::Loopback, &frame), Err(Skip::Malformed));
}

/// Red team of issue 25: an IPv6 packet in an IPv4 frame, or an IPv4 packet in an IPv6 frame,
/// is one the kernel drops: not a probe, whatever the capture.
#[test]
fn an_ip_version_other_than_the_frames_protocol_is_malformed() {
    // SLL_SYN6 says 0x86dd at offset 14; the packet after the 16-byte header is IPv6.
    let mut six_as_four = hex(SLL_SYN6);
    six_as_four[14..16].copy_from_slice(&[0x08, 0x00]);
    assert_eq!(
        parse(LinkType::LinuxSll, &six_as_four),
        Err(Skip::Malformed)
    );
    // SLL2_SYN says 0x0800 at offset 0; its packet is IPv4.
    let mut four_as_six = hex(SLL2_SYN);
    four_as_six[0..2].copy_from_slice(&[0x86, 0xdd]);
    assert_eq!(
        parse(LinkType::LinuxSll2, &four_as_six),
        Err(Skip::Malformed)
    );
    // Behind a VLAN tag too: MASSCAN_SYN's inner type is at 16..18.
    let mut tagged = hex(MASSCAN_SYN);
    tagged[16..18].copy_from_slice(&[0x86, 0xdd]);
    assert_eq!(parse(LinkType::Ethernet, &tagged), Err(Skip::Malformed));
    // Nothing after the header: truncated.
    assert_eq!(
        parse(LinkType::LinuxSll2, &hex(SLL2_SYN)[..20]),
        Err(Skip::Truncated)
    );
}

/// The specification of [`classify_tcp`] over the 64 sets of the six control flags, one
/// character each, indexed by `URG ACK PSH RST SYN FIN` as a number:
/// `S` syn, `F` fin, `N` null, `X` xmas, `M` maimon, `o` odd (stealth), `!` odd (impossible),
/// `.` conversation traffic (not a probe).
const SPEC: [&str; 4] = [
    "NFS!.o!!ooo!oo!!", // 0x00..0x0f: no ACK, no URG
    ".M.!..!!...!..!!", // 0x10..0x1f: ACK
    "ooo!oo!!oXo!oo!!", // 0x20..0x2f: URG
    "...!..!!...!..!!", // 0x30..0x3f: URG+ACK
];

fn spec_char(kind: Option<ProbeKind>) -> char {
    match kind {
        None => '.',
        Some(ProbeKind::Syn) => 'S',
        Some(ProbeKind::Fin) => 'F',
        Some(ProbeKind::Null) => 'N',
        Some(ProbeKind::Xmas) => 'X',
        Some(ProbeKind::Maimon) => 'M',
        Some(k @ ProbeKind::Odd(_)) if k.evidence() == Evidence::Impossible => '!',
        Some(ProbeKind::Odd(_)) => 'o',
        Some(ProbeKind::Udp) => 'U',
        Some(ProbeKind::Ack) => 'A',
        // Never a classification of flags: what fragments say.
        Some(ProbeKind::TinyFragment | ProbeKind::FragmentOverlap) => 'f',
        // Never a TCP flag set's kind.
        Some(ProbeKind::SctpInit | ProbeKind::SctpCookieEcho | ProbeKind::IpProtocol) => '?',
        Some(ProbeKind::Version) => 'V',
    }
}

#[test]
fn all_64_control_flag_sets_are_classified_as_specified() {
    for bits in 0u16..64 {
        let expected = SPEC[usize::from(bits / 16)]
            .chars()
            .nth(usize::from(bits % 16))
            .expect("16 per row");
        let got = spec_char(classify_tcp(TcpFlags::from_bits(bits)));
        assert_eq!(got, expected, "flags {}", TcpFlags::from_bits(bits));
    }
}

#[test]
fn ecn_bits_never_change_the_classification() {
    for bits in 0u16..512 {
        let with = spec_char(classify_tcp(TcpFlags::from_bits(bits)));
        let without = spec_char(classify_tcp(TcpFlags::from_bits(bits & 0x3f)));
        assert_eq!(with, without, "flags {}", TcpFlags::from_bits(bits));
    }
    let ecn_syn = TcpFlags::SYN | TcpFlags::ECE | TcpFlags::CWR;
    assert_eq!(classify_tcp(ecn_syn), Some(ProbeKind::Syn));
}

#[test]
fn flags_display_like_an_administrator_reads_them() {
    assert_eq!(TcpFlags::from_bits(0).to_string(), "none");
    assert_eq!(
        (TcpFlags::FIN | TcpFlags::PSH | TcpFlags::URG).to_string(),
        "FIN|PSH|URG"
    );
    assert_eq!(
        TcpFlags::from_header(&hex(SLL_RSTACK6)[56..]).to_string(),
        "RST|ACK"
    );
}

/// Builds a raw IP packet with etherparse (right checksums, independent of our parser).
fn built(v6: bool, udp: bool, payload: &[u8]) -> Vec<u8> {
    let ip = if v6 {
        etherparse::PacketBuilder::ipv6(
            [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            64,
        )
    } else {
        etherparse::PacketBuilder::ipv4([203, 0, 113, 7], [198, 51, 100, 1], 64)
    };
    let mut out = Vec::new();
    if udp {
        let b = ip.udp(40000, 53);
        out.reserve(b.size(payload.len()));
        b.write(&mut out, payload).unwrap();
    } else {
        let b = ip.tcp(40000, 22, 1, 1024).syn();
        out.reserve(b.size(payload.len()));
        b.write(&mut out, payload).unwrap();
    }
    out
}

fn integrity(bytes: &[u8]) -> Integrity {
    parse_full(LinkType::RawIp, bytes)
        .expect("parses")
        .integrity
}

/// Issue 14: a capture sees frames the kernel then drops for a wrong checksum; they must not
/// count. What the bytes allow is checked: the IPv4 header, and TCP and UDP whole in the
/// capture; the form a sender leaves for checksum offload is told apart.
#[test]
fn issue_14_checksums_are_checked_as_the_kernel_would() {
    for v6 in [false, true] {
        for udp in [false, true] {
            let what = format!("v6 {v6}, udp {udp}");
            let good = built(v6, udp, b"probe");
            assert_eq!(integrity(&good), Integrity::Valid, "{what}");
            // One bit of the payload, of the source port, of the checksum itself.
            let (header, field) = if udp { (8, 6) } else { (20, 16) };
            let start = good.len() - 5 - header;
            for at in [good.len() - 1, start, start + field] {
                let mut bad = good.clone();
                bad[at] ^= 0x10;
                assert_eq!(integrity(&bad), Integrity::Bad, "{what}, byte {at}");
            }
            // Cut short by the capture: the segment cannot be summed.
            let cut = &good[..good.len() - 2];
            assert_eq!(integrity(cut), Integrity::Unverified, "{what}");
        }
    }
    // A wrong IPv4 header checksum (the TTL changed, the header sum not): dropped by the kernel.
    let mut ttl = built(false, false, b"");
    ttl[8] -= 1;
    assert_eq!(integrity(&ttl), Integrity::Bad);
    // UDP without a checksum: allowed over IPv4, not over IPv6.
    for (v6, expected) in [(false, Integrity::Valid), (true, Integrity::Bad)] {
        let mut zero = built(v6, true, b"x");
        let at = zero.len() - 1 - 2;
        zero[at..at + 2].copy_from_slice(&[0, 0]);
        assert_eq!(integrity(&zero), expected, "v6 {v6}");
    }
    // A UDP length longer than the datagram, or shorter than its header.
    for ulen in [200u16, 7] {
        let mut long = built(false, true, b"x");
        long[24..26].copy_from_slice(&ulen.to_be_bytes());
        assert_eq!(integrity(&long), Integrity::Bad, "udp length {ulen}");
    }
}

/// Frames a sender's stack left for the card to finish: the field holds the pseudo-header's
/// sum. Real ones, from `tcpdump -i any` on loopback; and a built one.
#[test]
fn issue_14_offloaded_checksums_are_told_apart() {
    assert_eq!(
        parse_full(LinkType::LinuxSll2, &hex(SLL2_SYN))
            .unwrap()
            .integrity,
        Integrity::Offloaded
    );
    assert_eq!(
        parse_full(LinkType::LinuxSll, &hex(SLL_SYN6))
            .unwrap()
            .integrity,
        Integrity::Offloaded
    );
    // A SYN from the wire, captured on the masscan host's uplink.
    assert_eq!(
        parse_full(LinkType::Ethernet, &hex(MASSCAN_SYN))
            .unwrap()
            .integrity,
        Integrity::Valid
    );
    // The built SYN with its field replaced by the pseudo-header's sum, as Linux writes it
    // (`~tcp_v4_check(len, saddr, daddr, 0)`): 203.0.113.7, 198.51.100.1, TCP, 20 bytes.
    let mut partial = built(false, false, b"");
    let sum: u32 = 0xcb00 + 0x7107 + 0xc633 + 0x6401 + 6 + 20;
    let folded = u16::try_from((sum & 0xffff) + (sum >> 16)).unwrap();
    partial[36..38].copy_from_slice(&folded.to_be_bytes());
    let outgoing = Metadata {
        direction: Direction::Outgoing,
        ..Metadata::default()
    };
    assert_eq!(
        parse_full_with(LinkType::RawIp, &partial, outgoing)
            .unwrap()
            .integrity,
        Integrity::Offloaded
    );
}

/// Issue 24, 12: probes whose checksum holds only the pseudo-header's sum were counted
/// wherever they came from, although the kernel checks and drops such a packet that arrived
/// from another host. A frame the capture says arrived over a device other than loopback is
/// `PseudoOnly`; outgoing and loopback frames stay `Offloaded`.
#[test]
fn issue_24_pseudo_header_only_checksums_count_only_outgoing_or_over_loopback() {
    // The loopback captures of the test above, then the same frames as if from a veth or a
    // card (device type 1, Ethernet), arriving and leaving.
    let sll2 = hex(SLL2_SYN);
    let sll = hex(SLL_SYN6);
    let judged = |link, frame: &[u8]| parse_full(link, frame).unwrap().integrity;
    let mut card2 = sll2.clone();
    card2[8..10].copy_from_slice(&1u16.to_be_bytes());
    let mut card = sll.clone();
    card[2..4].copy_from_slice(&1u16.to_be_bytes());
    assert_eq!(judged(LinkType::LinuxSll2, &card2), Integrity::PseudoOnly);
    assert_eq!(judged(LinkType::LinuxSll, &card), Integrity::PseudoOnly);
    card2[10] = 4; // PACKET_OUTGOING
    card[1] = 4;
    assert_eq!(judged(LinkType::LinuxSll2, &card2), Integrity::Offloaded);
    assert_eq!(judged(LinkType::LinuxSll, &card), Integrity::Offloaded);
    // Raw IP (the raw method): the socket address says.
    let mut partial = built(false, false, b"");
    let sum: u32 = 0xcb00 + 0x7107 + 0xc633 + 0x6401 + 6 + 20;
    let folded = u16::try_from((sum & 0xffff) + (sum >> 16)).unwrap();
    partial[36..38].copy_from_slice(&folded.to_be_bytes());
    let seen = |direction, loopback| Metadata {
        direction,
        ifindex: Some(2),
        loopback,
        whole: false,
    };
    for (meta, expected) in [
        // A capture that does not say which way (a raw IP file, often taken at the sender).
        (Metadata::default(), Integrity::Offloaded),
        (seen(Direction::Incoming, false), Integrity::PseudoOnly),
        (seen(Direction::Incoming, true), Integrity::Offloaded),
        (seen(Direction::Outgoing, false), Integrity::Offloaded),
    ] {
        assert_eq!(
            parse_full_with(LinkType::RawIp, &partial, meta)
                .unwrap()
                .integrity,
            expected,
            "{meta:?}"
        );
    }
    // A right checksum, or a wrong one, is judged the same everywhere.
    let good = built(false, false, b"");
    for meta in [Metadata::default(), seen(Direction::Outgoing, true)] {
        assert_eq!(
            parse_full_with(LinkType::RawIp, &good, meta)
                .unwrap()
                .integrity,
            Integrity::Valid
        );
        let mut bad = good.clone();
        bad[36] ^= 1;
        assert_eq!(
            parse_full_with(LinkType::RawIp, &bad, meta)
                .unwrap()
                .integrity,
            Integrity::Bad
        );
    }
}

/// Red team of issue 25: a SYN with a wrong checksum is no evidence, but one whose IP header
/// also claims more bytes than the packet has came out `Unverified`, and counted, as if a
/// snap length had cut it; the kernel drops it (IpExtInTruncatedPkts). A capture that holds
/// the whole frame (`Metadata::whole`: the raw method, libpcap's caplen equal to its length)
/// says so, and such a packet is truncated; a frame a snap length cut stays unverified.
#[test]
fn issue_25_a_packet_shorter_than_its_ip_header_says_is_truncated_when_captured_whole() {
    for v6 in [false, true] {
        let mut liar = built(v6, false, b"");
        let tcp_sum = if v6 { 40 + 16 } else { 20 + 16 };
        liar[tcp_sum] ^= 0xff; // a wrong TCP checksum
        if v6 {
            liar[4..6].copy_from_slice(&1000u16.to_be_bytes());
        } else {
            liar[2..4].copy_from_slice(&1000u16.to_be_bytes());
            liar[10..12].copy_from_slice(&[0, 0]);
            let sum = liar[..20]
                .chunks(2)
                .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
                .sum::<u32>();
            let sum = (sum & 0xffff) + (sum >> 16);
            let sum = !u16::try_from((sum & 0xffff) + (sum >> 16)).unwrap();
            liar[10..12].copy_from_slice(&sum.to_be_bytes());
        }
        let whole = Metadata {
            direction: Direction::Incoming,
            whole: true,
            ..Metadata::default()
        };
        assert_eq!(
            parse_full_with(LinkType::RawIp, &liar, whole),
            Err(Skip::Truncated),
            "v6: {v6}"
        );
        // Cut by a snap length (not known whole): unverified, as before.
        assert_eq!(integrity(&liar), Integrity::Unverified, "v6: {v6}");
        // The same packet whole and honest is valid.
        let honest = built(v6, false, b"");
        assert_eq!(
            parse_full_with(LinkType::RawIp, &honest, whole)
                .unwrap()
                .integrity,
            Integrity::Valid
        );
    }
}

/// Issue 28: the header fields tool fingerprints read come out as they were on the wire.
#[test]
fn issue_28_the_shape_of_a_packet_is_read_from_its_headers() {
    let linux = parse_full(LinkType::LinuxSll2, &hex(SLL2_SYN)).expect("parses");
    let s = linux.shape;
    assert_eq!((s.ttl, s.ip_id, s.dont_fragment), (64, 0xc161, true));
    assert_eq!((s.seq, s.ack, s.urgent, s.reserved), (0x6806_30db, 0, 0, 0));
    assert_eq!(
        s.options.as_bytes(),
        hex("0204 ffd7 0402 080a 9afd c2f0 0000 0000 0103 030a").as_slice()
    );
    assert_eq!((s.payload_len, s.head.as_bytes()), (0, &[][..]));

    let masscan = parse_full(LinkType::Ethernet, &hex(MASSCAN_SYN)).expect("parses");
    let s = masscan.shape;
    assert_eq!((s.ttl, s.ip_id, s.dont_fragment), (252, 0x9c44, false));
    assert_eq!((masscan.window, s.seq), (1024, 0x7dba_06f2));
    assert!(s.options.as_bytes().is_empty());
    // The Ethernet trailer's padding is not payload: the IP header says how long it is.
    assert_eq!(s.payload_len, 0);

    let six = parse_full(LinkType::LinuxSll, &hex(SLL_SYN6)).expect("parses");
    assert_eq!((six.shape.ttl, six.shape.flow_label), (64, 0xd785b));

    let udp = built(false, true, b"GET / HTTP/1.0\r\n\r\n");
    let p = parse_full(LinkType::RawIp, &udp).expect("parses");
    assert_eq!(p.shape.payload_len, 18);
    assert_eq!(p.shape.head.as_bytes(), b"GET / HTTP/1.0\r\n\r\n");
}

/// Issue 28: SCTP ports and IP protocol numbers have labels that read back; an IP protocol
/// number above 255 or another protocol's name does not.
#[test]
fn labels_of_every_protocol_read_back() {
    for (proto, port, text) in [
        (Proto::Tcp, 22, "22/tcp"),
        (Proto::Udp, 53, "53/udp"),
        (Proto::Sctp, 38412, "38412/sctp"),
        (Proto::Ip, 47, "47/ip"),
        (Proto::Ip, 255, "255/ip"),
    ] {
        assert_eq!(proto.label(port), text);
        assert_eq!(Proto::parse_label(text), Some((proto, port)), "{text}");
    }
    for text in ["256/ip", "1/icmp", "x/sctp", "22"] {
        assert_eq!(Proto::parse_label(text), None, "{text}");
    }
    assert!(Proto::Tcp.has_nft_ports() && Proto::Udp.has_nft_ports());
    assert!(!Proto::Sctp.has_nft_ports() && !Proto::Ip.has_nft_ports());
}

/// Issue 28: an SCTP INIT is read with its ports, chunk and CRC32c; a spoilt CRC is `Bad`; a
/// COOKIE ECHO is its own kind; an INIT ACK, an ABORT and an INIT with a verification tag are
/// no probe.
#[test]
fn sctp_packets_read_with_their_chunk_and_checksum() {
    use crate::capture::bpf::frames;
    for (src, dst) in [
        (
            "203.0.113.7".parse().unwrap(),
            "198.51.100.1".parse().unwrap(),
        ),
        (
            "2001:db8::7".parse().unwrap(),
            "2001:db8::1".parse().unwrap(),
        ),
    ] {
        let frame = |chunk, tag| frames::sctp_frame(src, dst, 40000, 38412, chunk, tag);
        let init = parse_full(LinkType::Ethernet, &frame(1, 0)).unwrap();
        assert_eq!(
            (init.proto(), init.src_port, init.dst_port),
            (Proto::Sctp, 40000, 38412)
        );
        assert_eq!(init.probe_kind(), Some(ProbeKind::SctpInit));
        assert_eq!(init.integrity, Integrity::Valid, "{src}");
        assert_eq!(init.shape.payload_len, 20, "the chunk");
        let cookie = parse_full(LinkType::Ethernet, &frame(10, 7)).unwrap();
        assert_eq!(cookie.probe_kind(), Some(ProbeKind::SctpCookieEcho));
        for (chunk, tag) in [(2, 7), (6, 7), (0, 7), (1, 7)] {
            let p = parse_full(LinkType::Ethernet, &frame(chunk, tag)).unwrap();
            assert_eq!(p.probe_kind(), None, "chunk {chunk} tag {tag}");
        }
        assert!(sctp::is_init_ack(
            &parse_full(LinkType::Ethernet, &frame(2, 7)).unwrap()
        ));
        let mut spoilt = frame(1, 0);
        let last = spoilt.len() - 1;
        spoilt[last] ^= 0x40;
        let p = parse_full(LinkType::Ethernet, &spoilt).unwrap();
        assert_eq!(
            p.integrity,
            Integrity::Bad,
            "a wrong CRC32c: the kernel drops it"
        );
        // Cut by the capture after the chunk's header: read, not verified.
        let cut = parse_full(LinkType::Ethernet, &frame(1, 0)[..frame(1, 0).len() - 8]).unwrap();
        assert_eq!(cut.integrity, Integrity::Unverified);
        // Shorter than the common header and a chunk header: skipped.
        let head = if src.is_ipv4() { 14 + 20 } else { 14 + 40 };
        assert_eq!(
            parse_full(LinkType::Ethernet, &frame(1, 0)[..head + 15]),
            Err(Skip::OtherProtocol)
        );
    }
}

/// Issue 28: a packet of another IP protocol is a probe of that protocol number (as both
/// ports); ICMP and ICMPv6 stay skipped.
#[test]
fn other_ip_protocols_read_as_their_number_icmp_is_skipped() {
    use crate::capture::bpf::frames;
    for (src, dst, icmp) in [
        (
            "203.0.113.7".parse().unwrap(),
            "198.51.100.1".parse().unwrap(),
            1,
        ),
        (
            "2001:db8::7".parse().unwrap(),
            "2001:db8::1".parse().unwrap(),
            58,
        ),
    ] {
        for protocol in [47u8, 50, 4, 253, 255] {
            let p = parse_full(
                LinkType::Ethernet,
                &frames::ip_frame(src, dst, protocol, &[0; 8]),
            )
            .unwrap();
            assert_eq!(p.proto(), Proto::Ip);
            assert_eq!((p.src_port, p.dst_port), (protocol.into(), protocol.into()));
            assert_eq!(p.probe_kind(), Some(ProbeKind::IpProtocol));
            assert_eq!(p.other, Some(Other::Ip(protocol)));
            assert_eq!(p.integrity, Integrity::Valid);
        }
        let ping = frames::ip_frame(src, dst, icmp, &[8, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            parse_full(LinkType::Ethernet, &ping),
            Err(Skip::OtherProtocol)
        );
    }
    // A wrong IPv4 header checksum: the kernel drops the packet before any protocol sees it.
    let mut gre = frames::ip_frame(
        "203.0.113.7".parse().unwrap(),
        "198.51.100.1".parse().unwrap(),
        47,
        &[0; 4],
    );
    gre[14 + 10] ^= 1;
    assert_eq!(
        parse_full(LinkType::Ethernet, &gre).unwrap().integrity,
        Integrity::Bad
    );
}

/// Issue 29: the cheap parse reads the same packet as the full one, its details left in the
/// frame and read from it when asked, the same whether read at once or lazily; and the packet
/// the per-packet path moves is small.
#[test]
fn the_cheap_parse_leaves_the_details_in_the_frame_and_reads_them_the_same() {
    let frames = [
        (LinkType::Ethernet, hex(MASSCAN_SYN)),
        (LinkType::LinuxSll2, hex(SLL2_SYN)),
        (LinkType::LinuxSll, hex(SLL_SYN6)),
        (LinkType::LinuxSll, hex(SLL_RSTACK6)),
        (LinkType::RawIp, hex(RAW6_EXT_FIN)),
        (LinkType::Loopback, hex(NULL_UDP)),
        (
            LinkType::Ethernet,
            with_payload(true, b"GET / HTTP/1.0\r\n\r\n"),
        ),
        (LinkType::Ethernet, with_payload(false, &[b'C'; 300])),
    ];
    for (link, frame) in &frames {
        let full = parse_full(*link, frame).expect("parses");
        assert_eq!(parse(*link, frame), Ok(full.packet));
        let seen = read(*link, frame, Metadata::default()).expect("parses");
        assert_eq!(seen.full(), full);
        // The fields the rules read one at a time from the frame are the shape's.
        assert_eq!(fields_of(&seen.fields()), fields_of(&full.shape));
        let lazy = Lazy::from(seen);
        assert_eq!(fields_of(&lazy.fields()), fields_of(&full.shape));
        // The payload's length, read alone before the shape, is the shape's.
        assert_eq!(lazy.payload_len(), full.shape.payload_len);
        assert_eq!(
            (*lazy.shape(), lazy.integrity()),
            (full.shape, full.integrity)
        );
        assert_eq!(lazy.payload_len(), full.shape.payload_len);
        // Asked again: the same, read once; the fields now from the shape read.
        assert_eq!(
            (*lazy.shape(), lazy.integrity()),
            (full.shape, full.integrity)
        );
        assert_eq!(fields_of(&lazy.fields()), fields_of(&full.shape));
        let known = Lazy::from(Seen::from(&full));
        assert_eq!(
            (*known.shape(), known.integrity()),
            (full.shape, full.integrity)
        );
    }
    // An Ethernet frame the capture says arrived: its checksums judged with the capture's
    // word, lazily as at once.
    let pseudo = Metadata {
        direction: Direction::Incoming,
        ..Metadata::default()
    };
    let (link, frame) = &frames[0];
    assert_eq!(
        read(*link, frame, pseudo).unwrap().full(),
        parse_full_with(*link, frame, pseudo).unwrap()
    );
    // Addresses, ports, flags, window, direction, interface and the protocol's own: no more
    // than a cache line (it was 176 bytes with the details in it).
    assert!(
        std::mem::size_of::<Packet>() <= 64,
        "{}",
        std::mem::size_of::<Packet>()
    );
}

/// Issue 29: the fields the rules read one at a time from a frame are the ones its shape
/// copies, whatever its bytes (frames of every kind with random bytes changed: options cut by
/// the capture, data offsets past the end, payloads declared longer than captured).
#[test]
fn fields_read_one_at_a_time_are_the_shapes_whatever_the_bytes() {
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    let frames = [
        (LinkType::Ethernet, hex(MASSCAN_SYN)),
        (LinkType::LinuxSll2, hex(SLL2_SYN)),
        (LinkType::LinuxSll, hex(SLL_SYN6)),
        (LinkType::RawIp, hex(RAW6_EXT_FIN)),
        (LinkType::Loopback, hex(NULL_UDP)),
        (
            LinkType::Ethernet,
            with_payload(true, b"GET / HTTP/1.0\r\n\r\n"),
        ),
        (LinkType::Ethernet, with_payload(false, &[b'C'; 300])),
    ];
    let mut read_ok = 0;
    for (link, frame) in &frames {
        for round in 0..3_000 {
            let bytes = changed(frame, round, &mut next);
            if let Ok(seen) = read(*link, &bytes, Metadata::default()) {
                read_ok += 1;
                assert_eq!(
                    fields_of(&seen.fields()),
                    fields_of(&seen.shape()),
                    "{bytes:02x?}"
                );
            }
        }
    }
    // Many changed frames still parse: the comparison ran on them.
    assert!(read_ok > 5_000, "{read_ok}");
}

/// Issue 29: where the IPv4 fast path reads a packet, it reads what etherparse's lax slices
/// read, to the byte (frames of IPv4 TCP and UDP, with and without payload and options, with
/// Ethernet padding, with random bytes changed and cut short); and it reads most of them.
#[test]
fn the_ipv4_fast_path_reads_what_etherparse_reads() {
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    let frames = [
        (LinkType::Ethernet, hex(MASSCAN_SYN)),
        (LinkType::RawIp, built(false, false, b"")),
        (LinkType::RawIp, built(false, true, b"")),
        (
            LinkType::RawIp,
            built(false, true, b"GET / HTTP/1.0\r\n\r\n"),
        ),
        (
            LinkType::Ethernet,
            with_payload(true, b"GET / HTTP/1.0\r\n\r\n"),
        ),
        (LinkType::Ethernet, with_payload(false, &[b'C'; 300])),
    ];
    let (mut fast, mut all) = (0, 0);
    for (link, frame) in &frames {
        for round in 0..4_000 {
            let bytes = changed(frame, round, &mut next);
            let Ok(layer) = ip_layer(*link, &bytes, Metadata::default()) else {
                continue;
            };
            all += 1;
            if let Some(seen) = ipv4_tcp_udp(layer.ip, Direction::Unknown, None, false) {
                fast += 1;
                let Source::Frame(at) = seen.source else {
                    panic!("the fast path reads from the frame");
                };
                for whole in [false, true] {
                    assert_eq!(
                        Ok((seen.packet, at)),
                        packet_from_any_ip(layer.ip, whole),
                        "{bytes:02x?}"
                    );
                }
            } else if round == 0 {
                panic!("an unchanged IPv4 TCP or UDP frame is read by the fast path");
            }
        }
    }
    // The changed frames the fast path leaves to etherparse are a minority.
    assert!(fast * 2 > all, "{fast} of {all}");
}

/// A deterministic xorshift stream (a failure reproduces), as `u64`s.
fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

/// `frame` as round `round` of a test changes it: unchanged in round 0, then one to three
/// bytes changed in its first 80 (the headers) and, one time in four, its end cut by up to 11.
fn changed(frame: &[u8], round: usize, next: &mut impl FnMut() -> u64) -> Vec<u8> {
    let mut bytes = frame.to_vec();
    if round == 0 {
        return bytes;
    }
    let mut below = |n: usize| usize::try_from(next() % n as u64).expect("under n");
    for _ in 0..1 + below(3) {
        let at = below(bytes.len().min(80));
        bytes[at] = u8::try_from(below(256)).expect("a byte");
    }
    if below(4) == 0 {
        let cut = below(12);
        bytes.truncate(bytes.len() - cut);
    }
    bytes
}

/// Every field of a [`Fields`], to compare two sources of them.
fn fields_of(f: &impl Fields) -> (u16, bool, u32, Vec<u8>, u16, Vec<u8>) {
    let (options, head) = (f.options().to_vec(), f.head().to_vec());
    (
        f.ip_id(),
        f.dont_fragment(),
        f.seq(),
        options,
        f.payload_len(),
        head,
    )
}

/// An Ethernet frame of a TCP segment (PSH+ACK, timestamps) or a UDP datagram carrying
/// `payload`, built by etherparse.
fn with_payload(tcp: bool, payload: &[u8]) -> Vec<u8> {
    let ip = etherparse::PacketBuilder::ethernet2([2; 6], [4; 6]).ipv4(
        [203, 0, 113, 7],
        [198, 51, 100, 1],
        64,
    );
    let mut frame = Vec::new();
    if tcp {
        let b = ip
            .tcp(40000, 80, 1000, 64240)
            .psh()
            .ack(77)
            .options(&[etherparse::TcpOptionElement::Timestamp(1, 2)])
            .expect("options fit");
        b.write(&mut frame, payload).expect("writes");
    } else {
        ip.udp(40000, 53)
            .write(&mut frame, payload)
            .expect("writes");
    }
    frame
}

/// Issue 29, red team (b): an IPv4 datagram forged field by field, to attack the fast path
/// ([`ipv4_tcp_udp`]) where its checks sit: version, IHL, total length against the header and
/// the capture, the fragment bits (and the reserved bit), the protocol, the TCP data offset and
/// options, the UDP length field, the sums, the capture's cut and Ethernet's padding.
#[derive(Clone, Debug)]
pub(crate) struct ForgedV4 {
    pub(crate) version: u8,
    pub(crate) ihl: u8,
    pub(crate) total: Total,
    pub(crate) id: u16,
    pub(crate) frag: u16,
    pub(crate) proto: u8,
    pub(crate) ip_sum_right: bool,
    pub(crate) ip_options: Vec<u8>,
    pub(crate) doff: u8,
    pub(crate) tcp_flags: u16,
    pub(crate) window: u16,
    pub(crate) seq: u32,
    pub(crate) tcp_options: Vec<u8>,
    pub(crate) udp_len: Option<u16>,
    pub(crate) l4_sum_right: bool,
    pub(crate) payload: Vec<u8>,
    pub(crate) cut: usize,
    pub(crate) pad: usize,
    /// The port probed (TCP, UDP).
    pub(crate) port: u16,
    /// From the host to the remote end (its ports swapped too).
    pub(crate) reverse: bool,
}

/// The total length a [`ForgedV4`] declares.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Total {
    /// The bytes written.
    Exact,
    /// Its header's length (no segment).
    Header,
    /// Fewer than the bytes written.
    Less(u16),
    /// More than the bytes written.
    More(u16),
    /// Any value.
    Any(u16),
}

/// The Internet checksum of `bytes` added to `sum`, folded.
fn ones(mut sum: u32, bytes: &[u8]) -> u16 {
    for pair in bytes.chunks(2) {
        sum += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    u16::try_from(sum).expect("folded")
}

impl ForgedV4 {
    const SRC: [u8; 4] = [203, 0, 113, 7];
    const DST: [u8; 4] = [198, 51, 100, 1];

    /// Its source and destination.
    fn addresses(&self) -> ([u8; 4], [u8; 4]) {
        if self.reverse {
            (Self::DST, Self::SRC)
        } else {
            (Self::SRC, Self::DST)
        }
    }

    /// The datagram, from its IP header (the capture's cut and padding applied).
    pub(crate) fn bytes(&self) -> Vec<u8> {
        let header_len = usize::from(self.ihl) * 4;
        let mut ip = vec![0u8; header_len.max(20)];
        ip[0] = (self.version << 4) | self.ihl;
        ip[4..6].copy_from_slice(&self.id.to_be_bytes());
        ip[6..8].copy_from_slice(&self.frag.to_be_bytes());
        ip[8] = 64;
        ip[9] = self.proto;
        let (src, dst) = self.addresses();
        ip[12..16].copy_from_slice(&src);
        ip[16..20].copy_from_slice(&dst);
        let (sport, dport) = if self.reverse {
            (self.port, 40000u16)
        } else {
            (40000, self.port)
        };
        for (i, b) in ip.iter_mut().skip(20).enumerate() {
            *b = self.ip_options.get(i).copied().unwrap_or(1);
        }
        let mut segment = Vec::new();
        match self.proto {
            6 => {
                segment.extend_from_slice(&sport.to_be_bytes());
                segment.extend_from_slice(&dport.to_be_bytes());
                segment.extend_from_slice(&self.seq.to_be_bytes());
                segment.extend_from_slice(&0u32.to_be_bytes());
                let offset_flags = (u16::from(self.doff) << 12) | (self.tcp_flags & 0x1ff);
                segment.extend_from_slice(&offset_flags.to_be_bytes());
                segment.extend_from_slice(&self.window.to_be_bytes());
                segment.extend_from_slice(&[0, 0, 0, 0]);
                segment.extend_from_slice(&self.tcp_options);
            }
            17 => {
                segment.extend_from_slice(&sport.to_be_bytes());
                segment.extend_from_slice(&dport.to_be_bytes());
                let len = self
                    .udp_len
                    .unwrap_or_else(|| clamp16(8 + self.payload.len()));
                segment.extend_from_slice(&len.to_be_bytes());
                segment.extend_from_slice(&[0, 0]);
            }
            _ => segment.extend_from_slice(&[0x9c, 0x40, 0, 22, 0, 0, 0, 1]),
        }
        segment.extend_from_slice(&self.payload);
        let written = ip.len() + segment.len();
        let total = match self.total {
            Total::Exact => written,
            Total::Header => header_len,
            Total::Less(n) => written.saturating_sub(usize::from(n)),
            Total::More(n) => written + usize::from(n),
            Total::Any(n) => usize::from(n),
        };
        ip[2..4].copy_from_slice(&clamp16(total).to_be_bytes());
        if self.l4_sum_right && matches!(self.proto, 6 | 17) {
            // Summed over the segment as the total length declares it, where it can be.
            // (Under the header's length, the lax parse reads the rest of the slice: summed
            // over all of it.)
            let declared = if total < ip.len() {
                segment.len()
            } else {
                (total - ip.len()).min(segment.len())
            };
            let at = if self.proto == 6 { 16 } else { 6 };
            if segment.len() >= at + 2 {
                let mut pseudo = 0u32;
                for pair in src.chunks(2).chain(dst.chunks(2)) {
                    pseudo += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
                }
                pseudo += u32::from(self.proto) + u32::try_from(declared).expect("small");
                let sum = !ones(pseudo, &segment[..declared]);
                let sum = if sum == 0 && self.proto == 17 {
                    0xffff
                } else {
                    sum
                };
                segment[at..at + 2].copy_from_slice(&sum.to_be_bytes());
            }
        }
        let sum = ones(0, &ip);
        let sum = if self.ip_sum_right {
            !sum
        } else {
            !sum ^ 0x0100
        };
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        let mut bytes = ip;
        bytes.extend_from_slice(&segment);
        bytes.truncate(bytes.len().saturating_sub(self.cut));
        bytes.resize(bytes.len() + self.pad, 0);
        bytes
    }

    /// The datagram framed for each link type (Ethernet with and without a VLAN tag, both
    /// cooked captures with packet type "to us", raw IP, BSD loopback).
    fn frames(&self) -> Vec<(LinkType, Vec<u8>)> {
        let ip = self.bytes();
        let framed = |head: &[u8]| {
            let mut f = head.to_vec();
            f.extend_from_slice(&ip);
            f
        };
        let eth = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 8, 0];
        let vlan = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x81, 0, 0, 7, 8, 0];
        let sll = [0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 2, 0, 0, 8, 0];
        let sll2 = [8, 0, 0, 0, 0, 0, 0, 3, 0, 1, 0, 6, 2, 0, 0, 0, 0, 2, 0, 0];
        vec![
            (LinkType::Ethernet, framed(&eth)),
            (LinkType::Ethernet, framed(&vlan)),
            (LinkType::LinuxSll, framed(&sll)),
            (LinkType::LinuxSll2, framed(&sll2)),
            (LinkType::RawIp, ip.clone()),
            (LinkType::Loopback, framed(&[2, 0, 0, 0])),
        ]
    }

    /// An ordinary SYN (window 1024, no options), its sums right, held whole.
    pub(crate) fn syn() -> Self {
        ForgedV4 {
            version: 4,
            ihl: 5,
            total: Total::Exact,
            id: 0x1234,
            frag: 0,
            proto: 6,
            ip_sum_right: true,
            ip_options: Vec::new(),
            doff: 5,
            tcp_flags: 0x002,
            window: 1024,
            seq: 7,
            tcp_options: Vec::new(),
            udp_len: None,
            l4_sum_right: true,
            payload: Vec::new(),
            cut: 0,
            pad: 0,
            port: 22,
            reverse: false,
        }
    }
}

/// Everything the fast path's claim says of `frame`, asserted: the fast path reads what
/// etherparse reads; [`read`] gives what reading by etherparse alone gives (packet, sums,
/// shape, or the same reason to skip), for each capture's metadata; the fields read one at a
/// time are the shape's, and the tool and version rules judge both the same.
fn assert_as_etherparse_reads(link: LinkType, frame: &[u8]) -> Result<Full, Skip> {
    assert!(fast_path_agrees(link, frame), "{link:?} {frame:02x?}");
    let mut first = None;
    for direction in [Direction::Incoming, Direction::Outgoing, Direction::Unknown] {
        for whole in [true, false] {
            let meta = Metadata {
                direction,
                ifindex: Some(2),
                loopback: false,
                whole,
            };
            let new = read(link, frame, meta);
            let old = read_by_etherparse(link, frame, meta);
            assert_eq!(
                new.map(|s| s.full()),
                old.map(|s| s.full()),
                "{link:?} {direction:?} whole {whole}: {frame:02x?}"
            );
            if let Ok(seen) = new {
                let shape = seen.shape();
                assert_eq!(fields_of(&seen.fields()), fields_of(&shape), "{frame:02x?}");
                let lazy = Lazy::from(seen);
                assert_eq!(fields_of(&lazy.fields()), fields_of(&shape), "{frame:02x?}");
                use crate::detect::{fingerprint, version};
                assert_eq!(
                    fingerprint::recognise(&seen.packet, &seen.fields()),
                    fingerprint::recognise(&seen.packet, &shape),
                    "{frame:02x?}"
                );
                assert_eq!(
                    version::recognise(&seen.packet, &seen.fields()).map(|p| p.name),
                    version::recognise(&seen.packet, &shape).map(|p| p.name),
                    "{frame:02x?}"
                );
            }
            if direction == Direction::Incoming && whole {
                first = Some(new.map(|s| s.full()));
            }
        }
    }
    first.expect("asked")
}

/// Whether the fast path itself read the IP packet in `frame`.
fn fast(link: LinkType, frame: &[u8]) -> bool {
    ip_layer(link, frame, Metadata::default())
        .is_ok_and(|layer| ipv4_tcp_udp(layer.ip, Direction::Unknown, None, false).is_some())
}

/// The edges of the fast path's checks, one field at a time, on every link type: each read as
/// etherparse reads it, and the fast path taking exactly the packets it claims.
#[test]
fn issue_29_red_b_each_edge_of_the_fast_path_reads_as_etherparse_does() {
    let syn = ForgedV4::syn;
    let mut cases: Vec<(&str, ForgedV4, Option<bool>)> = vec![
        ("plain SYN", syn(), Some(true)),
        ("IHL 15, options", ForgedV4 { ihl: 15, ..syn() }, Some(true)),
        ("IHL 6", ForgedV4 { ihl: 6, ..syn() }, Some(true)),
        ("IHL 4", ForgedV4 { ihl: 4, ..syn() }, Some(false)),
        ("IHL 0", ForgedV4 { ihl: 0, ..syn() }, Some(false)),
        (
            "version 6",
            ForgedV4 {
                version: 6,
                ..syn()
            },
            Some(false),
        ),
        (
            "version 5",
            ForgedV4 {
                version: 5,
                ..syn()
            },
            Some(false),
        ),
        (
            "DF",
            ForgedV4 {
                frag: 0x4000,
                ..syn()
            },
            Some(true),
        ),
        (
            "reserved bit",
            ForgedV4 {
                frag: 0x8000,
                ..syn()
            },
            Some(true),
        ),
        (
            "reserved + DF",
            ForgedV4 {
                frag: 0xc000,
                ..syn()
            },
            Some(true),
        ),
        (
            "MF",
            ForgedV4 {
                frag: 0x2000,
                ..syn()
            },
            Some(false),
        ),
        (
            "offset 1",
            ForgedV4 {
                frag: 0x0001,
                ..syn()
            },
            Some(false),
        ),
        (
            "DF + offset",
            ForgedV4 {
                frag: 0x5fff,
                ..syn()
            },
            Some(false),
        ),
        (
            "total = header",
            ForgedV4 {
                total: Total::Header,
                ..syn()
            },
            Some(false),
        ),
        (
            "total < header",
            ForgedV4 {
                total: Total::Any(19),
                ..syn()
            },
            Some(false),
        ),
        (
            "total 0 (TSO)",
            ForgedV4 {
                total: Total::Any(0),
                ..syn()
            },
            Some(false),
        ),
        (
            "total past capture",
            ForgedV4 {
                total: Total::More(1),
                ..syn()
            },
            Some(false),
        ),
        (
            "total 1 short",
            ForgedV4 {
                total: Total::Less(1),
                ..syn()
            },
            Some(false),
        ),
        ("Ethernet padding", ForgedV4 { pad: 6, ..syn() }, Some(true)),
        ("cut by capture", ForgedV4 { cut: 1, ..syn() }, Some(false)),
        (
            "IP sum wrong",
            ForgedV4 {
                ip_sum_right: false,
                ..syn()
            },
            Some(true),
        ),
        (
            "TCP sum wrong",
            ForgedV4 {
                l4_sum_right: false,
                ..syn()
            },
            Some(true),
        ),
        ("doff 4", ForgedV4 { doff: 4, ..syn() }, Some(false)),
        ("doff 0", ForgedV4 { doff: 0, ..syn() }, Some(false)),
        (
            "doff 6, no options",
            ForgedV4 { doff: 6, ..syn() },
            Some(false),
        ),
        (
            "doff 15, 40 option bytes",
            ForgedV4 {
                doff: 15,
                tcp_options: vec![1; 40],
                ..syn()
            },
            Some(true),
        ),
        (
            "doff 15, 40 options, padding",
            ForgedV4 {
                doff: 15,
                tcp_options: vec![1; 40],
                pad: 10,
                ..syn()
            },
            Some(true),
        ),
        (
            "doff 15, options cut by total",
            ForgedV4 {
                doff: 15,
                tcp_options: vec![1; 40],
                total: Total::Less(4),
                ..syn()
            },
            Some(false),
        ),
        (
            "doff 5, options as payload",
            ForgedV4 {
                tcp_options: vec![2, 4, 5, 0xb4],
                ..syn()
            },
            Some(true),
        ),
        (
            "nmap scan SYN, MSS 1460",
            ForgedV4 {
                doff: 6,
                tcp_options: vec![2, 4, 5, 0xb4],
                ..syn()
            },
            Some(true),
        ),
        (
            "TCP 19 bytes",
            ForgedV4 {
                total: Total::Less(1),
                pad: 1,
                ..syn()
            },
            Some(false),
        ),
        (
            "NS flag",
            ForgedV4 {
                tcp_flags: 0x102,
                ..syn()
            },
            Some(true),
        ),
        (
            "zmap id",
            ForgedV4 {
                id: 54321,
                window: 65535,
                ..syn()
            },
            Some(true),
        ),
    ];
    let udp = |payload: Vec<u8>, udp_len: Option<u16>| ForgedV4 {
        proto: 17,
        payload,
        udp_len,
        ..syn()
    };
    cases.extend([
        ("UDP", udp(b"abc".to_vec(), None), Some(true)),
        ("UDP empty", udp(Vec::new(), None), Some(true)),
        ("UDP length 0", udp(b"abc".to_vec(), Some(0)), Some(true)),
        ("UDP length 7", udp(b"abc".to_vec(), Some(7)), Some(true)),
        (
            "UDP length past total",
            udp(b"abc".to_vec(), Some(400)),
            Some(true),
        ),
        (
            "UDP length short",
            udp(b"abcdef".to_vec(), Some(9)),
            Some(true),
        ),
        (
            "UDP 300 C",
            ForgedV4 {
                id: 0x1042,
                ..udp(vec![b'C'; 300], None)
            },
            Some(true),
        ),
        (
            "UDP 300 C, length field 8",
            ForgedV4 {
                id: 0x1042,
                ..udp(vec![b'C'; 300], Some(8))
            },
            Some(true),
        ),
        (
            "UDP 7 bytes",
            ForgedV4 {
                total: Total::Less(1),
                pad: 4,
                ..udp(Vec::new(), None)
            },
            Some(false),
        ),
        (
            "UDP with padding",
            ForgedV4 {
                pad: 20,
                ..udp(b"x".to_vec(), None)
            },
            Some(true),
        ),
        (
            "UDP MF",
            ForgedV4 {
                frag: 0x2000,
                ..udp(b"x".to_vec(), None)
            },
            Some(false),
        ),
        (
            "SCTP",
            ForgedV4 {
                proto: 132,
                ..syn()
            },
            Some(false),
        ),
        ("ICMP", ForgedV4 { proto: 1, ..syn() }, Some(false)),
        ("AH", ForgedV4 { proto: 51, ..syn() }, Some(false)),
        ("GRE", ForgedV4 { proto: 47, ..syn() }, Some(false)),
    ]);
    for (name, forged, fast_path) in &cases {
        for (link, frame) in forged.frames() {
            let _ = assert_as_etherparse_reads(link, &frame);
            if let Some(expected) = fast_path {
                assert_eq!(fast(link, &frame), *expected, "{name} {link:?}");
            }
        }
    }
}

pub(crate) fn arb_forged_v4() -> impl Strategy<Value = ForgedV4> {
    let total = prop_oneof![
        6 => Just(Total::Exact),
        1 => Just(Total::Header),
        1 => (1u16..8).prop_map(Total::Less),
        1 => (1u16..8).prop_map(Total::More),
        1 => any::<u16>().prop_map(Total::Any),
        1 => (0u16..80).prop_map(Total::Any),
    ];
    let frag = prop_oneof![
        4 => Just(0u16),
        2 => Just(0x4000u16),
        1 => Just(0x8000u16),
        1 => Just(0x2000u16),
        1 => any::<u16>(),
    ];
    let proto = prop_oneof![4 => Just(6u8), 3 => Just(17u8), 1 => any::<u8>()];
    let options = prop_oneof![
        2 => Just(Vec::new()),
        1 => Just(vec![2, 4, 5, 0xb4]),
        1 => Just(vec![3, 3, 10, 1, 2, 4, 1, 9, 8, 10, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 4, 2]),
        1 => proptest::collection::vec(any::<u8>(), 0..44),
    ];
    let payload = prop_oneof![
        3 => Just(Vec::new()),
        1 => Just(vec![b'C'; 300]),
        1 => Just(b"GET / HTTP/1.0\r\n\r\n".to_vec()),
        1 => proptest::collection::vec(any::<u8>(), 0..48),
    ];
    (
        (
            prop_oneof![8 => Just(4u8), 1 => 0u8..16],
            prop_oneof![6 => Just(5u8), 2 => 5u8..16, 1 => 0u8..5],
            total,
            prop_oneof![Just(54321u16), Just(0x1042), any::<u16>()],
            frag,
            proto,
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..40),
        ),
        (
            prop_oneof![2 => Just(None), 3 => Just(Some(())), 1 => Just(None)],
            0u8..16,
            prop_oneof![
                Just(0x002u16),
                Just(0x0c2),
                Just(0x02b),
                Just(0x010),
                0u16..0x200
            ],
            prop_oneof![Just(1024u16), Just(65535), Just(128), Just(1), any::<u16>()],
            any::<u32>(),
            options,
            prop_oneof![3 => Just(None), 1 => any::<u16>().prop_map(Some)],
            (
                any::<bool>(),
                payload,
                prop_oneof![4 => Just(0usize), 1 => 0usize..30],
                0usize..24,
            ),
        ),
    )
        .prop_map(
            |(
                (version, ihl, total, id, frag, proto, ip_sum_right, ip_options),
                (consistent, doff, tcp_flags, window, seq, tcp_options, udp_len, rest),
            )| {
                let (l4_sum_right, payload, cut, pad) = rest;
                // Mostly a data offset that covers the options written, else any.
                let doff = if consistent.is_some() {
                    u8::try_from(5 + tcp_options.len().div_ceil(4))
                        .unwrap_or(15)
                        .min(15)
                } else {
                    doff
                };
                let mut tcp_options = tcp_options;
                if consistent.is_some() {
                    tcp_options.resize((usize::from(doff) - 5) * 4, 0);
                }
                ForgedV4 {
                    version,
                    ihl,
                    total,
                    id,
                    frag,
                    proto,
                    ip_sum_right,
                    ip_options,
                    doff,
                    tcp_flags,
                    window,
                    seq,
                    tcp_options,
                    udp_len,
                    l4_sum_right,
                    payload,
                    cut,
                    pad,
                    port: 22,
                    reverse: false,
                }
            },
        )
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]

    /// IPv4 TCP and UDP headers forged field by field (not bytes flipped), on every link type:
    /// the fast path reads what etherparse reads, [`read`] what etherparse alone reads, the
    /// fields read one at a time are the shape's and the rules judge them the same.
    #[test]
    fn issue_29_red_b_forged_ipv4_headers_read_as_etherparse_reads(forged in arb_forged_v4()) {
        for (link, frame) in forged.frames() {
            let _ = assert_as_etherparse_reads(link, &frame);
        }
    }
}

/// The red team's fix (b): an IPv4 total length under the header's length is one the kernel
/// drops, read as malformed on every link type; a total length 0 stays etherparse's lax read
/// (the rest of the frame) where the capture cut the frame, or where it is over 64 KiB (BIG
/// TCP's GRO packets declare 0), and the fast path leaves all of them to etherparse.
#[test]
fn issue_29_red_b_a_total_length_under_the_header_is_malformed_unless_it_may_be_big_tcp() {
    let whole = Metadata {
        whole: true,
        ..Metadata::default()
    };
    let cut = Metadata::default();
    for total in [0u16, 1, 19, 20 * 3 - 1] {
        for ihl in [5u8, 15] {
            let forged = ForgedV4 {
                total: Total::Any(total),
                ihl,
                ..ForgedV4::syn()
            };
            for (link, frame) in forged.frames() {
                assert!(!fast(link, &frame), "{total} {ihl} {link:?}");
                let header_short = usize::from(total) < usize::from(ihl) * 4;
                if header_short {
                    assert_eq!(
                        read(link, &frame, whole).map(|s| s.packet),
                        Err(Skip::Malformed),
                        "{total} {ihl} {link:?}"
                    );
                }
                assert_eq!(
                    read(link, &frame, cut).is_ok(),
                    total == 0 || !header_short,
                    "{total} {ihl} {link:?}"
                );
            }
        }
    }
    // A BIG TCP packet (total length 0, over 64 KiB) captured whole: read by the lax slice.
    let big = ForgedV4 {
        total: Total::Any(0),
        tcp_flags: 0x010,
        payload: vec![0; 70_000],
        ..ForgedV4::syn()
    };
    let bytes = big.bytes();
    let seen = read(LinkType::RawIp, &bytes, whole).expect("read");
    assert_eq!(seen.packet.dst_port, 22);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]

    /// Any bytes after an IPv4 header's first byte (0x45–0x4f, so that most reach the fast
    /// path's checks), as a frame of every link type: the fast path and [`read`] read what
    /// etherparse alone reads (the `packet` fuzz target asserts this for Ethernet and raw IP
    /// only).
    #[test]
    fn issue_29_red_b_any_bytes_after_an_ipv4_start_read_as_etherparse_reads(
        first in 0x40u8..0x50,
        rest in proptest::collection::vec(any::<u8>(), 0..120),
        proto in prop_oneof![Just(6u8), Just(17u8), any::<u8>()],
        frag in prop_oneof![Just(0u16), Just(0x4000u16), any::<u16>()],
    ) {
        let mut ip = vec![first];
        ip.extend_from_slice(&rest);
        if ip.len() > 9 {
            ip[9] = proto;
        }
        if ip.len() > 7 {
            ip[6..8].copy_from_slice(&frag.to_be_bytes());
        }
        // The total length mostly what was written, or under it (Ethernet padding).
        if ip.len() > 3 && rest.first().is_some_and(|b| b & 1 == 0) {
            let len = clamp16(ip.len().saturating_sub(usize::from(rest[0] % 8)));
            ip[2..4].copy_from_slice(&len.to_be_bytes());
        }
        let forged = ip;
        for (link, head) in [
            (LinkType::RawIp, &[][..]),
            (LinkType::Ethernet, &[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 8, 0][..]),
            (LinkType::LinuxSll, &[0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 2, 0, 0, 8, 0][..]),
            (
                LinkType::LinuxSll2,
                &[8, 0, 0, 0, 0, 0, 0, 3, 0, 1, 0, 6, 2, 0, 0, 0, 0, 2, 0, 0][..],
            ),
            (LinkType::Loopback, &[2, 0, 0, 0][..]),
        ] {
            let mut frame = head.to_vec();
            frame.extend_from_slice(&forged);
            let _ = assert_as_etherparse_reads(link, &frame);
        }
    }
}
