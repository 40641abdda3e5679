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
//! In the same run, a bare thread of this process is woken through a pipe every 2 ms by
//! another (`wake-up of a bare thread`): the scheduler's delay on this host at that time,
//! beside which the daemon's figures are read.
//!
//! With `--features stage-trace`, sentryd writes for each block the times of its stages from
//! the capture of the trigger probe (src/daemon/stages.rs), and the bench prints each block's
//! line and the median and maximum of each stage. `SCANS=n` sets the number of scans (20);
//! `FULL=0` leaves out the two full scans (the latencies are then the scans' alone).
//!
//! `MODES=plain,fifo,nice ROUNDS=5` (with `stage-trace`): a side-by-side run instead. Each
//! round starts one sentryd per mode in turn — `plain`, `fifo` (under `chrt -f 10`:
//! SCHED_FIFO, as `CPUSchedulingPolicy=fifo` would run it), `nice` (under `nice -n -10`),
//! `before` (the sentryd at `SENTRYD_BEFORE`, another build with `stage-trace`; or any build
//! by its absolute path as the mode's name) — and
//! runs `SCANS` scans (default 10) against it, each stopped 4 s after its start
//! (`--host-timeout`: the block comes within milliseconds of the first probes); then each
//! mode's blocks pooled (capture to kernel, and the daemon's wake-up: from the capture of the
//! turn's first frame to the return of its `poll`), with the bare thread's wake-ups of its
//! rounds.
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

/// Scans, unless `SCANS` says otherwise.
const SCANS: u8 = 20;

fn scans_wanted() -> u8 {
    std::env::var("SCANS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|n| (1..=200).contains(n))
        .unwrap_or(SCANS)
}

fn full_wanted() -> bool {
    std::env::var("FULL").map_or(true, |v| v != "0")
}
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
fn scans(lab: &NetnsPair, scans: u8) -> (Vec<usize>, usize) {
    let mut replies_after = Vec::new();
    for i in 0..scans {
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
    if !full_wanted() {
        return (replies_after, 0);
    }
    let full_from = format!("198.51.100.{}", 10 + u16::from(scans));
    let full = full_scan(lab, &full_from);
    let open_with = count(&full, "open");

    (replies_after, open_with)
}

/// The wake-up delays of a bare thread, µs: another thread writes to a pipe every 2 ms, with
/// the time it wrote, and this one, blocked in `read`, notes how late it woke; until `stop`.
#[expect(
    clippy::disallowed_methods,
    reason = "a benchmark measures wake-ups with the monotonic clock"
)]
fn wake_probe(stop: &std::sync::atomic::AtomicBool) -> Vec<u64> {
    use std::io::{Read, Write};
    use std::sync::atomic::Ordering;
    let (mut read, mut write) = std::io::pipe().expect("pipe");
    let start = std::time::Instant::now();
    std::thread::scope(|s| {
        let sleeper = s.spawn(move || {
            let mut delays = Vec::new();
            let mut buf = [0u8; 16];
            while read.read_exact(&mut buf).is_ok() {
                let woke = start.elapsed().as_micros();
                let sent = u128::from_le_bytes(buf);
                delays.push(u64::try_from(woke.saturating_sub(sent)).unwrap_or(u64::MAX));
            }
            delays
        });
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(std::time::Duration::from_millis(2));
            let sent = start.elapsed().as_micros();
            if write.write_all(&sent.to_le_bytes()).is_err() {
                break;
            }
        }
        drop(write);
        sleeper.join().expect("the sleeper")
    })
}

/// The value at per-mille `k` of the sorted `v` (nearest rank).
fn per_mille(v: &[i64], k: usize) -> i64 {
    if v.is_empty() {
        return 0;
    }
    v[(v.len() * k / 1000).min(v.len() - 1)]
}

/// sentryd's `stage-trace` lines (feature `stage-trace`): printed, then each stage's median
/// and maximum.
fn stages(err: &str) {
    let lines: Vec<&str> = err
        .lines()
        .filter_map(|l| l.split_once("stage-trace ").map(|(_, rest)| rest))
        .collect();
    if lines.is_empty() {
        return;
    }
    println!("stages of each block, µs from the trigger's capture:");
    let mut by_label: Vec<(String, Vec<i64>)> = Vec::new();
    for line in &lines {
        println!("  {line}");
        for pair in line.split(' ') {
            let Some((label, value)) = pair.split_once('=') else {
                continue;
            };
            let Ok(value) = value.parse::<i64>() else {
                continue;
            };
            match by_label.iter_mut().find(|(l, _)| l == label) {
                Some((_, values)) => values.push(value),
                None => by_label.push((label.to_string(), vec![value])),
            }
        }
    }
    println!("| stage | blocks | median | p90 | max |");
    println!("|---|---|---|---|---|");
    for (label, mut values) in by_label {
        values.sort_unstable();
        println!(
            "| {label} | {} | {} | {} | {} |",
            values.len(),
            per_mille(&values, 500),
            per_mille(&values, 900),
            values[values.len() - 1]
        );
    }
}

/// A mode of `MODES`: the command sentryd is started under.
fn wrapper(mode: &str) -> &'static [&'static str] {
    match mode {
        "plain" => &[],
        "fifo" => &["chrt", "-f", "10"],
        "nice" => &["nice", "-n", "-10"],
        // Another build's sentryd, named by SENTRYD_BEFORE, in place of this one's.
        "before" => &[
            "sh",
            "-c",
            "shift; exec \"$SENTRYD_BEFORE\" \"$@\"",
            "before",
        ],
        // Another build's sentryd, by its path, in place of this one's.
        path if path.starts_with('/') => Vec::leak(vec![
            "sh",
            "-c",
            "shift; exec \"$0\" \"$@\"",
            String::leak(path.to_string()),
        ]),
        other => panic!("unknown mode {other:?}: plain, fifo or nice"),
    }
}

/// The value of `label` in a `stage-trace` line.
fn stage(line: &str, label: &str) -> Option<i64> {
    line.split(' ')
        .filter_map(|p| p.split_once('='))
        .find(|(l, _)| *l == label)
        .and_then(|(_, v)| v.parse().ok())
}

/// `MODES=…`: each round, one daemon per mode in turn, `SCANS` quick scans each.
fn side_by_side(lab: &NetnsPair, modes: &[String]) {
    let rounds: u8 = std::env::var("ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5);
    let per_round: u8 = std::env::var("SCANS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10);
    // Per mode: (capture to kernel, wake-up) of every block, and the bare thread's wake-ups.
    let mut pooled: Vec<(Vec<i64>, Vec<i64>, Vec<i64>)> = vec![Default::default(); modes.len()];
    let mut pooled_stalls: Vec<Vec<i64>> = vec![Vec::new(); modes.len()];
    let mut next_addr: u16 = 10;
    println!(
        "| round | mode | blocks | capture to kernel p50 / p99 / max, µs | daemon wake-up p50 / max, µs | bare thread wake-up p50 / p99 / max, µs |"
    );
    println!("|---|---|---|---|---|---|");
    for round in 1..=rounds {
        for (m, mode) in modes.iter().enumerate() {
            // A fresh state and table each time: the blocks of the last daemon would count
            // against the budget of 198.51.100.0/24.
            let dir = TempDir::new("latency");
            let _ = lab.exec(&lab.a, &["nft", "delete", "table", "inet", "scansentry"]);
            let daemon = Daemon::spawn_wrapped(
                &lab.a,
                &dir.0,
                "[respond]\nmax-new-blocks-per-second = 1000\n",
                900,
                wrapper(mode),
                &[],
            );
            let stop = std::sync::atomic::AtomicBool::new(false);
            let mut wakes = std::thread::scope(|s| {
                let probe = s.spawn(|| wake_probe(&stop));
                for _ in 0..per_round {
                    let from = format!("198.51.100.{next_addr}");
                    next_addr += 1;
                    nmap(
                        lab,
                        &[
                            "-sS",
                            "-p",
                            "1-200",
                            "--max-retries",
                            "1",
                            "--host-timeout",
                            "4s",
                            "-S",
                            &from,
                            "-e",
                            &lab.veth_b,
                            NetnsPair::A4,
                        ],
                    );
                }
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                probe.join().expect("the wake-up probe")
            });
            std::thread::sleep(std::time::Duration::from_millis(200));
            let err = daemon.err();
            drop(daemon);
            let stalls: Vec<i64> = err
                .lines()
                .filter(|l| l.starts_with("stage-stall "))
                .filter_map(|l| stage(l, "busy"))
                .collect();
            pooled_stalls[m].extend(&stalls);
            if std::env::var_os("STALLS").is_some() {
                for line in err.lines().filter(|l| l.starts_with("stage-stall ")) {
                    println!("  {mode}: {line}");
                }
            }
            let mut total: Vec<i64> = Vec::new();
            let mut woke: Vec<i64> = Vec::new();
            for line in err.lines().filter(|l| l.contains("stage-trace ")) {
                if let (Some(acked), Some(w), Some(first)) = (
                    stage(line, "acked"),
                    stage(line, "woke"),
                    stage(line, "first_captured"),
                ) {
                    total.push(acked);
                    woke.push(w - first);
                }
            }
            wakes.sort_unstable();
            let wakes: Vec<i64> = wakes
                .into_iter()
                .map(|w| i64::try_from(w).unwrap_or(i64::MAX))
                .collect();
            pooled[m].0.extend(&total);
            pooled[m].1.extend(&woke);
            pooled[m].2.extend(&wakes);
            total.sort_unstable();
            woke.sort_unstable();
            println!(
                "| {round} | {mode} | {} | {} / {} / {} | {} / {} | {} / {} / {} |",
                total.len(),
                per_mille(&total, 500),
                per_mille(&total, 990),
                total.last().copied().unwrap_or(0),
                per_mille(&woke, 500),
                woke.last().copied().unwrap_or(0),
                per_mille(&wakes, 500),
                per_mille(&wakes, 990),
                wakes.last().copied().unwrap_or(0),
            );
        }
    }
    println!("turns that kept the main loop from poll over 0.5 ms (stage-stall), pooled:");
    for (m, mode) in modes.iter().enumerate() {
        let stalls = &mut pooled_stalls[m];
        stalls.sort_unstable();
        println!(
            "  {mode}: {} stalls, median {} µs, max {} µs",
            stalls.len(),
            per_mille(stalls, 500),
            stalls.last().copied().unwrap_or(0)
        );
    }
    println!("pooled over the rounds:");
    println!(
        "| mode | blocks | capture to kernel p50 / p90 / p99 / max, µs | blocks over 1 ms | daemon wake-up p50 / p99 / max, µs | bare thread wake-up p50 / p99 / max, µs |"
    );
    println!("|---|---|---|---|---|---|");
    for (m, mode) in modes.iter().enumerate() {
        let (total, woke, wakes) = &mut pooled[m];
        total.sort_unstable();
        woke.sort_unstable();
        wakes.sort_unstable();
        println!(
            "| {mode} | {} | {} / {} / {} / {} | {} | {} / {} / {} | {} / {} / {} |",
            total.len(),
            per_mille(total, 500),
            per_mille(total, 900),
            per_mille(total, 990),
            total.last().copied().unwrap_or(0),
            total.iter().filter(|&&t| t > 1000).count(),
            per_mille(woke, 500),
            per_mille(woke, 990),
            woke.last().copied().unwrap_or(0),
            per_mille(wakes, 500),
            per_mille(wakes, 990),
            wakes.last().copied().unwrap_or(0),
        );
    }
}

fn main() {
    require_root();
    if let Ok(modes) = std::env::var("MODES") {
        let modes: Vec<String> = modes.split(',').map(str::to_string).collect();
        let lab = NetnsPair::new();
        let _server = lab.listen(&OPEN, 3600);
        for i in 10..=250u16 {
            let addr = format!("198.51.100.{i}/24");
            let out = lab.exec(&lab.b, &["ip", "addr", "add", &addr, "dev", &lab.veth_b]);
            assert!(out.status.success());
        }
        side_by_side(&lab, &modes);
        return;
    }
    let flood = std::env::var_os("FORGED_FLOOD").is_some();
    let lab = NetnsPair::new();
    let dir = TempDir::new("latency");
    let _server = lab.listen(&OPEN, 900);
    let scans_n = scans_wanted();
    // Scanners: 198.51.100.10 onwards, one address per scan.
    for i in 0..=scans_n + 2 {
        let addr = format!("198.51.100.{}/24", 10 + u16::from(i));
        let out = lab.exec(&lab.b, &["ip", "addr", "add", &addr, "dev", &lab.veth_b]);
        assert!(out.status.success());
    }

    // Without the daemon: the full scan finds every open port.
    let baseline_from = format!("198.51.100.{}", 10 + u16::from(scans_n) + 1);
    let open_without = if full_wanted() {
        count(&full_scan(&lab, &baseline_from), "open")
    } else {
        0
    };

    let daemon = Daemon::spawn_for(
        &lab.a,
        &dir.0,
        "[respond]\nmax-new-blocks-per-second = 1000\n",
        900,
    );
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (replies_after, open_with, mut wakes) = std::thread::scope(|s| {
        if flood {
            s.spawn(|| forged_flood(&lab, &stop));
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
        let probe = s.spawn(|| wake_probe(&stop));
        let found = scans(&lab, scans_n);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let wakes = probe.join().expect("the wake-up probe");
        (found.0, found.1, wakes)
    });
    let mut replies_after = replies_after;
    let status = daemon.ctl(&["status", "--json"]);
    let s: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status");
    println!("replies after the trigger, scan by scan: {replies_after:?}");
    replies_after.sort_unstable();
    println!(
        "scans: {scans_n} of ports 1-200 (nmap -sS -T4), each from a new address{}",
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
    wakes.sort_unstable();
    let wakes: Vec<i64> = wakes
        .into_iter()
        .map(|w| i64::try_from(w).unwrap_or(i64::MAX))
        .collect();
    println!(
        "wake-up of a bare thread, same run: {} wake-ups, p50 {} µs, p99 {} µs, max {} µs",
        wakes.len(),
        per_mille(&wakes, 500),
        per_mille(&wakes, 990),
        wakes.last().copied().unwrap_or(0)
    );
    stages(&daemon.err());
}
