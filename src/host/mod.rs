//! What the host has: its addresses and its listening sockets. The parsers are **pure** (text in,
//! data out, tested on fixtures); the readers are **shell**.
//!
//! Listening sockets come from the kernel's socket table of the reader's network namespace,
//! over sock_diag netlink ([`sockdiag`]), or from `/proc/net/{tcp,tcp6,udp,udp6}` on a kernel
//! built without it: TCP sockets in LISTEN, and every bound UDP socket (a UDP port in use is
//! never a trap).

pub mod fib;
pub mod sockdiag;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::detect::traps::Listeners;
use crate::wire::Proto;

/// One listening socket: protocol, bound address (`None` for the wildcard), port.
pub type Listening = (Proto, Option<IpAddr>, u16);

/// The most a file the administrator names may hold (the configuration, the never-block
/// file): 16 MiB, some 800,000 never-block lines.
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// Reads a file the administrator names (the configuration, the never-block file) as text:
/// a regular file, after symbolic links, of at most [`MAX_FILE_BYTES`]. It is opened without
/// waiting, so a FIFO put in its place is refused, not waited on, and a device (`/dev/zero`)
/// is refused, not read forever. **Shell.**
///
/// # Errors
///
/// What the OS said; `InvalidInput` for a file that is not a regular one, `InvalidData` for
/// one over the limit or not UTF-8.
pub fn read_text(path: &std::path::Path) -> io::Result<String> {
    read_text_and_mode(path).map(|(text, _)| text)
}

/// [`read_text`], and the file's permission bits (of the file that was read).
///
/// # Errors
///
/// As [`read_text`].
pub fn read_text_and_mode(path: &std::path::Path) -> io::Result<(String, u32)> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::fs::PermissionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_NOCTTY).bits())
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let over = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("over the {} MiB a file may hold", MAX_FILE_BYTES >> 20),
        )
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(over());
    }
    let mut text = String::new();
    file.take(MAX_FILE_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(over());
    }
    Ok((text, meta.permissions().mode()))
}

/// TCP state number of LISTEN in `/proc/net/tcp`.
const TCP_LISTEN: u8 = 0x0a;

/// Parses the text of `/proc/net/tcp`, `tcp6`, `udp` or `udp6`. Lines that do not parse are
/// skipped (the format has been stable since Linux 2.2, but a reader must not die on it).
pub fn parse_proc_net(text: &str, proto: Proto) -> Vec<Listening> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let local = fields.nth(1)?;
            let state = u8::from_str_radix(fields.nth(1)?, 16).ok()?;
            if proto == Proto::Tcp && state != TCP_LISTEN {
                return None;
            }
            let (addr, port) = local.split_once(':')?;
            let port = u16::from_str_radix(port, 16).ok()?;
            let addr = parse_proc_addr(addr)?;
            Some((proto, (!addr.is_unspecified()).then_some(addr), port))
        })
        .collect()
}

/// `/proc/net` writes addresses as the hex of the in-memory 32-bit words, each in host order
/// (little-endian on the machines this runs on).
fn parse_proc_addr(hex: &str) -> Option<IpAddr> {
    let word = |i: usize| -> Option<[u8; 4]> {
        let w = u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok()?;
        Some(w.to_le_bytes())
    };
    match hex.len() {
        8 => Some(IpAddr::V4(Ipv4Addr::from(word(0)?))),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            Some(IpAddr::V6(Ipv6Addr::from(bytes)).to_canonical())
        }
        _ => None,
    }
}

/// The sockets that accept traffic in the current network namespace, from sock_diag: TCP
/// listeners, UDP sockets bound to a port, and SCTP listening endpoints, IPv4 and IPv6.
///
/// # Errors
///
/// When the kernel cannot be asked (see [`sockdiag::SockDiag::dump`]). An IPv6 stack that is
/// turned off is no error, nor a kernel without SCTP (no `sctp` module, or no `sctp_diag`:
/// the request fails with `ENOENT`): then no SCTP listener is read, and the host's own INIT
/// ACKs still show one (`pipeline`), while without SCTP in the kernel nothing can listen.
pub fn listening_sockets() -> io::Result<Vec<sockdiag::Socket>> {
    use sockdiag::state;
    let mut sockets = dump_both_families(&[
        (Proto::Tcp, state::only(state::LISTEN)),
        (Proto::Udp, state::ALL),
        (Proto::Sctp, state::only(state::LISTEN)),
    ])?;
    // sctp_diag dumps every endpoint for LISTEN: keep the listening ones (SCTP_SS_LISTENING
    // is TCP_LISTEN's number).
    sockets.retain(|s| s.port != 0 && (s.proto != Proto::Sctp || s.state == state::LISTEN));
    Ok(sockets)
}

/// The established TCP connections of the current network namespace (both families), from
/// sock_diag: who this host is in conversation with now.
///
/// # Errors
///
/// When the kernel cannot be asked (see [`sockdiag::SockDiag::dump`]).
pub fn established_sockets() -> io::Result<Vec<sockdiag::Socket>> {
    use sockdiag::state;
    dump_both_families(&[(Proto::Tcp, state::only(state::ESTABLISHED))])
}

/// A netlink socket of `protocol`, close-on-exec, whose reads give up after a second (the
/// kernel answers at once; a second is far more than it takes).
fn netlink_socket(protocol: nix::sys::socket::SockProtocol) -> io::Result<std::os::fd::OwnedFd> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, setsockopt, socket, sockopt};
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        protocol,
    )?;
    setsockopt(
        &fd,
        sockopt::ReceiveTimeout,
        &nix::sys::time::TimeVal::new(1, 0),
    )?;
    Ok(fd)
}

/// The sockets of each `(protocol, states)` in `wanted`, IPv4 and IPv6, over one sock_diag
/// socket. An IPv6 stack that is turned off is no error.
fn dump_both_families(wanted: &[(Proto, u32)]) -> io::Result<Vec<sockdiag::Socket>> {
    use sockdiag::{AF_INET, AF_INET6};
    let mut diag = sockdiag::SockDiag::open()
        .map_err(|e| io::Error::new(e.kind(), format!("sock_diag: {e}")))?;
    let mut sockets = Vec::new();
    for family in [AF_INET, AF_INET6] {
        for &(proto, states) in wanted {
            match diag.dump(family, proto, states, &mut sockets) {
                Ok(()) => {}
                // No SCTP in this kernel (issue 28): no SCTP socket either.
                Err(e)
                    if proto == Proto::Sctp
                        && e.raw_os_error().map(nix::errno::Errno::from_raw)
                            == Some(nix::errno::Errno::ENOENT) => {}
                Err(e)
                    if family == AF_INET6
                        && matches!(
                            e.raw_os_error().map(nix::errno::Errno::from_raw),
                            Some(nix::errno::Errno::EAFNOSUPPORT | nix::errno::Errno::ENOENT)
                        ) => {}
                Err(e) => return Err(io::Error::new(e.kind(), format!("sock_diag: {e}"))),
            }
        }
    }
    Ok(sockets)
}

/// Reads the listening sockets of the current network namespace: from sock_diag, or from
/// `/proc/net` when the kernel cannot answer over netlink.
///
/// # Errors
///
/// When neither source can be read.
pub fn read_listeners() -> io::Result<Listeners> {
    match listening_sockets() {
        Ok(sockets) => {
            let mut listeners = Listeners::new();
            for s in sockets {
                listeners.insert(s.proto, Some(s.addr), s.port);
            }
            Ok(listeners)
        }
        Err(e) => {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                tracing::warn!(
                    "cannot read the socket table over sock_diag netlink ({e}); reading \
                     /proc/net instead, about 50 times slower"
                );
            });
            read_proc_listeners()
        }
    }
}

/// Reads the listening sockets of the current network namespace from `/proc/net`.
///
/// # Errors
///
/// When `/proc/thread-self/net/tcp` cannot be read (no `/proc`). Missing IPv6 tables (IPv6 disabled) are
/// fine.
pub fn read_proc_listeners() -> io::Result<Listeners> {
    let mut listeners = Listeners::new();
    for (file, proto, required) in [
        ("/proc/thread-self/net/tcp", Proto::Tcp, true),
        ("/proc/thread-self/net/tcp6", Proto::Tcp, false),
        ("/proc/thread-self/net/udp", Proto::Udp, true),
        ("/proc/thread-self/net/udp6", Proto::Udp, false),
    ] {
        match std::fs::read_to_string(file) {
            Ok(text) => {
                for (proto, addr, port) in parse_proc_net(&text, proto) {
                    listeners.insert(proto, addr, port);
                }
            }
            Err(e) if !required && e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io::Error::new(e.kind(), format!("{file}: {e}"))),
        }
    }
    Ok(listeners)
}

/// The local port range for outgoing connections (`net.ipv4.ip_local_port_range`), or Linux's
/// default when it cannot be read.
pub fn local_port_range() -> std::ops::RangeInclusive<u16> {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| {
            let mut it = t.split_whitespace().map(str::parse::<u16>);
            match (it.next(), it.next()) {
                (Some(Ok(lo)), Some(Ok(hi))) if lo <= hi => Some(lo..=hi),
                _ => None,
            }
        })
        .unwrap_or(crate::config::LINUX_EPHEMERAL_PORTS)
}

/// The reverse-path check the kernel makes of IPv4 packets that come in on `interface` (its
/// name; `None` when unknown): `rp_filter` of `all` and of the interface, combined as the kernel
/// does. Unreadable settings count as strict, the safe side.
pub fn kernel_reverse_path(interface: Option<&str>) -> crate::trust::ReversePath {
    let read = |name: &str| {
        std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{name}/rp_filter"))
            .ok()
            .and_then(|t| t.trim().parse::<u8>().ok())
    };
    let all = read("all");
    let dev = interface.map_or(Some(0), read);
    match (all, dev) {
        (Some(all), Some(dev)) => crate::trust::ReversePath::from_rp_filter(all, dev),
        _ => crate::trust::ReversePath::Strict,
    }
}

/// Every address of every interface, with the interface's name.
///
/// # Errors
///
/// When libpcap cannot list the interfaces.
pub fn interface_addresses() -> Result<Vec<(String, IpAddr)>, pcap::Error> {
    Ok(pcap::Device::list()?
        .into_iter()
        .flat_map(|d| {
            let name = d.name;
            d.addresses
                .into_iter()
                .map(move |a| (name.clone(), a.addr.to_canonical()))
        })
        .collect())
}

/// rtnetlink multicast groups: links, IPv4 and IPv6 addresses and routes.
const RTMGRP_LINK: u32 = 0x1;
const RTMGRP_IPV4_IFADDR: u32 = 0x10;
const RTMGRP_IPV4_ROUTE: u32 = 0x40;
const RTMGRP_IPV6_IFADDR: u32 = 0x100;
const RTMGRP_IPV6_ROUTE: u32 = 0x400;

/// Calls `changed` (from a thread of its own) whenever an interface, an address or a route of
/// this network namespace changes, and when `/etc/resolv.conf` is replaced or rewritten
/// (checked every 2 s), so that the daemon can rebuild its never-block list and its idea of
/// which addresses are its own.
///
/// # Errors
///
/// When the rtnetlink socket cannot be opened.
pub fn watch(changed: Box<dyn Fn() + Send>) -> io::Result<()> {
    use nix::sys::socket::{
        AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv,
        setsockopt, socket, sockopt,
    };
    use std::os::fd::AsRawFd;

    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )?;
    let groups = RTMGRP_LINK
        | RTMGRP_IPV4_IFADDR
        | RTMGRP_IPV4_ROUTE
        | RTMGRP_IPV6_IFADDR
        | RTMGRP_IPV6_ROUTE;
    bind(fd.as_raw_fd(), &NetlinkAddr::new(0, groups))?;
    // A wake-up every 2 s to look at resolv.conf.
    setsockopt(
        &fd,
        sockopt::ReceiveTimeout,
        &nix::sys::time::TimeVal::new(2, 0),
    )?;
    std::thread::Builder::new()
        .name("host-watch".into())
        .spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            let mut resolv = resolv_conf_stamp();
            loop {
                match recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                    // Any message of these groups is a change; overflow means we missed some.
                    Ok(_) | Err(nix::errno::Errno::ENOBUFS) => changed(),
                    Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
                    Err(_) => return,
                }
                let now = resolv_conf_stamp();
                if now != resolv {
                    resolv = now;
                    changed();
                }
            }
        })?;
    Ok(())
}

/// What identifies a version of resolv.conf: its target, size and modification time.
fn resolv_conf_stamp() -> Option<(std::path::PathBuf, u64, std::time::SystemTime)> {
    let path = std::fs::canonicalize(crate::never_block::discover::RESOLV_CONF).ok()?;
    let meta = std::fs::metadata(&path).ok()?;
    Some((path, meta.len(), meta.modified().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1256 1 0000000000000000 100 0 0 10 0
   1: 0100007F:0277 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1257 1 0000000000000000 100 0 0 10 0
   2: 016433C6:C350 026433C6:0050 01 00000000:00000000 00:00000000 00000000  1000        0 1258 1 0000000000000000 20 4 30 10 -1
";

    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2000 1 0000000000000000 100 0 0 10 0
   1: B80D0120000000000000000001000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2001 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000164A8C0:0019 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2002 1 0000000000000000 100 0 0 10 0
";

    const UDP: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 3000 2 0000000000000000 0
  101: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 3001 2 0000000000000000 0
";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn tcp_keeps_only_listeners() {
        assert_eq!(
            parse_proc_net(TCP, Proto::Tcp),
            [
                (Proto::Tcp, None, 22),
                (Proto::Tcp, Some(ip("127.0.0.1")), 631)
            ]
        );
    }

    #[test]
    fn tcp6_addresses_wildcard_specific_and_v4_mapped() {
        assert_eq!(
            parse_proc_net(TCP6, Proto::Tcp),
            [
                (Proto::Tcp, None, 8080),
                (Proto::Tcp, Some(ip("2001:db8::1")), 443),
                (Proto::Tcp, Some(ip("192.168.100.1")), 25),
            ]
        );
    }

    #[test]
    fn udp_keeps_every_bound_socket() {
        assert_eq!(
            parse_proc_net(UDP, Proto::Udp),
            [
                (Proto::Udp, Some(ip("127.0.0.53")), 53),
                (Proto::Udp, None, 68)
            ]
        );
    }

    #[test]
    fn garbage_lines_are_skipped() {
        let text = "header\nnonsense\n 0: ZZ:0016 x 0A\n 1: 0100007F 00000000:0000 0A\n";
        assert_eq!(parse_proc_net(text, Proto::Tcp), []);
    }
}
