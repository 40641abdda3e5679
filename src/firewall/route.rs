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
use crate::netlink::{
    self, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR,
    Request,
};

/// The routes' protocol number: not one iproute2 names, so no other program uses it.
pub const PROTOCOL: u8 = 246;

const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTM_GETROUTE: u16 = 26;
const RT_TABLE_MAIN: u8 = 254;
const RTN_BLACKHOLE: u8 = 6;
const RTA_DST: u16 = 1;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
/// `struct rtmsg`.
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
    // rtmsg: family, dst_len, src_len, tos, table, protocol, scope (universe), type, flags.
    let rtmsg = [
        family,
        net.prefix_len(),
        0,
        0,
        RT_TABLE_MAIN,
        PROTOCOL,
        0,
        RTN_BLACKHOLE,
        0,
        0,
        0,
        0,
    ];
    Request::new(kind, flags, seq)
        .fixed(&rtmsg)
        .attr(RTA_DST, &addr)
        .finish()
}

/// A route dump request for `family`.
fn dump_request(family: u8, seq: u32) -> Vec<u8> {
    let mut rtmsg = [0u8; RTMSG];
    rtmsg[0] = family;
    Request::new(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, seq)
        .fixed(&rtmsg)
        .finish()
}

/// What one buffer of an answer held.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// The acknowledgement (or error) of request `seq`.
    Ack {
        /// The request's sequence number.
        seq: u32,
        /// 0 for success, else the errno.
        errno: i32,
    },
    /// More of a dump follows.
    More,
    /// The dump is complete.
    Done,
}

/// Reads the messages of one buffer: our blackhole routes go to `routes`; the last ACK, the
/// end of a dump, or neither is returned. Malformed messages end the buffer.
pub fn parse_routes(buf: &[u8], routes: &mut Vec<IpNet>) -> Answer {
    let mut answer = Answer::More;
    for m in netlink::messages(buf) {
        match m.kind {
            NLMSG_DONE => return Answer::Done,
            NLMSG_ERROR => {
                if let Some(errno) = m.error() {
                    answer = Answer::Ack { seq: m.seq, errno };
                }
            }
            RTM_NEWROUTE => routes.extend(our_route(m.body())),
            _ => {}
        }
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
    let (_, value) = netlink::attributes(&body[RTMSG..]).find(|(kind, _)| *kind == RTA_DST)?;
    let addr = match (family, value.len()) {
        (AF_INET, 4) => IpAddr::from(<[u8; 4]>::try_from(value).ok()?),
        (AF_INET6, 16) => IpAddr::from(<[u8; 16]>::try_from(value).ok()?),
        _ => return None,
    };
    IpNet::new(addr, dst_len).ok()
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
                Answer::Ack { seq: s, errno } if s == seq => {
                    use nix::errno::Errno;
                    return match Errno::from_raw(errno) {
                        _ if errno == 0 => Ok(()),
                        // Lifting a route that is gone already is what was wanted.
                        Errno::ESRCH if op == Op::Delete => Ok(()),
                        Errno::EPERM => Err(FirewallError::NotPermitted(
                            "not permitted to change routes: sentryd needs CAP_NET_ADMIN (run \
                             it as root)"
                                .into(),
                        )),
                        errno => Err(FirewallError::Kernel {
                            doing: doing(),
                            errno,
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
                    Answer::Ack { errno, .. } if errno != 0 => {
                        return Err(FirewallError::Kernel {
                            doing: "list routes".into(),
                            errno: nix::errno::Errno::from_raw(errno),
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
            Answer::Ack { seq: 7, errno: 1 }
        );
        let m = as_dumped(route_message(Op::Add, net("203.0.113.7/32"), 1));
        let mut routes = Vec::new();
        for cut in 0..m.len() {
            assert_eq!(parse_routes(&m[..cut], &mut routes), Answer::More);
        }
        assert!(routes.is_empty(), "a cut message gave {routes:?}");
    }
}
