//! How soon the daemon hears of a hold of the kernel's first line: the time from a packet's
//! send, in the scanner's namespace of the lab, to `held` being called by
//! `NftFirewall::watch_holds` in the victim's, where a rule loaded with nft logs it as the
//! first line's `hold` rules do (`log group N queue-threshold 1 prefix "scansentry hold "
//! drop`). One packet at a time, each waited for: p50, p99 and max over 2,000 UDP datagrams
//! of each family. The time covers the sender's system call, the veth, the input hook, the
//! log message, the reader's wake-up and its reading of the message.
//!
//! Run: `cargo bench --bench hold_latency` (as root). Results go in BENCHMARKS.md.
#![expect(
    clippy::disallowed_methods,
    reason = "a benchmark measures wall-clock time: it is a shell"
)]

#[path = "../tests/support/netns.rs"]
#[allow(dead_code, reason = "the benchmark uses part of the test lab")]
mod netns;

use std::net::UdpSocket;
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use netns::{NetnsPair, enter_and_run};
use scansentry::config::nft::FirstLine;
use scansentry::firewall::Firewall;
use scansentry::firewall::nft::{Hook, NftConfig, NftFirewall};

const GROUP: u16 = 2701;
const SAMPLES: usize = 2_000;

/// The `p`-th per-mille of a sorted sample (500: the median).
fn percentile(sorted: &[Duration], per_mille: usize) -> Duration {
    sorted[(sorted.len() - 1) * per_mille / 1000]
}

fn load_rules(lab: &NetnsPair) {
    let ruleset = format!(
        "table inet holds {{\n\
           chain input {{\n\
             type filter hook input priority filter; policy accept;\n\
             udp dport 1000-1999 log group {GROUP} queue-threshold 1 prefix \"scansentry hold \" drop\n\
           }}\n\
         }}\n"
    );
    let path = std::env::temp_dir().join(format!("sst-hold-latency-{}.nft", std::process::id()));
    std::fs::write(&path, ruleset).expect("the ruleset file");
    let out = lab.exec(&lab.a, &["nft", "-f", path.to_str().expect("a UTF-8 path")]);
    let _ = std::fs::remove_file(&path);
    assert!(out.status.success(), "nft -f: {out:?}");
}

fn main() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if !status
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
    {
        eprintln!("hold_latency benchmark: needs root (it makes network namespaces)");
        std::process::exit(77);
    }
    let lab = NetnsPair::new();
    load_rules(&lab);
    let config = NftConfig::Own {
        hook: Hook::Input,
        forward: false,
        priority: -10,
        set_size: 1000,
        first_line: Some(FirstLine {
            hold: Duration::from_secs(5),
            log_group: GROUP,
        }),
    };
    enter_and_run(&lab.a, || {
        let fw = NftFirewall::new(config).expect("the firewall");
        let (tx, rx) = channel();
        let rx = std::sync::Mutex::new(rx);
        fw.watch_holds(Box::new(move |hold| {
            let _ = tx.send((Instant::now(), hold.port));
        }))
        .expect("watching holds");
        for (family, from, to) in [
            ("IPv4", NetnsPair::B4, NetnsPair::A4),
            ("IPv6", NetnsPair::B6, NetnsPair::A6),
        ] {
            let mut delays = enter_and_run(&lab.b, || {
                let socket = UdpSocket::bind((from, 0)).expect("a UDP socket");
                let mut delays = Vec::with_capacity(SAMPLES);
                for i in 0..SAMPLES + 100 {
                    let port = 1000 + u16::try_from(i % 1000).expect("a port");
                    let sent = Instant::now();
                    socket.send_to(b"probe", (to, port)).expect("send");
                    let (at, reported) = rx
                        .lock()
                        .expect("the receiver")
                        .recv_timeout(Duration::from_secs(5))
                        .expect("the hold reported");
                    assert_eq!(reported, port);
                    // The first 100 warm up.
                    if i >= 100 {
                        delays.push(at - sent);
                    }
                }
                delays
            });
            delays.sort();
            println!(
                "{family}: packet to held, {SAMPLES} samples: p50 {:.1} µs, p99 {:.1} µs, \
                 max {:.1} µs",
                percentile(&delays, 500).as_secs_f64() * 1e6,
                percentile(&delays, 990).as_secs_f64() * 1e6,
                delays.last().expect("samples").as_secs_f64() * 1e6,
            );
        }
        let r = fw.hold_reports();
        println!(
            "reports: {} reported, {} lost, {} overruns, {} unreadable",
            r.reported, r.lost, r.overruns, r.unreadable
        );
    });
}
