//! Issue 28, decoys: a real `nmap -sS -D 198.51.100.77,198.51.100.78,ME` capture replayed
//! (`tests/data/README` says how it was made): the real scanner is blocked for the full
//! duration, the decoys (which do not exist, so never answer the host's SYN+ACKs) are named
//! as likely decoys and held for a minute only; and captures of ordinary clients name no decoy.

mod support;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use scansentry::config::Config;
use scansentry::detect::decoy::Verdict;
use scansentry::replay::{self, Found, ReplayOptions};
use scansentry::respond::{DECOY_HOLD, Decision};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The blocks (address, duration) and the decoy verdicts (with their hold) of a replay.
#[allow(clippy::type_complexity)]
fn replay(capture: &Path) -> (Vec<(IpAddr, Duration)>, Vec<(Verdict, Option<Duration>)>) {
    let (mut blocks, mut decoys) = (Vec::new(), Vec::new());
    replay::run_all(
        &ReplayOptions {
            capture: capture.to_path_buf(),
            config: Config::default(),
            locals: Vec::new(),
            disable_local_check: false,
        },
        |found| match found {
            Found::Decided(d, Decision::Block { ttl, .. }) => blocks.push((d.addr, *ttl)),
            Found::Decoy(v, ttl) => decoys.push((*v, ttl)),
            Found::Decided(..) | Found::Held(_) => {}
        },
    )
    .unwrap_or_else(|e| panic!("replay of {} failed: {e}", capture.display()));
    (blocks, decoys)
}

#[test]
fn nmap_decoy_scan_blocks_the_scanner_and_holds_the_decoys_short() {
    let capture = data("nmap_syn_decoys_1_100.pcap");
    decoy_scan(&capture);
    // The kernel filter passes what the rule needs: the SYN+ACKs leaving, the bare RSTs coming.
    decoy_scan(&support::captures::filtered(&capture));
}

fn decoy_scan(capture: &Path) {
    let (blocks, decoys) = replay(capture);
    let full = Config::default().respond.block_for;
    assert!(full > DECOY_HOLD);
    let mut blocked: Vec<_> = blocks.iter().map(|b| b.0).collect();
    blocked.sort();
    assert_eq!(
        blocked,
        vec![ip("198.51.100.2"), ip("198.51.100.77"), ip("198.51.100.78")],
        "every source of the scan crosses the threshold alike"
    );
    assert!(blocks.iter().all(|b| b.1 == full), "{blocks:?}");
    let mut named: Vec<_> = decoys.iter().map(|(v, _)| v.decoy).collect();
    named.sort();
    assert_eq!(named, vec![ip("198.51.100.77"), ip("198.51.100.78")]);
    for (v, ttl) in &decoys {
        assert_eq!(v.answered_by, ip("198.51.100.2"), "{v:?}");
        assert_eq!(
            v.unanswered, 2,
            "one SYN+ACK from each open port (22, 80): {v:?}"
        );
        assert_eq!(*ttl, Some(DECOY_HOLD), "{v:?}");
        assert_eq!(
            v.to_string(),
            "likely decoy: no answer to 2 SYN+ACKs while 198.51.100.2 answered"
        );
    }
}

#[test]
fn ordinary_clients_and_plain_scans_name_no_decoy() {
    for capture in [
        "clients_http_tls_dns_ssh.pcap",
        "linux_clients.pcap",
        "nmap_sv_3_open.pcap",
        "nmap_sS_sV_O.pcap",
        "nmap_syn_top1000.pcap",
        "nmap_os_one_open.pcap",
    ] {
        let (_, decoys) = replay(&data(capture));
        assert!(decoys.is_empty(), "{capture}: {decoys:?}");
    }
}

mod live {
    use super::support::netns::{
        Daemon, NetnsPair, TempDir, ip, require_root, set_elements, wait_until,
    };
    use std::time::Duration;

    fn text(o: &std::process::Output) -> String {
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// With the default config: `nmap -D` of the two open ports (SYN+ACKs to every source;
    /// the scanner's kernel RSTs its own, the decoys, which do not exist, answer nothing),
    /// then of ports 1-100. The scanner is blocked for the hour; each decoy, named as one,
    /// for a minute. (The kernel's first line holds every source after two trap ports: the
    /// open ports are told apart only when they are probed before.)
    #[test]
    #[ignore = "needs root + netns: cargo test --test decoys -- --ignored"]
    fn nmap_decoys_are_held_a_minute_and_the_scanner_an_hour() {
        require_root();
        let lab = NetnsPair::new();
        let dir = TempDir::new("decoys");
        let _listening = lab.listen(&[22, 80], 60);
        // The SYN+ACKs to the decoys leave (to the scanner's MAC), whose kernel drops them.
        let (_, mac) = lab.macs();
        let mac = mac.map(|b| format!("{b:02x}")).join(":");
        for decoy in ["198.51.100.77", "198.51.100.78"] {
            ip(&[
                "-n",
                &lab.a,
                "neigh",
                "replace",
                decoy,
                "lladdr",
                &mac,
                "dev",
                &lab.veth_a(),
                "nud",
                "permanent",
            ]);
        }
        let daemon = Daemon::spawn_for(&lab.a, &dir.0, "", 60);
        let decoys = "198.51.100.77,198.51.100.78,ME";
        let scan = lab.nmap(&["-sS", "-D", decoys, "-p", "22,80", NetnsPair::A4]);
        let named = wait_until(Duration::from_secs(10), || {
            let out = daemon.out();
            out.contains("198.51.100.77: likely decoy")
                && out.contains("198.51.100.78: likely decoy")
        });
        assert!(
            named,
            "{}\n{}\nnmap: {}",
            daemon.out(),
            daemon.err(),
            text(&scan)
        );
        lab.nmap(&["-sS", "-D", decoys, "-p", "1-100", NetnsPair::A4]);
        let held = wait_until(Duration::from_secs(10), || {
            let out = daemon.out();
            out.contains("blocked 198.51.100.2 for")
                && out.matches("; blocked for 1m only").count() == 2
        });
        assert!(held, "{}\n{}", daemon.out(), daemon.err());

        // In the kernel: the decoys' elements put back with a minute's timeout.
        let listing: serde_json::Value = serde_json::from_str(&lab.set_text("blocked4")).unwrap();
        let timeout = |addr: &str| {
            set_elements(&listing)
                .iter()
                .find(|e| e["elem"]["val"] == addr)
                .and_then(|e| e["elem"]["timeout"].as_u64())
                .unwrap_or_else(|| panic!("{addr} in {listing}"))
        };
        assert_eq!(timeout(NetnsPair::B4), 3600, "{listing}");
        assert_eq!(timeout("198.51.100.77"), 60, "{listing}");
        assert_eq!(timeout("198.51.100.78"), 60, "{listing}");
        let status = daemon.json(&["status"]);
        let verdicts = status["evidence"]["decoy-verdict"].as_u64().unwrap_or(0);
        assert!(verdicts >= 2, "{status}");

        let why = text(&daemon.ctl(&["why", NetnsPair::B4]));
        assert!(why.starts_with("198.51.100.2 is blocked for 59m"), "{why}");
        assert!(!why.contains("decoy"), "{why}");
        for decoy in ["198.51.100.77", "198.51.100.78"] {
            let why = text(&daemon.ctl(&["why", decoy]));
            assert!(why.starts_with(&format!("{decoy} is blocked for")), "{why}");
            assert!(!why.contains("for 59m"), "{why}");
            assert!(
                why.contains("likely decoy: no answer to 2 SYN+ACKs while 198.51.100.2 answered"),
                "{why}"
            );
        }
    }
}
