//! Issue 28, version scans: real `nmap -sV` captures and ordinary clients replayed (with and
//! without the kernel capture filter), and a live version scan against the daemon in two
//! namespaces with the default config.
//!
//! The captures (`tests/data/README` says how each was made) are of the lab services of
//! `tests/support/lab_services.py`, which answer like an SSH server (a banner), a web server
//! nmap cannot name (so it tries many probes), TLS and DNS.

mod support;

use support::captures::{data, filtered, replay};

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use scansentry::respond::Decision;
use scansentry::wire::Proto;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tcp(ports: &[u16]) -> Vec<(Proto, u16)> {
    ports.iter().map(|&p| (Proto::Tcp, p)).collect()
}

/// `nmap -sV -p 22,80,8080`: the SSH banner names port 22 at the NULL probe, so only the two
/// web ports see probes (GetRequest after the NULL probe's 6 s wait, then HTTPOptions,
/// RTSPRequest, … within milliseconds): one detection, blocked, with nmap's probes named.
#[test]
fn nmap_sv_of_three_open_ports_is_a_version_scan_blocked_with_the_default_config() {
    for capture in [
        data("nmap_sv_3_open.pcap"),
        filtered(&data("nmap_sv_3_open.pcap")),
    ] {
        let (found, summary) = replay(&capture);
        let what = capture.display();
        let (d, decision) = found
            .first()
            .unwrap_or_else(|| panic!("{what}: {summary:?}"));
        assert_eq!(d.addr, ip("198.51.100.2"), "{what}");
        assert_eq!(d.kinds.to_string(), "version", "{what}");
        assert_eq!(d.ports, tcp(&[80, 8080]), "{what}");
        let signature = d.signature.as_ref().expect("a signature");
        assert_eq!(signature.tool, "nmap version detection");
        assert_eq!(signature.probes[0], "GetRequest", "{what}: {signature}");
        assert!(signature.probes.len() >= 2, "{what}: {signature}");
        assert!(
            matches!(decision, Decision::Block { net, ttl, .. }
                if *net == "198.51.100.2/32".parse().unwrap() && *ttl == Duration::from_secs(3600)),
            "{what}: {decision:?}"
        );
        // Once blocked, nothing more is decided for it (the host's table drops it).
        assert_eq!(found.len(), 1, "{what}: {found:#?}");
        // The trap-port detector saw no probe: every port was open.
        assert_eq!(summary.counters.probes, 0, "{what}");
        assert!(summary.counters.version_probes >= 3, "{what}");
    }
}

/// The same over IPv6, against SSH, the web server and TLS (443: nmap's SSLSessionReq, then
/// its probes inside TLS, which are not seen).
#[test]
fn nmap_sv_over_ipv6_is_a_version_scan_of_the_address() {
    for capture in [
        data("nmap_sv6_3_open.pcap"),
        filtered(&data("nmap_sv6_3_open.pcap")),
    ] {
        let (found, _) = replay(&capture);
        let what = capture.display();
        let (d, decision) = found.first().unwrap_or_else(|| panic!("{what}"));
        assert_eq!(d.addr, ip("2001:db8:0:1::2"), "{what}");
        let ports: BTreeSet<u16> = d.ports.iter().map(|&(_, p)| p).collect();
        assert!(ports.contains(&80), "{what}: {ports:?}");
        let signature = d.signature.as_ref().expect("a signature");
        assert_eq!(signature.tool, "nmap version detection");
        assert!(
            matches!(decision, Decision::Block { net, .. }
                if *net == "2001:db8:0:1::2/128".parse().unwrap()),
            "one address of the /64 scanned: {decision:?}"
        );
    }
}

/// curl (HTTP/1.0 and 1.1, HTTPS), openssl s_client and python's TLS, dig over TCP and UDP
/// (version.bind CH TXT too), ssh, a minimal `GET / HTTP/1.0` client and six HAProxy-style
/// `OPTIONS / HTTP/1.0` health checks, over IPv4 and IPv6, from one source: no detection.
#[test]
fn ordinary_clients_of_the_same_services_are_no_version_scan() {
    for capture in [
        data("clients_http_tls_dns_ssh.pcap"),
        filtered(&data("clients_http_tls_dns_ssh.pcap")),
    ] {
        let (found, summary) = replay(&capture);
        assert_eq!(found, [], "{}", capture.display());
        // The plain probes among them (the health checks, the minimal GET) were recognised,
        // and are not enough: one name each, 1 point each.
        assert!(summary.counters.version_probes >= 2, "{summary:?}");
    }
}

mod live {
    use super::support::netns::{Daemon, NetnsPair, TempDir, require_root, wait_until};
    use super::support::services;
    use std::time::Duration;

    fn text(o: &std::process::Output) -> String {
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// With the default config, ordinary clients of the lab services (from one address) are
    /// not blocked; `nmap -sV` of three open ports (from another) is, and `why` names it.
    #[test]
    #[ignore = "needs root + netns: cargo test --test version_probes -- --ignored"]
    fn nmap_sv_is_blocked_live_and_ordinary_clients_are_not() {
        require_root();
        let lab = NetnsPair::new();
        let dir = TempDir::new("version");
        let _services = services::start(&lab, 90);
        let daemon = Daemon::spawn_for(&lab.a, &dir.0, "", 90);

        services::ordinary_clients(&lab, NetnsPair::B4_SECOND, NetnsPair::A4);
        // The scanner: nmap -sV of the SSH banner and the two web ports.
        let report = lab.nmap(&["-sV", "-p", "22,80,8080", NetnsPair::A4]);
        let report = String::from_utf8_lossy(&report.stdout).into_owned();
        let blocked = wait_until(Duration::from_secs(10), || {
            daemon.out().contains("blocked 198.51.100.2 for")
        });
        assert!(blocked, "{report}\n{}\n{}", daemon.out(), daemon.err());
        assert!(
            !lab.connects(NetnsPair::B4, 80),
            "the scanner still gets in"
        );

        let why = text(&daemon.ctl(&["why", NetnsPair::B4]));
        assert!(why.starts_with("198.51.100.2 is blocked for 59m"), "{why}");
        assert!(why.contains("version"), "{why}");
        // The clients' address was never blocked, nor reported.
        let out = daemon.out();
        assert!(!out.contains(NetnsPair::B4_SECOND), "{out}");
        assert!(lab.connects(NetnsPair::B4_SECOND, 80));
        let status = daemon.json(&["status"]);
        assert_eq!(status["blocks_active"], 1, "{status}");
        let probes = status["evidence"]["version-probe"].as_u64().unwrap_or(0);
        assert!(probes >= 2, "{status}");
    }
}
