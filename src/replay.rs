//! `sentryd --replay FILE`: the daemon's [`Engine`] over a capture file, decisions only
//! (nothing is blocked: a dry-run firewall). **Shell** (reads the file); the work is done by
//! the very engine the daemon runs, with the capture timestamps as its clock and the host the
//! capture shows, so a replay is repeatable. Checks that need the live kernel (the route back
//! to a source, established connections) have nothing to go on here and pass.
//!
//! A capture does not say which addresses were "ours". Unless `--local` names them, they are
//! inferred in a first pass: the destinations of probe-shaped packets that answer nothing.
//! Listening ports are inferred the same way, from SYN+ACKs, SCTP INIT ACKs and UDP answers sent
//! by those addresses (and the IP protocols they answer in), so that a service in the capture
//! is not mistaken for a trap.
//!
//! When the configuration has the kernel's first line (`[firewall] first-line`, own or attach
//! mode), the replay also runs its model ([`crate::first_line`]) over every frame, before the
//! engine sees it (the kernel acts on a probe before the daemon has read it), and says each
//! hold the kernel would have made, beside the daemon's decisions. The model is fed what the
//! daemon would feed the kernel: the listening ports inferred, the tripwires, the never-block
//! list as the allow sets, no protected peers (a capture shows no socket table), and the blocks
//! the engine decides (the block chain drops those sources before the first line).

use std::collections::BTreeSet;
use std::io;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::capture::{CaptureError, PcapFile};
use crate::config::nft::NftConfig;
use crate::config::{self, Backend, Config, LINUX_EPHEMERAL_PORTS};
use crate::detect::traps::Listeners;
use crate::detect::{Detection, DetectorStats};
use crate::engine::{Effect, Engine, Host, HostError, Level, Options, SetupError};
use crate::firewall::{Firewall, FirewallError, FirstLineFacts};
use crate::first_line::{self, FirstLineModel, Hold, Outcome};
use crate::never_block::{self, discover::HostState};
use crate::pipeline::{Counters, RecentFlows};
use crate::respond::Decision;
use crate::time::{ManualClock, Timestamp};
use crate::trust::{ReversePath, RouteBack};
use crate::wire::reassembly::{self, Reassembler};
use crate::wire::{self, Proto, TcpFlags};

/// The hash seed of a replay's conversation memory: fixed, so that replays repeat exactly.
const REPLAY_SEED: u64 = 0x5ca7_5e47_7e57_da7a;

/// What to replay, and how.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    /// The capture file.
    pub capture: PathBuf,
    /// The configuration to run.
    pub config: Config,
    /// The local addresses; empty to infer them from the capture.
    pub locals: Vec<IpAddr>,
    /// `-L`: the local check is off whatever the configuration says.
    pub disable_local_check: bool,
}

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The capture could not be read.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// The never-block file named by the configuration could not be read.
    #[error(transparent)]
    NeverBlockFile(#[from] never_block::NeverBlockFileError),
    /// The engine could not start (not for a capture's host: listed for completeness).
    #[error(transparent)]
    Engine(SetupError),
}

impl From<SetupError> for ReplayError {
    fn from(e: SetupError) -> Self {
        match e {
            SetupError::Host(HostError::NeverBlockFile(e)) => ReplayError::NeverBlockFile(e),
            e => ReplayError::Engine(e),
        }
    }
}

/// The host a capture shows: its local addresses and the listening sockets answers came from;
/// no routes, no connections, no firewall to open (a replay runs dry, by the engine's rule).
struct CaptureHost {
    locals: Vec<IpAddr>,
    listeners: Listeners,
}

impl Host for CaptureHost {
    fn host_state(&mut self) -> Result<HostState, HostError> {
        Ok(HostState {
            interfaces: self.locals.iter().map(|&a| ("capture".into(), a)).collect(),
            ..HostState::default()
        })
    }

    fn read_file(&mut self, path: &Path) -> io::Result<String> {
        crate::host::read_text(path)
    }

    fn firewall(&mut self, _: &Backend) -> Result<Box<dyn Firewall>, FirewallError> {
        Err(FirewallError::NotPermitted(
            "a replay changes no firewall".into(),
        ))
    }

    fn configuration(&mut self) -> Result<config::Loaded, HostError> {
        Err(HostError::Configuration {
            line: "a replay reads no configuration again".into(),
            report: None,
        })
    }

    fn local_port_range(&self) -> RangeInclusive<u16> {
        LINUX_EPHEMERAL_PORTS
    }

    fn listeners(&mut self) -> io::Result<Listeners> {
        Ok(self.listeners.clone())
    }

    fn established(&mut self) -> io::Result<Vec<(IpAddr, u16, u16)>> {
        Ok(Vec::new())
    }

    fn route_back(&mut self, _: IpAddr) -> Option<io::Result<RouteBack>> {
        None
    }

    fn routes_changed(&mut self) {}

    fn kernel_reverse_path(&self, _: Option<u32>) -> ReversePath {
        ReversePath::Off
    }

    fn interface_name(&self, index: u32) -> String {
        format!("interface {index}")
    }
}

/// What a replay reports as it goes, in capture order.
#[derive(Clone, Copy, Debug)]
pub enum Found<'a> {
    /// A detection, with the engine's decision.
    Decided(&'a Detection, &'a Decision),
    /// A hold the kernel's first line would have made.
    Held(&'a Hold),
    /// A likely decoy (`nmap -D`), and the short hold its block was cut to.
    Decoy(&'a crate::detect::decoy::Verdict, Option<Duration>),
}

/// What the kernel's first line would have done over the capture (its model's counters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirstLineSummary {
    /// How long a hold lasts (`first-line-hold`).
    pub hold: Duration,
    /// The model's counters.
    pub counters: first_line::Counters,
    /// Distinct sources held.
    pub sources_held: u64,
}

/// What a replay found, besides the detections it reported as it went.
#[derive(Clone, Debug)]
pub struct Summary {
    /// The local addresses used.
    pub locals: Vec<IpAddr>,
    /// Whether they were inferred from the capture (rather than given).
    pub inferred: bool,
    /// Listening sockets inferred from the capture.
    pub listeners: Vec<(Proto, IpAddr, u16)>,
    /// Timestamps of the first and last frames.
    pub span: Option<(Timestamp, Timestamp)>,
    /// The pipeline's counters.
    pub counters: Counters,
    /// The detector's memory counters.
    pub detector: DetectorStats,
    /// Decisions made: blocks, already blocked, never-block.
    pub blocks: u64,
    /// Detections of sources that were blocked already.
    pub already_blocked: u64,
    /// Detections of never-block sources.
    pub never_block: u64,
    /// Detections refused because `max-blocks` blocks were active.
    pub over_budget: u64,
    /// Detections with fewer trap ports than `min-ports`, reported and not blocked.
    pub too_few_ports: u64,
    /// Warnings (bad lines of the never-block file).
    pub warnings: Vec<String>,
    /// The kernel's first line, when the configuration has one.
    pub first_line: Option<FirstLineSummary>,
}

/// Runs the replay, calling `report` for every detection with the decision taken.
///
/// # Errors
///
/// When the capture or the never-block file cannot be read.
pub fn run(
    options: &ReplayOptions,
    mut report: impl FnMut(&Detection, &Decision),
) -> Result<Summary, ReplayError> {
    run_all(options, |found| {
        if let Found::Decided(detection, decision) = found {
            report(detection, decision);
        }
    })
}

/// The kernel's first line of `config`, if it has one (`first-line` on, in own or attach
/// mode), and the size of the block sets (attach mode's are the administrator's: the size
/// own mode would give them).
fn first_line_of(config: &Config) -> Option<(Duration, usize)> {
    let Backend::Nft(nft) = &config.backend else {
        return None;
    };
    let line = nft.first_line()?;
    let set_size = match nft {
        NftConfig::Own { set_size, .. } => *set_size,
        NftConfig::Attach { .. } => config::nft::set_size(config.respond.max_blocks),
    };
    Some((line.hold, usize::try_from(set_size).unwrap_or(usize::MAX)))
}

/// The facts the daemon would load into the first line's sets, as far as a capture shows
/// them: listening ports on any address, no peers, Linux's ephemeral range for `auto`.
fn first_line_facts(config: &Config, listened: &[(Proto, IpAddr, u16)]) -> FirstLineFacts {
    let listening = listened
        .iter()
        .map(|&(proto, _, port)| (proto, port))
        .collect();
    crate::first_line::facts(config, listening, Vec::new(), LINUX_EPHEMERAL_PORTS)
}

/// Runs the replay, calling `report` for every detection with the decision taken and for
/// every hold the kernel's first line would have made, in capture order.
///
/// # Errors
///
/// When the capture or the never-block file cannot be read.
pub fn run_all(
    options: &ReplayOptions,
    mut report: impl FnMut(Found<'_>),
) -> Result<Summary, ReplayError> {
    let config = &options.config;
    let inferred = infer(&options.capture)?;
    let (locals, was_inferred) = if options.locals.is_empty() {
        (inferred.locals.iter().copied().collect::<Vec<_>>(), true)
    } else {
        (options.locals.clone(), false)
    };
    let listened: Vec<(Proto, IpAddr, u16)> = inferred
        .listeners
        .iter()
        .filter(|(_, addr, _)| locals.contains(addr))
        .copied()
        .collect();
    let mut listeners = Listeners::new();
    for &(proto, addr, port) in &listened {
        listeners.insert(proto, Some(addr), port);
    }
    let facts = first_line_facts(config, &listened);
    let clock = Arc::new(ManualClock::new(Timestamp::ZERO));
    let host = CaptureHost {
        locals: locals.clone(),
        listeners,
    };
    let engine_options = Options {
        verbosity: crate::engine::Verbosity::Normal,
        disable_local_check: options.disable_local_check,
        decisions: true,
        seed: REPLAY_SEED,
    };
    // Nothing is blocked: a replay runs dry, by the engine's rule for a dry run.
    let mut config = config.clone();
    config.respond.dry_run = true;
    let loaded = config::Loaded {
        config,
        origin: config::Origin::BuiltIn,
        warnings: Vec::new(),
    };
    let mut engine = Engine::start(
        loaded,
        engine_options,
        Box::new(clock.clone()),
        Box::new(host),
        None,
    )?;
    let mut summary = Summary::new(locals, was_inferred, listened);
    let mut line = first_line_of(&options.config).map(|(hold, blocked)| {
        let allow = engine.pipeline().never_block().clone();
        Line::new(hold, blocked, &summary.locals, allow, &facts)
    });
    summary.take(engine.take_effects(), Timestamp::ZERO, None, &mut report);

    let mut file = PcapFile::open(&options.capture)?;
    let link = file.link();
    while let Some(frame) = file.next_frame()? {
        summary.span = Some(match summary.span {
            None => (frame.at, frame.at),
            Some((first, _)) => (first, frame.at),
        });
        clock.set(frame.at);
        let parsed = wire::read(link, frame.data, wire::Metadata::default());
        // The kernel acts on the packet before the daemon reads it.
        if let (Some(line), Ok(seen)) = (&mut line, &parsed) {
            line.packet(frame.at, &seen.packet, &mut report);
        }
        hand_over(&mut engine, frame.at, link, frame.data, parsed);
        let model = line.as_mut().map(|line| &mut line.model);
        summary.take(engine.take_effects(), frame.at, model, &mut report);
    }
    summary.counters = *engine.pipeline().counters();
    summary.detector = engine.pipeline().detector_stats();
    summary.first_line = line.map(Line::summary);
    Ok(summary)
}

/// A frame to the engine: a fragment to its reassembler, any other as parsed.
fn hand_over(
    engine: &mut Engine,
    at: Timestamp,
    link: wire::LinkType,
    frame: &[u8],
    parsed: Result<wire::Seen<'_>, wire::Skip>,
) {
    match parsed {
        Err(wire::Skip::Fragment) => engine.fragment(at, link, frame, wire::Metadata::default()),
        parsed => engine.packet(at, parsed),
    }
}

/// The kernel's first line in a replay: its model, and the sources it held.
struct Line {
    model: FirstLineModel,
    hold: Duration,
    held: BTreeSet<IpAddr>,
}

impl Line {
    /// The model with the kernel's set sizes (the block sets `blocked`), on the capture's host.
    fn new(
        hold: Duration,
        blocked: usize,
        locals: &[IpAddr],
        allow: crate::never_block::NeverBlockList,
        facts: &FirstLineFacts,
    ) -> Self {
        let sizes = first_line::Sizes {
            blocked,
            ..first_line::Sizes::KERNEL
        };
        let locals = locals.iter().copied();
        Line {
            model: FirstLineModel::new(hold, sizes, locals, allow, facts, REPLAY_SEED),
            hold,
            held: BTreeSet::new(),
        }
    }

    /// One packet through the model; a hold is reported.
    fn packet(&mut self, at: Timestamp, p: &wire::Packet, report: &mut impl FnMut(Found<'_>)) {
        if let Outcome::Held(hold) = self.model.packet(at, p) {
            // Distinct sources held, counted up to a bound (a forged flood makes many).
            if self.held.len() < HELD_KEPT {
                self.held.insert(hold.probe.source);
            }
            report(Found::Held(&hold));
        }
    }

    fn summary(self) -> FirstLineSummary {
        FirstLineSummary {
            hold: self.hold,
            counters: *self.model.counters(),
            sources_held: self.held.len() as u64,
        }
    }
}

/// How many distinct held sources a replay remembers, to count them (a forged flood makes
/// many; past this, the count says "at least").
const HELD_KEPT: usize = 65_536;

impl Summary {
    /// Nothing found yet, on a host with `locals` (`inferred` or given) and `listeners`.
    fn new(locals: Vec<IpAddr>, inferred: bool, listeners: Vec<(Proto, IpAddr, u16)>) -> Self {
        Summary {
            locals,
            inferred,
            listeners,
            span: None,
            counters: Counters::default(),
            detector: DetectorStats::default(),
            blocks: 0,
            already_blocked: 0,
            never_block: 0,
            over_budget: 0,
            too_few_ports: 0,
            warnings: Vec::new(),
            first_line: None,
        }
    }

    /// Counts the engine's decisions (each handed to `report`) and keeps its warnings; the
    /// rest (log lines, the on-block program, history, state) a replay does not carry out.
    /// A block (or a block set again) is in the first line's block sets from `now` on.
    fn take(
        &mut self,
        effects: Vec<Effect>,
        now: Timestamp,
        mut line: Option<&mut FirstLineModel>,
        report: &mut impl FnMut(Found<'_>),
    ) {
        for effect in effects {
            match effect {
                Effect::Decided {
                    detection,
                    decision,
                } => {
                    match &decision {
                        Decision::Block { net, ttl, .. } | Decision::Refresh { net, ttl } => {
                            if let Some(model) = line.as_deref_mut() {
                                model.block(*net, now.saturating_add(*ttl), now);
                            }
                            if matches!(decision, Decision::Block { .. }) {
                                self.blocks += 1;
                            } else {
                                self.already_blocked += 1;
                            }
                        }
                        Decision::AlreadyBlocked { .. } => self.already_blocked += 1,
                        Decision::NeverBlock { .. } | Decision::InGrace { .. } => {
                            self.never_block += 1;
                        }
                        Decision::OverBudget { .. } => self.over_budget += 1,
                        Decision::TooFewPorts { .. } => self.too_few_ports += 1,
                        // Live checks only: a capture's host has no routes or sessions.
                        Decision::ReversePath { .. }
                        | Decision::Protected { .. }
                        | Decision::DeletedOutside { .. } => {}
                    }
                    report(Found::Decided(&detection, &decision));
                }
                Effect::Decoy { verdict, ttl } => report(Found::Decoy(&verdict, ttl)),
                Effect::Log(Level::Warn, line) => self.warnings.push(line),
                Effect::Log(..)
                | Effect::Decision { .. }
                | Effect::Act(..)
                | Effect::Blocked { .. }
                | Effect::History { .. }
                | Effect::Save(_)
                | Effect::Watch
                | Effect::Fleet { .. } => {}
            }
        }
    }
}

/// Local addresses and listening sockets, as far as a capture shows them.
#[derive(Debug, Default)]
struct Inferred {
    locals: BTreeSet<IpAddr>,
    listeners: BTreeSet<(Proto, IpAddr, u16)>,
}

/// The first pass: every packet (datagrams in fragments once whole) is remembered as a flow; a probe-shaped packet that answers
/// no earlier flow makes its destination local; a SYN+ACK or UDP datagram that answers one
/// shows a listening socket at its source.
fn infer(path: &Path) -> Result<Inferred, CaptureError> {
    let mut file = PcapFile::open(path)?;
    let link = file.link();
    let mut flows = RecentFlows::new(16, Duration::from_secs(300), REPLAY_SEED);
    let mut found = Inferred::default();
    let mut fragments = Reassembler::new(reassembly::Limits::default());
    while let Some(frame) = file.next_frame()? {
        let p = match wire::parse(link, frame.data) {
            Ok(p) => p,
            // A datagram in fragments, read once whole.
            Err(wire::Skip::Fragment) => {
                match reassembly::fragment_of(link, frame.data, wire::Metadata::default())
                    .map(|f| fragments.insert(frame.at, &f))
                {
                    Ok(reassembly::Outcome::Complete(p, _)) => p.packet,
                    _ => continue,
                }
            }
            Err(_) => continue,
        };
        if flows.is_answer(frame.at, &p) {
            let opens = match (p.tcp_flags, p.other) {
                (Some(f), _) => f.contains(TcpFlags::SYN | TcpFlags::ACK),
                // SCTP: an INIT ACK, not an ABORT (issue 28).
                (None, Some(wire::Other::Sctp(_))) => wire::sctp::is_init_ack(&p),
                (None, _) => true,
            };
            if opens {
                found
                    .listeners
                    .insert((p.proto(), p.src.to_canonical(), p.src_port));
            }
        } else if p.probe_kind().is_some() {
            found.locals.insert(p.dst.to_canonical());
        }
        flows.remember(frame.at, &p);
    }
    Ok(found)
}

impl Summary {
    /// The human summary printed after the detections.
    pub fn text(&self, capture: &Path) -> String {
        let c = &self.counters;
        let span = self
            .span
            .map_or(Duration::ZERO, |(a, b)| b.saturating_since(a));
        let locals = if self.locals.is_empty() {
            "none".to_string()
        } else {
            self.locals
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let listeners = if self.listeners.is_empty() {
            "none".to_string()
        } else {
            self.listeners
                .iter()
                .map(|(proto, addr, port)| format!("{}/{} on {addr}", port, proto.as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut out = format!(
            "replayed {}: {} frames over {:.1}s\n\
             local addresses ({}): {locals}\n\
             listening (inferred from answers): {listeners}\n\
             probes counted: {}; not traps: {}; answers to local traffic: {}; conversation: {}; \
             never-block sources: {}; unroutable sources: {}; bad checksums: {}; outbound: {}; \
             to other hosts: {}\n\
             skipped frames: {} truncated, {} malformed, {} not IP, {} other protocols\n\
             fragments: {} (reassembled {}, tiny {}, overlapping {}, timed out {}, dropped {})\n\
             detections: {} (would block {}, already blocked {}, never-block {}, over budget {}, \
             too few ports {})",
            capture.display(),
            c.frames,
            span.as_secs_f64(),
            if self.inferred {
                "inferred from the capture"
            } else {
                "given"
            },
            c.probes,
            c.not_trap,
            c.replies,
            c.conversation,
            c.never_block,
            c.unroutable,
            c.bad_checksum,
            c.outbound,
            c.not_local,
            c.truncated,
            c.malformed,
            c.not_ip,
            c.other_protocol,
            c.fragments,
            c.reassembled,
            c.tiny_fragments,
            c.fragment_overlaps,
            c.fragments_timed_out,
            c.fragments_dropped,
            c.detections,
            self.blocks,
            self.already_blocked,
            self.never_block,
            self.over_budget,
            self.too_few_ports,
        );
        if let Some(line) = &self.first_line {
            out.push('\n');
            out.push_str(&line.text());
        }
        if self.detector.evicted_sources > 0 || self.detector.evicted_ports > 0 {
            out.push_str(&format!(
                "\ndetector memory: {} sources evicted, {} ports evicted",
                self.detector.evicted_sources, self.detector.evicted_ports
            ));
        }
        out
    }

    /// The summary as one JSON object (schema [`SCHEMA`](crate::report::SCHEMA)).
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "schema": crate::report::SCHEMA,
            "type": "summary",
            "locals": self.locals.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "locals_inferred": self.inferred,
            "listeners": self.listeners.iter().map(|(proto, addr, port)| serde_json::json!({"proto": proto.as_str(), "address": addr.to_string(), "port": port})).collect::<Vec<_>>(),
            "first_frame_at": self.span.map(|(a, _)| a.to_string()),
            "last_frame_at": self.span.map(|(_, b)| b.to_string()),
            "counters": self.counters,
            "evicted_sources": self.detector.evicted_sources,
            "evicted_ports": self.detector.evicted_ports,
            "blocks": self.blocks,
            "already_blocked": self.already_blocked,
            "never_block": self.never_block,
            "over_budget": self.over_budget,
            "too_few_ports": self.too_few_ports,
            "first_line": self.first_line.as_ref().map(FirstLineSummary::json),
        })
    }
}

impl FirstLineSummary {
    /// The summary's line for the first line.
    fn text(&self) -> String {
        let c = &self.counters;
        format!(
            "kernel's first line (modelled): {} holds of {}{} sources for {} each ({} at a \
             tripwire), {} probes dropped while held; {} probes counted, {} repeated; skipped: \
             {} allowed, {} RST or bare ACK, {} established, {} peers or spared, {} listening \
             or ephemeral; {} blocked before it; score_full {}, hold_full {}",
            c.holds,
            if self.sources_held >= HELD_KEPT as u64 {
                "at least "
            } else {
                ""
            },
            self.sources_held,
            crate::text::human(self.hold),
            c.tripwire_holds,
            c.dropped,
            c.counted,
            c.repeats,
            c.allowed,
            c.rst_or_ack,
            c.established,
            c.peer_or_spared,
            c.not_trap,
            c.blocked,
            c.score_full,
            c.hold_full,
        )
    }

    /// The summary's `first_line` object.
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "hold_s": self.hold.as_secs(),
            "sources_held": self.sources_held,
            "counters": self.counters,
        })
    }
}
