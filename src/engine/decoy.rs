//! Decoy verdicts (`nmap -D`): the pipeline names a likely decoy at least 2 s after the scan's
//! SYN+ACKs ([`crate::detect::decoy`]), usually after it was blocked; the responder cuts that
//! block to a short hold ([`crate::respond::DECOY_HOLD`]), which is carried out and said.

use super::*;
use crate::detect::decoy::Verdict;

impl Engine {
    /// The verdicts the pipeline reached since the last call, each to the responder, and what
    /// it decided carried out and said.
    pub(super) fn decoys(&mut self) {
        let (verdicts, _) = self.pipeline.take_decoys();
        for verdict in verdicts {
            self.decoy(verdict, true);
        }
    }

    /// A detection of `addr` just judged: when the pipeline named it a likely decoy before (a
    /// scan of the open ports before the others), its block is cut short at once, and said.
    pub(super) fn decoy_detected(&mut self, addr: std::net::IpAddr) {
        if let Some(verdict) = self.pipeline.decoy_verdict(addr) {
            self.decoy(verdict, false);
        }
    }

    /// One verdict to the responder: the block cut short, carried out, and said (the verdict
    /// said even when nothing was cut, with `always`).
    fn decoy(&mut self, verdict: Verdict, always: bool) {
        let now = self.clock.now();
        let ttl = match self.responder.decoy(&verdict, now) {
            Some(actions) => match self.apply(&actions) {
                Ok(()) => {
                    self.dirty = true;
                    Some(crate::respond::DECOY_HOLD)
                }
                Err(e) => {
                    let line = format!("could not shorten the block of {}: {e}", verdict.decoy);
                    self.warn(line);
                    None
                }
            },
            None => None,
        };
        if ttl.is_none() && !always {
            return;
        }
        self.log(decoy_line(&verdict, ttl));
        if self.options.decisions {
            self.effects.push(Effect::Decoy { verdict, ttl });
        }
    }
}

/// What is said of a verdict: `198.51.100.77: likely decoy: no answer to 2 SYN+ACKs while
/// 198.51.100.2 answered; blocked for 1m only`.
pub fn decoy_line(verdict: &Verdict, ttl: Option<Duration>) -> String {
    match ttl {
        Some(ttl) => format!(
            "{}: {verdict}; blocked for {} only",
            verdict.decoy,
            human(ttl)
        ),
        None => format!("{}: {verdict}", verdict.decoy),
    }
}
