//! Fleet mode in the namespace lab (root needed; nats-server from Debian):
//! - **propagation**: with 16 and with 32 hosts, the time from web-1's block (its log line,
//!   written once its kernel has the element) to the last host's (each receiver's line, written
//!   once its kernel has the element), p50 and p99 over 200 blocks made on web-1 by hand
//!   (`sentryctl block`, one every 20 ms: the same path to the fleet as a detection's block);
//! - **local blocking with the server up and down**: web-1's capture-to-kernel latency (as
//!   `sentryctl status` reports it) over nmap scans from ten addresses, once with nats-server
//!   running and once with it stopped.
//!
//! Run: `cargo bench --bench fleet` (as root). Results go in BENCHMARKS.md.

#[path = "../tests/support/netns.rs"]
#[allow(dead_code, reason = "the benchmark uses part of the test lab")]
mod netns;

#[path = "../tests/support/fleet.rs"]
#[allow(dead_code, reason = "the benchmark uses part of the fleet lab")]
mod fleet;

use std::collections::HashMap;
use std::time::Duration;

use fleet::{FleetLab, scanner_addr};
use netns::{require_root, wait_until};

const BLOCKS: u16 = 200;

fn main() {
    require_root();
    for hosts in [16, 32] {
        propagation(hosts);
    }
    local_latency(true);
    local_latency(false);
}

/// The microseconds since the epoch of a log line's leading RFC 3339 time.
fn micros(line: &str) -> Option<i64> {
    let stamp: jiff::Timestamp = line.split_whitespace().next()?.parse().ok()?;
    Some(stamp.as_microsecond())
}

/// Every line of `out` that says `needle` about an address of 203.0.113.0/24: address → time.
fn times(out: &str, needle: &str) -> HashMap<String, i64> {
    out.lines()
        .filter(|l| l.contains(needle))
        .filter_map(|l| {
            let addr = l
                .split_whitespace()
                .find(|w| w.starts_with("203.0.113."))?
                .to_string();
            Some((addr, micros(l)?))
        })
        .collect()
}

fn percentile(sorted: &[i64], per_mille: usize) -> f64 {
    sorted[(sorted.len() - 1) * per_mille / 1000] as f64 / 1000.0
}

fn propagation(hosts: usize) {
    let mut lab = FleetLab::new(hosts);
    lab.start_all("max-blocks-per-origin-per-minute = 100000\n");
    let all = wait_until(Duration::from_secs(10), || {
        lab.hosts[0]
            .ctl(&["status"])
            .contains(&format!("{hosts} members"))
    });
    assert!(all, "{}", lab.hosts[0].ctl(&["status"]));
    for k in 1..=BLOCKS {
        let addr = format!("203.0.113.{k}");
        lab.hosts[0].ctl(&["block", &addr, "--for", "10m"]);
        std::thread::sleep(Duration::from_millis(20));
    }
    let last = format!("203.0.113.{BLOCKS}");
    let everywhere = wait_until(Duration::from_secs(30), || {
        lab.hosts.iter().all(|h| h.holds(&last))
    });
    assert!(everywhere, "the last block did not reach every host");
    let made = times(&lab.hosts[0].daemon().out(), "by hand");
    let mut worst: Vec<i64> = Vec::new();
    let mut each: Vec<i64> = Vec::new();
    for (addr, at) in &made {
        let mut latest = i64::MIN;
        for host in &lab.hosts[1..] {
            let taken = times(&host.daemon().out(), "blocked by fleet");
            let t = *taken
                .get(addr)
                .unwrap_or_else(|| panic!("{} did not take {addr}", host.name));
            each.push(t - at);
            latest = latest.max(t);
        }
        worst.push(latest - at);
    }
    worst.sort_unstable();
    each.sort_unstable();
    println!(
        "fleet of {hosts}: {} blocks; to the last host: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; \
         to each host: p50 {:.2} ms, p99 {:.2} ms",
        worst.len(),
        percentile(&worst, 500),
        percentile(&worst, 990),
        percentile(&worst, 1000),
        percentile(&each, 500),
        percentile(&each, 990),
    );
}

fn local_latency(server_up: bool) {
    let mut lab = FleetLab::new(3);
    lab.start_all("");
    if !server_up {
        lab.stop_nats();
        let down = wait_until(Duration::from_secs(10), || {
            lab.hosts[0].ctl(&["status"]).contains("not connected")
        });
        assert!(down);
    }
    for k in 0..10 {
        let from = scanner_addr(k);
        lab.scan(&from, 1, "1-100");
        assert!(
            wait_until(Duration::from_secs(5), || lab.hosts[0].holds(&from)),
            "web-1 did not block {from}"
        );
    }
    let status = lab.hosts[0].ctl(&["status"]);
    let latency = status
        .lines()
        .find(|l| l.starts_with("block latency"))
        .unwrap_or_default()
        .trim_start_matches("block latency")
        .trim();
    let fleet = status
        .lines()
        .find(|l| l.starts_with("fleet"))
        .unwrap_or_default();
    println!(
        "web-1 with nats-server {}: {latency}; {fleet}",
        if server_up { "running" } else { "stopped" }
    );
}
