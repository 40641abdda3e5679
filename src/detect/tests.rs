use super::*;
use crate::wire::TcpFlags;

fn ms(n: u64) -> Timestamp {
    Timestamp::from_micros(1_700_000_000_000_000 + n * 1000)
}

fn probe(at_ms: u64, src: &str, port: u16, kind: ProbeKind) -> Probe {
    Probe {
        at: ms(at_ms),
        src: src.parse().unwrap(),
        dst: "198.51.100.1".parse().unwrap(),
        proto: if kind == ProbeKind::Udp {
            Proto::Udp
        } else {
            Proto::Tcp
        },
        dst_port: port,
        kind,
    }
}

/// Feeds `(ms, port, kind)` probes from one source; returns the index of each probe that made a
/// detection, and the detections.
fn feed(
    d: &mut Detector,
    src: &str,
    probes: impl IntoIterator<Item = (u64, u16, ProbeKind)>,
) -> (Vec<usize>, Vec<Detection>) {
    let mut at = Vec::new();
    let mut found = Vec::new();
    for (i, (t, port, kind)) in probes.into_iter().enumerate() {
        if let Some(det) = settled(d, &probe(t, src, port, kind)) {
            at.push(i);
            found.push(det);
        }
    }
    (at, found)
}

/// One probe, and the detection it makes, settled with no port open since.
fn settled(d: &mut Detector, p: &Probe) -> Option<Detection> {
    let candidate = d.observe(p)?;
    d.settle(candidate, |_, _| false)
}

/// The candidate the probes make, not yet settled.
fn candidate(
    d: &mut Detector,
    src: &str,
    probes: impl IntoIterator<Item = (u64, u16, ProbeKind)>,
) -> Candidate {
    probes
        .into_iter()
        .find_map(|(t, port, kind)| d.observe(&probe(t, src, port, kind)))
        .expect("the probes cross the threshold")
}

/// `case!(name, [probes], expected indices of detections)`: one line per behaviour.
macro_rules! case {
    ($name:ident, $probes:expr, $expect:expr) => {
        #[test]
        fn $name() {
            let mut d = Detector::new(DetectorConfig::default());
            let (at, _) = feed(&mut d, "203.0.113.7", $probes);
            let expected: Vec<usize> = $expect;
            assert_eq!(at, expected);
        }
    };
}

const SYN: ProbeKind = ProbeKind::Syn;
const FIN: ProbeKind = ProbeKind::Fin;
const NULL: ProbeKind = ProbeKind::Null;
const UDP: ProbeKind = ProbeKind::Udp;

fn ports(kind: ProbeKind, list: impl IntoIterator<Item = u16>) -> Vec<(u64, u16, ProbeKind)> {
    list.into_iter()
        .enumerate()
        .map(|(i, p)| (i as u64 * 10, p, kind))
        .collect()
}

case!(
    seven_privileged_syn_ports_cross_the_threshold,
    ports(SYN, 1..=7),
    vec![6]
);
case!(six_privileged_syn_ports_do_not, ports(SYN, 1..=6), vec![]);
case!(
    twenty_one_unprivileged_syn_ports_cross_it,
    ports(SYN, 2000..=2020),
    vec![20]
);
case!(
    twenty_unprivileged_syn_ports_do_not,
    ports(SYN, 2000..=2019),
    vec![]
);
case!(
    repeated_probes_of_one_port_never_add_up,
    ports(SYN, [23; 500]),
    vec![]
);
case!(
    four_privileged_fin_ports_weigh_as_much_as_eight_syn,
    ports(FIN, 1..=4),
    vec![3]
);
case!(
    one_null_probe_to_a_privileged_port_is_enough,
    ports(NULL, [111]),
    vec![0]
);
case!(
    three_null_probes_to_unprivileged_ports_are_enough,
    ports(NULL, 5000..=5002),
    vec![2]
);
case!(udp_weighs_like_syn, ports(UDP, 1..=7), vec![6]);
case!(
    a_port_probed_again_with_stronger_evidence_is_upgraded,
    vec![(0, 23, SYN), (10, 23, NULL)],
    vec![1]
);
case!(
    ports_that_left_the_window_stop_counting,
    (1..=6)
        .map(|p| (0, p, SYN))
        .chain([(60_001, 7, SYN)])
        .collect::<Vec<_>>(),
    vec![]
);
case!(
    ports_inside_the_window_still_count,
    (1..=6)
        .map(|p| (0, p, SYN))
        .chain([(59_999, 7, SYN)])
        .collect::<Vec<_>>(),
    vec![6]
);
case!(
    odd_flags_with_syn_and_fin_are_impossible,
    vec![(0, 80, ProbeKind::Odd(TcpFlags::SYN | TcpFlags::FIN))],
    vec![0]
);

#[test]
fn a_detection_says_who_what_where_and_when() {
    let mut d = Detector::new(DetectorConfig::default());
    let (_, found) = feed(
        &mut d,
        "203.0.113.7",
        [
            (0, 25, SYN),
            (500, 22, SYN),
            (500, 22, SYN),
            (1000, 21, FIN),
            (2000, 23, FIN),
            (3000, 80, SYN),
        ],
    );
    assert_eq!(found.len(), 1);
    let det = &found[0];
    assert_eq!(det.source, "203.0.113.7/32".parse::<IpNet>().unwrap());
    assert_eq!(det.addr, "203.0.113.7".parse::<IpAddr>().unwrap());
    assert_eq!(det.kinds.to_string(), "syn+fin");
    assert_eq!(
        det.ports,
        vec![
            (Proto::Tcp, 21),
            (Proto::Tcp, 22),
            (Proto::Tcp, 23),
            (Proto::Tcp, 25),
            (Proto::Tcp, 80)
        ]
    );
    assert_eq!((det.first_seen, det.last_seen), (ms(0), ms(3000)));
    assert_eq!(det.packets, 6);
    assert_eq!(det.score, 3 + 3 + 6 + 6 + 3);
    assert_eq!(det.summary(), "syn+fin scan, 5 ports in 3.0s");
}

#[test]
fn a_continuing_scan_is_reported_again_once_per_window() {
    let mut d = Detector::new(DetectorConfig::default());
    // One new privileged port every second for three minutes.
    let (at, found) = feed(
        &mut d,
        "203.0.113.7",
        (0..180u16).map(|i| (u64::from(i) * 1000, i + 1, SYN)),
    );
    // First at the 7th port (6 s), then one window (60 s) later, and again.
    assert_eq!(at, vec![6, 66, 126]);
    assert_eq!(found[1].packets, 60, "packets since the previous report");
    assert_eq!(
        found[1].ports.len(),
        61,
        "ports first probed within the window"
    );
}

#[test]
fn ipv6_sources_are_counted_per_64_by_default() {
    let mut d = Detector::new(DetectorConfig::default());
    let mut found = Vec::new();
    for i in 1..=7u16 {
        // Seven addresses of one /64, one privileged port each.
        let src = format!("2001:db8:0:1::{i:x}");
        found.extend(settled(&mut d, &probe(u64::from(i), &src, i, SYN)));
    }
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].source,
        "2001:db8:0:1::/64".parse::<IpNet>().unwrap()
    );
    assert_eq!(found[0].addr, "2001:db8:0:1::7".parse::<IpAddr>().unwrap());

    let mut per_address = Detector::new(DetectorConfig {
        ipv6_prefix: 128,
        ..DetectorConfig::default()
    });
    for i in 1..=7u16 {
        let src = format!("2001:db8:0:1::{i:x}");
        assert_eq!(
            settled(&mut per_address, &probe(u64::from(i), &src, i, SYN)),
            None
        );
    }
}

#[test]
fn a_million_spoofed_sources_never_exceed_the_source_capacity() {
    let config = DetectorConfig {
        max_sources: 4096,
        ..DetectorConfig::default()
    };
    let mut d = Detector::new(config);
    let mut max_tracked = 0;
    for i in 0..1_000_000u32 {
        // Each spoofed source sends one SYN to one privileged port: never a detection.
        let src = IpAddr::V4(std::net::Ipv4Addr::from(0xcb00_7100 ^ i.rotate_left(8)));
        let p = Probe {
            src,
            ..probe(u64::from(i / 1000), "203.0.113.1", 23, SYN)
        };
        assert_eq!(settled(&mut d, &p), None);
        max_tracked = max_tracked.max(d.stats().tracked);
    }
    let stats = d.stats();
    assert_eq!(max_tracked, 4096);
    assert_eq!(stats.tracked, 4096);
    assert_eq!(stats.evicted_sources, 1_000_000 - 4096);
    assert_eq!(stats.detections, 0);
    // A real scan during the flood is still found.
    let (at, _) = feed(&mut d, "198.51.100.66", ports(SYN, 1..=7));
    assert_eq!(at, vec![6]);
}

#[test]
fn the_port_cap_keeps_the_newest_ports_and_still_detects() {
    let mut d = Detector::new(DetectorConfig {
        max_ports_per_source: 21,
        threshold: 21,
        ..DetectorConfig::default()
    });
    let (at, found) = feed(&mut d, "203.0.113.9", ports(SYN, 1024..=1124));
    assert_eq!(at, vec![20]);
    assert_eq!(found[0].ports.len(), 21);
    assert_eq!(d.stats().evicted_ports, 101 - 21);
}

#[test]
fn expire_forgets_only_idle_sources() {
    let mut d = Detector::new(DetectorConfig::default());
    settled(&mut d, &probe(0, "203.0.113.1", 1, SYN));
    settled(&mut d, &probe(30_000, "203.0.113.2", 1, SYN));
    d.expire(ms(70_000));
    assert_eq!(d.stats().tracked, 1);
    assert_eq!(d.stats().expired_sources, 1);
    d.expire(ms(100_000));
    assert_eq!(d.stats().tracked, 0);
}

#[test]
fn a_clock_stepping_back_does_not_panic_or_unblock_the_window() {
    let mut d = Detector::new(DetectorConfig::default());
    let (at, _) = feed(
        &mut d,
        "203.0.113.1",
        [
            (10_000, 1, SYN),
            (0, 2, SYN),
            (5_000, 3, SYN),
            (0, 4, SYN),
            (0, 5, SYN),
            (1, 6, SYN),
            (2, 7, SYN),
        ],
    );
    assert_eq!(at, vec![6]);
}

#[test]
fn a_forgotten_source_is_judged_afresh() {
    let mut d = Detector::new(DetectorConfig::default());
    let (at, _) = feed(&mut d, "203.0.113.7", ports(SYN, 1..=7));
    assert_eq!(at, vec![6]);
    // Within the window a rescan is quiet...
    let (at, _) = feed(&mut d, "203.0.113.7", ports(SYN, 8..=14));
    assert!(at.is_empty());
    // ...unless the source was forgotten.
    d.forget("203.0.113.0/24".parse().unwrap());
    assert_eq!(d.stats().tracked, 0);
    let (at, _) = feed(&mut d, "203.0.113.7", ports(SYN, 15..=21));
    assert_eq!(at, vec![6]);
}

#[test]
fn the_kernels_answer_to_a_maimon_probe_adds_no_ack_kind() {
    let mut d = Detector::new(DetectorConfig::default());
    let (at, found) = feed(
        &mut d,
        "203.0.113.7",
        (1..=4u16).flat_map(|p| {
            [
                (u64::from(p), p, ProbeKind::Maimon),
                (u64::from(p), p, ProbeKind::Ack),
            ]
        }),
    );
    assert_eq!(at, vec![6]);
    assert_eq!(found[0].kinds.to_string(), "maimon");
}

#[test]
fn confirm_keeps_a_detection_when_no_port_has_opened() {
    let mut d = Detector::new(DetectorConfig::default());
    let found = candidate(&mut d, "203.0.113.7", ports(SYN, 1..=7));
    let detection = found.as_detection().clone();
    assert_eq!(d.settle(found, |_, _| false), Some(detection));
    assert_eq!(d.stats().detections, 1);
}

#[test]
fn confirm_withdraws_a_detection_that_a_new_service_explains() {
    let mut d = Detector::new(DetectorConfig::default());
    let found = candidate(&mut d, "203.0.113.7", ports(SYN, 1..=7));
    // Port 3 got a listener after the table was read: six closed ports (18) are no scan.
    assert_eq!(d.settle(found, |_, port| port == 3), None);
    assert_eq!(d.stats().detections, 0);
    // The port is forgotten, and the source is not muted: the next closed port crosses again.
    let (at, found) = feed(&mut d, "203.0.113.7", [(100, 10, SYN)]);
    assert_eq!(at, [0]);
    assert_eq!(found[0].ports.len(), 7);
    assert!(!found[0].ports.contains(&(Proto::Tcp, 3)));
}

#[test]
fn confirm_narrows_a_detection_that_still_stands() {
    let mut d = Detector::new(DetectorConfig::default());
    // Twenty unprivileged ports (20), then a privileged one (3): 23 crosses 21.
    let mut probes = ports(SYN, 2000..2020);
    probes.push((500, 1, SYN));
    let found = candidate(&mut d, "203.0.113.7", probes);
    let detection = found.as_detection();
    assert_eq!((detection.ports.len(), detection.score), (21, 23));
    let kept = d
        .settle(found, |proto, port| proto == Proto::Tcp && port == 2000)
        .expect("22 still crosses 21");
    assert_eq!((kept.ports.len(), kept.score), (20, 22));
    assert!(!kept.ports.contains(&(Proto::Tcp, 2000)));
}

/// Issue 13, 6: with the heaviest weights the configuration allows (1000 × 1000) a source's
/// score passed u32::MAX after 4,295 ports, and overflowed.
#[test]
fn issue_13_the_heaviest_weights_on_every_port_do_not_overflow() {
    let heaviest = Weights {
        privileged_port: 1000,
        unprivileged_port: 1000,
        ordinary: 1000,
        stealth: 1000,
        impossible: 1000,
    };
    let mut d = Detector::new(DetectorConfig {
        weights: heaviest,
        threshold: 1_000_000,
        max_ports_per_source: 65_536,
        ..DetectorConfig::default()
    });
    let found = candidate(&mut d, "203.0.113.7", ports(NULL, 1..=1));
    assert_eq!(found.as_detection().score, 1_000_000);
    let (at, _) = feed(&mut d, "203.0.113.7", ports(NULL, 2..=6000));
    assert!(at.is_empty(), "one detection, then quiet for a window");
    // The source's score kept growing past what a u32 holds; a second look that finds port 1
    // open now takes its weight off the whole.
    let kept = d.settle(found, |_, port| port == 1).expect("kept");
    assert_eq!(kept.score, 5999 * 1_000_000);
}

/// Issue 14: a detection says whether more than one address of its prefix probed, and a source
/// nothing was done about is judged again at its next probe.
#[test]
fn issue_14_several_addresses_and_reconsidering() {
    let mut d = Detector::new(DetectorConfig::default());
    let (_, lone) = feed(&mut d, "2001:db8:c::dead", ports(NULL, [21, 22, 23]));
    assert!(!lone[0].several_addresses);
    assert_eq!(lone[0].source.to_string(), "2001:db8:c::/64");
    let mut d = Detector::new(DetectorConfig::default());
    feed(&mut d, "2001:db8:c::1", ports(SYN, [21, 22, 23, 24]));
    let (_, both) = feed(&mut d, "2001:db8:c::2", ports(SYN, [25, 26, 27]));
    assert!(both[0].several_addresses);

    // Detected, then quiet for a window...
    let mut d = Detector::new(DetectorConfig::default());
    let (at, found) = feed(&mut d, "203.0.113.7", ports(NULL, [21, 22]));
    assert_eq!(
        at,
        [0],
        "detected at the first NULL probe, quiet at the second"
    );
    // ...unless nothing was done about it: then the next probe is judged again.
    d.reconsider(&found[0]);
    let (at, _) = feed(&mut d, "203.0.113.7", ports(NULL, [23]));
    assert_eq!(at, [0]);
}

/// Issue 14: a one-packet-per-source stream evicted a slow scanner from the table. One-probe
/// sources live on probation: a flood of the table's size churns only that, and the slow
/// scanner, promoted at its second probe, keeps its score and is detected.
#[test]
fn issue_14_a_slow_scanner_survives_a_one_packet_flood_of_the_tables_size() {
    let config = DetectorConfig {
        max_sources: 4096,
        window: Duration::from_secs(60),
        ..DetectorConfig::default()
    };
    let mut d = Detector::new(config);
    let mut found = Vec::new();
    // Seven SYNs to closed privileged ports, one a second. Between the first two, 4,095 new
    // one-packet sources (the probation table's size, less the scanner itself); after that,
    // 10,000 between any two, more than the whole table holds.
    for (second, port) in (1..=7u16).enumerate() {
        let at = u64::try_from(second).unwrap() * 1000;
        found.extend(settled(&mut d, &probe(at, "198.51.100.66", port, SYN)));
        let flood = if port == 1 { 4095 } else { 10_000 };
        for i in 0..flood {
            let n = i + 20_000 * u32::from(port);
            let src = IpAddr::V4(std::net::Ipv4Addr::from(0xcb00_7100 ^ n.rotate_left(8)));
            let p = Probe {
                src,
                ..probe(at + 1, "203.0.113.1", 23, SYN)
            };
            assert_eq!(settled(&mut d, &p), None);
        }
    }
    assert_eq!(found.len(), 1, "the slow scanner was evicted");
    assert_eq!(found[0].addr, "198.51.100.66".parse::<IpAddr>().unwrap());
    assert!(d.stats().tracked <= 2 * 4096);
}

/// Each kind's bit is its place in the list the names come from, so that a set names exactly
/// what it holds.
#[test]
fn scan_kinds_name_what_they_hold() {
    for (i, kind) in ScanKinds::KINDS.into_iter().enumerate() {
        assert_eq!(ScanKinds::bit(kind), 1 << i, "{kind:?}");
        assert_eq!(ScanKinds::of(kind).to_string(), kind.scan_name());
    }
    let mut mix = ScanKinds::of(ProbeKind::Udp);
    mix.insert(ScanKinds::of(ProbeKind::Syn));
    assert_eq!(mix.to_string(), "syn+udp");
}

/// `top`'s view: the sources with two probes or more, highest score first, at most `n`, with
/// their prefix, ports, kinds and probes; a one-probe source is not among them.
#[test]
fn leaders_are_the_highest_scores_now() {
    let mut d = Detector::new(DetectorConfig::default());
    feed(&mut d, "203.0.113.1", ports(SYN, [1, 2]));
    feed(&mut d, "203.0.113.2", ports(SYN, [1, 2, 3, 4]));
    feed(&mut d, "203.0.113.3", ports(SYN, [2000, 2001, 2002]));
    // Two addresses of one /64, a FIN each to an unprivileged port: 2 points each.
    feed(&mut d, "2001:db8:0:5::1", [(1, 2000, ProbeKind::Fin)]);
    feed(&mut d, "2001:db8:0:5::2", [(2, 2001, ProbeKind::Fin)]);
    feed(&mut d, "203.0.113.9", ports(SYN, [9]));
    let top = d.leaders(3);
    let sources: Vec<String> = top.iter().map(|w| w.source.to_string()).collect();
    assert_eq!(
        sources,
        ["203.0.113.2/32", "203.0.113.1/32", "2001:db8:0:5::/64"]
    );
    assert_eq!((top[0].score, top[0].ports, top[0].packets), (12, 4, 4));
    assert_eq!(top[0].kinds.to_string(), "syn");
    assert_eq!((top[2].score, top[2].ports, top[2].packets), (4, 2, 2));
    assert_eq!(top[2].kinds.to_string(), "fin");
    assert_eq!(
        d.leaders(10).len(),
        4,
        "the one-probe source is on probation"
    );
    assert!(d.leaders(0).is_empty());
}

/// A detector with tripwires on 2323/tcp and 31337/udp.
fn with_tripwires() -> Detector {
    Detector::new(DetectorConfig {
        tripwire: traps::Tripwires {
            tcp: traps::PortSet::from_ranges(&[2323..=2323]),
            udp: traps::PortSet::from_ranges(&[31337..=31337]),
        },
        ..DetectorConfig::default()
    })
}

/// Issue 27: one probe of a tripwire port is a detection, whatever the score, and says so.
#[test]
fn one_probe_of_a_tripwire_is_a_detection() {
    let mut d = with_tripwires();
    let (at, found) = feed(&mut d, "203.0.113.9", [(0, 2323, ProbeKind::Syn)]);
    assert_eq!(at, vec![0]);
    assert_eq!(found[0].tripwire, Some((Proto::Tcp, 2323)));
    assert_eq!(found[0].ports, vec![(Proto::Tcp, 2323)]);
    assert!(found[0].score < 21, "the score did not make it");
    assert!(
        found[0]
            .summary()
            .starts_with("tripwire 2323/tcp, syn scan, 1 port"),
        "{}",
        found[0].summary()
    );
    let (at, found) = feed(&mut d, "203.0.113.10", [(0, 31337, ProbeKind::Udp)]);
    assert_eq!(
        (at, found[0].tripwire),
        (vec![0], Some((Proto::Udp, 31337)))
    );
}

/// A tripwire is per protocol, a bare ACK does not trip it, other ports still need the score,
/// and the detection is not repeated within the window.
#[test]
fn tripwires_are_per_protocol_and_opening_probes_only() {
    let mut d = with_tripwires();
    let (at, _) = feed(
        &mut d,
        "203.0.113.9",
        [
            (0, 2324, ProbeKind::Syn),
            (1, 2323, ProbeKind::Ack),
            (2, 31337, ProbeKind::Syn),
        ],
    );
    assert!(at.is_empty(), "{at:?}");
    let (at, _) = feed(
        &mut d,
        "203.0.113.9",
        [(3, 2323, ProbeKind::Syn), (4, 2323, ProbeKind::Syn)],
    );
    assert_eq!(at, vec![0], "once per window");
    let (at, _) = feed(&mut d, "203.0.113.11", [(0, 23, ProbeKind::Syn)]);
    assert!(at.is_empty(), "no tripwire: one port is not a detection");
}

/// A tripwire that has a listener by the time the detection is settled is taken back.
#[test]
fn a_tripwire_with_a_listener_now_is_taken_back() {
    let mut d = with_tripwires();
    let c = d
        .observe(&probe(0, "203.0.113.9", 2323, ProbeKind::Syn))
        .expect("tripped");
    assert_eq!(
        d.settle(c, |proto, port| (proto, port) == (Proto::Tcp, 2323)),
        None
    );
    assert_eq!(d.stats().detections, 0);
}

/// Issue 28: nmap's OS probes go to the open port, where no trap is: three distinct ones from
/// a source make a detection named for them, the same probe again adds nothing, and marks
/// older than a window are forgotten.
#[test]
fn three_distinct_nmap_os_probes_make_a_named_detection() {
    use fingerprint::Mark;
    let mut d = Detector::new(DetectorConfig::default());
    let os = |name: &str| {
        (0..22u8)
            .map(mark_of)
            .find(|m: &Mark| m.tool() == fingerprint::Tool::NmapOs && m.probe() == name)
            .unwrap()
    };
    let src: IpAddr = "203.0.113.7".parse().unwrap();
    let mark = |d: &mut Detector, at: u64, name: &str| {
        d.mark(ms(at), src, os(name), Some(ProbeKind::Syn))
            .and_then(|c| d.settle(c, |_, _| true))
    };
    assert_eq!(mark(&mut d, 0, "SEQ1"), None);
    assert_eq!(mark(&mut d, 100, "SEQ2"), None);
    assert_eq!(mark(&mut d, 150, "SEQ2"), None, "the same probe again");
    // A window later the first two are forgotten.
    assert_eq!(mark(&mut d, 61_000, "SEQ3"), None);
    assert_eq!(mark(&mut d, 61_100, "SEQ4"), None);
    let found = mark(&mut d, 61_200, "SEQ5").expect("three in a window");
    // Settled with every port listening: the detection stands on its marks.
    assert_eq!(
        found.signature.as_ref().unwrap().to_string(),
        "nmap OS detection (SEQ3, SEQ4, SEQ5)"
    );
    assert_eq!(found.kinds.to_string(), "syn");
    assert_eq!(found.ports, []);
    assert_eq!(found.first_seen, ms(61_000));
    assert!(
        found
            .summary()
            .ends_with("0.2s, nmap OS detection (SEQ3, SEQ4, SEQ5)"),
        "{}",
        found.summary()
    );
    // Reported again at most once a window, like any detection.
    assert_eq!(mark(&mut d, 61_300, "SEQ6"), None);
}

/// Issue 28: a mark of a tool that sends one packet shape (masscan) makes no detection by
/// itself, however often; on a scan of trap ports it names the tool.
#[test]
fn a_lone_mark_names_a_port_scan_and_detects_nothing_alone() {
    let mut d = Detector::new(DetectorConfig::default());
    let masscan = (0..22u8)
        .map(mark_of)
        .find(|m| m.tool() == fingerprint::Tool::Masscan)
        .unwrap();
    assert!(!masscan.decisive());
    let src: IpAddr = "203.0.113.8".parse().unwrap();
    for i in 0..100 {
        assert!(d.mark(ms(i), src, masscan, Some(ProbeKind::Syn)).is_none());
    }
    let mut found = None;
    for port in 1..=7u16 {
        let p = probe(200 + u64::from(port), "203.0.113.9", port, ProbeKind::Syn);
        found = found.or(d
            .observe_marked(&p, Some(masscan))
            .and_then(|c| d.settle(c, |_, _| false)));
    }
    let found = found.expect("seven privileged ports");
    assert_eq!(found.signature.unwrap().to_string(), "masscan (SYN)");
}

/// Issue 28: marks live in the detector's per-source state, so a flood of marked packets from
/// forged sources is bounded like any other (the probation table's `max_sources`).
#[test]
fn marks_from_a_million_sources_stay_within_the_source_capacity() {
    let mut d = Detector::new(DetectorConfig {
        max_sources: 1000,
        ..DetectorConfig::default()
    });
    let seq1 = mark_of(0);
    for i in 0..1_000_000u32 {
        let src = IpAddr::V4(std::net::Ipv4Addr::from(0xcb00_7100_u32.wrapping_add(i)));
        assert!(d.mark(ms(u64::from(i / 1000)), src, seq1, None).is_none());
    }
    assert!(d.stats().tracked <= 2000, "{:?}", d.stats());
}

/// The mark with index `i` of the fingerprint table.
fn mark_of(i: u8) -> fingerprint::Mark {
    fingerprint::Mark::from_index(i).expect("an index of the table")
}

/// Issue 28: a detection with a signature is blocked without `min-ports`, so a tool's name
/// needs three marked packets: one forged packet with masscan's IP ID and an impossible flag
/// set (a detection on its own at a privileged port) is no named detection.
#[test]
fn one_marked_packet_names_nothing() {
    let mut d = Detector::new(DetectorConfig::default());
    let masscan = (0..22u8)
        .map(mark_of)
        .find(|m| m.tool() == fingerprint::Tool::Masscan)
        .unwrap();
    let p = probe(0, "203.0.113.10", 22, ProbeKind::Null);
    let found = d
        .observe_marked(&p, Some(masscan))
        .and_then(|c| d.settle(c, |_, _| false))
        .expect("an impossible flag set on a privileged port");
    assert_eq!(found.signature, None);
}

/// Issue 29, red team: the detector's two tables in one slab ([`table`]) evict, promote,
/// expire and forget exactly as f81156a's two `LinkedHashMap`s did, whatever the stream
/// (floods of one-probe and two-probe sources, in many /24s and in IPv6, IPv4-compatible
/// IPv6 twins, expiries, forgets): a flood evicts a real scanner no sooner than before; and
/// the slab never holds more than the two lists' bound.
mod issue_29_red {
    use super::*;
    use hashlink::LinkedHashMap;
    use proptest::prelude::*;

    const MAX: usize = 8;

    /// f81156a's tables: sources with two probes or more, and those on probation, each least
    /// recently active first, and its `entry`, `expire` and `forget`.
    #[derive(Default)]
    struct Model {
        main: LinkedHashMap<IpAddr, Timestamp>,
        probation: LinkedHashMap<IpAddr, Timestamp>,
        evicted: u64,
        expired: u64,
    }

    impl Model {
        fn probe(&mut self, key: IpAddr, at: Timestamp) {
            let last = if self.main.contains_key(&key) {
                self.main.to_back(&key).unwrap()
            } else if let Some(promoted) = self.probation.remove(&key) {
                if self.main.len() >= MAX {
                    self.main.pop_front();
                    self.evicted += 1;
                }
                self.main.entry(key).or_insert(promoted)
            } else {
                if self.probation.len() >= MAX {
                    self.probation.pop_front();
                    self.evicted += 1;
                }
                self.probation.entry(key).or_insert(at)
            };
            *last = (*last).max(at);
        }

        fn expire(&mut self, horizon: Timestamp) {
            for table in [&mut self.main, &mut self.probation] {
                while table.front().is_some_and(|(_, &t)| t < horizon) {
                    table.pop_front();
                    self.expired += 1;
                }
            }
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Probe(IpAddr, u64),
        Expire(u64),
        Forget(IpNet),
    }

    /// Sources in a few IPv4 /24s, their IPv4-compatible IPv6 twins, and IPv6 /64s.
    fn arb_key() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            (0u32..4, 0u32..12).prop_map(|(net, host)| IpAddr::V4(Ipv4Addr::from(
                0xcb00_7100 + (net << 8) + host
            ))),
            (0u32..12).prop_map(|host| IpAddr::V6(Ipv6Addr::from(u128::from(0xcb00_7100 + host)))),
            (0u128..12)
                .prop_map(|net| IpAddr::V6(Ipv6Addr::from((0x2001_0db8_u128 << 96) + (net << 64)))),
        ]
    }

    fn arb_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            30 => (arb_key(), 0u64..300).prop_map(|(k, step)| Op::Probe(k, step)),
            1 => (0u64..120_000).prop_map(Op::Expire),
            1 => prop_oneof![
                Just("203.0.113.0/24".parse().unwrap()),
                Just("203.0.114.0/23".parse().unwrap()),
                Just("2001:db8::/32".parse().unwrap()),
                Just("::/96".parse().unwrap()),
            ]
            .prop_map(Op::Forget),
        ]
    }

    fn keys(d: &Detector, list: List) -> Vec<IpAddr> {
        d.sources.iter(list).map(|(k, _)| *k).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn the_slab_keeps_f81156as_order_and_bound_for_any_stream(
            ops in proptest::collection::vec(arb_op(), 1..400),
        ) {
            let config = DetectorConfig {
                max_sources: MAX,
                window: Duration::from_secs(60),
                ..DetectorConfig::default()
            };
            let mut d = Detector::new(config);
            let mut model = Model::default();
            let mut now = ms(0);
            for op in ops {
                match op {
                    Op::Probe(key, step) => {
                        now = now.saturating_add(Duration::from_millis(step));
                        let source = entry(&mut d.sources, &mut d.stats, MAX, (key, key, now));
                        source.last_seen = source.last_seen.max(now);
                        model.probe(key, now);
                    }
                    Op::Expire(later) => {
                        let at = now.saturating_add(Duration::from_millis(later));
                        d.expire(at);
                        model.expire(at.saturating_sub(Duration::from_secs(60)));
                    }
                    Op::Forget(net) => {
                        d.forget(net);
                        model.main.retain(|k, _| !net.contains(k));
                        model.probation.retain(|k, _| !net.contains(k));
                    }
                }
                let main: Vec<IpAddr> = model.main.keys().copied().collect();
                let probation: Vec<IpAddr> = model.probation.keys().copied().collect();
                prop_assert_eq!(keys(&d, List::Main), main);
                prop_assert_eq!(keys(&d, List::Probation), probation);
                prop_assert_eq!(d.stats.evicted_sources, model.evicted);
                prop_assert_eq!(d.stats.expired_sources, model.expired);
                prop_assert!(d.sources.slots() <= 2 * MAX, "{} slots", d.sources.slots());
            }
        }
    }

    /// A flood of half a million forged sources (one probe each, or two each: promoted, through
    /// the main table), over IPv4 /24s and IPv6 /64s alike: the slab stops at both lists'
    /// bound, and the index at four buckets a source (hashbrown grows once more when the
    /// slots its removals leave run out, then rehashes in place).
    #[test]
    fn a_flood_of_one_and_two_probe_sources_stays_within_the_slabs_bound() {
        let max = 4096;
        let mut d = Detector::new(DetectorConfig {
            max_sources: max,
            ..DetectorConfig::default()
        });
        let mut index_bytes = Vec::new();
        for i in 0..500_000u32 {
            let src = if i % 2 == 0 {
                IpAddr::V4(Ipv4Addr::from(0xcb00_7100 ^ i.rotate_left(8)))
            } else {
                IpAddr::V6(Ipv6Addr::from(
                    (0x2001_0db8_u128 << 96) | (u128::from(i) << 64),
                ))
            };
            // Half the sources probe twice: off probation, into the main table.
            for n in 0..1 + u16::from(i % 4 < 2) {
                let p = Probe {
                    src,
                    ..probe(u64::from(i / 1000), "203.0.113.1", 1000 + n, SYN)
                };
                assert_eq!(settled(&mut d, &p), None);
            }
            if i % 50_000 == 0 {
                index_bytes.push(d.sources.index_bytes());
            }
        }
        assert!(d.sources.slots() <= 2 * max, "{} slots", d.sources.slots());
        assert_eq!(d.stats().tracked, 2 * max);
        index_bytes.push(d.sources.index_bytes());
        // It grew once more when the slots its removals leave ran out (after 100,000 to
        // 200,000 sources, as the seed falls), then held through the last 250,000, at 20 bytes
        // a source (4 of slot number, 1 of control, in 32,768 buckets): 163,856 bytes for
        // 8,192 sources.
        assert!(
            index_bytes[5..].iter().all(|&b| b == index_bytes[5]),
            "{index_bytes:?}"
        );
        assert!(
            index_bytes.iter().all(|&b| b <= 2 * max * 20 + 64),
            "{index_bytes:?}"
        );
    }
}
