//! How fast a real scan is answered, in the namespace lab (root needed):
//! - the time from the capture of the probe that makes a detection to the kernel's
//!   acknowledgement of the block, p50 and p99 over many `nmap -sS -T4` scans, each from a new
//!   address (ports 1-200; as reported by `sentryctl status`);
//! - how many replies reach the scanner after that probe (nmap's count of closed ports, less
//!   the seven that make the detection);
//! - how many of the victim's five open ports a full `nmap -sS -p- -T4` still reports, with and
//!   without the daemon.
//!
//! Run: `cargo bench --bench block_latency` (as root). Results go in BENCHMARKS.md.

#[path = "../tests/support/netns.rs"]
#[allow(dead_code, reason = "the benchmark uses part of the test lab")]
mod netns;

#[path = "../tests/support/nmap.rs"]
#[allow(dead_code, reason = "the benchmark uses part of the helpers")]
mod nmap_report;

use netns::{Daemon, NetnsPair, TempDir, require_root};
use nmap_report::count;

const SCANS: u8 = 20;
const OPEN: [u16; 5] = [22, 80, 443, 3306, 8080];

fn nmap(lab: &NetnsPair, args: &[&str]) -> String {
    let mut full = vec!["timeout", "600", "nmap", "-n", "-Pn", "-T4"];
    full.extend_from_slice(args);
    let out = lab.exec(&lab.b, &full);
    assert!(
        out.status.success(),
        "nmap {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The full scan, `-p-`, from `from`. Once blocked, all 65,535 ports go unanswered: no retries
/// and a floor on the rate keep it to a minute or two (nmap -T4 alone would wait far longer).
fn full_scan(lab: &NetnsPair, from: &str) -> String {
    nmap(
        lab,
        &[
            "-sS",
            "-p-",
            "--max-retries",
            "0",
            "--min-rate",
            "5000",
            "-S",
            from,
            "-e",
            &lab.veth_b,
            NetnsPair::A4,
        ],
    )
}

fn main() {
    require_root();
    let lab = NetnsPair::new();
    let dir = TempDir::new("latency");
    let _server = lab.listen(&OPEN, 900);
    // Scanners: 198.51.100.10 onwards, one address per scan.
    for i in 0..=SCANS + 2 {
        let addr = format!("198.51.100.{}/24", 10 + u16::from(i));
        let out = lab.exec(&lab.b, &["ip", "addr", "add", &addr, "dev", &lab.veth_b]);
        assert!(out.status.success());
    }

    // Without the daemon: the full scan finds every open port.
    let baseline_from = format!("198.51.100.{}", 10 + u16::from(SCANS) + 1);
    let baseline = full_scan(&lab, &baseline_from);
    let open_without = count(&baseline, "open");

    let daemon = Daemon::spawn_for(
        &lab.a,
        &dir.0,
        "[respond]\nmax-new-blocks-per-second = 1000\n",
        900,
    );
    let mut replies_after = Vec::new();
    for i in 0..SCANS {
        let from = format!("198.51.100.{}", 10 + u16::from(i));
        let report = nmap(
            &lab,
            &[
                "-sS",
                "-p",
                "1-200",
                "--max-retries",
                "1",
                "-S",
                &from,
                "-e",
                &lab.veth_b,
                netns::NetnsPair::A4,
            ],
        );
        // Seven closed privileged ports make the detection; every other "closed" is a reply
        // that got through after it.
        replies_after.push(count(&report, "closed").saturating_sub(7));
    }
    let full_from = format!("198.51.100.{}", 10 + u16::from(SCANS));
    let full = full_scan(&lab, &full_from);
    let open_with = count(&full, "open");

    let status = daemon.ctl(&["status", "--json"]);
    let s: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status");
    println!("replies after the trigger, scan by scan: {replies_after:?}");
    replies_after.sort_unstable();
    println!("scans: {SCANS} of ports 1-200 (nmap -sS -T4), each from a new address");
    println!(
        "| capture to kernel, p50 | p99 | blocks | replies after the trigger (median, max) | open ports found by -p-, with / without sentryd |"
    );
    println!("|---|---|---|---|---|");
    println!(
        "| {:.2} ms | {:.2} ms | {} | {}, {} | {open_with} of 5 / {open_without} of 5 |",
        s["block_latency_p50_us"].as_u64().unwrap_or(0) as f64 / 1000.0,
        s["block_latency_p99_us"].as_u64().unwrap_or(0) as f64 / 1000.0,
        s["block_latency_samples"],
        replies_after[replies_after.len() / 2],
        replies_after[replies_after.len() - 1],
    );
}
