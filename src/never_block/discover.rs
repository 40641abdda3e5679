//! Discovery of the never-block list from the host's state: interface addresses, default
//! gateways (IPv4 and IPv6), nameservers of `/etc/resolv.conf` and, when that points at
//! systemd-resolved's stub, its upstream servers. [`discover`] is **pure** (state in, entries
//! out, tested on fixtures); the host (the daemon's `System`) gathers the state.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use super::{Entry, Reason};

/// Where the resolver configuration lives.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";
/// systemd-resolved's list of upstream servers, behind its stub at 127.0.0.53.
pub const RESOLVED_UPSTREAM: &str = "/run/systemd/resolve/resolv.conf";

/// What discovery looks at.
#[derive(Clone, Debug, Default)]
pub struct HostState {
    /// Every interface address, with the interface's name.
    pub interfaces: Vec<(String, IpAddr)>,
    /// The text of `/proc/net/route`.
    pub routes4: String,
    /// The text of `/proc/net/ipv6_route`.
    pub routes6: String,
    /// The resolver configuration: path and text.
    pub resolv_conf: Option<(PathBuf, String)>,
    /// systemd-resolved's upstream list: path and text (read only when needed).
    pub resolved_upstream: Option<(PathBuf, String)>,
}

/// The never-block entries the host's state calls for, each with its reason.
pub fn discover(state: &HostState) -> Vec<Entry> {
    let mut out: Vec<Entry> = state
        .interfaces
        .iter()
        .map(|(name, addr)| Entry {
            net: (*addr).into(),
            reason: Reason::Interface(name.clone()),
        })
        .collect();
    for (iface, gw) in default_gateways4(&state.routes4)
        .into_iter()
        .chain(default_gateways6(&state.routes6))
    {
        out.push(Entry {
            net: gw.into(),
            reason: Reason::Gateway(iface),
        });
    }
    if let Some((path, text)) = &state.resolv_conf {
        let servers = nameservers(text);
        let stub = servers.iter().any(|s| is_resolved_stub(*s));
        for s in servers {
            out.push(Entry {
                net: s.into(),
                reason: Reason::Nameserver(path.clone()),
            });
        }
        if stub && let Some((path, text)) = &state.resolved_upstream {
            for s in nameservers(text) {
                out.push(Entry {
                    net: s.into(),
                    reason: Reason::Nameserver(path.clone()),
                });
            }
        }
    }
    out
}

/// systemd-resolved's stub listeners.
pub fn is_resolved_stub(addr: IpAddr) -> bool {
    addr == IpAddr::V4(Ipv4Addr::new(127, 0, 0, 53))
        || addr == IpAddr::V4(Ipv4Addr::new(127, 0, 0, 54))
}

/// `nameserver ADDR` lines (an IPv6 scope such as `%eth0` is dropped).
pub fn nameservers(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver"))
                .then(|| words.next())
                .flatten()
        })
        .filter_map(|addr| addr.split('%').next()?.parse().ok())
        .collect()
}

/// Default IPv4 gateways from `/proc/net/route`: destination and mask 0, the gateway flag,
/// gateway address in host byte order.
pub fn default_gateways4(text: &str) -> Vec<(String, IpAddr)> {
    const RTF_GATEWAY: u32 = 0x2;
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (iface, dest, gw, flags, mask) =
                (f.first()?, f.get(1)?, f.get(2)?, f.get(3)?, f.get(7)?);
            let hex = |s: &str| u32::from_str_radix(s, 16).ok();
            let gateway = hex(gw)?;
            (hex(dest)? == 0 && hex(mask)? == 0 && hex(flags)? & RTF_GATEWAY != 0 && gateway != 0)
                .then(|| {
                    (
                        iface.to_string(),
                        IpAddr::V4(Ipv4Addr::from(gateway.to_le_bytes())),
                    )
                })
        })
        .collect()
}

/// Default IPv6 gateways from `/proc/net/ipv6_route`: `::/0` with a next hop (addresses in
/// network byte order).
pub fn default_gateways6(text: &str) -> Vec<(String, IpAddr)> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (dest, plen, next_hop, iface) = (f.first()?, f.get(1)?, f.get(4)?, f.get(9)?);
            let addr = |s: &str| u128::from_str_radix(s, 16).ok().map(Ipv6Addr::from);
            let hop = addr(next_hop)?;
            (addr(dest)?.is_unspecified()
                && *plen == "00"
                && !hop.is_unspecified()
                && *iface != "lo")
                .then(|| (iface.to_string(), IpAddr::V6(hop)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTE: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\tFE6433C6\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t006433C6\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
wg0\t00000000\t00000000\t0001\t0\t0\t50\t00000000\t0\t0\t0
";

    const ROUTE6: &str = "20010db8000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 20010db80000000000000000000000fe 00000400 00000002 00000000 00000003     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
";

    const RESOLV_STUB: &str = "# managed by systemd-resolved\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch example.org\n";
    const RESOLVED: &str =
        "nameserver 203.0.113.53\nnameserver 2001:db8::53\nnameserver fe80::1%eth0\n";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn default_gateways_of_both_families() {
        assert_eq!(
            default_gateways4(ROUTE),
            [("eth0".into(), ip("198.51.100.254"))]
        );
        assert_eq!(
            default_gateways6(ROUTE6),
            [("eth0".into(), ip("2001:db8::fe"))]
        );
        assert!(default_gateways4("garbage\n1 2 3\n").is_empty());
        assert!(default_gateways6("00 zz").is_empty());
    }

    #[test]
    fn nameservers_with_scopes_and_comments() {
        assert_eq!(
            nameservers(RESOLVED),
            [ip("203.0.113.53"), ip("2001:db8::53"), ip("fe80::1")]
        );
        assert!(nameservers("# nameserver 1.2.3.4\nnameserver\n").is_empty());
    }

    #[test]
    fn discovery_gives_every_source_with_its_reason() {
        let state = HostState {
            interfaces: vec![("eth0".into(), ip("198.51.100.1"))],
            routes4: ROUTE.into(),
            routes6: ROUTE6.into(),
            resolv_conf: Some((RESOLV_CONF.into(), RESOLV_STUB.into())),
            resolved_upstream: Some((RESOLVED_UPSTREAM.into(), RESOLVED.into())),
        };
        let got: Vec<String> = discover(&state)
            .iter()
            .map(|e| format!("{} {}", e.net, e.reason))
            .collect();
        assert_eq!(
            got,
            [
                "198.51.100.1/32 address of interface eth0",
                "198.51.100.254/32 default gateway on eth0",
                "2001:db8::fe/128 default gateway on eth0",
                "127.0.0.53/32 nameserver in /etc/resolv.conf",
                "203.0.113.53/32 nameserver in /run/systemd/resolve/resolv.conf",
                "2001:db8::53/128 nameserver in /run/systemd/resolve/resolv.conf",
                "fe80::1/128 nameserver in /run/systemd/resolve/resolv.conf",
            ]
        );
    }

    #[test]
    fn upstream_servers_only_count_behind_the_stub() {
        let state = HostState {
            resolv_conf: Some((RESOLV_CONF.into(), "nameserver 198.51.100.53\n".into())),
            resolved_upstream: Some((RESOLVED_UPSTREAM.into(), RESOLVED.into())),
            ..HostState::default()
        };
        assert_eq!(discover(&state).len(), 1);
    }
}
