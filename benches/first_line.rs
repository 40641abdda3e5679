//! Issue 27's proof: what real, unpaced nmap scans learn of the victim before they are cut, with
//! `sentryd` on its default configuration (the kernel's first line on) and with `[firewall]
//! first-line = false` (the daemon's path alone), rounds alternated in one run, on an idle
//! host and on one whose cores are busy. Root needed: it makes its own namespaces.
//!
//! The victim listens on TCP 22, 80, 443, 3306, 8080 and UDP 53 (as in issue 27's table). Each
//! round is a fresh lab and a fresh daemon. For each scan: the ports nmap got an answer from
//! (open, closed or unfiltered; for UDP, closed means an ICMP port unreachable came back) and
//! the open ports it saw. nmap runs as issue 27's table ran it: `-n -Pn -T4 --min-rate 500
//! --max-retries 1` (the full-range scan at `--min-rate 5000`, so that five rounds fit in
//! minutes: a scanner cut off waits for every probe's timeout).
//!
//! Run: `cargo bench --bench first_line` (as root). `FIRST_LINE_ROUNDS=5` (the default),
//! `FIRST_LINE_SCANS=-sS,-6` for some scans only (labels below), `FIRST_LINE_LOAD=idle,busy`
//! (both by default; busy = two processes spinning, one per core, for the whole scan).
#![expect(
    clippy::disallowed_methods,
    reason = "a benchmark measures wall-clock time: it is a shell"
)]

#[path = "../tests/support/netns.rs"]
#[allow(dead_code, reason = "the benchmark uses part of the test lab")]
mod netns;

#[path = "../tests/support/nmap.rs"]
#[allow(dead_code, reason = "the benchmark uses part of the helpers")]
mod nmap_report;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use netns::{Daemon, KillOnDrop, NetnsPair, TempDir, require_root};

const OPEN: [u16; 5] = [22, 80, 443, 3306, 8080];

/// (label, nmap's arguments before the target, IPv6)
const SCANS: [(&str, &[&str], bool); 6] = [
    ("-sS", &["-sS", "--min-rate", "500"], false),
    ("-sS -p-", &["-sS", "-p-", "--min-rate", "5000"], false),
    ("-sT", &["-sT", "--min-rate", "500"], false),
    ("-sU", &["-sU", "-p", "1-1024", "--min-rate", "500"], false),
    (
        "-sS -T2",
        &["-sS", "-T2", "--max-retries", "0", "-p", "1-30,80,443,8080"],
        false,
    ),
    ("-6", &["-6", "-sS", "--min-rate", "500"], true),
];

/// One scan from the scanner's namespace; nmap's report and how long it took.
fn scan(lab: &NetnsPair, args: &[&str], v6: bool) -> (String, Duration) {
    let mut full = vec!["timeout", "400", "nmap", "-n", "-Pn", "-T4"];
    if !args.contains(&"--max-retries") {
        full.extend(["--max-retries", "1"]);
    }
    full.extend_from_slice(args);
    full.push(if v6 { NetnsPair::A6 } else { NetnsPair::A4 });
    let started = Instant::now();
    let out = lab.exec(&lab.b, &full);
    assert!(
        out.status.success(),
        "nmap {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        started.elapsed(),
    )
}

/// A fresh lab: the TCP listeners, a UDP socket on 53, no ICMP rate limit (a UDP scan learns
/// all the victim says).
fn lab() -> (NetnsPair, KillOnDrop, KillOnDrop) {
    let lab = NetnsPair::new();
    for key in ["net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0"] {
        let out = lab.exec(&lab.a, &["sysctl", "-qw", key]);
        assert!(out.status.success(), "{key}");
    }
    let tcp = lab.listen(&OPEN, 900);
    let udp = Command::new("ip")
        .args(["netns", "exec", &lab.a, "timeout", "900", "python3", "-c"])
        .arg(
            "import socket, time\n\
             s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n\
             s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)\n\
             s.bind(('::', 53))\n\
             time.sleep(900)\n",
        )
        .spawn()
        .expect("python3");
    (lab, tcp, KillOnDrop(udp))
}

/// Two processes that spin, one per core, until dropped.
fn busy() -> Vec<KillOnDrop> {
    (0..2)
        .map(|_| {
            let child: Child = Command::new("timeout")
                .args(["900", "sh", "-c", "while :; do :; done"])
                .spawn()
                .expect("sh");
            KillOnDrop(child)
        })
        .collect()
}

/// What one round learned.
struct Round {
    answered: usize,
    open: usize,
    took: Duration,
}

fn round(args: &[&str], v6: bool, first_line: bool, load: bool) -> Round {
    let (lab, _tcp, _udp) = lab();
    let dir = TempDir::new("first-line");
    let config = if first_line {
        ""
    } else {
        "[firewall]\nfirst-line = false\n"
    };
    let _daemon = Daemon::spawn_for(&lab.a, &dir.0, config, 900);
    let _spin = if load { busy() } else { Vec::new() };
    let (report, took) = scan(&lab, args, v6);
    Round {
        answered: nmap_report::answered(&report),
        open: nmap_report::count(&report, "open"),
        took,
    }
}

fn median(mut values: Vec<usize>) -> usize {
    values.sort_unstable();
    values[values.len() / 2]
}

fn main() {
    require_root();
    let rounds: usize = std::env::var("FIRST_LINE_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let only = std::env::var("FIRST_LINE_SCANS").unwrap_or_default();
    let loads = std::env::var("FIRST_LINE_LOAD").unwrap_or_else(|_| "idle,busy".into());
    println!(
        "| host | scan | first line on: answered, median (rounds) | open seen | first line off: \
         answered | open seen |"
    );
    println!("|---|---|---|---|---|---|");
    for load in ["idle", "busy"] {
        if !loads.split(',').any(|l| l == load) {
            continue;
        }
        for (label, args, v6) in SCANS {
            if !only.is_empty() && !only.split(',').any(|k| k == label) {
                continue;
            }
            let (mut on, mut off) = (Vec::new(), Vec::new());
            // Alternated, so that whatever the host does meanwhile falls on both alike.
            for _ in 0..rounds {
                on.push(round(args, v6, true, load == "busy"));
                off.push(round(args, v6, false, load == "busy"));
            }
            let cell = |rs: &[Round], f: fn(&Round) -> usize| {
                let each: Vec<String> = rs.iter().map(|r| f(r).to_string()).collect();
                format!(
                    "{} ({})",
                    median(rs.iter().map(f).collect()),
                    each.join(", ")
                )
            };
            println!(
                "| {load} | `{label}` | {} | {} | {} | {} |",
                cell(&on, |r| r.answered),
                cell(&on, |r| r.open),
                cell(&off, |r| r.answered),
                cell(&off, |r| r.open),
            );
            eprintln!(
                "{load} {label}: scans took {:?} (on) and {:?} (off)",
                on.iter().map(|r| r.took.as_secs()).collect::<Vec<_>>(),
                off.iter().map(|r| r.took.as_secs()).collect::<Vec<_>>(),
            );
        }
    }
}
