//! Issue 28: scans in IP fragments. The pipeline sees what the kernel reassembles.
//!
//! Replays of real nmap 7.93 captures made in lab namespaces by `scripts/capture-fragments`
//! (`nmap -sS -f` and `--mtu 16` of the top 100 ports, and 4 KiB UDP datagrams to an open
//! port), and live tests: the daemon with the default configuration in the victim's
//! namespace, nmap in the scanner's.

mod support;

use support::captures::{data, replay};

use std::net::IpAddr;
use std::time::Duration;

use scansentry::detect::Detection;
use scansentry::respond::Decision;
use support::netns::{Daemon, NetnsPair, TempDir, require_root, wait_until};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The first block of a replay, and the detections before it.
fn first_block(found: &[(Detection, Decision)]) -> (usize, &Detection) {
    let at = found
        .iter()
        .position(|(_, decision)| matches!(decision, Decision::Block { .. }))
        .unwrap_or_else(|| panic!("no block: {found:#?}"));
    (at, &found[at].0)
}

#[test]
fn nmap_syn_scan_in_8_byte_fragments_is_blocked_on_replay() {
    let (found, summary) = replay(&data("nmap_syn_f_top100.pcap"));
    assert_eq!(
        summary.locals,
        [ip("198.51.100.1")],
        "inferred from the datagrams"
    );
    let (_, d) = first_block(&found);
    assert_eq!(d.addr, ip("198.51.100.2"));
    assert_eq!(d.kinds.to_string(), "tiny-fragment");
    // The responder's min-ports (3) is what waited: three closed ports, each reassembled.
    assert_eq!(d.ports.len(), 3, "{:?}", d.ports);
    let c = summary.counters;
    // Three fragments a probe (a 24-byte TCP header, MSS option), all whole.
    assert_eq!(c.fragments, 3 * c.reassembled);
    assert_eq!(c.reassembled, c.tiny_fragments);
    assert!(c.reassembled >= 100, "{c:?}");
    assert_eq!((c.fragment_overlaps, c.fragments_dropped), (0, 0));
}

#[test]
fn nmap_syn_scan_with_mtu_16_is_blocked_on_replay() {
    let (found, summary) = replay(&data("nmap_syn_mtu16_top100.pcap"));
    let (_, d) = first_block(&found);
    assert_eq!(d.addr, ip("198.51.100.2"));
    assert_eq!(d.kinds.to_string(), "tiny-fragment");
    assert_eq!(d.ports.len(), 3);
    let c = summary.counters;
    assert_eq!(c.fragments, 2 * c.reassembled, "16 + 8 bytes");
    assert!(c.reassembled >= 100, "{c:?}");
}

#[test]
fn big_udp_datagrams_to_an_open_port_are_no_probe() {
    let (found, summary) = replay(&data("udp_4k_fragmented.pcap"));
    assert_eq!(found, []);
    let c = summary.counters;
    // Five over IPv4 and five over IPv6, three fragments each, captured cut at 160 bytes.
    assert_eq!((c.fragments, c.reassembled), (30, 10));
    assert_eq!((c.tiny_fragments, c.fragment_overlaps), (0, 0));
    // Nothing answered them, so a replay cannot tell that 53 listens: ten ordinary UDP probes
    // of one port, far below the threshold, and weighed as any datagram.
    assert_eq!(c.probes, 10);
    assert_eq!(summary.detector.detections, 0);
}

const DEADLINE: Duration = Duration::from_secs(20);

/// The daemon on the default configuration in the victim's namespace, `nmap -sS` with
/// `evasion` from the scanner's: blocked, and nmap then sees nothing more.
fn blocked_with(evasion: &[&str]) {
    blocked_on("", evasion);
}

/// [`blocked_with`] on `config`.
fn blocked_on(config: &str, evasion: &[&str]) {
    require_root();
    let lab = NetnsPair::new();
    let dir = TempDir::new("fragments");
    let _web = lab.listen(&[22, 80], 60);
    let daemon = Daemon::spawn_for(&lab.a, &dir.0, config, 60);
    let mut args = vec!["-sS", "-p", "1-200"];
    args.extend_from_slice(evasion);
    args.push(NetnsPair::A4);
    let report = lab.nmap(&args);
    let blocked = wait_until(DEADLINE, || {
        daemon
            .out()
            .contains(&format!("blocked {} for", NetnsPair::B4))
    });
    assert!(blocked, "{evasion:?}\n{}\n{}", daemon.out(), daemon.err());
    assert!(daemon.out().contains("tiny-fragment"), "{}", daemon.out());
    // Blocked early: nmap saw few of the 200 ports answer (not every port, as before).
    let answered = support::nmap::answered(&String::from_utf8_lossy(&report.stdout));
    assert!(
        answered < 50,
        "{answered} answered:\n{}",
        String::from_utf8_lossy(&report.stdout)
    );
    let status = daemon.json(&["status"]);
    let fragments = &status["fragments"];
    assert!(fragments["tiny"].as_u64().unwrap_or(0) >= 3, "{status}");
    assert_eq!(fragments["tiny"], fragments["reassembled"], "{status}");
}

#[test]
#[ignore = "needs root + netns: cargo test --test fragments -- --ignored"]
fn nmap_syn_scan_in_8_byte_fragments_is_blocked_live() {
    blocked_with(&["-f"]);
}

#[test]
#[ignore = "needs root + netns: cargo test --test fragments -- --ignored"]
fn nmap_syn_scan_with_mtu_16_is_blocked_live() {
    blocked_with(&["--mtu", "16"]);
}

#[test]
#[ignore = "needs root + netns: cargo test --test fragments -- --ignored"]
fn nmap_syn_scan_in_8_byte_fragments_is_blocked_by_the_raw_method_too() {
    blocked_on("[capture]\nmethod = \"raw\"\n", &["-f"]);
}

#[test]
#[ignore = "needs root + netns: cargo test --test fragments -- --ignored"]
fn big_udp_datagrams_are_not_a_scan_live() {
    require_root();
    let lab = NetnsPair::new();
    let dir = TempDir::new("fragments-udp");
    // A UDP listener on 5353, and 4 KiB datagrams to it from the scanner's namespace (the
    // sender's kernel fragments each in three at the veth's MTU).
    let _listener = support::netns::KillOnDrop(
        std::process::Command::new("ip")
            .args(["netns", "exec", &lab.a, "timeout", "30", "python3", "-c"])
            .arg(
                "import socket, time\n\
                 u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
                 u.bind(('0.0.0.0', 5353))\n\
                 time.sleep(30)\n",
            )
            .spawn()
            .expect("python3"),
    );
    let up = wait_until(Duration::from_secs(5), || {
        let out = lab.exec(&lab.a, &["ss", "-lunH"]);
        String::from_utf8_lossy(&out.stdout).contains(":5353")
    });
    assert!(up, "the UDP listener did not start");
    let daemon = Daemon::spawn_for(&lab.a, &dir.0, "", 60);
    let send = format!(
        "import socket, time\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         for i in range(20):\n\
         \x20   s.sendto(bytes([i]) * 4096, ('{}', 5353))\n\
         \x20   time.sleep(0.01)\n",
        NetnsPair::A4
    );
    let out = lab.exec(&lab.b, &["python3", "-c", &send]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let counted = wait_until(Duration::from_secs(10), || {
        daemon.json(&["status"])["packets"].as_u64().unwrap_or(0) >= 60
    });
    assert!(counted, "{}", daemon.json(&["status"]));
    let status = daemon.json(&["status"]);
    assert_eq!(status["probes"], 0, "{status}");
    assert_eq!(status["detections"], 0, "{status}");
    assert!(!daemon.out().contains("blocked"), "{}", daemon.out());
}
