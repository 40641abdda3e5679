//! The running daemon. **Shell.**
//!
//! One thread, the main loop, owns the [`Engine`], which decides everything: what a frame, a
//! trap connection, a control request, a host or ruleset change means, and what follows. The
//! loop reads the capture (which hands over frames at least every 5 ms), and between frames
//! takes the events other threads send it: control requests (the control socket's thread),
//! reload and stop (the signal thread), and "the ruleset lost something" (the nftables
//! watcher). It carries the engine's effects out: log lines, the on-block program, the
//! history file, the state file. Nothing else holds a lock or a copy of the state.
//!
//! By job: [`start`] builds everything up to READY=1 (each failure one `StartError` with its
//! exit code), `event_loop` turns frames, events and chores, `system` is the engine's view of
//! this machine; this file carries effects out and reloads.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, TrySendError};

use super::hook::Hooks;
use super::log::Logger;
use super::notify;
use crate::config::{self, Loaded};
use crate::control::protocol::{Request, Response};
use crate::engine::{Effect, Engine, Level, Readings, ReloadBy};
use crate::exit;
use crate::firewall::{KernelHold, RulesetChange};
use crate::state;
use crate::time::SteadyClock;

pub use crate::engine::{NeverBlock, Verbosity};
pub use start::never_block;

mod event_loop;
mod start;
mod system;

/// What other threads tell the main loop.
enum Event {
    /// A request, the uid of the peer that asked it, where to answer.
    Control(Request, u32, Sender<Response>),
    /// A scrape of the Prometheus endpoint: the exposition in this format, now.
    Metrics(crate::metrics::Format, Sender<String>),
    Reload,
    Stop,
    Firewall(crate::firewall::RulesetChange),
    HostChanged,
    /// The saver's thread wrote the state (the blocks it held), or could not.
    Saved(Result<usize, String>),
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
        self.poke();
        sent
    }

    /// Wakes the main loop with no event (the fleet's messages wait in the link's queues).
    fn poke(&self) {
        // A full pipe already holds a wake-up; nothing else can fail here that matters.
        let _ = nix::unistd::write(self.pipe.as_fd(), &[1]);
    }
}

/// Frames handled before the main loop looks at its events again.
const FRAMES_PER_TURN: usize = 4096;
/// Blocks and unblocks from the fleet the main loop takes in one turn at most (before the
/// captures' frames again).
const FLEET_BLOCKS_PER_TURN: usize = 256;
/// Probe summaries and heartbeats from the fleet the main loop takes in one turn at most: a
/// flood of valid summaries cannot delay a local capture's block by more than a few.
const FLEET_OTHERS_PER_TURN: usize = 16;
/// Holds of the kernel's first line waiting for the main loop, at most: 4,096 reports of a
/// few dozen bytes (about 160 KiB), as many as the kernel's hold set of one family holds. Past
/// it a report is dropped and counted; its hold ends by itself within `first-line-hold`, and
/// the daemon still judges its source from the capture.
const HOLDS_QUEUED: usize = 4096;
/// Holds the main loop takes in one turn at most (before the captures' frames again).
const HOLDS_PER_TURN: usize = 1024;
/// How often systemd hears the counters.
const STATUS_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// What the main loop owns: the engine, and what carries its effects out.
struct Daemon {
    engine: Engine,
    /// The daemon's time: it does not step when the system clock does (the engine's copy).
    clock: SteadyClock,
    /// The periodic audit's settings.
    auditor: Option<super::audit::Auditor>,
    hooks: Hooks,
    logger: Logger,
    /// Reloads taken and refused, for metrics.
    reloads: crate::metrics::Reloads,
    /// The link to the fleet, in fleet mode.
    link: Option<super::fleet::Link>,
    /// The captures' drop counters, as last read.
    capture_drops: u64,
    /// How the firewall's watcher wakes the main loop (once the threads run).
    wake: Option<Wake>,
    /// The holds the kernel's first line reports, on their way to the main loop.
    holds: Holds,
    /// The state file's writer.
    saver: Saver,
}

/// The state file, written by a thread of its own: a save syncs the file and its directory
/// (1 to 4 ms on the lab's host, every second while blocks change), which on the main loop
/// held up every frame that arrived meanwhile. The main loop hands over each state to save;
/// one not yet taken is replaced by the newer (a state is whole, the newer supersedes it).
/// Each state carries a number, and a state older than one already written is never written
/// (a save in place at a stop comes after the thread's, whatever the timing).
#[derive(Clone, Default)]
struct Saver {
    shared: Arc<SaverShared>,
}

struct SaverShared {
    /// The state waiting for the thread, its number and directory.
    pending: std::sync::Mutex<Option<(u64, PathBuf, state::State)>>,
    ready: std::sync::Condvar,
    /// The number of the last state written; held while writing.
    written: std::sync::Mutex<u64>,
    /// The last number handed out.
    issued: AtomicU64,
    /// The thread, once started (one that has stopped is replaced at the next hand-over).
    thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    /// How long a save in place waits for the thread's write in progress ([`STOP_WAIT`]).
    wait: std::time::Duration,
    /// Hand-overs in a row that found the state before still waiting for the thread.
    waiting: std::sync::atomic::AtomicU32,
}

/// Hand-overs in a row that find the state before still waiting, past which the thread's
/// write is said to hang (the engine warns once, as for a failed save): 30 s of saves at one
/// a second, where a save takes milliseconds.
const WAITING_AT_MOST: u32 = 30;

/// How long a stop's save waits for the saver's write in progress at most: storage that hangs
/// never holds the stop until systemd kills it (90 s by default), and the state could not be
/// written there anyway.
const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

impl Default for SaverShared {
    fn default() -> Self {
        SaverShared {
            pending: std::sync::Mutex::default(),
            ready: std::sync::Condvar::default(),
            written: std::sync::Mutex::default(),
            issued: AtomicU64::default(),
            thread: std::sync::Mutex::default(),
            wait: STOP_WAIT,
            waiting: std::sync::atomic::AtomicU32::default(),
        }
    }
}

impl Saver {
    /// Writes `state` in `dir` now, unless a newer state was written already; the blocks it
    /// held, or why it could not. A write of the thread in progress is waited for, at most
    /// [`STOP_WAIT`].
    fn write_now(&self, dir: &std::path::Path, state: &state::State) -> Result<usize, String> {
        let seq = self.shared.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let step = std::time::Duration::from_millis(10);
        let tries = self.shared.wait.as_millis() / step.as_millis() + 1;
        for _ in 0..tries {
            match self.shared.written.try_lock() {
                Ok(written) => {
                    return self
                        .write_locked(written, seq, dir, state)
                        .unwrap_or(Ok(state.blocks.len()));
                }
                Err(std::sync::TryLockError::Poisoned(e)) => {
                    return self
                        .write_locked(e.into_inner(), seq, dir, state)
                        .unwrap_or(Ok(state.blocks.len()));
                }
                Err(std::sync::TryLockError::WouldBlock) => std::thread::sleep(step),
            }
        }
        Err(format!(
            "{}: the previous save has not finished in {} s",
            dir.join(state::FILE).display(),
            self.shared.wait.as_secs()
        ))
    }

    /// Writes `state` (number `seq`) in `dir`, unless a newer state was written already
    /// (`None`).
    fn write(
        &self,
        seq: u64,
        dir: &std::path::Path,
        state: &state::State,
    ) -> Option<Result<usize, String>> {
        let written = self
            .shared
            .written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.write_locked(written, seq, dir, state)
    }

    /// [`Saver::write`], the last number written held.
    fn write_locked(
        &self,
        mut written: std::sync::MutexGuard<'_, u64>,
        seq: u64,
        dir: &std::path::Path,
        state: &state::State,
    ) -> Option<Result<usize, String>> {
        if *written > seq {
            return None;
        }
        let result = state::save(dir, state)
            .map(|()| state.blocks.len())
            .map_err(|e| exit::chain(&e));
        *written = seq;
        Some(result)
    }

    /// Hands `state` to the thread (started on first use, its outcome sent to `wake`); gives
    /// it back when no thread runs (the caller saves in place).
    fn hand_over(
        &self,
        dir: PathBuf,
        state: state::State,
        wake: Option<&Wake>,
    ) -> Result<(), state::State> {
        let mut thread = self
            .shared
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if thread
            .as_ref()
            .is_none_or(std::thread::JoinHandle::is_finished)
        {
            let Some(wake) = wake else {
                return Err(state);
            };
            let saver = self.clone();
            let wake = wake.clone();
            let spawned = std::thread::Builder::new()
                .name("saver".into())
                .spawn(move || saver.serve(&wake));
            match spawned {
                Ok(spawned) => *thread = Some(spawned),
                Err(_) => return Err(state),
            }
        }
        drop(thread);
        let seq = self.shared.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let mut pending = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if pending.replace((seq, dir, state)).is_some() {
            self.shared.waiting.fetch_add(1, Ordering::SeqCst);
        } else {
            self.shared.waiting.store(0, Ordering::SeqCst);
        }
        drop(pending);
        self.shared.ready.notify_one();
        Ok(())
    }

    /// Why the thread's write is said to hang ([`WAITING_AT_MOST`]), if it is.
    fn hung(&self, dir: &std::path::Path) -> Option<String> {
        (self.shared.waiting.load(Ordering::SeqCst) >= WAITING_AT_MOST).then(|| {
            format!(
                "{}: the previous save has not finished in {WAITING_AT_MOST} s",
                dir.join(state::FILE).display()
            )
        })
    }

    /// The thread: each state handed over, written, its outcome told to the main loop.
    fn serve(&self, wake: &Wake) {
        loop {
            let (seq, dir, state) = {
                let mut pending = self
                    .shared
                    .pending
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                loop {
                    if let Some(next) = pending.take() {
                        self.shared.waiting.store(0, Ordering::SeqCst);
                        break next;
                    }
                    pending = self
                        .shared
                        .ready
                        .wait(pending)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
            };
            if let Some(result) = self.write(seq, &dir, &state)
                && !wake.send(Event::Saved(result))
            {
                return;
            }
        }
    }
}

/// The bounded queue of the first line's holds ([`HOLDS_QUEUED`]): the watcher's thread
/// sends, the main loop takes; what a full queue drops is counted.
struct Holds {
    send: SyncSender<KernelHold>,
    take: Receiver<KernelHold>,
    dropped: Arc<AtomicU64>,
    /// `dropped` as the engine was last told.
    told: u64,
    /// The firewall's count of reports the kernel lost, as the engine was last told.
    lost_told: u64,
    /// The firewall's count of holds whose packet could not be read, as the engine was last
    /// told.
    unreadable_told: u64,
}

impl Holds {
    fn new() -> Self {
        let (send, take) = std::sync::mpsc::sync_channel(HOLDS_QUEUED);
        Holds {
            send,
            take,
            dropped: Arc::default(),
            told: 0,
            lost_told: 0,
            unreadable_told: 0,
        }
    }

    /// What the first line's watcher calls for each hold (from its thread): the report
    /// queued and the main loop woken, or, the queue full, counted as dropped.
    fn sender(&self, wake: Wake) -> Box<dyn Fn(KernelHold) + Send> {
        let (send, dropped) = (self.send.clone(), self.dropped.clone());
        Box::new(move |hold| match send.try_send(hold) {
            Ok(()) => wake.poke(),
            Err(TrySendError::Full(_)) => {
                dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => {}
        })
    }
}

/// Runs until SIGTERM or SIGINT; returns the exit code.
pub fn run(
    loaded: Loaded,
    config_path: Option<PathBuf>,
    verbosity: Verbosity,
    disable_local_check: bool,
    readiness: super::detach::Readiness,
) -> ExitCode {
    match start::start(
        loaded,
        config_path,
        verbosity,
        disable_local_check,
        readiness,
    ) {
        Ok(running) => running.serve(),
        Err(e) => e.report(),
    }
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

/// `sentryd --remove-blocks`: every block lifted and what sentryd built in the firewall
/// removed, whatever `dry-run` says now (an earlier run may have blocked), and the state
/// file's blocks forgotten (its offence history kept); says what went.
/// Refused, with nothing changed (exit 1), while a daemon answers on the configuration's
/// control socket: it would put back within a second what this lifts.
pub fn remove_blocks(config: &config::Config) -> ExitCode {
    let socket = &config.daemon.socket;
    if std::os::unix::net::UnixStream::connect(socket).is_ok() {
        eprintln!(
            "sentryd: error: a sentryd answers on {}: it would put back within a second what \
             --remove-blocks lifts; stop it first (systemctl stop scansentry), then run this \
             again; nothing was changed",
            socket.display()
        );
        return exit::code(exit::FAILURE);
    }
    let removed = system::open_firewall(&config.backend).and_then(|mut f| f.remove_all());
    match removed {
        Ok(lifted) => {
            let what = match &config.backend {
                config::Backend::Nft(crate::firewall::nft::NftConfig::Own { .. }) => {
                    "table inet scansentry is gone"
                }
                config::Backend::Nft(nft) if nft.first_line().is_some() => {
                    "lifted the blocks in the attach-mode sets and took the kernel's first line \
                     out of service (every address in allow4/allow6)"
                }
                config::Backend::Nft(_) => "lifted the blocks in the attach-mode sets",
                config::Backend::Route => "lifted the blackhole routes",
            };
            println!(
                "{what}: {} lifted; {}",
                crate::report::count(lifted as u64, "block", "blocks"),
                forget_saved_blocks(config)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            exit::report("sentryd", &e);
            exit::code(exit::FAILURE)
        }
    }
}

/// After `--remove-blocks` lifted them: the state file forgets its blocks, so that the next
/// start puts none back; its offence history stays. What it did, as the command says it.
fn forget_saved_blocks(config: &config::Config) -> String {
    let dir = &config.daemon.state_dir;
    let limit = crate::state::size_limit(config.respond.max_blocks);
    match crate::state::forget_blocks(dir, limit) {
        Ok(forgot) => format!(
            "the state file forgets {} (no start puts them back; its offence history stays)",
            crate::report::count(forgot as u64, "saved block", "saved blocks")
        ),
        Err(e) => format!(
            "the state file was left as it is ({}; a start does not put back the blocks of a \
             state file it cannot read either)",
            exit::chain(&e)
        ),
    }
}

impl Daemon {
    /// Carries out what the engine decided.
    fn carry_out(&mut self) {
        // A save's outcome is itself said: the loop ends when nothing more comes.
        loop {
            let effects = self.engine.take_effects();
            if effects.is_empty() {
                return;
            }
            for effect in effects {
                self.carry_out_one(effect);
            }
        }
    }

    fn carry_out_one(&mut self, effect: Effect) {
        {
            match effect {
                Effect::Log(Level::Debug, line) => tracing::debug!("{line}"),
                Effect::Log(Level::Info, line) => tracing::info!("{line}"),
                Effect::Log(Level::Warn, line) => tracing::warn!("{line}"),
                Effect::Decision(event) => super::log::decision(&event),
                Effect::Act(level, act) => super::log::act(
                    &act,
                    match level {
                        Level::Warn => tracing::Level::WARN,
                        _ => tracing::Level::INFO,
                    },
                ),
                Effect::Decided { .. } | Effect::Decoy { .. } => {}
                Effect::Blocked {
                    detection,
                    net,
                    ttl,
                } => self.hooks.on_block(&detection, net, ttl),
                Effect::History { path, line } => append_history(&path, &line),
                Effect::Fleet { body, to } => {
                    if let Some(link) = &self.link {
                        link.send(body, to.as_ref());
                    }
                }
                Effect::Save(state) => {
                    let dir = self.engine.config().daemon.state_dir.clone();
                    if let Err(state) = self.saver.hand_over(dir.clone(), state, self.wake.as_ref())
                    {
                        let result = self.saver.write_now(&dir, &state);
                        self.engine.saved(result);
                    } else if let Some(hung) = self.saver.hung(&dir) {
                        // Said once, as a failed save; the thread's outcome says when it works.
                        self.engine.saved(Err(hung));
                    }
                }
                Effect::Watch => self.watch_firewall(),
            }
        }
    }

    /// What the engine reads of the shell's parts when it answers: the captures' drops, the
    /// link's figures.
    fn readings(&self) -> Readings {
        Readings {
            capture_drops: self.capture_drops,
            link: self.link.as_ref().map(super::fleet::Link::figures),
        }
    }

    /// Saves the state now, on this thread (at a stop, or before exiting on a failure): after
    /// any save of the saver's thread, never before it.
    fn save_now(&mut self) {
        let state = self.engine.state();
        let result = self
            .saver
            .write_now(&self.engine.config().daemon.state_dir, &state);
        self.engine.saved(result);
        self.carry_out();
    }

    /// Takes every pending event; returns whether to stop.
    fn on_events(&mut self, events: &Receiver<Event>) -> bool {
        let mut host_changed = false;
        let mut deleted = Vec::new();
        while let Ok(event) = events.try_recv() {
            match event {
                Event::Control(request, uid, reply) => {
                    self.engine.asked_by(Some(uid));
                    let answer = match request {
                        Request::Reload => self.reload(ReloadBy::Request),
                        request => self.engine.request(request, &self.readings()),
                    };
                    self.engine.asked_by(None);
                    let _ = reply.send(answer);
                }
                Event::Metrics(format, reply) => {
                    let status = self.engine.status(&self.readings());
                    let text = crate::metrics::exposition(
                        &status,
                        self.engine.tally(),
                        self.reloads,
                        format,
                    );
                    let _ = reply.send(text);
                }
                Event::Stop => return true,
                Event::Reload => {
                    self.reload(ReloadBy::Signal);
                }
                Event::Firewall(RulesetChange::Lost) => self.engine.firewall_changed(),
                Event::Firewall(RulesetChange::Missed) => self.engine.notifications_missed(),
                Event::Firewall(RulesetChange::ElementsDeleted(nets)) => {
                    // Taken together after the events: one read of the kernel for all.
                    deleted.extend(nets);
                    continue;
                }
                Event::HostChanged => host_changed = true,
                Event::Saved(result) => self.engine.saved(result),
            }
            self.carry_out();
        }
        if !deleted.is_empty() {
            self.engine.elements_deleted(&deleted);
            self.carry_out();
        }
        if host_changed {
            self.engine.host_changed();
            self.carry_out();
            self.tell_addresses();
        }
        false
    }

    /// Hands the link the addresses this host's heartbeats claim (at start, and when the
    /// host's addresses change).
    pub(super) fn tell_addresses(&self) {
        if let Some(link) = &self.link {
            link.set_addresses(self.engine.fleet_addresses());
        }
    }

    /// Takes at most [`FLEET_BLOCKS_PER_TURN`] blocks and unblocks and
    /// [`FLEET_OTHERS_PER_TURN`] other messages from the fleet's link; returns whether more wait.
    fn take_fleet(&mut self) -> bool {
        let Some(link) = &self.link else {
            return false;
        };
        let (messages, more) = link.take(FLEET_BLOCKS_PER_TURN, FLEET_OTHERS_PER_TURN);
        for message in messages {
            self.engine.fleet_message(message);
            self.carry_out();
        }
        more
    }

    /// Watches the ruleset for the firewall in force (at start, and when a reload changed it),
    /// once the threads run.
    fn watch_firewall(&self) {
        let Some(wake) = self.wake.clone() else {
            return;
        };
        let holds_wake = wake.clone();
        let changed = Box::new(move |change| {
            wake.send(Event::Firewall(change));
        });
        if let Err(e) = self.engine.firewall().watch(changed) {
            tracing::warn!(
                "cannot watch nftables for changes ({e}); a ruleset reload \
                 that removes the table is only noticed at the next block"
            );
        }
        if !self.engine.firewall().has_first_line() {
            return;
        }
        let held = self.holds.sender(holds_wake);
        if let Err(e) = self.engine.firewall().watch_holds(held) {
            tracing::warn!(
                "cannot hear the holds of the kernel's first line ({e}); each ends by \
                 itself after first-line-hold, and the daemon still judges every source \
                 from its capture"
            );
        }
    }

    /// Takes at most [`HOLDS_PER_TURN`] holds of the kernel's first line to the engine, and
    /// tells it how many a full queue dropped since the last look; returns whether more wait.
    fn take_holds(&mut self) -> bool {
        let dropped = self.holds.dropped.load(Ordering::Relaxed);
        if dropped > self.holds.told {
            self.engine.holds_missed(dropped - self.holds.told);
            self.holds.told = dropped;
            self.carry_out();
        }
        // Reports the kernel could not hand the reader (its socket was full): a firewall a
        // reload opened counts from zero again.
        let reports = self.engine.firewall().hold_reports();
        let lost = reports.lost;
        if lost < self.holds.lost_told {
            self.holds.lost_told = 0;
        }
        if lost > self.holds.lost_told {
            self.engine.holds_missed(lost - self.holds.lost_told);
            self.holds.lost_told = lost;
            self.carry_out();
        }
        // Holds whose packet the reader could not read: their sources are unknown, so the
        // engine reads the hold sets.
        if reports.unreadable < self.holds.unreadable_told {
            self.holds.unreadable_told = 0;
        }
        if reports.unreadable > self.holds.unreadable_told {
            self.engine
                .holds_unreadable(reports.unreadable - self.holds.unreadable_told);
            self.holds.unreadable_told = reports.unreadable;
            self.carry_out();
        }
        for _ in 0..HOLDS_PER_TURN {
            let Ok(hold) = self.holds.take.try_recv() else {
                return false;
            };
            self.engine.kernel_held(hold);
            self.carry_out();
        }
        true
    }

    /// A reload, by SIGHUP or `sentryctl reload`: the engine reads the configuration again
    /// and takes it or keeps the old one (and says which); the logger, the audit and the
    /// on-block program follow a new one. The answer for `sentryctl reload`.
    fn reload(&mut self, by: ReloadBy) -> Response {
        notify::reloading();
        let response = self.engine.reload(by);
        self.carry_out();
        notify::ready();
        if !matches!(response, Response::Reloaded { .. }) {
            self.reloads.refused += 1;
            return response;
        }
        self.reloads.done += 1;
        self.tell_addresses();
        let new = self.engine.config();
        self.logger.reconfigure(new.log.target, new.log.format);
        if let Some(auditor) = &self.auditor {
            auditor.reconfigure(new.audit.clone());
        }
        self.hooks = Hooks::new(new.respond.on_block.clone(), new.respond.on_block_timeout);
        response
    }
}

/// Appends `line` to the PortSentry-format history file at `path` (opened anew each time, so
/// that log rotation needs no signal).
fn append_history(path: &std::path::Path, line: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    // Never through a link: the file's directory may be another user's.
    let written = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(path)
        .and_then(|mut f| writeln!(f, "{line}"));
    if let Err(e) = written {
        tracing::warn!("cannot write the history file {}: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Wake` of `events`, and the read end of its pipe.
    fn wake_of(events: std::sync::mpsc::Sender<Event>) -> (Wake, std::os::fd::OwnedFd) {
        let (read, write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC)
                .unwrap();
        let wake = Wake {
            events,
            pipe: Arc::new(write),
        };
        (wake, read)
    }

    /// Issue 27: the state is written by the saver's thread, its outcome sent to the main
    /// loop; a state older than one written is never written over it (a stop's save in place
    /// wins over a thread that was late).
    #[test]
    fn issue_27_the_state_is_saved_off_the_main_loop_and_never_by_an_older_one() {
        let (events, outcomes) = std::sync::mpsc::channel();
        let (wake, wake_read) = wake_of(events);
        let dir = std::env::temp_dir().join(format!("scansentry-saver-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let saver = Saver::default();
        let state = state::State::default();
        // Without a way to tell the main loop, the state comes back to be saved in place.
        assert!(saver.hand_over(dir.clone(), state.clone(), None).is_err());
        assert!(
            saver
                .hand_over(dir.clone(), state.clone(), Some(&wake))
                .is_ok()
        );
        match outcomes.recv().unwrap() {
            Event::Saved(result) => assert_eq!(result, Ok(0)),
            _ => panic!("not the saver's outcome"),
        }
        assert!(dir.join(state::FILE).exists());
        // The outcome is sent, then the main loop woken: wait for the wake-up (bounded).
        let mut fds = [nix::poll::PollFd::new(
            wake_read.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        assert_eq!(
            nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(5000u16)),
            Ok(1),
            "the main loop is woken"
        );
        let mut woken = [0u8; 1];
        assert_eq!(nix::unistd::read(wake_read.as_fd(), &mut woken), Ok(1));
        // A newer state written in place (number 3), then the thread's older one (2): skipped.
        assert_eq!(saver.write(3, &dir, &state), Some(Ok(0)));
        assert_eq!(saver.write(2, &dir, &state), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Review: a stop's save waits for a write of the saver's thread that hangs (storage that
    /// does not answer) a bounded time, then says it could not save, instead of holding the
    /// stop until systemd kills the daemon.
    #[test]
    fn a_save_in_place_waits_for_a_hung_write_a_bounded_time() {
        let saver = Saver {
            shared: Arc::new(SaverShared {
                wait: std::time::Duration::from_millis(50),
                ..SaverShared::default()
            }),
        };
        let dir = std::env::temp_dir().join(format!("scansentry-hung-{}", std::process::id()));
        // The thread's write in progress, hung.
        let hung = saver.shared.written.lock().unwrap();
        let (outcome, outcomes) = std::sync::mpsc::channel();
        {
            let saver = saver.clone();
            let dir = dir.clone();
            std::thread::spawn(move || {
                let _ = outcome.send(saver.write_now(&dir, &state::State::default()));
            });
        }
        let result = outcomes.recv_timeout(std::time::Duration::from_secs(10));
        drop(hung);
        let error = result.expect("the save in place waited on").unwrap_err();
        assert!(
            error.contains("the previous save has not finished in"),
            "{error}"
        );
        assert!(!dir.join(state::FILE).exists());
    }

    /// Review: a saver's thread that has stopped (its main loop's end of the events gone, or
    /// a panic where panics unwind) is replaced at the next hand-over, not left holding every
    /// state after it unwritten and unsaid.
    #[test]
    fn a_stopped_saver_thread_is_replaced() {
        let dir = std::env::temp_dir().join(format!("scansentry-restart-{}", std::process::id()));
        let saver = Saver::default();
        let state = state::State::default();
        // A thread whose outcome cannot be told: it stops after its first write.
        let (gone, gone_outcomes) = std::sync::mpsc::channel();
        drop(gone_outcomes);
        let (gone, pipe) = wake_of(gone);
        assert!(
            saver
                .hand_over(dir.clone(), state.clone(), Some(&gone))
                .is_ok()
        );
        drop(gone);
        // The pipe's end of file: the thread has dropped its end of it, it is stopping.
        let mut byte = [0u8; 1];
        for _ in 0..1000 {
            if nix::unistd::read(pipe.as_fd(), &mut byte) == Ok(0) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        let (events, outcomes) = std::sync::mpsc::channel();
        let (events, _pipe) = wake_of(events);
        assert!(saver.hand_over(dir.clone(), state, Some(&events)).is_ok());
        drop(events);
        let outcome = outcomes.recv_timeout(std::time::Duration::from_secs(10));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            matches!(outcome, Ok(Event::Saved(Ok(0)))),
            "no outcome: the state was left to a stopped thread"
        );
    }

    /// Review: a write of the saver's thread that hangs (storage that does not answer) is
    /// said, as a failed save is, once the states handed over have waited behind it for
    /// [`WAITING_AT_MOST`] hand-overs; not silent until the stop.
    #[test]
    fn a_hung_write_of_the_saver_is_said() {
        let (events, outcomes) = std::sync::mpsc::channel();
        let (wake, _wake_read) = wake_of(events);
        let dir = std::env::temp_dir().join(format!("scansentry-hung-save-{}", std::process::id()));
        let saver = Saver::default();
        let state = state::State::default();
        // The thread takes the first state, and its write hangs.
        let hang = saver.shared.written.lock().unwrap();
        assert!(
            saver
                .hand_over(dir.clone(), state.clone(), Some(&wake))
                .is_ok()
        );
        for _ in 0..1000 {
            if saver.shared.pending.lock().unwrap().is_none() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(
            saver
                .hand_over(dir.clone(), state.clone(), Some(&wake))
                .is_ok()
        );
        assert_eq!(saver.hung(&dir), None, "one state waiting is no hang");
        for _ in 0..WAITING_AT_MOST + 1 {
            assert!(
                saver
                    .hand_over(dir.clone(), state.clone(), Some(&wake))
                    .is_ok()
            );
        }
        let hung = saver.hung(&dir).expect("the hang is said");
        assert!(
            hung.contains("the previous save has not finished in 30 s"),
            "{hung}"
        );
        // It answers again: the waiting state is written, and no hang is said any more.
        drop(hang);
        let outcome = outcomes.recv_timeout(std::time::Duration::from_secs(10));
        assert!(matches!(outcome, Ok(Event::Saved(Ok(0)))));
        let _ = outcomes.recv_timeout(std::time::Duration::from_secs(10));
        assert_eq!(saver.hung(&dir), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Issue 27: a flood of holds never grows the daemon's memory: past [`HOLDS_QUEUED`] the
    /// reports are counted as dropped, and the main loop is woken for those queued.
    #[test]
    fn issue_27_the_queue_of_holds_is_bounded_and_counts_what_it_drops() {
        let (events, _events) = std::sync::mpsc::channel();
        let (wake, wake_read) = wake_of(events);
        let holds = Holds::new();
        let held = holds.sender(wake);
        let hold = KernelHold {
            source: "203.0.113.7".parse().unwrap(),
            proto: crate::wire::Proto::Tcp,
            port: 902,
            tcp_flags: Some(0x02),
            ifindex: None,
        };
        for _ in 0..HOLDS_QUEUED + 100 {
            held(hold);
        }
        assert_eq!(holds.dropped.load(Ordering::Relaxed), 100);
        assert_eq!(holds.take.try_iter().count(), HOLDS_QUEUED);
        let mut woken = [0u8; 1];
        assert_eq!(nix::unistd::read(wake_read.as_fd(), &mut woken), Ok(1));
    }
}
