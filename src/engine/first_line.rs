//! The kernel's first line, as the engine sees it: the facts it keeps the kernel's sets true to
//! (listeners, tripwire ports, protected peers, the ephemeral range), and the holds the kernel
//! reports, judged here.
//!
//! The kernel holds a source on its own (design: `first-line-hold`, 5 s by default, never
//! refreshed). The daemon then decides, within milliseconds, with the evidence it has:
//! - a source it never blocks (the never-block list, an address of this host, a protected
//!   peer) is lifted at once, and said;
//! - holds count toward the budget's partitions (IPv4 /24, IPv6 /48): past
//!   [`PARTITION_HOLDS`] in [`PARTITION_WINDOW`] from one partition, the hold is lifted and the
//!   partition spared for [`SPARE_FOR`], said once per partition and window, so that a forger
//!   cannot fill the kernel's hold set from one network;
//! - otherwise the hold is recorded (at most [`MAX_HOLDS`]), and the daemon judges the source
//!   as always, from its capture, which sees the held probes too: a block says the kernel held
//!   the source first; a port the held source probed that begins to listen lifts the hold at
//!   the next reading of the socket table; a hold that ends unconfirmed is kept
//!   [`KEEP_DECIDED`] for `sentryctl why`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::*;
use crate::control::protocol::HoldInfo;
use crate::firewall::{FirstLineCounters, FirstLineFacts, KernelHold};
pub use crate::report::{HoldOutcome, LiftReason};

/// Holds the engine keeps at most: twice the kernel's hold set (4,096 elements); past it a
/// hold is not recorded, only counted (`untracked`).
pub const MAX_HOLDS: usize = 8192;
/// Holds one IPv4 /24 or IPv6 /48 may have within [`PARTITION_WINDOW`] before the next are
/// lifted and the partition spared.
pub const PARTITION_HOLDS: u32 = 16;
/// The window of [`PARTITION_HOLDS`].
pub const PARTITION_WINDOW: Duration = Duration::from_secs(60);
/// How long a partition that spent its holds is spared by the kernel's first line.
pub const SPARE_FOR: Duration = Duration::from_secs(60);
/// How long a hold the daemon decided on (blocked, lifted, ended) is kept for `why`.
pub const KEEP_DECIDED: Duration = Duration::from_secs(600);
/// Ports a held source probed, kept per hold (the crossing probe's first).
pub const HOLD_PORTS: usize = 16;
/// How long the first line's counters of full sets must not grow before the daemon says that
/// it counts again (the score set's timeout: what filled it has gone by then).
pub const FULL_QUIET: Duration = Duration::from_secs(60);
/// A hold's length when the configuration does not say (the kernel's default).
pub const DEFAULT_HOLD: Duration = Duration::from_secs(5);

/// One hold the engine recorded.
#[derive(Clone, Debug)]
pub(super) struct Hold {
    /// When it was reported, and when the kernel ends it.
    at: Timestamp,
    until: Timestamp,
    /// The probe that crossed the kernel's threshold, and its TCP flags.
    probe: (Proto, u16),
    tcp_flags: Option<u8>,
    /// Ports the held source probed, as the capture saw them (the crossing probe's first; at
    /// most [`HOLD_PORTS`]).
    ports: Vec<(Proto, u16)>,
    /// What the daemon decided, when, and the words that say why.
    decided: Option<(HoldOutcome, Timestamp, String)>,
}

/// One partition's holds in its window.
#[derive(Clone, Copy, Debug)]
struct Partition {
    since: Timestamp,
    holds: u32,
    /// Spared until then (said once per window).
    spared_until: Option<Timestamp>,
}

/// The engine's side of the kernel's first line.
#[derive(Debug, Default)]
pub(super) struct FirstLine {
    /// The facts the kernel holds, as last loaded (`None`: to be loaded).
    sent: Option<FirstLineFacts>,
    /// The listening ports of the last reading, to find those that began to listen.
    listening: BTreeSet<(Proto, u16)>,
    /// The holds recorded, by source (at most [`MAX_HOLDS`]).
    pub(super) holds: HashMap<IpAddr, Hold>,
    /// Of them, those the daemon has not decided on (the capture looks its sources up only
    /// while there are some).
    pending: usize,
    /// The kernel's hold count and counters as last read, and when ([`KERNEL_READ_FOR`]: a
    /// flood of scrapes reads them once a second).
    read: Option<(Timestamp, usize, FirstLineCounters)>,
    partitions: HashMap<IpNet, Partition>,
    /// Holds since start, by outcome.
    outcomes: BTreeMap<&'static str, u64>,
    /// A loading of the facts failed (said once until one works).
    failing: bool,
    /// Holds went unheard: the hold sets are read at the next second.
    missed: bool,
    /// The kernel's counters as read at the last second, and since when they have not grown
    /// while the line is said to be full (`None`: not said full).
    counters: Option<FirstLineCounters>,
    full_since_growth: Option<Timestamp>,
}

impl FirstLine {
    /// Counts a hold of `outcome`.
    fn count(&mut self, outcome: HoldOutcome) {
        *self.outcomes.entry(outcome.as_str()).or_default() += 1;
    }

    /// Counts a hold of `source`'s partition at `now`: whether it is over the partition's
    /// holds, and whether the partition is to be spared now (not already).
    fn spend(&mut self, source: IpAddr, now: Timestamp) -> (bool, bool) {
        let prefix = crate::respond::prefix_of(source);
        if !self.partitions.contains_key(&prefix) && self.partitions.len() >= MAX_HOLDS {
            // As many partitions within a minute as the holds kept (those done with are
            // forgotten each second): this one has had none, so it is not over.
            return (false, false);
        }
        let p = self.partitions.entry(prefix).or_insert(Partition {
            since: now,
            holds: 0,
            spared_until: None,
        });
        if now.saturating_since(p.since) >= PARTITION_WINDOW {
            *p = Partition {
                since: now,
                holds: 0,
                spared_until: p.spared_until.filter(|&t| t > now),
            };
        }
        p.holds = p.holds.saturating_add(1);
        if p.holds <= PARTITION_HOLDS {
            return (false, false);
        }
        let spare = p.spared_until.is_none_or(|t| t <= now);
        if spare {
            p.spared_until = Some(now.saturating_add(SPARE_FOR));
        }
        (true, spare)
    }

    /// Records a hold, with the ports the capture saw its source probe before it (`before`);
    /// `false` when [`MAX_HOLDS`] are kept and none can go.
    fn record(
        &mut self,
        source: IpAddr,
        hold: &KernelHold,
        before: Vec<(Proto, u16)>,
        (length, now): (Duration, Timestamp),
    ) -> bool {
        if !self.holds.contains_key(&source) && self.holds.len() >= MAX_HOLDS {
            self.make_room();
        }
        if !self.holds.contains_key(&source) && self.holds.len() >= MAX_HOLDS {
            return false;
        }
        let probe = (hold.proto, hold.port);
        let mut ports = vec![probe];
        for port in before {
            if ports.len() < HOLD_PORTS && !ports.contains(&port) {
                ports.push(port);
            }
        }
        let was_pending = self.holds.get(&source).is_some_and(|h| h.decided.is_none());
        if !was_pending {
            self.pending += 1;
        }
        self.holds.insert(
            source,
            Hold {
                at: now,
                until: now.saturating_add(length),
                probe,
                tcp_flags: hold.tcp_flags,
                ports,
                decided: None,
            },
        );
        true
    }

    /// Forgets holds decided more than [`KEEP_DECIDED`] ago, and partitions whose window
    /// ended and that are not spared (each second).
    fn forget_done(&mut self, now: Timestamp) {
        self.holds.retain(|_, h| {
            h.decided
                .as_ref()
                .is_none_or(|(_, at, _)| now.saturating_since(*at) < KEEP_DECIDED)
        });
        self.partitions.retain(|_, p| {
            now.saturating_since(p.since) < PARTITION_WINDOW
                || p.spared_until.is_some_and(|t| t > now)
        });
    }

    /// [`MAX_HOLDS`] are kept: the eighth of them decided first are forgotten at once (one
    /// sort for the next thousand holds, not a pass over all for each); none when every hold
    /// waits for a decision.
    fn make_room(&mut self) {
        let mut decided: Vec<(Timestamp, IpAddr)> = self
            .holds
            .iter()
            .filter_map(|(s, h)| h.decided.as_ref().map(|(_, at, _)| (*at, *s)))
            .collect();
        let room = (MAX_HOLDS / 8).min(decided.len());
        if room == 0 {
            return;
        }
        decided.select_nth_unstable(room - 1);
        for (_, source) in &decided[..room] {
            self.holds.remove(source);
        }
    }

    /// The hold of `source` the daemon has not decided on, if any.
    fn pending(&mut self, source: IpAddr) -> Option<&mut Hold> {
        self.holds.get_mut(&source).filter(|h| h.decided.is_none())
    }

    /// Decides the pending hold of `source`: `outcome`, said by `why`; whether there was one.
    fn decide(
        &mut self,
        source: IpAddr,
        outcome: HoldOutcome,
        why: String,
        now: Timestamp,
    ) -> bool {
        let Some(hold) = self.pending(source) else {
            return false;
        };
        hold.decided = Some((outcome, now, why));
        self.pending = self.pending.saturating_sub(1);
        self.count(outcome);
        true
    }

    /// The holds past their end with no decision: ended (counted); returns how many.
    fn end(&mut self, now: Timestamp) -> usize {
        let mut ended = 0;
        for hold in self.holds.values_mut() {
            if hold.decided.is_none() && hold.until <= now {
                hold.decided = Some((
                    HoldOutcome::Ended,
                    hold.until,
                    "it ended without a block".into(),
                ));
                ended += 1;
            }
        }
        *self
            .outcomes
            .entry(HoldOutcome::Ended.as_str())
            .or_default() += ended as u64;
        self.pending = self.pending.saturating_sub(ended);
        ended
    }

    /// The pending holds of sources that probed one of `ports`, with the first such port.
    fn probed(&self, ports: &BTreeSet<(Proto, u16)>) -> Vec<(IpAddr, (Proto, u16))> {
        let mut found: Vec<(IpAddr, (Proto, u16))> = self
            .holds
            .iter()
            .filter(|(_, h)| h.decided.is_none())
            .filter_map(|(s, h)| h.ports.iter().find(|p| ports.contains(p)).map(|p| (*s, *p)))
            .collect();
        found.sort_unstable();
        found
    }
}

impl Engine {
    /// At a start: the listening ports as read now are not new, and the facts are loaded.
    pub(super) fn first_line_started(&mut self) {
        self.first_line.listening = self.pipeline.listeners().ports();
        self.sync_first_line(true);
    }

    /// The first line's facts now: the listening ports as last read, the protected peers, and
    /// what the configuration says ([`crate::first_line::facts`]).
    fn first_line_facts(&self) -> FirstLineFacts {
        crate::first_line::facts(
            self.config(),
            self.pipeline.listeners().ports(),
            self.peers.addresses().map(IpNet::from).collect(),
            self.host.local_port_range(),
        )
    }

    /// Keeps the first line's sets true: loads the facts when they changed since the last
    /// loading, or always with `anew` (a start, a reload, a restored table: the sets may be
    /// new and empty). Nothing without a first line. A failure is said once until a loading
    /// works; the next second tries again.
    pub(super) fn sync_first_line(&mut self, anew: bool) {
        if !self.firewall.has_first_line() {
            self.first_line.sent = None;
            return;
        }
        let facts = self.first_line_facts();
        if !anew && self.first_line.sent.as_ref() == Some(&facts) {
            return;
        }
        match self.firewall.set_first_line_facts(&facts) {
            Ok(()) => {
                self.first_line.sent = Some(facts);
                if std::mem::take(&mut self.first_line.failing) {
                    self.log("the kernel's first line has this host's facts again");
                }
            }
            Err(e) => {
                self.first_line.sent = None;
                if !std::mem::replace(&mut self.first_line.failing, true) {
                    self.warn(format!(
                        "cannot load the listening ports, tripwires and peers into the \
                         kernel's first line ({e}); trying again every second"
                    ));
                }
            }
        }
    }

    /// After a reading of the socket table: the holds of sources that probed a port that has
    /// just begun to listen are lifted (the kernel's `listen` set stops new holds, not those
    /// made), then the facts are loaded if they changed; holds past their end are ended.
    pub(super) fn first_line_second(&mut self) {
        let now = self.clock.now();
        let listening = self.pipeline.listeners().ports();
        let new: BTreeSet<(Proto, u16)> = listening
            .difference(&self.first_line.listening)
            .copied()
            .collect();
        self.first_line.listening = listening;
        if !new.is_empty() {
            for (source, (proto, port)) in self.first_line.probed(&new) {
                let why = format!("{}, which it probed, has a listener now", proto.label(port));
                self.lift_hold(source, LiftReason::Listener, why, now);
            }
        }
        // The peers set first, so that a peer's hold lifted is not made again.
        self.sync_first_line(false);
        self.lift_new_peers(now);
        if std::mem::take(&mut self.first_line.missed) {
            self.lift_unheard(now);
        }
        self.first_line.end(now);
        self.first_line.forget_done(now);
        self.watch_full(now);
    }

    /// Reads the kernel's counters of probes not counted and holds not made for full sets
    /// (each second): their growth (a flood of forged sources has blinded the line, which
    /// fails open) is said once, and [`FULL_QUIET`] without growth, that the line counts
    /// again. The first reading is the baseline (a table kept from before counts on).
    fn watch_full(&mut self, now: Timestamp) {
        let Some(c) = self.firewall.first_line_counters() else {
            return;
        };
        let Some(last) = self.first_line.counters.replace(c) else {
            return;
        };
        let (score, hold) = (
            c.score_full.saturating_sub(last.score_full),
            c.hold_full.saturating_sub(last.hold_full),
        );
        if score > 0 || hold > 0 {
            if self.first_line.full_since_growth.replace(now).is_none() {
                self.warn(format!(
                    "the kernel's first line is full: {} not counted, {} not made (a flood of \
                     forged sources, most likely); it lets probes pass until its sets empty, \
                     and the daemon still judges every source from its capture",
                    report::count(score, "probe", "probes"),
                    report::count(hold, "hold", "holds")
                ));
            }
        } else if let Some(since) = self.first_line.full_since_growth
            && now.saturating_since(since) >= FULL_QUIET
        {
            self.first_line.full_since_growth = None;
            self.log(format!(
                "the kernel's first line counts again: nothing lost to full sets for {}",
                human(FULL_QUIET)
            ));
        }
    }

    /// The pending holds of sources that this reading made protected peers (a conversation
    /// the kernel's peers set did not have yet when it held them: forged probes within the
    /// second after the administrator connected) are lifted, as a hold reported now would be.
    fn lift_new_peers(&mut self, now: Timestamp) {
        if self.first_line.pending == 0 || self.config().respond.protect == Protect::None {
            return;
        }
        let mut peers: Vec<(IpAddr, u16)> = self
            .first_line
            .holds
            .iter()
            .filter(|(_, h)| h.decided.is_none())
            .filter_map(|(s, _)| {
                let c = self.peers.protecting(IpNet::from(*s), now)?;
                Some((*s, c.port))
            })
            .collect();
        peers.sort_unstable();
        for (source, port) in peers {
            let why = format!("a protected peer (a conversation on port {port})");
            self.lift_hold(source, LiftReason::Protected, why, now);
        }
    }

    /// The kernel's first line held a source ([`KernelHold`]): lifted at once when the daemon
    /// never blocks it (never-block, an address of this host, a protected peer) or its
    /// partition has spent its holds; otherwise recorded, and judged as any source is, from
    /// the capture.
    pub fn kernel_held(&mut self, hold: KernelHold) {
        let now = self.clock.now();
        let source = hold.source.to_canonical();
        let probe = hold.proto.label(hold.port);
        // The capture was first: its block holds the source already (the kernel held it
        // before that block, which its rules put first, but reported it after).
        if let Some(b) = self.responder.block_of(IpNet::from(source), now) {
            self.held_and_blocked(&hold, b, now);
            return;
        }
        if let Some((reason, why)) = self.never_held(source, now) {
            self.first_line.count(HoldOutcome::Lifted(reason));
            self.say_lift(source, reason, &why, now);
            self.lift_in_kernel(source);
            if let Some(left) = self.responder.grace_left(IpNet::from(source), now) {
                // A grace period the kernel's spare sets lost (made anew): spared again, so
                // that its next probes are not held and lifted one by one.
                self.spare_graced(IpNet::from(source), left);
            }
            return;
        }
        let (over, spare) = self.first_line.spend(source, now);
        if over {
            self.first_line
                .count(HoldOutcome::Lifted(LiftReason::Budget));
            self.lift_in_kernel(source);
            if spare {
                self.spare_partition(source, now);
            }
            return;
        }
        let length = self.hold_length();
        let before = self.pipeline.ports_of(source, HOLD_PORTS);
        self.first_line.read = None;
        if !self.first_line.record(source, &hold, before, (length, now)) {
            self.first_line.count(HoldOutcome::Untracked);
        }
        if self.fold.offer(report::Folded::Held, now) {
            let flags = flags_text(hold.tcp_flags);
            self.act_with(
                Level::Info,
                (report::Did::Hold, report::Actor::Kernel),
                (Some(IpNet::from(source)), Some(length.as_secs())),
                format!(
                    "the kernel's first line held {source} for {} after a probe to \
                     {probe}{flags}",
                    human(length)
                ),
                |act| act.ports = Some(probe.clone()),
            );
        }
    }

    /// The shell's queue of holds, or the kernel's socket to it, was full: `missed` reports of
    /// the kernel's first line were dropped (counted `untracked`; said, folded). Their holds end by themselves within
    /// `first-line-hold`; their sources are judged from the capture as any other; the hold
    /// sets are read at the next second, and a source never held found there is lifted.
    pub fn holds_missed(&mut self, missed: u64) {
        self.first_line.missed = true;
        *self
            .first_line
            .outcomes
            .entry(HoldOutcome::Untracked.as_str())
            .or_default() += missed;
        if self.fold.offer(report::Folded::Held, self.clock.now()) {
            self.warn(format!(
                "{} of the kernel's first line not heard (the daemon's queue of them, or its \
                 socket, was full): they end by themselves within {}, and the daemon judges their sources \
                 from its capture",
                report::count(missed, "hold", "holds"),
                human(self.hold_length())
            ));
        }
    }

    /// The reader heard `unreadable` holds of the kernel's first line whose packet it could
    /// not read (IPv6 extension headers past the bytes the kernel copies, which the kernel
    /// walks whole): their sources are unknown. Counted `untracked` and said (folded); the
    /// hold sets are read at the next second, and a source never held found there is lifted,
    /// as after holds that went unheard.
    pub fn holds_unreadable(&mut self, unreadable: u64) {
        self.first_line.missed = true;
        *self
            .first_line
            .outcomes
            .entry(HoldOutcome::Untracked.as_str())
            .or_default() += unreadable;
        if self.fold.offer(report::Folded::Held, self.clock.now()) {
            self.warn(format!(
                "{} of the kernel's first line whose packet could not be read (extension \
                 headers past the bytes the kernel copies): the hold sets are read at the \
                 next second; each ends by itself within {}, and the daemon judges its source \
                 from its capture",
                report::count(unreadable, "hold", "holds"),
                human(self.hold_length())
            ));
        }
    }

    /// Holds went unheard: the kernel's hold sets are read (once, at most 8,192 elements),
    /// and each source in them the daemon never lets be held, and has not lifted, is lifted.
    fn lift_unheard(&mut self, now: Timestamp) {
        let held = match self.firewall.holds() {
            Ok(held) => held,
            Err(e) => {
                self.warn(format!("cannot read the kernel's first line's holds: {e}"));
                return;
            }
        };
        for source in held.iter().map(|h| h.net.addr()) {
            if self.first_line.pending(source).is_some() {
                continue;
            }
            if let Some((reason, why)) = self.never_held(source, now) {
                // Counted untracked when it went unheard; lifted, it is counted so instead.
                if let Some(n) = self
                    .first_line
                    .outcomes
                    .get_mut(HoldOutcome::Untracked.as_str())
                {
                    *n = n.saturating_sub(1);
                }
                self.first_line.count(HoldOutcome::Lifted(reason));
                self.say_lift(source, reason, &why, now);
                self.lift_in_kernel(source);
            }
        }
    }

    /// A hold reported of a source the daemon has blocked already (block `b`): counted
    /// `blocked`; when the block is recent (its report came in after the capture's frames
    /// that made it), recorded for `why` and said, as a block after a hold is.
    fn held_and_blocked(&mut self, hold: &KernelHold, b: ActiveBlock, now: Timestamp) {
        let source = hold.source.to_canonical();
        let before = now.saturating_since(b.since);
        if before > EVERY_SECOND {
            self.first_line.count(HoldOutcome::Blocked);
            return;
        }
        let length = self.hold_length();
        let why = format!(
            "the daemon had blocked it from its capture {} before the kernel's report came in",
            report::short(before)
        );
        self.first_line.read = None;
        if self
            .first_line
            .record(source, hold, Vec::new(), (length, now))
        {
            self.first_line
                .decide(source, HoldOutcome::Blocked, why, now);
        } else {
            self.first_line.count(HoldOutcome::Blocked);
        }
        if self.fold.offer(report::Folded::Held, now) {
            let probe = hold.proto.label(hold.port);
            self.act_with(
                Level::Info,
                (report::Did::Hold, report::Actor::Kernel),
                (Some(IpNet::from(source)), Some(length.as_secs())),
                format!(
                    "the kernel's first line held {source} after a probe to {probe}{}; the \
                     daemon's block of {}, made from its capture {} before this report came \
                     in, confirms it",
                    flags_text(hold.tcp_flags),
                    source_text(&b.net),
                    report::short(before)
                ),
                |act| act.ports = Some(probe),
            );
        }
    }

    /// Why the daemon never lets `source` be held, if it does not: an address of this host
    /// (said so, though the never-block list holds it too), the never-block list, a protected
    /// peer.
    fn never_held(&self, source: IpAddr, now: Timestamp) -> Option<(LiftReason, String)> {
        if self.own_addresses.contains(&source) {
            return Some((LiftReason::OwnAddress, "an address of this host".into()));
        }
        if let Some(entry) = self.pipeline.never_block().why(source).next() {
            let why = format!("on the never-block list ({})", entry.reason);
            return Some((LiftReason::NeverBlock, why));
        }
        if self.config().respond.protect != Protect::None
            && let Some(c) = self.peers.protecting(IpNet::from(source), now)
        {
            let why = format!("a protected peer (a conversation on port {})", c.port);
            return Some((LiftReason::Protected, why));
        }
        if let Some(left) = self.responder.grace_left(IpNet::from(source), now) {
            return Some((LiftReason::Grace, grace_text(left)));
        }
        None
    }

    /// The daemon decided on `d` (`decision`, said by `event`): a block of a held source says
    /// so ([`Engine::block_of_held`]); a decision not to block it for a rule that a hold must
    /// follow too (never-block, a protected peer, a grace period, the reverse-path check)
    /// lifts its hold, said. Not the budget or too few ports: the kernel's count, of trap
    /// ports the daemon's capture may not have seen yet, stands until the hold ends.
    pub(super) fn judged_held(
        &mut self,
        d: &Detection,
        decision: &Decision,
        event: report::Event,
    ) -> report::Event {
        let (reason, why) = match decision {
            Decision::Block { .. } => return self.block_of_held(d, event),
            Decision::NeverBlock { reason, .. } => (
                LiftReason::NeverBlock,
                format!("on the never-block list ({reason})"),
            ),
            Decision::Protected { port, .. } => (
                LiftReason::Protected,
                format!("a protected peer (a conversation on port {port})"),
            ),
            Decision::InGrace { remaining, .. } => (LiftReason::Grace, grace_text(*remaining)),
            Decision::ReversePath { .. } => (
                LiftReason::ReversePath,
                "its probes fail the reverse-path check (a forged source, most likely)".into(),
            ),
            _ => return event,
        };
        let now = self.clock.now();
        self.lift_hold(d.addr, reason, why, now);
        event
    }

    /// `sentryctl unblock` of `net`: the first line's holds of sources in it are lifted
    /// (said); whether there were any the daemon knew of. Of a single address, the kernel is
    /// asked to lift its hold even when the daemon did not hear of one.
    pub(super) fn unblocked_held(&mut self, net: IpNet, now: Timestamp) -> bool {
        if !self.firewall.has_first_line() {
            return false;
        }
        let mut held: Vec<IpAddr> = self
            .first_line
            .holds
            .iter()
            .filter(|(s, h)| h.decided.is_none() && net.contains(*s))
            .map(|(s, _)| *s)
            .collect();
        held.sort_unstable();
        for &source in &held {
            self.lift_hold(source, LiftReason::Unblock, "unblocked by hand".into(), now);
        }
        if held.is_empty() && net.prefix_len() == net.max_prefix_len() {
            self.lift_in_kernel(net.addr());
        }
        !held.is_empty()
    }

    /// `net` has a grace period of `grace` (`sentryctl unblock --grace`): the daemon does not
    /// block it, so the kernel's first line spares it as long (its token bucket may be empty
    /// still: unspared, each of its next probes of a closed port would be held, then lifted).
    /// A refusal is said, folded.
    pub(super) fn spare_graced(&mut self, net: IpNet, grace: Duration) {
        if !self.firewall.has_first_line() || grace.is_zero() {
            return;
        }
        if let Err(e) = self.firewall.spare(&[net], grace) {
            self.tally.firewall_errors += 1;
            if self.fold.offer(report::Folded::Refused, self.clock.now()) {
                self.warn(format!(
                    "could not spare {} from the kernel's first line for its grace period: {e}",
                    source_text(&net)
                ));
            }
        }
    }

    /// How long the kernel's holds last, as configured.
    fn hold_length(&self) -> Duration {
        match &self.config().backend {
            Backend::Nft(nft) => nft.first_line().map_or(DEFAULT_HOLD, |f| f.hold),
            Backend::Route => DEFAULT_HOLD,
        }
    }

    /// Lifts `source`'s hold in the kernel (fine when it has ended); a refusal is said.
    fn lift_in_kernel(&mut self, source: IpAddr) {
        self.first_line.read = None;
        if let Err(e) = self.firewall.lift_holds(&[source]) {
            self.tally.firewall_errors += 1;
            if self.fold.offer(report::Folded::Refused, self.clock.now()) {
                self.warn(format!("could not lift the kernel's hold of {source}: {e}"));
            }
        }
    }

    /// Lifts the recorded hold of `source` by `reason`, said with `why`.
    fn lift_hold(&mut self, source: IpAddr, reason: LiftReason, why: String, now: Timestamp) {
        let outcome = HoldOutcome::Lifted(reason);
        if self.first_line.decide(source, outcome, why.clone(), now) {
            self.lift_in_kernel(source);
            self.say_lift(source, reason, &why, now);
        }
    }

    /// Says that the hold of `source` was lifted by `reason` (`why`), folded under a flood.
    fn say_lift(&mut self, source: IpAddr, reason: LiftReason, why: &str, now: Timestamp) {
        if !self.fold.offer(report::Folded::HoldLifted, now) {
            return;
        }
        self.act_with(
            Level::Info,
            (report::Did::LiftHold, report::Actor::Daemon),
            (Some(IpNet::from(source)), None),
            format!("lifted the kernel's hold of {source}: {why}"),
            |act| act.reason = Some(reason.as_str()),
        );
    }

    /// The partition of `source` spent its holds: the kernel's first line spares it for
    /// [`SPARE_FOR`] (the daemon still judges its packets); said once per partition and
    /// window.
    fn spare_partition(&mut self, source: IpAddr, now: Timestamp) {
        let prefix = crate::respond::prefix_of(source);
        let result = self.firewall.spare(&[prefix], SPARE_FOR);
        let line = match result {
            Ok(()) => format!(
                "the kernel's first line spares {prefix} for {}: more than {PARTITION_HOLDS} \
                 holds from it within {} (a forged flood, or a busy network); the daemon \
                 still judges its packets",
                human(SPARE_FOR),
                human(PARTITION_WINDOW)
            ),
            Err(e) => format!("could not spare {prefix} from the kernel's first line: {e}"),
        };
        // A flood from many networks spares many: folded with the lifts.
        if !self.fold.offer(report::Folded::HoldLifted, now) {
            return;
        }
        self.act_with(
            Level::Warn,
            (report::Did::LiftHold, report::Actor::Daemon),
            (Some(prefix), Some(SPARE_FOR.as_secs())),
            line,
            |act| act.reason = Some(LiftReason::Budget.as_str()),
        );
    }

    /// A block of `d` is made: when the kernel's first line held its source, the block's
    /// event says so, and the hold is decided (blocked).
    pub(super) fn block_of_held(&mut self, d: &Detection, event: report::Event) -> report::Event {
        let now = self.clock.now();
        let Some(at) = self.first_line.pending(d.addr).map(|h| h.at) else {
            return event;
        };
        let before = now.saturating_since(at);
        let why = format!("the daemon blocked it {} later", report::short(before));
        self.first_line
            .decide(d.addr, HoldOutcome::Blocked, why, now);
        event.after_hold(before)
    }

    /// A probe of `proto` `port` from `src`, as the capture saw it: noted in `src`'s hold, if
    /// the first line holds it (so that a listener on that port lifts it).
    pub(super) fn held_probe(&mut self, src: IpAddr, proto: Proto, port: u16) {
        if let Some(hold) = self.first_line.pending(src)
            && hold.ports.len() < HOLD_PORTS
            && !hold.ports.contains(&(proto, port))
        {
            hold.ports.push((proto, port));
        }
    }

    /// Whether any hold waits for the daemon's decision (the capture's probes are then looked
    /// up in them).
    pub(super) fn holds_pending(&self) -> bool {
        self.first_line.pending > 0
    }

    /// `sentryctl why`: the first line's hold of `addr`, with the time the kernel says it has
    /// left, and what the daemon made of it.
    pub(super) fn hold_info(&mut self, addr: IpAddr, now: Timestamp) -> Option<HoldInfo> {
        let hold = self.first_line.holds.get(&addr)?.clone();
        let remaining = match &hold.decided {
            None => self.firewall.holds().ok().and_then(|held| {
                held.iter()
                    .find(|h| h.net == IpNet::from(addr))
                    .and_then(|h| h.remaining)
            }),
            Some(_) => None,
        };
        let length = hold.until.saturating_since(hold.at);
        let probe = hold.probe.0.label(hold.probe.1);
        let mut line = format!(
            "held by the kernel's first line for {} after a probe to {probe}{}",
            human(length),
            flags_text(hold.tcp_flags)
        );
        match (&hold.decided, remaining) {
            (None, Some(left)) => line.push_str(&format!(" ({} left)", human(left))),
            (None, None) => line.push_str(" (ended in the kernel)"),
            (Some(_), _) => {
                line.push_str(&format!(", {} ago", human(now.saturating_since(hold.at))));
            }
        }
        let outcome = hold
            .decided
            .as_ref()
            .map(|(o, _, _)| o.as_str().to_string());
        match &hold.decided {
            None => line.push_str("; the daemon has not blocked it (yet)"),
            Some((HoldOutcome::Lifted(_), at, why)) => line.push_str(&format!(
                "; lifted {} later: {why}",
                report::short(at.saturating_since(hold.at))
            )),
            Some((_, _, why)) => line.push_str(&format!("; {why}")),
        }
        Some(HoldInfo {
            held_at: self.wall.to_wall(hold.at).to_string(),
            probe,
            hold_s: length.as_secs(),
            remaining_s: remaining.map(|r| r.as_secs()),
            outcome,
            line,
        })
    }

    /// The first line's figures for `status`: holds in force (the kernel's count when it can
    /// be read, else the engine's), holds since start by outcome, the kernel's counters.
    pub(super) fn first_line_info(&mut self) -> Option<crate::control::protocol::FirstLineInfo> {
        if !self.firewall.has_first_line() {
            return None;
        }
        let now = self.clock.now();
        let (active, counters) = match self.first_line.read {
            Some((at, active, counters)) if now.saturating_since(at) < KERNEL_READ_FOR => {
                (active, counters)
            }
            _ => {
                let pending = self.first_line.pending;
                let active = self.firewall.holds().map_or(pending, |h| h.len());
                let counters = self.firewall.first_line_counters().unwrap_or_default();
                self.first_line.read = Some((now, active, counters));
                (active, counters)
            }
        };
        Some(crate::control::protocol::FirstLineInfo {
            holds_active: active,
            holds: self
                .first_line
                .outcomes
                .iter()
                .map(|(k, v)| ((*k).to_string(), *v))
                .collect(),
            score_full: counters.score_full,
            hold_full: counters.hold_full,
        })
    }
}

/// A held probe's TCP flags as a line says them, when they are not a plain SYN (a stealth
/// probe: ` (FIN|PSH|URG)`); nothing for a SYN or UDP.
fn flags_text(flags: Option<u8>) -> String {
    match flags {
        Some(f) if f != 0x02 => format!(" ({})", crate::wire::TcpFlags::from_bits(u16::from(f))),
        _ => String::new(),
    }
}

/// Why a hold of a source in a grace period is lifted: `unblocked by hand, in a grace period
/// for 10m more`.
fn grace_text(left: Duration) -> String {
    format!(
        "unblocked by hand, in a grace period for {} more",
        human(left)
    )
}
