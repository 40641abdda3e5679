//! The engine's [`Host`] on a real machine: the kernel's sockets, routes and settings, libpcap's
//! interface list, the files it is asked for, and the firewalls it can open. **Shell.**

use std::io;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{Backend, Loaded};
use crate::daemon::stages;
use crate::detect::traps::Listeners;
use crate::engine::{Host, HostError};
use crate::firewall::nft::NftFirewall;
use crate::firewall::route::RouteFirewall;
use crate::firewall::{Firewall, FirewallError};
use crate::host::{self, fib::Fib};
use crate::never_block::discover::{self, HostState};
use crate::time::{Clock, SteadyClock, Timestamp};
use crate::trust::{ReversePath, RouteBack};

/// This machine, as the kernel shows it.
pub(super) struct System {
    /// Routes back to the sources of detections, for the reverse-path check (`None`: the
    /// kernel cannot be asked, said once at start).
    fib: Option<Fib>,
    /// The configuration file reloads read (`None`: the default one).
    config_path: Option<PathBuf>,
    /// The established connections, read by a thread of their own.
    established: Established,
}

/// An established connection: the peer's address, this host's port, the peer's port.
type Peer = (IpAddr, u16, u16);
/// How the established connections are read.
type ReadPeers = std::sync::Arc<dyn Fn() -> io::Result<Vec<Peer>> + Send + Sync>;
/// How the main loop asks the reading thread for a reading, and how it answers.
type PeersThread = (
    std::sync::mpsc::SyncSender<()>,
    std::sync::mpsc::Receiver<io::Result<Vec<Peer>>>,
);

/// The established connections, read off the main loop. A dump of them walks the kernel's
/// whole connection table, whatever the namespace holds (0.9 ms median, 3.6 ms at the 90th
/// percentile on the lab's host, every second): on the main loop, a probe that arrived
/// meanwhile waited for it. The first reading is made in place (the engine's start needs
/// it); from then on each call hands over the reading a thread made since the last call and
/// asks it for the next one. The reading handed over was made about a second before, and
/// stands until the next: up to two seconds old at its use, where one made in place was up to
/// one (a peer that has just connected is protected up to a second later than before). The
/// engine stamps it with the time it is handed over, later than the connections in it
/// opened, so a connection opened during a scan still protects nothing. The last reading
/// stands in for one the thread has not made for [`STALE_AFTER`] at most (see there).
struct Established {
    read: ReadPeers,
    /// Asks the thread for a reading; its answers. `None` until the first call.
    thread: Option<PeersThread>,
    /// The last reading handed over, for a call that comes before the next one is made.
    last: Vec<Peer>,
    /// The clock the readings' age is told by.
    clock: std::sync::Arc<dyn Clock + Send + Sync>,
    /// When the last reading was handed over (or failed).
    answered: Timestamp,
    /// When the request the thread answers next was made (its reading is no older).
    asked: Timestamp,
    /// How long the last reading stands in for the next one ([`STALE_AFTER`]).
    stale_after: Duration,
}

/// How long, at most, the thread's last reading stands in for a next one it has not made: past
/// it, a call fails (the engine says so once and counts no connection, as for a failed
/// reading), so a stuck or stopped thread never leaves an old reading protecting its peers.
/// Three of the engine's readings; a dump takes milliseconds, and each of sock_diag's reads
/// gives up after a second.
const STALE_AFTER: Duration = Duration::from_secs(3);

impl Established {
    fn new(read: ReadPeers, clock: std::sync::Arc<dyn Clock + Send + Sync>) -> Self {
        Established {
            read,
            thread: None,
            last: Vec::new(),
            answered: clock.now(),
            asked: clock.now(),
            clock,
            stale_after: STALE_AFTER,
        }
    }

    /// The newest reading (see the type); a failure when the thread has made none for
    /// [`STALE_AFTER`].
    fn take(&mut self) -> io::Result<Vec<Peer>> {
        let now = self.clock.now();
        let Some((ask, answers)) = &self.thread else {
            let first = self.read_here(now);
            self.thread = self.spawn();
            self.asked = now;
            return first;
        };
        let mut newest = None;
        let stopped = loop {
            match answers.try_recv() {
                Ok(answer) => newest = Some(answer),
                Err(std::sync::mpsc::TryRecvError::Empty) => break false,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => break true,
            }
        };
        // One request at a time: a full channel means the thread has one already.
        let asked = self.asked;
        if ask.try_send(()).is_ok() {
            self.asked = now;
        }
        match newest {
            // Asked for before a pause in the calls (a reload to `protect = "none"` and back):
            // as old as that; made afresh here, as the first reading is.
            Some(_) if now.saturating_since(asked) > self.stale_after => self.read_here(now),
            Some(answer) => {
                self.answered = now;
                // After a failure, no connection until the next reading (the engine ended them).
                self.last = answer.as_ref().map(Clone::clone).unwrap_or_default();
                answer
            }
            None if stopped => {
                // The thread stopped (a panic, where panics unwind): read here, start another.
                self.thread = None;
                self.take()
            }
            None if now.saturating_since(self.answered) > self.stale_after => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "sock_diag: no reading made for {} s (its thread is stuck)",
                    now.saturating_since(self.answered).as_secs()
                ),
            )),
            None => Ok(self.last.clone()),
        }
    }

    /// A reading made on this thread, at `now`.
    fn read_here(&mut self, now: Timestamp) -> io::Result<Vec<Peer>> {
        let reading = (self.read)();
        self.answered = now;
        self.last = reading.as_ref().map(Clone::clone).unwrap_or_default();
        reading
    }

    /// The reading thread, asked for its first reading; `None` (every reading then made in
    /// place) when no thread can be started.
    fn spawn(&self) -> Option<PeersThread> {
        let (ask, asked) = std::sync::mpsc::sync_channel::<()>(1);
        let (answer, answers) = std::sync::mpsc::sync_channel(1);
        let read = self.read.clone();
        let spawned = std::thread::Builder::new()
            .name("established".into())
            .spawn(move || {
                while asked.recv().is_ok() {
                    if answer.send(read()).is_err() {
                        return;
                    }
                }
            });
        match spawned {
            Ok(_) => {
                let _ = ask.try_send(());
                Some((ask, answers))
            }
            Err(e) => {
                tracing::warn!(
                    "cannot start the thread that reads established connections ({e}); \
                     the main loop reads them"
                );
                None
            }
        }
    }
}

/// The established connections of this host, from sock_diag.
fn read_established() -> io::Result<Vec<Peer>> {
    Ok(host::established_sockets()?
        .into_iter()
        .map(|s| (s.peer, s.port, s.peer_port))
        .collect())
}

impl System {
    pub(super) fn new(config_path: Option<PathBuf>) -> Self {
        System {
            config_path,
            established: Established::new(
                std::sync::Arc::new(read_established),
                std::sync::Arc::new(SteadyClock::new()),
            ),
            fib: match Fib::open() {
                Ok(fib) => Some(fib),
                Err(e) => {
                    tracing::warn!("cannot ask the kernel for routes ({e}); no reverse-path check");
                    None
                }
            },
        }
    }

    /// This machine without routes asked (for `sentryd --never-block`).
    pub(super) fn without_routes() -> Self {
        System {
            fib: None,
            config_path: None,
            established: Established::new(
                std::sync::Arc::new(read_established),
                std::sync::Arc::new(SteadyClock::new()),
            ),
        }
    }
}

/// The firewall of `backend`, opened.
///
/// # Errors
///
/// When it cannot be opened (no permission, attach mode's ruleset unfit, …).
pub(super) fn open_firewall(backend: &Backend) -> Result<Box<dyn Firewall>, FirewallError> {
    Ok(match backend {
        Backend::Nft(nft) => Box::new(NftFirewall::new(nft.clone())?),
        Backend::Route => Box::new(RouteFirewall::new()?),
    })
}

/// Gathers the host's state (of the current network namespace): the routing tables and the
/// resolver's configuration (systemd-resolved's upstream list when it points at the stub).
/// Missing files are empty.
fn read_host_state(interfaces: Vec<(String, IpAddr)>) -> HostState {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let resolv_conf = host::read_text(Path::new(discover::RESOLV_CONF))
        .ok()
        .map(|t| (PathBuf::from(discover::RESOLV_CONF), t));
    let stub = resolv_conf.as_ref().is_some_and(|(_, t)| {
        discover::nameservers(t)
            .into_iter()
            .any(discover::is_resolved_stub)
    });
    let resolved_upstream = stub
        .then(|| host::read_text(Path::new(discover::RESOLVED_UPSTREAM)).ok())
        .flatten()
        .map(|t| (PathBuf::from(discover::RESOLVED_UPSTREAM), t));
    HostState {
        interfaces,
        routes4: read("/proc/net/route"),
        routes6: read("/proc/net/ipv6_route"),
        resolv_conf,
        resolved_upstream,
    }
}

/// The name of interface `index`, or `interface N` when it has none (any more).
pub(super) fn interface_name(index: u32) -> String {
    nix::net::if_::if_indextoname(index)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|_| format!("interface {index}"))
}

impl Host for System {
    fn host_state(&mut self) -> Result<HostState, HostError> {
        let interfaces =
            host::interface_addresses().map_err(|e| HostError::Interfaces(e.to_string()))?;
        Ok(read_host_state(interfaces))
    }

    fn read_file(&mut self, path: &Path) -> io::Result<String> {
        host::read_text(path)
    }

    fn firewall(&mut self, backend: &Backend) -> Result<Box<dyn Firewall>, FirewallError> {
        open_firewall(backend)
    }

    fn configuration(&mut self) -> Result<Loaded, HostError> {
        let mut loaded = crate::config_file::load(self.config_path.as_deref()).map_err(|e| {
            HostError::Configuration {
                line: e.one_line(),
                report: e.report(),
            }
        })?;
        crate::daemon::fleet::name_host(&mut loaded.config).map_err(|e| {
            HostError::Configuration {
                line: crate::exit::chain(&e),
                report: None,
            }
        })?;
        Ok(loaded)
    }

    fn local_port_range(&self) -> RangeInclusive<u16> {
        host::local_port_range()
    }

    fn listeners(&mut self) -> io::Result<Listeners> {
        stages::mark("listeners");
        let listeners = host::read_listeners();
        stages::mark("listened");
        listeners
    }

    fn established(&mut self) -> io::Result<Vec<(IpAddr, u16, u16)>> {
        stages::mark("established");
        self.established.take()
    }

    fn route_back(&mut self, addr: IpAddr) -> Option<io::Result<RouteBack>> {
        stages::mark("route");
        let route = self.fib.as_mut()?.route_back(addr);
        stages::mark("routed");
        Some(route)
    }

    fn routes_changed(&mut self) {
        if let Some(fib) = &mut self.fib {
            fib.forget();
        }
    }

    fn kernel_reverse_path(&self, ifindex: Option<u32>) -> ReversePath {
        host::kernel_reverse_path(ifindex.map(interface_name).as_deref())
    }

    fn interface_name(&self, index: u32) -> String {
        interface_name(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::thread::ThreadId;

    /// The readings made: their numbers and threads.
    type Made = Arc<Mutex<Vec<(u16, ThreadId)>>>;

    /// A reader that numbers its readings (the number in the reading's peer port), notes the
    /// thread of each, and fails the readings `fails` names.
    fn numbered(fails: &'static [u16]) -> (ReadPeers, Made) {
        let made = Arc::new(Mutex::new(Vec::new()));
        let read: ReadPeers = {
            let made = made.clone();
            Arc::new(move || {
                let mut made = made.lock().unwrap();
                let n = u16::try_from(made.len()).unwrap() + 1;
                made.push((n, std::thread::current().id()));
                if fails.contains(&n) {
                    return Err(io::Error::other("sock_diag: gone"));
                }
                Ok(vec![("198.51.100.7".parse().unwrap(), 22, n)])
            })
        };
        (read, made)
    }

    /// Calls `take` until `until` holds of what it handed over (bounded: the thread answers
    /// within microseconds; this never sleeps).
    fn take_until(
        established: &mut Established,
        until: impl Fn(&io::Result<Vec<Peer>>) -> bool,
    ) -> io::Result<Vec<Peer>> {
        for _ in 0..10_000_000 {
            let got = established.take();
            if until(&got) {
                return got;
            }
            std::thread::yield_now();
        }
        panic!("the thread never answered");
    }

    /// Issue 27: the established connections are read on the main loop once, at the start;
    /// after that by a thread of their own, whose newest reading each call hands over (the
    /// last one again while the next is being made).
    #[test]
    fn issue_27_established_connections_are_read_off_the_main_loop_after_the_first() {
        let (read, made) = numbered(&[]);
        let mut established = Established::new(read, Arc::new(SteadyClock::new()));
        let main = std::thread::current().id();

        assert_eq!(established.take().unwrap()[0].2, 1);
        assert_eq!(made.lock().unwrap()[0], (1, main));
        let second = take_until(&mut established, |r| r.as_ref().unwrap()[0].2 >= 2);
        let n = second.unwrap()[0].2;
        let third = take_until(&mut established, |r| r.as_ref().unwrap()[0].2 > n);
        assert!(third.is_ok());
        let made = made.lock().unwrap();
        assert!(made.len() >= 3);
        assert!(made[1..].iter().all(|(_, on)| *on != main), "{made:?}");
    }

    /// A failed reading is handed over as the failure (the engine says it), and the next
    /// good one as itself.
    #[test]
    fn a_failed_reading_is_handed_over() {
        let (read, _) = numbered(&[2]);
        let mut established = Established::new(read, Arc::new(SteadyClock::new()));
        assert!(established.take().is_ok());
        let failed = take_until(&mut established, io::Result::is_err);
        assert_eq!(failed.unwrap_err().to_string(), "sock_diag: gone");
        let next = take_until(&mut established, |r| {
            r.as_ref()
                .is_ok_and(|p| p.first().is_some_and(|c| c.2 >= 3))
        });
        assert_eq!(next.unwrap()[0].1, 22);
    }

    /// A reader whose first reading is made, and whose later ones wait until the test ends
    /// (a thread stuck in its reading); the second reading fails when `fail_second`.
    fn stuck_after_the_first(fail_second: bool) -> (ReadPeers, std::sync::mpsc::Sender<()>) {
        let (release, stuck) = std::sync::mpsc::channel::<()>();
        let stuck = Mutex::new(stuck);
        let made = Mutex::new(0u16);
        let read: ReadPeers = Arc::new(move || {
            let n = {
                let mut made = made.lock().unwrap();
                *made += 1;
                *made
            };
            if n == 2 && fail_second {
                return Err(io::Error::other("sock_diag: gone"));
            }
            if n > 1 {
                let _ = stuck.lock().unwrap().recv();
            }
            Ok(vec![("198.51.100.7".parse().unwrap(), 22, n)])
        });
        (read, release)
    }

    /// Review: a thread that makes no reading (stuck) never leaves its last one standing in
    /// for a new one for long: past [`STALE_AFTER`] without an answer the call fails, as a
    /// failed reading does (the engine says it once and counts no connection), and the peers
    /// of connections that have ended since stop being protected.
    #[test]
    fn a_reading_the_thread_does_not_make_is_a_failure_past_stale_after() {
        let (read, release) = stuck_after_the_first(false);
        let clock = Arc::new(crate::time::ManualClock::new(Timestamp::from_micros(
            1_000_000_000,
        )));
        let mut established = Established::new(read, clock.clone());
        assert_eq!(established.take().unwrap()[0].2, 1);
        clock.advance(Duration::from_secs(1));
        assert_eq!(
            established.take().unwrap()[0].2,
            1,
            "the last, within STALE_AFTER"
        );
        clock.advance(STALE_AFTER);
        let stale = established.take();
        assert_eq!(
            stale.as_ref().map_err(io::Error::kind).err(),
            Some(io::ErrorKind::TimedOut),
            "{stale:?}"
        );
        drop(release);
    }

    /// Review: after a failed reading, the reading before it is never handed over again as
    /// the newest (the engine ended its connections at the failure).
    #[test]
    fn after_a_failed_reading_the_one_before_is_not_handed_over_again() {
        let (read, release) = stuck_after_the_first(true);
        let mut established = Established::new(read, Arc::new(SteadyClock::new()));
        assert_eq!(established.take().unwrap()[0].2, 1);
        assert!(take_until(&mut established, io::Result::is_err).is_err());
        // The thread is now stuck in its third reading.
        let next = established.take();
        assert!(next.as_ref().is_ok_and(Vec::is_empty), "{next:?}");
        drop(release);
    }

    /// Review: a reading thread that stopped (a panic in a build that unwinds) is replaced:
    /// the reading is made in place and a new thread started, never the last one again.
    #[test]
    fn a_stopped_reading_thread_is_replaced() {
        let made = Arc::new(Mutex::new(0u16));
        let read: ReadPeers = {
            let made = made.clone();
            Arc::new(move || {
                let n = {
                    let mut made = made.lock().unwrap();
                    *made += 1;
                    *made
                };
                assert_ne!(n, 2, "the reading thread stops");
                Ok(vec![("198.51.100.7".parse().unwrap(), 22, n)])
            })
        };
        let mut established = Established::new(read, Arc::new(SteadyClock::new()));
        assert_eq!(established.take().unwrap()[0].2, 1);
        let later = take_until(&mut established, |r| r.as_ref().unwrap()[0].2 >= 3);
        assert!(later.is_ok());
    }

    /// Review: a reading the thread made long ago (asked for before a pause in the calls: a
    /// reload to `protect = "none"` and back) is not handed over as the newest; the reading
    /// is made afresh in place, as the first one is.
    #[test]
    fn a_reading_asked_for_long_ago_is_made_again_in_place() {
        let (read, made) = numbered(&[]);
        let clock = Arc::new(crate::time::ManualClock::new(Timestamp::from_micros(
            1_000_000_000,
        )));
        let mut established = Established::new(read, clock.clone());
        assert_eq!(established.take().unwrap()[0].2, 1);
        // The thread makes its reading, which waits to be taken.
        for _ in 0..10_000_000 {
            if made.lock().unwrap().len() == 2 {
                break;
            }
            std::thread::yield_now();
        }
        assert_eq!(made.lock().unwrap().len(), 2);
        clock.advance(Duration::from_secs(600));
        let now = established.take().unwrap()[0].2;
        assert!(
            now > 2,
            "a reading made now, not the one of ten minutes ago"
        );
        let made = made.lock().unwrap();
        let on = made.iter().find(|(n, _)| *n == now).unwrap().1;
        assert_eq!(on, std::thread::current().id(), "{made:?}");
    }
}
