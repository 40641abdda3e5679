//! SCTP packets (IP protocol 132; RFC 9260): the common header, the first chunk's type, and the
//! CRC32c checksum the kernel checks. **Pure**, no allocation.
//!
//! Only what says whether a packet opens an association is read: an INIT (nmap `-sY`) or a
//! COOKIE ECHO (nmap `-sZ`) is what a scan sends; every other chunk (DATA, SACK, HEARTBEAT,
//! ABORT, INIT ACK, …) belongs to an association. An INIT must carry the verification tag 0
//! (RFC 9260 §8.5.1): the kernel discards one that does not, so it is no probe.

/// The length of the SCTP common header: source port, destination port, verification tag,
/// checksum.
pub const COMMON_HEADER_LEN: usize = 12;

/// A chunk's header: type, flags, length.
const CHUNK_HEADER_LEN: usize = 4;

/// The type of an SCTP chunk, as RFC 9260 §3.2 numbers them (only those read here are named).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChunkType(pub u8);

impl ChunkType {
    /// INIT: opens an association.
    pub const INIT: ChunkType = ChunkType(1);
    /// INIT ACK: the answer of an endpoint that listens on the port.
    pub const INIT_ACK: ChunkType = ChunkType(2);
    /// ABORT: the answer of a host with SCTP and no endpoint on the port ("out of the blue").
    pub const ABORT: ChunkType = ChunkType(6);
    /// COOKIE ECHO: the third step of the handshake, after an INIT ACK.
    pub const COOKIE_ECHO: ChunkType = ChunkType(10);
}

/// What was read of one SCTP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Sctp {
    /// The first chunk's type.
    pub chunk: ChunkType,
    /// Whether the verification tag is zero (an INIT's must be).
    pub zero_tag: bool,
}

/// Why an SCTP packet could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SctpError {
    /// Shorter than the common header and one chunk header.
    Truncated,
}

/// Reads the common header and the first chunk's type from `segment` (the IP payload). Returns
/// the ports and what was read.
///
/// # Errors
///
/// [`SctpError::Truncated`] when the segment holds less than the common header and a chunk
/// header (16 bytes).
pub fn parse(segment: &[u8]) -> Result<(u16, u16, Sctp), SctpError> {
    let Some(h) = segment.get(..COMMON_HEADER_LEN + CHUNK_HEADER_LEN) else {
        return Err(SctpError::Truncated);
    };
    let src = u16::from_be_bytes([h[0], h[1]]);
    let dst = u16::from_be_bytes([h[2], h[3]]);
    let zero_tag = h[4..8] == [0; 4];
    Ok((
        src,
        dst,
        Sctp {
            chunk: ChunkType(h[COMMON_HEADER_LEN]),
            zero_tag,
        },
    ))
}

/// Whether `p` is an SCTP packet whose first chunk is an INIT ACK: sent by this host, the
/// answer of an endpoint listening on its source port.
pub fn is_init_ack(p: &super::Packet) -> bool {
    matches!(p.other, Some(super::Other::Sctp(s)) if s.chunk == ChunkType::INIT_ACK)
}

/// Whether the CRC32c of `segment` (the whole SCTP packet, as the IP header declares its
/// length) is the one its header carries: what the kernel checks before any association sees
/// the packet (`sctp_rcv`).
pub fn checksum_ok(segment: &[u8]) -> bool {
    let Some(stored) = segment.get(8..12) else {
        return false;
    };
    // Linux stores the CRC little-endian (`sctp_compute_cksum`: `cpu_to_le32(~crc)`).
    u32::from_le_bytes([stored[0], stored[1], stored[2], stored[3]]) == crc32c(segment)
}

/// The CRC32c of an SCTP packet, its checksum field (bytes 8-11) counted as zero.
fn crc32c(segment: &[u8]) -> u32 {
    let mut crc = !0u32;
    for (i, &b) in segment.iter().enumerate() {
        let b = if (8..12).contains(&i) { 0 } else { b };
        crc = CRC32C[usize::from(crc.to_le_bytes()[0] ^ b)] ^ (crc >> 8);
    }
    !crc
}

/// The CRC32c (Castagnoli, reflected polynomial 0x82F63B78) table, one byte at a time: SCTP
/// probes are a few dozen bytes, so a table of 1 KiB is enough.
const CRC32C: [u32; 256] = {
    let mut table = [0u32; 256];
    let (mut i, mut n) = (0usize, 0u32);
    while i < 256 {
        let mut c = n;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
        n += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 3720 §B.4's test vector: 32 bytes of zeros have the CRC32c 0x8A9136AA (the
    /// checksum field, counted as zero, is zero there anyway).
    #[test]
    fn crc32c_matches_the_rfc_test_vector() {
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
    }

    /// An INIT shaped as nmap 7.93's `-sY` sends it (no parameters), its CRC32c checked, then
    /// spoilt.
    #[test]
    fn an_nmap_init_reads_and_its_checksum_holds() {
        let mut init = nmap_init();
        let (src, dst, sctp) = parse(&init).unwrap();
        assert_eq!((src, dst), (52_133, 80));
        assert_eq!(sctp.chunk, ChunkType::INIT);
        assert!(sctp.zero_tag);
        assert!(checksum_ok(&init));
        init[20] ^= 1;
        assert!(!checksum_ok(&init));
    }

    #[test]
    fn short_segments_are_truncated_never_a_panic() {
        for len in 0..16 {
            assert_eq!(parse(&nmap_init()[..len]), Err(SctpError::Truncated));
            let _ = checksum_ok(&nmap_init()[..len]);
        }
        assert!(!checksum_ok(&[0; 11]));
    }

    /// The bytes of an INIT with its checksum filled in.
    pub(crate) fn nmap_init() -> Vec<u8> {
        let mut p = vec![
            0xcb, 0xa5, 0x00, 0x50, // ports 52133 → 80
            0, 0, 0, 0, // verification tag
            0, 0, 0, 0, // checksum, filled below
            1, 0, 0, 20, // INIT, flags, length 20
            0x12, 0x34, 0x56, 0x78, // initiate tag
            0, 0, 0x80, 0, // a_rwnd
            0, 10, 0x08, 0, // outbound streams, inbound streams
            0x9a, 0xbc, 0xde, 0xf0, // initial TSN
        ];
        let crc = crc32c(&p);
        p[8..12].copy_from_slice(&crc.to_le_bytes());
        p
    }
}
