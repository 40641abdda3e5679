//! The trust model (issue 14): what a forger can and cannot make the daemon do, against the real
//! kernel in network namespaces the tests make and remove. Forged frames are sent from the
//! scanner's end of the link with libpcap, claiming whatever addresses the test chooses.
//!
//! Run as root: `cargo test --test trust -- --ignored` (the README's test command includes it).

mod support;

use std::net::IpAddr;
use std::time::Duration;

use support::frames::tcp_frame;
use support::netns::{Daemon, NetnsPair, TempDir, require_root, wait_until};

const DEADLINE: Duration = Duration::from_secs(10);
const SYN: u16 = 0x02;
const RST: u16 = 0x04;
const ACK: u16 = 0x10;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// RSTs forged "from" the host to the scanner before each probe (as if the host had talked to
/// it first) and SYN+ACKs forged "from" the probed port after it (as if the port were open)
/// once hid a scan: direction was taken from the source address. It is the kernel's packet
/// type now, and a 30-port SYN scan among them is blocked.
#[test]
#[ignore = "needs root + netns: cargo test --test trust -- --ignored"]
fn packets_forged_from_the_host_do_not_hide_a_scan() {
    require_root();
    let lab = NetnsPair::new();
    let dir = TempDir::new("trust");
    let daemon = Daemon::spawn(&lab.a, &dir.0, "");
    let (host, scanner) = (ip(NetnsPair::A4), ip(NetnsPair::B4));
    let mut frames = Vec::new();
    for port in 1..=30 {
        frames.push(tcp_frame(host, scanner, port, 40_000, RST));
        frames.push(tcp_frame(scanner, host, 40_000, port, SYN));
        frames.push(tcp_frame(host, scanner, port, 40_000, SYN | ACK));
    }
    lab.inject(&frames);
    assert!(
        wait_until(DEADLINE, || daemon
            .out()
            .contains(&format!("blocked {} for", NetnsPair::B4))),
        "{}\n{}",
        daemon.out(),
        daemon.err()
    );
    assert!(lab.set_text("blocked4").contains(NetnsPair::B4));
}
