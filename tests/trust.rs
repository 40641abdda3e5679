//! The trust model (issue 14): what a forger can and cannot make the daemon do, against the real
//! kernel in network namespaces the tests make and remove. Forged frames are sent from the
//! scanner's end of the link with libpcap, claiming whatever addresses the test chooses.
//!
//! Run as root: `cargo test --test trust -- --ignored` (the README's test command includes it).

mod support;

use std::net::IpAddr;
use std::time::Duration;

use support::frames::{pseudo_header_only, tcp_frame, udp_frame};
use support::netns::{Daemon, NetnsPair, TempDir, full_scale, require_root, wait_until};

const DEADLINE: Duration = Duration::from_secs(10);
const NULL: u16 = 0;
const SYN: u16 = 0x02;
const RST: u16 = 0x04;
const ACK: u16 = 0x10;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// RSTs forged "from" the host to the scanner before each probe (as if the host had talked to
/// it first) and SYN+ACKs forged "from" the probed port after it (as if the port were open)
/// once hid a scan: direction was taken from the source address. It is the kernel's packet
/// type now, and a 30-port SYN scan among them is blocked.
#[test]
#[ignore = "needs root + netns: cargo test --test trust -- --ignored"]
fn packets_forged_from_the_host_do_not_hide_a_scan() {
    require_root();
    let lab = NetnsPair::new();
    let dir = TempDir::new("trust");
    let daemon = Daemon::spawn(&lab.a, &dir.0, "");
    let (host, scanner) = (ip(NetnsPair::A4), ip(NetnsPair::B4));
    let mut frames = Vec::new();
    for port in 1..=30 {
        frames.push(tcp_frame(host, scanner, port, 40_000, RST));
        frames.push(tcp_frame(scanner, host, 40_000, port, SYN));
        frames.push(tcp_frame(host, scanner, port, 40_000, SYN | ACK));
    }
    lab.inject(&frames);
    assert_blocked(&daemon, NetnsPair::B4);
    assert!(lab.set_text("blocked4").contains(NetnsPair::B4));
}

/// Forged packets "from" 0.0.0.0, 224.0.0.1, 255.255.255.255, ff02::1, fe80::2 and
/// ::ffff:198.51.100.50 once got those blocked (the last, the IPv4 address). No scanner can
/// have such a source: they never count. A real address probed the same way afterwards is
/// blocked, so the daemon was listening all along.
#[test]
#[ignore = "needs root + netns: cargo test --test trust -- --ignored"]
fn sources_no_scanner_can_have_are_never_blocked() {
    require_root();
    let lab = NetnsPair::new();
    let dir = TempDir::new("trust");
    let daemon = Daemon::spawn(&lab.a, &dir.0, "");
    let (v4, v6) = (ip(NetnsPair::A4), ip(NetnsPair::A6));
    let mut frames = Vec::new();
    for source in [
        "0.0.0.0",
        "127.0.0.9",
        "169.254.1.2",
        "224.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "ff02::1",
        "fe80::2",
        "::ffff:198.51.100.50",
        "::198.51.100.51",
    ] {
        let source = ip(source);
        let victim = if source.is_ipv4() { v4 } else { v6 };
        for port in [21, 22, 23, 25, 80] {
            frames.push(tcp_frame(source, victim, 40_000, port, NULL));
        }
    }
    lab.inject(&frames);
    let control = ip(NetnsPair::B4);
    let probes: Vec<Vec<u8>> = [21, 22, 23, 25, 80]
        .into_iter()
        .map(|port| tcp_frame(control, v4, 40_000, port, NULL))
        .collect();
    lab.inject(&probes);
    assert_blocked(&daemon, NetnsPair::B4);
    let out = daemon.out();
    let blocked: Vec<&str> = out
        .lines()
        .filter(|l| l.contains(" blocked "))
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert_eq!(blocked, [NetnsPair::B4], "{out}");
    for set in ["blocked6", "blocked6_net", "blocked4_net"] {
        assert!(
            !lab.set_text(set).contains("\"elem\""),
            "{set}: {}",
            lab.set_text(set)
        );
    }
}

/// One forged NULL packet "from" a real address once blocked it (it weighs the whole
/// threshold); and one forged address of a /64 once blocked the whole /64 (here a /64 of the
/// lab's /48, which the victim routes back over the scanner's link). Now a single probe
/// is reported, not blocked; three are a block of that address alone.
#[test]
#[ignore = "needs root + netns: cargo test --test trust -- --ignored"]
fn one_heavy_probe_blocks_nobody_and_one_address_is_not_its_prefix() {
    require_root();
    let lab = NetnsPair::new();
    let dir = TempDir::new("trust");
    let daemon = Daemon::spawn(&lab.a, &dir.0, "");
    let (v4, v6) = (ip(NetnsPair::A4), ip(NetnsPair::A6));
    lab.inject(&[tcp_frame(ip(NetnsPair::B4), v4, 40_000, 22, NULL)]);
    assert!(
        wait_until(DEADLINE, || daemon.out().contains(&format!(
            "not blocking {}: 1 trap port, fewer than [respond] min-ports = 3",
            NetnsPair::B4
        ))),
        "{}",
        daemon.out()
    );
    let lone = ip("2001:db8:0:c::dead");
    let probes: Vec<Vec<u8>> = [21, 22, 23]
        .into_iter()
        .map(|port| tcp_frame(lone, v6, 40_000, port, NULL))
        .collect();
    lab.inject(&probes);
    assert!(
        wait_until(DEADLINE, || daemon
            .out()
            .contains("blocked 2001:db8:0:c::dead for")),
        "{}",
        daemon.out()
    );
    assert!(
        !daemon
            .out()
            .contains(&format!("blocked {} for", NetnsPair::B4))
    );
    assert!(!lab.set_text("blocked6_net").contains("\"elem\""));
    // A second address of the same /64 scanning: now the prefix is the scanner's.
    let other = ip("2001:db8:0:c::beef");
    let probes: Vec<Vec<u8>> = [24, 25, 26]
        .into_iter()
        .map(|port| tcp_frame(other, v6, 40_000, port, NULL))
        .collect();
    lab.inject(&probes);
    assert!(
        wait_until(DEADLINE, || daemon
            .out()
            .contains("blocked 2001:db8:0:c::/64 for")),
        "{}",
        daemon.out()
    );
}

/// Waits for the daemon to say it blocked `addr`; its output when it does not.
fn assert_blocked(daemon: &Daemon, addr: &str) {
    assert!(
        wait_until(DEADLINE, || daemon
            .out()
            .contains(&format!("blocked {addr} for"))),
        "{addr} not blocked:\n{}\n{}",
        daemon.out(),
        daemon.err()
    );
}

/// A TCP connection from namespace `ns` to `dest`:`port`, held open for `seconds` (or until
/// dropped).
fn session(ns: &str, dest: &str, port: u16, seconds: u32) -> support::netns::KillOnDrop {
    support::netns::KillOnDrop(
        std::process::Command::new("ip")
            .args(["netns", "exec", ns, "timeout", &seconds.to_string()])
            .args(["python3", "-c"])
            .arg(format!(
                "import socket, time\ns = socket.create_connection(('{dest}', {port}))\n\
                 time.sleep({seconds})\n"
            ))
            .spawn()
            .unwrap(),
    )
}

/// Whether the victim has an established TCP connection with `peer`, as `ss` shows it.
fn in_session(lab: &NetnsPair, peer: &str) -> bool {
    let out = lab.exec(&lab.a, &["ss", "-tnH", "state", "established"]);
    String::from_utf8_lossy(&out.stdout).contains(peer)
}

/// How many protected peers the daemon counts (`status --json`).
fn protected_peers(daemon: &Daemon) -> u64 {
    let status = daemon.ctl(&["status", "--json"]);
    serde_json::from_slice::<serde_json::Value>(&status.stdout)
        .ok()
        .and_then(|s| s["protected_peers"].as_u64())
        .unwrap_or(0)
}

/// An administrator's link beside the scanner's: namespace `admin` joined to the victim by a
/// second veth, 203.0.113.2 there and 203.0.113.1 on the victim. Deleted on drop.
struct AdminLink {
    ns: support::netns::Netns,
    victim_dev: String,
}

impl AdminLink {
    const ADMIN: &'static str = "203.0.113.2";
    const VICTIM: &'static str = "203.0.113.1";

    /// A real `nmap -sS` of ports 1-100 of the victim, from the administrator's namespace.
    fn nmap(&self) {
        support::netns::run(
            std::process::Command::new("ip")
                .args(["netns", "exec", &self.ns.0, "nmap", "-n", "-Pn", "-sS"])
                .args(["-p", "1-100", "--max-retries", "0", Self::VICTIM]),
        );
    }

    /// Forges, on the scanner's link, three NULL probes and twenty SYNs "from" the
    /// administrator's address, and checks what follows: reported for its reverse path, not
    /// blocked (neither in the log nor in the kernel), and `why` says which rule kept it.
    fn forge_probes(&self, lab: &NetnsPair, daemon: &Daemon) {
        let (forged, victim) = (ip(Self::ADMIN), ip(Self::VICTIM));
        let mut frames: Vec<Vec<u8>> = [21, 22, 23]
            .into_iter()
            .map(|port| tcp_frame(forged, victim, 40_000, port, NULL))
            .collect();
        frames.extend((1000..1020).map(|port| tcp_frame(forged, victim, 40_001, port, SYN)));
        lab.inject(&frames);
        let said = format!(
            "not blocking {}: its probes came in on {} but the route back to it leaves by {} \
             (reverse path)",
            Self::ADMIN,
            lab.veth_a(),
            self.victim_dev
        );
        assert!(
            wait_until(DEADLINE, || daemon.out().contains(&said)),
            "{}\n{}",
            daemon.out(),
            daemon.err()
        );
        assert!(
            !daemon
                .out()
                .contains(&format!("blocked {} for", Self::ADMIN))
        );
        assert!(!lab.set_text("blocked4").contains(Self::ADMIN));
        let why = String::from_utf8_lossy(&daemon.ctl(&["why", Self::ADMIN]).stdout).into_owned();
        let head = format!(
            "{} is not blocked\nlast detection not blocked, at ",
            Self::ADMIN
        );
        assert!(
            why.starts_with(&head) && why.contains("(reverse path)"),
            "{why}"
        );
    }

    fn new(lab: &NetnsPair) -> Self {
        let ns = support::netns::Netns::new("admin");
        let tag = lab.veth_b.trim_start_matches("vb");
        let (victim_dev, admin_dev) = (format!("vm{tag}"), format!("vn{tag}"));
        support::netns::link(
            &lab.a,
            &victim_dev,
            &["203.0.113.1/24"],
            &ns.0,
            &admin_dev,
            &["203.0.113.2/24"],
        );
        AdminLink { ns, victim_dev }
    }
}

/// One forged NULL probe of three ports, and twenty forged SYNs to closed ports, "from" the
/// administrator's address but sent on the scanner's link, once got the administrator blocked:
/// pcap sees a frame before the kernel's rp_filter judges it. The victim would route back to
/// that address by the administrator's link, not the one they came in on: not blocked, and the
/// log says why. A real scan from the administrator's link is still blocked.
#[test]
#[ignore = "needs root + netns: cargo test --test trust -- --ignored"]
fn probes_forged_from_another_link_fail_the_reverse_path_check() {
    require_root();
    let lab = NetnsPair::new();
    let admin = AdminLink::new(&lab);
    let dir = TempDir::new("trust");
    let daemon = Daemon::spawn(&lab.a, &dir.0, "");
    admin.forge_probes(&lab, &daemon);
    // `status` counts the rule that kept it from a block.
    let status: serde_json::Value =
        serde_json::from_slice(&daemon.ctl(&["status", "--json"]).stdout).unwrap();
    assert!(
        status["not_blocked"]["reverse-path"].as_u64() >= Some(1),
        "{status}"
    );
    // The same address scanning for real, from its own link: blocked.
    admin.nmap();
    assert_blocked(&daemon, AdminLink::ADMIN);
}

/// The administrator who scans the host from the workstation they are logged in from keeps
/// their session: a source with an established connection is reported, not blocked
/// (`[respond] protect = "established"`). A block by hand still works.
#[test]
#[ignore = "needs root + netns: cargo test --test trust -- --ignored"]
fn a_peer_in_conversation_with_the_host_is_reported_not_blocked() {
    require_root();
    let lab = NetnsPair::new();
    let admin = AdminLink::new(&lab);
    let dir = TempDir::new("trust");
    let _service = lab.listen(&[8080], 60);
    let daemon = Daemon::spawn(&lab.a, &dir.0, "");
    // A session from the administrator's workstation, held open.
    let _session = session(&admin.ns.0, AdminLink::VICTIM, 8080, 60);
    let established = || in_session(&lab, AdminLink::ADMIN);
    assert!(
        wait_until(DEADLINE, established),
        "the session did not start"
    );
    // The daemon reads established connections once a second: wait until it has.
    assert!(
        wait_until(DEADLINE, || protected_peers(&daemon) >= 1),
        "the daemon does not know the session"
    );
    admin.nmap();
    let said = format!(
        "not blocking {}: established session to 8080/tcp since ",
        AdminLink::ADMIN
    );
    assert!(
        wait_until(DEADLINE, || daemon.out().contains(&said)),
        "{}\n{}",
        daemon.out(),
        daemon.err()
    );
    assert!(
        !daemon
            .out()
            .contains(&format!("blocked {} for", AdminLink::ADMIN))
    );
    assert!(established(), "the session was cut");
    // By hand, it is blocked all the same.
    let by_hand = daemon.ctl(&["block", AdminLink::ADMIN]);
    assert!(
        by_hand.status.success(),
        "{}",
        String::from_utf8_lossy(&by_hand.stderr)
    );
    assert!(lab.set_text("blocked4").contains(AdminLink::ADMIN));
}

/// During a flood of forged detections from fresh prefixes (400 frames a second for five
/// seconds: three-port NULL probes, each source a /64 of its own, and IPv4 sources of the
/// scanner's /24), five real nmap scanners once were all refused: the forgers had spent the
/// budget. The forged IPv6 sources spend only the IPv6 budget, the IPv4 ones at most three
/// quarters of the IPv4 budget: all five scanners are blocked.
#[test]
#[ignore = "needs root + netns: cargo test --test trust -- --ignored"]
fn real_scanners_are_blocked_during_a_flood_of_forged_detections() {
    require_root();
    let lab = NetnsPair::new();
    let dir = TempDir::new("trust");
    let daemon = Daemon::spawn(&lab.a, &dir.0, "");
    let scanners: Vec<String> = (10..15).map(|i| format!("198.51.100.{i}")).collect();
    for s in &scanners {
        let out = lab.exec(
            &lab.b,
            &["ip", "addr", "add", &format!("{s}/24"), "dev", &lab.veth_b],
        );
        assert!(out.status.success());
    }
    let (v4, v6) = (ip(NetnsPair::A4), ip(NetnsPair::A6));
    // 1,650 frames: 400 sources of three probes each in IPv6 (fresh /64s of the lab's /48,
    // which the victim routes back over this link), 150 in IPv4 (.100 to .249 of the /24).
    let mut frames = Vec::new();
    for i in 0..400u128 {
        let source = std::net::Ipv6Addr::from((0x2001_0db8_u128 << 96) | ((0x200 + i) << 64) | 9);
        for port in [21, 22, 23] {
            frames.push(tcp_frame(source.into(), v6, 40_000, port, NULL));
        }
    }
    for i in 0..150u32 {
        let source = std::net::Ipv4Addr::from(0xc633_6464 + i);
        for port in [21, 22, 23] {
            frames.push(tcp_frame(source.into(), v4, 40_000, port, NULL));
        }
    }
    std::thread::scope(|s| {
        s.spawn(|| {
            // 400 a second: 80 every 200 ms.
            for chunk in frames.chunks(80) {
                lab.inject(chunk);
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        std::thread::sleep(Duration::from_millis(500));
        for scanner in &scanners {
            lab.nmap(&[
                "-sS",
                "-S",
                scanner,
                "-e",
                &lab.veth_b,
                "-p",
                "1-100",
                NetnsPair::A4,
            ]);
        }
    });
    for scanner in &scanners {
        assert_blocked(&daemon, scanner);
    }
}

/// The kernel's count of segments it dropped for a wrong checksum, in the victim's namespace:
/// `InCsumErrors` of `proto` ("Tcp" or "Udp") in /proc/net/snmp.
fn checksum_errors(lab: &NetnsPair, proto: &str) -> u64 {
    let out = lab.exec(&lab.a, &["cat", "/proc/net/snmp"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut rows = text.lines().filter(|l| l.starts_with(&format!("{proto}:")));
    let (names, values) = (rows.next().unwrap(), rows.next().unwrap());
    let at = names
        .split_whitespace()
        .position(|n| n == "InCsumErrors")
        .unwrap();
    values.split_whitespace().nth(at).unwrap().parse().unwrap()
}

/// A packet with a wrong checksum once counted like any other (pcap sees a frame before the
/// kernel checks it): twenty SYNs to closed ports blocked their source. The kernel drops such
/// packets, and says so in its own counters; they are no evidence. The same probes with right
/// checksums are a block.
#[test]
#[ignore = "needs root + netns: cargo test --test trust -- --ignored"]
fn probes_with_a_wrong_checksum_are_not_evidence() {
    require_root();
    let lab = NetnsPair::new();
    let dir = TempDir::new("trust");
    let daemon = Daemon::spawn(&lab.a, &dir.0, "");
    let (scanner, victim) = (ip(NetnsPair::B4), ip(NetnsPair::A4));
    // Ethernet 14 bytes, IPv4 20: the TCP checksum at 34 + 16, UDP's at 34 + 6, the TTL at 22.
    let spoilt = |mut frame: Vec<u8>, at: usize| {
        frame[at] ^= 0x5a;
        frame
    };
    let syns = |sport| -> Vec<Vec<u8>> {
        (1000..1020)
            .map(|port| tcp_frame(scanner, victim, sport, port, SYN))
            .collect()
    };
    let (tcp_before, udp_before) = (checksum_errors(&lab, "Tcp"), checksum_errors(&lab, "Udp"));
    let mut frames: Vec<Vec<u8>> = syns(40_000).into_iter().map(|f| spoilt(f, 50)).collect();
    frames.extend((21..26).map(|port| spoilt(tcp_frame(scanner, victim, 40_001, port, NULL), 22)));
    frames.extend((1..6).map(|port| spoilt(udp_frame(scanner, victim, 40_002, port), 40)));
    lab.inject(&frames);
    assert_bad_checksums_only(&lab, &daemon, 30);
    // The kernel dropped them too: its own counters moved by as many.
    assert_eq!(checksum_errors(&lab, "Tcp") - tcp_before, 20);
    assert_eq!(checksum_errors(&lab, "Udp") - udp_before, 5);
    // Right checksums: the same twenty SYNs are a scan.
    lab.inject(&syns(40_003));
    assert_blocked(&daemon, NetnsPair::B4);
}

/// Issue 24, 12: probes whose checksum held only the pseudo-header's sum were counted as the
/// form a sender's stack leaves for checksum offload, although the kernel checks such a sum
/// on a frame that arrives from another host, and drops it. Twenty such SYNs sent on the
/// scanner's link: counted as `bad-checksum`, dropped by the kernel (its own counter moved by
/// as many), no block; the same SYNs with right checksums are a block.
#[test]
#[ignore = "needs root + netns: cargo test --test trust -- --ignored"]
fn issue_24_probes_with_only_the_pseudo_header_sum_from_another_host_are_not_evidence() {
    require_root();
    let lab = NetnsPair::new();
    let dir = TempDir::new("trust");
    let daemon = Daemon::spawn(&lab.a, &dir.0, "");
    let (scanner, victim) = (ip(NetnsPair::B4), ip(NetnsPair::A4));
    let syns = |sport| -> Vec<Vec<u8>> {
        (1000..1020)
            .map(|port| tcp_frame(scanner, victim, sport, port, SYN))
            .collect()
    };
    let tcp_before = checksum_errors(&lab, "Tcp");
    let partial: Vec<Vec<u8>> = syns(40_000).into_iter().map(pseudo_header_only).collect();
    lab.inject(&partial);
    assert_bad_checksums_only(&lab, &daemon, 20);
    assert_eq!(checksum_errors(&lab, "Tcp") - tcp_before, 20);
    lab.inject(&syns(40_001));
    assert_blocked(&daemon, NetnsPair::B4);
}

/// The daemon counts `n` probes as `bad-checksum` (within [`DEADLINE`]) and blocks nothing of
/// the scanner's.
fn assert_bad_checksums_only(lab: &NetnsPair, daemon: &Daemon, n: u64) {
    let counted = || {
        let status = daemon.ctl(&["status", "--json"]);
        serde_json::from_slice::<serde_json::Value>(&status.stdout)
            .is_ok_and(|s| s["not_blocked"]["bad-checksum"].as_u64() == Some(n))
    };
    assert!(
        wait_until(DEADLINE, counted),
        "{}",
        String::from_utf8_lossy(&daemon.ctl(&["status", "--json"]).stdout)
    );
    assert!(
        !daemon.out().contains(NetnsPair::B4),
        "{}\n{}",
        daemon.out(),
        daemon.err()
    );
    assert!(!lab.set_text("blocked4").contains(NetnsPair::B4));
}

/// A TCP counter of the victim's kernel in /proc/net/netstat (`TcpExt: IPReversePathFilter`:
/// packets its rp_filter dropped).
fn tcp_ext(lab: &NetnsPair, name: &str) -> u64 {
    let out = lab.exec(&lab.a, &["cat", "/proc/net/netstat"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut rows = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (rows.next().unwrap(), rows.next().unwrap());
    let at = names.split_whitespace().position(|n| n == name).unwrap();
    values.split_whitespace().nth(at).unwrap().parse().unwrap()
}

/// The issue's lab: the victim with the default configuration and the kernel's rp_filter on,
/// its default route over the attacker's link, and an administrator on a link of their own with
/// a live TCP session. A forged NULL probe of three ports and twenty forged SYNs "from" the
/// administrator's address, sent on the attacker's link, once blocked the administrator and
/// cut the session. The kernel drops them (its own counter says so); sentryd reports them, the
/// session lives, and `why` says why. A real scan from the attacker's link is blocked.
#[test]
#[ignore = "needs root + netns: cargo test --test trust -- --ignored"]
fn forgeries_from_the_administrators_address_over_the_default_route_block_nobody() {
    require_root();
    let lab = NetnsPair::new();
    let admin = AdminLink::new(&lab);
    for args in [
        vec!["ip", "route", "add", "default", "via", NetnsPair::B4],
        vec!["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1"],
    ] {
        let out = lab.exec(&lab.a, &args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let dir = TempDir::new("trust");
    let _service = lab.listen(&[8080], 60);
    let daemon = Daemon::spawn(&lab.a, &dir.0, "");
    let _session = session(&admin.ns.0, AdminLink::VICTIM, 8080, 60);
    assert!(
        wait_until(DEADLINE, || in_session(&lab, AdminLink::ADMIN)),
        "the session did not start"
    );
    let dropped_before = tcp_ext(&lab, "IPReversePathFilter");
    admin.forge_probes(&lab, &daemon);
    // The kernel itself took none of them.
    assert_eq!(tcp_ext(&lab, "IPReversePathFilter") - dropped_before, 23);
    assert!(in_session(&lab, AdminLink::ADMIN), "the session was cut");
    // A real scanner on the attacker's link (not the gateway, which is on the never-block
    // list): blocked.
    let scanner = NetnsPair::B4_SECOND;
    lab.nmap(&[
        "-sS",
        "-S",
        scanner,
        "-e",
        &lab.veth_b,
        "-p",
        "1-100",
        NetnsPair::A4,
    ]);
    assert_blocked(&daemon, scanner);
}

/// A scanner cannot borrow the protection of peers by opening a connection once its scan has
/// begun: protection is for conversations older than the evidence.
#[test]
#[ignore = "needs root + netns: cargo test --test trust -- --ignored"]
fn a_connection_opened_during_a_scan_protects_nothing() {
    require_root();
    let lab = NetnsPair::new();
    let dir = TempDir::new("trust");
    let _service = lab.listen(&[8080], 60);
    let daemon = Daemon::spawn(&lab.a, &dir.0, "");
    // Two probes (too few for a detection), then a connection, then the rest of the scan.
    lab.nmap(&["-sS", "-p", "1-2", NetnsPair::A4]);
    let _held = session(&lab.b, NetnsPair::A4, 8080, 60);
    assert!(
        wait_until(DEADLINE, || protected_peers(&daemon) >= 1),
        "the daemon does not know the connection"
    );
    lab.nmap(&["-sS", "-p", "3-100", NetnsPair::A4]);
    assert_blocked(&daemon, NetnsPair::B4);
}

/// The administrator logged out a while ago, then scans the host: a session that lasted a
/// minute or more protects its peer for `[respond] protect-for` (24 h by default) after it
/// ended. (This test holds a session for 65 s.)
#[test]
#[ignore = "needs root + netns: cargo test --test trust -- --ignored"]
fn a_session_of_a_minute_protects_its_peer_after_it_ends() {
    require_root();
    let lab = NetnsPair::new();
    let admin = AdminLink::new(&lab);
    let dir = TempDir::new("trust");
    let _service = lab.listen(&[8080], 120);
    let daemon = Daemon::spawn(&lab.a, &dir.0, "");
    {
        let _session = session(&admin.ns.0, AdminLink::VICTIM, 8080, 65);
        assert!(
            wait_until(DEADLINE, || protected_peers(&daemon) >= 1),
            "the daemon does not know the session"
        );
        std::thread::sleep(Duration::from_secs(65));
    }
    let ended = || {
        let out = lab.exec(&lab.a, &["ss", "-tnH", "state", "established"]);
        !String::from_utf8_lossy(&out.stdout).contains(AdminLink::ADMIN)
    };
    assert!(wait_until(DEADLINE, ended), "the session did not end");
    std::thread::sleep(Duration::from_millis(1500)); // one more reading of the table
    admin.nmap();
    let said = format!(
        "not blocking {}: session to 8080/tcp from ",
        AdminLink::ADMIN
    );
    assert!(
        wait_until(DEADLINE, || daemon.out().contains(&said)
            && daemon.out().contains("[respond] protect-for")),
        "{}\n{}",
        daemon.out(),
        daemon.err()
    );
    assert!(!lab.set_text("blocked4").contains(AdminLink::ADMIN));
}

/// `[respond] reverse-path = "kernel"` follows the host's own rp_filter, read at each check:
/// strict on the probe's interface, forged probes "from" the administrator are reported; off,
/// the kernel takes them, and so a block follows.
#[test]
#[ignore = "needs root + netns: cargo test --test trust -- --ignored"]
fn reverse_path_kernel_follows_the_hosts_rp_filter() {
    require_root();
    let lab = NetnsPair::new();
    let _admin = AdminLink::new(&lab);
    let rp_filter = |all: u8, dev: u8| {
        for (name, value) in [("all", all), (lab.veth_a().as_str(), dev)] {
            let key = format!("net.ipv4.conf.{name}.rp_filter={value}");
            let out = lab.exec(&lab.a, &["sysctl", "-qw", &key]);
            assert!(out.status.success(), "{key}");
        }
    };
    rp_filter(0, 1);
    let dir = TempDir::new("trust");
    let daemon = Daemon::spawn(&lab.a, &dir.0, "[respond]\nreverse-path = \"kernel\"\n");
    let (forged, victim) = (ip(AdminLink::ADMIN), ip(AdminLink::VICTIM));
    let probes = |ports: [u16; 3]| -> Vec<Vec<u8>> {
        ports
            .into_iter()
            .map(|port| tcp_frame(forged, victim, 40_000, port, NULL))
            .collect()
    };
    lab.inject(&probes([21, 22, 23]));
    assert!(
        wait_until(DEADLINE, || daemon.out().contains("(reverse path)")),
        "{}\n{}",
        daemon.out(),
        daemon.err()
    );
    rp_filter(0, 0);
    lab.inject(&probes([24, 25, 26]));
    assert_blocked(&daemon, AdminLink::ADMIN);
}

/// A slow scanner, one SYN a second to ten closed privileged ports, under a flood of
/// one-packet sources (fresh IPv6 /64s) many times the detector's table (`max-sources = 256`
/// here): 200 between its first two probes, 1,000 between each of the others. A table that
/// evicts the source idle longest once lost the scanner to them; sources on probation give way
/// first now, and the scanner is blocked.
#[test]
#[ignore = "needs root + netns: cargo test --test trust -- --ignored"]
fn a_slow_scanner_survives_a_flood_of_one_packet_sources_and_is_blocked() {
    require_root();
    let lab = NetnsPair::new();
    let dir = TempDir::new("trust");
    let daemon = Daemon::spawn(&lab.a, &dir.0, "[detect]\nmax-sources = 256\n");
    let (scanner, v4, v6) = (ip(NetnsPair::B4), ip(NetnsPair::A4), ip(NetnsPair::A6));
    let mut fresh = 0u128;
    let mut flood = |n: usize| -> Vec<Vec<u8>> {
        (0..n)
            .map(|_| {
                fresh += 1;
                let source = std::net::Ipv6Addr::from((0x2001_0db8_u128 << 96) | (fresh << 64) | 7);
                tcp_frame(source.into(), v6, 40_000, 1, SYN)
            })
            .collect()
    };
    for port in 1..=10 {
        lab.inject(&[tcp_frame(scanner, v4, 40_000, port, SYN)]);
        lab.inject(&flood(if port == 1 { 200 } else { 1000 }));
        std::thread::sleep(Duration::from_secs(1));
    }
    assert_blocked(&daemon, NetnsPair::B4);
    // The flood went through the pipeline: 9,200 one-packet sources, none a detection.
    let status: serde_json::Value =
        serde_json::from_slice(&daemon.ctl(&["status", "--json"]).stdout).unwrap();
    assert!(status["packets"].as_u64() >= Some(9_210), "{status}");
    assert!(!daemon.out().contains("2001:db8:"), "{}", daemon.out());
}

/// The forged floods' pace: this many frames, then a pause (about 50,000 a second at most;
/// the daemon under test is a debug build, on a machine shared with other builds).
const FLOOD_CHUNK: usize = 500;
const FLOOD_PAUSE: Duration = Duration::from_millis(10);

/// Issue 24's lab for forged floods: the victim routes 203.0.113.0/24 and 2001:db8::/32 back
/// over the attacker's link (as a default route would), so forged sources there pass the
/// reverse-path check.
fn route_forgeries_back_over_the_link(lab: &NetnsPair) {
    for route in [
        ["-4", "route", "add", "203.0.113.0/24", "via", NetnsPair::B4],
        [
            "-6",
            "route",
            "add",
            "2001:db8::/32",
            "via",
            "2001:db8:0:1::2",
        ],
    ] {
        let out = lab.exec(&lab.a, &[&["ip"], &route[..]].concat());
        assert!(out.status.success(), "{route:?}: {out:?}");
    }
}

/// `per_prefix` forged sources in each of `prefixes` (IPv4 /24s as "a.b.c", IPv6 /48s as
/// "2001:db8:x", a /64 each, as distinct as IPv4 addresses), each sending a SYN to each of `ports` distinct trap ports (its own ports,
/// among 1-1024), `rounds` times over, interleaved: every source sends a port before any sends
/// the next.
fn forged_scans(prefixes: &[&str], per_prefix: u32, ports: u16, rounds: u16) -> Vec<Vec<u8>> {
    let (v4, v6) = (ip(NetnsPair::A4), ip(NetnsPair::A6));
    let sources: Vec<IpAddr> = prefixes
        .iter()
        .flat_map(|p| {
            (0..per_prefix).map(move |i| {
                if p.contains(':') {
                    ip(&format!("{p}:{i:x}::1"))
                } else {
                    ip(&format!("{p}.{i}"))
                }
            })
        })
        .collect();
    let mut frames = Vec::new();
    for round in 0..rounds {
        for k in 0..ports {
            for (n, &source) in sources.iter().enumerate() {
                let offset = u16::try_from(n % 50).unwrap() * 20;
                let port = 1 + (offset + k * 7) % 1024;
                let victim = if source.is_ipv4() { v4 } else { v6 };
                frames.push(tcp_frame(source, victim, 40_000 + round, port, SYN));
            }
        }
    }
    frames
}

/// The addresses `prefix` (text that begins them) has in the victim's block sets.
fn blocked_in(lab: &NetnsPair, prefix: &str) -> usize {
    ["blocked4", "blocked6", "blocked4_net", "blocked6_net"]
        .iter()
        .map(|set| lab.set_text(set).matches(&format!("\"{prefix}")).count())
        .sum()
}

/// Issue 24, finding 9: 200,000 spoofed SYNs (~100k/s) from 512 addresses in two networks that
/// route back over the attacker's link, each touching twenty trap ports, hid a real
/// `nmap -sS -T4` started a second into the flood: detected ("syn scan, 64 ports"), refused by
/// the budget, never blocked, 3 runs of 3. Scaled (61,440 SYNs at about 25,000 a second, a
/// 64-port nmap 0.3 s in, over in milliseconds, before a token of the budget is back), five
/// runs, each on a fresh lab: the scanner is blocked in every one. The two forged networks are
/// IPv6 /48s (the lab's IPv4 space is two /24s, one of them the scanner's). With `SCALE=full`
/// (against a release build), the issue's scale: 204,800 SYNs as fast as libpcap sends them,
/// the nmap 1 s in; each run prints the time from the scanner's detection to its block.
#[test]
#[ignore = "needs root + netns: cargo test --test trust -- --ignored"]
#[expect(
    clippy::disallowed_methods,
    reason = "the sender's rate is wall-clock time, outside the code under test"
)]
fn issue_24_a_spoofed_flood_of_strong_evidence_does_not_hide_a_real_scan() {
    require_root();
    let full = full_scale();
    let rounds = if full { 20 } else { 6 };
    let flood = forged_scans(&["2001:db8:a", "2001:db8:b"], 256, 20, rounds);
    assert_eq!(flood.len(), 512 * 20 * usize::from(rounds));
    let (chunk, pause, nmap_after) = if full {
        (flood.len(), Duration::ZERO, Duration::from_secs(1))
    } else {
        (FLOOD_CHUNK, FLOOD_PAUSE, Duration::from_millis(300))
    };
    for run in 1..=5 {
        let lab = NetnsPair::new();
        route_forgeries_back_over_the_link(&lab);
        let dir = TempDir::new("trust");
        let daemon = Daemon::spawn(&lab.a, &dir.0, "");
        let sent = std::thread::scope(|s| {
            let sender = s.spawn(|| {
                let (wall, start) = (jiff::Timestamp::now(), std::time::Instant::now());
                lab.inject_paced(&flood, chunk, pause);
                (wall, start.elapsed())
            });
            std::thread::sleep(nmap_after);
            lab.nmap(&["-6", "-sS", "-p", "1-64", NetnsPair::A6]);
            sender.join().unwrap()
        });
        let (began, sent) = (sent.0.as_microsecond() as f64 / 1000.0, sent.1);
        let scanner = "2001:db8:0:1::2";
        let blocked = format!("blocked {scanner} for");
        assert!(
            wait_until(DEADLINE, || daemon.out().contains(&blocked)),
            "run {run}: {scanner} not blocked:\n{}\n{}\n{}",
            daemon.out(),
            String::from_utf8_lossy(&daemon.ctl(&["why", scanner]).stdout),
            String::from_utf8_lossy(&daemon.ctl(&["status", "--json"]).stdout),
        );
        let forged = blocked_in(&lab, "2001:db8:a:") + blocked_in(&lab, "2001:db8:b:");
        let status: serde_json::Value =
            serde_json::from_slice(&daemon.ctl(&["status", "--json"]).stdout).unwrap();
        let out = daemon.out();
        // The scanner's first line is its detection's (blocked, or waiting for the budget).
        let first = out
            .lines()
            .find(|l| l.contains(&format!(" {scanner}:")) || l.contains(&blocked))
            .unwrap_or_default();
        let block = out
            .lines()
            .find(|l| l.contains(&blocked))
            .unwrap_or_default();
        let ms = |line: &str| {
            line.split_whitespace()
                .next()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .map(|t| t.as_microsecond() as f64 / 1000.0)
        };
        let waited = ms(block).zip(ms(first)).map(|(b, d)| b - d);
        let into = ms(block).map(|b| (b - began) / 1000.0);
        eprintln!(
            "run {run}: {} SYNs in {:.2}s ({:.0}/s), {} capture drops; scanner blocked \
             {waited:?} ms after its detection, {into:?} s into the flood; {forged} forged \
             sources blocked; capture to kernel p50 {} us, p99 {} us ({} blocks); \
             first: {first}; block: {block}",
            flood.len(),
            sent.as_secs_f64(),
            flood.len() as f64 / sent.as_secs_f64(),
            status["capture_drops"],
            status["block_latency_p50_us"],
            status["block_latency_p99_us"],
            status["block_latency_samples"],
        );
        assert!(
            forged <= 2 * 64,
            "run {run}: {forged} forged sources blocked"
        );
    }
}

/// Adds `addrs` to the scanner's end of the link (the lab's scanners beside its first two).
fn add_scanners(lab: &NetnsPair, addrs: &[&str]) {
    for a in addrs {
        let with_len = if a.contains(':') {
            format!("{a}/48")
        } else {
            format!("{a}/24")
        };
        let mut args = vec!["ip", "addr", "add", &with_len, "dev", &lab.veth_b];
        if a.contains(':') {
            args.push("nodad");
        }
        let out = lab.exec(&lab.b, &args);
        assert!(out.status.success(), "{a}: {out:?}");
    }
}

/// A real `nmap -sS -T4` of ports 1-200 of the victim from `scanner`, an address of the
/// scanner's namespace.
fn nmap_from(lab: &NetnsPair, scanner: &str) {
    let (family, victim) = if scanner.contains(':') {
        ("-6", NetnsPair::A6)
    } else {
        ("-4", NetnsPair::A4)
    };
    lab.nmap(&[
        family,
        "-sS",
        "-S",
        scanner,
        "-e",
        &lab.veth_b,
        "-p",
        "1-200",
        victim,
    ]);
}

/// Issue 24, finding 10: with `max-blocks = 100`, forged blocks filled the one pool of both
/// families, a real scan was refused ("100 blocks active"), the kernel's set filled, and a
/// later reload failed ("set … blocked4 is full"). The forger here fills what it may: strong
/// evidence (twenty ports a source) from the IPv4 /24 and two IPv6 /48s it forges from, and
/// from 200 more /48s, one source each, IPv4 first. Its IPv4 /24 holds 16 blocks at most (a
/// sixteenth of `max-blocks`), its IPv6 sources fill the IPv6 room: a real IPv4 scan is blocked, and a
/// reload succeeds with every block put back.
#[test]
#[ignore = "needs root + netns: cargo test --test trust -- --ignored"]
fn issue_24_a_forged_flood_that_fills_max_blocks_leaves_room_for_a_real_scan() {
    require_root();
    let lab = NetnsPair::new();
    route_forgeries_back_over_the_link(&lab);
    let dir = TempDir::new("trust");
    let daemon = Daemon::spawn(&lab.a, &dir.0, "[respond]\nmax-blocks = 100\n");
    // IPv4 first: in one pool, it would take all of it.
    let mut flood = forged_scans(&["203.0.113"], 256, 20, 4);
    flood.extend(forged_scans(&["2001:db8:a", "2001:db8:b"], 256, 20, 4));
    let wide: Vec<String> = (0x100..0x1c8).map(|i| format!("2001:db8:{i:x}")).collect();
    let wide: Vec<&str> = wide.iter().map(String::as_str).collect();
    flood.extend(forged_scans(&wide, 1, 20, 2));
    lab.inject_paced(&flood, FLOOD_CHUNK, FLOOD_PAUSE);
    let status = || -> serde_json::Value {
        serde_json::from_slice(&daemon.ctl(&["status", "--json"]).stdout).unwrap()
    };
    // Until the blocks stop coming (the budget lets the flood's blocks through in seconds).
    let mut last = (0, 0);
    let settled = wait_until(Duration::from_secs(20), || {
        std::thread::sleep(Duration::from_millis(1500));
        let now = (
            blocked_in(&lab, "2001:db8:"),
            blocked_in(&lab, "203.0.113."),
        );
        std::mem::replace(&mut last, now) == now
    });
    assert!(settled, "{}", status());
    // The real scan, from IPv4.
    nmap_from(&lab, NetnsPair::B4);
    assert_blocked(&daemon, NetnsPair::B4);
    let out = daemon.ctl(&["reload"]);
    assert!(
        out.status.success(),
        "reload: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        wait_until(DEADLINE, || daemon.out().contains("reloaded")),
        "{}\n{}",
        daemon.out(),
        daemon.err()
    );
    assert!(!daemon.out().contains("is full"), "{}", daemon.out());
    assert!(lab.set_text("blocked4").contains(NetnsPair::B4));
    // The forger's IPv4 /24 holds its sixteenth of max-blocks at most, its IPv6 sources the
    // IPv6 room.
    let forged4 = blocked_in(&lab, "203.0.113.");
    assert!(forged4 <= 16, "{forged4}");
    assert_eq!(blocked_in(&lab, "2001:db8:"), 100);
    eprintln!(
        "max-blocks = 100: {} forged IPv6 blocks, {forged4} forged IPv4 blocks, the scanner \
         blocked, reload: {}",
        blocked_in(&lab, "2001:db8:"),
        String::from_utf8_lossy(&out.stdout).trim()
    );
}

/// Issue 24, finding 9: forged 6-port scans at 5,000 probes a second kept a real IPv6 scanner
/// unblocked and blocked 417 innocent addresses in 20 s. Here 5,000 a second for 8 s (each
/// source's six NULL probes back to back, a detection at the fourth and strong evidence at the
/// sixth, from the forger's IPv4 /24 and two IPv6 /48s), with five
/// real nmap scanners at once (three IPv4, two IPv6): all are blocked, and each forged network
/// holds at most 64 blocks.
#[test]
#[ignore = "needs root + netns: cargo test --test trust -- --ignored"]
fn issue_24_real_scanners_are_blocked_among_forged_six_port_scans() {
    require_root();
    let lab = NetnsPair::new();
    route_forgeries_back_over_the_link(&lab);
    let scanners = [
        "198.51.100.10",
        "198.51.100.11",
        "198.51.100.12",
        "2001:db8::10",
        "2001:db8::11",
    ];
    add_scanners(&lab, &scanners);
    let dir = TempDir::new("trust");
    let daemon = Daemon::spawn(&lab.a, &dir.0, "");
    let (v4, v6) = (ip(NetnsPair::A4), ip(NetnsPair::A6));
    let mut frames = Vec::new();
    for n in 0..6700u32 {
        let source = match n % 3 {
            0 => ip(&format!("203.0.113.{}", n / 3 % 256)),
            1 => ip(&format!("2001:db8:a:{:x}::1", n / 3)),
            _ => ip(&format!("2001:db8:b:{:x}::1", n / 3)),
        };
        let victim = if source.is_ipv4() { v4 } else { v6 };
        for k in 0..6u16 {
            let port = 1 + (u16::try_from(n % 100).unwrap() * 10 + k) % 1024;
            frames.push(tcp_frame(source, victim, 40_000, port, NULL));
        }
    }
    std::thread::scope(|s| {
        // 5,000 a second: 50 every 10 ms.
        s.spawn(|| lab.inject_paced(&frames, 50, Duration::from_millis(10)));
        std::thread::sleep(Duration::from_secs(2));
        for scanner in scanners {
            s.spawn(|| nmap_from(&lab, scanner));
        }
    });
    for scanner in scanners {
        assert_blocked(&daemon, scanner);
    }
    let innocent = [
        blocked_in(&lab, "203.0.113."),
        blocked_in(&lab, "2001:db8:a:"),
        blocked_in(&lab, "2001:db8:b:"),
    ];
    let out = daemon.out();
    let scanners_blocked = scanners
        .iter()
        .filter(|s| out.contains(&format!("blocked {s} for")))
        .count();
    eprintln!(
        "{} forged probes; {} real scanners blocked; innocent blocks per forged network \
         (203.0.113.0/24, 2001:db8:a::/48, 2001:db8:b::/48): {innocent:?}",
        frames.len(),
        scanners_blocked
    );
    assert!(innocent.iter().all(|&n| n <= 64), "{innocent:?}");
}
