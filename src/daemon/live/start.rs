//! Starting the daemon: everything from the configuration to READY=1, each failure one
//! [`StartError`] with the exit code it maps to. **Shell.**

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};

use super::system::System;
use super::{Daemon, Event, Verbosity, Wake, spawn_signals};
use crate::capture::connect::TrapSockets;
use crate::capture::raw::RawCapture;
use crate::capture::{Live, LiveCapture, LiveSettings};
use crate::config::{Backend, Config, Loaded, Method};
use crate::control::server::Server;
use crate::daemon::detach::{PidFile, Readiness};
use crate::daemon::fleet::Link;
use crate::daemon::hook::Hooks;
use crate::engine::{Engine, HostError, NeverBlock, Options, SetupError};
use crate::exit;
use crate::firewall::FirewallError;
use crate::host;
use crate::report::Mode;
use crate::state;
use crate::time::SteadyClock;

/// Why the daemon could not start (or could not build the never-block list): the error, the
/// exit code it maps to, and a hint for the administrator when there is one.
#[derive(Debug)]
pub struct StartError {
    code: u8,
    error: Box<dyn std::error::Error>,
    hint: Option<&'static str>,
}

impl StartError {
    /// `error`, exiting with `code`.
    pub fn new(code: u8, error: impl Into<Box<dyn std::error::Error>>) -> Self {
        StartError {
            code,
            error: error.into(),
            hint: None,
        }
    }

    /// The same, with a hint printed after it.
    fn hint(self, hint: &'static str) -> Self {
        StartError {
            hint: Some(hint),
            ..self
        }
    }

    /// Prints the error (and the hint) on stderr; the exit code.
    pub fn report(&self) -> ExitCode {
        exit::report("sentryd", &*self.error);
        if let Some(hint) = self.hint {
            eprintln!("hint: {hint}");
        }
        exit::code(self.code)
    }
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

impl From<FirewallError> for StartError {
    fn from(e: FirewallError) -> Self {
        let code = match e {
            FirewallError::Permission | FirewallError::NotPermitted(_) => exit::NOPERM,
            FirewallError::Attach(_) => exit::CONFIG,
            _ => exit::FAILURE,
        };
        StartError::new(code, e)
    }
}

impl From<HostError> for StartError {
    fn from(e: HostError) -> Self {
        let code = match e {
            HostError::Interfaces(_) => exit::FAILURE,
            HostError::NeverBlockFile(_) | HostError::Configuration { .. } => exit::CONFIG,
        };
        StartError::new(code, e)
    }
}

impl From<SetupError> for StartError {
    fn from(e: SetupError) -> Self {
        match e {
            SetupError::Host(e) => e.into(),
            SetupError::Firewall(e) => e.into(),
            SetupError::Listeners(e) => failed(e),
        }
    }
}

/// A failure of the system beneath (a pipe, a socket, a thread): exit 1.
fn failed(e: impl Into<Box<dyn std::error::Error>>) -> StartError {
    StartError::new(exit::FAILURE, e)
}

/// The host's addresses and the never-block list: discovered (interfaces, gateways,
/// nameservers), configured, and from the never-block file.
///
/// # Errors
///
/// The interfaces cannot be listed (exit 1), or the never-block file cannot be read (exit 78).
pub fn never_block(config: &Config) -> Result<NeverBlock, StartError> {
    Ok(crate::engine::never_block(
        &mut System::without_routes(),
        config,
    )?)
}

/// A started daemon and what its loop reads: the captures or trap sockets, and the events of
/// the other threads.
pub(super) struct Running {
    pub(super) daemon: Daemon,
    pub(super) captures: Vec<Live>,
    /// Connect mode's trap sockets.
    pub(super) traps_bound: Option<TrapSockets>,
    /// The read end of the wake-up pipe the other threads write to.
    pub(super) wake_read: OwnedFd,
    pub(super) events: Receiver<Event>,
    /// The control socket's path, removed at the end.
    pub(super) socket_path: PathBuf,
    /// `--pidfile`, removed when this is dropped.
    pub(super) _pidfile: Option<PidFile>,
}

/// Starts the daemon: logging, the never-block list, the firewall, the pipeline, the state
/// reconciled with the kernel, the captures, the control socket and the watchers; says
/// "watching …", writes the pid file and says it is ready (to systemd, or to the foreground
/// process of `-D`).
pub(super) fn start(
    loaded: Loaded,
    config_path: Option<PathBuf>,
    verbosity: Verbosity,
    disable_local_check: bool,
    readiness: Readiness,
) -> Result<Running, StartError> {
    let mut loaded = loaded;
    let config = loaded.config.clone();
    let logger = crate::daemon::log::install(
        config.log.target,
        config.log.format,
        if verbosity >= Verbosity::Debug {
            tracing::Level::DEBUG
        } else {
            tracing::Level::INFO
        },
        readiness.detached(),
    );
    drop_inheritable_capabilities();
    let clock = SteadyClock::new();
    let options = Options {
        verbosity,
        disable_local_check,
        decisions: false,
        seed: RandomState::new().hash_one(std::process::id()),
    };
    crate::daemon::fleet::name_host(&mut loaded.config)
        .map_err(|e| StartError::new(exit::CONFIG, e))?;
    let config = loaded.config.clone();
    let saved = saved_state(&config);
    // Another daemon answering on the control socket stops this start before it touches the
    // kernel (its first line taken out of service by a dry run, its sets filled anew), not
    // only when the socket is bound after the firewall is made ready.
    crate::control::server::clear_stale_socket(&config.daemon.socket).map_err(failed)?;
    let engine = Engine::start(
        loaded,
        options,
        Box::new(clock),
        Box::new(System::new(config_path)),
        saved,
    )?;
    let mut daemon = Daemon {
        engine,
        clock,
        auditor: spawn_audit(&config),
        hooks: Hooks::new(
            config.respond.on_block.clone(),
            config.respond.on_block_timeout,
        ),
        logger,
        reloads: crate::metrics::Reloads::default(),
        link: None,
        capture_drops: 0,
        wake: None,
        holds: super::Holds::new(),
        saver: super::Saver::default(),
    };
    daemon.carry_out();

    let traps_bound = bind_traps(&daemon, &config)?;
    let captures = open_captures(&config)?;
    let (wake_read, events, link) = spawn_threads(&mut daemon, &config)?;
    daemon.link = link;
    daemon.tell_addresses();
    say_watching(&daemon, &config, &captures, traps_bound.as_ref());
    let pidfile = readiness.ready().map_err(failed)?;
    Ok(Running {
        daemon,
        captures,
        traps_bound,
        wake_read,
        events,
        socket_path: config.daemon.socket.clone(),
        _pidfile: pidfile,
    })
}

/// The periodic audit's thread, or `None` (said) when it cannot start.
fn spawn_audit(config: &Config) -> Option<crate::daemon::audit::Auditor> {
    match crate::daemon::audit::Auditor::spawn(
        config.audit.clone(),
        crate::audit::store::default_path(&config.daemon.state_dir),
    ) {
        Ok(a) => Some(a),
        Err(e) => {
            tracing::warn!("cannot start the audit: {e}");
            None
        }
    }
}

/// Under the unit, CAP_NET_ADMIN and CAP_NET_RAW come as ambient (and inheritable)
/// capabilities, which every program sentryd starts would inherit. They are sentryd's own: the
/// on-block program runs with the user's rights only.
fn drop_inheritable_capabilities() {
    for set in [caps::CapSet::Ambient, caps::CapSet::Inheritable] {
        if let Err(e) = caps::clear(None, set) {
            tracing::debug!("cannot clear the {set:?} capabilities: {e}");
        }
    }
}

/// The state file, if it can be read (said when it cannot: the start goes on without it).
fn saved_state(config: &Config) -> Option<state::State> {
    let limit = state::size_limit(config.respond.max_blocks);
    match state::load(&config.daemon.state_dir, limit) {
        Ok(saved) => Some(saved),
        Err(e) => {
            tracing::warn!("{e}; starting without saved blocks");
            None
        }
    }
}

/// The threads that feed the main loop: the control socket's, the signals', the nftables and
/// the host watchers, and the fleet's link; returns the read end of their wake-up pipe, their
/// events and the link.
fn spawn_threads(
    daemon: &mut Daemon,
    config: &Config,
) -> Result<(OwnedFd, Receiver<Event>, Option<Link>), StartError> {
    let server = Server::bind(&config.daemon.socket).map_err(failed)?;
    let (wake_read, wake_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(failed)?;
    let (events_tx, events) = mpsc::channel::<Event>();
    let wake = Wake {
        events: events_tx,
        pipe: Arc::new(wake_write),
    };
    let control = wake.clone();
    server.spawn(move |request, uid, reply| control.send(Event::Control(request, uid, reply)));
    if let Some(listen) = &config.metrics {
        let endpoint = crate::daemon::metrics::Endpoint::bind(listen).map_err(failed)?;
        let scrapes = wake.clone();
        endpoint
            .spawn(move |format| {
                let (tx, rx) = mpsc::channel();
                scrapes.send(Event::Metrics(format, tx));
                rx.recv_timeout(std::time::Duration::from_secs(2)).ok()
            })
            .map_err(failed)?;
    }
    spawn_signals(wake.clone()).map_err(failed)?;
    daemon.wake = Some(wake.clone());
    daemon.watch_firewall();
    let host_wake = wake.clone();
    if let Err(e) = host::watch(Box::new(move || {
        host_wake.send(Event::HostChanged);
    })) {
        tracing::warn!(
            "cannot follow interface and address changes ({e}); the \
             never-block list is rebuilt on reload only"
        );
    }
    let link = match &config.fleet {
        Some(fleet) => {
            let host = daemon
                .engine
                .fleet_host()
                .expect("the host is named before the engine starts")
                .clone();
            let fleet_wake = wake.clone();
            let link = Link::start(fleet, host, move || {
                fleet_wake.poke();
                true
            })
            .map_err(|e| StartError::new(exit::CONFIG, e))?;
            Some(link)
        }
        None => None,
    };
    Ok((wake_read, events, link))
}

/// The line that says the daemon is up: what it watches, what it knows, what it does.
fn say_watching(daemon: &Daemon, config: &Config, captures: &[Live], traps: Option<&TrapSockets>) {
    let watching = match traps {
        Some(sockets) => format!("{} trap ports (connect mode)", sockets.len()),
        None => captures
            .iter()
            .map(Live::device)
            .collect::<Vec<_>>()
            .join(", "),
    };
    let engine = &daemon.engine;
    let count = crate::report::count;
    tracing::info!(
        "watching {watching} ({}, {}, {} restored; configuration: {}; control socket {}); {}",
        count(
            engine.local_addresses() as u64,
            "local address",
            "local addresses"
        ),
        count(
            engine.pipeline().never_block().entries().len() as u64,
            "never-block entry",
            "never-block entries"
        ),
        count(engine.blocks_active() as u64, "block", "blocks"),
        engine.origin(),
        config.daemon.socket.display(),
        match (engine.mode(), &config.backend) {
            (Mode::Enforcing, Backend::Nft(_)) => "blocking in nftables",
            (Mode::Enforcing, Backend::Route) => "blocking with blackhole routes",
            (Mode::DryRun, _) => "dry run: nothing is blocked",
        }
    );
}

/// Connect mode: binds the trap ports the daemon listens on itself.
fn bind_traps(daemon: &Daemon, config: &Config) -> Result<Option<TrapSockets>, StartError> {
    if config.capture.method != Method::Connect {
        return Ok(None);
    }
    let traps = daemon.engine.pipeline().traps();
    let (tcp, udp) = (
        traps.bound_ports(crate::wire::Proto::Tcp),
        traps.bound_ports(crate::wire::Proto::Udp),
    );
    match TrapSockets::open(&tcp, &udp, config.capture.banner.as_deref()) {
        Ok((sockets, warnings)) => {
            for w in warnings {
                tracing::warn!("{w}");
            }
            Ok(Some(sockets))
        }
        Err(e) => {
            let code = if e.is_permission() {
                exit::NOPERM
            } else {
                exit::FAILURE
            };
            Err(StartError::new(code, e))
        }
    }
}

/// The packet captures of the configured method (none in connect mode).
fn open_captures(config: &Config) -> Result<Vec<Live>, StartError> {
    let opened = match config.capture.method {
        Method::Connect => Vec::new(),
        Method::Raw => vec![RawCapture::open(&config.capture.interfaces).map(Live::Raw)],
        Method::Pcap => LiveSettings::for_config(&config.capture)
            .iter()
            .map(|settings| LiveCapture::open(settings).map(Live::Pcap))
            .collect(),
    };
    opened
        .into_iter()
        .map(|result| {
            result.map_err(|e| {
                if e.is_permission() {
                    StartError::new(exit::NOPERM, e)
                        .hint("run as root, or with CAP_NET_RAW and CAP_NET_ADMIN")
                } else {
                    failed(e)
                }
            })
        })
        .collect()
}
