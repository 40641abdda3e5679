//! The pipeline's fragment path: datagrams reassembled and judged as any packet, what their
//! fragments said weighed, and the checks that come before any state.

use super::*;
use crate::capture::bpf::frames;
use crate::detect::traps::{Listeners, PortSet, TrapMode};
use crate::never_block::{Entry, Reason};

const SCANNER: &str = "203.0.113.7";
const LOCAL: &str = "198.51.100.1";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn at(ms: u64) -> Timestamp {
    Timestamp::from_micros(1_000_000_000 + ms * 1000)
}

/// A pipeline for LOCAL and 2001:db8::1 with TCP 22 and UDP 53 listening; `ignore` on the
/// never-block list.
fn pipeline(ignore: &[&str]) -> Pipeline {
    let mut traps = Traps::new(TrapMode::Unused, PortSet::new(), PortSet::new(), None);
    let mut listeners = Listeners::new();
    listeners.insert(Proto::Tcp, None, 22);
    listeners.insert(Proto::Udp, None, 53);
    traps.set_listeners(listeners);
    let ignore = NeverBlockList::new(
        ignore
            .iter()
            .map(|s| Entry {
                net: s.parse().unwrap(),
                reason: Reason::Config,
            })
            .collect(),
    );
    Pipeline::new(
        DetectorConfig::default(),
        traps,
        ignore,
        [ip(LOCAL), ip("2001:db8::1")],
        7,
    )
}

/// Every frame to the pipeline as the engine hands them over; the detections.
fn feed(p: &mut Pipeline, frames: &[Vec<u8>], t: Timestamp) -> Vec<Detection> {
    frames
        .iter()
        .filter_map(|f| p.process_frame(t, LinkType::Ethernet, f))
        .collect()
}

/// A scan of `ports` with `flags`, each probe in fragments of `size` bytes.
fn scan(
    src: &str,
    dst: &str,
    ports: std::ops::Range<u16>,
    flags: u16,
    size: usize,
) -> Vec<Vec<u8>> {
    ports
        .flat_map(|port| {
            let frame = frames::tcp_frame(ip(src), ip(dst), 40000, port, flags);
            frames::fragments(&frame, size, u32::from(port))
        })
        .collect()
}

#[test]
fn nmap_f_and_mtu_16_syn_scans_are_detected_as_tiny_fragments() {
    for size in [8, 16] {
        let mut p = pipeline(&[]);
        let found = feed(&mut p, &scan(SCANNER, LOCAL, 1..8, 0x02, size), at(0));
        assert_eq!(found.len(), 1, "size {size}");
        let d = &found[0];
        assert_eq!(d.addr, ip(SCANNER));
        assert_eq!(d.kinds.to_string(), "tiny-fragment");
        // One privileged port of impossible evidence reaches the threshold (3 × 7 = 21); the
        // responder's min-ports (3) still asks for more before a block.
        assert_eq!(d.ports.len(), 1);
        let c = p.counters();
        assert_eq!((c.reassembled, c.tiny_fragments, c.probes), (7, 7, 7));
        assert_eq!(c.fragments, c.frames);
    }
}

#[test]
fn ipv6_fragments_holding_the_tcp_header_are_reassembled_and_judged() {
    let mut p = pipeline(&[]);
    // 24-byte fragments of a 20-byte header: one frame, not fragmented at all; use UDP.
    let frames: Vec<Vec<u8>> = (100..110)
        .flat_map(|port| {
            let frame =
                frames::udp_frame_with(ip("2001:db8::7"), ip("2001:db8::1"), 1, port, &[0; 40]);
            frames::fragments(&frame, 24, u32::from(port))
        })
        .collect();
    let found = feed(&mut p, &frames, at(0));
    assert_eq!(p.counters().reassembled, 10);
    assert_eq!(
        found.len(),
        1,
        "ten closed privileged UDP ports: 10 × 3 ≥ 21"
    );
    assert_eq!(found[0].kinds.to_string(), "udp");
    // 8-byte IPv6 fragments of a SYN: the kernel drops the first, nothing is judged.
    let mut p = pipeline(&[]);
    let found = feed(
        &mut p,
        &scan("2001:db8::7", "2001:db8::1", 1..8, 0x02, 8),
        at(0),
    );
    assert!(found.is_empty());
    assert_eq!(
        (p.counters().reassembled, p.counters().tiny_fragments),
        (0, 7)
    );
}

#[test]
fn an_ordinary_big_udp_datagram_is_no_probe_and_no_evidence() {
    let mut p = pipeline(&[]);
    // 4 KiB to an open port (DNS over UDP, NFS): reassembled, valid, not a trap.
    let frame = frames::udp_frame_with(ip(SCANNER), ip(LOCAL), 5000, 53, &[0x41; 4096]);
    let frags = frames::fragments(&frame, 1480, 1);
    assert!(feed(&mut p, &frags, at(0)).is_empty());
    let c = *p.counters();
    assert_eq!(
        (c.reassembled, c.tiny_fragments, c.not_trap, c.probes),
        (1, 0, 1, 0)
    );
    // To closed ports: ordinary UDP probes, weighed as any (3 each), not as a fragment trick.
    for (id, port) in [(2, 161), (3, 162)] {
        let frame = frames::udp_frame_with(ip(SCANNER), ip(LOCAL), 5000, port, &[0x41; 4096]);
        assert!(feed(&mut p, &frames::fragments(&frame, 1480, id), at(1)).is_empty());
    }
    assert_eq!(p.counters().probes, 2);
    assert_eq!(p.leaders(1)[0].score, 6);
    assert_eq!(p.leaders(1)[0].kinds.to_string(), "udp");
}

#[test]
fn overlapping_fragments_are_evidence_at_the_port_their_first_fragment_named() {
    let mut p = pipeline(&[]);
    let mut found = Vec::new();
    for port in 1..4u16 {
        let frame = frames::tcp_frame(ip(SCANNER), ip(LOCAL), 40000, port, 0x02);
        let sixteen = frames::fragments(&frame, 16, u32::from(port));
        let eight = frames::fragments(&frame, 8, u32::from(port));
        // Bytes 0-15, then 8-15 again with bytes 16-19 (a fragment across the first's end).
        let mut across = eight[1].clone();
        let last = sixteen[1][34..].to_vec();
        across.extend_from_slice(&last);
        let total = u16::from_be_bytes([across[16], across[17]]) + 4;
        across[16..18].copy_from_slice(&total.to_be_bytes());
        across[20..22].copy_from_slice(&1u16.to_be_bytes()); // offset 8, last fragment
        fix_checksum(&mut across);
        found.extend(feed(
            &mut p,
            &[sixteen[0].clone(), across],
            at(u64::from(port)),
        ));
    }
    assert_eq!(p.counters().fragment_overlaps, 3);
    assert_eq!(p.counters().reassembled, 0);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].kinds.to_string(), "fragment-overlap");
    assert_eq!(found[0].ports.len(), 1, "the threshold at its first port");
}

fn fix_checksum(frame: &mut [u8]) {
    frame[24] = 0;
    frame[25] = 0;
    let mut sum: u32 = frame[14..34]
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let sum = !u16::try_from(sum).unwrap();
    frame[24..26].copy_from_slice(&sum.to_be_bytes());
}

#[test]
fn never_block_unroutable_and_transit_fragments_make_no_state() {
    let mut p = pipeline(&["203.0.113.0/24"]);
    let found = feed(&mut p, &scan(SCANNER, LOCAL, 1..8, 0x02, 8), at(0));
    assert!(found.is_empty());
    assert_eq!(p.counters().never_block, 21, "each fragment");
    assert_eq!(p.reassembly.in_progress(), 0);
    // Unroutable sources and other hosts' datagrams: not kept either.
    feed(&mut p, &scan("0.1.2.3", LOCAL, 1..2, 0x02, 8), at(0));
    feed(
        &mut p,
        &scan("198.18.0.9", "198.51.100.99", 1..2, 0x02, 8),
        at(0),
    );
    assert_eq!(p.counters().unroutable, 3);
    assert_eq!(p.counters().not_local, 3);
    assert_eq!(p.reassembly.in_progress(), 0);
}

#[test]
fn a_lone_first_fragment_is_not_a_probe_and_times_out() {
    let mut p = pipeline(&[]);
    let frames = scan(SCANNER, LOCAL, 1..40, 0x02, 8);
    let firsts: Vec<Vec<u8>> = frames.iter().step_by(3).cloned().collect();
    assert!(feed(&mut p, &firsts, at(0)).is_empty());
    assert_eq!(p.counters().probes, 0);
    assert_eq!(p.reassembly.in_progress(), 16, "the per-/24 bound");
    assert_eq!(p.counters().fragments_dropped, 39 - 16);
    // 30 s later the next frame's tick forgets them.
    feed(&mut p, &firsts[..1], at(31_000));
    assert_eq!(p.counters().fragments_timed_out, 16);
}

#[test]
fn our_own_fragments_are_remembered_as_conversations() {
    let mut p = pipeline(&[]);
    // We send a 3 KiB UDP query from 5353; the peer's answer to it is no probe.
    let query = frames::udp_frame_with(ip(LOCAL), ip(SCANNER), 5353, 7000, &[0; 3000]);
    feed(&mut p, &frames::fragments(&query, 1480, 1), at(0));
    assert_eq!(p.counters().outbound, 1);
    let answer = frames::udp_frame_with(ip(SCANNER), ip(LOCAL), 7000, 5353, &[0; 3000]);
    feed(&mut p, &frames::fragments(&answer, 1480, 2), at(1));
    assert_eq!(p.counters().replies, 1);
    assert_eq!(p.counters().probes, 0);
}

/// Issue 28, red team: a flood of first fragments that never complete, from sources in 64
/// /24s (a forger picks any), fills the reassembler (256 datagrams) and keeps evicting; a
/// real `nmap -f` scan among it, a hundred forged fragments between any two of its own (1 ms
/// at 100,000 frames a second; nmap sends a probe's fragments back to back), is still
/// reassembled and detected, and the reassembler holds no more than its bounds. Frames of one
/// burst share their capture microsecond (one NAPI poll): the oldest datagram is the one that
/// came first, not the first slot among equals, which was often the scanner's newest (it was
/// reassembled 1 time in 7).
#[test]
fn a_flood_of_fragments_that_never_complete_cannot_hide_nmap_f() {
    for step in [10, 0] {
        let us = |n: u32| Timestamp::from_micros(1_000_000_000 + step * u64::from(n));
        let mut p = pipeline(&[]);
        let mut n = 0u32;
        let mut found = Vec::new();
        for f in scan(SCANNER, LOCAL, 1..8, 0x02, 8) {
            for _ in 0..100 {
                n += 1;
                let src = format!("192.0.{}.{}", n % 64, n % 200 + 1);
                let frame = frames::tcp_frame(ip(&src), ip(LOCAL), 40000, 80, 0x02);
                let first = frames::fragments(&frame, 8, 10_000 + n % 50_000)[0].clone();
                found.extend(feed(&mut p, &[first], us(n)));
            }
            found.extend(feed(&mut p, &[f], us(n)));
        }
        assert_eq!(found.len(), 1, "{step} µs: {:?}", p.counters());
        assert_eq!(found[0].addr, ip(SCANNER));
        assert_eq!(found[0].kinds.to_string(), "tiny-fragment");
        assert_eq!(p.counters().reassembled, 7, "{step} µs a frame");
        assert!(p.reassembly.in_progress() <= 256);
        assert!(p.counters().fragments_dropped > 1_000);
    }
}
