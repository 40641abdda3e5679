//! Adding blocks to the kernel: scansentry's netlink backend against running `nft` once per
//! address, side by side in one run, in a network namespace made for the run (root needed).
//!
//! Run: `cargo bench --bench netlink` (as root). Results go in BENCHMARKS.md.
#![expect(
    clippy::disallowed_methods,
    reason = "a benchmark measures wall-clock time: it is a shell"
)]

use std::net::Ipv6Addr;
use std::process::Command;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use scansentry::firewall::nft::{Hook, NftConfig, NftFirewall};
use scansentry::firewall::{Action, Firewall};

/// The namespace of the run, deleted on drop (also when the benchmark panics).
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// The `i`-th address of the benchmark: 2001:db8::/32 (the documentation range, which the lab
/// rules allow and which has room for every address the run needs).
fn addr(i: u32) -> Ipv6Addr {
    Ipv6Addr::from(0x2001_0db8_0000_0000_0000_0000_0000_0000u128 + u128::from(i))
}

fn block(i: u32) -> Action {
    Action::Block {
        net: IpNet::from(std::net::IpAddr::V6(addr(i))),
        ttl: Duration::from_secs(3600),
    }
}

/// The `p`-th per-mille of a sorted sample (500: the median).
fn percentile(sorted: &[Duration], per_mille: usize) -> Duration {
    sorted[(sorted.len() - 1) * per_mille / 1000]
}

/// Adds 100 addresses from `first` with one `nft` run each; returns the times.
fn nft_adds(first: u32) -> Vec<Duration> {
    let mut execs = Vec::new();
    for i in first..first + 100 {
        let t = Instant::now();
        let out = Command::new("nft")
            .args([
                "add",
                "element",
                "inet",
                "scansentry",
                "blocked6",
                &format!("{{ {} timeout 1h }}", addr(i)),
            ])
            .output()
            .expect("nft");
        execs.push(t.elapsed());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    execs.sort();
    execs
}

fn main() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if !status
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
    {
        eprintln!("netlink benchmark: needs root (it makes a network namespace); run it as root");
        std::process::exit(77);
    }
    let ns = Netns(format!("sst-bench-{}", std::process::id()));
    let ok = Command::new("ip")
        .args(["netns", "add", &ns.0])
        .status()
        .expect("ip");
    assert!(ok.success(), "ip netns add failed");
    // Enter it for good: this process, and the `nft` processes it starts, work inside.
    let file = std::fs::File::open(format!("/run/netns/{}", ns.0)).expect("netns file");
    nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");

    let size = 1_000_000;
    let mut fw = NftFirewall::new(NftConfig::Own {
        forward: true,
        hook: Hook::Input,
        priority: -10,
        set_size: size,
        first_line: None,
    })
    .expect("netlink socket");
    fw.ensure_ready(&[]).expect("table");

    // Every address is an IPv6 address of 2001:db8::/32 (see `addr`); single addresses go to
    // the hash set blocked6, networks to the interval set blocked6_net.

    // 1. One block per call, as the daemon does for a single detection.
    let mut singles = Vec::new();
    for i in 0..2000 {
        let a = [block(i)];
        let t = Instant::now();
        fw.apply(&a).expect("block");
        singles.push(t.elapsed());
    }
    singles.sort();

    // 2. `nft add element` once per address, into the same set (2,000 elements so far).
    let execs_small = nft_adds(200_000);

    // 3. Batches of 1,000 blocks, 100,000 in all.
    let n = 100_000u32;
    let actions: Vec<Action> = (10_000..10_000 + n).map(block).collect();
    let t = Instant::now();
    for chunk in actions.chunks(1000) {
        fw.apply(chunk).expect("batch");
    }
    let batched = f64::from(n) / t.elapsed().as_secs_f64();

    // 4. `nft` again, now that the set holds 102,000 elements.
    let execs_large = nft_adds(300_000);

    // 5. Networks (the interval set), one /64 per batch, 2,000 of them.
    let mut nets = Vec::new();
    for i in 0..2000u32 {
        let prefix =
            Ipv6Addr::from(0x2001_0db8_0001_0000_0000_0000_0000_0000u128 + (u128::from(i) << 64));
        let a = [Action::Block {
            net: IpNet::new(std::net::IpAddr::V6(prefix), 64).expect("valid prefix"),
            ttl: Duration::from_secs(3600),
        }];
        let t = Instant::now();
        fw.apply(&a).expect("block a network");
        nets.push(t.elapsed());
    }
    nets.sort();

    // 6. The socket-table read that checks a detection before it acts: sock_diag against
    //    /proc/net, with 200 TCP listeners and 50 UDP sockets in the namespace.
    let _tcp: Vec<_> = (0..200)
        .map(|_| std::net::TcpListener::bind("[::]:0").expect("listener"))
        .collect();
    let _udp: Vec<_> = (0..50)
        .map(|_| std::net::UdpSocket::bind("0.0.0.0:0").expect("udp socket"))
        .collect();
    let mut reads = Vec::new();
    for (name, read) in [
        (
            "sock_diag",
            scansentry::host::read_listeners as fn() -> std::io::Result<_>,
        ),
        ("/proc/net", scansentry::host::read_proc_listeners),
    ] {
        let mut times = Vec::new();
        for _ in 0..500 {
            let t = Instant::now();
            read().expect("socket table");
            times.push(t.elapsed());
        }
        times.sort();
        reads.push((name, times));
    }

    let listed = fw.list().expect("list").len();
    let med = percentile(&singles, 500);
    let exec_med = percentile(&execs_small, 500);
    println!("elements in the set at the end: {listed}");
    println!("| method | median | p99 | rate |");
    println!("|---|---|---|---|");
    println!(
        "| netlink, one block per batch (2,000) | {:.1} µs | {:.1} µs | {:.0}/s |",
        med.as_secs_f64() * 1e6,
        percentile(&singles, 990).as_secs_f64() * 1e6,
        1.0 / med.as_secs_f64()
    );
    println!("| netlink, batches of 1,000 (100,000) | | | {batched:.0}/s |");
    let net_med = percentile(&nets, 500);
    println!(
        "| netlink, one /64 per batch into the interval set (2,000) | {:.1} µs | {:.1} µs | {:.0}/s |",
        net_med.as_secs_f64() * 1e6,
        percentile(&nets, 990).as_secs_f64() * 1e6,
        1.0 / net_med.as_secs_f64()
    );
    for (what, execs) in [
        ("2,000 elements in the set", &execs_small),
        ("102,000 elements in the set", &execs_large),
    ] {
        let m = percentile(execs, 500);
        println!(
            "| `nft add element` per address, {what} ({}) | {:.2} ms | {:.2} ms | {:.0}/s |",
            execs.len(),
            m.as_secs_f64() * 1e3,
            percentile(execs, 990).as_secs_f64() * 1e3,
            1.0 / m.as_secs_f64()
        );
    }
    for (name, times) in &reads {
        println!(
            "| socket table via {name}, 250 sockets (500 reads) | {:.1} µs | {:.1} µs | |",
            percentile(times, 500).as_secs_f64() * 1e6,
            percentile(times, 990).as_secs_f64() * 1e6,
        );
    }
    println!(
        "single add: netlink is {:.0}x faster than one nft exec",
        exec_med.as_secs_f64() / med.as_secs_f64()
    );
}
