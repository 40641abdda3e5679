//! Any bytes, as a stream of packets around one host (its SYN+ACKs out, segments and datagrams
//! in, with any sequence numbers, lengths and first payload bytes), through the pipeline's
//! version-probe path: the probe matcher, the first-segment table and the per-source counts.
//! Never a panic, and the tables keep their size.
#![no_main]

use std::net::IpAddr;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use scansentry::detect::DetectorConfig;
use scansentry::detect::traps::{PortSet, TrapMode, Traps};
use scansentry::never_block::NeverBlockList;
use scansentry::pipeline::Pipeline;
use scansentry::time::Timestamp;
use scansentry::wire::shape::Head;
use scansentry::wire::{Direction, Full, Integrity, Packet, Shape, TcpFlags};

const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 1));

fuzz_target!(|data: &[u8]| {
    let traps = Traps::new(TrapMode::Unused, PortSet::new(), PortSet::new(), None);
    let mut p = Pipeline::new(
        DetectorConfig::default(),
        traps,
        NeverBlockList::new(Vec::new()),
        [LOCAL],
        1,
    );
    let mut at = Timestamp::from_micros(1_700_000_000_000_000);
    // Each record: op, source, port (2), sequence (4), payload length (2), head length, head.
    let mut rest = data;
    while rest.len() >= 11 {
        let (fixed, tail) = rest.split_at(11);
        let head_len = usize::from(fixed[10]).min(tail.len()).min(32);
        let (head, tail) = tail.split_at(head_len);
        rest = tail;
        let remote = IpAddr::from([203, 0, 113, fixed[1] & 7]);
        let port = u16::from_be_bytes([fixed[2], fixed[3]]);
        let seq = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
        let mut shape = Shape {
            payload_len: u16::from_be_bytes([fixed[8], fixed[9]]),
            head: Head::new(head),
            ..Shape::default()
        };
        at = at.saturating_add(Duration::from_millis(u64::from(fixed[0] >> 2) * 100));
        let packet = match fixed[0] & 3 {
            0 => {
                shape.ack = seq;
                Full {
                    packet: Packet {
                        direction: Direction::Outgoing,
                        ifindex: None,
                        src: LOCAL,
                        dst: remote,
                        src_port: port,
                        dst_port: 40000,
                        tcp_flags: Some(TcpFlags::SYN | TcpFlags::ACK),
                        window: 64240,
                        other: None,
                    },
                    integrity: Integrity::Valid,
                    shape,
                }
            }
            op => {
                shape.seq = seq;
                Full {
                    packet: Packet {
                        direction: Direction::Incoming,
                        ifindex: None,
                        src: remote,
                        dst: LOCAL,
                        src_port: 40000,
                        dst_port: port,
                        tcp_flags: (op != 2).then_some(TcpFlags::PSH | TcpFlags::ACK),
                        window: 64240,
                        other: None,
                    },
                    integrity: Integrity::Valid,
                    shape,
                }
            }
        };
        let _ = p.process(at, Ok(packet));
    }
});
