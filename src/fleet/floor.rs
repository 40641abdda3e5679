//! The floor: what no fleet message may block, whoever sent it — an address no scanner can
//! have ([`Unroutable`]), a cloud metadata address, a network wider than an IPv4 /24 or an
//! IPv6 /48 (unless the block was made by hand on an origin the receiver names in
//! `accept-wide`). **Pure.** Checked by the sender (a host does not publish what the others
//! would refuse), by a message's own check (a heartbeat's addresses) and by the receiver before
//! its gate ([`super::gate`]).

use std::net::IpAddr;

use ipnet::IpNet;

use crate::trust::Unroutable;

/// The widest IPv4 network a message may block (without `accept-wide`).
pub const WIDEST_V4: u8 = 24;
/// The widest IPv6 network a message may block (without `accept-wide`).
pub const WIDEST_V6: u8 = 48;

/// The cloud metadata addresses (AWS, GCP, Azure, OpenStack; AWS's IPv6 one): a block of one
/// cuts a cloud host off its own configuration and credentials.
pub const METADATA: [IpAddr; 2] = [
    IpAddr::V4(std::net::Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V6(std::net::Ipv6Addr::new(
        0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254,
    )),
];

/// Why no fleet message may block a network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Floor {
    /// It holds (or is inside) a range no scanner can come from.
    Unroutable(Unroutable),
    /// It holds a cloud metadata address.
    Metadata(IpAddr),
    /// It is wider than [`WIDEST_V4`] or [`WIDEST_V6`].
    Wide {
        /// Its prefix length.
        len: u8,
        /// The shortest allowed.
        min: u8,
    },
}

impl std::fmt::Display for Floor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Floor::Unroutable(u) => write!(f, "it is {} address space", u.as_str()),
            Floor::Metadata(a) => write!(f, "it holds the cloud metadata address {a}"),
            Floor::Wide { len, min } => {
                write!(f, "a /{len} is wider than the /{min} a fleet block may be")
            }
        }
    }
}

/// The unroutable ranges, as networks (what [`Unroutable::of`] names address by address).
fn unroutable_ranges() -> [(IpNet, Unroutable); 11] {
    let n = |s: &str| s.parse::<IpNet>().expect("a valid range");
    [
        (n("0.0.0.0/8"), Unroutable::Unspecified),
        (n("127.0.0.0/8"), Unroutable::Loopback),
        (n("169.254.0.0/16"), Unroutable::LinkLocal),
        (n("224.0.0.0/4"), Unroutable::Multicast),
        (n("240.0.0.0/4"), Unroutable::Reserved),
        (n("::/128"), Unroutable::Unspecified),
        (n("::1/128"), Unroutable::Loopback),
        (n("ff00::/8"), Unroutable::Multicast),
        (n("fe80::/10"), Unroutable::LinkLocal),
        (n("::ffff:0:0/96"), Unroutable::V4Mapped),
        (n("::/96"), Unroutable::V4Compatible),
    ]
}

fn overlap(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// What keeps any fleet message from blocking `net`, if something does: an unroutable range
/// or a metadata address it overlaps, or its width — a network wider than an IPv4 /24 or an
/// IPv6 /48 passes only with `wide_ok` (a block by hand from an origin the receiver names in
/// `accept-wide`).
/// **Pure.** Also the sender's rule: a host does not publish what the others would refuse.
pub fn refuses(net: &IpNet, wide_ok: bool) -> Option<Floor> {
    let min = match net {
        IpNet::V4(_) => WIDEST_V4,
        IpNet::V6(_) => WIDEST_V6,
    };
    if net.prefix_len() < min && !wide_ok {
        return Some(Floor::Wide {
            len: net.prefix_len(),
            min,
        });
    }
    if let Some((_, why)) = unroutable_ranges().iter().find(|(r, _)| overlap(r, net)) {
        return Some(Floor::Unroutable(*why));
    }
    METADATA
        .iter()
        .find(|a| net.contains(*a))
        .map(|a| Floor::Metadata(*a))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    /// Issue 24: what a compromised member sends to block what matters, each refused by the
    /// floor whoever sends it; a block by hand wider than a /24 or /48 only with `accept-wide`.
    #[test]
    fn the_floor_refuses_unroutable_metadata_and_wide_networks() {
        use Unroutable::*;
        for (text, why) in [
            ("128.0.0.0/2", Some(Floor::Wide { len: 2, min: 24 })),
            ("203.0.112.0/23", Some(Floor::Wide { len: 23, min: 24 })),
            ("2001:db8::/47", Some(Floor::Wide { len: 47, min: 48 })),
            ("0.0.0.0/0", Some(Floor::Wide { len: 0, min: 24 })),
            ("0.0.0.0/32", Some(Floor::Unroutable(Unspecified))),
            ("169.254.169.254/32", Some(Floor::Unroutable(LinkLocal))),
            ("224.0.0.0/4", Some(Floor::Wide { len: 4, min: 24 })),
            ("224.0.0.0/24", Some(Floor::Unroutable(Multicast))),
            ("240.0.0.0/24", Some(Floor::Unroutable(Reserved))),
            ("255.255.255.255/32", Some(Floor::Unroutable(Reserved))),
            ("127.0.0.1/32", Some(Floor::Unroutable(Loopback))),
            ("::ffff:198.51.100.9/128", Some(Floor::Unroutable(V4Mapped))),
            ("::198.51.100.9/128", Some(Floor::Unroutable(V4Compatible))),
            ("fe80::1/128", Some(Floor::Unroutable(LinkLocal))),
            ("ff02::1/128", Some(Floor::Unroutable(Multicast))),
            ("::/128", Some(Floor::Unroutable(Unspecified))),
            (
                "fd00:ec2::254/128",
                Some(Floor::Metadata("fd00:ec2::254".parse().unwrap())),
            ),
            ("203.0.113.7/32", None),
            ("203.0.113.0/24", None),
            ("2001:db8:1::/48", None),
            ("2001:db8::7/128", None),
        ] {
            assert_eq!(refuses(&net(text), false), why, "{text}");
        }
        // accept-wide lets a wide routable network through, nothing else.
        assert_eq!(refuses(&net("10.0.0.0/8"), true), None);
        assert_eq!(
            refuses(&net("128.0.0.0/2"), true),
            Some(Floor::Unroutable(LinkLocal))
        );
        assert_eq!(
            refuses(&net("224.0.0.0/4"), true),
            Some(Floor::Unroutable(Multicast))
        );
        assert_eq!(
            refuses(&net("169.254.0.0/16"), true),
            Some(Floor::Unroutable(LinkLocal))
        );
        assert_eq!(
            refuses(&net("fd00:ec2::/32"), true),
            Some(Floor::Metadata("fd00:ec2::254".parse().unwrap()))
        );
    }
}
