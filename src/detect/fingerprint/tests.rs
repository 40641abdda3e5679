use super::*;
use crate::wire::shape::{Head, TcpOptions};
use crate::wire::{Direction, Full, Integrity, Shape};

/// The probe `p` looks like ([`super::recognise`] with its shape).
fn recognise(p: &Full) -> Option<Mark> {
    super::recognise(p, &p.shape)
}

fn syn(window: u16, options: &[u8], df: bool) -> Full {
    tcp(TcpFlags::SYN, window, options, df)
}

fn tcp(flags: TcpFlags, window: u16, options: &[u8], df: bool) -> Full {
    Full {
        packet: Packet {
            direction: Direction::Incoming,
            ifindex: None,
            src: "203.0.113.7".parse().unwrap(),
            dst: "198.51.100.1".parse().unwrap(),
            src_port: 40000,
            dst_port: 22,
            tcp_flags: Some(flags),
            window,
            other: None,
        },
        integrity: Integrity::Valid,
        shape: Shape {
            ttl: 64,
            ip_id: 0x1234,
            dont_fragment: df,
            seq: 0x0102_0304,
            options: TcpOptions::new(options),
            ..Shape::default()
        },
    }
}

fn udp(payload: &[u8], declared: u16, ip_id: u16) -> Full {
    Full {
        packet: Packet {
            tcp_flags: None,
            window: 0,
            ..tcp(TcpFlags::SYN, 0, &[], false).packet
        },
        integrity: Integrity::Valid,
        shape: Shape {
            ip_id,
            payload_len: declared,
            head: Head::new(payload),
            ..Shape::default()
        },
    }
}

fn names(p: &Full) -> Option<(&'static str, &'static str)> {
    recognise(p).map(|m| (m.tool().name(), m.probe()))
}

/// Every nmap OS-detection TCP probe, as nmap 7.93 sent it in the lab
/// (`tests/data/nmap_os_one_open.pcap`), is recognised by its flags, window and options.
#[test]
fn nmap_os_probes_are_recognised_by_flags_window_and_options() {
    for (flags, window, options, probe) in NMAP_OS_TCP {
        let p = tcp(TcpFlags::from_bits(flags), window, options, false);
        assert_eq!(recognise(&p), Some(probe));
        assert_eq!(probe.tool(), Tool::NmapOs);
        // nmap sets the ECN probe's reserved bit (NS): still the same probe.
        let ns = tcp(
            TcpFlags::from_bits(flags) | TcpFlags::NS,
            window,
            options,
            true,
        );
        assert_eq!(recognise(&ns), Some(probe));
        // Any other window, or one option byte changed, is not nmap's probe.
        assert_ne!(
            recognise(&tcp(
                TcpFlags::from_bits(flags),
                window ^ 0x40,
                options,
                false
            )),
            Some(probe)
        );
        let mut changed = options.to_vec();
        changed[1] ^= 1;
        assert_eq!(
            recognise(&tcp(TcpFlags::from_bits(flags), window, &changed, false)),
            None
        );
    }
    let names: Vec<&str> = NMAP_OS_TCP.iter().map(|(.., m)| m.probe()).collect();
    assert_eq!(
        names,
        [
            "SEQ1", "SEQ2", "SEQ3", "SEQ4", "SEQ5", "SEQ6", "ECN", "T2", "T3", "T4", "T5", "T6",
            "T7"
        ]
    );
}

#[test]
fn nmap_u1_is_300_cs_with_its_ip_id() {
    let cs = [b'C'; 32];
    assert_eq!(
        names(&udp(&cs, 300, 0x1042)),
        Some(("nmap OS detection", "U1"))
    );
    // The snap length may cut the payload: what is there must be Cs.
    assert_eq!(recognise(&udp(&cs[..4], 300, 0x1042)), Some(Mark::U1));
    assert_eq!(recognise(&udp(&cs, 300, 0x1043)), None);
    assert_eq!(recognise(&udp(&cs, 299, 0x1042)), None);
    assert_eq!(recognise(&udp(b"CCCCCCCD", 300, 0x1042)), None);
    assert_eq!(recognise(&udp(&[], 300, 0x1042)), None);
    // Over IPv6 there is no IP ID.
    let mut v6 = udp(&cs, 300, 0);
    v6.dst = "2001:db8::1".parse().unwrap();
    assert_eq!(recognise(&v6), Some(Mark::U1));
}

/// nmap's port-scan probes as in `tests/data/nmap_{syn,fin}_top1000.pcap`.
#[test]
fn nmap_port_scan_probes_are_window_1024_and_mss_1460_alone() {
    let mss = [2, 4, 5, 0xb4];
    assert_eq!(
        names(&syn(1024, &mss, false)),
        Some(("nmap port scan", "SYN"))
    );
    assert_eq!(
        names(&tcp(TcpFlags::FIN, 1024, &[], false)),
        Some(("nmap port scan", "FIN"))
    );
    assert_eq!(
        names(&tcp(TcpFlags::from_bits(0), 1024, &[], false)),
        Some(("nmap port scan", "NULL"))
    );
    assert_eq!(recognise(&syn(1024, &mss, true)), None, "nmap sets no DF");
    assert_eq!(recognise(&syn(1025, &mss, false)), None);
    assert_eq!(recognise(&syn(1024, &[2, 4, 5, 0xb4, 1, 1], false)), None);
}

/// masscan's SYN from `tests/data/masscan_1_100.pcap`: to 198.51.100.1 port 55, sequence
/// 720373540, IP ID 0x6312.
#[test]
fn masscan_is_its_ip_id_relation() {
    let mut p = syn(1024, &[], false);
    p.dst_port = 55;
    p.shape.seq = 720_373_540;
    p.shape.ip_id = 0x6312;
    assert_eq!(names(&p), Some(("masscan", "SYN")));
    p.shape.ip_id ^= 1;
    assert_eq!(recognise(&p), None);
    p.shape.ip_id ^= 1;
    p.shape.dont_fragment = true;
    assert_eq!(recognise(&p), None);
}

#[test]
fn zmap_is_ip_id_54321() {
    let mut p = syn(65535, &[], false);
    p.shape.ip_id = 54321;
    assert_eq!(names(&p), Some(("zmap", "SYN")));
    assert_eq!(names(&udp(b"x", 1, 54321)), Some(("zmap", "UDP")));
    p.window = 64240;
    assert_eq!(recognise(&p), None);
    p.window = 65535;
    p.shape.dont_fragment = true;
    assert_eq!(recognise(&p), None);
}

/// Ordinary clients' SYNs, one vector per stack (windows and option orders as p0f 3's
/// `p0f.fp` describes them, and Linux's as the lab's curl and ssh sent them,
/// `tests/data/linux_clients.pcap`), match no rule.
#[test]
fn no_ordinary_client_stack_matches() {
    let ts = |v: u32| {
        let mut t = vec![8, 10];
        t.extend_from_slice(&v.to_be_bytes());
        t.extend_from_slice(&[0, 0, 0, 0]);
        t
    };
    let cat = |parts: &[&[u8]]| parts.concat();
    let mss = |m: u16| [&[2u8, 4][..], &m.to_be_bytes()].concat();
    let clients: Vec<(&str, u16, Vec<u8>)> = vec![
        // Linux 3.x-6.x (and Android): MSS, SACK, TS, NOP, WScale 7-10.
        (
            "linux",
            64240,
            cat(&[&mss(1460), &[4, 2], &ts(2166689546), &[1, 3, 3, 10]]),
        ),
        (
            "linux v6",
            64800,
            cat(&[&mss(1440), &[4, 2], &ts(1489404117), &[1, 3, 3, 10]]),
        ),
        (
            "android",
            65535,
            cat(&[&mss(1460), &[4, 2], &ts(1), &[1, 3, 3, 9]]),
        ),
        // Windows 7-11: MSS, NOP, WScale 8, NOP, NOP, SACK.
        (
            "windows",
            64240,
            cat(&[&mss(1460), &[1, 3, 3, 8, 1, 1, 4, 2]]),
        ),
        ("windows xp", 65535, cat(&[&mss(1460), &[1, 1, 4, 2]])),
        // macOS and iOS: MSS, NOP, WScale 6, NOP, NOP, TS, SACK, EOL.
        (
            "macos",
            65535,
            cat(&[
                &mss(1460),
                &[1, 3, 3, 6, 1, 1],
                &ts(0x1234_5678),
                &[4, 2, 0, 0],
            ]),
        ),
        // A timestamp of all ones from a client with nmap's window would still need nmap's
        // exact option order.
        (
            "all-ones clock",
            64240,
            cat(&[&mss(1460), &[4, 2], &ts(u32::MAX), &[1, 3, 3, 7]]),
        ),
    ];
    for (name, window, options) in clients {
        // Every one of these stacks sets DF (path MTU discovery); without it, only an IP ID
        // of 54321 with a window of 65535 would be taken for zmap's (a label, never a
        // detection on its own).
        for (df, ids) in [
            (true, &[0, 1, 54321, 0x1042][..]),
            (false, &[0, 1, 0x1042][..]),
        ] {
            let mut p = syn(window, &options, df);
            for &id in ids {
                p.shape.ip_id = id;
                assert_eq!(recognise(&p), None, "{name} ip id {id} df {df}");
            }
        }
    }
    // An ordinary DNS query and a QUIC initial.
    assert_eq!(
        recognise(&udp(b"\x12\x34\x01\x00\x00\x01", 29, 0x1042)),
        None
    );
    assert_eq!(recognise(&udp(&[0xc3; 32], 1200, 7)), None);
}

#[test]
fn signatures_name_the_tool_and_its_probes_in_order() {
    let mut marks = Marks::default();
    assert_eq!(marks.signature(), None);
    marks.insert(Mark(19));
    assert_eq!(marks.signature().unwrap().to_string(), "masscan (SYN)");
    assert!(!marks.decisive());
    for probe in [Mark(8), Mark(7), Mark(6)] {
        marks.insert(probe);
    }
    let signature = marks.signature().unwrap();
    assert_eq!(signature.to_string(), "nmap OS detection (ECN, T2, T3)");
    assert!(marks.decisive());
    assert!(decisive(&signature));
    assert!(!decisive(&Signature {
        tool: "nmap OS detection",
        probes: vec!["T2", "T3"],
    }));
}

mod may_match {
    use super::*;
    use proptest::prelude::*;

    /// Windows the rules name, and others.
    fn window() -> impl Strategy<Value = u16> {
        prop_oneof![
            prop::sample::select(vec![
                1u16, 3, 4, 16, 63, 128, 256, 512, 1024, 31337, 32768, 65535
            ]),
            any::<u16>(),
        ]
    }

    /// nmap's timestamp option (value 0xFFFFFFFF, echo 0), alone.
    const TS_PROBE: [u8; 10] = [8, 10, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];

    /// Option sets the rules name, and others.
    fn options() -> impl Strategy<Value = Vec<u8>> {
        let named: Vec<Vec<u8>> = NMAP_OS_TCP
            .iter()
            .map(|(_, _, o, _)| o.to_vec())
            .chain([vec![2, 4, 5, 0xb4], Vec::new(), TS_PROBE.to_vec()])
            .collect();
        prop_oneof![
            prop::sample::select(named),
            prop::collection::vec(any::<u8>(), 0..40)
        ]
    }

    proptest! {
        /// `may_match` is never wrong when it says no: whatever the rest of the header,
        /// `recognise` finds nothing then.
        #[test]
        fn a_packet_no_rule_may_match_is_recognised_by_none(
            flags in 0u16..0x200,
            window in window(),
            options in options(),
            ip_id in prop_oneof![Just(54321u16), Just(0x1042u16), any::<u16>()],
            df in any::<bool>(),
            seq in any::<u32>(),
        ) {
            let mut p = tcp(TcpFlags::from_bits(flags), window, &options, df);
            p.shape.ip_id = ip_id;
            p.shape.seq = seq;
            if !super::super::may_match(&p) {
                prop_assert_eq!(recognise(&p), None);
            }
        }
    }

    #[test]
    fn a_conversations_ack_needs_no_shape_and_every_tool_probe_may_match() {
        // An established connection's segments: ACK and PSH+ACK with an ordinary window.
        for flags in [
            TcpFlags::ACK,
            TcpFlags::PSH | TcpFlags::ACK,
            TcpFlags::FIN | TcpFlags::ACK,
        ] {
            assert!(!super::super::may_match(&tcp(flags, 501, &[], true)));
        }
        // Every probe the rules name may match.
        for &(f, window, options, _) in &NMAP_OS_TCP {
            let p = tcp(TcpFlags::from_bits(f), window, options, false);
            assert!(super::super::may_match(&p), "{p:?}");
        }
        assert!(super::super::may_match(&udp(&[b'C'; 300], 300, 0x1042)));
    }
}
