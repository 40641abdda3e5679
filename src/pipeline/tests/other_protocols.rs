//! Issue 28: SCTP INIT and COOKIE ECHO scans, IP protocol scans, and the traffic of peers that
//! speak SCTP or other IP protocols, through the pipeline.

use super::*;
use crate::capture::bpf::frames;

fn parsed(frame: &[u8], direction: Direction) -> Result<wire::Full, Skip> {
    wire::parse_full(LinkType::Ethernet, frame).map(|mut p| {
        p.direction = direction;
        p
    })
}

fn init(port: u16) -> Vec<u8> {
    frames::sctp_frame(ip(SCANNER), ip(LOCAL), 40000, port, 1, 0)
}

fn protocol(src: &str, number: u8) -> Vec<u8> {
    frames::ip_frame(ip(src), ip(LOCAL), number, &[0; 8])
}

#[test]
fn an_sctp_init_scan_is_detected_and_says_its_ports() {
    let mut p = pipeline(&[]);
    let d = (1..=20)
        .find_map(|port| p.process(at(0), parsed(&init(port), Direction::Incoming)))
        .expect("an INIT scan of closed ports");
    assert_eq!(d.kinds.to_string(), "sctp-init");
    // Seven privileged ports of ordinary evidence reach the default threshold of 21.
    assert_eq!(d.ports.len(), 7);
    assert!(d.ports.iter().all(|&(proto, _)| proto == Proto::Sctp));
    assert_eq!(d.summary(), "sctp-init scan, 7 ports in 0.0s");
    assert_eq!(p.counters().probes, 7);
}

#[test]
fn a_cookie_echo_scan_weighs_as_a_stealth_scan() {
    let mut p = pipeline(&[]);
    let d = (1..=20)
        .find_map(|port| {
            let frame = frames::sctp_frame(ip(SCANNER), ip(LOCAL), 40000, port, 10, 9);
            p.process(at(0), parsed(&frame, Direction::Incoming))
        })
        .expect("a COOKIE ECHO scan");
    assert_eq!(d.kinds.to_string(), "sctp-cookie-echo");
    assert_eq!(d.ports.len(), 4, "3 x 2 per port: four ports reach 21");
}

/// An SCTP client's INIT to a listener is answered by an INIT ACK: the port is no trap from
/// then on, and the INIT no longer counts (as a SYN answered by a SYN+ACK). With the sctp
/// module missing, the kernel answers "protocol unreachable" and no port is taken for a
/// listener.
#[test]
fn an_init_answered_with_an_init_ack_was_no_probe() {
    let mut p = pipeline(&[]);
    for port in 1..=5 {
        assert_eq!(
            p.process(at(0), parsed(&init(port), Direction::Incoming)),
            None
        );
    }
    p.process(at(0), parsed(&init(38412), Direction::Incoming));
    let init_ack = frames::sctp_frame(ip(LOCAL), ip(SCANNER), 38412, 40000, 2, 0x1234);
    p.process(at(0), parsed(&init_ack, Direction::Outgoing));
    assert!(p.listeners().on_any_address(Proto::Sctp, 38412));
    assert!(!p.listeners().on_any_address(Proto::Tcp, 38412));
    // A client that connects again, and again: never a probe.
    for _ in 0..10 {
        assert_eq!(
            p.process(at(1), parsed(&init(38412), Direction::Incoming)),
            None
        );
    }
    let d = (6..=7)
        .find_map(|port| p.process(at(1), parsed(&init(port), Direction::Incoming)))
        .expect("seven closed ports");
    assert!(!d.ports.contains(&(Proto::Sctp, 38412)), "{:?}", d.ports);
}

/// A COOKIE ECHO that answers this host's INIT ACK is the client's handshake, not a probe.
#[test]
fn a_cookie_echo_after_our_init_ack_is_conversation() {
    let mut p = pipeline(&[]);
    for port in 1..=10 {
        let init_ack = frames::sctp_frame(ip(LOCAL), ip(SCANNER), port, 40000, 2, 7);
        p.process(at(0), parsed(&init_ack, Direction::Outgoing));
        let cookie = frames::sctp_frame(ip(SCANNER), ip(LOCAL), 40000, port, 10, 7);
        assert_eq!(p.process(at(0), parsed(&cookie, Direction::Incoming)), None);
    }
    assert_eq!(p.counters().probes, 0, "{:?}", p.counters());
}

#[test]
fn an_ip_protocol_scan_is_detected_at_its_seventh_protocol() {
    let mut p = pipeline(&[]);
    let mut found = None;
    for number in 2..=255u8 {
        if let Some(d) = p.process(
            at(0),
            parsed(&protocol(SCANNER, number), Direction::Incoming),
        ) {
            found = Some((number, d));
            break;
        }
    }
    let (number, d) = found.expect("an IP protocol scan");
    // Protocols 2, 3, 4, 5, 7, 8, 9 (6 is TCP, which nmap -sO probes with a TCP segment).
    assert_eq!(number, 9);
    assert_eq!(d.kinds.to_string(), "ip-protocol");
    assert_eq!(d.summary(), "ip-protocol scan, 7 IP protocols in 0.0s");
    assert_eq!(d.ports.first(), Some(&(Proto::Ip, 2)));
}

/// A peer that speaks GRE, ESP, AH, IP in IP and ICMP with this host, as tunnels and IPsec
/// do, all day: never a scanner, whether the host answers in the same protocols (then each is
/// a conversation) or not (four protocols are short of the seven a detection needs).
#[test]
fn a_peer_speaking_gre_esp_ip_in_ip_and_icmp_is_no_scanner() {
    const PEER: &str = "203.0.113.9";
    for answered in [true, false] {
        let mut p = pipeline(&[]);
        for second in 0..120 {
            for number in [47u8, 50, 51, 4, 1] {
                if answered {
                    let ours = frames::ip_frame(ip(LOCAL), ip(PEER), number, &[0; 8]);
                    p.process(at(second), parsed(&ours, Direction::Outgoing));
                }
                let theirs = protocol(PEER, number);
                assert_eq!(
                    p.process(at(second), parsed(&theirs, Direction::Incoming)),
                    None,
                    "protocol {number}, answered: {answered}"
                );
            }
        }
        if answered {
            assert_eq!(p.counters().probes, 0, "{:?}", p.counters());
        }
        assert_eq!(p.counters().detections, 0);
    }
}

/// Forged packets of every protocol from many sources: memory stays within the detector's
/// bounds (sources and protocols per source), unroutable and never-block sources make no
/// state at all, and a packet with a broken IPv4 header counts for nothing.
#[test]
fn a_flood_of_odd_protocols_is_bounded_and_makes_no_state_for_forbidden_sources() {
    let detector = DetectorConfig {
        max_sources: 16,
        max_ports_per_source: 8,
        ..DetectorConfig::default()
    };
    let mut traps = Traps::new(TrapMode::Unused, PortSet::new(), PortSet::new(), None);
    traps.set_listeners(Listeners::new());
    let mut p = Pipeline::new(
        detector,
        traps,
        NeverBlockList::new(Vec::new()),
        [ip(LOCAL)],
        7,
    );
    for source in 0..200u8 {
        let src = format!("203.0.113.{source}");
        for number in 0..=255u8 {
            p.process(at(0), parsed(&protocol(&src, number), Direction::Incoming));
        }
    }
    let stats = p.detector_stats();
    assert!(stats.tracked <= 2 * 16, "{stats:?}");
    assert!(p.ports_of(ip("203.0.113.199"), 1000).len() <= 8);
    let before = p.counters().probes;
    for src in ["127.0.0.1", "0.0.0.0", "224.0.0.5", "169.254.1.1"] {
        for number in 2..=255u8 {
            p.process(at(1), parsed(&protocol(src, number), Direction::Incoming));
        }
    }
    assert_eq!(p.counters().probes, before);
    let mut broken = protocol("203.0.113.250", 47);
    broken[14 + 10] ^= 1;
    p.process(at(1), parsed(&broken, Direction::Incoming));
    assert_eq!(p.counters().probes, before);
    assert_eq!(p.counters().bad_checksum, 1);
}
