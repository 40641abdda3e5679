//! `method = "connect"`: the trap ports bound as ordinary sockets, PortSentry's classic mode.
//! A TCP connection counts once its handshake completes (so spoofed sources cannot get
//! anyone blocked, and stealth scans go unseen, by design); a UDP datagram counts as it
//! arrives. Each socket is bound to `::` (IPv4 and IPv6 at once), or `0.0.0.0` where IPv6 is
//! off. **Shell.**

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};

use crate::wire::Proto;

/// File descriptors kept free for everything but the trap sockets (control socket, netlink,
/// the state file, accepted connections).
const SPARE_FDS: u64 = 64;
/// Connections accepted or datagrams read from one socket per turn, so that one busy port
/// cannot starve the others.
const PER_TURN: usize = 16;

/// One connection or datagram on a trap port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arrival {
    /// Who connected or sent.
    pub src: IpAddr,
    /// The local address it reached.
    pub dst: IpAddr,
    /// TCP or UDP.
    pub proto: Proto,
    /// The trap port.
    pub port: u16,
}

enum Socket {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

/// The bound trap ports.
pub struct TrapSockets {
    sockets: Vec<(Proto, u16, Socket)>,
    banner: Option<Vec<u8>>,
}

impl std::fmt::Debug for TrapSockets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TrapSockets({} bound)", self.sockets.len())
    }
}

/// Connect mode could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Not enough file descriptors for the trap ports, and the limit cannot be raised.
    #[error(
        "connect mode needs {needed} file descriptors for {ports} trap ports, and the limit is \
         {limit}: raise it (LimitNOFILE= in the unit, ulimit -n) or list fewer ports"
    )]
    TooFewFds {
        /// What is needed.
        needed: u64,
        /// Trap ports to bind.
        ports: usize,
        /// The hard limit.
        limit: u64,
    },
    /// Binding a privileged port was refused.
    #[error(
        "cannot bind trap port {port}/{proto}: {source} (ports below 1024 need root or \
         CAP_NET_BIND_SERVICE)"
    )]
    Permission {
        /// The port.
        port: u16,
        /// `tcp` or `udp`.
        proto: &'static str,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// Another failure to set a socket up.
    #[error("cannot bind trap port {port}/{proto}")]
    Bind {
        /// The port.
        port: u16,
        /// `tcp` or `udp`.
        proto: &'static str,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// Every trap port was in use (or there were none).
    #[error("connect mode has no trap port it could bind")]
    Nothing,
}

impl ConnectError {
    /// Whether the cause is a missing privilege.
    pub fn is_permission(&self) -> bool {
        matches!(self, ConnectError::Permission { .. })
    }
}

impl TrapSockets {
    /// Binds `tcp` and `udp` ports; ports already in use are skipped, each with a warning in
    /// the returned list. `banner` is written to every TCP client before its connection is
    /// closed.
    ///
    /// # Errors
    ///
    /// Too few file descriptors, a refused privileged port, or nothing bound at all.
    pub fn open(
        tcp: &[u16],
        udp: &[u16],
        banner: Option<&str>,
    ) -> Result<(TrapSockets, Vec<String>), ConnectError> {
        ensure_fds(tcp.len() + udp.len())?;
        let mut sockets = Vec::with_capacity(tcp.len() + udp.len());
        let mut warnings = Vec::new();
        for (proto, ports) in [(Proto::Tcp, tcp), (Proto::Udp, udp)] {
            for &port in ports {
                match bind(proto, port) {
                    Ok(socket) => sockets.push((proto, port, socket)),
                    Err(e) if e.kind() == io::ErrorKind::AddrInUse => warnings.push(format!(
                        "trap port {port}/{} is in use by another program: skipped",
                        proto.as_str()
                    )),
                    Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                        return Err(ConnectError::Permission {
                            port,
                            proto: proto.as_str(),
                            source: e,
                        });
                    }
                    Err(e) => {
                        return Err(ConnectError::Bind {
                            port,
                            proto: proto.as_str(),
                            source: e,
                        });
                    }
                }
            }
        }
        if sockets.is_empty() {
            return Err(ConnectError::Nothing);
        }
        Ok((
            TrapSockets {
                sockets,
                banner: banner.map(|b| format!("{b}\r\n").into_bytes()),
            },
            warnings,
        ))
    }

    /// How many ports are bound.
    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    /// Whether none is (never, once opened).
    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }

    /// The sockets to poll, in the order [`TrapSockets::take`] expects their readiness.
    pub fn fds(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        self.sockets.iter().map(|(_, _, s)| match s {
            Socket::Tcp(l) => l.as_fd(),
            Socket::Udp(u) => u.as_fd(),
        })
    }

    /// Accepts the connections and reads the datagrams waiting on the sockets whose index
    /// `ready` yields; each becomes an [`Arrival`]. TCP clients get the banner, then are
    /// disconnected.
    pub fn take(&self, ready: impl Iterator<Item = usize>, out: &mut Vec<Arrival>) {
        let mut datagram = [0u8; 1];
        for i in ready {
            let Some((proto, port, socket)) = self.sockets.get(i) else {
                continue;
            };
            for _ in 0..PER_TURN {
                let (src, dst) = match socket {
                    Socket::Tcp(listener) => match listener.accept() {
                        Ok((mut stream, peer)) => {
                            if let Some(banner) = &self.banner {
                                // Best effort: a client that is gone already is no matter.
                                let _ = stream.set_nonblocking(true);
                                let _ = stream.write(banner);
                            }
                            let dst = stream.local_addr().map(|a| a.ip());
                            (peer.ip(), dst)
                        }
                        Err(_) => break,
                    },
                    Socket::Udp(udp) => match udp.recv_from(&mut datagram) {
                        Ok((_, peer)) => (peer.ip(), udp.local_addr().map(|a| a.ip())),
                        Err(_) => break,
                    },
                };
                out.push(Arrival {
                    src: src.to_canonical(),
                    dst: dst.map_or(src, |a| a.to_canonical()),
                    proto: *proto,
                    port: *port,
                });
            }
        }
    }
}

/// A non-blocking socket on `port` for every address: `::` (dual-stack), else `0.0.0.0`.
fn bind(proto: Proto, port: u16) -> io::Result<Socket> {
    Ok(match proto {
        Proto::Tcp => {
            let listener = bind_any(port, TcpListener::bind)?;
            listener.set_nonblocking(true)?;
            Socket::Tcp(listener)
        }
        Proto::Udp => {
            let udp = bind_any(port, UdpSocket::bind)?;
            udp.set_nonblocking(true)?;
            Socket::Udp(udp)
        }
        // Connect mode binds TCP and UDP traps only ([`Traps::bound_ports`] names no other).
        Proto::Sctp | Proto::Ip => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("connect mode binds no {} trap", proto.as_str()),
            ));
        }
    })
}

/// `bind` on `::` (dual-stack), or on `0.0.0.0` when the host has no IPv6.
fn bind_any<T>(port: u16, bind: impl Fn(SocketAddr) -> io::Result<T>) -> io::Result<T> {
    bind(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port))).or_else(|e| {
        let no_ipv6 = matches!(
            e.raw_os_error().map(nix::errno::Errno::from_raw),
            Some(nix::errno::Errno::EAFNOSUPPORT | nix::errno::Errno::EADDRNOTAVAIL)
        );
        if no_ipv6 {
            bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)))
        } else {
            Err(e)
        }
    })
}

/// Makes sure `ports` sockets fit under the open-files limit, raising the soft limit up to the
/// hard one if needed.
fn ensure_fds(ports: usize) -> Result<(), ConnectError> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let needed = u64::try_from(ports)
        .unwrap_or(u64::MAX)
        .saturating_add(SPARE_FDS);
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return Ok(());
    };
    if needed <= soft {
        return Ok(());
    }
    if needed <= hard && setrlimit(Resource::RLIMIT_NOFILE, needed, hard).is_ok() {
        return Ok(());
    }
    Err(ConnectError::TooFewFds {
        needed,
        ports,
        limit: hard,
    })
}
