//! What each kind of real nmap scan learns of the victim, with and without `sentryd` on its
//! default configuration, in the namespace lab (root needed): the ports a reply came back from
//! (open, closed or unfiltered to nmap), of ports 1-200 (1-100 for UDP), and whether the
//! scanner was blocked. Five TCP ports are open (22, 80, 443, 3306, 8080); the victim's ICMP
//! rate limit is off, so that a UDP scan learns all it can.
//!
//! nmap is paced (`--scan-delay 5ms`, one probe at a time): what it learns is then what the
//! detector lets through before its block, not how much of nmap's first burst left before the
//! block could land (on a veth, `-T4` sends hundreds of probes within a millisecond, so that
//! race decides between about ten and about eight hundred; see the block latency benchmark).
//!
//! Run: `cargo bench --bench scan_kinds` (as root; `SCAN_KINDS=-sN,-sX` for some only). Results
//! go in BENCHMARKS.md; run it on two builds to compare them (the file and
//! `tests/support/nmap.rs` copied into the other tree).

#[path = "../tests/support/netns.rs"]
#[allow(dead_code, reason = "the benchmark uses part of the test lab")]
mod netns;

#[path = "../tests/support/nmap.rs"]
#[allow(dead_code, reason = "the benchmark uses part of the helpers")]
mod nmap_report;

use netns::{Daemon, NetnsPair, TempDir, require_root};

const OPEN: [u16; 5] = [22, 80, 443, 3306, 8080];

/// (label, nmap's arguments before the target, IPv6)
const KINDS: [(&str, &[&str], bool); 10] = [
    ("-sS", &["-sS", "-p", "1-200"], false),
    ("-sT", &["-sT", "-p", "1-200"], false),
    ("-sF", &["-sF", "-p", "1-200"], false),
    ("-sN", &["-sN", "-p", "1-200"], false),
    ("-sX", &["-sX", "-p", "1-200"], false),
    ("-sM", &["-sM", "-p", "1-200"], false),
    ("-sA", &["-sA", "-p", "1-200"], false),
    ("-sW", &["-sW", "-p", "1-200"], false),
    ("-sU", &["-sU", "-p", "1-100"], false),
    ("-6 -sS", &["-6", "-sS", "-p", "1-200"], true),
];

/// One scan from the scanner's namespace (the lab's nmap: `-n -Pn -T4 --max-retries 1`),
/// paced; nmap's report.
fn scan(lab: &NetnsPair, args: &[&str], v6: bool) -> String {
    let mut full = vec![
        "--scan-delay",
        "5ms",
        // One probe at a time (what --scan-delay makes of nmap): a probe the block drops waits
        // for its timeout, which on a veth need not be nmap's half a second.
        "--initial-rtt-timeout",
        "20ms",
        "--max-rtt-timeout",
        "20ms",
    ];
    full.extend_from_slice(args);
    full.push(if v6 { NetnsPair::A6 } else { NetnsPair::A4 });
    String::from_utf8_lossy(&lab.nmap(&full).stdout).into_owned()
}

/// A fresh lab with the open ports and no ICMP rate limit.
fn lab() -> (NetnsPair, netns::KillOnDrop) {
    let lab = NetnsPair::new();
    for key in ["net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0"] {
        let out = lab.exec(&lab.a, &["sysctl", "-qw", key]);
        assert!(out.status.success(), "{key}");
    }
    let server = lab.listen(&OPEN, 900);
    (lab, server)
}

/// Rounds of each scan with `sentryd`, a fresh lab each.
const ROUNDS: usize = 3;

fn main() {
    require_root();
    println!(
        "| scan | ports answered without sentryd | with sentryd: median (each round) | blocked |"
    );
    println!("|---|---|---|---|");
    // `SCAN_KINDS=-sN,-sX` runs only those.
    let only = std::env::var("SCAN_KINDS").unwrap_or_default();
    for (label, args, v6) in KINDS {
        if !only.is_empty() && !only.split(',').any(|k| k == label) {
            continue;
        }
        let without = {
            let (lab, _server) = lab();
            nmap_report::answered(&scan(&lab, args, v6))
        };
        let mut with = Vec::new();
        let mut blocked = 0;
        for _ in 0..ROUNDS {
            let (lab, _server) = lab();
            let dir = TempDir::new("kinds");
            let daemon = Daemon::spawn_for(&lab.a, &dir.0, "", 900);
            with.push(nmap_report::answered(&scan(&lab, args, v6)));
            // The scanner, or (IPv6, before issue 14) its /64.
            let blocked_line = if v6 {
                "blocked 2001:db8:0:1::".to_string()
            } else {
                format!("blocked {} for", NetnsPair::B4)
            };
            if netns::wait_until(std::time::Duration::from_secs(5), || {
                daemon.out().contains(&blocked_line)
            }) {
                blocked += 1;
            }
        }
        let rounds = with
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        with.sort_unstable();
        println!(
            "| `{label}` | {without} | {} ({rounds}) | {blocked} of {ROUNDS} |",
            with[ROUNDS / 2]
        );
    }
}
