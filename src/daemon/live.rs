//! The running daemon. **Shell.**
//!
//! One thread, the main loop, owns everything that decides: the pipeline, the responder and the
//! firewall. It reads the capture (which hands over frames at least every 5 ms), and between
//! frames takes the events other threads send it: control requests (the control socket's
//! thread), reload and stop (the signal thread), and "the ruleset lost something" (the nftables
//! watcher). Nothing else holds a lock or a copy of the state.
//!
//! By job: [`start`] builds everything up to READY=1 (each failure one `StartError` with its
//! exit code), `event_loop` turns frames, events and chores; this file holds what the daemon
//! does with a detection, a control request, a reload, and the reconciliation of the
//! firewall with what is due (one diff, [`crate::respond::reconcile`]).

use std::net::IpAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};
use std::time::Duration;

use ipnet::IpNet;

use super::hook::Hooks;
use super::log::Logger;
use super::notify::notify;
use crate::detect::Detection;
use crate::wire::Proto;

use crate::config::{self, Config, Loaded};
use crate::control::protocol::{
    BlockInfo, LIST_PAGE, LIST_PORTS, NeverBlockInfo, Request, Response, StatusInfo,
};
use crate::exit;
use crate::firewall::nft::{NftConfig, NftFirewall};
use crate::firewall::{Action, DryRun, Firewall, FirewallError};
use crate::host;
use crate::host::fib::{Fib, RouteBack};
use crate::never_block::NeverBlockList;
use crate::pipeline::Pipeline;
use crate::report::{self, Mode, human, source_text};
use crate::respond::{ActiveBlock, Decision, Distrust, MAX_BLOCK_FOR, Responder, SourceView, Why};
use crate::state::{self, State};
use crate::time::{Clock, SteadyClock, SystemClock, Timestamp, WallOffset};
use crate::trust::{Peers, Protect, ReversePath};

/// How often the listening sockets are re-read.
const LISTENERS_EVERY: Duration = Duration::from_secs(1);
/// A detection is checked against the socket table read at most this long ago (read afresh
/// if older), so that a service started a moment ago is never counted as a trap. The bound
/// also caps the reads a flood of spoofed detections can cause at 100 a second.
const LISTENERS_FRESH: Duration = Duration::from_millis(10);
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

mod event_loop;
mod not_blocked;
mod start;

use start::StartError;
pub use start::never_block;
use start::never_block_logged;

/// Frames handled before the main loop looks at its events again.
const FRAMES_PER_TURN: usize = 4096;

/// Everything the main loop owns.
struct Daemon {
    /// The periodic audit's settings.
    auditor: Option<super::audit::Auditor>,
    /// `-L`: the local check is off whatever the configuration says.
    disable_local_check: bool,
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
    /// Detections not blocked: counted by rule, the last of each recent source (for `why`).
    not_blocked: not_blocked::NotBlocked,
    logger: Logger,
}

/// Latencies kept for `status`.
const LATENCY_SAMPLES: usize = 1024;

/// What [`never_block`] found.
pub struct NeverBlock {
    /// Every address of every interface, with the interface's name.
    pub interfaces: Vec<(String, IpAddr)>,
    /// The never-block list.
    pub list: NeverBlockList,
    /// Bad lines of the never-block file, for the caller to report.
    pub warnings: Vec<String>,
}

fn firewall_for(config: &Config) -> Result<(Mode, Box<dyn Firewall>), FirewallError> {
    if config.respond.dry_run {
        return Ok((Mode::DryRun, Box::new(DryRun)));
    }
    Ok(match &config.backend {
        crate::config::Backend::Nft(nft) => {
            (Mode::Enforcing, Box::new(NftFirewall::new(nft.clone())?))
        }
        crate::config::Backend::Route => (
            Mode::Enforcing,
            Box::new(crate::firewall::route::RouteFirewall::new()?),
        ),
    })
}

/// The name of interface `index`, or `interface N` when it has none (any more).
fn interface_name(index: u32) -> String {
    nix::net::if_::if_indextoname(index)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|_| format!("interface {index}"))
}

/// Why a reload was refused; the running configuration stays.
#[derive(Debug, thiserror::Error)]
enum ReloadError {
    /// The configuration could not be read or is not valid.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The never-block list could not be built.
    #[error(transparent)]
    NeverBlock(#[from] StartError),
    /// The firewall could not be made ready for the new configuration.
    #[error(transparent)]
    Firewall(#[from] FirewallError),
}

impl ReloadError {
    /// The error and its causes on one line (a TOML error spans several).
    fn one_line(&self) -> String {
        exit::chain(self).replace('\n', "; ")
    }
}

/// Runs until SIGTERM or SIGINT; returns the exit code.
pub fn run(
    loaded: Loaded,
    config_path: Option<PathBuf>,
    verbosity: Verbosity,
    disable_local_check: bool,
) -> ExitCode {
    match start::start(loaded, config_path, verbosity, disable_local_check) {
        Ok(running) => running.serve(),
        Err(e) => e.report(),
    }
}

/// A never-block entry as `sentryctl` shows it.
fn never_block_info(e: &crate::never_block::Entry) -> NeverBlockInfo {
    NeverBlockInfo {
        net: e.net,
        reason: e.reason.to_string(),
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
                        Err(e) => self.warn(&format!(
                            "reload refused, still running on the previous configuration: {}",
                            e.one_line()
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
            .never_block()
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
        let reverse_path = self.reverse_path_for(d);
        let view = SourceView {
            route_back: self.route_back(d, reverse_path),
            reverse_path,
            // As last read, once a second: a dump of the established connections walks the
            // kernel's whole connection table (2 ms here), too slow for the way to a block.
            peers: (self.config().respond.protect != Protect::None).then_some(&self.peers),
        };
        let decision = match crate::respond::distrust(d, &view, self.pipeline.never_block()) {
            Some(Distrust::ReversePath { came_in, route }) => Decision::ReversePath {
                addr: d.addr,
                came_in: came_in.map(interface_name),
                route: match route {
                    RouteBack::Via(oif) => Some(interface_name(oif)),
                    RouteBack::Local => Some("this host".into()),
                    RouteBack::None => None,
                },
            },
            Some(Distrust::Protected(c)) => Decision::Protected {
                addr: d.addr,
                peer: c.peer,
                port: c.port,
                since: c.since,
                ended: c.ended,
            },
            None => self
                .responder
                .on_detection(d, self.pipeline.never_block(), now),
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
            let at = SystemClock.now().to_string();
            self.not_blocked.record(rule, d.addr, at, line.clone());
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

    /// The reverse-path check in force for `d`'s source: the configured one, with `kernel`
    /// read from the host's rp_filter for the probe's interface (IPv4; strict for IPv6).
    fn reverse_path_for(&self, d: &Detection) -> ReversePath {
        match self.config().respond.reverse_path {
            ReversePath::Kernel if d.addr.is_ipv4() => {
                host::kernel_reverse_path(d.arrived_on.map(interface_name).as_deref())
            }
            ReversePath::Kernel => ReversePath::Strict,
            mode => mode,
        }
    }

    /// The route back to `d`'s source, asked of the kernel (cached) when the reverse-path check
    /// (`mode`) is on for it; `None` when it is off, or the lookup failed (said, folded).
    fn route_back(&mut self, d: &Detection, mode: ReversePath) -> Option<RouteBack> {
        if mode == ReversePath::Off || self.pipeline.never_block().contains(d.addr) {
            return None;
        }
        match self.fib.as_mut()?.route_back(d.addr) {
            Ok(back) => Some(back),
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
                None
            }
        }
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
        let Some(present) = self.present() else {
            return;
        };
        let plan = crate::respond::reconcile(self.responder.due(self.now()), &present);
        let (lifted, put_back) = (plan.extra.len(), plan.missing.len());
        let actions = plan.all();
        if actions.is_empty() {
            return;
        }
        match self.apply(&actions) {
            Ok(()) => {
                if put_back > 0 {
                    self.log(&format!(
                        "put back {put_back} blocks still due that were removed"
                    ));
                }
                if lifted > 0 && self.verbosity >= Verbosity::Verbose {
                    self.log(&format!("lifted {lifted} blocks that ended"));
                }
            }
            Err(e) => self.warn(&format!("could not bring the blocks up to date: {e}")),
        }
    }

    /// What the firewall holds, or `None` (said) when it cannot be listed.
    fn present(&mut self) -> Option<std::collections::HashSet<IpNet>> {
        match self.firewall.list() {
            Ok(listed) => Some(listed.into_iter().map(|b| b.net).collect()),
            Err(e) => {
                self.warn(&format!("cannot list the blocks in force: {e}"));
                None
            }
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
        // What the kernel holds and the daemon does not was taken over above, but for elements
        // with no timeout: added by hand, the administrator's, left alone (`plan.extra`).
        let missing = crate::respond::reconcile(self.responder.due(now), &present).missing;
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
        let lifted = self.responder.lift_never_block(self.pipeline.never_block());
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
        let (interfaces, ignore) = match never_block_logged(self.config()) {
            Ok(found) => found,
            Err(e) => {
                self.warn(&format!(
                    "could not rebuild the never-block list after a host change ({}); \
                     keeping the old one",
                    exit::chain(&e)
                ));
                return;
            }
        };
        let before = self.pipeline.never_block().entries().to_vec();
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
        // What is left in the sets (all of it when only a rule went) stays; the rest goes back.
        let present = self.present().unwrap_or_default();
        let missing = crate::respond::reconcile(self.responder.due(self.now()), &present).missing;
        match self.apply(&missing) {
            Ok(()) => self.log(&format!(
                "the ruleset changed under us: restored the table and {} blocks still due",
                missing.len()
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
    fn reload(&mut self) -> Result<String, ReloadError> {
        let loaded = config::load(self.config_path.as_deref())?;
        for w in &loaded.warnings {
            tracing::warn!("{w}");
        }
        let new = loaded.config.clone();
        let (interfaces, ignore) = never_block_logged(&new)?;
        // A new firewall only if its settings changed; it must be ready before anything moves.
        let firewall_changed = new.backend != self.config().backend
            || new.respond.dry_run != self.config().respond.dry_run;
        let allow: Vec<IpNet> = ignore.entries().iter().map(|e| e.net).collect();
        if firewall_changed {
            let (mode, mut firewall) = firewall_for(&new)?;
            firewall.ensure_ready(&allow)?;
            let due: Vec<Action> = self.responder.due(self.now()).collect();
            firewall.apply(&due)?;
            self.firewall = firewall;
            self.mode = mode;
        } else {
            self.firewall.ensure_ready(&allow)?;
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
            .set_local_check(new.local_check && !self.disable_local_check);
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
            firewall: match &self.config().backend {
                crate::config::Backend::Nft(NftConfig::Own { .. }) => "own".into(),
                crate::config::Backend::Nft(NftConfig::Attach { .. }) => "attach".into(),
                crate::config::Backend::Route => "route".into(),
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
                .counts()
                .map(|(rule, n)| (rule.to_string(), n))
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

    /// A control request, answered.
    fn on_request(&mut self, request: Request) -> Response {
        let now = self.now();
        match request {
            Request::Status => Response::Status(self.status()),
            Request::List { offset, limit } => self.list(offset, limit, now),
            Request::Block { net, seconds } => self.block_by_hand(net.trunc(), seconds, now),
            Request::Unblock { net, grace } => self.unblock_by_hand(net.trunc(), grace, now),
            Request::Why { addr } => self.why(addr, now),
            Request::NeverBlock => Response::NeverBlock {
                entries: self
                    .pipeline
                    .never_block()
                    .entries()
                    .iter()
                    .map(never_block_info)
                    .collect(),
            },
            Request::Reload => self.reload_by_request(),
        }
    }

    /// `sentryctl list`: a page of the blocks in force.
    fn list(&self, offset: usize, limit: usize, now: Timestamp) -> Response {
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

    /// `sentryctl unblock`: lifted in the kernel (also when the daemon did not know the block:
    /// an element added by hand; removing a missing one is harmless), with an optional grace
    /// period during which the source is not blocked again.
    fn unblock_by_hand(&mut self, net: IpNet, grace: Option<u64>, now: Timestamp) -> Response {
        let result = self
            .responder
            .unblock(net, grace.map(Duration::from_secs), now);
        if let Err(e) = self.apply(&[Action::Unblock { net }]) {
            return Response::Error {
                message: format!("could not unblock {}: {e}", source_text(&net)),
            };
        }
        self.dirty = true;
        // Its next probes are judged afresh (and met by the grace period, if any).
        self.pipeline.forget(net);
        if result.is_err() {
            return Response::NotBlocked { net };
        }
        let grace = grace
            .filter(|g| *g > 0)
            .map(|g| format!(", not blocked again for {}", human(Duration::from_secs(g))))
            .unwrap_or_default();
        self.log(&format!("unblocked {} by hand{grace}", source_text(&net)));
        Response::Unblocked { net }
    }

    /// `sentryctl why`: the block that covers `addr`, its last detection not blocked, and the
    /// never-block entries that hold it.
    fn why(&self, addr: IpAddr, now: Timestamp) -> Response {
        Response::Why {
            addr,
            block: self
                .responder
                .block_of(IpNet::from(addr), now)
                .map(|b| self.block_info(&b, now)),
            refused: self.not_blocked.last_of(addr).cloned(),
            never_block: self
                .pipeline
                .never_block()
                .why(addr)
                .map(never_block_info)
                .collect(),
        }
    }

    /// `sentryctl reload`: the new configuration, or the reason it was refused (the old one
    /// stays).
    fn reload_by_request(&mut self) -> Response {
        match self.reload() {
            Ok(config) => {
                self.log(&format!(
                    "reloaded the configuration from {config} (sentryctl reload)"
                ));
                Response::Reloaded { config }
            }
            Err(e) => {
                let message = format!(
                    "reload refused, still running on the previous configuration: {}",
                    e.one_line()
                );
                self.log(&message);
                Response::Error { message }
            }
        }
    }

    /// Why a block by hand of `net` for `seconds` cannot be made, if it cannot.
    fn refuse_by_hand(&self, net: IpNet, seconds: Option<u64>) -> Option<String> {
        if let Some(seconds) = seconds {
            if seconds == 0 || Duration::from_secs(seconds) > MAX_BLOCK_FOR {
                return Some(format!(
                    "not blocking {} for {}: a block lasts from 1s to {}",
                    source_text(&net),
                    human(Duration::from_secs(seconds)),
                    human(MAX_BLOCK_FOR)
                ));
            }
        }
        let covered: Vec<String> = self
            .pipeline
            .never_block()
            .entries()
            .iter()
            .filter(|e| net.contains(&e.net.addr()) || e.net.contains(&net.addr()))
            .map(|e| format!("{} ({})", source_text(&e.net), e.reason))
            .collect();
        (!covered.is_empty()).then(|| {
            format!(
                "not blocking {}: it overlaps the never-block list: {}",
                source_text(&net),
                covered.join(", ")
            )
        })
    }

    /// `sentryctl block`: any address or network but one that overlaps the never-block list,
    /// for a duration from a second to [`MAX_BLOCK_FOR`] (the configured one by default).
    fn block_by_hand(&mut self, net: IpNet, seconds: Option<u64>, now: Timestamp) -> Response {
        if let Some(refused) = self.refuse_by_hand(net, seconds) {
            return Response::Error { message: refused };
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
