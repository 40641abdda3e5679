//! The pipeline with fragments (issue 28), in frames per second on one core.
//!
//! Three synthetic captures, built in memory as Ethernet frames:
//! - **nmap -f**: 10,000 sources each probing 30 random ports with a SYN in 8-byte IP
//!   fragments (3 frames a probe, as `nmap -sS -f` sends them), each source in a burst;
//! - **big UDP**: 100,000 UDP datagrams of 4 KiB from 1,000 sources, each in three
//!   fragments, cut at the capture's snap length (160 bytes);
//! - **first-fragment flood**: 300,000 first fragments from random forged sources that never
//!   complete: every one a new datagram past the reassembler's bounds.
//!
//! Each runs through the whole pipeline (parse, reassembly, locality, never-block, trap
//! decision, detector) as the daemon runs it; the same probes unfragmented (the first capture
//! whole) give the baseline. Run: `cargo bench --bench fragments` (add `-- --quick` for one
//! round).
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
use scansentry::never_block::NeverBlockList;
use scansentry::pipeline::Pipeline;
use scansentry::time::Timestamp;
use scansentry::wire::LinkType;

const LOCAL: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

/// Frames packed in one buffer, with their capture times.
struct Capture {
    bytes: Vec<u8>,
    frames: Vec<(Timestamp, u32, u32)>,
}

impl Capture {
    fn new() -> Self {
        Capture {
            bytes: Vec::new(),
            frames: Vec::new(),
        }
    }

    fn push(&mut self, at_us: u64, frame: &[u8]) {
        let offset = u32::try_from(self.bytes.len()).expect("under 4 GiB");
        self.bytes.extend_from_slice(frame);
        let len = u32::try_from(frame.len()).expect("small");
        self.frames.push((
            Timestamp::from_micros(1_700_000_000_000_000 + at_us),
            offset,
            len,
        ));
    }

    fn frame(&self, &(_, offset, len): &(Timestamp, u32, u32)) -> &[u8] {
        &self.bytes[offset as usize..(offset + len) as usize]
    }
}

fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

fn source(i: u64) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(
        0xcb00_0000 | (u32::try_from(i).expect("small").wrapping_mul(2_654_435_761) >> 8),
    ))
}

/// 10,000 sources × 30 SYNs, in 8-byte fragments (`fragmented`) or whole.
fn nmap_f(fragmented: bool) -> Capture {
    let mut next = rng(0x2545_f491_4f6c_dd1d);
    let mut c = Capture::new();
    let mut t = 0;
    for s in 0..10_000u64 {
        for _ in 0..30 {
            let port = u16::try_from(1 + next() % 65_535).expect("in range");
            let frame = frames::tcp_frame(source(s), IpAddr::V4(LOCAL), 40_000, port, 0x02);
            t += 1;
            if fragmented {
                let id = u32::try_from(next() & 0xffff).expect("16 bits");
                for f in frames::fragments(&frame, 8, id) {
                    c.push(t, &f);
                }
            } else {
                c.push(t, &frame);
            }
        }
    }
    c
}

/// 100,000 datagrams of 4 KiB from 1,000 sources to an open port, three fragments each, cut
/// at 160 bytes.
fn big_udp() -> Capture {
    let mut c = Capture::new();
    let payload = vec![0x5a; 4096];
    for i in 0..100_000u64 {
        let frame = frames::udp_frame_with(source(i % 1000), IpAddr::V4(LOCAL), 5000, 53, &payload);
        let id = u32::try_from(i & 0xffff).expect("16 bits");
        for f in frames::fragments(&frame, 1480, id) {
            c.push(i * 10, &f[..f.len().min(160)]);
        }
    }
    c
}

/// 300,000 first fragments from random sources, never completed.
fn flood() -> Capture {
    let mut next = rng(0x9e37_79b9_7f4a_7c15);
    let mut c = Capture::new();
    for i in 0..300_000u64 {
        let src = IpAddr::V4(Ipv4Addr::from(
            0xcb00_0000 | u32::try_from(next() & 0x00ff_ffff).expect("24 bits"),
        ));
        let frame = frames::tcp_frame(src, IpAddr::V4(LOCAL), 40_000, 80, 0x02);
        let first =
            frames::fragments(&frame, 8, u32::try_from(i & 0xffff).expect("16")).swap_remove(0);
        c.push(i, &first);
    }
    c
}

fn pipeline(config: &Config) -> Pipeline {
    let mut traps = config.traps.build(LINUX_EPHEMERAL_PORTS);
    let mut listeners = scansentry::detect::traps::Listeners::new();
    listeners.insert(scansentry::wire::Proto::Udp, None, 53);
    traps.set_listeners(listeners);
    Pipeline::new(
        config.detector.clone(),
        traps,
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
    let config = Config::default();
    println!("| capture | frames | frames/s (median of {rounds}) | datagrams whole | detections |");
    println!("|---|---|---|---|---|");
    for (name, capture) in [
        ("300,000 SYNs whole (baseline)", nmap_f(false)),
        ("the same in 8-byte fragments (nmap -f)", nmap_f(true)),
        (
            "100,000 UDP datagrams of 4 KiB, 3 fragments, cut at 160",
            big_udp(),
        ),
        ("300,000 forged first fragments, never whole", flood()),
    ] {
        let n = capture.frames.len() as f64;
        let mut rates = Vec::new();
        let mut counters = None;
        for _ in 0..rounds {
            let mut p = pipeline(&config);
            let t = Instant::now();
            for f in &capture.frames {
                black_box(p.process_frame(f.0, LinkType::Ethernet, capture.frame(f)));
            }
            rates.push(n / t.elapsed().as_secs_f64());
            counters = Some(*p.counters());
        }
        let c = counters.expect("one round at least");
        println!(
            "| {name} | {} | {:.2} M | {} | {} |",
            capture.frames.len(),
            median(rates) / 1e6,
            c.reassembled,
            c.detections
        );
    }
}
