//! `backend = "route"`: a blackhole route per blocked source, over rtnetlink, for hosts without
//! nftables — the modern form of PortSentry's `KILL_ROUTE`. The host sends nothing back to a
//! blackholed source (no SYN+ACK, no RST, no ICMP), and with reverse-path filtering on, what it
//! sends is dropped on arrival too. Routes have no timeout, so the daemon lifts them when their
//! blocks end ([`Firewall::expires_by_itself`] is false).
//!
//! [`route_message`] and [`parse_routes`] are **pure** (bytes, tested on hand-built messages);
//! [`RouteFirewall`] is the **shell**. Its routes carry protocol [`PROTOCOL`], so that it
//! lists and lifts its own routes only (`ip route show proto 246 type blackhole`).

use std::io;
use std::net::IpAddr;

use ipnet::IpNet;

use super::{Action, Blocked, Firewall, FirewallError};

/// The routes' protocol number: not one iproute2 names, so no other program uses it.
pub const PROTOCOL: u8 = 246;

const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTM_GETROUTE: u16 = 26;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const RT_TABLE_MAIN: u8 = 254;
const RTN_BLACKHOLE: u8 = 6;
const RTA_DST: u16 = 1;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
/// `struct nlmsghdr` and `struct rtmsg`.
const HDR: usize = 16;
const RTMSG: usize = 12;

/// Adding or deleting the blackhole route of `net`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `RTM_NEWROUTE` with `NLM_F_EXCL`: never replaces a route, ours or anyone's (EEXIST).
    Add,
    /// `RTM_DELROUTE`.
    Delete,
}

/// The netlink message that adds or deletes the blackhole route of `net`.
pub fn route_message(op: Op, net: IpNet, seq: u32) -> Vec<u8> {
    let (kind, flags) = match op {
        Op::Add => (
            RTM_NEWROUTE,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        ),
        Op::Delete => (RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK),
    };
    let (family, addr): (u8, Vec<u8>) = match net.addr() {
        IpAddr::V4(a) => (AF_INET, a.octets().to_vec()),
        IpAddr::V6(a) => (AF_INET6, a.octets().to_vec()),
    };
    let attr_len = 4 + addr.len();
    let len = HDR + RTMSG + attr_len;
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&u32::try_from(len).expect("a small message").to_ne_bytes());
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    // rtmsg: family, dst_len, src_len, tos, table, protocol, scope (universe), type, flags.
    m.extend_from_slice(&[
        family,
        net.prefix_len(),
        0,
        0,
        RT_TABLE_MAIN,
        PROTOCOL,
        0,
        RTN_BLACKHOLE,
    ]);
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(
        &u16::try_from(attr_len)
            .expect("4 + 16 at most")
            .to_ne_bytes(),
    );
    m.extend_from_slice(&RTA_DST.to_ne_bytes());
    m.extend_from_slice(&addr);
    m
}

/// A route dump request for `family`.
fn dump_request(family: u8, seq: u32) -> Vec<u8> {
    let len = HDR + RTMSG;
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&u32::try_from(len).expect("28 bytes").to_ne_bytes());
    m.extend_from_slice(&RTM_GETROUTE.to_ne_bytes());
    m.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&[family, 0, 0, 0, 0, 0, 0, 0]);
    m.extend_from_slice(&0u32.to_ne_bytes());
    m
}

/// What one buffer of an answer held.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// The acknowledgement (or error) of request `seq`: 0, or a negative errno.
    Ack {
        /// The request's sequence number.
        seq: u32,
        /// 0 for success, else `-errno`.
        code: i32,
    },
    /// More of a dump follows.
    More,
    /// The dump is complete.
    Done,
}

/// Reads the messages of one buffer: our blackhole routes go to `routes`; the last ACK, the
/// end of a dump, or neither is returned. Malformed messages end the buffer.
pub fn parse_routes(buf: &[u8], routes: &mut Vec<IpNet>) -> Answer {
    let mut rest = buf;
    let mut answer = Answer::More;
    while rest.len() >= HDR {
        let len = usize::try_from(u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]))
            .unwrap_or(usize::MAX);
        if len < HDR || len > rest.len() {
            break;
        }
        let kind = u16::from_ne_bytes([rest[4], rest[5]]);
        let seq = u32::from_ne_bytes([rest[8], rest[9], rest[10], rest[11]]);
        let body = &rest[HDR..len];
        match kind {
            NLMSG_DONE => return Answer::Done,
            NLMSG_ERROR if body.len() >= 4 => {
                let code = i32::from_ne_bytes([body[0], body[1], body[2], body[3]]);
                answer = Answer::Ack { seq, code };
            }
            RTM_NEWROUTE => {
                if let Some(net) = our_route(body) {
                    routes.push(net);
                }
            }
            _ => {}
        }
        rest = &rest[len.next_multiple_of(4).min(rest.len())..];
    }
    answer
}

/// The destination of a route message body if it is one of ours: a blackhole of
/// [`PROTOCOL`] in the main table.
fn our_route(body: &[u8]) -> Option<IpNet> {
    if body.len() < RTMSG {
        return None;
    }
    let (family, dst_len, table, protocol, kind) = (body[0], body[1], body[4], body[5], body[7]);
    if protocol != PROTOCOL || kind != RTN_BLACKHOLE || table != RT_TABLE_MAIN {
        return None;
    }
    let mut attrs = &body[RTMSG..];
    while attrs.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([attrs[0], attrs[1]]));
        let kind = u16::from_ne_bytes([attrs[2], attrs[3]]);
        if len < 4 || len > attrs.len() {
            return None;
        }
        let value = &attrs[4..len];
        if kind == RTA_DST {
            let addr = match (family, value.len()) {
                (AF_INET, 4) => IpAddr::from(<[u8; 4]>::try_from(value).ok()?),
                (AF_INET6, 16) => IpAddr::from(<[u8; 16]>::try_from(value).ok()?),
                _ => return None,
            };
            return IpNet::new(addr, dst_len).ok();
        }
        attrs = &attrs[len.next_multiple_of(4).min(attrs.len())..];
    }
    None
}

/// Blocks as blackhole routes in the main table.
#[derive(Debug)]
pub struct RouteFirewall {
    fd: std::os::fd::OwnedFd,
    buf: Vec<u8>,
    seq: u32,
}

impl RouteFirewall {
    /// Opens the rtnetlink socket.
    ///
    /// # Errors
    ///
    /// When it cannot be opened.
    pub fn new() -> Result<Self, FirewallError> {
        use nix::sys::socket::{
            AddressFamily, SockFlag, SockProtocol, SockType, setsockopt, socket, sockopt,
        };
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )
        .map_err(|e| FirewallError::Socket(e.into()))?;
        setsockopt(
            &fd,
            sockopt::ReceiveTimeout,
            &nix::sys::time::TimeVal::new(2, 0),
        )
        .map_err(|e| FirewallError::Socket(e.into()))?;
        Ok(RouteFirewall {
            fd,
            buf: vec![0u8; 1 << 16],
            seq: 0,
        })
    }

    fn send(&mut self, message: &[u8]) -> io::Result<()> {
        use nix::sys::socket::{MsgFlags, NetlinkAddr, sendto};
        use std::os::fd::AsRawFd;
        sendto(
            self.fd.as_raw_fd(),
            message,
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )?;
        Ok(())
    }

    fn receive(&mut self, routes: &mut Vec<IpNet>) -> io::Result<Answer> {
        use nix::sys::socket::{MsgFlags, recv};
        use std::os::fd::AsRawFd;
        let n = recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::empty())?;
        Ok(parse_routes(&self.buf[..n], routes))
    }

    /// Sends one change and waits for its acknowledgement.
    fn change(&mut self, op: Op, net: IpNet) -> Result<(), FirewallError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        self.send(&route_message(op, net, seq))
            .map_err(FirewallError::Socket)?;
        let doing = || match op {
            Op::Add => format!("add the blackhole route of {net}"),
            Op::Delete => format!("delete the blackhole route of {net}"),
        };
        loop {
            match self
                .receive(&mut Vec::new())
                .map_err(FirewallError::Socket)?
            {
                Answer::Ack { seq: s, code } if s == seq => {
                    return match code {
                        0 => Ok(()),
                        // Lifting a route that is gone already is what was wanted.
                        c if op == Op::Delete && -c == nix::errno::Errno::ESRCH as i32 => Ok(()),
                        c if -c == nix::errno::Errno::EPERM as i32 => Err(FirewallError::NotPermitted(
                            "not permitted to change routes: sentryd needs CAP_NET_ADMIN (run it as root)"
                                .into(),
                        )),
                        c => Err(FirewallError::Kernel {
                            doing: doing(),
                            errno: nix::errno::Errno::from_raw(-c),
                        }),
                    };
                }
                _ => continue,
            }
        }
    }
}

impl RouteFirewall {
    /// Adds the blackhole route of `net`, never over a route that is not ours: the kernel says
    /// EEXIST for any route of that prefix (and metric), and only when it is our own blackhole
    /// is the block already in force.
    fn add(&mut self, net: IpNet) -> Result<(), FirewallError> {
        match self.change(Op::Add, net) {
            Err(FirewallError::Kernel {
                errno: nix::errno::Errno::EEXIST,
                ..
            }) => {
                if self.list()?.iter().any(|b| b.net == net) {
                    Ok(())
                } else {
                    Err(FirewallError::NotOurs(format!(
                        "not blocking {net}: the routing table has a route to {net} that is not \
                         scansentry's, and a block never replaces one"
                    )))
                }
            }
            other => other,
        }
    }
}

impl Firewall for RouteFirewall {
    fn ensure_ready(&mut self, _allow: &[IpNet]) -> Result<(), FirewallError> {
        // Nothing to build; a dump proves the socket works. The responder never blocks a
        // never-block address, so the allow list needs no place in the routing table.
        self.list().map(|_| ())
    }

    fn apply(&mut self, actions: &[Action]) -> Result<(), FirewallError> {
        // One route per message; a refused one is reported and the others still made.
        super::apply_each(actions, 1, |one| {
            one.iter().try_for_each(|action| match action {
                Action::Block { net, .. } => self.add(*net),
                Action::Unblock { net } => self.change(Op::Delete, *net),
            })
        })
    }

    fn list(&mut self) -> Result<Vec<Blocked>, FirewallError> {
        let mut routes = Vec::new();
        for family in [AF_INET, AF_INET6] {
            self.seq = self.seq.wrapping_add(1);
            let seq = self.seq;
            self.send(&dump_request(family, seq))
                .map_err(FirewallError::Socket)?;
            loop {
                match self.receive(&mut routes).map_err(FirewallError::Socket)? {
                    Answer::Done => break,
                    Answer::Ack { code, .. } if code != 0 => {
                        return Err(FirewallError::Kernel {
                            doing: "list routes".into(),
                            errno: nix::errno::Errno::from_raw(-code),
                        });
                    }
                    _ => {}
                }
            }
        }
        Ok(routes
            .into_iter()
            .map(|net| Blocked {
                net,
                remaining: None,
            })
            .collect())
    }

    fn expires_by_itself(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    /// The kernel's answer to a dump: `message` turned into RTM_NEWROUTE, as it echoes routes.
    fn as_dumped(mut message: Vec<u8>) -> Vec<u8> {
        message[4..6].copy_from_slice(&RTM_NEWROUTE.to_ne_bytes());
        message
    }

    #[test]
    fn an_add_message_is_a_blackhole_route_of_ours() {
        let m = route_message(Op::Add, net("203.0.113.7/32"), 9);
        assert_eq!(m.len(), 16 + 12 + 8);
        assert_eq!(u16::from_ne_bytes([m[4], m[5]]), RTM_NEWROUTE);
        // REQUEST, ACK, CREATE and EXCL: never REPLACE (0x100), which took over routes not ours.
        assert_eq!(u16::from_ne_bytes([m[6], m[7]]), 0x1 | 0x4 | 0x400 | 0x200);
        assert_eq!(u32::from_ne_bytes([m[8], m[9], m[10], m[11]]), 9);
        assert_eq!(&m[16..24], &[2, 32, 0, 0, 254, 246, 0, 6]);
        assert_eq!(&m[32..36], &[203, 0, 113, 7]);
        let d = route_message(Op::Delete, net("2001:db8:1::/64"), 10);
        assert_eq!(u16::from_ne_bytes([d[4], d[5]]), RTM_DELROUTE);
        assert_eq!((d[16], d[17]), (10, 64));
        assert_eq!(d.len(), 16 + 12 + 20);
    }

    #[test]
    fn a_dump_keeps_only_our_blackholes() {
        let mut buf = as_dumped(route_message(Op::Add, net("203.0.113.7/32"), 1));
        buf.extend(as_dumped(route_message(Op::Add, net("2001:db8:1::/64"), 2)));
        // Somebody else's blackhole (protocol static) and a unicast route of ours.
        let mut static_route = as_dumped(route_message(Op::Add, net("198.51.100.9/32"), 3));
        static_route[16 + 5] = 4;
        buf.extend(static_route);
        let mut unicast = as_dumped(route_message(Op::Add, net("198.51.100.10/32"), 4));
        unicast[16 + 7] = 1;
        buf.extend(unicast);
        let mut routes = Vec::new();
        assert_eq!(parse_routes(&buf, &mut routes), Answer::More);
        assert_eq!(routes, [net("203.0.113.7/32"), net("2001:db8:1::/64")]);
    }

    #[test]
    fn acks_errors_and_garbage() {
        let mut ack = vec![0u8; 16 + 4];
        ack[0..4].copy_from_slice(&20u32.to_ne_bytes());
        ack[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        ack[8..12].copy_from_slice(&7u32.to_ne_bytes());
        ack[16..20].copy_from_slice(&(-1i32).to_ne_bytes());
        assert_eq!(
            parse_routes(&ack, &mut Vec::new()),
            Answer::Ack { seq: 7, code: -1 }
        );
        let m = as_dumped(route_message(Op::Add, net("203.0.113.7/32"), 1));
        let mut routes = Vec::new();
        for cut in 0..m.len() {
            assert_eq!(parse_routes(&m[..cut], &mut routes), Answer::More);
        }
        assert!(routes.is_empty(), "a cut message gave {routes:?}");
    }
}
