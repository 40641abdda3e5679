//! The portmapper's dump (RFC 1833, `PMAPPROC_DUMP`, version 2): which RPC program listens on
//! which port. [`dump_call`] and [`parse_dump_reply`] are **pure** (XDR, tested on recorded
//! bytes); [`query`] asks the local rpcbind over UDP.

use std::io;
use std::time::Duration;

use crate::wire::Proto;

/// One mapping: program, version, protocol, port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// RPC program number.
    pub program: u32,
    /// Its version.
    pub version: u32,
    /// TCP or UDP.
    pub proto: Proto,
    /// The port.
    pub port: u16,
}

const PMAP_PROGRAM: u32 = 100_000;
const PMAP_VERSION: u32 = 2;
const PMAPPROC_DUMP: u32 = 4;
/// Most mappings read from one answer (a bound on what a local daemon can make us hold).
pub const MAX_MAPPINGS: usize = 4096;

/// The call: XID, CALL, RPC version 2, program 100000 version 2 procedure DUMP, no
/// credentials.
pub fn dump_call(xid: u32) -> Vec<u8> {
    let words = [
        xid,
        0,
        2,
        PMAP_PROGRAM,
        PMAP_VERSION,
        PMAPPROC_DUMP,
        0,
        0,
        0,
        0,
    ];
    words.iter().flat_map(|w| w.to_be_bytes()).collect()
}

/// The mappings of a reply to [`dump_call`] with `xid`.
///
/// # Errors
///
/// A reply to another call, a refused call, or a malformed one, said in a few words.
pub fn parse_dump_reply(xid: u32, reply: &[u8]) -> Result<Vec<Mapping>, String> {
    let mut r = Reader(reply);
    if r.word()? != xid {
        return Err("a reply to another call".into());
    }
    if r.word()? != 1 {
        return Err("not a reply".into());
    }
    if r.word()? != 0 {
        return Err("the call was denied".into());
    }
    // The verifier: flavour, then opaque body (length-prefixed, padded to 4).
    let _flavour = r.word()?;
    let len = usize::try_from(r.word()?).map_err(|_| "bad verifier")?;
    r.skip(len.next_multiple_of(4))?;
    match r.word()? {
        0 => {}
        stat => return Err(format!("the call was not accepted (status {stat})")),
    }
    let mut mappings = Vec::new();
    while r.word()? == 1 {
        if mappings.len() == MAX_MAPPINGS {
            return Err(format!("more than {MAX_MAPPINGS} mappings"));
        }
        let program = r.word()?;
        let version = r.word()?;
        let proto = match r.word()? {
            6 => Some(Proto::Tcp),
            17 => Some(Proto::Udp),
            _ => None,
        };
        let port = u16::try_from(r.word()?).map_err(|_| "a port above 65535")?;
        if let Some(proto) = proto {
            mappings.push(Mapping {
                program,
                version,
                proto,
                port,
            });
        }
    }
    Ok(mappings)
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn word(&mut self) -> Result<u32, String> {
        let (w, rest) = self
            .0
            .split_first_chunk::<4>()
            .ok_or_else(|| "the reply is cut short".to_string())?;
        self.0 = rest;
        Ok(u32::from_be_bytes(*w))
    }

    fn skip(&mut self, n: usize) -> Result<(), String> {
        self.0 = self.0.get(n..).ok_or("the reply is cut short")?;
        Ok(())
    }
}

/// Asks the rpcbind of this host (127.0.0.1, port 111, over UDP) for its mappings, waiting at
/// most `timeout`.
///
/// # Errors
///
/// When no rpcbind answers (none runs: the usual case), or its answer is not a dump.
pub fn query(timeout: Duration) -> io::Result<Vec<Mapping>> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
    socket.set_read_timeout(Some(timeout))?;
    socket.connect("127.0.0.1:111")?;
    let xid = std::process::id() ^ 0x5353_0000;
    socket.send(&dump_call(xid))?;
    let mut buf = vec![0u8; 65_536];
    let n = socket.recv(&mut buf)?;
    parse_dump_reply(xid, &buf[..n]).map_err(|e| io::Error::other(format!("rpcbind: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(ws: &[u32]) -> Vec<u8> {
        ws.iter().flat_map(|w| w.to_be_bytes()).collect()
    }

    /// A reply as rpcbind sends it: portmapper on 111 tcp and udp, nfs 3 on 2049 tcp, mountd on
    /// 20048 udp, and an entry of another transport (skipped).
    fn reply(xid: u32) -> Vec<u8> {
        words(&[
            xid, 1, 0, 0, 0, 0, // reply, accepted, null verifier, success
            1, 100_000, 2, 6, 111, //
            1, 100_000, 2, 17, 111, //
            1, 100_003, 3, 6, 2049, //
            1, 100_005, 3, 17, 20048, //
            1, 100_024, 1, 132, 40000, // SCTP
            0,
        ])
    }

    #[test]
    fn the_call_is_a_pmap_dump() {
        assert_eq!(dump_call(7), words(&[7, 0, 2, 100_000, 2, 4, 0, 0, 0, 0]));
    }

    #[test]
    fn a_reply_gives_its_mappings() {
        let m = parse_dump_reply(9, &reply(9)).unwrap();
        assert_eq!(m.len(), 4);
        assert_eq!(
            m[2],
            Mapping {
                program: 100_003,
                version: 3,
                proto: Proto::Tcp,
                port: 2049
            }
        );
        assert_eq!((m[3].proto, m[3].port), (Proto::Udp, 20048));
    }

    #[test]
    fn bad_replies_are_errors_not_panics() {
        assert_eq!(
            parse_dump_reply(1, &reply(2)).unwrap_err(),
            "a reply to another call"
        );
        let full = reply(3);
        for cut in 0..full.len() {
            assert!(parse_dump_reply(3, &full[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(
            parse_dump_reply(4, &words(&[4, 1, 1])).unwrap_err(),
            "the call was denied"
        );
        assert!(parse_dump_reply(5, &words(&[5, 1, 0, 0, 0, 0, 1, 1, 1, 6, 70_000, 0])).is_err());
    }
}
