//! The control requests the engine answers: status, list, why, never-block, and blocks and
//! unblocks by hand.

use super::*;

impl Engine {
    /// `done` when enforcing; `would` in a dry run, where nothing is changed.
    pub(super) fn verb(&self, done: &'static str, would: &'static str) -> &'static str {
        match self.mode {
            Mode::Enforcing => done,
            Mode::DryRun => would,
        }
    }

    /// A control request, answered; `readings` are what the shell's parts show now (the
    /// captures' drops, the fleet link's figures), for `status` and `top`.
    pub fn request(&mut self, request: Request, readings: &Readings) -> Response {
        let now = self.clock.now();
        match request {
            Request::Status => Response::Status(self.status(readings)),
            Request::List { offset, limit } => self.list(offset, limit, now),
            Request::Block { net, seconds } => self.block_by_hand(net.trunc(), seconds, now),
            Request::Unblock { net, grace, local } => {
                self.unblock_by_hand(net.trunc(), grace, local, now)
            }
            Request::UnblockAll => self.unblock_all(now),
            Request::Why { addr } => self.why(addr, now),
            Request::NeverBlock => Response::NeverBlock {
                entries: self
                    .pipeline
                    .never_block()
                    .listed()
                    .into_iter()
                    .map(|(net, reason)| NeverBlockInfo { net, reason })
                    .collect(),
            },
            Request::Reload => self.reload(ReloadBy::Request),
            Request::Top { limit } => Response::Top {
                status: self.status(readings),
                threshold: u64::from(self.config().detector.threshold),
                watching: self
                    .pipeline
                    .leaders(limit.min(crate::control::protocol::TOP_MAX))
                    .into_iter()
                    .map(|w| crate::control::protocol::WatchedInfo {
                        source: w.source,
                        score: w.score,
                        ports: w.ports,
                        kinds: w.kinds.to_string(),
                        probes: w.packets,
                        idle: now.saturating_since(w.last_seen).as_secs(),
                    })
                    .collect(),
            },
        }
    }

    /// What `sentryctl status` shows, whole: the engine's figures, the shell's `readings`,
    /// and the kernel's truth: `blocks_active` is what our block sets hold (elements added
    /// with `nft` among them, counted again in `blocks_kernel_only`), read through the
    /// firewall port; in a dry run, or when the sets cannot be read, the blocks in force the
    /// daemon knows.
    pub fn status(&mut self, readings: &Readings) -> StatusInfo {
        let mut status = self.figures(readings);
        if let Some((held, only)) = self.kernel_counts() {
            status.blocks_active = held;
            status.blocks_kernel_only = only;
        }
        status.first_line = self.first_line_info();
        status
    }

    /// The engine's own figures and the shell's `readings`, as [`Engine::status`] shows them
    /// but for the kernel's count of blocks (the daemon's count instead): cheap, for the
    /// counters systemd hears every few seconds.
    pub fn figures(&self, readings: &Readings) -> StatusInfo {
        let c = self.pipeline.counters();
        StatusInfo {
            mode: match self.mode {
                Mode::Enforcing => "enforcing".into(),
                Mode::DryRun => "dry-run".into(),
            },
            firewall: self.config().backend.name().into(),
            uptime: self.clock.now().saturating_since(self.started).as_secs(),
            packets: c.frames,
            probes: c.probes,
            detections: c.detections,
            blocks_active: self.blocks_active(),
            blocks_kernel_only: 0,
            would_block: self.would_block(),
            max_blocks: self.config().respond.max_blocks,
            refused: self.refused,
            waiting: self.responder.waiting_count(),
            capture_drops: readings.capture_drops,
            block_latency_p50_us: percentile(&self.latencies, 500),
            block_latency_p99_us: percentile(&self.latencies, 990),
            block_latency_samples: self.latencies.len(),
            config: self.loaded.origin.to_string(),
            not_blocked: self
                .not_blocked
                .counts()
                .map(|(rule, n)| (rule.to_string(), n))
                .chain(
                    [
                        (report::NotCounted::UnroutableSource, c.unroutable),
                        (report::NotCounted::BadChecksum, c.bad_checksum),
                    ]
                    .into_iter()
                    .filter(|&(_, n)| n > 0)
                    .map(|(why, n)| (why.as_str().into(), n)),
                )
                .collect(),
            protected_peers: self.peers.len(),
            fragments: crate::pipeline::FRAGMENT_OUTCOMES
                .into_iter()
                .zip([
                    c.reassembled,
                    c.tiny_fragments,
                    c.fragment_overlaps,
                    c.fragments_timed_out,
                    c.fragments_dropped,
                ])
                .filter(|&(_, n)| n > 0)
                .map(|(word, n)| (word.to_string(), n))
                .collect(),
            evidence: crate::pipeline::EVIDENCE_KINDS
                .into_iter()
                .zip([c.fingerprinted, c.version_probes, c.decoy_verdicts])
                .filter(|&(_, n)| n > 0)
                .map(|(word, n)| (word.to_string(), n))
                .collect(),
            fleet: self.fleet_info(readings.link.as_ref()),
            first_line: None,
        }
    }

    /// The block `b` of the responder that decides: in a dry run, imagined.
    pub(super) fn decided_info(&self, b: &ActiveBlock, now: Timestamp) -> BlockInfo {
        let mut info = self.block_info(b, now);
        if self.set_aside.is_some() {
            info.held = Held::DryRun;
        }
        info
    }

    pub(super) fn block_info(&self, b: &ActiveBlock, now: Timestamp) -> BlockInfo {
        BlockInfo {
            net: b.net,
            kind: b.why.kind.clone(),
            // A block's ports, like a page of blocks, are capped so that an answer always fits
            // the protocol's 64 KiB.
            ports: b.why.port_labels().into_iter().take(LIST_PORTS).collect(),
            blocked_at: self.wall.to_wall(b.since).to_string(),
            remaining: b.until.saturating_since(now).as_secs(),
            offence: b.offence,
            held: Held::Both,
            origin: b.why.origin.as_ref().map(ToString::to_string),
            signature: b.why.signature.clone(),
        }
    }

    /// What the kernel's sets hold, for `list`, `why`, `status` and `unblock` (the kernel, not
    /// the daemon's memory, decides what is dropped), as read at most [`KERNEL_READ_FOR`] ago;
    /// `None` in a dry run, or when they cannot be read (said).
    pub(super) fn in_kernel(&mut self) -> Option<Vec<Blocked>> {
        if self.mode == Mode::DryRun {
            return None;
        }
        let now = self.clock.now();
        if let Some((at, read)) = &self.kernel_read
            && now.saturating_since(*at) < KERNEL_READ_FOR
        {
            return Some(read.clone());
        }
        match self.firewall.list() {
            Ok(blocks) => {
                self.kernel_read = Some((now, blocks.clone()));
                Some(blocks)
            }
            Err(e) => {
                self.warn(format!("cannot read the blocks in the kernel: {e}"));
                None
            }
        }
    }

    /// The daemon's block `b`, marked when the kernel (the networks `kernel` read there) does
    /// not hold it.
    fn held_info(
        &self,
        b: &ActiveBlock,
        kernel: Option<&HashSet<IpNet>>,
        now: Timestamp,
    ) -> BlockInfo {
        let mut info = self.block_info(b, now);
        if kernel.is_some_and(|k| !k.contains(&b.net)) {
            info.held = Held::DaemonOnly;
        }
        info
    }

    /// `sentryctl list`: a page of the blocks in force, the daemon's and the kernel's; in a
    /// dry run, the blocks in force when it began, then those it imagines (marked so).
    pub(super) fn list(&mut self, offset: usize, limit: usize, now: Timestamp) -> Response {
        let kernel = self.in_kernel();
        // Looked up by network: a flood's sets hold a hundred thousand elements or more, and
        // the main loop answers while nothing else turns.
        let held: Option<HashSet<IpNet>> =
            kernel.as_ref().map(|k| k.iter().map(|e| e.net).collect());
        let mut all: Vec<BlockInfo> = match &self.set_aside {
            Some(in_force) => in_force
                .active(now)
                .map(|b| self.block_info(&b, now))
                .chain(
                    self.responder
                        .active(now)
                        .map(|b| self.decided_info(&b, now)),
                )
                .collect(),
            None => self
                .responder
                .active(now)
                .map(|b| self.held_info(&b, held.as_ref(), now))
                .collect(),
        };
        let mut listed: HashSet<IpNet> = all.iter().map(|b| b.net).collect();
        for e in kernel.iter().flatten() {
            if listed.insert(e.net) {
                all.push(kernel_only(e));
            }
        }
        Response::Blocks {
            total: all.len(),
            blocks: all
                .into_iter()
                .skip(offset)
                .take(limit.min(LIST_PAGE))
                .collect(),
        }
    }

    /// `sentryctl unblock`: lifts every block that holds `net`, the daemon's and the kernel's
    /// (an element added by hand, a network that holds the address), with an optional grace
    /// period during which the source is not blocked again; in fleet mode, unless `local`,
    /// asks the fleet to lift it too.
    pub(super) fn unblock_by_hand(
        &mut self,
        net: IpNet,
        grace: Option<u64>,
        local: bool,
        now: Timestamp,
    ) -> Response {
        // Whose block it was: another host's stays in the fleet until that host lifts it.
        let origin = self
            .responder
            .block_of(net, now)
            .and_then(|b| b.why.origin)
            .map(|o| o.to_string());
        let mut lifted = match self.lift(net, grace.map(Duration::from_secs), now) {
            Ok(lifted) => lifted,
            Err(e) => {
                return Response::Error {
                    message: format!("could not unblock {}: {e}", source_text(&net)),
                };
            }
        };
        let fleet = self.lifted_here(net, !local);
        let held = self.unblocked_held(net, now);
        if let Some(g) = grace {
            self.spare_graced(net, Duration::from_secs(g));
        }
        if lifted.is_empty() && !held {
            return Response::NotBlocked { net, fleet };
        }
        lifted.retain(|&n| n != net);
        let grace = grace
            .filter(|g| *g > 0)
            .map(|g| format!(", not blocked again for {}", human(Duration::from_secs(g))))
            .unwrap_or_default();
        let covering = lifted_text(&lifted);
        let verb = self.verb("unblocked", "would unblock");
        let across = if fleet {
            ", here and across the fleet"
        } else {
            ""
        };
        let made = origin.as_ref().map_or_else(String::new, |o| {
            format!(" ({o} made this block: the fleet keeps it until it is lifted there)")
        });
        self.act(
            Level::Info,
            (report::Did::Unblock, report::Actor::Sentryctl),
            (Some(net), None),
            format!(
                "{verb} {} by hand{across}{covering}{grace}{made}",
                source_text(&net)
            ),
        );
        Response::Unblocked {
            net,
            lifted,
            dry_run: self.mode == Mode::DryRun,
            fleet,
            origin,
        }
    }

    /// Lifts every block that holds `net`, the daemon's and the kernel's, with an optional
    /// grace period for `net`; what was lifted (`net` itself among them when it was blocked).
    pub(super) fn lift(
        &mut self,
        net: IpNet,
        grace_for: Option<Duration>,
        now: Timestamp,
    ) -> Result<Vec<IpNet>, FirewallError> {
        let mut lifted: Vec<IpNet> = Vec::new();
        if let Some(b) = self.responder.block_of(net, now) {
            lifted.push(b.net);
        }
        // In a dry run the blocks in force are named, and stay (the firewall is not touched).
        let in_force = self.set_aside.as_ref().and_then(|r| r.block_of(net, now));
        if let Some(b) = in_force.filter(|b| !lifted.contains(&b.net)) {
            lifted.push(b.net);
        }
        let holds =
            |e: &&Blocked| e.net.contains(&net.addr()) && e.net.prefix_len() <= net.prefix_len();
        // What is lifted is what the kernel holds now.
        self.kernel_read = None;
        for e in self.in_kernel().iter().flatten().filter(holds) {
            if !lifted.contains(&e.net) {
                lifted.push(e.net);
            }
        }
        // The grace period is for what was asked, not for all of a network that held it.
        let _ = self.responder.unblock(net, grace_for, now);
        for &cover in lifted.iter().filter(|&&c| c != net) {
            let _ = self.responder.unblock(cover, None, now);
        }
        let mut actions: Vec<Action> = lifted.iter().map(|&n| Action::Unblock { net: n }).collect();
        if !lifted.contains(&net) {
            // Harmless when missing; covers an element the listing could not show.
            actions.push(Action::Unblock { net });
        }
        self.apply(&actions)?;
        self.dirty = true;
        // Its next probes are judged afresh (and met by the grace period, if any).
        for &n in lifted.iter().chain([&net]) {
            self.pipeline.forget(n);
        }
        Ok(lifted)
    }

    /// `sentryctl unblock --all`: every block the daemon knows and every element of its sets
    /// in the kernel, lifted.
    pub(super) fn unblock_all(&mut self, now: Timestamp) -> Response {
        let mut nets: Vec<IpNet> = self.responder.active(now).map(|b| b.net).collect();
        let mut named: HashSet<IpNet> = nets.iter().copied().collect();
        self.kernel_read = None;
        for e in self.in_kernel().into_iter().flatten() {
            if named.insert(e.net) {
                nets.push(e.net);
            }
        }
        // In a dry run the blocks in force are counted, and stay (the firewall is not touched).
        let in_force = self.set_aside.as_ref().map(|r| r.active(now).count());
        let count = nets.len() + in_force.unwrap_or(0);
        for &net in &nets {
            let _ = self.responder.unblock(net, None, now);
            self.pipeline.forget(net);
            // Lifted here only: the fleet's blocks of them are not taken again.
            self.lifted_here(net, false);
        }
        let actions: Vec<Action> = nets.iter().map(|&net| Action::Unblock { net }).collect();
        if let Err(e) = self.apply(&actions) {
            return Response::Error {
                message: format!("could not lift every block: {e}"),
            };
        }
        self.dirty = true;
        let verb = self.verb("lifted", "would lift");
        self.act_with(
            Level::Info,
            (report::Did::UnblockAll, report::Actor::Sentryctl),
            (None, None),
            format!(
                "{verb} all {} by hand",
                report::count(count as u64, "block", "blocks")
            ),
            |act| act.count = Some(count as u64),
        );
        Response::UnblockedAll {
            count,
            dry_run: self.mode == Mode::DryRun,
        }
    }

    /// `sentryctl why`: the block that holds `addr` (the daemon's, or one the kernel holds
    /// without it), its last detection not blocked, and the never-block entries that hold it.
    pub(super) fn why(&mut self, addr: IpAddr, now: Timestamp) -> Response {
        let kernel = self.in_kernel();
        let in_force = self
            .set_aside
            .as_ref()
            .and_then(|r| r.block_of(addr.into(), now));
        let block = match (in_force, self.responder.block_of(IpNet::from(addr), now)) {
            (Some(b), _) => Some(self.block_info(&b, now)),
            (None, Some(b)) if self.set_aside.is_some() => Some(self.decided_info(&b, now)),
            (None, Some(b)) => {
                let held: Option<HashSet<IpNet>> =
                    kernel.as_ref().map(|k| k.iter().map(|e| e.net).collect());
                Some(self.held_info(&b, held.as_ref(), now))
            }
            (None, None) => kernel
                .iter()
                .flatten()
                .find(|e| e.net.contains(&addr))
                .map(kernel_only),
        };
        // A detection that waits for the budget says so, and for how long it has waited.
        let refused = self.not_blocked.last_of(addr).cloned().map(|mut r| {
            if let Some(since) = self.responder.waiting_since(addr) {
                r.line = format!(
                    "{}; waiting for the budget for {:.1}s now",
                    r.line,
                    now.saturating_since(since).as_secs_f64()
                );
            }
            r
        });
        Response::Why {
            addr,
            block,
            refused,
            first_line: self.hold_info(addr.to_canonical(), now),
            never_block: self
                .pipeline
                .never_block()
                .why(addr)
                .map(never_block_info)
                .collect(),
        }
    }

    /// Why a block by hand of `net` for `seconds` cannot be made, if it cannot.
    pub(super) fn refuse_by_hand(&self, net: IpNet, seconds: Option<u64>) -> Option<String> {
        if let Some(seconds) = seconds
            && (seconds == 0 || Duration::from_secs(seconds) > MAX_BLOCK_FOR)
        {
            return Some(format!(
                "not blocking {} for {}: a block lasts from 1s to {}",
                source_text(&net),
                human(Duration::from_secs(seconds)),
                human(MAX_BLOCK_FOR)
            ));
        }
        self.overlapping_never_block(net).map(|entries| {
            format!(
                "not blocking {}: it overlaps the never-block list: {entries}",
                source_text(&net)
            )
        })
    }

    /// The never-block entries `net` overlaps (`203.0.113.1 (address of interface eth0), …`),
    /// if any: a block of `net` would cut one of them off.
    pub(super) fn overlapping_never_block(&self, net: IpNet) -> Option<String> {
        let entries: Vec<String> = self
            .pipeline
            .never_block()
            .entries()
            .iter()
            .filter(|e| net.contains(&e.net.addr()) || e.net.contains(&net.addr()))
            .map(|e| format!("{} ({})", source_text(&e.net), e.reason))
            .collect();
        (!entries.is_empty()).then(|| entries.join(", "))
    }

    /// `sentryctl block`: any address or network but one that overlaps the never-block list,
    /// for a duration from a second to [`MAX_BLOCK_FOR`] (the configured one by default).
    pub(super) fn block_by_hand(
        &mut self,
        net: IpNet,
        seconds: Option<u64>,
        now: Timestamp,
    ) -> Response {
        if let Some(refused) = self.refuse_by_hand(net, seconds) {
            return Response::Error { message: refused };
        }
        let decision = self
            .responder
            .block_by_hand(net, seconds.map(Duration::from_secs), now);
        match &decision {
            Decision::Block { ttl, .. } | Decision::Refresh { ttl, .. } => {
                let ttl = *ttl;
                match self.enforce(&decision) {
                    Ok(()) => {
                        self.publish_block(net, now);
                        let verb = self.verb("blocked", "would block");
                        self.act(
                            Level::Info,
                            (report::Did::Block, report::Actor::Sentryctl),
                            (Some(net), Some(ttl.as_secs())),
                            format!("{verb} {} for {} by hand", source_text(&net), human(ttl)),
                        );
                        Response::Blocked {
                            net,
                            seconds: ttl.as_secs(),
                            dry_run: self.mode == Mode::DryRun,
                        }
                    }
                    Err(e) => Response::Error {
                        message: format!("could not block {}: {e}", source_text(&net)),
                    },
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
            | Decision::Protected { .. }
            | Decision::DeletedOutside { .. } => Response::Error {
                message: format!("not blocking {}", source_text(&net)),
            },
        }
    }
}

/// A never-block entry as `sentryctl` shows it.
pub(super) fn never_block_info(e: &crate::never_block::Entry) -> NeverBlockInfo {
    NeverBlockInfo {
        net: e.net,
        reason: e.reason.to_string(),
    }
}

/// The per-mille-th value of `samples` (0 when there are none).
pub(super) fn percentile(samples: &VecDeque<u64>, per_mille: usize) -> u64 {
    let mut sorted: Vec<u64> = samples.iter().copied().collect();
    sorted.sort_unstable();
    sorted
        .get(sorted.len().saturating_sub(1) * per_mille / 1000)
        .copied()
        .unwrap_or(0)
}

/// A block the kernel holds and the daemon did not make (or no longer knows of).
fn kernel_only(e: &Blocked) -> BlockInfo {
    BlockInfo {
        net: e.net,
        kind: match e.remaining {
            Some(_) => "added outside sentryd".into(),
            None => "added outside sentryd, no timeout".into(),
        },
        ports: Vec::new(),
        blocked_at: "-".into(),
        remaining: e.remaining.map_or(0, |r| r.as_secs()),
        offence: 0,
        held: Held::KernelOnly,
        signature: None,
        origin: None,
    }
}

/// ` (lifted the block of 2001:db8::/64)`, or nothing.
fn lifted_text(lifted: &[IpNet]) -> String {
    if lifted.is_empty() {
        return String::new();
    }
    let nets: Vec<String> = lifted.iter().map(source_text).collect();
    format!(" (lifted the block of {})", nets.join(", "))
}
