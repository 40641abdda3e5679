//! Fleet mode in the namespace lab (root needed; nats-server from Debian):
//! - **propagation**: with 16 and with 32 hosts, the time from web-1's block (its log line,
//!   written once its kernel has the element) to the last host's (each receiver's line, written
//!   once its kernel has the element), p50 and p99 over 200 blocks made on web-1 by hand
//!   (`sentryctl block`, one every 20 ms: the same path to the fleet as a detection's block);
//! - **local blocking with the server up and down**: web-1's capture-to-kernel latency (as
//!   `sentryctl status` reports it) over nmap scans from ten addresses, once with nats-server
//!   running and once with it stopped;
//! - **a spoofed flood at 4 hosts of 16**: 10,000 SYNs a second at each of web-1 … web-4 for
//!   30 s, each from a random IPv6 /64 of 2001:db8::/32 to a random port 1–1024, sent through
//!   libpcap from the scanner's end of the bridge, every host's default IPv6 route via the hub
//!   over that bridge (so the forged sources pass the reverse-path check, as on an uplink that
//!   is the default route: the worst case): each flooded host's rate of probe summaries
//!   sent (and dropped past its cap), the bus's traffic (nats-server's own `/varz` counters),
//!   nats-server's CPU, and the blocks any host made (none of a never-block address).
//!
//! - **local blocking under a member's summary flood** (issue 24): web-1's capture-to-kernel
//!   latency over nmap scans from ten addresses, in one run without and then with a member
//!   (web-3's name) flooding web-1 and web-2 with valid probe summaries of 256 probes as fast as
//!   one client sends them.
//!
//! Run: `cargo bench --bench fleet` (as root; `-- flood` for the spoofed flood alone,
//! `-- summary-flood` for the summary flood alone, `-- propagation` for propagation and local
//! blocking with the server up and down alone, `-- propagation 16` at 16 hosts only). Results
//! go in BENCHMARKS.md.

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
    if std::env::args().any(|a| a == "summary-flood") {
        for flooded in [false, true] {
            local_latency_under_summary_flood(flooded);
        }
        return;
    }
    if std::env::args().any(|a| a == "propagation") {
        let mut sizes: Vec<usize> = std::env::args().filter_map(|a| a.parse().ok()).collect();
        if sizes.is_empty() {
            sizes = vec![16, 32];
        }
        for hosts in sizes {
            propagation(hosts);
        }
        local_latency(true);
        local_latency(false);
        return;
    }
    let flood_only = std::env::args().any(|a| a == "flood");
    if !flood_only {
        for hosts in [16, 32] {
            propagation(hosts);
        }
        local_latency(true);
        local_latency(false);
        for flooded in [false, true] {
            local_latency_under_summary_flood(flooded);
        }
    }
    spoofed_flood();
}

/// The hub's IPv6 address on the bridge: the hosts' default IPv6 route in the spoofed flood.
const HUB6: &str = "2001:db8::fe";

/// Frames per host per second, hosts flooded, seconds.
const FLOOD_RATE: u64 = 10_000;
const FLOODED: usize = 4;
const FLOOD_SECONDS: u64 = 30;

/// xorshift64*: a fixed, reproducible sequence of sources and ports.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// A SYN from a random /64 of 2001:db8::/32 (never the hosts' 2001:db8::/64) to a random port
/// 1–1024 of host `i`.
fn spoofed_syn(rng: &mut Rng, src_mac: [u8; 6], dst_mac: [u8; 6], i: usize) -> Vec<u8> {
    let (a, b) = (rng.next(), rng.next());
    let site = u32::try_from(a >> 32).expect("32 bits") | 1;
    let source = (0x2001_0db8_u128 << 96) | (u128::from(site) << 64) | u128::from(b);
    let victim: std::net::Ipv6Addr = format!("2001:db8::{i}").parse().expect("an address");
    let dport = 1 + u16::try_from((a >> 16) % 1024).expect("below 1,024");
    let mut tcp = etherparse::TcpHeader::new(40_000, dport, 1, 1024);
    tcp.syn = true;
    let mut frame = Vec::with_capacity(74);
    etherparse::PacketBuilder::ethernet2(src_mac, dst_mac)
        .ipv6(source.to_be_bytes(), victim.octets(), 64)
        .tcp_header(tcp)
        .write(&mut frame, &[])
        .expect("writing to a Vec cannot fail");
    frame
}

/// A status figure of the fleet line: the number before `what` (0 when the line does not say).
fn figure(status: &str, what: &str) -> u64 {
    let line = status_line(status, "fleet");
    let Some(at) = line.find(what) else {
        return 0;
    };
    line[..at]
        .trim_end()
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{what} in {line}"))
}

#[expect(
    clippy::disallowed_methods,
    reason = "a benchmark paces its sender by wall-clock time: it is a shell"
)]
fn spoofed_flood() {
    let mut lab = FleetLab::new(16);
    // The worst case: every host's default IPv6 route leaves over the bridge the forger is on
    // (via the hub), so the forged sources pass the reverse-path check and are told.
    netns::ip(&[
        "-n",
        &lab.hub.0,
        "addr",
        "add",
        &format!("{HUB6}/64"),
        "dev",
        "br0",
        "nodad",
    ]);
    for host in &lab.hosts {
        netns::ip(&[
            "-n", &host.ns.0, "-6", "route", "add", "default", "via", HUB6,
        ]);
    }
    lab.start_all("");
    let all = wait_until(Duration::from_secs(10), || {
        lab.hosts[0].ctl(&["status"]).contains("16 members")
    });
    assert!(all);
    let scanner_mac = FleetLab::mac(&lab.scanner, "eth0");
    let host_macs: Vec<[u8; 6]> = lab.hosts[..FLOODED]
        .iter()
        .map(|h| FleetLab::mac(&h.ns, "eth0"))
        .collect();
    let before_status: Vec<String> = lab.hosts[..FLOODED]
        .iter()
        .map(|h| h.ctl(&["status"]))
        .collect();
    let (varz, cpu) = (lab.varz(), lab.nats_cpu_seconds());
    let (sent, took) = lab.scanner.run(|| {
        let mut out = pcap::Capture::from_device("eth0")
            .and_then(|c| c.buffer_size(1 << 22).open())
            .expect("open the scanner's interface");
        out.filter("ether proto 0x88b5", true).expect("filter");
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let start = std::time::Instant::now();
        let per_tick = FLOOD_RATE / 100;
        let mut sent = 0_u64;
        for tick in 0..FLOOD_SECONDS * 100 {
            for _ in 0..per_tick {
                for (i, mac) in host_macs.iter().enumerate() {
                    let frame = spoofed_syn(&mut rng, scanner_mac, *mac, i + 1);
                    if out.sendpacket(frame).is_ok() {
                        sent += 1;
                    }
                }
            }
            let due = start + Duration::from_millis(10 * (tick + 1));
            if let Some(wait) = due.checked_duration_since(std::time::Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        (sent, start.elapsed())
    });
    // What the hosts had counted goes out within the next batch.
    std::thread::sleep(Duration::from_millis(300));
    let (varz_after, cpu_after) = (lab.varz(), lab.nats_cpu_seconds());
    let seconds = took.as_secs_f64();
    let delta = |key: &str| varz_after[key].as_u64().unwrap_or(0) - varz[key].as_u64().unwrap_or(0);
    println!(
        "spoofed flood: {sent} SYNs in {seconds:.1} s ({:.0}/s) at {FLOODED} of 16 hosts",
        sent as f64 / seconds
    );
    for (k, host) in lab.hosts[..FLOODED].iter().enumerate() {
        let status = host.ctl(&["status"]);
        let told = figure(&status, "probes told") - figure(&before_status[k], "probes told");
        let line = status
            .lines()
            .find(|l| l.starts_with("probes"))
            .unwrap_or_default();
        let fleet = status
            .lines()
            .find(|l| l.starts_with("fleet"))
            .unwrap_or_default();
        println!(
            "  {}: {line}; summaries told {told} ({:.0}/s); {fleet}",
            host.name,
            told as f64 / seconds
        );
    }
    println!(
        "  bus: in {:.0} KiB/s ({:.0} msgs/s), out {:.0} KiB/s ({:.0} msgs/s)",
        delta("in_bytes") as f64 / 1024.0 / seconds,
        delta("in_msgs") as f64 / seconds,
        delta("out_bytes") as f64 / 1024.0 / seconds,
        delta("out_msgs") as f64 / seconds,
    );
    println!(
        "  nats-server CPU: {:.1}% of a core",
        100.0 * (cpu_after - cpu) / seconds
    );
    let mut blocks = 0;
    for host in &lab.hosts {
        let listed = host.ctl(&["list"]);
        for l in listed.lines().filter(|l| l.contains("2001:db8")) {
            if blocks < 10 {
                println!("  {} holds: {l}", host.name);
            }
            blocks += 1;
        }
        for i in 1..=16 {
            assert!(
                !host.holds(&fleet::host_addr(i)),
                "{} blocked a host of the fleet",
                host.name
            );
        }
    }
    println!("  blocks made on any host: {blocks}; no never-block address blocked");
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
    let latency = status_line(&status, "block latency");
    let fleet = status_line(&status, "fleet");
    println!(
        "web-1 with nats-server {}: {latency}; {fleet}",
        if server_up { "running" } else { "stopped" }
    );
}

/// web-1's capture-to-kernel latency over nmap scans from ten addresses, with or without a
/// member (web-3's name) flooding web-1 and web-2 with valid probe summaries meanwhile.
#[expect(
    clippy::disallowed_methods,
    reason = "a benchmark times its scans by wall-clock time: it is a shell"
)]
fn local_latency_under_summary_flood(flooded: bool) {
    let mut lab = FleetLab::new(3);
    lab.start_all("");
    let flood = flooded.then(|| lab.flood_summaries("web-3", &["web-1", "web-2"]));
    if flooded {
        std::thread::sleep(Duration::from_secs(2));
    }
    let start = std::time::Instant::now();
    for k in 0..10 {
        let from = scanner_addr(k);
        lab.scan(&from, 1, "1-100");
        assert!(
            wait_until(Duration::from_secs(5), || lab.hosts[0].holds(&from)),
            "web-1 did not block {from}"
        );
    }
    let seconds = start.elapsed().as_secs_f64();
    let sent = flood.map(fleet::SummaryFlood::stop);
    let status = lab.hosts[0].ctl(&["status"]);
    let latency = status_line(&status, "block latency");
    let line = status_line(&status, "fleet");
    match sent {
        Some(sent) => println!(
            "web-1 under a summary flood ({sent} summaries of 256 probes to web-1 and web-2 in \
             {seconds:.1} s of scans): {latency}; {line}"
        ),
        None => {
            println!("web-1 without a summary flood ({seconds:.1} s of scans): {latency}; {line}")
        }
    }
}

/// The value of `sentryctl status`'s line `key` (what follows the key), or nothing.
fn status_line<'s>(status: &'s str, key: &str) -> &'s str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_default()
        .trim()
}
