//! How detections and decisions are written. **Pure.** A decision is one [`Event`], from which
//! its log line, its fields as a log event (JSON keys, journal fields), its metrics label and
//! its `--replay --json` object are all derived, in one vocabulary ([`Outcome`], [`Reason`]).
//!
//! Lines put the facts first:
//! `blocked 203.0.113.7 for 1h: syn scan, 25 ports in 3.0s (offence 2)`; in dry-run mode and
//! in replays, `would block …`.

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

use crate::detect::Detection;
use crate::respond::{Budget, Decision};
use crate::text::human;
use crate::time::Timestamp;
use crate::wire::Proto;

/// Whether decisions are carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The firewall is changed: "blocked".
    Enforcing,
    /// Nothing is changed (dry-run, replay): "would block".
    DryRun,
}

/// `n` and the noun, `one` for 1 and `many` otherwise: `1 block`, `3 blocks`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The detection's source as written in a log line: the bare address for a host prefix.
pub fn source_text(net: &ipnet::IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.to_string()
    }
}

/// What a budget that refused a block says: which budget, and its setting.
pub fn budget_text(budget: &Budget) -> String {
    match budget {
        Budget::Size(n) => format!("{n} blocks active ([respond] max-blocks)"),
        Budget::Rate(n) => {
            format!("{n} new blocks in the last second ([respond] max-new-blocks-per-second)")
        }
        Budget::Prefix(prefix) => format!(
            "{} new blocks in {prefix} in the last {}",
            crate::respond::PREFIX_CAP,
            human(crate::respond::PREFIX_WINDOW)
        ),
        Budget::Share(prefix, n) => format!(
            "{n} new blocks in {prefix} in the last second, its share of \
             [respond] max-new-blocks-per-second"
        ),
        Budget::Reserve(n) => format!(
            "the rest of the {n} new blocks a second is kept for scans of more ports \
             ([respond] max-new-blocks-per-second)"
        ),
        Budget::Held(prefix, n) => {
            format!("{n} blocks active in {prefix}, its share of [respond] max-blocks")
        }
        Budget::Room(n) => format!(
            "the rest of the {n} blocks is kept for scans of more ports from networks \
             with no block ([respond] max-blocks)"
        ),
    }
}

/// A short time as a log line says it: `0.4 ms` under 10 ms, `35 ms` under a second, `1.2s`
/// under a minute, then as [`human`] writes it.
pub fn short(d: Duration) -> String {
    if d < Duration::from_millis(10) {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    } else if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else if d < Duration::from_secs(60) {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        human(d)
    }
}

/// One log line for a detection and its decision (without a timestamp: the logger adds one,
/// and replays prefix the capture time): what was decided, then the detection's summary.
pub fn line(d: &Detection, decision: &Decision, mode: Mode) -> String {
    let tail = match decision {
        Decision::Block { offence, .. } if *offence > 1 => format!(" (offence {offence})"),
        Decision::OverBudget { waits: true, .. } => format!(
            "; waits for the budget (up to {})",
            human(crate::respond::WAIT_FOR)
        ),
        _ => String::new(),
    };
    format!("{}: {}{tail}", head(decision, mode), d.summary())
}

/// What a line says was decided, before the detection's summary.
fn head(decision: &Decision, mode: Mode) -> String {
    let (block, refresh) = match mode {
        Mode::Enforcing => ("blocked", "refreshed the block of"),
        Mode::DryRun => ("would block", "would refresh the block of"),
    };
    match decision {
        Decision::Block { net, ttl, .. } => {
            format!("{block} {} for {}", source_text(net), human(*ttl))
        }
        Decision::Refresh { net, ttl } => {
            format!("{refresh} {} to {}", source_text(net), human(*ttl))
        }
        Decision::AlreadyBlocked { net, remaining } => format!(
            "{} still scanning, already blocked for {} more",
            source_text(net),
            human(*remaining)
        ),
        Decision::OverBudget { net, budget, .. } => {
            format!("not blocking {}: {}", source_text(net), budget_text(budget))
        }
        Decision::NeverBlock { addr, reason } => {
            format!("not blocking {addr}: on never-block list ({reason})")
        }
        Decision::TooFewPorts { addr, ports, min } => format!(
            "not blocking {addr}: {ports} trap port{}, fewer than [respond] min-ports = {min}",
            if *ports == 1 { "" } else { "s" }
        ),
        Decision::ReversePath {
            addr,
            came_in,
            route: Some(route),
        } => format!(
            "not blocking {addr}: its probes came in on {} but the route back to it leaves \
             by {route} (reverse path)",
            came_in.as_deref().unwrap_or("an interface")
        ),
        Decision::ReversePath { addr, .. } => {
            format!("not blocking {addr}: no route back to it (reverse path)")
        }
        Decision::Protected {
            addr,
            peer,
            port,
            since,
            ended,
        } => {
            let who = if peer == addr {
                String::new()
            } else {
                format!(" (of {peer})")
            };
            let since = since.to_seconds();
            match ended {
                None => format!(
                    "not blocking {addr}: established session{who} to {port}/tcp since {since} \
                     (protected peer; [respond] protect)"
                ),
                Some(ended) => format!(
                    "not blocking {addr}: session{who} to {port}/tcp from {since} to {} \
                     (protected peer; [respond] protect-for)",
                    ended.to_seconds()
                ),
            }
        }
        Decision::InGrace { addr, remaining } => format!(
            "not blocking {addr}: unblocked by hand, grace period for {} more",
            human(*remaining)
        ),
        Decision::DeletedOutside {
            net,
            remaining,
            while_stopped,
            ..
        } => deleted_outside(net, *remaining, *while_stopped),
    }
}

/// `unblocked 203.0.113.7: its element was deleted outside scansentry (59m were left; its
/// offences are kept)`, with ` while sentryd was stopped` when found at a start.
fn deleted_outside(net: &IpNet, remaining: Duration, while_stopped: bool) -> String {
    let when = if while_stopped {
        " while sentryd was stopped"
    } else {
        ""
    };
    format!(
        "unblocked {}: its element was deleted outside scansentry{when} ({} were left; its \
         offences are kept)",
        source_text(net),
        human(remaining)
    )
}

/// Repeated log lines of one kind, folded: within each [`Fold::WINDOW`], the first
/// [`Fold::BURST`] lines of a kind are said and the rest only counted, then summed up in one
/// line ("… 2950 more refused by the budget in the last 10s"). **Pure**; time is an argument.
/// What it folds are the lines a flood of forged packets can make by the thousand; blocks are
/// never folded (the budget bounds them), so journald never drops a line that matters.
#[derive(Debug, Default)]
pub struct Fold {
    kinds: [FoldCount; Folded::ALL.len()],
}

#[derive(Clone, Copy, Debug, Default)]
struct FoldCount {
    since: Timestamp,
    said: u32,
    quiet: u64,
}

/// The kinds of line [`Fold`] keeps count of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Folded {
    /// Refused by the budget.
    Budget,
    /// On the never-block list.
    NeverBlock,
    /// In a grace period.
    Grace,
    /// Too few trap ports yet.
    TooFewPorts,
    /// Failed the reverse-path check.
    ReversePath,
    /// A protected peer.
    Protected,
    /// Still scanning while blocked (said when verbose).
    AlreadyBlocked,
    /// The kernel refused a change.
    Refused,
    /// A block from another host of the fleet refused by this host's own rules.
    Fleet,
    /// A hold of the kernel's first line.
    Held,
    /// A hold of the kernel's first line lifted.
    HoldLifted,
}

impl Folded {
    const ALL: [Folded; 11] = [
        Folded::Protected,
        Folded::Budget,
        Folded::NeverBlock,
        Folded::Grace,
        Folded::TooFewPorts,
        Folded::ReversePath,
        Folded::AlreadyBlocked,
        Folded::Refused,
        Folded::Fleet,
        Folded::Held,
        Folded::HoldLifted,
    ];

    /// The kind of line a decision makes, if it is one that is folded.
    pub fn of(decision: &Decision) -> Option<Folded> {
        match Outcome::of(decision) {
            Outcome::Block | Outcome::Refresh | Outcome::Unblock => None,
            Outcome::AlreadyBlocked => Some(Folded::AlreadyBlocked),
            Outcome::NotBlocked(reason) => Some(match reason {
                Reason::Budget => Folded::Budget,
                Reason::NeverBlock => Folded::NeverBlock,
                Reason::Grace => Folded::Grace,
                Reason::MinPorts => Folded::TooFewPorts,
                Reason::ReversePath => Folded::ReversePath,
                Reason::Protected => Folded::Protected,
            }),
        }
    }

    fn what(self) -> &'static str {
        match self {
            Folded::Budget => "refused by the budget",
            Folded::NeverBlock => "not blocked: on the never-block list",
            Folded::Grace => "not blocked: in a grace period",
            Folded::TooFewPorts => "not blocked: too few trap ports yet",
            Folded::ReversePath => "not blocked: failed the reverse-path check",
            Folded::Protected => "not blocked: protected peers",
            Folded::AlreadyBlocked => "still scanning while blocked",
            Folded::Refused => "changes refused by the kernel",
            Folded::Fleet => "blocks from the fleet refused",
            Folded::Held => "holds by the kernel's first line",
            Folded::HoldLifted => "holds of the kernel's first line lifted",
        }
    }
}

impl Fold {
    /// Lines of one kind said within a window at most.
    pub const BURST: u32 = 10;
    /// The window.
    pub const WINDOW: Duration = Duration::from_secs(10);

    /// Whether to say a line of `kind` now; if not, it is counted.
    pub fn offer(&mut self, kind: Folded, now: Timestamp) -> bool {
        let c = &mut self.kinds[kind as usize];
        if c.said == 0 && c.quiet == 0 {
            c.since = now;
        }
        if c.said < Self::BURST {
            c.said += 1;
            true
        } else {
            c.quiet += 1;
            false
        }
    }

    /// The summaries of windows that have ended by `now` (one line per kind that had lines
    /// left unsaid); those kinds start a new window.
    pub fn summaries(&mut self, now: Timestamp) -> Vec<String> {
        let mut out = Vec::new();
        for kind in Folded::ALL {
            let c = &mut self.kinds[kind as usize];
            if (c.said > 0 || c.quiet > 0) && now.saturating_since(c.since) >= Self::WINDOW {
                if c.quiet > 0 {
                    out.push(format!(
                        "… {} more {} in the last {}",
                        c.quiet,
                        kind.what(),
                        human(now.saturating_since(c.since))
                    ));
                }
                *c = FoldCount::default();
            }
        }
        out
    }
}

/// What a decision did, in the one vocabulary every rendering of a decision uses: the
/// `decision` and `reason` fields of its log event, its metrics label, its `action` in
/// `--replay --json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A new block (`block`; `would-block` in a dry run).
    Block,
    /// A block made longer (`refresh`; `would-refresh` in a dry run).
    Refresh,
    /// Blocked already (`already-blocked`).
    AlreadyBlocked,
    /// Not blocked (`not-blocked`), by this rule.
    NotBlocked(Reason),
    /// A block lifted because its element was deleted outside scansentry (`unblock`).
    Unblock,
}

/// The rule that kept a detection from a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// The budget (`[respond] max-blocks`, `max-new-blocks-per-second`): `budget`.
    Budget,
    /// The never-block list: `never-block`.
    NeverBlock,
    /// A grace period after an unblock by hand: `grace`.
    Grace,
    /// Fewer trap ports than `[respond] min-ports`: `min-ports`.
    MinPorts,
    /// The reverse-path check: `reverse-path`.
    ReversePath,
    /// A protected peer: `protected`.
    Protected,
}

impl Reason {
    /// Every rule, in the order of their words.
    pub const ALL: [Reason; 6] = [
        Reason::Budget,
        Reason::NeverBlock,
        Reason::Grace,
        Reason::MinPorts,
        Reason::ReversePath,
        Reason::Protected,
    ];

    /// The rule's word: `budget`, `never-block`, `grace`, `min-ports`, `reverse-path`,
    /// `protected`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Budget => "budget",
            Reason::NeverBlock => "never-block",
            Reason::Grace => "grace",
            Reason::MinPorts => "min-ports",
            Reason::ReversePath => "reverse-path",
            Reason::Protected => "protected",
        }
    }
}

impl Outcome {
    /// Every outcome: the three that are not refusals, then one for each rule of
    /// [`Reason::ALL`].
    pub const ALL: [Outcome; 4 + Reason::ALL.len()] = [
        Outcome::Block,
        Outcome::Refresh,
        Outcome::AlreadyBlocked,
        Outcome::Unblock,
        Outcome::NotBlocked(Reason::Budget),
        Outcome::NotBlocked(Reason::NeverBlock),
        Outcome::NotBlocked(Reason::Grace),
        Outcome::NotBlocked(Reason::MinPorts),
        Outcome::NotBlocked(Reason::ReversePath),
        Outcome::NotBlocked(Reason::Protected),
    ];

    /// What `decision` does.
    pub fn of(decision: &Decision) -> Outcome {
        match decision {
            Decision::Block { .. } => Outcome::Block,
            Decision::Refresh { .. } => Outcome::Refresh,
            Decision::AlreadyBlocked { .. } => Outcome::AlreadyBlocked,
            Decision::OverBudget { .. } => Outcome::NotBlocked(Reason::Budget),
            Decision::NeverBlock { .. } => Outcome::NotBlocked(Reason::NeverBlock),
            Decision::InGrace { .. } => Outcome::NotBlocked(Reason::Grace),
            Decision::TooFewPorts { .. } => Outcome::NotBlocked(Reason::MinPorts),
            Decision::ReversePath { .. } => Outcome::NotBlocked(Reason::ReversePath),
            Decision::Protected { .. } => Outcome::NotBlocked(Reason::Protected),
            Decision::DeletedOutside { .. } => Outcome::Unblock,
        }
    }

    /// Its word in `mode`: `block`, `refresh`, `already-blocked`, `not-blocked`; in a dry run
    /// `would-block` and `would-refresh`.
    pub fn word(self, mode: Mode) -> &'static str {
        let dry = mode == Mode::DryRun;
        match self {
            Outcome::Block if dry => "would-block",
            Outcome::Block => "block",
            Outcome::Refresh if dry => "would-refresh",
            Outcome::Refresh => "refresh",
            Outcome::AlreadyBlocked => "already-blocked",
            Outcome::NotBlocked(_) => "not-blocked",
            Outcome::Unblock => "unblock",
        }
    }

    /// The rule that kept it from a block, if one did.
    pub fn reason(self) -> Option<Reason> {
        match self {
            Outcome::NotBlocked(reason) => Some(reason),
            _ => None,
        }
    }

    /// Its word as a single label (metrics, `--replay --json`): the rule's word for a
    /// detection not blocked, else [`Outcome::word`].
    pub fn label(self, mode: Mode) -> &'static str {
        self.reason()
            .map_or_else(|| self.word(mode), Reason::as_str)
    }
}

/// Why a probe-like packet was never counted by the detector: the words of `status`'s
/// `not_blocked` and of `scansentry_probes_not_counted_total{reason}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotCounted {
    /// From a source no scanner can have (unroutable, this host's own): `unroutable-source`.
    UnroutableSource,
    /// With a wrong checksum: `bad-checksum`.
    BadChecksum,
}

impl NotCounted {
    /// Every cause, in the order of their words.
    pub const ALL: [NotCounted; 2] = [NotCounted::UnroutableSource, NotCounted::BadChecksum];

    /// The cause's word: `unroutable-source`, `bad-checksum`.
    pub fn as_str(self) -> &'static str {
        match self {
            NotCounted::UnroutableSource => "unroutable-source",
            NotCounted::BadChecksum => "bad-checksum",
        }
    }
}

/// One decision about one detection, as an event: what every rendering of it is derived from
/// — its log line ([`Event::line`]), its fields as a log event (keys of a JSON line,
/// `SCANSENTRY_*` journal fields: `daemon::log::decision`), its metrics label
/// ([`Event::label`]) and its object in `--replay --json` ([`Event::json`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    detection: Detection,
    decision: Decision,
    mode: Mode,
    line: String,
}

impl Event {
    /// `decision` on `d`, in `mode`.
    pub fn of(d: &Detection, decision: &Decision, mode: Mode) -> Event {
        Event {
            line: line(d, decision, mode),
            detection: d.clone(),
            decision: decision.clone(),
            mode,
        }
    }

    /// The block of `net` lifted at `at` because its element was deleted outside scansentry
    /// ([`Decision::DeletedOutside`], with the time it had left and the offences of `net`):
    /// an event of no detection, its address `net`'s, with no kind, ports or probes.
    pub fn deleted_outside(
        net: IpNet,
        remaining: Duration,
        offence: u32,
        while_stopped: bool,
        at: Timestamp,
    ) -> Event {
        let decision = Decision::DeletedOutside {
            net,
            remaining,
            offence,
            while_stopped,
        };
        let detection = Detection {
            source: net,
            addr: net.addr(),
            kinds: crate::detect::ScanKinds::default(),
            ports: Vec::new(),
            first_seen: at,
            last_seen: at,
            packets: 0,
            score: 0,
            several_addresses: false,
            arrived_on: None,
            tripwire: None,
            signature: None,
        };
        Event {
            line: head(&decision, Mode::Enforcing),
            detection,
            decision,
            mode: Mode::Enforcing,
        }
    }

    /// A block made after the detection waited `waited` for the budget: its line says so.
    #[must_use]
    pub fn after_waiting(mut self, waited: Duration) -> Event {
        if matches!(self.decision, Decision::Block { .. }) {
            self.line = format!(
                "{} after waiting {:.1}s for the budget",
                self.line,
                waited.as_secs_f64()
            );
        }
        self
    }

    /// The same event, a block's line saying that the kernel's first line held the source
    /// `before` it (`… (held by the kernel's first line 3 ms before)`).
    pub fn after_hold(mut self, before: Duration) -> Event {
        if matches!(self.decision, Decision::Block { .. }) {
            self.line = format!(
                "{} (held by the kernel's first line {} before)",
                self.line,
                short(before)
            );
        }
        self
    }

    /// The log line, as [`line`] words it.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// The detection.
    pub fn detection(&self) -> &Detection {
        &self.detection
    }

    /// What the decision does.
    pub fn outcome(&self) -> Outcome {
        Outcome::of(&self.decision)
    }

    /// Field `decision`: [`Outcome::word`] in the event's mode.
    pub fn decision(&self) -> &'static str {
        self.outcome().word(self.mode)
    }

    /// Field `actor`: the kernel for a block whose element was deleted outside scansentry,
    /// else the daemon (a detection judged by its rules).
    pub fn actor(&self) -> Actor {
        match self.decision {
            Decision::DeletedOutside { .. } => Actor::Kernel,
            _ => Actor::Daemon,
        }
    }

    /// Field `reason`: the word of the rule that kept the detection from a block, if one did.
    pub fn reason(&self) -> Option<&'static str> {
        self.outcome().reason().map(Reason::as_str)
    }

    /// The metrics label (`scansentry_decisions_total{decision}`): [`Outcome::label`].
    pub fn label(&self) -> &'static str {
        self.outcome().label(self.mode)
    }

    /// Field `address`: the address whose probe crossed the threshold.
    pub fn address(&self) -> IpAddr {
        self.detection.addr
    }

    /// Field `network`: what is (or would be, or already was) blocked, when the decision
    /// names it.
    pub fn network(&self) -> Option<IpNet> {
        match &self.decision {
            Decision::Block { net, .. }
            | Decision::Refresh { net, .. }
            | Decision::AlreadyBlocked { net, .. }
            | Decision::OverBudget { net, .. }
            | Decision::DeletedOutside { net, .. } => Some(*net),
            _ => None,
        }
    }

    /// Field `kind`: the kinds of probe, as [`ScanKinds`](crate::detect::ScanKinds) writes
    /// them: `syn`, `syn+udp`.
    pub fn kind(&self) -> String {
        self.detection.kinds.to_string()
    }

    /// Field `ports`: the trap ports, as `22/tcp,23/tcp,53/udp`.
    pub fn ports(&self) -> String {
        let ports: Vec<String> = self
            .detection
            .ports
            .iter()
            .map(|(proto, port)| format!("{port}/{}", proto.as_str()))
            .collect();
        ports.join(",")
    }

    /// Field `tripwire`: the tripwire port whose one probe made the detection, as `2323/tcp`.
    pub fn tripwire(&self) -> Option<String> {
        self.detection
            .tripwire
            .map(|(proto, port)| proto.label(port))
    }

    /// Field `signature`: the tool the probes looked like, as `nmap OS detection (SEQ1, SEQ2,
    /// SEQ3)` ([`Detection::signature`]), when they did.
    pub fn signature(&self) -> Option<String> {
        self.detection.signature.as_ref().map(ToString::to_string)
    }

    /// Field `probes`: probes counted from the source.
    pub fn probes(&self) -> u64 {
        self.detection.packets
    }

    /// Field `window_ms`: from its first probe to the one that crossed the threshold.
    pub fn window_ms(&self) -> u64 {
        let d = &self.detection;
        let window = d.last_seen.saturating_since(d.first_seen);
        u64::try_from(window.as_millis()).unwrap_or(u64::MAX)
    }

    /// Field `duration_s`: how long the block lasts (or is left), when the decision says.
    pub fn duration_s(&self) -> Option<u64> {
        match &self.decision {
            Decision::Block { ttl, .. } | Decision::Refresh { ttl, .. } => Some(ttl.as_secs()),
            Decision::AlreadyBlocked { remaining, .. }
            | Decision::InGrace { remaining, .. }
            | Decision::DeletedOutside { remaining, .. } => Some(remaining.as_secs()),
            _ => None,
        }
    }

    /// Field `offence`: the offence a block punishes (1 for a first block).
    pub fn offence(&self) -> Option<u32> {
        match &self.decision {
            Decision::Block { offence, .. } | Decision::DeletedOutside { offence, .. } => {
                Some(*offence)
            }
            _ => None,
        }
    }

    /// The object `sentryd --replay --json` prints for it (schema [`SCHEMA`]): `address` the
    /// address, `prefix` the source as counted, `network` what is (would be) blocked; its
    /// `action` is [`Outcome::label`] as enforced (a replay's `block` is one it would make).
    pub fn json(&self) -> serde_json::Value {
        let d = &self.detection;
        let ports: Vec<serde_json::Value> = d
            .ports
            .iter()
            .map(|(proto, port)| serde_json::json!({"proto": proto.as_str(), "port": port}))
            .collect();
        serde_json::json!({
            "schema": SCHEMA,
            "type": "detection",
            "detected_at": d.last_seen.to_string(),
            "address": d.addr.to_string(),
            "prefix": source_text(&d.source),
            "kinds": d.kinds.names().collect::<Vec<_>>(),
            "ports": ports,
            "tripwire": d.tripwire.map(|(proto, port)| serde_json::json!({"proto": proto.as_str(), "port": port})),
            "signature": self.signature(),
            "first_seen_at": d.first_seen.to_string(),
            "last_seen_at": d.last_seen.to_string(),
            "probes": d.packets,
            "score": d.score,
            "action": self.outcome().label(Mode::Enforcing),
            "network": self.network().map(|n| n.to_string()),
            "duration_s": self.duration_s(),
            "offence": self.offence(),
            "never_block_reason": match &self.decision {
                Decision::NeverBlock { reason, .. } => Some(reason.as_str()),
                _ => None,
            },
        })
    }
}

/// Why the daemon lifted a hold of the kernel's first line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LiftReason {
    /// The source is on the never-block list.
    NeverBlock,
    /// The source is an address of this host.
    OwnAddress,
    /// The source is a protected peer.
    Protected,
    /// Its IPv4 /24 or IPv6 /48 had more than the first line's partition budget (16) holds within a minute.
    Budget,
    /// A port it probed has a listener now.
    Listener,
    /// An administrator unblocked it (`sentryctl unblock`), with a grace period or not.
    Unblock,
    /// It was unblocked by hand with a grace period that has not ended.
    Grace,
    /// Its probes fail the daemon's reverse-path check.
    ReversePath,
}

impl LiftReason {
    /// Its word, as a decision's `reason`: `never-block`, `own-address`, `protected`,
    /// `budget`, `listener`, `unblock`, `grace`, `reverse-path`.
    pub fn as_str(self) -> &'static str {
        match self {
            LiftReason::NeverBlock => "never-block",
            LiftReason::OwnAddress => "own-address",
            LiftReason::Protected => "protected",
            LiftReason::Budget => "budget",
            LiftReason::Listener => "listener",
            LiftReason::Unblock => "unblock",
            LiftReason::Grace => "grace",
            LiftReason::ReversePath => "reverse-path",
        }
    }
}

/// What became of a hold: the `outcome` label of `scansentry_first_line_holds_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum HoldOutcome {
    /// The daemon blocked the source.
    Blocked,
    /// The daemon lifted the hold, by this rule.
    Lifted(LiftReason),
    /// The hold ended without a block.
    Ended,
    /// Not recorded: the engine kept the holds the engine keeps (8,192) already.
    Untracked,
}

impl HoldOutcome {
    /// Every outcome, in the order of their words.
    pub const ALL: [HoldOutcome; 11] = [
        HoldOutcome::Blocked,
        HoldOutcome::Lifted(LiftReason::NeverBlock),
        HoldOutcome::Lifted(LiftReason::OwnAddress),
        HoldOutcome::Lifted(LiftReason::Protected),
        HoldOutcome::Lifted(LiftReason::Budget),
        HoldOutcome::Lifted(LiftReason::Listener),
        HoldOutcome::Lifted(LiftReason::Unblock),
        HoldOutcome::Lifted(LiftReason::Grace),
        HoldOutcome::Lifted(LiftReason::ReversePath),
        HoldOutcome::Ended,
        HoldOutcome::Untracked,
    ];

    /// Its word: `blocked`, `lifted-` and the [`LiftReason`]'s word (`lifted-never-block`,
    /// `lifted-listener`, …), `ended`, `untracked`.
    pub fn as_str(self) -> &'static str {
        match self {
            HoldOutcome::Blocked => "blocked",
            HoldOutcome::Lifted(LiftReason::NeverBlock) => "lifted-never-block",
            HoldOutcome::Lifted(LiftReason::OwnAddress) => "lifted-own-address",
            HoldOutcome::Lifted(LiftReason::Protected) => "lifted-protected",
            HoldOutcome::Lifted(LiftReason::Budget) => "lifted-budget",
            HoldOutcome::Lifted(LiftReason::Listener) => "lifted-listener",
            HoldOutcome::Lifted(LiftReason::Unblock) => "lifted-unblock",
            HoldOutcome::Lifted(LiftReason::Grace) => "lifted-grace",
            HoldOutcome::Lifted(LiftReason::ReversePath) => "lifted-reverse-path",
            HoldOutcome::Ended => "ended",
            HoldOutcome::Untracked => "untracked",
        }
    }
}

/// The version of scansentry's public JSON (`sentryctl --json`, the JSON log, `sentryd
/// --replay --json`), the `schema` key of every object; described by
/// `packaging/schema/scansentry.schema.json`. It grows when a key is removed or changes
/// meaning; a key added keeps it.
pub const SCHEMA: u32 = 1;

/// Who did what an event says: its `actor` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    /// The daemon, on its own rules (a detection's decision, an audit).
    Daemon,
    /// An administrator, through `sentryctl` (the control socket).
    Sentryctl,
    /// A signal (SIGHUP: a reload).
    Signal,
    /// Another host of the fleet.
    Fleet,
    /// The kernel: an element of a set changed outside scansentry.
    Kernel,
}

impl Actor {
    /// Its word: `daemon`, `sentryctl`, `signal`, `fleet`, `kernel`.
    pub fn as_str(self) -> &'static str {
        match self {
            Actor::Daemon => "daemon",
            Actor::Sentryctl => "sentryctl",
            Actor::Signal => "signal",
            Actor::Fleet => "fleet",
            Actor::Kernel => "kernel",
        }
    }
}

/// What an [`Act`] did: its `decision` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Did {
    /// A block (`block`; `would-block` in a dry run).
    Block,
    /// A block lifted (`unblock`; `would-unblock` in a dry run).
    Unblock,
    /// Every block lifted (`unblock-all`; `would-unblock-all`).
    UnblockAll,
    /// The configuration reloaded (`reload`).
    Reload,
    /// A reload refused (`reload-refused`).
    ReloadRefused,
    /// An audit finding reported (`audit`).
    Audit,
    /// The kernel's first line held a source (`first-line-hold`).
    Hold,
    /// The daemon lifted a hold of the kernel's first line (`first-line-lift`).
    LiftHold,
}

impl Did {
    /// Its word in `mode`.
    pub fn word(self, mode: Mode) -> &'static str {
        let dry = mode == Mode::DryRun;
        match self {
            Did::Block if dry => "would-block",
            Did::Block => "block",
            Did::Unblock if dry => "would-unblock",
            Did::Unblock => "unblock",
            Did::UnblockAll if dry => "would-unblock-all",
            Did::UnblockAll => "unblock-all",
            Did::Reload => "reload",
            Did::ReloadRefused => "reload-refused",
            Did::Audit => "audit",
            Did::Hold => "first-line-hold",
            Did::LiftHold => "first-line-lift",
        }
    }
}

/// An event that is no detection's decision: a block or unblock by hand, `unblock --all`, a
/// reload, an audit finding. Its line is the message; its facts are the same fields as a
/// decision's ([`Event`]), so that `journalctl SCANSENTRY_ADDRESS=…` and the JSON log find
/// it: `decision`, `actor`, and when it has them `address`, `duration_s`, `count`, `finding`,
/// `ports`, `uid`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Act {
    /// What was done.
    pub did: Did,
    /// Enforcing, or a dry run.
    pub mode: Mode,
    /// Who did it.
    pub actor: Actor,
    /// The address or network it is about.
    pub address: Option<IpNet>,
    /// How long a block lasts.
    pub duration_s: Option<u64>,
    /// How many blocks (`unblock --all`).
    pub count: Option<u64>,
    /// The audit finding's word (`new`, `gone`, …).
    pub finding: Option<&'static str>,
    /// The ports it is about, as `22/tcp,53/udp`.
    pub ports: Option<String>,
    /// The uid of the `sentryctl` user who asked (the control socket's peer credentials).
    pub uid: Option<u32>,
    /// The rule it followed, as a decision's `reason` (a hold of the first line lifted:
    /// `never-block`, `own-address`, `protected`, `budget`, `listener`).
    pub reason: Option<&'static str>,
    /// The line (the message).
    pub line: String,
}

impl Act {
    /// `did` by `actor`, said in `line`, with no other fact yet.
    pub fn new(did: Did, mode: Mode, actor: Actor, line: String) -> Act {
        Act {
            did,
            mode,
            actor,
            address: None,
            duration_s: None,
            count: None,
            finding: None,
            ports: None,
            uid: None,
            reason: None,
            line,
        }
    }

    /// Field `decision`.
    pub fn decision(&self) -> &'static str {
        self.did.word(self.mode)
    }

    /// Field `address`: the bare address for a single host, the CIDR otherwise.
    pub fn address(&self) -> Option<String> {
        self.address.as_ref().map(source_text)
    }
}

/// The public form of an event's fields in a JSON line: `ports` (`22/tcp,53/udp`) as
/// `[{"port": 22, "proto": "tcp"}, …]`, `tripwire` (`2323/tcp`) as `{"port": 2323, "proto":
/// "tcp"}`, `kinds` (`syn+udp`) as `["syn", "udp"]`; the rest as they are.
pub fn public_fields(
    mut fields: serde_json::Map<String, serde_json::Value>,
) -> serde_json::Map<String, serde_json::Value> {
    if let Some(serde_json::Value::String(text)) = fields.get("ports") {
        let ports: Vec<serde_json::Value> = text
            .split(',')
            .filter_map(Proto::parse_label)
            .map(|(proto, port)| serde_json::json!({"port": port, "proto": proto.as_str()}))
            .collect();
        fields.insert("ports".into(), ports.into());
    }
    if let Some(serde_json::Value::String(text)) = fields.get("tripwire")
        && let Some((proto, port)) = Proto::parse_label(text)
    {
        let port = serde_json::json!({"port": port, "proto": proto.as_str()});
        fields.insert("tripwire".into(), port);
    }
    if let Some(serde_json::Value::String(text)) = fields.get("kinds") {
        let kinds: Vec<serde_json::Value> = text
            .split('+')
            .filter(|k| !k.is_empty())
            .map(|k| serde_json::Value::String(k.into()))
            .collect();
        fields.insert("kinds".into(), kinds.into());
    }
    fields
}

/// One JSON log line (without its newline): `timestamp` first when there is one (fail2ban's
/// date pattern looks for it there), then `schema`, `level` and the event's `fields` (its
/// `message` among them) in their public form, keys in order.
pub fn json_line(
    timestamp: Option<&str>,
    level: &str,
    fields: serde_json::Map<String, serde_json::Value>,
) -> String {
    let mut object = public_fields(fields);
    object.insert("schema".into(), SCHEMA.into());
    object.insert("level".into(), level.into());
    let body = serde_json::Value::Object(object).to_string();
    match timestamp {
        Some(at) => format!(
            "{{\"timestamp\":{},{}",
            serde_json::Value::from(at),
            &body[1..]
        ),
        None => body,
    }
}

/// A block as PortSentry's history file records it, for the tools that read that file
/// (fail2ban's `portsentry` filter, logwatch): `1763769107 - 11/21/2025 23:51:47 Host:
/// 198.51.100.2/198.51.100.2 Port: 22 TCP Blocked`. PortSentry writes its host's local time
/// after the epoch; this writes UTC (the epoch, which readers go by, is the same).
pub fn history_line(at: Timestamp, addr: std::net::IpAddr, proto: Proto, port: u16) -> String {
    let secs = at.as_micros() / 1_000_000;
    let stamp = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs),
    )
    .to_string();
    // 2025-11-21T23:51:47Z → 11/21/2025 23:51:47
    let (date, time) = stamp
        .trim_end_matches('Z')
        .split_once('T')
        .unwrap_or((&stamp, ""));
    let mut ymd = date.splitn(3, '-');
    let (y, m, d) = (
        ymd.next().unwrap_or(""),
        ymd.next().unwrap_or(""),
        ymd.next().unwrap_or(""),
    );
    let proto = match proto {
        Proto::Tcp => "TCP",
        Proto::Udp => "UDP",
        Proto::Sctp => "SCTP",
        Proto::Ip => "IP",
    };
    format!("{secs} - {m}/{d}/{y} {time} Host: {addr}/{addr} Port: {port} {proto} Blocked")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_line_has_its_timestamp_first_its_schema_and_ports_as_an_array() {
        let mut fields = serde_json::Map::new();
        fields.insert("message".into(), "blocked 203.0.113.7 for 1h".into());
        fields.insert("ports".into(), "22/tcp,53/udp".into());
        fields.insert("kinds".into(), "syn+udp".into());
        let line = json_line(Some("2026-12-07T06:00:00.000000Z"), "info", fields);
        assert!(
            line.starts_with(r#"{"timestamp":"2026-12-07T06:00:00.000000Z","#),
            "{line}"
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["schema"], SCHEMA);
        assert_eq!(v["level"], "info");
        assert_eq!(v["kinds"], serde_json::json!(["syn", "udp"]));
        assert_eq!(
            v["ports"],
            serde_json::json!([{"port": 22, "proto": "tcp"}, {"port": 53, "proto": "udp"}])
        );
    }

    fn detection() -> Detection {
        let mut kinds = crate::detect::ScanKinds::of(crate::wire::ProbeKind::Syn);
        kinds.insert(crate::detect::ScanKinds::of(crate::wire::ProbeKind::Udp));
        Detection {
            source: "2001:db8::/64".parse().unwrap(),
            addr: "2001:db8::7".parse().unwrap(),
            kinds,
            ports: vec![(Proto::Tcp, 22), (Proto::Udp, 53)],
            first_seen: Timestamp::from_micros(1_000_000),
            last_seen: Timestamp::from_micros(3_500_000),
            packets: 9,
            score: 21,
            several_addresses: false,
            arrived_on: None,
            tripwire: None,
            signature: None,
        }
    }

    /// Every kind of decision, one each, with the line, label and JSON action it makes.
    fn decisions() -> Vec<Decision> {
        let net: IpNet = "2001:db8::/64".parse().unwrap();
        let addr: IpAddr = "2001:db8::7".parse().unwrap();
        let at = |s: u64| Timestamp::from_micros(s * 1_000_000);
        let hour = Duration::from_secs(3600);
        let reverse_path = |came_in: Option<&str>, route: Option<&str>| Decision::ReversePath {
            addr,
            came_in: came_in.map(Into::into),
            route: route.map(Into::into),
        };
        vec![
            Decision::Block {
                net,
                ttl: hour,
                offence: 1,
                replaces: Vec::new(),
            },
            Decision::Block {
                net,
                ttl: 2 * hour,
                offence: 2,
                replaces: Vec::new(),
            },
            Decision::Refresh { net, ttl: hour },
            Decision::AlreadyBlocked {
                net,
                remaining: Duration::from_secs(3552),
            },
            Decision::OverBudget {
                net,
                budget: Budget::Rate(50),
                waits: true,
            },
            Decision::OverBudget {
                net,
                budget: Budget::Size(10),
                waits: false,
            },
            Decision::NeverBlock {
                addr,
                reason: "monitoring".into(),
            },
            Decision::TooFewPorts {
                addr,
                ports: 1,
                min: 3,
            },
            Decision::TooFewPorts {
                addr,
                ports: 2,
                min: 3,
            },
            reverse_path(Some("eth1"), Some("eth0")),
            reverse_path(None, Some("eth0")),
            reverse_path(None, None),
            Decision::Protected {
                addr,
                peer: addr,
                port: 22,
                since: at(100),
                ended: None,
            },
            Decision::Protected {
                addr,
                peer: "2001:db8::8".parse().unwrap(),
                port: 443,
                since: at(100),
                ended: Some(at(200)),
            },
            Decision::InGrace {
                addr,
                remaining: Duration::from_secs(250),
            },
        ]
    }

    /// The log line of each kind of decision, word for word, in both modes.
    #[test]
    fn each_decision_has_its_line() {
        let d = detection();
        let said: Vec<String> = decisions()
            .iter()
            .map(|decision| line(&d, decision, Mode::Enforcing))
            .collect();
        assert_eq!(
            said,
            [
                "blocked 2001:db8::/64 for 1h: syn+udp scan, 2 ports in 2.5s",
                "blocked 2001:db8::/64 for 2h: syn+udp scan, 2 ports in 2.5s (offence 2)",
                "refreshed the block of 2001:db8::/64 to 1h: syn+udp scan, 2 ports in 2.5s",
                "2001:db8::/64 still scanning, already blocked for 59m 12s more: syn+udp scan, 2 ports in 2.5s",
                "not blocking 2001:db8::/64: 50 new blocks in the last second ([respond] max-new-blocks-per-second): syn+udp scan, 2 ports in 2.5s; waits for the budget (up to 30s)",
                "not blocking 2001:db8::/64: 10 blocks active ([respond] max-blocks): syn+udp scan, 2 ports in 2.5s",
                "not blocking 2001:db8::7: on never-block list (monitoring): syn+udp scan, 2 ports in 2.5s",
                "not blocking 2001:db8::7: 1 trap port, fewer than [respond] min-ports = 3: syn+udp scan, 2 ports in 2.5s",
                "not blocking 2001:db8::7: 2 trap ports, fewer than [respond] min-ports = 3: syn+udp scan, 2 ports in 2.5s",
                "not blocking 2001:db8::7: its probes came in on eth1 but the route back to it leaves by eth0 (reverse path): syn+udp scan, 2 ports in 2.5s",
                "not blocking 2001:db8::7: its probes came in on an interface but the route back to it leaves by eth0 (reverse path): syn+udp scan, 2 ports in 2.5s",
                "not blocking 2001:db8::7: no route back to it (reverse path): syn+udp scan, 2 ports in 2.5s",
                "not blocking 2001:db8::7: established session to 22/tcp since 1970-01-01T00:01:40Z (protected peer; [respond] protect): syn+udp scan, 2 ports in 2.5s",
                "not blocking 2001:db8::7: session (of 2001:db8::8) to 443/tcp from 1970-01-01T00:01:40Z to 1970-01-01T00:03:20Z (protected peer; [respond] protect-for): syn+udp scan, 2 ports in 2.5s",
                "not blocking 2001:db8::7: unblocked by hand, grace period for 4m 10s more: syn+udp scan, 2 ports in 2.5s",
            ]
        );
        let dry: Vec<String> = decisions()[..4]
            .iter()
            .map(|decision| line(&d, decision, Mode::DryRun))
            .collect();
        assert_eq!(
            dry,
            [
                "would block 2001:db8::/64 for 1h: syn+udp scan, 2 ports in 2.5s",
                "would block 2001:db8::/64 for 2h: syn+udp scan, 2 ports in 2.5s (offence 2)",
                "would refresh the block of 2001:db8::/64 to 1h: syn+udp scan, 2 ports in 2.5s",
                "2001:db8::/64 still scanning, already blocked for 59m 12s more: syn+udp scan, 2 ports in 2.5s",
            ]
        );
    }

    /// An event's fields say what its line says: the network and duration of a block (and
    /// "would-block" in a dry run), the rule of a refusal and nothing it does not name.
    #[test]
    fn an_events_fields_name_the_decision_its_network_and_the_rule_that_refused() {
        let d = detection();
        let block = &decisions()[1];
        let e = Event::of(&d, block, Mode::Enforcing);
        assert_eq!(e.address().to_string(), "2001:db8::7");
        assert_eq!(
            e.network().map(|n| n.to_string()).as_deref(),
            Some("2001:db8::/64")
        );
        assert_eq!(
            (e.kind(), e.ports()),
            ("syn+udp".into(), "22/tcp,53/udp".into())
        );
        assert_eq!((e.probes(), e.window_ms()), (9, 2500));
        assert_eq!((e.duration_s(), e.offence()), (Some(7200), Some(2)));
        assert_eq!((e.decision(), e.reason()), ("block", None));
        assert_eq!(Event::of(&d, block, Mode::DryRun).decision(), "would-block");
        let refused = &decisions()[8];
        let e = Event::of(&d, refused, Mode::Enforcing);
        assert_eq!(
            (e.decision(), e.reason()),
            ("not-blocked", Some("min-ports"))
        );
        assert_eq!(
            (e.network(), e.duration_s(), e.offence()),
            (None, None, None)
        );
        let waited =
            Event::of(&d, block, Mode::Enforcing).after_waiting(Duration::from_millis(1250));
        assert!(
            waited
                .line()
                .ends_with("(offence 2) after waiting 1.2s for the budget"),
            "{}",
            waited.line()
        );
        let not_waited =
            Event::of(&d, refused, Mode::Enforcing).after_waiting(Duration::from_secs(1));
        assert_eq!(not_waited.line(), e.line(), "only a block says it waited");
    }

    /// One vocabulary: the metrics label of each kind of decision is its `reason` field when a
    /// rule kept it from a block, else its `decision` field, and `--replay --json` names it
    /// with the same word as enforced.
    #[test]
    fn each_decision_has_one_word_in_every_rendering() {
        let d = detection();
        let labels: Vec<&str> = decisions()
            .iter()
            .map(|decision| Event::of(&d, decision, Mode::Enforcing).label())
            .collect();
        assert_eq!(
            labels,
            [
                "block",
                "block",
                "refresh",
                "already-blocked",
                "budget",
                "budget",
                "never-block",
                "min-ports",
                "min-ports",
                "reverse-path",
                "reverse-path",
                "reverse-path",
                "protected",
                "protected",
                "grace",
            ]
        );
        for decision in &decisions() {
            for mode in [Mode::Enforcing, Mode::DryRun] {
                let e = Event::of(&d, decision, mode);
                assert_eq!(e.label(), e.reason().unwrap_or(e.decision()));
                let json = Event::of(&d, decision, Mode::DryRun).json();
                assert_eq!(
                    json["action"],
                    Event::of(&d, decision, Mode::Enforcing).label()
                );
            }
        }
        let dry: Vec<&str> = decisions()[..4]
            .iter()
            .map(|decision| Event::of(&d, decision, Mode::DryRun).label())
            .collect();
        assert_eq!(
            dry,
            [
                "would-block",
                "would-block",
                "would-refresh",
                "already-blocked"
            ]
        );
        let words: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            words,
            [
                "budget",
                "never-block",
                "grace",
                "min-ports",
                "reverse-path",
                "protected"
            ]
        );
    }

    /// Issue 27: a tripwire detection names its port in the line and the replay's JSON.
    #[test]
    fn a_tripwire_detection_names_its_port() {
        let d = Detection {
            ports: vec![(Proto::Tcp, 2323)],
            tripwire: Some((Proto::Tcp, 2323)),
            signature: None,
            ..detection()
        };
        let event = Event::of(&d, &decisions()[1], Mode::Enforcing);
        assert_eq!(
            event.line(),
            "blocked 2001:db8::/64 for 2h: tripwire 2323/tcp, syn+udp scan, 1 port in 2.5s \
             (offence 2)"
        );
        assert_eq!(event.tripwire().as_deref(), Some("2323/tcp"));
        let json = event.json();
        assert_eq!(
            json["tripwire"],
            serde_json::json!({"port": 2323, "proto": "tcp"})
        );
        crate::ctl::json::check_schema(&json);
    }

    /// The object `--replay --json` prints for a block and for a refusal.
    #[test]
    fn the_replay_json_of_a_block_and_a_refusal() {
        let d = detection();
        let block = Event::of(&d, &decisions()[1], Mode::DryRun).json();
        assert_eq!(
            block,
            serde_json::json!({
                "schema": 1,
                "type": "detection",
                "detected_at": "1970-01-01T00:00:03.500000Z",
                "prefix": "2001:db8::/64",
                "address": "2001:db8::7",
                "kinds": ["syn", "udp"],
                "ports": [{"proto": "tcp", "port": 22}, {"proto": "udp", "port": 53}],
                "tripwire": null,
                "signature": null,
                "first_seen_at": "1970-01-01T00:00:01.000000Z",
                "last_seen_at": "1970-01-01T00:00:03.500000Z",
                "probes": 9,
                "score": 21,
                "action": "block",
                "network": "2001:db8::/64",
                "duration_s": 7200,
                "offence": 2,
                "never_block_reason": null,
            })
        );
        let never = Event::of(&d, &decisions()[6], Mode::DryRun).json();
        assert_eq!(
            (
                &never["action"],
                &never["never_block_reason"],
                &never["network"]
            ),
            (
                &serde_json::json!("never-block"),
                &serde_json::json!("monitoring"),
                &serde_json::Value::Null
            )
        );
        crate::ctl::json::check_schema(&block);
        crate::ctl::json::check_schema(&never);
        let over = Event::of(&d, &decisions()[4], Mode::DryRun).json();
        assert_eq!(
            (&over["action"], &over["network"]),
            (
                &serde_json::json!("budget"),
                &serde_json::json!("2001:db8::/64")
            )
        );
    }

    #[test]
    fn history_lines_match_portsentrys_format_and_fail2bans_filter() {
        let line = history_line(
            Timestamp::from_micros(1_763_769_107_731_914),
            "198.51.100.2".parse().unwrap(),
            Proto::Tcp,
            22,
        );
        assert_eq!(
            line,
            "1763769107 - 11/21/2025 23:51:47 Host: 198.51.100.2/198.51.100.2 Port: 22 TCP Blocked"
        );
        // fail2ban's filter.d/portsentry.conf: failregex = /<HOST> Port\: [0-9]+ (TCP|UDP) Blocked$
        let (_, tail) = line.rsplit_once('/').unwrap();
        let words: Vec<&str> = tail.split(' ').collect();
        assert_eq!(words[0], "198.51.100.2");
        assert_eq!(words[1], "Port:");
        assert!(words[2].bytes().all(|b| b.is_ascii_digit()));
        assert!(matches!(words[3], "TCP" | "UDP"));
        assert_eq!(words[4], "Blocked");
        assert_eq!(words.len(), 5);
        let v6 = history_line(
            Timestamp::ZERO,
            "2001:db8::7".parse().unwrap(),
            Proto::Udp,
            53,
        );
        assert_eq!(
            v6,
            "0 - 01/01/1970 00:00:00 Host: 2001:db8::7/2001:db8::7 Port: 53 UDP Blocked"
        );
    }

    /// Issue 13, 6: 3,000 forged packets made 3,007 log lines, and journald dropped real ones.
    #[test]
    fn issue_13_a_flood_of_refusals_is_folded_into_a_summary() {
        let mut fold = Fold::default();
        let at = |ms: u64| Timestamp::from_micros(ms * 1000);
        let said = (0..3000u64)
            .filter(|i| fold.offer(Folded::Budget, at(*i)))
            .count();
        assert_eq!(said, 10);
        assert!(
            fold.offer(Folded::NeverBlock, at(3000)),
            "each kind has its own count"
        );
        assert_eq!(
            fold.summaries(at(9_999)),
            Vec::<String>::new(),
            "the window is not over"
        );
        assert_eq!(
            fold.summaries(at(10_000)),
            ["… 2990 more refused by the budget in the last 10s"]
        );
        // A new window: said again.
        assert!(fold.offer(Folded::Budget, at(10_001)));
        // Nothing left unsaid: no summary; the never-block window ends quietly.
        assert_eq!(fold.summaries(at(30_000)), Vec::<String>::new());
    }
}
