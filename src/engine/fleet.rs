//! Fleet mode in the engine: what this host tells the fleet (its blocks, and the unblocks its
//! administrator asks fleet-wide), and what it does with what the others say. The NATS link is
//! the shell's (`daemon::fleet`); here a message is a value, and nothing waits on the network.
//!
//! Another host's block passes, in order: the gate ([`Gate`]: own ignored, ended dropped, the
//! per-origin cap, the maximum duration), then this host's own rules — an unblock here since it
//! was detected, the never-block list, the protected peers, a grace period, the size budget.
//! Every refusal is counted by rule; those that protect this host are also said.

use hashlink::LinkedHashMap;

use super::*;
use crate::config::fleet::FleetConfig;
use crate::fleet::gate::{Gate, Refusal, Verdict};
use crate::fleet::message::{Body, HostName, MAX_PORTS, Message};

/// Networks whose last unblock is remembered (the oldest gives way): a block the fleet
/// detected before an unblock here is not taken again, also when it comes back from the
/// key-value bucket at a reconnection.
const MAX_LIFTED: usize = 4096;

/// The engine's side of the fleet.
#[derive(Debug)]
pub(super) struct Fleet {
    host: HostName,
    gate: Gate,
    limits: (Duration, u32),
    /// Networks unblocked here or by the fleet, and when (wall clock).
    lifted: LinkedHashMap<IpNet, Timestamp>,
    /// Messages from the other hosts taken in.
    received: u64,
    /// Blocks taken from the other hosts.
    taken: u64,
    /// Blocks from the other hosts refused, by rule.
    refused: std::collections::BTreeMap<&'static str, u64>,
}

impl Fleet {
    /// The fleet's side for `config`; `None` without a host name (the shell fills it in from
    /// the system's before the engine starts).
    pub(super) fn new(config: &FleetConfig) -> Option<Fleet> {
        let host = config.host.clone()?;
        Some(Fleet {
            gate: Gate::new(
                host.clone(),
                config.max_block_for,
                config.max_per_origin_per_minute,
            ),
            limits: (config.max_block_for, config.max_per_origin_per_minute),
            host,
            lifted: LinkedHashMap::new(),
            received: 0,
            taken: 0,
            refused: std::collections::BTreeMap::new(),
        })
    }

    /// Takes a new configuration: the counts stay; the gate starts afresh if its limits or the
    /// host's name changed.
    pub(super) fn reconfigure(mut self, config: &FleetConfig) -> Option<Fleet> {
        let host = config.host.clone()?;
        let limits = (config.max_block_for, config.max_per_origin_per_minute);
        if host != self.host || limits != self.limits {
            self.gate = Gate::new(host.clone(), limits.0, limits.1);
            self.limits = limits;
            self.host = host;
        }
        Some(self)
    }

    fn lifted(&mut self, net: IpNet, at: Timestamp) {
        self.lifted.remove(&net);
        if self.lifted.len() >= MAX_LIFTED {
            self.lifted.pop_front();
        }
        self.lifted.insert(net, at);
    }

    fn refuse(&mut self, rule: &'static str) {
        *self.refused.entry(rule).or_default() += 1;
    }
}

impl Engine {
    fn fleet_config(&self) -> Option<&FleetConfig> {
        self.config().fleet.as_ref()
    }

    /// Tells the fleet of this host's block of `net`, just made or refreshed, when it shares
    /// its blocks (a block taken from the fleet is not told again).
    pub(super) fn publish_block(&mut self, net: IpNet, now: Timestamp) {
        if !self.fleet_config().is_some_and(|f| f.share_blocks) || self.fleet.is_none() {
            return;
        }
        let Some(block) = self.responder.block_of(net, now) else {
            return;
        };
        if block.why.origin.is_some() {
            return;
        }
        let body = Body::Block {
            net: block.net,
            kind: block.why.kind.clone(),
            ports: block
                .why
                .port_labels()
                .into_iter()
                .take(MAX_PORTS)
                .collect(),
            at: self.wall.to_wall(block.since),
            until: self.wall.to_wall(block.until),
        };
        self.effects.push(Effect::Fleet(body));
    }

    /// Remembers that `net` was lifted here now; with `fleet_wide`, asks the fleet to lift it
    /// too. Whether the fleet was asked.
    pub(super) fn lifted_here(&mut self, net: IpNet, fleet_wide: bool) -> bool {
        let at = self.wall.to_wall(self.clock.now());
        let Some(fleet) = &mut self.fleet else {
            return false;
        };
        fleet.lifted(net, at);
        if fleet_wide {
            self.effects.push(Effect::Fleet(Body::Unblock { net, at }));
        }
        fleet_wide
    }

    /// A message from another host of the fleet, as the link received and checked it
    /// ([`Message::decode`]).
    pub fn fleet_message(&mut self, message: Message) {
        let accept = self.fleet_config().is_some_and(|f| f.accept_blocks);
        let Some(fleet) = &mut self.fleet else {
            return;
        };
        if message.origin == fleet.host {
            return;
        }
        fleet.received += 1;
        match message.body {
            Body::Block {
                net,
                kind,
                ports,
                at,
                until,
            } if accept => {
                let why = Why {
                    kind,
                    ports: ports.iter().filter_map(|p| Proto::parse_label(p)).collect(),
                    origin: Some(message.origin),
                };
                self.block_from_fleet(net, why, at, until);
            }
            Body::Unblock { net, at } if accept => {
                self.unblock_from_fleet(&message.origin, net, at)
            }
            // Heartbeats and probe summaries are counted by the link and the sweep owner.
            _ => {}
        }
    }

    fn block_from_fleet(&mut self, net: IpNet, why: Why, at: Timestamp, until: Timestamp) {
        let now = self.clock.now();
        let wall_now = self.wall.to_wall(now);
        let origin = why
            .origin
            .clone()
            .expect("a block from the fleet has its origin");
        let Some(fleet) = &mut self.fleet else {
            return;
        };
        let ttl = match fleet.gate.judge(&origin, net, until, wall_now) {
            Verdict::Take { ttl, .. } => ttl,
            Verdict::Refuse(Refusal::Own) => return,
            Verdict::Refuse(Refusal::Ended) => return fleet.refuse("ended"),
            Verdict::Refuse(Refusal::RateCapped { .. }) => return fleet.refuse("rate-cap"),
        };
        if fleet.lifted.get(&net).is_some_and(|lifted| *lifted >= at) {
            return fleet.refuse("unblocked");
        }
        let net_text = source_text(&net);
        let overlapping: Vec<String> = self
            .pipeline
            .never_block()
            .entries()
            .iter()
            .filter(|e| net.contains(&e.net.addr()) || e.net.contains(&net.addr()))
            .map(|e| format!("{} ({})", source_text(&e.net), e.reason))
            .collect();
        if !overlapping.is_empty() {
            self.refuse_from_fleet(
                "never-block",
                format!(
                    "refused {origin}'s block of {net_text}: it overlaps the never-block list: {}",
                    overlapping.join(", ")
                ),
            );
            return;
        }
        if self.config().respond.protect != Protect::None
            && let Some(c) = self.peers.protecting(net, now)
        {
            self.refuse_from_fleet(
                "protected",
                format!(
                    "refused {origin}'s block of {net_text}: {} is a protected peer \
                         (a conversation on port {})",
                    c.peer, c.port
                ),
            );
            return;
        }
        let detected = self.wall.from_wall(at);
        let decision = self
            .responder
            .block_from_fleet(net, ttl, why.clone(), detected, now);
        match &decision {
            Decision::Block { ttl, .. } | Decision::Refresh { ttl, .. } => {
                let ttl = *ttl;
                let actions = decision.actions();
                match self.apply(&actions) {
                    Ok(()) => {
                        self.dirty = true;
                        if let Some(fleet) = &mut self.fleet {
                            fleet.taken += 1;
                        }
                        let verb = self.verb("blocked", "would block");
                        let ports = why.port_labels();
                        let ports = if ports.is_empty() {
                            String::new()
                        } else {
                            format!(", {}", ports.join(" "))
                        };
                        self.log(format!(
                            "{verb} {net_text} for {}: blocked by fleet, detected on {origin} \
                             at {at} ({}{ports})",
                            human(ttl),
                            why.kind,
                        ));
                    }
                    Err(e) => {
                        self.forget_blocks(&actions);
                        self.warn(format!(
                            "could not carry out {origin}'s block of {net_text}: {e}"
                        ));
                    }
                }
            }
            Decision::AlreadyBlocked { .. } => {}
            Decision::InGrace { .. } => {
                if let Some(fleet) = &mut self.fleet {
                    fleet.refuse("grace");
                }
            }
            Decision::OverBudget { .. } => {
                let max = self.config().respond.max_blocks;
                self.refuse_from_fleet(
                    "budget",
                    format!(
                        "refused {origin}'s block of {net_text}: {max} blocks are active \
                         ([respond] max-blocks)"
                    ),
                );
            }
            Decision::NeverBlock { .. }
            | Decision::TooFewPorts { .. }
            | Decision::ReversePath { .. }
            | Decision::Protected { .. } => {}
        }
    }

    /// A refusal that protects this host: counted, and said (folded under a flood).
    fn refuse_from_fleet(&mut self, rule: &'static str, line: String) {
        if let Some(fleet) = &mut self.fleet {
            fleet.refuse(rule);
        }
        if self.fold.offer(report::Folded::Fleet, self.clock.now()) {
            self.warn(line);
        }
    }

    fn unblock_from_fleet(&mut self, origin: &HostName, net: IpNet, at: Timestamp) {
        let Some(fleet) = &mut self.fleet else {
            return;
        };
        if fleet.lifted.get(&net).is_some_and(|lifted| *lifted >= at) {
            return;
        }
        fleet.lifted(net, at);
        let now = self.clock.now();
        match self.lift(net, None, now) {
            Ok(lifted) if lifted.is_empty() => {}
            Ok(_) => {
                let verb = self.verb("unblocked", "would unblock");
                self.log(format!(
                    "{verb} {}: lifted fleet-wide from {origin}",
                    source_text(&net)
                ));
            }
            Err(e) => self.warn(format!(
                "could not carry out {origin}'s unblock of {}: {e}",
                source_text(&net)
            )),
        }
    }

    /// The fleet's side of `status`, without the link's (the shell's) figures.
    pub fn fleet_info(&self) -> Option<FleetInfo> {
        let fleet = self.fleet.as_ref()?;
        Some(FleetInfo {
            host: fleet.host.to_string(),
            received: fleet.received,
            taken: fleet.taken,
            refused: fleet
                .refused
                .iter()
                .map(|(rule, n)| ((*rule).to_string(), *n))
                .collect(),
            ..FleetInfo::default()
        })
    }

    /// This host's name in the fleet, when fleet mode is on.
    pub fn fleet_host(&self) -> Option<&HostName> {
        self.fleet.as_ref().map(|f| &f.host)
    }
}
