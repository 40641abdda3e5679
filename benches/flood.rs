//! A spoofed SYN flood against `sentryd`, live in the namespace lab (root needed).
//!
//! The scanner's namespace sends N TCP SYNs, each from a new random source of 2001:db8::/32
//! (the lab's only space large enough for a million sources: its IPv4 ranges hold 512
//! addresses) to a random privileged port of the victim, as fast as one core can send them
//! through libpcap. `sentryd` runs in the victim's namespace on its default configuration, once
//! as shipped (`[capture] immediate = true`) and once with batched capture (`immediate =
//! false`). A fifth of the way into the flood a real `nmap -sS -p 1-200` starts from
//! 198.51.100.3.
//!
//! Measured for each flood size: the sender's rate; the frames that reached the victim's
//! interface and the frames the kernel dropped on the way (veth and backlog counters); the
//! frames `sentryd` captured and libpcap's drop count; the daemon's peak RSS (VmHWM) against
//! its RSS before the flood; the CPU time it used; how many sources it detected and blocked
//! (goal: none of the one-packet spoofed sources); whether the nmap scanner was blocked, how
//! long before the end of the flood (by the daemon's log), and the daemon's capture-to-kernel
//! latency for that block.
//!
//! ```text
//! cargo bench --bench flood                       # floods of 100,000 and 1,000,000 SYNs
//! cargo bench --bench flood -- 1000000 3000000    # any sizes
//! ```
#![expect(
    clippy::disallowed_methods,
    reason = "a benchmark measures wall-clock time: it is a shell"
)]

#[path = "../tests/support/netns.rs"]
#[allow(dead_code, reason = "the benchmark uses part of the test lab")]
mod netns;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use etherparse::{PacketBuilder, TcpHeader};
use netns::{Daemon, NetnsPair, TempDir, require_root, wait_until};

/// Ethernet (14) + IPv6 (40) + TCP without options (20).
const FRAME: usize = 74;
/// The real scanner, started during the flood.
const SCANNER: &str = NetnsPair::B4_SECOND;
/// Linux reports CPU time in USER_HZ ticks, 100 a second on every architecture's ABI.
const TICKS_PER_SECOND: f64 = 100.0;

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

/// `n` SYN frames from random sources of 2001:db8::/32 outside the lab's own 2001:db8:0::/48,
/// to random ports 1-1024 of the victim, packed `FRAME` bytes apart.
fn spoofed_syns(n: usize, src_mac: [u8; 6], dst_mac: [u8; 6]) -> Vec<u8> {
    let victim: std::net::Ipv6Addr = NetnsPair::A6.parse().expect("the lab's address");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut frames = Vec::with_capacity(n * FRAME);
    for _ in 0..n {
        let (a, b) = (rng.next(), rng.next());
        let mut site = u32::try_from(a >> 32).expect("32 bits");
        if site >> 16 == 0 {
            site |= 1 << 16;
        }
        let source = (0x2001_0db8_u128 << 96) | (u128::from(site) << 64) | u128::from(b);
        let sport = 1024 + u16::try_from(a % 60_000).expect("below 60,000");
        let dport = 1 + u16::try_from((a >> 16) % 1024).expect("below 1,024");
        let mut tcp = TcpHeader::new(sport, dport, u32::try_from(b >> 32).expect("32 bits"), 1024);
        tcp.syn = true;
        PacketBuilder::ethernet2(src_mac, dst_mac)
            .ipv6(source.to_be_bytes(), victim.octets(), 64)
            .tcp_header(tcp)
            .write(&mut frames, &[])
            .expect("writing to a Vec cannot fail");
    }
    assert_eq!(frames.len(), n * FRAME, "a frame of an unexpected size");
    frames
}

/// Sends the frames from the scanner's interface as fast as libpcap takes them; `sent` follows
/// the progress. Returns the send failures, the time it took and when it ended (wall clock, to
/// compare with the daemon's log).
fn send(lab: &NetnsPair, frames: &[u8], sent: &AtomicUsize) -> (usize, Duration, SystemTime) {
    netns::enter_and_run(&lab.b, || {
        let mut out = pcap::Capture::from_device(lab.veth_b.as_str())
            .and_then(|c| c.buffer_size(1 << 20).open())
            .expect("open the scanner's interface");
        // The sender receives nothing (the victim's RSTs would only fill its buffer).
        out.filter("ether proto 0x88b5", true).expect("filter");
        let start = Instant::now();
        let mut failed = 0;
        for (i, frame) in frames.chunks_exact(FRAME).enumerate() {
            if out.sendpacket(frame).is_err() {
                failed += 1;
            }
            if i % 1024 == 0 {
                sent.store(i, Ordering::Relaxed);
            }
        }
        sent.store(frames.len() / FRAME, Ordering::Relaxed);
        (failed, start.elapsed(), SystemTime::now())
    })
}

/// A process's CPU time (user + system, all threads) in seconds, its RSS and peak RSS in KiB.
fn usage(pid: &str) -> (f64, u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the daemon runs");
    // Fields after the command's closing parenthesis; utime and stime are fields 14 and 15.
    let after = stat.rsplit_once(')').expect("stat format").1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the daemon runs");
    let kib = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{key} in /proc/{pid}/status"))
    };
    #[expect(clippy::cast_precision_loss, reason = "ticks are far below 2^52")]
    let seconds = ticks as f64 / TICKS_PER_SECOND;
    (seconds, kib("VmRSS:"), kib("VmHWM:"))
}

/// An interface counter (`/sys/class/net/DEV/statistics/NAME`) in namespace `ns`.
fn counter(lab: &NetnsPair, ns: &str, dev: &str, name: &str) -> u64 {
    let out = lab.exec(
        ns,
        &["cat", &format!("/sys/class/net/{dev}/statistics/{name}")],
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{dev} {name}"))
}

/// Frames the kernel dropped from per-CPU backlogs, machine-wide (`/proc/net/softnet_stat`,
/// second column; nothing else here receives at a rate that fills them).
fn backlog_drops() -> u64 {
    std::fs::read_to_string("/proc/net/softnet_stat")
        .expect("softnet_stat")
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(|hex| u64::from_str_radix(hex, 16).expect("hex"))
        .sum()
}

fn mac(lab: &NetnsPair, ns: &str, dev: &str) -> [u8; 6] {
    let out = lab.exec(ns, &["cat", &format!("/sys/class/net/{dev}/address")]);
    let text = String::from_utf8_lossy(&out.stdout);
    let bytes: Vec<u8> = text
        .trim()
        .split(':')
        .map(|h| u8::from_str_radix(h, 16).expect("a MAC address"))
        .collect();
    bytes.try_into().expect("six bytes")
}

fn status(daemon: &Daemon) -> serde_json::Value {
    let out = daemon.ctl(&["status", "--json"]);
    assert!(
        out.status.success(),
        "sentryctl status: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("status is JSON")
}

/// The addresses of 2001:db8::/32 in the daemon's IPv6 sets.
fn spoofed_in_kernel(lab: &NetnsPair) -> usize {
    ["blocked6", "blocked6_net"]
        .iter()
        .map(|set| lab.set_text(set).matches("\"2001:db8:").count())
        .sum()
}

struct Run {
    syns: usize,
    immediate: bool,
    failed: usize,
    send_time: Duration,
    reached: u64,
    kernel_drops: u64,
    captured: u64,
    capture_drops: u64,
    rss_before: u64,
    rss_peak: u64,
    cpu: f64,
    busy: Duration,
    detections: u64,
    refused: u64,
    spoofed_logged: usize,
    blocks: u64,
    spoofed_in_kernel: usize,
    scanner_blocked: bool,
    /// How long before the end of the flood the scanner was blocked (`None`: after it).
    blocked_before_end: Option<Duration>,
    latency_us: (u64, u64),
}

fn flood(syns: usize, immediate: bool) -> Run {
    let lab = NetnsPair::new();
    let dir = TempDir::new("flood");
    let veth_a = lab.veth_a();
    // The victim answers as a host would (its RSTs go back through the veth).
    for args in [
        ["ip", "-6", "route", "add", "default", "via", NetnsPair::B6],
        ["ip", "-4", "route", "add", "default", "via", NetnsPair::B4],
    ] {
        let out = lab.exec(&lab.a, &args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let frames = spoofed_syns(
        syns,
        mac(&lab, &lab.b, &lab.veth_b),
        mac(&lab, &lab.a, &veth_a),
    );

    let config = format!("[capture]\nimmediate = {immediate}\n");
    // -v: a source that keeps scanning while blocked is logged too.
    let daemon = Daemon::spawn_with(&lab.a, &dir.0, &config, 900, &["-v"]);
    let pid = daemon.pid();
    // The daemon settles (first socket-table read, the audit's first pass) before the flood.
    std::thread::sleep(Duration::from_secs(2));
    let (cpu_before, rss_before, _) = usage(&pid);
    let rx_before = counter(&lab, &lab.a, &veth_a, "rx_packets");
    let drops_before = counter(&lab, &lab.a, &veth_a, "rx_dropped")
        + counter(&lab, &lab.b, &lab.veth_b, "tx_dropped")
        + backlog_drops();
    let captured_before = status(&daemon)["packets"].as_u64().unwrap_or(0);

    let sent = AtomicUsize::new(0);
    let start = Instant::now();
    let (failed, send_time, flood_end, busy, cpu_after, rss_peak) = std::thread::scope(|s| {
        let sender = s.spawn(|| send(&lab, &frames, &sent));
        let started = wait_until(Duration::from_secs(120), || {
            sent.load(Ordering::Relaxed) >= syns / 5
        });
        assert!(started, "the flood did not get going");
        let scan = s.spawn(|| {
            let args = ["-sS", "-p", "1-200", "-S", SCANNER, "-e", &lab.veth_b];
            lab.nmap(&[&args[..], &[NetnsPair::A4]].concat());
        });
        let (failed, send_time, flood_end) = sender.join().expect("the sender");
        // Done when the daemon's frame count stops moving; the CPU it used until then.
        let mut last = u64::MAX;
        let settled = wait_until(Duration::from_secs(120), || {
            std::thread::sleep(Duration::from_millis(300));
            let now = status(&daemon)["packets"].as_u64().unwrap_or(0);
            std::mem::replace(&mut last, now) == now
        });
        assert!(settled, "the daemon kept capturing");
        let busy = start.elapsed();
        let (cpu_after, _, rss_peak) = usage(&pid);
        scan.join().expect("nmap");
        (failed, send_time, flood_end, busy, cpu_after, rss_peak)
    });
    // Every detection is logged: blocked, refused, or seen again while blocked.
    let log = format!("{}{}", daemon.out(), daemon.err());
    let spoofed_logged = log
        .lines()
        .filter(|l| l.contains("2001:db8:") && (l.contains("block") || l.contains("scan")))
        .count();
    let s = status(&daemon);
    let scanner_blocked = lab.set_text("blocked4").contains(SCANNER);
    let number = |key: &str| s[key].as_u64().unwrap_or_else(|| panic!("status {key}"));
    Run {
        syns,
        immediate,
        failed,
        send_time,
        reached: counter(&lab, &lab.a, &veth_a, "rx_packets") - rx_before,
        kernel_drops: counter(&lab, &lab.a, &veth_a, "rx_dropped")
            + counter(&lab, &lab.b, &lab.veth_b, "tx_dropped")
            + backlog_drops()
            - drops_before,
        captured: number("packets") - captured_before,
        capture_drops: number("capture_drops"),
        rss_before,
        rss_peak,
        cpu: cpu_after - cpu_before,
        busy,
        detections: number("detections"),
        refused: number("refused"),
        spoofed_logged,
        blocks: number("blocks_active"),
        spoofed_in_kernel: spoofed_in_kernel(&lab),
        scanner_blocked,
        blocked_before_end: log
            .lines()
            .find(|l| l.contains(&format!("blocked {SCANNER} for")))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
            .and_then(|at| flood_end.duration_since(at).ok()),
        latency_us: (
            number("block_latency_p50_us"),
            number("block_latency_p99_us"),
        ),
    }
}

fn main() {
    require_root();
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .map(|a| {
            a.parse()
                .unwrap_or_else(|_| panic!("not a flood size: {a}"))
        })
        .collect();
    let sizes = if sizes.is_empty() {
        vec![100_000, 1_000_000]
    } else {
        sizes
    };
    let runs: Vec<Run> = sizes
        .into_iter()
        .flat_map(|n| [flood(n, true), flood(n, false)])
        .collect();

    println!(
        "| SYNs | capture | sender rate | reached the victim / dropped by the kernel | captured / libpcap drops | RSS before → peak | CPU (per frame) | detections, refused, blocks | spoofed sources logged / in the kernel | nmap scanner blocked (when) | latency p50 / p99 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for r in runs {
        #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        let (rate, per_frame) = (
            r.syns as f64 / r.send_time.as_secs_f64(),
            r.cpu * 1e6 / r.captured.max(1) as f64,
        );
        println!(
            "| {} | {} | {:.0}k/s ({} send errors) | {} / {} | {} / {} | {:.1} → {:.1} MiB | {:.2} s in {:.1} s ({per_frame:.2} µs) | {}, {}, {} | {} / {} | {} ({}) | {:.2} / {:.2} ms |",
            r.syns,
            if r.immediate {
                "immediate (default)"
            } else {
                "batched"
            },
            rate / 1000.0,
            r.failed,
            r.reached,
            r.kernel_drops,
            r.captured,
            r.capture_drops,
            kib_to_mib(r.rss_before),
            kib_to_mib(r.rss_peak),
            r.cpu,
            r.busy.as_secs_f64(),
            r.detections,
            r.refused,
            r.blocks,
            r.spoofed_logged,
            r.spoofed_in_kernel,
            if r.scanner_blocked { "yes" } else { "NO" },
            r.blocked_before_end.map_or_else(
                || "after the flood ended".to_string(),
                |d| format!("{:.1} s before it ended", d.as_secs_f64())
            ),
            ms(r.latency_us.0),
            ms(r.latency_us.1),
        );
    }
}

#[expect(clippy::cast_precision_loss, reason = "small figures")]
fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[expect(clippy::cast_precision_loss, reason = "small figures")]
fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}
