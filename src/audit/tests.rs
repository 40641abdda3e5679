use std::net::IpAddr;

use super::policy::{self, Finding, Lists, Loudness, Policy, Rule};
use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn entry(host: &str, proto: Proto, port: u16, pid: Option<u32>) -> Entry {
    Entry {
        host: ip(host),
        proto,
        port,
        name: None,
        rpc: None,
        process: pid.map(|pid| Process {
            pid,
            exe: Some("/usr/sbin/daemon".into()),
            user: "root".into(),
        }),
    }
}

fn local(entries: Vec<Entry>) -> Snapshot {
    Snapshot::new(
        Timestamp::from_micros(1),
        Source::Local,
        Vec::new(),
        entries,
    )
}

fn rules(list: &[&str]) -> Vec<Rule> {
    list.iter().map(|r| r.parse().unwrap()).collect()
}

#[test]
fn rules_parse_ports_and_rpc_names_and_refuse_the_rest() {
    assert_eq!(rules(&["22/tcp"])[0].to_string(), "22/tcp");
    assert_eq!(rules(&["nfs/udp"])[0].to_string(), "nfs/udp");
    for (bad, why) in [
        ("22", "write it as port/proto or rpcname/proto"),
        ("22/sctp", "\"sctp\" is not tcp or udp"),
        ("70000/tcp", "70000 is not a port"),
        ("a b/tcp", "is not a port or an RPC program name"),
    ] {
        let err = bad.parse::<Rule>().unwrap_err();
        assert!(err.contains(why), "{bad}: {err}");
    }
}

#[test]
fn new_required_optional_ignore_and_skip() {
    let policy = Policy {
        all: Lists {
            required: rules(&["22/tcp", "25/tcp"]),
            optional: rules(&["80/tcp", "443/tcp"]),
            ignore: rules(&["53/udp"]),
            skip: rules(&["631/tcp"]),
            expect: Vec::new(),
        },
        per_address: vec![(
            ip("198.51.100.1"),
            Lists {
                required: rules(&["5432/tcp"]),
                ..Lists::default()
            },
        )],
        ..Policy::default()
    };
    let seen = vec![
        entry("0.0.0.0", Proto::Tcp, 22, Some(10)),
        entry("127.0.0.53", Proto::Udp, 53, Some(11)),
        entry("0.0.0.0", Proto::Tcp, 8080, Some(12)),
        entry("127.0.0.1", Proto::Tcp, 631, Some(13)),
        entry("198.51.100.2", Proto::Tcp, 5432, Some(14)),
    ];
    let kept: Vec<Entry> = seen.into_iter().filter(|e| policy.looks_at(e)).collect();
    // 631 is skipped: not even looked at.
    assert_eq!(kept.len(), 4);
    let lines: Vec<String> = policy
        .check(&local(kept), None, &local(Vec::new()))
        .iter()
        .map(Finding::line)
        .collect();
    assert_eq!(
        lines,
        [
            // 8080 is in no list; 5432 on .2 is required on .1 only.
            "new: 0.0.0.0 8080/tcp (root pid 12 /usr/sbin/daemon)",
            "new: 198.51.100.2 5432/tcp (root pid 14 /usr/sbin/daemon)",
            "missing: 25/tcp is required",
            "missing: 5432/tcp on 198.51.100.1 is required",
        ]
    );
}

#[test]
fn a_wildcard_socket_serves_a_per_address_requirement() {
    let policy = Policy {
        per_address: vec![(
            ip("198.51.100.1"),
            Lists {
                required: rules(&["22/tcp"]),
                ..Lists::default()
            },
        )],
        ..Policy::default()
    };
    let now = local(vec![entry("0.0.0.0", Proto::Tcp, 22, None)]);
    assert_eq!(policy.check(&now, None, &local(Vec::new())), []);
}

#[test]
fn udp_off_and_port_limits() {
    let policy = Policy {
        udp: false,
        ports: 1..=1023,
        ..Policy::default()
    };
    assert!(!policy.looks_at(&entry("0.0.0.0", Proto::Udp, 53, None)));
    assert!(!policy.looks_at(&entry("0.0.0.0", Proto::Tcp, 8080, None)));
    assert!(policy.looks_at(&entry("0.0.0.0", Proto::Tcp, 22, None)));
}

#[test]
fn a_restart_and_a_moved_rpc_program_are_found() {
    let policy = Policy {
        all: Lists {
            optional: rules(&["22/tcp", "nfs/udp", "2049/udp", "2050/udp"]),
            ..Lists::default()
        },
        ..Policy::default()
    };
    let mut nfs_before = entry("0.0.0.0", Proto::Udp, 2049, Some(30));
    nfs_before.rpc = Some("nfs".into());
    let mut nfs_now = entry("0.0.0.0", Proto::Udp, 2050, Some(30));
    nfs_now.rpc = Some("nfs".into());
    let before = local(vec![
        entry("0.0.0.0", Proto::Tcp, 22, Some(100)),
        nfs_before,
    ]);
    let now = local(vec![entry("0.0.0.0", Proto::Tcp, 22, Some(200)), nfs_now]);
    let lines: Vec<String> = policy
        .check(&now, Some(&before), &before)
        .iter()
        .map(Finding::line)
        .collect();
    assert_eq!(
        lines,
        [
            "restarted: 0.0.0.0 22/tcp (root pid 200 /usr/sbin/daemon) (was pid 100)",
            "moved: 0.0.0.0 2050/udp (root pid 30 /usr/sbin/daemon) (was port 2049)",
        ]
    );
}

#[test]
fn diff_lists_opened_and_closed_per_host() {
    let before = local(vec![
        entry("0.0.0.0", Proto::Tcp, 22, None),
        entry("::", Proto::Tcp, 80, None),
    ]);
    let mut http = entry("::", Proto::Tcp, 443, None);
    http.name = Some("maybe_https".into());
    let now = local(vec![entry("0.0.0.0", Proto::Tcp, 22, None), http]);
    let lines: Vec<String> = diff(&before, &now).iter().map(Change::line).collect();
    assert_eq!(lines, ["- :: 80/tcp", "+ :: 443/tcp maybe_https"]);
    assert_eq!(diff(&now, &now), []);
}

const SCAN_1: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE nmaprun>
<nmaprun scanner="nmap" args="nmap -oX - 198.51.100.0/24" start="1763769107" version="7.93" xmloutputversion="1.05">
<host starttime="1763769107" endtime="1763769108"><status state="up" reason="arp-response" reason_ttl="0"/>
<address addr="198.51.100.1" addrtype="ipv4"/>
<address addr="02:00:00:00:00:01" addrtype="mac"/>
<hostnames>
</hostnames>
<ports><extraports state="closed" count="997">
<extrareasons reason="reset" count="997" proto="tcp" ports="1-21,23-79,81-442,444-65535"/>
</extraports>
<port protocol="tcp" portid="22"><state state="open" reason="syn-ack" reason_ttl="64"/><service name="ssh" method="table" conf="3"/></port>
<port protocol="tcp" portid="80"><state state="open" reason="syn-ack" reason_ttl="64"/><service name="http" method="table" conf="3"/></port>
<port protocol="tcp" portid="443"><state state="filtered" reason="no-response" reason_ttl="0"/><service name="https" method="table" conf="3"/></port>
</ports>
</host>
<host><status state="up" reason="arp-response" reason_ttl="0"/>
<address addr="198.51.100.2" addrtype="ipv4"/>
<ports><port protocol="udp" portid="53"><state state="open" reason="udp-response" reason_ttl="64"/><service name="domain" method="table" conf="3"/></port>
</ports>
</host>
<host><status state="down" reason="no-response" reason_ttl="0"/>
<address addr="198.51.100.3" addrtype="ipv4"/>
</host>
<runstats><finished time="1763769110" timestr="x" elapsed="3.0" exit="success"/><hosts up="2" down="254" total="256"/></runstats>
</nmaprun>
"#;

#[test]
fn an_nmap_scan_becomes_a_snapshot_of_the_hosts_that_were_up() {
    let s = nmap::parse(SCAN_1, "scan.xml").unwrap();
    assert_eq!(s.source, Source::Nmap);
    assert_eq!(s.hosts, [ip("198.51.100.1"), ip("198.51.100.2")]);
    let open: Vec<String> = s
        .entries
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e.host,
                e.port_label(),
                e.name.as_deref().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        open,
        [
            "198.51.100.1 22/tcp ssh",
            "198.51.100.1 80/tcp http",
            "198.51.100.2 53/udp domain"
        ]
    );
    assert_eq!(s.taken.to_string(), "2025-11-21T23:51:47.000000Z");
}

#[test]
fn two_scans_diff_into_hosts_and_ports() {
    let first = nmap::parse(SCAN_1, "a.xml").unwrap();
    let second_text = SCAN_1
        .replace(
            r#"<port protocol="tcp" portid="80"><state state="open""#,
            r#"<port protocol="tcp" portid="80"><state state="closed""#,
        )
        .replace(
            r#"<address addr="198.51.100.2" addrtype="ipv4"/>"#,
            r#"<address addr="198.51.100.9" addrtype="ipv4"/>"#,
        );
    let second = nmap::parse(&second_text, "b.xml").unwrap();
    let lines: Vec<String> = diff(&first, &second).iter().map(Change::line).collect();
    assert_eq!(
        lines,
        [
            "+ 198.51.100.9 (host up)",
            "- 198.51.100.2 (host down)",
            "- 198.51.100.1 80/tcp http",
            "+ 198.51.100.9 53/udp domain",
        ]
    );
}

#[test]
fn malformed_xml_names_the_place() {
    let err = nmap::parse(
        "<nmaprun>\n<host>\n<port protocol=\"tcp\" portid=\"x\">",
        "bad.xml",
    )
    .unwrap_err();
    assert_eq!(err, "bad.xml:3:1: portid=\"x\" is not a port");
    let err = nmap::parse("<nmaprun>\n<host></nmaprun>", "bad.xml").unwrap_err();
    assert!(err.starts_with("bad.xml:2:"), "{err}");
    let err = nmap::parse("<html></html>", "page.xml").unwrap_err();
    assert_eq!(err, "page.xml: not an nmap XML file (no <nmaprun> element)");
}

#[test]
fn the_history_stores_changes_and_finds_them_again() {
    let dir = std::env::temp_dir().join(format!("scansentry-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("audit.sqlite");
    let _ = std::fs::remove_file(&path);
    let mut store = store::Store::open(&path).unwrap();
    assert!(store.newest(Source::Local).unwrap().is_none());
    let mut a = local(vec![entry("0.0.0.0", Proto::Tcp, 22, Some(1))]);
    a.taken = Timestamp::from_micros(1_000_000);
    let id_a = store.save(&a).unwrap();
    // The same services again: not stored twice.
    let mut again = a.clone();
    again.taken = Timestamp::from_micros(2_000_000);
    assert_eq!(store.save(&again).unwrap(), id_a);
    let mut b = local(vec![
        entry("0.0.0.0", Proto::Tcp, 22, Some(1)),
        entry("::1", Proto::Udp, 5353, None),
    ]);
    b.taken = Timestamp::from_micros(3_000_000);
    let id_b = store.save(&b).unwrap();
    assert_ne!(id_a, id_b);
    drop(store);
    let store = store::Store::open(&path).unwrap();
    assert_eq!(store.newest(Source::Local).unwrap(), Some((id_b, b)));
    let (id, found) = store
        .at_or_before(Source::Local, Timestamp::from_micros(2_500_000))
        .unwrap()
        .unwrap();
    assert_eq!((id, found), (id_a, a));
    assert!(store.newest(Source::Nmap).unwrap().is_none());
    std::fs::remove_dir_all(&dir).unwrap();
}

fn lines(findings: &[Finding]) -> Vec<String> {
    findings.iter().map(Finding::line).collect()
}

#[test]
fn the_first_look_is_the_baseline_and_only_what_differs_from_it_is_found() {
    let policy = Policy::default();
    let first = local(vec![
        entry("0.0.0.0", Proto::Tcp, 22, Some(10)),
        entry("127.0.0.53", Proto::Udp, 53, Some(11)),
    ]);
    // The first audit is its own baseline: a stock host is silent.
    assert_eq!(policy.check(&first, None, &first), []);
    // The same again, sshd restarted: a restart, nothing new.
    let same = local(vec![
        entry("0.0.0.0", Proto::Tcp, 22, Some(20)),
        entry("127.0.0.53", Proto::Udp, 53, Some(11)),
    ]);
    assert_eq!(
        lines(&policy.check(&same, Some(&first), &first)),
        ["restarted: 0.0.0.0 22/tcp (root pid 20 /usr/sbin/daemon) (was pid 10)"]
    );
    // A new listener, and one of the baseline gone; the new one on another address than a
    // known port is new too.
    let later = local(vec![
        entry("0.0.0.0", Proto::Tcp, 22, Some(20)),
        entry("0.0.0.0", Proto::Tcp, 8080, Some(30)),
        entry("::", Proto::Tcp, 22, Some(20)),
    ]);
    let found = policy.check(&later, Some(&same), &first);
    assert_eq!(
        lines(&found),
        [
            "new: 0.0.0.0 8080/tcp (root pid 30 /usr/sbin/daemon)",
            "new: :: 22/tcp (root pid 20 /usr/sbin/daemon)",
            "gone: 127.0.0.53 53/udp (root pid 11 /usr/sbin/daemon)",
        ]
    );
    let loudness: Vec<Loudness> = found.iter().map(Finding::loudness).collect();
    assert_eq!(
        loudness,
        [Loudness::Severity, Loudness::Severity, Loudness::Info]
    );
}

#[test]
fn expected_services_are_silent_open_and_gone_when_not() {
    let policy = Policy {
        all: Lists {
            expect: rules(&["22/tcp", "631/tcp", "nfs/udp", "53/udp"]),
            ignore: rules(&["5353/udp"]),
            required: rules(&["25/tcp"]),
            ..Lists::default()
        },
        per_address: vec![(
            ip("198.51.100.1"),
            Lists {
                expect: rules(&["443/tcp"]),
                ..Lists::default()
            },
        )],
        ..Policy::default()
    };
    let mut nfs = entry("0.0.0.0", Proto::Udp, 2049, Some(3));
    nfs.rpc = Some("nfs".into());
    let baseline = local(vec![
        entry("127.0.0.53", Proto::Udp, 53, Some(4)),
        entry("0.0.0.0", Proto::Udp, 5353, Some(5)),
        entry("0.0.0.0", Proto::Tcp, 25, Some(6)),
    ]);
    // Expected and open (nfs by its program, wherever its port), before the first look too: silent.
    let now = local(vec![entry("0.0.0.0", Proto::Tcp, 22, Some(1)), nfs]);
    assert_eq!(
        lines(&policy.check(&now, None, &baseline)),
        [
            // Required and gone: said once, as missing.
            "missing: 25/tcp is required",
            // Ignored and gone: not said; expected and gone from the baseline: said as gone.
            "gone: 127.0.0.53 53/udp (root pid 4 /usr/sbin/daemon)",
            "gone: 631/tcp is expected, and not open",
            "gone: 443/tcp on 198.51.100.1 is expected, and not open",
        ]
    );
}

#[test]
fn the_daemon_says_a_state_once_when_it_begins_and_every_event() {
    let policy = Policy::default();
    let baseline = local(vec![entry("0.0.0.0", Proto::Tcp, 22, Some(1))]);
    let first = local(vec![
        entry("0.0.0.0", Proto::Tcp, 22, Some(1)),
        entry("0.0.0.0", Proto::Tcp, 8080, Some(2)),
    ]);
    let said = policy.check(&baseline, None, &baseline);
    let found = policy.check(&first, Some(&baseline), &baseline);
    assert_eq!(
        lines(&policy::fresh(found, &said)),
        ["new: 0.0.0.0 8080/tcp (root pid 2 /usr/sbin/daemon)"]
    );
    // Five minutes later, the same: nothing fresh, though the state is still found.
    let found = policy.check(&first, Some(&first), &baseline);
    assert_eq!(found.len(), 1);
    let said = policy.check(&first, None, &baseline);
    assert_eq!(policy::fresh(found, &said), []);
    // The new service restarted, sshd gone: the restart (an event) and the gone, not the new again.
    let second = local(vec![entry("0.0.0.0", Proto::Tcp, 8080, Some(3))]);
    let found = policy.check(&second, Some(&first), &baseline);
    assert_eq!(found.len(), 3);
    assert_eq!(
        lines(&policy::fresh(found, &said)),
        [
            "gone: 0.0.0.0 22/tcp (root pid 1 /usr/sbin/daemon)",
            "restarted: 0.0.0.0 8080/tcp (root pid 3 /usr/sbin/daemon) (was pid 2)",
        ]
    );
}

#[test]
fn what_listens_prints_as_an_expect_file_that_reads_back() {
    let mut nfs = entry("0.0.0.0", Proto::Udp, 2049, None);
    nfs.rpc = Some("nfs".into());
    let now = local(vec![
        entry("0.0.0.0", Proto::Tcp, 22, None),
        entry("::", Proto::Tcp, 22, None),
        entry("127.0.0.1", Proto::Tcp, 631, None),
        entry("127.0.0.53", Proto::Udp, 53, None),
        nfs,
    ]);
    let text = policy::expect_file_text(&now);
    assert_eq!(
        text.lines().nth(1),
        Some(r#"expect = ["22/tcp", "631/tcp", "53/udp", "nfs/udp"]"#),
        "{text}"
    );
    let path = std::path::Path::new("/etc/scansentry/audit-expect.toml");
    let read = policy::parse_expect_file(&text, path).unwrap();
    assert_eq!(read, policy::expect_list(&now));
    // Under [audit] in the configuration, the same line is the same list.
    let config =
        crate::config::from_toml(&format!("[audit]\n{text}"), path).expect("valid configuration");
    assert_eq!(config.audit.policy.all.expect, read);
    assert_eq!(
        policy::parse_expect_file("expect = [\"22\"]\n", path).unwrap_err(),
        "/etc/scansentry/audit-expect.toml: expect: \"22\": write it as port/proto or rpcname/proto"
    );
    let other = policy::parse_expect_file("[audit]\nexpect = []\n", path).unwrap_err();
    assert!(
        other.starts_with("/etc/scansentry/audit-expect.toml: "),
        "{other}"
    );
    assert_eq!(
        policy::parse_expect_file("# nothing listened\nexpect = []\n", path),
        Ok(Vec::new())
    );
    let relative = crate::config::from_toml("[audit]\nexpect-file = \"expect.toml\"\n", path)
        .unwrap_err()
        .to_string();
    assert!(
        relative.contains("[audit] expect-file = \"expect.toml\": must be an absolute path"),
        "{relative}"
    );
}

#[test]
fn the_baseline_is_the_first_local_snapshot_and_stays() {
    let dir = std::env::temp_dir().join(format!("scansentry-baseline-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("audit.sqlite");
    let _ = std::fs::remove_file(&path);
    let mut store = store::Store::open(&path).unwrap();
    assert_eq!(store.baseline().unwrap(), None);
    let first = local(vec![entry("0.0.0.0", Proto::Tcp, 22, Some(1))]);
    let id = store.save(&first).unwrap();
    let later = local(vec![entry("0.0.0.0", Proto::Tcp, 8080, Some(2))]);
    store.save(&later).unwrap();
    drop(store);
    let store = store::Store::open(&path).unwrap();
    assert_eq!(store.baseline().unwrap(), Some((id, first)));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_history_of_version_1_takes_its_first_local_snapshot_as_the_baseline() {
    let dir = std::env::temp_dir().join(format!("scansentry-v1-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("audit.sqlite");
    let _ = std::fs::remove_file(&path);
    // What version 1 wrote: its schema, a scan, then two local snapshots.
    let mut store = store::Store::open(&path).unwrap();
    let scan = Snapshot::new(
        Timestamp::from_micros(1),
        Source::Nmap,
        Vec::new(),
        Vec::new(),
    );
    store.save(&scan).unwrap();
    let first = local(vec![entry("0.0.0.0", Proto::Tcp, 22, Some(1))]);
    let id = store.save(&first).unwrap();
    store
        .save(&local(vec![entry("0.0.0.0", Proto::Tcp, 25, Some(1))]))
        .unwrap();
    drop(store);
    let db = rusqlite::Connection::open(&path).unwrap();
    db.execute_batch("DROP TABLE baseline; PRAGMA user_version = 1;")
        .unwrap();
    drop(db);
    let store = store::Store::open(&path).unwrap();
    assert_eq!(store.baseline().unwrap(), Some((id, first)));
    std::fs::remove_dir_all(&dir).unwrap();
}
