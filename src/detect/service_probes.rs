//! nmap's service probes, recognised from the first payload bytes of a connection (TCP) or of
//! a datagram (UDP). **Pure**, a fixed table, no allocation.
//!
//! Source: nmap's own documentation of its version detection, the `nmap-service-probes` file
//! Debian's nmap 7.93 ships in `/usr/share/nmap` (its `Probe` lines; "Service and Application
//! Version Detection", <https://nmap.org/book/vscan-fileformat.html>). The table below keeps,
//! for each probe `nmap -sV` sends at its default intensity (7: every probe of rarity 7 or
//! less, and those whose `ports` list the probed port), its name, its length and its first
//! [`HEAD_LEN`] bytes: what a capture's head of the payload is compared with. It is not a copy
//! of the file: no match lines, no probe past its first 32 bytes.
//!
//! A payload is a probe when its declared length is the probe's and its first bytes are the
//! probe's (all of them up to 32): exact, as nmap's probes are fixed strings. Each probe says
//! whether an ordinary client may send the same bytes ([`Origin::Plain`]: a minimal HTTP/1.0
//! request, HAProxy's `OPTIONS / HTTP/1.0` health check, `ntpdate`'s request, a Java RMI
//! handshake) or only nmap does ([`Origin::NmapOnly`]: its fixed TLS randoms `random1random2…`,
//! the `mstshash=nmap` cookie, `sip:nm`, a DNS query with ID 6, the RPC call with nmap's XID,
//! the 404 path `/nice%20ports%2C/Tri%6Eity.txt%2ebak`, an RTSP request without `CSeq`).
//!
//! nmap's NULL probe (connect, send nothing, wait up to 6 s for a banner) has no payload and is
//! not in the table: a connection closed without a byte sent is what every TCP health check and
//! `nc -z` makes. The wait shows only in what follows: when nothing came, nmap sends its next
//! probe on the same connection, which is then that connection's first segment, and recognised.

use crate::wire::Proto;
use crate::wire::shape::HEAD_LEN;

/// Who else than nmap may send a probe's exact bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Ordinary software sends the same bytes (a health check, a minimal client): evidence only
    /// together with others.
    Plain,
    /// Bytes only nmap sends (its fixed randoms, names and IDs).
    NmapOnly,
}

/// One of nmap's service probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceProbe {
    /// nmap's name for it (`GetRequest`).
    pub name: &'static str,
    /// TCP (sent on a connection) or UDP.
    pub proto: Proto,
    /// The whole probe's length in bytes.
    pub len: u16,
    /// Its first bytes (all of them when it is shorter than [`HEAD_LEN`]).
    pub head: &'static [u8],
    /// Whether ordinary software sends the same bytes.
    pub origin: Origin,
}

impl ServiceProbe {
    /// Whether a payload of `payload_len` bytes whose first bytes are `head` (as far as the
    /// capture holds them) is this probe: the same length and the same first bytes, all of them
    /// up to [`HEAD_LEN`]; a head the snap length cut shorter than that is no match.
    pub fn matches(&self, head: &[u8], payload_len: u16) -> bool {
        payload_len == self.len && head.get(..self.head.len()) == Some(self.head)
    }

    /// How much one probe of this origin weighs in [`crate::detect::version`]'s score.
    pub fn weight(&self) -> u8 {
        match self.origin {
            Origin::Plain => 1,
            Origin::NmapOnly => 2,
        }
    }
}

use Origin::{NmapOnly, Plain};
use Proto::{Tcp, Udp};

const fn probe(
    name: &'static str,
    proto: Proto,
    len: u16,
    head: &'static [u8],
    origin: Origin,
) -> ServiceProbe {
    ServiceProbe {
        name,
        proto,
        len,
        head,
        origin,
    }
}

/// The TCP probes, in the order `nmap-service-probes` lists them.
pub const TCP: &[ServiceProbe] = &[
    probe("GenericLines", Tcp, 4, b"\r\n\r\n", Plain),
    probe("GetRequest", Tcp, 18, b"GET / HTTP/1.0\r\n\r\n", Plain),
    probe("HTTPOptions", Tcp, 22, b"OPTIONS / HTTP/1.0\r\n\r\n", Plain),
    probe("RTSPRequest", Tcp, 22, b"OPTIONS / RTSP/1.0\r\n\r\n", NmapOnly),
    probe("RPCCheck", Tcp, 44, b"\x80\x00\x00(r\xfe\x1d\x13\x00\x00\x00\x00\x00\x00\x00\x02\x00\x01\x86\xa0\x00\x01\x97|\x00\x00\x00\x00\x00\x00\x00\x00", NmapOnly),
    probe("DNSVersionBindReqTCP", Tcp, 32, b"\x00\x1e\x00\x06\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07version\x04bind\x00\x00\x10\x00\x03", NmapOnly),
    probe("DNSStatusRequestTCP", Tcp, 14, b"\x00\x0c\x00\x00\x10\x00\x00\x00\x00\x00\x00\x00\x00\x00", NmapOnly),
    probe("Help", Tcp, 6, b"HELP\r\n", Plain),
    probe("SSLSessionReq", Tcp, 88, b"\x16\x03\x00\x00S\x01\x00\x00O\x03\x00?G\xd7\xf7\xba,\xee\xea\xb2`~\xf3\x00\xfd\x82{\xb9\xd5\x96\xc8w", NmapOnly),
    probe("TerminalServerCookie", Tcp, 42, b"\x03\x00\x00*%\xe0\x00\x00\x00\x00\x00Cookie: mstshash=nmap", NmapOnly),
    probe("TLSSessionReq", Tcp, 110, b"\x16\x03\x00\x00i\x01\x00\x00e\x03\x03U\x1c\xa7\xe4random1random2ran", NmapOnly),
    probe("Kerberos", Tcp, 117, b"\x00\x00\x00qj\x81n0\x81k\xa1\x03\x02\x01\x05\xa2\x03\x02\x01\n\xa4\x81^0\\\xa0\x07\x03\x05\x00P\x80", NmapOnly),
    probe("SMBProgNeg", Tcp, 168, b"\x00\x00\x00\xa4\xffSMBr\x00\x00\x00\x00\x08\x01@\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00@\x06", Plain),
    probe("X11Probe", Tcp, 12, b"l\x00\x0b\x00\x00\x00\x00\x00\x00\x00\x00\x00", Plain),
    probe("FourOhFourRequest", Tcp, 53, b"GET /nice%20ports%2C/Tri%6Eity.t", NmapOnly),
    probe("LPDString", Tcp, 9, b"\x01default\n", Plain),
    probe("LDAPSearchReq", Tcp, 51, b"0\x84\x00\x00\x00-\x02\x01\x07c\x84\x00\x00\x00$\x04\x00\n\x01\x00\n\x01\x00\x02\x01\x00\x02\x01d\x01\x01\x00", Plain),
    probe("LDAPBindReq", Tcp, 14, b"0\x0c\x02\x01\x01`\x07\x02\x01\x02\x04\x00\x80\x00", Plain),
    probe("SIPOptions", Tcp, 223, b"OPTIONS sip:nm SIP/2.0\r\nVia: SIP", NmapOnly),
    probe("LANDesk-RC", Tcp, 16, b"TNMP\x04\x00\x00\x00TNME\x00\x00\x04\x00", Plain),
    probe("TerminalServer", Tcp, 11, b"\x03\x00\x00\x0b\x06\xe0\x00\x00\x00\x00\x00", Plain),
    probe("NCP", Tcp, 23, b"DmdT\x00\x00\x00\x17\x00\x00\x00\x01\x00\x00\x00\x00\x11\x11\x00\xff\x01\xff\x13", Plain),
    probe("NotesRPC", Tcp, 60, b":\x00\x00\x00/\x00\x00\x00\x02\x00\x00@\x02\x0f\x00\x01\x00=\x05\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00/", Plain),
    probe("JavaRMI", Tcp, 7, b"JRMI\x00\x02K", Plain),
    probe("WMSRequest", Tcp, 175, b"\x01\x00\x00\xfd\xce\xfa\x0b\xb0\xa0\x00\x00\x00MMS\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x12", Plain),
    probe("oracle-tns", Tcp, 90, b"\x00Z\x00\x00\x01\x00\x00\x00\x016\x01,\x00\x00\x08\x00\x7f\xff\x7f\x08\x00\x00\x00\x01\x00 \x00:\x00\x00\x00\x00", Plain),
    probe("ms-sql-s", Tcp, 52, b"\x12\x01\x004\x00\x00\x00\x00\x00\x00\x15\x00\x06\x01\x00\x1b\x00\x01\x02\x00\x1c\x00\x0c\x03\x00(\x00\x04\xff\x08\x00\x01", Plain),
    probe("afp", Tcp, 18, b"\x00\x03\x00\x01\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x0f\x00", Plain),
    probe("giop", Tcp, 48, b"GIOP\x01\x00\x01\x00$\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x06\x00\x00\x00abcd", NmapOnly),
    probe("Socks5", Tcp, 41, b"\x05\x04\x00\x01\x02\x80\x05\x01\x00\x03\ngoogle.com\x00PGET / HTT", NmapOnly),
    probe("Socks4", Tcp, 13, b"\x04\x01\x00\x16\x7f\x00\x00\x01root\x00", Plain),
];

/// The UDP probes, in the order `nmap-service-probes` lists them.
pub const UDP: &[ServiceProbe] = &[
    probe("RPCCheck", Udp, 40, b"r\xfe\x1d\x13\x00\x00\x00\x00\x00\x00\x00\x02\x00\x01\x86\xa0\x00\x01\x97|\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", NmapOnly),
    probe("DNSVersionBindReq", Udp, 30, b"\x00\x06\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07version\x04bind\x00\x00\x10\x00\x03", NmapOnly),
    probe("DNSStatusRequest", Udp, 12, b"\x00\x00\x10\x00\x00\x00\x00\x00\x00\x00\x00\x00", NmapOnly),
    probe("Help", Udp, 8, b"help\r\n\r\n", Plain),
    probe("NBTStat", Udp, 50, b"\x80\xf0\x00\x10\x00\x01\x00\x00\x00\x00\x00\x00 CKAAAAAAAAAAAAAAAAA", Plain),
    probe("SNMPv1public", Udp, 51, b"0\x82\x00/\x02\x01\x00\x04\x06public\xa0\x82\x00 \x02\x04L3\xa7V\x02\x01\x00\x02\x01\x000", NmapOnly),
    probe("SNMPv3GetRequest", Udp, 60, b"0:\x02\x01\x030\x0f\x02\x02Ji\x02\x03\x00\xff\xe3\x04\x01\x04\x02\x01\x03\x04\x100\x0e\x04\x00\x02\x01\x00\x02", NmapOnly),
    probe("xdmcp", Udp, 7, b"\x00\x01\x00\x02\x00\x01\x00", Plain),
    probe("Sqlping", Udp, 1, b"\x02", Plain),
    probe("NTPRequest", Udp, 48, b"\xe3\x00\x04\xfa\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", Plain),
    probe("SIPOptions", Udp, 229, b"OPTIONS sip:nm SIP/2.0\r\nVia: SIP", NmapOnly),
    probe("Kerberos", Udp, 113, b"j\x81n0\x81k\xa1\x03\x02\x01\x05\xa2\x03\x02\x01\n\xa4\x81^0\\\xa0\x07\x03\x05\x00P\x80\x00\x10\xa2\x04", NmapOnly),
];

/// The probe a payload is, if it is one: `proto`, the payload's declared length and its first
/// bytes as the capture holds them. An empty payload is none.
pub fn recognise(proto: Proto, head: &[u8], payload_len: u16) -> Option<&'static ServiceProbe> {
    let first = *head.first()?;
    let table = match proto {
        Proto::Tcp => TCP,
        Proto::Udp => UDP,
        // nmap's version detection speaks TCP and UDP only.
        Proto::Sctp | Proto::Ip => return None,
    };
    table
        .iter()
        .find(|p| p.head.first() == Some(&first) && p.matches(head, payload_len))
}

/// The first four payload bytes every TCP probe of the table begins with, as big-endian words,
/// without repeats: what the kernel capture filter lets through of a connection's data
/// segments ([`crate::capture::bpf::PROBES`]). Probes shorter than four bytes have none (there
/// are none among the TCP probes; a test holds it).
pub fn tcp_prefixes() -> Vec<u32> {
    let mut words: Vec<u32> = TCP
        .iter()
        .filter_map(|p| Some(u32::from_be_bytes(p.head.get(..4)?.try_into().ok()?)))
        .collect();
    words.sort_unstable();
    words.dedup();
    words
}

const _: () = {
    // Every head fits a capture's head.
    let mut i = 0;
    while i < TCP.len() {
        assert!(TCP[i].head.len() <= HEAD_LEN);
        i += 1;
    }
};

#[cfg(test)]
mod tests {
    use super::*;

    fn by_name(table: &[ServiceProbe], name: &str) -> ServiceProbe {
        *table.iter().find(|p| p.name == name).expect(name)
    }

    #[test]
    fn every_head_is_the_probe_or_its_first_32_bytes() {
        for p in TCP.iter().chain(UDP) {
            let expected = usize::from(p.len).min(HEAD_LEN);
            assert_eq!(p.head.len(), expected, "{}", p.name);
            assert_eq!(recognise(p.proto, p.head, p.len), Some(p), "{}", p.name);
        }
        for p in TCP {
            assert!(
                p.head.len() >= 4,
                "{}: shorter than the filter's word",
                p.name
            );
        }
    }

    #[test]
    fn an_exact_probe_is_recognised_and_an_ordinary_request_is_not() {
        let get = by_name(TCP, "GetRequest");
        assert_eq!(
            recognise(Tcp, b"GET / HTTP/1.0\r\n\r\n", 18).map(|p| p.name),
            Some("GetRequest")
        );
        assert_eq!(get.origin, Plain);
        // What curl sends: the same start, more after it.
        let curl = b"GET / HTTP/1.0\r\nHost: 198.51.100.1\r\nUser-Agent: curl/7.88.1\r\n\r\n";
        assert_eq!(
            recognise(Tcp, &curl[..HEAD_LEN], u16::try_from(curl.len()).unwrap()),
            None
        );
        assert_eq!(recognise(Tcp, b"GET / HTTP/1.1\r\n", 78), None);
        // The same bytes over UDP are no TCP probe, and nothing is no probe.
        assert_eq!(recognise(Udp, b"GET / HTTP/1.0\r\n\r\n", 18), None);
        assert_eq!(recognise(Tcp, b"", 0), None);
        // Longer probes: their first 32 bytes and their length.
        let tls = by_name(TCP, "TLSSessionReq");
        assert_eq!(tls.origin, NmapOnly);
        assert!(tls.matches(tls.head, 110));
        assert!(!tls.matches(tls.head, 111), "another length");
        assert!(
            !tls.matches(&tls.head[..20], 110),
            "a head cut by the snap length is no match"
        );
        let mut other = tls.head.to_vec();
        other[20] ^= 1;
        assert!(!tls.matches(&other, 110));
    }

    #[test]
    fn nmap_only_probes_carry_nmaps_own_marks() {
        for (name, mark) in [
            ("TLSSessionReq", &b"random1"[..]),
            ("TerminalServerCookie", b"mstshash=nmap"),
            ("SIPOptions", b"sip:nm"),
            ("FourOhFourRequest", b"/nice%20ports"),
        ] {
            let p = by_name(TCP, name);
            assert_eq!(p.origin, NmapOnly, "{name}");
            assert!(p.head.windows(mark.len()).any(|w| w == mark), "{name}");
        }
        // A DNS query with ID 6 for version.bind, class CHAOS.
        let dns = by_name(UDP, "DNSVersionBindReq");
        assert_eq!(&dns.head[..2], &[0, 6]);
        assert_eq!(
            by_name(TCP, "DNSVersionBindReqTCP").head[..4],
            [0, 0x1e, 0, 6]
        );
    }

    #[test]
    fn the_filter_words_are_the_probes_first_four_bytes() {
        let words = tcp_prefixes();
        assert!(words.contains(&u32::from_be_bytes(*b"GET ")));
        assert!(words.contains(&u32::from_be_bytes(*b"OPTI")));
        assert!(
            words.contains(&0x1603_0000),
            "SSLSessionReq and TLSSessionReq"
        );
        assert!(words.len() < TCP.len(), "shared beginnings are one word");
        assert!(words.windows(2).all(|w| w[0] < w[1]));
    }
}
