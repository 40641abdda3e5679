//! Regressions found in review (issue 13: heap corruption, poisoned batches, leaked sockets,
//! destroyed routes), each against the real kernel in network namespaces the test makes and
//! removes. Each test failed on the code before its fix.
//!
//! Run as root: `cargo test --test regressions -- --ignored` (the README's test command
//! includes it).

mod support;

use std::collections::HashSet;
use std::net::Ipv6Addr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::netns::{Daemon, NetnsPair, TempDir, require_root, wait_until};

const DEADLINE: Duration = Duration::from_secs(10);

/// The elements of a set of the daemon's table, as nft prints them (addresses and prefixes).
fn set_elements(lab: &NetnsPair, set: &str) -> Vec<String> {
    let out = lab.exec(
        &lab.a,
        &["nft", "-j", "list", "set", "inet", "scansentry", set],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|o| o.get("set"))
        .and_then(|s| s.get("elem"))
        .and_then(|e| e.as_array())
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| match e {
            serde_json::Value::String(s) => s.clone(),
            // {"elem": {"val": …, "expires": …}} or {"prefix": {"addr": …, "len": …}}
            other => {
                let inner = other.get("elem").map_or(other, |e| &e["val"]);
                match inner {
                    serde_json::Value::String(s) => s.clone(),
                    p => format!(
                        "{}/{}",
                        p["prefix"]["addr"].as_str().unwrap(),
                        p["prefix"]["len"]
                    ),
                }
            }
        })
        .collect()
}

fn micros_since_epoch(at: SystemTime) -> u64 {
    u64::try_from(at.duration_since(UNIX_EPOCH).unwrap().as_micros()).unwrap()
}

/// Issue 13, 1: the whole never-block list went into one netlink message, past the end of
/// nftnl's buffer: 1,400 entries lost most of them silently, 6,000 corrupted the heap.
#[test]
#[ignore = "needs root + netns: cargo test --test regressions -- --ignored"]
fn issue_13_ten_thousand_never_block_entries_all_reach_the_allow_sets() {
    require_root();
    let lab = NetnsPair::new();
    let dir = TempDir::new("regress");
    // Every fourth address, so that no two entries merge into one interval. IPv4: the lab's
    // two /24 hold 252 such entries (the packing does not depend on the family; the unit test
    // packs 10,000 IPv4 entries).
    let v6: Vec<Ipv6Addr> = (0..10_000u128)
        .map(|i| Ipv6Addr::from((0x2001_0db8_0000_00ff_u128 << 64) + i * 4))
        .collect();
    // From .4 on: the lab's own addresses (.1 to .3) would merge with their neighbours.
    let v4: Vec<String> = (2..128u32)
        .flat_map(|i| {
            [
                format!("198.51.100.{}", i * 2),
                format!("203.0.113.{}", i * 2),
            ]
        })
        .collect();
    let file = dir.0.join("never-block");
    let mut text: Vec<String> = v6.iter().map(ToString::to_string).collect();
    text.extend(v4.iter().cloned());
    std::fs::write(&file, text.join("\n")).unwrap();
    let daemon = Daemon::spawn(
        &lab.a,
        &dir.0,
        &format!("[never-block]\nfile = \"{}\"\n", file.display()),
    );
    let allow6: HashSet<String> = set_elements(&lab, "allow6").into_iter().collect();
    let missing6 = v6
        .iter()
        .filter(|a| !allow6.contains(&a.to_string()))
        .count();
    assert_eq!(
        missing6,
        0,
        "IPv6 entries missing from allow6: {}",
        daemon.err()
    );
    let allow4: HashSet<String> = set_elements(&lab, "allow4").into_iter().collect();
    let missing4: Vec<&String> = v4.iter().filter(|a| !allow4.contains(*a)).collect();
    assert!(missing4.is_empty(), "missing from allow4: {missing4:?}");
    // And the daemon is still there to answer.
    let status = daemon.ctl(&["status"]);
    assert!(status.status.success(), "{}", daemon.err());
}

/// Issue 13, 1: the same path at start, with 100,000 blocks from the state file put back.
#[test]
#[ignore = "needs root + netns: cargo test --test regressions -- --ignored"]
fn issue_13_a_hundred_thousand_restored_blocks_all_reach_the_kernel() {
    require_root();
    let lab = NetnsPair::new();
    let dir = TempDir::new("regress");
    #[expect(
        clippy::disallowed_methods,
        reason = "the blocks must be due now, by the wall clock the daemon reads"
    )]
    let now = SystemTime::now();
    let since = micros_since_epoch(now);
    let until = micros_since_epoch(now + Duration::from_secs(3600));
    // 90,000 addresses (the hash set) and 10,000 /64s (the interval set).
    let nets: Vec<String> = (0..90_000u128)
        .map(|i| format!("{}/128", Ipv6Addr::from((0x2001_0db8_0001_u128 << 80) + i)))
        .chain((0..10_000u128).map(|i| {
            format!(
                "{}/64",
                Ipv6Addr::from((0x2001_0db8_0002_u128 << 80) + (i << 64))
            )
        }))
        .collect();
    let blocks: Vec<serde_json::Value> = nets
        .iter()
        .map(|net| {
            serde_json::json!({
                "net": net, "since": since, "until": until, "offence": 1,
                "kind": "syn", "ports": ["22/tcp"]
            })
        })
        .collect();
    let state = serde_json::json!({ "format": 1, "blocks": blocks, "offenders": [] });
    std::fs::create_dir_all(dir.0.join("state")).unwrap();
    std::fs::write(dir.0.join("state/state.json"), state.to_string()).unwrap();
    let daemon = Daemon::spawn(&lab.a, &dir.0, "[respond]\nmax-blocks = 200000\n");
    assert!(
        wait_until(DEADLINE, || daemon
            .out()
            .contains("put back 100000 blocks that were still due")),
        "{}\n{}",
        daemon.out(),
        daemon.err()
    );
    let hosts = set_elements(&lab, "blocked6");
    let networks = set_elements(&lab, "blocked6_net");
    assert_eq!((hosts.len(), networks.len()), (90_000, 10_000));
    let networks: HashSet<String> = networks.into_iter().collect();
    assert!(
        networks.contains("2001:db8:2:1234::/64"),
        "a /64 of the state file"
    );
}
