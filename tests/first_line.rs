//! The kernel's first line against the real kernel, with no daemon: the firewall alone builds
//! it and is fed the facts a daemon would feed it, in namespaces each test makes and removes
//! (the victim listens on the 5 ports of `benches/scan_kinds.rs`). What a test checks is what
//! the kernel did: `nft` listings, the firewall's own reading of its hold sets and counters,
//! real nmap and connects.
//!
//! Run as root: `cargo test --test first_line -- --ignored`.

mod support;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use scansentry::firewall::nft::{FirstLine, Hook, NftConfig, NftFirewall};
use scansentry::firewall::{Action, Firewall, FirstLineFacts};
use scansentry::wire::Proto;
use support::netns::{NetnsPair, enter_and_run, require_root};

const OPEN: [u16; 5] = [22, 80, 443, 3306, 8080];

fn config(hold: Option<Duration>) -> NftConfig {
    NftConfig::Own {
        hook: Hook::Input,
        forward: true,
        priority: -10,
        set_size: scansentry::config::nft::set_size(65536),
        first_line: hold.map(|hold| FirstLine {
            hold,
            log_group: 2701,
        }),
    }
}

/// What a daemon would tell the first line of the lab: the 5 open ports, Linux's default
/// ephemeral range.
fn facts() -> FirstLineFacts {
    FirstLineFacts {
        listening: OPEN.iter().map(|&p| (Proto::Tcp, p)).collect(),
        tripwires: BTreeSet::new(),
        scanners_first: scansentry::first_line::scanners_first(),
        peers: Vec::new(),
        ephemeral: Some(32768..=60999),
    }
}

/// Runs `f` with a firewall of `config` opened in the victim's namespace.
fn in_victim<T: Send>(
    lab: &NetnsPair,
    config: &NftConfig,
    f: impl FnOnce(&mut NftFirewall) -> T + Send,
) -> T {
    let config = config.clone();
    enter_and_run(&lab.a, move || {
        let mut fw = NftFirewall::new(config).expect("netlink socket");
        f(&mut fw)
    })
}

/// A lab with the first line built (holds of `hold`), fed, and the 5 listeners up; ICMP not
/// rate-limited (UDP probes of closed ports are answered).
fn lab(hold: Duration) -> (NetnsPair, NftConfig, support::netns::KillOnDrop) {
    let lab = NetnsPair::new();
    for key in ["net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0"] {
        let out = lab.exec(&lab.a, &["sysctl", "-qw", key]);
        assert!(out.status.success(), "{key}");
    }
    let config = config(Some(hold));
    in_victim(&lab, &config, |fw| {
        fw.ensure_ready(&[]).unwrap();
        assert!(fw.has_first_line());
        fw.set_first_line_facts(&facts()).unwrap();
    });
    let server = lab.listen(&OPEN, 300);
    (lab, config, server)
}

fn holds(lab: &NetnsPair, config: &NftConfig) -> Vec<scansentry::firewall::Blocked> {
    in_victim(lab, config, |fw| fw.holds().unwrap())
}

/// The names of the sets, chains and counters of the victim's table (sorted: a rebuild makes
/// the allow sets anew, last), and the rule count of `first_line`.
fn shape(lab: &NetnsPair) -> (Vec<String>, usize) {
    let out = lab.exec(
        &lab.a,
        &["nft", "-j", "list", "table", "inet", "scansentry"],
    );
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut names = Vec::new();
    let mut rules = 0;
    for o in v["nftables"].as_array().unwrap() {
        for kind in ["set", "chain", "counter"] {
            if let Some(name) = o.get(kind).and_then(|x| x["name"].as_str()) {
                names.push(format!("{kind} {name}"));
            }
        }
        if o.get("rule").is_some_and(|r| r["chain"] == "first_line") {
            rules += 1;
        }
    }
    names.sort();
    (names, rules)
}

/// (b) A reload with the first line off removes its chains, sets and counters in the one batch
/// that rebuilds the table; on again restores them; blocks are kept throughout.
#[test]
#[ignore = "needs root + netns: cargo test --test first_line -- --ignored"]
fn a_reload_removes_the_first_line_and_restores_it_and_blocks_stay() {
    require_root();
    let lab = NetnsPair::new();
    let on = config(Some(Duration::from_secs(5)));
    let off = config(None);
    let block: ipnet::IpNet = "203.0.113.9/32".parse().unwrap();
    in_victim(&lab, &on, |fw| {
        fw.ensure_ready(&[]).unwrap();
        fw.set_first_line_facts(&facts()).unwrap();
        fw.apply(&[Action::Block {
            net: block,
            ttl: Duration::from_secs(600),
        }])
        .unwrap();
    });
    let (with, rules) = shape(&lab);
    assert_eq!(rules, 26);
    for name in [
        "chain first_line",
        "chain weigh",
        "chain count",
        "chain hold",
        "set listen",
        "set hold4",
        "set pairs6",
        "counter score_full",
        "counter hold_full",
    ] {
        assert!(with.iter().any(|n| n == name), "{name} in {with:?}");
    }
    let listen = lab.exec(
        &lab.a,
        &["nft", "list", "set", "inet", "scansentry", "listen"],
    );
    let listen = String::from_utf8_lossy(&listen.stdout);
    assert!(
        listen.contains("tcp . 22") && listen.contains("tcp . 8080"),
        "{listen}"
    );

    in_victim(&lab, &off, |fw| {
        fw.ensure_ready(&[]).unwrap();
        assert!(!fw.has_first_line());
        assert_eq!(fw.holds().unwrap(), []);
        assert_eq!(fw.first_line_counters(), None);
        assert_eq!(fw.list().unwrap().len(), 1, "the block is kept");
    });
    let (without, rules) = shape(&lab);
    assert_eq!(rules, 0);
    let own: Vec<&str> = [
        "chain forward",
        "chain input",
        "set allow4",
        "set allow6",
        "set blocked4",
        "set blocked4_net",
        "set blocked6",
        "set blocked6_net",
    ]
    .to_vec();
    assert_eq!(without, own, "only own mode's table is left");

    // On again, from a firewall that was told no facts: its sets are back, empty until the
    // daemon feeds them; then fed, the table is as it was.
    in_victim(&lab, &on, |fw| {
        fw.ensure_ready(&[]).unwrap();
        assert_eq!(fw.list().unwrap().len(), 1, "the block is kept");
        assert_eq!(
            fw.first_line_counters(),
            Some(scansentry::firewall::FirstLineCounters::default())
        );
        fw.set_first_line_facts(&facts()).unwrap();
    });
    assert_eq!(shape(&lab), (with, 26));
    let again = lab.exec(
        &lab.a,
        &["nft", "list", "set", "inet", "scansentry", "listen"],
    );
    assert_eq!(String::from_utf8_lossy(&again.stdout), listen);

    // A reload with another first-line-hold: the hold sets take it, their elements kept.
    let hold4 = |lab: &NetnsPair| {
        let out = lab.exec(
            &lab.a,
            &["nft", "list", "set", "inet", "scansentry", "hold4"],
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(hold4(&lab).contains("timeout 5s"), "{}", hold4(&lab));
    in_victim(&lab, &config(Some(Duration::from_secs(20))), |fw| {
        fw.ensure_ready(&[]).unwrap();
        assert_eq!(fw.list().unwrap().len(), 1, "the block is kept");
    });
    assert!(hold4(&lab).contains("timeout 20s"), "{}", hold4(&lab));
}

/// (c) A real `nmap -sS -T4 --min-rate 500` of the top 1000 ports against the first line alone
/// gets at most 10 ports answered; the scanner is held, `holds()` says so with the time left,
/// and `lift_holds` frees it.
#[test]
#[ignore = "needs root + netns: cargo test --test first_line -- --ignored"]
fn an_nmap_syn_scan_is_held_by_the_kernel_alone_and_lifted() {
    require_root();
    let hold = Duration::from_secs(30);
    let (lab, config, _server) = lab(hold);
    assert!(
        lab.connects(NetnsPair::B4_SECOND, 22),
        "an open port answers"
    );
    let out = lab.nmap(&["-sS", "--min-rate", "500", NetnsPair::A4]);
    let report = String::from_utf8_lossy(&out.stdout);
    let answered = support::nmap::answered(&report);
    let open = support::nmap::count(&report, "open");
    eprintln!("nmap: {answered} ports answered, {open} open seen");
    assert!(answered <= 10, "{answered} ports answered:\n{report}");
    let held = holds(&lab, &config);
    let scanner: ipnet::IpNet = format!("{}/32", NetnsPair::B4).parse().unwrap();
    let h = held
        .iter()
        .find(|b| b.net == scanner)
        .unwrap_or_else(|| panic!("{scanner} not held: {held:?}"));
    let left = h.remaining.expect("a hold ends");
    assert!(left > Duration::ZERO && left <= hold, "{left:?}");
    assert!(
        !lab.connects(NetnsPair::B4, 22),
        "held: even an open port is dark"
    );
    assert!(
        lab.connects(NetnsPair::B4_SECOND, 22),
        "another source is not held"
    );
    in_victim(&lab, &config, |fw| {
        fw.lift_holds(&[NetnsPair::B4.parse::<IpAddr>().unwrap()])
            .unwrap();
        // Lifting one that is not held is fine.
        fw.lift_holds(&["203.0.113.77".parse::<IpAddr>().unwrap()])
            .unwrap();
    });
    assert!(holds(&lab, &config).iter().all(|b| b.net != scanner));
    assert!(
        lab.connects(NetnsPair::B4, 22),
        "lifted: the open port answers"
    );
    let counters = in_victim(&lab, &config, |fw| fw.first_line_counters());
    assert_eq!(
        counters,
        Some(scansentry::firewall::FirstLineCounters::default()),
        "no set was full"
    );
}

/// Runs a Python script in the scanner's namespace; its standard output.
fn python(lab: &NetnsPair, script: &str) -> String {
    let out = lab.exec(&lab.b, &["timeout", "30", "python3", "-c", script]);
    assert!(out.status.success(), "{script}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The elements of `set` in the victim's table, as nft lists them.
fn elements(lab: &NetnsPair, set: &str) -> usize {
    let v: serde_json::Value = serde_json::from_str(&lab.set_text(set)).unwrap();
    support::netns::set_elements(&v).len()
}

/// (d) No false hold: 50 parallel connections to the open ports, a client retrying one closed
/// port 10 times, UDP to the ephemeral range (late replies). Then, to show the lab can hold at
/// all, UDP to 6 closed ports below it does.
#[test]
#[ignore = "needs root + netns: cargo test --test first_line -- --ignored"]
fn no_false_hold_from_clients_retries_or_late_replies() {
    require_root();
    let (lab, config, _server) = lab(Duration::from_secs(5));
    let connected = python(
        &lab,
        &format!(
            "import socket, threading\n\
             ok = []\n\
             def go(p):\n\
             \x20   s = socket.create_connection(('{a}', p), timeout=2); ok.append(p); s.close()\n\
             t = [threading.Thread(target=go, args=(p,)) for p in {open:?} * 10]\n\
             [x.start() for x in t]; [x.join() for x in t]\n\
             print(len(ok))\n",
            a = NetnsPair::A4,
            open = OPEN
        ),
    );
    assert_eq!(connected.trim(), "50");
    let refused = python(
        &lab,
        &format!(
            "import socket, time\n\
             n = 0\n\
             for i in range(10):\n\
             \x20   try: socket.create_connection(('{a}', 9999), timeout=1)\n\
             \x20   except ConnectionRefusedError: n += 1\n\
             \x20   time.sleep(0.05)\n\
             print(n)\n",
            a = NetnsPair::A4
        ),
    );
    assert_eq!(refused.trim(), "10", "every retry got its RST");
    python(
        &lab,
        &format!(
            "import socket\n\
             s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
             for p in range(40000, 40040): s.sendto(b'late reply', ('{a}', p))\n",
            a = NetnsPair::A4
        ),
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(holds(&lab, &config), [], "no hold");
    assert_eq!(
        elements(&lab, "pairs4"),
        1,
        "only the closed port was counted"
    );
    assert_eq!(elements(&lab, "score4"), 1);
    assert!(lab.connects(NetnsPair::B4, 22));

    // The control: UDP to 6 unprivileged closed ports below the ephemeral range is a scan.
    python(
        &lab,
        &format!(
            "import socket\n\
             s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
             for p in range(20000, 20006): s.sendto(b'probe', ('{a}', p))\n",
            a = NetnsPair::A4
        ),
    );
    let held = holds(&lab, &config);
    assert_eq!(held.len(), 1, "{held:?}");
    assert!(!lab.connects(NetnsPair::B4, 22), "held");
    // An unblock of the address lets it in: its hold goes with it.
    in_victim(&lab, &config, |fw| {
        fw.apply(&[Action::Unblock {
            net: format!("{}/32", NetnsPair::B4).parse().unwrap(),
        }])
        .unwrap();
    });
    assert_eq!(holds(&lab, &config), []);
    assert!(lab.connects(NetnsPair::B4, 22), "unblocked");
}

/// (d) No false hold, continued: a monitoring check of every open port twice a second, and the
/// host's own outbound checks — TCP to a port open on the other side and to ten closed ones
/// (whose RSTs come back), DNS queries answered and NTP queries to no one (an ICMP error back).
/// Nothing is counted, nobody held.
#[test]
#[ignore = "needs root + netns: cargo test --test first_line -- --ignored"]
fn no_false_hold_from_monitoring_or_the_hosts_own_checks() {
    require_root();
    let (lab, config, _server) = lab(Duration::from_secs(5));
    // The other side: TCP 7000 and a DNS-like UDP 53 that answers, for at most 20 s. The UDP
    // socket is bound before the TCP one listens, since the checks wait for the TCP one only
    // (bound after, a query could meet a closed port under load, and wait out its timeout).
    let peer = std::process::Command::new("ip")
        .args(["netns", "exec", &lab.b, "timeout", "20", "python3", "-c"])
        .arg(
            "import socket, threading\n\
             u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('0.0.0.0', 53))\n\
             t = socket.create_server(('0.0.0.0', 7000))\n\
             def accept():\n\
             \x20   while True: t.accept()[0].close()\n\
             threading.Thread(target=accept, daemon=True).start()\n\
             while True:\n\
             \x20   data, peer = u.recvfrom(512); u.sendto(data, peer)\n",
        )
        .spawn()
        .expect("python3");
    let _peer = support::netns::KillOnDrop(peer);
    let checks = format!(
        "import socket, time\n\
         for i in range(50):\n\
         \x20   try: socket.create_connection(('{b}', 7000), timeout=0.2).close(); break\n\
         \x20   except OSError: time.sleep(0.1)\n\
         else: raise SystemExit('no peer')\n\
         refused = 0\n\
         for p in range(7001, 7011):\n\
         \x20   try: socket.create_connection(('{b}', p), timeout=1)\n\
         \x20   except ConnectionRefusedError: refused += 1\n\
         answered = 0\n\
         for i in range(5):\n\
         \x20   u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(1)\n\
         \x20   u.sendto(b'query', ('{b}', 53)); answered += u.recv(512) == b'query'\n\
         \x20   n = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); n.sendto(b'ntp', ('{b}', 123))\n\
         print(refused, answered)\n",
        b = NetnsPair::B4
    );
    let out = lab.exec(&lab.a, &["timeout", "30", "python3", "-c", &checks]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "10 5");
    let monitored = python(
        &lab,
        &format!(
            "import socket, time\n\
             ok = 0\n\
             for i in range(6):\n\
             \x20   for p in {open:?}:\n\
             \x20       socket.create_connection(('{a}', p), timeout=1).close(); ok += 1\n\
             \x20   time.sleep(0.5)\n\
             print(ok)\n",
            a = NetnsPair::A4,
            open = OPEN
        ),
    );
    assert_eq!(monitored.trim(), "30");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(holds(&lab, &config), [], "no hold");
    assert_eq!(elements(&lab, "pairs4"), 0, "nothing counted");
    assert!(lab.connects(NetnsPair::B4, 22));
}

/// The victim routes 2001:db8:100::/40, the forged sources' range, through the scanner, like a
/// default route: their reverse-path check passes.
fn route_forged_range(lab: &NetnsPair) {
    support::netns::ip(&[
        "-n",
        &lab.a,
        "route",
        "add",
        "2001:db8:100::/40",
        "via",
        NetnsPair::B6,
    ]);
}

/// (e) A full hold set fails open and is counted: 4,200 forged IPv6 sources (each in a /64 of
/// its own, routed back through the scanner, so the reverse-path check passes) probe 3
/// privileged closed ports each; the first 4,096 are held, each of the others' third probe is
/// dropped and counted in `hold_full`, and no one else is held.
#[test]
#[ignore = "needs root + netns: cargo test --test first_line -- --ignored"]
fn a_full_hold_set_fails_open_and_counts_it() {
    require_root();
    let (lab, config, _server) = lab(Duration::from_secs(60));
    route_forged_range(&lab);
    const SOURCES: u16 = 4200;
    let to: IpAddr = NetnsPair::A6.parse().unwrap();
    let mut frames = Vec::new();
    for n in 0..SOURCES {
        let from: IpAddr = format!("2001:db8:100:{n:x}::1").parse().unwrap();
        for port in [1, 2, 3] {
            frames.push(support::frames::tcp_frame(from, to, 40000, port, 0x02));
        }
    }
    lab.inject_paced(&frames, 300, Duration::from_millis(20));
    std::thread::sleep(Duration::from_millis(500));
    let held = holds(&lab, &config);
    assert_eq!(held.len(), 4096, "the hold set is full");
    assert!(
        held.iter()
            .all(|b| b.net.to_string().starts_with("2001:db8:100:"))
    );
    let counters = in_victim(&lab, &config, |fw| fw.first_line_counters()).unwrap();
    assert_eq!(
        counters.hold_full,
        u64::from(SOURCES) - 4096,
        "each source the full set could not hold is counted once"
    );
    assert_eq!(counters.score_full, 0);
    // Nobody who did not probe is held: the lab's real client still connects.
    assert!(lab.connects(NetnsPair::B6, 22));
    assert!(lab.connects(NetnsPair::B4, 22));
}

/// The facts are replaced whole (the same peers twice, then fewer listeners), and a spared
/// network is neither counted nor held while a source outside it is.
#[test]
#[ignore = "needs root + netns: cargo test --test first_line -- --ignored"]
fn facts_are_replaced_whole_and_a_spared_network_is_not_counted() {
    require_root();
    let (lab, config, _server) = lab(Duration::from_secs(5));
    let mut fewer = facts();
    fewer.peers = vec![
        "203.0.113.0/24".parse().unwrap(),
        "2001:db8:5::/48".parse().unwrap(),
    ];
    in_victim(&lab, &config, |fw| {
        fw.set_first_line_facts(&fewer).unwrap();
        fw.set_first_line_facts(&fewer).unwrap();
        fewer.listening = [(Proto::Tcp, 22), (Proto::Udp, 53)].into_iter().collect();
        fw.set_first_line_facts(&fewer).unwrap();
    });
    let listed = |set: &str| {
        let out = lab.exec(&lab.a, &["nft", "list", "set", "inet", "scansentry", set]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let listen = listed("listen");
    assert!(
        listen.contains("tcp . 22") && listen.contains("udp . 53") && !listen.contains("80"),
        "{listen}"
    );
    assert!(listed("peers4").contains("elements = { 203.0.113.0/24 }"));
    assert!(listed("peers6").contains("elements = { 2001:db8:5::/48 }"));
    assert!(listed("udp_replies").contains("elements = { 32768-60999 }"));

    let spared: ipnet::IpNet = format!("{}/32", NetnsPair::B4).parse().unwrap();
    in_victim(&lab, &config, |fw| {
        fw.spare(&[spared], Duration::from_secs(600)).unwrap();
        // Sparing it again refreshes it.
        fw.spare(&[spared], Duration::from_secs(600)).unwrap();
    });
    let spare4 = listed("spare4");
    assert!(spare4.contains("198.51.100.2 timeout 10m"), "{spare4}");
    let probe = |from: &str| {
        python(
            &lab,
            &format!(
                "import socket\n\
                 s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
                 s.bind(('{from}', 0))\n\
                 for p in range(20000, 20006): s.sendto(b'probe', ('{a}', p))\n",
                a = NetnsPair::A4
            ),
        );
    };
    probe(NetnsPair::B4);
    assert_eq!(holds(&lab, &config), [], "spared");
    assert_eq!(elements(&lab, "pairs4"), 0, "not even counted");
    probe(NetnsPair::B4_SECOND);
    let held = holds(&lab, &config);
    assert_eq!(
        held.iter().map(|b| b.net.to_string()).collect::<Vec<_>>(),
        [format!("{}/32", NetnsPair::B4_SECOND)]
    );
}

/// A probe without SYN (FIN, here) draws twice, so 3 unprivileged ports hold its source; SYNs
/// and UDP datagrams with a wrong checksum, which the host drops and the daemon does not count,
/// are not counted either (conntrack finds them invalid).
#[test]
#[ignore = "needs root + netns: cargo test --test first_line -- --ignored"]
fn stealth_probes_weigh_twice_and_wrong_checksums_do_not_count() {
    require_root();
    let (lab, config, _server) = lab(Duration::from_secs(5));
    let victim: IpAddr = NetnsPair::A4.parse().unwrap();
    let first: IpAddr = NetnsPair::B4.parse().unwrap();
    // Ethernet 14 bytes, IPv4 20: TCP's checksum at 34 + 16, UDP's at 34 + 6.
    let spoilt = |mut frame: Vec<u8>, at: usize| {
        frame[at] ^= 0x5a;
        frame
    };
    let mut frames: Vec<Vec<u8>> = (2000..2020)
        .map(|port| {
            spoilt(
                support::frames::tcp_frame(first, victim, 40000, port, 0x02),
                50,
            )
        })
        .collect();
    frames.extend(
        (2000..2020).map(|port| spoilt(support::frames::udp_frame(first, victim, 40001, port), 40)),
    );
    lab.inject(&frames);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(holds(&lab, &config), []);
    assert_eq!(elements(&lab, "pairs4"), 0, "not counted");

    let second: IpAddr = NetnsPair::B4_SECOND.parse().unwrap();
    let fin = |port| support::frames::tcp_frame(second, victim, 40002, port, 0x01);
    lab.inject(&[fin(2000), fin(2001)]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(holds(&lab, &config), [], "2 FINs draw 4 of 5 tokens");
    lab.inject(&[fin(2002)]);
    std::thread::sleep(Duration::from_millis(200));
    let held: Vec<String> = holds(&lab, &config)
        .iter()
        .map(|b| b.net.to_string())
        .collect();
    assert_eq!(held, [format!("{}/32", NetnsPair::B4_SECOND)]);
}

/// The ports scanners probe first draw once more: two closed privileged ones hold a source
/// (23 and 25); a Windows client's own tries (445 and 139, left out of the set) draw as other
/// privileged ports do and do not hold; over IPv6, two unprivileged ones (3389, 8888: two
/// draws each) and one other port pass, and a sixth token held.
#[test]
#[ignore = "needs root + netns: cargo test --test first_line -- --ignored"]
fn ports_scanners_probe_first_weigh_once_more() {
    require_root();
    let (lab, config, _server) = lab(Duration::from_secs(5));
    let listed = String::from_utf8_lossy(
        &lab.exec(
            &lab.a,
            &["nft", "list", "set", "inet", "scansentry", "scanners_first"],
        )
        .stdout,
    )
    .into_owned();
    for port in ["23", "3389", "8888"] {
        assert!(listed.contains(&format!("tcp . {port}")), "{listed}");
    }
    assert!(!listed.contains("tcp . 445"), "{listed}");
    let victim: IpAddr = NetnsPair::A4.parse().unwrap();
    let held = || -> Vec<String> {
        holds(&lab, &config)
            .iter()
            .map(|b| b.net.addr().to_string())
            .collect()
    };
    let windows: IpAddr = NetnsPair::B4_SECOND.parse().unwrap();
    let syn = |from, port| support::frames::tcp_frame(from, victim, 40003, port, 0x02);
    lab.inject(&[syn(windows, 445), syn(windows, 139)]);
    std::thread::sleep(Duration::from_millis(200));
    assert!(held().is_empty(), "445 and 139 draw 4 of 5 tokens");

    let scanner: IpAddr = NetnsPair::B4.parse().unwrap();
    lab.inject(&[syn(scanner, 23)]);
    std::thread::sleep(Duration::from_millis(200));
    assert!(held().is_empty(), "23 draws 3 of 5 tokens");
    lab.inject(&[syn(scanner, 25)]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(held(), [NetnsPair::B4]);

    let victim6: IpAddr = NetnsPair::A6.parse().unwrap();
    let scanner6: IpAddr = NetnsPair::B6.parse().unwrap();
    let syn6 = |port| support::frames::tcp_frame(scanner6, victim6, 40004, port, 0x02);
    lab.inject(&[syn6(3389), syn6(8888), syn6(2000)]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(held(), [NetnsPair::B4], "3389, 8888, 2000 draw 5 tokens");
    lab.inject(&[syn6(2001)]);
    std::thread::sleep(Duration::from_millis(200));
    let mut now = held();
    now.sort();
    assert_eq!(now, [NetnsPair::B4, NetnsPair::B6]);
}

/// Red team: a link-local source (fe80::/10, 169.254.0.0/16 with a default route) passed every
/// skip, the fib check among them, and 3 SYNs held it, though the daemon never counts such a
/// source (a neighbour can claim any). Neither is counted now.
#[test]
#[ignore = "needs root + netns: cargo test --test first_line -- --ignored"]
fn link_local_sources_are_never_counted() {
    require_root();
    let (lab, config, _server) = lab(Duration::from_secs(5));
    let out = lab.exec(
        &lab.a,
        &["ip", "route", "add", "default", "via", NetnsPair::B4],
    );
    assert!(out.status.success(), "{out:?}");
    let mut frames = Vec::new();
    for (src, dst) in [("fe80::7", NetnsPair::A6), ("169.254.7.7", NetnsPair::A4)] {
        let (src, dst): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
        frames
            .extend((900..906).map(|port| support::frames::tcp_frame(src, dst, 40000, port, 0x02)));
    }
    lab.inject(&frames);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(holds(&lab, &config), []);
    assert_eq!(
        elements(&lab, "pairs4") + elements(&lab, "pairs6"),
        0,
        "not counted"
    );
    // A global source on the same link still is.
    let first: IpAddr = NetnsPair::B4.parse().unwrap();
    let victim: IpAddr = NetnsPair::A4.parse().unwrap();
    let frames: Vec<Vec<u8>> = (900..903)
        .map(|port| support::frames::tcp_frame(first, victim, 40000, port, 0x02))
        .collect();
    lab.inject(&frames);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(holds(&lab, &config).len(), 1);
}

/// Issue 27's forged flood, or part of it: SYNs to 3 privileged closed ports from each of the
/// sources numbered `sources`. IPv6 sources each in a /64 of their own (`base`, then the
/// source's number in the fourth group and beyond); for `v4`, sources 0 to 255 are
/// 203.0.113.0/24 instead. Sent as fast as libpcap sends them, the frames made as they go; the
/// number of frames that reached the victim's interface (the lab's own traffic included).
fn forged_flood(lab: &NetnsPair, base: u128, v4: bool, sources: std::ops::Range<usize>) -> u64 {
    let victim4: IpAddr = NetnsPair::A4.parse().unwrap();
    let victim6: IpAddr = NetnsPair::A6.parse().unwrap();
    let before = received(lab);
    lab.inject_each(sources.len() * 3, |i| {
        let (n, port) = (sources.start + i / 3, u16::try_from(1 + i % 3).unwrap());
        let (from, to) = if v4 && n < 256 {
            let from = std::net::Ipv4Addr::new(203, 0, 113, u8::try_from(n).unwrap());
            (IpAddr::V4(from), victim4)
        } else {
            let n = u128::try_from(n).unwrap();
            (IpAddr::V6((base | n << 64 | 1).into()), victim6)
        };
        support::frames::tcp_frame(from, to, 40000, port, 0x02)
    });
    let reached = received(lab) - before;
    let sent = u64::try_from(sources.len() * 3).unwrap();
    assert!(
        reached >= sent,
        "{reached} frames of {sent} reached the victim"
    );
    reached
}

/// The frames the victim's end of the veth received.
fn received(lab: &NetnsPair) -> u64 {
    let path = format!("/sys/class/net/{}/statistics/rx_packets", lab.veth_a());
    let out = lab.exec(&lab.a, &["cat", &path]);
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// The first line's dynamic sets: for each, its name, how many elements it has, and whether
/// each ends within the set's timeout (nft lists the time left, `expires`, of each). Read a
/// second after the last packet: the kernel grows a set's hash table after the insertions that
/// fill it, and a listing made meanwhile can miss elements.
fn dynamic_sets(lab: &NetnsPair) -> Vec<(&'static str, usize, bool)> {
    std::thread::sleep(Duration::from_secs(1));
    ["pairs4", "pairs6", "score4", "score6", "hold4", "hold6"]
        .into_iter()
        .map(|name| {
            let v: serde_json::Value = serde_json::from_str(&lab.set_text(name)).unwrap();
            let set = v["nftables"]
                .as_array()
                .unwrap()
                .iter()
                .find_map(|o| o.get("set"))
                .unwrap_or_else(|| panic!("set {name}: {v}"));
            let timeout = set["timeout"].as_u64().expect("a dynamic set's timeout");
            let elements = support::netns::set_elements(&v);
            let ending = elements
                .iter()
                .all(|e| e["elem"]["expires"].as_u64().is_some_and(|x| x <= timeout));
            // Distinct values: a dump that meets the set's hash table being resized can list
            // an element twice.
            let distinct: BTreeSet<String> = elements
                .iter()
                .map(|e| e["elem"]["val"].to_string())
                .collect();
            (name, distinct.len(), ending)
        })
        .collect()
}

/// How many elements `name` had in a reading of [`dynamic_sets`].
fn count(sets: &[(&str, usize, bool)], name: &str) -> usize {
    sets.iter().find(|(s, _, _)| *s == name).unwrap().1
}

/// Issue 27's forged flood, sources with no route back: 1,000,002 SYNs from 333,334 sources
/// (256 of 203.0.113.0/24, the rest each in a /64 of 2001:db8:f000::/40), none of which the
/// victim routes anywhere, 3 privileged closed ports each (what holds a source that passes the
/// trust rules). The reverse-path check skips every one: no pair, no score, no hold, no
/// counter moved, and the lab's clients still connect.
#[test]
#[ignore = "needs root + netns: cargo test --test first_line -- --ignored"]
fn a_million_forged_syns_with_no_route_back_are_never_counted() {
    require_root();
    let (lab, config, _server) = lab(Duration::from_secs(5));
    forged_flood(&lab, 0x2001_0db8_f000_u128 << 80, true, 0..333_334);
    for (set, count, _) in dynamic_sets(&lab) {
        assert_eq!(count, 0, "{set} is empty");
    }
    assert_eq!(holds(&lab, &config), [], "nobody held");
    let counters = in_victim(&lab, &config, |fw| fw.first_line_counters());
    assert_eq!(
        counters,
        Some(scansentry::firewall::FirstLineCounters::default()),
        "nothing counted, so no set was full"
    );
    assert!(lab.connects(NetnsPair::B4, 22));
    assert!(lab.connects(NetnsPair::B6, 22));
}

/// Issue 27's forged flood, sources routed back (through the veth, as a default route would):
/// 1,000,002 SYNs from 333,334 IPv6 sources, each in a /64 of 2001:db8:100::/40, 3 privileged
/// closed ports each, holds of 60 s. First the 65,536 sources the score set has room for: the
/// first 4,096 are held and fill the hold set; each of the 61,440 others is counted once in
/// `hold_full` (its third probe dropped, its pair deleted). Then the other 267,798: the pairs
/// set fills, and `score_full` counts each draw that found no room; no set ever holds more than
/// its size (a set only grows until its elements' timeouts, and the last reading is after the
/// whole flood). Every element ends within its set's timeout; nobody but the forged sources is
/// held, and the lab's clients still connect. With `SCALE=full`, the test also waits out the
/// timeouts and sees every set empty again (62 s more).
#[test]
#[ignore = "needs root + netns: cargo test --test first_line -- --ignored"]
fn a_million_forged_syns_routed_back_fill_the_sets_to_their_size_and_no_further() {
    require_root();
    let (lab, config, _server) = lab(Duration::from_secs(60));
    route_forged_range(&lab);
    let base = 0x2001_0db8_0100_u128 << 80;
    let counters = || in_victim(&lab, &config, |fw| fw.first_line_counters()).unwrap();

    #[expect(
        clippy::disallowed_methods,
        reason = "whether the flood outlasted the first holds is a matter of wall-clock time"
    )]
    let flood_began = std::time::Instant::now();
    forged_flood(&lab, base, false, 0..65_536);
    let sets = dynamic_sets(&lab);
    eprintln!("after 65,536 sources: {sets:?}, {:?}", counters());
    assert_eq!(count(&sets, "hold6"), 4_096, "the hold set is full");
    assert_eq!(count(&sets, "score6"), 65_536, "the score set is full");
    assert_eq!(count(&sets, "pairs6"), 4_096 * 3 + 61_440 * 2);
    let first = counters();
    assert_eq!(
        first.hold_full,
        65_536 - 4_096,
        "each source not held, once"
    );
    assert_eq!(first.score_full, 0);

    forged_flood(&lab, base, false, 65_536..333_334);
    let sets = dynamic_sets(&lab);
    let last = counters();
    eprintln!("after 333,334 sources: {sets:?}, {last:?}");
    for (set, size) in [("pairs6", 262_144), ("score6", 65_536), ("hold6", 4_096)] {
        assert!(count(&sets, set) <= size, "{set} within its size");
    }
    assert_eq!(
        count(&sets, "pairs4") + count(&sets, "score4") + count(&sets, "hold4"),
        0
    );
    for (set, _, ending) in &sets {
        assert!(
            ending,
            "every element of {set} ends within its set's timeout"
        );
    }
    // The pairs that still fitted (262,144 - 135,168) were each drawn twice from a full score
    // set; every other probe (unless elements of the first part ended meanwhile) once, for its
    // pair that did not fit.
    let fitted = 262_144 - (4_096 * 3 + 61_440 * 2);
    assert!(last.score_full >= 2 * fitted, "{last:?}");
    eprintln!(
        "score_full {} (with no element ended during the flood: {})",
        last.score_full,
        3 * (333_334 - 65_536) + fitted
    );

    let held = holds(&lab, &config);
    // The first holds end 60 s after the flood began: on a host loaded by other work the
    // flood may outlast them (it takes about 40 s alone).
    assert!(
        !held.is_empty() || flood_began.elapsed() >= Duration::from_secs(60),
        "holds while they last"
    );
    assert!(held.len() <= 4_096);
    let forged: ipnet::IpNet = "2001:db8:100::/40".parse().unwrap();
    assert!(
        held.iter().all(|b| forged.contains(&b.net)),
        "only forged sources are held: {held:?}"
    );
    assert!(lab.connects(NetnsPair::B4, 22));
    assert!(lab.connects(NetnsPair::B6, 22));

    if support::netns::full_scale() {
        // The last elements were made as the flood ended: their 60 s, and the kernel's
        // collection.
        std::thread::sleep(Duration::from_secs(62));
        for (set, count, _) in dynamic_sets(&lab) {
            assert_eq!(count, 0, "{set} is empty again");
        }
        assert_eq!(holds(&lab, &config), []);
    }
}

/// Red team of issue 27: a probe with SYN and FIN together (`nmap --scanflags SYNFIN`), which
/// conntrack finds invalid, was let through uncounted by the rule meant for SYNs with a wrong
/// checksum when that rule looked at SYN and ACK only. Now it asks for a SYN without FIN, RST
/// or ACK: SYN with FIN is counted as the daemon counts it (the model, `src/first_line.rs`,
/// likewise), and the third to a closed privileged port holds, as three SYNs would.
#[test]
#[ignore = "needs root + netns: cargo test --test first_line -- --ignored"]
fn red_syn_fin_probes_are_counted_by_the_kernel() {
    require_root();
    let (lab, config, _server) = lab(Duration::from_secs(5));
    let victim: IpAddr = NetnsPair::A4.parse().unwrap();
    let source: IpAddr = NetnsPair::B4.parse().unwrap();
    let syn_fin = |port| support::frames::tcp_frame(source, victim, 40003, port, 0x03);
    lab.inject(&(900..902).map(syn_fin).collect::<Vec<_>>());
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        holds(&lab, &config),
        [],
        "2 SYN|FIN probes draw 4 of 5 tokens"
    );
    assert_eq!(elements(&lab, "pairs4"), 2, "counted");
    lab.inject(&[syn_fin(902)]);
    std::thread::sleep(Duration::from_millis(200));
    let held: Vec<String> = holds(&lab, &config)
        .iter()
        .map(|b| b.net.to_string())
        .collect();
    assert_eq!(held, [format!("{}/32", NetnsPair::B4)]);
}
