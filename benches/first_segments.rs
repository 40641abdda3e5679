//! The per-connection cost of the version-probe path (issue 28), in connections per second on
//! one core: each connection is the client's SYN, the host's SYN+ACK (remembered as accepted)
//! and the client's first data segment (looked up, and matched against nmap's probes when its
//! first bytes begin like one), through the whole pipeline.
//!
//! Three captures of 300,000 connections from 10,000 sources to 3 open ports, built in memory:
//! - `no payload match`: first segments that the capture filter would not even pass
//!   (`POST /…`): the path's cost is one look at the first payload byte;
//! - `browser-like GET`: `GET / HTTP/1.1` with headers, which the filter passes (it begins
//!   `GET `) and userspace tells from nmap's by length;
//! - `nmap GetRequest`: `GET / HTTP/1.0\r\n\r\n` exactly: recognised, the first-segment table
//!   looked up, the source counted (one name each: never a detection).
//!
//! Run: `cargo bench --bench first_segments` (add `-- --quick` for one round).
#![expect(
    clippy::disallowed_methods,
    reason = "a benchmark measures wall-clock time: it is a shell"
)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use etherparse::PacketBuilder;
use scansentry::config::{Config, LINUX_EPHEMERAL_PORTS};
use scansentry::detect::traps::Listeners;
use scansentry::never_block::NeverBlockList;
use scansentry::pipeline::Pipeline;
use scansentry::time::Timestamp;
use scansentry::wire::{LinkType, Proto};

const CONNECTIONS: u32 = 300_000;
const SOURCES: u32 = 10_000;
const PORTS: [u16; 3] = [22, 80, 443];
const LOCAL: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

struct Capture {
    bytes: Vec<u8>,
    frames: Vec<(Timestamp, u32, u32)>,
}

/// An Ethernet frame of a TCP segment with `syn`/`ack` flags, sequence and acknowledgment
/// numbers and `payload`.
fn segment(
    (src, sport): (Ipv4Addr, u16),
    (dst, dport): (Ipv4Addr, u16),
    (syn, seq, ack): (bool, u32, Option<u32>),
    payload: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(80 + payload.len());
    let mut tcp = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0xa], [2, 0, 0, 0, 0, 0xb])
        .ipv4(src.octets(), dst.octets(), 64)
        .tcp(sport, dport, seq, 64240);
    if syn {
        tcp = tcp.syn();
    }
    if let Some(ack) = ack {
        tcp = tcp.ack(ack);
        if !payload.is_empty() {
            tcp = tcp.psh();
        }
    }
    tcp.write(&mut out, payload).expect("into a Vec");
    out
}

fn synthesize(first: &[u8]) -> Capture {
    let mut capture = Capture {
        bytes: Vec::with_capacity(CONNECTIONS as usize * 3 * 90),
        frames: Vec::with_capacity(CONNECTIONS as usize * 3),
    };
    let start = 1_700_000_000_000_000u64;
    for i in 0..CONNECTIONS {
        let client = Ipv4Addr::from(0xcb00_0000 | ((i % SOURCES).wrapping_mul(2_654_435_761) >> 8));
        let sport = 1024 + u16::try_from(i % 60_000).expect("in range");
        let port = PORTS[(i % 3) as usize];
        let isn = i.wrapping_mul(2_246_822_519);
        let server_isn = isn ^ 0x5a5a_5a5a;
        for frame in [
            segment((client, sport), (LOCAL, port), (true, isn, None), &[]),
            segment(
                (LOCAL, port),
                (client, sport),
                (true, server_isn, Some(isn.wrapping_add(1))),
                &[],
            ),
            segment(
                (client, sport),
                (LOCAL, port),
                (false, isn.wrapping_add(1), Some(server_isn.wrapping_add(1))),
                first,
            ),
        ] {
            let offset = u32::try_from(capture.bytes.len()).expect("under 4 GiB");
            capture.bytes.extend_from_slice(&frame);
            let len = u32::try_from(frame.len()).expect("small");
            let at = Timestamp::from_micros(start + u64::from(i) * 10);
            capture.frames.push((at, offset, len));
        }
    }
    capture
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
    println!("| first segments | connections/s (median of {rounds}) | version probes counted |");
    println!("|---|---|---|");
    for (name, first) in [
        ("no payload match", &b"POST /api/v1/items HTTP/1.1\r\nHost: example.org\r\n\r\n"[..]),
        (
            "browser-like GET",
            b"GET / HTTP/1.1\r\nHost: example.org\r\nUser-Agent: Mozilla/5.0\r\nAccept: */*\r\n\r\n",
        ),
        ("nmap GetRequest", b"GET / HTTP/1.0\r\n\r\n"),
    ] {
        let capture = synthesize(first);
        let mut rates = Vec::new();
        let mut counted = 0;
        for _ in 0..rounds {
            let mut traps = config.traps.build(LINUX_EPHEMERAL_PORTS);
            let mut listeners = Listeners::new();
            for port in PORTS {
                listeners.insert(Proto::Tcp, None, port);
            }
            traps.set_listeners(listeners);
            let mut p = Pipeline::new(
                config.detector.clone(),
                traps,
                NeverBlockList::loopback(),
                [IpAddr::V4(LOCAL)],
                1,
            );
            let t = Instant::now();
            for &(at, offset, len) in &capture.frames {
                let frame = &capture.bytes[offset as usize..(offset + len) as usize];
                black_box(p.process_frame(at, LinkType::Ethernet, black_box(frame)));
            }
            rates.push(f64::from(CONNECTIONS) / t.elapsed().as_secs_f64());
            counted = p.counters().version_probes;
            assert_eq!(p.counters().detections, 0);
        }
        println!("| {name} | {:.2} M | {counted} |", median(rates) / 1e6);
    }
}
