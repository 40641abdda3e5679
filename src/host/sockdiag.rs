//! The kernel's socket table over `NETLINK_SOCK_DIAG` (what `ss -ltun` reads): one dump request
//! per address family and protocol, answered with an `inet_diag_msg` per socket.
//!
//! The message layouts are fixed by `linux/inet_diag.h` and `linux/netlink.h`; [`request`] and
//! [`parse`] are **pure** (bytes in, bytes or records out, tested on hand-built messages), and
//! [`SockDiag`] is the **shell** that sends a request and reads the answer.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::netlink::{self, NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, Request};
use crate::wire::Proto;

/// `SOCK_DIAG_BY_FAMILY`: the message type of both the request and its answers.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `struct inet_diag_req_v2`: family, protocol, extensions, pad, states, then the 48-byte
/// `inet_diag_sockid`.
const REQ_V2: usize = 56;
/// `struct inet_diag_msg`: family, state, timer, retrans, the sockid, then expires, rqueue,
/// wqueue, uid and inode.
const DIAG_MSG: usize = 72;

/// `AF_INET` and `AF_INET6`.
pub const AF_INET: u8 = 2;
/// See [`AF_INET`].
pub const AF_INET6: u8 = 10;

/// TCP states as the kernel numbers them (`include/net/tcp_states.h`).
pub mod state {
    /// A connected socket (for UDP: one that called `connect()`).
    pub const ESTABLISHED: u8 = 1;
    /// For UDP, a socket that is bound but not connected.
    pub const CLOSE: u8 = 7;
    /// A TCP listener.
    pub const LISTEN: u8 = 10;
    /// Every state, as a request's bit mask.
    pub const ALL: u32 = u32::MAX;

    /// The request mask that selects one state.
    pub const fn only(state: u8) -> u32 {
        1 << state
    }
}

/// One socket of the kernel's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Socket {
    /// TCP or UDP.
    pub proto: Proto,
    /// Local address; the unspecified address for the wildcard. IPv4-mapped IPv6 addresses are
    /// given as IPv4.
    pub addr: IpAddr,
    /// Local port.
    pub port: u16,
    /// Remote address (unspecified when not connected).
    pub peer: IpAddr,
    /// Remote port (0 when not connected).
    pub peer_port: u16,
    /// Kernel state number (see [`state`]).
    pub state: u8,
    /// Owner's user id.
    pub uid: u32,
    /// Inode of the socket, which `/proc/<pid>/fd` links name as `socket:[inode]`.
    pub inode: u32,
}

/// The bytes of a dump request for `family`'s `proto` sockets in the states of `states` (a
/// mask of `1 << state`).
pub fn request(seq: u32, family: u8, proto: Proto, states: u32) -> Vec<u8> {
    let mut req = [0u8; REQ_V2];
    req[0] = family;
    req[1] = match proto {
        Proto::Tcp => 6,
        Proto::Udp => 17,
        Proto::Sctp => 132,
        // IPPROTO_RAW: raw sockets, the only sockets of other IP protocols.
        Proto::Ip => 255,
    };
    // No extensions (byte 2), padding (3).
    req[4..8].copy_from_slice(&states.to_ne_bytes());
    // The sockid stays zero: a dump matches every socket.
    Request::new(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, seq)
        .fixed(&req)
        .finish()
}

/// What one buffer of the answer held.
#[derive(Debug, PartialEq, Eq)]
pub enum Part {
    /// More messages follow in the next buffer.
    More,
    /// The dump is complete.
    Done,
}

/// Reads the messages of one received buffer, appending the sockets of `proto` to `out`.
/// Malformed messages end the buffer (the kernel never sends them; a reader must not die on
/// one).
///
/// # Errors
///
/// The error the kernel answered with (an `NLMSG_ERROR` with a negative code).
pub fn parse(buf: &[u8], proto: Proto, out: &mut Vec<Socket>) -> io::Result<Part> {
    for m in netlink::messages(buf) {
        match m.kind {
            NLMSG_DONE => return Ok(Part::Done),
            NLMSG_ERROR => {
                return match m.error() {
                    Some(errno) if errno > 0 => Err(io::Error::from_raw_os_error(errno)),
                    _ => Ok(Part::Done),
                };
            }
            SOCK_DIAG_BY_FAMILY => out.extend(parse_diag_msg(m.body(), proto)),
            _ => {}
        }
    }
    Ok(Part::More)
}

fn word(b: &[u8], at: usize) -> [u8; 4] {
    [b[at], b[at + 1], b[at + 2], b[at + 3]]
}

fn parse_diag_msg(body: &[u8], proto: Proto) -> Option<Socket> {
    if body.len() < DIAG_MSG {
        return None;
    }
    let family = body[0];
    let address = |at: usize| -> Option<IpAddr> {
        match family {
            AF_INET => Some(IpAddr::V4(Ipv4Addr::from(word(body, at)))),
            AF_INET6 => {
                let bytes: [u8; 16] = body[at..at + 16].try_into().ok()?;
                Some(IpAddr::V6(Ipv6Addr::from(bytes)).to_canonical())
            }
            _ => None,
        }
    };
    Some(Socket {
        proto,
        state: body[1],
        // inet_diag_sockid: ports and addresses in network order.
        port: u16::from_be_bytes([body[4], body[5]]),
        peer_port: u16::from_be_bytes([body[6], body[7]]),
        addr: address(8)?,
        peer: address(24)?,
        uid: u32::from_ne_bytes(word(body, 64)),
        inode: u32::from_ne_bytes(word(body, 68)),
    })
}

/// Most sockets one dump returns before the reader gives up (a bound on memory: a host has a
/// few thousand listening sockets at most; the dump of connected UDP sockets is the one that
/// could grow).
pub const MAX_SOCKETS: usize = 1 << 20;

/// A netlink socket to ask the kernel's socket table with.
#[derive(Debug)]
pub struct SockDiag {
    fd: std::os::fd::OwnedFd,
    buf: Vec<u8>,
    seq: u32,
}

impl SockDiag {
    /// Opens the netlink socket.
    ///
    /// # Errors
    ///
    /// When it cannot be opened (a kernel without `CONFIG_INET_DIAG`).
    pub fn open() -> io::Result<Self> {
        Ok(SockDiag {
            fd: super::netlink_socket(nix::sys::socket::SockProtocol::NetlinkSockDiag)?,
            buf: vec![0u8; 1 << 16],
            seq: 0,
        })
    }

    /// Dumps the sockets of `family` and `proto` in `states` from the socket's network
    /// namespace into `out`.
    ///
    /// # Errors
    ///
    /// When the kernel refuses the request (`EAFNOSUPPORT` for `AF_INET6` when IPv6 is off),
    /// the answer does not come within a second, or it holds more than [`MAX_SOCKETS`].
    pub fn dump(
        &mut self,
        family: u8,
        proto: Proto,
        states: u32,
        out: &mut Vec<Socket>,
    ) -> io::Result<()> {
        use nix::sys::socket::{MsgFlags, NetlinkAddr, recv, sendto};
        use std::os::fd::AsRawFd;

        self.seq = self.seq.wrapping_add(1);
        let msg = request(self.seq, family, proto, states);
        let fd = self.fd.as_raw_fd();
        sendto(fd, &msg, &NetlinkAddr::new(0, 0), MsgFlags::empty())?;
        let limit = out.len() + MAX_SOCKETS;
        loop {
            let n = recv(fd, &mut self.buf, MsgFlags::empty())?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "sock_diag: the kernel closed the dump",
                ));
            }
            if parse(&self.buf[..n], proto, out)? == Part::Done {
                return Ok(());
            }
            if out.len() > limit {
                return Err(io::Error::other(format!(
                    "sock_diag: more than {MAX_SOCKETS} sockets"
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer message as the kernel lays it out.
    fn diag_msg(family: u8, state: u8, addr: &[u8], port: u16, uid: u32, inode: u32) -> Vec<u8> {
        let mut body = vec![0u8; DIAG_MSG];
        body[0] = family;
        body[1] = state;
        body[4..6].copy_from_slice(&port.to_be_bytes());
        body[8..8 + addr.len()].copy_from_slice(addr);
        body[64..68].copy_from_slice(&uid.to_ne_bytes());
        body[68..72].copy_from_slice(&inode.to_ne_bytes());
        // An attribute after the fixed part, as INET_DIAG_* extensions come: skipped.
        body.extend_from_slice(&[8, 0, 1, 0, 0, 0, 0, 0]);
        framed(SOCK_DIAG_BY_FAMILY, &body)
    }

    fn framed(kind: u16, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        let len = u32::try_from(netlink::HEADER_LEN + body.len()).unwrap();
        m.extend_from_slice(&len.to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(body);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    #[test]
    fn request_layout() {
        let r = request(7, AF_INET6, Proto::Udp, state::ALL);
        assert_eq!(u32::from_ne_bytes(word(&r, 0)), 72);
        assert_eq!(u16::from_ne_bytes([r[4], r[5]]), 20);
        assert_eq!(u16::from_ne_bytes([r[6], r[7]]), 0x301);
        assert_eq!(u32::from_ne_bytes(word(&r, 8)), 7);
        assert_eq!((r[16], r[17]), (10, 17));
        assert_eq!(u32::from_ne_bytes(word(&r, 20)), u32::MAX);
        assert!(r[24..].iter().all(|&b| b == 0));
        let r = request(1, AF_INET, Proto::Tcp, state::only(state::LISTEN));
        assert_eq!((r[16], r[17]), (2, 6));
        assert_eq!(u32::from_ne_bytes(word(&r, 20)), 1 << 10);
        // Issue 28: SCTP's listening endpoints (sctp_diag), IPPROTO_SCTP.
        let r = request(2, AF_INET6, Proto::Sctp, state::only(state::LISTEN));
        assert_eq!((r[16], r[17]), (10, 132));
    }

    #[test]
    fn answers_of_both_families() {
        let mut buf = diag_msg(AF_INET, state::LISTEN, &[0, 0, 0, 0], 22, 0, 1256);
        buf.extend(diag_msg(
            AF_INET6,
            state::LISTEN,
            &"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets(),
            443,
            33,
            1300,
        ));
        buf.extend(diag_msg(
            AF_INET6,
            state::LISTEN,
            &"::ffff:198.51.100.1".parse::<Ipv6Addr>().unwrap().octets(),
            25,
            0,
            1301,
        ));
        let mut out = Vec::new();
        assert_eq!(parse(&buf, Proto::Tcp, &mut out).unwrap(), Part::More);
        let seen: Vec<_> = out
            .iter()
            .map(|s| (s.addr, s.port, s.uid, s.inode))
            .collect();
        assert_eq!(
            seen,
            [
                (IpAddr::V4(Ipv4Addr::UNSPECIFIED), 22, 0, 1256),
                ("2001:db8::1".parse().unwrap(), 443, 33, 1300),
                ("198.51.100.1".parse().unwrap(), 25, 0, 1301),
            ]
        );
        assert!(out.iter().all(|s| s.state == state::LISTEN));
    }

    #[test]
    fn done_and_errors() {
        let mut out = Vec::new();
        let mut buf = diag_msg(AF_INET, state::CLOSE, &[127, 0, 0, 53], 53, 101, 9);
        buf.extend(framed(NLMSG_DONE, &[0; 4]));
        assert_eq!(parse(&buf, Proto::Udp, &mut out).unwrap(), Part::Done);
        assert_eq!(out.len(), 1);
        let err = parse(
            &framed(NLMSG_ERROR, &(-97i32).to_ne_bytes()),
            Proto::Tcp,
            &mut out,
        )
        .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(97));
    }

    #[test]
    fn malformed_buffers_end_quietly() {
        let mut out = Vec::new();
        // A length past the end, a length below the header, a truncated body, garbage.
        for buf in [
            {
                let mut m = diag_msg(AF_INET, 10, &[0; 4], 22, 0, 1);
                m[0] = 200;
                m
            },
            vec![4, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            framed(SOCK_DIAG_BY_FAMILY, &[2, 10, 0, 0]),
            framed(SOCK_DIAG_BY_FAMILY, &[99; DIAG_MSG]),
            vec![1, 2, 3],
        ] {
            assert_eq!(parse(&buf, Proto::Tcp, &mut out).unwrap(), Part::More);
        }
        assert!(out.is_empty());
    }
}
