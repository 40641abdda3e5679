//! What the kernel's first line costs the traffic it lets through (issue 27's "Cost"): the
//! kernel's CPU time per packet with own mode's table built with the first line, without it,
//! and with no scansentry table at all, each with and without a conntrack rule of the host's
//! own. Each round sends every variant its packets in 10 slices, the variants alternated slice
//! by slice (on, off, on, …: whatever the host does meanwhile falls on all alike); the table
//! is rebuilt for each slice.
//!
//! - **Established flows**: 1,000,000 UDP datagrams (64 bytes) a round over 4 connected flows
//!   (2 IPv4, 2 IPv6) from the scanner's namespace to a socket listening on UDP 5001 in the
//!   victim's, each flow answered once first (so that conntrack, where it runs, sees it
//!   established), sent one `send` at a time; the socket reads no more, and the kernel drops
//!   what its full buffer cannot take, after the firewall.
//! - **Scan-like probes**: 50,000 SYNs a round, each from a new source (a /64 of its own in
//!   2001:db8:100::/40, which the victim routes back through the veth, so that the reverse-path
//!   check passes and every probe is weighed) to a closed port (10000-10999), sent as frames
//!   through libpcap. The victim answers each with a RST, first line or not: one probe per
//!   source holds nobody.
//!
//! The table is built by the product's own firewall code (`NftFirewall`, `NftConfig::Own` with
//! `first_line` `Some` or `None`, fed the facts a daemon would feed it: the 5 open TCP ports
//! and UDP 5001 listening, Linux's ephemeral range); "no table" deletes it. The host's conntrack
//! rule is a table of the lab's own (`ct state established,related accept`, loaded with nft),
//! as most hosts' firewalls have one: the first line's `ct state` rule turns on connection
//! tracking in a namespace where nothing else did, and that is most of what it costs there.
//!
//! **The measure.** A veth delivers what its sender transmits in the sender's own context: the
//! frame goes to the backlog of the sender's CPU, and the receive path (IP, conntrack, the
//! input hook with our chains, UDP or TCP) runs in the softirq that the sender's transmit runs
//! when it re-enables bottom halves, before the system call returns, unless the kernel defers it
//! to that CPU's `ksoftirqd`. On this kernel softirq time is not accounted apart
//! (`CONFIG_IRQ_TIME_ACCOUNTING` is off), so it is charged to the task it interrupted. The
//! sender is a thread pinned to one CPU; its CPU time (`/proc/thread-self/schedstat`,
//! nanoseconds) plus that CPU's `ksoftirqd` time over the round is the kernel's whole cost of
//! the packets, receive path included (and the sender's own user time, which is a few percent
//! and the same in every variant). Other processes' work on the CPU is not counted; what they
//! do to its caches is noise, which the alternated slices spread over every variant alike. The
//! victim's socket answers each flow once and then reads nothing (see [`established`]), so
//! that all of a datagram's life in the kernel, its end included, is on the sender's CPU.
//!
//! Run: `cargo bench --bench first_line_cost` (as root; it makes its namespaces).
//! `FIRST_LINE_COST_ROUNDS` (7), `FIRST_LINE_COST_PACKETS` (1,000,000 a round and variant),
//! `FIRST_LINE_COST_PROBES` (50,000), `FIRST_LINE_COST_SLICES` (10). Results go in
//! BENCHMARKS.md.
#![expect(
    clippy::disallowed_methods,
    reason = "a benchmark measures wall-clock time: it is a shell"
)]

#[path = "../tests/support/netns.rs"]
#[allow(dead_code, reason = "the benchmark uses part of the test lab")]
mod netns;

#[path = "../tests/support/frames.rs"]
#[allow(dead_code, reason = "the benchmark uses part of the helpers")]
mod frames;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv6Addr, UdpSocket};
use std::time::{Duration, Instant};

use netns::{NetnsPair, enter_and_run, require_root};
use nix::sched::{CpuSet, sched_setaffinity};
use nix::sys::resource::{UsageWho, getrusage};
use nix::unistd::Pid;
use scansentry::firewall::nft::{FirstLine, Hook, NftConfig, NftFirewall};
use scansentry::firewall::{Firewall, FirstLineFacts};
use scansentry::wire::Proto;

const OPEN: [u16; 5] = [22, 80, 443, 3306, 8080];
/// The flows' port, listening in the victim's namespace.
const PORT: u16 = 5001;
const PAYLOAD: [u8; 64] = [0x5a; 64];
/// The sender's CPU.
const SENDER_CPU: usize = 0;

/// Which scansentry table the victim has.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Table {
    None,
    Own,
    FirstLine,
}

/// One configuration of the victim's firewall.
#[derive(Clone, Copy)]
struct Variant {
    table: Table,
    /// The host's own conntrack rule, in a table of its own.
    conntrack: bool,
}

impl Variant {
    fn label(self) -> String {
        let table = match self.table {
            Table::None => "no scansentry table",
            Table::Own => "own table, first line off",
            Table::FirstLine => "own table, first line on",
        };
        if self.conntrack {
            format!("{table}, host conntrack rule")
        } else {
            table.to_string()
        }
    }
}

const VARIANTS: [Variant; 6] = [
    Variant {
        table: Table::None,
        conntrack: false,
    },
    Variant {
        table: Table::Own,
        conntrack: false,
    },
    Variant {
        table: Table::FirstLine,
        conntrack: false,
    },
    Variant {
        table: Table::None,
        conntrack: true,
    },
    Variant {
        table: Table::Own,
        conntrack: true,
    },
    Variant {
        table: Table::FirstLine,
        conntrack: true,
    },
];

fn config(first_line: bool) -> NftConfig {
    NftConfig::Own {
        hook: Hook::Input,
        forward: true,
        priority: -10,
        set_size: scansentry::config::nft::set_size(65536),
        first_line: first_line.then_some(FirstLine {
            hold: Duration::from_secs(5),
            log_group: 2701,
        }),
    }
}

/// What a daemon would tell the first line of the lab.
fn facts() -> FirstLineFacts {
    let mut listening: BTreeSet<(Proto, u16)> = OPEN.iter().map(|&p| (Proto::Tcp, p)).collect();
    listening.insert((Proto::Udp, PORT));
    FirstLineFacts {
        listening,
        tripwires: BTreeSet::new(),
        scanners_first: scansentry::first_line::scanners_first(),
        peers: Vec::new(),
        ephemeral: Some(32768..=60999),
    }
}

/// Builds the victim's firewall of `variant`.
fn set_up(lab: &NetnsPair, variant: Variant) {
    // Deleting a table that is not there fails; that is fine.
    let _ = lab.exec(&lab.a, &["nft", "delete", "table", "inet", "lab_conntrack"]);
    if variant.conntrack {
        for command in [
            "add table inet lab_conntrack",
            "add chain inet lab_conntrack input { type filter hook input priority filter; \
             policy accept; }",
            "add rule inet lab_conntrack input ct state established,related accept",
        ] {
            let out = lab.exec(&lab.a, &["nft", command]);
            assert!(out.status.success(), "{command}: {out:?}");
        }
    }
    enter_and_run(&lab.a, || {
        let first_line = variant.table == Table::FirstLine;
        let mut fw = NftFirewall::new(config(first_line)).expect("a netlink socket");
        if variant.table == Table::None {
            fw.remove_all().expect("delete the table");
        } else {
            fw.ensure_ready(&[]).expect("own mode's table");
            assert_eq!(fw.has_first_line(), first_line);
            fw.set_first_line_facts(&facts()).expect("the facts");
        }
    });
}

/// Pins the calling thread to `cpu`, when the machine has it.
fn pin(cpu: usize) {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    if cpu < cpus {
        let mut set = CpuSet::new();
        set.set(cpu).expect("a CPU number");
        sched_setaffinity(Pid::from_raw(0), &set).expect("sched_setaffinity");
    }
}

/// The first field of a `schedstat` file: the task's CPU time in nanoseconds, softirqs it ran
/// included.
fn schedstat(path: &str) -> Duration {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let ns = text
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{path}: {text}"));
    Duration::from_nanos(ns)
}

/// The calling thread's CPU time in user mode (the kernel's split of its CPU time, from ticks).
fn user_time() -> Duration {
    let usage = getrusage(UsageWho::RUSAGE_THREAD).expect("getrusage");
    let tv = usage.user_time();
    let micros = u64::try_from(tv.tv_sec()).expect("a time") * 1_000_000
        + u64::try_from(tv.tv_usec()).expect("a time");
    Duration::from_micros(micros)
}

/// The `schedstat` file of `ksoftirqd/CPU`.
fn ksoftirqd(cpu: usize) -> String {
    let name = format!("ksoftirqd/{cpu}");
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(Result::ok)
        .find(|e| {
            std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim_end() == name)
        })
        .map(|e| format!("{}/schedstat", e.path().display()))
        .unwrap_or_else(|| panic!("no {name}"))
}

/// An interface counter (`/sys/class/net/DEV/statistics/NAME`) in the victim's namespace.
fn rx_packets(lab: &NetnsPair) -> u64 {
    let path = format!("/sys/class/net/{}/statistics/rx_packets", lab.veth_a());
    let out = lab.exec(&lab.a, &["cat", &path]);
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a counter")
}

/// The kernel's work of one round on the sender's CPU.
#[derive(Clone, Default)]
struct Sample {
    /// The sender thread's CPU time, and the part of it in user mode.
    sender: Duration,
    user: Duration,
    /// The sender CPU's ksoftirqd's, in the same time.
    deferred: Duration,
    /// Packets sent, and how many reached the victim's interface.
    sent: u64,
    reached: u64,
    wall: Duration,
}

impl Sample {
    fn add(&mut self, other: &Sample) {
        self.sender += other.sender;
        self.user += other.user;
        self.deferred += other.deferred;
        self.sent += other.sent;
        self.reached += other.reached;
        self.wall += other.wall;
    }

    /// Nanoseconds of kernel CPU per packet sent.
    fn per_packet(&self) -> f64 {
        #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        let sent = self.sent as f64;
        (self.sender + self.deferred).as_secs_f64() * 1e9 / sent
    }
}

/// Measures `send` (which returns how many packets it sent) on a thread pinned to the sender's
/// CPU in the scanner's namespace.
fn measure(lab: &NetnsPair, send: impl FnOnce() -> u64 + Send) -> Sample {
    let softirqd = ksoftirqd(SENDER_CPU);
    let rx = rx_packets(lab);
    let sample = enter_and_run(&lab.b, || {
        pin(SENDER_CPU);
        let (deferred, cpu, user, wall) = (
            schedstat(&softirqd),
            schedstat("/proc/thread-self/schedstat"),
            user_time(),
            Instant::now(),
        );
        let sent = send();
        Sample {
            sender: schedstat("/proc/thread-self/schedstat") - cpu,
            user: user_time() - user,
            deferred: schedstat(&softirqd) - deferred,
            sent,
            reached: 0,
            wall: wall.elapsed(),
        }
    });
    Sample {
        reached: rx_packets(lab) - rx,
        ..sample
    }
}

/// Part 1: `packets` datagrams over 4 established flows to a socket of the victim's that
/// answers each flow's first datagram and reads nothing after: its buffer fills with the first
/// few thousand, and the kernel drops the others there, after the firewall (UDP's
/// `RcvbufErrors`), in the same softirq. So every datagram's whole life in the kernel is on the
/// sender's CPU, and the same in every variant but for the firewall (a reader on the other CPU
/// would free what it reads there, or be woken, by an interrupt, as often as the host lets it
/// run: a cost that varies with the host's load, not with the rules).
fn established(lab: &NetnsPair, packets: u64) -> Sample {
    // A dual-stack socket: IPv4 flows arrive as mapped addresses.
    let victim = enter_and_run(&lab.a, || {
        UdpSocket::bind(("::", PORT)).expect("the flows' port")
    });
    victim
        .set_read_timeout(Some(Duration::from_secs(1)))
        .expect("a timeout");
    let flows: Vec<UdpSocket> = enter_and_run(&lab.b, || {
        [
            (NetnsPair::B4, NetnsPair::A4),
            (NetnsPair::B4_SECOND, NetnsPair::A4),
            (NetnsPair::B6, NetnsPair::A6),
            (NetnsPair::B6, NetnsPair::A6),
        ]
        .iter()
        .map(|&(from, to)| {
            let socket = UdpSocket::bind((from, 0)).expect("a flow's socket");
            socket.connect((to, PORT)).expect("connect");
            socket
                .set_read_timeout(Some(Duration::from_secs(1)))
                .expect("a timeout");
            socket
        })
        .collect()
    });
    let mut buf = [0u8; 64];
    for flow in &flows {
        flow.send(b"hello").expect("hello");
        let (_, from) = victim.recv_from(&mut buf).expect("the flow's hello");
        victim.send_to(b"welcome", from).expect("the answer");
        flow.recv(&mut buf)
            .expect("the answer that makes the flow established");
    }
    measure(lab, || {
        let mut sent = 0;
        for i in 0..packets {
            // A datagram the kernel could not take (ENOBUFS) is not counted.
            if flows[usize::try_from(i % 4).expect("below 4")]
                .send(&PAYLOAD)
                .is_ok()
            {
                sent += 1;
            }
        }
        sent
    })
}

/// Part 2's frames: SYNs from `count` new sources, numbered from `first`, each a /64 of
/// 2001:db8:100::/40, to closed ports of the victim, with the veth's MAC addresses.
fn probes(lab: &NetnsPair, first: u32, count: u32) -> Vec<Vec<u8>> {
    let (to_mac, from_mac) = lab.macs();
    let victim: IpAddr = NetnsPair::A6.parse().expect("the lab's address");
    (first..first + count)
        .map(|n| {
            let source = Ipv6Addr::from((0x2001_0db8_0100_u128 << 80) | (u128::from(n) << 64) | 1);
            let port = 10_000 + u16::try_from(n % 1000).expect("below 1000");
            let mut f = frames::tcp_frame(IpAddr::V6(source), victim, 40_000, port, 0x02);
            f[..6].copy_from_slice(&to_mac);
            f[6..12].copy_from_slice(&from_mac);
            f
        })
        .collect()
}

fn send_frames(lab: &NetnsPair, frames: &[Vec<u8>]) -> Sample {
    measure(lab, || {
        let mut out = lab.scanner_interface();
        let mut sent = 0;
        for f in frames {
            if out.sendpacket(&f[..]).is_ok() {
                sent += 1;
            }
        }
        sent
    })
}

fn env(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.replace(['_', ','], "").parse().ok())
        .unwrap_or(default)
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A table of one part: each variant's median and rounds, then the comparisons.
fn report(title: &str, samples: &[Vec<f64>]) {
    println!("\n{title}\n");
    println!("| victim's firewall | kernel CPU per packet, median (each round), ns |");
    println!("|---|---|");
    for (variant, values) in VARIANTS.iter().zip(samples) {
        let each: Vec<String> = values.iter().map(|v| format!("{v:.0}")).collect();
        println!(
            "| {} | {:.0} ({}) |",
            variant.label(),
            median(values),
            each.join(", ")
        );
    }
    let m: Vec<f64> = samples.iter().map(|v| median(v)).collect();
    // The difference of the medians, and the median of each round's own ratio (the two
    // variants of a round ran seconds apart, so the host's drift falls on both alike).
    let delta = |from: usize, to: usize| {
        let ratios: Vec<f64> = samples[to]
            .iter()
            .zip(&samples[from])
            .map(|(t, f)| (t / f - 1.0) * 100.0)
            .collect();
        format!(
            "{:+.0} ns, {:+.1} % (median of the rounds' own: {:+.1} %)",
            m[to] - m[from],
            (m[to] / m[from] - 1.0) * 100.0,
            median(&ratios)
        )
    };
    println!();
    println!(
        "- the first line alone (first line off → on): {} with no other conntrack rule, {} \
         with the host's",
        delta(1, 2),
        delta(4, 5)
    );
    println!(
        "- own mode's table without the first line (no table → own): {}, {} with the host's \
         conntrack rule",
        delta(0, 1),
        delta(3, 4)
    );
    println!(
        "- the whole table with the first line (no table → on): {}, {} with the host's \
         conntrack rule",
        delta(0, 2),
        delta(3, 5)
    );
}

fn main() {
    require_root();
    let kernel = std::process::Command::new("zcat")
        .arg("/proc/config.gz")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if kernel.contains("CONFIG_IRQ_TIME_ACCOUNTING=y") {
        eprintln!(
            "warning: this kernel accounts softirq time apart: the sender's CPU time leaves \
             out the receive path, and these figures are not the kernel's whole cost"
        );
    }
    let rounds = env("FIRST_LINE_COST_ROUNDS", 7);
    let packets = env("FIRST_LINE_COST_PACKETS", 1_000_000);
    let probes_per_round = env("FIRST_LINE_COST_PROBES", 50_000);
    let slices = env("FIRST_LINE_COST_SLICES", 10).max(1);
    // Each slice's probes fill a fresh first line's sets (its table is rebuilt between), well
    // below their sizes.
    let probes_per_slice = u32::try_from(probes_per_round / slices)
        .expect("fewer probes")
        .min(60_000);
    let lab = NetnsPair::new();
    // The probes' sources are routed back through the veth, as a default route would.
    netns::ip(&[
        "-n",
        &lab.a,
        "route",
        "add",
        "2001:db8:100::/40",
        "via",
        NetnsPair::B6,
    ]);
    let (mut flows, mut scans) = (vec![Vec::new(); 6], vec![Vec::new(); 6]);
    let mut next_source = 0;
    for round in 0..rounds {
        let (mut flow, mut scan) = (vec![Sample::default(); 6], vec![Sample::default(); 6]);
        // A round's packets in slices, the variants alternated slice by slice: whatever the
        // host does meanwhile falls on every variant alike.
        for _ in 0..slices {
            for (i, &variant) in VARIANTS.iter().enumerate() {
                set_up(&lab, variant);
                flow[i].add(&established(&lab, packets / slices));
                let frames = probes(&lab, next_source, probes_per_slice);
                next_source += probes_per_slice;
                scan[i].add(&send_frames(&lab, &frames));
                if variant.table == Table::FirstLine {
                    enter_and_run(&lab.a, || {
                        let mut fw = NftFirewall::new(config(true)).expect("a netlink socket");
                        let counters = fw.first_line_counters().expect("the first line's counters");
                        assert_eq!(counters.score_full, 0, "no set was full");
                        assert_eq!(fw.holds().expect("the holds"), [], "one probe holds nobody");
                    });
                }
            }
        }
        for (i, variant) in VARIANTS.iter().enumerate() {
            let (f, p) = (&flow[i], &scan[i]);
            eprintln!(
                "round {round} {}: flows {:.0} ns/packet ({:.1} % user; {} sent, {} reached, \
                 ksoftirqd {:?}, {:.1} s); probes {:.0} ns/probe ({} sent, {} reached, \
                 ksoftirqd {:?})",
                variant.label(),
                f.per_packet(),
                f.user.as_secs_f64() / f.sender.as_secs_f64() * 100.0,
                f.sent,
                f.reached,
                f.deferred,
                f.wall.as_secs_f64(),
                p.per_packet(),
                p.sent,
                p.reached,
                p.deferred,
            );
            flows[i].push(f.per_packet());
            scans[i].push(p.per_packet());
        }
    }
    report(
        &format!(
            "Established UDP flows: {packets} datagrams a round over 4 flows (in {slices} \
             slices, the variants alternated slice by slice), {rounds} rounds"
        ),
        &flows,
    );
    report(
        &format!(
            "Scan-like probes: {} SYNs a round ({slices} slices), each from a new source to a \
             closed port, {rounds} rounds",
            u64::from(probes_per_slice) * slices
        ),
        &scans,
    );
}
