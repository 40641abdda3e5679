use std::net::IpAddr;

use super::policy::{Finding, Lists, Policy, Rule};
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
        .check(&local(kept), None)
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
    assert_eq!(policy.check(&now, None), []);
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
        .check(&now, Some(&before))
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
