//! The kernel's reports of the first line's holds, read by `NftFirewall::watch_holds`, against
//! the real kernel: in the victim namespace of a lab the test makes and removes, a rule loaded
//! with the nft CLI logs what the scanner's namespace sends (`log group N queue-threshold 1
//! prefix "scansentry hold " drop`, as the first line's `hold` rules do), and the watcher must
//! report each packet as it was sent.
//!
//! Run as root: `cargo test --test nflog -- --ignored`.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use scansentry::config::nft::FirstLine;
use scansentry::firewall::nft::{Hook, NftConfig, NftFirewall};
use scansentry::firewall::{Firewall, HoldReports, KernelHold};
use scansentry::wire::Proto;
use support::frames::{tcp_frame, udp_frame, with_destination_options};
use support::netns::{NetnsPair, enter_and_run, require_root, wait_until};

/// The log group of these tests (groups are per network namespace: each test has its own).
const GROUP: u16 = 2747;

/// Counts the allocations made on the threads that set [`COUNTED`]: the watcher's, from its
/// first report on.
struct CountingAllocator;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

#[allow(
    unsafe_code,
    reason = "a global allocator is an unsafe trait; this one only counts"
)]
// SAFETY: every call is passed on to the system allocator unchanged, which upholds the
// trait's contract; counting touches a const-initialised thread-local and an atomic, neither
// of which allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTED.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's layout is passed on as it came.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above, that is from the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTED.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: as for `alloc` and `dealloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Own mode with the first line on, reporting to `GROUP`.
fn config() -> NftConfig {
    NftConfig::Own {
        forward: false,
        hook: Hook::Input,
        priority: -10,
        set_size: 1000,
        first_line: Some(FirstLine {
            hold: Duration::from_secs(5),
            log_group: GROUP,
        }),
    }
}

/// Loads, in the victim's namespace, rules that log and drop what the first line would hold:
/// TCP and UDP to ports 1000-1999 (UDP counted), and TCP to 3000 under another prefix.
fn load_rules(lab: &NetnsPair) {
    let ruleset = format!(
        "table inet holds {{\n\
           chain input {{\n\
             type filter hook input priority filter; policy accept;\n\
             tcp dport 1000-1999 log group {GROUP} queue-threshold 1 prefix \"scansentry hold \" drop\n\
             udp dport 1000-1999 counter log group {GROUP} queue-threshold 1 prefix \"scansentry hold \" drop\n\
             tcp dport 3000 log group {GROUP} queue-threshold 1 prefix \"another rule \" drop\n\
           }}\n\
         }}\n"
    );
    let path = std::env::temp_dir().join(format!("sst-nflog-{}-{}.nft", std::process::id(), lab.a));
    std::fs::write(&path, ruleset).unwrap();
    let out = lab.exec(&lab.a, &["nft", "-f", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert!(out.status.success(), "nft -f: {out:?}");
}

/// How many packets the UDP rule logged.
fn udp_logged(lab: &NetnsPair) -> u64 {
    let out = lab.exec(
        &lab.a,
        &["nft", "-j", "list", "chain", "inet", "holds", "input"],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o.get("rule"))
        .flat_map(|r| r["expr"].as_array().unwrap().iter())
        .find_map(|e| e.get("counter"))
        .and_then(|c| c["packets"].as_u64())
        .expect("the UDP rule's counter")
}

/// The victim's interface index.
fn victim_ifindex(lab: &NetnsPair) -> u32 {
    let out = lab.exec(
        &lab.a,
        &["cat", &format!("/sys/class/net/{}/ifindex", lab.veth_a())],
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn addr(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A watcher's reports, sent to a channel.
fn reporting() -> (Box<dyn Fn(KernelHold) + Send>, Receiver<KernelHold>) {
    let (tx, rx) = channel();
    (
        Box::new(move |hold| {
            let _ = tx.send(hold);
        }),
        rx,
    )
}

/// The next report, within 5 s.
fn next(rx: &Receiver<KernelHold>) -> KernelHold {
    rx.recv_timeout(Duration::from_secs(5))
        .expect("a hold reported within 5s")
}

/// What a frame should be reported as: source, protocol, port, flags.
type Wanted = (IpAddr, Proto, u16, Option<u8>);

#[test]
#[ignore = "needs root + netns: cargo test --test nflog -- --ignored"]
fn each_hold_is_reported_with_its_source_proto_port_flags_and_interface() {
    require_root();
    let lab = NetnsPair::new();
    load_rules(&lab);
    let ifindex = victim_ifindex(&lab);
    let (a4, b4, a6, b6) = (
        addr(NetnsPair::A4),
        addr(NetnsPair::B4),
        addr(NetnsPair::A6),
        addr(NetnsPair::B6),
    );
    let sent: Vec<(Vec<u8>, Option<Wanted>)> = vec![
        (
            tcp_frame(b4, a4, 40000, 1001, 0x02),
            Some((b4, Proto::Tcp, 1001, Some(0x02))),
        ),
        (
            tcp_frame(b4, a4, 40000, 1002, 0x29),
            Some((b4, Proto::Tcp, 1002, Some(0x29))),
        ),
        (
            udp_frame(b4, a4, 40000, 1003),
            Some((b4, Proto::Udp, 1003, None)),
        ),
        (tcp_frame(b4, a4, 40000, 3000, 0x02), None),
        (
            tcp_frame(b6, a6, 40000, 1004, 0x02),
            Some((b6, Proto::Tcp, 1004, Some(0x02))),
        ),
        (
            with_destination_options(udp_frame(b6, a6, 40000, 1005)),
            Some((b6, Proto::Udp, 1005, None)),
        ),
        (
            with_destination_options(tcp_frame(b6, a6, 40000, 1006, 0x01)),
            Some((b6, Proto::Tcp, 1006, Some(0x01))),
        ),
    ];
    let (mut got, reports) = enter_and_run(&lab.a, || {
        let fw = NftFirewall::new(config()).unwrap();
        let (held, rx) = reporting();
        fw.watch_holds(held).unwrap();
        let frames: Vec<Vec<u8>> = sent.iter().map(|(f, _)| f.clone()).collect();
        lab.inject(&frames);
        let got: Vec<KernelHold> = (0..6).map(|_| next(&rx)).collect();
        // The other rule's packet came before the last three: it was read, and not reported.
        assert!(rx.try_recv().is_err(), "one report too many");
        (got, fw.hold_reports())
    });
    got.sort_by_key(|h| h.port);
    let wanted: Vec<KernelHold> = sent
        .iter()
        .filter_map(|(_, w)| *w)
        .map(|(source, proto, port, tcp_flags)| KernelHold {
            source,
            proto,
            port,
            tcp_flags,
            ifindex: Some(ifindex),
        })
        .collect();
    assert_eq!(got, wanted);
    assert_eq!(
        reports,
        HoldReports {
            reported: 6,
            ..HoldReports::default()
        }
    );
}

/// The inode of the socket that holds nfnetlink_log `group` in the calling thread's network
/// namespace: its netlink port from the group's listing, then the port's line of the netlink
/// table (`sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode`).
fn reader_inode(group: u16) -> u64 {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let groups = read("/proc/thread-self/net/netfilter/nfnetlink_log");
    let port: u32 = groups
        .lines()
        .find_map(|line| {
            let mut fields = line.split_whitespace();
            (fields.next()?.parse::<u16>().ok()? == group).then(|| fields.next()?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("nobody holds group {group}: {groups}"));
    let sockets = read("/proc/thread-self/net/netlink");
    sockets
        .lines()
        .skip(1)
        .find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (protocol, pid) = (fields.get(1)?, fields.get(2)?);
            // NETLINK_NETFILTER is protocol 12.
            (*protocol == "12" && pid.parse::<u32>().ok()? == port)
                .then(|| fields.last()?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no netlink socket of port {port}: {sockets}"))
}

#[test]
#[ignore = "needs root + netns: cargo test --test nflog -- --ignored"]
fn a_second_watcher_is_told_the_group_is_taken_and_retire_frees_it_at_once() {
    require_root();
    let lab = NetnsPair::new();
    load_rules(&lab);
    let (a4, b4) = (addr(NetnsPair::A4), addr(NetnsPair::B4));
    enter_and_run(&lab.a, || {
        let first = NftFirewall::new(config()).unwrap();
        let (held, rx1) = reporting();
        first.watch_holds(held).unwrap();
        lab.inject(&[udp_frame(b4, a4, 40000, 1001)]);
        assert_eq!(next(&rx1).port, 1001);
        // Nothing the daemon runs inherits the reader's socket (close-on-exec). It is found by
        // its inode (the holder of the group, in this namespace's netlink table), not as "a
        // socket": another test of this binary, on another thread, may hold one open without
        // close-on-exec at the moment `ls` is forked (CI saw one).
        let socket = format!("socket:[{}]", reader_inode(GROUP));
        let fds = std::process::Command::new("ls")
            .args(["-l", "/proc/self/fd"])
            .output()
            .unwrap();
        let fds = String::from_utf8_lossy(&fds.stdout);
        assert!(
            !fds.contains(&socket),
            "a child inherited the reader's {socket}: {fds}"
        );

        let second = NftFirewall::new(config()).unwrap();
        let (held, rx2) = reporting();
        let err = second.watch_holds(held).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "nfnetlink_log group {GROUP} is taken by another program (netlink port "
            )) && err.ends_with("): set [firewall] first-line-log-group to a free group")
                && !err.contains('\n'),
            "{err}"
        );

        // Retired, the first frees the group before `retire` returns: the second binds it.
        first.retire();
        let (held, rx2_again) = reporting();
        second.watch_holds(held).unwrap();
        drop(rx2);
        lab.inject(&[udp_frame(b4, a4, 40000, 1002)]);
        assert_eq!(next(&rx2_again).port, 1002);
        assert!(
            rx1.try_recv().is_err(),
            "the retired watcher reported a hold"
        );
        assert_eq!(first.hold_reports().reported, 1);
        assert_eq!(second.hold_reports().reported, 1);

        // A firewall without the first line watches nothing (and binds nothing).
        let without = NftFirewall::new(NftConfig::Own {
            forward: false,
            hook: Hook::Input,
            priority: -10,
            set_size: 1000,
            first_line: None,
        })
        .unwrap();
        let (held, _rx) = reporting();
        without.watch_holds(held).unwrap();
        drop(second);
        // Dropped, the second freed the group too.
        let third = NftFirewall::new(config()).unwrap();
        let (held, rx3) = reporting();
        third.watch_holds(held).unwrap();
        lab.inject(&[udp_frame(b4, a4, 40000, 1003)]);
        assert_eq!(next(&rx3).port, 1003);
    });
}

/// A flood of 20,000 logged packets while the reader is stalled in its first report: the
/// kernel never waits for it (the injection ends first), the first 8,192 reports (both hold
/// sets' worth) wait in the socket, the rest are dropped and counted, reading goes on, and the
/// reader allocates nothing for any of them.
#[test]
#[ignore = "needs root + netns: cargo test --test nflog -- --ignored"]
fn a_flood_is_counted_not_queued_and_the_reader_allocates_nothing() {
    const MARK: u16 = 1950;
    require_root();
    let lab = NetnsPair::new();
    load_rules(&lab);
    let (a4, b4) = (addr(NetnsPair::A4), addr(NetnsPair::B4));
    let flood: Vec<Vec<u8>> = (0..20_000u16)
        .map(|i| udp_frame(b4, a4, 40000 + i % 900, 1000 + i % 900))
        .collect();
    let reported = Arc::new(AtomicU64::new(0));
    let stalled = Arc::new(AtomicBool::new(false));
    let marked = Arc::new(AtomicBool::new(false));
    let gate = Arc::new(Mutex::new(()));
    let reports = enter_and_run(&lab.a, || {
        let fw = NftFirewall::new(config()).unwrap();
        let held = {
            let (reported, stalled, marked, gate) = (
                Arc::clone(&reported),
                Arc::clone(&stalled),
                Arc::clone(&marked),
                Arc::clone(&gate),
            );
            Box::new(move |hold: KernelHold| {
                COUNTED.with(|c| c.set(true));
                if !stalled.swap(true, Ordering::SeqCst) {
                    drop(gate.lock());
                }
                if hold.port == MARK {
                    marked.store(true, Ordering::SeqCst);
                }
                reported.fetch_add(1, Ordering::Relaxed);
            })
        };
        let closed = gate.lock().unwrap();
        fw.watch_holds(held).unwrap();
        lab.inject(&[udp_frame(b4, a4, 40000, 1999)]);
        assert!(
            wait_until(Duration::from_secs(5), || stalled.load(Ordering::SeqCst)),
            "the first report came"
        );
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        lab.inject(&flood);
        drop(closed);
        // Once the reader has made room, a marked packet is reported: its sequence number
        // tells how many the kernel dropped before it (a mark sent into a full socket is one
        // of them).
        let mut marks = 0;
        while !marked.load(Ordering::SeqCst) && marks < 30 {
            lab.inject(&[udp_frame(b4, a4, 40000, MARK)]);
            marks += 1;
            wait_until(Duration::from_secs(1), || marked.load(Ordering::SeqCst));
        }
        assert!(marked.load(Ordering::SeqCst), "no mark reported");
        // (A mark sent again while the first was still on its way is read soon after.)
        let logged = udp_logged(&lab);
        assert!(
            wait_until(Duration::from_secs(5), || {
                let r = fw.hold_reports();
                r.reported + r.lost == logged
            }),
            "every logged packet reported or counted lost: {:?} of {logged}",
            fw.hold_reports()
        );
        let r = fw.hold_reports();
        assert_eq!(
            ALLOCATIONS.load(Ordering::Relaxed) - before,
            0,
            "the reader allocated"
        );
        r
    });
    assert!(reports.reported > 8_192, "{reports:?}");
    assert!(reports.lost > 0 && reports.overruns > 0, "{reports:?}");
    assert_eq!(reports.unreadable, 0);
    assert_eq!(reports.reported, reported.load(Ordering::Relaxed));
}
