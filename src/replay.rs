//! `sentryd --replay FILE`: the live pipeline over a capture file, decisions only (nothing is
//! blocked). **Shell** (reads the file); the work is done by the pure [`Pipeline`] and
//! [`Responder`], with the capture timestamps as the clock, so a replay is repeatable.
//!
//! A capture does not say which addresses were "ours". Unless `--local` names them, they are
//! inferred in a first pass: the destinations of probe-shaped packets that answer nothing.
//! Listening ports are inferred the same way, from SYN+ACKs and UDP answers sent by those
//! addresses, so that a service in the capture is not mistaken for a trap.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::capture::{CaptureError, PcapFile};
use crate::config::{Config, LINUX_EPHEMERAL_PORTS};
use crate::detect::traps::Listeners;
use crate::detect::{Detection, DetectorStats};
use crate::never_block::{self, Entry, Reason};
use crate::pipeline::{Counters, Pipeline, RecentFlows};
use crate::respond::{Decision, Responder};
use crate::time::Timestamp;
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
    let mut traps = config.traps.build(LINUX_EPHEMERAL_PORTS);
    traps.set_listeners(listeners);

    let discovered = locals.iter().map(|&a| Entry {
        net: a.into(),
        reason: Reason::ReplayLocal,
    });
    let (ignore, warnings) = never_block::load(&config.never_block, discovered.collect())?;
    let mut pipeline = Pipeline::new(
        config.detector.clone(),
        traps,
        ignore,
        locals.iter().copied(),
        REPLAY_SEED,
    );
    pipeline.set_local_check(config.local_check);
    let mut responder = Responder::new(&config.respond);
    let mut summary = Summary {
        locals,
        inferred: was_inferred,
        listeners: listened,
        span: None,
        counters: Counters::default(),
        detector: DetectorStats::default(),
        blocks: 0,
        already_blocked: 0,
        never_block: 0,
        over_budget: 0,
        too_few_ports: 0,
        warnings,
    };

    let mut file = PcapFile::open(&options.capture)?;
    let link = file.link();
    while let Some(frame) = file.next_frame()? {
        summary.span = Some(match summary.span {
            None => (frame.at, frame.at),
            Some((first, _)) => (first, frame.at),
        });
        if let Some(detection) = pipeline.process_frame(frame.at, link, frame.data) {
            let decision = responder.on_detection(&detection, pipeline.never_block(), frame.at);
            match decision {
                Decision::Block { .. } => summary.blocks += 1,
                Decision::AlreadyBlocked { .. } => summary.already_blocked += 1,
                Decision::NeverBlock { .. } | Decision::InGrace { .. } => summary.never_block += 1,
                Decision::OverBudget { .. } => summary.over_budget += 1,
                Decision::TooFewPorts { .. } => summary.too_few_ports += 1,
                // A replay asks no kernel for routes back or sessions: live checks only.
                Decision::ReversePath { .. } | Decision::Protected { .. } => {}
                Decision::Refresh { .. } => summary.already_blocked += 1,
            }
            if !decision.settles(&detection) {
                pipeline.reconsider(&detection);
            }
            report(&detection, &decision);
        }
    }
    summary.counters = *pipeline.counters();
    summary.detector = pipeline.detector_stats();
    Ok(summary)
}

/// Local addresses and listening sockets, as far as a capture shows them.
#[derive(Debug, Default)]
struct Inferred {
    locals: BTreeSet<IpAddr>,
    listeners: BTreeSet<(Proto, IpAddr, u16)>,
}

/// The first pass: every packet is remembered as a flow; a probe-shaped packet that answers
/// no earlier flow makes its destination local; a SYN+ACK or UDP datagram that answers one
/// shows a listening socket at its source.
fn infer(path: &Path) -> Result<Inferred, CaptureError> {
    let mut file = PcapFile::open(path)?;
    let link = file.link();
    let mut flows = RecentFlows::new(16, Duration::from_secs(300), REPLAY_SEED);
    let mut found = Inferred::default();
    while let Some(frame) = file.next_frame()? {
        let Ok(p) = wire::parse(link, frame.data) else {
            continue;
        };
        if flows.is_answer(frame.at, &p) {
            let opens = match p.tcp_flags {
                Some(f) => f.contains(TcpFlags::SYN | TcpFlags::ACK),
                None => true,
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
             skipped frames: {} truncated, {} malformed, {} not IP, {} other protocols, {} fragments\n\
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
            c.detections,
            self.blocks,
            self.already_blocked,
            self.never_block,
            self.over_budget,
            self.too_few_ports,
        );
        if self.detector.evicted_sources > 0 || self.detector.evicted_ports > 0 {
            out.push_str(&format!(
                "\ndetector memory: {} sources evicted, {} ports evicted",
                self.detector.evicted_sources, self.detector.evicted_ports
            ));
        }
        out
    }

    /// The summary as one JSON object.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "summary",
            "locals": self.locals.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "locals_inferred": self.inferred,
            "listeners": self.listeners.iter().map(|(proto, addr, port)| serde_json::json!({"proto": proto.as_str(), "addr": addr.to_string(), "port": port})).collect::<Vec<_>>(),
            "first_frame": self.span.map(|(a, _)| a.to_string()),
            "last_frame": self.span.map(|(_, b)| b.to_string()),
            "counters": self.counters,
            "evicted_sources": self.detector.evicted_sources,
            "evicted_ports": self.detector.evicted_ports,
            "blocks": self.blocks,
            "already_blocked": self.already_blocked,
            "never_block": self.never_block,
            "over_budget": self.over_budget,
            "too_few_ports": self.too_few_ports,
        })
    }
}
