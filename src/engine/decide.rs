//! What the engine does with a frame, a trap connection or a detection: the socket table's
//! second look, the trust rules, the responder, and what follows a decision.

use super::*;

impl Engine {
    /// A captured frame, parsed, that arrived at `at` (engine time). A source that crosses the
    /// threshold is settled against the socket table read afresh (unless it was read a moment
    /// ago), so that a service started a moment ago is never counted as a trap. The packet is
    /// given as [`crate::wire::read`] gives it (or as [`Pipeline::process`] takes it).
    ///
    /// [`Pipeline::process`]: crate::pipeline::Pipeline::process
    pub fn packet<'a>(&mut self, at: Timestamp, packet: Result<impl Into<Lazy<'a>>, Skip>) {
        let packet: Result<Lazy<'a>, Skip> = packet.map(Into::into);
        // Kept only to be said (`-v`): the packet goes to the pipeline.
        let verbose = self.options.verbosity >= Verbosity::Verbose;
        let src = verbose
            .then(|| packet.as_ref().ok().map(|p| p.packet().src))
            .flatten();
        if self.holds_pending()
            && let Ok(p) = packet.as_ref().map(Lazy::packet)
            && p.direction != crate::wire::Direction::Outgoing
        {
            let proto = if p.tcp_flags.is_some() {
                Proto::Tcp
            } else {
                Proto::Udp
            };
            self.held_probe(p.src.to_canonical(), proto, p.dst_port);
        }
        let withdrawn = self.pipeline.counters().withdrawn;
        let detection = self.looking(|pipeline, look| pipeline.process_looking(at, packet, look));
        if let Some(d) = detection {
            self.on_detection(&d);
        } else if verbose && self.pipeline.counters().withdrawn > withdrawn {
            self.log(format!(
                "not a scan after all: {} crossed the threshold with ports where services have \
                 just started",
                src.map_or_else(String::new, |s| s.to_string())
            ));
        }
        self.decoys();
    }

    /// A captured IP fragment (one that [`crate::wire::parse_with`] found to be
    /// [`Skip::Fragment`]), that arrived at `at` (engine time): to the pipeline's reassembler;
    /// the datagram it completes is judged as [`Engine::packet`] judges a packet.
    pub fn fragment(
        &mut self,
        at: Timestamp,
        link: crate::wire::LinkType,
        frame: &[u8],
        seen: crate::wire::Metadata,
    ) {
        let detection = self.looking(|pipeline, look| {
            pipeline.process_fragment_looking(at, link, frame, seen, look)
        });
        if let Some(d) = detection {
            self.on_detection(&d);
        }
    }

    /// Runs `judge` on the pipeline with the socket table's second look: read afresh for a
    /// source that crosses the threshold, unless it was read a moment ago.
    fn looking(
        &mut self,
        judge: impl FnOnce(
            &mut crate::pipeline::Pipeline,
            &mut dyn FnMut() -> Option<crate::detect::traps::Listeners>,
        ) -> Option<Detection>,
    ) -> Option<Detection> {
        let (host, clock, effects) = (&mut self.host, &self.clock, &mut self.effects);
        let listeners_read = &mut self.listeners_read;
        let mut look = || {
            let now = clock.now();
            if now.saturating_since(*listeners_read) <= LISTENERS_FRESH {
                return None;
            }
            match host.listeners() {
                Ok(listeners) => {
                    *listeners_read = now;
                    Some(listeners)
                }
                Err(e) => {
                    let line = format!("cannot re-read listening sockets: {e}");
                    effects.push(Effect::Log(Level::Warn, line));
                    None
                }
            }
        };
        judge(&mut self.pipeline, &mut look)
    }

    /// Connect mode: a connection or datagram on a trap port of the daemon's own. The trap
    /// ports are the daemon's own sockets: no second look at the socket table, which lists
    /// them as listening.
    pub fn connection(&mut self, src: IpAddr, dst: IpAddr, proto: Proto, port: u16) {
        let at = self.clock.now();
        if let Some(d) = self.pipeline.connection(at, src, dst, proto, port) {
            self.on_detection(&d);
        }
    }

    /// A detection: judged by the trust rules, then by the responder; carried out, said,
    /// and followed by the on-block program and the history line when it blocked. Detections
    /// that wait for the budget are settled first, when it allows.
    pub(super) fn on_detection(&mut self, d: &Detection) {
        self.settle_waiting();
        self.judge(d, None);
        self.decoy_detected(d.addr);
    }

    /// The detections refused by the rate budget that the budget allows now, the prefixes
    /// that spent least first, each judged again whole (the trust rules, never-block, grace
    /// and the rest as they stand now). Bounded by the queue's length.
    pub(super) fn settle_waiting(&mut self) {
        for _ in 0..self.responder.waiting_count() {
            let now = self.clock.now();
            let Some(due) = self.responder.next_due(now) else {
                break;
            };
            self.judge(&due.detection, Some(due.since));
        }
    }

    /// [`Engine::on_detection`] without the waiting ones; `waited`: the detection waited for
    /// the budget since then.
    fn judge(&mut self, d: &Detection, waited: Option<Timestamp>) {
        let now = self.clock.now();
        let decision = self.decide(d, now);
        let waits = matches!(decision, Decision::OverBudget { waits: true, .. });
        if !waits {
            self.responder.stop_waiting(d.addr);
        }
        if self.options.decisions {
            self.effects.push(Effect::Decided {
                detection: d.clone(),
                decision: decision.clone(),
            });
        }
        let mut event = report::Event::of(d, &decision, self.mode);
        if let Some(since) = waited {
            event = event.after_waiting(now.saturating_since(since));
        }
        if self.holds_pending() {
            event = self.judged_held(d, &decision, event);
        }
        self.count(d, &event);
        let quiet = matches!(decision, Decision::AlreadyBlocked { .. })
            && self.options.verbosity < Verbosity::Verbose;
        if matches!(decision, Decision::OverBudget { .. }) {
            self.refused += 1;
        }
        if !decision.settles(d) {
            self.pipeline.reconsider(d);
        }
        if let Decision::ReversePath { addr, .. } = &decision {
            self.refused_as_forged(*addr, now);
        }
        if let Some(rule) = event.reason() {
            let at = self.wall.to_wall(now).to_string();
            self.not_blocked
                .record(rule, d.addr, at, event.line().to_owned());
        }
        let actions = decision.actions();
        if actions.is_empty() {
            // A flood of forged packets makes these by the thousand: folded into a summary.
            let said = report::Folded::of(&decision).is_none_or(|kind| self.fold.offer(kind, now));
            if !quiet && said {
                self.say_decision(event);
            }
            return;
        }
        match self.enforce(&decision) {
            Ok(()) => {
                if let Decision::Block { net, ttl, .. } = &decision {
                    let latency = self.clock.now().saturating_since(d.last_seen);
                    if self.latencies.len() == LATENCY_SAMPLES {
                        self.latencies.pop_front();
                    }
                    let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                    self.latencies.push_back(us);
                    self.tally.latency.observe(us);
                    let run_program = self.config().respond.on_block_in_dry_run;
                    // A dry run is dry: the history file (fail2ban bans from it) is written
                    // only for blocks in force, the program only when asked to.
                    if self.mode == Mode::Enforcing || run_program {
                        self.effects.push(Effect::Blocked {
                            detection: d.clone(),
                            net: *net,
                            ttl: *ttl,
                        });
                    }
                    if self.mode == Mode::Enforcing {
                        self.history(d, now);
                    }
                }
                if let Decision::Block { net, .. } | Decision::Refresh { net, .. } = &decision {
                    self.publish_block(*net, now);
                }
                self.say_decision(event);
            }
            // A block is recorded only once the kernel has it (enforce forgot it).
            Err(e) => self.warn(format!("could not carry out \"{}\": {e}", event.line())),
        }
    }

    /// Counts a detection by its kinds, and its decision by its label.
    fn count(&mut self, d: &Detection, event: &report::Event) {
        for kind in d.kinds.names() {
            *self.tally.detections_by_kind.entry(kind).or_default() += 1;
        }
        *self.tally.decisions.entry(event.label()).or_default() += 1;
    }

    /// What to do about `d`: the trust rules first (reverse path, protected peers), then the
    /// responder (never-block, grace, budget, escalation).
    pub(super) fn decide(&mut self, d: &Detection, now: Timestamp) -> Decision {
        let reverse_path = self.reverse_path_for(d);
        let route_back = self.route_back(d, reverse_path);
        let view = SourceView {
            route_back,
            reverse_path,
            // As last read, once a second: a dump of the established connections walks the
            // kernel's whole connection table (2 ms here), too slow for the way to a block.
            peers: (self.config().respond.protect != Protect::None).then_some(&self.peers),
        };
        match crate::respond::distrust(d, &view, self.pipeline.never_block()) {
            Some(Distrust::ReversePath { came_in, route }) => Decision::ReversePath {
                addr: d.addr,
                came_in: came_in.map(|i| self.host.interface_name(i)),
                route: match route {
                    RouteBack::Via(oif) => Some(self.host.interface_name(oif)),
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
            None => {
                // In a dry run, a source the blocks in force hold is blocked already.
                let held = self
                    .set_aside
                    .as_ref()
                    .and_then(|in_force| in_force.block_of(IpNet::from(d.addr), now));
                match held {
                    Some(b) => Decision::AlreadyBlocked {
                        net: b.net,
                        remaining: b.until.saturating_since(now),
                    },
                    None => self
                        .responder
                        .on_detection(d, self.pipeline.never_block(), now),
                }
            }
        }
    }

    /// The reverse-path check in force for `d`'s source: the configured one, with `kernel`
    /// the host's rp_filter for the probe's interface (IPv4; strict for IPv6).
    pub(super) fn reverse_path_for(&self, d: &Detection) -> ReversePath {
        self.reverse_path_of(d.addr, d.arrived_on)
    }

    /// The reverse-path check in force for a source `addr` whose probe came in on interface
    /// `arrived_on` (see [`Engine::reverse_path_for`]).
    pub(super) fn reverse_path_of(&self, addr: IpAddr, arrived_on: Option<u32>) -> ReversePath {
        match self.config().respond.reverse_path {
            ReversePath::Kernel if addr.is_ipv4() => self.host.kernel_reverse_path(arrived_on),
            ReversePath::Kernel => ReversePath::Strict,
            mode => mode,
        }
    }

    /// The route back to `d`'s source, asked of the host when the reverse-path check (`mode`)
    /// is on for it; `None` when it is off, or the lookup failed (said, folded).
    pub(super) fn route_back(&mut self, d: &Detection, mode: ReversePath) -> Option<RouteBack> {
        self.route_back_to(d.addr, mode)
    }

    /// The route back to `addr` (see [`Engine::route_back`]).
    pub(super) fn route_back_to(&mut self, addr: IpAddr, mode: ReversePath) -> Option<RouteBack> {
        if mode == ReversePath::Off || self.pipeline.never_block().contains(addr) {
            return None;
        }
        match self.host.route_back(addr)? {
            Ok(back) => Some(back),
            Err(e) => {
                if self
                    .fold
                    .offer(report::Folded::ReversePath, self.clock.now())
                {
                    self.warn(format!(
                        "cannot look up the route back to {addr}: {e}; not checking it"
                    ));
                }
                None
            }
        }
    }

    /// The PortSentry-format history line of the block of `d`, if a history file is
    /// configured (when it happened, as the system clock reads it, as PortSentry wrote it).
    pub(super) fn history(&mut self, d: &Detection, now: Timestamp) {
        let Some(path) = self.config().respond.history_file.clone() else {
            return;
        };
        let Some(&(proto, port)) = d.ports.first() else {
            return;
        };
        let line = report::history_line(self.wall.to_wall(now), d.addr, proto, port);
        self.effects.push(Effect::History { path, line });
    }

    /// Reads the established connections afresh (with `protect = "established"`). A failed
    /// read is said once per streak, and counts as a reading with no connection: those seen
    /// before end, and are remembered by the usual rule.
    pub(super) fn read_peers(&mut self) {
        let now = self.clock.now();
        if self.config().respond.protect == Protect::None {
            self.peers = Peers::new(self.config().respond.protect_for);
            return;
        }
        match self.host.established() {
            Ok(sockets) => {
                // In connect mode the trap ports are the daemon's own sockets: a connection
                // waiting there to be accepted is a probe, not a conversation.
                let traps = if self.config().capture.method == config::Method::Connect {
                    self.pipeline.traps().bound_ports(Proto::Tcp)
                } else {
                    Vec::new()
                };
                self.peers.observe(
                    now,
                    sockets
                        .into_iter()
                        .filter(|(_, port, _)| !traps.contains(port)),
                );
            }
            Err(e) => {
                if !self.peers.is_empty() || self.fold.offer(report::Folded::Protected, now) {
                    self.warn(format!("cannot read established connections: {e}"));
                }
                self.peers.observe(now, []);
            }
        }
    }
}
