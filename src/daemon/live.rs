//! The running daemon. **Shell.**
//!
//! One thread, the main loop, owns everything that decides: the pipeline, the responder and the
//! firewall. It reads the capture (which hands over frames at least every 5 ms), and between
//! frames takes the events other threads send it: control requests (the control socket's
//! thread), reload and stop (the signal thread), and "the ruleset lost something" (the nftables
//! watcher). Nothing else holds a lock or a copy of the state.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use ipnet::IpNet;

use super::hook::Hooks;
use super::log::Logger;
use super::notify::notify;
use crate::capture::connect::TrapSockets;
use crate::detect::Detection;
use crate::wire::Proto;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::capture::coalesce::Coalesce;
use crate::capture::raw::RawCapture;
use crate::capture::{Live, LiveCapture, LiveError, LiveSettings};
use crate::config::{self, Config, Loaded};
use crate::control::protocol::{
    BlockInfo, IgnoreInfo, LIST_PAGE, LIST_PORTS, RefusalInfo, Request, Response, StatusInfo,
};
use crate::control::server::Server;
use crate::exit;
use crate::firewall::nft::{NftConfig, NftFirewall};
use crate::firewall::{Action, DryRun, Firewall, FirewallError};
use crate::host;
use crate::host::fib::{Fib, RouteBack};
use crate::ignore::{self, IgnoreList, discover};
use crate::pipeline::Pipeline;
use crate::report::{self, Mode, human, source_text};
use crate::respond::{ActiveBlock, Decision, MAX_BLOCK_FOR, Responder, Why};
use crate::state::{self, State};
use crate::time::{Clock, SteadyClock, SystemClock, Timestamp, WallOffset};
use crate::trust::{Peers, Protect, ReversePath};

/// How often the listening sockets are re-read.
const LISTENERS_EVERY: Duration = Duration::from_secs(1);
/// A detection is checked against the socket table read at most this long ago (read afresh
/// if older), so that a service started a moment ago is never counted as a trap. The bound
/// also caps the reads a flood of spoofed detections can cause at 100 a second.
const LISTENERS_FRESH: Duration = Duration::from_millis(10);
/// Sources whose last refused detection `why` remembers.
const MAX_REFUSALS: usize = 1024;
/// How often the state is written when it changed.
const SAVE_EVERY: Duration = Duration::from_secs(1);
/// How often systemd hears the counters.
const STATUS_EVERY: Duration = Duration::from_secs(10);

/// How much the daemon says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// Blocks, refusals, never-block decisions, errors.
    Normal,
    /// Also sources that keep scanning while blocked, and each state save.
    Verbose,
    /// Also the counters every 10 s.
    Debug,
}

/// What other threads tell the main loop.
enum Event {
    Control(Request, Sender<Response>),
    Reload,
    Stop,
    FirewallChanged,
    HostChanged,
}

/// How other threads reach the main loop: the event, then a byte down a pipe that the main
/// loop polls together with the capture, so that it wakes at once.
#[derive(Clone)]
struct Wake {
    events: Sender<Event>,
    pipe: Arc<OwnedFd>,
}

impl Wake {
    fn send(&self, event: Event) -> bool {
        let sent = self.events.send(event).is_ok();
        // A full pipe already holds a wake-up; nothing else can fail here that matters.
        let _ = nix::unistd::write(self.pipe.as_fd(), &[1]);
        sent
    }
}

/// Frames handled before the main loop looks at its events again.
const FRAMES_PER_TURN: usize = 4096;

/// Everything the main loop owns.
struct Daemon {
    /// The periodic audit's settings.
    auditor: Option<super::audit::Auditor>,
    /// `-L`: the local check is off whatever the configuration says.
    local_check_off: bool,
    loaded: Loaded,
    config_path: Option<PathBuf>,
    verbosity: Verbosity,
    /// The daemon's time: it does not step when the system clock does.
    clock: SteadyClock,
    /// The real-time clock's offset from `clock` when last looked at.
    wall_offset: WallOffset,
    started: Timestamp,
    mode: Mode,
    firewall: Box<dyn Firewall>,
    responder: Responder,
    pipeline: Pipeline,
    hooks: Hooks,
    /// The blocks changed since the state file was last written.
    dirty: bool,
    /// The last write of the state file failed (the warning has been given).
    save_failing: bool,
    refused: u64,
    capture_drops: u64,
    /// Capture-to-kernel latencies of the last blocks, microseconds.
    latencies: std::collections::VecDeque<u64>,
    /// When the socket table was last read.
    listeners_read: Timestamp,
    /// Someone deleted part of our table: restore it when the pace allows.
    heal_pending: bool,
    heal_not_before: Timestamp,
    heal_pace: crate::firewall::RebuildPace,
    /// Restores are being spaced out (said once when it starts).
    heal_fight: bool,
    /// Repeated log lines, folded into summaries.
    fold: report::Fold,
    /// Routes back to the sources of detections, for the reverse-path check.
    fib: Option<Fib>,
    /// The peers of established connections, as last read (once a second).
    peers: Peers,
    /// Detections not blocked, by rule.
    not_blocked: std::collections::BTreeMap<&'static str, u64>,
    /// The last detection not blocked of each of the last [`MAX_REFUSALS`] sources, for `why`.
    refusals: hashlink::LinkedHashMap<std::net::IpAddr, RefusalInfo>,
    logger: Logger,
}

/// Latencies kept for `status`.
const LATENCY_SAMPLES: usize = 1024;

/// What [`never_block`] found.
pub struct NeverBlock {
    /// Every address of every interface, with the interface's name.
    pub interfaces: Vec<(String, IpAddr)>,
    /// The never-block list.
    pub list: IgnoreList,
    /// Bad lines of the ignore file, for the caller to report.
    pub warnings: Vec<String>,
}

/// The host's addresses and the never-block list: discovered (interfaces, gateways,
/// nameservers), configured, and from the ignore file. A failure is printed, and the error is
/// the exit code.
pub fn never_block(config: &Config) -> Result<NeverBlock, ExitCode> {
    let interfaces = host::interface_addresses().map_err(|e| {
        exit::report("sentryd", &e);
        exit::code(exit::FAILURE)
    })?;
    let discovered = discover::discover(&discover::read_host_state(interfaces.clone()));
    let (ignore, warnings) = ignore::load(&config.never_block, discovered).map_err(|e| {
        exit::report("sentryd", &e);
        exit::code(exit::CONFIG)
    })?;
    Ok(NeverBlock {
        interfaces,
        list: ignore,
        warnings,
    })
}

/// [`never_block`], its warnings logged.
fn never_block_logged(config: &Config) -> Result<(Vec<(String, IpAddr)>, IgnoreList), ExitCode> {
    let found = never_block(config)?;
    for w in &found.warnings {
        tracing::warn!("{w}");
    }
    Ok((found.interfaces, found.list))
}

fn firewall_for(config: &Config) -> Result<(Mode, Box<dyn Firewall>), FirewallError> {
    if config.respond.dry_run {
        return Ok((Mode::DryRun, Box::new(DryRun)));
    }
    Ok(match config.backend {
        crate::config::Backend::Nft => (
            Mode::Enforcing,
            Box::new(NftFirewall::new(config.firewall.clone())?),
        ),
        crate::config::Backend::Route => (
            Mode::Enforcing,
            Box::new(crate::firewall::route::RouteFirewall::new()?),
        ),
    })
}

fn firewall_failed(e: &FirewallError) -> ExitCode {
    exit::report("sentryd", e);
    match e {
        FirewallError::Permission | FirewallError::NotPermitted(_) => exit::code(exit::NOPERM),
        FirewallError::Attach(_) => exit::code(exit::CONFIG),
        _ => exit::code(exit::FAILURE),
    }
}

/// Runs until SIGTERM or SIGINT; returns the exit code.
pub fn run(
    loaded: Loaded,
    config_path: Option<PathBuf>,
    verbosity: Verbosity,
    local_check_off: bool,
) -> ExitCode {
    let clock = SteadyClock::new();
    let config = loaded.config.clone();
    let logger = super::log::install(
        config.log.target,
        config.log.format,
        if verbosity >= Verbosity::Debug {
            tracing::Level::DEBUG
        } else {
            tracing::Level::INFO
        },
    );
    // Under the unit, CAP_NET_ADMIN and CAP_NET_RAW come as ambient (and inheritable)
    // capabilities, which every program sentryd starts would inherit. They are sentryd's own:
    // the on-block program runs with the user's rights only.
    for set in [caps::CapSet::Ambient, caps::CapSet::Inheritable] {
        if let Err(e) = caps::clear(None, set) {
            tracing::debug!("cannot clear the {set:?} capabilities: {e}");
        }
    }
    let (interfaces, ignore) = match never_block_logged(&config) {
        Ok(found) => found,
        Err(code) => return code,
    };
    let (mode, mut firewall) = match firewall_for(&config) {
        Ok(f) => f,
        Err(e) => return firewall_failed(&e),
    };
    let allow: Vec<IpNet> = ignore.entries().iter().map(|e| e.net).collect();
    if let Err(e) = firewall.ensure_ready(&allow) {
        return firewall_failed(&e);
    }

    let mut traps = config.traps.build(host::local_port_range());
    match host::read_listeners() {
        Ok(listeners) => traps.set_listeners(listeners),
        Err(e) => {
            exit::report("sentryd", &e);
            return exit::code(exit::FAILURE);
        }
    }
    let seed = RandomState::new().hash_one(std::process::id());
    let pipeline = Pipeline::new(
        config.detector.clone(),
        traps,
        ignore,
        interfaces.iter().map(|(_, a)| *a),
        seed,
    );
    let auditor = match super::audit::Auditor::spawn(
        config.audit.clone(),
        crate::audit::store::default_path(&config.daemon.state_dir),
    ) {
        Ok(a) => Some(a),
        Err(e) => {
            tracing::warn!("cannot start the audit: {e}");
            None
        }
    };
    let mut daemon = Daemon {
        auditor,
        verbosity,
        local_check_off,
        clock,
        started: clock.now(),
        mode,
        firewall,
        responder: Responder::new(&config.respond),
        pipeline,
        hooks: Hooks::new(
            config.respond.on_block.clone(),
            config.respond.on_block_timeout,
        ),
        wall_offset: WallOffset::default(),
        dirty: false,
        save_failing: false,
        refused: 0,
        capture_drops: 0,
        latencies: std::collections::VecDeque::with_capacity(LATENCY_SAMPLES),
        listeners_read: clock.now(),
        heal_pending: false,
        heal_not_before: Timestamp::ZERO,
        heal_pace: crate::firewall::RebuildPace::default(),
        heal_fight: false,
        fold: report::Fold::default(),
        fib: match Fib::open() {
            Ok(fib) => Some(fib),
            Err(e) => {
                tracing::warn!("cannot ask the kernel for routes ({e}); no reverse-path check");
                None
            }
        },
        peers: Peers::new(config.respond.protect_for),
        not_blocked: std::collections::BTreeMap::new(),
        refusals: hashlink::LinkedHashMap::new(),
        logger,
        loaded,
        config_path,
    };
    daemon
        .pipeline
        .set_local_check(config.local_check && !local_check_off);
    daemon.reconcile();
    daemon.read_peers();

    let connect_mode = config.capture.method == crate::config::Method::Connect;
    let traps_bound = if connect_mode {
        let traps = daemon.pipeline.traps();
        let (tcp, udp) = (traps.bound_ports(Proto::Tcp), traps.bound_ports(Proto::Udp));
        match TrapSockets::open(&tcp, &udp, config.capture.banner.as_deref()) {
            Ok((sockets, warnings)) => {
                for w in warnings {
                    tracing::warn!("{w}");
                }
                Some(sockets)
            }
            Err(e) => {
                exit::report("sentryd", &e);
                return exit::code(if e.is_permission() {
                    exit::NOPERM
                } else {
                    exit::FAILURE
                });
            }
        }
    } else {
        None
    };
    let mut captures: Vec<Live> = Vec::new();
    let opened: Vec<Result<Live, LiveError>> = match config.capture.method {
        crate::config::Method::Connect => Vec::new(),
        crate::config::Method::Raw => {
            vec![RawCapture::open(&config.capture.interfaces).map(Live::Raw)]
        }
        crate::config::Method::Pcap => LiveSettings::for_config(&config.capture)
            .iter()
            .map(|settings| LiveCapture::open(settings).map(Live::Pcap))
            .collect(),
    };
    for result in opened {
        match result {
            Ok(c) => captures.push(c),
            Err(e) if e.is_permission() => {
                exit::report("sentryd", &e);
                eprintln!("hint: run as root, or with CAP_NET_RAW and CAP_NET_ADMIN");
                return exit::code(exit::NOPERM);
            }
            Err(e) => {
                exit::report("sentryd", &e);
                return exit::code(exit::FAILURE);
            }
        }
    }
    let socket_path = config.daemon.socket.clone();
    let server = match Server::bind(&socket_path) {
        Ok(s) => s,
        Err(e) => {
            exit::report("sentryd", &e);
            return exit::code(exit::FAILURE);
        }
    };
    let (wake_read, wake_write) =
        match nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC) {
            Ok(pipe) => pipe,
            Err(e) => {
                exit::report("sentryd", &e);
                return exit::code(exit::FAILURE);
            }
        };
    let (events_tx, events) = mpsc::channel::<Event>();
    let wake = Wake {
        events: events_tx,
        pipe: Arc::new(wake_write),
    };
    let control = wake.clone();
    server.spawn(move |request, reply| control.send(Event::Control(request, reply)));
    if let Err(e) = spawn_signals(wake.clone()) {
        exit::report("sentryd", &e);
        return exit::code(exit::FAILURE);
    }
    daemon.watch_firewall(&wake);
    let host_wake = wake.clone();
    if let Err(e) = host::watch(Box::new(move || {
        host_wake.send(Event::HostChanged);
    })) {
        tracing::warn!(
            "cannot follow interface and address changes ({e}); the \
             never-block list is rebuilt on reload only"
        );
    }

    let watching = match &traps_bound {
        Some(sockets) => format!("{} trap ports (connect mode)", sockets.len()),
        None => captures
            .iter()
            .map(Live::device)
            .collect::<Vec<_>>()
            .join(", "),
    };
    tracing::info!(
        "watching {watching} ({} local addresses, {} never-block entries, {} blocks restored; \
         configuration: {}; control socket {}); {}",
        interfaces.len(),
        daemon.pipeline.ignore().entries().len(),
        daemon.responder.active_count(),
        daemon.loaded.origin,
        socket_path.display(),
        match (mode, config.backend) {
            (Mode::Enforcing, crate::config::Backend::Nft) => "blocking in nftables",
            (Mode::Enforcing, crate::config::Backend::Route) => "blocking with blackhole routes",
            (Mode::DryRun, _) => "dry run: nothing is blocked",
        }
    );
    notify("READY=1");

    let now = clock.now();
    let mut next_listeners = now.saturating_add(LISTENERS_EVERY);
    let mut next_save = now.saturating_add(SAVE_EVERY);
    let mut next_status = now;
    let mut ready_traps: Vec<usize> = Vec::new();
    let mut arrivals = Vec::new();
    // Captures that wake the loop for every frame (immediate pcap, the raw socket) pause
    // briefly between turns under a flood; batched pcap needs no help.
    let per_frame = match config.capture.method {
        crate::config::Method::Raw => true,
        crate::config::Method::Pcap => config.capture.immediate,
        crate::config::Method::Connect => false,
    };
    let mut coalesce = per_frame.then(|| Coalesce::new(now));
    loop {
        if let Some(sockets) = &traps_bound {
            arrivals.clear();
            sockets.take(ready_traps.drain(..), &mut arrivals);
            for a in &arrivals {
                let at = clock.now();
                if let Some(d) = daemon
                    .pipeline
                    .connection(at, a.src, a.dst, a.proto, a.port)
                {
                    // The trap ports are the daemon's own sockets: no second look at the
                    // socket table, which lists them as listening.
                    daemon.on_detection(&d);
                }
            }
        }
        // Capture timestamps come from the real-time clock, which may have been stepped.
        let offset = daemon.wall_offset();
        let mut frames = 0;
        for capture in &mut captures {
            let link = capture.link();
            for _ in 0..FRAMES_PER_TURN {
                match capture.next_frame() {
                    Ok(Some(frame)) => {
                        frames += 1;
                        let at = offset.from_wall(frame.at);
                        let packet = crate::wire::parse(link, frame.data)
                            .map(|p| p.seen(frame.direction, frame.ifindex));
                        if let Some(d) = daemon.pipeline.process(at, packet) {
                            if let Some(d) = daemon.confirm(d) {
                                daemon.on_detection(&d);
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::error!("{}", exit::chain(&e));
                        daemon.save();
                        return exit::code(exit::FAILURE);
                    }
                }
            }
        }
        let pause = coalesce.as_mut().and_then(|c| c.turn(clock.now(), frames));
        let mut drained = [0u8; 64];
        while nix::unistd::read(wake_read.as_fd(), &mut drained).is_ok_and(|n| n > 0) {}
        if daemon.on_events(&events) {
            notify("STOPPING=1");
            daemon.save();
            let _ = std::fs::remove_file(&socket_path);
            tracing::info!(
                "stopping; {} blocks stay in the kernel until they expire",
                daemon.responder.active_count()
            );
            return ExitCode::SUCCESS;
        }
        let next_heal = daemon.heal_if_due();
        let now = clock.now();
        if now >= next_listeners {
            next_listeners = now.saturating_add(LISTENERS_EVERY);
            for line in daemon.fold.summaries(now) {
                daemon.log(&line);
            }
            if !daemon.firewall.expires_by_itself() {
                daemon.sync_blocks();
            }
            match host::read_listeners() {
                Ok(listeners) => {
                    daemon.pipeline.set_listeners(listeners);
                    daemon.listeners_read = now;
                }
                Err(e) => daemon.warn(&format!("cannot refresh listening sockets: {e}")),
            }
            daemon.read_peers();
        }
        if now >= next_save {
            next_save = now.saturating_add(SAVE_EVERY);
            if daemon.dirty {
                daemon.save();
            }
        }
        if now >= next_status {
            next_status = now.saturating_add(STATUS_EVERY);
            daemon.capture_drops = captures
                .iter_mut()
                .map(|c| {
                    let (dropped, if_dropped) = c.drops();
                    u64::from(dropped) + u64::from(if_dropped)
                })
                .sum();
            let s = daemon.status();
            notify(&format!(
                "STATUS={} packets, {} probes, {} detections, {} blocks active, {} capture drops",
                s.packets, s.probes, s.detections, s.blocks_active, s.capture_drops
            ));
            tracing::debug!("counters: {:?}", daemon.pipeline.counters());
        }
        // Sleep until frames are waiting, another thread has something, or the next chore.
        let next = next_listeners
            .min(next_save)
            .min(next_status)
            .min(next_heal.unwrap_or(next_status));
        let wait = next
            .saturating_since(clock.now())
            .min(Duration::from_secs(1));
        let first_trap = captures.len() + 1;
        let mut fds: Vec<PollFd<'_>> = captures
            .iter()
            .map(|c| PollFd::new(c.fd(), PollFlags::POLLIN))
            .chain([PollFd::new(wake_read.as_fd(), PollFlags::POLLIN)])
            .chain(
                traps_bound
                    .iter()
                    .flat_map(TrapSockets::fds)
                    .map(|fd| PollFd::new(fd, PollFlags::POLLIN)),
            )
            .collect();
        let timeout = PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX);
        if let Some(pause) = pause {
            std::thread::sleep(pause);
        }
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                exit::report("sentryd", &e);
                daemon.save();
                return exit::code(exit::FAILURE);
            }
        }
        ready_traps.extend(
            fds[first_trap..]
                .iter()
                .enumerate()
                .filter(|(_, fd)| fd.revents().is_some_and(|r| r.contains(PollFlags::POLLIN)))
                .map(|(i, _)| i),
        );
    }
}

/// The per-mille-th value of `samples` (0 when there are none).
fn percentile(samples: &std::collections::VecDeque<u64>, per_mille: usize) -> u64 {
    let mut sorted: Vec<u64> = samples.iter().copied().collect();
    sorted.sort_unstable();
    sorted
        .get(sorted.len().saturating_sub(1) * per_mille / 1000)
        .copied()
        .unwrap_or(0)
}

fn spawn_signals(wake: Wake) -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGHUP, SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                let event = if signal == SIGHUP {
                    Event::Reload
                } else {
                    Event::Stop
                };
                if !wake.send(event) {
                    return;
                }
            }
        })?;
    Ok(())
}

impl Daemon {
    fn config(&self) -> &Config {
        &self.loaded.config
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// How far the system clock is from the daemon's time; says so once when it has been
    /// stepped (by a second or more) since the last look.
    fn wall_offset(&mut self) -> WallOffset {
        let offset = self.clock.offset();
        let step = offset
            .as_micros()
            .saturating_sub(self.wall_offset.as_micros());
        if step.unsigned_abs() >= 1_000_000 {
            self.log(&format!(
                "the system clock was stepped {}: blocks and detection windows keep their \
                 length; times shown and saved follow the system clock",
                WallOffset::from_micros(step)
            ));
        }
        self.wall_offset = offset;
        offset
    }

    fn log(&self, line: &str) {
        tracing::info!("{line}");
    }

    fn warn(&self, line: &str) {
        tracing::warn!("{line}");
    }

    /// Takes every pending event; returns whether to stop.
    fn on_events(&mut self, events: &Receiver<Event>) -> bool {
        let mut heal = false;
        let mut host_changed = false;
        while let Ok(event) = events.try_recv() {
            match event {
                Event::Control(request, reply) => {
                    let response = self.on_request(request);
                    let _ = reply.send(response);
                }
                Event::Stop => return true,
                Event::Reload => {
                    notify("RELOADING=1");
                    match self.reload() {
                        Ok(origin) => {
                            self.log(&format!("reloaded the configuration from {origin}"))
                        }
                        Err(why) => self.warn(&format!(
                            "reload refused, still running on the previous configuration: {why}"
                        )),
                    }
                    notify("READY=1");
                }
                Event::FirewallChanged => heal = true,
                Event::HostChanged => host_changed = true,
            }
        }
        if host_changed {
            self.refresh_host();
        }
        self.heal_pending |= heal;
        false
    }

    /// Restores the table when someone deleted part of it and the pace allows; returns when
    /// the next restore may run, if one is pending.
    fn heal_if_due(&mut self) -> Option<Timestamp> {
        if !self.heal_pending {
            return None;
        }
        if self.now() < self.heal_not_before {
            return Some(self.heal_not_before);
        }
        // Let the change that woke us finish (an `nft -f` is one transaction, but a script
        // may run several commands), then restore once.
        std::thread::sleep(Duration::from_millis(50));
        self.heal_pending = false;
        self.heal();
        let now = self.now();
        let wait = self.heal_pace.rebuilt(now);
        let fighting = !wait.is_zero();
        if fighting && !std::mem::replace(&mut self.heal_fight, fighting) {
            self.warn(&format!(
                "the table keeps losing parts (another program, or another sentryd, changing \
                 it?): restoring it at most every {} while this goes on",
                human(wait)
            ));
        }
        self.heal_fight = fighting;
        self.heal_not_before = now.saturating_add(wait);
        None
    }

    fn watch_firewall(&self, wake: &Wake) {
        let wake = wake.clone();
        let changed = Box::new(move || {
            wake.send(Event::FirewallChanged);
        });
        if let Err(e) = self.firewall.watch(changed) {
            tracing::warn!(
                "cannot watch nftables for changes ({e}); a ruleset reload \
                 that removes the table is only noticed at the next block"
            );
        }
    }

    fn allow_list(&self) -> Vec<IpNet> {
        self.pipeline
            .ignore()
            .entries()
            .iter()
            .map(|e| e.net)
            .collect()
    }

    /// Checks a detection against the socket table, read afresh unless it was read a moment
    /// ago, before it is acted on.
    fn confirm(&mut self, d: Detection) -> Option<Detection> {
        let now = self.now();
        let mut fresh = None;
        if now.saturating_since(self.listeners_read) > LISTENERS_FRESH {
            match host::read_listeners() {
                Ok(listeners) => {
                    self.listeners_read = now;
                    fresh = Some(listeners);
                }
                Err(e) => self.warn(&format!("cannot re-read listening sockets: {e}")),
            }
        }
        let summary = (self.verbosity >= Verbosity::Verbose)
            .then(|| format!("{}: {}", d.source, d.summary()));
        let confirmed = self.pipeline.confirm(d, fresh);
        if let (None, Some(summary)) = (&confirmed, summary) {
            self.log(&format!(
                "withdrawn: {summary}: services have started on some of its ports"
            ));
        }
        confirmed
    }

    fn on_detection(&mut self, d: &Detection) {
        let now = self.now();
        let refused = match self.reverse_path(d) {
            Some(refused) => Some(refused),
            None => self.protected(d),
        };
        let decision = match refused {
            Some(refused) => refused,
            None => self.responder.on_detection(d, self.pipeline.ignore(), now),
        };
        let line = report::line(d, &decision, self.mode);
        let quiet = matches!(decision, Decision::AlreadyBlocked { .. })
            && self.verbosity < Verbosity::Verbose;
        if matches!(decision, Decision::OverBudget { .. }) {
            self.refused += 1;
        }
        if !decision.settles(d) {
            self.pipeline.reconsider(d);
        }
        if let Some(rule) = decision.refusal_rule() {
            *self.not_blocked.entry(rule).or_insert(0) += 1;
            if self.refusals.len() >= MAX_REFUSALS {
                self.refusals.pop_front();
            }
            self.refusals.insert(
                d.addr,
                RefusalInfo {
                    at: SystemClock.now().to_string(),
                    rule: rule.into(),
                    line: line.clone(),
                },
            );
        }
        let actions = decision.actions();
        if actions.is_empty() {
            // A flood of forged packets makes these by the thousand: folded into a summary.
            let said = report::Folded::of(&decision).is_none_or(|kind| self.fold.offer(kind, now));
            if !quiet && said {
                self.log(&line);
            }
            return;
        }
        match self.apply(&actions) {
            Ok(()) => {
                if let Decision::Block { net, ttl, .. } = &decision {
                    let latency = self.now().saturating_since(d.last_seen);
                    if self.latencies.len() == LATENCY_SAMPLES {
                        self.latencies.pop_front();
                    }
                    self.latencies
                        .push_back(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
                    self.hooks.on_block(d, *net, *ttl);
                    self.write_history(d);
                }
                self.dirty = true;
                self.log(&line);
            }
            Err(e) => {
                // A block is recorded only once the kernel has it.
                self.forget_blocks(&actions);
                self.warn(&format!("could not carry out \"{line}\": {e}"));
            }
        }
    }

    /// The reverse-path check of a detection's source (`[respond] reverse-path`): a refusal
    /// when the kernel would not route back to it by the interface its probe came in on (or at
    /// all). Never-block sources are left to the responder, which says so; a lookup that fails
    /// is said and lets the detection through (the kernel's own rp_filter still stands).
    fn reverse_path(&mut self, d: &Detection) -> Option<Decision> {
        let name = |index: u32| {
            nix::net::if_::if_indextoname(index)
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|_| format!("interface {index}"))
        };
        let mode = match self.config().respond.reverse_path {
            ReversePath::Kernel if d.addr.is_ipv4() => {
                host::kernel_reverse_path(d.arrived_on.map(name).as_deref())
            }
            ReversePath::Kernel => ReversePath::Strict,
            mode => mode,
        };
        if mode == ReversePath::Off || self.pipeline.ignore().contains(d.addr) {
            return None;
        }
        let fib = self.fib.as_mut()?;
        let back = match fib.route_back(d.addr) {
            Ok(back) => back,
            Err(e) => {
                if self
                    .fold
                    .offer(report::Folded::ReversePath, self.clock.now())
                {
                    self.warn(&format!(
                        "cannot look up the route back to {}: {e}; not checking it",
                        d.addr
                    ));
                }
                return None;
            }
        };
        if mode.passes(d.arrived_on, back) {
            return None;
        }
        Some(Decision::ReversePath {
            addr: d.addr,
            came_in: d.arrived_on.map(name),
            route: match back {
                RouteBack::Via(oif) => Some(name(oif)),
                RouteBack::Local => Some("this host".into()),
                RouteBack::None => None,
            },
        })
    }

    /// The protection of peers (`[respond] protect`): a refusal when this host was in
    /// conversation, before the detection's first probe, with an address the block would cover
    /// ([`crate::respond::target`]): a connection established at the last reading of the socket
    /// table ([`Daemon::read_peers`], once a second), or one of a minute or more that ended
    /// within `protect-for`. A connection the scanner opened during its scan protects nothing.
    /// Nothing is read here: on this kernel a dump of established sockets walks the whole
    /// connection hash table, about 2 ms on this project's machine kind, too slow for the way
    /// from a probe to its block.
    fn protected(&self, d: &Detection) -> Option<Decision> {
        if self.config().respond.protect == Protect::None || self.pipeline.ignore().contains(d.addr)
        {
            return None;
        }
        let c = self.peers.protecting(
            crate::respond::target(d, self.pipeline.ignore()),
            d.first_seen,
        )?;
        Some(Decision::Protected {
            addr: d.addr,
            peer: c.peer,
            port: c.port,
            since: c.since,
            ended: c.ended,
        })
    }

    /// Reads the established connections afresh (with `protect = "established"`). A failed
    /// read is said once per streak, and counts as a reading with no connection: those seen
    /// before end, and are remembered by the usual rule.
    fn read_peers(&mut self) {
        let now = self.now();
        if self.config().respond.protect == Protect::None {
            self.peers = Peers::new(self.config().respond.protect_for);
            return;
        }
        match host::established_sockets() {
            Ok(sockets) => {
                // In connect mode the trap ports are the daemon's own sockets: a connection
                // waiting there to be accepted is a probe, not a conversation.
                let traps = if self.config().capture.method == crate::config::Method::Connect {
                    self.pipeline.traps().bound_ports(Proto::Tcp)
                } else {
                    Vec::new()
                };
                self.peers.observe(
                    now,
                    sockets
                        .iter()
                        .filter(|s| !traps.contains(&s.port))
                        .map(|s| (s.peer, s.port, s.peer_port)),
                );
            }
            Err(e) => {
                if !self.peers.is_empty() || self.fold.offer(report::Folded::Protected, now) {
                    self.warn(&format!("cannot read established connections: {e}"));
                }
                self.peers.observe(now, []);
            }
        }
    }

    /// Forgets the blocks among `actions`: the firewall did not take them.
    fn forget_blocks(&mut self, actions: &[Action]) {
        for action in actions {
            if let Action::Block { net, .. } = action {
                self.responder.forget(*net);
                self.dirty = true;
            }
        }
    }

    /// For a firewall whose blocks do not end by themselves (routes): lifts those that have
    /// ended, and puts back those still due that someone removed. Once a second.
    fn sync_blocks(&mut self) {
        let now = self.now();
        let present: std::collections::HashSet<IpNet> = match self.firewall.list() {
            Ok(listed) => listed.into_iter().map(|b| b.net).collect(),
            Err(e) => {
                self.warn(&format!("cannot list the blocks in force: {e}"));
                return;
            }
        };
        let due: std::collections::HashMap<IpNet, Duration> = self
            .responder
            .active(now)
            .map(|b| (b.net, b.until.saturating_since(now)))
            .collect();
        let mut actions: Vec<Action> = present
            .iter()
            .filter(|net| !due.contains_key(net))
            .map(|&net| Action::Unblock { net })
            .collect();
        let lifted = actions.len();
        actions.extend(
            due.iter()
                .filter(|(net, _)| !present.contains(net))
                .map(|(&net, &ttl)| Action::Block { net, ttl }),
        );
        if actions.is_empty() {
            return;
        }
        match self.apply(&actions) {
            Ok(()) => {
                if actions.len() > lifted {
                    self.log(&format!(
                        "put back {} blocks still due that were removed",
                        actions.len() - lifted
                    ));
                }
                if lifted > 0 && self.verbosity >= Verbosity::Verbose {
                    self.log(&format!("lifted {lifted} blocks that ended"));
                }
            }
            Err(e) => self.warn(&format!("could not bring the blocks up to date: {e}")),
        }
    }

    /// Appends the block of `d` to the PortSentry-format history file, if one is configured
    /// (opened anew each time, so that log rotation needs no signal).
    fn write_history(&self, d: &Detection) {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let Some(path) = &self.config().respond.history_file else {
            return;
        };
        let Some(&(proto, port)) = d.ports.first() else {
            return;
        };
        // When it happened, as the system clock reads it (as PortSentry wrote it).
        let line = report::history_line(SystemClock.now(), d.addr, proto, port);
        // Never through a link: the file's directory may be another user's.
        let written = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o640)
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .open(path)
            .and_then(|mut f| writeln!(f, "{line}"));
        if let Err(e) = written {
            self.warn(&format!(
                "cannot write the history file {}: {e}",
                path.display()
            ));
        }
    }

    /// Brings the kernel and the responder into agreement at start: blocks from the state file
    /// that are still due, and blocks found in the kernel, are both kept; those missing from
    /// the kernel are put back with the time they have left. The state file is checked first
    /// (size, durations, addresses), and no block that would block a never-block address is
    /// kept, wherever it came from.
    fn reconcile(&mut self) {
        let now = self.now();
        let dir = self.config().daemon.state_dir.clone();
        let max_blocks = self.config().respond.max_blocks;
        match state::load(&dir, state::size_limit(max_blocks)) {
            Ok(saved) => {
                let wall = self.clock.offset();
                let (blocks, warnings) =
                    state::restorable(saved.active_blocks(wall), now, max_blocks);
                for w in warnings {
                    self.warn(&w);
                }
                for block in blocks {
                    self.responder.restore(block, now);
                }
                for (net, count, last) in saved.offenders(wall) {
                    self.responder.restore_offender(net, count, last, now);
                }
            }
            Err(e) => tracing::warn!("{e}; starting without saved blocks"),
        }
        let in_kernel = match self.firewall.list() {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!("cannot read the blocks in the kernel: {e}");
                Vec::new()
            }
        };
        for b in &in_kernel {
            if self.responder.block_of(b.net, now).is_none() {
                if let Some(left) = b.remaining {
                    self.responder.restore(
                        ActiveBlock {
                            net: b.net,
                            since: now,
                            until: now.saturating_add(left),
                            offence: 0,
                            why: Why {
                                kind: "unknown".into(),
                                ports: Vec::new(),
                            },
                        },
                        now,
                    );
                }
            }
        }
        let lifted = self.lift_never_block();
        let present: std::collections::HashSet<IpNet> = in_kernel
            .iter()
            .map(|k| k.net)
            .filter(|net| !lifted.contains(net))
            .collect();
        let missing: Vec<Action> = self
            .responder
            .due(now)
            .filter(|a| !present.contains(&a.net()))
            .collect();
        if !missing.is_empty() {
            match self.apply(&missing) {
                Ok(()) => self.log(&format!(
                    "put back {} blocks that were still due",
                    missing.len()
                )),
                Err(e) => self.warn(&format!("could not put back the blocks still due: {e}")),
            }
        }
        self.dirty = true;
    }

    /// Lifts, in the responder and the firewall, every block that would block an address of
    /// the never-block list; returns them.
    fn lift_never_block(&mut self) -> Vec<IpNet> {
        let lifted = self.responder.lift_never_block(self.pipeline.ignore());
        if lifted.is_empty() {
            return Vec::new();
        }
        for (net, reason) in &lifted {
            self.warn(&format!(
                "lifting the block of {}: it overlaps the never-block list ({reason})",
                source_text(net)
            ));
        }
        let nets: Vec<IpNet> = lifted.into_iter().map(|(net, _)| net).collect();
        let actions: Vec<Action> = nets.iter().map(|&net| Action::Unblock { net }).collect();
        if let Err(e) = self.apply(&actions) {
            self.warn(&format!(
                "could not lift blocks of never-block addresses: {e}"
            ));
        }
        self.dirty = true;
        nets
    }

    /// Hands `actions` to the firewall. A block the kernel refused is forgotten (it is not in
    /// force, and putting it back later would only fail again), each refusal said with why.
    fn apply(&mut self, actions: &[Action]) -> Result<(), FirewallError> {
        let result = self.firewall.apply(actions);
        if let Err(FirewallError::Refused { refused, .. }) = &result {
            for r in refused {
                if let Action::Block { net, .. } = r.action {
                    self.responder.forget(net);
                    self.dirty = true;
                }
                if self.fold.offer(report::Folded::Refused, self.clock.now()) {
                    self.warn(&format!("the kernel refused to {r}"));
                }
            }
        }
        result
    }

    /// Interfaces, addresses, routes or resolv.conf changed: rebuild the never-block list and the
    /// set of local addresses, and load the list into the allow sets.
    fn refresh_host(&mut self) {
        // Routes may have changed: the routes back are asked again.
        if let Some(fib) = &mut self.fib {
            fib.forget();
        }
        let Ok((interfaces, ignore)) = never_block_logged(self.config()) else {
            self.log(
                "could not rebuild the never-block list after a host change; keeping the old one",
            );
            return;
        };
        let before = self.pipeline.ignore().entries().to_vec();
        if before == ignore.entries() {
            return;
        }
        let allow: Vec<IpNet> = ignore.entries().iter().map(|e| e.net).collect();
        let entries = ignore.entries().len();
        self.pipeline
            .set_host(interfaces.iter().map(|(_, a)| *a), ignore);
        match self.firewall.ensure_ready(&allow) {
            Ok(()) => self.log(&format!(
                "the host's addresses, routes or nameservers changed: {} local addresses, \
                 {entries} never-block entries",
                interfaces.len()
            )),
            Err(e) => self.warn(&format!("could not load the new never-block list: {e}")),
        }
        self.lift_never_block();
    }

    /// The ruleset lost something: rebuild it and put every block still due back.
    fn heal(&mut self) {
        let allow = self.allow_list();
        if let Err(e) = self.firewall.ensure_ready(&allow) {
            self.warn(&format!("could not restore the firewall: {e}"));
            return;
        }
        let due: Vec<Action> = self.responder.due(self.now()).collect();
        match self.apply(&due) {
            Ok(()) => self.log(&format!(
                "the ruleset changed under us: restored the table and {} blocks still due",
                due.len()
            )),
            Err(e) => self.warn(&format!("could not restore the blocks still due: {e}")),
        }
    }

    fn save(&mut self) {
        let now = self.now();
        let state = State::new(
            self.responder.active(now),
            self.responder.offenders(),
            self.clock.offset(),
        );
        match state::save(&self.config().daemon.state_dir, &state) {
            Ok(()) => {
                self.dirty = false;
                if std::mem::take(&mut self.save_failing) {
                    self.log(&format!(
                        "saved the state again ({} blocks)",
                        state.blocks.len()
                    ));
                } else if self.verbosity >= Verbosity::Verbose {
                    self.log(&format!("saved {} blocks", state.blocks.len()));
                }
            }
            // Said once per failure streak. The state stays dirty, so the write is tried again
            // every SAVE_EVERY until it works; the firewall keeps working regardless.
            Err(e) => {
                if !std::mem::replace(&mut self.save_failing, true) {
                    self.warn(&format!(
                        "could not save the state (blocks still work; trying again every {} s): {}",
                        SAVE_EVERY.as_secs(),
                        exit::chain(&e)
                    ));
                }
            }
        }
    }

    /// Loads the configuration again; on any problem keeps the old one and says why.
    fn reload(&mut self) -> Result<String, String> {
        let loaded = config::load(self.config_path.as_deref())
            .map_err(|e| exit::chain(&e).replace('\n', "; "))?;
        for w in &loaded.warnings {
            tracing::warn!("{w}");
        }
        let new = loaded.config.clone();
        let (interfaces, ignore) = never_block_logged(&new)
            .map_err(|_| "the never-block list could not be built (see above)".to_string())?;
        // A new firewall only if its settings changed; it must be ready before anything moves.
        let firewall_changed = new.firewall != self.config().firewall
            || new.backend != self.config().backend
            || new.respond.dry_run != self.config().respond.dry_run;
        let allow: Vec<IpNet> = ignore.entries().iter().map(|e| e.net).collect();
        if firewall_changed {
            let (mode, mut firewall) = firewall_for(&new).map_err(|e| exit::chain(&e))?;
            firewall.ensure_ready(&allow).map_err(|e| exit::chain(&e))?;
            let due: Vec<Action> = self.responder.due(self.now()).collect();
            firewall.apply(&due).map_err(|e| exit::chain(&e))?;
            self.firewall = firewall;
            self.mode = mode;
        } else {
            self.firewall
                .ensure_ready(&allow)
                .map_err(|e| exit::chain(&e))?;
        }
        let mut traps = new.traps.build(host::local_port_range());
        if let Ok(listeners) = host::read_listeners() {
            traps.set_listeners(listeners);
        }
        self.pipeline.reconfigure(
            new.detector.clone(),
            traps,
            ignore,
            interfaces.iter().map(|(_, a)| *a),
        );
        self.pipeline
            .set_local_check(new.local_check && !self.local_check_off);
        self.responder.reconfigure(&new.respond);
        let now = self.now();
        self.peers.set_protect_for(new.respond.protect_for, now);
        self.lift_never_block();
        self.logger.reconfigure(new.log.target, new.log.format);
        if let Some(auditor) = &self.auditor {
            auditor.reconfigure(new.audit.clone());
        }
        self.hooks = Hooks::new(new.respond.on_block.clone(), new.respond.on_block_timeout);
        let origin = loaded.origin.to_string();
        self.loaded = loaded;
        Ok(origin)
    }

    fn status(&self) -> StatusInfo {
        let c = self.pipeline.counters();
        StatusInfo {
            mode: match self.mode {
                Mode::Enforcing => "enforcing".into(),
                Mode::DryRun => "dry-run".into(),
            },
            firewall: match self.config().firewall {
                NftConfig::Own { .. } => "own".into(),
                NftConfig::Attach { .. } => "attach".into(),
            },
            uptime: self.now().saturating_since(self.started).as_secs(),
            packets: c.frames,
            probes: c.probes,
            detections: c.detections,
            blocks_active: self.responder.active_count(),
            max_blocks: self.config().respond.max_blocks,
            refused: self.refused,
            capture_drops: self.capture_drops,
            block_latency_p50_us: percentile(&self.latencies, 500),
            block_latency_p99_us: percentile(&self.latencies, 990),
            block_latency_samples: self.latencies.len(),
            config: self.loaded.origin.to_string(),
            not_blocked: self
                .not_blocked
                .iter()
                .map(|(rule, n)| ((*rule).to_string(), *n))
                .chain((c.unroutable > 0).then(|| ("unroutable-source".into(), c.unroutable)))
                .chain((c.bad_checksum > 0).then(|| ("bad-checksum".into(), c.bad_checksum)))
                .collect(),
            protected_peers: self.peers.len(),
        }
    }

    fn block_info(&self, b: &ActiveBlock, now: Timestamp) -> BlockInfo {
        BlockInfo {
            net: b.net,
            kind: b.why.kind.clone(),
            // A block's ports, like a page of blocks, are capped so that an answer always fits
            // the protocol's 64 KiB.
            ports: b.why.port_labels().into_iter().take(LIST_PORTS).collect(),
            blocked_at: self.clock.offset().to_wall(b.since).to_string(),
            remaining: b.until.saturating_since(now).as_secs(),
            offence: b.offence,
        }
    }

    fn on_request(&mut self, request: Request) -> Response {
        let now = self.now();
        match request {
            Request::Status => Response::Status(self.status()),
            Request::List { offset, limit } => {
                let all: Vec<ActiveBlock> = self.responder.active(now).collect();
                Response::Blocks {
                    total: all.len(),
                    blocks: all
                        .iter()
                        .skip(offset)
                        .take(limit.min(LIST_PAGE))
                        .map(|b| self.block_info(b, now))
                        .collect(),
                }
            }
            Request::Block { net, seconds } => self.block_by_hand(net.trunc(), seconds, now),
            Request::Unblock { net, grace } => {
                let net = net.trunc();
                let result = self
                    .responder
                    .unblock(net, grace.map(Duration::from_secs), now);
                // Also when the responder did not know the block (an element added by hand):
                // removing a missing element is harmless.
                if let Err(e) = self.apply(&[Action::Unblock { net }]) {
                    return Response::Error {
                        message: format!("could not unblock {}: {e}", source_text(&net)),
                    };
                }
                self.dirty = true;
                // Its next probes are judged afresh (and met by the grace period, if any).
                self.pipeline.forget(net);
                match result {
                    Ok(_) => {
                        let grace = grace
                            .filter(|g| *g > 0)
                            .map(|g| {
                                format!(", not blocked again for {}", human(Duration::from_secs(g)))
                            })
                            .unwrap_or_default();
                        self.log(&format!("unblocked {} by hand{grace}", source_text(&net)));
                        Response::Unblocked { net }
                    }
                    Err(_) => Response::NotBlocked { net },
                }
            }
            Request::Why { addr } => Response::Why {
                addr,
                block: self
                    .responder
                    .block_of(IpNet::from(addr), now)
                    .map(|b| self.block_info(&b, now)),
                refused: self.refusals.get(&addr).cloned(),
                never_block: self
                    .pipeline
                    .ignore()
                    .why(addr)
                    .map(|e| IgnoreInfo {
                        net: e.net,
                        reason: e.reason.to_string(),
                    })
                    .collect(),
            },
            Request::Ignore => Response::Ignore {
                entries: self
                    .pipeline
                    .ignore()
                    .entries()
                    .iter()
                    .map(|e| IgnoreInfo {
                        net: e.net,
                        reason: e.reason.to_string(),
                    })
                    .collect(),
            },
            Request::Reload => match self.reload() {
                Ok(config) => {
                    self.log(&format!(
                        "reloaded the configuration from {config} (sentryctl reload)"
                    ));
                    Response::Reloaded { config }
                }
                Err(why) => {
                    self.log(&format!(
                        "reload refused, still running on the previous configuration: {why}"
                    ));
                    Response::Error {
                        message: format!(
                            "reload refused, still running on the previous configuration: {why}"
                        ),
                    }
                }
            },
        }
    }

    fn block_by_hand(&mut self, net: IpNet, seconds: Option<u64>, now: Timestamp) -> Response {
        if let Some(seconds) = seconds {
            if seconds == 0 || Duration::from_secs(seconds) > MAX_BLOCK_FOR {
                return Response::Error {
                    message: format!(
                        "not blocking {} for {}: a block lasts from 1s to {}",
                        source_text(&net),
                        human(Duration::from_secs(seconds)),
                        human(MAX_BLOCK_FOR)
                    ),
                };
            }
        }
        let covered: Vec<String> = self
            .pipeline
            .ignore()
            .entries()
            .iter()
            .filter(|e| net.contains(&e.net.addr()) || e.net.contains(&net.addr()))
            .map(|e| format!("{} ({})", source_text(&e.net), e.reason))
            .collect();
        if !covered.is_empty() {
            return Response::Error {
                message: format!(
                    "not blocking {}: it overlaps the never-block list: {}",
                    source_text(&net),
                    covered.join(", ")
                ),
            };
        }
        let decision = self
            .responder
            .block_by_hand(net, seconds.map(Duration::from_secs), now);
        match &decision {
            Decision::Block { ttl, .. } | Decision::Refresh { ttl, .. } => {
                let ttl = *ttl;
                let actions = decision.actions();
                match self.apply(&actions) {
                    Ok(()) => {
                        self.dirty = true;
                        self.log(&format!(
                            "blocked {} for {} by hand",
                            source_text(&net),
                            human(ttl)
                        ));
                        Response::Blocked {
                            net,
                            seconds: ttl.as_secs(),
                        }
                    }
                    Err(e) => {
                        self.forget_blocks(&actions);
                        Response::Error {
                            message: format!("could not block {}: {e}", source_text(&net)),
                        }
                    }
                }
            }
            Decision::AlreadyBlocked { net: by, remaining } => Response::Error {
                message: format!(
                    "{} is already blocked by the block of {} for {} more",
                    source_text(&net),
                    source_text(by),
                    human(*remaining)
                ),
            },
            Decision::OverBudget { .. } => Response::Error {
                message: format!(
                    "not blocking {}: {} blocks are active ([respond] max-blocks)",
                    source_text(&net),
                    self.config().respond.max_blocks
                ),
            },
            Decision::NeverBlock { .. }
            | Decision::InGrace { .. }
            | Decision::TooFewPorts { .. }
            | Decision::ReversePath { .. }
            | Decision::Protected { .. } => Response::Error {
                message: format!("not blocking {}", source_text(&net)),
            },
        }
    }
}
