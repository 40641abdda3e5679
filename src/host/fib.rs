//! The route back to a source, as the kernel would choose it: one `RTM_GETROUTE` request over
//! rtnetlink (what `ip route get ADDR` asks). It is what the reverse-path check compares with the
//! interface a probe came in on, like the kernel's `rp_filter`.
//!
//! [`request`] and [`parse`] are **pure** (bytes in, bytes or a route out, tested on hand-built
//! messages); [`Fib`] is the **shell**: one socket, asked only for the sources of detections
//! (never per packet), with answers cached until the routes change ([`Fib::forget`]).

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};

use hashlink::LinkedHashMap;

use crate::netlink::{self, NLM_F_REQUEST, NLMSG_ERROR, Request};

const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTN_UNICAST: u8 = 1;
const RTN_LOCAL: u8 = 2;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
/// `struct rtmsg`.
const RTMSG: usize = 12;
/// Answers kept at most (the oldest gives way).
const CACHE: usize = 4096;

pub use crate::trust::RouteBack;

/// The bytes of a request for the route to `dst`, with sequence number `seq`.
pub fn request(dst: IpAddr, seq: u32) -> Vec<u8> {
    let (family, addr, bits): (u8, Vec<u8>, u8) = match dst.to_canonical() {
        IpAddr::V4(a) => (AF_INET, a.octets().to_vec(), 32),
        IpAddr::V6(a) => (AF_INET6, a.octets().to_vec(), 128),
    };
    let mut rtmsg = [0u8; RTMSG];
    // rtmsg: family, dst_len; the rest zero.
    (rtmsg[0], rtmsg[1]) = (family, bits);
    Request::new(RTM_GETROUTE, NLM_F_REQUEST, seq)
        .fixed(&rtmsg)
        .attr(RTA_DST, &addr)
        .finish()
}

/// Reads the answer to request `seq`: the route, or `None` when the buffer holds no answer to
/// it (then read on). An error answer (`ENETUNREACH`, …) is a source with no way back.
pub fn parse(buf: &[u8], seq: u32) -> Option<RouteBack> {
    netlink::messages(buf)
        .filter(|m| m.seq == seq)
        .find_map(|m| match m.kind {
            NLMSG_ERROR => Some(RouteBack::None),
            RTM_NEWROUTE if m.body().len() >= RTMSG => Some(route(m.body())),
            _ => None,
        })
}

/// The route of an `RTM_NEWROUTE` body.
fn route(body: &[u8]) -> RouteBack {
    match body[7] {
        RTN_LOCAL => return RouteBack::Local,
        RTN_UNICAST => {}
        _ => return RouteBack::None,
    }
    netlink::attributes(&body[RTMSG..])
        .find_map(|(kind, value)| match (kind, <[u8; 4]>::try_from(value)) {
            (RTA_OIF, Ok(oif)) => Some(RouteBack::Via(u32::from_ne_bytes(oif))),
            _ => None,
        })
        .unwrap_or(RouteBack::None)
}

/// Asks the kernel for routes back, and remembers its answers until the routes change.
#[derive(Debug)]
pub struct Fib {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
    cache: LinkedHashMap<IpAddr, RouteBack>,
}

impl Fib {
    /// Opens the rtnetlink socket.
    ///
    /// # Errors
    ///
    /// When it cannot be opened.
    pub fn open() -> io::Result<Self> {
        Ok(Fib {
            fd: super::netlink_socket(nix::sys::socket::SockProtocol::NetlinkRoute)?,
            seq: 0,
            buf: vec![0; 8192],
            cache: LinkedHashMap::new(),
        })
    }

    /// How the kernel would route a packet back to `src` (cached).
    ///
    /// # Errors
    ///
    /// When the socket fails or the kernel does not answer.
    pub fn route_back(&mut self, src: IpAddr) -> io::Result<RouteBack> {
        use nix::sys::socket::{MsgFlags, NetlinkAddr, recv, sendto};
        if let Some(known) = self.cache.to_back(&src) {
            return Ok(*known);
        }
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        sendto(
            self.fd.as_raw_fd(),
            &request(src, seq),
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )?;
        let back = loop {
            let n = recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::empty())?;
            if let Some(back) = parse(&self.buf[..n], seq) {
                break back;
            }
        };
        if self.cache.len() >= CACHE {
            self.cache.pop_front();
        }
        self.cache.insert(src, back);
        Ok(back)
    }

    /// Forgets every answer (the routes changed).
    pub fn forget(&mut self) {
        self.cache.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(seq: u32, kind: u8, oif: Option<u32>) -> Vec<u8> {
        let mut body = vec![AF_INET, 32, 0, 0, 254, 2, 0, kind, 0, 0, 0, 0];
        // RTA_TABLE first (an attribute to skip), then RTA_OIF.
        body.extend_from_slice(&8u16.to_ne_bytes());
        body.extend_from_slice(&15u16.to_ne_bytes());
        body.extend_from_slice(&254u32.to_ne_bytes());
        if let Some(oif) = oif {
            body.extend_from_slice(&8u16.to_ne_bytes());
            body.extend_from_slice(&RTA_OIF.to_ne_bytes());
            body.extend_from_slice(&oif.to_ne_bytes());
        }
        let mut m = Vec::new();
        m.extend_from_slice(
            &u32::try_from(netlink::HEADER_LEN + body.len())
                .unwrap()
                .to_ne_bytes(),
        );
        m.extend_from_slice(&RTM_NEWROUTE.to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend(body);
        m
    }

    #[test]
    fn a_request_asks_for_one_address() {
        let m = request("198.51.100.2".parse().unwrap(), 7);
        assert_eq!(m.len(), 16 + 12 + 8);
        assert_eq!(u16::from_ne_bytes([m[4], m[5]]), RTM_GETROUTE);
        assert_eq!(u32::from_ne_bytes([m[8], m[9], m[10], m[11]]), 7);
        assert_eq!((m[16], m[17]), (AF_INET, 32));
        assert_eq!(&m[32..36], &[198, 51, 100, 2]);
        let m = request("::ffff:198.51.100.2".parse().unwrap(), 8);
        assert_eq!(m[16], AF_INET, "a v4-mapped address is asked as IPv4");
        let m = request("2001:db8::2".parse().unwrap(), 9);
        assert_eq!((m.len(), m[16], m[17]), (16 + 12 + 20, AF_INET6, 128));
    }

    #[test]
    fn answers_read_as_routes_back() {
        assert_eq!(
            parse(&answer(3, RTN_UNICAST, Some(4)), 3),
            Some(RouteBack::Via(4))
        );
        assert_eq!(
            parse(&answer(3, RTN_LOCAL, Some(1)), 3),
            Some(RouteBack::Local)
        );
        assert_eq!(
            parse(&answer(3, 6, None), 3),
            Some(RouteBack::None),
            "blackhole"
        );
        assert_eq!(
            parse(&answer(3, RTN_UNICAST, None), 3),
            Some(RouteBack::None)
        );
        assert_eq!(
            parse(&answer(2, RTN_UNICAST, Some(4)), 3),
            None,
            "another request's"
        );
        // An error answer: no route.
        let mut err = Vec::new();
        err.extend_from_slice(&36u32.to_ne_bytes());
        err.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        err.extend_from_slice(&0u16.to_ne_bytes());
        err.extend_from_slice(&3u32.to_ne_bytes());
        err.extend_from_slice(&0u32.to_ne_bytes());
        err.extend_from_slice(&(-101i32).to_ne_bytes());
        err.extend_from_slice(&[0; 16]);
        assert_eq!(parse(&err, 3), Some(RouteBack::None));
        // Garbage never panics.
        for cut in 0..answer(3, RTN_UNICAST, Some(4)).len() {
            let _ = parse(&answer(3, RTN_UNICAST, Some(4))[..cut], 3);
        }
    }
}
