//! End to end, offline: real captures → `PcapFile` → parser → pipeline → responder.
//!
//! The captures in `../shared/pcaps` are real traffic; `tests/data` holds small captures made on
//! this project's machines (`tcpdump -i any -y LINUX_SLL/LINUX_SLL2`, and `lo`).

mod support;

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use scansentry::capture::PcapFile;
use scansentry::config::{self, Config};
use scansentry::detect::Detection;
use scansentry::replay::{self, ReplayOptions, Summary};
use scansentry::respond::Decision;
use scansentry::wire::{self, Evidence, Proto};

fn shared(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/pcaps")
        .join(name)
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn replay_with(
    capture: &Path,
    config: Config,
    locals: &[&str],
) -> (Vec<(Detection, Decision)>, Summary) {
    let mut found = Vec::new();
    let summary = replay::run(
        &ReplayOptions {
            capture: capture.to_path_buf(),
            config,
            locals: locals.iter().map(|s| ip(s)).collect(),
            disable_local_check: false,
        },
        |d, decision| found.push((d.clone(), decision.clone())),
    )
    .unwrap_or_else(|e| panic!("replay of {} failed: {e}", capture.display()));
    (found, summary)
}

fn replay(capture: &Path, locals: &[&str]) -> (Vec<(Detection, Decision)>, Summary) {
    replay_with(capture, Config::default(), locals)
}

#[test]
fn masscan_sweep_of_ports_0_to_1000_is_one_syn_scan_detection() {
    let (found, summary) = replay(&shared("tcp_0_1000_20190821.pcap"), &[]);
    assert_eq!(found.len(), 1, "{found:#?}");
    let (d, decision) = &found[0];
    assert_eq!(d.addr, ip("172.31.15.102"));
    assert_eq!(d.kinds.to_string(), "syn");
    assert!(d.ports.iter().all(|(proto, _)| *proto == Proto::Tcp));
    assert_eq!(
        *decision,
        Decision::Block {
            net: "172.31.15.102/32".parse().unwrap(),
            ttl: Duration::from_secs(3600),
            offence: 1,
            replaces: vec![],
        }
    );
    assert_eq!(summary.locals, [ip("198.124.152.15")]);
    assert!(summary.inferred);
    let c = summary.counters;
    assert_eq!(c.frames, 1005);
    // 1001 SYNs (ports 0-1000) of which 113 and 139 are excluded by default; 4 RSTs.
    assert_eq!((c.probes, c.not_trap, c.conversation), (999, 2, 4));
    assert_eq!(
        c.truncated + c.malformed + c.not_ip + c.other_protocol + c.fragments,
        0
    );
}

#[test]
fn nmap_a_of_one_open_web_port_is_not_a_port_scan() {
    // This capture is `nmap -A -p 80` seen from the scanner: 35 SYNs, all with the Linux
    // kernel's own window (29200) and options, i.e. connect() calls, to ports 80 and 443, both
    // of which answered SYN+ACK, then HTTP service probes. It holds no stealth or OS-detection
    // probe and no closed port: a detector that counts distinct *trap* ports rightly sees a
    // client of two open services.
    let (found, summary) = replay(&shared("nmap_80_all.pcap"), &[]);
    assert_eq!(found, []);
    assert_eq!(summary.locals, [ip("130.211.223.103")]);
    let open: BTreeSet<_> = summary.listeners.iter().map(|&(_, _, port)| port).collect();
    assert_eq!(open, BTreeSet::from([80, 443]));
    assert_eq!(
        summary.counters.not_trap, 35,
        "every SYN went to an open port"
    );
    assert_eq!(summary.counters.probes, 0);
}

#[test]
fn nmap_capture_from_the_scanners_side_never_blocks_the_web_server() {
    // Taking the scanner as the protected host: the web server's answers are all replies.
    let (found, summary) = replay(&shared("nmap_80_all.pcap"), &["10.87.1.10"]);
    assert_eq!(found, []);
    assert_eq!(summary.counters.probes, 0);
}

#[test]
fn whois_exchange_gives_no_detection_from_either_side() {
    for locals in [&[][..], &["10.87.1.50"][..]] {
        let (found, summary) = replay(&shared("whois.pcap"), locals);
        assert_eq!(found, [], "locals {locals:?}");
        assert_eq!(summary.counters.probes, 0, "locals {locals:?}");
    }
}

#[test]
fn two_way_flag_capture_never_makes_the_answering_server_a_scanner() {
    // The server 10.0.0.80 answers each of the client's 63 flag sets with each of 63 flag sets,
    // including NULL, XMAS and SYN+FIN, to 3969 distinct client ports. Seen from the client,
    // every one of those is an answer to the client's own packet.
    let (found, summary) = replay(&shared("two_way_all_flags.pcap"), &["10.0.0.10"]);
    assert_eq!(found, []);
    assert_eq!(summary.counters.outbound, 3969);
    assert_eq!(summary.counters.probes, 0);
    // The probe-shaped answers were recognised as answers; the rest is conversation traffic.
    assert_eq!(
        summary.counters.replies + summary.counters.conversation,
        3969
    );

    // Seen from the server: port 80 answered, so it is a service, not a trap.
    let (found, summary) = replay(&shared("two_way_all_flags.pcap"), &[]);
    assert_eq!(found, []);
    assert_eq!(summary.locals, [ip("10.0.0.80")]);
}

#[test]
fn one_way_flag_capture_makes_its_sender_a_stealth_scanner_but_one_port_blocks_nobody() {
    // 63 crafted flag sets to a port that never answers: the first, a NULL probe of a
    // privileged port, reaches the threshold by its weight alone, and so does each heavy probe
    // after it, since nothing was done. One port is fewer than `min-ports` (issue 14): every
    // detection is reported, none blocked.
    let (found, summary) = replay(&shared("one_way_all_flags.pcap"), &[]);
    assert!(found.len() > 1, "{found:#?}");
    assert_eq!(found[0].0.addr, ip("10.0.0.10"));
    assert_eq!(found[0].0.kinds.to_string(), "null");
    for (_, decision) in &found {
        assert_eq!(
            *decision,
            Decision::TooFewPorts {
                addr: ip("10.0.0.10"),
                ports: 1,
                min: 3
            }
        );
    }
    assert_eq!(summary.blocks, 0);
    assert_eq!(summary.too_few_ports, found.len() as u64);
    // With min-ports = 1, the PortSentry way, the first probe is a block.
    let mut config = Config::default();
    config.respond.min_ports = 1;
    let (found, _) = replay_with(&shared("one_way_all_flags.pcap"), config, &[]);
    assert_eq!(found.len(), 1);
    assert!(matches!(found[0].1, Decision::Block { .. }));
}

/// Issue 27: the replay honours tripwires (the same engine): with the capture's one port a
/// tripwire, its first probe is a block of the tripwire's, and the replay's JSON says so.
#[test]
fn a_replay_blocks_at_the_first_probe_of_a_tripwire_port() {
    let (found, _) = replay(&shared("one_way_all_flags.pcap"), &[]);
    let (_, port) = found[0].0.ports[0];
    let mut config = Config::default();
    config.detector.tripwire.tcp.insert(port);
    let (found, summary) = replay_with(&shared("one_way_all_flags.pcap"), config, &[]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(
        found[0].0.tripwire,
        Some((scansentry::wire::Proto::Tcp, port))
    );
    assert!(matches!(found[0].1, Decision::Block { .. }));
    assert_eq!(summary.blocks, 1);
}

/// What a TCP segment is by its flags alone: `None` for conversation traffic, else the scan
/// name and the strength of the evidence.
type Class = Option<(&'static str, Evidence)>;

/// Classifies every TCP segment of a capture: a histogram of classes and the set of distinct
/// flag values.
fn flag_histogram(capture: &Path) -> (HashMap<Class, usize>, BTreeSet<u16>) {
    let mut file = PcapFile::open(capture).unwrap();
    let link = file.link();
    let mut histogram = HashMap::new();
    let mut seen = BTreeSet::new();
    while let Some(frame) = file.next_frame().unwrap() {
        let p = wire::parse(link, frame.data).expect("every frame of these captures parses");
        seen.insert(p.tcp_flags.expect("TCP only").bits());
        let class = p.probe_kind().map(|k| (k.scan_name(), k.evidence()));
        *histogram.entry(class).or_insert(0) += 1;
    }
    (histogram, seen)
}

#[test]
fn every_flag_combination_in_the_flag_captures_is_classified_as_specified() {
    use Evidence::{Impossible, Ordinary, Stealth};
    // Of the 63 flag sets 0x00..0x3e: SYN, FIN, NULL, XMAS and Maimon once each; 20 are
    // conversation traffic (ACK-bearing, or a bare RST); 23 carry SYN with FIN or RST, or are
    // otherwise impossible; 15 are other odd sets.
    let once: HashMap<Class, usize> = HashMap::from([
        (Some(("syn", Ordinary)), 1),
        (Some(("fin", Stealth)), 1),
        (Some(("null", Impossible)), 1),
        (Some(("xmas", Impossible)), 1),
        (Some(("maimon", Stealth)), 1),
        (None, 20),
        (Some(("odd-flags", Impossible)), 23),
        (Some(("odd-flags", Stealth)), 15),
    ]);
    let (histogram, seen) = flag_histogram(&shared("one_way_all_flags.pcap"));
    assert_eq!(histogram, once);
    assert_eq!(seen, (0..0x3f).collect());

    // Two-way: each set sent 63 times by the client and 63 times by the server.
    let (histogram, seen) = flag_histogram(&shared("two_way_all_flags.pcap"));
    let twice: HashMap<Class, usize> = once.iter().map(|(&c, &n)| (c, n * 126)).collect();
    assert_eq!(histogram, twice);
    assert_eq!(seen, (0..0x3f).collect());
}

#[test]
fn cooked_and_loopback_captures_parse_without_a_skip() {
    for name in [
        "any_linux_sll.pcap",
        "any_linux_sll2.pcap",
        "lo_ethernet.pcap",
    ] {
        let (_, summary) = replay(&data(name), &[]);
        let c = summary.counters;
        assert!(c.frames >= 2, "{name}");
        assert_eq!(
            c.truncated + c.malformed + c.not_ip + c.other_protocol,
            0,
            "{name}"
        );
    }
}

#[test]
fn replays_repeat_exactly() {
    let first = replay(&shared("tcp_0_1000_20190821.pcap"), &[]).0;
    let second = replay(&shared("tcp_0_1000_20190821.pcap"), &[]).0;
    assert_eq!(first, second);
}

/// A path for a capture file in a directory of its own (the test removes the directory).
fn temp_pcap(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scansentry-replay-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn an_ipv6_scan_from_one_64_is_one_detection_of_the_prefix() {
    let victim = ip("2001:db8::1");
    let frames: Vec<(u64, Vec<u8>)> = (1..=7u16)
        .map(|i| {
            let src = ip(&format!("2001:db8:bad:1::{i:x}"));
            (
                1_700_000_000_000_000 + u64::from(i) * 1000,
                support::frames::tcp_frame(src, victim, 40000, i, 0x02),
            )
        })
        .collect();
    let path = temp_pcap("ipv6_64.pcap");
    support::frames::write_pcap(&path, &frames);
    let (found, _) = replay(&path, &[]);
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].1,
        Decision::Block {
            net: "2001:db8:bad:1::/64".parse().unwrap(),
            ttl: Duration::from_secs(3600),
            offence: 1,
            replaces: vec![],
        }
    );
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[test]
fn never_block_addresses_from_the_config_are_never_blocked() {
    let config = config::from_toml(
        "[never-block]\naddresses = [\"172.31.0.0/16\"]\n",
        Path::new("test.toml"),
    )
    .unwrap();
    let (found, summary) = replay_with(&shared("tcp_0_1000_20190821.pcap"), config, &[]);
    assert_eq!(found, []);
    // Every SYN, excluded ports included: the never-block check comes first.
    assert_eq!(summary.counters.never_block, 1001);
}

#[test]
fn listed_mode_counts_only_listed_ports() {
    // masscan covers ports 0-1000; the "aware" preset has 11 TCP ports below 1001, of which
    // 7 privileged ones are enough.
    let config = config::from_toml(
        "[detect]\nmode = \"listed\"\npreset = \"aware\"\n",
        Path::new("test.toml"),
    )
    .unwrap();
    let (found, summary) = replay_with(&shared("tcp_0_1000_20190821.pcap"), config, &[]);
    assert_eq!(found.len(), 1);
    assert_eq!(summary.counters.probes, 9);
    let listed = [1, 11, 15, 79, 111, 119, 143, 540, 635];
    assert!(found[0].0.ports.iter().all(|(_, p)| listed.contains(p)));
}

#[test]
fn a_truncated_capture_is_an_error_not_a_panic() {
    let bytes = std::fs::read(shared("two_way_all_flags.pcap")).unwrap();
    let path = temp_pcap("truncated.pcap");
    std::fs::write(&path, &bytes[..30_000]).unwrap();
    let err = replay::run(
        &ReplayOptions {
            capture: path.clone(),
            config: Config::default(),
            locals: Vec::new(),
            disable_local_check: false,
        },
        |_, _| {},
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("cannot read capture"), "{err}");
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}
