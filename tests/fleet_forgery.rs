//! The fleet under a forger with no credentials (issue 24, finding 1): 16 SYNs forged "from"
//! the administrator's address, sent on the hosts' shared bridge while the hosts route that
//! address by a management link of its own, once got the administrator blocked on every host —
//! each host told the fleet's sweep count of its probes before its reverse-path check. A real
//! nats-server, a sentryd and an nft table in each host's namespace, real nmap. Root.
//!
//! Run: `cargo test --test fleet_forgery -- --ignored --test-threads=1`.

mod support;

use std::net::IpAddr;
use std::time::Duration;

use support::fleet::{ADMIN, FleetLab, host_addr, scanner_addr};
use support::frames::tcp_frame;
use support::netns::{require_root, wait_until};

const SYN: u16 = 0x02;
const HOSTS: usize = 4;
/// A sweep needs 3 hosts on one port, or 6 (host, port) pairs (each host holding at most 3).
const SWEEP: &str = "[fleet.sweep]\nhosts = 3\npairs = 6\n";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The probes each host refused to tell the fleet for its reverse path.
fn refused_for_reverse_path(lab: &FleetLab) -> Vec<u64> {
    lab.hosts
        .iter()
        .map(|h| {
            let status: serde_json::Value =
                serde_json::from_str(&h.ctl(&["status", "--json"])).expect("status as JSON");
            status["fleet"]["probes_refused"]["reverse-path"]
                .as_u64()
                .unwrap_or(0)
        })
        .collect()
}

/// 16 SYNs forged "from" the administrator, 4 to the same unprivileged closed ports of each of
/// 4 hosts (3 hosts on one port, or 6 pairs, make a sweep): each host refuses them before
/// telling the fleet (the route back to the administrator leaves by the management link, not
/// the bridge they came in on), no host's kernel ever holds the administrator, and the
/// administrator still reaches every host. A genuine one-port sweep from a routable scanner is
/// then held by all 4 within a second.
#[test]
#[ignore = "needs root + netns + nats-server: cargo test --test fleet_forgery -- --ignored --test-threads=1"]
fn syns_forged_from_the_administrator_block_nobody_a_genuine_sweep_is_held_by_all() {
    require_root();
    let mut lab = FleetLab::new(HOSTS);
    let management = lab.management();
    lab.start_all(SWEEP);
    let members = format!("{HOSTS} members");
    let all = wait_until(Duration::from_secs(5), || {
        lab.hosts
            .iter()
            .all(|h| h.ctl(&["status"]).contains(&members))
    });
    assert!(all, "the members do not agree yet");
    let _services: Vec<_> = lab.hosts.iter().map(|h| h.listen(8080, 120)).collect();

    let frames: Vec<(usize, Vec<u8>)> = (1..=HOSTS)
        .flat_map(|i| {
            (41_000..41_004).map(move |port| {
                (
                    i,
                    tcp_frame(ip(ADMIN), ip(&host_addr(i)), 40_000, port, SYN),
                )
            })
        })
        .collect();
    assert_eq!(frames.len(), 16);
    lab.inject(&frames);
    // For 2 s after the last frame, no host holds the administrator.
    let held = wait_until(Duration::from_secs(2), || {
        lab.hosts.iter().any(|h| h.holds(ADMIN))
    });
    let holding: Vec<&str> = lab
        .hosts
        .iter()
        .filter(|h| h.holds(ADMIN))
        .map(|h| h.name.as_str())
        .collect();
    assert!(!held, "the administrator is blocked on {holding:?}");
    // Every forged probe was checked where it arrived, and refused there.
    let refused = refused_for_reverse_path(&lab);
    assert_eq!(refused, vec![4; HOSTS], "refused for their reverse path");
    assert!(
        lab.hosts
            .iter()
            .all(|h| !h.daemon().out().contains("a sweep of")),
        "a sweep was found"
    );
    assert!(
        management.connects_to_every_host(HOSTS, 8080),
        "the administrator cannot reach every host"
    );

    // A genuine sweep of one port, from a scanner the hosts route back by the bridge.
    let sweeper = scanner_addr(4);
    lab.sweep(&sweeper, 1, HOSTS, 23);
    let missing = lab.missing(&sweeper, Duration::from_secs(1));
    assert!(
        missing.is_empty(),
        "a second after the sweep, not blocked on {missing:?}"
    );
    assert!(lab.hosts.iter().all(|h| !h.holds(ADMIN)));
}
