//! How fast a real scan is answered, in the namespace lab (root needed):
//! - the time from the capture of the probe that makes a detection to the kernel's
//!   acknowledgement of the block, p50 and p99 over many `nmap -sS -T4` scans, each from a new
//!   address (ports 1-200; as reported by `sentryctl status`);
//! - how many replies reach the scanner after that probe (nmap's count of closed ports, less
//!   the seven that make the detection);
//! - how many of the victim's five open ports a full `nmap -sS -p- -T4` still reports, with and
//!   without the daemon.
//!
//! With `FORGED_FLOOD=1`, the scans run during a flood of forged detections: 400 frames a
//! second sent with libpcap from the scanner's end of the link, each three NULL probes from a
//! fresh source (an IPv4 address of 203.0.113.0/24 or an IPv6 /64 of 2001:db8:ff00::/40, which
//! the victim has no route back to): every one a detection, a route lookup and a refusal, none
//! a block, so that the latencies `status` reports are the scanners' alone.
//!
//! Run: `cargo bench --bench block_latency` (as root). Results go in BENCHMARKS.md.

#[path = "../tests/support/netns.rs"]
#[allow(dead_code, reason = "the benchmark uses part of the test lab")]
mod netns;

#[path = "../tests/support/frames.rs"]
#[allow(dead_code, reason = "the benchmark uses part of the helpers")]
mod frames;

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

/// Forged detections, 400 frames a second, until `stop`.
fn forged_flood(lab: &NetnsPair, stop: &std::sync::atomic::AtomicBool) {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let victim4: IpAddr = NetnsPair::A4.parse().unwrap();
    let victim6: IpAddr = NetnsPair::A6.parse().unwrap();
    let mut i: u32 = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let mut chunk = Vec::with_capacity(81);
        while chunk.len() < 80 {
            i = i.wrapping_add(1);
            let (source, victim) = if i.is_multiple_of(2) {
                let v4 = Ipv4Addr::new(203, 0, 113, u8::try_from(1 + i / 2 % 250).unwrap());
                (IpAddr::V4(v4), victim4)
            } else {
                let net = (0x2001_0db8_ff00_u128 << 80) | (u128::from(i) << 64);
                (IpAddr::V6(Ipv6Addr::from(net | 9)), victim6)
            };
            for port in [21, 22, 23] {
                chunk.push(frames::tcp_frame(source, victim, 40_000, port, 0));
            }
        }
        lab.inject(&chunk);
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The scans, each from a new address, then the full scan: the replies after each trigger,
/// and the open ports the full scan found.
fn scans(lab: &NetnsPair) -> (Vec<usize>, usize) {
    let mut replies_after = Vec::new();
    for i in 0..SCANS {
        let from = format!("198.51.100.{}", 10 + u16::from(i));
        let report = nmap(
            lab,
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
    let full = full_scan(lab, &full_from);
    let open_with = count(&full, "open");

    (replies_after, open_with)
}

fn main() {
    require_root();
    let flood = std::env::var_os("FORGED_FLOOD").is_some();
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
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (replies_after, open_with) = std::thread::scope(|s| {
        if flood {
            s.spawn(|| forged_flood(&lab, &stop));
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
        let found = scans(&lab);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        found
    });
    let mut replies_after = replies_after;
    let status = daemon.ctl(&["status", "--json"]);
    let s: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status");
    println!("replies after the trigger, scan by scan: {replies_after:?}");
    replies_after.sort_unstable();
    println!(
        "scans: {SCANS} of ports 1-200 (nmap -sS -T4), each from a new address{}",
        if flood {
            ", during a flood of forged detections"
        } else {
            ""
        }
    );
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
