//! Any bytes, as a stream of raw IP packets with capture times, through the fragment
//! reassembler: never a panic, never more datagrams in progress than its bound, and every
//! datagram it makes whole parses as a packet would.
//!
//! The input is a series of records: a length (two bytes, big-endian), a time step in
//! milliseconds (one byte), then that many bytes of an IP packet. An IPv4 header's checksum is
//! made right before the packet goes in, so that the fuzzer reaches past the kernel's first
//! check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scansentry::time::Timestamp;
use scansentry::wire::reassembly::{Limits, Outcome, Reassembler, fragment_of};
use scansentry::wire::{self, LinkType, Metadata, Skip};
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        datagrams: 8,
        per_prefix: 3,
        fragments: 6,
        ..Limits::default()
    };
    let mut r = Reassembler::new(limits);
    let mut at = Timestamp::from_micros(1_000_000);
    let mut rest = data;
    while rest.len() >= 3 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        at = at.saturating_add(Duration::from_millis(u64::from(rest[2]) * 100));
        rest = &rest[3..];
        let mut packet = rest[..len.min(rest.len())].to_vec();
        rest = &rest[len.min(rest.len())..];
        fix_ipv4_checksum(&mut packet);
        if wire::parse(LinkType::RawIp, &packet) != Err(Skip::Fragment) {
            continue;
        }
        let Ok(f) = fragment_of(LinkType::RawIp, &packet, Metadata::default()) else {
            continue;
        };
        match r.insert(at, &f) {
            Outcome::Complete(p, _) | Outcome::Overlap(Some(p)) => {
                assert!(p.src == f.src() && p.dst == f.dst());
            }
            _ => {}
        }
        let _ = r.lone(&f);
        assert!(r.in_progress() <= limits.datagrams);
        r.expire(at);
    }
});

fn fix_ipv4_checksum(packet: &mut [u8]) {
    let Some(&first) = packet.first() else {
        return;
    };
    let ihl = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || ihl < 20 || packet.len() < ihl {
        return;
    }
    packet[10] = 0;
    packet[11] = 0;
    let mut sum: u32 = packet[..ihl]
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let sum = !u16::try_from(sum).unwrap_or(0);
    packet[10..12].copy_from_slice(&sum.to_be_bytes());
}
