//! Parse + detect throughput, in packets per second on one core.
//!
//! A synthetic capture of 3 million probes from 100,000 sources (each probing 30 random ports;
//! 80% SYN, 10% FIN, 5% NULL, 5% UDP) is built in memory as Ethernet frames, in two orders (see
//! [`Order`]), then the whole pipeline — parse, locality, conversation memory, never-block
//! lookup, trap decision, detector — runs over it on one thread.
//!
//! Run: `cargo bench --bench throughput` (add `-- --quick` for one round, `-- --only bursts`
//! or `-- --only interleaved` for one capture, as a profile wants). Results go in
//! BENCHMARKS.md.
#![expect(
    clippy::disallowed_methods,
    reason = "a benchmark measures wall-clock time: it is a shell"
)]

#[path = "../tests/support/frames.rs"]
#[allow(dead_code, reason = "the capture-file writer is for the tests")]
mod frames;

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use scansentry::config::{Config, LINUX_EPHEMERAL_PORTS};
use scansentry::detect::fingerprint;
use scansentry::never_block::NeverBlockList;
use scansentry::pipeline::Pipeline;
use scansentry::time::Timestamp;
use scansentry::wire::{self, LinkType, Metadata};

const SOURCES: u32 = 100_000;
const PORTS_PER_SOURCE: u32 = 30;
const LOCAL: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

/// Frames packed in one buffer, with their capture times.
struct Capture {
    bytes: Vec<u8>,
    frames: Vec<(Timestamp, u32, u32)>,
}

/// How the sources' probes are interleaved.
#[derive(Clone, Copy)]
enum Order {
    /// Round-robin: each source sends one probe in turn, all 100k active at once. The worst
    /// case for caches: every probe touches a different source's state.
    Interleaved,
    /// Each source sends its 30 probes in a row, as scanners do.
    Bursts,
}

fn synthesize(order: Order) -> Capture {
    let mut rng: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let total = SOURCES * PORTS_PER_SOURCE;
    let mut capture = Capture {
        bytes: Vec::with_capacity(total as usize * 60),
        frames: Vec::with_capacity(total as usize),
    };
    let start = 1_700_000_000_000_000u64;
    for i in 0..total {
        let source = match order {
            Order::Interleaved => i % SOURCES,
            Order::Bursts => i / PORTS_PER_SOURCE,
        };
        let src = IpAddr::V4(Ipv4Addr::from(
            0xcb00_0000 | (source.wrapping_mul(2_654_435_761) >> 8),
        ));
        let port = u16::try_from(1 + next() % 65_535).expect("in range");
        let frame = match next() % 20 {
            0..=15 => frames::tcp_frame(src, IpAddr::V4(LOCAL), 40_000, port, 0x02),
            16 | 17 => frames::tcp_frame(src, IpAddr::V4(LOCAL), 40_000, port, 0x01),
            18 => frames::tcp_frame(src, IpAddr::V4(LOCAL), 40_000, port, 0x00),
            _ => frames::udp_frame(src, IpAddr::V4(LOCAL), 40_000, port),
        };
        let offset = u32::try_from(capture.bytes.len()).expect("under 4 GiB");
        capture.bytes.extend_from_slice(&frame);
        let len = u32::try_from(frame.len()).expect("small");
        // One probe per microsecond: 3 s of capture, inside one detection window.
        capture
            .frames
            .push((Timestamp::from_micros(start + u64::from(i)), offset, len));
    }
    capture
}

fn pipeline(config: &Config) -> Pipeline {
    Pipeline::new(
        config.detector.clone(),
        config.traps.build(LINUX_EPHEMERAL_PORTS),
        NeverBlockList::loopback(),
        [IpAddr::V4(LOCAL)],
        1,
    )
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let rounds = if std::env::args().any(|a| a == "--quick") {
        1
    } else {
        5
    };
    let args: Vec<String> = std::env::args().collect();
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str);
    let default = Config::default();
    let mut roomy = Config::default();
    roomy.detector.max_sources = 131_072;

    println!("| capture | stage | packets/s (median of {rounds}) |");
    println!("|---|---|---|");
    for (order_name, order) in [
        ("interleaved", Order::Interleaved),
        ("bursts", Order::Bursts),
    ] {
        if only.is_some_and(|o| o != order_name) {
            continue;
        }
        let capture = synthesize(order);
        let n = capture.frames.len() as f64;
        let frame = |&(_, offset, len): &(Timestamp, u32, u32)| {
            &capture.bytes[offset as usize..(offset + len) as usize]
        };

        let mut parse_only = Vec::new();
        for _ in 0..rounds {
            let t = Instant::now();
            let mut ok = 0u64;
            for f in &capture.frames {
                ok += u64::from(wire::parse(LinkType::Ethernet, black_box(frame(f))).is_ok());
            }
            assert_eq!(ok, capture.frames.len() as u64);
            parse_only.push(n / t.elapsed().as_secs_f64());
        }
        println!(
            "| {order_name} | parse only | {:.2} M |",
            median(parse_only) / 1e6
        );

        // Issue 28: the tool-fingerprint rules on every parsed packet, beside parse only.
        let mut with_rules = Vec::new();
        for _ in 0..rounds {
            let t = Instant::now();
            let mut marked = 0u64;
            for f in &capture.frames {
                // As the pipeline does: the fields the rules read, from the frame.
                let seen = wire::read(LinkType::Ethernet, black_box(frame(f)), Metadata::default());
                if let Ok(seen) = seen {
                    marked += u64::from(
                        fingerprint::recognise(black_box(&seen.packet), &seen.fields()).is_some(),
                    );
                }
            }
            black_box(marked);
            with_rules.push(n / t.elapsed().as_secs_f64());
        }
        println!(
            "| {order_name} | parse + fingerprint rules | {:.2} M |",
            median(with_rules) / 1e6
        );

        for (name, config) in [
            ("default config (32,768 sources tracked)", &default),
            ("max-sources = 131072 (all 100k tracked)", &roomy),
        ] {
            let mut rates = Vec::new();
            let mut detections = 0;
            for _ in 0..rounds {
                let mut p = pipeline(config);
                let t = Instant::now();
                for f in &capture.frames {
                    black_box(p.process_frame(f.0, LinkType::Ethernet, frame(f)));
                }
                rates.push(n / t.elapsed().as_secs_f64());
                detections = p.counters().detections;
            }
            println!(
                "| {order_name} | parse + detect, {name} | {:.2} M ({detections} detections) |",
                median(rates) / 1e6
            );
        }
    }
}
