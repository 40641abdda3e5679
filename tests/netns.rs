//! Real scanners against the real daemon, in network namespaces the tests create and remove.
//!
//! Run as root: `cargo test --test netns -- --ignored --test-threads=1` (the README's test
//! command includes them). Without root each test fails with that sentence; it never passes
//! without running.

mod support;

use std::time::Duration;

use support::frames;
use support::netns::{Daemon, NetnsPair, TempDir, require_root, wait_until};

/// How long a detection may take to show up after the scan ended (generous: CI machines are
/// slow; the latency itself is measured by a benchmark, not here).
const DEADLINE: Duration = Duration::from_secs(10);

fn detected(daemon: &Daemon, what: &str) -> bool {
    detected_within(daemon, what, DEADLINE)
}

fn detected_within(daemon: &Daemon, what: &str, limit: Duration) -> bool {
    wait_until(limit, || daemon.out().contains(what))
}

/// A scan of the victim by the scanner's `from` address: before it, `from` connects to an open
/// port; after it, the detection is logged, `from` is in the kernel set (the element, or the
/// network holding it), and a TCP connect from it fails.
macro_rules! scan_is_detected {
    ($name:ident, $kind:literal, $nmap:expr, $from:expr, $target:expr, $line:expr, $set:literal, $element:literal) => {
        #[test]
        #[ignore = "needs root + netns: cargo test --test netns -- --ignored --test-threads=1"]
        fn $name() {
            require_root();
            let lab = NetnsPair::new();
            let dir = TempDir::new("netns");
            let _server = lab.listen(&[8080], 60);
            let daemon = Daemon::spawn(&lab.a, &dir.0, "");
            assert!(lab.connects($from, 8080), "no connection before the scan");
            let mut args: Vec<&str> = $nmap.to_vec();
            args.push($target);
            lab.nmap(&args);
            assert!(
                detected(&daemon, $line),
                "no detection of the {} scan; sentryd said:\n{}\n{}",
                $kind,
                daemon.out(),
                daemon.err()
            );
            let set = lab.set_text($set);
            assert!(
                set.contains($element),
                "{} not in {}: {}",
                $element,
                $set,
                set
            );
            assert!(
                !lab.connects($from, 8080),
                "the scanner still connects after its block"
            );
        }
    };
}

scan_is_detected!(
    nmap_syn_scan_is_detected,
    "syn",
    ["-sS", "-p", "1-200"],
    NetnsPair::B4,
    NetnsPair::A4,
    "blocked 198.51.100.2 for 1h: syn scan",
    "blocked4",
    "198.51.100.2"
);
scan_is_detected!(
    nmap_connect_scan_is_detected,
    "connect",
    ["-sT", "-p", "1-100"],
    NetnsPair::B4,
    NetnsPair::A4,
    "blocked 198.51.100.2 for 1h: syn scan",
    "blocked4",
    "198.51.100.2"
);
scan_is_detected!(
    nmap_fin_scan_is_detected,
    "fin",
    ["-sF", "-p", "1-100"],
    NetnsPair::B4,
    NetnsPair::A4,
    "blocked 198.51.100.2 for 1h: fin scan",
    "blocked4",
    "198.51.100.2"
);
scan_is_detected!(
    nmap_null_scan_is_detected,
    "null",
    ["-sN", "-p", "1-100"],
    NetnsPair::B4,
    NetnsPair::A4,
    "blocked 198.51.100.2 for 1h: null scan",
    "blocked4",
    "198.51.100.2"
);
scan_is_detected!(
    nmap_xmas_scan_is_detected,
    "xmas",
    ["-sX", "-p", "1-100"],
    NetnsPair::B4,
    NetnsPair::A4,
    "blocked 198.51.100.2 for 1h: xmas scan",
    "blocked4",
    "198.51.100.2"
);
scan_is_detected!(
    nmap_maimon_scan_is_detected,
    "maimon",
    ["-sM", "-p", "1-100"],
    NetnsPair::B4,
    NetnsPair::A4,
    "blocked 198.51.100.2 for 1h: maimon scan",
    "blocked4",
    "198.51.100.2"
);
scan_is_detected!(
    nmap_ack_scan_is_detected,
    "ack",
    ["-sA", "-p", "1-100"],
    NetnsPair::B4,
    NetnsPair::A4,
    "blocked 198.51.100.2 for 1h: ack scan",
    "blocked4",
    "198.51.100.2"
);
scan_is_detected!(
    nmap_window_scan_is_detected,
    "window",
    ["-sW", "-p", "1-100"],
    NetnsPair::B4,
    NetnsPair::A4,
    "blocked 198.51.100.2 for 1h: ack scan",
    "blocked4",
    "198.51.100.2"
);
scan_is_detected!(
    nmap_udp_scan_is_detected,
    "udp",
    ["-sU", "-p", "1-30"],
    NetnsPair::B4,
    NetnsPair::A4,
    "blocked 198.51.100.2 for 1h: udp scan",
    "blocked4",
    "198.51.100.2"
);
scan_is_detected!(
    // nmap's "polite" timing: a probe every 0.4 s (the `-T2` after the helper's `-T4` wins).
    nmap_slow_t2_syn_scan_is_detected,
    "slow syn",
    ["-sS", "-T2", "-p", "1-15"],
    NetnsPair::B4,
    NetnsPair::A4,
    "blocked 198.51.100.2 for 1h: syn scan",
    "blocked4",
    "198.51.100.2"
);
scan_is_detected!(
    nmap_ipv6_syn_scan_blocks_the_scanner,
    "syn over IPv6",
    ["-6", "-sS", "-p", "1-200"],
    NetnsPair::B6,
    NetnsPair::A6,
    // One address of its /64 scanned: that address is blocked, not its neighbours (the /64
    // only when two or more of its addresses scan; tests/trust.rs).
    "blocked 2001:db8:0:1::2 for 1h: syn scan",
    "blocked6",
    "2001:db8:0:1::2"
);

#[test]
#[ignore = "needs root + netns: cargo test --test netns -- --ignored --test-threads=1"]
fn a_never_block_source_is_never_blocked_while_another_is() {
    require_root();
    let lab = NetnsPair::new();
    let dir = TempDir::new("netns");
    let daemon = Daemon::spawn(
        &lab.a,
        &dir.0,
        "[never-block]\naddresses = [\"198.51.100.2\"]\n",
    );
    lab.nmap(&["-sS", "-p", "1-200", NetnsPair::A4]);
    // The same scan from the second address is the control: the daemon was watching.
    lab.nmap(&[
        "-sS",
        "-S",
        NetnsPair::B4_SECOND,
        "-e",
        &lab.veth_b,
        "-p",
        "1-200",
        NetnsPair::A4,
    ]);
    assert!(
        detected(&daemon, "blocked 198.51.100.3 for 1h: syn scan"),
        "the control scan was not detected:\n{}\n{}",
        daemon.out(),
        daemon.err()
    );
    assert!(
        !daemon.out().contains("198.51.100.2"),
        "a never-block source was acted on:\n{}",
        daemon.out()
    );
}

#[test]
#[ignore = "needs root + netns: cargo test --test netns -- --ignored --test-threads=1"]
fn open_ports_are_not_traps() {
    require_root();
    let lab = NetnsPair::new();
    let dir = TempDir::new("netns");
    // Seven TCP services in the victim's namespace, on privileged ports: scanning exactly them
    // would score 21, a detection, if they were traps.
    let _servers = lab.listen(&[21, 22, 23, 25, 53, 80, 110], 60);
    let daemon = Daemon::spawn(&lab.a, &dir.0, "");
    lab.nmap(&["-sS", "-p", "21,22,23,25,53,80,110", NetnsPair::A4]);
    // Give a wrong detection every chance to show up, then run the control: the closed
    // neighbours are traps.
    assert!(
        !detected_within(&daemon, "blocked", Duration::from_secs(2)),
        "a scan of open ports only was detected:\n{}",
        daemon.out()
    );
    lab.nmap(&["-sS", "-p", "1-20", NetnsPair::A4]);
    assert!(
        detected(&daemon, "blocked 198.51.100.2 for 1h: syn scan, 7 ports"),
        "{}\n{}",
        daemon.out(),
        daemon.err()
    );
}

/// `/etc/netns/NAME/resolv.conf`, which `ip netns exec NAME` mounts over `/etc/resolv.conf`;
/// the directory is removed on drop.
struct NetnsResolvConf(std::path::PathBuf);

impl NetnsResolvConf {
    fn new(ns: &str, text: &str) -> Self {
        let dir = std::path::Path::new("/etc/netns").join(ns);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("resolv.conf"), text).unwrap();
        NetnsResolvConf(dir)
    }
}

impl Drop for NetnsResolvConf {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        // /etc/netns itself, if nothing else is in it (it only fails when something is).
        let _ = std::fs::remove_dir("/etc/netns");
    }
}

#[test]
#[ignore = "needs root + netns: cargo test --test netns -- --ignored --test-threads=1"]
fn never_block_list_is_discovered_from_addresses_routes_and_resolv_conf() {
    require_root();
    let lab = NetnsPair::new();
    let dir = TempDir::new("netns");
    for args in [
        vec![
            "-n",
            &lab.a,
            "route",
            "add",
            "default",
            "via",
            "198.51.100.2",
        ],
        vec![
            "-n",
            &lab.a,
            "-6",
            "route",
            "add",
            "default",
            "via",
            "2001:db8:0:1::2",
        ],
    ] {
        let out = std::process::Command::new("ip")
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _resolv =
        NetnsResolvConf::new(&lab.a, "nameserver 203.0.113.53\nnameserver 2001:db8::53\n");
    let ignore_file = dir.0.join("ignore");
    std::fs::write(
        &ignore_file,
        "# partners\n203.0.113.128/25\nnot-an-address\n",
    )
    .unwrap();
    let config = dir.0.join("scansentry.toml");
    std::fs::write(
        &config,
        format!(
            "[never-block]\naddresses = [\"198.51.100.77\"]\nfile = \"{}\"\n",
            ignore_file.display()
        ),
    )
    .unwrap();
    let out = lab.exec(
        &lab.a,
        &[
            env!("CARGO_BIN_EXE_sentryd"),
            "-c",
            config.to_str().unwrap(),
            "--never-block",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let veth = format!("va{}", lab.b.trim_start_matches("sst-b-"));
    for expected in [
        "ADDRESS REASON".to_string(),
        "127.0.0.0/8 loopback".into(),
        format!("198.51.100.1 address of interface {veth}"),
        format!("2001:db8::1 address of interface {veth}"),
        format!("198.51.100.2 default gateway on {veth}"),
        format!("2001:db8:0:1::2 default gateway on {veth}"),
        "203.0.113.53 nameserver in /etc/resolv.conf".into(),
        "2001:db8::53 nameserver in /etc/resolv.conf".into(),
        "198.51.100.77 [never-block] addresses in the configuration".into(),
        format!(
            "203.0.113.128/25 never-block file {} line 2",
            ignore_file.display()
        ),
    ] {
        assert!(
            lines.contains(&expected),
            "missing {expected:?} in:\n{text}"
        );
    }
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:3: \"not-an-address\" is not an IP address or CIDR; line skipped",
            ignore_file.display()
        )),
        "{err}"
    );
}

#[test]
#[ignore = "needs root + netns: cargo test --test netns -- --ignored --test-threads=1"]
fn a_detected_scanner_is_dropped_in_the_kernel_and_the_hook_runs() {
    require_root();
    let lab = NetnsPair::new();
    let dir = TempDir::new("netns");
    let _server = lab.listen(&[8080], 60);
    let connects = || lab.connects(NetnsPair::B4, 8080);
    let marker = dir.0.join("hook-{addr}-{kind}");
    let daemon = Daemon::spawn(
        &lab.a,
        &dir.0,
        &format!(
            "[respond]\non-block = [\"/usr/bin/touch\", \"{}\"]\n",
            marker.display()
        ),
    );
    lab.nmap(&["-sS", "-p", "1-100", NetnsPair::A4]);
    assert!(
        detected(&daemon, "blocked 198.51.100.2 for 1h: syn scan"),
        "{}",
        daemon.err()
    );
    assert!(!connects(), "the scanner still connects after its block");
    let made = dir.0.join("hook-198.51.100.2-syn");
    assert!(
        wait_until(Duration::from_secs(5), || made.exists()),
        "the on-block program did not run: {}",
        daemon.err()
    );
    let set = lab.set_text("blocked4");
    assert!(set.contains("198.51.100.2"));
}

#[test]
#[ignore = "needs root + netns: cargo test --test netns -- --ignored --test-threads=1"]
fn dry_run_logs_would_block_and_touches_no_firewall() {
    require_root();
    let lab = NetnsPair::new();
    let dir = TempDir::new("netns");
    let daemon = Daemon::spawn(&lab.a, &dir.0, "[respond]\ndry-run = true\n");
    lab.nmap(&["-sS", "-p", "1-100", NetnsPair::A4]);
    assert!(
        detected(&daemon, "would block 198.51.100.2 for 1h: syn scan"),
        "{}",
        daemon.err()
    );
    let tables = lab.exec(&lab.a, &["nft", "list", "tables"]);
    assert_eq!(
        String::from_utf8_lossy(&tables.stdout),
        "",
        "dry run created a table"
    );
}

#[test]
#[ignore = "needs root + netns: cargo test --test netns -- --ignored --test-threads=1"]
fn without_cap_net_admin_the_daemon_says_so_and_exits_77() {
    require_root();
    let lab = NetnsPair::new();
    let out = lab.exec(
        &lab.a,
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            env!("CARGO_BIN_EXE_sentryd"),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(77),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "sentryd: error: not permitted to change nftables: sentryd needs CAP_NET_ADMIN (run it as root)\n"
    );
}

#[test]
#[ignore = "needs root + netns: cargo test --test netns -- --ignored --test-threads=1"]
fn the_socket_table_over_sock_diag_is_what_proc_net_shows() {
    use scansentry::host::{listening_sockets, parse_proc_net};
    use scansentry::wire::Proto;
    use std::net::{IpAddr, TcpListener, TcpStream, UdpSocket};

    require_root();
    let ns = support::netns::Netns::new("diag");
    let (from_diag, from_proc) = ns.run(|| {
        let _tcp_any = TcpListener::bind("0.0.0.0:2222").unwrap();
        let tcp_lo = TcpListener::bind("127.0.0.1:0").unwrap();
        let _tcp6_any = TcpListener::bind("[::]:8443").unwrap();
        let _tcp6_lo = TcpListener::bind("[::1]:631").unwrap();
        let _udp = UdpSocket::bind("0.0.0.0:5353").unwrap();
        let _udp6 = UdpSocket::bind("[::1]:0").unwrap();
        // A connected TCP socket is no listener; its accepted peer neither.
        let _client = TcpStream::connect(tcp_lo.local_addr().unwrap()).unwrap();
        let _served = tcp_lo.accept().unwrap();

        let mut from_diag: Vec<(Proto, Option<IpAddr>, u16)> = listening_sockets()
            .expect("sock_diag answers in a namespace")
            .into_iter()
            .map(|s| {
                (
                    s.proto,
                    (!s.addr.is_unspecified()).then_some(s.addr),
                    s.port,
                )
            })
            .collect();
        let mut from_proc = Vec::new();
        for (file, proto) in [
            ("/proc/thread-self/net/tcp", Proto::Tcp),
            ("/proc/thread-self/net/tcp6", Proto::Tcp),
            ("/proc/thread-self/net/udp", Proto::Udp),
            ("/proc/thread-self/net/udp6", Proto::Udp),
        ] {
            from_proc.extend(parse_proc_net(
                &std::fs::read_to_string(file).unwrap(),
                proto,
            ));
        }
        from_diag.sort_unstable();
        from_proc.sort_unstable();
        (from_diag, from_proc)
    });
    assert_eq!(from_diag.len(), 6, "{from_diag:?}");
    assert!(from_diag.contains(&(Proto::Tcp, None, 2222)));
    assert!(from_diag.contains(&(Proto::Tcp, Some("::1".parse().unwrap()), 631)));
    assert!(from_diag.contains(&(Proto::Udp, None, 5353)));
    assert_eq!(from_diag, from_proc);
}

#[test]
#[ignore = "needs root + netns: cargo test --test netns -- --ignored --test-threads=1"]
fn the_host_scanning_itself_is_judged_only_with_the_local_check_off() {
    require_root();
    let lab = NetnsPair::new();
    // Capturing on every interface, loopback too, where a scan of the host by itself travels.
    let config = "[capture]\ninterfaces = [\"ALL\"]\n";
    let scan_self = |lab: &NetnsPair| {
        let out = lab.exec(
            &lab.a,
            &[
                "timeout",
                "60",
                "nmap",
                "-n",
                "-Pn",
                "-T4",
                "-sS",
                "-p",
                "1-100",
                NetnsPair::A4,
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };

    let dir = TempDir::new("netns");
    let daemon = Daemon::spawn(&lab.a, &dir.0, config);
    scan_self(&lab);
    assert!(
        !detected_within(&daemon, "198.51.100.1", Duration::from_secs(2)),
        "the host's own scan was judged with the local check on:\n{}",
        daemon.out()
    );
    drop(daemon);

    let dir = TempDir::new("netns");
    let daemon = Daemon::spawn_with(&lab.a, &dir.0, config, 120, &["-L"]);
    scan_self(&lab);
    assert!(
        detected(
            &daemon,
            "not blocking 198.51.100.1: on never-block list (address of"
        ),
        "sentryd -L said:\n{}\n{}",
        daemon.out(),
        daemon.err()
    );
    let set = lab.set_text("blocked4");
    assert!(!set.contains("198.51.100.1"));
}

#[test]
#[ignore = "needs root + netns: cargo test --test netns -- --ignored --test-threads=1"]
fn the_raw_method_sees_the_same_probes_and_detection_as_pcap() {
    require_root();
    let lab = NetnsPair::new();
    let (pcap_dir, raw_dir) = (TempDir::new("netns"), TempDir::new("netns"));
    // Two daemons on the same traffic, neither touching the firewall.
    let pcap = Daemon::spawn(&lab.a, &pcap_dir.0, "[respond]\ndry-run = true\n");
    let raw = Daemon::spawn(
        &lab.a,
        &raw_dir.0,
        "[respond]\ndry-run = true\n[capture]\nmethod = \"raw\"\n",
    );
    assert!(
        raw.out().contains("watching raw:all-but-loopback"),
        "{}",
        raw.out()
    );
    lab.nmap(&["-sS", "-p", "1-100", NetnsPair::A4]);
    let line = "would block 198.51.100.2 for 1h: syn scan, 7 ports";
    assert!(detected(&pcap, line), "pcap: {}", pcap.out());
    assert!(detected(&raw, line), "raw: {}", raw.out());
    let probes = |d: &Daemon| -> u64 {
        let out = d.ctl(&["--json", "status"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["probes"].as_u64().unwrap()
    };
    // Every probe of the scan reached both (the scan is over once nmap has returned).
    assert!(
        wait_until(Duration::from_secs(3), || probes(&pcap) == probes(&raw)
            && probes(&raw) >= 100),
        "pcap saw {} probes, raw {}",
        probes(&pcap),
        probes(&raw)
    );
}

/// A pcap daemon and a raw daemon in dry run, side by side in the victim's namespace.
struct BothMethods {
    pcap: Daemon,
    raw: Daemon,
    _dirs: (TempDir, TempDir),
}

impl BothMethods {
    fn spawn(lab: &NetnsPair) -> Self {
        let dirs = (TempDir::new("netns"), TempDir::new("netns"));
        let pcap = Daemon::spawn(&lab.a, &dirs.0.0, "[respond]\ndry-run = true\n");
        let raw = Daemon::spawn(
            &lab.a,
            &dirs.1.0,
            "[respond]\ndry-run = true\n[capture]\nmethod = \"raw\"\n",
        );
        BothMethods {
            pcap,
            raw,
            _dirs: dirs,
        }
    }

    /// Both detect the genuine scan from `genuine`, and neither names any of `forged`, whose
    /// frames are `what`.
    fn see_only(&self, genuine: &str, forged: &[&str], what: &str) {
        for (name, daemon) in [("pcap", &self.pcap), ("raw", &self.raw)] {
            assert!(
                detected(daemon, &format!("would block {genuine} for 1h")),
                "{name}: {}",
                daemon.out()
            );
            for forged in forged {
                assert!(
                    !daemon.out().contains(&format!(" {forged}")),
                    "{name} took {what} from {forged} as probes: {}",
                    daemon.out()
                );
            }
        }
    }
}

/// Red team of issue 25: a frame whose link-layer protocol and IP version disagree (an IPv4
/// packet in an IPv6 frame, an IPv6 packet in an IPv4 frame) is dropped by the kernel
/// (IpInHdrErrors, Ip6InHdrErrors), yet it counted as a probe: in both methods for an IPv4
/// packet under 0x86DD, in the raw method always and in the pcap method by chance of its
/// address bytes for an IPv6 packet under 0x0800. Neither method counts them now; a scan of
/// genuine frames from another address is seen by both.
#[test]
#[ignore = "needs root + netns: cargo test --test netns -- --ignored --test-threads=1"]
fn issue_25_frames_whose_protocol_and_ip_version_disagree_are_no_probes_in_either_method() {
    require_root();
    let lab = NetnsPair::new();
    let both = BothMethods::spawn(&lab);
    let ip = |s: &str| -> std::net::IpAddr { s.parse().unwrap() };
    let scan = |src: &str, dst: &str, ether_type: Option<[u8; 2]>| -> Vec<Vec<u8>> {
        (1..=30)
            .map(|port| {
                let mut f = frames::tcp_frame(ip(src), ip(dst), 40000, port, 0x02);
                if let Some(t) = ether_type {
                    f[12..14].copy_from_slice(&t);
                }
                f
            })
            .collect()
    };
    let mut frames = scan("198.51.100.21", NetnsPair::A4, Some([0x86, 0xdd]));
    frames.extend(scan("2001:db8::8", NetnsPair::A6, Some([0x08, 0x00])));
    // 0x11 as the address's second byte: what the pcap filter's `udp` reads at ip[9].
    frames.extend(scan("2a11:db8::5", NetnsPair::A6, Some([0x08, 0x00])));
    frames.extend(scan("198.51.100.20", NetnsPair::A4, None));
    lab.inject(&frames);
    both.see_only(
        "198.51.100.20",
        &["198.51.100.21", "2001:db8::8", "2a11:db8::5"],
        "frames no host accepts",
    );
}

/// Red team of issue 25: a SYN with a wrong TCP checksum is no evidence; one whose IPv4 or
/// IPv6 header also claims more bytes than the frame carries counted, in both methods, as a
/// packet a snap length had cut, though the kernel drops it (IpExtInTruncatedPkts). Now a
/// capture that holds the whole frame takes it as truncated.
#[test]
#[ignore = "needs root + netns: cargo test --test netns -- --ignored --test-threads=1"]
fn issue_25_a_probe_shorter_than_its_ip_header_says_is_no_evidence_in_either_method() {
    require_root();
    let lab = NetnsPair::new();
    let both = BothMethods::spawn(&lab);
    let ip = |s: &str| -> std::net::IpAddr { s.parse().unwrap() };
    // A wrong TCP checksum, and a length field of 1,000 bytes (the IPv4 header's sum made
    // good again, so that only the length lies).
    let liar = |src: &str, dst: &str, port: u16| -> Vec<u8> {
        let mut f = frames::tcp_frame(ip(src), ip(dst), 40000, port, 0x02);
        let v6 = f[12..14] == [0x86, 0xdd];
        f[14 + if v6 { 40 } else { 20 } + 16] ^= 0xff;
        if v6 {
            f[18..20].copy_from_slice(&1000u16.to_be_bytes());
        } else {
            f[16..18].copy_from_slice(&1000u16.to_be_bytes());
            f[24..26].copy_from_slice(&[0, 0]);
            let sum: u32 = f[14..34]
                .chunks(2)
                .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
                .sum();
            let sum = (sum & 0xffff) + (sum >> 16);
            let sum = !u16::try_from((sum & 0xffff) + (sum >> 16)).unwrap();
            f[24..26].copy_from_slice(&sum.to_be_bytes());
        }
        f
    };
    let mut frames: Vec<Vec<u8>> = (1..=30)
        .flat_map(|port| {
            [
                liar("198.51.100.31", NetnsPair::A4, port),
                liar("2001:db8::31", NetnsPair::A6, port),
            ]
        })
        .collect();
    frames.extend(
        (1..=30).map(|port| {
            frames::tcp_frame(ip("198.51.100.32"), ip(NetnsPair::A4), 40000, port, 0x02)
        }),
    );
    lab.inject(&frames);
    both.see_only(
        "198.51.100.32",
        &["198.51.100.31", "2001:db8::31"],
        "truncated probes",
    );
}

/// Red team of issue 25: the raw method said 0 capture drops whatever its socket dropped, so
/// under a flood `status` and `capture_drops_total` said every frame was seen. Now each frame
/// the filter kept is either seen or counted as dropped (the daemon stopped during a flood).
#[test]
#[ignore = "needs root + netns: cargo test --test netns -- --ignored --test-threads=1"]
fn issue_25_the_raw_method_counts_the_frames_its_socket_dropped() {
    require_root();
    let lab = NetnsPair::new();
    let dir = TempDir::new("netns");
    let raw = Daemon::spawn(
        &lab.a,
        &dir.0,
        "[respond]\ndry-run = true\n[capture]\nmethod = \"raw\"\n",
    );
    let ip = |s: &str| -> std::net::IpAddr { s.parse().unwrap() };
    const SENT: u64 = 300_000;
    // UDP from the victim's own network to a closed port: kept by the filter, never a block
    // (one port, over and over).
    let frame = frames::udp_frame(ip(NetnsPair::B4), ip(NetnsPair::A4), 40000, 9);
    let frames = vec![frame; usize::try_from(SENT).unwrap()];
    // The daemon stopped while they come: its socket's buffer fills, and the rest is dropped.
    let signal = |sig: &str| {
        let done = std::process::Command::new("kill")
            .args([sig, &raw.pid()])
            .status()
            .unwrap();
        assert!(done.success());
    };
    signal("-STOP");
    lab.inject(&frames);
    signal("-CONT");
    let status = || -> serde_json::Value {
        let out = raw.ctl(&["--json", "status"]);
        serde_json::from_slice(&out.stdout).unwrap()
    };
    // The drops are read with the daemon's status to systemd, every few seconds.
    let accounted = || {
        let s = status();
        s["packets"].as_u64().unwrap() + s["capture_drops"].as_u64().unwrap()
    };
    assert!(
        wait_until(Duration::from_secs(20), || accounted() >= SENT),
        "{SENT} frames sent, {} seen or dropped: {}",
        accounted(),
        status()
    );
}
