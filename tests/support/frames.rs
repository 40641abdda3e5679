//! Synthetic frames and capture files for tests and benchmarks, built with etherparse's
//! `PacketBuilder` (so they are independent of our own parser).

use std::net::IpAddr;
use std::path::Path;

use etherparse::{PacketBuilder, TcpHeader};

const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xa];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0xb];

/// An Ethernet frame holding a TCP segment with the raw `flags` (FIN = 0x01 … CWR = 0x80).
pub fn tcp_frame(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, flags: u16) -> Vec<u8> {
    let mut h = TcpHeader::new(sport, dport, 0x1234_5678, 1024);
    h.fin = flags & 0x01 != 0;
    h.syn = flags & 0x02 != 0;
    h.rst = flags & 0x04 != 0;
    h.psh = flags & 0x08 != 0;
    h.ack = flags & 0x10 != 0;
    h.urg = flags & 0x20 != 0;
    h.ece = flags & 0x40 != 0;
    h.cwr = flags & 0x80 != 0;
    let mut out = Vec::with_capacity(80);
    let eth = PacketBuilder::ethernet2(MAC_A, MAC_B);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => eth
            .ipv4(s.octets(), d.octets(), 64)
            .tcp_header(h)
            .write(&mut out, &[]),
        (IpAddr::V6(s), IpAddr::V6(d)) => eth
            .ipv6(s.octets(), d.octets(), 64)
            .tcp_header(h)
            .write(&mut out, &[]),
        _ => panic!("mixed address families"),
    }
    .expect("writing to a Vec cannot fail");
    out
}

/// An Ethernet frame holding an empty UDP datagram.
pub fn udp_frame(src: IpAddr, dst: IpAddr, sport: u16, dport: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    let eth = PacketBuilder::ethernet2(MAC_A, MAC_B);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => eth
            .ipv4(s.octets(), d.octets(), 64)
            .udp(sport, dport)
            .write(&mut out, &[]),
        (IpAddr::V6(s), IpAddr::V6(d)) => eth
            .ipv6(s.octets(), d.octets(), 64)
            .udp(sport, dport)
            .write(&mut out, &[]),
        _ => panic!("mixed address families"),
    }
    .expect("writing to a Vec cannot fail");
    out
}

/// An Ethernet frame holding an IP packet of `protocol` with `payload` (issue 28: SCTP, GRE,
/// ESP, an IP protocol scan's empty packets).
pub fn ip_frame(src: IpAddr, dst: IpAddr, protocol: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + payload.len());
    let eth = PacketBuilder::ethernet2(MAC_A, MAC_B);
    let protocol = etherparse::IpNumber(protocol);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => eth
            .ipv4(s.octets(), d.octets(), 64)
            .write(&mut out, protocol, payload),
        (IpAddr::V6(s), IpAddr::V6(d)) => eth
            .ipv6(s.octets(), d.octets(), 64)
            .write(&mut out, protocol, payload),
        _ => panic!("mixed address families"),
    }
    .expect("writing to a Vec cannot fail");
    out
}

/// An Ethernet frame holding an SCTP packet (RFC 9260) whose one chunk is of type `chunk` (1
/// INIT, 2 INIT ACK, 6 ABORT, 10 COOKIE ECHO) with 16 bytes of value, verification tag `tag`,
/// and its CRC32c computed here, bit by bit (apart from the parser's table).
pub fn sctp_frame(
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    chunk: u8,
    tag: u32,
) -> Vec<u8> {
    let mut p = Vec::with_capacity(32);
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&tag.to_be_bytes());
    p.extend_from_slice(&[0; 4]);
    p.extend_from_slice(&[chunk, 0, 0, 20]);
    p.extend_from_slice(&[0x12, 0x34, 0x56, 0x78, 0, 1, 0, 0, 0, 10, 0, 10, 0, 0, 0, 1]);
    let mut crc = !0u32;
    for &b in &p {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    p[8..12].copy_from_slice(&(!crc).to_le_bytes());
    ip_frame(src, dst, 132, &p)
}

/// `frame` (Ethernet, IPv4, TCP or UDP) with its transport checksum replaced by the sum of
/// the pseudo-header alone, as a sender's stack leaves it for the card to finish (checksum
/// offload): what a veth peer's stack sends, and what a forger can send from anywhere.
pub fn pseudo_header_only(mut frame: Vec<u8>) -> Vec<u8> {
    let ip = &frame[14..];
    let header = usize::from(ip[0] & 0x0f) * 4;
    let proto = ip[9];
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let mut sum: u32 = ip[12..20]
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    sum += u32::from(proto) + u32::try_from(total - header).expect("a small segment");
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let at = 14 + header + if proto == 6 { 16 } else { 6 };
    frame[at..at + 2].copy_from_slice(&u16::try_from(sum).expect("folded").to_be_bytes());
    frame
}

/// `frame` (Ethernet, IPv6) with a destination options header (8 bytes: one PadN option)
/// between the IPv6 header and what followed it. The transport checksum does not cover
/// extension headers, so it stays right.
pub fn with_destination_options(mut frame: Vec<u8>) -> Vec<u8> {
    const DESTINATION_OPTIONS: u8 = 60;
    let ip = 14;
    assert_eq!(frame[ip] >> 4, 6, "an IPv6 frame");
    let next = std::mem::replace(&mut frame[ip + 6], DESTINATION_OPTIONS);
    let payload = u16::from_be_bytes([frame[ip + 4], frame[ip + 5]]) + 8;
    frame[ip + 4..ip + 6].copy_from_slice(&payload.to_be_bytes());
    frame.splice(ip + 40..ip + 40, [next, 0, 1, 4, 0, 0, 0, 0]);
    frame
}

/// An Ethernet frame holding a UDP datagram with `payload`.
pub fn udp_frame_with(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + payload.len());
    let eth = PacketBuilder::ethernet2(MAC_A, MAC_B);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => eth
            .ipv4(s.octets(), d.octets(), 64)
            .udp(sport, dport)
            .write(&mut out, payload),
        (IpAddr::V6(s), IpAddr::V6(d)) => eth
            .ipv6(s.octets(), d.octets(), 64)
            .udp(sport, dport)
            .write(&mut out, payload),
        _ => panic!("mixed address families"),
    }
    .expect("writing to a Vec cannot fail");
    out
}

/// `frame` (Ethernet, IPv4 or IPv6 without extension headers) split into IP fragments of
/// `size` bytes of payload each (a multiple of 8; the last one shorter), in order, with the
/// identification `id`, as `nmap -f` (8) and `--mtu 16` (16) send them.
pub fn fragments(frame: &[u8], size: usize, id: u32) -> Vec<Vec<u8>> {
    assert!(
        size > 0 && size.is_multiple_of(8),
        "fragments hold multiples of 8 bytes"
    );
    let (eth, ip) = frame.split_at(14);
    let v6 = ip[0] >> 4 == 6;
    let header_len = if v6 {
        40
    } else {
        usize::from(ip[0] & 0x0f) * 4
    };
    let (header, payload) = ip.split_at(header_len);
    let chunks: Vec<&[u8]> = payload.chunks(size).collect();
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let more = i + 1 < chunks.len();
            let offset = u16::try_from(i * size).expect("a datagram under 64 KiB");
            let mut out = eth.to_vec();
            let mut h = header.to_vec();
            if v6 {
                let next = std::mem::replace(&mut h[6], 44);
                let len = u16::try_from(8 + chunk.len()).expect("small");
                h[4..6].copy_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&h);
                out.extend_from_slice(&[next, 0]);
                out.extend_from_slice(&(offset | u16::from(more)).to_be_bytes());
                out.extend_from_slice(&id.to_be_bytes());
            } else {
                let total = u16::try_from(header_len + chunk.len()).expect("small");
                h[2..4].copy_from_slice(&total.to_be_bytes());
                h[4..6]
                    .copy_from_slice(&u16::try_from(id & 0xffff).expect("16 bits").to_be_bytes());
                let flags = (offset / 8) | if more { 0x2000 } else { 0 };
                h[6..8].copy_from_slice(&flags.to_be_bytes());
                h[10..12].copy_from_slice(&[0, 0]);
                let mut sum: u32 = h
                    .chunks(2)
                    .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
                    .sum();
                while sum > 0xffff {
                    sum = (sum & 0xffff) + (sum >> 16);
                }
                let sum = !u16::try_from(sum).expect("folded");
                h[10..12].copy_from_slice(&sum.to_be_bytes());
                out.extend_from_slice(&h);
            }
            out.extend_from_slice(chunk);
            out
        })
        .collect()
}

/// Writes Ethernet frames with their capture times (microseconds since the epoch) as a pcap file.
pub fn write_pcap(path: &Path, frames: &[(u64, Vec<u8>)]) {
    let dead = pcap::Capture::dead(pcap::Linktype::ETHERNET).expect("pcap_open_dead");
    let mut file = dead.savefile(path).expect("create the capture file");
    for (micros, data) in frames {
        let header = pcap::PacketHeader {
            ts: libc_timeval(*micros),
            caplen: u32::try_from(data.len()).expect("small frame"),
            len: u32::try_from(data.len()).expect("small frame"),
        };
        file.write(&pcap::Packet::new(&header, data));
    }
    file.flush().expect("flush the capture file");
}

fn libc_timeval(micros: u64) -> libc::timeval {
    let secs = i64::try_from(micros / 1_000_000).expect("fits");
    let usecs = i64::try_from(micros % 1_000_000).expect("fits");
    libc::timeval {
        tv_sec: secs,
        tv_usec: usecs,
    }
}
