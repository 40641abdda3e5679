//! The daemon's decisions through the engine, without root: a manual clock, a stand-in host
//! and the in-memory firewall, whose elements end by the same clock. The same behaviours are
//! tested against the real kernel in `tests/` (namespaces, nftables, real nmap).

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ipnet::IpNet;

use super::*;
use crate::config::{Backend, Origin};
use crate::control::protocol::Held;
use crate::firewall::memory::Memory;
use crate::never_block::{Entry, Reason};
use crate::respond::Why;
use crate::time::ManualClock;
use crate::wire::{Direction, Integrity, TcpFlags};

const LOCAL: &str = "198.51.100.1";
const SCANNER: &str = "203.0.113.7";
const HOUR: Duration = Duration::from_secs(3600);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    IpNet::from(ip(s))
}

/// What the stand-in host answers; the test changes it as the machine would change.
#[derive(Default)]
struct Machine {
    /// Addresses that became never-block since the start (a new gateway, say).
    gateways: Vec<IpAddr>,
    /// The interfaces cannot be listed.
    interfaces_gone: bool,
    /// The route backend cannot be opened.
    no_routes: bool,
    listeners: Listeners,
    established: Vec<(IpAddr, u16, u16)>,
}

/// The stand-in host: one address, [`LOCAL`]; nftables is `kernel`, routes are `routes`.
struct FakeHost {
    machine: Arc<Mutex<Machine>>,
    kernel: Memory,
    routes: Memory,
}

impl Host for FakeHost {
    fn never_block(&mut self, config: &Config) -> Result<NeverBlock, HostError> {
        let m = self.machine.lock().unwrap();
        if m.interfaces_gone {
            return Err(HostError::Interfaces("no such device".into()));
        }
        let mut found = vec![Entry {
            net: net(LOCAL),
            reason: Reason::Interface("eth0".into()),
        }];
        found.extend(m.gateways.iter().map(|&a| Entry {
            net: a.into(),
            reason: Reason::Gateway("eth0".into()),
        }));
        let (list, warnings) = crate::never_block::load(&config.never_block, found)?;
        Ok(NeverBlock {
            interfaces: vec![("eth0".into(), ip(LOCAL))],
            list,
            warnings,
        })
    }

    fn firewall(&mut self, config: &Config) -> Result<(Mode, Box<dyn Firewall>), FirewallError> {
        if config.respond.dry_run {
            return Ok((Mode::DryRun, Box::new(crate::firewall::DryRun)));
        }
        match config.backend {
            Backend::Nft(_) => Ok((Mode::Enforcing, Box::new(self.kernel.clone()))),
            Backend::Route if self.machine.lock().unwrap().no_routes => {
                Err(FirewallError::Permission)
            }
            Backend::Route => Ok((Mode::Enforcing, Box::new(self.routes.clone()))),
        }
    }

    fn local_port_range(&self) -> RangeInclusive<u16> {
        crate::config::LINUX_EPHEMERAL_PORTS
    }

    fn listeners(&mut self) -> io::Result<Listeners> {
        Ok(self.machine.lock().unwrap().listeners.clone())
    }

    fn established(&mut self) -> io::Result<Vec<(IpAddr, u16, u16)>> {
        Ok(self.machine.lock().unwrap().established.clone())
    }

    fn route_back(&mut self, _: IpAddr) -> Option<io::Result<RouteBack>> {
        Some(Ok(RouteBack::Via(1)))
    }

    fn routes_changed(&mut self) {}

    fn kernel_reverse_path(&self, _: Option<u32>) -> ReversePath {
        ReversePath::Strict
    }

    fn interface_name(&self, index: u32) -> String {
        format!("eth{index}")
    }
}

/// An engine on the stand-in host, and the handles a test looks through.
struct Lab {
    clock: Arc<ManualClock>,
    kernel: Memory,
    routes: Memory,
    machine: Arc<Mutex<Machine>>,
    engine: Engine,
}

/// The configuration of the tests: blocks of an hour, four times longer each offence.
fn config() -> Config {
    let mut c = Config::default();
    c.never_block.file = None;
    c.respond.block_for = HOUR;
    c.respond.repeat_factor = 4;
    c.respond.max_block_for = 30 * 24 * HOUR;
    c
}

fn loaded(config: Config, path: &str) -> Loaded {
    Loaded {
        config,
        origin: Origin::File(PathBuf::from(path)),
        warnings: Vec::new(),
    }
}

impl Lab {
    fn start(config: Config) -> Lab {
        let clock = Arc::new(ManualClock::new(Timestamp::from_micros(
            1_800_000_000_000_000,
        )));
        Lab::start_on(config, clock.clone(), Memory::new(clock), None)
    }

    /// An engine started on `kernel` (which may hold blocks already) and the state `saved`.
    fn start_on(
        config: Config,
        clock: Arc<ManualClock>,
        kernel: Memory,
        saved: Option<State>,
    ) -> Lab {
        let routes = Memory::without_timeouts(clock.clone());
        let machine = Arc::new(Mutex::new(Machine::default()));
        let host = FakeHost {
            machine: machine.clone(),
            kernel: kernel.clone(),
            routes: routes.clone(),
        };
        let options = Options {
            verbosity: Verbosity::Normal,
            disable_local_check: false,
            decisions: false,
            seed: 7,
        };
        let engine = Engine::start(
            loaded(config, "/etc/scansentry/scansentry.toml"),
            options,
            Box::new(clock.clone()),
            Box::new(host),
            saved,
        )
        .unwrap();
        Lab {
            clock,
            kernel,
            routes,
            machine,
            engine,
        }
    }

    fn machine(&self) -> MutexGuard<'_, Machine> {
        self.machine.lock().unwrap()
    }

    fn advance(&self, d: Duration) {
        self.clock.advance(d);
    }

    /// SYNs from `src` to `ports` of [`LOCAL`], as the capture hands them over.
    fn scan(&mut self, src: &str, ports: RangeInclusive<u16>) {
        for port in ports {
            let syn = Packet {
                direction: Direction::Incoming,
                ifindex: Some(1),
                src: ip(src),
                dst: ip(LOCAL),
                src_port: 40000,
                dst_port: port,
                tcp_flags: Some(TcpFlags::SYN),
                window: 1024,
                integrity: Integrity::Valid,
            };
            self.engine.packet(self.clock.now(), Ok(syn));
        }
    }

    fn request(&mut self, request: Request) -> Response {
        self.engine.request(request)
    }

    /// The lines said since the last look, with their level.
    fn said(&mut self) -> Vec<(Level, String)> {
        self.engine
            .take_effects()
            .into_iter()
            .filter_map(|e| match e {
                Effect::Log(level, line) => Some((level, line)),
                Effect::Decision { line, .. } => Some((Level::Info, line)),
                _ => None,
            })
            .collect()
    }

    /// Whether a line containing `text` was said since the last look.
    fn says(&mut self, text: &str) -> bool {
        let said = self.said();
        said.iter().any(|(_, line)| line.contains(text))
            || panic!("nothing says {text:?} in {said:#?}")
    }

    fn remaining(&self, memory: &Memory, s: &str) -> Option<Option<Duration>> {
        memory
            .elements()
            .into_iter()
            .find(|(n, _)| *n == net(s))
            .map(|(_, left)| left)
    }
}

#[test]
fn a_scan_is_blocked_in_the_kernel_and_the_program_and_history_follow() {
    let mut c = config();
    c.respond.history_file = Some(PathBuf::from("/var/lib/scansentry/history"));
    let mut lab = Lab::start(c);
    lab.engine.take_effects();
    lab.scan(SCANNER, 1..=10);
    assert_eq!(lab.remaining(&lab.kernel, SCANNER), Some(Some(HOUR)));
    let effects = lab.engine.take_effects();
    assert!(effects.iter().any(|e| matches!(e,
        Effect::Blocked { net: n, ttl, .. } if *n == net(SCANNER) && *ttl == HOUR)));
    assert!(effects.iter().any(|e| matches!(e,
        Effect::History { path, line }
            if path.ends_with("history") && line.contains(SCANNER))));
    assert!(effects.iter().any(|e| matches!(e,
        Effect::Decision { line, fields } if line.starts_with("blocked 203.0.113.7 for 1h")
            && fields.decision == "block"
            && fields.address.to_string() == SCANNER
            && fields.network == Some(net(SCANNER))
            && fields.duration_s == Some(3600)
            && fields.offence == Some(1)
            && fields.reason.is_none())));
    let status = lab.engine.status();
    assert_eq!((status.blocks_active, status.block_latency_samples), (1, 1));
    let tally = lab.engine.tally();
    assert_eq!(tally.detections_by_kind.get("syn"), Some(&1));
    assert_eq!(tally.decisions.get("block"), Some(&1));
    assert_eq!((tally.latency.count(), tally.firewall_errors), (1, 0));
    // Its probes after the block are no news.
    lab.scan(SCANNER, 11..=30);
    assert!(lab.said().is_empty());
}

#[test]
fn a_block_the_kernel_refuses_is_not_recorded() {
    let mut lab = Lab::start(config());
    lab.kernel.refuse(net(SCANNER));
    lab.scan(SCANNER, 1..=10);
    assert!(!lab.kernel.holds(net(SCANNER)));
    assert_eq!(lab.engine.tally().firewall_errors, 1);
    assert!(lab.says("could not carry out \"blocked 203.0.113.7"));
    assert_eq!(lab.engine.status().blocks_active, 0);
    assert!(matches!(
        lab.request(Request::Why { addr: ip(SCANNER) }),
        Response::Why { block: None, .. }
    ));
}

#[test]
fn a_block_by_hand_and_an_unblock_with_grace() {
    let mut lab = Lab::start(config());
    let scanner = net(SCANNER);
    let answer = lab.request(Request::Block {
        net: scanner,
        seconds: Some(60),
    });
    assert!(
        matches!(answer, Response::Blocked { seconds: 60, .. }),
        "{answer:?}"
    );
    assert_eq!(
        lab.remaining(&lab.kernel, SCANNER),
        Some(Some(Duration::from_secs(60)))
    );
    assert!(lab.says("blocked 203.0.113.7 for 1m by hand"));

    let answer = lab.request(Request::Unblock {
        net: scanner,
        grace: Some(600),
        local: false,
    });
    assert!(matches!(answer, Response::Unblocked { .. }), "{answer:?}");
    assert!(!lab.kernel.holds(scanner));
    assert!(lab.says("unblocked 203.0.113.7 by hand, not blocked again for 10m"));
    // In the grace period its scan is reported, not blocked; after it, blocked.
    lab.scan(SCANNER, 1..=10);
    assert!(!lab.kernel.holds(scanner));
    lab.advance(Duration::from_secs(601));
    lab.scan(SCANNER, 20..=30);
    assert!(lab.kernel.holds(scanner));

    // Unblocking what is not blocked says so; so does what cannot be blocked.
    let other = net("203.0.113.99");
    assert!(matches!(
        lab.request(Request::Unblock {
            net: other,
            grace: None,
            local: false,
        }),
        Response::NotBlocked { .. }
    ));
    let Response::Error { message } = lab.request(Request::Block {
        net: net(LOCAL),
        seconds: None,
    }) else {
        panic!("blocked a never-block address")
    };
    assert_eq!(
        message,
        "not blocking 198.51.100.1: it overlaps the never-block list: 198.51.100.1 \
         (address of interface eth0)"
    );
    let Response::Error { message } = lab.request(Request::Block {
        net: other,
        seconds: Some(0),
    }) else {
        panic!("blocked for no time")
    };
    assert!(
        message.starts_with("not blocking 203.0.113.99 for 0s"),
        "{message}"
    );
    assert!(!lab.kernel.holds(net(LOCAL)) && !lab.kernel.holds(other));
}

#[test]
fn a_repeat_offender_is_blocked_longer_each_time() {
    let mut lab = Lab::start(config());
    lab.scan(SCANNER, 1..=10);
    assert_eq!(lab.remaining(&lab.kernel, SCANNER), Some(Some(HOUR)));
    // The kernel ends the block by itself; the next scan is the second offence.
    lab.advance(HOUR + Duration::from_secs(1));
    assert!(!lab.kernel.holds(net(SCANNER)));
    lab.scan(SCANNER, 1..=10);
    assert_eq!(lab.remaining(&lab.kernel, SCANNER), Some(Some(4 * HOUR)));
    assert!(lab.says("(offence 2)"));
}

#[test]
fn past_max_blocks_a_detection_is_refused_and_counted() {
    let mut c = config();
    c.respond.max_blocks = 2;
    let mut lab = Lab::start(c);
    // Seven probes: one detection each (the default threshold).
    for scanner in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        lab.scan(scanner, 1..=7);
    }
    assert_eq!(lab.kernel.elements().len(), 2);
    assert!(!lab.kernel.holds(net("203.0.113.3")));
    let status = lab.engine.status();
    assert_eq!((status.blocks_active, status.refused), (2, 1));
    // A refused source is judged again at its next probe (and refused again while full).
    lab.scan("203.0.113.3", 8..=8);
    assert_eq!(lab.engine.status().refused, 2);
    // A block by hand is refused too, and says why.
    let Response::Error { message } = lab.request(Request::Block {
        net: net("203.0.113.4"),
        seconds: None,
    }) else {
        panic!("over the budget")
    };
    assert!(
        message.ends_with("2 blocks are active ([respond] max-blocks)"),
        "{message}"
    );
}

#[test]
fn a_restart_reconciles_the_state_file_with_the_kernel() {
    let clock = Arc::new(ManualClock::new(Timestamp::from_micros(
        1_800_000_000_000_000,
    )));
    let now = clock.now();
    let kernel = Memory::new(clock.clone());
    // The kernel kept one block of the last run, and holds one an administrator added by hand.
    kernel.add_by_hand(net("203.0.113.1"), Some(HOUR / 2));
    kernel.add_by_hand(net("203.0.113.9"), None);
    // The state file has one block the kernel lost (a reboot), and one of an address that is
    // now the host's own.
    let block = |addr: &str, left: Duration| ActiveBlock {
        net: net(addr),
        since: now.saturating_sub(HOUR),
        until: now.saturating_add(left),
        offence: 1,
        why: Why::manual(),
    };
    let saved = State::new(
        [block("203.0.113.2", 2 * HOUR), block(LOCAL, HOUR)],
        [],
        WallOffset::default(),
    );
    let mut lab = Lab::start_on(config(), clock, kernel, Some(saved));
    assert_eq!(
        lab.kernel.elements(),
        [
            (net("203.0.113.1"), Some(HOUR / 2)),
            (net("203.0.113.2"), Some(2 * HOUR)),
            (net("203.0.113.9"), None),
        ]
    );
    let said = lab.said();
    assert!(said.iter().any(|(_, l)| l == "put back 1 block still due"));
    assert!(
        said.iter().any(|(level, l)| *level == Level::Warn
            && l.starts_with("lifting the block of 198.51.100.1"))
    );
    // What the daemon lists: its own and the kernel's timed blocks, taken over, and the one
    // added by hand, which the kernel holds without it (issue 16, 3).
    let Response::Blocks { total, blocks } = lab.request(Request::List {
        offset: 0,
        limit: 10,
    }) else {
        panic!()
    };
    assert_eq!(total, 3);
    assert_eq!(blocks[0].kind, "unknown");
    let by_hand = blocks.iter().find(|b| b.net == net("203.0.113.9")).unwrap();
    assert_eq!(
        (by_hand.held, by_hand.kind.as_str()),
        (Held::KernelOnly, "added outside sentryd, no timeout")
    );
}

#[test]
fn a_flushed_table_is_restored_with_the_blocks_still_due_and_fights_are_spaced_out() {
    let mut lab = Lab::start(config());
    lab.scan(SCANNER, 1..=10);
    lab.advance(Duration::from_secs(600));
    lab.kernel.flush();
    lab.engine.firewall_changed();
    // Not at once: the change that woke us may not be finished.
    let next = lab.engine.tick();
    assert!(!lab.kernel.is_ready());
    assert_eq!(next, lab.clock.now().saturating_add(HEAL_SETTLE));
    lab.advance(HEAL_SETTLE);
    lab.engine.tick();
    assert!(lab.kernel.is_ready());
    assert!(lab.kernel.allow().contains(&net(LOCAL)));
    assert_eq!(
        lab.remaining(&lab.kernel, SCANNER),
        Some(Some(HOUR - Duration::from_secs(600) - HEAL_SETTLE))
    );
    assert!(lab.says("restored the table and 1 block still due"));
    // Another program deleting the table as fast as it is restored: said once, then spaced.
    let mut restores = 0;
    for _ in 0..20 {
        lab.kernel.flush();
        lab.engine.firewall_changed();
        lab.advance(HEAL_SETTLE);
        lab.engine.tick();
        restores += usize::from(lab.kernel.is_ready());
    }
    assert!(restores < 6, "{restores} restores in a second");
    let fights = lab
        .said()
        .iter()
        .filter(|(_, l)| l.contains("keeps losing parts"))
        .count();
    assert_eq!(fights, 1);
}

/// A flush the watcher has not reported yet: the next block finds the table gone, and the
/// engine rebuilds it with every block still due, the new one among them (one repair, the same
/// as after a reported flush; the nftables backend has none of its own any more).
#[test]
fn a_block_that_finds_the_table_gone_rebuilds_it_with_every_block_due() {
    let mut lab = Lab::start(config());
    lab.scan(SCANNER, 1..=10);
    lab.kernel.flush();
    lab.scan("203.0.113.8", 1..=10);
    assert!(lab.kernel.is_ready());
    assert!(lab.kernel.holds(net(SCANNER)) && lab.kernel.holds(net("203.0.113.8")));
    assert!(lab.says("table inet scansentry was gone: restored the table and 2 blocks still due"));
    assert_eq!(lab.engine.status().blocks_active, 2);
}

#[test]
fn the_route_backend_lifts_ended_blocks_and_puts_back_removed_ones() {
    let mut c = config();
    c.backend = Backend::Route;
    let mut lab = Lab::start(c);
    lab.scan(SCANNER, 1..=10);
    // A route does not end by itself.
    assert_eq!(lab.remaining(&lab.routes, SCANNER), Some(None));
    assert!(lab.kernel.elements().is_empty());
    // Someone deletes it: put back within a second.
    lab.routes.flush();
    lab.routes.clone().ensure_ready(&[]).unwrap();
    lab.advance(EVERY_SECOND);
    lab.engine.tick();
    assert!(lab.routes.holds(net(SCANNER)));
    assert!(lab.says("put back 1 block still due that someone removed"));
    // Its hour over, it is lifted.
    lab.advance(HOUR);
    lab.engine.tick();
    assert!(!lab.routes.holds(net(SCANNER)));
    assert_eq!(lab.engine.status().firewall, "route");
}

#[test]
fn a_good_reload_takes_effect_and_a_bad_one_changes_nothing() {
    let mut lab = Lab::start(config());
    lab.scan(SCANNER, 1..=10);
    let old = lab.engine.status().config;

    // The interfaces cannot be listed: refused, nothing moves.
    lab.machine().interfaces_gone = true;
    let err = lab
        .engine
        .reload(loaded(config(), "/etc/new.toml"))
        .unwrap_err();
    assert!(err.to_string().contains("no such device"), "{err}");
    lab.machine().interfaces_gone = false;
    // The route backend cannot be opened: refused, the nftables blocks stay in force.
    let mut routes = config();
    routes.backend = Backend::Route;
    lab.machine().no_routes = true;
    assert!(matches!(
        lab.engine.reload(loaded(routes, "/etc/new.toml")),
        Err(SetupError::Firewall(FirewallError::Permission))
    ));
    assert_eq!(lab.engine.status().config, old);
    assert!(lab.kernel.holds(net(SCANNER)));
    lab.scan("203.0.113.8", 1..=10);
    assert!(
        lab.kernel.holds(net("203.0.113.8")),
        "still blocking in nftables"
    );

    // A good one: the scanner is now on the never-block list, so its block is lifted, and the
    // allow sets hold it.
    let mut good = config();
    good.never_block.addresses.push(net(SCANNER));
    lab.engine.take_effects();
    let origin = lab.engine.reload(loaded(good, "/etc/new.toml")).unwrap();
    assert_eq!(origin, "/etc/new.toml");
    assert_eq!(lab.engine.status().config, "/etc/new.toml");
    assert!(!lab.kernel.holds(net(SCANNER)));
    assert!(lab.kernel.allow().contains(&net(SCANNER)));
    assert!(lab.says("lifting the block of 203.0.113.7"));

    // Moving to routes takes every block still due along.
    lab.machine().no_routes = false;
    let mut routes = config();
    routes.backend = Backend::Route;
    lab.engine.reload(loaded(routes, "/etc/new.toml")).unwrap();
    assert_eq!(lab.remaining(&lab.routes, "203.0.113.8"), Some(None));
}

#[test]
fn a_failed_save_is_said_once_and_tried_again_every_second() {
    let mut lab = Lab::start(config());
    lab.scan(SCANNER, 1..=10);
    let saves = |lab: &mut Lab| {
        lab.engine
            .take_effects()
            .into_iter()
            .filter_map(|e| match e {
                Effect::Save(state) => Some(state.blocks.len()),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    lab.advance(SAVE_EVERY);
    lab.engine.tick();
    assert_eq!(saves(&mut lab), [1]);
    lab.engine.saved(Err("No space left on device".into()));
    assert!(lab.says("could not save the state (blocks still work"));
    for _ in 0..3 {
        lab.advance(SAVE_EVERY);
        lab.engine.tick();
        assert_eq!(saves(&mut lab), [1], "tried again");
        lab.engine.saved(Err("No space left on device".into()));
        assert!(lab.said().is_empty(), "said once");
    }
    lab.advance(SAVE_EVERY);
    lab.engine.tick();
    saves(&mut lab);
    lab.engine.saved(Ok(1));
    assert!(lab.says("saved the state again (1 block)"));
    lab.advance(SAVE_EVERY);
    lab.engine.tick();
    assert!(saves(&mut lab).is_empty(), "nothing new to save");
}

#[test]
fn a_new_never_block_address_of_the_host_lifts_its_block() {
    let mut lab = Lab::start(config());
    lab.scan(SCANNER, 1..=10);
    lab.machine().gateways.push(ip(SCANNER));
    lab.engine.host_changed();
    assert!(!lab.kernel.holds(net(SCANNER)));
    assert!(lab.kernel.allow().contains(&net(SCANNER)));
    assert!(lab.says("lifting the block of 203.0.113.7"));
    assert!(matches!(
        lab.request(Request::Why { addr: ip(SCANNER) }),
        Response::Why { block: None, never_block, .. } if never_block.len() == 1
    ));
}

#[test]
fn a_service_started_a_moment_ago_is_no_trap() {
    let mut lab = Lab::start(config());
    // Services on ports 1-5 started after the socket table was last read.
    for port in 1..=5 {
        lab.machine().listeners.insert(Proto::Tcp, None, port);
    }
    lab.advance(LISTENERS_FRESH * 2);
    lab.scan(SCANNER, 1..=7);
    assert!(!lab.kernel.holds(net(SCANNER)));
    assert_eq!(lab.engine.pipeline().counters().withdrawn, 1);
    // Probes of closed ports still count.
    lab.scan(SCANNER, 100..=110);
    assert!(lab.kernel.holds(net(SCANNER)));
}

#[test]
fn an_established_session_protects_its_peer_from_later_evidence() {
    let mut lab = Lab::start(config());
    let admin = "203.0.113.50";
    lab.machine().established.push((ip(admin), 22, 51000));
    lab.advance(EVERY_SECOND);
    lab.engine.tick();
    lab.scan(admin, 1..=10);
    assert!(!lab.kernel.holds(net(admin)));
    let Response::Why {
        refused: Some(refused),
        ..
    } = lab.request(Request::Why { addr: ip(admin) })
    else {
        panic!("why says nothing")
    };
    assert_eq!(refused.rule, "protected");
    assert_eq!(lab.engine.status().protected_peers, 1);
}

/// Issue 16, 7: with `dry-run = true`, a block by hand said "blocked" and touched nothing.
#[test]
fn issue_16_a_dry_run_blocks_nothing_by_hand_and_says_so() {
    let mut c = config();
    c.respond.dry_run = true;
    let mut lab = Lab::start(c);
    let scanner = net(SCANNER);
    let answer = lab.request(Request::Block {
        net: scanner,
        seconds: Some(60),
    });
    assert!(
        matches!(answer, Response::Blocked { dry_run: true, .. }),
        "{answer:?}"
    );
    assert!(lab.says("would block 203.0.113.7 for 1m by hand"));
    let answer = lab.request(Request::Unblock {
        net: scanner,
        grace: None,
        local: false,
    });
    assert!(
        matches!(answer, Response::Unblocked { dry_run: true, .. }),
        "{answer:?}"
    );
    assert!(lab.says("would unblock 203.0.113.7 by hand"));
    assert!(lab.kernel.elements().is_empty() && !lab.kernel.is_ready());
    assert_eq!(lab.engine.status().mode, "dry-run");
}

/// Issue 16, 3: `why`, `list` and `unblock` trusted the daemon's memory: after a flush of the set
/// `list` still showed the block, an element added by hand was "not blocked" to `why` and
/// "nothing to do" to `unblock`, and `unblock` of an address inside a blocked network said it
/// was not blocked.
#[test]
fn issue_16_why_list_and_unblock_read_the_kernel() {
    let mut lab = Lab::start(config());
    // The kernel lost the scanner's block (a flushed set the daemon has not restored yet).
    lab.scan(SCANNER, 1..=10);
    lab.kernel.flush();
    lab.kernel.clone().ensure_ready(&[]).unwrap();
    let Response::Blocks { blocks, .. } = lab.request(Request::List {
        offset: 0,
        limit: 10,
    }) else {
        panic!()
    };
    assert_eq!(blocks[0].held, Held::DaemonOnly);
    // An element added by hand: blocked, says `why`; `unblock` lifts it.
    let by_hand = "203.0.113.60";
    lab.kernel.add_by_hand(net(by_hand), None);
    let Response::Why {
        block: Some(block), ..
    } = lab.request(Request::Why { addr: ip(by_hand) })
    else {
        panic!("why says it is not blocked")
    };
    assert_eq!(block.held, Held::KernelOnly);
    let answer = lab.request(Request::Unblock {
        net: net(by_hand),
        grace: None,
        local: false,
    });
    assert!(matches!(answer, Response::Unblocked { .. }), "{answer:?}");
    assert!(!lab.kernel.holds(net(by_hand)));
    // An address inside a blocked network: the network's block is lifted, and said.
    let network: IpNet = "203.0.113.0/26".parse().unwrap();
    lab.request(Request::Block {
        net: network,
        seconds: Some(600),
    });
    assert!(lab.kernel.holds(network));
    let answer = lab.request(Request::Unblock {
        net: net("203.0.113.33"),
        grace: None,
        local: false,
    });
    let Response::Unblocked { lifted, .. } = answer else {
        panic!("{answer:?}")
    };
    assert_eq!(lifted, [network]);
    assert!(!lab.kernel.holds(network));
    assert!(lab.says("unblocked 203.0.113.33 by hand (lifted the block of 203.0.113.0/26)"));
    // `unblock --all`: the daemon's blocks and every element of the kernel's sets.
    lab.kernel.add_by_hand(net("203.0.113.61"), None);
    lab.scan("203.0.113.62", 1..=10);
    let answer = lab.request(Request::UnblockAll);
    assert!(
        matches!(answer, Response::UnblockedAll { count: 2, .. }),
        "{answer:?}"
    );
    assert!(lab.kernel.elements().is_empty());
    // What holds nothing is still nothing to do.
    assert!(matches!(
        lab.request(Request::Unblock {
            net: net("198.51.100.200"),
            grace: None,
            local: false,
        }),
        Response::NotBlocked { .. }
    ));
}

/// What the engine told the fleet since the last look.
fn told(lab: &mut Lab) -> Vec<crate::fleet::message::Body> {
    lab.engine
        .take_effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::Fleet { body, .. } => Some(body),
            _ => None,
        })
        .collect()
}

/// Fleet mode (issue 17): the engine's side, with messages as values.
mod fleet {
    use super::*;
    use crate::fleet::message::{Body, HostName, Message};

    /// A host `web-1` in a fleet, taking blocks of at most a day, 3 a minute from one origin.
    fn fleet_config() -> Config {
        let mut c = config();
        let text = "[fleet]\nenabled = true\nservers = [\"nats://198.51.100.250:4222\"]\n\
                    host = \"web-1\"\nmax-block-for = \"1d\"\n\
                    max-blocks-per-origin-per-minute = 3\n";
        c.fleet = crate::config::from_toml(text, std::path::Path::new("fleet.toml"))
            .unwrap()
            .fleet;
        assert!(c.fleet.is_some());
        c
    }

    fn host(name: &str) -> HostName {
        HostName::new(name).unwrap()
    }

    /// The wall clock `secs` from the lab's now (the manual clock is its own wall clock).
    fn wall(lab: &Lab, secs: i64) -> Timestamp {
        let now = lab.clock.now();
        if secs >= 0 {
            now.saturating_add(Duration::from_secs(secs.unsigned_abs()))
        } else {
            now.saturating_sub(Duration::from_secs(secs.unsigned_abs()))
        }
    }

    fn block(lab: &Lab, origin: &str, addr: &str, detected: i64, ends: i64) -> Message {
        Message::new(
            host(origin),
            Body::Block {
                net: net(addr),
                kind: "syn".into(),
                ports: vec!["22/tcp".into(), "80/tcp".into()],
                at: wall(lab, detected),
                until: wall(lab, ends),
            },
        )
    }

    #[test]
    fn another_hosts_block_is_taken_for_the_time_left_and_why_names_its_origin() {
        let mut lab = Lab::start(fleet_config());
        lab.engine.take_effects();
        lab.engine
            .fleet_message(block(&lab, "web-3", SCANNER, -60, 540));
        assert_eq!(
            lab.remaining(&lab.kernel, SCANNER),
            Some(Some(Duration::from_secs(540)))
        );
        assert!(lab.says("blocked 203.0.113.7 for 9m: blocked by fleet, detected on web-3"));
        let Response::Why { block: Some(b), .. } = lab.request(Request::Why { addr: ip(SCANNER) })
        else {
            panic!("not blocked");
        };
        assert_eq!(b.origin.as_deref(), Some("web-3"));
        assert_eq!(b.ports, ["22/tcp", "80/tcp"]);
        // When web-3 detected it, not when it arrived here.
        assert_eq!(b.blocked_at, wall(&lab, -60).to_string());
        // A block taken is not told to the fleet again.
        assert!(told(&mut lab).is_empty());
        let info = lab.engine.fleet_info().unwrap();
        assert_eq!((info.received, info.taken), (1, 1));
    }

    #[test]
    fn this_hosts_rules_win_over_the_fleets() {
        let mut lab = Lab::start(fleet_config());
        lab.machine().established = vec![(ip("203.0.113.50"), 22, 50000)];
        lab.advance(EVERY_SECOND);
        lab.engine.tick();
        lab.engine.take_effects();
        // The host's own address, a protected peer, and a block longer than this host allows.
        lab.engine
            .fleet_message(block(&lab, "web-3", LOCAL, -1, 600));
        assert!(
            lab.says("refused web-3's block of 198.51.100.1: it overlaps the never-block list")
        );
        lab.engine
            .fleet_message(block(&lab, "web-3", "203.0.113.50", -1, 600));
        assert!(
            lab.says("refused web-3's block of 203.0.113.50: 203.0.113.50 is a protected peer")
        );
        assert!(lab.kernel.elements().is_empty());
        lab.engine
            .fleet_message(block(&lab, "web-3", SCANNER, -1, 7 * 24 * 3600));
        assert_eq!(
            lab.remaining(&lab.kernel, SCANNER),
            Some(Some(Duration::from_secs(24 * 3600)))
        );
        // The per-origin cap (3 a minute): the fourth is refused; another origin is not.
        lab.engine
            .fleet_message(block(&lab, "web-3", "203.0.113.60", -1, 600));
        lab.engine
            .fleet_message(block(&lab, "web-2", "203.0.113.61", -1, 600));
        assert!(lab.kernel.holds(net("203.0.113.61")));
        // This host's own message, come back, is ignored; an ended block is dropped.
        lab.engine
            .fleet_message(block(&lab, "web-1", "203.0.113.62", -1, 600));
        lab.engine
            .fleet_message(block(&lab, "web-2", "203.0.113.63", -600, -1));
        assert!(!lab.kernel.holds(net("203.0.113.60")));
        assert!(!lab.kernel.holds(net("203.0.113.62")));
        assert!(!lab.kernel.holds(net("203.0.113.63")));
        let refused = lab.engine.fleet_info().unwrap().refused;
        assert_eq!(
            refused,
            [
                ("ended".to_string(), 1),
                ("never-block".to_string(), 1),
                ("protected".to_string(), 1),
                ("rate-cap".to_string(), 1),
            ]
            .into_iter()
            .collect()
        );
    }

    #[test]
    fn this_hosts_blocks_and_fleet_wide_unblocks_are_told_to_the_fleet() {
        let mut lab = Lab::start(fleet_config());
        lab.engine.take_effects();
        let start = lab.clock.now();
        lab.scan(SCANNER, 1..=10);
        let told_now = told(&mut lab);
        let [
            Body::Block {
                net: n,
                kind,
                ports,
                at,
                until,
            },
        ] = told_now.as_slice()
        else {
            panic!("{told_now:?}");
        };
        assert_eq!((*n, kind.as_str()), (net(SCANNER), "syn"));
        assert_eq!(ports[..3], ["1/tcp", "2/tcp", "3/tcp"]);
        assert_eq!(*at, start);
        assert_eq!(*until, start.saturating_add(HOUR));

        let answer = lab.request(Request::Unblock {
            net: net(SCANNER),
            grace: None,
            local: false,
        });
        assert!(
            matches!(answer, Response::Unblocked { fleet: true, .. }),
            "{answer:?}"
        );
        assert!(lab.says("unblocked 203.0.113.7 by hand, here and across the fleet"));
        // said() took the effects: block again, then lift it here only.
        lab.request(Request::Block {
            net: net(SCANNER),
            seconds: Some(60),
        });
        assert!(
            matches!(told(&mut lab).as_slice(), [Body::Block { kind, .. }] if kind == "manual")
        );
        let answer = lab.request(Request::Unblock {
            net: net(SCANNER),
            grace: None,
            local: true,
        });
        assert!(
            matches!(answer, Response::Unblocked { fleet: false, .. }),
            "{answer:?}"
        );
        assert!(told(&mut lab).is_empty());
    }

    #[test]
    fn an_unblock_dated_in_the_future_does_not_outrank_later_blocks() {
        let mut lab = Lab::start(fleet_config());
        // A host whose clock runs a day ahead (or that lies) lifts the scanner.
        let ahead = Message::new(
            host("web-2"),
            Body::Unblock {
                net: net(SCANNER),
                at: wall(&lab, 86_400),
            },
        );
        lab.engine.fleet_message(ahead);
        // A block detected a minute later is taken all the same.
        lab.advance(Duration::from_secs(60));
        lab.engine
            .fleet_message(block(&lab, "web-3", SCANNER, 0, 600));
        assert!(lab.kernel.holds(net(SCANNER)));
    }

    #[test]
    fn a_dry_run_tells_the_fleet_nothing_it_would_block() {
        let mut c = fleet_config();
        c.respond.dry_run = true;
        let mut lab = Lab::start(c);
        lab.engine.take_effects();
        lab.scan(SCANNER, 1..=10);
        lab.request(Request::Block {
            net: net("203.0.113.9"),
            seconds: Some(60),
        });
        assert!(told(&mut lab).is_empty());
    }

    #[test]
    fn an_unblock_wins_over_blocks_detected_before_it_from_any_host() {
        let mut lab = Lab::start(fleet_config());
        lab.engine
            .fleet_message(block(&lab, "web-3", SCANNER, -60, 600));
        assert!(lab.kernel.holds(net(SCANNER)));
        // web-2's administrator lifts it fleet-wide.
        let unblock = Message::new(
            host("web-2"),
            Body::Unblock {
                net: net(SCANNER),
                at: wall(&lab, 0),
            },
        );
        lab.engine.take_effects();
        lab.engine.fleet_message(unblock);
        assert!(!lab.kernel.holds(net(SCANNER)));
        assert!(lab.says("unblocked 203.0.113.7: lifted fleet-wide from web-2"));
        // web-3's block, read again from the bucket at a reconnection, is not taken again;
        // a new detection after the unblock is.
        lab.advance(Duration::from_secs(5));
        lab.engine
            .fleet_message(block(&lab, "web-3", SCANNER, -65, 595));
        assert!(!lab.kernel.holds(net(SCANNER)));
        lab.engine
            .fleet_message(block(&lab, "web-4", SCANNER, -1, 600));
        assert!(lab.kernel.holds(net(SCANNER)));
        // So does an unblock by hand here, `--local` or not.
        lab.request(Request::Unblock {
            net: net(SCANNER),
            grace: None,
            local: true,
        });
        lab.engine
            .fleet_message(block(&lab, "web-4", SCANNER, -1, 600));
        assert!(!lab.kernel.holds(net(SCANNER)));
        assert_eq!(lab.engine.fleet_info().unwrap().refused["unblocked"], 2);
    }

    #[test]
    fn blocks_from_the_fleet_are_kept_across_a_restart_with_their_origin() {
        let mut lab = Lab::start(fleet_config());
        lab.engine
            .fleet_message(block(&lab, "web-3", SCANNER, -60, 600));
        let state = lab.engine.state();
        assert_eq!(state.blocks[0].origin, Some(host("web-3")));
        let kernel = lab.kernel.clone();
        let again = Lab::start_on(fleet_config(), lab.clock.clone(), kernel, Some(state));
        let mut again = again;
        let Response::Why { block: Some(b), .. } =
            again.request(Request::Why { addr: ip(SCANNER) })
        else {
            panic!("not blocked");
        };
        assert_eq!(b.origin.as_deref(), Some("web-3"));
    }
}

/// Sweeps (issue 17): summaries out, the owner's count, the block through this host's rules.
mod sweep {
    use super::*;
    use crate::fleet::message::{Body, HostName, Message, ProbeSummary};

    fn fleet_config() -> Config {
        fleet_config_as("web-1")
    }

    fn fleet_config_as(name: &str) -> Config {
        let mut c = config();
        let text = format!(
            "[fleet]\nenabled = true\nservers = [\"nats://198.51.100.250:4222\"]\n\
             host = \"{name}\"\n"
        );
        c.fleet = crate::config::from_toml(&text, std::path::Path::new("fleet.toml"))
            .unwrap()
            .fleet;
        c
    }

    /// A lab running as the owner of `source`'s count among web-1 … web-`n`, every other
    /// member heard from; the others' names.
    fn lab_owning(source: &str, n: usize) -> (Lab, Vec<String>) {
        let members: Vec<HostName> = (1..=n).map(|i| host(&format!("web-{i}"))).collect();
        let own = crate::fleet::sweep::owner(&net(source), &members)
            .unwrap()
            .to_string();
        let mut lab = Lab::start(fleet_config_as(&own));
        let others: Vec<String> = members
            .iter()
            .map(ToString::to_string)
            .filter(|m| *m != own)
            .collect();
        for other in &others {
            let beat = heartbeat(&lab, other);
            lab.engine.fleet_message(beat);
        }
        assert_eq!(lab.engine.fleet_info().unwrap().members, n);
        (lab, others)
    }

    fn host(name: &str) -> HostName {
        HostName::new(name).unwrap()
    }

    fn probes_from(lab: &Lab, origin: &str, source: &str, port: &str) -> Message {
        Message::new(
            host(origin),
            Body::Probes {
                probes: vec![ProbeSummary {
                    source: net(source),
                    port: port.into(),
                    kind: "syn".into(),
                    at: lab.clock.now(),
                }],
            },
        )
    }

    fn heartbeat(lab: &Lab, origin: &str) -> Message {
        Message::new(
            host(origin),
            Body::Heartbeat {
                at: lab.clock.now(),
            },
        )
    }

    /// Effects to the fleet, with their addressee.
    fn told_to(lab: &mut Lab) -> Vec<(Option<HostName>, Body)> {
        lab.engine
            .take_effects()
            .into_iter()
            .filter_map(|e| match e {
                Effect::Fleet { body, to } => Some((to, body)),
                _ => None,
            })
            .collect()
    }

    /// web-1 with web-2 … web-16 heard from.
    fn in_a_fleet_of_sixteen() -> Lab {
        let mut lab = Lab::start(fleet_config());
        for i in 2..=16 {
            let beat = heartbeat(&lab, &format!("web-{i}"));
            lab.engine.fleet_message(beat);
        }
        lab.engine.take_effects();
        lab
    }

    fn owner(source: &str) -> HostName {
        let members: Vec<HostName> = (1..=16).map(|i| host(&format!("web-{i}"))).collect();
        crate::fleet::sweep::owner(&net(source), &members)
            .unwrap()
            .clone()
    }

    #[test]
    fn a_probe_goes_to_its_prefixs_owner_once_per_window_in_a_batch() {
        let mut lab = in_a_fleet_of_sixteen();
        // Two sources another host owns, one web-1 owns (counted here, not sent).
        let others: Vec<String> = (2..255)
            .map(|k| format!("203.0.113.{k}"))
            .filter(|a| owner(a).as_str() != "web-1")
            .take(2)
            .collect();
        let own = (2..255)
            .map(|k| format!("203.0.113.{k}"))
            .find(|a| owner(a).as_str() == "web-1")
            .unwrap();
        lab.scan(&others[0], 23..=23);
        lab.scan(&others[0], 23..=23);
        lab.scan(&others[1], 80..=80);
        lab.scan(&own, 23..=23);
        lab.advance(Duration::from_millis(100));
        lab.engine.tick();
        let mut out: Vec<(String, String, String)> = told_to(&mut lab)
            .into_iter()
            .flat_map(|(to, body)| match body {
                Body::Probes { probes } => probes
                    .into_iter()
                    .map(|p| {
                        (
                            to.clone().unwrap().to_string(),
                            p.source.to_string(),
                            p.port,
                        )
                    })
                    .collect::<Vec<_>>(),
                other => panic!("{other:?}"),
            })
            .collect();
        out.sort();
        let mut want = vec![
            (
                owner(&others[0]).to_string(),
                format!("{}/32", others[0]),
                "23/tcp".to_string(),
            ),
            (
                owner(&others[1]).to_string(),
                format!("{}/32", others[1]),
                "80/tcp".to_string(),
            ),
        ];
        want.sort();
        assert_eq!(out, want);
        // The same (source, port) within the window: not told again; after it, told.
        lab.scan(&others[0], 23..=23);
        lab.advance(Duration::from_millis(100));
        lab.engine.tick();
        assert!(told_to(&mut lab).is_empty());
        lab.advance(Duration::from_secs(61));
        for i in 2..=16 {
            let beat = heartbeat(&lab, &format!("web-{i}"));
            lab.engine.fleet_message(beat);
        }
        lab.scan(&others[0], 23..=23);
        lab.advance(Duration::from_millis(100));
        lab.engine.tick();
        assert_eq!(told_to(&mut lab).len(), 1);
    }

    #[test]
    fn a_flood_of_probes_is_told_at_a_bounded_rate() {
        let mut lab = in_a_fleet_of_sixteen();
        // 3,000 sources, one probe each, within 100 ms (not the host's own address).
        let sources: Vec<String> = (0..3001_u32)
            .filter(|&i| i != 1)
            .map(|i| {
                let [_, _, a, b] = i.to_be_bytes();
                format!("198.51.{}.{}", 100 + u32::from(a), b)
            })
            .collect();
        for source in &sources {
            lab.scan(source, 23..=23);
        }
        lab.advance(Duration::from_millis(100));
        lab.engine.tick();
        let sent: usize = told(&mut lab)
            .iter()
            .map(|b| match b {
                Body::Probes { probes } => probes.len(),
                _ => 0,
            })
            .sum();
        assert_eq!(sent, crate::engine::fleet::PROBES_PER_SECOND as usize);
        let others = sources
            .iter()
            .filter(|s| owner(s).as_str() != "web-1")
            .count();
        let info = lab.engine.fleet_info().unwrap();
        assert_eq!(info.probes_sent, 1000);
        assert_eq!(info.probes_dropped, others as u64 - 1000);
    }

    #[test]
    fn the_owner_blocks_a_sweep_and_tells_the_fleet() {
        // Its own probe and seven other hosts' on one port: a sweep.
        let (mut lab, others) = lab_owning(SCANNER, 16);
        for origin in &others[..7] {
            let m = probes_from(&lab, origin, SCANNER, "23/tcp");
            lab.engine.fleet_message(m);
        }
        assert!(!lab.kernel.holds(net(SCANNER)));
        lab.engine.take_effects();
        lab.scan(SCANNER, 23..=23);
        lab.advance(Duration::from_millis(100));
        lab.engine.tick();
        assert!(lab.kernel.holds(net(SCANNER)));
        let out = told(&mut lab);
        assert!(
            out.iter()
                .any(|b| matches!(b, Body::Block { kind, ports, .. }
                if kind == "sweep" && ports == &["23/tcp"])),
            "{out:?}"
        );
        assert_eq!(lab.engine.fleet_info().unwrap().sweeps, 1);
        // why says what it was.
        let Response::Why { block: Some(b), .. } = lab.request(Request::Why { addr: ip(SCANNER) })
        else {
            panic!("not blocked");
        };
        assert_eq!(
            (b.kind.as_str(), b.ports.as_slice()),
            ("sweep", &["23/tcp".to_string()][..])
        );
    }

    #[test]
    fn a_sweep_of_a_never_block_address_or_a_protected_peer_is_not_blocked() {
        let (mut lab, others) = lab_owning(LOCAL, 9);
        lab.engine.take_effects();
        for origin in &others {
            let m = probes_from(&lab, origin, LOCAL, "23/tcp");
            lab.engine.fleet_message(m);
        }
        assert!(lab.kernel.elements().is_empty());
        assert!(lab.says("not blocking 198.51.100.1 for a sweep of 23/tcp across 8 hosts"));

        let peer = "203.0.113.50";
        let (mut lab, others) = lab_owning(peer, 9);
        lab.machine().established = vec![(ip(peer), 22, 50000)];
        lab.advance(EVERY_SECOND);
        lab.engine.tick();
        lab.engine.take_effects();
        for origin in &others {
            let m = probes_from(&lab, origin, peer, "23/tcp");
            lab.engine.fleet_message(m);
        }
        assert!(lab.kernel.elements().is_empty());
        assert!(lab.says("not blocking 203.0.113.50 for a sweep of 23/tcp across 8 hosts"));
    }
}

/// Issue 24, finding 9: a scanner refused by the rate budget, that finished its scan before a
/// token came back, was never blocked. It waits now, `why` says so, and the engine's tick
/// settles it when the budget allows, saying how long it waited.
#[test]
fn issue_24_a_scan_refused_by_the_budget_is_blocked_when_it_comes_back() {
    let mut c = config();
    c.respond.max_new_blocks_per_second = 2;
    let mut lab = Lab::start(c);
    for scanner in ["203.0.113.1", "198.51.100.77", "192.0.2.1"] {
        lab.scan(scanner, 1..=10);
    }
    assert!(lab.kernel.holds(net("203.0.113.1")));
    assert!(lab.kernel.holds(net("198.51.100.77")));
    assert!(!lab.kernel.holds(net("192.0.2.1")));
    assert!(lab.says("waits for the budget"));
    lab.advance(Duration::from_millis(300));
    let Response::Why {
        refused: Some(refused),
        ..
    } = lab.request(Request::Why {
        addr: ip("192.0.2.1"),
    })
    else {
        panic!("why says nothing of the refusal")
    };
    assert!(
        refused
            .line
            .ends_with("waiting for the budget for 0.3s now"),
        "{}",
        refused.line
    );
    // The scanner is gone; a token is back after half a second, at the next tick.
    lab.advance(Duration::from_millis(300));
    lab.engine.tick();
    assert!(lab.kernel.holds(net("192.0.2.1")));
    assert!(lab.says("after waiting 0.6s for the budget"));
}

/// Issue 24: a waiting detection is judged whole again when it is settled: a grace period
/// granted meanwhile (an unblock by hand with `--grace`) keeps it from a block.
#[test]
fn issue_24_a_waiting_detection_meets_the_rules_as_they_stand_when_it_is_settled() {
    let mut c = config();
    c.respond.max_new_blocks_per_second = 1;
    let mut lab = Lab::start(c);
    lab.scan("203.0.113.1", 1..=10);
    lab.scan("192.0.2.1", 1..=10);
    assert!(lab.kernel.holds(net("203.0.113.1")));
    assert!(!lab.kernel.holds(net("192.0.2.1")));
    let answer = lab.request(Request::Unblock {
        net: net("192.0.2.1"),
        grace: Some(60),
        local: true,
    });
    assert!(matches!(answer, Response::NotBlocked { .. }), "{answer:?}");
    lab.advance(Duration::from_secs(2));
    lab.engine.tick();
    assert!(!lab.kernel.holds(net("192.0.2.1")));
    assert!(lab.says("not blocking 192.0.2.1: unblocked by hand"));
    // Settled: it waits no more.
    let Response::Why { refused, .. } = lab.request(Request::Why {
        addr: ip("192.0.2.1"),
    }) else {
        panic!()
    };
    assert!(!refused.unwrap().line.contains("waiting for the budget"));
}
