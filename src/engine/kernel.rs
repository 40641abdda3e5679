//! The engine and the firewall: carrying actions out (a block is recorded only once the kernel
//! has it), and bringing the firewall into agreement with what is due — at start, after the
//! ruleset lost something (whether its watcher said so or a batch found the table gone), and
//! each second for a firewall whose blocks do not end by themselves. One diff does all of it:
//! [`crate::respond::reconcile`].
//!
//! **An element deleted outside scansentry is an unblock**, not a loss. The rule that tells
//! them apart: while running, the firewall's watcher reports elements of our block sets that
//! another program deleted ([`Engine::elements_deleted`]; the kernel says nothing when an
//! element times out, nor per element when a table or set goes); a block of exactly such an
//! element that the kernel no longer holds is lifted, its offence history kept. At a start,
//! when our table and sets were there already (own mode: [`Firewall::kept_since_last_run`]),
//! a block of the state file still due whose element is missing was deleted while sentryd was
//! stopped: the same unblock. A table or set missing (a reboot, `nft flush ruleset`, `nft
//! delete table`) is a loss: everything still due is put back.

use super::*;

impl Engine {
    /// Forgets the blocks among `actions`: the firewall did not take them.
    pub(super) fn forget_blocks(&mut self, actions: &[Action]) {
        for action in actions {
            if let Action::Block { net, .. } = action {
                self.responder.forget(*net);
                self.dirty = true;
            }
        }
    }

    /// Carries out what `decision` asks of the firewall: in force (and to be saved) once the
    /// kernel has it; on an error, its blocks are forgotten, as the kernel does not hold them.
    pub(super) fn enforce(&mut self, decision: &Decision) -> Result<(), FirewallError> {
        let actions = decision.actions();
        match self.apply(&actions) {
            Ok(()) => {
                self.dirty = true;
                Ok(())
            }
            Err(e) => {
                self.forget_blocks(&actions);
                Err(e)
            }
        }
    }

    /// Hands `actions` to the firewall. When the table or a set is gone (a flush that the
    /// watcher has not reported yet), the table is restored: everything due is put back,
    /// these actions' blocks among them (the responder holds them already), as after a flush.
    /// A block the kernel refused is forgotten (it is not in force, and putting it back later
    /// would only fail again), each refusal said with why.
    pub(super) fn apply(&mut self, actions: &[Action]) -> Result<(), FirewallError> {
        self.kernel_read = None;
        let mut result = self.firewall.apply(actions);
        if let Err(FirewallError::Missing { what }) = &result {
            let what = what.clone();
            result = self.restore_table().map(|restored| {
                self.log(format!(
                    "{what} was gone: restored the table and {} still due",
                    report::count(restored as u64, "block", "blocks")
                ));
            });
        }
        if result.is_err() {
            self.tally.firewall_errors += 1;
        }
        if let Err(FirewallError::Refused { refused, .. }) = &result {
            for r in refused {
                if let Action::Block { net, .. } = r.action {
                    self.responder.forget(net);
                    self.dirty = true;
                }
                if self.fold.offer(report::Folded::Refused, self.clock.now()) {
                    self.warn(format!("the kernel refused to {r}"));
                }
            }
        }
        result
    }

    /// What the firewall holds, or `None` (said) when it cannot be listed.
    pub(super) fn present(&mut self) -> Option<HashSet<IpNet>> {
        match self.firewall.list() {
            Ok(listed) => Some(listed.into_iter().map(|b| b.net).collect()),
            Err(e) => {
                self.warn(format!("cannot list the blocks in force: {e}"));
                None
            }
        }
    }

    /// Brings the kernel and the responder into agreement at start: blocks from the state file
    /// that are still due, and blocks found in the kernel, are both kept; those missing from
    /// the kernel are put back with the time they have left — unless the firewall `kept` its
    /// table since the last run (what it held then) and the state says its blocks were in it
    /// ([`State::in_table`]), when a block missing from it was deleted outside scansentry
    /// while sentryd was stopped: lifted, said, its offences kept. The
    /// state file is checked first (size, durations, addresses), and no block that would block
    /// a never-block address is kept, wherever it came from.
    pub(super) fn resume(&mut self, saved: Option<State>, kept: Option<Vec<Blocked>>) {
        let now = self.clock.now();
        let max_blocks = self.config().respond.max_blocks;
        let mut deleted = Vec::new();
        if let Some(saved) = saved {
            // The rule holds only for blocks that were in that table when saved.
            let kept = kept.as_ref().filter(|_| saved.in_table);
            let (blocks, warnings) =
                state::restorable(saved.active_blocks(self.wall), now, max_blocks);
            for w in warnings {
                self.warn(w);
            }
            for block in blocks {
                match kept {
                    Some(kept) if !kept.iter().any(|k| k.net == block.net) => {
                        // A block about to end may have ended in the kernel's timer first.
                        if block.until.saturating_since(now) > ENDED_SLACK {
                            deleted.push(block);
                        }
                    }
                    _ => self.responder.restore(block, now),
                }
            }
            for (net, count, last) in saved.offenders(self.wall) {
                self.responder.restore_offender(net, count, last, now);
            }
        }
        for block in deleted {
            self.say_deleted(&block, true, now);
        }
        let in_kernel = match kept {
            Some(list) => list,
            None => match self.firewall.list() {
                Ok(list) => list,
                Err(e) => {
                    self.warn(format!("cannot read the blocks in the kernel: {e}"));
                    Vec::new()
                }
            },
        };
        for b in &in_kernel {
            if self.responder.block_of(b.net, now).is_none()
                && let Some(left) = b.remaining
            {
                let why = Why {
                    kind: "unknown".into(),
                    ports: Vec::new(),
                    origin: None,
                    signature: None,
                };
                let block = ActiveBlock {
                    net: b.net,
                    since: now,
                    until: now.saturating_add(left),
                    offence: 0,
                    why,
                };
                self.responder.restore(block, now);
            }
        }
        let lifted = self.lift_never_block();
        let present: HashSet<IpNet> = in_kernel
            .iter()
            .map(|k| k.net)
            .filter(|net| !lifted.contains(net))
            .collect();
        // What the kernel holds and the daemon does not was taken over above, but for elements
        // with no timeout: added by hand, the administrator's, left alone (`plan.extra`).
        let missing = crate::respond::reconcile(self.responder.due(now), &present).missing;
        if !missing.is_empty() {
            match self.apply(&missing) {
                Ok(()) => self.log(format!(
                    "put back {} still due",
                    report::count(missing.len() as u64, "block", "blocks")
                )),
                Err(e) => self.warn(format!("could not put back the blocks still due: {e}")),
            }
        }
        self.dirty = true;
    }

    /// Lifts, in the responder and the firewall, every block that would block an address of
    /// the never-block list; returns them.
    pub(super) fn lift_never_block(&mut self) -> Vec<IpNet> {
        let lifted = self.responder.lift_never_block(self.pipeline.never_block());
        if lifted.is_empty() {
            return Vec::new();
        }
        for (net, reason) in &lifted {
            self.warn(format!(
                "lifting the block of {}: it overlaps the never-block list ({reason})",
                source_text(net)
            ));
        }
        let nets: Vec<IpNet> = lifted.into_iter().map(|(net, _)| net).collect();
        let actions: Vec<Action> = nets.iter().map(|&net| Action::Unblock { net }).collect();
        if let Err(e) = self.apply(&actions) {
            self.warn(format!(
                "could not lift blocks of never-block addresses: {e}"
            ));
        }
        self.dirty = true;
        nets
    }

    /// The firewall's watcher saw another program delete the elements `nets` from our block
    /// sets (an administrator's `nft delete element`, `nft flush set`): each block of exactly
    /// one of them that the kernel no longer holds is lifted as an unblock by hand — forgotten
    /// here and in the state file, its offence history kept, never put back — and said. The
    /// kernel is read once to confirm (a block made again since is still there). Nothing in a
    /// dry run, which keeps no element in the kernel.
    pub fn elements_deleted(&mut self, nets: &[IpNet]) {
        self.kernel_read = None;
        let now = self.clock.now();
        if self.mode == Mode::DryRun {
            return;
        }
        let mut held: Vec<ActiveBlock> = nets
            .iter()
            .filter_map(|&net| self.responder.block_of(net, now).filter(|b| b.net == net))
            .collect();
        held.sort_by_key(|b| b.net);
        held.dedup_by_key(|b| b.net);
        if held.is_empty() {
            return;
        }
        let Some(present) = self.present() else {
            return;
        };
        for block in held.into_iter().filter(|b| !present.contains(&b.net)) {
            self.lift_deleted(&block, now);
        }
    }

    /// The firewall's watcher missed notifications (its socket overflowed: a flush of a very
    /// large set, say), so what changed is read from the kernel instead, by the rule of a
    /// start: our table and sets still there, each block still due that they lack was deleted
    /// outside scansentry (lifted, said); gone, or a firewall that cannot tell, restored as
    /// after a flush.
    pub fn notifications_missed(&mut self) {
        self.kernel_read = None;
        if self.mode == Mode::DryRun {
            return;
        }
        let Some(kept) = self.firewall.kept_since_last_run() else {
            self.firewall_changed();
            return;
        };
        let present: HashSet<IpNet> = kept.into_iter().map(|b| b.net).collect();
        let now = self.clock.now();
        let deleted: Vec<ActiveBlock> = self
            .responder
            .active(now)
            .filter(|b| !present.contains(&b.net) && b.until.saturating_since(now) > ENDED_SLACK)
            .collect();
        for block in deleted {
            self.lift_deleted(&block, now);
        }
    }

    /// Lifts `block`, whose element was deleted outside scansentry: forgotten here, in the
    /// state file and by the fleet's bookkeeping (not asked of the fleet), its offences kept;
    /// said.
    fn lift_deleted(&mut self, block: &ActiveBlock, now: Timestamp) {
        let _ = self.responder.unblock(block.net, None, now);
        self.pipeline.forget(block.net);
        self.lifted_here(block.net, false);
        self.dirty = true;
        self.say_deleted(block, false, now);
    }

    /// Says that `block` was lifted at `now` because its element was deleted outside
    /// scansentry (found at a start: `while_stopped`), and counts it
    /// (`scansentry_decisions_total{decision="unblock"}`).
    fn say_deleted(&mut self, block: &ActiveBlock, while_stopped: bool, now: Timestamp) {
        let event = report::Event::deleted_outside(
            block.net,
            block.until.saturating_since(now),
            self.responder.offences(block.net).max(block.offence),
            while_stopped,
            now,
        );
        *self.tally.decisions.entry(event.label()).or_default() += 1;
        self.say_decision(event);
    }

    /// What the kernel holds in our block sets, against the blocks the daemon knows: how many
    /// elements, and how many of them the daemon did not make (added with `nft`, or of unknown
    /// owner); `None` in a dry run or when the sets cannot be read (said).
    pub(super) fn kernel_counts(&mut self) -> Option<(usize, usize)> {
        let kernel = self.in_kernel()?;
        let now = self.clock.now();
        let only = kernel
            .iter()
            .filter(|e| {
                self.responder
                    .block_of(e.net, now)
                    .is_none_or(|b| b.net != e.net)
            })
            .count();
        Some((kernel.len(), only))
    }

    /// For a firewall whose blocks do not end by themselves (routes): lifts those that have
    /// ended, and puts back those still due that someone removed.
    pub(super) fn sync_blocks(&mut self) {
        let Some(present) = self.present() else {
            return;
        };
        let now = self.clock.now();
        let plan = crate::respond::reconcile(self.responder.due(now), &present);
        let (lifted, put_back) = (plan.extra.len(), plan.missing.len());
        let actions = plan.all();
        if actions.is_empty() {
            return;
        }
        match self.apply(&actions) {
            Ok(()) => {
                if put_back > 0 {
                    self.log(format!(
                        "put back {} still due that someone removed",
                        report::count(put_back as u64, "block", "blocks")
                    ));
                }
                if lifted > 0 && self.options.verbosity >= Verbosity::Verbose {
                    self.log(format!(
                        "lifted {} that ended",
                        report::count(lifted as u64, "block", "blocks")
                    ));
                }
            }
            Err(e) => self.warn(format!("could not bring the blocks up to date: {e}")),
        }
    }

    /// The ruleset lost something (the firewall's watcher says so): the table is restored
    /// [`RESTORE_SETTLE`] later, or when the pace allows.
    pub fn firewall_changed(&mut self) {
        self.kernel_read = None;
        let settled = self.clock.now().saturating_add(RESTORE_SETTLE);
        if !self.restore.pending {
            self.restore.pending = true;
            self.restore.not_before = self.restore.not_before.max(settled);
        }
    }

    /// Restores the table and every block still due; spaces the next restore out
    /// when they keep coming.
    pub(super) fn restore_paced(&mut self) {
        self.restore.pending = false;
        self.restore_said();
        let now = self.clock.now();
        let wait = self.restore.pace.restored(now);
        let fighting = !wait.is_zero();
        if fighting && !self.restore.fighting {
            self.warn(format!(
                "the table keeps losing parts (another program, or another sentryd, changing \
                 it?): restoring it at most every {} while this goes on",
                human(wait)
            ));
        }
        self.restore.fighting = fighting;
        self.restore.not_before = now.saturating_add(wait);
    }

    fn restore_said(&mut self) {
        if self.mode == Mode::DryRun {
            // Only a dry run that keeps attach mode's first line out of service watches.
            match self.firewall.ensure_ready(&[]) {
                Ok(()) => self.log(
                    "the ruleset changed under us: the attached table's first line is out of \
                     service again (a dry run puts no block back)",
                ),
                Err(e) => self.warn(format!("could not restore the firewall: {e}")),
            }
            return;
        }
        match self.restore_table() {
            Ok(restored) => self.log(format!(
                "the ruleset changed under us: restored the table and {} still due",
                report::count(restored as u64, "block", "blocks")
            )),
            Err(e) => self.warn(format!("could not restore the firewall: {e}")),
        }
    }

    /// Makes the firewall ready again and puts back every block still due that it lacks
    /// (what is left in the sets, all of it when only a rule went, stays); returns how many.
    ///
    /// A firewall that cannot be made ready (attach mode: the first line's snippet gone from
    /// the administrator's table, their block sets still there) still gets its blocks back in
    /// the sets that are there; the error returned is then why it is not whole.
    fn restore_table(&mut self) -> Result<usize, FirewallError> {
        self.kernel_read = None;
        let allow = allow_list(self.pipeline.never_block());
        let ready = self.firewall.ensure_ready(&allow);
        if ready.is_ok() {
            self.sync_first_line(true);
        }
        let unready = |e: FirewallError, ready: Result<(), FirewallError>| ready.err().unwrap_or(e);
        let present: HashSet<IpNet> = match self.firewall.list() {
            Ok(listed) => listed.into_iter().map(|b| b.net).collect(),
            Err(e) => return Err(unready(e, ready)),
        };
        let now = self.clock.now();
        let missing = crate::respond::reconcile(self.responder.due(now), &present).missing;
        if let Err(e) = self.firewall.apply(&missing) {
            return Err(unready(e, ready));
        }
        ready.map(|()| missing.len())
    }
}

/// A block of the state file with this little left whose element is missing at a start ended
/// in the kernel's timer, not by a hand: forgotten without a word.
const ENDED_SLACK: Duration = Duration::from_secs(5);

/// How often the engine restores what others delete from its table. A restore now and then
/// is what an `nft -f` reload needs; restores that keep coming (another program, or a
/// second sentryd, fighting over the table) are spaced out: past [`RestorePace::BURST`] in a
/// row, each within [`RestorePace::WINDOW`] of the last, each waits twice as long as the one
/// before, up to [`RestorePace::MAX_WAIT`], so neither side spends its time, or its capture,
/// on it.
#[derive(Debug, Default)]
pub(super) struct RestorePace {
    /// When the last restore was done, and how long the one after it had to wait.
    last: Option<(crate::time::Timestamp, Duration)>,
    /// Restores in a row, each within [`RestorePace::WINDOW`] of when it was allowed.
    streak: usize,
}

impl RestorePace {
    /// Restores in a row that need no wait.
    pub(super) const BURST: usize = 2;
    /// A restore this long after it was allowed is not part of a fight.
    pub(super) const WINDOW: Duration = Duration::from_secs(10);
    /// The longest wait between two restores.
    pub(super) const MAX_WAIT: Duration = Duration::from_secs(60);

    /// A restore was done at `now`: how long the next one must wait (zero: none).
    pub(super) fn restored(&mut self, now: crate::time::Timestamp) -> Duration {
        let (streak, wait) = match self.last {
            Some((then, wait))
                if now.saturating_since(then.saturating_add(wait)) <= Self::WINDOW =>
            {
                (self.streak + 1, wait)
            }
            _ => (1, Duration::ZERO),
        };
        let wait = if streak <= Self::BURST {
            Duration::ZERO
        } else {
            (wait * 2).clamp(Duration::from_secs(1), Self::MAX_WAIT)
        };
        self.streak = streak;
        self.last = Some((now, wait));
        wait
    }
}
