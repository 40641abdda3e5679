//! Any bytes, as a frame of each link type, through the parser: a packet or a reason to skip
//! it, never a panic and never a read past the end; a packet through the tool-fingerprint
//! rules (issue 28), never a panic, and judged the same from the frame's fields one at a time
//! as from its whole shape (issue 29); the IPv4 fast path reads what etherparse reads. The same bytes as an SCTP packet (issue 28: its common
//! header, first chunk and CRC32c), and, read as raw IP, a packet's protocol and probe kind
//! agree (an IP protocol's number, its "port", is one byte).
#![no_main]

use libfuzzer_sys::fuzz_target;
use scansentry::wire::{self, Fields, LinkType};

/// Every field a rule reads.
fn same_fields(f: &impl Fields) -> (u16, bool, u32, Vec<u8>, u16, Vec<u8>) {
    let (options, head) = (f.options().to_vec(), f.head().to_vec());
    (f.ip_id(), f.dont_fragment(), f.seq(), options, f.payload_len(), head)
}

fuzz_target!(|data: &[u8]| {
    for link in [
        LinkType::Ethernet,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
        LinkType::RawIp,
        LinkType::Loopback,
    ] {
        if let Ok(seen) = wire::read(link, data, wire::Metadata::default()) {
            // The fields the rules read one at a time from the frame are the shape's.
            let (fields, shape) = (seen.fields(), seen.shape());
            assert_eq!(same_fields(&fields), same_fields(&shape));
            use scansentry::detect::fingerprint::recognise;
            assert_eq!(recognise(&seen.packet, &fields), recognise(&seen.packet, &shape));
            // The details read lazily are the ones read at once.
            let lazy = wire::Lazy::from(seen);
            assert_eq!(lazy.integrity(), seen.integrity());
            assert_eq!(*lazy.shape(), seen.shape());
            assert_eq!(wire::parse(link, data), Ok(seen.packet));
        }
    }
    for link in [LinkType::Ethernet, LinkType::RawIp] {
        assert!(wire::fast_path_agrees(link, data));
    }
    let _ = wire::sctp::parse(data);
    let _ = wire::sctp::checksum_ok(data);
    if let Ok(p) = wire::parse(LinkType::RawIp, data) {
        match p.proto() {
            wire::Proto::Ip => {
                assert!(p.dst_port <= 255 && p.src_port == p.dst_port);
                assert_eq!(p.probe_kind(), Some(wire::ProbeKind::IpProtocol));
            }
            wire::Proto::Sctp => assert!(p.tcp_flags.is_none()),
            wire::Proto::Tcp | wire::Proto::Udp => assert!(p.other.is_none()),
        }
    }
});
