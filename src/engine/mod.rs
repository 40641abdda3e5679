//! The engine: everything the daemon decides between a packet and the kernel. **Pure**, apart
//! from the ports it is handed: a [`Clock`], a [`Host`] to look at the machine with, and the
//! [`Firewall`] the host opens for it. The host reports facts only; the engine decides: a dry
//! run, the never-block list, which changes of a reload wait for the next start
//! ([`restart`]), the whole `status` answer.
//!
//! Its inputs are values — a frame, a trap connection, a control request, a tick, a host or
//! ruleset change, a new configuration — and what it decides comes out as [`Effect`]s (say this,
//! run the on-block program, append a history line, save this state) for the shell to carry
//! out. Firewall changes are not effects but calls on the port: what the engine records
//! depends on the kernel's answer (a block is recorded only once the kernel has it), so the
//! answer must come back before the next decision.
//!
//! The daemon (`daemon::live`) carries the effects out with real parts; `sentryd --replay`
//! drives the same engine over a capture file with a dry-run firewall and the host a capture
//! shows; the unit tests drive it with a manual clock, a stand-in host and the in-memory
//! firewall ([`crate::firewall::memory`]).

use std::collections::{HashSet, VecDeque};
use std::io;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

use crate::config::{self, Backend, Config, Loaded};
use crate::control::protocol::{
    BlockInfo, FleetInfo, Held, LIST_PAGE, LIST_PORTS, NeverBlockInfo, Request, Response,
    StatusInfo,
};
use crate::detect::Detection;
use crate::detect::traps::Listeners;
use crate::firewall::{Action, Blocked, DryRun, Firewall, FirewallError};
use crate::never_block::discover::{HostState, discover};
use crate::never_block::{NeverBlockFileError, NeverBlockList};
use crate::pipeline::Pipeline;
use crate::report::{self, Mode, source_text};
use crate::respond::{ActiveBlock, Decision, Distrust, MAX_BLOCK_FOR, Responder, SourceView, Why};
use crate::state::{self, State};
use crate::text::human;
use crate::time::{Clock, Timestamp, WallOffset};
use crate::trust::{Peers, Protect, ReversePath, RouteBack};
use crate::wire::{Lazy, Proto, Skip};

mod control;
mod decide;
mod decoy;
pub use decoy::decoy_line;
mod first_line;
mod fleet;
mod kernel;
mod not_blocked;
pub mod restart;
#[cfg(test)]
mod tests;

/// How often the listening sockets and the established connections are re-read, folded log
/// lines summed up, and a firewall whose blocks do not end by themselves brought up to date.
pub const EVERY_SECOND: Duration = Duration::from_secs(1);
/// A detection is checked against the socket table read at most this long ago (read afresh
/// if older), so that a service started a moment ago is never counted as a trap. The bound
/// also caps the reads a flood of spoofed detections can cause at 100 a second.
pub const LISTENERS_FRESH: Duration = Duration::from_millis(10);
/// How often the state is written when it changed (and tried again when writing failed).
pub const SAVE_EVERY: Duration = Duration::from_secs(1);
/// How long after a change to the ruleset the table is restored: an `nft -f` is one
/// transaction, but a script may run several commands; the restore comes once, after them.
pub const RESTORE_SETTLE: Duration = Duration::from_millis(50);
/// Capture-to-kernel latencies kept for `status`.
pub const LATENCY_SAMPLES: usize = 1024;
/// How long one reading of the kernel's block sets answers `status`, the metrics, `list`'s
/// pages and `why`: a flood of scrapes, or `sentryctl list` paging through the hundred
/// thousand elements of a flood's sets, reads them once in it, not once a request (each read
/// holds the main loop). Any change the daemon makes to the firewall, and any the watcher
/// reports, reads them anew.
pub const KERNEL_READ_FOR: Duration = Duration::from_secs(1);

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

/// How an engine runs.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// How much it says.
    pub verbosity: Verbosity,
    /// `-L`: the local check is off whatever the configuration says (at start and after
    /// every reload; the daemon and a replay both hand `-L` in here, and only here).
    pub disable_local_check: bool,
    /// Every decision also comes out as [`Effect::Decided`] (for `--replay`).
    pub decisions: bool,
    /// The seed of the pipeline's hash tables (fixed in a replay, so that it repeats).
    pub seed: u64,
}

/// How important a line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Worth a look only when debugging.
    Debug,
    /// What happened.
    Info,
    /// Something did not work, or needs the administrator.
    Warn,
}

/// What the engine decided that the shell carries out.
#[derive(Clone, Debug)]
pub enum Effect {
    /// Say this.
    Log(Level, String),
    /// A likely decoy (only with [`Options::decisions`]), and the short hold its block was
    /// cut to (`None`: it was not blocked for longer).
    Decoy {
        /// What the SYN+ACKs to it showed.
        verdict: crate::detect::decoy::Verdict,
        /// The hold, when a block was cut.
        ttl: Option<Duration>,
    },
    /// A detection and the decision taken (only with [`Options::decisions`]).
    Decided {
        /// What was detected.
        detection: Detection,
        /// What was decided.
        decision: Decision,
    },
    /// Say this decision: its line, and its facts as the fields of the event.
    Decision(Box<report::Event>),
    /// Say this act (a block or unblock by hand, a reload): its line, and its facts as the
    /// fields of the event.
    Act(Level, Box<report::Act>),
    /// A block was made: run the on-block program, if one is configured.
    Blocked {
        /// The detection that made it.
        detection: Detection,
        /// What is blocked.
        net: IpNet,
        /// For how long.
        ttl: Duration,
    },
    /// Append `line` to the history file at `path`.
    History {
        /// The history file.
        path: PathBuf,
        /// The line, without its newline.
        line: String,
    },
    /// Write this state, then tell the engine how that went ([`Engine::saved`]).
    Save(State),
    /// Another firewall may be in force (a reload changed it; the one before was retired):
    /// watch the ruleset for the one in force now ([`Engine::firewall`]), which changes the
    /// kernel through a socket of its own.
    Watch,
    /// Tell the fleet (fleet mode): the shell's link sends it as this host's message, to every
    /// host, or to `to` only (probe summaries, to the owner of their count).
    Fleet {
        /// What to say.
        body: crate::fleet::message::Body,
        /// To whom, when not to all.
        to: Option<crate::fleet::message::HostName>,
    },
}

/// The host's addresses and the never-block list the engine composed from what the host
/// showed ([`never_block`]).
pub struct NeverBlock {
    /// Every address of every interface, with the interface's name.
    pub interfaces: Vec<(String, IpAddr)>,
    /// The never-block list.
    pub list: NeverBlockList,
    /// Bad lines of the never-block file.
    pub warnings: Vec<String>,
}

/// What the host could not show: its interfaces, the never-block file, the configuration.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The interfaces' addresses could not be listed.
    #[error("cannot list the interfaces and their addresses: {0}")]
    Interfaces(String),
    /// The never-block file could not be read.
    #[error(transparent)]
    NeverBlockFile(#[from] NeverBlockFileError),
    /// The configuration could not be read again, or is not valid: the error in one line
    /// (naming the file, and the line and key when it can), and for a TOML error toml's report
    /// with the line quoted, which `sentryctl reload` shows below it.
    #[error("{line}")]
    Configuration {
        /// What was wrong, in one line.
        line: String,
        /// More lines for a terminal, if any.
        report: Option<String>,
    },
}

/// Who asked for a reload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReloadBy {
    /// SIGHUP.
    Signal,
    /// `sentryctl reload` (the answer goes back to it).
    Request,
}

/// What the shell's parts show when the engine answers `status`: facts the engine reads, not
/// figures it patches in afterwards.
#[derive(Clone, Debug, Default)]
pub struct Readings {
    /// The captures' drop counters (the kernel's and the interfaces'), summed.
    pub capture_drops: u64,
    /// The fleet link's figures, in fleet mode.
    pub link: Option<LinkFigures>,
}

/// The fleet link's own figures, as `status` shows them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkFigures {
    /// Connected to a server now.
    pub connected: bool,
    /// The server connected to, or last tried.
    pub server: String,
    /// The last round trip to the server, microseconds.
    pub round_trip_us: Option<u64>,
    /// Messages waiting to be sent.
    pub queued: usize,
    /// This host's messages dropped from a full queue since start.
    pub dropped_out: u64,
    /// Messages from other hosts dropped since start, by why.
    pub dropped_in: std::collections::BTreeMap<String, u64>,
    /// Why the bucket of active blocks is not used, when it is not.
    pub bucket_refused: Option<String>,
    /// Messages sent since start.
    pub sent: u64,
}

/// Why an engine could not start, or take a new configuration (the old one then stays).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The never-block list could not be built.
    #[error(transparent)]
    Host(#[from] HostError),
    /// The firewall could not be built or made ready.
    #[error(transparent)]
    Firewall(#[from] FirewallError),
    /// The listening sockets could not be read.
    #[error("cannot read the listening sockets: {0}")]
    Listeners(io::Error),
}

/// What the engine asks of the machine: facts, never a decision (the engine decides dry run,
/// composes the never-block list, judges a reload). The daemon's answers come from the kernel
/// and its files; a replay's from the capture; a test's from a stand-in.
pub trait Host {
    /// What the never-block list is discovered from: the interfaces and their addresses, the
    /// default routes, the resolver's configuration.
    ///
    /// # Errors
    ///
    /// When the interfaces cannot be listed.
    fn host_state(&mut self) -> Result<HostState, HostError>;

    /// The text of the file at `path` (the never-block file).
    ///
    /// # Errors
    ///
    /// When it cannot be read.
    fn read_file(&mut self, path: &Path) -> io::Result<String>;

    /// The firewall of `backend`, opened: the host says which firewalls it can open, the
    /// engine which one it uses (none in a dry run).
    ///
    /// # Errors
    ///
    /// When it cannot be opened.
    fn firewall(&mut self, backend: &Backend) -> Result<Box<dyn Firewall>, FirewallError>;

    /// The configuration as it reads now (for a reload), its host named for the fleet.
    ///
    /// # Errors
    ///
    /// When it cannot be read, is not valid, or the fleet cannot name this host.
    fn configuration(&mut self) -> Result<Loaded, HostError>;

    /// The ports the kernel hands out to outgoing connections.
    fn local_port_range(&self) -> RangeInclusive<u16>;

    /// The listening sockets now.
    ///
    /// # Errors
    ///
    /// When they cannot be read.
    fn listeners(&mut self) -> io::Result<Listeners>;

    /// The established connections now: peer address, local port, peer port.
    ///
    /// # Errors
    ///
    /// When they cannot be read.
    fn established(&mut self) -> io::Result<Vec<(IpAddr, u16, u16)>>;

    /// The route back to `addr`; `None` when routes cannot be asked here.
    fn route_back(&mut self, addr: IpAddr) -> Option<io::Result<RouteBack>>;

    /// Routes may have changed: forget any routes back remembered.
    fn routes_changed(&mut self);

    /// The reverse-path check the kernel makes of IPv4 packets arriving on interface
    /// `ifindex`.
    fn kernel_reverse_path(&self, ifindex: Option<u32>) -> ReversePath;

    /// The name of interface `index`.
    fn interface_name(&self, index: u32) -> String;
}

/// The engine's own bookkeeping of the firewall: what it restores when someone deletes part
/// of the table, and when.
#[derive(Debug, Default)]
struct Restore {
    /// Someone deleted part of our table: restore it at `not_before`.
    pending: bool,
    not_before: Timestamp,
    pace: kernel::RestorePace,
    /// Restores are being spaced out (said once when it starts).
    fighting: bool,
}

/// When the periodic work is next due.
#[derive(Debug)]
struct Due {
    second: Timestamp,
    save: Timestamp,
    /// Fleet mode: the probes counted go out as summaries.
    probes: Timestamp,
}

/// The daemon's decisions: pipeline, responder, host view and firewall, and what follows a
/// decision.
pub struct Engine {
    /// The tripwire ports found with a listener when last looked ([`Engine::check_tripwires`]).
    tripwires_listening: Vec<String>,
    /// The uid of the `sentryctl` whose request is being answered ([`Engine::asked_by`]).
    asker: Option<u32>,
    options: Options,
    loaded: Loaded,
    clock: Box<dyn Clock>,
    host: Box<dyn Host>,
    /// The real-time clock's offset from the engine's clock when last looked at.
    wall: WallOffset,
    started: Timestamp,
    mode: Mode,
    firewall: Box<dyn Firewall>,
    /// Decides on detections and blocks by hand: the blocks in force and the offence history
    /// when enforcing; in a dry run, a responder of its own whose blocks are only imagined.
    responder: Responder,
    /// In a dry run, the responder in force when it began, set aside: its blocks (still in
    /// the kernel, ending there by themselves) and offence history are what is saved and what
    /// the end of the dry run goes back to; nothing the dry run imagines reaches it.
    set_aside: Option<Responder>,
    pipeline: Pipeline,
    /// The blocks changed since the state was last saved.
    dirty: bool,
    /// The last save failed (the warning has been given).
    save_failing: bool,
    refused: u64,
    /// Capture-to-kernel latencies of the last blocks, microseconds.
    latencies: VecDeque<u64>,
    /// Totals for metrics.
    tally: crate::metrics::Tally,
    /// When the socket table was last read.
    listeners_read: Timestamp,
    restore: Restore,
    due: Due,
    /// Repeated log lines, folded into summaries.
    fold: report::Fold,
    /// The host's addresses, as last found.
    local_addresses: usize,
    /// The host's interface addresses, as last found (fleet mode: its heartbeats claim the
    /// routable ones).
    own_addresses: Vec<IpAddr>,
    /// The peers of established connections, as last read (once a second).
    peers: Peers,
    /// Detections not blocked: counted by rule, the last of each recent source (for `why`).
    not_blocked: not_blocked::NotBlocked,
    /// Fleet mode's side, when it is on.
    fleet: Option<fleet::Fleet>,
    /// The last reading of the kernel's block sets, and when it was made
    /// ([`KERNEL_READ_FOR`]).
    kernel_read: Option<(Timestamp, Vec<Blocked>)>,
    /// The kernel's first line: the facts it was given, the holds it reported.
    first_line: first_line::FirstLine,
    effects: Vec<Effect>,
}

impl Engine {
    /// An engine on `loaded`: the never-block list, the firewall made ready, the pipeline with
    /// the listening sockets of now, and the blocks of `saved` (the state file, if it could be
    /// read) and of the kernel reconciled.
    ///
    /// # Errors
    ///
    /// When the never-block list, the firewall or the listening sockets cannot be had.
    pub fn start(
        loaded: Loaded,
        options: Options,
        clock: Box<dyn Clock>,
        mut host: Box<dyn Host>,
        saved: Option<State>,
    ) -> Result<Engine, SetupError> {
        let config = &loaded.config;
        let found = never_block(&mut *host, config)?;
        let (mode, mut firewall) = open_firewall(&mut *host, config)?;
        // Read before the table is made: whether it was there (and what it held) decides
        // whether a block missing from it was deleted or lost.
        let kept = firewall.kept_since_last_run();
        firewall.ensure_ready(&allow_list(&found.list))?;
        let mut traps = config.traps.build(host.local_port_range());
        traps.set_listeners(host.listeners().map_err(SetupError::Listeners)?);
        let local_addresses = found.interfaces.len();
        let own_addresses = found.interfaces.iter().map(|(_, a)| *a).collect();
        let mut pipeline = Pipeline::new(
            config.detector.clone(),
            traps,
            found.list,
            found.interfaces.iter().map(|(_, a)| *a),
            options.seed,
        );
        pipeline.set_local_check(local_check(config, &options));
        let now = clock.now();
        let mut engine = Engine {
            responder: Responder::new(&config.respond),
            set_aside: None,
            peers: Peers::new(config.respond.protect_for),
            wall: clock.wall_offset(),
            local_addresses,
            own_addresses,
            options,
            clock,
            host,
            started: now,
            mode,
            firewall,
            pipeline,
            dirty: false,
            save_failing: false,
            refused: 0,
            latencies: VecDeque::with_capacity(LATENCY_SAMPLES),
            tally: crate::metrics::Tally::default(),
            listeners_read: now,
            restore: Restore::default(),
            due: Due {
                second: now.saturating_add(EVERY_SECOND),
                save: now.saturating_add(SAVE_EVERY),
                probes: now.saturating_add(fleet::PROBES_EVERY),
            },
            fold: report::Fold::default(),
            not_blocked: not_blocked::NotBlocked::default(),
            fleet: config.fleet.as_ref().and_then(fleet::Fleet::new),
            kernel_read: None,
            first_line: first_line::FirstLine::default(),
            effects: Vec::new(),
            asker: None,
            loaded,
            tripwires_listening: Vec::new(),
        };
        engine.check_tripwires();
        for w in found.warnings {
            engine.warn(w);
        }
        engine.tap_probes();
        engine.resume(saved, kept);
        if engine.mode == Mode::DryRun {
            engine.begin_dry_run();
        }
        engine.read_peers();
        engine.first_line_started();
        Ok(engine)
    }

    /// The effects decided since the last call, in order.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.loaded.config
    }

    /// Where the configuration in force came from.
    pub fn origin(&self) -> &config::Origin {
        &self.loaded.origin
    }

    /// Enforcing or dry run.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The pipeline (counters, traps, never-block list).
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The firewall, for the shell to watch.
    pub fn firewall(&self) -> &dyn Firewall {
        &*self.firewall
    }

    /// The host's addresses, as last found.
    pub fn local_addresses(&self) -> usize {
        self.local_addresses
    }

    /// Totals since start, for metrics.
    pub fn tally(&self) -> &crate::metrics::Tally {
        &self.tally
    }

    /// Blocks in force (not those a dry run imagines).
    pub fn blocks_active(&self) -> usize {
        self.in_force().active_count()
    }

    /// Blocks a dry run imagines now (0 when enforcing).
    pub fn would_block(&self) -> usize {
        if self.set_aside.is_some() {
            self.responder.active_count()
        } else {
            0
        }
    }

    /// The responder whose blocks are in force: the one set aside in a dry run.
    fn in_force(&self) -> &Responder {
        self.set_aside.as_ref().unwrap_or(&self.responder)
    }

    /// The state to save now: the blocks in force and the offence history, nothing a dry run
    /// imagined; and whether those blocks are in own mode's table (enforcing there).
    pub fn state(&self) -> State {
        let now = self.clock.now();
        let responder = self.in_force();
        let own = matches!(
            self.config().backend,
            Backend::Nft(crate::config::NftConfig::Own { .. })
        );
        State::new(responder.active(now), responder.offenders(), self.wall)
            .in_table(own && self.mode == Mode::Enforcing)
    }

    /// A dry run begins: the responder in force is set aside, and a new one, on the same
    /// configuration (so under the same caps), decides on imagined blocks from now on.
    /// Whether it began now (not already running).
    fn begin_dry_run(&mut self) -> bool {
        if self.set_aside.is_some() {
            return false;
        }
        let imagined = Responder::new(&self.config().respond);
        self.set_aside = Some(std::mem::replace(&mut self.responder, imagined));
        true
    }

    /// A dry run ends: what it imagined is dropped, none of it applied (said, with how many),
    /// and the responder set aside decides again. Returns how many imagined blocks were
    /// dropped.
    fn end_dry_run(&mut self) -> usize {
        let Some(in_force) = self.set_aside.take() else {
            return 0;
        };
        let imagined = std::mem::replace(&mut self.responder, in_force);
        let dropped = imagined.active_count();
        // Their sources' next probes are judged afresh, as after an unblock.
        for b in imagined.active(self.clock.now()) {
            self.pipeline.forget(b.net);
        }
        self.log(format!(
            "dry run off: {} not applied (nothing a dry run decides is blocked or counted as \
             an offence)",
            report::count(dropped as u64, "would-be block was", "would-be blocks were")
        ));
        dropped
    }

    fn say(&mut self, level: Level, line: impl Into<String>) {
        self.effects.push(Effect::Log(level, line.into()));
    }

    fn say_decision(&mut self, event: report::Event) {
        self.effects.push(Effect::Decision(Box::new(event)));
    }

    /// Says `did` (by `actor`, in `line`) as an event with fields, `address` and `duration_s`
    /// when given.
    fn act(
        &mut self,
        level: Level,
        (did, actor): (report::Did, report::Actor),
        (address, duration_s): (Option<IpNet>, Option<u64>),
        line: String,
    ) {
        self.act_with(level, (did, actor), (address, duration_s), line, |_| {});
    }

    /// [`Engine::act`], with `extra` setting the facts only some acts have (`count`, …).
    fn act_with(
        &mut self,
        level: Level,
        (did, actor): (report::Did, report::Actor),
        (address, duration_s): (Option<IpNet>, Option<u64>),
        line: String,
        extra: impl FnOnce(&mut report::Act),
    ) {
        let mut act = report::Act::new(did, self.mode, actor, line);
        if actor == report::Actor::Sentryctl {
            act.uid = self.asker;
        }
        act.address = address;
        act.duration_s = duration_s;
        extra(&mut act);
        self.effects.push(Effect::Act(level, Box::new(act)));
    }

    /// The control requests that follow are asked by the peer of uid `uid` (the control
    /// socket's credentials), until the next call; `None` after them. The events of what they
    /// do name it (`uid`).
    pub fn asked_by(&mut self, uid: Option<u32>) {
        self.asker = uid;
    }

    /// Says which tripwire ports have a listener, when that changes: such a port is not a trap
    /// while something listens on it (no port with a listener ever is), so its tripwire is
    /// skipped, not refused: a service may start on it at any time, and a refused reload or
    /// start would leave the host unwatched over one port. In connect mode the trap ports'
    /// listeners are the daemon's own sockets: nothing to say.
    fn check_tripwires(&mut self) {
        let tripwires = &self.loaded.config.detector.tripwire;
        let connect = self.loaded.config.capture.method == config::Method::Connect;
        if connect || (tripwires.is_empty() && self.tripwires_listening.is_empty()) {
            return;
        }
        let listeners = self.pipeline.listeners();
        let now = tripwires.with_listeners(|proto, port| listeners.on_any_address(proto, port));
        if now == self.tripwires_listening {
            return;
        }
        if now.is_empty() {
            self.log("tripwire ports: none has a listener now; all are armed");
        } else {
            self.warn(format!(
                "tripwire port{} with a listener, skipped while it listens: {}",
                if now.len() == 1 { "" } else { "s" },
                now.join(", ")
            ));
        }
        self.tripwires_listening = now;
    }

    fn log(&mut self, line: impl Into<String>) {
        self.say(Level::Info, line);
    }

    fn warn(&mut self, line: impl Into<String>) {
        self.say(Level::Warn, line);
    }

    /// How far the system clock is from the engine's; said once when it has been stepped (by
    /// a second or more) since the last look. Capture timestamps come from the system clock:
    /// the shell converts them with this before it hands frames in.
    pub fn wall_offset(&mut self) -> WallOffset {
        let offset = self.clock.wall_offset();
        let step = offset.as_micros().saturating_sub(self.wall.as_micros());
        if step.unsigned_abs() >= 1_000_000 {
            self.log(format!(
                "the system clock was stepped {}: blocks and detection windows keep their \
                 length; times shown and saved follow the system clock",
                WallOffset::from_micros(step)
            ));
        }
        self.wall = offset;
        offset
    }

    /// The periodic work that is due: folded log summaries, the route backend's sync, the
    /// socket table, the established connections, a restore of the table, the state save.
    /// Returns when something is next due.
    pub fn tick(&mut self) -> Timestamp {
        let now = self.clock.now();
        if now >= self.due.second {
            self.due.second = now.saturating_add(EVERY_SECOND);
            for line in self.fold.summaries(now) {
                self.log(line);
            }
            if !self.firewall.expires_by_itself() {
                self.sync_blocks();
            }
            match self.host.listeners() {
                Ok(listeners) => {
                    self.pipeline.set_listeners(listeners);
                    self.listeners_read = now;
                    self.check_tripwires();
                }
                Err(e) => self.warn(format!("cannot refresh listening sockets: {e}")),
            }
            self.read_peers();
            self.first_line_second();
            self.pipeline.sweep_decoys(now);
        }
        if self.restore.pending && now >= self.restore.not_before {
            self.restore_paced();
        }
        if now >= self.due.save {
            self.due.save = now.saturating_add(SAVE_EVERY);
            if self.dirty {
                // Clean from here: a change while the save is being written (the daemon
                // writes it on a thread of its own) makes it dirty again; a failed save too.
                self.dirty = false;
                let state = self.state();
                self.effects.push(Effect::Save(state));
            }
        }
        self.settle_waiting();
        self.decoys();
        if self.fleet.is_some() && now >= self.due.probes {
            self.due.probes = now.saturating_add(fleet::PROBES_EVERY);
            self.fleet_probes(now);
        }
        let mut next = self.due.second.min(self.due.save);
        if let Some(settle) = self.responder.next_settle(self.clock.now()) {
            next = next.min(settle);
        }
        if self.fleet.is_some() {
            next = next.min(self.due.probes);
        }
        if self.restore.pending {
            next.min(self.restore.not_before)
        } else {
            next
        }
    }

    /// How the save of [`Effect::Save`] went (`Err` with the reason).
    pub fn saved(&mut self, result: Result<usize, String>) {
        match result {
            Ok(blocks) => {
                if std::mem::take(&mut self.save_failing) {
                    self.log(format!(
                        "saved the state again ({})",
                        report::count(blocks as u64, "block", "blocks")
                    ));
                } else if self.options.verbosity >= Verbosity::Verbose {
                    self.log(format!(
                        "saved {}",
                        report::count(blocks as u64, "block", "blocks")
                    ));
                }
            }
            // Said once per failure streak. The state stays dirty, so the save is tried again
            // every SAVE_EVERY until it works; the firewall keeps working regardless.
            Err(e) => {
                self.dirty = true;
                if !std::mem::replace(&mut self.save_failing, true) {
                    self.warn(format!(
                        "could not save the state (blocks still work; trying again every {} s): {e}",
                        SAVE_EVERY.as_secs()
                    ));
                }
            }
        }
    }

    /// Interfaces, addresses, routes or resolv.conf changed: rebuild the never-block list and
    /// the set of local addresses, and load the list into the allow sets.
    pub fn host_changed(&mut self) {
        // Routes may have changed: the routes back are asked again.
        self.host.routes_changed();
        let found = match never_block(&mut *self.host, &self.loaded.config) {
            Ok(found) => found,
            Err(e) => {
                self.warn(format!(
                    "could not rebuild the never-block list after a host change ({}); \
                     keeping the old one",
                    crate::text::chain(&e)
                ));
                return;
            }
        };
        for w in found.warnings {
            self.warn(w);
        }
        if self.pipeline.never_block().entries() == found.list.entries() {
            return;
        }
        let allow = allow_list(&found.list);
        let entries = found.list.entries().len();
        let addresses = found.interfaces.len();
        self.local_addresses = addresses;
        self.own_addresses = found.interfaces.iter().map(|(_, a)| *a).collect();
        self.pipeline
            .set_host(found.interfaces.iter().map(|(_, a)| *a), found.list);
        match self.firewall.ensure_ready(&allow) {
            Ok(()) => self.log(format!(
                "the host's addresses, routes or nameservers changed: {addresses} local \
                 addresses, {entries} never-block entries"
            )),
            Err(e) => self.warn(format!("could not load the new never-block list: {e}")),
        }
        self.sync_first_line(true);
        self.lift_never_block();
    }

    /// A reload (SIGHUP, or `sentryctl reload`): the configuration as the host reads it now
    /// ([`Host::configuration`]), taken whole or refused whole. Says "reloaded the
    /// configuration from …" and each setting that waits for the next start
    /// ([`restart::AtStart`]), or "reload refused, still running on the previous
    /// configuration: …"; answers as `sentryctl reload` shows it ([`Response::Reloaded`] or
    /// [`Response::Error`]).
    pub fn reload(&mut self, by: ReloadBy) -> Response {
        let taken = self
            .host
            .configuration()
            .map_err(SetupError::Host)
            .and_then(|loaded| self.reconfigure(loaded));
        let (by, actor) = match by {
            ReloadBy::Signal => ("", report::Actor::Signal),
            ReloadBy::Request => (" (sentryctl reload)", report::Actor::Sentryctl),
        };
        match taken {
            Ok(_) => {
                let config = self.loaded.origin.to_string();
                self.act(
                    Level::Info,
                    (report::Did::Reload, actor),
                    (None, None),
                    format!("reloaded the configuration from {config}{by}"),
                );
                Response::Reloaded { config }
            }
            Err(e) => {
                const REFUSED: &str = "reload refused, still running on the previous configuration";
                let why = crate::text::chain(&e);
                // The log line is one line, naming the file, line and key; sentryctl's answer
                // begins with the same words, and shows a TOML error's report below them.
                self.act(
                    Level::Warn,
                    (report::Did::ReloadRefused, actor),
                    (None, None),
                    format!("{REFUSED}: {}", why.replace('\n', "; ")),
                );
                let report = match &e {
                    SetupError::Host(HostError::Configuration {
                        report: Some(report),
                        ..
                    }) => format!("\n{report}"),
                    _ => String::new(),
                };
                Response::Error {
                    message: format!("{REFUSED}: {why}{report}"),
                }
            }
        }
    }

    /// Takes the configuration `loaded`: nothing changes unless all of it can be had (the
    /// never-block list, a firewall ready for it with every block still due). Says, and
    /// returns, the changed settings that wait for the next start of sentryd.
    ///
    /// # Errors
    ///
    /// When it cannot; the configuration in force stays.
    pub fn reconfigure(&mut self, loaded: Loaded) -> Result<Vec<restart::AtStart>, SetupError> {
        for w in &loaded.warnings {
            self.warn(w.clone());
        }
        let new = &loaded.config;
        let mut found = never_block(&mut *self.host, new)?;
        for w in std::mem::take(&mut found.warnings) {
            self.warn(w);
        }
        // A new firewall only if its settings changed; it must be ready before anything moves.
        let firewall_changed = new.backend != self.config().backend
            || new.respond.dry_run != self.config().respond.dry_run;
        let allow = allow_list(&found.list);
        if firewall_changed {
            self.change_firewall(new, &allow)?;
        } else {
            self.firewall.ensure_ready(&allow)?;
        }
        let mut traps = new.traps.build(self.host.local_port_range());
        if let Ok(listeners) = self.host.listeners() {
            traps.set_listeners(listeners);
        }
        self.local_addresses = found.interfaces.len();
        self.own_addresses = found.interfaces.iter().map(|(_, a)| *a).collect();
        self.pipeline.reconfigure(
            new.detector.clone(),
            traps,
            found.list,
            found.interfaces.iter().map(|(_, a)| *a),
        );
        self.pipeline
            .set_local_check(local_check(new, &self.options));
        self.responder.reconfigure(&new.respond);
        if let Some(in_force) = self.set_aside.as_mut() {
            in_force.reconfigure(&new.respond);
        }
        self.fleet = match (self.fleet.take(), &new.fleet) {
            (Some(fleet), Some(config)) => fleet.reconfigure(config),
            (None, Some(config)) => fleet::Fleet::new(config),
            (_, None) => None,
        };
        self.tap_probes();
        let now = self.clock.now();
        self.peers.set_protect_for(new.respond.protect_for, now);
        let at_start = restart::at_start(&self.loaded.config, &loaded.config);
        self.loaded = loaded;
        self.check_tripwires();
        self.sync_first_line(true);
        self.lift_never_block();
        for what in &at_start {
            self.warn(what.line());
        }
        Ok(at_start)
    }

    /// The firewall of `new` (its backend, or dry run), made ready with `allow` and given the
    /// blocks in force (never what a dry run imagined), then used; a dry run begins or ends
    /// with it (said).
    ///
    /// The old firewall's blocks would stay in the kernel out of reach — neither an unblock nor
    /// the never-block list goes to a firewall no longer in force — so a dry run, or a firewall
    /// elsewhere (routes, another table), leaves none behind: they are lifted there, kept, and
    /// given to the next enforcing firewall if still due.
    fn change_firewall(&mut self, new: &Config, allow: &[IpNet]) -> Result<(), SetupError> {
        self.kernel_read = None;
        // From here the kernel changes through the new firewall's socket (and, into a dry run,
        // through the one that takes attach mode's first line out of service), which the old
        // one's watcher would take for another program's (its allow sets rebuilt: a restore,
        // which rebuilds them again). It stops first; the firewall in force at the end,
        // whichever it is, is watched anew.
        self.firewall.retire();
        self.effects.push(Effect::Watch);
        let (mode, mut firewall) = open_firewall(&mut *self.host, new)?;
        firewall.ensure_ready(allow)?;
        let due: Vec<Action> = self.in_force().due(self.clock.now()).collect();
        firewall.apply(&due)?;
        let mut old = std::mem::replace(&mut self.firewall, firewall);
        let elsewhere = match (&new.backend, &self.config().backend) {
            (Backend::Nft(new), Backend::Nft(old)) => !new.may_share_sets(old),
            (Backend::Route, Backend::Route) => false,
            _ => true,
        };
        // Attach mode's first line is the administrator's rules, which the new firewall of the
        // same table, without a first line, leaves as they are: the old one takes it out of
        // service, or it would hold sources no daemon hears of.
        let attached_left = !self.firewall.has_first_line()
            && matches!(
                &self.config().backend,
                Backend::Nft(config::NftConfig::Attach {
                    first_line: Some(_),
                    ..
                })
            );
        let lift_old = self.mode == Mode::Enforcing && (mode == Mode::DryRun || elsewhere);
        if attached_left
            && !lift_old
            && let Err(e) = old.remove_first_line()
        {
            self.warn(format!(
                "could not take the kernel's first line out of service in the attached table: \
                 {e}"
            ));
        }
        if lift_old {
            if let Err(e) = lift_all(&mut *old, &due) {
                self.warn(format!(
                    "could not lift the blocks of the firewall no longer in force: {e}"
                ));
            }
            // Its first line would go on holding sources, unheard: it goes with its blocks.
            if let Err(e) = old.remove_first_line() {
                self.warn(format!(
                    "could not take the kernel's first line out of the firewall no longer in \
                     force: {e}"
                ));
            }
        }
        self.mode = mode;
        match mode {
            Mode::Enforcing => {
                self.end_dry_run();
            }
            Mode::DryRun if self.begin_dry_run() => self.log(format!(
                "dry run on: nothing is blocked from now on; {} in force lifted from the \
                 firewall, kept, and put back when the dry run ends if still due",
                report::count(self.blocks_active() as u64, "block", "blocks")
            )),
            Mode::DryRun => {}
        }
        Ok(())
    }
}

/// Unblocks in `firewall` each block of `blocks`: what the engine holds, lifted from a
/// firewall no longer in force.
fn lift_all(firewall: &mut dyn Firewall, blocks: &[Action]) -> Result<(), FirewallError> {
    let lifted: Vec<Action> = blocks
        .iter()
        .filter_map(|a| match a {
            Action::Block { net, .. } => Some(Action::Unblock { net: *net }),
            Action::Unblock { .. } => None,
        })
        .collect();
    firewall.apply(&lifted)
}

/// The never-block list as the allow sets hold it.
fn allow_list(list: &NeverBlockList) -> Vec<IpNet> {
    list.entries().iter().map(|e| e.net).collect()
}

/// The never-block list for `config` on `host`: what the host shows of itself (interfaces,
/// gateways, nameservers, the never-block file's text), composed by
/// [`crate::never_block::compose`] with the configuration's addresses and the fleet's servers
/// and members. The daemon's start, its reloads and host changes, `sentryd --never-block`,
/// a replay and the tests all build it here.
///
/// # Errors
///
/// When the interfaces cannot be listed or the never-block file cannot be read.
pub fn never_block(host: &mut dyn Host, config: &Config) -> Result<NeverBlock, HostError> {
    let state = host.host_state()?;
    let file = config
        .never_block
        .file
        .as_ref()
        .map(|path| (path.clone(), host.read_file(path)));
    let (list, warnings) = crate::never_block::compose(config, discover(&state), file)?;
    Ok(NeverBlock {
        interfaces: state.interfaces,
        list,
        warnings,
    })
}

/// The firewall the engine uses for `config`: none in a dry run (`[respond] dry-run`, and
/// always in a replay), else the one of the configured backend, as the host opens it.
fn open_firewall(
    host: &mut dyn Host,
    config: &Config,
) -> Result<(Mode, Box<dyn Firewall>), FirewallError> {
    if config.respond.dry_run {
        // Attach mode's first line is the administrator's rules, which a dry run neither feeds
        // nor hears: taken out of service (by elements; none to take when the table lacks it),
        // as a reload into a dry run does. A host that gives no firewall (a replay) has no
        // kernel to change.
        // It stays out: the dry run watches that table, and each restore (the administrator's
        // ruleset loaded anew brings the snippet back on empty sets) takes it out again.
        if let Backend::Nft(config::NftConfig::Attach {
            first_line: Some(_),
            ..
        }) = &config.backend
            && let Ok(mut attached) = host.firewall(&config.backend)
        {
            match attached.remove_first_line() {
                Ok(()) => {
                    return Ok((Mode::DryRun, Box::new(DryRun::keeping_out(attached))));
                }
                Err(FirewallError::Missing { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        return Ok((Mode::DryRun, Box::new(DryRun::default())));
    }
    Ok((Mode::Enforcing, host.firewall(&config.backend)?))
}

/// Whether traffic from the host's own addresses is left alone: the configuration's
/// `local-check`, unless `-L` turned it off.
fn local_check(config: &Config, options: &Options) -> bool {
    config.local_check && !options.disable_local_check
}
