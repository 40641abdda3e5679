//! The nftables backend against the real kernel, each test in a network namespace it makes and
//! removes. Checks what the backend did with `nft -j list`.
//!
//! Run as root: `cargo test --test nft -- --ignored` (the README's test command includes it).

mod support;

use std::time::Duration;

use std::net::IpAddr;

use ipnet::IpNet;
use scansentry::firewall::nft::{Hook, NftConfig, NftFirewall};
use scansentry::firewall::{Action, Firewall};
use support::netns::{KillOnDrop, Netns, NetnsPair, enter_and_run, require_root, wait_until};

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn own() -> NftConfig {
    NftConfig::Own {
        hook: Hook::Input,
        priority: -10,
        set_size: 1000,
    }
}

fn elements(ns: &Netns, set: &str) -> Vec<serde_json::Value> {
    let v = ns.nft_json(&["list", "set", "inet", "scansentry", set]);
    v["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|o| o.get("set"))
        .and_then(|s| s.get("elem"))
        .and_then(|e| e.as_array())
        .cloned()
        .unwrap_or_default()
}

fn rules(ns: &Netns) -> Vec<serde_json::Value> {
    let v = ns.nft_json(&["list", "table", "inet", "scansentry"]);
    v["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o.get("rule").cloned())
        .collect()
}

#[test]
#[ignore = "needs root + netns: cargo test --test nft -- --ignored"]
fn ensure_twice_is_idempotent_and_keeps_blocks() {
    require_root();
    let ns = Netns::new("nft");
    ns.run(|| {
        let mut fw = NftFirewall::new(own()).unwrap();
        fw.ensure_ready(&[net("198.51.100.1/32")]).unwrap();
        fw.apply(&[
            Action::Block {
                net: net("203.0.113.7/32"),
                ttl: Duration::from_secs(600),
            },
            Action::Block {
                net: net("2001:db8:bad::/64"),
                ttl: Duration::from_secs(600),
            },
        ])
        .unwrap();
        fw.ensure_ready(&[net("198.51.100.1/32")]).unwrap();
        let listed = fw.list().unwrap();
        let nets: Vec<IpNet> = listed.iter().map(|b| b.net).collect();
        assert_eq!(nets, [net("203.0.113.7/32"), net("2001:db8:bad::/64")]);
        for b in &listed {
            let left = b.remaining.expect("a timeout");
            assert!(
                left > Duration::from_secs(590) && left <= Duration::from_secs(600),
                "{left:?}"
            );
        }
    });
    assert_eq!(rules(&ns).len(), 4, "one copy of each rule");
    let allow = elements(&ns, "allow4");
    assert_eq!(allow.len(), 1, "{allow:?}");
}

#[test]
#[ignore = "needs root + netns: cargo test --test nft -- --ignored"]
fn blocking_again_refreshes_and_unblocking_removes() {
    require_root();
    let ns = Netns::new("nft");
    ns.run(|| {
        let mut fw = NftFirewall::new(own()).unwrap();
        fw.ensure_ready(&[]).unwrap();
        let a = net("203.0.113.7/32");
        fw.apply(&[Action::Block {
            net: a,
            ttl: Duration::from_secs(10),
        }])
        .unwrap();
        fw.apply(&[Action::Block {
            net: a,
            ttl: Duration::from_secs(3600),
        }])
        .unwrap();
        let listed = fw.list().unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].remaining.unwrap() > Duration::from_secs(3500));
        fw.apply(&[Action::Unblock { net: a }]).unwrap();
        assert_eq!(fw.list().unwrap(), []);
        // Unblocking what is not blocked is fine.
        fw.apply(&[Action::Unblock { net: a }]).unwrap();
    });
}

#[test]
#[ignore = "needs root + netns: cargo test --test nft -- --ignored"]
fn a_thousand_blocks_in_one_call_and_the_table_restored_when_deleted() {
    require_root();
    let ns = Netns::new("nft");
    let actions: Vec<Action> = (0..1500u32)
        .map(|i| Action::Block {
            net: IpNet::from(IpAddr::from(std::net::Ipv4Addr::from(0xcb00_7100 + i * 2))),
            ttl: Duration::from_secs(600),
        })
        .collect();
    ns.run(|| {
        let mut fw = NftFirewall::new(own()).unwrap();
        fw.ensure_ready(&[]).unwrap();
        fw.apply(&actions[..999]).unwrap();
    });
    // The administrator deletes the table; the next block rebuilds it.
    let out = ns.exec(&["nft", "delete", "table", "inet", "scansentry"]);
    assert!(out.status.success());
    ns.run(|| {
        let mut fw = NftFirewall::new(own()).unwrap();
        fw.apply(&actions[999..1000]).unwrap();
        assert_eq!(fw.list().unwrap().len(), 1);
    });
    assert_eq!(rules(&ns).len(), 4);
}

#[test]
#[ignore = "needs root + netns: cargo test --test nft -- --ignored"]
fn a_full_set_is_reported_as_full() {
    require_root();
    let ns = Netns::new("nft");
    ns.run(|| {
        let mut fw = NftFirewall::new(NftConfig::Own {
            hook: Hook::Input,
            priority: -10,
            set_size: 10,
        })
        .unwrap();
        fw.ensure_ready(&[]).unwrap();
        // Only an interval's start counts towards the size: ten blocks fit, the eleventh not.
        let actions: Vec<Action> = (0..11u8)
            .map(|i| Action::Block {
                net: net(&format!("203.0.113.{}/32", i * 2)),
                ttl: Duration::from_secs(60),
            })
            .collect();
        fw.apply(&actions[..10]).unwrap();
        let err = fw.apply(&actions[10..]).unwrap_err();
        assert_eq!(err.to_string(), "set inet scansentry blocked4 is full");
    });
}

/// Whether a TCP connection from the scanner's namespace (198.51.100.2) to the victim's port
/// 8080 opens within a second.
fn connects(lab: &NetnsPair) -> bool {
    let script = format!("exec 3<>/dev/tcp/{}/8080", NetnsPair::A4);
    lab.exec(&lab.b, &["timeout", "1", "bash", "-c", &script])
        .status
        .success()
}

/// A listener on port 8080 in the victim's namespace, ended on drop.
fn listener(lab: &NetnsPair) -> KillOnDrop {
    let child = std::process::Command::new("ip")
        .args(["netns", "exec", &lab.a, "timeout", "60", "python3", "-c"])
        .arg("import socket, time\ns = socket.create_server(('0.0.0.0', 8080))\ntime.sleep(60)\n")
        .spawn()
        .expect("python3");
    let guard = KillOnDrop(child);
    assert!(
        wait_until(Duration::from_secs(5), || connects(lab)),
        "the listener did not start"
    );
    guard
}

#[test]
#[ignore = "needs root + netns: cargo test --test nft -- --ignored"]
fn a_blocked_address_cannot_connect_until_unblocked_or_expired() {
    require_root();
    let lab = NetnsPair::new();
    let _server = listener(&lab);
    let scanner = net("198.51.100.2/32");
    enter_and_run(&lab.a, || {
        let mut fw = NftFirewall::new(own()).unwrap();
        fw.ensure_ready(&[]).unwrap();
        fw.apply(&[Action::Block {
            net: scanner,
            ttl: Duration::from_secs(600),
        }])
        .unwrap();
    });
    assert!(!connects(&lab), "a blocked address connected");
    enter_and_run(&lab.a, || {
        let mut fw = NftFirewall::new(own()).unwrap();
        fw.apply(&[Action::Unblock { net: scanner }]).unwrap();
    });
    assert!(connects(&lab), "unblock did not let it back in at once");

    // A short block expires by itself in the kernel.
    enter_and_run(&lab.a, || {
        let mut fw = NftFirewall::new(own()).unwrap();
        fw.apply(&[Action::Block {
            net: scanner,
            ttl: Duration::from_secs(2),
        }])
        .unwrap();
    });
    assert!(!connects(&lab));
    assert!(
        wait_until(Duration::from_secs(5), || connects(&lab)),
        "the block did not expire"
    );
}

#[test]
#[ignore = "needs root + netns: cargo test --test nft -- --ignored"]
fn an_allow_set_address_is_never_dropped_even_when_in_the_block_set() {
    require_root();
    let lab = NetnsPair::new();
    let _server = listener(&lab);
    enter_and_run(&lab.a, || {
        let mut fw = NftFirewall::new(own()).unwrap();
        fw.ensure_ready(&[net("198.51.100.0/30")]).unwrap();
        // An administrator's mistake, or a stale block: the allow rule comes first.
        fw.apply(&[Action::Block {
            net: net("198.51.100.0/24"),
            ttl: Duration::from_secs(600),
        }])
        .unwrap();
    });
    assert!(connects(&lab), "an allow-set address was dropped");
}
