//! Restart time with 100,000 blocks due: how long `sentryd` takes from its start to "watching"
//! (firewall reconciled, capture open, READY=1), when the kernel lost every block (after a
//! reboot: all 100,000 are put back from the state file) and when the kernel kept them (a
//! restart: they are read back and taken over). Root; in a network namespace of its own.
//!
//! ```text
//! cargo bench --bench restart
//! ```

#[path = "../tests/support/netns.rs"]
#[allow(dead_code, reason = "the lab has more than this benchmark uses")]
mod netns;

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use netns::{Daemon, Netns, TempDir, require_root};
use scansentry::state::{FILE, SavedBlock, State};

const BLOCKS: u32 = 100_000;

fn main() {
    require_root();
    let ns = Netns::new("restart");
    let dir = TempDir::new("restart");
    let state_dir = dir.0.join("state");
    std::fs::create_dir_all(&state_dir).unwrap();
    #[expect(
        clippy::disallowed_methods,
        reason = "the blocks must be due now, by the wall clock the daemon reads"
    )]
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let now_us = u64::try_from(now.as_micros()).unwrap();
    let blocks: Vec<SavedBlock> = (0..BLOCKS)
        .map(|i| SavedBlock {
            net: std::net::IpAddr::V6(Ipv6Addr::from(
                0x2001_0db8_0000_0000_0000_0000_0000_0000u128 + u128::from(i) + 1,
            ))
            .into(),
            since: now_us,
            until: now_us + 3_600_000_000,
            offence: 1,
            kind: "syn".into(),
            ports: vec!["22/tcp".into()],
            origin: None,
            signature: None,
        })
        .collect();
    let state = State {
        format: 1,
        blocks,
        offenders: Vec::new(),
        in_table: false,
    };
    std::fs::write(state_dir.join(FILE), serde_json::to_vec(&state).unwrap()).unwrap();
    let config = "[respond]\nmax-blocks = 200000\n";

    let mut results = Vec::new();
    for case in [
        "the kernel lost them (boot)",
        "the kernel kept them (restart)",
    ] {
        #[expect(clippy::disallowed_methods, reason = "a benchmark measures wall time")]
        let t = Instant::now();
        let daemon = Daemon::spawn_for(&ns.0, &dir.0, config, 600);
        let ready = t.elapsed();
        let listed = ns.exec(&["nft", "list", "set", "inet", "scansentry", "blocked6"]);
        let elements = String::from_utf8_lossy(&listed.stdout)
            .matches("2001:db8::")
            .count();
        assert!(elements >= 1, "no block in the kernel");
        results.push((case, ready, elements));
        // SIGTERM: the blocks stay in the kernel for the second case.
        drop(daemon);
        std::thread::sleep(Duration::from_millis(500));
    }
    println!("| {BLOCKS} blocks due, and | start to ready | elements listed by nft |");
    println!("|---|---|---|");
    for (case, ready, elements) in results {
        println!("| {case} | {:.2} s | {elements} |", ready.as_secs_f64());
    }
}
